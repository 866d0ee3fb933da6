/* Option and environment parsing (cli.c) and the nsenter personality's arguments (nsenter.c). */
#include <errno.h>
#include <string.h>

#include "cli.h"
#include "ns.h"
#include "nsenter.h"
#include "unit.h"

/* A fake environment: NAME=VALUE strings. */
static const char *const *fake_env;

static const char *fake_getenv(const char *name)
{
	size_t n = strlen(name);

	for (const char *const *e = fake_env; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static int parse(const char *const *env, struct ni_options *o, char *err, int argc, ...)
{
	char *argv[16];
	va_list ap;

	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;
	fake_env = env;
	return ni_cli_parse(argc, argv, fake_getenv, o, err, 256);
}

static void test_defaults(void **state)
{
	struct ni_options o;
	char err[256];

	(void)state;
	assert_int_equal(parse(NULL, &o, err, 2, "nodeinit", "run"), 0);
	assert_int_equal(o.command, NI_CMD_RUN);
	assert_int_equal(o.target_pid, 1);
	assert_string_equal(o.recipes_dir, "/etc/nodeinit/recipes");
	assert_string_equal(o.state_dir, "/var/lib/nodeinit");
	assert_int_equal(o.interval_s, 30);
	assert_int_equal(o.log_format, NI_LOG_TEXT);
	assert_int_equal(o.log_level, 1);
}

static void test_env_twins(void **state)
{
	static const char *const env[] = { "NODEINIT_TARGET_PID=42", "NODEINIT_RECIPES=/r", "NODEINIT_STATE_DIR=/s",
					   "NODEINIT_INTERVAL=5", "NODEINIT_LOG_FORMAT=json",
					   "NODEINIT_LOG_LEVEL=debug", NULL };
	struct ni_options o;
	char err[256];

	(void)state;
	assert_int_equal(parse(env, &o, err, 2, "nodeinit", "apply"), 0);
	assert_int_equal(o.target_pid, 42);
	assert_string_equal(o.recipes_dir, "/r");
	assert_string_equal(o.state_dir, "/s");
	assert_int_equal(o.interval_s, 5);
	assert_int_equal(o.log_format, NI_LOG_JSON);
	assert_int_equal(o.log_level, 0);
}

/* An option beats its environment twin, before or after the command. */
static void test_option_beats_env(void **state)
{
	static const char *const env[] = { "NODEINIT_TARGET_PID=42", "NODEINIT_INTERVAL=5", NULL };
	struct ni_options o;
	char err[256];

	(void)state;
	assert_int_equal(parse(env, &o, err, 5, "nodeinit", "--target-pid", "7", "run", "--interval=2"), 0);
	assert_int_equal(o.target_pid, 7);
	assert_int_equal(o.interval_s, 2);
	assert_int_equal(o.command, NI_CMD_RUN);
}

static void test_status_flags(void **state)
{
	struct ni_options o;
	char err[256];

	(void)state;
	assert_int_equal(parse(NULL, &o, err, 4, "nodeinit", "status", "--json", "--ready"), 0);
	assert_true(o.json);
	assert_true(o.ready);
	assert_int_equal(parse(NULL, &o, err, 3, "nodeinit", "apply", "--ready"), -EINVAL);
	assert_non_null(strstr(err, "status"));
}

static void test_eval_file(void **state)
{
	struct ni_options o;
	char err[256];

	(void)state;
	assert_int_equal(parse(NULL, &o, err, 3, "nodeinit", "eval", "-"), 0);
	assert_string_equal(o.eval_file, "-");
	assert_int_equal(parse(NULL, &o, err, 2, "nodeinit", "eval"), -EINVAL);
}

static void expect_error(const char *const *env, const char *needle, int argc, const char *a1, const char *a2,
			 const char *a3)
{
	struct ni_options o;
	char err[256] = "";

	assert_int_equal(parse(env, &o, err, argc, "nodeinit", a1, a2, a3), -EINVAL);
	assert_non_null(strstr(err, needle));
}

static void test_errors(void **state)
{
	static const char *const bad_pid[] = { "NODEINIT_TARGET_PID=abc", NULL };
	static const char *const bad_fmt[] = { "NODEINIT_LOG_FORMAT=xml", NULL };
	static const char *const bad_int[] = { "NODEINIT_INTERVAL=0", NULL };

	(void)state;
	expect_error(NULL, "unknown command 'frobnicate'", 2, "frobnicate", NULL, NULL);
	expect_error(NULL, "no command", 1, NULL, NULL, NULL);
	expect_error(NULL, "unknown option '--bogus'", 3, "--bogus", "run", NULL);
	expect_error(NULL, "--target-pid: not a process id: '-3'", 4, "--target-pid", "-3", "run");
	expect_error(NULL, "--target-pid: not a process id: '12x'", 4, "--target-pid", "12x", "run");
	expect_error(NULL, "--interval", 4, "--interval", "99999999", "run");
	expect_error(NULL, "needs a value", 3, "run", "--interval", NULL);
	expect_error(NULL, "unexpected argument 'extra'", 3, "run", "extra", NULL);
	expect_error(bad_pid, "NODEINIT_TARGET_PID: not a process id: 'abc'", 2, "run", NULL, NULL);
	expect_error(bad_fmt, "NODEINIT_LOG_FORMAT: must be text or json, not 'xml'", 2, "run", NULL, NULL);
	expect_error(bad_int, "NODEINIT_INTERVAL", 2, "run", NULL, NULL);
	expect_error(NULL, "--log-level: must be debug, info, warn or error, not 'loud'", 3, "--log-level=loud", "run", NULL);
}

/* --kube, --kube-sa-dir, --startup-taint, --ready-file and their NODEINIT_* twins. */
static void test_kube_options(void **state)
{
	static const char *const env[] = { "NODEINIT_KUBE=off", "NODEINIT_KUBE_SA_DIR=/sa",
					   "NODEINIT_STARTUP_TAINT=example.com/not-ready", "NODEINIT_READY_FILE=/run/x/ready", NULL };
	static const char *const blank[] = { "NODEINIT_STARTUP_TAINT=", "NODEINIT_READY_FILE=", NULL };
	static const char *const bad_kube[] = { "NODEINIT_KUBE=on", NULL };
	struct ni_options o;
	char err[256];

	(void)state;
	assert_int_equal(parse(NULL, &o, err, 2, "nodeinit", "run"), 0);
	assert_false(o.kube_off);
	assert_string_equal(o.kube_sa_dir, "/var/run/secrets/kubernetes.io/serviceaccount");
	assert_null(o.startup_taint);
	assert_null(o.ready_file);
	assert_int_equal(parse(env, &o, err, 2, "nodeinit", "run"), 0);
	assert_true(o.kube_off);
	assert_string_equal(o.kube_sa_dir, "/sa");
	assert_string_equal(o.startup_taint, "example.com/not-ready");
	assert_string_equal(o.ready_file, "/run/x/ready");
	assert_int_equal(parse(env, &o, err, 8, "nodeinit", "--kube=auto", "--kube-sa-dir", "/sa2", "--startup-taint=t",
			       "--ready-file", "/r", "apply"), 0);
	assert_false(o.kube_off);
	assert_string_equal(o.kube_sa_dir, "/sa2");
	assert_string_equal(o.startup_taint, "t");
	assert_string_equal(o.ready_file, "/r");
	assert_int_equal(parse(blank, &o, err, 2, "nodeinit", "run"), 0); /* blank: unset */
	assert_null(o.startup_taint);
	assert_null(o.ready_file);
	expect_error(bad_kube, "NODEINIT_KUBE: must be auto or off, not 'on'", 2, "run", NULL, NULL);
	expect_error(NULL, "--startup-taint: not a taint key", 3, "--startup-taint=a b", "run", NULL);
	expect_error(NULL, "--startup-taint: not a taint key", 3, "--startup-taint=/x", "run", NULL);
	expect_error(NULL, "--startup-taint: not a taint key", 3, "--startup-taint=a/b/c", "run", NULL);
	expect_error(NULL, "--ready-file: must be an absolute path", 3, "--ready-file=run/ready", "run", NULL);
	expect_error(NULL, "--ready-file: must be an absolute path", 3, "--ready-file=/run/../ready", "run", NULL);
	expect_error(NULL, "--kube-sa-dir: empty directory", 3, "--kube-sa-dir=", "run", NULL);
}

static void test_help_version(void **state)
{
	struct ni_options o;
	char err[256];

	(void)state;
	assert_int_equal(parse(NULL, &o, err, 2, "nodeinit", "--help"), 0);
	assert_int_equal(o.command, NI_CMD_HELP);
	assert_int_equal(parse(NULL, &o, err, 2, "nodeinit", "version"), 0);
	assert_int_equal(o.command, NI_CMD_VERSION);
	/* The usage text names every command and option the DESIGN fixes. */
	for (const char *const *w = (const char *const[]){ "run", "apply", "plan", "status", "lint", "version",
							   "--target-pid", "--recipes", "--state-dir", "--interval",
							   "--log-format", "NODEINIT_TARGET_PID", "STARTUP_SCRIPT", NULL };
	     *w; w++)
		assert_non_null(strstr(ni_cli_usage(), *w));
}

static int nsparse(struct ni_nsenter_args *a, char *err, int argc, ...)
{
	char *argv[16];
	va_list ap;

	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;
	return ni_nsenter_parse(argc, argv, a, err, 256);
}

static void test_nsenter_args(void **state)
{
	struct ni_nsenter_args a;
	char err[256];

	(void)state;
	assert_int_equal(nsparse(&a, err, 10, "nsenter", "-t", "1", "-m", "-u", "-i", "-n", "-p", "--", "sh"), 0);
	assert_int_equal(a.target, 1);
	assert_int_equal(a.mask, NI_NS_ALL);
	assert_int_equal(a.command_index, 9);

	assert_int_equal(nsparse(&a, err, 6, "nsenter", "--target=12", "--mount", "--net", "ip", "-4"), 0);
	assert_int_equal(a.target, 12);
	assert_int_equal(a.mask, (1u << NI_NS_MNT) | (1u << NI_NS_NET));
	assert_int_equal(a.command_index, 4); /* "-4" belongs to ip */

	assert_int_equal(nsparse(&a, err, 4, "nsenter", "-t1", "-muinp", "true"), 0);
	assert_int_equal(a.mask, NI_NS_ALL);

	assert_int_equal(nsparse(&a, err, 3, "nsenter", "-m", "true"), -EINVAL);
	assert_non_null(strstr(err, "no target"));
	assert_int_equal(nsparse(&a, err, 4, "nsenter", "-t", "1", "true"), -EINVAL);
	assert_non_null(strstr(err, "no namespace"));
	assert_int_equal(nsparse(&a, err, 5, "nsenter", "-t", "1", "-U", "true"), -EINVAL);
	assert_non_null(strstr(err, "unsupported option '-U'"));
	assert_int_equal(nsparse(&a, err, 5, "nsenter", "-t", "x", "-m", "true"), -EINVAL);
	assert_non_null(strstr(err, "not a process id"));
}

/* util-linux options this nsenter does not implement fail with a message naming the option as given. */
static void test_nsenter_refused(void **state)
{
	struct ni_nsenter_args a;
	char err[256];

	(void)state;
	/* The attached optional argument is a namespace file, not an unknown option "-/". */
	assert_int_equal(nsparse(&a, err, 4, "nsenter", "-t", "1", "-m/proc/1/ns/mnt"), -EINVAL);
	assert_non_null(strstr(err, "unsupported option '-m' with a file ('/proc/1/ns/mnt')"));
	assert_int_equal(nsparse(&a, err, 5, "nsenter", "-t", "1", "--mount=/proc/1/ns/mnt", "true"), -EINVAL);
	assert_non_null(strstr(err, "unsupported option '--mount' with a file ('/proc/1/ns/mnt')"));
	assert_int_equal(nsparse(&a, err, 5, "nsenter", "-t", "1", "--net=/run/netns/blue", "true"), -EINVAL);
	assert_non_null(strstr(err, "'--net' with a file ('/run/netns/blue')"));
	assert_int_equal(nsparse(&a, err, 6, "nsenter", "-t", "1", "-m", "-r", "true"), -EINVAL);
	assert_non_null(strstr(err, "unsupported option '-r':"));
	assert_int_equal(nsparse(&a, err, 6, "nsenter", "-t", "1", "-m", "--root=/srv", "true"), -EINVAL);
	assert_non_null(strstr(err, "unsupported option '--root':"));
	assert_int_equal(nsparse(&a, err, 6, "nsenter", "-t", "1", "-m", "-w/srv", "true"), -EINVAL);
	assert_non_null(strstr(err, "unsupported option '-w':"));
	assert_int_equal(nsparse(&a, err, 6, "nsenter", "-t", "1", "-m", "--wd", "true"), -EINVAL);
	assert_non_null(strstr(err, "unsupported option '--wd':"));
	/* A required value given apart: the message names the option, not its value. */
	assert_int_equal(nsparse(&a, err, 7, "nsenter", "-t", "1", "-m", "-S", "0", "true"), -EINVAL);
	assert_non_null(strstr(err, "unsupported option '-S':"));
	assert_int_equal(nsparse(&a, err, 7, "nsenter", "-t", "1", "-m", "--setgid", "0", "true"), -EINVAL);
	assert_non_null(strstr(err, "unsupported option '--setgid':"));
	assert_int_equal(nsparse(&a, err, 6, "nsenter", "-t", "1", "-m", "--setuid=0", "true"), -EINVAL);
	assert_non_null(strstr(err, "unsupported option '--setuid':"));
	assert_int_equal(nsparse(&a, err, 5, "nsenter", "-t", "1", "-m", "--setuid"), -EINVAL);
	assert_non_null(strstr(err, "option '--setuid' needs a value"));
	assert_int_equal(nsparse(&a, err, 6, "nsenter", "-t", "1", "-m", "--bogus", "true"), -EINVAL);
	assert_non_null(strstr(err, "unsupported option '--bogus'"));
	assert_int_equal(nsparse(&a, err, 5, "nsenter", "-t", "1", "-mX", "true"), -EINVAL);
	assert_non_null(strstr(err, "'-m' with a file ('X')"));

	/* --preserve-credentials: this nsenter never changes credentials, so it is accepted as is. */
	assert_int_equal(nsparse(&a, err, 6, "nsenter", "-t", "1", "-m", "--preserve-credentials", "true"), 0);
	assert_int_equal(a.mask, 1u << NI_NS_MNT);
	assert_int_equal(a.command_index, 5);
	/* A cluster of namespace letters after -m is still namespaces. */
	assert_int_equal(nsparse(&a, err, 5, "nsenter", "-t", "1", "-mn", "true"), 0);
	assert_int_equal(a.mask, (1u << NI_NS_MNT) | (1u << NI_NS_NET));
	assert_int_equal(a.command_index, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),     cmocka_unit_test(test_env_twins),
		cmocka_unit_test(test_option_beats_env), cmocka_unit_test(test_status_flags),
		cmocka_unit_test(test_eval_file),    cmocka_unit_test(test_errors),
		cmocka_unit_test(test_help_version), cmocka_unit_test(test_nsenter_args),
		cmocka_unit_test(test_nsenter_refused),
		cmocka_unit_test(test_kube_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
