/* Lua module nodeinit.file: read, write, ensure_line (its text work in lua/ensure_line.lua), mkdir, remove, exists. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "file.h"
#include "luart.h"
#include "passwd.h"
#include "util.h"

/* What the option tables hold once checked; owner and group names are resolved afterwards. */
struct opts {
	struct ni_file_attrs attrs;
	const char *owner, *group; /* names (or decimal strings) still to look up */
	const char *match;
	bool parents;
};

static const char *const write_options[] = { "group", "mode", "owner", NULL };
static const char *const ensure_line_options[] = { "group", "match", "mode", "owner", NULL };
static const char *const mkdir_options[] = { "group", "mode", "owner", "parents", NULL };

static const char *check_path(lua_State *L, int arg)
{
	size_t len;
	const char *path = luaL_checklstring(L, arg, &len);

	luaL_argcheck(L, strlen(path) == len, arg, "path holds a NUL byte");
	luaL_argcheck(L, ni_file_path_valid(path), arg, "absolute path without '.' or '..' parts expected");
	return path;
}

/* Modes are strings of octal digits: Lua has no octal literals, and mode = 0644 would mean 01204. */
static mode_t check_mode(lua_State *L, int arg)
{
	size_t len;
	const char *s;
	mode_t mode = 0;

	if (lua_type(L, -1) != LUA_TSTRING)
		luaL_argerror(L, arg, "mode must be a string of octal digits, such as \"0644\"");
	s = lua_tolstring(L, -1, &len);
	if (len < 3 || len > 4)
		luaL_argerror(L, arg, "mode must be 3 or 4 octal digits, such as \"0644\"");
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '7')
			luaL_argerror(L, arg, "mode must be 3 or 4 octal digits, such as \"0644\"");
		mode = mode * 8 + (mode_t)(s[i] - '0');
	}
	luaL_argcheck(L, mode <= 07777, arg, "mode above 07777");
	return mode;
}

/* owner or group: an integer id is used as it is; a string (a name, or digits) is looked up later. */
static void check_id(lua_State *L, int arg, const char *what, const char **ret_name, uint32_t *ret_id, bool *ret_has)
{
	lua_Integer id;
	int isint;

	switch (lua_type(L, -1)) {
	case LUA_TNUMBER:
		id = lua_tointegerx(L, -1, &isint);
		luaL_argcheck(L, isint && id >= 0 && id < (lua_Integer)UINT32_MAX, arg,
			      lua_pushfstring(L, "%s id out of range", what));
		*ret_id = (uint32_t)id;
		*ret_has = true;
		return;
	case LUA_TSTRING: {
		size_t len;
		const char *s = lua_tolstring(L, -1, &len);
		luaL_argcheck(L, len > 0 && strlen(s) == len && !strpbrk(s, ":\n"), arg,
			      lua_pushfstring(L, "%s must be a name or a numeric id", what));
		*ret_name = s; /* anchored in the options table, which stays on the stack */
		return;
	}
	default:
		luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a name or a numeric id", what));
	}
}

/* Checks the options table at arg (nil or absent: all defaults) against the names allowed. */
static void check_opts(lua_State *L, int arg, const char *const allowed[], struct opts *o)
{
	*o = (struct opts){ 0 };
	if (lua_isnoneornil(L, arg))
		return;
	luaL_checktype(L, arg, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, arg)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		size_t i = 0;

		while (k && allowed[i] && strcmp(allowed[i], k) != 0)
			i++;
		if (!k || !allowed[i])
			luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s'", k ? k : luaL_typename(L, -2)));
		if (strcmp(k, "mode") == 0) {
			o->attrs.mode = check_mode(L, arg);
			o->attrs.has_mode = true;
		} else if (strcmp(k, "owner") == 0) {
			uint32_t id = 0;
			check_id(L, arg, "owner", &o->owner, &id, &o->attrs.has_uid);
			o->attrs.uid = (uid_t)id;
		} else if (strcmp(k, "group") == 0) {
			uint32_t id = 0;
			check_id(L, arg, "group", &o->group, &id, &o->attrs.has_gid);
			o->attrs.gid = (gid_t)id;
		} else if (strcmp(k, "parents") == 0) {
			luaL_argcheck(L, lua_isboolean(L, -1), arg, "parents must be a boolean");
			o->parents = lua_toboolean(L, -1);
		} else { /* match */
			luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, arg, "match must be a Lua pattern string");
			o->match = lua_tostring(L, -1);
		}
		lua_pop(L, 1);
	}
}

/*
 * Looks owner and group names up in the host's /etc/passwd and /etc/group (raises nothing: these
 * are OS results). Returns 0, or the number of values pushed for the nil, msg, errno triple.
 */
static int resolve_ids(lua_State *L, struct ni_ctx *ctx, const char *path, struct opts *o)
{
	static const char *const what[] = { "user", "group" };
	static const char *const file[] = { "/etc/passwd", "/etc/group" };
	const char *name[] = { o->owner, o->group };
	uint32_t id;

	for (int db = NI_PASSWD_USERS; db <= NI_PASSWD_GROUPS; db++) {
		int r;
		if (!name[db])
			continue;
		r = ni_passwd_resolve(ctx->root_fd, (enum ni_passwd_db)db, name[db], &id);
		if (r == -ESRCH) {
			luaL_pushfail(L);
			lua_pushfstring(L, "%s: no %s '%s' in the host's %s", path, what[db], name[db], file[db]);
			lua_pushinteger(L, ESRCH);
			return 3;
		}
		if (r < 0)
			return ni_lua_fail(L, r, file[db]);
		if (db == NI_PASSWD_USERS) {
			o->attrs.uid = (uid_t)id;
			o->attrs.has_uid = true;
		} else {
			o->attrs.gid = (gid_t)id;
			o->attrs.has_gid = true;
		}
	}
	return 0;
}

/* Lua's OS-failure triple; a refused symlink or transition (-ENOLINK) says which and why. */
static int fail(lua_State *L, int r, const char *path, const char *why)
{
	if (r == -ENOLINK && why[0]) {
		luaL_pushfail(L);
		lua_pushfstring(L, "%s: %s", path, why);
		lua_pushinteger(L, ENOLINK);
		return 3;
	}
	return ni_lua_fail(L, r, path);
}

static void log_changed(struct ni_ctx *ctx, const char *op, const char *path)
{
	ctx->changed = true;
	ni_log(&ctx->log, NI_LOG_INFO, "changed", "step", ctx->step, "op", op, "path", path, NULL);
}

/*
 * Check mode's look at path, as a change would find it: what path names (a symlink itself with
 * NI_CHASE_NOFOLLOW in flags) in *ret_st, st_mode 0 when it is absent; or the failure the change
 * would meet on the way to it (-errno; why filled for -ENOLINK). Plan only: a change itself goes
 * through file.c, which resolves and acts in one walk.
 */
static int probe(int root_fd, const char *path, unsigned flags, struct stat *ret_st, char *why)
{
	struct ni_chase c;
	int dfd, r = 0;

	memset(ret_st, 0, sizeof(*ret_st));
	dfd = ni_chase(root_fd, path, NI_CHASE_PARENT | flags, 0, &c);
	if (dfd < 0) {
		if (dfd == -ENOLINK)
			memcpy(why, c.why, NI_WHY_MAX);
		return dfd;
	}
	if (fstatat(dfd, c.name, ret_st, AT_SYMLINK_NOFOLLOW) < 0) {
		r = errno == ENOENT ? 0 : -errno;
		memset(ret_st, 0, sizeof(*ret_st));
	}
	ni_safe_close(dfd);
	return r;
}

/* Check mode: whether the directory path (not followed at its end) is empty, as rmdir needs: 0 or -ENOTEMPTY. */
static int dir_empty(int root_fd, const char *path)
{
	struct ni_chase c;
	struct dirent *de;
	DIR *d;
	int fd, dfd, r = 0;

	fd = ni_chase(root_fd, path, NI_CHASE_NOFOLLOW, 0, &c);
	if (fd < 0)
		return fd;
	dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = dfd < 0 ? -errno : 0;
	ni_safe_close(fd);
	if (r < 0)
		return r;
	d = fdopendir(dfd);
	if (!d) {
		r = -errno;
		ni_safe_close(dfd);
		return r;
	}
	while ((de = readdir(d)))
		if (!ni_streq(de->d_name, ".") && !ni_streq(de->d_name, "..")) {
			r = -ENOTEMPTY;
			break;
		}
	closedir(d);
	return r;
}

static const char *kind_name(mode_t m)
{
	return !m ? "absent" : S_ISREG(m) ? "regular file" : S_ISDIR(m) ? "directory" : S_ISLNK(m) ? "symlink" : "special file";
}

/* Check mode: ", mode 0600" (and owner, group) for each attribute a would change on st; whether any would. */
static bool add_attr_changes(luaL_Buffer *b, const struct stat *st, const struct ni_file_attrs *a)
{
	char s[64];
	bool any = false;

	if (a->has_mode && (st->st_mode & 07777) != a->mode) {
		snprintf(s, sizeof(s), ", mode %04o", (unsigned)(st->st_mode & 07777));
		luaL_addstring(b, s);
		any = true;
	}
	if (a->has_uid && st->st_uid != a->uid) {
		snprintf(s, sizeof(s), ", owner %u", (unsigned)st->st_uid);
		luaL_addstring(b, s);
		any = true;
	}
	if (a->has_gid && st->st_gid != a->gid) {
		snprintf(s, sizeof(s), ", group %u", (unsigned)st->st_gid);
		luaL_addstring(b, s);
		any = true;
	}
	return any;
}

/* Check mode: " mode 0644 owner 0 group 0", the attributes a sets. */
static void add_attrs(luaL_Buffer *b, const struct ni_file_attrs *a)
{
	char s[64];

	if (a->has_mode) {
		snprintf(s, sizeof(s), " mode %04o", (unsigned)a->mode);
		luaL_addstring(b, s);
	}
	if (a->has_uid) {
		snprintf(s, sizeof(s), " owner %u", (unsigned)a->uid);
		luaL_addstring(b, s);
	}
	if (a->has_gid) {
		snprintf(s, sizeof(s), " group %u", (unsigned)a->gid);
		luaL_addstring(b, s);
	}
}

/*
 * Check mode for write and ensure_line (line: ensure_line's line, else NULL): compares data with the
 * file's content and attributes, reports "file PATH: CURRENT -> DESIRED" and pushes changed, or what
 * the write would have failed with. Ids are already resolved.
 */
static int would_write(lua_State *L, const char *path, const char *data, size_t len, const struct opts *o,
		       const char *line)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	char why[NI_WHY_MAX] = "";
	char **box = ni_lua_box_new(L);
	size_t cur_len = 0;
	struct stat st;
	bool same, attrs_differ;
	luaL_Buffer b;
	int r;

	r = probe(ctx->root_fd, path, 0, &st, why);
	if (r == 0 && S_ISDIR(st.st_mode))
		r = -EISDIR;
	else if (r == 0 && st.st_mode && !S_ISREG(st.st_mode))
		r = -EINVAL;
	if (r == 0 && st.st_mode)
		r = ni_file_read(ctx->root_fd, path, box, &cur_len, why);
	if (r < 0)
		return fail(L, r, path, why);
	same = st.st_mode && cur_len == len && (len == 0 || memcmp(*box, data, len) == 0);
	free(*box);
	*box = NULL;

	luaL_buffinit(L, &b);
	lua_pushfstring(L, "file %s: ", path);
	luaL_addvalue(&b);
	if (line) {
		luaL_addstring(&b, "line ");
		ni_lua_plan_value(&b, line, strlen(line), true);
		luaL_addstring(&b, ": ");
		luaL_addstring(&b, same ? "present" : "absent");
	} else {
		luaL_addstring(&b, !st.st_mode ? "absent" : same ? "same content" : "differs");
	}
	attrs_differ = st.st_mode && add_attr_changes(&b, &st, &o->attrs);
	if (line) {
		luaL_addstring(&b, " -> present");
	} else {
		lua_pushfstring(L, " -> %I bytes", (lua_Integer)len);
		luaL_addvalue(&b);
	}
	add_attrs(&b, &o->attrs);
	if (!line && ctx->sensitive)
		luaL_addstring(&b, " (content sensitive)");
	if (same && !attrs_differ)
		luaL_addstring(&b, " (same)");
	luaL_pushresult(&b);
	ni_lua_plan_line(L, lua_tostring(L, -1), false);
	lua_pushboolean(L, !same || attrs_differ);
	return 1;
}

/* Shared by write and ensure_line: resolve ids, write (or report it, in check mode), log, push changed
 * (or the failure triple). */
static int write_and_push(lua_State *L, enum ni_act act, const char *op, const char *path, const char *data,
			  size_t len, struct opts *o, const char *line)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	enum ni_file_change change;
	char why[NI_WHY_MAX] = "";
	int r;

	r = resolve_ids(L, ctx, path, o);
	if (r > 0)
		return r;
	if (act == NI_ACT_REPORT)
		return would_write(L, path, data, len, o, line);
	r = ni_file_write(ctx->root_fd, path, data, len, &o->attrs, &change, why);
	if (r < 0)
		return fail(L, r, path, why);
	if (change == NI_FILE_IN_PLACE)
		ni_log(&ctx->log, NI_LOG_WARN, "rename refused (EBUSY: a bind-mounted file?): rewritten in place, "
		       "not atomically", "step", ctx->step, "op", op, "path", path, NULL);
	else if (change != NI_FILE_UNCHANGED)
		log_changed(ctx, op, path);
	lua_pushboolean(L, change != NI_FILE_UNCHANGED);
	return 1;
}

/*
 * Checks the arguments here (so misuse raises naming ensure_line), lets lua/ensure_line.lua work out
 * the new content on top of file.read, and writes it as file.write does: the write is skipped when
 * nothing changed, and mode and owner are fixed even when the line was there.
 */
static int l_file_ensure_line(lua_State *L)
{
	enum ni_act act = ni_lua_require_phase(L, NI_CAN_CHANGE, "file.ensure_line");
	const char *path = check_path(L, 1);
	size_t llen, len;
	const char *line = luaL_checklstring(L, 2, &llen), *content;
	struct opts o;

	luaL_argcheck(L, !memchr(line, '\n', llen) && strlen(line) == llen, 2, "one line expected (no newline or NUL)");
	check_opts(L, 3, ensure_line_options, &o);
	lua_settop(L, 3);
	if (ni_lua_require_embedded(L, "ensure_line") != LUA_OK)
		return lua_error(L);
	lua_getfield(L, -1, "content");
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	if (o.match)
		lua_pushstring(L, o.match);
	else
		lua_pushnil(L);
	lua_call(L, 3, 3);
	if (lua_isnil(L, -3))
		return 3; /* file.read's nil, message, errno */
	content = lua_tolstring(L, -3, &len);
	return write_and_push(L, act, "ensure_line", path, content, len, &o, line);
}

static int l_file_exists(lua_State *L)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	const char *path;
	bool exists;
	char why[NI_WHY_MAX] = "";
	int r;

	ni_lua_require_phase(L, NI_CAN_READ, "file.exists");
	path = check_path(L, 1);

	r = ni_file_exists(ctx->root_fd, path, &exists, why);
	if (r < 0)
		return fail(L, r, path, why);
	lua_pushboolean(L, exists);
	return 1;
}

/* Check mode for mkdir: "dir PATH: CURRENT -> directory ...", changed, or what mkdir would have failed with. */
static int would_mkdir(lua_State *L, const char *path, const struct opts *o)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	char why[NI_WHY_MAX] = "";
	bool parents_made = false, attrs_differ = false;
	struct stat st;
	luaL_Buffer b;
	int r;

	r = probe(ctx->root_fd, path, 0, &st, why);
	if (r == -ENOENT && o->parents) { /* a parent is missing: mkdir -p makes it */
		r = 0;
		parents_made = true;
	}
	if (r == 0 && st.st_mode && !S_ISDIR(st.st_mode))
		r = -ENOTDIR;
	if (r < 0)
		return fail(L, r, path, why);
	luaL_buffinit(L, &b);
	lua_pushfstring(L, "dir %s: %s", path, st.st_mode ? "directory" : "absent");
	luaL_addvalue(&b);
	attrs_differ = st.st_mode && add_attr_changes(&b, &st, &o->attrs);
	luaL_addstring(&b, " -> directory");
	add_attrs(&b, &o->attrs);
	if (parents_made)
		luaL_addstring(&b, " (and its missing parents)");
	if (st.st_mode && !attrs_differ)
		luaL_addstring(&b, " (same)");
	luaL_pushresult(&b);
	ni_lua_plan_line(L, lua_tostring(L, -1), false);
	lua_pushboolean(L, !st.st_mode || attrs_differ);
	return 1;
}

/* file.list(dir): sorted entry names. The names live in a box while the table is built. */
static int l_file_list(lua_State *L)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	const char *path = check_path(L, 1);
	char **box = ni_lua_box_new(L);
	char why[NI_WHY_MAX] = "";
	char **names = NULL;
	size_t n = 0;
	int r;

	ni_lua_require_phase(L, NI_CAN_READ, "file.list");
	r = ni_file_list(ctx->root_fd, path, &names, &n, why);
	if (r < 0)
		return fail(L, r, path, why);
	/* One allocation holds the pointers; each name is freed as soon as Lua has its copy. */
	*box = (char *)names;
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_pushstring(L, names[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
		free(names[i]);
		names[i] = NULL;
	}
	return 1;
}

static const char *file_type(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return "file";
	case S_IFDIR: return "directory";
	case S_IFLNK: return "link";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	case S_IFCHR: return "char";
	case S_IFBLK: return "block";
	default: return "unknown";
	}
}

/* file.stat(path): {type, mode = "0644", uid, gid, size, mtime}; nil alone when nothing is there. */
static int l_file_stat(lua_State *L)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	const char *path = check_path(L, 1);
	char why[NI_WHY_MAX] = "", mode[8];
	struct stat st;
	int r;

	ni_lua_require_phase(L, NI_CAN_READ, "file.stat");
	r = ni_file_stat(ctx->root_fd, path, &st, why);
	if (r == -ENOENT || r == -ENOTDIR) {
		lua_pushnil(L);
		return 1;
	}
	if (r < 0)
		return fail(L, r, path, why);
	lua_createtable(L, 0, 6);
	lua_pushstring(L, file_type(st.st_mode));
	lua_setfield(L, -2, "type");
	snprintf(mode, sizeof(mode), "%04o", (unsigned)(st.st_mode & 07777));
	lua_pushstring(L, mode);
	lua_setfield(L, -2, "mode");
	lua_pushinteger(L, (lua_Integer)st.st_uid);
	lua_setfield(L, -2, "uid");
	lua_pushinteger(L, (lua_Integer)st.st_gid);
	lua_setfield(L, -2, "gid");
	lua_pushinteger(L, (lua_Integer)st.st_size);
	lua_setfield(L, -2, "size");
	lua_pushinteger(L, (lua_Integer)st.st_mtim.tv_sec);
	lua_setfield(L, -2, "mtime");
	return 1;
}

/* file.symlink(target, path): changed. An existing link to target is left; a non-link is an error. */
static int l_file_symlink(lua_State *L)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	size_t tlen;
	const char *target = luaL_checklstring(L, 1, &tlen);
	const char *path = check_path(L, 2);
	char why[NI_WHY_MAX] = "";
	enum ni_act act;
	bool changed;
	int r;

	luaL_argcheck(L, tlen > 0 && strlen(target) == tlen, 1, "target must be a non-empty string without NUL bytes");
	luaL_argcheck(L, tlen < PATH_MAX, 1, "target is longer than PATH_MAX");
	act = ni_lua_require_phase(L, NI_CAN_CHANGE, "file.symlink");
	r = ni_file_symlink(ctx->root_fd, target, path, act == NI_ACT_REPORT, &changed, why);
	if (r == -EEXIST) {
		luaL_pushfail(L);
		lua_pushfstring(L, "%s: exists and is not a symlink (not replaced)", path);
		lua_pushinteger(L, EEXIST);
		return 3;
	}
	if (r < 0)
		return fail(L, r, path, why);
	if (act == NI_ACT_REPORT) {
		lua_pushfstring(L, "link %s -> %s%s", path, target, changed ? "" : " (same)");
		ni_lua_plan_line(L, lua_tostring(L, -1), false);
		lua_pop(L, 1);
	} else if (changed)
		log_changed(ctx, "symlink", path);
	lua_pushboolean(L, changed);
	return 1;
}

static int l_file_mkdir(lua_State *L)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	enum ni_act act = ni_lua_require_phase(L, NI_CAN_CHANGE, "file.mkdir");
	const char *path = check_path(L, 1);
	bool changed;
	char why[NI_WHY_MAX] = "";
	struct opts o;
	int r;

	check_opts(L, 2, mkdir_options, &o);
	r = resolve_ids(L, ctx, path, &o);
	if (r > 0)
		return r;
	if (act == NI_ACT_REPORT)
		return would_mkdir(L, path, &o);
	r = ni_file_mkdir(ctx->root_fd, path, &o.attrs, o.parents, &changed, why);
	if (r < 0)
		return fail(L, r, path, why);
	if (changed)
		log_changed(ctx, "mkdir", path);
	lua_pushboolean(L, changed);
	return 1;
}

static int l_file_read(lua_State *L)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	const char *path;
	char **box;
	char why[NI_WHY_MAX] = "";
	size_t len;
	int r;

	ni_lua_require_phase(L, NI_CAN_READ, "file.read");
	path = check_path(L, 1);
	box = ni_lua_box_new(L);

	r = ni_file_read(ctx->root_fd, path, box, &len, why);
	if (r < 0)
		return fail(L, r, path, why);
	lua_pushlstring(L, *box, len);
	free(*box);
	*box = NULL;
	return 1;
}

/* Check mode for remove: "file PATH: WHAT IS THERE -> absent", changed, or what remove would have failed with. */
static int would_remove(lua_State *L, const char *path)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	char why[NI_WHY_MAX] = "";
	struct stat st;
	int r;

	r = probe(ctx->root_fd, path, NI_CHASE_NOFOLLOW, &st, why);
	if (r == -ENOENT) /* as remove: a missing directory on the way means nothing to remove */
		r = 0;
	if (r == 0 && S_ISDIR(st.st_mode))
		r = dir_empty(ctx->root_fd, path);
	if (r < 0)
		return fail(L, r, path, why);
	lua_pushfstring(L, "file %s: %s -> absent%s", path, kind_name(st.st_mode), st.st_mode ? "" : " (same)");
	ni_lua_plan_line(L, lua_tostring(L, -1), false);
	lua_pushboolean(L, st.st_mode != 0);
	return 1;
}

static int l_file_remove(lua_State *L)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	enum ni_act act = ni_lua_require_phase(L, NI_CAN_CHANGE, "file.remove");
	const char *path = check_path(L, 1);
	bool changed;
	char why[NI_WHY_MAX] = "";
	int r;

	if (act == NI_ACT_REPORT)
		return would_remove(L, path);

	r = ni_file_remove(ctx->root_fd, path, &changed, why);
	if (r < 0)
		return fail(L, r, path, why);
	if (changed)
		log_changed(ctx, "remove", path);
	lua_pushboolean(L, changed);
	return 1;
}

static int l_file_write(lua_State *L)
{
	enum ni_act act = ni_lua_require_phase(L, NI_CAN_CHANGE, "file.write");
	const char *path = check_path(L, 1);
	size_t len;
	const char *data = luaL_checklstring(L, 2, &len);
	struct opts o;

	check_opts(L, 3, write_options, &o);
	return write_and_push(L, act, "write", path, data, len, &o, NULL);
}

static const luaL_Reg file_funcs[] = {
	{ "ensure_line", l_file_ensure_line },
	{ "exists", l_file_exists },
	{ "list", l_file_list },
	{ "mkdir", l_file_mkdir },
	{ "read", l_file_read },
	{ "remove", l_file_remove },
	{ "stat", l_file_stat },
	{ "symlink", l_file_symlink },
	{ "write", l_file_write },
	{ NULL, NULL },
};

int luaopen_nodeinit_file(lua_State *L)
{
	luaL_newlibtable(L, file_funcs);
	/*
	 * Every function keeps string.find as its one upvalue, as when ensure_line was C and used it: a
	 * step that holds this table in an upvalue has its functions and their upvalues in its fingerprint
	 * material, so a change here would re-run such `once` steps after an upgrade.
	 */
	luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 0);
	lua_getfield(L, -1, "find");
	lua_remove(L, -2);
	luaL_setfuncs(L, file_funcs, 1);
	return 1;
}
