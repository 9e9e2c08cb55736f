/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_stop.c — graceful stop: sl_job_stop() on a running job whose source
 * never ends.
 *
 * The job runs on a second thread; the main thread polls sl_job_stats()
 * until the sink (or, for a final reduce, the source) has seen at least K
 * records, then calls sl_job_stop() and joins. sl_job_run() must return
 * 0, and nothing may be lost or invented between the source and the sink:
 * the source is the unbounded generator wrapped by a counting source that
 * records how many elements each subtask emitted, so the exact set the
 * sink must have received is known — subtask s of p emits s, s+p, s+2p,
 * ... (sl_gen_ops), a prefix of that sequence per subtask — and is
 * computed here with plain loops, never by the engine.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sluice/sluice.h>

#include "collect_sink.h"
#include "sl_test.h"

#define MAX_SUBTASKS 8

static void fill(uint64_t index, uint64_t seed, void *elem, int64_t *ts, void *arg)
{
	struct rec *r = elem;

	r->id = (int64_t)index;
	r->val = (int64_t)(index * 7 % 1000);
	*ts = (int64_t)index;
}

/* ------------------------------------------------ counting source */

struct counting {
	struct sl_gen_conf gen;
	_Atomic uint64_t emitted[MAX_SUBTASKS]; /* by subtask index */
	unsigned parallelism;			/* of the source, set by the test */
};

struct counting_inst {
	struct counting *c;
	unsigned index;
	void *inner;
};

static int cnt_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	struct counting *c = arg;
	struct counting_inst *s;
	int rc;

	if (info->index >= MAX_SUBTASKS)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->c = c;
	s->index = info->index;
	rc = sl_gen_ops.open(&c->gen, info, &s->inner);
	if (rc < 0) {
		free(s);
		return rc;
	}
	*state = s;
	return 0;
}

static int cnt_poll(void *state, struct sl_batch *out)
{
	struct counting_inst *s = state;
	int rc = sl_gen_ops.poll(s->inner, out);

	if (rc > 0)
		/* Relaxed: read by the test after sl_job_run() joined the workers. */
		atomic_fetch_add_explicit(&s->c->emitted[s->index], (uint64_t)(rc & ~SL_SOURCE_END),
					  memory_order_relaxed);
	return rc;
}

static void cnt_close(void *state)
{
	struct counting_inst *s = state;

	sl_gen_ops.close(s->inner);
	free(s);
}

static const struct sl_source_ops counting_ops = { .open = cnt_open,
						   .poll = cnt_poll,
						   .close = cnt_close };

/* ------------------------------------------------ collecting sink */

/* ------------------------------------------------ user functions */

static void key_mod10(const void *elem, const struct sl_batch *src, struct sl_key *out)
{
	static _Thread_local int64_t k;

	k = ((const struct rec *)elem)->val % 10;
	out->ptr = &k;
	out->len = sizeof(k);
}

/* acc.id = the smallest id of the key, acc.val = the sum of its vals */
static int sum_vals(void *acc, const void *in, void *arg)
{
	struct rec *a = acc;
	const struct rec *r = in;

	a->val += r->val;
	if (r->id < a->id)
		a->id = r->id;
	return 0;
}

/* ------------------------------------------------ the runs */

enum shape {
	SHAPE_FUSED,	 /* source -> map -> sink, one task */
	SHAPE_REBALANCE, /* source p -> rebalance -> map p-1 -> sink */
	SHAPE_REDUCE,	 /* source -> key_by -> reduce (final) -> sink */
};

struct run {
	struct sl_job *job;
	int rc;
	char err[512];
};

static void *run_main(void *arg)
{
	struct run *r = arg;

	r->rc = sl_job_run(r->job, NULL, r->err, sizeof(r->err));
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };

	nanosleep(&ts, NULL);
}

/* Build @shape over @src into @out. */
static struct sl_job *build(enum shape shape, unsigned p, unsigned batch, struct counting *src,
			    struct collected *out)
{
	struct sl_job *job;
	struct sl_stream *s;
	char buf[32];

	CU_ASSERT_FATAL(sl_job_create("stop", &job) == 0);
	snprintf(buf, sizeof(buf), "%u", p);
	CU_ASSERT_FATAL(sl_job_set(job, "parallelism", buf, NULL, 0) == 0);
	snprintf(buf, sizeof(buf), "%u", batch);
	CU_ASSERT_FATAL(sl_job_set(job, "batch-size", buf, NULL, 0) == 0);
	CU_ASSERT_FATAL(sl_job_set(job, "ring-size", "4", NULL, 0) == 0);
	s = sl_source(job, "gen", &counting_ops, src, &rec_type);
	switch (shape) {
	case SHAPE_FUSED:
		s = sl_map(s, "x2", times_two, NULL, &rec_type);
		break;
	case SHAPE_REBALANCE:
		s = sl_map(sl_rebalance(s), "x2", times_two, NULL, &rec_type);
		s = sl_set_parallelism(s, p > 1 ? p - 1 : 1);
		break;
	case SHAPE_REDUCE:
		s = sl_reduce(sl_key_by(s, key_mod10), "sum", sum_vals, NULL, SL_REDUCE_FINAL);
		break;
	}
	sl_sink(s, "collect", &sink_ops, out);
	return job;
}

/* What the sink must hold, from how many elements each source subtask emitted. */
static size_t expected(enum shape shape, const struct counting *src, struct rec **out)
{
	unsigned p = src->parallelism;
	uint64_t total = 0;
	struct rec *e;
	size_t n = 0;

	for (unsigned s = 0; s < p; s++)
		total += atomic_load(&src->emitted[s]);
	e = calloc(total + 16, sizeof(*e));
	CU_ASSERT_FATAL(e != NULL);
	if (shape == SHAPE_REDUCE) {
		int64_t sum[10] = { 0 }, first[10];
		bool seen[10] = { false };

		for (unsigned s = 0; s < p; s++)
			for (uint64_t k = 0; k < atomic_load(&src->emitted[s]); k++) {
				uint64_t i = s + k * p;
				int64_t v = (int64_t)(i * 7 % 1000), key = v % 10;

				sum[key] += v;
				if (!seen[key] || (int64_t)i < first[key])
					first[key] = (int64_t)i;
				seen[key] = true;
			}
		for (int key = 0; key < 10; key++)
			if (seen[key])
				e[n++] = (struct rec){ first[key], sum[key] };
	} else {
		for (unsigned s = 0; s < p; s++)
			for (uint64_t k = 0; k < atomic_load(&src->emitted[s]); k++) {
				uint64_t i = s + k * p;

				e[n++] = (struct rec){ (int64_t)i, (int64_t)(i * 7 % 1000) * 2 };
			}
	}
	*out = e;
	return n;
}

/*
 * Run @shape until the sink (the source, for a final reduce) has seen @k
 * records, stop it, and check the output against what the source emitted.
 */
static void stop_after(enum shape shape, unsigned p, unsigned batch, uint64_t k)
{
	struct counting src;
	struct collected got;
	struct run r = { 0 };
	struct sl_job_stats st;
	pthread_t t;
	struct rec *want;
	size_t nwant;
	uint64_t seen = 0;

	memset(&src, 0, sizeof(src));
	src.gen = (struct sl_gen_conf){ .count = 0, .type = &rec_type, .fill = fill };
	src.parallelism = p;
	collected_init(&got);
	r.job = build(shape, p, batch, &src, &got);
	CU_ASSERT_FATAL(pthread_create(&t, NULL, run_main, &r) == 0);
	/* Wait for a condition, not for a time: the source never ends by itself. */
	while (seen < k) {
		sl_job_stats(r.job, &st);
		seen = shape == SHAPE_REDUCE ? st.source_records : st.sink_records;
		if (seen < k)
			sleep_ms(1);
	}
	sl_job_stop(r.job);
	pthread_join(t, NULL);
	if (r.rc != 0)
		printf("\n  run failed: %s\n", r.err);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(got.finished >= 1);

	nwant = expected(shape, &src, &want);
	qsort(got.recs, got.n, sizeof(*got.recs), cmp_rec);
	qsort(want, nwant, sizeof(*want), cmp_rec);
	if (got.n != nwant || memcmp(got.recs, want, nwant * sizeof(*want)) != 0)
		printf("\n  shape %d p=%u batch=%u: sink has %zu records, source emitted %zu\n",
		       (int)shape, p, batch, got.n, nwant);
	CU_ASSERT_EQUAL(got.n, nwant);
	CU_ASSERT(got.n == nwant && memcmp(got.recs, want, nwant * sizeof(*want)) == 0);
	if (shape != SHAPE_REDUCE)
		CU_ASSERT(got.n >= k);
	free(want);
	collected_fini(&got);
	sl_job_destroy(r.job);
}

static void check_shape(enum shape shape)
{
	static const unsigned ps[] = { 1, 2, 4 };
	static const unsigned batches[] = { 1, 7, 512 };

	for (size_t pi = 0; pi < SL_ARRAY_SIZE(ps); pi++)
		for (size_t bi = 0; bi < SL_ARRAY_SIZE(batches); bi++)
			stop_after(shape, ps[pi], batches[bi], batches[bi] == 1 ? 2000 : 20000);
}

static void test_stop_fused(void)
{
	check_shape(SHAPE_FUSED);
}

static void test_stop_rebalance(void)
{
	check_shape(SHAPE_REBALANCE);
}

static void test_stop_reduce(void)
{
	check_shape(SHAPE_REDUCE);
}

/* Stopped before it runs: the sources end at once, the sinks still finish. */
static void test_stop_before_run(void)
{
	struct counting src;
	struct collected got;
	struct sl_job *job;
	char err[512];

	memset(&src, 0, sizeof(src));
	src.gen = (struct sl_gen_conf){ .count = 0, .type = &rec_type, .fill = fill };
	collected_init(&got);
	job = build(SHAPE_REBALANCE, 2, 64, &src, &got);
	sl_job_stop(job);
	CU_ASSERT_EQUAL(sl_job_run(job, NULL, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(got.n, 0);
	CU_ASSERT_EQUAL(atomic_load(&src.emitted[0]) + atomic_load(&src.emitted[1]), 0);
	CU_ASSERT(got.finished >= 1);
	sl_job_stop(NULL); /* accepted, does nothing */
	collected_fini(&got);
	sl_job_destroy(job);
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "stop a fused pipeline, p 1/2/4, batches", test_stop_fused },
		{ "stop across a rebalance exchange", test_stop_rebalance },
		{ "stop before a final keyed reduce", test_stop_reduce },
		{ "stop before the run", test_stop_before_run },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("stop", tests);
}
