/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_state.c — the keyed-state table (state/table.c) in memory, one
 * thread, against a plain open-addressing table written here: same keys,
 * same hash (sli_hash64), same operation sequence, same allocator, in the
 * same process, runs interleaved.
 *
 * Keys are N distinct 8-byte integers (a bijective mix of 0..N-1, never
 * 0), values 16 bytes. Per run and table:
 *   insert  N puts of new keys, starting from an empty table (so every
 *           resize is included);
 *   get     N gets of uniformly random keys (all hits);
 *   update  N puts of random existing keys with new values;
 *   get     N random gets again;
 *   batch   the same gets in batches of 32 (the operator's unit of work):
 *           sli_table_lookup_batch() for the state table; for the plain
 *           table the same idea written here (prefetch 32 slots, probe).
 * Keys and hashes are computed in the loop from a PRNG (the runtime has
 * the hash from key_by), so neither table pays for reading a key array.
 * The state table uses state id 0, no namespace, no TTL.
 *
 * Then a separate latency pass per table: N inserts into an empty table,
 * each timed with clock_gettime(CLOCK_MONOTONIC); the worst single put is
 * where the plain table doubles all at once (allocate, zero and rehash
 * everything) while the state table does at most a bounded resize step
 * per operation. On a shared machine the raw maximum is often a
 * preemption (the scheduler runs someone else for milliseconds), so the
 * pass also reads the thread's CPU clock every 256 puts and right after
 * any put slower than SLOW_NS: the time the thread did not run in that
 * short interval (wall - CPU) is subtracted from the slow put, giving the
 * worst put "excluding preemption" (page faults and allocator calls are
 * CPU time and stay in). Both maxima are reported.
 *
 * Self-checking: the checksums of values read must be equal for both
 * tables (any mismatch exits 1). Output: a table of medians (ns/op,
 * Mops/s, ratio state/plain measured in this run), latency percentiles
 * and maxima, memory per entry; with --json PATH the same plus every run.
 * The thread is pinned to the first usable PU; both tables allocate from
 * the NUMA allocator of its node (the default allocator if that fails).
 *
 * Then the spill comparison (spill_measure): gets, puts and batched gets
 * with 90% of the entries on disk, io_uring against the POSIX engine,
 * and both against the in-memory table and the plain baseline, same run.
 * Then the same for map-like namespaced state (ns_measure): keys x 8
 * namespaces, spilled as one ring record per key, ~90% on disk.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sluice/sl_alloc.h>
#include <sluice/sl_common.h>
#include <sluice/sl_error.h>
#include <sluice/sl_numa.h>

#include "bench_common.h"
#include "sli_core.h" /* sli_fmix64 */
#include "sli_core.h"
#include "sli_state.h"

#define MAX_RUNS BENCH_MAX_RUNS
#define SEED	 0x5eedu
#define BATCH	 32
#define MAXP	 128
#define SLOW_NS	 20000 /* a put slower than this gets its CPU time checked */

enum { P_INSERT, P_GET, P_UPDATE, P_GET2, P_BATCH, NPHASE };
static const char *const phase_name[NPHASE] = { "insert", "get", "update", "get (again)",
						"get, batches of 32" };
static const char *const phase_key[NPHASE] = { "insert", "get", "update", "get2", "get_batch32" };

enum { T_STATE, T_PLAIN, NTAB };
static const char *const tab_name[NTAB] = { "sli_table", "plain open addressing" };
static const char *const tab_key[NTAB] = { "sli_table", "plain" };

/* ------------------------------------------------------- keys and clock */

/* Key number i: distinct for distinct i, never 0 (fmix64 is a bijection, sli_fmix64(0) = 0). */
static inline uint64_t key_of(uint64_t i)
{
	return sli_fmix64(i + 0x9e3779b97f4a7c15ull);
}

static inline uint64_t hash_of(uint64_t key)
{
	return sli_hash64(&key, sizeof(key), SEED);
}

struct rng {
	uint64_t s;
};

__extension__ typedef unsigned __int128 u128;

/* A uniform index below n (splitmix64, then a multiply-shift range). */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (uint64_t)(((u128)z * n) >> 64);
}

/* Log-linear histogram of nanoseconds: 16 sub-buckets per power of two. */
#define HIST_SUB 16
#define HIST_N	 (64 * HIST_SUB)

struct hist {
	uint64_t n, max, over_100us, over_1ms;
	uint64_t b[HIST_N];
};

static inline void hist_add(struct hist *h, uint64_t ns)
{
	/* ns >> p is in [16, 32): its low 4 bits pick the sub-bucket. */
	unsigned p = ns < HIST_SUB ? 0 : 63u - (unsigned)__builtin_clzll(ns) - 4;
	unsigned idx =
	    ns < HIST_SUB ? (unsigned)ns : (p + 1) * HIST_SUB + (unsigned)((ns >> p) - HIST_SUB);

	h->b[idx < HIST_N ? idx : HIST_N - 1]++;
	h->n++;
	h->max = ns > h->max ? ns : h->max;
	h->over_100us += ns > 100000;
	h->over_1ms += ns > 1000000;
}

/* Upper bound of the bucket holding quantile q. */
static uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t want = (uint64_t)(q * (double)h->n), seen = 0;

	for (unsigned i = 0; i < HIST_N; i++) {
		seen += h->b[i];
		if (seen > want) {
			unsigned p;

			if (i < HIST_SUB)
				return i;
			p = i / HIST_SUB - 1;
			return ((uint64_t)(i % HIST_SUB + HIST_SUB + 1) << p) - 1;
		}
	}
	return h->max;
}

/* ------------------------------------------------- the plain baseline */

/*
 * Linear probing, 24-byte slots holding key and value inline (key 0 =
 * empty), index = hash & mask, doubling at 3/4 load all at once: allocate,
 * zero, reinsert everything, free the old array.
 */
struct pslot {
	uint64_t key, v[2];
};

struct plain {
	const struct sl_allocator *a;
	struct pslot *s;
	size_t cap, mask, used;
};

static int plain_alloc(struct plain *p, size_t cap)
{
	p->s = sl_alloc_aligned(p->a, cap * sizeof(struct pslot), SL_CACHE_LINE);
	if (p->s == NULL)
		return -ENOMEM;
	memset(p->s, 0, cap * sizeof(struct pslot));
	p->cap = cap;
	p->mask = cap - 1;
	return 0;
}

static int plain_grow(struct plain *p)
{
	struct pslot *old = p->s;
	size_t ocap = p->cap;

	if (plain_alloc(p, ocap * 2) < 0) {
		p->s = old;
		p->cap = ocap;
		return -ENOMEM;
	}
	for (size_t i = 0; i < ocap; i++) {
		size_t j;

		if (old[i].key == 0)
			continue;
		for (j = hash_of(old[i].key) & p->mask; p->s[j].key != 0; j = (j + 1) & p->mask)
			;
		p->s[j] = old[i];
	}
	sl_alloc_free(p->a, old);
	return 0;
}

static inline int plain_put(struct plain *p, uint64_t key, uint64_t h, const uint64_t v[2])
{
	size_t i;

	for (i = h & p->mask; p->s[i].key != 0; i = (i + 1) & p->mask) {
		if (p->s[i].key == key) {
			p->s[i].v[0] = v[0];
			p->s[i].v[1] = v[1];
			return 0;
		}
	}
	if (p->used + 1 > p->cap / 4 * 3) {
		if (plain_grow(p) < 0)
			return -ENOMEM;
		for (i = h & p->mask; p->s[i].key != 0; i = (i + 1) & p->mask)
			;
	}
	p->s[i] = (struct pslot){ key, { v[0], v[1] } };
	p->used++;
	return 1;
}

static inline const uint64_t *plain_get(const struct plain *p, uint64_t key, uint64_t h)
{
	for (size_t i = h & p->mask; p->s[i].key != 0; i = (i + 1) & p->mask)
		if (p->s[i].key == key)
			return p->s[i].v;
	return NULL;
}

/* Gets of @m keys: prefetch every home slot first, then probe. */
static inline void plain_get_batch(const struct plain *p, unsigned m, const uint64_t *keys,
				   const uint64_t *h, const uint64_t **out)
{
	for (unsigned j = 0; j < m; j++) {
		__builtin_prefetch(&p->s[h[j] & p->mask]);
		__builtin_prefetch((const char *)&p->s[h[j] & p->mask] + sizeof(struct pslot) - 1);
	}
	for (unsigned j = 0; j < m; j++)
		out[j] = plain_get(p, keys[j], h[j]);
}

/* ------------------------------------------------------- the two tables */

struct tab {
	int kind;
	const struct sl_allocator *a;
	struct sli_table *t;
	struct plain p;
};

static int tab_open(struct tab *x, int kind, const struct sl_allocator *a)
{
	memset(x, 0, sizeof(*x));
	x->kind = kind;
	x->a = a;
	if (kind == T_STATE)
		return sli_table_create(a, MAXP, 0, MAXP - 1, &x->t);
	x->p.a = a;
	return plain_alloc(&x->p, 64); /* the state table starts at 64 slots too */
}

static void tab_close(struct tab *x)
{
	sli_table_destroy(x->t);
	sl_alloc_free(x->a, x->p.s);
	memset(x, 0, sizeof(*x));
}

static inline int tab_put(struct tab *x, uint64_t key, const uint64_t v[2])
{
	uint64_t h = hash_of(key);

	if (x->kind == T_STATE) {
		struct sli_skey k = { .hash = h, .key = &key, .key_len = sizeof(key) };

		return sli_table_put(x->t, &k, v, 16, SLI_TTL_NONE);
	}
	return plain_put(&x->p, key, h, v);
}

/* v0 ^ v1 of the key's value, or a poison value when it is missing. */
static inline uint64_t tab_get(struct tab *x, uint64_t key)
{
	uint64_t h = hash_of(key), v[2];

	if (x->kind == T_STATE) {
		struct sli_skey k = { .hash = h, .key = &key, .key_len = sizeof(key) };
		uint32_t len = 0;
		const void *p = sli_table_get(x->t, &k, 0, SLI_TTL_KEEP, &len);

		if (p == NULL || len != 16)
			return 0xdeadull;
		memcpy(v, p, 16);
	} else {
		const uint64_t *p = plain_get(&x->p, key, h);

		if (p == NULL)
			return 0xdeadull;
		v[0] = p[0];
		v[1] = p[1];
	}
	return v[0] ^ v[1];
}

/* ---------------------------------------------------------------- phases */

struct result {
	double ns[NPHASE][MAX_RUNS];
	uint64_t sum[NPHASE];	       /* checksums of the last run */
	struct hist lat;	       /* wall time of every insert, all runs */
	uint64_t max_ns[MAX_RUNS];     /* worst insert per run, wall */
	uint64_t cpu_max_ns[MAX_RUNS]; /* worst insert per run, preemption excluded */
	uint64_t cpu_over_1ms;	       /* inserts over 1 ms, preemption excluded */
	double bytes_per_entry;
};

static inline uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The batch phase: 32 keys at a time through either table's batch lookup. */
static uint64_t batch_gets(struct tab *x, struct rng *r, uint64_t n)
{
	uint64_t keys[BATCH], h[BATCH], s = 0, v[2];
	struct sli_skey k[BATCH];
	struct sli_lookup out[BATCH];
	const uint64_t *pout[BATCH];

	for (uint64_t i = 0; i < n; i += BATCH) {
		unsigned m = n - i < BATCH ? (unsigned)(n - i) : BATCH;

		for (unsigned j = 0; j < m; j++) {
			keys[j] = key_of(rng_below(r, n));
			h[j] = hash_of(keys[j]);
		}
		if (x->kind == T_PLAIN) {
			plain_get_batch(&x->p, m, keys, h, pout);
			for (unsigned j = 0; j < m; j++)
				s += pout[j] != NULL ? pout[j][0] ^ pout[j][1] : 0xdeadull;
			continue;
		}
		for (unsigned j = 0; j < m; j++)
			k[j] = (struct sli_skey){ .hash = h[j], .key = &keys[j], .key_len = 8 };
		sli_table_lookup_batch(x->t, m, k, 0, SLI_TTL_KEEP, out);
		for (unsigned j = 0; j < m; j++) {
			if (out[j].value == NULL || out[j].len != 16) {
				s += 0xdeadull;
				continue;
			}
			memcpy(v, out[j].value, 16);
			s += v[0] ^ v[1];
		}
	}
	return s;
}

static int run_phase(struct tab *x, int ph, uint64_t n, uint64_t *sum)
{
	struct rng r = { .s = ph == P_BATCH ? P_GET2 : (uint64_t)ph }; /* batch reads as get2 */
	uint64_t s = 0, v[2];

	switch (ph) {
	case P_INSERT:
		for (uint64_t i = 0; i < n; i++) {
			uint64_t key = key_of(i);

			v[0] = key;
			v[1] = i;
			if (tab_put(x, key, v) != 1)
				return -ENOMEM;
		}
		break;
	case P_GET:
	case P_GET2:
		for (uint64_t i = 0; i < n; i++)
			s += tab_get(x, key_of(rng_below(&r, n)));
		break;
	case P_UPDATE:
		for (uint64_t i = 0; i < n; i++) {
			uint64_t key = key_of(rng_below(&r, n));

			v[0] = key;
			v[1] = i * 7 + 1;
			if (tab_put(x, key, v) != 0)
				return -ENOMEM;
		}
		break;
	case P_BATCH:
		s = batch_gets(x, &r, n);
		break;
	}
	*sum = s;
	return 0;
}

/* One run of every phase on a fresh table; ns/op per phase into res. */
static int run_table(int kind, const struct sl_allocator *a, uint64_t n, unsigned run,
		     struct result *res)
{
	struct tab x;
	int rc = tab_open(&x, kind, a);

	for (int ph = 0; rc == 0 && ph < NPHASE; ph++) {
		uint64_t t0, sum = 0;

		t0 = bench_now_ns();
		rc = run_phase(&x, ph, n, &sum);
		res->ns[ph][run] = (double)(bench_now_ns() - t0) / (double)n;
		res->sum[ph] = sum;
	}
	if (rc == 0) {
		if (kind == T_STATE) {
			struct sli_table_stats st;

			sli_table_stats(x.t, &st);
			res->bytes_per_entry = (double)st.bytes / (double)n;
		} else {
			res->bytes_per_entry = (double)(x.p.cap * sizeof(struct pslot)) / (double)n;
		}
	}
	tab_close(&x);
	return rc;
}

/*
 * N inserts into a fresh table, each one timed. For a put slower than
 * SLOW_NS, the CPU clock read right after it and the previous reading
 * (at most 256 puts earlier, or at the previous slow put) bound the time
 * the thread was not running; that is taken off the put.
 */
static int run_latency(int kind, const struct sl_allocator *a, uint64_t n, unsigned run,
		       struct result *res)
{
	struct tab x;
	struct hist one;
	uint64_t wall_prev = bench_now_ns(), cpu_prev = thread_cpu_ns(), cpu_max = 0;
	unsigned since = 0;
	int rc = tab_open(&x, kind, a);

	memset(&one, 0, sizeof(one));
	for (uint64_t i = 0; rc == 0 && i < n; i++) {
		uint64_t key = key_of(i), v[2] = { key, i }, t0, t1, d;

		t0 = bench_now_ns();
		rc = tab_put(&x, key, v) == 1 ? 0 : -ENOMEM;
		t1 = bench_now_ns();
		d = t1 - t0;
		hist_add(&one, d);
		if (d > SLOW_NS) {
			uint64_t cpu = thread_cpu_ns();
			uint64_t wall = t1 - wall_prev, busy = cpu - cpu_prev;
			uint64_t off = wall > busy ? wall - busy : 0;

			d = d > off ? d - off : 0;
			res->cpu_over_1ms += d > 1000000;
			wall_prev = bench_now_ns();
			cpu_prev = thread_cpu_ns();
			since = 0;
		} else if (++since == 256) {
			wall_prev = bench_now_ns();
			cpu_prev = thread_cpu_ns();
			since = 0;
		}
		cpu_max = d > cpu_max ? d : cpu_max;
	}
	res->max_ns[run] = one.max;
	res->cpu_max_ns[run] = cpu_max;
	res->lat.n += one.n;
	res->lat.max = one.max > res->lat.max ? one.max : res->lat.max;
	res->lat.over_100us += one.over_100us;
	res->lat.over_1ms += one.over_1ms;
	for (unsigned i = 0; i < HIST_N; i++)
		res->lat.b[i] += one.b[i];
	tab_close(&x);
	return rc;
}

/* ---------------------------------------------------------------- output */

static double median_u64(const uint64_t *v, unsigned runs)
{
	double tmp[MAX_RUNS];

	for (unsigned i = 0; i < runs; i++)
		tmp[i] = (double)v[i];
	return bench_median(tmp, runs);
}

/* Throughput of the state table over the plain table's, same phase. */
static double ratio(const struct result *res, int ph, unsigned runs)
{
	return bench_median_of(res[T_PLAIN].ns[ph], runs) /
	       bench_median_of(res[T_STATE].ns[ph], runs);
}

static void print_table(const struct result *res, uint64_t n, unsigned runs, int pu, int node,
			const char *alloc)
{
	printf("bench_state: %llu keys (8 B) / values (16 B), 1 thread on PU %d (node %d), "
	       "allocator %s; median of %u runs\n",
	       (unsigned long long)n, pu, node, alloc, runs);
	printf("%-18s  %-22s  %8s  %9s  %13s\n", "operation", "table", "ns/op", "Mops/s",
	       "state/plain");
	for (int ph = 0; ph < NPHASE; ph++) {
		for (int k = 0; k < NTAB; k++) {
			double ns = bench_median_of(res[k].ns[ph], runs);

			printf("%-18s  %-22s  %8.1f  %9.2f", phase_name[ph], tab_name[k], ns,
			       1e3 / ns);
			if (k == T_STATE)
				printf("  %12.2fx", ratio(res, ph, runs));
			printf("\n");
		}
	}
	printf("(state/plain: throughput ratio, > 1 means the state table is faster)\n");
	printf("\nlatency of one insert, %llu timed puts per run x %u runs (clock_gettime per "
	       "op):\n",
	       (unsigned long long)n, runs);
	printf("%-22s  %6s  %6s  %8s  %9s  %11s  %11s  %6s  %13s  %10s\n", "table", "p50 ns",
	       "p99 ns", "p99.9 ns", "p99.99 ns", "max ns", "max ns", ">1 ms", "max ns, not",
	       ">1 ms, not");
	printf("%-22s  %6s  %6s  %8s  %9s  %11s  %11s  %6s  %13s  %10s\n", "", "", "", "", "",
	       "(median)", "(all runs)", "", "preempted*", "preempted");
	for (int k = 0; k < NTAB; k++) {
		const struct hist *h = &res[k].lat;

		printf("%-22s  %6llu  %6llu  %8llu  %9llu  %11.0f  %11llu  %6llu  %13.0f  %10llu\n",
		       tab_name[k], (unsigned long long)hist_quantile(h, 0.5),
		       (unsigned long long)hist_quantile(h, 0.99),
		       (unsigned long long)hist_quantile(h, 0.999),
		       (unsigned long long)hist_quantile(h, 0.9999),
		       median_u64(res[k].max_ns, runs), (unsigned long long)h->max,
		       (unsigned long long)h->over_1ms, median_u64(res[k].cpu_max_ns, runs),
		       (unsigned long long)res[k].cpu_over_1ms);
	}
	printf("(* median over runs of the worst put after taking off the time the thread was "
	       "not running;\n   percentiles are upper bounds of log-linear buckets, 1/16 "
	       "octave wide)\n");
	printf("\nmemory after the run: sli_table %.1f B/entry (slots, entries, slab), plain "
	       "%.1f B/entry\n",
	       res[T_STATE].bytes_per_entry, res[T_PLAIN].bytes_per_entry);
}

static int write_json(const char *path, const struct result *res, uint64_t n, unsigned runs, int pu,
		      int node, const char *alloc)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -errno;
	fprintf(f,
		"{\n  \"benchmark\": \"state\",\n  \"unit\": \"ns/op\",\n  \"keys\": %llu,\n"
		"  \"key_bytes\": 8,\n  \"value_bytes\": 16,\n  \"runs\": %u,\n  \"pu\": %d,\n"
		"  \"node\": %d,\n  \"allocator\": \"%s\",\n  \"results\": [",
		(unsigned long long)n, runs, pu, node, alloc);
	for (int ph = 0, first = 1; ph < NPHASE; ph++) {
		for (int k = 0; k < NTAB; k++) {
			fprintf(f,
				"%s\n    {\"op\": \"%s\", \"table\": \"%s\", \"ns_per_op\": %.2f",
				first ? "" : ",", phase_key[ph], tab_key[k],
				bench_median_of(res[k].ns[ph], runs));
			if (k == T_STATE)
				fprintf(f, ", \"throughput_ratio_to_plain\": %.3f",
					ratio(res, ph, runs));
			fprintf(f, ", \"runs_ns_per_op\": [");
			for (unsigned r = 0; r < runs; r++)
				fprintf(f, "%s%.2f", r ? ", " : "", res[k].ns[ph][r]);
			fprintf(f, "]}");
			first = 0;
		}
	}
	fprintf(f, "\n  ],\n  \"insert_latency_ns\": [");
	for (int k = 0; k < NTAB; k++) {
		const struct hist *h = &res[k].lat;

		fprintf(
		    f,
		    "%s\n    {\"table\": \"%s\", \"p50\": %llu, \"p99\": %llu, \"p99_9\": %llu, "
		    "\"p99_99\": %llu, \"max\": %llu, \"over_100us\": %llu, \"over_1ms\": %llu, "
		    "\"over_1ms_not_preempted\": %llu, \"runs_max\": [",
		    k ? "," : "", tab_key[k], (unsigned long long)hist_quantile(h, 0.5),
		    (unsigned long long)hist_quantile(h, 0.99),
		    (unsigned long long)hist_quantile(h, 0.999),
		    (unsigned long long)hist_quantile(h, 0.9999), (unsigned long long)h->max,
		    (unsigned long long)h->over_100us, (unsigned long long)h->over_1ms,
		    (unsigned long long)res[k].cpu_over_1ms);
		for (unsigned r = 0; r < runs; r++)
			fprintf(f, "%s%llu", r ? ", " : "", (unsigned long long)res[k].max_ns[r]);
		fprintf(f, "], \"runs_max_not_preempted\": [");
		for (unsigned r = 0; r < runs; r++)
			fprintf(f, "%s%llu", r ? ", " : "",
				(unsigned long long)res[k].cpu_max_ns[r]);
		fprintf(f, "], \"bytes_per_entry\": %.1f}", res[k].bytes_per_entry);
	}
	fprintf(f, "\n  ]\n}\n");
	if (fclose(f) != 0)
		return -errno;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_state [--keys N] [--runs N] [--quick] [--json PATH]\n"
		"  in-memory keyed-state table vs a plain open-addressing table: insert, get,\n"
		"  update, batched get (ns/op, ratio), and the latency of single inserts.\n"
		"  --keys N     distinct keys (default 10000000)\n"
		"  --runs N     runs per measurement, median reported (default 5, max %d)\n"
		"  --quick      200000 keys, 3 runs: a smoke test (checksums still checked)\n"
		"  --json PATH  also write the results as JSON\n"
		"  --spill-keys N  keys of the spill comparison (default 2000000, 0: skip)\n"
		"  --spill-ops N   operations per phase there (default 500000)\n"
		"  --spill-dir DIR where its spill files go (default /tmp)\n",
		MAX_RUNS);
}

static uint64_t spill_keys = 2000000, spill_ops = 500000;
static const char *spill_dir = "/tmp";

static int parse_args(int argc, char **argv, uint64_t *n, unsigned *runs, const char **json)
{
	static const struct option opts[] = {
		{ "spill-keys", required_argument, NULL, 'K' },
		{ "spill-ops", required_argument, NULL, 'O' },
		{ "spill-dir", required_argument, NULL, 'D' },
		{ "keys", required_argument, NULL, 'k' },
		{ "quick", no_argument, NULL, 'q' },
		BENCH_OPTS_COMMON,
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'k':
			*n = strtoull(optarg, NULL, 10);
			break;
		case 'r':
			*runs = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'q':
			*n = 200000;
			*runs = 3;
			spill_keys = 100000;
			spill_ops = 20000;
			break;
		case 'K':
			spill_keys = strtoull(optarg, NULL, 10); /* 0: no spill comparison */
			break;
		case 'O':
			spill_ops = strtoull(optarg, NULL, 10);
			break;
		case 'D':
			spill_dir = optarg;
			break;
		case 'j':
			*json = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (*runs < 1 || *runs > MAX_RUNS || *n < BATCH || *n > (1ull << 32)) {
		fprintf(stderr, "bench_state: --runs must be 1..%d, --keys %d..2^32\n", MAX_RUNS,
			BATCH);
		return -EINVAL;
	}
	return 0;
}

static int measure(const struct sl_allocator *a, uint64_t n, unsigned runs, struct result *res)
{
	for (unsigned r = 0; r < runs; r++) {
		/* Alternate which table goes first, so drift hits both alike. */
		for (int i = 0; i < NTAB; i++) {
			int k = (int)((r + (unsigned)i) % NTAB), rc;

			rc = run_table(k, a, n, r, &res[k]);
			if (rc == 0)
				rc = run_latency(k, a, n, r, &res[k]);
			if (rc < 0) {
				fprintf(stderr, "bench_state: %s: %s\n", tab_name[k],
					sl_strerror(rc));
				return rc;
			}
		}
		for (int ph = P_GET; ph < NPHASE; ph++) {
			/* Every read agrees across tables; the batches read what get2 read. */
			if (ph != P_UPDATE &&
			    (res[T_STATE].sum[ph] != res[T_PLAIN].sum[ph] ||
			     res[T_STATE].sum[P_BATCH] != res[T_STATE].sum[P_GET2])) {
				fprintf(stderr,
					"bench_state: checksum mismatch in %s: %llx vs %llx\n",
					phase_name[ph], (unsigned long long)res[T_STATE].sum[ph],
					(unsigned long long)res[T_PLAIN].sum[ph]);
				return -EIO;
			}
		}
	}
	return 0;
}

/* ------------------------------------------------------------- spilling */

/*
 * The spill comparison: the same keys in four tables, built one after the
 * other in this process: the state table in memory, the plain baseline,
 * and the state table with a budget of a tenth of its in-memory size (so
 * ~90% of the entries are on disk) with the io_uring and the POSIX
 * engine. Then, per table and run, `ops` random gets, puts of existing
 * keys, and gets in batches of 32; medians of the runs. Files are in the
 * page cache (the machine has the memory): this measures the engine and
 * the spill path, not a disk.
 */
enum { S_MEM, S_PLAIN, S_URING, S_POSIX, NSPILL };
static const char *const spill_name[NSPILL] = { "sli_table in memory", "plain open addressing",
						"spill, io_uring", "spill, posix" };
enum { SP_GET, SP_PUT, SP_BATCH, NSP };
static const char *const sp_phase[NSP] = { "get", "put (update)", "get, batches of 32" };

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

static int spill_measure(const struct sl_allocator *a, uint64_t n, uint64_t ops, unsigned runs,
			 const char *dir)
{
	double ns[NSPILL][NSP][MAX_RUNS], med[NSPILL][NSP];
	uint64_t sum[NSPILL][NSP] = { { 0 } };
	size_t budget = 0, spilled[NSPILL] = { 0 };
	char path[4096];

	for (int c = 0; c < NSPILL; c++) {
		struct tab x;
		struct rng r = { SEED };
		int rc = tab_open(&x, c == S_PLAIN ? T_PLAIN : T_STATE, a);
		uint64_t v[2];

		if (rc < 0)
			return rc;
		if (c == S_URING || c == S_POSIX) {
			struct sli_spill_conf conf = { .budget = budget,
						       .io = c == S_URING ? SLI_IO_URING
									  : SLI_IO_POSIX };

			snprintf(path, sizeof(path), "%s/bench-state-spill-%d", dir, (int)getpid());
			conf.dir = path;
			if ((rc = sli_table_set_spill(x.t, &conf)) < 0) {
				fprintf(stderr, "bench_state: spill (%s) in %s: %s\n",
					spill_name[c], path, sl_strerror(rc));
				tab_close(&x);
				if (c == S_URING)
					continue;
				return rc;
			}
		}
		for (uint64_t i = 0; i < n; i++) {
			v[0] = i;
			v[1] = ~i;
			if ((rc = tab_put(&x, key_of(i), v)) < 0) {
				tab_close(&x);
				return rc;
			}
		}
		if (c == S_MEM) {
			struct sli_table_stats st;

			sli_table_stats(x.t, &st);
			budget = st.resident / 10;
		}
		for (unsigned run = 0; run < runs; run++) {
			for (int ph = 0; ph < NSP; ph++) {
				uint64_t t0 = bench_now_ns(), s = 0;

				r.s = SEED + run;
				if (ph == SP_GET) {
					for (uint64_t i = 0; i < ops; i++)
						s += tab_get(&x, key_of(rng_below(&r, n)));
				} else if (ph == SP_PUT) {
					for (uint64_t i = 0; i < ops; i++) {
						uint64_t k = rng_below(&r, n);

						v[0] = k;
						v[1] = ~k;
						s += (uint64_t)tab_put(&x, key_of(k), v) == 0;
					}
				} else {
					s = batch_gets(&x, &r, ops < n ? ops : n);
				}
				ns[c][ph][run] = (double)(bench_now_ns() - t0) / (double)ops;
				sum[c][ph] = s;
			}
		}
		if (x.t != NULL) {
			struct sli_table_stats st;

			sli_table_stats(x.t, &st);
			spilled[c] = st.spilled;
		}
		tab_close(&x);
		rmdir(path);
		for (int ph = 0; ph < NSP; ph++) {
			qsort(ns[c][ph], runs, sizeof(double), cmp_double);
			med[c][ph] = ns[c][ph][runs / 2];
		}
	}
	for (int c = 1; c < NSPILL; c++)
		for (int ph = 0; ph < NSP - 1; ph++)
			if (med[c][ph] > 0 && sum[c][ph] != sum[S_MEM][ph]) {
				fprintf(stderr, "bench_state: spill: checksum mismatch (%s, %s)\n",
					spill_name[c], sp_phase[ph]);
				return -EIO;
			}
	printf("\nSpilling: %llu keys, budget %zu B (a tenth of the in-memory table), %llu ops "
	       "per phase, median of %u runs, one core\n",
	       (unsigned long long)n, budget, (unsigned long long)ops, runs);
	printf("%-24s %-20s %10s %10s %10s %10s\n", "table", "phase", "ns/op", "Mops/s",
	       "vs memory", "vs plain");
	for (int c = 0; c < NSPILL; c++) {
		for (int ph = 0; ph < NSP; ph++) {
			if (med[c][ph] <= 0)
				continue;
			printf("%-24s %-20s %10.1f %10.3f %10.3f %10.3f\n", spill_name[c],
			       sp_phase[ph], med[c][ph], 1e3 / med[c][ph],
			       med[S_MEM][ph] / med[c][ph], med[S_PLAIN][ph] / med[c][ph]);
		}
		if (c >= S_URING)
			printf("%-24s %zu of %llu entries on disk\n", "", spilled[c],
			       (unsigned long long)n);
	}
	if (med[S_URING][SP_GET] > 0)
		for (int ph = 0; ph < NSP; ph++)
			printf("io_uring / posix, %-20s %.3f\n", sp_phase[ph],
			       med[S_POSIX][ph] / med[S_URING][ph]);
	return 0;
}

/*
 * Namespaced (map-like) state: n / 8 keys with 8 namespaces each (one
 * ring per key, spilled as one record), in memory and with a budget of a
 * tenth of that (~90% on disk), io_uring against POSIX in the same run.
 * Phases: gets of a random (key, namespace), puts of existing ones, gets
 * in batches of 32 (8 keys x 4 namespaces: a batch's rings are read
 * together). An access to a spilled ring brings back all 8 entries.
 */
enum { N_MEM, N_URING, N_POSIX, NNSC };
static const char *const ns_name[NNSC] = { "map state in memory", "map spill, io_uring",
					   "map spill, posix" };
enum { NS_PER_KEY = 8 };

static struct sli_skey ns_key(uint64_t *kbuf, uint64_t k, unsigned ns, unsigned char *nb)
{
	*kbuf = key_of(k);
	nb[0] = (unsigned char)ns;
	nb[1] = 'm';
	return (struct sli_skey){
		.hash = sli_hash64(kbuf, 8, 0), .key = kbuf, .key_len = 8, .ns = nb, .ns_len = 2
	};
}

static uint64_t ns_phase(struct sli_table *t, int ph, uint64_t nk, uint64_t ops, struct rng *r)
{
	uint64_t s = 0, kb[BATCH], v[2];
	unsigned char nb[BATCH][2];
	struct sli_skey ks[BATCH];
	struct sli_lookup out[BATCH];
	const uint64_t *p;

	for (uint64_t i = 0; i < ops; i += ph == SP_BATCH ? BATCH : 1) {
		uint64_t k = rng_below(r, nk);
		unsigned ns = (unsigned)rng_below(r, NS_PER_KEY);

		if (ph == SP_GET) {
			ks[0] = ns_key(&kb[0], k, ns, nb[0]);
			p = sli_table_get(t, &ks[0], 0, SLI_TTL_KEEP, NULL);
			s += p != NULL ? p[0] + p[1] : 0;
		} else if (ph == SP_PUT) {
			ks[0] = ns_key(&kb[0], k, ns, nb[0]);
			v[0] = k;
			v[1] = ns;
			s += sli_table_put(t, &ks[0], v, sizeof(v), SLI_TTL_NONE) == 0;
		} else {
			for (unsigned j = 0; j < BATCH; j++) {
				if (j % 4 == 0 && j != 0)
					k = rng_below(r, nk);
				ks[j] =
				    ns_key(&kb[j], k, (unsigned)rng_below(r, NS_PER_KEY), nb[j]);
			}
			if (sli_table_lookup_batch(t, BATCH, ks, 0, SLI_TTL_KEEP, out) < 0)
				return 0;
			for (unsigned j = 0; j < BATCH; j++) {
				p = out[j].value;
				s += p != NULL ? p[0] + p[1] : 0;
			}
		}
	}
	return s;
}

static int ns_measure(const struct sl_allocator *a, uint64_t n, uint64_t ops, unsigned runs,
		      const char *dir)
{
	double ns[NNSC][NSP][MAX_RUNS], med[NNSC][NSP];
	uint64_t sum[NNSC][NSP] = { { 0 } }, nk = n / NS_PER_KEY;
	size_t budget = 0;
	struct sli_table_stats st[NNSC], fill[NNSC];
	char path[4096];

	memset(med, 0, sizeof(med));
	for (int c = 0; c < NNSC; c++) {
		struct sli_table *t;
		struct rng r;
		int rc = sli_table_create(a, 128, 0, 127, &t);

		if (rc < 0)
			return rc;
		path[0] = '\0';
		if (c != N_MEM) {
			struct sli_spill_conf conf = { .budget = budget,
						       .io = c == N_URING ? SLI_IO_URING
									  : SLI_IO_POSIX };

			snprintf(path, sizeof(path), "%s/bench-state-ns-%d", dir, (int)getpid());
			conf.dir = path;
			if ((rc = sli_table_set_spill(t, &conf)) < 0) {
				fprintf(stderr, "bench_state: spill (%s) in %s: %s\n", ns_name[c],
					path, sl_strerror(rc));
				sli_table_destroy(t);
				if (c == N_URING)
					continue;
				return rc;
			}
		}
		for (uint64_t k = 0; k < nk; k++) {
			for (unsigned j = 0; j < NS_PER_KEY; j++) {
				uint64_t kb, v[2] = { k, j };
				unsigned char nb[2];
				struct sli_skey key = ns_key(&kb, k, j, nb);

				if ((rc = sli_table_put(t, &key, v, sizeof(v), SLI_TTL_NONE)) < 0) {
					sli_table_destroy(t);
					return rc;
				}
			}
		}
		sli_table_stats(t, &fill[c]);
		if (c == N_MEM)
			budget = fill[c].resident / 10;
		for (unsigned run = 0; run < runs; run++) {
			for (int ph = 0; ph < NSP; ph++) {
				uint64_t t0 = bench_now_ns();

				r.s = SEED + run;
				sum[c][ph] = ns_phase(t, ph, nk, ops, &r);
				ns[c][ph][run] = (double)(bench_now_ns() - t0) / (double)ops;
			}
		}
		sli_table_stats(t, &st[c]);
		sli_table_destroy(t);
		if (path[0] != '\0')
			rmdir(path);
		for (int ph = 0; ph < NSP; ph++) {
			qsort(ns[c][ph], runs, sizeof(double), cmp_double);
			med[c][ph] = ns[c][ph][runs / 2];
		}
	}
	for (int c = 1; c < NNSC; c++)
		for (int ph = 0; ph < NSP; ph++)
			if (med[c][ph] > 0 && sum[c][ph] != sum[N_MEM][ph]) {
				fprintf(stderr,
					"bench_state: map spill: checksum mismatch (%s, %s)\n",
					ns_name[c], sp_phase[ph]);
				return -EIO;
			}
	printf("\nMap state (namespaced entries): %llu keys x %d namespaces, budget %zu B (a "
	       "tenth), %llu ops per phase, median of %u runs, one core\n",
	       (unsigned long long)nk, NS_PER_KEY, budget, (unsigned long long)ops, runs);
	printf("%-24s %-20s %10s %10s %10s\n", "table", "phase", "ns/op", "Mops/s", "vs memory");
	for (int c = 0; c < NNSC; c++) {
		for (int ph = 0; ph < NSP; ph++)
			if (med[c][ph] > 0)
				printf("%-24s %-20s %10.1f %10.3f %10.3f\n", ns_name[c],
				       sp_phase[ph], med[c][ph], 1e3 / med[c][ph],
				       med[N_MEM][ph] / med[c][ph]);
		if (c != N_MEM && med[c][0] > 0)
			printf("%-24s %zu of %zu entries on disk after the fill, %zu at the end "
			       "(gets bring rings back, puts evict), %llu ring reloads, %llu reads "
			       "in %llu batches\n",
			       "", fill[c].spilled, st[c].entries, st[c].spilled,
			       (unsigned long long)st[c].ring_reloads,
			       (unsigned long long)st[c].spill_reads,
			       (unsigned long long)st[c].spill_batches);
	}
	if (med[N_URING][SP_GET] > 0)
		for (int ph = 0; ph < NSP; ph++)
			printf("map: io_uring / posix, %-20s %.3f\n", sp_phase[ph],
			       med[N_POSIX][ph] / med[N_URING][ph]);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t n = 10000000;
	unsigned runs = 5;
	const char *json = NULL;
	const struct sl_allocator *a = sl_alloc_default();
	struct sl_allocator *numa = NULL;
	struct sl_topo *topo = NULL;
	struct sl_topo_cpu cpu = { .pu = -1, .node = -1 };
	struct result *res;
	char err[256] = "";
	int rc;

	if (parse_args(argc, argv, &n, &runs, &json) < 0)
		return 2;
	rc = sl_topo_create(NULL, err, sizeof(err), &topo);
	if (rc < 0) {
		fprintf(stderr, "bench_state: topology: %s\n", err[0] ? err : sl_strerror(rc));
		return 1;
	}
	sl_topo_cpu(topo, 0, &cpu);
	rc = sl_numa_pin_thread(topo, cpu.pu);
	if (rc < 0)
		fprintf(stderr, "bench_state: cannot pin to PU %d (%s); running unpinned\n", cpu.pu,
			sl_strerror(rc));
	rc = sl_numa_allocator_create(topo, cpu.node, &numa);
	if (rc < 0)
		fprintf(stderr, "bench_state: NUMA allocator on node %d: %s; using %s\n", cpu.node,
			sl_strerror(rc), a->name);
	else
		a = numa;
	res = calloc(NTAB, sizeof(*res));
	rc = res == NULL ? -ENOMEM : measure(a, n, runs, res);
	if (rc == 0) {
		print_table(res, n, runs, cpu.pu, cpu.node, a->name);
		if (json != NULL &&
		    (rc = write_json(json, res, n, runs, cpu.pu, cpu.node, a->name)) < 0)
			fprintf(stderr, "bench_state: %s: %s\n", json, sl_strerror(rc));
	}
	if (rc == 0 && spill_keys >= BATCH && spill_ops > 0)
		rc = spill_measure(a, spill_keys, spill_ops, runs, spill_dir);
	if (rc == 0 && spill_keys >= BATCH * NS_PER_KEY && spill_ops > 0)
		rc = ns_measure(a, spill_keys, spill_ops, runs, spill_dir);
	free(res);
	sl_numa_allocator_destroy(numa);
	sl_topo_destroy(topo);
	return rc < 0 ? 1 : 0;
}
