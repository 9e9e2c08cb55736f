/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_semantics.c — the rules of SEMANTICS.md's "Time and watermarks"
 * and "Windows" sections, one test per rule, named after the rule.
 *
 * Every test runs real jobs with sl_job_run() through the public API:
 * a source that emits a fixed array of (key, ts) elements (one per poll,
 * or as many as a batch holds), watermarks from sl_assign_watermarks(),
 * sl_key_by() and sl_window_aggregate() with a count/sum aggregate, and
 * sinks that record what they receive. Expected results are worked out
 * by hand in the comments next to them (or, for window assignment, by a
 * brute-force reference in this file), never by the code under test.
 *
 * Watermarks are observed through their effects, deterministically:
 * with `every = 1` each record is judged against the watermark of the
 * records before it, so whether an element is late (dropped, or on the
 * late side output) and when a window fires tell exactly what the
 * watermark was. The aggregate's add() and result() append to a log
 * ("+ts" per add, "[start,end)=count/sum" per firing); with the window
 * at parallelism 1 they run on one thread, so the log is the exact
 * interleaving of elements and firings at the window operator.
 *
 * Threads: jobs run on the runtime's workers; the log, the tapes and
 * the counters are shared with them under a mutex or atomically, and
 * read by the test after sl_job_run() returned (or by gated sources,
 * under the same mutex).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
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

/* The input element: a key and a value (the element's timestamp, unless said otherwise). */
struct ev {
	int64_t key;
	int64_t val;
};
static const struct sl_type ev_type = SL_TYPE(struct ev);

/* One window result: which key and window, how many elements and their sum. */
struct wout {
	int64_t key, start, end, count, sum;
};
static const struct sl_type wout_type = SL_TYPE(struct wout);

/* An input record: element {key, ts} with timestamp ts. */
struct in {
	int64_t key, ts;
};

/* ----------------------------------------------------------- the log */

#define LOG_MAX 8192

/* What the aggregate saw, on the window's thread(s). */
struct agg_ctx {
	pthread_mutex_t lock;
	char log[LOG_MAX];
	size_t nlog;
	uint64_t creates, adds, merges, results;
};

static void agg_ctx_init(struct agg_ctx *a)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
}

static void agg_ctx_fini(struct agg_ctx *a)
{
	pthread_mutex_destroy(&a->lock);
}

static void logf_locked(struct agg_ctx *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void logf_locked(struct agg_ctx *a, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (a->nlog + 1 >= LOG_MAX)
		return;
	va_start(ap, fmt);
	n = vsnprintf(a->log + a->nlog, LOG_MAX - a->nlog, fmt, ap);
	va_end(ap);
	if (n > 0)
		a->nlog = a->nlog + (size_t)n < LOG_MAX ? a->nlog + (size_t)n : LOG_MAX - 1;
}

/* Where @word occurs in @s as a whole space-separated word, or NULL. */
static const char *word_at(const char *s, const char *word)
{
	size_t l = strlen(word);

	for (const char *p = strstr(s, word); p; p = strstr(p + 1, word))
		if ((p == s || p[-1] == ' ') && (p[l] == ' ' || p[l] == '\0'))
			return p;
	return NULL;
}

/* Does the log contain @word? Any thread. */
static bool log_has(struct agg_ctx *a, const char *word)
{
	bool found;

	pthread_mutex_lock(&a->lock);
	found = word_at(a->log, word) != NULL;
	pthread_mutex_unlock(&a->lock);
	return found;
}

/* ------------------------------------------------ count/sum aggregate */

struct acc {
	int64_t count, sum;
};

static void acc_create(void *acc, void *arg)
{
	struct agg_ctx *a = arg;
	struct acc *x = acc;

	x->count = 0;
	x->sum = 0;
	pthread_mutex_lock(&a->lock);
	a->creates++;
	pthread_mutex_unlock(&a->lock);
}

static void acc_add(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg)
{
	struct agg_ctx *a = arg;
	const struct ev *e = elem;
	struct acc *x = acc;

	x->count++;
	x->sum += e->val;
	pthread_mutex_lock(&a->lock);
	a->adds++;
	logf_locked(a, " +%" PRId64, ts);
	pthread_mutex_unlock(&a->lock);
}

static void acc_merge(void *dst, const void *src, void *arg)
{
	struct agg_ctx *a = arg;
	struct acc *d = dst;
	const struct acc *s = src;

	d->count += s->count;
	d->sum += s->sum;
	pthread_mutex_lock(&a->lock);
	a->merges++;
	pthread_mutex_unlock(&a->lock);
}

static int acc_result(const struct sl_window *w, const struct sl_key *key, const void *acc,
		      struct sl_collector *out, void *arg)
{
	struct agg_ctx *a = arg;
	const struct acc *x = acc;
	struct wout o = { 0, w->start, w->end, x->count, x->sum };

	if (key->len != sizeof(o.key))
		return -EINVAL;
	memcpy(&o.key, key->ptr, sizeof(o.key));
	pthread_mutex_lock(&a->lock);
	a->results++;
	logf_locked(a, " [%" PRId64 ",%" PRId64 ")=%" PRId64 "/%" PRId64, o.start, o.end, o.count,
		    o.sum);
	pthread_mutex_unlock(&a->lock);
	return sl_emit(out, &o, w->end - 1, NULL); /* Flink's convention: stamped end - 1 */
}

static struct sl_aggregate count_sum(struct agg_ctx *a)
{
	return (struct sl_aggregate){ .acc_size = sizeof(struct acc),
				      .create = acc_create,
				      .add = acc_add,
				      .merge = acc_merge,
				      .result = acc_result,
				      .arg = a };
}

static void key_of_ev(const void *elem, const struct sl_batch *src, struct sl_key *out)
{
	out->ptr = &((const struct ev *)elem)->key;
	out->len = sizeof(int64_t);
}

/* ------------------------------------------------------- array source */

/* The array source (test_sources.h) emits element {key, ts} with timestamp ts. */
#include "test_sources.h"

static int arr_fill(const struct arr_conf *c, const struct in *r, struct sl_batch *out, uint32_t n)
{
	struct ev *e = sl_batch_elem(out, n);

	(void)c;
	e->key = r->key;
	e->val = r->ts;
	return 0;
}

/* --------------------------------------------------------------- tapes */

/* A sink that records every element it receives as a word of text, in order. */
struct tape {
	pthread_mutex_t lock;
	char *text; /* " word word ..." */
	size_t len, cap;
	size_t n;
	int finished;
};

static void tape_init(struct tape *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
}

static void tape_fini(struct tape *t)
{
	free(t->text);
	pthread_mutex_destroy(&t->lock);
}

static int tape_add(struct tape *t, const char *word)
{
	size_t l = strlen(word);

	if (t->len + l + 2 > t->cap) {
		size_t ncap = (t->len + l + 2) * 2;
		char *p = realloc(t->text, ncap);

		if (p == NULL)
			return -ENOMEM;
		t->text = p;
		t->cap = ncap;
	}
	t->text[t->len++] = ' ';
	memcpy(t->text + t->len, word, l + 1);
	t->len += l;
	t->n++;
	return 0;
}

static const char *tape_str(const struct tape *t)
{
	return t->text ? t->text : "";
}

static int tape_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	*state = arg;
	return 0;
}

/* Window results: "key:[start,end)=count/sum@ts". */
static int tape_write_wout(void *state, const struct sl_batch *b)
{
	struct tape *t = state;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < b->n && rc == 0; i++) {
		const struct wout *o = sl_batch_elem(b, i);
		char w[160];

		snprintf(w, sizeof(w),
			 "%" PRId64 ":[%" PRId64 ",%" PRId64 ")=%" PRId64 "/%" PRId64 "@%" PRId64,
			 o->key, o->start, o->end, o->count, o->sum, b->ts[i]);
		rc = tape_add(t, w);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* Input elements (the late side output): "key:val@ts". */
static int tape_write_ev(void *state, const struct sl_batch *b)
{
	struct tape *t = state;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < b->n && rc == 0; i++) {
		const struct ev *e = sl_batch_elem(b, i);
		char w[96];

		snprintf(w, sizeof(w), "%" PRId64 ":%" PRId64 "@%" PRId64, e->key, e->val,
			 b->ts[i]);
		rc = tape_add(t, w);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

static int tape_finish(void *state)
{
	struct tape *t = state;

	pthread_mutex_lock(&t->lock);
	t->finished++;
	pthread_mutex_unlock(&t->lock);
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

/* ------------------------------------------------------------ helpers */

static int cmp_word(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* @s's space-separated words, sorted, into @out (" w1 w2 ..."). */
static void sort_words(const char *s, char *out, size_t len)
{
	char *copy = strdup(s), *save = NULL, *w;
	char **words = NULL;
	size_t n = 0, cap = 0, used = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
	for (w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			words = realloc(words, cap * sizeof(*words));
			CU_ASSERT_PTR_NOT_NULL_FATAL(words);
		}
		words[n++] = w;
	}
	if (n)
		qsort(words, n, sizeof(*words), cmp_word);
	out[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, " %s", words[i]);
	free(words);
	free(copy);
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

/* Equal as multisets of words. */
#define ASSERT_WORDS(got, want)                       \
	do {                                          \
		static char gs_[65536], ws_[65536];   \
		sort_words((got), gs_, sizeof(gs_));  \
		sort_words((want), ws_, sizeof(ws_)); \
		ASSERT_STR(gs_, ws_);                 \
	} while (0)

#define ASSERT_U64(got, want)                                                                   \
	do {                                                                                    \
		uint64_t g_ = (got), w_ = (want);                                               \
		if (g_ != w_)                                                                   \
			fprintf(stderr, "\n    %s:%d: %s: got %" PRIu64 ", want %" PRIu64 "\n", \
				__FILE__, __LINE__, #got, g_, w_);                              \
		CU_ASSERT_EQUAL(g_, w_);                                                        \
	} while (0)

static void set_opt(struct sl_job *job, const char *key, unsigned v)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%u", v);
	CU_ASSERT_FATAL(sl_job_set(job, key, buf, errbuf, sizeof(errbuf)) == 0);
}

/* ------------------------------------------------ one windowed job */

/*
 * array source (parallelism 1) -> [watermarks] -> key_by -> window "w"
 * (parallelism p) -> sink; with @side, the late side output -> sink.
 */
struct scenario {
	const struct in *evs;
	size_t n;
	const struct sl_watermark_strategy *ws; /* NULL: only the final watermark */
	struct sl_window_spec spec;
	bool side;
};

struct outcome {
	struct agg_ctx agg;
	struct tape out, late;
	uint64_t dropped; /* late_records_dropped of "w" */
	int rc;
};

static void outcome_init(struct outcome *o)
{
	agg_ctx_init(&o->agg);
	tape_init(&o->out);
	tape_init(&o->late);
	o->dropped = UINT64_MAX;
	o->rc = -1;
}

static void outcome_fini(struct outcome *o)
{
	agg_ctx_fini(&o->agg);
	tape_fini(&o->out);
	tape_fini(&o->late);
}

/*
 * Run @sc with the window at parallelism @p, @per_poll elements per poll;
 * with @no_merge, the aggregate has no merge() (not for sessions).
 */
static void run(const struct scenario *sc, unsigned p, uint32_t per_poll, bool no_merge,
		struct outcome *o)
{
	struct arr_conf src = { .evs = sc->evs, .n = sc->n, .per_poll = per_poll };
	struct sl_aggregate agg = count_sum(&o->agg);
	struct sl_job *job;
	struct sl_stream *s, *w;
	uint64_t bad = UINT64_MAX;

	if (no_merge)
		agg.merge = NULL;
	CU_ASSERT_FATAL(sl_job_create("semantics", &job) == 0);
	set_opt(job, "parallelism", p);
	set_opt(job, "ring-size", 4);
	s = sl_set_parallelism(sl_source(job, "src", &arr_ops, &src, &ev_type), 1);
	if (sc->ws != NULL)
		s = sl_assign_watermarks(s, sc->ws);
	w = sl_window_aggregate(sl_key_by(s, key_of_ev), "w", &sc->spec, &agg, &wout_type);
	sl_sink(w, "out", &wout_sink, &o->out);
	if (sc->side)
		sl_sink(sl_side_output(w, 0, &ev_type), "late", &ev_sink, &o->late);
	errbuf[0] = '\0';
	o->rc = sl_job_run(job, NULL, errbuf, sizeof(errbuf));
	if (o->rc != 0)
		fprintf(stderr, "\n    sl_job_run: %d %s\n", o->rc, errbuf);
	CU_ASSERT_EQUAL(o->rc, 0);
	CU_ASSERT_EQUAL(sl_job_op_counters(job, "w", &bad, &o->dropped), 0);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(o->out.finished >= 1);
	sl_job_destroy(job);
}

/*
 * What a scenario must produce: the window results in firing order (for
 * one window subtask; compared as a multiset at parallelism 2, or always
 * when !ordered because equal firing times leave the order open), the
 * late side output, late_records_dropped, and the log (NULL: unchecked).
 */
struct expect {
	const char *out;
	bool ordered;
	const char *late;
	uint64_t dropped;
	const char *log;
};

/*
 * Run @sc at window parallelism 1 with one element per poll and with
 * the whole input in one batch (the engine must cut it at every
 * watermark), and at parallelism 2; each run must give @want. Sliding
 * windows run both with the aggregate's merge() and without (the engine
 * may pre-aggregate panes when it has one).
 */
static void check(const struct scenario *sc, const struct expect *want)
{
	static const struct {
		unsigned p;
		uint32_t per_poll;
	} modes[] = { { 1, 1 }, { 1, 0 }, { 2, 3 } };
	int variants = sc->spec.kind == SL_WINDOW_SLIDING ? 2 : 1;

	for (int v = 0; v < variants; v++)
		for (size_t m = 0; m < SL_ARRAY_SIZE(modes); m++) {
			struct outcome o;

			outcome_init(&o);
			run(sc, modes[m].p, modes[m].per_poll, v == 1, &o);
			if (modes[m].p == 1 && want->ordered)
				ASSERT_STR(tape_str(&o.out), want->out);
			else
				ASSERT_WORDS(tape_str(&o.out), want->out);
			ASSERT_WORDS(tape_str(&o.late), want->late ? want->late : "");
			ASSERT_U64(o.dropped, want->dropped);
			if (modes[m].p == 1 && want->log != NULL)
				ASSERT_STR(o.agg.log, want->log);
			outcome_fini(&o);
		}
}

/* Bounded out-of-orderness @b, a watermark after every record. */
#define PER_RECORD(b) \
	(&(const struct sl_watermark_strategy){ .out_of_orderness_ms = (b), .every = 1 })

#define TUMBLING(s)                                     \
	{                                               \
		.kind = SL_WINDOW_TUMBLING, .size = (s) \
	}

/* ===================================================== time and watermarks */

/*
 * Before any watermark the window operator's watermark is INT64_MIN. A
 * tumbling window of size 1 holds one timestamp t and is late (L = 0)
 * when t <= watermark, so:
 *   ts INT64_MIN + 1: not late: the watermark is < INT64_MIN + 1, so it
 *                     is INT64_MIN;
 *   ts -10^18:        not late (it would be, were the start watermark
 *                     any value >= -10^18, e.g. 0).
 * Both fire at the end. With a monotonous per-record strategy the first
 * record is judged before any watermark too; its own, M - 0 - 1 =
 * INT64_MIN, is not larger than INT64_MIN, so none is emitted.
 */
static void test_initial_watermark(void)
{
	static const struct in evs[] = { { 1, INT64_MIN + 1 }, { 1, -1000000000000000000 } };
	const struct sl_watermark_strategy *strategies[] = { NULL, PER_RECORD(0) };
	char want[256];

	snprintf(want, sizeof(want),
		 " 1:[%" PRId64 ",%" PRId64 ")=1/%" PRId64 "@%" PRId64
		 " 1:[-1000000000000000000,-999999999999999999)=1/-1000000000000000000"
		 "@-1000000000000000000",
		 INT64_MIN + 1, INT64_MIN + 2, INT64_MIN + 1, INT64_MIN + 1);
	for (size_t i = 0; i < SL_ARRAY_SIZE(strategies); i++) {
		struct scenario sc = { evs, SL_ARRAY_SIZE(evs), strategies[i], TUMBLING(1), false };
		struct expect e = { want, true, NULL, 0, NULL };

		check(&sc, &e);
	}
}

/*
 * The edge of the same rule, last in the list (a sanitizer stop here
 * must not hide the other tests): an element at INT64_MIN (Flink's "no
 * timestamp") is late against the initial watermark: its size-1 window
 * ends at INT64_MIN + 1, max timestamp INT64_MIN <= INT64_MIN
 * (isWindowLate), and INT64_MIN + 0 <= INT64_MIN (isElementLate): it is
 * dropped and counted, while INT64_MIN + 1 before it is kept.
 */
static void test_initial_watermark_min_element(void)
{
	static const struct in evs[] = { { 1, INT64_MIN + 1 }, { 1, INT64_MIN } };
	struct scenario sc = { evs, SL_ARRAY_SIZE(evs), NULL, TUMBLING(1), false };
	char want[256];
	struct expect e = { want, true, NULL, 1, NULL };

	snprintf(want, sizeof(want), " 1:[%" PRId64 ",%" PRId64 ")=1/%" PRId64 "@%" PRId64,
		 INT64_MIN + 1, INT64_MIN + 2, INT64_MIN + 1, INT64_MIN + 1);
	check(&sc, &e);
}

/*
 * B = 3, a watermark per record, tumbling size 1 (window [t, t+1) fires
 * when the watermark reaches t; a record at t is late when t <= wm):
 *   100  on time; M = 100, wm = 100 - 3 - 1 = 96
 *    96  late (96 <= 96): dropped
 *    97  on time (97 > 96)
 *   101  on time; wm = 97: fires [97,98) (not [100,101): 100 > 97)
 *    97  late now (97 <= 97): dropped
 *    98  on time
 * end: INT64_MAX fires [98,99), [100,101), [101,102).
 * Second case, B = 1000: after 5000 the watermark is 3999 exactly:
 * 3999 is dropped, 4000 is not.
 */
static void test_bounded_out_of_orderness(void)
{
	static const struct in evs[] = { { 1, 100 }, { 1, 96 }, { 1, 97 },
					 { 1, 101 }, { 1, 97 }, { 1, 98 } };
	struct scenario sc = { evs, SL_ARRAY_SIZE(evs), PER_RECORD(3), TUMBLING(1), false };
	struct expect e = { " 1:[97,98)=1/97@97 1:[98,99)=1/98@98 1:[100,101)=1/100@100"
			    " 1:[101,102)=1/101@101",
			    true, NULL, 2,
			    " +100 +97 +101 [97,98)=1/97 +98 [98,99)=1/98"
			    " [100,101)=1/100 [101,102)=1/101" };
	static const struct in big[] = { { 1, 5000 }, { 1, 3999 }, { 1, 4000 } };
	struct scenario sc2 = { big, SL_ARRAY_SIZE(big), PER_RECORD(1000), TUMBLING(1), false };
	struct expect e2 = { " 1:[4000,4001)=1/4000@4000 1:[5000,5001)=1/5000@5000", true, NULL, 1,
			     " +5000 +4000 [4000,4001)=1/4000 [5000,5001)=1/5000" };

	check(&sc, &e);
	check(&sc2, &e2);
}

/*
 * A zero-initialised strategy is monotonous (B = 0): after M the
 * watermark is M - 1, so a record equal to the maximum is still on time
 * and one below it is late. Tumbling size 1, every = 1:
 *   50  on time; wm 49
 *   49  late (49 <= 49): dropped
 *   50  on time (50 > 49), same window as the first
 *   51  on time; wm 50: fires [50,51) with both 50s: 2/100
 *   50  late now: dropped
 * end: [51,52).
 */
static void test_monotonous(void)
{
	static const struct in evs[] = { { 1, 50 }, { 1, 49 }, { 1, 50 }, { 1, 51 }, { 1, 50 } };
	struct sl_watermark_strategy ws;
	struct scenario sc = { evs, SL_ARRAY_SIZE(evs), &ws, TUMBLING(1), false };
	struct expect e = { " 1:[50,51)=2/100@50 1:[51,52)=1/51@51", true, NULL, 2,
			    " +50 +50 +51 [50,51)=2/100 [51,52)=1/51" };

	memset(&ws, 0, sizeof(ws));
	ws.every = 1; /* B left at its zero default */
	check(&sc, &e);
}

/*
 * The watermark never goes back: B = 0, every = 1, tumbling size 1.
 *   100  wm 99
 *    10  late: dropped. M stays 100, so the candidate is 99 again: not
 *        larger, not forwarded. (Were the record's own 10 - 0 - 1 = 9
 *        forwarded and taken, 99 below would be on time.)
 *    99  late (99 <= 99): dropped
 *   100  on time; candidate 99 again, not forwarded
 *   101  wm 100: fires [100,101) with both 100s
 *   100  late: dropped
 * Only the effect is observable (no public hook sees watermarks that
 * change nothing): the operator's watermark stayed at the largest one.
 */
static void test_forwarded_only_when_larger(void)
{
	static const struct in evs[] = { { 1, 100 }, { 1, 10 },	 { 1, 99 },
					 { 1, 100 }, { 1, 101 }, { 1, 100 } };
	struct scenario sc = { evs, SL_ARRAY_SIZE(evs), PER_RECORD(0), TUMBLING(1), false };
	struct expect e = { " 1:[100,101)=2/200@100 1:[101,102)=1/101@101", true, NULL, 3,
			    " +100 +100 +101 [100,101)=2/200 [101,102)=1/101" };

	check(&sc, &e);
}

/*
 * Per-record watermarks (every = 1, B = 0), tumbling 10. A record is
 * processed before the watermark it produces, and judged against the
 * watermark of all records before it, also inside one batch:
 *    5  +5; wm 4
 *   25  +25, then its wm 24 fires [0,10) = {5}: the log has "+25" BEFORE
 *       the firing (Flink emits the record, then onEvent's watermark)
 *    9  late against 24 (the previous record's watermark): dropped
 *   24  on time ([20,30) ends at 29 > 24)
 *   30  +30, then wm 29 fires [20,30) = {25, 24}
 * end: [30,40).
 */
static void test_per_record_judged_by_records_before(void)
{
	static const struct in evs[] = { { 1, 5 }, { 1, 25 }, { 1, 9 }, { 1, 24 }, { 1, 30 } };
	struct scenario sc = { evs, SL_ARRAY_SIZE(evs), PER_RECORD(0), TUMBLING(10), false };
	struct expect e = { " 1:[0,10)=1/5@9 1:[20,30)=2/49@29 1:[30,40)=1/30@39", true, NULL, 1,
			    " +5 +25 [0,10)=1/5 +24 +30 [20,30)=2/49 [30,40)=1/30" };

	check(&sc, &e);
}

/* Periodic watermarks: the source holds its end back until [0,1) fired. */
struct periodic_gate {
	struct agg_ctx *agg;
	double deadline;
	atomic_bool gave_up;
};

static bool periodic_ready(size_t next, void *arg)
{
	struct periodic_gate *g = arg;

	if (next < 2)
		return true; /* the two records at once */
	if (log_has(g->agg, "[0,1)=1/0"))
		return true;
	if (now_s() > g->deadline) {
		atomic_store(&g->gave_up, true);
		return true;
	}
	return false;
}

/*
 * SL_WATERMARK_INTERVAL_MS is the documented default (interval_ms = 0),
 * and it is 200 ms. The interval itself is not observable without a
 * timed assertion, so this checks that a zero-initialised strategy
 * (periodic, default interval) does emit watermarks while the source is
 * still running: records 0 and 10 (B = 0, candidate 9), then the source
 * emits nothing and holds its end back until the window [0,1) fired.
 * Only a periodic watermark can fire it before the end (60 s safety
 * net: then the test fails instead of hanging). Also with an explicit
 * interval of 1 ms, and with a periodic B = 5 (candidate 4: [0,1)
 * fires, [10,11) waits for the end).
 */
static void test_periodic_default(void)
{
	static const struct in evs[] = { { 1, 0 }, { 1, 10 } };
	static const struct sl_watermark_strategy strategies[] = {
		{ 0 },
		{ .interval_ms = 1 },
		{ .out_of_orderness_ms = 5 },
	};

	CU_ASSERT_EQUAL(SL_WATERMARK_INTERVAL_MS, 200);
	for (size_t i = 0; i < SL_ARRAY_SIZE(strategies); i++) {
		struct outcome o;
		struct periodic_gate g = { &o.agg, now_s() + GATE_GIVE_UP_S, false };
		struct arr_conf src = { .evs = evs,
					.n = SL_ARRAY_SIZE(evs),
					.per_poll = 1,
					.ready = periodic_ready,
					.arg = &g };
		struct sl_window_spec spec = TUMBLING(1);
		struct sl_aggregate agg;
		struct sl_job *job;
		struct sl_stream *s, *w;

		outcome_init(&o);
		agg = count_sum(&o.agg);
		CU_ASSERT_FATAL(sl_job_create("periodic", &job) == 0);
		s = sl_assign_watermarks(sl_source(job, "src", &arr_ops, &src, &ev_type),
					 &strategies[i]);
		w = sl_window_aggregate(sl_key_by(s, key_of_ev), "w", &spec, &agg, &wout_type);
		sl_sink(w, "out", &wout_sink, &o.out);
		CU_ASSERT_EQUAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
		CU_ASSERT_FALSE(atomic_load(&g.gave_up));
		/* [0,1) fired while the source was still running, [10,11) at the end */
		ASSERT_STR(o.agg.log, " +0 +10 [0,1)=1/0 [10,11)=1/10");
		ASSERT_STR(tape_str(&o.out), " 1:[0,1)=1/0@0 1:[10,11)=1/10@10");
		sl_job_destroy(job);
		outcome_fini(&o);
	}
}

/*
 * every = 3, B = 0, tumbling 1: a watermark after records 3, 6, 9, ...
 * (counting every record the source produced, late or not), never in
 * between:
 *   10, 20     no watermark yet
 *    5         judged against INT64_MIN: on time (with every = 1 it
 *              would be late against 9); record 3: wm 20 - 1 = 19
 *              fires [5,6) and [10,11)
 *   15         late against 19: dropped
 *  100         record 5: no watermark
 *   50         judged against 19 (not 99): on time; record 6: wm 99
 *              fires [20,21) and [50,51)
 *   21         late: dropped
 *  200         record 8: no watermark
 * end: [100,101), [200,201).
 */
static void test_every_n_exact(void)
{
	static const struct in evs[] = { { 1, 10 },  { 1, 20 }, { 1, 5 },  { 1, 15 },
					 { 1, 100 }, { 1, 50 }, { 1, 21 }, { 1, 200 } };
	const struct sl_watermark_strategy ws = { .every = 3 };
	struct scenario sc = { evs, SL_ARRAY_SIZE(evs), &ws, TUMBLING(1), false };
	struct expect e = {
		" 1:[5,6)=1/5@5 1:[10,11)=1/10@10 1:[20,21)=1/20@20 1:[50,51)=1/50@50"
		" 1:[100,101)=1/100@100 1:[200,201)=1/200@200",
		true, NULL, 2,
		" +10 +20 +5 [5,6)=1/5 [10,11)=1/10 +100 +50 [20,21)=1/20 [50,51)=1/50 +200"
		" [100,101)=1/100 [200,201)=1/200"
	};

	check(&sc, &e);
}

/*
 * Two sources, each with per-record watermarks (B = 0), unioned, keyed
 * (one key) into a tumbling-10 window at parallelism 1: its input
 * watermark is the minimum over the two channels. Source a: 5, 25, 26
 * (its watermark reaches 25), then it waits for b to end. Source b: 6,
 * then waits until the window has logged "+26": a's watermark 24
 * travelled before 26 on a's channel, so the window has processed it;
 * then b emits 7 and 12, and ends.
 *  - 7 arrives after a's watermark 24: with the minimum (b's channel is
 *    at 5 at most) it is on time and joins [0,10); were the input
 *    watermark a's alone, or the maximum, it would be late and dropped.
 *  - [0,10) fires only once b advanced too (b's 12: wm 11): {5, 6, 7}.
 * end: [10,20) = {12}, [20,30) = {25, 26}.
 */
struct two_gate {
	struct agg_ctx *agg;
	struct arr_conf *other;
	double deadline;
	atomic_bool gave_up;
};

static bool gate_expired(struct two_gate *g)
{
	if (now_s() <= g->deadline)
		return false;
	atomic_store(&g->gave_up, true);
	return true;
}

static bool a_ready(size_t next, void *arg)
{
	struct two_gate *g = arg;

	if (next < 3)
		return true;
	return atomic_load_explicit(&g->other->ended, memory_order_acquire) || gate_expired(g);
}

static bool b_ready(size_t next, void *arg)
{
	struct two_gate *g = arg;

	if (next != 1)
		return true;
	return log_has(g->agg, "+26") || gate_expired(g);
}

static void test_input_watermark_minimum(void)
{
	static const struct in a_evs[] = { { 1, 5 }, { 1, 25 }, { 1, 26 } };
	static const struct in b_evs[] = { { 1, 6 }, { 1, 7 }, { 1, 12 } };
	struct outcome o;
	struct arr_conf a = { .evs = a_evs, .n = 3, .per_poll = 1, .ready = a_ready };
	struct arr_conf b = { .evs = b_evs, .n = 3, .per_poll = 1, .ready = b_ready };
	struct two_gate ga, gb;
	struct sl_window_spec spec = TUMBLING(10);
	struct sl_aggregate agg;
	struct sl_job *job;
	struct sl_stream *sa, *sb, *w;
	uint64_t bad;
	const char *a26, *a7, *a12, *fire;

	outcome_init(&o);
	ga = (struct two_gate){ &o.agg, &b, now_s() + GATE_GIVE_UP_S, false };
	gb = (struct two_gate){ &o.agg, &a, now_s() + GATE_GIVE_UP_S, false };
	a.arg = &ga;
	b.arg = &gb;
	agg = count_sum(&o.agg);
	CU_ASSERT_FATAL(sl_job_create("min", &job) == 0);
	set_opt(job, "ring-size", 4);
	sa = sl_assign_watermarks(sl_source(job, "a", &arr_ops, &a, &ev_type), PER_RECORD(0));
	sb = sl_assign_watermarks(sl_source(job, "b", &arr_ops, &b, &ev_type), PER_RECORD(0));
	w = sl_window_aggregate(sl_key_by(sl_union(sa, sb), key_of_ev), "w", &spec, &agg,
				&wout_type);
	sl_sink(w, "out", &wout_sink, &o.out);
	CU_ASSERT_EQUAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
	CU_ASSERT_EQUAL(sl_job_op_counters(job, "w", &bad, &o.dropped), 0);
	CU_ASSERT_FALSE(atomic_load(&ga.gave_up));
	CU_ASSERT_FALSE(atomic_load(&gb.gave_up));
	ASSERT_U64(o.dropped, 0);
	ASSERT_STR(tape_str(&o.out), " 1:[0,10)=3/18@9 1:[10,20)=1/12@19 1:[20,30)=2/51@29");
	/* In the log, 7 comes after 26, and [0,10) fires after 12 was added. */
	a26 = word_at(o.agg.log, "+26");
	a7 = word_at(o.agg.log, "+7");
	a12 = word_at(o.agg.log, "+12");
	fire = word_at(o.agg.log, "[0,10)=3/18");
	CU_ASSERT(a26 != NULL && a7 != NULL && a26 < a7);
	CU_ASSERT(a12 != NULL && fire != NULL && a12 < fire);
	sl_job_destroy(job);
	outcome_fini(&o);
}

/* Where each key goes: emits {key, subtask index}. */
static int where_is_key(const struct sl_subtask_info *self, const void *in, int64_t ts,
			const struct sl_batch *src, struct sl_collector *out, void *arg)
{
	struct ev e = { ((const struct ev *)in)->key, (int64_t)self->index };

	return sl_emit(out, &e, ts, NULL);
}

#define BC_P	3
#define BC_KEYS 32

/*
 * One source subtask (per-record watermarks, B = 0) feeds a tumbling-10
 * window at parallelism 3 over 32 keys: the watermark must reach every
 * window subtask, including those whose keys saw no record since.
 *   keys 0..31 at ts 5   each opens its [0,10)
 *   key 0 at ts 100      wm 99, only on key 0's channel by data
 *   keys 0..31 at ts 7   late everywhere (9 <= 99): 32 dropped
 * A subtask the watermark missed would count its keys' 7s ([0,10) = 2).
 * A first job (same parallelism) finds which subtask holds which key,
 * to prove every subtask holds some.
 */
static void test_watermark_broadcast(void)
{
	static struct in evs[2 * BC_KEYS + 1];
	struct arr_conf src = { .evs = evs, .n = BC_KEYS, .per_poll = 1 };
	struct tape where;
	struct sl_job *job;
	struct sl_stream *s;
	unsigned seen[BC_P] = { 0 };
	char want[8192];
	size_t used = 0;

	for (int k = 0; k < BC_KEYS; k++) {
		evs[k] = (struct in){ k, 5 };
		evs[BC_KEYS + 1 + k] = (struct in){ k, 7 };
	}
	evs[BC_KEYS] = (struct in){ 0, 100 };

	/* Where the keys go, at parallelism BC_P. */
	tape_init(&where);
	CU_ASSERT_FATAL(sl_job_create("where", &job) == 0);
	set_opt(job, "parallelism", BC_P);
	s = sl_set_parallelism(sl_source(job, "src", &arr_ops, &src, &ev_type), 1);
	s = sl_process(sl_key_by(s, key_of_ev), "where", where_is_key, NULL, &ev_type);
	sl_sink(s, "out", &ev_sink, &where);
	CU_ASSERT_EQUAL_FATAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
	sl_job_destroy(job);
	for (unsigned i = 0; i < BC_P; i++) {
		char needle[32];

		for (int k = 0; k < BC_KEYS; k++) {
			snprintf(needle, sizeof(needle), " %d:%u@", k, i);
			seen[i] += strstr(tape_str(&where), needle) != NULL;
		}
		CU_ASSERT(seen[i] > 0);
	}
	CU_ASSERT_EQUAL(where.n, BC_KEYS);
	tape_fini(&where);

	for (int k = 0; k < BC_KEYS; k++)
		used += (size_t)snprintf(want + used, sizeof(want) - used, " %d:[0,10)=1/5@9", k);
	snprintf(want + used, sizeof(want) - used, " 0:[100,110)=1/100@109");
	for (uint32_t per_poll = 0; per_poll <= 1; per_poll++) {
		struct scenario sc = { evs, SL_ARRAY_SIZE(evs), PER_RECORD(0), TUMBLING(10),
				       false };
		struct outcome o;

		outcome_init(&o);
		run(&sc, BC_P, per_poll, false, &o);
		ASSERT_WORDS(tape_str(&o.out), want);
		ASSERT_U64(o.dropped, BC_KEYS);
		outcome_fini(&o);
	}
}

/*
 * End of bounded input: INT64_MAX fires every pending window, in
 * timestamp order. Without a strategy the source emits no watermark but
 * that one, so every firing comes after every element in the log.
 *  - tumbling 10: 17, 3, 1000, 17 -> [0,10)=1, [10,20)=2, [1000,1010)=1;
 *    the same with B = 10^12 (watermarks, but none reaching a window);
 *  - tumbling 1 at ts INT64_MAX - 1: [MAX-1, MAX) ends at MAX - 1, so
 *    only a final watermark of INT64_MAX itself fires it (L = 10:
 *    cleanup time saturates);
 *  - sessions (gap 5): 0, 3, 20 -> [0,8)=2, [20,25)=1.
 */
static void test_final_watermark(void)
{
	static const struct in t_evs[] = { { 1, 17 }, { 1, 3 }, { 1, 1000 }, { 1, 17 } };
	static const struct in max_evs[] = { { 1, INT64_MAX - 1 } };
	static const struct in s_evs[] = { { 1, 0 }, { 1, 3 }, { 1, 20 } };
	const char *t_want = " 1:[0,10)=1/3@9 1:[10,20)=2/34@19 1:[1000,1010)=1/1000@1009";
	const char *t_log = " +17 +3 +1000 +17 [0,10)=1/3 [10,20)=2/34 [1000,1010)=1/1000";
	struct scenario t1 = { t_evs, 4, NULL, TUMBLING(10), false };
	struct scenario t2 = { t_evs, 4, PER_RECORD(1000000000000), TUMBLING(10), false };
	struct scenario m = { max_evs,
			      1,
			      NULL,
			      { .kind = SL_WINDOW_TUMBLING, .size = 1, .allowed_lateness = 10 },
			      false };
	struct scenario s = { s_evs, 3, NULL, { .kind = SL_WINDOW_SESSION, .gap = 5 }, false };
	struct expect te = { t_want, true, NULL, 0, t_log };
	struct expect se = { " 1:[0,8)=2/3@7 1:[20,25)=1/20@24", true, NULL, 0,
			     " +0 +3 +20 [0,8)=2/3 [20,25)=1/20" };
	char mw[256], ml[256];
	struct expect me = { mw, true, NULL, 0, ml };

	snprintf(mw, sizeof(mw), " 1:[%" PRId64 ",%" PRId64 ")=1/%" PRId64 "@%" PRId64,
		 INT64_MAX - 1, INT64_MAX, INT64_MAX - 1, INT64_MAX - 1);
	snprintf(ml, sizeof(ml), " +%" PRId64 " [%" PRId64 ",%" PRId64 ")=1/%" PRId64,
		 INT64_MAX - 1, INT64_MAX - 1, INT64_MAX, INT64_MAX - 1);
	check(&t1, &te);
	check(&t2, &te);
	check(&m, &me);
	check(&s, &se);
}

/* ============================================================= windows */

/* Second-level aggregate over window results: count them, sum their counts. */
static void wacc_add(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg)
{
	struct acc *x = acc;

	x->count++;
	x->sum += ((const struct wout *)elem)->count;
}

static void key_of_wout(const void *elem, const struct sl_batch *src, struct sl_key *out)
{
	out->ptr = &((const struct wout *)elem)->key;
	out->len = sizeof(int64_t);
}

/*
 * [start, end) holds end - 1 but not end; results are stamped end - 1.
 * Tumbling 10 over 0, 9, 10, 19, 20, 39, 40 (per record, B = 0):
 *   w1: [0,10) = {0, 9} @9, [10,20) = {10, 19} @19, [20,30) = {20} @29,
 *       [30,40) = {39} @39, [40,50) = {40} @49.
 * w1's results feed a second tumbling-10 window w2 keyed the same way.
 * Stamped end - 1, each lands in the w2 window of the same bounds; and
 * the result of [0,10), fired by watermark 9, reaches w2 before that
 * watermark (9 <= 9 would make it late there): w2 drops nothing and
 * counts one result per window, summing w1's counts 2, 2, 1, 1, 1.
 */
static void test_window_stamped_end_minus_1(void)
{
	static const struct in evs[] = { { 1, 0 },  { 1, 9 },  { 1, 10 }, { 1, 19 },
					 { 1, 20 }, { 1, 39 }, { 1, 40 } };
	struct arr_conf src = { .evs = evs, .n = SL_ARRAY_SIZE(evs), .per_poll = 1 };
	struct sl_window_spec spec = TUMBLING(10);
	struct outcome o;
	struct tape second;
	struct sl_aggregate agg, agg2;
	struct sl_job *job;
	struct sl_stream *s, *w1, *w2;
	uint64_t dropped1 = 7, dropped2 = 7, bad;

	outcome_init(&o);
	tape_init(&second);
	agg = count_sum(&o.agg);
	agg2 = agg;
	agg2.add = wacc_add;
	CU_ASSERT_FATAL(sl_job_create("stamp", &job) == 0);
	s = sl_assign_watermarks(sl_source(job, "src", &arr_ops, &src, &ev_type), PER_RECORD(0));
	w1 = sl_window_aggregate(sl_key_by(s, key_of_ev), "w1", &spec, &agg, &wout_type);
	sl_sink(w1, "out1", &wout_sink, &o.out);
	w2 = sl_window_aggregate(sl_key_by(w1, key_of_wout), "w2", &spec, &agg2, &wout_type);
	sl_sink(w2, "out2", &wout_sink, &second);
	CU_ASSERT_EQUAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
	CU_ASSERT_EQUAL(sl_job_op_counters(job, "w1", &bad, &dropped1), 0);
	CU_ASSERT_EQUAL(sl_job_op_counters(job, "w2", &bad, &dropped2), 0);
	ASSERT_U64(dropped1, 0);
	ASSERT_U64(dropped2, 0);
	ASSERT_STR(tape_str(&o.out), " 1:[0,10)=2/9@9 1:[10,20)=2/29@19 1:[20,30)=1/20@29"
				     " 1:[30,40)=1/39@39 1:[40,50)=1/40@49");
	ASSERT_STR(tape_str(&second), " 1:[0,10)=1/2@9 1:[10,20)=1/2@19 1:[20,30)=1/1@29"
				      " 1:[30,40)=1/1@39 1:[40,50)=1/1@49");
	sl_job_destroy(job);
	tape_fini(&second);
	outcome_fini(&o);
}

/* The start of the window [o + k*s, o + (k+1)*s) holding @ts: k = floor((ts - o) / s). */
static int64_t ref_start(int64_t ts, int64_t o, int64_t s)
{
	int64_t k = (ts - o) / s; /* truncated toward zero */

	if (o + k * s > ts)
		k--;
	CU_ASSERT(o + k * s <= ts && ts < o + (k + 1) * s);
	return o + k * s;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/*
 * The expected results of assigning @ts[] (key 1) to windows of @size
 * sliding by @slide from @offset, by brute force: every start offset +
 * k * slide with start <= ts < start + size is a window of ts. Windows
 * of one key fire in order of their end, i.e. of their start.
 */
static void ref_windows(const int64_t *ts, size_t n, int64_t size, int64_t slide, int64_t offset,
			char *out, size_t len)
{
	int64_t *starts = NULL;
	size_t ns = 0, cap = 0, used = 0;

	for (size_t i = 0; i < n; i++)
		for (int64_t st = ref_start(ts[i] - size, offset, slide); st <= ts[i];
		     st += slide) {
			if (!(st <= ts[i] && ts[i] < st + size))
				continue;
			if (ns == cap) {
				cap = cap ? cap * 2 : 64;
				starts = realloc(starts, cap * sizeof(*starts));
				CU_ASSERT_PTR_NOT_NULL_FATAL(starts);
			}
			starts[ns++] = st;
		}
	qsort(starts, ns, sizeof(*starts), cmp_i64);
	out[0] = '\0';
	for (size_t j = 0; j < ns; j++) {
		int64_t start = starts[j], count = 0, sum = 0;

		if (j > 0 && starts[j - 1] == start)
			continue;
		for (size_t i = 0; i < n; i++)
			if (start <= ts[i] && ts[i] < start + size)
				count++, sum += ts[i];
		used += (size_t)snprintf(out + used, len - used,
					 " 1:[%" PRId64 ",%" PRId64 ")=%" PRId64 "/%" PRId64
					 "@%" PRId64,
					 start, start + size, count, sum, start + size - 1);
	}
	free(starts);
}

static const int64_t assign_ts[] = { -1000000000007,
				     -25,
				     -18,
				     -17,
				     -16,
				     -9,
				     -8,
				     -7,
				     -6,
				     -4,
				     -3,
				     -2,
				     -1,
				     0,
				     1,
				     2,
				     3,
				     4,
				     5,
				     12,
				     13,
				     22,
				     1000000000003 };

static void check_assignment(struct sl_window_spec spec)
{
	static struct in evs[SL_ARRAY_SIZE(assign_ts)];
	static char want[8192];
	int64_t slide = spec.kind == SL_WINDOW_TUMBLING ? spec.size : spec.slide;
	struct scenario sc = { evs, SL_ARRAY_SIZE(evs), NULL, spec, false };
	struct expect e = { want, true, NULL, 0, NULL };

	for (size_t i = 0; i < SL_ARRAY_SIZE(assign_ts); i++)
		evs[i] = (struct in){ 1, assign_ts[i] };
	ref_windows(assign_ts, SL_ARRAY_SIZE(assign_ts), spec.size, slide, spec.offset, want,
		    sizeof(want));
	check(&sc, &e);
}

/*
 * Tumbling size S, offset O: start = ts - floor_mod(ts - O, S), the
 * start O + k*S <= ts; for negative ts too (C's % truncates: -15 - 3 =
 * -18, -18 % 10 = -8 would give start -7 > -15, which is wrong: the
 * window is [-17, -7)). Hand-checked: size 10, offset 3:
 * -25 -> [-27,-17), -17 -> [-17,-7), -8 -> [-17,-7), -7 -> [-7,3),
 * 2 -> [-7,3), 3 -> [3,13). The whole set is checked against the
 * brute-force reference, for offsets 3, 0, -4 (size 10) and 5 (size 7).
 */
static void test_tumbling_offset_negative(void)
{
	check_assignment(
	    (struct sl_window_spec){ .kind = SL_WINDOW_TUMBLING, .size = 10, .offset = 3 });
	check_assignment((struct sl_window_spec){ .kind = SL_WINDOW_TUMBLING, .size = 10 });
	check_assignment(
	    (struct sl_window_spec){ .kind = SL_WINDOW_TUMBLING, .size = 10, .offset = -4 });
	check_assignment(
	    (struct sl_window_spec){ .kind = SL_WINDOW_TUMBLING, .size = 7, .offset = 5 });
	{
		/* Spot check by hand: -1 with size 10, offset 3 is in [-7,3) only. */
		static const struct in evs[] = { { 1, -1 }, { 1, -15 } };
		struct scenario sc = {
			evs, 2, NULL, { .kind = SL_WINDOW_TUMBLING, .size = 10, .offset = 3 }, false
		};
		struct expect e = { " 1:[-17,-7)=1/-15@-8 1:[-7,3)=1/-1@2", true, NULL, 0, NULL };

		check(&sc, &e);
	}
}

/*
 * Sliding size S, slide L, offset O: windows start = last_start,
 * last_start - L, ... while start > ts - S, last_start = ts - floor_mod(
 * ts - O, L). By hand, S 10, L 4, O 1 (starts 1 + 4k): ts 0 ->
 * last_start -3: [-3,7), [-7,3) (-11 > 0 - 10 fails); ts 5 -> [5,15),
 * [1,11), [-3,7); ts -6 -> [-7,3), [-11,-1), [-15,-5) (-15 > -16).
 * The assignment set above is also checked against brute force for
 * (10, 4, 1), (10, 5, 2), (10, 3, -1) and (6, 6, 0) (= tumbling).
 */
static void test_sliding_offset(void)
{
	static const struct in evs[] = { { 1, 0 }, { 1, 5 }, { 1, -6 } };
	struct scenario sc = { evs,
			       3,
			       NULL,
			       { .kind = SL_WINDOW_SLIDING, .size = 10, .slide = 4, .offset = 1 },
			       false };
	/* -6 is in [-15,-5), [-11,-1), [-7,3); 0 in [-7,3), [-3,7); 5 in [-3,7), [1,11), [5,15) */
	struct expect e = { " 1:[-15,-5)=1/-6@-6 1:[-11,-1)=1/-6@-2 1:[-7,3)=2/-6@2"
			    " 1:[-3,7)=2/5@6 1:[1,11)=1/5@10 1:[5,15)=1/5@14",
			    true, NULL, 0, NULL };

	check(&sc, &e);
	check_assignment((struct sl_window_spec){
	    .kind = SL_WINDOW_SLIDING, .size = 10, .slide = 4, .offset = 1 });
	check_assignment((struct sl_window_spec){
	    .kind = SL_WINDOW_SLIDING, .size = 10, .slide = 5, .offset = 2 });
	check_assignment((struct sl_window_spec){
	    .kind = SL_WINDOW_SLIDING, .size = 10, .slide = 3, .offset = -1 });
	check_assignment(
	    (struct sl_window_spec){ .kind = SL_WINDOW_SLIDING, .size = 6, .slide = 6 });
}

/*
 * Session gap 10: each element opens [ts, ts + 10); windows intersect
 * when a.start <= b.end && a.end >= b.start, so touching ones merge.
 *   key 1: 0, 10, 35, 25 -> [0,10)+[10,20) touch: [0,20); [35,45) and
 *          [25,35) touch: [25,45); [0,20) and [25,45) do not (25 > 20).
 *   key 2: the same and 20: [20,30) touches [0,20) (20 <= 20) and
 *          [25,45): everything merges into [0,45) = 5 elements.
 *   key 3: 0, 11: [0,10) and [11,21) are 1 apart: separate.
 *   key 4: 0, 5: [5,15) overlaps [0,10): [0,15).
 * All fire at the end (no watermarks), stamped end - 1.
 */
static void test_session_merge_touching(void)
{
	static const struct in evs[] = { { 1, 0 },  { 1, 10 }, { 1, 35 }, { 1, 25 }, { 2, 0 },
					 { 2, 10 }, { 2, 35 }, { 2, 25 }, { 2, 20 }, { 3, 0 },
					 { 3, 11 }, { 4, 0 },  { 4, 5 } };
	struct scenario sc = {
		evs, SL_ARRAY_SIZE(evs), NULL, { .kind = SL_WINDOW_SESSION, .gap = 10 }, false
	};
	struct expect e = { " 1:[0,20)=2/10@19 1:[25,45)=2/60@44 2:[0,45)=5/90@44"
			    " 3:[0,10)=1/0@9 3:[11,21)=1/11@20 4:[0,15)=2/5@14",
			    false, NULL, 0, NULL };

	check(&sc, &e);
}

/*
 * Default trigger: on an element, FIRE at once if end - 1 <= watermark,
 * else a timer at end - 1. Tumbling 10, L = 100 (so [0,10) stays open
 * after it fired), per record, B = 0:
 *    5, 9   wm 8: [0,10) (end - 1 = 9 > 8) does not fire
 *   10      wm 9: 9 <= 9, the timer fires [0,10) = {5, 9}
 *    7      9 <= 9 on arrival: added and fired at once = {5, 9, 7},
 *           before the next element ("+7 [0,10)=3/21 +11" in the log)
 *   11      into [10,20)
 * end: [10,20) = {10, 11}.
 * Sessions (gap 10, L = 20): 0, 15 (wm 14 fires [0,10)), then 3: [3,13)
 * merges with [0,10) into [0,13), whose end - 1 = 12 <= 14: no timer
 * (EventTimeTrigger.onMerge), FIRE at once = {0, 3}; its cleanup timer
 * at 32 does not fire it again. End: [15,25).
 */
static void test_trigger_fires_at_once(void)
{
	static const struct in evs[] = { { 1, 5 }, { 1, 9 }, { 1, 10 }, { 1, 7 }, { 1, 11 } };
	struct scenario sc = { evs,
			       SL_ARRAY_SIZE(evs),
			       PER_RECORD(0),
			       { .kind = SL_WINDOW_TUMBLING, .size = 10, .allowed_lateness = 100 },
			       false };
	struct expect e = { " 1:[0,10)=2/14@9 1:[0,10)=3/21@9 1:[10,20)=2/21@19", true, NULL, 0,
			    " +5 +9 +10 [0,10)=2/14 +7 [0,10)=3/21 +11 [10,20)=2/21" };
	static const struct in s_evs[] = { { 1, 0 }, { 1, 15 }, { 1, 3 } };
	struct scenario s = { s_evs,
			      3,
			      PER_RECORD(0),
			      { .kind = SL_WINDOW_SESSION, .gap = 10, .allowed_lateness = 20 },
			      false };
	struct expect se = { " 1:[0,10)=1/0@9 1:[0,13)=2/3@12 1:[15,25)=1/15@24", true, NULL, 0,
			     " +0 +15 [0,10)=1/0 +3 [0,13)=2/3 [15,25)=1/15" };

	check(&sc, &e);
	check(&s, &se);
}

/*
 * A window is late when end - 1 + L <= watermark; a late window's
 * elements are skipped, its other windows still take the element.
 * Sliding 10 by 5, L = 2, per record, B = 0 (cleanup of [-5,5) at 6,
 * of [0,10) at 11):
 *    1   -> [0,10), [-5,5); wm 0
 *   11   -> [10,20), [5,15); wm 10 fires [-5,5) = {1}, [0,10) = {1};
 *           [-5,5) is cleaned (6 <= 10), [0,10) is not (11 > 10)
 *    8   -> [5,15); [0,10) not late (11 > 10): added, fired at once = {1, 8}
 *   12   -> [10,20), [5,15); wm 11: [0,10) cleaned
 *    7   -> [5,15); [0,10) late (11 <= 11): skipped; not a late element
 *    3   -> [0,10) and [-5,5) late: skipped by all, 3 + 2 <= 11: dropped
 * end: [5,15) = {11, 8, 12, 7} = 38, [10,20) = {11, 12}.
 * Default L is 0: tumbling 10, 5, 10 (wm 9 fires [0,10)), then 9: late
 * at once (9 + 0 <= 9), dropped.
 */
static void test_lateness_skips_late_windows(void)
{
	static const struct in evs[] = { { 1, 1 },  { 1, 11 }, { 1, 8 },
					 { 1, 12 }, { 1, 7 },  { 1, 3 } };
	struct scenario sc = {
		evs,
		SL_ARRAY_SIZE(evs),
		PER_RECORD(0),
		{ .kind = SL_WINDOW_SLIDING, .size = 10, .slide = 5, .allowed_lateness = 2 },
		false
	};
	struct expect e = { " 1:[-5,5)=1/1@4 1:[0,10)=1/1@9 1:[0,10)=2/9@9 1:[5,15)=4/38@14"
			    " 1:[10,20)=2/23@19",
			    true, NULL, 1, NULL };
	static const struct in d_evs[] = { { 1, 5 }, { 1, 10 }, { 1, 9 } };
	struct scenario d = { d_evs, 3, PER_RECORD(0), TUMBLING(10), false };
	struct expect de = { " 1:[0,10)=1/5@9 1:[10,20)=1/10@19", true, NULL, 1,
			     " +5 +10 [0,10)=1/5 [10,20)=1/10" };

	check(&sc, &e);
	check(&d, &de);
}

/*
 * An element after end - 1 but before the window is late is added and
 * fires the window again with the updated contents. Tumbling 10, L =
 * 10, per record, B = 0:
 *    5, 12  wm 11 fires [0,10) = {5}
 *    6      re-fires {5, 6}
 *    7      re-fires {5, 6, 7}
 *   13      wm 12
 *    8      re-fires {5, 6, 7, 8} (cleanup of [0,10) is at 19)
 * end: [10,20) = {12, 13}. One accumulator for [0,10) all along: 2
 * create() calls in all.
 */
static void test_late_element_refires(void)
{
	static const struct in evs[] = { { 1, 5 }, { 1, 12 }, { 1, 6 },
					 { 1, 7 }, { 1, 13 }, { 1, 8 } };
	struct scenario sc = { evs,
			       SL_ARRAY_SIZE(evs),
			       PER_RECORD(0),
			       { .kind = SL_WINDOW_TUMBLING, .size = 10, .allowed_lateness = 10 },
			       false };
	struct expect e = { " 1:[0,10)=1/5@9 1:[0,10)=2/11@9 1:[0,10)=3/18@9 1:[0,10)=4/26@9"
			    " 1:[10,20)=2/25@19",
			    true, NULL, 0,
			    " +5 +12 [0,10)=1/5 +6 [0,10)=2/11 +7 [0,10)=3/18 +13 +8 [0,10)=4/26"
			    " [10,20)=2/25" };
	struct outcome o;

	check(&sc, &e);
	outcome_init(&o);
	run(&sc, 1, 1, false, &o);
	ASSERT_U64(o.agg.creates, 2);
	outcome_fini(&o);
}

/*
 * Window state is cleared by a timer at end - 1 + L.
 * Tumbling 10, L = 5 (cleanup of [0,10) at 14), per record, B = 0:
 *    3, 13  wm 12 fires [0,10) = {3}
 *    9      re-fires {3, 9}
 *   14      wm 13 (one before the cleanup time)
 *    8      still taken: re-fires {3, 9, 8}
 *   15      wm 14: cleanup
 *    7      late (14 <= 14): dropped
 * end: [10,20) = {13, 14, 15}.
 * Sessions show that the state is gone, not just skipped: gap 10, L = 5,
 * per record, B = 0; keys 1 and 2 open [0,10) (cleanup at 14); key 3's
 * 14 and 15 move the watermark to 13, then 14.
 *   (1,0) (2,0) (3,14)  wm 13 fires 1:[0,10) and 2:[0,10)
 *   (1,10)  [10,20) touches 1's [0,10), still alive: merged [0,20) = 2
 *   (3,15)  wm 14: 2's [0,10) is cleaned up
 *   (2,10)  nothing left to touch: a fresh [10,20) = 1 (a merge with the
 *           stale window would give [0,20) = 2)
 * end: 1:[0,20), 2:[10,20), 3:[14,25).
 */
static void test_cleanup_timer(void)
{
	static const struct in evs[] = { { 1, 3 }, { 1, 13 }, { 1, 9 }, { 1, 14 },
					 { 1, 8 }, { 1, 15 }, { 1, 7 } };
	struct scenario sc = { evs,
			       SL_ARRAY_SIZE(evs),
			       PER_RECORD(0),
			       { .kind = SL_WINDOW_TUMBLING, .size = 10, .allowed_lateness = 5 },
			       false };
	struct expect e = { " 1:[0,10)=1/3@9 1:[0,10)=2/12@9 1:[0,10)=3/20@9 1:[10,20)=3/42@19",
			    true, NULL, 1,
			    " +3 +13 [0,10)=1/3 +9 [0,10)=2/12 +14 +8 [0,10)=3/20 +15"
			    " [10,20)=3/42" };
	static const struct in s_evs[] = { { 1, 0 },  { 2, 0 },	 { 3, 14 },
					   { 1, 10 }, { 3, 15 }, { 2, 10 } };
	struct scenario s = { s_evs,
			      SL_ARRAY_SIZE(s_evs),
			      PER_RECORD(0),
			      { .kind = SL_WINDOW_SESSION, .gap = 10, .allowed_lateness = 5 },
			      false };
	struct expect se = { " 1:[0,10)=1/0@9 2:[0,10)=1/0@9 1:[0,20)=2/10@19 2:[10,20)=1/10@19"
			     " 3:[14,25)=2/29@24",
			     false, NULL, 0, NULL };

	check(&sc, &e);
	check(&s, &se);
}

/*
 * Late side output: only elements skipped by every window they belong
 * to, with ts + L <= watermark. Sliding 10 by 5, L = 0, per record,
 * B = 0, side output connected:
 *    1   -> [0,10), [-5,5); wm 0
 *   12   -> [10,20), [5,15); wm 11 fires and cleans [-5,5), [0,10)
 *    7   -> [5,15) takes it, [0,10) is late: NOT late (though 7 <= 11)
 *    3   -> [0,10), [-5,5) both late: side output
 *    9   -> [5,15) takes it: not late
 *   15   -> [15,25), [10,20); wm 14 fires and cleans [5,15) = {12, 7, 9}
 *   10   -> [10,20) takes it, [5,15) late: not late
 *    4   -> side output
 *   14   -> [10,20) takes it, [5,15) late (14 <= 14): not late
 *    9   -> [5,15) late (14 + 0 <= 14, the boundary), [0,10) late: side
 * end: [10,20) = {12, 15, 10, 14}, [15,25) = {15}.
 * Second case, tumbling 10, L = 5: 7 arrives at wm 12 with 7 + 5 <= 12,
 * but its window is not late (9 + 5 > 12): added, re-fired, not side;
 * after wm 14, 8 goes to the side output.
 * Third case, sliding 5 by 10 (windows [0,5), [10,15), ...; Flink
 * allows slide > size): 7 falls in no window while the watermark is
 * INT64_MIN: skipped by all (zero) windows but 7 + 0 > INT64_MIN, so it
 * is neither late nor counted; 20 (wm 19), then 8 (no window, 8 <= 19)
 * and 3 ([0,5) late) go to the side output; 21 joins [20,25).
 * Fourth case, sessions (gap 5): 0, 20 (wm 19 fires [0,5)), 3 ([3,8) is
 * late: side output), 16 ([16,21) touches [20,25): [16,25)).
 * Side output elements are not counted in late_records_dropped.
 */
static const struct in side_evs[] = { { 1, 1 },	 { 1, 12 }, { 1, 7 }, { 1, 3 },	 { 1, 9 },
				      { 1, 15 }, { 1, 10 }, { 1, 4 }, { 1, 14 }, { 1, 9 } };
static const char side_out[] = " 1:[-5,5)=1/1@4 1:[0,10)=1/1@9 1:[5,15)=3/28@14"
			       " 1:[10,20)=4/51@19 1:[15,25)=1/15@24";
static const struct in side2_evs[] = { { 1, 3 }, { 1, 13 }, { 1, 7 }, { 1, 15 }, { 1, 8 } };
static const char side2_out[] = " 1:[0,10)=1/3@9 1:[0,10)=2/10@9 1:[10,20)=2/28@19";
static const struct in side3_evs[] = { { 1, 7 }, { 1, 20 }, { 1, 8 }, { 1, 3 }, { 1, 21 } };
static const char side3_out[] = " 1:[20,25)=2/41@24";
static const struct in side4_evs[] = { { 1, 0 }, { 1, 20 }, { 1, 3 }, { 1, 16 } };
static const char side4_out[] = " 1:[0,5)=1/0@4 1:[16,25)=2/36@24";
#define SIDE3_SPEC                                                \
	{                                                         \
		.kind = SL_WINDOW_SLIDING, .size = 5, .slide = 10 \
	}
#define SIDE4_SPEC                                  \
	{                                           \
		.kind = SL_WINDOW_SESSION, .gap = 5 \
	}

static void test_late_side_output(void)
{
	struct scenario sc = { side_evs,
			       SL_ARRAY_SIZE(side_evs),
			       PER_RECORD(0),
			       { .kind = SL_WINDOW_SLIDING, .size = 10, .slide = 5 },
			       true };
	struct expect e = { side_out, true, " 1:3@3 1:4@4 1:9@9", 0, NULL };
	struct scenario sc2 = { side2_evs,
				SL_ARRAY_SIZE(side2_evs),
				PER_RECORD(0),
				{ .kind = SL_WINDOW_TUMBLING, .size = 10, .allowed_lateness = 5 },
				true };
	struct expect e2 = { side2_out, true, " 1:8@8", 0, NULL };
	struct scenario sc3 = { side3_evs, 5, PER_RECORD(0), SIDE3_SPEC, true };
	struct expect e3 = { side3_out, true, " 1:8@8 1:3@3", 0, NULL };
	struct scenario sc4 = { side4_evs, 4, PER_RECORD(0), SIDE4_SPEC, true };
	struct expect e4 = { side4_out, true, " 1:3@3", 0, NULL };

	check(&sc, &e);
	check(&sc2, &e2);
	check(&sc3, &e3);
	check(&sc4, &e4);
}

/*
 * Without a late side output, the same late elements are counted in
 * late_records_dropped (read with sl_job_op_counters()): 3, 1, 2 and 1,
 * with the same window results (7 of the third case is not counted).
 */
static void test_late_counted(void)
{
	struct scenario sc = { side_evs,
			       SL_ARRAY_SIZE(side_evs),
			       PER_RECORD(0),
			       { .kind = SL_WINDOW_SLIDING, .size = 10, .slide = 5 },
			       false };
	struct expect e = { side_out, true, NULL, 3, NULL };
	struct scenario sc2 = { side2_evs,
				SL_ARRAY_SIZE(side2_evs),
				PER_RECORD(0),
				{ .kind = SL_WINDOW_TUMBLING, .size = 10, .allowed_lateness = 5 },
				false };
	struct expect e2 = { side2_out, true, NULL, 1, NULL };
	struct scenario sc3 = { side3_evs, 5, PER_RECORD(0), SIDE3_SPEC, false };
	struct expect e3 = { side3_out, true, NULL, 2, NULL };
	struct scenario sc4 = { side4_evs, 4, PER_RECORD(0), SIDE4_SPEC, false };
	struct expect e4 = { side4_out, true, NULL, 1, NULL };

	check(&sc, &e);
	check(&sc2, &e2);
	check(&sc3, &e3);
	check(&sc4, &e4);
}

/* "Last arrival": sum holds the value added last; merge() puts @src after @dst. */
static void last_add(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg)
{
	struct acc *x = acc;

	x->count++;
	x->sum = ((const struct ev *)elem)->val;
}

static void last_merge(void *dst, const void *src, void *arg)
{
	struct acc *d = dst;
	const struct acc *s = src;

	if (s->count > 0)
		d->sum = s->sum;
	d->count += s->count;
}

/*
 * Incremental aggregates keep one accumulator per key and window:
 * create() runs once per distinct (key, window) and add() once per
 * (element, window), with results holding every element. 400 elements,
 * ts i, key i % 5, in order with per-record watermarks (nothing late):
 * the expected pairs and counts come from brute force over the windows.
 * Tumbling 20: 20 windows x 5 keys = 100 accumulators, 400 adds; sliding
 * 20 by 10: 41 windows ([-10,10) .. [390,410)) x 5 keys = 205, 800 adds;
 * with and without merge() in the aggregate.
 * An order-sensitive aggregate shows why it matters: "last arrival" over
 * sliding 20 by 10, elements 12 then 3 (no watermarks). Per window, in
 * arrival order: [-10,10) = {3}: last 3; [0,20) = 12 then 3: last 3;
 * [10,30) = {12}: last 12. Flink calls merge() only for sessions.
 */
#define ACC_N 400

static void test_one_accumulator_per_key_window(void)
{
	static struct in evs[ACC_N];
	static const struct sl_window_spec specs[] = {
		{ .kind = SL_WINDOW_TUMBLING, .size = 20 },
		{ .kind = SL_WINDOW_SLIDING, .size = 20, .slide = 10 },
		{ .kind = SL_WINDOW_SLIDING, .size = 20, .slide = 10 },
	};
	static const bool no_merge[] = { false, false, true };
	static const uint64_t want_creates[] = { 100, 205, 205 };

	for (int i = 0; i < ACC_N; i++)
		evs[i] = (struct in){ i % 5, i };
	for (size_t s = 0; s < SL_ARRAY_SIZE(specs); s++) {
		int64_t slide =
		    specs[s].kind == SL_WINDOW_TUMBLING ? specs[s].size : specs[s].slide;
		struct scenario sc = { evs, ACC_N, PER_RECORD(0), specs[s], false };
		uint64_t pairs = 0, adds = 0;
		char *want = malloc(1 << 16);
		size_t used = 0;

		CU_ASSERT_PTR_NOT_NULL_FATAL(want);
		want[0] = '\0';
		/* Reference: every window start from -size to the last element. */
		for (int64_t start = -specs[s].size; start < ACC_N; start += slide)
			for (int64_t k = 0; k < 5; k++) {
				int64_t count = 0, sum = 0;

				for (int64_t t = start > 0 ? start : 0;
				     t < start + specs[s].size && t < ACC_N; t++)
					if (t % 5 == k)
						count++, sum += t;
				if (count == 0)
					continue;
				pairs++;
				adds += (uint64_t)count;
				used += (size_t)snprintf(want + used, (1 << 16) - used,
							 " %" PRId64 ":[%" PRId64 ",%" PRId64
							 ")=%" PRId64 "/%" PRId64 "@%" PRId64,
							 k, start, start + specs[s].size, count,
							 sum, start + specs[s].size - 1);
			}
		ASSERT_U64(pairs, want_creates[s]);
		for (unsigned p = 1; p <= 2; p++) {
			struct outcome o;

			outcome_init(&o);
			run(&sc, p, 0, no_merge[s], &o);
			ASSERT_U64(o.agg.creates, pairs);
			ASSERT_U64(o.agg.adds, adds);
			ASSERT_U64(o.agg.results, pairs);
			ASSERT_WORDS(tape_str(&o.out), want);
			ASSERT_U64(o.dropped, 0);
			outcome_fini(&o);
		}
		free(want);
	}

	{
		static const struct in last_evs[] = { { 1, 12 }, { 1, 3 } };
		struct arr_conf src = { .evs = last_evs, .n = 2, .per_poll = 1 };
		const struct sl_window_spec spec = { .kind = SL_WINDOW_SLIDING,
						     .size = 20,
						     .slide = 10 };
		struct outcome o;
		struct sl_aggregate agg;
		struct sl_job *job;

		outcome_init(&o);
		agg = count_sum(&o.agg);
		agg.add = last_add;
		agg.merge = last_merge;
		CU_ASSERT_FATAL(sl_job_create("last", &job) == 0);
		sl_sink(sl_window_aggregate(
			    sl_key_by(sl_source(job, "src", &arr_ops, &src, &ev_type), key_of_ev),
			    "w", &spec, &agg, &wout_type),
			"out", &wout_sink, &o.out);
		CU_ASSERT_EQUAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
		ASSERT_STR(tape_str(&o.out), " 1:[-10,10)=1/3@9 1:[0,20)=2/3@19 1:[10,30)=1/12@29");
		sl_job_destroy(job);
		outcome_fini(&o);
	}
}

/*
 * Timers are unique per (key, window, time): a window with many elements
 * fires once per watermark that passes it, not once per element.
 * Keys 1..3, each: ts 999, 998, ..., 0 (1000 elements of [0,1000),
 * B = 1000 so none is late), then key 1 at 2000 (wm 999): each key's
 * [0,1000) fires exactly once, 1000 elements, sum 499500. End: 1's
 * [2000,3000). Sessions (gap 5, B = 0): per key, 199 down to 0, each
 * merging into the session [0,204); 1000 (wm 999) fires each once.
 */
static void test_timers_unique(void)
{
	static struct in evs[3 * 1000 + 1], s_evs[3 * 200 + 1];
	struct scenario sc = { evs, SL_ARRAY_SIZE(evs), PER_RECORD(1000), TUMBLING(1000), false };
	struct expect e = { " 1:[0,1000)=1000/499500@999 2:[0,1000)=1000/499500@999"
			    " 3:[0,1000)=1000/499500@999 1:[2000,3000)=1/2000@2999",
			    false, NULL, 0, NULL };
	struct scenario s = { s_evs,
			      SL_ARRAY_SIZE(s_evs),
			      PER_RECORD(0),
			      { .kind = SL_WINDOW_SESSION, .gap = 5 },
			      false };
	struct expect se = { " 1:[0,204)=200/19900@203 2:[0,204)=200/19900@203"
			     " 3:[0,204)=200/19900@203 1:[1000,1005)=1/1000@1004",
			     false, NULL, 0, NULL };

	for (int k = 0; k < 3; k++) {
		for (int i = 0; i < 1000; i++)
			evs[k * 1000 + i] = (struct in){ k + 1, 999 - i };
		for (int i = 0; i < 200; i++)
			s_evs[k * 200 + i] = (struct in){ k + 1, 199 - i };
	}
	evs[3000] = (struct in){ 1, 2000 };
	s_evs[600] = (struct in){ 1, 1000 };
	check(&sc, &e);
	check(&s, &se);
}

/*
 * Firing order is by timestamp: windows registered in reverse order,
 * over different keys, fire by end - 1 when one watermark passes them
 * all, and at the end. B = 100, per record: 95 (key 1), 85 (key 2), ...,
 * 5 (key 10) open [90,100), [80,90), ..., [0,10), wm -6; then key 11 at
 * 210 (wm 109) fires [0,10) .. [90,100) in that order; end: [210,220).
 * At window parallelism 1 the sink sees the firing order.
 */
static void test_timers_fire_in_order(void)
{
	static struct in evs[11];
	char want[1024];
	size_t used = 0;
	struct scenario sc = { evs, 11, PER_RECORD(100), TUMBLING(10), false };
	struct expect e = { want, true, NULL, 0, NULL };

	for (int i = 0; i < 10; i++)
		evs[i] = (struct in){ i + 1, 95 - 10 * i };
	evs[10] = (struct in){ 11, 210 };
	for (int i = 9; i >= 0; i--)
		used +=
		    (size_t)snprintf(want + used, sizeof(want) - used, " %d:[%d,%d)=1/%d@%d", i + 1,
				     90 - 10 * i, 100 - 10 * i, 95 - 10 * i, 99 - 10 * i);
	snprintf(want + used, sizeof(want) - used, " 11:[210,220)=1/210@219");
	check(&sc, &e);
}

int main(void)
{
	static CU_TestInfo tests[] = {
		{ "time: initial watermark is INT64_MIN", test_initial_watermark },
		{ "time: bounded out-of-orderness emits M - B - 1", test_bounded_out_of_orderness },
		{ "time: monotonous is B = 0", test_monotonous },
		{ "time: watermark forwarded only when larger", test_forwarded_only_when_larger },
		{ "time: per-record watermark judges a record by the records before it",
		  test_per_record_judged_by_records_before },
		{ "time: periodic emission default 200 ms", test_periodic_default },
		{ "time: per-record option every N records is exact", test_every_n_exact },
		{ "time: input watermark is the minimum over channels",
		  test_input_watermark_minimum },
		{ "time: watermarks broadcast to every output channel", test_watermark_broadcast },
		{ "time: final INT64_MAX watermark fires pending windows at end of bounded input",
		  test_final_watermark },
		{ "window: [start,end) stamped end - 1", test_window_stamped_end_minus_1 },
		{ "window: tumbling start with offset and negative timestamps",
		  test_tumbling_offset_negative },
		{ "window: sliding assignment with offset", test_sliding_offset },
		{ "window: session windows merge when touching", test_session_merge_touching },
		{ "window: default event-time trigger fires at once when end - 1 <= watermark",
		  test_trigger_fires_at_once },
		{ "window: allowed lateness skips late windows", test_lateness_skips_late_windows },
		{ "window: late element re-fires with updated contents",
		  test_late_element_refires },
		{ "window: cleanup timer at end - 1 + L", test_cleanup_timer },
		{ "window: late side output only when all windows skipped and ts + L <= watermark",
		  test_late_side_output },
		{ "window: late records counted when no side output", test_late_counted },
		{ "window: incremental aggregate keeps one accumulator per key and window",
		  test_one_accumulator_per_key_window },
		{ "window: timers unique per (key, namespace, timestamp)", test_timers_unique },
		{ "window: timers fire in timestamp order", test_timers_fire_in_order },
		{ "time: initial watermark is INT64_MIN (element at INT64_MIN is late)",
		  test_initial_watermark_min_element },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("semantics", tests);
}
