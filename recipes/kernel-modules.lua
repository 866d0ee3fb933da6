-- kernel-modules: loads kernel modules now (modprobe on the host) and for every later boot
-- (/etc/modules-load.d/<name>.conf, read by systemd-modules-load), then sets the sysctls that
-- only exist once a module is loaded, such as net.bridge.bridge-nf-call-iptables after
-- br_netfilter: each waits for its key to appear instead of failing at once.
--
-- Parameters (edit `params` below when you copy this file into your ConfigMap):
--   name     names the files this recipe owns: /etc/modules-load.d/<name>.conf and, with
--            options, /etc/modprobe.d/<name>.conf. Letters, digits, '.', '_', '-'.
--   modules  module names, loaded in this order ("modprobe NAME"; built-in modules are fine).
--   options  module = "parameters", written as "options MODULE PARAMETERS" lines to
--            /etc/modprobe.d/<name>.conf before anything is loaded. They apply when the module
--            loads: a module that is already loaded keeps its parameters until the next boot.
--            With no options, a file of ours there is removed.
--   sysctls  key = value, set after the modules are loaded (as sysctl.lua's settings).
--   wait     seconds to wait for each sysctl key to appear (default 10).
--
-- When: step "persist" writes the files once (again when the parameters change); steps "load"
-- and "sysctls" run on every boot (when = "boot"). A module that does not load or a key that
-- does not appear in time fails its step, which is retried with back-off.

local params = {
  name = "nodeinit",
  modules = { "overlay", "br_netfilter" },
  options = {
    -- nf_conntrack = "hashsize=262144",
  },
  sysctls = {
    ["net.bridge.bridge-nf-call-iptables"] = 1,
    ["net.bridge.bridge-nf-call-ip6tables"] = 1,
  },
  wait = 10,
}

-- Everything below is the recipe; there is nothing to edit.

local HEADER = "# Written by nodeinit (recipe kernel-modules); edits are overwritten.\n"

-- Checks the parameters while the file loads, so `nodeinit lint` reports problems.
local function check(p)
  if type(p.name) ~= "string" or not p.name:match("^[%w_][%w._-]*$") then
    error("params.name must be letters, digits, '.', '_' or '-'", 0)
  end
  for i, m in ipairs(p.modules or {}) do
    if type(m) ~= "string" or not m:match("^[%w_][%w_-]*$") then
      error(string.format("params.modules[%d] is not a module name: %s", i, tostring(m)), 0)
    end
  end
  for m, o in pairs(p.options or {}) do
    if type(m) ~= "string" or not m:match("^[%w_][%w_-]*$") or type(o) ~= "string" or o:find("[\n\r]") then
      error(string.format("params.options: %s = %q is not module = \"parameters\"", tostring(m), tostring(o)), 0)
    end
  end
  for k, v in pairs(p.sysctls or {}) do
    if type(k) ~= "string" or k:find("[%s%c]") or not (type(v) == "string" or math.type(v) == "integer") then
      error(string.format("params.sysctls: %s = %s is not key = string or integer", tostring(k), tostring(v)), 0)
    end
  end
  if p.wait ~= nil and (type(p.wait) ~= "number" or p.wait < 0) then
    error("params.wait must be a number of seconds", 0)
  end
end

local checked, problem = pcall(check, params)
if not checked then error(problem) end

local function sorted(t)
  local keys = {}
  for k in pairs(t or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local modules = params.modules or {}
local load_conf_path = "/etc/modules-load.d/" .. params.name .. ".conf"
local load_conf = HEADER .. table.concat(modules, "\n") .. (#modules > 0 and "\n" or "")
local options_path = "/etc/modprobe.d/" .. params.name .. ".conf"
local options_conf
if next(params.options or {}) then
  local lines = {}
  for _, m in ipairs(sorted(params.options)) do lines[#lines + 1] = "options " .. m .. " " .. params.options[m] end
  options_conf = HEADER .. table.concat(lines, "\n") .. "\n"
end
local sysctls = {}
for _, k in ipairs(sorted(params.sysctls)) do
  local v = params.sysctls[k]
  sysctls[#sysctls + 1] = { key = k, value = type(v) == "string" and v or string.format("%d", v) }
end
local wait = params.wait or 10

-- Waits until a sysctl key exists: it appears when its module has registered it, which may be a
-- moment after modprobe returned (or never, when the module is missing). The pause grows from
-- 50 ms to 1 s; sleep() never outlasts the step's timeout or a stop signal.
local function wait_for_key(key, seconds)
  local waited, pause = 0, 0.05
  while true do
    local value, err, errno = sysctl.get(key)
    if value ~= nil then return value end
    if errno ~= 2 then error(err, 0) end -- only ENOENT means "not there yet"
    if waited >= seconds then
      error(string.format("%s did not appear within %s s after the modules were loaded (is its module in params.modules?)",
        key, tostring(seconds)), 0)
    end
    sleep(pause)
    waited = waited + pause
    pause = math.min(pause * 2, 1)
  end
end

recipe "kernel-modules" {
  step "persist" {
    function()
      must(file.mkdir("/etc/modules-load.d", { parents = true }))
      must(file.write(load_conf_path, load_conf, { mode = "0644" }))
      if options_conf then
        must(file.mkdir("/etc/modprobe.d", { parents = true }))
        must(file.write(options_path, options_conf, { mode = "0644" }))
      elseif file.exists(options_path) and (must(file.read(options_path)):sub(1, #HEADER) == HEADER) then
        must(file.remove(options_path))
      end
    end },

  step "load" {
    when = "boot",
    timeout = 120,
    function()
      for _, m in ipairs(modules) do
        exec.ok { "modprobe", m }
      end
    end },

  step "sysctls" {
    when = "boot",
    function()
      for _, s in ipairs(sysctls) do
        wait_for_key(s.key, wait)
        must(sysctl.set(s.key, s.value))
      end
    end },
}
