recipe "x" { step "b" { function() end } }
