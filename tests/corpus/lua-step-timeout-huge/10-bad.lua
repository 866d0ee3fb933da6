recipe "x" {
  step "a" { timeout = math.huge, function() end },
}
