/* Reports: state records -> a status model -> text or JSON; plan lines. Pure: builds bytes, prints nothing. */
#ifndef NI_REPORT_H
#define NI_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schedule.h"
#include "state.h"
#include "util.h"

struct ni_status_step {
	const char *name, *when;
	enum ni_result result; /* by ni_status_result */
	bool finished;         /* a finished run of this fingerprint (and boot): duration and time are shown */
	int64_t duration_ms, finished_ms;
};

struct ni_status_recipe {
	const char *name;
	const char *problem; /* NULL, or why its records cannot be read (then it is not converged) */
	struct ni_status_step *steps;
	size_t n_steps;
};

struct ni_status_legacy {
	bool present;           /* STARTUP_SCRIPT is set, or a legacy record exists */
	const char *checkpoint; /* the checkpoint path */
	bool done;              /* the checkpoint exists */
	bool have_record;       /* exit_code and duration_ms come from the record */
	int exit_code;
	int64_t duration_ms;
};

/* Borrows every string: the records it was built from must outlive it. */
struct ni_status {
	bool converged;
	const char *boot_id;
	struct ni_status_recipe *recipes;
	size_t n_recipes;
	struct ni_status_legacy legacy;
};

/*
 * Appends a recipe of the index: its declared steps with their results from st, or, with problem
 * set, none (st may then be NULL). Then updates converged. -ENOMEM.
 */
int ni_status_add_recipe(struct ni_status *s, const char *name, const struct ni_recipe_state *st,
			 const char *problem);
/*
 * Converged: something was applied (a recipe or the legacy script), every recipe's records are
 * readable, every declared step is ok, kept or skipped, and the legacy checkpoint (if any) exists.
 */
void ni_status_judge(struct ni_status *s);
void ni_status_free(struct ni_status *s);

/* `status` output (DESIGN.md "State on the host"): one JSON object and a newline, or the text form. */
int ni_status_format(const struct ni_status *s, bool json, struct ni_buf *out);

/* plan lines: "RECIPE/STEP run|skip REASON", a step's detail, the legacy script, a recipe whose records are unreadable */
int ni_plan_step(struct ni_buf *out, const char *recipe, const char *step, bool due, enum ni_reason why);
int ni_plan_detail(struct ni_buf *out, const char *line);
int ni_plan_legacy(struct ni_buf *out, bool done, const char *checkpoint);
int ni_plan_unreadable(struct ni_buf *out, const char *recipe, const char *error);

#endif
