#!/usr/bin/env bash
# make demo: nodeinit's main job against a throwaway fake host, narrated. Cleans up after itself.
set -u
cd "$(dirname "$0")/.."
NODEINIT=$PWD/${1:-build/nodeinit}
BUILD=${BUILD:-build}
. tests/lib/common.sh >/dev/null
[ "$(id -u)" = 0 ] || { echo "make demo needs root (it makes a fake host with unshare)"; exit 1; }

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

fakehost_start
say "A fake host: its own mount, UTS, IPC, net and PID namespaces, private /tmp, /var/lib, /etc (pid $FAKE)"
show nsenter -t "$FAKE" -u hostname

SCRIPT='#!/bin/bash
set -o errexit
echo "Initializing node $(hostname)..."
sysctl -w net.ipv4.ip_forward=1
echo "node setup done" > /tmp/node-setup'
say "Legacy mode: the unchanged STARTUP_SCRIPT of a startup-script DaemonSet"
printf '%s\n' "$SCRIPT" | sed 's/^/    /'
say "First pass: runs it with the fake host's bash, in its namespaces"
STARTUP_SCRIPT=$SCRIPT show "$NODEINIT" apply --target-pid "$FAKE"
echo "exit code: $?"

CP="/tmp/startup-script.kubernetes.io_$(md5sum <<<"$SCRIPT" | cut -c-32)"
say "The checkpoint, at the same path the old image used (inside the fake host only)"
show nsenter -t "$FAKE" -m ls -l "$CP"
show nsenter -t "$FAKE" -m cat /tmp/node-setup
show nsenter -t "$FAKE" -n sysctl net.ipv4.ip_forward
printf '(outside, on the real machine: %s)\n' "$(ls "$CP" 2>&1)"

say "Second pass: the checkpoint exists, so nothing runs and nothing is printed"
STARTUP_SCRIPT=$SCRIPT show "$NODEINIT" apply --target-pid "$FAKE"
echo "exit code: $?"

say "Cleaning up: the fake host and everything in it go away"
fakehost_stop
rm -rf "$T"
echo "done"
