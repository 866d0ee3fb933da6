recipe "x" {
  step "a" { function() end },
  step "a" { function() end },
}
