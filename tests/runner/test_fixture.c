/* A cmocka binary with known results for tests/integration/runner.sh: 1 passes, 2 fail, 1 skips. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

static void passes(void **state) { (void)state; }
static void fails_by_message(void **state) { (void)state; fail_msg("fails on purpose"); }
static void skips(void **state) { (void)state; skip(); }
static void fails_by_assert(void **state) { (void)state; assert_int_equal(1, 2); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(passes),
		cmocka_unit_test(fails_by_message),
		cmocka_unit_test(skips),
		cmocka_unit_test(fails_by_assert),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
