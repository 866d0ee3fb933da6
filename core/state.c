/* Step records on the host: one append-only journal per recipe, compacted by an atomic rewrite. */
#define _GNU_SOURCE
#include "state.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "util.h"

/*
 * The journal, one line per event, every name and value escaped (bytes <= 0x20, 0x7f, '%', '=' as %XX):
 *
 *   nodeinit-state 1 recipe=network
 *   decl ip-forward when=boot fp=<64 hex>
 *   end ip-forward result=ok fp=<hex> boot=<uuid> started_ms=<ms> duration_ms=3 exit=0 failures=0 retry_after_ms=0
 *   start registry%20mirror fp=<hex> boot=<uuid> started_ms=<ms>
 *
 *   plan registry%20mirror fp=<hex> boot=<uuid> started_ms=<ms>
 *   close
 *
 * decl lines come from the last compaction; start and end lines are appended while steps run. An end
 * line carries every field of a record, so a compaction writes each record as one end line (also an
 * interrupted one: result=interrupted). Unknown keys are ignored; an unknown KIND, a bad value, a bad
 * escape or a final line without '\n' makes the line corrupt (counted, skipped).
 *
 * plan lines name, before the first of them starts, every step a pass is about to run; they are
 * written together and synced once (ni_journal_plan). A planned step with no start, end or close line
 * after its plan line reads as a start line would: interrupted. A close line ends the pass: steps it
 * never reached keep their previous record.
 */
#define JOURNAL_MAGIC "nodeinit-state"
#define INDEX_MAGIC "nodeinit-index"
#define LEGACY_MAGIC "nodeinit-legacy"
#define FORMAT_VERSION "1"
#define STATE_SUFFIX ".state"
/* A journal grows between compactions only; past this something is wrong, and we do not slurp it. */
#define STATE_FILE_MAX ((size_t)256 << 20)
#define LOCK_POLL_MS 50

static const char *const result_names[] = {
	[NI_RESULT_PENDING] = "pending", [NI_RESULT_OK] = "ok",
	[NI_RESULT_KEPT] = "kept",       [NI_RESULT_FAILED] = "failed",
	[NI_RESULT_INTERRUPTED] = "interrupted",
};

const char *ni_result_name(enum ni_result r)
{
	return (unsigned)r < NI_ELEMENTSOF(result_names) ? result_names[r] : NULL;
}

int ni_result_from_name(const char *s, enum ni_result *ret)
{
	for (size_t i = 0; s && i < NI_ELEMENTSOF(result_names); i++)
		if (ni_streq(s, result_names[i])) {
			*ret = (enum ni_result)i;
			return 0;
		}
	return -EINVAL;
}

bool ni_state_name_ok(const char *name)
{
	size_t n = 0;

	if (!name || name[0] == '.')
		return false;
	for (; name[n]; n++) {
		char c = name[n];
		if (n >= 128 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
				  c == '.' || c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

bool ni_state_step_name_ok(const char *name)
{
	size_t n;

	if (!name)
		return false;
	n = strnlen(name, NI_STATE_STEP_NAME_MAX + 1);
	return n >= 1 && n <= NI_STATE_STEP_NAME_MAX && ni_utf8_valid(name, n);
}

/* A NUL-terminated string that fits a char[size] field (NULL does not). */
static bool fits(const char *s, size_t size)
{
	return s && strnlen(s, size) < size;
}

static bool when_ok(const char *when)
{
	return fits(when, sizeof(((struct ni_step_decl *)0)->when)) && when[0];
}

/* ---- name index: open addressing over names owned by the state being built ---- */

struct nix_slot {
	const char *name;
	size_t idx;
};
struct name_index {
	struct nix_slot *slots;
	size_t cap, used;
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static struct nix_slot *nix_slot(const struct name_index *ix, const char *name)
{
	size_t mask = ix->cap - 1, i = (size_t)fnv1a(name) & mask;

	while (ix->slots[i].name && !ni_streq(ix->slots[i].name, name))
		i = (i + 1) & mask;
	return &ix->slots[i];
}

static bool nix_get(const struct name_index *ix, const char *name, size_t *ret_idx)
{
	const struct nix_slot *s;

	if (ix->cap == 0)
		return false;
	s = nix_slot(ix, name);
	if (!s->name)
		return false;
	*ret_idx = s->idx;
	return true;
}

/* Adds a name not yet present; the index keeps the pointer, not a copy. */
static int nix_put(struct name_index *ix, const char *name, size_t idx)
{
	struct nix_slot *s;

	if ((ix->used + 1) * 2 > ix->cap) {
		struct name_index bigger = { .cap = ix->cap ? ix->cap * 2 : 16 };

		bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
		if (!bigger.slots)
			return -ENOMEM;
		for (size_t i = 0; i < ix->cap; i++)
			if (ix->slots[i].name)
				*nix_slot(&bigger, ix->slots[i].name) = ix->slots[i];
		bigger.used = ix->used;
		free(ix->slots);
		*ix = bigger;
	}
	s = nix_slot(ix, name);
	s->name = name;
	s->idx = idx;
	ix->used++;
	return 0;
}

static void nix_free(struct name_index *ix)
{
	free(ix->slots);
	*ix = (struct name_index){ 0 };
}

/* ---- writing lines ---- */

/* A growing buffer whose allocation failure is sticky, checked once at the end. */
struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_put(struct sbuf *b, const void *s, size_t n)
{
	if (b->oom || n == 0)
		return;
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap - b->len < n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void sb_puts(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static bool must_escape(unsigned char c)
{
	return c <= 0x20 || c == 0x7f || c == '%' || c == '=';
}

static void sb_put_esc(struct sbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	while (*s) {
		size_t run = 0;

		while (s[run] && !must_escape((unsigned char)s[run]))
			run++;
		sb_put(b, s, run);
		s += run;
		if (*s) {
			unsigned char c = (unsigned char)*s++;
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			sb_put(b, e, sizeof(e));
		}
	}
}

static void sb_put_kv(struct sbuf *b, const char *key, const char *val)
{
	sb_put(b, " ", 1);
	sb_puts(b, key);
	sb_put(b, "=", 1);
	sb_put_esc(b, val);
}

static void sb_put_kv_i64(struct sbuf *b, const char *key, int64_t v)
{
	char num[24];

	ni_i64_dec(v, num);
	sb_put_kv(b, key, num);
}

static void put_header(struct sbuf *b, const char *recipe)
{
	sb_puts(b, JOURNAL_MAGIC " " FORMAT_VERSION);
	sb_put_kv(b, "recipe", recipe);
	sb_put(b, "\n", 1);
}

static void put_decl(struct sbuf *b, const struct ni_step_decl *d)
{
	sb_puts(b, "decl ");
	sb_put_esc(b, d->name);
	sb_put_kv(b, "when", d->when);
	sb_put_kv(b, "fp", d->fingerprint);
	sb_put(b, "\n", 1);
}

/* A "start" or "plan" line: the same fields, only the kind differs. */
static void put_mark(struct sbuf *b, const char *kind, const char *step, const char *fp, const char *boot_id,
		     int64_t started_ms)
{
	sb_puts(b, kind);
	sb_put(b, " ", 1);
	sb_put_esc(b, step);
	sb_put_kv(b, "fp", fp);
	sb_put_kv(b, "boot", boot_id);
	sb_put_kv_i64(b, "started_ms", started_ms);
	sb_put(b, "\n", 1);
}

static void put_end(struct sbuf *b, const struct ni_step_record *r)
{
	sb_puts(b, "end ");
	sb_put_esc(b, r->name);
	sb_put_kv(b, "result", ni_result_name(r->result));
	sb_put_kv(b, "fp", r->fingerprint);
	sb_put_kv(b, "boot", r->boot_id);
	sb_put_kv_i64(b, "started_ms", r->started_ms);
	sb_put_kv_i64(b, "duration_ms", r->duration_ms);
	sb_put_kv_i64(b, "exit", r->exit_code);
	sb_put_kv_i64(b, "failures", r->failures);
	sb_put_kv_i64(b, "retry_after_ms", r->retry_after_ms);
	sb_put(b, "\n", 1);
}

static bool decl_ok(const struct ni_step_decl *d)
{
	return ni_state_step_name_ok(d->name) && when_ok(d->when) && fits(d->fingerprint, sizeof(d->fingerprint));
}

static bool record_ok(const struct ni_step_record *r)
{
	return ni_state_step_name_ok(r->name) && fits(r->fingerprint, sizeof(r->fingerprint)) &&
	       fits(r->boot_id, sizeof(r->boot_id)) && ni_result_name(r->result);
}

int ni_state_format(const char *recipe, const struct ni_step_decl *decls, size_t n_decls,
		    const struct ni_recipe_state *st, char **ret_buf, size_t *ret_len)
{
	struct name_index decl_ix = { 0 }, rec_ix = { 0 };
	struct sbuf b = { 0 };
	size_t idx;
	int r = 0;

	if (!ni_state_name_ok(recipe) || (n_decls && !decls))
		return -EINVAL;
	for (size_t i = 0; i < n_decls && r == 0; i++) {
		if (!decl_ok(&decls[i]) || nix_get(&decl_ix, decls[i].name, &idx))
			r = -EINVAL; /* a duplicate would not survive a load: last one wins */
		else
			r = nix_put(&decl_ix, decls[i].name, i);
	}
	for (size_t i = 0; st && i < st->n_records && r == 0; i++) {
		const struct ni_step_record *rec = &st->records[i];

		if (!nix_get(&decl_ix, rec->name ? rec->name : "", &idx))
			continue; /* no longer declared: dropped */
		if (!record_ok(rec))
			r = -EINVAL;
		else if (!nix_get(&rec_ix, rec->name, &idx))
			r = nix_put(&rec_ix, rec->name, i);
		else
			nix_slot(&rec_ix, rec->name)->idx = i; /* last one wins, as when loading */
	}
	if (r == 0) {
		put_header(&b, recipe);
		for (size_t i = 0; i < n_decls; i++)
			put_decl(&b, &decls[i]);
		for (size_t i = 0; i < n_decls; i++)
			if (nix_get(&rec_ix, decls[i].name, &idx))
				put_end(&b, &st->records[idx]);
		if (b.oom)
			r = -ENOMEM;
	}
	nix_free(&decl_ix);
	nix_free(&rec_ix);
	if (r < 0) {
		free(b.p);
		return r;
	}
	*ret_buf = b.p;
	*ret_len = b.len;
	return 0;
}

/* ---- parsing lines ---- */

struct tok {
	const char *p;
	size_t n;
};

/* The next space-separated token of [*cur, end); false at the end. */
static bool tok_next(const char **cur, const char *end, struct tok *t)
{
	const char *p = *cur;

	while (p < end && *p == ' ')
		p++;
	if (p == end)
		return false;
	t->p = p;
	while (p < end && *p != ' ')
		p++;
	t->n = (size_t)(p - t->p);
	*cur = p;
	return true;
}

static bool tok_is(struct tok t, const char *s)
{
	return t.n == strlen(s) && memcmp(t.p, s, t.n) == 0;
}

static bool kv_split(struct tok t, struct tok *k, struct tok *v)
{
	const char *eq = memchr(t.p, '=', t.n);

	if (!eq || eq == t.p)
		return false;
	*k = (struct tok){ t.p, (size_t)(eq - t.p) };
	*v = (struct tok){ eq + 1, t.n - k->n - 1 };
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes an escaped token into dst[cap] (NUL-terminated); false when malformed, too long, or holding a NUL. */
static bool unescape(struct tok t, char *dst, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < t.n; i++) {
		unsigned char c = (unsigned char)t.p[i];

		if (c == '%') {
			int hi, lo;

			if (t.n - i < 3 || (hi = hexval(t.p[i + 1])) < 0 || (lo = hexval(t.p[i + 2])) < 0)
				return false;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
			if (c == 0)
				return false;
		} else if (must_escape(c))
			return false; /* a raw byte our writer would have escaped: not our line */
		if (o + 1 >= cap)
			return false;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return true;
}

enum line_kind { LINE_DECL, LINE_START, LINE_END, LINE_PLAN, LINE_CLOSE };

struct line {
	enum line_kind kind;
	char *name;
	bool has_result;
	struct ni_step_decl decl;
	struct ni_step_record rec;
};

enum field {
	F_WHEN,
	F_FP,
	F_BOOT,
	F_RESULT,
	F_STARTED,
	F_DURATION,
	F_EXIT,
	F_FAILURES,
	F_RETRY,
};

static const struct {
	const char *key;
	enum field field;
	unsigned kinds; /* bit per line_kind */
} line_keys[] = {
	{ "when", F_WHEN, 1u << LINE_DECL },
	{ "fp", F_FP, 1u << LINE_DECL | 1u << LINE_START | 1u << LINE_END | 1u << LINE_PLAN },
	{ "boot", F_BOOT, 1u << LINE_START | 1u << LINE_END | 1u << LINE_PLAN },
	{ "started_ms", F_STARTED, 1u << LINE_START | 1u << LINE_END | 1u << LINE_PLAN },
	{ "result", F_RESULT, 1u << LINE_END },
	{ "duration_ms", F_DURATION, 1u << LINE_END },
	{ "exit", F_EXIT, 1u << LINE_END },
	{ "failures", F_FAILURES, 1u << LINE_END },
	{ "retry_after_ms", F_RETRY, 1u << LINE_END },
};

static bool set_field(struct line *l, enum field f, struct tok v)
{
	char val[80]; /* the longest value we know is a 64-char fingerprint */
	int64_t n;

	switch (f) {
	case F_WHEN:
		return unescape(v, l->decl.when, sizeof(l->decl.when)) && l->decl.when[0];
	case F_FP:
		return unescape(v, l->decl.fingerprint, sizeof(l->decl.fingerprint)) &&
		       unescape(v, l->rec.fingerprint, sizeof(l->rec.fingerprint));
	case F_BOOT:
		return unescape(v, l->rec.boot_id, sizeof(l->rec.boot_id));
	default:
		break;
	}
	if (!unescape(v, val, sizeof(val)))
		return false;
	switch (f) {
	case F_RESULT:
		l->has_result = ni_result_from_name(val, &l->rec.result) == 0;
		return l->has_result;
	case F_STARTED:
		return ni_parse_i64(val, INT64_MIN, INT64_MAX, &l->rec.started_ms) == 0;
	case F_DURATION:
		return ni_parse_i64(val, INT64_MIN, INT64_MAX, &l->rec.duration_ms) == 0;
	case F_RETRY:
		return ni_parse_i64(val, INT64_MIN, INT64_MAX, &l->rec.retry_after_ms) == 0;
	case F_EXIT:
		if ((ni_parse_i64(val, INT_MIN, INT_MAX, &n)) < 0)
			return false;
		l->rec.exit_code = (int)n;
		return true;
	case F_FAILURES:
		if ((ni_parse_i64(val, 0, UINT_MAX, &n)) < 0)
			return false;
		l->rec.failures = (unsigned)n;
		return true;
	default:
		return false;
	}
}

/* 0 with *l filled (l->name owned by the caller), 1 for a corrupt line, -ENOMEM. */
static int parse_line(const char *p, size_t n, struct line *l)
{
	const char *end = p + n;
	struct tok t, k, v;

	*l = (struct line){
		.decl.when = "once",
		.rec = { .result = NI_RESULT_PENDING, .duration_ms = -1, .exit_code = -1 },
	};
	if (!tok_next(&p, end, &t))
		return 1;
	if (tok_is(t, "decl"))
		l->kind = LINE_DECL;
	else if (tok_is(t, "start"))
		l->kind = LINE_START;
	else if (tok_is(t, "end"))
		l->kind = LINE_END;
	else if (tok_is(t, "plan"))
		l->kind = LINE_PLAN;
	else if (tok_is(t, "close"))
		l->kind = LINE_CLOSE;
	else
		return 1;
	if (l->kind == LINE_CLOSE)
		return tok_next(&p, end, &t) ? 1 : 0;
	if (!tok_next(&p, end, &t))
		return 1;
	l->name = malloc(t.n + 1);
	if (!l->name)
		return -ENOMEM;
	if (!unescape(t, l->name, t.n + 1) || !ni_state_step_name_ok(l->name))
		goto corrupt;
	while (tok_next(&p, end, &t)) {
		if (!kv_split(t, &k, &v))
			goto corrupt;
		for (size_t i = 0; i < NI_ELEMENTSOF(line_keys); i++)
			if ((line_keys[i].kinds & 1u << l->kind) && tok_is(k, line_keys[i].key)) {
				if (!set_field(l, line_keys[i].field, v))
					goto corrupt;
				break;
			}
		/* unknown keys: a newer writer's, ignored */
	}
	if (l->kind == LINE_END && !l->has_result)
		goto corrupt;
	return 0;
corrupt:
	free(l->name);
	l->name = NULL;
	return 1;
}

/* Checks "MAGIC VERSION [key=value...]"; hands the decoded recipe= value back when asked. */
static int parse_header(const char *p, size_t n, const char *magic, char **ret_recipe)
{
	const char *end = p + n;
	struct tok t, k, v;

	if (!tok_next(&p, end, &t) || !tok_is(t, magic) || !tok_next(&p, end, &t) || !tok_is(t, FORMAT_VERSION))
		return -EINVAL;
	while (ret_recipe && tok_next(&p, end, &t)) {
		if (!kv_split(t, &k, &v) || !tok_is(k, "recipe") || *ret_recipe)
			continue;
		*ret_recipe = malloc(v.n + 1);
		if (!*ret_recipe)
			return -ENOMEM;
		if (!unescape(v, *ret_recipe, v.n + 1) || !ni_state_name_ok(*ret_recipe))
			(*ret_recipe)[0] = '\0'; /* not a name we would write: say nothing */
	}
	return 0;
}

static int grow(void **arr, size_t n, size_t *cap, size_t size)
{
	void *p;

	if (n < *cap)
		return 0;
	p = reallocarray(*arr, *cap ? *cap * 2 : 8, size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = *cap ? *cap * 2 : 8;
	return 0;
}

/* A plan line not yet followed by its step's start or end line, nor by a close line. */
struct open_plan {
	char *name;
	struct ni_step_record rec; /* the plan line's fields */
	bool open;
};

struct ni_state_index {
	struct name_index ix;
};

struct builder {
	struct ni_recipe_state *s;
	struct name_index decl_ix, rec_ix, plan_ix;
	size_t decl_cap, rec_cap;
	struct open_plan *plans;
	size_t n_plans, plan_cap;
};

static int plan_line(struct builder *b, struct line *l)
{
	size_t idx;
	int r;

	if (!nix_get(&b->plan_ix, l->name, &idx)) {
		r = grow((void **)&b->plans, b->n_plans, &b->plan_cap, sizeof(*b->plans));
		if (r < 0)
			return r;
		idx = b->n_plans++;
		b->plans[idx] = (struct open_plan){ .name = steal_pointer(&l->name) };
		r = nix_put(&b->plan_ix, b->plans[idx].name, idx);
		if (r < 0)
			return r;
	}
	b->plans[idx].rec = l->rec;
	b->plans[idx].open = true;
	return 0;
}

static int apply_line(struct builder *b, struct line *l)
{
	struct ni_recipe_state *s = b->s;
	size_t idx;
	int r;

	if (l->kind == LINE_CLOSE) {
		for (size_t i = 0; i < b->n_plans; i++)
			b->plans[i].open = false;
		return 0;
	}
	if (l->kind == LINE_PLAN)
		return plan_line(b, l);
	if (l->kind == LINE_DECL) {
		if (nix_get(&b->decl_ix, l->name, &idx)) {
			/* declared again: the later line wins, the name (and the index's pointer to it) stays */
			l->decl.name = s->decls[idx].name;
			s->decls[idx] = l->decl;
			return 0;
		}
		r = grow((void **)&s->decls, s->n_decls, &b->decl_cap, sizeof(*s->decls));
		if (r < 0)
			return r;
		l->decl.name = steal_pointer(&l->name);
		s->decls[s->n_decls++] = l->decl;
		return nix_put(&b->decl_ix, l->decl.name, s->n_decls - 1);
	}

	if (nix_get(&b->plan_ix, l->name, &idx))
		b->plans[idx].open = false; /* the step's own line says more than its plan */
	if (!nix_get(&b->rec_ix, l->name, &idx)) {
		r = grow((void **)&s->records, s->n_records, &b->rec_cap, sizeof(*s->records));
		if (r < 0)
			return r;
		idx = s->n_records++;
		s->records[idx] = (struct ni_step_record){ .name = l->name };
		l->name = NULL;
		r = nix_put(&b->rec_ix, s->records[idx].name, idx);
		if (r < 0)
			return r;
	}
	struct ni_step_record *rec = &s->records[idx];
	if (l->kind == LINE_START) {
		/* the run's outcome is unknown until its end line: interrupted, and the failure count stands */
		l->rec.result = NI_RESULT_INTERRUPTED;
		l->rec.failures = rec->failures;
		l->rec.retry_after_ms = 0;
		l->rec.duration_ms = -1;
		l->rec.exit_code = -1;
	}
	l->rec.name = rec->name;
	*rec = l->rec;
	free(steal_pointer(&l->name));
	return 0;
}

int ni_state_parse(const char *buf, size_t len, struct ni_recipe_state *ret)
{
	struct ni_recipe_state s = { 0 };
	struct builder b = { .s = &s };
	const char *p = buf, *end = buf + len, *nl;
	struct line l;
	int r = 0;

	*ret = (struct ni_recipe_state){ 0 };
	if (len > 0) {
		nl = memchr(p, '\n', len);
		r = parse_header(p, (size_t)((nl ? nl : end) - p), JOURNAL_MAGIC, &s.recipe);
		p = nl ? nl + 1 : end;
	}
	while (r == 0 && p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl) {
			s.n_corrupt++; /* torn: the write that made it did not finish */
			break;
		}
		if (nl > p) {
			r = parse_line(p, (size_t)(nl - p), &l);
			if (r == 1) {
				s.n_corrupt++;
				r = 0;
			} else if (r == 0) {
				r = apply_line(&b, &l);
				free(l.name);
			}
		}
		p = nl + 1;
	}
	/* Planned steps whose pass never said more: as if each had its start line, interrupted. */
	for (size_t i = 0; r == 0 && i < b.n_plans; i++) {
		if (!b.plans[i].open)
			continue;
		l = (struct line){ .kind = LINE_START, .rec = b.plans[i].rec };
		l.name = strdup(b.plans[i].name);
		r = l.name ? apply_line(&b, &l) : -ENOMEM;
		free(l.name);
	}
	if (r == 0 && !s.recipe && !(s.recipe = strdup("")))
		r = -ENOMEM;
	for (size_t i = 0; i < b.n_plans; i++)
		free(b.plans[i].name);
	free(b.plans);
	nix_free(&b.plan_ix);
	nix_free(&b.decl_ix);
	/* The record index is kept: the engine looks every step up, and a search each is O(n^2). */
	if (r == 0 && !(s.index = malloc(sizeof(*s.index))))
		r = -ENOMEM;
	if (r == 0)
		s.index->ix = b.rec_ix;
	else
		nix_free(&b.rec_ix);
	if (r < 0) {
		ni_recipe_state_free(&s);
		return r;
	}
	*ret = s;
	return 0;
}

void ni_recipe_state_free(struct ni_recipe_state *s)
{
	if (!s)
		return;
	free(s->recipe);
	for (size_t i = 0; i < s->n_decls; i++)
		free(s->decls[i].name);
	free(s->decls);
	for (size_t i = 0; i < s->n_records; i++)
		free(s->records[i].name);
	free(s->records);
	if (s->index)
		nix_free(&s->index->ix);
	free(s->index);
	*s = (struct ni_recipe_state){ 0 };
}

const struct ni_step_record *ni_recipe_state_find(const struct ni_recipe_state *s, const char *step)
{
	size_t idx;

	if (s && step && s->index)
		return nix_get(&s->index->ix, step, &idx) && idx < s->n_records ? &s->records[idx] : NULL;
	for (size_t i = 0; s && step && i < s->n_records; i++)
		if (s->records[i].name && ni_streq(s->records[i].name, step))
			return &s->records[i];
	return NULL;
}

/* ---- files ---- */

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			return -EIO;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int pread_all(int fd, char *p, size_t n, off_t off, size_t *ret_n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = pread(fd, p + got, n - got, off + (off_t)got);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	*ret_n = got;
	return 0;
}

/* Opens one of our files for reading: no symlinks, no FIFOs (O_NONBLOCK), regular files only. */
static int open_state_file(int dir_fd, const char *name, int flags, struct stat *ret_st)
{
	_cleanup_close_ int fd = -1;

	fd = openat(dir_fd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, ret_st) < 0)
		return -errno;
	if (!S_ISREG(ret_st->st_mode))
		return S_ISDIR(ret_st->st_mode) ? -EISDIR : -EINVAL;
	return steal_fd(&fd);
}

static int read_file_at(int dir_fd, const char *name, char **ret_buf, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap;
	struct stat st;

	fd = open_state_file(dir_fd, name, O_RDONLY, &st);
	if (fd < 0)
		return fd;
	if ((uint64_t)st.st_size > STATE_FILE_MAX)
		return -EFBIG;
	cap = (size_t)st.st_size + 1; /* one more, to see EOF without growing */
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t k;

		if (len == cap) {
			char *p;

			if (cap > STATE_FILE_MAX)
				return -EFBIG;
			p = realloc(buf, cap * 2);
			if (!p)
				return -ENOMEM;
			buf = p;
			cap *= 2;
		}
		k = read(fd, buf + len, cap - len);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		len += (size_t)k;
	}
	*ret_buf = steal_pointer(&buf);
	*ret_len = len;
	return 0;
}

static int fsync_dir(int dir_fd)
{
	_cleanup_close_ int fd = -1;

	/* dir_fd is O_PATH, which fsync refuses */
	fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return fsync(fd) < 0 ? -errno : 0;
}

/* Creates ".<name>.tmp.<random>" exclusively, mode 0600; its name goes to tmp[NAME_MAX + 1]. */
static int make_temp(int dir_fd, const char *name, char tmp[static NAME_MAX + 1])
{
	for (int attempt = 0; attempt < 16; attempt++) {
		uint64_t rnd;
		int fd;

		if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			rnd = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32 ^ (uint64_t)getpid() << 16 ^ (uint64_t)attempt;
		}
		if (snprintf(tmp, NAME_MAX + 1, ".%s.tmp.%016" PRIx64, name, rnd) > NAME_MAX)
			return -ENAMETOOLONG;
		fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd >= 0 ? fd : -errno;
	}
	return -EEXIST;
}

/* Writes a complete temp file: data, fsync, close. On failure the temp file is gone. */
static int write_temp(int dir_fd, const char *name, const char *data, size_t len, char tmp[static NAME_MAX + 1])
{
	_cleanup_close_ int fd = -1;
	int r;

	fd = make_temp(dir_fd, name, tmp);
	if (fd < 0)
		return fd;
	r = write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && close(steal_fd(&fd)) < 0 && errno != EINTR)
		r = -errno;
	if (r < 0)
		unlinkat(dir_fd, tmp, 0);
	return r;
}

static bool same_content(int dir_fd, const char *name, const char *data, size_t len)
{
	_cleanup_free_ char *old = NULL;
	size_t old_len;
	struct stat st;

	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != len || (st.st_mode & 07777) != 0600)
		return false;
	return read_file_at(dir_fd, name, &old, &old_len) == 0 && old_len == len && memcmp(old, data, len) == 0;
}

/* systemd's write_string_file_atomic_at, minus the EBUSY fallback: our files are never bind mounts. */
static int write_atomic(int dir_fd, const char *name, const char *data, size_t len)
{
	char tmp[NAME_MAX + 1];
	int r;

	if (same_content(dir_fd, name, data, len))
		return 0; /* the idle loop rewrites nothing */
	r = write_temp(dir_fd, name, data, len, tmp);
	if (r < 0)
		return r;
	if (renameat(dir_fd, tmp, dir_fd, name) < 0) {
		r = -errno;
		unlinkat(dir_fd, tmp, 0);
		return r;
	}
	return fsync_dir(dir_fd);
}

static int journal_file(const char *recipe, char buf[static NAME_MAX + 1])
{
	if (!ni_state_name_ok(recipe))
		return -EINVAL;
	snprintf(buf, NAME_MAX + 1, "%s" STATE_SUFFIX, recipe);
	return 0;
}

int ni_state_load(int dir_fd, const char *recipe, struct ni_recipe_state *ret)
{
	_cleanup_free_ char *buf = NULL, *name = NULL;
	char file[NAME_MAX + 1];
	size_t len = 0;
	int r;

	*ret = (struct ni_recipe_state){ 0 };
	r = journal_file(recipe, file);
	if (r < 0)
		return r;
	name = strdup(recipe);
	if (!name)
		return -ENOMEM;
	r = read_file_at(dir_fd, file, &buf, &len);
	if (r == -ENOENT) {
		ret->recipe = steal_pointer(&name);
		return 0;
	}
	if (r < 0)
		return r;
	r = ni_state_parse(buf, len, ret);
	if (r < 0)
		return r;
	free(ret->recipe);
	ret->recipe = steal_pointer(&name);
	return 0;
}

int ni_state_compact(int dir_fd, const char *recipe, const struct ni_step_decl *decls, size_t n_decls,
		     const struct ni_recipe_state *st)
{
	_cleanup_free_ char *buf = NULL;
	char file[NAME_MAX + 1];
	size_t len;
	int r;

	r = journal_file(recipe, file);
	if (r < 0)
		return r;
	r = ni_state_format(recipe, decls, n_decls, st, &buf, &len);
	if (r < 0)
		return r;
	return write_atomic(dir_fd, file, buf, len);
}

/* ---- the journal ---- */

/*
 * Appends whole lines with one write(); if that fails half way, the torn part is cut off again. *end
 * is the file's size, kept by the caller (we hold the lock: nobody else appends), so no lseek a line.
 */
static int journal_append(int fd, const struct sbuf *b, int64_t *end)
{
	int r;

	if (b->oom)
		return -ENOMEM;
	r = write_all(fd, b->p, b->len);
	if (r == 0)
		*end += (int64_t)b->len;
	else if (ftruncate(fd, (off_t)*end) < 0) {
		/* nothing more to do: the next ni_journal_open() cuts a torn line off */
	}
	return r;
}

/* A new journal appears complete with its header (temp file, then link), or not at all. */
static int journal_create(int dir_fd, const char *file, const char *recipe)
{
	struct sbuf b = { 0 };
	char tmp[NAME_MAX + 1];
	int r;

	put_header(&b, recipe);
	if (b.oom)
		return -ENOMEM;
	r = write_temp(dir_fd, file, b.p, b.len, tmp);
	free(b.p);
	if (r < 0)
		return r;
	r = linkat(dir_fd, tmp, dir_fd, file, 0) < 0 ? -errno : 0;
	unlinkat(dir_fd, tmp, 0);
	if (r < 0)
		return r; /* -EEXIST: someone else made it first */
	return fsync_dir(dir_fd);
}

/* An existing journal: ours? Then cut a torn last line off, so the next line starts on its own. */
static int journal_repair(int fd, off_t size, const char *recipe)
{
	static const char magic[] = JOURNAL_MAGIC " " FORMAT_VERSION;
	char chunk[4096];
	off_t pos = size;
	size_t got;
	int r;

	if (size == 0) {
		/* an empty file (someone's touch): make it a journal */
		struct sbuf b = { 0 };
		int64_t end = 0;

		put_header(&b, recipe);
		r = journal_append(fd, &b, &end);
		free(b.p);
		return r;
	}
	r = pread_all(fd, chunk, sizeof(magic), 0, &got);
	if (r < 0)
		return r;
	if (got < sizeof(magic) || memcmp(chunk, magic, sizeof(magic) - 1) != 0 ||
	    (chunk[sizeof(magic) - 1] != ' ' && chunk[sizeof(magic) - 1] != '\n'))
		return -EINVAL;
	while (pos > 0) {
		size_t n = pos < (off_t)sizeof(chunk) ? (size_t)pos : sizeof(chunk);
		const char *nl;

		r = pread_all(fd, chunk, n, pos - (off_t)n, &got);
		if (r < 0)
			return r;
		if (got != n)
			return -EIO; /* shrank under us: we hold the lock, so something else is wrong */
		nl = memrchr(chunk, '\n', n);
		if (nl) {
			off_t keep = pos - (off_t)n + (nl - chunk) + 1;

			if (keep == size)
				return 0;
			return ftruncate(fd, keep) < 0 ? -errno : 0;
		}
		pos -= (off_t)n;
	}
	/* not even the header line is complete */
	if (ftruncate(fd, 0) < 0)
		return -errno;
	return journal_repair(fd, 0, recipe);
}

int ni_journal_open(int dir_fd, const char *recipe, struct ni_journal *ret)
{
	char file[NAME_MAX + 1];
	int r;

	*ret = (struct ni_journal){ .fd = -1 };
	r = journal_file(recipe, file);
	if (r < 0)
		return r;
	for (int attempt = 0; attempt < 3; attempt++) {
		_cleanup_close_ int fd = -1;
		struct stat st;
		off_t end;

		fd = open_state_file(dir_fd, file, O_RDWR | O_APPEND, &st);
		if (fd >= 0) {
			r = journal_repair(fd, st.st_size, recipe);
			if (r < 0)
				return r;
			end = lseek(fd, 0, SEEK_END);
			if (end < 0)
				return -errno;
			ret->end = end;
			ret->fd = steal_fd(&fd);
			return 0;
		}
		if (fd != -ENOENT)
			return fd;
		r = journal_create(dir_fd, file, recipe);
		if (r < 0 && r != -EEXIST)
			return r;
	}
	return -EAGAIN;
}

static bool start_args_ok(const char *step, const char *fingerprint, const char *boot_id)
{
	return ni_state_step_name_ok(step) && fits(fingerprint, sizeof(((struct ni_step_record *)0)->fingerprint)) &&
	       fits(boot_id, sizeof(((struct ni_step_record *)0)->boot_id));
}

/* The steps a durable plan line covers, with the fingerprint planned for each. */
struct ni_journal_plan {
	struct name_index ix; /* name -> index into fps; names owned by names[] */
	char **names;
	char (*fps)[65];
	size_t n;
};

static void plan_free(struct ni_journal_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->names[i]);
	free(p->names);
	free(p->fps);
	nix_free(&p->ix);
	free(p);
}

static bool plan_covers(const struct ni_journal_plan *p, const char *step, const char *fingerprint)
{
	size_t idx;

	return p && nix_get(&p->ix, step, &idx) && ni_streq(p->fps[idx], fingerprint);
}

int ni_journal_plan(struct ni_journal *j, const struct ni_step_decl *steps, size_t n, const char *boot_id,
		    int64_t started_ms)
{
	struct ni_journal_plan *p;
	struct sbuf b = { 0 };
	size_t idx;
	int r = 0;

	if (!j || j->fd < 0)
		return -EBADF;
	if (j->plan || (n && !steps))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!start_args_ok(steps[i].name, steps[i].fingerprint, boot_id))
			return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p || !(p->names = calloc(n + 1, sizeof(*p->names))) || !(p->fps = calloc(n + 1, sizeof(*p->fps)))) {
		plan_free(p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		if (nix_get(&p->ix, steps[i].name, &idx))
			r = -EINVAL;
		else if (!(p->names[p->n] = strdup(steps[i].name)))
			r = -ENOMEM;
		else {
			snprintf(p->fps[p->n], sizeof(p->fps[p->n]), "%s", steps[i].fingerprint);
			r = nix_put(&p->ix, p->names[p->n], p->n);
			p->n++;
		}
		put_mark(&b, "plan", steps[i].name, steps[i].fingerprint, boot_id, started_ms);
	}
	if (r == 0)
		r = journal_append(j->fd, &b, &j->end);
	free(b.p);
	/* The one sync of the pass: from here a crash shows every planned step interrupted. */
	if (r == 0 && fdatasync(j->fd) < 0)
		r = -errno;
	if (r < 0) {
		plan_free(p);
		return r;
	}
	j->plan = p;
	return 0;
}

int ni_journal_begin(struct ni_journal *j, const char *step, const char *fingerprint, const char *boot_id,
		     int64_t started_ms)
{
	struct sbuf b = { 0 };
	int r;

	if (!j || j->fd < 0)
		return -EBADF;
	if (!start_args_ok(step, fingerprint, boot_id))
		return -EINVAL;
	put_mark(&b, "start", step, fingerprint, boot_id, started_ms);
	r = journal_append(j->fd, &b, &j->end);
	free(b.p);
	if (r < 0)
		return r;
	/* A durable plan line already makes a crash show this step interrupted. */
	if (plan_covers(j->plan, step, fingerprint))
		return 0;
	return fdatasync(j->fd) < 0 ? -errno : 0;
}

int ni_journal_end(struct ni_journal *j, const struct ni_step_record *r)
{
	struct sbuf b = { 0 };
	int k;

	if (!j || j->fd < 0)
		return -EBADF;
	if (!r || !record_ok(r))
		return -EINVAL;
	put_end(&b, r);
	k = journal_append(j->fd, &b, &j->end);
	free(b.p);
	return k;
}

void ni_journal_close(struct ni_journal *j)
{
	if (!j)
		return;
	if (j->plan && j->fd >= 0) {
		/* The pass is over: planned steps it never reached keep their previous record. Not
		 * synced: if a crash loses it, they read as interrupted and run again, as due steps do. */
		struct sbuf b = { 0 };

		sb_puts(&b, "close\n");
		(void)journal_append(j->fd, &b, &j->end);
		free(b.p);
	}
	plan_free(j->plan);
	j->plan = NULL;
	ni_safe_close(j->fd);
	j->fd = -1;
}

/* ---- the state dir and its lock ---- */

/* Opens a directory below root_fd with symlinks resolved inside root_fd, where the kernel can (5.6+). */
static int open_dir_in_root(int root_fd, const char *path)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd;

	for (int attempt = 0; attempt < 8; attempt++) {
		fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
		if (fd >= 0)
			return fd;
		if (errno != EAGAIN && errno != EINTR)
			break; /* EAGAIN: a rename raced the lookup */
	}
	/* ENOSYS: an old kernel; EPERM: an old seccomp profile. After setns our / is the host's anyway. */
	if (errno != ENOSYS && errno != EPERM)
		return -errno;
	fd = openat(root_fd, path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int ni_state_open(int root_fd, const char *state_dir, int *ret_dir_fd)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int parent = -1;
	size_t n = 0;
	int fd;

	*ret_dir_fd = -1;
	if (!state_dir || !*state_dir || strnlen(state_dir, PATH_MAX) >= PATH_MAX)
		return -EINVAL;
	path = malloc(strlen(state_dir) + 2);
	if (!path)
		return -ENOMEM;
	/* normalize to "a/b/c": no leading, doubled or trailing slashes, no "." components */
	for (const char *p = state_dir; *p;) {
		size_t c;

		while (*p == '/')
			p++;
		c = strcspn(p, "/");
		if (c == 2 && p[0] == '.' && p[1] == '.')
			return -EINVAL;
		if (c > 0 && !(c == 1 && p[0] == '.')) {
			if (n)
				path[n++] = '/';
			memcpy(path + n, p, c);
			n += c;
		}
		p += c;
	}
	path[n] = '\0';
	if (n == 0)
		strcpy(path, ".");

	fd = open_dir_in_root(root_fd, path);
	if (fd != -ENOENT) {
		*ret_dir_fd = fd;
		return fd < 0 ? fd : 0;
	}
	/* mkdir -p: walk the prefixes from the top, making what is missing */
	for (size_t end = 0; end <= n; end++) {
		if (end < n && path[end] != '/')
			continue;
		const char *comp = path + end;
		bool last = end == n;

		path[end] = '\0';
		while (comp > path && comp[-1] != '/')
			comp--;
		fd = open_dir_in_root(root_fd, path);
		if (fd == -ENOENT) {
			if (mkdirat(parent >= 0 ? parent : root_fd, comp, last ? 0700 : 0755) < 0 && errno != EEXIST)
				fd = -errno;
			else
				fd = open_dir_in_root(root_fd, path);
		}
		if (!last)
			path[end] = '/';
		if (fd < 0)
			return fd;
		ni_safe_close(parent);
		parent = fd;
	}
	*ret_dir_fd = steal_fd(&parent);
	return 0;
}

int ni_state_lock(int dir_fd, bool wait, int cancel_fd, int *ret_lock_fd)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	*ret_lock_fd = -1;
	fd = openat(dir_fd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	for (;;) {
		struct pollfd pfd = { .fd = cancel_fd, .events = POLLIN };
		int n;

		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return -errno;
		if (!wait)
			return -EWOULDBLOCK;
		if (cancel_fd < 0) {
			if (flock(fd, LOCK_EX) == 0)
				break;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* flock cannot wait on an fd too: poll the cancel fd, then try again */
		n = poll(&pfd, 1, LOCK_POLL_MS);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0 && (pfd.revents & POLLNVAL))
			return -EBADF;
		if (n > 0)
			return -ECANCELED;
	}
	*ret_lock_fd = steal_fd(&fd);
	return 0;
}

/* ".<name>.tmp.<16 hex>" for name "index" or "<recipe>.state": the temp files of writers that hold the lock. */
static bool is_locked_temp(const char *f)
{
	size_t n = strlen(f), base;

	if (n < 1 + 5 + 21 || f[0] != '.' || strncmp(f + n - 21, ".tmp.", 5) != 0)
		return false;
	for (size_t i = n - 16; i < n; i++)
		if (!((f[i] >= '0' && f[i] <= '9') || (f[i] >= 'a' && f[i] <= 'f')))
			return false;
	base = n - 21 - 1;
	return (base == 5 && strncmp(f + 1, "index", 5) == 0) ||
	       (base > strlen(STATE_SUFFIX) && strncmp(f + 1 + base - strlen(STATE_SUFFIX), STATE_SUFFIX,
						       strlen(STATE_SUFFIX)) == 0);
}

int ni_state_remove_temps(int dir_fd)
{
	_cleanup_close_ int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d)
		return -errno;
	fd = -1; /* owned by d now */
	while ((de = readdir(d)))
		if (is_locked_temp(de->d_name) && unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT && r == 0)
			r = -errno;
	closedir(d);
	return r;
}

/* ---- the index ---- */

int ni_state_write_index(int dir_fd, char *const *recipes, size_t n)
{
	struct sbuf b = { 0 };
	int r;

	if (n && !recipes)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!ni_state_name_ok(recipes[i]))
			return -EINVAL;
	sb_puts(&b, INDEX_MAGIC " " FORMAT_VERSION "\n");
	for (size_t i = 0; i < n; i++) {
		sb_puts(&b, recipes[i]); /* names need no escaping */
		sb_put(&b, "\n", 1);
	}
	r = b.oom ? -ENOMEM : write_atomic(dir_fd, "index", b.p, b.len);
	free(b.p);
	return r;
}

int ni_state_read_index(int dir_fd, char ***ret_recipes, size_t *ret_n)
{
	_cleanup_free_ char *buf = NULL;
	const char *p, *end, *nl;
	char **v = NULL;
	size_t len, n = 0, cap = 0;
	int r;

	*ret_recipes = NULL;
	*ret_n = 0;
	r = read_file_at(dir_fd, "index", &buf, &len);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	p = buf;
	end = buf + len;
	nl = memchr(p, '\n', len);
	if (!nl || parse_header(p, (size_t)(nl - p), INDEX_MAGIC, NULL) < 0)
		return -EINVAL;
	for (p = nl + 1; p < end && (nl = memchr(p, '\n', (size_t)(end - p))); p = nl + 1) {
		char *name = strndup(p, (size_t)(nl - p));

		if (!name || (r = grow((void **)&v, n, &cap, sizeof(*v))) < 0) {
			free(name);
			ni_strv_free(v, n);
			return -ENOMEM;
		}
		if (ni_state_name_ok(name))
			v[n++] = name;
		else
			free(name); /* written atomically by us, so only a hand edit gets here: skip it */
	}
	*ret_recipes = v;
	*ret_n = n;
	return 0;
}

/* ---- the legacy record ---- */

int ni_state_write_legacy(int dir_fd, const struct ni_legacy_record *rec)
{
	struct sbuf b = { 0 };
	int r;

	if (!rec || !rec->checkpoint || !*rec->checkpoint || strnlen(rec->checkpoint, PATH_MAX) >= PATH_MAX)
		return -EINVAL;
	sb_puts(&b, LEGACY_MAGIC " " FORMAT_VERSION "\nlegacy");
	sb_put_kv(&b, "checkpoint", rec->checkpoint);
	sb_put_kv(&b, "done", rec->done ? "true" : "false");
	sb_put_kv_i64(&b, "exit", rec->exit_code);
	sb_put_kv_i64(&b, "duration_ms", rec->duration_ms);
	sb_put_kv_i64(&b, "finished_ms", rec->finished_ms);
	sb_put(&b, "\n", 1);
	r = b.oom ? -ENOMEM : write_atomic(dir_fd, "legacy", b.p, b.len);
	free(b.p);
	return r;
}

static int parse_legacy(const char *p, const char *end, struct ni_legacy_record *ret)
{
	struct ni_legacy_record rec = { .exit_code = -1, .duration_ms = -1 };
	bool has_done = false;
	struct tok t, k, v;
	char val[24];
	int64_t n;

	if (!tok_next(&p, end, &t) || !tok_is(t, "legacy"))
		return -EINVAL;
	while (tok_next(&p, end, &t)) {
		if (!kv_split(t, &k, &v))
			goto bad;
		if (tok_is(k, "checkpoint")) {
			free(rec.checkpoint);
			rec.checkpoint = malloc(v.n + 1);
			if (!rec.checkpoint)
				return -ENOMEM;
			if (!unescape(v, rec.checkpoint, v.n + 1))
				goto bad;
			continue;
		}
		if (!tok_is(k, "done") && !tok_is(k, "exit") && !tok_is(k, "duration_ms") && !tok_is(k, "finished_ms"))
			continue; /* unknown key */
		if (!unescape(v, val, sizeof(val)))
			goto bad;
		if (tok_is(k, "done")) {
			if (!ni_streq(val, "true") && !ni_streq(val, "false"))
				goto bad;
			rec.done = ni_streq(val, "true");
			has_done = true;
		} else if (tok_is(k, "exit")) {
			if ((ni_parse_i64(val, INT_MIN, INT_MAX, &n)) < 0)
				goto bad;
			rec.exit_code = (int)n;
		} else if ((ni_parse_i64(val, INT64_MIN, INT64_MAX, tok_is(k, "duration_ms") ? &rec.duration_ms : &rec.finished_ms)) < 0)
			goto bad;
	}
	if (!rec.checkpoint || !*rec.checkpoint || !has_done)
		goto bad;
	*ret = rec;
	return 0;
bad:
	free(rec.checkpoint);
	return -EINVAL;
}

int ni_state_read_legacy(int dir_fd, struct ni_legacy_record *ret)
{
	_cleanup_free_ char *buf = NULL;
	const char *nl, *nl2;
	size_t len;
	int r;

	*ret = (struct ni_legacy_record){ 0 };
	r = read_file_at(dir_fd, "legacy", &buf, &len);
	if (r < 0)
		return r;
	nl = memchr(buf, '\n', len);
	if (!nl || parse_header(buf, (size_t)(nl - buf), LEGACY_MAGIC, NULL) < 0)
		return -EINVAL;
	nl2 = memchr(nl + 1, '\n', (size_t)(buf + len - (nl + 1)));
	if (!nl2)
		return -EINVAL;
	return parse_legacy(nl + 1, nl2, ret);
}

void ni_legacy_record_free(struct ni_legacy_record *r)
{
	if (r) {
		free(r->checkpoint);
		*r = (struct ni_legacy_record){ 0 };
	}
}

/* temporary: the state split provides this */
int ni_state_set_aside(int dir_fd, const char *recipe, char ret_name[static NAME_MAX + 1])
{
	char file[NAME_MAX + 1];
	int r = journal_file(recipe, file);

	if (r < 0)
		return r;
	if (snprintf(ret_name, NAME_MAX + 1, "%.200s.corrupt-%" PRId64, file, ni_wall_ms()) > NAME_MAX)
		return -ENAMETOOLONG; /* cannot happen: recipe names are at most 128 bytes */
	if (renameat(dir_fd, file, dir_fd, ret_name) < 0)
		return -errno;
	return fsync_dir(dir_fd);
}
