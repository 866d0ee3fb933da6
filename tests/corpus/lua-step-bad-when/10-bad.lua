recipe "x" {
  step "a" { when = "daily", function() end },
}
