/* MD5 (the legacy checkpoint name) and SHA-256 (step fingerprints), from libmd. */
#ifndef NI_DIGEST_H
#define NI_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define NI_MD5_HEX_LEN 32
#define NI_SHA256_HEX_LEN 64

void ni_md5_hex(const void *data, size_t len, char ret_hex[NI_MD5_HEX_LEN + 1]);
void ni_sha256_hex(const void *data, size_t len, char ret_hex[NI_SHA256_HEX_LEN + 1]);

#endif
