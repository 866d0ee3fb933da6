# Shared by tests/reliability/*.sh, on top of tests/lib/common.sh, whose fakehost_kill kills a fake
# host only while its pid still names the PID namespace made for it.
. "$(dirname "${BASH_SOURCE[0]}")/../../lib/common.sh"

rel_fakehost_start() { fakehost_start; }

# rel_kill_fake PID [SIGNAL]: kills a fake host we started (and forgets it), never a stranger.
rel_kill_fake() { fakehost_kill "$@"; }
