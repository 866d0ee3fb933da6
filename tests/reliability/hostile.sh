# Hostile or careless recipes, through apply (not eval): every way out of the sandbox is refused at
# load and in a step; one recipe cannot change another's globals; values of sensitive steps reach
# no log, plan, status or state file; exec passes arguments verbatim, without a shell.
. "$(dirname "$0")/lib/fakehost.sh"
require_root
command -v python3 >/dev/null || skip_all "needs python3 to quote arguments"

R=$T/recipes
mkdir -p "$R"
rel_fakehost_start
apply() { nodeinit apply --target-pid "$FAKE" --recipes "$R" --state-dir /var/lib/hostile "$@"; }

# --- escapes: each as a step body (refused when the step runs) and at the top of a file (refused at load)
# escape NAME NEEDLE LUA
escape() {
	local name=$1 needle=$2 src=$3 out rc
	rm -f "$R"/*
	printf 'recipe "esc" {\n  step "%s" { function()\n    %s\n  end },\n}\n' "$name" "$src" > "$R/10-esc.lua"
	out=$(apply 2>&1)
	rc=$?
	if [ $rc = 1 ]; then check_contains "escape in a step refused: $name" "$needle" "$out"
	else not_ok "escape in a step refused: $name (exit $rc: $(printf %s "$out" | tail -c 300))"; fi
	check_contains "escape in a step: the log names the step: $name" "step failed recipe=esc step=$name" "$out"
	printf '%s\nrecipe "esc" { step "x" { function() end } }\n' "$src" > "$R/10-esc.lua"
	out=$(apply 2>&1)
	rc=$?
	if [ $rc = 2 ]; then check_contains "escape at load refused: $name" "$needle" "$out"
	else not_ok "escape at load refused: $name (exit $rc: $(printf %s "$out" | tail -c 300))"; fi
}
escape io-open "global 'io'" 'io.open("/tmp/escaped", "w")'
escape io-popen "global 'io'" 'io.popen("touch /tmp/escaped")'
escape os-execute "field 'execute'" 'os.execute("touch /tmp/escaped")'
escape os-remove "field 'remove'" 'os.remove("/etc/hostname")'
escape os-exit "field 'exit'" 'os.exit(0)'
escape package-loadlib "global 'package'" 'package.loadlib("libc.so.6", "system")("touch /tmp/escaped")'
escape package-via-require "module 'package' not found" 'require("package").loadlib("libc.so.6", "system")'
escape require-file "recipes can require only nodeinit.*" 'require("/tmp/escaped")'
escape require-path "recipes can require only nodeinit.*" 'require("nodeinit/../../tmp/escaped")'
escape require-trusted-recipe-module "module 'nodeinit.recipe' not found" 'require("nodeinit.recipe")'
escape require-debug "module 'debug' not found" 'require("debug").sethook()'
escape dofile "global 'dofile'" 'dofile("/etc/hostname")'
escape loadfile "global 'loadfile'" 'loadfile("/etc/hostname")'
escape load-bytecode "attempt to load a binary chunk" 'assert(load(string.char(27) .. "LuaT\0\25\147\r\n\26\n\4\8\8\120\86\0\0\0\0\0\0\0\0\0\0\0\40\119\64"))()'
escape load-mode-b "only text chunks can be loaded" 'load("return 1", "x", "b")'
escape string-dump "field 'dump'" 'load(string.dump(function() end))'
escape debug-global "global 'debug'" 'debug.getregistry()'
escape collectgarbage-stop "invalid option 'stop'" 'collectgarbage("stop")'
escape collectgarbage-generational "invalid option 'generational'" 'collectgarbage("generational")'
escape collectgarbage-setpause "invalid option 'setpause'" 'collectgarbage("setpause", 1000)'
escape string-metatable-index "index a boolean value" 'getmetatable("").__index = { rep = function() return "pwned" end }'
escape string-metatable-rawset "bad argument #1 to 'rawset'" 'rawset(getmetatable(""), "__index", {})'
escape string-setmetatable "bad argument #1 to 'setmetatable' (table expected, got string)" 'setmetatable("", { __index = {} })'
escape module-metatable "cannot change a protected metatable" 'local b = setmetatable({}, { __metatable = false }) setmetatable(b, {})'
check "nothing escaped into the fake host" in_fake test ! -e /tmp/escaped
check "nothing escaped here" test ! -e /tmp/escaped

# One recipe file cannot change what another sees: its globals, library and module tables are its own.
rm -f "$R"/*
cat > "$R/10-vandal.lua" <<'EOF2'
string.rep = function() return "vandalised" end
exec.run = function() error("vandalised exec") end
file = nil
_G.sysctl = nil
recipe "vandal" { step "v" { function() string.upper = nil end } }
EOF2
cat > "$R/20-victim.lua" <<'EOF2'
recipe "victim" {
  step "w" { function()
    assert(("ab"):rep(2) == "abab", "string.rep was changed")
    assert(string.upper("x") == "X", "string.upper was removed")
    assert(exec.ok { "true" })
    assert(file.write("/tmp/victim-ok", "yes") ~= nil)
    assert(sysctl.get("kernel.hostname"))
  end },
}
EOF2
out=$(apply 2>&1)
check_eq "a recipe's changes to its globals stay its own (exit)" 0 $?
check "a recipe's changes to its globals stay its own (effect)" in_fake test -e /tmp/victim-ok

# The count hook also reaches coroutines, and a pcall in the recipe cannot swallow a timeout.
rm -f "$R"/*
cat > "$R/10-co.lua" <<'EOF2'
recipe "co" {
  step "coroutine-loop" { timeout = 1, function()
    local co = coroutine.wrap(function() while true do end end)
    co()
  end },
  step "pcall-loop" { timeout = 1, function()
    while true do pcall(function() while true do end end) end
  end },
}
EOF2
out=$(apply 2>&1)
check_contains "a loop in a coroutine times out" "step failed recipe=co step=coroutine-loop" "$out"
check_contains "...with the step's timeout" "step timed out" "$out"

# --- finalizers: __gc is not available to recipes (it would run whenever the collector or lua_close
# decides: at the end of plan, outside any step). Refused at load and in a step; a __gc added to a
# metatable after setmetatable is never called (Lua 5.4 marks an object for finalization only then).
rm -f "$R"/*
cat > "$R/10-gc.lua" <<'EOF2'
setmetatable({}, { __gc = function() file.write("/etc/written-by-plan", "gc\n") end })
recipe "gc" { step "s" { function() end } }
EOF2
for cmd in lint plan apply; do
	out=$(nodeinit "$cmd" --target-pid "$FAKE" --recipes "$R" --state-dir /var/lib/hostile 2>&1)
	check_eq "__gc at load: $cmd exits 2" 2 $?
	check_contains "__gc at load: $cmd says why, with file:line" "10-gc.lua:1: __gc is not available to recipes" "$out"
done
check "__gc at load: nothing written after plan and apply" in_fake test ! -e /etc/written-by-plan
cat > "$R/10-gc.lua" <<'EOF2'
local mt = {}
keep = setmetatable({}, mt)
mt.__gc = function() file.write("/etc/written-by-plan", "late\n") end
recipe "gc" { step "s" { function()
  setmetatable({}, { __gc = function() file.write("/etc/written-by-plan", "step\n") end })
end } }
EOF2
nodeinit plan --target-pid "$FAKE" --recipes "$R" --state-dir /var/lib/hostile > "$T/gc.plan" 2>&1
check_eq "__gc added late: plan exits 0" 0 $?
check_contains "__gc in a step: plan says it would fail" "(would fail: " "$(cat "$T/gc.plan")"
out=$(apply 2>&1)
check_eq "__gc in a step: the step fails" 1 $?
check_contains "__gc in a step: says why" "__gc is not available to recipes" "$out"
check "__gc: nothing was ever written (plan, apply, lua_close)" in_fake test ! -e /etc/written-by-plan

# --- secrets: nothing of a sensitive step reaches logs (text, json), plan, status or the state dir.
SECRET=hunter2-S3CR3T-value
rm -f "$R"/*
cat > "$R/10-secret.lua" <<EOF2
local token = "$SECRET"
recipe "secret" {
  step "writes" { sensitive = true, function()
    assert(file.write("/etc/nodeinit-token", token, { mode = "0600" }) ~= nil)
    assert(sysctl.set("kernel.domainname", token) ~= nil)
    exec.ok { "sh", "-c", "echo out:\$1; echo err:\$1 >&2", "sh", token }
    exec.run { "printf", "%s", token, stdin = token, env = { TOKEN = token } }
  end },
  step "fails" { sensitive = true, function()
    exec.ok { "sh", "-c", "echo \$1; echo \$1 >&2; exit 3", "sh", token }
  end },
}
recipe "secret2" {
  step "raises" { sensitive = true, function() error("the token is " .. token) end },
}
recipe "secret3" {
  step "times-out" { sensitive = true, timeout = 1, function() exec.run { "sh", "-c", "echo \$1; sleep 5", "sh", token } end },
}
recipe "public" { step "control" { function() exec.ok { "echo", "PUBLIC-marker" } end } }
EOF2
cat > "$R/20-secret.yaml" <<EOF2
recipe: yamlsecret
steps:
  - name: sysctl
    sensitive: true
    sysctl: { kernel.domainname: "$SECRET-yaml" }
  - name: file
    sensitive: true
    file: { path: /etc/nodeinit-token-yaml, content: "$SECRET", mode: "0600" }
  - name: exec-fails
    sensitive: true
    exec: [sh, -c, 'echo "\$0"; echo "\$0" >&2; exit 4', "$SECRET"]
EOF2
nodeinit plan --target-pid "$FAKE" --recipes "$R" --state-dir /var/lib/hostile > "$T/secret.plan" 2>&1
apply > "$T/secret.text" 2>&1
check_eq "secrets: the failing sensitive steps fail the apply" 1 $?
apply --log-format json > "$T/secret.json" 2>&1
sed -i 's/exit 4/exit 0/; s/exit 3/exit 0/' "$R/10-secret.lua" "$R/20-secret.yaml"
nodeinit plan --target-pid "$FAKE" --recipes "$R" --state-dir /var/lib/hostile >> "$T/secret.plan" 2>&1
apply >> "$T/secret.text" 2>&1
apply --log-format json >> "$T/secret.json" 2>&1
nodeinit status --target-pid "$FAKE" --state-dir /var/lib/hostile > "$T/secret.status" 2>&1
nodeinit status --json --target-pid "$FAKE" --state-dir /var/lib/hostile > "$T/secret.status.json" 2>&1
nodeinit lint --recipes "$R" > "$T/secret.lint" 2>&1
check_contains "secrets: the control step's output is logged (the log works)" "PUBLIC-marker" "$(cat "$T/secret.text")"
check_contains "secrets: the sensitive steps ran" "$SECRET" "$(in_fake cat /etc/nodeinit-token)"
check_contains "secrets: the sysctl was set" "$SECRET" "$(in_fake cat /proc/sys/kernel/domainname)"
check_contains "secrets: a failing sensitive step says it failed" "step failed recipe=secret step=fails" "$(cat "$T/secret.text")"
check_contains "secrets: ...with its error hidden" "(hidden: sensitive step)" "$(cat "$T/secret.text")"
check_contains "secrets: plan masks a sensitive sysctl" "kernel.domainname: (sensitive) -> (sensitive)" "$(cat "$T/secret.plan")"
for f in secret.text secret.json secret.plan secret.status secret.status.json secret.lint; do
	check_eq "secrets: not in $f" 0 "$(grep -c "$SECRET" "$T/$f")"
done
cp -a "/proc/$FAKE/root/var/lib/hostile" "$T/secret-state"
check_eq "secrets: not in any state file" "" "$(grep -rl "$SECRET" "$T/secret-state")"
check "secrets: the state dir has files to look at" [ -s "$T/secret-state/secret.state" ]

# --- exec: argv arrives verbatim, no shell in between (Lua and YAML).
rm -f "$R"/*
ARGS=('a b' "'single'" '"double"' '$(touch /tmp/pwned)' '`touch /tmp/pwned`' '*' '$HOME' ';' '|' '&& touch /tmp/pwned' '\n' 'tab	in' 'ünïcødé' '')
{
	printf 'local args = {'
	for a in "${ARGS[@]}"; do printf ' %s,' "$(printf '%s' "$a" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read(), ensure_ascii=False))')"; done
	printf ' }\n'
	cat <<'EOF2'
recipe "verbatim" {
  step "lua" { function()
    local argv = { "sh", "-c", 'for a in "$@"; do printf "[%s]\n" "$a"; done > /tmp/argv-lua', "sh" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    exec.ok(argv)
  end },
}
EOF2
} > "$R/10-verbatim.lua"
{
	echo 'recipe: yverbatim'
	echo 'steps:'
	echo '  - name: yaml'
	printf '    exec: [sh, -c, '"'"'for a in "$@"; do printf "[%%s]\\n" "$a"; done > /tmp/argv-yaml'"'"', sh'
	for a in "${ARGS[@]}"; do printf ', %s' "$(printf '%s' "$a" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read(), ensure_ascii=False))')"; done
	echo ']'
} > "$R/20-verbatim.yaml"
out=$(apply 2>&1)
check_eq "exec verbatim: apply exits 0" 0 $?
want=$(for a in "${ARGS[@]}"; do printf '[%s]\n' "$a"; done)
check_eq "exec verbatim: Lua argv arrives as written" "$want" "$(in_fake cat /tmp/argv-lua)"
check_eq "exec verbatim: YAML argv arrives as written" "$want" "$(in_fake cat /tmp/argv-yaml)"
check "exec verbatim: no shell ran the \$(...), backticks or &&" in_fake test ! -e /tmp/pwned
rm -f "$R"/*
cat > "$R/10-direct.lua" <<'EOF2'
recipe "direct" {
  step "no-shell" { function()
    -- one argument that a shell would split and expand: without a shell it is a file name that does not exist
    local r = exec.run { "touch /tmp/pwned; echo" }
    assert(r == nil, "a shell ran it")
    local out = exec.ok { "printf", "%s|", "$(id)", "a b", stdin = "$(id)" }
    assert(out == "$(id)|a b|", out)
    local env = exec.ok { "printenv", "V", env = { V = "$(id) `id` 'q'" } }
    assert(env == "$(id) `id` 'q'\n", env)
    local cat = exec.ok { "cat", stdin = "$(id)\n\0binary" }
    assert(cat == "$(id)\n\0binary", "stdin changed")
  end },
}
EOF2
out=$(apply 2>&1)
check_eq "exec without a shell: a command line is one argv[0], stdin and env arrive verbatim" 0 $?
check "exec without a shell: nothing ran" in_fake test ! -e /tmp/pwned

finish
