# Stops and timeouts a recipe cannot talk its way out of, against fake hosts: a stop signal caught by
# pcall, a step past its timeout, a step stuck where the count hook cannot see (the watchdog), a
# target that has gone while `run` idles, and an idle `run` that stays quiet.
. "$(dirname "$0")/../lib/common.sh"
require_root
command -v python3 >/dev/null || skip_all "needs python3 to read status --json"

# Each case has its own recipe dir ($T/NAME), state dir (/var/lib/nodeinit/NAME in the fake host) and
# log ($T/NAME.log), so cases can run side by side in one fake host.
declare -A PID=() RC=() STARTED=()
# mkcase NAME FILE: the recipe text on stdin becomes $T/NAME/FILE.
mkcase() { mkdir -p "$T/$1" && cat > "$T/$1/$2"; }
# start NAME COMMAND [ARGS]: starts nodeinit directly (so $! is what a signal must reach).
start() {
	local name=$1 cmd=$2
	shift 2
	"$NODEINIT" "$cmd" --target-pid "$FAKE" --recipes "$T/$name" --state-dir "/var/lib/nodeinit/$name" "$@" \
		> "$T/$name.log" 2>&1 &
	PID[$name]=$!
	STARTED[$name]=$SECONDS
}
# await NAME: waits for the case's nodeinit and sets RC[NAME]. A process still running 60 s after it
# started is hung (what these fixes are about): it is killed, and its status is 137.
await() {
	local name=$1 p=${PID[$1]}
	while kill -0 "$p" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]; do
		if [ $((SECONDS - ${STARTED[$name]:-0})) -ge 60 ]; then
			echo "# stops: $name still running after 60 s: killing it"
			kill -KILL "$p" 2>/dev/null
			break
		fi
		sleep 0.1
	done
	wait "$p"
	RC[$name]=$?
}
# wait_for SECONDS CMD...: polls CMD every 50 ms.
wait_for() {
	local n=$(($1 * 20))
	shift
	while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.05; n=$((n - 1)); done
	return 1
}
# result NAME RECIPE STEP: the step's result in status --json of that case's state dir.
result() {
	nodeinit status --json --target-pid "$FAKE" --state-dir "/var/lib/nodeinit/$1" 2>/dev/null | python3 -c "
import json, sys
d = json.load(sys.stdin)
print(next((s['result'] for r in d['recipes'] if r['name'] == '$2' for s in r['steps'] if s['name'] == '$3'), 'none'))"
}
# last_end NAME RECIPE STEP: the step's last "end" line in its journal.
last_end() { grep "^end $3 " "/proc/$FAKE/root/var/lib/nodeinit/$1/$2.state" | tail -1; }
# field LINE KEY: KEY's value in a journal line.
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
sleeping() { in_fake pgrep -fx "sleep $1" >/dev/null; }

fakehost_start

# --- 1. A stop signal caught by the recipe is still a stop. SIGTERM arrives while exec.ok runs
# inside a pcall: the command is killed, the pcall swallows the error, the body returns.
mkcase caught 10-r.lua <<'EOF'
recipe "caught" {
  step "swallow" { function()
    pcall(exec.ok, { "sleep", "31" })
  end },
  step "next" { function() file.write("/tmp/caught-next", "ran") end },
}
EOF
mkcase carryon 10-r.lua <<'EOF'
recipe "carryon" {
  step "swallow" { function()
    local ok = pcall(exec.ok, { "sleep", "32" })
    file.write("/tmp/carryon-after", tostring(ok))
  end },
}
EOF
start caught apply
start carryon apply
wait_for 20 sleeping 31
wait_for 20 sleeping 32
kill -TERM "${PID[caught]}" "${PID[carryon]}"
await caught
await carryon
check_eq "stop caught by pcall: apply exits 1" 1 "${RC[caught]}"
check_eq "stop caught by pcall: the step is interrupted, not ok" interrupted "$(result caught caught swallow)"
check_contains "stop caught by pcall: the log says so" "step interrupted by a stop signal recipe=caught step=swallow" "$(cat "$T/caught.log")"
check "stop caught by pcall: the next step did not run" in_fake test ! -e /tmp/caught-next
check_contains "stop caught by pcall: plan runs it again" "caught/swallow run interrupted" \
	"$(nodeinit plan --target-pid "$FAKE" --recipes "$T/caught" --state-dir /var/lib/nodeinit/caught 2>&1)"
check_eq "stop caught by pcall, body carries on: interrupted" interrupted "$(result carryon carryon swallow)"
check "stop caught by pcall, body carries on: the next Lua call raised (no file written)" in_fake test ! -e /tmp/carryon-after

# --- 2. A step past its timeout is failed, whatever its body did after: exec.run returned
# timed_out = true at the step's deadline and the body carried on (it may still say which command
# timed out; the count hook ends it at its next round).
mkcase tlua 10-r.lua <<'EOF'
recipe "tlua" {
  step "slow" { timeout = 1, function() exec.run { "sleep", "20" } end },
}
EOF
mkcase tcarry 10-r.lua <<'EOF'
recipe "tcarry" {
  step "slow" { timeout = 1, function()
    local r = exec.run { "sleep", "21" }
    file.write("/tmp/tcarry-after", tostring(r.timed_out))
  end },
}
EOF
mkcase tyaml 10-r.yaml <<'EOF'
recipe: tyaml
steps:
  - name: slow-lua
    timeout: 1
    lua: |
      exec.run { "sleep", "22" }
EOF
mkcase tyexec 10-r.yaml <<'EOF'
recipe: tyexec
steps:
  - name: slow-exec
    timeout: 1
    exec: [sleep, "23"]
EOF
# A command's own timeout is the body's business: the step (well within its own) is ok.
mkcase town 10-r.lua <<'EOF'
recipe "town" {
  step "own" { timeout = 30, function()
    local r = exec.run { "sleep", "24", timeout = 0.2 }
    assert(r.timed_out)
    file.write("/tmp/town-after", "yes")
  end },
}
EOF
for c in tlua tcarry tyaml tyexec town; do start "$c" apply; done
for c in tlua tcarry tyaml tyexec town; do await "$c"; done
check_eq "timeout, Lua step: apply exits 1" 1 "${RC[tlua]}"
check_eq "timeout, Lua step: failed, not ok" failed "$(result tlua tlua slow)"
check_contains "timeout, Lua step: the log gives the reason" "reason=timeout" "$(grep 'step failed' "$T/tlua.log")"
line=$(last_end tlua tlua slow)
check_eq "timeout, Lua step: the record counts one failure" 1 "$(field "$line" failures)"
check "timeout, Lua step: the record has a back-off" [ "$(field "$line" retry_after_ms)" -gt "$(field "$line" started_ms)" ] 2>/dev/null
check_eq "timeout, Lua body carries on: failed" failed "$(result tcarry tcarry slow)"
check_eq "timeout, YAML lua step: failed" failed "$(result tyaml tyaml slow-lua)"
check_eq "timeout, YAML exec step: failed" failed "$(result tyexec tyexec slow-exec)"
check_eq "a command's own timeout inside a step: ok" ok "$(result town town own)"
check "a command's own timeout inside a step: the body carried on" in_fake test -e /tmp/town-after

# --- 3. A step stuck where the count hook cannot see still ends: a pattern match in C, an xpcall
# message handler after the hook raised, __close run by coroutine.close or coroutine.wrap on a
# coroutine the hook ended, a __gc finalizer. With a timeout, and with SIGTERM (no timeout).
stuck_body() {
	case $1 in
	pattern) echo '("a"):rep(3000):find(".-.-.-.-b")' ;;
	xpcall) echo 'xpcall(function() while true do end end, function() while true do end end)' ;;
	close) cat <<'EOF'
    local co = coroutine.create(function()
      local guard <close> = setmetatable({}, { __close = function() while true do end end })
      while true do end
    end)
    coroutine.resume(co)
    coroutine.close(co)
EOF
		;;
	wrap) cat <<'EOF'
    coroutine.wrap(function()
      local guard <close> = setmetatable({}, { __close = function() while true do end end })
      while true do end
    end)()
EOF
		;;
	gc) cat <<'EOF'
    setmetatable({}, { __gc = function() while true do end end })
    collectgarbage()
    file.write("/tmp/stuck-gc-unreachable", "yes") -- only when no finalizer ran
EOF
		;;
	esac
}
# stuck_case NAME KIND TIMEOUT_FIELD
stuck_case() {
	mkcase "$1" 10-r.lua <<EOF
recipe "stuck" {
  step "first" { function() file.write("/tmp/$1-first", "yes") end },
  step "stuck" { $3 function()
    file.write("/tmp/$1-started", "yes");
$(stuck_body "$2")
  end },
  step "after" { function() file.write("/tmp/$1-after", "yes") end },
}
EOF
}
KINDS="pattern xpcall close wrap gc"
# stuck_checks NAME HOW KIND
stuck_checks() {
	local name=$1 how=$2 kind=$3 line
	if [ "$kind" = gc ] && grep -q "__gc is not available to recipes" "$T/$name.log"; then
		# The sandbox refuses __gc (a finalizer would run outside any step): the step fails at
		# once, before anything could get stuck, and the watchdog has nothing to do.
		check_eq "$kind, $how: __gc refused, the step is failed" failed "$(result "$name" stuck stuck)"
		check "$kind, $how: __gc refused, no later step ran" in_fake test ! -e "/tmp/$name-after"
		return
	fi
	check_eq "$kind, $how: nodeinit ends, exit 1" 1 "${RC[$name]}"
	check_eq "$kind, $how: the step is failed" failed "$(result "$name" stuck stuck)"
	check_contains "$kind, $how: the log says why" "reason=\"timeout in native code\"" "$(grep 'step failed' "$T/$name.log")"
	line=$(last_end "$name" stuck stuck)
	check_eq "$kind, $how: the record counts one failure" 1 "$(field "$line" failures)"
	check "$kind, $how: the record has a back-off" [ "$(field "$line" retry_after_ms)" -gt "$(field "$line" started_ms)" ] 2>/dev/null
	check_eq "$kind, $how: the step before stays ok" ok "$(result "$name" stuck first)"
	check "$kind, $how: no later step ran" in_fake test ! -e "/tmp/$name-after"
}
for k in $KINDS; do stuck_case "to-$k" "$k" "timeout = 1,"; start "to-$k" apply; done
for k in $KINDS; do await "to-$k"; stuck_checks "to-$k" timeout "$k"; done

for k in $KINDS; do stuck_case "term-$k" "$k" ""; start "term-$k" apply; done
for k in $KINDS; do wait_for 20 in_fake test -e "/tmp/term-$k-started"; done
sleep 0.3 # into the stuck part
for k in $KINDS; do kill -TERM "${PID[term-$k]}"; done
for k in $KINDS; do await "term-$k"; stuck_checks "term-$k" SIGTERM "$k"; done

# `run` ends too (the kubelet restarts it), and the next `run` waits for the back-off.
stuck_case run-pattern pattern "timeout = 1,"
start run-pattern run
await run-pattern
check_eq "pattern under run: run ends, exit 1" 1 "${RC[run-pattern]}"
check_eq "pattern under run: failed" failed "$(result run-pattern stuck stuck)"
in_fake rm -f /tmp/run-pattern-started
start run-pattern run
wait_for 20 grep -q "nodeinit running" "$T/run-pattern.log"
sleep 1.5
kill -TERM "${PID[run-pattern]}"
await run-pattern
check_eq "pattern under run, restarted: exits 0 on SIGTERM" 0 "${RC[run-pattern]}"
check "pattern under run, restarted: the failed step waits for its back-off" in_fake test ! -e /tmp/run-pattern-started

# --- 4. `run` notices a target that has gone, with recipes or with the legacy script only.
mkdir -p "$T/none"
mkcase gone-recipes 10-r.lua <<'EOF'
recipe "gone" { step "one" { function() file.write("/tmp/gone-one", "yes") end } }
EOF
for c in legacy recipes; do
	fakehost_start
	if [ $c = legacy ]; then
		STARTUP_SCRIPT='touch /tmp/legacy-ran' "$NODEINIT" run --target-pid "$FAKE" --recipes "$T/none" --interval 1 \
			> "$T/gone-$c.log" 2>&1 &
		PID[gone-$c]=$!
		STARTED[gone-$c]=$SECONDS
		wait_for 20 in_fake test -e /tmp/legacy-ran
	else
		start gone-recipes run --interval 1
		PID[gone-$c]=${PID[gone-recipes]}
		STARTED[gone-$c]=$SECONDS
		wait_for 20 in_fake test -e /tmp/gone-one
	fi
	sleep 1.5 # idle
	fakehost_kill "$FAKE"
	await "gone-$c"
	check_eq "target gone while idle ($c): run exits 3" 3 "${RC[gone-$c]}"
	check_contains "target gone while idle ($c): it says so" "the target process is gone" "$(cat "$T/gone-$c.log")"
done
FAKE=${FAKE_PIDS[0]}

# --- 5. Quiet when nothing changes: an always step that changes nothing, and a step whose check
# holds, log at debug; a change is still an info line.
in_fake sysctl -qw net.core.somaxconn=128
mkcase quiet 10-r.lua <<'EOF'
recipe "quiet" {
  step "drift" { when = "always", function() sysctl.set("net.core.somaxconn", "4096") end },
  step "same" { when = "always", function() file.write("/tmp/quiet-same", "same\n") end },
  step "kept" { check = function() return true end, function() error("not run") end },
}
EOF
mkcase quiet 20-r.yaml <<'EOF'
recipe: quiet-yaml
steps:
  - name: forward
    when: always
    sysctl: { net.ipv4.ip_forward: "1" }
EOF
in_fake sysctl -qw net.ipv4.ip_forward=1
in_fake sh -c 'echo same > /tmp/quiet-same'
start quiet run --interval 1 --log-level debug
wait_for 20 grep -q "step done recipe=quiet-yaml step=forward" "$T/quiet.log"
n=0
while [ "$(grep -c 'debug step done recipe=quiet-yaml step=forward' "$T/quiet.log")" -lt 4 ] && [ $n -lt 200 ]; do
	sleep 0.1
	n=$((n + 1))
done
kill -TERM "${PID[quiet]}"
await quiet
passes=$(grep -c 'step done recipe=quiet-yaml step=forward' "$T/quiet.log")
echo "# stops: $passes passes of the quiet recipe"
check "quiet: the always steps ran every pass (at debug)" [ "$passes" -ge 4 ]
check_eq "quiet: the one change is an info line" 1 "$(grep -c ' info  changed step=quiet/drift sysctl=net.core.somaxconn' "$T/quiet.log")"
check_eq "quiet: the pass that changed it logs its step at info, once" 1 "$(grep -c ' info  step done recipe=quiet step=drift' "$T/quiet.log")"
check_eq "quiet: no other info line over the passes (only start and stop)" "" \
	"$(grep ' info  ' "$T/quiet.log" | grep -v -e ' info  nodeinit running' -e ' info  kube: off ' -e ' info  stopping' \
		-e 'step=quiet/drift' -e 'recipe=quiet step=drift')"
check_eq "quiet: the start-up line on the cluster API (kube: off) comes once, not per pass" 1 \
	"$(grep -c ' info  kube: off ' "$T/quiet.log")"
check_eq "quiet: the kept step is recorded kept" kept "$(result quiet quiet kept)"

finish
