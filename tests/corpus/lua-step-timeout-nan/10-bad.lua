recipe "x" {
  step "a" { timeout = 0/0, function() end },
}
