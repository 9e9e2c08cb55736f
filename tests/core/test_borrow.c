/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_borrow.c — batches whose elements a source lends (sl_batch_borrow()).
 *
 * The lending source fills one page-aligned region with its next records
 * at each poll, makes it read-only (mprotect) and lends it. So an engine
 * write into borrowed elements crashes the test (SIGSEGV), and an engine
 * that keeps a borrowed batch past the source's next poll (an exchange
 * that did not copy) reads records that were overwritten since, and its
 * output differs from the reference. Outputs are compared against
 * references computed here from the record formula, not by the engine.
 * Also: sl_batch_borrow()'s argument errors, sl_batch_clear() ending a
 * borrowing, and a poll() that returns more elements than it lent.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include <sluice/sluice.h>

#include "collect_sink.h"
#include "sl_test.h"

#define NREC 20000

/* Record i of every lending source: its own formula, so references need no engine. */
static struct rec rec_at(uint64_t i)
{
	return (struct rec){ (int64_t)i, (int64_t)((i * 7919u) % 1000u) };
}

struct lend_conf {
	uint64_t count;
	bool overclaim; /* poll() returns twice what it lent: the job must fail */
};

struct lender {
	const struct lend_conf *c;
	struct rec *region; /* page-aligned, read-only between polls */
	size_t bytes;
	uint64_t next;
};

static int lend_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	struct lender *l = calloc(1, sizeof(*l));

	(void)info;
	if (l == NULL)
		return -ENOMEM;
	l->c = arg;
	*state = l;
	return 0;
}

static int lend_poll(void *state, struct sl_batch *out)
{
	struct lender *l = state;
	uint64_t m = out->cap;
	int rc;

	if (l->region == NULL) {
		size_t page = (size_t)sysconf(_SC_PAGESIZE);

		l->bytes = (out->cap * sizeof(struct rec) + page - 1) / page * page;
		l->region = mmap(NULL, l->bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (l->region == MAP_FAILED) {
			l->region = NULL;
			return -ENOMEM;
		}
	}
	if (l->c->count - l->next < m)
		m = l->c->count - l->next;
	/* The previous batch's records are overwritten: the engine must be done with them. */
	if (mprotect(l->region, l->bytes, PROT_READ | PROT_WRITE) < 0)
		return -errno;
	for (uint64_t k = 0; k < m; k++)
		l->region[k] = rec_at(l->next + k);
	if (mprotect(l->region, l->bytes, PROT_READ) < 0)
		return -errno;
	rc = sl_batch_borrow(out, l->region, (uint32_t)(l->c->overclaim ? m / 2 : m));
	if (rc < 0)
		return rc;
	for (uint64_t k = 0; k < m; k++)
		out->ts[k] = (int64_t)(l->next + k);
	l->next += m;
	return l->next == l->c->count ? (int)m | SL_SOURCE_END : (int)m;
}

static void lend_close(void *state)
{
	struct lender *l = state;

	if (l->region != NULL)
		munmap(l->region, l->bytes);
	free(l);
}

static const struct sl_source_ops lend_ops = { .open = lend_open,
					       .poll = lend_poll,
					       .close = lend_close };

enum shape {
	FILTER_MAP_IN_PLACE, /* filter drops a third, map x2 over the input (object reuse) */
	FILTER_KEEP_ALL,     /* a filter that drops nothing: borrowed up to the sink */
	REBALANCE_P2,	     /* an exchange to 2 subtasks on other workers, map x2 */
	FILTER_BATCH,	     /* a batch filter compacting in place: keeps even ids */
	KEYED_WINDOW,	     /* key_by(val field), 100 ms tumbling count, built-in */
	NSHAPES,
};

static int drop_thirds(const void *in, void *arg)
{
	(void)arg;
	return ((const struct rec *)in)->id % 3 != 0;
}

static int keep_all(const void *in, void *arg)
{
	(void)in, (void)arg;
	return 1;
}

static int keep_even_batch(struct sl_batch *b, void *arg)
{
	struct rec *r = (struct rec *)b->data;
	uint32_t j = 0;

	(void)arg;
	for (uint32_t i = 0; i < b->n; i++)
		if (r[i].id % 2 == 0) {
			r[j] = r[i];
			b->ts[j++] = b->ts[i];
		}
	b->n = j;
	return 0;
}

/* A window result as a rec: id = start * 16 + key (keys < 1000 < 16 * 100), val = the count. */
static int count_result(const struct sl_window *w, const struct sl_key *key, const void *acc,
			struct sl_collector *out, void *arg)
{
	uint64_t k;
	struct rec r;

	(void)arg;
	memcpy(&k, key->ptr, sizeof(k));
	r.id = w->start * 16 + (int64_t)k;
	r.val = *(const int64_t *)acc;
	return sl_emit(out, &r, w->end - 1, NULL);
}

static int run_shape(enum shape shape, const struct lend_conf *conf, struct collected *out,
		     char *errbuf, size_t errlen)
{
	struct sl_job *job;
	struct sl_stream *s;
	char err[256];
	int rc = sl_job_create("borrow", &job);

	if (rc < 0)
		return rc;
	if (sl_job_set(job, "batch-size", "64", err, sizeof(err)) < 0 ||
	    sl_job_set(job, "object-reuse", "true", err, sizeof(err)) < 0 ||
	    sl_job_set(job, "workers", shape == REBALANCE_P2 ? "3" : "1", err, sizeof(err)) < 0) {
		sl_job_destroy(job);
		return -EINVAL;
	}
	s = sl_set_parallelism(sl_source(job, "lend", &lend_ops, (void *)conf, &rec_type), 1);
	switch (shape) {
	case FILTER_MAP_IN_PLACE:
		s = sl_filter(s, "thirds", drop_thirds, NULL);
		s = sl_map(s, "x2", times_two, NULL, &rec_type);
		break;
	case FILTER_KEEP_ALL:
		s = sl_filter(s, "all", keep_all, NULL);
		break;
	case REBALANCE_P2:
		s = sl_set_parallelism(sl_map(sl_rebalance(s), "x2", times_two, NULL, &rec_type),
				       2);
		break;
	case FILTER_BATCH:
		s = sl_filter_batch(s, "even", keep_even_batch, NULL);
		break;
	case KEYED_WINDOW: {
		struct sl_watermark_strategy ws = { .out_of_orderness_ms = 0, .every = 64 };
		struct sl_window_spec spec = { .kind = SL_WINDOW_TUMBLING, .size = 100 };
		struct sl_aggregate agg = sl_agg_count(count_result, NULL);

		s = sl_key_by_field(sl_assign_watermarks(s, &ws), offsetof(struct rec, val),
				    sizeof(int64_t));
		s = sl_window_aggregate(s, "count", &spec, &agg, &rec_type);
		break;
	}
	default:
		break;
	}
	sl_sink(s, "collect", &sink_ops, out);
	rc = sl_job_run(job, NULL, errbuf, errlen);
	sl_job_destroy(job);
	return rc;
}

/* The output of @shape over records 0..count-1, from rec_at() alone. */
static size_t reference(enum shape shape, uint64_t count, struct rec *ref)
{
	size_t n = 0;

	if (shape == KEYED_WINDOW) {
		/* ts = i: window w holds records 100w..100w+99; the key is val, < 1000. */
		for (uint64_t w = 0; w * 100 < count; w++) {
			int64_t c[1000] = { 0 };

			for (uint64_t i = w * 100; i < w * 100 + 100 && i < count; i++)
				c[rec_at(i).val]++;
			for (int64_t k = 0; k < 1000; k++)
				if (c[k] > 0)
					ref[n++] =
					    (struct rec){ (int64_t)(w * 100) * 16 + k, c[k] };
		}
		qsort(ref, n, sizeof(*ref), cmp_rec);
		return n;
	}
	for (uint64_t i = 0; i < count; i++) {
		struct rec r = rec_at(i);

		if ((shape == FILTER_MAP_IN_PLACE && i % 3 == 0) ||
		    (shape == FILTER_BATCH && i % 2))
			continue;
		if (shape == FILTER_MAP_IN_PLACE || shape == REBALANCE_P2)
			r.val *= 2;
		ref[n++] = r;
	}
	return n;
}

static void test_shapes(void)
{
	static const char *names[NSHAPES] = { "filter+map in place", "filter keeping all",
					      "rebalance p2", "batch filter", "keyed window" };
	struct lend_conf conf = { .count = NREC };
	struct rec *ref = malloc(NREC * sizeof(*ref));

	CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
	for (unsigned sh = 0; sh < NSHAPES; sh++) {
		struct collected out;
		char errbuf[512] = "";
		size_t n = reference((enum shape)sh, NREC, ref);

		collected_init(&out);
		CU_ASSERT_EQUAL(run_shape((enum shape)sh, &conf, &out, errbuf, sizeof(errbuf)), 0);
		qsort(out.recs, out.n, sizeof(*out.recs), cmp_rec);
		CU_ASSERT_EQUAL(out.n, n);
		if (out.n == n)
			CU_ASSERT_EQUAL(memcmp(out.recs, ref, n * sizeof(*ref)), 0);
		if (out.n != n || memcmp(out.recs, ref, n * sizeof(*ref)) != 0)
			printf("\n  %s: %zu records, want %zu (%s)\n", names[sh], out.n, n, errbuf);
		collected_fini(&out);
	}
	free(ref);
}

static void test_overclaim_fails(void)
{
	struct lend_conf conf = { .count = NREC, .overclaim = true };
	struct collected out;
	char errbuf[512] = "";

	collected_init(&out);
	CU_ASSERT_EQUAL(run_shape(FILTER_KEEP_ALL, &conf, &out, errbuf, sizeof(errbuf)),
			-EOVERFLOW);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "borrowed"));
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "lend")); /* the operator is named */
	CU_ASSERT_EQUAL(out.n, 0);
	collected_fini(&out);
}

static void test_borrow_errors(void)
{
	static const struct rec recs[4] = { { 1, 2 }, { 3, 4 }, { 5, 6 }, { 7, 8 } };
	struct sl_batch *b;
	uint8_t *own;

	CU_ASSERT_EQUAL_FATAL(sl_batch_create(NULL, 4, sizeof(struct rec), 4096, &b), 0);
	own = b->data;
	CU_ASSERT_PTR_EQUAL(b->data_own, own);
	CU_ASSERT_EQUAL(sl_batch_borrow(NULL, recs, 1), -EINVAL);
	CU_ASSERT_EQUAL(sl_batch_borrow(b, NULL, 1), -EINVAL);
	CU_ASSERT_EQUAL(sl_batch_borrow(b, recs, 5), -EINVAL); /* past cap */
	CU_ASSERT_PTR_EQUAL(b->data, own);
	CU_ASSERT_EQUAL(b->flags & SL_BATCH_F_BORROWED, 0);
	CU_ASSERT_EQUAL(sl_batch_borrow(b, recs, 4), 0);
	CU_ASSERT_PTR_EQUAL(b->data, (const void *)recs);
	CU_ASSERT_EQUAL(b->n, 4);
	CU_ASSERT(b->flags & SL_BATCH_F_BORROWED);
	CU_ASSERT_EQUAL(sl_batch_borrow(b, recs, 1), -EINVAL); /* not empty */
	sl_batch_clear(b);
	CU_ASSERT_PTR_EQUAL(b->data, own); /* the borrowing ended */
	CU_ASSERT_EQUAL(b->flags & SL_BATCH_F_BORROWED, 0);
	CU_ASSERT_EQUAL(sl_batch_borrow(b, NULL, 0), 0); /* nothing lent: allowed */
	sl_batch_destroy(b);
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "borrow argument errors, clear ends it", test_borrow_errors },
		{ "read-only lent records through filters, maps, exchanges, windows", test_shapes },
		{ "poll returning more than it lent fails the job", test_overclaim_fails },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("borrow", tests);
}
