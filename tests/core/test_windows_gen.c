/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_windows_gen.c — the general window operator (sl_window()):
 * assigners, triggers, evictors and window functions, one test per rule
 * of SEMANTICS.md's "Windows" section that it implements, named after
 * the rule.
 *
 * Every test runs real jobs with sl_job_run(): an array source of (key,
 * ts, val) records with a per-record watermark strategy (every = 1, so
 * each record is judged against the watermark of the records before it),
 * sl_key_by(), sl_window() and a sink that writes each result as a word
 * "key:[start,end)=count/sum{what}@ts" on a tape. Expected tapes are
 * worked out by hand in the comments (or, for the determinism test, by a
 * brute-force reference in this file), never by the code under test.
 *
 * Threads: jobs run on the runtime's workers; tapes and counters are
 * shared with them under a mutex or atomically.
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

struct ev {
	int64_t key, val;
};
static const struct sl_type ev_type = SL_TYPE(struct ev);

/* One window result; @what is free text (the contents, a firing number). */
struct wout {
	int64_t key, start, end, count, sum;
	char what[64];
};
static const struct sl_type wout_type = SL_TYPE(struct wout);

struct in {
	int64_t key, ts, val;
};

static void key_of_ev(const void *elem, const struct sl_batch *src, struct sl_key *out)
{
	out->ptr = &((const struct ev *)elem)->key;
	out->len = sizeof(int64_t);
}

/* --------------------------------------------------------------- tapes */

struct tape {
	pthread_mutex_t lock;
	char text[1 << 17];
	size_t len, n;
};

static void tape_init(struct tape *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
}

static size_t tape_count(struct tape *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->n;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static void fmt_time(char *buf, size_t len, int64_t t)
{
	if (t == INT64_MIN)
		snprintf(buf, len, "-inf");
	else if (t == INT64_MAX)
		snprintf(buf, len, "+inf");
	else
		snprintf(buf, len, "%" PRId64, t);
}

static int tape_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	*state = arg;
	return 0;
}

static int tape_write_wout(void *state, const struct sl_batch *b)
{
	struct tape *t = state;

	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < b->n; i++) {
		const struct wout *o = sl_batch_elem(b, i);
		char s[24], e[24], ts[24];
		int k;

		fmt_time(s, sizeof(s), o->start);
		fmt_time(e, sizeof(e), o->end);
		fmt_time(ts, sizeof(ts), b->ts[i]);
		k = snprintf(t->text + t->len, sizeof(t->text) - t->len,
			     " %" PRId64 ":[%s,%s)=%" PRId64 "/%" PRId64 "%s%s%s@%s", o->key, s, e,
			     o->count, o->sum, o->what[0] ? "{" : "", o->what,
			     o->what[0] ? "}" : "", ts);
		if (k > 0 && t->len + (size_t)k < sizeof(t->text))
			t->len += (size_t)k;
		t->n++;
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* Input elements (the late side output; reduce outputs): "key:val@ts". */
static int tape_write_ev(void *state, const struct sl_batch *b)
{
	struct tape *t = state;

	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < b->n; i++) {
		const struct ev *e = sl_batch_elem(b, i);
		char ts[24];
		int k;

		fmt_time(ts, sizeof(ts), b->ts[i]);
		k = snprintf(t->text + t->len, sizeof(t->text) - t->len,
			     " %" PRId64 ":%" PRId64 "@%s", e->key, e->val, ts);
		if (k > 0 && t->len + (size_t)k < sizeof(t->text))
			t->len += (size_t)k;
		t->n++;
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static int tape_finish(void *state)
{
	return 0;
}

static void tape_close(void *state)
{
}

static const struct sl_sink_ops wout_sink = {
	.open = tape_open, .write = tape_write_wout, .finish = tape_finish, .close = tape_close
};
static const struct sl_sink_ops ev_sink = {
	.open = tape_open, .write = tape_write_ev, .finish = tape_finish, .close = tape_close
};

/* ------------------------------------------------------- array source */

/* The array source (test_sources.h) emits element {key, val} with timestamp ts. */
#include "test_sources.h"

static int arr_fill(const struct arr_conf *c, const struct in *r, struct sl_batch *out, uint32_t n)
{
	struct ev *e = sl_batch_elem(out, n);

	(void)c;
	e->key = r->key;
	e->val = r->val;
	return 0;
}

/* ----------------------------------------------------- window functions */

/* Count/sum aggregate over ev.val; adds and creates counted. */
struct acc {
	int64_t count, sum;
};

static atomic_long agg_adds, agg_creates, clears;

static void acc_create(void *acc, void *arg)
{
	memset(acc, 0, sizeof(struct acc));
	atomic_fetch_add(&agg_creates, 1);
}

static void acc_add(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg)
{
	struct acc *a = acc;

	a->count++;
	a->sum += ((const struct ev *)elem)->val;
	atomic_fetch_add(&agg_adds, 1);
}

static void acc_merge(void *dst, const void *src, void *arg)
{
	struct acc *d = dst;
	const struct acc *s = src;

	d->count += s->count;
	d->sum += s->sum;
}

static int64_t key_int(const struct sl_key *k)
{
	int64_t v = 0;

	if (k->len == sizeof(v))
		memcpy(&v, k->ptr, sizeof(v));
	return v;
}

static int acc_result(const struct sl_window *w, const struct sl_key *key, const void *acc,
		      struct sl_collector *out, void *arg)
{
	const struct acc *a = acc;
	struct wout o = { key_int(key), w->start, w->end, a->count, a->sum, "" };

	return sl_emit(out, &o, sl_window_max_ts(w), NULL);
}

static const struct sl_aggregate count_sum = {
	.acc_size = sizeof(struct acc),
	.create = acc_create,
	.add = acc_add,
	.merge = acc_merge,
	.result = acc_result,
};

/* What proc_list adds to what. */
enum { SHOW_VALS = 1, SHOW_WM = 2, SHOW_FIRING = 4 };

/*
 * Process: count, sum and the values in contents order; with SHOW_WM the
 * watermark at firing, with SHOW_FIRING the firing number kept in the
 * per-window state.
 */
static int proc_list(const struct sl_window_ctx *ctx, const struct sl_batch *contents,
		     struct sl_collector *out, void *arg)
{
	int flags = (int)(intptr_t)arg;
	struct wout o = {
		key_int(&ctx->key), ctx->window.start, ctx->window.end, contents->n, 0, ""
	};
	size_t len = 0;

	for (uint32_t i = 0; i < contents->n; i++) {
		const struct ev *e = sl_batch_elem(contents, i);

		o.sum += e->val;
		if (flags & SHOW_VALS)
			len += (size_t)snprintf(o.what + len, sizeof(o.what) - len, "%s%" PRId64,
						i ? "," : "", e->val);
	}
	if (flags & SHOW_WM)
		len += (size_t)snprintf(o.what + len, sizeof(o.what) - len, "|wm=%" PRId64,
					ctx->watermark);
	if ((flags & SHOW_FIRING) && ctx->state != NULL)
		len += (size_t)snprintf(o.what + len, sizeof(o.what) - len, "#%" PRId64,
					++*(int64_t *)ctx->state);
	/* Any timestamp: the operator stamps max_ts. */
	return sl_emit(out, &o, 12345, NULL);
}

static void count_clear(const struct sl_window_ctx *ctx, void *arg)
{
	atomic_fetch_add(&clears, 1);
}

/* ------------------------------------------------------------- one job */

struct run_spec {
	const struct in *evs;
	size_t n;
	int64_t bound; /* per-record watermarks with this out-of-orderness */
	struct sl_window_conf conf;
	const struct sl_type *out_type; /* NULL: wout */
	bool side;			/* connect the late side output */
	unsigned p;			/* window parallelism, 0: 1 */
	uint32_t batch;			/* batch size, 0: default */
	const struct sl_platform *platform;
	bool (*ready)(size_t next, void *arg);
	void *ready_arg;
	bool busy; /* idle = busy */
};

struct outcome {
	struct tape out, late;
	uint64_t dropped;
	int rc;
};

static void set_opt(struct sl_job *job, const char *key, const char *v)
{
	CU_ASSERT_FATAL(sl_job_set(job, key, v, errbuf, sizeof(errbuf)) == 0);
}

/* Run @r; outcome in @o (tapes initialised here). */
static void run(const struct run_spec *r, struct outcome *o)
{
	struct arr_conf src = { .evs = r->evs, .n = r->n, .ready = r->ready, .arg = r->ready_arg };
	struct sl_watermark_strategy ws = { .out_of_orderness_ms = r->bound, .every = 1 };
	const struct sl_type *ot = r->out_type ? r->out_type : &wout_type;
	struct sl_job *job;
	struct sl_stream *s, *w;
	char buf[16];

	tape_init(&o->out);
	tape_init(&o->late);
	o->dropped = UINT64_MAX;
	CU_ASSERT_FATAL(sl_job_create("windows-gen", &job) == 0);
	snprintf(buf, sizeof(buf), "%u", r->p ? r->p : 1);
	set_opt(job, "parallelism", buf);
	if (r->batch) {
		snprintf(buf, sizeof(buf), "%u", r->batch);
		set_opt(job, "batch-size", buf);
	}
	if (r->busy)
		set_opt(job, "idle", "busy");
	s = sl_set_parallelism(sl_source(job, "src", &arr_ops, &src, &ev_type), 1);
	s = sl_assign_watermarks(s, &ws);
	w = sl_window(sl_key_by(s, key_of_ev), "w", &r->conf, ot);
	sl_sink(w, "out", ot == &wout_type ? &wout_sink : &ev_sink, &o->out);
	if (r->side)
		sl_sink(sl_side_output(w, 0, &ev_type), "late", &ev_sink, &o->late);
	errbuf[0] = '\0';
	o->rc = sl_job_run(job, r->platform, errbuf, sizeof(errbuf));
	CU_ASSERT_EQUAL(sl_job_op_counters(job, "w", NULL, &o->dropped), 0);
	sl_job_destroy(job);
}

/* String equality that shows both sides when it fails. */
#define ASSERT_STR(got, want)                                                                  \
	do {                                                                                   \
		const char *g_ = (got), *w_ = (want);                                          \
		if (strcmp(g_, w_) != 0)                                                       \
			fprintf(stderr, "\n    %s:%d: %s\n      got: '%s'\n     want: '%s'\n", \
				__FILE__, __LINE__, #got, g_, w_);                             \
		CU_ASSERT_STRING_EQUAL(g_, w_);                                                \
	} while (0)

/* Run @r and check the main output (in order) and that it succeeded. */
static void expect(const struct run_spec *r, const char *want)
{
	struct outcome o;

	run(r, &o);
	if (o.rc != 0)
		fprintf(stderr, "\n    sl_job_run: %d %s\n", o.rc, errbuf);
	CU_ASSERT_EQUAL(o.rc, 0);
	ASSERT_STR(o.out.text, want);
}

#define ARR(a) (a), (sizeof(a) / sizeof((a)[0]))

static struct sl_window_conf proc_conf(struct sl_window_assigner as, int flags)
{
	return (struct sl_window_conf){ .assigner = as,
					.process = proc_list,
					.arg = (void *)(intptr_t)flags };
}

/* ================================================================ rules */

/*
 * Global windows never end: one window per key, [-inf, +inf), max
 * timestamp +inf. Its default trigger never fires, not even at the final
 * watermark: no output at all. With count(2) (not purging) it fires on
 * the 2nd and 4th element with everything so far; the 5th never fires.
 * Keys are separate windows.
 */
static void test_global_never_ends(void)
{
	static const struct in evs[] = { { 1, 1, 1 }, { 1, 2, 2 }, { 2, 3, 10 },
					 { 1, 3, 3 }, { 1, 4, 4 }, { 1, 5, 5 } };
	struct run_spec r = { ARR(evs), .bound = 0 };

	r.conf = proc_conf(sl_assigner_global(), SHOW_VALS);
	expect(&r, "");
	r.conf.trigger = sl_trigger_count(2);
	expect(&r, " 1:[-inf,+inf)=2/3{1,2}@+inf 1:[-inf,+inf)=4/10{1,2,3,4}@+inf");
}

/*
 * count(3) = global + purging count(3): fires on every 3rd element of a
 * key with exactly those 3 (purged after), incrementally aggregated:
 * values 1..7 give 1+2+3 = 6 and 4+5+6 = 15; 7 never fires.
 */
static void test_count_window(void)
{
	static const struct in evs[] = { { 1, 1, 1 }, { 1, 2, 2 }, { 1, 3, 3 }, { 1, 4, 4 },
					 { 1, 5, 5 }, { 1, 6, 6 }, { 1, 7, 7 } };
	struct run_spec r = { ARR(evs), .bound = 0 };

	r.conf.aggregate = &count_sum;
	sl_window_conf_count(&r.conf, 3, 0);
	CU_ASSERT_EQUAL(r.conf.assigner.kind, SL_ASSIGNER_GLOBAL);
	CU_ASSERT(r.conf.trigger.kind == SL_TRIGGER_KIND_COUNT && r.conf.trigger.purging);
	expect(&r, " 1:[-inf,+inf)=3/6@+inf 1:[-inf,+inf)=3/15@+inf");
}

/*
 * count(3, 2) = global + count(2) trigger + count(3) evictor (before):
 * fires on the 2nd element: {1,2}; 4th: {1,2,3,4} -> last 3 {2,3,4};
 * 6th: {2,3,4,5,6} (the evicted stay evicted) -> {4,5,6}; 7 never.
 */
static void test_count_window_slide(void)
{
	static const struct in evs[] = { { 1, 1, 1 }, { 1, 2, 2 }, { 1, 3, 3 }, { 1, 4, 4 },
					 { 1, 5, 5 }, { 1, 6, 6 }, { 1, 7, 7 } };
	struct run_spec r = { ARR(evs), .bound = 0 };

	r.conf = proc_conf(sl_assigner_global(), SHOW_VALS);
	sl_window_conf_count(&r.conf, 3, 2);
	CU_ASSERT_EQUAL(r.conf.evictor.kind, SL_EVICTOR_COUNT);
	expect(&r, " 1:[-inf,+inf)=2/3{1,2}@+inf 1:[-inf,+inf)=3/9{2,3,4}@+inf"
		   " 1:[-inf,+inf)=3/15{4,5,6}@+inf");
}

/* A custom trigger that returns what the element's val says: val % 10 (or 9, bad). */
static int said_on_element(struct sl_trigger_ctx *c, const void *elem, int64_t ts,
			   const struct sl_batch *src, void *arg)
{
	return (int)(((const struct ev *)elem)->val % 10);
}

static const struct sl_trigger_ops said_ops = { .on_element = said_on_element };

/*
 * The four results, on a global window with the values as contents:
 *   10 C {10};  21 F emit {10,21};  30 C;  42 P (contents dropped, no
 *   emit);  50 C {50};  63 FP emit {50,63} then empty;  71 F emit {71}.
 * A result that is none of them (9) fails the job with a sentence.
 */
static void test_trigger_results(void)
{
	static const struct in evs[] = { { 1, 1, 10 }, { 1, 2, 21 }, { 1, 3, 30 }, { 1, 4, 42 },
					 { 1, 5, 50 }, { 1, 6, 63 }, { 1, 7, 71 } };
	static const struct in bad[] = { { 1, 1, 19 } };
	struct run_spec r = { ARR(evs), .bound = 0 };
	struct outcome o;

	r.conf = proc_conf(sl_assigner_global(), SHOW_VALS);
	r.conf.trigger = sl_trigger_custom(&said_ops, NULL);
	expect(&r, " 1:[-inf,+inf)=2/31{10,21}@+inf 1:[-inf,+inf)=2/113{50,63}@+inf"
		   " 1:[-inf,+inf)=1/71{71}@+inf");
	r.evs = bad;
	r.n = 1;
	run(&r, &o);
	CU_ASSERT_EQUAL(o.rc, -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "'w'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "the trigger returned 9"));
}

/*
 * Tumbling 10, B = 0. Default: [0,10) fires when the watermark (24,
 * after ts 25) passes 9 with {1,2,3}; [20,30) at the end. With count(2)
 * instead: [0,10) fires on its 2nd element {1,2} only; no event-time
 * firing (the default's timer is never registered); the cleanup at 9
 * drops {3}; [20,30) has one element: never fires.
 */
static void test_trigger_replaces_default(void)
{
	static const struct in evs[] = { { 1, 1, 1 }, { 1, 2, 2 }, { 1, 3, 3 }, { 1, 25, 25 } };
	struct run_spec r = { ARR(evs), .bound = 0 };

	r.conf.assigner = sl_assigner_tumbling(10, 0);
	r.conf.aggregate = &count_sum;
	expect(&r, " 1:[0,10)=3/6@9 1:[20,30)=1/25@29");
	r.conf.trigger = sl_trigger_count(2);
	expect(&r, " 1:[0,10)=2/3@9");
}

/*
 * Tumbling 10 with count/sum over ts 1, 2, 3 (vals 1, 2, 3). Without an
 * evictor every element is added on arrival (3 adds, 1 create), result
 * 3/6. With a count(2) evictor the contents are a list: nothing is added
 * until the window fires, then the 2 kept ({2,3}) are: 2 adds, 2/5.
 * A reduce (sum of val into the first element) behaves the same: 5.
 */
static int sum_val(void *acc, const void *in, void *arg)
{
	((struct ev *)acc)->val += ((const struct ev *)in)->val;
	return 0;
}

static void test_evictor_disables_preaggregation(void)
{
	static const struct in evs[] = { { 1, 1, 1 }, { 1, 2, 2 }, { 1, 3, 3 } };
	struct run_spec r = { ARR(evs), .bound = 0 };

	r.conf.assigner = sl_assigner_tumbling(10, 0);
	r.conf.aggregate = &count_sum;
	atomic_store(&agg_adds, 0);
	atomic_store(&agg_creates, 0);
	expect(&r, " 1:[0,10)=3/6@9");
	CU_ASSERT_EQUAL(atomic_load(&agg_adds), 3);
	CU_ASSERT_EQUAL(atomic_load(&agg_creates), 1);
	atomic_store(&agg_adds, 0);
	r.conf.evictor = sl_evictor_count(2, false);
	expect(&r, " 1:[0,10)=2/5@9");
	CU_ASSERT_EQUAL(atomic_load(&agg_adds), 2);
	/* reduce: outputs of the input type, stamped max_ts */
	r.conf.aggregate = NULL;
	r.conf.reduce = sum_val;
	r.out_type = &ev_type;
	expect(&r, " 1:5@9");
	r.conf.evictor = (struct sl_evictor){ 0 };
	expect(&r, " 1:6@9");
}

/*
 * Tumbling 10, B = 10: ts 5, 1, 7 (out of order, none late) and key 2's
 * 3; ts 30 moves the watermark to 30 - 10 - 1 = 19, which fires [0,10)
 * of both keys with every element in arrival order and the watermark
 * that fired them; [30,40) fires at the end (watermark +inf). Outputs are
 * stamped max_ts whatever the function passed.
 */
static void test_process_sees_whole_contents(void)
{
	static const struct in evs[] = {
		{ 1, 5, 5 }, { 2, 3, 3 }, { 1, 1, 1 }, { 1, 7, 7 }, { 1, 30, 30 }
	};
	struct run_spec r = { ARR(evs), .bound = 10 };

	r.conf = proc_conf(sl_assigner_tumbling(10, 0), SHOW_VALS | SHOW_WM);
	expect(&r, " 1:[0,10)=3/13{5,1,7|wm=19}@9 2:[0,10)=1/3{3|wm=19}@9"
		   " 1:[30,40)=1/30{30|wm=9223372036854775807}@39");
}

/* Dynamic gap: the element's val. A gap <= 0 fails the job. */
static int64_t gap_of_val(const void *elem, int64_t ts, const struct sl_batch *src, void *arg)
{
	return ((const struct ev *)elem)->val;
}

/*
 * Sessions with the gap = val, B = 100 (nothing late):
 *   ts 0 gap 5 -> [0,5);  ts 10 gap 2 -> [10,12);
 *   ts 4 gap 7 -> [4,11) touches both (4 <= 5; 4 <= 12 and 11 >= 10):
 *   merged [0,12) with vals 5, 2, 7 (contents in order of the windows'
 *   starts, then the new element);  ts 20 gap 1 -> [20,21).
 * All fire at the end. Static gap 5 for contrast: [0,5) and [4,9) merge
 * ([0,9)), [10,15) touches nothing ([0,9) ends at 9 < 10), [20,25).
 */
static void test_session_dynamic_gap(void)
{
	static const struct in evs[] = { { 1, 0, 5 }, { 1, 10, 2 }, { 1, 4, 7 }, { 1, 20, 1 } };
	static const struct in bad[] = { { 1, 0, 5 }, { 1, 10, 0 } };
	struct run_spec r = { ARR(evs), .bound = 100 };
	struct outcome o;

	r.conf = proc_conf(sl_assigner_session_dynamic(gap_of_val, NULL), SHOW_VALS);
	expect(&r, " 1:[0,12)=3/14{5,2,7}@11 1:[20,21)=1/1{1}@20");
	r.conf.assigner = sl_assigner_session(5);
	expect(&r, " 1:[0,9)=2/12{5,7}@8 1:[10,15)=1/2{2}@14 1:[20,25)=1/1{1}@24");
	r.conf.assigner = sl_assigner_session_dynamic(gap_of_val, NULL);
	r.evs = bad;
	r.n = 2;
	run(&r, &o);
	CU_ASSERT_EQUAL(o.rc, -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "returned 0 for an element at 10"));
}

/* ------------------------------------------- processing time, by hand */

struct clock_gate {
	_Atomic int64_t now;
	struct tape *out;
	double t0;
};

static int64_t gate_now(void *ctx)
{
	return atomic_load(&((struct clock_gate *)ctx)->now);
}

static double mono_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * The source emits its three records at clock 0, then at the end of
 * input moves the clock to 9 and waits for one result, then to 100 and
 * waits for a second one (giving up after 60 s: the test then fails on
 * the tape).
 */
static bool gate_ready(size_t next, void *arg)
{
	struct clock_gate *g = arg;
	int64_t now = atomic_load(&g->now);

	if (next < 3)
		return true;
	if (g->t0 == 0)
		g->t0 = mono_s();
	if (mono_s() - g->t0 > 60)
		return true;
	if (now == 0) {
		atomic_store(&g->now, 9);
		return false;
	}
	if (now == 9) {
		if (tape_count(g->out) >= 1)
			atomic_store(&g->now, 100);
		return false;
	}
	return tape_count(g->out) >= 2;
}

/*
 * Tumbling 10 with the processing-time trigger and a controlled clock:
 * ts 1, 2 -> [0,10), ts 15 -> [10,20), all at clock 0: timers at 9 and
 * 19 (max_ts, in processing time); nothing fires (B = 100: no watermark
 * passes 9, so the event-time cleanup does not clear [0,10) first). Clock 9: [0,10) fires
 * {1,2}. Clock 100: [10,20) fires {15}. The final watermark runs the
 * event-time cleanup timers (9, 19), which clear the windows without
 * firing them (the trigger ignores event time): two results in all.
 */
static void test_processing_time_trigger(void)
{
	static const struct in evs[] = { { 1, 1, 1 }, { 1, 2, 2 }, { 1, 15, 15 } };
	struct outcome o;
	struct clock_gate g = { 0 };
	struct sl_platform pf = { .ctx = &g, .now_ms = gate_now };
	struct run_spec r = { ARR(evs),	       .bound = 100, .platform = &pf, .ready = gate_ready,
			      .ready_arg = &g, .busy = true };

	g.out = &o.out;
	r.conf = proc_conf(sl_assigner_tumbling(10, 0), SHOW_VALS);
	r.conf.trigger = sl_trigger_processing_time();
	run(&r, &o);
	CU_ASSERT_EQUAL(o.rc, 0);
	ASSERT_STR(o.out.text, " 1:[0,10)=2/3{1,2}@9 1:[10,20)=1/15{15}@19");
}

/*
 * Continuous event time (interval 30) on tumbling 100, B = 0, vals = ts:
 *   ts 5:   timer at 99; first element: next fire min(0 + 30, 99) = 30.
 *   ts 12:  nothing new.  ts 40: then the watermark 39 fires 30: FIRE
 *           {5,12,40} = 3/57, next 60.
 *   ts 70:  watermark 69 fires 60: 4/127, next 90.
 *   ts 130: [100,200): timer 199, next min(120 + 30, 199) = 150;
 *           watermark 129 fires 90 of [0,100): 4/127, next min(120, 99)
 *           = 99; then 99 (max_ts): FIRE 4/127, and the cleanup.
 *   end:    150: 1/130, next 180; 180: 1/130, next 199; 199: 1/130.
 */
static void test_continuous_event_time_trigger(void)
{
	static const struct in evs[] = {
		{ 1, 5, 5 }, { 1, 12, 12 }, { 1, 40, 40 }, { 1, 70, 70 }, { 1, 130, 130 }
	};
	struct run_spec r = { ARR(evs), .bound = 0 };

	r.conf.assigner = sl_assigner_tumbling(100, 0);
	r.conf.aggregate = &count_sum;
	r.conf.trigger = sl_trigger_continuous_event_time(30);
	expect(&r, " 1:[0,100)=3/57@99 1:[0,100)=4/127@99 1:[0,100)=4/127@99 1:[0,100)=4/127@99"
		   " 1:[100,200)=1/130@199 1:[100,200)=1/130@199 1:[100,200)=1/130@199");
}

/* ------------------------------------- custom trigger: timers and merge */

/* "Count or end": FIRE on every 3rd element, or at max_ts; merge sums the counts. */
static char merge_log[512];
static size_t merge_len;
static atomic_long trigger_clears;

static int coe_element(struct sl_trigger_ctx *c, const void *elem, int64_t ts,
		       const struct sl_batch *src, void *arg)
{
	uint64_t *n = sl_trigger_ctx_state(c);
	const struct sl_window *w = sl_trigger_ctx_window(c);

	if (++*n >= 3) {
		*n = 0;
		return SL_TRIGGER_FIRE;
	}
	if (sl_trigger_register_event_timer(c, sl_window_max_ts(w)) < 0)
		return -ENOMEM;
	return SL_TRIGGER_CONTINUE;
}

static int coe_event(struct sl_trigger_ctx *c, int64_t time, void *arg)
{
	return time == sl_window_max_ts(sl_trigger_ctx_window(c)) ? SL_TRIGGER_FIRE
								  : SL_TRIGGER_CONTINUE;
}

static int coe_merge(struct sl_trigger_ctx *c, void *arg)
{
	uint64_t *n = sl_trigger_ctx_state(c);
	const struct sl_window *w = sl_trigger_ctx_window(c);
	unsigned k = sl_trigger_ctx_merged_count(c);

	for (unsigned i = 0; i < k; i++)
		*n += *(const uint64_t *)sl_trigger_ctx_merged_state(c, i);
	merge_len +=
	    (size_t)snprintf(merge_log + merge_len, sizeof(merge_log) - merge_len,
			     " [%" PRId64 ",%" PRId64 "):%u=%" PRIu64, w->start, w->end, k, *n);
	return sl_trigger_register_event_timer(c, sl_window_max_ts(w)) < 0 ? -ENOMEM : 0;
}

static int coe_clear(struct sl_trigger_ctx *c, void *arg)
{
	atomic_fetch_add(&trigger_clears, 1);
	*(uint64_t *)sl_trigger_ctx_state(c) = 0;
	sl_trigger_delete_event_timer(c, sl_window_max_ts(sl_trigger_ctx_window(c)));
	return 0;
}

static const struct sl_trigger_ops coe_ops = { .state_size = sizeof(uint64_t),
					       .on_element = coe_element,
					       .on_event_time = coe_event,
					       .on_merge = coe_merge,
					       .clear = coe_clear };

/*
 * Sessions, gap 10, B = 100 (the window at parallelism 1: the log is in
 * order), vals = ts:
 *   ts 0  -> [0,10) count 1, timer 9.    ts 30 -> [30,40) count 1, timer 39.
 *   ts 5  -> [5,15) merges [0,10) into [0,15): on_merge sees 1 window,
 *            count 1; clear([0,10)) deletes 9; the element: count 2.
 *   ts 20 -> [20,30) touches [30,40): [20,40), 1 window, count 1 -> 2.
 *   ts 12 -> [12,22) touches both: [0,40), 2 windows, 2 + 2 = 4; the
 *            element makes 5 >= 3: FIRE {0,5,30,20,12} (contents in order
 *            of the merged windows' starts), count 0.
 *   end   -> timer 39 of [0,40): FIRE again; the cleanup clears it.
 * Clears: [0,10), [30,40), [0,15), [20,40) merged away, [0,40) cleaned.
 * A custom trigger without on_merge is refused on sessions.
 */
static void test_custom_trigger_timers_merge(void)
{
	static const struct in evs[] = {
		{ 1, 0, 0 }, { 1, 30, 30 }, { 1, 5, 5 }, { 1, 20, 20 }, { 1, 12, 12 }
	};
	struct run_spec r = { ARR(evs), .bound = 100 };
	struct sl_trigger_ops no_merge = coe_ops;
	struct sl_job *job;
	struct sl_stream *s;

	merge_len = 0;
	merge_log[0] = '\0';
	atomic_store(&trigger_clears, 0);
	r.conf = proc_conf(sl_assigner_session(10), SHOW_VALS);
	r.conf.trigger = sl_trigger_custom(&coe_ops, NULL);
	expect(&r, " 1:[0,40)=5/67{0,5,30,20,12}@39 1:[0,40)=5/67{0,5,30,20,12}@39");
	ASSERT_STR(merge_log, " [0,15):1=1 [20,40):1=1 [0,40):2=4");
	CU_ASSERT_EQUAL(atomic_load(&trigger_clears), 5);

	no_merge.on_merge = NULL;
	r.conf.trigger = sl_trigger_custom(&no_merge, NULL);
	CU_ASSERT_FATAL(sl_job_create("bad", &job) == 0);
	s = sl_source(job, "src", &arr_ops, NULL, &ev_type);
	s = sl_window(sl_key_by(s, key_of_ev), "w", &r.conf, &wout_type);
	sl_sink(s, "out", &wout_sink, NULL);
	CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "window 'w': session windows merge, and the custom "
					      "trigger has no on_merge()"));
	sl_job_destroy(job);
}

/* --------------------------------------------------------------- evictors */

/*
 * Time evictor 10, before: tumbling 100 with ts 1, 50, 45, 58 (B = 100):
 * largest ts 58, cutoff 48, so 1 and 45 go: the function sees {50,58}.
 * After the function, on a global window with count(2) and a time
 * evictor 5: ts 1, 3 -> sees {1,3}, then cutoff 3 - 5: none evicted;
 * ts 10, 12 -> sees {1,3,10,12}, then cutoff 7 evicts 1, 3; ts 20, 21 ->
 * sees {10,12,20,21}.
 */
static void test_time_evictor(void)
{
	static const struct in evs[] = { { 1, 1, 1 }, { 1, 50, 50 }, { 1, 45, 45 }, { 1, 58, 58 } };
	static const struct in evs2[] = { { 1, 1, 1 },	 { 1, 3, 3 },	{ 1, 10, 10 },
					  { 1, 12, 12 }, { 1, 20, 20 }, { 1, 21, 21 } };
	struct run_spec r = { ARR(evs), .bound = 100 };

	r.conf = proc_conf(sl_assigner_tumbling(100, 0), SHOW_VALS);
	r.conf.evictor = sl_evictor_time(10, false);
	expect(&r, " 1:[0,100)=2/108{50,58}@99");
	r.evs = evs2;
	r.n = 6;
	r.conf = proc_conf(sl_assigner_global(), SHOW_VALS);
	r.conf.trigger = sl_trigger_count(2);
	r.conf.evictor = sl_evictor_time(5, true);
	expect(&r, " 1:[-inf,+inf)=2/4{1,3}@+inf 1:[-inf,+inf)=4/26{1,3,10,12}@+inf"
		   " 1:[-inf,+inf)=4/63{10,12,20,21}@+inf");
}

/* Evicts odd values. */
static int evict_odd(const struct sl_window_ctx *ctx, const struct sl_batch *contents, bool *evict,
		     void *arg)
{
	for (uint32_t i = 0; i < contents->n; i++)
		evict[i] = ((const struct ev *)sl_batch_elem(contents, i))->val % 2 != 0;
	return 0;
}

static const struct sl_evictor_ops odd_ops = { .evict_before = evict_odd };

/*
 * A custom evictor removing odd values before the function, on a global
 * window with count(3): 1, 2, 3 -> {1,2,3} -> sees {2}; 4, 5, 6 ->
 * {2,4,5,6} (1 and 3 stay evicted) -> sees {2,4,6}.
 */
static void test_custom_evictor(void)
{
	static const struct in evs[] = { { 1, 1, 1 }, { 1, 2, 2 }, { 1, 3, 3 },
					 { 1, 4, 4 }, { 1, 5, 5 }, { 1, 6, 6 } };
	struct run_spec r = { ARR(evs), .bound = 0 };

	r.conf = proc_conf(sl_assigner_global(), SHOW_VALS);
	r.conf.trigger = sl_trigger_count(3);
	r.conf.evictor = sl_evictor_custom(&odd_ops, NULL);
	expect(&r, " 1:[-inf,+inf)=1/2{2}@+inf 1:[-inf,+inf)=3/12{2,4,6}@+inf");
}

/* ------------------------------------------------- incremental + process */

/* Process after an aggregate: the single element is the accumulator. */
static int proc_acc(const struct sl_window_ctx *ctx, const struct sl_batch *contents,
		    struct sl_collector *out, void *arg)
{
	const struct acc *a = sl_batch_elem(contents, 0);
	struct wout o = {
		key_int(&ctx->key), ctx->window.start, ctx->window.end, a->count, a->sum, ""
	};

	snprintf(o.what, sizeof(o.what), "n=%u", contents->n);
	return sl_emit(out, &o, 0, NULL);
}

/* Process after a reduce: the single element is the reduced one. */
static int proc_reduced(const struct sl_window_ctx *ctx, const struct sl_batch *contents,
			struct sl_collector *out, void *arg)
{
	const struct ev *e = sl_batch_elem(contents, 0);
	struct wout o = {
		key_int(&ctx->key), ctx->window.start, ctx->window.end, contents->n, e->val,
		"reduced"
	};

	return sl_emit(out, &o, 0, NULL);
}

/*
 * Tumbling 10, ts 1, 2, 3 of key 1 and 4 of key 2 (vals = ts): the
 * aggregate folds each element on arrival (4 adds before any firing),
 * then process gets one element, the accumulator, with the window:
 * 1 -> 3/6, 2 -> 1/4. On sessions (gap 3) the accumulators merge: key
 * 1's [1,4), [2,5), [3,6) are one session [1,6). With reduce: sums.
 */
static void test_incremental_process(void)
{
	static const struct in evs[] = { { 1, 1, 1 }, { 1, 2, 2 }, { 1, 3, 3 }, { 2, 4, 4 } };
	struct run_spec r = { ARR(evs), .bound = 0 };

	r.conf.assigner = sl_assigner_tumbling(10, 0);
	r.conf.aggregate = &count_sum;
	r.conf.process = proc_acc;
	atomic_store(&agg_adds, 0);
	expect(&r, " 1:[0,10)=3/6{n=1}@9 2:[0,10)=1/4{n=1}@9");
	CU_ASSERT_EQUAL(atomic_load(&agg_adds), 4);
	r.conf.assigner = sl_assigner_session(3);
	expect(&r, " 1:[1,6)=3/6{n=1}@5 2:[4,7)=1/4{n=1}@6");
	r.conf.aggregate = NULL;
	r.conf.reduce = sum_val;
	r.conf.process = proc_reduced;
	expect(&r, " 1:[1,6)=1/6{reduced}@5 2:[4,7)=1/4{reduced}@6");
}

/* ------------------------------------------------------ lateness, side */

/*
 * Tumbling 10, allowed lateness 5, B = 0; process with the firing number
 * in per-window state, and a clear() counter:
 *   ts 1;  ts 12 (watermark 11 fires [0,10): {1} #1);
 *   ts 3:  [0,10) cleans up at 9 + 5 = 14 > 11: added, and max_ts 9 <=
 *          11 fires it at once: {1,3} #2;
 *   ts 20: watermark 19 fires [10,20): {12} #1, cleans up [0,10) (14);
 *   ts 4:  [0,10) is late (14 <= 19), and 4 + 5 <= 19: a late element;
 *   ts 16: [10,20) not late (24 > 19), 19 <= 19: fires {12,16} #2;
 *   end:   [20,30) {20} #1. Three windows cleared.
 * With the side output connected the late element goes there; without,
 * it is counted in late_records_dropped.
 */
static void test_lateness_and_late_output(void)
{
	static const struct in evs[] = { { 1, 1, 1 },	{ 1, 12, 12 }, { 1, 3, 3 },
					 { 1, 20, 20 }, { 1, 4, 4 },   { 1, 16, 16 } };
	static const char *want = " 1:[0,10)=1/1{1#1}@9 1:[0,10)=2/4{1,3#2}@9"
				  " 1:[10,20)=1/12{12#1}@19 1:[10,20)=2/28{12,16#2}@19"
				  " 1:[20,30)=1/20{20#1}@29";
	struct run_spec r = { ARR(evs), .side = true };
	struct outcome o;

	r.conf = proc_conf(sl_assigner_tumbling(10, 0), SHOW_VALS | SHOW_FIRING);
	r.conf.allowed_lateness = 5;
	r.conf.state_size = sizeof(int64_t);
	r.conf.clear = count_clear;
	atomic_store(&clears, 0);
	run(&r, &o);
	CU_ASSERT_EQUAL(o.rc, 0);
	ASSERT_STR(o.out.text, want);
	ASSERT_STR(o.late.text, " 1:4@4");
	CU_ASSERT_EQUAL(o.dropped, 0);
	CU_ASSERT_EQUAL(atomic_load(&clears), 3);
	r.side = false;
	run(&r, &o);
	CU_ASSERT_EQUAL(o.rc, 0);
	ASSERT_STR(o.out.text, want);
	CU_ASSERT_EQUAL(o.dropped, 1);
}

/*
 * Timestamps at the ends of int64 (UBSan fails this test on an overflow):
 * sliding 10/5, offset 3, aggregate, a watermark per record, B = 0.
 *   MIN+1: grid distance 0 (MIN+1 = 3 mod 5): one window [MIN+1, MIN+11);
 *          the older start MIN-4 does not exist. wm = MIN.
 *   -5:    windows [-7,3) and [-12,-2); wm = -6 fires [MIN+1, MIN+11).
 *   MAX-1: its windows [MAX-4, MAX+6) and [MAX-9, MAX+1) end after
 *          INT64_MAX: not representable, skipped; MAX-1 <= wm is false, so
 *          it is not late either (as in Flink, where the end wraps).
 *          wm = MAX-2 fires [-12,-2) at -3 and [-7,3) at 2.
 *   MAX-20: windows [MAX-24, MAX-14) and [MAX-29, MAX-19) are late
 *          (max timestamps <= MAX-2): dropped and counted.
 */
static void test_extreme_timestamps(void)
{
	static const struct in evs[] = { { 1, INT64_MIN + 1, 1 },
					 { 1, -5, 2 },
					 { 1, INT64_MAX - 1, 4 },
					 { 1, INT64_MAX - 20, 8 } };
	struct run_spec r = { ARR(evs), .bound = 0 };
	struct outcome o;
	char want[256];

	snprintf(want, sizeof(want),
		 " 1:[%" PRId64 ",%" PRId64 ")=1/1@%" PRId64 " 1:[-12,-2)=1/2@-3 1:[-7,3)=1/2@2",
		 INT64_MIN + 1, INT64_MIN + 11, INT64_MIN + 10);
	r.conf.assigner = sl_assigner_sliding(10, 5, 3);
	r.conf.aggregate = &count_sum;
	run(&r, &o);
	CU_ASSERT_EQUAL(o.rc, 0);
	ASSERT_STR(o.out.text, want);
	CU_ASSERT_EQUAL(o.dropped, 1);
}

/* ----------------------------------------------------------- bad configs */

static void test_bad_configs(void)
{
	static const struct sl_trigger_ops empty_trigger = { 0 };
	static const struct sl_evictor_ops empty_evictor = { 0 };
	static const struct sl_aggregate no_merge = { .acc_size = 8,
						      .add = acc_add,
						      .result = acc_result };
	const struct sl_window_assigner tum = sl_assigner_tumbling(10, 0);
	const struct {
		struct sl_window_conf conf;
		const char *msg;
	} cases[] = {
		{ { .process = proc_list }, "no window assigner" },
		{ { .assigner = sl_assigner_tumbling(0, 0), .process = proc_list },
		  "a tumbling window needs a size > 0" },
		{ { .assigner = sl_assigner_sliding(10, 0, 0), .process = proc_list },
		  "a sliding window needs a size and a slide > 0" },
		{ { .assigner = sl_assigner_session(0), .process = proc_list },
		  "a session window needs a gap > 0" },
		{ { .assigner = tum, .allowed_lateness = -1, .process = proc_list },
		  "allowed lateness must be >= 0" },
		{ { .assigner = tum, .trigger = sl_trigger_count(0), .process = proc_list },
		  "a count trigger needs a count > 0" },
		{ { .assigner = tum,
		    .trigger = sl_trigger_continuous_event_time(0),
		    .process = proc_list },
		  "a continuous event-time trigger needs an interval > 0" },
		{ { .assigner = tum,
		    .trigger = sl_trigger_custom(NULL, NULL),
		    .process = proc_list },
		  "a custom trigger needs its ops" },
		{ { .assigner = sl_assigner_session(3),
		    .trigger = sl_trigger_custom(&empty_trigger, NULL),
		    .process = proc_list },
		  "has no on_merge()" },
		{ { .assigner = tum, .evictor = sl_evictor_count(0, false), .process = proc_list },
		  "a count evictor needs a count > 0" },
		{ { .assigner = tum, .evictor = sl_evictor_time(-1, false), .process = proc_list },
		  "a time evictor needs a size >= 0" },
		{ { .assigner = tum,
		    .evictor = sl_evictor_custom(&empty_evictor, NULL),
		    .process = proc_list },
		  "a custom evictor needs evict_before() or evict_after()" },
		{ { .assigner = tum }, "needs exactly one window function" },
		{ { .assigner = tum, .reduce = sum_val, .aggregate = &count_sum },
		  "needs exactly one window function" },
		{ { .assigner = tum,
		    .reduce = sum_val,
		    .aggregate = &count_sum,
		    .process = proc_list },
		  "needs exactly one window function" },
		{ { .assigner = tum, .reduce = sum_val },
		  "a reduce window emits elements of its input type" },
		{ { .assigner = sl_assigner_session(3), .aggregate = &no_merge },
		  "session windows merge, the aggregate needs merge()" },
		{ { .assigner = sl_assigner_session(3), .process = proc_list, .state_size = 8 },
		  "per-window state is for process functions on windows that do not merge" },
		{ { .assigner = tum, .aggregate = &count_sum, .state_size = 8 },
		  "per-window state is for process functions" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sl_job *job;
		struct sl_stream *s;

		CU_ASSERT_FATAL(sl_job_create("bad", &job) == 0);
		s = sl_source(job, "src", &arr_ops, NULL, &ev_type);
		s = sl_window(sl_key_by(s, key_of_ev), "w", &cases[i].conf, &wout_type);
		sl_sink(s, "out", &wout_sink, NULL);
		errbuf[0] = '\0';
		CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
		if (strstr(errbuf, "window 'w': ") == NULL || strstr(errbuf, cases[i].msg) == NULL)
			fprintf(stderr, "\n    case %zu: '%s' lacks '%s'\n", i, errbuf,
				cases[i].msg);
		CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "window 'w': "));
		CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, cases[i].msg));
		sl_job_destroy(job);
	}
	/* The trigger context's functions refuse a NULL context. */
	CU_ASSERT_EQUAL(sl_trigger_register_event_timer(NULL, 1), -EINVAL);
	CU_ASSERT_EQUAL(sl_trigger_register_processing_timer(NULL, 1), -EINVAL);
	CU_ASSERT_EQUAL(sl_trigger_delete_event_timer(NULL, 1), -EINVAL);
	CU_ASSERT_EQUAL(sl_trigger_delete_processing_timer(NULL, 1), -EINVAL);
	CU_ASSERT_PTR_NULL(sl_trigger_ctx_state(NULL));
	CU_ASSERT_PTR_NULL(sl_trigger_ctx_merged_state(NULL, 0));
	/* NULL conf, NULL output type, not keyed, a side output other than 0. */
	{
		struct sl_window_conf ok = proc_conf(sl_assigner_tumbling(10, 0), 0);
		struct sl_job *job;
		struct sl_stream *s;

		CU_ASSERT_FATAL(sl_job_create("bad", &job) == 0);
		s = sl_source(job, "src", &arr_ops, NULL, &ev_type);
		sl_sink(sl_window(sl_key_by(s, key_of_ev), "w", NULL, &wout_type), "o", &wout_sink,
			NULL);
		CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "window 'w': needs a configuration"));
		sl_job_destroy(job);

		CU_ASSERT_FATAL(sl_job_create("bad", &job) == 0);
		s = sl_source(job, "src", &arr_ops, NULL, &ev_type);
		sl_sink(sl_window(sl_key_by(s, key_of_ev), "w", &ok, NULL), "o", &wout_sink, NULL);
		CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "window 'w'"));
		sl_job_destroy(job);

		CU_ASSERT_FATAL(sl_job_create("bad", &job) == 0);
		s = sl_source(job, "src", &arr_ops, NULL, &ev_type);
		sl_sink(sl_window(s, "w", &ok, &wout_type), "o", &wout_sink, NULL);
		CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "'w' (window) needs a keyed stream"));
		sl_job_destroy(job);

		CU_ASSERT_FATAL(sl_job_create("bad", &job) == 0);
		s = sl_source(job, "src", &arr_ops, NULL, &ev_type);
		s = sl_window(sl_key_by(s, key_of_ev), "w", &ok, &wout_type);
		sl_sink(s, "o", &wout_sink, NULL);
		sl_sink(sl_side_output(s, 1, &ev_type), "late", &ev_sink, NULL);
		CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "its only side output is 0"));
		sl_job_destroy(job);
	}
}

/* ---------------------------------------------------------------- strings */

struct sev {
	int64_t key;
	struct sl_str word;
};
static const struct sl_type sev_type = SL_TYPE_STR1(struct sev, word);

static const char *const words[] = { "a", "bb", "ccc", "dddd" };

static int words_poll(void *state, struct sl_batch *out)
{
	size_t *next = state;
	uint32_t n = 0;

	while (n < out->cap && *next < 4) {
		struct sev *e = sl_batch_elem(out, n);

		e->key = 1;
		if (sl_batch_add_str(out, words[*next], (uint32_t)strlen(words[*next]), &e->word) <
		    0)
			return -ENOMEM;
		out->ts[n++] = (int64_t)(*next)++;
	}
	return (int)n | (*next == 4 ? SL_SOURCE_END : 0);
}

static int words_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	*state = arg;
	return 0;
}

static void words_close(void *state)
{
}

static const struct sl_source_ops words_ops = { .open = words_open,
						.poll = words_poll,
						.close = words_close };

static void key_of_sev(const void *elem, const struct sl_batch *src, struct sl_key *out)
{
	out->ptr = &((const struct sev *)elem)->key;
	out->len = sizeof(int64_t);
}

/* Emits every element of the contents, strings and all. */
static int proc_echo(const struct sl_window_ctx *ctx, const struct sl_batch *contents,
		     struct sl_collector *out, void *arg)
{
	int rc = 0;

	for (uint32_t i = 0; i < contents->n && rc == 0; i++)
		rc = sl_emit(out, sl_batch_elem(contents, i), 0, contents);
	return rc;
}

static int tape_write_sev(void *state, const struct sl_batch *b)
{
	struct tape *t = state;

	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < b->n; i++) {
		const struct sev *e = sl_batch_elem(b, i);
		int k = snprintf(t->text + t->len, sizeof(t->text) - t->len, " %" PRId64 ":%.*s",
				 e->key, (int)e->word.len, sl_batch_str(b, e->word));

		if (k > 0 && t->len + (size_t)k < sizeof(t->text))
			t->len += (size_t)k;
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static const struct sl_sink_ops sev_sink = {
	.open = tape_open, .write = tape_write_sev, .finish = tape_finish, .close = tape_close
};

/*
 * Elements with strings are copied with their bytes: count(2, 1) on
 * "a", "bb", "ccc", "dddd" fires on every element with the last two
 * (the evictor compacts the copies): {a}, {a,bb}, {bb,ccc}, {ccc,dddd}.
 */
static void test_strings(void)
{
	struct sl_window_conf conf = { .process = proc_echo };
	struct sl_job *job;
	struct sl_stream *s;
	struct tape t;
	size_t next = 0;

	tape_init(&t);
	sl_window_conf_count(&conf, 2, 1);
	CU_ASSERT_FATAL(sl_job_create("strings", &job) == 0);
	s = sl_source(job, "src", &words_ops, &next, &sev_type);
	s = sl_window(sl_key_by(s, key_of_sev), "w", &conf, &sev_type);
	sl_sink(s, "out", &sev_sink, &t);
	CU_ASSERT_EQUAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
	ASSERT_STR(t.text, " 1:a 1:a 1:bb 1:bb 1:ccc 1:ccc 1:dddd");
	sl_job_destroy(job);
}

/* ------------------------------------------------------------ determinism */

#define DN    3000
#define DKEYS 7

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* @s's words sorted into @out. */
static void sorted_words(const char *s, char *out, size_t len)
{
	char *copy = strdup(s), *save = NULL, *w;
	char **v = calloc(DN * 4 + 1, sizeof(*v));
	size_t n = 0, used = 0;

	CU_ASSERT_FATAL(copy != NULL && v != NULL);
	for (w = strtok_r(copy, " ", &save); w && n < DN * 4; w = strtok_r(NULL, " ", &save))
		v[n++] = w;
	qsort(v, n, sizeof(*v), cmp_str);
	out[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, " %s", v[i]);
	free(v);
	free(copy);
}

/*
 * Random input (7 keys, timestamps rising with disorder up to 30, B =
 * 10): tumbling 50 with process (count/sum) against a brute force that
 * replays the watermark (max ts before the element - 11) and drops the
 * elements whose window's max_ts <= it; and count(5, 2) against a
 * per-key replay (every 2nd element: the sum of the last 5). Window
 * parallelism 1, 2 and 4, batch sizes 1, 7 and 512: the same multiset.
 */
static void test_determinism(void)
{
	static struct in evs[DN];
	static char got[1 << 17], want[1 << 17], tmp[1 << 17];
	static const unsigned ps[] = { 1, 2, 4 };
	static const uint32_t bs[] = { 1, 7, 512 };
	int64_t t = 0, seen = INT64_MIN;
	size_t used = 0;

	for (size_t i = 0; i < DN; i++) {
		t += (int64_t)(rnd() % 4);
		evs[i].key = (int64_t)(rnd() % DKEYS);
		evs[i].ts = t - (int64_t)(rnd() % 31);
		evs[i].val = (int64_t)(rnd() % 100);
	}
	/* Reference 1: tumbling 50, lateness 0. */
	{
		enum { NW = 200 };
		static int64_t cnt[DKEYS][NW], sum[DKEYS][NW];

		memset(cnt, 0, sizeof(cnt));
		memset(sum, 0, sizeof(sum));
		for (size_t i = 0; i < DN; i++) {
			int64_t wm = seen == INT64_MIN ? INT64_MIN : seen - 10 - 1;
			int64_t start = evs[i].ts - ((evs[i].ts % 50) + 50) % 50;
			int64_t k = (start + 100) / 50; /* ts >= -30 */

			if (!(start + 49 <= wm)) {
				CU_ASSERT_FATAL(k >= 0 && k < NW);
				cnt[evs[i].key][k]++;
				sum[evs[i].key][k] += evs[i].val;
			}
			if (evs[i].ts > seen)
				seen = evs[i].ts;
		}
		for (int k = 0; k < DKEYS; k++)
			for (int j = 0; j < NW; j++)
				if (cnt[k][j])
					used += (size_t)snprintf(tmp + used, sizeof(tmp) - used,
								 " %d:[%d,%d)=%" PRId64 "/%" PRId64
								 "@%d",
								 k, j * 50 - 100, j * 50 - 50,
								 cnt[k][j], sum[k][j], j * 50 - 51);
		sorted_words(tmp, want, sizeof(want));
	}
	for (size_t pi = 0; pi < 3; pi++) {
		struct run_spec r = { evs, DN, .bound = 10, .p = ps[pi], .batch = bs[pi] };
		struct outcome o;

		r.conf = proc_conf(sl_assigner_tumbling(50, 0), 0);
		run(&r, &o);
		CU_ASSERT_EQUAL(o.rc, 0);
		sorted_words(o.out.text, got, sizeof(got));
		if (strcmp(got, want) != 0)
			fprintf(stderr,
				"\n    p %u: %zu results, want:\n%.300s\n    got:\n%.300s\n",
				ps[pi], o.out.n, want, got);
		CU_ASSERT_EQUAL(strcmp(got, want), 0);
	}
	/* Reference 2: count(5, 2), per key in arrival order. */
	{
		static int64_t hist[DKEYS][DN];
		size_t n[DKEYS] = { 0 };

		used = 0;
		for (size_t i = 0; i < DN; i++) {
			int64_t k = evs[i].key, s = 0, c = 0;

			hist[k][n[k]++] = evs[i].val;
			if (n[k] % 2)
				continue;
			for (size_t j = n[k] > 5 ? n[k] - 5 : 0; j < n[k]; j++, c++)
				s += hist[k][j];
			used += (size_t)snprintf(
			    tmp + used, sizeof(tmp) - used,
			    " %" PRId64 ":[-inf,+inf)=%" PRId64 "/%" PRId64 "@+inf", k, c, s);
		}
		sorted_words(tmp, want, sizeof(want));
	}
	for (size_t pi = 0; pi < 3; pi++) {
		struct run_spec r = { evs, DN, .bound = 10, .p = ps[pi], .batch = bs[2 - pi] };
		struct outcome o;

		r.conf = proc_conf(sl_assigner_global(), 0);
		sl_window_conf_count(&r.conf, 5, 2);
		run(&r, &o);
		CU_ASSERT_EQUAL(o.rc, 0);
		sorted_words(o.out.text, got, sizeof(got));
		if (strcmp(got, want) != 0)
			fprintf(stderr,
				"\n    p %u: %zu results, want:\n%.300s\n    got:\n%.300s\n",
				ps[pi], o.out.n, want, got);
		CU_ASSERT_EQUAL(strcmp(got, want), 0);
	}
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "window: global windows never end", test_global_never_ends },
		{ "window: count(n) is global + purging count trigger", test_count_window },
		{ "window: count(n, s) adds a count evictor", test_count_window_slide },
		{ "window: triggers return CONTINUE, FIRE, PURGE or FIRE_AND_PURGE",
		  test_trigger_results },
		{ "window: setting a trigger replaces the default", test_trigger_replaces_default },
		{ "window: an evictor disables pre-aggregation",
		  test_evictor_disables_preaggregation },
		{ "window: process functions see the whole contents",
		  test_process_sees_whole_contents },
		{ "window: session dynamic gap", test_session_dynamic_gap },
		{ "window: processing-time trigger (controlled clock)",
		  test_processing_time_trigger },
		{ "window: continuous event-time trigger", test_continuous_event_time_trigger },
		{ "window: custom trigger with timers and merge",
		  test_custom_trigger_timers_merge },
		{ "window: time evictor, before and after", test_time_evictor },
		{ "window: custom evictor", test_custom_evictor },
		{ "window: incremental + process", test_incremental_process },
		{ "window: allowed lateness, late firings, late side output",
		  test_lateness_and_late_output },
		{ "window: bad configurations name the operator", test_bad_configs },
		{ "window: timestamps at the ends of int64", test_extreme_timestamps },
		{ "window: contents keep their strings", test_strings },
		{ "window: determinism and brute-force reference at p 1, 2, 4", test_determinism },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("windows-gen", tests);
}
