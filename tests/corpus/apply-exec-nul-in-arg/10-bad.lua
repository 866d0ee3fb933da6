recipe "x" {
  step "a" { function() exec.run { "echo", "a\0b" } end },
}
