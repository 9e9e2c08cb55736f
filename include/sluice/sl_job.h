/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_job.h — building and running a dataflow job.
 *
 * A job is a graph of operators built with a fluent API: every operator
 * function takes a stream and returns a new one. Builder functions never
 * fail loudly: a bad argument is recorded in the job (the first error
 * wins) and reported, with a sentence naming the operator, by
 * sl_job_validate() and sl_job_run(). They return NULL only when given a
 * NULL stream or job, and accept NULL streams (propagating the error), so
 * a job can be written as straight-line code and checked once.
 *
 * Elements are the job's own fixed-size structs, described by a struct
 * sl_type (size, and where its struct sl_str fields are). Every element
 * carries an event timestamp (int64 ms) beside it in its batch.
 *
 * Execution (sl_job_run): operators joined by forward edges with equal
 * parallelism are fused into one task (a loop of direct calls over a
 * batch); each task runs as `parallelism` subtasks spread over worker
 * threads pinned to cores; data crosses between tasks over N x M SPSC
 * rings with a partitioner per edge (forward, rebalance, rescale,
 * broadcast, hash by key group). Rings are bounded: a task whose outputs
 * are full does not run, so a slow sink slows its source.
 *
 * Threads: building, validating, printing and running are for one thread.
 * sl_job_stop() may be called from any thread or a signal handler.
 */
#ifndef SL_JOB_H
#define SL_JOB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sl_alloc.h"
#include "sl_batch.h"
#include "sl_snap.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sl_job;
struct sl_stream;

/* ---------------------------------------------------------------- types */

/** Most struct sl_str fields one element type may have. */
#define SL_TYPE_MAX_STR 8

/** An element type: its size and the offsets of its struct sl_str fields. */
struct sl_type {
	const char *name;
	uint32_t size;
	uint32_t nstr;
	uint32_t str_off[SL_TYPE_MAX_STR];
};

/** A type without strings: `static const struct sl_type t = SL_TYPE(struct click);` */
#define SL_TYPE(T)                                                         \
	{                                                                  \
		.name = #T, .size = sizeof(T), .nstr = 0, .str_off = { 0 } \
	}
/** A type with one string field. */
#define SL_TYPE_STR1(T, f1)                                                              \
	{                                                                                \
		.name = #T, .size = sizeof(T), .nstr = 1, .str_off = { offsetof(T, f1) } \
	}
/** A type with two string fields. */
#define SL_TYPE_STR2(T, f1, f2)                                        \
	{                                                              \
		.name = #T, .size = sizeof(T), .nstr = 2, .str_off = { \
			offsetof(T, f1),                               \
			offsetof(T, f2)                                \
		}                                                      \
	}

/* ------------------------------------------------------------ contexts */

/** Counters an operator, source or sink bumps (relaxed atomics; read by status and summaries). */
struct sl_counters {
	_Atomic uint64_t bad_records;	       /**< malformed or oversized input records */
	_Atomic uint64_t late_records_dropped; /**< event-time records dropped as late */
};

/**
 * Which subtask an instance of an operator, source or sink is. The
 * runtime keeps it alive from open() to close(), so the instance may keep
 * the pointer.
 */
struct sl_subtask_info {
	const char *op_name;
	unsigned index;	      /**< 0 .. parallelism-1 */
	unsigned parallelism; /**< of this operator */
	unsigned max_parallelism;
	int worker;		      /**< worker thread running it */
	int pu;			      /**< core (PU OS index) it is pinned to, or -1 */
	uint32_t batch_size;	      /**< elements per batch in this job */
	uint32_t max_record_size;     /**< bytes; larger records are bad records */
	struct sl_counters *counters; /**< this operator's counters (shared by its subtasks) */
	/**
	 * The checkpoint this run was restored from (its sources resume after
	 * it, its sinks' next epoch is restored_checkpoint + 1); 0 for a fresh
	 * start.
	 */
	int64_t restored_checkpoint;
	/**
	 * Before returning -errno, write one sentence here saying what went
	 * wrong and where (e.g. "input.csv:17: expected 3 fields"); the
	 * runtime prefixes the operator name and subtask.
	 */
	char *errbuf;
	size_t errlen;
};

/**
 * The collector an operator emits into. Emitted elements are copied, so
 * the caller's element may live on the stack. Strings: pass the element
 * with its struct sl_str fields pointing into @src_batch's arena (or set
 * src_batch NULL when the element has none, or after sl_emit_str()).
 */
struct sl_collector;

/**
 * sl_emit() - emit one element with event timestamp @ts.
 * @src: the batch the element's struct sl_str fields refer to; NULL when
 *       the type has no strings or they were built with sl_collector_str().
 * Return: 0, or -errno (out of memory, or an error downstream in the
 * fused chain), which the operator should return.
 */
int sl_emit(struct sl_collector *c, const void *elem, int64_t ts, const struct sl_batch *src);

/**
 * sl_emit_side() - emit to the side output @tag (0 .. n-1, as declared
 * with sl_side_output()) of a process operator.
 */
int sl_emit_side(struct sl_collector *c, unsigned tag, const void *elem, int64_t ts,
		 const struct sl_batch *src);

/**
 * sl_collector_str() - copy @len bytes into the arena of the batch the
 * next sl_emit() writes to, and return the reference to store in the
 * element. The bytes stay valid for that emit only.
 * Return: 0, or -ENOMEM / -E2BIG (longer than the job's max record size).
 */
int sl_collector_str(struct sl_collector *c, const void *bytes, uint32_t len, struct sl_str *out);

/* --------------------------------------------------- user function types */

/** Per element: write the result to @out. Return 0, or -errno to fail the job. */
typedef int (*sl_map_fn)(const void *in, void *out, void *arg);
/**
 * Per batch: @out has room for in->n elements of the output type and an
 * empty arena; write out->n results (ts[] and strings included).
 * With the object-reuse option @out may be @in (see sl_job_set()).
 * Return 0, or -errno.
 */
typedef int (*sl_map_batch_fn)(const struct sl_batch *in, struct sl_batch *out, void *arg);
/** Per element: 1 keep, 0 drop, -errno fail. */
typedef int (*sl_filter_fn)(const void *in, void *arg);
/** Per batch, in place: compact the kept elements (and their ts) to the front, set b->n. */
typedef int (*sl_filter_batch_fn)(struct sl_batch *b, void *arg);
/** Per element: emit zero or more outputs through @out. */
typedef int (*sl_flat_map_fn)(const void *in, int64_t ts, const struct sl_batch *src,
			      struct sl_collector *out, void *arg);
/** Per element, with side outputs (sl_emit_side) and the subtask info. */
typedef int (*sl_process_fn)(const struct sl_subtask_info *self, const void *in, int64_t ts,
			     const struct sl_batch *src, struct sl_collector *out, void *arg);

/** The bytes that identify an element's key. */
struct sl_key {
	const void *ptr;
	uint32_t len;
};
/**
 * Extract the key of @elem (strings resolve against @src). Must be pure.
 * @out->ptr may point into @elem, into @src's arena, or into storage the
 * function reuses at its next call: the engine reads or copies the key
 * before it calls the function again.
 */
typedef void (*sl_key_fn)(const void *elem, const struct sl_batch *src, struct sl_key *out);

/**
 * Combine @in into the accumulator @acc (both of the stream's type); the
 * first element of a key becomes its accumulator as is.
 */
typedef int (*sl_reduce_fn)(void *acc, const void *in, void *arg);

/* ----------------------------------------------------- sources and sinks */

/** sl_source_ops.poll() returns this (or'ed into the count) at the end of input. */
#define SL_SOURCE_END (1 << 30)
/**
 * sl_source_ops.poll() or's this into the count when the split out->split
 * has no more records after those returned (which may be none).
 */
#define SL_SOURCE_SPLIT_END (1 << 29)

struct sl_source_ops {
	/** Open subtask @info->index of @info->parallelism; *state is passed back. */
	int (*open)(void *arg, const struct sl_subtask_info *info, void **state);
	/**
	 * Fill @out (empty, cap elements, the source's type) with up to
	 * out->cap elements and their timestamps. Return the number added,
	 * or'ed with SL_SOURCE_END when the input is exhausted; 0 means
	 * nothing available now (the worker moves on); -errno fails the job.
	 *
	 * Splits (optional; files of a directory, Kafka partitions), for
	 * watermarks per split (sl_time.h): a source made of several splits
	 * sets out->nsplits to how many this subtask has so far (numbered
	 * 0..n-1; the number may grow from one poll to the next, a partition
	 * discovered, never shrink) and out->split to the split every record
	 * it returns comes from (so it cuts its batches where the split
	 * changes). Both are 0 on entry; a source that leaves nsplits 0 is
	 * one split, number 0. A split counted holds the subtask's watermark
	 * back, records or not, until poll() reports its end with
	 * SL_SOURCE_SPLIT_END (SL_SOURCE_END ends them all) or it turns idle.
	 * A split number >= the count fails the job (-EINVAL).
	 */
	int (*poll)(void *state, struct sl_batch *out);
	/** Release everything; called once after open() succeeded. */
	void (*close)(void *state);

	/*
	 * Checkpoints (sl_snap.h). A job with checkpoints enabled refuses to
	 * start when one of its sources has no snapshot().
	 */
	/**
	 * Write the position just after the last record poll() returned into
	 * the operator section (SL_SNAP_OP) of @w: replaying from it must
	 * return exactly the records that follow. Return 0 or -errno.
	 */
	int (*snapshot)(void *state, struct sl_snap_writer *w);
	/**
	 * Called after open() and before the first poll() when the job is
	 * restored: @r holds the operator section this subtask wrote (the
	 * parallelism of a source cannot change across a restore). Seek to
	 * it. Return 0 or -errno (-EBADMSG: the position is invalid for the
	 * input, e.g. the file is shorter; say so in errbuf).
	 */
	int (*restore)(void *state, struct sl_snap_reader *r);
};

struct sl_sink_ops {
	int (*open)(void *arg, const struct sl_subtask_info *info, void **state);
	/** Consume a batch of elements. Return 0 or -errno. */
	int (*write)(void *state, const struct sl_batch *b);
	/** End of input reached: make everything durable. Return 0 or -errno. */
	int (*finish)(void *state);
	void (*close)(void *state);

	/*
	 * Two-phase commit (optional; Flink's TwoPhaseCommitSinkFunction).
	 * With checkpoints enabled, a sink with pre_commit is exactly-once;
	 * one without is at-least-once (its writes are visible at once and
	 * are repeated after a restore).
	 */
	/**
	 * Barrier @ckpt reached the sink: make everything written so far
	 * durable but not yet visible, and record in the operator section of
	 * @w what commit() and recover() need to make it visible. Also called
	 * after finish() for the final checkpoint. Return 0 or -errno.
	 */
	int (*pre_commit)(void *state, int64_t ckpt, struct sl_snap_writer *w);
	/**
	 * Checkpoint @ckpt is complete: make visible what was pre-committed
	 * for it and every earlier checkpoint. Called on the subtask's own
	 * thread, or after the run on the thread of sl_job_run(). Must be
	 * idempotent. Return 0 or -errno (the job fails: the checkpoint is
	 * complete, so a restore commits it again through recover()).
	 */
	int (*commit)(void *state, int64_t ckpt);
	/**
	 * Once per run, before any subtask opens, also on a fresh start (then
	 * @ckpt is 0 and @nold 0). Restored from checkpoint @ckpt: @old[i] holds the operator
	 * section old subtask i wrote in pre_commit() (@nold: the old parallelism). Commit all of
	 * it (idempotently: some may have been committed before the crash) and roll back everything
	 * else the sink left (in-progress and pre-committed output of later checkpoints). @arg is
	 * the sink's configuration. Return 0 or -errno with a sentence in
	 * @errbuf.
	 */
	int (*recover)(void *arg, int64_t ckpt, struct sl_snap_reader *const *old, unsigned nold,
		       char *errbuf, size_t errlen);
};

/* ---------------------------------------------------------------- jobs */

/**
 * sl_job_create() - an empty job named @name.
 * Return: 0; -EINVAL; -ENOMEM.
 */
int sl_job_create(const char *name, struct sl_job **out);

/** sl_job_destroy() - free a job and everything built in it; accepts NULL. */
void sl_job_destroy(struct sl_job *job);

/**
 * sl_job_set() - set a job option by name, as the CLI does.
 *
 * | key             | value                                  | default |
 * |-----------------|----------------------------------------|---------|
 * | parallelism     | 1..1024                                | 1       |
 * | max-parallelism | 1..32768 (key groups)                  | Flink's rule from parallelism |
 * | workers         | 1..usable cores                        | min(cores, subtasks) |
 * | batch-size      | 1..65536 elements                      | 512     |
 * | ring-size       | power of two, 2..65536 batches         | 64      |
 * | idle            | busy (busy-poll) or sleep (spin, then sleep) | sleep |
 * | max-record-size | bytes of one record's strings, 16..1 GiB | 1 MiB |
 * | object-reuse    | true or false (Flink's enableObjectReuse) | false |
 * | state-memory    | 0 or >= 64K bytes per subtask; K, M, G, T | 0 (unlimited) |
 * | state-dir       | directory for spill files              | see below |
 * | state-io        | auto, io_uring or posix                | auto    |
 * | checkpoint-dir  | directory of checkpoints (chk-N)       | none: no checkpoints |
 * | checkpoint-interval | duration (200ms, 10s...; 0: only the final one) | 0 |
 * | checkpoint-timeout | duration > 0                        | 10m     |
 * | checkpoint-min-pause | duration                          | 0       |
 * | checkpoint-tolerable-failures | 0..1000000               | 0       |
 * | checkpoint-retained | 1..1000000 complete checkpoints kept | 3      |
 * | checkpoint-mode | exactly-once or at-least-once          | exactly-once |
 * | checkpoint-unaligned | true or false (exactly-once only; see checkpoint.c) | false |
 * | checkpoint-io   | auto, io_uring, posix; tests: fault:KIND@N (sli_ckpt.h) | auto |
 * | restore         | latest, or a checkpoint or savepoint directory | none |
 * | savepoint-dir   | sl_job_savepoint()'s default target    | none    |
 * | savepoint-on-stop | directory: a stop's final checkpoint is a savepoint there | none |
 * | restart-strategy | none, fixed-delay, failure-rate or exponential-delay | see below |
 * | restart-attempts | fixed-delay: 0..2147483647              | 1       |
 * | restart-delay    | fixed-delay, failure-rate: duration     | 1s      |
 * | restart-max-failures-per-interval | failure-rate: 1..1000000 | 1    |
 * | restart-failure-rate-interval | failure-rate: duration > 0 | 1m      |
 * | restart-initial-backoff | exponential-delay: duration      | 1s      |
 * | restart-max-backoff | exponential-delay: duration >= initial | 1m    |
 * | restart-backoff-multiplier | exponential-delay: 1..1000    | 1.5     |
 * | restart-reset-backoff-threshold | exponential-delay: > 0   | 1h      |
 * | restart-jitter-factor | exponential-delay: 0..1            | 0.1     |
 * | restart-attempts-before-reset-backoff | 1..2147483647      | 2147483647 |
 *
 * Worker placement (spread or pack) belongs to the platform (sl_numa.h).
 *
 * state-memory: sizes are bytes, or take a unit K, M, G or T (also KB,
 * KiB...; any case), all powers of 1024: 64M = 64MiB = 67108864. The
 * memory budget of each keyed operator subtask's state
 * (sl_state.h) — its table's slots and the entries it keeps in memory.
 * Past it, cold entries are written to files in a directory
 * STATE-DIR/OPERATOR-SUBTASK and read back when accessed (states with an
 * event-time TTL live in a second table, STATE-DIR/OPERATOR-SUBTASK-event;
 * when there is one, each table gets half the budget). The spill store's
 * own memory is on top: about 2 MiB of buffers per table and an index of
 * 21..43 bytes per spilled entry. 0 keeps all state in memory. Only
 * sl_state.h state is bounded: windows, joins and sl_reduce keep theirs
 * in memory.
 * state-dir: created when missing (the option checks that it, or its
 * nearest existing parent, is a writable directory); the per-subtask
 * directories in it are created at open and removed, with their files,
 * when the job ends. The default directory, sluice-state-PID-JOB under
 * $TMPDIR (or /tmp), is removed too once its last subtask closed; a
 * directory given here is left in place. Spill files are a cache, not a
 * checkpoint: a later run deletes stale ones.
 * state-io: how spill files are read and written. auto is io_uring,
 * falling back to pread/pwrite (logged) when io_uring is unavailable or
 * in a sanitizer build; io_uring and posix fail the run's open when that
 * engine cannot be set up.
 *
 * Checkpoints (README "Checkpoints and exactly-once output"): with
 * checkpoint-dir set, the job takes a checkpoint every checkpoint-interval
 * and a final one at the end of its input or on sl_job_stop(); it needs
 * sl_job_use_checkpoint_storage() (sl_state.h). restore=latest starts from
 * the newest complete checkpoint of checkpoint-dir, or from the beginning
 * when there is none; a path names one checkpoint directory. Every
 * operator must support checkpoints (sources with snapshot/restore,
 * stateless operators, windows of sl_window_aggregate, sinks); others make
 * sl_job_run() fail with -ENOTSUP naming the operator.
 *
 * Savepoints (README "Savepoints"): savepoint-dir is sl_job_savepoint()'s
 * target when it is given none. savepoint-on-stop=DIR: after
 * sl_job_stop(), the final checkpoint is written as a savepoint
 * DIR/savepoint-<id>-<hex> instead of into checkpoint-dir (Flink's
 * stop-with-savepoint; sl_job_last_savepoint() names it). restore=PATH
 * also takes a savepoint directory, at any parallelism. With an
 * exactly-once sink, a savepoint leaves checkpoint-dir/_savepoint-N until
 * a newer checkpoint completes, and restore=latest refuses meanwhile,
 * naming the savepoint (its output is committed; an older checkpoint
 * would write it twice).
 *
 * Restart strategies (Flink's, with its defaults; README "Restart
 * strategies"; the default is exponential-delay with a checkpoint-dir,
 * none without): when an attempt fails, sl_job_run() logs a warning with
 * the cause, waits the strategy's delay (sl_job_stop() ends the wait and
 * the run with 0) and runs the job again in-process, restored from the
 * newest complete checkpoint of checkpoint-dir (from restore=PATH or the
 * beginning when there is none yet). Not restarted: failures before the
 * workers run or while operators open and restore (setup, a refused
 * restore, a max-parallelism change), -EINVAL, -ENOTSUP, -EBADMSG,
 * -E2BIG, -EOVERFLOW and -EPROTO (bad records under the fail policy, an
 * input that cannot be replayed, corrupt data, an oversized record, a
 * broken operator contract), and everything with strategy none. When the strategy
 * gives up, the last cause is returned with "(restart strategy S gave up
 * after N restarts)". Without checkpoint-dir a restart starts from the
 * beginning. exponential-delay: the n-th wait is restart-initial-backoff
 * times restart-backoff-multiplier^(n-1), at most restart-max-backoff,
 * moved randomly by up to restart-jitter-factor of it; after
 * restart-reset-backoff-threshold of running since the last restart it
 * starts over. failure-rate gives up on the failure that would be the
 * (max + 1)-th within restart-failure-rate-interval.
 *
 * object-reuse: a map (sl_map, sl_map_batch) whose output elements have
 * the size of its input elements runs in place: its output is written
 * over its input. A per-element sl_map_fn then gets out == in, and an
 * sl_map_batch_fn gets out == in (out->ts already holds the input's
 * timestamps, the input's strings stay valid). The function must read
 * element i before it writes element i, and nothing else. Like Flink's
 * object reuse, it saves a copy per element and is off by default.
 *
 * Return: 0; -ENOENT for an unknown key, -EINVAL for a bad value (with a
 * sentence in @errbuf naming the key and the accepted values); -ENOMEM.
 */
int sl_job_set(struct sl_job *job, const char *key, const char *value, char *errbuf, size_t errlen);

/**
 * sl_parse_duration_ms() - a duration as the options take it: an integer
 * of milliseconds, or with a unit ms, s, m or h ("200ms", "5s", "1h").
 * @min: the smallest value accepted. Return: 0; -EINVAL (also on
 * overflow, a sign, spaces or another unit).
 */
int sl_parse_duration_ms(const char *s, int64_t min, int64_t *out);

/** Read back an option as text (after defaults are resolved by validate). */
int sl_job_get(const struct sl_job *job, const char *key, char *buf, size_t len);

/* Stream construction. @name is the operator's name in plans and errors. */

struct sl_stream *sl_source(struct sl_job *job, const char *name, const struct sl_source_ops *ops,
			    void *arg, const struct sl_type *type);
struct sl_stream *sl_map(struct sl_stream *in, const char *name, sl_map_fn fn, void *arg,
			 const struct sl_type *out_type);
struct sl_stream *sl_map_batch(struct sl_stream *in, const char *name, sl_map_batch_fn fn,
			       void *arg, const struct sl_type *out_type);
struct sl_stream *sl_filter(struct sl_stream *in, const char *name, sl_filter_fn fn, void *arg);
struct sl_stream *sl_filter_batch(struct sl_stream *in, const char *name, sl_filter_batch_fn fn,
				  void *arg);
struct sl_stream *sl_flat_map(struct sl_stream *in, const char *name, sl_flat_map_fn fn, void *arg,
			      const struct sl_type *out_type);
struct sl_stream *sl_process(struct sl_stream *in, const char *name, sl_process_fn fn, void *arg,
			     const struct sl_type *out_type);
/**
 * The side output @tag of process operator @proc, of elements of @type.
 * Windows: tag 0, the late elements (input type). Joins: tag 0 and 1,
 * the late elements of the left and the right input (their types);
 * without it, late elements are dropped and counted.
 */
struct sl_stream *sl_side_output(struct sl_stream *proc, unsigned tag, const struct sl_type *type);

/** Partition the next edge by key group of @fn's key (Flink's keyBy). */
struct sl_stream *sl_key_by(struct sl_stream *in, sl_key_fn fn);

/**
 * sl_key_by_field() - sl_key_by() with the key the @len bytes at @offset
 * of each element (Flink's keyBy(field)): as a key function returning
 * { elem + offset, len }, same hashes, key groups and state. The window
 * operator reads such a key inline (no call per element), and with a key
 * of 8 bytes and a built-in aggregate (sl_time.h) runs a specialised loop.
 * Use offsetof() and sizeof() of the field; key by strings with sl_key_by().
 * Errors (reported by sl_job_validate()): -EINVAL when @len is 0, the field
 * is not inside the stream's elements, or it overlaps a struct sl_str.
 */
struct sl_stream *sl_key_by_field(struct sl_stream *in, uint32_t offset, uint32_t len);

enum sl_reduce_mode {
	SL_REDUCE_ROLLING =
	    0, /**< emit the updated accumulator for every element (Flink streaming) */
	SL_REDUCE_FINAL = 1, /**< emit each key's accumulator once, at end of input */
};
/** Keyed reduce; @in must come from sl_key_by(). */
struct sl_stream *sl_reduce(struct sl_stream *in, const char *name, sl_reduce_fn fn, void *arg,
			    enum sl_reduce_mode mode);

/** Union of two streams of the same type. */
struct sl_stream *sl_union(struct sl_stream *a, struct sl_stream *b);

/* Partitioning of the edge leaving @in (default: forward when parallelism
 * is equal, else rebalance). */
struct sl_stream *sl_rebalance(struct sl_stream *in);
struct sl_stream *sl_rescale(struct sl_stream *in);
struct sl_stream *sl_broadcast(struct sl_stream *in);
struct sl_stream *sl_forward(struct sl_stream *in);

/** Consume @in with a sink; the sink's parallelism follows @in's unless set. */
struct sl_stream *sl_sink(struct sl_stream *in, const char *name, const struct sl_sink_ops *ops,
			  void *arg);

/* Per-operator settings, applied to the operator that produced @s. */
struct sl_stream *sl_set_parallelism(struct sl_stream *s, unsigned parallelism);
struct sl_stream *sl_disable_chaining(struct sl_stream *s);
struct sl_stream *sl_start_new_chain(struct sl_stream *s);

/**
 * sl_job_validate() - check the graph and resolve defaults.
 * Errors (each with a sentence naming the operator): -EINVAL for a bad
 * argument recorded while building, a forward edge between different
 * parallelisms, a keyed operator without key_by, mismatched element
 * sizes, a union of different types, an operator without a sink
 * downstream is allowed (its output is dropped) but a job without
 * sources or sinks is not; -ELOOP for a cycle.
 */
int sl_job_validate(struct sl_job *job, char *errbuf, size_t errlen);

enum sl_plan_format {
	SL_PLAN_TEXT = 0,
	SL_PLAN_JSON = 1,
	SL_PLAN_DOT = 2,
};

/*
 * The machine a job runs on, as core/ sees it: where workers go, how a
 * thread is pinned, and where a worker's memory comes from. numa/
 * implements it on hwloc and mimalloc (sl_numa_platform_init()); core/
 * never calls those libraries itself. Every callback is optional: with a
 * NULL platform, or NULL callbacks, workers are unpinned and allocate
 * with sl_alloc_default().
 */
struct sl_platform {
	void *ctx;
	/** Number of PUs the job may use. */
	unsigned (*ncpus)(void *ctx);
	/**
	 * Choose a PU for each of @n workers (n <= ncpus): pus[i] (OS index)
	 * and nodes[i] (NUMA node). Return 0 or -errno with @errbuf filled.
	 */
	int (*place)(void *ctx, unsigned n, int *pus, int *nodes, char *errbuf, size_t errlen);
	/** Pin the calling thread to @pu. Return 0 or -errno. */
	int (*pin)(void *ctx, int pu);
	/** A NUMA-local allocator for the calling thread on @node. */
	int (*allocator_create)(void *ctx, int node, struct sl_allocator **out);
	void (*allocator_destroy)(void *ctx, struct sl_allocator *a);
	/**
	 * The processing-time clock in ms (timers, state TTL), called from
	 * the workers' threads: it must be thread-safe and should never go
	 * back. NULL: CLOCK_REALTIME. Tests drive processing time with it.
	 */
	int64_t (*now_ms)(void *ctx);
};

/**
 * sl_job_plan_print() - validate, then print the physical plan: tasks and
 * their fused operators, parallelism, exchanges between them, and the
 * worker / core / NUMA node of each subtask.
 * Return: 0, a validation error (with @errbuf), or -EIO.
 */
int sl_job_plan_print(struct sl_job *job, const struct sl_platform *platform, FILE *f,
		      enum sl_plan_format fmt, char *errbuf, size_t errlen);

/**
 * sl_job_run() - validate and run the job until every source is exhausted
 * and every sink finished, or until it fails or is stopped.
 * A failure the restart strategy covers (restart-strategy, see
 * sl_job_set()) runs the job again in-process from its newest checkpoint
 * instead; sl_job_stats() counts the restarts.
 * Return: 0 when the job finished (also after a graceful sl_job_stop(),
 * and after one during a restart's backoff); a validation error; or the
 * -errno of the first operator, source or sink that failed, with @errbuf
 * naming it and its subtask (and, when the restart strategy gave up,
 * "(restart strategy S gave up after N restarts)"); -EBUSY when the job
 * is running already.
 */
int sl_job_run(struct sl_job *job, const struct sl_platform *platform, char *errbuf, size_t errlen);

/**
 * sl_job_stop() - ask a running job to stop gracefully: sources stop
 * reading, what is in flight drains through the graph, sinks finish.
 * Async-signal-safe; any thread.
 */
void sl_job_stop(struct sl_job *job);

/**
 * sl_job_savepoint() - take a savepoint of the running @job and wait for
 * it: a checkpoint of the same id sequence (two-phase-commit sinks commit
 * on it, as on a checkpoint), written as the self-contained directory
 * @target_dir/savepoint-<id>-<12 hex digits>, with the manifest's
 * metadata (format version, job name, max-parallelism, operators and
 * their states' names and kinds) that a restore checks first. The engine
 * never deletes it and --restore latest never picks it. @target_dir is
 * created when missing (not its parents); NULL: option savepoint-dir.
 * @path_out receives the savepoint's directory (@path_len bytes, PATH_MAX
 * is enough). Any thread but the job's own; one savepoint at a time
 * (concurrent callers wait their turn).
 * Return: 0; -EINVAL for a NULL argument, a job without checkpoint-dir or
 * no target directory; -ESRCH when the job is not running or is ending
 * (its input ended or it was stopped); -EIO when the savepoint failed (the
 * job goes on); -ECANCELED when the job ended or failed meanwhile;
 * -ENAMETOOLONG; each with a sentence in @errbuf.
 */
int sl_job_savepoint(struct sl_job *job, const char *target_dir, char *path_out, size_t path_len,
		     char *errbuf, size_t errlen);

/**
 * sl_job_last_savepoint() - the newest savepoint the current or last run
 * of @job completed (sl_job_savepoint() or savepoint-on-stop), into @buf.
 * Return: 0; -ENOENT when it wrote none; -EINVAL; -ENAMETOOLONG.
 */
int sl_job_last_savepoint(struct sl_job *job, char *buf, size_t len);

/** Counters of one subtask; times in nanoseconds. */
struct sl_task_stats {
	uint64_t records_in, records_out;
	uint64_t batches_in, batches_out;
	uint64_t busy_ns, backpressured_ns, idle_ns;
};

/**
 * Job-wide totals, safe to read from another thread while it runs. The
 * record and time counters are of the current attempt: after a restart
 * (restart strategies) they count from 0 again.
 */
struct sl_job_stats {
	uint64_t source_records;   /**< records produced by sources */
	uint64_t sink_records;	   /**< records consumed by sinks */
	uint64_t backpressured_ns; /**< summed over subtasks */
	uint64_t busy_ns;
	unsigned running;  /**< 1 while sl_job_run() executes (also between restarts) */
	unsigned restarts; /**< restarts by the restart strategy in the current or last run */
	/**
	 * Most batches (data and control) alive at once: of this run while
	 * running, of the last run afterwards. Bounded by the rings and pools,
	 * not by the input size; the backpressure test checks exactly that.
	 */
	uint64_t peak_batches;
};

/** sl_job_stats() - snapshot of the totals (relaxed reads). */
void sl_job_stats(const struct sl_job *job, struct sl_job_stats *out);

/**
 * struct sl_checkpoint_stats - checkpoints of a job, over all its runs
 * (and restarts) so far. Durations run from the trigger to the durable
 * manifest; a pause is the time one subtask spends serialising its state
 * at a barrier (it processes nothing meanwhile; writing the files happens
 * on the coordinator thread, after the pause).
 */
struct sl_checkpoint_stats {
	unsigned enabled;	   /**< 1 when checkpoint-dir is set */
	uint64_t completed;	   /**< checkpoints completed */
	uint64_t failed;	   /**< checkpoints failed (timeout, I/O error...) */
	int64_t last_id;	   /**< newest completed checkpoint; 0: none */
	uint64_t last_bytes;	   /**< bytes of its snapshot files, manifest aside */
	uint64_t last_duration_ns; /**< its duration */
	uint64_t max_duration_ns;  /**< longest completed checkpoint */
	uint64_t snapshots;	   /**< subtask snapshots taken */
	uint64_t total_pause_ns;   /**< their pauses, summed */
	uint64_t max_pause_ns;	   /**< the longest single pause */
	int64_t restored_id;	   /**< checkpoint the last run restored; 0: fresh */
	/**
	 * Copy-on-write snapshots (aggregate windows): state bytes tasks
	 * copied before writing into what a snapshot still read (the rest is
	 * copied by the checkpoint thread), and state arrays a task grew
	 * meanwhile (moved to new memory, the old left to the snapshot).
	 */
	uint64_t cow_task_bytes;
	uint64_t cow_retired;
	/**
	 * In-flight elements restored from the channel state of unaligned
	 * checkpoints, summed over the restores of all runs and restarts:
	 * all of them; those redistributed because a parallelism changed
	 * (each to exactly one new subtask); and of these, the elements of a
	 * keyed exchange, which go to the new owner of their key group (the
	 * others go to the new subtask old index mod new parallelism).
	 */
	uint64_t inflight_restored;
	uint64_t inflight_rescaled;
	uint64_t inflight_rekeyed;
	/**
	 * Operator snapshots serialised on the task (a longer pause) although
	 * asynchronous snapshots were on, because the copy failed: out of
	 * memory, or the operator's previous copy-on-write snapshot was still
	 * being read. The latter happens only when the barriers of a failed
	 * checkpoint may still be in the rings when the next one starts: a
	 * regular checkpoint is triggered only when none is in flight, and
	 * the final one (at the end of the input) waits for the earlier
	 * snapshot of each subtask to be released (final_waits).
	 */
	uint64_t sync_fallbacks;
	/**
	 * The final checkpoint: subtasks whose snapshot waited at the end of
	 * their input until the checkpoint thread had released their previous
	 * snapshot's images (they process nothing meanwhile), and the longest
	 * pause of its snapshots (included in max_pause_ns too).
	 */
	uint64_t final_waits;
	uint64_t final_max_pause_ns;
	/**
	 * The most memory the checkpoint thread kept between two checkpoints
	 * to serialise and write the next one without faulting its pages in
	 * again: its serialisation buffers and its largest file buffer, each
	 * only while at most 128 MiB, so that a state of gigabytes is not
	 * held twice more for the job's lifetime. 0 with synchronous
	 * snapshots.
	 */
	uint64_t max_kept_bytes;
};

/**
 * sl_job_checkpoint_stats() - the checkpoint statistics (relaxed reads),
 * while the job runs and after. Return: 0, or -EINVAL for NULL arguments.
 */
int sl_job_checkpoint_stats(const struct sl_job *job, struct sl_checkpoint_stats *out);

/**
 * sl_job_op_counters() - the counters of operator @op (by name), summed
 * over its subtasks: bad records, late records dropped. Relaxed reads;
 * callable while the job runs and after.
 * Return: 0; -ENOENT when no operator has that name; -EINVAL.
 */
int sl_job_op_counters(const struct sl_job *job, const char *op, uint64_t *bad_records,
		       uint64_t *late_records_dropped);

/** One subtask's place and counters (sl_job_task_stats()). */
struct sl_subtask_stats {
	const char *task;     /**< "gen -> map -> filter"; valid until the job is destroyed */
	unsigned task_id;     /**< the task's index in the plan */
	unsigned index;	      /**< subtask index, 0..parallelism-1 */
	unsigned parallelism; /**< of the task */
	int worker, pu, node; /**< where it ran; pu -1 when not pinned */
	/**
	 * records_in: records its head operator received (a source: produced);
	 * records_out: records it sent downstream or wrote (a sink). busy: time
	 * in its steps that did work; backpressured: steps that found an output
	 * full; idle: the rest of the run (no input, or its worker busy with
	 * another task).
	 */
	struct sl_task_stats c;
};

/**
 * sl_job_task_stats() - per-subtask counters: live while the job runs
 * (relaxed reads, callable from any thread), the final ones of the last
 * run afterwards. Fills up to @cap entries (@out may be NULL when @cap is
 * 0), in plan order: task by task, subtask index within a task.
 * Return: the number of subtasks (may exceed @cap); 0 before any run.
 */
int sl_job_task_stats(const struct sl_job *job, struct sl_subtask_stats *out, unsigned cap);

#ifdef __cplusplus
}
#endif
#endif /* SL_JOB_H */
