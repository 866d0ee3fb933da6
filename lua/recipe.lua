-- The recipe DSL (`recipe "x" { step "y" { ... } }`) and the YAML recipe form, turned into one shape
-- the C engine runs: recipes of steps with a body, an optional check, and fingerprint material.
-- Runs trusted; recipes themselves never see this module. A step's fingerprint comes from
-- M.fingerprint_begin/finish, which the loader sets to core/fingerprint.c's (the one definition).

local M = {}

local WHENS = { once = true, boot = true, always = true }
local STEP_KEYS = { when = true, check = true, only = true, timeout = true, sensitive = true, params = true, description = true }

-- step() hands the recipe an empty, locked handle and keeps the step itself here, by handle (weak
-- keys: a dropped handle goes with its step). No recipe can read a step's fields, change them after
-- they were checked, or make a table recipe{} takes for a step: only this map knows real ones.
local made = setmetatable({}, { __mode = "k" })
local HANDLE_MT = {
  __metatable = "nodeinit.Step",
  __newindex = function() error("a step cannot be changed once made", 2) end,
  __tostring = function(h) return made[h] and ("step '" .. made[h].name .. "'") or "step" end,
}
local function new_handle(s)
  local h = setmetatable({}, HANDLE_MT)
  made[h] = s
  return h
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return keys
end

local function name_problem(what, name)
  if type(name) ~= "string" or name == "" then return what .. " name must be a non-empty string" end
  -- State records keep names as UTF-8 (state.c refuses anything else): say so here, not mid-apply.
  if not utf8.len(name) then return what .. " name is not valid UTF-8" end
  if #name > 128 then return what .. " name is longer than 128 bytes" end
  if name:find("[%c/]") then
    -- shown escaped: the message reaches a terminal
    local shown = name:gsub("[%c\\]", function(c) return string.format("\\x%02x", c:byte()) end)
    return what .. " name '" .. shown .. "' must not contain '/' or control characters"
  end
  -- Printable only: no C1 controls (U+0080..U+009F), line or paragraph separators, bidi overrides or
  -- isolates; log.c would escape them, but a name is shown in status and plan and must read as written.
  for _, c in utf8.codes(name) do
    if (c >= 0x80 and c <= 0x9f) or (c >= 0x2028 and c <= 0x202e) or (c >= 0x2066 and c <= 0x2069) then
      return string.format("%s name must be printable, not hold U+%04X", what, c)
    end
  end
end

local function recipe_name_problem(name)
  local p = name_problem("recipe", name)
  if p then return p end
  if not name:match("^[%w._-]+$") or name:sub(1, 1) == "." then
    return "recipe name '" .. name .. "' may hold only letters, digits, '.', '_' and '-', and not start with '.'"
  end
end

-- A collector per file: recipes in written order, and every problem found (lint reports them all).
local function new_file(src, file)
  return { src = src, file = file, chunkname = "@" .. file, recipes = {}, problems = {} }
end

-- A problem at line (and column, when known): lint prints FILE:LINE:COL: or FILE:LINE:, the forms
-- editors and CI problem matchers parse. With a column the message goes out whole (raw).
local function problem(fc, line, msg, col)
  col = col or (fc.cols and line and fc.cols[line])
  if col and col > 0 and line and line > 0 then
    fc.problems[#fc.problems + 1] = { msg = string.format("%s:%d:%d: %s", fc.file, line, col, msg), raw = true }
    return
  end
  fc.problems[#fc.problems + 1] = { line = line or 0, msg = msg }
end

-- Checks the recipe as a whole and appends it. Each step's fingerprint is begun here and finished by
-- finish_fingerprints once the file's globals are known.
local function add_recipe(fc, name, line, steps)
  local p = recipe_name_problem(name)
  if p then problem(fc, line, p) return end
  local r = { name = name, file = fc.file, line = line, steps = {} }
  local names = {}
  for _, s in ipairs(steps) do
    if s.name and names[s.name] then
      problem(fc, s.line, string.format("recipe '%s': duplicate step name '%s' (first at line %d)", name, s.name, names[s.name]))
    elseif s.name then
      names[s.name] = s.line
      if not s.invalid then
        local ok, h = pcall(M.fingerprint_begin, name, s.name, s.parts, fc)
        s.parts = nil
        if ok then
          s.fp = h
          r.steps[#r.steps + 1] = s
        elseif h == "not enough memory" then
          error(h, 0)
        else
          problem(fc, s.line, string.format("recipe '%s': step '%s': %s", name, s.name, tostring(h)))
        end
      end
    end
  end
  fc.recipes[#fc.recipes + 1] = r
end

-- Ends every step's fingerprint with the file-level globals its functions name (nil: none).
local function finish_fingerprints(fc, globals)
  fc.done = true
  for _, r in ipairs(fc.recipes) do
    local kept = {}
    for _, s in ipairs(r.steps) do
      local ok, hex = pcall(M.fingerprint_finish, s.fp, globals)
      s.fp = nil
      if ok then
        s.fingerprint = hex
        kept[#kept + 1] = s
      elseif hex == "not enough memory" then
        error(hex, 0)
      else
        problem(fc, s.line, string.format("recipe '%s': step '%s': %s", r.name, s.name, tostring(hex)))
      end
    end
    r.steps = kept
  end
end

-- What the file's top-level code set in its environment: keys new or changed since env was made
-- (so the sandbox's own modules and functions are not globals of the file). Raw: a recipe's
-- metatable on _ENV does not decide what counts.
local function snapshot(env)
  local t = {}
  for k, v in next, env do t[k] = v end
  return t
end

local function file_globals(env, before)
  local g = {}
  for k, v in next, env do
    if type(k) == "string" and not rawequal(before[k], v) then g[k] = v end
  end
  return g
end

-- The Lua DSL: `step` and `recipe` for one file's environment.
local function install_dsl(env, fc)
  local function caller_line(level) return debug.getinfo(level + 1, "l").currentline end

  local function at_load()
    if fc.done then error("step and recipe declare steps while the file loads, not later", 3) end
  end

  env.step = function(name)
    at_load()
    local line = caller_line(2)
    local p = name_problem("step", name)
    if p then error(p, 2) end
    return function(spec)
      if type(spec) ~= "table" then
        problem(fc, line, string.format("step '%s': expected a table { ... }, got %s", name, type(spec)))
        return new_handle({ name = name, line = line, invalid = true })
      end
      local s = { name = name, line = line, when = "once", kind = "lua" }
      local body
      for k, v in pairs(spec) do
        if k == 1 then
          body = v
        elseif type(k) ~= "string" or not STEP_KEYS[k] then
          problem(fc, line, string.format("step '%s': unknown key '%s'", name, tostring(k)))
        end
      end
      if type(body) ~= "function" then
        problem(fc, line, string.format("step '%s': needs a function as its body", name))
        s.invalid = true
      end
      if spec.when ~= nil and not WHENS[spec.when] then
        problem(fc, line, string.format("step '%s': when must be once, boot or always, not '%s'", name, tostring(spec.when)))
        s.invalid = true
      end
      if spec.check ~= nil and type(spec.check) ~= "function" then
        problem(fc, line, string.format("step '%s': check must be a function", name))
        s.invalid = true
      end
      if spec.only ~= nil and type(spec.only) ~= "function" then
        problem(fc, line, string.format("step '%s': only must be a function (true: the step applies to this node)", name))
        s.invalid = true
      end
      local timeout_ms, why
      if spec.timeout ~= nil then
        timeout_ms, why = M.timeout_ms(spec.timeout)
        if not timeout_ms then
          problem(fc, line, string.format("step '%s': %s", name, why))
          s.invalid = true
        end
      end
      if spec.sensitive ~= nil and type(spec.sensitive) ~= "boolean" then
        problem(fc, line, string.format("step '%s': sensitive must be true or false", name))
        s.invalid = true
      end
      if s.invalid then return new_handle(s) end
      s.when = spec.when or "once"
      s.timeout = spec.timeout
      s.timeout_ms = timeout_ms
      s.sensitive = spec.sensitive or false
      s.check = spec.check
      s.only = spec.only
      local params = spec.params
      s.run = function() return body(params) end
      -- only is nil for steps without a guard, so their material (and fingerprint) is what it was
      s.parts = { body = body, check = spec.check, when = s.when, timeout = s.timeout, sensitive = s.sensitive, params = params,
                  only = spec.only }
      return new_handle(s)
    end
  end

  env.recipe = function(name)
    at_load()
    local line = caller_line(2)
    return function(steps)
      if type(steps) ~= "table" then
        problem(fc, line, string.format("recipe '%s': expected a list of steps { step \"...\" { ... }, ... }", tostring(name)))
        return
      end
      local list = {}
      for k, h in pairs(steps) do
        local s = type(k) == "number" and made[h]
        if not s then
          problem(fc, line, string.format("recipe '%s': entry %s is not a step \"...\" { ... }", tostring(name), tostring(k)))
        elseif s.recipe then
          problem(fc, line, string.format("recipe '%s': step '%s' is already in recipe '%s'", tostring(name), s.name, s.recipe))
        else
          s.recipe = tostring(name)
          list[k] = s -- invalid ones too: their names still count for duplicates
        end
      end
      local ordered = {}
      for _, k in ipairs(sorted_keys(list)) do ordered[#ordered + 1] = list[k] end
      add_recipe(fc, name, line, ordered)
    end
  end
end

-- An error from loading or running a recipe file. Lua's own messages say "file:line:" already and
-- go out raw; others (a binary chunk refused, error(x, 0), an error object) get the file name from
-- C. Running out of memory goes up to ni_lua_pcall, which says the limit was hit.
local function load_problem(fc, e)
  if e == "not enough memory" then error(e, 0) end
  local msg = (type(e) == "string" or type(e) == "number") and tostring(e)
    or string.format("(error object is a %s value)", type(e))
  fc.problems[#fc.problems + 1] = { msg = msg, raw = msg:sub(1, #fc.file + 1) == fc.file .. ":" }
end

-- Loads a Lua recipe file in env (a fresh sandbox). Returns recipes and problems.
function M.load_lua(src, file, env)
  local fc = new_file(src, file)
  install_dsl(env, fc)
  local chunk, err = load(src, fc.chunkname, "t", env)
  if not chunk then
    load_problem(fc, err)
    return fc.recipes, fc.problems
  end
  local before = snapshot(env)
  local ok, e = pcall(chunk)
  if not ok then load_problem(fc, e) end
  finish_fingerprints(fc, file_globals(env, before))
  return fc.recipes, fc.problems
end

-- YAML recipes ------------------------------------------------------------------------------------

local YAML_TOP = { recipe = true, steps = true, description = true }
local YAML_COMMON = { name = true, when = true, check = true, only = true, timeout = true, sensitive = true, description = true }
local YAML_KINDS = { "sysctl", "file", "exec", "script", "lua" }
local FILE_KEYS = { path = true, content = true, mode = true, owner = true, group = true }

-- A primitive's nil, message result becomes the step's error.
local function must(v, err, ...)
  if v == nil then error(err, 0) end
  return v, err, ...
end

local function scalar(v) return type(v) == "string" or type(v) == "number" or type(v) == "boolean" end

local function sorted_pairs(t)
  local keys, i = sorted_keys(t), 0
  return function()
    i = i + 1
    if keys[i] ~= nil then return keys[i], t[keys[i]] end
  end
end

-- Runs argv (a list) with the step's timeout; a non-zero exit fails the step.
local function run_argv(env, argv, timeout, what)
  local spec = {}
  for i, a in ipairs(argv) do spec[i] = tostring(a) end
  local r = must(env.exec.run(spec))
  if r.timed_out then error(string.format("%s timed out after %s s", what, tostring(timeout)), 0) end
  if r.code ~= 0 then
    local tail = (r.stderr or ""):sub(-400):gsub("%s+$", "")
    error(string.format("%s exited with code %d%s", what, r.code, tail ~= "" and (": " .. tail) or ""), 0)
  end
  return true
end

local function mask(step, v) return step.sensitive and "(sensitive)" or tostring(v) end

-- Each YAML kind: check its parameters (problems go to fc), and build run and describe.
local yaml_kinds = {}

-- sysctl: text (a string) is sysctl.d text, with systemd's rules (sysctl.apply_conf in C).
local function yaml_sysctl_text(fc, line, name, p, env, step)
  local ok, err = env.sysctl.parse_conf(p)
  if not ok then return problem(fc, line, string.format("step '%s': sysctl: %s", name, err)) end
  step.run = function() must(env.sysctl.apply_conf(p)) return true end
  step.describe = function()
    local lines = {}
    for _, a in ipairs(env.sysctl.resolve_conf(p)) do
      local cur = env.sysctl.get(a.key)
      local same = cur and cur:gsub("%s+", " ") == a.value:gsub("%s+", " ")
      lines[#lines + 1] = string.format("sysctl %s: %s -> %s%s%s", a.key, cur and mask(step, cur) or "(missing)",
        mask(step, a.value), same and " (same)" or "", a.ignore_failure and " (failure ignored)" or "")
    end
    return lines
  end
  return true
end

function yaml_kinds.sysctl(fc, line, name, p, env, step)
  if type(p) == "string" then return yaml_sysctl_text(fc, line, name, p, env, step) end
  if type(p) ~= "table" or next(p) == nil then
    return problem(fc, line, string.format("step '%s': sysctl needs a mapping of key: value, or sysctl.d text", name))
  end
  for k, v in pairs(p) do
    if type(k) ~= "string" or not scalar(v) then
      return problem(fc, line, string.format("step '%s': sysctl entries must be key: scalar value", name))
    end
    if not env.sysctl.valid(k) then
      return problem(fc, line, string.format("step '%s': invalid sysctl key '%s' (want a.b.c or a/b/c, no empty, "
        .. "'.' or '..' parts, no blanks)", name, k))
    end
  end
  step.run = function()
    for k, v in sorted_pairs(p) do
      must(env.sysctl.set(k, type(v) == "boolean" and (v and "1" or "0") or tostring(v)))
    end
    return true
  end
  step.describe = function()
    local lines = {}
    for k, v in sorted_pairs(p) do
      local cur = env.sysctl.get(k)
      local want = type(v) == "boolean" and (v and "1" or "0") or tostring(v)
      local same = cur and cur:gsub("%s+", " ") == want:gsub("%s+", " ")
      lines[#lines + 1] = string.format("sysctl %s: %s -> %s%s", k, cur and mask(step, cur) or "(missing)",
        mask(step, want), same and " (same)" or "")
    end
    return lines
  end
  return true
end

function yaml_kinds.file(fc, line, name, p, env, step)
  if type(p) ~= "table" or type(p.path) ~= "string" or type(p.content) ~= "string" then
    return problem(fc, line, string.format("step '%s': file needs path and content strings", name))
  end
  for k in pairs(p) do
    if not FILE_KEYS[k] then
      return problem(fc, line, string.format("step '%s': file: unknown key '%s'", name, tostring(k)))
    end
  end
  -- Unquoted, YAML 1.2 reads 0o640 as the integer 416, which would pass as mode "416": strings only.
  if p.mode ~= nil and type(p.mode) ~= "string" then
    return problem(fc, line, string.format("step '%s': file: mode must be a quoted octal string like \"0644\" "
      .. "(unquoted, YAML reads 0o640 and 0640 as numbers)", name))
  end
  if p.mode ~= nil and not p.mode:match("^0?[0-7][0-7][0-7][0-7]?$") then
    return problem(fc, line, string.format("step '%s': file: mode must be octal like \"0644\"", name))
  end
  local opts = { mode = p.mode and tostring(p.mode), owner = p.owner and tostring(p.owner), group = p.group and tostring(p.group) }
  step.run = function() must(env.file.write(p.path, p.content, opts)) return true end
  step.describe = function()
    local cur = env.file.exists(p.path) and env.file.read(p.path)
    local state = not cur and "absent" or (cur == p.content and "same content" or "differs")
    return { string.format("file %s: %s -> %d bytes%s%s", p.path, state, #p.content,
      opts.mode and (" mode " .. opts.mode) or "", step.sensitive and " (content sensitive)" or "") }
  end
  return true
end

function yaml_kinds.exec(fc, line, name, p, env, step)
  if type(p) ~= "table" or #p == 0 then
    return problem(fc, line, string.format("step '%s': exec needs a list: [command, arg, ...]", name))
  end
  for _, a in ipairs(p) do
    if not scalar(a) then return problem(fc, line, string.format("step '%s': exec arguments must be scalars", name)) end
  end
  step.run = function() return run_argv(env, p, step.timeout, tostring(p[1])) end
  return true
end

function yaml_kinds.script(fc, line, name, p, env, step)
  if type(p) ~= "string" then
    return problem(fc, line, string.format("step '%s': script needs a string (run with the host's bash)", name))
  end
  step.run = function() return run_argv(env, { "bash", "-c", p }, step.timeout, "script") end
  return true
end

function yaml_kinds.lua(fc, line, name, p, env, step)
  if type(p) ~= "string" then return problem(fc, line, string.format("step '%s': lua needs a string", name)) end
  local chunk, err = load(p, "=" .. fc.file .. ":" .. line .. " (step " .. name .. ")", "t", env)
  if not chunk then return problem(fc, line, string.format("step '%s': %s", name, err)) end
  step.run = function() chunk() return true end
  return true
end

-- only: a Lua expression; false means the step does not apply to this node (recorded skipped).
local function yaml_only(fc, line, name, c, env, step)
  if type(c) ~= "string" then
    return problem(fc, line, string.format("step '%s': only must be a Lua expression (a string)", name))
  end
  local chunk, err = load("return " .. c, "=" .. fc.file .. ":" .. line .. " (only of " .. name .. ")", "t", env)
  if not chunk then return problem(fc, line, string.format("step '%s': only: %s", name, err)) end
  step.only = chunk
  return true
end

-- check: a Lua expression (true means already in the desired state), or { exec: [...] } (exit 0 means so).
local function yaml_check(fc, line, name, c, env, step)
  if type(c) == "string" then
    local chunk, err = load("return " .. c, "=" .. fc.file .. ":" .. line .. " (check of " .. name .. ")", "t", env)
    if not chunk then return problem(fc, line, string.format("step '%s': check: %s", name, err)) end
    step.check = chunk
    return true
  elseif type(c) == "table" and type(c.exec) == "table" and #c.exec > 0 then
    step.check = function()
      local argv = {}
      for i, a in ipairs(c.exec) do argv[i] = tostring(a) end
      local r = env.exec.run(argv)
      return r ~= nil and r.code == 0
    end
    return true
  end
  return problem(fc, line, string.format("step '%s': check must be a Lua expression or { exec: [...] }", name))
end

local function yaml_step(fc, recipe_name, node, line, env, line_of)
  if type(node) ~= "table" then return problem(fc, line, "each step must be a mapping") end
  local name = node.name
  local p = name_problem("step", name)
  if p then return problem(fc, line, p) end
  local kinds = {}
  for k in pairs(node) do
    if type(k) ~= "string" or not (YAML_COMMON[k] or yaml_kinds[k]) then
      problem(fc, line_of(node, k), string.format("step '%s': unknown key '%s'", name, tostring(k)))
    elseif yaml_kinds[k] then
      kinds[#kinds + 1] = k
    end
  end
  if #kinds ~= 1 then
    return problem(fc, line, string.format("step '%s': needs exactly one of %s", name, table.concat(YAML_KINDS, ", ")))
  end
  if node.when ~= nil and not WHENS[node.when] then
    return problem(fc, line, string.format("step '%s': when must be once, boot or always, not '%s'", name, tostring(node.when)))
  end
  local timeout_ms, why
  if node.timeout ~= nil then
    timeout_ms, why = M.timeout_ms(node.timeout)
    if not timeout_ms then return problem(fc, line, string.format("step '%s': %s", name, why)) end
  end
  if node.sensitive ~= nil and type(node.sensitive) ~= "boolean" then
    return problem(fc, line, string.format("step '%s': sensitive must be true or false", name))
  end
  local step = { name = name, line = line, when = node.when or "once", kind = kinds[1],
                 timeout = node.timeout, timeout_ms = timeout_ms, sensitive = node.sensitive or false }
  if not yaml_kinds[kinds[1]](fc, line, name, node[kinds[1]], env, step) then return end
  if node.check ~= nil and not yaml_check(fc, line, name, node.check, env, step) then return end
  if node.only ~= nil and not yaml_only(fc, line, name, node.only, env, step) then return end
  -- The step's own YAML node is what defines it: comments and the other steps do not count.
  step.parts = { yaml = node }
  return step
end

-- Loads a YAML recipe file. Returns recipes and problems, like load_lua.
function M.load_yaml(src, file, env)
  local fc = new_file(src, file)
  local doc, lines = env.yaml.decode(src, { positions = true })
  if doc == nil then
    -- "yaml: line L, column C: what" becomes FILE:L:C: what
    local l, c, what = tostring(lines):match("^yaml: line (%d+), column (%d+): (.*)$")
    if l and tonumber(l) > 0 then
      problem(fc, tonumber(l), "yaml: " .. what, tonumber(c))
    else
      problem(fc, 1, tostring(lines))
    end
    return fc.recipes, fc.problems
  end
  -- The line of a mapping, or of one of its keys when key is given.
  local function line_of(t, key)
    local pos = type(t) == "table" and lines and lines[t]
    return pos and (key ~= nil and pos.keys and pos.keys[key] or pos.line) or 0
  end
  -- A sequence decodes to a table too: only a mapping has key positions.
  if type(doc) ~= "table" or (lines and lines[doc] and not lines[doc].keys) then
    problem(fc, 1, "a YAML recipe is a mapping with recipe: and steps:")
    return fc.recipes, fc.problems
  end
  for k in pairs(doc) do
    if not YAML_TOP[k] then problem(fc, line_of(doc, k), string.format("unknown top-level key '%s'", tostring(k))) end
  end
  if type(doc.steps) ~= "table" then
    problem(fc, line_of(doc), "steps: must be a list of steps")
    return fc.recipes, fc.problems
  end
  -- the column each step's mapping starts at, so its problems read FILE:LINE:COL:
  fc.cols = {}
  for _, node in ipairs(doc.steps) do
    local pos = type(node) == "table" and lines and lines[node]
    if pos and pos.line and pos.column then fc.cols[pos.line] = pos.column end
  end
  local steps = {}
  for _, node in ipairs(doc.steps) do
    local s = yaml_step(fc, tostring(doc.recipe), node, line_of(node), env, line_of)
    if s then steps[#steps + 1] = s end
  end
  add_recipe(fc, doc.recipe, line_of(doc), steps)
  finish_fingerprints(fc, nil)
  return fc.recipes, fc.problems
end

return M
