/* SPDX-License-Identifier: Apache-2.0 */
/*
 * join.c — keyed two-input joins: the window join (Flink's JoinedStreams,
 * a coGroup over event-time windows with the default trigger) and the
 * interval join (Flink's IntervalJoinOperator); their builders and
 * sl_join_buffered().
 *
 * Runtime: a join node has two input edges, each hash-partitioned by its
 * own key function; edge.input says which side (0 left, 1 right) and each
 * input channel of the subtask carries it, so the worker hands every batch
 * to sli_join_batch() with its side. Equal key bytes hash to the same key
 * group on both edges (one max_parallelism per job), so a key's elements of
 * both sides meet in one subtask. A join always heads its task (the plan
 * chains only single-input nodes), and its watermark is the subtask's
 * input watermark: the minimum over the channels of both inputs.
 *
 * State of one subtask: the key dictionary and the event-time timer service
 * of sli_timers.h, and per key id
 *   interval join  one buffer per side: the element copies in timestamp
 *                  order (a deque; cleanup pops the front, insertion
 *                  searches from the back, where in-order input lands);
 *                  a cleanup timer per (key, side, ts), namespace {side, ts};
 *   window join    its live windows (few per key: a vector, searched
 *                  linearly), each with one buffer per side in arrival
 *                  order; timers per (key, window) at end - 1 (fire) and
 *                  end - 1 + lateness (cleanup), namespace {start, end}.
 * A buffered element is a copy: header, element bytes, and its strings
 * in a block of their own (types without strings allocate nothing per
 * element). The user's function sees it through a one-element pseudo batch
 * whose arena is that block, so struct sl_str fields resolve as usual.
 *
 * Invariant (interval join): a buffer holds no element whose cleanup timer
 * fired; timers fire in time order, and cleanup time grows with ts, so a
 * timer pops the front of its buffer up to its ts.
 *
 * Threads: one struct sli_join per subtask, on its worker's thread. The
 * node's join_buffered gauges are shared by the subtasks (relaxed RMW,
 * once per batch or watermark) and read by any thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_error.h>
#include <sluice/sl_snap.h>

#include "sli_exec.h"
#include "sli_timers.h"
#include "sli_window.h"

/* Bounds beyond this (2^62 ms, 146 million years) are refused: ts +- bound stays computable. */
#define BOUND_MAX (INT64_C(1) << 62)

/* A buffered element: this header, then the element, padded to 8 bytes. */
struct jrec {
	int64_t ts;
	char *strs;    /* its strings, copied; NULL when the type has none */
	uint32_t slen; /* bytes at strs */
	uint32_t pad;
};

/* Element copies of one side, back to back: live ones are [head, head + n). */
struct jbuf {
	uint8_t *mem;
	uint32_t head, n, cap;
};

/* A live window of a key (window join). */
struct jwin {
	int64_t start, end;
	struct jbuf buf[2];
};

/* The state of one key id. */
struct jkey {
	struct jbuf buf[2]; /* interval join */
	struct jwin *w;	    /* window join */
	uint32_t nw, capw;
};

struct sli_join {
	bool window; /* window join, else interval join */
	const struct sl_type *type[2];
	struct sli_keyspec key[2];
	uint32_t rsize[2];	      /* bytes per buffered record of each side */
	int64_t rel_lo[2], rel_hi[2]; /* interval: partner range relative to ts, per side */
	const struct sl_window_spec *spec;
	struct sli_keys *keys;
	struct sli_timers *timers;
	struct jkey *k;
	uint32_t nk;
	struct sli_node *node;
	int64_t held[2];	/* element copies buffered, per side */
	int64_t dbuf[2];	/* changes of held not yet added to the node's gauges */
	uint8_t *scratch;	/* one record of the larger side */
	struct sli_img *frozen; /* the last snapshot image (sli_join_freeze()) */
};

/* ------------------------------------------------------------- helpers */

static struct jrec *rec_at(const struct jbuf *b, uint32_t rsize, uint32_t i)
{
	return (struct jrec *)(b->mem + (size_t)(b->head + i) * rsize);
}

static void *rec_elem(const struct jrec *r)
{
	return (void *)(r + 1);
}

/* A one-element batch presenting record @r to user code (strings resolve against it). */
static void rec_src(const struct jrec *r, uint32_t elem_size, struct sl_batch *pb)
{
	memset(pb, 0, sizeof(*pb));
	pb->kind = SL_EVENT_DATA;
	pb->n = pb->cap = 1;
	pb->elem_size = elem_size;
	pb->ts = (int64_t *)&r->ts;
	pb->data = rec_elem(r);
	pb->arena = r->strs;
	pb->arena_used = pb->arena_cap = pb->arena_max = r->slen;
}

/* Copy element @i of @b (strings included) into the record @r. */
static int rec_fill(struct jrec *r, const struct sl_type *t, const struct sl_batch *b, uint32_t i)
{
	uint8_t *e = rec_elem(r);
	uint64_t total = 0;
	uint32_t off = 0;

	memcpy(e, sl_batch_elem(b, i), t->size);
	r->ts = b->ts[i];
	r->strs = NULL;
	r->slen = 0;
	if (t->nstr == 0)
		return 0;
	for (uint32_t s = 0; s < t->nstr; s++) {
		struct sl_str in;

		memcpy(&in, e + t->str_off[s], sizeof(in));
		total += in.len;
	}
	if (total > UINT32_MAX)
		return -E2BIG;
	r->strs = malloc(total ? total : 1);
	if (r->strs == NULL)
		return -ENOMEM;
	for (uint32_t s = 0; s < t->nstr; s++) {
		struct sl_str in, out;

		memcpy(&in, e + t->str_off[s], sizeof(in));
		if (in.len)
			memcpy(r->strs + off, b->arena + in.off, in.len);
		out.off = off;
		out.len = in.len;
		memcpy(e + t->str_off[s], &out, sizeof(out));
		off += in.len;
	}
	r->slen = off;
	return 0;
}

/* Room for one more record at the end of @b. */
static int buf_reserve(struct jbuf *b, uint32_t rsize)
{
	uint32_t ncap;
	uint8_t *m;

	if (b->head + b->n < b->cap)
		return 0;
	if (b->head > 0 && b->n < b->cap / 2 + 1) {
		/* Mostly popped from the front: slide down instead of growing. */
		memmove(b->mem, b->mem + (size_t)b->head * rsize, (size_t)b->n * rsize);
		b->head = 0;
		return 0;
	}
	if (b->head > 0) {
		memmove(b->mem, b->mem + (size_t)b->head * rsize, (size_t)b->n * rsize);
		b->head = 0;
	}
	ncap = b->cap ? b->cap * 2 : 8;
	if (ncap <= b->cap)
		return -ENOMEM;
	m = realloc(b->mem, (size_t)ncap * rsize);
	if (m == NULL)
		return -ENOMEM;
	b->mem = m;
	b->cap = ncap;
	return 0;
}

/* A slot at the end (window join: arrival order). */
static struct jrec *buf_append(struct jbuf *b, uint32_t rsize)
{
	if (buf_reserve(b, rsize) < 0)
		return NULL;
	return rec_at(b, rsize, b->n++);
}

/* A slot keeping timestamp order, after the records of equal ts (interval join). */
static struct jrec *buf_insert(struct jbuf *b, uint32_t rsize, int64_t ts)
{
	uint32_t pos;

	if (buf_reserve(b, rsize) < 0)
		return NULL;
	for (pos = b->n; pos > 0 && rec_at(b, rsize, pos - 1)->ts > ts; pos--)
		;
	if (pos < b->n)
		memmove(rec_at(b, rsize, pos + 1), rec_at(b, rsize, pos),
			(size_t)(b->n - pos) * rsize);
	b->n++;
	return rec_at(b, rsize, pos);
}

/* The first record with ts >= @ts (binary search; the buffer is in ts order). */
static uint32_t buf_lower(const struct jbuf *b, uint32_t rsize, int64_t ts)
{
	uint32_t lo = 0, hi = b->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (rec_at(b, rsize, mid)->ts < ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Drop the front records with ts <= @ts. Return how many. */
static uint32_t buf_pop_upto(struct jbuf *b, uint32_t rsize, int64_t ts)
{
	uint32_t k = 0;

	while (k < b->n && rec_at(b, rsize, k)->ts <= ts) {
		free(rec_at(b, rsize, k)->strs);
		k++;
	}
	b->head += k;
	b->n -= k;
	if (b->n == 0)
		b->head = 0;
	return k;
}

static void buf_free(struct jbuf *b, uint32_t rsize)
{
	for (uint32_t i = 0; i < b->n; i++)
		free(rec_at(b, rsize, i)->strs);
	free(b->mem);
	memset(b, 0, sizeof(*b));
}

/* The state of key id @id, growing the table when the id is new. */
static struct jkey *key_state(struct sli_join *j, uint32_t id)
{
	if (id >= j->nk) {
		uint32_t nn = j->nk ? j->nk : 64;
		struct jkey *k;

		while (nn <= id)
			nn *= 2;
		k = realloc(j->k, (size_t)nn * sizeof(*k));
		if (k == NULL)
			return NULL;
		memset(k + j->nk, 0, (size_t)(nn - j->nk) * sizeof(*k));
		j->k = k;
		j->nk = nn;
	}
	return &j->k[id];
}

static void held_add(struct sli_join *j, unsigned side, int64_t d)
{
	j->held[side] += d;
	j->dbuf[side] += d;
}

static void gauge_flush(struct sli_join *j)
{
	for (int s = 0; s < 2; s++) {
		if (j->dbuf[s] != 0)
			atomic_fetch_add_explicit(&j->node->join_buffered[s], j->dbuf[s],
						  memory_order_relaxed);
		j->dbuf[s] = 0;
	}
}

/*
 * A late element of input @side: to side output @side (0: left, 1: right)
 * when connected, else dropped and counted (late_records_dropped).
 */
static int late_element(struct sli_opi *op, unsigned side, const struct sl_batch *b, uint32_t i)
{
	if (op->nport_out[1 + side] > 0)
		return sl_emit_side(&op->coll, side, sl_batch_elem(b, i), b->ts[i], b);
	atomic_fetch_add_explicit(&op->node->counters.late_records_dropped, 1,
				  memory_order_relaxed);
	return 0;
}

/* Report a failed user function once (a failure elsewhere may have come first). */
static int user_failed(struct sli_opi *op, int rc)
{
	if (!atomic_load_explicit(&op->st->w->x->failed, memory_order_relaxed))
		sli_fail(op, rc, "the join function failed: %s", sl_strerror(rc));
	return rc;
}

/* ------------------------------------------------------- interval join */

/*
 * The range [*lo, *hi] of partner timestamps of an element at @ts, from
 * bounds relative to it; false when empty (or beyond int64).
 */
static bool partner_range(int64_t ts, int64_t rlo, int64_t rhi, int64_t *lo, int64_t *hi)
{
	if (__builtin_add_overflow(ts, rlo, lo)) {
		if (rlo > 0)
			return false;
		*lo = INT64_MIN;
	}
	if (__builtin_add_overflow(ts, rhi, hi)) {
		if (rhi < 0)
			return false;
		*hi = INT64_MAX;
	}
	return *lo <= *hi;
}

static int ij_element(struct sli_opi *op, unsigned side, struct sl_batch *b, uint32_t i,
		      uint32_t id)
{
	struct sli_join *j = op->join;
	sl_interval_join_fn fn = (sl_interval_join_fn)op->node->fn.any;
	unsigned other = 1 - side;
	int64_t ts = b->ts[i], lo, hi, clean;
	struct jkey *k = key_state(j, id);
	struct jrec *r;
	int rc;

	if (k == NULL)
		return -ENOMEM;
	if (ts < op->watermark) /* Flink's isLate(): strictly below */
		return late_element(op, side, b, i);
	/* Fill a scratch record first: a failure leaves the buffer as it was. */
	rc = rec_fill((struct jrec *)j->scratch, j->type[side], b, i);
	if (rc < 0)
		return rc;
	r = buf_insert(&k->buf[side], j->rsize[side], ts);
	if (r == NULL) {
		free(((struct jrec *)j->scratch)->strs);
		return -ENOMEM;
	}
	memcpy(r, j->scratch, j->rsize[side]);
	held_add(j, side, 1);
	if (partner_range(ts, j->rel_lo[side], j->rel_hi[side], &lo, &hi)) {
		struct jbuf *ob = &k->buf[other];
		uint32_t rs = j->rsize[other];

		for (uint32_t p = buf_lower(ob, rs, lo); p < ob->n; p++) {
			const struct jrec *o = rec_at(ob, rs, p);
			struct sl_batch pb;

			if (o->ts > hi)
				break;
			rec_src(o, j->type[other]->size, &pb);
			op->coll.stamp = o->ts > ts ? o->ts : ts;
			op->coll.stamped = true;
			if (side == 0)
				rc = fn(sl_batch_elem(b, i), ts, b, rec_elem(o), o->ts, &pb,
					&op->coll, op->node->arg);
			else
				rc = fn(rec_elem(o), o->ts, &pb, sl_batch_elem(b, i), ts, b,
					&op->coll, op->node->arg);
			op->coll.stamped = false;
			if (rc < 0)
				return user_failed(op, rc);
		}
	}
	/* Flink: at ts + relative upper bound when that is positive, else at ts. */
	clean = j->rel_hi[side] > 0 ? sli_sat_add(ts, j->rel_hi[side]) : ts;
	rc = sli_timers_register(j->timers, SLI_EVENT_TIME, id, (struct sli_ns){ side, ts }, clean);
	return rc < 0 ? rc : 0;
}

static int ij_timer(struct sli_opi *op, const struct sli_timer *t)
{
	struct sli_join *j = op->join;
	unsigned side = (unsigned)t->ns.a;

	held_add(j, side, -(int64_t)buf_pop_upto(&j->k[t->key].buf[side], j->rsize[side], t->ns.b));
	return 0;
}

/* --------------------------------------------------------- window join */

static int64_t win_cleanup(const struct sli_join *j, int64_t end)
{
	return sli_cleanup_time(end, j->spec->allowed_lateness);
}

static bool win_late(const struct sli_join *j, int64_t end, int64_t wm)
{
	return sli_window_late(end, j->spec->allowed_lateness, wm);
}

static struct sli_ns win_ns(const struct jwin *w)
{
	return (struct sli_ns){ w->start, w->end };
}

/* The window [start, end) of key @k, or NULL. */
static struct jwin *win_find(struct jkey *k, int64_t start, int64_t end)
{
	for (uint32_t i = 0; i < k->nw; i++)
		if (k->w[i].start == start && k->w[i].end == end)
			return &k->w[i];
	return NULL;
}

static struct jwin *win_add(struct jkey *k, int64_t start, int64_t end)
{
	if (k->nw == k->capw) {
		uint32_t ncap = k->capw ? k->capw * 2 : 4;
		struct jwin *w = realloc(k->w, (size_t)ncap * sizeof(*w));

		if (w == NULL)
			return NULL;
		k->w = w;
		k->capw = ncap;
	}
	k->w[k->nw] = (struct jwin){ .start = start, .end = end };
	return &k->w[k->nw++];
}

/* Free window @idx of @k (swapped with the last one). */
static void win_remove(struct sli_join *j, struct jkey *k, uint32_t idx)
{
	struct jwin *w = &k->w[idx];

	for (int s = 0; s < 2; s++) {
		held_add(j, (unsigned)s, -(int64_t)w->buf[s].n);
		buf_free(&w->buf[s], j->rsize[s]);
	}
	k->w[idx] = k->w[--k->nw];
}

/* Fire window @w of key @id: the join function on every (left, right) pair. */
static int win_fire(struct sli_opi *op, const struct jwin *w)
{
	struct sli_join *j = op->join;
	sl_window_join_fn fn = (sl_window_join_fn)op->node->fn.any;
	struct sl_window win = { w->start, w->end };
	int rc = 0;

	op->coll.stamp = w->end - 1;
	op->coll.stamped = true;
	for (uint32_t a = 0; a < w->buf[0].n && rc >= 0; a++) {
		const struct jrec *l = rec_at(&w->buf[0], j->rsize[0], a);
		struct sl_batch lpb;

		rec_src(l, j->type[0]->size, &lpb);
		for (uint32_t c = 0; c < w->buf[1].n && rc >= 0; c++) {
			const struct jrec *r = rec_at(&w->buf[1], j->rsize[1], c);
			struct sl_batch rpb;

			rec_src(r, j->type[1]->size, &rpb);
			rc = fn(rec_elem(l), &lpb, rec_elem(r), &rpb, &win, &op->coll,
				op->node->arg);
		}
	}
	op->coll.stamped = false;
	return rc < 0 ? user_failed(op, rc) : 0;
}

/* Add element @i of @b to window @w, then the trigger's on_element and the cleanup timer. */
static int win_add_elem(struct sli_opi *op, unsigned side, uint32_t id, struct jwin *w,
			const struct sl_batch *b, uint32_t i)
{
	struct sli_join *j = op->join;
	struct jrec *r = buf_append(&w->buf[side], j->rsize[side]);
	int rc;

	if (r == NULL)
		return -ENOMEM;
	rc = rec_fill(r, j->type[side], b, i);
	if (rc < 0) {
		w->buf[side].n--;
		return rc;
	}
	held_add(j, side, 1);
	if (w->end - 1 <= op->watermark) {
		rc = win_fire(op, w); /* a late firing, with the updated contents */
	} else {
		rc = sli_timers_register(j->timers, SLI_EVENT_TIME, id, win_ns(w), w->end - 1);
		rc = rc < 0 ? rc : 0;
	}
	if (rc == 0) {
		rc = sli_timers_register(j->timers, SLI_EVENT_TIME, id, win_ns(w),
					 win_cleanup(j, w->end));
		rc = rc < 0 ? rc : 0;
	}
	return rc;
}

/* Tumbling and sliding: every window of the element (Flink's order). */
static int wj_fixed(struct sli_opi *op, unsigned side, struct sl_batch *b, uint32_t i, uint32_t id,
		    bool *skipped)
{
	struct sli_join *j = op->join;
	const struct sl_window_spec *s = j->spec;
	int64_t ts = b->ts[i];
	int64_t slide = s->kind == SL_WINDOW_TUMBLING ? s->size : s->slide;
	int64_t r = sli_grid_mod(ts, s->offset, slide), start;
	struct jkey *k = key_state(j, id);

	if (k == NULL)
		return -ENOMEM;
	if (ts < INT64_MIN + r)
		return 0; /* every window of the element starts before INT64_MIN */
	/* ts - start < size: ts - size can overflow (window.c's loop). */
	for (start = ts - r; (uint64_t)ts - (uint64_t)start < (uint64_t)s->size; start -= slide) {
		struct jwin *w;
		int rc;

		/* A window ending after INT64_MAX is not representable: skipped. */
		if (start <= INT64_MAX - s->size && !win_late(j, start + s->size, op->watermark)) {
			*skipped = false;
			w = win_find(k, start, start + s->size);
			if (w == NULL && (w = win_add(k, start, start + s->size)) == NULL)
				return -ENOMEM;
			rc = win_add_elem(op, side, id, w, b, i);
			if (rc < 0)
				return rc;
		}
		if (start < INT64_MIN + slide)
			break;
	}
	return 0;
}

/* Delete both timers of window @w (fire and cleanup). */
static void win_timers_delete(struct sli_join *j, uint32_t id, const struct jwin *w)
{
	sli_timers_delete(j->timers, SLI_EVENT_TIME, id, win_ns(w), w->end - 1);
	sli_timers_delete(j->timers, SLI_EVENT_TIME, id, win_ns(w), win_cleanup(j, w->end));
}

/* Move the records of @from to the end of @to (all or nothing: they own their strings). */
static int buf_move(struct jbuf *to, struct jbuf *from, uint32_t rsize)
{
	uint32_t need = to->n + from->n, ncap = to->cap ? to->cap : 8;
	uint8_t *m;

	if (need < to->n)
		return -ENOMEM;
	if (to->head > 0) {
		memmove(to->mem, to->mem + (size_t)to->head * rsize, (size_t)to->n * rsize);
		to->head = 0;
	}
	while (ncap < need && ncap * 2 > ncap)
		ncap *= 2;
	if (ncap < need)
		return -ENOMEM;
	if (ncap > to->cap) {
		m = realloc(to->mem, (size_t)ncap * rsize);
		if (m == NULL)
			return -ENOMEM;
		to->mem = m;
		to->cap = ncap;
	}
	if (from->n)
		memcpy(rec_at(to, rsize, to->n), rec_at(from, rsize, 0), (size_t)from->n * rsize);
	to->n = need;
	free(from->mem);
	memset(from, 0, sizeof(*from));
	return 0;
}

/*
 * Sessions: [ts, ts + gap) merged with the key's windows it intersects
 * (touching counts) into their cover; left and right elements share
 * sessions. The first window found becomes the cover (the others fold
 * into it); the element is skipped when the cover is late.
 */
static int wj_session(struct sli_opi *op, unsigned side, struct sl_batch *b, uint32_t i,
		      uint32_t id, bool *skipped)
{
	struct sli_join *j = op->join;
	int64_t nlo = b->ts[i], nhi = sli_sat_add(nlo, j->spec->gap), start = nlo, end = nhi;
	int64_t wm = op->watermark;
	struct jkey *k = key_state(j, id);
	uint32_t nmerge = 0, kept = UINT32_MAX;
	struct jwin *w;
	int rc;

	if (k == NULL)
		return -ENOMEM;
	for (uint32_t x = 0; x < k->nw; x++) {
		w = &k->w[x];
		if (w->start <= nhi && w->end >= nlo) {
			nmerge++;
			kept = kept == UINT32_MAX ? x : kept;
			start = w->start < start ? w->start : start;
			end = w->end > end ? w->end : end;
		}
	}
	if (win_late(j, end, wm))
		return 0;
	*skipped = false;
	if (nmerge == 0) {
		w = win_add(k, start, end);
		if (w == NULL)
			return -ENOMEM;
		return win_add_elem(op, side, id, w, b, i);
	}
	w = &k->w[kept];
	if (nmerge > 1 || w->start != start || w->end != end) {
		/* Fold the others into the kept window, from the back (removal swaps). */
		for (uint32_t x = k->nw; x-- > 0;) {
			struct jwin *o = &k->w[x];

			if (x == kept || o->start > nhi || o->end < nlo)
				continue;
			win_timers_delete(j, id, o);
			for (int s = 0; s < 2; s++) {
				rc = buf_move(&k->w[kept].buf[s], &o->buf[s], j->rsize[s]);
				if (rc < 0)
					return rc;
			}
			if (k->nw - 1 == kept)
				kept = x;
			k->w[x] = k->w[--k->nw];
		}
		w = &k->w[kept];
		win_timers_delete(j, id, w);
		w->start = start;
		w->end = end;
		/* EventTimeTrigger.onMerge: a timer at the cover's end - 1 if still ahead. */
		if (end - 1 > wm) {
			rc = sli_timers_register(j->timers, SLI_EVENT_TIME, id, win_ns(w), end - 1);
			if (rc < 0)
				return rc;
		}
	}
	return win_add_elem(op, side, id, w, b, i);
}

static int wj_element(struct sli_opi *op, unsigned side, struct sl_batch *b, uint32_t i,
		      uint32_t id)
{
	struct sli_join *j = op->join;
	bool skipped = true;
	int64_t late_at;
	int rc;

	if (j->spec->kind == SL_WINDOW_SESSION)
		rc = wj_session(op, side, b, i, id, &skipped);
	else
		rc = wj_fixed(op, side, b, i, id, &skipped);
	if (rc < 0)
		return rc;
	/* Late: skipped by all its windows and ts + lateness <= watermark (Java's wrap). */
	late_at = (int64_t)((uint64_t)b->ts[i] + (uint64_t)j->spec->allowed_lateness);
	if (skipped && late_at <= op->watermark)
		return late_element(op, side, b, i);
	return 0;
}

/* A window timer: fire at end - 1, drop at end - 1 + lateness (both when equal). */
static int wj_timer(struct sli_opi *op, const struct sli_timer *t)
{
	struct sli_join *j = op->join;
	struct jkey *k = &j->k[t->key];
	struct jwin *w = win_find(k, t->ns.a, t->ns.b);
	int rc = 0;

	if (w == NULL)
		return 0;
	if (t->time == w->end - 1)
		rc = win_fire(op, w);
	if (rc == 0 && t->time == win_cleanup(j, w->end))
		win_remove(j, k, (uint32_t)(w - k->w));
	return rc;
}

/* ------------------------------------------------------------ operator */

struct sli_join *sli_join_new(struct sli_opi *op)
{
	const struct sli_node *n = op->node;
	struct sli_join *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->window = n->kind == SLI_WINDOW_JOIN;
	j->node = op->node;
	j->spec = &n->win;
	for (unsigned e = 0; e < n->nin; e++) {
		const struct sli_edge *in = n->in[e];
		unsigned s = in->input;

		j->type[s] = in->port ? &in->from->side[in->port - 1] : &in->from->type;
		j->key[s] = in->key;
		j->rsize[s] = (uint32_t)sizeof(struct jrec) + ((j->type[s]->size + 7) & ~7u);
	}
	if (!j->window) {
		int64_t lo = n->ijoin.lower + (n->ijoin.lower_exclusive ? 1 : 0);
		int64_t hi = n->ijoin.upper - (n->ijoin.upper_exclusive ? 1 : 0);

		/* Flink: the left sees [lo, hi], the right [-hi, -lo]. */
		j->rel_lo[0] = lo;
		j->rel_hi[0] = hi;
		j->rel_lo[1] = -hi;
		j->rel_hi[1] = -lo;
	}
	j->keys = sli_keys_new();
	j->timers = sli_timers_new();
	if (j->type[0] != NULL && j->type[1] != NULL)
		j->scratch = malloc(j->rsize[0] > j->rsize[1] ? j->rsize[0] : j->rsize[1]);
	if (j->keys == NULL || j->timers == NULL || j->scratch == NULL) {
		sli_join_free(j);
		return NULL;
	}
	return j;
}

void sli_join_free(struct sli_join *j)
{
	if (j == NULL)
		return;
	for (uint32_t id = 0; id < j->nk; id++) {
		struct jkey *k = &j->k[id];

		for (int s = 0; s < 2; s++)
			buf_free(&k->buf[s], j->rsize[s]);
		for (uint32_t w = 0; w < k->nw; w++)
			for (int s = 0; s < 2; s++)
				buf_free(&k->w[w].buf[s], j->rsize[s]);
		free(k->w);
	}
	free(j->k);
	/* What this subtask still holds leaves the gauges with it. */
	for (int s = 0; s < 2; s++)
		if (j->held[s] - j->dbuf[s] != 0)
			atomic_fetch_sub_explicit(&j->node->join_buffered[s],
						  j->held[s] - j->dbuf[s], memory_order_relaxed);
	free(j->scratch);
	sli_keys_free(j->keys);
	sli_timers_free(j->timers);
	sli_img_put(j->frozen); /* a checkpoint still holding it frees it */
	free(j);
}

int sli_join_batch(struct sli_opi *op, unsigned input, struct sl_batch *b)
{
	struct sli_join *j = op->join;
	unsigned side = input ? 1 : 0;
	int rc = 0;

	for (uint32_t i = 0; i < b->n && rc == 0; i++) {
		struct sl_key key = { NULL, 0 };
		uint64_t h;
		int64_t id;

		sli_key_get(&j->key[side], sl_batch_elem(b, i), b, &key);
		h = (b->flags & SL_BATCH_F_KEYED) ? b->key[i] : sli_hash64(key.ptr, key.len, 0);
		id = sli_keys_intern(j->keys, h, key.ptr, key.len);
		if (id < 0) {
			rc = (int)id;
			break;
		}
		if (j->window)
			rc = wj_element(op, side, b, i, (uint32_t)id);
		else
			rc = ij_element(op, side, b, i, (uint32_t)id);
	}
	gauge_flush(j);
	if (rc < 0 && !atomic_load_explicit(&op->st->w->x->failed, memory_order_relaxed))
		sli_fail(op, rc, "buffering an element of its %s input: %s",
			 side ? "right" : "left", sl_strerror(rc));
	sli_release(op, b);
	return rc;
}

/* Fire every timer up to @wm (op->watermark is @wm already), in time order. */
int sli_join_watermark(struct sli_opi *op, int64_t wm)
{
	struct sli_join *j = op->join;
	struct sli_timer t;
	int rc = 0;

	while (rc == 0 && sli_timers_pop(j->timers, SLI_EVENT_TIME, wm, &t) == 1)
		rc = j->window ? wj_timer(op, &t) : ij_timer(op, &t);
	gauge_flush(j);
	return rc;
}

/* ---------------------------------------------------------- checkpoints */

/*
 * A logical snapshot: an operator section {format, window join?, element
 * size and string count per side}, then per key, in its key group's
 * section (the group's first key writes the operator's watermark first):
 * the key's bytes, then
 *   interval join  per side: u32 count, records;
 *   window join    u32 windows, each: start, end, per side: u32 count,
 *                  records;
 * a record being its element's bytes, its timestamp and its strings' block
 * (the element's string fields are offsets into that block). Restore
 * rebuilds the buffers in the same order and registers the timers again:
 * interval cleanup per (key, side, ts); a window's firing timer when it has
 * not fired yet (end - 1 > watermark) and its cleanup timer.
 */
#define JSNAP_FORMAT 1u

static int put_buf(struct sl_snap_writer *w, const struct jbuf *b, uint32_t rsize, uint32_t esize)
{
	int rc = sl_snap_put_u32(w, b->n);

	for (uint32_t i = 0; i < b->n && rc == 0; i++) {
		const struct jrec *r = rec_at(b, rsize, i);

		rc = sl_snap_put_bytes(w, rec_elem(r), esize);
		if (rc == 0)
			rc = sl_snap_put_i64(w, r->ts);
		if (rc == 0)
			rc = sl_snap_put_bytes(w, r->strs, r->slen);
	}
	return rc;
}

/*
 * What a snapshot reads: the live state (keys from the dictionary, @kb
 * NULL), or an image: the keys that hold state, compacted, their bytes in
 * @kb[], their buffers and windows pointing at copies.
 */
struct jview {
	const struct jkey *k;
	const struct sl_key *kb;
	const struct sli_keys *keys;
	uint32_t nk;
	bool window;
	uint32_t hdr[6], rsize[2], esize[2];
	int64_t watermark;
	unsigned maxp;
};

static int join_serialize(const struct jview *v, struct sl_snap_writer *w)
{
	bool *seen = calloc(v->maxp, sizeof(*seen));
	int rc;

	if (seen == NULL)
		return -ENOMEM;
	rc = sl_snap_put(w, v->hdr, sizeof(v->hdr));
	for (uint32_t id = 0; id < v->nk && rc == 0; id++) {
		const struct jkey *k = &v->k[id];
		struct sl_key key;
		unsigned kg;

		if (k->buf[0].n + k->buf[1].n + k->nw == 0)
			continue; /* nothing buffered: the key is not state */
		key = v->kb != NULL ? v->kb[id] : sli_keys_get(v->keys, id);
		kg = sli_key_group(sli_hash64(key.ptr, key.len, 0), v->maxp);
		rc = sl_snap_section(w, kg);
		if (rc == 0 && !seen[kg]) {
			seen[kg] = true;
			rc = sl_snap_put_i64(w, v->watermark);
		}
		if (rc == 0)
			rc = sl_snap_put_bytes(w, key.ptr, key.len);
		if (!v->window) {
			for (int s = 0; s < 2 && rc == 0; s++)
				rc = put_buf(w, &k->buf[s], v->rsize[s], v->esize[s]);
			continue;
		}
		if (rc == 0)
			rc = sl_snap_put_u32(w, k->nw);
		for (uint32_t x = 0; x < k->nw && rc == 0; x++) {
			rc = sl_snap_put_i64(w, k->w[x].start);
			if (rc == 0)
				rc = sl_snap_put_i64(w, k->w[x].end);
			for (int s = 0; s < 2 && rc == 0; s++)
				rc = put_buf(w, &k->w[x].buf[s], v->rsize[s], v->esize[s]);
		}
	}
	free(seen);
	return rc;
}

/* The view of @op's live state (its configuration; the caller sets the state). */
static struct jview view_of(const struct sli_opi *op)
{
	const struct sli_join *j = op->join;
	uint32_t nk = sli_keys_count(j->keys);

	return (struct jview){
		.k = j->k,
		.keys = j->keys,
		.nk = nk < j->nk ? nk : j->nk,
		.window = j->window,
		.hdr = { JSNAP_FORMAT, j->window, j->type[0]->size, j->type[0]->nstr,
			 j->type[1]->size, j->type[1]->nstr },
		.rsize = { j->rsize[0], j->rsize[1] },
		.esize = { j->type[0]->size, j->type[1]->size },
		.watermark = op->watermark,
		.maxp = op->info.max_parallelism,
	};
}

int sli_join_snapshot(struct sli_opi *op, struct sl_snap_writer *w)
{
	struct jview v = view_of(op);

	return join_serialize(&v, w);
}

/*
 * Asynchronous snapshots. The state is pointer-rich (per key, buffers of
 * element copies, each with its strings in a block of its own), so the
 * image is the cheapest copy that is still flat: the keys holding state,
 * compacted (their struct jkey, their bytes), their windows, each buffer's
 * live records with one memcpy() into one record area, and, for types
 * with strings, each record's block into one string area (the copied
 * record's strs pointing there). A first pass sizes the areas, so that
 * the copies' pointers stay valid. The coordinator serialises the image
 * with join_serialize(), as the synchronous snapshot does the live state.
 */
struct jimg {
	struct sli_img h;
	struct sli_img_buf keys, kb, kbytes, wins, recs, strs;
	struct jview v;
};

static void jimg_destroy(struct sli_img *m)
{
	struct jimg *f = (struct jimg *)m;

	sli_img_buf_free(&f->keys);
	sli_img_buf_free(&f->kb);
	sli_img_buf_free(&f->kbytes);
	sli_img_buf_free(&f->wins);
	sli_img_buf_free(&f->recs);
	sli_img_buf_free(&f->strs);
	free(f);
}

static int jimg_write(const void *img, struct sl_snap_writer *w)
{
	const struct jimg *f = img;
	int rc = sl_snap_section(w, SL_SNAP_OP);

	return rc < 0 ? rc : join_serialize(&f->v, w);
}

static const struct sli_ckpt_image_ops jimg_ops = { jimg_write, sli_img_put };

/* What the image of a state needs: keys, key bytes, windows, record and string bytes. */
struct jsize {
	size_t keys, kbytes, wins, recs, strs;
};

static void size_buf(struct jsize *z, const struct jbuf *b, uint32_t rsize, bool strs)
{
	z->recs += (size_t)b->n * rsize;
	for (uint32_t i = 0; strs && i < b->n; i++)
		z->strs += rec_at(b, rsize, i)->slen;
}

/* Copy the live records of @from into the image's areas (*@rec, *@str), as @to. */
static void copy_buf(struct jbuf *to, const struct jbuf *from, uint32_t rsize, bool strs,
		     uint8_t **rec, char **str)
{
	*to = (struct jbuf){ *rec, 0, from->n, from->n };
	if (from->n == 0)
		return;
	memcpy(*rec, rec_at(from, rsize, 0), (size_t)from->n * rsize);
	*rec += (size_t)from->n * rsize;
	for (uint32_t i = 0; strs && i < from->n; i++) {
		struct jrec *r = rec_at(to, rsize, i);

		if (r->slen > 0)
			memcpy(*str, r->strs, r->slen);
		r->strs = *str;
		*str += r->slen;
	}
}

static int jimg_room(struct jimg *f, const struct jsize *z)
{
	int rc = sli_img_room(&f->keys, z->keys * sizeof(struct jkey));

	if (rc == 0)
		rc = sli_img_room(&f->kb, z->keys * sizeof(struct sl_key));
	if (rc == 0)
		rc = sli_img_room(&f->kbytes, z->kbytes);
	if (rc == 0)
		rc = sli_img_room(&f->wins, z->wins * sizeof(struct jwin));
	if (rc == 0)
		rc = sli_img_room(&f->recs, z->recs);
	if (rc == 0)
		rc = sli_img_room(&f->strs, z->strs);
	return rc;
}

int sli_join_freeze(struct sli_opi *op, struct sli_ckpt_image *out)
{
	struct sli_join *j = op->join;
	struct jimg *f = sli_img_reuse(&j->frozen, sizeof(*f), jimg_destroy);
	struct jview v = view_of(op);
	bool str[2] = { j->type[0]->nstr > 0, j->type[1]->nstr > 0 };
	struct jsize z = { 0 };
	struct jkey *ik;
	struct jwin *iw;
	struct sl_key *ikb;
	uint8_t *rec;
	char *kby, *sp;
	uint32_t m = 0;

	if (f == NULL)
		return -ENOMEM;
	for (uint32_t id = 0; id < v.nk; id++) {
		const struct jkey *k = &j->k[id];

		if (k->buf[0].n + k->buf[1].n + k->nw == 0)
			continue;
		z.keys++;
		z.kbytes += sli_keys_get(j->keys, id).len;
		z.wins += k->nw;
		for (int s = 0; s < 2; s++) {
			size_buf(&z, &k->buf[s], j->rsize[s], str[s]);
			for (uint32_t x = 0; x < k->nw; x++)
				size_buf(&z, &k->w[x].buf[s], j->rsize[s], str[s]);
		}
	}
	if (jimg_room(f, &z) < 0)
		return -ENOMEM; /* the image stays the operator's, to be refilled */
	ik = f->keys.p;
	ikb = f->kb.p;
	iw = f->wins.p;
	rec = f->recs.p;
	kby = f->kbytes.p;
	sp = f->strs.p;
	for (uint32_t id = 0; id < v.nk; id++) {
		const struct jkey *k = &j->k[id];
		struct sl_key key;

		if (k->buf[0].n + k->buf[1].n + k->nw == 0)
			continue;
		key = sli_keys_get(j->keys, id);
		if (key.len > 0)
			memcpy(kby, key.ptr, key.len);
		ikb[m] = (struct sl_key){ kby, key.len };
		kby += key.len;
		ik[m] = (struct jkey){ .w = iw, .nw = k->nw, .capw = k->nw };
		for (int s = 0; s < 2; s++)
			copy_buf(&ik[m].buf[s], &k->buf[s], j->rsize[s], str[s], &rec, &sp);
		for (uint32_t x = 0; x < k->nw; x++, iw++) {
			iw->start = k->w[x].start;
			iw->end = k->w[x].end;
			for (int s = 0; s < 2; s++)
				copy_buf(&iw->buf[s], &k->w[x].buf[s], j->rsize[s], str[s], &rec,
					 &sp);
		}
		m++;
	}
	v.k = ik;
	v.kb = ikb;
	v.keys = NULL;
	v.nk = m;
	f->v = v;
	sli_img_hand(&f->h);
	*out = (struct sli_ckpt_image){ &jimg_ops, f };
	return 0;
}

/* Read @n records of side @side into @b (ts order kept for the interval join). */
static int get_buf(struct sl_snap_reader *r, struct sli_join *j, unsigned side, struct jbuf *b,
		   uint32_t id, bool interval)
{
	const struct sl_type *t = j->type[side];
	uint32_t n, len, slen;
	const void *elem, *strs;
	int64_t ts;
	int rc = sl_snap_get_u32(r, &n);

	for (uint32_t i = 0; i < n && rc == 0; i++) {
		struct jrec *rec;

		rc = sl_snap_get_bytes(r, &elem, &len);
		if (rc == 0)
			rc = sl_snap_get_i64(r, &ts);
		if (rc == 0)
			rc = sl_snap_get_bytes(r, &strs, &slen);
		if (rc < 0)
			return rc;
		if (len != t->size || (t->nstr == 0 && slen != 0))
			return sl_snap_bad(r, "a join record of another size");
		for (uint32_t s = 0; s < t->nstr; s++) {
			struct sl_str str;

			memcpy(&str, (const uint8_t *)elem + t->str_off[s], sizeof(str));
			if ((uint64_t)str.off + str.len > slen)
				return sl_snap_bad(r, "a join record's string outside its block");
		}
		rec = interval ? buf_insert(b, j->rsize[side], ts) : buf_append(b, j->rsize[side]);
		if (rec == NULL)
			return -ENOMEM;
		rec->ts = ts;
		rec->slen = slen;
		rec->strs = NULL;
		memcpy(rec_elem(rec), elem, len);
		if (t->nstr > 0 && (rec->strs = malloc(slen ? slen : 1)) == NULL) {
			return -ENOMEM;
		}
		if (slen > 0)
			memcpy(rec->strs, strs, slen);
		held_add(j, side, 1);
		if (interval) {
			int64_t clean = j->rel_hi[side] > 0 ? sli_sat_add(ts, j->rel_hi[side]) : ts;

			rc = sli_timers_register(j->timers, SLI_EVENT_TIME, id,
						 (struct sli_ns){ side, ts }, clean);
			rc = rc < 0 ? rc : 0;
		}
	}
	return rc;
}

int sli_join_restore(struct sli_opi *op, struct sl_snap_reader *r)
{
	struct sli_join *j = op->join;
	int64_t wm = INT64_MAX, swm;
	bool any_kg = false;
	uint32_t sec, hdr[6];
	int rc;

	while ((rc = sl_snap_next(r, &sec)) == 1) {
		if (sec == SL_SNAP_OP) {
			rc = sl_snap_get(r, hdr, sizeof(hdr));
			if (rc == 0 && (hdr[0] != JSNAP_FORMAT || hdr[1] != j->window ||
					hdr[2] != j->type[0]->size || hdr[3] != j->type[0]->nstr ||
					hdr[4] != j->type[1]->size || hdr[5] != j->type[1]->nstr))
				rc = sl_snap_bad(r, "join state of another format, kind or types");
			if (rc < 0)
				return rc;
			continue;
		}
		rc = sl_snap_get_i64(r, &swm);
		if (rc < 0)
			return rc;
		any_kg = true;
		wm = swm < wm ? swm : wm;
		while (sl_snap_left(r) > 0) {
			const void *kb;
			uint32_t klen, nw;
			struct jkey *k;
			int64_t id;

			rc = sl_snap_get_bytes(r, &kb, &klen);
			if (rc < 0)
				return rc;
			id = sli_keys_intern(j->keys, sli_hash64(kb, klen, 0), kb, klen);
			if (id < 0)
				return (int)id;
			if ((k = key_state(j, (uint32_t)id)) == NULL)
				return -ENOMEM;
			if (!j->window) {
				for (unsigned s = 0; s < 2 && rc == 0; s++)
					rc = get_buf(r, j, s, &k->buf[s], (uint32_t)id, true);
				if (rc < 0)
					return rc;
				continue;
			}
			rc = sl_snap_get_u32(r, &nw);
			for (uint32_t x = 0; x < nw && rc == 0; x++) {
				int64_t start, end;
				struct jwin *w;

				rc = sl_snap_get_i64(r, &start);
				if (rc == 0)
					rc = sl_snap_get_i64(r, &end);
				if (rc < 0)
					return rc;
				if (end <= start || win_find(k, start, end) != NULL)
					return sl_snap_bad(
					    r, "a join window that cannot exist, or twice");
				if ((w = win_add(k, start, end)) == NULL)
					return -ENOMEM;
				for (unsigned s = 0; s < 2 && rc == 0; s++)
					rc = get_buf(r, j, s, &w->buf[s], (uint32_t)id, false);
				if (rc == 0 && end - 1 > swm)
					rc = sli_timers_register(j->timers, SLI_EVENT_TIME,
								 (uint32_t)id, win_ns(w), end - 1);
				if (rc >= 0)
					rc = sli_timers_register(j->timers, SLI_EVENT_TIME,
								 (uint32_t)id, win_ns(w),
								 win_cleanup(j, end));
				rc = rc < 0 ? rc : 0;
			}
			if (rc < 0)
				return rc;
		}
	}
	if (rc < 0)
		return rc;
	if (any_kg)
		op->watermark = wm;
	gauge_flush(j);
	return 0;
}

/* ------------------------------------------------------------ builders */

/* The length of the key @ks gives a zeroed element of @t (build-time check of key types). */
static int probe_key_len(const struct sli_keyspec *ks, const struct sl_type *t, uint32_t *len)
{
	static char empty[16];
	int64_t ts = 0;
	uint64_t kh = 0;
	struct sl_batch b;
	struct sl_key k = { NULL, 0 };
	void *elem = calloc(1, t->size);

	if (elem == NULL)
		return -ENOMEM;
	memset(&b, 0, sizeof(b));
	b.kind = SL_EVENT_DATA;
	b.n = b.cap = 1;
	b.elem_size = t->size;
	b.data = elem;
	b.ts = &ts;
	b.key = &kh;
	b.arena = empty;
	sli_key_get(ks, elem, &b, &k);
	free(elem);
	*len = k.len;
	return 0;
}

/*
 * Checks both joins share; NULL when they pass, else the handle to
 * return (poisoned, with the error recorded).
 */
static struct sl_stream *check_join(struct sl_stream *left, struct sl_stream *right,
				    const char *what, const char *name, bool ok_args,
				    const struct sl_type *out_type)
{
	struct sl_job *job = left->job;
	struct sl_stream *in[2] = { left, right };
	uint32_t len[2];

	if (left->job != right->job)
		return sli_build_fail(job, -EINVAL,
				      "%s '%s': its inputs '%s' and '%s' belong to different jobs",
				      what, name, left->node->name, right->node->name);
	if (!ok_args || out_type == NULL)
		return sli_build_fail(job, -EINVAL,
				      "%s '%s': needs a spec, a join function and an output type",
				      what, name);
	for (int s = 0; s < 2; s++)
		if (in[s]->part != SLI_PART_HASH || !sli_key_set(&in[s]->key))
			return sli_build_fail(job, -EINVAL,
					      "%s '%s': its %s input '%s' is not keyed: call "
					      "sl_key_by() on it first",
					      what, name, s ? "right" : "left", in[s]->node->name);
	for (int s = 0; s < 2; s++) {
		const struct sl_type *t = sli_stream_type(in[s]);

		if (t->size == 0 || probe_key_len(&in[s]->key, t, &len[s]) < 0)
			return sli_build_fail(job, -ENOMEM, "out of memory while building the job");
	}
	if (len[0] != len[1])
		return sli_build_fail(
		    job, -EINVAL,
		    "%s '%s': the keys of its inputs differ in type: '%s' gives "
		    "%u-byte keys, '%s' %u-byte keys; equal keys must be equal bytes",
		    what, name, left->node->name, len[0], right->node->name, len[1]);
	return NULL;
}

/* Resolve NULL and poisoned handles as one-input operators do. */
#define REQUIRE_NODES(l, r)                     \
	do {                                    \
		if ((l) == NULL || (r) == NULL) \
			return NULL;            \
		if ((l)->node == NULL)          \
			return (l);             \
		if ((r)->node == NULL)          \
			return (r);             \
	} while (0)

struct sl_stream *sl_window_join(struct sl_stream *left, struct sl_stream *right, const char *name,
				 const struct sl_window_spec *spec, sl_window_join_fn join,
				 void *arg, const struct sl_type *out_type)
{
	const char *nm = name ? name : "window_join";
	const char *bad = NULL;
	struct sl_stream *s;

	REQUIRE_NODES(left, right);
	s = check_join(left, right, "window join", nm, spec != NULL && join != NULL, out_type);
	if (s != NULL)
		return s;
	if (spec->allowed_lateness < 0)
		bad = "allowed lateness must be >= 0";
	else if (spec->kind == SL_WINDOW_TUMBLING && spec->size <= 0)
		bad = "a tumbling window needs a size > 0";
	else if (spec->kind == SL_WINDOW_SLIDING && (spec->size <= 0 || spec->slide <= 0))
		bad = "a sliding window needs a size and a slide > 0";
	else if (spec->kind == SL_WINDOW_SESSION && spec->gap <= 0)
		bad = "a session window needs a gap > 0";
	else if (spec->kind != SL_WINDOW_TUMBLING && spec->kind != SL_WINDOW_SLIDING &&
		 spec->kind != SL_WINDOW_SESSION)
		bad = "joins take tumbling, sliding or session windows";
	if (bad != NULL)
		return sli_build_fail(left->job, -EINVAL, "window join '%s': %s", nm, bad);
	s = sli_two_input(left, right, SLI_WINDOW_JOIN, name, out_type, (void (*)(void))join, arg);
	if (s != NULL && s->node != NULL)
		s->node->win = *spec;
	return s;
}

struct sl_stream *sl_interval_join(struct sl_stream *left, struct sl_stream *right,
				   const char *name, const struct sl_interval_join_spec *spec,
				   sl_interval_join_fn join, void *arg,
				   const struct sl_type *out_type)
{
	const char *nm = name ? name : "interval_join";
	struct sl_stream *s;

	REQUIRE_NODES(left, right);
	s = check_join(left, right, "interval join", nm, spec != NULL && join != NULL, out_type);
	if (s != NULL)
		return s;
	if (spec->lower > spec->upper)
		return sli_build_fail(left->job, -EINVAL,
				      "interval join '%s': lower bound %lld is above upper bound "
				      "%lld",
				      nm, (long long)spec->lower, (long long)spec->upper);
	if (spec->lower < -BOUND_MAX || spec->upper > BOUND_MAX)
		return sli_build_fail(left->job, -EINVAL,
				      "interval join '%s': bounds must lie within +-2^62 ms", nm);
	s = sli_two_input(left, right, SLI_INTERVAL_JOIN, name, out_type, (void (*)(void))join,
			  arg);
	if (s != NULL && s->node != NULL)
		s->node->ijoin = *spec;
	return s;
}

int sl_join_buffered(const struct sl_job *job, const char *op, uint64_t *left, uint64_t *right)
{
	if (job == NULL || op == NULL)
		return -EINVAL;
	for (unsigned i = 0; i < job->nnodes; i++) {
		struct sli_node *n = job->nodes[i];
		int64_t v[2];

		if ((n->kind != SLI_WINDOW_JOIN && n->kind != SLI_INTERVAL_JOIN) ||
		    strcmp(n->name, op) != 0)
			continue;
		for (int s = 0; s < 2; s++) {
			v[s] = atomic_load_explicit(&n->join_buffered[s], memory_order_relaxed);
			if (v[s] < 0)
				v[s] = 0; /* subtasks flush separately: a moment's negative sum */
		}
		if (left != NULL)
			*left = (uint64_t)v[0];
		if (right != NULL)
			*right = (uint64_t)v[1];
		return 0;
	}
	return -ENOENT;
}
