---@meta nodeinit.exec
-- LuaLS annotations for nodeinit's `exec` module (not embedded in the binary: editors read it).
-- In a recipe `exec` is a global; `require("nodeinit.exec")` gives the same table.

---Commands run on the host: in its mount, UTS, IPC, network and PID namespaces, with the host's
---binaries (argv[0] is looked up in the PATH of the command's environment).
---@class nodeinit.exec
exec = {}

---argv (a list of strings, no shell: pass `{"sh", "-c", "..."}` for one) and options.
---@class nodeinit.ExecSpec
---@field [integer] string argv[1] is the command, the rest its arguments; strings only.
---Variables set for the command, merged over nodeinit's own environment (the container's, as
---`STARTUP_SCRIPT` sees it); `false` removes a variable. Numbers are written as strings.
---@field env? table<string, string|number|false>
---@field stdin? string Written to the command's stdin (which is /dev/null without it).
---@field cwd? string Working directory on the host; default `/`.
---Seconds (fractions allowed, rounded up to whole ms; > 0 and at most a year, 31622400, as a step's timeout). When it passes, the command's whole process group is killed
---with SIGKILL and the result says `timed_out = true`. No timeout without it.
---@field timeout? number

---@class nodeinit.ExecResult
---@field code integer Exit status; 128 + signal when killed by a signal (as a shell shows it).
---@field signal? integer The signal that killed the command; nil when it exited.
---@field stdout string Captured stdout: at most 1 MiB, the rest counted in stdout_dropped.
---@field stderr string Captured stderr: at most 1 MiB, the rest counted in stderr_dropped.
---@field timed_out boolean The timeout passed and the process group was killed.
---@field truncated boolean Either stream went past 1 MiB.
---@field stdout_dropped integer Bytes of stdout not kept.
---@field stderr_dropped integer Bytes of stderr not kept.
---@field duration_ms integer
---true only in `plan` (check mode): the command was named in the plan and not run. The other
---fields then say code 0, empty output, nothing dropped, duration 0, so the body goes on and plans
---what follows (whose lines plan marks as depending on the command).
---@field not_run? boolean

---Runs a command and waits for it. Its output is also logged line by line with the step's name
---(not for a `sensitive` step; at most 1 MiB a stream).
---
---A non-zero exit is not an error: look at `code` (or use `exec.ok`). A command that cannot be
---started returns `nil, "<argv[1]>: <reason>", errno` (`"<cwd>: <reason>"` for a bad cwd).
---Misuse (empty argv, a non-string argument, an unknown option, a bad option type) raises.
---When nodeinit is told to stop (SIGTERM) the command is killed and an "interrupted" error raised.
---Only inside a step (it raises in a file's top-level code). In `plan` the command is not run: plan
---prints its argv (argv[1] only for a sensitive step) and this returns a result with `not_run = true`.
---
---```lua
---local r = exec.run{"systemctl", "is-active", "containerd", timeout = 10}
---if r.code ~= 0 then log.warn("containerd is not active", {state = r.stdout}) end
---```
---@param spec nodeinit.ExecSpec
---@return nodeinit.ExecResult|nil result
---@return string? errmsg
---@return integer? errno
function exec.run(spec) end

---Like `exec.run`, but raises unless the command exits 0: "<cmd> exited with code N: <last
---stderr line>" (stderr left out for a sensitive step), "<cmd> was killed by signal N",
---"<cmd> timed out and was killed", or why it could not be started. In `plan`: not run, returns
---`""` and a result with `not_run = true` (see `exec.run`).
---
---```lua
---exec.ok{"systemctl", "restart", "containerd", timeout = 60}
---```
---@param spec nodeinit.ExecSpec
---@return string stdout
---@return nodeinit.ExecResult result
function exec.ok(spec) end

return exec
