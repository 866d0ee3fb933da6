/* exec.c against real commands: status, signals, exec failures, timeouts over a process tree, bounds, stdin, cancel. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec.h"
#include "util.h"
#include "unit.h"

static int run(const char *const *argv, struct ni_exec_opts *o, struct ni_exec_result *res)
{
	o->argv = argv;
	o->capture = true;
	if (!o->capture_limit)
		o->capture_limit = 1 << 20;
	if (!o->cancel_fd)
		o->cancel_fd = -1;
	return ni_exec_run(o, res);
}

static void test_exit_codes(void **state)
{
	struct ni_exec_opts o = { 0 };
	struct ni_exec_result res;

	(void)state;
	assert_int_equal(run((const char *[]){ "true", NULL }, &o, &res), 0);
	assert_int_equal(res.code, 0);
	assert_int_equal(res.signal, 0);
	assert_int_equal(res.exec_errno, 0);
	ni_exec_result_free(&res);

	assert_int_equal(run((const char *[]){ "sh", "-c", "exit 3", NULL }, &o, &res), 0);
	assert_int_equal(res.code, 3);
	assert_false(res.timed_out);
	ni_exec_result_free(&res);
}

static void test_signal(void **state)
{
	struct ni_exec_opts o = { 0 };
	struct ni_exec_result res;

	(void)state;
	assert_int_equal(run((const char *[]){ "sh", "-c", "kill -TERM $$", NULL }, &o, &res), 0);
	assert_int_equal(res.signal, SIGTERM);
	assert_int_equal(res.code, 128 + SIGTERM);
	ni_exec_result_free(&res);
}

static void test_exec_failures(void **state)
{
	struct ni_exec_opts o = { 0 };
	struct ni_exec_result res;

	(void)state;
	assert_int_equal(run((const char *[]){ "ni-no-such-command", NULL }, &o, &res), 0);
	assert_int_equal(res.exec_errno, ENOENT);
	assert_int_equal(res.exec_stage, NI_EXEC_STAGE_EXEC);
	assert_int_equal(res.code, 127);
	ni_exec_result_free(&res);

	/* A file that is not executable: 126, like a shell. */
	assert_int_equal(run((const char *[]){ "/etc/passwd", NULL }, &o, &res), 0);
	assert_int_equal(res.exec_errno, EACCES);
	assert_int_equal(res.code, 126);
	ni_exec_result_free(&res);

	o.cwd = "/ni-no-such-dir";
	assert_int_equal(run((const char *[]){ "true", NULL }, &o, &res), 0);
	assert_int_equal(res.exec_errno, ENOENT);
	assert_int_equal(res.exec_stage, NI_EXEC_STAGE_CWD);
	ni_exec_result_free(&res);

	assert_int_equal(run((const char *[]){ NULL }, &o, &res), -EINVAL);
}

/* True once pid is gone or a zombie. */
static bool dead(pid_t pid)
{
	char path[64], buf[256];
	FILE *f;
	bool zombie;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	zombie = fgets(buf, sizeof(buf), f) && strstr(buf, ") Z ");
	fclose(f);
	return zombie;
}

/* The timeout kills the group: the command and what it started in the background. */
static void test_timeout_kills_tree(void **state)
{
	struct ni_exec_opts o = { .timeout_ms = 300 };
	struct ni_exec_result res;
	long start = ni_now_ms();
	pid_t bg;

	(void)state;
	/* Orphans come to us, so the background sleep can be reaped and seen dead by its signal. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	assert_int_equal(run((const char *[]){ "sh", "-c", "sleep 100 & echo $!; sleep 100", NULL }, &o, &res), 0);
	assert_true(res.timed_out);
	assert_int_equal(res.signal, SIGKILL);
	assert_int_equal(res.code, 137);
	assert_true(ni_now_ms() - start < 5000);
	bg = (pid_t)atoi(res.out);
	assert_true(bg > 0);
	for (int i = 0; i < 100 && !dead(bg); i++)
		usleep(20000);
	assert_true(dead(bg));
	{
		int st = 0;
		if (waitpid(bg, &st, 0) == bg)
			assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	}
	ni_exec_result_free(&res);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
}

/* A command that never stops writing still meets its deadline. */
static void test_timeout_chatty(void **state)
{
	struct ni_exec_opts o = { .timeout_ms = 300 };
	struct ni_exec_result res;
	long start = ni_now_ms();

	(void)state;
	assert_int_equal(run((const char *[]){ "yes", NULL }, &o, &res), 0);
	assert_true(res.timed_out);
	assert_true(ni_now_ms() - start < 5000);
	assert_int_equal(res.out_len, 1 << 20);
	assert_true(res.out_dropped > 0);
	ni_exec_result_free(&res);
}

static void test_output_bounds(void **state)
{
	struct ni_exec_opts o = { .capture_limit = 1 << 20 };
	struct ni_exec_result res;

	(void)state;
	assert_int_equal(run((const char *[]){ "sh", "-c", "head -c 3000000 /dev/zero; head -c 10 /dev/zero >&2", NULL },
			     &o, &res), 0);
	assert_int_equal(res.code, 0);
	assert_int_equal(res.out_len, 1 << 20);
	assert_int_equal(res.out_dropped, 3000000 - (1 << 20));
	assert_int_equal(res.err_len, 10);
	assert_int_equal(res.err_dropped, 0);
	ni_exec_result_free(&res);
}

struct seen {
	size_t bytes[3];
	int calls;
};

static void count_output(void *userdata, int stream, const char *buf, size_t len)
{
	struct seen *s = userdata;

	(void)buf;
	s->bytes[stream] += len;
	s->calls++;
}

/* Streamed output sees every byte, also those dropped from the capture. */
static void test_on_output(void **state)
{
	struct seen seen = { 0 };
	struct ni_exec_opts o = { .capture_limit = 100, .on_output = count_output, .userdata = &seen };
	struct ni_exec_result res;

	(void)state;
	assert_int_equal(run((const char *[]){ "sh", "-c", "head -c 200000 /dev/zero; echo oops >&2", NULL }, &o, &res), 0);
	assert_int_equal(seen.bytes[1], 200000);
	assert_int_equal(seen.bytes[2], 5);
	assert_int_equal(res.out_len, 100);
	assert_int_equal(res.out_dropped, 200000 - 100);
	assert_string_equal(res.err, "oops\n");
	ni_exec_result_free(&res);
}

/* More than a pipe's worth of stdin arrives whole; a command that does not read it does not hang us. */
static void test_stdin(void **state)
{
	size_t n = 300000;
	char *data = malloc(n);
	struct ni_exec_opts o = { .stdin_mode = NI_EXEC_STDIN_DATA, .capture_limit = 1 << 20 };
	struct ni_exec_result res;

	(void)state;
	for (size_t i = 0; i < n; i++)
		data[i] = (char)('a' + i % 26);
	o.stdin_data = data;
	o.stdin_len = n;
	assert_int_equal(run((const char *[]){ "cat", NULL }, &o, &res), 0);
	assert_int_equal(res.out_len, n);
	assert_memory_equal(res.out, data, n);
	ni_exec_result_free(&res);

	assert_int_equal(run((const char *[]){ "true", NULL }, &o, &res), 0);
	assert_int_equal(res.code, 0);
	ni_exec_result_free(&res);
	free(data);

	/* No stdin: /dev/null, so a reader sees EOF at once. */
	o = (struct ni_exec_opts){ 0 };
	assert_int_equal(run((const char *[]){ "cat", NULL }, &o, &res), 0);
	assert_int_equal(res.out_len, 0);
	ni_exec_result_free(&res);
}

static void test_env_cwd(void **state)
{
	static char greeting[] = "NI_GREETING=hello there", path[] = "PATH=/usr/bin:/bin", nowhere[] = "PATH=/ni-nowhere";
	char *const envp[] = { greeting, path, NULL };
	struct ni_exec_opts o = { .envp = envp, .cwd = "/" };
	struct ni_exec_result res;

	(void)state;
	assert_int_equal(run((const char *[]){ "sh", "-c", "echo \"$NI_GREETING\"; pwd; echo ${HOME:-nohome}", NULL },
			     &o, &res), 0);
	assert_string_equal(res.out, "hello there\n/\nnohome\n");
	ni_exec_result_free(&res);

	/* argv[0] is looked up in the command's PATH, not ours. */
	char *const nopath[] = { nowhere, NULL };
	o.envp = nopath;
	assert_int_equal(run((const char *[]){ "true", NULL }, &o, &res), 0);
	assert_int_equal(res.exec_errno, ENOENT);
	ni_exec_result_free(&res);
}

/* A readable cancel fd (SIGTERM's signalfd in nodeinit) kills the command and says so. */
static void test_cancel(void **state)
{
	struct ni_exec_opts o = { 0 };
	struct ni_exec_result res;
	long start = ni_now_ms();
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	o.cancel_fd = p[0];
	assert_int_equal(run((const char *[]){ "sleep", "100", NULL }, &o, &res), 0);
	assert_true(res.canceled);
	assert_false(res.timed_out);
	assert_int_equal(res.signal, SIGKILL);
	assert_true(ni_now_ms() - start < 5000);
	ni_exec_result_free(&res);
	close(p[0]);
	close(p[1]);
}

/* Nothing is left behind: the guard is reaped with the command. */
static void test_no_leftover_children(void **state)
{
	struct ni_exec_opts o = { 0 };
	struct ni_exec_result res;

	(void)state;
	assert_int_equal(run((const char *[]){ "true", NULL }, &o, &res), 0);
	ni_exec_result_free(&res);
	errno = 0;
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/*
 * A process that runs `sh -c "sleep 100 & echo $$ $!; wait"` through ni_exec_run is SIGKILLed:
 * the shell and its background sleep must die with it. We are their subreaper, so we can reap
 * them and see the signal. Returns through *ret_pids the two pids the shell wrote.
 */
static void kill_runner_during(bool keep_group, const char *script, pid_t ret_pids[2])
{
	int p[2];
	pid_t runner;
	char line[64] = "";
	ssize_t n;

	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	assert_int_equal(pipe(p), 0); /* the command writes its pids to fd 9, a dup without O_CLOEXEC */
	runner = fork();
	assert_true(runner >= 0);
	if (runner == 0) {
		struct ni_exec_opts o = { .keep_group = keep_group, .cancel_fd = -1, .stdin_mode = NI_EXEC_STDIN_NULL };
		struct ni_exec_result res;
		o.argv = (const char *const[]){ "sh", "-c", script, NULL };
		close(p[0]);
		if (dup2(p[1], 9) < 0)
			_exit(1);
		ni_exec_run(&o, &res);
		_exit(0);
	}
	close(p[1]);
	n = read(p[0], line, sizeof(line) - 1);
	close(p[0]);
	assert_true(n > 0);
	ret_pids[0] = ret_pids[1] = 0;
	assert_true(sscanf(line, "%d %d", &ret_pids[0], &ret_pids[1]) >= 1);
	assert_int_equal(kill(runner, SIGKILL), 0);
	assert_int_equal(waitpid(runner, NULL, 0), runner);
}

static void assert_killed(pid_t pid)
{
	int st = 0;

	for (int i = 0; i < 500 && !dead(pid); i++)
		usleep(20000);
	assert_true(dead(pid));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
}

/* The command and what it started die with the process that ran it (the guard kills the group). */
static void test_children_die_with_runner(void **state)
{
	pid_t pids[2];

	(void)state;
	kill_runner_during(false, "sleep 100 & echo $$ $! >&9; wait", pids);
	assert_true(pids[0] > 0 && pids[1] > 0);
	assert_killed(pids[0]);
	assert_killed(pids[1]);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
}

/* In our own group (the nsenter personality) there is no guard: the death signal alone ends the command. */
static void test_command_dies_with_runner_keep_group(void **state)
{
	pid_t pids[2];

	(void)state;
	kill_runner_during(true, "echo $$ >&9; exec sleep 100", pids);
	assert_true(pids[0] > 0);
	assert_killed(pids[0]);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* First: later tests leave orphans behind that would count as our children. */
		cmocka_unit_test(test_no_leftover_children),
		cmocka_unit_test(test_exit_codes),      cmocka_unit_test(test_signal),
		cmocka_unit_test(test_exec_failures),   cmocka_unit_test(test_timeout_kills_tree),
		cmocka_unit_test(test_timeout_chatty),  cmocka_unit_test(test_output_bounds),
		cmocka_unit_test(test_on_output),       cmocka_unit_test(test_stdin),
		cmocka_unit_test(test_env_cwd),         cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_children_die_with_runner),
		cmocka_unit_test(test_command_dies_with_runner_keep_group),
	};

	signal(SIGPIPE, SIG_IGN); /* ni_exec_run's contract: stdin data may meet a closed pipe */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
