recipe "x" {
  step "a" { function() exec.run { "true", timeout = -1 } end },
}
