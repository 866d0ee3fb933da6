# nodeinit's image: one static binary on an empty base, for linux/amd64 and linux/arm64. Plain
# Dockerfile syntax, so the classic builder and BuildKit both take it, with or without a registry:
#   docker build -t nodeinit .                      the runtime image for the build machine's arch
#   docker buildx build --platform linux/amd64,linux/arm64 .   both (BuildKit sets the platform ARGs)
#   docker build --target dev -t nodeinit:debug .   the same binary on Debian, with a shell
# `make image` builds both arches and one OCI image index, on a machine with no registry (README: Image).
ARG BASE=debian:bookworm-slim
# BUILDPLATFORM and TARGETARCH are BuildKit's (from the machine and --platform); not declared up
# here, where an empty ARG would hide them. The classic builder sets neither: its build stage runs
# on linux/amd64 and builds for its own arch (or for --build-arg TARGETARCH=...).

# --- build: the static binary and the runtime image's whole file tree, staged under /out. It runs on
# the build machine's platform and cross-compiles for another arch, so no emulation is needed.
FROM --platform=${BUILDPLATFORM:-linux/amd64} ${BASE} AS build
ARG TARGETARCH
# The packages below are all a static build needs (for another arch: Debian's cross gcc and that
# arch's multiarch libraries, as ARM64_PKGS in the Makefile less what tests need); the stamps stop
# the Makefile from installing its own lists (cmocka, valgrind, qemu, ...).
RUN set -e; host=$(dpkg --print-architecture); arch=${TARGETARCH:-$host}; \
    pkgs="make file ca-certificates"; \
    if [ "$arch" = "$host" ]; then pkgs="$pkgs gcc libc6-dev liblua5.4-dev libyaml-dev libmd-dev libmbedtls-dev libjansson-dev"; \
    elif [ "$arch" = arm64 ]; then dpkg --add-architecture arm64; \
      pkgs="$pkgs gcc-aarch64-linux-gnu libc6-dev-arm64-cross liblua5.4-dev:arm64 libyaml-dev:arm64 libmd-dev:arm64 \
       libmbedtls-dev:arm64 libjansson-dev:arm64"; \
    else echo "cannot build for $arch on $host"; exit 1; fi; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs; \
    rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# make static ARCH=<arch> leaves build/nodeinit for the machine's own arch, build/<arch>/nodeinit else.
RUN set -e; host=$(dpkg --print-architecture); arch=${TARGETARCH:-$host}; \
    bin=build/nodeinit; [ "$arch" = "$host" ] || bin=build/$arch/nodeinit; \
    mkdir -p "$(dirname "$bin")" && touch build/.deps-ok "$(dirname "$bin")/.deps-ok"; \
    make static ARCH="$arch"; \
    case "$arch:$(file -b "$bin")" in \
      amd64:*x86-64*"statically linked"*|arm64:*"ARM aarch64"*"statically linked"*) ;; \
      *) echo "$bin is not a static $arch binary"; exit 1 ;; esac; \
    mkdir -p /out/rootfs/usr/bin /out/rootfs/etc/ssl/certs /out/dev/usr/local/bin /out/dev/etc/ssl/certs; \
    if [ "$arch" = "$host" ]; then strip --strip-all -o /out/rootfs/nodeinit "$bin"; \
    else aarch64-linux-gnu-strip --strip-all -o /out/rootfs/nodeinit "$bin"; fi; \
    ln -s /nodeinit /out/rootfs/usr/bin/nsenter; \
    cp /etc/ssl/certs/ca-certificates.crt /out/rootfs/etc/ssl/certs/; \
    cp "$bin" /out/dev/nodeinit; \
    ln -s /nodeinit /out/dev/usr/local/bin/nsenter; \
    ln -s /nodeinit /out/dev/usr/local/bin/nodeinit; \
    cp /etc/ssl/certs/ca-certificates.crt /out/dev/etc/ssl/certs/; \
    if [ "$arch" = "$host" ]; then /out/rootfs/nodeinit version; fi

# --- dev: for debugging on a node (`kubectl exec ... -- bash`). The unstripped binary at /nodeinit,
# `nsenter` in /usr/local/bin points to it (ahead of util-linux's /usr/bin/nsenter on PATH, which
# stays for comparison), same entry point as the runtime image so it drops into the same manifest.
FROM ${BASE} AS dev
ARG VERSION=dev
LABEL org.opencontainers.image.title="nodeinit (debug)" \
      org.opencontainers.image.description="nodeinit on Debian with a shell, for debugging node setup" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/dev/ /
ENTRYPOINT ["/nodeinit"]
CMD ["run"]

# --- runtime (default): FROM scratch, nothing but the binary, its nsenter name and CA certificates.
FROM scratch AS runtime
ARG VERSION=dev
# Set by a release build: --build-arg SOURCE=<repository URL> (make image passes git's origin).
ARG SOURCE=""
# The repository has no LICENSE file yet; the image also carries statically linked glibc (LGPL-2.1+),
# Lua 5.4 (MIT), libyaml (MIT) and libmd (BSD-3-Clause). Set the project's SPDX id once it has one.
ARG LICENSES="NOASSERTION"
LABEL org.opencontainers.image.title="nodeinit" \
      org.opencontainers.image.description="Prepares Kubernetes nodes from a privileged hostPID DaemonSet: Lua/YAML recipes and legacy STARTUP_SCRIPT" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/rootfs/ /
# Charts call `nsenter` through PATH in their hooks; /usr/bin/nsenter is the binary under that name.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Root, on purpose: entering the host's namespaces (setns into another process's mount and PID
# namespaces, opening its /proc/PID/ns/*) needs UID 0 with CAP_SYS_ADMIN, CAP_SYS_PTRACE and
# CAP_SYS_CHROOT, so the pod runs privileged with hostPID. As any other user nodeinit stops at once
# with exit 3 and names the missing capability.
USER 0:0
ENTRYPOINT ["/nodeinit"]
CMD ["run"]
