/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_numa.h — what numa/'s files share behind the public sl_numa.h:
 * access to the hwloc topology a struct sl_topo wraps. Not installed.
 */
#ifndef SLI_NUMA_H
#define SLI_NUMA_H

#include <stdbool.h>

#include <hwloc.h>

#include <sluice/sl_numa.h>

/* The hwloc topology; valid as long as @t. Binding calls on it are thread-safe. */
hwloc_topology_t sli_topo_hwloc(const struct sl_topo *t);

/*
 * True when @t describes the machine we run on, so that threads can be
 * pinned and memory bound through it (false for synthetic topologies and
 * for an XML topology forced through HWLOC_XMLFILE).
 */
bool sli_topo_bindable(const struct sl_topo *t);

#endif /* SLI_NUMA_H */
