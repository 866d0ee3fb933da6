/* libFuzzer target for the journal parser: never crashes, and what it parsed formats and re-parses the same.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icore tests/fuzz/fuzz_state.c core/state.c -o fuzz_state
 *   ./fuzz_state -max_total_time=60 CORPUS_DIR */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ni_recipe_state st;
	struct ni_step_decl *all;
	int r;

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
