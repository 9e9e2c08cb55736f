/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_idleness.c — SEMANTICS.md's idleness and per-split rules of "Time
 * and watermarks", one test per rule, named after the rule.
 *
 * Two levels:
 *  - the bookkeeping itself (core/watermark.c: the per-split generator
 *    and the channel valve), driven call by call with an explicit clock,
 *    against expectations worked out by hand;
 *  - real jobs through sl_job_run(), observed through their effects: a
 *    window at parallelism 1 logs every element it adds ("+key/ts") and
 *    every firing ("key:[start,end)=count") in the order it does them, and
 *    with per-record watermarks (every = 1) that order is exact: it tells
 *    what the watermark was at each element.
 *
 * No timed assertion: idleness in the jobs is driven by a platform clock
 * the test moves itself (sl_platform.now_ms); sources wait for what they
 * need to see (a window fired, an element added) and give up after a
 * generous real-time limit, which counts as a failure. The backpressure
 * test runs on the real clock with a 1 ms timeout: it only asserts that
 * nothing ever went idle (no element was late), whatever the timing.
 *
 * Threads: jobs run on the runtime's workers; the log and the scenario
 * state are shared under a mutex or atomically, and read by the test
 * after sl_job_run() returned.
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
#include "sli_watermark.h"

#define MS 1000000ull /* the generator's clock is in ns */

static char errbuf[512];

/* ------------------------------------------------- generator (units) */

static struct sl_watermark_strategy strat(uint64_t every, int64_t idle_ms)
{
	return (struct sl_watermark_strategy){ .every = every, .idle_timeout_ms = idle_ms };
}

static void test_gen_idle_until_next_record(void)
{
	struct sl_watermark_strategy ws = strat(1, 10);
	struct sli_wmgen g;
	unsigned ev;

	sli_wmgen_init(&g, &ws);
	CU_ASSERT_FATAL(sli_wmgen_grow(&g, 1, 0, &ev) == 0);
	CU_ASSERT(ev == 0);
	CU_ASSERT(sli_wmgen_activity(&g, 0, 0) == 0);
	CU_ASSERT(sli_wmgen_record(&g, 0, 5) == SLI_WM_ADVANCE);
	CU_ASSERT(g.out == 4);
	/* No record for 9 ms: still active; for 10 ms: idle, said once. */
	CU_ASSERT(sli_wmgen_check_idle(&g, 9 * MS) == 0);
	CU_ASSERT(!g.idle);
	CU_ASSERT(sli_wmgen_check_idle(&g, 10 * MS) == SLI_WM_IDLE);
	CU_ASSERT(g.idle);
	CU_ASSERT(sli_wmgen_check_idle(&g, 500 * MS) == 0);
	/* Its next record: ACTIVE before it, then its watermark. */
	CU_ASSERT(sli_wmgen_activity(&g, 0, 600 * MS) == SLI_WM_ACTIVE);
	CU_ASSERT(!g.idle);
	CU_ASSERT(sli_wmgen_record(&g, 0, 7) == SLI_WM_ADVANCE);
	CU_ASSERT(g.out == 6);
	/* The timeout counts from that record again. */
	CU_ASSERT(sli_wmgen_check_idle(&g, 609 * MS) == 0);
	CU_ASSERT(sli_wmgen_check_idle(&g, 610 * MS) == SLI_WM_IDLE);
	sli_wmgen_fini(&g);

	/* Without a timeout nothing is ever idle. */
	ws = strat(1, 0);
	sli_wmgen_init(&g, &ws);
	CU_ASSERT_FATAL(sli_wmgen_grow(&g, 1, 0, &ev) == 0);
	CU_ASSERT(sli_wmgen_check_idle(&g, UINT64_MAX / 2) == 0);
	sli_wmgen_fini(&g);
}

static void test_gen_per_split_minimum(void)
{
	struct sl_watermark_strategy ws = strat(1, 10);
	struct sli_wmgen g;
	unsigned ev;

	sli_wmgen_init(&g, &ws);
	CU_ASSERT_FATAL(sli_wmgen_grow(&g, 2, 0, &ev) == 0);
	/* Split 1 has no record yet: it holds the watermark at MIN. */
	sli_wmgen_activity(&g, 0, 0);
	CU_ASSERT(sli_wmgen_record(&g, 0, 100) == 0);
	CU_ASSERT(g.out == INT64_MIN);
	sli_wmgen_activity(&g, 1, 0);
	CU_ASSERT(sli_wmgen_record(&g, 1, 50) == SLI_WM_ADVANCE);
	CU_ASSERT(g.out == 49); /* min(99, 49) */
	CU_ASSERT(sli_wmgen_record(&g, 0, 200) == 0);
	CU_ASSERT(sli_wmgen_record(&g, 1, 300) == SLI_WM_ADVANCE);
	CU_ASSERT(g.out == 199);
	/* Split 0 finished: it no longer holds the watermark back. */
	CU_ASSERT(sli_wmgen_end_split(&g, 0) == SLI_WM_ADVANCE);
	CU_ASSERT(g.out == 299);
	CU_ASSERT(sli_wmgen_end_split(&g, 0) == 0);
	/* A split found later holds it back, but it never goes back. */
	CU_ASSERT_FATAL(sli_wmgen_grow(&g, 3, 0, &ev) == 0);
	sli_wmgen_activity(&g, 2, 0);
	CU_ASSERT(sli_wmgen_record(&g, 2, 10) == 0);
	CU_ASSERT(sli_wmgen_record(&g, 1, 400) == 0);
	CU_ASSERT(g.out == 299);
	/* Split 2 idle (no record for 10 ms; split 1 had one at 5 ms). */
	sli_wmgen_activity(&g, 1, 5 * MS);
	CU_ASSERT(sli_wmgen_record(&g, 1, 401) == 0);
	CU_ASSERT(sli_wmgen_check_idle(&g, 10 * MS) == SLI_WM_ADVANCE);
	CU_ASSERT(g.out == 400 && !g.idle);
	/* Split 2 back, behind: it holds the watermark until it catches up. */
	CU_ASSERT(sli_wmgen_activity(&g, 2, 11 * MS) == 0);
	CU_ASSERT(sli_wmgen_record(&g, 2, 20) == 0);
	CU_ASSERT(sli_wmgen_record(&g, 1, 900) == 0);
	CU_ASSERT(g.out == 400);
	CU_ASSERT(sli_wmgen_record(&g, 2, 700) == SLI_WM_ADVANCE);
	CU_ASSERT(g.out == 699);
	/* Both idle: the subtask is idle; a new split makes it active. */
	CU_ASSERT(sli_wmgen_check_idle(&g, 100 * MS) == SLI_WM_IDLE);
	CU_ASSERT_FATAL(sli_wmgen_grow(&g, 4, 100 * MS, &ev) == 0);
	CU_ASSERT(ev == SLI_WM_ACTIVE);
	sli_wmgen_fini(&g);

	/* Periodic emission: records move nothing until the tick. */
	ws = strat(0, 0);
	sli_wmgen_init(&g, &ws);
	CU_ASSERT_FATAL(sli_wmgen_grow(&g, 2, 0, &ev) == 0);
	CU_ASSERT(sli_wmgen_record(&g, 0, 100) == 0);
	CU_ASSERT(sli_wmgen_record(&g, 1, 30) == 0);
	CU_ASSERT(sli_wmgen_periodic(&g) == SLI_WM_ADVANCE);
	CU_ASSERT(g.out == 29);
	CU_ASSERT(sli_wmgen_periodic(&g) == 0);
	sli_wmgen_fini(&g);
}

/* ----------------------------------------------------- valve (units) */

static void test_valve_idle_excluded(void)
{
	struct sli_valve v;

	CU_ASSERT_FATAL(sli_valve_init(&v, 2) == 0);
	CU_ASSERT(sli_valve_watermark(&v, 0, 10) == 0); /* channel 1 still at MIN */
	CU_ASSERT(sli_valve_watermark(&v, 1, 5) == SLI_WM_ADVANCE);
	CU_ASSERT(v.out == 5);
	/* Channel 1 idle: the minimum is over channel 0 alone. */
	CU_ASSERT(sli_valve_status(&v, 1, true) == SLI_WM_ADVANCE);
	CU_ASSERT(v.out == 10 && !v.idle);
	CU_ASSERT(sli_valve_watermark(&v, 1, 7) == 0); /* ignored while idle */
	CU_ASSERT(sli_valve_watermark(&v, 0, 20) == SLI_WM_ADVANCE);
	CU_ASSERT(v.out == 20);
	/* Back, behind the output: it does not count until it catches up. */
	CU_ASSERT(sli_valve_status(&v, 1, false) == 0);
	CU_ASSERT(sli_valve_watermark(&v, 1, 15) == 0);
	CU_ASSERT(v.out == 20); /* never back */
	CU_ASSERT(sli_valve_watermark(&v, 0, 30) == SLI_WM_ADVANCE);
	CU_ASSERT(v.out == 30);
	CU_ASSERT(sli_valve_watermark(&v, 1, 31) == 0); /* caught up: counts again */
	CU_ASSERT(sli_valve_watermark(&v, 0, 40) == SLI_WM_ADVANCE);
	CU_ASSERT(v.out == 31);
	/* An ended channel holds nothing back either. */
	CU_ASSERT(sli_valve_end(&v, 1) == SLI_WM_ADVANCE);
	CU_ASSERT(v.out == 40);
	sli_valve_fini(&v);
}

static void test_valve_all_idle(void)
{
	struct sli_valve v;

	CU_ASSERT_FATAL(sli_valve_init(&v, 3) == 0);
	sli_valve_watermark(&v, 0, 10);
	sli_valve_watermark(&v, 1, 20);
	CU_ASSERT(sli_valve_watermark(&v, 2, 30) == SLI_WM_ADVANCE);
	CU_ASSERT(v.out == 10);
	CU_ASSERT(sli_valve_status(&v, 1, true) == 0);
	CU_ASSERT(sli_valve_status(&v, 2, true) == 0);
	/* The last active channel, holding the output, turns idle: flush, then idle. */
	CU_ASSERT(sli_valve_status(&v, 0, true) == (SLI_WM_ADVANCE | SLI_WM_IDLE));
	CU_ASSERT(v.out == 30 && v.idle);
	CU_ASSERT(sli_valve_status(&v, 0, true) == 0);
	CU_ASSERT(sli_valve_watermark(&v, 2, 99) == 0); /* idle: ignored */
	/* One back: active again, once. */
	CU_ASSERT(sli_valve_status(&v, 2, false) == SLI_WM_ACTIVE);
	CU_ASSERT(sli_valve_status(&v, 0, false) == 0);
	CU_ASSERT(!v.idle);
	/* Channel 0 ends, channel 2 idles: all that is left is idle. */
	CU_ASSERT(sli_valve_end(&v, 0) == 0);
	CU_ASSERT(sli_valve_status(&v, 2, true) == SLI_WM_IDLE);
	CU_ASSERT(v.idle);
	sli_valve_fini(&v);
}

/* -------------------------------------------------------------- jobs */

struct ev {
	int64_t key;
	int64_t val;
};
static const struct sl_type ev_type = SL_TYPE(struct ev);

struct wout {
	int64_t key, start, end, count;
};
static const struct sl_type wout_type = SL_TYPE(struct wout);

static void key_of_ev(const void *elem, const struct sl_batch *src, struct sl_key *out)
{
	(void)src;
	out->ptr = &((const struct ev *)elem)->key;
	out->len = sizeof(int64_t);
}

#define GIVE_UP_S 60

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* What a scenario's sources, window and test share. */
struct scen {
	pthread_mutex_t lock;
	char *log; /* " +key/ts" per element added, " key:[s,e)=n" per firing */
	size_t len, cap;
	_Atomic int64_t clock_ms; /* the platform clock */
	_Atomic int phase;
	_Atomic int64_t b_last; /* B's last timestamp */
	_Atomic int64_t x;	/* A's timestamp when it comes back, 0 before */
	_Atomic int b_ended, a_ended;
	_Atomic int fired_first; /* the window of the first element fired */
	_Atomic unsigned polled; /* bit i: subtask i of a silent source was polled */
	int64_t first_key;
	double deadline;
	_Atomic bool gave_up;
	struct sl_platform pf;
};

static int64_t scen_now(void *ctx)
{
	return atomic_load(&((struct scen *)ctx)->clock_ms);
}

static void scen_init(struct scen *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	atomic_store(&s->clock_ms, 1000000);
	s->deadline = now_s() + GIVE_UP_S;
	s->pf.ctx = s;
	s->pf.now_ms = scen_now;
}

static void scen_fini(struct scen *s)
{
	free(s->log);
	pthread_mutex_destroy(&s->lock);
}

static void logf_(struct scen *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct scen *s, const char *fmt, ...)
{
	char word[96];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(word, sizeof(word), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&s->lock);
	if (s->len + (size_t)n + 1 > s->cap) {
		size_t ncap = (s->cap + (size_t)n + 1) * 2;
		char *nl = realloc(s->log, ncap);

		if (nl == NULL) {
			pthread_mutex_unlock(&s->lock);
			abort();
		}
		s->log = nl;
		s->cap = ncap;
	}
	memcpy(s->log + s->len, word, (size_t)n + 1);
	s->len += (size_t)n;
	pthread_mutex_unlock(&s->lock);
}

/* Offset of " word" (a whole word) in the log, or -1. Under the lock. */
static long log_find(struct scen *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static long log_find(struct scen *s, const char *fmt, ...)
{
	char word[96];
	size_t wl;
	long at = -1;
	va_list ap;

	word[0] = ' ';
	va_start(ap, fmt);
	vsnprintf(word + 1, sizeof(word) - 1, fmt, ap);
	va_end(ap);
	wl = strlen(word);
	pthread_mutex_lock(&s->lock);
	for (const char *p = s->log; p != NULL && (p = strstr(p, word)) != NULL; p += wl)
		if (p[wl] == ' ' || p[wl] == '\0') {
			at = p - s->log;
			break;
		}
	pthread_mutex_unlock(&s->lock);
	return at;
}

static bool expired(struct scen *s)
{
	if (now_s() <= s->deadline)
		return false;
	atomic_store(&s->gave_up, true);
	return true;
}

/* The aggregate: a count, and the log. */
struct acc {
	int64_t n;
};

static void acc_create(void *acc, void *arg)
{
	(void)arg;
	((struct acc *)acc)->n = 0;
}

static void acc_add(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg)
{
	(void)src;
	((struct acc *)acc)->n++;
	logf_(arg, " +%" PRId64 "/%" PRId64, ((const struct ev *)elem)->key, ts);
}

static void acc_merge(void *dst, const void *src, void *arg)
{
	(void)arg;
	((struct acc *)dst)->n += ((const struct acc *)src)->n;
}

static int acc_result(const struct sl_window *w, const struct sl_key *key, const void *acc,
		      struct sl_collector *out, void *arg)
{
	struct scen *s = arg;
	struct wout o = { 0, w->start, w->end, ((const struct acc *)acc)->n };

	memcpy(&o.key, key->ptr, sizeof(o.key));
	logf_(s, " %" PRId64 ":[%" PRId64 ",%" PRId64 ")=%" PRId64, o.key, o.start, o.end, o.count);
	if (o.key == s->first_key && w->start == 0)
		atomic_store(&s->fired_first, 1);
	return sl_emit(out, &o, w->end - 1, NULL);
}

/* A sink that drops what it gets (the log is what the tests read). */
static int null_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	(void)info;
	*state = arg;
	return 0;
}

static int null_write(void *state, const struct sl_batch *b)
{
	(void)state, (void)b;
	return 0;
}

static int null_finish(void *state)
{
	(void)state;
	return 0;
}

static void null_close(void *state)
{
	(void)state;
}

static const struct sl_sink_ops null_sink = {
	.open = null_open, .write = null_write, .finish = null_finish, .close = null_close
};

/*
 * A scripted source: next() decides each poll, from the scenario's state:
 * 1 with one element to emit, 0 for nothing now, -1 for the end.
 */
struct script {
	struct scen *s;
	int (*next)(struct script *c, unsigned index, struct ev *e, int64_t *ts);
	int64_t i, j, k; /* the script's own counters (one subtask) */
};

#define CLOCK_JUMP_MS 1000
#define CLOCK_JUMPED  (1000000 + CLOCK_JUMP_MS)

/*
 * Whether a source that saw the clock jump may wait now: only after it
 * emitted an element in two polls that saw the jump (the runtime reads
 * the clock just before poll(), so the first of them may not have
 * counted it yet). A source silent at the poll that counts the jump
 * would be idle.
 */
static bool jump_counted(struct script *c)
{
	return c->k >= 2;
}

static int count_jump(struct script *c)
{
	if (atomic_load(&c->s->clock_ms) >= CLOCK_JUMPED)
		c->k++;
	return 1;
}

struct script_state {
	struct script *c;
	unsigned index;
};

static int script_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	struct script_state *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return -ENOMEM;
	st->c = arg;
	st->index = info->index;
	*state = st;
	return 0;
}

static int script_poll(void *state, struct sl_batch *out)
{
	struct script_state *st = state;
	struct ev *e = sl_batch_elem(out, 0);
	int rc = st->c->next(st->c, st->index, e, &out->ts[0]);

	return rc < 0 ? SL_SOURCE_END : rc;
}

static void script_close(void *state)
{
	free(state);
}

static const struct sl_source_ops script_ops = { .open = script_open,
						 .poll = script_poll,
						 .close = script_close };

/* Tumbling 100 ms windows keyed by ev.key at parallelism 1, logging into @s. */
static struct sl_stream *window(struct sl_stream *in, struct scen *s, struct sl_aggregate *agg)
{
	static const struct sl_window_spec spec = { .kind = SL_WINDOW_TUMBLING, .size = 100 };

	*agg = (struct sl_aggregate){
		.acc_size = sizeof(struct acc),
		.create = acc_create,
		.add = acc_add,
		.merge = acc_merge,
		.result = acc_result,
		.arg = s,
	};
	in = sl_window_aggregate(sl_key_by(in, key_of_ev), "w", &spec, agg, &wout_type);
	return sl_set_parallelism(in, 1);
}

static void set_opt(struct sl_job *job, const char *key, unsigned v)
{
	char val[16];

	snprintf(val, sizeof(val), "%u", v);
	CU_ASSERT(sl_job_set(job, key, val, errbuf, sizeof(errbuf)) == 0);
}

/*
 * Scenario "A idles, B runs" (per-record watermarks, B = 0, idleness
 * 100 ms of the scenario clock, windows of 100):
 *   A: {1, 0}; once B is at 190, it sets phase 1 and moves the clock 1 s
 *      (so it is idle at its next poll); waits until key 1's [0,100)
 *      fired; with @back, emits {1, X} with X far ahead of B (and
 *      publishes X), then {1, X + 1}; ends after B.
 *   B: {2, 10 i} for i = 0..19; waits for phase 1; then one element per
 *      poll, never waiting (so the clock's jump never finds it silent:
 *      jump_counted()), until [0,100) of key 1 fired; then with @back it
 *      waits (the clock stands still: it cannot turn idle) until the
 *      window added A's X + 1 (so A's watermark X - 1 before it reached
 *      the valve first), and emits X + 10 j for j = 1..500; ends.
 * [0,100) of key 1 can fire before the end only if A's channel no longer
 * holds the window's watermark at -1: A idle, and excluded.
 */
struct ab {
	struct script a, b;
	bool back;
};

static int a_next(struct script *c, unsigned index, struct ev *e, int64_t *ts)
{
	struct scen *s = c->s;
	struct ab *ab = (struct ab *)((char *)c - offsetof(struct ab, a));

	(void)index;
	switch (c->i) {
	case 0:
		*e = (struct ev){ 1, 0 };
		*ts = 0;
		c->i = 1;
		return 1;
	case 1:
		if (atomic_load(&s->b_last) < 190 && !expired(s))
			return 0;
		atomic_store(&s->phase, 1); /* before the clock moves: B sees it first */
		atomic_fetch_add(&s->clock_ms, CLOCK_JUMP_MS);
		c->i = 2;
		return 0;
	case 2:
		if (!atomic_load(&s->fired_first) && !expired(s))
			return 0;
		atomic_store(&s->phase, 2);
		c->i = 3;
		if (!ab->back)
			return 0;
		{
			int64_t x = (atomic_load(&s->b_last) + 100000) / 100 * 100;

			atomic_store(&s->x, x);
			*e = (struct ev){ 1, x };
			*ts = x;
			return 1;
		}
	case 3:
		/*
		 * X + 1 follows A's watermark X - 1 in A's channel: once the
		 * window added it, the valve has seen that watermark, so B may
		 * go past X without racing it (B waits for this add).
		 */
		c->i = 4;
		if (ab->back) {
			int64_t x1 = atomic_load(&s->x) + 1;

			*e = (struct ev){ 1, x1 };
			*ts = x1;
			return 1;
		}
		return 0;
	default:
		/*
		 * End only once the window added B's last element: B's end is
		 * announced when its source ends, with elements still in flight,
		 * and A's end would let them all fire early.
		 */
		if ((!atomic_load(&s->b_ended) ||
		     log_find(s, "+2/%" PRId64, atomic_load(&s->b_last)) < 0) &&
		    !expired(s))
			return 0;
		atomic_store(&s->a_ended, 1);
		return -1;
	}
}

static int b_emit(struct scen *s, struct ev *e, int64_t *ts, int64_t t)
{
	*e = (struct ev){ 2, t };
	*ts = t;
	atomic_store(&s->b_last, t);
	return 1;
}

static int b_next(struct script *c, unsigned index, struct ev *e, int64_t *ts)
{
	struct scen *s = c->s;
	struct ab *ab = (struct ab *)((char *)c - offsetof(struct ab, b));
	int64_t x;

	(void)index;
	if (c->i < 20)
		return b_emit(s, e, ts, 10 * c->i++);
	if (atomic_load(&s->phase) < 1)
		return expired(s) ? (atomic_store(&s->b_ended, 1), -1) : 0;
	if (!jump_counted(c) || (atomic_load(&s->phase) < 2 && !atomic_load(&s->fired_first))) {
		if (expired(s) || c->i > 5000000)
			return atomic_store(&s->gave_up, true), atomic_store(&s->b_ended, 1), -1;
		return count_jump(c), b_emit(s, e, ts, 10 * c->i++);
	}
	if (!ab->back && c->j++ == 0)
		return b_emit(s, e, ts, 10 * c->i++); /* sent after the firing: added after it */
	if (!ab->back || c->j >= 500) {
		atomic_store(&s->b_ended, 1);
		return -1;
	}
	x = atomic_load(&s->x);
	if (x == 0 || log_find(s, "+1/%" PRId64, x + 1) < 0)
		return expired(s) ? (atomic_store(&s->b_ended, 1), -1) : 0;
	return b_emit(s, e, ts, x + 10 * ++c->j);
}

static void run_ab(struct scen *s, struct ab *ab, uint64_t *dropped)
{
	struct sl_watermark_strategy ws = { .every = 1, .idle_timeout_ms = 100 };
	struct sl_aggregate agg;
	struct sl_stream *a, *b;
	struct sl_job *job;
	uint64_t bad;

	ab->a = (struct script){ .s = s, .next = a_next };
	ab->b = (struct script){ .s = s, .next = b_next };
	s->first_key = 1;
	CU_ASSERT_FATAL(sl_job_create("idle-ab", &job) == 0);
	set_opt(job, "batch-size", 1);
	a = sl_assign_watermarks(sl_source(job, "a", &script_ops, &ab->a, &ev_type), &ws);
	b = sl_assign_watermarks(sl_source(job, "b", &script_ops, &ab->b, &ev_type), &ws);
	sl_sink(window(sl_union(a, b), s, &agg), "out", &null_sink, NULL);
	CU_ASSERT_EQUAL(sl_job_run(job, &s->pf, errbuf, sizeof(errbuf)), 0);
	CU_ASSERT_EQUAL(sl_job_op_counters(job, "w", &bad, dropped), 0);
	sl_job_destroy(job);
}

static void test_idle_excluded_from_minimum(void)
{
	struct scen s;
	struct ab ab = { .back = false };
	uint64_t dropped = 1;
	long fire, end;

	scen_init(&s);
	run_ab(&s, &ab, &dropped);
	CU_ASSERT_FALSE(atomic_load(&s.gave_up));
	CU_ASSERT(atomic_load(&s.fired_first));
	CU_ASSERT_EQUAL(dropped, 0);
	/* [0,100) of key 1 fired while B still ran: before B's last element. */
	fire = log_find(&s, "1:[0,100)=1");
	end = log_find(&s, "+2/%" PRId64, atomic_load(&s.b_last));
	CU_ASSERT(fire >= 0 && end >= 0 && fire < end);
	scen_fini(&s);
}

static void test_split_idle_until_next_record(void)
{
	struct scen s;
	struct ab ab = { .back = true };
	uint64_t dropped = 1;
	long fire0, addx, fire_after, last;
	int64_t x;

	scen_init(&s);
	run_ab(&s, &ab, &dropped);
	CU_ASSERT_FALSE(atomic_load(&s.gave_up));
	CU_ASSERT_EQUAL(dropped, 0);
	x = atomic_load(&s.x);
	CU_ASSERT_FATAL(x > 0);
	/* Idle: [0,100) of key 1 fired before A came back with X... */
	fire0 = log_find(&s, "1:[0,100)=1");
	addx = log_find(&s, "+1/%" PRId64, x);
	CU_ASSERT(fire0 >= 0 && addx >= 0 && fire0 < addx);
	/*
	 * ...and from X on A holds the watermark at X - 1 again: B's windows
	 * past X fire only at the end, after B's last element. Had A stayed
	 * idle, [X+100,X+200) would fire right after B's X + 200.
	 */
	fire_after = log_find(&s, "2:[%" PRId64 ",%" PRId64 ")=10", x + 100, x + 200);
	last = log_find(&s, "+2/%" PRId64, x + 5000);
	CU_ASSERT(fire_after >= 0 && last >= 0 && last < fire_after);
	CU_ASSERT(log_find(&s, "1:[%" PRId64 ",%" PRId64 ")=2", x, x + 100) > last);
	scen_fini(&s);
}

/*
 * "A task whose inputs are all idle is idle": A runs at parallelism 2 and
 * never emits; a map at parallelism 1 (its own task, two input channels)
 * follows it; the window unions the map with B. B moves the clock once
 * it is at 190 and both of A's subtasks were polled (their idleness
 * clocks run from their first poll), and emits one element per poll,
 * never waiting, until
 * [0,100) of key 2 fired. That needs the map's channel out of the
 * window's minimum: both of the map's inputs idle, so the map idle, and
 * saying so downstream.
 */
static int silent_next(struct script *c, unsigned index, struct ev *e, int64_t *ts)
{
	(void)e, (void)ts;
	atomic_fetch_or(&c->s->polled, 1u << index);
	if (!atomic_load(&c->s->b_ended) && !expired(c->s))
		return 0;
	return -1;
}

static int b2_next(struct script *c, unsigned index, struct ev *e, int64_t *ts)
{
	struct scen *s = c->s;

	(void)index;
	/* Once both of A's subtasks were polled (their clocks started), move the clock. */
	if (c->i >= 20 && atomic_load(&s->phase) == 0 && atomic_load(&s->polled) == 3) {
		atomic_store(&s->phase, 1);
		atomic_fetch_add(&s->clock_ms, CLOCK_JUMP_MS); /* A times out at its next polls */
	}
	if (atomic_load(&s->fired_first) && c->j++ >= 10) {
		atomic_store(&s->b_ended, 1);
		return -1;
	}
	if (expired(s) || c->i > 5000000) {
		atomic_store(&s->gave_up, true);
		atomic_store(&s->b_ended, 1);
		return -1;
	}
	return b_emit(s, e, ts, 10 * c->i++);
}

static int pass_map(const void *in, void *out, void *arg)
{
	(void)arg;
	memcpy(out, in, sizeof(struct ev));
	return 0;
}

static void test_task_all_inputs_idle(void)
{
	struct sl_watermark_strategy ws = { .every = 1, .idle_timeout_ms = 100 };
	struct script a, b;
	struct sl_aggregate agg;
	struct sl_stream *sa, *sb, *m;
	struct sl_job *job;
	struct scen s;
	uint64_t bad, dropped = 1;
	long fire, end;

	scen_init(&s);
	s.first_key = 2;
	a = (struct script){ .s = &s, .next = silent_next };
	b = (struct script){ .s = &s, .next = b2_next };
	CU_ASSERT_FATAL(sl_job_create("idle-task", &job) == 0);
	set_opt(job, "batch-size", 1);
	sa = sl_assign_watermarks(sl_source(job, "a", &script_ops, &a, &ev_type), &ws);
	sa = sl_set_parallelism(sa, 2);
	m = sl_set_parallelism(sl_map(sl_rebalance(sa), "m", pass_map, NULL, &ev_type), 1);
	m = sl_disable_chaining(m);
	sb = sl_assign_watermarks(sl_source(job, "b", &script_ops, &b, &ev_type), &ws);
	sl_sink(window(sl_union(m, sb), &s, &agg), "out", &null_sink, NULL);
	CU_ASSERT_EQUAL(sl_job_run(job, &s.pf, errbuf, sizeof(errbuf)), 0);
	CU_ASSERT_EQUAL(sl_job_op_counters(job, "w", &bad, &dropped), 0);
	sl_job_destroy(job);
	CU_ASSERT_FALSE(atomic_load(&s.gave_up));
	CU_ASSERT(atomic_load(&s.fired_first));
	CU_ASSERT_EQUAL(dropped, 0);
	fire = log_find(&s, "2:[0,100)=10");
	end = log_find(&s, "+2/%" PRId64, atomic_load(&s.b_last));
	CU_ASSERT(fire >= 0 && end >= 0 && fire < end);
	scen_fini(&s);
}

/*
 * "A backpressured split is not idle", on the real clock with a 1 ms
 * timeout: S has BP_N elements always available (ts = i, key i % 4) and
 * is slowed by a map in its own task that sleeps per batch, behind rings
 * of 2 batches of 4; T emits {9, 10^9} and is silent until S ended (so T
 * is idle after 1 ms). Had S ever turned idle while backpressured, the
 * window's watermark would have jumped to T's 10^9 - 1 (T's channel alone
 * counting, or all idle: the maximum) and S's later elements would be
 * late. So: nothing late, every element in a window.
 */
#define BP_N 3000

static int s_next(struct script *c, unsigned index, struct ev *e, int64_t *ts)
{
	(void)index;
	if (c->i == BP_N) {
		atomic_store(&c->s->b_ended, 1);
		return -1;
	}
	*e = (struct ev){ c->i % 4, c->i };
	*ts = c->i++;
	return 1;
}

static int t_next(struct script *c, unsigned index, struct ev *e, int64_t *ts)
{
	(void)index;
	if (c->i++ == 0) {
		*e = (struct ev){ 9, 1000000000 };
		*ts = 1000000000;
		return 1;
	}
	/*
	 * Silent until S ended, however long that takes: S ends after BP_N
	 * elements whatever the machine's speed (a deadline here failed the
	 * test on a loaded machine under TSan, where the 750 sleeping batches
	 * took more than GIVE_UP_S); a hung job is the test timeout's.
	 */
	return atomic_load(&c->s->b_ended) ? -1 : 0;
}

static int slow_map(const struct sl_batch *in, struct sl_batch *out, void *arg)
{
	struct timespec d = { 0, 200000 };

	(void)arg;
	nanosleep(&d, NULL);
	memcpy(out->data, in->data, (size_t)in->n * sizeof(struct ev));
	memcpy(out->ts, in->ts, in->n * sizeof(int64_t));
	out->n = in->n;
	return 0;
}

/* Sums the window counts (the sink of the backpressure test). */
static _Atomic int64_t bp_total;

static int count_write(void *state, const struct sl_batch *b)
{
	(void)state;
	for (uint32_t i = 0; i < b->n; i++)
		atomic_fetch_add(&bp_total, ((const struct wout *)sl_batch_elem(b, i))->count);
	return 0;
}

static const struct sl_sink_ops count_sink = {
	.open = null_open, .write = count_write, .finish = null_finish, .close = null_close
};

static void test_backpressured_not_idle(void)
{
	struct sl_watermark_strategy ws = { .every = 1, .idle_timeout_ms = 1 };
	struct script sc, tc;
	struct sl_aggregate agg;
	struct sl_stream *s1, *t;
	struct sl_subtask_stats stats[16];
	struct sl_job *job;
	struct scen s;
	uint64_t bad, dropped = 1, bp_ns = 0;
	int n;

	scen_init(&s);
	s.first_key = -1;
	atomic_store(&bp_total, 0);
	sc = (struct script){ .s = &s, .next = s_next };
	tc = (struct script){ .s = &s, .next = t_next };
	CU_ASSERT_FATAL(sl_job_create("idle-bp", &job) == 0);
	set_opt(job, "batch-size", 4);
	set_opt(job, "ring-size", 2);
	s1 = sl_assign_watermarks(sl_source(job, "s", &script_ops, &sc, &ev_type), &ws);
	s1 = sl_disable_chaining(sl_map_batch(s1, "slow", slow_map, NULL, &ev_type));
	t = sl_assign_watermarks(sl_source(job, "t", &script_ops, &tc, &ev_type), &ws);
	sl_sink(window(sl_union(s1, t), &s, &agg), "out", &count_sink, NULL);
	CU_ASSERT_EQUAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
	CU_ASSERT_EQUAL(sl_job_op_counters(job, "w", &bad, &dropped), 0);
	n = sl_job_task_stats(job, stats, 16);
	for (int i = 0; i < n && i < 16; i++)
		if (strcmp(stats[i].task, "s") == 0)
			bp_ns += stats[i].c.backpressured_ns;
	sl_job_destroy(job);
	CU_ASSERT_EQUAL(dropped, 0);
	CU_ASSERT_EQUAL(atomic_load(&bp_total), BP_N + 1);
	/* The test means something only if S was held back. */
	CU_ASSERT(bp_ns > 0);
	scen_fini(&s);
}

/*
 * "Watermark generation per split merged by minimum", through a source
 * with two splits known at its first poll, one element per poll,
 * alternating: split 0 = {0, 10 i} for i = 0..49, then its end; split 1 =
 * {1, 1000 + 10 i} for i = 0..99. Per-record watermarks, B = 0.
 *  - While both run, split 0 holds the watermark: key 0's [0,100) fires
 *    right after 0/100 is added, before 0/110. A generator per subtask
 *    would be at 999 after 1/1000 and drop all of split 0 but 0/0.
 *  - When split 0 ends (after 0/490 and 1/1480), it no longer holds the
 *    watermark: key 1's [1000,1100) fires before 1/1500 is added.
 */
struct splits_state {
	int64_t n[2];
	unsigned k;
};

static int splits_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	(void)arg, (void)info;
	*state = calloc(1, sizeof(struct splits_state));
	return *state ? 0 : -ENOMEM;
}

static int splits_poll(void *state, struct sl_batch *out)
{
	struct splits_state *st = state;
	unsigned sp = st->n[0] < 50 && (st->k++ % 2 == 0 || st->n[1] == 100) ? 0 : 1;
	struct ev *e = sl_batch_elem(out, 0);

	out->nsplits = 2;
	out->split = sp;
	if (sp == 0) {
		*e = (struct ev){ 0, 10 * st->n[0] };
		out->ts[0] = e->val;
		return ++st->n[0] == 50 ? 1 | SL_SOURCE_SPLIT_END : 1;
	}
	*e = (struct ev){ 1, 1000 + 10 * st->n[1] };
	out->ts[0] = e->val;
	return ++st->n[1] == 100 && st->n[0] == 50 ? 1 | SL_SOURCE_END : 1;
}

static const struct sl_source_ops splits_ops = { .open = splits_open,
						 .poll = splits_poll,
						 .close = script_close };

static void test_per_split_minimum(void)
{
	struct sl_watermark_strategy ws = { .every = 1 };
	struct sl_aggregate agg;
	struct sl_job *job;
	struct sl_stream *src;
	struct scen s;
	uint64_t bad, dropped = 1;
	long a, b, c;

	scen_init(&s);
	s.first_key = -1;
	CU_ASSERT_FATAL(sl_job_create("splits", &job) == 0);
	src = sl_assign_watermarks(sl_source(job, "src", &splits_ops, NULL, &ev_type), &ws);
	sl_sink(window(src, &s, &agg), "out", &null_sink, NULL);
	CU_ASSERT_EQUAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
	CU_ASSERT_EQUAL(sl_job_op_counters(job, "w", &bad, &dropped), 0);
	sl_job_destroy(job);
	CU_ASSERT_EQUAL(dropped, 0);
	a = log_find(&s, "+0/100");
	b = log_find(&s, "0:[0,100)=10");
	c = log_find(&s, "+0/110");
	CU_ASSERT(a >= 0 && a < b && b < c);
	a = log_find(&s, "+0/490");
	b = log_find(&s, "1:[1000,1100)=10");
	c = log_find(&s, "+1/1500");
	CU_ASSERT(a >= 0 && a < b && b < c);
	CU_ASSERT(log_find(&s, "1:[1900,2000)=10") > log_find(&s, "+1/1990"));
	scen_fini(&s);
}

/* A split number past the count fails the job with a sentence. */
static int bad_split_poll(void *state, struct sl_batch *out)
{
	struct ev *e = sl_batch_elem(out, 0);

	(void)state;
	*e = (struct ev){ 0, 0 };
	out->ts[0] = 0;
	out->nsplits = 2;
	out->split = 2;
	return 1;
}

static const struct sl_source_ops bad_split_ops = { .open = splits_open,
						    .poll = bad_split_poll,
						    .close = script_close };

static void test_bad_split_number(void)
{
	struct sl_watermark_strategy ws = { .every = 1 };
	struct sl_watermark_strategy neg = { .idle_timeout_ms = -1 };
	struct sl_job *job;
	struct sl_stream *src;

	CU_ASSERT_FATAL(sl_job_create("bad-split", &job) == 0);
	src = sl_assign_watermarks(sl_source(job, "src", &bad_split_ops, NULL, &ev_type), &ws);
	sl_sink(src, "out", &null_sink, NULL);
	CU_ASSERT_EQUAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), -EINVAL);
	CU_ASSERT(strstr(errbuf, "split 2 of a source with 2 splits") != NULL);
	sl_job_destroy(job);

	CU_ASSERT_FATAL(sl_job_create("bad-idle", &job) == 0);
	src = sl_assign_watermarks(sl_source(job, "src", &bad_split_ops, NULL, &ev_type), &neg);
	sl_sink(src, "out", &null_sink, NULL);
	CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
	CU_ASSERT(strstr(errbuf, "idle timeout must be >= 0") != NULL);
	sl_job_destroy(job);
}

/*
 * The source path hands the generator a batch at a time
 * (sli_wmgen_records()); that must be exactly the per-record rule
 * (sli_wmgen_record() on each record in turn): the same events after the
 * same records, the same per-split state, the same output. Random
 * strategies (every-N, periodic, none; bounds 0..4), 1..3 splits, batches
 * of 0..19 records, periodic emission now and then.
 */
static void test_gen_batch_equals_per_record(void)
{
	unsigned seed = 1;

	for (int iter = 0; iter < 20000; iter++) {
		struct sl_watermark_strategy ws = { 0 };
		struct sli_wmgen a, b;
		uint32_t ns;
		unsigned ev;

		ws.out_of_orderness_ms = rand_r(&seed) % 5;
		ws.every = rand_r(&seed) % 4 == 0 ? 0 : 1 + rand_r(&seed) % 7;
		ws.none = rand_r(&seed) % 10 == 0;
		sli_wmgen_init(&a, &ws);
		sli_wmgen_init(&b, &ws);
		ns = 1 + rand_r(&seed) % 3;
		CU_ASSERT_FATAL(sli_wmgen_grow(&a, ns, 0, &ev) == 0);
		CU_ASSERT_FATAL(sli_wmgen_grow(&b, ns, 0, &ev) == 0);
		for (int bt = 0; bt < 20; bt++) {
			uint32_t sp = rand_r(&seed) % ns, n = rand_r(&seed) % 20;
			uint32_t ra[20], rb[20];
			unsigned ea[20], eb[20];
			int64_t ts[20];
			int na = 0, nb = 0;

			for (uint32_t i = 0; i < n; i++)
				ts[i] = rand_r(&seed) % 100 + bt * 10;
			sli_wmgen_activity(&a, sp, 0);
			sli_wmgen_activity(&b, sp, 0);
			for (uint32_t i = 0; i < n; i++) {
				unsigned e = sli_wmgen_record(&a, sp, ts[i]);

				if (e)
					ra[na] = i, ea[na++] = e;
			}
			for (uint32_t i = 0; i < n; i++) {
				unsigned e;

				i += sli_wmgen_records(&b, sp, ts + i, n - i, &e) - 1;
				if (e)
					rb[nb] = i, eb[nb++] = e;
			}
			CU_ASSERT_EQUAL_FATAL(na, nb);
			for (int k = 0; k < na; k++) {
				CU_ASSERT_EQUAL_FATAL(ra[k], rb[k]);
				CU_ASSERT_EQUAL_FATAL(ea[k], eb[k]);
			}
			CU_ASSERT_EQUAL_FATAL(a.out, b.out);
			for (uint32_t k = 0; k < ns; k++) {
				CU_ASSERT_EQUAL_FATAL(a.s[k].max_ts, b.s[k].max_ts);
				CU_ASSERT_EQUAL_FATAL(a.s[k].wm, b.s[k].wm);
				if (ws.every && !ws.none)
					CU_ASSERT_EQUAL_FATAL(a.s[k].count, b.s[k].count);
			}
			if (rand_r(&seed) % 5 == 0)
				CU_ASSERT_EQUAL_FATAL(sli_wmgen_periodic(&a),
						      sli_wmgen_periodic(&b));
		}
		sli_wmgen_fini(&a);
		sli_wmgen_fini(&b);
	}
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "time: a split with no records for d is idle until its next record (generator)",
		  test_gen_idle_until_next_record },
		{ "time: watermark generation per split merged by minimum (generator)",
		  test_gen_per_split_minimum },
		{ "time: idle channels are excluded from the input watermark minimum (valve)",
		  test_valve_idle_excluded },
		{ "time: a task whose inputs are all idle is idle (valve)", test_valve_all_idle },
		{ "time: batched watermark generation equals the per-record rule",
		  test_gen_batch_equals_per_record },
		{ "time: a split with no records for d is idle until its next record",
		  test_split_idle_until_next_record },
		{ "time: idle channels are excluded from the input watermark minimum",
		  test_idle_excluded_from_minimum },
		{ "time: a task whose inputs are all idle is idle", test_task_all_inputs_idle },
		{ "time: a backpressured split is not idle", test_backpressured_not_idle },
		{ "time: watermark generation per split merged by minimum",
		  test_per_split_minimum },
		{ "time: a split number past the source's count fails the job",
		  test_bad_split_number },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("idleness", tests);
}
