-- containerd-mirror: registry mirrors for containerd, one /etc/containerd/certs.d/<registry>/hosts.toml
-- per registry, and `systemctl restart containerd` only when one of those files changed.
--
-- containerd reads these files only when its CRI registry config_path points at the directory:
-- the default in containerd 2.x; in 1.x set config_path = "/etc/containerd/certs.d" under
-- [plugins."io.containerd.grpc.v1.cri".registry] (examples/recipes/20-containerd-mirror.yaml
-- shows a step that does it).
--
-- Parameters (edit `params` below when you copy this file into your ConfigMap):
--   registries  registry = { server = URL, hosts = { host, ... } }. The registry is as images name
--               it ("docker.io", "registry.k8s.io", "localhost:5000", or "_default" for every
--               registry without a directory of its own). server is the upstream, used when no
--               host answers (default https://registry-1.docker.io for docker.io, else
--               https://<registry>; false for none). Each host, tried in order:
--                 url            the mirror, e.g. "https://mirror.example.internal" (required)
--                 capabilities   default { "pull", "resolve" }
--                 ca             a CA file (or a list of them) on the host, for a private CA
--                 skip_verify    true to skip TLS verification
--                 override_path  true when url already holds the API path (".../v2")
--                 header         { ["Header-Name"] = "value" } sent with every request
--   A registry taken out of `registries` has its hosts.toml removed, when nodeinit wrote it (its
--   first line says so; files of others stay), and its directory too once empty.
--   restart     restart containerd when a file changed (default true). Running containers are
--               not stopped by a restart.
--
-- When: step "mirrors" runs once, and again whenever the parameters change. A failed restart fails
-- the step; the restart is remembered (/run/nodeinit/containerd-mirror.restart) and retried.

local params = {
  registries = {
    ["docker.io"] = {
      hosts = {
        { url = "https://mirror.example.internal", capabilities = { "pull", "resolve" } },
      },
    },
  },
  restart = true,
}

-- Everything below is the recipe; there is nothing to edit.

local CERTS_D = "/etc/containerd/certs.d"
local PENDING = "/run/nodeinit/containerd-mirror.restart"
local HEADER = "# Written by nodeinit (recipe containerd-mirror); edits are overwritten.\n"

-- A TOML basic string.
local function q(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(c)
    local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r" }
    return named[c] or string.format("\\u%04X", c:byte())
  end) .. '"'
end

local function qlist(t)
  local out = {}
  for i, v in ipairs(t) do out[i] = q(v) end
  return "[" .. table.concat(out, ", ") .. "]"
end

local function sorted(t)
  local keys = {}
  for k in pairs(t or {}) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local function registry_name_ok(r)
  return type(r) == "string" and r:match("^[%w_][%w._:%[%]-]*$") ~= nil and not r:find("%.%.")
end

-- hosts.toml for one registry; problems raise while the file loads, so `nodeinit lint` sees them.
local function hosts_toml(name, reg)
  local where = "params.registries[" .. q(name) .. "]"
  if not registry_name_ok(name) then error(where .. ": not a registry name", 0) end
  if type(reg) ~= "table" or type(reg.hosts) ~= "table" then error(where .. ": needs hosts = { ... }", 0) end
  local lines = {}
  local server = reg.server
  if server == nil then
    server = name == "docker.io" and "https://registry-1.docker.io" or name ~= "_default" and "https://" .. name or false
  end
  if server then
    if type(server) ~= "string" or not server:match("^https?://") then error(where .. ".server must be an http(s) URL", 0) end
    lines[#lines + 1] = "server = " .. q(server)
  end
  for i, h in ipairs(reg.hosts) do
    local hw = where .. ".hosts[" .. i .. "]"
    if type(h) ~= "table" or type(h.url) ~= "string" or not h.url:match("^https?://[^%s]+$") then
      error(hw .. ": needs url = \"https://...\"", 0)
    end
    lines[#lines + 1] = ""
    lines[#lines + 1] = "[host." .. q(h.url) .. "]"
    lines[#lines + 1] = "  capabilities = " .. qlist(h.capabilities or { "pull", "resolve" })
    if h.ca ~= nil then
      lines[#lines + 1] = "  ca = " .. (type(h.ca) == "table" and qlist(h.ca) or q(h.ca))
    end
    if h.skip_verify ~= nil then
      if type(h.skip_verify) ~= "boolean" then error(hw .. ".skip_verify must be true or false", 0) end
      lines[#lines + 1] = "  skip_verify = " .. tostring(h.skip_verify)
    end
    if h.override_path ~= nil then
      if type(h.override_path) ~= "boolean" then error(hw .. ".override_path must be true or false", 0) end
      lines[#lines + 1] = "  override_path = " .. tostring(h.override_path)
    end
    if h.header ~= nil then
      if type(h.header) ~= "table" then error(hw .. ".header must be { [\"Name\"] = \"value\" }", 0) end
      lines[#lines + 1] = "  [host." .. q(h.url) .. ".header]"
      for _, k in ipairs(sorted(h.header)) do
        lines[#lines + 1] = "    " .. q(k) .. " = " .. q(h.header[k])
      end
    end
  end
  return HEADER .. table.concat(lines, "\n") .. "\n"
end

local function build(p)
  if p.remove ~= nil then error("params.remove is gone: a registry left out of registries is removed", 0) end
  local files = {}
  for _, name in ipairs(sorted(p.registries)) do
    files[#files + 1] = { dir = CERTS_D .. "/" .. name, content = hosts_toml(name, p.registries[name]) }
  end
  return files
end

local built, files = pcall(build, params)
if not built then error(files) end
local restart = params.restart ~= false

-- The registry directories holding a hosts.toml we wrote that no longer has a registry in params.
local function stale()
  local wanted, gone = {}, {}
  for _, name in ipairs(sorted(params.registries)) do wanted[name] = true end
  local names, err, errno = file.list(CERTS_D)
  if not names then
    if errno == 2 then return gone end -- no certs.d yet: nothing of ours there
    error(err, 0)
  end
  for _, name in ipairs(names) do
    local dir = CERTS_D .. "/" .. name
    local content = not wanted[name] and file.read(dir .. "/hosts.toml")
    if content and content:sub(1, #HEADER) == HEADER then gone[#gone + 1] = dir end
  end
  return gone
end

recipe "containerd-mirror" {
  step "mirrors" {
    timeout = 180,
    function()
      local changed = {}
      for _, f in ipairs(files) do
        must(file.mkdir(f.dir, { parents = true }))
        if must(file.write(f.dir .. "/hosts.toml", f.content, { mode = "0644" })) then changed[#changed + 1] = f.dir end
      end
      for _, dir in ipairs(stale()) do
        if must(file.remove(dir .. "/hosts.toml")) then changed[#changed + 1] = dir end
        -- The directory may hold a CA file of the operator's: then it stays.
        local _, _, errno = file.remove(dir)
        if errno and errno ~= 39 then log.warn("cannot remove the registry directory", { path = dir }) end
      end
      if not restart then return end
      -- A change whose restart failed is remembered, so the retry restarts even though the files
      -- are then as wanted. /run: a reboot restarts containerd anyway.
      if #changed > 0 then
        must(file.mkdir("/run/nodeinit", { parents = true }))
        must(file.write(PENDING, table.concat(changed, "\n") .. "\n"))
      end
      if must(file.exists(PENDING)) then
        exec.ok { "systemctl", "restart", "containerd", timeout = 120 }
        must(file.remove(PENDING))
        log.info("containerd restarted for its registry configuration")
      end
    end },
}
