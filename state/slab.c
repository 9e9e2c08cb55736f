/* SPDX-License-Identifier: Apache-2.0 */
/*
 * slab.c — size-class memory for state entries (see sli_state.h).
 *
 * Small blocks are carved from chunks with a bump pointer shared by all
 * classes; a freed block is pushed on its class's free list and handed
 * out again by the next allocation of that class. So the allocator is
 * called once per chunk (16 KiB doubling to 1 MiB), never per entry, and
 * an allocation or free is a handful of instructions. Chunks return to
 * the allocator only at fini: memory freed in one class is not reused by
 * another (compaction comes with spilling).
 *
 * Big blocks (above SLI_SLAB_MAX) carry a 32-byte header that links them
 * for fini and records their usable size.
 *
 * Invariants: bytes == sum of the chunks' sizes + the big blocks' sizes;
 * live == blocks allocated - blocks freed (the table checks it against
 * its entries, which catches a block lost on an error path).
 * Single-threaded, like the table that owns it.
 */
#include <string.h>

#include <sluice/sl_alloc.h>
#include <sluice/sl_common.h>

#include "sli_state.h"

#define FIRST_CHUNK (16u * 1024)
#define MAX_CHUNK   (1024u * 1024)
#define ALIGN	    16

struct chunk {
	struct chunk *next;
	size_t size;
};

struct sli_slab_big {
	struct sli_slab_big *prev, *next;
	size_t size; /* usable bytes after the header */
	size_t pad;
};

_Static_assert(sizeof(struct chunk) % ALIGN == 0, "chunk header keeps blocks 16-aligned");
_Static_assert(sizeof(struct sli_slab_big) % ALIGN == 0, "big header keeps blocks 16-aligned");
_Static_assert(SLI_SLAB_MAX + sizeof(struct chunk) <= FIRST_CHUNK, "a chunk holds any class");

void sli_slab_init(struct sli_slab *s, const struct sl_allocator *a)
{
	memset(s, 0, sizeof(*s));
	s->a = a;
	s->next_chunk = FIRST_CHUNK;
}

void sli_slab_fini(struct sli_slab *s)
{
	struct chunk *c = s->chunks;
	struct sli_slab_big *b = s->big;

	while (c != NULL) {
		struct chunk *next = c->next;

		sl_alloc_free(s->a, c);
		c = next;
	}
	while (b != NULL) {
		struct sli_slab_big *next = b->next;

		sl_alloc_free(s->a, b);
		b = next;
	}
	s->chunks = NULL;
	s->big = NULL;
	s->bump = s->end = NULL;
	memset(s->free, 0, sizeof(s->free));
	s->bytes = 0;
	s->live = 0;
}

static void *big_alloc(struct sli_slab *s, size_t size)
{
	struct sli_slab_big *b;

	size = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	b = sl_alloc_aligned(s->a, sizeof(*b) + size, ALIGN);
	if (b == NULL)
		return NULL;
	b->size = size;
	b->prev = NULL;
	b->next = s->big;
	if (s->big != NULL)
		s->big->prev = b;
	s->big = b;
	s->bytes += sizeof(*b) + size;
	return b + 1;
}

/* A new chunk; the old chunk's tail (less than one block) is abandoned. */
static int new_chunk(struct sli_slab *s)
{
	struct chunk *c = sl_alloc_aligned(s->a, s->next_chunk, SL_CACHE_LINE);

	if (c == NULL)
		return -1;
	c->next = s->chunks;
	c->size = s->next_chunk;
	s->chunks = c;
	s->bytes += c->size;
	s->bump = (char *)(c + 1);
	s->end = (char *)c + c->size;
	if (s->next_chunk < MAX_CHUNK)
		s->next_chunk *= 2;
	return 0;
}

void *sli_slab_alloc(struct sli_slab *s, size_t size, unsigned *cls)
{
	unsigned c = sli_slab_class(size);
	size_t bytes;
	void *p;

	*cls = c;
	if (c == 0) {
		p = big_alloc(s, size);
	} else if ((p = s->free[c]) != NULL) {
		memcpy(&s->free[c], p, sizeof(void *));
	} else {
		bytes = sli_slab_class_size(c);
		if ((size_t)(s->end - s->bump) < bytes && new_chunk(s) < 0)
			return NULL;
		p = s->bump;
		s->bump += bytes;
	}
	s->live += p != NULL;
	return p;
}

size_t sli_slab_usable(const void *p, unsigned cls)
{
	if (cls == 0)
		return ((const struct sli_slab_big *)p - 1)->size;
	return sli_slab_class_size(cls);
}

void sli_slab_free(struct sli_slab *s, void *p, unsigned cls)
{
	struct sli_slab_big *b;

	if (p == NULL)
		return;
	s->live--;
	if (cls != 0) {
		SL_ASSERT(cls <= SLI_SLAB_CLASSES);
		memcpy(p, &s->free[cls], sizeof(void *));
		s->free[cls] = p;
		return;
	}
	b = (struct sli_slab_big *)p - 1;
	if (b->prev != NULL)
		b->prev->next = b->next;
	else
		s->big = b->next;
	if (b->next != NULL)
		b->next->prev = b->prev;
	s->bytes -= sizeof(*b) + b->size;
	sl_alloc_free(s->a, b);
}
