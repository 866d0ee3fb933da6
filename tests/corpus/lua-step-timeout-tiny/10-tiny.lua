recipe "x" {
  step "a" { timeout = 0.0001, function() exec.ok { "sleep", "30" } end },
}
