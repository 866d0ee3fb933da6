/* Scheduling: the one due-ness rule, the status result derived from it, and the back-off. */
#include "schedule.h"

#include <errno.h>

#include "util.h"

#define BACKOFF_MAX_MS (10 * 60 * 1000)

static const char *const reason_names[] = {
	[NI_REASON_NEW] = "new",       [NI_REASON_CHANGED] = "changed", [NI_REASON_BOOT] = "boot",
	[NI_REASON_ALWAYS] = "always", [NI_REASON_FAILED] = "failed",   [NI_REASON_INTERRUPTED] = "interrupted",
	[NI_REASON_DONE] = "done",     [NI_REASON_KEPT] = "kept",       [NI_REASON_BACKOFF] = "backoff",
	[NI_REASON_ONLY] = "only",
};

const char *ni_reason_name(enum ni_reason r)
{
	if ((unsigned)r >= NI_ELEMENTSOF(reason_names))
		return NULL;
	return reason_names[r];
}

int ni_when_from_name(const char *s, enum ni_when *ret)
{
	static const enum ni_when all[] = { NI_WHEN_ONCE, NI_WHEN_BOOT, NI_WHEN_ALWAYS };

	for (size_t i = 0; s && i < NI_ELEMENTSOF(all); i++)
		if (ni_streq(s, ni_when_name(all[i]))) {
			*ret = all[i];
			return 0;
		}
	return -EINVAL;
}

int64_t ni_backoff_ms(unsigned failures, unsigned interval_s)
{
	int64_t ms = (int64_t)interval_s * 1000;

	for (unsigned i = 1; i < failures && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

bool ni_due(enum ni_when when, const char *fingerprint, const struct ni_step_record *rec, const char *boot_id,
	    int64_t now_ms, bool honour_backoff, enum ni_reason *ret_reason)
{
	if (!rec || rec->result == NI_RESULT_PENDING) {
		*ret_reason = NI_REASON_NEW;
		return true;
	}
	if (!ni_streq(rec->fingerprint, fingerprint)) {
		*ret_reason = NI_REASON_CHANGED;
		return true;
	}
	if (rec->result == NI_RESULT_INTERRUPTED) {
		*ret_reason = NI_REASON_INTERRUPTED;
		return true;
	}
	if (rec->result == NI_RESULT_FAILED) {
		bool wait = honour_backoff && now_ms < rec->retry_after_ms;
		*ret_reason = wait ? NI_REASON_BACKOFF : NI_REASON_FAILED;
		return !wait;
	}
	if (when == NI_WHEN_ALWAYS) {
		*ret_reason = NI_REASON_ALWAYS;
		return true;
	}
	if (when == NI_WHEN_BOOT && !ni_streq(rec->boot_id, boot_id)) {
		*ret_reason = NI_REASON_BOOT;
		return true;
	}
	*ret_reason = rec->result == NI_RESULT_KEPT ? NI_REASON_KEPT
		      : rec->result == NI_RESULT_SKIPPED ? NI_REASON_ONLY
							  : NI_REASON_DONE;
	return false;
}

bool ni_step_due(const struct ni_step *s, const struct ni_step_record *rec, const char *boot_id, int64_t now_ms,
		 bool honour_backoff, enum ni_reason *ret_reason)
{
	return ni_due(s->when, s->fingerprint, rec, boot_id, now_ms, honour_backoff, ret_reason);
}

enum ni_result ni_status_result(const struct ni_step_decl *d, const struct ni_step_record *rec, const char *boot_id)
{
	enum ni_when when = NI_WHEN_ONCE;
	enum ni_reason why;

	(void)ni_when_from_name(d->when, &when);
	(void)ni_due(when, d->fingerprint, rec, boot_id, 0, false, &why);
	switch (why) {
	case NI_REASON_NEW:
	case NI_REASON_CHANGED:
	case NI_REASON_BOOT:
		return NI_RESULT_PENDING;
	default:
		return rec->result; /* done, kept, skipped, always (its last result), failed, interrupted */
	}
}
