/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watermark.c — per-split watermark generation with idleness, and the
 * valve that combines a task's input channels (core/sli_watermark.h).
 *
 * Generation follows Flink's WatermarkOutputMultiplexer: each split has
 * its own bounded-out-of-orderness generator; the subtask's watermark is
 * the minimum over the splits that are neither ended nor idle, emitted
 * only when it grows, so a split that turns active again behind it holds
 * it back until it catches up but never moves it back. A split ended
 * holds nothing back.
 *
 * The valve follows Flink's StatusWatermarkValve: a channel that turns
 * active again is "unaligned" (its watermark is ignored) until its
 * watermark reaches the last one emitted, so the output never goes back.
 *
 * Invariant of both: out >= the minimum over what counts (after every
 * call), so a change to a watermark strictly above out cannot move out.
 *
 * Threads: none of their own; one instance per subtask.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_common.h>

#include "sli_watermark.h"

/* --------------------------------------------------------- generation */

int sli_wmgen_init(struct sli_wmgen *g, const struct sl_watermark_strategy *ws)
{
	memset(g, 0, sizeof(*g));
	g->bound = ws->out_of_orderness_ms;
	g->every = ws->every;
	g->none = ws->none;
	g->idle_ns = ws->idle_timeout_ms > 0 ? (uint64_t)ws->idle_timeout_ms * 1000000u : 0;
	g->out = INT64_MIN;
	return 0;
}

void sli_wmgen_fini(struct sli_wmgen *g)
{
	free(g->s);
	g->s = NULL;
	g->n = g->cap = 0;
}

/* The generator's candidate M - B - 1, without overflow (Flink starts M at MIN + B + 1). */
static int64_t candidate(const struct sli_wmgen *g, const struct sli_wmsplit *s)
{
	if (s->max_ts < INT64_MIN + g->bound + 1)
		return INT64_MIN;
	return s->max_ts - g->bound - 1;
}

/* Recompute the minimum over live active splits, and the status. */
static unsigned combine(struct sli_wmgen *g)
{
	int64_t min = INT64_MAX;
	bool any = false;
	unsigned ev = 0;

	if (g->nlive == 0)
		return 0; /* Flink: no output left, nothing to say */
	for (uint32_t i = 0; i < g->n; i++) {
		const struct sli_wmsplit *s = &g->s[i];

		if (s->ended || s->idle)
			continue;
		any = true;
		if (s->wm < min)
			min = s->wm;
	}
	if (!any) {
		if (!g->idle) {
			g->idle = true;
			ev |= SLI_WM_IDLE;
		}
		return ev;
	}
	if (g->idle) {
		g->idle = false;
		ev |= SLI_WM_ACTIVE;
	}
	if (min > g->out) {
		g->out = min;
		ev |= SLI_WM_ADVANCE;
	}
	return ev;
}

int sli_wmgen_grow(struct sli_wmgen *g, uint32_t n, uint64_t now, unsigned *ev)
{
	*ev = 0;
	if (n <= g->n)
		return 0;
	if (n > g->cap) {
		uint32_t ncap = g->cap ? g->cap : 4;
		struct sli_wmsplit *ns;

		while (ncap < n)
			ncap = ncap > UINT32_MAX / 2 ? n : ncap * 2;
		ns = realloc(g->s, (size_t)ncap * sizeof(*ns));
		if (ns == NULL)
			return -ENOMEM;
		g->s = ns;
		g->cap = ncap;
	}
	for (uint32_t i = g->n; i < n; i++)
		g->s[i] =
		    (struct sli_wmsplit){ .max_ts = INT64_MIN, .wm = INT64_MIN, .last_ns = now };
	g->nlive += n - g->n;
	g->n = n;
	if (g->next_check_ns > now + g->idle_ns)
		g->next_check_ns = now + g->idle_ns;
	/* A new split is active: an idle subtask turns active (its watermark is MIN). */
	if (g->idle) {
		g->idle = false;
		*ev = SLI_WM_ACTIVE;
	}
	return 0;
}

unsigned sli_wmgen_activity(struct sli_wmgen *g, uint32_t split, uint64_t now)
{
	struct sli_wmsplit *s = &g->s[split];

	SL_ASSERT(split < g->n && !s->ended);
	s->last_ns = now;
	if (!s->idle)
		return 0;
	/* Active again; behind ->out it holds the watermark until it catches up. */
	s->idle = false;
	if (g->next_check_ns > now + g->idle_ns)
		g->next_check_ns = now + g->idle_ns;
	if (g->idle) {
		g->idle = false;
		return SLI_WM_ACTIVE;
	}
	return 0;
}

unsigned sli_wmgen_record(struct sli_wmgen *g, uint32_t split, int64_t ts)
{
	struct sli_wmsplit *s = &g->s[split];
	int64_t old = s->wm, c;

	if (ts > s->max_ts)
		s->max_ts = ts;
	if (g->every == 0 || g->none || ++s->count % g->every != 0)
		return 0;
	c = candidate(g, s);
	if (c <= old)
		return 0;
	s->wm = c;
	/* Above out it cannot have been the minimum (see the invariant at the top). */
	return old <= g->out ? combine(g) : 0;
}

/*
 * The largest of @max and @ts[0..@n). Four running maxima: one is a chain
 * of compare-and-move, two cycles per timestamp, which the compiler does
 * not vectorise for int64 on baseline x86-64 (no 64-bit compare before
 * SSE4.2); four chains overlap (bench_window: this pass over every
 * record's timestamp takes about a third less time).
 */
static int64_t max_of(int64_t max, const int64_t *ts, uint32_t n)
{
	int64_t m1 = max, m2 = max, m3 = max;
	uint32_t i = 0;

	for (; i + 4 <= n; i += 4) {
		max = ts[i] > max ? ts[i] : max;
		m1 = ts[i + 1] > m1 ? ts[i + 1] : m1;
		m2 = ts[i + 2] > m2 ? ts[i + 2] : m2;
		m3 = ts[i + 3] > m3 ? ts[i + 3] : m3;
	}
	for (; i < n; i++)
		max = ts[i] > max ? ts[i] : max;
	max = m1 > max ? m1 : max;
	m2 = m3 > m2 ? m3 : m2;
	return m2 > max ? m2 : max;
}

uint32_t sli_wmgen_records(struct sli_wmgen *g, uint32_t split, const int64_t *ts, uint32_t n,
			   unsigned *ev)
{
	struct sli_wmsplit *s = &g->s[split];
	uint32_t i = 0;

	*ev = 0;
	if (g->every == 0 || g->none) {
		s->max_ts = max_of(s->max_ts, ts, n); /* count is not kept: nothing reads it */
		return n;
	}
	while (i < n) {
		/* Records up to and including the next every-N boundary. */
		uint64_t left = g->every - s->count % g->every;
		uint32_t k = left < n - i ? (uint32_t)left : n - i;
		int64_t old = s->wm, c;

		s->max_ts = max_of(s->max_ts, ts + i, k);
		s->count += k;
		i += k;
		if (k < left)
			break; /* no boundary in the rest */
		/* The boundary record i - 1: as sli_wmgen_record(). */
		c = candidate(g, s);
		if (c <= old)
			continue;
		s->wm = c;
		if (old <= g->out && (*ev = combine(g)) != 0)
			return i;
	}
	return i;
}

unsigned sli_wmgen_periodic(struct sli_wmgen *g)
{
	if (g->none)
		return 0;
	for (uint32_t i = 0; i < g->n; i++) {
		struct sli_wmsplit *s = &g->s[i];
		int64_t c = candidate(g, s);

		if (!s->ended && !s->idle && c > s->wm)
			s->wm = c;
	}
	return combine(g);
}

unsigned sli_wmgen_end_split(struct sli_wmgen *g, uint32_t split)
{
	struct sli_wmsplit *s = &g->s[split];

	SL_ASSERT(split < g->n);
	if (s->ended)
		return 0;
	s->ended = true;
	g->nlive--;
	return combine(g);
}

unsigned sli_wmgen_check_idle(struct sli_wmgen *g, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	bool changed = false;

	if (g->idle_ns == 0 || now < g->next_check_ns)
		return 0;
	for (uint32_t i = 0; i < g->n; i++) {
		struct sli_wmsplit *s = &g->s[i];

		if (s->ended || s->idle)
			continue;
		if (now - s->last_ns >= g->idle_ns) {
			s->idle = true;
			changed = true;
		} else if (s->last_ns + g->idle_ns < next) {
			next = s->last_ns + g->idle_ns;
		}
	}
	g->next_check_ns = next;
	return changed ? combine(g) : 0;
}

/* -------------------------------------------------------------- valve */

int sli_valve_init(struct sli_valve *v, unsigned n)
{
	memset(v, 0, sizeof(*v));
	v->ch = calloc(n ? n : 1, sizeof(*v->ch));
	if (v->ch == NULL)
		return -ENOMEM;
	v->n = n;
	v->out = INT64_MIN;
	for (unsigned c = 0; c < n; c++)
		v->ch[c] = (struct sli_wmchan){ .wm = INT64_MIN, .aligned = true };
	return 0;
}

void sli_valve_fini(struct sli_valve *v)
{
	free(v->ch);
	v->ch = NULL;
	v->n = 0;
}

/* Flink's findAndOutputNewMinWatermarkAcrossAlignedChannels. */
static unsigned new_min(struct sli_valve *v)
{
	int64_t min = INT64_MAX;
	bool any = false;

	for (unsigned c = 0; c < v->n; c++)
		if (v->ch[c].aligned && !v->ch[c].idle && !v->ch[c].ended) {
			any = true;
			if (v->ch[c].wm < min)
				min = v->ch[c].wm;
		}
	if (any && min > v->out) {
		v->out = min;
		return SLI_WM_ADVANCE;
	}
	return 0;
}

static bool any_active(const struct sli_valve *v)
{
	for (unsigned c = 0; c < v->n; c++)
		if (!v->ch[c].idle && !v->ch[c].ended)
			return true;
	return false;
}

static bool any_open(const struct sli_valve *v)
{
	for (unsigned c = 0; c < v->n; c++)
		if (!v->ch[c].ended)
			return true;
	return false;
}

/*
 * The last active channel @c stopped counting (idle or ended): if it held
 * the output, flush the maximum over the open channels (Flink's
 * findAndOutputMaxWatermarkAcrossAllChannels), then turn idle.
 */
static unsigned all_idle(struct sli_valve *v, int64_t held)
{
	unsigned ev = 0;

	if (held == v->out) {
		int64_t max = INT64_MIN;

		for (unsigned c = 0; c < v->n; c++)
			if (!v->ch[c].ended && v->ch[c].wm > max)
				max = v->ch[c].wm;
		if (max > v->out) {
			v->out = max;
			ev |= SLI_WM_ADVANCE;
		}
	}
	v->idle = true;
	return ev | SLI_WM_IDLE;
}

unsigned sli_valve_watermark(struct sli_valve *v, unsigned c, int64_t wm)
{
	struct sli_wmchan *ch = &v->ch[c];

	SL_ASSERT(c < v->n);
	/* Flink ignores watermarks of idle channels, and all of them while idle. */
	if (v->idle || ch->idle || ch->ended || wm <= ch->wm)
		return 0;
	ch->wm = wm;
	if (!ch->aligned && wm >= v->out)
		ch->aligned = true;
	return new_min(v);
}

unsigned sli_valve_status(struct sli_valve *v, unsigned c, bool idle)
{
	struct sli_wmchan *ch = &v->ch[c];

	SL_ASSERT(c < v->n);
	if (ch->ended || ch->idle == idle)
		return 0;
	ch->idle = idle;
	if (idle) {
		ch->aligned = false;
		if (!any_active(v))
			return all_idle(v, ch->wm);
		return ch->wm == v->out ? new_min(v) : 0;
	}
	/* Active again: it counts at once only if it is not behind the output. */
	if (ch->wm >= v->out)
		ch->aligned = true;
	if (v->idle) {
		v->idle = false;
		return SLI_WM_ACTIVE;
	}
	return 0;
}

unsigned sli_valve_end(struct sli_valve *v, unsigned c)
{
	struct sli_wmchan *ch = &v->ch[c];
	bool was_active = !ch->idle;

	SL_ASSERT(c < v->n);
	if (ch->ended)
		return 0;
	ch->ended = true;
	ch->aligned = false;
	if (!was_active || !any_open(v))
		return 0; /* an idle channel held nothing; the last one ends the task */
	if (!any_active(v))
		return all_idle(v, ch->wm);
	return new_min(v);
}
