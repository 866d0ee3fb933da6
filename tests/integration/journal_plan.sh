# One durable plan a pass: a recipe's steps start without a sync of their own, and a kill still shows
# every step the pass had not finished as interrupted, never done; the next apply re-runs exactly those.
. "$(dirname "$0")/../lib/common.sh"
require_root
command -v strace >/dev/null || skip_all "needs strace"

R=$T/recipes
mkdir -p "$R"
runs() { in_fake sh -c "grep -cx '$1' /tmp/runs 2>/dev/null || true"; }
apply() { nodeinit apply --target-pid "$FAKE" --recipes "$R" "$@"; }
fakehost_start

{ echo "recipe: many"; echo "steps:"
  for i in $(seq 1 20); do printf '  - name: s%d\n    exec: [sh, -c, "echo s%d >> /tmp/runs"]\n' $i $i; done; } > "$R/10-many.yaml"
strace -f -qq -e trace=fdatasync,fsync -o "$T/syncs" "$NODEINIT" apply --target-pid "$FAKE" --recipes "$R" >/dev/null 2>&1
check_eq "20 steps: every step ran" 20 "$(in_fake sh -c 'wc -l < /tmp/runs')"
check_eq "20 steps: one fdatasync (the plan), not one a step" 1 "$(grep -c 'fdatasync(' "$T/syncs")"
check_contains "status: all ok" '"converged":true' "$(nodeinit status --json --target-pid "$FAKE" 2>/dev/null)"
rm "$R/10-many.yaml"

# kill -9 in the second of three steps.
cat > "$R/20-three.lua" <<'EOF2'
local function bump(name) exec.run { "sh", "-c", "echo " .. name .. " >> /tmp/runs" } end
recipe "three" {
  step "one" { function() bump("one") end },
  step "two" { function() bump("two"); exec.run { "sh", "-c", "sleep 30" } end },
  step "three" { function() bump("three") end },
}
EOF2
"$NODEINIT" apply --target-pid "$FAKE" --recipes "$R" >/dev/null 2>&1 &
victim=$!
for _ in $(seq 1 200); do [ "$(runs two)" = 1 ] && break; sleep 0.05; done
{ kill -KILL $victim; wait $victim; } 2>/dev/null
json=$(nodeinit status --json --target-pid "$FAKE" 2>/dev/null)
check_contains "kill -9: the finished step is ok" '"name":"one","when":"once","result":"ok"' "$json"
check_contains "kill -9: the running step is interrupted" '"name":"two","when":"once","result":"interrupted"' "$json"
check_contains "kill -9: the step never reached is interrupted (planned), not done" '"name":"three","when":"once","result":"interrupted"' "$json"
in_fake pkill -KILL -x sleep 2>/dev/null
sed -i 's/; exec.run { "sh", "-c", "sleep 30" }//' "$R/20-three.lua"
apply >/dev/null 2>&1
check_eq "next apply: exits 0" 0 $?
check_eq "next apply: the finished step did not run again" 1 "$(runs one)"
check_eq "next apply: the interrupted step ran again" 2 "$(runs two)"
check_eq "next apply: the step never reached ran" 1 "$(runs three)"

# A failing step ends the pass early: the steps after it keep what they had (here: pending), not interrupted.
cat > "$R/30-fail.lua" <<'EOF2'
recipe "fail" {
  step "boom" { function() error("boom") end },
  step "after" { function() end },
}
EOF2
apply >/dev/null 2>&1
json=$(nodeinit status --json --target-pid "$FAKE" 2>/dev/null)
check_contains "failed pass: the failed step is failed" '"name":"boom","when":"once","result":"failed"' "$json"
check_contains "failed pass: the step after it is pending, not interrupted" '"name":"after","when":"once","result":"pending"' "$json"
check "failed pass: no plan line is left in the compacted state" sh -c "! grep -q '^plan ' /proc/$FAKE/root/var/lib/nodeinit/fail.state"

finish
