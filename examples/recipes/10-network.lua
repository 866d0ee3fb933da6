-- Pod networking: IPv4 forwarding and bridged pod traffic through iptables. Modules and sysctls
-- do not survive a reboot, so these steps run once per boot.

recipe "network" {
  step "br-netfilter" {
    when = "boot",
    function()
      must(file.ensure_line("/etc/modules-load.d/k8s.conf", "br_netfilter"))
      exec.run { "modprobe", "br_netfilter", timeout = 30 }
    end },
  step "ip-forward" { when = "boot", function() must(sysctl.set("net.ipv4.ip_forward", "1")) end },
  -- Needs br_netfilter: when the module did not load, the key is missing and this step fails.
  step "bridge-nf-call" {
    when = "boot",
    function()
      must(sysctl.set("net.bridge.bridge-nf-call-iptables", "1"))
      must(sysctl.set("net.bridge.bridge-nf-call-ip6tables", "1"))
    end },
}
