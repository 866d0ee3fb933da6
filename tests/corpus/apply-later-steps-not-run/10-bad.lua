recipe "x" {
  step "a" { function() error("first fails") end },
  step "b" { function() end },
}
