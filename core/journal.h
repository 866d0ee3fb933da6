/* core/journal.h — one recipe's journal on the host: load it, append to it during a pass, compact it,
 * set an unreadable one aside. The line format is journal_text.h's. */
#ifndef NI_JOURNAL_H
#define NI_JOURNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "journal_text.h"

/*
 * Loads <dir>/<recipe>.state; ret->recipe is `recipe`. A missing file gives an empty state (0): nothing
 * was recorded. A file that exists but is not a journal of ours (foreign or garbled header) gives
 * -EBADMSG, so the caller can tell it from "nothing recorded" and set it aside; a file refused by the
 * state dir's trust rules (not a regular file owned by root) gives -ENOLINK (statedir.h).
 */
int ni_state_load(int dir_fd, const char *recipe, struct ni_recipe_state *ret);
/*
 * Renames <dir>/<recipe>.state to "<recipe>.state.corrupt-<wall ms>" (or "...-<ms>-<n>" if taken),
 * then fsyncs the dir, so an operator can inspect it and the next pass starts a fresh journal. The
 * name goes to ret_name. -ENOENT when there is none. Temp-file cleanup never matches these names.
 */
int ni_state_set_aside(int dir_fd, const char *recipe, char ret_name[static NAME_MAX + 1]);

struct ni_journal_plan;
/* A handle on one recipe's journal, open for appending during a pass. */
struct ni_journal {
	int fd;
	int64_t end;                  /* the file's size: the next line goes there, a failed append is cut back to it */
	struct ni_journal_plan *plan; /* the steps a durable plan line covers (ni_journal_plan), or NULL */
	/* The records this pass's start and end lines say, in order, as a load reads them back (a start
	 * line's failures: UINT_MAX, "the previous record's"); names owned here. */
	struct ni_step_record *written;
	size_t n_written;
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
 * ni_journal_close, then ni_state_compact of st with what this pass wrote on top, without reading the
 * journal back: the records a load of it would give (its start lines read as interrupted with the
 * previous failure count, its end lines as written; planned steps it never reached keep st's record).
 * st must be what the journal held when it was opened (we hold the lock: nobody else writes it).
 * -ESTALE when the close line could not be appended (then a load would read those planned steps as
 * interrupted): load and compact it as before.
 */
int ni_journal_close_compact(struct ni_journal *j, int dir_fd, const char *recipe, const struct ni_step_decl *decls,
			     size_t n_decls, const struct ni_recipe_state *st);
/*
 * Rewrites <dir>/<recipe>.state atomically (temp file in dir, write, fsync, renameat, fsync dir) with the
 * declarations and, for each declared step, its record from st (records of steps no longer declared are
 * dropped). st may be NULL. Skips the rewrite when the file already holds exactly that content.
 * -EINVAL for a bad recipe or step name, a duplicate declaration, or an over-long field.
 */
int ni_state_compact(int dir_fd, const char *recipe, const struct ni_step_decl *decls, size_t n_decls,
		     const struct ni_recipe_state *st);

#endif
