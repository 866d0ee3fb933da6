recipe "x" { step "a" { wehn = 1, function() end } }
