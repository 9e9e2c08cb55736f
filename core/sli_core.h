/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_core.h — internals shared by the runtime's files: the logical graph
 * (graph.c), the physical plan (plan.c), operator instances (ops.c),
 * batch pools and exchanges (exchange.c) and workers (exec.c).
 *
 * Vocabulary (Flink's): a *node* is a logical operator; nodes joined by a
 * forward edge of equal parallelism are fused into a *task* (a chain);
 * each task runs as `parallelism` *subtasks*; an edge between tasks is an
 * *exchange* of N x M *channels*, each one SPSC ring.
 */
#ifndef SLI_CORE_H
#define SLI_CORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <sluice/sl_batch.h>
#include <sluice/sl_job.h>
#include <sluice/sl_time.h>
#include <sluice/sl_ring.h>
#include <sluice/sl_state.h>

#include "sli_checkpoint.h"
#include "sli_restart.h"

/* ------------------------------------------------------------- hashing */

/** 64-bit hash of @len bytes (seeded, well mixed; not cryptographic). */
uint64_t sli_hash64(const void *data, size_t len, uint64_t seed);

/* murmur3's 64-bit finaliser: a bijection, sli_fmix64(0) == 0. */
static inline uint64_t sli_fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	k ^= k >> 33;
	return k;
}

/** Flink's rule: key group of a key hash, and the subtask owning a key group. */
static inline unsigned sli_key_group(uint64_t hash, unsigned max_parallelism)
{
	return (unsigned)(hash % max_parallelism);
}

static inline unsigned sli_key_group_subtask(unsigned key_group, unsigned parallelism,
					     unsigned max_parallelism)
{
	return (unsigned)((uint64_t)key_group * parallelism / max_parallelism);
}

/*
 * The key groups subtask @i of @p owns out of @maxp: those kg with
 * kg * p / maxp == i (sli_key_group_subtask), i.e. ceil(i * maxp / p)
 * up to ceil((i + 1) * maxp / p) - 1. Never empty when p <= maxp.
 */
static inline void sli_key_group_range(unsigned i, unsigned p, unsigned maxp, unsigned *first,
				       unsigned *last)
{
	*first = (unsigned)(((uint64_t)i * maxp + p - 1) / p);
	*last = (unsigned)(((uint64_t)(i + 1) * maxp + p - 1) / p) - 1;
}

/**
 * sli_crash_point() - SIGKILL the process here when SLUICE_CRASH_AT names
 * @point (tests; crash.c lists the points). Otherwise do nothing.
 */
void sli_crash_point(const char *point);

/*
 * The input hold (tests only: SLUICE_TEST_HOLD_INPUT=N[:K], hold.c) of
 * one source subtask: @on while it may hold, @left lines before it does.
 */
struct sli_hold {
	bool on;
	uint64_t left;
};

/** sli_hold_init() - arm @h as the environment says (once per subtask, at open). */
void sli_hold_init(struct sli_hold *h);
uint64_t sli_hold_allow_slow(struct sli_hold *h, uint64_t want);

/**
 * sli_hold_allow() - how many of @want lines the subtask may read now: all
 * of them unless the hold is armed; 0 while it holds.
 */
static inline uint64_t sli_hold_allow(struct sli_hold *h, uint64_t want)
{
	return h->on ? sli_hold_allow_slow(h, want) : want;
}

/** sli_hold_take() - count @n lines read (at most what sli_hold_allow() allowed). */
static inline void sli_hold_take(struct sli_hold *h, uint64_t n)
{
	if (h->on)
		h->left -= n < h->left ? n : h->left;
}

/** sli_hold_checkpoint_completed() - a checkpoint completed (the hold's :K counts them). */
void sli_hold_checkpoint_completed(void);

/** Flink's default max parallelism for parallelism @p. */
unsigned sli_default_max_parallelism(unsigned p);

/* ------------------------------------------------------------- batches */

size_t sli_batch_bytes(uint32_t cap, uint32_t elem_size);
void sli_batch_format(struct sl_batch *b, const struct sl_allocator *alloc, uint32_t cap,
		      uint32_t elem_size, uint32_t arena_max);
void sli_batch_free_arena(struct sl_batch *b);
/*
 * Copy @b's borrowed elements (SL_BATCH_F_BORROWED, sl_batch_borrow())
 * into its own storage and point data there; nothing when not borrowed.
 * Before anything writes elements in place or keeps them past the
 * chain's synchronous pass (sl_batch.h). Cannot fail: n <= cap.
 */
void sli_batch_unborrow(struct sl_batch *b);

/**
 * Copy element @i of @src (data, ts, key) to the end of @dst, moving its
 * strings into @dst's arena. Return 0, -E2BIG when @dst's arena is full
 * (or @dst is full: caller checks n < cap first), -ENOMEM.
 */
int sli_batch_copy_elem(struct sl_batch *dst, const struct sl_batch *src, uint32_t i,
			const struct sl_type *type);

/*
 * Per-worker pool of batches. A batch always goes home: released by its
 * own worker it joins the free list; released by another worker it is
 * pushed onto its home pool's `returned` stack (lock-free, many
 * producers), which the owner takes whole when its free list runs dry.
 * So steady-state traffic between cores allocates nothing.
 */
#define SLI_POOL_CLASSES 16

struct sl_batch_pool {
	const struct sl_allocator *alloc;
	uint32_t cap;	    /* elements per data batch (the job's batch size) */
	uint32_t arena_max; /* the job's max record size */
	uint32_t keep;	    /* free batches kept per class before freeing */
	struct {
		uint32_t elem_size; /* UINT32_MAX: unused class */
		uint32_t nfree;
		struct sl_batch *free;
	} cls[SLI_POOL_CLASSES];
	/* Batches other threads gave back; see sli_pool_put(). */
	alignas(SL_CACHE_LINE) struct sl_batch *_Atomic returned;
	/* Optional job-wide counters of live batches and their peak. */
	alignas(SL_CACHE_LINE) _Atomic int64_t *live, *peak;
};

void sli_pool_init(struct sl_batch_pool *p, const struct sl_allocator *alloc, uint32_t cap,
		   uint32_t arena_max, uint32_t keep);
/* The calling thread's allocator for arena growth (NULL: the batch's own). */
void sli_set_thread_allocator(const struct sl_allocator *a);
void sli_pool_fini(struct sl_batch_pool *p);
/** An empty data batch of @elem_size elements, or NULL when out of memory. */
struct sl_batch *sli_pool_get(struct sl_batch_pool *p, uint32_t elem_size);
/** A control event of @kind carrying @value. */
struct sl_batch *sli_pool_get_event(struct sl_batch_pool *p, enum sl_event_kind kind,
				    int64_t value);
/** Release @b into @p (any pool's batch may be released into any pool). */
void sli_pool_put(struct sl_batch_pool *p, struct sl_batch *b);

/* --------------------------------------------------------------- graph */

enum sli_kind {
	SLI_SOURCE,
	SLI_MAP,
	SLI_MAP_BATCH,
	SLI_FILTER,
	SLI_FILTER_BATCH,
	SLI_FLAT_MAP,
	SLI_PROCESS,
	SLI_REDUCE,
	SLI_WINDOW,
	SLI_UNION,
	SLI_SINK,
	SLI_WINDOW_JOIN,   /* two inputs (join.c) */
	SLI_INTERVAL_JOIN, /* two inputs (join.c) */
	SLI_KEYED_PROCESS, /* keyed process function with timers and state (keyed.c) */
	SLI_WINDOW_GEN,	   /* general windows: sl_window() (window_gen.c) */
};

enum sli_part {
	SLI_PART_DEFAULT = 0, /* forward if parallelism is equal, else rebalance */
	SLI_PART_FORWARD,
	SLI_PART_REBALANCE,
	SLI_PART_RESCALE,
	SLI_PART_BROADCAST,
	SLI_PART_HASH,
};

const char *sli_part_name(enum sli_part p);
const char *sli_kind_name(enum sli_kind k);

#define SLI_MAX_PORTS 9 /* main output + 8 side outputs */

struct sli_node;

/*
 * Keyed state, seen from core: state/ (api.c) installs this vtable on a
 * node when state is declared on it, and the node's operator instances
 * call it, so core never calls into state/. One instance per operator
 * subtask, used on its worker's thread only.
 *   open      a state instance for the subtask @info (its key groups
 *             [kg_first, kg_last]), memory from @a (NULL: default), for
 *             the @n states @descs (the node's copies, alive until close);
 *   close     free it (accepts NULL);
 *   maintain  bounded housekeeping between calls (TTL cleanup of at most
 *             about @budget table slots), with @c for the clocks.
 * @opts are the job's state options (sl_job_set state-memory, state-dir,
 * state-io), borrowed for the duration of open.
 */
struct sl_ctx;

/* The job's keyed-state options (sl_job_set()). */
struct sli_state_opts {
	uint64_t memory;      /* bytes of resident state per subtask; 0: unlimited */
	char *dir;	      /* spill directory (owned), NULL: sli_state_default_dir() */
	int io;		      /* 0 auto, 1 io_uring, 2 posix (enum sli_io_kind's order) */
	const char *job_name; /* the job's name (for the default directory) */
};

/* The default spill root of this process and job: $TMPDIR or /tmp, then sluice-state-PID-JOB. */
int sli_state_default_dir(const char *job_name, char *buf, size_t len);

struct sl_snap_writer;
struct sl_snap_reader;

struct sli_state_backend {
	int (*open)(const struct sl_subtask_info *info, const struct sl_allocator *a,
		    const struct sl_state_desc *descs, unsigned n, unsigned kg_first,
		    unsigned kg_last, const struct sli_state_opts *opts, void **inst);
	void (*close)(void *inst);
	void (*maintain)(void *inst, struct sl_ctx *c, unsigned budget);
	/*
	 * Checkpoints: append to the section of every key group of the
	 * instance's range its part (self-delimiting, also when empty);
	 * restore reads the part of key group @kg, the reader positioned at
	 * it. Return 0 or -errno (sl_snap_bad() for a bad part).
	 */
	int (*snapshot)(void *inst, struct sl_snap_writer *w);
	int (*restore)(void *inst, struct sl_snap_reader *r, unsigned kg);
	/*
	 * Asynchronous snapshots (optional): freeze the instance at the
	 * barrier (the task's thread; 0, or -errno: then snapshot
	 * synchronously) and add the bytes the task copied for earlier
	 * snapshots since the last freeze to *@copied; write what snapshot
	 * would have written at the barrier, on another thread; put: the
	 * frozen state is no longer needed (after write, or unwritten).
	 */
	int (*freeze)(void *inst, void **frozen, uint64_t *copied);
	int (*frozen_write)(void *frozen, struct sl_snap_writer *w);
	void (*frozen_put)(void *frozen);
};

/*
 * The key of a key_by: @fn's key, or without @fn (sl_key_by_field()) the
 * @len bytes at @off of the element, read inline by the operators that
 * know it (window.c) and through sli_key_get() by the others.
 */
struct sli_keyspec {
	sl_key_fn fn;
	uint32_t off, len;
};

/* Is there a key (sl_key_by() or sl_key_by_field())? */
static inline bool sli_key_set(const struct sli_keyspec *k)
{
	return k->fn != NULL || k->len != 0;
}

/* The key of @elem (of batch @src) by @k. */
static inline void sli_key_get(const struct sli_keyspec *k, const void *elem,
			       const struct sl_batch *src, struct sl_key *out)
{
	if (k->fn == NULL) {
		out->ptr = (const char *)elem + k->off;
		out->len = k->len;
		return;
	}
	k->fn(elem, src, out);
}

struct sli_edge {
	struct sli_node *from, *to;
	unsigned port; /* output port of @from: 0 main, 1 + tag for side outputs */
	enum sli_part part;
	struct sli_keyspec key;
	int id;
	unsigned input; /* two-input operators: 0 left (first), 1 right */
};

struct sli_node {
	int id;
	enum sli_kind kind;
	char *name;
	unsigned parallelism; /* 0 until resolved; explicit when set_parallelism */
	bool explicit_parallelism;
	bool chaining_disabled, new_chain;
	struct sl_type type;			/* output type (port 0) */
	struct sl_type side[SLI_MAX_PORTS - 1]; /* side output types */
	unsigned nside;
	struct sli_edge **in;
	unsigned nin;
	struct sli_edge **out;
	unsigned nout;
	union {
		void (*any)(void); /* set by the builder, read as the real type */
		const struct sl_source_ops *source;
		const struct sl_sink_ops *sink;
		sl_map_fn map;
		sl_map_batch_fn map_batch;
		sl_filter_fn filter;
		sl_filter_batch_fn filter_batch;
		sl_flat_map_fn flat_map;
		sl_process_fn process;
		sl_reduce_fn reduce;
	} fn;
	void *arg;
	enum sl_reduce_mode reduce_mode;
	struct sl_counters counters;
	/* sources: watermark generation (sl_assign_watermarks) */
	struct sl_watermark_strategy wm;
	bool has_wm;
	/* windows */
	struct sl_window_spec win;
	struct sl_aggregate agg;
	/* joins (join.c): win is the window join's spec; fn.any its function */
	struct sl_interval_join_spec ijoin;
	_Atomic int64_t join_buffered[2]; /* elements buffered, left and right, all subtasks */
	/* plan */
	int task;      /* index of its task */
	int chain_pos; /* position in the task's chain */
	/* keyed process (keyed.c); fn.any is kp.element */
	struct sl_keyed_process kp;
	/* keyed state (sl_state_declare): copies of the descriptors, names owned */
	struct sl_state_desc *states;
	unsigned nstates;
	const struct sli_state_backend *state_backend;
	/* general windows (window_gen.c): the checked sl_window_conf */
	struct sli_wgen_conf *wgen;
};

struct sl_stream {
	struct sl_job *job;
	struct sli_node *node;
	unsigned port;
	enum sli_part part;
	struct sli_keyspec key;
	struct sl_stream *next_alloc; /* the job frees all streams */
};

/*
 * General windows (window_gen.c, for graph.c): check @conf for an input
 * of type @in and output @out; on success *@res is a copy the node owns
 * (free() it). Return 0, or -EINVAL / -ENOMEM with a sentence in @msg.
 */
struct sli_wgen_conf;
int sli_wgen_conf_new(const struct sl_window_conf *conf, const struct sl_type *in,
		      const struct sl_type *out, struct sli_wgen_conf **res, char *msg, size_t len);

/** Append @item to the growing pointer array *@arrp of *@n entries. 0 or -ENOMEM. */
int sli_ptr_push(void *arrp, unsigned *n, void *item);

/*
 * Two-input operators (graph.c, for join.c): a node of @kind consuming
 * @left as input 0 and @right as input 1, producing @type. NULL and
 * poisoned handles propagate as for one-input operators; the caller has
 * checked its own arguments.
 */
struct sl_stream *sli_two_input(struct sl_stream *left, struct sl_stream *right, enum sli_kind kind,
				const char *name, const struct sl_type *type, void (*fn)(void),
				void *arg);
/* Record a build error in @job (the first one wins); return a poisoned handle. */
struct sl_stream *sli_build_fail(struct sl_job *job, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The type of what flows out of @s. */
const struct sl_type *sli_stream_type(const struct sl_stream *s);

/*
 * Keyed state (keyed.c, for state/api.c): add a copy of @d (checked by
 * the caller) to the keyed operator that produced @s, served by @be.
 * Return the state's id, or -errno with the error recorded in the job.
 */
int sli_state_attach(struct sl_stream *s, const struct sl_state_desc *d,
		     const struct sli_state_backend *be);

/* ---------------------------------------------------------------- plan */

struct sli_task {
	int id;
	char *name; /* the chain's operator names, " -> " between them */
	struct sli_node **chain;
	unsigned nchain;
	unsigned parallelism;
	struct sli_edge **in; /* edges entering the chain head */
	unsigned nin;
	struct sli_edge **out; /* edges leaving any node of the chain */
	unsigned nout;
};

struct sli_plan {
	struct sli_task *tasks;
	unsigned ntasks;
	unsigned nsubtasks;
	unsigned nworkers;
	int *worker_pu;	      /* [nworkers] */
	int *worker_node;     /* [nworkers] */
	int *subtask_worker;  /* [nsubtasks], indexed by sli_plan_subtask_id() */
	unsigned *task_first; /* [ntasks] first global subtask id of each task */
};

static inline unsigned sli_plan_subtask_id(const struct sli_plan *p, int task, unsigned index)
{
	return p->task_first[task] + index;
}

/* ----------------------------------------------------------------- job */

#define SLI_ERRLEN 512

struct sli_worker;
struct sli_exec;

struct sl_job {
	char *name;
	unsigned parallelism;
	unsigned max_parallelism; /* 0: default from parallelism */
	unsigned workers;	  /* 0: min(ncpus, subtasks) */
	uint32_t batch_size;
	uint32_t ring_size;
	uint32_t max_record_size;
	bool idle_busy;
	bool object_reuse; /* same-size maps run in place (out == in) */
	/* keyed state: state-memory, state-dir, state-io */
	struct sli_state_opts state;
	/* checkpoint-*, restore (checkpoint.c) */
	struct sli_ckpt_opts ckpt;
	struct sli_ckpt_counters ckpt_counters; /* sl_job_checkpoint_stats() */
	/* restart-* (restart.c) */
	struct sli_restart_opts restart;

	struct sli_node **nodes;
	unsigned nnodes;
	struct sli_edge **edges;
	unsigned nedges;
	struct sl_stream *streams; /* every handle given out, for destroy */

	int build_err; /* first builder error, with build_msg */
	char build_msg[SLI_ERRLEN];
	bool validated;

	struct sli_plan plan;
	bool planned;

	/* running */
	_Atomic int stop_requested;    /* sl_job_stop(): async-signal-safe store */
	struct sli_exec *_Atomic exec; /* non-NULL while an attempt runs (stats readers) */
	_Atomic int running;	       /* 1 from the start of sl_job_run() to its return */
	_Atomic unsigned restarts;     /* restarts of the current (or last) sl_job_run() */
	_Atomic int stats_readers;
	uint64_t last_peak_batches;	       /* of the last finished run */
	struct sl_task_stats *last_task_stats; /* [plan.nsubtasks], of the last finished run */
};

/* sl_job_set() of a duration option @key: 0, or -EINVAL with the sentence naming it. */
int sli_set_duration_opt(const char *key, const char *value, int64_t min, int64_t *field,
			 char *errbuf, size_t errlen);

int sli_job_plan(struct sl_job *job, const struct sl_platform *platform, char *errbuf,
		 size_t errlen);
void sli_plan_free(struct sli_plan *p);

#endif /* SLI_CORE_H */
