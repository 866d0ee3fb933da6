# A script with known results for tests/integration/runner.sh: two passes.
. "$(dirname "$0")/../lib/common.sh"
ok "first"
check "second" true
finish
