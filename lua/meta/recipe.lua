---@meta
-- LuaLS annotations for nodeinit recipes: the DSL globals. Point your editor's Lua language server at
-- lua/meta/ (e.g. "workspace.library": ["<checkout>/lua/meta"]) to get completion and type checks.

-- When code runs. A recipe file's top-level code runs at every load: in `lint`, `plan`, `apply`
-- and on each of `run`'s reloads. It may compute, use `yaml.decode`, `sysctl.valid`, `log` and
-- `print`, and declare recipes and steps; every function that reads or changes the host or runs a
-- command (`file.*`, `sysctl.get/set`, `exec.*`, `ns.*`, `kube.node`) raises "<name>: only inside a
-- step" there, with its file and line. So a load never touches the host and is the same on every node and in
-- CI; pick per-node behaviour inside steps (`check`). Steps' functions (body, `check`) run in
-- `apply`/`run`, and in `plan` in check mode: primitives that would change something report
-- current -> desired and change nothing, commands are named and not run. `setmetatable` refuses a
-- metatable with `__gc` (finalizers would run outside any step).

---@alias nodeinit.When "once"|"boot"|"always"

---@class nodeinit.StepSpec
---@field [1] fun(params: any): any                the step's body; raising an error fails the step
---@field when? nodeinit.When                    once (default: until the step's fingerprint changes), boot (once per host boot), always (every pass)
---@field check? fun(): boolean                  already in the desired state? then the step is recorded as kept and its body does not run
---@field only? fun(): boolean                   does the step apply to this node? false: recorded skipped (converged), neither check nor body runs
---@field timeout? number                        seconds the whole step may take (0 < timeout <= 31622400, a year; rounded up to whole ms); commands it runs are killed after that
---@field sensitive? boolean                     its values never reach logs, plan output or state
---@field params? table                          values the body receives; part of the step's fingerprint
---@field description? string                    free text

---@class nodeinit.Step

--- Declares a step: `step "name" { function() ... end, when = "boot" }`.
--- The step's fingerprint covers its name, its own source text, the values its functions capture
--- (upvalues such as `local mirror = "..."`), the file-level globals they name (a global helper
--- function) and its params: change any of them and it re-runs. It returns an opaque step handle.
---@param name string unique in its recipe; no '/' or control characters
---@return fun(spec: nodeinit.StepSpec): nodeinit.Step
function step(name) end

--- Declares a recipe: `recipe "network" { step "a" { ... }, step "b" { ... } }`. Steps run in written
--- order; a failed step stops its recipe and is retried on the next pass.
---@param name string letters, digits, '.', '_' and '-'; unique across the recipe directory
---@return fun(steps: nodeinit.Step[])
function recipe(name) end

--- Raises msg (with the caller's file and line) when v is nil, else returns all its arguments.
--- The primitives return `changed` (false when nothing changed) or `nil, msg, errno` on failure,
--- so `assert(sysctl.set(...))` would fail when nothing changed; `must(sysctl.set(...))` does not.
---@generic T
---@param v T|nil
---@param msg? string
---@return T
function must(v, msg, ...) end

--- Waits seconds (a fraction is fine), but never past the step's timeout or a stop signal: then the
--- step fails as timed out or interrupted. `sleep(30)` in a step with `timeout = 1` fails after ~1 s.
---@param seconds number from 0 to a year
function sleep(seconds) end
