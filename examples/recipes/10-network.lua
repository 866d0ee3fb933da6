-- Pod networking: IPv4 forwarding and bridged pod traffic through iptables. Modules and sysctls
-- do not survive a reboot, so these steps run once per boot.

-- sysctl.set and file.* return nil and a message when the OS says no (and false when nothing had to
-- change, so assert() would be wrong): must() turns the failure into a failed step.
local function must(ok, err)
  if ok == nil then error(err, 2) end
  return ok
end

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
