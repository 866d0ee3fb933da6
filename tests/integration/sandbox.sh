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

# --- Load time is pure: a recipe file's top-level code runs at every load (lint, plan, apply, run's
# reloads), so a primitive that changes the host, runs a command or reads the host raises there,
# with file:line, in every command. Inside a step the same calls work.
R=$T/recipes
mkdir -p "$R"
# at_load NAME LUA: the call at a file's top level is refused by lint, plan and apply (exit 2), naming it.
at_load() {
	local name=$1 src=$2 cmd out rc
	rm -f "$R"/*
	printf 'local x = 1\n%s\nrecipe "l" { step "s" { function() end } }\n' "$src" > "$R/10-load.lua"
	for cmd in lint plan apply; do
		out=$(nodeinit "$cmd" --target-pid "$FAKE" --recipes "$R" --state-dir /var/lib/sandbox 2>&1)
		rc=$?
		if [ $rc = 2 ]; then check_contains "$cmd: $name at load is refused with file:line" "10-load.lua:2: $name: only inside a step" "$out"
		else not_ok "$cmd: $name at load is refused (exit $rc: $(printf %s "$out" | tail -c 300))"; fi
	done
}
at_load sysctl.set 'sysctl.set("kernel.domainname", "set-at-load")'
at_load sysctl.get 'sysctl.get("kernel.hostname")'
at_load file.write 'file.write("/etc/written-at-load", "x")'
at_load file.ensure_line 'file.ensure_line("/etc/written-at-load", "x")'
at_load file.mkdir 'file.mkdir("/etc/made-at-load")'
at_load file.remove 'file.remove("/etc/hostname")'
at_load file.read 'file.read("/etc/hostname")'
at_load file.exists 'file.exists("/etc/hostname")'
# (commands touch a file under $T, the same directory inside the fake host and here: lint runs on
# this machine, and before this rule it ran them)
at_load exec.run "exec.run { 'touch', '$T/ran-at-load' }"
at_load exec.ok "exec.ok { 'touch', '$T/ran-at-load' }"
at_load ns.exec "ns.exec({ pid = 1 }, { 'touch', '$T/ran-at-load' })"
at_load ns.run 'ns.run({ netns = "x" }, function() end)'
# ...also from a helper function the top level calls, and from a coroutine it resumes
at_load file.write 'local function helper() file.write("/etc/written-at-load", "x") end
helper()'
for f in /etc/written-at-load /etc/made-at-load; do check "load: nothing at $f in the fake host" in_fake test ! -e "$f"; done
check "load: no command ran" test ! -e "$T/ran-at-load"
check_eq "load: the sysctl kept its value" "" "$(in_fake cat /proc/sys/kernel/domainname | grep set-at-load)"
check "load: /etc/hostname is still there" in_fake test -e /etc/hostname
# pure helpers stay usable at load: yaml.decode, sysctl.valid, log, print, os.getenv
rm -f "$R"/*
cat > "$R/10-pure.lua" <<'EOF2'
local conf = yaml.decode("a: 1")
assert(conf.a == 1 and sysctl.valid("net.ipv4.ip_forward") and os.getenv("PATH"))
log.info("logged at load")
recipe "pure" { step "s" { function() return file.exists("/etc/hostname") end } }
EOF2
out=$(nodeinit lint --recipes "$R" 2>&1)
check_eq "load: pure helpers work at load (lint exit)" 0 $?
check_contains "load: log works at load" "logged at load" "$out"
out=$(nodeinit apply --target-pid "$FAKE" --recipes "$R" --state-dir /var/lib/sandbox 2>&1)
check_eq "load: the same primitives work inside a step (apply exit)" 0 $?

# --- lint executes nothing and needs no host: as nobody, without root, namespaces or /proc/PID.
L=$T/lint
mkdir -p "$L/recipes" "$L/drop"
chmod 0755 "$L" "$L/recipes"
chmod 1777 "$L/drop"
printf 'exec.run { "touch", "%s" }\nrecipe "l" { step "s" { function() end } }\n' "$L/drop/lint-ran" > "$L/recipes/10-lint.lua"
chmod 0644 "$L/recipes/10-lint.lua"
if setpriv --reuid 65534 --regid 65534 --clear-groups test -x "$NODEINIT" -a -r "$L/recipes/10-lint.lua"; then
	out=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$NODEINIT" lint --recipes "$L/recipes" --target-pid "$FAKE" \
		--state-dir /var/lib/lint-state 2>&1)
	check_eq "lint as nobody: the top-level exec.run is a lint error (exit 2)" 2 $?
	check_contains "lint as nobody: it says only inside a step, with file:line" "10-lint.lua:1: exec.run: only inside a step" "$out"
	check "lint as nobody: the command did not run" test ! -e "$L/drop/lint-ran"
else
	not_ok "lint as nobody: nobody cannot reach $NODEINIT or $L (fix the test setup)"
fi
# lint opens only the recipe directory and its files: not the target's /proc/PID, the state dir or /proc.
strace -f -qq -e trace=open,openat,openat2,stat,newfstatat,statx,access -o "$L/strace" \
	"$NODEINIT" lint --recipes "$L/recipes" --target-pid "$FAKE" --state-dir /var/lib/lint-state >/dev/null 2>&1
check "lint: strace saw it open the recipes" grep -q "10-lint.lua" "$L/strace"
# (/proc/self is the process's own: the sanitizers of `make check` read their maps there)
check_eq "lint: opens nothing under /proc but its own /proc/self" "" "$(grep '"/proc' "$L/strace" | grep -v '"/proc/self/')"
check_eq "lint: does not look at the target's /proc/PID" "" "$(grep -e "/$FAKE/" -e "/$FAKE\"" "$L/strace")"
check_eq "lint: does not look at the state dir" "" "$(grep 'lint-state' "$L/strace")"
check "lint under strace: the command did not run" test ! -e "$L/drop/lint-ran"

# --- A reload that fails leaves no trace: in run, an update whose top-level code writes a file and
# then fails to load writes nothing, and the previous recipes keep running.
C=$T/reload
mkdir -p "$C"
echo 'recipe "r" { step "tick" { when = "always", function() exec.run { "sh", "-c", "echo tick >> /tmp/ticks" } end } }' > "$C/10-r.lua"
ticks() { in_fake sh -c 'cat /tmp/ticks 2>/dev/null | wc -l'; }
"$NODEINIT" run --target-pid "$FAKE" --recipes "$C" --state-dir /var/lib/sandbox-run --interval 1 > "$T/run.log" 2>&1 &
runner=$!
for _ in $(seq 1 200); do [ "$(ticks)" -ge 1 ] && break; sleep 0.05; done
check "run: the first version applied" [ "$(ticks)" -ge 1 ]
printf 'file.write("/etc/written-by-reload", "x")\nrecipe "r" { step "tick" { when = "always", function() end } }\nerror("broken update")\n' > "$C/10-r.lua.new"
mv "$C/10-r.lua.new" "$C/10-r.lua"
for _ in $(seq 1 200); do grep -q "do not load; keeping the previous ones" "$T/run.log" && break; sleep 0.05; done
n=$(ticks)
for _ in $(seq 1 200); do [ "$(ticks)" -gt "$n" ] && break; sleep 0.05; done
kill -TERM $runner
wait $runner
check_contains "run: the broken update is refused" "do not load; keeping the previous ones" "$(cat "$T/run.log")"
check "run: the previous recipes keep running" [ "$(ticks)" -gt "$n" ]
check "run: the refused update wrote nothing" in_fake test ! -e /etc/written-by-reload

finish
