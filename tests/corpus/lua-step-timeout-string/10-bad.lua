recipe "x" {
  step "a" { timeout = "60", function() end },
}
