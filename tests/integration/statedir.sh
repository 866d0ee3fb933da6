# The state dir is trusted only when it deserves it (issue 15): one another user made, or can write,
# or whose lock, index or records another user owns, is refused at once with exit 2 and a message
# naming the path, its owner and mode, and the rule. Never a wait on a lock another user holds, never
# a converged status from records another user forged. A fresh one is made 0700.
. "$(dirname "$0")/../lib/common.sh"
require_root
command -v setpriv >/dev/null || skip_all "needs setpriv (util-linux)"

R=$T/recipes
mkdir -p "$R"
cat > "$R/10-once.lua" <<'EOF'
recipe "once" {
  step "mark" { function() exec.run { "sh", "-c", "echo ran >> /tmp/runs" } end },
}
EOF
runs() { in_fake sh -c 'cat /tmp/runs 2>/dev/null | wc -l'; }
# Every run is bounded: a wait on the lock would fail the test (timeout's 124), not hang it.
ni() { local cmd=$1; shift; timeout 20 "$NODEINIT" "$cmd" --target-pid "$FAKE" --recipes "$R" "$@"; }
as_nobody() { in_fake setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
fakehost_start

# 1. /tmp/nodeinit made by nobody, who also holds its lock.
as_nobody mkdir /tmp/nodeinit
as_nobody sh -c ': > /tmp/nodeinit/lock'
as_nobody flock /tmp/nodeinit/lock sleep 300 &
holder=$!
for _ in $(seq 1 100); do in_fake pgrep -x sleep >/dev/null && break; sleep 0.05; done
out=$(ni apply --state-dir /tmp/nodeinit 2>&1); rc=$?
check_eq "nobody's state dir: apply exits 2 at once (no wait on nobody's lock)" 2 "$rc"
check_contains "nobody's state dir: the message names the path" "/tmp/nodeinit is owned by uid 65534" "$out"
check_contains "nobody's state dir: ... and the rule" "must be owned by root" "$out"
check_eq "nobody's state dir: nothing ran" 0 "$(runs)"
out=$(ni status --state-dir /tmp/nodeinit 2>&1); rc=$?
check_eq "nobody's state dir: status exits 2" 2 "$rc"
check_contains "nobody's state dir: status says why" "refusing the state dir /tmp/nodeinit" "$out"
ni status --ready --state-dir /tmp/nodeinit >/dev/null 2>&1
check_eq "nobody's state dir: status --ready exits 2" 2 $?
ni plan --state-dir /tmp/nodeinit >/dev/null 2>&1
check_eq "nobody's state dir: plan exits 2" 2 $?

# 2. Made root's and 0700, but the lock is still nobody's (and held): refused, no wait.
in_fake chown 0:0 /tmp/nodeinit
in_fake chmod 0700 /tmp/nodeinit
out=$(ni apply --state-dir /tmp/nodeinit 2>&1); rc=$?
check_eq "nobody's lock in root's dir: apply exits 2 at once" 2 "$rc"
check_contains "nobody's lock in root's dir: the message names the lock" "/tmp/nodeinit/lock is owned by uid 65534, mode 0" "$out"
check_contains "nobody's lock in root's dir: ... and the rule" "regular files owned by root" "$out"
kill "$holder" 2>/dev/null
in_fake pkill -x sleep
wait "$holder" 2>/dev/null
in_fake rm -rf /tmp/nodeinit

# 3. A root-owned 0777 state dir: anyone could plant files in it.
in_fake sh -c 'mkdir /tmp/nodeinit && chmod 0777 /tmp/nodeinit'
out=$(ni apply --state-dir /tmp/nodeinit 2>&1); rc=$?
check_eq "root's 0777 state dir: apply exits 2" 2 "$rc"
check_contains "root's 0777 state dir: the message names mode and rule" "uid 0, mode 0777: the state dir and its parents must not be writable by group or others" "$out"
ni status --ready --state-dir /tmp/nodeinit >/dev/null 2>&1
check_eq "root's 0777 state dir: status --ready exits 2" 2 $?
check_eq "root's 0777 state dir: nothing ran" 0 "$(runs)"
in_fake rm -rf /tmp/nodeinit

# 4. Missing: status and plan create nothing; a fresh apply makes it 0700, root's, and converges.
ni status --ready --state-dir /tmp/nodeinit >/dev/null 2>&1
check_eq "missing state dir: status --ready says not converged (1)" 1 $?
ni plan --state-dir /tmp/nodeinit >/dev/null 2>&1
check_eq "missing state dir: plan exits 0" 0 $?
check "missing state dir: status and plan did not create it" in_fake test ! -e /tmp/nodeinit
ni apply --state-dir /tmp/nodeinit >/dev/null 2>&1
check_eq "fresh state dir: apply exits 0" 0 $?
check_eq "fresh state dir: made 0700 and root's" "700 0:0" "$(in_fake stat -c '%a %u:%g' /tmp/nodeinit)"
check_eq "fresh state dir: the step ran once" 1 "$(runs)"
ni status --ready --state-dir /tmp/nodeinit >/dev/null 2>&1
check_eq "fresh state dir: status --ready exits 0" 0 $?

# 5. Forged records: the same bytes as real ones, in a safe dir, but owned by nobody. A step that
# never ran there would read as done; it is refused instead.
in_fake sh -ec 'mkdir -m 0700 /tmp/forged; cp /tmp/nodeinit/index /tmp/nodeinit/once.state /tmp/forged/'
ni status --ready --state-dir /tmp/forged >/dev/null 2>&1
check_eq "copied records owned by root: believed (status --ready 0)" 0 $?
in_fake chown 65534:65534 /tmp/forged/index /tmp/forged/once.state
out=$(ni status --ready --state-dir /tmp/forged 2>&1); rc=$?
check_eq "forged records owned by nobody: status --ready exits 2" 2 "$rc"
check_contains "forged records owned by nobody: the message names a forged file" "/tmp/forged/" "$out"
check_contains "forged records owned by nobody: ... its owner" "is owned by uid 65534" "$out"
in_fake chown 0:0 /tmp/forged/index
out=$(ni status --json --state-dir /tmp/forged 2>&1); rc=$?
check_eq "a forged record alone: status exits 2" 2 "$rc"
check_contains "a forged record alone: named" "/tmp/forged/once.state is owned by uid 65534" "$out"
ni apply --state-dir /tmp/forged >/dev/null 2>&1
check_eq "a forged record alone: apply exits 2" 2 $?
check_eq "a forged record alone: the step did not run again" 1 "$(runs)"

# 6. The default state dir (/var/lib/nodeinit below the fake host's /var/lib) still just works.
ni apply >/dev/null 2>&1
check_eq "default state dir: apply exits 0" 0 $?
check_eq "default state dir: 0700" 700 "$(in_fake stat -c '%a' /var/lib/nodeinit)"

finish
