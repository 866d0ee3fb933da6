recipe "x" {
  step "a" { function() exec.run { "true", timeout = math.huge } end },
}
