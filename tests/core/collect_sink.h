/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collect_sink.h — test helpers shared by the runtime tests: a 16-byte
 * record type, a sink that collects every record it receives (all
 * subtasks into one mutex-protected array), a record order for sorting,
 * and a trivial map function. Header-only: each test program includes it
 * once.
 */
#ifndef SL_TEST_COLLECT_SINK_H
#define SL_TEST_COLLECT_SINK_H

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sluice.h>

struct rec {
	int64_t id;
	int64_t val;
};
static const struct sl_type rec_type = SL_TYPE(struct rec);

struct collected {
	pthread_mutex_t lock;
	struct rec *recs;
	size_t n, cap;
	int finished;	 /* finish() calls */
	int fail_writes; /* 1: write() fails with -ENOSPC */
	unsigned slow;	 /* extra hashing rounds per element: a slow sink */
	uint64_t sink;	 /* keeps the slow work from being optimised away */
};

static int sink_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	(void)info;
	*state = arg;
	return 0;
}

static int sink_write(void *state, const struct sl_batch *b)
{
	struct collected *c = state;
	uint64_t h = 0; /* the slow work, local: sink subtasks share @c */

	if (c->fail_writes)
		return -ENOSPC;
	for (unsigned r = 0; r < c->slow; r++)
		for (uint32_t i = 0; i < b->n; i++)
			h = (h ^ (uint64_t)((const struct rec *)b->data)[i].val) *
			    0x9e3779b97f4a7c15ull;
	pthread_mutex_lock(&c->lock);
	c->sink ^= h;
	if (c->n + b->n > c->cap) {
		size_t ncap = (c->n + b->n) * 2;
		struct rec *nr = realloc(c->recs, ncap * sizeof(*nr));

		if (nr == NULL) {
			pthread_mutex_unlock(&c->lock);
			return -ENOMEM;
		}
		c->recs = nr;
		c->cap = ncap;
	}
	memcpy(c->recs + c->n, b->data, b->n * sizeof(struct rec));
	c->n += b->n;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static int sink_finish(void *state)
{
	struct collected *c = state;

	pthread_mutex_lock(&c->lock);
	c->finished++;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void sink_close(void *state)
{
	(void)state;
}

static const struct sl_sink_ops sink_ops = {
	.open = sink_open, .write = sink_write, .finish = sink_finish, .close = sink_close
};

static inline void collected_init(struct collected *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
}

static inline void collected_fini(struct collected *c)
{
	free(c->recs);
	pthread_mutex_destroy(&c->lock);
}

static inline int cmp_rec(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return (x->val > y->val) - (x->val < y->val);
}

static inline int times_two(const void *in, void *out, void *arg)
{
	const struct rec *r = in;
	struct rec *o = out;

	(void)arg;
	o->id = r->id;
	o->val = r->val * 2;
	return 0;
}

#endif /* SL_TEST_COLLECT_SINK_H */
