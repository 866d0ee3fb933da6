recipe "x" { step "a" { function() end } }
= 1
