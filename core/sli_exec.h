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

#include "sli_core.h"

struct sli_subtask;
struct sli_opi;

struct sli_chan {
	struct sl_ring *ring;
	struct sli_worker *producer, *consumer;
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
	int64_t watermark;
	bool ended;
};

struct sl_collector {
	struct sli_opi *op;
	struct sl_batch *cur[SLI_MAX_PORTS]; /* never full between calls */
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
	sl_key_fn key;	   /* reduce, window: the key of its input edge */
	int64_t watermark; /* the last one delivered to it */
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
	int64_t wm_max;	   /* source: largest timestamp seen (INT64_MIN: none) */
	uint64_t wm_count; /* source: records seen, for every-N emission */
	uint64_t wm_last_ns;
	bool done;    /* end of input handled */
	bool drained; /* done and every backlog sent: counted in ndone */
	bool dirty;   /* partial output batches wait for a flush */
	struct sli_stats stats;
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
	char fail_msg[2 * SLI_ERRLEN];
	pthread_barrier_t finished, teardown;
};

/* exec.c */
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

/* window.c */
struct sli_win *sli_win_new(struct sli_opi *op);
void sli_win_free(struct sli_win *w);
int sli_win_batch(struct sli_opi *op, struct sl_batch *b);
int sli_win_watermark(struct sli_opi *op, int64_t wm);

static inline struct sl_batch_pool *sli_pool(struct sli_opi *op)
{
	return &op->st->w->pool;
}

#endif /* SLI_EXEC_H */
