/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_mem.c — NUMA-local memory: the mimalloc-heap allocator (sizes,
 * alignments, contents, cross-thread free), node-bound regions, where
 * touched pages live, and every documented error return.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mimalloc.h>

#include <sluice/sl_alloc.h>
#include <sluice/sl_common.h>
#include <sluice/sl_numa.h>

#include "sl_test.h"

static struct sl_topo *machine(void)
{
	struct sl_topo *t = NULL;

	CU_ASSERT_EQUAL(sl_topo_create(NULL, NULL, 0, &t), 0);
	return t;
}

/* Pin to the first usable PU, so that first touch is on its node; returns that node. */
static int pin_first(const struct sl_topo *t, cpu_set_t *saved)
{
	struct sl_topo_cpu c;

	CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof(*saved), saved), 0);
	CU_ASSERT_EQUAL_FATAL(sl_topo_cpu(t, 0, &c), 0);
	CU_ASSERT_EQUAL_FATAL(sl_numa_pin_thread(t, c.pu), 0);
	return c.node;
}

static void test_allocator_sizes(void)
{
	static const size_t sizes[] = { 1, 8, 63, 64, 100, 256, 4095, 4096, 65536, 1 << 20 };
	static const size_t aligns[] = { sizeof(void *), 64, 4096 };
	struct sl_topo *t = machine();
	struct sl_allocator *a = NULL;
	void *blocks[SL_ARRAY_SIZE(sizes) * SL_ARRAY_SIZE(aligns)];
	unsigned n = 0;
	cpu_set_t saved;
	int node;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	node = pin_first(t, &saved);
	CU_ASSERT_EQUAL_FATAL(sl_numa_allocator_create(t, node, &a), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL(strstr(a->name, "mimalloc node"));

	/* Keep them all live while writing, so that overlapping blocks would show. */
	for (unsigned s = 0; s < SL_ARRAY_SIZE(sizes); s++) {
		for (unsigned k = 0; k < SL_ARRAY_SIZE(aligns); k++) {
			unsigned char *p = a->alloc(a->ctx, sizes[s], aligns[k]);

			CU_ASSERT_PTR_NOT_NULL_FATAL(p);
			CU_ASSERT_EQUAL((uintptr_t)p % aligns[k], 0);
			memset(p, (int)(n & 0xff), sizes[s]);
			blocks[n++] = p;
		}
	}
	n = 0;
	for (unsigned s = 0; s < SL_ARRAY_SIZE(sizes); s++) {
		for (unsigned k = 0; k < SL_ARRAY_SIZE(aligns); k++, n++) {
			const unsigned char *p = blocks[n];

			CU_ASSERT_EQUAL(p[0], n & 0xff);
			CU_ASSERT_EQUAL(p[sizes[s] - 1], n & 0xff);
			CU_ASSERT_EQUAL(sl_numa_memory_node(t, p), node);
			a->free(a->ctx, blocks[n]);
		}
	}
	a->free(a->ctx, NULL);

	/* Through the generic wrappers, as the engine uses it. */
	for (unsigned i = 0; i < 1000; i++) {
		size_t size = 16 + (size_t)i * 37;
		unsigned char *p = sl_alloc_aligned(a, size, i % 2 ? 64 : 4096);

		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		p[0] = p[size - 1] = 0x5a;
		sl_alloc_free(a, p);
	}
	sl_numa_allocator_destroy(a);
	CU_ASSERT_EQUAL(sched_setaffinity(0, sizeof(saved), &saved), 0);
	sl_topo_destroy(t);
}

struct cross {
	struct sl_allocator *a;
	void *blocks[64];
};

static void *free_all(void *arg)
{
	struct cross *x = arg;

	for (unsigned i = 0; i < SL_ARRAY_SIZE(x->blocks); i++)
		x->a->free(x->a->ctx, x->blocks[i]);
	return NULL;
}

static void test_allocator_cross_thread_free(void)
{
	struct sl_topo *t = machine();
	struct cross x = { 0 };
	pthread_t th;
	struct sl_topo_cpu c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL_FATAL(sl_topo_cpu(t, 0, &c), 0);
	CU_ASSERT_EQUAL_FATAL(sl_numa_allocator_create(t, c.node, &x.a), 0);
	for (unsigned i = 0; i < SL_ARRAY_SIZE(x.blocks); i++) {
		x.blocks[i] = x.a->alloc(x.a->ctx, 256 + i, 64);
		CU_ASSERT_PTR_NOT_NULL_FATAL(x.blocks[i]);
		memset(x.blocks[i], 1, 256 + i);
	}
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, free_all, &x), 0);
	CU_ASSERT_EQUAL(pthread_join(th, NULL), 0);
	sl_numa_allocator_destroy(x.a);
	sl_topo_destroy(t);
}

static void test_destroy_with_live_blocks(void)
{
	struct sl_topo *t = machine();
	struct sl_allocator *a = NULL;
	struct sl_topo_cpu c;
	unsigned char *p;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL_FATAL(sl_topo_cpu(t, 0, &c), 0);
	CU_ASSERT_EQUAL_FATAL(sl_numa_allocator_create(t, c.node, &a), 0);
	p = a->alloc(a->ctx, 1000, 64);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	memset(p, 2, 1000);
	/* The block moves to mimalloc's default heap: still valid, still freeable. */
	sl_numa_allocator_destroy(a);
	CU_ASSERT_EQUAL(p[999], 2);
	mi_free(p);
	sl_topo_destroy(t);
}

static void test_onnode(void)
{
	struct sl_topo *t = machine();
	struct sl_topo_cpu c;
	int last_node = -1;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (unsigned i = 0; i < sl_topo_ncpus(t); i++) {
		const size_t size = 8u << 20;
		unsigned char *p;

		CU_ASSERT_EQUAL_FATAL(sl_topo_cpu(t, i, &c), 0);
		if (c.node == last_node)
			continue;
		last_node = c.node;
		p = sl_numa_alloc_onnode(t, c.node, size);
		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		CU_ASSERT_EQUAL((uintptr_t)p % 4096, 0);
		p[0] = 1;
		CU_ASSERT_EQUAL(sl_numa_memory_node(t, p), c.node);
		/* 6 MiB further on, beyond any huge page the first touch may have made */
		CU_ASSERT_EQUAL(sl_numa_memory_node(t, p + size - 4096), -ENOENT);
		sl_numa_free(t, p, size);
	}
	sl_numa_free(t, NULL, 0);
	sl_topo_destroy(t);
}

static void test_errors(void)
{
	struct sl_topo *t = machine(), *syn = NULL;
	struct sl_allocator *a = (struct sl_allocator *)&a;
	int x = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL_FATAL(sl_topo_create("pack:2 numa:1 core:8 pu:2", NULL, 0, &syn), 0);

	CU_ASSERT_EQUAL(sl_numa_allocator_create(syn, 0, &a), -ENOTSUP);
	CU_ASSERT_PTR_NULL(a);
	CU_ASSERT_EQUAL(sl_numa_allocator_create(t, 99, &a), -ENOENT);
	CU_ASSERT_EQUAL(sl_numa_allocator_create(t, -1, &a), -ENOENT);
	CU_ASSERT_EQUAL(sl_numa_allocator_create(NULL, 0, &a), -EINVAL);
	CU_ASSERT_EQUAL(sl_numa_allocator_create(t, 0, NULL), -EINVAL);
	sl_numa_allocator_destroy(NULL);

	errno = 0;
	CU_ASSERT_PTR_NULL(sl_numa_alloc_onnode(syn, 0, 4096));
	CU_ASSERT_EQUAL(errno, ENOTSUP);
	CU_ASSERT_PTR_NULL(sl_numa_alloc_onnode(t, 99, 4096));
	CU_ASSERT_EQUAL(errno, ENOENT);
	CU_ASSERT_PTR_NULL(sl_numa_alloc_onnode(t, 0, 0));
	CU_ASSERT_EQUAL(errno, EINVAL);

	CU_ASSERT_EQUAL(sl_numa_memory_node(syn, &x), -ENOTSUP);
	CU_ASSERT_EQUAL(sl_numa_memory_node(t, NULL), -EINVAL);

	sl_topo_destroy(syn);
	sl_topo_destroy(t);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "allocator: sizes, alignments, contents, node", test_allocator_sizes },
		{ "allocator: free from another thread", test_allocator_cross_thread_free },
		{ "allocator: destroy with live blocks", test_destroy_with_live_blocks },
		{ "alloc_onnode: pages on the node", test_onnode },
		{ "error returns", test_errors },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("numa-mem", tests);
}
