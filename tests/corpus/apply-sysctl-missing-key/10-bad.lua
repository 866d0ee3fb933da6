recipe "x" {
  step "a" { function() assert(sysctl.set("net.ipv4.no_such_key", "1")) end },
}
