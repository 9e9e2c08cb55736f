/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_watermark.h — the watermark bookkeeping of one subtask, without
 * threads, clocks or batches, so that exec.c drives it and tests can
 * check every rule with hand-picked inputs (core/watermark.c):
 *
 *  - sli_wmgen: generation at a source subtask, one generator per split
 *    (max timestamp, watermark, idleness), merged by minimum — Flink's
 *    WatermarkOutputMultiplexer with WatermarksWithIdleness per split;
 *  - sli_valve: a task's input watermark and status from its input
 *    channels — Flink's StatusWatermarkValve.
 *
 * Both report what the caller must emit as SLI_WM_* bits; the caller
 * emits ACTIVE first, then the watermark (->out), then IDLE.
 *
 * Threads: each instance belongs to one subtask, on its worker thread.
 */
#ifndef SLI_WATERMARK_H
#define SLI_WATERMARK_H

#include <stdbool.h>
#include <stdint.h>

#include <sluice/sl_time.h>

/* What to emit after a call. */
enum {
	SLI_WM_ADVANCE = 1, /* the watermark advanced to ->out */
	SLI_WM_IDLE = 2,    /* the status turned idle */
	SLI_WM_ACTIVE = 4,  /* the status turned active (emit before the record) */
};

/* --------------------------------------------------------- generation */

struct sli_wmsplit {
	int64_t max_ts;	  /* largest timestamp seen; INT64_MIN: none */
	int64_t wm;	  /* its watermark: the largest candidate it produced */
	uint64_t count;	  /* its records, for every-N emission */
	uint64_t last_ns; /* idleness clock at its last record (or when it appeared) */
	bool idle;
	bool ended;
};

/*
 * A source subtask's splits 0..n-1. Every split not ended holds the
 * watermark back, from the moment it exists, unless it is idle: ->out is
 * the minimum over those splits, emitted only when it grows. When every
 * split not ended is idle the subtask is idle (->idle); with no split
 * left, nothing changes. Idleness is measured on a clock the caller
 * advances only while the source is polled (not while it is
 * backpressured): a split without a record for idle_ns of that clock is
 * idle until its next record.
 */
struct sli_wmgen {
	int64_t bound;	  /* out-of-orderness B */
	uint64_t every;	  /* > 0: a split's watermark moves after every N of its records */
	uint64_t idle_ns; /* 0: no idleness */
	bool none;	  /* no watermarks (only statuses) */
	struct sli_wmsplit *s;
	uint32_t n, cap;
	uint32_t nlive;		/* splits not ended */
	int64_t out;		/* the last watermark emitted */
	bool idle;		/* the last status emitted */
	uint64_t next_check_ns; /* no split can turn idle before this */
};

/* Set up for @ws with no split yet. Return 0. */
int sli_wmgen_init(struct sli_wmgen *g, const struct sl_watermark_strategy *ws);
void sli_wmgen_fini(struct sli_wmgen *g);
/*
 * The source now has @n splits (n >= g->n): the new ones hold the
 * watermark back from @now. Return 0 or -ENOMEM; *@ev gets SLI_WM_* bits
 * (ACTIVE when an idle subtask got a new split).
 */
int sli_wmgen_grow(struct sli_wmgen *g, uint32_t n, uint64_t now, unsigned *ev);
/* Records of @split (< n, not ended) come next, at @now. Return SLI_WM_*. */
unsigned sli_wmgen_activity(struct sli_wmgen *g, uint32_t split, uint64_t now);
/* One record of @split at @ts (after sli_wmgen_activity). Return SLI_WM_*. */
unsigned sli_wmgen_record(struct sli_wmgen *g, uint32_t split, int64_t ts);
/*
 * Records @ts[0..n) of @split (after sli_wmgen_activity), the same as
 * sli_wmgen_record() on each in turn, stopping after the first one whose
 * result is not 0: return how many were consumed (n when none), *@ev
 * that result (0 when none). Between every-N boundaries (and with
 * periodic emission or none at all) it only takes the maximum timestamp.
 */
uint32_t sli_wmgen_records(struct sli_wmgen *g, uint32_t split, const int64_t *ts, uint32_t n,
			   unsigned *ev);
/* Periodic emission: every active split's watermark catches up. Return SLI_WM_*. */
unsigned sli_wmgen_periodic(struct sli_wmgen *g);
/* @split has no more records. Return SLI_WM_*. */
unsigned sli_wmgen_end_split(struct sli_wmgen *g, uint32_t split);
/* Splits silent for idle_ns at @now turn idle. Return SLI_WM_*. */
unsigned sli_wmgen_check_idle(struct sli_wmgen *g, uint64_t now);

/* -------------------------------------------------------------- valve */

struct sli_wmchan {
	int64_t wm;
	bool idle;
	bool aligned; /* its watermark counts: it was >= ->out since it last turned active */
	bool ended;
};

/*
 * A task's input: channels 0..n-1. ->out is the minimum over aligned
 * channels (active, not ended, and caught up with ->out since they last
 * turned active), emitted only when it grows; ->idle when every channel
 * not ended is idle. When the last active channel turns idle while it
 * held ->out, the maximum over the channels is emitted first (Flink's
 * flush: nothing will advance them any more).
 */
struct sli_valve {
	struct sli_wmchan *ch;
	unsigned n;
	int64_t out;
	bool idle;
};

/* Return 0 or -ENOMEM. */
int sli_valve_init(struct sli_valve *v, unsigned n);
void sli_valve_fini(struct sli_valve *v);
/* Watermark @wm arrived on channel @c. Return SLI_WM_*. */
unsigned sli_valve_watermark(struct sli_valve *v, unsigned c, int64_t wm);
/* Channel @c turned idle (@idle) or active. Return SLI_WM_*. */
unsigned sli_valve_status(struct sli_valve *v, unsigned c, bool idle);
/* Channel @c ended. Return SLI_WM_*. */
unsigned sli_valve_end(struct sli_valve *v, unsigned c);

#endif /* SLI_WATERMARK_H */
