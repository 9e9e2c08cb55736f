/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_ring.h — bounded single-producer / single-consumer lock-free ring of
 * pointers.
 *
 * This is how tasks on different cores hand each other batches: one slot
 * holds one pointer (a batch, or an in-band control event such as a
 * watermark or a checkpoint barrier), so synchronisation is paid once per
 * batch, never per record. The ring is FIFO, so control events stay in
 * order with the data around them.
 *
 * Design (after DPDK's rte_ring, specialised to one producer and one
 * consumer):
 *  - The size is a power of two and every slot is usable.
 *  - head and tail are free-running 32-bit counters; the slot of counter c
 *    is c & mask, and head - tail (unsigned) is the number of entries even
 *    after the counters wrap around 2^32.
 *  - The producer writes only the producer cache line (head and its cached
 *    copy of tail); the consumer writes only the consumer cache line. Each
 *    side re-reads the other side's counter only when its cached copy says
 *    the ring looks full (or empty), so in steady state each burst costs
 *    one release store and no cache-line transfer of the counters.
 *  - No allocation after creation; enqueue and dequeue are inline.
 *
 * Threads: at any moment at most one thread may enqueue and at most one
 * thread may dequeue. sl_ring_count() and sl_ring_free_count() may be
 * called from either side and return a snapshot.
 */
#ifndef SL_RING_H
#define SL_RING_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "sl_alloc.h"
#include "sl_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest number of slots a ring can have. */
#define SL_RING_MAX_SIZE (UINT32_C(1) << 31)

/*
 * Alignment of a ring and distance between its producer and consumer
 * fields: two cache lines, because x86 parts prefetch cache lines in
 * adjacent pairs, which would otherwise make the two sides' lines bounce
 * together (DPDK pads with RTE_CACHE_GUARD for the same reason).
 */
#define SL_RING_ALIGN (2 * SL_CACHE_LINE)

struct sl_ring {
	/* Written only by the producer. */
	struct {
		alignas(SL_RING_ALIGN) _Atomic uint32_t head; /* next counter to fill */
		uint32_t cached_tail; /* producer's last view of cons.tail */
		uint32_t mask;	      /* size - 1, copy for the producer */
		uint32_t size;
	} prod;
	/* Written only by the consumer. */
	struct {
		alignas(SL_RING_ALIGN) _Atomic uint32_t tail; /* next counter to take */
		uint32_t cached_head; /* consumer's last view of prod.head */
		uint32_t mask;	      /* size - 1, copy for the consumer */
		uint32_t size;
	} cons;
	/* Read-only after init. */
	struct {
		alignas(SL_RING_ALIGN) const struct sl_allocator *alloc; /* NULL: caller memory */
		char name[32];
	} meta;
	alignas(SL_CACHE_LINE) void *slots[];
};

_Static_assert(offsetof(struct sl_ring, cons) - offsetof(struct sl_ring, prod) >= SL_RING_ALIGN,
	       "producer and consumer fields must not share a cache-line pair");
_Static_assert(offsetof(struct sl_ring, meta) - offsetof(struct sl_ring, cons) >= SL_RING_ALIGN,
	       "consumer fields must not share a cache-line pair with the rest");
_Static_assert(offsetof(struct sl_ring, slots) % SL_CACHE_LINE == 0,
	       "slots start on their own cache line");
_Static_assert(sizeof(void *) == 8, "sl_ring assumes 64-bit pointers");

/**
 * sl_ring_memsize() - bytes needed for a ring of @size slots.
 * Return: the size in bytes, or -EINVAL when @size is not a power of two
 * in [2, SL_RING_MAX_SIZE].
 */
long sl_ring_memsize(uint32_t size);

/**
 * sl_ring_init() - initialise a ring in caller memory.
 * @r: at least sl_ring_memsize(@size) bytes aligned to SL_RING_ALIGN.
 * @size: number of slots, a power of two in [2, SL_RING_MAX_SIZE].
 * @name: shown in plans and logs; truncated to 31 bytes; may be NULL.
 *
 * Return: 0, or -EINVAL for a bad @size, a NULL or misaligned @r.
 */
int sl_ring_init(struct sl_ring *r, uint32_t size, const char *name);

/**
 * sl_ring_create() - allocate and initialise a ring.
 * @size: number of slots, a power of two in [2, SL_RING_MAX_SIZE].
 * @name: may be NULL.
 * @alloc: allocator for the ring memory; NULL means sl_alloc_default().
 * @out: receives the ring on success.
 *
 * Return: 0; -EINVAL for a bad @size or NULL @out; -ENOMEM.
 */
int sl_ring_create(uint32_t size, const char *name, const struct sl_allocator *alloc,
		   struct sl_ring **out);

/** sl_ring_destroy() - free a ring from sl_ring_create(); accepts NULL. */
void sl_ring_destroy(struct sl_ring *r);

/** Name given at creation (possibly empty). */
static inline const char *sl_ring_name(const struct sl_ring *r)
{
	return r->meta.name;
}

/** Number of slots. */
static inline uint32_t sl_ring_size(const struct sl_ring *r)
{
	return r->prod.size;
}

/* Copy n pointers into the slots starting at counter c, wrapping once. */
static inline void sli_ring_put(struct sl_ring *r, uint32_t c, void *const *objs, uint32_t n)
{
	uint32_t idx = c & r->prod.mask;
	uint32_t first = r->prod.size - idx;

	if (sl_likely(n <= first)) {
		memcpy(&r->slots[idx], objs, n * sizeof(void *));
	} else {
		memcpy(&r->slots[idx], objs, first * sizeof(void *));
		memcpy(&r->slots[0], objs + first, (n - first) * sizeof(void *));
	}
}

static inline void sli_ring_get(const struct sl_ring *r, uint32_t c, void **objs, uint32_t n)
{
	uint32_t idx = c & r->cons.mask;
	uint32_t first = r->cons.size - idx;

	if (sl_likely(n <= first)) {
		memcpy(objs, &r->slots[idx], n * sizeof(void *));
	} else {
		memcpy(objs, &r->slots[idx], first * sizeof(void *));
		memcpy(objs + first, &r->slots[0], (n - first) * sizeof(void *));
	}
}

static inline uint32_t sli_ring_enqueue(struct sl_ring *r, void *const *objs, uint32_t n,
					bool all_or_nothing)
{
	/* Relaxed: only this thread (the producer) ever writes prod.head. */
	uint32_t head = atomic_load_explicit(&r->prod.head, memory_order_relaxed);
	uint32_t room = r->prod.size - (head - r->prod.cached_tail);

	if (room < n) {
		/*
		 * Acquire: pairs with the store-release of cons.tail in
		 * sli_ring_dequeue(). Everything the consumer did before
		 * moving the tail — in particular reading the slots we are
		 * about to overwrite — happens before our writes below.
		 */
		r->prod.cached_tail = atomic_load_explicit(&r->cons.tail, memory_order_acquire);
		room = r->prod.size - (head - r->prod.cached_tail);
		if (room < n) {
			if (all_or_nothing)
				return 0;
			n = room;
		}
	}
	if (n == 0)
		return 0;
	sli_ring_put(r, head, objs, n);
	/*
	 * Release: pairs with the load-acquire of prod.head in
	 * sli_ring_dequeue(); the slot writes above become visible to the
	 * consumer no later than the new head.
	 */
	atomic_store_explicit(&r->prod.head, head + n, memory_order_release);
	return n;
}

static inline uint32_t sli_ring_dequeue(struct sl_ring *r, void **objs, uint32_t n,
					bool all_or_nothing)
{
	/* Relaxed: only this thread (the consumer) ever writes cons.tail. */
	uint32_t tail = atomic_load_explicit(&r->cons.tail, memory_order_relaxed);
	uint32_t avail = r->cons.cached_head - tail;

	if (avail < n) {
		/*
		 * Acquire: pairs with the store-release of prod.head in
		 * sli_ring_enqueue(); the producer's slot writes before that
		 * store are visible to the reads below.
		 */
		r->cons.cached_head = atomic_load_explicit(&r->prod.head, memory_order_acquire);
		avail = r->cons.cached_head - tail;
		if (avail < n) {
			if (all_or_nothing)
				return 0;
			n = avail;
		}
	}
	if (n == 0)
		return 0;
	sli_ring_get(r, tail, objs, n);
	/*
	 * Release: pairs with the load-acquire of cons.tail in
	 * sli_ring_enqueue(); our slot reads above complete before the
	 * producer may reuse those slots.
	 */
	atomic_store_explicit(&r->cons.tail, tail + n, memory_order_release);
	return n;
}

/**
 * sl_ring_enqueue_bulk() - enqueue all @n pointers or none.
 * Producer side only. Return: @n, or 0 when the ring has fewer than @n
 * free slots.
 */
static inline unsigned sl_ring_enqueue_bulk(struct sl_ring *r, void *const *objs, unsigned n)
{
	return sli_ring_enqueue(r, objs, n, true);
}

/**
 * sl_ring_enqueue_burst() - enqueue as many of @n pointers as fit.
 * Producer side only. Return: the number enqueued, from 0 to @n; they are
 * the first ones of @objs.
 */
static inline unsigned sl_ring_enqueue_burst(struct sl_ring *r, void *const *objs, unsigned n)
{
	return sli_ring_enqueue(r, objs, n, false);
}

/**
 * sl_ring_dequeue_bulk() - dequeue exactly @n pointers or none.
 * Consumer side only. Return: @n, or 0 when fewer than @n are queued.
 */
static inline unsigned sl_ring_dequeue_bulk(struct sl_ring *r, void **objs, unsigned n)
{
	return sli_ring_dequeue(r, objs, n, true);
}

/**
 * sl_ring_dequeue_burst() - dequeue up to @n pointers, oldest first.
 * Consumer side only. Return: the number dequeued, from 0 to @n.
 */
static inline unsigned sl_ring_dequeue_burst(struct sl_ring *r, void **objs, unsigned n)
{
	return sli_ring_dequeue(r, objs, n, false);
}

/** Enqueue one pointer. Return: 0, or -ENOBUFS when the ring is full. */
static inline int sl_ring_enqueue(struct sl_ring *r, void *obj)
{
	return sli_ring_enqueue(r, &obj, 1, true) ? 0 : -ENOBUFS;
}

/** Dequeue one pointer into *@obj. Return: 0, or -ENOENT when empty. */
static inline int sl_ring_dequeue(struct sl_ring *r, void **obj)
{
	return sli_ring_dequeue(r, obj, 1, true) ? 0 : -ENOENT;
}

/**
 * sl_ring_count() - number of queued pointers.
 * Safe from either side; exact from the consumer when the producer is
 * idle, otherwise a snapshot that may already be stale.
 */
static inline uint32_t sl_ring_count(const struct sl_ring *r)
{
	/* Acquire loads: pair with the release stores of the two counters. */
	uint32_t tail = atomic_load_explicit(&r->cons.tail, memory_order_acquire);
	uint32_t head = atomic_load_explicit(&r->prod.head, memory_order_acquire);
	uint32_t n = head - tail;

	/* Read out of order against a moving producer: clamp. */
	return n > r->prod.size ? r->prod.size : n;
}

/** Number of free slots; same caveats as sl_ring_count(). */
static inline uint32_t sl_ring_free_count(const struct sl_ring *r)
{
	return r->prod.size - sl_ring_count(r);
}

#ifdef __cplusplus
}
#endif
#endif /* SL_RING_H */
