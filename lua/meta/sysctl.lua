---@meta nodeinit.sysctl
-- LuaLS annotations for nodeinit's sysctl module (not embedded in the binary: editors read it).
-- In recipes the module is the global `sysctl`, and also `require("nodeinit.sysctl")`.
--
-- Keys come in two forms: dotted, `net.ipv4.ip_forward`, or slashed, `net/ipv4/ip_forward`.
-- A key holding a '/' is the slashed form and its dots are literal, for names that contain dots:
-- `net/ipv4/conf/eth0.100/forwarding`. Empty keys or parts, `.` and `..` parts, absolute paths,
-- blanks and control characters are refused (the call raises).
--
-- Keys are read and written through the host's /proc/sys after nodeinit has joined the host's
-- network namespace, so `net.*` keys are the host's, not the pod's.
--
-- Errors follow Lua's convention: misuse raises; an OS failure returns
-- `nil, "<key>: <strerror>", errno` (e.g. a key the kernel does not have: ENOENT, 2).
--
-- get and set work only inside a step (in a file's top-level code they raise "sysctl.get: only
-- inside a step"); valid works anywhere. In `plan`, set writes nothing: it prints
-- `sysctl KEY: CURRENT -> DESIRED` (`(same)` when equal, `(sensitive)` in a sensitive step) and
-- returns whether it would change the key.

---@class nodeinit.sysctl
sysctl = {}

---Reads a kernel parameter.
---
---```lua
---local fwd = sysctl.get("net.ipv4.ip_forward")   --> "1"
---local range = sysctl.get("net.ipv4.ip_local_port_range")  --> "32768\t60999"
---```
---@param key string dotted or slashed key
---@return string|nil value the value as the kernel prints it, without the trailing newline
---@return string? errmsg `"<key>: <strerror>"` when the key cannot be read
---@return integer? errno
function sysctl.get(key) end

---Sets a kernel parameter, only when it differs: the current value is read and compared with
---runs of blanks collapsed (so `"32768 60999"` equals the kernel's `"32768\t60999"`), and only
---a different value is written, with one `write()`. Write-only keys are always written.
---A change is logged at info with the key and value (the value shows as `(sensitive)` in a
---`sensitive = true` step).
---
---```lua
---sysctl.set("net.ipv4.ip_forward", 1)
---local changed = sysctl.set("net.core.somaxconn", "4096")
---```
---@param key string dotted or slashed key
---@param value string|integer an integer is written in decimal; a float without an integer value raises
---@return boolean|nil changed true when the value was written, false when it already matched
---@return string? errmsg `"<key>: <strerror>"` when the key cannot be read or written
---@return integer? errno
function sysctl.set(key, value) end

---Whether a key is well formed (what `get` and `set` check before they raise); touches nothing.
---
---```lua
---sysctl.valid("net.ipv4.ip_forward")   --> true
---sysctl.valid("net..ipv4")             --> false
---```
---@param key string
---@return boolean
function sysctl.valid(key) end

return sysctl

---The existing keys matching a glob (glob(7) on the path under /proc/sys: `*` stays within one part,
---as systemd-sysctl matches), sorted. Keys come back dotted, or slashed when a part holds a dot.
---
---```lua
---sysctl.keys("net.ipv4.conf.*.rp_filter") --> { "net.ipv4.conf.all.rp_filter", ..., "net/ipv4/conf/eth0.100/rp_filter" }
---```
---@param glob string a dotted or slashed key, with `*`, `?` or `[...]`
---@return string[]|nil keys
---@return string? errmsg
---@return integer? errno
function sysctl.keys(glob) end

---@class nodeinit.sysctl.ConfLine
---@field key string as written, without the `-`
---@field value? string nil for a `-key` line without a value: an exclusion from every glob
---@field ignore_failure boolean `-key = value`: a failure to set it is logged, not fatal
---@field glob boolean
---@field line integer

---Parses sysctl.d(5) text as systemd-sysctl does; touches nothing.
---@param text string
---@return nodeinit.sysctl.ConfLine[]|nil lines
---@return string? errmsg `"sysctl.d text line N: ..."`
---@return integer? line
function sysctl.parse_conf(text) end

---@class nodeinit.sysctl.Assignment
---@field key string
---@field value string
---@field ignore_failure boolean
---@field line integer

---What `apply_conf` would set on this host: globs expanded to existing keys, minus keys set
---explicitly anywhere in the text and keys excluded by `-key`; a later line for a key wins. Bad text raises.
---@param text string
---@return nodeinit.sysctl.Assignment[]
function sysctl.resolve_conf(text) end

---Applies sysctl.d text with systemd's rules, each key through `sysctl.set`. Failures of `-` keys are
---logged; others are collected and returned after every key was tried. Bad text raises.
---
---```lua
---must(sysctl.apply_conf([[
---net.ipv4.conf.default.rp_filter = 2
----net.ipv4.conf.*.rp_filter = 2
----net.ipv4.conf.all.rp_filter
---]]))
---```
---@param text string
---@return boolean|nil changed
---@return string? errmsg `"N of M sysctls not set: <key>: <strerror> (line L); ..."`
---@return integer? errno
function sysctl.apply_conf(text) end
