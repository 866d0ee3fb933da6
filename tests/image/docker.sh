#!/usr/bin/env bash
# Docker plumbing for `make image` and `make image-test`: a dockerd of our own when none runs, a local
# debian:bookworm-slim made with debootstrap when no registry can serve one, and the image build.
# Source it for the functions, or run it: `bash tests/image/docker.sh build|base`.
# Nothing lands outside the repository's build/docker/ except what containerd insists on (its shim
# sockets under /run/containerd/s).

IMG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DOCKER_DIR=${DOCKER_DIR:-$IMG_ROOT/build/docker}
BASE=${BASE:-debian:bookworm-slim}
IMAGE=${IMAGE:-nodeinit:dev}
DEBUG_IMAGE=${DEBUG_IMAGE:-nodeinit:dev-debug}
VERSION=${VERSION:-dev}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Set by docker_start when it started a dockerd (its pid); empty when one was already running.
DOCKERD_PID=
RUN_CONTAINERD_WAS_THERE=yes

img_say() { echo "image: $*" >&2; }

# img_apt PKG...: installs the Debian packages that are missing (root only).
img_apt() {
	local p missing=
	for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		img_say "missing Debian packages:$missing (run as root to install them)"
		return 1
	fi
	img_say "installing:$missing"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

docker_up() { docker info >/dev/null 2>&1; }

# docker_start: uses a running daemon (DOCKER_HOST or the default socket) or starts one with its data
# root, exec root, socket, pidfile and config under build/docker/. No bridge and no iptables rules:
# builds use --network=host and tests --network=none, and the machine's firewall stays as it is.
docker_start() {
	if command -v docker >/dev/null && docker_up; then
		img_say "using the running docker daemon"
		return 0
	fi
	command -v dockerd >/dev/null || img_apt docker.io || return 1
	command -v docker >/dev/null || img_apt docker.io || return 1
	local d=$DOCKER_DIR
	mkdir -p "$d/data" "$d/exec"
	# Our own config file keeps a machine's /etc/docker/daemon.json out, and puts the trust key
	# dockerd 20.10 still writes (default /etc/docker/key.json) in here.
	printf '{ "deprecated-key-path": "%s" }\n' "$d/key.json" > "$d/daemon.json"
	if [ -s "$d/dockerd.pid" ] && kill -0 "$(cat "$d/dockerd.pid")" 2>/dev/null; then
		img_say "a dockerd from an earlier run is still up (pid $(cat "$d/dockerd.pid")): stop it first"
		return 1
	fi
	rm -f "$d/dockerd.pid" "$d/docker.sock"
	RUN_CONTAINERD_WAS_THERE=no
	[ -e /run/containerd ] && RUN_CONTAINERD_WAS_THERE=yes
	export DOCKER_HOST=unix://$d/docker.sock
	dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" \
		--pidfile "$d/dockerd.pid" -H "$DOCKER_HOST" \
		--iptables=false --ip-forward=false --ip-masq=false --bridge=none \
		>> "$d/dockerd.log" 2>&1 &
	DOCKERD_PID=$!
	local i
	for i in $(seq 1 300); do
		docker_up && break
		if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
			img_say "dockerd died at start; the end of $d/dockerd.log:"
			tail -n 20 "$d/dockerd.log" >&2
			DOCKERD_PID=
			return 1
		fi
		sleep 0.1
	done
	if ! docker_up; then
		img_say "dockerd did not answer on $DOCKER_HOST within 30 s (log: $d/dockerd.log)"
		docker_stop
		return 1
	fi
	img_say "started dockerd (pid $DOCKERD_PID, socket $d/docker.sock)"
}

# docker_stop: stops the dockerd that docker_start started, by its pid; leaves any other alone.
docker_stop() {
	[ -n "$DOCKERD_PID" ] || return 0
	local pid=$DOCKERD_PID i
	DOCKERD_PID=
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 1 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		img_say "dockerd (pid $pid) ignored SIGTERM for 20 s; killing it"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	# dockerd leaves its default netns bind mount (exec/netns/default) behind; unmounted, so that
	# `make clean` can remove build/. Only mounts under our own directory, deepest first.
	awk -v d="$DOCKER_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	# containerd puts its shim sockets in /run/containerd/s whatever its state dir: remove the
	# directories when this run made them and they are empty again.
	if [ "$RUN_CONTAINERD_WAS_THERE" = no ]; then
		rmdir /run/containerd/s /run/containerd 2>/dev/null
	fi
	img_say "stopped dockerd (pid $pid)"
}

# base_ensure: $BASE is present, pulled from a registry, or (for debian:bookworm-slim) made here
# with debootstrap and imported with the PATH and CMD the official image has.
base_ensure() {
	docker image inspect "$BASE" >/dev/null 2>&1 && return 0
	if docker pull -q "$BASE" >/dev/null 2>&1; then
		img_say "pulled $BASE"
		return 0
	fi
	case $BASE in
	debian:bookworm*) ;;
	*)
		img_say "$BASE is not present and cannot be pulled; only debian:bookworm* can be made locally"
		return 1
		;;
	esac
	img_apt debootstrap || return 1
	local dir=$DOCKER_DIR/rootfs-bookworm
	img_say "no registry: making $BASE with debootstrap from $DEBIAN_MIRROR"
	rm -rf "$dir"
	if ! debootstrap --variant=minbase bookworm "$dir" "$DEBIAN_MIRROR" > "$DOCKER_DIR/debootstrap.log" 2>&1; then
		img_say "debootstrap failed; the end of $DOCKER_DIR/debootstrap.log:"
		tail -n 20 "$DOCKER_DIR/debootstrap.log" >&2
		return 1
	fi
	# What the official slim image drops: apt caches and lists, so layers above start clean.
	rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
	tar --numeric-owner -C "$dir" -c . |
		docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			--change 'CMD ["bash"]' - "$BASE" >/dev/null || return 1
	rm -rf "$dir"
	img_say "imported $BASE"
}

# image_build: the runtime image ($IMAGE) and the dev target ($DEBUG_IMAGE), then their sizes.
# --network=host: the daemon may have no bridge (ours has none); apt in the build stage needs a network.
image_build() {
	local src args
	src=$(git -C "$IMG_ROOT" config --get remote.origin.url 2>/dev/null || true)
	args=(--network=host --build-arg "BASE=$BASE" --build-arg "VERSION=$VERSION")
	[ -n "$src" ] && args+=(--build-arg "SOURCE=$src")
	build_one "$DEBUG_IMAGE" "${args[@]}" --target dev || return 1
	build_one "$IMAGE" "${args[@]}" || return 1
	image_sizes
}

# build_one TAG ARGS...: one docker build (or the command in the array DOCKER_BUILD), its output kept
# in build/docker/build-*.log.
build_one() {
	local tag=$1 log
	shift
	log=$DOCKER_DIR/build-${tag//[:\/]/_}.log
	img_say "building $tag (log: ${log#"$IMG_ROOT"/})"
	local -a cmd=(docker build)
	[ -n "${DOCKER_BUILD[0]:-}" ] && cmd=("${DOCKER_BUILD[@]}")
	if ! "${cmd[@]}" "$@" -t "$tag" "$IMG_ROOT" > "$log" 2>&1; then
		img_say "docker build of $tag failed; the end of its log:"
		tail -n 30 "$log" >&2
		return 1
	fi
}

# The multi-arch image: the runtime image for each of ARCHES, built on this machine's platform (the
# build stage cross-compiles; FROM scratch needs no emulation), then one OCI image index for them.
# Tools (README: Image): Debian packages no docker buildx, `docker manifest` works only against a
# registry, and umoci edits one image of a layout; skopeo copies each image out of the docker daemon
# into one OCI layout (blobs shared, no registry), and the index that lists them with their
# platforms is one small JSON blob written here. `skopeo copy --all oci:DIR:TAG docker://...`
# pushes the lot wherever a registry is reachable.
ARCHES=${ARCHES:-amd64 arm64}
OCI_DIR=${OCI_DIR:-$IMG_ROOT/build/image/oci}

# arch_image ARCH: the tag of that arch's runtime image in the daemon.
arch_image() { echo "${IMAGE%%:*}:${IMAGE#*:}-$1"; }

# With BuildKit, which sets BUILDPLATFORM and TARGETARCH from --platform (the classic builder cannot
# build one platform's stage from another's: it refuses the COPY). docker buildx when installed; else
# the client of Debian's docker.io (/usr/bin/docker, 20.10), which with DOCKER_BUILDKIT=1 uses the
# daemon's own BuildKit (a newer client without buildx cannot).
image_build_arches() {
	local src arch args got
	local -a DOCKER_BUILD
	if docker buildx version >/dev/null 2>&1; then
		DOCKER_BUILD=(docker buildx build --load)
	elif /usr/bin/docker version -f '{{.Client.Version}}' 2>/dev/null | grep -q '^20\.'; then
		DOCKER_BUILD=(env DOCKER_BUILDKIT=1 /usr/bin/docker build --progress=plain)
	else
		img_say "no BuildKit client: install docker buildx, or Debian's docker.io for /usr/bin/docker"
		return 1
	fi
	src=$(git -C "$IMG_ROOT" config --get remote.origin.url 2>/dev/null || true)
	for arch in $ARCHES; do
		args=(--network=host --platform "linux/$arch" --build-arg "BASE=$BASE" --build-arg "VERSION=$VERSION")
		[ -n "$src" ] && args+=(--build-arg "SOURCE=$src")
		build_one "$(arch_image "$arch")" "${args[@]}" --target runtime || return 1
		# The index takes each image's platform from its config: check it is the one asked for.
		got=$(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$(arch_image "$arch")")
		if [ "$got" != "linux/$arch" ]; then
			img_say "$(arch_image "$arch") says it is $got, not linux/$arch"
			return 1
		fi
	done
}

# image_index: $OCI_DIR, an OCI layout whose index.json names one image index (tag $VERSION) listing
# the runtime image of each of ARCHES with its platform.
image_index() {
	img_apt skopeo python3 || return 1
	local arch daemon=()
	[ -n "${DOCKER_HOST:-}" ] && daemon=(--src-daemon-host "$DOCKER_HOST")
	rm -rf "$OCI_DIR"
	mkdir -p "$OCI_DIR"
	for arch in $ARCHES; do
		skopeo copy -q "${daemon[@]}" "docker-daemon:$(arch_image "$arch")" "oci:$OCI_DIR:$arch" \
			>> "$DOCKER_DIR/skopeo.log" 2>&1 || { img_say "skopeo copy of $(arch_image "$arch") failed (log: build/docker/skopeo.log)"; return 1; }
	done
	python3 - "$OCI_DIR" "$VERSION" $ARCHES <<'PY' || return 1
import hashlib, json, os, sys
root, tag, arches = sys.argv[1], sys.argv[2], sys.argv[3:]
def blob(digest):
    algo, hexd = digest.split(":")
    return os.path.join(root, "blobs", algo, hexd)
index = json.load(open(os.path.join(root, "index.json")))
by_tag = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}
manifests = []
for arch in arches:
    m = by_tag[arch]
    cfg = json.load(open(blob(json.load(open(blob(m["digest"])))["config"]["digest"])))
    if (cfg["os"], cfg["architecture"]) != ("linux", arch):
        sys.exit("image for %s says %s/%s" % (arch, cfg["os"], cfg["architecture"]))
    manifests.append({"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"],
                      "platform": {"architecture": arch, "os": "linux"}})
body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": manifests}, indent=2).encode()
digest = "sha256:" + hashlib.sha256(body).hexdigest()
open(blob(digest), "wb").write(body)
json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest,
                          "size": len(body), "annotations": {"org.opencontainers.image.ref.name": tag}}]},
          open(os.path.join(root, "index.json"), "w"), indent=2)
print("image index %s (%s) in %s: %s" % (tag, digest, root, ", ".join("linux/" + a for a in arches)))
PY
}

image_sizes() {
	local i
	for i in "$IMAGE" "$DEBUG_IMAGE"; do
		docker image inspect -f '{{.Size}}' "$i" |
			awk -v i="$i" '{ printf "image %s: %d bytes (%.1f MiB)\n", i, $1, $1 / 1048576 }'
	done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	case ${1:-} in
	build)
		docker_start || exit 1
		trap docker_stop EXIT
		base_ensure && image_build && image_build_arches && image_index
		;;
	base)
		docker_start || exit 1
		trap docker_stop EXIT
		base_ensure
		;;
	*)
		echo "usage: $0 build|base" >&2
		exit 2
		;;
	esac
fi
