/* SPDX-License-Identifier: Apache-2.0 */
/*
 * topo.c — the machine as Sluice sees it: hwloc discovery of this machine
 * (or an hwloc synthetic description), restricted to the PUs the process
 * may use, flattened into an array of struct sl_topo_cpu, and printed as
 * text or JSON.
 *
 * Invariants: cpus[] holds exactly the usable PUs, sorted by (package,
 * NUMA node, PU logical index); hwloc's logical order is a depth-first walk
 * of the tree, so each core's PUs are adjacent. Core indices are dense
 * over cores with a usable PU, smt counts usable PUs within a core from 0,
 * and ncpus >= 1. For this machine, "usable" is hwloc's allowed cpuset
 * (cgroup cpusets) intersected with the calling thread's CPU affinity
 * (taskset), read once at creation.
 *
 * Threads: everything is computed in sl_topo_create(); afterwards the
 * object is never written and may be shared by any number of threads.
 * hwloc's query and binding functions are safe on a loaded topology that
 * nobody modifies, and we call hwloc_topology_refresh() before returning
 * it so that no lazily built hwloc structure is left to race on.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hwloc.h>

#include <sluice/sl_common.h>
#include <sluice/sl_error.h>
#include <sluice/sl_log.h>
#include <sluice/sl_numa.h>

#include "sli_numa.h"

struct sl_topo {
	hwloc_topology_t hw;
	char *synthetic;       /* the description, or NULL for this machine */
	bool bindable;	       /* hw is the running system: pin and bind work */
	hwloc_bitmap_t usable; /* OS indices of the PUs in cpus[] */
	unsigned ncpus, ncores, nnodes, npackages;
	unsigned machine_pus;	  /* PUs hwloc knows about, usable or not */
	struct sl_topo_cpu *cpus; /* ncpus entries, topology order */
	hwloc_obj_t *core_objs;	  /* by dense core index; the PU when there is no core level */
};

/* A usable PU with its sort keys, before the flat array is built. */
struct pu_entry {
	hwloc_obj_t pu, core, node;
	unsigned package; /* logical index, 0 when there is no package level */
};

hwloc_topology_t sli_topo_hwloc(const struct sl_topo *t)
{
	return t->hw;
}

bool sli_topo_bindable(const struct sl_topo *t)
{
	return t->bindable;
}

/*
 * The NUMA node local to @pu: the first NUMA node among the memory
 * children of its nearest ancestor that has any. Memory-side caches sit
 * between an ancestor and its node, hence the descent. On machines with
 * several nodes at one level (DRAM plus HBM), hwloc lists DRAM first.
 */
static hwloc_obj_t local_node(hwloc_obj_t pu)
{
	for (hwloc_obj_t o = pu->parent; o != NULL; o = o->parent) {
		hwloc_obj_t m = o->memory_first_child;

		while (m != NULL && m->type != HWLOC_OBJ_NUMANODE)
			m = m->memory_first_child;
		if (m != NULL)
			return m;
	}
	return NULL;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct pu_entry *x = a, *y = b;
	unsigned xn = x->node ? x->node->logical_index : 0;
	unsigned yn = y->node ? y->node->logical_index : 0;

	if (x->package != y->package)
		return x->package < y->package ? -1 : 1;
	if (xn != yn)
		return xn < yn ? -1 : 1;
	if (x->pu->logical_index != y->pu->logical_index)
		return x->pu->logical_index < y->pu->logical_index ? -1 : 1;
	return 0;
}

static int load(struct sl_topo *t, const char *synthetic, char *errbuf, size_t errlen)
{
	int err;

	if (hwloc_topology_init(&t->hw) < 0) {
		t->hw = NULL;
		return -ENOMEM;
	}
	if (synthetic != NULL) {
		if (hwloc_topology_set_synthetic(t->hw, synthetic) < 0)
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "invalid synthetic topology \"%s\": expected levels "
					     "with counts such as \"pack:2 numa:1 core:8 pu:2\"",
					     synthetic);
	} else {
		/*
		 * Keep the PUs a cgroup forbids in the tree so that we can say
		 * how many the machine has; usable_set() filters them out.
		 */
		if (hwloc_topology_set_flags(t->hw, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED) < 0)
			return -errno;
		/* hwloc drops instruction caches by default; the printout shows them. */
		hwloc_topology_set_icache_types_filter(t->hw, HWLOC_TYPE_FILTER_KEEP_ALL);
	}
	errno = 0;
	if (hwloc_topology_load(t->hw) < 0) {
		err = errno ? errno : EINVAL;
		return sl_errbuf_set(errbuf, errlen, -err, "cannot load the %s topology: %s",
				     synthetic ? "synthetic" : "machine", strerror(err));
	}
	t->bindable = synthetic == NULL && hwloc_topology_is_thissystem(t->hw);
	return 0;
}

/* Allowed PUs (cgroup) intersected with our affinity (taskset), into t->usable. */
static int usable_set(struct sl_topo *t)
{
	hwloc_bitmap_t aff;
	int rc = 0;

	t->usable = hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(t->hw));
	if (t->usable == NULL)
		return -ENOMEM;
	if (!t->bindable)
		return 0; /* described PUs have no affinity to intersect with */
	aff = hwloc_bitmap_alloc();
	if (aff == NULL)
		return -ENOMEM;
	/*
	 * The calling thread's affinity: at startup that is the process's
	 * (taskset applies to every thread). If the OS cannot tell us, the
	 * allowed set is the best we know.
	 */
	if (hwloc_get_cpubind(t->hw, aff, HWLOC_CPUBIND_THREAD) == 0 &&
	    hwloc_bitmap_and(t->usable, t->usable, aff) < 0)
		rc = -ENOMEM;
	hwloc_bitmap_free(aff);
	return rc;
}

enum cpu_field { F_PU, F_CORE, F_NODE, F_PACKAGE };

static int field(const struct sl_topo_cpu *c, enum cpu_field w)
{
	switch (w) {
	case F_PU:
		return c->pu;
	case F_CORE:
		return c->core;
	case F_NODE:
		return c->node;
	case F_PACKAGE:
		return c->package;
	}
	return -1;
}

/* Into @out, field @what of the cpus whose field @key is @value (any when @value < 0). */
static int collect(const struct sl_topo *t, enum cpu_field key, int value, enum cpu_field what,
		   hwloc_bitmap_t out)
{
	hwloc_bitmap_zero(out);
	for (unsigned i = 0; i < t->ncpus; i++)
		if ((value < 0 || field(&t->cpus[i], key) == value) &&
		    hwloc_bitmap_set(out, (unsigned)field(&t->cpus[i], what)) < 0)
			return -ENOMEM;
	return 0;
}

static int count_distinct(const struct sl_topo *t, enum cpu_field what, unsigned *out)
{
	hwloc_bitmap_t seen = hwloc_bitmap_alloc();
	int rc = -ENOMEM;

	if (seen != NULL)
		rc = collect(t, what, -1, what, seen);
	if (rc == 0)
		*out = (unsigned)hwloc_bitmap_weight(seen);
	hwloc_bitmap_free(seen);
	return rc;
}

static void fill_cpus(struct sl_topo *t, const struct pu_entry *e, unsigned n)
{
	hwloc_obj_t prev_core = NULL;
	int core = -1, smt = 0;

	for (unsigned i = 0; i < n; i++) {
		struct sl_topo_cpu *c = &t->cpus[i];

		if (e[i].core != prev_core) {
			prev_core = e[i].core;
			core++;
			smt = 0;
			t->core_objs[core] = e[i].core;
		}
		c->pu = (int)e[i].pu->os_index;
		c->core = core;
		c->node = e[i].node ? (int)e[i].node->os_index : 0;
		c->package = (int)e[i].package;
		c->smt = smt++;
	}
	t->ncpus = n;
	t->ncores = (unsigned)(core + 1);
}

static int flatten(struct sl_topo *t, char *errbuf, size_t errlen)
{
	int npu = hwloc_get_nbobjs_by_type(t->hw, HWLOC_OBJ_PU);
	struct pu_entry *e;
	hwloc_obj_t pu = NULL;
	unsigned n = 0;
	int rc;

	if (npu <= 0)
		return sl_errbuf_set(errbuf, errlen, -ENODEV, "hwloc found no PU in the topology");
	t->machine_pus = (unsigned)npu;
	e = calloc((size_t)npu, sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	while ((pu = hwloc_get_next_obj_by_type(t->hw, HWLOC_OBJ_PU, pu)) != NULL) {
		hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(t->hw, HWLOC_OBJ_PACKAGE, pu);
		hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(t->hw, HWLOC_OBJ_CORE, pu);

		if (!hwloc_bitmap_isset(t->usable, pu->os_index))
			continue;
		e[n].pu = pu;
		e[n].core = core ? core : pu;
		e[n].node = local_node(pu);
		e[n].package = pkg ? pkg->logical_index : 0;
		n++;
	}
	if (n == 0) {
		free(e);
		return sl_errbuf_set(errbuf, errlen, -ENODEV,
				     "no usable PU: the CPU affinity (taskset) and the allowed "
				     "cpuset (cgroup) have no CPU in common");
	}
	qsort(e, n, sizeof(*e), cmp_entry);

	t->cpus = calloc(n, sizeof(*t->cpus));
	t->core_objs = calloc(n, sizeof(*t->core_objs));
	if (t->cpus == NULL || t->core_objs == NULL) {
		free(e);
		return -ENOMEM;
	}
	fill_cpus(t, e, n);
	free(e);

	/* Only the PUs actually listed: the allowed set may name absent ones. */
	hwloc_bitmap_zero(t->usable);
	for (unsigned i = 0; i < n; i++)
		if (hwloc_bitmap_set(t->usable, (unsigned)t->cpus[i].pu) < 0)
			return -ENOMEM;
	rc = count_distinct(t, F_NODE, &t->nnodes);
	if (rc == 0)
		rc = count_distinct(t, F_PACKAGE, &t->npackages);
	return rc;
}

int sl_topo_create(const char *synthetic, char *errbuf, size_t errlen, struct sl_topo **out)
{
	struct sl_topo *t;
	int rc;

	if (out == NULL)
		return sl_errbuf_set(errbuf, errlen, -EINVAL, "sl_topo_create: no output pointer");
	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	if (synthetic != NULL) {
		t->synthetic = strdup(synthetic);
		if (t->synthetic == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	rc = load(t, synthetic, errbuf, errlen);
	if (rc < 0)
		goto fail;
	rc = usable_set(t);
	if (rc < 0)
		goto fail;
	rc = flatten(t, errbuf, errlen);
	if (rc < 0)
		goto fail;
	if (hwloc_topology_refresh(t->hw) < 0) {
		rc = -ENOMEM;
		goto fail;
	}
	*out = t;
	return 0;
fail:
	sl_topo_destroy(t);
	return rc;
}

void sl_topo_destroy(struct sl_topo *t)
{
	if (t == NULL)
		return;
	free(t->cpus);
	free(t->core_objs);
	hwloc_bitmap_free(t->usable);
	if (t->hw != NULL)
		hwloc_topology_destroy(t->hw);
	free(t->synthetic);
	free(t);
}

bool sl_topo_is_synthetic(const struct sl_topo *t)
{
	return t != NULL && t->synthetic != NULL;
}

unsigned sl_topo_ncpus(const struct sl_topo *t)
{
	return t ? t->ncpus : 0;
}

unsigned sl_topo_ncores(const struct sl_topo *t)
{
	return t ? t->ncores : 0;
}

unsigned sl_topo_nnodes(const struct sl_topo *t)
{
	return t ? t->nnodes : 0;
}

unsigned sl_topo_npackages(const struct sl_topo *t)
{
	return t ? t->npackages : 0;
}

int sl_topo_cpu(const struct sl_topo *t, unsigned i, struct sl_topo_cpu *out)
{
	if (t == NULL || out == NULL)
		return -EINVAL;
	if (i >= t->ncpus)
		return -ERANGE;
	*out = t->cpus[i];
	return 0;
}

int sl_topo_find_pu(const struct sl_topo *t, int pu, struct sl_topo_cpu *out)
{
	if (t == NULL)
		return -EINVAL;
	if (pu < 0 || !hwloc_bitmap_isset(t->usable, (unsigned)pu))
		return -ENOENT;
	for (unsigned i = 0; i < t->ncpus; i++) {
		if (t->cpus[i].pu == pu) {
			if (out != NULL)
				*out = t->cpus[i];
			return 0;
		}
	}
	return -ENOENT;
}

/* ---- printing ---------------------------------------------------------- */

/* "48 KiB", "1.25 MiB", "23.4 GiB": three significant digits at most. */
static void fmt_size(char *buf, size_t len, uint64_t bytes)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	unsigned u = 0;

	while (v >= 1024 && u + 1 < SL_ARRAY_SIZE(unit)) {
		v /= 1024;
		u++;
	}
	if (v >= 100 || v == (double)(uint64_t)v)
		snprintf(buf, len, "%.0f %s", v, unit[u]);
	else
		snprintf(buf, len, "%.3g %s", v, unit[u]);
}

static const char *plural(unsigned n)
{
	return n == 1 ? "" : "s";
}

/* Dense indices of the usable cores under @cpuset, into @cores. */
static int cores_under(const struct sl_topo *t, hwloc_const_cpuset_t cpuset, hwloc_bitmap_t cores)
{
	hwloc_bitmap_zero(cores);
	for (unsigned i = 0; i < t->ncpus; i++)
		if (hwloc_bitmap_isset(cpuset, (unsigned)t->cpus[i].pu) &&
		    hwloc_bitmap_set(cores, (unsigned)t->cpus[i].core) < 0)
			return -ENOMEM;
	return 0;
}

/* A cache is private to a core when it covers no PU outside that core. */
static bool cache_private(hwloc_obj_t cache, hwloc_obj_t core)
{
	return hwloc_bitmap_isincluded(cache->cpuset, core->cpuset);
}

/* Index in cpus[] of the first usable PU under @cpuset, or ncpus. */
static unsigned first_cpu_under(const struct sl_topo *t, hwloc_const_cpuset_t cpuset)
{
	unsigned i;

	for (i = 0; i < t->ncpus; i++)
		if (hwloc_bitmap_isset(cpuset, (unsigned)t->cpus[i].pu))
			break;
	return i;
}

static uint64_t node_memory(const struct sl_topo *t, int os_index)
{
	hwloc_obj_t n = hwloc_get_numanode_obj_by_os_index(t->hw, (unsigned)os_index);

	return n ? n->attr->numanode.local_memory : 0;
}

/* "L3 36 MiB" */
static void fmt_cache(char *buf, size_t len, hwloc_obj_t cache)
{
	char type[16], size[32];

	hwloc_obj_type_snprintf(type, sizeof(type), cache, 0);
	fmt_size(size, sizeof(size), cache->attr->cache.size);
	snprintf(buf, len, "%s %s", type, size);
}

/*
 * Shared caches get a line of their own, printed just before the first
 * core they cover and outermost first, so that each is shown once.
 */
static int text_shared_caches(const struct sl_topo *t, FILE *f, unsigned first,
			      hwloc_bitmap_t scratch)
{
	hwloc_obj_t core = t->core_objs[t->cpus[first].core];
	hwloc_obj_t shared[32];
	unsigned n = 0;

	for (hwloc_obj_t o = core->parent; o != NULL && n < SL_ARRAY_SIZE(shared); o = o->parent)
		if (hwloc_obj_type_is_cache(o->type) && !cache_private(o, core) &&
		    first_cpu_under(t, o->cpuset) == first)
			shared[n++] = o;
	while (n-- > 0) {
		char name[64], *list = NULL;

		if (cores_under(t, shared[n]->cpuset, scratch) < 0 ||
		    hwloc_bitmap_list_asprintf(&list, scratch) < 0)
			return -ENOMEM;
		fmt_cache(name, sizeof(name), shared[n]);
		fprintf(f, "    %s, shared by core%s %s", name,
			plural((unsigned)hwloc_bitmap_weight(scratch)), list);
		free(list);
		hwloc_bitmap_andnot(scratch, shared[n]->cpuset, t->usable);
		if (!hwloc_bitmap_iszero(scratch))
			fprintf(f, " (and %d PU%s not usable)", hwloc_bitmap_weight(scratch),
				plural((unsigned)hwloc_bitmap_weight(scratch)));
		fputc('\n', f);
	}
	return 0;
}

/* Append to @buf (of @size, holding @len bytes) without overflowing it. */
static size_t append(char *buf, size_t size, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t append(char *buf, size_t size, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (len >= size)
		return len;
	va_start(ap, fmt);
	n = vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
	return n < 0 ? len : len + (size_t)n;
}

/* Sort key: level first, then data before instruction cache (L1d, L1i, L2). */
static unsigned cache_rank(hwloc_obj_t c)
{
	return c->attr->cache.depth * 2 + (c->attr->cache.type == HWLOC_OBJ_CACHE_INSTRUCTION);
}

/* The caches private to @core, innermost first, into @out (at most @max). */
static unsigned private_caches(hwloc_obj_t core, hwloc_obj_t *out, unsigned max)
{
	unsigned n = 0;

	for (hwloc_obj_t o = core->parent; o != NULL && n < max; o = o->parent) {
		unsigned i;

		if (!hwloc_obj_type_is_cache(o->type) || !cache_private(o, core))
			continue;
		for (i = n; i > 0 && cache_rank(out[i - 1]) > cache_rank(o); i--)
			out[i] = out[i - 1];
		out[i] = o;
		n++;
	}
	return n;
}

/* "    core 3: pu 6,7      L1d 48 KiB, L2 1.25 MiB" for cpus[first..end). */
static int text_core(const struct sl_topo *t, FILE *f, unsigned first, unsigned end,
		     hwloc_bitmap_t scratch)
{
	hwloc_obj_t core = t->core_objs[t->cpus[first].core];
	char label[128], tail[256], name[64];
	hwloc_obj_t priv[16];
	size_t len = 0, tlen = 0;
	int rc;

	rc = text_shared_caches(t, f, first, scratch);
	if (rc < 0)
		return rc;
	len = append(label, sizeof(label), len, "core %d: pu ", t->cpus[first].core);
	for (unsigned i = first; i < end; i++) {
		const char *sep = i == first ? "" : ",";

		len = append(label, sizeof(label), len, "%s%d", sep, t->cpus[i].pu);
	}

	tail[0] = '\0';
	hwloc_bitmap_andnot(scratch, core->cpuset, t->usable);
	if (!hwloc_bitmap_iszero(scratch)) {
		char *list = NULL;

		if (hwloc_bitmap_list_asprintf(&list, scratch) < 0)
			return -ENOMEM;
		tlen = append(tail, sizeof(tail), tlen, "(pu %s not usable)", list);
		free(list);
	}
	for (unsigned i = 0, n = private_caches(core, priv, SL_ARRAY_SIZE(priv)); i < n; i++) {
		fmt_cache(name, sizeof(name), priv[i]);
		tlen = append(tail, sizeof(tail), tlen, "%s%s", tlen ? ", " : "", name);
	}
	if (tlen == 0)
		fprintf(f, "    %s\n", label);
	else
		fprintf(f, "    %-20s%s\n", label, tail);
	return 0;
}

static int print_text(const struct sl_topo *t, FILE *f)
{
	hwloc_bitmap_t scratch = hwloc_bitmap_alloc();
	int pkg = -1, node = -1, rc = 0;
	unsigned end;

	if (scratch == NULL)
		return -ENOMEM;
	fprintf(f, "machine: %u package%s, %u NUMA node%s, ", t->npackages, plural(t->npackages),
		t->nnodes, plural(t->nnodes));
	fprintf(f, "%u core%s, %u PU%s usable (%u in the machine)\n", t->ncores, plural(t->ncores),
		t->ncpus, plural(t->ncpus), t->machine_pus);
	if (t->synthetic != NULL)
		fprintf(f, "source: synthetic \"%s\"\n", t->synthetic);
	else if (t->bindable)
		fprintf(f, "source: this machine\n");
	else
		fprintf(f, "source: hwloc XML of another machine (cannot pin or bind)\n");

	for (unsigned i = 0; i < t->ncpus && rc == 0; i = end) {
		const struct sl_topo_cpu *c = &t->cpus[i];

		for (end = i + 1; end < t->ncpus && t->cpus[end].core == c->core; end++)
			;
		if (c->package != pkg) {
			fprintf(f, "package %d\n", c->package);
			pkg = c->package;
			node = -1;
		}
		if (c->node != node) {
			uint64_t mem = node_memory(t, c->node);
			char size[32];

			fmt_size(size, sizeof(size), mem);
			fprintf(f, "  node %d (%s)\n", c->node, mem ? size : "memory size unknown");
			node = c->node;
		}
		rc = text_core(t, f, i, end, scratch);
	}

	hwloc_bitmap_andnot(scratch, hwloc_topology_get_topology_cpuset(t->hw), t->usable);
	if (rc == 0 && !hwloc_bitmap_iszero(scratch)) {
		char *list = NULL;

		if (hwloc_bitmap_list_asprintf(&list, scratch) < 0) {
			rc = -ENOMEM;
		} else {
			fprintf(f, "not usable (CPU affinity or cgroup cpuset): pu %s\n", list);
			free(list);
		}
	}
	hwloc_bitmap_free(scratch);
	return rc;
}

static void json_ints(FILE *f, hwloc_const_bitmap_t set)
{
	const char *sep = "";
	unsigned v;

	fputc('[', f);
	hwloc_bitmap_foreach_begin(v, set)
	{
		fprintf(f, "%s%u", sep, v);
		sep = ", ";
	}
	hwloc_bitmap_foreach_end();
	fputc(']', f);
}

static int json_groups(const struct sl_topo *t, FILE *f, hwloc_bitmap_t keys, hwloc_bitmap_t a,
		       hwloc_bitmap_t b)
{
	const char *sep = "\n";
	unsigned v;
	int rc = collect(t, F_PACKAGE, -1, F_PACKAGE, keys);

	fprintf(f, "  \"packages\": [");
	hwloc_bitmap_foreach_begin(v, keys)
	{
		if (rc == 0)
			rc = collect(t, F_PACKAGE, (int)v, F_NODE, a);
		if (rc == 0)
			rc = collect(t, F_PACKAGE, (int)v, F_CORE, b);
		fprintf(f, "%s    {\"index\": %u, \"nodes\": ", sep, v);
		json_ints(f, a);
		fprintf(f, ", \"cores\": ");
		json_ints(f, b);
		fputc('}', f);
		sep = ",\n";
	}
	hwloc_bitmap_foreach_end();
	fprintf(f, "\n  ],\n  \"nodes\": [");

	sep = "\n";
	if (rc == 0)
		rc = collect(t, F_NODE, -1, F_NODE, keys);
	hwloc_bitmap_foreach_begin(v, keys)
	{
		if (rc == 0)
			rc = collect(t, F_NODE, (int)v, F_PACKAGE, a);
		if (rc == 0)
			rc = collect(t, F_NODE, (int)v, F_CORE, b);
		fprintf(f, "%s    {\"os_index\": %u, \"memory_bytes\": %" PRIu64 ", \"packages\": ",
			sep, v, node_memory(t, (int)v));
		json_ints(f, a);
		fprintf(f, ", \"cores\": ");
		json_ints(f, b);
		fputc('}', f);
		sep = ",\n";
	}
	hwloc_bitmap_foreach_end();
	fprintf(f, "\n  ],\n");
	return rc;
}

static int json_core(const struct sl_topo *t, FILE *f, unsigned first, hwloc_bitmap_t a)
{
	const struct sl_topo_cpu *c = &t->cpus[first];
	hwloc_obj_t core = t->core_objs[c->core];
	const char *sep = "";
	int rc = collect(t, F_CORE, c->core, F_PU, a);

	fprintf(f, "    {\"index\": %d, \"package\": %d, \"node\": %d, \"pus\": ", c->core,
		c->package, c->node);
	json_ints(f, a);
	fprintf(f, ", \"pus_not_usable\": ");
	hwloc_bitmap_andnot(a, core->cpuset, t->usable);
	json_ints(f, a);
	fprintf(f, ", \"caches\": [");
	for (hwloc_obj_t o = core->parent; o != NULL && rc == 0; o = o->parent) {
		char type[16];

		if (!hwloc_obj_type_is_cache(o->type))
			continue;
		hwloc_obj_type_snprintf(type, sizeof(type), o, 0);
		rc = cores_under(t, o->cpuset, a);
		fprintf(f, "%s{\"type\": \"%s\", \"size_bytes\": %" PRIu64 ", \"cores\": ", sep,
			type, (uint64_t)o->attr->cache.size);
		json_ints(f, a);
		fputc('}', f);
		sep = ", ";
	}
	fprintf(f, "]}");
	return rc;
}

static int print_json(const struct sl_topo *t, FILE *f)
{
	hwloc_bitmap_t keys = hwloc_bitmap_alloc(), a = hwloc_bitmap_alloc(),
		       b = hwloc_bitmap_alloc();
	int rc = -ENOMEM;

	if (keys == NULL || a == NULL || b == NULL)
		goto out;
	fprintf(f, "{\n  \"source\": \"%s\",\n  \"synthetic\": ",
		t->synthetic ? "synthetic" : "machine");
	if (t->synthetic != NULL)
		sl_fput_json_str(f, t->synthetic);
	else
		fprintf(f, "null");
	fprintf(f, ",\n  \"pus_usable\": %u,\n  \"pus_in_machine\": %u,\n  \"pus_not_usable\": ",
		t->ncpus, t->machine_pus);
	hwloc_bitmap_andnot(a, hwloc_topology_get_topology_cpuset(t->hw), t->usable);
	json_ints(f, a);
	fprintf(f, ",\n");

	rc = json_groups(t, f, keys, a, b);
	fprintf(f, "  \"cores\": [");
	for (unsigned i = 0, end; i < t->ncpus && rc == 0; i = end) {
		for (end = i + 1; end < t->ncpus && t->cpus[end].core == t->cpus[i].core; end++)
			;
		fprintf(f, "%s", i == 0 ? "\n" : ",\n");
		rc = json_core(t, f, i, a);
	}
	fprintf(f, "\n  ],\n  \"pus\": [");
	for (unsigned i = 0; i < t->ncpus; i++) {
		const struct sl_topo_cpu *c = &t->cpus[i];

		fprintf(f, "%s    {\"pu\": %d, \"core\": %d, ", i == 0 ? "\n" : ",\n", c->pu,
			c->core);
		fprintf(f, "\"node\": %d, \"package\": %d, \"smt\": %d}", c->node, c->package,
			c->smt);
	}
	fprintf(f, "\n  ]\n}\n");
out:
	hwloc_bitmap_free(keys);
	hwloc_bitmap_free(a);
	hwloc_bitmap_free(b);
	return rc;
}

int sl_topo_print(const struct sl_topo *t, FILE *f, enum sl_topo_format fmt)
{
	int rc;

	if (t == NULL || f == NULL)
		return -EINVAL;
	if (fmt == SL_TOPO_TEXT)
		rc = print_text(t, f);
	else if (fmt == SL_TOPO_JSON)
		rc = print_json(t, f);
	else
		return -EINVAL;
	if (rc < 0)
		return rc;
	if (fflush(f) != 0 || ferror(f))
		return -EIO;
	return 0;
}
