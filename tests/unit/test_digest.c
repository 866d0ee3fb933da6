/* Digest vectors (RFC 1321, FIPS 180-2) and the legacy checkpoint formula from DESIGN.md. */
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "legacy.h"
#include "unit.h"

static void test_md5_vectors(void **state)
{
	char hex[NI_MD5_HEX_LEN + 1];

	(void)state;
	ni_md5_hex("", 0, hex);
	assert_string_equal(hex, "d41d8cd98f00b204e9800998ecf8427e");
	ni_md5_hex("abc", 3, hex);
	assert_string_equal(hex, "900150983cd24fb0d6963f7d28e17f72");
	ni_md5_hex("message digest", 14, hex);
	assert_string_equal(hex, "f96b697d7cb7938d525a2f31aaf161d0");
}

static void test_sha256_vectors(void **state)
{
	char hex[NI_SHA256_HEX_LEN + 1];
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

	(void)state;
	ni_sha256_hex("", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ni_sha256_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ni_sha256_hex(two, strlen(two), hex);
	assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void expect_checkpoint(const char *script, const char *env, const char *want)
{
	char *path = NULL;

	assert_int_equal(ni_legacy_checkpoint_path(script, env, &path), 0);
	assert_string_equal(path, want);
	free(path);
}

static void test_checkpoint_formula(void **state)
{
	(void)state;
	expect_checkpoint("echo hi", NULL, "/tmp/startup-script.kubernetes.io_9a312c9d8b035b8c2da417b451f8f92d");
	expect_checkpoint("", NULL, "/tmp/startup-script.kubernetes.io_68b329da9893e34099c7d8ad5cb9c940");
	expect_checkpoint("echo ran", NULL, "/tmp/startup-script.kubernetes.io_ba3d107eab8bb2dae087fcad1cff8f87");
}

/* ${CHECKPOINT_PATH:-default}: set and non-empty wins, empty means the default. */
static void test_checkpoint_env(void **state)
{
	(void)state;
	expect_checkpoint("echo hi", "/tmp/node-configured", "/tmp/node-configured");
	expect_checkpoint("echo hi", "", "/tmp/startup-script.kubernetes.io_9a312c9d8b035b8c2da417b451f8f92d");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_md5_vectors),        cmocka_unit_test(test_sha256_vectors),      cmocka_unit_test(test_checkpoint_formula),
		cmocka_unit_test(test_checkpoint_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
