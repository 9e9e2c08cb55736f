/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_pipeline.c — engine overhead on a stateless pipeline, against a
 * hand-written C loop doing the same work on the same data in the same
 * process (BENCHMARKS.md: "engine/loop ratio is the headline").
 *
 * The query: source -> map -> filter (keeps ~3/4, data dependent) -> null
 * sink, 64-byte elements. Two sources (BENCHMARKS.md modes):
 *   gen     the seeded generator (sl_gen_ops): fill_batch() per batch with
 *           the batch API, fill() per element with the per-element API;
 *   replay  a pre-generated in-memory buffer copied out per batch (memcpy)
 *           with timestamps shifted per lap.
 * Shapes:
 *   loop    one thread: per batch, generate (the same inline fill, into a
 *           buffer of batch-size elements) or read the replay buffer, then
 *           map, filter and checksum each element;
 *   staged  one thread, operator at a time as the engine runs it (fill or
 *           copy a batch, map_batch() into a second batch, filter_batch()
 *           in place, checksum), without the engine: splits the gap into
 *           materialisation (loop vs staged) and runtime (staged vs fused);
 *   fused   the engine, parallelism 1 on 1 worker (one fused task), with
 *           the per-element API (sl_map/sl_filter: an indirect call per
 *           element) or the batch API (sl_map_batch/sl_filter_batch with
 *           the same per-element work inlined in a loop);
 *   keyed   the same with sl_key_by() before the sink: the source task
 *           (source+map+filter) on worker 0, the sink on worker 1, a hash
 *           exchange between them (2 tasks, 2 workers); and, as a
 *           diagnostic, the same two tasks on one worker (the exchange's
 *           CPU cost without a second core).
 * Memory read (a loop summing every word of the replay buffer) is the
 * bandwidth ceiling of the replay mode.
 *
 * Figures: records/s (source records / wall time), per core (divided by
 * the workers, source included), the per-core ratio to the same mode's
 * loop (median of per-round ratios), and CPU time / (wall x workers),
 * which shows runs starved by other load on a shared machine.
 *
 * Self-checking: every engine run's sink count and checksum (sum of the
 * first 8 bytes of each element, mod 2^64) must equal the loop's; any
 * mismatch prints an error and exits 1. Nothing here asserts a timing.
 *
 * Threads: the main thread runs the loops, pinned to the PU of the fused
 * job's worker; the engine runs its own pinned workers (sl_numa_platform).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_connectors.h>
#include <sluice/sl_error.h>
#include <sluice/sl_job.h>
#include <sluice/sl_numa.h>

#include "bench_common.h"

#define MAX_RUNS BENCH_MAX_RUNS
#define NKEYS	 100000u
#define SEED	 0x5eed5eedu

/* ------------------------------------------------------- the user code */

/* 64 bytes; `val` first, so the null sink's checksum covers the map result. */
struct ev {
	uint64_t val;
	uint64_t key;
	uint64_t w[6];
};
_Static_assert(sizeof(struct ev) == 64, "elements are 64 bytes");

static const struct sl_type ev_type = SL_TYPE(struct ev);

/* Element @i: writes all 64 bytes, and its timestamp (1 ms apart). */
static inline void ev_fill(uint64_t i, uint64_t seed, struct ev *e, int64_t *ts)
{
	uint64_t h = bench_mix64(i ^ seed);

	*e = (struct ev){
		.val = h,
		.key = ((h >> 32) * NKEYS) >> 32,
		.w = { i, h >> 7, i * 3, seed },
	};
	*ts = (int64_t)i;
}

static inline void ev_map(const struct ev *in, struct ev *out)
{
	uint64_t v = in->val, k = in->key; /* read first: out may be in (object reuse) */

	*out = *in;
	out->val = v * 0x9e3779b97f4a7c15ull + k;
	out->w[4] = v >> 32;
}

static inline int ev_keep(const struct ev *e)
{
	return ((e->val >> 40) & 3) != 0;
}

/* The engine's callbacks: thin wrappers around the same inline functions. */
static void gen_fill(uint64_t index, uint64_t seed, void *elem, int64_t *ts, void *arg)
{
	(void)arg;
	ev_fill(index, seed, elem, ts);
}

static void gen_fill_batch(uint64_t first, uint64_t step, uint32_t n, uint64_t seed, void *elems,
			   int64_t *ts, void *arg)
{
	struct ev *e = elems;

	(void)arg;
	if (step == 1) { /* bounded: consecutive indices (the loop's case) */
		for (uint32_t k = 0; k < n; k++)
			ev_fill(first + k, seed, &e[k], &ts[k]);
		return;
	}
	for (uint32_t k = 0; k < n; k++)
		ev_fill(first + k * step, seed, &e[k], &ts[k]);
}

static int map_elem(const void *in, void *out, void *arg)
{
	(void)arg;
	ev_map(in, out);
	return 0;
}

static int filter_elem(const void *in, void *arg)
{
	(void)arg;
	return ev_keep(in);
}

static int map_batch(const struct sl_batch *in, struct sl_batch *out, void *arg)
{
	const struct ev *src = (const struct ev *)in->data;
	struct ev *dst = (struct ev *)out->data;
	uint32_t n = in->n;

	(void)arg;
	for (uint32_t i = 0; i < n; i++)
		ev_map(&src[i], &dst[i]);
	if (out != in) /* object reuse: in place */
		memcpy(out->ts, in->ts, n * sizeof(*in->ts));
	out->n = n;
	return 0;
}

static int filter_batch(struct sl_batch *b, void *arg)
{
	struct ev *e = (struct ev *)b->data;
	int64_t *ts = b->ts;
	uint32_t n = b->n, j = 0;

	(void)arg;
	/* Branch-free compaction: copy every element, advance past the kept ones. */
	for (uint32_t i = 0; i < n; i++) {
		int keep = ev_keep(&e[i]);

		e[j] = e[i];
		ts[j] = ts[i];
		j += (uint32_t)keep;
	}
	b->n = j;
	return 0;
}

static void ev_key(const void *elem, const struct sl_batch *src, struct sl_key *out)
{
	(void)src;
	out->ptr = &((const struct ev *)elem)->key;
	out->len = sizeof(uint64_t);
}

/* ------------------------------------------------------ replay source */

/* A pre-generated buffer, replayed `count` elements long, ts shifted per lap. */
struct replay_conf {
	const struct ev *buf;
	const int64_t *ts;
	uint64_t len;	/* elements in buf */
	uint64_t count; /* elements to produce */
};

/* The shared replay source (bench_common.h); a lap shifts ts by its length. */
static int replay_poll(void *state, struct sl_batch *out)
{
	struct bench_replay *r = state;
	const struct replay_conf *c = r->conf;

	return bench_replay_poll(r, out, c->buf, c->ts, sizeof(*c->buf), c->len, c->count, c->len);
}

static const struct sl_source_ops replay_ops = {
	.open = bench_replay_open,
	.poll = replay_poll,
	.close = bench_replay_close,
};

/* ------------------------------------------------------------- loops */

enum src_mode { MODE_GEN, MODE_REPLAY };

struct result {
	uint64_t records;  /* elements reaching the sink */
	uint64_t checksum; /* sum of their first 8 bytes */
};

/* Map, filter and checksum @n elements at @e. */
static inline void loop_body(const struct ev *e, uint32_t n, struct result *r)
{
	uint64_t sum = r->checksum, cnt = r->records;

	for (uint32_t k = 0; k < n; k++) {
		struct ev m;

		ev_map(&e[k], &m);
		if (ev_keep(&m)) {
			sum += m.val;
			cnt++;
		}
	}
	r->checksum = sum;
	r->records = cnt;
}

/* Generator mode: per batch, fill a buffer as the generator would, then process it. */
static __attribute__((noinline)) struct result loop_gen(uint64_t count, uint32_t batch,
							struct ev *buf, int64_t *ts)
{
	struct result r = { 0, 0 };

	for (uint64_t base = 0; base < count; base += batch) {
		uint32_t n = (uint32_t)(count - base < batch ? count - base : batch);

		for (uint32_t k = 0; k < n; k++)
			ev_fill(base + k, SEED, &buf[k], &ts[k]);
		loop_body(buf, n, &r);
	}
	return r;
}

/* Replay mode: read the replay buffer in place, lap after lap. */
static __attribute__((noinline)) struct result loop_replay(const struct replay_conf *c)
{
	struct result r = { 0, 0 };

	for (uint64_t done = 0; done < c->count;) {
		uint64_t pos = done % c->len;
		uint64_t m = c->len - pos < c->count - done ? c->len - pos : c->count - done;

		loop_body(&c->buf[pos], (uint32_t)m, &r);
		done += m;
	}
	return r;
}

/*
 * Operator at a time, as the engine runs it but without the engine: per
 * batch, fill (inline) or copy (as the replay source does) into @in, then
 * the same map_batch() into @out, filter_batch() in place, and the null
 * sink's checksum pass. The gap between this and the engine is the
 * runtime plus the source API; the gap between this and the fused loop is
 * the cost of materialising each operator's output.
 */
static __attribute__((noinline)) struct result loop_staged(enum src_mode mode, uint64_t count,
							   const struct replay_conf *c,
							   struct sl_batch *in,
							   struct sl_batch *out)
{
	struct result r = { 0, 0 };

	for (uint64_t base = 0; base < count; base += in->cap) {
		uint32_t n = (uint32_t)(count - base < in->cap ? count - base : in->cap);
		const struct ev *e = (const struct ev *)out->data;
		uint64_t sum = 0;

		if (mode == MODE_GEN) {
			for (uint32_t k = 0; k < n; k++)
				ev_fill(base + k, SEED, (struct ev *)in->data + k, &in->ts[k]);
		} else {
			/* The replay source's copy, wrap and timestamp shift. */
			for (uint32_t done = 0; done < n;) {
				uint64_t i = base + done, pos = i % c->len;
				uint32_t m =
				    (uint32_t)(c->len - pos < n - done ? c->len - pos : n - done);
				int64_t shift = (int64_t)(i / c->len * c->len);

				memcpy(in->data + (size_t)done * sizeof(struct ev), &c->buf[pos],
				       (size_t)m * sizeof(struct ev));
				for (uint32_t k = 0; k < m; k++)
					in->ts[done + k] = c->ts[pos + k] + shift;
				done += m;
			}
		}
		in->n = n;
		map_batch(in, out, NULL);
		filter_batch(out, NULL);
		for (uint32_t k = 0; k < out->n; k++)
			sum += e[k].val;
		r.checksum += sum;
		r.records += out->n;
	}
	return r;
}

/* Bandwidth ceiling of replay: read every word of every element once per lap. */
static __attribute__((noinline)) uint64_t loop_memread(const struct replay_conf *c)
{
	const uint64_t *w = (const uint64_t *)c->buf;
	uint64_t sum = 0;

	for (uint64_t done = 0; done < c->count; done += c->len) {
		uint64_t m = c->count - done < c->len ? c->count - done : c->len;
		uint64_t words = m * (sizeof(struct ev) / 8);

		for (uint64_t k = 0; k < words; k++)
			sum += w[k];
	}
	return sum;
}

/* ------------------------------------------------------------ engine */

/* API_REUSE: the batch API with the object-reuse option (maps run in place). */
enum api { API_NONE, API_STAGED, API_BATCH, API_REUSE, API_ELEM };

struct variant {
	const char *name; /* short id, used in JSON */
	const char *desc; /* table label */
	enum src_mode mode;
	enum api api; /* API_NONE: a loop */
	bool keyed;
	bool memread;
	unsigned workers;
};

static const struct variant variants[] = {
	{ "gen_loop", "hand-written C loop", MODE_GEN, API_NONE, false, false, 1 },
	{ "gen_staged", "C loop, operator at a time", MODE_GEN, API_STAGED, false, false, 1 },
	{ "gen_batch", "engine, batch API", MODE_GEN, API_BATCH, false, false, 1 },
	{ "gen_reuse", "engine, batch API, obj. reuse", MODE_GEN, API_REUSE, false, false, 1 },
	{ "gen_elem", "engine, per-element API", MODE_GEN, API_ELEM, false, false, 1 },
	{ "gen_keyed_batch", "engine, batch API, key_by", MODE_GEN, API_BATCH, true, false, 2 },
	/* Diagnostic: the same two tasks on one worker (the exchange's CPU cost, no 2nd core). */
	{ "gen_keyed_1w_batch", "  same, both tasks on 1 worker", MODE_GEN, API_BATCH, true, false,
	  1 },
	{ "replay_memread", "memory read (ceiling)", MODE_REPLAY, API_NONE, false, true, 1 },
	{ "replay_loop", "hand-written C loop", MODE_REPLAY, API_NONE, false, false, 1 },
	{ "replay_staged", "C loop, operator at a time", MODE_REPLAY, API_STAGED, false, false, 1 },
	{ "replay_batch", "engine, batch API", MODE_REPLAY, API_BATCH, false, false, 1 },
	{ "replay_reuse", "engine, batch API, obj. reuse", MODE_REPLAY, API_REUSE, false, false,
	  1 },
	{ "replay_elem", "engine, per-element API", MODE_REPLAY, API_ELEM, false, false, 1 },
	{ "replay_keyed_batch", "engine, batch API, key_by", MODE_REPLAY, API_BATCH, true, false,
	  2 },
};
#define NVARIANTS SL_ARRAY_SIZE(variants)

struct bench {
	uint64_t count;
	uint32_t batch;
	const char *idle;
	struct sl_gen_conf gen, gen_batch;
	struct replay_conf replay;
	struct sl_numa_platform np;
	struct ev *loop_buf;
	int64_t *loop_ts;
	struct sl_batch *stage_in, *stage_out;
	struct result expect[2]; /* per source mode, from the loop */
	bool have_expect[2];
};

static int set_opt(struct sl_job *job, const char *key, const char *value)
{
	return bench_job_set("bench_pipeline", job, key, value);
}

static int build_job(struct bench *b, const struct variant *v, struct sl_null_sink *sink,
		     struct sl_job **out)
{
	struct sl_job *job;
	struct sl_stream *s;
	char batch[16], workers[16];
	int rc;

	rc = sl_job_create("bench-pipeline", &job);
	if (rc < 0)
		return rc;
	snprintf(batch, sizeof(batch), "%u", b->batch);
	snprintf(workers, sizeof(workers), "%u", v->workers);
	if ((rc = set_opt(job, "parallelism", "1")) < 0 ||
	    (rc = set_opt(job, "workers", workers)) < 0 ||
	    (rc = set_opt(job, "batch-size", batch)) < 0 ||
	    (rc = set_opt(job, "idle", b->idle)) < 0 ||
	    (rc = set_opt(job, "object-reuse", v->api == API_REUSE ? "true" : "false")) < 0)
		goto fail;
	if (v->mode == MODE_GEN)
		s = sl_source(job, "gen", &sl_gen_ops, v->api == API_ELEM ? &b->gen : &b->gen_batch,
			      &ev_type);
	else
		s = sl_source(job, "replay", &replay_ops, &b->replay, &ev_type);
	if (v->api == API_BATCH || v->api == API_REUSE) {
		s = sl_map_batch(s, "map", map_batch, NULL, &ev_type);
		s = sl_filter_batch(s, "filter", filter_batch, NULL);
	} else {
		s = sl_map(s, "map", map_elem, NULL, &ev_type);
		s = sl_filter(s, "filter", filter_elem, NULL);
	}
	if (v->keyed)
		s = sl_key_by(s, ev_key);
	/* Builder errors are recorded in the job and reported by sl_job_run(). */
	s = sl_sink(s, "sink", &sl_null_sink_ops, sink);
	if (s == NULL) {
		rc = -EINVAL;
		goto fail;
	}
	*out = job;
	return 0;
fail:
	sl_job_destroy(job);
	return rc;
}

/* One run's figures. */
struct sample {
	double rate; /* source records per second of wall time */
	double cpu;  /* process CPU time / (wall time x workers): < 1 when starved */
};

static uint64_t cpu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Run @v's workload once and return its result (-errno in *rc on failure). */
static struct result run_work(struct bench *b, const struct variant *v, int *rc)
{
	struct result r = { 0, 0 };
	struct sl_null_sink sink = { 0 };
	struct sl_job *job = NULL;
	char err[512];

	*rc = 0;
	if (v->memread) {
		r.checksum = loop_memread(&b->replay);
		return r;
	}
	if (v->api == API_NONE)
		return v->mode == MODE_GEN ? loop_gen(b->count, b->batch, b->loop_buf, b->loop_ts)
					   : loop_replay(&b->replay);
	if (v->api == API_STAGED)
		return loop_staged(v->mode, b->count, &b->replay, b->stage_in, b->stage_out);
	/* Building the job is timed too: it is a few small allocations. */
	*rc = build_job(b, v, &sink, &job);
	if (*rc < 0) {
		fprintf(stderr, "bench_pipeline: %s: building the job: %s\n", v->name,
			sl_strerror(*rc));
		return r;
	}
	*rc = sl_job_run(job, &b->np.platform, err, sizeof(err));
	sl_job_destroy(job);
	if (*rc < 0)
		fprintf(stderr, "bench_pipeline: %s: %s\n", v->name, err);
	r.records = sl_null_sink_records(&sink);
	r.checksum = sl_null_sink_checksum(&sink);
	return r;
}

/* One timed, checked run of @v. Return 0 or -errno. */
static int run_once(struct bench *b, const struct variant *v, struct sample *out)
{
	const struct result *want = &b->expect[v->mode];
	uint64_t t0 = bench_now_ns(), c0 = cpu_now_ns(), t1, c1;
	int rc;
	struct result r = run_work(b, v, &rc);

	t1 = bench_now_ns();
	c1 = cpu_now_ns();
	if (rc < 0)
		return rc;
	out->rate = (double)b->count * 1e9 / (double)(t1 - t0);
	out->cpu = (double)(c1 - c0) / (double)(t1 - t0) / v->workers;
	if (v->memread) {
		/* Keep the sum alive; it checks nothing. */
		__asm__ volatile("" : : "r"(r.checksum));
		return 0;
	}
	if (v->api == API_NONE && !b->have_expect[v->mode]) {
		b->expect[v->mode] = r;
		b->have_expect[v->mode] = true;
	}
	if (!b->have_expect[v->mode] || r.records != want->records ||
	    r.checksum != want->checksum) {
		fprintf(stderr,
			"bench_pipeline: %s: result mismatch: %llu records, checksum %016llx; the "
			"loop gave %llu records, checksum %016llx\n",
			v->name, (unsigned long long)r.records, (unsigned long long)r.checksum,
			(unsigned long long)want->records, (unsigned long long)want->checksum);
		return -EPROTO;
	}
	return 0;
}

/* -------------------------------------------------------------- main */

static int replay_init(struct replay_conf *c, uint64_t len, uint64_t count)
{
	struct ev *buf = aligned_alloc(64, (size_t)len * sizeof(*buf));
	int64_t *ts = malloc((size_t)len * sizeof(*ts));

	if (buf == NULL || ts == NULL) {
		free(buf);
		free(ts);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < len; i++)
		ev_fill(i, SEED, &buf[i], &ts[i]);
	*c = (struct replay_conf){ .buf = buf, .ts = ts, .len = len, .count = count };
	return 0;
}

/* The hand-written loop of @mode: the baseline of every ratio in that mode. */
static unsigned loop_index(enum src_mode mode)
{
	for (unsigned i = 0; i < NVARIANTS; i++)
		if (variants[i].mode == mode && variants[i].api == API_NONE && !variants[i].memread)
			return i;
	abort();
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: bench_pipeline [--count N] [--replay-elems N] [--runs R] [--batch-size B]\n"
	    "                      [--idle busy|sleep] [--quick] [--only VARIANT] [--json PATH]\n"
	    "  source -> map -> filter -> null sink on 64-byte elements: the engine (1 worker,\n"
	    "  fused; and 2 workers split by key_by) against a hand-written C loop on the same\n"
	    "  data, in generator and replay modes. Defaults: 20M records per run, a 1M-element\n"
	    "  (64 MiB) replay buffer, 5 interleaved runs, batch 512, idle sleep (the engine's\n"
	    "  default). --quick: 200k records, 50k replay buffer, 3 runs (a smoke test).\n"
	    "  --only VARIANT: run one variant (and its loop), e.g. under a profiler.\n");
}

/* Every run of one variant, and the medians. */
struct agg {
	bool skip;
	struct sample run[MAX_RUNS];
	double vs_loop[MAX_RUNS];  /* per core, against its mode's loop in the same round */
	double vs_fused[MAX_RUNS]; /* keyed: total rate against the 1-worker engine, same API */
	double rate, per_core, cpu, ratio_loop, ratio_fused; /* medians */
};

/* The 1-worker engine variant that keyed variant @v is compared with. */
static unsigned fused_index(const struct variant *v)
{
	for (unsigned i = 0; i < NVARIANTS; i++)
		if (variants[i].mode == v->mode && variants[i].api == v->api && !variants[i].keyed)
			return i;
	abort();
}

static void summarise(struct agg *a, unsigned runs)
{
	for (unsigned i = 0; i < NVARIANTS; i++) {
		const struct variant *v = &variants[i];
		const struct agg *loop = &a[loop_index(v->mode)];
		double rate[MAX_RUNS], cpu[MAX_RUNS];

		if (a[i].skip)
			continue;
		/* Ratios run by run (same round of interleaving), then the median. */
		for (unsigned k = 0; k < runs; k++) {
			rate[k] = a[i].run[k].rate;
			cpu[k] = a[i].run[k].cpu;
			a[i].vs_loop[k] = rate[k] / v->workers / loop->run[k].rate;
			if (v->keyed && !a[fused_index(v)].skip)
				a[i].vs_fused[k] = rate[k] / a[fused_index(v)].run[k].rate;
		}
		a[i].rate = bench_median_of(rate, runs);
		a[i].per_core = a[i].rate / v->workers;
		a[i].cpu = bench_median_of(cpu, runs);
		a[i].ratio_loop = bench_median_of(a[i].vs_loop, runs);
		a[i].ratio_fused =
		    v->keyed && !a[fused_index(v)].skip ? bench_median_of(a[i].vs_fused, runs) : 0;
	}
}

static void print_table(const struct agg *a)
{
	printf("\n%-6s %-28s %2s %10s %10s %7s %5s %8s %8s\n", "mode", "variant", "w", "rec/s",
	       "rec/s/core", "ns/rec", "cpu", "vs loop", "vs 1w");
	for (unsigned i = 0; i < NVARIANTS; i++) {
		const struct variant *v = &variants[i];

		printf("%-6s %-28s %2u", v->mode == MODE_GEN ? "gen" : "replay", v->desc,
		       v->workers);
		if (a[i].skip) {
			printf(" %10s\n", "skipped");
			continue;
		}
		printf(" %10.4g %10.4g %7.2f %5.2f %8.3f", a[i].rate, a[i].per_core,
		       1e9 / a[i].per_core, a[i].cpu, a[i].ratio_loop);
		if (a[i].ratio_fused > 0)
			printf(" %8.3f\n", a[i].ratio_fused);
		else
			printf(" %8s\n", "");
	}
	printf("\nrec/s: source records per second (wall time); /core: divided by the workers, "
	       "source included; ns/rec per core.\n"
	       "cpu: process CPU time / (wall x workers), median; below ~0.95 the run was "
	       "starved by other load\n"
	       "     (key_by rows with idle=sleep also count the time the sink worker sleeps).\n"
	       "vs loop: per-core rate / the same mode's hand-written loop, median of per-round "
	       "ratios.\n"
	       "vs 1w: key_by rows, total rate / the 1-worker fused engine with the same API.\n");
}

static int write_json(const char *path, const struct bench *b, const struct agg *a, unsigned runs,
		      uint64_t replay_len, const int *pus)
{
	FILE *f = bench_json_open("bench_pipeline", path);

	if (f == NULL)
		return -EIO;
	fprintf(f,
		"{\"benchmark\":\"pipeline\",\"count\":%llu,\"batch_size\":%u,"
		"\"replay_elems\":%llu,\"elem_bytes\":%zu,\"runs\":%u,\"idle\":\"%s\","
		"\"pus\":[%d,%d],\"results\":[",
		(unsigned long long)b->count, b->batch, (unsigned long long)replay_len,
		sizeof(struct ev), runs, b->idle, pus[0], pus[1]);
	for (unsigned i = 0, first = 1; i < NVARIANTS; i++) {
		const struct variant *v = &variants[i];

		if (a[i].skip)
			continue;
		fprintf(f,
			"%s{\"name\":\"%s\",\"desc\":\"%s\",\"workers\":%u,"
			"\"median_rec_per_s\":%.1f,\"median_rec_per_s_per_core\":%.1f,"
			"\"median_cpu_util\":%.3f,\"median_ratio_per_core_vs_loop\":%.4f",
			first ? "" : ",", v->name, v->desc, v->workers, a[i].rate, a[i].per_core,
			a[i].cpu, a[i].ratio_loop);
		if (a[i].ratio_fused > 0)
			fprintf(f, ",\"median_ratio_vs_1_worker\":%.4f", a[i].ratio_fused);
		fprintf(f, ",\"runs_rec_per_s\":[");
		for (unsigned k = 0; k < runs; k++)
			fprintf(f, "%s%.1f", k ? "," : "", a[i].run[k].rate);
		fprintf(f, "],\"runs_cpu_util\":[");
		for (unsigned k = 0; k < runs; k++)
			fprintf(f, "%s%.3f", k ? "," : "", a[i].run[k].cpu);
		fprintf(f, "]}");
		first = 0;
	}
	fprintf(f, "]}\n");
	return bench_json_close(f, "bench_pipeline", path);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "replay-elems", required_argument, NULL, 'e' },
		{ "only", required_argument, NULL, 'o' },
		BENCH_OPTS_ENGINE,
		BENCH_OPTS_COMMON,
		{ NULL, 0, NULL, 0 },
	};
	struct bench_args args = { .prog = "bench_pipeline",
				   .usage = usage,
				   .runs = 5,
				   .quick_runs = 3,
				   .batch = 512,
				   .idle = "sleep" };
	struct bench b = { .count = 20000000 };
	uint64_t replay_len = 1u << 20;
	unsigned runs;
	bool two, count_set = false, len_set = false;
	const char *only = NULL;
	static struct agg a[NVARIANTS];
	int pus[2] = { -1, -1 };
	struct sl_topo *topo = NULL;
	int pu_one = -1;
	char err[256];
	int c, rc;

	while ((c = bench_getopt(argc, argv, longopts, &args)) != -1) {
		switch (c) {
		case 'n':
			if (bench_parse_u64(optarg, 1000, 1ull << 40, &b.count) < 0)
				return bench_bad_value(args.prog, longopts, c, optarg);
			count_set = true;
			break;
		case 'e':
			if (bench_parse_u64(optarg, 1000, 1ull << 28, &replay_len) < 0)
				return bench_bad_value(args.prog, longopts, c, optarg);
			len_set = true;
			break;
		case 'o':
			only = optarg;
			break;
		}
	}
	b.batch = args.batch;
	b.idle = args.idle;
	runs = args.runs;
	if (args.quick) {
		if (!count_set)
			b.count = 200000;
		if (!len_set)
			replay_len = 50000;
	}
	if (replay_len > b.count)
		replay_len = b.count;
	if (only != NULL) {
		/* One variant (for profilers), plus its mode's loop for the checksum. */
		unsigned n = 0;

		for (unsigned i = 0; i < NVARIANTS; i++) {
			a[i].skip = strcmp(variants[i].name, only) != 0;
			n += !a[i].skip;
		}
		if (n == 0)
			goto bad_only;
		for (unsigned i = 0; i < NVARIANTS; i++)
			if (!a[i].skip)
				a[loop_index(variants[i].mode)].skip = false;
	}

	rc = sl_topo_create(NULL, err, sizeof(err), &topo);
	if (rc < 0) {
		fprintf(stderr, "bench_pipeline: topology: %s\n", err);
		return 1;
	}
	sl_numa_platform_init(&b.np, topo, SL_PLACE_PACK);
	/* Ask the platform where the engine puts 1 and 2 workers; the loops share worker 0's PU. */
	{
		int nodes[2], pu1[1];

		two = sl_topo_ncpus(topo) >= 2;
		rc = b.np.platform.place(b.np.platform.ctx, 1, pu1, nodes, err, sizeof(err));
		if (rc == 0 && two)
			rc =
			    b.np.platform.place(b.np.platform.ctx, 2, pus, nodes, err, sizeof(err));
		if (rc < 0) {
			fprintf(stderr, "bench_pipeline: placement: %s\n", err);
			return 1;
		}
		if (two && pus[0] != pu1[0])
			fprintf(stderr,
				"bench_pipeline: note: 1 worker goes to PU %d, 2 workers to "
				"PUs %d and %d\n",
				pu1[0], pus[0], pus[1]);
		pu_one = pu1[0];
	}
	if (!two) {
		for (unsigned i = 0; i < NVARIANTS; i++)
			a[i].skip |= variants[i].workers > 1;
		fprintf(stderr, "bench_pipeline: one usable PU: the key_by variants are skipped\n");
	}
	rc = sl_numa_pin_thread(topo, pu_one);
	if (rc < 0)
		fprintf(stderr, "bench_pipeline: cannot pin the loops to PU %d (%s): unpinned\n",
			pu_one, sl_strerror(rc));

	b.gen = (struct sl_gen_conf){
		.count = b.count, .seed = SEED, .type = &ev_type, .fill = gen_fill
	};
	b.gen_batch = b.gen;
	b.gen_batch.fill = NULL;
	b.gen_batch.fill_batch = gen_fill_batch;
	b.loop_buf = aligned_alloc(64, (size_t)b.batch * sizeof(struct ev));
	b.loop_ts = malloc((size_t)b.batch * sizeof(int64_t));
	if (b.loop_buf == NULL || b.loop_ts == NULL ||
	    sl_batch_create(NULL, b.batch, sizeof(struct ev), 0, &b.stage_in) < 0 ||
	    sl_batch_create(NULL, b.batch, sizeof(struct ev), 0, &b.stage_out) < 0 ||
	    replay_init(&b.replay, replay_len, b.count) < 0) {
		fprintf(stderr, "bench_pipeline: out of memory\n");
		return 1;
	}

	printf("pipeline: source -> map -> filter (keeps ~3/4) -> null sink, 64-byte elements\n"
	       "%llu records per run, batch %u, replay buffer %llu elements (%.1f MiB), idle %s, "
	       "median of %u interleaved runs\n"
	       "PUs (sl_numa_platform, pack): 1 worker on PU %d, the loops pinned there too; "
	       "key_by: worker 0 (source, map, filter) on PU %d, worker 1 (sink) on PU %d\n",
	       (unsigned long long)b.count, b.batch, (unsigned long long)replay_len,
	       (double)replay_len * sizeof(struct ev) / 1048576.0, b.idle, runs, pu_one, pus[0],
	       pus[1]);
	fflush(stdout);

	for (unsigned k = 0; k < runs; k++) {
		for (unsigned j = 0; j < NVARIANTS; j++) {
			/*
			 * Alternate the order so drift does not favour one variant;
			 * round 0 goes forward so each mode's loop sets the expected
			 * result before that mode's engine runs.
			 */
			unsigned i = (k % 2) ? NVARIANTS - 1 - j : j;

			if (a[i].skip)
				continue;
			if (run_once(&b, &variants[i], &a[i].run[k]) < 0)
				return 1;
		}
	}
	summarise(a, runs);
	print_table(a);
	if (args.json && write_json(args.json, &b, a, runs, replay_len, pus) < 0)
		return 1;
	free(b.loop_buf);
	free(b.loop_ts);
	sl_batch_destroy(b.stage_in);
	sl_batch_destroy(b.stage_out);
	free((void *)b.replay.buf);
	free((void *)b.replay.ts);
	sl_topo_destroy(topo);
	return 0;

bad_only:
	fprintf(stderr, "bench_pipeline: no variant named '%s'; the variants are:", only);
	for (unsigned i = 0; i < NVARIANTS; i++)
		fprintf(stderr, " %s", variants[i].name);
	fprintf(stderr, "\n");
	return 2;
}
