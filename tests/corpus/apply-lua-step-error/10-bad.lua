recipe "x" {
  step "a" { function() error("kaboom") end },
}
