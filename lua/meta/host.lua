---@meta nodeinit.host
-- LuaLS annotations for nodeinit's host module (not embedded in the binary: editors read it).
-- In recipes the module is the global `host`, and also `require("nodeinit.host")`.
--
-- Facts about the host, read from its /etc, /proc and /sys (those of the host's mount namespace)
-- without forking. An OS failure returns `nil, "<file>: <strerror>", errno`.
--
-- ```lua
-- step "arm-only" { only = function() return host.kernel().arch == "aarch64" end, function() ... end }
-- ```

---@class nodeinit.host
host = {}

---@class nodeinit.host.Os
---@field id string os-release ID (default "linux")
---@field version_id? string VERSION_ID, nil when the file has none
---@field pretty_name string PRETTY_NAME (default "Linux")

---The host's os-release (/etc/os-release, else /usr/lib/os-release), with its quoting undone.
---@return nodeinit.host.Os|nil os
---@return string? errmsg
---@return integer? errno
function host.os() end

---@class nodeinit.host.Kernel
---@field release string uname -r
---@field version string uname -v
---@field arch string uname -m: "x86_64", "aarch64", ...

---The running kernel (shared by the host and every container on it).
---@return nodeinit.host.Kernel
function host.kernel() end

---The number of online CPUs (/sys/devices/system/cpu/online).
---@return integer|nil count
---@return string? errmsg
---@return integer? errno
function host.cpus() end

---@class nodeinit.host.Memory
---@field total integer bytes (MemTotal)
---@field available integer bytes (MemAvailable; before Linux 3.14 MemFree + Buffers + Cached)

---@return nodeinit.host.Memory|nil memory
---@return string? errmsg
---@return integer? errno
function host.memory() end

---@class nodeinit.host.Interface
---@field name string
---@field mac string "" when the interface has no address
---@field mtu integer
---@field up boolean administratively up (IFF_UP)

---The host's network interfaces (/sys/class/net of the host's mount namespace), sorted by name.
---@return nodeinit.host.Interface[]|nil interfaces
---@return string? errmsg
---@return integer? errno
function host.interfaces() end

---@class nodeinit.host.BlockDevice
---@field name string "nvme1n1", "sda", ...
---@field size integer bytes
---@field rotational boolean
---@field removable boolean
---@field model string "" when the device has none

---The host's block devices (/sys/block), sorted by name: e.g. the local NVMe disks of a cloud node.
---@return nodeinit.host.BlockDevice[]|nil devices
---@return string? errmsg
---@return integer? errno
function host.block_devices() end

---The number of NUMA nodes (1 on a kernel without NUMA).
---@return integer|nil count
---@return string? errmsg
---@return integer? errno
function host.numa_nodes() end
