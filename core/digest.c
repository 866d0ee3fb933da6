/* MD5 and SHA-256 in hex, over libmd (the maintained BSD digest library Debian ships). */
#include "digest.h"

#include <md5.h>
#include <sha2.h>

static void to_hex(const uint8_t *bin, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[bin[i] >> 4];
		out[2 * i + 1] = hex[bin[i] & 0xf];
	}
	out[2 * n] = '\0';
}

void ni_md5_hex(const void *data, size_t len, char ret_hex[NI_MD5_HEX_LEN + 1])
{
	MD5_CTX ctx;
	uint8_t bin[MD5_DIGEST_LENGTH];

	MD5Init(&ctx);
	MD5Update(&ctx, data, len);
	MD5Final(bin, &ctx);
	to_hex(bin, sizeof(bin), ret_hex);
}

_Static_assert(sizeof(SHA2_CTX) <= sizeof(struct ni_sha256), "struct ni_sha256 too small for SHA2_CTX");
_Static_assert(_Alignof(SHA2_CTX) <= _Alignof(struct ni_sha256), "struct ni_sha256 underaligned for SHA2_CTX");

void ni_sha256_init(struct ni_sha256 *c)
{
	SHA256Init((SHA2_CTX *)c);
}

void ni_sha256_update(struct ni_sha256 *c, const void *data, size_t len)
{
	SHA256Update((SHA2_CTX *)c, data, len);
}

void ni_sha256_final_hex(struct ni_sha256 *c, char ret_hex[NI_SHA256_HEX_LEN + 1])
{
	uint8_t bin[SHA256_DIGEST_LENGTH];

	SHA256Final(bin, (SHA2_CTX *)c);
	to_hex(bin, sizeof(bin), ret_hex);
}

void ni_sha256_hex(const void *data, size_t len, char ret_hex[NI_SHA256_HEX_LEN + 1])
{
	struct ni_sha256 c;

	ni_sha256_init(&c);
	ni_sha256_update(&c, data, len);
	ni_sha256_final_hex(&c, ret_hex);
}
