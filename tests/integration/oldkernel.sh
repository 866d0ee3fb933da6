# nodeinit as on RHEL 8 (4.18) and Ubuntu 20.04 (5.4): tests/helpers/enosys answers ENOSYS for openat2,
# pidfd_open, clone3, close_range and faccessat2, for nodeinit and everything it starts. Under it, in
# a fake host: the legacy contract, a recipe with files, exec (with a timeout) and sysctls, status.
. "$(dirname "$0")/../lib/common.sh"
require_root

ENOSYS=$PWD/$BUILD/helpers/enosys
if [ ! -x "$ENOSYS" ]; then
	make --no-print-directory -s BUILD="$BUILD" "$BUILD/helpers/enosys" >"$T/make.log" 2>&1 ||
		{ not_ok "cannot build the enosys helper: $(tail -3 "$T/make.log")"; finish; }
fi
old() { "$ENOSYS" $NODEINIT_WRAP "$NODEINIT" "$@"; }
R=$T/recipes
mkdir -p "$R"

# The filter does what it says, and this kernel has the calls otherwise (so the fallbacks really run).
check_eq "filter: the five calls answer ENOSYS" "openat2 ENOSYS
pidfd_open ENOSYS
clone3 ENOSYS
close_range ENOSYS
faccessat2 ENOSYS" "$("$ENOSYS" --probe)"
check_eq "filter: without it, none answers ENOSYS on this kernel" "" "$("$ENOSYS" --probe-bare | grep ENOSYS)"

fakehost_start
check_eq "filter: inherited by what nodeinit starts" "openat2 ENOSYS" \
	"$(echo "return exec.run{'$ENOSYS', '--probe-bare'}.stdout" | old eval - --target-pid "$FAKE" 2>/dev/null | head -1)"

# --- the legacy contract -------------------------------------------------------------------------
script='echo ran >> /tmp/legacy-count'
cp=/tmp/startup-script.kubernetes.io_$(md5sum <<<"$script" | cut -c-32)
out=$(STARTUP_SCRIPT=$script old apply --target-pid "$FAKE" 2>&1)
check_eq "legacy: first apply exits 0" 0 $?
check_contains "legacy: success line printed" "!!! startup-script succeeded!" "$out"
check_eq "legacy: the script ran in the fake host" ran "$(in_fake cat /tmp/legacy-count)"
check "legacy: checkpoint created in the fake host" in_fake test -f "$cp"
out=$(STARTUP_SCRIPT=$script old apply --target-pid "$FAKE" 2>&1)
check_eq "legacy: second apply exits 0" 0 $?
check_eq "legacy: second apply does not re-run" ran "$(in_fake cat /tmp/legacy-count)"
check_eq "legacy: second apply prints nothing" "" "$(printf %s "$out" | grep -v ' info ' || true)"

# --- a recipe: files, exec with a timeout, sysctls ---------------------------------------------
fake_fwd=$(in_fake cat /proc/sys/net/ipv4/ip_forward)
want_fwd=$((1 - fake_fwd))
cat > "$R/10-old.lua" <<EOF2
recipe "old" {
  step "files" { function()
    file.mkdir("/etc/oldkernel", { mode = "0750" })
    file.write("/etc/oldkernel/a.conf", "a = 1\n", { mode = "0640" })
    file.ensure_line("/etc/oldkernel/a.conf", "b = 2")
    file.write("/tmp/gone", "x")
    file.remove("/tmp/gone")
  end },
  step "exec" { function()
    exec.ok { "sh", "-c", "echo from-exec > /tmp/exec-out" }
    local r = exec.run { "sh", "-c", "sleep 100 & echo \$! > /tmp/bg.pid; sleep 100", timeout = 0.5 }
    file.write("/tmp/timed-out", tostring(r.timed_out) .. " " .. tostring(r.signal))
  end },
  step "sysctl" { function() sysctl.set("net.ipv4.ip_forward", "$want_fwd") end },
}
EOF2
cat > "$R/20-old.yaml" <<'EOF2'
recipe: old-yaml
steps:
  - name: file
    file: { path: /etc/oldkernel/b.conf, content: "c = 3\n", mode: "0600" }
  - name: sysctl
    sysctl: { net.core.somaxconn: "2345" }
EOF2
strace -f -qq -e trace=pidfd_open,openat2 -o "$T/apply.strace" "$ENOSYS" $NODEINIT_WRAP "$NODEINIT" apply \
	--target-pid "$FAKE" --recipes "$R" > "$T/apply.log" 2>&1
check_eq "recipe: apply exits 0" 0 $?
check_contains "recipe: nodeinit met pidfd_open's ENOSYS (and fell back)" "pidfd_open(" "$(grep ENOSYS "$T/apply.strace")"
check_eq "recipe: nodeinit never calls openat2 (ni_chase walks by itself, the state dir too)" "" "$(grep 'openat2(' "$T/apply.strace")"
check_eq "files: written with content" "a = 1
b = 2" "$(in_fake cat /etc/oldkernel/a.conf)"
check_eq "files: modes" "750 640 600" "$(in_fake stat -c %a /etc/oldkernel /etc/oldkernel/a.conf /etc/oldkernel/b.conf | xargs)"
check_eq "files: YAML file step" "c = 3" "$(in_fake cat /etc/oldkernel/b.conf)"
check "files: removed" in_fake test ! -e /tmp/gone
check "files: nothing written to the real /etc" test ! -e /etc/oldkernel
check_eq "exec: ran in the fake host" from-exec "$(in_fake cat /tmp/exec-out)"
check_eq "exec: the timeout fired and killed with SIGKILL" "true 9" "$(in_fake cat /tmp/timed-out)"
bg=$(in_fake cat /tmp/bg.pid)
state=x
for _ in $(seq 1 100); do
	state=$(in_fake sh -c "sed 's/.*) //' /proc/$bg/stat 2>/dev/null | cut -d' ' -f1")
	[ -z "$state" ] || [ "$state" = Z ] && break
	sleep 0.1
done
check "exec: the timeout killed the process group, the background sleep too (state '${state:-gone}')" \
	test -z "$state" -o "$state" = Z
check_eq "sysctl: set in the fake host's netns" "$want_fwd" "$(in_fake cat /proc/sys/net/ipv4/ip_forward)"
check_eq "sysctl: YAML step" 2345 "$(in_fake cat /proc/sys/net/core/somaxconn)"

# --- status and a second pass --------------------------------------------------------------------
out=$(STARTUP_SCRIPT=$script old status --target-pid "$FAKE" 2>&1)
check_eq "status: exits 0" 0 $?
check_eq "status: the five steps are ok" 5 "$(printf '%s\n' "$out" | grep -cE '^  [a-z]+ +once +ok ')"
check_contains "status: the legacy script is done" "legacy: done" "$out"
old status --ready --target-pid "$FAKE" >/dev/null 2>&1
check_eq "status --ready: converged (exit 0)" 0 $?
out=$(old plan --target-pid "$FAKE" --recipes "$R" 2>&1)
check_contains "plan: a done step is skipped" "skip" "$out"
check_eq "plan: nothing to run" "" "$(printf '%s\n' "$out" | grep -w run || true)"

finish
