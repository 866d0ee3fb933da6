/* Entry point: parses the command line, enters the target host, dispatches; the only place that exits. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>

#include "cli.h"
#include "ctx.h"
#include "engine.h"
#include "exec.h"
#include "file.h"
#include "kube.h"
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

/* Maps a failure to enter the target to one line that says what to fix, and which namespaces were
 * left unjoined. Returns NI_EXIT_TARGET. */
static int target_error(const char *who, pid_t pid, enum ni_ns_kind kind, unsigned unjoined, int r)
{
	char names[NI_NS_NAMES_MAX], left[64 + NI_NS_NAMES_MAX] = "";

	if (unjoined)
		snprintf(left, sizeof(left), " (not joined: %s)", ni_ns_names(unjoined, names));
	if (r == -ESRCH)
		fprintf(stderr, "%s: cannot enter the target: no such process: pid %d (with the default --target-pid 1 "
				"the pod needs hostPID: true)\n", who, (int)pid);
	else if (r == -EPERM || r == -EACCES)
		fprintf(stderr, "%s: cannot %s the %s namespace of pid %d: %s%s (needs root with CAP_SYS_ADMIN, "
				"CAP_SYS_PTRACE and CAP_SYS_CHROOT: run the pod privileged)\n",
			who, kind == _NI_NS_MAX ? "see" : "enter", ni_ns_name(kind), (int)pid, strerror(-r), left);
	else
		fprintf(stderr, "%s: cannot enter the %s namespace of pid %d: %s%s\n", who, ni_ns_name(kind), (int)pid,
			strerror(-r), left);
	return NI_EXIT_TARGET;
}

/* Opens /proc, then every namespace of pid in mask, then joins them all. */
static int enter(const char *who, int proc_fd, pid_t pid, unsigned mask)
{
	struct ni_ns ns;
	enum ni_ns_kind failed = _NI_NS_MAX;
	unsigned unjoined = 0;
	int r;

	/* Without hostPID, pid 1 is nodeinit itself: "entering" it would set up the container, not the host. */
	if (pid == getpid()) {
		fprintf(stderr, "%s: cannot enter the target: pid %d is this process itself, not the host's init "
				"(the pod needs hostPID: true)\n", who, (int)pid);
		return NI_EXIT_TARGET;
	}
	r = ni_ns_open(proc_fd, pid, mask, &ns, &failed);
	if (r < 0)
		return target_error(who, pid, failed, 0, r);
	r = ni_ns_join(&ns, &failed, &unjoined);
	ni_ns_close(&ns);
	if (r < 0)
		return target_error(who, pid, failed, unjoined, r);
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
	char pid[16];
	int r;

	/* Watched during a pass: once the target exits, nothing can be run in its namespaces. (Not a
	 * pidfd: valgrind does not know pidfd_open and would say so on every run.) */
	snprintf(pid, sizeof(pid), "%d", (int)ctx->opt.target_pid);
	ctx->target_fd = openat(ctx->proc_fd, pid, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ctx->watch_target = ctx->target_fd >= 0;
	r = enter("nodeinit", ctx->proc_fd, ctx->opt.target_pid, NI_NS_ALL);
	if (r != NI_EXIT_OK)
		return r;
	ctx->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (ctx->root_fd < 0) {
		fprintf(stderr, "nodeinit: cannot open the host's root directory: %m\n");
		return NI_EXIT_TARGET;
	}
	return NI_EXIT_OK;
}

/*
 * lint and the loaders print problems as "file:line: message" (recipe.lua adds ":col" where it knows
 * it), the form editors and CI problem matchers understand. A problem of the whole file (unreadable,
 * a duplicate recipe name) points at its first line, so it still has the form.
 */
/* A problem's file name and message come from the recipes: escaped, so neither can forge a line or
 * drive the terminal. */
static void print_problem(void *ud, const char *file, int line, const char *msg)
{
	(void)ud;
	if (file) {
		ni_text_escape(stderr, file);
		fprintf(stderr, ":%d: ", line > 0 ? line : 1);
	}
	ni_text_escape(stderr, msg);
	fputc('\n', stderr);
}

/* The recipe directory, opened on the container side before anything enters the host. */
static int open_recipes(struct ni_engine *e)
{
	e->recipes_fd = open(e->ctx->opt.recipes_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (e->recipes_fd < 0 && errno != ENOENT) {
		fprintf(stderr, "nodeinit: cannot open the recipe directory %s: %m\n", e->ctx->opt.recipes_dir);
		return NI_EXIT_USAGE;
	}
	return NI_EXIT_OK;
}

static int load_recipes(struct ni_engine *e)
{
	size_t problems;
	int r = ni_engine_load(e, print_problem, NULL, &problems);

	if (r == -EINVAL) {
		fprintf(stderr, "nodeinit: %zu problem%s in the recipes of %s\n", problems, problems == 1 ? "" : "s",
			e->ctx->opt.recipes_dir);
		return NI_EXIT_USAGE;
	}
	if (r < 0) {
		fprintf(stderr, "nodeinit: cannot load the recipes of %s: %s\n", e->ctx->opt.recipes_dir, strerror(-r));
		return NI_EXIT_USAGE;
	}
	return NI_EXIT_OK;
}

static int cmd_lint(struct ni_engine *e)
{
	size_t steps = 0;
	int r = open_recipes(e);

	if (r != NI_EXIT_OK)
		return r;
	if (e->recipes_fd < 0) {
		fprintf(stderr, "nodeinit: lint: no such directory: %s\n", e->ctx->opt.recipes_dir);
		return NI_EXIT_USAGE;
	}
	r = load_recipes(e);
	if (r != NI_EXIT_OK)
		return r;
	for (size_t i = 0; i < e->set.n; i++)
		steps += e->set.recipes[i].n_steps;
	printf("%s: %zu recipe%s, %zu step%s, no problems\n", e->ctx->opt.recipes_dir, e->set.n, e->set.n == 1 ? "" : "s",
	       steps, steps == 1 ? "" : "s");
	return NI_EXIT_OK;
}

static int legacy_from_env(struct ni_engine *e)
{
	e->legacy.script = getenv("STARTUP_SCRIPT");
	if (e->legacy.script &&
	    ni_legacy_checkpoint_path(e->legacy.script, getenv("CHECKPOINT_PATH"), &e->legacy.checkpoint) < 0) {
		fprintf(stderr, "nodeinit: out of memory\n");
		return NI_EXIT_FAILED;
	}
	return NI_EXIT_OK;
}

/* Watches the recipe directory from the container side: a ConfigMap update swaps its ..data link. */
static int watch_recipes(struct ni_ctx *ctx)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	if (fd < 0)
		return -1;
	if (inotify_add_watch(fd, ctx->opt.recipes_dir, IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
								IN_CLOSE_WRITE | IN_ATTRIB | IN_DONT_FOLLOW) < 0) {
		ni_log(&ctx->log, NI_LOG_WARN, "not watching the recipe directory; changes apply at the next interval",
		       "dir", ctx->opt.recipes_dir, "error", strerror(errno), NULL);
		return ni_safe_close(fd);
	}
	return fd;
}

/*
 * Every command reaches the state dir through ni_state_open. plan and status never create it: missing
 * means nothing recorded (state_fd stays -1). A state dir that fails the trust rules (statedir.h) is
 * bad input, exit 2, with the path, its owner and mode, and the rule: never a silent wait on a lock
 * another user holds, never a record another user forged.
 */
static int open_state_dir(struct ni_engine *e, bool read_only)
{
	const char *dir = e->ctx->opt.state_dir;
	struct ni_state_refusal why;
	int r;

	r = ni_state_open(e->ctx->root_fd, dir, read_only ? NI_STATE_OPEN_READ_ONLY : 0, &e->state_fd, &why);
	if (r == -ENOLINK) {
		fprintf(stderr, "nodeinit: refusing the state dir %s: %s is owned by uid %u, mode %04o: %s\n", dir, why.path,
			(unsigned)why.uid, (unsigned)(why.mode & 07777), why.rule);
		return NI_EXIT_USAGE;
	}
	if (r < 0 && r != -ENOENT && read_only) {
		fprintf(stderr, "nodeinit: cannot read the state in %s: %s\n", dir, strerror(-r));
		return NI_EXIT_FAILED;
	}
	/* apply/run: another failure is the pass's to report (legacy mode works without a state dir) */
	return NI_EXIT_OK;
}

/* run, apply, plan: recipes are read on the container side first, then the host is entered. */
static int cmd_apply(struct ni_engine *e)
{
	struct ni_ctx *ctx = e->ctx;
	_cleanup_close_ int inotify_fd = -1;
	bool forever = ctx->opt.command == NI_CMD_RUN;
	int r;

	if ((r = legacy_from_env(e)) != NI_EXIT_OK || (r = open_recipes(e)) != NI_EXIT_OK)
		return r;
	if (forever && e->recipes_fd >= 0)
		inotify_fd = watch_recipes(ctx);
	/* apply and run take the steps from the fingerprint cache in the host's state dir when it answers
	 * (cache.h), so they load after entering the host; the recipe files stay reachable through the fd */
	e->use_cache = ctx->opt.command != NI_CMD_PLAN;
	if (!e->use_cache && (r = load_recipes(e)) != NI_EXIT_OK)
		return r;
	if (!e->legacy.script && e->recipes_fd < 0) {
		fprintf(stderr, "nodeinit: nothing to do: no recipes in %s and STARTUP_SCRIPT is not set\n",
			ctx->opt.recipes_dir);
		return NI_EXIT_USAGE;
	}
	/* Only with a recipe directory: an idle legacy-only run makes no thread. */
	if (ctx->opt.command != NI_CMD_PLAN && e->recipes_fd >= 0)
		ni_engine_start_watchdog(e);
	/* Container side, before the host is entered: the token, the CA and the pod's netns are here. */
	if (ctx->opt.command != NI_CMD_PLAN && ni_kube_new(ctx, env, true, &ctx->kube) < 0) {
		fprintf(stderr, "nodeinit: out of memory\n");
		return NI_EXIT_FAILED;
	}
	r = enter_host(ctx);
	if (r != NI_EXIT_OK)
		return r;
	if ((r = open_state_dir(e, ctx->opt.command == NI_CMD_PLAN)) != NI_EXIT_OK)
		return r;
	if (e->use_cache && (r = load_recipes(e)) != NI_EXIT_OK)
		return r;
	if (!e->legacy.script && e->set.n == 0) {
		fprintf(stderr, "nodeinit: nothing to do: no recipes in %s and STARTUP_SCRIPT is not set\n",
			ctx->opt.recipes_dir);
		return NI_EXIT_USAGE;
	}
	if (ctx->opt.command == NI_CMD_PLAN)
		return ni_engine_plan(e, stdout) < 0 ? NI_EXIT_FAILED : NI_EXIT_OK;
	ni_log(&ctx->log, NI_LOG_INFO, forever ? "nodeinit running" : "nodeinit applying", "version", NI_VERSION, NULL);
	return forever ? ni_engine_run(e, inotify_fd) : ni_engine_pass(e);
}

static int cmd_status(struct ni_engine *e)
{
	bool converged = false;
	int r;

	if ((r = legacy_from_env(e)) != NI_EXIT_OK || (r = enter_host(e->ctx)) != NI_EXIT_OK ||
	    (r = open_state_dir(e, true)) != NI_EXIT_OK)
		return r;
	r = ni_engine_status(e, e->ctx->opt.json, stdout, &converged);
	if (r < 0) {
		fprintf(stderr, "nodeinit: status: cannot read the state in %s: %s\n", e->ctx->opt.state_dir, strerror(-r));
		return NI_EXIT_FAILED;
	}
	return e->ctx->opt.ready && !converged ? NI_EXIT_FAILED : NI_EXIT_OK;
}

/* In a protected call: prints its arguments as eval's result line (tab-separated, as print does). */
static int print_results(lua_State *L)
{
	int top = lua_gettop(L);

	for (int i = 1; i <= top; i++) {
		fputs(luaL_tolstring(L, i, NULL), stdout);
		fputs(i < top ? "\t" : "\n", stdout);
		lua_pop(L, 1);
	}
	return 0;
}

/* eval FILE|-: one chunk against the host with every module and no checkpoints; prints its results. */
static int cmd_eval(struct ni_ctx *ctx)
{
	_cleanup_free_ char *src = NULL;
	_cleanup_close_ int fd = -1;
	char chunkname[512];
	lua_State *L = NULL;
	size_t len = 0;
	int r;

	/* Read before entering the host: the file is on the container side. */
	fd = ni_streq(ctx->opt.eval_file, "-") ? dup(0) : open(ctx->opt.eval_file, O_RDONLY | O_CLOEXEC);
	r = fd < 0 ? -errno : ni_file_read_fd(fd, NI_RECIPE_MAX_SIZE, &src, &len);
	if (r < 0) {
		fprintf(stderr, "nodeinit: eval: %s: %s\n", ctx->opt.eval_file, strerror(-r));
		return NI_EXIT_USAGE;
	}
	snprintf(chunkname, sizeof(chunkname), "@%s", ni_streq(ctx->opt.eval_file, "-") ? "stdin" : ctx->opt.eval_file);
	if (ni_kube_new(ctx, env, false, &ctx->kube) < 0) /* for kube.node() */
		return NI_EXIT_FAILED;
	r = enter_host(ctx);
	if (r != NI_EXIT_OK)
		return r;
	L = ni_lua_new(ctx);
	if (!L) {
		fprintf(stderr, "nodeinit: eval: cannot create a Lua state: out of memory\n");
		return NI_EXIT_FAILED;
	}
	/* eval's chunk is all step: every module acts, as in a step's body. */
	ctx->step = "eval";
	ctx->phase = NI_PHASE_STEP;
	if (ni_lua_push_env(L) != LUA_OK) {
		fprintf(stderr, "nodeinit: eval: %s\n", lua_tostring(L, -1));
		r = NI_EXIT_FAILED;
	} else if (ni_lua_load(L, chunkname, src, len, -1) != LUA_OK) {
		fprintf(stderr, "nodeinit: eval: %s\n", lua_tostring(L, -1));
		r = NI_EXIT_USAGE;
	} else if (ni_lua_pcall(L, 0, LUA_MULTRET) != LUA_OK) {
		fprintf(stderr, "nodeinit: eval: %s\n", lua_tostring(L, -1));
		r = NI_EXIT_FAILED;
	} else {
		/* tostring() may run __tostring: protected too */
		lua_pushcfunction(L, print_results);
		lua_insert(L, 2); /* 1 is the environment */
		r = ni_lua_pcall(L, lua_gettop(L) - 2, 0) == LUA_OK ? NI_EXIT_OK : NI_EXIT_FAILED;
		if (r != NI_EXIT_OK)
			fprintf(stderr, "nodeinit: eval: %s\n", lua_tostring(L, -1));
	}
	ni_lua_close(L);
	return r;
}

int main(int argc, char **argv)
{
	struct ni_ctx ctx = { .proc_fd = -1, .root_fd = -1, .proc_sys_fd = -1, .sig_fd = -1 };
	struct ni_engine engine = { .ctx = &ctx, .recipes_fd = -1, .state_fd = -1 };
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
	ctx.log = (struct ni_log){ .format = ctx.opt.log_format, .min_level = (enum ni_log_level)ctx.opt.log_level, .out = stderr };
	/* plan changes nothing, ever: check mode from before the first recipe loads to the process's end
	 * (lua_close included); nothing clears it. */
	ctx.check_mode = ctx.opt.command == NI_CMD_PLAN;

	switch (ctx.opt.command) {
	case NI_CMD_HELP:
		fputs(ni_cli_usage(), stdout);
		return NI_EXIT_OK;
	case NI_CMD_VERSION:
		printf("nodeinit %s (%s, libyaml)\n", NI_VERSION, LUA_RELEASE);
		return NI_EXIT_OK;
	case NI_CMD_LINT:
		r = cmd_lint(&engine);
		ni_engine_free(&engine);
		return r;
	default:
		break;
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
	switch (ctx.opt.command) {
	case NI_CMD_EVAL:
		r = cmd_eval(&ctx);
		break;
	case NI_CMD_STATUS:
		r = cmd_status(&engine);
		break;
	default:
		r = cmd_apply(&engine);
		break;
	}
	ni_engine_free(&engine);
	ni_kube_free(ctx.kube);
	ni_safe_close(ctx.proc_sys_fd);
	ni_safe_close(ctx.root_fd);
	ni_safe_close(ctx.sig_fd);
	if (ctx.watch_target)
		ni_safe_close(ctx.target_fd);
	ni_safe_close(ctx.proc_fd);
	return r;
}
