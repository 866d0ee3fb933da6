/* core/journal_text.h — the text of the state files (journal, index, legacy record): format and parse,
 * no syscalls. What tests/fuzz/fuzz_state.c targets. */
#ifndef NI_JOURNAL_TEXT_H
#define NI_JOURNAL_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "name_index.h"
#include "util.h"

/*
 * Files under the state dir (all 0600, opened with O_NOFOLLOW relative to the dir fd):
 *   <recipe>.state   the journal:  "nodeinit-state 1 recipe=<recipe>" then one line per event,
 *                    "KIND name key=value ...", KIND one of decl, plan, start, end, close (see
 *                    journal_text.c);
 *   index            "nodeinit-index 1" then one recipe name per line;
 *   legacy           "nodeinit-legacy 1" then one "legacy key=value ..." line;
 *   lock             flock(2) target, empty.
 * Temp files are ".<name>.tmp.<16 hex>" and never outlive a failed call; a killed writer's go with
 * the next ni_state_remove_temps(). A journal set aside as unreadable is "<recipe>.state.corrupt-<ms>".
 */
#define NI_JOURNAL_MAGIC "nodeinit-state"
#define NI_INDEX_MAGIC "nodeinit-index"
#define NI_LEGACY_MAGIC "nodeinit-legacy"
#define NI_STATE_FORMAT_VERSION "1"
#define NI_STATE_SUFFIX ".state"

/* SKIPPED (an `only` guard said the step does not apply here) comes last: older records never hold it. */
enum ni_result {
	NI_RESULT_PENDING,
	NI_RESULT_OK,
	NI_RESULT_KEPT,
	NI_RESULT_FAILED,
	NI_RESULT_INTERRUPTED,
	NI_RESULT_SKIPPED,
};
/* "pending","ok","kept","failed","interrupted","skipped"; NULL if out of range */
const char *ni_result_name(enum ni_result r);
/* Whether a result counts as converged: ok, kept (check said so) or skipped (only said not here). */
static inline bool ni_result_converged(enum ni_result r)
{
	return r == NI_RESULT_OK || r == NI_RESULT_KEPT || r == NI_RESULT_SKIPPED;
}
int ni_result_from_name(const char *s, enum ni_result *ret); /* -EINVAL for an unknown name */

struct ni_step_decl { /* a step as the current recipe declares it */
	char *name;
	char when[8];         /* "once" | "boot" | "always" */
	char fingerprint[65]; /* lowercase hex SHA-256 */
};
struct ni_step_record { /* the last known outcome of a step */
	char *name;
	char fingerprint[65];   /* of the run this record is about */
	enum ni_result result;  /* INTERRUPTED: a start line with no end line after it */
	char boot_id[37];       /* host boot_id at the start of that run */
	int64_t started_ms;     /* unix epoch ms */
	int64_t duration_ms;    /* -1 when interrupted */
	int exit_code;          /* 0 ok; the command's code; -1 when none */
	unsigned failures;      /* consecutive failures so far (0 after ok/kept) */
	int64_t retry_after_ms; /* unix ms before which a failed step is not retried (back-off); 0 none */
};
struct ni_state_index;
struct ni_recipe_state {
	char *recipe;
	struct ni_step_decl *decls;
	size_t n_decls; /* from the last compaction, in recipe order */
	struct ni_step_record *records;
	size_t n_records; /* one per step name, last one wins, in order of first appearance */
	size_t n_corrupt; /* lines skipped as unparsable (torn writes etc.) */
	struct ni_state_index *index; /* records by name, made by ni_state_parse (NULL: find searches) */
};
void ni_recipe_state_free(struct ni_recipe_state *s); /* frees the members and zeroes *s */
const struct ni_step_record *ni_recipe_state_find(const struct ni_recipe_state *s, const char *step);

/*
 * Parses a journal buffer (the pure part, fuzzed). Never fails on bad lines: counts them in n_corrupt.
 * Returns -EINVAL only when the header is not ours (or a version we do not know), -ENOMEM on
 * allocation failure; on error *ret is left empty (safe to free). An empty buffer is an empty state.
 * A start line keeps the step's previous `failures` and clears retry_after_ms (the back-off was over).
 */
int ni_state_parse(const char *buf, size_t len, struct ni_recipe_state *ret);
/* The bytes ni_state_compact() writes, without touching a file (for tests and the fuzzer). -EINVAL for
 * a bad recipe or step name, a duplicate declaration, or an over-long field. */
int ni_state_format(const char *recipe, const struct ni_step_decl *decls, size_t n_decls,
		    const struct ni_recipe_state *st, char **ret_buf, size_t *ret_len);

/* Recipe and step names are validated before they reach a file name or a line. */
bool ni_state_name_ok(const char *name); /* recipe names: [A-Za-z0-9._-]{1,128}, not starting with '.' */
#define NI_STATE_STEP_NAME_MAX 1024
bool ni_state_step_name_ok(const char *name); /* step names: valid UTF-8, 1..NI_STATE_STEP_NAME_MAX bytes */

/* The index's text: which recipes the last pass saw, in order. */
int ni_index_format(char *const *recipes, size_t n, struct ni_buf *b); /* -EINVAL for a bad name */
/* -EINVAL for a foreign header; lines that are not recipe names are skipped (only a hand edit makes them) */
int ni_index_parse(const char *buf, size_t len, char ***ret_recipes, size_t *ret_n);

/* The legacy STARTUP_SCRIPT's record: checkpoint path, done, exit code, duration, finished time. */
struct ni_legacy_record {
	char *checkpoint;
	bool done;
	int exit_code;
	int64_t duration_ms;
	int64_t finished_ms;
};
int ni_legacy_format(const struct ni_legacy_record *r, struct ni_buf *b); /* -EINVAL without a checkpoint */
int ni_legacy_parse(const char *buf, size_t len, struct ni_legacy_record *ret); /* -EINVAL when not ours */
void ni_legacy_record_free(struct ni_legacy_record *r);

/* ---- for journal.c: the lines it appends ---- */

/* Each appends one whole line to b (errors stay in b->err). The caller validated the arguments. */
void ni_journal_put_header(struct ni_buf *b, const char *recipe);
/* A "start" or "plan" line: the same fields, only the kind differs. */
void ni_journal_put_mark(struct ni_buf *b, const char *kind, const char *step, const char *fp, const char *boot_id,
			 int64_t started_ms);
void ni_journal_put_end(struct ni_buf *b, const struct ni_step_record *r);
bool ni_journal_mark_ok(const char *step, const char *fingerprint, const char *boot_id);
bool ni_step_record_ok(const struct ni_step_record *r);

#endif
