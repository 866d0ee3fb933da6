recipe "x" {
  step "a" { timeout = 1, function() while true do pcall(function() while true do end end) end end },
}
