# nodeinit's image: one static binary on an empty base. Plain Dockerfile syntax, so the classic
# builder and BuildKit both take it, with or without a registry:
#   docker build -t nodeinit .                   the runtime image (the last stage)
#   docker build --target dev -t nodeinit:debug .   the same binary on Debian, with a shell
# `make image` does this on a machine with no registry (README: Image).
ARG BASE=debian:bookworm-slim

# --- build: the static binary and the runtime image's whole file tree, staged under /out.
FROM ${BASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc make liblua5.4-dev libyaml-dev libmd-dev libmbedtls-dev libjansson-dev libc6-dev file ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The packages above are all a static build needs: the stamp stops the Makefile from installing its
# development list too (cmocka, valgrind, strace, ...).
RUN mkdir -p build && touch build/.deps-ok \
 && make static \
 && mkdir -p /out/rootfs/usr/bin /out/rootfs/etc/ssl/certs /out/dev/usr/local/bin /out/dev/etc/ssl/certs \
 && strip --strip-all -o /out/rootfs/nodeinit build/nodeinit \
 && ln -s /nodeinit /out/rootfs/usr/bin/nsenter \
 && cp /etc/ssl/certs/ca-certificates.crt /out/rootfs/etc/ssl/certs/ \
 && cp build/nodeinit /out/dev/nodeinit \
 && ln -s /nodeinit /out/dev/usr/local/bin/nsenter \
 && ln -s /nodeinit /out/dev/usr/local/bin/nodeinit \
 && cp /etc/ssl/certs/ca-certificates.crt /out/dev/etc/ssl/certs/ \
 && /out/rootfs/nodeinit version

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
