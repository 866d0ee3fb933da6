#!/usr/bin/env bash
# make bench: nodeinit against what it replaces, on fake hosts only, as one table (README: Performance).
# Usage: tests/bench/bench.sh NODEINIT   (the static binary; BUILD names the build dir)
# BENCH_RUNS (default 7, at least 5) timed runs per case; BENCH_IDLE (default 20) idle intervals.
# The machine is small and shared: every case interleaves nodeinit with its alternative, reports the
# median with min and max, and the ratio comes first.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
export NODEINIT=$(realpath "${1:-$BUILD/nodeinit}")
RUNS=${BENCH_RUNS:-7}
IDLE=${BENCH_IDLE:-20}
NKEYS=1000
[ "$RUNS" -ge 5 ] || RUNS=5
. tests/lib/common.sh
require_root
[ -x "$NODEINIT" ] || { echo "bench: no binary at $NODEINIT" >&2; exit 1; }
LEGACY_LOOP=$PWD/tests/bench/legacy-loop.sh
ROWS=()
NOTES=()
BG_PIDS=()
cleanup() {
	local p
	for p in "${BG_PIDS[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null; done
	fakehost_stop
}
trap cleanup EXIT
progress() { printf '# %s\n' "$*" >&2; }

# ---- measuring ---------------------------------------------------------------------------------

# timed CMD...: runs it with its output discarded; DT is the wall time in microseconds, RC its status.
timed() {
	local a=${EPOCHREALTIME/./} b
	"$@" >/dev/null 2>&1
	RC=$?
	b=${EPOCHREALTIME/./}
	DT=$((b - a))
}

# stats VALUE...: "median min max" of integers (an odd count gives the middle one).
stats() {
	printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {m = NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; print m, v[1], v[NR]}'
}

# fmt_us "MED MIN MAX": "12.3 ms [11.9-13.0]"
fmt_us() {
	awk -v s="$1" 'BEGIN {split(s, a, " "); u = a[1] >= 10000 ? 0 : 1; if (a[1] < 1000) u = 2;
		printf "%.*f ms [%.*f-%.*f]", u, a[1]/1000, u, a[2]/1000, u, a[3]/1000}'
}

# row RATIO TARGET MET CASE NODEINIT ALTERNATIVE
row() { ROWS+=("$(printf '%s\t%s\t%s\t%s\t%s\t%s' "$@")"); }

# ratio "MED..." "MED...": nodeinit's median over the alternative's, "x.xxx"
ratio() { awk -v a="${1%% *}" -v b="${2%% *}" 'BEGIN {if (b == 0) print "-"; else printf "%.3f", a / b}'; }
# met RATIO OP LIMIT
met() { awk -v r="$1" -v op="$2" -v l="$3" 'BEGIN {ok = op == "<" ? r < l : op == "<=" ? r <= l : r >= l; print (r == "-" ? "-" : ok ? "yes" : "NO")}'; }

# ---- the fake host and its 1000 per-netns keys --------------------------------------------------

progress "fake host, interfaces, $NKEYS sysctl keys"
fakehost_start
. tests/bench/keys.sh
bench_keys bench "$NKEYS"
NIFS=$(in_fake ip -o link show | grep -c ': bench')

# Key n (from 1) gets (n + p) % 2 in parity p: every run flips every key, so every run writes.
bench_recipes
for p in 0 1; do
	awk -v p=$p '{print "sysctl -q -w " $0 "=" (NR + p) % 2}' "$T/keys" > "/proc/$FAKE/root/tmp/perkey$p.sh"
done
FIRST=$(head -n1 "$T/keys" | tr . /)
LAST=$(tail -n1 "$T/keys" | tr . /)
# want P: the first and last keys hold parity P's values (read in the fake host's netns).
want() {
	local got
	got=$(nsenter -t "$FAKE" -n cat "/proc/sys/$FIRST" "/proc/sys/$LAST" | tr '\n' ' ')
	[ "$got" = "$(((1 + $1) % 2)) $(((NKEYS + $1) % 2)) " ] || { echo "bench: keys not at parity $1 after $2 (got '$got')" >&2; exit 1; }
}
in_fake sysctl -q -p /tmp/sysctl0.conf
want 0 priming
PARITY=1

# The state dir on the disk, as on a node: fdatasync costs what it costs there (tmpfs would hide it).
mkdir -p "$T/state"
in_fake sh -c "mkdir -p /var/lib/nodeinit && mount --bind '$T/state' /var/lib/nodeinit"
STATE_FS=$(findmnt -no FSTYPE -T "$T/state")

ni_apply() { "$NODEINIT" apply --target-pid "$FAKE" --interval 1 "$@"; }

# ---- 1. idle ----------------------------------------------------------------------------------

progress "idle: $IDLE intervals of --interval 1 (nodeinit x2 and the legacy bash loop, side by side)"
SCRIPT='echo hi'
CHECKPOINT=/tmp/startup-script.kubernetes.io_$(md5sum <<<"$SCRIPT" | cut -c-32)
in_fake touch "$CHECKPOINT"
mkdir -p "$T/r50"
{ echo "recipe: fifty"; echo "steps:"
  for i in $(seq 1 50); do printf '  - name: step%d\n    sysctl: { %s: "%d" }\n' $i "$(sed -n ${i}p "$T/keys")" $(((i + 0) % 2)); done; } > "$T/r50/10-fifty.yaml"
STARTUP_SCRIPT=$SCRIPT ni_apply --recipes "$T/r50" --state-dir /var/lib/nodeinit/idle50 >"$T/idle50-apply.log" 2>&1 ||
	{ echo "bench: the 50-step recipe did not converge: $(tail -3 "$T/idle50-apply.log")" >&2; exit 1; }
want 0 "the 50-step recipe" # it sets the first 50 keys to parity 0's values, which they had
# The 1000-step recipe, converged (the keys hold parity 0's values), and one converged `always` step.
ni_apply --recipes "$T/steps0" --state-dir /var/lib/nodeinit/idle1000 >"$T/idle1000-apply.log" 2>&1 ||
	{ echo "bench: the 1000-step recipe did not converge: $(tail -3 "$T/idle1000-apply.log")" >&2; exit 1; }
mkdir -p "$T/ralways"
printf 'recipe: drift\nsteps:\n  - name: key1\n    when: always\n    sysctl: { %s: "1" }\n' "$(sed -n 1p "$T/keys")" > "$T/ralways/10-drift.yaml"
ni_apply --recipes "$T/ralways" --state-dir /var/lib/nodeinit/idlealways >/dev/null 2>&1 ||
	{ echo "bench: the always recipe did not converge" >&2; exit 1; }
mkdir -p "$T/r1000always"
cp "$T/steps0/10-bench.yaml" "$T/r1000always/10-bench.yaml"
cp "$T/ralways/10-drift.yaml" "$T/r1000always/20-drift.yaml"
ni_apply --recipes "$T/r1000always" --state-dir /var/lib/nodeinit/idle1000always >/dev/null 2>&1 ||
	{ echo "bench: the 1000-step + always recipes did not converge" >&2; exit 1; }
want 0 "the idle recipes"
# idle_run NAME RUN-ARGS...: a `run` in the background, its pid in PID_<NAME>
idle_run() {
	local v=$1
	shift
	STARTUP_SCRIPT=$SCRIPT setsid "$NODEINIT" run --target-pid "$FAKE" --interval 1 "$@" >"$T/idle-$v.log" 2>&1 </dev/null &
	eval "PID_$v=\$!"
	BG_PIDS+=("$!")
}
idle_run A --recipes "$T/none"
idle_run B --recipes "$T/r50" --state-dir /var/lib/nodeinit/idle50
idle_run C --recipes "$T/steps0" --state-dir /var/lib/nodeinit/idle1000
idle_run D --recipes "$T/ralways" --state-dir /var/lib/nodeinit/idlealways
idle_run E --recipes "$T/r1000always" --state-dir /var/lib/nodeinit/idle1000always
STARTUP_SCRIPT=$SCRIPT TARGET_PID=$FAKE CHECK_INTERVAL_SECONDS=1 setsid bash "$LEGACY_LOOP" >"$T/idle-bash.log" 2>&1 </dev/null &
PID_L=$!
BG_PIDS+=("$PID_L")
sleep 3.5 # past the first pass of each (the 1000-step one loads its recipe)
INFO0_D=$(grep -c ' info ' "$T/idle-D.log")
for p in $PID_A $PID_B $PID_C $PID_D $PID_E $PID_L; do
	timeout -s INT "$IDLE.5" strace -f -qq -o "$T/idle.$p.strace" -p "$p" 2>/dev/null &
done
RSS_A=() RSS_B=() RSS_C=() RSS_D=() RSS_E=() RSS_L=()
for _ in $(seq 1 "$IDLE"); do
	sleep 1
	for v in A B C D E L; do eval "RSS_$v+=(\"\$(awk '/^VmRSS/ {print \$2}' /proc/\$PID_$v/status)\")"; done
done
wait_strace() { while pgrep -f "strace -f -qq -o $T/idle" >/dev/null; do sleep 0.2; done; }
wait_strace
INFO1_D=$(grep -c ' info ' "$T/idle-D.log")
for p in $PID_A $PID_B $PID_C $PID_D $PID_E $PID_L; do kill -- "-$p" 2>/dev/null || kill "$p"; done
BG_PIDS=()
# per_interval FILE MARKER_REGEX: "forks execs syscalls intervals" per interval
per_interval() {
	local f=$1 n forks execs calls
	n=$(grep -cE "$2" "$f")
	forks=$(grep -cE '^[0-9]+ +(clone|clone3|fork|vfork)\(' "$f")
	execs=$(grep -E '^[0-9]+ +execve\(' "$f" | grep -vc ' = -1 ')
	calls=$(grep -vcE 'resumed>|^[0-9]+ +\+\+\+|^[0-9]+ +---' "$f")
	awk -v n="$n" -v f="$forks" -v e="$execs" -v c="$calls" 'BEGIN {if (n == 0) n = 1; printf "%.1f %.1f %.1f %d", f/n, e/n, c/n, n}'
}
# One interval of a run ends in its poll timing out (the checkpoint's name shows up in two calls a pass).
for v in A B C D E; do
	eval "read -r F$v E$v C$v N$v <<<\"\$(per_interval \"\$T/idle.\$PID_$v.strace\" '^[0-9]+ +poll\\(.* = 0 \\(Timeout\\)')\""
done
read -r FL EL CL NL <<<"$(per_interval "$T/idle.$PID_L.strace" 'execve\("[^"]*/stat", .* = 0$')"
for v in A B C D E L; do eval "read -r RM_$v RL_$v RH_$v <<<\"\$(stats \"\${RSS_$v[@]}\")\""; done
fmt_kib() { awk -v m="$1" -v l="$2" -v h="$3" 'BEGIN {printf "%.2f MiB [%.2f-%.2f]", m/1024, l/1024, h/1024}'; }
for v in A B C D E; do
	eval "f=\$F$v e=\$E$v c=\$C$v n=\$N$v rm=\$RM_$v rl=\$RL_$v rh=\$RH_$v"
	case $v in
	A) what="legacy script done" ;;
	B) what="legacy done + 50-step recipe converged" ;;
	C) what="legacy done + 1000-step recipe converged" ;;
	D) what="legacy done + 1 converged always step" ;;
	E) what="legacy done + 1000 steps + 1 always step (Lua kept)" ;;
	esac
	fe=$(awk -v f="$f" -v e="$e" 'BEGIN {print f + e}')
	fel=$(awk -v f="$FL" -v e="$EL" 'BEGIN {print f + e}')
	row "$(awk -v a="$fe" -v b="$fel" 'BEGIN {printf "%.3f", b ? a / b : 0}')" "0 forks" "$([ "$fe" = 0 ] && echo yes || echo NO)" \
		"idle, $what: forks+execs per interval" "$f forks + $e execs ($c syscalls, $n intervals)" \
		"$FL forks + $EL execs (bash loop, $NL intervals)"
	[ $v = D ] && continue
	target="<= 2 MiB"
	[ $v = E ] && target="-"
	row "$(awk -v a="$rm" -v b="$RM_L" 'BEGIN {printf "%.3f", a / b}')" "$target" "$([ $v = E ] && echo - || awk -v r="$rm" 'BEGIN {print r <= 2048 ? "yes" : "NO"}')" \
		"idle, $what: steady RSS" "$(fmt_kib "$rm" "$rl" "$rh")" "$(fmt_kib "$RM_L" "$RL_L" "$RH_L") (bash alone)"
done
# Info lines while idle, per hour at the default interval (30 s): one idle interval here is 1 s.
INFO_H=$(awk -v d="$((INFO1_D - INFO0_D))" -v n="$ND" 'BEGIN {if (n == 0) n = 1; printf "%.0f", d / n * 120}')
row "-" "0" "$([ "$INFO_H" = 0 ] && echo yes || echo NO)" "idle, 1 converged always step: info lines per hour (interval 30 s)" \
	"$INFO_H ($((INFO1_D - INFO0_D)) in $ND intervals)" "0 (the bash loop prints nothing)"
IDLE_STRACE_B=$T/idle.$PID_B.strace

# ---- 2, 3. 1000 sysctls: first apply, no-op re-apply, against sysctl -w per key and sysctl -p ------

progress "1000 sysctls: $RUNS rounds of 1000 steps, 1 step of 1000 keys, sysctl -p, sysctl -w per key"
S_STEPS=() S_STEPS_NOOP=() S_STEPS_NOCACHE=() S_ONE=() S_ONE_NOOP=() S_P=() S_W=()
for i in $(seq 1 "$RUNS"); do
	p=$PARITY
	timed ni_apply --recipes "$T/steps$p" --state-dir /var/lib/nodeinit/steps$i
	[ $RC = 0 ] || { echo "bench: nodeinit apply (1000 steps) exited $RC" >&2; exit 1; }
	S_STEPS+=("$DT"); want $p "nodeinit, 1000 steps"
	timed ni_apply --recipes "$T/steps$p" --state-dir /var/lib/nodeinit/steps$i
	S_STEPS_NOOP+=("$DT"); want $p "nodeinit, 1000 steps again"
	rm -f "$T/state/steps$i/cache" # what a reload costs: the same no-op apply with a Lua load
	timed ni_apply --recipes "$T/steps$p" --state-dir /var/lib/nodeinit/steps$i
	S_STEPS_NOCACHE+=("$DT"); want $p "nodeinit, 1000 steps again, no cache"
	p=$((1 - p))
	timed in_fake sysctl -q -p /tmp/sysctl$p.conf
	[ $RC = 0 ] || { echo "bench: sysctl -p exited $RC" >&2; exit 1; }
	S_P+=("$DT"); want $p "sysctl -p"
	p=$((1 - p))
	timed ni_apply --recipes "$T/one$p" --state-dir /var/lib/nodeinit/one$i
	[ $RC = 0 ] || { echo "bench: nodeinit apply (1 step) exited $RC" >&2; exit 1; }
	S_ONE+=("$DT"); want $p "nodeinit, 1 step"
	timed ni_apply --recipes "$T/one$p" --state-dir /var/lib/nodeinit/one$i
	S_ONE_NOOP+=("$DT"); want $p "nodeinit, 1 step again"
	p=$((1 - p))
	timed in_fake bash /tmp/perkey$p.sh
	[ $RC = 0 ] || { echo "bench: the sysctl -w script exited $RC" >&2; exit 1; }
	S_W+=("$DT"); want $p "sysctl -w per key"
	PARITY=$((1 - p))
done
# What one first apply does, for the notes: its syscalls (strace -c), outside the timed runs.
strace -f -c -o "$T/apply.strace-c" "$NODEINIT" apply --target-pid "$FAKE" --recipes "$T/steps$PARITY" \
	--state-dir /var/lib/nodeinit/straced >/dev/null 2>&1
PARITY=$((1 - PARITY))
syscount() { awk -v s="$1" '$NF == s {print $4; f=1} END {if (!f) print 0}' "$T/apply.strace-c"; }

st_steps=$(stats "${S_STEPS[@]}") st_steps_noop=$(stats "${S_STEPS_NOOP[@]}") st_steps_nocache=$(stats "${S_STEPS_NOCACHE[@]}")
st_one=$(stats "${S_ONE[@]}") st_one_noop=$(stats "${S_ONE_NOOP[@]}")
st_p=$(stats "${S_P[@]}") st_w=$(stats "${S_W[@]}")
r=$(ratio "$st_steps" "$st_p"); row "$r" "<= 1.5" "$(met "$r" "<=" 1.5)" "apply 1000 sysctls: 1000 YAML steps vs sysctl -p" "$(fmt_us "$st_steps")" "$(fmt_us "$st_p")"
r=$(ratio "$st_one" "$st_p"); row "$r" "<= 1.5" "$(met "$r" "<=" 1.5)" "apply 1000 sysctls: 1 step of 1000 keys vs sysctl -p" "$(fmt_us "$st_one")" "$(fmt_us "$st_p")"
r=$(ratio "$st_steps" "$st_w"); row "$r" "<= 0.05" "$(met "$r" "<=" 0.05)" "apply 1000 sysctls: 1000 YAML steps vs sysctl -w per key" "$(fmt_us "$st_steps")" "$(fmt_us "$st_w")"
r=$(ratio "$st_one" "$st_w"); row "$r" "<= 0.05" "$(met "$r" "<=" 0.05)" "apply 1000 sysctls: 1 step of 1000 keys vs sysctl -w per key" "$(fmt_us "$st_one")" "$(fmt_us "$st_w")"
r=$(ratio "$st_steps_noop" "$st_steps"); row "$r" "< 0.10" "$(met "$r" "<" 0.10)" "no-op re-apply vs first apply: 1000 steps" "$(fmt_us "$st_steps_noop")" "$(fmt_us "$st_steps") (first)"
r=$(ratio "$st_steps_nocache" "$st_steps"); row "$r" "-" "-" "no-op re-apply without the cache (a Lua load: what a reload costs): 1000 steps" "$(fmt_us "$st_steps_nocache")" "$(fmt_us "$st_steps") (first)"
r=$(ratio "$st_one_noop" "$st_one"); row "$r" "< 0.10" "$(met "$r" "<" 0.10)" "no-op re-apply vs first apply: 1 step" "$(fmt_us "$st_one_noop")" "$(fmt_us "$st_one") (first)"

# ---- 4. start-up ------------------------------------------------------------------------------

progress "start-up: nodeinit version, an empty apply, /bin/true"
mkdir -p "$T/empty"
printf 'recipe: empty\nsteps: []\n' > "$T/empty/10-empty.yaml"
BATCH=20
# batch CMD...: DT is the mean of BATCH runs in a row (one sample)
batch() {
	local a=${EPOCHREALTIME/./} b k
	for ((k = 0; k < BATCH; k++)); do "$@" >/dev/null 2>&1; done
	b=${EPOCHREALTIME/./}
	DT=$(((b - a) / BATCH))
}
S_V=() S_E=() S_T=()
for i in $(seq 1 "$RUNS"); do
	batch "$NODEINIT" version; S_V+=("$DT")
	batch ni_apply --recipes "$T/empty" --state-dir /var/lib/nodeinit/empty; S_E+=("$DT")
	batch /bin/true; S_T+=("$DT")
done
ni_apply --recipes "$T/empty" --state-dir /var/lib/nodeinit/empty >/dev/null 2>&1 || { echo "bench: the empty apply fails" >&2; exit 1; }
st_v=$(stats "${S_V[@]}") st_e=$(stats "${S_E[@]}") st_t=$(stats "${S_T[@]}")
row "$(ratio "$st_v" "$st_t")" "-" "-" "start-up: nodeinit version vs /bin/true" "$(fmt_us "$st_v")" "$(fmt_us "$st_t")"
row "$(ratio "$st_e" "$st_t")" "-" "-" "start-up: empty apply (enter host, lock, state) vs /bin/true" "$(fmt_us "$st_e")" "$(fmt_us "$st_t")"

# ---- 5. size ----------------------------------------------------------------------------------

strip --strip-all -o "$T/nodeinit.stripped" "$NODEINIT"
SIZE=$(stat -c %s "$T/nodeinit.stripped")
# The legacy image's working set: the loop's programs and the shared libraries they load.
TOOLS=$(for c in bash nsenter stat sleep md5sum cut touch; do command -v $c; done)
LEGACY_SIZE=$( { for f in $TOOLS; do realpath "$f"; ldd "$f" 2>/dev/null | awk '/=> \// {print $3} /^\t\/.*ld-linux/ {print $1}' | xargs -r realpath; done; } | sort -u | xargs stat -L -c %s | awk '{s += $1} END {print s}')
row "$(awk -v a="$SIZE" -v b="$LEGACY_SIZE" 'BEGIN {printf "%.3f", a / b}')" "-" "-" "size: static binary (stripped) vs the legacy loop's programs + libs" \
	"$(awk -v s="$SIZE" 'BEGIN {printf "%.2f MiB", s / 1048576}')" "$(awk -v s="$LEGACY_SIZE" 'BEGIN {printf "%.2f MiB (bash nsenter stat sleep md5sum cut touch)", s / 1048576}')"
if IMG=$(timeout 10 docker image inspect nodeinit:dev --format '{{.Size}}' 2>/dev/null) && [ -n "$IMG" ]; then
	row "-" "-" "-" "size: image nodeinit:dev" "$(awk -v s="$IMG" 'BEGIN {printf "%.2f MiB", s / 1048576}')" "-"
else
	NOTES+=("image: not measured (no docker daemon or no nodeinit:dev image here; \`make image\` builds it)")
fi

# ---- the table ----------------------------------------------------------------------------------

NOTES+=("1000 keys: net.ipv{4,6}.conf.benchN.* on $NIFS $IFTYPE interfaces in the fake host's netns; values flip every run")
NOTES+=("state dir on $STATE_FS (the bench's build dir bind-mounted at the fake host's /var/lib/nodeinit)")
NOTES+=("one 1000-step first apply: $(syscount openat) openat, $(syscount write) write, $(syscount fdatasync) fdatasync, $(syscount fsync) fsync, $(syscount read) read (strace -c)")
NOTES+=("nodeinit idle pass (50-step recipe): $(grep -vE 'resumed>|poll\(|restart_syscall' "$IDLE_STRACE_B" | sed -E 's/^[0-9]+ +//; s/\(.*//' | sort | uniq -c | sort -rn | awk -v n="$NB" '{printf "%s%s %.0f", (NR > 1 ? ", " : ""), $2, $1 / n}') per interval")
NOTES+=("legacy bash loop: nsenter + stat + sleep each interval; its RSS is bash's alone")

echo
echo "nodeinit bench: $(nproc) cores, kernel $(uname -r), $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "binary: $NODEINIT ($(file -b "$NODEINIT" | cut -d, -f1,4 | tr -s ' '))"
echo "timings: median [min-max] of $RUNS runs (start-up: of $RUNS batches of $BATCH); ratio = nodeinit / alternative"
echo
{
	printf 'ratio\ttarget\tmet\tcase\tnodeinit\talternative\n'
	printf '%s\n' "${ROWS[@]}"
} | awk -F'\t' '{for (i = 1; i <= NF; i++) {c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i)}; n = NR}
	END {for (r = 1; r <= n; r++) {line = ""; for (i = 1; i <= 6; i++) line = line (i < 6 ? sprintf("%-*s  ", w[i], c[r, i]) : c[r, i]);
		print line; if (r == 1) {s = ""; for (i = 1; i <= 6; i++) s = s sprintf("%s  ", substr("----------------------------------------------------------------------------------------------------", 1, w[i])); print s}}}'
echo
printf -- '- %s\n' "${NOTES[@]}"
