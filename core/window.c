/* SPDX-License-Identifier: Apache-2.0 */
/*
 * window.c — event-time windows with incremental aggregates: Flink's
 * WindowOperator with the default EventTimeTrigger, allowed lateness,
 * the late side output, and session merging (MergingWindowSet).
 *
 * State of one subtask:
 *   keys     every key seen: its bytes (in one arena) and hash, found
 *            through an open-addressing table; a key's id is its index;
 *   windows  one entry per live (key, window): start, end, accumulator,
 *            which timers it has; found by (key id, start, end) through a
 *            second open-addressing table (linear probing, deletion by
 *            backward shift); a session key also links its windows;
 *   timers   a binary min-heap of (time, entry, generation). A timer is
 *            de-duplicated per (key, window, time) by the entry's flags;
 *            deleting one (a cleared or merged window) bumps the entry's
 *            generation, and a popped timer whose generation is stale is
 *            ignored.
 * An entry has at most two timers: "fire" at end - 1 and "cleanup" at
 * end - 1 + lateness (one heap item when both are the same time). Freed
 * entries go to a free list.
 *
 * Threads: one struct sli_win per subtask, on its worker's thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_error.h>

#include "sli_exec.h"

#define T_FIRE	0x1
#define T_CLEAN 0x2

struct wkey {
	uint64_t hash;
	uint64_t off; /* bytes in karena */
	uint32_t len;
	uint32_t sessions; /* session windows: first entry + 1, 0: none */
};

struct went {
	int64_t start, end;
	uint32_t key;
	uint32_t next;	/* session list / free list: entry + 1, 0: end */
	uint32_t gen;	/* bumped when its timers are deleted */
	uint8_t timers; /* T_FIRE | T_CLEAN registered */
	uint8_t used;
};

struct timer {
	int64_t time;
	uint32_t ent, gen;
};

struct sli_win {
	const struct sl_window_spec *spec;
	const struct sl_aggregate *agg;
	uint32_t acc_size;

	struct wkey *keys;
	uint32_t nkeys, capkeys;
	uint32_t *kslot; /* key id + 1, 0: empty */
	uint32_t kcap;	 /* power of two */
	char *karena;
	uint64_t kused, kcapb;

	struct went *ents;
	uint8_t *accs;
	uint32_t nents, capents, free_head; /* free_head: entry + 1 */
	uint32_t *wslot;		    /* entry + 1, 0: empty */
	uint32_t wcap, wcount;

	struct timer *heap;
	uint32_t nheap, capheap;
};

/* ------------------------------------------------------------ helpers */

static uint64_t mix(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t h =
	    a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull) * 0xbf58476d1ce4e5b9ull;

	h ^= (c + (h << 6) + (h >> 2)) * 0x94d049bb133111ebull;
	h ^= h >> 31;
	h *= 0xd6e8feb86659fd93ull;
	return h ^ (h >> 32);
}

static int grow(void **arr, uint32_t *cap, uint32_t need, size_t size)
{
	uint32_t ncap = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	p = realloc(*arr, (size_t)ncap * size);
	if (p == NULL)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

/* Floor modulo: the result has the sign of @m (> 0). */
static int64_t floor_mod(int64_t a, int64_t m)
{
	int64_t r = a % m;

	return r < 0 ? r + m : r;
}

/* end - 1 + lateness, saturating (Flink: Long.MAX_VALUE when it overflows). */
static int64_t cleanup_time(const struct sli_win *w, int64_t end)
{
	int64_t t;

	if (__builtin_add_overflow(end - 1, w->spec->allowed_lateness, &t))
		return INT64_MAX;
	return t;
}

/* ---------------------------------------------------------------- keys */

static int key_grow_table(struct sli_win *w)
{
	uint32_t ncap = w->kcap ? w->kcap * 2 : 1024;
	uint32_t *ns = calloc(ncap, sizeof(*ns));

	if (ns == NULL)
		return -ENOMEM;
	for (uint32_t k = 0; k < w->nkeys; k++) {
		uint32_t i = (uint32_t)w->keys[k].hash & (ncap - 1);

		while (ns[i])
			i = (i + 1) & (ncap - 1);
		ns[i] = k + 1;
	}
	free(w->kslot);
	w->kslot = ns;
	w->kcap = ncap;
	return 0;
}

/* The id of key (@p, @len) with @hash, added when new. Return >= 0 or -ENOMEM. */
static int64_t key_id(struct sli_win *w, uint64_t hash, const void *p, uint32_t len)
{
	uint32_t i;

	if ((w->nkeys + 1) * 2 > w->kcap && key_grow_table(w) < 0)
		return -ENOMEM;
	for (i = (uint32_t)hash & (w->kcap - 1); w->kslot[i]; i = (i + 1) & (w->kcap - 1)) {
		const struct wkey *k = &w->keys[w->kslot[i] - 1];

		if (k->hash == hash && k->len == len && memcmp(w->karena + k->off, p, len) == 0)
			return w->kslot[i] - 1;
	}
	if (grow((void **)&w->keys, &w->capkeys, w->nkeys + 1, sizeof(*w->keys)) < 0)
		return -ENOMEM;
	if (w->kused + len > w->kcapb) {
		uint64_t ncap = w->kcapb ? w->kcapb * 2 : 65536;
		char *na;

		while (ncap < w->kused + len)
			ncap *= 2;
		na = realloc(w->karena, ncap);
		if (na == NULL)
			return -ENOMEM;
		w->karena = na;
		w->kcapb = ncap;
	}
	memcpy(w->karena + w->kused, p, len);
	w->keys[w->nkeys] = (struct wkey){ .hash = hash, .off = w->kused, .len = len };
	w->kused += len;
	w->kslot[i] = ++w->nkeys;
	return w->nkeys - 1;
}

/* ------------------------------------------------------------- windows */

static void *acc_of(struct sli_win *w, uint32_t e)
{
	return w->accs + (size_t)e * w->acc_size;
}

static uint32_t wslot_home(const struct sli_win *w, uint32_t key, int64_t start, int64_t end)
{
	return (uint32_t)mix(key, (uint64_t)start, (uint64_t)end) & (w->wcap - 1);
}

static int win_grow_table(struct sli_win *w)
{
	uint32_t ncap = w->wcap ? w->wcap * 2 : 1024;
	uint32_t *ns = calloc(ncap, sizeof(*ns));
	uint32_t ocap = w->wcap, *os = w->wslot;

	if (ns == NULL)
		return -ENOMEM;
	w->wslot = ns;
	w->wcap = ncap;
	for (uint32_t j = 0; j < ocap; j++) {
		if (os[j]) {
			const struct went *e = &w->ents[os[j] - 1];
			uint32_t i = wslot_home(w, e->key, e->start, e->end);

			while (ns[i])
				i = (i + 1) & (ncap - 1);
			ns[i] = os[j];
		}
	}
	free(os);
	return 0;
}

/* Slot of (key, start, end), or of the empty slot where it would go. */
static uint32_t win_find(const struct sli_win *w, uint32_t key, int64_t start, int64_t end)
{
	uint32_t i = wslot_home(w, key, start, end);

	for (; w->wslot[i]; i = (i + 1) & (w->wcap - 1)) {
		const struct went *e = &w->ents[w->wslot[i] - 1];

		if (e->key == key && e->start == start && e->end == end)
			break;
	}
	return i;
}

static void win_unlink_slot(struct sli_win *w, uint32_t i)
{
	uint32_t mask = w->wcap - 1, j = i;

	/* Backward-shift deletion keeps every probe chain unbroken. */
	w->wslot[i] = 0;
	for (;;) {
		const struct went *e;
		uint32_t home;

		j = (j + 1) & mask;
		if (!w->wslot[j])
			break;
		e = &w->ents[w->wslot[j] - 1];
		home = wslot_home(w, e->key, e->start, e->end);
		/* Move it back if its home is not in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			w->wslot[i] = w->wslot[j];
			w->wslot[j] = 0;
			i = j;
		}
	}
	w->wcount--;
}

/* A new entry for (key, [start, end)) with a fresh accumulator. Return its index or -ENOMEM. */
static int64_t win_add(struct sli_win *w, uint32_t key, int64_t start, int64_t end)
{
	uint32_t e, i;

	if ((w->wcount + 1) * 2 > w->wcap && win_grow_table(w) < 0)
		return -ENOMEM;
	if (w->free_head) {
		e = w->free_head - 1;
		w->free_head = w->ents[e].next;
	} else {
		uint32_t cap = w->capents;

		if (grow((void **)&w->ents, &w->capents, w->nents + 1, sizeof(*w->ents)) < 0)
			return -ENOMEM;
		if (w->capents != cap) {
			uint8_t *na = realloc(w->accs, (size_t)w->capents * w->acc_size);

			if (na == NULL)
				return -ENOMEM;
			w->accs = na;
		}
		e = w->nents++;
		w->ents[e].gen = 0;
	}
	w->ents[e].start = start;
	w->ents[e].end = end;
	w->ents[e].key = key;
	w->ents[e].next = 0;
	w->ents[e].timers = 0;
	w->ents[e].used = 1;
	memset(acc_of(w, e), 0, w->acc_size);
	if (w->agg->create != NULL)
		w->agg->create(acc_of(w, e), w->agg->arg);
	i = win_find(w, key, start, end);
	w->wslot[i] = e + 1;
	w->wcount++;
	return e;
}

/* Remove entry @e from the table (not from a session list); its timers become stale. */
static void win_drop(struct sli_win *w, uint32_t e)
{
	struct went *x = &w->ents[e];

	win_unlink_slot(w, win_find(w, x->key, x->start, x->end));
	x->used = 0;
	x->gen++;
	x->timers = 0;
	x->next = w->free_head;
	w->free_head = e + 1;
}

/* -------------------------------------------------------------- timers */

static int heap_push(struct sli_win *w, int64_t time, uint32_t e)
{
	struct timer t = { time, e, w->ents[e].gen };
	uint32_t i;

	if (grow((void **)&w->heap, &w->capheap, w->nheap + 1, sizeof(*w->heap)) < 0)
		return -ENOMEM;
	for (i = w->nheap++; i > 0 && w->heap[(i - 1) / 2].time > time; i = (i - 1) / 2)
		w->heap[i] = w->heap[(i - 1) / 2];
	w->heap[i] = t;
	return 0;
}

static struct timer heap_pop(struct sli_win *w)
{
	struct timer top = w->heap[0], last = w->heap[--w->nheap];
	uint32_t i = 0;

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= w->nheap)
			break;
		if (c + 1 < w->nheap && w->heap[c + 1].time < w->heap[c].time)
			c++;
		if (w->heap[c].time >= last.time)
			break;
		w->heap[i] = w->heap[c];
		i = c;
	}
	if (w->nheap)
		w->heap[i] = last;
	return top;
}

/* Register timer @kind of entry @e (de-duplicated; one item when fire == cleanup time). */
static int timer_register(struct sli_win *w, uint32_t e, uint8_t kind)
{
	struct went *x = &w->ents[e];
	int64_t fire = x->end - 1, clean = cleanup_time(w, x->end);
	int64_t time = kind == T_FIRE ? fire : clean;
	uint8_t other = kind == T_FIRE ? T_CLEAN : T_FIRE;
	bool shared = fire == clean && (x->timers & other);

	if (x->timers & kind)
		return 0;
	x->timers |= kind;
	return shared ? 0 : heap_push(w, time, e);
}

/* ---------------------------------------------------------- operator */

struct sli_win *sli_win_new(struct sli_opi *op)
{
	struct sli_win *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->spec = &op->node->win;
	w->agg = &op->node->agg;
	w->acc_size = (w->agg->acc_size + 7) & ~7u;
	if (key_grow_table(w) < 0 || win_grow_table(w) < 0) {
		sli_win_free(w);
		return NULL;
	}
	return w;
}

void sli_win_free(struct sli_win *w)
{
	if (w == NULL)
		return;
	free(w->keys);
	free(w->kslot);
	free(w->karena);
	free(w->ents);
	free(w->accs);
	free(w->wslot);
	free(w->heap);
	free(w);
}

static int emit_window(struct sli_opi *op, uint32_t e)
{
	struct sli_win *w = op->win;
	const struct went *x = &w->ents[e];
	const struct wkey *k = &w->keys[x->key];
	struct sl_window win = { x->start, x->end };
	struct sl_key key = { w->karena + k->off, k->len };
	int rc = w->agg->result(&win, &key, acc_of(w, e), &op->coll, w->agg->arg);

	if (rc < 0 && !atomic_load_explicit(&op->st->w->x->failed, memory_order_relaxed))
		sli_fail(op, rc, "the window result function failed: %s", sl_strerror(rc));
	return rc;
}

static bool window_late(const struct sli_win *w, int64_t end, int64_t wm)
{
	return cleanup_time(w, end) <= wm;
}

/* Add element @i of @b to entry @e, then the trigger's on_element. */
static int add_and_trigger(struct sli_opi *op, uint32_t e, const struct sl_batch *b, uint32_t i)
{
	struct sli_win *w = op->win;
	int rc;

	w->agg->add(acc_of(w, e), sl_batch_elem(b, i), b->ts[i], b, w->agg->arg);
	if (w->ents[e].end - 1 <= op->watermark)
		rc = emit_window(op, e); /* late firing: at once, with the new contents */
	else
		rc = timer_register(w, e, T_FIRE);
	if (rc == 0 && cleanup_time(w, w->ents[e].end) != INT64_MAX)
		rc = timer_register(w, e, T_CLEAN);
	return rc;
}

/* Tumbling and sliding: every window of the element. Sets *skipped when none took it. */
static int assign_fixed(struct sli_opi *op, uint32_t key, const struct sl_batch *b, uint32_t i,
			bool *skipped)
{
	struct sli_win *w = op->win;
	const struct sl_window_spec *s = w->spec;
	int64_t ts = b->ts[i];
	int64_t slide = s->kind == SL_WINDOW_TUMBLING ? s->size : s->slide;
	int64_t start = ts - floor_mod(ts - s->offset, slide);

	/* Flink: start = last_start, last_start - slide, ... while start > ts - size. */
	for (; start > ts - s->size; start -= slide) {
		int64_t end = start + s->size;
		uint32_t slot;
		int64_t e;
		int rc;

		if (window_late(w, end, op->watermark))
			continue;
		*skipped = false;
		slot = win_find(w, key, start, end);
		e = w->wslot[slot] ? (int64_t)w->wslot[slot] - 1 : win_add(w, key, start, end);
		if (e < 0)
			return (int)e;
		rc = add_and_trigger(op, (uint32_t)e, b, i);
		if (rc < 0)
			return rc;
		if (start < INT64_MIN + slide)
			break;
	}
	return 0;
}

/* Sessions: merge [ts, ts + gap) with the key's windows it touches (MergingWindowSet). */
static int assign_session(struct sli_opi *op, uint32_t key, const struct sl_batch *b, uint32_t i,
			  bool *skipped)
{
	struct sli_win *w = op->win;
	struct wkey *k = &w->keys[key];
	int64_t ts = b->ts[i], start = ts, end;
	int64_t wm = op->watermark;
	uint32_t keep = 0; /* entry + 1 that becomes the merged window */
	bool merged = false;
	int64_t e;
	int rc;

	if (__builtin_add_overflow(ts, w->spec->gap, &end))
		end = INT64_MAX;
	/* The cover of the new window and every window intersecting it (touching counts). */
	for (uint32_t p = k->sessions; p; p = w->ents[p - 1].next) {
		const struct went *x = &w->ents[p - 1];

		if (x->start <= end && x->end >= start) {
			if (x->start < start)
				start = x->start;
			if (x->end > end)
				end = x->end;
			if (!keep)
				keep = p;
			else
				merged = true;
		}
	}
	if (keep && !merged && w->ents[keep - 1].start == start && w->ents[keep - 1].end == end) {
		/* Inside one existing window: no merge (Flink calls no merge function). */
		e = keep - 1;
	} else if (keep) {
		/* A real merge: keep's entry becomes the cover, the others fold into it. */
		uint32_t *pp = &k->sessions, kept = keep - 1;

		if (window_late(w, end, wm)) {
			sli_fail(
			    op, -EINVAL,
			    "session merge produced a late window [%lld, %lld) (watermark %lld)",
			    (long long)start, (long long)end, (long long)wm);
			return -EINVAL;
		}
		while (*pp) {
			uint32_t p = *pp;
			struct went *x = &w->ents[p - 1];

			if (p != keep && x->start <= end && x->end >= start) {
				w->agg->merge(acc_of(w, kept), acc_of(w, p - 1), w->agg->arg);
				*pp = x->next;
				win_drop(w, p - 1);
				continue;
			}
			pp = &x->next;
		}
		/* Re-key the kept entry as the cover; its old timers are deleted. */
		win_unlink_slot(w, win_find(w, key, w->ents[kept].start, w->ents[kept].end));
		if ((w->wcount + 1) * 2 > w->wcap && win_grow_table(w) < 0)
			return -ENOMEM;
		w->ents[kept].start = start;
		w->ents[kept].end = end;
		w->ents[kept].gen++;
		w->ents[kept].timers = 0;
		w->wslot[win_find(w, key, start, end)] = kept + 1;
		w->wcount++;
		/* EventTimeTrigger.onMerge: a timer at the cover's end - 1 if still ahead. */
		if (end - 1 > wm) {
			rc = timer_register(w, kept, T_FIRE);
			if (rc < 0)
				return rc;
		}
		e = kept;
	} else {
		if (window_late(w, end, wm))
			return 0; /* retired at once: the element is skipped */
		e = win_add(w, key, start, end);
		if (e < 0)
			return (int)e;
		k = &w->keys[key];
		w->ents[e].next = k->sessions;
		k->sessions = (uint32_t)e + 1;
	}
	if (window_late(w, w->ents[e].end, wm))
		return 0; /* an existing window that is late now: skipped */
	*skipped = false;
	return add_and_trigger(op, (uint32_t)e, b, i);
}

static int late_element(struct sli_opi *op, const struct sl_batch *b, uint32_t i)
{
	if (op->nport_out[1] > 0)
		return sl_emit_side(&op->coll, 0, sl_batch_elem(b, i), b->ts[i], b);
	atomic_fetch_add_explicit(&op->node->counters.late_records_dropped, 1,
				  memory_order_relaxed);
	return 0;
}

int sli_win_batch(struct sli_opi *op, struct sl_batch *b)
{
	struct sli_win *w = op->win;
	int rc = 0;

	for (uint32_t i = 0; i < b->n && rc == 0; i++) {
		const void *elem = sl_batch_elem(b, i);
		struct sl_key k;
		uint64_t hash;
		int64_t key;
		bool skipped = true;
		int64_t late_at;

		op->key(elem, b, &k);
		hash = (b->flags & SL_BATCH_F_KEYED) ? b->key[i] : sli_hash64(k.ptr, k.len, 0);
		key = key_id(w, hash, k.ptr, k.len);
		if (key < 0) {
			rc = (int)key;
			sli_fail(op, rc, "out of memory for window keys");
			break;
		}
		if (w->spec->kind == SL_WINDOW_SESSION)
			rc = assign_session(op, (uint32_t)key, b, i, &skipped);
		else
			rc = assign_fixed(op, (uint32_t)key, b, i, &skipped);
		if (rc < 0)
			break;
		/* Late: skipped by all its windows and ts + lateness <= watermark (Java's wrap). */
		late_at = (int64_t)((uint64_t)b->ts[i] + (uint64_t)w->spec->allowed_lateness);
		if (skipped && late_at <= op->watermark)
			rc = late_element(op, b, i);
	}
	if (rc == -ENOMEM && !atomic_load_explicit(&op->st->w->x->failed, memory_order_relaxed))
		sli_fail(op, rc, "out of memory for window state");
	sli_release(op, b);
	return rc;
}

/* Fire every timer up to @wm, in time order. */
int sli_win_watermark(struct sli_opi *op, int64_t wm)
{
	struct sli_win *w = op->win;

	while (w->nheap > 0 && w->heap[0].time <= wm) {
		struct timer t = heap_pop(w);
		struct went *x = &w->ents[t.ent];
		int64_t fire, clean;
		int rc;

		if (!x->used || x->gen != t.gen)
			continue; /* deleted: the window was cleared or merged */
		fire = x->end - 1;
		clean = cleanup_time(w, x->end);
		if (t.time == fire && (x->timers & T_FIRE)) {
			x->timers &= (uint8_t)~T_FIRE;
			rc = emit_window(op, t.ent);
			if (rc < 0)
				return rc;
			x = &w->ents[t.ent];
		}
		if (t.time == clean && (x->timers & T_CLEAN)) {
			if (w->spec->kind == SL_WINDOW_SESSION) {
				uint32_t *pp = &w->keys[x->key].sessions;

				while (*pp != t.ent + 1)
					pp = &w->ents[*pp - 1].next;
				*pp = x->next;
			}
			win_drop(w, t.ent);
		}
	}
	return 0;
}
