recipe "x" { step "a" { function() end } }
error("boom at load")
