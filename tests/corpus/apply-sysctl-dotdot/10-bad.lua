recipe "x" {
  step "a" { function() sysctl.set("net..ipv4.ip_forward", "1") end },
}
