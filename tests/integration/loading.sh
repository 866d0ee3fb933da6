# Loading recipes (issue 16): an edit to a global helper a step calls re-runs that step (and only
# that); fingerprint material is bounded with an error naming the step; only regular files load and
# a FIFO never blocks the load; steps cannot be forged; names read from a tampered state record are
# escaped in status and plan.
. "$(dirname "$0")/../lib/common.sh"
require_root

R=$T/recipes
mkdir -p "$R"
# Bounded, SIGKILL after: a load that blocks with SIGTERM masked fails the test (124 or 137), never hangs it.
ni() { local cmd=$1; shift; timeout -k 5 20 "$NODEINIT" "$cmd" --target-pid "$FAKE" --recipes "$R" "$@"; }
lint() { timeout -k 5 20 "$NODEINIT" lint --recipes "$1" 2>&1; }
fakehost_start

# 1. Global helpers. greeting() is declared after the recipe (a step runs later, so that works) and
# is reached only through motd_text(): both count. unrelated is a global the step never names.
write_motd() {
	cat > "$R/10-motd.lua" <<EOF
unrelated = "$3"
function motd_text() return greeting() .. "\n" end
recipe "motd" {
  step "write" { function() file.write("/etc/motd", motd_text()) end },
  step "other" { function() file.write("/etc/other", "same\n") end },
}
function greeting() return "$1 $2" end
EOF
}
plan() { ni plan 2>&1 | grep -v '^    '; }
write_motd hello world u1
ni apply >/dev/null 2>&1
check_eq "global helper: first apply wrote /etc/motd" "hello world" "$(in_fake cat /etc/motd)"
check_eq "global helper: plan after apply is all done" "motd/write skip done
motd/other skip done" "$(plan)"
write_motd hello world u2
check_eq "an unrelated global edited: nothing re-runs" "motd/write skip done
motd/other skip done" "$(plan)"
write_motd goodbye world u2
check_eq "the global the step's global helper calls edited: that step re-runs, the other does not" "motd/write run changed
motd/other skip done" "$(plan)"
ni apply >/dev/null 2>&1
check_eq "global helper: apply rewrote /etc/motd" "goodbye world" "$(in_fake cat /etc/motd)"
sed -i 's/return greeting() .. "\\n"/return greeting() .. "!\\n"/' "$R/10-motd.lua"
check_contains "the global helper itself edited: the step re-runs" "motd/write run changed" "$(plan)"
ni apply >/dev/null 2>&1
check_eq "global helper: apply rewrote /etc/motd again" "goodbye world!" "$(in_fake cat /etc/motd)"
# A local helper never counted as a global, and a recipe without globals keeps its fingerprint.
sed -i 's/^unrelated = .*/local unrelated = "u3"/' "$R/10-motd.lua"
check_eq "a global turned local and unused: nothing re-runs" "motd/write skip done
motd/other skip done" "$(plan)"
rm "$R/10-motd.lua"

# 2. Fingerprint material is bounded: one 16 MiB string 24 times in params is 384 MiB of material.
mkdir -p "$T/big"
cat > "$T/big/10-big.lua" <<'EOF'
local s = string.rep("x", 16 * 1024 * 1024)
local params = {}
for i = 1, 24 do params[i] = s end
recipe "big" {
  step "small" { function() end },
  step "huge" { params = params, function(p) end },
}
EOF
out=$(python3 -c '
import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
sys.stdout.write(p.stdout.decode("utf-8", "replace"))
print("RC", p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' \
	$NODEINIT_WRAP "$NODEINIT" lint --recipes "$T/big")
rc=$(echo "$out" | sed -n 's/^RC \([0-9]*\) .*/\1/p')
check_eq "huge material: lint exits 2" 2 "$rc"
check_contains "huge material: the error names file, line and step" \
	"10-big.lua:6: recipe 'big': step 'huge': its fingerprint material" "$out"
check_contains "huge material: ... and the bound" "is larger than 64 MiB" "$out"
if [ -n "$NODEINIT_WRAP" ]; then
	echo "SKIP - $TEST_NAME: memory not measured under $NODEINIT_WRAP"
else
	maxrss=$(echo "$out" | sed -n 's/^RC [0-9]* \([0-9]*\)$/\1/p')
	check "huge material: peak RSS ${maxrss} KiB < 200 MiB" test "$maxrss" -lt $((200 * 1024))
fi

# 3. Only regular files load, and nothing blocks: a FIFO, a directory and a socket named *.lua.
mkdir -p "$R/..2024_01_01/" && printf 'recipe "good" {\n  step "s" { function() file.write("/etc/good", "ok\\n") end },\n}\n' > "$R/..2024_01_01/10-good.lua"
ln -sfn ..2024_01_01 "$R/..data" && ln -sfn ..data/10-good.lua "$R/10-good.lua"
mkfifo "$R/20-fifo.lua"
mkdir "$R/30-dir.lua"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$R/40-sock.lua"
printf 'recipe "bad" { 1 }\n' > "$R/45-bad.lua"
out=$(lint "$R"); rc=$?
check_eq "FIFO in the recipe dir: lint returns (not 124) with 2" 2 "$rc"
check_contains "FIFO: named, refused" "20-fifo.lua:1: not a regular file (a FIFO)" "$out"
check_contains "directory named x.lua: refused" "30-dir.lua:1: not a regular file (a directory)" "$out"
check_contains "socket named x.lua: refused" "40-sock.lua:1: not a regular file (a socket)" "$out"
check "the ConfigMap-style link (10-good.lua -> ..data/10-good.lua) still loads" \
	test -z "$(echo "$out" | grep '10-good.lua')"
check_contains "the files after the FIFO still load (and are checked)" "45-bad.lua:1: recipe 'bad': entry 1 is not a step" "$out"
rm "$R/45-bad.lua"
out=$(ni apply 2>&1); rc=$?
check_eq "FIFO: apply returns (not 124) with 2" 2 "$rc"
check_contains "FIFO: apply names it" "20-fifo.lua:1: not a regular file (a FIFO)" "$out"
check "FIFO: apply, as for any bad input, applied nothing" in_fake test ! -e /etc/good
ln -sfn 20-fifo.lua "$R/50-link.lua"
check_contains "a link to the FIFO: refused as a FIFO too" "50-link.lua:1: not a regular file (a FIFO)" "$(lint "$R")"
rm -rf "$R/20-fifo.lua" "$R/30-dir.lua" "$R/40-sock.lua" "$R/50-link.lua"
ni apply >/dev/null 2>&1
check_eq "the recipe dir cleaned up: apply exits 0" 0 $?
check_eq "... and applied the recipe behind the ..data link" ok "$(in_fake cat /etc/good 2>/dev/null)"

# 4. Steps cannot be forged.
mkdir -p "$T/forge"
cat > "$T/forge/10-copy.lua" <<'EOF'
local real = step "real" { function() end }
local keys = {}
for k in pairs(real) do keys[#keys + 1] = tostring(k) end
assert(#keys == 0, "a step shows its fields: " .. table.concat(keys, ","))
assert(getmetatable(real) == "nodeinit.Step")
local forged = { name = "x\27[2J\rstep done", when = "sometimes", line = 1, kind = "lua",
                 run = function() end, fingerprint = string.rep("0", 64), material = "" }
for k, v in pairs(real) do forged[k] = v end
recipe "copy" { forged }
EOF
out=$(lint "$T/forge")
check_contains "a hand-made step is refused" "recipe 'copy': entry 1 is not a step" "$out"
check "lint prints no raw ESC or CR" test -z "$(printf %s "$out" | tr -d '\n' | tr -dc '\033\r')"
cat > "$T/forge/10-copy.lua" <<'EOF'
local real = step "real" { function() end }
real.when = "sometimes"
recipe "copy" { real }
EOF
check_contains "a real step cannot be changed" "a step cannot be changed once made" "$(lint "$T/forge")"
cat > "$T/forge/10-copy.lua" <<'EOF'
local ok = pcall(setmetatable, step "a" { function() end }, nil)
assert(not ok, "the handle's metatable could be replaced")
recipe "copy" { step "b" { when = "sometimes", function() end } }
EOF
check_contains "when = sometimes is refused" "step 'b': when must be once, boot or always, not 'sometimes'" "$(lint "$T/forge")"
printf 'recipe "copy" { step "a\\27[2Jb" { function() end } }\n' > "$T/forge/10-copy.lua"
out=$(lint "$T/forge")
check_contains "a step name with ESC is refused" "must not contain '/' or control characters" "$out"
check "... and the refusal prints no raw ESC" test -z "$(printf %s "$out" | tr -dc '\033\r')"
printf 'recipe "copy" { step "a\\u{9b}b" { function() end } }\n' > "$T/forge/10-copy.lua"
check_contains "a step name with a C1 control (U+009B) is refused" "must be printable, not hold U+009B" "$(lint "$T/forge")"
printf 'local s = step "a" { function() end }\nrecipe "one" { s }\nrecipe "two" { s }\n' > "$T/forge/10-copy.lua"
check_contains "one step in two recipes is refused" "recipe 'two': step 'a' is already in recipe 'one'" "$(lint "$T/forge")"

# 5. A tampered record (root's, in root's state dir): ESC and CR in a step name and in when.
cat > "$R/10-good.lua" <<'EOF'
recipe "good" { step "s" { function() end } }
EOF
rm -rf "$R/..data" "$R/..2024_01_01"
ni apply >/dev/null 2>&1
st=/proc/$FAKE/root/var/lib/nodeinit/good.state
check "the journal is where this test expects it" test -f "$st"
fp=$(sed -n 's/^decl s when=once fp=\([0-9a-f]*\).*/\1/p' "$st")
check_eq "the journal declares the step" 64 "${#fp}"
printf 'nodeinit-state 1 recipe=good\ndecl evil%%1b[2J%%0dstep%%20done when=%%1b]%%0d%%07 fp=%s\n' "$fp" > "$st"
out=$(ni status 2>&1)
check_contains "status text: the name is escaped" 'evil\x1b[2J\rstep done' "$out"
check_contains "status text: when is escaped" '\x1b]\r\x07' "$out"
check "status text: no raw control byte" test -z "$(printf %s "$out" | tr -d '\n' | tr -dc '\000-\037\177')"
json=$(ni status --json 2>/dev/null)
check "status --json parses, with the name and when as they were" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
s = d["recipes"][0]["steps"][0]
assert s["name"] == "evil\x1b[2J\rstep done", s
assert s["when"] == "\x1b]\r\x07", s' "$json"
check "status --json: no raw control byte" test -z "$(printf %s "$json" | tr -d '\n' | tr -dc '\000-\037\177')"
finish
