/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ring_stress.c — one producer thread and one consumer thread move
 * at least 50 M items through small rings and the consumer checks that
 * it sees 1, 2, 3, ... with nothing lost, duplicated or reordered.
 *
 * Burst sizes are pseudo-random on both sides (seeded, so a failure can
 * be replayed) and the rings are small, so the full and empty paths and
 * the cached-index refreshes run millions of times. .ci/run builds this
 * with ThreadSanitizer, which checks the memory ordering of every slot
 * access against the counters' acquire/release pairs.
 *
 * Nothing here is timed: a hang is caught by meson's test timeout.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>

#include <sluice/sl_ring.h>

#include "sl_test.h"

#ifndef SL_STRESS_SCALE
#define SL_STRESS_SCALE 1
#endif

enum mode { MODE_BURST, MODE_BULK, MODE_SINGLE };

struct stress {
	struct sl_ring *ring;
	uint64_t items;
	enum mode mode;
	uint64_t seed;
	/* consumer results */
	uint64_t received;
	uint64_t errors;
	uint64_t first_bad_expected, first_bad_got;
};

static uint32_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return (uint32_t)(x >> 32);
}

static void backoff(unsigned *spins)
{
	/* Two threads may share fewer cores than that (CI, TSan): yield. */
	if (++*spins > 64) {
		sched_yield();
		*spins = 0;
	}
}

static void *producer(void *arg)
{
	struct stress *s = arg;
	uint64_t rng = s->seed, next = 1;
	void *buf[64];
	unsigned spins = 0;

	while (next <= s->items) {
		unsigned want = s->mode == MODE_SINGLE ? 1 : 1 + xorshift(&rng) % 64;
		unsigned n, done;

		if (want > s->items - next + 1)
			want = (unsigned)(s->items - next + 1);
		for (n = 0; n < want; n++)
			buf[n] = (void *)(uintptr_t)(next + n);
		switch (s->mode) {
		case MODE_BULK:
			done = sl_ring_enqueue_bulk(s->ring, buf, want);
			break;
		case MODE_SINGLE:
			done = sl_ring_enqueue(s->ring, buf[0]) == 0;
			break;
		default:
			done = sl_ring_enqueue_burst(s->ring, buf, want);
			break;
		}
		next += done;
		if (done == 0)
			backoff(&spins);
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct stress *s = arg;
	uint64_t rng = s->seed ^ 0x9e3779b97f4a7c15ull, expect = 1;
	void *buf[64];
	unsigned spins = 0;

	while (expect <= s->items) {
		unsigned want = s->mode == MODE_SINGLE ? 1 : 1 + xorshift(&rng) % 64;
		unsigned n;

		if (s->mode == MODE_BULK && want > s->items - expect + 1)
			want = (unsigned)(s->items - expect + 1);
		switch (s->mode) {
		case MODE_BULK:
			n = sl_ring_dequeue_bulk(s->ring, buf, want);
			break;
		case MODE_SINGLE:
			n = sl_ring_dequeue(s->ring, &buf[0]) == 0;
			break;
		default:
			n = sl_ring_dequeue_burst(s->ring, buf, want);
			break;
		}
		if (n == 0) {
			backoff(&spins);
			continue;
		}
		for (unsigned i = 0; i < n; i++, expect++) {
			uint64_t got = (uint64_t)(uintptr_t)buf[i];

			if (got != expect && s->errors++ == 0) {
				s->first_bad_expected = expect;
				s->first_bad_got = got;
			}
		}
		s->received += n;
	}
	return NULL;
}

static void run(enum mode mode, uint32_t ring_size, uint64_t items, uint64_t seed)
{
	struct stress s = { .items = items, .mode = mode, .seed = seed };
	pthread_t p, c;

	CU_ASSERT_FATAL(sl_ring_create(ring_size, "stress", NULL, &s.ring) == 0);
	CU_ASSERT_FATAL(pthread_create(&c, NULL, consumer, &s) == 0);
	CU_ASSERT_FATAL(pthread_create(&p, NULL, producer, &s) == 0);
	pthread_join(p, NULL);
	pthread_join(c, NULL);
	if (s.errors)
		printf("\n  first mismatch: expected %llu, got %llu (%llu mismatches)\n",
		       (unsigned long long)s.first_bad_expected,
		       (unsigned long long)s.first_bad_got, (unsigned long long)s.errors);
	CU_ASSERT_EQUAL(s.errors, 0);
	CU_ASSERT_EQUAL(s.received, items);
	CU_ASSERT_EQUAL(sl_ring_count(s.ring), 0);
	sl_ring_destroy(s.ring);
}

#define MILLION (UINT64_C(1000000) * SL_STRESS_SCALE)

/* The main run: 50 M items in random bursts through a 256-slot ring. */
static void test_burst_50m(void)
{
	run(MODE_BURST, 256, 50 * MILLION, 0x5eed0001);
}

/* A 64-slot ring: bursts of up to 64 hit full and empty constantly. */
static void test_burst_tiny_ring(void)
{
	run(MODE_BURST, 64, 10 * MILLION, 0x5eed0002);
}

static void test_bulk(void)
{
	run(MODE_BULK, 128, 10 * MILLION, 0x5eed0003);
}

static void test_single(void)
{
	run(MODE_SINGLE, 16, 5 * MILLION, 0x5eed0004);
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "burst, 50M items, 256 slots", test_burst_50m },
		{ "burst, 10M items, 64 slots", test_burst_tiny_ring },
		{ "bulk, 10M items, 128 slots", test_bulk },
		{ "single, 5M items, 16 slots", test_single },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("ring-stress", tests);
}
