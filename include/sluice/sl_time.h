/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_time.h — event time: watermark strategies at sources, and windows
 * on keyed streams, with Flink's rules (docs/SEMANTICS.md in the repo's
 * shared docs): timestamps are int64 milliseconds, the initial watermark
 * is INT64_MIN, bounded input ends with a watermark of INT64_MAX.
 *
 * Watermarks travel in band, in order with the data, through every ring
 * (sl_batch.h). A task's input watermark is the minimum over its input
 * channels that have not ended; it is delivered to each operator of the
 * fused chain in order (after what that operator emitted before it) and
 * then broadcast to every output channel.
 */
#ifndef SL_TIME_H
#define SL_TIME_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_job.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --------------------------------------------------------- watermarks */

/** Default periodic watermark interval (Flink's autoWatermarkInterval). */
#define SL_WATERMARK_INTERVAL_MS 200

/**
 * How a source generates watermarks. Zero-initialised: bounded
 * out-of-orderness 0 (monotonous), periodic every 200 ms.
 *
 * Bounded out-of-orderness B: after the largest timestamp M seen so far,
 * the candidate watermark is M - B - 1; it is emitted only when larger
 * than the last one emitted. Emission is periodic (every @interval_ms of
 * processing time, checked when the source is polled) or, with @every =
 * N > 0, after every N-th record. With N = 1 each record is processed
 * downstream before the watermark it produces, so it is judged against
 * the watermark of the records before it: results from a file are then
 * reproducible.
 *
 * Generation is per source subtask (one file: one subtask, hence one
 * split, as in Flink's file source).
 */
struct sl_watermark_strategy {
	int64_t out_of_orderness_ms; /**< B >= 0 */
	int64_t interval_ms;	     /**< periodic emission; 0: SL_WATERMARK_INTERVAL_MS */
	uint64_t every;		     /**< > 0: after every N records instead of periodically */
	bool none;		     /**< no watermarks but the final INT64_MAX */
};

/**
 * sl_assign_watermarks() - generate watermarks at source @src (a stream
 * returned by sl_source()) with @ws (copied). Without it a source emits
 * only the final watermark at its end.
 */
struct sl_stream *sl_assign_watermarks(struct sl_stream *src,
				       const struct sl_watermark_strategy *ws);

/* ------------------------------------------------------------ windows */

enum sl_window_kind {
	SL_WINDOW_TUMBLING, /**< size (and offset) */
	SL_WINDOW_SLIDING,  /**< size, slide (and offset) */
	SL_WINDOW_SESSION,  /**< gap: windows closer than gap merge */
};

/** Event-time window assignment; all durations in ms. */
struct sl_window_spec {
	enum sl_window_kind kind;
	int64_t size;		  /**< tumbling, sliding: > 0 */
	int64_t slide;		  /**< sliding: > 0 */
	int64_t offset;		  /**< tumbling, sliding: window starts are offset + k * slide */
	int64_t gap;		  /**< session: > 0 */
	int64_t allowed_lateness; /**< >= 0 (default 0) */
};

/** A time window [start, end): its max timestamp is end - 1. */
struct sl_window {
	int64_t start, end;
};

/**
 * An incremental aggregate: one accumulator of @acc_size bytes per key
 * and window. @add folds in one element; @merge (needed for sessions)
 * folds @src into @dst; @result emits the window's output through @out
 * (one element, usually, with sl_emit(out, &elem, w->end - 1, NULL); the
 * key bytes are valid during the call, copy them with sl_collector_str()).
 * Return 0 or -errno (fails the job).
 */
struct sl_aggregate {
	uint32_t acc_size;
	void (*create)(void *acc, void *arg);
	void (*add)(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg);
	void (*merge)(void *dst, const void *src, void *arg);
	int (*result)(const struct sl_window *w, const struct sl_key *key, const void *acc,
		      struct sl_collector *out, void *arg);
	void *arg;
};

/**
 * sl_window_aggregate() - event-time windows over the keyed stream @in
 * (after sl_key_by()), aggregated incrementally with @agg (copied), the
 * default event-time trigger, and allowed lateness. Output elements are
 * of @out_type, stamped by @agg->result (end - 1 by convention).
 *
 * Rules (Flink's WindowOperator with EventTimeTrigger): an element goes
 * to every window @spec assigns it (sessions merge first). A window is
 * late when end - 1 + allowed_lateness <= watermark: its elements are
 * skipped. Otherwise the element is added; if end - 1 <= watermark the
 * window fires at once (a late firing, with the updated result), else it
 * fires when the watermark reaches end - 1. Its state is cleared when the
 * watermark reaches end - 1 + allowed_lateness. An element skipped by all
 * its windows with ts + allowed_lateness <= watermark is late: it goes to
 * side output 0 when sl_side_output(stream, 0, input type) is connected,
 * otherwise it is counted in late_records_dropped and dropped.
 */
struct sl_stream *sl_window_aggregate(struct sl_stream *in, const char *name,
				      const struct sl_window_spec *spec,
				      const struct sl_aggregate *agg,
				      const struct sl_type *out_type);

#ifdef __cplusplus
}
#endif
#endif /* SL_TIME_H */
