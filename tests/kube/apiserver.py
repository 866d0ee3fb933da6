#!/usr/bin/env python3
"""A strict stand-in for kube-apiserver, for exactly the requests nodeinit makes.

Usage: apiserver.py --dir DIR --cert CRT --key KEY [--deny VERB:RESOURCE]... [--lifetime S] [--hang]

DIR holds: token (the accepted bearer token, read again at each request so a test can rotate it),
node.json (the Node at start; rewritten after every change), and gets: port (where it listens, on
127.0.0.1 only), requests.jsonl (one line per request, for assertions; the token is never logged),
events.json (every Event stored). It exits by itself after --lifetime seconds.
With --hang it accepts TCP connections and never answers: a slow API server.

Each behaviour cites where kube-apiserver does the same.
"""
import argparse
import copy
import http.server
import json
import os
import socket
import ssl
import sys
import threading
import time

LOCK = threading.Lock()
ARGS = None
NODE = None  # the one Node
EVENTS = {}  # (group, namespace, name) -> event


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
    os.replace(tmp, path)


def log_request(rec):
    with open(os.path.join(ARGS.dir, "requests.jsonl"), "a") as f:
        f.write(json.dumps(rec) + "\n")


def save():
    write_atomic(os.path.join(ARGS.dir, "node.json"), json.dumps(NODE, indent=1))
    write_atomic(os.path.join(ARGS.dir, "events.json"), json.dumps(list(EVENTS.values()), indent=1))


# Errors are Status objects, kind "Status", with reason and code:
# k8s.io/apimachinery/pkg/apis/meta/v1/types.go (type Status, StatusReason*), written by
# k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/status.go (ErrorToAPIStatus).
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
           415: "UnsupportedMediaType", 422: "Invalid", 405: "MethodNotAllowed"}


def status(code, message, reason=None, details=None):
    return code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": message, "reason": reason or REASONS.get(code, "InternalError"),
                  "details": details or {}, "code": code}


class PatchError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


# ---- RFC 6902 JSON patch --------------------------------------------------------------------
# kube-apiserver applies application/json-patch+json with evanphx/json-patch; an error applying it,
# a failed "test" included, answers 422 (k8s.io/apiserver/pkg/endpoints/handlers/patch.go,
# jsonPatcher.applyJSPatch: errors.NewGenericServerResponse(http.StatusUnprocessableEntity, ...)).

def _pointer(doc, path):
    if path == "":
        return None, None
    if not path.startswith("/"):
        raise PatchError(422, "invalid JSON pointer %r" % path)
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
    parent = doc
    for p in parts[:-1]:
        if isinstance(parent, list):
            parent = parent[int(p)]
        elif isinstance(parent, dict) and p in parent:
            parent = parent[p]
        else:
            raise PatchError(422, "doc is missing path: %s" % path)
    return parent, parts[-1]


def _get(doc, path):
    parent, key = _pointer(doc, path)
    if parent is None:
        return doc
    try:
        return parent[int(key)] if isinstance(parent, list) else parent[key]
    except (KeyError, IndexError, ValueError):
        raise PatchError(422, "doc is missing path: %s" % path)


def json_patch(doc, ops):
    doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise PatchError(400, "a JSON patch is a list of operations")
    for op in ops:
        kind, path = op.get("op"), op.get("path")
        if kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(422, "testing value %s failed" % path)
            continue
        if kind in ("move", "copy"):
            value = copy.deepcopy(_get(doc, op["from"]))
            if kind == "move":
                json_patch_remove(doc, op["from"])
            kind = "add"
        else:
            value = op.get("value")
        if kind == "remove":
            json_patch_remove(doc, path)
        elif kind in ("add", "replace"):
            parent, key = _pointer(doc, path)
            if parent is None:
                doc = value
            elif isinstance(parent, list):
                i = len(parent) if key == "-" else int(key)
                if kind == "add":
                    parent.insert(i, value)
                else:
                    parent[i] = value
            else:
                if kind == "replace" and key not in parent:
                    raise PatchError(422, "replace operation does not apply: doc is missing key: %s" % path)
                parent[key] = value
        else:
            raise PatchError(422, "unknown operation %r" % kind)
    return doc


def json_patch_remove(doc, path):
    parent, key = _pointer(doc, path)
    try:
        del parent[int(key) if isinstance(parent, list) else key]
    except (KeyError, IndexError, ValueError, TypeError):
        raise PatchError(422, "remove operation does not apply: doc is missing path: %s" % path)


# ---- RFC 7386 merge patch (application/merge-patch+json) ------------------------------------

def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# ---- strategic merge patch (application/strategic-merge-patch+json) -------------------------
# Lists merge by their patchMergeKey where the Go type says patchStrategy:"merge"
# (k8s.io/api/core/v1/types.go: NodeStatus.Conditions `patchStrategy:"merge" patchMergeKey:"type"`,
# NodeStatus.Addresses likewise); every other list, NodeSpec.Taints included (it has no patch
# strategy), is replaced whole (k8s.io/apimachinery/pkg/util/strategicpatch/patch.go).
MERGE_KEYS = {("status", "conditions"): "type", ("status", "addresses"): "type"}


def strategic_merge(target, patch, path=()):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        here = path + (k,)
        if v is None:
            out.pop(k, None)
        elif isinstance(v, list) and here in MERGE_KEYS:
            key = MERGE_KEYS[here]
            merged = copy.deepcopy(out.get(k) or [])
            for item in v:
                if not isinstance(item, dict) or key not in item:
                    raise PatchError(400, "map: %s does not contain declared merge key: %s" % (item, key))
                for i, old in enumerate(merged):
                    if old.get(key) == item[key]:
                        merged[i] = strategic_merge(old, item, here)
                        break
                else:
                    merged.append(copy.deepcopy(item))
            out[k] = merged
        elif isinstance(v, dict):
            out[k] = strategic_merge(out.get(k), v, here)
        else:
            out[k] = copy.deepcopy(v)
    return out


PATCHERS = {"application/json-patch+json": json_patch, "application/merge-patch+json": merge_patch,
            "application/strategic-merge-patch+json": strategic_merge}


def apply_patch(obj, ctype, body):
    # Other content types are refused with 415 (handlers/patch.go: PatchResource checks the
    # patch type against the supported list).
    fn = PATCHERS.get(ctype)
    if fn is None:
        raise PatchError(415, "the body of the request was in an unknown format - accepted media types "
                              "include: application/json-patch+json, application/merge-patch+json, "
                              "application/strategic-merge-patch+json")
    try:
        patch = json.loads(body)
    except ValueError as e:
        raise PatchError(400, "error decoding patch: %s" % e)
    patched = fn(obj, patch)
    # Optimistic concurrency: a patch carrying a resourceVersion other than the stored one is a
    # conflict (https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions;
    # k8s.io/apiserver/pkg/registry/generic/registry/store.go GuaranteedUpdate -> 409 Conflict).
    rv = (patched.get("metadata") or {}).get("resourceVersion")
    if rv is not None and rv != obj["metadata"]["resourceVersion"]:
        raise PatchError(409, "Operation cannot be fulfilled: the object has been modified; please apply "
                              "your changes to the latest version and try again")
    return patched


def bump(obj):
    obj["metadata"]["resourceVersion"] = str(int(obj["metadata"].get("resourceVersion", "1")) + 1)


# ---- Events ---------------------------------------------------------------------------------
# Validation as pkg/apis/core/validation/events.go (ValidateEventCreate): an events.k8s.io/v1
# Event needs eventTime, reportingController, reportingInstance, action, reason, a type of
# Normal or Warning, a note of at most 1 kB; a core/v1 Event needs involvedObject and reason. The
# object's namespace must match the URL's (handlers/rest.go: "the namespace of the provided
# object does not match the namespace sent on the request").

def validate_event(group, ns, ev):
    meta = ev.get("metadata") or {}
    if meta.get("namespace", ns) != ns:
        return "the namespace of the provided object does not match the namespace sent on the request", 400
    if not meta.get("name"):
        return "metadata.name: Required value", 422
    if group == "events.k8s.io":
        for f in ("eventTime", "reportingController", "reportingInstance", "action", "reason"):
            if not ev.get(f):
                return "%s: Required value" % f, 422
        if not isinstance(ev.get("regarding"), dict):
            return "regarding: Required value", 422
        if len(ev.get("note", "").encode()) > 1024:
            return "note: Too long: must have at most 1024 bytes", 422
    else:
        if not isinstance(ev.get("involvedObject"), dict) or not ev.get("reason"):
            return "involvedObject, reason: Required value", 422
    if ev.get("type") not in ("Normal", "Warning"):
        return "type: Unsupported value: %r" % ev.get("type"), 422
    return None, 0


# ---- the server -----------------------------------------------------------------------------

def route(method, path):
    """-> (verb, resource, kind, args) as RBAC sees the request, or None."""
    parts = path.split("?")[0].strip("/").split("/")
    if parts[:2] == ["api", "v1"] and len(parts) >= 4 and parts[2] == "nodes":
        if len(parts) == 4:
            return {"GET": "get", "PATCH": "patch"}.get(method), "nodes", "node", parts[3:]
        if len(parts) == 5 and parts[4] == "status":
            return {"GET": "get", "PATCH": "patch"}.get(method), "nodes/status", "nodestatus", parts[3:4]
    for prefix, group in ((["api", "v1"], ""), (["apis", "events.k8s.io", "v1"], "events.k8s.io")):
        n = len(prefix)
        if parts[:n] == prefix and len(parts) in (n + 3, n + 4) and parts[n] == "namespaces" and parts[n + 2] == "events":
            if len(parts) == n + 3 and method == "POST":
                return "create", "events", "events", [group, parts[n + 1]]
            if len(parts) == n + 4:
                return {"PATCH": "patch", "GET": "get"}.get(method), "events", "event", [group, parts[n + 1], parts[n + 3]]
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        with LOCK:
            code, obj = self.serve(ctype, body)
            log_request({"method": self.command, "path": self.path, "content_type": ctype, "body": body,
                         "status": code, "time": time.time()})
        self.reply(code, obj)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = handle_any

    def serve(self, ctype, body):
        global NODE
        # Bearer tokens: compared with the current token file at each request, so a rotated file
        # takes effect at once; anything else is 401 (k8s.io/apiserver/pkg/endpoints/filters/
        # authentication.go: unauthorized -> responsewriters.Unauthorized, a 401 Status).
        with open(os.path.join(ARGS.dir, "token")) as f:
            token = f.read().strip()
        auth = self.headers.get("Authorization") or ""
        if not token or auth != "Bearer " + token:
            return status(401, "Unauthorized")
        r = route(self.command, self.path)
        if r is None or r[0] is None:
            return status(404, "the server could not find the requested resource")
        verb, resource, kind, args = r
        # Authorization: a denied verb answers 403 with the message RBAC gives
        # (k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go forbiddenMessage).
        if "%s:%s" % (verb, resource) in ARGS.deny:
            name = args[-1] if kind != "events" else ""
            return status(403, '%s "%s" is forbidden: User "system:serviceaccount:nodeinit:nodeinit" cannot %s '
                               'resource "%s" in API group "%s" at the cluster scope'
                          % (resource.split("/")[0], name, verb, resource,
                             "events.k8s.io" if "events.k8s.io" in self.path else ""),
                          details={"name": name, "kind": resource.split("/")[0]})
        if kind in ("node", "nodestatus"):
            if args[0] != NODE["metadata"]["name"]:
                return status(404, 'nodes "%s" not found' % args[0], details={"name": args[0], "kind": "nodes"})
            if verb == "get":
                return 200, NODE
            try:
                patched = apply_patch(NODE, ctype, body)
            except PatchError as e:
                return status(e.code, str(e))
            # The status subresource changes only status; the main resource ignores status
            # (pkg/registry/core/node/strategy.go: nodeStatusStrategy / nodeStrategy PrepareForUpdate).
            new = copy.deepcopy(NODE)
            if kind == "nodestatus":
                new["status"] = patched.get("status", {})
            else:
                patched["status"] = NODE.get("status", {})
                new = patched
            new["metadata"]["name"] = NODE["metadata"]["name"]
            new["metadata"]["resourceVersion"] = NODE["metadata"]["resourceVersion"]
            if new != NODE:
                bump(new)
            NODE = new
            save()
            return 200, NODE
        if kind == "events":
            group, ns = args
            try:
                ev = json.loads(body)
            except ValueError as e:
                return status(400, "error decoding: %s" % e)
            msg, code = validate_event(group, ns, ev)
            if msg:
                return status(code, msg)
            key = (group, ns, ev["metadata"]["name"])
            if key in EVENTS:
                return status(409, 'events "%s" already exists' % key[2], reason="AlreadyExists")
            ev.setdefault("metadata", {})["namespace"] = ns
            ev["metadata"]["resourceVersion"] = "1"
            ev["apiVersion"] = "events.k8s.io/v1" if group else "v1"
            EVENTS[key] = ev
            save()
            return 201, ev
        if kind == "event":
            key = tuple(args)
            if key not in EVENTS:
                return status(404, 'events "%s" not found' % key[2])
            if verb == "get":
                return 200, EVENTS[key]
            try:
                EVENTS[key] = apply_patch(EVENTS[key], ctype, body)
            except PatchError as e:
                return status(e.code, str(e))
            bump(EVENTS[key])
            save()
            return 200, EVENTS[key]
        return status(405, "method not allowed")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def get_request(self):
        sock, addr = self.socket.accept()
        # The handshake runs in the handler's thread: a client that stalls cannot block accept().
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        pass  # a client that rejected our certificate, or went away


def hang(port_file):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    write_atomic(port_file, str(s.getsockname()[1]))
    held = []
    while True:
        c, _ = s.accept()
        held.append(c)  # never read, never answered


def main():
    global ARGS, NODE
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--deny", action="append", default=[])
    p.add_argument("--lifetime", type=float, default=300)
    p.add_argument("--hang", action="store_true")
    ARGS = p.parse_args()
    # A bounded lifetime: a test that dies cannot leave this behind for long.
    threading.Timer(ARGS.lifetime, lambda: os._exit(0)).start()
    if ARGS.hang:
        hang(os.path.join(ARGS.dir, "port"))
        return
    with open(os.path.join(ARGS.dir, "node.json")) as f:
        NODE = json.load(f)
    NODE.setdefault("metadata", {}).setdefault("resourceVersion", "1")
    save()
    srv = Server(("127.0.0.1", 0), Handler)
    srv.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.tls.load_cert_chain(ARGS.cert, ARGS.key)
    write_atomic(os.path.join(ARGS.dir, "port"), str(srv.server_address[1]))
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
