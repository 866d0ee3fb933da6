-- Try the modules on a node without checkpoints: nodeinit eval examples/eval-every-module.lua
-- (nodeinit enters the host first; everything below acts on the host). It prints what it returns.
local changed = {}

-- sysctl: the host's network namespace
changed.somaxconn = must(sysctl.set("net.core.somaxconn", "2048"))
local somaxconn = sysctl.get("net.core.somaxconn")

-- file: atomic writes, lines, directories
must(file.mkdir("/etc/nodeinit-eval", { parents = true, mode = "0755" }))
changed.conf = must(file.write("/etc/nodeinit-eval/app.conf", "a = 1\n", { mode = "0640", owner = "root" }))
must(file.ensure_line("/etc/nodeinit-eval/app.conf", "b = 2", { match = "^b =" }))
local conf = file.read("/etc/nodeinit-eval/app.conf")

-- exec: argv, no shell; exec.ok raises unless it exits 0
local host = exec.ok { "hostname" }:gsub("%s+$", "")
local r = exec.run { "sh", "-c", "echo to-stderr >&2; exit 3" }

-- ns: a function inside another network namespace of the host (here: the host's own, by pid 1)
local lo = ns.run({ pid = 1, namespaces = { "net" } }, function() return sysctl.get("net.ipv4.conf.lo.forwarding") end)

-- yaml: decode to Lua values
local doc = yaml.decode("nodes: [a, b]\nsize: 3\n")

-- log: a structured line
log.info("eval done", { host = host, somaxconn = somaxconn })

return host, somaxconn, conf:gsub("\n", ";"), r.code, r.stderr:gsub("\n", ""), lo, #doc.nodes, doc.size,
  tostring(changed.conf), file.exists("/etc/nodeinit-eval/app.conf")
