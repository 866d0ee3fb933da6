recipe "x" {
  step "a" { function() file.write("/etc/../etc/x", "y") end },
}
