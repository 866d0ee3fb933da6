/* The pure parts of the cluster client: HTTP response parsing (http.c), the condition and taint patches (kube.c). */
#include <errno.h>
#include <string.h>

#include "http.h"
#include "kube.h"
#include "unit.h"

static int parse_str(const char *s, int *status, char **body, size_t *len)
{
	return ni_http_parse(s, strlen(s), status, body, len);
}

static void test_http_parse(void **state)
{
	int status;
	char *body;
	size_t len;

	(void)state;
	assert_int_equal(parse_str("HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-type: x\r\n\r\n{}", &status, &body, &len), 0);
	assert_int_equal(status, 200);
	assert_int_equal(len, 2);
	assert_string_equal(body, "{}");
	free(body);
	/* Chunked, with an extension and a trailer (Go's server chunks bodies past 2 kB). */
	assert_int_equal(parse_str("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\n{\"a\r\n"
				   "B\r\n\":12345678}\r\n0\r\nX-Trailer: 1\r\n\r\n", &status, &body, &len), 0);
	assert_int_equal(status, 201);
	assert_string_equal(body, "{\"a\":12345678}");
	free(body);
	/* No length: the body runs to the end of the connection. */
	assert_int_equal(parse_str("HTTP/1.0 403 Forbidden\r\n\r\nno", &status, &body, &len), 0);
	assert_int_equal(status, 403);
	assert_string_equal(body, "no");
	free(body);
	assert_int_equal(parse_str("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", &status, &body, &len), 0);
	assert_null(body);
	/* Cut short, or not HTTP. */
	assert_int_equal(parse_str("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}", &status, &body, &len), -EPROTO);
	assert_int_equal(parse_str("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", &status, &body, &len), -EPROTO);
	assert_int_equal(parse_str("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", &status, &body, &len), -EPROTO);
	assert_int_equal(parse_str("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", &status, &body, &len), -EPROTO);
	assert_int_equal(parse_str("SSH-2.0-OpenSSH\r\n\r\n", &status, &body, &len), -EPROTO);
	assert_int_equal(parse_str("HTTP/1.1 200 OK\r\n", &status, &body, &len), -EPROTO);
}

static void test_taint_patch(void **state)
{
	json_t *taints = json_loads("[{\"key\":\"a/not-ready\",\"effect\":\"NoSchedule\"},{\"key\":\"b\",\"value\":\"v\","
				    "\"effect\":\"NoSchedule\"},{\"key\":\"a/not-ready\",\"effect\":\"NoExecute\"}]", 0, NULL);
	char *p;

	(void)state;
	assert_non_null(taints);
	p = ni_kube_taint_patch(taints, "a/not-ready");
	assert_non_null(p);
	/* test the taints as read, then replace them with every other taint: never an add. */
	assert_string_equal(p, "[{\"op\":\"test\",\"path\":\"/spec/taints\",\"value\":[{\"key\":\"a/not-ready\",\"effect\":"
			       "\"NoSchedule\"},{\"key\":\"b\",\"value\":\"v\",\"effect\":\"NoSchedule\"},{\"key\":\"a/not-ready\","
			       "\"effect\":\"NoExecute\"}]},{\"op\":\"replace\",\"path\":\"/spec/taints\",\"value\":[{\"key\":\"b\","
			       "\"value\":\"v\",\"effect\":\"NoSchedule\"}]}]");
	free(p);
	assert_null(ni_kube_taint_patch(taints, "b/other"));
	assert_null(ni_kube_taint_patch(taints, "a")); /* keys match whole */
	json_decref(taints);
}

static void test_condition_patch(void **state)
{
	char *p = ni_kube_condition_patch("False", "StepFailed", "step a/b failed", "2025-01-01T00:00:01Z",
					  "2025-01-01T00:00:00Z");

	(void)state;
	assert_non_null(p);
	assert_string_equal(p, "{\"status\":{\"conditions\":[{\"type\":\"NodeinitConverged\",\"status\":\"False\","
			       "\"reason\":\"StepFailed\",\"message\":\"step a/b failed\",\"lastHeartbeatTime\":"
			       "\"2025-01-01T00:00:01Z\",\"lastTransitionTime\":\"2025-01-01T00:00:00Z\"}]}}");
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_parse),
		cmocka_unit_test(test_taint_patch),
		cmocka_unit_test(test_condition_patch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
