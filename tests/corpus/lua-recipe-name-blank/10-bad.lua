recipe "my recipe" { step "a" { function() end } }
