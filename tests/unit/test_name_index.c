/* name_index.c: names found after growth, a missing name not found, a present name set again. */
#include <stdio.h>
#include <string.h>

#include "name_index.h"
#include "unit.h"

#define N 1000

static void test_put_get(void **state)
{
	static char names[N][16];
	struct ni_name_index ix = { 0 };
	size_t idx = 12345;

	(void)state;
	assert_false(ni_name_index_get(&ix, "a", &idx)); /* empty: nothing allocated yet */
	for (size_t i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "step-%zu", i);
		assert_int_equal(ni_name_index_put(&ix, names[i], i), 0);
	}
	assert_int_equal(ix.used, N);
	assert_true(ix.cap >= 2 * N); /* grown, never fuller than half */
	for (size_t i = 0; i < N; i++) {
		assert_true(ni_name_index_get(&ix, names[i], &idx));
		assert_int_equal(idx, i);
	}
	assert_false(ni_name_index_get(&ix, "step-1000", &idx));
	assert_false(ni_name_index_get(&ix, "", &idx));
	assert_int_equal(idx, N - 1); /* untouched when not found */
	ni_name_index_free(&ix);
	assert_int_equal(ix.cap, 0);
}

/* A name put again takes the new index (last one wins) and is not counted twice. */
static void test_put_again(void **state)
{
	char again[] = "b";
	struct ni_name_index ix = { 0 };
	size_t idx;

	(void)state;
	assert_int_equal(ni_name_index_put(&ix, "a", 0), 0);
	assert_int_equal(ni_name_index_put(&ix, "b", 1), 0);
	assert_int_equal(ni_name_index_put(&ix, again, 7), 0);
	assert_int_equal(ix.used, 2);
	assert_true(ni_name_index_get(&ix, "b", &idx));
	assert_int_equal(idx, 7);
	assert_true(ni_name_index_get(&ix, "a", &idx));
	assert_int_equal(idx, 0);
	ni_name_index_free(&ix);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get),
		cmocka_unit_test(test_put_again),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
