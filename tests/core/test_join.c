/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_join.c — window join and interval join (SEMANTICS.md "Windows",
 * last bullet), through real jobs: two array sources of different element
 * types, each keyed, joined, into a sink that records (key, left, right,
 * ts) for every output element.
 *
 * Correctness: seeded random inputs, each side out of order by less than
 * its source's bounded out-of-orderness B (watermarks after every record),
 * so no element is ever late: the join wm is the minimum over both inputs,
 * at most the wm each side's own source emitted before the element, and
 * that is at least 2 below its timestamp. Then the output must equal, as
 * a multiset, a brute-force reference computed here with nested loops
 * over both inputs and the rule of SEMANTICS.md (window membership worked
 * out by floor division, sessions by a sweep over both sides' timestamps),
 * at parallelism 1 and 2.
 *
 * Lateness and cleanup: sources gated on what the operator did (the pairs
 * its join function saw, sl_join_buffered()) so that an element is sent
 * only when the join's watermark is known to be past it; each scenario is
 * worked out by hand next to it.
 *
 * Threads: jobs run on the runtime's workers; the sink, the pair log and
 * the gates share state under mutexes or atomics.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sluice/sluice.h>

#include "sl_test.h"

static char errbuf[512];

/* -------------------------------------------------------------- types */

/* Left elements: key first. */
struct lft {
	int64_t key;
	int64_t val;
};
static const struct sl_type lft_type = SL_TYPE(struct lft);

/* Right elements: another size, the key elsewhere. */
struct rgt {
	int32_t tag;
	int32_t pad;
	int64_t val;
	int64_t key;
};
static const struct sl_type rgt_type = SL_TYPE(struct rgt);

/* Elements with a string (the strings test). */
struct sel {
	int64_t key;
	int64_t val;
	struct sl_str name;
};
static const struct sl_type sel_type = SL_TYPE_STR1(struct sel, name);

/* Output: which key and which elements; its timestamp travels beside it. */
struct jout {
	int64_t key, lval, rval;
};
static const struct sl_type jout_type = SL_TYPE(struct jout);

struct sout {
	int64_t key, lval, rval;
	struct sl_str lname, rname;
};
static const struct sl_type sout_type = SL_TYPE_STR2(struct sout, lname, rname);

/* An input record and an output tuple. */
struct in {
	int64_t key, ts, val;
};

struct tup {
	int64_t key, l, r, ts;
};

static void key_lft(const void *e, const struct sl_batch *src, struct sl_key *out)
{
	(void)src;
	out->ptr = &((const struct lft *)e)->key;
	out->len = sizeof(int64_t);
}

static void key_rgt(const void *e, const struct sl_batch *src, struct sl_key *out)
{
	(void)src;
	out->ptr = &((const struct rgt *)e)->key;
	out->len = sizeof(int64_t);
}

static void key_sel(const void *e, const struct sl_batch *src, struct sl_key *out)
{
	(void)src;
	out->ptr = &((const struct sel *)e)->key;
	out->len = sizeof(int64_t);
}

/* A 4-byte key: a different key type than key_rgt's. */
static void key_rgt_tag(const void *e, const struct sl_batch *src, struct sl_key *out)
{
	(void)src;
	out->ptr = &((const struct rgt *)e)->tag;
	out->len = sizeof(int32_t);
}

/* ------------------------------------------------------- array source */

/* Which elements an array source (test_sources.h) emits: arr_conf.kind. */
enum src_kind { SRC_LFT, SRC_RGT, SRC_SEL_L, SRC_SEL_R };

#include "test_sources.h"

static int arr_fill(const struct arr_conf *c, const struct in *r, struct sl_batch *out, uint32_t n)
{
	char name[32];
	int len;

	switch (c->kind) {
	case SRC_LFT:
		*(struct lft *)sl_batch_elem(out, n) = (struct lft){ r->key, r->val };
		return 0;
	case SRC_RGT:
		*(struct rgt *)sl_batch_elem(out, n) = (struct rgt){ 7, 0, r->val, r->key };
		return 0;
	default: {
		struct sel *e = sl_batch_elem(out, n);

		len = snprintf(name, sizeof(name), "%s%" PRId64,
			       c->kind == SRC_SEL_L ? "left-" : "right-", r->val);
		e->key = r->key;
		e->val = r->val;
		return sl_batch_add_str(out, name, (uint32_t)len, &e->name);
	}
	}
}

/* ---------------------------------------------------------- the sink */

struct tups {
	pthread_mutex_t lock;
	struct tup *t;
	size_t n, cap;
	int bad; /* elements that did not look right (strings test) */
};

static void tups_init(struct tups *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
}

static void tups_fini(struct tups *t)
{
	free(t->t);
	pthread_mutex_destroy(&t->lock);
}

/* Append under the lock. */
static int tups_add(struct tups *t, struct tup x)
{
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 256;
		struct tup *nt = realloc(t->t, ncap * sizeof(*nt));

		if (nt == NULL)
			return -ENOMEM;
		t->t = nt;
		t->cap = ncap;
	}
	t->t[t->n++] = x;
	return 0;
}

static bool tups_has(struct tups *t, struct tup x)
{
	bool found = false;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n && !found; i++)
		found = !memcmp(&t->t[i], &x, sizeof(x));
	pthread_mutex_unlock(&t->lock);
	return found;
}

static int sink_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	(void)info;
	*state = arg;
	return 0;
}

static int sink_write(void *state, const struct sl_batch *b)
{
	struct tups *t = state;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < b->n && rc == 0; i++) {
		const struct jout *o = sl_batch_elem(b, i);

		rc = tups_add(t, (struct tup){ o->key, o->lval, o->rval, b->ts[i] });
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* The strings test: names must read "left-<lval>" and "right-<rval>". */
static int sink_write_str(void *state, const struct sl_batch *b)
{
	struct tups *t = state;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < b->n && rc == 0; i++) {
		const struct sout *o = sl_batch_elem(b, i);
		char want[64];

		snprintf(want, sizeof(want), "left-%" PRId64, o->lval);
		if (o->lname.len != strlen(want) ||
		    memcmp(sl_batch_str(b, o->lname), want, o->lname.len))
			t->bad++;
		snprintf(want, sizeof(want), "right-%" PRId64, o->rval);
		if (o->rname.len != strlen(want) ||
		    memcmp(sl_batch_str(b, o->rname), want, o->rname.len))
			t->bad++;
		rc = tups_add(t, (struct tup){ o->key, o->lval, o->rval, b->ts[i] });
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

static int sink_finish(void *state)
{
	(void)state;
	return 0;
}

static void sink_close(void *state)
{
	(void)state;
}

/* Late elements of either side (side outputs): {key, val, 0, ts}. */
static int sink_write_late(void *state, const struct sl_batch *b)
{
	struct tups *t = state;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < b->n && rc == 0; i++) {
		struct tup x = { 0, 0, 0, b->ts[i] };

		if (b->elem_size == sizeof(struct lft)) {
			const struct lft *e = sl_batch_elem(b, i);
			x.key = e->key, x.l = e->val;
		} else {
			const struct rgt *e = sl_batch_elem(b, i);
			x.key = e->key, x.l = e->val;
		}
		rc = tups_add(t, x);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

static const struct sl_sink_ops tup_sink = {
	.open = sink_open, .write = sink_write, .finish = sink_finish, .close = sink_close
};
static const struct sl_sink_ops str_sink = {
	.open = sink_open, .write = sink_write_str, .finish = sink_finish, .close = sink_close
};
static const struct sl_sink_ops late_sink = {
	.open = sink_open, .write = sink_write_late, .finish = sink_finish, .close = sink_close
};

/* --------------------------------------------------- join functions */

/* What the join functions saw: the same tuples, logged on the join's thread (gates read it). */
static struct tups pairs;

static void reset_pairs(void)
{
	pthread_mutex_lock(&pairs.lock);
	pairs.n = 0;
	pthread_mutex_unlock(&pairs.lock);
}

static int ij_fn(const void *l, int64_t lts, const struct sl_batch *lsrc, const void *r,
		 int64_t rts, const struct sl_batch *rsrc, struct sl_collector *out, void *arg)
{
	const struct lft *a = l;
	const struct rgt *b = r;
	struct jout o = { a->key, a->val, b->val };
	int rc;

	(void)lsrc, (void)rsrc, (void)arg;
	if (a->key != b->key)
		return -EINVAL;
	pthread_mutex_lock(&pairs.lock);
	rc = tups_add(&pairs, (struct tup){ a->key, a->val, b->val, lts > rts ? lts : rts });
	pthread_mutex_unlock(&pairs.lock);
	/* Any timestamp: the operator stamps max(lts, rts). */
	return rc < 0 ? rc : sl_emit(out, &o, -12345, NULL);
}

static int wj_fn(const void *l, const struct sl_batch *lsrc, const void *r,
		 const struct sl_batch *rsrc, const struct sl_window *w, struct sl_collector *out,
		 void *arg)
{
	const struct lft *a = l;
	const struct rgt *b = r;
	struct jout o = { a->key, a->val, b->val };
	int rc;

	(void)lsrc, (void)rsrc, (void)arg;
	if (a->key != b->key)
		return -EINVAL;
	pthread_mutex_lock(&pairs.lock);
	rc = tups_add(&pairs, (struct tup){ a->key, a->val, b->val, w->end - 1 });
	pthread_mutex_unlock(&pairs.lock);
	return rc < 0 ? rc : sl_emit(out, &o, 0, NULL); /* stamped end - 1 by the operator */
}

/* Strings: both names copied into the output through the collector. */
static int wj_str_fn(const void *l, const struct sl_batch *lsrc, const void *r,
		     const struct sl_batch *rsrc, const struct sl_window *w,
		     struct sl_collector *out, void *arg)
{
	const struct sel *a = l, *b = r;
	struct sout o = { a->key, a->val, b->val, { 0, 0 }, { 0, 0 } };
	int rc;

	(void)w, (void)arg;
	rc = sl_collector_str(out, sl_batch_str(lsrc, a->name), a->name.len, &o.lname);
	if (rc == 0)
		rc = sl_collector_str(out, sl_batch_str(rsrc, b->name), b->name.len, &o.rname);
	return rc < 0 ? rc : sl_emit(out, &o, 0, NULL);
}

static int ij_str_fn(const void *l, int64_t lts, const struct sl_batch *lsrc, const void *r,
		     int64_t rts, const struct sl_batch *rsrc, struct sl_collector *out, void *arg)
{
	struct sl_window w = { 0, 0 };

	(void)lts, (void)rts;
	return wj_str_fn(l, lsrc, r, rsrc, &w, out, arg);
}

/* ------------------------------------------------------ references */

static int cmp_tup(const void *a, const void *b)
{
	const int64_t *x = a, *y = b;

	for (int i = 0; i < 4; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Is ts in window [start, start + size)? Starts: offset + k * slide. */
static bool in_window(int64_t ts, int64_t start, int64_t size)
{
	return start <= ts && ts < start + size;
}

/* Window join, tumbling or sliding: pairs with equal key in a common window, at end - 1. */
static size_t ref_fixed(const struct in *l, size_t nl, const struct in *r, size_t nr,
			const struct sl_window_spec *s, struct tup *out)
{
	int64_t slide = s->kind == SL_WINDOW_TUMBLING ? s->size : s->slide;
	size_t n = 0;

	for (size_t a = 0; a < nl; a++)
		for (size_t b = 0; b < nr; b++) {
			int64_t lo, hi;

			if (l[a].key != r[b].key)
				continue;
			/* Every grid start with start <= min(ts) and max(ts) < start + size. */
			lo = floor_div(l[a].ts - s->offset - s->size, slide) - 1;
			hi = floor_div(l[a].ts - s->offset, slide) + 1;
			for (int64_t k = lo; k <= hi; k++) {
				int64_t st = s->offset + k * slide;

				if (in_window(l[a].ts, st, s->size) &&
				    in_window(r[b].ts, st, s->size))
					out[n++] = (struct tup){ l[a].key, l[a].val, r[b].val,
								 st + s->size - 1 };
			}
		}
	return n;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Window join, sessions: per key, sweep both sides' timestamps into sessions, then pairs. */
static size_t ref_session(const struct in *l, size_t nl, const struct in *r, size_t nr, int64_t gap,
			  struct tup *out)
{
	int64_t *ts = malloc((nl + nr) * sizeof(*ts));
	size_t n = 0;

	CU_ASSERT_FATAL(ts != NULL);
	for (int64_t key = 0; key < 16; key++) {
		size_t m = 0;

		for (size_t a = 0; a < nl; a++)
			if (l[a].key == key)
				ts[m++] = l[a].ts;
		for (size_t b = 0; b < nr; b++)
			if (r[b].key == key)
				ts[m++] = r[b].ts;
		qsort(ts, m, sizeof(*ts), cmp_i64);
		for (size_t i = 0; i < m;) {
			int64_t start = ts[i], end = ts[i] + gap;
			size_t j = i + 1;

			while (j < m && ts[j] <= end) { /* [t, t + gap) touches [start, end) */
				if (ts[j] + gap > end)
					end = ts[j] + gap;
				j++;
			}
			for (size_t a = 0; a < nl; a++)
				for (size_t b = 0; b < nr; b++)
					if (l[a].key == key && r[b].key == key &&
					    in_window(l[a].ts, start, end - start) &&
					    in_window(r[b].ts, start, end - start))
						out[n++] = (struct tup){ key, l[a].val, r[b].val,
									 end - 1 };
			i = j;
		}
	}
	free(ts);
	return n;
}

/* Interval join: a.ts + lower <= b.ts <= a.ts + upper, each bound exclusive when asked. */
static size_t ref_interval(const struct in *l, size_t nl, const struct in *r, size_t nr,
			   const struct sl_interval_join_spec *s, struct tup *out)
{
	size_t n = 0;

	for (size_t a = 0; a < nl; a++)
		for (size_t b = 0; b < nr; b++) {
			int64_t lo = l[a].ts + s->lower, hi = l[a].ts + s->upper;
			bool above = s->lower_exclusive ? r[b].ts > lo : r[b].ts >= lo;
			bool below = s->upper_exclusive ? r[b].ts < hi : r[b].ts <= hi;

			if (l[a].key == r[b].key && above && below)
				out[n++] = (struct tup){ l[a].key, l[a].val, r[b].val,
							 l[a].ts > r[b].ts ? l[a].ts : r[b].ts };
		}
	return n;
}

/* Compare as multisets; print the first difference. */
static void check_same(const char *what, struct tup *got, size_t ngot, struct tup *want,
		       size_t nwant)
{
	size_t i;

	qsort(got, ngot, sizeof(*got), cmp_tup);
	qsort(want, nwant, sizeof(*want), cmp_tup);
	for (i = 0; i < ngot && i < nwant; i++)
		if (cmp_tup(&got[i], &want[i]) != 0)
			break;
	if (i < ngot || i < nwant) {
		printf("\n%s: %zu outputs, %zu expected; first difference at %zu:", what, ngot,
		       nwant, i);
		if (i < ngot)
			printf(" got (%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ")", got[i].key,
			       got[i].l, got[i].r, got[i].ts);
		if (i < nwant)
			printf(" want (%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ")",
			       want[i].key, want[i].l, want[i].r, want[i].ts);
		printf("\n");
	}
	CU_ASSERT_EQUAL(ngot, nwant);
	CU_ASSERT(i == ngot && i == nwant);
}

/* ------------------------------------------------------- random input */

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/*
 * @n records over keys 1..@nkeys, timestamps from @t0 rising by 0..@step
 * with a jitter of 0..@jitter, values @vbase + i. Return the bounded
 * out-of-orderness that keeps every record on time: one more than the
 * largest lag behind the maximum before it.
 */
static int64_t gen(struct in *evs, size_t n, int64_t t0, int nkeys, int step, int jitter,
		   int64_t vbase)
{
	int64_t t = t0, max = INT64_MIN, lag = 0;

	for (size_t i = 0; i < n; i++) {
		t += (int64_t)(next_rand() % (uint64_t)(step + 1));
		evs[i].key = 1 + (int64_t)(next_rand() % (uint64_t)nkeys);
		evs[i].ts = t + (int64_t)(next_rand() % (uint64_t)(jitter + 1));
		evs[i].val = vbase + (int64_t)i;
		if (max != INT64_MIN && max - evs[i].ts > lag)
			lag = max - evs[i].ts;
		if (evs[i].ts > max)
			max = evs[i].ts;
	}
	return lag + 1;
}

/* ------------------------------------------------------------ jobs */

static void set_opt(struct sl_job *job, const char *key, unsigned v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%u", v);
	CU_ASSERT_EQUAL_FATAL(sl_job_set(job, key, buf, errbuf, sizeof(errbuf)), 0);
}

static struct sl_watermark_strategy per_record(int64_t bound)
{
	return (struct sl_watermark_strategy){ .out_of_orderness_ms = bound, .every = 1 };
}

/* Left and right sources (parallelism 1, watermarks after every record), keyed. */
static void sources(struct sl_job *job, struct arr_conf *a, struct arr_conf *b, int64_t ba,
		    int64_t bb, struct sl_stream **l, struct sl_stream **r)
{
	struct sl_watermark_strategy wa = per_record(ba), wb = per_record(bb);
	struct sl_stream *sa, *sb;
	sl_key_fn ka = a->kind == SRC_LFT ? key_lft : key_sel;
	sl_key_fn kb = b->kind == SRC_RGT ? key_rgt : key_sel;
	const struct sl_type *ta = a->kind == SRC_LFT ? &lft_type : &sel_type;
	const struct sl_type *tb = b->kind == SRC_RGT ? &rgt_type : &sel_type;

	sa = sl_set_parallelism(sl_source(job, "L", &arr_ops, a, ta), 1);
	sb = sl_set_parallelism(sl_source(job, "R", &arr_ops, b, tb), 1);
	*l = sl_key_by(sl_assign_watermarks(sa, &wa), ka);
	*r = sl_key_by(sl_assign_watermarks(sb, &wb), kb);
}

/* Output of the last run: the sink's tuples, the join's late count. */
struct outcome {
	struct tups out;
	uint64_t late;
};

#define NREC 300

typedef struct sl_stream *(*join_build_fn)(struct sl_stream *l, struct sl_stream *r,
					   const void *spec);

static struct sl_stream *build_window_join(struct sl_stream *l, struct sl_stream *r,
					   const void *spec)
{
	return sl_window_join(l, r, "j", spec, wj_fn, NULL, &jout_type);
}

static struct sl_stream *build_interval_join(struct sl_stream *l, struct sl_stream *r,
					     const void *spec)
{
	return sl_interval_join(l, r, "j", spec, ij_fn, NULL, &jout_type);
}

/*
 * Run job @name at parallelism @p with a random batch size: sources @ca
 * and @cb (out-of-orderness @ba, @bb) into the join @build makes with
 * @spec, into @out (initialised here). It must succeed, find no element
 * late, and leave nothing buffered.
 */
static void random_run(const char *name, unsigned p, struct arr_conf *ca, struct arr_conf *cb,
		       int64_t ba, int64_t bb, join_build_fn build, const void *spec,
		       struct tups *out)
{
	struct sl_stream *sl, *sr, *j;
	struct sl_job *job;
	uint64_t bad, late = 99, bl = 99, br = 99;

	tups_init(out);
	reset_pairs();
	CU_ASSERT_FATAL(sl_job_create(name, &job) == 0);
	set_opt(job, "parallelism", p);
	set_opt(job, "batch-size", 1 + (unsigned)(next_rand() % 64));
	sources(job, ca, cb, ba, bb, &sl, &sr);
	j = build(sl, sr, spec);
	sl_sink(j, "out", &tup_sink, out);
	CU_ASSERT_EQUAL_FATAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
	CU_ASSERT_EQUAL(sl_job_op_counters(job, "j", &bad, &late), 0);
	CU_ASSERT_EQUAL(late, 0);
	CU_ASSERT_EQUAL(sl_join_buffered(job, "j", &bl, &br), 0);
	CU_ASSERT_EQUAL(bl + br, 0);
	sl_job_destroy(job);
}

/* One random window-join run at parallelism @p against the reference. */
static void window_case(const struct sl_window_spec *spec, unsigned p, int step, int jitter,
			uint32_t per_poll)
{
	static struct in l[NREC], r[NREC];
	static struct tup want[NREC * NREC];
	struct arr_conf ca = { .evs = l, .n = NREC, .kind = SRC_LFT, .per_poll = per_poll };
	struct arr_conf cb = { .evs = r, .n = NREC, .kind = SRC_RGT, .per_poll = per_poll };
	int64_t ba = gen(l, NREC, -500, 4, step, jitter, 1000);
	int64_t bb = gen(r, NREC, -480, 4, step, jitter, 5000);
	struct tups out;
	size_t nwant;
	char what[96];

	/* The final watermark must clean every window. */
	random_run("wj", p, &ca, &cb, ba, bb, build_window_join, spec, &out);
	if (spec->kind == SL_WINDOW_SESSION)
		nwant = ref_session(l, NREC, r, NREC, spec->gap, want);
	else
		nwant = ref_fixed(l, NREC, r, NREC, spec, want);
	CU_ASSERT(nwant > 0);
	snprintf(what, sizeof(what), "window join kind %d p %u", (int)spec->kind, p);
	check_same(what, out.t, out.n, want, nwant);
	tups_fini(&out);
}

static void test_window_tumbling(void)
{
	struct sl_window_spec s = { .kind = SL_WINDOW_TUMBLING, .size = 10, .offset = 3 };

	for (unsigned p = 1; p <= 2; p++) {
		window_case(&s, p, 3, 6, 0);
		window_case(&s, p, 1, 20, 5);
	}
}

static void test_window_sliding(void)
{
	struct sl_window_spec s = { .kind = SL_WINDOW_SLIDING, .size = 12, .slide = 4 };
	struct sl_window_spec gaps = { .kind = SL_WINDOW_SLIDING, .size = 3, .slide = 5 };

	for (unsigned p = 1; p <= 2; p++) {
		window_case(&s, p, 3, 6, 0);
		window_case(&gaps, p, 2, 4, 3); /* slide > size: some elements in no window */
	}
}

static void test_window_session(void)
{
	struct sl_window_spec s = { .kind = SL_WINDOW_SESSION, .gap = 4 };

	for (unsigned p = 1; p <= 2; p++) {
		window_case(&s, p, 9, 5,
			    0); /* sparse: many sessions per key, merges across sides */
		window_case(&s, p, 4, 12, 7);
	}
}

/* One random interval-join run at parallelism @p against the reference. */
static void interval_case(const struct sl_interval_join_spec *spec, unsigned p, int step,
			  int jitter)
{
	static struct in l[NREC], r[NREC];
	static struct tup want[NREC * NREC];
	struct arr_conf ca = { .evs = l, .n = NREC, .kind = SRC_LFT };
	struct arr_conf cb = { .evs = r, .n = NREC, .kind = SRC_RGT, .per_poll = 3 };
	int64_t ba = gen(l, NREC, 0, 3, step, jitter, 1000);
	int64_t bb = gen(r, NREC, 0, 3, step, jitter, 5000);
	struct tups out;
	size_t nwant;
	char what[128];

	random_run("ij", p, &ca, &cb, ba, bb, build_interval_join, spec, &out);
	nwant = ref_interval(l, NREC, r, NREC, spec, want);
	CU_ASSERT(nwant > 0);
	snprintf(what, sizeof(what), "interval join [%" PRId64 "%s, %" PRId64 "%s] p %u",
		 spec->lower, spec->lower_exclusive ? " excl" : "", spec->upper,
		 spec->upper_exclusive ? " excl" : "", p);
	check_same(what, out.t, out.n, want, nwant);
	tups_fini(&out);
}

static void test_interval_inclusive(void)
{
	struct sl_interval_join_spec s = { -3, 5, false, false };

	for (unsigned p = 1; p <= 2; p++)
		interval_case(&s, p, 2, 6);
}

static void test_interval_exclusive(void)
{
	struct sl_interval_join_spec both = { -3, 5, true, true };
	struct sl_interval_join_spec lo = { -3, 5, true, false };
	struct sl_interval_join_spec point = { 0, 0, false, false };

	for (unsigned p = 1; p <= 2; p++) {
		interval_case(&both, p, 2, 6);
		interval_case(&lo, p, 2, 6);
		interval_case(&point, p, 1, 3); /* equal timestamps only */
	}
}

static void test_interval_negative(void)
{
	struct sl_interval_join_spec neg = { -8, -2, false, false }; /* right before left */
	struct sl_interval_join_spec pos = { 2, 9, false, true };    /* right after left */

	for (unsigned p = 1; p <= 2; p++) {
		interval_case(&neg, p, 2, 6);
		interval_case(&pos, p, 2, 6);
	}
}

/* ------------------------------------------------ lateness, cleanup */

/* A gate: element @at waits until @pair was joined and the buffers hold @bl, @br (-1: any). */
struct gate {
	struct sl_job *job;
	size_t at;
	struct tup pair;
	int64_t bl, br;
	struct arr_conf *other; /* non-NULL: instead, wait for that source's end */
	double deadline;
	atomic_bool gave_up;
	uint64_t seen_l, seen_r; /* the buffers when it opened */
};

static bool gate_ready(size_t next, void *arg)
{
	struct gate *g = arg;
	uint64_t bl = 0, br = 0;

	if (next != g->at)
		return true;
	if (now_s() > g->deadline) {
		/* Say what was seen, then open: the test fails on gave_up, never hangs. */
		sl_join_buffered(g->job, "j", &bl, &br);
		printf("\ngate at element %zu gave up: pair seen %d, buffered %" PRIu64
		       " + %" PRIu64 "\n",
		       g->at, g->other ? -1 : (int)tups_has(&pairs, g->pair), bl, br);
		atomic_store(&g->gave_up, true);
		return true;
	}
	if (g->other != NULL)
		return atomic_load_explicit(&g->other->ended, memory_order_acquire);
	if (!tups_has(&pairs, g->pair))
		return false;
	if (sl_join_buffered(g->job, "j", &bl, &br) < 0)
		return false;
	if ((g->bl >= 0 && bl != (uint64_t)g->bl) || (g->br >= 0 && br != (uint64_t)g->br))
		return false;
	g->seen_l = bl;
	g->seen_r = br;
	return true;
}

/*
 * Interval [0, 5], B = 0 on both sides, join at parallelism 1.
 *   L: l1 (k1, ts 10), lh (k9, ts 40) -> L's wm 39; then, gated, l2 (k1, 12).
 *   R: r1 (k1, ts 12), r2 (k9, ts 42) -> R's wm 41; then, once L ended,
 *      r3 (k1, ts 20) and r4 (k9, ts 41).
 * l1 x r1 (10 <= 12 <= 15) at 12 and lh x r2 (40 <= 42 <= 45) at 42. Once
 * the join's wm is 39 (min of 39 and 41), l1 is dropped (cleanup at
 * 10 + 5 = 15) and r1 too (right cleanup at ts - lower = 12): the gate
 * waits for buffers of exactly 1 and 1 (lh, r2) after lh x r2 was joined,
 * which proves the state went when the watermark passed. Then l2 (12 <
 * 39) is late: dropped and counted, though 12 <= 12 <= 17 would join r1.
 * r3 (20 < 39, or < 41 once L ended) is late; r4 at 41 is not late under
 * either wm (41 < 41 is false: Flink's strict test) and joins lh at 41.
 */
static void interval_late_case(bool side)
{
	static const struct in le[] = { { 1, 10, 1 }, { 9, 40, 2 }, { 1, 12, 3 } };
	static const struct in re[] = {
		{ 1, 12, 101 }, { 9, 42, 102 }, { 1, 20, 103 }, { 9, 41, 104 }
	};
	struct tup want[] = { { 1, 1, 101, 12 }, { 9, 2, 102, 42 }, { 9, 2, 104, 41 } };
	struct sl_interval_join_spec spec = { 0, 5, false, false };
	struct arr_conf ca = { .evs = le, .n = 3, .kind = SRC_LFT, .per_poll = 1 };
	struct arr_conf cb = { .evs = re, .n = 4, .kind = SRC_RGT, .per_poll = 1 };
	struct gate ga = { .at = 2, .pair = { 9, 2, 102, 42 }, .bl = 1, .br = 1 };
	struct gate gb = { .at = 2, .other = &ca };
	struct tup want_late[] = { { 1, 3, 0, 12 }, { 1, 103, 0, 20 } };
	struct sl_stream *sl, *sr, *j;
	struct sl_job *job;
	struct tups out, lt;
	uint64_t bad, late = 0, bl = 99, br = 99;

	tups_init(&out);
	tups_init(&lt);
	reset_pairs();
	CU_ASSERT_FATAL(sl_job_create("ij-late", &job) == 0);
	ga.job = gb.job = job;
	ga.deadline = gb.deadline = now_s() + GATE_GIVE_UP_S;
	ca.ready = gate_ready, ca.arg = &ga;
	cb.ready = gate_ready, cb.arg = &gb;
	sources(job, &ca, &cb, 0, 0, &sl, &sr);
	j = sl_interval_join(sl, sr, "j", &spec, ij_fn, NULL, &jout_type);
	sl_sink(j, "out", &tup_sink, &out);
	if (side) {
		sl_sink(sl_side_output(j, 0, &lft_type), "late-l", &late_sink, &lt);
		sl_sink(sl_side_output(j, 1, &rgt_type), "late-r", &late_sink, &lt);
	}
	CU_ASSERT_EQUAL_FATAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
	CU_ASSERT_FALSE(atomic_load(&ga.gave_up));
	CU_ASSERT_FALSE(atomic_load(&gb.gave_up));
	CU_ASSERT_EQUAL(ga.seen_l, 1);
	CU_ASSERT_EQUAL(ga.seen_r, 1);
	CU_ASSERT_EQUAL(sl_job_op_counters(job, "j", &bad, &late), 0);
	CU_ASSERT_EQUAL(sl_join_buffered(job, "j", &bl, &br), 0);
	CU_ASSERT_EQUAL(bl + br, 0);
	check_same("interval late", out.t, out.n, want, 3);
	if (side) {
		/* l2 and r3 went to the side outputs, with their timestamps; none counted. */
		CU_ASSERT_EQUAL(late, 0);
		check_same("interval late side outputs", lt.t, lt.n, want_late, 2);
	} else {
		CU_ASSERT_EQUAL(late, 2);
		CU_ASSERT_EQUAL(lt.n, 0);
	}
	sl_job_destroy(job);
	tups_fini(&out);
	tups_fini(&lt);
}

static void test_interval_late_and_cleanup(void)
{
	interval_late_case(false);
	interval_late_case(true);
}

/* Side outputs of a join: 0 and 1 only, each of its input's type. */
static void test_join_side_output_types(void)
{
	struct sl_interval_join_spec spec = { 0, 5, false, false };
	struct arr_conf ca = { .evs = NULL, .n = 0, .kind = SRC_LFT };
	struct arr_conf cb = { .evs = NULL, .n = 0, .kind = SRC_RGT };
	struct sl_stream *sl, *sr, *j;
	struct sl_job *job;

	for (int c = 0; c < 2; c++) {
		CU_ASSERT_FATAL(sl_job_create("ij-side", &job) == 0);
		sources(job, &ca, &cb, 0, 0, &sl, &sr);
		j = sl_interval_join(sl, sr, "j", &spec, ij_fn, NULL, &jout_type);
		sl_sink(j, "out", &tup_sink, NULL);
		if (c == 0)
			sl_sink(sl_side_output(j, 0, &rgt_type), "x", &late_sink, NULL);
		else
			sl_sink(sl_side_output(j, 2, &lft_type), "x", &late_sink, NULL);
		CU_ASSERT_EQUAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), -EINVAL);
		CU_ASSERT(strstr(errbuf, "join 'j': its side outputs are 0 and 1") != NULL);
		sl_job_destroy(job);
	}
}

/*
 * Tumbling 10, B = 0, join at parallelism 1.
 *   L: l1 (k1, ts 5), lh (k9, ts 26) -> wm 25; then, gated, l2 (k1, ts 8).
 *   R: r1 (k1, ts 7), rh (k9, ts 25) -> wm 24; end.
 * [0,10) of key 1 fires (l1 x r1 at 9) once the join's wm reaches 9; the
 * gate waits for that pair, so l2 arrives with 9 <= wm <= 25 (L has not
 * ended: its wm 25 bounds the minimum).
 *  - lateness 0: [0,10) is late (9 <= wm): l2 is skipped, and 8 <= wm, so
 *    it is counted; the window was dropped with its firing (buffers: lh
 *    and rh only, 1 and 1, checked at the gate).
 *  - lateness 20: [0,10) lives until 29 > wm: l2 joins it and fires it at
 *    once with the whole cross product: l1 x r1 again and l2 x r1.
 * End: [20,30) of key 9, lh x rh at 29.
 */
static void window_late_case(int64_t lateness)
{
	static const struct in le[] = { { 1, 5, 1 }, { 9, 26, 2 }, { 1, 8, 3 } };
	static const struct in re[] = { { 1, 7, 101 }, { 9, 25, 102 } };
	struct tup want0[] = { { 1, 1, 101, 9 }, { 9, 2, 102, 29 } };
	struct tup want20[] = {
		{ 1, 1, 101, 9 }, { 1, 1, 101, 9 }, { 1, 3, 101, 9 }, { 9, 2, 102, 29 }
	};
	struct sl_window_spec spec = { .kind = SL_WINDOW_TUMBLING,
				       .size = 10,
				       .allowed_lateness = lateness };
	struct arr_conf ca = { .evs = le, .n = 3, .kind = SRC_LFT, .per_poll = 1 };
	struct arr_conf cb = { .evs = re, .n = 2, .kind = SRC_RGT, .per_poll = 1 };
	struct gate ga = { .at = 2, .pair = { 1, 1, 101, 9 }, .bl = -1, .br = -1 };
	struct sl_stream *sl, *sr, *j;
	struct sl_job *job;
	struct tups out;
	uint64_t bad, late = 99;

	if (lateness == 0)
		ga.bl = ga.br = 1;
	tups_init(&out);
	reset_pairs();
	CU_ASSERT_FATAL(sl_job_create("wj-late", &job) == 0);
	ga.job = job;
	ga.deadline = now_s() + GATE_GIVE_UP_S;
	ca.ready = gate_ready, ca.arg = &ga;
	sources(job, &ca, &cb, 0, 0, &sl, &sr);
	j = sl_window_join(sl, sr, "j", &spec, wj_fn, NULL, &jout_type);
	sl_sink(j, "out", &tup_sink, &out);
	CU_ASSERT_EQUAL_FATAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
	CU_ASSERT_FALSE(atomic_load(&ga.gave_up));
	CU_ASSERT_EQUAL(sl_job_op_counters(job, "j", &bad, &late), 0);
	if (lateness == 0) {
		CU_ASSERT_EQUAL(late, 1);
		check_same("window late, lateness 0", out.t, out.n, want0, 2);
	} else {
		CU_ASSERT_EQUAL(late, 0);
		check_same("window late, lateness 20", out.t, out.n, want20, 4);
	}
	sl_job_destroy(job);
	tups_fini(&out);
}

static void test_window_late(void)
{
	window_late_case(0);
	window_late_case(20);
}

/*
 * Timestamps at the ends of int64 (UBSan fails this test on an
 * overflow): sliding 10/5, offset 3, B = 0 on both sides.
 *   MIN+1 (L) and MIN+2 (R): one window each, [MIN+1, MIN+11) (the older
 *   start MIN-4 does not exist): joined at MIN+10.
 *   -5 (L) and -4 (R): [-12,-2) and [-7,3), joined at -3 and at 2.
 *   MAX-1 on both sides: every window ends after INT64_MAX, skipped, and
 *   not late (MAX-1 <= watermark is false): no output, no count.
 */
static void test_window_extremes(void)
{
	static const struct in le[] = { { 1, INT64_MIN + 1, 1 },
					{ 1, -5, 2 },
					{ 1, INT64_MAX - 1, 3 } };
	static const struct in re[] = { { 1, INT64_MIN + 2, 101 },
					{ 1, -4, 102 },
					{ 1, INT64_MAX - 1, 103 } };
	struct tup want[] = { { 1, 1, 101, INT64_MIN + 10 }, { 1, 2, 102, -3 }, { 1, 2, 102, 2 } };
	struct sl_window_spec spec = {
		.kind = SL_WINDOW_SLIDING, .size = 10, .slide = 5, .offset = 3
	};
	struct arr_conf ca = { .evs = le, .n = 3, .kind = SRC_LFT, .per_poll = 1 };
	struct arr_conf cb = { .evs = re, .n = 3, .kind = SRC_RGT, .per_poll = 1 };
	struct sl_stream *sl, *sr;
	struct sl_job *job;
	struct tups out;
	uint64_t bad, late = 99;

	tups_init(&out);
	CU_ASSERT_FATAL(sl_job_create("wj-extremes", &job) == 0);
	sources(job, &ca, &cb, 0, 0, &sl, &sr);
	sl_sink(sl_window_join(sl, sr, "j", &spec, wj_fn, NULL, &jout_type), "out", &tup_sink,
		&out);
	CU_ASSERT_EQUAL_FATAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
	CU_ASSERT_EQUAL(sl_job_op_counters(job, "j", &bad, &late), 0);
	CU_ASSERT_EQUAL(late, 0);
	check_same("window join extremes", out.t, out.n, want, 3);
	sl_job_destroy(job);
	tups_fini(&out);
}

/* ------------------------------------------------------------ strings */

/*
 * Both sides carry a string; the join reads the buffered copies (the
 * input batches are long gone when a window fires, or when a right
 * element meets a buffered left one) and copies both into its output.
 */
static void test_strings(void)
{
	static struct in l[NREC], r[NREC];
	static struct tup want[NREC * NREC];
	struct sl_window_spec spec = { .kind = SL_WINDOW_TUMBLING, .size = 10 };
	struct sl_interval_join_spec ispec = { -4, 4, false, false };

	for (int kind = 0; kind < 2; kind++) {
		struct arr_conf ca = { .evs = l, .n = NREC, .kind = SRC_SEL_L };
		struct arr_conf cb = { .evs = r, .n = NREC, .kind = SRC_SEL_R, .per_poll = 4 };
		int64_t ba = gen(l, NREC, 0, 3, 3, 5, 1000);
		int64_t bb = gen(r, NREC, 0, 3, 3, 5, 5000);
		struct sl_stream *sl, *sr, *j;
		struct sl_job *job;
		struct tups out;
		size_t nwant;

		tups_init(&out);
		CU_ASSERT_FATAL(sl_job_create("strings", &job) == 0);
		set_opt(job, "parallelism", 2);
		set_opt(job, "batch-size", 16);
		sources(job, &ca, &cb, ba, bb, &sl, &sr);
		if (kind == 0)
			j = sl_window_join(sl, sr, "j", &spec, wj_str_fn, NULL, &sout_type);
		else
			j = sl_interval_join(sl, sr, "j", &ispec, ij_str_fn, NULL, &sout_type);
		sl_sink(j, "out", &str_sink, &out);
		CU_ASSERT_EQUAL_FATAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
		CU_ASSERT_EQUAL(out.bad, 0);
		nwant = kind == 0 ? ref_fixed(l, NREC, r, NREC, &spec, want)
				  : ref_interval(l, NREC, r, NREC, &ispec, want);
		check_same(kind == 0 ? "window join, strings" : "interval join, strings", out.t,
			   out.n, want, nwant);
		sl_job_destroy(job);
		tups_fini(&out);
	}
}

/* --------------------------------------------------- errors and plan */

/* Build L and R (unkeyed), apply @build, validate: expect -EINVAL naming @name and @words. */
static void expect_error(struct sl_stream *(*build)(struct sl_stream *, struct sl_stream *),
			 const char *name, const char *words)
{
	static struct in one[] = { { 1, 1, 1 } };
	struct arr_conf ca = { .evs = one, .n = 1, .kind = SRC_LFT };
	struct arr_conf cb = { .evs = one, .n = 1, .kind = SRC_RGT };
	struct sl_job *job;
	struct sl_stream *sa, *sb, *j;

	CU_ASSERT_FATAL(sl_job_create("bad", &job) == 0);
	sa = sl_source(job, "L", &arr_ops, &ca, &lft_type);
	sb = sl_source(job, "R", &arr_ops, &cb, &rgt_type);
	j = build(sa, sb);
	CU_ASSERT_PTR_NOT_NULL(j);
	sl_sink(j, "out", &tup_sink, NULL);
	errbuf[0] = '\0';
	CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, name));
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, words));
	if (strstr(errbuf, name) == NULL || strstr(errbuf, words) == NULL)
		printf("\nunexpected message: %s\n", errbuf);
	CU_ASSERT_EQUAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), -EINVAL);
	sl_job_destroy(job);
}

static const struct sl_window_spec tumble10 = { .kind = SL_WINDOW_TUMBLING, .size = 10 };

static struct sl_stream *b_unkeyed_left(struct sl_stream *a, struct sl_stream *b)
{
	return sl_window_join(a, sl_key_by(b, key_rgt), "wj1", &tumble10, wj_fn, NULL, &jout_type);
}

static struct sl_stream *b_unkeyed_right(struct sl_stream *a, struct sl_stream *b)
{
	struct sl_interval_join_spec s = { 0, 1, false, false };

	return sl_interval_join(sl_key_by(a, key_lft), sl_rebalance(b), "ij1", &s, ij_fn, NULL,
				&jout_type);
}

static struct sl_stream *b_lower_above_upper(struct sl_stream *a, struct sl_stream *b)
{
	struct sl_interval_join_spec s = { 5, 4, false, false };

	return sl_interval_join(sl_key_by(a, key_lft), sl_key_by(b, key_rgt), "ij2", &s, ij_fn,
				NULL, &jout_type);
}

static struct sl_stream *b_key_types(struct sl_stream *a, struct sl_stream *b)
{
	return sl_window_join(sl_key_by(a, key_lft), sl_key_by(b, key_rgt_tag), "wj3", &tumble10,
			      wj_fn, NULL, &jout_type);
}

static struct sl_stream *b_key_types_ij(struct sl_stream *a, struct sl_stream *b)
{
	struct sl_interval_join_spec s = { 0, 1, false, false };

	return sl_interval_join(sl_key_by(a, key_lft), sl_key_by(b, key_rgt_tag), "ij3", &s, ij_fn,
				NULL, &jout_type);
}

static struct sl_stream *b_no_fn(struct sl_stream *a, struct sl_stream *b)
{
	return sl_window_join(sl_key_by(a, key_lft), sl_key_by(b, key_rgt), "wj4", &tumble10, NULL,
			      NULL, &jout_type);
}

static struct sl_stream *b_bad_spec(struct sl_stream *a, struct sl_stream *b)
{
	struct sl_window_spec s = { .kind = SL_WINDOW_SESSION, .gap = 0 };

	return sl_window_join(sl_key_by(a, key_lft), sl_key_by(b, key_rgt), "wj5", &s, wj_fn, NULL,
			      &jout_type);
}

static struct sl_stream *b_no_type(struct sl_stream *a, struct sl_stream *b)
{
	struct sl_interval_join_spec s = { 0, 1, false, false };

	return sl_interval_join(sl_key_by(a, key_lft), sl_key_by(b, key_rgt), "ij6", &s, ij_fn,
				NULL, NULL);
}

static void test_errors(void)
{
	expect_error(b_unkeyed_left, "'wj1'", "left input 'L' is not keyed");
	expect_error(b_unkeyed_right, "'ij1'", "right input 'R' is not keyed");
	expect_error(b_lower_above_upper, "'ij2'", "lower bound 5 is above upper bound 4");
	expect_error(b_key_types, "'wj3'", "keys of its inputs differ");
	expect_error(b_key_types_ij, "'ij3'", "keys of its inputs differ");
	expect_error(b_no_fn, "'wj4'", "join function");
	expect_error(b_bad_spec, "'wj5'", "gap > 0");
	expect_error(b_no_type, "'ij6'", "output type");
	/* NULL streams propagate; unknown operators are reported. */
	CU_ASSERT_PTR_NULL(sl_window_join(NULL, NULL, "x", &tumble10, wj_fn, NULL, &jout_type));
	CU_ASSERT_EQUAL(sl_join_buffered(NULL, "j", NULL, NULL), -EINVAL);
}

/* The plan shows the join heading its task with both inputs, and never chained to them. */
static void test_plan(void)
{
	static struct in one[] = { { 1, 1, 1 } };
	struct arr_conf ca = { .evs = one, .n = 1, .kind = SRC_LFT };
	struct arr_conf cb = { .evs = one, .n = 1, .kind = SRC_RGT };
	struct sl_interval_join_spec s = { 0, 1, false, false };
	struct sl_stream *sl, *sr, *j;
	struct sl_job *job;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	uint64_t x;

	CU_ASSERT_FATAL(sl_job_create("plan", &job) == 0);
	sources(job, &ca, &cb, 0, 0, &sl, &sr);
	j = sl_interval_join(sl, sr, "thejoin", &s, ij_fn, NULL, &jout_type);
	sl_sink(j, "out", &tup_sink, NULL);
	f = open_memstream(&text, &len);
	CU_ASSERT_FATAL(f != NULL);
	CU_ASSERT_EQUAL(sl_job_plan_print(job, NULL, f, SL_PLAN_TEXT, errbuf, sizeof(errbuf)), 0);
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL(
	    strstr(text, "task 2 (parallelism 1): thejoin[interval_join] -> out"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<- left input: task 0 (L) hash"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<- right input: task 1 (R) hash"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "-> task 2 (thejoin) hash (left input)"));
	if (strstr(text, "<- right input") == NULL)
		printf("\n%s\n", text);
	free(text);
	text = NULL;
	f = open_memstream(&text, &len);
	CU_ASSERT_FATAL(f != NULL);
	CU_ASSERT_EQUAL(sl_job_plan_print(job, NULL, f, SL_PLAN_JSON, errbuf, sizeof(errbuf)), 0);
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"inputs\":[{\"from_task\":0,\"side\":\"left\"},"
					    "{\"from_task\":1,\"side\":\"right\"}]"));
	free(text);
	CU_ASSERT_EQUAL(sl_join_buffered(job, "thejoin", &x, NULL), 0);
	CU_ASSERT_EQUAL(sl_join_buffered(job, "L", &x, NULL), -ENOENT);
	sl_job_destroy(job);
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "window join: tumbling vs reference, p 1 and 2", test_window_tumbling },
		{ "window join: sliding vs reference, p 1 and 2", test_window_sliding },
		{ "window join: session (merging across sides) vs reference, p 1 and 2",
		  test_window_session },
		{ "window join: late elements dropped and counted; allowed lateness re-fires",
		  test_window_late },
		{ "interval join: inclusive bounds vs reference, p 1 and 2",
		  test_interval_inclusive },
		{ "interval join: exclusive bounds vs reference", test_interval_exclusive },
		{ "interval join: negative and positive-only bounds vs reference",
		  test_interval_negative },
		{ "interval join: late dropped and counted, state dropped past the watermark",
		  test_interval_late_and_cleanup },
		{ "window join: timestamps at the ends of int64", test_window_extremes },
		{ "joins: late side outputs, one per input, of its type",
		  test_join_side_output_types },
		{ "joins: buffered copies keep their strings", test_strings },
		{ "joins: validation errors name the operator", test_errors },
		{ "joins: plan shows both inputs", test_plan },
		CU_TEST_INFO_NULL,
	};
	int rc;

	tups_init(&pairs);
	rc = sl_test_main("join", tests);
	tups_fini(&pairs);
	return rc;
}
