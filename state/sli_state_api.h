/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_state_api.h — what state/api.c (the keyed-state API of sl_state.h)
 * shows besides the public header: counters of its TTL cleanup, so that
 * tests can check it is incremental and bounded, and of spilling, so that
 * they can check state really went to disk. Not public ABI.
 */
#ifndef SLI_STATE_API_H
#define SLI_STATE_API_H

#include <stddef.h>
#include <stdint.h>

struct sl_ctx;

struct sli_state_api_stats {
	size_t entries;	      /* in the subtask's tables, expired ones not removed yet included */
	uint64_t cleanups;    /* sli_table_ttl_cleanup() calls */
	uint64_t removed;     /* entries they removed */
	unsigned max_removed; /* most removed by one call */
	unsigned max_budget;  /* largest slot budget one call was given */
	unsigned last_budget; /* the budget of the latest call */
	/* Spilling (state-memory), summed over the subtask's tables; 0 without a budget. */
	size_t resident;	   /* bytes the budget bounds (sli_table_stats.resident) */
	size_t spilled;		   /* entries on disk now */
	uint64_t evictions;	   /* entries moved to disk */
	uint64_t reloads;	   /* entries read back */
	uint64_t spill_writes;	   /* write requests to the spill files */
	uint64_t spill_file_bytes; /* bytes of the spill files now, the write buffer's included */
	const char *engine;	   /* "io_uring", "posix", or NULL: no spilling */
	const char *spill_dir;	   /* the first table's spill directory, or NULL */
};

/**
 * sli_state_api_stats() - the counters of the state instance behind @c
 * (inside a call of a keyed function). Return: 0; -EINVAL when @c has no
 * state.
 */
int sli_state_api_stats(const struct sl_ctx *c, struct sli_state_api_stats *out);

#endif /* SLI_STATE_API_H */
