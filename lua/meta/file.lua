---@meta nodeinit.file
-- LuaLS annotations for nodeinit's file module (not embedded in the binary: editors read it).
-- In recipes the module is the global `file`, and also `require("nodeinit.file")`.
--
-- Paths are absolute host paths without `.` or `..` parts. They resolve inside the host's root,
-- one component at a time, by nodeinit itself (no openat2 needed, so on any kernel): symlinks are
-- followed, but an absolute or `..` symlink cannot lead out of it. Every function refuses a symlink
-- whose owner is neither root nor the owner of the directory it sits in (one a host user planted in
-- /tmp, say), and any step from a directory a non-root user owns to something another user owns:
-- `nil, "<path>: refusing to follow a symlink owned by uid 65534 in a directory owned by uid 0
-- (unsafe symlink: ...)", 67` (ENOLINK). Root's own links (/etc/resolv.conf) keep working; a refused
-- link is never replaced. Mode and owner are changed through the resolved file's own fd.
--
-- Errors follow Lua's convention: misuse (a relative path, a numeric mode, an unknown option)
-- raises; an OS failure returns `nil, "<path>: <strerror>", errno`. An owner or group name the
-- host does not know returns `nil, "<path>: no user 'x' in the host's /etc/passwd", 3` (ESRCH).
--
-- Every function that changes something returns `changed`: true when it acted, false when the
-- host was already as asked. Changes are logged at info with the path, never the content.
--
-- Every function works only inside a step: in a file's top-level code it raises "file.<name>: only
-- inside a step" (reads too: a load never depends on the host). In `plan` (check mode) write,
-- ensure_line, mkdir and remove change nothing: they print current -> desired under the step
-- (`file /etc/x.conf: differs, mode 0644 -> 12 bytes mode 0600`, `dir /etc/x.d: absent -> directory`;
-- values of a sensitive step masked) and return what they would have: `changed` from the current
-- state, or the failure the change would meet.

---@class nodeinit.file
file = {}

---Attributes of a written file or made directory. What is left out stays as it is on an existing
---file; a new file gets mode "0644", a new directory "0755", and nodeinit's own owner (root).
---@class nodeinit.file.Attrs
---@field mode? string octal digits, 3 or 4 of them: "0644", "600", "2755". Numbers raise: Lua has no octal literals, and 0644 would be decimal 644.
---@field owner? string|integer a user name, looked up in the host's /etc/passwd (no NSS), or a numeric uid
---@field group? string|integer a group name, looked up in the host's /etc/group, or a numeric gid

---@class nodeinit.file.WriteOpts: nodeinit.file.Attrs

---@class nodeinit.file.EnsureLineOpts: nodeinit.file.Attrs
---@field match? string a Lua pattern (as for string.find, unanchored unless it starts with "^"): the first line it finds is replaced when `line` is not already there

---@class nodeinit.file.MkdirOpts: nodeinit.file.Attrs
---@field parents? boolean make missing parent directories too (mode 0755, before the umask), like mkdir -p

---Reads a whole file (16 MiB at most: more fails with EFBIG).
---@param path string absolute host path
---@return string|nil content the bytes of the file
---@return string? errmsg `"<path>: <strerror>"`
---@return integer? errno
function file.read(path) end

---Makes `path` hold exactly `content`, with the given mode and owner. Atomic: a temp file in the
---same directory is written, chowned, chmodded and fsynced, then renamed over the path, and the
---directory is fsynced; on failure the old file is intact and no temp file is left. Nothing is
---written when content, mode and owner already match; a mode or owner difference alone is fixed
---on the file itself. A symlink at `path` is followed and its target written. A bind-mounted
---file cannot be renamed over (EBUSY): it is rewritten in place, not atomically, with a warning.
---
---```lua
---file.write("/etc/containerd/certs.d/docker.io/hosts.toml", 'server = "https://mirror.local"\n', { mode = "0644" })
---```
---@param path string absolute host path; its directory must exist (see file.mkdir)
---@param content string the whole new content (a number is taken as its string)
---@param opts? nodeinit.file.WriteOpts
---@return boolean|nil changed
---@return string? errmsg `"<path>: <strerror>"`
---@return integer? errno
function file.write(path, content, opts) end

---Makes sure a file has a line. When a line equals `line` exactly, nothing changes; otherwise,
---with `opts.match`, the first line the pattern finds is replaced by `line`; otherwise `line` is
---appended (after a newline, if the file does not end with one). A missing file is created with
---just the line. The result is written as file.write does (atomic, mode and owner applied).
---
---```lua
---file.ensure_line("/etc/ssh/sshd_config", "PermitRootLogin no", { match = "^#?%s*PermitRootLogin%s" })
---file.ensure_line("/etc/modules-load.d/k8s.conf", "br_netfilter")
---```
---@param path string absolute host path
---@param line string one line, without a newline
---@param opts? nodeinit.file.EnsureLineOpts
---@return boolean|nil changed
---@return string? errmsg `"<path>: <strerror>"`
---@return integer? errno
function file.ensure_line(path, line, opts) end

---Makes sure a directory exists (a symlink to a directory counts), with the given mode and owner:
---an existing directory gets them fixed when they are given.
---
---```lua
---file.mkdir("/etc/containerd/certs.d/docker.io", { parents = true })
---```
---@param path string absolute host path
---@param opts? nodeinit.file.MkdirOpts
---@return boolean|nil changed
---@return string? errmsg `"<path>: <strerror>"` (ENOENT: a parent is missing and parents is not set; ENOTDIR: a file is in the way)
---@return integer? errno
function file.mkdir(path, opts) end

---Removes a file, a symlink (not what it points to) or an empty directory. A path that is not
---there is not an error: it returns false. A non-empty directory fails with ENOTEMPTY.
---@param path string absolute host path
---@return boolean|nil changed
---@return string? errmsg `"<path>: <strerror>"`
---@return integer? errno
function file.remove(path) end

---Whether something exists at `path`, following symlinks (a dangling symlink does not exist).
---@param path string absolute host path
---@return boolean|nil exists
---@return string? errmsg `"<path>: <strerror>"` for errors other than ENOENT and ENOTDIR
---@return integer? errno
function file.exists(path) end

return file

---@class nodeinit.file.Stat
---@field type "file"|"directory"|"link"|"fifo"|"socket"|"char"|"block"|"unknown"
---@field mode string permission bits as 4 octal digits, "0644"
---@field uid integer
---@field gid integer
---@field size integer bytes
---@field mtime integer seconds since the epoch

---The entry names of a directory (symlinks to it followed, with the safety rule), sorted, without `.` and `..`.
---
---```lua
---for _, name in ipairs(must(file.list("/etc/containerd/certs.d"))) do ... end
---```
---@param path string absolute host path
---@return string[]|nil names
---@return string? errmsg `"<path>: <strerror>"` (a missing directory: ENOENT, 2)
---@return integer? errno
function file.list(path) end

---stat(2) of what path names, symlinks followed. Nothing there (or a dangling link): just `nil`.
---@param path string absolute host path
---@return nodeinit.file.Stat|nil stat
---@return string? errmsg `"<path>: <strerror>"` for other failures
---@return integer? errno
function file.stat(path) end

---Makes path a symlink to target. A link already pointing at target is left (false); one pointing
---elsewhere is replaced atomically (true); anything else at path is `nil, "<path>: exists and is not
---a symlink (not replaced)", 17`. The directories on the way are resolved with the safety rule.
---@param target string what the link points to (relative targets resolve from the link's directory)
---@param path string absolute host path of the link
---@return boolean|nil changed
---@return string? errmsg
---@return integer? errno
function file.symlink(target, path) end
