/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_checkpoint.c — the cost of exactly-once checkpoints (BENCHMARKS.md,
 * "exactly-once checkpoints off and on, every 1 s"), measured from outside
 * the runtime with public APIs only.
 *
 * Part 1, throughput: the same end-to-end job with checkpoints every 1 s
 * and with checkpoints off, interleaved runs (order alternating by round),
 * medians, and the median of per-round on/off ratios (target >= 0.8).
 * Job: seeded generator (sl_gen_ops, fill_batch; 16-byte { key, val },
 * 10,000 keys, 1,000 records per ms of event time, in order) ->
 * watermarks (bound 5 ms, every 8,192 records) -> key_by -> tumbling 1 s
 * count per key -> exactly-once part-file sink (sl_part_sink_ops, fsync
 * on; --sink null for the null sink). Checked: every run's output (lines
 * and an order-independent hash of them, or the null sink's count and
 * checksum) equals the first run's.
 *
 * Part 2, state size (--part2 window|reduce|both, default both): a job
 * whose window state is about 10 MiB, 100 MiB
 * (and 1 GiB with --big): N keys (a bijective hash of i mod N), a 64-byte
 * accumulator, and a tumbling window far larger than the run, so every key
 * stays live until the end of input; null sink. Each size runs with
 * checkpoints off, then every 1 s with asynchronous snapshots (the
 * default: the window task copies its state, the coordinator serialises
 * the copy) and with checkpoint-snapshot sync (the task serialises it: the
 * baseline of the same run). Reported per size and mode:
 *  - checkpoints completed (chk-N directories holding _metadata, recorded
 *    by a thread polling the directory every 10 ms, as the job keeps only
 *    DISK_BUDGET bytes' worth of them: checkpoint-retained 4 at 1 GiB), and
 *    of those triggered once every key exists ("full"), their size (the
 *    bytes of their files) and their duration: the chk-N directory's birth
 *    time (made when the checkpoint is triggered) to the change time of its
 *    _metadata (renamed in when it is durable). File-system timestamps: a
 *    resolution of a clock tick (a few ms);
 *  - the window task's pause: the aggregate's add() reads the monotonic
 *    clock every 64 elements and keeps the largest gaps; with K full
 *    checkpoints the K largest gaps of the "on" run estimate the per-task
 *    pauses (barrier to resumption, snapshot serialisation included), the
 *    largest gap of the "off" run is the noise floor (preemption, input
 *    stalls);
 *  - the throughput on/off.
 * The same again with a keyed reduce in place of the window (sl_reduce(),
 * final mode, 64-byte elements that are their own accumulators, the same
 * key counts): the reduce function reads the clock, its task copies the
 * reduce table at the barrier (async) or serialises it (sync).
 * With --buffered, a third mode "async-b": async with SLUICE_CKPT_DIRECT=0
 * (the store writes through the page cache rather than with O_DIRECT,
 * state/sli_ckpt_store.h), the same binary and run as its baseline.
 * And with keyed process state (--part2 keyed or all): a keyed process
 * function keeps the same 64-byte accumulator per key in a value state
 * (sl_state.h: the keyed-state table, in memory), reads and writes it per
 * element (reading the clock like the others) and emits it once per key
 * (at its second element). Async: the task freezes the table at the
 * barrier (copy-on-write: entry pointers only; it then copies an entry
 * before writing it) and the coordinator serialises it; sync: the task
 * serialises the table.
 * Nothing asserts a timing.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sluice/sl_connectors.h>
#include <sluice/sl_error.h>
#include <sluice/sl_job.h>
#include <sluice/sl_numa.h>
#include <sluice/sl_state.h>
#include <sluice/sl_time.h>

#include "bench_common.h"

#define PROG	  "bench_checkpoint"
#define MAX_RUNS  BENCH_MAX_RUNS
#define NKEYS	  10000u /* part 1 */
#define SEED	  0x5eed4321u
#define PER_MS	  1000	      /* records per ms of event time */
#define BOUND_MS  5	      /* out-of-orderness of the watermarks */
#define WM_EVERY  8192u	      /* records between watermarks */
#define HUGE_MS	  (1ll << 40) /* part 2: a window no run reaches the end of */
#define GAP_EVERY 64u	      /* part 2: elements between clock reads */

/* Part 2's modes: async, sync, and with --buffered async without O_DIRECT. */
static const char *const mode_name[3] = { "async", "sync", "async-b" };
static unsigned nmodes = 2;
#define TOPGAPS	 64	  /* part 2: largest gaps kept */
#define MAXCKPT	 4096	  /* checkpoints listed per run */
#define RUN_SECS 4.0	  /* target length of a run (the off runs) */
#define WATCH_NS 10000000 /* part 2: checkpoint directory polled every 10 ms */
/* Part 2: checkpoints kept on disk at the most, in bytes of window state. */
#define DISK_BUDGET (4ull << 30)
/*
 * Snapshot bytes per key of the part-2 window (key 8 + entry 16 + acc 64 +
 * length prefixes and section headers), measured: sizes are reported as
 * measured, this only picks the key counts.
 */
#define BYTES_PER_KEY 104u

static const struct sl_type ev_type = SL_TYPE(struct bench_kv);
static const struct sl_type wres_type = SL_TYPE(struct bench_wres);

/* ---------------------------------------------------------- generator */

struct genarg {
	uint64_t nkeys;
	bool scramble; /* part 2: key = mix(i mod nkeys), every key early */
	bool reduce;   /* part 2: 64-byte elements into a keyed reduce, not a window */
	bool keyed;    /* part 2: 64-byte elements into keyed process state */
};

static void fill_ev(uint64_t first, uint64_t step, uint32_t n, uint64_t seed, void *elems,
		    int64_t *ts, void *arg)
{
	const struct genarg *g = arg;
	struct bench_kv *e = elems;

	for (uint32_t k = 0; k < n; k++) {
		uint64_t i = first + k * step, h = bench_mix64(i ^ seed);

		e[k].key =
		    g->scramble ? bench_mix64((i % g->nkeys) ^ seed) : ((h >> 32) * g->nkeys) >> 32;
		e[k].val = (int64_t)(h % 100);
		ts[k] = (int64_t)(i / PER_MS);
	}
}

/* ------------------------------------------------------------ windows */

static int wres_format(const void *elem, int64_t ts, const struct sl_batch *b, char *buf,
		       size_t len, void *arg)
{
	const struct bench_wres *r = elem;

	(void)ts, (void)b, (void)arg;
	return snprintf(buf, len, "%lld %llu %lld", (long long)r->start, (unsigned long long)r->key,
			(long long)r->value);
}

/* Part 2: 64 bytes: count, sum, min, max and a histogram of val / 25. */
struct bigacc {
	int64_t cnt, sum, min, max;
	int64_t hist[4];
};

/* The largest gaps between clock reads in the window's add() (one subtask). */
struct gapmon {
	uint64_t warm;	  /* elements before gaps count: the keys are being created */
	uint64_t warm_rt; /* CLOCK_REALTIME (ns) when they all exist, 0 before */
	uint64_t n, last_ns;
	unsigned ngaps;
	uint64_t gaps[TOPGAPS]; /* ascending */
};

static void big_create(void *acc, void *arg)
{
	struct bigacc *a = acc;

	(void)arg;
	*a = (struct bigacc){ .min = INT64_MAX, .max = INT64_MIN };
}

static void gap_note(struct gapmon *m)
{
	uint64_t now = bench_now_ns(), gap = now - m->last_ns;
	unsigned i;

	if (m->warm_rt == 0 && m->n > m->warm) {
		struct timespec rt;

		clock_gettime(CLOCK_REALTIME, &rt); /* compared with file birth times */
		m->warm_rt = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec;
	}
	if (m->last_ns != 0 && m->n > m->warm && (m->ngaps < TOPGAPS || gap > m->gaps[0])) {
		if (m->ngaps == TOPGAPS) /* drop the smallest */
			memmove(m->gaps, m->gaps + 1, --m->ngaps * sizeof(m->gaps[0]));
		for (i = m->ngaps; i > 0 && m->gaps[i - 1] > gap; i--)
			m->gaps[i] = m->gaps[i - 1];
		m->gaps[i] = gap;
		m->ngaps++;
	}
	m->last_ns = now;
}

static void big_add(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg)
{
	struct bigacc *a = acc;
	struct gapmon *m = arg;
	int64_t v = ((const struct bench_kv *)elem)->val;

	(void)ts, (void)src;
	a->cnt++;
	a->sum += v;
	a->min = v < a->min ? v : a->min;
	a->max = v > a->max ? v : a->max;
	a->hist[(v / 25) & 3]++;
	if (++m->n % GAP_EVERY == 0)
		gap_note(m);
}

static void big_merge(void *dst, const void *src, void *arg)
{
	struct bigacc *d = dst;
	const struct bigacc *s = src;

	(void)arg;
	d->cnt += s->cnt;
	d->sum += s->sum;
	d->min = s->min < d->min ? s->min : d->min;
	d->max = s->max > d->max ? s->max : d->max;
	for (unsigned i = 0; i < 4; i++)
		d->hist[i] += s->hist[i];
}

static int big_result(const struct sl_window *w, const struct sl_key *key, const void *acc,
		      struct sl_collector *out, void *arg)
{
	const struct bigacc *a = acc;
	struct bench_wres r = { 0, w->start, 0, a->sum };

	(void)arg;
	memcpy(&r.key, key->ptr, sizeof(r.key));
	r.hash = bench_res_hash(r.start, r.key, r.value ^ a->cnt << 32 ^ a->hist[3] << 16);
	return sl_emit(out, &r, w->end - 1, NULL);
}

/* ------------------------------------------------------- keyed reduce */

/*
 * Part 2 with a keyed reduce (sl_reduce(), final mode: one result per key
 * at the end of input): its accumulator is the element, 64 bytes with the
 * aggregate's fields, each element a one-element aggregate already.
 */
struct bigev {
	uint64_t key; /* first: bench_key_u64() */
	int64_t val, cnt, sum, min, max, hist[2];
};
_Static_assert(sizeof(struct bigev) == 64, "reduce elements are 64 bytes");
static const struct sl_type bigev_type = SL_TYPE(struct bigev);

static void fill_bigev(uint64_t first, uint64_t step, uint32_t n, uint64_t seed, void *elems,
		       int64_t *ts, void *arg)
{
	const struct genarg *g = arg;
	struct bigev *e = elems;

	for (uint32_t k = 0; k < n; k++) {
		uint64_t i = first + k * step, h = bench_mix64(i ^ seed);
		int64_t v = (int64_t)(h % 100);

		e[k] = (struct bigev){ bench_mix64((i % g->nkeys) ^ seed), v, 1, v, v, v, { 0 } };
		e[k].hist[(v / 50) & 1] = 1;
		ts[k] = (int64_t)(i / PER_MS);
	}
}

/* The reduce function; like big_add(), it notes the gaps between clock reads. */
static int bigev_reduce(void *acc, const void *in, void *arg)
{
	struct bigev *a = acc;
	const struct bigev *e = in;
	struct gapmon *m = arg;

	a->cnt += e->cnt;
	a->sum += e->sum;
	a->min = e->min < a->min ? e->min : a->min;
	a->max = e->max > a->max ? e->max : a->max;
	a->hist[0] += e->hist[0];
	a->hist[1] += e->hist[1];
	if (++m->n % GAP_EVERY == 0)
		gap_note(m);
	return 0;
}

/* ------------------------------------------------- keyed process state */

/* The keyed process function's argument: the clock-gap monitor and its state's id. */
struct kparg {
	struct gapmon *m;
	int id;
};

/* Fold the element into the key's value state (as bigev_reduce()); emit it at the second. */
static int kp_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
		      struct sl_collector *out, void *arg)
{
	const struct kparg *k = arg;
	struct bigev a = *(const struct bigev *)in;
	const void *v;
	int rc = sl_value_get(c, k->id, &v, NULL);

	(void)src;
	if (rc < 0)
		return rc;
	if (rc == 1) {
		struct bigev acc;

		memcpy(&acc, v, sizeof(acc));
		bigev_reduce(&acc, &a, k->m);
		a = acc;
	}
	if ((rc = sl_value_put(c, k->id, &a, sizeof(a))) < 0)
		return rc;
	return a.cnt == 2 ? sl_emit(out, &a, ts, NULL) : 0;
}

/* ------------------------------------------------------------- files */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static void rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

struct ckpt_info {
	long long id;
	uint64_t bytes;
	double start_ns; /* CLOCK_REALTIME of the trigger (chk-N's birth), 0: unknown */
	double dur_ms;	 /* < 0: unknown */
};

static double statx_ns(const struct statx_timestamp *t)
{
	return (double)t->tv_sec * 1e9 + (double)t->tv_nsec;
}

static bool ckpt_known(const struct ckpt_info *ck, unsigned n, long long id)
{
	for (unsigned i = n; i-- > 0;)
		if (ck[i].id == id)
			return true;
	return false;
}

/*
 * Add the complete checkpoints (chk-N with _metadata) of @dir not yet among
 * the @n of @out, keeping ascending ids: the new number.
 */
static unsigned scan_ckpts(const char *dir, struct ckpt_info *out, unsigned n, unsigned max)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return n;
	while ((de = readdir(d)) != NULL && n < max) {
		char path[4096], meta[4200];
		struct statx sd, sm;
		struct ckpt_info c = { 0, 0, 0, -1 };
		char *end;
		DIR *cd;

		if (strncmp(de->d_name, "chk-", 4) != 0)
			continue;
		c.id = strtoll(de->d_name + 4, &end, 10);
		if (*end || ckpt_known(out, n, c.id))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
			continue;
		snprintf(meta, sizeof(meta), "%s/_metadata", path);
		if (*end || statx(AT_FDCWD, meta, 0, STATX_CTIME | STATX_MTIME, &sm) < 0)
			continue; /* not complete */
		if (statx(AT_FDCWD, path, 0, STATX_BTIME, &sd) == 0 &&
		    (sd.stx_mask & STATX_BTIME)) {
			double t1 = statx_ns(&sm.stx_ctime), t2 = statx_ns(&sm.stx_mtime);

			c.start_ns = statx_ns(&sd.stx_btime);
			c.dur_ms = ((t1 > t2 ? t1 : t2) - c.start_ns) / 1e6;
		}
		cd = opendir(path);
		for (struct dirent *fe; cd != NULL && (fe = readdir(cd)) != NULL;) {
			struct stat st;

			if (fstatat(dirfd(cd), fe->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
				c.bytes += (uint64_t)st.st_size;
		}
		if (cd != NULL)
			closedir(cd);
		unsigned i = n++;
		for (; i > 0 && out[i - 1].id > c.id; i--)
			out[i] = out[i - 1];
		out[i] = c;
	}
	closedir(d);
	return n;
}

/*
 * Checkpoints past checkpoint-retained are deleted while the job runs: a
 * thread records each one as it completes (it stays at least until the
 * next one completes, an interval later).
 */
struct ckwatch {
	const char *dir;
	struct ckpt_info *ck; /* [MAXCKPT] */
	unsigned n;
	atomic_bool stop; /* set by the main thread after sl_job_run() */
	pthread_t thread;
};

static void *ckwatch_main(void *arg)
{
	struct ckwatch *w = arg;
	const struct timespec tick = { 0, WATCH_NS };

	/* Relaxed: the flag carries no data; pthread_join() orders w->n. */
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		w->n = scan_ckpts(w->dir, w->ck, w->n, MAXCKPT);
		nanosleep(&tick, NULL);
	}
	return NULL;
}

/* FNV-1a of a line. */
static uint64_t line_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	return h;
}

/* Committed part files of @dir: lines and an order-independent hash of them. */
static int read_parts(const char *dir, uint64_t *lines, uint64_t *sum)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char *buf = NULL;
	size_t cap = 0;

	*lines = *sum = 0;
	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		char path[4096];
		FILE *f;
		ssize_t n;

		if (strncmp(de->d_name, "part-", 5) != 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
			continue;
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		while ((n = getline(&buf, &cap, f)) > 0) {
			*sum += bench_mix64(line_hash(buf, (size_t)n));
			++*lines;
		}
		fclose(f);
	}
	free(buf);
	closedir(d);
	return 0;
}

/* ----------------------------------------------------------------- jobs */

struct bench {
	uint32_t batch;
	const char *idle, *base, *interval;
	char workers[16]; /* two tasks: min(2, online CPUs) */
	bool null_sink;
	struct sl_numa_platform np;
};

struct run {
	bool ckpt;
	bool sync;		       /* checkpoint-snapshot sync */
	uint64_t count;		       /* source records */
	double secs;		       /* wall time of sl_job_run() */
	double cpu;		       /* CPU time (user + system) of the process during it */
	unsigned workers;	       /* after the run */
	uint64_t out, outsum;	       /* output lines / records and their hash / checksum */
	unsigned retain;	       /* checkpoint-retained (0: all) */
	unsigned nckpt;		       /* complete checkpoints */
	struct ckpt_info *ck;	       /* [MAXCKPT] */
	struct gapmon gm;	       /* part 2 */
	struct kparg kp;	       /* part 2, keyed process state */
	uint64_t snap_max_ns;	       /* sl_checkpoint_stats.max_pause_ns */
	struct sl_checkpoint_stats cs; /* the engine's, after the run */
};

/* The median of @n values (0 when none: part 1 skipped). */
static double med_of(const double *v, unsigned n)
{
	return n > 0 ? bench_median_of(v, n) : 0;
}

/* @x rounded down to a multiple of 1M, at least @min. */
static uint64_t round_count(double x, uint64_t min)
{
	uint64_t n = (uint64_t)(x / 1e6) * 1000000u;

	return n > min ? n : min;
}

static double tv_s(const struct timeval *t)
{
	return (double)t->tv_sec + (double)t->tv_usec / 1e6;
}

static int set_opt(struct sl_job *job, const char *key, const char *value)
{
	return bench_job_set(PROG, job, key, value);
}

/*
 * One run: part 1 (@big NULL: 10k keys, 1 s tumbling count, part or null
 * sink) or part 2 (@big: its keys, a never-ending window, 64-byte acc,
 * null sink), checkpoints on or off, in a fresh directory under b->base.
 */
static int run_job(const struct bench *b, const struct genarg *big, struct run *r)
{
	struct genarg g1 = { NKEYS, false, false, false };
	bool reduce = big != NULL && big->reduce, keyed = big != NULL && big->keyed;
	struct sl_gen_conf gen = { .count = r->count,
				   .seed = SEED,
				   .type = reduce || keyed ? &bigev_type : &ev_type,
				   .fill_batch = reduce || keyed ? fill_bigev : fill_ev,
				   .arg = big ? (void *)big : &g1 };
	struct sl_watermark_strategy ws = { .out_of_orderness_ms = BOUND_MS, .every = WM_EVERY };
	struct sl_window_spec spec = { .kind = SL_WINDOW_TUMBLING, .size = big ? HUGE_MS : 1000 };
	struct sl_aggregate agg = { .acc_size = sizeof(int64_t),
				    .create = bench_i64_create,
				    .add = bench_i64_count,
				    .merge = bench_i64_merge,
				    .result = bench_i64_result,
				    .flags = SL_AGG_SLICEABLE };
	struct sl_aggregate bagg = { .acc_size = sizeof(struct bigacc),
				     .create = big_create,
				     .add = big_add,
				     .merge = big_merge,
				     .result = big_result,
				     .arg = &r->gm,
				     .flags = SL_AGG_SLICEABLE };
	char work[4096], ckdir[4200], outdir[4200], batch[16], retain[16], err[512];
	struct ckwatch cw = { .ck = r->ck };
	struct sl_part_sink_conf part = { .format = wres_format };
	struct sl_null_sink ns = { 0 };
	bool use_part = big == NULL && !b->null_sink;
	struct sl_job *job;
	struct sl_stream *s;
	struct rusage u0, u1;
	uint64_t t0, t1;
	int rc;

	if (snprintf(work, sizeof(work), "%s/bench-ckpt-XXXXXX", b->base) >= (int)sizeof(work) ||
	    mkdtemp(work) == NULL) {
		rc = errno ? -errno : -ENAMETOOLONG;
		fprintf(stderr, PROG ": cannot create a directory in '%s': %s\n", b->base,
			sl_strerror(rc));
		return rc;
	}
	snprintf(ckdir, sizeof(ckdir), "%s/ckpt", work);
	snprintf(outdir, sizeof(outdir), "%s/out", work);
	if (use_part && mkdir(outdir, 0755) < 0) {
		rc = -errno;
		rm_tree(work);
		return rc;
	}
	part.dir = outdir;
	memset(&r->gm, 0, sizeof(r->gm));
	/* Reduce: the function runs from the second element of a key on. */
	r->gm.warm = big ? (reduce || keyed ? 1 : 2) * big->nkeys : 0;
	rc = sl_job_create("bench-checkpoint", &job);
	if (rc < 0) {
		rm_tree(work);
		return rc;
	}
	snprintf(batch, sizeof(batch), "%u", b->batch);
	snprintf(retain, sizeof(retain), "%u", r->retain ? r->retain : 1000000);
	if ((rc = set_opt(job, "parallelism", "1")) < 0 ||
	    (rc = set_opt(job, "workers", b->workers)) < 0 ||
	    (rc = set_opt(job, "batch-size", batch)) < 0 ||
	    (rc = set_opt(job, "idle", b->idle)) < 0 ||
	    (rc = sl_job_use_checkpoint_storage(job)) < 0 ||
	    (r->ckpt &&
	     ((rc = set_opt(job, "checkpoint-dir", ckdir)) < 0 ||
	      (rc = set_opt(job, "checkpoint-interval", b->interval)) < 0 ||
	      (rc = set_opt(job, "checkpoint-retained", retain)) < 0 ||
	      (rc = set_opt(job, "checkpoint-snapshot", r->sync ? "sync" : "async")) < 0)))
		goto out;
	s = sl_assign_watermarks(sl_source(job, "gen", &sl_gen_ops, &gen, gen.type), &ws);
	if (reduce) {
		s = sl_reduce(sl_key_by(s, bench_key_u64), "reduce", bigev_reduce, &r->gm,
			      SL_REDUCE_FINAL);
	} else if (keyed) {
		struct sl_keyed_process kp = { .element = kp_element, .arg = &r->kp };
		struct sl_state_desc d = { .name = "acc", .kind = SL_STATE_VALUE };

		r->kp.m = &r->gm;
		s = sl_keyed_process(sl_key_by(s, bench_key_u64), "keyed", &kp, &bigev_type);
		r->kp.id = sl_state_declare(s, &d);
	} else {
		s = sl_window_aggregate(sl_key_by(s, bench_key_u64), "window", &spec,
					big ? &bagg : &agg, &wres_type);
	}
	sl_sink(s, "sink", use_part ? &sl_part_sink_ops : &sl_null_sink_ops,
		use_part ? (void *)&part : &ns);
	cw.dir = ckdir;
	if (r->ckpt && r->retain && pthread_create(&cw.thread, NULL, ckwatch_main, &cw) != 0) {
		rc = -EAGAIN;
		goto out;
	}
	getrusage(RUSAGE_SELF, &u0);
	t0 = bench_now_ns();
	rc = sl_job_run(job, &b->np.platform, err, sizeof(err));
	t1 = bench_now_ns();
	getrusage(RUSAGE_SELF, &u1);
	if (r->ckpt && r->retain) {
		atomic_store_explicit(&cw.stop, true, memory_order_relaxed);
		pthread_join(cw.thread, NULL);
	}
	if (rc < 0) {
		fprintf(stderr, PROG ": checkpoints %s: %s\n", r->ckpt ? "on" : "off", err);
		goto out;
	}
	r->secs = (double)(t1 - t0) / 1e9;
	{
		struct sl_checkpoint_stats cs;

		r->snap_max_ns = sl_job_checkpoint_stats(job, &cs) == 0 ? cs.max_pause_ns : 0;
		r->cs = cs;
	}
	r->cpu = tv_s(&u1.ru_utime) + tv_s(&u1.ru_stime) - tv_s(&u0.ru_utime) - tv_s(&u0.ru_stime);
	r->workers = (unsigned)atoi(b->workers);
	if (use_part) {
		rc = read_parts(outdir, &r->out, &r->outsum);
	} else {
		r->out = sl_null_sink_records(&ns);
		r->outsum = sl_null_sink_checksum(&ns);
	}
	r->nckpt = r->ckpt ? scan_ckpts(ckdir, r->ck, cw.n, MAXCKPT) : 0;
out:
	sl_job_destroy(job);
	rm_tree(work);
	return rc;
}

/* ---------------------------------------------------------------- main */

/* One size's run with checkpoints on, in one snapshot mode. */
struct on_stats {
	double rps;
	double cpu_rps; /* records per CPU-second of the process */
	double cpu_ms;	/* its CPU time, ms */
	unsigned nckpt, nperiodic, nfull;
	double bytes_med, dur_med, dur_max, pause_med, pause_max;
	double snap_max;    /* the engine's longest snapshot pause, ms */
	double task_mib;    /* copy-on-write: MiB the task copied itself (cow_task_bytes) */
	double snap_avg;    /* the engine's mean snapshot pause (total_pause_ns / snapshots), ms */
	uint64_t fallbacks; /* snapshots serialised on the task instead (sync_fallbacks) */
	uint64_t retired;   /* copy-on-write: arrays grown under a snapshot (cow_retired) */
	double final_max;   /* the final checkpoint's longest snapshot pause, ms (in snap_max) */
	uint64_t final_waits; /* subtasks whose final snapshot waited for the previous one */
};

struct size_stats {
	const char *name;
	uint64_t target, keys, count;
	double secs; /* after the keys exist, at the off run's rate */
	double off_rps, off_cpu_rps, off_cpu_ms, noise_max;
	unsigned retain;
	struct on_stats on[3]; /* [0] async snapshots, [1] sync, [2] async without O_DIRECT */
	uint64_t out;
};

/*
 * The figures of run @ro (checkpoints on) of @count records. The last
 * checkpoint is the final one at the end of input (after the window
 * fired): periodic ones are the others. Those triggered once every key
 * exists ("full") are measured: the earlier ones hold part of the state,
 * and the gaps before then are not kept.
 */
static void on_figures(const struct run *ro, uint64_t count, struct on_stats *o)
{
	double bs[MAXCKPT], ds[MAXCKPT], ps[TOPGAPS];
	unsigned nd = 0, np;

	o->rps = (double)count / ro->secs;
	o->cpu_rps = (double)count / ro->cpu;
	o->cpu_ms = ro->cpu * 1e3;
	o->nckpt = ro->nckpt;
	o->nperiodic = ro->nckpt > 0 ? ro->nckpt - 1 : 0;
	o->nfull = 0;
	for (unsigned i = 0; i < o->nperiodic; i++) {
		if (ro->ck[i].start_ns == 0 || ro->ck[i].start_ns < (double)ro->gm.warm_rt ||
		    ro->gm.warm_rt == 0)
			continue;
		bs[o->nfull++] = (double)ro->ck[i].bytes;
		if (ro->ck[i].dur_ms >= 0)
			ds[nd++] = ro->ck[i].dur_ms;
	}
	o->bytes_med = o->nfull ? bench_median(bs, o->nfull) : 0;
	o->dur_med = nd ? bench_median(ds, nd) : -1;
	o->dur_max = nd ? ds[nd - 1] : -1;
	/* The nfull largest gaps of the "on" run: the pauses. */
	np = o->nfull < ro->gm.ngaps ? o->nfull : ro->gm.ngaps;
	for (unsigned i = 0; i < np; i++)
		ps[i] = (double)ro->gm.gaps[ro->gm.ngaps - 1 - i] / 1e6;
	o->pause_med = np ? bench_median(ps, np) : -1;
	o->pause_max = np ? ps[np - 1] : -1;
	o->snap_max = (double)ro->snap_max_ns / 1e6;
	o->task_mib = (double)ro->cs.cow_task_bytes / (1 << 20);
	o->snap_avg =
	    ro->cs.snapshots ? (double)ro->cs.total_pause_ns / ro->cs.snapshots / 1e6 : -1;
	o->fallbacks = ro->cs.sync_fallbacks;
	o->retired = ro->cs.cow_retired;
	o->final_max = (double)ro->cs.final_max_pause_ns / 1e6;
	o->final_waits = ro->cs.final_waits;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [--runs R] [--count N] [--batch-size B] [--idle busy|sleep]\n"
		"       [--sink part|null] [--interval DUR] [--dir DIR] [--big] [--skip-sizes]\n"
		"       [--sizes 10MiB,100MiB,1GiB] [--skip-part1] [--buffered]\n"
		"       [--part2 window|reduce|both|keyed|all] [--quick] [--json PATH]\n"
		"  Part 1: throughput of generator -> key_by -> tumbling 1 s count (10k keys) ->\n"
		"  part-file sink, exactly-once checkpoints every DUR (default 1s) vs off;\n"
		"  R interleaved rounds (default 5) of N records (default: ~4 s of the warm-up\n"
		"  run's rate), medians.\n"
		"  Part 2: window state of ~10 MiB and ~100 MiB (--big: and ~1 GiB), checkpoints\n"
		"  on vs off: checkpoint count, size, duration, the window task's pauses;\n"
		"  --part2 window|reduce|both|keyed|all (default both): the window aggregate,\n"
		"  a keyed reduce of 64-byte elements, both, keyed process state (a 64-byte\n"
		"  value state per key), or all three. --buffered: a third mode, async-b,\n"
		"  async with SLUICE_CKPT_DIRECT=0 (checkpoint files through the page cache).\n"
		"  --sizes: part 2's state sizes, a comma-separated subset (instead of --big);\n"
		"  --skip-part1, --skip-sizes: leave out part 1, part 2.\n"
		"  DIR (default $TMPDIR or /tmp) holds the checkpoints and the part files.\n"
		"  --quick: 4M records, 1 round, 10 MiB only (a smoke test).\n");
}

static void json_runs(FILE *f, const char *key, const double *v, unsigned n, int prec)
{
	fprintf(f, ",\"%s\":", key);
	bench_json_array(f, v, n, prec, ",");
}

/* Part 2's figures of one operator as the JSON member @key (an array, one object per size). */
static void json_state(FILE *f, const char *key, const struct size_stats *zs, unsigned want)
{
	bool first = true;

	fprintf(f, ",\"%s\":[", key);
	for (unsigned q = 0; q < 3; q++) {
		const struct size_stats *z = &zs[q];

		if (!(want & 1u << q))
			continue;

		fprintf(f,
			"%s{\"name\":\"%s\",\"keys\":%llu,\"acc_bytes\":64,\"records\":%llu,"
			"\"off_rec_per_s\":%.1f,\"checkpoints_retained\":%u,"
			"\"max_gap_off_ms\":%.2f",
			first ? "" : ",", z->name, (unsigned long long)z->keys,
			(unsigned long long)z->count, z->off_rps, z->retain, z->noise_max);
		for (unsigned m = 0; m < 2; m++) {
			const struct on_stats *o = &z->on[m];

			fprintf(f,
				",\"%s\":{\"on_rec_per_s\":%.1f,\"checkpoints_periodic\":%u,"
				"\"checkpoints_full_state\":%u,\"checkpoints_total\":%u,"
				"\"median_checkpoint_bytes\":%.0f,\"median_duration_ms\":%.2f,"
				"\"max_duration_ms\":%.2f,\"median_pause_ms\":%.2f,"
				"\"max_pause_ms\":%.2f,\"engine_max_snapshot_ms\":%.2f,"
				"\"cow_task_mib\":%.1f,\"cow_retired\":%llu,"
				"\"on_rec_per_cpu_s\":%.1f,\"final_max_snapshot_ms\":%.2f,"
				"\"final_waits\":%llu,\"sync_fallbacks\":%llu}",
				m ? "sync" : "async", o->rps, o->nperiodic, o->nfull, o->nckpt,
				o->bytes_med, o->dur_med, o->dur_max, o->pause_med, o->pause_max,
				o->snap_max, o->task_mib, (unsigned long long)o->retired,
				o->cpu_rps, o->final_max, (unsigned long long)o->final_waits,
				(unsigned long long)o->fallbacks);
		}
		fprintf(f, "}");
		first = false;
	}
	fprintf(f, "]");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "sink", required_argument, NULL, 's' },
		{ "interval", required_argument, NULL, 'I' },
		{ "dir", required_argument, NULL, 'd' },
		{ "big", no_argument, NULL, 'B' },
		{ "skip-sizes", no_argument, NULL, 'S' },
		{ "sizes", required_argument, NULL, 'Z' },
		{ "skip-part1", no_argument, NULL, '1' },
		{ "buffered", no_argument, NULL, 'F' },
		{ "part2", required_argument, NULL, 'P' },
		BENCH_OPTS_ENGINE,
		BENCH_OPTS_COMMON,
		{ NULL, 0, NULL, 0 },
	};
	static struct ckpt_info ckbuf[MAXCKPT];
	static double on[MAX_RUNS], off[MAX_RUNS], ratio[MAX_RUNS], nck[MAX_RUNS];
	static double allbytes[MAXCKPT];
	unsigned nall = 0;
	static double con[MAX_RUNS], coff[MAX_RUNS], cratio[MAX_RUNS];
	double load0[3] = { 0 }, load1[3] = { 0 };
	struct bench_args args = { .prog = PROG,
				   .usage = usage,
				   .runs = 5,
				   .quick_runs = 1,
				   .batch = 512,
				   .idle = "sleep" };
	struct bench b = { .interval = "1s" };
	struct size_stats sz[3] = {
		{ .name = "10MiB", .target = 10ull << 20, .secs = RUN_SECS },
		/* twice as long: a checkpoint takes a good part of the interval */
		{ .name = "100MiB", .target = 100ull << 20, .secs = 2 * RUN_SECS },
		/* a checkpoint takes seconds: long enough for several */
		{ .name = "1GiB", .target = 1ull << 30, .secs = 10 * RUN_SECS },
	};
	uint64_t count = 40000000, ref_out = 0, ref_sum = 0;
	static const char *const opname[3] = { "window aggregate", "keyed reduce",
					       "keyed process state" };
	struct size_stats zs[3][3];
	unsigned runs, prounds, want = 0x3, workers = 0, op0 = 0, op1 = 1;
	bool quick, count_set = false, skip_sizes = false, skip_part1 = false, want_set = false;
	const char *tmp = getenv("TMPDIR");
	double bytes_med = 0, interval_ms_d;
	int64_t interval_ms;
	struct sl_topo *topo = NULL;
	char err[256];
	int c, rc;

	b.base = tmp && *tmp ? tmp : "/tmp";
	snprintf(b.workers, sizeof(b.workers), "%d", sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 2 : 1);
	while ((c = bench_getopt(argc, argv, longopts, &args)) != -1) {
		switch (c) {
		case 'n':
			if (bench_parse_u64(optarg, 100000, 1ull << 40, &count) < 0)
				return bench_bad_value(PROG, longopts, c, optarg);
			count_set = true;
			break;
		case 's':
			if (strcmp(optarg, "part") && strcmp(optarg, "null"))
				return bench_bad_value(PROG, longopts, c, optarg);
			b.null_sink = optarg[0] == 'n';
			break;
		case 'I':
			if (sl_parse_duration_ms(optarg, 1, &interval_ms) < 0)
				return bench_bad_value(PROG, longopts, c, optarg);
			b.interval = optarg;
			break;
		case 'd':
			b.base = optarg;
			break;
		case 'B':
			want = want_set ? want : 0x7;
			break;
		case 'Z':
			want = 0;
			want_set = true;
			for (char *t = strtok(optarg, ","); t != NULL; t = strtok(NULL, ",")) {
				unsigned q = 0;

				while (q < 3 && strcmp(t, sz[q].name) != 0)
					q++;
				if (q == 3)
					return bench_bad_value(PROG, longopts, c, t);
				want |= 1u << q;
			}
			break;
		case '1':
			skip_part1 = true;
			break;
		case 'F':
			nmodes = 3;
			break;
		case 'S':
			skip_sizes = true;
			break;
		case 'P':
			if (strcmp(optarg, "window") && strcmp(optarg, "reduce") &&
			    strcmp(optarg, "both") && strcmp(optarg, "keyed") &&
			    strcmp(optarg, "all"))
				return bench_bad_value(PROG, longopts, c, optarg);
			op0 = optarg[0] == 'r' ? 1 : optarg[0] == 'k' ? 2 : 0;
			op1 = optarg[0] == 'w' ? 0 : optarg[0] == 'k' || optarg[0] == 'a' ? 2 : 1;
			break;
		}
	}
	b.batch = args.batch;
	b.idle = args.idle;
	runs = args.runs;
	quick = args.quick;
	if (quick) {
		count = count_set ? count : 4000000;
		want = want_set ? want : 0x1;
	}
	sl_parse_duration_ms(b.interval, 1, &interval_ms);
	interval_ms_d = (double)interval_ms;

	rc = sl_topo_create(NULL, err, sizeof(err), &topo);
	if (rc < 0) {
		fprintf(stderr, PROG ": topology: %s\n", err);
		return 1;
	}
	sl_numa_platform_init(&b.np, topo, SL_PLACE_PACK);

	/*
	 * Warm-up (not counted: the first job of a process pays for page
	 * faults), which also sizes the runs: about RUN_SECS each, unless --count.
	 */
	{
		struct run w = { .ckpt = true, .count = quick ? count : 10000000, .ck = ckbuf };

		if (run_job(&b, NULL, &w) < 0)
			return 1;
		if (!count_set && !quick)
			count = round_count((double)w.count / w.secs * RUN_SECS, 10000000);
	}
	/* ---- part 1: throughput, checkpoints on vs off, interleaved (none: --skip-part1) */
	prounds = skip_part1 ? 0 : runs;
	getloadavg(load0, 3);
	if (prounds > 0)
		printf(
		    "checkpoint: generator -> watermarks -> key_by -> tumbling 1 s count (%u keys) "
		    "-> "
		    "%s sink,\nparallelism 1, %llu records per run, batch %u, idle %s, checkpoints "
		    "every %s (exactly-once) vs off,\nmedian of %u interleaved rounds, "
		    "files under %s\n",
		    NKEYS, b.null_sink ? "null" : "part-file (exactly-once, fsync)",
		    (unsigned long long)count, b.batch, b.idle, b.interval, runs, b.base);
	fflush(stdout);
	for (unsigned k = 0; k < prounds; k++) {
		for (unsigned j = 0; j < 2; j++) {
			struct run r = { .ckpt = (j == 0) == (k % 2 == 0),
					 .count = count,
					 .ck = ckbuf };

			if (run_job(&b, NULL, &r) < 0)
				return 1;
			if (k == 0 && j == 0)
				ref_out = r.out, ref_sum = r.outsum;
			if (r.out != ref_out || r.outsum != ref_sum || r.out == 0) {
				fprintf(stderr,
					PROG ": output mismatch: checkpoints %s gave %llu results "
					     "(hash %016llx), the first run %llu (%016llx)\n",
					r.ckpt ? "on" : "off", (unsigned long long)r.out,
					(unsigned long long)r.outsum, (unsigned long long)ref_out,
					(unsigned long long)ref_sum);
				return 1;
			}
			workers = r.workers;
			(r.ckpt ? on : off)[k] = (double)count / r.secs;
			(r.ckpt ? con : coff)[k] = (double)count / r.cpu;
			if (r.ckpt) {
				nck[k] = r.nckpt;
				for (unsigned i = 0; i < r.nckpt && nall < MAXCKPT; i++)
					allbytes[nall++] = (double)r.ck[i].bytes;
			}
		}
		ratio[k] = on[k] / off[k];
		cratio[k] = con[k] / coff[k];
	}
	double on_med = med_of(on, prounds), off_med = med_of(off, prounds);
	double ratio_med = med_of(ratio, prounds), nck_med = med_of(nck, prounds);
	double con_med = med_of(con, prounds), coff_med = med_of(coff, prounds);
	double cratio_med = med_of(cratio, prounds);

	bytes_med = nall ? bench_median(allbytes, nall) : 0;

	getloadavg(load1, 3);

	if (prounds > 0) {
		printf("\n%-26s %10s %13s %10s %12s %10s\n", "checkpoints", "M rec/s",
		       "M rec/s/core", "on/off", "M rec/CPU-s", "on/off");
		printf("%-26s %10.2f %13.2f %10s %12.2f %10s\n", "off", off_med / 1e6,
		       off_med / 1e6 / (workers ? workers : 1), "", coff_med / 1e6, "");
		printf("%-26s %10.2f %13.2f %10.3f %12.2f %10.3f\n", "every 1 s, exactly-once",
		       on_med / 1e6, on_med / 1e6 / (workers ? workers : 1), ratio_med,
		       con_med / 1e6, cratio_med);
		printf("per-round on/off, wall:");
		for (unsigned k = 0; k < runs; k++)
			printf(" %.3f", ratio[k]);
		printf("; CPU:");
		for (unsigned k = 0; k < runs; k++)
			printf(" %.3f", cratio[k]);
		printf("\nload average before / after part 1: %.2f / %.2f (%ld CPUs online)\n",
		       load0[0], load1[0], sysconf(_SC_NPROCESSORS_ONLN));
		printf("checkpoints completed per run (median): %.0f, size %.1f KiB (median of "
		       "all); %llu "
		       "results "
		       "per run, equal in every run; %u workers\n",
		       nck_med, bytes_med / 1024, (unsigned long long)ref_out, workers);
		fflush(stdout);
	}

	/* ---- part 2: state sizes, per operator */
	if (skip_sizes)
		want = 0;
	memcpy(zs[0], sz, sizeof(sz));
	memcpy(zs[1], sz, sizeof(sz));
	memcpy(zs[2], sz, sizeof(sz));
	for (unsigned op = op0; op <= op1; op++)
		for (unsigned q = 0; q < 3; q++) {
			struct size_stats *z = &zs[op][q];
			struct genarg g;
			struct run ro = { .ckpt = true, .ck = ckbuf },
				   rf = { .ckpt = false, .ck = ckbuf };
			uint64_t keep = DISK_BUDGET / z->target;

			if (!(want & 1u << q))
				continue;
			z->keys = z->target / BYTES_PER_KEY;
			g = (struct genarg){ z->keys, true, op == 1, op == 2 };
			/*
			 * Every key 3 times, then about RUN_SECS more of the off run's
			 * rate (a probe run, checkpoints off, measures it; none in --quick).
			 */
			z->count = 3 * z->keys;
			if (!quick) {
				struct run p = { .ckpt = false,
						 .count = 3 * z->keys + 4000000,
						 .ck = ckbuf };

				if (run_job(&b, &g, &p) < 0)
					return 1;
				z->count +=
				    round_count((double)p.count / p.secs * z->secs, 4000000);
			}
			ro.count = rf.count = z->count;
			ro.retain = keep < 2 ? 2 : keep > 1000000 ? 1000000 : (unsigned)keep;
			z->retain = ro.retain;
			printf("\n%s, state ~%s: %llu keys x 64-byte acc, %llu records ...\n",
			       opname[op], z->name, (unsigned long long)z->keys,
			       (unsigned long long)z->count);
			fflush(stdout);
			if (run_job(&b, &g, &rf) < 0)
				return 1;
			z->out = rf.out;
			z->off_rps = (double)z->count / rf.secs;
			z->off_cpu_rps = (double)z->count / rf.cpu;
			z->off_cpu_ms = rf.cpu * 1e3;
			z->noise_max = rf.gm.ngaps ? (double)rf.gm.gaps[rf.gm.ngaps - 1] / 1e6 : -1;
			for (unsigned m = 0; m < nmodes; m++) {
				int jrc;

				ro.sync = m == 1;
				if (m == 2)
					setenv("SLUICE_CKPT_DIRECT", "0", 1);
				jrc = run_job(&b, &g, &ro);
				if (m == 2)
					unsetenv("SLUICE_CKPT_DIRECT");
				if (jrc < 0)
					return 1;
				if (ro.out != rf.out || ro.outsum != rf.outsum ||
				    ro.out != z->keys) {
					fprintf(stderr,
						PROG
						": %s, %s snapshots: output mismatch (%llu / %llu "
						"results)\n",
						z->name, mode_name[m], (unsigned long long)ro.out,
						(unsigned long long)rf.out);
					return 1;
				}
				on_figures(&ro, z->count, &z->on[m]);
			}
		}
	for (unsigned op = op0; op <= op1 && want != 0; op++) {
		printf("\n%s:", opname[op]);
		printf("\n%-8s %-5s %8s %8s %7s %5s %4s %8s %9s %9s %9s %9s %9s %9s %8s %5s %10s "
		       "%9s %9s %6s %9s %5s\n",
		       "state", "snap", "off M/s", "on M/s", "on/off", "ckpts", "full", "MiB/ckpt",
		       "dur p50", "dur max", "pause p50", "pause max", "noise max", "snap max",
		       "task MiB", "grown", "CPU on/off", "+CPU/ckpt", "snap avg", "fallbk",
		       "final max", "fwait");
		for (unsigned q = 0; q < 3; q++) {
			const struct size_stats *z = &zs[op][q];

			if (!(want & 1u << q))
				continue;
			for (unsigned m = 0; m < nmodes; m++) {
				const struct on_stats *o = &z->on[m];

				printf("%-8s %-5s %8.2f %8.2f %7.3f %5u %4u %8.1f %7.1fms %7.1fms "
				       "%7.1fms %7.1fms %7.1fms %7.1fms %8.1f %5llu %10.3f %7.0fms "
				       "%7.2fms %6llu %7.1fms %5llu\n",
				       z->name, mode_name[m], z->off_rps / 1e6, o->rps / 1e6,
				       o->rps / z->off_rps, o->nperiodic, o->nfull,
				       o->bytes_med / (1 << 20), o->dur_med, o->dur_max,
				       o->pause_med, o->pause_max, z->noise_max, o->snap_max,
				       o->task_mib, (unsigned long long)o->retired,
				       o->cpu_rps / z->off_cpu_rps,
				       (o->cpu_ms - z->off_cpu_ms) / (o->nckpt ? o->nckpt : 1),
				       o->snap_avg, (unsigned long long)o->fallbacks, o->final_max,
				       (unsigned long long)o->final_waits);
			}
			if (z->on[0].pause_med > 0 && z->on[1].pause_med > 0 &&
			    z->on[1].snap_max > 0)
				printf(
				    "%-8s async/sync: pause p50 %.3f, snap max %.3f, on/off %.3f\n",
				    z->name, z->on[0].pause_med / z->on[1].pause_med,
				    z->on[0].snap_max / z->on[1].snap_max,
				    z->on[0].rps / z->on[1].rps);
		}
	}
	if (want != 0)
		printf(
		    "\nsnap: async, the default (the window or reduce task copies its state at the "
		    "barrier, "
		    "the coordinator\nserialises the copy), or sync (the task serialises it); "
		    "ckpts: periodic checkpoints completed\n(the final one at the end of input "
		    "excluded); full: those triggered once every key exists, which the\nnext "
		    "columns describe; dur: trigger (chk-N birth time) to durable _metadata (its "
		    "ctime),\nfile-system clock; pause: the window task's largest gaps between "
		    "clock reads (every %u elements)\nonce every key exists, one per full "
		    "checkpoint; noise: the largest such gap with checkpoints off;\nsnap max: the "
		    "engine's longest subtask snapshot (sl_checkpoint_stats.max_pause_ns: flush, "
		    "copy or\nserialisation, hand-over).\n"
		    "Throughput includes creating the keys. Keyed reduce: sl_reduce() of 64-byte "
		    "elements (the\naccumulator), final mode (one result per key at the end); its "
		    "pauses are the gaps in the\nreduce function's clock reads. Keyed process "
		    "state: a 64-byte value state per key\n(the keyed-state table), read and "
		    "written per element; async freezes the table copy-on-write.\n",
		    GAP_EVERY);
	if (want != 0)
		printf(
		    "snap avg: the engine's mean subtask snapshot (total_pause_ns / snapshots, "
		    "every "
		    "checkpoint\nincluded, the final one too); fallbk: snapshots serialised on the "
		    "task because the copy\nfailed or the state's previous copy-on-write snapshot "
		    "was still read (sync_fallbacks);\nfinal max: the longest snapshot of the "
		    "final checkpoint at the end of input (final_max_pause_ns,\nalso in snap "
		    "max); fwait: subtasks whose final snapshot first waited for the coordinator "
		    "to\nrelease their previous snapshot (final_waits).\n");
	printf("task MiB: state the task copied itself (cow_task_bytes), grown: arrays it "
	       "grew "
	       "under a snapshot\n(cow_retired); CPU on/off: records per CPU-second of the "
	       "process, on vs off (the coordinator\nand io_uring workers included); "
	       "+CPU/ckpt: the "
	       "on run's CPU time minus the off run's, per\ncheckpoint (the final one and "
	       "those of a partial state included): what one costs\nwhatever the machine's "
	       "load.\n");
	if (prounds > 0)
		printf("M rec/s: source records / wall time of sl_job_run(); per core: divided by "
		       "the %u "
		       "workers (the checkpoint\ncoordinator thread is not counted). Every run's "
		       "output "
		       "was checked against the others.\n",
		       workers);

	if (args.json) {
		FILE *f = bench_json_open(PROG, args.json);

		if (f == NULL)
			return 1;
		fprintf(f,
			"{\"benchmark\":\"checkpoint\",\"mode\":\"end-to-end\",\"parallelism\":1,"
			"\"workers\":%u,\"batch_size\":%u,\"idle\":\"%s\",\"interval_ms\":%.0f,"
			"\"throughput\":{\"keys\":%u,\"window\":\"tumbling 1 s count\","
			"\"sink\":\"%s\",\"records\":%llu,\"runs\":%u,\"results\":%llu,"
			"\"median_off_rec_per_s\":%.1f,\"median_on_rec_per_s\":%.1f,"
			"\"median_ratio_on_vs_off\":%.4f,\"median_checkpoints\":%.0f,"
			"\"checkpoint_bytes\":%.0f",
			workers, b.batch, b.idle, interval_ms_d, NKEYS,
			b.null_sink ? "null" : "part", (unsigned long long)count, prounds,
			(unsigned long long)ref_out, off_med, on_med, ratio_med, nck_med,
			bytes_med);
		json_runs(f, "runs_off_rec_per_s", off, prounds, 1);
		json_runs(f, "runs_on_rec_per_s", on, prounds, 1);
		json_runs(f, "runs_off_rec_per_cpu_s", coff, prounds, 1);
		json_runs(f, "runs_on_rec_per_cpu_s", con, prounds, 1);
		fprintf(f,
			",\"median_ratio_cpu_on_vs_off\":%.4f,\"loadavg_before\":%.2f,"
			"\"loadavg_after\":%.2f",
			cratio_med, load0[0], load1[0]);
		json_runs(f, "runs_ratio_on_vs_off", ratio, prounds, 4);
		fprintf(f, "}");
		for (unsigned op = op0; op <= op1; op++)
			json_state(f,
				   op == 2   ? "state_keyed"
				   : op == 1 ? "state_reduce"
					     : "state",
				   zs[op], want);
		fprintf(f, "}\n");
		if (bench_json_close(f, PROG, args.json) < 0)
			return 1;
	}
	sl_topo_destroy(topo);
	return 0;
}
