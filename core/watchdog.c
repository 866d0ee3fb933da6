/* The step watchdog: a thread that records a step stuck past its timeout or a stop signal as failed
 * and ends the process, when the Lua count hook cannot (the main thread is stuck in C). */
#define _GNU_SOURCE
#include "watchdog.h"
#include "fileio.h"

#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sched.h>
#include <sys/eventfd.h>

#include "cli.h"
#include "schedule.h"
#include "statedir.h"
#include "util.h"

/* Room for one "end" line: a step name escaped (at most 4 bytes out for 1 in) and the fields. */
#define LINE_ROOM (4 * NI_STATE_STEP_NAME_MAX + 1024)

enum wd_state {
	WD_IDLE,  /* no step: the thread sleeps in poll on ctl_fd alone */
	WD_ARMED, /* a step runs */
	WD_FIRED, /* the thread owns the step's record and is ending the process */
	WD_QUIT,
};

struct ni_watchdog {
	const struct ni_log *log;
	int sig_fd, ctl_fd; /* ctl_fd: an eventfd the main thread writes after each change of state */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t started;
	/* under lock */
	int start_err;     /* 1 until the thread has set itself up, then 0 or -errno */
	enum wd_state state;
	int64_t t0_ms, deadline_ms, stop_ms; /* stop_ms: when the stop signal was seen; 0: not yet */
	int journal_fd;
	unsigned interval_s;
	struct ni_step_record rec; /* our own copy: the main thread's may be anywhere when we fire */
	char name[NI_STATE_STEP_NAME_MAX + 1], recipe[NAME_MAX + 1];
	struct ni_buf line;        /* LINE_ROOM reserved up front: firing allocates nothing */
};

static void poke(struct ni_watchdog *wd)
{
	uint64_t one = 1;

	(void)!write(wd->ctl_fd, &one, sizeof(one));
}

/*
 * Runs on the watchdog thread once it moved the state to WD_FIRED, and never returns. Why this is
 * safe while the main thread is stuck: it touches no Lua state, and only memory the main thread
 * cannot be changing. The record and its line buffer are the watchdog's own (copied and reserved at
 * arm time, so nothing is allocated here). The journal fd is written by the main thread only outside
 * an armed window (the start line before arm, the end line after disarm), and a disarm that finds
 * WD_FIRED never returns, so no line of the main thread can follow or interleave with ours; the fd
 * is O_APPEND, so ours lands at the end whatever offset the main thread last used. ni_log takes only
 * the log stream's own lock, which no thread holds across a blocking call.
 */
static _Noreturn void fire(struct ni_watchdog *wd, bool stopped)
{
	struct ni_step_record *rec = &wd->rec;
	char dur[24];
	int r;

	rec->result = NI_RESULT_FAILED;
	rec->exit_code = 1;
	rec->duration_ms = ni_now_ms() - wd->t0_ms;
	rec->failures++;
	rec->retry_after_ms = rec->started_ms + rec->duration_ms + ni_backoff_ms(rec->failures, wd->interval_s);
	wd->line.len = 0;
	ni_journal_put_end(&wd->line, rec);
	r = wd->line.err;
	if (r == 0)
		r = ni_write_all(wd->journal_fd, wd->line.p, wd->line.len);
	if (r == 0 && fdatasync(wd->journal_fd) < 0)
		r = -errno;
	ni_i64_dec(rec->duration_ms, dur);
	ni_log(wd->log, NI_LOG_ERROR, "step failed", "recipe", wd->recipe, "step", rec->name, "duration_ms", dur,
	       "reason", "timeout in native code", "error",
	       stopped ? "stuck in native code (C, a finalizer, an error handler or __close): it did not stop "
			 "within the grace after the stop signal; exiting"
		       : "stuck in native code (C, a finalizer, an error handler or __close) past the step's "
			 "timeout and the grace; exiting",
	       NULL);
	if (r < 0)
		ni_log(wd->log, NI_LOG_ERROR, "cannot record the step as failed; it shows as interrupted", "recipe",
		       wd->recipe, "step", rec->name, "error", strerror(-r), NULL);
	/* _exit, not exit: no atexit handler or stdio flush may wait on the stuck thread. The step's
	 * commands die with the process: their death signal and their group's guard (exec.h). */
	_exit(NI_EXIT_FAILED);
}

static void *watch(void *arg)
{
	struct ni_watchdog *wd = arg;
	bool stopped = false;
	/* A thread shares the file system attributes (CLONE_FS) of the main thread, and the kernel lets
	 * no thread that shares them join a mount namespace (setns gives EINVAL): our own copy leaves the
	 * main thread free to enter the host's. This thread never uses a path. */
	int r = unshare(CLONE_FS) < 0 ? -errno : 0;

	pthread_mutex_lock(&wd->lock);
	wd->start_err = r;
	pthread_cond_signal(&wd->started);
	if (r < 0)
		wd->state = WD_QUIT;
	for (;;) {
		struct pollfd p[2] = { { .fd = wd->ctl_fd, .events = POLLIN }, { .fd = -1, .events = POLLIN } };
		int64_t fire_at = -1, now;
		int timeout = -1, n;

		if (wd->state == WD_QUIT)
			break;
		if (wd->state == WD_ARMED) {
			if (wd->deadline_ms)
				fire_at = wd->deadline_ms + NI_WATCHDOG_GRACE_MS;
			if (wd->stop_ms && (fire_at < 0 || wd->stop_ms + NI_WATCHDOG_GRACE_MS < fire_at))
				fire_at = wd->stop_ms + NI_WATCHDOG_GRACE_MS;
			/* The signalfd stays readable until the run loop reads it: polled once per step. */
			if (!wd->stop_ms)
				p[1].fd = wd->sig_fd;
		}
		now = ni_now_ms();
		if (fire_at >= 0 && now >= fire_at) {
			stopped = wd->stop_ms && (!wd->deadline_ms || wd->stop_ms < wd->deadline_ms);
			wd->state = WD_FIRED;
			break;
		}
		if (fire_at >= 0)
			timeout = fire_at - now > INT_MAX ? INT_MAX : (int)(fire_at - now);
		pthread_mutex_unlock(&wd->lock);
		n = poll(p, 2, timeout);
		if (n > 0 && (p[0].revents & POLLIN)) {
			uint64_t v;
			(void)!read(wd->ctl_fd, &v, sizeof(v));
		}
		pthread_mutex_lock(&wd->lock);
		/* A stop seen for a step that has ended since is still pending: it holds for the next one too. */
		if (n > 0 && p[1].revents && wd->state == WD_ARMED && !wd->stop_ms)
			wd->stop_ms = ni_now_ms();
	}
	pthread_mutex_unlock(&wd->lock);
	if (wd->state == WD_FIRED)
		fire(wd, stopped);
	return NULL;
}

int ni_watchdog_new(const struct ni_log *log, int sig_fd, struct ni_watchdog **ret)
{
	struct ni_watchdog *wd = calloc(1, sizeof(*wd));
	pthread_attr_t attr;
	sigset_t all, old;
	int r;

	if (!wd)
		return -ENOMEM;
	wd->log = log;
	wd->sig_fd = sig_fd;
	wd->journal_fd = -1;
	wd->line = NI_BUF_INIT(0);
	wd->ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (wd->ctl_fd < 0) {
		r = -errno;
		free(wd);
		return r;
	}
	wd->start_err = 1;
	if ((r = ni_buf_reserve(&wd->line, LINE_ROOM)) < 0 || (r = -pthread_mutex_init(&wd->lock, NULL)) < 0) {
		ni_buf_free(&wd->line);
		ni_safe_close(wd->ctl_fd);
		free(wd);
		return r;
	}
	pthread_cond_init(&wd->started, NULL);
	/* Every signal blocked on the thread: SIGTERM must stay on the signalfd, and nothing else may
	 * interrupt or be delivered to it. A small stack: it formats one line. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	r = -pthread_create(&wd->thread, &attr, watch, wd);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r == 0) {
		pthread_mutex_lock(&wd->lock);
		while (wd->start_err == 1)
			pthread_cond_wait(&wd->started, &wd->lock);
		r = wd->start_err;
		pthread_mutex_unlock(&wd->lock);
		if (r < 0)
			pthread_join(wd->thread, NULL);
	}
	if (r < 0) {
		pthread_cond_destroy(&wd->started);
		pthread_mutex_destroy(&wd->lock);
		ni_buf_free(&wd->line);
		ni_safe_close(wd->ctl_fd);
		free(wd);
		return r;
	}
	*ret = wd;
	return 0;
}

int ni_watchdog_arm(struct ni_watchdog *wd, const struct ni_watchdog_step *s)
{
	if (!ni_step_record_ok(s->rec) || strlen(s->rec->name) >= sizeof(wd->name) ||
	    strlen(s->recipe) >= sizeof(wd->recipe) || s->journal_fd < 0)
		return -EINVAL;
	pthread_mutex_lock(&wd->lock);
	wd->rec = *s->rec;
	snprintf(wd->name, sizeof(wd->name), "%s", s->rec->name);
	wd->rec.name = wd->name;
	snprintf(wd->recipe, sizeof(wd->recipe), "%s", s->recipe);
	wd->journal_fd = s->journal_fd;
	wd->t0_ms = s->t0_ms;
	wd->deadline_ms = s->deadline_ms;
	wd->interval_s = s->interval_s;
	wd->stop_ms = 0;
	wd->state = WD_ARMED;
	pthread_mutex_unlock(&wd->lock);
	poke(wd);
	return 0;
}

void ni_watchdog_disarm(struct ni_watchdog *wd)
{
	bool fired;

	pthread_mutex_lock(&wd->lock);
	fired = wd->state == WD_FIRED;
	if (wd->state == WD_ARMED)
		wd->state = WD_IDLE;
	pthread_mutex_unlock(&wd->lock);
	/* The step came back just too late: the watchdog owns its record now and is ending the process. */
	while (fired)
		pause();
	/* No poke: an idle wakeup costs a syscall for nothing; the thread sees IDLE at its next wakeup
	 * (the deadline it was waiting for), and sleeps without a timeout from then on. */
}

void ni_watchdog_free(struct ni_watchdog *wd)
{
	if (!wd)
		return;
	pthread_mutex_lock(&wd->lock);
	wd->state = WD_QUIT;
	pthread_mutex_unlock(&wd->lock);
	poke(wd);
	pthread_join(wd->thread, NULL);
	pthread_cond_destroy(&wd->started);
	pthread_mutex_destroy(&wd->lock);
	ni_buf_free(&wd->line);
	ni_safe_close(wd->ctl_fd);
	free(wd);
}
