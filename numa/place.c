/* SPDX-License-Identifier: Apache-2.0 */
/*
 * place.c — where workers run: one PU per worker under the spread and
 * pack policies, pinning the calling thread to a PU, and asking which PU
 * it is on.
 *
 * Placement reads only the topology's flat, ordered PU list (public API),
 * so it is a pure function of (topology, n, policy): the same inputs give
 * the same placement on every run, which is what makes plans reproducible
 * and testable on synthetic topologies.
 *
 * Invariants of a placement: no PU is used twice, and a PU of smt rank r
 * is used only once every usable PU of rank < r is taken, so that workers
 * get whole physical cores before any core runs two of them.
 *
 * Threads: placement only reads an immutable topology; pinning changes
 * the calling thread's affinity and nothing else.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <hwloc.h>

#include <sluice/sl_error.h>
#include <sluice/sl_numa.h>

#include "sli_numa.h"

/* PACK: topology order (node 0's cores first), one smt rank after the other. */
static void place_pack(const struct sl_topo_cpu *cpus, unsigned ncpus, unsigned n,
		       struct sl_topo_cpu *out)
{
	unsigned k = 0;

	for (int rank = 0; k < n; rank++)
		for (unsigned i = 0; i < ncpus && k < n; i++)
			if (cpus[i].smt == rank)
				out[k++] = cpus[i];
}

/*
 * A spread domain is a NUMA node, or a package when the machine has a
 * single node. dom[i] receives the domain of cpus[i]; the return value is
 * the number of domains, numbered in topology order.
 */
static unsigned spread_domains(const struct sl_topo_cpu *cpus, unsigned ncpus, bool by_node,
			       unsigned *dom, int *key, int *pkg)
{
	unsigned ndom = 0;

	for (unsigned i = 0; i < ncpus; i++) {
		int k = by_node ? cpus[i].node : cpus[i].package;
		unsigned d;

		for (d = 0; d < ndom && key[d] != k; d++)
			;
		if (d == ndom) {
			key[ndom] = k;
			pkg[ndom] = cpus[i].package;
			ndom++;
		}
		dom[i] = d;
	}
	return ndom;
}

/*
 * Order in which the round-robin visits the domains: the first node of
 * every package, then the second node of every package, and so on, so
 * that consecutive workers land on different sockets as well as different
 * nodes (both memory controllers and both L3s are used from two workers).
 */
static void spread_order(const int *pkg, unsigned ndom, unsigned *order)
{
	unsigned k = 0;

	for (unsigned rank = 0; k < ndom; rank++) {
		for (unsigned d = 0; d < ndom; d++) {
			unsigned r = 0;

			/* d's rank among its package's domains */
			for (unsigned e = 0; e < d; e++)
				r += pkg[e] == pkg[d];
			if (r == rank)
				order[k++] = d;
		}
	}
}

/* SPREAD: round-robin over domains; within one, PUs in topology order, rank by rank. */
static int place_spread(const struct sl_topo_cpu *cpus, unsigned ncpus, bool by_node, unsigned n,
			struct sl_topo_cpu *out)
{
	unsigned *dom = calloc(ncpus, sizeof(*dom));
	unsigned *order = calloc(ncpus, sizeof(*order));
	unsigned *pos = calloc(ncpus, sizeof(*pos));
	int *key = calloc(ncpus, sizeof(*key));
	int *pkg = calloc(ncpus, sizeof(*pkg));
	unsigned ndom, k = 0, cursor = 0;
	int rc = -ENOMEM;

	if (dom == NULL || order == NULL || pos == NULL || key == NULL || pkg == NULL)
		goto out;
	ndom = spread_domains(cpus, ncpus, by_node, dom, key, pkg);
	spread_order(pkg, ndom, order);

	for (int rank = 0; k < n; rank++) {
		unsigned left = 0;

		for (unsigned i = 0; i < ncpus; i++)
			left += cpus[i].smt == rank;
		memset(pos, 0, ncpus * sizeof(*pos));
		/* The cursor carries over between ranks: the round-robin never restarts. */
		while (left > 0 && k < n) {
			unsigned d = order[cursor], i;

			cursor = (cursor + 1) % ndom;
			for (i = pos[d]; i < ncpus; i++)
				if (dom[i] == d && cpus[i].smt == rank)
					break;
			pos[d] = i + 1;
			if (i < ncpus) {
				out[k++] = cpus[i];
				left--;
			}
		}
	}
	rc = 0;
out:
	free(dom);
	free(order);
	free(pos);
	free(key);
	free(pkg);
	return rc;
}

int sl_place_workers(const struct sl_topo *t, unsigned n, enum sl_place_policy policy,
		     struct sl_topo_cpu *out, char *errbuf, size_t errlen)
{
	struct sl_topo_cpu *cpus;
	unsigned ncpus;
	int rc = 0;

	if (t == NULL || out == NULL)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "sl_place_workers: topology and output array are required");
	if (n == 0)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "cannot place 0 workers: at least one is needed");
	if (policy != SL_PLACE_SPREAD && policy != SL_PLACE_PACK)
		return sl_errbuf_set(errbuf, errlen, -EINVAL, "unknown placement policy %d",
				     (int)policy);
	ncpus = sl_topo_ncpus(t);
	if (n > ncpus)
		return sl_errbuf_set(errbuf, errlen, -ERANGE,
				     "cannot place %u workers: only %u usable PU%s "
				     "(taskset/cgroup may restrict this)",
				     n, ncpus, ncpus == 1 ? "" : "s");

	cpus = calloc(ncpus, sizeof(*cpus));
	if (cpus == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < ncpus; i++)
		sl_topo_cpu(t, i, &cpus[i]);
	if (policy == SL_PLACE_PACK)
		place_pack(cpus, ncpus, n, out);
	else
		rc = place_spread(cpus, ncpus, sl_topo_nnodes(t) > 1, n, out);
	free(cpus);
	return rc;
}

int sl_place_policy_parse(const char *s, enum sl_place_policy *out)
{
	if (s == NULL || out == NULL)
		return -EINVAL;
	if (strcmp(s, "spread") == 0)
		*out = SL_PLACE_SPREAD;
	else if (strcmp(s, "pack") == 0)
		*out = SL_PLACE_PACK;
	else
		return -EINVAL;
	return 0;
}

int sl_numa_pin_thread(const struct sl_topo *t, int pu)
{
	hwloc_topology_t hw;
	hwloc_bitmap_t set;
	int rc;

	if (t == NULL)
		return -EINVAL;
	if (!sli_topo_bindable(t))
		return -ENOTSUP;
	if (sl_topo_find_pu(t, pu, NULL) < 0)
		return -ENOENT;
	hw = sli_topo_hwloc(t);
	set = hwloc_bitmap_alloc();
	if (set == NULL)
		return -ENOMEM;
	if (hwloc_bitmap_only(set, (unsigned)pu) < 0) {
		hwloc_bitmap_free(set);
		return -ENOMEM;
	}
	rc = hwloc_set_cpubind(hw, set, HWLOC_CPUBIND_THREAD | HWLOC_CPUBIND_STRICT);
	/* Some systems cannot promise STRICT; a plain binding to one PU is as good. */
	if (rc < 0 && (errno == ENOSYS || errno == EXDEV))
		rc = hwloc_set_cpubind(hw, set, HWLOC_CPUBIND_THREAD);
	if (rc < 0)
		rc = errno ? -errno : -EINVAL;
	hwloc_bitmap_free(set);
	return rc;
}

int sl_numa_current_pu(void)
{
	int cpu = sched_getcpu();

	return cpu < 0 ? -errno : cpu;
}
