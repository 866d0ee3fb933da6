---@meta nodeinit.kube
-- LuaLS annotations for nodeinit's kube module (not embedded in the binary: editors read it).
-- In recipes the module is the global `kube`, and also `require("nodeinit.kube")`.
--
-- The Node this pod runs on (NODE_NAME), read from the API server at most once a pass and shared
-- by every step of that pass. The API is never on the critical path: when it is off (--kube off,
-- not in a cluster), unreachable, slow or denies the read, node() returns nil and a message; decide
-- in the recipe what a step does then (skip, or fail and be retried with back-off).

---@class nodeinit.kube
kube = {}

---@class nodeinit.kube.Taint
---@field key string
---@field value? string
---@field effect string "NoSchedule", "PreferNoSchedule" or "NoExecute"
---@field timeAdded? string

---@class nodeinit.kube.Node
---@field name string
---@field labels table<string, string>
---@field annotations table<string, string>
---@field taints nodeinit.kube.Taint[]

---The Node's name, labels, annotations and taints. Only inside a step: in a file's top-level code it
---raises "kube.node: only inside a step" (a load never depends on the cluster); `plan` reads it too.
---
---```lua
---local node, err = kube.node()
---if node and node.labels["nodeinit.example.com/pool"] == "gpu" then
---  sysctl.set("vm.nr_hugepages", "1024")
---end
---```
---@return nodeinit.kube.Node|nil node
---@return string? errmsg why it cannot be read (`"kube: the API is off ..."`, `"kube: cannot read node ..."`)
---@return integer? errno
function kube.node() end

return kube
