recipe "x" {
  step "a" { timeout = 366 * 86400 + 1, function() end },
}
