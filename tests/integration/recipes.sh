# The recipe engine against fake hosts: per-step checkpoints, when/check, failures, crashes, locking,
# plan, lint, status, run with a ConfigMap-style ..data swap, and YAML and Lua behaving the same.
. "$(dirname "$0")/../lib/common.sh"
require_root

R=$T/recipes
mkdir -p "$R"

# runs: how many times each step ran, from the fake host's /tmp/runs (one line per run).
runs() { in_fake sh -c "grep -cx '$1' /tmp/runs 2>/dev/null || true"; }
apply() { nodeinit apply --target-pid "$FAKE" --recipes "$R" --interval 1 "$@"; }

write_net() {
	cat > "$R/10-net.lua" <<EOF
-- network setup
local function bump(name) exec.run { "sh", "-c", "echo " .. name .. " >> /tmp/runs" } end
recipe "net" {
  step "forward" { when = "boot", function() bump("forward"); sysctl.set("net.ipv4.ip_forward", "1") end },
  step "somaxconn" { function() bump("somaxconn"); sysctl.set("net.core.somaxconn", "${1:-1024}") end },
  step "drift" { when = "always", function() bump("drift") end },
  step "kept" { check = function() return true end, function() bump("kept") end },
}
EOF
}

fakehost_start
write_net 1024
cat > "$R/20-more.yaml" <<'EOF'
recipe: more
steps:
  - name: marker
    file: { path: /etc/nodeinit-marker, content: "hello\n", mode: "0600" }
  - name: count
    exec: [sh, -c, "echo yaml-count >> /tmp/runs"]
EOF

out=$(apply 2>&1)
check_eq "first apply exits 0" 0 $?
check_eq "forward ran once" 1 "$(runs forward)"
check_eq "somaxconn ran once" 1 "$(runs somaxconn)"
check_eq "drift ran once" 1 "$(runs drift)"
check_eq "kept step did not run its body" 0 "$(runs kept)"
check_eq "yaml exec step ran once" 1 "$(runs yaml-count)"
check_eq "sysctl applied in the fake host" 1024 "$(in_fake cat /proc/sys/net/core/somaxconn)"
check_eq "yaml file step wrote the file" hello "$(in_fake cat /etc/nodeinit-marker)"
check_eq "yaml file mode" 600 "$(in_fake stat -c %a /etc/nodeinit-marker)"
check "yaml file absent on the real machine" test ! -e /etc/nodeinit-marker
check_contains "log has a step start line" "step start recipe=net step=forward" "$out"
check_contains "log has a step end line with result and duration" "step done recipe=net step=forward result=ok duration_ms=" "$out"

out=$(apply --log-format json 2>&1)
check_eq "second apply exits 0" 0 $?
if command -v python3 >/dev/null; then
	check "--log-format json: every line is a JSON object with time, level, msg" python3 -c '
import json, sys
lines = [l for l in sys.stdin.read().splitlines() if l and not l.startswith(("==", "--"))]  # valgrind lines
assert lines
for l in lines:
    d = json.loads(l)
    assert {"time", "level", "msg"} <= d.keys(), l
assert any(d.get("msg") == "step done" and d.get("step") == "drift" for d in map(json.loads, lines))
' <<<"$out"
fi
check_eq "second apply: forward not re-run" 1 "$(runs forward)"
check_eq "second apply: somaxconn not re-run" 1 "$(runs somaxconn)"
check_eq "second apply: yaml step not re-run" 1 "$(runs yaml-count)"
check_eq "always step runs every pass" 2 "$(runs drift)"

# Editing one step re-runs that step alone; a comment elsewhere re-runs nothing.
write_net 2048
apply >/dev/null 2>&1
check_eq "edited step re-ran" 2 "$(runs somaxconn)"
check_eq "edited value applied" 2048 "$(in_fake cat /proc/sys/net/core/somaxconn)"
check_eq "unedited step not re-run" 1 "$(runs forward)"
sed -i 's/^-- network setup$/-- network setup, now with a longer comment/' "$R/10-net.lua"
sed -i '1i # a comment on top' "$R/20-more.yaml"
apply >/dev/null 2>&1
check_eq "comment edits re-run nothing (lua)" 2 "$(runs somaxconn)"
check_eq "comment edits re-run nothing (yaml)" 1 "$(runs yaml-count)"

# A new boot_id re-runs boot steps only.
# (The file lives in the fake host's own /run: the work dir may be hidden there, e.g. under /tmp.)
in_fake sh -c 'echo 11111111-2222-3333-4444-555555555555 > /run/boot_id &&
	mount --bind /run/boot_id /proc/sys/kernel/random/boot_id'
check_eq "fake host has a new boot_id" 11111111-2222-3333-4444-555555555555 "$(in_fake cat /proc/sys/kernel/random/boot_id)"
apply >/dev/null 2>&1
check_eq "new boot: boot step re-ran" 2 "$(runs forward)"
check_eq "new boot: once step not re-run" 2 "$(runs somaxconn)"
apply >/dev/null 2>&1
check_eq "same boot again: boot step not re-run" 2 "$(runs forward)"

# status --json shape, and --ready.
json=$(nodeinit status --json --target-pid "$FAKE" 2>/dev/null)
check_contains "status --json converged" '"converged":true' "$json"
check_contains "status --json boot_id" '"boot_id":"11111111-2222-3333-4444-555555555555"' "$json"
check_contains "status --json kept result" '{"name":"kept","when":"once","result":"kept"' "$json"
check_contains "status --json legacy null" '"legacy":null' "$json"
if command -v python3 >/dev/null; then
	check "status --json parses as JSON" python3 -c 'import json,sys; d=json.load(sys.stdin); assert [r["name"] for r in d["recipes"]]==["net","more"]' <<<"$json"
fi
nodeinit status --ready --target-pid "$FAKE" >/dev/null 2>&1
check_eq "status --ready 0 when converged" 0 $?

# plan changes nothing, and says why for each step.
before=$(in_fake sh -c 'ls -l --time-style=+%s.%N /var/lib/nodeinit; cat /var/lib/nodeinit/*' | md5sum)
sed -i 's/2048/4096/' "$R/10-net.lua"
plan=$(nodeinit plan --target-pid "$FAKE" --recipes "$R" 2>&1)
check_contains "plan: changed step runs" "net/somaxconn run changed" "$plan"
check_contains "plan: done step skipped" "net/forward skip done" "$plan"
check_contains "plan: always step" "net/drift run always" "$plan"
check_contains "plan: kept step" "net/kept skip kept" "$plan"
check_contains "plan: yaml step done" "more/marker skip done" "$plan"
check_eq "plan changed no state" "$before" "$(in_fake sh -c 'ls -l --time-style=+%s.%N /var/lib/nodeinit; cat /var/lib/nodeinit/*' | md5sum)"
check_eq "plan changed no sysctl" 2048 "$(in_fake cat /proc/sys/net/core/somaxconn)"
nodeinit status --ready --target-pid "$FAKE" >/dev/null 2>&1
check_eq "status --ready still 0 (status reads records, not recipes)" 0 $?
write_net 2048

# A failing step stops its recipe, not the next; it is retried on the next apply.
cat > "$R/05-fail.lua" <<'EOF'
recipe "fail" {
  step "boom" { function() error("boom went the step") end },
  step "after" { function() exec.run { "sh", "-c", "echo after >> /tmp/runs" } end },
}
EOF
out=$(apply 2>&1)
check_eq "failing step: exit 1" 1 $?
check_contains "failing step: error logged with the step" "boom went the step" "$out"
check_eq "failing step: later step of its recipe not run" 0 "$(runs after)"
check_eq "failing step: next recipe still ran (always step)" 7 "$(runs drift)"
nodeinit status --ready --target-pid "$FAKE" >/dev/null 2>&1
check_eq "status --ready non-zero with a failed step" 1 $?
check_contains "status --json shows failed" '"result":"failed"' "$(nodeinit status --json --target-pid "$FAKE" 2>/dev/null)"
rm "$R/05-fail.lua"

# Missing or corrupt records: not converged, plan says so, apply sets a corrupt file aside and re-runs.
S=/proc/$FAKE/root/var/lib/nodeinit
apply >/dev/null 2>&1
nodeinit status --ready --target-pid "$FAKE" >/dev/null 2>&1
check_eq "records: converged before they are touched" 0 $?
rm "$S/more.state"
nodeinit status --ready --target-pid "$FAKE" >/dev/null 2>&1
check_eq "records deleted: status --ready non-zero" 1 $?
check_contains "records deleted: status --json names the recipe's problem" '{"name":"more","steps":[],"error":"more.state: missing"}' \
	"$(nodeinit status --json --target-pid "$FAKE" 2>/dev/null)"
check_contains "records deleted: plan runs its steps" "more/marker run new" "$(nodeinit plan --target-pid "$FAKE" --recipes "$R" 2>&1)"
n=$(runs yaml-count)
apply >/dev/null 2>&1
check_eq "records deleted: apply re-ran the recipe" $((n + 1)) "$(runs yaml-count)"
nodeinit status --ready --target-pid "$FAKE" >/dev/null 2>&1
check_eq "records deleted: converged again after apply" 0 $?

printf 'garbage\x00\xff not a journal\n' > "$S/net.state"
nodeinit status --ready --target-pid "$FAKE" >/dev/null 2>&1
check_eq "records garbled: status --ready non-zero" 1 $?
check_contains "records garbled: status names the file" 'net.state: not a nodeinit state file' \
	"$(nodeinit status --target-pid "$FAKE" 2>/dev/null)"
plan=$(nodeinit plan --target-pid "$FAKE" --recipes "$R" 2>&1)
check_eq "records garbled: plan exits 0" 0 $?
check_contains "records garbled: plan names the problem" "net: its state records cannot be read (net.state: not a nodeinit state file)" "$plan"
check_contains "records garbled: plan runs the recipe's steps" "net/somaxconn run new" "$plan"
n=$(runs somaxconn)
out=$(apply 2>&1)
check_eq "records garbled: apply exits 0" 0 $?
check_contains "records garbled: apply logs an error naming the file" "corrupt; moved aside, running its steps again recipe=net file=net.state moved_to=net.state.corrupt-" "$out"
check "records garbled: the corrupt file is kept aside" sh -c "ls '$S' | grep -q '^net.state.corrupt-[0-9]*$'"
check "records garbled: its bytes are kept" sh -c "grep -q 'not a journal' '$S'/net.state.corrupt-*"
check_eq "records garbled: apply re-ran the recipe's steps" $((n + 1)) "$(runs somaxconn)"
nodeinit status --ready --target-pid "$FAKE" >/dev/null 2>&1
check_eq "records garbled: converged again after apply" 0 $?
rm -f "$S"/net.state.corrupt-*

# kill -9 in the middle of a step: interrupted, then re-run by the next apply.
cat > "$R/30-slow.lua" <<'EOF'
recipe "slow" {
  step "long" { function()
    exec.run { "sh", "-c", "echo long >> /tmp/runs; sleep 30" }
  end },
}
EOF
"$NODEINIT" apply --target-pid "$FAKE" --recipes "$R" >/dev/null 2>&1 &
victim=$!
for _ in $(seq 1 100); do [ "$(runs long)" = 1 ] && break; sleep 0.05; done
{ kill -KILL $victim; wait $victim; } 2>/dev/null
check_contains "kill -9: status says interrupted" '"name":"long","when":"once","result":"interrupted"' "$(nodeinit status --json --target-pid "$FAKE" 2>/dev/null)"
sed -i 's/sleep 30/true/' "$R/30-slow.lua"
apply >/dev/null 2>&1
check_eq "kill -9: next apply re-ran the step" 2 "$(runs long)"
rm "$R/30-slow.lua"

# Two concurrent applies: each step runs once.
cat > "$R/40-once.lua" <<'EOF'
recipe "once" {
  step "a" { function() exec.run { "sh", "-c", "echo once-a >> /tmp/runs; sleep 0.5" } end },
  step "b" { function() exec.run { "sh", "-c", "echo once-b >> /tmp/runs" } end },
}
EOF
apply >/dev/null 2>&1 & a1=$!
apply >/dev/null 2>&1 & a2=$!
wait $a1; wait $a2
check_eq "concurrent applies: step a ran once" 1 "$(runs once-a)"
check_eq "concurrent applies: step b ran once" 1 "$(runs once-b)"

# run: a ConfigMap-style ..data swap is applied at once (inotify), long before the 60 s interval.
CM=$T/cm
mkdir -p "$CM/..v1" "$CM/..v2"
echo 'recipe "cm" { step "s" { function() exec.run { "sh", "-c", "echo cm-v1 >> /tmp/runs" } end } }' > "$CM/..v1/50-cm.lua"
echo 'recipe "cm" { step "s" { function() exec.run { "sh", "-c", "echo cm-v2 >> /tmp/runs" } end } }' > "$CM/..v2/50-cm.lua"
ln -s ..v1 "$CM/..data"
ln -s ..data/50-cm.lua "$CM/50-cm.lua"
"$NODEINIT" run --target-pid "$FAKE" --recipes "$CM" --interval 60 > "$T/cm.log" 2>&1 &
runner=$!
for _ in $(seq 1 100); do [ "$(runs cm-v1)" = 1 ] && break; sleep 0.05; done
check_eq "run: first version applied" 1 "$(runs cm-v1)"
t0=$(date +%s%N)
ln -s ..v2 "$CM/..data_tmp" && mv -T "$CM/..data_tmp" "$CM/..data" # what the kubelet does
for _ in $(seq 1 200); do [ "$(runs cm-v2)" = 1 ] && break; sleep 0.05; done
echo "# ..data swap applied after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
check_eq "run: the swapped version applied without waiting for the interval" 1 "$(runs cm-v2)"
kill -TERM $runner
wait $runner
check_eq "run: SIGTERM exits 0" 0 $?
check_contains "run: says it stops" "stopping" "$(cat "$T/cm.log")"

# SIGTERM during a step: its command is killed, the step is not marked done.
echo 'recipe "cm" { step "s" { function() exec.run { "sh", "-c", "echo cm-slow >> /tmp/runs; exec sleep 300" } end } }' > "$CM/..v2/50-cm.lua"
"$NODEINIT" run --target-pid "$FAKE" --recipes "$CM" --interval 60 > "$T/cm2.log" 2>&1 &
runner=$!
for _ in $(seq 1 100); do [ "$(runs cm-slow)" = 1 ] && break; sleep 0.05; done
kill -TERM $runner
wait $runner
check "SIGTERM mid-step: the step's command is gone" in_fake sh -c "! pgrep -f 'sleep [3]00' >/dev/null"
check_contains "SIGTERM mid-step: status says interrupted" '"name":"s","when":"once","result":"interrupted"' \
	"$(nodeinit status --json --target-pid "$FAKE" 2>/dev/null)"

# YAML and Lua recipes that describe the same steps behave the same (each on a fake host of its own).
mkdir -p "$T/eq-lua" "$T/eq-yaml"
cat > "$T/eq-lua/10-eq.lua" <<'EOF'
recipe "eq" {
  step "sysctl" { when = "boot", function() must(sysctl.set("net.core.somaxconn", "777")) end },
  step "file" { function() must(file.write("/etc/eq.conf", "a = 1\n", { mode = "0640" })) end },
  step "exec" { function() exec.ok { "sh", "-c", "echo eq-exec >> /tmp/runs" } end },
  step "kept" { check = function() return file.exists("/etc/hostname") end, function() error("not reached") end },
  step "fails" { function() exec.ok { "sh", "-c", "exit 3" } end },
  step "after" { function() exec.ok { "sh", "-c", "echo eq-after >> /tmp/runs" } end },
}
EOF
cat > "$T/eq-yaml/10-eq.yaml" <<'EOF'
recipe: eq
steps:
  - { name: sysctl, when: boot, sysctl: { net.core.somaxconn: 777 } }
  - { name: file, file: { path: /etc/eq.conf, content: "a = 1\n", mode: "0640" } }
  - { name: exec, exec: [sh, -c, "echo eq-exec >> /tmp/runs"] }
  - { name: kept, check: 'file.exists("/etc/hostname")', lua: 'error("not reached")' }
  - { name: fails, exec: [sh, -c, "exit 3"] }
  - { name: after, exec: [sh, -c, "echo eq-after >> /tmp/runs"] }
EOF
# effects and results of one form on the current fake host, as one comparable text
eq_run() {
	nodeinit apply --target-pid "$FAKE" --recipes "$1" >/dev/null 2>&1
	echo "exit=$?"
	in_fake sh -c 'cat /proc/sys/net/core/somaxconn; stat -c "%a %s" /etc/eq.conf; cat /tmp/runs'
	nodeinit status --json --target-pid "$FAKE" 2>/dev/null | sed 's/"duration_ms":[0-9]*//g; s/"finished_at":"[^"]*"//g; s/"boot_id":"[^"]*"//'
	nodeinit plan --target-pid "$FAKE" --recipes "$1" 2>&1 | grep '^eq/'
}
fakehost_start
eq_lua=$(eq_run "$T/eq-lua")
fakehost_start
eq_yaml=$(eq_run "$T/eq-yaml")
check_contains "lua form: effects and a failed step" "exit=1
777
640 6
eq-exec" "$eq_lua"
check_contains "lua form: kept, failed and pending recorded" '"name":"kept","when":"once","result":"kept"' "$eq_lua"
check_eq "yaml form behaves like the lua form (effects, status, plan)" "$eq_lua" "$eq_yaml"

# lint: every problem of a broken recipe, with positions; no host access needed.
mkdir -p "$T/bad"
cat > "$T/bad/10-bad.lua" <<'EOF'
recipe "bad" {
  step "x" { when = "sometimes", function() end },
  step "x" { function() end },
  step "y" { wehn = "boot", function() end },
  step "z" { },
}
EOF
printf 'recipe: badyaml\nsteps:\n  - name: q\n    sysctl: { a.b: 1 }\n    bogus: 2\n' > "$T/bad/20-bad.yaml"
printf 'recipe "syntax" { step "s" { function() end }\n' > "$T/bad/30-syntax.lua"
out=$(nodeinit lint --recipes "$T/bad" 2>&1)
check_eq "lint: exit 2" 2 $?
check_contains "lint: bad when with line" "10-bad.lua:2: step 'x': when must be once, boot or always" "$out"
check_contains "lint: duplicate step with line" "10-bad.lua:3: recipe 'bad': duplicate step name 'x'" "$out"
check_contains "lint: unknown key with line" "10-bad.lua:4: step 'y': unknown key 'wehn'" "$out"
check_contains "lint: missing body with line" "10-bad.lua:5: step 'z': needs a function" "$out"
check_contains "lint: yaml unknown key with line" "20-bad.yaml:5:" "$out"
check_contains "lint: lua syntax error with line" "30-syntax.lua:2:" "$out"
out=$(nodeinit lint --recipes "$R" 2>&1)
check_eq "lint: good recipes exit 0" 0 $?

finish
