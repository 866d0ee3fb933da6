# Logs cannot be forged: command output, print() and values are escaped, one log line per line;
# --log-format json lines always parse, invalid UTF-8 included; a huge value keeps memory bounded.
. "$(dirname "$0")/../lib/common.sh"
require_root

fakehost_start
R=$T/recipes
mkdir -p "$R"

# A host user's file name holding ESC, CR, BEL, a newline and a fake "step done" line after it.
forged='2001-01-01T00:00:00.000Z info  step done recipe=r step=forged result=ok'
in_fake setpriv --reuid 65534 --regid 65534 --clear-groups \
	sh -c 'touch "/tmp/$(printf "evil\033[2J\r\a\n%s" "$1")"' sh "$forged"
check "the planted name exists in the fake host's /tmp" in_fake sh -c 'ls /tmp | grep -q "^2001-01-01"'

cat > "$R/10-r.lua" <<'EOF'
recipe "r" {
  step "list" { function() exec.ok { "ls", "/tmp" } end },
  step "print" { function() print("a\nb") end },
  step "bytes" { function() exec.ok { "sh", "-c", "printf 'bad \\377\\376 utf8 \\033[31m red \\0 nul\\r\\n'" } end },
  step "value" { function() log.info("with a value", { v = "x\27]0;title\7\ny", w = 'say "hi"' }) end },
  step "nul" { function() log.warn("before\0after\r\n") end },
}
EOF

# Every byte of a log is printable or a newline, and every line is one of ours (time, level).
no_raw_controls() { [ "$(tr -d '\n' < "$1" | LC_ALL=C tr -dc '\000-\037\177' | wc -c)" = 0 ]; }
all_ours() { ! grep -vqE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z (debug|info |warn |error) ' "$1"; }

nodeinit apply --target-pid "$FAKE" --recipes "$R" --state-dir /var/lib/logs-text 2>"$T/text.log"
check_eq "text: apply exits 0" 0 $?
check "text: no raw control byte in the log" no_raw_controls "$T/text.log"
check "text: every line starts with a time and a level" all_ours "$T/text.log"
check "text: no line starts with the forged time" test "$(grep -c '^2001-01-01' "$T/text.log")" = 0
check "text: no 'step done' line for the forged step" \
	test "$(grep -cE '^[^ ]+Z info  step done recipe=r step=forged' "$T/text.log")" = 0
log=$(cat "$T/text.log")
check_contains "text: the name's control bytes shown escaped" 'evil\x1b[2J\r\x07 step=r/list cmd=ls stream=stdout' "$log"
check_contains "text: the fake line is the message of an ls output line" \
	"Z info  $forged step=r/list cmd=ls stream=stdout" "$log"
check_eq "text: print(\"a\\nb\") gives two lines" 2 "$(grep -cE 'Z info  (a|b) step=r/print$' "$T/text.log")"
check_contains "text: invalid UTF-8, ESC, NUL and CR escaped" 'bad \xff\xfe utf8 \x1b[31m red \x00 nul\r step=r/bytes' "$log"
check_contains "text: values with controls or quotes are quoted and escaped" \
	'with a value step=r/value v="x\x1b]0;title\x07\ny" w="say \"hi\""' "$log"
check_contains "text: log.warn keeps what follows a NUL, escaped" 'warn  before\x00after\r\n step=r/nul' "$log"

nodeinit apply --log-format json --target-pid "$FAKE" --recipes "$R" --state-dir /var/lib/logs-json 2>"$T/json.log"
check_eq "json: apply exits 0" 0 $?
check "json: every line parses as JSON (strict UTF-8)" python3 -c '
import json, sys
lines = [json.loads(l.decode("utf-8")) for l in sys.stdin.buffer]
assert len(lines) > 5' < "$T/json.log"
check "json: no raw control byte in the log" no_raw_controls "$T/json.log"
msgs=$(python3 -c '
import json, sys
for l in sys.stdin.buffer:
    print(ascii(json.loads(l.decode("utf-8"))["msg"]))' < "$T/json.log")
check_contains "json: invalid UTF-8 became U+FFFD, ESC and NUL kept as escapes" \
	"'bad \ufffd\ufffd utf8 \x1b[31m red \x00 nul\r'" "$msgs"
check_contains "json: the file name is one message, newline split by ls" "'evil\x1b[2J\r\x07'" "$msgs"

# A 24 MiB value of control bytes: JSON escaping would make it 144 MiB; the line keeps 16 KiB of it.
cat > "$R/20-big.lua" <<'EOF'
recipe "big" {
  step "huge" { function() log.info("huge value", { v = string.rep("\1", 24 * 1024 * 1024) }) end },
}
EOF
rm "$R/10-r.lua"
if [ -n "$NODEINIT_WRAP" ]; then
	echo "SKIP - $TEST_NAME: memory not measured under $NODEINIT_WRAP"
	nodeinit apply --log-format json --target-pid "$FAKE" --recipes "$R" --state-dir /var/lib/logs-big 2>"$T/big.log"
else
	# Peak RSS of nodeinit as its parent sees it (ru_maxrss of the waited child, in KiB).
	maxrss=$(python3 -c '
import resource, subprocess, sys
with open(sys.argv[1], "wb") as err:
    rc = subprocess.run(sys.argv[2:], stderr=err).returncode
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' \
		"$T/big.log" "$NODEINIT" apply --log-format json --target-pid "$FAKE" --recipes "$R" --state-dir /var/lib/logs-big)
	check_eq "huge value: apply exits 0" 0 "${maxrss%% *}"
	# The Lua string itself and string.rep's buffer are 48 MiB; a copy escaped six-fold is not.
	check "huge value: peak RSS ${maxrss##* } KiB < 3 x 24 MiB" test "${maxrss##* }" -lt $((3 * 24 * 1024))
fi
check "huge value: the line parses as JSON" python3 -c '
import json, sys
[json.loads(l.decode("utf-8")) for l in sys.stdin.buffer]' < "$T/big.log"
check_contains "huge value: the line says how much was dropped" \
	"...[$((24 * 1024 * 1024 - 16 * 1024)) bytes dropped]" "$(cat "$T/big.log")"
check "huge value: the logged line is bounded (< 128 KiB)" test "$(grep 'huge value' "$T/big.log" | wc -c)" -lt 131072

finish
