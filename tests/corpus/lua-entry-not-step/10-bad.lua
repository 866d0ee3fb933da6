recipe "x" { step "a" { function() end }, 42 }
