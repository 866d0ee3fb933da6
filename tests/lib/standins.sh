# Stand-ins in a fake host for what its namespaces and its copies do not keep to themselves. Sourced
# after common.sh, by tests that apply recipes which load modules, restart services or set huge pages.
#
# The fake host (common.sh) already keeps sysctls to itself: /proc/sys there is a copy whose vm.*,
# fs.*, kernel.* are plain files (read them with in_fake cat /proc/sys/...), net.* is its own network
# namespace's, and /sys is read-only. What is left, standins_install puts in place, in the fake host only:
#   - stand-in directories with fake attribute files, bind-mounted over the read-only
#     /sys/kernel/mm/transparent_hugepage, /sys/kernel/mm/hugepages and /sys/devices/system/node
#     (under $S/sys, readable from outside);
#   - scripts named modprobe and systemctl, which only append "NAME ARGS" to the fake host's
#     /tmp/standins.log, copied over every copy on PATH in the fake host's overlay root (and put in
#     /usr/local/sbin). A module name with an executable /tmp/fake-modules/NAME in the fake host runs
#     it (what loading it would do); /tmp/fake-modules/NAME.fail makes its modprobe fail;
#     /tmp/fake-systemctl.fail makes systemctl fail.
# standins_verify checks every piece from outside (mountinfo) and through nodeinit's own exec
# (standins_eval); it prints a FAIL line and returns 1 when one is missing. Call it before applying
# and stop the test when it fails. real_snapshot prints the real values, to show them unchanged.
# Stand-in files live under $T/standins.<fake host pid> (a test's work directory), never in the real /tmp.

# The non-namespaced sysctls the stock recipes write, shown unchanged by real_snapshot.
REAL_SYSCTLS="vm/nr_hugepages fs/inotify/max_user_instances fs/inotify/max_user_watches"
STANDIN_SYSFS="/sys/kernel/mm/transparent_hugepage /sys/kernel/mm/hugepages /sys/devices/system/node"
STANDIN_CMDS="modprobe systemctl"
# The stand-in files of the current fake host (set by standins_install).
S=

standins_prepare() {
	local d f n
	rm -rf "$S" && mkdir -p "$S/bin" "$S/sys/transparent_hugepage" "$S/sys/hugepages" "$S/sys/node"
	# THP: the real files' text ("always [madvise] never"), or a kernel default when there are none.
	for f in enabled:'always [madvise] never' defrag:'always defer defer+madvise [madvise] never' \
		shmem_enabled:'always within_size advise [never] deny force'; do
		cat "/sys/kernel/mm/transparent_hugepage/${f%%:*}" > "$S/sys/transparent_hugepage/${f%%:*}" 2>/dev/null ||
			echo "${f#*:}" > "$S/sys/transparent_hugepage/${f%%:*}"
	done
	# Huge page sizes and NUMA nodes as the machine has them (2048kB and node0 at least).
	for d in /sys/kernel/mm/hugepages/hugepages-*kB; do
		[ -d "$d" ] || continue
		mkdir -p "$S/sys/hugepages/${d##*/}" && cat "$d/nr_hugepages" > "$S/sys/hugepages/${d##*/}/nr_hugepages"
	done
	[ -n "$(ls "$S/sys/hugepages")" ] || { mkdir -p "$S/sys/hugepages/hugepages-2048kB" && echo 0 > "$S/sys/hugepages/hugepages-2048kB/nr_hugepages"; }
	for d in /sys/devices/system/node/node[0-9]*; do
		[ -d "$d" ] || continue
		n=${d##*/}
		for f in "$S"/sys/hugepages/hugepages-*; do
			mkdir -p "$S/sys/node/$n/hugepages/${f##*/}"
			cat "$d/hugepages/${f##*/}/nr_hugepages" > "$S/sys/node/$n/hugepages/${f##*/}/nr_hugepages" 2>/dev/null ||
				echo 0 > "$S/sys/node/$n/hugepages/${f##*/}/nr_hugepages"
		done
	done
	[ -n "$(ls "$S/sys/node")" ] || { mkdir -p "$S/sys/node/node0/hugepages/hugepages-2048kB" &&
		echo 0 > "$S/sys/node/node0/hugepages/hugepages-2048kB/nr_hugepages"; }

	cat > "$S/bin/modprobe" <<'EOF'
#!/bin/sh
# Stand-in for modprobe in a nodeinit test's fake host: it never loads anything into the kernel.
echo "modprobe $*" >> /tmp/standins.log
[ "$1" = --standin-probe ] && { echo "stand-in modprobe"; exit 0; }
for m in "$@"; do
	case $m in -*) continue ;; esac
	if [ -e "/tmp/fake-modules/$m.fail" ]; then echo "modprobe: FATAL: Module $m not found (stand-in)" >&2; exit 1; fi
	if [ -x "/tmp/fake-modules/$m" ]; then "/tmp/fake-modules/$m" || exit 1; fi
done
exit 0
EOF
	cat > "$S/bin/systemctl" <<'EOF'
#!/bin/sh
# Stand-in for systemctl in a nodeinit test's fake host: it talks to no systemd.
echo "systemctl $*" >> /tmp/standins.log
[ "$1" = --standin-probe ] && { echo "stand-in systemctl"; exit 0; }
if [ -e /tmp/fake-systemctl.fail ]; then echo "Job for $2.service failed (stand-in)" >&2; exit 1; fi
exit 0
EOF
	chmod 755 "$S/bin/modprobe" "$S/bin/systemctl"
}

# The directories a command may be found in, inside the fake host: PATH and the usual ones.
standin_dirs() {
	local IFS=: d
	for d in $PATH /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do echo "$d"; done | awk '!seen[$0]++'
}

standins_install() {
	local c d real
	S=$T/standins.$FAKE
	standins_prepare
	in_fake mount --bind "$S/sys/transparent_hugepage" /sys/kernel/mm/transparent_hugepage || return 1
	in_fake mount --bind "$S/sys/hugepages" /sys/kernel/mm/hugepages || return 1
	in_fake mount --bind "$S/sys/node" /sys/devices/system/node || return 1
	# The root is an overlay: the stand-ins simply replace every copy the fake host could run,
	# through any PATH entry (once per file).
	for c in $STANDIN_CMDS; do
		in_fake install -D -m 755 "$S/bin/$c" "/usr/local/sbin/$c" || return 1
		for d in $(standin_dirs); do
			real=$(in_fake readlink -f "$d/$c" 2>/dev/null) || continue
			in_fake test -f "$real" || continue
			in_fake cmp -s "$real" "$S/bin/$c" && continue
			in_fake cp "$S/bin/$c" "$real" || return 1
		done
	done
}

# standins_eval: runs the Lua chunk on stdin against the fake host, as the nodeinit that applies
# will (the image test redefines it to run the image).
standins_eval() { nodeinit eval - --target-pid "$FAKE"; }

# The mount on top at a path in the fake host, as "ROOT OPTIONS" (mountinfo fields 4 and 6).
fake_mount_at() { awk -v p="$1" '$5 == p { m = $4 " " $6 } END { print m }' "/proc/$FAKE/mountinfo"; }

# fake_fs_at PATH: the file system type of the mount on top at PATH in the fake host.
fake_fs_at() { awk -v p="$1" '$5 == p { for (i = 7; $i != "-"; i++); t = $(i + 1) } END { print t }' "/proc/$FAKE/mountinfo"; }

standins_verify() {
	local p c d real out bad=
	[ "$(fake_fs_at /)" = overlay ] || bad="$bad /-not-an-overlay"
	[ "$(fake_fs_at /proc/sys)" = tmpfs ] || bad="$bad /proc/sys-not-a-copy"
	[ "$(fake_fs_at /proc/sys/net)" = proc ] || bad="$bad /proc/sys/net-not-procfs"
	case " $(fake_mount_at /sys) " in *" ro,"*) ;; *) bad="$bad /sys-not-read-only" ;; esac
	for p in transparent_hugepage:/sys/kernel/mm/transparent_hugepage hugepages:/sys/kernel/mm/hugepages node:/sys/devices/system/node; do
		case "$(fake_mount_at "${p#*:}")" in "$S/sys/${p%%:*} "*) ;; *) bad="$bad ${p#*:}" ;; esac
	done
	for c in $STANDIN_CMDS; do
		for d in $(standin_dirs); do
			real=$(in_fake readlink -f "$d/$c" 2>/dev/null) || continue
			in_fake test -f "$real" || continue
			in_fake cmp -s "$real" "$S/bin/$c" || bad="$bad $real"
		done
	done
	# What nodeinit itself reaches: exec finds the stand-ins (with nodeinit's PATH).
	out=$(standins_eval 2>"$T/standins.err" <<'EOF'
local m, s = exec.run{"modprobe", "--standin-probe"}, exec.run{"systemctl", "--standin-probe"}
return ((m and m.stdout or "none"):gsub("\n", "")), ((s and s.stdout or "none"):gsub("\n", ""))
EOF
)
	[ "$(printf %s "$out" | cut -f1)" = "stand-in modprobe" ] || bad="$bad nodeinit-exec-modprobe($out)"
	[ "$(printf %s "$out" | cut -f2)" = "stand-in systemctl" ] || bad="$bad nodeinit-exec-systemctl($out)"
	if [ -n "$bad" ]; then
		not_ok "stand-ins in place in the fake host; NOT in place:$bad"
		return 1
	fi
	ok "stand-ins in place: /proc/sys a copy, /sys read-only, stand-ins for THP, huge pages, NUMA nodes, $STANDIN_CMDS"
}

# The real machine's values of everything stood in for, one per line.
real_snapshot() {
	local k f
	for k in $REAL_SYSCTLS; do echo "$k=$(cat "/proc/sys/$k" 2>&1)"; done
	for f in /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/mm/transparent_hugepage/defrag \
		/sys/kernel/mm/hugepages/hugepages-*/nr_hugepages /sys/devices/system/node/node*/hugepages/hugepages-*/nr_hugepages; do
		[ -e "$f" ] && echo "$f=$(cat "$f" 2>&1)"
	done
	echo "modules=$(cat /proc/modules 2>/dev/null | awk '{ print $1 }' | sort | xargs)"
	echo "net.bridge.bridge-nf-call-iptables=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>&1)"
	echo "net.ipv4.ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"
}
