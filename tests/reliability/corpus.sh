# The bad-input corpus (tests/corpus/*/): each case's exit code and message, and no done record left
# behind. See tests/corpus/README.md for the format.
. "$(dirname "$0")/lib/fakehost.sh"
require_root
command -v python3 >/dev/null || skip_all "needs python3 to parse status --json"

CORPUS=$PWD/tests/corpus
rel_fakehost_start
MAIN_FAKE=$FAKE
ln -sf "$NODEINIT" "$T/nsenter"
tried=0

# A fake host whose bash is gone: a bind mount of an empty, non-executable file over it.
hide_bash_host() {
	rel_fakehost_start
	in_fake sh -ec ': > /run/no-bash; for b in /bin/bash /usr/bin/bash; do [ -e "$b" ] && mount --bind /run/no-bash "$b"; done; true'
}

run_case() {
	local dir=$1 name work command exit_want args=() envs=() setup= slow= out rc k v files msg
	name=$(basename "$dir")
	work=$T/cases/$name
	rm -rf "$work" && mkdir -p "$work" && cp -a "$dir/." "$work/"
	local messages=() absents=()
	while IFS= read -r line || [ -n "$line" ]; do
		case "$line" in ''|'#'*) continue ;; esac
		k=${line%%=*} v=${line#*=}
		case "$k" in
		command) command=$v ;;
		exit) exit_want=$v ;;
		message) messages+=("$v") ;;
		absent) absents+=("$v") ;;
		args) read -r -a args <<<"$v" ;;
		env) envs+=("$v") ;;
		setup) setup=$v ;;
		slow) slow=$v ;;
		*) not_ok "$name: unknown key '$k' in expect"; return ;;
		esac
	done < "$dir/expect"
	if [ "$slow" = 1 ] && [ -n "$NODEINIT_WRAP" ]; then
		echo "SKIP - $TEST_NAME: $name (slow under $NODEINIT_WRAP)"
		return
	fi
	if [ -x "$work/gen" ]; then
		(cd "$work" && ./gen) || { not_ok "$name: gen failed"; return; }
	fi
	FAKE=$MAIN_FAKE
	[ "$setup" = hide-bash ] && hide_bash_host
	args=("${args[@]//@FAKE@/$FAKE}")
	local state=/var/lib/corpus/$name
	local common=(--target-pid "$FAKE" --recipes "$work" --state-dir "$state")
	case "$command" in
	lint) set -- lint --recipes "$work" "${args[@]}" ;;
	apply | plan) set -- "$command" "${common[@]}" "${args[@]}" ;;
	legacy) set -- apply --target-pid "$FAKE" --recipes "$work/none" --state-dir "$state" "${args[@]}"
		envs+=("STARTUP_SCRIPT=$(cat "$work/script")") ;;
	cli | nsenter) set -- "${args[@]}" ;;
	*) not_ok "$name: unknown command '$command'"; return ;;
	esac
	tried=$((tried + 1))
	if [ "$command" = nsenter ]; then
		out=$(env "${envs[@]}" timeout 60 $NODEINIT_WRAP "$T/nsenter" "$@" 2>&1 </dev/null)
	else
		out=$(env "${envs[@]}" timeout 60 $NODEINIT_WRAP "$NODEINIT" "$@" 2>&1 </dev/null)
	fi
	rc=$?
	printf '%s\n' "$out" > "$T/cases/$name.out"
	local bad=
	[ "$rc" = "$exit_want" ] || bad="exit $rc, want $exit_want"
	for msg in "${messages[@]}"; do
		case "$out" in *"$msg"*) ;; *) bad="${bad:+$bad; }no '$msg'" ;; esac
	done
	for msg in "${absents[@]}"; do
		case "$out" in *"$msg"*) bad="${bad:+$bad; }has '$msg'" ;; esac
	done
	# A recipe case's message names the file, the line or the step.
	if [ "$command" = lint ] || [ "$command" = apply ] || [ "$command" = plan ]; then
		files=$(cd "$work" && ls *.lua *.yaml *.yml 2>/dev/null | tr '\n' '|')
		local named=
		for msg in "${messages[@]}"; do
			# "step" as in "step failed ... step=a", a line as in "file:3:", or plan's "recipe/step run|skip"
			case "$msg" in *step*|*":"[0-9]*|*/*" run "*|*/*" skip "*) named=1 ;; esac
			local f
			for f in ${files//|/ }; do case "$msg" in *"$f"*) named=1 ;; esac; done
		done
		[ -n "$named" ] || bad="${bad:+$bad; }no message= names the file, line or step"
	fi
	# No done record: status --json is checked for all cases at once at the end (one python3 start).
	if [ "$command" != cli ] && [ "$command" != nsenter ]; then
		nodeinit status --json --target-pid "$FAKE" --state-dir "$state" > "$T/status/$name" 2>&1
	fi
	if [ "$setup" = hide-bash ]; then
		rel_kill_fake "$FAKE"
		FAKE=$MAIN_FAKE
	fi
	printf '%s\n' "$bad" > "$T/verdict/$name"
	printf '%s' "$out" | tail -c 400 > "$T/verdict/$name.tail"
}

mkdir -p "$T/status" "$T/verdict"
for d in "$CORPUS"/*/; do
	[ -f "$d/expect" ] && run_case "${d%/}"
done
# Every status must parse as JSON and show no step ok or kept.
python3 - "$T/status" > "$T/status.bad" <<'PY'
import json, os, sys
for name in sorted(os.listdir(sys.argv[1])):
    text = open(os.path.join(sys.argv[1], name), errors="replace").read()
    try:
        d = json.loads(text)
        done = [(r["name"], s["name"], s["result"]) for r in d["recipes"] for s in r["steps"] if s["result"] in ("ok", "kept")]
        if done:
            print(name, "done records:", done)
    except (ValueError, KeyError, TypeError) as e:
        print(name, "status --json does not parse (%s): %s" % (e, text[:200].replace("\n", " ")))
PY
for v in "$T"/verdict/*; do
	case "$v" in *.tail) continue ;; esac
	name=$(basename "$v")
	bad=$(cat "$v")
	sb=$(grep "^$name " "$T/status.bad" | cut -d' ' -f2-)
	[ -n "$sb" ] && bad="${bad:+$bad; }$sb"
	if [ -z "$bad" ]; then ok "$name"; else not_ok "$name: $bad: $(cat "$v.tail")"; fi
done
echo "# corpus: $tried bad inputs tried"
[ "$tried" -ge 60 ] && ok "at least 60 bad inputs ($tried)" || not_ok "only $tried bad inputs (want at least 60)"
finish
