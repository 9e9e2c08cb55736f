/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sources.h — the array source of the window, join and semantics
 * tests, and the real-time safety net of their gates. Header-only,
 * included once per test program.
 *
 * The array source emits records evs[0..n) in order, per_poll per poll
 * (0: as many as the batch holds), at parallelism 1 only. @ready, when
 * set, gates record @next (next == n: the end of input): while it says
 * no, poll() returns what it has (maybe 0). When poll() returns
 * SL_SOURCE_END it sets @ended (release), which other gates can wait on.
 *
 * The including test defines, before the #include, `struct in` (its
 * input record, with an int64_t member ts: the element's timestamp),
 * and after it arr_fill(), which writes the element of record @r into
 * slot @n of @out (0, or -ENOMEM when the batch has no room for its
 * strings). @kind is the test's own: which element type arr_fill()
 * writes, when it writes several.
 *
 * Threads: a source's state is its subtask's; @ended and whatever
 * @ready reads are shared with the test.
 */
#ifndef SL_TEST_SOURCES_H
#define SL_TEST_SOURCES_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <sluice/sluice.h>

struct arr_conf {
	const struct in *evs;
	size_t n;
	int kind;
	uint32_t per_poll;
	bool (*ready)(size_t next, void *arg); /* NULL: always */
	void *arg;
	atomic_bool ended; /* poll() returned SL_SOURCE_END */
};

static int arr_fill(const struct arr_conf *c, const struct in *r, struct sl_batch *out, uint32_t n);

struct arr_state {
	struct arr_conf *c;
	size_t next;
};

static int arr_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	struct arr_state *s;

	if (info->parallelism != 1) {
		snprintf(info->errbuf, info->errlen, "the array source runs at parallelism 1");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->c = arg;
	*state = s;
	return 0;
}

static int arr_poll(void *state, struct sl_batch *out)
{
	struct arr_state *s = state;
	struct arr_conf *c = s->c;
	uint32_t n = 0;

	while (n < out->cap && s->next < c->n && (c->per_poll == 0 || n < c->per_poll)) {
		if (c->ready != NULL && !c->ready(s->next, c->arg))
			break;
		if (arr_fill(c, &c->evs[s->next], out, n) < 0)
			return -ENOMEM;
		out->ts[n++] = c->evs[s->next++].ts;
	}
	if (s->next == c->n && (c->ready == NULL || c->ready(c->n, c->arg))) {
		atomic_store_explicit(&c->ended, true, memory_order_release);
		return (int)n | SL_SOURCE_END;
	}
	return (int)n;
}

static void arr_close(void *state)
{
	free(state);
}

static const struct sl_source_ops arr_ops = { .open = arr_open,
					      .poll = arr_poll,
					      .close = arr_close };

/* A gate's safety net: give up waiting after this long (a failure, reported). */
#define GATE_GIVE_UP_S 60

/* The monotonic clock in seconds, for gate deadlines. */
static inline double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#endif /* SL_TEST_SOURCES_H */
