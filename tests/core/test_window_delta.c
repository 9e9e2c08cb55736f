/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_window_delta.c — the window operator's specialised loop (a field
 * key of 8 bytes, sl_key_by_field(), and a built-in aggregate) folds an
 * element of a key's cached pane into the key's table slot, and merges
 * that into the pane's accumulator later (core/window.c, struct kslot).
 * The merge is skipped when the slot owes nothing, which is decided by
 * comparing with the fold's identity (0, INT64_MAX for min, INT64_MIN for
 * max): values equal to an identity, and sums that come back to it, must
 * still give the right results.
 *
 * Input: 1,500 keys, about 8 elements per key and pane, so that most
 * elements take the hot path; values drawn from the extremes of int64
 * and small values of both signs (sums wrap and return to 0). Disorder
 * stays below the watermarks' bound, so nothing is late and every window
 * fires once. The expected results are computed here, by brute force:
 * every element into every window holding it, then folded per (key,
 * window). Tumbling, and sliding (three panes per window); count, sum,
 * min and max; at parallelism 1 and 2.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sluice.h>

#include "sl_test.h"
#include "window_tape.h"

#define NREC	 60000
#define NKEYS	 1500
#define DISORDER 20
#define BOUND	 25 /* out-of-orderness of the watermarks: above DISORDER */

struct ev {
	int64_t val;
	int64_t key; /* not at offset 0 */
};
static const struct sl_type ev_type = SL_TYPE(struct ev);

struct wout {
	int64_t start, end, key, value;
};
static const struct sl_type wout_type = SL_TYPE(struct wout);

static struct ev evs[NREC];
static int64_t tss[NREC];

enum kind { K_COUNT, K_SUM, K_MIN, K_MAX, NKINDS };
static const char *const kind_names[NKINDS] = { "count", "sum", "min", "max" };

static const int64_t values[] = { INT64_MIN, INT64_MIN + 1, -3,	      -1, 0, 0, 1,
				  3,	     INT64_MAX - 1, INT64_MAX };

/* 100 elements per ms of event time, up to DISORDER ms early; keys uniform. */
static void gen_input(uint64_t seed)
{
	for (int i = 0; i < NREC; i++) {
		uint64_t h = mix64(seed * 7919u + (uint64_t)i);

		tss[i] = i / 100 - (int64_t)((h >> 8) % (DISORDER + 1));
		evs[i].key = (int64_t)((h >> 20) % NKEYS) * 0x10001 - 77;
		evs[i].val = values[(h >> 40) % SL_ARRAY_SIZE(values)];
	}
}

static int w_result(const struct sl_window *w, const struct sl_key *key, const void *acc,
		    struct sl_collector *out, void *arg)
{
	struct wout o = { w->start, w->end, 0, 0 };

	(void)arg;
	memcpy(&o.key, key->ptr, sizeof(o.key));
	memcpy(&o.value, acc, sizeof(o.value));
	return sl_emit(out, &o, w->end - 1, NULL);
}

/* The built-in aggregate of kind @k over the value field. */
static struct sl_aggregate agg_of(enum kind k)
{
	static struct sl_aggregate (*const of_field[NKINDS])(uint32_t, sl_agg_result_fn, void *) = {
		[K_SUM] = sl_agg_sum_i64, [K_MIN] = sl_agg_min_i64, [K_MAX] = sl_agg_max_i64
	};

	return k == K_COUNT ? sl_agg_count(w_result, NULL)
			    : of_field[k](offsetof(struct ev, val), w_result, NULL);
}

static int run_engine(const struct sl_window_spec *spec, enum kind k, unsigned par, struct bag *out)
{
	struct sl_watermark_strategy ws = { .out_of_orderness_ms = BOUND, .every = 64 };
	struct sl_aggregate agg = agg_of(k);
	struct tape tape = { evs, tss, sizeof(struct ev), NREC, 700 };
	char err[256], p[8];
	struct sl_job *job;
	struct sl_stream *s;
	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_init(&out->lock, NULL);
	out->size = sizeof(struct wout);
	rc = sl_job_create("delta", &job);
	if (rc < 0)
		return rc;
	snprintf(p, sizeof(p), "%u", par);
	sl_job_set(job, "parallelism", p, NULL, 0);
	s = sl_source(job, "src", &tape_ops, &tape, &ev_type);
	s = sl_assign_watermarks(sl_set_parallelism(s, 1), &ws);
	s = sl_key_by_field(s, offsetof(struct ev, key), sizeof(int64_t));
	s = sl_window_aggregate(s, "w", spec, &agg, &wout_type);
	sl_sink(s, "out", &bag_ops, out);
	rc = sl_job_run(job, NULL, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "test_window_delta: %s\n", err);
	sl_job_destroy(job);
	return rc;
}

static int cmp_wout(const void *a, const void *b)
{
	const struct wout *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return x->value < y->value ? -1 : x->value > y->value;
}

static int cmp_slot(const void *a, const void *b)
{
	const struct wout *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * The expected results: (key, start, value) per element and window
 * holding it (windows start on multiples of the slide), sorted, folded.
 * Return how many, in *@res (malloc'ed).
 */
static size_t reference(const struct sl_window_spec *spec, enum kind k, struct wout **res)
{
	int64_t slide = spec->kind == SL_WINDOW_TUMBLING ? spec->size : spec->slide;
	size_t per = (size_t)(spec->size / slide), n = 0, m = 0;
	struct wout *x = malloc(NREC * per * sizeof(*x));

	CU_ASSERT_PTR_NOT_NULL_FATAL(x);
	for (int i = 0; i < NREC; i++) {
		int64_t last = tss[i] - (((tss[i] % slide) + slide) % slide);

		for (int64_t s = last; s > tss[i] - spec->size; s -= slide)
			x[n++] = (struct wout){ s, s + spec->size, evs[i].key, evs[i].val };
	}
	qsort(x, n, sizeof(*x), cmp_slot);
	for (size_t i = 0; i < n;) {
		struct wout o = x[i];
		uint64_t sum = 0, cnt = 0;
		int64_t mn = INT64_MAX, mx = INT64_MIN;

		for (; i < n && x[i].key == o.key && x[i].start == o.start; i++) {
			cnt++;
			sum += (uint64_t)x[i].value; /* wraps */
			mn = x[i].value < mn ? x[i].value : mn;
			mx = x[i].value > mx ? x[i].value : mx;
		}
		o.value = k == K_COUNT ? (int64_t)cnt
			  : k == K_SUM ? (int64_t)sum
			  : k == K_MIN ? mn
				       : mx;
		x[m++] = o;
	}
	qsort(x, m, sizeof(*x), cmp_wout);
	*res = x;
	return m;
}

static void test_delta_equals_reference(void)
{
	static const struct sl_window_spec specs[] = {
		{ .kind = SL_WINDOW_TUMBLING, .size = 100 },
		{ .kind = SL_WINDOW_SLIDING, .size = 150, .slide = 50 },
	};
	size_t zero_sums = 0;

	gen_input(3);
	for (size_t s = 0; s < SL_ARRAY_SIZE(specs); s++) {
		for (int k = 0; k < NKINDS; k++) {
			struct wout *ref;
			size_t nref = reference(&specs[s], (enum kind)k, &ref);

			for (size_t i = 0; k == K_SUM && i < nref; i++)
				zero_sums += ref[i].value == 0;
			for (unsigned par = 1; par <= 2; par++) {
				struct bag out;
				bool ok;

				CU_ASSERT_FATAL(run_engine(&specs[s], (enum kind)k, par, &out) ==
						0);
				qsort(out.data, out.n, sizeof(struct wout), cmp_wout);
				ok = out.n == nref &&
				     memcmp(out.data, ref, nref * sizeof(*ref)) == 0;
				if (!ok)
					fprintf(stderr,
						"window %zu %s parallelism %u: %zu results, "
						"expected %zu\n",
						s, kind_names[k], par, out.n, nref);
				CU_ASSERT(ok);
				free(out.data);
			}
			free(ref);
		}
	}
	/* Sums that return to the identity must occur, else the test is weak. */
	CU_ASSERT(zero_sums > 20);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "slot deltas: built-in folds = brute force", test_delta_equals_reference },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("window_delta", tests);
}
