# The cluster side against a strict stand-in API server (tests/kube/apiserver.py) and a fake host:
# condition, startup taint, Events, ready file, kube.node(), and that the API never decides a pass.
. "$(dirname "$0")/../lib/common.sh"
require_root
command -v openssl >/dev/null || skip_all "needs the openssl CLI (Debian: openssl) to make a test CA"
command -v jq >/dev/null || skip_all "needs jq to read the stand-in's state"
PY=/usr/bin/python3
"$PY" -c 'import ssl' 2>/dev/null || PY=python3
"$PY" -c 'import ssl' 2>/dev/null || skip_all "no python3 with the ssl module"

STANDIN=$PWD/tests/kube/apiserver.py
API=$T/api   # the stand-in's directory: token, node.json, port, requests.jsonl, events.json
SA=$T/sa     # the pod's service account directory
TAINT=nodeinit.example.com/not-ready
mkdir -p "$API" "$SA" "$T/pki" "$T/r"

# --- A test CA and a serving certificate, made here with the openssl CLI -------------------------
pki() { # NAME: a CA NAME.ca.crt and a server certificate NAME.crt signed by it
	( cd "$T/pki" &&
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.ca.key" -out "$1.ca.crt" \
		-days 2 -subj "/CN=$1-ca" &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj /CN=kube-apiserver &&
	printf '%s\n' "subjectAltName=DNS:kubernetes.default.svc,DNS:kubernetes,IP:127.0.0.1" \
		"basicConstraints=CA:FALSE" "extendedKeyUsage=serverAuth" > "$1.ext" &&
	openssl x509 -req -in "$1.csr" -CA "$1.ca.crt" -CAkey "$1.ca.key" -CAcreateserial -out "$1.crt" -days 2 \
		-extfile "$1.ext" ) >/dev/null 2>&1
}
pki good && pki other || { not_ok "openssl made the test CAs"; finish; }
cp "$T/pki/good.ca.crt" "$SA/ca.crt"
printf 'token-one' > "$SA/token"
printf 'token-one\n' > "$API/token"
printf 'nodeinit\n' > "$SA/namespace"

node_json() {
	cat > "$API/node.json" <<'EOF'
{"apiVersion": "v1", "kind": "Node",
 "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1", "nodeinit.example.com/pool": "gpu"},
              "annotations": {"note": "hello"}},
 "spec": {"taints": [{"key": "nodeinit.example.com/not-ready", "effect": "NoSchedule"},
                     {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
                     {"key": "nodeinit.example.com/not-ready", "effect": "NoExecute"}]},
 "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}
EOF
}

API_PID=
api_start() { # [apiserver.py options]: starts the stand-in afresh, sets API_PORT
	api_stop
	rm -f "$API/port" "$API/requests.jsonl" "$API/events.json"
	node_json
	"$PY" "$STANDIN" --dir "$API" --cert "$T/pki/good.crt" --key "$T/pki/good.key" --lifetime 300 "$@" \
		2>>"$T/apiserver.err" &
	API_PID=$!
	for _ in $(seq 100); do [ -s "$API/port" ] && break; sleep 0.1; done
	API_PORT=$(cat "$API/port" 2>/dev/null)
	[ -n "$API_PORT" ] || { not_ok "the stand-in started: $(cat "$T/apiserver.err")"; finish; }
}
api_stop() { [ -n "$API_PID" ] && kill "$API_PID" 2>/dev/null && wait "$API_PID" 2>/dev/null; API_PID=; }
trap 'api_stop; fakehost_stop' EXIT

requests() { cat "$API/requests.jsonl" 2>/dev/null; }
nreq() { requests | wc -l; }
cond() { jq -r '.status.conditions[] | select(.type == "NodeinitConverged") | '"$1" "$API/node.json"; }

# kn CMD ARGS...: nodeinit with the in-cluster environment, pointed at the fake host.
kn() {
	KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$API_PORT NODE_NAME=n1 \
		nodeinit "$@" --target-pid "$FAKE" --kube-sa-dir "$SA"
}

# kn_bg CMD ARGS... &: the same, exec'd, so that $! is nodeinit itself (stopped by that PID).
kn_bg() {
	KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$API_PORT NODE_NAME=n1 \
		exec $NODEINIT_WRAP "$NODEINIT" "$@" --target-pid "$FAKE" --kube-sa-dir "$SA"
}

fakehost_start
api_start

# The recipes: one step that converges; "fail" adds one that fails.
cat > "$T/r/10-base.lua" <<'EOF'
recipe "base" {
  step "marker" { function() file.write("/etc/nodeinit-kube-test", "ok\n") end },
}
EOF
mkdir -p "$T/rfail"
cp "$T/r/10-base.lua" "$T/rfail/"
cat > "$T/rfail/20-broken.lua" <<'EOF'
recipe "broken" {
  step "boom" { function() error("boom: the first line\nthe second line", 0) end },
}
EOF

# --- The fake host's network namespace cannot reach the stand-in; the pod's can -------------------
in_fake bash -c "exec 3<>/dev/tcp/127.0.0.1/$API_PORT" 2>/dev/null
check "the fake host's network namespace has no route to the stand-in" test $? -ne 0

# --- Convergence: condition True, only the startup taint removed, ready file, Normal event -------
out=$(kn apply --recipes "$T/r" --startup-taint "$TAINT" --ready-file /run/nodeinit/ready 2>&1)
check_eq "apply converges (exit 0)" 0 $?
check_contains "one line says the API is on, and why" "kube: on" "$out"
check_eq "exactly one kube on/off line" 1 "$(printf '%s\n' "$out" | grep -c 'kube: o[nf]')"
check_eq "condition NodeinitConverged is True" True "$(cond .status)"
check_eq "its reason is Converged" Converged "$(cond .reason)"
check_eq "the other conditions stay (strategic merge by type)" True \
	"$(jq -r '.status.conditions[] | select(.type == "Ready") | .status' "$API/node.json")"
check_eq "both startup taints removed, the other taint kept" '["dedicated"]' \
	"$(jq -c '[.spec.taints[].key]' "$API/node.json")"
check_eq "the taint went by JSON patch: a test of the current taints, then replace" "test replace" \
	"$(requests | jq -r 'select(.content_type == "application/json-patch+json") | .body' | jq -r '[.[].op] | join(" ")')"
check_eq "Applying was sent while the pass ran due steps" Applying \
	"$(requests | jq -r 'select(.path == "/api/v1/nodes/n1/status") | .body' | head -n 1 | jq -r '.status.conditions[0].reason')"
check_eq "the status patches carry the condition alone" 1 \
	"$(requests | jq -r 'select(.path == "/api/v1/nodes/n1/status") | .body' | head -n 1 | jq '.status.conditions | length')"
check_eq "a Normal Converged event about the Node" "Normal Converged Node n1" \
	"$(jq -r '.[] | select(.reason == "Converged") | "\(.type) \(.reason) \(.regarding.kind) \(.regarding.name)"' "$API/events.json")"
check_eq "the ready file is in the fake host" converged "$(in_fake cat /run/nodeinit/ready)"
check "the ready file is not on the real machine" test ! -e /run/nodeinit/ready
check_eq "status --ready exits 0" 0 "$(nodeinit status --ready --target-pid "$FAKE" >/dev/null 2>&1; echo $?)"

before=$(nreq)
kn apply --recipes "$T/r" --startup-taint "$TAINT" --ready-file /run/nodeinit/ready >/dev/null 2>&1
check_eq "a converged apply again: exit 0" 0 $?
check "it never adds a taint" test "$(jq -c '[.spec.taints[].key]' "$API/node.json")" = '["dedicated"]'
check "no request adds a taint" sh -c "! jq -r 'select(.content_type == \"application/json-patch+json\") | .body' '$API/requests.jsonl' | grep -q '\"add\"'"

# --- A failing step: condition False/StepFailed, one Warning event, no flood ---------------------
out=$(kn apply --recipes "$T/rfail" --ready-file /run/nodeinit/ready 2>&1)
check_eq "a failing step: apply exits 1" 1 $?
check_eq "condition False" False "$(cond .status)"
check_eq "reason StepFailed" StepFailed "$(cond .reason)"
check_contains "the message names the recipe/step" "broken/boom" "$(cond .message)"
ev=$(jq -r '.[] | select(.reason == "StepFailed") | "\(.type)|\(.note)"' "$API/events.json")
check_contains "a Warning StepFailed event with recipe, step and the first error line" \
	"Warning|recipe broken, step boom failed: boom: the first line" "$ev"
check "the event carries the first line only" sh -c "! jq -r '.[].note' '$API/events.json' | grep -q 'second line'"
check "the ready file is removed when not converged" in_fake test ! -e /run/nodeinit/ready
for _ in 1 2; do kn apply --recipes "$T/rfail" >/dev/null 2>&1; done
check_eq "the same failure three times (three applies): still one Warning event" 1 \
	"$(jq '[.[] | select(.reason == "StepFailed")] | length' "$API/events.json")"
check_eq "its series counts the repeats" 3 "$(jq '.[] | select(.reason == "StepFailed") | .series.count' "$API/events.json")"
# A run retrying it with back-off counts on the same Event (a fresh state: no back-off left by apply).
in_fake rm -rf /var/lib/nodeinit
kn_bg run --interval 1 --recipes "$T/rfail" >/dev/null 2>&1 &
runner=$!
for _ in $(seq 100); do [ "$(jq '.[] | select(.reason == "StepFailed") | .series.count' "$API/events.json")" -ge 5 ] && break; sleep 0.1; done
kill -TERM $runner; wait $runner
check_eq "a run's retries: still one Warning event" 1 "$(jq '[.[] | select(.reason == "StepFailed")] | length' "$API/events.json")"
check "a run's retries count on its series" test "$(jq '.[] | select(.reason == "StepFailed") | .series.count' "$API/events.json")" -ge 5
check_eq "status --ready says not converged (exit 1)" 1 "$(nodeinit status --ready --target-pid "$FAKE" >/dev/null 2>&1; echo $?)"

# --- Sensitive values reach no request and no log line -------------------------------------------
mkdir -p "$T/rsecret"
cat > "$T/rsecret/10-secret.lua" <<'EOF'
recipe "secret" {
  step "fails" { sensitive = true, function() error("token=s3cr3t-VALUE-42") end },
}
EOF
out=$(kn apply --recipes "$T/rsecret" 2>&1)
check_eq "a failing sensitive step: exit 1" 1 $?
check "no secret in any request body" sh -c "! grep -q 's3cr3t-VALUE-42' '$API/requests.jsonl'"
check "no secret in the stored events" sh -c "! grep -q 's3cr3t-VALUE-42' '$API/events.json'"
check "no secret in the log" sh -c "! printf '%s' \"\$1\" | grep -q 's3cr3t-VALUE-42'" _ "$out"
check "the token is in no log line" sh -c "! printf '%s' \"\$1\" | grep -q 'token-one'" _ "$out"
check_contains "the event says the step is sensitive" "hidden: sensitive step" "$(jq -r '.[].note' "$API/events.json")"

# --- A rotated token is picked up (401, read the file again, retry) ------------------------------
printf 'token-two\n' > "$API/token"
printf 'token-two' > "$SA/token"
before=$(nreq)
out=$(kn apply --recipes "$T/r" 2>&1)
check_eq "after rotation: apply exits 0" 0 $?
check_eq "after rotation the condition is True again" True "$(cond .status)"
check "requests after the rotation succeed" test "$(requests | tail -n +$((before + 1)) | jq -s '[.[] | select(.status < 300)] | length')" -ge 1
# Rotated while a run is up: the old token gets a 401, the file is read again, the retry succeeds.
before=$(nreq)
kn_bg run --interval 1 --recipes "$T/rfail" >"$T/rot.log" 2>&1 &
runner=$!
# Rotate only once this run has used its token: the condition was True, its failing step makes it False.
for _ in $(seq 200); do [ "$(cond .status)" = False ] && break; sleep 0.1; done
check_eq "the run reported its failing step" False "$(cond .status)"
before=$(nreq)
printf 'token-three\n' > "$API/token"
printf 'token-three' > "$SA/token"
cat > "$T/rfail/20-broken.lua" <<'EOF'
recipe "broken" {
  step "boom" { function() return true end },
}
EOF
for _ in $(seq 150); do [ "$(cond .status)" = True ] && break; sleep 0.1; done
kill -TERM $runner; wait $runner
check_eq "a running run picks up the rotated token" True "$(cond .status)"
check "the old token got a 401 and the retry a 2xx" sh -c "tail -n +$((before + 1)) '$API/requests.jsonl' | jq -r .status | grep -q 401"
check "no 'unauthorized' problem was logged" sh -c "! grep -q unauthorized '$T/rot.log'"
cat > "$T/rfail/20-broken.lua" <<'EOF'
recipe "broken" {
  step "boom" { function() error("boom: the first line\nthe second line", 0) end },
}
EOF

# --- kube.node(): labels, annotations and taints reach a recipe ----------------------------------
mkdir -p "$T/rnode"
cat > "$T/rnode/10-pool.lua" <<'EOF'
recipe "pool" {
  step "by-label" { function()
    local node = assert(kube.node())
    local again = kube.node()
    file.write("/etc/nodeinit-pool", node.name .. " " .. node.labels["nodeinit.example.com/pool"] .. " "
      .. node.annotations.note .. " " .. node.taints[1].key .. " " .. tostring(node == again or again.name == node.name) .. "\n")
  end },
}
EOF
before=$(nreq)
kn apply --recipes "$T/rnode" >/dev/null 2>&1
check_eq "kube.node() reached the recipe" "n1 gpu hello dedicated true" "$(in_fake cat /etc/nodeinit-pool)"
check_eq "the Node was read once in the pass" 1 \
	"$(requests | tail -n +$((before + 1)) | jq -r 'select(.method == "GET") | .path' | grep -c '^/api/v1/nodes/n1$')"
# At a file's top level it is refused like every host read (load time is pure): no request is made.
mkdir -p "$T/rload"
printf 'local pool = kube.node()\nrecipe "l" { step "s" { function() end } }\n' > "$T/rload/10-load.lua"
before=$(nreq)
out=$(kn apply --recipes "$T/rload" 2>&1)
check_eq "kube.node() at load: apply exits 2" 2 $?
check_contains "kube.node() at load: refused with file:line" "10-load.lua:1: kube.node: only inside a step" "$out"
check_eq "kube.node() at load: the Node was not read" 0 \
	"$(requests | tail -n +$((before + 1)) | jq -r 'select(.method == "GET") | .path' | grep -c '^/api/v1/nodes/n1$')"
out=$(printf 'return kube.node()\n' | nodeinit eval - --target-pid "$FAKE" --kube off 2>&1)
check_contains "kube off: kube.node() is nil and a message" "nil	kube: the API is off" "$out"

# --- The fingerprint cache answers (a no-op pass loads no Lua): the pass is still reported --------
api_start
in_fake rm -rf /var/lib/nodeinit /run/nodeinit
kn apply --recipes "$T/r" --kube off >/dev/null 2>&1
check_eq "cache: converged with the API off first (the cache is written)" 0 $?
out=$(NODEINIT_LOG_LEVEL=debug kn apply --recipes "$T/r" --startup-taint "$TAINT" --ready-file /run/nodeinit/ready 2>&1)
check_eq "cache: the no-op apply exits 0" 0 $?
check_contains "cache: its steps came from the cache, no Lua load" "recipes from the fingerprint cache" "$out"
check "cache: no step ran" sh -c "! printf '%s' \"\$1\" | grep -q 'step start'" _ "$out"
check_eq "cache: the condition is True" True "$(cond .status)"
check_eq "cache: both startup taints removed, the other kept" '["dedicated"]' "$(jq -c '[.spec.taints[].key]' "$API/node.json")"
check_eq "cache: the ready file is written" converged "$(in_fake cat /run/nodeinit/ready)"
check_eq "cache: no Converged event (nothing changed)" 0 "$(jq '[.[] | select(.reason == "Converged")] | length' "$API/events.json" 2>/dev/null || echo 0)"

# A restarted run whose failed step still waits for its back-off: its first pass is a no-op from the
# cache and the records alone, and the condition still names the step; the Warning Event was sent
# when it failed, not again.
in_fake rm -rf /var/lib/nodeinit
kn apply --recipes "$T/rfail" >/dev/null 2>&1 # records the failure: retry after the 30 s interval
api_start # a fresh Node: no condition yet, no events
NODEINIT_LOG_LEVEL=debug kn_bg run --recipes "$T/rfail" > "$T/waiting.log" 2>&1 &
runner=$!
for _ in $(seq 100); do [ -n "$(cond .reason 2>/dev/null)" ] && break; sleep 0.1; done
kill -TERM $runner; wait $runner
check_contains "waiting: the run's first pass came from the cache" "recipes from the fingerprint cache" "$(cat "$T/waiting.log")"
check "waiting: no step ran (back-off)" sh -c "! grep -q 'step start' '$T/waiting.log'"
check_eq "waiting: condition False" False "$(cond .status)"
check_eq "waiting: reason StepFailed" StepFailed "$(cond .reason)"
check_eq "waiting: the message names the waiting step" "step broken/boom failed" "$(cond .message)"
check_eq "waiting: no second Warning event" 0 "$(jq '[.[] | select(.reason == "StepFailed")] | length' "$API/events.json" 2>/dev/null || echo 0)"

# run drops its Lua state while idle: a step due again later (its back-off ran out) loads Lua afresh,
# and kube.node(), the condition, the taint and the Event work from that new state.
mkdir -p "$T/rflaky"
cat > "$T/rflaky/10-flaky.lua" <<'EOF'
local tries = 0 -- counts the tries this Lua state made: 1 after a reload
recipe "flaky" {
  step "by-label" { function()
    local node = assert(kube.node())
    tries = tries + 1
    file.write("/etc/nodeinit-flaky", node.labels["nodeinit.example.com/pool"] .. " " .. tries .. "\n", { mode = "0644" })
    assert(file.exists("/tmp/flaky-ok"), "not yet")
  end },
}
EOF
api_start # a fresh Node: its taints back, no condition
in_fake rm -rf /var/lib/nodeinit /etc/nodeinit-flaky /tmp/flaky-ok
NODEINIT_LOG_LEVEL=debug kn_bg run --interval 1 --recipes "$T/rflaky" --startup-taint "$TAINT" > "$T/reload.log" 2>&1 &
runner=$!
for _ in $(seq 100); do [ "$(cond .reason 2>/dev/null)" = StepFailed ] && break; sleep 0.1; done
check_eq "reload: the first try failed (StepFailed)" StepFailed "$(cond .reason)"
check_eq "reload: the first try read the Node" "gpu 1" "$(in_fake cat /etc/nodeinit-flaky)"
in_fake rm -f /etc/nodeinit-flaky
in_fake touch /tmp/flaky-ok
for _ in $(seq 300); do [ "$(cond .status)" = True ] && break; sleep 0.1; done
kill -TERM $runner; wait $runner
check_eq "reload: the retry from a reloaded Lua state converged (condition True)" True "$(cond .status)"
check_eq "reload: kube.node() worked in a reloaded Lua state (its first try)" "gpu 1" "$(in_fake cat /etc/nodeinit-flaky)"
check_eq "reload: the startup taints were removed" '["dedicated"]' "$(jq -c '[.spec.taints[].key]' "$API/node.json")"
check_eq "reload: a Converged event" 1 "$(jq '[.[] | select(.reason == "Converged")] | length' "$API/events.json")"
check "reload: the step was tried more than once" test "$(grep -c 'step start' "$T/reload.log")" -ge 2

# --- A wrong CA: nothing is sent, the recipes still converge -------------------------------------
SA_GOOD=$SA
SA=$T/sa-wrong
mkdir -p "$SA" && cp "$SA_GOOD/token" "$SA_GOOD/namespace" "$SA/" && cp "$T/pki/other.ca.crt" "$SA/ca.crt"
before=$(nreq)
in_fake rm -rf /var/lib/nodeinit
out=$(kn apply --recipes "$T/r" --ready-file /run/nodeinit/ready 2>&1)
check_eq "wrong CA: apply still exits 0" 0 $?
check_eq "wrong CA: no request reached the server" "$before" "$(nreq)"
check_contains "wrong CA: the failed verification names the CA file" "does not verify against $SA/ca.crt" "$out"
check_eq "wrong CA: logged once" 1 "$(printf '%s\n' "$out" | grep -c 'does not verify')"
check_eq "wrong CA: status --ready exits 0" 0 "$(nodeinit status --ready --target-pid "$FAKE" >/dev/null 2>&1; echo $?)"
check_eq "wrong CA: the ready file is still written" converged "$(in_fake cat /run/nodeinit/ready)"
SA=$SA_GOOD

# --- 403 and API down change nothing about exit codes or --ready --------------------------------
api_start --deny patch:nodes/status --deny create:events
in_fake rm -rf /var/lib/nodeinit
out=$(kn apply --recipes "$T/r" 2>&1)
check_eq "403: apply exits 0" 0 $?
check_contains "403: names the verb and resource" "RBAC must allow patch on nodes/status" "$out"
check_eq "403: logged once" 1 "$(printf '%s\n' "$out" | grep -c 'RBAC must allow patch on nodes/status')"
check_eq "403: status --ready exits 0" 0 "$(nodeinit status --ready --target-pid "$FAKE" >/dev/null 2>&1; echo $?)"
out=$(kn apply --recipes "$T/rfail" 2>&1)
check_eq "403: a failing step still exits 1" 1 $?

port=$API_PORT
api_stop
in_fake rm -rf /var/lib/nodeinit
out=$(kn apply --recipes "$T/r" 2>&1)
check_eq "API down: apply exits 0" 0 $?
check_contains "API down: says it cannot reach the API server" "cannot reach the API server" "$out"
check_eq "API down: logged once" 1 "$(printf '%s\n' "$out" | grep -c 'cannot reach the API server')"
check_eq "API down: status --ready exits 0" 0 "$(nodeinit status --ready --target-pid "$FAKE" >/dev/null 2>&1; echo $?)"
out=$(kn apply --recipes "$T/rfail" 2>&1)
check_eq "API down: a failing step still exits 1" 1 $?

# A slow API server (accepts, never answers): requests time out, the pass goes on.
api_start --hang
in_fake rm -rf /var/lib/nodeinit
out=$(kn apply --recipes "$T/r" 2>&1)
check_eq "slow API: apply exits 0" 0 $?
check_contains "slow API: the request timed out" "timed out" "$out"
check_eq "slow API: the step still ran" ok "$(in_fake cat /etc/nodeinit-kube-test)"

# --- --kube off and auto without a cluster: one line each, no requests ---------------------------
api_start
out=$(KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$API_PORT NODE_NAME=n1 \
	nodeinit apply --recipes "$T/r" --target-pid "$FAKE" --kube-sa-dir "$SA" --kube off 2>&1)
check_contains "--kube off: one line says so, and why" "kube: off why=\"--kube off\"" "$out"
check_eq "--kube off: no request" 0 "$(nreq)"
out=$(unset KUBERNETES_SERVICE_HOST; nodeinit apply --recipes "$T/r" --target-pid "$FAKE" 2>&1)
check_contains "auto outside a cluster: off, and why" "KUBERNETES_SERVICE_HOST is not set" "$out"
out=$(KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$API_PORT nodeinit apply --recipes "$T/r" \
	--target-pid "$FAKE" --kube-sa-dir "$SA" 2>&1)
check_contains "auto without NODE_NAME: off, and why" "NODE_NAME is not set" "$out"

# --- Idle: a converged run with the API on forks nothing and sends at most a heartbeat -----------
if command -v strace >/dev/null; then
	in_fake rm -rf /var/lib/nodeinit
	KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$API_PORT NODE_NAME=n1 \
		strace -f -qq -e trace=fork,vfork,clone,clone3,execve -o "$T/idle.strace" \
		"$NODEINIT" run --interval 1 --recipes "$T/r" --target-pid "$FAKE" --kube-sa-dir "$SA" 2>"$T/idle.log" &
	tracer=$!
	for _ in $(seq 100); do [ "$(cond .status 2>/dev/null)" = True ] && break; sleep 0.1; done
	busy=$(nreq)
	sleep 3.5 # three idle passes
	idle=$(( $(nreq) - busy ))
	kill -TERM $(cat /proc/$tracer/task/$tracer/children) 2>/dev/null
	wait $tracer
	check_eq "idle run: converged" True "$(cond .status)"
	check "idle run: at most one request (a heartbeat) over three idle passes ($idle)" test "$idle" -le 1
	check_eq "idle run: one execve (its own start)" 1 "$(grep -c 'execve(' "$T/idle.strace")"
	# The step watchdog (core/watchdog.h) is a thread made once at start, before the first pass; no
	# process is ever started.
	check_eq "idle run: no fork, and no clone that makes a process" 0 \
		"$(grep -E '(fork|clone3?)\(' "$T/idle.strace" | grep -vc CLONE_THREAD)"
	check_eq "idle run: one thread made (the step watchdog), and only at start" 1 \
		"$(grep -E 'clone3?\(' "$T/idle.strace" | grep -c CLONE_THREAD)"
	# With a short (test-only) heartbeat, the condition is written again while idle.
	before=$(nreq)
	KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$API_PORT NODE_NAME=n1 NODEINIT_KUBE_HEARTBEAT_SECONDS=1 \
		"$NODEINIT" run --interval 1 --recipes "$T/r" --target-pid "$FAKE" --kube-sa-dir "$SA" 2>/dev/null &
	runner=$!
	sleep 3.5
	kill -TERM $runner; wait $runner
	hbs=$(requests | tail -n +$((before + 1)) | jq -r 'select(.path == "/api/v1/nodes/n1/status") | .status' | grep -c 200)
	check "a short heartbeat (test-only variable) writes the unchanged condition again ($hbs writes)" test "$hbs" -ge 2
else
	echo "SKIP - $TEST_NAME: strace missing, idle forks not counted"
fi

# --- The target goes away: never Ready for a pass that did not finish ----------------------------
# A converged run whose target then goes: it exits 3, and the condition stops saying True (a
# heartbeat of the earlier True would claim a node nobody keeps converged).
api_start
in_fake rm -rf /var/lib/nodeinit
kn_bg run --interval 1 --recipes "$T/r" > "$T/gone1.log" 2>&1 &
runner=$!
for _ in $(seq 100); do [ "$(cond .status 2>/dev/null)" = True ] && break; sleep 0.1; done
check_eq "target gone: the run had converged" True "$(cond .status)"
fakehost_kill "$FAKE"
wait $runner
check_eq "target gone after converging: run exits 3" 3 $?
check_eq "target gone after converging: the condition is no longer True" "False TargetGone" "$(cond '"\(.status) \(.reason)"')"

# Gone during a step of the first pass: exit 3, the startup taint stays, the condition is not True.
fakehost_start
api_start
mkdir -p "$T/rslow"
printf 'recipe "slow" { step "s" { function() exec.run { "sh", "-c", "touch /tmp/slow-started; exec sleep 30" } end } }\n' \
	> "$T/rslow/10-slow.lua"
kn_bg run --interval 1 --recipes "$T/rslow" --startup-taint "$TAINT" > "$T/gone2.log" 2>&1 &
runner=$!
for _ in $(seq 100); do in_fake test -e /tmp/slow-started && break; sleep 0.1; done
check "target gone mid-step: the step's command started" in_fake test -e /tmp/slow-started
fakehost_kill "$FAKE"
wait $runner
check_eq "target gone mid-step: run exits 3" 3 $?
check_eq "target gone mid-step: the condition says so" "False TargetGone" "$(cond '"\(.status) \(.reason)"')"
check_eq "target gone mid-step: the startup taints stay" 3 "$(jq '.spec.taints | length' "$API/node.json")"
check "target gone mid-step: no Converged event" sh -c "! jq -r '.[].reason' '$API/events.json' 2>/dev/null | grep -q Converged"

# Gone while a failed step waits for its back-off, and while the pass waited for the lock (another
# instance held it): the pass finds nothing due (no Lua: the cache answers), and says why it stops.
fakehost_start
api_start
in_fake rm -rf /var/lib/nodeinit
NODEINIT_LOG_LEVEL=debug kn_bg run --recipes "$T/rfail" > "$T/gone3.log" 2>&1 &
runner=$!
for _ in $(seq 100); do [ "$(cond .reason 2>/dev/null)" = StepFailed ] && break; sleep 0.1; done
lock=/proc/$FAKE/root/var/lib/nodeinit/lock
( exec 9<>"$lock" && flock -x 9 && exec sleep 120 ) &
holder=$!
for _ in $(seq 100); do flock -n "$lock" true 2>/dev/null || break; sleep 0.1; done
: > "$T/rfail/notes.txt" # an inotify event: the run reloads (from the cache) and starts a pass
held=no
for _ in $(seq 100); do
	for f in /proc/$runner/fd/*; do [ "$(readlink "$f" 2>/dev/null)" = /var/lib/nodeinit/lock ] && held=yes; done
	[ $held = yes ] && break
	sleep 0.1
done
check_eq "back-off: the run's pass waits for the lock another instance holds" yes $held
fakehost_kill "$FAKE"
kill $holder; wait $holder 2>/dev/null
wait $runner
check_eq "gone while a step is in back-off: run exits 3" 3 $?
check_eq "gone while a step is in back-off: the reload came from the cache (no Lua)" 1 \
	"$(grep -c 'recipes from the fingerprint cache' "$T/gone3.log")"
check_contains "gone while a step is in back-off: it says so" "the target process is gone; stopping" "$(cat "$T/gone3.log")"
check_eq "gone while a step is in back-off: the condition says so" "False TargetGone" "$(cond '"\(.status) \(.reason)"')"
rm -f "$T/rfail/notes.txt"
fakehost_start

# --- The stand-in is strict where kube-apiserver is ---------------------------------------------
api_start --deny get:nodes
c() { curl -s -o "$T/curl.out" -w '%{http_code}' --cacert "$T/pki/good.ca.crt" --resolve "kubernetes.default.svc:$API_PORT:127.0.0.1" \
	-H "Authorization: Bearer $(cat "$API/token")" "$@"; }
U=https://kubernetes.default.svc:$API_PORT
check_eq "stand-in: a failed JSON patch test answers 422" 422 \
	"$(c -X PATCH -H 'Content-Type: application/json-patch+json' -d '[{"op":"test","path":"/spec/taints","value":[]}]' "$U/api/v1/nodes/n1")"
check_eq "stand-in: errors are Status objects" "Status Invalid 422" "$(jq -r '"\(.kind) \(.reason) \(.code)"' "$T/curl.out")"
check_eq "stand-in: a stale resourceVersion answers 409" 409 \
	"$(c -X PATCH -H 'Content-Type: application/merge-patch+json' -d '{"metadata":{"resourceVersion":"0"},"metadata2":1}' "$U/api/v1/nodes/n1")"
check_eq "stand-in: a denied verb answers 403" 403 "$(c "$U/api/v1/nodes/n1")"
check_eq "stand-in: a wrong token answers 401" 401 \
	"$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/pki/good.ca.crt" --resolve "kubernetes.default.svc:$API_PORT:127.0.0.1" \
		-H 'Authorization: Bearer nope' -X PATCH "$U/api/v1/nodes/n1/status")"
check_eq "stand-in: a strategic patch replaces spec.taints whole" '[{"key":"x","effect":"NoSchedule"}]' \
	"$(c -X PATCH -H 'Content-Type: application/strategic-merge-patch+json' -d '{"spec":{"taints":[{"key":"x","effect":"NoSchedule"}]}}' \
		"$U/api/v1/nodes/n1" >/dev/null; jq -c .spec.taints "$API/node.json")"
check_eq "stand-in: core/v1 events are created" 201 \
	"$(c -X POST -H 'Content-Type: application/json' -d '{"metadata":{"name":"e1"},"involvedObject":{"kind":"Node","name":"n1"},"reason":"R","type":"Normal"}' \
		"$U/api/v1/namespaces/nodeinit/events")"
check_eq "stand-in: an events.k8s.io/v1 event without eventTime is invalid" 422 \
	"$(c -X POST -H 'Content-Type: application/json' -d '{"metadata":{"name":"e2"},"reason":"R","type":"Normal"}' \
		"$U/apis/events.k8s.io/v1/namespaces/nodeinit/events")"
api_stop

# --- examples/kustomization.yaml: hash-suffixed recipes, rolling update, RBAC, probe, policy ------
if command -v kubectl >/dev/null && /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
	rm -rf "$T/ex" && cp -r examples "$T/ex"
	kubectl kustomize "$T/ex" > "$T/k1.yaml" 2>"$T/k.err"
	check_eq "kubectl kustomize examples/ works" 0 $?
	printf '\n-- edited\n' >> "$T/ex/recipes/10-network.lua"
	kubectl kustomize "$T/ex" > "$T/k2.yaml" 2>>"$T/k.err"
	# The Python checks print ok/FAIL lines like check(); they are counted here too, so this script's
	# own summary line agrees with the runner's count.
	/usr/bin/python3 - "$T/k1.yaml" "$T/k2.yaml" > "$T/kustomize.out" 2>&1 <<'PYEOF'
import sys, yaml
def ok(what, cond, detail=""):
    print(("ok - kube: " if cond else "FAIL - kube: ") + "kustomize: " + what + ("" if cond else f" ({detail})"))
def load(p):
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(open(p)) if d}
one, two = load(sys.argv[1]), load(sys.argv[2])
cms = [n for k, n in one if k == "ConfigMap"]
ok("one generated ConfigMap, hash-suffixed", len(cms) == 1 and cms[0].startswith("nodeinit-recipes-"), cms)
ds = one.get(("DaemonSet", "nodeinit"), {})
spec = ds.get("spec", {})
pod = spec.get("template", {}).get("spec", {})
vols = [v.get("configMap", {}).get("name") for v in pod.get("volumes", [])]
ok("the DaemonSet mounts the generated ConfigMap", cms and cms[0] in vols, vols)
cms2 = [n for k, n in two if k == "ConfigMap"]
ok("editing a recipe changes the ConfigMap's name", cms2 and cms2 != cms, (cms, cms2))
ok("RollingUpdate with maxUnavailable", spec.get("updateStrategy", {}).get("type") == "RollingUpdate"
   and spec["updateStrategy"].get("rollingUpdate", {}).get("maxUnavailable"))
ok("minReadySeconds", (spec.get("minReadySeconds") or 0) > 0)
c = (pod.get("containers") or [{}])[0]
env = {e["name"]: e for e in c.get("env", [])}
ok("NODE_NAME from spec.nodeName",
   env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName")
ok("readiness probe is status --ready",
   c.get("readinessProbe", {}).get("exec", {}).get("command") == ["/nodeinit", "status", "--ready"])
ok("runs as the nodeinit ServiceAccount", pod.get("serviceAccountName") == "nodeinit"
   and ("ServiceAccount", "nodeinit") in one)
role = one.get(("ClusterRole", "nodeinit"), {})
rules = sorted((g, r, v) for rule in role.get("rules", []) for g in rule["apiGroups"]
               for r in rule["resources"] for v in rule["verbs"])
want = sorted([("", "nodes", "get"), ("", "nodes", "patch"), ("", "nodes/status", "patch"),
               ("events.k8s.io", "events", "create"), ("events.k8s.io", "events", "patch")])
ok("ClusterRole: exactly nodes get/patch, nodes/status patch, events create/patch", rules == want, rules)
b = one.get(("ClusterRoleBinding", "nodeinit"), {})
ok("ClusterRoleBinding to the ServiceAccount", b.get("roleRef", {}).get("name") == "nodeinit"
   and b.get("subjects", [{}])[0].get("name") == "nodeinit"
   and b["subjects"][0].get("namespace") == ds["metadata"]["namespace"])
pol = one.get(("ValidatingAdmissionPolicy", "nodeinit-own-node"), {})
exprs = " ".join(v.get("expression", "") for v in pol.get("spec", {}).get("validations", []))
ok("admission policy limits patches to the token's own node",
   'authentication.kubernetes.io/node-name' in exprs
   and ("ValidatingAdmissionPolicyBinding", "nodeinit-own-node") in one, exprs)
PYEOF
	rc=$?
	cat "$T/kustomize.out"
	PASSED=$((PASSED + $(grep -c '^ok - ' "$T/kustomize.out")))
	FAILED=$((FAILED + $(grep -c '^FAIL - ' "$T/kustomize.out")))
	[ "$rc" = 0 ] || not_ok "kustomize: the Python checks ran to the end (exit $rc)"
else
	echo "SKIP - $TEST_NAME: kubectl or PyYAML missing, examples/kustomization.yaml not checked"
fi

finish
