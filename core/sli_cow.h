/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_cow.h — segmented copy-on-write of flat state arrays for
 * asynchronous snapshots (cow.c), used by the aggregate windows
 * (window.c) and the keyed reduce (ops.c).
 *
 * At the barrier the task only records what the image reads: up to
 * SLI_COW_MAX arrays, each with its length then, cut into segments of
 * about SLI_COW_SEG_BYTES (sli_cow_arr_set(), then sli_cow_arm()): the
 * pause is O(segments), the copy buffers are allocated but not touched.
 * Each segment is copied into the image exactly once, by whichever side
 * claims it first (SLI_SEG_LIVE -> SLI_SEG_BUSY by compare and swap,
 * SLI_SEG_DONE once copied):
 *   - the checkpoint coordinator, before it serialises the image
 *     (sli_cow_copy_all());
 *   - the task, before its first write into an element of a segment that
 *     may still be live (sli_cow_w()): it copies the segment, then writes.
 * A side that finds a segment SLI_SEG_BUSY waits for SLI_SEG_DONE (one
 * segment's copy). An array the task grows while the image is pending is
 * not realloc()ed: the task moves to a new block and retires the old one
 * to the image, which frees it once copied (sli_cow_grow(),
 * sli_cow_retire()); the old block no longer changes. Elements appended
 * past an array's length at the barrier need no guard: the image never
 * reads them. Nor do the fields of an element that the image does not
 * read when its array copies only the others (copy_fields: e.g. the
 * window's list links and timer marks): the task writes those freely.
 *
 * The task stops guarding when the coordinator has copied everything or
 * dropped the image (sli_cow_poll()); at the next barrier, or the
 * operator's end, it copies what is left itself (sli_cow_finish()).
 *
 * Threads: struct sli_cow_task and the arrays are the task's; struct
 * sli_cow lives in the image, shared by the task and one coordinator
 * thread through the segment states, retired and copied.
 */
#ifndef SLI_COW_H
#define SLI_COW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sluice/sl_alloc.h>

struct sli_ckpt_counters;

#define SLI_COW_MAX	  6
#define SLI_COW_SEG_BYTES 16384

enum { SLI_SEG_LIVE, SLI_SEG_BUSY, SLI_SEG_DONE };

/* One array of an image. */
struct sli_cow_arr {
	const uint8_t *src;   /* the task's array at the barrier (or the block retired since) */
	uint8_t *copy;	      /* the image's copy */
	size_t n;	      /* elements at the barrier */
	size_t cap;	      /* bytes allocated at copy */
	uint32_t esz;	      /* bytes per element */
	uint32_t shift;	      /* 1 << shift elements per segment */
	_Atomic uint8_t *seg; /* per segment: SLI_SEG_* */
	size_t nseg, capseg;
	/* src once the task moved to a new block (freed after the copy), or the "done" mark */
	_Atomic(void *) retired;
	const struct sl_allocator *alloc; /* what frees a retired block (NULL: free()) */
	/*
	 * Copies @n elements from @src to @dst, only the fields the image
	 * reads, when the task writes others unguarded (NULL: memcpy()). Set
	 * by the image's owner after sli_cow_arr_set(); both sides copy with it.
	 */
	void (*copy_fields)(void *dst, const void *src, size_t n);
};

/* The shared part, inside an image. Zeroed memory is an empty one. */
struct sli_cow {
	_Atomic bool copied;	      /* every segment SLI_SEG_DONE: the task stops guarding */
	const _Atomic uint32_t *refs; /* the image's holders: 1, only the task's (dropped) */
	unsigned narr;
	struct sli_cow_arr a[SLI_COW_MAX];
};

/* The task's side, in the operator. Zeroed: no image pending. */
struct sli_cow_task {
	struct sli_cow *img;	       /* the image whose segments may still be live, or NULL */
	uint32_t live;		       /* its arrays still guarded (1 << index) */
	struct sli_ckpt_counters *cnt; /* the job's (relaxed), or NULL */
};

/*
 * The task, at the barrier: set array @ai of @c to @n elements of @esz
 * bytes at @src (a block from @alloc, NULL: malloc()). Allocates the copy
 * (sli_img_room(): its fault hook included) without touching it, and
 * frees a block retired to an image that was dropped uncopied.
 * 0 or -ENOMEM (@c is then not armed; sli_cow_fini() still frees it).
 */
int sli_cow_arr_set(struct sli_cow *c, unsigned ai, const void *src, size_t n, size_t esz,
		    const struct sl_allocator *alloc);

/*
 * The task, after sli_cow_arr_set() of arrays 0..@narr-1: guard them
 * while @c is pending. @refs counts the image's holders (the task keeps
 * one); @cnt, if not NULL, counts the bytes the task copies and the
 * arrays it moves. sli_cow_finish() must have run for the previous image.
 */
void sli_cow_arm(struct sli_cow_task *t, struct sli_cow *c, unsigned narr,
		 const _Atomic uint32_t *refs, struct sli_ckpt_counters *cnt);

void sli_cow_touch(struct sli_cow_task *t, unsigned ai, size_t i);

/*
 * sli_cow_w() once the caller knows that an image is pending (t->img not
 * NULL), for loops that test that once per batch. Acquire, on
 * SLI_SEG_DONE: pairs with the release store of SLI_SEG_DONE in cow.c's
 * seg_claim() by the coordinator, whose reads of the segment happen
 * before our write.
 */
static inline void sli_cow_w_pending(struct sli_cow_task *t, unsigned ai, size_t i)
{
	const struct sli_cow_arr *c = &t->img->a[ai];

	if ((t->live & 1u << ai) && i < c->n &&
	    atomic_load_explicit(&c->seg[i >> c->shift], memory_order_acquire) != SLI_SEG_DONE)
		sli_cow_touch(t, ai, i);
}

/*
 * The task, before writing element @i of array @ai: copy its segment
 * first if an image may still read it. Inline: cheap when nothing is
 * pending or the segment is copied (sli_cow_w_pending(): its acquire load
 * pairs with the coordinator's release store of SLI_SEG_DONE).
 */
static inline void sli_cow_w(struct sli_cow_task *t, unsigned ai, size_t i)
{
	if (__builtin_expect(t->img != NULL, 0))
		sli_cow_w_pending(t, ai, i);
}

/* Whether array @ai's block must be kept for a pending image (grow it with sli_cow_grow()). */
static inline bool sli_cow_live(const struct sli_cow_task *t, unsigned ai)
{
	return t->img != NULL && (t->live & 1u << ai);
}

/*
 * The task: hand block @old of array @ai to the pending image, which
 * frees it once copied, and stop guarding the array (the task moved to a
 * block of its own). Only when sli_cow_live().
 */
void sli_cow_retire(struct sli_cow_task *t, unsigned ai, void *old);

/*
 * The task: grow malloc()ed array @ai (block @p, @old bytes used) to
 * @nbytes, like realloc(); while a pending image may read @p, into a new
 * block, retiring @p. NULL (with @p untouched and still the task's): out
 * of memory.
 */
void *sli_cow_grow(struct sli_cow_task *t, unsigned ai, void *p, size_t old, size_t nbytes);

/* The task: stop guarding if the coordinator copied the image or dropped it. */
void sli_cow_poll(struct sli_cow_task *t);

/* The task: copy every segment the coordinator has not, then stop guarding. */
void sli_cow_finish(struct sli_cow_task *t);

/*
 * The coordinator: copy every segment the task has not and free the
 * retired blocks; then the copies hold the arrays as they were at the
 * barrier. Once per arming.
 */
void sli_cow_copy_all(struct sli_cow *c);

/* Free what @c holds (copies, segment states, retired blocks); not @c. */
void sli_cow_fini(struct sli_cow *c);

/*
 * Tests only: SLUICE_TEST_SNAPSHOT_DELAY_MS=N (0 < N < 10000) makes the
 * coordinator wait N ms before sli_cow_copy_all(), so that the task
 * writes into and grows the arrays meanwhile.
 */
void sli_cow_test_delay(void);

#endif
