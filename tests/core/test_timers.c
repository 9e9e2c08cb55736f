/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_timers.c — the key dictionary and the timer service of
 * core/timers.c (sli_timers.h) against brute-force references written
 * here: a list of keys compared byte for byte, and an unordered array of
 * live timers searched linearly for every answer.
 *
 * The reference's rules are the contract's: a timer is identified by
 * (domain, key, namespace, time); registering an existing one changes
 * nothing; the earliest time fires first and equal times fire in
 * registration order (a deleted and re-registered timer counts from its
 * new registration); pop never returns a timer later than its bound.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sl_test.h"
#include "sli_core.h"
#include "sli_timers.h"

/* xorshift64*: reproducible random numbers. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_below(uint64_t n)
{
	return rnd() % n;
}

/* ------------------------------------------------------------- keys */

/*
 * A weak hash on purpose (keys of equal length collide): the dictionary
 * must tell keys apart by their bytes. Equal keys still hash equally.
 */
static uint64_t weak_hash(const char *p, uint32_t len)
{
	return len < 8 ? len : len + (uint64_t)(unsigned char)p[0] * 64;
}

static void test_keys_intern(void)
{
	enum { N = 3000 };
	static char bytes[N][24];
	static uint32_t lens[N];
	static int64_t ids[N];
	struct sli_keys *k = sli_keys_new();
	int64_t distinct = 0;

	CU_ASSERT_FATAL(k != NULL);
	rng_state = 0x1234567;
	for (int i = 0; i < N; i++) {
		/* Keys of 0..23 bytes from a two-letter alphabet: many repeats, some empty. */
		int64_t want = -1;

		lens[i] = rnd_below(4) == 0 ? (uint32_t)rnd_below(3) : 1 + (uint32_t)rnd_below(23);
		for (uint32_t j = 0; j < lens[i]; j++)
			bytes[i][j] = (char)('a' + rnd_below(2));
		/* The reference: the first earlier key with the same bytes has the id. */
		for (int j = 0; j < i && want < 0; j++)
			if (lens[j] == lens[i] && memcmp(bytes[j], bytes[i], lens[i]) == 0)
				want = ids[j];
		if (want < 0)
			want = distinct++;
		ids[i] = sli_keys_intern(k, weak_hash(bytes[i], lens[i]), bytes[i], lens[i]);
		CU_ASSERT_EQUAL(ids[i], want);
	}
	CU_ASSERT_EQUAL(sli_keys_count(k), (uint32_t)distinct);
	for (int i = 0; i < N; i++) {
		struct sl_key got = sli_keys_get(k, (uint32_t)ids[i]);

		CU_ASSERT_EQUAL(got.len, lens[i]);
		CU_ASSERT(got.len == 0 || memcmp(got.ptr, bytes[i], got.len) == 0);
		CU_ASSERT_EQUAL(sli_keys_hash(k, (uint32_t)ids[i]), weak_hash(bytes[i], lens[i]));
	}
	sli_keys_free(k);
	sli_keys_free(NULL);
}

/* Distinct keys get distinct, dense ids; a repeat gets its first id. */
static void test_keys_dense(void)
{
	struct sli_keys *k = sli_keys_new();

	CU_ASSERT_FATAL(k != NULL);
	for (uint32_t i = 0; i < 5000; i++) {
		uint64_t v = i * 7919u;

		CU_ASSERT_EQUAL(sli_keys_intern(k, sli_hash64(&v, 8, 0), &v, 8), (int64_t)i);
	}
	for (uint32_t i = 0; i < 5000; i += 7) {
		uint64_t v = i * 7919u;
		struct sl_key got;

		CU_ASSERT_EQUAL(sli_keys_intern(k, sli_hash64(&v, 8, 0), &v, 8), (int64_t)i);
		got = sli_keys_get(k, i);
		CU_ASSERT(got.len == 8 && memcmp(got.ptr, &v, 8) == 0);
	}
	CU_ASSERT_EQUAL(sli_keys_count(k), 5000);
	sli_keys_free(k);
}

/* ----------------------------------------------------------- timers */

struct ref_timer {
	int dom;
	uint32_t key;
	struct sli_ns ns;
	int64_t time;
	uint64_t seq;
};

struct ref {
	struct ref_timer *t;
	size_t n, cap;
	uint64_t seq;
};

static long ref_find(const struct ref *r, int dom, uint32_t key, struct sli_ns ns, int64_t time)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->t[i].dom == dom && r->t[i].key == key && r->t[i].ns.a == ns.a &&
		    r->t[i].ns.b == ns.b && r->t[i].time == time)
			return (long)i;
	return -1;
}

static int ref_register(struct ref *r, int dom, uint32_t key, struct sli_ns ns, int64_t time)
{
	if (ref_find(r, dom, key, ns, time) >= 0)
		return 0;
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 256;
		r->t = realloc(r->t, r->cap * sizeof(*r->t));
		CU_ASSERT_FATAL(r->t != NULL);
	}
	r->t[r->n++] = (struct ref_timer){ dom, key, ns, time, ++r->seq };
	return 1;
}

static int ref_delete(struct ref *r, int dom, uint32_t key, struct sli_ns ns, int64_t time)
{
	long i = ref_find(r, dom, key, ns, time);

	if (i < 0)
		return 0;
	r->t[i] = r->t[--r->n];
	return 1;
}

/* Index of the earliest timer of @dom (ties: lowest seq), or -1. */
static long ref_min(const struct ref *r, int dom)
{
	long best = -1;

	for (size_t i = 0; i < r->n; i++) {
		const struct ref_timer *x = &r->t[i];

		if (x->dom != dom)
			continue;
		if (best < 0 || x->time < r->t[best].time ||
		    (x->time == r->t[best].time && x->seq < r->t[best].seq))
			best = (long)i;
	}
	return best;
}

static int ref_pop(struct ref *r, int dom, int64_t upto, struct ref_timer *out)
{
	long i = ref_min(r, dom);

	if (i < 0 || r->t[i].time > upto)
		return 0;
	*out = r->t[i];
	r->t[i] = r->t[--r->n];
	return 1;
}

static size_t ref_count(const struct ref *r, int dom)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		n += r->t[i].dom == dom;
	return n;
}

/* Random timer coordinates from small sets, so that collisions are common. */
static void rnd_timer(int *dom, uint32_t *key, struct sli_ns *ns, int64_t *time, int64_t base,
		      int64_t spread)
{
	static const int64_t extremes[] = { INT64_MIN, INT64_MIN + 1, INT64_MAX - 1, INT64_MAX };

	*dom = (int)rnd_below(2);
	*key = (uint32_t)rnd_below(20);
	ns->a = (int64_t)rnd_below(3) - 1;
	ns->b = rnd_below(4) == 0 ? INT64_MAX : (int64_t)rnd_below(2);
	if (rnd_below(50) == 0)
		*time = extremes[rnd_below(4)];
	else
		*time = base + (int64_t)rnd_below((uint64_t)spread) - spread / 4;
}

/* One random run: @ops operations of every kind, compared answer by answer. */
static void random_run(uint64_t seed, int ops, int64_t spread)
{
	struct sli_timers *t = sli_timers_new();
	struct ref r = { 0 };
	int64_t clock[2] = { INT64_MIN, INT64_MIN }; /* last pop bound per domain */
	int64_t base = 0;
	unsigned mismatches = 0;

	CU_ASSERT_FATAL(t != NULL);
	rng_state = seed;
	for (int op = 0; op < ops; op++) {
		uint64_t what = rnd_below(100);
		int dom;
		uint32_t key;
		struct sli_ns ns;
		int64_t time;

		rnd_timer(&dom, &key, &ns, &time, base, spread);
		if (what < 45) {
			int want = ref_register(&r, dom, key, ns, time);
			int got = sli_timers_register(t, (enum sli_domain)dom, key, ns, time);

			mismatches += got != want;
		} else if (what < 65) {
			/* Delete a live timer half of the time, a random one otherwise. */
			if (r.n > 0 && rnd_below(2)) {
				const struct ref_timer *x = &r.t[rnd_below(r.n)];

				dom = x->dom, key = x->key, ns = x->ns, time = x->time;
			}
			{
				int want = ref_delete(&r, dom, key, ns, time);
				int got = sli_timers_delete(t, (enum sli_domain)dom, key, ns, time);

				mismatches += got != want;
			}
		} else if (what < 75) {
			if (r.n > 0 && rnd_below(2)) {
				const struct ref_timer *x = &r.t[rnd_below(r.n)];

				dom = x->dom, key = x->key, ns = x->ns, time = x->time;
			}
			mismatches += (sli_timers_exists(t, (enum sli_domain)dom, key, ns, time) !=
				       0) != (ref_find(&r, dom, key, ns, time) >= 0);
		} else {
			/*
			 * Advance the domain's clock and fire what is due; while
			 * firing, sometimes register timers at or before the bound
			 * (they must fire in the same advance, in order) or delete
			 * pending ones.
			 */
			struct sli_timer got;
			struct ref_timer want;
			int64_t upto = base + (int64_t)rnd_below((uint64_t)spread / 2);
			int guard = 0;

			if (upto < clock[dom])
				upto = clock[dom];
			clock[dom] = upto;
			for (;;) {
				int w = ref_pop(&r, dom, upto, &want);
				int g = sli_timers_pop(t, (enum sli_domain)dom, upto, &got);

				if (w != g) {
					mismatches++;
					break;
				}
				if (!w)
					break;
				if (got.time != want.time || got.key != want.key ||
				    got.ns.a != want.ns.a || got.ns.b != want.ns.b) {
					mismatches++;
					break;
				}
				if (++guard < 50 && rnd_below(4) == 0) {
					uint32_t k2 = (uint32_t)rnd_below(20);
					struct sli_ns n2 = { 0, 0 };
					int64_t t2 = upto - (int64_t)rnd_below(10);

					mismatches += ref_register(&r, dom, k2, n2, t2) !=
						      sli_timers_register(t, (enum sli_domain)dom,
									  k2, n2, t2);
				}
				if (r.n > 0 && rnd_below(8) == 0) {
					const struct ref_timer x = r.t[rnd_below(r.n)];

					mismatches += ref_delete(&r, x.dom, x.key, x.ns, x.time) !=
						      sli_timers_delete(t, (enum sli_domain)x.dom,
									x.key, x.ns, x.time);
				}
			}
			base += (int64_t)rnd_below(8);
		}
		for (int d = 0; d < 2; d++) {
			long m = ref_min(&r, d);

			mismatches += sli_timers_count(t, (enum sli_domain)d) != ref_count(&r, d);
			mismatches += sli_timers_next(t, (enum sli_domain)d) !=
				      (m < 0 ? INT64_MAX : r.t[m].time);
		}
		if (mismatches) {
			CU_FAIL("timer service and reference disagree");
			fprintf(stderr, "seed %llu: first mismatch at operation %d\n",
				(unsigned long long)seed, op);
			break;
		}
	}
	/* Drain both domains completely: everything left comes out in order. */
	for (int d = 0; d < 2 && !mismatches; d++) {
		struct sli_timer got;
		struct ref_timer want;

		while (ref_pop(&r, d, INT64_MAX, &want)) {
			if (sli_timers_pop(t, (enum sli_domain)d, INT64_MAX, &got) != 1 ||
			    got.time != want.time || got.key != want.key || got.ns.a != want.ns.a ||
			    got.ns.b != want.ns.b) {
				CU_FAIL("final drain out of order");
				break;
			}
		}
		CU_ASSERT_EQUAL(sli_timers_pop(t, (enum sli_domain)d, INT64_MAX, &got), 0);
		CU_ASSERT_EQUAL(sli_timers_count(t, (enum sli_domain)d), 0);
		CU_ASSERT_EQUAL(sli_timers_next(t, (enum sli_domain)d), INT64_MAX);
	}
	free(r.t);
	sli_timers_free(t);
}

static void test_timers_random_dense(void)
{
	/* Narrow time range: many equal times, so registration order decides. */
	for (uint64_t s = 1; s <= 20; s++)
		random_run(s * 0x9e3779b97f4a7c15ull, 3000, 16);
}

static void test_timers_random_sparse(void)
{
	for (uint64_t s = 1; s <= 10; s++)
		random_run(s * 0x632be59bd9b4e019ull + 7, 6000, 4096);
}

/* Many deletes: the heap's stale items are dropped (rebuild) without losing a live one. */
static void test_timers_delete_heavy(void)
{
	struct sli_timers *t = sli_timers_new();
	struct sli_ns ns = { 0, 0 };
	struct sli_timer got;
	int64_t prev = INT64_MIN;
	size_t n = 0;

	CU_ASSERT_FATAL(t != NULL);
	for (uint32_t k = 0; k < 20000; k++)
		CU_ASSERT_EQUAL(sli_timers_register(t, SLI_EVENT_TIME, k, ns, k % 1000), 1);
	/* Delete all but every 10th key, re-register some at another time. */
	for (uint32_t k = 0; k < 20000; k++) {
		if (k % 10 == 0)
			continue;
		CU_ASSERT_EQUAL(sli_timers_delete(t, SLI_EVENT_TIME, k, ns, k % 1000), 1);
		CU_ASSERT_EQUAL(sli_timers_delete(t, SLI_EVENT_TIME, k, ns, k % 1000), 0);
		if (k % 10 == 5)
			CU_ASSERT_EQUAL(sli_timers_register(t, SLI_EVENT_TIME, k, ns, 5000 + k), 1);
	}
	CU_ASSERT_EQUAL(sli_timers_count(t, SLI_EVENT_TIME), 4000);
	CU_ASSERT_EQUAL(sli_timers_count(t, SLI_PROC_TIME), 0);
	while (sli_timers_pop(t, SLI_EVENT_TIME, INT64_MAX, &got)) {
		CU_ASSERT(got.time >= prev);
		CU_ASSERT(got.time < 5000 ? got.key % 10 == 0 && got.time == got.key % 1000
					  : got.key % 10 == 5 && got.time == 5000 + got.key);
		prev = got.time;
		n++;
	}
	CU_ASSERT_EQUAL(n, 4000);
	sli_timers_free(t);
	sli_timers_free(NULL);
}

/* Domains are independent: the same (key, ns, time) in both, popped separately. */
static void test_timers_domains(void)
{
	struct sli_timers *t = sli_timers_new();
	struct sli_ns ns = { 3, 4 };
	struct sli_timer got;

	CU_ASSERT_FATAL(t != NULL);
	CU_ASSERT_EQUAL(sli_timers_register(t, SLI_EVENT_TIME, 1, ns, 10), 1);
	CU_ASSERT_EQUAL(sli_timers_register(t, SLI_PROC_TIME, 1, ns, 10), 1);
	CU_ASSERT_EQUAL(sli_timers_register(t, SLI_PROC_TIME, 1, ns, 10), 0);
	CU_ASSERT_EQUAL(sli_timers_exists(t, SLI_EVENT_TIME, 1, ns, 10), 1);
	CU_ASSERT_EQUAL(sli_timers_exists(t, SLI_EVENT_TIME, 1, ns, 11), 0);
	CU_ASSERT_EQUAL(sli_timers_pop(t, SLI_EVENT_TIME, 9, &got), 0);
	CU_ASSERT_EQUAL(sli_timers_pop(t, SLI_EVENT_TIME, 10, &got), 1);
	CU_ASSERT(got.time == 10 && got.key == 1 && got.ns.a == 3 && got.ns.b == 4);
	CU_ASSERT_EQUAL(sli_timers_pop(t, SLI_EVENT_TIME, INT64_MAX, &got), 0);
	CU_ASSERT_EQUAL(sli_timers_count(t, SLI_PROC_TIME), 1);
	CU_ASSERT_EQUAL(sli_timers_next(t, SLI_PROC_TIME), 10);
	CU_ASSERT_EQUAL(sli_timers_delete(t, SLI_PROC_TIME, 1, ns, 10), 1);
	CU_ASSERT_EQUAL(sli_timers_next(t, SLI_PROC_TIME), INT64_MAX);
	sli_timers_free(t);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "keys_intern", test_keys_intern },
		{ "keys_dense", test_keys_dense },
		{ "timers_domains", test_timers_domains },
		{ "timers_delete_heavy", test_timers_delete_heavy },
		{ "timers_random_dense", test_timers_random_dense },
		{ "timers_random_sparse", test_timers_random_sparse },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("timers", tests);
}
