recipe "x" {
  step "a" { timeout = 0, function() end },
}
