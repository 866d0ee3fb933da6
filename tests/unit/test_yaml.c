/* yaml.c: core-schema types, positions, anchors and aliases, errors with line and column, limits. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "yaml.h"

static struct ni_yaml_doc parse_ok(const char *text)
{
	struct ni_yaml_doc doc;
	struct ni_yaml_error err;
	int r = ni_yaml_parse(text, strlen(text), &doc, &err);

	if (r != 0)
		fail_msg("parse failed: line %u, column %u: %s", err.line, err.column, err.problem);
	return doc;
}

static struct ni_yaml_error parse_err(const char *text, int expect)
{
	struct ni_yaml_doc doc;
	struct ni_yaml_error err;

	assert_int_equal(ni_yaml_parse(text, strlen(text), &doc, &err), expect);
	return err;
}

/* The value of key in a mapping node, or NULL. */
static const struct ni_yaml_node *get(const struct ni_yaml_node *map, const char *key)
{
	assert_int_equal(map->type, NI_YAML_MAP);
	for (size_t i = 0; i < map->n; i++)
		if (map->items[2 * i]->str && strcmp(map->items[2 * i]->str, key) == 0)
			return map->items[2 * i + 1];
	return NULL;
}

static void test_scalar_types(void **state)
{
	static const struct {
		const char *text;
		enum ni_yaml_type type;
	} cases[] = {
		{ "~", NI_YAML_NULL },        { "null", NI_YAML_NULL },     { "NULL", NI_YAML_NULL },
		{ "", NI_YAML_NULL },         { "true", NI_YAML_BOOL },     { "False", NI_YAML_BOOL },
		{ "42", NI_YAML_INT },        { "-7", NI_YAML_INT },        { "+3", NI_YAML_INT },
		{ "0644", NI_YAML_INT },      { "0o17", NI_YAML_INT },      { "0xff", NI_YAML_INT },
		{ "1.5", NI_YAML_FLOAT },     { "1e3", NI_YAML_FLOAT },     { ".5", NI_YAML_FLOAT },
		{ "-.inf", NI_YAML_FLOAT },   { ".NaN", NI_YAML_FLOAT },    { "1.", NI_YAML_FLOAT },
		{ "yes", NI_YAML_STR },       { "on", NI_YAML_STR },        { "0x", NI_YAML_STR },
		{ "1_000", NI_YAML_STR },     { "1.2.3", NI_YAML_STR },     { "e3", NI_YAML_STR },
		{ "nulls", NI_YAML_STR },     { "0o8", NI_YAML_STR },       { ".", NI_YAML_STR },
		{ "10.0.0.1", NI_YAML_STR },  { "-", NI_YAML_STR },
	};
	struct ni_yaml_node n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&n, 0, sizeof(n));
		ni_yaml_resolve_plain(cases[i].text, strlen(cases[i].text), &n);
		if (n.type != cases[i].type)
			fail_msg("'%s': type %d, expected %d", cases[i].text, n.type, cases[i].type);
	}
	ni_yaml_resolve_plain("0644", 4, &n);
	assert_int_equal(n.i, 644); /* YAML 1.2: decimal, not octal */
	ni_yaml_resolve_plain("0o17", 4, &n);
	assert_int_equal(n.i, 15);
	ni_yaml_resolve_plain("0xFF", 4, &n);
	assert_int_equal(n.i, 255);
	ni_yaml_resolve_plain("-.inf", 5, &n);
	assert_true(isinf(n.f) && n.f < 0);
	ni_yaml_resolve_plain("True", 4, &n);
	assert_true(n.b);
	ni_yaml_resolve_plain("9223372036854775807", 19, &n);
	assert_int_equal(n.type, NI_YAML_INT);
	ni_yaml_resolve_plain("9223372036854775808", 19, &n); /* past 64 bits: a float, not a wrap */
	assert_int_equal(n.type, NI_YAML_FLOAT);
	assert_true(n.f > 9.2e18);
	ni_yaml_resolve_plain("0xffffffffffffffff", 18, &n);
	assert_int_equal(n.type, NI_YAML_FLOAT);
}

static void test_document(void **state)
{
	struct ni_yaml_doc doc = parse_ok("name: mirror\n"
					  "when: boot\n"
					  "timeout: 60\n"
					  "quoted: \"60\"\n"
					  "single: 'true'\n"
					  "tagged: !!str 12\n"
					  "forced: !!float 3\n"
					  "list: [a, 1, ~]\n"
					  "block: |\n"
					  "  line one\n"
					  "  line two\n"
					  "nested:\n"
					  "  - x: 1\n"
					  "    y: [2]\n");
	const struct ni_yaml_node *root = doc.root, *n;

	(void)state;
	assert_int_equal(root->type, NI_YAML_MAP);
	assert_int_equal(root->n, 10);
	assert_string_equal(get(root, "name")->str, "mirror");
	n = get(root, "timeout");
	assert_int_equal(n->type, NI_YAML_INT);
	assert_int_equal(n->i, 60);
	assert_int_equal(get(root, "quoted")->type, NI_YAML_STR);
	assert_int_equal(get(root, "single")->type, NI_YAML_STR);
	assert_int_equal(get(root, "tagged")->type, NI_YAML_STR);
	n = get(root, "forced");
	assert_int_equal(n->type, NI_YAML_FLOAT);
	assert_true(n->f == 3.0);
	n = get(root, "list");
	assert_int_equal(n->type, NI_YAML_SEQ);
	assert_int_equal(n->n, 3);
	assert_int_equal(n->items[0]->type, NI_YAML_STR);
	assert_int_equal(n->items[1]->type, NI_YAML_INT);
	assert_int_equal(n->items[2]->type, NI_YAML_NULL);
	assert_string_equal(get(root, "block")->str, "line one\nline two\n");

	/* Positions: 1-based line and column where each node starts. */
	assert_int_equal(root->line, 1);
	assert_int_equal(root->column, 1);
	n = get(root, "nested");
	assert_int_equal(n->line, 13);
	assert_int_equal(n->column, 3);
	assert_int_equal(n->items[0]->type, NI_YAML_MAP);
	assert_int_equal(n->items[0]->line, 13);
	assert_int_equal(n->items[0]->column, 5);
	n = get(n->items[0], "y");
	assert_int_equal(n->line, 14);
	assert_int_equal(n->column, 8);
	assert_int_equal(get(root, "timeout")->line, 3);
	assert_int_equal(get(root, "timeout")->column, 10);
	ni_yaml_doc_free(&doc);
}

static void test_empty(void **state)
{
	struct ni_yaml_doc doc = parse_ok("# only a comment\n");

	(void)state;
	assert_non_null(doc.root);
	assert_int_equal(doc.root->type, NI_YAML_NULL);
	ni_yaml_doc_free(&doc);
	doc = parse_ok("");
	assert_int_equal(doc.root->type, NI_YAML_NULL);
	ni_yaml_doc_free(&doc);
}

static void test_anchors(void **state)
{
	struct ni_yaml_doc doc = parse_ok("base: &b {mode: \"0644\", owner: root}\n"
					  "a: *b\n"
					  "b: *b\n"
					  "s: &s hello\n"
					  "t: *s\n");
	const struct ni_yaml_node *root = doc.root;

	(void)state;
	assert_ptr_equal(get(root, "a"), get(root, "base"));
	assert_string_equal(get(get(root, "b"), "mode")->str, "0644");
	assert_string_equal(get(root, "t")->str, "hello");
	ni_yaml_doc_free(&doc);
}

static void test_errors(void **state)
{
	struct ni_yaml_error e;

	(void)state;
	e = parse_err("a: 1\nb: [1, 2\nc: 3\n", -EINVAL);
	assert_int_equal(e.line, 3);
	assert_true(e.column >= 1);
	assert_non_null(strstr(e.problem, "flow sequence"));

	e = parse_err("a:\n  b: 1\n c: 2\n", -EINVAL);
	assert_int_equal(e.line, 3);
	assert_int_equal(e.column, 2);

	e = parse_err("a: *nope\n", -EINVAL);
	assert_int_equal(e.line, 1);
	assert_int_equal(e.column, 4);
	assert_non_null(strstr(e.problem, "unknown anchor 'nope'"));

	/* An alias inside its own anchor's node is unknown there: no cycles. */
	e = parse_err("a: &x [1, *x]\n", -EINVAL);
	assert_non_null(strstr(e.problem, "unknown anchor"));

	e = parse_err("a: 1\n---\nb: 2\n", -EINVAL);
	assert_int_equal(e.line, 2);
	assert_non_null(strstr(e.problem, "second document"));

	e = parse_err("a: !Ref x\n", -EINVAL);
	assert_non_null(strstr(e.problem, "unsupported tag '!Ref'"));
	e = parse_err("a: !!int nope\n", -EINVAL);
	assert_non_null(strstr(e.problem, "not a valid !!int"));

	e = parse_err("a: \"tab\\q\"\n", -EINVAL);
	assert_int_equal(e.line, 1);
}

/* Billion laughs: nine levels of ten aliases would be 10^9 nodes; refused early. */
static void test_alias_limit(void **state)
{
	char text[2048];
	size_t off = 0;
	struct ni_yaml_error e;

	(void)state;
	off += (size_t)snprintf(text + off, sizeof(text) - off, "a0: &a0 [lol]\n");
	for (int i = 1; i < 10; i++) {
		off += (size_t)snprintf(text + off, sizeof(text) - off, "a%d: &a%d [", i, i);
		for (int j = 0; j < 10; j++)
			off += (size_t)snprintf(text + off, sizeof(text) - off, "%s*a%d", j ? ", " : "", i - 1);
		off += (size_t)snprintf(text + off, sizeof(text) - off, "]\n");
	}
	e = parse_err(text, -EINVAL);
	assert_non_null(strstr(e.problem, "aliases expanded"));
	assert_true(e.line >= 5);

	/* A few aliases are fine. */
	struct ni_yaml_doc doc = parse_ok("a: &a [1, 2]\nb: [*a, *a, *a]\n");
	ni_yaml_doc_free(&doc);
}

static void test_depth_limit(void **state)
{
	char text[512];
	struct ni_yaml_error e;
	struct ni_yaml_doc doc;
	int i;

	(void)state;
	/* 64 levels are fine, 65 are not. */
	for (i = 0; i < 64; i++)
		text[i] = '[';
	for (; i < 128; i++)
		text[i] = ']';
	text[i] = '\0';
	doc = parse_ok(text);
	ni_yaml_doc_free(&doc);

	for (i = 0; i < 65; i++)
		text[i] = '[';
	for (; i < 130; i++)
		text[i] = ']';
	text[i] = '\0';
	e = parse_err(text, -EINVAL);
	assert_int_equal(e.line, 1);
	assert_int_equal(e.column, 65);
	assert_non_null(strstr(e.problem, "nested too deeply"));

	/* Aliases cannot dodge it: 40 levels placed inside 40 more. */
	char *deep = malloc(4096);
	size_t off = (size_t)sprintf(deep, "a: &d ");
	for (i = 0; i < 40; i++)
		deep[off++] = '[';
	for (i = 0; i < 40; i++)
		deep[off++] = ']';
	off += (size_t)sprintf(deep + off, "\nb: ");
	for (i = 0; i < 40; i++)
		deep[off++] = '[';
	off += (size_t)sprintf(deep + off, "*d");
	for (i = 0; i < 40; i++)
		deep[off++] = ']';
	deep[off++] = '\n';
	deep[off] = '\0';
	e = parse_err(deep, -EINVAL);
	assert_int_equal(e.line, 2);
	assert_non_null(strstr(e.problem, "nested too deeply"));
	free(deep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalar_types), cmocka_unit_test(test_document),    cmocka_unit_test(test_empty),
		cmocka_unit_test(test_anchors),      cmocka_unit_test(test_errors),      cmocka_unit_test(test_alias_limit),
		cmocka_unit_test(test_depth_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
