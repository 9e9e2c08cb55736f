/* SPDX-License-Identifier: Apache-2.0 */
/*
 * platform.c — struct sl_platform on top of numa/: placement, pinning and
 * NUMA-local allocators for the runtime in core/, which must not call
 * hwloc or mimalloc itself.
 *
 * Threads: the callbacks are called by the runtime — place() from the
 * planning thread, pin() and the allocator functions from each worker.
 * The topology is immutable, so sharing it is safe.
 */
#include <errno.h>
#include <stdlib.h>

#include <sluice/sl_numa.h>

static unsigned np_ncpus(void *ctx)
{
	const struct sl_numa_platform *np = ctx;

	return sl_topo_ncpus(np->topo);
}

static int np_place(void *ctx, unsigned n, int *pus, int *nodes, char *errbuf, size_t errlen)
{
	const struct sl_numa_platform *np = ctx;
	struct sl_topo_cpu *cpus = calloc(n ? n : 1, sizeof(*cpus));
	int rc;

	if (cpus == NULL)
		return -ENOMEM;
	rc = sl_place_workers(np->topo, n, np->policy, cpus, errbuf, errlen);
	for (unsigned i = 0; rc == 0 && i < n; i++) {
		pus[i] = cpus[i].pu;
		nodes[i] = cpus[i].node;
	}
	free(cpus);
	return rc;
}

static int np_pin(void *ctx, int pu)
{
	const struct sl_numa_platform *np = ctx;

	return sl_numa_pin_thread(np->topo, pu);
}

static int np_alloc_create(void *ctx, int node, struct sl_allocator **out)
{
	const struct sl_numa_platform *np = ctx;

	return sl_numa_allocator_create(np->topo, node, out);
}

static void np_alloc_destroy(void *ctx, struct sl_allocator *a)
{
	(void)ctx;
	sl_numa_allocator_destroy(a);
}

int sl_numa_platform_init(struct sl_numa_platform *np, const struct sl_topo *topo,
			  enum sl_place_policy policy)
{
	if (np == NULL || topo == NULL)
		return -EINVAL;
	np->topo = topo;
	np->policy = policy;
	np->platform = (struct sl_platform){
		.ctx = np,
		.ncpus = np_ncpus,
		.place = np_place,
	};
	if (!sl_topo_is_synthetic(topo)) {
		np->platform.pin = np_pin;
		np->platform.allocator_create = np_alloc_create;
		np->platform.allocator_destroy = np_alloc_destroy;
	}
	return 0;
}
