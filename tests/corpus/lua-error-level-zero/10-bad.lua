recipe "x" { step "a" { function() end } }
error("no position here", 0)
