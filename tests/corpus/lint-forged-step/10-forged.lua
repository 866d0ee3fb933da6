local real = step "real" { function() end }
local forged = { name = "x", when = "sometimes", run = function() end }
for k, v in pairs(real) do forged[k] = v end
recipe "forged" { forged }
