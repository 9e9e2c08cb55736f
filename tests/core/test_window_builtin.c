/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_window_builtin.c — field keys (sl_key_by_field()) and built-in
 * aggregates (sl_agg_count(), sl_agg_sum_i64(), sl_agg_min_i64(),
 * sl_agg_max_i64()) of the window operator (core/window.c).
 *
 * The same windowed count / sum / min / max runs on the same seeded input
 * (out of order, with lateness, watermarks every N records from one
 * source subtask, so results are deterministic) four ways: key function
 * and custom aggregate (the general path, callbacks per element), field
 * key and built-in aggregate (the specialised loop, for 8-byte keys), and
 * the two mixed forms. Every output (window results and late records, as
 * multisets) must equal a brute-force reference computed here without the
 * engine: every window of an element found by scanning the grid, one
 * value per (key, window), SEMANTICS.md's trigger and lateness rules
 * applied literally at each watermark. Sums wrap: some values are near
 * +-2^62. Keys of 8 bytes (the specialised loop) and of 4 bytes (inline
 * key, general loop); tumbling and sliding shapes with offsets, lateness
 * and negative timestamps; parallelism 1 and 2. Sessions (not sliced)
 * compare the built-in against the custom aggregate. Then the errors.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sluice.h>

#include "sl_test.h"
#include "window_tape.h"

#define NREC  3000
#define NHOT  24000 /* records of gen_hot() */
#define NKEYS 13

struct ev {
	int64_t ts_copy; /* not the key: the key field is not at offset 0 */
	int64_t key;
	int64_t val;
	uint32_t k32;
	uint32_t pad;
};
static const struct sl_type ev_type = SL_TYPE(struct ev);

/* A window result; also the reference's. */
struct wout {
	int64_t start, end, key, value;
};
static const struct sl_type wout_type = SL_TYPE(struct wout);

static struct ev evs[NHOT];
static int64_t tss[NHOT];
static uint32_t nrec = NREC;   /* records of the input */
static uint64_t nkeys = NKEYS; /* keys of gen_input() */

/* Base time from -2000 rising 0..4 per record; ts up to @disorder below it. */
static void gen_input(uint64_t seed, int64_t disorder)
{
	int64_t base = -2000;

	nrec = NREC;
	for (int i = 0; i < NREC; i++) {
		uint64_t h = mix64(seed * 1000003u + (uint64_t)i);
		int64_t key = (int64_t)((h >> 20) % nkeys) * 0x100000001ll - 5;

		base += (int64_t)(h % 5);
		tss[i] = base - (int64_t)((h >> 8) % (uint64_t)(disorder + 1));
		evs[i] = (struct ev){ .ts_copy = tss[i], .key = key, .k32 = (uint32_t)key };
		evs[i].val = (int64_t)((h >> 32) % 2001) - 1000;
		if ((h >> 40) % 97 == 0) /* sums wrap around */
			evs[i].val = (h >> 50) % 2 ? INT64_MAX / 2 + 3 : INT64_MIN / 2 - 7;
	}
}

/*
 * Input for the operator's hot pane (core/window.c, struct kslot): NHOT
 * records, 20 per ms of event time, so that runs of elements fall in one
 * pane and the hot path takes most of them; the key count grows over the
 * input (16 at first, about 1,000 at the end: the key table grows while
 * slots are armed, and keys stop coming, so some are armed only in an
 * older hot pane). Most records are at most 3 ms early; one in 16 is up
 * to @far ms early (it lands in an older pane after the hot pane moved
 * on, or is late, or fires a window again), and one in 3,000 is 30 ms
 * ahead (a newer pane, alone: the hot pane stays; the watermark jumps and
 * the records after it are late for a while).
 */
static void gen_hot(uint64_t seed, int64_t far)
{
	nrec = NHOT;
	for (int i = 0; i < NHOT; i++) {
		uint64_t h = mix64(seed * 1000003u + (uint64_t)i);
		uint64_t keys = 16 + (uint64_t)i / 24;
		int64_t key = (int64_t)((h >> 20) % keys) * 0x100000001ll - 5;

		tss[i] = i / 20 - 700 - (int64_t)((h >> 8) % 4);
		if ((h >> 12) % 16 == 0)
			tss[i] -= (int64_t)((h >> 16) % (uint64_t)(far + 1));
		else if ((h >> 12) % 3000 == 1)
			tss[i] += 30;
		evs[i] = (struct ev){ .ts_copy = tss[i], .key = key, .k32 = (uint32_t)key };
		evs[i].val = (int64_t)((h >> 32) % 2001) - 1000;
		if ((h >> 40) % 97 == 0)
			evs[i].val = (h >> 50) % 2 ? INT64_MAX / 2 + 3 : INT64_MIN / 2 - 7;
	}
}

/* ------------------------------------------------------------ engine */

static struct tape tape = { evs, tss, sizeof(struct ev), NREC, 300 };

static void key64(const void *elem, const struct sl_batch *src, struct sl_key *out)
{
	(void)src;
	out->ptr = &((const struct ev *)elem)->key;
	out->len = sizeof(int64_t);
}

/*
 * The 8-byte key through storage the function reuses at every call, as a
 * key computed from the element (not a field of it) would be: the engine
 * must not read a key after the next call (sl_key_fn).
 */
static void key64_scratch(const void *elem, const struct sl_batch *src, struct sl_key *out)
{
	static _Thread_local int64_t k;

	(void)src;
	k = ((const struct ev *)elem)->key;
	out->ptr = &k;
	out->len = sizeof(k);
}

static void key32(const void *elem, const struct sl_batch *src, struct sl_key *out)
{
	(void)src;
	out->ptr = &((const struct ev *)elem)->k32;
	out->len = sizeof(uint32_t);
}

/* The custom aggregates: the same arithmetic on the same int64_t accumulator. */
static void c_zero(void *acc, void *arg)
{
	(void)arg;
	*(int64_t *)acc = 0;
}

static void c_big(void *acc, void *arg)
{
	(void)arg;
	*(int64_t *)acc = INT64_MAX;
}

static void c_small(void *acc, void *arg)
{
	(void)arg;
	*(int64_t *)acc = INT64_MIN;
}

static int64_t wadd(int64_t a, int64_t b)
{
	return (int64_t)((uint64_t)a + (uint64_t)b);
}

static void c_count(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg)
{
	(void)elem, (void)ts, (void)src, (void)arg;
	*(int64_t *)acc = wadd(*(int64_t *)acc, 1);
}

static void c_sum(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg)
{
	(void)ts, (void)src, (void)arg;
	*(int64_t *)acc = wadd(*(int64_t *)acc, ((const struct ev *)elem)->val);
}

static void c_min(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg)
{
	int64_t v = ((const struct ev *)elem)->val;

	(void)ts, (void)src, (void)arg;
	if (v < *(int64_t *)acc)
		*(int64_t *)acc = v;
}

static void c_max(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg)
{
	int64_t v = ((const struct ev *)elem)->val;

	(void)ts, (void)src, (void)arg;
	if (v > *(int64_t *)acc)
		*(int64_t *)acc = v;
}

static void m_sum(void *dst, const void *src, void *arg)
{
	(void)arg;
	*(int64_t *)dst = wadd(*(int64_t *)dst, *(const int64_t *)src);
}

static void m_min(void *dst, const void *src, void *arg)
{
	(void)arg;
	if (*(const int64_t *)src < *(int64_t *)dst)
		*(int64_t *)dst = *(const int64_t *)src;
}

static void m_max(void *dst, const void *src, void *arg)
{
	(void)arg;
	if (*(const int64_t *)src > *(int64_t *)dst)
		*(int64_t *)dst = *(const int64_t *)src;
}

/* The key (8 or 4 bytes, sign-extended from 4) and the value. */
static int w_result(const struct sl_window *w, const struct sl_key *key, const void *acc,
		    struct sl_collector *out, void *arg)
{
	struct wout o = { w->start, w->end, 0, *(const int64_t *)acc };
	int32_t k32;

	(void)arg;
	if (key->len == 4) {
		memcpy(&k32, key->ptr, 4);
		o.key = k32;
	} else {
		memcpy(&o.key, key->ptr, sizeof(o.key));
	}
	return sl_emit(out, &o, w->end - 1, NULL);
}

enum kind { K_COUNT, K_SUM, K_MIN, K_MAX, NKINDS };
static const char *const kind_names[NKINDS] = { "count", "sum", "min", "max" };

static struct sl_aggregate custom_agg(enum kind k)
{
	static void (*const create[NKINDS])(void *, void *) = { c_zero, c_zero, c_big, c_small };
	static void (*const add[NKINDS])(void *, const void *, int64_t, const struct sl_batch *,
					 void *) = { c_count, c_sum, c_min, c_max };
	static void (*const merge[NKINDS])(void *, const void *, void *) = { m_sum, m_sum, m_min,
									     m_max };

	return (struct sl_aggregate){ .acc_size = sizeof(int64_t),
				      .create = create[k],
				      .add = add[k],
				      .merge = merge[k],
				      .result = w_result,
				      .flags = SL_AGG_SLICEABLE };
}

static struct sl_aggregate builtin_agg(enum kind k)
{
	uint32_t off = offsetof(struct ev, val);

	switch (k) {
	case K_COUNT:
		return sl_agg_count(w_result, NULL);
	case K_SUM:
		return sl_agg_sum_i64(off, w_result, NULL);
	case K_MIN:
		return sl_agg_min_i64(off, w_result, NULL);
	default:
		return sl_agg_max_i64(off, w_result, NULL);
	}
}

struct outputs {
	struct bag out, late;
};

static void outputs_fini(struct outputs *o)
{
	free(o->out.data);
	free(o->late.data);
}

/* How a job keys and aggregates. */
struct form {
	bool field;   /* sl_key_by_field(), else a key function */
	bool builtin; /* sl_agg_*(), else the custom aggregate */
	bool k32;     /* the 4-byte key, else the 8-byte one */
	bool scratch; /* key64_scratch(): a key function reusing its storage */
};

static int run_engine(const struct sl_window_spec *spec, int64_t d, uint64_t every, enum kind k,
		      struct form f, unsigned par, struct outputs *o)
{
	struct sl_watermark_strategy ws = { .out_of_orderness_ms = d, .every = every };
	struct sl_aggregate agg = f.builtin ? builtin_agg(k) : custom_agg(k);
	char err[256], p[8];
	struct sl_job *job;
	struct sl_stream *s;
	int rc;

	memset(o, 0, sizeof(*o));
	tape.n = nrec;
	pthread_mutex_init(&o->out.lock, NULL);
	pthread_mutex_init(&o->late.lock, NULL);
	o->out.size = sizeof(struct wout);
	o->late.size = sizeof(struct ev);
	rc = sl_job_create("builtin", &job);
	if (rc < 0)
		return rc;
	snprintf(p, sizeof(p), "%u", par);
	sl_job_set(job, "parallelism", p, NULL, 0);
	s = sl_source(job, "src", &tape_ops, &tape, &ev_type);
	s = sl_assign_watermarks(sl_set_parallelism(s, 1), &ws);
	if (f.field)
		s = f.k32 ? sl_key_by_field(s, offsetof(struct ev, k32), 4)
			  : sl_key_by_field(s, offsetof(struct ev, key), 8);
	else
		s = sl_key_by(s, f.k32 ? key32 : f.scratch ? key64_scratch : key64);
	s = sl_window_aggregate(s, "w", spec, &agg, &wout_type);
	sl_sink(s, "out", &bag_ops, &o->out);
	sl_sink(sl_side_output(s, 0, &ev_type), "late", &bag_ops, &o->late);
	rc = sl_job_run(job, NULL, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "test_window_builtin: %s\n", err);
	sl_job_destroy(job);
	return rc;
}

/* --------------------------------------------------------- reference */

struct rwin {
	int64_t key, start, end, value;
	bool pending; /* fire timer set */
	bool live;
};

struct ref {
	const struct sl_window_spec *s;
	enum kind k;
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
	r->out[r->nout++] = (struct wout){ x->start, x->end, x->key, x->value };
}

static struct rwin *ref_window(struct ref *r, int64_t key, int64_t start, int64_t end)
{
	static const int64_t init[NKINDS] = { 0, 0, INT64_MAX, INT64_MIN };
	struct rwin *w;

	for (size_t i = 0; i < r->nw; i++)
		if (r->w[i].live && r->w[i].key == key && r->w[i].start == start)
			return &r->w[i];
	w = push(r->w, &r->nw, &r->capw, sizeof(*w));
	if (w == NULL)
		return NULL;
	r->w = w;
	r->w[r->nw] = (struct rwin){ key, start, end, init[r->k], false, true };
	return &r->w[r->nw++];
}

static void ref_element(struct ref *r, const struct ev *e, int64_t key, int64_t ts)
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
		w = ref_window(r, key, start, end);
		if (w == NULL) {
			r->oom = true;
			return;
		}
		if (r->k == K_COUNT)
			w->value = wadd(w->value, 1);
		else if (r->k == K_SUM)
			w->value = wadd(w->value, e->val);
		else if (r->k == K_MIN)
			w->value = e->val < w->value ? e->val : w->value;
		else
			w->value = e->val > w->value ? e->val : w->value;
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

static void run_ref(const struct sl_window_spec *spec, int64_t d, uint64_t every, enum kind k,
		    bool k32, struct ref *r)
{
	int64_t max_ts = INT64_MIN;

	memset(r, 0, sizeof(*r));
	r->s = spec;
	r->k = k;
	r->wm = INT64_MIN;
	for (uint32_t i = 0; i < nrec; i++) {
		ref_element(r, &evs[i], k32 ? (int32_t)evs[i].k32 : evs[i].key, tss[i]);
		if (tss[i] > max_ts)
			max_ts = tss[i];
		if ((uint64_t)(i + 1) % every == 0)
			ref_watermark(r, max_ts - d - 1);
		if (i % 256 == 0) {
			size_t j = 0;

			for (size_t q = 0; q < r->nw; q++)
				if (r->w[q].live)
					r->w[j++] = r->w[q];
			r->nw = j;
		}
	}
	ref_watermark(r, INT64_MAX);
}

static void ref_fini(struct ref *r)
{
	free(r->w);
	free(r->out);
	free(r->late);
}

/* -------------------------------------------------------------- tests */

static int cmp_wout(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct wout));
}

static int cmp_ev(const void *a, const void *b)
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

/* Are the engine's outputs @o the reference's @r (results and late records, as multisets)? */
static bool outputs_match(struct outputs *o, struct ref *r)
{
	return same_multiset(o->out.data, o->out.n, r->out, r->nout, sizeof(struct wout),
			     cmp_wout) &&
	       same_multiset(o->late.data, o->late.n, r->late, r->nlate, sizeof(struct ev), cmp_ev);
}

struct shape {
	enum sl_window_kind kind;
	int64_t size, slide, offset, lateness;
};

static const struct shape shapes[] = {
	{ SL_WINDOW_TUMBLING, 100, 0, 3, 25 }, /* one pane per window, lateness */
	{ SL_WINDOW_TUMBLING, 40, 0, -7, 0 },
	{ SL_WINDOW_SLIDING, 100, 30, 7, 45 }, /* panes of 10, offset and lateness */
	{ SL_WINDOW_SLIDING, 60, 20, 0, 120 }, /* lateness over several windows */
	{ SL_WINDOW_SLIDING, 30, 50, 0, 10 },  /* gaps: some elements are in no window */
};

static const struct form forms[] = {
	{ .field = true, .builtin = true },		 /* the specialised loop */
	{ .field = false, .builtin = false },		 /* the general path */
	{ .field = true, .builtin = false },		 /* field key, custom aggregate */
	{ .field = false, .builtin = true },		 /* key function, built-in */
	{ .field = true, .builtin = true, .k32 = true }, /* 4-byte field key */
	{ .field = false, .builtin = false, .k32 = true },
	{ .field = false, .builtin = true, .scratch = true }, /* the key read at once */
};

static void test_forms_equal_reference(void)
{
	static const struct {
		int64_t disorder, d;
		uint64_t every;
	} wms[] = { { 60, 10, 1 }, { 90, 25, 5 } };
	size_t total_late = 0, total_refires = 0, total_out = 0;

	for (size_t i = 0; i < SL_ARRAY_SIZE(shapes); i++) {
		for (size_t j = 0; j < SL_ARRAY_SIZE(wms); j++) {
			const struct shape *sh = &shapes[i];
			struct sl_window_spec spec = { .kind = sh->kind,
						       .size = sh->size,
						       .slide = sh->slide,
						       .offset = sh->offset,
						       .allowed_lateness = sh->lateness };

			gen_input(i * 10 + j + 1, wms[j].disorder);
			for (int k = 0; k < NKINDS; k++) {
				struct ref r[2];

				run_ref(&spec, wms[j].d, wms[j].every, (enum kind)k, false, &r[0]);
				run_ref(&spec, wms[j].d, wms[j].every, (enum kind)k, true, &r[1]);
				CU_ASSERT_FATAL(!r[0].oom && !r[1].oom);
				for (size_t f = 0; f < SL_ARRAY_SIZE(forms); f++) {
					const struct ref *x = &r[forms[f].k32];
					/* Parallelism 2 for the specialised loop only (slow). */
					unsigned maxp = f == 0 ? 2 : 1;

					for (unsigned p = 1; p <= maxp; p++) {
						struct outputs o;
						bool ok;

						CU_ASSERT_FATAL(
						    run_engine(&spec, wms[j].d, wms[j].every,
							       (enum kind)k, forms[f], p, &o) == 0);
						ok = same_multiset(o.out.data, o.out.n, x->out,
								   x->nout, sizeof(struct wout),
								   cmp_wout) &&
						     same_multiset(o.late.data, o.late.n, x->late,
								   x->nlate, sizeof(struct ev),
								   cmp_ev);
						if (!ok)
							fprintf(stderr,
								"shape %zu wm %zu %s form %zu par "
								"%u: %zu results %zu late, "
								"reference %zu results %zu late\n",
								i, j, kind_names[k], f, p, o.out.n,
								o.late.n, x->nout, x->nlate);
						CU_ASSERT(ok);
						outputs_fini(&o);
					}
				}
				/* Late firings: a window emitted more than once. */
				for (size_t q = 1; q < r[0].nout; q++)
					total_refires +=
					    r[0].out[q].start == r[0].out[q - 1].start &&
					    r[0].out[q].key == r[0].out[q - 1].key;
				total_late += r[0].nlate;
				total_out += r[0].nout;
				ref_fini(&r[0]);
				ref_fini(&r[1]);
			}
		}
	}
	/* The inputs must exercise late records and late firings, else the test is weak. */
	CU_ASSERT(total_late > 100);
	CU_ASSERT(total_refires > 100);
	CU_ASSERT(total_out > 1000);
}

/*
 * Hundreds and thousands of keys through the specialised loop, against
 * the reference: keys share the four slots of their home line in the key
 * table and overflow it (the loop checks the line without a branch, then
 * probes on, hot_far()), the table grows and rehashes, the key rings fill
 * many interleaved groups.
 */
static void test_many_keys(void)
{
	static const struct sl_window_spec specs[] = {
		{ .kind = SL_WINDOW_TUMBLING, .size = 1000 },
		{ .kind = SL_WINDOW_SLIDING, .size = 300, .slide = 100, .allowed_lateness = 40 },
	};
	static const uint64_t counts[] = { 300, 2000 };

	for (size_t c = 0; c < SL_ARRAY_SIZE(counts); c++) {
		nkeys = counts[c];
		for (size_t i = 0; i < SL_ARRAY_SIZE(specs); i++) {
			gen_input(500 + c * 10 + i, 30);
			for (int k = 0; k < NKINDS; k++) {
				struct outputs o;
				struct ref r;

				run_ref(&specs[i], 10, 5, (enum kind)k, false, &r);
				CU_ASSERT_FATAL(!r.oom);
				CU_ASSERT_FATAL(run_engine(&specs[i], 10, 5, (enum kind)k, forms[0],
							   1, &o) == 0);
				CU_ASSERT(same_multiset(o.out.data, o.out.n, r.out, r.nout,
							sizeof(struct wout), cmp_wout));
				CU_ASSERT(same_multiset(o.late.data, o.late.n, r.late, r.nlate,
							sizeof(struct ev), cmp_ev));
				CU_ASSERT(r.nout > 200);
				outputs_fini(&o);
				ref_fini(&r);
			}
		}
	}
	nkeys = NKEYS;
}

/*
 * Keys of gen_hot() input replaced, one in three, by the words the key
 * table keeps in its idle hot slots (core/window.c, hot_idle_pick(): the
 * word 0x51ce0 and the ones after it) or 0: a key equal to an idle word
 * must still be found only in its own slot, armed, at every table size.
 */
static void keys_idle_words(void)
{
	for (size_t i = 0; i < nrec; i++) {
		uint64_t k = (uint64_t)evs[i].key;

		if (k % 3 == 0)
			evs[i].key = k % 9 == 0 ? 0 : 0x51ce0 + (int64_t)(k / 3 % 4);
		evs[i].k32 = (uint32_t)evs[i].key;
	}
}

/*
 * Keys of gen_hot() input replaced, one in two, by 24 keys whose key
 * table hash (a copy of core/window.c's hash8()) has the same 16 low bits
 * but for the last two: they share one home line of four slots at every
 * table size up to 65,536 slots, so that most of them sit past it, in a
 * run of full lines, armed or not (core/window.c, chunk_far(): found
 * after the chunk's other elements, folded or merged back in order among
 * the cold ones).
 */
static uint64_t hash8_copy(uint64_t x)
{
	uint64_t h = x * 0x9e3779b97f4a7c15ull;

	return h ^ (h >> 29);
}

static void keys_crowded(void)
{
	const uint64_t line = hash8_copy(0x7e57) & 0xfffc;
	int64_t crowd[24];
	size_t n = 0;

	for (uint64_t x = 0x7e57; n < SL_ARRAY_SIZE(crowd); x++)
		if ((hash8_copy(x) & 0xfffc) == line)
			crowd[n++] = (int64_t)x;
	for (size_t i = 0; i < nrec; i++) {
		uint64_t k = (uint64_t)evs[i].key;

		if (k % 48 < 24)
			evs[i].key = crowd[k % 48];
		evs[i].k32 = (uint32_t)evs[i].key;
	}
}

/*
 * The operator's hot pane (core/window.c, struct kslot) against the
 * reference: gen_hot() input (keys changed by @remap, if not NULL) moves
 * it forward pane after pane, with elements left behind in older panes
 * (added there, late, or firing a window again), elements far ahead, the
 * key table growing while slots are armed, keys armed only in an older
 * hot pane; watermarks every 7 records. The specialised loop and the
 * general path (custom aggregate), which share the hot pane; parallelism
 * 1 and 2.
 */
static void hot_pane_run(const char *what, void (*remap)(void))
{
	static const struct sl_window_spec specs[] = {
		{ .kind = SL_WINDOW_TUMBLING, .size = 100, .allowed_lateness = 30 },
		{ .kind = SL_WINDOW_SLIDING, .size = 100, .slide = 25, .allowed_lateness = 60 },
		{ .kind = SL_WINDOW_SLIDING, .size = 150, .slide = 50, .offset = 7 },
	};
	size_t total_late = 0, total_out = 0;

	for (size_t i = 0; i < SL_ARRAY_SIZE(specs); i++) {
		gen_hot(900 + i, i == 2 ? 400 : 120);
		if (remap != NULL)
			remap();
		for (int k = 0; k < NKINDS; k++) {
			struct ref r;

			run_ref(&specs[i], 8, 7, (enum kind)k, false, &r);
			CU_ASSERT_FATAL(!r.oom);
			for (unsigned v = 0; v < 4; v++) {
				struct form f = { .field = true, .builtin = v < 2 };
				struct outputs o;
				bool ok;

				CU_ASSERT_FATAL(run_engine(&specs[i], 8, 7, (enum kind)k, f,
							   1 + v % 2, &o) == 0);
				ok = outputs_match(&o, &r);
				if (!ok)
					fprintf(stderr,
						"%s: spec %zu %s variant %u: %zu results %zu "
						"late, reference %zu results %zu late\n",
						what, i, kind_names[k], v, o.out.n, o.late.n,
						r.nout, r.nlate);
				CU_ASSERT(ok);
				outputs_fini(&o);
			}
			total_late += r.nlate;
			total_out += r.nout;
			ref_fini(&r);
		}
	}
	nrec = NREC;
	/* Late records and many results, else the input misses what it is for. */
	CU_ASSERT(total_late > 100);
	CU_ASSERT(total_out > 10000);
}

static void test_hot_pane(void)
{
	hot_pane_run("hot pane", NULL);
}

static void test_hot_idle_words(void)
{
	hot_pane_run("hot pane, idle words as keys", keys_idle_words);
}

static void test_hot_crowded(void)
{
	hot_pane_run("hot pane, keys past their home line", keys_crowded);
}

static void test_sessions(void)
{
	struct sl_window_spec spec = { .kind = SL_WINDOW_SESSION,
				       .gap = 9,
				       .allowed_lateness = 20 };

	gen_input(77, 40);
	for (int k = 0; k < NKINDS; k++) {
		struct outputs a, b;

		CU_ASSERT_FATAL(run_engine(&spec, 15, 3, (enum kind)k,
					   (struct form){ .field = true, .builtin = true }, 1,
					   &a) == 0);
		CU_ASSERT_FATAL(run_engine(&spec, 15, 3, (enum kind)k, (struct form){ 0 }, 1, &b) ==
				0);
		CU_ASSERT(a.out.n > 100);
		CU_ASSERT(same_multiset(a.out.data, a.out.n, b.out.data, b.out.n,
					sizeof(struct wout), cmp_wout));
		CU_ASSERT(same_multiset(a.late.data, a.late.n, b.late.data, b.late.n,
					sizeof(struct ev), cmp_ev));
		outputs_fini(&a);
		outputs_fini(&b);
	}
}

/* ----------------------------------------------------------- errors */

struct strev {
	int64_t a;
	struct sl_str s;
	int64_t b;
};

static char errbuf[512];

/* Build src -> watermarks -> key -> window(agg) -> sink; return validate()'s result. */
static int build(bool field, uint32_t off, uint32_t len, const struct sl_aggregate *agg,
		 const struct sl_type *type)
{
	static const struct sl_window_spec spec = { .kind = SL_WINDOW_TUMBLING, .size = 10 };
	struct sl_watermark_strategy ws = { .out_of_orderness_ms = 1 };
	struct sl_job *job;
	struct sl_stream *s;
	int rc;

	CU_ASSERT_FATAL(sl_job_create("t", &job) == 0);
	s = sl_assign_watermarks(sl_source(job, "src", &tape_ops, &tape, type), &ws);
	s = field ? sl_key_by_field(s, off, len) : sl_key_by(s, key64);
	s = sl_window_aggregate(s, "w", &spec, agg, &wout_type);
	sl_sink(s, "out", &bag_ops, NULL);
	errbuf[0] = '\0';
	rc = sl_job_validate(job, errbuf, sizeof(errbuf));
	sl_job_destroy(job);
	return rc;
}

static void test_errors(void)
{
	static const struct sl_type str_type = SL_TYPE_STR1(struct strev, s);
	struct sl_aggregate good = sl_agg_sum_i64(offsetof(struct ev, val), w_result, NULL), bad;
	struct sl_aggregate count = sl_agg_count(w_result, NULL);

	CU_ASSERT_EQUAL(build(true, offsetof(struct ev, key), 8, &good, &ev_type), 0);
	CU_ASSERT_EQUAL(build(true, sizeof(struct ev) - 1, 1, &good, &ev_type), 0);
	/* Key fields: empty, outside the element, over a string. */
	CU_ASSERT_EQUAL(build(true, 0, 0, &good, &ev_type), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "is not inside its 32-byte elements"));
	CU_ASSERT_EQUAL(build(true, sizeof(struct ev) - 4, 8, &good, &ev_type), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "key_by after 'src'"));
	CU_ASSERT_EQUAL(build(true, UINT32_MAX, 8, &good, &ev_type), -EINVAL);
	CU_ASSERT_EQUAL(build(true, 0, 8, &count, &str_type), 0);
	CU_ASSERT_EQUAL(build(true, 12, 8, &count, &str_type), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "overlaps a string"));
	/* Built-ins: own functions, acc_size, a field outside, an unknown kind, no result. */
	bad = good;
	bad.add = c_sum;
	CU_ASSERT_EQUAL(build(false, 0, 0, &bad, &ev_type), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "with its own create, add or merge"));
	bad = good;
	bad.merge = m_sum;
	CU_ASSERT_EQUAL(build(false, 0, 0, &bad, &ev_type), -EINVAL);
	bad = good;
	bad.acc_size = 16;
	CU_ASSERT_EQUAL(build(false, 0, 0, &bad, &ev_type), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "acc_size is not 8"));
	bad = sl_agg_max_i64(sizeof(struct ev) - 7, w_result, NULL);
	CU_ASSERT_EQUAL(build(false, 0, 0, &bad, &ev_type), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "int64 field is not inside"));
	bad = sl_agg_min_i64(UINT32_MAX, w_result, NULL);
	CU_ASSERT_EQUAL(build(false, 0, 0, &bad, &ev_type), -EINVAL);
	bad = good;
	bad.builtin = 99;
	CU_ASSERT_EQUAL(build(false, 0, 0, &bad, &ev_type), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "unknown built-in aggregate"));
	bad = sl_agg_count(NULL, NULL);
	CU_ASSERT_EQUAL(build(false, 0, 0, &bad, &ev_type), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "acc_size, add and result"));
	/* A count needs no field: any offset is fine. */
	bad = sl_agg_count(w_result, NULL);
	bad.field = UINT32_MAX;
	CU_ASSERT_EQUAL(build(false, 0, 0, &bad, &ev_type), 0);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "field key x built-in x custom = brute force", test_forms_equal_reference },
		{ "sessions: built-in = custom", test_sessions },
		{ "many keys: specialised loop = brute force", test_many_keys },
		{ "hot pane: moves, stragglers, growth = brute force", test_hot_pane },
		{ "hot pane: keys equal to idle hot words = brute force", test_hot_idle_words },
		{ "hot pane: keys past their home line = brute force", test_hot_crowded },
		{ "errors", test_errors },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("window_builtin", tests);
}
