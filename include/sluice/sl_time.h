/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_time.h — event time: watermark strategies at sources, and windows
 * on keyed streams, with Flink's rules (docs/SEMANTICS.md in the repo's
 * shared docs): timestamps are int64 milliseconds, the initial watermark
 * is INT64_MIN, bounded input ends with a watermark of INT64_MAX.
 *
 * Watermarks travel in band, in order with the data, through every ring
 * (sl_batch.h). A task's input watermark is the minimum over its input
 * channels that have neither ended nor turned idle; it is delivered to
 * each operator of the fused chain in order (after what that operator
 * emitted before it) and then broadcast to every output channel.
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
 * Generation is per source split (a file of a directory, a partition;
 * see sl_source_ops.poll() in sl_job.h): each split has its own
 * generator (largest timestamp, watermark, every-N count, idleness), and
 * the subtask's watermark is the minimum over its splits that are neither
 * finished nor idle, emitted only when it grows. A split holds the
 * watermark back from the moment the source counts it (a file not read
 * yet, too) until it finishes. A source without splits is one split.
 *
 * Idleness (Flink's withIdleness(d)), @idle_timeout_ms = d > 0: a split
 * with no records for d of processing time is idle until its next
 * record, and no longer holds the watermark back. Time counts only while
 * the source is polled: while its outputs are full (backpressure) the
 * idleness clock stands still, so a backpressured split is never idle.
 * When every split not finished is idle, the subtask sends an IDLE status
 * downstream (SL_EVENT_IDLE), and ACTIVE before its next record. A split
 * active again behind the subtask's watermark holds it back until it
 * catches up; the watermark never goes back.
 *
 * Downstream, a task's input watermark is the minimum over its input
 * channels that are active (neither idle nor ended) and caught up (a
 * channel active again counts once its watermark reaches the task's);
 * when all are idle the task is idle and says so to its outputs.
 */
struct sl_watermark_strategy {
	int64_t out_of_orderness_ms; /**< B >= 0 */
	int64_t interval_ms;	     /**< periodic emission; 0: SL_WATERMARK_INTERVAL_MS */
	uint64_t every;		     /**< > 0: after every N records instead of periodically */
	bool none;		     /**< no watermarks but the final INT64_MAX */
	int64_t idle_timeout_ms;     /**< d > 0: a split without records for d is idle; 0: never */
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
 * SL_AGG_SLICEABLE - @flags bit of struct sl_aggregate: the aggregate
 * may be computed by stream slicing. It promises that merge(acc(A),
 * acc(B)) equals the accumulator of A then B for any split of a window's
 * elements into A and B, and that the result does not depend on the
 * order in which elements were added: count, sum, min, max, and averages
 * kept as (sum, count) are; "last value", "first value" or a float sum
 * that must be bit-exact are not. Ignored without @merge. With it,
 * sliding windows keep one partial accumulator per key and slice (a pane
 * of gcd(size, slide)) and merge the slices of a window when it fires,
 * so create(), add() and merge() are not called once per key and window;
 * without it each window keeps its own accumulator, its elements added
 * in arrival order, as in Flink. Tumbling windows (one slice per window,
 * elements added in arrival order) and sessions do not depend on it.
 */
#define SL_AGG_SLICEABLE 0x1u

/**
 * The result function of an aggregate: emit the window @w's output for
 * @key from its accumulator @acc through @out (see struct sl_aggregate).
 */
typedef int (*sl_agg_result_fn)(const struct sl_window *w, const struct sl_key *key,
				const void *acc, struct sl_collector *out, void *arg);

/**
 * Built-in aggregations (@builtin of struct sl_aggregate, Flink's sum(),
 * min(), max() and count): the engine folds the elements itself, with no
 * call per element. The accumulator is one int64_t; the field is an
 * int64_t at byte @field of the element (read unaligned). Sums and counts
 * wrap around (two's complement) instead of overflowing.
 */
enum sl_agg_builtin {
	SL_AGG_CUSTOM = 0,  /**< create, add, merge: the aggregate's own functions */
	SL_AGG_COUNT = 1,   /**< elements; starts at 0 */
	SL_AGG_SUM_I64 = 2, /**< sum of the field; starts at 0 */
	SL_AGG_MIN_I64 = 3, /**< least field; starts at INT64_MAX */
	SL_AGG_MAX_I64 = 4, /**< greatest field; starts at INT64_MIN */
};

/**
 * An incremental aggregate: one accumulator of @acc_size bytes per key
 * and window. @add folds in one element; @merge (needed for sessions)
 * folds @src into @dst; @result emits the window's output through @out
 * (one element, usually, with sl_emit(out, &elem, w->end - 1, NULL); the
 * key bytes are valid during the call, copy them with sl_collector_str()).
 * Return 0 or -errno (fails the job). @flags: SL_AGG_SLICEABLE or 0.
 *
 * @builtin other than SL_AGG_CUSTOM (sl_agg_count() and friends below):
 * the engine creates, adds and merges (create, add and merge must be NULL,
 * acc_size is 8, the aggregate is sliceable whatever @flags says); @result
 * still makes the output. The accumulator holds the same value a custom
 * aggregate doing the same arithmetic would hold, so @result is the same.
 */
struct sl_aggregate {
	uint32_t acc_size;
	void (*create)(void *acc, void *arg);
	void (*add)(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg);
	void (*merge)(void *dst, const void *src, void *arg);
	sl_agg_result_fn result;
	void *arg;
	uint32_t flags;	  /**< SL_AGG_SLICEABLE, or 0 */
	uint32_t builtin; /**< enum sl_agg_builtin; 0: SL_AGG_CUSTOM */
	uint32_t field;	  /**< SL_AGG_SUM_I64, _MIN_I64, _MAX_I64: byte offset of the int64_t */
};

/** A built-in aggregate of kind @kind over the int64_t at @field (0 for count). */
static inline struct sl_aggregate sl_agg_builtin(enum sl_agg_builtin kind, uint32_t field,
						 sl_agg_result_fn result, void *arg)
{
	return (struct sl_aggregate){ .acc_size = sizeof(int64_t),
				      .result = result,
				      .arg = arg,
				      .flags = SL_AGG_SLICEABLE,
				      .builtin = (uint32_t)kind,
				      .field = field };
}

/** count(): the number of elements of the window, an int64_t, to @result. */
static inline struct sl_aggregate sl_agg_count(sl_agg_result_fn result, void *arg)
{
	return sl_agg_builtin(SL_AGG_COUNT, 0, result, arg);
}

/** sum(field): the wrapping sum of the int64_t at byte @field, to @result. */
static inline struct sl_aggregate sl_agg_sum_i64(uint32_t field, sl_agg_result_fn result, void *arg)
{
	return sl_agg_builtin(SL_AGG_SUM_I64, field, result, arg);
}

/** min(field): the least int64_t at byte @field, to @result. */
static inline struct sl_aggregate sl_agg_min_i64(uint32_t field, sl_agg_result_fn result, void *arg)
{
	return sl_agg_builtin(SL_AGG_MIN_I64, field, result, arg);
}

/** max(field): the greatest int64_t at byte @field, to @result. */
static inline struct sl_aggregate sl_agg_max_i64(uint32_t field, sl_agg_result_fn result, void *arg)
{
	return sl_agg_builtin(SL_AGG_MAX_I64, field, result, arg);
}

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

/* ------------------------------------- keyed process functions, timers */

/** The clock of a timer. */
enum sl_time_domain {
	SL_EVENT_TIME = 0,	/**< fires when the operator's input watermark reaches it */
	SL_PROCESSING_TIME = 1, /**< fires when the processing-time clock reaches it */
};

/**
 * The keyed context of one call of a keyed function (element or timer):
 * the current key, the operator's clocks, its timers and its keyed state
 * (sl_state.h). Valid during that call only, on the operator's thread;
 * functions given a context outside its call return -EINVAL.
 */
struct sl_ctx;

/** The current key's bytes (valid during the call); {NULL, 0} for a bad @c. */
const struct sl_key *sl_ctx_key(const struct sl_ctx *c);

/**
 * The operator's current input watermark: INT64_MIN before the first one.
 * In an event-time timer it is the watermark that fired the timer.
 */
int64_t sl_ctx_current_watermark(const struct sl_ctx *c);

/**
 * Processing time in ms: the platform's now_ms() clock when it has one
 * (sl_job.h), else CLOCK_REALTIME.
 */
int64_t sl_ctx_current_processing_time(const struct sl_ctx *c);

/** Which subtask of which operator runs the call (its errbuf takes error sentences). */
const struct sl_subtask_info *sl_ctx_info(const struct sl_ctx *c);

/**
 * sl_timer_register() - a timer for the current key at @time in domain
 * @d. Timers are unique per (key, time) and domain: registering one that
 * exists does nothing, so it fires once. Timers fire in time order, equal
 * times in registration order, each calling the operator's timer()
 * function with the key they were registered for.
 *
 * Event-time timers fire when the input watermark reaches @time, before
 * that watermark goes downstream; a timer registered while firing, at a
 * time <= that watermark, fires in the same advance. One registered at a
 * time already passed fires at the next watermark. At the end of bounded
 * input the final watermark (INT64_MAX) fires every event-time timer.
 *
 * Processing-time timers fire when the worker finds the clock at or past
 * @time (it checks between steps: soon after, never before). Pending
 * processing-time timers do NOT fire at the end of input (Flink 1.18's
 * behaviour): register an event-time timer too if the end must flush.
 *
 * Return: 1 when added, 0 when it existed; -EINVAL (bad @c or @d, with a
 * sentence in the subtask's errbuf); -ENOMEM.
 */
int sl_timer_register(struct sl_ctx *c, enum sl_time_domain d, int64_t time);

/**
 * sl_timer_delete() - delete the current key's timer at @time in @d.
 * Return: 1 when it existed, 0 when not; -EINVAL.
 */
int sl_timer_delete(struct sl_ctx *c, enum sl_time_domain d, int64_t time);

/**
 * A keyed process function (Flink's KeyedProcessFunction).
 * @element: per input element, with the element's key current; emit
 *           through @out (sl_emit, sl_emit_side to a side output declared
 *           with sl_side_output()). Return 0 or -errno (fails the job; a
 *           sentence in sl_ctx_info(c)->errbuf is reported).
 * @timer:   optional; per firing timer, with the timer's key current.
 *           Without it timers fire and do nothing.
 */
struct sl_keyed_process {
	int (*element)(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
		       struct sl_collector *out, void *arg);
	int (*timer)(struct sl_ctx *c, enum sl_time_domain d, int64_t time,
		     struct sl_collector *out, void *arg);
	void *arg;
};

/**
 * sl_keyed_process() - run @p (copied) on the keyed stream @keyed (after
 * sl_key_by()); output elements are of @out_type. Keyed state is declared
 * on the returned stream with sl_state_declare() (sl_state.h).
 * Errors (reported by sl_job_validate()): NULL @p, element or @out_type;
 * an input that is not keyed.
 */
struct sl_stream *sl_keyed_process(struct sl_stream *keyed, const char *name,
				   const struct sl_keyed_process *p,
				   const struct sl_type *out_type);

/* -------------------------------------------------------------- joins */

/**
 * The function of a window join, called for every pair (@l, @r) of a
 * left and a right element with equal key in window @w when it fires.
 * @lsrc, @rsrc: what the elements' struct sl_str fields resolve against
 * (sl_batch_str()); valid during the call only. Emit zero or more
 * elements of the join's output type through @out: whatever timestamp is
 * passed to sl_emit(), the output is stamped w->end - 1 (Flink's
 * TimestampedCollector). An output element may point its strings into
 * one source only (the @src of sl_emit()); to combine both sides' strings
 * copy them with sl_collector_str(). Return 0, or -errno to fail the job.
 */
typedef int (*sl_window_join_fn)(const void *l, const struct sl_batch *lsrc, const void *r,
				 const struct sl_batch *rsrc, const struct sl_window *w,
				 struct sl_collector *out, void *arg);

/**
 * sl_window_join() - inner join of the keyed streams @left and @right
 * (both after sl_key_by(); element types may differ, keys must be of the
 * same type) over the event-time windows of @spec (tumbling, sliding or
 * session; copied): Flink's JoinedStreams, a coGroup over windows with
 * the default event-time trigger. When a window of a key fires, @join is
 * called for the cross product of its left and right elements (nothing
 * when either side is empty); the output is stamped end - 1.
 *
 * Windows, their assignment, session merging (across both sides: a left
 * and a right element a gap apart share a session), firing and cleanup
 * follow sl_window_aggregate(), allowed lateness included: a window that
 * is not late yet receives an element after it fired fires again with
 * the whole updated cross product. Elements whose windows are all late
 * and with ts + allowed_lateness <= watermark are late: they go to side
 * output 0 (left) or 1 (right) when connected (sl_side_output()), else
 * they are counted in late_records_dropped (sl_job_op_counters()) and
 * dropped. The operator's watermark is the minimum over both inputs.
 *
 * Buffered elements are copies (their strings too), one per window,
 * held until the window's cleanup; sl_join_buffered() reports how many.
 *
 * Errors (reported by sl_job_validate(), naming the operator): NULL
 * @spec, @join or @out_type; a bad window spec; an input that is not
 * keyed; inputs from different jobs; key functions whose keys differ in
 * length (each is called once, at build time, on a zeroed element of its
 * side: a 4-byte key never equals an 8-byte one).
 */
struct sl_stream *sl_window_join(struct sl_stream *left, struct sl_stream *right, const char *name,
				 const struct sl_window_spec *spec, sl_window_join_fn join,
				 void *arg, const struct sl_type *out_type);

/**
 * Bounds of an interval join: a left element at a.ts joins a right
 * element at b.ts when a.ts + lower <= b.ts <= a.ts + upper (each bound
 * inclusive unless its _exclusive flag is set). lower <= upper; either
 * may be negative.
 */
struct sl_interval_join_spec {
	int64_t lower, upper;
	bool lower_exclusive, upper_exclusive;
};

/**
 * The function of an interval join, called once per joined pair with the
 * elements, their timestamps and what their strings resolve against
 * (valid during the call only). The output is stamped max(@lts, @rts),
 * whatever timestamp is passed to sl_emit(). Return 0 or -errno.
 */
typedef int (*sl_interval_join_fn)(const void *l, int64_t lts, const struct sl_batch *lsrc,
				   const void *r, int64_t rts, const struct sl_batch *rsrc,
				   struct sl_collector *out, void *arg);

/**
 * sl_interval_join() - Flink's IntervalJoinOperator on the keyed streams
 * @left and @right (both after sl_key_by(), keys of the same type, element
 * types may differ), with the bounds @spec (copied).
 *
 * Each element is buffered per key in its side's buffer and joined with
 * the other side's buffered elements in range, in timestamp order, as it
 * arrives. An element with ts < the operator's watermark (the minimum over
 * both inputs) is late: to side output 0 (left) or 1 (right) when
 * connected (sl_side_output()), else counted in late_records_dropped and
 * dropped.
 * With the bounds made inclusive (lower + 1 when exclusive, upper - 1
 * likewise), a left element is dropped from its buffer when the watermark
 * reaches ts + upper (ts when upper <= 0), a right one at ts - lower (ts
 * when lower >= 0): by then no element that is not late can join it. As in
 * Flink, an element at exactly the watermark is not late, but finds the
 * elements dropped at that watermark gone.
 *
 * Errors (reported by sl_job_validate()): as sl_window_join(), and lower >
 * upper.
 */
struct sl_stream *sl_interval_join(struct sl_stream *left, struct sl_stream *right,
				   const char *name, const struct sl_interval_join_spec *spec,
				   sl_interval_join_fn join, void *arg,
				   const struct sl_type *out_type);

/**
 * sl_join_buffered() - the element copies join operator @op (by name)
 * holds, left and right, summed over its subtasks (a window join holds
 * one copy per window of the element). Relaxed reads, any thread, while
 * the job runs; 0 when it does not (state is freed with the run).
 * Return: 0; -ENOENT when no join has that name; -EINVAL.
 */
int sl_join_buffered(const struct sl_job *job, const char *op, uint64_t *left, uint64_t *right);

/* ---------------------------------------------------- general windows */

/*
 * sl_window(): Flink's WindowOperator (and EvictingWindowOperator) in
 * full: a window assigner, a trigger, an optional evictor, allowed
 * lateness with the late side output, and a window function that is
 * incremental (reduce, aggregate), sees the whole contents (process), or
 * both (incremental, then process with the single result).
 *
 * The global window is [INT64_MIN, INT64_MAX) with max timestamp
 * INT64_MAX (sl_window_max_ts()); every other window's is end - 1.
 */

/** The max timestamp of @w: end - 1, or INT64_MAX for the global window. */
static inline int64_t sl_window_max_ts(const struct sl_window *w)
{
	return w->end == INT64_MAX ? INT64_MAX : w->end - 1;
}

enum sl_assigner_kind {
	SL_ASSIGNER_NONE = 0, /**< invalid: an assigner must be chosen */
	SL_ASSIGNER_TUMBLING, /**< size, offset */
	SL_ASSIGNER_SLIDING,  /**< size, slide, offset */
	SL_ASSIGNER_SESSION,  /**< gap, or gap_fn (dynamic gap) */
	SL_ASSIGNER_GLOBAL,   /**< one window per key that never ends */
};

/**
 * A session's dynamic gap (Flink's SessionWindowTimeGapExtractor): the
 * gap in ms of the session window [ts, ts + gap) opened by @elem (its
 * strings resolve against @src). A gap <= 0 fails the job.
 */
typedef int64_t (*sl_session_gap_fn)(const void *elem, int64_t ts, const struct sl_batch *src,
				     void *arg);

/**
 * Which windows an element belongs to. Time windows are event-time
 * windows (tumbling, sliding and session follow sl_window_spec's rules,
 * SEMANTICS.md); the global window is not an event-time window: it is
 * never late, never cleaned up, and its default trigger never fires.
 */
struct sl_window_assigner {
	enum sl_assigner_kind kind;
	int64_t size;		  /**< tumbling, sliding: > 0 */
	int64_t slide;		  /**< sliding: > 0 */
	int64_t offset;		  /**< tumbling, sliding: starts are offset + k * slide */
	int64_t gap;		  /**< session with a static gap: > 0 */
	sl_session_gap_fn gap_fn; /**< session: dynamic gap (then gap is unused) */
	void *gap_arg;
};

static inline struct sl_window_assigner sl_assigner_tumbling(int64_t size, int64_t offset)
{
	return (struct sl_window_assigner){ .kind = SL_ASSIGNER_TUMBLING,
					    .size = size,
					    .offset = offset };
}

static inline struct sl_window_assigner sl_assigner_sliding(int64_t size, int64_t slide,
							    int64_t offset)
{
	return (struct sl_window_assigner){
		.kind = SL_ASSIGNER_SLIDING, .size = size, .slide = slide, .offset = offset
	};
}

static inline struct sl_window_assigner sl_assigner_session(int64_t gap)
{
	return (struct sl_window_assigner){ .kind = SL_ASSIGNER_SESSION, .gap = gap };
}

static inline struct sl_window_assigner sl_assigner_session_dynamic(sl_session_gap_fn fn, void *arg)
{
	return (
	    struct sl_window_assigner){ .kind = SL_ASSIGNER_SESSION, .gap_fn = fn, .gap_arg = arg };
}

static inline struct sl_window_assigner sl_assigner_global(void)
{
	return (struct sl_window_assigner){ .kind = SL_ASSIGNER_GLOBAL };
}

/* ------------------------------------------------------------ triggers */

/** What a trigger decides (Flink's TriggerResult); FIRE_AND_PURGE == FIRE | PURGE. */
enum sl_trigger_result {
	SL_TRIGGER_CONTINUE = 0,       /**< nothing */
	SL_TRIGGER_FIRE = 1,	       /**< evaluate the window function, keep the contents */
	SL_TRIGGER_PURGE = 2,	       /**< drop the contents (not the trigger's state) */
	SL_TRIGGER_FIRE_AND_PURGE = 3, /**< fire, then drop the contents */
};

/**
 * What a trigger callback may use: its window, the clocks, its timers
 * and its per-window state. Valid during the callback only.
 */
struct sl_trigger_ctx;

/** The window the callback is about. */
const struct sl_window *sl_trigger_ctx_window(const struct sl_trigger_ctx *c);
/** The current key's bytes. */
const struct sl_key *sl_trigger_ctx_key(const struct sl_trigger_ctx *c);
/** The operator's current watermark (INT64_MIN before the first). */
int64_t sl_trigger_ctx_watermark(const struct sl_trigger_ctx *c);
/** Processing time in ms (the platform's now_ms clock, else CLOCK_REALTIME). */
int64_t sl_trigger_ctx_processing_time(const struct sl_trigger_ctx *c);
/**
 * The trigger's state for this key and window: state_size bytes (struct
 * sl_trigger_ops), zeroed for a new window and by nothing else: clear()
 * must reset what it wants reset. Flink's partitioned trigger state.
 */
void *sl_trigger_ctx_state(struct sl_trigger_ctx *c);

/**
 * Timers of this key and window (Flink's TriggerContext), unique per
 * (key, window, time) and domain: registering one that exists does
 * nothing. An event-time timer fires on_event_time() when the watermark
 * reaches it; a processing-time one fires on_processing_time() when the
 * clock does (pending ones do not fire at the end of input).
 * Return: 1 added / deleted, 0 existed / did not exist; -EINVAL (bad
 * @c); -ENOMEM.
 */
int sl_trigger_register_event_timer(struct sl_trigger_ctx *c, int64_t time);
int sl_trigger_register_processing_timer(struct sl_trigger_ctx *c, int64_t time);
int sl_trigger_delete_event_timer(struct sl_trigger_ctx *c, int64_t time);
int sl_trigger_delete_processing_timer(struct sl_trigger_ctx *c, int64_t time);

/**
 * In on_merge(): how many windows were merged into this one, and the
 * trigger state of the @i-th (read-only; order of their starts). Flink's
 * OnMergeContext.mergePartitionedState() is the trigger folding these
 * into sl_trigger_ctx_state(), which starts zeroed for the merged window.
 */
unsigned sl_trigger_ctx_merged_count(const struct sl_trigger_ctx *c);
const void *sl_trigger_ctx_merged_state(const struct sl_trigger_ctx *c, unsigned i);

/**
 * A custom trigger (Flink's Trigger). Callbacks return an enum
 * sl_trigger_result, or -errno to fail the job; any other value fails it
 * too. NULL callbacks return CONTINUE (clear: do nothing).
 * @state_size:  bytes of per-(key, window) state (sl_trigger_ctx_state()).
 * @on_element:  an element was added to the window.
 * @on_event_time, @on_processing_time: a timer of this window fired
 *               (it may also be the operator's cleanup timer, at
 *               max_ts + allowed lateness: the window is cleared after).
 * @on_merge:    merging assigners (sessions): the windows were merged
 *               into sl_trigger_ctx_window(); re-register timers for it.
 *               Return 0 or -errno. NULL: the trigger cannot merge, and
 *               is refused on session windows (as Flink's canMerge()).
 * @clear:       the window is gone (cleanup, or merged into another):
 *               delete its timers. Return 0 or -errno.
 */
struct sl_trigger_ops {
	uint32_t state_size;
	int (*on_element)(struct sl_trigger_ctx *c, const void *elem, int64_t ts,
			  const struct sl_batch *src, void *arg);
	int (*on_event_time)(struct sl_trigger_ctx *c, int64_t time, void *arg);
	int (*on_processing_time)(struct sl_trigger_ctx *c, int64_t time, void *arg);
	int (*on_merge)(struct sl_trigger_ctx *c, void *arg);
	int (*clear)(struct sl_trigger_ctx *c, void *arg);
};

enum sl_trigger_kind {
	SL_TRIGGER_KIND_DEFAULT = 0, /**< the assigner's: event time, or never for global */
	SL_TRIGGER_KIND_EVENT_TIME,
	SL_TRIGGER_KIND_PROCESSING_TIME,
	SL_TRIGGER_KIND_COUNT,
	SL_TRIGGER_KIND_CONTINUOUS_EVENT_TIME,
	SL_TRIGGER_KIND_NEVER,
	SL_TRIGGER_KIND_CUSTOM,
};

/**
 * A trigger, by value (make one with the constructors below). Setting a
 * trigger replaces the assigner's default; @purging turns every FIRE
 * into FIRE_AND_PURGE (Flink's PurgingTrigger).
 *
 * Built-ins, as Flink's:
 *   event time      on element: FIRE if max_ts <= watermark, else a timer
 *                   at max_ts; on that timer: FIRE.
 *   processing time on element: a processing-time timer at max_ts; on it:
 *                   FIRE.
 *   count(n)        FIRE (and reset) on every n-th element of the window.
 *   continuous event time(interval): as event time, and also FIRE at
 *                   event times t0 + k * interval (t0 = the first
 *                   element's ts - ts % interval, Java's remainder),
 *                   capped at max_ts: Flink's ContinuousEventTimeTrigger.
 *   never           CONTINUE always (global windows' default).
 */
struct sl_trigger {
	enum sl_trigger_kind kind;
	bool purging;
	uint64_t count;			  /**< count: n > 0 */
	int64_t interval;		  /**< continuous event time: > 0 */
	const struct sl_trigger_ops *ops; /**< custom (borrowed: must outlive the job) */
	void *arg;			  /**< custom */
};

static inline struct sl_trigger sl_trigger_event_time(void)
{
	return (struct sl_trigger){ .kind = SL_TRIGGER_KIND_EVENT_TIME };
}

static inline struct sl_trigger sl_trigger_processing_time(void)
{
	return (struct sl_trigger){ .kind = SL_TRIGGER_KIND_PROCESSING_TIME };
}

static inline struct sl_trigger sl_trigger_count(uint64_t n)
{
	return (struct sl_trigger){ .kind = SL_TRIGGER_KIND_COUNT, .count = n };
}

static inline struct sl_trigger sl_trigger_continuous_event_time(int64_t interval)
{
	return (struct sl_trigger){ .kind = SL_TRIGGER_KIND_CONTINUOUS_EVENT_TIME,
				    .interval = interval };
}

static inline struct sl_trigger sl_trigger_never(void)
{
	return (struct sl_trigger){ .kind = SL_TRIGGER_KIND_NEVER };
}

static inline struct sl_trigger sl_trigger_custom(const struct sl_trigger_ops *ops, void *arg)
{
	return (struct sl_trigger){ .kind = SL_TRIGGER_KIND_CUSTOM, .ops = ops, .arg = arg };
}

/** Flink's PurgingTrigger.of(t): @t with every FIRE turned into FIRE_AND_PURGE. */
static inline struct sl_trigger sl_trigger_purging(struct sl_trigger t)
{
	t.purging = true;
	return t;
}

/* ---------------------------------------------------- window functions */

/**
 * What a window function or evictor sees besides the contents. Valid
 * during the call.
 * @state: process functions: per-(key, window) state of the conf's
 *         state_size bytes, zeroed when the window is created, freed at
 *         its cleanup (after the conf's clear()); NULL when state_size is
 *         0 and for evictors. (Flink's ProcessWindowFunction windowState();
 *         not on session windows, as in Flink.)
 */
struct sl_window_ctx {
	struct sl_window window;
	struct sl_key key;
	int64_t watermark;	 /**< the operator's current watermark */
	int64_t processing_time; /**< ms */
	void *state;
	const struct sl_subtask_info *info;
};

/**
 * A process window function (Flink's ProcessWindowFunction): @contents
 * holds the window's elements (n of them, sl_batch_elem(contents, i),
 * their timestamps in contents->ts, strings resolving against
 * contents), in arrival order; after an incremental function, exactly
 * one element: the reduced element, or the aggregate's accumulator
 * (acc_size bytes). Emit through @out; whatever timestamp is given to
 * sl_emit(), outputs are stamped sl_window_max_ts() (Flink's
 * TimestampedCollector). Pass @contents as sl_emit()'s src to emit an
 * element of the contents with its strings. Return 0 or -errno.
 */
typedef int (*sl_window_process_fn)(const struct sl_window_ctx *ctx,
				    const struct sl_batch *contents, struct sl_collector *out,
				    void *arg);

/* ------------------------------------------------------------ evictors */

/**
 * A custom evictor (Flink's Evictor): set evict[i] to remove element i of
 * @contents (arrival order, with timestamps) before, or after, the window
 * function runs. Either callback may be NULL. Return 0 or -errno.
 */
struct sl_evictor_ops {
	int (*evict_before)(const struct sl_window_ctx *ctx, const struct sl_batch *contents,
			    bool *evict, void *arg);
	int (*evict_after)(const struct sl_window_ctx *ctx, const struct sl_batch *contents,
			   bool *evict, void *arg);
};

enum sl_evictor_kind {
	SL_EVICTOR_NONE = 0,
	SL_EVICTOR_COUNT,  /**< keep the last @count elements */
	SL_EVICTOR_TIME,   /**< drop elements with ts <= max ts of the contents - @size */
	SL_EVICTOR_CUSTOM, /**< @ops */
};

/**
 * An evictor, by value. Built-ins evict before the function unless
 * @after (Flink's doEvictAfter). An evictor keeps the contents as a list
 * even for reduce and aggregate (it disables pre-aggregation): those are
 * then computed over the remaining elements at each firing. Evicted
 * elements are gone for later firings too. When evict-before leaves no
 * element, as in Flink, process is called with none, an aggregate emits
 * the result of a fresh accumulator, and a reduce emits nothing.
 */
struct sl_evictor {
	enum sl_evictor_kind kind;
	bool after;
	uint64_t count;			  /**< count: > 0 */
	int64_t size;			  /**< time: >= 0 */
	const struct sl_evictor_ops *ops; /**< custom (borrowed: must outlive the job) */
	void *arg;
};

static inline struct sl_evictor sl_evictor_count(uint64_t n, bool after)
{
	return (struct sl_evictor){ .kind = SL_EVICTOR_COUNT, .count = n, .after = after };
}

static inline struct sl_evictor sl_evictor_time(int64_t size, bool after)
{
	return (struct sl_evictor){ .kind = SL_EVICTOR_TIME, .size = size, .after = after };
}

static inline struct sl_evictor sl_evictor_custom(const struct sl_evictor_ops *ops, void *arg)
{
	return (struct sl_evictor){ .kind = SL_EVICTOR_CUSTOM, .ops = ops, .arg = arg };
}

/* -------------------------------------------------------------- sl_window */

/**
 * A windowed computation; sl_window() copies it (custom ops and args are
 * borrowed). Exactly one of: @reduce; @aggregate; @process; @reduce with
 * @process; @aggregate with @process (incremental, then process with the
 * single result).
 *
 * @reduce:    folds an element into the accumulator, an element of the
 *             input type; the window's first element is the accumulator
 *             as is (its strings are kept: the function may change other
 *             fields only). Alone, the output is the accumulator (output
 *             type = input type), stamped max_ts.
 * @aggregate: create/add/merge/result (merge needed for sessions without
 *             an evictor); alone, result() emits the output.
 * @process:   see sl_window_process_fn.
 * @arg:       passed to @reduce, @process and @clear.
 * @state_size: process: bytes of per-window state (sl_window_ctx.state).
 * @clear:     process: the window is being cleaned up (Flink's
 *             ProcessWindowFunction.clear()); optional.
 */
struct sl_window_conf {
	struct sl_window_assigner assigner;
	struct sl_trigger trigger; /**< zeroed: the assigner's default */
	struct sl_evictor evictor; /**< zeroed: none */
	int64_t allowed_lateness;  /**< >= 0; event-time windows only */
	sl_reduce_fn reduce;
	const struct sl_aggregate *aggregate; /**< copied */
	sl_window_process_fn process;
	void *arg;
	uint32_t state_size;
	void (*clear)(const struct sl_window_ctx *ctx, void *arg);
};

/**
 * sl_window_conf_count() - Flink's countWindow(@size) (@slide 0) or
 * countWindow(@size, @slide): the global assigner with, respectively, a
 * purging count(size) trigger, or a count(slide) trigger and a count(size)
 * evictor. Sets those fields of @conf only.
 */
static inline void sl_window_conf_count(struct sl_window_conf *conf, uint64_t size, uint64_t slide)
{
	conf->assigner = sl_assigner_global();
	if (slide == 0) {
		conf->trigger = sl_trigger_purging(sl_trigger_count(size));
		conf->evictor = (struct sl_evictor){ .kind = SL_EVICTOR_NONE };
	} else {
		conf->trigger = sl_trigger_count(slide);
		conf->evictor = sl_evictor_count(size, false);
	}
}

/**
 * sl_window() - windows over the keyed stream @keyed (after sl_key_by())
 * as @conf says; output elements of @out_type.
 *
 * Per element (Flink's WindowOperator.processElement): for each window
 * the assigner gives it (sessions first merge with the key's windows it
 * touches, calling the trigger's on_merge, then clear on the merged
 * windows), skip the window if it is late (event-time windows: max_ts +
 * allowed_lateness <= watermark); else add the element to the window's
 * contents (folded into the accumulator when incremental) and call the
 * trigger's on_element; FIRE evaluates the window function over the
 * contents (nothing when they are empty), PURGE then empties them; then
 * a cleanup timer is registered at max_ts + allowed_lateness (none for
 * the global window or when that overflows). Timers call the trigger
 * the same way; the cleanup timer then clears the window: contents,
 * trigger (clear()), process state (conf clear()). Late elements (every
 * window skipped, ts + allowed_lateness <= watermark, event-time windows
 * only) go to side output 0 (sl_side_output(stream, 0, input type)) when
 * it is connected, otherwise they are counted in late_records_dropped.
 *
 * Outputs are stamped with the window's max_ts, whatever the function
 * passed to sl_emit() (Flink's TimestampedCollector).
 *
 * Contents: copies of the elements, their timestamps and their strings.
 * Merged sessions concatenate their contents in order of the windows'
 * starts; an evictor's removals keep the others in order.
 *
 * Errors (reported by sl_job_validate(), with a sentence naming the
 * operator): NULL @conf or @out_type; no or an unknown assigner, bad
 * sizes, slide, gap; a trigger with count 0, interval <= 0, no custom ops,
 * or a custom trigger without on_merge on session windows; an evictor
 * with count 0, size < 0, or no callbacks; not exactly one of the
 * function forms; reduce output type differing from the input's; an
 * aggregate without add, result (alone) or acc_size, or without merge on
 * session windows without an evictor; state_size on session windows;
 * allowed_lateness < 0; an input that is not keyed.
 */
struct sl_stream *sl_window(struct sl_stream *keyed, const char *name,
			    const struct sl_window_conf *conf, const struct sl_type *out_type);

#ifdef __cplusplus
}
#endif
#endif /* SL_TIME_H */
