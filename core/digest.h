/* MD5 (the legacy checkpoint name) and SHA-256 (step fingerprints), from libmd. */
#ifndef NI_DIGEST_H
#define NI_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define NI_MD5_HEX_LEN 32
#define NI_SHA256_HEX_LEN 64

void ni_md5_hex(const void *data, size_t len, char ret_hex[NI_MD5_HEX_LEN + 1]);
void ni_sha256_hex(const void *data, size_t len, char ret_hex[NI_SHA256_HEX_LEN + 1]);

/* SHA-256 fed in pieces (a step's fingerprint material is hashed as it is walked, never held whole).
 * Opaque room for libmd's SHA2_CTX, so that this header needs no libmd header. */
struct ni_sha256 {
	uint64_t opaque[32];
};
void ni_sha256_init(struct ni_sha256 *c);
void ni_sha256_update(struct ni_sha256 *c, const void *data, size_t len);
void ni_sha256_final_hex(struct ni_sha256 *c, char ret_hex[NI_SHA256_HEX_LEN + 1]);

#endif
