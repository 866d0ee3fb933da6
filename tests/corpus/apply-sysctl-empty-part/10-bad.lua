recipe "x" {
  step "a" { function() sysctl.set("net.ipv4.", "1") end },
}
