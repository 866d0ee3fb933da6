recipee "x" { step "a" { function() end } }
