-- hugepages: persistent huge pages (vm.nr_hugepages, per page size and per NUMA node through /sys)
-- and transparent huge pages (/sys/kernel/mm/transparent_hugepage/enabled and defrag), set once per
-- boot: none of them survives a reboot. The kubelet reports the pages as hugepages-<size>
-- resources; restart it after the first allocation on a node, as it reads them at start.
--
-- Parameters (edit `params` below when you copy this file into your ConfigMap); false leaves a
-- setting as the kernel has it:
--   nr_hugepages  pages of the default size (2 MiB on x86-64), i.e. the sysctl vm.nr_hugepages.
--   sizes         size = pages, for other sizes: { ["1048576kB"] = 4 } writes
--                 /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages. Applied after
--                 nr_hugepages. 1 GiB pages are best reserved on the kernel command line, where
--                 memory is not yet fragmented.
--   nodes         NUMA node = { size = pages }: { [0] = { ["2048kB"] = 512 } } writes
--                 /sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages.
--                 Applied last.
--   strict        true: fail the step when the kernel allocated fewer pages than asked (its memory
--                 is too fragmented), so the node does not turn Ready; false: log a warning.
--   thp_enabled   transparent huge pages: "always", "madvise" or "never".
--   thp_defrag    "always", "defer", "defer+madvise", "madvise" or "never".
--
-- When: steps "hugepages" and "transparent-hugepages" run on every boot (when = "boot") and when
-- the parameters change.

local params = {
  nr_hugepages = false,
  sizes = {},
  nodes = {},
  strict = true,
  thp_enabled = "madvise",
  thp_defrag = "madvise",
}

-- Everything below is the recipe; there is nothing to edit.

local THP = "/sys/kernel/mm/transparent_hugepage/"

-- The list of { path, pages } to write (nr_hugepages first, then sizes, then nodes); problems
-- raise while the file loads, so `nodeinit lint` reports them.
local function build(p)
  local function count(v, what)
    if math.type(v) ~= "integer" or v < 0 then error(what .. " must be a whole number of pages", 0) end
    return v
  end
  local function size(s, what)
    if type(s) ~= "string" or not s:match("^%d+kB$") then error(what .. ": sizes are like \"2048kB\"", 0) end
    return s
  end
  local function sorted(t)
    local keys = {}
    for k in pairs(t or {}) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    return keys
  end
  local pages = {}
  if p.nr_hugepages then pages.default = count(p.nr_hugepages, "params.nr_hugepages") end
  for _, s in ipairs(sorted(p.sizes)) do
    local what = "params.sizes[" .. tostring(s) .. "]"
    pages[#pages + 1] = { path = "/sys/kernel/mm/hugepages/hugepages-" .. size(s, what) .. "/nr_hugepages",
                          pages = count(p.sizes[s], what) }
  end
  for _, n in ipairs(sorted(p.nodes)) do
    local what = "params.nodes[" .. tostring(n) .. "]"
    if math.type(n) ~= "integer" or n < 0 or type(p.nodes[n]) ~= "table" then
      error(what .. ": nodes are { [0] = { [\"2048kB\"] = pages } }", 0)
    end
    for _, s in ipairs(sorted(p.nodes[n])) do
      local w = what .. "[" .. tostring(s) .. "]"
      pages[#pages + 1] = { path = string.format("/sys/devices/system/node/node%d/hugepages/hugepages-%s/nr_hugepages", n, size(s, w)),
                            pages = count(p.nodes[n][s], w) }
    end
  end
  local thp = {}
  for _, k in ipairs({ "enabled", "defrag" }) do
    local v = p["thp_" .. k]
    if v then
      if type(v) ~= "string" or not v:match("^[%w+]+$") then error("params.thp_" .. k .. " must be a word such as \"madvise\"", 0) end
      thp[#thp + 1] = { path = THP .. k, value = v }
    end
  end
  return pages, thp
end

local built, pages, thp = pcall(build, params)
if not built then error(pages) end
local strict = params.strict ~= false

-- A sysfs attribute: file.write gives it one write(), as `echo value > file` does.
local function write_attr(path, value)
  must(file.write(path, value .. "\n"))
end

-- "always [madvise] never" -> "madvise"; a file holding one plain word is that word.
local function selected(text)
  return text:match("%[([^%]]+)%]") or text:match("^%s*(.-)%s*$")
end

recipe "hugepages" {
  step "hugepages" {
    when = "boot",
    timeout = 300, -- the kernel compacts memory to find huge pages, which takes a while when it is busy
    function()
      local short = {}
      if pages.default then
        must(sysctl.set("vm.nr_hugepages", pages.default))
        local got = tonumber(must(sysctl.get("vm.nr_hugepages")))
        if got < pages.default then short[#short + 1] = string.format("vm.nr_hugepages: %d of %d", got, pages.default) end
      end
      for _, p in ipairs(pages) do
        local cur, err = file.read(p.path)
        if not cur then
          error(err .. " (no such page size or NUMA node on this machine?)", 0)
        end
        if tonumber(cur) ~= p.pages then
          write_attr(p.path, tostring(p.pages))
          log.info("huge pages set", { path = p.path, pages = p.pages })
        end
        local got = tonumber(must(file.read(p.path)))
        if got < p.pages then short[#short + 1] = string.format("%s: %d of %d", p.path, got, p.pages) end
      end
      if #short > 0 then
        local msg = "the kernel allocated fewer huge pages than asked (memory too fragmented?): " .. table.concat(short, "; ")
        if strict then error(msg, 0) end
        log.warn(msg)
      end
    end },

  step "transparent-hugepages" {
    when = "boot",
    function()
      for _, t in ipairs(thp) do
        local cur = must(file.read(t.path))
        -- The kernel lists the values it takes: refuse others before writing.
        local known = {}
        for w in cur:gsub("[%[%]]", " "):gmatch("%S+") do known[w] = true end
        if cur:find("%[") and not known[t.value] then
          error(string.format("%s: %q is not one of: %s", t.path, t.value, (cur:gsub("%s+$", ""))), 0)
        end
        if selected(cur) ~= t.value then
          write_attr(t.path, t.value)
          log.info("transparent huge pages set", { path = t.path, value = t.value })
        end
      end
    end },
}
