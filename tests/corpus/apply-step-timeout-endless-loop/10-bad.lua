recipe "x" {
  step "a" { timeout = 1, function() while true do end end },
}
