/* Option parsing for nodeinit: getopt_long over argv, defaults from NODEINIT_* variables. */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "file.h"
#include "util.h"

static const char usage[] =
	"Usage: nodeinit [options] COMMAND\n"
	"\n"
	"Prepares a Kubernetes node: enters the host's namespaces and applies recipes of named steps,\n"
	"each with its own checkpoint on the host, and/or the legacy STARTUP_SCRIPT.\n"
	"\n"
	"Commands:\n"
	"  run        apply, then watch the recipes and re-apply every interval, forever (DaemonSet)\n"
	"  apply      one pass: apply everything that is due; exit 0 when converged\n"
	"  plan       dry run: each step as run/skip with the reason, and the changes it would make\n"
	"  status     what the host's state records say (--json, --ready)\n"
	"  lint       parse and check the recipes without touching the host\n"
	"  eval FILE  run one Lua chunk (FILE or - for stdin) against the host, no checkpoints\n"
	"  version    print the version\n"
	"\n"
	"Options (each has an environment twin):\n"
	"  --target-pid PID      whose namespaces are the host's       NODEINIT_TARGET_PID (1)\n"
	"  --recipes DIR         recipe directory (container side)     NODEINIT_RECIPES (" NI_DEFAULT_RECIPES ")\n"
	"  --state-dir DIR       state directory on the host           NODEINIT_STATE_DIR (" NI_DEFAULT_STATE_DIR ")\n"
	"  --interval SECONDS    seconds between passes of run         NODEINIT_INTERVAL (30)\n"
	"  --log-format FORMAT   text or json                          NODEINIT_LOG_FORMAT (text)\n"
	"  --log-level LEVEL     debug, info, warn or error            NODEINIT_LOG_LEVEL (info)\n"
	"  --kube MODE           auto (use the API when in a cluster) or off  NODEINIT_KUBE (auto)\n"
	"  --kube-sa-dir DIR     service account dir (token, ca.crt, namespace)  NODEINIT_KUBE_SA_DIR\n"
	"                        (/var/run/secrets/kubernetes.io/serviceaccount)\n"
	"  --startup-taint KEY   remove taints with KEY once the node converges  NODEINIT_STARTUP_TAINT\n"
	"  --ready-file PATH     host file present exactly while converged   NODEINIT_READY_FILE\n"
	"  --json                status: print JSON\n"
	"  --ready               status: exit 0 only when converged (readiness probe)\n"
	"  -h, --help            this text\n"
	"\n"
	"Legacy mode: with STARTUP_SCRIPT set, run and apply also run it with the host's bash, once,\n"
	"remembered by the checkpoint file CHECKPOINT_PATH (default /tmp/startup-script.kubernetes.io_<md5>),\n"
	"exactly as the startup-script images do. Invoked as `nsenter`, the binary accepts\n"
	"`nsenter -t PID [-m] [-u] [-i] [-n] [-p] -- COMMAND...`.\n"
	"\n"
	"Exit codes:\n"
	"  0  converged (or, for status --ready, ready)\n"
	"  1  a step or the legacy script failed (status --ready: not converged)\n"
	"  2  bad usage or bad input (recipe, YAML, option), or a state dir another user owns or can write\n"
	"  3  cannot enter the target (permissions, no such pid), or it exited mid-pass\n";

const char *ni_cli_usage(void)
{
	return usage;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *ret)
{
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* Each setter names its source (option or variable) in the error, so the operator knows where to look. */
static int set_pid(struct ni_options *o, const char *v, const char *src, char *err, size_t n)
{
	unsigned long x;

	if (parse_uint(v, 1, INT_MAX, &x) < 0)
		return fail(err, n, "%s: not a process id: '%s'", src, v);
	o->target_pid = (pid_t)x;
	return 0;
}

static int set_interval(struct ni_options *o, const char *v, const char *src, char *err, size_t n)
{
	unsigned long x;

	if (parse_uint(v, 1, 86400, &x) < 0)
		return fail(err, n, "%s: not a number of seconds from 1 to 86400: '%s'", src, v);
	o->interval_s = (unsigned)x;
	return 0;
}

static int set_log_format(struct ni_options *o, const char *v, const char *src, char *err, size_t n)
{
	if (ni_streq(v, "text"))
		o->log_format = NI_LOG_TEXT;
	else if (ni_streq(v, "json"))
		o->log_format = NI_LOG_JSON;
	else
		return fail(err, n, "%s: must be text or json, not '%s'", src, v);
	return 0;
}

static int set_log_level(struct ni_options *o, const char *v, const char *src, char *err, size_t n)
{
	static const char *const levels[] = { "debug", "info", "warn", "error" };

	for (int i = 0; i < 4; i++)
		if (ni_streq(v, levels[i])) {
			o->log_level = i;
			return 0;
		}
	return fail(err, n, "%s: must be debug, info, warn or error, not '%s'", src, v);
}

static int set_dir(const char **field, const char *v, const char *src, char *err, size_t n)
{
	if (!*v)
		return fail(err, n, "%s: empty directory", src);
	*field = v;
	return 0;
}

static int set_recipes(struct ni_options *o, const char *v, const char *src, char *err, size_t n)
{
	return set_dir(&o->recipes_dir, v, src, err, n);
}

static int set_state_dir(struct ni_options *o, const char *v, const char *src, char *err, size_t n)
{
	return set_dir(&o->state_dir, v, src, err, n);
}

static int set_kube_sa_dir(struct ni_options *o, const char *v, const char *src, char *err, size_t n)
{
	return set_dir(&o->kube_sa_dir, v, src, err, n);
}

static int set_kube(struct ni_options *o, const char *v, const char *src, char *err, size_t n)
{
	if (ni_streq(v, "auto"))
		o->kube_off = false;
	else if (ni_streq(v, "off"))
		o->kube_off = true;
	else
		return fail(err, n, "%s: must be auto or off, not '%s'", src, v);
	return 0;
}

/* A taint key is a qualified name: [DNS-subdomain/]name, letters, digits, '-', '_', '.'. */
static int set_taint(struct ni_options *o, const char *v, const char *src, char *err, size_t n)
{
	const char *slash = strchr(v, '/');
	size_t len = strlen(v);

	if (len == 0 || len > 316 || strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./") != len ||
	    (slash && (slash == v || !slash[1] || strchr(slash + 1, '/'))))
		return fail(err, n, "%s: not a taint key ([prefix/]name): '%s'", src, v);
	o->startup_taint = v;
	return 0;
}

static int set_ready_file(struct ni_options *o, const char *v, const char *src, char *err, size_t n)
{
	if (!ni_file_path_valid(v))
		return fail(err, n, "%s: must be an absolute path without '.' or '..' parts: '%s'", src, v);
	o->ready_file = v;
	return 0;
}

static const struct {
	const char *name;
	enum ni_command cmd;
} commands[] = {
	{ "run", NI_CMD_RUN },     { "apply", NI_CMD_APPLY }, { "plan", NI_CMD_PLAN },
	{ "status", NI_CMD_STATUS }, { "lint", NI_CMD_LINT }, { "eval", NI_CMD_EVAL },
	{ "version", NI_CMD_VERSION }, { "help", NI_CMD_HELP },
};

enum { OPT_TARGET = 0x100, OPT_RECIPES, OPT_STATE, OPT_INTERVAL, OPT_LOGFMT, OPT_LOGLEVEL, OPT_JSON, OPT_READY, OPT_VERSION,
       OPT_KUBE, OPT_KUBE_SA, OPT_TAINT, OPT_READY_FILE };

/* The options that take a value, each with its environment twin: one setter for both sources. */
static const struct valued_option {
	int opt;
	const char *flag, *env;
	int (*set)(struct ni_options *o, const char *v, const char *src, char *err, size_t n);
	bool blank_unset; /* the environment twin set but empty counts as unset */
} valued[] = {
	{ OPT_TARGET, "--target-pid", "NODEINIT_TARGET_PID", set_pid, false },
	{ OPT_RECIPES, "--recipes", "NODEINIT_RECIPES", set_recipes, false },
	{ OPT_STATE, "--state-dir", "NODEINIT_STATE_DIR", set_state_dir, false },
	{ OPT_INTERVAL, "--interval", "NODEINIT_INTERVAL", set_interval, false },
	{ OPT_LOGFMT, "--log-format", "NODEINIT_LOG_FORMAT", set_log_format, false },
	{ OPT_LOGLEVEL, "--log-level", "NODEINIT_LOG_LEVEL", set_log_level, false },
	{ OPT_KUBE, "--kube", "NODEINIT_KUBE", set_kube, false },
	{ OPT_KUBE_SA, "--kube-sa-dir", "NODEINIT_KUBE_SA_DIR", set_kube_sa_dir, false },
	{ OPT_TAINT, "--startup-taint", "NODEINIT_STARTUP_TAINT", set_taint, true },
	{ OPT_READY_FILE, "--ready-file", "NODEINIT_READY_FILE", set_ready_file, true },
};

static const struct valued_option *valued_option(int opt)
{
	for (size_t i = 0; i < NI_ELEMENTSOF(valued); i++)
		if (valued[i].opt == opt)
			return &valued[i];
	return NULL;
}

int ni_cli_parse(int argc, char **argv, ni_getenv_fn getenv_fn, struct ni_options *ret, char *err, size_t errlen)
{
	static const struct option longopts[] = {
		{ "target-pid", required_argument, NULL, OPT_TARGET },
		{ "recipes", required_argument, NULL, OPT_RECIPES },
		{ "state-dir", required_argument, NULL, OPT_STATE },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ "log-format", required_argument, NULL, OPT_LOGFMT },
		{ "log-level", required_argument, NULL, OPT_LOGLEVEL },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "ready", no_argument, NULL, OPT_READY },
		{ "kube", required_argument, NULL, OPT_KUBE },
		{ "kube-sa-dir", required_argument, NULL, OPT_KUBE_SA },
		{ "startup-taint", required_argument, NULL, OPT_TAINT },
		{ "ready-file", required_argument, NULL, OPT_READY_FILE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct ni_options o = {
		.target_pid = 1,
		.recipes_dir = NI_DEFAULT_RECIPES,
		.state_dir = NI_DEFAULT_STATE_DIR,
		.interval_s = NI_DEFAULT_INTERVAL,
		.log_level = 1, /* info */
		.kube_sa_dir = NI_DEFAULT_KUBE_SA_DIR,
	};
	const struct valued_option *val;
	const char *v;
	int c, r;

	for (size_t i = 0; i < NI_ELEMENTSOF(valued); i++) {
		v = getenv_fn(valued[i].env);
		/* Empty means unset for some: a manifest can leave those variables blank. */
		if (v && !(valued[i].blank_unset && !*v) && (r = valued[i].set(&o, v, valued[i].env, err, errlen)) < 0)
			return r;
	}

	optind = 0; /* full reset: tests and callers may parse more than once */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1 || optind < argc) {
		if (c == -1) {
			/* A non-option: the command, or an argument of eval. Options may follow it. */
			const char *word = argv[optind++];
			if (o.command == NI_CMD_NONE) {
				for (size_t i = 0; i < NI_ELEMENTSOF(commands); i++)
					if (ni_streq(word, commands[i].name))
						o.command = commands[i].cmd;
				if (o.command == NI_CMD_NONE)
					return fail(err, errlen, "unknown command '%s' (see nodeinit --help)", word);
			} else if (o.command == NI_CMD_EVAL && !o.eval_file) {
				o.eval_file = word;
			} else {
				return fail(err, errlen, "unexpected argument '%s'", word);
			}
			continue;
		}
		if ((val = valued_option(c))) {
			r = val->set(&o, optarg, val->flag, err, errlen);
			if (r < 0)
				return r;
			continue;
		}
		switch (c) {
		case OPT_JSON:
			o.json = true;
			break;
		case OPT_READY:
			o.ready = true;
			break;
		case 'h':
			o.command = NI_CMD_HELP;
			break;
		case OPT_VERSION:
			o.command = NI_CMD_VERSION;
			break;
		case ':':
			return fail(err, errlen, "option '%s' needs a value", argv[optind - 1]);
		default:
			return fail(err, errlen, "unknown option '%s' (see nodeinit --help)", argv[optind - 1]);
		}
	}

	if (o.command == NI_CMD_NONE)
		return fail(err, errlen, "no command given (see nodeinit --help)");
	if ((o.json || o.ready) && o.command != NI_CMD_STATUS)
		return fail(err, errlen, "--json and --ready go with the status command");
	if (o.command == NI_CMD_EVAL && !o.eval_file)
		return fail(err, errlen, "eval needs a file, or - for standard input");
	*ret = o;
	return 0;
}
