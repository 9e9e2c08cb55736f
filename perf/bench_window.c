/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_window.c — event-time window aggregation on one worker, replay
 * mode, against a hand-written C loop computing the same window results
 * on the same data in the same process (BENCHMARKS.md).
 *
 * Input: 16-byte elements { key, val }, 10,000 keys (uniform, seeded),
 * val in 0..99. Timestamps: 1,000 records per ms of event time (record i
 * at i / 1000 ms), each up to 4 ms early (uniform): monotone-ish with
 * small disorder. A pre-generated buffer (1M elements, 16 MiB) is replayed
 * lap after lap with its timestamps shifted by the lap's span, so time
 * keeps moving forward; the engine's source lends the buffer's elements
 * to its batches (sl_batch_borrow(): no copy, as a source over a mapped
 * file of fixed-size records would) and writes their shifted timestamps,
 * the loop reads both in place.
 *
 * Watermarks: bounded out-of-orderness 5 ms (above the disorder, so no
 * record is late) after every 8,192 records (a multiple of the batch size:
 * batches are not cut), in the engine and in the loop alike; the end of
 * input is the final watermark.
 *
 * Queries:
 *   tumbling  1 s tumbling count per key (one pane per window);
 *   sliding   60 s / 1 s sliding sum per key (60 panes per window, merged
 *             when a window fires: the stream-slicing path).
 * Engine: replay source (parallelism 1) -> watermarks -> key_by ->
 * sl_window_aggregate -> null sink, everything on 1 worker. The query is
 * written as a Flink user would: keyBy(field) (sl_key_by_field()) and the
 * built-in count / sum (sl_agg_count(), sl_agg_sum_i64()); --generic
 * writes it with a key function and a custom aggregate instead (callbacks
 * per element: the general path). The result
 * element's first word is a hash of (start, key, value), so the null
 * sink's checksum (a sum) and count cover every result, in any order.
 *
 * Loop: the same per-key windows, written by hand: per-pane arrays of
 * 10,000 counters (tumbling: a ring of 4 windows; sliding: a ring of 64
 * panes of sums and counts), fired when the watermark passes end - 1 by
 * scanning the keys (sliding: summing the window's 60 panes per key); it
 * emits the same (start, key, value) hashes into the same kind of sum.
 *
 * Figures: M records/s (source records / wall time, one core: the loops
 * are pinned to the engine worker's PU) and the engine/loop ratio, median
 * of per-round ratios. Self-checking: every engine run's result count and
 * checksum must equal the loop's, else exit 1. Nothing asserts a timing.
 */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_connectors.h>
#include <sluice/sl_error.h>
#include <sluice/sl_job.h>
#include <sluice/sl_numa.h>
#include <sluice/sl_time.h>

#include "bench_common.h"

#define MAX_RUNS    BENCH_MAX_RUNS
#define NKEYS	    10000u
#define SEED	    0x5eed1234u
#define PER_MS	    1000  /* records per ms of event time */
#define DISORDER_MS 4	  /* a record is up to this much early */
#define BOUND_MS    5	  /* out-of-orderness of the watermarks */
#define WM_EVERY    8192u /* records between watermarks */

static const struct sl_type ev_type = SL_TYPE(struct bench_kv);

static const struct sl_type wres_type = SL_TYPE(struct bench_wres);

/* ------------------------------------------------------------ queries */

enum query { Q_TUMBLING, Q_SLIDING, NQUERIES };

static const struct {
	const char *name, *desc;
	int64_t size, slide;
	uint64_t count; /* records per run by default */
} queries[NQUERIES] = {
	{ "tumbling", "tumbling 1 s count per key", 1000, 1000, 20000000 },
	{ "sliding", "sliding 60 s / 1 s sum per key", 60000, 1000, 60000000 },
};

/* ------------------------------------------------------ replay source */

struct replay_conf {
	const struct bench_kv *buf;
	const int64_t *ts;
	uint64_t len;	/* elements in buf, a multiple of PER_MS */
	uint64_t count; /* elements to produce */
};

/* The shared replay source, lending (bench_common.h); a lap shifts ts by its span of event time. */
static int replay_poll(void *state, struct sl_batch *out)
{
	struct bench_replay *r = state;
	const struct replay_conf *c = r->conf;

	return bench_replay_lend(r, out, c->buf, c->ts, sizeof(*c->buf), c->len, c->count,
				 c->len / PER_MS);
}

static const struct sl_source_ops replay_ops = {
	.open = bench_replay_open,
	.poll = replay_poll,
	.close = bench_replay_close,
};

/* ------------------------------------------------------------- engine */

static void sum_add(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg)
{
	(void)ts, (void)src, (void)arg;
	*(int64_t *)acc += ((const struct bench_kv *)elem)->val;
}

struct result {
	uint64_t records; /* window results */
	uint64_t checksum;
};

struct bench {
	uint32_t batch;
	const char *idle;
	bool generic; /* --generic: key function and custom aggregate */
	struct replay_conf replay;
	struct sl_numa_platform np;
	int64_t *tum_cnt;		   /* loop, tumbling: [4][NKEYS] */
	int64_t *sl_sum, *sl_cnt, *sl_win; /* loop, sliding: [64][NKEYS] x 2, [NKEYS] */
};

static int set_opt(struct sl_job *job, const char *key, const char *value)
{
	return bench_job_set("bench_window", job, key, value);
}

static int run_engine(struct bench *b, enum query q, struct result *r)
{
	struct sl_watermark_strategy ws = { .out_of_orderness_ms = BOUND_MS, .every = WM_EVERY };
	struct sl_window_spec spec = { .kind =
					   q == Q_TUMBLING ? SL_WINDOW_TUMBLING : SL_WINDOW_SLIDING,
				       .size = queries[q].size,
				       .slide = queries[q].slide };
	struct sl_aggregate agg = { .acc_size = sizeof(int64_t),
				    .create = bench_i64_create,
				    .add = q == Q_TUMBLING ? bench_i64_count : sum_add,
				    .merge = bench_i64_merge,
				    .result = bench_i64_result,
				    .flags = SL_AGG_SLICEABLE };

	if (!b->generic)
		agg = q == Q_TUMBLING
			  ? sl_agg_count(bench_i64_result, NULL)
			  : sl_agg_sum_i64(offsetof(struct bench_kv, val), bench_i64_result, NULL);
	struct sl_null_sink sink = { 0 };
	struct sl_job *job;
	struct sl_stream *s;
	char batch[16], err[512];
	int rc;

	rc = sl_job_create("bench-window", &job);
	if (rc < 0)
		return rc;
	snprintf(batch, sizeof(batch), "%u", b->batch);
	if ((rc = set_opt(job, "parallelism", "1")) < 0 ||
	    (rc = set_opt(job, "workers", "1")) < 0 ||
	    (rc = set_opt(job, "batch-size", batch)) < 0 ||
	    (rc = set_opt(job, "idle", b->idle)) < 0) {
		sl_job_destroy(job);
		return rc;
	}
	s = sl_source(job, "replay", &replay_ops, &b->replay, &ev_type);
	s = sl_assign_watermarks(s, &ws);
	s = b->generic ? sl_key_by(s, bench_key_u64)
		       : sl_key_by_field(s, offsetof(struct bench_kv, key), sizeof(uint64_t));
	s = sl_window_aggregate(s, "window", &spec, &agg, &wres_type);
	sl_sink(s, "sink", &sl_null_sink_ops, &sink);
	rc = sl_job_run(job, &b->np.platform, err, sizeof(err));
	sl_job_destroy(job);
	if (rc < 0) {
		fprintf(stderr, "bench_window: %s: %s\n", queries[q].name, err);
		return rc;
	}
	r->records = sl_null_sink_records(&sink);
	r->checksum = sl_null_sink_checksum(&sink);
	return 0;
}

/* --------------------------------------------------------------- loops */

static inline int64_t floor_div(int64_t a, int64_t m)
{
	return a >= 0 ? a / m : -((-a + m - 1) / m);
}

/*
 * Tumbling 1 s count per key: a ring of 4 windows of NKEYS counters (the
 * disorder keeps at most 2 open). At a watermark, every open window with
 * end - 1 <= wm is emitted (keys with a count) and cleared.
 */
static __attribute__((noinline)) struct result loop_tumbling(struct bench *b, uint64_t count)
{
	const struct replay_conf *c = &b->replay;
	const int64_t size = queries[Q_TUMBLING].size;
	int64_t *cnt = b->tum_cnt, open_lo = INT64_MAX, open_hi = INT64_MIN, max_ts = INT64_MIN;
	struct result r = { 0, 0 };
	uint64_t since_wm = 0;

	memset(cnt, 0, 4 * NKEYS * sizeof(*cnt));
	for (uint64_t done = 0; done < count;) {
		uint64_t pos = done % c->len, lap = done / c->len;
		uint64_t m = c->len - pos < count - done ? c->len - pos : count - done;
		int64_t shift = (int64_t)(lap * (c->len / PER_MS));

		for (uint64_t k = 0; k < m; k++) {
			int64_t ts = c->ts[pos + k] + shift, w = floor_div(ts, size);

			cnt[(w & 3) * NKEYS + c->buf[pos + k].key]++;
			open_lo = w < open_lo ? w : open_lo;
			open_hi = w > open_hi ? w : open_hi;
			max_ts = ts > max_ts ? ts : max_ts;
			if (++since_wm == WM_EVERY || done + k + 1 == count) {
				/* A watermark (the final one at the end: everything fires). */
				int64_t wm =
				    done + k + 1 == count ? INT64_MAX : max_ts - BOUND_MS - 1;

				since_wm = 0;
				for (; open_lo <= open_hi && open_lo * size + size - 1 <= wm;
				     open_lo++) {
					int64_t *row = &cnt[(open_lo & 3) * NKEYS];
					uint64_t sum = 0, n = 0;

					for (uint32_t key = 0; key < NKEYS; key++) {
						if (row[key]) {
							sum += bench_res_hash(open_lo * size, key,
									      row[key]);
							n++;
							row[key] = 0;
						}
					}
					r.checksum += sum;
					r.records += n;
				}
				if (open_lo > open_hi)
					open_lo = INT64_MAX, open_hi = INT64_MIN;
			}
		}
		done += m;
	}
	return r;
}

/* Sliding loop: emit window [e - np, e) (in panes) of every key with elements in it. */
static inline void sliding_fire(struct bench *b, int64_t e, int64_t np, int64_t g, int64_t pane_lo,
				int64_t pane_hi, struct result *r)
{
	int64_t *win = b->sl_win;
	int64_t lo = e - np > pane_lo ? e - np : pane_lo;
	uint64_t s = 0, n = 0;

	/* Bit 63 of win[] flags a key with elements; sums stay far below it. */
	memset(win, 0, NKEYS * sizeof(*win));
	for (int64_t p = lo; p < e && p <= pane_hi; p++) {
		const int64_t *ps = &b->sl_sum[(p & 63) * NKEYS],
			      *pc = &b->sl_cnt[(p & 63) * NKEYS];

		for (uint32_t key = 0; key < NKEYS; key++)
			win[key] = (win[key] + ps[key]) | (pc[key] ? INT64_MIN : 0);
	}
	for (uint32_t key = 0; key < NKEYS; key++) {
		if (win[key] < 0) {
			s += bench_res_hash((e - np) * g, key, win[key] & INT64_MAX);
			n++;
		}
	}
	r->checksum += s;
	r->records += n;
}

/*
 * Sliding 60 s / 1 s sum per key: a ring of 64 panes of NKEYS sums and
 * counts (live panes span at most 62). At a watermark, each window with
 * end - 1 <= wm not yet fired is emitted (its 60 panes summed per key,
 * keys with elements), then its oldest pane, in no later window, cleared.
 */
static __attribute__((noinline)) struct result loop_sliding(struct bench *b, uint64_t count)
{
	const struct replay_conf *c = &b->replay;
	const int64_t g = queries[Q_SLIDING].slide, np = queries[Q_SLIDING].size / g;
	int64_t *sum = b->sl_sum, *cnt = b->sl_cnt, max_ts = INT64_MIN;
	int64_t pane_lo = INT64_MAX, pane_hi = INT64_MIN; /* panes with data, not yet cleared */
	int64_t next_end = INT64_MIN;			  /* end (in panes) of the next window */
	struct result r = { 0, 0 };
	uint64_t since_wm = 0;

	memset(sum, 0, 64 * NKEYS * sizeof(*sum));
	memset(cnt, 0, 64 * NKEYS * sizeof(*cnt));
	for (uint64_t done = 0; done < count;) {
		uint64_t pos = done % c->len, lap = done / c->len;
		uint64_t m = c->len - pos < count - done ? c->len - pos : count - done;
		int64_t shift = (int64_t)(lap * (c->len / PER_MS));

		for (uint64_t k = 0; k < m; k++) {
			int64_t ts = c->ts[pos + k] + shift, p = floor_div(ts, g), wm;
			uint64_t key = c->buf[pos + k].key;

			sum[(p & 63) * NKEYS + key] += c->buf[pos + k].val;
			cnt[(p & 63) * NKEYS + key]++;
			if (p < pane_lo) {
				pane_lo = p;
				if (next_end == INT64_MIN || next_end > p + 1)
					next_end = p + 1; /* the first window holding the pane */
			}
			pane_hi = p > pane_hi ? p : pane_hi;
			max_ts = ts > max_ts ? ts : max_ts;
			if (++since_wm != WM_EVERY && done + k + 1 != count)
				continue;
			/* A watermark (the final one at the end: everything fires). */
			since_wm = 0;
			wm = done + k + 1 == count ? INT64_MAX : max_ts - BOUND_MS - 1;
			while (pane_lo <= pane_hi && next_end * g - 1 <= wm) {
				int64_t e = next_end;

				sliding_fire(b, e, np, g, pane_lo, pane_hi, &r);
				if (e - np >= pane_lo) { /* pane e - np is in no later window */
					memset(&sum[((e - np) & 63) * NKEYS], 0,
					       NKEYS * sizeof(*sum));
					memset(&cnt[((e - np) & 63) * NKEYS], 0,
					       NKEYS * sizeof(*cnt));
					pane_lo = e - np + 1;
				}
				next_end = e + 1;
			}
			if (pane_lo > pane_hi) {
				pane_lo = INT64_MAX, pane_hi = INT64_MIN;
				next_end = INT64_MIN;
			}
		}
		done += m;
	}
	return r;
}

/* ---------------------------------------------------------------- main */

static int replay_init(struct replay_conf *c, uint64_t len)
{
	struct bench_kv *buf = aligned_alloc(64, (size_t)len * sizeof(*buf));
	int64_t *ts = malloc((size_t)len * sizeof(*ts));

	if (buf == NULL || ts == NULL) {
		free(buf);
		free(ts);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < len; i++) {
		uint64_t h = bench_mix64(i ^ SEED);

		buf[i].key = ((h >> 32) * NKEYS) >> 32;
		buf[i].val = (int64_t)(h % 100);
		ts[i] = (int64_t)(i / PER_MS) - (int64_t)((h >> 8) % (DISORDER_MS + 1));
	}
	*c = (struct replay_conf){ .buf = buf, .ts = ts, .len = len };
	return 0;
}

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: bench_window [--count N] [--runs R] [--batch-size B] [--idle busy|sleep]\n"
	       "                    [--only tumbling|sliding] [--generic] [--quick] [--json PATH]\n"
	       "  Event-time windows per key (10k keys, 1000 records/ms, <= 4 ms disorder,\n"
	       "  watermarks every 8192 records) on 1 worker in replay mode, against a\n"
	       "  hand-written C loop: tumbling 1 s count, sliding 60 s / 1 s sum.\n"
	       "  Defaults: 20M (tumbling) and 60M (sliding) records per run, 5 interleaved runs,\n"
	       "  batch 512, idle sleep. --count N: N records for both. --quick: 2M records,\n"
	       "  1 run (a smoke test: results checked, no timing). --generic: the engine query\n"
	       "  with a key function and a custom aggregate (calls per element) instead of\n"
	       "  sl_key_by_field() and the built-in count / sum.\n");
}

struct qstats {
	bool skip;
	uint64_t count;
	double eng[MAX_RUNS], loop[MAX_RUNS], ratio[MAX_RUNS];
	double eng_med, loop_med, ratio_med;
	struct result res;
};

/* One round of query @q: loop and engine (order alternating by round), checked. */
static int round_of(struct bench *b, enum query q, struct qstats *st, unsigned k)
{
	for (unsigned j = 0; j < 2; j++) {
		bool engine = (j == 0) == (k % 2 == 1);
		struct result r = { 0, 0 };
		uint64_t t0 = bench_now_ns(), t1;
		int rc = 0;

		if (engine)
			rc = run_engine(b, q, &r);
		else
			r = q == Q_TUMBLING ? loop_tumbling(b, st->count)
					    : loop_sliding(b, st->count);
		t1 = bench_now_ns();
		if (rc < 0)
			return rc;
		if (k == 0 && j == 0)
			st->res = r;
		if (r.records != st->res.records || r.checksum != st->res.checksum ||
		    r.records == 0) {
			fprintf(stderr,
				"bench_window: %s: result mismatch: the %s gave %llu results, "
				"checksum %016llx; the %s %llu, %016llx\n",
				queries[q].name, engine ? "engine" : "loop",
				(unsigned long long)r.records, (unsigned long long)r.checksum,
				engine ? "loop" : "engine", (unsigned long long)st->res.records,
				(unsigned long long)st->res.checksum);
			return -EPROTO;
		}
		(engine ? st->eng : st->loop)[k] = (double)st->count * 1e9 / (double)(t1 - t0);
	}
	st->ratio[k] = st->eng[k] / st->loop[k];
	return 0;
}

static int write_json(const char *path, const struct bench *b, const struct qstats *st,
		      unsigned runs)
{
	FILE *f = bench_json_open("bench_window", path);

	if (f == NULL)
		return -EIO;
	fprintf(f,
		"{\"benchmark\":\"window\",\"mode\":\"replay\",\"workers\":1,\"batch_size\":%u,"
		"\"keys\":%u,\"records_per_ms\":%d,\"disorder_ms\":%d,\"out_of_orderness_ms\":%d,"
		"\"watermark_every\":%u,\"replay_elems\":%llu,\"elem_bytes\":%zu,\"runs\":%u,"
		"\"idle\":\"%s\",\"engine_api\":\"%s\",\"results\":[",
		b->batch, NKEYS, PER_MS, DISORDER_MS, BOUND_MS, WM_EVERY,
		(unsigned long long)b->replay.len, sizeof(struct bench_kv), runs, b->idle,
		b->generic ? "generic" : "field+builtin");
	for (unsigned q = 0, first = 1; q < NQUERIES; q++) {
		if (st[q].skip)
			continue;
		fprintf(
		    f,
		    "%s{\"name\":\"%s\",\"desc\":\"%s\",\"records\":%llu,\"window_results\":%llu,"
		    "\"median_engine_rec_per_s\":%.1f,\"median_loop_rec_per_s\":%.1f,"
		    "\"median_ratio_engine_vs_loop\":%.4f,\"runs_engine_rec_per_s\":",
		    first ? "" : ",", queries[q].name, queries[q].desc,
		    (unsigned long long)st[q].count, (unsigned long long)st[q].res.records,
		    st[q].eng_med, st[q].loop_med, st[q].ratio_med);
		bench_json_array(f, st[q].eng, runs, 1, ",");
		fprintf(f, ",\"runs_loop_rec_per_s\":");
		bench_json_array(f, st[q].loop, runs, 1, ",");
		fprintf(f, "}");
		first = 0;
	}
	fprintf(f, "]}\n");
	return bench_json_close(f, "bench_window", path);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "only", required_argument, NULL, 'o' },
		{ "generic", no_argument, NULL, 'g' },
		BENCH_OPTS_ENGINE,
		BENCH_OPTS_COMMON,
		{ NULL, 0, NULL, 0 },
	};
	struct bench_args a = { .prog = "bench_window",
				.usage = usage,
				.runs = 5,
				.quick_runs = 1,
				.batch = 512,
				.idle = "sleep" };
	struct bench b = { 0 };
	static struct qstats st[NQUERIES];
	uint64_t count = 0;
	unsigned runs;
	const char *only = NULL;
	struct sl_topo *topo = NULL;
	int pu[1], node[1], c, rc;
	char err[256];

	while ((c = bench_getopt(argc, argv, longopts, &a)) != -1) {
		switch (c) {
		case 'n':
			if (bench_parse_u64(optarg, 10000, 1ull << 40, &count) < 0)
				return bench_bad_value(a.prog, longopts, c, optarg);
			break;
		case 'o':
			if (strcmp(optarg, "tumbling") && strcmp(optarg, "sliding"))
				return bench_bad_value(a.prog, longopts, c, optarg);
			only = optarg;
			break;
		case 'g':
			b.generic = true;
			break;
		}
	}
	b.batch = a.batch;
	b.idle = a.idle;
	runs = a.runs;
	if (a.quick && count == 0)
		count = 2000000;
	for (unsigned q = 0; q < NQUERIES; q++) {
		st[q].count = count ? count : queries[q].count;
		st[q].skip = only != NULL && strcmp(only, queries[q].name) != 0;
	}

	rc = sl_topo_create(NULL, err, sizeof(err), &topo);
	if (rc < 0) {
		fprintf(stderr, "bench_window: topology: %s\n", err);
		return 1;
	}
	sl_numa_platform_init(&b.np, topo, SL_PLACE_PACK);
	/* The loops run on the PU the engine's one worker gets. */
	rc = b.np.platform.place(b.np.platform.ctx, 1, pu, node, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "bench_window: placement: %s\n", err);
		return 1;
	}
	rc = sl_numa_pin_thread(topo, pu[0]);
	if (rc < 0)
		fprintf(stderr, "bench_window: cannot pin the loops to PU %d (%s): unpinned\n",
			pu[0], sl_strerror(rc));
	b.tum_cnt = malloc(4 * NKEYS * sizeof(int64_t));
	b.sl_sum = malloc(64 * NKEYS * sizeof(int64_t));
	b.sl_cnt = malloc(64 * NKEYS * sizeof(int64_t));
	b.sl_win = malloc(NKEYS * sizeof(int64_t));
	if (b.tum_cnt == NULL || b.sl_sum == NULL || b.sl_cnt == NULL || b.sl_win == NULL ||
	    replay_init(&b.replay, 1000u * PER_MS) < 0) {
		fprintf(stderr, "bench_window: out of memory\n");
		return 1;
	}

	printf("window: 1 worker, replay (1M x 16 B buffer, lent by the source), %u keys, "
	       "%d records/ms, disorder <= %d ms,\n"
	       "watermarks every %u records (out-of-orderness %d ms), batch %u, idle %s, "
	       "median of %u interleaved runs, PU %d,\nengine query: %s\n",
	       NKEYS, PER_MS, DISORDER_MS, WM_EVERY, BOUND_MS, b.batch, b.idle, runs, pu[0],
	       b.generic ? "key function, custom aggregate (--generic)"
			 : "sl_key_by_field(), built-in count / sum");
	fflush(stdout);
	for (unsigned k = 0; k < runs; k++) {
		for (unsigned q = 0; q < NQUERIES; q++) {
			b.replay.count = st[q].count;
			if (!st[q].skip && round_of(&b, (enum query)q, &st[q], k) < 0)
				return 1;
		}
	}
	printf("\n%-34s %10s %12s %12s %10s\n", "query", "records", "engine M/s", "loop M/s",
	       "eng/loop");
	for (unsigned q = 0; q < NQUERIES; q++) {
		if (st[q].skip)
			continue;
		st[q].eng_med = bench_median_of(st[q].eng, runs);
		st[q].loop_med = bench_median_of(st[q].loop, runs);
		st[q].ratio_med = bench_median_of(st[q].ratio, runs);
		printf("%-34s %10llu %12.2f %12.2f %10.3f\n", queries[q].desc,
		       (unsigned long long)st[q].count, st[q].eng_med / 1e6, st[q].loop_med / 1e6,
		       st[q].ratio_med);
	}
	printf("\nM/s: source records per second of wall time, one core; eng/loop: median of "
	       "per-round ratios.\nResults checked: every run's window-result count and "
	       "checksum equal the loop's.\n");
	if (a.json && write_json(a.json, &b, st, runs) < 0)
		return 1;
	free(b.tum_cnt);
	free(b.sl_sum);
	free(b.sl_cnt);
	free(b.sl_win);
	free((void *)b.replay.buf);
	free((void *)b.replay.ts);
	sl_topo_destroy(topo);
	return 0;
}
