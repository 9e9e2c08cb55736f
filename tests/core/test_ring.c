/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ring.c — single-thread semantics of the SPSC ring: argument
 * checks, empty, full, FIFO order across slot and counter wrap-around,
 * bulk all-or-nothing, burst partial, allocator ownership. Plus the small
 * core helpers the ring relies on (aligned allocation, error strings).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_error.h>
#include <sluice/sl_ring.h>

#include "sl_test.h"

/* Distinct fake pointers: value i encodes item i (never NULL). */
#define ITEM(i)	 ((void *)(uintptr_t)((i) + 1))
#define INDEX(p) ((uintptr_t)(p)-1)

static void test_memsize_rejects_bad_sizes(void)
{
	static const uint32_t bad[] = { 0, 1, 3, 6, 1000, (UINT32_C(1) << 31) + 1, UINT32_MAX };

	for (size_t i = 0; i < SL_ARRAY_SIZE(bad); i++)
		CU_ASSERT_EQUAL(sl_ring_memsize(bad[i]), -EINVAL);
	CU_ASSERT_EQUAL(sl_ring_memsize(2), (long)(sizeof(struct sl_ring) + 2 * sizeof(void *)));
	CU_ASSERT_EQUAL(sl_ring_memsize(1024),
			(long)(sizeof(struct sl_ring) + 1024 * sizeof(void *)));
	CU_ASSERT(sl_ring_memsize(SL_RING_MAX_SIZE) > 0);
}

static void test_create_rejects_bad_arguments(void)
{
	struct sl_ring *r = (struct sl_ring *)(uintptr_t)0x1;

	CU_ASSERT_EQUAL(sl_ring_create(8, "x", NULL, NULL), -EINVAL);
	CU_ASSERT_EQUAL(sl_ring_create(7, "x", NULL, &r), -EINVAL);
	CU_ASSERT_EQUAL(sl_ring_create(0, "x", NULL, &r), -EINVAL);
	CU_ASSERT_PTR_EQUAL(r, (struct sl_ring *)(uintptr_t)0x1); /* untouched on failure */
}

static void test_init_rejects_bad_memory(void)
{
	long bytes = sl_ring_memsize(16);
	char *mem = aligned_alloc(SL_RING_ALIGN, (size_t)bytes + SL_RING_ALIGN);

	CU_ASSERT_FATAL(mem != NULL);
	CU_ASSERT_EQUAL(sl_ring_init(NULL, 16, "x"), -EINVAL);
	CU_ASSERT_EQUAL(sl_ring_init((struct sl_ring *)(mem + 8), 16, "x"), -EINVAL);
	CU_ASSERT_EQUAL(sl_ring_init((struct sl_ring *)mem, 12, "x"), -EINVAL);
	CU_ASSERT_EQUAL(sl_ring_init((struct sl_ring *)mem, 16, "caller"), 0);
	CU_ASSERT_EQUAL(sl_ring_size((struct sl_ring *)mem), 16);
	/* Caller memory: destroy must not free it (free() below would double-free). */
	sl_ring_destroy((struct sl_ring *)mem);
	free(mem);
	sl_ring_destroy(NULL);
}

static void test_name_is_truncated(void)
{
	struct sl_ring *r;
	char longname[100];

	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CU_ASSERT_FATAL(sl_ring_create(4, longname, NULL, &r) == 0);
	CU_ASSERT_EQUAL(strlen(sl_ring_name(r)), 31);
	sl_ring_destroy(r);
	CU_ASSERT_FATAL(sl_ring_create(4, NULL, NULL, &r) == 0);
	CU_ASSERT_STRING_EQUAL(sl_ring_name(r), "");
	sl_ring_destroy(r);
}

static void test_empty(void)
{
	struct sl_ring *r;
	void *objs[4];
	void *one = NULL;

	CU_ASSERT_FATAL(sl_ring_create(4, "empty", NULL, &r) == 0);
	CU_ASSERT_EQUAL(sl_ring_count(r), 0);
	CU_ASSERT_EQUAL(sl_ring_free_count(r), 4);
	CU_ASSERT_EQUAL(sl_ring_dequeue(r, &one), -ENOENT);
	CU_ASSERT_PTR_NULL(one);
	CU_ASSERT_EQUAL(sl_ring_dequeue_burst(r, objs, 4), 0);
	CU_ASSERT_EQUAL(sl_ring_dequeue_bulk(r, objs, 1), 0);
	/* Zero-length operations are no-ops on an empty ring too. */
	CU_ASSERT_EQUAL(sl_ring_dequeue_burst(r, objs, 0), 0);
	CU_ASSERT_EQUAL(sl_ring_enqueue_burst(r, objs, 0), 0);
	CU_ASSERT_EQUAL(sl_ring_count(r), 0);
	sl_ring_destroy(r);
}

static void test_full_uses_every_slot(void)
{
	struct sl_ring *r;
	void *out = NULL;

	CU_ASSERT_FATAL(sl_ring_create(8, "full", NULL, &r) == 0);
	for (unsigned i = 0; i < 8; i++)
		CU_ASSERT_EQUAL(sl_ring_enqueue(r, ITEM(i)), 0);
	CU_ASSERT_EQUAL(sl_ring_count(r), 8);
	CU_ASSERT_EQUAL(sl_ring_free_count(r), 0);
	CU_ASSERT_EQUAL(sl_ring_enqueue(r, ITEM(99)), -ENOBUFS);
	CU_ASSERT_EQUAL(sl_ring_enqueue_burst(r, (void *[]){ ITEM(99) }, 1), 0);
	/* Taking one makes room for exactly one. */
	CU_ASSERT_EQUAL(sl_ring_dequeue(r, &out), 0);
	CU_ASSERT_PTR_EQUAL(out, ITEM(0));
	CU_ASSERT_EQUAL(sl_ring_enqueue(r, ITEM(8)), 0);
	CU_ASSERT_EQUAL(sl_ring_enqueue(r, ITEM(9)), -ENOBUFS);
	for (unsigned i = 1; i <= 8; i++) {
		CU_ASSERT_EQUAL(sl_ring_dequeue(r, &out), 0);
		CU_ASSERT_PTR_EQUAL(out, ITEM(i));
	}
	CU_ASSERT_EQUAL(sl_ring_dequeue(r, &out), -ENOENT);
	sl_ring_destroy(r);
}

/* Mixed burst sizes over many laps of a small ring: strict FIFO. */
static void test_fifo_across_slot_wraparound(void)
{
	struct sl_ring *r;
	void *in[5], *out[5];
	uintptr_t next_in = 0, next_out = 0;

	CU_ASSERT_FATAL(sl_ring_create(8, "wrap", NULL, &r) == 0);
	for (unsigned lap = 0; lap < 1000; lap++) {
		unsigned n_in = 1 + lap % 5, n_out = 1 + (lap * 7) % 5;

		for (unsigned i = 0; i < n_in; i++)
			in[i] = ITEM(next_in + i);
		next_in += sl_ring_enqueue_burst(r, in, n_in);
		unsigned got = sl_ring_dequeue_burst(r, out, n_out);
		for (unsigned i = 0; i < got; i++)
			CU_ASSERT_EQUAL(INDEX(out[i]), next_out + i);
		next_out += got;
		CU_ASSERT_EQUAL(sl_ring_count(r), next_in - next_out);
	}
	CU_ASSERT(next_out > 1000); /* the loop really moved data */
	sl_ring_destroy(r);
}

/* Start the free-running counters just below 2^32 and cross over. */
static void test_fifo_across_counter_wraparound(void)
{
	struct sl_ring *r;
	void *out[8];
	uint32_t start = UINT32_MAX - 5;

	CU_ASSERT_FATAL(sl_ring_create(8, "ctr", NULL, &r) == 0);
	atomic_store(&r->prod.head, start);
	atomic_store(&r->cons.tail, start);
	r->prod.cached_tail = start;
	r->cons.cached_head = start;

	uintptr_t next_in = 0, next_out = 0;
	for (unsigned round = 0; round < 6; round++) {
		void *in[6];

		for (unsigned i = 0; i < 6; i++)
			in[i] = ITEM(next_in + i);
		CU_ASSERT_EQUAL(sl_ring_enqueue_bulk(r, in, 6), 6);
		next_in += 6;
		CU_ASSERT_EQUAL(sl_ring_count(r), 6);
		CU_ASSERT_EQUAL(sl_ring_enqueue_bulk(r, in, 3), 0); /* 2 free, 3 asked */
		CU_ASSERT_EQUAL(sl_ring_dequeue_bulk(r, out, 6), 6);
		for (unsigned i = 0; i < 6; i++)
			CU_ASSERT_EQUAL(INDEX(out[i]), next_out + i);
		next_out += 6;
	}
	/* The counters did cross 2^32. */
	CU_ASSERT(atomic_load(&r->prod.head) < start);
	CU_ASSERT_EQUAL(sl_ring_count(r), 0);
	sl_ring_destroy(r);
}

static void test_bulk_is_all_or_nothing(void)
{
	struct sl_ring *r;
	void *in[9], *out[9];

	for (unsigned i = 0; i < 9; i++)
		in[i] = ITEM(i);
	CU_ASSERT_FATAL(sl_ring_create(8, "bulk", NULL, &r) == 0);
	CU_ASSERT_EQUAL(sl_ring_enqueue_bulk(r, in, 9), 0); /* more than the ring holds */
	CU_ASSERT_EQUAL(sl_ring_count(r), 0);
	CU_ASSERT_EQUAL(sl_ring_enqueue_bulk(r, in, 6), 6);
	CU_ASSERT_EQUAL(sl_ring_enqueue_bulk(r, in + 6, 3), 0); /* 2 free: nothing taken */
	CU_ASSERT_EQUAL(sl_ring_count(r), 6);
	CU_ASSERT_EQUAL(sl_ring_enqueue_bulk(r, in + 6, 2), 2);
	CU_ASSERT_EQUAL(sl_ring_count(r), 8);
	CU_ASSERT_EQUAL(sl_ring_dequeue_bulk(r, out, 9), 0); /* 8 queued: nothing taken */
	CU_ASSERT_EQUAL(sl_ring_count(r), 8);
	CU_ASSERT_EQUAL(sl_ring_dequeue_bulk(r, out, 8), 8);
	for (unsigned i = 0; i < 8; i++)
		CU_ASSERT_PTR_EQUAL(out[i], ITEM(i));
	sl_ring_destroy(r);
}

static void test_burst_is_partial(void)
{
	struct sl_ring *r;
	void *in[16], *out[16];

	for (unsigned i = 0; i < 16; i++)
		in[i] = ITEM(i);
	CU_ASSERT_FATAL(sl_ring_create(8, "burst", NULL, &r) == 0);
	CU_ASSERT_EQUAL(sl_ring_enqueue_burst(r, in, 6), 6);
	/* Five offered, two fit: the first two of the array are taken. */
	CU_ASSERT_EQUAL(sl_ring_enqueue_burst(r, in + 6, 5), 2);
	CU_ASSERT_EQUAL(sl_ring_enqueue_burst(r, in + 8, 5), 0);
	CU_ASSERT_EQUAL(sl_ring_dequeue_burst(r, out, 3), 3);
	CU_ASSERT_EQUAL(sl_ring_dequeue_burst(r, out + 3, 16), 5);
	for (unsigned i = 0; i < 8; i++)
		CU_ASSERT_PTR_EQUAL(out[i], ITEM(i));
	CU_ASSERT_EQUAL(sl_ring_dequeue_burst(r, out, 16), 0);
	sl_ring_destroy(r);
}

/* Data and control events interleaved keep their relative order. */
struct fake_event {
	int kind; /* 0 data batch, 1 watermark, 2 barrier */
	int seq;
};

static void test_control_events_stay_in_band(void)
{
	struct fake_event ev[64];
	struct sl_ring *r;
	void *out[64];

	CU_ASSERT_FATAL(sl_ring_create(16, "events", NULL, &r) == 0);
	unsigned sent = 0, taken = 0;
	for (int i = 0; i < 64; i++)
		ev[i] = (struct fake_event){ .kind = (i % 5 == 4) ? 1 + (i % 2) : 0, .seq = i };
	while (taken < 64) {
		void *p[3];
		unsigned n = 0;

		while (n < 3 && sent + n < 64) {
			p[n] = &ev[sent + n];
			n++;
		}
		sent += sl_ring_enqueue_burst(r, p, n);
		taken += sl_ring_dequeue_burst(r, out + taken, 2);
	}
	for (int i = 0; i < 64; i++) {
		const struct fake_event *e = out[i];

		CU_ASSERT_EQUAL(e->seq, i);
		CU_ASSERT_EQUAL(e->kind, ev[i].kind);
	}
	sl_ring_destroy(r);
}

/* An allocator that counts, to check the ring frees through its own. */
static int live_blocks;

static void *counting_alloc(void *ctx, size_t size, size_t align)
{
	(void)ctx;
	live_blocks++;
	return aligned_alloc(align, size);
}

static void counting_free(void *ctx, void *p)
{
	(void)ctx;
	live_blocks--;
	free(p);
}

static void test_ring_uses_its_allocator(void)
{
	const struct sl_allocator a = { counting_alloc, counting_free, NULL, "counting" };
	struct sl_ring *r;

	live_blocks = 0;
	CU_ASSERT_FATAL(sl_ring_create(1024, "alloc", &a, &r) == 0);
	CU_ASSERT_EQUAL(live_blocks, 1);
	CU_ASSERT_EQUAL((uintptr_t)r % SL_RING_ALIGN, 0);
	sl_ring_destroy(r);
	CU_ASSERT_EQUAL(live_blocks, 0);
}

static void test_alloc_aligned(void)
{
	CU_ASSERT_PTR_NULL(sl_alloc_aligned(NULL, 64, 3));
	CU_ASSERT_PTR_NULL(sl_alloc_aligned(NULL, 64, 2)); /* below sizeof(void *) */
	CU_ASSERT_PTR_NULL(sl_alloc_aligned(NULL, SIZE_MAX - 10, 64));
	for (size_t align = 8; align <= 4096; align *= 2) {
		char *p = sl_alloc_aligned(NULL, 100, align);

		CU_ASSERT_FATAL(p != NULL);
		CU_ASSERT_EQUAL((uintptr_t)p % align, 0);
		memset(p, 0xab, 100);
		sl_alloc_free(NULL, p);
	}
	sl_alloc_free(NULL, NULL);
	CU_ASSERT_STRING_EQUAL(sl_alloc_default()->name, "malloc");
}

static void test_errors(void)
{
	char buf[16];

	CU_ASSERT_STRING_EQUAL(sl_strerror(-EINVAL), "Invalid argument");
	CU_ASSERT_STRING_EQUAL(sl_strerror(EINVAL), "Invalid argument");
	CU_ASSERT_STRING_EQUAL(sl_strerror(0), "success");
	CU_ASSERT_STRING_EQUAL(sl_strerror(-123456), "unknown error");
	CU_ASSERT_EQUAL(sl_errbuf_set(buf, sizeof(buf), -ERANGE, "value %d too big", 123456789),
			-ERANGE);
	CU_ASSERT_STRING_EQUAL(buf, "value 123456789"); /* truncated, terminated */
	CU_ASSERT_EQUAL(sl_errbuf_set(NULL, 0, -EINVAL, "ignored"), -EINVAL);
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "memsize rejects bad sizes", test_memsize_rejects_bad_sizes },
		{ "create rejects bad arguments", test_create_rejects_bad_arguments },
		{ "init rejects bad memory", test_init_rejects_bad_memory },
		{ "name is truncated", test_name_is_truncated },
		{ "empty ring", test_empty },
		{ "full ring uses every slot", test_full_uses_every_slot },
		{ "fifo across slot wrap-around", test_fifo_across_slot_wraparound },
		{ "fifo across counter wrap-around", test_fifo_across_counter_wraparound },
		{ "bulk is all or nothing", test_bulk_is_all_or_nothing },
		{ "burst is partial", test_burst_is_partial },
		{ "control events stay in band", test_control_events_stay_in_band },
		{ "ring frees through its allocator", test_ring_uses_its_allocator },
		{ "aligned allocation", test_alloc_aligned },
		{ "error strings and buffers", test_errors },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("ring", tests);
}
