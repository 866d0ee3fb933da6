---@meta nodeinit.log
-- LuaLS annotations for nodeinit's `log` module (not embedded in the binary: editors read it).
-- In a recipe `log` is a global; `require("nodeinit.log")` gives the same table.

---nodeinit's own log lines (stderr): a timestamp, the level, the message, `step=<recipe/step>`,
---then the fields sorted by name; one JSON object a line with `--log-format json`.
---`print(...)` also logs, at info level, its arguments joined by tabs.
---@class nodeinit.log
log = {}

---Field values are converted with tostring; up to 16 fields. Keys must be strings.
---@alias nodeinit.LogFields table<string, any>

---Not shown at nodeinit's default level (info).
---@param msg string
---@param fields? nodeinit.LogFields
function log.debug(msg, fields) end

---```lua
---log.info("mirror configured", {registry = "docker.io"})
---```
---@param msg string
---@param fields? nodeinit.LogFields
function log.info(msg, fields) end

---@param msg string
---@param fields? nodeinit.LogFields
function log.warn(msg, fields) end

---Logs at error level; it does not stop the step (raise with `error()` for that).
---@param msg string
---@param fields? nodeinit.LogFields
function log.error(msg, fields) end

return log
