/* SPDX-License-Identifier: Apache-2.0 */
/*
 * window_spill.c — window-agg's window stage when the job has a state
 * budget (state-memory): Flink's WindowOperator with the default
 * EventTimeTrigger, allowed lateness, the late side output and session
 * merging (MergingWindowSet), as a keyed process function whose window
 * contents live in the keyed state backend, so that they spill to disk
 * past the budget like any sl_state.h state. Its output equals that of
 * sl_window_aggregate() (core/window.c) with window_agg.c's aggregate.
 *
 * State per key: one value state "windows", the key's live windows as
 * an array of struct wrec {start, end, accumulator} sorted by start.
 * It has no namespace (only namespace-free entries spill, state/api.c),
 * so a key's windows move to disk and back together; an element or a
 * timer reads the array, changes it and writes it back (O(windows of
 * the key), a handful for tumbling and sliding windows, one or a few
 * sessions). A key with no window left has no entry.
 *
 * Timers stay in memory (core/timers.c): event-time timers of the key,
 * without a namespace, at a window's end - 1 (fire) and end - 1 +
 * lateness (cleanup), deduplicated per (key, time). That is the overhead
 * per live window outside the budget: at most two timers of about 40
 * bytes. Outside it too: the timers' key dictionary, which holds the
 * bytes of every key that had a timer once, for the whole run. A
 * timer at t fires every window of its key with end - 1 == t and drops
 * every one whose cleanup time is t, so one timer serves all windows of
 * the key due then. Timers are never deleted (merged sessions leave
 * theirs): a timer that finds no window due at its time does nothing,
 * which is what Flink's deleted timer would have done, because a live
 * window due at t always registered a timer at t itself (its end - 1 was
 * ahead of the watermark when it was created or extended, else it fired
 * at once; its cleanup timer is registered with every element).
 *
 * Threads: the element and timer functions run on the stage's workers,
 * each subtask on its own slot of struct wa_spill (scratch and figures);
 * wa_spill_stats() on the main thread after the run (the workers were
 * joined).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_error.h>
#include <sluice/sl_state.h>

#include "sli_state_api.h"
#include "window_agg.h"

/* Sample the state's spill figures after this many calls of a subtask (a power of 2). */
#define NOTE_EVERY 256

/* One live window of a key, as stored in its "windows" value. */
struct wrec {
	int64_t start, end;
	struct wa_acc acc;
};

/* A subtask's scratch (the current key's windows) and spill figures. */
struct ws_sub {
	_Alignas(64) struct wrec *w;
	uint32_t n, cap;
	uint64_t calls;
	uint64_t evictions, reloads, writes, peak_bytes, peak_on_disk;
};

struct wa_spill {
	struct sl_window_spec spec;
	bool late_side;
	int id; /* the "windows" state */
	unsigned nsub;
	struct ws_sub *sub;
};

/* ---------------------------------------------------------- time rules */

static int64_t floor_mod(int64_t a, int64_t m)
{
	int64_t r = a % m;

	return r < 0 ? r + m : r;
}

/* end - 1 + lateness, saturating (Flink's cleanupTime()); lateness >= 0. */
static int64_t cleanup_time(const struct wa_spill *ws, int64_t end)
{
	int64_t l = ws->spec.allowed_lateness;

	return end - 1 > INT64_MAX - l ? INT64_MAX : end - 1 + l;
}

static bool window_late(const struct wa_spill *ws, int64_t end, int64_t wm)
{
	return cleanup_time(ws, end) <= wm;
}

/* ------------------------------------------------------- keyed state */

static int fail(struct sl_ctx *c, int rc, const char *what)
{
	const struct sl_subtask_info *si = sl_ctx_info(c);

	return sl_errbuf_set(si->errbuf, si->errlen, rc, "%s", what);
}

static int reserve(struct ws_sub *s, uint32_t n)
{
	struct wrec *w;
	uint32_t cap;

	if (n <= s->cap)
		return 0;
	cap = s->cap ? s->cap : 8;
	while (cap < n)
		cap *= 2;
	w = realloc(s->w, cap * sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	s->w = w;
	s->cap = cap;
	return 0;
}

/* The subtask's slot with the current key's windows copied into it. */
static int load(struct wa_spill *ws, struct sl_ctx *c, struct ws_sub **out)
{
	const struct sl_subtask_info *si = sl_ctx_info(c);
	struct ws_sub *s;
	const void *v;
	uint32_t len;
	int rc;

	if (si == NULL)
		return -EINVAL;
	if (si->index >= ws->nsub) /* it runs at the parallelism it was built for */
		return fail(c, -EINVAL, "window stage built for fewer subtasks than it runs");
	*out = s = &ws->sub[si->index];
	s->n = 0;
	rc = sl_value_get(c, ws->id, &v, &len);
	if (rc <= 0 || len == 0)
		return rc < 0 ? rc : 0;
	if (len % sizeof(struct wrec) != 0)
		return fail(c, -EPROTO, "window state of a key is not an array of windows");
	if (reserve(s, len / sizeof(struct wrec)) < 0)
		return fail(c, -ENOMEM, "out of memory for the windows of a key");
	memcpy(s->w, v, len);
	s->n = len / sizeof(struct wrec);
	return 0;
}

static int store(const struct wa_spill *ws, struct sl_ctx *c, const struct ws_sub *s)
{
	int rc;

	if (s->n == 0)
		return (rc = sl_state_clear(c, ws->id)) < 0 ? rc : 0;
	return sl_value_put(c, ws->id, s->w, s->n * (uint32_t)sizeof(struct wrec));
}

/* Insert [start, end) with an empty accumulator at index @i (the order by start). */
static int insert(struct ws_sub *s, uint32_t i, int64_t start, int64_t end)
{
	if (reserve(s, s->n + 1) < 0)
		return -ENOMEM;
	memmove(&s->w[i + 1], &s->w[i], (s->n - i) * sizeof(*s->w));
	s->w[i].start = start;
	s->w[i].end = end;
	wa_acc_init(&s->w[i].acc);
	s->n++;
	return 0;
}

/* Keep the largest spill figures the subtask's state showed (its counters only grow). */
static void note(struct sl_ctx *c, struct ws_sub *s)
{
	struct sli_state_api_stats st;

	if (sli_state_api_stats(c, &st) < 0)
		return;
	s->evictions = st.evictions > s->evictions ? st.evictions : s->evictions;
	s->reloads = st.reloads > s->reloads ? st.reloads : s->reloads;
	s->writes = st.spill_writes > s->writes ? st.spill_writes : s->writes;
	s->peak_bytes = st.spill_file_bytes > s->peak_bytes ? st.spill_file_bytes : s->peak_bytes;
	s->peak_on_disk = st.spilled > s->peak_on_disk ? st.spilled : s->peak_on_disk;
}

/* ----------------------------------------------------------- windows */

static int emit(struct sl_ctx *c, const struct wrec *w, struct sl_collector *out)
{
	const struct sl_key *k = sl_ctx_key(c);
	struct wa_out o = { w->start,	w->end,	    w->acc.count, w->acc.sum,
			    w->acc.min, w->acc.max, { 0, 0 } };
	int rc = sl_collector_str(out, k->ptr, k->len, &o.key);

	return rc < 0 ? rc : sl_emit(out, &o, w->end - 1, NULL);
}

/* Add @v to window @w, then EventTimeTrigger.onElement and the cleanup timer. */
static int add_and_trigger(const struct wa_spill *ws, struct sl_ctx *c, struct wrec *w, int64_t v,
			   int64_t wm, struct sl_collector *out)
{
	int rc;

	wa_acc_add(&w->acc, v);
	if (w->end - 1 <= wm)
		rc = emit(c, w, out); /* a late firing: at once, with the new contents */
	else
		rc = sl_timer_register(c, SL_EVENT_TIME, w->end - 1);
	if (rc >= 0 && cleanup_time(ws, w->end) != INT64_MAX)
		rc = sl_timer_register(c, SL_EVENT_TIME, cleanup_time(ws, w->end));
	return rc < 0 ? rc : 0;
}

/* Tumbling and sliding: every window of @ts (core/window.c's assign_fixed()). */
static int add_fixed(const struct wa_spill *ws, struct sl_ctx *c, struct ws_sub *s, int64_t ts,
		     int64_t v, struct sl_collector *out, bool *skipped)
{
	const struct sl_window_spec *sp = &ws->spec;
	int64_t wm = sl_ctx_current_watermark(c);
	int64_t slide = sp->kind == SL_WINDOW_TUMBLING ? sp->size : sp->slide;
	int64_t r = floor_mod(ts, slide) - floor_mod(sp->offset, slide), start;

	if (r < 0)
		r += slide;
	if (ts < INT64_MIN + r)
		return 0; /* every window of the element starts before INT64_MIN */
	/* start > ts - size, written so that nothing overflows; windows past INT64_MAX skipped. */
	for (start = ts - r; (uint64_t)ts - (uint64_t)start < (uint64_t)sp->size; start -= slide) {
		int64_t end = start + sp->size;
		uint32_t i = 0;
		int rc;

		if (start <= INT64_MAX - sp->size && !window_late(ws, end, wm)) {
			*skipped = false;
			while (i < s->n && s->w[i].start < start)
				i++;
			if ((i == s->n || s->w[i].start != start) && insert(s, i, start, end) < 0)
				return fail(c, -ENOMEM, "out of memory for the windows of a key");
			rc = add_and_trigger(ws, c, &s->w[i], v, wm, out);
			if (rc < 0)
				return rc;
		}
		if (start < INT64_MIN + slide)
			break;
	}
	return 0;
}

/*
 * Sessions: merge [ts, ts + gap) with the key's windows it intersects
 * (touching counts; they are disjoint and sorted, so those are adjacent)
 * into their cover, as MergingWindowSet.addWindow() and its merge
 * function do (core/window.c's assign_session()).
 */
static int add_session(const struct wa_spill *ws, struct sl_ctx *c, struct ws_sub *s, int64_t ts,
		       int64_t v, struct sl_collector *out, bool *skipped)
{
	int64_t wm = sl_ctx_current_watermark(c);
	int64_t start = ts, end;
	uint32_t first = 0, nhit = 0;
	int rc;

	if (__builtin_add_overflow(ts, ws->spec.gap, &end))
		end = INT64_MAX;
	for (uint32_t i = 0; i < s->n; i++) {
		if (s->w[i].start > end || s->w[i].end < start)
			continue;
		if (nhit++ == 0)
			first = i;
		start = s->w[i].start < start ? s->w[i].start : start;
		end = s->w[i].end > end ? s->w[i].end : end;
	}
	if (nhit == 0) {
		if (window_late(ws, end, wm))
			return 0; /* retired at once: the element is skipped */
		while (first < s->n && s->w[first].start < start)
			first++;
		if (insert(s, first, start, end) < 0)
			return fail(c, -ENOMEM, "out of memory for the windows of a key");
	} else if (nhit > 1 || s->w[first].start != start || s->w[first].end != end) {
		/* A real merge (not inside one window): the cover takes the accumulators. */
		if (window_late(ws, end, wm)) {
			const struct sl_subtask_info *si = sl_ctx_info(c);

			return sl_errbuf_set(si->errbuf, si->errlen, -EINVAL,
					     "session merge produced a late window [%lld, %lld) "
					     "(watermark %lld)",
					     (long long)start, (long long)end, (long long)wm);
		}
		for (uint32_t i = 1; i < nhit; i++)
			wa_acc_merge(&s->w[first].acc, &s->w[first + i].acc);
		memmove(&s->w[first + 1], &s->w[first + nhit],
			(s->n - first - nhit) * sizeof(*s->w));
		s->n -= nhit - 1;
		s->w[first].start = start;
		s->w[first].end = end;
		/* EventTimeTrigger.onMerge: a timer at the cover's end - 1 if still ahead. */
		if (end - 1 > wm && (rc = sl_timer_register(c, SL_EVENT_TIME, end - 1)) < 0)
			return rc;
	}
	if (window_late(ws, s->w[first].end, wm))
		return 0; /* an existing window that is late now: skipped */
	*skipped = false;
	return add_and_trigger(ws, c, &s->w[first], v, wm, out);
}

/* ------------------------------------------------ the keyed function */

static int ws_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
		      struct sl_collector *out, void *arg)
{
	struct wa_spill *ws = arg;
	const struct wa_ev *e = in;
	bool skipped = true;
	struct ws_sub *s;
	int64_t late_at;
	int rc = load(ws, c, &s);

	if (rc < 0)
		return rc;
	if (ws->spec.kind == SL_WINDOW_SESSION)
		rc = add_session(ws, c, s, ts, e->value, out, &skipped);
	else
		rc = add_fixed(ws, c, s, ts, e->value, out, &skipped);
	/* A skipped element changed nothing. */
	if (rc == 0 && !skipped)
		rc = store(ws, c, s);
	if (rc < 0)
		return rc;
	/* Late: skipped by all its windows and ts + lateness <= watermark (Java's wrap). */
	late_at = (int64_t)((uint64_t)ts + (uint64_t)ws->spec.allowed_lateness);
	if (skipped && late_at <= sl_ctx_current_watermark(c)) {
		if (ws->late_side)
			rc = sl_emit_side(out, 0, in, ts, src);
		else
			atomic_fetch_add_explicit(&sl_ctx_info(c)->counters->late_records_dropped,
						  1, memory_order_relaxed);
	}
	if ((++s->calls & (NOTE_EVERY - 1)) == 0)
		note(c, s);
	return rc;
}

/* A timer of the current key at @time: fire its windows due then, drop those whose time is up. */
static int ws_timer(struct sl_ctx *c, enum sl_time_domain d, int64_t time, struct sl_collector *out,
		    void *arg)
{
	struct wa_spill *ws = arg;
	struct ws_sub *s;
	uint32_t m = 0, n;
	int rc = load(ws, c, &s);

	(void)d; /* event time only */
	if (rc < 0)
		return rc;
	n = s->n;
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		if (s->w[i].end - 1 == time)
			rc = emit(c, &s->w[i], out); /* EventTimeTrigger.onEventTime: FIRE */
		if (cleanup_time(ws, s->w[i].end) != time)
			s->w[m++] = s->w[i]; /* else cleared, after its firing when lateness is 0 */
	}
	s->n = m;
	if (rc == 0 && m != n)
		rc = store(ws, c, s);
	if ((++s->calls & (NOTE_EVERY - 1)) == 0 || sl_ctx_current_watermark(c) == INT64_MAX)
		note(c, s);
	return rc;
}

struct sl_stream *wa_spill_window(struct sl_stream *keyed, const struct sl_window_spec *spec,
				  bool late_side, unsigned parallelism,
				  const struct sl_type *out_type, struct wa_spill **out)
{
	struct wa_spill *ws = calloc(1, sizeof(*ws));
	struct sl_stream *w;

	*out = ws;
	if (ws == NULL || parallelism == 0)
		return NULL;
	ws->spec = *spec;
	ws->late_side = late_side;
	ws->nsub = parallelism;
	ws->sub = aligned_alloc(64, parallelism * sizeof(*ws->sub));
	if (ws->sub == NULL)
		return NULL;
	memset(ws->sub, 0, parallelism * sizeof(*ws->sub));
	w = sl_keyed_process(
	    keyed, "window",
	    &(struct sl_keyed_process){ .element = ws_element, .timer = ws_timer, .arg = ws },
	    out_type);
	ws->id = sl_state_declare(
	    w, &(struct sl_state_desc){ .name = "windows", .kind = SL_STATE_VALUE });
	return ws->id < 0 ? NULL : w;
}

void wa_spill_stats(const struct wa_spill *ws, struct wa_spill_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; ws != NULL && i < ws->nsub; i++) {
		const struct ws_sub *s = &ws->sub[i];

		out->evictions += s->evictions;
		out->reloads += s->reloads;
		out->writes += s->writes;
		out->peak_bytes += s->peak_bytes;
		out->peak_on_disk += s->peak_on_disk;
	}
}

void wa_spill_free(struct wa_spill *ws)
{
	if (ws == NULL)
		return;
	for (unsigned i = 0; ws->sub != NULL && i < ws->nsub; i++)
		free(ws->sub[i].w);
	free(ws->sub);
	free(ws);
}
