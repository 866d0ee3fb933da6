# The fingerprint cache (core/cache.h): a no-op apply takes its steps from the state dir's cache
# with no Lua load; what a file's load-time code read (os.getenv) is part of the key; a file whose
# load-time code asks for the time is never cached; a corrupt, foreign or deleted cache is ignored
# and rewritten, never trusted.
. "$(dirname "$0")/../lib/common.sh"
require_root

R=$T/recipes
mkdir -p "$R"
S=/var/lib/nodeinit
runs() { in_fake sh -c "grep -cx '$1' /tmp/runs 2>/dev/null || true"; }
apply() { NODEINIT_LOG_LEVEL=debug nodeinit apply --target-pid "$FAKE" --recipes "$R" "$@" 2>&1; }
cached() { grep -c 'recipes from the fingerprint cache' <<<"$1"; }
fakehost_start
CACHE=/proc/$FAKE/root$S/cache

cat > "$R/10-mirror.lua" <<'EOF2'
-- load-time code reads MIRROR: the step's params, and so its fingerprint, depend on it
local url = os.getenv("MIRROR") or "none"
recipe "mirror" {
  step "write" { params = { url = url }, function(p)
    exec.run { "sh", "-c", "echo write >> /tmp/runs" }
    file.write("/tmp/mirror", p.url .. "\n")
  end },
}
EOF2
cat > "$R/20-plain.yaml" <<'EOF2'
recipe: plain
steps:
  - name: one
    exec: [sh, -c, "echo one >> /tmp/runs"]
EOF2

out=$(MIRROR=mirror-value-a apply); rc=$?
check_eq "first apply exits 0" 0 $rc
check_eq "first apply: loaded with Lua, not from a cache" 0 "$(cached "$out")"
check "the cache is in the state dir" test -f "$CACHE"
check_eq "the cache is root's, not writable by others" "0 0" "$(stat -c '%u %g' "$CACHE")"
check_eq "the cache keys 10-mirror.lua on a hash of MIRROR's value" 1 "$(grep -cE '^env [0-9a-f]{64} MIRROR$' "$CACHE")"
check "the cache does not hold the value itself" sh -c "! grep -q 'mirror-value' '$CACHE'"

out=$(MIRROR=mirror-value-a apply); rc=$?
check_eq "no-op apply exits 0" 0 $rc
check_eq "no-op apply: steps from the cache" 1 "$(cached "$out")"
check_eq "no-op apply: no step ran" "1 1" "$(runs write) $(runs one)"

out=$(MIRROR=b apply); rc=$?
check_eq "MIRROR changed: apply exits 0" 0 $rc
check_eq "MIRROR changed: not from the cache" 0 "$(cached "$out")"
check_eq "MIRROR changed: the step it feeds ran again, the other did not" "2 1" "$(runs write) $(runs one)"
check_eq "MIRROR changed: the new value is written" b "$(in_fake cat /tmp/mirror)"
out=$(MIRROR=b apply)
check_eq "MIRROR as before: from the cache again" 1 "$(cached "$out")"

# an edit re-runs the edited step only
sed -i 's/echo one >> /echo one  >> /' "$R/20-plain.yaml"
sed -i 's/echo one  >> \/tmp\/runs/echo one >> \/tmp\/runs; true/' "$R/20-plain.yaml"
out=$(MIRROR=b apply)
check_eq "edited file: not from the cache" 0 "$(cached "$out")"
check_eq "edited file: the edited step ran, the other did not" "2 2" "$(runs write) $(runs one)"

# corrupt: one byte changed; it is ignored with a warning, nothing re-runs, and a good one replaces it
printf 'X' | dd of="$CACHE" bs=1 seek=100 conv=notrunc status=none
out=$(MIRROR=b apply); rc=$?
check_eq "corrupt cache: apply exits 0" 0 $rc
check_contains "corrupt cache: a warning says it is ignored" "ignoring the fingerprint cache" "$out"
check_eq "corrupt cache: not used" 0 "$(cached "$out")"
check_eq "corrupt cache: nothing ran again" "2 2" "$(runs write) $(runs one)"
out=$(MIRROR=b apply)
check_eq "corrupt cache: rewritten, used by the next apply" 1 "$(cached "$out")"

# a truncated cache is a corrupt one
truncate -s -10 "$CACHE"
out=$(MIRROR=b apply)
check_eq "truncated cache: not used" 0 "$(cached "$out")"
check_eq "truncated cache: nothing ran again" "2 2" "$(runs write) $(runs one)"

# another user's cache is not believed (statedir.h's trust rules)
chown 65534 "$CACHE"
out=$(MIRROR=b apply)
check_eq "a cache owned by another user: not used" 0 "$(cached "$out")"
check_contains "a cache owned by another user: a warning says it is ignored" "ignoring the fingerprint cache" "$out"
check_eq "a cache owned by another user: nothing ran again" "2 2" "$(runs write) $(runs one)"
out=$(MIRROR=b apply)
check_eq "a cache owned by another user: replaced by root's, used by the next apply" "1 0" "$(cached "$out") $(stat -c %u "$CACHE")"

# deleted: safe
rm -f "$CACHE"
out=$(MIRROR=b apply); rc=$?
check_eq "deleted cache: apply exits 0, nothing ran again" "0 2 2" "$rc $(runs write) $(runs one)"
out=$(MIRROR=b apply)
check_eq "deleted cache: made again" 1 "$(cached "$out")"

# another binary (a copy: another inode) does not trust this one's cache
cp "$NODEINIT" "$T/nodeinit-copy"
out=$(MIRROR=b NODEINIT_LOG_LEVEL=debug "$T/nodeinit-copy" apply --target-pid "$FAKE" --recipes "$R" 2>&1)
check_eq "another binary: not from this one's cache" 0 "$(cached "$out")"

# load-time code that asks for the time is never cached
cat > "$R/30-clock.lua" <<'EOF2'
local t = os.time()
recipe "clock" { step "noop" { function() end } }
EOF2
MIRROR=b apply >/dev/null
out=$(MIRROR=b apply)
check_eq "a file whose load-time code calls os.time: loaded with Lua every time" 0 "$(cached "$out")"
check_eq "a file whose load-time code calls os.time: not in the cache" 0 "$(grep -c ' 30-clock.lua$' "$CACHE")"
check_eq "...while the others are" 2 "$(grep -cE ' (10-mirror.lua|20-plain.yaml)$' "$CACHE")"
check_eq "...and nothing ran again" "2 2" "$(runs write) $(runs one)"
rm "$R/30-clock.lua"

# os.getenv inside a step body (not at load time) is not part of the key
cat > "$R/30-late.lua" <<'EOF2'
recipe "late" { step "s" { function() local _ = os.getenv("LATE") end } }
EOF2
MIRROR=b apply >/dev/null
check_eq "a step's own os.getenv: not in the key" 0 "$(grep -c ' LATE$' "$CACHE")"
out=$(MIRROR=b LATE=x apply)
check_eq "a step's own os.getenv: the cache answers" 1 "$(cached "$out")"

# plan still loads the recipes itself and agrees
check_eq "plan after all this: every step done" \
	"$(printf 'late/s skip done\nmirror/write skip done\nplain/one skip done')" \
	"$(MIRROR=b nodeinit plan --target-pid "$FAKE" --recipes "$R" 2>&1 | sort)"

# run: a converged pass drops its Lua state; a failed step's back-off running out (no inotify event,
# no edit) still loads it again and runs the step; SIGTERM still ends it cleanly
R2=$T/recipes2
mkdir -p "$R2"
cat > "$R2/10-flaky.lua" <<'EOF2'
recipe "flaky" {
  step "s" { function() exec.run { "sh", "-c", "echo flaky >> /tmp/runs; test -e /tmp/flaky-ok" } end },
}
EOF2
NODEINIT_LOG_LEVEL=debug "$NODEINIT" run --target-pid "$FAKE" --recipes "$R2" --state-dir /var/lib/nodeinit-run \
	--interval 1 > "$T/run.log" 2>&1 &
RUN_PID=$!
for _ in $(seq 1 100); do [ "$(runs flaky)" -ge 1 ] && break; sleep 0.1; done
check_eq "run: the step failed once" 1 "$(runs flaky)"
in_fake touch /tmp/flaky-ok
converged=no
for _ in $(seq 1 300); do
	if nodeinit status --ready --target-pid "$FAKE" --state-dir /var/lib/nodeinit-run >/dev/null 2>&1; then converged=yes; break; fi
	sleep 0.1
done
check_eq "run: after its back-off the step ran again from a dropped Lua state, and passed" yes "$converged"
n=$(runs flaky)
sleep 2.5
check_eq "run: converged, it runs nothing more" "$n" "$(runs flaky)"
kill -TERM $RUN_PID
wait $RUN_PID
check_eq "run: SIGTERM ends it with 0" 0 $?
check_contains "run: it said it was stopping" "stopping" "$(cat "$T/run.log")"
finish
