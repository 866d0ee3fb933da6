/* Scheduling: whether a step is due and why (one rule for the pass, plan and status), and back-off. */
#ifndef NI_SCHEDULE_H
#define NI_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include "recipe.h"
#include "state.h"

/* Why a step runs or is skipped; the names are what plan prints (DESIGN.md "State on the host"). */
enum ni_reason {
	NI_REASON_NEW,
	NI_REASON_CHANGED,
	NI_REASON_BOOT,
	NI_REASON_ALWAYS,
	NI_REASON_FAILED,
	NI_REASON_INTERRUPTED,
	NI_REASON_DONE,
	NI_REASON_KEPT,
	NI_REASON_BACKOFF, /* failed, and its back-off has not run out (run only) */
	NI_REASON_ONLY,    /* its `only` guard says the step does not apply to this node */
	_NI_REASON_MAX,
};

const char *ni_reason_name(enum ni_reason r); /* NULL when out of range */

/* "once", "boot", "always" -> the enum; -EINVAL for anything else. */
int ni_when_from_name(const char *s, enum ni_when *ret);

/*
 * THE rule: whether a step (its when and current fingerprint) is due, from its last record (NULL:
 * none) and the host's boot_id. A failed step is due again at once unless honour_backoff, then once
 * now_ms reaches its retry time.
 */
bool ni_due(enum ni_when when, const char *fingerprint, const struct ni_step_record *rec, const char *boot_id,
	    int64_t now_ms, bool honour_backoff, enum ni_reason *ret_reason);

/* ni_due for a loaded step. */
bool ni_step_due(const struct ni_step *s, const struct ni_step_record *rec, const char *boot_id, int64_t now_ms,
		 bool honour_backoff, enum ni_reason *ret_reason);

/*
 * A declared step's result as status shows it, by the same rule: a step that would run as new,
 * changed or for a new boot is pending; otherwise its record's result (an `always` step shows its
 * last result). A declaration with an unknown `when` counts as once.
 */
enum ni_result ni_status_result(const struct ni_step_decl *d, const struct ni_step_record *rec, const char *boot_id);

/* Back-off after the n-th failure in a row: interval << (n-1), capped at ten minutes. */
int64_t ni_backoff_ms(unsigned failures, unsigned interval_s);

#endif
