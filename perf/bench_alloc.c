/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_alloc.c — what a block of memory costs: glibc malloc (the
 * baseline), the NUMA allocator (a private mimalloc heap, thread pinned
 * and memory-bound to its node) and node-bound regions from hwloc, for
 * batch-sized (64 KiB) and small (256 B) blocks.
 *
 * One op is alloc + touch + free, done in rounds of BATCH live blocks so
 * that the allocator sees more than a single block ping-ponging; touch is
 * one write per 4 KiB page and one to the last byte, so allocators that
 * hand back fresh pages pay their page faults. The thread is pinned to
 * the first usable PU throughout, and the allocators' measurements are
 * interleaved run by run so that machine noise hits them alike.
 *
 * glibc is called through __libc_malloc/__libc_free: linking Debian's
 * libmimalloc replaces the process's malloc() (and ASan replaces it in
 * sanitizer builds), so malloc() itself is reported as a separate row
 * when it is not glibc's.
 *
 * Output: a table of medians (ns/op and the ratio to glibc measured in
 * this run) and, with --json PATH, the same plus every run as JSON.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mimalloc.h>

#include <sluice/sl_alloc.h>
#include <sluice/sl_common.h>
#include <sluice/sl_error.h>
#include <sluice/sl_numa.h>

#include "bench_common.h"

#define MAX_RUNS     BENCH_MAX_RUNS
#define BATCH	     32
#define BUDGET_NS    15000000u /* per measurement: 5 runs x 2 sizes x 4 rows ~ 0.6 s */
#define TOUCH_STRIDE 4096

#ifdef __GLIBC__
/* glibc's own allocator, whatever malloc() resolves to in this process. */
extern void *__libc_malloc(size_t size);
extern void __libc_free(void *ptr);
#define GLIBC_MALLOC __libc_malloc
#define GLIBC_FREE   __libc_free
#else
#define GLIBC_MALLOC malloc
#define GLIBC_FREE   free
#endif

struct impl {
	const char *name; /* table label */
	const char *key;  /* JSON name */
	void *(*alloc)(struct impl *im, size_t size);
	void (*free)(struct impl *im, void *p, size_t size);
	const struct sl_allocator *a;
	const struct sl_topo *topo;
	int node;
	double ns[2][MAX_RUNS]; /* [size][run] */
};

static void *glibc_alloc(struct impl *im, size_t size)
{
	(void)im;
	return GLIBC_MALLOC(size);
}

static void glibc_free(struct impl *im, void *p, size_t size)
{
	(void)im;
	(void)size;
	GLIBC_FREE(p);
}

static void *proc_alloc(struct impl *im, size_t size)
{
	(void)im;
	return malloc(size);
}

static void proc_free(struct impl *im, void *p, size_t size)
{
	(void)im;
	(void)size;
	free(p);
}

static void *numa_heap_alloc(struct impl *im, size_t size)
{
	return sl_alloc_aligned(im->a, size, SL_CACHE_LINE);
}

static void numa_heap_free(struct impl *im, void *p, size_t size)
{
	(void)size;
	sl_alloc_free(im->a, p);
}

static void *onnode_alloc(struct impl *im, size_t size)
{
	return sl_numa_alloc_onnode(im->topo, im->node, size);
}

static void onnode_free(struct impl *im, void *p, size_t size)
{
	sl_numa_free(im->topo, p, size);
}

static void touch(unsigned char *p, size_t size)
{
	for (size_t off = 0; off < size; off += TOUCH_STRIDE)
		p[off] = (unsigned char)off;
	p[size - 1] = 1;
}

/* One round: BATCH blocks allocated and touched, then all freed. */
static int round_trip(struct impl *im, size_t size)
{
	void *blocks[BATCH];

	for (unsigned i = 0; i < BATCH; i++) {
		blocks[i] = im->alloc(im, size);
		if (blocks[i] == NULL) {
			while (i-- > 0)
				im->free(im, blocks[i], size);
			return -ENOMEM;
		}
		touch(blocks[i], size);
	}
	for (unsigned i = 0; i < BATCH; i++)
		im->free(im, blocks[i], size);
	return 0;
}

/* ns per op over at least BUDGET_NS, after one warm-up round. */
static int measure(struct impl *im, size_t size, double *ns_per_op)
{
	uint64_t start, now, ops = 0;

	if (round_trip(im, size) < 0)
		return -ENOMEM;
	start = bench_now_ns();
	do {
		if (round_trip(im, size) < 0)
			return -ENOMEM;
		ops += BATCH;
		now = bench_now_ns();
	} while (now - start < BUDGET_NS);
	*ns_per_op = (double)(now - start) / (double)ops;
	return 0;
}

/* What malloc() resolves to here, or NULL when it is glibc's own. */
static const char *malloc_override(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return "malloc() = ASan";
#else
	/* calloc: gcc -O0 warns that a const void * argument reads uninitialised bytes. */
	void *p = calloc(1, 64);
	bool mi = p != NULL && mi_is_in_heap_region(p);

	free(p);
	return mi ? "malloc() = mimalloc override" : NULL;
#endif
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_alloc [--runs N] [--json PATH]\n"
		"  alloc+touch+free cost of 64 KiB and 256 B blocks: glibc malloc,\n"
		"  the NUMA mimalloc heap, and hwloc node-bound regions.\n"
		"  --runs N     runs per measurement, median reported (default 5, max %d)\n"
		"  --json PATH  also write the results as JSON\n",
		MAX_RUNS);
}

static int write_json(const char *path, struct impl *impls, unsigned nimpl, const size_t *sizes,
		      unsigned runs, int pu, int node)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -errno;
	fprintf(f,
		"{\n  \"benchmark\": \"alloc\",\n  \"unit\": \"ns/op\",\n"
		"  \"op\": \"alloc + touch (1 write per %d B) + free, %d blocks live\",\n"
		"  \"runs\": %u,\n  \"pu\": %d,\n  \"node\": %d,\n  \"results\": [",
		TOUCH_STRIDE, BATCH, runs, pu, node);
	for (unsigned s = 0; s < 2; s++) {
		double base_med = bench_median_of(impls[0].ns[s], runs);

		for (unsigned i = 0; i < nimpl; i++) {
			double med = bench_median_of(impls[i].ns[s], runs);

			fprintf(f, "%s\n    {\"block_bytes\": %zu, \"allocator\": \"%s\", ",
				s + i == 0 ? "" : ",", sizes[s], impls[i].key);
			fprintf(f, "\"ns_per_op\": %.2f, \"ratio_to_glibc\": %.3f, ", med,
				med / base_med);
			fprintf(f, "\"runs_ns_per_op\": ");
			bench_json_array(f, impls[i].ns[s], runs, 2, ", ");
			fprintf(f, "}");
		}
	}
	fprintf(f, "\n  ]\n}\n");
	if (fclose(f) != 0)
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		BENCH_OPTS_COMMON,
		{ NULL, 0, NULL, 0 },
	};
	static const size_t sizes[2] = { 64 * 1024, 256 };
	struct impl impls[4];
	struct bench_args args = { .prog = "bench_alloc", .usage = usage, .runs = 5 };
	const char *json, *override;
	struct sl_allocator *a = NULL;
	struct sl_topo *topo = NULL;
	struct sl_topo_cpu cpu;
	unsigned runs, nimpl = 0;
	char err[256] = "";
	int rc;

	while (bench_getopt(argc, argv, opts, &args) != -1)
		; /* no options of its own */
	runs = args.runs;
	json = args.json;

	rc = sl_topo_create(NULL, err, sizeof(err), &topo);
	if (rc < 0) {
		fprintf(stderr, "bench_alloc: topology: %s\n", err[0] ? err : sl_strerror(rc));
		return 1;
	}
	sl_topo_cpu(topo, 0, &cpu);
	rc = sl_numa_pin_thread(topo, cpu.pu);
	if (rc < 0)
		fprintf(stderr, "bench_alloc: cannot pin to PU %d (%s); running unpinned\n", cpu.pu,
			sl_strerror(rc));
	rc = sl_numa_allocator_create(topo, cpu.node, &a);
	if (rc < 0) {
		fprintf(stderr, "bench_alloc: NUMA allocator on node %d: %s\n", cpu.node,
			sl_strerror(rc));
		sl_topo_destroy(topo);
		return 1;
	}

	memset(impls, 0, sizeof(impls));
	impls[nimpl++] = (struct impl){
		.name = "glibc malloc", .key = "glibc", .alloc = glibc_alloc, .free = glibc_free
	};
	override = malloc_override();
	if (override != NULL)
		impls[nimpl++] = (struct impl){ .name = override,
						.key = "process_malloc",
						.alloc = proc_alloc,
						.free = proc_free };
	impls[nimpl++] = (struct impl){ .name = "sl_numa_allocator (mimalloc)",
					.key = "sl_numa_allocator",
					.alloc = numa_heap_alloc,
					.free = numa_heap_free,
					.a = a };
	impls[nimpl++] = (struct impl){ .name = "sl_numa_alloc_onnode (hwloc)",
					.key = "sl_numa_alloc_onnode",
					.alloc = onnode_alloc,
					.free = onnode_free,
					.topo = topo,
					.node = cpu.node };

	for (unsigned r = 0; r < runs; r++)
		for (unsigned s = 0; s < 2; s++)
			for (unsigned i = 0; i < nimpl; i++)
				if (measure(&impls[i], sizes[s], &impls[i].ns[s][r]) < 0) {
					fprintf(stderr, "bench_alloc: %s: out of memory\n",
						impls[i].name);
					rc = -ENOMEM;
					goto out;
				}

	printf("bench_alloc: PU %d, node %d; median of %u runs; one op = alloc + touch "
	       "(1 write per 4 KiB) + free, %d blocks live\n",
	       cpu.pu, cpu.node, runs, BATCH);
	printf("%-8s  %-30s  %10s  %8s\n", "block", "allocator", "ns/op", "vs glibc");
	for (unsigned s = 0; s < 2; s++) {
		double base_med = bench_median_of(impls[0].ns[s], runs);

		for (unsigned i = 0; i < nimpl; i++) {
			double med = bench_median_of(impls[i].ns[s], runs);

			printf("%-8s  %-30s  %10.1f  %7.2fx\n", s == 0 ? "64 KiB" : "256 B",
			       impls[i].name, med, med / base_med);
		}
	}
	if (json != NULL) {
		rc = write_json(json, impls, nimpl, sizes, runs, cpu.pu, cpu.node);
		if (rc < 0)
			fprintf(stderr, "bench_alloc: %s: %s\n", json, sl_strerror(rc));
	}
out:
	sl_numa_allocator_destroy(a);
	sl_topo_destroy(topo);
	return rc < 0 ? 1 : 0;
}
