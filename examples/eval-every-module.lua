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
-- file.list/stat/symlink: a directory listing, attributes, an idempotent link
must(file.symlink("app.conf", "/etc/nodeinit-eval/current"))
local listing = table.concat(must(file.list("/etc/nodeinit-eval")), ",")
local mode = file.stat("/etc/nodeinit-eval/current").mode

-- host: facts read from the host's /etc, /proc and /sys
local facts = string.format("%s/%s/%d", host.os().id, host.kernel().arch, #host.interfaces())
assert(host.cpus() >= 1 and host.memory().total > 0 and host.numa_nodes() >= 1 and host.block_devices())

-- sysctl.keys and sysctl.d text: globs, exclusions, explicit keys win
local loopback_keys = #sysctl.keys("net.ipv4.conf.lo.*")
must(sysctl.apply_conf("-net.ipv4.conf.*.accept_local = 0\nnet.ipv4.conf.lo.accept_local = 1\n"))

-- sleep: bounded by the step's timeout and stop signals
sleep(0.01)

-- exec: argv, no shell; exec.ok raises unless it exits 0
local hostname = exec.ok { "hostname" }:gsub("%s+$", "")
local r = exec.run { "sh", "-c", "echo to-stderr >&2; exit 3" }

-- ns: a function inside another network namespace of the host (here: the host's own, by pid 1)
local lo = ns.run({ pid = 1, namespaces = { "net" } }, function() return sysctl.get("net.ipv4.conf.lo.forwarding") end)

-- yaml: decode to Lua values
local doc = yaml.decode("nodes: [a, b]\nsize: 3\n")

-- log: a structured line
log.info("eval done", { host = hostname, somaxconn = somaxconn })

return hostname, somaxconn, conf:gsub("\n", ";"), r.code, r.stderr:gsub("\n", ""), lo, #doc.nodes, doc.size,
  tostring(changed.conf), file.exists("/etc/nodeinit-eval/app.conf"), listing, mode, facts, loopback_keys > 0,
  sysctl.get("net.ipv4.conf.lo.accept_local")
