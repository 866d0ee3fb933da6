/* core/state.h — step records on the host: an append-only journal per recipe, compacted atomically. */
#ifndef NI_STATE_H
#define NI_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Files under the state dir (all 0600, opened with O_NOFOLLOW relative to the dir fd):
 *   <recipe>.state   the journal:  "nodeinit-state 1 recipe=<recipe>" then one line per event,
 *                    "KIND name key=value ...", KIND one of decl, start, end (see state.c);
 *   index            "nodeinit-index 1" then one recipe name per line;
 *   legacy           "nodeinit-legacy 1" then one "legacy key=value ..." line;
 *   lock             flock(2) target, empty.
 * Temp files are ".<name>.tmp.<16 hex>" and never outlive a failed call; a killed writer's go with
 * the next ni_state_remove_temps().
 */

enum ni_result { NI_RESULT_PENDING, NI_RESULT_OK, NI_RESULT_KEPT, NI_RESULT_FAILED, NI_RESULT_INTERRUPTED };
const char *ni_result_name(enum ni_result r); /* "pending","ok","kept","failed","interrupted"; NULL if out of range */
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
 * Opens (creating with mode 0700, parents too) the state dir, relative to root_fd (the host's /);
 * O_PATH|O_DIRECTORY. Symlinks on the way are resolved inside root_fd (openat2 RESOLVE_IN_ROOT), so
 * an absolute link on the host cannot lead into the container. Missing parents are made 0755 (as
 * `mkdir -p -m 0700`), the state dir itself 0700. ".." components are refused (-EINVAL).
 */
int ni_state_open(int root_fd, const char *state_dir, int *ret_dir_fd);
/*
 * flock(LOCK_EX) on <dir>/lock. wait=false: -EWOULDBLOCK when held. cancel_fd (or -1): when it
 * becomes readable (or hangs up) while waiting, give up with -ECANCELED; it is polled together with a
 * LOCK_NB attempt every 50 ms. Returns the lock fd in ret_lock_fd; closing it releases the lock.
 */
int ni_state_lock(int dir_fd, bool wait, int cancel_fd, int *ret_lock_fd);
/*
 * Removes the temp files of the index and the journals left by a writer that was killed before
 * its rename (SIGKILL, the OOM killer). Call it holding the lock: those writers hold it too.
 * The legacy record is written without the lock, so its temp files are left alone.
 */
int ni_state_remove_temps(int dir_fd);

/*
 * Parses a journal buffer (the pure part, fuzzed). Never fails on bad lines: counts them in n_corrupt.
 * Returns -EINVAL only when the header is not ours (or a version we do not know), -ENOMEM on
 * allocation failure; on error *ret is left empty (safe to free). An empty buffer is an empty state.
 * A start line keeps the step's previous `failures` and clears retry_after_ms (the back-off was over).
 */
int ni_state_parse(const char *buf, size_t len, struct ni_recipe_state *ret);
/* Loads <dir>/<recipe>.state; a missing file gives an empty state (0). ret->recipe is `recipe`. */
int ni_state_load(int dir_fd, const char *recipe, struct ni_recipe_state *ret);

struct ni_journal_plan;
struct ni_state_index;
/* A handle on one recipe's journal, open for appending during a pass. */
struct ni_journal {
	int fd;
	int64_t end;                  /* the file's size: the next line goes there, a failed append is cut back to it */
	struct ni_journal_plan *plan; /* the steps a durable plan line covers (ni_journal_plan), or NULL */
};
/*
 * Creates the journal with its header if missing (atomically: it never exists without one). An
 * existing journal must carry our header (-EINVAL otherwise); a torn last line is cut off so the
 * next append starts a line of its own. Close it before ni_state_compact(): the compaction
 * replaces the file, and an fd opened earlier would append to the replaced one.
 */
int ni_journal_open(int dir_fd, const char *recipe, struct ni_journal *ret);
/*
 * Appends one "plan" line for each step a pass is about to run (name and fingerprint from steps,
 * boot_id and started_ms as its start line will have them), in one write, then one fdatasync. Until
 * the step's own start or end line, or the close line ni_journal_close() writes, a planned step reads
 * as INTERRUPTED: a crash at any point of the pass shows it interrupted, never done. One plan per
 * open journal; -EINVAL for a bad or duplicate step name.
 */
int ni_journal_plan(struct ni_journal *j, const struct ni_step_decl *steps, size_t n, const char *boot_id,
		    int64_t started_ms);
/*
 * Appends the "started" line, then fdatasync (a crash after this must show INTERRUPTED, never done),
 * unless the step is planned with this fingerprint: its durable plan line already says so.
 */
int ni_journal_begin(struct ni_journal *j, const char *step, const char *fingerprint, const char *boot_id,
		     int64_t started_ms);
/*
 * Appends the "ended" line (every field of r, so the line stands on its own). No fsync per step; a
 * lost end line after a crash only means the step re-runs, which is safe. A failed append is cut off
 * again (ftruncate), so it leaves no torn line behind.
 */
int ni_journal_end(struct ni_journal *j, const struct ni_step_record *r);
/* After a plan, appends the "close" line first (not synced): the steps the pass never reached keep
 * their previous record. Then closes the file. */
void ni_journal_close(struct ni_journal *j);
/*
 * Rewrites <dir>/<recipe>.state atomically (temp file in dir, write, fsync, renameat, fsync dir) with the
 * declarations and, for each declared step, its record from st (records of steps no longer declared are
 * dropped). st may be NULL. Skips the rewrite when the file already holds exactly that content.
 * -EINVAL for a bad recipe or step name, a duplicate declaration, or an over-long field.
 */
int ni_state_compact(int dir_fd, const char *recipe, const struct ni_step_decl *decls, size_t n_decls,
		     const struct ni_recipe_state *st);
/* The bytes ni_state_compact() writes, without touching a file (for tests and the fuzzer). */
int ni_state_format(const char *recipe, const struct ni_step_decl *decls, size_t n_decls,
		    const struct ni_recipe_state *st, char **ret_buf, size_t *ret_len);

/* The index: which recipes the last pass saw, in order, so `status` knows what "converged" covers. Atomic rewrite. */
int ni_state_write_index(int dir_fd, char *const *recipes, size_t n);
/* missing → 0 recipes (*ret_recipes may then be NULL); free with ni_strv_free; -EINVAL for a foreign file */
int ni_state_read_index(int dir_fd, char ***ret_recipes, size_t *ret_n);

/* The legacy STARTUP_SCRIPT's record: checkpoint path, done, exit code, duration, finished time. Atomic rewrite. */
struct ni_legacy_record {
	char *checkpoint;
	bool done;
	int exit_code;
	int64_t duration_ms;
	int64_t finished_ms;
};
int ni_state_write_legacy(int dir_fd, const struct ni_legacy_record *r);
int ni_state_read_legacy(int dir_fd, struct ni_legacy_record *ret); /* -ENOENT when none */
void ni_legacy_record_free(struct ni_legacy_record *r);

/* Recipe and step names are validated before they reach a file name or a line. */
bool ni_state_name_ok(const char *name); /* recipe names: [A-Za-z0-9._-]{1,128}, not starting with '.' */
#define NI_STATE_STEP_NAME_MAX 1024
bool ni_state_step_name_ok(const char *name); /* step names: valid UTF-8, 1..NI_STATE_STEP_NAME_MAX bytes */

/* temporary: the state split provides this */
/* Renames <dir>/<recipe>.state to <recipe>.state.corrupt-<wall ms> (named in ret_name), then fsyncs the dir. */
#include <limits.h>
int ni_state_set_aside(int dir_fd, const char *recipe, char ret_name[static NAME_MAX + 1]);

#endif
