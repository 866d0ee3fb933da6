/* core/cache.h — the fingerprint cache: each recipe file's steps (name, when, fingerprint) keyed by
 * the file's content and what its load-time code read, so a no-op apply needs no Lua load. */
#ifndef NI_CACHE_H
#define NI_CACHE_H

#include <stddef.h>

#include "digest.h"
#include "recipe.h"
#include "util.h"

/* In the state dir; a host-side file like the others (statedir.h's trust rules), safe to delete. */
#define NI_CACHE_FILE "cache"

/*
 * What every entry also depends on: the cache format, the release, Lua's version, the embedded Lua
 * sources (lua/recipe.lua builds the material) and the binary itself (device, inode, size, mtime of
 * /proc/self/exe below proc_fd), so a rebuilt binary never trusts an old cache. -errno from fstatat.
 */
int ni_cache_key(int proc_fd, char ret_key[static NI_SHA256_HEX_LEN + 1]);

/*
 * The cache text for set's cacheable files (struct ni_recipe_file: content hash, the environment
 * names its load-time code read, each value's hash as getenv says now) with their recipes and steps,
 * ending in a checksum line. Files that cannot be cached are left out (they load every time).
 */
int ni_cache_format(const char *key, const struct ni_recipe_set *set, struct ni_buf *out);

/*
 * Fills ret from the cache text when it holds every one of files (name and content hash, in this
 * order, no more, no fewer) under key, and each environment value its load-time code read still
 * hashes the same. The steps get ref LUA_NOREF (no Lua state). -ESTALE when anything differs;
 * -EBADMSG when the text is not a whole, well-formed cache of ours (it is then never trusted).
 */
int ni_cache_lookup(const char *buf, size_t len, const char *key, const struct ni_recipe_file *files, size_t n_files,
		    struct ni_recipe_set *ret);

/* The hash a cache entry keeps for an environment variable's value: "-" when unset. */
void ni_cache_env_hash(const char *name, char ret[static NI_SHA256_HEX_LEN + 1]);

#endif
