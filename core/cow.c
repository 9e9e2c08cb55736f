/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cow.c — segmented copy-on-write of flat state arrays for asynchronous
 * snapshots (design and threads: sli_cow.h). Invariants: a segment's
 * state only moves SLI_SEG_LIVE -> SLI_SEG_BUSY -> SLI_SEG_DONE, by the
 * side whose compare and swap won; nobody writes a segment of the task's
 * array below its barrier length before its state is SLI_SEG_DONE; a
 * retired block is freed by whoever comes second of the task's retire
 * and the coordinator's copy of that array.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sli_checkpoint.h"
#include "sli_cow.h"

static char done_mark;
#define RETIRED_DONE ((void *)&done_mark) /* the coordinator has copied the array */

static void block_free(const struct sli_cow_arr *c, void *p)
{
	if (c->alloc != NULL)
		sl_alloc_free(c->alloc, p);
	else
		free(p);
}

/* Copy segment @s of array @a into the image. */
static void seg_copy(struct sli_cow_arr *a, size_t s)
{
	size_t lo = s << a->shift, hi = (s + 1) << a->shift;

	if (hi > a->n)
		hi = a->n;
	if (a->copy_fields != NULL)
		a->copy_fields(a->copy + lo * a->esz, a->src + lo * a->esz, hi - lo);
	else
		memcpy(a->copy + lo * a->esz, a->src + lo * a->esz, (hi - lo) * a->esz);
}

/*
 * Make sure segment @s of @a is copied: copy it if unclaimed, else wait
 * for the copy. Return true when this call copied it.
 */
static bool seg_claim(struct sli_cow_arr *a, size_t s)
{
	_Atomic uint8_t *st = &a->seg[s];
	/*
	 * Acquire: pairs with the release store of SLI_SEG_DONE below, made
	 * by the other side. Seeing SLI_SEG_DONE, the task may write the
	 * segment (the coordinator's reads of it happened before) and the
	 * coordinator may read the copy (the task's copy happened before).
	 */
	uint8_t v = atomic_load_explicit(st, memory_order_acquire);

	if (v == SLI_SEG_LIVE &&
	    atomic_compare_exchange_strong_explicit(st, &v, SLI_SEG_BUSY, memory_order_acquire,
						    memory_order_acquire)) {
		seg_copy(a, s);
		/* Release: pairs with the acquire loads above and below, and in
		 * sli_cow_w_pending(). */
		atomic_store_explicit(st, SLI_SEG_DONE, memory_order_release);
		return true;
	}
	while (v != SLI_SEG_DONE) {
		sched_yield(); /* the other side is copying this segment (SLI_COW_SEG_BYTES) */
		v = atomic_load_explicit(st, memory_order_acquire); /* pairs as above */
	}
	return false;
}

/* The task copied segment @s of array @ai: count its bytes. */
static void count_task_copy(struct sli_cow_task *t, unsigned ai)
{
	const struct sli_cow_arr *c = &t->img->a[ai];

	/* Relaxed: a statistic, read by sl_job_checkpoint_stats(). */
	if (t->cnt != NULL)
		atomic_fetch_add_explicit(&t->cnt->cow_task_bytes, (uint64_t)c->esz << c->shift,
					  memory_order_relaxed);
}

int sli_cow_arr_set(struct sli_cow *c, unsigned ai, const void *src, size_t n, size_t esz,
		    const struct sl_allocator *alloc)
{
	struct sli_cow_arr *a = &c->a[ai];
	struct sli_img_buf b = { a->copy, a->cap };
	/* Relaxed: the image is the task's alone now (no holder, or copied: see sli_cow_arm()). */
	void *r = atomic_load_explicit(&a->retired, memory_order_relaxed);
	uint32_t shift = 0;
	size_t nseg;
	int rc;

	/* A block retired to an image nobody copied (it was dropped). */
	if (r != NULL && r != RETIRED_DONE)
		block_free(a, r);
	atomic_init(&a->retired, NULL);
	a->alloc = alloc;
	while (((size_t)2 << shift) * esz <= SLI_COW_SEG_BYTES)
		shift++;
	rc = sli_img_room(&b, n * esz);
	a->copy = b.p;
	a->cap = b.cap;
	if (rc < 0)
		return rc;
	nseg = (n + ((size_t)1 << shift) - 1) >> shift;
	if (nseg > a->capseg) {
		void *p = realloc((void *)a->seg, nseg + nseg / 4);

		if (p == NULL)
			return -ENOMEM;
		a->seg = p;
		a->capseg = nseg + nseg / 4;
	}
	/* Relaxed: published to the coordinator through the checkpoint's ack (a mutex). */
	for (size_t s = 0; s < nseg; s++)
		atomic_store_explicit(&a->seg[s], SLI_SEG_LIVE, memory_order_relaxed);
	a->nseg = nseg;
	a->src = src;
	a->n = n;
	a->esz = (uint32_t)esz;
	a->shift = shift;
	return 0;
}

void sli_cow_arm(struct sli_cow_task *t, struct sli_cow *c, unsigned narr,
		 const _Atomic uint32_t *refs, struct sli_ckpt_counters *cnt)
{
	/* Relaxed: published to the coordinator through the checkpoint's ack (a mutex). */
	atomic_store_explicit(&c->copied, false, memory_order_relaxed);
	c->refs = refs;
	c->narr = narr;
	t->img = c;
	t->cnt = cnt;
	t->live = 0;
	for (unsigned ai = 0; ai < narr; ai++)
		if (c->a[ai].n > 0)
			t->live |= 1u << ai;
}

__attribute__((noinline)) void sli_cow_touch(struct sli_cow_task *t, unsigned ai, size_t i)
{
	struct sli_cow_arr *c = &t->img->a[ai];

	if ((t->live & 1u << ai) && i < c->n && seg_claim(c, i >> c->shift))
		count_task_copy(t, ai);
}

void sli_cow_retire(struct sli_cow_task *t, unsigned ai, void *old)
{
	struct sli_cow_arr *c = &t->img->a[ai];
	void *prev;

	t->live &= ~(1u << ai);
	/* Relaxed: a statistic, read by sl_job_checkpoint_stats(). */
	if (t->cnt != NULL)
		atomic_fetch_add_explicit(&t->cnt->cow_retired, 1, memory_order_relaxed);
	/*
	 * Acq_rel: the release hands the block to the coordinator, which
	 * frees it after its copy (its exchange in sli_cow_copy_all()); the
	 * acquire, when it has copied the array already, orders its reads of
	 * the block before our free.
	 */
	prev = atomic_exchange_explicit(&c->retired, old, memory_order_acq_rel);
	if (prev == RETIRED_DONE) {
		/* Copied already: nobody else uses retired now; it stays "done". */
		atomic_store_explicit(&c->retired, RETIRED_DONE, memory_order_relaxed);
		block_free(c, old);
	}
}

void *sli_cow_grow(struct sli_cow_task *t, unsigned ai, void *p, size_t old, size_t nbytes)
{
	void *q;

	if (!sli_cow_live(t, ai))
		return realloc(p, nbytes);
	q = malloc(nbytes);
	if (q == NULL)
		return NULL;
	memcpy(q, p, old);
	sli_cow_retire(t, ai, p);
	return q;
}

void sli_cow_poll(struct sli_cow_task *t)
{
	struct sli_cow *c = t->img;

	/*
	 * Acquire: pairs with the coordinator's release store of copied in
	 * sli_cow_copy_all() (its reads of our arrays are over), and with the
	 * release half of the checkpoint's decrement of refs (sli_img_put():
	 * a dropped image is not read).
	 */
	if (c != NULL && (atomic_load_explicit(&c->copied, memory_order_acquire) ||
			  atomic_load_explicit(c->refs, memory_order_acquire) == 1)) {
		t->img = NULL;
		t->live = 0;
	}
}

void sli_cow_finish(struct sli_cow_task *t)
{
	sli_cow_poll(t);
	if (t->img == NULL)
		return;
	for (unsigned ai = 0; ai < t->img->narr; ai++)
		for (size_t s = 0; (t->live & 1u << ai) && s < t->img->a[ai].nseg; s++)
			if (seg_claim(&t->img->a[ai], s))
				count_task_copy(t, ai);
	t->img = NULL;
	t->live = 0;
}

void sli_cow_copy_all(struct sli_cow *c)
{
	for (unsigned ai = 0; ai < c->narr; ai++) {
		struct sli_cow_arr *a = &c->a[ai];
		void *r;

		for (size_t s = 0; s < a->nseg; s++)
			seg_claim(a, s);
		/* Acq_rel: pairs with the exchange in sli_cow_retire() (see there). */
		r = atomic_exchange_explicit(&a->retired, RETIRED_DONE, memory_order_acq_rel);
		if (r != NULL)
			block_free(a, r);
	}
	/* Release: pairs with the acquire load of copied in sli_cow_poll(). */
	atomic_store_explicit(&c->copied, true, memory_order_release);
}

void sli_cow_fini(struct sli_cow *c)
{
	for (unsigned ai = 0; ai < SLI_COW_MAX; ai++) {
		struct sli_cow_arr *a = &c->a[ai];
		/* Relaxed: the last holder frees (after sli_img_put()'s acq_rel decrement). */
		void *r = atomic_load_explicit(&a->retired, memory_order_relaxed);

		if (r != NULL && r != RETIRED_DONE)
			block_free(a, r);
		free(a->copy);
		free((void *)a->seg);
	}
}

void sli_cow_test_delay(void)
{
	const char *s = getenv("SLUICE_TEST_SNAPSHOT_DELAY_MS");
	long ms = s != NULL ? strtol(s, NULL, 10) : 0;

	if (ms > 0 && ms < 10000)
		nanosleep(&(struct timespec){ ms / 1000, (ms % 1000) * 1000000 }, NULL);
}
