/* Reports: the status model and its JSON and text forms, byte for byte what nodeinit 0.1.0 printed; plan lines. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"
#include "unit.h"

#define BOOT "9a0c00ed-0518-46ad-acc3-81bb6e572773" /* the fixtures' boot */

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	int c;

	assert_non_null(f);
	while ((c = fgetc(f)) != EOF)
		fputc(c, m);
	fclose(f);
	fclose(m);
	return buf;
}

struct loaded {
	char **names;
	size_t n;
	struct ni_recipe_state *states;
	struct ni_legacy_record legacy;
	bool have_legacy;
};

/* Reads a fixture state dir as status does: the index, each recipe's journal, the legacy record. */
static void load_dir(const char *dir, struct loaded *l)
{
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	assert_true(fd >= 0);
	*l = (struct loaded){ 0 };
	assert_int_equal(ni_state_read_index(fd, &l->names, &l->n), 0);
	l->states = calloc(l->n + 1, sizeof(*l->states));
	for (size_t i = 0; i < l->n; i++)
		assert_int_equal(ni_state_load(fd, l->names[i], &l->states[i]), 0);
	l->have_legacy = ni_state_read_legacy(fd, &l->legacy) == 0;
	close(fd);
}

static void free_loaded(struct loaded *l)
{
	for (size_t i = 0; i < l->n; i++)
		ni_recipe_state_free(&l->states[i]);
	free(l->states);
	ni_strv_free(l->names, l->n);
	ni_legacy_record_free(&l->legacy);
}

static void build(struct loaded *l, struct ni_status *s)
{
	*s = (struct ni_status){ .boot_id = BOOT };
	for (size_t i = 0; i < l->n; i++)
		assert_int_equal(ni_status_add_recipe(s, l->names[i], &l->states[i], NULL), 0);
	if (l->have_legacy)
		s->legacy = (struct ni_status_legacy){ .present = true, .checkpoint = l->legacy.checkpoint, .done = true,
						       .have_record = true, .exit_code = l->legacy.exit_code,
						       .duration_ms = l->legacy.duration_ms };
	ni_status_judge(s);
}

static void expect_format(const struct ni_status *s, bool json, const char *want_file)
{
	struct ni_buf b = NI_BUF_INIT(0);
	char *want = slurp(want_file);

	assert_int_equal(ni_status_format(s, json, &b), 0);
	assert_int_equal(ni_buf_putc(&b, '\0'), 0);
	assert_string_equal(b.p, want);
	ni_buf_free(&b);
	free(want);
}

/* Every result a step can show, a legacy record: the same bytes 0.1.0's status printed for these records. */
static void test_status_as_0_1_0(void **state)
{
	struct loaded l;
	struct ni_status s;

	(void)state;
	load_dir("tests/fixtures/status-v0.1.0/state", &l);
	build(&l, &s);
	assert_false(s.converged);
	expect_format(&s, true, "tests/fixtures/status-v0.1.0/status.json");
	expect_format(&s, false, "tests/fixtures/status-v0.1.0/status.txt");
	ni_status_free(&s);
	free_loaded(&l);

	load_dir("tests/fixtures/upgrade-v0.1.0/state", &l);
	build(&l, &s);
	assert_true(s.converged);
	expect_format(&s, true, "tests/fixtures/upgrade-v0.1.0/status.json");
	expect_format(&s, false, "tests/fixtures/upgrade-v0.1.0/status.txt");
	ni_status_free(&s);
	free_loaded(&l);
}

/* A recipe of the index whose records are missing or unreadable is not converged, and says why. */
static void test_unreadable_recipe(void **state)
{
	struct loaded l;
	struct ni_status s;
	struct ni_buf b = NI_BUF_INIT(0);

	(void)state;
	load_dir("tests/fixtures/upgrade-v0.1.0/state", &l);
	s = (struct ni_status){ .boot_id = BOOT };
	assert_int_equal(ni_status_add_recipe(&s, l.names[0], &l.states[0], NULL), 0);
	assert_int_equal(ni_status_add_recipe(&s, "gone", NULL, "gone.state: \"missing\""), 0);
	ni_status_judge(&s);
	assert_false(s.converged);
	assert_int_equal(ni_status_format(&s, true, &b), 0);
	ni_buf_putc(&b, '\0');
	assert_non_null(strstr(b.p, "{\"name\":\"gone\",\"steps\":[],\"error\":\"gone.state: \\\"missing\\\"\"}]"));
	b.len = 0;
	assert_int_equal(ni_status_format(&s, false, &b), 0);
	ni_buf_putc(&b, '\0');
	assert_non_null(strstr(b.p, "converged: no\n"));
	assert_non_null(strstr(b.p, "gone\n  (records unreadable: gone.state: \"missing\")\n"));
	ni_buf_free(&b);
	ni_status_free(&s);

	/* the same recipe alone converges: only the unreadable one made the difference */
	s = (struct ni_status){ .boot_id = BOOT };
	assert_int_equal(ni_status_add_recipe(&s, l.names[0], &l.states[0], NULL), 0);
	ni_status_judge(&s);
	assert_true(s.converged);
	ni_status_free(&s);
	free_loaded(&l);
}

static void test_nothing_applied(void **state)
{
	struct ni_status s = { .boot_id = BOOT };
	struct ni_buf b = NI_BUF_INIT(0);

	(void)state;
	ni_status_judge(&s);
	assert_false(s.converged);
	assert_int_equal(ni_status_format(&s, true, &b), 0);
	ni_buf_putc(&b, '\0');
	assert_string_equal(b.p, "{\"converged\":false,\"boot_id\":\"" BOOT "\",\"recipes\":[],\"legacy\":null}\n");
	ni_buf_free(&b);

	/* legacy alone: converged exactly when its checkpoint exists */
	s.legacy = (struct ni_status_legacy){ .present = true, .checkpoint = "/tmp/cp" };
	ni_status_judge(&s);
	assert_false(s.converged);
	s.legacy.done = true;
	ni_status_judge(&s);
	assert_true(s.converged);
}

static void test_plan_lines(void **state)
{
	struct ni_buf b = NI_BUF_INIT(0);

	(void)state;
	ni_plan_legacy(&b, false, "/tmp/cp");
	ni_plan_unreadable(&b, "net", "net.state: not a nodeinit state file");
	ni_plan_step(&b, "net", "forward", true, NI_REASON_NEW);
	ni_plan_detail(&b, "sysctl net.ipv4.ip_forward: 0 -> 1");
	ni_plan_step(&b, "net", "kept", false, NI_REASON_KEPT);
	/* what recipes and the host say is escaped: a detail stays one line and moves no cursor */
	ni_plan_detail(&b, "file /tmp/x\ny: absent -> \x1b[2J");
	ni_buf_putc(&b, '\0');
	assert_string_equal(b.p, "legacy/STARTUP_SCRIPT run new (checkpoint /tmp/cp)\n"
				 "net: its state records cannot be read (net.state: not a nodeinit state file): "
				 "apply moves them aside and runs its steps again\n"
				 "net/forward run new\n"
				 "    sysctl net.ipv4.ip_forward: 0 -> 1\n"
				 "net/kept skip kept\n"
				 "    file /tmp/x\\ny: absent -> \\x1b[2J\n");
	ni_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_as_0_1_0),
		cmocka_unit_test(test_unreadable_recipe),
		cmocka_unit_test(test_nothing_applied),
		cmocka_unit_test(test_plan_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
