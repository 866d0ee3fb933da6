# The recipe sandbox through `nodeinit eval -` against a fake host: each way out is refused, plainly.
# (The runaway-loop guard takes ~10 s of CPU; tests/unit/test_lua.c covers it.)
. "$(dirname "$0")/../lib/common.sh"
require_root

fakehost_start

# refused DESCRIPTION NEEDLE LUA: eval must fail (exit 1) and say NEEDLE.
refused() {
	local what=$1 needle=$2 src=$3 out rc
	out=$(printf '%s\n' "$src" | nodeinit eval - --target-pid "$FAKE" 2>&1)
	rc=$?
	if [ $rc = 1 ]; then check_contains "$what" "$needle" "$out"; else not_ok "$what (exit $rc: $out)"; fi
}

refused "io is absent" "global 'io'" 'io.open("/etc/hostname")'
refused "os.execute is absent" "field 'execute'" 'os.execute("touch /tmp/escaped")'
refused "os.exit is absent" "field 'exit'" 'os.exit(0)'
refused "os.remove is absent" "field 'remove'" 'os.remove("/etc/hostname")'
refused "package is absent" "global 'package'" 'return package.loaded'
refused "package.loadlib is unreachable" "global 'package'" 'package.loadlib("libc.so.6", "system")'
refused "require('os') refused" "module 'os' not found" 'require("os")'
refused "require('io') refused" "module 'io' not found" 'require("io")'
refused "require of a file path refused" "recipes can require only nodeinit.*" 'require("/tmp/evil")'
refused "binary chunks refused by load" "attempt to load a binary chunk" \
	'assert(load(string.char(27) .. "LuaT\0\25\147\r\n\26\n"))'
refused "load mode 'b' refused" "only text chunks" 'load("return 1", "x", "bt")'
refused "string.dump is absent" "field 'dump'" 'string.dump(function() end)'
refused "debug is absent" "global 'debug'" 'debug.sethook()'
refused "dofile is absent" "global 'dofile'" 'dofile("/etc/hostname")'
refused "loadfile is absent" "global 'loadfile'" 'loadfile("/etc/hostname")'
refused "collectgarbage('stop') refused" "invalid option 'stop'" 'collectgarbage("stop")'
refused "the string metatable cannot be tampered with" "index a boolean value" \
	'getmetatable("").__index.rep = function() return "pwned" end'
refused "runaway memory stopped by the cap" "memory limit exceeded (64 MiB)" \
	'local t = {} for i = 1, 1e9 do t[i] = ("x"):rep(4096) .. i end'
refused "must raises on nil with the caller's line" "stdin:2: no such thing" $'local x = 1\nmust(nil, "no such thing")'
out=$(printf 'return must(false), must(0, "unused")\n' | nodeinit eval - --target-pid "$FAKE" 2>&1)
check_eq "must passes false (unchanged) and values through" "$(printf 'false\t0\tunused')" "$out"
check "nothing escaped into the fake host" in_fake test ! -e /tmp/escaped
check "nothing escaped here" test ! -e /tmp/escaped

# The errors an operator sees name the chunk and line, with a traceback.
out=$(printf 'local function f()\n  error("broken recipe")\nend\nf()\n' | nodeinit eval - --target-pid "$FAKE" 2>&1)
check_contains "errors carry chunk and line" "stdin:2: broken recipe" "$out"
check_contains "errors carry a traceback" "stack traceback:" "$out"
out=$(echo 'return 1 +' | nodeinit eval - --target-pid "$FAKE" 2>&1)
check_eq "a syntax error exits 2" 2 $?
check_contains "a syntax error names the line" "stdin:2: unexpected symbol near <eof>" "$out"

# What is allowed works: modules as globals and through require, print to the log.
out=$(echo 'print("hello from a recipe") return require("nodeinit.exec") == exec, type(yaml.decode), type(ns.run), type(log.info), os.time() > 0' |
	nodeinit eval - --target-pid "$FAKE" 2>"$T/log")
check_eq "modules are globals and require()able" "true	function	function	function	true" "$out"
check_contains "print goes to the log with the step" "hello from a recipe step=eval" "$(cat "$T/log")"

# load() of text runs in the caller's sandbox, not in some wider global table.
out=$(echo 'string.rep = nil; local f = load("y = 2") f() return y, type(string.rep), type(load("return string.rep")())' |
	nodeinit eval - --target-pid "$FAKE" 2>&1)
check_eq "load() shares the caller's environment by default" "2	nil	nil" "$out"

finish
