/* SPDX-License-Identifier: Apache-2.0 */
/*
 * window_tape.h — test helpers shared by the window tests: a source that
 * replays a tape of elements and timestamps in small uneven batches (so
 * watermarks and batch edges fall everywhere), and a sink that collects
 * whole elements from every subtask into one mutex-protected bag.
 * Header-only: each test program includes it once.
 */
#ifndef SL_TEST_WINDOW_TAPE_H
#define SL_TEST_WINDOW_TAPE_H

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sluice.h>

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* A source's tape: @n elements of @elem_size bytes and their timestamps. */
struct tape {
	const void *elems;
	const int64_t *ts;
	uint32_t elem_size, n;
	uint32_t spread; /* batches of 1 .. spread elements */
};

struct tape_pos {
	const struct tape *t;
	uint32_t next;
};

static int tape_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	struct tape_pos *p = calloc(1, sizeof(*p));

	(void)info;
	if (p == NULL)
		return -ENOMEM;
	p->t = arg;
	*state = p;
	return 0;
}

static int tape_poll(void *state, struct sl_batch *out)
{
	struct tape_pos *p = state;
	const struct tape *t = p->t;
	uint32_t want = 1 + (uint32_t)(mix64(p->next) % t->spread), n = 0;

	while (n < want && n < out->cap && p->next < t->n) {
		memcpy(sl_batch_elem(out, n),
		       (const char *)t->elems + (size_t)p->next * t->elem_size, t->elem_size);
		out->ts[n++] = t->ts[p->next++];
	}
	return (int)n | (p->next == t->n ? SL_SOURCE_END : 0);
}

static void tape_close(void *state)
{
	free(state);
}

static const struct sl_source_ops tape_ops = { .open = tape_open,
					       .poll = tape_poll,
					       .close = tape_close };

/* Collects whole elements of @size bytes from every subtask. */
struct bag {
	pthread_mutex_t lock;
	size_t size, n, cap;
	char *data;
};

static int bag_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	(void)info;
	*state = arg;
	return 0;
}

static int bag_write(void *state, const struct sl_batch *b)
{
	struct bag *g = state;
	int rc = 0;

	pthread_mutex_lock(&g->lock);
	if (g->n + b->n > g->cap) {
		size_t ncap = (g->n + b->n) * 2;
		char *nd = realloc(g->data, ncap * g->size);

		if (nd == NULL)
			rc = -ENOMEM;
		else
			g->data = nd, g->cap = ncap;
	}
	if (rc == 0) {
		memcpy(g->data + g->n * g->size, b->data, b->n * g->size);
		g->n += b->n;
	}
	pthread_mutex_unlock(&g->lock);
	return rc;
}

static void bag_close(void *state)
{
	(void)state;
}

static const struct sl_sink_ops bag_ops = { .open = bag_open,
					    .write = bag_write,
					    .close = bag_close };

#endif /* SL_TEST_WINDOW_TAPE_H */
