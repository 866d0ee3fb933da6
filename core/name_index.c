/* A name -> index map by open addressing over names someone else owns: the journal's text uses it to
 * find a step's declaration and record in one look, the journal's plan to find a planned step. */
#include "name_index.h"

#include <stdint.h>
#include <stdlib.h>

#include "util.h"

struct ni_name_slot {
	const char *name;
	size_t idx;
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static struct ni_name_slot *name_slot(const struct ni_name_index *ix, const char *name)
{
	size_t mask = ix->cap - 1, i = (size_t)fnv1a(name) & mask;

	while (ix->slots[i].name && !ni_streq(ix->slots[i].name, name))
		i = (i + 1) & mask;
	return &ix->slots[i];
}

bool ni_name_index_get(const struct ni_name_index *ix, const char *name, size_t *ret_idx)
{
	const struct ni_name_slot *s;

	if (ix->cap == 0)
		return false;
	s = name_slot(ix, name);
	if (!s->name)
		return false;
	*ret_idx = s->idx;
	return true;
}

/* The index keeps the pointer, not a copy; a name already there gets the new idx (and pointer). */
int ni_name_index_put(struct ni_name_index *ix, const char *name, size_t idx)
{
	struct ni_name_slot *s;

	if ((ix->used + 1) * 2 > ix->cap) {
		struct ni_name_index bigger = { .cap = ix->cap ? ix->cap * 2 : 16 };

		bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
		if (!bigger.slots)
			return -ENOMEM;
		for (size_t i = 0; i < ix->cap; i++)
			if (ix->slots[i].name)
				*name_slot(&bigger, ix->slots[i].name) = ix->slots[i];
		bigger.used = ix->used;
		free(ix->slots);
		*ix = bigger;
	}
	s = name_slot(ix, name);
	if (!s->name)
		ix->used++;
	s->name = name;
	s->idx = idx;
	return 0;
}

void ni_name_index_free(struct ni_name_index *ix)
{
	free(ix->slots);
	*ix = (struct ni_name_index){ 0 };
}
