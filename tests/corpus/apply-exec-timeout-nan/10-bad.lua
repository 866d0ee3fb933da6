recipe "x" {
  step "a" { function() exec.run { "true", timeout = 0/0 } end },
}
