# Faults against fake hosts: SIGTERM in a long step, concurrent instances on one state dir, a full
# or read-only state dir, and the target going away in the middle of a pass.
. "$(dirname "$0")/lib/fakehost.sh"
require_root
command -v python3 >/dev/null || skip_all "needs python3 to parse status --json"

R=$T/recipes
mkdir -p "$R"
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
# status_json [ARGS]: status --json of the fake host; pyq EXPR: evaluates EXPR with d = that JSON.
status_json() { nodeinit status --json --target-pid "$FAKE" "$@" 2>/dev/null; }
pyq() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# result RECIPE STEP [ARGS]: the step's result in status --json ("none" when absent).
result() {
	local r=$1 s=$2
	shift 2
	status_json "$@" | pyq "next((st['result'] for rc in d['recipes'] if rc['name']=='$r' for st in rc['steps'] if st['name']=='$s'), 'none')"
}
# live_sleeps: sleep processes alive in the fake host (its init is one; killed ones stay as zombies of
# that init, which never reaps, so they are not counted).
live_sleeps() { nsenter -t "$FAKE" -p -m ps -eo stat=,comm= | awk '$1 !~ /^Z/ && $2 == "sleep"' | wc -l; }
# wait_for SECONDS CMD...: polls CMD every 50 ms.
wait_for() {
	local n=$(( $1 * 20 ))
	shift
	while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.05; n=$((n - 1)); done
	return 1
}

# --- SIGTERM during a long step: the command's children die, the record says interrupted, exit is prompt.
rel_fakehost_start
cat > "$R/10-long.lua" <<'EOF2'
recipe "long" {
  step "quick" { function() exec.ok { "true" } end },
  step "sleeper" { function()
    exec.run { "sh", "-c", "echo $$ > /tmp/sleeper.pid; sleep 30 & sleep 30; wait" }
  end },
  step "after" { function() file.write("/tmp/after", "ran") end },
}
EOF2
"$NODEINIT" apply --target-pid "$FAKE" --recipes "$R" > "$T/term1.log" 2>&1 &
victim=$!
wait_for 10 in_fake test -s /tmp/sleeper.pid
wait_for 5 sh -c "[ \$(nsenter -t $FAKE -p -m pgrep -cx sleep) -ge 3 ]" # init's sleep infinity, and two
check_eq "SIGTERM in exec.run: the command and its child run" 3 "$(live_sleeps)"
t0=$(date +%s%N)
kill -TERM $victim
wait $victim
rc=$?
took=$(ms_since "$t0")
echo "# faults: apply stopped $took ms after SIGTERM in exec.run{sleep 30}"
check_eq "SIGTERM in exec.run: apply exits 1 (not converged)" 1 $rc
check "SIGTERM in exec.run: exits within 5 s ($took ms)" [ "$took" -lt 5000 ]
check_eq "SIGTERM in exec.run: the command's process group is gone" 1 "$(live_sleeps)"
check_eq "SIGTERM in exec.run: status says interrupted" interrupted "$(result long sleeper)"
check_eq "SIGTERM in exec.run: the earlier step stays ok" ok "$(result long quick)"
check_eq "SIGTERM in exec.run: the later step did not run" pending "$(result long after)"
check "SIGTERM in exec.run: its file is absent" in_fake test ! -e /tmp/after
check_contains "SIGTERM in exec.run: the log says so" "step interrupted by a stop signal recipe=long step=sleeper" "$(cat "$T/term1.log")"

# A pure Lua busy loop (no timeout) under `run`: the count hook sees the signal.
rm -f "$R"/*
cat > "$R/10-busy.lua" <<'EOF2'
recipe "busy" {
  step "spin" { function()
    file.write("/tmp/spinning", "yes")
    local x = 0
    while true do x = x + 1 end
  end },
}
EOF2
"$NODEINIT" run --target-pid "$FAKE" --recipes "$R" --interval 1 > "$T/term2.log" 2>&1 &
victim=$!
wait_for 10 in_fake test -e /tmp/spinning
sleep 0.2
t0=$(date +%s%N)
kill -TERM $victim
wait $victim
rc=$?
took=$(ms_since "$t0")
echo "# faults: run stopped $took ms after SIGTERM in a Lua busy loop"
check_eq "SIGTERM in a Lua loop: run exits 0" 0 $rc
check "SIGTERM in a Lua loop: exits within 5 s ($took ms)" [ "$took" -lt 5000 ]
check_eq "SIGTERM in a Lua loop: status says interrupted" interrupted "$(result busy spin)"
check_contains "SIGTERM in a Lua loop: the log names the step" "step interrupted by a stop signal recipe=busy step=spin" "$(cat "$T/term2.log")"
# ...and the next pass runs it again (now quick).
sed -i 's/while true do x = x + 1 end/x = 1/' "$R/10-busy.lua"
nodeinit apply --target-pid "$FAKE" --recipes "$R" > /dev/null 2>&1
check_eq "after SIGTERM the next apply re-runs the interrupted step" ok "$(result busy spin)"

# A signal that comes while a step is in C code (a short pattern match: the count hook cannot see
# it there) lets that C call finish, within the watchdog's grace; the step is then interrupted
# (the stop came during it, whatever it returned), and no further step starts.
rm -f "$R"/*
cat > "$R/10-inc.lua" <<'EOF2'
recipe "inc" {
  step "in-c" { function()
    file.write("/tmp/in-c", "started");
    for _ = 1, 3 do ("a"):rep(120):find(".-.-.-b") end -- C, no hook in it
  end },
  step "next" { function() file.write("/tmp/next-ran", "yes") end },
}
EOF2
"$NODEINIT" apply --target-pid "$FAKE" --recipes "$R" > "$T/term3.log" 2>&1 &
victim=$!
wait_for 10 in_fake test -e /tmp/in-c
kill -TERM $victim
wait $victim
check_eq "SIGTERM during C code: apply exits 1" 1 $?
check_eq "SIGTERM during C code: the step is recorded interrupted, not ok" interrupted "$(result inc in-c)"
check_contains "SIGTERM during C code: the log says so" "step interrupted by a stop signal recipe=inc step=in-c" "$(cat "$T/term3.log")"
check "SIGTERM during C code: the next step does not start" in_fake test ! -e /tmp/next-ran
check_eq "SIGTERM during C code: status shows it pending" pending "$(result inc next)"
rel_kill_fake "$FAKE"

# --- Two and three instances on one state dir: every step runs once.
rel_fakehost_start
rm -f "$R"/*
cat > "$R/10-once.lua" <<'EOF2'
local function bump(name) exec.ok { "sh", "-c", "echo " .. name .. " >> /tmp/runs; sleep 0.2" } end
recipe "once" {
  step "a" { function() bump("a") end },
  step "b" { function() bump("b") end },
  step "c" { function() bump("c") end },
}
EOF2
runs() { in_fake sh -c "grep -cx '$1' /tmp/runs 2>/dev/null || true"; }
for n in 2 3; do
	in_fake rm -rf /var/lib/nodeinit /tmp/runs
	pids=()
	# two run (the DaemonSet during a rolling update), plus one apply for three; started directly,
	# not through the nodeinit function, so $! is the process that SIGTERM must reach
	for i in 1 2; do
		$NODEINIT_WRAP "$NODEINIT" run --target-pid "$FAKE" --recipes "$R" --interval 1 > "$T/conc-$n-$i.log" 2>&1 &
		pids+=($!)
	done
	[ $n = 3 ] && { $NODEINIT_WRAP "$NODEINIT" apply --target-pid "$FAKE" --recipes "$R" > "$T/conc-$n-3.log" 2>&1 & apply_pid=$!; }
	wait_for 30 sh -c "[ \$(cat /proc/$FAKE/root/tmp/runs 2>/dev/null | wc -l) -ge 3 ]"
	sleep 2.5 # two more intervals: nothing may run again
	[ $n = 3 ] && wait $apply_pid
	[ $n = 3 ] && check_eq "$n instances: the apply exits 0" 0 $?
	kill -TERM "${pids[@]}"
	codes=
	for p in "${pids[@]}"; do wait "$p"; codes="$codes$?"; done
	check_eq "$n instances: each run exits 0 on SIGTERM" 00 "$codes"
	check_eq "$n instances: every step ran exactly once" "1 1 1" "$(runs a) $(runs b) $(runs c)"
	check_eq "$n instances: converged" True "$(status_json | pyq "d['converged']")"
done
rel_kill_fake "$FAKE"

# --- The state dir on a full disk (a 64k tmpfs), then with room again.
rel_fakehost_start
rm -f "$R"/*
{
	echo 'local function must(v, err) if v == nil then error(err, 2) end return v end'
	echo 'recipe "disk" {'
	# long names make each journal line long, so the disk fills in the middle of the pass
	for i in $(seq 1 20); do
		echo "  step \"step-$i-$(printf 'x%.0s' $(seq 1 110))\" { function() must(file.ensure_line(\"/tmp/disk-effects\", \"e$i\")) end },"
	done
	echo '}'
} > "$R/10-disk.lua"
in_fake sh -ec 'mkdir -p /var/lib/nodeinit && mount -t tmpfs -o size=64k,mode=0700 nodeinit-state /var/lib/nodeinit
	dd if=/dev/zero of=/var/lib/nodeinit/fill bs=4k 2>/dev/null || true'
out=$(nodeinit apply --target-pid "$FAKE" --recipes "$R" 2>&1)
check_eq "disk full: apply exits 1" 1 $?
check_contains "disk full: a clear error" "No space left on device" "$out"
check "disk full: status --json still parses" sh -c "$NODEINIT status --json --target-pid $FAKE | python3 -m json.tool >/dev/null"
check_eq "disk full: nothing recorded ok" 0 "$(status_json | pyq "sum(s['result'] in ('ok','kept') for r in d['recipes'] for s in r['steps'])")"
# Room for a few steps only: the disk fills in the middle of the pass.
in_fake sh -ec 'rm /var/lib/nodeinit/fill; dd if=/dev/zero of=/var/lib/nodeinit/fill bs=4k count=11 2>/dev/null'
out=$(nodeinit apply --target-pid "$FAKE" --recipes "$R" 2>&1)
check_eq "disk fills mid-pass: apply exits 1" 1 $?
check_contains "disk fills mid-pass: a clear error" "No space left on device" "$out"
ok_steps=$(status_json | pyq "sum(s['result']=='ok' for r in d['recipes'] for s in r['steps'])")
echo "# faults: $ok_steps of 20 steps were recorded before the disk filled"
check "disk fills mid-pass: some steps were recorded" [ "$ok_steps" -gt 0 ]
check "disk fills mid-pass: the journal parses: no torn or unknown line" python3 - "/proc/$FAKE/root/var/lib/nodeinit/disk.state" <<'PY'
import re, sys
raw = open(sys.argv[1], "rb").read()
assert raw.endswith(b"\n"), "torn last line"
lines = raw.decode().split("\n")[:-1]
assert lines[0].startswith("nodeinit-state 1 recipe=disk"), lines[0]
assert all(re.match(r"^((decl|plan|start|end) [^ =]+( [a-z_]+=[^ ]*)*|close)$", l) for l in lines[1:])
PY
check "disk fills mid-pass: every step recorded ok has its effect" sh -c "
	$NODEINIT status --json --target-pid $FAKE | python3 -c '
import json, sys
d = json.load(sys.stdin); eff = open(\"/proc/$FAKE/root/tmp/disk-effects\").read().split() if $ok_steps else []
bad = [s[\"name\"][:8] for r in d[\"recipes\"] for s in r[\"steps\"] if s[\"result\"] == \"ok\" and \"e\" + s[\"name\"].split(\"-\")[1] not in eff]
sys.exit(1 if bad else 0)'"
in_fake rm /var/lib/nodeinit/fill
out=$(nodeinit apply --target-pid "$FAKE" --recipes "$R" 2>&1)
check_eq "disk has room again: apply exits 0" 0 $?
check_eq "disk has room again: converged" True "$(status_json | pyq "d['converged']")"
check_eq "disk has room again: each effect once" "20 20" "$(in_fake sh -c 'wc -l < /tmp/disk-effects; sort -u /tmp/disk-effects | wc -l' | xargs)"
check_eq "disk: no temp file left in the state dir" "" "$(ls -A "/proc/$FAKE/root/var/lib/nodeinit" | grep tmp)"

# --- A read-only state dir: a clear error, the old records untouched; then writable again.
in_fake umount /var/lib/nodeinit
nodeinit apply --target-pid "$FAKE" --recipes "$R" > /dev/null 2>&1
before=$(md5sum < "/proc/$FAKE/root/var/lib/nodeinit/disk.state")
in_fake sh -ec 'mount --bind /var/lib/nodeinit /var/lib/nodeinit; mount -o remount,bind,ro /var/lib/nodeinit'
echo '  step "late" { function() must(file.ensure_line("/tmp/disk-effects", "late")) end },' > "$T/late"
sed -i "/^recipe \"disk\" {/r $T/late" "$R/10-disk.lua"
out=$(nodeinit apply --target-pid "$FAKE" --recipes "$R" 2>&1)
check_eq "read-only state dir: apply exits 1" 1 $?
check_contains "read-only state dir: a clear error" "Read-only file system" "$out"
check "read-only state dir: the new step did not run" in_fake sh -c '! grep -qx late /tmp/disk-effects'
check_eq "read-only state dir: the records are untouched" "$before" "$(md5sum < "/proc/$FAKE/root/var/lib/nodeinit/disk.state")"
check "read-only state dir: status --json parses" sh -c "$NODEINIT status --json --target-pid $FAKE | python3 -m json.tool >/dev/null"
in_fake umount /var/lib/nodeinit
out=$(nodeinit apply --target-pid "$FAKE" --recipes "$R" 2>&1)
check_eq "writable again: apply exits 0" 0 $?
check_eq "writable again: the new step ran once" 1 "$(in_fake grep -cx late /tmp/disk-effects)"
rel_kill_fake "$FAKE"

# --- The target goes away mid-pass (the fake host is killed while a step runs): a clear error,
# exit 3, and no record for the step that was cut off (the state dir is bind-mounted from here,
# so it can be read after the host is gone).
rel_fakehost_start
rm -f "$R"/*
cat > "$R/10-gone.lua" <<'EOF2'
recipe "gone" {
  step "first" { function() exec.ok { "true" } end },
  step "long" { function() exec.ok { "sh", "-c", "touch /tmp/long-started; sleep 30" } end },
  step "after" { function() exec.ok { "true" } end },
}
EOF2
cat > "$R/20-other.lua" <<'EOF2'
recipe "other" { step "one" { function() exec.ok { "true" } end } }
EOF2
mkdir -p "$T/gone-state"
in_fake sh -ec "mkdir -p /var/lib/nodeinit && mount --bind '$T/gone-state' /var/lib/nodeinit"
"$NODEINIT" apply --target-pid "$FAKE" --recipes "$R" > "$T/gone.log" 2>&1 &
victim=$!
wait_for 10 in_fake test -e /tmp/long-started
t0=$(date +%s%N)
rel_kill_fake "$FAKE"
wait $victim
rc=$?
took=$(ms_since "$t0")
echo "# faults: apply stopped $took ms after the target was killed"
check_eq "target gone: apply exits 3" 3 $rc
check "target gone: exits within 5 s ($took ms)" [ "$took" -lt 5000 ]
check_contains "target gone: a clear error naming the step" "the target process is gone; step not recorded, stopping recipe=gone step=long" "$(cat "$T/gone.log")"
check "target gone: no misleading fork error" sh -c "! grep -q 'Cannot allocate memory' '$T/gone.log'"
check "target gone: nothing after it ran" sh -c "! grep -q 'step start recipe=other' '$T/gone.log'"
check "target gone: the journal says ok for the first step, interrupted for the cut-off one" python3 - "$T/gone-state/gone.state" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
assert lines[-1] == "", "torn last line"
last = {}
for l in lines:
    if l.startswith(("start ", "end ")):
        w = l.split()
        last[w[1]] = "interrupted" if w[0] == "start" else w[2].split("=")[1]
assert last == {"first": "ok", "long": "interrupted"}, last
PY

finish
