recipe "x" {
  step "a" { timeout = -1, function() end },
}
