/* The command line: subcommands, options and their NODEINIT_* environment twins. */
#ifndef NI_CLI_H
#define NI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Exit codes: stable, documented in --help and the README. */
enum {
	NI_EXIT_OK = 0,       /* converged */
	NI_EXIT_FAILED = 1,   /* a step or the legacy script failed */
	NI_EXIT_USAGE = 2,    /* bad usage or bad input (recipe, YAML, option) */
	NI_EXIT_TARGET = 3,   /* cannot enter the target (permissions, no such pid) */
};

enum ni_command {
	NI_CMD_NONE,
	NI_CMD_RUN,
	NI_CMD_APPLY,
	NI_CMD_PLAN,
	NI_CMD_STATUS,
	NI_CMD_LINT,
	NI_CMD_EVAL,
	NI_CMD_VERSION,
	NI_CMD_HELP,
};

enum ni_log_format {
	NI_LOG_TEXT,
	NI_LOG_JSON,
};

#define NI_DEFAULT_RECIPES "/etc/nodeinit/recipes"
#define NI_DEFAULT_STATE_DIR "/var/lib/nodeinit"
#define NI_DEFAULT_INTERVAL 30
#define NI_DEFAULT_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct ni_options {
	enum ni_command command;
	pid_t target_pid;
	const char *recipes_dir;
	const char *state_dir;
	unsigned interval_s;
	enum ni_log_format log_format;
	int log_level;         /* enum ni_log_level (log.h): lines below it are not written */
	bool json;             /* status --json */
	bool ready;            /* status --ready */
	const char *eval_file; /* eval FILE|- */
	bool kube_off;             /* --kube off */
	const char *kube_sa_dir;   /* service account directory (container side) */
	const char *startup_taint; /* taint key removed once the node first converges; NULL: none */
	const char *ready_file;    /* host path written when converged; NULL: none */
};

typedef const char *(*ni_getenv_fn)(const char *name);

/*
 * Parses argv (options before or after the command) over defaults taken from the environment
 * through getenv_fn. Returns 0, or -EINVAL with a one-line reason in err.
 */
int ni_cli_parse(int argc, char **argv, ni_getenv_fn getenv_fn, struct ni_options *ret, char *err, size_t errlen);

const char *ni_cli_usage(void);

#endif
