local f = io.open("/etc/shadow")
recipe "x" { step "a" { function() end } }
