/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_numa.h — machine topology, worker placement, pinning and NUMA-local
 * memory (implemented in numa/ on top of hwloc and mimalloc).
 *
 * A topology is either this machine, restricted to the CPUs the process
 * may run on (taskset, cgroup cpusets), or an hwloc synthetic description
 * such as "pack:2 numa:1 core:8 pu:2", so that NUMA placement can be tested
 * on any machine. Synthetic topologies describe; they cannot pin or bind.
 *
 * Threads: a topology is immutable after creation and may be shared by
 * all threads. A NUMA allocator allocates only from the thread that
 * created it; its memory may be freed from any thread.
 */
#ifndef SL_NUMA_H
#define SL_NUMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "sl_alloc.h"
#include "sl_job.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sl_topo;

/** One processing unit (hardware thread) the process may use. */
struct sl_topo_cpu {
	int pu;	     /**< OS index of the PU, as taskset and sched_setaffinity number it */
	int core;    /**< logical index of its physical core (0..ncores-1) */
	int node;    /**< OS index of its NUMA node (0 on machines without NUMA) */
	int package; /**< logical index of its package (socket) */
	int smt;     /**< rank of this PU among the usable PUs of its core (0 = first) */
};

/**
 * sl_topo_create() - discover or describe a topology.
 * @synthetic: NULL for this machine, or an hwloc synthetic description.
 * @errbuf, @errlen: receive a sentence on failure; may be NULL/0.
 * @out: receives the topology.
 *
 * The PUs listed are those the process may run on: hwloc's allowed set
 * intersected with the process's CPU affinity at creation time.
 *
 * Return: 0; -EINVAL for a malformed synthetic description or NULL @out;
 * -ENODEV when no PU is usable; -ENOMEM.
 */
int sl_topo_create(const char *synthetic, char *errbuf, size_t errlen, struct sl_topo **out);

/** sl_topo_destroy() - free a topology; accepts NULL. */
void sl_topo_destroy(struct sl_topo *t);

/** True when the topology came from a synthetic description. */
bool sl_topo_is_synthetic(const struct sl_topo *t);

/** Number of usable PUs (always >= 1). */
unsigned sl_topo_ncpus(const struct sl_topo *t);
/** Number of physical cores with at least one usable PU. */
unsigned sl_topo_ncores(const struct sl_topo *t);
/** Number of NUMA nodes with at least one usable PU. */
unsigned sl_topo_nnodes(const struct sl_topo *t);
/** Number of packages with at least one usable PU. */
unsigned sl_topo_npackages(const struct sl_topo *t);

/**
 * sl_topo_cpu() - the @i-th usable PU, in topology order (package, node,
 * core, then hardware thread).
 * Return: 0, or -ERANGE when @i >= sl_topo_ncpus().
 */
int sl_topo_cpu(const struct sl_topo *t, unsigned i, struct sl_topo_cpu *out);

/**
 * sl_topo_find_pu() - look up a PU by OS index.
 * Return: 0 and *@out filled, or -ENOENT when @pu is not usable.
 */
int sl_topo_find_pu(const struct sl_topo *t, int pu, struct sl_topo_cpu *out);

enum sl_topo_format {
	SL_TOPO_TEXT = 0,
	SL_TOPO_JSON = 1,
};

/**
 * sl_topo_print() - write the topology as Sluice sees it: packages, NUMA
 * nodes with their memory, cores with their usable PUs, cache sizes, and
 * how many PUs the machine has that the process may not use.
 * Return: 0, or -EIO when writing to @f failed.
 */
int sl_topo_print(const struct sl_topo *t, FILE *f, enum sl_topo_format fmt);

enum sl_place_policy {
	/** Round-robin across NUMA nodes (then packages): most memory bandwidth. */
	SL_PLACE_SPREAD = 0,
	/** Fill one NUMA node's cores before the next: most cache sharing. */
	SL_PLACE_PACK = 1,
};

/**
 * sl_place_workers() - choose a PU for each of @n workers.
 * @t: topology.
 * @n: number of workers, 1..sl_topo_ncpus(@t).
 * @policy: spread or pack. Under both, distinct physical cores are used
 *          before a second hardware thread of any core.
 * @out: array of @n entries, filled in worker order.
 *
 * Return: 0; -EINVAL for @n == 0 or NULL pointers; -ERANGE when @n exceeds
 * the usable PUs (with a sentence in @errbuf).
 */
int sl_place_workers(const struct sl_topo *t, unsigned n, enum sl_place_policy policy,
		     struct sl_topo_cpu *out, char *errbuf, size_t errlen);

/**
 * sl_place_policy_parse() - "spread" or "pack" to the enum.
 * Return: 0, or -EINVAL for anything else.
 */
int sl_place_policy_parse(const char *s, enum sl_place_policy *out);

/**
 * sl_numa_pin_thread() - bind the calling thread to one PU.
 * Return: 0; -ENOTSUP for a synthetic topology; -ENOENT when @pu is not a
 * usable PU of @t; another -errno from the operating system.
 */
int sl_numa_pin_thread(const struct sl_topo *t, int pu);

/**
 * sl_numa_current_pu() - OS index of the PU the calling thread runs on
 * right now (a snapshot), or -errno.
 */
int sl_numa_current_pu(void);

/**
 * sl_numa_allocator_create() - a NUMA-local allocator for the calling
 * thread: a private mimalloc heap, with the thread's memory policy bound
 * to @node so that the pages the heap obtains are placed on that node.
 * @t: topology of this machine (not synthetic).
 * @node: OS index of a NUMA node of @t.
 * @out: receives the allocator.
 *
 * alloc() must be called only from the creating thread; free() from any
 * thread. Destroy it from the creating thread after all its memory is
 * freed, or the remaining blocks are kept by mimalloc's default heap.
 *
 * Return: 0; -ENOTSUP for a synthetic topology; -ENOENT for an unknown
 * node; -ENOMEM.
 */
int sl_numa_allocator_create(const struct sl_topo *t, int node, struct sl_allocator **out);

/** sl_numa_allocator_destroy() - accepts NULL. */
void sl_numa_allocator_destroy(struct sl_allocator *a);

/**
 * sl_numa_alloc_onnode() - @size bytes of page-aligned memory bound to
 * NUMA node @node (hwloc membind), for large long-lived regions such as
 * ring and pool arenas. Free with sl_numa_free().
 * Return: the memory, or NULL (errno set) on failure.
 */
void *sl_numa_alloc_onnode(const struct sl_topo *t, int node, size_t size);

/** sl_numa_free() - free memory from sl_numa_alloc_onnode(); accepts NULL. */
void sl_numa_free(const struct sl_topo *t, void *ptr, size_t size);

/**
 * sl_numa_memory_node() - OS index of the NUMA node holding the page at
 * @ptr (the page must have been touched), or -errno.
 */
int sl_numa_memory_node(const struct sl_topo *t, const void *ptr);

/**
 * The runtime's view of this machine (struct sl_platform, sl_job.h) built
 * on a topology: workers placed by @policy, pinned, and given NUMA-local
 * allocators. Caller memory; @topo must outlive every job that uses it.
 */
struct sl_numa_platform {
	struct sl_platform platform;
	const struct sl_topo *topo;
	enum sl_place_policy policy;
};

/**
 * sl_numa_platform_init() - fill @np for @topo and @policy. For a
 * synthetic topology only placement is provided (plans can be printed,
 * workers are not pinned and use the default allocator).
 * Return: 0, or -EINVAL for NULL arguments.
 */
int sl_numa_platform_init(struct sl_numa_platform *np, const struct sl_topo *topo,
			  enum sl_place_policy policy);

#ifdef __cplusplus
}
#endif
#endif /* SL_NUMA_H */
