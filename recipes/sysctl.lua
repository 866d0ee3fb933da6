-- sysctl: kernel parameters from a table and/or from text in sysctl.d(5) syntax, set once per boot
-- (the kernel forgets them at reboot). Only values that differ are written; net.* keys are the
-- host's (nodeinit sets them from the host's network namespace).
--
-- Parameters (edit `params` below when you copy this file into your ConfigMap):
--   settings  key = value. Keys dotted ("net.core.somaxconn") or slashed, for names holding dots
--             ("net/ipv4/conf/eth0.100/forwarding"); values strings or integers, true/false for
--             1/0. Applied after `text`: a key in both takes its value from here.
--   text      the content of a sysctl.d file, pasted as it is: one "key = value" a line; blank
--             lines and lines starting with '#' or ';' are skipped; a '-' before the key means
--             "a failure to set this one is logged and ignored" (its module is not loaded, say),
--             as systemd-sysctl does. A later line for the same key wins. Globs in keys ("*") are
--             not supported. A malformed line fails `nodeinit lint`.
--
-- When: step "apply" runs on every boot (when = "boot") and when the parameters change. A key that
-- cannot be set fails the step after all the others were tried; it is retried with back-off.

local params = {
  settings = {
    ["net.ipv4.ip_forward"] = 1,
    ["fs.inotify.max_user_instances"] = 8192,
    ["fs.inotify.max_user_watches"] = 524288,
  },
  text = [[
# Paste the content of /etc/sysctl.d/*.conf files here.
net.core.somaxconn = 4096
net.ipv4.tcp_keepalive_time = 600
# Exists only once nf_conntrack is loaded: '-' logs a failure instead of failing the step.
-net.netfilter.nf_conntrack_max = 1048576
]],
}

-- Everything below is the recipe; there is nothing to edit.

-- The parameters as one ordered list of { key, value, ignore, from }. A problem raises while the
-- file loads, so `nodeinit lint` reports it, with this file's name.
local function parse(p)
  local list = {}
  local function add(key, value, ignore, from)
    if key == "" or key:find("[%s%c]") then
      error(string.format("%s: bad key %q", from, key), 0)
    end
    if key:find("[*?%[]") then
      error(string.format("%s: globs in keys are not supported: %q", from, key), 0)
    end
    list[#list + 1] = { key = key, value = value, ignore = ignore, from = from }
  end

  local n = 0
  for line in ((p.text or "") .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local l = line:match("^%s*(.-)%s*$")
    if l ~= "" and not l:find("^[#;]") then
      local key, value = l:match("^([^=]-)%s*=%s*(.*)$")
      if not key then
        error(string.format("params.text line %d: expected 'key = value', got %q", n, line), 0)
      end
      local ignore = key:sub(1, 1) == "-"
      if ignore then key = key:sub(2):match("^%s*(.*)$") end
      add(key, value, ignore, "params.text line " .. n)
    end
  end

  local keys = {}
  for k in pairs(p.settings or {}) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local v, from = p.settings[k], "params.settings[" .. tostring(k) .. "]"
    if type(k) ~= "string" then error(from .. ": keys must be strings", 0) end
    if type(v) == "boolean" then
      v = v and "1" or "0"
    elseif math.type(v) == "integer" then
      v = string.format("%d", v)
    elseif type(v) ~= "string" then
      error(from .. ": the value must be a string, an integer or a boolean", 0)
    end
    add(k, v, false, from)
  end

  -- A later assignment of a key wins, as in sysctl.d; it keeps its own (later) place.
  local last, out = {}, {}
  for i, e in ipairs(list) do last[e.key] = i end
  for i, e in ipairs(list) do
    if last[e.key] == i then out[#out + 1] = e end
  end
  return out
end

local parsed, entries = pcall(parse, params)
if not parsed then error(entries) end

recipe "sysctl" {
  step "apply" {
    when = "boot",
    function()
      local failed, changed = {}, 0
      for _, e in ipairs(entries) do
        -- pcall: a key the kernel refuses to take as a name raises; it counts as a failure too.
        local called, ok, err = pcall(sysctl.set, e.key, e.value)
        if not called then ok, err = nil, ok end
        if ok == nil and e.ignore then
          log.warn("sysctl not set; ignored ('-' before the key)", { key = e.key, error = err })
        elseif ok == nil then
          failed[#failed + 1] = string.format("%s (%s)", tostring(err), e.from)
        elseif ok then
          changed = changed + 1
        end
      end
      log.info("sysctl settings applied", { keys = #entries, changed = changed, failed = #failed })
      if #failed > 0 then
        error(string.format("%d of %d sysctls not set: %s", #failed, #entries, table.concat(failed, "; ")), 0)
      end
    end },
}
