recipe "x" {
  step "a" { function() exec.ok { "sleep", "30", timeout = 1 } end },
}
