/* SPDX-License-Identifier: Apache-2.0 */
/*
 * window_gen.c — the general window operator (sl_window(), sl_time.h):
 * Flink's WindowOperator and EvictingWindowOperator with window
 * assigners (tumbling, sliding, session with a static or dynamic gap,
 * global), triggers (built-in and custom), evictors, allowed lateness,
 * the late side output, and reduce / aggregate / process functions.
 *
 * State of one subtask:
 *   keys     the key dictionary of sli_timers.h (key bytes -> dense id);
 *   windows  one entry per live (key, window), found by (key id, start,
 *            end) through an open-addressing table (linear probing,
 *            deletion by backward shift); an entry holds the contents
 *            (a list of element copies with their timestamps and an
 *            arena for their strings, or one accumulator), the
 *            trigger's state and the process function's window state,
 *            the last three in one fixed-size blob per entry; a session
 *            key also links its windows (Flink's MergingWindowSet, with
 *            the state window always the actual window);
 *   timers   the timer service of sli_timers.h, namespace = (start,
 *            end): trigger timers and cleanup timers share it, so a
 *            window has at most one timer per time and domain, as in
 *            Flink, and a timer is both when their times agree.
 *
 * Invariants: an entry exists for a window from its first element to
 * its cleanup (or its merge into another session); a session key's
 * windows never intersect; `has` says whether the contents are non-null
 * in Flink's sense (a list with elements, or an accumulator), and only
 * windows with contents fire.
 *
 * Threads: one struct sli_wgen per subtask, on its worker's thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_error.h>
#include <sluice/sl_snap.h>

#include "sli_exec.h"
#include "sli_timers.h"
#include "sli_window.h"

/* The node's configuration, checked and resolved by sli_wgen_conf_new(). */
struct sli_wgen_conf {
	struct sl_window_assigner as;
	struct sl_trigger trig; /* never KIND_DEFAULT */
	struct sl_evictor ev;
	int64_t lateness;
	sl_reduce_fn reduce;
	struct sl_aggregate agg;
	bool has_agg;
	sl_window_process_fn process;
	void *arg;
	uint32_t state_size;
	void (*clear)(const struct sl_window_ctx *ctx, void *arg);
	struct sl_type in; /* the input type */
	bool event_time;   /* time windows; the global window is not */
	bool merging;	   /* sessions */
	bool list;	   /* contents kept as a list: process alone, or an evictor */
	uint32_t acc_size; /* incremental: accumulator bytes (reduce: the element's) */
	uint32_t tsize;	   /* trigger state bytes */
};

struct gent {
	int64_t start, end;
	uint32_t key;
	uint32_t next; /* session list of its key, or free list: entry + 1, 0: end */
	uint32_t n, cap;
	uint8_t *data; /* list: [cap * in.size] */
	int64_t *ts;   /* list: [cap] */
	char *arena;   /* strings of the list, or of the reduce accumulator */
	uint32_t aused, acap;
	bool used;
	bool has; /* contents are non-null */
};

struct sli_wgen {
	const struct sli_wgen_conf *cf;
	struct sli_keys *keys;
	struct sli_timers *tm;
	uint32_t *sess; /* [key id] first session entry + 1 */
	uint32_t nsess, capsess;

	struct gent *ents;
	uint8_t *blobs; /* [capents * stride]: accumulator | trigger state | window state */
	size_t stride, acc_off, ts_off, ws_off;
	uint32_t nents, capents, free_head; /* free_head: entry + 1 */
	uint32_t *wslot;		    /* entry + 1, 0: empty */
	uint32_t wcap, wcount;

	uint8_t *scratch; /* one blob: a window without an entry */
	uint8_t *fold;	  /* an accumulator folded over a list */
	bool *evict;
	uint32_t capevict;
	uint32_t *mv; /* merging: the windows merged */
	const void **mstates;
	uint32_t capmv;
	struct sli_img *frozen; /* the last snapshot image (sli_wgen_freeze()) */
};

/* The trigger context (sl_time.h), on the stack of each trigger call. */
struct sl_trigger_ctx {
	struct sli_opi *op;
	uint32_t key;
	struct sl_window win;
	struct sl_key kb;
	void *state;
	const void *const *merged;
	unsigned nmerged;
};

/* ------------------------------------------------------------ helpers */

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static int64_t max_ts(int64_t start, int64_t end)
{
	struct sl_window w = { start, end };

	return sl_window_max_ts(&w);
}

/*
 * Flink's cleanupTime(): max_ts + lateness for event-time windows
 * (INT64_MAX when it overflows), max_ts otherwise (INT64_MAX: global).
 */
static int64_t cleanup_time(const struct sli_wgen_conf *cf, int64_t start, int64_t end)
{
	int64_t m = max_ts(start, end);

	return cf->event_time ? sli_sat_add(m, cf->lateness) : m;
}

static bool window_late(const struct sli_opi *op, int64_t start, int64_t end)
{
	const struct sli_wgen_conf *cf = op->wgen->cf;

	return cf->event_time && cleanup_time(cf, start, end) <= op->watermark;
}

static int64_t proc_now(const struct sli_opi *op)
{
	return sli_proc_now_ms(op->st->w->x);
}

/* Fail the job once with @rc, unless it already failed. */
static int fail(struct sli_opi *op, int rc, const char *what)
{
	if (!atomic_load_explicit(&op->st->w->x->failed, memory_order_relaxed))
		sli_fail(op, rc, "%s: %s", what, op->errbuf[0] ? op->errbuf : sl_strerror(rc));
	return rc;
}

/* ------------------------------------------------------------- entries */

SLI_WTAB_DEFINE(wtab, struct sli_wgen, 256)

/* The entry of (key, [start, end)), or -1. */
static int64_t ent_find(const struct sli_wgen *w, uint32_t key, int64_t start, int64_t end)
{
	uint32_t i = wtab_find(w, key, start, end);

	return w->wslot[i] ? (int64_t)w->wslot[i] - 1 : -1;
}

static uint8_t *blob(const struct sli_wgen *w, uint32_t e)
{
	return w->blobs + (size_t)e * w->stride;
}

static void *acc_of(const struct sli_wgen *w, uint32_t e)
{
	return blob(w, e) + w->acc_off;
}

static void *tstate_of(const struct sli_wgen *w, uint32_t e)
{
	return w->cf->tsize ? blob(w, e) + w->ts_off : NULL;
}

static void *wstate_of(const struct sli_wgen *w, uint32_t e)
{
	return w->cf->state_size ? blob(w, e) + w->ws_off : NULL;
}

/* A new, empty entry for (key, [start, end)). Return its index or -ENOMEM. */
static int64_t ent_add(struct sli_wgen *w, uint32_t key, int64_t start, int64_t end)
{
	struct gent *x;
	uint32_t e;

	if ((w->wcount + 1) * 2 > w->wcap && wtab_grow(w) < 0)
		return -ENOMEM;
	if (w->free_head) {
		e = w->free_head - 1;
		w->free_head = w->ents[e].next;
	} else {
		if (sli_grow2((void **)&w->ents, &w->capents, w->nents + 1, sizeof(*w->ents),
			      (void **)&w->blobs, w->stride) < 0)
			return -ENOMEM;
		e = w->nents++;
		memset(&w->ents[e], 0, sizeof(w->ents[e]));
	}
	x = &w->ents[e];
	x->start = start;
	x->end = end;
	x->key = key;
	x->next = 0;
	x->n = 0;
	x->aused = 0;
	x->used = true;
	x->has = false;
	memset(blob(w, e), 0, w->stride);
	w->wslot[wtab_find(w, key, start, end)] = e + 1;
	w->wcount++;
	return e;
}

/* Remove entry @e from the table and the key's session list; it goes to the free list. */
static void ent_drop(struct sli_wgen *w, uint32_t e)
{
	struct gent *x = &w->ents[e];

	if (w->cf->merging) {
		uint32_t *pp = &w->sess[x->key];

		while (*pp && *pp != e + 1)
			pp = &w->ents[*pp - 1].next;
		if (*pp)
			*pp = x->next;
	}
	wtab_remove(w, wtab_find(w, x->key, x->start, x->end));
	x->used = false;
	x->has = false;
	x->n = 0;
	x->aused = 0;
	x->next = w->free_head;
	w->free_head = e + 1;
}

/* ------------------------------------------------------------ contents */

/* Copy the strings of element @el (in place) from @src_arena into @x's arena. */
static int copy_strings(struct sli_wgen *w, struct gent *x, uint8_t *el, const char *src_arena)
{
	const struct sl_type *t = &w->cf->in;

	for (uint32_t k = 0; k < t->nstr; k++) {
		struct sl_str s;

		memcpy(&s, el + t->str_off[k], sizeof(s));
		if (sli_grow((void **)&x->arena, &x->acap, x->aused + s.len, 1) < 0)
			return -ENOMEM;
		if (s.len)
			memcpy(x->arena + x->aused, src_arena + s.off, s.len);
		s.off = x->aused;
		x->aused += s.len;
		memcpy(el + t->str_off[k], &s, sizeof(s));
	}
	return 0;
}

/* Append element @el with @ts (strings in @src_arena, NULL: none) to @x's list. */
static int list_append(struct sli_wgen *w, struct gent *x, const void *el, int64_t ts,
		       const char *src_arena)
{
	uint32_t size = w->cf->in.size;
	uint8_t *d;

	if (x->n == x->cap) {
		uint32_t ncap = x->cap ? x->cap * 2 : 8;
		int64_t *nt = realloc(x->ts, (size_t)ncap * sizeof(*nt));

		if (nt == NULL)
			return -ENOMEM;
		x->ts = nt;
		d = realloc(x->data, (size_t)ncap * size);
		if (d == NULL)
			return -ENOMEM;
		x->data = d;
		x->cap = ncap;
	}
	d = x->data + (size_t)x->n * size;
	memcpy(d, el, size);
	if (src_arena != NULL && copy_strings(w, x, d, src_arena) < 0)
		return -ENOMEM;
	x->ts[x->n++] = ts;
	x->has = true;
	return 0;
}

/* A batch that shows @n elements at @data (of @size bytes) with strings in @arena. */
static struct sl_batch view_of(uint8_t *data, int64_t *ts, uint32_t n, uint32_t size, char *arena,
			       uint32_t aused)
{
	struct sl_batch v = { 0 };

	v.n = v.cap = n;
	v.elem_size = size;
	v.data = data;
	v.ts = ts;
	v.arena = arena;
	v.arena_used = v.arena_cap = aused;
	return v;
}

/* Fold @el into the reduce accumulator @acc, keeping the accumulator's strings. */
static int reduce_into(struct sli_wgen *w, void *acc, const void *el)
{
	const struct sl_type *t = &w->cf->in;
	struct sl_str saved[SL_TYPE_MAX_STR];
	int rc;

	for (uint32_t k = 0; k < t->nstr; k++)
		memcpy(&saved[k], (uint8_t *)acc + t->str_off[k], sizeof(saved[k]));
	rc = w->cf->reduce(acc, el, w->cf->arg);
	for (uint32_t k = 0; k < t->nstr; k++)
		memcpy((uint8_t *)acc + t->str_off[k], &saved[k], sizeof(saved[k]));
	return rc;
}

/* Add element @i of @b to entry @e's contents. Return 0 or -errno (after sli_fail). */
static int contents_add(struct sli_opi *op, uint32_t e, const struct sl_batch *b, uint32_t i)
{
	struct sli_wgen *w = op->wgen;
	const struct sli_wgen_conf *cf = w->cf;
	struct gent *x = &w->ents[e];
	const void *el = sl_batch_elem(b, i);
	int rc = 0;

	if (cf->list) {
		rc = list_append(w, x, el, b->ts[i], cf->in.nstr ? b->arena : NULL);
		return rc < 0 ? fail(op, rc, "storing a window element") : 0;
	}
	if (cf->reduce != NULL) {
		if (!x->has) {
			memcpy(acc_of(w, e), el, cf->in.size);
			x->aused = 0;
			rc = cf->in.nstr ? copy_strings(w, x, acc_of(w, e), b->arena) : 0;
			if (rc < 0)
				return fail(op, rc, "storing a window element");
			x->has = true;
			return 0;
		}
		rc = reduce_into(w, acc_of(w, e), el);
		return rc < 0 ? fail(op, rc, "the window reduce function failed") : 0;
	}
	if (!x->has) {
		memset(acc_of(w, e), 0, cf->acc_size);
		sli_agg_create(&cf->agg, acc_of(w, e));
		x->has = true;
	}
	sli_agg_add(&cf->agg, acc_of(w, e), el, b->ts[i], b);
	return 0;
}

/* PURGE: the contents become null (the trigger's state stays). */
static void contents_clear(struct sli_wgen *w, uint32_t e)
{
	struct gent *x = &w->ents[e];

	x->n = 0;
	x->aused = 0;
	x->has = false;
}

/* Append entry @from's contents to @to's (sessions merging). */
static int contents_merge(struct sli_wgen *w, uint32_t to, uint32_t from)
{
	const struct sli_wgen_conf *cf = w->cf;
	struct gent *t = &w->ents[to], *f = &w->ents[from];

	if (!f->has)
		return 0;
	if (cf->list) {
		for (uint32_t j = 0; j < f->n; j++) {
			int rc = list_append(w, t, f->data + (size_t)j * cf->in.size, f->ts[j],
					     cf->in.nstr ? f->arena : NULL);

			if (rc < 0)
				return rc;
		}
		return 0;
	}
	if (!t->has) {
		memcpy(acc_of(w, to), acc_of(w, from), cf->acc_size);
		if (cf->reduce != NULL && cf->in.nstr) {
			t->aused = 0;
			if (copy_strings(w, t, acc_of(w, to), f->arena) < 0)
				return -ENOMEM;
		}
		t->has = true;
		return 0;
	}
	if (cf->reduce != NULL)
		return reduce_into(w, acc_of(w, to), acc_of(w, from));
	sli_agg_merge(&cf->agg, acc_of(w, to), acc_of(w, from));
	return 0;
}

/* ------------------------------------------------------------ triggers */

const struct sl_window *sl_trigger_ctx_window(const struct sl_trigger_ctx *c)
{
	return c ? &c->win : NULL;
}

const struct sl_key *sl_trigger_ctx_key(const struct sl_trigger_ctx *c)
{
	return c ? &c->kb : NULL;
}

int64_t sl_trigger_ctx_watermark(const struct sl_trigger_ctx *c)
{
	return c ? c->op->watermark : INT64_MIN;
}

int64_t sl_trigger_ctx_processing_time(const struct sl_trigger_ctx *c)
{
	return c ? proc_now(c->op) : 0;
}

void *sl_trigger_ctx_state(struct sl_trigger_ctx *c)
{
	return c ? c->state : NULL;
}

unsigned sl_trigger_ctx_merged_count(const struct sl_trigger_ctx *c)
{
	return c ? c->nmerged : 0;
}

const void *sl_trigger_ctx_merged_state(const struct sl_trigger_ctx *c, unsigned i)
{
	return c && i < c->nmerged ? c->merged[i] : NULL;
}

static int timer_op(struct sl_trigger_ctx *c, enum sli_domain d, int64_t time, bool add)
{
	struct sli_wgen *w;
	struct sli_ns ns;
	int rc;

	if (c == NULL)
		return -EINVAL;
	w = c->op->wgen;
	ns = (struct sli_ns){ c->win.start, c->win.end };
	if (!add)
		return sli_timers_delete(w->tm, d, c->key, ns, time);
	rc = sli_timers_register(w->tm, d, c->key, ns, time);
	if (rc > 0 && d == SLI_PROC_TIME)
		sli_proc_timer_note(c->op, time);
	return rc;
}

int sl_trigger_register_event_timer(struct sl_trigger_ctx *c, int64_t time)
{
	return timer_op(c, SLI_EVENT_TIME, time, true);
}

int sl_trigger_register_processing_timer(struct sl_trigger_ctx *c, int64_t time)
{
	return timer_op(c, SLI_PROC_TIME, time, true);
}

int sl_trigger_delete_event_timer(struct sl_trigger_ctx *c, int64_t time)
{
	return timer_op(c, SLI_EVENT_TIME, time, false);
}

int sl_trigger_delete_processing_timer(struct sl_trigger_ctx *c, int64_t time)
{
	return timer_op(c, SLI_PROC_TIME, time, false);
}

/* The state of the built-in continuous event-time trigger (Flink's "fire-time"). */
struct cont_state {
	int64_t fire;
	int64_t set; /* 0: null */
};

enum tcall { T_ELEMENT, T_EVENT, T_PROC };

/* Flink's ContinuousEventTimeTrigger.registerNextFireTimestamp(). */
static int cont_next(struct sl_trigger_ctx *c, int64_t time)
{
	const struct sl_trigger *t = &c->op->wgen->cf->trig;
	struct cont_state *s = c->state;
	int64_t next = sli_sat_add(time, t->interval), m = sl_window_max_ts(&c->win);

	if (next > m)
		next = m;
	/* A reducing state with min(): the smaller of what is there and next. */
	if (!s->set || next < s->fire)
		s->fire = next;
	s->set = 1;
	return sl_trigger_register_event_timer(c, next);
}

/*
 * One trigger call: @what happened (an element @el at @time, or a timer
 * at @time). Return an enum sl_trigger_result, purging applied, or -errno.
 */
static int trig_call(struct sl_trigger_ctx *c, enum tcall what, const void *el,
		     const struct sl_batch *src, int64_t time)
{
	const struct sl_trigger *t = &c->op->wgen->cf->trig;
	int64_t m = sl_window_max_ts(&c->win);
	int r = SL_TRIGGER_CONTINUE;

	switch (t->kind) {
	case SL_TRIGGER_KIND_EVENT_TIME:
		if (what == T_ELEMENT) {
			if (m <= c->op->watermark)
				r = SL_TRIGGER_FIRE;
			else
				r = sl_trigger_register_event_timer(c, m) < 0 ? -ENOMEM
									      : SL_TRIGGER_CONTINUE;
		} else if (what == T_EVENT && time == m) {
			r = SL_TRIGGER_FIRE;
		}
		break;
	case SL_TRIGGER_KIND_PROCESSING_TIME:
		if (what == T_ELEMENT)
			r = sl_trigger_register_processing_timer(c, m) < 0 ? -ENOMEM
									   : SL_TRIGGER_CONTINUE;
		else if (what == T_PROC)
			r = SL_TRIGGER_FIRE;
		break;
	case SL_TRIGGER_KIND_COUNT:
		if (what == T_ELEMENT) {
			uint64_t *n = c->state;

			if (++*n >= t->count) {
				*n = 0;
				r = SL_TRIGGER_FIRE;
			}
		}
		break;
	case SL_TRIGGER_KIND_CONTINUOUS_EVENT_TIME: {
		struct cont_state *s = c->state;

		if (what == T_ELEMENT) {
			if (m <= c->op->watermark)
				return t->purging ? SL_TRIGGER_FIRE_AND_PURGE : SL_TRIGGER_FIRE;
			if (sl_trigger_register_event_timer(c, m) < 0)
				return -ENOMEM;
			/* Java's %: the remainder has the sign of the dividend. */
			if (!s->set && cont_next(c, time - time % t->interval) < 0)
				return -ENOMEM;
		} else if (what == T_EVENT) {
			if (time == m) {
				r = SL_TRIGGER_FIRE;
			} else if (s->set && s->fire == time) {
				s->set = 0;
				if (cont_next(c, time) < 0)
					return -ENOMEM;
				r = SL_TRIGGER_FIRE;
			}
		}
		break;
	}
	case SL_TRIGGER_KIND_CUSTOM:
		if (what == T_ELEMENT && t->ops->on_element != NULL)
			r = t->ops->on_element(c, el, time, src, t->arg);
		else if (what == T_EVENT && t->ops->on_event_time != NULL)
			r = t->ops->on_event_time(c, time, t->arg);
		else if (what == T_PROC && t->ops->on_processing_time != NULL)
			r = t->ops->on_processing_time(c, time, t->arg);
		if (r > SL_TRIGGER_FIRE_AND_PURGE) {
			snprintf(c->op->errbuf, sizeof(c->op->errbuf),
				 "the trigger returned %d, not an enum sl_trigger_result", r);
			r = -EINVAL;
		}
		break;
	default: /* never */
		break;
	}
	if (r > 0 && t->purging && (r & SL_TRIGGER_FIRE))
		r = SL_TRIGGER_FIRE_AND_PURGE;
	return r;
}

/* Trigger.onMerge(): c's window is the merge result, c->merged the merged windows' states. */
static int trig_merge(struct sl_trigger_ctx *c)
{
	const struct sl_trigger *t = &c->op->wgen->cf->trig;
	int64_t m = sl_window_max_ts(&c->win);

	switch (t->kind) {
	case SL_TRIGGER_KIND_EVENT_TIME:
		if (m > c->op->watermark)
			return sl_trigger_register_event_timer(c, m) < 0 ? -ENOMEM : 0;
		return 0;
	case SL_TRIGGER_KIND_PROCESSING_TIME:
		if (m > proc_now(c->op))
			return sl_trigger_register_processing_timer(c, m) < 0 ? -ENOMEM : 0;
		return 0;
	case SL_TRIGGER_KIND_COUNT: {
		uint64_t *n = c->state;

		for (unsigned i = 0; i < c->nmerged; i++)
			*n += *(const uint64_t *)c->merged[i];
		return 0;
	}
	case SL_TRIGGER_KIND_CONTINUOUS_EVENT_TIME: {
		struct cont_state *s = c->state;

		for (unsigned i = 0; i < c->nmerged; i++) {
			const struct cont_state *o = c->merged[i];

			if (o->set && (!s->set || o->fire < s->fire)) {
				s->fire = o->fire;
				s->set = 1;
			}
		}
		if (s->set)
			return sl_trigger_register_event_timer(c, s->fire) < 0 ? -ENOMEM : 0;
		return 0;
	}
	case SL_TRIGGER_KIND_CUSTOM:
		return t->ops->on_merge(c, t->arg);
	default:
		return 0;
	}
}

/* Trigger.clear(): the window is gone. */
static int trig_clear(struct sl_trigger_ctx *c)
{
	const struct sl_trigger *t = &c->op->wgen->cf->trig;
	int64_t m = sl_window_max_ts(&c->win);

	switch (t->kind) {
	case SL_TRIGGER_KIND_EVENT_TIME:
		sl_trigger_delete_event_timer(c, m);
		return 0;
	case SL_TRIGGER_KIND_PROCESSING_TIME:
		sl_trigger_delete_processing_timer(c, m);
		return 0;
	case SL_TRIGGER_KIND_COUNT:
		*(uint64_t *)c->state = 0;
		return 0;
	case SL_TRIGGER_KIND_CONTINUOUS_EVENT_TIME: {
		struct cont_state *s = c->state;

		if (s->set) {
			sl_trigger_delete_event_timer(c, s->fire);
			s->set = 0;
		}
		return 0;
	}
	case SL_TRIGGER_KIND_CUSTOM:
		return t->ops->clear ? t->ops->clear(c, t->arg) : 0;
	default:
		return 0;
	}
}

/* A trigger context for key @key and window [@start, @end) with trigger state @state. */
static struct sl_trigger_ctx tctx(struct sli_opi *op, uint32_t key, int64_t start, int64_t end,
				  void *state)
{
	struct sl_trigger_ctx c = { .op = op, .key = key, .win = { start, end }, .state = state };

	c.kb = sli_keys_get(op->wgen->keys, key);
	return c;
}

static int trig_fail(struct sli_opi *op, int rc)
{
	return fail(op, rc, "the window trigger failed");
}

/* ------------------------------------------------------------ firing */

static struct sl_window_ctx wctx(struct sli_opi *op, uint32_t key, int64_t start, int64_t end,
				 void *state)
{
	struct sl_window_ctx c = { .window = { start, end },
				   .watermark = op->watermark,
				   .state = state,
				   .info = &op->info };

	c.key = sli_keys_get(op->wgen->keys, key);
	c.processing_time = proc_now(op);
	return c;
}

/* Compact entry @e's list to the elements not marked in w->evict. */
static int list_compact(struct sli_wgen *w, uint32_t e)
{
	const struct sli_wgen_conf *cf = w->cf;
	struct gent *x = &w->ents[e];
	uint32_t j = 0, size = cf->in.size;
	char *old = NULL;

	for (uint32_t i = 0; i < x->n; i++) {
		if (w->evict[i])
			continue;
		if (i != j) {
			memmove(x->data + (size_t)j * size, x->data + (size_t)i * size, size);
			x->ts[j] = x->ts[i];
		}
		j++;
	}
	if (j == x->n)
		return 0;
	x->n = j;
	x->has = j > 0;
	if (cf->in.nstr == 0 || x->aused == 0)
		return 0;
	/* Rebuild the arena from the elements kept. */
	old = x->arena;
	x->arena = NULL;
	x->acap = x->aused = 0;
	for (uint32_t i = 0; i < x->n; i++)
		if (copy_strings(w, x, x->data + (size_t)i * size, old) < 0) {
			free(old);
			return -ENOMEM;
		}
	free(old);
	return 0;
}

/* Run the evictor (before or after the function) on entry @e's list. */
static int evict(struct sli_opi *op, uint32_t e, const struct sl_window_ctx *ctx, bool after)
{
	struct sli_wgen *w = op->wgen;
	const struct sl_evictor *ev = &w->cf->ev;
	struct gent *x = &w->ents[e];
	int rc = 0;

	if (ev->kind == SL_EVICTOR_NONE || (ev->kind != SL_EVICTOR_CUSTOM && ev->after != after))
		return 0;
	if (sli_grow((void **)&w->evict, &w->capevict, x->n + 1, sizeof(*w->evict)) < 0)
		return fail(op, -ENOMEM, "evicting");
	memset(w->evict, 0, (size_t)x->n * sizeof(*w->evict));
	if (ev->kind == SL_EVICTOR_COUNT) {
		/* CountEvictor: the first n - count go. */
		for (uint64_t i = 0; x->n > ev->count && i < x->n - ev->count; i++)
			w->evict[i] = true;
	} else if (ev->kind == SL_EVICTOR_TIME) {
		/* TimeEvictor: cutoff = the largest timestamp - size; ts <= cutoff go. */
		int64_t hi = INT64_MIN, cut;

		if (x->n == 0)
			return 0;
		for (uint32_t i = 0; i < x->n; i++)
			hi = x->ts[i] > hi ? x->ts[i] : hi;
		cut = sli_sat_add(hi, -ev->size);
		for (uint32_t i = 0; i < x->n; i++)
			w->evict[i] = x->ts[i] <= cut;
	} else {
		struct sl_batch v =
		    view_of(x->data, x->ts, x->n, w->cf->in.size, x->arena, x->aused);
		int (*fn)(const struct sl_window_ctx *, const struct sl_batch *, bool *, void *) =
		    after ? ev->ops->evict_after : ev->ops->evict_before;

		if (fn == NULL)
			return 0;
		rc = fn(ctx, &v, w->evict, ev->arg);
		if (rc < 0)
			return fail(op, rc, "the window evictor failed");
	}
	rc = list_compact(w, e);
	return rc < 0 ? fail(op, rc, "evicting") : 0;
}

/* Call the process function with one element @el of @size bytes (strings in @arena). */
static int process_one(struct sli_opi *op, const struct sl_window_ctx *ctx, void *el, uint32_t size,
		       int64_t ts, char *arena, uint32_t aused)
{
	const struct sli_wgen_conf *cf = op->wgen->cf;
	struct sl_batch v = view_of(el, &ts, 1, size, arena, aused);

	return cf->process(ctx, &v, &op->coll, cf->arg);
}

/*
 * The window function over a list (an evictor, or process alone):
 * reduce or aggregate the elements, then emit or process the result.
 */
static int fire_list(struct sli_opi *op, uint32_t e, const struct sl_window_ctx *ctx)
{
	struct sli_wgen *w = op->wgen;
	const struct sli_wgen_conf *cf = w->cf;
	struct gent *x = &w->ents[e];
	struct sl_batch v = view_of(x->data, x->ts, x->n, cf->in.size, x->arena, x->aused);
	int64_t m = sl_window_max_ts(&ctx->window);
	int rc;

	if (cf->reduce == NULL && !cf->has_agg)
		return cf->process(ctx, &v, &op->coll, cf->arg);
	if (cf->reduce != NULL) {
		if (x->n == 0)
			return 0; /* Flink would reduce to null */
		memcpy(w->fold, x->data, cf->in.size);
		for (uint32_t i = 1; i < x->n; i++) {
			rc = reduce_into(w, w->fold, x->data + (size_t)i * cf->in.size);
			if (rc < 0)
				return rc;
		}
		/* The fold keeps the first element's strings, in the entry's arena. */
		if (cf->process != NULL)
			return process_one(op, ctx, w->fold, cf->in.size, m, x->arena, x->aused);
		return sl_emit(&op->coll, w->fold, m, cf->in.nstr ? &v : NULL);
	}
	memset(w->fold, 0, cf->acc_size);
	sli_agg_create(&cf->agg, w->fold);
	for (uint32_t i = 0; i < x->n; i++)
		sli_agg_add(&cf->agg, w->fold, sl_batch_elem(&v, i), x->ts[i], &v);
	if (cf->process != NULL)
		return process_one(op, ctx, w->fold, cf->acc_size, m, NULL, 0);
	return cf->agg.result(&ctx->window, &ctx->key, w->fold, &op->coll, cf->agg.arg);
}

/* FIRE: evaluate the window function over entry @e's contents (emitWindowContents). */
static int fire(struct sli_opi *op, uint32_t e)
{
	struct sli_wgen *w = op->wgen;
	const struct sli_wgen_conf *cf = w->cf;
	struct gent *x = &w->ents[e];
	struct sl_window_ctx ctx;
	int64_t m;
	int rc;

	if (!x->has)
		return 0; /* contents null: nothing to fire */
	ctx = wctx(op, x->key, x->start, x->end, wstate_of(w, e));
	m = sl_window_max_ts(&ctx.window);
	op->errbuf[0] = '\0';
	op->coll.stamped = true; /* Flink's TimestampedCollector: everything at max_ts */
	op->coll.stamp = m;
	if (cf->list) {
		rc = evict(op, e, &ctx, false);
		if (rc == 0) {
			rc = fire_list(op, e, &ctx);
			if (rc < 0)
				fail(op, rc, "the window function failed");
		}
		if (rc == 0)
			rc = evict(op, e, &ctx, true);
	} else if (cf->process != NULL) {
		rc = process_one(op, &ctx, acc_of(w, e), cf->acc_size, m, x->arena, x->aused);
	} else if (cf->reduce != NULL) {
		struct sl_batch v = view_of(NULL, NULL, 0, cf->in.size, x->arena, x->aused);

		rc = sl_emit(&op->coll, acc_of(w, e), m, cf->in.nstr ? &v : NULL);
	} else {
		rc = cf->agg.result(&ctx.window, &ctx.key, acc_of(w, e), &op->coll, cf->agg.arg);
	}
	op->coll.stamped = false;
	if (rc < 0 && !cf->list)
		fail(op, rc, "the window function failed");
	return rc;
}

/* Flink's clearAllState(): contents, trigger state, process state; the entry goes. */
static int clear_all(struct sli_opi *op, uint32_t key, int64_t start, int64_t end, int64_t e)
{
	struct sli_wgen *w = op->wgen;
	const struct sli_wgen_conf *cf = w->cf;
	void *ts = e >= 0 ? tstate_of(w, (uint32_t)e) : w->scratch + w->ts_off;
	void *ws = e >= 0 ? wstate_of(w, (uint32_t)e) : w->scratch + w->ws_off;
	struct sl_trigger_ctx c = tctx(op, key, start, end, ts);
	int rc;

	if (e < 0)
		memset(w->scratch, 0, w->stride);
	rc = trig_clear(&c);
	if (rc < 0)
		return trig_fail(op, rc);
	if (cf->clear != NULL) {
		struct sl_window_ctx wc = wctx(op, key, start, end, cf->state_size ? ws : NULL);

		cf->clear(&wc, cf->arg);
	}
	if (e >= 0)
		ent_drop(w, (uint32_t)e);
	return 0;
}

/* Cleanup timer of a window (none for "end of time"); Flink's registerCleanupTimer(). */
static int cleanup_register(struct sli_opi *op, uint32_t key, int64_t start, int64_t end)
{
	const struct sli_wgen_conf *cf = op->wgen->cf;
	int64_t t = cleanup_time(cf, start, end);
	struct sl_trigger_ctx c = tctx(op, key, start, end, NULL);
	int rc;

	if (t == INT64_MAX)
		return 0;
	rc = cf->event_time ? sl_trigger_register_event_timer(&c, t)
			    : sl_trigger_register_processing_timer(&c, t);
	return rc < 0 ? fail(op, rc, "registering a cleanup timer") : 0;
}

/* Act on trigger result @r for entry @e: fire, then purge. */
static int act(struct sli_opi *op, int64_t e, int r)
{
	int rc = 0;

	if (e < 0)
		return 0;
	if (r & SL_TRIGGER_FIRE)
		rc = fire(op, (uint32_t)e);
	if (rc == 0 && (r & SL_TRIGGER_PURGE))
		contents_clear(op->wgen, (uint32_t)e);
	return rc;
}

/* The element was added to entry @e: on_element, act, cleanup timer. */
static int element_trigger(struct sli_opi *op, uint32_t e, const struct sl_batch *b, uint32_t i)
{
	struct sli_wgen *w = op->wgen;
	struct gent *x = &w->ents[e];
	uint32_t key = x->key;
	int64_t start = x->start, end = x->end;
	struct sl_trigger_ctx c = tctx(op, key, start, end, tstate_of(w, e));
	int r;

	op->errbuf[0] = '\0';
	r = trig_call(&c, T_ELEMENT, sl_batch_elem(b, i), b, b->ts[i]);
	if (r < 0)
		return trig_fail(op, r);
	r = act(op, e, r);
	if (r < 0)
		return r;
	return cleanup_register(op, key, start, end);
}

/* ------------------------------------------------------------ assigning */

/* Tumbling, sliding and global: every window of the element. */
static int assign_fixed(struct sli_opi *op, uint32_t key, const struct sl_batch *b, uint32_t i,
			bool *skipped)
{
	struct sli_wgen *w = op->wgen;
	const struct sl_window_assigner *as = &w->cf->as;
	int64_t ts = b->ts[i], size = as->size, slide, start;

	if (as->kind == SL_ASSIGNER_GLOBAL) {
		start = INT64_MIN;
		size = 0;
		slide = 1;
	} else {
		int64_t r;

		slide = as->kind == SL_ASSIGNER_TUMBLING ? size : as->slide;
		r = sli_grid_mod(ts, as->offset, slide);
		if (ts < INT64_MIN + r)
			return 0; /* every window of the element starts before INT64_MIN */
		start = ts - r;
	}
	/*
	 * Flink: start = last_start, last_start - slide, ... while start > ts -
	 * size, written ts - start < size (ts - size can overflow). Windows
	 * ending after INT64_MAX are not representable: skipped, as in window.c.
	 */
	for (;;) {
		int64_t end = INT64_MAX;
		int64_t e;
		int rc;

		if (as->kind != SL_ASSIGNER_GLOBAL) {
			if ((uint64_t)ts - (uint64_t)start >= (uint64_t)size)
				break;
			if (start <= INT64_MAX - size)
				end = start + size;
			else
				goto next; /* ends after INT64_MAX */
		}
		if (!window_late(op, start, end)) {
			*skipped = false;
			e = ent_find(w, key, start, end);
			if (e < 0)
				e = ent_add(w, key, start, end);
			if (e < 0)
				return fail(op, (int)e, "storing a window");
			rc = contents_add(op, (uint32_t)e, b, i);
			if (rc == 0)
				rc = element_trigger(op, (uint32_t)e, b, i);
			if (rc < 0)
				return rc;
		}
	next:
		if (as->kind == SL_ASSIGNER_GLOBAL || start < INT64_MIN + slide)
			break;
		start -= slide;
	}
	return 0;
}

/* Sort the @n entries @v by window start (a handful: insertion sort). */
static void sort_by_start(const struct sli_wgen *w, uint32_t *v, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++) {
		uint32_t x = v[i], j = i;

		for (; j > 0 && w->ents[v[j - 1]].start > w->ents[x].start; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/* Room for @n merged windows in w->mv and w->mstates. */
static int merge_room(struct sli_wgen *w, uint32_t n)
{
	uint32_t cap = w->capmv;
	const void **ns;

	if (sli_grow((void **)&w->mv, &w->capmv, n, sizeof(*w->mv)) < 0)
		return -ENOMEM;
	if (w->capmv == cap && w->mstates != NULL)
		return 0;
	ns = realloc(w->mstates, (size_t)w->capmv * sizeof(*ns));
	if (ns == NULL)
		return -ENOMEM;
	w->mstates = ns;
	return 0;
}

/*
 * Merge the @n windows w->mv[] of @key into a new window [start, end):
 * Flink's MergingWindowSet.addWindow() merge callback. Return the new
 * entry, or -errno (after sli_fail).
 */
static int64_t merge_windows(struct sli_opi *op, uint32_t key, uint32_t n, int64_t start,
			     int64_t end)
{
	struct sli_wgen *w = op->wgen;
	int64_t e = ent_add(w, key, start, end);
	struct sl_trigger_ctx c;
	int rc;

	if (e < 0)
		return fail(op, (int)e, "storing a window");
	sort_by_start(w, w->mv, n);
	for (uint32_t j = 0; j < n; j++)
		w->mstates[j] = tstate_of(w, w->mv[j]);
	c = tctx(op, key, start, end, tstate_of(w, (uint32_t)e));
	c.merged = w->mstates;
	c.nmerged = n;
	op->errbuf[0] = '\0';
	rc = trig_merge(&c);
	for (uint32_t j = 0; j < n && rc >= 0; j++) {
		const struct gent *m = &w->ents[w->mv[j]];
		struct sl_trigger_ctx mc = tctx(op, key, m->start, m->end, tstate_of(w, w->mv[j]));
		int64_t ct = cleanup_time(w->cf, m->start, m->end);

		rc = trig_clear(&mc);
		if (rc >= 0 && ct != INT64_MAX)
			sli_timers_delete(w->tm, SLI_EVENT_TIME, key,
					  (struct sli_ns){ m->start, m->end }, ct);
	}
	if (rc < 0)
		return trig_fail(op, rc);
	for (uint32_t j = 0; j < n; j++) {
		rc = contents_merge(w, (uint32_t)e, w->mv[j]);
		if (rc < 0)
			return fail(op, rc, "merging session windows");
		ent_drop(w, w->mv[j]);
	}
	w->ents[e].next = w->sess[key];
	w->sess[key] = (uint32_t)e + 1;
	return e;
}

/* Sessions: merge [ts, ts + gap) with the key's windows it touches, then add. */
static int assign_session(struct sli_opi *op, uint32_t key, const struct sl_batch *b, uint32_t i,
			  bool *skipped)
{
	struct sli_wgen *w = op->wgen;
	const struct sl_window_assigner *as = &w->cf->as;
	int64_t ts = b->ts[i], gap = as->gap, start = ts, end;
	uint32_t n = 0;
	int64_t e;
	int rc;

	if (as->gap_fn != NULL) {
		gap = as->gap_fn(sl_batch_elem(b, i), ts, b, as->gap_arg);
		if (gap <= 0) {
			sli_fail(op, -EINVAL,
				 "the session gap function returned %lld for an element at %lld: "
				 "a gap must be > 0",
				 (long long)gap, (long long)ts);
			return -EINVAL;
		}
	}
	end = sli_sat_add(ts, gap);
	/* The windows intersecting the new one (touching counts), and their cover. */
	for (uint32_t p = w->sess[key]; p; p = w->ents[p - 1].next) {
		const struct gent *x = &w->ents[p - 1];

		if (x->start <= end && x->end >= start) {
			if (merge_room(w, n + 1) < 0)
				return fail(op, -ENOMEM, "merging session windows");
			w->mv[n++] = p - 1;
			start = x->start < start ? x->start : start;
			end = x->end > end ? x->end : end;
		}
	}
	if (n == 1 && w->ents[w->mv[0]].start == start && w->ents[w->mv[0]].end == end) {
		e = w->mv[0]; /* inside one window: no merge */
	} else if (n > 0) {
		if (window_late(op, start, end)) {
			sli_fail(op, -EINVAL,
				 "session merge produced a late window [%lld, %lld) (watermark "
				 "%lld)",
				 (long long)start, (long long)end, (long long)op->watermark);
			return -EINVAL;
		}
		e = merge_windows(op, key, n, start, end);
		if (e < 0)
			return (int)e;
	} else {
		if (window_late(op, start, end))
			return 0; /* retired at once: skipped */
		e = ent_add(w, key, start, end);
		if (e < 0)
			return fail(op, (int)e, "storing a window");
		w->ents[e].next = w->sess[key];
		w->sess[key] = (uint32_t)e + 1;
	}
	if (window_late(op, w->ents[e].start, w->ents[e].end))
		return 0;
	*skipped = false;
	rc = contents_add(op, (uint32_t)e, b, i);
	return rc < 0 ? rc : element_trigger(op, (uint32_t)e, b, i);
}

static int late_element(struct sli_opi *op, const struct sl_batch *b, uint32_t i)
{
	if (op->nport_out[1] > 0)
		return sl_emit_side(&op->coll, 0, sl_batch_elem(b, i), b->ts[i], b);
	atomic_fetch_add_explicit(&op->node->counters.late_records_dropped, 1,
				  memory_order_relaxed);
	return 0;
}

/* --------------------------------------------------------------- timers */

/* A timer fired: Flink's onEventTime() / onProcessingTime(). */
static int on_timer(struct sli_opi *op, const struct sli_timer *t, enum sli_domain d)
{
	struct sli_wgen *w = op->wgen;
	const struct sli_wgen_conf *cf = w->cf;
	int64_t start = t->ns.a, end = t->ns.b;
	int64_t e = ent_find(w, t->key, start, end);
	struct sl_trigger_ctx c;
	int r;

	if (e < 0 && cf->merging)
		return 0; /* a timer of a merged or cleared session: nothing to do */
	if (e < 0)
		memset(w->scratch, 0, w->stride);
	c = tctx(op, t->key, start, end,
		 e >= 0 ? tstate_of(w, (uint32_t)e) : w->scratch + w->ts_off);
	op->errbuf[0] = '\0';
	r = trig_call(&c, d == SLI_EVENT_TIME ? T_EVENT : T_PROC, NULL, NULL, t->time);
	if (r < 0)
		return trig_fail(op, r);
	r = act(op, e, r);
	if (r < 0)
		return r;
	if ((cf->event_time ? SLI_EVENT_TIME : SLI_PROC_TIME) == d &&
	    t->time == cleanup_time(cf, start, end))
		return clear_all(op, t->key, start, end, ent_find(w, t->key, start, end));
	return 0;
}

/* ------------------------------------------------------------ operator */

int sli_wgen_conf_new(const struct sl_window_conf *conf, const struct sl_type *in,
		      const struct sl_type *out, struct sli_wgen_conf **res, char *msg, size_t len)
{
	const struct sl_window_assigner *as;
	const struct sl_trigger *t;
	const struct sl_evictor *ev;
	struct sli_wgen_conf *cf;
	const char *bad = NULL;
	int forms;

	if (conf == NULL || out == NULL) {
		snprintf(msg, len, "needs a configuration and an output type");
		return -EINVAL;
	}
	as = &conf->assigner;
	t = &conf->trigger;
	ev = &conf->evictor;
	forms = (conf->reduce != NULL) + (conf->aggregate != NULL);
	if (as->kind == SL_ASSIGNER_NONE)
		bad = "no window assigner (tumbling, sliding, session or global)";
	else if (as->kind == SL_ASSIGNER_TUMBLING && as->size <= 0)
		bad = "a tumbling window needs a size > 0";
	else if (as->kind == SL_ASSIGNER_SLIDING && (as->size <= 0 || as->slide <= 0))
		bad = "a sliding window needs a size and a slide > 0";
	else if (as->kind == SL_ASSIGNER_SESSION && as->gap_fn == NULL && as->gap <= 0)
		bad = "a session window needs a gap > 0 or a gap function";
	else if (as->kind > SL_ASSIGNER_GLOBAL)
		bad = "unknown window assigner";
	else if (conf->allowed_lateness < 0)
		bad = "allowed lateness must be >= 0";
	else if (t->kind == SL_TRIGGER_KIND_COUNT && t->count == 0)
		bad = "a count trigger needs a count > 0";
	else if (t->kind == SL_TRIGGER_KIND_CONTINUOUS_EVENT_TIME && t->interval <= 0)
		bad = "a continuous event-time trigger needs an interval > 0";
	else if (t->kind == SL_TRIGGER_KIND_CUSTOM && t->ops == NULL)
		bad = "a custom trigger needs its ops";
	else if (t->kind > SL_TRIGGER_KIND_CUSTOM)
		bad = "unknown trigger kind";
	else if (as->kind == SL_ASSIGNER_SESSION && t->kind == SL_TRIGGER_KIND_CUSTOM &&
		 t->ops->on_merge == NULL)
		bad = "session windows merge, and the custom trigger has no on_merge()";
	else if (ev->kind == SL_EVICTOR_COUNT && ev->count == 0)
		bad = "a count evictor needs a count > 0";
	else if (ev->kind == SL_EVICTOR_TIME && ev->size < 0)
		bad = "a time evictor needs a size >= 0";
	else if (ev->kind == SL_EVICTOR_CUSTOM &&
		 (ev->ops == NULL ||
		  (ev->ops->evict_before == NULL && ev->ops->evict_after == NULL)))
		bad = "a custom evictor needs evict_before() or evict_after()";
	else if (ev->kind > SL_EVICTOR_CUSTOM)
		bad = "unknown evictor kind";
	else if (forms > 1 || (forms == 0 && conf->process == NULL))
		bad = "needs exactly one window function: reduce, aggregate, process, or reduce or "
		      "aggregate with process";
	else if (conf->reduce != NULL && conf->process == NULL &&
		 (out->size != in->size || out->nstr != in->nstr))
		bad = "a reduce window emits elements of its input type: the output type differs";
	else if (conf->aggregate != NULL && conf->aggregate->builtin != SL_AGG_CUSTOM &&
		 (conf->aggregate->builtin > SL_AGG_MAX_I64 || conf->aggregate->create != NULL ||
		  conf->aggregate->add != NULL || conf->aggregate->merge != NULL ||
		  conf->aggregate->acc_size != sizeof(int64_t) ||
		  (conf->aggregate->builtin != SL_AGG_COUNT &&
		   (conf->aggregate->field > in->size ||
		    in->size - conf->aggregate->field < sizeof(int64_t)))))
		bad = "a built-in aggregate needs a known kind, acc_size 8, no create, add or "
		      "merge, and its int64 field inside the input elements";
	else if (conf->aggregate != NULL &&
		 ((conf->aggregate->builtin == SL_AGG_CUSTOM && conf->aggregate->add == NULL) ||
		  conf->aggregate->acc_size == 0 ||
		  (conf->process == NULL && conf->aggregate->result == NULL)))
		bad = "the aggregate needs acc_size and add() (and result() without process)";
	else if (conf->aggregate != NULL && as->kind == SL_ASSIGNER_SESSION &&
		 ev->kind == SL_EVICTOR_NONE && !sli_agg_has_merge(conf->aggregate))
		bad = "session windows merge, the aggregate needs merge()";
	else if (conf->state_size > 0 && (conf->process == NULL || as->kind == SL_ASSIGNER_SESSION))
		bad = "per-window state is for process functions on windows that do not merge";
	if (bad != NULL) {
		snprintf(msg, len, "%s", bad);
		return -EINVAL;
	}
	cf = calloc(1, sizeof(*cf));
	if (cf == NULL) {
		snprintf(msg, len, "out of memory");
		return -ENOMEM;
	}
	cf->as = *as;
	cf->trig = *t;
	if (t->kind == SL_TRIGGER_KIND_DEFAULT)
		cf->trig.kind = as->kind == SL_ASSIGNER_GLOBAL ? SL_TRIGGER_KIND_NEVER
							       : SL_TRIGGER_KIND_EVENT_TIME;
	cf->ev = *ev;
	cf->lateness = conf->allowed_lateness;
	cf->reduce = conf->reduce;
	if (conf->aggregate != NULL) {
		cf->agg = *conf->aggregate;
		cf->has_agg = true;
	}
	cf->process = conf->process;
	cf->arg = conf->arg;
	cf->state_size = conf->state_size;
	cf->clear = conf->clear;
	cf->in = *in;
	cf->event_time = as->kind != SL_ASSIGNER_GLOBAL;
	cf->merging = as->kind == SL_ASSIGNER_SESSION;
	cf->list = ev->kind != SL_EVICTOR_NONE || forms == 0;
	cf->acc_size = cf->reduce ? in->size : cf->has_agg ? cf->agg.acc_size : 0;
	switch (cf->trig.kind) {
	case SL_TRIGGER_KIND_COUNT:
		cf->tsize = sizeof(uint64_t);
		break;
	case SL_TRIGGER_KIND_CONTINUOUS_EVENT_TIME:
		cf->tsize = sizeof(struct cont_state);
		break;
	case SL_TRIGGER_KIND_CUSTOM:
		cf->tsize = t->ops->state_size;
		break;
	default:
		break;
	}
	*res = cf;
	return 0;
}

struct sli_wgen *sli_wgen_new(struct sli_opi *op)
{
	const struct sli_wgen_conf *cf = op->node->wgen;
	struct sli_wgen *w = calloc(1, sizeof(*w));
	size_t fold;

	if (w == NULL)
		return NULL;
	w->cf = cf;
	op->key = op->node->in[0]->key;
	w->acc_off = 0;
	w->ts_off = align8(cf->list ? 0 : cf->acc_size);
	w->ws_off = w->ts_off + align8(cf->tsize);
	w->stride = w->ws_off + align8(cf->state_size);
	if (w->stride == 0)
		w->stride = 8;
	fold = align8(cf->acc_size > cf->in.size ? cf->acc_size : cf->in.size);
	w->keys = sli_keys_new();
	w->tm = sli_timers_new();
	w->scratch = calloc(1, w->stride);
	w->fold = calloc(1, fold ? fold : 8);
	if (w->keys == NULL || w->tm == NULL || w->scratch == NULL || w->fold == NULL ||
	    wtab_grow(w) < 0) {
		sli_wgen_free(w);
		return NULL;
	}
	return w;
}

void sli_wgen_free(struct sli_wgen *w)
{
	if (w == NULL)
		return;
	for (uint32_t e = 0; e < w->nents; e++) {
		free(w->ents[e].data);
		free(w->ents[e].ts);
		free(w->ents[e].arena);
	}
	free(w->ents);
	free(w->blobs);
	free(w->wslot);
	free(w->sess);
	free(w->scratch);
	free(w->fold);
	free(w->evict);
	free(w->mv);
	free(w->mstates);
	sli_keys_free(w->keys);
	sli_timers_free(w->tm);
	sli_img_put(w->frozen); /* a checkpoint still holding it frees it */
	free(w);
}

/* Element @i of @b: its windows, then the late check. */
static int wgen_element(struct sli_opi *op, struct sl_batch *b, uint32_t i)
{
	struct sli_wgen *w = op->wgen;
	const struct sli_wgen_conf *cf = w->cf;
	struct sl_key k;
	uint64_t h;
	int64_t key;
	bool skipped = true;
	int rc;

	op->errbuf[0] = '\0';
	sli_key_get(&op->key, sl_batch_elem(b, i), b, &k);
	h = (b->flags & SL_BATCH_F_KEYED) ? b->key[i] : sli_hash64(k.ptr, k.len, 0);
	key = sli_keys_intern(w->keys, h, k.ptr, k.len);
	if (key < 0)
		return fail(op, (int)key, "storing a key");
	if (cf->merging && (uint32_t)key >= w->nsess) {
		/* A new key (ids are dense): its session list starts empty. */
		if (sli_grow((void **)&w->sess, &w->capsess, (uint32_t)key + 1, sizeof(*w->sess)) <
		    0)
			return fail(op, -ENOMEM, "storing a key");
		while (w->nsess <= (uint32_t)key)
			w->sess[w->nsess++] = 0;
	}
	if (cf->merging)
		rc = assign_session(op, (uint32_t)key, b, i, &skipped);
	else
		rc = assign_fixed(op, (uint32_t)key, b, i, &skipped);
	if (rc < 0)
		return rc;
	/* Late: skipped by all its windows and ts + lateness <= watermark (Java's wrap). */
	if (skipped && cf->event_time &&
	    (int64_t)((uint64_t)b->ts[i] + (uint64_t)cf->lateness) <= op->watermark)
		rc = late_element(op, b, i);
	return rc;
}

int sli_wgen_batch(struct sli_opi *op, struct sl_batch *b)
{
	int rc = 0;

	for (uint32_t i = 0; i < b->n && rc == 0; i++)
		rc = wgen_element(op, b, i);
	sli_release(op, b);
	return rc;
}

static int run_timers(struct sli_opi *op, enum sli_domain d, int64_t upto)
{
	struct sli_timer t;
	int rc = 0;

	while (rc == 0 && sli_timers_pop(op->wgen->tm, d, upto, &t) == 1)
		rc = on_timer(op, &t, d);
	return rc;
}

int sli_wgen_watermark(struct sli_opi *op, int64_t wm)
{
	return run_timers(op, SLI_EVENT_TIME, wm);
}

int sli_wgen_proc_time(struct sli_opi *op, int64_t now_ms)
{
	int rc = run_timers(op, SLI_PROC_TIME, now_ms);

	op->next_proc_timer = sli_timers_next(op->wgen->tm, SLI_PROC_TIME);
	return rc;
}

/* ---------------------------------------------------------- checkpoints */

/*
 * A logical snapshot: an operator section {format, blob stride, input
 * size and strings, list?, merging?, accumulator size}; then per key, in
 * its key group's section (the group's first key writes the operator's
 * watermark first): the key's bytes, its windows {start, end, has, the
 * blob (accumulator | trigger state | window state), the list's elements,
 * their timestamps, the strings' arena}, and its timers {domain, time,
 * namespace, position in its domain's registration order}. Element and
 * accumulator string fields are offsets into the window's arena, so the
 * bytes are restored as they were. Restore re-creates the windows (and a
 * session key's list of them), then registers the timers again in their
 * old order. Trigger and window state are the fixed-size bytes the user's
 * functions keep there (sl_time.h: plain data).
 */
#define GSNAP_FORMAT 1u

/* Index lists per key id: first[k] .. first[k + 1] into idx (a counting sort). */
static int by_key(uint32_t nkeys, uint32_t n, const uint32_t *key_of, uint32_t **first,
		  uint32_t **idx)
{
	uint32_t *f = calloc((size_t)nkeys + 2, sizeof(*f)), *x = malloc((n ? n : 1) * sizeof(*x));

	if (f == NULL || x == NULL) {
		free(f);
		free(x);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		f[key_of[i] + 2]++;
	for (uint32_t k = 0; k < nkeys; k++)
		f[k + 2] += f[k + 1];
	for (uint32_t i = 0; i < n; i++)
		x[f[key_of[i] + 1]++] = i;
	*first = f;
	*idx = x;
	return 0;
}

/*
 * What a snapshot reads: the live state (keys from the dictionary, @kb
 * NULL), or an image of it (copies; key bytes in @kb[]). The timers are
 * lists made by sli_timers_list() in both cases.
 */
struct gview {
	const struct gent *ents;
	const uint8_t *blobs;
	const struct sli_keys *keys;
	const struct sl_key *kb;
	struct sli_timer *tl[2];
	size_t nt[2], stride;
	uint32_t nents, nkeys, size, hdr[7];
	int64_t watermark;
	unsigned maxp;
};

static int snap_ent(struct sl_snap_writer *sw, const struct gview *v, uint32_t e)
{
	const struct gent *x = &v->ents[e];
	int rc = sl_snap_put_i64(sw, x->start);

	if (rc == 0)
		rc = sl_snap_put_i64(sw, x->end);
	if (rc == 0)
		rc = sl_snap_put_u32(sw, x->has);
	if (rc == 0)
		rc = sl_snap_put_bytes(sw, v->blobs + (size_t)e * v->stride, v->stride);
	if (rc == 0)
		rc = sl_snap_put_bytes(sw, x->data, (size_t)x->n * v->size);
	if (rc == 0)
		rc = sl_snap_put_bytes(sw, x->ts, (size_t)x->n * sizeof(int64_t));
	if (rc == 0)
		rc = sl_snap_put_bytes(sw, x->arena, x->aused);
	return rc;
}

static int wgen_serialize(const struct gview *v, struct sl_snap_writer *sw)
{
	size_t ntimers = v->nt[0] + v->nt[1];
	struct sli_timer_rec *all = malloc((ntimers ? ntimers : 1) * sizeof(*all));
	uint32_t *tkey = malloc((ntimers ? ntimers : 1) * sizeof(*tkey));
	uint32_t *ekey = malloc((v->nents ? v->nents : 1) * sizeof(*ekey));
	uint32_t *eidx = malloc((v->nents ? v->nents : 1) * sizeof(*eidx));
	bool *seen = calloc(v->maxp, sizeof(*seen));
	uint32_t *ef = NULL, *ei = NULL, *tf = NULL, *ti = NULL, ne = 0;
	int rc = sl_snap_put(sw, v->hdr, sizeof(v->hdr));

	if (all == NULL || tkey == NULL || ekey == NULL || eidx == NULL || seen == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (int d = 0, k = 0; d < 2; d++)
		for (size_t i = 0; i < v->nt[d]; i++, k++) {
			all[k] = (struct sli_timer_rec){ v->tl[d][i], (uint32_t)d, (uint32_t)i };
			tkey[k] = v->tl[d][i].key;
		}
	/* Entries by key: eidx holds entry numbers, ekey their keys. */
	for (uint32_t e = 0; e < v->nents; e++)
		if (v->ents[e].used) {
			eidx[ne] = e;
			ekey[ne++] = v->ents[e].key;
		}
	if (rc == 0)
		rc = by_key(v->nkeys, ne, ekey, &ef, &ei);
	if (rc == 0)
		rc = by_key(v->nkeys, (uint32_t)ntimers, tkey, &tf, &ti);
	for (uint32_t k = 0; k < v->nkeys && rc == 0; k++) {
		uint32_t en = ef[k + 1] - ef[k], tn = tf[k + 1] - tf[k];
		struct sl_key key;
		unsigned kg;

		if (en + tn == 0)
			continue;
		key = v->kb != NULL ? v->kb[k] : sli_keys_get(v->keys, k);
		kg = sli_key_group(sli_hash64(key.ptr, key.len, 0), v->maxp);
		rc = sl_snap_section(sw, kg);
		if (rc == 0 && !seen[kg]) {
			seen[kg] = true;
			rc = sl_snap_put_i64(sw, v->watermark);
		}
		if (rc == 0)
			rc = sl_snap_put_bytes(sw, key.ptr, key.len);
		if (rc == 0)
			rc = sl_snap_put_u32(sw, en);
		for (uint32_t j = ef[k]; j < ef[k + 1] && rc == 0; j++)
			rc = snap_ent(sw, v, eidx[ei[j]]);
		if (rc == 0)
			rc = sl_snap_put_u32(sw, tn);
		for (uint32_t j = tf[k]; j < tf[k + 1] && rc == 0; j++) {
			const struct sli_timer_rec *g = &all[ti[j]];

			rc = sli_timer_rec_put(sw, g->dom, g->pos, &g->t);
		}
	}
out:
	free(all);
	free(tkey);
	free(ekey);
	free(eidx);
	free(ef);
	free(ei);
	free(tf);
	free(ti);
	free(seen);
	return rc;
}

/* The view of @op's live state, without its timers. */
static struct gview gview_of(const struct sli_opi *op)
{
	const struct sli_wgen *w = op->wgen;
	const struct sli_wgen_conf *cf = w->cf;

	return (struct gview){
		.ents = w->ents,
		.blobs = w->blobs,
		.keys = w->keys,
		.stride = w->stride,
		.nents = w->nents,
		.nkeys = sli_keys_count(w->keys),
		.size = cf->in.size,
		.hdr = { GSNAP_FORMAT, (uint32_t)w->stride, cf->in.size, cf->in.nstr, cf->list,
			 cf->merging, cf->acc_size },
		.watermark = op->watermark,
		.maxp = op->info.max_parallelism,
	};
}

/* The timers of @w into @v's lists. 0 or -ENOMEM (the lists are freed). */
static int list_timers(const struct sli_wgen *w, struct gview *v)
{
	int rc = 0;

	for (int d = 0; d < 2 && rc == 0; d++)
		rc = sli_timers_list(w->tm, (enum sli_domain)d, &v->tl[d], &v->nt[d]);
	if (rc < 0) {
		free(v->tl[0]);
		free(v->tl[1]);
		v->tl[0] = v->tl[1] = NULL;
	}
	return rc;
}

int sli_wgen_snapshot(struct sli_opi *op, struct sl_snap_writer *sw)
{
	struct gview v = gview_of(op);
	int rc = list_timers(op->wgen, &v);

	if (rc == 0)
		rc = wgen_serialize(&v, sw);
	free(v.tl[0]);
	free(v.tl[1]);
	return rc;
}

/*
 * Asynchronous snapshots. The entry records and their blobs are flat
 * arrays (two memcpy()s); a used entry's list (elements, timestamps) and
 * strings' arena are blocks of their own, copied into three areas of the
 * image with the copied entry pointing there; the key bytes are copied
 * into one area (the dictionary's arena may move when a key is added);
 * the timers are listed as the synchronous snapshot lists them. A first
 * pass sizes the areas so that the copies' pointers stay valid. The
 * coordinator serialises the image with wgen_serialize(), as the
 * synchronous snapshot does the live state.
 */
struct gimg {
	struct sli_img h;
	struct sli_img_buf ents, blobs, data, ts, arena, kb, kbytes;
	struct gview v;
};

static void gimg_destroy(struct sli_img *m)
{
	struct gimg *f = (struct gimg *)m;

	sli_img_buf_free(&f->ents);
	sli_img_buf_free(&f->blobs);
	sli_img_buf_free(&f->data);
	sli_img_buf_free(&f->ts);
	sli_img_buf_free(&f->arena);
	sli_img_buf_free(&f->kb);
	sli_img_buf_free(&f->kbytes);
	free(f->v.tl[0]);
	free(f->v.tl[1]);
	free(f);
}

static int gimg_write(const void *img, struct sl_snap_writer *sw)
{
	const struct gimg *f = img;
	int rc = sl_snap_section(sw, SL_SNAP_OP);

	return rc < 0 ? rc : wgen_serialize(&f->v, sw);
}

static const struct sli_ckpt_image_ops gimg_ops = { gimg_write, sli_img_put };

/* Make room in @f for @v's state: entries and blobs, lists, arenas, keys. */
static int gimg_room(struct gimg *f, const struct sli_wgen *w, const struct gview *v)
{
	size_t ndata = 0, nts = 0, narena = 0, nkb = 0;
	int rc;

	for (uint32_t e = 0; e < w->nents; e++) {
		const struct gent *x = &w->ents[e];

		if (!x->used)
			continue;
		ndata += (size_t)x->n * v->size;
		nts += (size_t)x->n * sizeof(int64_t);
		narena += x->aused;
	}
	for (uint32_t k = 0; k < v->nkeys; k++)
		nkb += sli_keys_get(w->keys, k).len;
	rc = sli_img_room(&f->ents, (size_t)w->nents * sizeof(*w->ents));
	if (rc == 0)
		rc = sli_img_room(&f->blobs, (size_t)w->nents * w->stride);
	if (rc == 0)
		rc = sli_img_room(&f->data, ndata);
	if (rc == 0)
		rc = sli_img_room(&f->ts, nts);
	if (rc == 0)
		rc = sli_img_room(&f->arena, narena);
	if (rc == 0)
		rc = sli_img_room(&f->kb, (size_t)v->nkeys * sizeof(struct sl_key));
	if (rc == 0)
		rc = sli_img_room(&f->kbytes, nkb);
	return rc;
}

int sli_wgen_freeze(struct sli_opi *op, struct sli_ckpt_image *out)
{
	struct sli_wgen *w = op->wgen;
	struct gimg *f = sli_img_reuse(&w->frozen, sizeof(*f), gimg_destroy);
	struct gview v = gview_of(op);
	struct gent *ie;
	struct sl_key *ikb;
	uint8_t *dp;
	int64_t *tp;
	char *ap, *kp;

	if (f == NULL)
		return -ENOMEM;
	free(f->v.tl[0]); /* the last image's */
	free(f->v.tl[1]);
	f->v.tl[0] = f->v.tl[1] = NULL;
	if (gimg_room(f, w, &v) < 0 || list_timers(w, &v) < 0)
		return -ENOMEM; /* the image stays the operator's, to be refilled */
	ie = f->ents.p;
	ikb = f->kb.p;
	dp = f->data.p;
	tp = f->ts.p;
	ap = f->arena.p;
	kp = f->kbytes.p;
	if (w->nents > 0) {
		memcpy(ie, w->ents, (size_t)w->nents * sizeof(*ie));
		memcpy(f->blobs.p, w->blobs, (size_t)w->nents * w->stride);
	}
	for (uint32_t e = 0; e < w->nents; e++) {
		const struct gent *x = &w->ents[e];
		struct gent *y = &ie[e];

		y->data = NULL;
		y->ts = NULL;
		y->arena = NULL;
		if (!x->used)
			continue;
		if (x->n > 0) {
			y->data = dp;
			y->ts = tp;
			memcpy(dp, x->data, (size_t)x->n * v.size);
			memcpy(tp, x->ts, (size_t)x->n * sizeof(int64_t));
			dp += (size_t)x->n * v.size;
			tp += x->n;
		}
		if (x->aused > 0) {
			y->arena = ap;
			memcpy(ap, x->arena, x->aused);
			ap += x->aused;
		}
	}
	for (uint32_t k = 0; k < v.nkeys; k++) {
		struct sl_key key = sli_keys_get(w->keys, k);

		if (key.len > 0)
			memcpy(kp, key.ptr, key.len);
		ikb[k] = (struct sl_key){ kp, key.len };
		kp += key.len;
	}
	v.ents = ie;
	v.blobs = f->blobs.p;
	v.kb = ikb;
	v.keys = NULL;
	f->v = v;
	sli_img_hand(&f->h);
	*out = (struct sli_ckpt_image){ &gimg_ops, f };
	return 0;
}

/* A copy of @n bytes at @p (NULL for none). */
static void *dup_bytes(const void *p, size_t n, int *rc)
{
	void *q;

	if (n == 0)
		return NULL;
	q = malloc(n);
	if (q == NULL)
		*rc = -ENOMEM;
	else
		memcpy(q, p, n);
	return q;
}

/* Window entry of key @key from @r. */
static int restore_ent(struct sl_snap_reader *r, struct sli_wgen *w, uint32_t key)
{
	const void *b, *data, *ts, *arena;
	uint32_t has, bl, dl, tl, al, size = w->cf->in.size;
	int64_t start, end, e;
	struct gent *x;
	int rc = sl_snap_get_i64(r, &start);

	if (rc == 0)
		rc = sl_snap_get_i64(r, &end);
	if (rc == 0)
		rc = sl_snap_get_u32(r, &has);
	if (rc == 0)
		rc = sl_snap_get_bytes(r, &b, &bl);
	if (rc == 0)
		rc = sl_snap_get_bytes(r, &data, &dl);
	if (rc == 0)
		rc = sl_snap_get_bytes(r, &ts, &tl);
	if (rc == 0)
		rc = sl_snap_get_bytes(r, &arena, &al);
	if (rc < 0)
		return rc;
	if (bl != w->stride || dl % size != 0 || tl != dl / size * sizeof(int64_t) ||
	    (!w->cf->list && dl != 0) || w->wslot[wtab_find(w, key, start, end)] != 0)
		return sl_snap_bad(r, "a window of another layout, or twice");
	e = ent_add(w, key, start, end);
	if (e < 0)
		return (int)e;
	x = &w->ents[e];
	x->has = has != 0;
	memcpy(blob(w, (uint32_t)e), b, bl);
	x->n = x->cap = dl / size;
	x->data = dup_bytes(data, dl, &rc);
	x->ts = dup_bytes(ts, tl, &rc);
	x->arena = dup_bytes(arena, al, &rc);
	x->aused = x->acap = al;
	if (w->cf->merging) {
		x->next = w->sess[key];
		w->sess[key] = (uint32_t)e + 1;
	}
	return rc;
}

int sli_wgen_restore(struct sli_opi *op, struct sl_snap_reader *r)
{
	struct sli_wgen *w = op->wgen;
	const struct sli_wgen_conf *cf = w->cf;
	struct sli_timer_recs tm = { 0 };
	int64_t wm = INT64_MAX, swm, first;
	bool any_kg = false;
	uint32_t sec, hdr[7];
	int rc;

	while ((rc = sl_snap_next(r, &sec)) == 1) {
		if (sec == SL_SNAP_OP) {
			rc = sl_snap_get(r, hdr, sizeof(hdr));
			if (rc == 0 &&
			    (hdr[0] != GSNAP_FORMAT || hdr[1] != w->stride ||
			     hdr[2] != cf->in.size || hdr[3] != cf->in.nstr || hdr[4] != cf->list ||
			     hdr[5] != cf->merging || hdr[6] != cf->acc_size))
				rc = sl_snap_bad(r,
						 "window state of another format or configuration");
			if (rc < 0)
				goto out;
			continue;
		}
		if ((rc = sl_snap_get_i64(r, &swm)) < 0)
			goto out;
		any_kg = true;
		wm = swm < wm ? swm : wm;
		while (sl_snap_left(r) > 0 && rc == 0) {
			const void *kb;
			uint32_t klen, n;
			int64_t key;

			rc = sl_snap_get_bytes(r, &kb, &klen);
			if (rc < 0)
				goto out;
			key = sli_keys_intern(w->keys, sli_hash64(kb, klen, 0), kb, klen);
			if (key < 0) {
				rc = (int)key;
				goto out;
			}
			if (cf->merging && (uint32_t)key >= w->nsess) {
				if (sli_grow((void **)&w->sess, &w->capsess, (uint32_t)key + 1,
					     sizeof(*w->sess)) < 0) {
					rc = -ENOMEM;
					goto out;
				}
				while (w->nsess <= (uint32_t)key)
					w->sess[w->nsess++] = 0;
			}
			rc = sl_snap_get_u32(r, &n);
			for (uint32_t i = 0; i < n && rc == 0; i++)
				rc = restore_ent(r, w, (uint32_t)key);
			if (rc == 0)
				rc = sl_snap_get_u32(r, &n);
			for (uint32_t i = 0; i < n && rc == 0; i++)
				rc = sli_timer_recs_add(&tm, r, (uint32_t)key);
		}
		if (rc < 0)
			goto out;
	}
	if (rc < 0)
		goto out;
	/* The old registration order, per domain (across old subtasks: any). */
	rc = sli_timer_recs_register(&tm, w->tm, &first);
	if (first != INT64_MAX)
		sli_proc_timer_note(op, first);
	if (rc == 0 && any_kg)
		op->watermark = wm;
out:
	free(tm.v);
	return rc;
}
