/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mem.c — NUMA-local memory: a private mimalloc heap per worker thread
 * with the thread's memory policy bound to the worker's node, page-
 * granular regions bound with hwloc for ring and pool arenas, and the
 * question of which node a page actually lives on.
 *
 * Why bind the thread rather than the heap: mimalloc 2.0 maps its
 * segments itself, and the kernel places an anonymous page when it is
 * first touched, following the memory policy of the faulting thread. The
 * heap's owner is the thread that allocates and (almost always) first
 * writes its blocks, so binding that thread puts the heap's new pages on
 * the node. Segments mimalloc had already touched for the thread before
 * the binding stay where they are, and the binding outlives the
 * allocator: one NUMA allocator per worker thread, created right after
 * the worker is pinned.
 *
 * Where the kernel refuses memory policies (no NUMA support, or a seccomp
 * profile without set_mempolicy/mbind), we log once at info level and go
 * on unbound: a worker pinned to a PU of the node then places its pages on
 * that node by first touch, which is the same outcome on a quiet machine.
 *
 * Threads: an allocator allocates only on its creating thread (mimalloc
 * heaps are thread-local); mi_free() takes blocks from any thread. Region
 * functions and sl_numa_memory_node() may be called from any thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hwloc.h>
#include <mimalloc.h>

#include <sl_config.h>

#include <sluice/sl_common.h>
#include <sluice/sl_log.h>
#include <sluice/sl_numa.h>

#include "sli_numa.h"

struct numa_allocator {
	struct sl_allocator base; /* first: the public handle points here */
	mi_heap_t *heap;
	pthread_t owner;
	int node;
	char name[32];
};

/*
 * Set once the "cannot bind" note has been logged. Relaxed: the flag
 * only keeps the note to one line, it publishes nothing.
 */
static atomic_flag membind_noted = ATOMIC_FLAG_INIT;

static bool membind_unsupported(int err)
{
	return err == ENOSYS || err == EXDEV || err == EPERM;
}

static void note_unbound(int node, int err)
{
	if (!atomic_flag_test_and_set_explicit(&membind_noted, memory_order_relaxed))
		sl_log(SL_LOG_INFO, "numa",
		       "cannot bind memory to NUMA node %d (%s); pages go where pinned "
		       "workers first touch them",
		       node, strerror(err));
}

/*
 * A one-node nodeset for @node if it is a NUMA node of @t that we may use
 * (cgroups can forbid some with cpuset.mems); -ENOENT otherwise.
 */
static int node_set(const struct sl_topo *t, int node, hwloc_nodeset_t *out)
{
	hwloc_topology_t hw = sli_topo_hwloc(t);
	hwloc_nodeset_t ns;

	if (node < 0 || hwloc_get_numanode_obj_by_os_index(hw, (unsigned)node) == NULL ||
	    !hwloc_bitmap_isset(hwloc_topology_get_allowed_nodeset(hw), (unsigned)node))
		return -ENOENT;
	ns = hwloc_bitmap_alloc();
	if (ns == NULL)
		return -ENOMEM;
	if (hwloc_bitmap_only(ns, (unsigned)node) < 0) {
		hwloc_bitmap_free(ns);
		return -ENOMEM;
	}
	*out = ns;
	return 0;
}

/*
 * ThreadSanitizer builds allocate with libc instead: TSan intercepts
 * malloc/free and learns that a freed block may be reused by another
 * thread, but mimalloc's heaps recycle blocks through lock-free lists it
 * cannot see, so two threads touching the same block one after the other
 * look like a race. Only the allocator differs (the heap is created and
 * stays empty); the thread's membind still applies.
 */
#if SL_TSAN
static void *blk_malloc(mi_heap_t *heap, size_t size)
{
	(void)heap;
	return malloc(size);
}

static void *blk_malloc_aligned(mi_heap_t *heap, size_t size, size_t align)
{
	(void)heap;
	return aligned_alloc(align, (size + align - 1) & ~(align - 1));
}

#define blk_free(p)    free(p)
#define ALLOCATOR_KIND "libc (TSan build)"
#else
#define blk_malloc(heap, size)	       mi_heap_malloc(heap, size)
#define blk_malloc_aligned(heap, s, a) mi_heap_malloc_aligned(heap, s, a)
#define blk_free(p)		       mi_free(p)
#define ALLOCATOR_KIND		       "mimalloc"
#endif

/*
 * mimalloc's aligned entry point costs ~5 ns more than the plain one even
 * when it succeeds at once, and above 1 KiB it asks for size + align - 1,
 * which pushes a 64 KiB batch into the next size class (bench_alloc:
 * 85 vs 55 ns). Plain blocks are only promised 16-byte alignment, but
 * their pages start on cache-line boundaries and sizes that are multiples
 * of 64 keep that, so for cache-line alignment we try the plain path and
 * check; the aligned call remains the (so far never taken) fallback.
 */
static void *heap_alloc(void *ctx, size_t size, size_t align)
{
	struct numa_allocator *na = ctx;

	SL_ASSERT(pthread_equal(na->owner, pthread_self()));
	/* A mask, not %: a 64-bit divide here cost 7 ns. align is a power of two. */
	if (align <= SL_CACHE_LINE && (size & (align - 1)) == 0) {
		void *p = blk_malloc(na->heap, size);

		if (p == NULL || ((uintptr_t)p & (align - 1)) == 0)
			return p;
		blk_free(p);
	}
	return blk_malloc_aligned(na->heap, size, align);
}

static void heap_free(void *ctx, void *ptr)
{
	(void)ctx;
	blk_free(ptr); /* finds the owning heap from the block; safe from any thread */
}

int sl_numa_allocator_create(const struct sl_topo *t, int node, struct sl_allocator **out)
{
	struct numa_allocator *na;
	hwloc_nodeset_t ns = NULL;
	int rc;

	if (t == NULL || out == NULL)
		return -EINVAL;
	*out = NULL;
	if (!sli_topo_bindable(t))
		return -ENOTSUP;
	rc = node_set(t, node, &ns);
	if (rc < 0)
		return rc;
	na = calloc(1, sizeof(*na));
	if (na == NULL) {
		hwloc_bitmap_free(ns);
		return -ENOMEM;
	}
	na->heap = mi_heap_new();
	if (na->heap == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	/* Last, so that a failure leaves the thread's memory policy untouched. */
	if (hwloc_set_membind(sli_topo_hwloc(t), ns, HWLOC_MEMBIND_BIND,
			      HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET) < 0) {
		int err = errno;

		if (!membind_unsupported(err)) {
			rc = -err;
			goto fail;
		}
		note_unbound(node, err);
	}
	hwloc_bitmap_free(ns);
	na->owner = pthread_self();
	na->node = node;
	snprintf(na->name, sizeof(na->name), ALLOCATOR_KIND " node %d", node);
	na->base.alloc = heap_alloc;
	na->base.free = heap_free;
	na->base.ctx = na;
	na->base.name = na->name;
	*out = &na->base;
	return 0;
fail:
	if (na->heap != NULL)
		mi_heap_delete(na->heap);
	free(na);
	hwloc_bitmap_free(ns);
	return rc;
}

/*
 * mi_heap_delete() hands blocks still allocated to the thread's default
 * heap, where mi_free() still finds them; mi_heap_destroy() would free
 * them under their owners' feet.
 */
void sl_numa_allocator_destroy(struct sl_allocator *a)
{
	struct numa_allocator *na;

	if (a == NULL)
		return;
	SL_ASSERT(a->alloc == heap_alloc);
	na = (struct numa_allocator *)a;
	SL_ASSERT(pthread_equal(na->owner, pthread_self()));
	mi_heap_delete(na->heap);
	free(na);
}

void *sl_numa_alloc_onnode(const struct sl_topo *t, int node, size_t size)
{
	hwloc_topology_t hw;
	hwloc_nodeset_t ns = NULL;
	void *p;
	int rc, err;

	if (t == NULL || size == 0) {
		errno = EINVAL;
		return NULL;
	}
	if (!sli_topo_bindable(t)) {
		errno = ENOTSUP;
		return NULL;
	}
	rc = node_set(t, node, &ns);
	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	hw = sli_topo_hwloc(t);
	/*
	 * STRICT, so that we learn when the kernel ignores the binding and
	 * can say so once, instead of hwloc's silent fallback.
	 */
	p = hwloc_alloc_membind(hw, size, ns, HWLOC_MEMBIND_BIND,
				HWLOC_MEMBIND_BYNODESET | HWLOC_MEMBIND_STRICT);
	err = errno;
	if (p == NULL && membind_unsupported(err)) {
		note_unbound(node, err);
		p = hwloc_alloc(hw, size);
		err = errno;
	}
	hwloc_bitmap_free(ns);
	if (p == NULL)
		errno = err ? err : ENOMEM;
	return p;
}

void sl_numa_free(const struct sl_topo *t, void *ptr, size_t size)
{
	if (t == NULL || ptr == NULL)
		return;
	hwloc_free(sli_topo_hwloc(t), ptr, size);
}

/* The only NUMA node's OS index, or -1 when there are several. */
static int only_node(hwloc_topology_t hw)
{
	if (hwloc_get_nbobjs_by_type(hw, HWLOC_OBJ_NUMANODE) != 1)
		return -1;
	return (int)hwloc_get_obj_by_type(hw, HWLOC_OBJ_NUMANODE, 0)->os_index;
}

int sl_numa_memory_node(const struct sl_topo *t, const void *ptr)
{
	hwloc_topology_t hw;
	hwloc_nodeset_t ns;
	int rc;

	if (t == NULL || ptr == NULL)
		return -EINVAL;
	if (!sli_topo_bindable(t))
		return -ENOTSUP;
	hw = sli_topo_hwloc(t);
	ns = hwloc_bitmap_alloc();
	if (ns == NULL)
		return -ENOMEM;
	if (hwloc_get_area_memlocation(hw, ptr, 1, ns, HWLOC_MEMBIND_BYNODESET) < 0) {
		int err = errno;

		/* Without move_pages() the answer is still certain on one node. */
		rc = membind_unsupported(err) && only_node(hw) >= 0 ? only_node(hw) : -err;
	} else if (hwloc_bitmap_iszero(ns)) {
		rc = -ENOENT; /* no page there yet: never touched */
	} else {
		rc = hwloc_bitmap_first(ns);
	}
	hwloc_bitmap_free(ns);
	return rc;
}
