/* The cluster side of a pass: condition, startup taint, Events, ready file, and the Node for recipes. */
#define _GNU_SOURCE
#include "kube.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "digest.h"
#include "file.h"
#include "http.h"
#include "log.h"
#include "luart.h"
#include "util.h"

#ifndef NI_VERSION
#define NI_VERSION "0.0.0-dev"
#endif

#define BACKOFF_FIRST_MS 5000
#define BACKOFF_MAX_MS (5 * 60 * 1000)
#define TAINT_TRIES 5
#define EVENT_NOTE_MAX 1024 /* events.k8s.io/v1 validation: note at most 1 kB */

/* Failures are logged once per change, each kind in its own slot, so one cannot hide another. */
enum slot { SLOT_TRANSPORT, SLOT_TOKEN, SLOT_NODE, SLOT_STATUS, SLOT_TAINT, SLOT_EVENT, SLOT_READY, _SLOT_MAX };

struct ni_kube {
	struct ni_ctx *ctx;
	bool on;
	char *node_name, *namespace, *ca_path;
	int sa_fd;    /* the service account directory, container side, O_PATH */
	int netns_fd; /* the pod's own network namespace */
	struct ni_http *http;
	char *token;
	int64_t token_read_ms;
	int64_t heartbeat_ms;

	unsigned failures; /* requests failed in a row: back-off */
	int64_t retry_at_ms;
	char *problem[_SLOT_MAX];

	/* The condition as last written. */
	char *cond_status, *cond_reason, *cond_message;
	int64_t cond_sent_ms;
	char transition[64];
	bool taint_done;

	/* This pass. */
	unsigned pass;
	bool changed, applying;
	char *fail_recipe, *fail_step, *fail_line;
	bool fail_waiting; /* fail_* name a step that failed before this pass and waits for its retry */
	/* The Event of the last failure, and how often it was seen. */
	char *event_name;
	unsigned event_count;

	json_t *node;
	unsigned node_pass;
	int node_err;
	char node_why[200];

	int ready_state; /* -1 unknown, 0 absent, 1 written */
};

bool ni_kube_on(const struct ni_kube *k)
{
	return k && k->on;
}

static void set_str(char **field, const char *v)
{
	if (v == *field)
		return;
	free(*field);
	*field = v ? strdup(v) : NULL;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && ni_streq(a, b));
}

/* Logs msg for slot only when it differs from what the slot last said; NULL clears the slot. */
static void problem(struct ni_kube *k, enum slot s, enum ni_log_level level, const char *msg, const char *detail)
{
	char line[600];

	if (!msg) {
		if (k->problem[s])
			ni_log(&k->ctx->log, NI_LOG_INFO, "kube: works again", "was", k->problem[s], NULL);
		set_str(&k->problem[s], NULL);
		return;
	}
	snprintf(line, sizeof(line), "%s%s%s", msg, detail ? ": " : "", detail ? detail : "");
	if (str_eq(k->problem[s], line))
		return;
	set_str(&k->problem[s], line);
	ni_log(&k->ctx->log, level, "kube: request failed; recipes apply regardless", "problem", line, NULL);
}

static void format_time(int64_t ms, bool micro, char *buf, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char base[32];

	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	if (micro)
		snprintf(buf, n, "%s.%06dZ", base, (int)(ms % 1000) * 1000);
	else
		snprintf(buf, n, "%sZ", base);
}

/* Reads a small file of the service account directory; trailing newlines dropped. */
static int read_sa(int sa_fd, const char *name, size_t max, char **ret)
{
	_cleanup_close_ int fd = openat(sa_fd, name, O_RDONLY | O_CLOEXEC);
	size_t len;
	int r;

	if (fd < 0)
		return -errno;
	r = ni_file_read_fd(fd, max, ret, &len);
	if (r < 0)
		return r;
	while (len && ((*ret)[len - 1] == '\n' || (*ret)[len - 1] == '\r'))
		(*ret)[--len] = '\0';
	return 0;
}

static void drop_token(struct ni_kube *k)
{
	if (k->token)
		explicit_bzero(k->token, strlen(k->token));
	free(k->token);
	k->token = NULL;
}

/* Bound tokens expire and the kubelet rotates the file: re-read it after a minute, or on demand (401). */
static int refresh_token(struct ni_kube *k, bool force)
{
	char *tok = NULL;
	int r;

	if (k->token && !force && ni_now_ms() - k->token_read_ms < NI_KUBE_TOKEN_MAX_AGE_MS)
		return 0;
	r = read_sa(k->sa_fd, "token", 64 << 10, &tok);
	if (r == 0 && (!*tok || strpbrk(tok, "\r\n"))) {
		free(tok);
		r = -EINVAL;
	}
	if (r < 0) {
		problem(k, SLOT_TOKEN, NI_LOG_WARN, "cannot read the service account token", strerror(-r));
		return k->token ? 0 : r; /* keep using the old one: it may still be valid */
	}
	problem(k, SLOT_TOKEN, NI_LOG_WARN, NULL, NULL);
	drop_token(k);
	k->token = tok;
	k->token_read_ms = ni_now_ms();
	return 0;
}

static void backoff(struct ni_kube *k)
{
	int64_t ms = BACKOFF_FIRST_MS;

	k->failures++;
	for (unsigned i = 1; i < k->failures && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	k->retry_at_ms = ni_now_ms() + (ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS);
}

/* The message of a Status object (the API's error body), or "". */
static const char *status_message(const struct ni_http_response *resp, json_t **hold)
{
	json_t *m;

	*hold = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
	m = json_object_get(*hold, "message");
	return json_is_string(m) ? json_string_value(m) : "";
}

/*
 * One API request. verb and resource name what RBAC must allow (for a 403's log line). Returns 0 on
 * 2xx (with the parsed body in *ret when wanted), the status when it is one of the expected ones
 * (the caller handles it: 404, 409, 422), or -errno after logging the problem and backing off.
 */
static int api(struct ni_kube *k, enum slot slot, const char *verb, const char *resource, const char *method,
	       const char *path, const char *ctype, const json_t *body, const int *expected, json_t **ret)
{
	struct ni_http_response resp;
	_cleanup_free_ char *text = NULL;
	char what[200];
	int r;

	if (ret)
		*ret = NULL;
	if (!k->on)
		return -ENOTCONN;
	if (ni_now_ms() < k->retry_at_ms)
		return -EAGAIN;
	if (body && !(text = json_dumps(body, JSON_COMPACT)))
		return -ENOMEM;
	if (refresh_token(k, false) < 0) {
		backoff(k);
		return -ENOKEY;
	}
	for (int attempt = 0;; attempt++) {
		struct ni_http_request rq = { .method = method, .path = path, .bearer = k->token, .content_type = ctype,
					      .body = text, .body_len = text ? strlen(text) : 0 };

		r = ni_http_do(k->http, &rq, &resp);
		if (r == 0 && resp.status == 401 && attempt == 0) {
			/* Expired or rotated: read the file again and retry once, as client-go does. */
			ni_http_response_free(&resp);
			refresh_token(k, true);
			continue;
		}
		break;
	}
	if (r < 0) {
		char detail[300];

		if (r == -EKEYREJECTED) {
			char info[200];
			ni_http_verify_info(resp.verify_flags, info, sizeof(info));
			snprintf(detail, sizeof(detail), "the server certificate does not verify against %s for the name "
				 NI_KUBE_VERIFY_NAME " (%s)", k->ca_path, info);
		} else {
			snprintf(detail, sizeof(detail), "%s", strerror(-r));
		}
		problem(k, SLOT_TRANSPORT, NI_LOG_WARN, "cannot reach the API server", detail);
		backoff(k);
		return r;
	}
	problem(k, SLOT_TRANSPORT, NI_LOG_WARN, NULL, NULL);
	for (const int *e = expected; e && *e; e++)
		if (resp.status == *e) {
			ni_http_response_free(&resp);
			return *e;
		}
	if (resp.status < 200 || resp.status > 299) {
		json_t *hold;
		const char *msg = status_message(&resp, &hold);

		if (resp.status == 403)
			snprintf(what, sizeof(what), "forbidden: RBAC must allow %s on %s", verb, resource);
		else if (resp.status == 401)
			snprintf(what, sizeof(what), "unauthorized: the service account token is not accepted");
		else
			snprintf(what, sizeof(what), "%s %s answered %d", verb, resource, resp.status);
		problem(k, slot, NI_LOG_WARN, what, msg);
		json_decref(hold);
		ni_http_response_free(&resp);
		backoff(k);
		return -EACCES;
	}
	problem(k, slot, NI_LOG_WARN, NULL, NULL);
	k->failures = 0;
	k->retry_at_ms = 0;
	if (ret && resp.body)
		*ret = json_loadb(resp.body, resp.body_len, 0, NULL);
	ni_http_response_free(&resp);
	if (ret && !*ret) {
		problem(k, slot, NI_LOG_WARN, "the API answered something that is not JSON", resource);
		return -EPROTO;
	}
	return 0;
}

static int path_of(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int path_of(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

/* ---- in-cluster configuration ---------------------------------------------------------------- */

static int setup(struct ni_kube *k, ni_getenv_fn env, char *why, size_t whylen)
{
	const struct ni_options *o = &k->ctx->opt;
	const char *host = env("KUBERNETES_SERVICE_HOST"), *port = env("KUBERNETES_SERVICE_PORT");
	const char *node = env("NODE_NAME"), *hb = env("NODEINIT_KUBE_HEARTBEAT_SECONDS");
	_cleanup_free_ char *ca = NULL;
	int64_t portnum, hbs;
	int r;

	if (o->kube_off) {
		snprintf(why, whylen, "--kube off");
		return -1;
	}
	if (!host || !*host) {
		snprintf(why, whylen, "KUBERNETES_SERVICE_HOST is not set (not running in a cluster)");
		return -1;
	}
	if (!port || ni_parse_i64(port, 1, 65535, &portnum) < 0) {
		snprintf(why, whylen, "KUBERNETES_SERVICE_PORT is not a port number");
		return -1;
	}
	if (!node || !*node || strlen(node) > 253 || strpbrk(node, "/?#% \t\n")) {
		snprintf(why, whylen, "NODE_NAME is not set to a node name (the downward API's spec.nodeName)");
		return -1;
	}
	k->sa_fd = open(o->kube_sa_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (k->sa_fd < 0) {
		snprintf(why, whylen, "no service account directory %s: %s", o->kube_sa_dir, strerror(errno));
		return -1;
	}
	if (asprintf(&k->ca_path, "%s/ca.crt", o->kube_sa_dir) < 0)
		return -ENOMEM;
	if ((r = read_sa(k->sa_fd, "ca.crt", 1 << 20, &ca)) < 0) {
		snprintf(why, whylen, "cannot read %s: %s", k->ca_path, strerror(-r));
		return -1;
	}
	if ((r = refresh_token(k, true)) < 0) {
		snprintf(why, whylen, "cannot read %s/token: %s", o->kube_sa_dir, strerror(-r));
		return -1;
	}
	if ((r = read_sa(k->sa_fd, "namespace", 256, &k->namespace)) < 0 || !*k->namespace) {
		snprintf(why, whylen, "cannot read %s/namespace: %s", o->kube_sa_dir, r < 0 ? strerror(-r) : "empty");
		return -1;
	}
	/* The pod's network namespace, kept before the host's is joined: the cluster IP is reached from here. */
	k->netns_fd = openat(k->ctx->proc_fd, "thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (k->netns_fd < 0) {
		snprintf(why, whylen, "cannot open this pod's network namespace: %s", strerror(errno));
		return -1;
	}
	{
		struct ni_http_opts ho = {
			.host = host, .port = (unsigned)portnum, .verify_name = NI_KUBE_VERIFY_NAME, .ca_pem = ca,
			.netns_fd = k->netns_fd, .self_proc_fd = k->ctx->proc_fd, .timeout_ms = NI_KUBE_TIMEOUT_MS,
			.max_response = NI_KUBE_MAX_RESPONSE, .user_agent = "nodeinit/" NI_VERSION,
		};
		r = ni_http_new(&ho, &k->http);
	}
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		snprintf(why, whylen, "KUBERNETES_SERVICE_HOST is not an IP address, or %s holds no usable certificate",
			 k->ca_path);
		return -1;
	}
	k->node_name = strdup(node);
	if (!k->node_name)
		return -ENOMEM;
	/* Test-only: a short heartbeat (README: "Cluster"). */
	if (hb && ni_parse_i64(hb, 1, 86400, &hbs) == 0)
		k->heartbeat_ms = hbs * 1000;
	snprintf(why, whylen, "node %s, API %s:%s from the pod's network namespace, server certificate verified "
		 "against %s for the name " NI_KUBE_VERIFY_NAME, node, host, port, k->ca_path);
	return 0;
}

int ni_kube_new(struct ni_ctx *ctx, ni_getenv_fn env, bool announce, struct ni_kube **ret)
{
	struct ni_kube *k = calloc(1, sizeof(*k));
	char why[600] = "";
	int r;

	if (!k)
		return -ENOMEM;
	k->ctx = ctx;
	k->sa_fd = k->netns_fd = -1;
	k->ready_state = -1;
	k->heartbeat_ms = NI_KUBE_HEARTBEAT_MS;
	r = setup(k, env, why, sizeof(why));
	if (r == -ENOMEM) {
		ni_kube_free(k);
		return r;
	}
	k->on = r == 0;
	if (!k->on) {
		drop_token(k);
		k->sa_fd = ni_safe_close(k->sa_fd);
		k->netns_fd = ni_safe_close(k->netns_fd);
	}
	if (announce)
		ni_log(&ctx->log, NI_LOG_INFO, k->on ? "kube: on" : "kube: off", "why", why,
		       !k->on && ctx->opt.startup_taint ? "startup_taint" : NULL, "not removed: the API is off", NULL);
	*ret = k;
	return 0;
}

void ni_kube_free(struct ni_kube *k)
{
	if (!k)
		return;
	drop_token(k);
	ni_http_free(k->http);
	ni_safe_close(k->sa_fd);
	ni_safe_close(k->netns_fd);
	for (int i = 0; i < _SLOT_MAX; i++)
		free(k->problem[i]);
	free(k->node_name);
	free(k->namespace);
	free(k->ca_path);
	free(k->cond_status);
	free(k->cond_reason);
	free(k->cond_message);
	free(k->fail_recipe);
	free(k->fail_step);
	free(k->fail_line);
	free(k->event_name);
	json_decref(k->node);
	free(k);
}

/* ---- what a pass tells the cluster ----------------------------------------------------------- */

char *ni_kube_condition_patch(const char *status, const char *reason, const char *message, const char *heartbeat,
			      const char *transition)
{
	/* Strategic merge: conditions merge by "type" (patchMergeKey), so the other conditions stay. */
	json_t *p = json_pack("{s:{s:[{s:s,s:s,s:s,s:s,s:s,s:s}]}}", "status", "conditions", "type", NI_KUBE_CONDITION,
			      "status", status, "reason", reason, "message", message, "lastHeartbeatTime", heartbeat,
			      "lastTransitionTime", transition);
	char *s = p ? json_dumps(p, JSON_COMPACT) : NULL;

	json_decref(p);
	return s;
}

static void set_condition(struct ni_kube *k, const char *status, const char *reason, const char *message)
{
	char path[512], now[64];
	_cleanup_free_ char *body = NULL;
	json_t *j;
	bool same = str_eq(k->cond_status, status) && str_eq(k->cond_reason, reason) && str_eq(k->cond_message, message);
	int64_t t = ni_wall_ms();

	/* Only on change, plus a slow heartbeat: an idle node makes almost no requests. */
	if (same && ni_now_ms() - k->cond_sent_ms < k->heartbeat_ms)
		return;
	format_time(t, false, now, sizeof(now));
	if (!str_eq(k->cond_status, status) || !*k->transition)
		snprintf(k->transition, sizeof(k->transition), "%s", now);
	if (path_of(path, sizeof(path), "/api/v1/nodes/%s/status", k->node_name) < 0 ||
	    !(body = ni_kube_condition_patch(status, reason, message, now, k->transition)) ||
	    !(j = json_loads(body, 0, NULL)))
		return;
	if (api(k, SLOT_STATUS, "patch", "nodes/status", "PATCH", path, "application/strategic-merge-patch+json", j,
		NULL, NULL) == 0) {
		set_str(&k->cond_status, status);
		set_str(&k->cond_reason, reason);
		set_str(&k->cond_message, message);
		k->cond_sent_ms = ni_now_ms();
	}
	json_decref(j);
}

static int get_node(struct ni_kube *k, json_t **ret)
{
	char path[512];
	int r = path_of(path, sizeof(path), "/api/v1/nodes/%s", k->node_name);

	return r < 0 ? r : api(k, SLOT_NODE, "get", "nodes", "GET", path, NULL, NULL, NULL, ret);
}

char *ni_kube_taint_patch(const json_t *taints, const char *key)
{
	json_t *keep = json_array(), *patch;
	size_t i;
	const json_t *t;
	bool found = false;
	char *s;

	if (!keep)
		return NULL;
	json_array_foreach(taints, i, t) {
		const char *tk = json_string_value(json_object_get(t, "key"));
		if (tk && ni_streq(tk, key))
			found = true;
		else
			json_array_append(keep, (json_t *)t);
	}
	if (!found) {
		json_decref(keep);
		return NULL;
	}
	/* test first: if the taints changed since they were read, the API answers 422 and nothing is lost. */
	patch = json_pack("[{s:s,s:s,s:O},{s:s,s:s,s:o}]", "op", "test", "path", "/spec/taints", "value", taints, "op",
			  "replace", "path", "/spec/taints", "value", keep);
	s = patch ? json_dumps(patch, JSON_COMPACT) : NULL;
	json_decref(patch);
	return s;
}

/* Removes every taint with the startup key, and no other; never adds one. */
static void remove_taint(struct ni_kube *k)
{
	const char *key = k->ctx->opt.startup_taint;
	static const int expect_422[] = { 422, 0 };
	char path[512];

	if (path_of(path, sizeof(path), "/api/v1/nodes/%s", k->node_name) < 0)
		return;
	for (int i = 0; i < TAINT_TRIES; i++) {
		json_t *node = NULL, *taints, *patch;
		_cleanup_free_ char *body = NULL;
		int r;

		if (get_node(k, &node) < 0)
			return;
		taints = json_object_get(json_object_get(node, "spec"), "taints");
		body = json_is_array(taints) ? ni_kube_taint_patch(taints, key) : NULL;
		json_decref(node);
		if (!body) {
			k->taint_done = true; /* none (left): nothing to do, ever again */
			return;
		}
		patch = json_loads(body, 0, NULL);
		if (!patch)
			return;
		r = api(k, SLOT_TAINT, "patch", "nodes", "PATCH", path, "application/json-patch+json", patch, expect_422,
			NULL);
		json_decref(patch);
		if (r == 0) {
			k->taint_done = true;
			ni_log(&k->ctx->log, NI_LOG_INFO, "kube: removed the startup taint", "node", k->node_name, "taint",
			       key, NULL);
			return;
		}
		if (r != 422)
			return;
		/* Someone changed the taints between our read and our patch: read them again. */
	}
	problem(k, SLOT_TAINT, NI_LOG_WARN, "the node's taints kept changing; will retry the startup taint", key);
}

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
static void cut_utf8(char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	s[max] = '\0';
}

/* PATCHes the series of the Event name to count (events.k8s.io/v1: a repeat is counted, not re-sent). */
static int count_event(struct ni_kube *k, const char *name, unsigned count, const char *now)
{
	static const int expect_404[] = { 404, 0 };
	char path[600];
	json_t *ev;
	int r;

	if (path_of(path, sizeof(path), "/apis/events.k8s.io/v1/namespaces/%s/events/%s", k->namespace, name) < 0)
		return -ENAMETOOLONG;
	ev = json_pack("{s:{s:i,s:s}}", "series", "count", (json_int_t)count, "lastObservedTime", now);
	r = ev ? api(k, SLOT_EVENT, "patch", "events", "PATCH", path, "application/merge-patch+json", ev, expect_404,
		     NULL) : -ENOMEM;
	json_decref(ev);
	return r;
}

/*
 * Sends an Event about the Node. With key (a distinct failure), the Event's name comes from the key:
 * the same failure again, in this process or after a restart, only counts up that Event's series
 * (no flood); a new one gets a new Event. Without key, every call is an Event of its own.
 */
static void send_event(struct ni_kube *k, const char *type, const char *reason, const char *note, const char *key)
{
	static const int expect_409[] = { 409, 0 };
	char path[600], now[64], name[300], hex[NI_SHA256_HEX_LEN + 1];
	_cleanup_free_ char *n = strdup(note);
	json_t *ev, *old = NULL;
	int64_t t = ni_wall_ms();
	int r;

	if (!n)
		return;
	cut_utf8(n, EVENT_NOTE_MAX);
	format_time(t, true, now, sizeof(now));
	if (key) {
		ni_sha256_hex(key, strlen(key), hex);
		snprintf(name, sizeof(name), "%s.nodeinit-%.16s", k->node_name, hex);
		if (str_eq(k->event_name, name)) {
			r = count_event(k, name, ++k->event_count, now);
			if (r != 404)
				return;
			/* It expired (events live an hour): send it anew. */
		}
	} else {
		snprintf(name, sizeof(name), "%s.%llx", k->node_name, (unsigned long long)t * 1000ULL + k->pass % 1000);
	}
	if (path_of(path, sizeof(path), "/apis/events.k8s.io/v1/namespaces/%s/events", k->namespace) < 0)
		return;
	ev = json_pack("{s:s,s:s,s:{s:s,s:s},s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s,s:s}}",
		       "apiVersion", "events.k8s.io/v1", "kind", "Event",
		       "metadata", "name", name, "namespace", k->namespace,
		       "eventTime", now, "reportingController", "nodeinit", "reportingInstance", k->node_name,
		       "action", "Apply", "reason", reason, "type", type, "note", n,
		       "regarding", "apiVersion", "v1", "kind", "Node", "name", k->node_name, "uid", k->node_name);
	if (!ev)
		return;
	r = api(k, SLOT_EVENT, "create", "events", "POST", path, "application/json", ev, key ? expect_409 : NULL, NULL);
	json_decref(ev);
	if (r == 409) {
		/* A previous nodeinit sent this failure already: count on from its series. An empty merge
		 * patch reads it back (RBAC gives events create and patch, not get). */
		json_int_t count = 1;
		char one[900];
		json_t *empty = json_object();
		if (empty && path_of(one, sizeof(one), "%s/%s", path, name) == 0 &&
		    api(k, SLOT_EVENT, "patch", "events", "PATCH", one, "application/merge-patch+json", empty, NULL, &old) == 0) {
			json_t *c = json_object_get(json_object_get(old, "series"), "count");
			if (json_is_integer(c) && json_integer_value(c) > 0)
				count = json_integer_value(c);
		}
		json_decref(empty);
		json_decref(old);
		if (count_event(k, name, (unsigned)count + 1, now) == 0) {
			set_str(&k->event_name, name);
			k->event_count = (unsigned)count + 1;
		}
		return;
	}
	if (r == 0 && key) {
		set_str(&k->event_name, name);
		k->event_count = 1;
	}
}

void ni_kube_pass_begin(struct ni_kube *k)
{
	if (!k)
		return;
	k->pass++;
	k->changed = k->applying = k->fail_waiting = false;
	set_str(&k->fail_recipe, NULL);
	set_str(&k->fail_step, NULL);
	set_str(&k->fail_line, NULL);
}

void ni_kube_applying(struct ni_kube *k, const enum ni_reason *whys, size_t n)
{
	bool routine = true;

	if (!k || !k->on || k->applying)
		return;
	/* "always" steps run every pass: drift correction, not news. */
	for (size_t i = 0; i < n; i++)
		if (whys[i] != NI_REASON_ALWAYS)
			routine = false;
	if (routine)
		return;
	k->applying = true;
	set_condition(k, "False", "Applying", "nodeinit is applying due steps");
}

void ni_kube_note_step(struct ni_kube *k, const char *recipe, const char *step, enum ni_reason why,
		       enum ni_result result, const char *error)
{
	if (!k)
		return;
	if (result == NI_RESULT_OK && why != NI_REASON_ALWAYS)
		k->changed = true;
	if (result != NI_RESULT_FAILED)
		return;
	k->fail_waiting = false;
	set_str(&k->fail_recipe, recipe);
	set_str(&k->fail_step, step);
	set_str(&k->fail_line, error ? error : "(hidden: sensitive step)");
	if (k->fail_line)
		k->fail_line[strcspn(k->fail_line, "\n")] = '\0';
}

void ni_kube_note_waiting(struct ni_kube *k, const char *recipe, const char *step)
{
	/* A step that failed in this pass says more; the first waiting one is the one to name. */
	if (!k || k->fail_step)
		return;
	k->fail_waiting = true;
	set_str(&k->fail_recipe, recipe);
	set_str(&k->fail_step, step);
}

/* The host-side handshake file: written atomically when converged, removed when not. */
static void ready_file(struct ni_kube *k, bool converged)
{
	const char *path = k->ctx->opt.ready_file;
	static const char content[] = "converged\n";
	struct ni_file_attrs attrs = { .mode = 0644, .has_mode = true };
	enum ni_file_change change;
	char why[NI_WHY_MAX] = "";
	bool removed = false;
	int r;

	if (!path || k->ctx->root_fd < 0 || k->ready_state == (int)converged)
		return;
	if (converged) {
		/* Its directory may be on a tmpfs (/run) that a reboot emptied: make it, as mkdir -p. */
		_cleanup_free_ char *dir = strdup(path);
		char *slash = dir ? strrchr(dir, '/') : NULL;
		bool made;
		if (slash && slash != dir) {
			*slash = '\0';
			ni_file_mkdir(k->ctx->root_fd, dir, NULL, true, &made, NULL);
		}
	}
	r = converged ? ni_file_write(k->ctx->root_fd, path, content, sizeof(content) - 1, &attrs, &change, why)
		      : ni_file_remove(k->ctx->root_fd, path, &removed, why);
	if (r < 0) {
		/* A refused symlink says which and why (file.h), as file.write's message does. */
		problem(k, SLOT_READY, NI_LOG_WARN, converged ? "cannot write the ready file" : "cannot remove the ready file",
			r == -ENOLINK && why[0] ? why : strerror(-r));
		return;
	}
	problem(k, SLOT_READY, NI_LOG_WARN, NULL, NULL);
	if (converged ? change != NI_FILE_UNCHANGED : removed)
		ni_log(&k->ctx->log, NI_LOG_INFO, converged ? "ready file written" : "ready file removed", "path", path, NULL);
	k->ready_state = converged;
}

void ni_kube_after_pass(struct ni_kube *k, int exit_code)
{
	bool converged = exit_code == NI_EXIT_OK;
	char msg[1200];

	if (!k || ni_stop_pending(k->ctx)) /* stopping: a cut-short pass says nothing about the node */
		return;
	ready_file(k, converged);
	if (!k->on)
		return;
	if (exit_code == NI_EXIT_TARGET) {
		/* The pass did not finish, and no later one will in this process: the node is no longer known
		 * to be converged (a heartbeat of an earlier True would say it is). The taint stays. */
		snprintf(msg, sizeof(msg), "the target process (pid %d) is gone; nodeinit stopped and restarts with the pod",
			 (int)k->ctx->opt.target_pid);
		set_condition(k, "False", "TargetGone", msg);
		return;
	}
	if (converged) {
		set_condition(k, "True", "Converged", "every recipe has converged");
		if (k->ctx->opt.startup_taint && !k->taint_done)
			remove_taint(k);
		if (k->changed)
			send_event(k, "Normal", "Converged", "every recipe has converged after changes", NULL);
		set_str(&k->event_name, NULL); /* a failure after this is news again, counted from 1 */
		return;
	}
	if (!k->fail_step) {
		/* Nothing failed in this pass, yet it did not converge (a step waits for its retry): as before. */
		if (!k->cond_status)
			set_condition(k, "False", "StepFailed", "a step has not succeeded yet (see nodeinit's log)");
		else if (ni_streq(k->cond_reason, "Applying"))
			set_condition(k, "False", "StepFailed", "a step has not succeeded yet (see nodeinit's log)");
		else
			set_condition(k, k->cond_status, k->cond_reason, k->cond_message);
		return;
	}
	/* The same message whether the step failed in this pass or waits for its retry: a retry that
	 * fails again changes nothing, and a restarted nodeinit whose first pass finds the step waiting
	 * (from the records alone: the fingerprint cache answered, no Lua) still names it. */
	snprintf(msg, sizeof(msg), "step %s/%s failed", k->fail_recipe, k->fail_step);
	set_condition(k, "False", "StepFailed", msg);
	if (k->fail_waiting)
		return; /* its Event was sent when it failed */
	snprintf(msg, sizeof(msg), "recipe %s, step %s failed: %s", k->fail_recipe, k->fail_step, k->fail_line);
	/* One Event per distinct failure; the same one again only counts up its series. */
	send_event(k, "Warning", "StepFailed", msg, msg);
}

/* ---- the Node for recipes -------------------------------------------------------------------- */

int ni_kube_node(struct ni_kube *k, const json_t **ret, char *why, size_t whylen)
{
	json_t *node = NULL;
	int r;

	if (!k || !k->on) {
		snprintf(why, whylen, "kube: the API is off (see the \"kube: off\" log line)");
		return -ENOTCONN;
	}
	if (k->node_pass == k->pass && (k->node || k->node_err)) {
		if (k->node_err)
			snprintf(why, whylen, "%s", k->node_why);
		*ret = k->node;
		return k->node_err;
	}
	json_decref(k->node);
	k->node = NULL;
	k->node_pass = k->pass;
	r = get_node(k, &node);
	if (r < 0 || !json_is_object(node)) {
		json_decref(node);
		k->node_err = r < 0 ? r : -EPROTO;
		snprintf(k->node_why, sizeof(k->node_why), "kube: cannot read node %s: %s", k->node_name,
			 r == -EAGAIN ? "the API failed recently, retrying later" : r == -EACCES ? "denied (see the log)"
			 : strerror(-k->node_err));
		snprintf(why, whylen, "%s", k->node_why);
		return k->node_err;
	}
	k->node_err = 0;
	k->node = node;
	*ret = node;
	return 0;
}
