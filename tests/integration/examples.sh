# examples/: the recipes lint clean, as files (examples/recipes) and as the ConfigMap holds them
# (examples/configmap.yaml, laid out as the kubelet mounts it), and apply to a fake host, with
# stand-ins for what its namespaces do not cover (tests/lib/standins.sh).
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/standins.sh"
require_root

EX=$PWD/examples/recipes

out=$(nodeinit lint --recipes "$EX" 2>&1)
check_eq "lint examples/recipes exits 0" 0 $?
check_contains "lint sees its four recipes" ": 4 recipes, 10 steps, no problems" "$out"

# The ConfigMap's data keys, one file each, in the kubelet's layout: keys are symlinks into ..data,
# a symlink to a timestamped directory. PyYAML from Debian (python3-yaml, in the Makefile's DEB_PKGS).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
CM=$T/configmap
ts=..2025_01_01_00_00_00.000000001
mkdir -p "$CM/$ts"
if "$PY" -c 'import yaml' 2>/dev/null; then
	keys=$("$PY" - examples/configmap.yaml "$CM/$ts" <<'EOF'
import os, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
assert doc["kind"] == "ConfigMap", doc["kind"]
for key, text in doc["data"].items():
    with open(os.path.join(sys.argv[2], key), "w") as f:
        f.write(text)
    print(key)
EOF
	)
	check_eq "configmap.yaml: data keys extracted" 0 $?
	ln -s "$ts" "$CM/..data"
	for k in $keys; do ln -s "..data/$k" "$CM/$k"; done
	out=$(nodeinit lint --recipes "$CM" 2>&1)
	check_eq "lint the recipes of configmap.yaml exits 0" 0 $?
	check_contains "lint sees the ConfigMap's four recipes" ": 4 recipes, 10 steps, no problems" "$out"
	check "configmap.yaml holds exactly examples/recipes" diff -r "$EX" "$CM/..data"
else
	echo "SKIP - $TEST_NAME: the recipes of configmap.yaml: $PY has no yaml module (Debian: python3-yaml)"
	cp "$EX"/* "$CM/$ts/" && ln -s "$ts" "$CM/..data"
	for f in "$EX"/*; do ln -s "..data/${f##*/}" "$CM/${f##*/}"; done
fi

# --- Applied to a fake host, from the ConfigMap layout ---------------------------------------------
real_before=$(real_snapshot)
real_conf=absent
[ -e /etc/containerd/config.toml ] && real_conf=$(md5sum < /etc/containerd/config.toml)
real_k8s_conf=absent
[ -e /etc/modules-load.d/k8s.conf ] && real_k8s_conf=$(md5sum < /etc/modules-load.d/k8s.conf)

fakehost_start
if ! standins_install 2>"$T/standins-install.err"; then
	not_ok "stand-ins installed in the fake host: $(head -c 400 "$T/standins-install.err")"
	finish
fi
standins_verify || finish

# Without a containerd config the example's config-path step has nothing to fill in: it fails, and
# says why. (/etc is an overlay in the fake host: the rm leaves a real config.toml alone.)
in_fake rm -f /etc/containerd/config.toml
out=$(nodeinit apply --target-pid "$FAKE" --recipes "$CM" 2>&1)
check_eq "no containerd config.toml: apply exits 1" 1 $?
check_contains "no containerd config.toml: the step says why" "no empty registry config_path to fill in" "$out"

# A containerd 1.x config as `containerd config default` writes it (the registry part).
in_fake sh -ec 'mkdir -p /etc/containerd
	printf "%s\n" "version = 2" "[plugins.\"io.containerd.grpc.v1.cri\".registry]" "  config_path = \"\"" > /etc/containerd/config.toml'
out=$(nodeinit apply --target-pid "$FAKE" --recipes "$CM" 2>&1)
rc=$?
check_eq "apply the examples exits 0" 0 $rc
[ $rc = 0 ] || printf '%s\n' "$out" | grep -E 'error|failed' | head -n 5 | sed 's/^/#   /'
check_eq "network: ip_forward in the fake host" 1 "$(in_fake cat /proc/sys/net/ipv4/ip_forward)"
check_eq "network: bridge-nf-call-iptables in the fake host" 1 "$(in_fake cat /proc/sys/net/bridge/bridge-nf-call-iptables)"
check_contains "network: br_netfilter in the fake host's modules-load.d" br_netfilter "$(in_fake cat /etc/modules-load.d/k8s.conf)"
check_contains "network: modprobe br_netfilter ran (stand-in)" "modprobe br_netfilter" "$(in_fake cat /tmp/standins.log)"
check_contains "containerd-mirror: hosts.toml in the fake host" 'server = "https://registry-1.docker.io"' \
	"$(in_fake cat /etc/containerd/certs.d/docker.io/hosts.toml)"
check_contains "containerd-mirror: config_path filled in" 'config_path = "/etc/containerd/certs.d"' "$(in_fake cat /etc/containerd/config.toml)"
check_eq "containerd-mirror: containerd restarted once (stand-in)" 1 "$(in_fake grep -c '^systemctl restart containerd$' /tmp/standins.log)"
check_eq "node-tuning: fs.inotify.max_user_watches written to the fake host's copy" 524288 "$(in_fake cat /proc/sys/fs/inotify/max_user_watches)"
check_eq "node-tuning: THP enabled written to the fake /sys" madvise "$(cat "$S/sys/transparent_hugepage/enabled")"
check_eq "node-tuning: THP defrag written to the fake /sys" madvise "$(cat "$S/sys/transparent_hugepage/defrag")"
nodeinit status --ready --target-pid "$FAKE" >/dev/null 2>&1
check_eq "status --ready exits 0" 0 $?

out=$(nodeinit apply --target-pid "$FAKE" --recipes "$CM" 2>&1)
check_eq "second apply exits 0" 0 $?
check "second apply runs no step" test -z "$(printf '%s\n' "$out" | grep 'step start')"
check_eq "second apply: no second restart" 1 "$(in_fake grep -c '^systemctl restart containerd$' /tmp/standins.log)"

fakehost_stop
check_eq "real values of everything stood in for are unchanged" "$real_before" "$(real_snapshot)"
if [ "$real_conf" = absent ]; then
	check "no containerd config.toml on the real machine" test ! -e /etc/containerd/config.toml
else
	check_eq "the real containerd config.toml unchanged" "$real_conf" "$(md5sum < /etc/containerd/config.toml)"
fi
if [ "$real_k8s_conf" = absent ]; then
	check "no modules-load.d/k8s.conf on the real machine" test ! -e /etc/modules-load.d/k8s.conf
else
	check_eq "the real modules-load.d/k8s.conf unchanged" "$real_k8s_conf" "$(md5sum < /etc/modules-load.d/k8s.conf)"
fi

finish
