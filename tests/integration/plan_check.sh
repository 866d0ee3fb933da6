# plan runs Lua step bodies in check mode against a fake host: every primitive that would change
# something says current -> desired and returns what it would have returned, commands are named and
# not run, sensitive values are masked; and afterwards nothing on the fake host has changed.
. "$(dirname "$0")/../lib/common.sh"
require_root

R=$T/recipes
mkdir -p "$R"
fakehost_start
in_fake sh -ec '
	echo 4096 > /proc/sys/net/core/somaxconn
	printf "old\n" > /etc/pc.conf; chmod 0644 /etc/pc.conf
	printf "a = 1\n" > /etc/pc-lines
	printf "bye\n" > /etc/pc-old
	printf "same\n" > /etc/pc-same; chmod 0600 /etc/pc-same
	mkdir -p /etc/pc-dir.d; chmod 0700 /etc/pc-dir.d'

cat > "$R/10-pc.lua" <<'EOF'
recipe "pc" {
  step "sysctl" { function() must(sysctl.set("net.core.somaxconn", "4097")) end },
  step "write" { function() must(file.write("/etc/pc.conf", "new\n", { mode = "0600" })) end },
  step "line" { function() must(file.ensure_line("/etc/pc-lines", "b = 2")) end },
  step "mkdir" { function() must(file.mkdir("/etc/pc.d/sub", { parents = true, mode = "0750" })) end },
  step "remove" { function() must(file.remove("/etc/pc-old")) end },
  step "cmd" { function()
    local r = exec.run { "sh", "-c", "touch /tmp/ran-by-plan" }
    local out, r2 = exec.ok { "touch", "/tmp/ran-by-plan-ok" }
    log.info("exec in plan", { not_run = tostring(r.not_run), code = tostring(r.code), out = out, ok_not_run = tostring(r2.not_run) })
    must(file.write("/etc/pc-after", "x\n"))
  end },
  -- what each primitive returns in check mode: changed, computed from the current state
  step "returns" { function()
    log.info("returns", {
      sysctl_same = tostring(sysctl.set("net.core.somaxconn", 4096)),
      sysctl_diff = tostring(sysctl.set("net.core.somaxconn", 4100)),
      write_same = tostring(file.write("/etc/pc-same", "same\n", { mode = "0600" })),
      write_mode = tostring(file.write("/etc/pc-same", "same\n", { mode = "0640" })),
      line_same = tostring(file.ensure_line("/etc/pc-lines", "a = 1")),
      mkdir_same = tostring(file.mkdir("/etc/pc-dir.d")),
      mkdir_mode = tostring(file.mkdir("/etc/pc-dir.d", { mode = "0755" })),
      remove_absent = tostring(file.remove("/etc/pc-never")),
      missing_key = tostring(select(2, sysctl.set("net.core.no_such_key", 1))),
    })
  end },
  step "secret" { sensitive = true, function()
    must(sysctl.set("kernel.domainname", "hunter2-plan-secret"))
    exec.run { "sh", "-c", "echo hunter2-plan-secret > /tmp/ran-by-plan-secret" }
  end },
  step "kept" { check = function() return file.exists("/etc/pc.conf") end, function() error("not reached") end },
  step "fails" { function() must(file.write("/no-such-dir/x", "y")) end },
}
EOF
fp() { in_fake sh -c 'cat /proc/sys/net/core/somaxconn /proc/sys/kernel/domainname; ls -la --time-style=+%s.%N /etc /tmp; cat /etc/pc.conf /etc/pc-lines /etc/pc-old; stat -c "%a %Y" /etc/pc-same /etc/pc-dir.d' | md5sum; }
before=$(fp)
plan=$(nodeinit plan --target-pid "$FAKE" --recipes "$R" 2>"$T/plan.err")
check_eq "plan exits 0" 0 $?
printf '%s\n' "$plan" > "$T/plan.out"
want_lines() {
	local what=$1 want=$2
	check_contains "plan shows $what" "$want" "$plan"
}
want_lines "a sysctl's current -> desired" $'pc/sysctl run new\n    sysctl net.core.somaxconn: 4096 -> 4097'
want_lines "a file write's current -> desired (content and mode)" $'pc/write run new\n    file /etc/pc.conf: differs, mode 0644 -> 4 bytes mode 0600'
want_lines "an ensure_line" $'pc/line run new\n    file /etc/pc-lines: line "b = 2": absent -> present'
want_lines "a mkdir with parents" $'pc/mkdir run new\n    dir /etc/pc.d/sub: absent -> directory mode 0750 (and its missing parents)'
want_lines "a remove" $'pc/remove run new\n    file /etc/pc-old: regular file -> absent'
want_lines "the command, not run, and that later lines depend on it" $'pc/cmd run new\n    exec: sh -c \'touch /tmp/ran-by-plan\' (not run in plan)\n    exec: touch /tmp/ran-by-plan-ok (not run in plan)\n    (after exec: the lines below depend on what the command does)\n    file /etc/pc-after: absent -> 2 bytes'
want_lines "a sensitive step's values masked" $'pc/secret run new\n    sysctl kernel.domainname: (sensitive) -> (sensitive)\n    exec: sh (arguments hidden: sensitive step) (not run in plan)'
want_lines "a step whose check passes would be kept" $'pc/kept run new\n    check: already in the desired state (would be recorded kept; the body does not run)'
want_lines "a step that would fail says so" $'pc/fails run new\n    (would fail: '
check_eq "the secret is not in the plan output" 0 "$(grep -c hunter2 "$T/plan.out" "$T/plan.err" | awk -F: '{s += $2} END {print s}')"
log=$(cat "$T/plan.err")
check_contains "exec.run in plan returns a result that says it did not run" 'code=0 not_run=true ok_not_run=true out=""' "$log"
want_lines "what each unchanged or changed call reports" $'pc/returns run new
    sysctl net.core.somaxconn: 4096 -> 4096 (same)
    sysctl net.core.somaxconn: 4096 -> 4100
    file /etc/pc-same: same content -> 5 bytes mode 0600 (same)
    file /etc/pc-same: same content, mode 0600 -> 5 bytes mode 0640
    file /etc/pc-lines: line "a = 1": present -> present (same)
    dir /etc/pc-dir.d: directory -> directory (same)
    dir /etc/pc-dir.d: directory, mode 0700 -> directory mode 0755
    file /etc/pc-never: absent -> absent (same)'
for kv in sysctl_same=false sysctl_diff=true write_same=false write_mode=true line_same=false mkdir_same=false \
	mkdir_mode=true remove_absent=false 'missing_key="net.core.no_such_key: No such file or directory"'; do
	check_contains "check mode returns what the call would have: $kv" " $kv" "$(grep ' returns step=pc/returns' "$T/plan.err")"
done

check_eq "plan changed nothing on the fake host (sysctls, /etc, /tmp)" "$before" "$(fp)"
check "no command ran: its file is absent" in_fake test ! -e /tmp/ran-by-plan
check "no command ran: exec.ok's file is absent" in_fake test ! -e /tmp/ran-by-plan-ok
check "no command ran: the sensitive step's file is absent" in_fake test ! -e /tmp/ran-by-plan-secret
check_eq "the sysctl keeps its value" 4096 "$(in_fake cat /proc/sys/net/core/somaxconn)"
check_eq "the written file keeps its content" old "$(in_fake cat /etc/pc.conf)"
check "the removed file is still there" in_fake test -e /etc/pc-old
check "the directory was not made" in_fake test ! -e /etc/pc.d
check "plan made no state dir" in_fake test ! -e /var/lib/nodeinit

# YAML steps keep their describe lines; a YAML exec step names its command and runs nothing.
rm -f "$R"/*
cat > "$R/20-y.yaml" <<'EOF'
recipe: y
steps:
  - { name: s, sysctl: { net.core.somaxconn: 4098 } }
  - { name: f, file: { path: /etc/pc.conf, content: "yaml\n", mode: "0644" } }
  - { name: e, exec: [sh, -c, "touch /tmp/ran-by-plan-yaml"] }
  - { name: l, lua: 'must(file.write("/etc/pc-yaml-lua", "z"))' }
EOF
plan=$(nodeinit plan --target-pid "$FAKE" --recipes "$R" 2>&1)
check_contains "YAML sysctl: describe line as before" $'y/s run new\n    sysctl net.core.somaxconn: 4096 -> 4098' "$plan"
check_contains "YAML file: describe line as before" $'y/f run new\n    file /etc/pc.conf: differs -> 5 bytes mode 0644' "$plan"
check_contains "YAML exec: the command is named" $'y/e run new\n    exec: sh -c \'touch /tmp/ran-by-plan-yaml\' (not run in plan)' "$plan"
check_contains "YAML lua: its effects in check mode" $'y/l run new\n    file /etc/pc-yaml-lua: absent -> 1 bytes' "$plan"
check "YAML exec did not run in plan" in_fake test ! -e /tmp/ran-by-plan-yaml
check "YAML lua did not write in plan" in_fake test ! -e /etc/pc-yaml-lua

# After apply, plan of an always step shows "(same)": check mode reads the state apply left.
rm -f "$R"/*
echo 'recipe "again" { step "s" { when = "always", function() must(sysctl.set("net.core.somaxconn", "4099")) end } }' > "$R/30-again.lua"
nodeinit apply --target-pid "$FAKE" --recipes "$R" >/dev/null 2>&1
check_eq "apply set the sysctl" 4099 "$(in_fake cat /proc/sys/net/core/somaxconn)"
check_contains "plan after apply: the change is already there" $'again/s run always\n    sysctl net.core.somaxconn: 4099 -> 4099 (same)' \
	"$(nodeinit plan --target-pid "$FAKE" --recipes "$R" 2>&1)"

finish
