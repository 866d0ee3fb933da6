# One Lua file that uses every module (examples/eval-every-module.lua) runs against a fake host via eval.
. "$(dirname "$0")/../lib/common.sh"
require_root

fakehost_start
real_somaxconn=$(cat /proc/sys/net/core/somaxconn)
out=$(nodeinit eval examples/eval-every-module.lua --target-pid "$FAKE" 2>"$T/eval.log")
check_eq "eval of every module exits 0" 0 $?
IFS=$'\t' read -r host somaxconn conf code err lo nodes size changed exists listing mode facts lokeys accept_local <<<"$out"
check_eq "exec ran in the fake host" fakehost "$host"
check_eq "sysctl set and read back" 2048 "$somaxconn"
check_eq "file.write + ensure_line" "a = 1;b = 2;" "$conf"
check_eq "exec.run reports the exit code" 3 "$code"
check_eq "exec.run captures stderr" to-stderr "$err"
check_eq "ns.run ran the function in a netns" 0 "$lo"
check_eq "yaml.decode: a list" 2 "$nodes"
check_eq "yaml.decode: a number" 3 "$size"
check_eq "file.write reports changed" true "$changed"
check_eq "file.exists" true "$exists"
check_eq "file.symlink + file.list" "app.conf,current" "$listing"
check_eq "file.stat through the link" "0640" "$mode"
fake_id=$(in_fake sh -c '. /etc/os-release 2>/dev/null || . /usr/lib/os-release; echo "${ID:-linux}"')
check_eq "host facts: os id, arch, the fake host's interfaces" "$fake_id/$(uname -m)/$(in_fake ls /sys/class/net | wc -l)" "$facts"
check_eq "sysctl.keys found the loopback keys" true "$lokeys"
check_eq "sysctl.apply_conf: the explicit key wins over the glob" 1 "$accept_local"
check_contains "log.info line with fields" "eval done step=eval host=fakehost somaxconn=2048" "$(cat "$T/eval.log")"
check_eq "file written in the fake host, mode 0640" 640 "$(in_fake stat -c %a /etc/nodeinit-eval/app.conf)"
check "file absent on the real machine" test ! -e /etc/nodeinit-eval
check_eq "real somaxconn untouched" "$real_somaxconn" "$(cat /proc/sys/net/core/somaxconn)"
check_eq "fake host's somaxconn set" 2048 "$(in_fake cat /proc/sys/net/core/somaxconn)"
finish
