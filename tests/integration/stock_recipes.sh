# The stock recipes of recipes/: lint clean, then each applied to a fresh fake host, as shipped and
# with its params edited, its effect checked inside the fake host and shown absent outside.
# What the fake host's namespaces do not cover (vm.nr_hugepages, fs.inotify.*, /sys, modprobe,
# systemctl) is stood in for (tests/lib/standins.sh) and checked to be so before every apply.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/standins.sh"
require_root

STOCK=$PWD/recipes

out=$(nodeinit lint --recipes "$STOCK" 2>&1)
check_eq "lint recipes/ exits 0" 0 $?
check_contains "lint sees the five stock recipes" ": 5 recipes, 8 steps, no problems" "$out"

# new_host: a fresh fake host with the stand-ins; the test stops when they are not in place.
new_host() {
	fakehost_stop
	fakehost_start
	if ! standins_install 2>"$T/standins-install.err"; then
		not_ok "stand-ins installed in the fake host: $(head -c 400 "$T/standins-install.err")"
		finish
	fi
	standins_verify || finish
}

# recipe_dir NAME [PARAMS]: sets RD to a new recipe directory holding recipes/NAME.lua; with
# PARAMS, its `local params = {` ... `}` block replaced by them.
recipe_dir() {
	local d
	d=$(mktemp -d "$T/recipes.XXXXXX")
	if [ $# -lt 2 ]; then
		cp "$STOCK/$1.lua" "$d/"
	else
		printf '%s\n' "$2" > "$d/params"
		awk -v pf="$d/params" '
			!done && /^local params = \{$/ { while ((getline l < pf) > 0) print l; skipping = 1; next }
			skipping && /^}$/ { skipping = 0; done = 1; next }
			!skipping { print }
			END { if (!done) exit 1 }' "$STOCK/$1.lua" > "$d/$1.lua" ||
			{ not_ok "$1.lua has a 'local params = {' ... '}' block to edit"; finish; }
	fi
	RD=$d
}
# to_dir DIR NAME PARAMS: rewrites DIR/NAME.lua with other params (the same recipe, edited).
to_dir() {
	recipe_dir "$2" "$3"
	cp "$RD/$2.lua" "$1/$2.lua"
}

apply() { nodeinit apply --target-pid "$FAKE" --recipes "$1" 2>&1; }
status_json() { nodeinit status --json --target-pid "$FAKE" 2>/dev/null; }
standins_log() { in_fake cat /tmp/standins.log 2>/dev/null; }
# A new boot as nodeinit sees it: another boot_id in the fake host.
new_boot() {
	printf '%s\n' "$1" > "$T/boot_id.$FAKE"
	in_fake mount --bind "$T/boot_id.$FAKE" /proc/sys/kernel/random/boot_id
}

real_before=$(real_snapshot)
real_state=absent
[ -e /var/lib/nodeinit ] && real_state=present
real_tcp_keepalive=$(cat /proc/sys/net/ipv4/tcp_keepalive_time)
real_somaxconn=$(cat /proc/sys/net/core/somaxconn)

# --- sysctl.lua ----------------------------------------------------------------------------------
new_host
recipe_dir sysctl
R=$RD
out=$(apply "$R")
check_eq "sysctl (as shipped): apply exits 0" 0 $?
check_eq "sysctl: net.ipv4.ip_forward set in the fake host" 1 "$(in_fake cat /proc/sys/net/ipv4/ip_forward)"
check_eq "sysctl: text's net.ipv4.tcp_keepalive_time set in the fake host" 600 "$(in_fake cat /proc/sys/net/ipv4/tcp_keepalive_time)"
check_eq "sysctl: fs.inotify.max_user_watches written to the fake host's copy" 524288 "$(in_fake cat /proc/sys/fs/inotify/max_user_watches)"
check_eq "sysctl: fs.inotify.max_user_instances written to the fake host's copy" 8192 "$(in_fake cat /proc/sys/fs/inotify/max_user_instances)"
check_contains "sysctl: the '-' key that cannot be set is logged and ignored" "ignored ('-' before the key)" "$out"
check_contains "sysctl: it names the key" "key=net.netfilter.nf_conntrack_max" "$out"
check_eq "sysctl: real tcp_keepalive_time untouched" "$real_tcp_keepalive" "$(cat /proc/sys/net/ipv4/tcp_keepalive_time)"
plan=$(nodeinit plan --target-pid "$FAKE" --recipes "$R" 2>&1)
check_contains "sysctl: applied once this boot" "sysctl/apply skip done" "$plan"
new_boot 11111111-0000-0000-0000-000000000001
plan=$(nodeinit plan --target-pid "$FAKE" --recipes "$R" 2>&1)
check_contains "sysctl: runs again on a new boot" "sysctl/apply run boot" "$plan"

# Edited: sysctl.d syntax in full, settings over text, later lines over earlier ones.
to_dir "$R" sysctl 'local params = {
  settings = { ["net.ipv4.tcp_keepalive_probes"] = 7, ["net.ipv4.ip_forward"] = false },
  text = [[
# a comment
; another comment

net.ipv4.tcp_keepalive_probes = 5
  net.ipv4.tcp_fin_timeout=30
net.ipv4.tcp_fin_timeout = 45
net/ipv4/conf/lo/accept_local = 1
- net.ipv4.no_such_key = 1
net.ipv4.ip_local_port_range = 40000   50000
]],
}'
out=$(apply "$R")
check_eq "sysctl (edited): apply exits 0" 0 $?
check_eq "sysctl: settings win over text" 7 "$(in_fake cat /proc/sys/net/ipv4/tcp_keepalive_probes)"
check_eq "sysctl: a later line wins" 45 "$(in_fake cat /proc/sys/net/ipv4/tcp_fin_timeout)"
check_eq "sysctl: a slashed key" 1 "$(in_fake cat /proc/sys/net/ipv4/conf/lo/accept_local)"
check_eq "sysctl: false is 0" 0 "$(in_fake cat /proc/sys/net/ipv4/ip_forward)"
check_eq "sysctl: a value with blanks" "40000	50000" "$(in_fake cat /proc/sys/net/ipv4/ip_local_port_range)"
check_contains "sysctl: '- key' with a blank is ignored too" "key=net.ipv4.no_such_key" "$out"

# A key without '-' that cannot be set fails the step, after the others were set.
to_dir "$R" sysctl 'local params = {
  settings = {},
  text = [[
net.ipv4.no_such_key = 1
net.ipv4.tcp_fin_timeout = 50
]],
}'
out=$(apply "$R")
check_eq "sysctl: a missing key fails apply (exit 1)" 1 $?
check_contains "sysctl: the failure names the key and the line" "net.ipv4.no_such_key: No such file or directory (params.text line 1)" "$out"
check_eq "sysctl: the other keys were still set" 50 "$(in_fake cat /proc/sys/net/ipv4/tcp_fin_timeout)"
check_contains "sysctl: status says failed" '"name":"apply","when":"boot","result":"failed"' "$(status_json)"

# A malformed line is a lint error, with the file's name.
recipe_dir sysctl 'local params = { text = [[
net.core.somaxconn 4096
]] }'
B=$RD
out=$(nodeinit lint --recipes "$B" 2>&1)
check_eq "sysctl: a malformed text line fails lint (exit 2)" 2 $?
check_contains "sysctl: lint names the file and the line" "sysctl.lua:" "$out"
check_contains "sysctl: lint says what is wrong" "params.text line 1: expected 'key = value'" "$out"
recipe_dir sysctl 'local params = { text = "net.ipv4.conf.*.rp_filter = 1\n-net.ipv4.conf.all.rp_filter\noops" }'
B=$RD
check_contains "sysctl: a bad glob line is a lint error with its line" "params.text line 3" "$(nodeinit lint --recipes "$B" 2>&1)"
# Globs as systemd-sysctl reads them: every matching key, except explicit and excluded ones.
recipe_dir sysctl 'local params = { settings = { ["net.ipv4.conf.lo.rp_filter"] = 1 },
  text = "net.ipv4.conf.*.rp_filter = 2\n-net.ipv4.conf.all.rp_filter\n" }'
B=$RD
nodeinit lint --recipes "$B" >/dev/null 2>&1
check_eq "sysctl: globs pass lint" 0 $?
in_fake sh -c 'for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done'
apply "$B" >/dev/null
check_eq "sysctl: globs apply (exit 0)" 0 $?
check_eq "sysctl: the glob set default" 2 "$(in_fake cat /proc/sys/net/ipv4/conf/default/rp_filter)"
check_eq "sysctl: the excluded key kept its value" 0 "$(in_fake cat /proc/sys/net/ipv4/conf/all/rp_filter)"
check_eq "sysctl: the explicit setting wins over the glob" 1 "$(in_fake cat /proc/sys/net/ipv4/conf/lo/rp_filter)"

# --- kernel-modules.lua ---------------------------------------------------------------------------
# The bridge keys appear only once br_netfilter "loads": /proc/sys/net/bridge is an empty tmpfs in
# the fake host, and the stand-in modprobe creates the keys there 0.3 s after it returned.
new_host
in_fake sh -ec 'mount -t tmpfs fake-bridge /proc/sys/net/bridge
	mkdir -p /tmp/fake-modules
	printf "%s\n" "#!/bin/sh" "( sleep 0.3; for k in iptables ip6tables; do echo 0 > /proc/sys/net/bridge/bridge-nf-call-\$k; done ) </dev/null >/dev/null 2>&1 &" > /tmp/fake-modules/br_netfilter
	chmod 755 /tmp/fake-modules/br_netfilter'
check "kernel-modules: no bridge keys in the fake host before modprobe" in_fake test ! -e /proc/sys/net/bridge/bridge-nf-call-iptables
recipe_dir kernel-modules
R=$RD
out=$(apply "$R")
check_eq "kernel-modules (as shipped): apply exits 0" 0 $?
check_eq "kernel-modules: modprobe ran for each module, in order (stand-in)" "modprobe overlay|modprobe br_netfilter" \
	"$(standins_log | grep -v standin-probe | paste -sd'|')"
check_eq "kernel-modules: modules-load.d file in the fake host" "$(printf '# Written by nodeinit (recipe kernel-modules); edits are overwritten.\noverlay\nbr_netfilter')" \
	"$(in_fake cat /etc/modules-load.d/nodeinit.conf)"
check "kernel-modules: no modules-load.d file on the real machine" test ! -e /etc/modules-load.d/nodeinit.conf
check_eq "kernel-modules: bridge-nf-call-iptables set once it appeared" 1 "$(in_fake cat /proc/sys/net/bridge/bridge-nf-call-iptables)"
check_eq "kernel-modules: bridge-nf-call-ip6tables set once it appeared" 1 "$(in_fake cat /proc/sys/net/bridge/bridge-nf-call-ip6tables)"
check "kernel-modules: no modprobe.d file without options" in_fake test ! -e /etc/modprobe.d/nodeinit.conf
plan=$(nodeinit plan --target-pid "$FAKE" --recipes "$R" 2>&1)
check_contains "kernel-modules: persist once" "kernel-modules/persist skip done" "$plan"
new_boot 22222222-0000-0000-0000-000000000002
plan=$(nodeinit plan --target-pid "$FAKE" --recipes "$R" 2>&1)
check_contains "kernel-modules: load again on a new boot" "kernel-modules/load run boot" "$plan"
check_contains "kernel-modules: persist not again on a new boot" "kernel-modules/persist skip done" "$plan"

# Edited: options go to modprobe.d; a key that never appears fails after the wait, not at once.
to_dir "$R" kernel-modules 'local params = {
  name = "k8s-test",
  modules = { "nf_conntrack" },
  options = { nf_conntrack = "hashsize=1024" },
  sysctls = { ["net.nodeinit_test.never"] = 1 },
  wait = 0.5,
}'
start=$(date +%s%N)
out=$(apply "$R")
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check_eq "kernel-modules: a key that never appears fails apply (exit 1)" 1 $rc
check_contains "kernel-modules: and says so" "net.nodeinit_test.never did not appear within 0.5 s" "$out"
check "kernel-modules: after waiting, not at once (${ms} ms)" test "$ms" -ge 500
check_eq "kernel-modules: options in modprobe.d" "options nf_conntrack hashsize=1024" "$(in_fake tail -n 1 /etc/modprobe.d/k8s-test.conf)"
check_contains "kernel-modules: the new module was loaded (stand-in)" "modprobe nf_conntrack" "$(standins_log)"
check "kernel-modules: no modprobe.d file on the real machine" test ! -e /etc/modprobe.d/k8s-test.conf

# A module that does not load fails its step; the sysctls after it do not run.
in_fake touch /tmp/fake-modules/no_such_mod.fail
to_dir "$R" kernel-modules 'local params = {
  name = "k8s-test",
  modules = { "no_such_mod" },
  options = {},
  sysctls = { ["net.ipv4.tcp_fin_timeout"] = 33 },
}'
out=$(apply "$R")
check_eq "kernel-modules: a module that fails to load fails apply (exit 1)" 1 $?
check_contains "kernel-modules: modprobe's error is shown" "Module no_such_mod not found" "$out"
check "kernel-modules: the sysctls step did not run" test "$(in_fake cat /proc/sys/net/ipv4/tcp_fin_timeout)" != 33
check "kernel-modules: our modprobe.d file is removed with the options" in_fake test ! -e /etc/modprobe.d/k8s-test.conf
recipe_dir kernel-modules 'local params = { name = "../x", modules = {} }'
B=$RD
check_contains "kernel-modules: a bad name is a lint error" "params.name must be" "$(nodeinit lint --recipes "$B" 2>&1)"

# --- containerd-mirror.lua ------------------------------------------------------------------------
new_host
restarts() { standins_log | grep -c '^systemctl restart containerd$'; }
hosts_toml=/etc/containerd/certs.d/docker.io/hosts.toml
real_hosts=absent
[ -e "$hosts_toml" ] && real_hosts=$(md5sum < "$hosts_toml")
recipe_dir containerd-mirror
R=$RD
out=$(apply "$R")
check_eq "containerd-mirror (as shipped): apply exits 0" 0 $?
check_eq "containerd-mirror: hosts.toml in the fake host" "$(printf '%s\n' '# Written by nodeinit (recipe containerd-mirror); edits are overwritten.' \
	'server = "https://registry-1.docker.io"' '' '[host."https://mirror.example.internal"]' '  capabilities = ["pull", "resolve"]')" \
	"$(in_fake cat $hosts_toml)"
check_eq "containerd-mirror: containerd restarted once (stand-in systemctl)" 1 "$(restarts)"
if [ "$real_hosts" = absent ]; then
	check "containerd-mirror: no hosts.toml on the real machine" test ! -e "$hosts_toml"
else
	check_eq "containerd-mirror: the real hosts.toml unchanged" "$real_hosts" "$(md5sum < "$hosts_toml")"
fi

# Every option, two registries; checked as TOML when python3 has tomllib.
to_dir "$R" containerd-mirror 'local params = {
  registries = {
    ["docker.io"] = { hosts = { { url = "https://mirror.example.internal" } } },
    ["registry.k8s.io"] = {
      server = false,
      hosts = {
        { url = "https://a.example/v2/k8s", override_path = true, skip_verify = true, ca = "/etc/certs/a.pem",
          header = { ["X-Token"] = "q\"uote" } },
        { url = "http://b.example:5000", capabilities = { "pull" }, ca = { "/c1.pem", "/c2.pem" } },
      },
    },
  },
  restart = true,
}'
out=$(apply "$R")
check_eq "containerd-mirror (edited): apply exits 0" 0 $?
check_eq "containerd-mirror: a new file restarts containerd again" 2 "$(restarts)"
if /usr/bin/python3 -c 'import tomllib' 2>/dev/null; then
	check "containerd-mirror: registry.k8s.io hosts.toml is the TOML containerd expects" \
		/usr/bin/python3 -c 'import sys, tomllib
d = tomllib.loads(sys.stdin.read())
a, b = d["host"]["https://a.example/v2/k8s"], d["host"]["http://b.example:5000"]
assert "server" not in d, d
assert list(d["host"]) == ["https://a.example/v2/k8s", "http://b.example:5000"], d
assert a == {"capabilities": ["pull", "resolve"], "ca": "/etc/certs/a.pem", "skip_verify": True,
             "override_path": True, "header": {"X-Token": "q\"uote"}}, a
assert b == {"capabilities": ["pull"], "ca": ["/c1.pem", "/c2.pem"]}, b' <<<"$(in_fake cat /etc/containerd/certs.d/registry.k8s.io/hosts.toml)"
else
	echo "SKIP - $TEST_NAME: containerd-mirror: TOML check (no python3 with tomllib)"
fi

# The step re-runs (its params changed) but no file changes: no restart.
to_dir "$R" containerd-mirror "$(sed -n '/^local params = {$/,/^}$/p' "$R/containerd-mirror.lua" | sed 's/restart = true/restart = true, note = "re-run"/')"
out=$(apply "$R")
check_eq "containerd-mirror: step re-run with the same files exits 0" 0 $?
check_contains "containerd-mirror: the step did run" "step done recipe=containerd-mirror step=mirrors result=ok" "$out"
check_eq "containerd-mirror: no restart when no file changed" 2 "$(restarts)"

# A failed restart fails the step, and is retried even though the files are then as wanted.
in_fake touch /tmp/fake-systemctl.fail
in_fake sh -c 'mkdir -p /etc/containerd/certs.d/quay.io && echo "# the operator'"'"'s own" > /etc/containerd/certs.d/quay.io/hosts.toml'
to_dir "$R" containerd-mirror 'local params = {
  registries = { ["docker.io"] = { hosts = { { url = "https://other-mirror.example.internal" } } } },
  restart = true,
}'
out=$(apply "$R")
check_eq "containerd-mirror: a failed restart fails apply (exit 1)" 1 $?
check_contains "containerd-mirror: systemctl's error is shown" "Job for containerd.service failed" "$out"
check "containerd-mirror: the restart is remembered in the fake host's /run" in_fake test -e /run/nodeinit/containerd-mirror.restart
check "containerd-mirror: a registry left out: its hosts.toml is gone" in_fake test ! -e /etc/containerd/certs.d/registry.k8s.io/hosts.toml
check "containerd-mirror: a hosts.toml nodeinit did not write stays" in_fake test -e /etc/containerd/certs.d/quay.io/hosts.toml
check "containerd-mirror: and its empty directory" in_fake test ! -e /etc/containerd/certs.d/registry.k8s.io
in_fake rm /tmp/fake-systemctl.fail
out=$(apply "$R")
check_eq "containerd-mirror: the retry exits 0" 0 $?
check_eq "containerd-mirror: the retry restarted containerd" 4 "$(restarts)"
check "containerd-mirror: nothing remembered any more" in_fake test ! -e /run/nodeinit/containerd-mirror.restart
recipe_dir containerd-mirror 'local params = { registries = { ["docker.io"] = { hosts = { { url = "mirror.local" } } } } }'
B=$RD
check_contains "containerd-mirror: a URL without a scheme is a lint error" 'hosts[1]: needs url = "https://..."' "$(nodeinit lint --recipes "$B" 2>&1)"

# --- hugepages.lua --------------------------------------------------------------------------------
new_host
recipe_dir hugepages
R=$RD
out=$(apply "$R")
check_eq "hugepages (as shipped): apply exits 0" 0 $?
check_eq "hugepages: THP enabled is madvise in the fake host" madvise \
	"$(in_fake cat /sys/kernel/mm/transparent_hugepage/enabled | sed 's/.*\[\(.*\)\].*/\1/')"
size=$(ls "$S/sys/hugepages" | grep -v '^hugepages-2048kB$' | head -n 1)
size=${size:-hugepages-2048kB}
size=${size#hugepages-}
node=$(ls "$S/sys/node" | head -n 1)
node=${node#node}
to_dir "$R" hugepages "local params = {
  nr_hugepages = 64,
  sizes = { [\"$size\"] = 2 },
  nodes = { [$node] = { [\"2048kB\"] = 16 } },
  strict = true,
  thp_enabled = \"never\",
  thp_defrag = \"defer+madvise\",
}"
out=$(apply "$R")
check_eq "hugepages (edited): apply exits 0" 0 $?
check_eq "hugepages: vm.nr_hugepages written to the fake host's copy" 64 "$(in_fake cat /proc/sys/vm/nr_hugepages)"
check_eq "hugepages: $size pages written to the fake /sys" 2 "$(in_fake cat /sys/kernel/mm/hugepages/hugepages-$size/nr_hugepages)"
check_eq "hugepages: node$node 2048kB pages written to the fake /sys" 16 \
	"$(in_fake cat /sys/devices/system/node/node$node/hugepages/hugepages-2048kB/nr_hugepages)"
check_eq "hugepages: THP enabled written to the fake /sys" never "$(in_fake cat /sys/kernel/mm/transparent_hugepage/enabled)"
check_eq "hugepages: THP defrag written to the fake /sys" defer+madvise "$(in_fake cat /sys/kernel/mm/transparent_hugepage/defrag)"
check_contains "hugepages: the writes are logged" "transparent huge pages set" "$out"

to_dir "$R" hugepages 'local params = { nr_hugepages = false, sizes = { ["3kB"] = 1 }, nodes = {}, thp_enabled = false, thp_defrag = false }'
out=$(apply "$R")
check_eq "hugepages: a page size the machine lacks fails apply (exit 1)" 1 $?
check_contains "hugepages: and says so" "no such page size or NUMA node on this machine?" "$out"
echo "always madvise [never]" > "$S/sys/transparent_hugepage/enabled"
to_dir "$R" hugepages 'local params = { nr_hugepages = false, sizes = {}, nodes = {}, thp_enabled = "sometimes", thp_defrag = false }'
out=$(apply "$R")
check_eq "hugepages: a THP value the kernel does not list fails apply (exit 1)" 1 $?
check_contains "hugepages: and lists the values it takes" 'is not one of: always madvise [never]' "$out"
check_eq "hugepages: the fake THP file is left as it was" "always madvise [never]" "$(cat "$S/sys/transparent_hugepage/enabled")"
recipe_dir hugepages 'local params = { nr_hugepages = -1 }'
B=$RD
check_contains "hugepages: a negative count is a lint error" "params.nr_hugepages must be a whole number of pages" "$(nodeinit lint --recipes "$B" 2>&1)"

# --- legacy-script.lua ----------------------------------------------------------------------------
new_host
recipe_dir legacy-script
R=$RD
out=$(apply "$R")
check_eq "legacy-script (as shipped): apply exits 0" 0 $?
check_contains "legacy-script: the example chunk ran on the fake host" "replace this with a chunk of your STARTUP_SCRIPT; it runs on fakehost" "$out"

chunks() { in_fake sh -c 'cat /tmp/chunks 2>/dev/null' | paste -sd' '; }
legacy_params() { # B_SCRIPT [CHECKPOINT]
	printf '%s\n' 'local params = {' '  chunks = {' \
		'    { name = "a", script = [[echo a >> /tmp/chunks]] },' \
		"    { name = \"b\", when = \"once\", script = [[$1]] }," \
		'    { name = "c", when = "boot", timeout = 5, script = [[echo c >> /tmp/chunks; echo "$GREETING" > /tmp/greeting]] },' \
		'  },' '  env = { GREETING = "hello from env" },' "  legacy_checkpoint = ${2:-false}," '}'
}
to_dir "$R" legacy-script "$(legacy_params 'echo b >> /tmp/chunks; exit 3')"
out=$(apply "$R")
check_eq "legacy-script: a failing chunk fails apply (exit 1)" 1 $?
check_contains "legacy-script: with its exit code" "bash exited with code 3" "$out"
check_eq "legacy-script: chunks ran up to the failing one" "a b" "$(chunks)"
to_dir "$R" legacy-script "$(legacy_params 'echo b >> /tmp/chunks')"
apply "$R" >/dev/null
check_eq "legacy-script: fixed chunk ran, and the one after it; the first not again" "a b b c" "$(chunks)"
check_eq "legacy-script: env reaches the chunks" "hello from env" "$(in_fake cat /tmp/greeting)"
check "legacy-script: nothing in the real /tmp" test ! -e /tmp/chunks -a ! -e /tmp/greeting
to_dir "$R" legacy-script "$(legacy_params 'echo B >> /tmp/chunks')"
apply "$R" >/dev/null
check_eq "legacy-script: an edited chunk re-runs alone" "a b b c B" "$(chunks)"
new_boot 33333333-0000-0000-0000-000000000003
apply "$R" >/dev/null
check_eq "legacy-script: a new boot re-runs the boot chunks, not the once chunk" "a b b c B a c" "$(chunks)"
in_fake touch /tmp/startup-script.kubernetes.io_0123456789abcdef0123456789abcdef
to_dir "$R" legacy-script "$(legacy_params 'echo B >> /tmp/chunks' '"/tmp/startup-script.kubernetes.io_0123456789abcdef0123456789abcdef"')"
apply "$R" >/dev/null
check_eq "legacy-script: with the old image's checkpoint there, no chunk runs" "a b b c B a c" "$(chunks)"
check_contains "legacy-script: they are recorded as kept" '{"name":"a","when":"boot","result":"kept"' "$(status_json)"
recipe_dir legacy-script 'local params = { chunks = { { name = "x", script = "true", when = "weekly" } } }'
B=$RD
check_contains "legacy-script: a bad when is a lint error" "params.chunks[1]: when must be once, boot or always" "$(nodeinit lint --recipes "$B" 2>&1)"

# --- All of them in one directory, as a ConfigMap would hold them --------------------------------
new_host
in_fake sh -c 'mount -t tmpfs fake-bridge /proc/sys/net/bridge; mkdir -p /tmp/fake-modules
	printf "%s\n" "#!/bin/sh" "for k in iptables ip6tables; do echo 0 > /proc/sys/net/bridge/bridge-nf-call-\$k; done" > /tmp/fake-modules/br_netfilter
	chmod 755 /tmp/fake-modules/br_netfilter'
out=$(apply "$STOCK")
rc=$?
check_eq "all stock recipes as shipped, in one directory: apply exits 0" 0 $rc
[ $rc = 0 ] || printf '%s\n' "$out" | grep -i -E 'error|fail' | head -n 5 | sed 's/^/#   /'
nodeinit status --ready --target-pid "$FAKE" >/dev/null 2>&1
check_eq "all stock recipes: status --ready exits 0" 0 $?

# --- Nothing of it reached the real machine -------------------------------------------------------
fakehost_stop
check_eq "real values of everything stood in for are unchanged" "$real_before" "$(real_snapshot)"
check_eq "real net.core.somaxconn unchanged" "$real_somaxconn" "$(cat /proc/sys/net/core/somaxconn)"
[ "$real_state" = absent ] && check "no nodeinit state dir on the real machine" test ! -e /var/lib/nodeinit
check "no restart marker on the real machine" test ! -e /run/nodeinit/containerd-mirror.restart

finish
