/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_keyed.c — keyed process functions with timers (sl_keyed_process,
 * sl_timer_register...), through real jobs run with sl_job_run().
 *
 * Jobs replay a tape of records (keyed_tape.h) with per-record
 * watermarks, so each element is judged against the watermark of the
 * records before it. The keyed functions append what they see to a log
 * ("E" element with its watermark, "T" timer with the watermark or
 * processing time it fired at); expected logs are worked out by hand in
 * the comments next to them, or computed by a model of the rules
 * written in this file (SEMANTICS.md: timers unique per key and time,
 * fired in time order, ties in registration order, when the watermark
 * reaches them; registered-while-firing timers at times <= the
 * watermark fire in the same advance; the final INT64_MAX watermark
 * fires all). Processing-time tests drive the platform clock from the
 * source and run on one worker, with the source gated on the keyed
 * function's acknowledgement, so the interleaving is exact.
 *
 * Threads: keyed functions run on workers; the log is under a mutex and
 * read after sl_job_run() returned.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sluice.h>

#include "keyed_tape.h"
#include "sl_test.h"

static char errbuf[512];

/* ----------------------------------------------------------------- log */

struct lev {
	char kind; /* 'E' element, 'T' timer */
	int dom;   /* timers: enum sl_time_domain */
	int64_t key, time, wm, proc;
	unsigned sub;
};

static struct {
	pthread_mutex_t lock;
	struct lev *ev;
	size_t n, cap;
	_Atomic int reg_new, reg_dup; /* sl_timer_register() returns 1 / 0 */
	int bad;		      /* unexpected return codes seen by the functions */
} lg = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void log_reset(void)
{
	pthread_mutex_lock(&lg.lock);
	free(lg.ev);
	lg.ev = NULL;
	lg.n = lg.cap = 0;
	lg.bad = 0;
	atomic_store(&lg.reg_new, 0);
	atomic_store(&lg.reg_dup, 0);
	pthread_mutex_unlock(&lg.lock);
}

static void log_add(struct lev e)
{
	pthread_mutex_lock(&lg.lock);
	if (lg.n == lg.cap) {
		lg.cap = lg.cap ? 2 * lg.cap : 1024;
		lg.ev = realloc(lg.ev, lg.cap * sizeof(*lg.ev));
	}
	if (lg.ev != NULL)
		lg.ev[lg.n++] = e;
	pthread_mutex_unlock(&lg.lock);
}

static int64_t ctx_key(struct sl_ctx *c)
{
	int64_t k;

	memcpy(&k, sl_ctx_key(c)->ptr, sizeof(k));
	return k;
}

static void note_bad(void)
{
	pthread_mutex_lock(&lg.lock);
	lg.bad++;
	pthread_mutex_unlock(&lg.lock);
}

static int reg(struct sl_ctx *c, enum sl_time_domain d, int64_t t)
{
	int rc = sl_timer_register(c, d, t);

	if (rc == 1)
		atomic_fetch_add(&lg.reg_new, 1);
	else if (rc == 0)
		atomic_fetch_add(&lg.reg_dup, 1);
	else
		note_bad();
	return rc < 0 ? rc : 0;
}

static void log_element(struct sl_ctx *c, int64_t ts)
{
	log_add((struct lev){ 'E', 0, ctx_key(c), ts, sl_ctx_current_watermark(c),
			      sl_ctx_current_processing_time(c), sl_ctx_info(c)->index });
}

static void log_timer(struct sl_ctx *c, enum sl_time_domain d, int64_t t)
{
	log_add((struct lev){ 'T', (int)d, ctx_key(c), t, sl_ctx_current_watermark(c),
			      sl_ctx_current_processing_time(c), sl_ctx_info(c)->index });
}

/* Run @job, expecting success. */
static int run(struct sl_job *job, const struct sl_platform *pf)
{
	int rc = sl_job_run(job, pf, errbuf, sizeof(errbuf));

	if (rc != 0)
		fprintf(stderr, "job failed: %s\n", errbuf);
	return rc;
}

static struct sl_job *new_job(unsigned p, unsigned batch, unsigned workers)
{
	return kt_new_job("keyed", p, batch, workers);
}

/* --------------------------------------------- event time, by hand */

/*
 * Element: register an event-time timer at ts + 5, three times (the
 * first may be new, the others are duplicates), and emit {key, ts} to
 * side output 0. Timer: emit {key, time} on the main output; timer
 * (1, 15) registers (1, 12), at or before the watermark, and deletes
 * (1, 25).
 */
static int hand_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
			struct sl_collector *out, void *arg)
{
	struct kout o = { ctx_key(c), ts, 0, 0 };
	int rc = 0;

	log_element(c, ts);
	for (int i = 0; i < 3 && rc == 0; i++)
		rc = reg(c, SL_EVENT_TIME, ts + 5);
	return rc < 0 ? rc : sl_emit_side(out, 0, &o, ts, NULL);
}

static int hand_timer(struct sl_ctx *c, enum sl_time_domain d, int64_t t, struct sl_collector *out,
		      void *arg)
{
	struct kout o = { ctx_key(c), t, 1, 0 };

	log_timer(c, d, t);
	if (ctx_key(c) == 1 && t == 15) {
		if (reg(c, SL_EVENT_TIME, 12) < 0)
			return -EIO;
		if (sl_timer_delete(c, SL_EVENT_TIME, 25) != 1)
			note_bad();
		if (sl_timer_delete(c, SL_EVENT_TIME, 25) != 0)
			note_bad();
	}
	return sl_emit(out, &o, t, NULL);
}

static const struct trec hand_tape[] = {
	{ 1, 0, 10, 0 }, { 2, 0, 12, 0 }, { 1, 0, 10, 0 },
	{ 1, 0, 20, 0 }, { 3, 0, 40, 0 }, { 2, 0, 41, 0 },
};

static void test_event_timers_by_hand(void)
{
	static const struct tape t = { hand_tape, 6, false, false, 0, 1 };
	static const struct sl_keyed_process kp = { hand_element, hand_timer, NULL };
	/*
	 * Watermarks (B = 0, after every record): ts 10: 9; 12: 11; 10: none;
	 * 20: 19; 40: 39; 41: 40; INT64_MAX at the end.
	 *   E(1,10) wm MIN  registers (1,15)
	 *   E(2,12) wm 9    registers (2,17)
	 *   E(1,10) wm 11   (1,15) exists: three duplicates
	 *   E(1,20) wm 11   registers (1,25); then watermark 19: pending due
	 *                   are (1,15) and (2,17). (1,15) fires first; it
	 *                   registers (1,12) (<= 19: same advance) and
	 *                   deletes (1,25). The earliest due is now (1,12),
	 *                   then (2,17).
	 *   E(3,40) wm 19   registers (3,45); watermark 39: nothing due,
	 *                   (1,25) was deleted
	 *   E(2,41) wm 39   registers (2,46); watermark 40: nothing
	 *   end: INT64_MAX fires (3,45), (2,46).
	 */
	static const struct lev want[] = {
		{ 'E', 0, 1, 10, INT64_MIN, 0, 0 }, { 'E', 0, 2, 12, 9, 0, 0 },
		{ 'E', 0, 1, 10, 11, 0, 0 },	    { 'E', 0, 1, 20, 11, 0, 0 },
		{ 'T', 0, 1, 15, 19, 0, 0 },	    { 'T', 0, 1, 12, 19, 0, 0 },
		{ 'T', 0, 2, 17, 19, 0, 0 },	    { 'E', 0, 3, 40, 19, 0, 0 },
		{ 'E', 0, 2, 41, 39, 0, 0 },	    { 'T', 0, 3, 45, INT64_MAX, 0, 0 },
		{ 'T', 0, 2, 46, INT64_MAX, 0, 0 },
	};
	struct kcoll main_out, side_out;
	struct sl_job *job = new_job(1, 64, 0);
	struct sl_stream *s;

	log_reset();
	kcoll_init(&main_out);
	kcoll_init(&side_out);
	s = sl_keyed_process(kt_source(job, &t, 0), "hand", &kp, &kout_type);
	sl_sink(s, "main", &kc_ops, &main_out);
	sl_sink(sl_side_output(s, 0, &kout_type), "side", &kc_ops, &side_out);
	CU_ASSERT_FATAL(run(job, NULL) == 0);
	CU_ASSERT_EQUAL(lg.n, SL_ARRAY_SIZE(want));
	for (size_t i = 0; i < lg.n && i < SL_ARRAY_SIZE(want); i++) {
		const struct lev *g = &lg.ev[i], *w = &want[i];

		if (g->kind != w->kind || g->key != w->key || g->time != w->time ||
		    g->wm != w->wm || g->dom != w->dom) {
			CU_FAIL("log differs");
			fprintf(stderr,
				"#%zu: got %c key %" PRId64 " t %" PRId64 " wm %" PRId64
				", want %c key %" PRId64 " t %" PRId64 " wm %" PRId64 "\n",
				i, g->kind, g->key, g->time, g->wm, w->kind, w->key, w->time,
				w->wm);
		}
	}
	/* Six elements x 3 registrations: 5 new timers, 13 duplicates; one new from a timer. */
	CU_ASSERT_EQUAL(atomic_load(&lg.reg_new), 6);
	CU_ASSERT_EQUAL(atomic_load(&lg.reg_dup), 13);
	CU_ASSERT_EQUAL(lg.bad, 0);
	/* Outputs: 5 timers on the main output, 6 elements on the side output. */
	CU_ASSERT_EQUAL(main_out.n, 5);
	CU_ASSERT_EQUAL(side_out.n, 6);
	for (size_t i = 0; i < main_out.n; i++)
		CU_ASSERT_EQUAL(main_out.recs[i].b, 1);
	for (size_t i = 0; i < side_out.n; i++)
		CU_ASSERT_EQUAL(side_out.recs[i].b, 0);
	kcoll_fini(&main_out);
	kcoll_fini(&side_out);
	sl_job_destroy(job);
}

/* ------------------------------------------------- delete, by hand */

/* Element val 1: register at ts + 100; val 2: delete ts - 100 + 100 = the one of val 1 at ts - 100.
 */
static int del_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
		       struct sl_collector *out, void *arg)
{
	const struct kin *e = in;

	log_element(c, ts);
	if (e->val == 1)
		return reg(c, SL_EVENT_TIME, ts + 100);
	if (sl_timer_delete(c, SL_EVENT_TIME, e->val) != 1) /* val: the time to delete */
		note_bad();
	if (sl_timer_delete(c, SL_EVENT_TIME, e->val) != 0) /* gone now */
		note_bad();
	return 0;
}

static int del_timer(struct sl_ctx *c, enum sl_time_domain d, int64_t t, struct sl_collector *out,
		     void *arg)
{
	log_timer(c, d, t);
	return 0;
}

static void test_event_timer_delete(void)
{
	/* key 1: (1,101) registered then deleted; key 2: (2,102) fires at the end. */
	static const struct trec tp[] = {
		{ 1, 1, 1, 0 }, { 2, 1, 2, 0 }, { 1, 101, 3, 0 }, /* delete (1, 101) */
	};
	static const struct tape t = { tp, 3, false, false, 0, 1 };
	static const struct sl_keyed_process kp = { del_element, del_timer, NULL };
	struct kcoll out;
	struct sl_job *job = new_job(2, 8, 0);

	log_reset();
	kcoll_init(&out);
	sl_sink(sl_keyed_process(kt_source(job, &t, 0), "del", &kp, &kout_type), "out", &kc_ops,
		&out);
	CU_ASSERT_FATAL(run(job, NULL) == 0);
	CU_ASSERT_EQUAL(lg.bad, 0);
	CU_ASSERT_EQUAL(lg.n, 4);
	for (size_t i = 0; i < lg.n; i++)
		if (lg.ev[i].kind == 'T')
			CU_ASSERT(lg.ev[i].key == 2 && lg.ev[i].time == 102 &&
				  lg.ev[i].wm == INT64_MAX);
	kcoll_fini(&out);
	sl_job_destroy(job);
}

/* ------------------------------------- event time, random vs a model */

/* The behaviour of the random test's functions, shared by the job and the model. */
struct action {
	int del;
	int64_t t;
};

/* What element (key, val, ts) does when the watermark is @wm: up to 4 actions. */
static int elem_actions(int64_t val, int64_t ts, int64_t wm, struct action *a)
{
	int n = 0;

	a[n++] = (struct action){ 0, ts + (val % 7) * 3 };
	a[n++] = (struct action){ 0, ts + (val % 7) * 3 }; /* a duplicate */
	if (val % 5 == 0)
		a[n++] = (struct action){ 1, ts + 6 };
	if (val % 11 == 0 && wm != INT64_MIN)
		a[n++] = (struct action){ 0, wm }; /* already passed: fires at the next advance */
	return n;
}

/* What timer @t does: register one more in the same advance (t - 2) or later (t + 5). */
static int timer_actions(int64_t t, struct action *a)
{
	if (t >= 0 && t % 4 == 0)
		return a[0] = (struct action){ 0, t - 2 }, 1;
	if (t >= 0 && t % 4 == 1)
		return a[0] = (struct action){ 0, t + 5 }, 1;
	return 0;
}

static int rnd_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
		       struct sl_collector *out, void *arg)
{
	const struct kin *e = in;
	struct action a[4];
	int n = elem_actions(e->val, ts, sl_ctx_current_watermark(c), a);

	log_element(c, ts);
	for (int i = 0; i < n; i++) {
		int rc = a[i].del ? sl_timer_delete(c, SL_EVENT_TIME, a[i].t)
				  : sl_timer_register(c, SL_EVENT_TIME, a[i].t);

		if (rc < 0)
			return rc;
	}
	return 0;
}

static int rnd_timer(struct sl_ctx *c, enum sl_time_domain d, int64_t t, struct sl_collector *out,
		     void *arg)
{
	struct action a[1];
	int n = timer_actions(t, a);

	log_timer(c, d, t);
	for (int i = 0; i < n; i++) {
		int rc = sl_timer_register(c, SL_EVENT_TIME, a[i].t);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The model: pending timers (key, time, registration number), brute force. */
struct mtimer {
	int64_t key, time;
	uint64_t seq;
};

struct model {
	struct mtimer *t;
	size_t n, cap;
	uint64_t seq;
	int64_t wm;
	struct lev *log;
	size_t nlog, caplog;
};

static void m_log(struct model *m, struct lev e)
{
	if (m->nlog == m->caplog) {
		m->caplog = m->caplog ? 2 * m->caplog : 1024;
		m->log = realloc(m->log, m->caplog * sizeof(*m->log));
		CU_ASSERT_FATAL(m->log != NULL);
	}
	m->log[m->nlog++] = e;
}

static void m_apply(struct model *m, int64_t key, const struct action *a)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->t[i].key == key && m->t[i].time == a->t) {
			if (a->del)
				m->t[i] = m->t[--m->n];
			return; /* exists: a register changes nothing */
		}
	if (a->del)
		return;
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 256;
		m->t = realloc(m->t, m->cap * sizeof(*m->t));
		CU_ASSERT_FATAL(m->t != NULL);
	}
	m->t[m->n++] = (struct mtimer){ key, a->t, ++m->seq };
}

/* The watermark advances to @w: fire every timer <= w, earliest first, ties by registration. */
static void m_advance(struct model *m, int64_t w)
{
	if (w <= m->wm)
		return;
	m->wm = w;
	for (;;) {
		size_t best = SIZE_MAX;
		struct mtimer x;
		struct action a[1];
		int n;

		for (size_t i = 0; i < m->n; i++)
			if (m->t[i].time <= w &&
			    (best == SIZE_MAX || m->t[i].time < m->t[best].time ||
			     (m->t[i].time == m->t[best].time && m->t[i].seq < m->t[best].seq)))
				best = i;
		if (best == SIZE_MAX)
			return;
		x = m->t[best];
		m->t[best] = m->t[--m->n];
		m_log(m, (struct lev){ 'T', 0, x.key, x.time, w, 0, 0 });
		n = timer_actions(x.time, a);
		for (int i = 0; i < n; i++)
			m_apply(m, x.key, &a[i]);
	}
}

/* The model's log of the whole tape (watermarks every record, bound @B, then INT64_MAX). */
static void m_run(struct model *m, const struct trec *r, size_t n, int64_t B)
{
	int64_t maxts = INT64_MIN;

	memset(m, 0, sizeof(*m));
	m->wm = INT64_MIN;
	for (size_t i = 0; i < n; i++) {
		struct action a[4];
		int na = elem_actions(r[i].val, r[i].ts, m->wm, a);

		m_log(m, (struct lev){ 'E', 0, r[i].key, r[i].ts, m->wm, 0, 0 });
		for (int k = 0; k < na; k++)
			m_apply(m, r[i].key, &a[k]);
		if (r[i].ts > maxts)
			maxts = r[i].ts;
		m_advance(m, maxts - B - 1);
	}
	m_advance(m, INT64_MAX);
}

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Compare the job's log with the model's, key by key, in order. */
static void compare_per_key(const struct model *m, int64_t nkeys)
{
	for (int64_t k = 0; k < nkeys; k++) {
		size_t i = 0, j = 0;
		int sub = -1;

		for (;;) {
			while (i < lg.n && lg.ev[i].key != k)
				i++;
			while (j < m->nlog && m->log[j].key != k)
				j++;
			if (i == lg.n || j == m->nlog)
				break;
			if (sub < 0)
				sub = (int)lg.ev[i].sub;
			if (lg.ev[i].kind != m->log[j].kind || lg.ev[i].time != m->log[j].time ||
			    lg.ev[i].wm != m->log[j].wm || (int)lg.ev[i].sub != sub) {
				CU_FAIL("a key's events differ from the model");
				fprintf(stderr,
					"key %" PRId64 ": got %c t %" PRId64 " wm %" PRId64
					" (subtask %u), want %c t %" PRId64 " wm %" PRId64 "\n",
					k, lg.ev[i].kind, lg.ev[i].time, lg.ev[i].wm, lg.ev[i].sub,
					m->log[j].kind, m->log[j].time, m->log[j].wm);
				return;
			}
			i++, j++;
		}
		if (i != lg.n || j != m->nlog) {
			CU_FAIL("a key has more or fewer events than the model");
			fprintf(stderr, "key %" PRId64 ": job %s, model %s\n", k,
				i == lg.n ? "ended" : "has more",
				j == m->nlog ? "ended" : "has more");
			return;
		}
	}
}

static void test_event_timers_random(void)
{
	enum { N = 600, KEYS = 13 };
	static struct trec tp[N];
	static const struct sl_keyed_process kp = { rnd_element, rnd_timer, NULL };
	static const unsigned ps[] = { 1, 2, 3 }, batches[] = { 1, 7, 256 };
	struct model m;
	int64_t ts = 0;

	for (int i = 0; i < N; i++) {
		/* Mostly increasing timestamps with disorder and bursts of equal times. */
		ts += (int64_t)(rnd() % 5);
		tp[i] = (struct trec){ (int64_t)(rnd() % KEYS), (int64_t)(rnd() % 1000),
				       ts - (int64_t)(rnd() % 8), 0 };
	}
	m_run(&m, tp, N, 3);
	for (size_t pi = 0; pi < SL_ARRAY_SIZE(ps); pi++) {
		struct tape t = { tp, N, false, false, 0, 1 };
		struct kcoll out;
		struct sl_job *job = new_job(ps[pi], batches[pi], 0);

		log_reset();
		kcoll_init(&out);
		sl_sink(sl_keyed_process(kt_source(job, &t, 3), "rnd", &kp, &kout_type), "out",
			&kc_ops, &out);
		CU_ASSERT_FATAL(run(job, NULL) == 0);
		CU_ASSERT_EQUAL(lg.n, m.nlog);
		compare_per_key(&m, KEYS);
		kcoll_fini(&out);
		sl_job_destroy(job);
	}
	free(m.t);
	free(m.log);
}

/* ------------------------------------------ processing time, by hand */

static int proc_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
			struct sl_collector *out, void *arg)
{
	const struct kin *e = in;
	int rc = 0;

	log_element(c, ts);
	switch (e->val) {
	case 0: /* key 1 at 100 */
		rc |= reg(c, SL_PROCESSING_TIME, 150);
		rc |= reg(c, SL_PROCESSING_TIME, 150);
		rc |= reg(c, SL_PROCESSING_TIME, 300);
		break;
	case 1: /* key 2 at 120 */
		rc |= reg(c, SL_PROCESSING_TIME, 150);
		rc |= reg(c, SL_PROCESSING_TIME, 160);
		rc |= reg(c, SL_PROCESSING_TIME, 900);
		rc |= reg(c, SL_PROCESSING_TIME, 5000);
		break;
	case 2: /* key 1 at 149 */
		if (sl_timer_delete(c, SL_PROCESSING_TIME, 300) != 1)
			note_bad();
		break;
	case 3: /* key 3 at 150: a time already passed */
		rc |= reg(c, SL_PROCESSING_TIME, 100);
		break;
	case 5: /* key 1 at 200: an event-time timer, fired by the final watermark */
		rc |= reg(c, SL_EVENT_TIME, 7);
		break;
	default:
		break;
	}
	kt_ack();
	return rc;
}

static int proc_timer(struct sl_ctx *c, enum sl_time_domain d, int64_t t, struct sl_collector *out,
		      void *arg)
{
	log_timer(c, d, t);
	if (d == SL_PROCESSING_TIME && ctx_key(c) == 3 && t == 100)
		return reg(c, SL_PROCESSING_TIME, 150); /* <= now: fires in the same check */
	return 0;
}

static void test_processing_time_timers(void)
{
	/* (key, val, ts, clock) */
	static const struct trec tp[] = {
		{ 1, 0, 0, 100 }, { 2, 1, 0, 120 }, { 1, 2, 0, 149 },
		{ 3, 3, 0, 150 }, { 3, 4, 0, 155 }, { 1, 5, 0, 200 },
	};
	/* After the last record the clock jumps to 1000, then the input ends. */
	static const struct tape t = { tp, 6, true, true, 1000, 1 };
	static const struct sl_keyed_process kp = { proc_element, proc_timer, NULL };
	/*
	 * Timers due at the clock a record is emitted with fire before that
	 * record (the worker checks the clock first), earliest first, ties
	 * in registration order; (1,300) was deleted; (3,100), registered
	 * at 150 for a passed time, fires at the next check (155), and the
	 * (3,150) it registers fires in the same check; (2,900) fires at the
	 * jump to 1000; (2,5000) is pending at the end and never fires; the
	 * event-time (1,7) fires with the final watermark.
	 */
	static const struct lev want[] = {
		{ 'E', 0, 1, 0, 0, 100, 0 },
		{ 'E', 0, 2, 0, 0, 120, 0 },
		{ 'E', 0, 1, 0, 0, 149, 0 },
		{ 'T', SL_PROCESSING_TIME, 1, 150, 0, 150, 0 },
		{ 'T', SL_PROCESSING_TIME, 2, 150, 0, 150, 0 },
		{ 'E', 0, 3, 0, 0, 150, 0 },
		{ 'T', SL_PROCESSING_TIME, 3, 100, 0, 155, 0 },
		{ 'T', SL_PROCESSING_TIME, 3, 150, 0, 155, 0 },
		{ 'E', 0, 3, 0, 0, 155, 0 },
		{ 'T', SL_PROCESSING_TIME, 2, 160, 0, 200, 0 },
		{ 'E', 0, 1, 0, 0, 200, 0 },
		{ 'T', SL_PROCESSING_TIME, 2, 900, 0, 1000, 0 },
		{ 'T', SL_EVENT_TIME, 1, 7, INT64_MAX, 1000, 0 },
	};
	for (int split = 0; split < 2; split++) {
		/* Fused behind the source (parallelism 1 chains over key_by), then in a task of its
		 * own. */
		struct kcoll out;
		struct sl_job *job = new_job(1, 16, 1);
		struct sl_stream *kp_s;

		log_reset();
		kt_reset(0);
		kcoll_init(&out);
		kp_s = sl_keyed_process(kt_source(job, &t, -1), "proc", &kp, &kout_type);
		if (split)
			kp_s = sl_start_new_chain(kp_s);
		sl_sink(kp_s, "out", &kc_ops, &out);
		CU_ASSERT_FATAL(run(job, &kt_platform) == 0);
		CU_ASSERT_EQUAL(lg.bad, 0);
		CU_ASSERT_EQUAL(lg.n, SL_ARRAY_SIZE(want));
		for (size_t i = 0; i < lg.n && i < SL_ARRAY_SIZE(want); i++) {
			const struct lev *g = &lg.ev[i], *w = &want[i];
			/*
			 * Elements see exactly the clock they were emitted at; a timer
			 * fires at or after its time, at most at the clock of what
			 * follows it in the log (wanted: that clock).
			 */
			bool ok =
			    g->kind == w->kind && g->key == w->key && g->time == w->time &&
			    g->dom == w->dom &&
			    (w->kind == 'E' ? g->proc == w->proc
					    : (w->dom == SL_EVENT_TIME
						   ? g->wm == w->wm
						   : g->proc >= w->time && g->proc <= w->proc));

			if (!ok) {
				CU_FAIL("log differs");
				fprintf(stderr,
					"#%zu: got %c%d key %" PRId64 " t %" PRId64 " at %" PRId64
					", want %c%d key %" PRId64 " t %" PRId64 " at %" PRId64
					"\n",
					i, g->kind, g->dom, g->key, g->time, g->proc, w->kind,
					w->dom, w->key, w->time, w->proc);
			}
		}
		kcoll_fini(&out);
		sl_job_destroy(job);
	}
}

/* --------------------------------------------- errors and misuse */

static struct sl_ctx *saved_ctx;
static int misuse_rc[4];
static char misuse_msg[2][256];

static int misuse_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
			  struct sl_collector *out, void *arg)
{
	const struct kin *e = in;

	if (e->val == 0) {
		misuse_rc[0] = sl_timer_register(c, (enum sl_time_domain)7, 1);
		snprintf(misuse_msg[0], sizeof(misuse_msg[0]), "%s", sl_ctx_info(c)->errbuf);
		misuse_rc[1] = sl_timer_delete(c, (enum sl_time_domain) - 1, 1);
		saved_ctx = c;
		return 0;
	}
	/* Fail with a sentence: the job reports it. */
	snprintf(sl_ctx_info(c)->errbuf, sl_ctx_info(c)->errlen, "key %" PRId64 " is cursed",
		 e->key);
	return -EDOM;
}

static void test_errors(void)
{
	static const struct trec tp[] = { { 1, 0, 1, 0 }, { 5, 1, 2, 0 } };
	static const struct tape t = { tp, 2, false, false, 0, 1 };
	static const struct sl_keyed_process kp = { misuse_element, NULL, NULL };
	static const struct sl_keyed_process no_element = { NULL, NULL, NULL };
	struct kcoll out;
	struct sl_job *job;
	struct sl_stream *src;
	int rc;

	/* A keyed process needs a keyed input. */
	job = new_job(1, 8, 0);
	src = sl_source(job, "tape", &tape_ops, (void *)&t, &kin_type);
	sl_sink(sl_keyed_process(src, "unkeyed", &kp, &kout_type), "out", &kc_ops, &out);
	rc = sl_job_validate(job, errbuf, sizeof(errbuf));
	CU_ASSERT_EQUAL(rc, -EINVAL);
	CU_ASSERT(strstr(errbuf, "'unkeyed'") != NULL && strstr(errbuf, "sl_key_by") != NULL);
	sl_job_destroy(job);

	/* NULL functions, NULL output type. */
	job = new_job(1, 8, 0);
	sl_keyed_process(kt_source(job, &t, 0), "nofn", &no_element, &kout_type);
	rc = sl_job_validate(job, errbuf, sizeof(errbuf));
	CU_ASSERT_EQUAL(rc, -EINVAL);
	CU_ASSERT(strstr(errbuf, "'nofn'") != NULL);
	sl_job_destroy(job);
	job = new_job(1, 8, 0);
	sl_keyed_process(kt_source(job, &t, 0), "notype", &kp, NULL);
	CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
	CU_ASSERT(strstr(errbuf, "'notype'") != NULL);
	sl_job_destroy(job);
	job = new_job(1, 8, 0);
	sl_keyed_process(kt_source(job, &t, 0), "nop", NULL, &kout_type);
	CU_ASSERT_EQUAL(sl_job_validate(job, errbuf, sizeof(errbuf)), -EINVAL);
	sl_job_destroy(job);
	CU_ASSERT(sl_keyed_process(NULL, "x", &kp, &kout_type) == NULL);

	/* Bad domains, a context kept past its call, a failing function. */
	job = new_job(1, 8, 0);
	kcoll_init(&out);
	saved_ctx = NULL;
	sl_sink(sl_keyed_process(kt_source(job, &t, 0), "cursed", &kp, &kout_type), "out", &kc_ops,
		&out);
	rc = sl_job_run(job, NULL, errbuf, sizeof(errbuf));
	CU_ASSERT_EQUAL(rc, -EDOM);
	CU_ASSERT(strstr(errbuf, "'cursed'") != NULL && strstr(errbuf, "key 5 is cursed") != NULL);
	CU_ASSERT_EQUAL(misuse_rc[0], -EINVAL);
	CU_ASSERT(strstr(misuse_msg[0], "time domain") != NULL);
	CU_ASSERT_EQUAL(misuse_rc[1], -EINVAL);
	kcoll_fini(&out);
	sl_job_destroy(job);
	/* Getters on NULL never crash. */
	CU_ASSERT(sl_ctx_key(NULL)->ptr == NULL && sl_ctx_key(NULL)->len == 0);
	CU_ASSERT_EQUAL(sl_ctx_current_watermark(NULL), INT64_MIN);
	CU_ASSERT(sl_ctx_info(NULL) == NULL);
	CU_ASSERT_EQUAL(sl_timer_register(NULL, SL_EVENT_TIME, 1), -EINVAL);
	CU_ASSERT_EQUAL(sl_timer_delete(NULL, SL_EVENT_TIME, 1), -EINVAL);
}

/*
 * A context used outside its call: the element keeps its pointer, and
 * the sink, fused behind the operator on the same thread, uses it when
 * the output is flushed after the call returned.
 */
static int outside_rc[3];

static int keep_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
			struct sl_collector *out, void *arg)
{
	struct kout o = { ctx_key(c), ts, 0, 0 };

	saved_ctx = c;
	return sl_emit(out, &o, ts, NULL);
}

static int stale_write(void *state, const struct sl_batch *b)
{
	outside_rc[0] = sl_timer_register(saved_ctx, SL_EVENT_TIME, 1);
	outside_rc[1] = sl_timer_delete(saved_ctx, SL_PROCESSING_TIME, 1);
	outside_rc[2] = strstr(sl_ctx_info(saved_ctx)->errbuf, "outside") != NULL;
	return 0;
}

static void test_context_outside_call(void)
{
	static const struct trec tp[] = { { 1, 0, 1, 0 } };
	static const struct tape t = { tp, 1, false, false, 0, 1 };
	static const struct sl_keyed_process kp = { keep_element, NULL, NULL };
	static const struct sl_sink_ops stale_ops = {
		.open = kc_open, .write = stale_write, .finish = NULL, .close = kc_close
	};
	struct sl_job *job = new_job(1, 64, 1);

	saved_ctx = NULL;
	memset(outside_rc, 0, sizeof(outside_rc));
	sl_sink(sl_keyed_process(kt_source(job, &t, 0), "keeper", &kp, &kout_type), "stale",
		&stale_ops, NULL);
	CU_ASSERT_FATAL(run(job, NULL) == 0);
	CU_ASSERT_EQUAL(outside_rc[0], -EINVAL);
	CU_ASSERT_EQUAL(outside_rc[1], -EINVAL);
	CU_ASSERT_EQUAL(outside_rc[2], 1);
	sl_job_destroy(job);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "event_timers_by_hand", test_event_timers_by_hand },
		{ "event_timer_delete", test_event_timer_delete },
		{ "event_timers_random", test_event_timers_random },
		{ "processing_time_timers", test_processing_time_timers },
		{ "errors", test_errors },
		{ "context_outside_call", test_context_outside_call },
		CU_TEST_INFO_NULL,
	};
	int rc = sl_test_main("keyed", tests);

	free(lg.ev);
	return rc;
}
