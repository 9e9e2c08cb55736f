/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_batch.h — the unit that moves between operators and cores: a batch
 * of fixed-size elements, or an in-band control event.
 *
 * A data batch holds up to `cap` elements of `elem_size` bytes each,
 * stored back to back in `data`, with their event timestamps in the
 * parallel array `ts` and, after key_by, their 64-bit key hashes in `key`.
 * Variable-length bytes (strings) live in the batch's `arena`; elements
 * refer to them with struct sl_str (offset, length) fields, which the
 * engine rewrites whenever it copies an element into another batch, so a
 * string always travels with its element.
 *
 * A control event uses the same struct with n == 0 and kind != DATA, so
 * one ring carries both and their order is preserved (watermarks and
 * barriers stay in band).
 *
 * Ownership: a batch taken from a ring or handed to an operator is owned
 * by exactly one party at a time and is released (returned to a pool) or
 * forwarded exactly once.
 *
 * Borrowed elements (sl_batch_borrow()): a source may point a batch's
 * `data` at records that already sit in its own memory in the element
 * layout instead of copying them in. The batch (header, ts, key, arena)
 * stays the engine's; the elements stay the source's, read-only to the
 * engine: it never writes or frees them. Whatever would change elements
 * in place (a filter that drops some, an in-place map, a batch filter,
 * keyed and stateful operators) or keep them past the chain's
 * synchronous pass (an exchange to another subtask or thread) first
 * copies them into the batch's own storage, `data_own`
 * (sli_batch_unborrow() in the engine). Releasing or clearing a batch
 * points `data` back at `data_own`.
 */
#ifndef SL_BATCH_H
#define SL_BATCH_H

#include <stdint.h>

#include "sl_alloc.h"
#include "sl_common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum sl_event_kind {
	SL_EVENT_DATA = 0,	/**< elements */
	SL_EVENT_WATERMARK = 1, /**< value: the watermark (event-time ms) */
	SL_EVENT_BARRIER = 2,	/**< value: the checkpoint id */
	SL_EVENT_END = 3,	/**< end of input on this channel */
	SL_EVENT_IDLE = 4,	/**< channel idle: ignored in the watermark minimum (sl_time.h) */
	SL_EVENT_ACTIVE = 5,	/**< channel active again, before its next record */
	SL_EVENT_LATENCY = 6,	/**< value: emission time (ns) of a latency marker */
};

/** A reference from an element to bytes in its batch's arena. */
struct sl_str {
	uint32_t off;
	uint32_t len;
};

struct sl_batch_pool;

struct sl_batch {
	uint16_t kind;	    /**< enum sl_event_kind */
	uint16_t flags;	    /**< SL_BATCH_F_* */
	uint32_t n;	    /**< number of elements */
	uint32_t cap;	    /**< element capacity */
	uint32_t elem_size; /**< bytes per element */
	int64_t value;	    /**< control events: watermark, checkpoint id, ... */
	int64_t *ts;	    /**< [cap] event timestamps */
	uint64_t *key;	    /**< [cap] key hashes, valid with SL_BATCH_F_KEYED */
	uint8_t *data;	    /**< [cap * elem_size] elements */
	char *arena;	    /**< variable-length bytes */
	uint32_t arena_used;
	uint32_t arena_cap;
	uint32_t channel; /**< input channel it arrived on (set by the receiver) */
	uint32_t split;	  /**< from a source's poll(): the split of its records (sl_job.h) */
	struct sl_batch_pool *pool;	  /**< where it returns when released; NULL: standalone */
	struct sl_batch *next;		  /**< free-list link, owned by the pool */
	const struct sl_allocator *alloc; /**< for the arena (and the batch, if standalone) */
	uint32_t arena_max;		  /**< the arena never grows past this */
	uint32_t nsplits;  /**< from a source's poll(): its split count, 0: one (sl_job.h) */
	uint8_t *data_own; /**< the batch's own element storage; data unless borrowed */
};

/** key[] holds a key hash for every element. */
#define SL_BATCH_F_KEYED 0x1
/** data points at elements borrowed from a source (sl_batch_borrow()): read-only. */
#define SL_BATCH_F_BORROWED 0x2

/** Element @i of @b. */
static inline void *sl_batch_elem(const struct sl_batch *b, uint32_t i)
{
	return b->data + (size_t)i * b->elem_size;
}

/** Bytes of @s in @b's arena (not NUL-terminated). */
static inline const char *sl_batch_str(const struct sl_batch *b, struct sl_str s)
{
	return b->arena + s.off;
}

/**
 * sl_batch_create() - a standalone data batch (pools make the ones the
 * runtime moves; this is for sources, sinks and tests).
 * @alloc: NULL for sl_alloc_default().
 * @cap: element capacity, 1..65536; @elem_size: 0..65536 bytes.
 * @arena_max: largest the string arena may grow to (bytes).
 * Return: 0; -EINVAL; -ENOMEM.
 */
int sl_batch_create(const struct sl_allocator *alloc, uint32_t cap, uint32_t elem_size,
		    uint32_t arena_max, struct sl_batch **out);

/** sl_batch_destroy() - free a standalone batch; accepts NULL. */
void sl_batch_destroy(struct sl_batch *b);

/** sl_batch_clear() - drop the elements and strings, keep the memory. */
static inline void sl_batch_clear(struct sl_batch *b)
{
	b->n = 0;
	b->arena_used = 0;
	b->flags = 0;
	b->data = b->data_own; /* a borrowing ends here */
}

/**
 * sl_batch_borrow() - make the @n elements at @elems (b->elem_size bytes
 * each, back to back) the elements of the empty batch @b, without copying
 * them; sets b->n = @n and SL_BATCH_F_BORROWED. For a source's poll()
 * whose records already sit in memory in the element layout (a replay
 * buffer, a mapped file of fixed-size records); poll() still fills
 * b->ts[0..n-1] (and the arena, for string fields) and returns at most
 * @n (fewer: only the first ones count).
 *
 * Ownership: the elements stay the caller's and may be read-only memory.
 * The engine never writes or frees them (see the top of this file: what
 * would, copies them first) and is done reading them when it calls the
 * source's poll() or close() again; until then they must stay valid and
 * unchanged.
 * Return: 0; -EINVAL when @b is NULL or not empty, @elems is NULL with
 * @n > 0, or @n > b->cap.
 */
int sl_batch_borrow(struct sl_batch *b, const void *elems, uint32_t n);

/**
 * sl_batch_add_str() - append @len bytes to @b's arena (growing it up to
 * arena_max) and fill *@out with their reference.
 * Return: 0; -E2BIG when the arena would pass arena_max (the caller
 * should emit the batch and retry in an empty one, or report the record
 * as too large when the batch is already empty); -ENOMEM.
 */
int sl_batch_add_str(struct sl_batch *b, const void *bytes, uint32_t len, struct sl_str *out);

#ifdef __cplusplus
}
#endif
#endif /* SL_BATCH_H */
