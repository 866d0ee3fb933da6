/* libFuzzer target for the option parser (ni_cli_parse): NUL-separated words, the first byte says how
 * many of them are NODEINIT_* environment entries ("NAME=value") rather than arguments. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "cli.h"

#define MAX_WORDS 64

static char *env_entries[MAX_WORDS];
static size_t n_env;

static const char *fake_getenv(const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < n_env; i++)
		if (strncmp(env_entries[i], name, len) == 0 && env_entries[i][len] == '=')
			return env_entries[i] + len + 1;
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *words[MAX_WORDS + 2], *argv[MAX_WORDS + 2], err[256];
	size_t n_words = 0, want_env, errlen;
	struct ni_options o;
	char *copy;
	int argc = 0, r;

	if (size < 2)
		return 0;
	want_env = data[0] % 6;
	errlen = 1 + data[1] % sizeof(err); /* short buffers too: messages are cut, never overrun */
	copy = malloc(size - 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 2, size - 2);
	copy[size - 2] = '\0';
	n_words = fuzz_words(copy, size - 2, words, MAX_WORDS);

	n_env = 0;
	argv[argc++] = (char *)"nodeinit";
	for (size_t i = 0; i < n_words; i++) {
		if (i < want_env)
			env_entries[n_env++] = words[i];
		else
			argv[argc++] = words[i];
	}
	argv[argc] = NULL;

	memset(err, 0x5a, sizeof(err));
	r = ni_cli_parse(argc, argv, fake_getenv, &o, err, errlen);
	CHECK(r == 0 || r == -EINVAL);
	if (r < 0) {
		CHECK(memchr(err, '\0', errlen));
		CHECK(errlen == 1 || err[0] != '\0');
		CHECK(err[errlen - 1] == '\0' || memchr(err, '\0', errlen - 1));
		for (size_t i = errlen; i < sizeof(err); i++)
			CHECK(err[i] == 0x5a);
	} else {
		CHECK(o.command > NI_CMD_NONE && o.command <= NI_CMD_HELP);
		CHECK(o.target_pid >= 1);
		CHECK(o.interval_s >= 1 && o.interval_s <= 86400);
		CHECK(o.recipes_dir && o.recipes_dir[0] && o.state_dir && o.state_dir[0]);
		CHECK(o.log_format == NI_LOG_TEXT || o.log_format == NI_LOG_JSON);
		CHECK(o.command != NI_CMD_EVAL || o.eval_file);
		CHECK(!(o.json || o.ready) || o.command == NI_CMD_STATUS);
	}
	free(copy);
	return 0;
}
