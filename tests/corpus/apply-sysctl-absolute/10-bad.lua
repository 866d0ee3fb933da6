recipe "x" {
  step "a" { function() sysctl.set("/proc/sys/net/ipv4/ip_forward", "1") end },
}
