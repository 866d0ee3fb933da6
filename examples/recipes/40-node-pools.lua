-- One DaemonSet for several node pools: each step reads the Node's labels (kube.node(), read once
-- a pass) and does what its pool needs. Label the pools, e.g.
--   kubectl label node gpu-1 nodeinit.example.com/pool=gpu
-- Without the API (--kube off, or no cluster) kube.node() is nil: the steps do nothing, and say so.

local function pool()
  local node, err = kube.node()
  if not node then
    log.warn("node labels unknown; pool-specific settings skipped", { error = err })
    return nil
  end
  return node.labels["nodeinit.example.com/pool"]
end

recipe "node-pools" {
  -- GPU nodes: huge pages for the CUDA memory pools. Resets at boot, so once per boot.
  step "gpu-hugepages" {
    when = "boot",
    function()
      if pool() == "gpu" then sysctl.set("vm.nr_hugepages", "1024") end
    end,
  },
  -- Ingress nodes: many short connections.
  step "ingress-port-range" {
    when = "boot",
    function()
      if pool() == "ingress" then sysctl.set("net.ipv4.ip_local_port_range", "1024 65000") end
    end,
  },
}
