/* One pass over what is due (the legacy STARTUP_SCRIPT for now), and the run loop around it. */
#ifndef NI_ENGINE_H
#define NI_ENGINE_H

#include <stdbool.h>

#include "ctx.h"

struct ni_legacy {
	const char *script; /* STARTUP_SCRIPT; NULL when unset */
	char *checkpoint;   /* resolved checkpoint path */
};

/* A pass: runs the legacy script unless its checkpoint exists. Returns an NI_EXIT_* code. */
int ni_engine_pass(struct ni_ctx *ctx, struct ni_legacy *legacy);

/* apply (once) or run (pass, then wait an interval or a signal, forever). Returns an NI_EXIT_* code. */
int ni_engine_loop(struct ni_ctx *ctx, struct ni_legacy *legacy, bool forever);

#endif
