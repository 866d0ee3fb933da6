recipe "x" {
  step "a" { function() sysctl.set("net/../../etc/passwd", "1") end },
}
