/* The step watchdog: it fires after the grace past a deadline or a stop signal (in a child process,
 * since firing ends the process), writing the step's failed record; a disarm in time keeps it quiet. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "watchdog.h"
#include "unit.h"

#define FP "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define BOOT "11111111-1111-1111-1111-111111111111"

static struct ni_log quiet_log(void)
{
	return (struct ni_log){ .format = NI_LOG_TEXT, .min_level = NI_LOG_ERROR, .out = fopen("/dev/null", "w") };
}

static struct ni_step_record record(void)
{
	struct ni_step_record r = { .name = (char *)"stuck step", .result = NI_RESULT_INTERRUPTED, .started_ms = 1000,
				    .failures = 2 };

	memcpy(r.fingerprint, FP, sizeof(FP));
	memcpy(r.boot_id, BOOT, sizeof(BOOT));
	return r;
}

/* What the journal (a memfd) holds. */
static char *journal_text(int fd, char *buf, size_t size)
{
	ssize_t n = pread(fd, buf, size - 1, 0);

	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

/* In a child: arms with the given deadline (and a stop signal raised when stop), then hangs as a step
 * stuck in C would. The watchdog must end it. */
static _Noreturn void stuck_child(int journal_fd, int64_t deadline_ms, bool stop)
{
	struct ni_log log = quiet_log();
	struct ni_step_record rec = record();
	struct ni_watchdog *wd;
	sigset_t set;
	int sig_fd;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig_fd < 0 || ni_watchdog_new(&log, sig_fd, &wd) < 0)
		_exit(90);
	if (ni_watchdog_arm(wd, &(struct ni_watchdog_step){ .recipe = "r", .rec = &rec, .journal_fd = journal_fd,
							    .t0_ms = ni_now_ms(), .deadline_ms = deadline_ms,
							    .interval_s = 30 }) < 0)
		_exit(91);
	if (stop)
		kill(getpid(), SIGUSR1);
	for (;;)
		pause();
}

static void expect_fired(bool stop)
{
	char buf[4096];
	int fd = memfd_create("journal", MFD_CLOEXEC), status = 0;
	pid_t pid;

	assert_true(fd >= 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		stuck_child(fd, stop ? 0 : ni_now_ms() - NI_WATCHDOG_GRACE_MS, stop);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	journal_text(fd, buf, sizeof(buf));
	/* the one line of the record: failed, one more failure, a back-off after it */
	assert_non_null(strstr(buf, "end stuck%20step result=failed fp=" FP " boot=" BOOT " started_ms=1000 "));
	assert_non_null(strstr(buf, " exit=1 failures=3 retry_after_ms="));
	assert_int_equal(strchr(buf, '\n') - buf + 1, (long)strlen(buf));
	close(fd);
}

static void test_fires_past_deadline(void **state)
{
	(void)state;
	expect_fired(false);
}

static void test_fires_after_stop_signal(void **state)
{
	(void)state;
	expect_fired(true);
}

/* Disarmed before its time: nothing written, the process lives on; armed again, it works again. */
static void test_disarm_in_time(void **state)
{
	struct ni_log log = quiet_log();
	struct ni_step_record rec = record();
	struct ni_watchdog *wd = NULL;
	char buf[256];
	int fd = memfd_create("journal", MFD_CLOEXEC);
	struct ni_watchdog_step ws = { .recipe = "r", .rec = &rec, .journal_fd = fd, .interval_s = 30 };

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ni_watchdog_new(&log, -1, &wd), 0);
	for (int i = 0; i < 3; i++) {
		ws.t0_ms = ni_now_ms();
		ws.deadline_ms = ws.t0_ms - NI_WATCHDOG_GRACE_MS + 300; /* would fire 300 ms from now */
		assert_int_equal(ni_watchdog_arm(wd, &ws), 0);
		ni_watchdog_disarm(wd);
	}
	usleep(600 * 1000);
	assert_string_equal(journal_text(fd, buf, sizeof(buf)), "");
	ni_watchdog_free(wd);
	fclose(log.out);
	close(fd);
}

static void test_arm_refuses_bad_record(void **state)
{
	struct ni_log log = quiet_log();
	struct ni_step_record rec = record();
	struct ni_watchdog *wd = NULL;

	(void)state;
	assert_int_equal(ni_watchdog_new(&log, -1, &wd), 0);
	rec.name = (char *)"";
	assert_int_equal(ni_watchdog_arm(wd, &(struct ni_watchdog_step){ .recipe = "r", .rec = &rec, .journal_fd = 0 }),
			 -EINVAL);
	rec = record();
	assert_int_equal(ni_watchdog_arm(wd, &(struct ni_watchdog_step){ .recipe = "r", .rec = &rec, .journal_fd = -1 }),
			 -EINVAL);
	ni_watchdog_free(wd);
	fclose(log.out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fires_past_deadline),
		cmocka_unit_test(test_fires_after_stop_signal),
		cmocka_unit_test(test_disarm_in_time),
		cmocka_unit_test(test_arm_refuses_bad_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
