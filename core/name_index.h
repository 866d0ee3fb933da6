/* A name -> index map (open addressing) over names someone else owns: pointers are kept, not copies. */
#ifndef NI_NAME_INDEX_H
#define NI_NAME_INDEX_H

#include <stdbool.h>
#include <stddef.h>

struct ni_name_slot;
struct ni_name_index {
	struct ni_name_slot *slots;
	size_t cap, used;
};
bool ni_name_index_get(const struct ni_name_index *ix, const char *name, size_t *ret_idx);
int ni_name_index_put(struct ni_name_index *ix, const char *name, size_t idx); /* adds, or sets a present name's */
void ni_name_index_free(struct ni_name_index *ix);

#endif
