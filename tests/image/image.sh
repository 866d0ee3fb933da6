#!/usr/bin/env bash
# `make image-test`: builds the image (cached when nothing changed) and runs it the way a hostPID
# DaemonSet pod runs, against fake hosts: legacy STARTUP_SCRIPT, the nsenter name, what the image
# holds, the refusal to start unprivileged, and recipes (the stock ones among them) from a
# ConfigMap-like mount; and the multi-arch OCI index (both platforms listed, each binary a static ELF
# of its arch).
# Not part of `make test`: it needs docker (tests/image/docker.sh starts one of its own if none runs).
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/docker.sh"
. "$(dirname "$0")/../lib/standins.sh"
require_root

SKIPPED=0
CONTAINERS=()
VERSION=${VERSION:-dev}

cleanup() {
	local c
	for c in "${CONTAINERS[@]}"; do docker rm -f "$c" >/dev/null 2>&1; done
	CONTAINERS=()
	# dockerd first: fakehost_stop ends with a bare `wait`, which would wait for it too.
	docker_stop
	fakehost_stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

skip() { SKIPPED=$((SKIPPED + 1)); echo "SKIP - $TEST_NAME: $*"; }

# The summary line of `make test`; exits 1 when anything failed, so make reports it.
summary() {
	cleanup
	echo
	echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
	[ "$FAILED" = 0 ]
	exit
}

# What a privileged pod gets here (--privileged itself fails on this machine): every capability
# but SYS_RESOURCE, no seccomp filter, the host's PID namespace. --network=none: nodeinit joins the
# host's network namespace itself, so the pod's own one needs nothing.
PRIV=(--pid=host --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined --network=none)

# drun ARGS...: `docker run --rm ARGS`, sets OUT (stdout and stderr, without the client's warning
# about IP forwarding, which our bridge-less daemon always earns) and RC.
drun() {
	OUT=$(docker run --rm "$@" 2>&1)
	RC=$?
	OUT=$(printf '%s\n' "$OUT" | grep -v '^WARNING: IPv4 forwarding is disabled')
}

# After a failed check: what nodeinit said, as comment lines.
show_out() { printf '%s\n' "$OUT" | head -n 20 | sed 's/^/#   /'; }

md5_path() { echo "/tmp/startup-script.kubernetes.io_$(md5sum <<<"$1" | cut -c-32)"; }

# --- The manifests and recipes of examples/ (no docker needed), counted with the rest.
while IFS= read -r line; do
	case $line in
	"ok - "*) PASSED=$((PASSED + 1)) ;;
	"FAIL - "*) FAILED=$((FAILED + 1)) ;;
	"SKIP - "*) SKIPPED=$((SKIPPED + 1)) ;;
	"# "*) continue ;;
	esac
	printf '%s\n' "$line"
done < <(BUILD=$BUILD bash "$(dirname "$0")/examples.sh" 2>&1; rc=$?; [ $rc = 0 ] || echo "FAIL - examples.sh broke off (exit $rc)")

if ! docker_start; then
	not_ok "a docker daemon runs"
	summary
fi
if base_ensure && image_build; then
	ok "images $IMAGE and $DEBUG_IMAGE build"
else
	not_ok "images $IMAGE and $DEBUG_IMAGE build"
	summary
fi

# --- The multi-arch image: one runtime image per arch, cross-built, and the OCI index listing them.
if image_build_arches && image_index > "$T/index.log" 2>&1; then
	ok "multi-arch: images for $ARCHES and their OCI index build"
	idx=$(skopeo inspect --raw "oci:$OCI_DIR:$VERSION" 2>&1)
	platforms=$(python3 -c 'import json, sys
d = json.load(sys.stdin)
assert d["mediaType"] == "application/vnd.oci.image.index.v1+json", d["mediaType"]
print(" ".join(sorted(m["platform"]["os"] + "/" + m["platform"]["architecture"] for m in d["manifests"])))' <<<"$idx" 2>&1)
	check_eq "multi-arch: the index lists linux/amd64 and linux/arm64" "linux/amd64 linux/arm64" "$platforms"
	# Each arch's files, chosen through the index as a client on that arch would choose them.
	for arch in amd64 arm64; do
		rm -rf "$T/img-$arch" "$T/root-$arch"
		mkdir -p "$T/root-$arch"
		skopeo copy -q --override-os linux --override-arch "$arch" "oci:$OCI_DIR:$VERSION" "dir:$T/img-$arch" >/dev/null 2>&1
		for l in $(python3 -c 'import json, sys; print(" ".join(l["digest"].split(":")[1] for l in json.load(open(sys.argv[1]))["layers"]))' \
			"$T/img-$arch/manifest.json" 2>/dev/null); do
			tar -xf "$T/img-$arch/$l" -C "$T/root-$arch"
		done
		desc=$(file -b "$T/root-$arch/nodeinit" 2>&1)
		case $arch in
		amd64) want="ELF 64-bit LSB executable, x86-64" ;;
		arm64) want="ELF 64-bit LSB executable, ARM aarch64" ;;
		esac
		check_contains "multi-arch: the $arch image's /nodeinit is $want" "$want" "$desc"
		check_contains "multi-arch: the $arch image's /nodeinit is static" "statically linked" "$desc"
		check_eq "multi-arch: the $arch image has the nsenter link" /nodeinit "$(readlink "$T/root-$arch/usr/bin/nsenter")"
	done
	if command -v qemu-aarch64-static >/dev/null; then
		check_eq "multi-arch: the arm64 image's binary runs under qemu-user" "nodeinit $VERSION" \
			"$(qemu-aarch64-static "$T/root-arm64/nodeinit" version 2>&1 | head -n 1 | cut -d' ' -f1-2)"
	fi
else
	not_ok "multi-arch: images for $ARCHES and their OCI index build: $(tail -n 5 "$T/index.log")"
fi

# --- What the runtime image is.
# `version` prints "nodeinit VERSION", then what it was built with.
drun "$IMAGE" version
check_eq "nodeinit version runs in the image" "nodeinit $VERSION" "$(printf %s "$OUT" | head -n 1 | cut -d' ' -f1-2)"
check_eq "entry point and default command" '["/nodeinit"] ["run"] 0:0' \
	"$(docker image inspect -f '{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Config.User}}' "$IMAGE")"
check_contains "PATH is set (charts call nsenter through it)" "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
	"$(docker image inspect -f '{{json .Config.Env}}' "$IMAGE")"
labels=$(docker image inspect -f '{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}' "$IMAGE")
for l in title description source licenses version; do
	check_contains "OCI label $l" "org.opencontainers.image.$l=" "$labels"
done
# Every file of the image, from its layers: the binary, its nsenter name, the CA bundle, nothing else.
mkdir -p "$T/save"
docker save "$IMAGE" | tar -C "$T/save" -x
files=$(for l in "$T"/save/*/layer.tar; do tar -tvf "$l"; done | grep -v '^d' | awk '{ $1 = $2 = $3 = $4 = $5 = ""; print }' | sed 's/^ *//' | sort | xargs)
check_eq "the image holds only the binary, nsenter and the CA bundle" \
	"etc/ssl/certs/ca-certificates.crt nodeinit usr/bin/nsenter -> /nodeinit" "$files"
drun --entrypoint /bin/sh "$IMAGE" -c true
check "no shell in the image (/bin/sh cannot start: exit $RC)" test "$RC" = 126 -o "$RC" = 127

# --- Legacy STARTUP_SCRIPT through the image, against a fake host.
fakehost_start
script='echo ran >> /tmp/image-count
hostname image-host
readlink /proc/self/ns/pid > /tmp/image-pidns'
real_host=$(hostname)
drun "${PRIV[@]}" -e NODEINIT_TARGET_PID="$FAKE" -e STARTUP_SCRIPT="$script" "$IMAGE" apply
check_eq "apply in the image exits 0" 0 "$RC"
check_contains "apply prints the success line" "!!! startup-script succeeded!" "$OUT"
check_eq "the script ran once, in the fake host's /tmp" ran "$(in_fake cat /tmp/image-count 2>&1)"
check "the script's file is not in the real /tmp" test ! -e /tmp/image-count
check_eq "hostname changed in the fake host" image-host "$(in_fake hostname)"
check_eq "real hostname untouched" "$real_host" "$(hostname)"
check_eq "the script ran in the fake host's PID namespace" "$(readlink "/proc/$FAKE/ns/pid")" "$(in_fake cat /tmp/image-pidns 2>&1)"
cp=$(md5_path "$script")
check "checkpoint at the formula path in the fake host" in_fake test -f "$cp"
check "checkpoint not on the real machine" test ! -e "$cp"

drun "${PRIV[@]}" -e NODEINIT_TARGET_PID="$FAKE" -e STARTUP_SCRIPT="$script" "$IMAGE" apply
check_eq "second apply exits 0" 0 "$RC"
check_eq "second apply does not re-run the script" ran "$(in_fake cat /tmp/image-count 2>&1)"
check "second apply prints no !!! line" test -z "$(printf '%s\n' "$OUT" | grep '^!!!')"

# The default command (run) as PID 1 of a detached container, stopped the way the kubelet stops it.
name=nodeinit-image-test-$$
CONTAINERS+=("$name")
docker run -d --name "$name" "${PRIV[@]}" -e NODEINIT_TARGET_PID="$FAKE" -e NODEINIT_INTERVAL=1 \
	-e STARTUP_SCRIPT='echo ran >> /tmp/image-run' "$IMAGE" >/dev/null 2>"$T/run.err"
for _ in $(seq 1 100); do in_fake test -e /tmp/image-run && break; sleep 0.1; done
check_eq "default command run: the script ran in the fake host" ran "$(in_fake cat /tmp/image-run 2>&1)"
docker stop -t 10 "$name" >/dev/null 2>&1
check_eq "run as the container's PID 1 exits 0 on SIGTERM" 0 "$(docker inspect -f '{{.State.ExitCode}}' "$name" 2>&1)"
check_contains "run logged the success line" "!!! startup-script succeeded!" "$(docker logs "$name" 2>&1)"

# --- The nsenter name, as chart hooks call it (through PATH).
drun "${PRIV[@]}" --entrypoint nsenter "$IMAGE" -t "$FAKE" -m -u -i -n -p -- hostname
check_eq "nsenter (via PATH) runs a command in the fake host" image-host "$OUT"
drun "${PRIV[@]}" --entrypoint /usr/bin/nsenter "$IMAGE" --target="$FAKE" --mount -- sh -c 'exit 7'
check_eq "nsenter passes the exit code through" 7 "$RC"

# --- Not privileged: stop at once, exit 3, say what is missing.
drun "${PRIV[@]}" --user 65534 -e NODEINIT_TARGET_PID="$FAKE" -e STARTUP_SCRIPT=true "$IMAGE" apply
check_eq "as user 65534: exit 3" 3 "$RC"
check_contains "as user 65534: names the missing capability" CAP_SYS_ADMIN "$OUT"
drun --pid=host --network=none -e NODEINIT_TARGET_PID="$FAKE" -e STARTUP_SCRIPT=true "$IMAGE" apply
check_eq "root with docker's default capabilities: exit 3" 3 "$RC"
check_contains "root with default capabilities: names the missing capability" CAP_SYS_ADMIN "$OUT"
check "no unprivileged attempt left a checkpoint in the fake host" in_fake test ! -e "$(md5_path true)"

# --- The debug image: a shell, and the same binary under both names.
drun --entrypoint bash "$DEBUG_IMAGE" -c 'readlink -f "$(command -v nsenter)"; nodeinit version | cut -d" " -f1-2'
check_eq "dev-debug image: shell, nsenter and nodeinit on PATH" "/nodeinit nodeinit $VERSION" "${OUT//$'\n'/ }"

# --- Recipes. The directory is laid out the way the kubelet mounts a ConfigMap (keys are symlinks
# into ..data, which points to a timestamped directory): two small recipes of this test's own and
# the stock recipes of recipes/ as shipped. What the fake host's namespaces do not cover (modprobe,
# systemctl, fs.inotify.*, THP) is stood in for (tests/lib/standins.sh), checked through the image.
cm=$T/configmap
ts=..2025_01_01_00_00_00.000000001
mkdir -p "$cm/$ts"
cat > "$cm/$ts/10-marker.lua" <<'EOF'
recipe "image-marker" {
  step "marker" {
    function() file.write("/tmp/recipe-marker", "lua\n", { mode = "0644" }) end },
  step "ip-forward" { when = "boot", function() sysctl.set("net.ipv4.ip_forward", "1") end },
}
EOF
cat > "$cm/$ts/20-script.yaml" <<'EOF'
recipe: image-script
steps:
  - name: old-script
    script: |
      echo yaml > /tmp/recipe-yaml
EOF
for f in "$IMG_ROOT"/recipes/*.lua; do cp "$f" "$cm/$ts/50-${f##*/}"; done
ln -s "$ts" "$cm/..data"
for f in "$cm/$ts"/*; do ln -s "..data/${f##*/}" "$cm/${f##*/}"; done

fakehost_start
# The stand-ins as the image's nodeinit sees them (with the image's PATH).
standins_eval() { docker run --rm -i "${PRIV[@]}" -e NODEINIT_TARGET_PID="$FAKE" "$IMAGE" eval -; }
if ! standins_install 2>"$T/standins-install.err"; then
	not_ok "recipes: stand-ins installed in the fake host: $(head -c 400 "$T/standins-install.err")"
	summary
fi
standins_verify || summary
real_before=$(real_snapshot)
real_state=absent
[ -e /var/lib/nodeinit ] && real_state=present
hosts_toml=/etc/containerd/certs.d/docker.io/hosts.toml
real_hosts=absent
[ -e "$hosts_toml" ] && real_hosts=$(md5sum < "$hosts_toml")
rmount=(-v "$cm:/etc/nodeinit/recipes:ro")
drun "${PRIV[@]}" "${rmount[@]}" "$IMAGE" lint
check_eq "recipes: lint in the image exits 0" 0 "$RC"; [ "$RC" = 0 ] || show_out
check_contains "recipes: lint sees all seven recipes" "/etc/nodeinit/recipes: 7 recipes" "$OUT"
drun "${PRIV[@]}" -v "$IMG_ROOT/examples/recipes:/examples:ro" "$IMAGE" lint --recipes /examples
check_eq "recipes: examples/recipes lint clean in the image" 0 "$RC"; [ "$RC" = 0 ] || show_out
drun "${PRIV[@]}" -v "$IMG_ROOT/recipes:/stock:ro" "$IMAGE" lint --recipes /stock
check_eq "recipes: recipes/ (stock) lint clean in the image" 0 "$RC"; [ "$RC" = 0 ] || show_out
drun "${PRIV[@]}" "${rmount[@]}" -e NODEINIT_TARGET_PID="$FAKE" "$IMAGE" status --ready
check "recipes: status --ready fails before the first apply" test "$RC" != 0
drun "${PRIV[@]}" "${rmount[@]}" -e NODEINIT_TARGET_PID="$FAKE" "$IMAGE" apply
check_eq "recipes: apply in the image exits 0" 0 "$RC"; [ "$RC" = 0 ] || show_out
check_eq "recipes: Lua step wrote in the fake host" lua "$(in_fake cat /tmp/recipe-marker 2>&1)"
check_eq "recipes: YAML script step ran in the fake host" yaml "$(in_fake cat /tmp/recipe-yaml 2>&1)"
check_eq "recipes: sysctl set in the fake host's netns" 1 "$(in_fake cat /proc/sys/net/ipv4/ip_forward)"
check_contains "recipes: stock containerd-mirror wrote hosts.toml in the fake host" "mirror.example.internal" \
	"$(in_fake cat "$hosts_toml" 2>&1)"
check_contains "recipes: stock kernel-modules ran modprobe (stand-in)" "modprobe br_netfilter" "$(in_fake cat /tmp/standins.log 2>&1)"
check_contains "recipes: stock containerd-mirror restarted containerd (stand-in)" "systemctl restart containerd" \
	"$(in_fake cat /tmp/standins.log 2>&1)"
check_eq "recipes: stock sysctl wrote fs.inotify.max_user_watches to its stand-in" 524288 "$(in_fake cat /proc/sys/fs/inotify/max_user_watches)"
check_contains "recipes: stock legacy-script's chunk ran" "replace this with a chunk" "$OUT"
check "recipes: state dir is on the fake host" in_fake test -d /var/lib/nodeinit
check "recipes: no marker on the real machine" test ! -e /tmp/recipe-marker
[ "$real_state" = absent ] && check "recipes: no state dir on the real machine" test ! -e /var/lib/nodeinit
if [ "$real_hosts" = absent ]; then
	check "recipes: no hosts.toml on the real machine" test ! -e "$hosts_toml"
else
	check_eq "recipes: the real hosts.toml unchanged" "$real_hosts" "$(md5sum < "$hosts_toml")"
fi
check_eq "recipes: real values of everything stood in for are unchanged" "$real_before" "$(real_snapshot)"
drun "${PRIV[@]}" "${rmount[@]}" -e NODEINIT_TARGET_PID="$FAKE" "$IMAGE" status --ready
check_eq "recipes: status --ready (the readiness probe) exits 0" 0 "$RC"

summary
