recipe "x" {
  step "a" { function() file.write("/etc/x", {}) end },
}
