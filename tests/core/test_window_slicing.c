/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_window_slicing.c — stream slicing of sliding windows (core/window.c).
 *
 * The same sliding-window aggregate runs twice on the same seeded input
 * (out of order, with lateness, watermarks every N records from one
 * source subtask, so the results are deterministic): with merge() and
 * SL_AGG_SLICEABLE, on the sliced path (pane accumulators combined when a
 * window fires), and with merge() but without the flag, on the per-window
 * path (one accumulator per key and window). Both outputs (window results and
 * late records, as multisets) must equal each other and a brute-force
 * reference computed here without the engine: every window of an element
 * found by scanning the grid, one accumulator per (key, window) in a flat
 * array, the trigger and lateness rules of SEMANTICS.md "Windows" applied
 * literally at each watermark. Shapes cover slides that do not divide the
 * size, gcd 1, slide = size, slide > size (elements in no window), an
 * offset, negative timestamps, and tumbling windows; the sliced path also
 * runs at window parallelism 2.
 *
 * The grid arithmetic of the sliced path without divide instructions
 * (struct sli_grid, sli_window.h) is also checked on its own, against
 * C's / and % (sli_grid_mod() and floor division), over the ends of
 * int64 time and periods from 1 to INT64_MAX.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sluice.h>

#include "sl_test.h"
#include "sli_window.h"
#include "window_tape.h"

#define NREC  4000
#define NKEYS 9

struct ev {
	int64_t key, val;
};
static const struct sl_type ev_type = SL_TYPE(struct ev);

/* A window result; also the reference's. */
struct wout {
	int64_t start, end, key, count, sum, hash;
};
static const struct sl_type wout_type = SL_TYPE(struct wout);

struct acc {
	int64_t count, sum, hash;
};

static struct ev evs[NREC];
static int64_t tss[NREC];

/* Base time from -3000 rising 0..4 per record; ts up to @disorder below it. */
static void gen_input(uint64_t seed, int64_t disorder)
{
	int64_t base = -3000;

	for (int i = 0; i < NREC; i++) {
		uint64_t h = mix64(seed * 1000003u + (uint64_t)i);

		base += (int64_t)(h % 5);
		tss[i] = base - (int64_t)((h >> 8) % (uint64_t)(disorder + 1));
		evs[i].key = (int64_t)((h >> 20) % NKEYS);
		evs[i].val = (int64_t)((h >> 32) % 2001) - 1000;
	}
}

/* ------------------------------------------------------------ engine */

static struct tape tape = { evs, tss, sizeof(struct ev), NREC, 37 };

static void ev_key(const void *elem, const struct sl_batch *src, struct sl_key *out)
{
	(void)src;
	out->ptr = &((const struct ev *)elem)->key;
	out->len = sizeof(int64_t);
}

static int64_t val_hash(int64_t val, int64_t ts)
{
	return (int64_t)mix64((uint64_t)val * 31 + (uint64_t)ts);
}

static void a_create(void *acc, void *arg)
{
	(void)arg;
	*(struct acc *)acc = (struct acc){ 0, 0, 0 };
}

static void a_add(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg)
{
	struct acc *a = acc;
	const struct ev *e = elem;

	(void)src, (void)arg;
	a->count++;
	a->sum += e->val;
	a->hash = (int64_t)((uint64_t)a->hash + (uint64_t)val_hash(e->val, ts));
}

static void a_merge(void *dst, const void *src, void *arg)
{
	struct acc *a = dst;
	const struct acc *b = src;

	(void)arg;
	a->count += b->count;
	a->sum += b->sum;
	a->hash = (int64_t)((uint64_t)a->hash + (uint64_t)b->hash);
}

static int a_result(const struct sl_window *w, const struct sl_key *key, const void *acc,
		    struct sl_collector *out, void *arg)
{
	const struct acc *a = acc;
	struct wout o = { w->start, w->end, 0, a->count, a->sum, a->hash };

	(void)arg;
	memcpy(&o.key, key->ptr, sizeof(o.key));
	return sl_emit(out, &o, w->end - 1, NULL);
}

struct outputs {
	struct bag out, late;
};

static void outputs_fini(struct outputs *o)
{
	free(o->out.data);
	free(o->late.data);
}

/* Run the job; @sliceable (SL_AGG_SLICEABLE) selects the path. Return 0 or -errno. */
static int run_engine(const struct sl_window_spec *spec, int64_t d, uint64_t every, bool sliceable,
		      unsigned par, struct outputs *o)
{
	struct sl_watermark_strategy ws = { .out_of_orderness_ms = d, .every = every };
	struct sl_aggregate agg = { .acc_size = sizeof(struct acc),
				    .create = a_create,
				    .add = a_add,
				    .merge = a_merge,
				    .result = a_result,
				    .flags = sliceable ? SL_AGG_SLICEABLE : 0 };
	char err[256], p[8];
	struct sl_job *job;
	struct sl_stream *s;
	int rc;

	memset(o, 0, sizeof(*o));
	pthread_mutex_init(&o->out.lock, NULL);
	pthread_mutex_init(&o->late.lock, NULL);
	o->out.size = sizeof(struct wout);
	o->late.size = sizeof(struct ev);
	rc = sl_job_create("slicing", &job);
	if (rc < 0)
		return rc;
	snprintf(p, sizeof(p), "%u", par);
	sl_job_set(job, "parallelism", p, NULL, 0);
	s = sl_source(job, "src", &tape_ops, &tape, &ev_type);
	s = sl_assign_watermarks(sl_set_parallelism(s, 1), &ws);
	s = sl_window_aggregate(sl_key_by(s, ev_key), "w", spec, &agg, &wout_type);
	sl_sink(s, "out", &bag_ops, &o->out);
	sl_sink(sl_side_output(s, 0, &ev_type), "late", &bag_ops, &o->late);
	rc = sl_job_run(job, NULL, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "test_window_slicing: %s\n", err);
	sl_job_destroy(job);
	return rc;
}

/* --------------------------------------------------------- reference */

struct rwin {
	int64_t key, start, end;
	struct acc a;
	bool pending; /* fire timer set */
	bool live;
};

struct ref {
	const struct sl_window_spec *s;
	int64_t wm;
	struct rwin *w;
	size_t nw, capw;
	struct wout *out;
	size_t nout, capout;
	struct ev *late;
	size_t nlate, caplate;
	bool oom;
};

static void *push(void *arr, size_t *n, size_t *cap, size_t size)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		void *na = realloc(arr, ncap * size);

		if (na == NULL)
			return NULL;
		arr = na;
		*cap = ncap;
	}
	return arr;
}

static void ref_emit(struct ref *r, const struct rwin *x)
{
	struct wout *o = push(r->out, &r->nout, &r->capout, sizeof(*o));

	if (o == NULL) {
		r->oom = true;
		return;
	}
	r->out = o;
	r->out[r->nout++] =
	    (struct wout){ x->start, x->end, x->key, x->a.count, x->a.sum, x->a.hash };
}

static struct rwin *ref_window(struct ref *r, int64_t key, int64_t start, int64_t end)
{
	struct rwin *w;

	for (size_t i = 0; i < r->nw; i++)
		if (r->w[i].live && r->w[i].key == key && r->w[i].start == start)
			return &r->w[i];
	w = push(r->w, &r->nw, &r->capw, sizeof(*w));
	if (w == NULL)
		return NULL;
	r->w = w;
	r->w[r->nw] = (struct rwin){ key, start, end, { 0, 0, 0 }, false, true };
	return &r->w[r->nw++];
}

static void ref_element(struct ref *r, const struct ev *e, int64_t ts)
{
	const struct sl_window_spec *s = r->s;
	int64_t slide = s->kind == SL_WINDOW_TUMBLING ? s->size : s->slide;
	int64_t lat = s->allowed_lateness;
	bool skipped = true;
	/* Every grid start k * slide + offset in a generous range around ts, checked directly. */
	int64_t k0 = (ts - s->size - s->offset) / slide - 2, k1 = (ts - s->offset) / slide + 2;

	for (int64_t k = k0; k <= k1; k++) {
		int64_t start = s->offset + k * slide, end = start + s->size;
		struct rwin *w;

		if (!(start <= ts && ts < end))
			continue;
		if (end - 1 + lat <= r->wm)
			continue; /* late window */
		skipped = false;
		w = ref_window(r, e->key, start, end);
		if (w == NULL) {
			r->oom = true;
			return;
		}
		w->a.count++;
		w->a.sum += e->val;
		w->a.hash = (int64_t)((uint64_t)w->a.hash + (uint64_t)val_hash(e->val, ts));
		if (end - 1 <= r->wm)
			ref_emit(r, w); /* late firing */
		else
			w->pending = true;
	}
	if (skipped && ts + lat <= r->wm) {
		struct ev *l = push(r->late, &r->nlate, &r->caplate, sizeof(*l));

		if (l == NULL) {
			r->oom = true;
			return;
		}
		r->late = l;
		r->late[r->nlate++] = *e;
	}
}

/* Fire, then clean: the order of timers of different windows does not change the multiset. */
static void ref_watermark(struct ref *r, int64_t wm)
{
	if (wm <= r->wm)
		return;
	r->wm = wm;
	for (size_t i = 0; i < r->nw; i++) {
		struct rwin *w = &r->w[i];

		if (!w->live)
			continue;
		if (w->pending && w->end - 1 <= wm) {
			ref_emit(r, w);
			w->pending = false;
		}
		if (w->end - 1 + r->s->allowed_lateness <= wm)
			w->live = false;
	}
}

static void run_ref(const struct sl_window_spec *spec, int64_t d, uint64_t every, struct ref *r)
{
	int64_t max_ts = INT64_MIN;

	memset(r, 0, sizeof(*r));
	r->s = spec;
	r->wm = INT64_MIN;
	for (int i = 0; i < NREC; i++) {
		ref_element(r, &evs[i], tss[i]);
		if (tss[i] > max_ts)
			max_ts = tss[i];
		if ((uint64_t)(i + 1) % every == 0)
			ref_watermark(r, max_ts - d - 1);
		/* Drop dead windows now and then: the linear search stays short. */
		if (i % 256 == 0) {
			size_t j = 0;

			for (size_t k = 0; k < r->nw; k++)
				if (r->w[k].live)
					r->w[j++] = r->w[k];
			r->nw = j;
		}
	}
	ref_watermark(r, INT64_MAX);
}

/* -------------------------------------------------------------- tests */

static int cmp_bytes_wout(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct wout));
}

static int cmp_bytes_ev(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct ev));
}

static bool same_multiset(void *a, size_t na, void *b, size_t nb, size_t size,
			  int (*cmp)(const void *, const void *))
{
	if (na != nb)
		return false;
	if (na == 0)
		return true; /* the arrays may be NULL */
	qsort(a, na, size, cmp);
	qsort(b, nb, size, cmp);
	return memcmp(a, b, na * size) == 0;
}

struct shape {
	enum sl_window_kind kind;
	int64_t size, slide, offset, lateness;
};

static const struct shape shapes[] = {
	{ SL_WINDOW_SLIDING, 100, 30, 0, 0 },	/* slide does not divide size: panes of 10 */
	{ SL_WINDOW_SLIDING, 100, 30, 7, 45 },	/* the same with an offset and lateness */
	{ SL_WINDOW_SLIDING, 7, 3, 1, 5 },	/* gcd 1 */
	{ SL_WINDOW_SLIDING, 90, 250, 0, 20 },	/* gaps: some elements are in no window */
	{ SL_WINDOW_SLIDING, 60, 60, -13, 0 },	/* slide = size */
	{ SL_WINDOW_SLIDING, 600, 50, 0, 130 }, /* 12 panes per window */
	{ SL_WINDOW_SLIDING, 40, 20, 0, 300 },	/* lateness over many windows */
	{ SL_WINDOW_TUMBLING, 100, 0, 3, 25 },	/* one pane per window */
	{ SL_WINDOW_TUMBLING, 1000, 0, 0, 0 },
};

static void test_sliced_equals_per_window_and_reference(void)
{
	static const struct {
		int64_t disorder, d;
		uint64_t every;
	} wms[] = { { 60, 10, 1 }, { 90, 25, 4 }, { 30, 40, 7 } };
	size_t total_late = 0, total_refires = 0;

	for (size_t i = 0; i < SL_ARRAY_SIZE(shapes); i++) {
		for (size_t j = 0; j < SL_ARRAY_SIZE(wms); j++) {
			const struct shape *sh = &shapes[i];
			struct sl_window_spec spec = { .kind = sh->kind,
						       .size = sh->size,
						       .slide = sh->slide,
						       .offset = sh->offset,
						       .allowed_lateness = sh->lateness };
			struct outputs sliced, sliced2, per;
			struct ref r;
			bool ok;

			gen_input(i * 10 + j + 1, wms[j].disorder);
			run_ref(&spec, wms[j].d, wms[j].every, &r);
			CU_ASSERT_FATAL(!r.oom);
			CU_ASSERT_FATAL(
			    run_engine(&spec, wms[j].d, wms[j].every, true, 1, &sliced) == 0);
			CU_ASSERT_FATAL(
			    run_engine(&spec, wms[j].d, wms[j].every, true, 2, &sliced2) == 0);
			CU_ASSERT_FATAL(run_engine(&spec, wms[j].d, wms[j].every, false, 1, &per) ==
					0);
			ok = same_multiset(sliced.out.data, sliced.out.n, r.out, r.nout,
					   sizeof(struct wout), cmp_bytes_wout) &&
			     same_multiset(sliced.late.data, sliced.late.n, r.late, r.nlate,
					   sizeof(struct ev), cmp_bytes_ev);
			if (!ok)
				fprintf(stderr,
					"shape %zu wm %zu: sliced %zu results %zu late, reference "
					"%zu results %zu late\n",
					i, j, sliced.out.n, sliced.late.n, r.nout, r.nlate);
			CU_ASSERT(ok);
			CU_ASSERT(same_multiset(sliced2.out.data, sliced2.out.n, r.out, r.nout,
						sizeof(struct wout), cmp_bytes_wout));
			CU_ASSERT(same_multiset(sliced2.late.data, sliced2.late.n, r.late, r.nlate,
						sizeof(struct ev), cmp_bytes_ev));
			/* Tumbling takes the pane path without the flag too; sliding does not. */
			CU_ASSERT(same_multiset(per.out.data, per.out.n, sliced.out.data,
						sliced.out.n, sizeof(struct wout), cmp_bytes_wout));
			CU_ASSERT(same_multiset(per.late.data, per.late.n, sliced.late.data,
						sliced.late.n, sizeof(struct ev), cmp_bytes_ev));
			/* Late firings: a window emitted more than once (sorted by the compare). */
			for (size_t k = 1; k < r.nout; k++)
				total_refires += r.out[k].start == r.out[k - 1].start &&
						 r.out[k].key == r.out[k - 1].key;
			total_late += r.nlate;
			outputs_fini(&sliced);
			outputs_fini(&sliced2);
			outputs_fini(&per);
			free(r.w);
			free(r.out);
			free(r.late);
		}
	}
	/* The inputs must exercise late records and late firings, else the test is weak. */
	CU_ASSERT(total_late > 100);
	CU_ASSERT(total_refires > 100);
}

/*
 * sli_grid_modc() = sli_grid_mod() (which uses %), sli_grid_udiv() = /
 * and %, and sli_grid_index() steps by exactly 1 from one period to the
 * next (what the key rings need), for edge and random values.
 */
static void test_grid_arithmetic(void)
{
	static const int64_t ms[] = { 1,
				      2,
				      3,
				      7,
				      1000,
				      1024,
				      60000,
				      86400000,
				      (1ll << 32) + 1,
				      (1ll << 62) - 1,
				      1ll << 62,
				      INT64_MAX - 1,
				      INT64_MAX };
	static const int64_t offs[] = { 0, 1, -1, 999, -3500, INT64_MAX, INT64_MIN };
	int64_t edge[] = { 0, 1, -1, INT64_MIN, INT64_MIN + 1, INT64_MAX, INT64_MAX - 1 };
	uint64_t bad = 0;

	for (size_t mi = 0; mi < sizeof(ms) / sizeof(ms[0]); mi++) {
		for (size_t oi = 0; oi < sizeof(offs) / sizeof(offs[0]); oi++) {
			int64_t m = ms[mi], off = offs[oi];
			struct sli_grid g;

			sli_grid_init(&g, m, off);
			for (int i = 0; i < 20000; i++) {
				uint64_t h = mix64((uint64_t)i * 7919u + mi * 131u + oi);
				int64_t ts = i < 7 ? edge[i] : (int64_t)h;
				uint64_t u = i < 7 ? (uint64_t)edge[i] : mix64(h), rem;

				if (i % 3 == 1)
					ts = (int64_t)(h % 2000000) - 1000000; /* near 0 */
				bad += sli_grid_modc(&g, ts) != sli_grid_mod(ts, off, m);
				bad += sli_grid_udiv(&g, u, &rem) != u / (uint64_t)m ||
				       rem != u % (uint64_t)m;
				/* The index: consecutive periods, consecutive indices. */
				if (ts <= INT64_MAX - m)
					bad += sli_grid_index(&g, ts + m) !=
					       sli_grid_index(&g, ts) + 1;
			}
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "sliced = per-window = brute force",
		  test_sliced_equals_per_window_and_reference },
		{ "grid arithmetic = C division", test_grid_arithmetic },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("window_slicing", tests);
}
