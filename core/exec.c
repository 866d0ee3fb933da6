/* fork+exec with a pidfd, poll over output pipes, a deadline and a cancel fd; kills by process group. */
#define _GNU_SOURCE
#include "exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "util.h"

#define READ_CHUNK 65536
#define READS_PER_WAKEUP 16 /* then back to poll, so a chatty command cannot starve the deadline */

extern char **environ;

struct sink {
	char *buf;
	size_t len, cap, limit, dropped;
};

static int sink_add(struct sink *s, const char *data, size_t n)
{
	size_t keep = s->len < s->limit ? s->limit - s->len : 0;

	if (keep > n)
		keep = n;
	s->dropped += n - keep;
	if (keep == 0)
		return 0;
	if (s->len + keep + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < s->len + keep + 1)
			cap *= 2;
		char *b = realloc(s->buf, cap);
		if (!b)
			return -ENOMEM;
		s->buf = b;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, data, keep);
	s->len += keep;
	s->buf[s->len] = '\0';
	return 0;
}

/* What the child reports on the report pipe when it cannot get to exec. */
struct child_report {
	int stage; /* enum ni_exec_stage */
	int err;
};

/* In the child: wire fds, leave our signal setup behind, exec; report what failed on report_fd. */
static _Noreturn void child_exec(const struct ni_exec_opts *o, int in_fd, int out_fd, int err_fd, int report_fd)
{
	struct child_report rep = { .stage = NI_EXEC_STAGE_FDS };
	sigset_t none;

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
	rep.stage = NI_EXEC_STAGE_CWD;
	if (o->cwd && chdir(o->cwd) < 0)
		goto fail;
	/* execvp looks argv[0] up in the PATH of environ: the command's environment, not ours. */
	if (o->envp)
		environ = (char **)o->envp;
	rep.stage = NI_EXEC_STAGE_EXEC;
	/* exec* take char *const[] for historical reasons; they do not write to it. */
	execvp(o->argv[0], (char *const *)o->argv);
fail:
	rep.err = errno;
	(void)!write(report_fd, &rep, sizeof(rep));
	_exit(rep.err == ENOENT ? 127 : 126);
}

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void kill_child(const struct ni_exec_opts *o, pid_t pid)
{
	/* The whole group, so a timeout also ends what the command started; the leader if none. */
	if (o->keep_group || kill(-pid, SIGKILL) < 0)
		kill(pid, SIGKILL);
}

/* Reads what is there; returns false at EOF or error (the pipe is then closed). */
static bool drain(int *fd, struct sink *s, int stream, const struct ni_exec_opts *o)
{
	char buf[READ_CHUNK];

	for (int i = 0; i < READS_PER_WAKEUP; i++) {
		ssize_t n = read(*fd, buf, sizeof(buf));
		if (n > 0) {
			if (o->on_output)
				o->on_output(o->userdata, stream, buf, (size_t)n);
			if (sink_add(s, buf, (size_t)n) < 0)
				s->dropped += (size_t)n;
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

int ni_exec_run(const struct ni_exec_opts *o, struct ni_exec_result *ret)
{
	int in_pipe[2] = { -1, -1 }, out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 }, rep[2] = { -1, -1 };
	_cleanup_close_ int null_fd = -1, pidfd = -1;
	struct sink out = { .limit = o->capture_limit }, err = { .limit = o->capture_limit };
	size_t in_off = 0;
	long start = ni_now_ms(), deadline = o->timeout_ms > 0 ? start + o->timeout_ms : -1;
	bool killed = false;
	siginfo_t si = { 0 };
	pid_t pid;
	int r;

	*ret = (struct ni_exec_result){ 0 };
	if (!o->argv || !o->argv[0])
		return -EINVAL;

	if (pipe2(rep, O_CLOEXEC) < 0)
		return -errno;
	if (o->stdin_mode == NI_EXEC_STDIN_NULL && (null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		r = -errno;
		goto out_close;
	}
	if ((o->stdin_mode == NI_EXEC_STDIN_DATA && pipe2(in_pipe, O_CLOEXEC) < 0) ||
	    (o->capture && (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0))) {
		r = -errno;
		goto out_close;
	}

	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto out_close;
	}
	if (pid == 0)
		child_exec(o, o->stdin_mode == NI_EXEC_STDIN_DATA ? in_pipe[0] : null_fd, out_pipe[1], err_pipe[1], rep[1]);

	/* Both sides set the group, so a kill right after fork cannot miss it. */
	if (!o->keep_group)
		setpgid(pid, pid);
	pidfd = pidfd_open_(pid);
	if (pidfd < 0 && errno != ENOSYS) {
		r = -errno;
		kill_child(o, pid);
		waitpid(pid, NULL, 0);
		goto out_close;
	}
	in_pipe[0] = ni_safe_close(in_pipe[0]);
	out_pipe[1] = ni_safe_close(out_pipe[1]);
	err_pipe[1] = ni_safe_close(err_pipe[1]);
	rep[1] = ni_safe_close(rep[1]);
	null_fd = ni_safe_close(null_fd);

	{
		struct child_report cr;
		ssize_t n;
		do
			n = read(rep[0], &cr, sizeof(cr));
		while (n < 0 && errno == EINTR);
		if (n == (ssize_t)sizeof(cr)) {
			ret->exec_errno = cr.err;
			ret->exec_stage = (enum ni_exec_stage)cr.stage;
		}
	}

	if (in_pipe[1] >= 0) {
		fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
		if (o->stdin_len == 0)
			in_pipe[1] = ni_safe_close(in_pipe[1]);
	}
	if (out_pipe[0] >= 0)
		fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
	if (err_pipe[0] >= 0)
		fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);

	/* pidfd readable = child exited; pipes may stay open in grandchildren, so that is the end. */
	r = 0;
	for (;;) {
		struct pollfd p[5] = {
			{ .fd = pidfd, .events = POLLIN },
			{ .fd = out_pipe[0], .events = POLLIN },
			{ .fd = err_pipe[0], .events = POLLIN },
			{ .fd = in_pipe[1], .events = POLLOUT },
			{ .fd = killed ? -1 : o->cancel_fd, .events = POLLIN },
		};
		int wait_ms = -1, n;

		if (deadline >= 0 && !killed) {
			long left = deadline - ni_now_ms();
			wait_ms = left > 0 ? (int)left : 0;
		}
		/* No pidfd (kernel < 5.3, or valgrind): look for the exit every 50 ms instead. */
		if (pidfd < 0) {
			siginfo_t peek = { 0 };
			if (waitid(P_PID, (id_t)pid, &peek, WEXITED | WNOHANG | WNOWAIT) == 0 && peek.si_pid == pid)
				break;
			if (wait_ms < 0 || wait_ms > 50)
				wait_ms = 50;
		}
		n = poll(p, NI_ELEMENTSOF(p), wait_ms);
		if (n < 0 && errno != EINTR) {
			r = -errno;
			kill_child(o, pid);
			break;
		}
		/* Checked on every wakeup: output arriving all the time must not hold off the deadline. */
		if (deadline >= 0 && !killed && ni_now_ms() >= deadline) {
			ret->timed_out = true;
			kill_child(o, pid);
			killed = true;
		}
		if (n <= 0)
			continue;
		if (p[4].revents) {
			ret->canceled = true;
			kill_child(o, pid);
			killed = true;
		}
		if (p[1].revents)
			drain(&out_pipe[0], &out, 1, o);
		if (p[2].revents)
			drain(&err_pipe[0], &err, 2, o);
		if (p[3].revents) {
			ssize_t w = write(in_pipe[1], o->stdin_data + in_off, o->stdin_len - in_off);
			if (w > 0)
				in_off += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off == o->stdin_len)
				in_pipe[1] = ni_safe_close(in_pipe[1]);
		}
		if (p[0].revents)
			break;
	}

	if (out_pipe[0] >= 0)
		drain(&out_pipe[0], &out, 1, o);
	if (err_pipe[0] >= 0)
		drain(&err_pipe[0], &err, 2, o);

	if (waitid(P_PID, (id_t)pid, &si, WEXITED) < 0)
		r = r < 0 ? r : -errno;
	if (si.si_code == CLD_EXITED) {
		ret->code = si.si_status;
	} else {
		ret->signal = si.si_status;
		ret->code = 128 + si.si_status;
	}
	ret->duration_ms = ni_now_ms() - start;
	ret->out = out.buf;
	ret->out_len = out.len;
	ret->out_dropped = out.dropped;
	ret->err = err.buf;
	ret->err_len = err.len;
	ret->err_dropped = err.dropped;
	out.buf = err.buf = NULL;

out_close:
	free(out.buf);
	free(err.buf);
	for (int i = 0; i < 2; i++) {
		ni_safe_close(in_pipe[i]);
		ni_safe_close(out_pipe[i]);
		ni_safe_close(err_pipe[i]);
		ni_safe_close(rep[i]);
	}
	return r;
}

void ni_exec_result_free(struct ni_exec_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}
