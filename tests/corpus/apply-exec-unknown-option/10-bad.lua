recipe "x" {
  step "a" { function() exec.run { "true", timout = 5 } end },
}
