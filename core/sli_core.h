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

/** Flink's default max parallelism for parallelism @p. */
unsigned sli_default_max_parallelism(unsigned p);

/* ------------------------------------------------------------- batches */

size_t sli_batch_bytes(uint32_t cap, uint32_t elem_size);
void sli_batch_format(struct sl_batch *b, const struct sl_allocator *alloc, uint32_t cap,
		      uint32_t elem_size, uint32_t arena_max);
void sli_batch_free_arena(struct sl_batch *b);

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

struct sli_edge {
	struct sli_node *from, *to;
	unsigned port; /* output port of @from: 0 main, 1 + tag for side outputs */
	enum sli_part part;
	sl_key_fn key;
	int id;
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
	/* plan */
	int task;      /* index of its task */
	int chain_pos; /* position in the task's chain */
};

struct sl_stream {
	struct sl_job *job;
	struct sli_node *node;
	unsigned port;
	enum sli_part part;
	sl_key_fn key;
	struct sl_stream *next_alloc; /* the job frees all streams */
};

/** Append @item to the growing pointer array *@arrp of *@n entries. 0 or -ENOMEM. */
int sli_ptr_push(void *arrp, unsigned *n, void *item);

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
	struct sli_exec *_Atomic exec; /* non-NULL while running (stats readers) */
	_Atomic int stats_readers;
	uint64_t last_peak_batches;	       /* of the last finished run */
	struct sl_task_stats *last_task_stats; /* [plan.nsubtasks], of the last finished run */
};

int sli_job_plan(struct sl_job *job, const struct sl_platform *platform, char *errbuf,
		 size_t errlen);
void sli_plan_free(struct sli_plan *p);

#endif /* SLI_CORE_H */
