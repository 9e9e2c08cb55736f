/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_exec.h — the running job: workers, subtasks, operator instances,
 * channels. Shared by exec.c (scheduling, exchanges, lifecycle) and
 * ops.c (what each operator does to a batch).
 *
 * Ownership: every subtask, its operator instances and its output
 * buffers belong to the one worker thread that runs it. Channels are
 * SPSC rings between two subtasks (possibly on the same worker).
 */
#ifndef SLI_EXEC_H
#define SLI_EXEC_H

#include <pthread.h>

#include "sli_checkpoint.h"
#include "sli_core.h"
#include "sli_snap.h"
#include "sli_watermark.h"

struct sli_subtask;
struct sli_opi;

struct sli_chan {
	struct sl_ring *ring;
	struct sli_worker *producer, *consumer;
	/*
	 * Unaligned checkpoints: the newest barrier the producer announced
	 * ahead of the ring (a priority event, checkpoint.c); 0: none.
	 */
	_Atomic int64_t prio;
};

/* One target subtask of an output edge, seen from the producer. */
struct sli_target {
	struct sli_chan *chan;
	struct sl_batch *pending;  /* partly filled (hash partitioning) */
	struct sl_batch **backlog; /* full batches the ring had no room for */
	unsigned nbacklog, capbacklog;
};

struct sli_outedge {
	struct sli_edge *edge;
	const struct sl_type *type;
	struct sli_target *t;
	unsigned ntargets;
	unsigned rr; /* round-robin cursor */
	unsigned rescale_lo, rescale_n;
	/* Hash edges: key group -> target subtask, so no division per element. */
	uint16_t *kg_target; /* [max_parallelism] */
	uint64_t kg_mask;    /* max_parallelism - 1 when it is a power of two, else 0 */
};

struct sli_inchan {
	struct sli_chan *chan;
	int64_t watermark; /* the last one received (the valve decides whether it counts) */
	bool ended;
	unsigned input; /* which input of a two-input head it feeds (sli_edge.input) */
	bool blocked;	/* delivered the barrier being aligned: not read until aligned */
	/* Unaligned checkpoints (checkpoint.c): the channel's in-flight events */
	bool recording;		  /* before its barrier, after the subtask's snapshot */
	struct sli_snap_buf log;  /* what was recorded (the channel state) */
	int64_t log_wm;		  /* @watermark when the recording began */
	uint32_t nlog;		  /* events in @log */
	struct sl_batch **replay; /* restored channel state, read before the ring */
	unsigned nreplay, replay_pos;
};

struct sl_collector {
	struct sli_opi *op;
	struct sl_batch *cur[SLI_MAX_PORTS]; /* never full between calls */
	/* Joins: every element emitted is stamped @stamp (Flink's TimestampedCollector). */
	bool stamped;
	int64_t stamp;
};

struct sli_rtab; /* reduce table (ops.c) */

struct sli_opi {
	struct sli_node *node;
	struct sli_subtask *st;
	struct sl_subtask_info info;
	char errbuf[SLI_ERRLEN];
	void *state; /* source / sink instance */
	bool opened;
	bool finished;	      /* end-of-input handled */
	bool in_place;	      /* map with object reuse: output over the input */
	struct sli_opi *next; /* chained successor (port 0) */
	struct sli_outedge *port_out[SLI_MAX_PORTS][4];
	unsigned nport_out[SLI_MAX_PORTS];
	const struct sl_type *port_type[SLI_MAX_PORTS];
	struct sl_collector coll;
	struct sli_rtab *rtab;
	struct sli_win *win;
	struct sli_join *join;	 /* join.c */
	struct sli_keyspec key;	 /* reduce, window: the key of its input edge */
	int64_t watermark;	 /* the last one delivered to it */
	struct sli_keyed *keyed; /* keyed process (keyed.c) */
	struct sli_wgen *wgen;	 /* general windows (window_gen.c) */
	/* Its earliest processing-time timer, INT64_MAX: none (see sli_op_proc_time()). */
	int64_t next_proc_timer;
};

/*
 * A counter with one writer (the owning worker) and relaxed readers in
 * other threads (sl_job_stats, sl_job_task_stats): a relaxed load and
 * store, not an atomic read-modify-write, since nobody else writes it.
 */
#define SLI_BUMP(field, v)                                                                \
	atomic_store_explicit(&(field),                                                   \
			      atomic_load_explicit(&(field), memory_order_relaxed) + (v), \
			      memory_order_relaxed)

/* Per-subtask counters (see SLI_BUMP). */
struct sli_stats {
	_Atomic uint64_t records_in, records_out, batches_in, batches_out;
	_Atomic uint64_t busy_ns, bp_ns;
};

struct sli_subtask {
	struct sli_task *task;
	unsigned index;
	struct sli_worker *w;
	struct sli_opi *ops; /* [task->nchain] */
	struct sli_inchan *in;
	unsigned nin, nopen, rr;
	struct sli_outedge *out;
	unsigned nout;
	int64_t watermark; /* input watermark (a source: the one it generated) */
	uint64_t wm_last_ns;
	/* Watermarks and idleness (watermark.c): a source's per-split generator, or the valve
	 * over the input channels. The source's idleness clock advances only across polls
	 * with no backpressure between them (src_paused). */
	struct sli_wmgen gen;
	bool has_gen;
	struct sli_valve valve;
	bool src_paused;
	uint64_t src_clock_ns, src_last_ns;
	bool ending;  /* end of input: waiting to take the final checkpoint (end_subtask()) */
	bool done;    /* end of input handled */
	bool drained; /* done and every backlog sent: counted in ndone */
	bool dirty;   /* partial output batches wait for a flush */
	/* Earliest processing-time timer of the chain's operators (a lower bound), INT64_MAX: none.
	 */
	int64_t next_proc_timer;
	struct sli_stats stats;
	struct sli_ckpt_sub ck; /* checkpoint.c */
	int64_t restored_wm;	/* a restored source's watermark, sent before its first poll */
};

struct sli_worker {
	struct sli_exec *x;
	unsigned id;
	int pu, node;
	pthread_t thread;
	struct sl_allocator *alloc; /* NUMA-local, or NULL: default */
	struct sl_batch_pool pool;
	struct sli_subtask **subtasks;
	unsigned nsubtasks, ndone;
	bool opened; /* past opening and restoring (this worker's thread only) */
	/* Sleeping: see worker_sleep()/sli_worker_wake() in exec.c. */
	alignas(SL_CACHE_LINE) _Atomic uint32_t wake_seq;
	_Atomic int sleeping;
	/* Totals readable from other threads (relaxed). */
	alignas(SL_CACHE_LINE) _Atomic uint64_t busy_ns, bp_ns, records_src, records_sink;
};

struct sli_exec {
	struct sl_job *job;
	const struct sl_platform *platform;
	struct sli_worker *workers;
	unsigned nworkers;
	struct sli_subtask *subtasks; /* [plan.nsubtasks] */
	struct sli_chan *chans;
	unsigned nchans;
	struct sli_opi **all_ops;
	_Atomic int64_t live_batches, peak_batches; /* batches allocated and not freed */
	_Atomic int go;	    /* workers start when set (after barriers exist) */
	uint64_t start_ns;  /* CLOCK_MONOTONIC when `go` was set */
	_Atomic int failed; /* first failure wins (CAS) */
	int fail_rc;
	bool fail_fatal; /* the failure rules out a restart (written by the CAS winner) */
	char fail_msg[2 * SLI_ERRLEN];
	bool restarting; /* an attempt after a failure: restore from the newest checkpoint */
	pthread_barrier_t finished, teardown;
	/* checkpoint.c: the coordinator (NULL: checkpoints off); restore data without one */
	struct sli_ckpt_run *ck, *ck_restore;
};

/* exec.c */
/* Flush the chain's partial output batches downstream. Return 0 or -errno. */
int sli_flush_subtask(struct sli_subtask *st);
/* Send control event @kind to every consumer of @st. Return 0 or -ENOMEM. */
int sli_broadcast_event(struct sli_subtask *st, enum sl_event_kind kind, int64_t value);
void sli_wake_all(struct sli_exec *x);
/* Wake worker @w if it sleeps (after publishing what it should see). */
void sli_worker_wake(struct sli_worker *w);
/*
 * Fail the job with @msg unless it failed already (the first failure is
 * reported). -EINVAL, -ENOTSUP, -EBADMSG, -E2BIG, -EOVERFLOW and -EPROTO
 * (bad data under the fail policy, an unreplayable input, a refused
 * restore, an oversized record, a broken operator contract) would fail
 * the same way again: they rule out a restart.
 */
void sli_fail_exec(struct sli_exec *x, int rc, const char *msg);
void sli_fail(struct sli_opi *op, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Hand @b (owned) to whatever follows @op's output @port. Return 0 or -errno. */
int sli_push(struct sli_opi *op, unsigned port, struct sl_batch *b);
static inline struct sl_batch_pool *sli_pool(struct sli_opi *op);
void sli_release(struct sli_opi *op, struct sl_batch *b);

/* ops.c */
int sli_op_open(struct sli_opi *op);
void sli_op_close(struct sli_opi *op);
/* Process a data batch (owned). Return 0 or -errno (after sli_fail). */
int sli_op_batch(struct sli_opi *op, struct sl_batch *b);
/* End of input: flush and finish. */
int sli_op_end(struct sli_opi *op);
/* Push partial output batches downstream. */
int sli_op_flush(struct sli_opi *op);
/* Watermark @wm reached @op: act on it, then push what it emitted. */
int sli_op_watermark(struct sli_opi *op, int64_t wm);

/* Process a data batch (owned) arriving on input @input (0 or 1) of the chain head @op. */
int sli_op_batch2(struct sli_opi *op, unsigned input, struct sl_batch *b);

/* join.c: window and interval joins, two-input operators */
struct sli_join *sli_join_new(struct sli_opi *op);
void sli_join_free(struct sli_join *j);
int sli_join_batch(struct sli_opi *op, unsigned input, struct sl_batch *b);
int sli_join_watermark(struct sli_opi *op, int64_t wm);

/*
 * Processing time @now_ms reached @op: fire its due processing-time
 * timers, push what they emitted, and update op->next_proc_timer.
 * exec.c calls it when now_ms >= op->next_proc_timer. An operator that
 * registers processing-time timers lowers op->next_proc_timer and the
 * subtask's with sli_proc_timer_note().
 */
int sli_op_proc_time(struct sli_opi *op, int64_t now_ms);

/* exec.c: the job's processing-time clock (the platform's now_ms, else CLOCK_REALTIME), ms. */
int64_t sli_proc_now_ms(const struct sli_exec *x);

/* @op has a processing-time timer at @t: make the worker check the clock for it. */
static inline void sli_proc_timer_note(struct sli_opi *op, int64_t t)
{
	if (t < op->next_proc_timer)
		op->next_proc_timer = t;
	if (t < op->st->next_proc_timer)
		op->st->next_proc_timer = t;
}

/*
 * The keyed context of one user call (sl_ctx, sl_time.h): the current key
 * (bytes, hash, and its id in the operator's key dictionary once interned
 * for a timer), the state namespace (empty for process functions; a
 * window for window functions), the timer namespace, the state instance.
 * state/api.c reads key, hash, ns and state.
 */
struct sl_ctx {
	struct sli_opi *op;
	struct sl_key key;
	uint64_t hash;
	int64_t key_id; /* -1: not interned yet */
	const void *ns;
	uint16_t ns_len;
	bool active;	 /* inside a call: the only time it may be used */
	bool proc_valid; /* proc_now was read during this call */
	int64_t proc_now;
	int64_t tns_a, tns_b; /* timer namespace */
	void *state;	      /* the state backend's instance, NULL: no state */
};

/* keyed.c: keyed process functions */
/* Open @op's instance (op->keyed): 0, or -errno with a sentence in op->errbuf. */
int sli_keyed_open(struct sli_opi *op);
void sli_keyed_close(struct sli_opi *op);
int sli_keyed_batch(struct sli_opi *op, struct sl_batch *b);
int sli_keyed_watermark(struct sli_opi *op, int64_t wm);
int sli_keyed_proc_time(struct sli_opi *op, int64_t now_ms);

/* window_gen.c: general windows (sl_window()) */
struct sli_wgen *sli_wgen_new(struct sli_opi *op);
void sli_wgen_free(struct sli_wgen *w);
int sli_wgen_batch(struct sli_opi *op, struct sl_batch *b);
int sli_wgen_watermark(struct sli_opi *op, int64_t wm);
int sli_wgen_proc_time(struct sli_opi *op, int64_t now_ms);

/* window.c */
struct sli_win *sli_win_new(struct sli_opi *op);
void sli_win_free(struct sli_win *w);
int sli_win_batch(struct sli_opi *op, struct sl_batch *b);
int sli_win_watermark(struct sli_opi *op, int64_t wm);
/* Checkpoints: the windows' state into @w (key-group sections), and back. */
int sli_win_snapshot(struct sli_opi *op, struct sl_snap_writer *w);
int sli_win_restore(struct sli_opi *op, struct sl_snap_reader *r);
/*
 * Asynchronous snapshots: freeze @op's window state into a copy-on-write
 * image (the task's pause is setting it up, not copying), to be copied
 * and serialised later on another thread through @out's ops. See
 * core/window.c. 0 or -ENOMEM.
 */
int sli_win_freeze(struct sli_opi *op, struct sli_ckpt_image *out);
/* Keyed reduce state in checkpoints (ops.c); the operator section is selected. */
int sli_reduce_snapshot(struct sli_opi *op, struct sl_snap_writer *w);
int sli_reduce_restore(struct sli_opi *op, struct sl_snap_reader *r);
/*
 * Asynchronous snapshots (sli_checkpoint.h, struct sli_ckpt_image) of
 * keyed reduce, joins and general windows: copy what the snapshot reads
 * into the operator's reusable image and hand it over in *@out. 0, or
 * -ENOMEM (nothing handed over; the image stays the operator's, the
 * caller snapshots synchronously). The operator's thread.
 */
int sli_reduce_freeze(struct sli_opi *op, struct sli_ckpt_image *out);
int sli_join_freeze(struct sli_opi *op, struct sli_ckpt_image *out);
int sli_wgen_freeze(struct sli_opi *op, struct sli_ckpt_image *out);
/* Keyed process functions (keyed.c): timers copied, keyed state frozen copy-on-write; 1: sync. */
int sli_keyed_freeze(struct sli_opi *op, struct sli_ckpt_image *out);
/* Join state in checkpoints (join.c); the operator section is selected. */
int sli_join_snapshot(struct sli_opi *op, struct sl_snap_writer *w);
int sli_join_restore(struct sli_opi *op, struct sl_snap_reader *r);
/* General window state in checkpoints (window_gen.c); the operator section is selected. */
int sli_wgen_snapshot(struct sli_opi *op, struct sl_snap_writer *w);
int sli_wgen_restore(struct sli_opi *op, struct sl_snap_reader *r);
/* Keyed process functions in checkpoints: keyed state and timers (keyed.c). */
int sli_keyed_snapshot(struct sli_opi *op, struct sl_snap_writer *w);
int sli_keyed_restore(struct sli_opi *op, struct sl_snap_reader *r);

static inline struct sl_batch_pool *sli_pool(struct sli_opi *op)
{
	return &op->st->w->pool;
}

#endif /* SLI_EXEC_H */
