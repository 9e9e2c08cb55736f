/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool.c — per-worker batch pools and element copying between batches.
 *
 * Each worker owns one pool; batches of every element size the job uses
 * live in a few size classes. A batch remembers its home pool. Released
 * by the home worker it joins a free list (only that thread touches the
 * lists); released by another thread it is pushed onto the home pool's
 * `returned` stack with a CAS, and the home worker takes the whole stack
 * with one exchange when a free list is empty. Only the owner pops, and
 * it pops everything at once, so the stack has no ABA problem. A class
 * keeps at most `keep` free batches and frees the rest, which bounds idle
 * memory; in flight, memory is bounded by the rings.
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
	atomic_init(&p->returned, NULL);
	for (unsigned i = 0; i < SLI_POOL_CLASSES; i++)
		p->cls[i].elem_size = UINT32_MAX;
}

static void free_batch(struct sl_batch_pool *p, struct sl_batch *b)
{
	sli_batch_free_arena(b);
	sl_alloc_free(b->alloc, b);
	if (p->live)
		atomic_fetch_sub_explicit(p->live, 1, memory_order_relaxed);
}

void sli_pool_fini(struct sl_batch_pool *p)
{
	struct sl_batch *b, *next;

	if (p == NULL)
		return;
	for (unsigned i = 0; i < SLI_POOL_CLASSES; i++) {
		for (b = p->cls[i].free; b != NULL; b = next) {
			next = b->next;
			free_batch(p, b);
		}
		p->cls[i].free = NULL;
		p->cls[i].nfree = 0;
	}
	/* Acquire: pairs with the release CAS in give_back(). */
	for (b = atomic_exchange_explicit(&p->returned, NULL, memory_order_acquire); b != NULL;
	     b = next) {
		next = b->next;
		free_batch(p, b);
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

/* Put @b on a local free list, or free it when the class is full. */
static void keep_or_free(struct sl_batch_pool *p, struct sl_batch *b)
{
	int c = class_of(p, b->elem_size);

	if (c < 0 || p->cls[c].nfree >= p->keep) {
		free_batch(p, b);
		return;
	}
	/* Keep big arenas from piling up in idle batches. */
	if (b->arena_cap > (1u << 20))
		sli_batch_free_arena(b);
	b->next = p->cls[c].free;
	p->cls[c].free = b;
	p->cls[c].nfree++;
}

/* Take back everything other threads returned (owner only). */
static void reclaim(struct sl_batch_pool *p)
{
	/* Acquire: pairs with the release CAS in give_back(); the batches'
	 * contents as the other thread left them are visible. */
	struct sl_batch *b = atomic_exchange_explicit(&p->returned, NULL, memory_order_acquire);

	while (b != NULL) {
		struct sl_batch *next = b->next;

		keep_or_free(p, b);
		b = next;
	}
}

static void give_back(struct sl_batch_pool *home, struct sl_batch *b)
{
	struct sl_batch *head = atomic_load_explicit(&home->returned, memory_order_relaxed);

	do {
		b->next = head;
		/* Release: pairs with the acquire exchange in reclaim()/sli_pool_fini(). */
	} while (!atomic_compare_exchange_weak_explicit(
	    &home->returned, &head, b, memory_order_release, memory_order_relaxed));
}

static struct sl_batch *get(struct sl_batch_pool *p, uint32_t elem_size, uint32_t cap)
{
	int c = class_of(p, elem_size);
	struct sl_batch *b;

	if (c >= 0 && p->cls[c].free == NULL &&
	    atomic_load_explicit(&p->returned, memory_order_relaxed) != NULL)
		reclaim(p);
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
		return b;
	}
	b = sl_alloc_aligned(p->alloc, sli_batch_bytes(cap, elem_size), SL_CACHE_LINE);
	if (b == NULL)
		return NULL;
	sli_batch_format(b, p->alloc, cap, elem_size, p->arena_max);
	b->pool = p;
	if (p->live) {
		int64_t live = atomic_fetch_add_explicit(p->live, 1, memory_order_relaxed) + 1;
		int64_t peak = atomic_load_explicit(p->peak, memory_order_relaxed);

		while (live > peak && !atomic_compare_exchange_weak_explicit(p->peak, &peak, live,
									     memory_order_relaxed,
									     memory_order_relaxed))
			;
	}
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
	if (b == NULL)
		return;
	/* A borrowing ends with the batch: the source's elements are not ours to keep. */
	b->data = b->data_own;
	b->flags &= (uint16_t)~SL_BATCH_F_BORROWED;
	if (b->pool != NULL && b->pool != p) {
		give_back(b->pool, b);
		return;
	}
	keep_or_free(p, b);
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
