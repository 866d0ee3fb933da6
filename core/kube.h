/* The cluster side: in-cluster config, the NodeinitConverged condition, the startup taint, Events,
 * the host's ready file, and the Node that recipes read. Never on the critical path of a pass. */
#ifndef NI_KUBE_H
#define NI_KUBE_H

#include <jansson.h>
#include <lua.h>
#include <stdbool.h>
#include <stddef.h>

#include "cli.h"
#include "ctx.h"
#include "engine.h"

#define NI_KUBE_CONDITION "NodeinitConverged"
/* The name the API server's certificate is checked for (README: Cluster): mbedTLS 2.28 cannot
 * match an IP address against a certificate's IP SANs, and every kube-apiserver serving
 * certificate carries this name. */
#define NI_KUBE_VERIFY_NAME "kubernetes.default.svc"
#define NI_KUBE_TIMEOUT_MS 5000
#define NI_KUBE_MAX_RESPONSE (8u << 20)
#define NI_KUBE_TOKEN_MAX_AGE_MS 60000 /* client-go re-reads a token file after a minute too */
#define NI_KUBE_HEARTBEAT_MS (5 * 60 * 1000)

struct ni_kube;

/*
 * Reads the in-cluster configuration (KUBERNETES_SERVICE_HOST/PORT, NODE_NAME, the service account
 * directory) on the container side, before the host is entered: the token and CA live there, and
 * the pod's network namespace is kept for API sockets. Never fails for a missing or bad config:
 * the API is then off, and with announce one log line says whether it is on and why. -ENOMEM only.
 */
int ni_kube_new(struct ni_ctx *ctx, ni_getenv_fn env, bool announce, struct ni_kube **ret);
void ni_kube_free(struct ni_kube *k);

/* Whether the API is on (--kube auto found a cluster). */
bool ni_kube_on(const struct ni_kube *k);

/*
 * The engine's hooks; all take k == NULL as "nothing to tell". A pass begins; a recipe is about to
 * run n due steps (why each); a step ended (error: its message, NULL when sensitive or none); a
 * failed step still waits for its back-off (from its records: the pass ran nothing, Lua may not even
 * be loaded); the pass ended with exit_code (NI_EXIT_OK alone is converged; NI_EXIT_TARGET, the
 * target gone, is a pass that did not finish).
 */
void ni_kube_pass_begin(struct ni_kube *k);
void ni_kube_applying(struct ni_kube *k, const enum ni_reason *whys, size_t n);
void ni_kube_note_step(struct ni_kube *k, const char *recipe, const char *step, enum ni_reason why,
		       enum ni_result result, const char *error);
void ni_kube_note_waiting(struct ni_kube *k, const char *recipe, const char *step);
void ni_kube_after_pass(struct ni_kube *k, int exit_code);

/*
 * The Node, read at most once a pass (kube.node()). Returns 0 with *ret borrowed until the next
 * pass, or -errno with a one-line reason in why (the API is off, unreachable, denied...).
 */
int ni_kube_node(struct ni_kube *k, const json_t **ret, char *why, size_t whylen);

/* The condition patch body and the taint patch body, built apart from any I/O (unit tests). */
char *ni_kube_condition_patch(const char *status, const char *reason, const char *message, const char *heartbeat,
			      const char *transition);
/* A JSON patch removing every taint with key from taints (a JSON array); NULL when none has it. */
char *ni_kube_taint_patch(const json_t *taints, const char *key);

int luaopen_nodeinit_kube(lua_State *L);

#endif
