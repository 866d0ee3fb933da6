---@meta nodeinit.ns
-- LuaLS annotations for nodeinit's `ns` module (not embedded in the binary: editors read it).
-- In a recipe `ns` is a global; `require("nodeinit.ns")` gives the same table.

---Work inside another namespace of the host for a moment: a named network namespace
---(`ip netns add NAME`, i.e. /run/netns/NAME on the host) or the namespaces of a host process.
---Only inside a step (in a file's top-level code both raise "ns.run: only inside a step"). In
---`plan`, `ns.run` still enters and calls `fn` (whose primitives then plan, as everywhere in plan);
---`ns.exec` does not run its command: plan prints it, and it returns a result with `not_run = true`.
---@class nodeinit.ns
ns = {}

---Which namespaces: either `netns` or `pid` (with `namespaces`).
---@class nodeinit.NsSpec
---@field netns? string A name under the host's /run/netns: no '/', not "." or "..".
---@field pid? integer A pid as the host sees it (e.g. from `exec.run{"pidof", "containerd"}`).
---Kinds to enter for `pid`: "ipc", "mnt", "net", "pid", "uts". Default: {"ipc", "net", "uts"}
---for `ns.run`, all five for `ns.exec`. `ns.run` refuses "mnt" and "pid".
---@field namespaces? ("ipc"|"mnt"|"net"|"pid"|"uts")[]

---Calls `fn(...)` with nodeinit itself switched into the namespaces, then switches back, always:
---also when `fn` raises (the error then goes on, with its own place and traceback) or hits a
---limit. Commands `fn` starts with `exec.run` run in there too, and a sysctl opened in there is the
---netns's. Only network, UTS and IPC namespaces can be entered this way: in a mount namespace
---file.* and sysctl.* would still act on the host's root, and a PID namespace only applies to
---children. Use `ns.exec` for those. `fn` cannot yield across the switch.
---
---Returns what `fn` returns; `nil, message, errno` when the namespaces cannot be opened or
---entered (`fn` is not called then). Misuse (bad spec, bad name, no function) raises.
---
---```lua
---ns.run({netns = "cni-1234"}, function()
---  exec.ok{"ip", "link", "set", "eth0", "mtu", "9000"}
---end)
---```
---@generic R
---@param spec nodeinit.NsSpec
---@param fn fun(...): R
---@param ... any passed to fn
---@return R|nil
---@return string? errmsg
---@return integer? errno
function ns.run(spec, fn, ...) end

---`exec.run` inside the namespaces (mount and PID ones included: with a pid, all five by
---default). Same arguments and results as `exec.run`, plus `nil, message, errno` when the
---namespaces cannot be opened or entered.
---
---```lua
---local r = ns.exec({pid = kubelet_pid, namespaces = {"mnt"}}, {"cat", "/etc/resolv.conf"})
---```
---@param spec nodeinit.NsSpec
---@param argv nodeinit.ExecSpec
---@return nodeinit.ExecResult|nil result
---@return string? errmsg
---@return integer? errno
function ns.exec(spec, argv) end

return ns
