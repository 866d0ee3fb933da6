/* YAML text to a small tree: libyaml's event parser, YAML 1.2 core schema, limits, positions. */
#ifndef NI_YAML_H
#define NI_YAML_H

#include <stdbool.h>
#include <stddef.h>

#define NI_YAML_MAX_DEPTH 64          /* nested collections, aliases expanded */
#define NI_YAML_MAX_NODES (1u << 18)  /* nodes of the document with every alias expanded */

/*
 * Scalars: quoted ones (and "!"- or !!str-tagged ones) are strings; plain ones resolve by the
 * YAML 1.2 core schema: null (~, null, Null, NULL, empty), bool (true/True/TRUE, false/...), int
 * (decimal, 0o octal, 0x hex; one that does not fit in 64 bits becomes a float), float (1.5, 1e3,
 * .inf, -.inf, .nan), else string. So `0644` is the integer 644 and `yes` is a string: quote modes.
 * Tags !!str !!int !!float !!bool !!null !!seq !!map are honoured; any other tag is an error.
 */
enum ni_yaml_type {
	NI_YAML_NULL,
	NI_YAML_BOOL,
	NI_YAML_INT,
	NI_YAML_FLOAT,
	NI_YAML_STR,
	NI_YAML_SEQ,
	NI_YAML_MAP,
};

struct ni_yaml_node {
	enum ni_yaml_type type;
	unsigned line, column; /* 1-based, where the node starts (for a mapping: its first key) */
	size_t offset;         /* 0-based byte offset of that start in the text */
	const char *str;       /* scalars: the value as written, unescaped, NUL-terminated */
	size_t len;
	bool b;
	long long i;
	double f;
	/* SEQ: n items; MAP: n pairs as 2n entries, key then value. An alias is the anchored node itself:
	 * the same node may appear more than once (never inside itself). */
	struct ni_yaml_node **items;
	size_t n;
	/* Bookkeeping: expanded size and height (limits), and the list of every node (freeing). */
	size_t weight;
	unsigned height;
	struct ni_yaml_node *next_alloc;
};

struct ni_yaml_doc {
	struct ni_yaml_node *root; /* a NULL node for an empty stream */
	struct ni_yaml_node *all;
};

struct ni_yaml_error {
	unsigned line, column; /* 1-based; 0 when the error has no position (out of memory) */
	char problem[256];
};

/*
 * Parses one YAML document (an empty stream is a null document; a second document is an error).
 * Returns 0 with *ret to free with ni_yaml_doc_free; -EINVAL for invalid or unsupported YAML and
 * -ENOMEM, with ret_err filled ("<problem> (<context> at line L, column C)" in problem).
 */
int ni_yaml_parse(const char *text, size_t len, struct ni_yaml_doc *ret, struct ni_yaml_error *ret_err);

void ni_yaml_doc_free(struct ni_yaml_doc *doc);

/* The core-schema resolution of a plain scalar, on its own: fills type and b/i/f of node. */
void ni_yaml_resolve_plain(const char *s, size_t len, struct ni_yaml_node *node);

#endif
