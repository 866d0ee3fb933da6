/* statedir.c and journal.c: the state dir's trust rules, the read-only open, and a journal that is
 * there but not ours (told from a missing one, then set aside). Runs as root: test dirs are chowned to
 * 65534 to play the other user. */
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
#include <unistd.h>

#include "state.h"
#include "util.h"
#include "unit.h"

#define NOBODY 65534

static char base[PATH_MAX];

struct fx {
	int root_fd; /* the fake host's / */
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
	assert_int_equal(chmod(path, 0755), 0); /* whatever the umask */
	f->root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->root_fd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	close(f->root_fd);
	free(f);
	return 0;
}

/* mkdir -p below the fake root, each directory made with mode, then chmod'ed to it (umask aside). */
static void mkdirs(int root_fd, const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdirat(root_fd, buf, mode) == 0)
				assert_int_equal(fchmodat(root_fd, buf, mode, 0), 0);
			else
				assert_int_equal(errno, EEXIST);
			*p = c;
			if (!c)
				break;
		}
	}
}

static void put_file(int dir_fd, const char *name, const char *content)
{
	int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

/* Opens (fresh: flags 0) and expects a refusal naming path, uid and a rule containing rule_word. */
static void assert_refused(int root_fd, const char *dir, unsigned flags, const char *path, uid_t uid,
			   const char *rule_word)
{
	struct ni_state_refusal why = { 0 };
	int fd = 123;

	assert_int_equal(ni_state_open(root_fd, dir, flags, &fd, &why), -ENOLINK);
	assert_int_equal(fd, -1);
	assert_string_equal(why.path, path);
	assert_int_equal(why.uid, uid);
	assert_non_null(why.rule);
	if (!strstr(why.rule, rule_word))
		fail_msg("rule \"%s\" does not say \"%s\"", why.rule, rule_word);
	/* NULL for the details is fine too */
	assert_int_equal(ni_state_open(root_fd, dir, flags, &fd, NULL), -ENOLINK);
}

static void assert_opens(int root_fd, const char *dir, unsigned flags)
{
	int fd = -1;

	assert_int_equal(ni_state_open(root_fd, dir, flags, &fd, NULL), 0);
	assert_true(fd >= 0);
	close(fd);
}

/* plan and status: a missing state dir is "nothing recorded", and they do not make it. */
static void test_read_only(void **state)
{
	struct fx *f = *state;
	struct stat st;
	int fd = 123;

	assert_int_equal(ni_state_open(f->root_fd, "/var/lib/nodeinit", NI_STATE_OPEN_READ_ONLY, &fd, NULL), -ENOENT);
	assert_int_equal(fd, -1);
	assert_int_equal(fstatat(f->root_fd, "var", &st, 0), -1);
	assert_int_equal(errno, ENOENT);

	assert_opens(f->root_fd, "/var/lib/nodeinit", 0);
	assert_int_equal(fstatat(f->root_fd, "var/lib/nodeinit", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(st.st_uid, 0);
	assert_opens(f->root_fd, "/var/lib/nodeinit", NI_STATE_OPEN_READ_ONLY);
}

/* The state dir or a parent owned by another user: refused, read-only or not, naming the culprit. */
static void test_owner(void **state)
{
	struct fx *f = *state;
	struct stat st;

	mkdirs(f->root_fd, "var/lib/nodeinit", 0700);
	assert_int_equal(fchownat(f->root_fd, "var/lib/nodeinit", NOBODY, NOBODY, 0), 0);
	assert_refused(f->root_fd, "/var/lib/nodeinit", 0, "/var/lib/nodeinit", NOBODY, "owned by root");
	assert_refused(f->root_fd, "/var/lib/nodeinit", NI_STATE_OPEN_READ_ONLY, "/var/lib/nodeinit", NOBODY,
		       "owned by root");
	assert_int_equal(fchownat(f->root_fd, "var/lib/nodeinit", 0, 0, 0), 0);
	assert_opens(f->root_fd, "/var/lib/nodeinit", 0);

	/* a parent, even a 0755 one: its owner can rename the state dir away and put another there */
	assert_int_equal(fchmodat(f->root_fd, "var/lib", 0755, 0), 0);
	assert_int_equal(fchownat(f->root_fd, "var/lib", NOBODY, NOBODY, 0), 0);
	assert_refused(f->root_fd, "var/lib/nodeinit", 0, "/var/lib", NOBODY, "owned by root");
	/* a missing state dir below such a parent is not made either */
	assert_refused(f->root_fd, "var/lib/other", 0, "/var/lib", NOBODY, "owned by root");
	assert_int_equal(fstatat(f->root_fd, "var/lib/other", &st, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(errno, ENOENT);
}

/* Group or other write on the state dir or a parent: refused; a root-owned sticky parent is fine. */
static void test_mode(void **state)
{
	struct fx *f = *state;
	struct stat st;

	mkdirs(f->root_fd, "srv/nodeinit", 0755);
	assert_opens(f->root_fd, "/srv/nodeinit", 0); /* 0755: others may read, not write */
	assert_int_equal(fchmodat(f->root_fd, "srv/nodeinit", 0777, 0), 0);
	assert_refused(f->root_fd, "/srv/nodeinit", 0, "/srv/nodeinit", 0, "not be writable");
	assert_int_equal(fchmodat(f->root_fd, "srv/nodeinit", 0770, 0), 0);
	assert_refused(f->root_fd, "/srv/nodeinit", NI_STATE_OPEN_READ_ONLY, "/srv/nodeinit", 0, "not be writable");
	/* sticky helps a parent only, never the state dir itself */
	assert_int_equal(fchmodat(f->root_fd, "srv/nodeinit", 01777, 0), 0);
	assert_refused(f->root_fd, "/srv/nodeinit", 0, "/srv/nodeinit", 0, "not be writable");
	assert_int_equal(fchmodat(f->root_fd, "srv/nodeinit", 0700, 0), 0);
	assert_int_equal(fchmodat(f->root_fd, "srv", 0777, 0), 0);
	assert_refused(f->root_fd, "/srv/nodeinit", 0, "/srv", 0, "not be writable");

	/* /tmp, 1777 and root's: the state dir below it is made 0700 and trusted */
	mkdirs(f->root_fd, "tmp", 01777);
	assert_opens(f->root_fd, "/tmp/nodeinit", 0);
	assert_int_equal(fstatat(f->root_fd, "tmp/nodeinit", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	/* ... but not when another user owns the sticky dir */
	assert_int_equal(fchownat(f->root_fd, "tmp", NOBODY, NOBODY, 0), 0);
	assert_refused(f->root_fd, "/tmp/nodeinit", 0, "/tmp", NOBODY, "owned by root");
	assert_int_equal(fchownat(f->root_fd, "tmp", 0, 0, 0), 0);
	/* ... and not pre-made by another user in it */
	mkdirs(f->root_fd, "tmp/planted", 0700);
	assert_int_equal(fchownat(f->root_fd, "tmp/planted", NOBODY, NOBODY, 0), 0);
	assert_refused(f->root_fd, "/tmp/planted", 0, "/tmp/planted", NOBODY, "owned by root");
}

/* A symlink on the way must be ours; and where one was followed, the real parents are checked too. */
static void test_symlinks(void **state)
{
	struct fx *f = *state;

	mkdirs(f->root_fd, "var/lib/nodeinit", 0700);
	mkdirs(f->root_fd, "tmp", 01777);
	assert_int_equal(symlinkat("/var/lib/nodeinit", f->root_fd, "tmp/link"), 0);
	assert_opens(f->root_fd, "/tmp/link", 0); /* root's link: followed */
	assert_int_equal(fchownat(f->root_fd, "tmp/link", NOBODY, NOBODY, AT_SYMLINK_NOFOLLOW), 0);
	assert_refused(f->root_fd, "/tmp/link", 0, "/tmp/link", NOBODY, "symlink");

	/* root's link into a dir another user owns: the names look fine, the real parent is not (the
	 * resolver stops at it, and the refusal names it) */
	mkdirs(f->root_fd, "home/user/state", 0700);
	assert_int_equal(fchownat(f->root_fd, "home/user", NOBODY, NOBODY, 0), 0);
	assert_int_equal(symlinkat("/home/user/state", f->root_fd, "data"), 0);
	assert_refused(f->root_fd, "/data", 0, "/home/user", NOBODY, "owned by root");

	/* root's link to a dir whose real parent others may write: the resolver allows the way, the
	 * walk up from the real location does not */
	mkdirs(f->root_fd, "srv/shared/state", 0700);
	assert_int_equal(fchmodat(f->root_fd, "srv/shared", 0777, 0), 0);
	assert_int_equal(symlinkat("/srv/shared/state", f->root_fd, "data2"), 0);
	assert_refused(f->root_fd, "/data2", 0, "/data2 (a parent of its real location)", 0, "not be writable");
}

/* lock, index, legacy and <recipe>.state: regular files owned by root, or the dir is refused. */
static void test_files(void **state)
{
	struct fx *f = *state;
	static const char *const names[] = { "lock", "index", "legacy", "r.state" };
	struct ni_recipe_state st;
	struct ni_legacy_record lrec;
	struct ni_journal j;
	char **recipes;
	size_t n;
	int dir_fd, lock_fd = -1;

	assert_int_equal(ni_state_open(f->root_fd, "/var/lib/nodeinit", 0, &dir_fd, NULL), 0);
	put_file(dir_fd, "index", "nodeinit-index 1\nr\n");
	put_file(dir_fd, "legacy", "nodeinit-legacy 1\nlegacy checkpoint=/x done=true\n");
	put_file(dir_fd, "r.state", "nodeinit-state 1 recipe=r\nend s result=ok fp=a boot=b started_ms=1\n");
	put_file(dir_fd, "lock", "");
	/* not ours to check: set-aside journals and other names */
	put_file(dir_fd, "r.state.corrupt-1", "x");
	put_file(dir_fd, "notes", "x");
	assert_int_equal(fchownat(dir_fd, "r.state.corrupt-1", NOBODY, NOBODY, 0), 0);
	assert_int_equal(fchownat(dir_fd, "notes", NOBODY, NOBODY, 0), 0);
	assert_opens(f->root_fd, "/var/lib/nodeinit", NI_STATE_OPEN_READ_ONLY);

	for (size_t i = 0; i < NI_ELEMENTSOF(names); i++) {
		char path[64];

		snprintf(path, sizeof(path), "/var/lib/nodeinit/%s", names[i]);
		assert_int_equal(fchownat(dir_fd, names[i], NOBODY, NOBODY, 0), 0);
		assert_refused(f->root_fd, "/var/lib/nodeinit", NI_STATE_OPEN_READ_ONLY, path, NOBODY, "regular files owned by root");
		assert_refused(f->root_fd, "/var/lib/nodeinit", 0, path, NOBODY, "regular files owned by root");
		assert_int_equal(fchownat(dir_fd, names[i], 0, 0, 0), 0);
	}

	/* each reader refuses such a file too, whoever opened the dir before it appeared */
	assert_int_equal(fchownat(dir_fd, "lock", NOBODY, NOBODY, 0), 0);
	assert_int_equal(ni_state_lock(dir_fd, true, -1, &lock_fd), -ENOLINK); /* at once: no wait */
	assert_int_equal(lock_fd, -1);
	assert_int_equal(fchownat(dir_fd, "index", NOBODY, NOBODY, 0), 0);
	assert_int_equal(ni_state_read_index(dir_fd, &recipes, &n), -ENOLINK);
	assert_int_equal(fchownat(dir_fd, "legacy", NOBODY, NOBODY, 0), 0);
	assert_int_equal(ni_state_read_legacy(dir_fd, &lrec), -ENOLINK);
	assert_int_equal(fchownat(dir_fd, "r.state", NOBODY, NOBODY, 0), 0);
	assert_int_equal(ni_state_load(dir_fd, "r", &st), -ENOLINK);
	assert_int_equal(ni_journal_open(dir_fd, "r", &j), -ENOLINK);

	/* not a regular file: a symlink named lock, even to a root file */
	assert_int_equal(unlinkat(dir_fd, "lock", 0), 0);
	assert_int_equal(symlinkat("index", dir_fd, "lock"), 0);
	assert_refused(f->root_fd, "/var/lib/nodeinit", 0, "/var/lib/nodeinit/lock", 0, "regular files");
	close(dir_fd);
}

/* Bug 1, state side: a journal that is there but not ours is -EBADMSG, not "nothing recorded"; it
 * can be set aside under a name an operator finds and the temp cleanup leaves alone. */
static void test_corrupt_set_aside(void **state)
{
	struct fx *f = *state;
	static const char garbage[] = "\x7f" "ELF not a journal\n";
	struct ni_recipe_state st;
	struct ni_journal j;
	char name[NAME_MAX + 1], name2[NAME_MAX + 1], buf[64] = "";
	int dir_fd, fd;

	assert_int_equal(ni_state_open(f->root_fd, "/var/lib/nodeinit", 0, &dir_fd, NULL), 0);
	assert_int_equal(ni_state_load(dir_fd, "r", &st), 0); /* missing: nothing recorded */
	assert_string_equal(st.recipe, "r");
	assert_int_equal(st.n_records, 0);
	ni_recipe_state_free(&st);
	assert_int_equal(ni_state_set_aside(dir_fd, "r", name), -ENOENT);

	put_file(dir_fd, "r.state", garbage);
	assert_int_equal(ni_state_load(dir_fd, "r", &st), -EBADMSG);
	assert_null(st.recipe);
	put_file(dir_fd, "r.state", "nodeinit-state 99 recipe=r\n"); /* a version we do not know */
	assert_int_equal(ni_state_load(dir_fd, "r", &st), -EBADMSG);
	put_file(dir_fd, "r.state", garbage);

	assert_int_equal(ni_state_set_aside(dir_fd, "r", name), 0);
	assert_int_equal(strncmp(name, "r.state.corrupt-", 16), 0);
	assert_true(strlen(name) > 16);
	assert_int_equal(faccessat(dir_fd, "r.state", F_OK, AT_SYMLINK_NOFOLLOW), -1);
	fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), (ssize_t)strlen(garbage));
	close(fd);
	assert_string_equal(buf, garbage);

	/* the next pass starts afresh; a second set aside never replaces the first */
	assert_int_equal(ni_state_load(dir_fd, "r", &st), 0);
	ni_recipe_state_free(&st);
	put_file(dir_fd, "r.state", "garbage again\n");
	assert_int_equal(ni_state_set_aside(dir_fd, "r", name2), 0);
	assert_string_not_equal(name, name2);
	assert_int_equal(faccessat(dir_fd, name, F_OK, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(faccessat(dir_fd, name2, F_OK, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(ni_journal_open(dir_fd, "r", &j), 0);
	ni_journal_close(&j);

	assert_int_equal(ni_state_remove_temps(dir_fd), 0);
	assert_int_equal(faccessat(dir_fd, name, F_OK, AT_SYMLINK_NOFOLLOW), 0);
	assert_opens(f->root_fd, "/var/lib/nodeinit", 0);
	assert_int_equal(ni_state_set_aside(dir_fd, "../r", name), -EINVAL);
	close(dir_fd);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_set_aside, setup, teardown),
	};
	char exe[PATH_MAX];
	ssize_t n;

	if (geteuid() != 0) {
		/* the rules are about root and another user: chown needs root */
		fprintf(stderr, "test_statedir: needs root\n");
		return 1;
	}
	/* <build>/unit/test_statedir → <build>/t/unit-statedir */
	(void)argc;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		snprintf(exe, sizeof(exe), "%s", argv[0]);
	else
		exe[n] = '\0';
	snprintf(base, sizeof(base), "%s/t", dirname(dirname(exe)));
	mkdir(base, 0755);
	strncat(base, "/unit-statedir", sizeof(base) - strlen(base) - 1);
	rm_rf(base);
	if (mkdir(base, 0755) < 0) {
		perror(base);
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
