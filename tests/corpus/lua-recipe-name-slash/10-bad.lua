recipe "a/b" { step "a" { function() end } }
