recipe "ok" { step "s" { function() end } }
