recipe "x" {
  step "a" { function() exec.run {} end },
}
