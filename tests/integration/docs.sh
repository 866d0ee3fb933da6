# The docs stay true: the README's recipe examples lint, and the README and --help name the same
# commands, options, environment variables and exit codes, the README's Modules table the same
# functions as lua/meta/*.lua, and every make target the README names exists.
# DOCS_README names another README to check (to show a check failing on a broken one).
. "$(dirname "$0")/../lib/common.sh"
README=${DOCS_README:-README.md}

mkdir -p "$T/readme"
awk '/^```lua$/{f=1;next}/^```$/{f=0}f' "$README" > "$T/readme/10-readme.lua"
awk '/^```yaml$/{f=1;next}/^```$/{if(f)exit;f=0}f' "$README" > "$T/readme/20-readme.yaml"
check "README has a Lua recipe example" grep -q 'recipe "' "$T/readme/10-readme.lua"
check "README has a YAML recipe example" grep -q '^recipe:' "$T/readme/20-readme.yaml"
out=$(nodeinit lint --recipes "$T/readme" 2>&1)
check_eq "README's recipe examples lint clean" 0 $?
check_contains "README's examples: both recipes seen" "2 recipes" "$out"

# section TITLE: the README's "## TITLE" section, up to the next "## " heading.
section() { awk -v t="## $1" '$0 == t { f = 1; next } f && /^## / { exit } f' "$README"; }
words() { printf '%s\n' "$@" | sort -u; }
# same_set WHAT FROM_A A FROM_B B: checks that the sorted word lists A and B are equal, naming the
# words only one side has.
same_set() {
	local what=$1 na=$2 a=$3 nb=$4 b=$5 only_a only_b
	only_a=$(comm -23 <(words $a) <(words $b) | tr '\n' ' ')
	only_b=$(comm -13 <(words $a) <(words $b) | tr '\n' ' ')
	if [ -z "$a" ] || [ -z "$b" ]; then
		not_ok "$what: nothing found ($na: '$a'; $nb: '$b')"
	elif [ -n "$only_a$only_b" ]; then
		not_ok "$what: only in $na: '$only_a'; only in $nb: '$only_b'"
	else
		ok "$what: $(words $a | tr '\n' ' ')"
	fi
}

help=$(nodeinit --help)
cmdline=$(section "Command line")
# --help's blocks: the lines after "Commands:", "Options ..." and "Exit codes:" up to a blank line.
help_block() { printf '%s\n' "$help" | awk -v h="$1" 'index($0, h) == 1 { f = 1; next } f && /^$/ { exit } f'; }

same_set "commands: --help and README's Command line" \
	--help "$(help_block Commands: | awk '{ print $1 }')" \
	README "$(printf '%s\n' "$cmdline" | sed -n 's/^nodeinit \(\[options\] \)\{0,1\}\([a-z]*\).*/\2/p')"
same_set "options: --help and README's Command line" \
	--help "$(help_block Options | grep -o -- '--[a-z][a-z-]*')" \
	README "$(printf '%s\n' "$cmdline" | grep -o -- '--[a-z][a-z-]*')"
same_set "environment twins: --help and README's Command line" \
	--help "$(help_block Options | grep -o 'NODEINIT_[A-Z_]*')" \
	README "$(printf '%s\n' "$cmdline" | grep -o 'NODEINIT_[A-Z_]*')"
for v in STARTUP_SCRIPT CHECKPOINT_PATH; do
	check_contains "--help names $v" "$v" "$help"
	check_contains "README's Command line names $v" "$v" "$cmdline"
done
same_set "exit codes: --help and README's table" \
	--help "$(help_block 'Exit codes:' | awk '$1 ~ /^[0-9]+$/ { print $1 }')" \
	README "$(printf '%s\n' "$cmdline" | sed -n 's/^| \([0-9][0-9]*\) |.*/\1/p')"
# The meaning agrees too: --help's first words of each code are in the README's row.
while read -r code words; do
	row=$(printf '%s\n' "$cmdline" | grep "^| $code |")
	check_contains "exit code $code: README's row says what --help says" "$(printf %s "$words" | cut -d' ' -f1-3 | sed 's/ (.*//')" "$row"
done < <(help_block 'Exit codes:' | awk '$1 ~ /^[0-9]+$/')

# The Modules table: the functions in its first column, log.debug/info/... spelt out.
table_fns=$(section Modules | grep '^| `' | cut -d'|' -f2 | grep -o '[a-z_]*\(\.[a-z_/]*\)\{0,1\}[({]' | tr -d '({' |
	awk -F. 'NF == 1 { print; next } { n = split($2, v, "/"); for (i = 1; i <= n; i++) print $1 "." v[i] }')
meta_fns=$(sed -n 's/^function \([a-z_.]*\)(.*/\1/p' lua/meta/*.lua | grep -v -x -e recipe -e step)
same_set "functions: lua/meta/*.lua and README's Modules table" meta "$meta_fns" README "$table_fns"
for f in recipe step; do check "README's Writing recipes shows $f" grep -q "$f \"" <(section "Writing recipes"); done

# Every make target the README names exists: `make X`, (make X, Y) and the Layout's "make a | b".
named=$( { grep -o '[`(]make [a-z][a-z0-9-]*\(, [a-z][a-z0-9-]*\)*' "$README" | sed 's/^.make //; s/, / /g'
	section Layout | sed -n 's/^Makefile .*make \(.*\)/\1/p' | tr '|' ' '; } | tr ' ' '\n' | grep . | sort -u)
targets=$(make -qp -f Makefile 2>/dev/null | sed -n 's/^\([a-z][a-z0-9-]*\):.*/\1/p' | sort -u)
missing=$(comm -23 <(words $named) <(words $targets) | tr '\n' ' ')
check_eq "every make target the README names exists ($(echo $named))" "" "$missing"
check "the README names make targets" test -n "$named"

finish
