/* Running a command in three parts: spawn (fork+exec, a guard), pump (output, stdin, deadline, cancel),
 * reap (status, captured output). Kills by process group; everything it starts dies with nodeinit. */
#define _GNU_SOURCE
#include "exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "util.h"

#define READ_CHUNK 65536
#define READS_PER_WAKEUP 16 /* then back to poll, so a chatty command cannot starve the deadline */
#define EXIT_POLL_MS 50     /* without a pidfd, how often the child's exit is looked for */

extern char **environ;

/* Captured output of one stream: at most limit bytes kept, the rest counted as dropped. */
struct sink {
	struct ni_buf b;
	size_t limit, dropped;
};

/* One command from spawn to reap. The parent's pipe ends are -1 once closed. */
struct run {
	const struct ni_exec_opts *o;
	pid_t pid, guard; /* 0: none */
	int pidfd;        /* -1: none; the exit is then polled for */
	int in_w, out_r, err_r;
	int guard_w;      /* the guard's pipe: EOF on it means nodeinit is gone */
	size_t in_off;
	int64_t start, deadline; /* deadline -1: none */
	bool killed;
	struct sink out, err;
};

/* What the child reports on the report pipe when it cannot get to exec. */
struct child_report {
	int stage; /* enum ni_exec_stage */
	int err;
};

static void sink_add(struct sink *s, const char *data, size_t n)
{
	size_t room = s->limit > s->b.len ? s->limit - s->b.len : 0, keep = n < room ? n : room;

	/* An allocation failure is sticky in the buffer: from then on everything counts as dropped. */
	if (keep > 0 && ni_buf_put(&s->b, data, keep) < 0)
		keep = 0;
	s->dropped += n - keep;
}

/* Hands the sink's bytes (NUL-terminated) to the result; what cannot be handed over counts as dropped. */
static void sink_steal(struct sink *s, char **ret, size_t *ret_len, size_t *ret_dropped)
{
	size_t len = s->b.len;

	*ret = ni_buf_steal(&s->b, ret_len);
	if (!*ret) {
		*ret_len = 0;
		s->dropped += len;
	}
	*ret_dropped = s->dropped;
}

/*
 * The guard: a child that waits on a pipe only nodeinit writes to. nodeinit moves it into the
 * command's process group and sends one byte ("armed"); EOF after that means nodeinit died (the OOM
 * killer, SIGKILL at the end of a grace period), and the guard kills the whole group, itself
 * included. PR_SET_PDEATHSIG reaches only the command itself (a fork clears it), so without the
 * guard a script's own children would outlive nodeinit. nodeinit kills the guard before it reaps
 * the command, so the group id it kills cannot have been reused.
 */
static _Noreturn void guard_main(int fd)
{
	bool armed = false;
	char c;

	for (;;) {
		ssize_t n = read(fd, &c, 1);
		if (n == 1)
			armed = true;
		else if (n == 0 || errno != EINTR)
			break;
	}
	if (armed)
		kill(0, SIGKILL);
	_exit(0);
}

/* Forked before the command's pipes exist, so the guard holds none of them (a stdin pipe it held
 * open would never reach EOF). Leaves the guard in our own group until arm_guard. */
static int spawn_guard(struct run *run)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	run->guard = fork();
	if (run->guard < 0) {
		int r = -errno;
		ni_safe_close(p[0]);
		ni_safe_close(p[1]);
		run->guard = 0;
		return r;
	}
	if (run->guard == 0) {
		close(p[1]);
		guard_main(p[0]);
	}
	ni_safe_close(p[0]);
	run->guard_w = p[1];
	return 0;
}

/* Moves the guard into the command's group, then arms it; a guard that could not be moved stays unarmed. */
static void arm_guard(struct run *run)
{
	if (run->guard > 0 && setpgid(run->guard, run->pid) == 0)
		(void)!write(run->guard_w, "a", 1);
}

static void stop_guard(struct run *run)
{
	if (run->guard > 0) {
		kill(run->guard, SIGKILL);
		while (waitpid(run->guard, NULL, 0) < 0 && errno == EINTR)
			;
		run->guard = 0;
	}
	run->guard_w = ni_safe_close(run->guard_w);
}

/*
 * In the child: die with nodeinit, wire fds, leave our signal setup behind, exec; report what failed
 * on the report pipe. Must be called from a thread that lives as long as nodeinit: the death signal
 * fires when the forking thread exits, not the process.
 */
static _Noreturn void child_exec(const struct ni_exec_opts *o, int in_fd, int out_fd, int err_fd, const int rep[2])
{
	struct child_report rep_msg = { .stage = NI_EXEC_STAGE_FDS };
	struct pollfd alive = { .fd = rep[1], .events = POLLOUT };
	sigset_t none;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* nodeinit may have died before the prctl, and then nothing signals us. getppid() cannot tell
	 * (in the target's PID namespace it reads 0 whether nodeinit lives or not), the report pipe can:
	 * its read end lives only in nodeinit once ours is closed, and a pipe without readers polls POLLERR. */
	close(rep[0]);
	if (poll(&alive, 1, 0) < 0 || (alive.revents & POLLERR))
		_exit(128 + SIGKILL);

	if (!o->keep_group)
		setpgid(0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);

	if ((in_fd >= 0 && dup2(in_fd, 0) < 0) || (out_fd >= 0 && dup2(out_fd, 1) < 0) ||
	    (err_fd >= 0 && dup2(err_fd, 2) < 0))
		goto fail;
	rep_msg.stage = NI_EXEC_STAGE_CWD;
	if (o->cwd && chdir(o->cwd) < 0)
		goto fail;
	/* execvp looks argv[0] up in the PATH of environ: the command's environment, not ours. */
	if (o->envp)
		environ = (char **)o->envp;
	rep_msg.stage = NI_EXEC_STAGE_EXEC;
	/* exec* take char *const[] for historical reasons; they do not write to it. */
	execvp(o->argv[0], (char *const *)o->argv);
fail:
	rep_msg.err = errno;
	(void)!write(rep[1], &rep_msg, sizeof(rep_msg));
	_exit(rep_msg.err == ENOENT ? 127 : 126);
}

static void kill_child(struct run *run)
{
	/* The whole group, so a timeout also ends what the command started; the leader if none. */
	if (run->o->keep_group || kill(-run->pid, SIGKILL) < 0)
		kill(run->pid, SIGKILL);
	run->killed = true;
}

/*
 * Forks the guard and the command; returns once the command has exec'd or failed to (then
 * ret->exec_errno says why). -errno when it could not be started; nothing is left running then.
 */
static int spawn(struct run *run, struct ni_exec_result *ret)
{
	const struct ni_exec_opts *o = run->o;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, rep[2] = { -1, -1 };
	_cleanup_close_ int null_fd = -1;
	struct child_report cr;
	ssize_t n;
	int r = 0;

	if (!o->keep_group && (r = spawn_guard(run)) < 0)
		return r;
	if (pipe2(rep, O_CLOEXEC) < 0 ||
	    (o->stdin_mode == NI_EXEC_STDIN_NULL && (null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) ||
	    (o->stdin_mode == NI_EXEC_STDIN_DATA && pipe2(in, O_CLOEXEC) < 0) ||
	    (o->capture && (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0))) {
		r = -errno;
		goto out;
	}

	/* glibc's fork() is a clone(), never clone3() (5.3): kernels before 5.3 see nothing new here. */
	run->pid = fork();
	if (run->pid < 0) {
		r = -errno;
		run->pid = 0;
		goto out;
	}
	if (run->pid == 0)
		child_exec(o, o->stdin_mode == NI_EXEC_STDIN_DATA ? in[0] : null_fd, out[1], err[1], rep);

	/* Both sides set the group, so a kill right after fork cannot miss it. */
	if (!o->keep_group)
		setpgid(run->pid, run->pid);
	arm_guard(run);
	/* A pidfd turns the exit into a poll event. Without one (ENOSYS before 5.3, EPERM under an old
	 * seccomp profile, valgrind) the exit is looked for every EXIT_POLL_MS: later, never missed. */
	run->pidfd = (int)syscall(SYS_pidfd_open, run->pid, 0);

	rep[1] = ni_safe_close(rep[1]);
	do
		n = read(rep[0], &cr, sizeof(cr));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(cr)) {
		ret->exec_errno = cr.err;
		ret->exec_stage = (enum ni_exec_stage)cr.stage;
	}

	run->in_w = steal_fd(&in[1]);
	run->out_r = steal_fd(&out[0]);
	run->err_r = steal_fd(&err[0]);
	if (run->in_w >= 0) {
		fcntl(run->in_w, F_SETFL, O_NONBLOCK);
		if (o->stdin_len == 0)
			run->in_w = ni_safe_close(run->in_w);
	}
	if (run->out_r >= 0)
		fcntl(run->out_r, F_SETFL, O_NONBLOCK);
	if (run->err_r >= 0)
		fcntl(run->err_r, F_SETFL, O_NONBLOCK);
out:
	for (int i = 0; i < 2; i++) {
		ni_safe_close(in[i]);
		ni_safe_close(out[i]);
		ni_safe_close(err[i]);
		ni_safe_close(rep[i]);
	}
	if (r < 0)
		stop_guard(run);
	return r;
}

/* Reads what is there into the sink; false at EOF or error (the pipe is then closed). */
static bool drain(struct run *run, int *fd, struct sink *s, int stream)
{
	char buf[READ_CHUNK];

	for (int i = 0; i < READS_PER_WAKEUP; i++) {
		ssize_t n = read(*fd, buf, sizeof(buf));
		if (n > 0) {
			if (run->o->on_output)
				run->o->on_output(run->o->userdata, stream, buf, (size_t)n);
			sink_add(s, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		*fd = ni_safe_close(*fd);
		return false;
	}
	return true;
}

static void feed_stdin(struct run *run)
{
	const struct ni_exec_opts *o = run->o;
	ssize_t w = write(run->in_w, o->stdin_data + run->in_off, o->stdin_len - run->in_off);

	if (w > 0)
		run->in_off += (size_t)w;
	if ((w < 0 && errno != EAGAIN && errno != EINTR) || run->in_off == o->stdin_len)
		run->in_w = ni_safe_close(run->in_w);
}

static bool child_exited(const struct run *run)
{
	siginfo_t si = { 0 };

	return waitid(P_PID, (id_t)run->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == run->pid;
}

/*
 * Moves output and stdin until the command exits; kills its group at the deadline or when the
 * cancel fd turns readable. The pipes may stay open in grandchildren, so the exit is the end.
 */
static int pump(struct run *run, struct ni_exec_result *ret)
{
	const struct ni_exec_opts *o = run->o;

	for (;;) {
		struct pollfd p[5] = {
			{ .fd = run->pidfd, .events = POLLIN },
			{ .fd = run->out_r, .events = POLLIN },
			{ .fd = run->err_r, .events = POLLIN },
			{ .fd = run->in_w, .events = POLLOUT },
			{ .fd = run->killed ? -1 : o->cancel_fd, .events = POLLIN },
		};
		int wait_ms = -1, n;

		if (run->deadline >= 0 && !run->killed) {
			int64_t left = run->deadline - ni_now_ms();
			wait_ms = left > 0 ? (int)left : 0;
		}
		if (run->pidfd < 0) {
			if (child_exited(run))
				return 0;
			if (wait_ms < 0 || wait_ms > EXIT_POLL_MS)
				wait_ms = EXIT_POLL_MS;
		}
		n = poll(p, NI_ELEMENTSOF(p), wait_ms);
		if (n < 0 && errno != EINTR) {
			int r = -errno;
			kill_child(run);
			return r;
		}
		/* Checked on every wakeup: output arriving all the time must not hold off the deadline. */
		if (run->deadline >= 0 && !run->killed && ni_now_ms() >= run->deadline) {
			ret->timed_out = true;
			kill_child(run);
		}
		if (n <= 0)
			continue;
		if (p[4].revents) {
			ret->canceled = true;
			kill_child(run);
		}
		if (p[1].revents)
			drain(run, &run->out_r, &run->out, 1);
		if (p[2].revents)
			drain(run, &run->err_r, &run->err, 2);
		if (p[3].revents)
			feed_stdin(run);
		if (p[0].revents)
			return 0;
	}
}

/* Takes the output still buffered in the pipes, stops the guard, then collects the status. */
static int reap(struct run *run, struct ni_exec_result *ret)
{
	siginfo_t si = { 0 };
	int r = 0;

	if (run->out_r >= 0)
		drain(run, &run->out_r, &run->out, 1);
	if (run->err_r >= 0)
		drain(run, &run->err_r, &run->err, 2);
	stop_guard(run);
	while (waitid(P_PID, (id_t)run->pid, &si, WEXITED) < 0) {
		if (errno != EINTR) {
			r = -errno;
			break;
		}
	}
	if (si.si_code == CLD_EXITED) {
		ret->code = si.si_status;
	} else {
		ret->signal = si.si_status;
		ret->code = 128 + si.si_status;
	}
	ret->duration_ms = (long)(ni_now_ms() - run->start);
	sink_steal(&run->out, &ret->out, &ret->out_len, &ret->out_dropped);
	sink_steal(&run->err, &ret->err, &ret->err_len, &ret->err_dropped);
	return r;
}

int ni_exec_run(const struct ni_exec_opts *o, struct ni_exec_result *ret)
{
	struct run run = {
		.o = o, .pidfd = -1, .in_w = -1, .out_r = -1, .err_r = -1, .guard_w = -1, .start = ni_now_ms(),
		/* +1: the NUL that ni_buf_steal adds must fit under the buffer's own limit. */
		.out = { .b = NI_BUF_INIT(o->capture_limit + 1), .limit = o->capture_limit },
		.err = { .b = NI_BUF_INIT(o->capture_limit + 1), .limit = o->capture_limit },
	};
	int r, r2;

	*ret = (struct ni_exec_result){ 0 };
	if (!o->argv || !o->argv[0])
		return -EINVAL;
	run.deadline = o->timeout_ms > 0 ? run.start + o->timeout_ms : -1;

	r = spawn(&run, ret);
	if (r < 0)
		return r;
	r = pump(&run, ret);
	r2 = reap(&run, ret);
	ni_safe_close(run.pidfd);
	ni_safe_close(run.in_w);
	ni_safe_close(run.out_r);
	ni_safe_close(run.err_r);
	ni_buf_free(&run.out.b);
	ni_buf_free(&run.err.b);
	return r < 0 ? r : r2;
}

void ni_exec_result_free(struct ni_exec_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}
