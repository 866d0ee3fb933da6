/* Running a command: argv only, env, stdin, cwd, timeout over the whole process group, bounded capture. */
#ifndef NI_EXEC_H
#define NI_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum ni_exec_stdin {
	NI_EXEC_STDIN_NULL,    /* /dev/null */
	NI_EXEC_STDIN_INHERIT, /* ours, as the legacy manager did */
	NI_EXEC_STDIN_DATA,    /* stdin_data, stdin_len */
};

/* Called with output as it arrives; stream is 1 or 2. Runs in the parent, between polls. */
typedef void (*ni_exec_output_fn)(void *userdata, int stream, const char *buf, size_t len);

struct ni_exec_opts {
	const char *const *argv; /* argv[0] is looked up in the PATH of envp (or ours) */
	char *const *envp;      /* NULL: our own environment */
	const char *cwd;        /* NULL: unchanged */
	enum ni_exec_stdin stdin_mode;
	const char *stdin_data;
	size_t stdin_len;
	bool capture;           /* pipe stdout/stderr (else they are inherited) */
	size_t capture_limit;   /* bytes kept per stream; the rest is counted and dropped */
	ni_exec_output_fn on_output;
	void *userdata;
	long timeout_ms;        /* <= 0: none */
	int cancel_fd;          /* -1 or an fd whose readability means: kill and return */
	bool keep_group;        /* stay in our process group (interactive nsenter); else a group of its own */
};

/* Where the child stopped when it could not run the command. */
enum ni_exec_stage {
	NI_EXEC_STAGE_EXEC, /* execvp(argv[0]) */
	NI_EXEC_STAGE_CWD,  /* chdir(cwd) */
	NI_EXEC_STAGE_FDS,  /* wiring stdin/stdout/stderr */
};

struct ni_exec_result {
	int code;        /* exit status, or 128 + signal like a shell, or 127/126 when exec failed */
	int signal;      /* terminating signal, 0 when it exited */
	int exec_errno;  /* non-zero when argv[0] could not be executed */
	enum ni_exec_stage exec_stage; /* with exec_errno: what failed */
	bool timed_out;
	bool canceled;
	char *out, *err; /* NUL-terminated when capturing */
	size_t out_len, err_len;
	size_t out_dropped, err_dropped;
	long duration_ms;
};

/*
 * The caller ignores SIGPIPE (stdin data may meet a closed pipe); the child gets default signals
 * and an empty mask. Returns 0 once the command ran (whatever its status), -errno when it could
 * not be started.
 *
 * Nothing it starts outlives the caller: the command gets PR_SET_PDEATHSIG(SIGKILL), and unless
 * keep_group, a guard process in the command's group kills the whole group when the caller dies
 * (commands that leave the group, setsid or a daemon's double fork, are not followed). The death
 * signal fires when the forking THREAD exits: call this from a thread that lives as long as the
 * process (nodeinit's main thread).
 */
int ni_exec_run(const struct ni_exec_opts *opts, struct ni_exec_result *ret);

void ni_exec_result_free(struct ni_exec_result *r);

#endif
