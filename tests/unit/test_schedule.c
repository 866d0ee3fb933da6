/* Scheduling: when a step is due and why (the pass, plan and status use one rule), and the back-off. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "schedule.h"
#include "unit.h"

#define FP_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FP_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define BOOT1 "11111111-1111-1111-1111-111111111111"
#define BOOT2 "22222222-2222-2222-2222-222222222222"

static struct ni_step step_of(enum ni_when when)
{
	struct ni_step s = { .name = (char *)"s", .when = when };
	memcpy(s.fingerprint, FP_A, sizeof(FP_A));
	return s;
}

static struct ni_step_record rec_of(enum ni_result result, const char *fp, const char *boot)
{
	struct ni_step_record r = { .name = (char *)"s", .result = result, .retry_after_ms = 5000 };
	memcpy(r.fingerprint, fp, 65);
	memcpy(r.boot_id, boot, 37);
	return r;
}

static void expect_due(const struct ni_step *s, const struct ni_step_record *r, int64_t now, bool backoff, bool due,
		       enum ni_reason why)
{
	enum ni_reason got;

	assert_int_equal(ni_step_due(s, r, BOOT1, now, backoff, &got), due);
	assert_string_equal(ni_reason_name(got), ni_reason_name(why));
}

static void test_due_table(void **state)
{
	struct ni_step once = step_of(NI_WHEN_ONCE), boot = step_of(NI_WHEN_BOOT), always = step_of(NI_WHEN_ALWAYS);
	struct ni_step_record ok = rec_of(NI_RESULT_OK, FP_A, BOOT1), kept = rec_of(NI_RESULT_KEPT, FP_A, BOOT1);
	struct ni_step_record changed = rec_of(NI_RESULT_OK, FP_B, BOOT1), old_boot = rec_of(NI_RESULT_OK, FP_A, BOOT2);
	struct ni_step_record failed = rec_of(NI_RESULT_FAILED, FP_A, BOOT1);
	struct ni_step_record interrupted = rec_of(NI_RESULT_INTERRUPTED, FP_A, BOOT1);

	(void)state;
	expect_due(&once, NULL, 0, false, true, NI_REASON_NEW);
	expect_due(&once, &ok, 0, false, false, NI_REASON_DONE);
	expect_due(&once, &kept, 0, false, false, NI_REASON_KEPT);
	{
		/* only said "not here": a once step stays skipped (plan: skip only) until it changes;
		 * a boot step asks again on the next boot */
		struct ni_step_record skipped = rec_of(NI_RESULT_SKIPPED, FP_A, BOOT1);
		struct ni_step_record skipped_old = rec_of(NI_RESULT_SKIPPED, FP_A, BOOT2);
		struct ni_step_record skipped_changed = rec_of(NI_RESULT_SKIPPED, FP_B, BOOT1);
		expect_due(&once, &skipped, 0, false, false, NI_REASON_ONLY);
		expect_due(&boot, &skipped_old, 0, false, true, NI_REASON_BOOT);
		expect_due(&once, &skipped_changed, 0, false, true, NI_REASON_CHANGED);
		expect_due(&always, &skipped, 0, false, true, NI_REASON_ALWAYS);
		assert_string_equal(ni_reason_name(NI_REASON_ONLY), "only");
	}
	expect_due(&once, &changed, 0, false, true, NI_REASON_CHANGED);
	expect_due(&once, &old_boot, 0, false, false, NI_REASON_DONE); /* once ignores reboots */
	expect_due(&boot, &old_boot, 0, false, true, NI_REASON_BOOT);
	expect_due(&boot, &ok, 0, false, false, NI_REASON_DONE);
	expect_due(&always, &ok, 0, false, true, NI_REASON_ALWAYS);
	expect_due(&always, &changed, 0, false, true, NI_REASON_CHANGED);
	expect_due(&once, &interrupted, 0, true, true, NI_REASON_INTERRUPTED);
	/* apply retries a failed step at once; run waits for its back-off */
	expect_due(&once, &failed, 0, false, true, NI_REASON_FAILED);
	expect_due(&once, &failed, 4999, true, false, NI_REASON_BACKOFF);
	expect_due(&once, &failed, 5000, true, true, NI_REASON_FAILED);
	/* a changed fingerprint beats the back-off: the fix may be in the edit */
	failed.fingerprint[0] = 'c';
	expect_due(&once, &failed, 0, true, true, NI_REASON_CHANGED);
}

static void test_backoff(void **state)
{
	(void)state;
	assert_int_equal(ni_backoff_ms(1, 30), 30000);
	assert_int_equal(ni_backoff_ms(2, 30), 60000);
	assert_int_equal(ni_backoff_ms(3, 30), 120000);
	assert_int_equal(ni_backoff_ms(10, 30), 600000);
	assert_int_equal(ni_backoff_ms(1000, 30), 600000);
	assert_int_equal(ni_backoff_ms(1, 1), 1000);
}

static void test_reason_names(void **state)
{
	static const char *const want[] = { "new", "changed", "boot", "always", "failed", "interrupted", "done", "kept" };

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_string_equal(ni_reason_name((enum ni_reason)i), want[i]);
}

static void test_reason_name_bounds(void **state)
{
	(void)state;
	assert_string_equal(ni_reason_name(NI_REASON_BACKOFF), "backoff");
	assert_null(ni_reason_name(_NI_REASON_MAX));
	assert_null(ni_reason_name((enum ni_reason)1000));
	assert_null(ni_reason_name((enum ni_reason)-1));
}

static struct ni_step_decl decl_of(const char *when)
{
	struct ni_step_decl d = { .name = (char *)"s" };

	snprintf(d.when, sizeof(d.when), "%s", when);
	memcpy(d.fingerprint, FP_A, sizeof(FP_A));
	return d;
}

/* status shows what the pass would do, by the same rule: due as new, changed or for a boot is pending. */
static void test_status_result(void **state)
{
	struct ni_step_decl once = decl_of("once"), boot = decl_of("boot"), always = decl_of("always");
	struct ni_step_decl odd = decl_of("weekly");
	struct ni_step_record ok = rec_of(NI_RESULT_OK, FP_A, BOOT1), kept = rec_of(NI_RESULT_KEPT, FP_A, BOOT1);
	struct ni_step_record changed = rec_of(NI_RESULT_OK, FP_B, BOOT1), old_boot = rec_of(NI_RESULT_OK, FP_A, BOOT2);
	struct ni_step_record failed = rec_of(NI_RESULT_FAILED, FP_A, BOOT2);
	struct ni_step_record interrupted = rec_of(NI_RESULT_INTERRUPTED, FP_A, BOOT2);
	struct ni_step_record pending = rec_of(NI_RESULT_PENDING, FP_A, BOOT1);

	(void)state;
	assert_int_equal(ni_status_result(&once, NULL, BOOT1), NI_RESULT_PENDING);
	assert_int_equal(ni_status_result(&once, &pending, BOOT1), NI_RESULT_PENDING);
	assert_int_equal(ni_status_result(&once, &ok, BOOT1), NI_RESULT_OK);
	assert_int_equal(ni_status_result(&once, &kept, BOOT1), NI_RESULT_KEPT);
	{
		struct ni_step_record skipped = rec_of(NI_RESULT_SKIPPED, FP_A, BOOT1);
		assert_int_equal(ni_status_result(&once, &skipped, BOOT1), NI_RESULT_SKIPPED);
		assert_true(ni_result_converged(NI_RESULT_SKIPPED));
		assert_false(ni_result_converged(NI_RESULT_FAILED));
	}
	assert_int_equal(ni_status_result(&once, &changed, BOOT1), NI_RESULT_PENDING);
	assert_int_equal(ni_status_result(&once, &old_boot, BOOT1), NI_RESULT_OK);
	assert_int_equal(ni_status_result(&boot, &old_boot, BOOT1), NI_RESULT_PENDING);
	assert_int_equal(ni_status_result(&boot, &ok, BOOT1), NI_RESULT_OK);
	assert_int_equal(ni_status_result(&always, &ok, BOOT1), NI_RESULT_OK); /* its last result */
	/* failed and interrupted show as such, whatever the boot */
	assert_int_equal(ni_status_result(&boot, &failed, BOOT1), NI_RESULT_FAILED);
	assert_int_equal(ni_status_result(&boot, &interrupted, BOOT1), NI_RESULT_INTERRUPTED);
	assert_int_equal(ni_status_result(&odd, &old_boot, BOOT1), NI_RESULT_OK); /* unknown when: as once */
}

static void test_when_names(void **state)
{
	enum ni_when w;

	(void)state;
	assert_int_equal(ni_when_from_name("boot", &w), 0);
	assert_int_equal(w, NI_WHEN_BOOT);
	assert_int_equal(ni_when_from_name("always", &w), 0);
	assert_int_equal(w, NI_WHEN_ALWAYS);
	assert_int_equal(ni_when_from_name("once", &w), 0);
	assert_int_equal(w, NI_WHEN_ONCE);
	assert_int_equal(ni_when_from_name("Boot", &w), -EINVAL);
	assert_int_equal(ni_when_from_name(NULL, &w), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_due_table),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_reason_names),
		cmocka_unit_test(test_reason_name_bounds),
		cmocka_unit_test(test_status_result),
		cmocka_unit_test(test_when_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
