/* YAML to a tree with libyaml's event parser: core-schema scalars, anchors, depth and size limits. */
#define _GNU_SOURCE
#include "yaml.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util.h"

#define TAG_PREFIX "tag:yaml.org,2002:"

static bool one_of(const char *s, const char *const *words)
{
	for (; *words; words++)
		if (ni_streq(s, *words))
			return true;
	return false;
}

static size_t span(const char *s, const char *set)
{
	return strspn(s, set);
}

#define DIGITS "0123456789"

/* [-+]?[0-9]+ */
static bool is_decimal(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	size_t n = span(s, DIGITS);
	return n > 0 && s[n] == '\0';
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_float(const char *s)
{
	size_t n;

	if (*s == '-' || *s == '+')
		s++;
	if (*s == '.') {
		n = span(++s, DIGITS);
		if (n == 0)
			return false;
		s += n;
	} else {
		n = span(s, DIGITS);
		if (n == 0)
			return false;
		s += n;
		if (*s == '.')
			s += 1 + span(s + 1, DIGITS);
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		n = span(s, DIGITS);
		if (n == 0)
			return false;
		s += n;
	}
	return *s == '\0';
}

/* 0o / 0x integers; one past 64 bits becomes a float rather than wrapping. */
static void set_unsigned(const char *digits, int base, struct ni_yaml_node *n)
{
	unsigned long long v;

	errno = 0;
	v = strtoull(digits, NULL, base);
	if (errno == ERANGE || v > LLONG_MAX) {
		double d = 0;
		for (const char *p = digits; *p; p++)
			d = d * base + (*p <= '9' ? *p - '0' : (*p | 0x20) - 'a' + 10);
		n->type = NI_YAML_FLOAT;
		n->f = d;
		return;
	}
	n->type = NI_YAML_INT;
	n->i = (long long)v;
}

void ni_yaml_resolve_plain(const char *s, size_t len, struct ni_yaml_node *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const trues[] = { "true", "True", "TRUE", NULL };
	static const char *const falses[] = { "false", "False", "FALSE", NULL };
	static const char *const infs[] = { ".inf", ".Inf", ".INF", NULL };
	static const char *const nans[] = { ".nan", ".NaN", ".NAN", NULL };
	const char *unsigned_s = s + (*s == '-' || *s == '+');

	n->type = NI_YAML_STR;
	if (strlen(s) != len)
		return; /* a NUL inside: not something the schema matches */
	if (one_of(s, nulls)) {
		n->type = NI_YAML_NULL;
	} else if (one_of(s, trues) || one_of(s, falses)) {
		n->type = NI_YAML_BOOL;
		n->b = one_of(s, trues);
	} else if (is_decimal(s)) {
		errno = 0;
		n->i = strtoll(s, NULL, 10);
		n->type = NI_YAML_INT;
		if (errno == ERANGE) {
			n->type = NI_YAML_FLOAT;
			n->f = strtod(s, NULL);
		}
	} else if (s[0] == '0' && s[1] == 'o' && s[2] && span(s + 2, "01234567") == len - 2) {
		set_unsigned(s + 2, 8, n);
	} else if (s[0] == '0' && s[1] == 'x' && s[2] && span(s + 2, DIGITS "abcdefABCDEF") == len - 2) {
		set_unsigned(s + 2, 16, n);
	} else if (is_float(s)) {
		n->type = NI_YAML_FLOAT;
		n->f = strtod(s, NULL);
	} else if (one_of(unsigned_s, infs)) {
		n->type = NI_YAML_FLOAT;
		n->f = *s == '-' ? -INFINITY : INFINITY;
	} else if (one_of(s, nans)) {
		n->type = NI_YAML_FLOAT;
		n->f = NAN;
	}
}

struct anchor {
	char *name;
	struct ni_yaml_node *node;
};

struct frame {
	struct ni_yaml_node *node;
	char *anchor; /* registered when the collection ends: an alias inside itself is unknown */
	size_t cap;
};

struct builder {
	struct ni_yaml_doc doc;
	struct frame stack[NI_YAML_MAX_DEPTH];
	unsigned depth;
	struct anchor *anchors;
	size_t n_anchors;
	size_t expanded; /* nodes so far, aliases counted at their full expanded size */
	unsigned documents;
	struct ni_yaml_error *err;
};

static int fail(struct builder *b, const yaml_mark_t *mark, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct builder *b, const yaml_mark_t *mark, int r, const char *fmt, ...)
{
	va_list ap;

	b->err->line = mark ? (unsigned)mark->line + 1 : 0;
	b->err->column = mark ? (unsigned)mark->column + 1 : 0;
	va_start(ap, fmt);
	vsnprintf(b->err->problem, sizeof(b->err->problem), fmt, ap);
	va_end(ap);
	return r;
}

static int no_memory(struct builder *b)
{
	return fail(b, NULL, -ENOMEM, "out of memory");
}

static struct ni_yaml_node *new_node(struct builder *b, enum ni_yaml_type type, const yaml_mark_t *mark,
				     const char *str, size_t len)
{
	struct ni_yaml_node *n = calloc(1, sizeof(*n) + (str ? len + 1 : 0));

	if (!n)
		return NULL;
	n->type = type;
	n->line = (unsigned)mark->line + 1;
	n->column = (unsigned)mark->column + 1;
	n->offset = mark->index;
	n->weight = 1;
	n->height = type == NI_YAML_SEQ || type == NI_YAML_MAP; /* levels of collections, itself included */
	if (str) {
		char *copy = (char *)(n + 1);
		memcpy(copy, str, len);
		copy[len] = '\0';
		n->str = copy;
		n->len = len;
	}
	n->next_alloc = b->doc.all;
	b->doc.all = n;
	return n;
}

/* Attaches a finished node (or an alias's target) to the open collection, or makes it the root. */
static int attach(struct builder *b, struct ni_yaml_node *child, const yaml_mark_t *mark, bool alias)
{
	struct frame *f;

	if (b->depth + child->height > NI_YAML_MAX_DEPTH)
		return fail(b, mark, -EINVAL, "nested too deeply (more than %d levels)", NI_YAML_MAX_DEPTH);
	if (alias) {
		if (child->weight > NI_YAML_MAX_NODES - b->expanded)
			goto too_big;
		b->expanded += child->weight;
	}
	if (b->depth == 0) {
		b->doc.root = child;
		return 0;
	}
	f = &b->stack[b->depth - 1];
	if (f->node->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 8;
		struct ni_yaml_node **items = reallocarray(f->node->items, cap, sizeof(*items));
		if (!items)
			return no_memory(b);
		f->node->items = items;
		f->cap = cap;
	}
	f->node->items[f->node->n++] = child;
	f->node->weight += child->weight;
	if (f->node->height < child->height + 1)
		f->node->height = child->height + 1;
	return 0;
too_big:
	return fail(b, mark, -EINVAL, "document too large with its aliases expanded (more than %u nodes)",
		    NI_YAML_MAX_NODES);
}

static int count_node(struct builder *b, const yaml_mark_t *mark)
{
	if (b->expanded >= NI_YAML_MAX_NODES)
		return fail(b, mark, -EINVAL, "document too large with its aliases expanded (more than %u nodes)",
			    NI_YAML_MAX_NODES);
	b->expanded++;
	return 0;
}

static int add_anchor(struct builder *b, const char *name, struct ni_yaml_node *node)
{
	char *copy;

	if (!name)
		return 0;
	struct anchor *a = reallocarray(b->anchors, b->n_anchors + 1, sizeof(*a));
	if (!a)
		return no_memory(b);
	b->anchors = a;
	copy = strdup(name);
	if (!copy)
		return no_memory(b);
	b->anchors[b->n_anchors++] = (struct anchor){ copy, node };
	return 0;
}

static struct ni_yaml_node *find_anchor(struct builder *b, const char *name)
{
	/* Latest first: an anchor may be defined again, and then means the new node. */
	for (size_t i = b->n_anchors; i-- > 0;)
		if (ni_streq(b->anchors[i].name, name))
			return b->anchors[i].node;
	return NULL;
}

/* The tag's short name ("int" for tag:yaml.org,2002:int), "" for none, NULL for one we do not know. */
static const char *tag_name(const yaml_char_t *tag)
{
	if (!tag)
		return "";
	if (ni_streq((const char *)tag, "!"))
		return "!";
	if (strncmp((const char *)tag, TAG_PREFIX, strlen(TAG_PREFIX)) == 0)
		return (const char *)tag + strlen(TAG_PREFIX);
	return NULL;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
	const char *tag = tag_name(ev->data.scalar.tag);
	const char *value = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	struct ni_yaml_node *n;
	int r;

	if ((r = count_node(b, &ev->start_mark)) < 0)
		return r;
	if (!tag || !(one_of(tag, (const char *const[]){ "", "!", "str", "int", "float", "bool", "null", NULL })))
		return fail(b, &ev->start_mark, -EINVAL, "unsupported tag '%s' on a scalar",
			    (const char *)ev->data.scalar.tag);
	n = new_node(b, NI_YAML_STR, &ev->start_mark, value, len);
	if (!n)
		return no_memory(b);
	if (ni_streq(tag, "") && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
		ni_yaml_resolve_plain(n->str, n->len, n);
	else if (!ni_streq(tag, "") && !ni_streq(tag, "!") && !ni_streq(tag, "str")) {
		/* An explicit !!int etc.: the text must be one, quoted or not. */
		ni_yaml_resolve_plain(n->str, n->len, n);
		bool ok = (ni_streq(tag, "int") && n->type == NI_YAML_INT) ||
			  (ni_streq(tag, "float") && (n->type == NI_YAML_FLOAT || n->type == NI_YAML_INT)) ||
			  (ni_streq(tag, "bool") && n->type == NI_YAML_BOOL) ||
			  (ni_streq(tag, "null") && n->type == NI_YAML_NULL);
		if (!ok)
			return fail(b, &ev->start_mark, -EINVAL, "'%s' is not a valid !!%s", n->str, tag);
		if (n->type == NI_YAML_INT && ni_streq(tag, "float")) {
			n->type = NI_YAML_FLOAT;
			n->f = (double)n->i;
		}
	}
	if ((r = attach(b, n, &ev->start_mark, false)) < 0)
		return r;
	return add_anchor(b, (const char *)ev->data.scalar.anchor, n);
}

static int on_start(struct builder *b, const yaml_event_t *ev, enum ni_yaml_type type)
{
	const yaml_char_t *tag = type == NI_YAML_SEQ ? ev->data.sequence_start.tag : ev->data.mapping_start.tag;
	const yaml_char_t *anchor = type == NI_YAML_SEQ ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
	const char *t = tag_name(tag);
	struct ni_yaml_node *n;
	int r;

	if (!t || !(ni_streq(t, "") || ni_streq(t, "!") || ni_streq(t, type == NI_YAML_SEQ ? "seq" : "map")))
		return fail(b, &ev->start_mark, -EINVAL, "unsupported tag '%s' on a %s", (const char *)tag,
			    type == NI_YAML_SEQ ? "sequence" : "mapping");
	if (b->depth == NI_YAML_MAX_DEPTH)
		return fail(b, &ev->start_mark, -EINVAL, "nested too deeply (more than %d levels)", NI_YAML_MAX_DEPTH);
	if ((r = count_node(b, &ev->start_mark)) < 0)
		return r;
	n = new_node(b, type, &ev->start_mark, NULL, 0);
	if (!n)
		return no_memory(b);
	b->stack[b->depth] = (struct frame){ .node = n };
	if (anchor && !(b->stack[b->depth].anchor = strdup((const char *)anchor)))
		return no_memory(b);
	b->depth++;
	return 0;
}

static int on_end(struct builder *b, const yaml_event_t *ev)
{
	struct frame f = b->stack[--b->depth];
	int r;

	if (f.node->type == NI_YAML_MAP)
		f.node->n /= 2;
	r = attach(b, f.node, &ev->start_mark, false);
	if (r == 0)
		r = add_anchor(b, f.anchor, f.node);
	free(f.anchor);
	return r;
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
	struct ni_yaml_node *n;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++b->documents > 1)
			return fail(b, &ev->start_mark, -EINVAL,
				    "a second document in the stream (\"---\"): give one document only");
		return 0;
	case YAML_ALIAS_EVENT:
		n = find_anchor(b, (const char *)ev->data.alias.anchor);
		if (!n)
			return fail(b, &ev->start_mark, -EINVAL, "unknown anchor '%s' (an alias must follow its anchor's node)",
				    (const char *)ev->data.alias.anchor);
		return attach(b, n, &ev->start_mark, true);
	case YAML_SCALAR_EVENT:
		return on_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return on_start(b, ev, NI_YAML_SEQ);
	case YAML_MAPPING_START_EVENT:
		return on_start(b, ev, NI_YAML_MAP);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return on_end(b, ev);
	default:
		return 0;
	}
}

/* libyaml's own error: problem at a mark, maybe with the context it was parsing. */
static int parser_error(struct builder *b, const yaml_parser_t *p)
{
	if (p->error == YAML_MEMORY_ERROR)
		return no_memory(b);
	if (p->context)
		return fail(b, &p->problem_mark, -EINVAL, "%s (%s at line %u, column %u)", p->problem, p->context,
			    (unsigned)p->context_mark.line + 1, (unsigned)p->context_mark.column + 1);
	return fail(b, &p->problem_mark, -EINVAL, "%s", p->problem ? p->problem : "invalid YAML");
}

void ni_yaml_doc_free(struct ni_yaml_doc *doc)
{
	struct ni_yaml_node *n = doc->all;

	while (n) {
		struct ni_yaml_node *next = n->next_alloc;
		free(n->items);
		free(n);
		n = next;
	}
	doc->all = doc->root = NULL;
}

int ni_yaml_parse(const char *text, size_t len, struct ni_yaml_doc *ret, struct ni_yaml_error *ret_err)
{
	struct builder b = { .err = ret_err };
	yaml_parser_t parser;
	bool done = false;
	int r = 0;

	*ret_err = (struct ni_yaml_error){ 0 };
	if (!yaml_parser_initialize(&parser))
		return no_memory(&b);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done && r == 0) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			r = parser_error(&b, &parser);
			break;
		}
		r = on_event(&b, &ev);
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);

	while (b.depth > 0)
		free(b.stack[--b.depth].anchor);
	for (size_t i = 0; i < b.n_anchors; i++)
		free(b.anchors[i].name);
	free(b.anchors);
	if (r == 0 && !b.doc.root) {
		yaml_mark_t start = { 0 };
		b.doc.root = new_node(&b, NI_YAML_NULL, &start, NULL, 0);
		if (!b.doc.root)
			r = no_memory(&b);
	}
	if (r < 0) {
		ni_yaml_doc_free(&b.doc);
		return r;
	}
	*ret = b.doc;
	return 0;
}
