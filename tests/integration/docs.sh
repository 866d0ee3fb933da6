# The docs stay true: the README's recipe examples lint, and README, --help and DESIGN's names agree.
. "$(dirname "$0")/../lib/common.sh"

mkdir -p "$T/readme"
awk '/^```lua$/{f=1;next}/^```$/{f=0}f' README.md > "$T/readme/10-readme.lua"
awk '/^```yaml$/{f=1;next}/^```$/{if(f)exit;f=0}f' README.md > "$T/readme/20-readme.yaml"
check "README has a Lua recipe example" grep -q 'recipe "' "$T/readme/10-readme.lua"
check "README has a YAML recipe example" grep -q '^recipe:' "$T/readme/20-readme.yaml"
out=$(nodeinit lint --recipes "$T/readme" 2>&1)
check_eq "README's recipe examples lint clean" 0 $?
check_contains "README's examples: both recipes seen" "2 recipes" "$out"

help=$(nodeinit --help)
for word in run apply plan status lint eval version --target-pid --recipes --state-dir --interval --log-format \
	--log-level --json --ready NODEINIT_TARGET_PID NODEINIT_RECIPES NODEINIT_STATE_DIR NODEINIT_INTERVAL NODEINIT_LOG_FORMAT NODEINIT_LOG_LEVEL \
	STARTUP_SCRIPT CHECKPOINT_PATH; do
	check_contains "--help names $word" "$word" "$help"
	check "README names $word" grep -q -- "$word" README.md
done
for code in "0  converged" "1  a step or the legacy script failed" "2  bad usage or bad input" "3  cannot enter the target"; do
	check_contains "--help documents exit code ${code%% *}" "$code" "$help"
done
check "README documents exit code 3" grep -q '^| 3 | cannot enter the target' README.md

finish
