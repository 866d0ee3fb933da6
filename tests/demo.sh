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

R=$T/recipes
mkdir -p "$R"
cat > "$R/10-network.lua" <<'EOF'
recipe "network" {
  step "ip-forward" { when = "boot", function() sysctl.set("net.ipv4.ip_forward", "1") end },
  step "somaxconn" { function() sysctl.set("net.core.somaxconn", "1024") end },
}
EOF
cat > "$R/20-motd.yaml" <<'EOF'
recipe: motd
steps:
  - name: motd
    file: { path: /etc/motd, content: "prepared by nodeinit\n", mode: "0644" }
  - name: hello
    script: |
      echo "hello from $(hostname)'s bash"
EOF
say "Recipes: named steps, each with its own checkpoint on the host"
show cat "$R/10-network.lua" "$R/20-motd.yaml"
say "lint: checks them without touching the host"
show "$NODEINIT" lint --recipes "$R"
say "plan: what apply would do, and why"
show "$NODEINIT" plan --target-pid "$FAKE" --recipes "$R"
say "apply: one pass"
show "$NODEINIT" apply --target-pid "$FAKE" --recipes "$R"
show nsenter -t "$FAKE" -m -n sh -c 'cat /etc/motd; sysctl net.core.somaxconn'

say "Edit one step: only that step runs again"
sed -i 's/"1024"/"4096"/' "$R/10-network.lua"
show "$NODEINIT" plan --target-pid "$FAKE" --recipes "$R"
show "$NODEINIT" apply --target-pid "$FAKE" --recipes "$R"

say "status: what the host's records say (the readiness probe uses --ready)"
show "$NODEINIT" status --target-pid "$FAKE"
show "$NODEINIT" status --ready --target-pid "$FAKE"
echo "exit code: $? (0: converged)"

say "Cleaning up: the fake host and everything in it go away"
fakehost_stop
rm -rf "$T"
echo "done"
