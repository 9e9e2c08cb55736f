/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_ring.c — SPSC ring throughput across two pinned cores, Sluice's
 * sl_ring side by side with DPDK's rte_ring (SP/SC, same capacity, same
 * burst sizes) in the same process, runs interleaved so that machine
 * noise hits both alike.
 *
 * For each burst size the producer enqueues N pointer-sized items in
 * bursts (retrying the remainder when the ring is full) and the consumer
 * dequeues bursts of the same size until it has all N, checking the
 * sequence so that neither side can cheat. Time runs from the start
 * signal until the consumer has the last item.
 *
 * Output: a table (median items/s and ns/item of --runs runs, and the
 * sl_ring / rte_ring throughput ratio) and, with --json PATH, the same as
 * JSON including every run.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sl_config.h>
#include <sluice/sl_error.h>
#include <sluice/sl_numa.h>
#include <sluice/sl_ring.h>

#if SL_HAVE_DPDK
#include <rte_ring.h>
#endif

#include "bench_common.h"

#define MAX_RUNS  BENCH_MAX_RUNS
#define MAX_BURST 256

enum impl { IMPL_SL, IMPL_RTE, IMPL_COUNT };
static const char *const impl_names[IMPL_COUNT] = { "sl_ring", "rte_ring" };

struct run {
	enum impl impl;
	unsigned burst;
	uint64_t items;
	void *ring;
	const struct sl_topo *topo;
	int prod_pu, cons_pu;
	_Atomic int ready; /* threads that are pinned and waiting */
	_Atomic int go;
	uint64_t t_start, t_end;
	uint64_t bad; /* sequence errors seen by the consumer */
	int pin_rc;
};

static void wait_for_go(struct run *r)
{
	/* Release/acquire pair with main's go store: run fields are set up. */
	atomic_fetch_add_explicit(&r->ready, 1, memory_order_release);
	while (!atomic_load_explicit(&r->go, memory_order_acquire))
		bench_cpu_relax();
}

/*
 * The loops are written once per implementation (through this macro) so
 * that each ring's inline fast path is compiled into its own loop, as it
 * would be in an application, instead of behind a function pointer.
 */
#define DEFINE_LOOPS(tag, ring_t, ENQ, DEQ)                                      \
	static void *producer_##tag(void *arg)                                   \
	{                                                                        \
		struct run *r = arg;                                             \
		ring_t *ring = r->ring;                                          \
		void *buf[MAX_BURST];                                            \
		uint64_t next = 1;                                               \
		if (r->topo)                                                     \
			r->pin_rc |= sl_numa_pin_thread(r->topo, r->prod_pu);    \
		wait_for_go(r);                                                  \
		r->t_start = bench_now_ns();                                     \
		while (next <= r->items) {                                       \
			unsigned want = r->burst, done = 0;                      \
			if (want > r->items - next + 1)                          \
				want = (unsigned)(r->items - next + 1);          \
			for (unsigned i = 0; i < want; i++)                      \
				buf[i] = (void *)(uintptr_t)(next + i);          \
			while (done < want) {                                    \
				unsigned n = ENQ(ring, buf + done, want - done); \
				if (n == 0)                                      \
					bench_cpu_relax();                       \
				done += n;                                       \
			}                                                        \
			next += want;                                            \
		}                                                                \
		return NULL;                                                     \
	}                                                                        \
	static void *consumer_##tag(void *arg)                                   \
	{                                                                        \
		struct run *r = arg;                                             \
		ring_t *ring = r->ring;                                          \
		void *buf[MAX_BURST];                                            \
		uint64_t expect = 1, bad = 0;                                    \
		if (r->topo)                                                     \
			r->pin_rc |= sl_numa_pin_thread(r->topo, r->cons_pu);    \
		wait_for_go(r);                                                  \
		while (expect <= r->items) {                                     \
			unsigned n = DEQ(ring, buf, r->burst);                   \
			if (n == 0) {                                            \
				bench_cpu_relax();                               \
				continue;                                        \
			}                                                        \
			for (unsigned i = 0; i < n; i++)                         \
				bad += (uintptr_t)buf[i] != expect + i;          \
			expect += n;                                             \
		}                                                                \
		r->t_end = bench_now_ns();                                       \
		r->bad = bad;                                                    \
		return NULL;                                                     \
	}

#define SL_ENQ(r, b, n) sl_ring_enqueue_burst(r, b, n)
#define SL_DEQ(r, b, n) sl_ring_dequeue_burst(r, b, n)
DEFINE_LOOPS(sl, struct sl_ring, SL_ENQ, SL_DEQ)

#if SL_HAVE_DPDK
#define RTE_ENQ(r, b, n) rte_ring_sp_enqueue_burst(r, b, n, NULL)
#define RTE_DEQ(r, b, n) rte_ring_sc_dequeue_burst(r, b, n, NULL)
DEFINE_LOOPS(rte, struct rte_ring, RTE_ENQ, RTE_DEQ)
#endif

/* Create a ring of @size usable slots for @impl. */
static void *ring_new(enum impl impl, uint32_t size)
{
	if (impl == IMPL_SL) {
		struct sl_ring *r;

		return sl_ring_create(size, "bench", NULL, &r) == 0 ? r : NULL;
	}
#if SL_HAVE_DPDK
	/*
	 * rte_ring_init() on our own memory: no EAL, hugepages or memzones
	 * needed, and the enqueue/dequeue code is the same inline code as
	 * for a ring from rte_ring_create(). RING_F_EXACT_SZ gives exactly
	 * @size usable slots, like sl_ring.
	 */
	unsigned flags = RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ;
	/* With RING_F_EXACT_SZ DPDK allocates the next power of two above size. */
	ssize_t bytes = rte_ring_get_memsize_elem(sizeof(void *), 2 * size);
	struct rte_ring *rr;

	if (bytes < 0)
		return NULL;
	rr = aligned_alloc(SL_RING_ALIGN,
			   ((size_t)bytes + SL_RING_ALIGN - 1) & ~(size_t)(SL_RING_ALIGN - 1));
	if (rr == NULL)
		return NULL;
	if (rte_ring_init(rr, "bench", size, flags) != 0 || rte_ring_get_capacity(rr) != size) {
		free(rr);
		return NULL;
	}
	return rr;
#else
	return NULL;
#endif
}

static void ring_free(enum impl impl, void *ring)
{
	if (impl == IMPL_SL)
		sl_ring_destroy(ring);
	else
		free(ring);
}

/* One timed run. Returns items/s, or a negative value on failure. */
static double run_once(enum impl impl, unsigned burst, uint64_t items, uint32_t ring_size,
		       const struct sl_topo *topo, int pu0, int pu1)
{
	struct run r = { .impl = impl,
			 .burst = burst,
			 .items = items,
			 .topo = topo,
			 .prod_pu = pu0,
			 .cons_pu = pu1 };
	void *(*prod)(void *) = producer_sl, *(*cons)(void *) = consumer_sl;
	pthread_t tp, tc;

#if SL_HAVE_DPDK
	if (impl == IMPL_RTE) {
		prod = producer_rte;
		cons = consumer_rte;
	}
#endif
	r.ring = ring_new(impl, ring_size);
	if (r.ring == NULL)
		return -ENOMEM;
	atomic_init(&r.ready, 0);
	atomic_init(&r.go, 0);
	if (pthread_create(&tc, NULL, cons, &r) != 0)
		return -EAGAIN;
	if (pthread_create(&tp, NULL, prod, &r) != 0) {
		atomic_store(&r.go, 1);
		r.items = 0;
		pthread_join(tc, NULL);
		return -EAGAIN;
	}
	/* Acquire pairs with the threads' fetch_add release in wait_for_go(). */
	while (atomic_load_explicit(&r.ready, memory_order_acquire) < 2)
		bench_cpu_relax();
	atomic_store_explicit(&r.go, 1, memory_order_release);
	pthread_join(tp, NULL);
	pthread_join(tc, NULL);
	ring_free(impl, r.ring);
	if (r.bad) {
		fprintf(stderr, "bench_ring: %s delivered %llu items out of sequence\n",
			impl_names[impl], (unsigned long long)r.bad);
		return -EPROTO;
	}
	if (r.pin_rc < 0)
		fprintf(stderr, "bench_ring: pinning failed (%s); numbers are unpinned\n",
			sl_strerror(r.pin_rc));
	return (double)items * 1e9 / (double)(r.t_end - r.t_start);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_ring [--items N] [--runs R] [--ring-size S] [--json PATH]\n"
		   "  Measures SPSC ring throughput (sl_ring vs rte_ring) across two pinned cores\n"
		   "  for bursts 1, 8, 32, 256. Defaults: 20M items (bursts >= 8), 4M (burst 1),\n"
		   "  5 runs, 1024 slots.\n");
}

int main(int argc, char **argv)
{
	static const unsigned bursts[] = { 1, 8, 32, 256 };
	static const struct option longopts[] = {
		{ "items", required_argument, NULL, 'n' },
		{ "ring-size", required_argument, NULL, 's' },
		BENCH_OPTS_COMMON,
		{ NULL, 0, NULL, 0 },
	};
	struct bench_args args = { .prog = "bench_ring", .usage = usage, .runs = 5 };
	uint64_t items = 20000000;
	unsigned runs;
	uint32_t ring_size = 1024;
	const char *json_path;
	double results[SL_ARRAY_SIZE(bursts)][IMPL_COUNT][MAX_RUNS];
	double med[SL_ARRAY_SIZE(bursts)][IMPL_COUNT];
	struct sl_topo *topo = NULL;
	struct sl_topo_cpu cpus[2];
	char err[256];
	int c, npus, nimpl = SL_HAVE_DPDK ? 2 : 1;

	while ((c = bench_getopt(argc, argv, longopts, &args)) != -1) {
		char *end;

		switch (c) {
		case 'n':
			items = strtoull(optarg, &end, 10);
			if (*end || items < 1000) {
				fprintf(stderr, "bench_ring: bad --items '%s' (>= 1000)\n", optarg);
				return 2;
			}
			break;
		case 's':
			ring_size = (uint32_t)strtoul(optarg, &end, 10);
			if (*end || sl_ring_memsize(ring_size) < 0 || ring_size < MAX_BURST) {
				fprintf(stderr,
					"bench_ring: bad --ring-size '%s' (a power of two >= %d)\n",
					optarg, MAX_BURST);
				return 2;
			}
			break;
		}
	}
	runs = args.runs;
	json_path = args.json;

	if (sl_topo_create(NULL, err, sizeof(err), &topo) < 0) {
		fprintf(stderr, "bench_ring: topology: %s\n", err);
		return 1;
	}
	npus = (int)sl_topo_ncpus(topo);
	if (npus >= 2) {
		/* Two distinct physical cores when there are any. */
		if (sl_place_workers(topo, 2, SL_PLACE_PACK, cpus, err, sizeof(err)) < 0) {
			fprintf(stderr, "bench_ring: placement: %s\n", err);
			return 1;
		}
	} else {
		sl_topo_cpu(topo, 0, &cpus[0]);
		cpus[1] = cpus[0];
		fprintf(stderr, "bench_ring: only one usable PU: both threads share it, so the "
				"figures measure time-slicing, not the ring\n");
	}
	printf("SPSC ring, %u slots, producer on PU %d (node %d), consumer on PU %d (node %d), "
	       "median of %u runs\n",
	       ring_size, cpus[0].pu, cpus[0].node, cpus[1].pu, cpus[1].node, runs);
	if (!SL_HAVE_DPDK)
		printf("DPDK not built in: rte_ring column empty\n");

	for (unsigned b = 0; b < SL_ARRAY_SIZE(bursts); b++) {
		uint64_t n = bursts[b] == 1 ? items / 5 : items;

		for (unsigned k = 0; k < runs; k++)
			for (int i = 0; i < nimpl; i++) {
				/* Alternate who goes first so drift does not favour one. */
				int impl = (k % 2) ? nimpl - 1 - i : i;
				double v = run_once((enum impl)impl, bursts[b], n, ring_size, topo,
						    cpus[0].pu, cpus[1].pu);

				if (v < 0) {
					fprintf(stderr, "bench_ring: %s run failed: %s\n",
						impl_names[impl], sl_strerror((int)v));
					return 1;
				}
				results[b][impl][k] = v;
			}
		for (int i = 0; i < nimpl; i++)
			med[b][i] = bench_median_of(results[b][i], runs);
	}

	printf("\n%6s  %14s %9s  %14s %9s  %9s\n", "burst", "sl_ring item/s", "ns/item",
	       "rte_ring item/s", "ns/item", "sl/rte");
	for (unsigned b = 0; b < SL_ARRAY_SIZE(bursts); b++) {
		printf("%6u  %14.3e %9.2f", bursts[b], med[b][IMPL_SL], 1e9 / med[b][IMPL_SL]);
		if (nimpl == 2)
			printf("  %14.3e %9.2f  %9.3f\n", med[b][IMPL_RTE], 1e9 / med[b][IMPL_RTE],
			       med[b][IMPL_SL] / med[b][IMPL_RTE]);
		else
			printf("  %14s %9s  %9s\n", "-", "-", "-");
	}

	if (json_path) {
		FILE *f = bench_json_open("bench_ring", json_path);

		if (f == NULL)
			return 1;
		fprintf(f,
			"{\"benchmark\":\"ring\",\"ring_size\":%u,\"runs\":%u,\"items\":%llu,"
			"\"producer_pu\":%d,\"consumer_pu\":%d,\"dpdk\":%s,\"results\":[",
			ring_size, runs, (unsigned long long)items, cpus[0].pu, cpus[1].pu,
			nimpl == 2 ? "true" : "false");
		for (unsigned b = 0; b < SL_ARRAY_SIZE(bursts); b++) {
			fprintf(f, "%s{\"burst\":%u", b ? "," : "", bursts[b]);
			for (int i = 0; i < nimpl; i++) {
				fprintf(f, ",\"%s\":{\"median_items_per_s\":%.1f,\"runs\":",
					impl_names[i], med[b][i]);
				bench_json_array(f, results[b][i], runs, 1, ",");
				fprintf(f, "}");
			}
			if (nimpl == 2)
				fprintf(f, ",\"ratio_sl_over_rte\":%.4f", med[b][0] / med[b][1]);
			fprintf(f, "}");
		}
		fprintf(f, "]}\n");
		if (bench_json_close(f, "bench_ring", json_path) < 0)
			return 1;
	}
	sl_topo_destroy(topo);
	return 0;
}
