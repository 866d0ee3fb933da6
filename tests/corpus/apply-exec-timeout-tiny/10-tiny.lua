recipe "x" {
  step "a" { function() exec.ok { "sleep", "30", timeout = 0.0001 } end },
}
