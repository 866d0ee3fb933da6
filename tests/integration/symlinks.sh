# No root write through a symlink another user planted (issue 15), against a fake host: nobody
# (uid 65534) plants links in a sticky world-writable directory (/tmp) and in a directory it owns
# (/var/lib/app: /var/lib is the fake host's own tmpfs); each primitive is refused with a message
# naming the link, and the target stays untouched. Root's own links (resolv.conf) keep working.
. "$(dirname "$0")/../lib/common.sh"
require_root
command -v setpriv >/dev/null || skip_all "needs setpriv (util-linux)"

R=$T/recipes
mkdir -p "$R"
fakehost_start

as_nobody() { in_fake setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
fp() { in_fake sh -c 'for f in "$@"; do printf "%s " "$(stat -c "%u:%g %a %F" "$f")"; cat "$f" 2>/dev/null | md5sum | cut -c-8; done' fp "$@"; }
# A recipe of one step that does one thing and fails with its message when refused.
recipe() { printf 'recipe "%s" {\n  step "s" { function() assert(%s) end },\n}\n' "$1" "$2" > "$R/$1.lua"; }

in_fake sh -ec '
	echo "root victim" > /etc/victim
	chmod 0644 /etc/victim
	[ -e /etc/hostname ] || echo fakehost > /etc/hostname
	[ -e /etc/hosts ] || echo "127.0.0.1 localhost" > /etc/hosts
	mkdir -p /var/lib/app /run/systemd/resolve
	chown 65534:65534 /var/lib/app
	echo "nameserver 127.0.0.53" > /run/systemd/resolve/stub-resolv.conf
	rm -f /etc/resolv.conf
	ln -s ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf'
as_nobody ln -s /etc/victim /tmp/planted
as_nobody ln -s /etc/victim /tmp/planted-line
as_nobody ln -s /etc /tmp/shared
as_nobody ln -s /etc /var/lib/app/data
as_nobody ln -s /etc /var/lib/app/etc
check_eq "nobody owns the planted links" "65534 65534 65534 65534 65534" \
	"$(echo $(in_fake stat -c %u /tmp/planted /tmp/planted-line /tmp/shared /var/lib/app/data /var/lib/app/etc))"
before=$(fp /etc /etc/victim /etc/hosts /etc/hostname)

recipe 10-write 'file.write("/tmp/planted", "pwned\n")'
recipe 20-ensure-line 'file.ensure_line("/tmp/planted-line", "pwned")'
recipe 30-mkdir-tmp 'file.mkdir("/tmp/shared", { mode = "1777" })'
recipe 40-mkdir-owned 'file.mkdir("/var/lib/app/data", { owner = "nobody", group = 65534, mode = "0770" })'
recipe 50-remove-middle 'file.remove("/var/lib/app/etc/hosts")'
recipe 60-write-middle 'file.write("/var/lib/app/etc/hostname", "pwned\n")'
recipe 70-resolv 'file.write("/etc/resolv.conf", "nameserver 10.0.0.53\n")'

out=$(nodeinit apply --target-pid "$FAKE" --recipes "$R" --state-dir /var/lib/nodeinit 2>&1)
check_eq "apply fails (the refused steps)" 1 $?
rule1="refusing to follow a symlink owned by uid 65534 in a directory owned by uid 0 (unsafe symlink"
rule2="refusing to go from /var/lib/app, a directory owned by uid 65534, to / (through the symlink /var/lib/app/etc), owned by uid 0 (unsafe transition"
check_contains "write through /tmp/planted is refused, naming link, owner and rule" "/tmp/planted: $rule1" "$out"
check_contains "ensure_line through /tmp/planted-line is refused" "/tmp/planted-line: $rule1" "$out"
check_contains "mkdir mode 1777 through /tmp/shared -> /etc is refused" "/tmp/shared: $rule1" "$out"
check_contains "mkdir owner/mode through nobody's /var/lib/app/data -> /etc is refused" \
	"/var/lib/app/data: refusing to go from /var/lib/app, a directory owned by uid 65534, to / (through the symlink /var/lib/app/data)" "$out"
check_contains "remove through the middle component /var/lib/app/etc is refused" "/var/lib/app/etc/hosts: $rule2" "$out"
check_contains "write through the middle component is refused" "/var/lib/app/etc/hostname: $rule2" "$out"
check_eq "/etc (mode, owner), /etc/victim, /etc/hosts and /etc/hostname are untouched" "$before" \
	"$(fp /etc /etc/victim /etc/hosts /etc/hostname)"
check_eq "the planted links are still there, not replaced" "/etc/victim /etc/victim /etc /etc /etc" \
	"$(echo $(in_fake readlink /tmp/planted /tmp/planted-line /tmp/shared /var/lib/app/data /var/lib/app/etc))"
check_eq "root's relative link /etc/resolv.conf -> ../run/... still works" "nameserver 10.0.0.53" \
	"$(in_fake cat /run/systemd/resolve/stub-resolv.conf)"
check "resolv.conf is still the link" in_fake test -L /etc/resolv.conf
out=$(nodeinit plan --target-pid "$FAKE" --recipes "$R" --state-dir /var/lib/nodeinit 2>&1)
check_contains "the refused step is recorded failed, not done" "10-write/s run failed" "$out"
check_contains "root's link step is done" "70-resolv/s skip done" "$out"

# The same link owned by root (what an admin made) is followed: the rule is about who planted it.
in_fake chown -h 0:0 /tmp/planted
out=$(nodeinit apply --target-pid "$FAKE" --recipes "$R" --state-dir /var/lib/nodeinit 2>&1)
check_eq "root's /tmp/planted is written through" "pwned" "$(in_fake cat /etc/victim)"
check "the real machine has no /etc/victim" test ! -e /etc/victim
check "the real machine has no /var/lib/app" test ! -e /var/lib/app
finish
