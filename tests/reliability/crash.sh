# Crash safety: a 30-step recipe applied to fake hosts while nodeinit is killed with SIGKILL at
# chosen points (>= 200 kill points), then applied to completion. After every kill the state must
# parse (status --json and the journal itself), no step may be recorded ok without its effect, and
# no idempotent effect may be there twice; at the end everything is there once.
# A kill point is a syscall of nodeinit's, not a moment: strace delivers SIGKILL as nodeinit
# enters its Nth call of one syscall (the only moments its effects can change), chosen uniformly
# over the syscalls a pass makes, as counted from uninterrupted passes. How busy the machine is
# changes nothing about where the kills land. (A write() cut short mid-way is test_state's: it cuts
# the journal at every byte.)
# CRASH_SEED=N reproduces the kill points of a run; CRASH_KILLS=N sets how many.
. "$(dirname "$0")/lib/fakehost.sh"
require_root
command -v python3 >/dev/null || skip_all "needs python3 to check the state"
command -v strace >/dev/null || skip_all "needs strace (Debian: strace) to place the kill points"

SEED=${CRASH_SEED:-$(( $(date +%s) % 100000 ))}
# Under valgrind (NODEINIT_WRAP) the killed runs stay bare (killing valgrind proves nothing) and
# fewer: the final applies and status run wrapped.
if [ -n "$NODEINIT_WRAP" ]; then WANT=${CRASH_KILLS:-20}; else WANT=${CRASH_KILLS:-200}; fi
KILLS_PER_HOST=5
# Our own generator (an LCG), so the kill points follow from the seed alone; $RANDOM stays the shell's.
rng=$SEED
rand() { rng=$(( (rng * 1103515245 + 12345) % 2147483648 )); RAND=$(( rng / 65536 % 32768 )); } # sets RAND
echo "# crash: seed $SEED (CRASH_SEED=$SEED reproduces the kill points), $WANT kill points"

R=$T/recipes
mkdir -p "$R" "$T/snap"
SYSCTLS=(net.core.somaxconn=1111 net.ipv4.tcp_fin_timeout=33 net.ipv4.tcp_keepalive_time=1234
	net.ipv4.tcp_keepalive_intvl=33 net.ipv4.tcp_keepalive_probes=7 net.ipv4.tcp_syn_retries=4
	net.ipv4.tcp_synack_retries=3 net.ipv4.ip_default_ttl=77 net.ipv4.tcp_retries2=9 net.unix.max_dgram_qlen=77)
# Step i: i%3==1 a line in a file (file.ensure_line), i%3==2 a sysctl, i%3==0 a command that adds
# its marker line once (and counts its runs in /tmp/crash-runs).
{
	echo '-- file.ensure_line and sysctl.set return false when there was nothing to change: only nil is an error.'
	echo 'local function must(v, err) if v == nil then error(err, 2) end return v end'
	echo 'recipe "crash" {'
	for i in $(seq 1 30); do
		case $((i % 3)) in
		1) echo "  step \"s$i\" { function() must(file.ensure_line(\"/etc/nodeinit-crash.conf\", \"line-$i\")) end },";;
		2) kv=${SYSCTLS[$(( (i - 2) / 3 ))]}
		   echo "  step \"s$i\" { function() must(sysctl.set(\"${kv%%=*}\", \"${kv#*=}\")) end },";;
		0) echo "  step \"s$i\" { function() exec.ok { \"sh\", \"-c\", \"echo s$i >> /tmp/crash-runs; grep -qx s$i /etc/nodeinit-crash.exec 2>/dev/null || echo s$i >> /etc/nodeinit-crash.exec\" } end },";;
		esac
	done
	echo '}'
} > "$R/10-crash.lua"
printf '%s\n' "${SYSCTLS[@]}" > "$T/sysctls"

# snapshot NAME: status, the journal and every effect, as they are now.
snapshot() {
	local d=$T/snap/$1 root=/proc/$FAKE/root
	mkdir -p "$d/state"
	"$NODEINIT" status --json --target-pid "$FAKE" > "$d/status.json" 2> "$d/status.err"
	cp -a "$root/var/lib/nodeinit/." "$d/state/" 2>/dev/null
	cp "$root/etc/nodeinit-crash.conf" "$d/conf" 2>/dev/null || : > "$d/conf"
	cp "$root/etc/nodeinit-crash.exec" "$d/exec" 2>/dev/null || : > "$d/exec"
	cp "$root/tmp/crash-runs" "$d/runs" 2>/dev/null || : > "$d/runs"
	nsenter -t "$FAKE" -n -- sh -c 'while IFS== read -r k v; do echo "$k=$(cat /proc/sys/$(echo "$k" | tr . /))"; done' \
		< "$T/sysctls" > "$d/sysctl"
}

apply_bare() { "$NODEINIT" apply --target-pid "$FAKE" --recipes "$R" >> "$T/apply.log" 2>&1; }

# traced_apply OUT [strace options]: an apply under strace, its syscalls to OUT (nodeinit's main
# thread alone: no -f, so neither the watchdog thread nor the steps' commands). Exits as the apply
# did; 137 when a kill point killed it.
traced_apply() {
	local out=$1
	shift
	strace -qq -e signal=none -o "$out" "$@" "$NODEINIT" apply --target-pid "$FAKE" --recipes "$R" >> "$T/apply.log" 2>&1 &
	wait $! 2>/dev/null # no "Killed" line from the shell: a kill point is the point
}
# syscall_counts FILE: "name count" per syscall of a strace -o file, by name.
syscall_counts() { sed -n 's/^\([a-z0-9_]*\)(.*/\1/p' "$1" | LC_ALL=C sort | uniq -c | awk '{ print $2, $1 }'; }

# Calibration: on two fresh hosts, a whole pass and then one with nothing to do, counted by
# syscall. Counts barely move from run to run (a poll or a read more when a command's output comes
# in two pieces): the minimum of the two is what every pass makes at least.
for c in 1 2; do
	rel_fakehost_start
	traced_apply "$T/cal-full$c"
	check_eq "an uninterrupted pass converges (calibration $c)" 0 $?
	traced_apply "$T/cal-idle$c"
	check_eq "a pass with nothing to do exits 0 (calibration $c)" 0 $?
	[ $c = 2 ] && break
	snapshot clean
	# A writer killed between its temp file and the rename leaves the temp file: the next pass removes
	# the index's, the fingerprint cache's and the journals' (it holds the lock, as they did), not
	# the legacy record's or others.
	sd=/proc/$FAKE/root/var/lib/nodeinit
	for f in .index.tmp.0123456789abcdef .cache.tmp.0123456789abcdef .crash.state.tmp.0123456789abcdef \
		.legacy.tmp.0123456789abcdef .notes.tmp.x; do
		: > "$sd/$f"
	done
	apply_bare
	check_eq "temp files of killed writers are removed by the next pass" ".legacy.tmp.0123456789abcdef .notes.tmp.x" \
		"$(cd "$sd" && ls -A | grep tmp | xargs)"
	rel_kill_fake "$FAKE"
done
rel_kill_fake "$FAKE"
SC_NAME=() SC_FULL=() SC_IDLE=()
while read -r name f1 f2 i1 i2; do
	full=$(( f1 < f2 ? f1 : f2 )) idle=$(( i1 < i2 ? i1 : i2 ))
	[ "$full" -gt 0 ] || continue
	SC_NAME+=("$name") SC_FULL+=("$full") SC_IDLE+=("$(( idle < full ? idle : full ))")
done < <(LC_ALL=C join -a1 -e 0 -o 0,1.2,1.3,2.2,2.3 \
	<(LC_ALL=C join -a1 -a2 -e 0 -o 0,1.2,2.2 <(syscall_counts "$T/cal-full1") <(syscall_counts "$T/cal-full2")) \
	<(LC_ALL=C join -a1 -a2 -e 0 -o 0,1.2,2.2 <(syscall_counts "$T/cal-idle1") <(syscall_counts "$T/cal-idle2")))
PASS_CALLS=0 IDLE_CALLS=0
for i in "${!SC_NAME[@]}"; do PASS_CALLS=$((PASS_CALLS + SC_FULL[i])) IDLE_CALLS=$((IDLE_CALLS + SC_IDLE[i])); done
check "calibration counted a pass's syscalls (${#SC_NAME[@]} kinds, $PASS_CALLS calls)" [ "$PASS_CALLS" -gt 300 ]
echo "# crash: a pass makes at least $PASS_CALLS syscalls of ${#SC_NAME[@]} kinds, $IDLE_CALLS with nothing to do"

# pick_kill LEFT: sets KILL_SC and KILL_N, uniform over the syscalls of a pass with LEFT of the 30
# steps still to do (the start-up's and end's calls, plus that share of the steps' calls).
pick_kill() {
	local left=$1 total=0 r i span
	for i in "${!SC_NAME[@]}"; do total=$(( total + SC_IDLE[i] + (SC_FULL[i] - SC_IDLE[i]) * left / 30 )); done
	rand; r=$RAND; rand; r=$(( (r * 32768 + RAND) % total ))
	for i in "${!SC_NAME[@]}"; do
		span=$(( SC_IDLE[i] + (SC_FULL[i] - SC_IDLE[i]) * left / 30 ))
		if [ $r -lt $span ]; then KILL_SC=${SC_NAME[i]} KILL_N=$((r + 1)); return; fi
		r=$((r - span))
	done
}

# done_steps NAME: how many steps the snapshot's status shows ok.
done_steps() { grep -o '"result":"ok"' "$T/snap/$1/status.json" 2>/dev/null | wc -l; }

kills=0 missed=0 hosts=0 start=$(date +%s)
# Bounded by kill points and fake hosts, never by the clock: on a loaded machine it takes longer,
# it does not test less. Each host gets KILLS_PER_HOST tries; a kill point past the end of what the
# pass had left to do is a miss (the pass converged), so allow four times the hosts the kill points need.
max_hosts=$(( (WANT + KILLS_PER_HOST - 1) / KILLS_PER_HOST * 4 ))
while [ $kills -lt "$WANT" ] && [ $hosts -lt $max_hosts ]; do
	rel_fakehost_start
	hosts=$((hosts + 1))
	left=30
	for k in $(seq 1 $KILLS_PER_HOST); do
		pick_kill "$left"
		traced_apply /dev/null -e trace="$KILL_SC" -e inject="$KILL_SC:signal=KILL:when=$KILL_N"
		rc=$?
		if [ $rc = 137 ]; then
			kills=$((kills + 1))
			snapshot "h$hosts-k$k"
			echo "killed entering $KILL_SC call $KILL_N ($left steps left)" > "$T/snap/h$hosts-k$k/meta"
			left=$(( 30 - $(done_steps "h$hosts-k$k") ))
		else
			missed=$((missed + 1)) # it had finished: the next pass has nothing left to do
			echo "h$hosts-k$k: no kill at $KILL_SC call $KILL_N ($left steps left): exit $rc" >> "$T/missed"
			left=0
		fi
	done
	# Then to completion, wrapped (valgrind) when asked.
	nodeinit apply --target-pid "$FAKE" --recipes "$R" >> "$T/apply.log" 2>&1
	echo "final rc=$?" > "$T/final-h$hosts"
	snapshot "h$hosts-final"
	nodeinit status --json --target-pid "$FAKE" > "$T/snap/h$hosts-final/status-wrapped.json" 2>&1
	rel_kill_fake "$FAKE"
done
elapsed=$(( $(date +%s) - start ))
echo "# crash: $kills kill points on $hosts fake hosts in ${elapsed}s ($missed kill points came after the pass had ended)"
check "at least $WANT kill points ($kills)" [ "$kills" -ge "$WANT" ]
check_eq "every final apply exited 0" "" "$(grep -L 'final rc=0' "$T"/final-h* 2>/dev/null)"

python3 - "$T/snap" "$T/sysctls" > "$T/verdict" 2>&1 <<'PY'
import json, os, re, sys
snap, sysctls = sys.argv[1], dict(l.strip().split("=", 1) for l in open(sys.argv[2]))
keys = [f"net.{k}" if not k.startswith("net.") else k for k in sysctls]
LINE = re.compile(r"^((decl|plan|start|end) [^ =]+( [a-z_]+=[^ ]*)*|close)$")
problems, stats = [], {"snapshots": 0, "interrupted": 0, "ok_records": 0, "journal_lines": 0, "reruns": 0,
                       "torn_after_kill": 0}

def effect(step, d):
    i = int(step[1:])
    if i % 3 == 1:
        return d["conf"].count(f"line-{i}")
    if i % 3 == 2:
        k, v = list(sysctls.items())[(i - 2) // 3]
        return 1 if d["sysctl"].get(k) == v else 0
    return d["exec"].count(f"s{i}")

for name in sorted(os.listdir(snap)):
    p = os.path.join(snap, name)
    stats["snapshots"] += 1
    d = {f: open(os.path.join(p, f)).read().split() for f in ("conf", "exec", "runs")}
    d["sysctl"] = dict(l.split("=", 1) for l in open(os.path.join(p, "sysctl")).read().split())
    try:
        st = json.load(open(os.path.join(p, "status.json")))
    except ValueError as e:
        problems.append(f"{name}: status --json does not parse: {e}")
        continue
    # The journal itself: a header, then whole lines of known kinds; nothing torn.
    for fn in os.listdir(os.path.join(p, "state")):
        raw = open(os.path.join(p, "state", fn), "rb").read()
        # Right after a kill a writer's temp file may be there (the next pass removes it; checked below).
        if fn.startswith(".") and ".tmp." in fn and "-k" not in name:
            problems.append(f"{name}: a temp file was left behind: {fn}")
        if not fn.endswith(".state"):
            continue
        if raw and not raw.endswith(b"\n"):
            # SIGKILL can cut one write() short at a page boundary (the kernel checks for a fatal
            # signal between pages): right after a kill the last line may be torn. It reads as a
            # corrupt line, and the next pass's ni_journal_open cuts it off: never after a full apply.
            if "-k" in name:
                stats["torn_after_kill"] += 1
            else:
                problems.append(f"{name}: {fn} ends with a torn line")
        lines = raw.decode().split("\n")[:-1]
        if lines and not lines[0].startswith("nodeinit-state 1 recipe=crash"):
            problems.append(f"{name}: {fn} header: {lines[0]!r}")
        for l in lines[1:]:
            stats["journal_lines"] += 1
            if not LINE.match(l):
                problems.append(f"{name}: {fn}: unparsable line {l!r}")
    steps = {s["name"]: s["result"] for r in st["recipes"] if r["name"] == "crash" for s in r["steps"]}
    for s, res in steps.items():
        n = effect(s, d)
        if res in ("ok", "kept"):
            stats["ok_records"] += 1
            if n == 0:
                problems.append(f"{name}: {s} is recorded {res} but its effect is missing")
        if res == "interrupted":
            stats["interrupted"] += 1
    for i in range(1, 31):
        if i % 3 != 2 and effect(f"s{i}", d) > 1:
            problems.append(f"{name}: the effect of s{i} is there {effect(f's{i}', d)} times")
    if name.endswith("-final") or name == "clean":
        if not st["converged"] or len(steps) != 30 or set(steps.values()) != {"ok"}:
            problems.append(f"{name}: not converged after the final apply: {st['converged']} {sorted(set(steps.values()))} {len(steps)} steps")
        for i in range(1, 31):
            if effect(f"s{i}", d) != 1:
                problems.append(f"{name}: after the final apply the effect of s{i} is there {effect(f's{i}', d)} times")
        stats["reruns"] += len(d["runs"]) - 10
        w = os.path.join(p, "status-wrapped.json")
        if os.path.exists(w):
            try:
                json.load(open(w))
            except ValueError as e:
                problems.append(f"{name}: wrapped status --json does not parse: {e}")
for pr in problems[:20]:
    print("PROBLEM", pr)
print("STATS", " ".join(f"{k}={v}" for k, v in stats.items()), f"problems={len(problems)}")
# Where the kills landed: how many steps were done by then, in buckets of five.
hist = {}
for name in os.listdir(snap):
    if "-k" in name:
        st = json.load(open(os.path.join(snap, name, "status.json")))
        n = sum(s["result"] == "ok" for r in st["recipes"] for s in r["steps"])
        hist[n // 5 * 5] = hist.get(n // 5 * 5, 0) + 1
print("HIST", " ".join(f"{k}-{k + 4}:{hist[k]}" for k in sorted(hist)))
PY
grep -v '^STATS\|^HIST' "$T/verdict" | head -20
echo "# crash: steps done when the kills landed: $(grep '^HIST' "$T/verdict" | cut -d' ' -f2-)"
stats=$(grep '^STATS' "$T/verdict")
echo "# crash: ${stats#STATS }"
check_contains "every snapshot checked: state parses, nothing ok without its effect, nothing twice" "problems=0" "$stats"
check "some kills left a step interrupted (the test reaches mid-step)" grep -q 'interrupted=[1-9]' "$T/verdict"
check "no temp file outlives the apply after a crash" [ -z "$(find "$T"/snap/*-final -name '.*.tmp.*' | head -1)" ]
echo "# crash: $(find "$T"/snap/*-k* -name '.*.tmp.*' | wc -l) temp files seen right after kills"
finish
