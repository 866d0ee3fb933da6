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
--             as systemd-sysctl does. A later line for the same key wins. A glob in a key
--             ("net.ipv4.conf.*.rp_filter") sets every existing key it matches, except keys set
--             explicitly (in text or settings) and keys excluded by a "-key" line without a value:
--             systemd's 50-default.conf can be pasted as it is. A malformed line fails `nodeinit lint`.
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

-- The parameters as one sysctl.d text: params.text, then one line per setting (so a setting is an
-- explicit key, which wins over the text's globs and earlier lines). sysctl.parse_conf (C, the
-- parser the YAML sysctl step uses too) checks it while the file loads, so `nodeinit lint` reports a
-- problem with this file's name; `from` names where each line came from.
local function build(p)
  local text = p.text or ""
  if type(text) ~= "string" then error("params.text must be a string", 0) end
  if text ~= "" and text:sub(-1) ~= "\n" then text = text .. "\n" end
  local _, n_text = text:gsub("\n", "")
  local lines, from = { text }, {}
  local keys = {}
  for k in pairs(p.settings or {}) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for i, k in ipairs(keys) do
    local v, where = p.settings[k], "params.settings[" .. tostring(k) .. "]"
    if type(k) ~= "string" or k == "" or k:find("[%s%c=]") or k:sub(1, 1) == "-" then
      error(string.format("%s: bad key %q", where, tostring(k)), 0)
    end
    if type(v) == "boolean" then
      v = v and "1" or "0"
    elseif math.type(v) == "integer" then
      v = string.format("%d", v)
    elseif type(v) ~= "string" or v:find("[\r\n]") then
      error(where .. ": the value must be a one-line string, an integer or a boolean", 0)
    end
    lines[#lines + 1] = k .. " = " .. v .. "\n"
    from[n_text + i] = where
  end
  local all = table.concat(lines)
  local ok, err, line = sysctl.parse_conf(all)
  if not ok then
    if from[line] then error(string.format("%s: bad key", from[line]), 0) end
    error(string.format("params.text line %d: expected 'key = value' (%s)", line, err), 0)
  end
  local function where(line_no) return from[line_no] or ("params.text line " .. line_no) end
  return all, where
end

local built, conf, where = pcall(build, params)
if not built then error(conf) end

recipe "sysctl" {
  step "apply" {
    when = "boot",
    function()
      local failed, changed = {}, 0
      -- globs expanded against this host, explicit keys excluded from them, exclusions applied
      local entries = sysctl.resolve_conf(conf)
      for _, e in ipairs(entries) do
        -- pcall: a key the kernel refuses to take as a name raises; it counts as a failure too.
        local called, ok, err = pcall(sysctl.set, e.key, e.value)
        if not called then ok, err = nil, ok end
        if ok == nil and e.ignore_failure then
          log.warn("sysctl not set; ignored ('-' before the key)", { key = e.key, error = err })
        elseif ok == nil then
          failed[#failed + 1] = string.format("%s (%s)", tostring(err), where(e.line))
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
