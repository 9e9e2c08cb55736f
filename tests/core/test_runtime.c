/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_runtime.c — the dataflow runtime end to end, in process.
 *
 * Jobs are built from small sources and sinks defined here: a counting
 * source producing element i = { i, i * 7 % 1000 } (ts = i), and a
 * collecting sink that records every element it receives. Expected
 * results are computed directly from those formulas with plain loops,
 * never by the engine. Each job runs at parallelism 1, 2 and 4 with
 * several batch sizes, through every exchange type; the output multiset
 * must not change.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sluice.h>

#include "collect_sink.h"
#include "sl_test.h"

/* ------------------------------------------------------ counting source */

struct src_conf {
	uint64_t count;
	int fail_at; /* -1: never; else poll fails once element index reaches it */
};

struct src_state {
	const struct src_conf *conf;
	const struct sl_subtask_info *info;
	uint64_t next, end;
};

static int src_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	const struct src_conf *c = arg;
	struct src_state *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	s->conf = c;
	s->info = info;
	s->next = c->count * info->index / info->parallelism;
	s->end = c->count * (info->index + 1) / info->parallelism;
	*state = s;
	return 0;
}

static int src_poll(void *state, struct sl_batch *out)
{
	struct src_state *s = state;
	uint32_t n = 0;

	while (n < out->cap && s->next < s->end) {
		struct rec *r = sl_batch_elem(out, n);

		if (s->conf->fail_at >= 0 && s->next == (uint64_t)s->conf->fail_at) {
			snprintf(s->info->errbuf, s->info->errlen, "injected failure at %llu",
				 (unsigned long long)s->next);
			return -EIO;
		}
		r->id = (int64_t)s->next;
		r->val = (int64_t)(s->next * 7 % 1000);
		out->ts[n] = (int64_t)s->next;
		n++;
		s->next++;
	}
	return (int)n | (s->next == s->end ? SL_SOURCE_END : 0);
}

static void src_close(void *state)
{
	free(state);
}

static const struct sl_source_ops src_ops = { .open = src_open,
					      .poll = src_poll,
					      .close = src_close };

/* ------------------------------------------------------ user functions */

static int keep_not_div3(const void *in, void *arg)
{
	return ((const struct rec *)in)->val % 3 != 0;
}

/* key = val % 10 (as 8 bytes) */
static void key_mod10(const void *elem, const struct sl_batch *src, struct sl_key *out)
{
	static _Thread_local int64_t k;

	k = ((const struct rec *)elem)->val % 10;
	out->ptr = &k;
	out->len = sizeof(k);
}

/* acc.id = the smallest id of the key (order-independent), acc.val = sum of vals */
static int sum_vals(void *acc, const void *in, void *arg)
{
	struct rec *a = acc;
	const struct rec *r = in;

	a->val += r->val;
	if (r->id < a->id)
		a->id = r->id;
	return 0;
}

static int dup_twice(const void *in, int64_t ts, const struct sl_batch *src,
		     struct sl_collector *out, void *arg)
{
	int rc = sl_emit(out, in, ts, src);

	return rc < 0 ? rc : sl_emit(out, in, ts, src);
}

/* ---------------------------------------------------------------- runs */

enum shape {
	SHAPE_MAP_FILTER,    /* source -> map -> filter -> sink (fused) */
	SHAPE_REBALANCE,     /* ... rebalance ... */
	SHAPE_RESCALE,	     /* source p -> rescale -> sink p/2 or 1 */
	SHAPE_BROADCAST,     /* source 1 -> broadcast -> sink p: p copies */
	SHAPE_KEYED_REDUCE,  /* source -> key_by -> reduce(final) -> sink */
	SHAPE_FLATMAP_UNION, /* source -> flat_map(x2) union source -> sink */
	SHAPE_UNCHAINED,     /* map with chaining disabled */
	SHAPE_KEYED_MAP,     /* source -> key_by -> map_batch -> map -> sink */
};

static char errbuf[512];
static bool g_reuse; /* run_shape(): with the object-reuse option */

/* x2 as a batch map (the object-reuse test runs it in place). */
static int times_two_batch(const struct sl_batch *in, struct sl_batch *out, void *arg)
{
	for (uint32_t i = 0; i < in->n; i++) {
		struct rec r = *(const struct rec *)sl_batch_elem(in, i);

		r.val *= 2;
		*(struct rec *)sl_batch_elem(out, i) = r;
		out->ts[i] = in->ts[i];
	}
	out->n = in->n;
	return 0;
}

static int run_shape(enum shape shape, unsigned p, unsigned batch, uint64_t count,
		     struct collected *out)
{
	static struct src_conf conf;
	struct sl_job *job;
	struct sl_stream *s;
	char buf[32];
	int rc;

	conf.count = count;
	conf.fail_at = -1;
	CU_ASSERT_FATAL(sl_job_create("test", &job) == 0);
	snprintf(buf, sizeof(buf), "%u", p);
	CU_ASSERT_FATAL(sl_job_set(job, "parallelism", buf, errbuf, sizeof(errbuf)) == 0);
	snprintf(buf, sizeof(buf), "%u", batch);
	CU_ASSERT_FATAL(sl_job_set(job, "batch-size", buf, errbuf, sizeof(errbuf)) == 0);
	CU_ASSERT_FATAL(sl_job_set(job, "ring-size", "4", errbuf, sizeof(errbuf)) == 0);
	CU_ASSERT_FATAL(sl_job_set(job, "object-reuse", g_reuse ? "true" : "false", errbuf,
				   sizeof(errbuf)) == 0);

	s = sl_source(job, "src", &src_ops, &conf, &rec_type);
	switch (shape) {
	case SHAPE_MAP_FILTER:
		s = sl_filter(sl_map(s, "x2", times_two, NULL, &rec_type), "not3", keep_not_div3,
			      NULL);
		break;
	case SHAPE_REBALANCE:
		s = sl_map(sl_rebalance(s), "x2", times_two, NULL, &rec_type);
		s = sl_set_parallelism(s, p == 1 ? 1 : p - 1);
		break;
	case SHAPE_RESCALE:
		s = sl_map(sl_rescale(s), "x2", times_two, NULL, &rec_type);
		s = sl_set_parallelism(s, p > 1 ? p / 2 : 1);
		break;
	case SHAPE_BROADCAST:
		s = sl_set_parallelism(s, 1);
		s = sl_map(sl_broadcast(s), "x2", times_two, NULL, &rec_type);
		break;
	case SHAPE_KEYED_REDUCE:
		s = sl_reduce(sl_key_by(s, key_mod10), "sum", sum_vals, NULL, SL_REDUCE_FINAL);
		break;
	case SHAPE_FLATMAP_UNION: {
		struct sl_stream *dup = sl_flat_map(s, "dup", dup_twice, NULL, &rec_type);
		struct sl_stream *other = sl_source(job, "src2", &src_ops, &conf, &rec_type);

		s = sl_union(dup, other);
		break;
	}
	case SHAPE_UNCHAINED:
		s = sl_disable_chaining(sl_map(s, "x2", times_two, NULL, &rec_type));
		break;
	case SHAPE_KEYED_MAP: /* x2 twice: the expected output is x4 */
		s = sl_map_batch(sl_key_by(s, key_mod10), "x2b", times_two_batch, NULL, &rec_type);
		s = sl_map(s, "x2", times_two, NULL, &rec_type);
		break;
	}
	sl_sink(s, "collect", &sink_ops, out);
	rc = sl_job_run(job, NULL, errbuf, sizeof(errbuf));
	if (rc < 0)
		printf("\n  run failed: %s\n", errbuf);
	sl_job_destroy(job);
	return rc;
}

/* Expected output of @shape for @count elements, computed without the engine. */
static size_t expected(enum shape shape, unsigned p, uint64_t count, struct rec **out)
{
	struct rec *e = calloc(count * 8 + 16, sizeof(*e));
	size_t n = 0;

	CU_ASSERT_FATAL(e != NULL);
	if (shape == SHAPE_KEYED_REDUCE) {
		int64_t sum[10] = { 0 }, first_id[10];
		bool seen[10] = { false };

		/* The accumulator ends with the smallest id of its key. */
		for (uint64_t i = 0; i < count; i++) {
			int64_t v = (int64_t)(i * 7 % 1000), k = v % 10;

			sum[k] += v;
			if (!seen[k]) {
				seen[k] = true;
				first_id[k] = (int64_t)i;
			}
		}
		for (int k = 0; k < 10; k++)
			if (seen[k])
				e[n++] = (struct rec){ first_id[k], sum[k] };
		*out = e;
		return n;
	}
	for (uint64_t i = 0; i < count; i++) {
		struct rec r = { (int64_t)i, (int64_t)(i * 7 % 1000) };
		struct rec d = { r.id, r.val * 2 };

		switch (shape) {
		case SHAPE_MAP_FILTER:
			if (d.val % 3 != 0)
				e[n++] = d;
			break;
		case SHAPE_BROADCAST:
			for (unsigned k = 0; k < p; k++)
				e[n++] = d;
			break;
		case SHAPE_FLATMAP_UNION:
			e[n++] = r;
			e[n++] = r;
			e[n++] = r;
			break;
		case SHAPE_KEYED_MAP:
			e[n++] = (struct rec){ r.id, r.val * 4 };
			break;
		default:
			e[n++] = d;
			break;
		}
	}
	*out = e;
	return n;
}

static bool g_quick; /* check_shape(): p 1 and 4 with batch 7 only */

static void check_shape(enum shape shape)
{
	static const unsigned ps[] = { 1, 2, 4 };
	static const unsigned batches[] = { 1, 7, 64, 512 };
	const uint64_t count = 20000;

	for (size_t pi = 0; pi < SL_ARRAY_SIZE(ps); pi++)
		for (size_t bi = 0; bi < SL_ARRAY_SIZE(batches); bi++) {
			if (g_quick && (ps[pi] == 2 || batches[bi] != 7))
				continue;
			struct collected got;
			struct rec *want;
			size_t nwant;

			/* batch 1 with 20000 records is slow under sanitizers: fewer runs */
			if (batches[bi] == 1 && ps[pi] != 2)
				continue;
			collected_init(&got);
			CU_ASSERT_EQUAL_FATAL(run_shape(shape, ps[pi], batches[bi], count, &got),
					      0);
			nwant = expected(shape, ps[pi], count, &want);
			qsort(got.recs, got.n, sizeof(struct rec), cmp_rec);
			qsort(want, nwant, sizeof(struct rec), cmp_rec);
			if (got.n != nwant || memcmp(got.recs, want, nwant * sizeof(*want)) != 0)
				printf("\n  shape %d p=%u batch=%u: got %zu records, want %zu\n",
				       (int)shape, ps[pi], batches[bi], got.n, nwant);
			CU_ASSERT_EQUAL(got.n, nwant);
			CU_ASSERT(got.n == nwant &&
				  memcmp(got.recs, want, nwant * sizeof(*want)) == 0);
			CU_ASSERT(got.finished >= 1);
			free(want);
			collected_fini(&got);
		}
}

static void test_fused_map_filter(void)
{
	check_shape(SHAPE_MAP_FILTER);
}

static void test_rebalance(void)
{
	check_shape(SHAPE_REBALANCE);
}

static void test_rescale(void)
{
	check_shape(SHAPE_RESCALE);
}

static void test_broadcast(void)
{
	check_shape(SHAPE_BROADCAST);
}

static void test_keyed_reduce(void)
{
	check_shape(SHAPE_KEYED_REDUCE);
}

static void test_flat_map_union(void)
{
	check_shape(SHAPE_FLATMAP_UNION);
}

static void test_unchained(void)
{
	check_shape(SHAPE_UNCHAINED);
}

/* Object reuse (maps in place) changes no output: every shape with a map. */
static void test_object_reuse(void)
{
	static const enum shape shapes[] = { SHAPE_MAP_FILTER, SHAPE_REBALANCE, SHAPE_BROADCAST,
					     SHAPE_UNCHAINED, SHAPE_KEYED_MAP };

	/* Without reuse: the other tests (SHAPE_KEYED_MAP: here, both ways). */
	check_shape(SHAPE_KEYED_MAP);
	g_reuse = true;
	g_quick = true; /* the full matrix runs without reuse above */
	for (size_t i = 0; i < SL_ARRAY_SIZE(shapes); i++)
		check_shape(shapes[i]);
	g_quick = false;
	g_reuse = false;
}

/*
 * The key-group rule of SEMANTICS.md, checked element by element: key k
 * must reach subtask (hash(k) % maxp) * p / maxp. The hash is written here
 * again from its description in core/hash.c (8-byte words, multiply and
 * rotate, murmur3's fmix64), not called.
 */
static uint64_t ref_rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static uint64_t ref_key_hash(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = len * 0x9e3779b97f4a7c15ull, w;

	for (; len >= 8; len -= 8, p += 8) {
		memcpy(&w, p, 8);
		h = ref_rotl(h ^ (w * 0x87c37b91114253d5ull), 31) * 0x4cf5ad432745937full;
	}
	w = 0;
	memcpy(&w, p, len);
	h ^= w * 0x87c37b91114253d5ull;
	h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdull;
	h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
}

static void key_id(const void *elem, const struct sl_batch *src, struct sl_key *out)
{
	out->ptr = &((const struct rec *)elem)->id;
	out->len = sizeof(int64_t);
}

/* Emits {id, where}: where = subtask | p << 16 | maxp << 32. */
static int where_am_i(const struct sl_subtask_info *self, const void *in, int64_t ts,
		      const struct sl_batch *src, struct sl_collector *out, void *arg)
{
	struct rec r = { ((const struct rec *)in)->id,
			 (int64_t)(self->index | (uint64_t)self->parallelism << 16 |
				   (uint64_t)self->max_parallelism << 32) };

	return sl_emit(out, &r, ts, src);
}

static void test_key_group_rule(void)
{
	static struct src_conf conf = { .count = 3000, .fail_at = -1 };
	static const struct {
		const char *p, *maxp;
		unsigned want_maxp;
	} cases[] = {
		{ "1", NULL, 128 }, { "2", NULL, 128 },	   { "3", NULL, 128 },
		{ "4", "7", 7 },    { "3", "1000", 1000 }, { "5", "5", 5 },
	};

	for (size_t c = 0; c < SL_ARRAY_SIZE(cases); c++) {
		unsigned p = (unsigned)atoi(cases[c].p), maxp = cases[c].want_maxp;
		struct collected got;
		struct sl_job *job;
		struct sl_stream *s;
		size_t right = 0;
		bool seen[8] = { false };

		collected_init(&got);
		CU_ASSERT_FATAL(sl_job_create("kg", &job) == 0);
		CU_ASSERT_FATAL(sl_job_set(job, "parallelism", cases[c].p, NULL, 0) == 0);
		if (cases[c].maxp)
			CU_ASSERT_FATAL(
			    sl_job_set(job, "max-parallelism", cases[c].maxp, NULL, 0) == 0);
		CU_ASSERT_FATAL(sl_job_set(job, "batch-size", "37", NULL, 0) == 0);
		s = sl_source(job, "src", &src_ops, &conf, &rec_type);
		s = sl_process(sl_key_by(s, key_id), "where", where_am_i, NULL, &rec_type);
		sl_sink(s, "collect", &sink_ops, &got);
		CU_ASSERT_EQUAL_FATAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
		CU_ASSERT_EQUAL(got.n, conf.count);
		for (size_t i = 0; i < got.n; i++) {
			int64_t id = got.recs[i].id;
			uint64_t kg = ref_key_hash(&id, sizeof(id)) % maxp;
			uint64_t want = kg * p / maxp | (uint64_t)p << 16 | (uint64_t)maxp << 32;

			right += (uint64_t)got.recs[i].val == want;
			seen[(uint64_t)got.recs[i].val & 7] = true;
		}
		CU_ASSERT_EQUAL(right, got.n);
		/* 3000 keys over p subtasks: every subtask got some (not all in one). */
		for (unsigned k = 0; k < p; k++)
			CU_ASSERT(seen[k]);
		sl_job_destroy(job);
		collected_fini(&got);
	}
}

static void test_source_failure_names_operator(void)
{
	static struct src_conf conf = { .count = 100000, .fail_at = 5000 };
	struct collected got;
	struct sl_job *job;
	int rc;

	collected_init(&got);
	CU_ASSERT_FATAL(sl_job_create("failing", &job) == 0);
	sl_job_set(job, "parallelism", "2", NULL, 0);
	sl_sink(sl_map(sl_source(job, "numbers", &src_ops, &conf, &rec_type), "x2", times_two, NULL,
		       &rec_type),
		"collect", &sink_ops, &got);
	rc = sl_job_run(job, NULL, errbuf, sizeof(errbuf));
	CU_ASSERT_EQUAL(rc, -EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "operator 'numbers' (subtask 0/2)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "injected failure at 5000"));
	sl_job_destroy(job);
	collected_fini(&got);
}

static void test_sink_failure_names_operator(void)
{
	static struct src_conf conf = { .count = 1000, .fail_at = -1 };
	struct collected got;
	struct sl_job *job;

	collected_init(&got);
	got.fail_writes = 1;
	CU_ASSERT_FATAL(sl_job_create("failing-sink", &job) == 0);
	sl_sink(sl_source(job, "numbers", &src_ops, &conf, &rec_type), "disk", &sink_ops, &got);
	CU_ASSERT_EQUAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), -ENOSPC);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "operator 'disk' (subtask 0/1)"));
	sl_job_destroy(job);
	collected_fini(&got);
}

/*
 * A fast source feeding a slow sink through an exchange between two
 * workers: the source must be held back, so the number of batches alive
 * at once stays under what the rings and pools can hold, whatever the
 * input size. Bound: every channel full (ring + one backlogged batch),
 * every pool class full of free batches, plus a few in hand.
 */
static void test_backpressure_bounds_memory(void)
{
	static struct src_conf conf = { .fail_at = -1 };
	const unsigned p = 2, ring = 4, classes = 2 /* data, events */;
	const uint64_t bound = (uint64_t)p * p * (ring + 1) + 2ull * classes * (2 * ring) + 8;
	static const uint64_t counts[] = { 50000, 400000 };

	for (size_t i = 0; i < SL_ARRAY_SIZE(counts); i++) {
		struct collected got;
		struct sl_job_stats stats;
		struct sl_job *job;
		struct sl_stream *s;

		collected_init(&got);
		got.slow = 50;
		conf.count = counts[i];
		CU_ASSERT_FATAL(sl_job_create("backpressure", &job) == 0);
		sl_job_set(job, "parallelism", "2", NULL, 0);
		sl_job_set(job, "batch-size", "64", NULL, 0);
		sl_job_set(job, "ring-size", "4", NULL, 0);
		s = sl_source(job, "fast", &src_ops, &conf, &rec_type);
		sl_sink(sl_rebalance(s), "slow", &sink_ops, &got);
		CU_ASSERT_EQUAL_FATAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
		sl_job_stats(job, &stats);
		printf("\n  %llu records: peak %llu live batches (bound %llu, unthrottled ~%llu)",
		       (unsigned long long)counts[i], (unsigned long long)stats.peak_batches,
		       (unsigned long long)bound, (unsigned long long)(counts[i] / 64));
		CU_ASSERT_EQUAL(got.n, counts[i]); /* nothing dropped on the way */
		CU_ASSERT(stats.peak_batches > 0);
		CU_ASSERT(stats.peak_batches <= bound);
		CU_ASSERT_EQUAL(stats.running, 0);
		sl_job_destroy(job);
		collected_fini(&got);
	}
}

/* Even ids to the main output, odd ids to side output 0 with val negated. */
static int split_even_odd(const struct sl_subtask_info *self, const void *in, int64_t ts,
			  const struct sl_batch *src, struct sl_collector *out, void *arg)
{
	struct rec r = *(const struct rec *)in;

	if (r.id % 2 == 0)
		return sl_emit(out, &r, ts, src);
	r.val = -r.val;
	return sl_emit_side(out, 0, &r, ts, src);
}

static void test_process_side_output(void)
{
	static struct src_conf conf = { .count = 5000, .fail_at = -1 };
	static const unsigned ps[] = { 1, 2, 4 };

	for (size_t pi = 0; pi < SL_ARRAY_SIZE(ps); pi++) {
		struct collected main_out, side_out;
		struct sl_job *job;
		struct sl_stream *s, *proc;
		char buf[8];
		size_t even = 0, odd = 0;

		collected_init(&main_out);
		collected_init(&side_out);
		CU_ASSERT_FATAL(sl_job_create("side", &job) == 0);
		snprintf(buf, sizeof(buf), "%u", ps[pi]);
		sl_job_set(job, "parallelism", buf, NULL, 0);
		s = sl_source(job, "src", &src_ops, &conf, &rec_type);
		/* start_new_chain: the process operator becomes a task of its own */
		proc = sl_start_new_chain(sl_process(s, "split", split_even_odd, NULL, &rec_type));
		sl_sink(proc, "evens", &sink_ops, &main_out);
		sl_sink(sl_side_output(proc, 0, &rec_type), "odds", &sink_ops, &side_out);
		CU_ASSERT_EQUAL_FATAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
		for (size_t i = 0; i < main_out.n; i++)
			even += main_out.recs[i].id % 2 == 0 &&
				main_out.recs[i].val == main_out.recs[i].id * 7 % 1000;
		for (size_t i = 0; i < side_out.n; i++)
			odd += side_out.recs[i].id % 2 == 1 &&
			       side_out.recs[i].val == -(side_out.recs[i].id * 7 % 1000);
		CU_ASSERT_EQUAL(main_out.n, 2500);
		CU_ASSERT_EQUAL(side_out.n, 2500);
		CU_ASSERT_EQUAL(even, 2500);
		CU_ASSERT_EQUAL(odd, 2500);
		sl_job_destroy(job);
		collected_fini(&main_out);
		collected_fini(&side_out);
	}
}

static void test_side_output_errors(void)
{
	static struct src_conf conf = { .count = 10, .fail_at = -1 };
	struct sl_job *job;
	struct sl_stream *s;

	/* side output of something that is not a process operator */
	CU_ASSERT_FATAL(sl_job_create("v", &job) == 0);
	s = sl_map(sl_source(job, "src", &src_ops, &conf, &rec_type), "m", times_two, NULL,
		   &rec_type);
	sl_sink(sl_side_output(s, 0, &rec_type), "k", &sink_ops, NULL);
	CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "'m', which is not a process operator"));
	sl_job_destroy(job);
}

static void test_validation_errors(void)
{
	static struct src_conf conf = { .count = 10, .fail_at = -1 };
	struct sl_job *job;
	struct sl_stream *s;

	/* no sink */
	CU_ASSERT_FATAL(sl_job_create("v", &job) == 0);
	sl_source(job, "src", &src_ops, &conf, &rec_type);
	CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "no sink"));
	sl_job_destroy(job);

	/* reduce without key_by */
	CU_ASSERT_FATAL(sl_job_create("v", &job) == 0);
	s = sl_source(job, "src", &src_ops, &conf, &rec_type);
	sl_sink(sl_reduce(s, "sum", sum_vals, NULL, SL_REDUCE_FINAL), "k", &sink_ops, NULL);
	CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "'sum' (reduce) needs a keyed stream"));
	sl_job_destroy(job);

	/* forward edge across parallelism change */
	CU_ASSERT_FATAL(sl_job_create("v", &job) == 0);
	s = sl_set_parallelism(sl_source(job, "src", &src_ops, &conf, &rec_type), 2);
	s = sl_set_parallelism(sl_map(sl_forward(s), "m", times_two, NULL, &rec_type), 3);
	sl_sink(s, "k", &sink_ops, NULL);
	CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "forward edge from 'src' (parallelism 2) to 'm'"));
	sl_job_destroy(job);

	/* union of different types */
	{
		struct big {
			int64_t a, b, c;
		};
		static const struct sl_type big_type = SL_TYPE(struct big);

		CU_ASSERT_FATAL(sl_job_create("v", &job) == 0);
		s = sl_source(job, "a", &src_ops, &conf, &rec_type);
		sl_sink(sl_union(s, sl_map(s, "widen", times_two, NULL, &big_type)), "k", &sink_ops,
			NULL);
		CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "element types differ"));
		sl_job_destroy(job);
	}

	/* NULL function, bad option, no source */
	CU_ASSERT_FATAL(sl_job_create("v", &job) == 0);
	s = sl_source(job, "src", &src_ops, &conf, &rec_type);
	sl_sink(sl_map(s, "nofn", NULL, NULL, &rec_type), "k", &sink_ops, NULL);
	CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "'nofn': the map function is NULL"));
	CU_ASSERT_EQUAL(sl_job_set(job, "ring-size", "3", errbuf, sizeof(errbuf)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "ring-size"));
	CU_ASSERT_EQUAL(sl_job_set(job, "bogus", "1", errbuf, sizeof(errbuf)), -ENOENT);
	CU_ASSERT_EQUAL(sl_job_set(job, "parallelism", "0", errbuf, sizeof(errbuf)), -EINVAL);
	sl_job_destroy(job);
	CU_ASSERT_FATAL(sl_job_create("v", &job) == 0);
	CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "no source"));
	sl_job_destroy(job);
	CU_ASSERT_EQUAL(sl_job_create("", &job), -EINVAL);
}

/* A count per window, for the validation cases below. */
static void cnt_add(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg)
{
	++*(int64_t *)acc;
}

static void cnt_merge(void *dst, const void *src, void *arg)
{
	*(int64_t *)dst += *(const int64_t *)src;
}

static int cnt_result(const struct sl_window *w, const struct sl_key *key, const void *acc,
		      struct sl_collector *out, void *arg)
{
	struct rec r = { w->start, *(const int64_t *)acc };

	return sl_emit(out, &r, w->end - 1, NULL);
}

/* Build src -> [watermarks] -> key_by -> window(spec, agg) -> sink; return validate()'s result. */
static int build_window(const struct sl_watermark_strategy *ws, bool keyed,
			const struct sl_window_spec *spec, const struct sl_aggregate *agg,
			int side_tag)
{
	static struct src_conf conf = { .count = 10, .fail_at = -1 };
	struct sl_job *job;
	struct sl_stream *s;
	int rc;

	CU_ASSERT_FATAL(sl_job_create("t", &job) == 0);
	s = sl_source(job, "src", &src_ops, &conf, &rec_type);
	if (ws != NULL)
		s = sl_assign_watermarks(s, ws);
	if (keyed)
		s = sl_key_by(s, key_mod10);
	s = sl_window_aggregate(s, "w", spec, agg, &rec_type);
	sl_sink(s, "k", &sink_ops, NULL);
	if (side_tag >= 0)
		sl_sink(sl_side_output(s, (unsigned)side_tag, &rec_type), "late", &sink_ops, NULL);
	errbuf[0] = '\0';
	rc = sl_job_validate(job, errbuf, sizeof(errbuf));
	sl_job_destroy(job);
	return rc;
}

/* Every way to get watermarks, windows, counters and options wrong says what and where. */
static void test_time_validation(void)
{
	static struct src_conf conf = { .count = 10, .fail_at = -1 };
	const struct sl_aggregate agg = {
		.acc_size = 8, .add = cnt_add, .merge = cnt_merge, .result = cnt_result
	};
	struct sl_aggregate no_merge = agg, no_result = agg;
	const struct sl_window_spec tumbling = { .kind = SL_WINDOW_TUMBLING, .size = 10 };
	const struct sl_watermark_strategy ws = { .out_of_orderness_ms = 5 };
	static const struct {
		struct sl_window_spec spec;
		const char *msg;
	} bad_specs[] = {
		{ { .kind = SL_WINDOW_TUMBLING, .size = 0 }, "a tumbling window needs a size > 0" },
		{ { .kind = SL_WINDOW_SLIDING, .size = 10 }, "needs a size and a slide > 0" },
		{ { .kind = SL_WINDOW_SESSION, .gap = -1 }, "a session window needs a gap > 0" },
		{ { .kind = SL_WINDOW_TUMBLING, .size = 5, .allowed_lateness = -1 },
		  "allowed lateness must be >= 0" },
		{ { .kind = (enum sl_window_kind)9, .size = 5 }, "unknown window kind" },
	};
	struct sl_watermark_strategy neg = { .out_of_orderness_ms = -1 };
	struct sl_job *job;
	struct sl_stream *s;
	uint64_t bad = 7, late = 7;
	char buf[16];

	no_merge.merge = NULL;
	no_result.result = NULL;
	/* The good shape validates; each bad one is refused with its reason. */
	CU_ASSERT_EQUAL(build_window(&ws, true, &tumbling, &agg, 0), 0);
	for (size_t i = 0; i < SL_ARRAY_SIZE(bad_specs); i++) {
		CU_ASSERT_EQUAL(build_window(&ws, true, &bad_specs[i].spec, &agg, -1), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "window 'w': "));
		CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, bad_specs[i].msg));
	}
	CU_ASSERT_EQUAL(build_window(&ws, false, &tumbling, &agg, -1), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "'w' (window) needs a keyed stream"));
	{
		const struct sl_window_spec session = { .kind = SL_WINDOW_SESSION, .gap = 3 };

		CU_ASSERT_EQUAL(build_window(&ws, true, &session, &no_merge, -1), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "the aggregate needs merge()"));
		CU_ASSERT_EQUAL(build_window(&ws, true, &tumbling, &no_merge, -1), 0);
	}
	CU_ASSERT_EQUAL(build_window(&ws, true, &tumbling, &no_result, -1), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "acc_size, add and result"));
	CU_ASSERT_EQUAL(build_window(&ws, true, &tumbling, &agg, 1), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "its only side output is 0"));
	CU_ASSERT_EQUAL(build_window(&neg, true, &tumbling, &agg, -1), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "'src': watermark out-of-orderness"));

	/* Watermarks belong to a source. */
	CU_ASSERT_FATAL(sl_job_create("t", &job) == 0);
	s = sl_map(sl_source(job, "src", &src_ops, &conf, &rec_type), "m", times_two, NULL,
		   &rec_type);
	sl_sink(sl_assign_watermarks(s, &ws), "k", &sink_ops, NULL);
	CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "'m' is not one"));
	sl_job_destroy(job);

	/* object-reuse takes true/false; counters name an operator; no stats before a run. */
	CU_ASSERT_FATAL(sl_job_create("t", &job) == 0);
	CU_ASSERT_EQUAL(sl_job_set(job, "object-reuse", "yes", errbuf, sizeof(errbuf)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "'object-reuse': expected true or false"));
	CU_ASSERT_EQUAL(sl_job_get(job, "object-reuse", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "false");
	CU_ASSERT_EQUAL(sl_job_set(job, "object-reuse", "true", NULL, 0), 0);
	CU_ASSERT_EQUAL(sl_job_get(job, "object-reuse", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "true");
	sl_sink(sl_source(job, "src", &src_ops, &conf, &rec_type), "k", &sink_ops, NULL);
	CU_ASSERT_EQUAL(sl_job_op_counters(job, "nope", &bad, &late), -ENOENT);
	CU_ASSERT_EQUAL(sl_job_op_counters(job, "src", &bad, &late), 0);
	CU_ASSERT(bad == 0 && late == 0);
	CU_ASSERT_EQUAL(sl_job_task_stats(job, NULL, 0), 0);
	CU_ASSERT_EQUAL(sl_job_task_stats(job, NULL, 1), -EINVAL);
	sl_job_destroy(job);
}

static void test_max_parallelism_rule(void)
{
	static const struct {
		const char *p;
		const char *want;
	} cases[] = {
		/* Flink: min(max(next_pow2(p + p/2), 128), 32768) */
		{ "1", "128" },
		{ "85", "128" },
		{ "86", "256" },
		{ "1000", "2048" },
	};
	char buf[32];

	for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
		struct sl_job *job;

		CU_ASSERT_FATAL(sl_job_create("mp", &job) == 0);
		CU_ASSERT_FATAL(sl_job_set(job, "parallelism", cases[i].p, NULL, 0) == 0);
		CU_ASSERT_EQUAL(sl_job_get(job, "max-parallelism", buf, sizeof(buf)), 0);
		CU_ASSERT_STRING_EQUAL(buf, cases[i].want);
		sl_job_destroy(job);
	}
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "fused map+filter, p 1/2/4, batches", test_fused_map_filter },
		{ "rebalance exchange", test_rebalance },
		{ "rescale exchange", test_rescale },
		{ "broadcast exchange", test_broadcast },
		{ "hash exchange + keyed reduce", test_keyed_reduce },
		{ "flat_map and union", test_flat_map_union },
		{ "chaining disabled", test_unchained },
		{ "object reuse: maps in place, same output", test_object_reuse },
		{ "key group -> subtask, element by element", test_key_group_rule },
		{ "source failure names operator", test_source_failure_names_operator },
		{ "sink failure names operator", test_sink_failure_names_operator },
		{ "backpressure bounds memory", test_backpressure_bounds_memory },
		{ "process with side output, new chain", test_process_side_output },
		{ "side output errors", test_side_output_errors },
		{ "validation errors", test_validation_errors },
		{ "watermark, window, counter and option errors", test_time_validation },
		{ "max-parallelism default rule", test_max_parallelism_rule },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("runtime", tests);
}
