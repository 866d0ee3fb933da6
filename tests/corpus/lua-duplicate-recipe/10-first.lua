recipe "x" { step "a" { function() end } }
