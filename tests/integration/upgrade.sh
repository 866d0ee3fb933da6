# An upgrade re-runs nothing: the state nodeinit 0.1.0 left after applying its recipes
# (tests/fixtures/upgrade-v0.1.0) plans as done under this binary, status --ready passes, and
# apply runs no step.
. "$(dirname "$0")/../lib/common.sh"
require_root

F=$PWD/tests/fixtures/upgrade-v0.1.0
OLD_BOOT=9a0c00ed-0518-46ad-acc3-81bb6e572773

# install_state same-boot|other-boot: the fixture's state dir on the fake host, its records' boot_id
# made the fake host's (an upgrade without a reboot) or another one (the node rebooted since).
install_state() {
	local s=/proc/$FAKE/root/var/lib/nodeinit boot=00000000-0000-0000-0000-000000000000
	rm -rf "$s" && mkdir -p "$s" && cp "$F"/state/* "$s"/ && chmod 0700 "$s"
	[ "$1" = same-boot ] && boot=$(in_fake cat /proc/sys/kernel/random/boot_id)
	sed -i "s/boot=$OLD_BOOT/boot=$boot/" "$s"/*.state
}
plan() { nodeinit plan --target-pid "$FAKE" --recipes "$F/recipes" 2>&1; }

fakehost_start
install_state same-boot
want='base/sysctl skip done
base/marker skip done
base/kept skip kept
base/params skip done
base/secret skip done
base/exec skip done
yaml/forward skip done
yaml/file skip done
yaml/exec skip done
yaml/script skip done
yaml/lua skip done
yaml/checked skip kept'
out=$(plan)
check_eq "plan exits 0 on 0.1.0's state" 0 $?
check_eq "plan: every step of 0.1.0's state is skipped as done or kept" "$want" "$out"
nodeinit status --ready --target-pid "$FAKE" >/dev/null 2>&1
check_eq "status --ready exits 0 on 0.1.0's state" 0 $?
check_eq "status --json: the same bytes 0.1.0 printed (but the boot)" \
	"$(sed "s/$OLD_BOOT/BOOT/" "$F/status.json")" \
	"$(nodeinit status --json --target-pid "$FAKE" | sed "s/$(in_fake cat /proc/sys/kernel/random/boot_id)/BOOT/")"
out=$(nodeinit apply --target-pid "$FAKE" --recipes "$F/recipes" 2>&1)
check_eq "apply exits 0" 0 $?
check "apply started no step" test -z "$(echo "$out" | grep 'step start')"
check "no command ran in the fake host" test ! -e "/proc/$FAKE/root/tmp/upgrade-runs"
check_eq "plan after the apply: still all done" "$want" "$(plan)"

# After a reboot only the boot steps are due.
install_state other-boot
out=$(plan)
check_eq "after a reboot: the boot steps run, nothing else" \
	"$(echo "$want" | sed -e 's#^base/sysctl skip done#base/sysctl run boot#' -e 's#^yaml/forward skip done#yaml/forward run boot#')" \
	"$(echo "$out" | grep -v '^    ')"
finish
