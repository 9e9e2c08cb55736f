/* SPDX-License-Identifier: Apache-2.0 */
/*
 * window_agg.h — what the two window stages of `sluice run window-agg`
 * share: the elements (window_agg.c parses and formats them), the
 * accumulator (count, wrapping sum, min, max) and its functions, and the
 * window stage that keeps its windows in keyed state (window_spill.c),
 * used when the job has a state budget (state-memory).
 *
 * Threads: the accumulator functions are pure; the rest as in
 * window_spill.c.
 */
#ifndef SLUICE_JOBS_WINDOW_AGG_H
#define SLUICE_JOBS_WINDOW_AGG_H

#include <stdbool.h>
#include <stdint.h>

#include <sluice/sl_job.h>
#include <sluice/sl_time.h>

/** An input record: its key and value, and its line when late records are kept. */
struct wa_ev {
	int64_t value;
	struct sl_str key;
	struct sl_str raw; /* the input line, with --late-output only */
};

/** An output line "start,end,key,count,sum,min,max". */
struct wa_out {
	int64_t start, end, count, sum, min, max;
	struct sl_str key;
};

struct wa_acc {
	int64_t count, sum, min, max;
};

static inline void wa_acc_init(struct wa_acc *a)
{
	*a = (struct wa_acc){ 0, 0, INT64_MAX, INT64_MIN };
}

static inline void wa_acc_add(struct wa_acc *a, int64_t v)
{
	a->count++;
	a->sum = (int64_t)((uint64_t)a->sum + (uint64_t)v); /* wraps, as the contract says */
	if (v < a->min)
		a->min = v;
	if (v > a->max)
		a->max = v;
}

static inline void wa_acc_merge(struct wa_acc *a, const struct wa_acc *b)
{
	a->count += b->count;
	a->sum = (int64_t)((uint64_t)a->sum + (uint64_t)b->sum);
	if (b->min < a->min)
		a->min = b->min;
	if (b->max > a->max)
		a->max = b->max;
}

/** Spilling figures of the window stage, summed over its subtasks (see window_spill.c). */
struct wa_spill_stats {
	uint64_t evictions; /* window-state entries written to disk */
	uint64_t reloads;   /* entries read back */
	uint64_t writes;    /* write requests (full 1 MiB buffers) to the spill files */
	uint64_t
	    peak_bytes; /* most bytes appended to the spill files (buffered ones too), summed */
	uint64_t peak_on_disk; /* most entries out of memory at once, per subtask, summed */
};

struct wa_spill;

/**
 * wa_spill_window() - the window stage of window-agg as a keyed process
 * function named "window" on @keyed, its windows' accumulators in keyed
 * state (so they spill past the job's state-memory), with the output of
 * sl_window_aggregate() and the wa_acc aggregate: @spec's windows,
 * allowed lateness, late records to side output 0 (@late_side; connect
 * it with sl_side_output(stream, 0, input type)) or counted in the
 * operator's late_records_dropped. @parallelism: of the stage (the job's).
 * *@out receives the stage's figures, for wa_spill_stats() and
 * wa_spill_free() (also after a failure: then maybe NULL).
 * Return: the stream of struct wa_out, or NULL (the job records why).
 */
struct sl_stream *wa_spill_window(struct sl_stream *keyed, const struct sl_window_spec *spec,
				  bool late_side, unsigned parallelism,
				  const struct sl_type *out_type, struct wa_spill **out);

/** wa_spill_stats() - the figures of the last run (after sl_job_run() returned). */
void wa_spill_stats(const struct wa_spill *ws, struct wa_spill_stats *out);

/** wa_spill_free() - free @ws; accepts NULL. */
void wa_spill_free(struct wa_spill *ws);

#endif /* SLUICE_JOBS_WINDOW_AGG_H */
