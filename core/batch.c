/* SPDX-License-Identifier: Apache-2.0 */
/*
 * batch.c — standalone batches and the string arena.
 *
 * A batch is one allocation: the header, then ts[cap], key[cap] and
 * data[cap * elem_size], each 64-byte aligned. The arena is a separate
 * allocation that grows by doubling up to arena_max, so a batch of short
 * strings stays small and a long record costs memory only while it lives.
 *
 * Threads: a batch belongs to one thread at a time (see sl_batch.h).
 */
#include <errno.h>
#include <string.h>

#include <sluice/sl_batch.h>

#define ALIGN_UP(x, a) (((x) + (a)-1) & ~((size_t)(a)-1))

/* Byte offsets of the arrays that follow the header. */
static size_t layout(uint32_t cap, uint32_t elem_size, size_t *ts_off, size_t *key_off,
		     size_t *data_off)
{
	size_t off = ALIGN_UP(sizeof(struct sl_batch), SL_CACHE_LINE);

	*ts_off = off;
	off = ALIGN_UP(off + (size_t)cap * sizeof(int64_t), SL_CACHE_LINE);
	*key_off = off;
	off = ALIGN_UP(off + (size_t)cap * sizeof(uint64_t), SL_CACHE_LINE);
	*data_off = off;
	return ALIGN_UP(off + (size_t)cap * elem_size, SL_CACHE_LINE);
}

size_t sli_batch_bytes(uint32_t cap, uint32_t elem_size);
size_t sli_batch_bytes(uint32_t cap, uint32_t elem_size)
{
	size_t a, b, c;

	return layout(cap, elem_size, &a, &b, &c);
}

void sli_batch_format(struct sl_batch *b, const struct sl_allocator *alloc, uint32_t cap,
		      uint32_t elem_size, uint32_t arena_max);
void sli_batch_format(struct sl_batch *b, const struct sl_allocator *alloc, uint32_t cap,
		      uint32_t elem_size, uint32_t arena_max)
{
	size_t ts_off, key_off, data_off;

	layout(cap, elem_size, &ts_off, &key_off, &data_off);
	memset(b, 0, sizeof(*b));
	b->kind = SL_EVENT_DATA;
	b->cap = cap;
	b->elem_size = elem_size;
	b->ts = (int64_t *)((char *)b + ts_off);
	b->key = (uint64_t *)((char *)b + key_off);
	b->data = b->data_own = (uint8_t *)b + data_off;
	b->alloc = alloc;
	b->arena_max = arena_max;
}

int sl_batch_create(const struct sl_allocator *alloc, uint32_t cap, uint32_t elem_size,
		    uint32_t arena_max, struct sl_batch **out)
{
	struct sl_batch *b;

	if (out == NULL || cap == 0 || cap > 65536 || elem_size > 65536)
		return -EINVAL;
	if (alloc == NULL)
		alloc = sl_alloc_default();
	b = sl_alloc_aligned(alloc, sli_batch_bytes(cap, elem_size), SL_CACHE_LINE);
	if (b == NULL)
		return -ENOMEM;
	sli_batch_format(b, alloc, cap, elem_size, arena_max);
	*out = b;
	return 0;
}

int sl_batch_borrow(struct sl_batch *b, const void *elems, uint32_t n)
{
	if (b == NULL || b->n != 0 || (elems == NULL && n > 0) || n > b->cap)
		return -EINVAL;
	/* The cast drops const: the flag, tested before every write, keeps it. */
	b->data = (uint8_t *)(uintptr_t)elems;
	b->flags |= SL_BATCH_F_BORROWED;
	b->n = n;
	return 0;
}

void sli_batch_unborrow(struct sl_batch *b);
void sli_batch_unborrow(struct sl_batch *b)
{
	if (!(b->flags & SL_BATCH_F_BORROWED))
		return;
	memcpy(b->data_own, b->data, (size_t)b->n * b->elem_size);
	b->data = b->data_own;
	b->flags &= (uint16_t)~SL_BATCH_F_BORROWED;
}

void sli_batch_free_arena(struct sl_batch *b);
void sli_batch_free_arena(struct sl_batch *b)
{
	sl_alloc_free(b->alloc, b->arena);
	b->arena = NULL;
	b->arena_cap = b->arena_used = 0;
}

void sl_batch_destroy(struct sl_batch *b)
{
	if (b == NULL)
		return;
	sli_batch_free_arena(b);
	sl_alloc_free(b->alloc, b);
}

/*
 * The allocator of the calling worker thread. A batch's arena grows on
 * whichever thread holds the batch, and a NUMA allocator may allocate
 * only on its own thread, so growth uses this one when it is set. All
 * allocators of a job free each other's blocks (all mimalloc or all libc).
 */
static _Thread_local const struct sl_allocator *thread_alloc;

void sli_set_thread_allocator(const struct sl_allocator *a);
void sli_set_thread_allocator(const struct sl_allocator *a)
{
	thread_alloc = a;
}

int sl_batch_add_str(struct sl_batch *b, const void *bytes, uint32_t len, struct sl_str *out)
{
	/* Pool batches only: a standalone batch (the reduce table's arena) frees with its own. */
	const struct sl_allocator *a = thread_alloc && b->pool ? thread_alloc : b->alloc;

	uint64_t need = (uint64_t)b->arena_used + len;

	if (need > b->arena_max)
		return -E2BIG;
	if (need > b->arena_cap) {
		uint64_t cap = b->arena_cap ? b->arena_cap : 4096;
		char *na;

		while (cap < need)
			cap *= 2;
		if (cap > b->arena_max)
			cap = b->arena_max;
		na = sl_alloc_aligned(a, (size_t)cap, 16);
		if (na == NULL)
			return -ENOMEM;
		if (b->arena_used)
			memcpy(na, b->arena, b->arena_used);
		sl_alloc_free(b->alloc, b->arena);
		b->arena = na;
		b->arena_cap = (uint32_t)cap;
	}
	if (len)
		memcpy(b->arena + b->arena_used, bytes, len);
	out->off = b->arena_used;
	out->len = len;
	b->arena_used += len;
	return 0;
}
