/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cow.c — segmented copy-on-write of state arrays (core/cow.c, the
 * windows' and the keyed reduce's snapshot images) with a real
 * coordinator thread.
 *
 * The main thread plays the task: it owns three arrays (8-byte words,
 * 24-byte records, an append-only byte arena from an sl_allocator) and
 * keeps a plain reference copy of each that receives the same writes
 * without any copy-on-write. At each barrier it freezes the arrays into an
 * image (sli_img_reuse(), sli_cow_arr_set(), sli_cow_arm()), records the
 * reference as it is then, and hands the image to the coordinator thread
 * (a mutex, as the checkpoint's ack), then goes on writing at once:
 * rewrites of elements below the barrier length (guarded by sli_cow_w()),
 * appends, and growth of every array (sli_cow_grow(), sli_cow_retire())
 * while the image is pending. The coordinator waits 0 to 3 ms, copies
 * (sli_cow_copy_all()) and compares the image's copies with the
 * reference recorded at the barrier; every eighth image it drops unread
 * instead, and every fifth it waits 15 ms. Rounds alternate rewrites of
 * any element, of the newest ones only (most segments are left to the
 * coordinator), and short rounds of those: the next barrier finds the
 * image copied, still being copied, or not copied at all (then the task
 * copies the rest: sli_cow_finish()). The
 * paths are counted: the task must have copied segments and moved arrays.
 * The records' image holds two of their three fields (copy_fields, as the
 * window's entries): the task writes the third without a guard, and the
 * hook marks it in the copy, so that a copy made without the hook, by
 * either side, fails the comparison (and races, under TSan).
 * Multi-threaded: also runs under ThreadSanitizer (stress suite).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sl_test.h"
#include "sli_checkpoint.h"
#include "sli_cow.h"

#define ROUNDS 150
#define OPS    12000
#define STEP   4096 /* elements (bytes for the arena) an array grows by */

enum { W, R, B, NARR };

struct rec {
	uint64_t a, b, c; /* c: not in the image (rec_fields()) */
};

#define NOT_COPIED 0x5eedf00dULL /* what rec_fields() puts in the copy's c */

/* The task's arrays, or the reference's (same shapes). */
struct arrays {
	uint64_t *w;
	struct rec *r;
	char *b;
	size_t nw, nr, nb, capw, capr, capb;
};

struct image {
	struct sli_img h;
	struct sli_cow cow;
	void *want[NARR]; /* the reference at the barrier */
	size_t wantn[NARR], esz[NARR];
	bool drop; /* the coordinator drops it unread */
	bool slow; /* the coordinator waits long: the next barrier may come first */
};

static struct arrays task, ref;
static struct sli_cow_task ct;
static struct sli_ckpt_counters cnt;
static struct sli_img *frozen;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct image *handed; /* waiting for the coordinator */
static bool stop;
static unsigned long mismatches, checked, dropped;

static void image_destroy(struct sli_img *m)
{
	struct image *f = (struct image *)m;

	sli_cow_fini(&f->cow);
	for (unsigned a = 0; a < NARR; a++)
		free(f->want[a]);
	free(f);
}

/* The records' copy_fields: a and b, c marked. */
static void rec_fields(void *dst, const void *src, size_t n)
{
	const struct rec *x = src;
	struct rec *y = dst;

	for (size_t i = 0; i < n; i++)
		y[i] = (struct rec){ x[i].a, x[i].b, NOT_COPIED };
}

/* Whether array @a's copy in @f holds the reference recorded at the barrier. */
static bool copy_ok(const struct image *f, unsigned a)
{
	const struct rec *x = f->want[a], *y = (const struct rec *)f->cow.a[a].copy;
	size_t n = f->wantn[a];

	if (f->cow.a[a].n != n)
		return false;
	if (a != R)
		return n == 0 || memcmp(f->cow.a[a].copy, f->want[a], n * f->esz[a]) == 0;
	for (size_t i = 0; i < n; i++)
		if (y[i].a != x[i].a || y[i].b != x[i].b || y[i].c != NOT_COPIED)
			return false;
	return true;
}

static void sleep_us(long us)
{
	nanosleep(&(struct timespec){ 0, us * 1000 }, NULL);
}

static void *coordinator(void *arg)
{
	unsigned seed = 7;

	(void)arg;
	for (;;) {
		struct image *f;

		pthread_mutex_lock(&mu);
		while (handed == NULL && !stop)
			pthread_cond_wait(&cv, &mu);
		f = handed;
		handed = NULL;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
		if (f == NULL)
			return NULL;
		sleep_us(f->slow ? 15000 : rand_r(&seed) % 3000);
		if (f->drop) {
			dropped++;
		} else {
			sli_cow_copy_all(&f->cow);
			for (unsigned a = 0; a < NARR; a++) {
				checked++;
				if (!copy_ok(f, a))
					mismatches++;
			}
		}
		sli_img_put(f);
	}
}

/* Make room for @more elements of array @a (task and reference). */
static void grow(unsigned a, size_t more)
{
	size_t *n = a == W ? &task.nw : a == R ? &task.nr : &task.nb;
	size_t *cap = a == W ? &task.capw : a == R ? &task.capr : &task.capb;
	size_t esz = a == W ? sizeof(*task.w) : a == R ? sizeof(*task.r) : 1;
	void **p = a == W ? (void **)&task.w : a == R ? (void **)&task.r : (void **)&task.b;
	void **q = a == W ? (void **)&ref.w : a == R ? (void **)&ref.r : (void **)&ref.b;

	if (*n + more <= *cap)
		return;
	if (a == B) {
		/* The arena's allocator: moved by hand, as ops.c's arena_reserve() does. */
		char *nb = sl_alloc_aligned(NULL, *cap + STEP, 16);

		CU_ASSERT_FATAL(nb != NULL);
		if (*n > 0)
			memcpy(nb, *p, *n);
		if (sli_cow_live(&ct, B))
			sli_cow_retire(&ct, B, *p);
		else
			sl_alloc_free(NULL, *p);
		*p = nb;
	} else {
		*p = sli_cow_grow(&ct, a, *p, *n * esz, (*cap + STEP) * esz);
		CU_ASSERT_FATAL(*p != NULL);
	}
	*q = realloc(*q, (*cap + STEP) * esz);
	CU_ASSERT_FATAL(*q != NULL);
	*cap += STEP;
}

/*
 * An element of an array of @n to rewrite: any (@wide), else one of the
 * 256 newest, so that most segments stay for the coordinator to copy.
 */
static size_t pick(unsigned *seed, size_t n, bool wide)
{
	return wide ? rand_r(seed) % n : n - 1 - rand_r(seed) % (n < 256 ? n : 256);
}

/* One write of the task, mirrored in the reference. */
static void step(unsigned *seed, uint64_t x, bool wide)
{
	unsigned k = rand_r(seed) % 100;

	if (k < 45 && task.nw > 0) {
		size_t i = pick(seed, task.nw, wide);

		sli_cow_w(&ct, W, i);
		task.w[i] = task.w[i] * 31 + x;
		ref.w[i] = ref.w[i] * 31 + x;
	} else if (k < 80 && task.nr > 0) {
		size_t i = pick(seed, task.nr, wide), j = rand_r(seed) % task.nr;

		task.r[j].c += x; /* not in the image: no guard */
		ref.r[j].c += x;
		sli_cow_w(&ct, R, i);
		task.r[i].b += x;
		task.r[i].a ^= x << 7;
		ref.r[i].b += x;
		ref.r[i].a ^= x << 7;
	} else if (k < 88) {
		grow(W, 1);
		task.w[task.nw] = ref.w[task.nw] = x; /* past every image: no guard */
		task.nw++;
	} else if (k < 96) {
		grow(R, 1);
		task.r[task.nr] = ref.r[task.nr] = (struct rec){ x, ~x, x * 3 };
		task.nr++;
	} else {
		size_t len = 1 + x % 37;

		grow(B, len);
		for (size_t j = 0; j < len; j++)
			task.b[task.nb + j] = ref.b[task.nb + j] = (char)(x + j);
		task.nb += len;
	}
	ref.nw = task.nw, ref.nr = task.nr, ref.nb = task.nb;
}

static void *dup_of(const void *p, size_t n)
{
	void *q = malloc(n ? n : 1);

	CU_ASSERT_FATAL(q != NULL);
	if (n > 0)
		memcpy(q, p, n);
	return q;
}

/* The barrier: freeze the task's arrays into an image and hand it over. */
static void barrier(unsigned round)
{
	struct image *f;

	sli_cow_finish(&ct);
	f = sli_img_reuse(&frozen, sizeof(*f), image_destroy);
	CU_ASSERT_FATAL(f != NULL);
	CU_ASSERT_FATAL(sli_cow_arr_set(&f->cow, W, task.w, task.nw, sizeof(*task.w), NULL) == 0);
	CU_ASSERT_FATAL(sli_cow_arr_set(&f->cow, R, task.r, task.nr, sizeof(*task.r), NULL) == 0);
	CU_ASSERT_FATAL(sli_cow_arr_set(&f->cow, B, task.b, task.nb, 1, sl_alloc_default()) == 0);
	f->cow.a[R].copy_fields = rec_fields;
	for (unsigned a = 0; a < NARR; a++)
		free(f->want[a]);
	f->want[W] = dup_of(ref.w, ref.nw * sizeof(*ref.w));
	f->want[R] = dup_of(ref.r, ref.nr * sizeof(*ref.r));
	f->want[B] = dup_of(ref.b, ref.nb);
	f->wantn[W] = ref.nw, f->wantn[R] = ref.nr, f->wantn[B] = ref.nb;
	f->esz[W] = sizeof(*ref.w), f->esz[R] = sizeof(*ref.r), f->esz[B] = 1;
	f->drop = round % 8 == 7;
	f->slow = round % 5 == 4;
	sli_cow_arm(&ct, &f->cow, NARR, &f->h.refs, &cnt);
	sli_img_hand(&f->h);
	pthread_mutex_lock(&mu);
	while (handed != NULL) /* the coordinator takes one image at a time */
		pthread_cond_wait(&cv, &mu);
	handed = f;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

static void test_writes_while_pending(void)
{
	unsigned seed = (unsigned)time(NULL);
	pthread_t th;

	printf("\n  seed %u ", seed);
	memset(&task, 0, sizeof(task));
	memset(&ref, 0, sizeof(ref));
	/* sl_alloc_default() is the arena's: its blocks are freed through it. */
	task.b = sl_alloc_aligned(NULL, STEP, 16);
	ref.b = malloc(STEP);
	task.capb = STEP;
	CU_ASSERT_FATAL(task.b != NULL && ref.b != NULL);
	CU_ASSERT_FATAL(pthread_create(&th, NULL, coordinator, NULL) == 0);
	for (unsigned r = 0; r < ROUNDS; r++) {
		/* Rounds of wide rewrites, of the newest elements, and short ones of those. */
		unsigned ops = r % 3 == 2 ? OPS / 50 : OPS;

		barrier(r);
		for (unsigned i = 0; i < ops; i++) {
			step(&seed, (uint64_t)r << 32 | i, r % 3 == 0);
			if (i % 512 == 0)
				sli_cow_poll(&ct);
		}
	}
	pthread_mutex_lock(&mu);
	while (handed != NULL)
		pthread_cond_wait(&cv, &mu);
	stop = true;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	sli_cow_finish(&ct);
	CU_ASSERT(pthread_join(th, NULL) == 0);
	printf("%lu arrays compared, %lu images dropped, %llu B copied by the task, %llu arrays "
	       "moved ",
	       checked, dropped, (unsigned long long)cnt.cow_task_bytes,
	       (unsigned long long)cnt.cow_retired);
	CU_ASSERT(mismatches == 0);
	CU_ASSERT(checked == NARR * (ROUNDS - ROUNDS / 8));
	CU_ASSERT(dropped == ROUNDS / 8);
	/* The paths under test ran: the task copied segments and moved arrays while pending. */
	CU_ASSERT(cnt.cow_task_bytes > 0);
	CU_ASSERT(cnt.cow_retired > 0);
	sli_img_put(frozen);
	free(task.w);
	free(task.r);
	sl_alloc_free(NULL, task.b);
	free(ref.w);
	free(ref.r);
	free(ref.b);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "writes, appends and growth while images are pending, against a plain copy",
		  test_writes_while_pending },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("cow", tests);
}
