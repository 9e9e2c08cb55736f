/* SPDX-License-Identifier: Apache-2.0 */
/*
 * source_gate.h — a gate in front of a source's poll(), for tests whose
 * run must not reach the end of its input before a condition holds (so many
 * checkpoints completed, say), however fast the machine: the test's
 * poll() decides how many elements may pass now and calls gated_poll().
 * A source that returns nothing still takes barriers, unlike an operator
 * that blocks its thread. One thread polls (the source at parallelism 1).
 */
#ifndef SOURCE_GATE_H
#define SOURCE_GATE_H

#include <stdint.h>

#include <sluice/sl_batch.h>
#include <sluice/sl_job.h>

/*
 * Poll @inner into @out, at most @room elements (UINT64_MAX: no limit; 0:
 * return 0 without polling), adding to *@passed how many it returned.
 */
static inline int gated_poll(const struct sl_source_ops *inner, uint64_t *passed, void *state,
			     struct sl_batch *out, uint64_t room)
{
	uint32_t cap = out->cap;
	int rc;

	if (room == 0)
		return 0;
	if (out->cap > room)
		out->cap = (uint32_t)room;
	rc = inner->poll(state, out);
	out->cap = cap;
	if (rc > 0)
		*passed += (uint32_t)rc & ~(uint32_t)(SL_SOURCE_END | SL_SOURCE_SPLIT_END);
	return rc;
}

#endif
