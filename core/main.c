/* Entry point: parses the command line, enters the target host, dispatches; the only place that exits. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <sys/signalfd.h>

#include "cli.h"
#include "ctx.h"
#include "engine.h"
#include "exec.h"
#include "legacy.h"
#include "luart.h"
#include "ns.h"
#include "nsenter.h"
#include "util.h"

#ifndef NI_VERSION
#define NI_VERSION "0.0.0-dev"
#endif

static const char *env(const char *name)
{
	return getenv(name);
}

/* Maps a failure to enter the target to one line that says what to fix. Returns NI_EXIT_TARGET. */
static int target_error(const char *who, pid_t pid, enum ni_ns_kind kind, int r)
{
	if (r == -ESRCH)
		fprintf(stderr, "%s: cannot enter the target: no such process: pid %d (with the default --target-pid 1 "
				"the pod needs hostPID: true)\n", who, (int)pid);
	else if (r == -EPERM || r == -EACCES)
		fprintf(stderr, "%s: cannot %s the %s namespace of pid %d: %s (needs root with CAP_SYS_ADMIN, "
				"CAP_SYS_PTRACE and CAP_SYS_CHROOT: run the pod privileged)\n",
			who, kind == _NI_NS_MAX ? "see" : "enter", ni_ns_name(kind), (int)pid, strerror(-r));
	else
		fprintf(stderr, "%s: cannot enter the %s namespace of pid %d: %s\n", who, ni_ns_name(kind), (int)pid,
			strerror(-r));
	return NI_EXIT_TARGET;
}

/* Opens /proc, then every namespace of pid in mask, then joins them all. */
static int enter(const char *who, int proc_fd, pid_t pid, unsigned mask)
{
	struct ni_ns ns;
	enum ni_ns_kind failed = _NI_NS_MAX;
	int r;

	r = ni_ns_open(proc_fd, pid, mask, &ns, &failed);
	if (r < 0)
		return target_error(who, pid, failed, r);
	r = ni_ns_join(&ns, &failed);
	ni_ns_close(&ns);
	if (r < 0)
		return target_error(who, pid, failed, r);
	return NI_EXIT_OK;
}

static int nsenter_main(int argc, char **argv)
{
	struct ni_nsenter_args a;
	char err[256];
	_cleanup_close_ int proc_fd = -1;
	struct ni_exec_result res;
	const char *shell[] = { getenv("SHELL"), NULL };
	struct ni_exec_opts o = { .stdin_mode = NI_EXEC_STDIN_INHERIT, .cancel_fd = -1, .keep_group = true };
	int r;

	if (ni_nsenter_parse(argc, argv, &a, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return NI_EXIT_USAGE;
	}
	proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (proc_fd < 0) {
		fprintf(stderr, "nsenter: cannot open /proc: %m\n");
		return NI_EXIT_TARGET;
	}
	r = enter("nsenter", proc_fd, a.target, a.mask);
	if (r != NI_EXIT_OK)
		return r;
	if (!shell[0])
		shell[0] = "/bin/sh";
	/* No command: util-linux runs $SHELL, or /bin/sh. */
	o.argv = a.command_index < argc ? (const char *const *)argv + a.command_index : shell;
	/* Always through a child: the PID namespace only applies to children. */
	r = ni_exec_run(&o, &res);
	if (r < 0) {
		fprintf(stderr, "nsenter: cannot run %s: %s\n", o.argv[0], strerror(-r));
		return 126;
	}
	if (res.exec_errno)
		fprintf(stderr, "nsenter: failed to execute %s: %s\n", o.argv[0], strerror(res.exec_errno));
	ni_exec_result_free(&res);
	return res.code;
}

/* SIGTERM and SIGINT arrive on a signalfd: the idle loop polls it, a running command is canceled by it. */
static int make_sig_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Joins the target's namespaces and opens the host's root: after this, "/" means the host's. */
static int enter_host(struct ni_ctx *ctx)
{
	int r = enter("nodeinit", ctx->proc_fd, ctx->opt.target_pid, NI_NS_ALL);

	if (r != NI_EXIT_OK)
		return r;
	ctx->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (ctx->root_fd < 0) {
		fprintf(stderr, "nodeinit: cannot open the host's root directory: %m\n");
		return NI_EXIT_TARGET;
	}
	return NI_EXIT_OK;
}

static int cmd_apply(struct ni_ctx *ctx, bool forever)
{
	struct ni_legacy legacy = { .script = getenv("STARTUP_SCRIPT") };
	int r;

	if (!legacy.script) {
		fprintf(stderr, "nodeinit: nothing to do: no recipes in %s and STARTUP_SCRIPT is not set\n",
			ctx->opt.recipes_dir);
		return NI_EXIT_USAGE;
	}
	if (ni_legacy_checkpoint_path(legacy.script, getenv("CHECKPOINT_PATH"), &legacy.checkpoint) < 0) {
		fprintf(stderr, "nodeinit: out of memory\n");
		return NI_EXIT_FAILED;
	}
	r = enter_host(ctx);
	if (r == NI_EXIT_OK) {
		ni_log(&ctx->log, NI_LOG_INFO, forever ? "nodeinit running" : "nodeinit applying", "version",
		       NI_VERSION, NULL);
		r = ni_engine_loop(ctx, &legacy, forever);
	}
	free(legacy.checkpoint);
	return r;
}

/* Reads a whole file (or stdin for "-") before entering the host: it lives on the container side. */
static int read_all(const char *path, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = ni_streq(path, "-") ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;
		if (len + 4096 > cap) {
			char *b = realloc(buf, cap = cap ? 2 * cap : 65536);
			if (!b)
				return -ENOMEM;
			buf = b;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = steal_pointer(&buf);
	*ret_len = len;
	return 0;
}

/* eval FILE|-: one chunk against the host with every module and no checkpoints; prints its results. */
static int cmd_eval(struct ni_ctx *ctx)
{
	_cleanup_free_ char *src = NULL;
	char chunkname[512];
	lua_State *L = NULL;
	size_t len = 0;
	int r;

	r = read_all(ctx->opt.eval_file, &src, &len);
	if (r < 0) {
		fprintf(stderr, "nodeinit: eval: %s: %s\n", ctx->opt.eval_file, strerror(-r));
		return NI_EXIT_USAGE;
	}
	snprintf(chunkname, sizeof(chunkname), "@%s", ni_streq(ctx->opt.eval_file, "-") ? "stdin" : ctx->opt.eval_file);
	r = enter_host(ctx);
	if (r != NI_EXIT_OK)
		return r;
	L = ni_lua_new(ctx);
	if (!L) {
		fprintf(stderr, "nodeinit: eval: cannot create a Lua state: out of memory\n");
		return NI_EXIT_FAILED;
	}
	ctx->step = "eval";
	ni_lua_push_env(L);
	if (ni_lua_load(L, chunkname, src, len, -1) != LUA_OK) {
		fprintf(stderr, "nodeinit: eval: %s\n", lua_tostring(L, -1));
		r = NI_EXIT_USAGE;
	} else if (ni_lua_pcall(L, 0, LUA_MULTRET) != LUA_OK) {
		fprintf(stderr, "nodeinit: eval: %s\n", lua_tostring(L, -1));
		r = NI_EXIT_FAILED;
	} else {
		int top = lua_gettop(L);
		for (int i = 2; i <= top; i++) { /* 1 is the environment */
			fputs(luaL_tolstring(L, i, NULL), stdout);
			fputs(i < top ? "\t" : "\n", stdout);
			lua_pop(L, 1);
		}
		r = NI_EXIT_OK;
	}
	ni_lua_close(L);
	return r;
}

int main(int argc, char **argv)
{
	struct ni_ctx ctx = { .proc_fd = -1, .root_fd = -1, .proc_sys_fd = -1, .sig_fd = -1 };
	const char *base = strrchr(argv[0], '/');
	char err[256];
	int r;

	signal(SIGPIPE, SIG_IGN);
	if (ni_streq(base ? base + 1 : argv[0], "nsenter"))
		return nsenter_main(argc, argv);

	if (ni_cli_parse(argc, argv, env, &ctx.opt, err, sizeof(err)) < 0) {
		fprintf(stderr, "nodeinit: %s\n", err);
		return NI_EXIT_USAGE;
	}
	ctx.log = (struct ni_log){ .format = ctx.opt.log_format, .min_level = NI_LOG_INFO, .out = stderr };

	switch (ctx.opt.command) {
	case NI_CMD_HELP:
		fputs(ni_cli_usage(), stdout);
		return NI_EXIT_OK;
	case NI_CMD_VERSION:
		printf("nodeinit %s\n", NI_VERSION);
		return NI_EXIT_OK;
	case NI_CMD_RUN:
	case NI_CMD_APPLY:
	case NI_CMD_EVAL:
		break;
	default:
		fprintf(stderr, "nodeinit: this command is not built yet\n");
		return NI_EXIT_USAGE;
	}

	ctx.proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (ctx.proc_fd < 0) {
		fprintf(stderr, "nodeinit: cannot open /proc: %m\n");
		return NI_EXIT_TARGET;
	}
	ctx.sig_fd = make_sig_fd();
	if (ctx.sig_fd < 0) {
		fprintf(stderr, "nodeinit: cannot set up signal handling: %m\n");
		return NI_EXIT_FAILED;
	}
	r = ctx.opt.command == NI_CMD_EVAL ? cmd_eval(&ctx) : cmd_apply(&ctx, ctx.opt.command == NI_CMD_RUN);
	ni_safe_close(ctx.proc_sys_fd);
	ni_safe_close(ctx.root_fd);
	ni_safe_close(ctx.sig_fd);
	ni_safe_close(ctx.proc_fd);
	return r;
}
