/* One recipe's journal on the host: loaded, appended to during a pass (one durable plan line, start
 * and end lines), compacted by an atomic rewrite, and set aside when it is not ours. */
#define _GNU_SOURCE
#include "journal.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "statedir.h"
#include "util.h"

static int journal_file(const char *recipe, char buf[static NAME_MAX + 1])
{
	if (!ni_state_name_ok(recipe))
		return -EINVAL;
	snprintf(buf, NAME_MAX + 1, "%s" NI_STATE_SUFFIX, recipe);
	return 0;
}

int ni_state_load(int dir_fd, const char *recipe, struct ni_recipe_state *ret)
{
	_cleanup_free_ char *buf = NULL, *name = NULL;
	char file[NAME_MAX + 1];
	size_t len = 0;
	int r;

	*ret = (struct ni_recipe_state){ 0 };
	r = journal_file(recipe, file);
	if (r < 0)
		return r;
	name = strdup(recipe);
	if (!name)
		return -ENOMEM;
	r = ni_statedir_read_file(dir_fd, file, &buf, &len);
	if (r == -ENOENT) {
		ret->recipe = steal_pointer(&name);
		return 0;
	}
	if (r < 0)
		return r;
	r = ni_state_parse(buf, len, ret);
	if (r == -EINVAL)
		return -EBADMSG; /* there, but not a journal of ours: not the same as nothing recorded */
	if (r < 0)
		return r;
	free(ret->recipe);
	ret->recipe = steal_pointer(&name);
	return 0;
}

int ni_state_set_aside(int dir_fd, const char *recipe, char ret_name[static NAME_MAX + 1])
{
	char file[NAME_MAX + 1], num[24];
	int64_t ms = ni_wall_ms();
	int r;

	r = journal_file(recipe, file);
	if (r < 0)
		return r;
	ni_i64_dec(ms, num);
	/* RENAME_NOREPLACE: two set asides in one millisecond must not lose the first one */
	for (unsigned attempt = 0; attempt < 100; attempt++) {
		int k = attempt == 0 ? snprintf(ret_name, NAME_MAX + 1, "%s.corrupt-%s", file, num)
				     : snprintf(ret_name, NAME_MAX + 1, "%s.corrupt-%s-%u", file, num, attempt);

		if (k < 0 || k > NAME_MAX)
			return -ENAMETOOLONG; /* cannot happen: recipe names are at most 128 bytes */
		r = renameat2(dir_fd, file, dir_fd, ret_name, RENAME_NOREPLACE) < 0 ? -errno : 0;
		if (r == -EINVAL || r == -ENOSYS) {
			/* a filesystem or kernel without RENAME_NOREPLACE: we hold the lock, so look, then rename */
			if (faccessat(dir_fd, ret_name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
				r = -EEXIST;
			else
				r = renameat(dir_fd, file, dir_fd, ret_name) < 0 ? -errno : 0;
		}
		if (r == 0)
			return ni_fsync_dir(dir_fd);
		if (r != -EEXIST)
			return r;
	}
	return -EEXIST;
}

int ni_state_compact(int dir_fd, const char *recipe, const struct ni_step_decl *decls, size_t n_decls,
		     const struct ni_recipe_state *st)
{
	_cleanup_free_ char *buf = NULL;
	char file[NAME_MAX + 1];
	size_t len;
	int r;

	r = journal_file(recipe, file);
	if (r < 0)
		return r;
	r = ni_state_format(recipe, decls, n_decls, st, &buf, &len);
	if (r < 0)
		return r;
	return ni_statedir_write_atomic(dir_fd, file, buf, len);
}

/* ---- the journal ---- */

/*
 * Appends whole lines with one write(); if that fails half way, the torn part is cut off again. *end
 * is the file's size, kept by the caller (we hold the lock: nobody else appends), so no lseek a line.
 */
static int journal_append(int fd, struct ni_buf *b, int64_t *end)
{
	int r;

	if (b->err)
		return b->err;
	r = ni_write_all(fd, b->p, b->len);
	if (r == 0)
		*end += (int64_t)b->len;
	else if (ftruncate(fd, (off_t)*end) < 0) {
		/* nothing more to do: the next ni_journal_open() cuts a torn line off */
	}
	return r;
}

/* A new journal appears complete with its header (temp file, then link), or not at all. The temp
 * file is ni_make_temp's, so ni_state_remove_temps() cleans up after a writer killed half way. */
static int journal_create(int dir_fd, const char *file, const char *recipe)
{
	struct ni_buf b = NI_BUF_INIT(0);
	_cleanup_close_ int fd = -1;
	char tmp[NAME_MAX + 1];
	int r;

	ni_journal_put_header(&b, recipe);
	if (b.err)
		return b.err;
	fd = ni_make_temp(dir_fd, file, 0600, tmp);
	if (fd < 0) {
		ni_buf_free(&b);
		return fd;
	}
	r = ni_write_all(fd, b.p, b.len);
	ni_buf_free(&b);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && close(steal_fd(&fd)) < 0 && errno != EINTR)
		r = -errno;
	if (r == 0)
		r = linkat(dir_fd, tmp, dir_fd, file, 0) < 0 ? -errno : 0;
	unlinkat(dir_fd, tmp, 0);
	if (r < 0)
		return r; /* -EEXIST: someone else made it first */
	return ni_fsync_dir(dir_fd);
}

/* pread() until n bytes or the end of the file (*ret_n says how many): the repair reads the tail. */
static int pread_full(int fd, void *p, size_t n, off_t off, size_t *ret_n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = pread(fd, (char *)p + got, n - got, off + (off_t)got);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		got += (size_t)k;
	}
	*ret_n = got;
	return 0;
}

/* An existing journal: ours? Then cut a torn last line off, so the next line starts on its own. */
static int journal_repair(int fd, off_t size, const char *recipe)
{
	static const char magic[] = NI_JOURNAL_MAGIC " " NI_STATE_FORMAT_VERSION;
	char chunk[4096];
	off_t pos = size;
	size_t got;
	int r;

	if (size == 0) {
		/* an empty file (someone's touch): make it a journal */
		struct ni_buf b = NI_BUF_INIT(0);
		int64_t end = 0;

		ni_journal_put_header(&b, recipe);
		r = journal_append(fd, &b, &end);
		ni_buf_free(&b);
		return r;
	}
	r = pread_full(fd, chunk, sizeof(magic), 0, &got);
	if (r < 0)
		return r;
	if (got < sizeof(magic) || memcmp(chunk, magic, sizeof(magic) - 1) != 0 ||
	    (chunk[sizeof(magic) - 1] != ' ' && chunk[sizeof(magic) - 1] != '\n'))
		return -EINVAL;
	while (pos > 0) {
		size_t n = pos < (off_t)sizeof(chunk) ? (size_t)pos : sizeof(chunk);
		const char *nl;

		r = pread_full(fd, chunk, n, pos - (off_t)n, &got);
		if (r < 0)
			return r;
		if (got != n)
			return -EIO; /* shrank under us: we hold the lock, so something else is wrong */
		nl = memrchr(chunk, '\n', n);
		if (nl) {
			off_t keep = pos - (off_t)n + (nl - chunk) + 1;

			if (keep == size)
				return 0;
			return ftruncate(fd, keep) < 0 ? -errno : 0;
		}
		pos -= (off_t)n;
	}
	/* not even the header line is complete */
	if (ftruncate(fd, 0) < 0)
		return -errno;
	return journal_repair(fd, 0, recipe);
}

int ni_journal_open(int dir_fd, const char *recipe, struct ni_journal *ret)
{
	char file[NAME_MAX + 1];
	int r;

	*ret = (struct ni_journal){ .fd = -1 };
	r = journal_file(recipe, file);
	if (r < 0)
		return r;
	for (int attempt = 0; attempt < 3; attempt++) {
		_cleanup_close_ int fd = -1;
		struct stat st;
		off_t end;

		fd = ni_statedir_open_file(dir_fd, file, O_RDWR | O_APPEND, &st);
		if (fd >= 0) {
			r = journal_repair(fd, st.st_size, recipe);
			if (r < 0)
				return r;
			end = lseek(fd, 0, SEEK_END);
			if (end < 0)
				return -errno;
			ret->end = end;
			ret->fd = steal_fd(&fd);
			return 0;
		}
		if (fd != -ENOENT)
			return fd;
		r = journal_create(dir_fd, file, recipe);
		if (r < 0 && r != -EEXIST)
			return r;
	}
	return -EAGAIN;
}

/* The steps a durable plan line covers, with the fingerprint planned for each. */
struct ni_journal_plan {
	struct ni_name_index ix; /* name -> index into fps; names owned by names[] */
	char **names;
	char (*fps)[65];
	size_t n;
};

static void plan_free(struct ni_journal_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->names[i]);
	free(p->names);
	free(p->fps);
	ni_name_index_free(&p->ix);
	free(p);
}

static bool plan_covers(const struct ni_journal_plan *p, const char *step, const char *fingerprint)
{
	size_t idx;

	return p && ni_name_index_get(&p->ix, step, &idx) && ni_streq(p->fps[idx], fingerprint);
}

int ni_journal_plan(struct ni_journal *j, const struct ni_step_decl *steps, size_t n, const char *boot_id,
		    int64_t started_ms)
{
	struct ni_journal_plan *p;
	struct ni_buf b = NI_BUF_INIT(0);
	size_t idx;
	int r = 0;

	if (!j || j->fd < 0)
		return -EBADF;
	if (j->plan || (n && !steps))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!ni_journal_mark_ok(steps[i].name, steps[i].fingerprint, boot_id))
			return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p || !(p->names = calloc(n + 1, sizeof(*p->names))) || !(p->fps = calloc(n + 1, sizeof(*p->fps)))) {
		plan_free(p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		if (ni_name_index_get(&p->ix, steps[i].name, &idx))
			r = -EINVAL;
		else if (!(p->names[p->n] = strdup(steps[i].name)))
			r = -ENOMEM;
		else {
			snprintf(p->fps[p->n], sizeof(p->fps[p->n]), "%s", steps[i].fingerprint);
			r = ni_name_index_put(&p->ix, p->names[p->n], p->n);
			p->n++;
		}
		ni_journal_put_mark(&b, "plan", steps[i].name, steps[i].fingerprint, boot_id, started_ms);
	}
	if (r == 0)
		r = journal_append(j->fd, &b, &j->end);
	ni_buf_free(&b);
	/* The one sync of the pass: from here a crash shows every planned step interrupted. */
	if (r == 0 && fdatasync(j->fd) < 0)
		r = -errno;
	if (r < 0) {
		plan_free(p);
		return r;
	}
	j->plan = p;
	return 0;
}

/* Notes a record a line just appended says (r's name is copied); -ENOMEM leaves the journal usable for
 * appending, but ni_journal_close_compact() then answers -ESTALE. */
static void note_written(struct ni_journal *j, const struct ni_step_record *r)
{
	struct ni_step_record *nv;

	if (j->n_written == SIZE_MAX)
		return; /* already given up */
	if (j->n_written > 0 && ni_streq(j->written[j->n_written - 1].name, r->name)) {
		/* the end line of the step just started: it says all there is (the load keeps the last line) */
		char *name = j->written[j->n_written - 1].name;

		j->written[j->n_written - 1] = *r;
		j->written[j->n_written - 1].name = name;
		return;
	}
	nv = realloc(j->written, (j->n_written + 1) * sizeof(*nv));
	if (nv) {
		j->written = nv;
		nv[j->n_written] = *r;
		nv[j->n_written].name = strdup(r->name);
	}
	if (!nv || !nv[j->n_written].name) {
		for (size_t i = 0; nv && i < j->n_written; i++)
			free(nv[i].name);
		free(nv ? nv : j->written);
		j->written = NULL;
		j->n_written = SIZE_MAX;
		return;
	}
	j->n_written++;
}

static void written_free(struct ni_journal *j)
{
	for (size_t i = 0; j->written && i < j->n_written; i++)
		free(j->written[i].name);
	free(j->written);
	j->written = NULL;
	j->n_written = 0;
}

int ni_journal_begin(struct ni_journal *j, const char *step, const char *fingerprint, const char *boot_id,
		     int64_t started_ms)
{
	struct ni_buf b = NI_BUF_INIT(0);
	int r;

	if (!j || j->fd < 0)
		return -EBADF;
	if (!ni_journal_mark_ok(step, fingerprint, boot_id))
		return -EINVAL;
	ni_journal_put_mark(&b, "start", step, fingerprint, boot_id, started_ms);
	r = journal_append(j->fd, &b, &j->end);
	ni_buf_free(&b);
	if (r < 0)
		return r;
	/* as ni_state_parse reads a start line: interrupted until its end line */
	struct ni_step_record rec = { .name = (char *)step, .result = NI_RESULT_INTERRUPTED, .started_ms = started_ms,
				      .duration_ms = -1, .exit_code = -1, .failures = UINT_MAX };
	snprintf(rec.fingerprint, sizeof(rec.fingerprint), "%s", fingerprint);
	snprintf(rec.boot_id, sizeof(rec.boot_id), "%s", boot_id);
	note_written(j, &rec);
	/* A durable plan line already makes a crash show this step interrupted. */
	if (plan_covers(j->plan, step, fingerprint))
		return 0;
	return fdatasync(j->fd) < 0 ? -errno : 0;
}

int ni_journal_end(struct ni_journal *j, const struct ni_step_record *r)
{
	struct ni_buf b = NI_BUF_INIT(0);
	int k;

	if (!j || j->fd < 0)
		return -EBADF;
	if (!r || !ni_step_record_ok(r))
		return -EINVAL;
	ni_journal_put_end(&b, r);
	k = journal_append(j->fd, &b, &j->end);
	ni_buf_free(&b);
	if (k == 0)
		note_written(j, r);
	return k;
}

/* Appends the close line after a plan; false when it could not be. Then closes the file. */
static bool journal_close(struct ni_journal *j)
{
	bool ok = true;

	if (j->plan && j->fd >= 0) {
		/* The pass is over: planned steps it never reached keep their previous record. Not
		 * synced: if a crash loses it, they read as interrupted and run again, as due steps do. */
		struct ni_buf b = NI_BUF_INIT(0);

		ni_buf_puts(&b, "close\n");
		ok = journal_append(j->fd, &b, &j->end) == 0;
		ni_buf_free(&b);
	}
	plan_free(j->plan);
	j->plan = NULL;
	ni_safe_close(j->fd);
	j->fd = -1;
	return ok;
}

void ni_journal_close(struct ni_journal *j)
{
	if (!j)
		return;
	journal_close(j);
	written_free(j);
}

int ni_journal_close_compact(struct ni_journal *j, int dir_fd, const char *recipe, const struct ni_step_decl *decls,
			     size_t n_decls, const struct ni_recipe_state *st)
{
	struct ni_recipe_state view = { 0 };
	bool closed;
	int r;

	if (!j)
		return -EINVAL;
	closed = journal_close(j);
	if (!closed || j->n_written == SIZE_MAX) {
		written_free(j);
		return -ESTALE;
	}
	/* st's records, then this pass's: ni_state_format keeps the last record of a name, as a load does */
	view.recipe = st ? st->recipe : NULL;
	view.n_records = (st ? st->n_records : 0) + j->n_written;
	view.records = calloc(view.n_records + 1, sizeof(*view.records));
	if (!view.records) {
		written_free(j);
		return -ESTALE;
	}
	for (size_t i = 0; st && i < st->n_records; i++)
		view.records[i] = st->records[i];
	for (size_t i = 0, k = st ? st->n_records : 0; i < j->n_written; i++, k++) {
		struct ni_step_record *w = &j->written[i];

		if (w->failures == UINT_MAX) {
			/* a start line keeps the failure count of the record before it: st's, or this pass's */
			const struct ni_step_record *prev = NULL;
			for (size_t m = k; m-- > (st ? st->n_records : 0) && !prev;)
				if (ni_streq(view.records[m].name, w->name))
					prev = &view.records[m];
			if (!prev)
				prev = ni_recipe_state_find(st, w->name);
			w->failures = prev ? prev->failures : 0;
		}
		view.records[k] = *w;
	}
	r = ni_state_compact(dir_fd, recipe, decls, n_decls, &view);
	free(view.records);
	written_free(j);
	return r;
}

