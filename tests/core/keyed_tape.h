/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyed_tape.h — helpers of the keyed-process and keyed-state tests: a
 * source replaying a fixed tape of (key, val, ts, clock) records, one
 * poll per record, optionally gated (the next record only after the
 * keyed function acknowledged the previous one) and driving a test
 * processing-time clock (the platform's now_ms); a collecting sink of
 * 32-byte output records; a job maker and a job builder. Header-only,
 * included once per test program.
 */
#ifndef SL_TEST_KEYED_TAPE_H
#define SL_TEST_KEYED_TAPE_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sluice.h>

#include "sl_test.h"

/* Input element: a key and a value. */
struct kin {
	int64_t key, val;
};
static const struct sl_type kin_type = SL_TYPE(struct kin);

/* Output element: a key and three numbers. */
struct kout {
	int64_t key, a, b, c;
};
static const struct sl_type kout_type = SL_TYPE(struct kout);

/* One record of a tape: element {key, val} with timestamp ts, emitted at processing time clock. */
struct trec {
	int64_t key, val, ts, clock;
};

struct tape {
	const struct trec *recs;
	size_t n;
	bool gate;	     /* wait for kt_ack() of each record before the next */
	bool set_clock;	     /* set the test clock to rec.clock before emitting it */
	int64_t final_clock; /* > 0: after the last record, set the clock to it, one poll */
	unsigned per_poll;   /* records per poll when not gated (0: 1) */
};

/* The test clock and the acknowledgements, shared with the workers. */
static _Atomic int64_t kt_clock;
static _Atomic uint64_t kt_acked;

static int64_t kt_now(void *ctx)
{
	(void)ctx;
	return atomic_load_explicit(&kt_clock, memory_order_acquire);
}

/* A platform with the test clock only: unpinned workers, default allocators. */
static const struct sl_platform kt_platform = { .now_ms = kt_now };

/* Called by keyed functions for every element they receive. */
static inline void kt_ack(void)
{
	atomic_fetch_add_explicit(&kt_acked, 1, memory_order_acq_rel);
}

struct tape_src {
	const struct tape *t;
	size_t next;
	bool ticked; /* the clock was moved for the next record (or the end) */
};

static int tape_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	struct tape_src *s = calloc(1, sizeof(*s));

	(void)info;
	if (s == NULL)
		return -ENOMEM;
	s->t = arg;
	*state = s;
	return 0;
}

static int tape_poll(void *state, struct sl_batch *out)
{
	struct tape_src *s = state;
	const struct tape *t = s->t;
	unsigned per = t->gate ? 1 : (t->per_poll ? t->per_poll : 1);
	uint32_t n = 0;

	if (t->gate && atomic_load_explicit(&kt_acked, memory_order_acquire) < s->next)
		return 0;
	if (s->next == t->n) {
		if (t->final_clock > 0 && !s->ticked) {
			atomic_store_explicit(&kt_clock, t->final_clock, memory_order_release);
			s->ticked = true;
			return 0;
		}
		return SL_SOURCE_END;
	}
	/*
	 * Gated with a clock: first a poll that only moves the clock (the
	 * worker checks timers before the next poll of this source, chained
	 * or not), then one that emits the record.
	 */
	if (t->gate && t->set_clock && !s->ticked) {
		atomic_store_explicit(&kt_clock, t->recs[s->next].clock, memory_order_release);
		s->ticked = true;
		return 0;
	}
	s->ticked = false;
	while (n < per && n < out->cap && s->next < t->n) {
		const struct trec *r = &t->recs[s->next++];
		struct kin *e = sl_batch_elem(out, n);

		if (t->set_clock)
			atomic_store_explicit(&kt_clock, r->clock, memory_order_release);
		e->key = r->key;
		e->val = r->val;
		out->ts[n++] = r->ts;
	}
	return (int)n;
}

static void tape_close(void *state)
{
	free(state);
}

static const struct sl_source_ops tape_ops = { .open = tape_open,
					       .poll = tape_poll,
					       .close = tape_close };

static void key_of_kin(const void *elem, const struct sl_batch *src, struct sl_key *out)
{
	(void)src;
	out->ptr = &((const struct kin *)elem)->key;
	out->len = sizeof(int64_t);
}

/* ------------------------------------------------------------ the sink */

struct kcoll {
	pthread_mutex_t lock;
	struct kout *recs;
	size_t n, cap;
};

static int kc_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	(void)info;
	*state = arg;
	return 0;
}

static int kc_write(void *state, const struct sl_batch *b)
{
	struct kcoll *c = state;

	pthread_mutex_lock(&c->lock);
	if (c->n + b->n > c->cap) {
		size_t ncap = (c->n + b->n) * 2;
		struct kout *nr = realloc(c->recs, ncap * sizeof(*nr));

		if (nr == NULL) {
			pthread_mutex_unlock(&c->lock);
			return -ENOMEM;
		}
		c->recs = nr;
		c->cap = ncap;
	}
	memcpy(c->recs + c->n, b->data, b->n * sizeof(struct kout));
	c->n += b->n;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void kc_close(void *state)
{
	(void)state;
}

static const struct sl_sink_ops kc_ops = {
	.open = kc_open, .write = kc_write, .finish = NULL, .close = kc_close
};

static inline void kcoll_init(struct kcoll *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
}

static inline void kcoll_fini(struct kcoll *c)
{
	free(c->recs);
	pthread_mutex_destroy(&c->lock);
}

static inline int cmp_kout(const void *a, const void *b)
{
	const struct kout *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->a != y->a)
		return x->a < y->a ? -1 : 1;
	if (x->b != y->b)
		return x->b < y->b ? -1 : 1;
	return (x->c > y->c) - (x->c < y->c);
}

/*
 * A job: tape source (parallelism 1) with per-record watermarks of
 * out-of-orderness @bound (< 0: none) -> key_by(key) -> the stream
 * kt_build() returns, to which the caller adds its operator.
 */
static inline struct sl_stream *kt_source(struct sl_job *job, const struct tape *t, int64_t bound)
{
	struct sl_stream *s = sl_source(job, "tape", &tape_ops, (void *)t, &kin_type);

	s = sl_set_parallelism(s, 1);
	if (bound >= 0) {
		struct sl_watermark_strategy ws = { .out_of_orderness_ms = bound, .every = 1 };

		s = sl_assign_watermarks(s, &ws);
	}
	return sl_key_by(s, key_of_kin);
}

/* A job @name at parallelism @p and batch size @batch; @workers > 0: that many workers. */
static inline struct sl_job *kt_new_job(const char *name, unsigned p, unsigned batch,
					unsigned workers)
{
	struct sl_job *job;
	char buf[32], err[512];

	CU_ASSERT_FATAL(sl_job_create(name, &job) == 0);
	snprintf(buf, sizeof(buf), "%u", p);
	CU_ASSERT_FATAL(sl_job_set(job, "parallelism", buf, err, sizeof(err)) == 0);
	snprintf(buf, sizeof(buf), "%u", batch);
	CU_ASSERT_FATAL(sl_job_set(job, "batch-size", buf, err, sizeof(err)) == 0);
	if (workers) {
		snprintf(buf, sizeof(buf), "%u", workers);
		CU_ASSERT_FATAL(sl_job_set(job, "workers", buf, err, sizeof(err)) == 0);
	}
	return job;
}

static inline void kt_reset(int64_t clock)
{
	atomic_store(&kt_clock, clock);
	atomic_store(&kt_acked, 0);
}

#endif /* SL_TEST_KEYED_TAPE_H */
