# A script with known results for tests/integration/runner.sh: one pass, then a skip with its reason.
. "$(dirname "$0")/../lib/common.sh"
ok "this one passes"
skip_all "fixture skips on purpose"
