/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool.c — per-worker batch pools and element copying between batches.
 *
 * Each worker owns one pool; batches of every element size the job uses
 * live in a few size classes. A batch is released into the pool of the
 * worker that releases it (usually the consumer), whoever allocated it,
 * so no pool is ever touched by two threads and nothing here is atomic.
 * A class keeps at most `keep` free batches and frees the rest, which
 * bounds idle memory; in flight, memory is bounded by the rings.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "sli_core.h"

void sli_pool_init(struct sl_batch_pool *p, const struct sl_allocator *alloc, uint32_t cap,
		   uint32_t arena_max, uint32_t keep)
{
	memset(p, 0, sizeof(*p));
	p->alloc = alloc ? alloc : sl_alloc_default();
	p->cap = cap;
	p->arena_max = arena_max;
	p->keep = keep;
	for (unsigned i = 0; i < SLI_POOL_CLASSES; i++)
		p->cls[i].elem_size = UINT32_MAX;
}

static void free_batch(struct sl_batch *b)
{
	sli_batch_free_arena(b);
	sl_alloc_free(b->alloc, b);
}

void sli_pool_fini(struct sl_batch_pool *p)
{
	if (p == NULL)
		return;
	for (unsigned i = 0; i < SLI_POOL_CLASSES; i++) {
		struct sl_batch *b = p->cls[i].free, *next;

		for (; b != NULL; b = next) {
			next = b->next;
			free_batch(b);
		}
		p->cls[i].free = NULL;
		p->cls[i].nfree = 0;
	}
}

static int class_of(struct sl_batch_pool *p, uint32_t elem_size)
{
	for (unsigned i = 0; i < SLI_POOL_CLASSES; i++) {
		if (p->cls[i].elem_size == elem_size)
			return (int)i;
		if (p->cls[i].elem_size == UINT32_MAX) {
			p->cls[i].elem_size = elem_size;
			return (int)i;
		}
	}
	return -1; /* more element sizes than classes: allocate unpooled */
}

static struct sl_batch *get(struct sl_batch_pool *p, uint32_t elem_size, uint32_t cap)
{
	int c = class_of(p, elem_size);
	struct sl_batch *b;

	if (c >= 0 && p->cls[c].free != NULL) {
		b = p->cls[c].free;
		p->cls[c].free = b->next;
		p->cls[c].nfree--;
		b->n = 0;
		b->arena_used = 0;
		b->flags = 0;
		b->kind = SL_EVENT_DATA;
		b->value = 0;
		b->channel = 0;
		b->next = NULL;
		/*
		 * The arena grows through the allocator of the thread that
		 * holds the batch now (a NUMA allocator allocates only from
		 * its own thread). All allocators of one job free each
		 * other's blocks (all mimalloc, or all libc).
		 */
		b->alloc = p->alloc;
		return b;
	}
	b = sl_alloc_aligned(p->alloc, sli_batch_bytes(cap, elem_size), SL_CACHE_LINE);
	if (b == NULL)
		return NULL;
	sli_batch_format(b, p->alloc, cap, elem_size, p->arena_max);
	b->pool = p;
	p->allocated++;
	return b;
}

struct sl_batch *sli_pool_get(struct sl_batch_pool *p, uint32_t elem_size)
{
	return get(p, elem_size, p->cap);
}

/* Control events are batches of elem_size 0 and capacity 1 (element types are never empty). */
struct sl_batch *sli_pool_get_event(struct sl_batch_pool *p, enum sl_event_kind kind, int64_t value)
{
	struct sl_batch *b = get(p, 0, 1);

	if (b != NULL) {
		b->kind = (uint16_t)kind;
		b->value = value;
	}
	return b;
}

void sli_pool_put(struct sl_batch_pool *p, struct sl_batch *b)
{
	bool event;
	int c;

	if (b == NULL)
		return;
	event = b->elem_size == 0;
	c = class_of(p, b->elem_size);
	/* A data batch of another capacity (another job's) is not reusable here. */
	if (c < 0 || p->cls[c].nfree >= p->keep || (!event && b->cap != p->cap) ||
	    (event && b->cap != 1)) {
		free_batch(b);
		return;
	}
	/* Keep big arenas from piling up in idle batches. */
	if (b->arena_cap > (1u << 20))
		sli_batch_free_arena(b);
	b->next = p->cls[c].free;
	p->cls[c].free = b;
	p->cls[c].nfree++;
}

int sli_batch_copy_elem(struct sl_batch *dst, const struct sl_batch *src, uint32_t i,
			const struct sl_type *type)
{
	uint8_t *d = dst->data + (size_t)dst->n * dst->elem_size;
	const uint8_t *s = src->data + (size_t)i * src->elem_size;

	SL_ASSERT(dst->n < dst->cap && dst->elem_size == src->elem_size);
	memcpy(d, s, dst->elem_size);
	for (uint32_t k = 0; k < type->nstr; k++) {
		struct sl_str in, out;
		int rc;

		memcpy(&in, s + type->str_off[k], sizeof(in));
		rc = sl_batch_add_str(dst, src->arena + in.off, in.len, &out);
		if (rc < 0)
			return rc; /* dst->n unchanged: the element was not added */
		memcpy(d + type->str_off[k], &out, sizeof(out));
	}
	dst->ts[dst->n] = src->ts[i];
	dst->key[dst->n] = src->key[i];
	dst->n++;
	return 0;
}
