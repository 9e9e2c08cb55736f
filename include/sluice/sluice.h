/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice.h — the Sluice public API, one include for jobs.
 *
 * What is here today: errors, logging, the allocator interface, the SPSC
 * ring, and (from numa/) topology, placement and pinning. The dataflow
 * job API (sources, operators, sinks, sl_job_run) arrives with the
 * runtime; see docs/ARCHITECTURE.md for the plan.
 */
#ifndef SLUICE_H
#define SLUICE_H

#include "sl_alloc.h"
#include "sl_common.h"
#include "sl_connectors.h"
#include "sl_error.h"
#include "sl_job.h"
#include "sl_log.h"
#include "sl_numa.h"
#include "sl_ring.h"
#include "sl_snap.h"
#include "sl_state.h"
#include "sl_time.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Version of the library, e.g. "0.1.0". */
const char *sl_version(void);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_H */
