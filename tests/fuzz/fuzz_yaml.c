/* libFuzzer target for the YAML reader (ni_yaml_parse): never crashes, and every tree it hands back is sound. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "yaml.h"

/* Walks the tree (aliases appear as shared nodes, so the walk is bounded by the node limit). */
static size_t walk(const struct ni_yaml_node *n, unsigned depth, size_t text_len)
{
	size_t count = 1;

	CHECK(n);
	CHECK(depth <= NI_YAML_MAX_DEPTH + 1);
	CHECK(n->offset <= text_len);
	switch (n->type) {
	case NI_YAML_SEQ:
	case NI_YAML_MAP:
		/* a mapping holds n pairs as 2n entries, key then value; keys are scalars or collections */
		for (size_t i = 0; i < (n->type == NI_YAML_MAP ? 2 * n->n : n->n); i++)
			count += walk(n->items[i], depth + 1, text_len);
		break;
	case NI_YAML_STR:
	case NI_YAML_NULL:
	case NI_YAML_BOOL:
	case NI_YAML_INT:
	case NI_YAML_FLOAT:
		/* scalars carry their text (the null root of an empty stream may not) */
		CHECK(!n->str || n->str[n->len] == '\0');
		CHECK(!n->str || (n->line >= 1 && n->column >= 1));
		break;
	default:
		abort();
	}
	return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ni_yaml_doc doc = { 0 };
	struct ni_yaml_error err = { 0 };
	int r;

	r = ni_yaml_parse((const char *)data, size, &doc, &err);
	CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
	if (r < 0) {
		CHECK(memchr(err.problem, '\0', sizeof(err.problem)));
		CHECK(err.problem[0] != '\0');
		return 0;
	}
	CHECK(doc.root);
	CHECK(walk(doc.root, 0, size) <= 2 * (size_t)NI_YAML_MAX_NODES);
	ni_yaml_doc_free(&doc);

	/* The plain-scalar resolver on its own, on a NUL-terminated copy. */
	if (size < 256) {
		char s[256];
		struct ni_yaml_node n = { 0 };

		memcpy(s, data, size);
		s[size] = '\0';
		ni_yaml_resolve_plain(s, size, &n);
		CHECK(n.type <= NI_YAML_STR);
	}
	return 0;
}
