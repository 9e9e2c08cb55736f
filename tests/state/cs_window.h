/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cs_window.h — the checkpoint tests' event, window-result and count/sum
 * aggregate (create, add, merge, result) and the result's output line,
 * shared by test_ckpt_ops.c, test_ckpt_rescale_ua.c and test_ckpt_mem.c;
 * a test may pass an add() of its own to cs_aggregate() (test_ckpt_ops.c's
 * reads a string, the rescale test's is slow on purpose).
 */
#ifndef CS_WINDOW_H
#define CS_WINDOW_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sluice/sluice.h>

struct ev {
	int64_t key, val;
};
static const struct sl_type ev_type = SL_TYPE(struct ev);

struct wo {
	int64_t key, start, end, count, sum;
};
static const struct sl_type wo_type = SL_TYPE(struct wo);

struct cs {
	int64_t count, sum;
};

static void cs_create(void *acc, void *arg)
{
	(void)arg;
	memset(acc, 0, sizeof(struct cs));
}

/* Count the element, add its value. */
static inline void cs_add_ev(void *acc, const void *elem, int64_t ts, const struct sl_batch *src,
			     void *arg)
{
	struct cs *a = acc;

	(void)ts, (void)src, (void)arg;
	a->count++;
	a->sum += ((const struct ev *)elem)->val;
}

static void cs_merge(void *dst, const void *src, void *arg)
{
	struct cs *d = dst;
	const struct cs *x = src;

	(void)arg;
	d->count += x->count;
	d->sum += x->sum;
}

static int cs_result(const struct sl_window *w, const struct sl_key *key, const void *acc,
		     struct sl_collector *out, void *arg)
{
	const struct cs *a = acc;
	struct wo o = { 0, w->start, w->end, a->count, a->sum };

	(void)arg;
	memcpy(&o.key, key->ptr, sizeof(o.key));
	return sl_emit(out, &o, w->end - 1, NULL);
}

/* The count/sum aggregate with add function @add: sliceable (merge adds). */
static inline struct sl_aggregate cs_aggregate(void (*add)(void *acc, const void *elem, int64_t ts,
							   const struct sl_batch *src, void *arg))
{
	struct sl_aggregate a = { .acc_size = sizeof(struct cs), .flags = SL_AGG_SLICEABLE };

	a.create = cs_create;
	a.add = add;
	a.merge = cs_merge;
	a.result = cs_result;
	return a;
}

static int wo_format(const void *elem, int64_t ts, const struct sl_batch *b, char *buf, size_t len,
		     void *arg)
{
	const struct wo *o = elem;

	(void)b, (void)arg;
	return snprintf(buf, len,
			"%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64,
			o->key, o->start, o->end, o->count, o->sum, ts);
}

#endif /* CS_WINDOW_H */
