# The arm64 build under emulation (README: Architectures): the static aarch64 binary, cross-built
# through make (`make static ARCH=arm64`, incremental), run by qemu-user against fake hosts. A subset
# of the contract: exit codes, the legacy checkpoint and `!!!` lines, a Lua and a YAML recipe applied,
# `status --ready`, the nsenter personality, and the old-kernel path qemu-user forces (no openat2).
# Commands nodeinit starts in the host are the machine's own (amd64) programs, as on an arm64 node
# they would be the node's: only nodeinit itself is emulated.
ARM64_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
QEMU=${QEMU:-qemu-aarch64-static}
# ARM64_BIN: another aarch64 build to try (then nothing is built here).
export NODEINIT=${ARM64_BIN:-$ARM64_ROOT/build/arm64/nodeinit}
export NODEINIT_WRAP=$QEMU
. "$(dirname "$0")/../lib/common.sh"
require_root

if [ "$(dpkg --print-architecture 2>/dev/null)" = arm64 ]; then
	skip_all "this machine is arm64: the whole suite already runs the arm64 binary natively"
fi

md5_path() { echo "/tmp/startup-script.kubernetes.io_$(md5sum <<<"$1" | cut -c-32)"; }

# --- The cross build. make installs the cross toolchain and arm64 libraries when missing. Not the
# make that runs this suite: its MAKEFLAGS and environment carry its BUILD (and SAN=1 under make
# check, which a static cross build cannot link: SAN= on the command line wins over both).
if [ -z "${ARM64_BIN:-}" ]; then
	if env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$ARM64_ROOT" --no-print-directory ARCH=arm64 BUILD=build SAN= \
		static > "$T/build.log" 2>&1; then
		ok "make static ARCH=arm64 builds build/arm64/nodeinit"
	else
		not_ok "make static ARCH=arm64 builds build/arm64/nodeinit: $(tail -n 5 "$T/build.log")"
		finish
	fi
fi
desc=$(file -b "$NODEINIT")
check_contains "the binary is aarch64" "ELF 64-bit LSB executable, ARM aarch64" "$desc"
check_contains "the binary is static" "statically linked" "$desc"
if ! command -v "$QEMU" >/dev/null; then
	not_ok "$QEMU is installed (make static ARCH=arm64 installs qemu-user-static)"
	finish
fi
version=$(sed -n 's/^VERSION *:= *//p' "$ARM64_ROOT/Makefile")
check_eq "version runs under $QEMU" "nodeinit $version" "$(nodeinit version 2>&1 | head -n 1 | cut -d' ' -f1-2)"

# --- Recipes: one Lua, one YAML; lint touches no host.
R=$T/recipes
mkdir -p "$R"
cat > "$R/10-marker.lua" <<'EOF'
recipe "arm64-lua" {
  step "marker" { function() file.write("/tmp/arm64-lua", "lua\n", { mode = "0644" }) end },
}
EOF
cat > "$R/20-script.yaml" <<'EOF'
recipe: arm64-yaml
steps:
  - name: script
    script: |
      echo yaml > /tmp/arm64-yaml
EOF
out=$(nodeinit lint --recipes "$R" 2>&1)
check_eq "lint: exit 0" 0 $?
check_contains "lint: both recipes" "2 recipes" "$out"
mkdir -p "$T/bad"
printf 'recipe: bad\nsteps: [\n' > "$T/bad/10-bad.yaml"
nodeinit lint --recipes "$T/bad" >/dev/null 2>&1
check_eq "lint: broken YAML exits 2" 2 $?

# --- Exit codes that come before entering a host.
out=$(STARTUP_SCRIPT=true nodeinit apply --target-pid 999999999 2>&1)
check_eq "missing pid: exit 3" 3 $?
check_contains "missing pid: names it" "no such process: pid 999999999" "$out"

fakehost_start
out=$(env -u STARTUP_SCRIPT "$QEMU" "$NODEINIT" apply --target-pid "$FAKE" --recipes "$T/none" 2>&1)
check_eq "no script, no recipes: exit 2" 2 $?
check_contains "no script, no recipes: says why" "STARTUP_SCRIPT is not set" "$out"

# --- The nsenter personality (argv[0]), with the namespaces qemu-user lets a process join.
ln -sf "$NODEINIT" "$T/nsenter"
out=$("$QEMU" "$T/nsenter" -t "$FAKE" -u -i -n -p -- sh -c 'hostname; readlink /proc/self/ns/pid')
check_eq "nsenter -u -i -n -p runs in the fake host" "fakehost $(readlink "/proc/$FAKE/ns/pid")" "$(echo $out)"
"$QEMU" "$T/nsenter" -t "$FAKE" -u -- sh -c 'exit 7'
check_eq "nsenter passes the exit code through" 7 $?

# --- Entering the host's mount namespace. qemu-user runs a thread of its own (call_rcu) in every
# process, sharing its fs_struct, and the kernel refuses setns(CLONE_NEWNS) to a task that shares
# it (EINVAL). A nodeinit that unshares CLONE_FS first gets in; one that does not stops here, and
# what needs the host's files is skipped, saying why.
out=$(STARTUP_SCRIPT=true nodeinit apply --target-pid "$FAKE" --recipes "$T/none" 2>&1)
rc=$?
if [ $rc = 3 ] && printf %s "$out" | grep -q "cannot enter the mnt namespace of pid $FAKE: Invalid argument"; then
	for what in "legacy STARTUP_SCRIPT (checkpoint, !!! lines, exit 0/1)" "Lua and YAML recipes applied" \
		"status --ready" "nsenter -m" "no openat2"; do
		echo "SKIP - $TEST_NAME: $what: under qemu-user this binary cannot join a mount namespace" \
			"(setns(CLONE_NEWNS): EINVAL; nodeinit does not unshare(CLONE_FS) first)"
	done
	finish
fi
check_eq "enters the fake host's mount namespace under $QEMU" 0 $rc

# --- Legacy STARTUP_SCRIPT: the startup-script image's contract.
script='echo ran >> /tmp/arm64-count
uname -m > /tmp/arm64-uname'
out=$(STARTUP_SCRIPT=$script nodeinit apply --target-pid "$FAKE" --recipes "$T/none" 2>&1)
check_eq "legacy: first apply exits 0" 0 $?
check_contains "legacy: success line" "!!! startup-script succeeded!" "$out"
check_eq "legacy: the script ran once in the fake host" ran "$(in_fake cat /tmp/arm64-count 2>&1)"
# The host's bash is the machine's own: only nodeinit is emulated.
check_eq "legacy: the script ran the host's own programs" "$(uname -m)" "$(in_fake cat /tmp/arm64-uname 2>&1)"
cp=$(md5_path "$script")
check "legacy: checkpoint at the formula path in the fake host" in_fake test -f "$cp"
check_eq "legacy: checkpoint is an empty file" 0 "$(in_fake stat -c %s "$cp" 2>&1)"
check "legacy: checkpoint absent from the real machine" test ! -e "$cp"
out=$(STARTUP_SCRIPT=$script nodeinit apply --target-pid "$FAKE" --recipes "$T/none" 2>&1)
check_eq "legacy: second apply exits 0" 0 $?
check_eq "legacy: second apply does not re-run" ran "$(in_fake cat /tmp/arm64-count 2>&1)"
check_eq "legacy: second apply prints no !!! line" "" "$(printf '%s\n' "$out" | grep '^!!!')"
fail='echo partial > /tmp/arm64-partial; exit 3'
STARTUP_SCRIPT=$fail nodeinit apply --target-pid "$FAKE" --recipes "$T/none" 2>"$T/fail.err" >/dev/null
check_eq "legacy: failing script exits 1" 1 $?
check "legacy: exact failure line" grep -qx "!!! startup-script failed! exit code '3'" "$T/fail.err"
check "legacy: no checkpoint after failure" in_fake test ! -e "$(md5_path "$fail")"

# --- Recipes applied, and the readiness probe, in a host of their own (the failed script above is
# recorded, and would keep it from being ready).
fakehost_start
nodeinit status --ready --target-pid "$FAKE" --recipes "$R" >/dev/null 2>&1
check "status --ready is not 0 before the first apply" test $? != 0
out=$(nodeinit apply --target-pid "$FAKE" --recipes "$R" 2>&1)
check_eq "recipes: apply exits 0" 0 $?
check_eq "recipes: the Lua step wrote in the fake host" lua "$(in_fake cat /tmp/arm64-lua 2>&1)"
check_eq "recipes: the YAML script step ran in the fake host" yaml "$(in_fake cat /tmp/arm64-yaml 2>&1)"
check "recipes: nothing on the real machine" test ! -e /tmp/arm64-lua -a ! -e /tmp/arm64-yaml
check "recipes: state in the fake host" in_fake test -d /var/lib/nodeinit
nodeinit status --ready --target-pid "$FAKE" --recipes "$R" >/dev/null 2>&1
check_eq "status --ready exits 0 when converged" 0 $?
plan=$(nodeinit plan --target-pid "$FAKE" --recipes "$R" 2>&1)
check_contains "plan: the Lua step is done" "arm64-lua/marker skip done" "$plan"

# --- nsenter with the mount namespace, as chart hooks call it.
out=$("$QEMU" "$T/nsenter" -t "$FAKE" -m -u -i -n -p -- sh -c 'hostname; cat /tmp/arm64-lua')
check_eq "nsenter -m -u -i -n -p sees the fake host's files" "fakehost lua" "$(echo $out)"

# --- What qemu-user 7.2 cannot emulate: openat2 (syscall 437) is unknown to it and answers ENOSYS,
# as a kernel before 5.6 does. nodeinit needs none: every path is resolved by its own walk (ni_chase),
# so a pass under qemu makes no openat2 call at all and still lands. -strace shows the guest's
# syscalls, so that is seen, not assumed.
mkdir -p "$T/fb"
cat > "$T/fb/10-fallback.lua" <<'EOF'
recipe "arm64-fallback" {
  step "write" { function() file.write("/etc/arm64-fallback", "written\n", { mode = "0644" }) end },
}
EOF
"$QEMU" -strace "$NODEINIT" apply --target-pid "$FAKE" --recipes "$T/fb" > "$T/fallback.out" 2> "$T/fallback.strace"
check_eq "no openat2: apply exits 0" 0 $?
check "no openat2: the pass opened files (the trace is real)" grep -q "openat(" "$T/fallback.strace"
check "no openat2: none was called under qemu" sh -c "! grep -q 'Unknown syscall 437' '$T/fallback.strace'"
check_eq "no openat2: the file is written in the fake host" written "$(in_fake cat /etc/arm64-fallback 2>&1)"
check "no openat2: not on the real machine" test ! -e /etc/arm64-fallback
check_contains "no openat2: the step is recorded done" "arm64-fallback/write skip done" \
	"$(nodeinit plan --target-pid "$FAKE" --recipes "$T/fb" 2>&1)"

finish
