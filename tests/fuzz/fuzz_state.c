/* libFuzzer target for the state files' text (core/journal_text.c): the journal, index and legacy parsers
 * never crash, and what they parsed formats and re-parses the same. `make fuzz` builds and runs it.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icore tests/fuzz/fuzz_state.c core/journal_text.c core/name_index.c core/util.c \
 *     -o fuzz_state
 *   ./fuzz_state -max_total_time=60 CORPUS_DIR */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "journal_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) \
	do { \
		if (!(cond)) \
			abort(); \
	} while (0)

static void check_record_equal(const struct ni_step_record *a, const struct ni_step_record *b)
{
	CHECK(a && b);
	CHECK(strcmp(a->name, b->name) == 0);
	CHECK(strcmp(a->fingerprint, b->fingerprint) == 0);
	CHECK(a->result == b->result);
	CHECK(strcmp(a->boot_id, b->boot_id) == 0);
	CHECK(a->started_ms == b->started_ms && a->duration_ms == b->duration_ms);
	CHECK(a->exit_code == b->exit_code && a->failures == b->failures && a->retry_after_ms == b->retry_after_ms);
}

/* Formats decls + st, parses it back, checks nothing was lost or damaged, and that formatting is stable. */
static void round_trip(const struct ni_step_decl *decls, size_t n, const struct ni_recipe_state *st)
{
	struct ni_recipe_state back;
	char *buf = NULL, *again = NULL;
	size_t len, len2;

	if (ni_state_format("fuzz", decls, n, st, &buf, &len) < 0)
		return; /* only -ENOMEM is possible here: everything parsed is valid to write */
	CHECK(ni_state_parse(buf, len, &back) == 0);
	CHECK(back.n_corrupt == 0 && back.n_decls == n && strcmp(back.recipe, "fuzz") == 0);
	for (size_t i = 0; i < n; i++) {
		const struct ni_step_record *want = ni_recipe_state_find(st, decls[i].name);
		const struct ni_step_record *got = ni_recipe_state_find(&back, decls[i].name);

		CHECK(strcmp(back.decls[i].name, decls[i].name) == 0);
		CHECK(strcmp(back.decls[i].when, decls[i].when) == 0);
		CHECK(strcmp(back.decls[i].fingerprint, decls[i].fingerprint) == 0);
		CHECK(!want == !got);
		if (want)
			check_record_equal(want, got);
	}
	if (ni_state_format("fuzz", back.decls, back.n_decls, &back, &again, &len2) == 0) {
		CHECK(len == len2 && memcmp(buf, again, len) == 0);
		free(again);
	}
	ni_recipe_state_free(&back);
	free(buf);
}

/* The same bytes as an index: the names it kept format back to an index that parses to them again. */
static void index_round_trip(const char *data, size_t size)
{
	struct ni_buf b = NI_BUF_INIT(0);
	char **names, **back;
	size_t n, n2;
	int r = ni_index_parse(data, size, &names, &n);

	CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
	if (r < 0) {
		CHECK(names == NULL && n == 0);
		return;
	}
	for (size_t i = 0; i < n; i++)
		CHECK(ni_state_name_ok(names[i]));
	if (ni_index_format(names, n, &b) == 0) {
		CHECK(ni_index_parse(b.p, b.len, &back, &n2) == 0);
		CHECK(n2 == n);
		for (size_t i = 0; i < n; i++)
			CHECK(strcmp(back[i], names[i]) == 0);
		ni_strv_free(back, n2);
	}
	ni_buf_free(&b);
	ni_strv_free(names, n);
}

/* The same bytes as a legacy record: a parsed record formats and re-parses to the same fields. */
static void legacy_round_trip(const char *data, size_t size)
{
	struct ni_legacy_record rec, back;
	struct ni_buf b = NI_BUF_INIT(0);
	int r = ni_legacy_parse(data, size, &rec);

	CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
	if (r < 0) {
		CHECK(rec.checkpoint == NULL);
		return;
	}
	CHECK(rec.checkpoint && *rec.checkpoint);
	if (ni_legacy_format(&rec, &b) == 0) { /* -EINVAL: a checkpoint longer than a path can be */
		CHECK(ni_legacy_parse(b.p, b.len, &back) == 0);
		CHECK(strcmp(back.checkpoint, rec.checkpoint) == 0 && back.done == rec.done);
		CHECK(back.exit_code == rec.exit_code && back.duration_ms == rec.duration_ms &&
		      back.finished_ms == rec.finished_ms);
		ni_legacy_record_free(&back);
	}
	ni_buf_free(&b);
	ni_legacy_record_free(&rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ni_recipe_state st;
	struct ni_step_decl *all;
	int r;

	index_round_trip((const char *)data, size);
	legacy_round_trip((const char *)data, size);
	r = ni_state_parse((const char *)data, size, &st);
	CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
	if (r < 0) {
		CHECK(st.recipe == NULL && st.n_records == 0 && st.n_decls == 0);
		return 0;
	}
	CHECK(st.recipe != NULL);
	for (size_t i = 0; i < st.n_records; i++) {
		CHECK(ni_state_step_name_ok(st.records[i].name));
		CHECK(ni_result_name(st.records[i].result) != NULL);
		CHECK(ni_recipe_state_find(&st, st.records[i].name) == &st.records[i]); /* one per name */
	}

	/* as parsed: the declarations and their records */
	round_trip(st.decls, st.n_decls, &st);
	/* every record, declared or not */
	all = calloc(st.n_records ? st.n_records : 1, sizeof(*all));
	if (all) {
		for (size_t i = 0; i < st.n_records; i++) {
			all[i].name = st.records[i].name;
			strcpy(all[i].when, "always");
		}
		round_trip(all, st.n_records, &st);
		free(all);
	}
	ni_recipe_state_free(&st);
	return 0;
}
