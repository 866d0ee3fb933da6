#!/usr/bin/env bash
# Checks examples/ without a cluster: every YAML file parses, every Lua recipe compiles, the
# ConfigMap holds exactly examples/recipes/, the DaemonSet has what a nodeinit pod needs, and the
# migration pair differs in the image only. Run by `make image-test`; needs no docker.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/docker.sh"
cd "$IMG_ROOT" || exit 1

# Debian's python3 with PyYAML and Lua's compiler (syntax only): no network downloads.
img_apt python3-yaml lua5.4 >/dev/null || skip_all "python3-yaml and lua5.4 are missing"

for f in examples/recipes/*.lua; do
	check "$f compiles (luac5.4 -p)" luac5.4 -p "$f"
done

out=$(/usr/bin/python3 - "$T" <<'EOF'
import glob, os, subprocess, sys, yaml

def ok(what, cond, detail=""):
    print(("ok - examples: " if cond else "FAIL - examples: ") + what + ("" if cond else f" ({detail})"))

docs = {}
for f in sorted(glob.glob("examples/**/*.yaml", recursive=True)):
    try:
        docs[f] = list(yaml.safe_load_all(open(f)))
        ok(f"{f} parses", True)
    except yaml.YAMLError as e:
        ok(f"{f} parses", False, str(e).replace("\n", " "))

# Recipes in YAML: the normative shape (recipe: NAME, steps: [{name: ...}, ...], names unique).
for f in sorted(glob.glob("examples/recipes/*.yaml")):
    r = (docs.get(f) or [None])[0]
    names = [s.get("name") for s in r.get("steps", [])] if isinstance(r, dict) else []
    ok(f"{f} has recipe: and steps: with unique names",
       isinstance(r, dict) and isinstance(r.get("recipe"), str) and names and all(names)
       and len(set(names)) == len(names), repr(r)[:200])

cm = (docs.get("examples/configmap.yaml") or [{}])[0]
data = cm.get("data") or {}
files = {os.path.basename(p): open(p).read() for p in glob.glob("examples/recipes/*")}
ok("configmap.yaml keys are the files of examples/recipes", sorted(data) == sorted(files),
   f"{sorted(data)} vs {sorted(files)}")
ok("configmap.yaml values equal the files byte for byte",
   all(files.get(k) == v for k, v in data.items()), [k for k, v in data.items() if files.get(k) != v])
# The ConfigMap's Lua keys compile too (what the pod really reads).
tmp = sys.argv[1]
for k, v in data.items():
    if k.endswith(".lua"):
        p = os.path.join(tmp, k)
        open(p, "w").write(v)
        r = subprocess.run(["luac5.4", "-p", p], capture_output=True, text=True)
        ok(f"configmap.yaml key {k} compiles", r.returncode == 0, r.stderr.strip())

ds = (docs.get("examples/daemonset.yaml") or [{}])[0]
spec = ds.get("spec", {}).get("template", {}).get("spec", {})
c = (spec.get("containers") or [{}])[0]
ok("daemonset: kind DaemonSet in kube-system, same namespace as the ConfigMap",
   ds.get("kind") == "DaemonSet" and ds["metadata"].get("namespace") == "kube-system"
   == cm.get("metadata", {}).get("namespace"))
ok("daemonset: hostPID and privileged", spec.get("hostPID") is True
   and c.get("securityContext", {}).get("privileged") is True)
ok("daemonset: system-node-critical, tolerates every taint",
   spec.get("priorityClassName") == "system-node-critical"
   and {"operator": "Exists"} in (spec.get("tolerations") or []))
ok("daemonset: readiness probe is /nodeinit status --ready",
   c.get("readinessProbe", {}).get("exec", {}).get("command") == ["/nodeinit", "status", "--ready"])
ok("daemonset: FallbackToLogsOnError, RollingUpdate",
   c.get("terminationMessagePolicy") == "FallbackToLogsOnError"
   and ds["spec"].get("updateStrategy", {}).get("type") == "RollingUpdate")
res = c.get("resources", {})
ok("daemonset: requests 10m/16Mi, memory limit 64Mi",
   res.get("requests") == {"cpu": "10m", "memory": "16Mi"} and res.get("limits", {}).get("memory") == "64Mi")
vols = {v["name"]: v for v in spec.get("volumes", [])}
mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
m = mounts.get("/etc/nodeinit/recipes", {})
ok("daemonset: the recipe ConfigMap is mounted at /etc/nodeinit/recipes",
   vols.get(m.get("name"), {}).get("configMap", {}).get("name") == cm.get("metadata", {}).get("name"))
ok("daemonset: no hostPath volume (the state dir is reached through the host's mount namespace)",
   not any("hostPath" in v for v in vols.values()))

old = (docs.get("examples/migration/startup-script-daemonset.yaml") or [{}])[0]
new = (docs.get("examples/migration/nodeinit-daemonset.yaml") or [{}])[0]
def image_of(d):
    return d["spec"]["template"]["spec"]["containers"][0]["image"]
def env_of(d, n):
    return [e.get("value") for e in d["spec"]["template"]["spec"]["containers"][0].get("env", []) if e["name"] == n]
try:
    ok("migration: the nodeinit DaemonSet runs the nodeinit image", "nodeinit" in image_of(new))
    ok("migration: STARTUP_SCRIPT is unchanged and not empty",
       env_of(old, "STARTUP_SCRIPT") == env_of(new, "STARTUP_SCRIPT") and bool(env_of(old, "STARTUP_SCRIPT")))
    new["spec"]["template"]["spec"]["containers"][0]["image"] = image_of(old)
    ok("migration: the two DaemonSets differ in the image only", old == new)
except (KeyError, IndexError, TypeError) as e:
    ok("migration: both DaemonSets have a container with an image", False, repr(e))
EOF
)
printf '%s\n' "$out"
PASSED=$((PASSED + $(printf '%s\n' "$out" | grep -c '^ok - ')))
FAILED=$((FAILED + $(printf '%s\n' "$out" | grep -c '^FAIL - ')))
check "the YAML checker ran" test -n "$out"
finish
