recipe "x" { step "a" { function() end } }
local t = nil; t.x = 1
