recipe "x" {
  step "a" { check = true, function() end },
}
