---@meta nodeinit.yaml
-- LuaLS annotations for nodeinit's `yaml` module (not embedded in the binary: editors read it).
-- In a recipe `yaml` is a global; `require("nodeinit.yaml")` gives the same table.

---@class nodeinit.yaml
yaml = {}

---The value of a YAML null (`~`, `null`, an empty value) in decoded data. It is truthy, like any
---value that is not nil or false: test `v == yaml.null`. It keeps keys and list positions that a
---nil would lose.
---@type userdata
yaml.null = nil

---@class nodeinit.YamlOptions
---@field positions? boolean|integer Also return a table from every decoded table to where it starts;
---an integer N: only for tables nested at most N deep (the document's own table is 0).

---@class nodeinit.YamlPosition
---@field line integer 1-based
---@field column integer 1-based
---@field keys? table<any, integer> for a mapping: the line of each of its keys

---Decodes one YAML document (YAML 1.2 core schema):
--- - mappings become tables, sequences arrays (1-based), strings stay strings;
--- - unquoted scalars that are YAML 1.2 ints, floats or bools become Lua integers, floats and
---   booleans (`60` -> 60, `1.5` -> 1.5, `true` -> true); `yes`, `on`, `0644`-as-octal are
---   YAML 1.1 and do not apply: `0644` is the integer 644, `yes` the string "yes". Quote what
---   must stay a string (file modes: `mode: "0644"`);
--- - quoted scalars and `!!str` are always strings; `!!int` etc. are honoured, other tags refused;
--- - nulls become `yaml.null`;
--- - anchors and aliases work: each alias is an independent copy. The document's size with
---   aliases expanded is limited (262144 nodes), and so is nesting (64 levels);
--- - an empty text is `yaml.null`; a second document ("---") is an error;
--- - duplicate keys, null keys and mappings or sequences as keys are errors.
---
---Bad input returns `nil, "yaml: line L, column C: <problem>"` (it is data, not a bug in the
---recipe); a non-string argument or an unknown option raises.
---
---With `{positions = true}` a second result maps each decoded table (mapping or sequence) to
---`{line =, column =}` where it starts in the text (for a mapping, its first key):
---```lua
---local doc, pos = yaml.decode(text, {positions = true})
---for _, step in ipairs(doc.steps) do log.info("step", {name = step.name, line = pos[step].line}) end
---```
---@param text string
---@param opts? nodeinit.YamlOptions
---@return any|nil value
---@return string|table<table, nodeinit.YamlPosition>|nil errmsg_or_positions
function yaml.decode(text, opts) end

return yaml
