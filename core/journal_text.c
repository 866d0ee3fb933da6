/* The text of the state files: the journal's lines, the index and the legacy record, formatted and
 * parsed without a syscall (the part tests/fuzz/fuzz_state.c fuzzes). */
#define _GNU_SOURCE
#include "journal_text.h"

#include <limits.h>
#include <stdio.h>

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

static const char *const result_names[] = {
	[NI_RESULT_PENDING] = "pending", [NI_RESULT_OK] = "ok",
	[NI_RESULT_KEPT] = "kept",       [NI_RESULT_FAILED] = "failed",
	[NI_RESULT_INTERRUPTED] = "interrupted", [NI_RESULT_SKIPPED] = "skipped",
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

/* ---- writing lines ---- */

static bool must_escape(unsigned char c)
{
	return c <= 0x20 || c == 0x7f || c == '%' || c == '=';
}

static void put_esc(struct ni_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	while (*s) {
		size_t run = 0;

		while (s[run] && !must_escape((unsigned char)s[run]))
			run++;
		ni_buf_put(b, s, run);
		s += run;
		if (*s) {
			unsigned char c = (unsigned char)*s++;
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			ni_buf_put(b, e, sizeof(e));
		}
	}
}

static void put_kv(struct ni_buf *b, const char *key, const char *val)
{
	ni_buf_put(b, " ", 1);
	ni_buf_puts(b, key);
	ni_buf_put(b, "=", 1);
	put_esc(b, val);
}

static void put_kv_i64(struct ni_buf *b, const char *key, int64_t v)
{
	char num[24];

	ni_i64_dec(v, num);
	put_kv(b, key, num);
}

void ni_journal_put_header(struct ni_buf *b, const char *recipe)
{
	ni_buf_puts(b, NI_JOURNAL_MAGIC " " NI_STATE_FORMAT_VERSION);
	put_kv(b, "recipe", recipe);
	ni_buf_put(b, "\n", 1);
}

static void put_decl(struct ni_buf *b, const struct ni_step_decl *d)
{
	ni_buf_puts(b, "decl ");
	put_esc(b, d->name);
	put_kv(b, "when", d->when);
	put_kv(b, "fp", d->fingerprint);
	ni_buf_put(b, "\n", 1);
}

void ni_journal_put_mark(struct ni_buf *b, const char *kind, const char *step, const char *fp, const char *boot_id,
			 int64_t started_ms)
{
	ni_buf_puts(b, kind);
	ni_buf_put(b, " ", 1);
	put_esc(b, step);
	put_kv(b, "fp", fp);
	put_kv(b, "boot", boot_id);
	put_kv_i64(b, "started_ms", started_ms);
	ni_buf_put(b, "\n", 1);
}

void ni_journal_put_end(struct ni_buf *b, const struct ni_step_record *r)
{
	ni_buf_puts(b, "end ");
	put_esc(b, r->name);
	put_kv(b, "result", ni_result_name(r->result));
	put_kv(b, "fp", r->fingerprint);
	put_kv(b, "boot", r->boot_id);
	put_kv_i64(b, "started_ms", r->started_ms);
	put_kv_i64(b, "duration_ms", r->duration_ms);
	put_kv_i64(b, "exit", r->exit_code);
	put_kv_i64(b, "failures", r->failures);
	put_kv_i64(b, "retry_after_ms", r->retry_after_ms);
	ni_buf_put(b, "\n", 1);
}

static bool decl_ok(const struct ni_step_decl *d)
{
	return ni_state_step_name_ok(d->name) && when_ok(d->when) && fits(d->fingerprint, sizeof(d->fingerprint));
}

bool ni_journal_mark_ok(const char *step, const char *fingerprint, const char *boot_id)
{
	return ni_state_step_name_ok(step) && fits(fingerprint, sizeof(((struct ni_step_record *)0)->fingerprint)) &&
	       fits(boot_id, sizeof(((struct ni_step_record *)0)->boot_id));
}

bool ni_step_record_ok(const struct ni_step_record *r)
{
	return ni_state_step_name_ok(r->name) && fits(r->fingerprint, sizeof(r->fingerprint)) &&
	       fits(r->boot_id, sizeof(r->boot_id)) && ni_result_name(r->result);
}

int ni_state_format(const char *recipe, const struct ni_step_decl *decls, size_t n_decls,
		    const struct ni_recipe_state *st, char **ret_buf, size_t *ret_len)
{
	struct ni_name_index decl_ix = { 0 }, rec_ix = { 0 };
	struct ni_buf b = NI_BUF_INIT(0);
	size_t idx;
	int r = 0;

	if (!ni_state_name_ok(recipe) || (n_decls && !decls))
		return -EINVAL;
	for (size_t i = 0; i < n_decls && r == 0; i++) {
		if (!decl_ok(&decls[i]) || ni_name_index_get(&decl_ix, decls[i].name, &idx))
			r = -EINVAL; /* a duplicate would not survive a load: last one wins */
		else
			r = ni_name_index_put(&decl_ix, decls[i].name, i);
	}
	for (size_t i = 0; st && i < st->n_records && r == 0; i++) {
		const struct ni_step_record *rec = &st->records[i];

		if (!ni_name_index_get(&decl_ix, rec->name ? rec->name : "", &idx))
			continue; /* no longer declared: dropped */
		if (!ni_step_record_ok(rec))
			r = -EINVAL;
		else
			r = ni_name_index_put(&rec_ix, rec->name, i); /* last one wins, as when loading */
	}
	if (r == 0) {
		ni_journal_put_header(&b, recipe);
		for (size_t i = 0; i < n_decls; i++)
			put_decl(&b, &decls[i]);
		for (size_t i = 0; i < n_decls; i++)
			if (ni_name_index_get(&rec_ix, decls[i].name, &idx))
				ni_journal_put_end(&b, &st->records[idx]);
		r = b.err;
	}
	ni_name_index_free(&decl_ix);
	ni_name_index_free(&rec_ix);
	if (r < 0) {
		ni_buf_free(&b);
		return r;
	}
	*ret_buf = ni_buf_steal(&b, ret_len);
	return *ret_buf ? 0 : -ENOMEM;
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

	if (!tok_next(&p, end, &t) || !tok_is(t, magic) || !tok_next(&p, end, &t) || !tok_is(t, NI_STATE_FORMAT_VERSION))
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
	struct ni_name_index ix;
};

struct builder {
	struct ni_recipe_state *s;
	struct ni_name_index decl_ix, rec_ix, plan_ix;
	size_t decl_cap, rec_cap;
	struct open_plan *plans;
	size_t n_plans, plan_cap;
};

static int plan_line(struct builder *b, struct line *l)
{
	size_t idx;
	int r;

	if (!ni_name_index_get(&b->plan_ix, l->name, &idx)) {
		r = grow((void **)&b->plans, b->n_plans, &b->plan_cap, sizeof(*b->plans));
		if (r < 0)
			return r;
		idx = b->n_plans++;
		b->plans[idx] = (struct open_plan){ .name = steal_pointer(&l->name) };
		r = ni_name_index_put(&b->plan_ix, b->plans[idx].name, idx);
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
		if (ni_name_index_get(&b->decl_ix, l->name, &idx)) {
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
		return ni_name_index_put(&b->decl_ix, l->decl.name, s->n_decls - 1);
	}

	if (ni_name_index_get(&b->plan_ix, l->name, &idx))
		b->plans[idx].open = false; /* the step's own line says more than its plan */
	if (!ni_name_index_get(&b->rec_ix, l->name, &idx)) {
		r = grow((void **)&s->records, s->n_records, &b->rec_cap, sizeof(*s->records));
		if (r < 0)
			return r;
		idx = s->n_records++;
		s->records[idx] = (struct ni_step_record){ .name = l->name };
		l->name = NULL;
		r = ni_name_index_put(&b->rec_ix, s->records[idx].name, idx);
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
		r = parse_header(p, (size_t)((nl ? nl : end) - p), NI_JOURNAL_MAGIC, &s.recipe);
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
	ni_name_index_free(&b.plan_ix);
	ni_name_index_free(&b.decl_ix);
	/* The record index is kept: the engine looks every step up, and a search each is O(n^2). */
	if (r == 0 && !(s.index = malloc(sizeof(*s.index))))
		r = -ENOMEM;
	if (r == 0)
		s.index->ix = b.rec_ix;
	else
		ni_name_index_free(&b.rec_ix);
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
		ni_name_index_free(&s->index->ix);
	free(s->index);
	*s = (struct ni_recipe_state){ 0 };
}

const struct ni_step_record *ni_recipe_state_find(const struct ni_recipe_state *s, const char *step)
{
	size_t idx;

	if (s && step && s->index)
		return ni_name_index_get(&s->index->ix, step, &idx) && idx < s->n_records ? &s->records[idx] : NULL;
	for (size_t i = 0; s && step && i < s->n_records; i++)
		if (s->records[i].name && ni_streq(s->records[i].name, step))
			return &s->records[i];
	return NULL;
}


/* ---- the index ---- */

int ni_index_format(char *const *recipes, size_t n, struct ni_buf *b)
{
	if (n && !recipes)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!ni_state_name_ok(recipes[i]))
			return -EINVAL;
	ni_buf_puts(b, NI_INDEX_MAGIC " " NI_STATE_FORMAT_VERSION "\n");
	for (size_t i = 0; i < n; i++) {
		ni_buf_puts(b, recipes[i]); /* names need no escaping */
		ni_buf_putc(b, '\n');
	}
	return b->err;
}

int ni_index_parse(const char *buf, size_t len, char ***ret_recipes, size_t *ret_n)
{
	const char *p = buf, *end = buf + len, *nl;
	char **v = NULL;
	size_t n = 0, cap = 0;

	*ret_recipes = NULL;
	*ret_n = 0;
	nl = len ? memchr(p, '\n', len) : NULL;
	if (!nl || parse_header(p, (size_t)(nl - p), NI_INDEX_MAGIC, NULL) < 0)
		return -EINVAL;
	for (p = nl + 1; p < end && (nl = memchr(p, '\n', (size_t)(end - p))); p = nl + 1) {
		char *name = strndup(p, (size_t)(nl - p));

		if (!name || grow((void **)&v, n, &cap, sizeof(*v)) < 0) {
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

int ni_legacy_format(const struct ni_legacy_record *rec, struct ni_buf *b)
{
	if (!rec || !rec->checkpoint || !*rec->checkpoint || strnlen(rec->checkpoint, PATH_MAX) >= PATH_MAX)
		return -EINVAL;
	ni_buf_puts(b, NI_LEGACY_MAGIC " " NI_STATE_FORMAT_VERSION "\nlegacy");
	put_kv(b, "checkpoint", rec->checkpoint);
	put_kv(b, "done", rec->done ? "true" : "false");
	put_kv_i64(b, "exit", rec->exit_code);
	put_kv_i64(b, "duration_ms", rec->duration_ms);
	put_kv_i64(b, "finished_ms", rec->finished_ms);
	ni_buf_putc(b, '\n');
	return b->err;
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


int ni_legacy_parse(const char *buf, size_t len, struct ni_legacy_record *ret)
{
	const char *nl, *nl2;

	*ret = (struct ni_legacy_record){ 0 };
	nl = len ? memchr(buf, '\n', len) : NULL;
	if (!nl || parse_header(buf, (size_t)(nl - buf), NI_LEGACY_MAGIC, NULL) < 0)
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
