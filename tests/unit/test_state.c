/* journal_text.c, journal.c, statedir.c: journal round trips, crash shapes (interrupted, torn), escaping, atomic rewrites, the lock. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "state.h"
#include "util.h"
#include "unit.h"

/* write and renameat pass through unless a test turns faking on; then each call takes its result
 * from the queue: < 0 fails with that errno, > 0 writes at most that many bytes, 0 passes through. */
static bool fake_write, fake_renameat;

ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
	int r;

	if (!fake_write)
		return __real_write(fd, buf, n);
	r = mock_type(int);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return __real_write(fd, buf, r > 0 && (size_t)r < n ? (size_t)r : n);
}

int __real_renameat(int olddir, const char *oldpath, int newdir, const char *newpath);
int __wrap_renameat(int olddir, const char *oldpath, int newdir, const char *newpath);
int __wrap_renameat(int olddir, const char *oldpath, int newdir, const char *newpath)
{
	int r;

	if (!fake_renameat)
		return __real_renameat(olddir, oldpath, newdir, newpath);
	r = mock_type(int);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return __real_renameat(olddir, oldpath, newdir, newpath);
}

/* fdatasync is counted, and the journal size it made durable kept: truncating the file back to that
 * size is what a power loss leaves of it (unsynced appends gone). */
static unsigned syncs;
static off_t synced_size;

int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
int __wrap_fdatasync(int fd)
{
	struct stat st;

	syncs++;
	if (fstat(fd, &st) == 0)
		synced_size = st.st_size;
	return __real_fdatasync(fd);
}

/* Every test gets a fresh "host root" under <build>/t/unit-state/<n>, never /tmp. */
static char base[PATH_MAX];

struct fx {
	int root_fd; /* the fake host's / */
	int dir_fd;  /* its var/lib/nodeinit */
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
	static int n;
	char path[PATH_MAX + 16];
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(path, sizeof(path), "%s/%d", base, ++n);
	rm_rf(path);
	assert_int_equal(mkdir(path, 0755), 0);
	f->root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->root_fd >= 0);
	assert_int_equal(ni_state_open(f->root_fd, "/var/lib/nodeinit", 0, &f->dir_fd, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	fake_write = fake_renameat = false;
	close(f->dir_fd);
	close(f->root_fd);
	free(f);
	return 0;
}

static char *slurp(int dir_fd, const char *name)
{
	char *buf = calloc(1, 1 << 16);
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	assert_non_null(buf);
	assert_true(fd >= 0);
	n = read(fd, buf, (1 << 16) - 1);
	assert_true(n >= 0);
	close(fd);
	return buf;
}

static void put_file(int dir_fd, const char *name, const char *content, int flags)
{
	int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

/* Entries in the state dir whose name says "temp file". */
static int count_temps(int dir_fd)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
	DIR *d = fdopendir(fd);
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strstr(e->d_name, ".tmp.") != NULL;
	closedir(d);
	return n;
}

static size_t count_char(const char *s, char c)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == c;
	return n;
}

static const char fp_a[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char fp_b[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char boot1[] = "5f1e0c8a-2b7d-4e61-9a3c-0d4b8e7f6a21";

static struct ni_step_record rec(const char *name, enum ni_result res, int code, unsigned failures)
{
	struct ni_step_record r = {
		.name = (char *)name,
		.result = res,
		.started_ms = 1700000000000,
		.duration_ms = 42,
		.exit_code = code,
		.failures = failures,
		.retry_after_ms = failures ? 1700000060000 : 0,
	};

	strcpy(r.fingerprint, fp_a);
	strcpy(r.boot_id, boot1);
	return r;
}

static struct ni_step_decl decl(const char *name, const char *when, const char *fp)
{
	struct ni_step_decl d = { .name = (char *)name };

	strcpy(d.when, when);
	strcpy(d.fingerprint, fp);
	return d;
}

/* begin + end one step on an open journal */
static void run_step(struct ni_journal *j, const struct ni_step_record *r)
{
	assert_int_equal(ni_journal_begin(j, r->name, r->fingerprint, r->boot_id, r->started_ms), 0);
	assert_int_equal(ni_journal_end(j, r), 0);
}

static void assert_record_equal(const struct ni_step_record *got, const struct ni_step_record *want)
{
	assert_non_null(got);
	assert_string_equal(got->name, want->name);
	assert_string_equal(got->fingerprint, want->fingerprint);
	assert_int_equal(got->result, want->result);
	assert_string_equal(got->boot_id, want->boot_id);
	assert_int_equal(got->started_ms, want->started_ms);
	assert_int_equal(got->duration_ms, want->duration_ms);
	assert_int_equal(got->exit_code, want->exit_code);
	assert_int_equal(got->failures, want->failures);
	assert_int_equal(got->retry_after_ms, want->retry_after_ms);
}

static void test_result_names(void **state)
{
	enum ni_result r;

	(void)state;
	for (int i = NI_RESULT_PENDING; i <= NI_RESULT_SKIPPED; i++) {
		assert_int_equal(ni_result_from_name(ni_result_name((enum ni_result)i), &r), 0);
		assert_int_equal(r, i);
	}
	assert_string_equal(ni_result_name(NI_RESULT_KEPT), "kept");
	assert_string_equal(ni_result_name(NI_RESULT_INTERRUPTED), "interrupted");
	assert_string_equal(ni_result_name(NI_RESULT_SKIPPED), "skipped");
	assert_null(ni_result_name((enum ni_result)99));
	assert_int_equal(ni_result_from_name("OK", &r), -EINVAL);
	assert_int_equal(ni_result_from_name("", &r), -EINVAL);
	assert_int_equal(ni_result_from_name(NULL, &r), -EINVAL);
}

static void test_name_ok(void **state)
{
	static const struct {
		const char *name;
		bool recipe, step;
	} t[] = {
		{ "network", true, true },
		{ "A-Z_0.9", true, true },
		{ "a", true, true },
		{ "index", true, true },
		{ "", false, false },
		{ ".hidden", false, true },
		{ "..", false, true },
		{ "a/b", false, true },
		{ "a b", false, true },
		{ "line\nbreak", false, true },
		{ "ünïcödé ✓", false, true },
		{ "\xff", false, false },         /* not UTF-8 */
		{ "\xc0\xaf", false, false },     /* overlong '/' */
		{ "\xed\xa0\x80", false, false }, /* a surrogate */
		{ "\xf4\x90\x80\x80", false, false }, /* past U+10FFFF */
		{ "caf\xc3", false, false },      /* cut in the middle of a character */
	};
	char long_name[NI_STATE_STEP_NAME_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (ni_state_name_ok(t[i].name) != t[i].recipe || ni_state_step_name_ok(t[i].name) != t[i].step)
			fail_msg("name #%zu: want recipe=%d step=%d", i, t[i].recipe, t[i].step);
	}
	assert_false(ni_state_name_ok(NULL));
	assert_false(ni_state_step_name_ok(NULL));
	memset(long_name, 'x', sizeof(long_name));
	long_name[128] = '\0';
	assert_true(ni_state_name_ok(long_name));
	long_name[128] = 'x';
	long_name[129] = '\0';
	assert_false(ni_state_name_ok(long_name));
	memset(long_name, 'x', sizeof(long_name));
	long_name[NI_STATE_STEP_NAME_MAX] = '\0';
	assert_true(ni_state_step_name_ok(long_name));
	long_name[NI_STATE_STEP_NAME_MAX] = 'x';
	long_name[NI_STATE_STEP_NAME_MAX + 1] = '\0';
	assert_false(ni_state_step_name_ok(long_name));
}

/* mkdir -p with 0700 at the end, idempotent, normalized, no "..", symlinks kept inside the root. */
static void test_open_dir(void **state)
{
	struct fx *f = *state;
	struct stat a, b;
	int fd = -1;

	assert_int_equal(fstatat(f->root_fd, "var/lib/nodeinit", &a, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(a.st_mode & 07777, 0700);
	assert_int_equal(fstatat(f->root_fd, "var", &b, 0), 0);
	assert_int_equal(b.st_mode & 0700, 0700);
	assert_int_equal(ni_state_open(f->root_fd, "var//lib/./nodeinit/", 0, &fd, NULL), 0);
	assert_int_equal(fstat(fd, &b), 0);
	assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	close(fd);
	assert_int_equal(ni_state_open(f->root_fd, "/var/../etc", 0, &fd, NULL), -EINVAL);
	assert_int_equal(fd, -1);
	assert_int_equal(ni_state_open(f->root_fd, "", 0, &fd, NULL), -EINVAL);

	/* An absolute link on the "host" means the host's path: it must not reach this machine's /var. */
	assert_int_equal(symlinkat("/var/lib", f->root_fd, "data"), 0);
	assert_int_equal(ni_state_open(f->root_fd, "/data/nodeinit", 0, &fd, NULL), 0);
	assert_int_equal(fstat(fd, &b), 0);
	assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	close(fd);
	assert_int_equal(ni_state_open(f->root_fd, "/data/fresh/one", 0, &fd, NULL), 0);
	close(fd);
	assert_int_equal(fstatat(f->root_fd, "var/lib/fresh/one", &b, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(b.st_mode & 07777, 0700);
}

/* begin/end, load, compact, load: the same records, plus declarations in recipe order. */
static void test_round_trip(void **state)
{
	struct fx *f = *state;
	struct ni_recipe_state st, st2;
	struct ni_journal j;
	struct ni_step_record ok = rec("ip-forward", NI_RESULT_OK, 0, 0);
	struct ni_step_record kept = rec("mirror", NI_RESULT_KEPT, 0, 0);
	struct ni_step_record bad = rec("restart", NI_RESULT_FAILED, 3, 2);
	struct ni_step_decl decls[] = { decl("ip-forward", "boot", fp_a), decl("mirror", "once", fp_a),
					decl("restart", "always", fp_b) };
	char *text;

	/* nothing yet: an empty state named after the recipe */
	assert_int_equal(ni_state_load(f->dir_fd, "network", &st), 0);
	assert_string_equal(st.recipe, "network");
	assert_int_equal(st.n_records + st.n_decls + st.n_corrupt, 0);
	assert_null(ni_recipe_state_find(&st, "ip-forward"));
	ni_recipe_state_free(&st);

	assert_int_equal(ni_journal_open(f->dir_fd, "network", &j), 0);
	run_step(&j, &ok);
	run_step(&j, &kept);
	run_step(&j, &bad);
	ni_journal_close(&j);
	assert_int_equal(j.fd, -1);
	ni_journal_close(&j); /* twice is harmless */

	assert_int_equal(ni_state_load(f->dir_fd, "network", &st), 0);
	assert_int_equal(st.n_records, 3);
	assert_int_equal(st.n_decls, 0);
	assert_int_equal(st.n_corrupt, 0);
	assert_record_equal(ni_recipe_state_find(&st, "ip-forward"), &ok);
	assert_record_equal(ni_recipe_state_find(&st, "mirror"), &kept);
	assert_record_equal(ni_recipe_state_find(&st, "restart"), &bad);

	assert_int_equal(ni_state_compact(f->dir_fd, "network", decls, 3, &st), 0);
	assert_int_equal(ni_state_load(f->dir_fd, "network", &st2), 0);
	assert_int_equal(st2.n_decls, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(st2.decls[i].name, decls[i].name);
		assert_string_equal(st2.decls[i].when, decls[i].when);
		assert_string_equal(st2.decls[i].fingerprint, decls[i].fingerprint);
	}
	assert_int_equal(st2.n_records, 3);
	assert_int_equal(st2.n_corrupt, 0);
	assert_record_equal(ni_recipe_state_find(&st2, "restart"), &bad);
	text = slurp(f->dir_fd, "network.state");
	assert_true(strncmp(text, "nodeinit-state 1 recipe=network\n", 32) == 0);
	assert_int_equal(count_char(text, '\n'), 1 + 3 + 3);
	free(text);
	assert_int_equal(count_temps(f->dir_fd), 0);

	/* appending after a compaction continues the same file */
	ok.started_ms += 1000;
	assert_int_equal(ni_journal_open(f->dir_fd, "network", &j), 0);
	run_step(&j, &ok);
	ni_journal_close(&j);
	ni_recipe_state_free(&st2);
	assert_int_equal(ni_state_load(f->dir_fd, "network", &st2), 0);
	assert_int_equal(st2.n_decls, 3);
	assert_record_equal(ni_recipe_state_find(&st2, "ip-forward"), &ok);
	ni_recipe_state_free(&st2);
	ni_recipe_state_free(&st);
	assert_null(st.recipe);
	ni_recipe_state_free(&st); /* freed state is empty, freeing again is harmless */
}

/* A start line with no end line after it: interrupted, and the failure count survives. */
static void test_interrupted(void **state)
{
	struct fx *f = *state;
	struct ni_step_record failed = rec("flaky", NI_RESULT_FAILED, 1, 2);
	const struct ni_step_record *got;
	struct ni_recipe_state st;
	struct ni_journal j;

	assert_int_equal(ni_journal_open(f->dir_fd, "r", &j), 0);
	run_step(&j, &failed);
	assert_int_equal(ni_journal_begin(&j, "flaky", fp_b, boot1, 1700000099000), 0);
	assert_int_equal(ni_journal_begin(&j, "never-ended", fp_a, "", 1700000100000), 0);
	ni_journal_close(&j);

	assert_int_equal(ni_state_load(f->dir_fd, "r", &st), 0);
	assert_int_equal(st.n_records, 2);
	got = ni_recipe_state_find(&st, "flaky");
	assert_non_null(got);
	assert_int_equal(got->result, NI_RESULT_INTERRUPTED);
	assert_string_equal(got->fingerprint, fp_b);
	assert_int_equal(got->started_ms, 1700000099000);
	assert_int_equal(got->duration_ms, -1);
	assert_int_equal(got->exit_code, -1);
	assert_int_equal(got->failures, 2);
	assert_int_equal(got->retry_after_ms, 0);
	got = ni_recipe_state_find(&st, "never-ended");
	assert_int_equal(got->result, NI_RESULT_INTERRUPTED);
	assert_int_equal(got->failures, 0);
	assert_string_equal(got->boot_id, "");

	/* a compaction keeps it interrupted */
	struct ni_step_decl decls[] = { decl("flaky", "once", fp_b) };
	assert_int_equal(ni_state_compact(f->dir_fd, "r", decls, 1, &st), 0);
	ni_recipe_state_free(&st);
	assert_int_equal(ni_state_load(f->dir_fd, "r", &st), 0);
	assert_int_equal(st.n_records, 1);
	got = ni_recipe_state_find(&st, "flaky");
	assert_int_equal(got->result, NI_RESULT_INTERRUPTED);
	assert_int_equal(got->failures, 2);
	assert_int_equal(got->duration_ms, -1);
	ni_recipe_state_free(&st);
}

/* The journal as a crash leaves it: the state load of a copy truncated to `size` bytes. */
static void load_truncated(int dir_fd, const char *recipe, off_t size, struct ni_recipe_state *st)
{
	char file[64], *text;
	int fd;

	snprintf(file, sizeof(file), "%s.state", recipe);
	text = slurp(dir_fd, file);
	fd = openat(dir_fd, "crash-copy.state", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_true((size_t)size <= strlen(text));
	assert_int_equal(__real_write(fd, text, (size_t)size), size);
	close(fd);
	free(text);
	assert_int_equal(ni_state_load(dir_fd, "crash-copy", st), 0);
}

static void assert_result(const struct ni_recipe_state *st, const char *step, enum ni_result want)
{
	const struct ni_step_record *got = ni_recipe_state_find(st, step);

	assert_non_null(got);
	if (got->result != want)
		fail_msg("step %s: %s, want %s", step, ni_result_name(got->result), ni_result_name(want));
}

/*
 * One durable plan for a pass, instead of a synced start line per step. Crashes at every point (a kill,
 * where the page cache keeps every line, or a power loss, where only what was synced is left) show the
 * steps not finished as interrupted and never as done; a pass that ends closes the plan, and the steps it
 * never reached keep their previous record.
 */
static void test_plan(void **state)
{
	struct fx *f = *state;
	struct ni_step_record done = rec("done", NI_RESULT_OK, 0, 0), flaky = rec("c", NI_RESULT_FAILED, 1, 2);
	struct ni_step_record a = rec("a", NI_RESULT_OK, 0, 0), b = rec("b", NI_RESULT_FAILED, 3, 1);
	struct ni_step_decl plan[] = { decl("a", "once", fp_b), decl("b", "once", fp_b), decl("c", "once", fp_b) };
	struct ni_recipe_state st;
	struct ni_journal j;
	off_t durable, end_a;
	char *text;

	/* an earlier pass: "done" ok, "c" failed twice */
	assert_int_equal(ni_journal_open(f->dir_fd, "r", &j), 0);
	run_step(&j, &done);
	run_step(&j, &flaky);
	ni_journal_close(&j);

	strcpy(a.fingerprint, fp_b);
	strcpy(b.fingerprint, fp_b);
	syncs = 0;
	assert_int_equal(ni_journal_open(f->dir_fd, "r", &j), 0);
	assert_int_equal(ni_journal_plan(&j, plan, 3, boot1, 1700000100000), 0);
	assert_int_equal(syncs, 1);
	durable = synced_size;
	assert_int_equal(ni_journal_plan(&j, plan, 1, boot1, 1), -EINVAL); /* one plan a pass */
	run_step(&j, &a);
	assert_int_equal(ni_journal_begin(&j, "b", fp_b, boot1, 1700000100001), 0);
	assert_int_equal(syncs, 1); /* planned steps start without a sync of their own */

	/* killed while b runs: every line is there; b and c (never reached) are interrupted */
	assert_int_equal(ni_state_load(f->dir_fd, "r", &st), 0);
	assert_int_equal(st.n_corrupt, 0);
	assert_result(&st, "done", NI_RESULT_OK);
	assert_result(&st, "a", NI_RESULT_OK);
	assert_result(&st, "b", NI_RESULT_INTERRUPTED);
	assert_result(&st, "c", NI_RESULT_INTERRUPTED);
	assert_string_equal(ni_recipe_state_find(&st, "c")->fingerprint, fp_b);
	assert_int_equal(ni_recipe_state_find(&st, "c")->failures, 2); /* the failure count stands */
	assert_int_equal(ni_recipe_state_find(&st, "c")->started_ms, 1700000100000);
	ni_recipe_state_free(&st);

	/* power loss at any point after the plan: what was synced, plus any prefix of the rest */
	text = slurp(f->dir_fd, "r.state");
	assert_non_null(strstr(text, "\nend a "));
	end_a = strstr(text, "\nend a ") - text + 1 + (off_t)strcspn(strstr(text, "\nend a ") + 1, "\n");
	for (off_t cut = durable; cut <= (off_t)strlen(text); cut++) {
		load_truncated(f->dir_fd, "r", cut, &st);
		assert_result(&st, "done", NI_RESULT_OK);
		assert_result(&st, "b", NI_RESULT_INTERRUPTED);
		assert_result(&st, "c", NI_RESULT_INTERRUPTED);
		/* a is done only where its whole end line made it to the disk */
		assert_result(&st, "a", cut > end_a ? NI_RESULT_OK : NI_RESULT_INTERRUPTED);
		ni_recipe_state_free(&st);
	}
	free(text);

	/* a step outside the plan, or with another fingerprint, still syncs its own start line */
	assert_int_equal(ni_journal_begin(&j, "other", fp_b, boot1, 1), 0);
	assert_int_equal(syncs, 2);
	assert_int_equal(ni_journal_begin(&j, "a", fp_a, boot1, 1), 0);
	assert_int_equal(syncs, 3);
	strcpy(a.fingerprint, fp_a); /* a's run with fp_a ends: its record is this one now */
	assert_int_equal(ni_journal_end(&j, &a), 0);

	/* b fails, the pass stops: close. c keeps its failed record, b is failed, nothing interrupted */
	assert_int_equal(ni_journal_end(&j, &b), 0);
	ni_journal_close(&j);
	assert_int_equal(syncs, 3);
	assert_int_equal(ni_state_load(f->dir_fd, "r", &st), 0);
	assert_int_equal(st.n_corrupt, 0);
	assert_result(&st, "a", NI_RESULT_OK);
	assert_record_equal(ni_recipe_state_find(&st, "b"), &b);
	assert_record_equal(ni_recipe_state_find(&st, "c"), &flaky);
	assert_result(&st, "other", NI_RESULT_INTERRUPTED);

	/* compaction resolves the plan into records: no plan or close line survives it */
	struct ni_step_decl decls[] = { decl("a", "once", fp_a), decl("b", "once", fp_b), decl("c", "once", fp_b) };
	assert_int_equal(ni_state_compact(f->dir_fd, "r", decls, 3, &st), 0);
	ni_recipe_state_free(&st);
	text = slurp(f->dir_fd, "r.state");
	assert_null(strstr(text, "plan "));
	assert_null(strstr(text, "close"));
	free(text);
	assert_int_equal(ni_state_load(f->dir_fd, "r", &st), 0);
	assert_record_equal(ni_recipe_state_find(&st, "c"), &flaky);
	ni_recipe_state_free(&st);

	/* bad plans never reach the file */
	struct ni_step_decl dup[] = { decl("x", "once", fp_a), decl("x", "once", fp_b) };
	assert_int_equal(ni_journal_open(f->dir_fd, "r", &j), 0);
	assert_int_equal(ni_journal_plan(&j, dup, 2, boot1, 1), -EINVAL);
	dup[1] = decl("", "once", fp_b);
	assert_int_equal(ni_journal_plan(&j, dup, 2, boot1, 1), -EINVAL);
	ni_journal_close(&j);
	text = slurp(f->dir_fd, "r.state");
	assert_null(strstr(text, "plan "));
	free(text);
	assert_int_equal(ni_journal_plan(&j, dup, 1, boot1, 1), -EBADF);
}

/* A final line without '\n' is ignored; the next journal open cuts it so appends stay whole. */
static void test_torn_last_line(void **state)
{
	struct fx *f = *state;
	struct ni_step_record a = rec("a", NI_RESULT_OK, 0, 0), c = rec("c", NI_RESULT_OK, 0, 0);
	struct ni_recipe_state st;
	struct ni_journal j;
	char *text;

	assert_int_equal(ni_journal_open(f->dir_fd, "r", &j), 0);
	run_step(&j, &a);
	ni_journal_close(&j);
	/* looks complete, but a crash cut it before its '\n': a cut number would read as another value */
	put_file(f->dir_fd, "r.state", "end b result=ok fp=aaaa exit=12", O_APPEND);

	assert_int_equal(ni_state_load(f->dir_fd, "r", &st), 0);
	assert_int_equal(st.n_corrupt, 1);
	assert_int_equal(st.n_records, 1);
	assert_null(ni_recipe_state_find(&st, "b"));
	ni_recipe_state_free(&st);

	assert_int_equal(ni_journal_open(f->dir_fd, "r", &j), 0);
	run_step(&j, &c);
	ni_journal_close(&j);
	assert_int_equal(ni_state_load(f->dir_fd, "r", &st), 0);
	assert_int_equal(st.n_corrupt, 0);
	assert_int_equal(st.n_records, 2);
	assert_null(ni_recipe_state_find(&st, "b"));
	assert_record_equal(ni_recipe_state_find(&st, "c"), &c);
	ni_recipe_state_free(&st);
	text = slurp(f->dir_fd, "r.state");
	assert_null(strstr(text, "end b"));
	free(text);
}

/* A failed append (short write, then ENOSPC) is cut off again: no torn line, no glued line. */
static void test_failed_append(void **state)
{
	struct fx *f = *state;
	struct ni_step_record a = rec("a", NI_RESULT_OK, 0, 0), b = rec("b", NI_RESULT_OK, 0, 0);
	struct ni_recipe_state st;
	struct ni_journal j;

	assert_int_equal(ni_journal_open(f->dir_fd, "r", &j), 0);
	assert_int_equal(ni_journal_begin(&j, "a", fp_a, boot1, 1), 0);
	fake_write = true;
	will_return(__wrap_write, 10);
	will_return(__wrap_write, -ENOSPC);
	assert_int_equal(ni_journal_end(&j, &a), -ENOSPC);
	will_return(__wrap_write, -EINTR); /* retried */
	will_return(__wrap_write, 7);      /* a short write goes on with the rest */
	will_return(__wrap_write, 0);
	assert_int_equal(ni_journal_begin(&j, "b", fp_a, boot1, b.started_ms), 0);
	fake_write = false;
	assert_int_equal(ni_journal_end(&j, &b), 0);
	ni_journal_close(&j);

	assert_int_equal(ni_state_load(f->dir_fd, "r", &st), 0);
	assert_int_equal(st.n_corrupt, 0);
	assert_int_equal(ni_recipe_state_find(&st, "a")->result, NI_RESULT_INTERRUPTED);
	assert_record_equal(ni_recipe_state_find(&st, "b"), &b);
	ni_recipe_state_free(&st);

	/* bad arguments never reach the file */
	assert_int_equal(ni_journal_open(f->dir_fd, "r", &j), 0);
	assert_int_equal(ni_journal_begin(&j, "", fp_a, boot1, 1), -EINVAL);
	assert_int_equal(ni_journal_begin(&j, "a", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", boot1, 1),
			 -EINVAL);
	assert_int_equal(ni_journal_begin(&j, "a", fp_a, NULL, 1), -EINVAL);
	b.result = (enum ni_result)42;
	assert_int_equal(ni_journal_end(&j, &b), -EINVAL);
	ni_journal_close(&j);
	assert_int_equal(ni_journal_begin(&j, "a", fp_a, boot1, 1), -EBADF);
}

/* Odd names survive journal and compaction, and never break a line or a token. */
static void test_escaping(void **state)
{
	static const char *const names[] = {
		"with space", "a=b", "100%", "%41", "line\nbreak", "tab\there", "ünïcödé ✓ 日本", "del\x7f", "end",
		" lead and trail ",
	};
	const size_t n = sizeof(names) / sizeof(names[0]);
	struct ni_step_decl decls[sizeof(names) / sizeof(names[0])];
	struct ni_recipe_state st;
	struct fx *f = *state;
	struct ni_journal j;
	char *text;

	assert_int_equal(ni_journal_open(f->dir_fd, "odd", &j), 0);
	for (size_t i = 0; i < n; i++) {
		struct ni_step_record r = rec(names[i], NI_RESULT_OK, (int)i, 0);

		strcpy(r.boot_id, "boot id with = and %");
		run_step(&j, &r);
		decls[i] = decl(names[i], "once", fp_b);
	}
	ni_journal_close(&j);
	for (int pass = 0; pass < 2; pass++) {
		assert_int_equal(ni_state_load(f->dir_fd, "odd", &st), 0);
		assert_int_equal(st.n_corrupt, 0);
		assert_int_equal(st.n_records, n);
		for (size_t i = 0; i < n; i++) {
			const struct ni_step_record *r = ni_recipe_state_find(&st, names[i]);

			assert_non_null(r);
			assert_int_equal(r->exit_code, (int)i);
			assert_string_equal(r->boot_id, "boot id with = and %");
		}
		if (pass == 0) {
			assert_int_equal(ni_state_compact(f->dir_fd, "odd", decls, n, &st), 0);
		} else {
			assert_int_equal(st.n_decls, n);
			for (size_t i = 0; i < n; i++)
				assert_string_equal(st.decls[i].name, names[i]);
		}
		ni_recipe_state_free(&st);
	}
	text = slurp(f->dir_fd, "odd.state");
	assert_int_equal(count_char(text, '\n'), 1 + 2 * n);
	assert_non_null(strstr(text, "\ndecl with%20space when=once fp="));
	assert_non_null(strstr(text, "\ndecl a%3Db "));
	assert_non_null(strstr(text, "\ndecl 100%25 "));
	assert_non_null(strstr(text, "\ndecl line%0Abreak "));
	assert_non_null(strstr(text, "\ndecl ünïcödé%20✓%20日本 ")); /* UTF-8 stays readable */
	assert_non_null(strstr(text, " boot=boot%20id%20with%20%3D%20and%20%25 "));
	free(text);
}

/* The parser's verdict on hand-made journals: forward compatible, never failing on a bad line. */
static void test_parse_table(void **state)
{
#define H "nodeinit-state 1 recipe=r\n"
	static const struct {
		const char *buf;
		int rc;
		size_t n_records, n_decls, n_corrupt;
	} t[] = {
		{ "", 0, 0, 0, 0 },
		{ H, 0, 0, 0, 0 },
		{ "nodeinit-state 1", 0, 0, 0, 0 },
		{ H "end a result=ok fp=x future=1 later=%zz\n", 0, 1, 0, 0 }, /* unknown keys are not even decoded */
		{ H "end a result=ok when=%zz\n", 0, 1, 0, 0 },              /* when= is a decl key: unknown here */
		{ H "bogus a x=1\n", 0, 0, 0, 1 },                           /* unknown kind */
		{ H "end a fp=x\n", 0, 0, 0, 1 },                            /* no result */
		{ H "end a result=maybe\n", 0, 0, 0, 1 },
		{ H "end a result=ok exit=abc\n", 0, 0, 0, 1 },
		{ H "end a result=ok exit=99999999999\n", 0, 0, 0, 1 },
		{ H "end a result=ok started_ms=99999999999999999999\n", 0, 0, 0, 1 },
		{ H "end a result=ok failures=-1\n", 0, 0, 0, 1 },
		{ H "end a result=ok exit=%201\n", 0, 0, 0, 1 },             /* " 1" is not a number */
		{ H "end a%2 result=ok\n", 0, 0, 0, 1 },                     /* cut escape */
		{ H "end a%00 result=ok\n", 0, 0, 0, 1 },                    /* NUL */
		{ H "end \xff result=ok\n", 0, 0, 0, 1 },                    /* not UTF-8 */
		{ H "end a\tb result=ok\n", 0, 0, 0, 1 },                    /* raw control byte */
		{ H "end a result=ok naked\n", 0, 0, 0, 1 },                 /* a token without '=' */
		{ H "end a result=ok =x\n", 0, 0, 0, 1 },                    /* no key */
		{ H "end a result=ok fp=a=b\n", 0, 0, 0, 1 },                /* raw '=' in a value */
		{ H "end a result=ok fp=00000000000000000000000000000000000000000000000000000000000000000\n", 0, 0, 0, 1 },
		{ H "end\n", 0, 0, 0, 1 },
		{ H "start a\n", 0, 1, 0, 0 },
		{ H "\n\n", 0, 0, 0, 0 },                                   /* blank lines are not damage */
		{ H "end a result=ok\nend a result=ok fp=", 0, 1, 0, 1 },   /* torn */
		{ H "decl a when=boot fp=ab\ndecl a when=always fp=cd\ndecl b\n", 0, 0, 2, 0 },
		{ H "decl a when=sometimes\n", 0, 0, 0, 1 },                /* longer than when[8] */
		{ H "decl a when=\n", 0, 0, 0, 1 },
		{ "nodeinit-state 2\nend a result=ok\n", -EINVAL, 0, 0, 0 },
		{ "nodeinit-state\n", -EINVAL, 0, 0, 0 },
		{ "hello\n", -EINVAL, 0, 0, 0 },
		{ "\n" H, -EINVAL, 0, 0, 0 },
	};
	struct ni_recipe_state st;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int rc = ni_state_parse(t[i].buf, strlen(t[i].buf), &st);

		if (rc != t[i].rc || st.n_records != t[i].n_records || st.n_decls != t[i].n_decls ||
		    st.n_corrupt != t[i].n_corrupt)
			fail_msg("case #%zu: rc %d records %zu decls %zu corrupt %zu", i, rc, st.n_records, st.n_decls,
				 st.n_corrupt);
		if (rc == 0)
			assert_non_null(st.recipe);
		ni_recipe_state_free(&st);
	}

	/* defaults, last declaration wins in place, the header's recipe name */
	const char *s = H "start a\ndecl x when=boot fp=ab\ndecl y\ndecl x when=always fp=cd\n";
	assert_int_equal(ni_state_parse(s, strlen(s), &st), 0);
	assert_string_equal(st.recipe, "r");
	assert_int_equal(st.records[0].result, NI_RESULT_INTERRUPTED);
	assert_int_equal(st.records[0].duration_ms, -1);
	assert_int_equal(st.records[0].exit_code, -1);
	assert_string_equal(st.decls[0].name, "x");
	assert_string_equal(st.decls[0].when, "always");
	assert_string_equal(st.decls[0].fingerprint, "cd");
	assert_string_equal(st.decls[1].when, "once");
	ni_recipe_state_free(&st);
	s = "nodeinit-state 1 recipe=..%2Fetc\n";
	assert_int_equal(ni_state_parse(s, strlen(s), &st), 0);
	assert_string_equal(st.recipe, "");
	ni_recipe_state_free(&st);
#undef H
}

/* Records of steps no longer declared are dropped; no temp file is left; unchanged means untouched. */
static void test_compact(void **state)
{
	struct fx *f = *state;
	struct ni_step_record a = rec("a", NI_RESULT_OK, 0, 0), b = rec("b", NI_RESULT_FAILED, 1, 1),
			      c = rec("c", NI_RESULT_KEPT, 0, 0);
	struct ni_step_decl decls[] = { decl("c", "always", fp_b), decl("new", "once", fp_b), decl("a", "boot", fp_a) };
	struct ni_recipe_state st;
	struct ni_journal j;
	struct stat s1, s2;

	assert_int_equal(ni_journal_open(f->dir_fd, "r", &j), 0);
	run_step(&j, &a);
	run_step(&j, &b);
	run_step(&j, &c);
	ni_journal_close(&j);
	assert_int_equal(ni_state_load(f->dir_fd, "r", &st), 0);
	assert_int_equal(ni_state_compact(f->dir_fd, "r", decls, 3, &st), 0);
	ni_recipe_state_free(&st);

	assert_int_equal(ni_state_load(f->dir_fd, "r", &st), 0);
	assert_int_equal(st.n_decls, 3);
	assert_string_equal(st.decls[0].name, "c");
	assert_string_equal(st.decls[1].name, "new");
	assert_string_equal(st.decls[2].name, "a");
	assert_int_equal(st.n_records, 2);
	assert_null(ni_recipe_state_find(&st, "b"));
	assert_null(ni_recipe_state_find(&st, "new"));
	assert_record_equal(ni_recipe_state_find(&st, "c"), &c);
	assert_int_equal(count_temps(f->dir_fd), 0);

	/* the same content again: not rewritten (same inode), so an idle pass writes nothing */
	assert_int_equal(fstatat(f->dir_fd, "r.state", &s1, 0), 0);
	assert_int_equal(ni_state_compact(f->dir_fd, "r", decls, 3, &st), 0);
	assert_int_equal(fstatat(f->dir_fd, "r.state", &s2, 0), 0);
	assert_int_equal(s1.st_ino, s2.st_ino);
	assert_int_equal(s2.st_mode & 07777, 0600);

	/* no records at all, or bad input */
	assert_int_equal(ni_state_compact(f->dir_fd, "r", decls, 3, NULL), 0);
	struct ni_step_decl dup[] = { decl("a", "once", fp_a), decl("a", "boot", fp_a) };
	assert_int_equal(ni_state_compact(f->dir_fd, "r", dup, 2, &st), -EINVAL);
	struct ni_step_decl nowhen[] = { decl("a", "", fp_a) };
	assert_int_equal(ni_state_compact(f->dir_fd, "r", nowhen, 1, &st), -EINVAL);
	assert_int_equal(ni_state_compact(f->dir_fd, "../r", decls, 3, &st), -EINVAL);
	assert_int_equal(ni_state_compact(f->dir_fd, "r", NULL, 0, NULL), 0);
	ni_recipe_state_free(&st);
	assert_int_equal(ni_state_load(f->dir_fd, "r", &st), 0);
	assert_int_equal(st.n_decls + st.n_records, 0);
	ni_recipe_state_free(&st);
	assert_int_equal(count_temps(f->dir_fd), 0);
}

/* One pass over prior records, compacted the slow way (close, load, compact) or from memory. */
static char *pass_then_compact(struct fx *f, bool from_memory)
{
	struct ni_step_record a = rec("a", NI_RESULT_OK, 0, 0), b = rec("b", NI_RESULT_FAILED, 1, 2),
			      c = rec("c", NI_RESULT_FAILED, 1, 3), z = rec("z", NI_RESULT_OK, 0, 0),
			      b2 = rec("b", NI_RESULT_OK, 0, 0), e2 = rec("e", NI_RESULT_FAILED, 4, 1);
	struct ni_step_decl decls[] = { decl("a", "once", fp_a), decl("b", "once", fp_a), decl("c", "boot", fp_a),
					decl("d", "always", fp_b), decl("e", "once", fp_a), decl("n", "once", fp_b) };
	struct ni_step_decl planned[] = { decls[1], decls[2], decls[3], decls[4], decls[5] };
	struct ni_recipe_state st;
	struct ni_journal j;
	char *out;

	unlinkat(f->dir_fd, "r.state", 0);
	assert_int_equal(ni_journal_open(f->dir_fd, "r", &j), 0);
	run_step(&j, &a);
	run_step(&j, &b);
	run_step(&j, &c);
	run_step(&j, &z);
	ni_journal_close(&j);
	assert_int_equal(ni_state_load(f->dir_fd, "r", &st), 0);
	assert_int_equal(ni_state_compact(f->dir_fd, "r", decls, 6, &st), 0);
	ni_recipe_state_free(&st);

	/* the pass: b runs and passes, c starts and is cut short, d is never reached, e fails anew,
	 * n (no record before) starts and is cut short */
	assert_int_equal(ni_state_load(f->dir_fd, "r", &st), 0);
	assert_int_equal(ni_journal_open(f->dir_fd, "r", &j), 0);
	assert_int_equal(ni_journal_plan(&j, planned, 5, boot1, 1700000001000), 0);
	b2.started_ms = 1700000001000;
	run_step(&j, &b2);
	assert_int_equal(ni_journal_begin(&j, "c", fp_b, boot1, 1700000002000), 0);
	run_step(&j, &e2);
	assert_int_equal(ni_journal_begin(&j, "n", fp_b, boot1, 1700000003000), 0);
	if (from_memory) {
		assert_int_equal(ni_journal_close_compact(&j, f->dir_fd, "r", decls, 6, &st), 0);
	} else {
		ni_journal_close(&j);
		ni_recipe_state_free(&st);
		assert_int_equal(ni_state_load(f->dir_fd, "r", &st), 0);
		assert_int_equal(ni_state_compact(f->dir_fd, "r", decls, 6, &st), 0);
	}
	ni_recipe_state_free(&st);
	out = slurp(f->dir_fd, "r.state");
	return out;
}

/* Compaction from memory writes the bytes a re-read of the journal would give. */
static void test_close_compact(void **state)
{
	struct fx *f = *state;
	char *slow = pass_then_compact(f, false), *fast = pass_then_compact(f, true);
	struct ni_recipe_state st;

	assert_string_equal(fast, slow);
	assert_non_null(strstr(fast, "c"));
	assert_int_equal(ni_state_load(f->dir_fd, "r", &st), 0);
	assert_int_equal(ni_recipe_state_find(&st, "c")->result, NI_RESULT_INTERRUPTED);
	assert_int_equal(ni_recipe_state_find(&st, "c")->failures, 3);
	assert_int_equal(ni_recipe_state_find(&st, "n")->result, NI_RESULT_INTERRUPTED);
	assert_int_equal(ni_recipe_state_find(&st, "n")->failures, 0);
	assert_int_equal(ni_recipe_state_find(&st, "b")->result, NI_RESULT_OK);
	assert_null(ni_recipe_state_find(&st, "d"));
	assert_null(ni_recipe_state_find(&st, "z"));
	ni_recipe_state_free(&st);
	free(slow);
	free(fast);
	assert_int_equal(count_temps(f->dir_fd), 0);
}

/* A failing write or rename leaves the old file whole and no temp file behind. */
static void test_atomic_failure(void **state)
{
	struct fx *f = *state;
	struct ni_step_decl old_decls[] = { decl("a", "once", fp_a) };
	struct ni_step_decl new_decls[] = { decl("a", "once", fp_b), decl("b", "boot", fp_b) };
	char *before, *after;

	assert_int_equal(ni_state_compact(f->dir_fd, "r", old_decls, 1, NULL), 0);
	before = slurp(f->dir_fd, "r.state");

	fake_write = true;
	will_return(__wrap_write, -ENOSPC);
	assert_int_equal(ni_state_compact(f->dir_fd, "r", new_decls, 2, NULL), -ENOSPC);
	will_return(__wrap_write, 20);
	will_return(__wrap_write, -EIO);
	assert_int_equal(ni_state_compact(f->dir_fd, "r", new_decls, 2, NULL), -EIO);
	fake_write = false;
	after = slurp(f->dir_fd, "r.state");
	assert_string_equal(before, after);
	free(after);
	assert_int_equal(count_temps(f->dir_fd), 0);

	fake_renameat = true;
	will_return(__wrap_renameat, -EIO);
	assert_int_equal(ni_state_compact(f->dir_fd, "r", new_decls, 2, NULL), -EIO);
	fake_renameat = false;
	after = slurp(f->dir_fd, "r.state");
	assert_string_equal(before, after);
	free(after);
	assert_int_equal(count_temps(f->dir_fd), 0);

	/* index and legacy share the same path */
	char *recipes[] = { (char *)"a" };
	fake_renameat = true;
	will_return(__wrap_renameat, -EXDEV);
	assert_int_equal(ni_state_write_index(f->dir_fd, recipes, 1), -EXDEV);
	fake_renameat = false;
	assert_int_equal(faccessat(f->dir_fd, "index", F_OK, 0), -1);
	assert_int_equal(count_temps(f->dir_fd), 0);

	assert_int_equal(ni_state_compact(f->dir_fd, "r", new_decls, 2, NULL), 0);
	after = slurp(f->dir_fd, "r.state");
	assert_string_not_equal(before, after);
	assert_non_null(strstr(after, "\ndecl b when=boot"));
	free(after);
	free(before);
}

/* Our files are never followed through a symlink, and a foreign file is never appended to. */
static void test_foreign_files(void **state)
{
	struct fx *f = *state;
	struct ni_recipe_state st;
	struct ni_journal j;
	char *text;

	assert_int_equal(symlinkat("/etc/passwd", f->dir_fd, "link.state"), 0);
	assert_int_equal(ni_state_load(f->dir_fd, "link", &st), -ELOOP);
	assert_int_equal(ni_journal_open(f->dir_fd, "link", &j), -ELOOP);
	assert_int_equal(j.fd, -1);

	put_file(f->dir_fd, "other.state", "hello\n", 0);
	assert_int_equal(ni_state_load(f->dir_fd, "other", &st), -EBADMSG); /* there, but not ours */
	assert_int_equal(ni_journal_open(f->dir_fd, "other", &j), -EINVAL);
	text = slurp(f->dir_fd, "other.state");
	assert_string_equal(text, "hello\n");
	free(text);

	assert_int_equal(mkdirat(f->dir_fd, "dir.state", 0700), 0);
	assert_int_equal(ni_state_load(f->dir_fd, "dir", &st), -EISDIR);

	/* an empty file (say, touched by hand) becomes a journal */
	put_file(f->dir_fd, "empty.state", "", 0);
	assert_int_equal(ni_journal_open(f->dir_fd, "empty", &j), 0);
	assert_int_equal(ni_journal_begin(&j, "s", fp_a, boot1, 5), 0);
	ni_journal_close(&j);
	assert_int_equal(ni_state_load(f->dir_fd, "empty", &st), 0);
	assert_int_equal(st.n_records, 1);
	assert_int_equal(st.n_corrupt, 0);
	ni_recipe_state_free(&st);

	assert_int_equal(ni_state_load(f->dir_fd, "bad/name", &st), -EINVAL);
	assert_int_equal(ni_journal_open(f->dir_fd, ".hidden", &j), -EINVAL);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A child tries the lock without waiting; its exit code says what it got (0: held, 1: free, 2: error). */
static int child_try_lock(int dir_fd)
{
	pid_t pid = fork();
	int status, fd;

	assert_true(pid >= 0);
	if (pid == 0) {
		int r = ni_state_lock(dir_fd, false, -1, &fd);
		_exit(r == -EWOULDBLOCK ? 0 : r == 0 ? 1 : 2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_lock_contended(void **state)
{
	struct fx *f = *state;
	int held;

	assert_int_equal(child_try_lock(f->dir_fd), 1);
	assert_int_equal(ni_state_lock(f->dir_fd, false, -1, &held), 0);
	assert_int_equal(child_try_lock(f->dir_fd), 0);
	close(held);
	assert_int_equal(child_try_lock(f->dir_fd), 1);
}

/* A waiting lock gives up with -ECANCELED once the cancel fd turns readable, not before. */
static void test_lock_cancel(void **state)
{
	struct fx *f = *state;
	int held, fd = -1, pfd[2];
	int64_t t0;
	pid_t pid;

	assert_int_equal(ni_state_lock(f->dir_fd, false, -1, &held), 0);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		usleep(200 * 1000);
		_exit(write(pfd[1], "x", 1) == 1 ? 0 : 1);
	}
	t0 = now_ms();
	/* a second open file description in this very process contends like another instance */
	assert_int_equal(ni_state_lock(f->dir_fd, true, pfd[0], &fd), -ECANCELED);
	assert_true(now_ms() - t0 >= 150);
	assert_int_equal(fd, -1);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	close(pfd[0]);
	close(pfd[1]);
	close(held);
}

/* A waiting lock is granted once the holder goes away, with or without a cancel fd. */
static void test_lock_wait(void **state)
{
	struct fx *f = *state;
	int ready[2], never[2];

	assert_int_equal(pipe2(never, O_CLOEXEC), 0);
	for (int with_cancel = 0; with_cancel < 2; with_cancel++) {
		int fd = -1;
		int64_t t0;
		char c;
		pid_t pid;

		assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			int held;

			if (ni_state_lock(f->dir_fd, false, -1, &held) < 0 || write(ready[1], "x", 1) != 1)
				_exit(1);
			usleep(200 * 1000);
			_exit(0); /* exiting releases the lock */
		}
		assert_int_equal(read(ready[0], &c, 1), 1);
		t0 = now_ms();
		assert_int_equal(ni_state_lock(f->dir_fd, true, with_cancel ? never[0] : -1, &fd), 0);
		assert_true(now_ms() - t0 >= 100);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(waitpid(pid, NULL, 0), pid);
		close(ready[0]);
		close(ready[1]);
	}
	close(never[0]);
	close(never[1]);
}

static void test_index(void **state)
{
	struct fx *f = *state;
	char *want[] = { (char *)"z-last", (char *)"a.first", (char *)"network" };
	char *bad[] = { (char *)"ok", (char *)"not/ok" };
	char **got;
	size_t n;

	assert_int_equal(ni_state_read_index(f->dir_fd, &got, &n), 0);
	assert_int_equal(n, 0);
	ni_strv_free(got, n);

	assert_int_equal(ni_state_write_index(f->dir_fd, want, 3), 0);
	assert_int_equal(ni_state_read_index(f->dir_fd, &got, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(got[i], want[i]);
	ni_strv_free(got, n);

	assert_int_equal(ni_state_write_index(f->dir_fd, bad, 2), -EINVAL);
	assert_int_equal(ni_state_write_index(f->dir_fd, want, 1), 0);
	assert_int_equal(ni_state_read_index(f->dir_fd, &got, &n), 0);
	assert_int_equal(n, 1);
	ni_strv_free(got, n);
	assert_int_equal(ni_state_write_index(f->dir_fd, NULL, 0), 0);
	assert_int_equal(ni_state_read_index(f->dir_fd, &got, &n), 0);
	assert_int_equal(n, 0);
	ni_strv_free(got, n);
	assert_int_equal(count_temps(f->dir_fd), 0);

	assert_int_equal(unlinkat(f->dir_fd, "index", 0), 0);
	put_file(f->dir_fd, "index", "network\n", 0);
	assert_int_equal(ni_state_read_index(f->dir_fd, &got, &n), -EINVAL);
}

static void test_legacy(void **state)
{
	struct fx *f = *state;
	struct ni_legacy_record want = {
		.checkpoint = (char *)"/tmp/startup-script.kubernetes.io_9a312c9d8b035b8c2da417b451f8f92d",
		.done = true,
		.exit_code = 0,
		.duration_ms = 1234,
		.finished_ms = 1700000000000,
	};
	struct ni_legacy_record got;

	assert_int_equal(ni_state_read_legacy(f->dir_fd, &got), -ENOENT);
	assert_null(got.checkpoint);
	assert_int_equal(ni_state_write_legacy(f->dir_fd, &want), 0);
	assert_int_equal(ni_state_read_legacy(f->dir_fd, &got), 0);
	assert_string_equal(got.checkpoint, want.checkpoint);
	assert_true(got.done);
	assert_int_equal(got.exit_code, 0);
	assert_int_equal(got.duration_ms, 1234);
	assert_int_equal(got.finished_ms, 1700000000000);
	ni_legacy_record_free(&got);
	assert_null(got.checkpoint);

	want.checkpoint = (char *)"/tmp/odd path=with%escapes\n";
	want.done = false;
	want.exit_code = -1;
	want.duration_ms = 5;
	assert_int_equal(ni_state_write_legacy(f->dir_fd, &want), 0);
	assert_int_equal(ni_state_read_legacy(f->dir_fd, &got), 0);
	assert_string_equal(got.checkpoint, want.checkpoint);
	assert_false(got.done);
	assert_int_equal(got.exit_code, -1);
	ni_legacy_record_free(&got);
	assert_int_equal(count_temps(f->dir_fd), 0);

	want.checkpoint = (char *)"";
	assert_int_equal(ni_state_write_legacy(f->dir_fd, &want), -EINVAL);
	assert_int_equal(unlinkat(f->dir_fd, "legacy", 0), 0);
	put_file(f->dir_fd, "legacy", "nodeinit-legacy 1\nlegacy done=true\n", 0);
	assert_int_equal(ni_state_read_legacy(f->dir_fd, &got), -EINVAL); /* no checkpoint */
	assert_int_equal(unlinkat(f->dir_fd, "legacy", 0), 0);
	put_file(f->dir_fd, "legacy", "nodeinit-legacy 1\nlegacy checkpoint=/x done=true future=1\n", 0);
	assert_int_equal(ni_state_read_legacy(f->dir_fd, &got), 0);
	assert_string_equal(got.checkpoint, "/x");
	assert_int_equal(got.exit_code, -1);
	ni_legacy_record_free(&got);
}

/* Many steps: parse and compact stay linear (a hash index, not a scan per line). */
static void test_many_steps(void **state)
{
	enum { N = 5000 };
	struct fx *f = *state;
	struct ni_step_decl *decls = calloc(N, sizeof(*decls));
	char (*names)[32] = calloc(N, sizeof(*names));
	struct ni_recipe_state st;
	struct ni_journal j;
	int64_t t0 = now_ms();

	assert_non_null(decls);
	assert_non_null(names);
	assert_int_equal(ni_journal_open(f->dir_fd, "big", &j), 0);
	for (int i = 0; i < N; i++) {
		struct ni_step_record r;

		snprintf(names[i], sizeof(names[i]), "step-%05d", i);
		r = rec(names[i], NI_RESULT_OK, 0, 0);
		assert_int_equal(ni_journal_end(&j, &r), 0); /* end lines only: no fsync each */
		decls[i] = decl(names[i], "once", fp_a);
	}
	ni_journal_close(&j);
	assert_int_equal(ni_state_load(f->dir_fd, "big", &st), 0);
	assert_int_equal(st.n_records, N);
	assert_int_equal(ni_state_compact(f->dir_fd, "big", decls, N, &st), 0);
	ni_recipe_state_free(&st);
	assert_int_equal(ni_state_load(f->dir_fd, "big", &st), 0);
	assert_int_equal(st.n_decls, N);
	assert_int_equal(st.n_records, N);
	assert_string_equal(st.records[N - 1].name, "step-04999");
	ni_recipe_state_free(&st);
	print_message("%d steps: append, load, compact, load in %lld ms\n", N, (long long)(now_ms() - t0));
	free(decls);
	free(names);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_result_names),
		cmocka_unit_test(test_name_ok),
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test_setup_teardown(test_open_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_last_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_atomic_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_contended, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_compact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_legacy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_steps, setup, teardown),
	};
	char exe[PATH_MAX];
	ssize_t n;

	/* <build>/unit/test_state → <build>/t/unit-state */
	(void)argc;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		snprintf(exe, sizeof(exe), "%s", argv[0]);
	} else
		exe[n] = '\0';
	snprintf(base, sizeof(base), "%s/t", dirname(dirname(exe)));
	mkdir(base, 0755);
	strncat(base, "/unit-state", sizeof(base) - strlen(base) - 1);
	rm_rf(base);
	if (mkdir(base, 0755) < 0) {
		perror(base);
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
