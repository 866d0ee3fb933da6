/* Reports: the status model and its text and JSON forms, plan lines; all into an ni_buf. */
#define _GNU_SOURCE
#include "report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

__attribute__((format(printf, 2, 3))) static int put_fmt(struct ni_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return b->err = -EINVAL;
	if (ni_buf_reserve(b, (size_t)n + 1) < 0)
		return b->err;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

/*
 * Every name and value printed here was read from a state record or a recipe, which a hand (or a
 * tampered file) may have filled with control bytes: each goes through log.c's escapers, so no
 * output line can be forged or move a terminal's cursor.
 */
static int json_str(struct ni_buf *b, const char *s)
{
	ni_buf_putc(b, '"');
	ni_escape_json(b, s ? s : "", s ? strlen(s) : 0);
	return ni_buf_putc(b, '"');
}

static int text(struct ni_buf *b, const char *s)
{
	return ni_escape_text(b, s ? s : "", s ? strlen(s) : 0);
}

/* text(), then blanks up to width bytes: the columns of `status`. */
static int text_pad(struct ni_buf *b, const char *s, size_t width)
{
	size_t start = b->len;

	text(b, s);
	while (!b->err && b->len - start < width)
		ni_buf_putc(b, ' ');
	return b->err;
}

static void format_time(int64_t ms, char *buf, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int ni_status_add_recipe(struct ni_status *s, const char *name, const struct ni_recipe_state *st, const char *problem)
{
	struct ni_status_recipe *v = realloc(s->recipes, (s->n_recipes + 1) * sizeof(*v)), *r;
	size_t n = problem || !st ? 0 : st->n_decls;

	if (!v)
		return -ENOMEM;
	s->recipes = v;
	r = &v[s->n_recipes];
	*r = (struct ni_status_recipe){ .name = name, .problem = problem };
	if (n > 0) {
		r->steps = calloc(n, sizeof(*r->steps));
		if (!r->steps)
			return -ENOMEM;
	}
	s->n_recipes++;
	for (size_t k = 0; k < n; k++) {
		const struct ni_step_decl *d = &st->decls[k];
		const struct ni_step_record *rec = ni_recipe_state_find(st, d->name);
		struct ni_status_step *o = &r->steps[r->n_steps++];

		*o = (struct ni_status_step){ .name = d->name, .when = d->when };
		o->result = ni_status_result(d, rec, s->boot_id);
		o->finished = rec && o->result != NI_RESULT_PENDING && o->result != NI_RESULT_INTERRUPTED;
		if (o->finished) {
			o->duration_ms = rec->duration_ms;
			o->finished_ms = rec->started_ms + rec->duration_ms;
		}
	}
	return 0;
}

void ni_status_judge(struct ni_status *s)
{
	bool converged = s->n_recipes > 0 || s->legacy.present; /* else nothing has been applied yet */

	if (s->legacy.present && !s->legacy.done)
		converged = false;
	for (size_t i = 0; i < s->n_recipes; i++) {
		if (s->recipes[i].problem)
			converged = false;
		for (size_t k = 0; k < s->recipes[i].n_steps; k++)
			if (!ni_result_converged(s->recipes[i].steps[k].result))
				converged = false;
	}
	s->converged = converged;
}

void ni_status_free(struct ni_status *s)
{
	for (size_t i = 0; i < s->n_recipes; i++)
		free(s->recipes[i].steps);
	free(s->recipes);
	*s = (struct ni_status){ 0 };
}

static void status_json(const struct ni_status *s, struct ni_buf *b)
{
	put_fmt(b, "{\"converged\":%s,\"boot_id\":", s->converged ? "true" : "false");
	json_str(b, s->boot_id);
	ni_buf_puts(b, ",\"recipes\":[");
	for (size_t i = 0; i < s->n_recipes; i++) {
		const struct ni_status_recipe *r = &s->recipes[i];

		ni_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
		json_str(b, r->name);
		ni_buf_puts(b, ",\"steps\":[");
		for (size_t k = 0; k < r->n_steps; k++) {
			const struct ni_status_step *st = &r->steps[k];
			char fin[32];

			ni_buf_puts(b, k ? ",{\"name\":" : "{\"name\":");
			json_str(b, st->name);
			ni_buf_puts(b, ",\"when\":");
			json_str(b, st->when);
			put_fmt(b, ",\"result\":\"%s\",\"duration_ms\":%lld,\"finished_at\":", ni_result_name(st->result),
				(long long)st->duration_ms);
			if (st->finished) {
				format_time(st->finished_ms, fin, sizeof(fin));
				json_str(b, fin);
				ni_buf_putc(b, '}');
			} else {
				ni_buf_puts(b, "null}");
			}
		}
		ni_buf_putc(b, ']');
		if (r->problem) {
			ni_buf_puts(b, ",\"error\":");
			json_str(b, r->problem);
		}
		ni_buf_putc(b, '}');
	}
	ni_buf_puts(b, "],\"legacy\":");
	if (s->legacy.present) {
		ni_buf_puts(b, "{\"checkpoint\":");
		json_str(b, s->legacy.checkpoint);
		put_fmt(b, ",\"done\":%s", s->legacy.done ? "true" : "false");
		if (s->legacy.have_record)
			put_fmt(b, ",\"exit_code\":%d,\"duration_ms\":%lld", s->legacy.exit_code,
				(long long)s->legacy.duration_ms);
		ni_buf_putc(b, '}');
	} else {
		ni_buf_puts(b, "null");
	}
	ni_buf_puts(b, "}\n");
}

static void status_text(const struct ni_status *s, struct ni_buf *b)
{
	put_fmt(b, "converged: %s\nboot_id: ", s->converged ? "yes" : "no");
	text(b, s->boot_id);
	ni_buf_putc(b, '\n');
	if (s->legacy.present) {
		put_fmt(b, "legacy: %s (checkpoint ", s->legacy.done ? "done" : "not done");
		text(b, s->legacy.checkpoint);
		ni_buf_puts(b, ")\n");
	}
	for (size_t i = 0; i < s->n_recipes; i++) {
		const struct ni_status_recipe *r = &s->recipes[i];

		text(b, r->name);
		ni_buf_putc(b, '\n');
		if (r->problem) {
			ni_buf_puts(b, "  (records unreadable: ");
			text(b, r->problem);
			ni_buf_puts(b, ")\n");
		}
		for (size_t k = 0; k < r->n_steps; k++) {
			const struct ni_status_step *st = &r->steps[k];
			char fin[32] = "";

			if (st->finished)
				format_time(st->finished_ms, fin, sizeof(fin));
			ni_buf_puts(b, "  ");
			text_pad(b, st->name, 32);
			ni_buf_putc(b, ' ');
			text_pad(b, st->when, 7);
			put_fmt(b, " %-12s %s\n", ni_result_name(st->result), fin);
		}
	}
}

int ni_status_format(const struct ni_status *s, bool json, struct ni_buf *out)
{
	if (json)
		status_json(s, out);
	else
		status_text(s, out);
	return out->err;
}

int ni_plan_step(struct ni_buf *out, const char *recipe, const char *step, bool due, enum ni_reason why)
{
	text(out, recipe);
	ni_buf_putc(out, '/');
	text(out, step);
	return put_fmt(out, " %s %s\n", due ? "run" : "skip", ni_reason_name(why));
}

/* A detail holds what recipes and the host say (paths, values, argv): escaped, so it stays one line. */
int ni_plan_detail(struct ni_buf *out, const char *line)
{
	ni_buf_puts(out, "    ");
	text(out, line);
	return ni_buf_putc(out, '\n');
}

int ni_plan_legacy(struct ni_buf *out, bool done, const char *checkpoint)
{
	put_fmt(out, "legacy/STARTUP_SCRIPT %s %s (checkpoint ", done ? "skip" : "run", done ? "done" : "new");
	text(out, checkpoint);
	return ni_buf_puts(out, ")\n");
}

int ni_plan_unreadable(struct ni_buf *out, const char *recipe, const char *error)
{
	text(out, recipe);
	ni_buf_puts(out, ": its state records cannot be read (");
	text(out, error);
	return ni_buf_puts(out, "): apply moves them aside and runs its steps again\n");
}
