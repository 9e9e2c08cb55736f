/* SPDX-License-Identifier: Apache-2.0 */
/*
 * timers.c — the key dictionary and the timer service of a keyed
 * operator subtask (sli_timers.h).
 *
 * Keys: bytes in one arena, found by hash through an open-addressing
 * table of ids (linear probing; keys are never removed).
 *
 * Timers, per domain:
 *   set   an open-addressing table of the registered timers, keyed by
 *         (key, namespace, time), each with the sequence number of its
 *         registration; deletion by backward shift, so no tombstones;
 *   heap  a binary min-heap of (time, seq, key, namespace). An item is
 *         live when the set holds its timer with the same seq: a deleted
 *         timer's item, or one deleted and registered again, is skipped
 *         when it surfaces. When stale items outnumber live ones the heap
 *         is rebuilt from the set (amortised O(1) per delete).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_snap.h>

#include "sli_core.h"
#include "sli_timers.h"

/* --------------------------------------------------------------- keys */

struct sli_keys {
	uint64_t *hash;
	uint64_t *off;
	uint32_t *len;
	uint32_t n, cap;
	uint32_t *slot; /* id + 1, 0: empty */
	uint32_t mask;	/* slots - 1 */
	char *arena;
	uint64_t used, acap;
};

struct sli_keys *sli_keys_new(void)
{
	return calloc(1, sizeof(struct sli_keys));
}

void sli_keys_free(struct sli_keys *k)
{
	if (k == NULL)
		return;
	free(k->hash);
	free(k->off);
	free(k->len);
	free(k->slot);
	free(k->arena);
	free(k);
}

static int keys_rehash(struct sli_keys *k)
{
	uint32_t nslots = k->slot ? (k->mask + 1) * 2 : 64;
	uint32_t *s = calloc(nslots, sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	for (uint32_t id = 0; id < k->n; id++) {
		uint32_t i = (uint32_t)k->hash[id] & (nslots - 1);

		while (s[i])
			i = (i + 1) & (nslots - 1);
		s[i] = id + 1;
	}
	free(k->slot);
	k->slot = s;
	k->mask = nslots - 1;
	return 0;
}

static int keys_grow(struct sli_keys *k, uint32_t len)
{
	if (k->n == k->cap) {
		uint32_t ncap = k->cap ? k->cap * 2 : 64;
		uint64_t *h = realloc(k->hash, ncap * sizeof(*h));

		if (h == NULL)
			return -ENOMEM;
		k->hash = h;
		h = realloc(k->off, ncap * sizeof(*h));
		if (h == NULL)
			return -ENOMEM;
		k->off = h;
		uint32_t *l = realloc(k->len, ncap * sizeof(*l));

		if (l == NULL)
			return -ENOMEM;
		k->len = l;
		k->cap = ncap;
	}
	if (k->used + len > k->acap) {
		uint64_t ncap = k->acap ? k->acap * 2 : 4096;
		char *a;

		while (ncap < k->used + len)
			ncap *= 2;
		a = realloc(k->arena, ncap);
		if (a == NULL)
			return -ENOMEM;
		k->arena = a;
		k->acap = ncap;
	}
	/* Load factor at most 1/2. */
	if (k->slot == NULL || (uint64_t)(k->n + 1) * 2 > (uint64_t)k->mask + 1)
		return keys_rehash(k);
	return 0;
}

int64_t sli_keys_intern(struct sli_keys *k, uint64_t hash, const void *p, uint32_t len)
{
	uint32_t i, id;
	int rc;

	if (k->slot != NULL) {
		for (i = (uint32_t)hash & k->mask; k->slot[i]; i = (i + 1) & k->mask) {
			id = k->slot[i] - 1;
			if (k->hash[id] == hash && k->len[id] == len &&
			    (len == 0 || memcmp(k->arena + k->off[id], p, len) == 0))
				return id;
		}
	}
	rc = keys_grow(k, len);
	if (rc < 0)
		return rc;
	id = k->n++;
	k->hash[id] = hash;
	k->off[id] = k->used;
	k->len[id] = len;
	if (len)
		memcpy(k->arena + k->used, p, len);
	k->used += len;
	for (i = (uint32_t)hash & k->mask; k->slot[i]; i = (i + 1) & k->mask)
		;
	k->slot[i] = id + 1;
	return id;
}

struct sl_key sli_keys_get(const struct sli_keys *k, uint32_t id)
{
	struct sl_key key = { k->arena + k->off[id], k->len[id] };

	return key;
}

uint64_t sli_keys_hash(const struct sli_keys *k, uint32_t id)
{
	return k->hash[id];
}

uint32_t sli_keys_count(const struct sli_keys *k)
{
	return k->n;
}

/* ------------------------------------------------------------- timers */

struct tset_ent {
	int64_t time;
	struct sli_ns ns;
	uint64_t seq; /* 0: empty slot */
	uint32_t key;
};

struct theap_item {
	int64_t time;
	uint64_t seq;
	struct sli_ns ns;
	uint32_t key;
};

struct tdomain {
	struct tset_ent *set;
	uint32_t mask; /* slots - 1, or 0 before the first timer */
	size_t live;
	struct theap_item *heap;
	size_t nheap, capheap;
};

struct sli_timers {
	struct tdomain d[2];
	uint64_t seq; /* last registration's number (starts at 1) */
};

struct sli_timers *sli_timers_new(void)
{
	return calloc(1, sizeof(struct sli_timers));
}

void sli_timers_free(struct sli_timers *t)
{
	if (t == NULL)
		return;
	for (int i = 0; i < 2; i++) {
		free(t->d[i].set);
		free(t->d[i].heap);
	}
	free(t);
}

static uint32_t tset_home(uint32_t key, struct sli_ns ns, int64_t time, uint32_t mask)
{
	uint64_t h = sli_fmix64((uint64_t)time * 0x9e3779b97f4a7c15ull ^ key) ^
		     sli_fmix64((uint64_t)ns.a + 0x632be59bd9b4e019ull) ^
		     sli_fmix64((uint64_t)ns.b ^ 0xbf58476d1ce4e5b9ull);

	return (uint32_t)h & mask;
}

static bool tset_match(const struct tset_ent *e, uint32_t key, struct sli_ns ns, int64_t time)
{
	return e->seq && e->key == key && e->time == time && e->ns.a == ns.a && e->ns.b == ns.b;
}

/* Slot of the timer, or of the empty slot where it would go. */
static uint32_t tset_find(const struct tdomain *d, uint32_t key, struct sli_ns ns, int64_t time)
{
	uint32_t i = tset_home(key, ns, time, d->mask);

	while (d->set[i].seq && !tset_match(&d->set[i], key, ns, time))
		i = (i + 1) & d->mask;
	return i;
}

static int tset_grow(struct tdomain *d)
{
	uint32_t nslots = d->set ? (d->mask + 1) * 2 : 64;
	struct tset_ent *s = calloc(nslots, sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	for (uint32_t j = 0; d->set && j <= d->mask; j++) {
		const struct tset_ent *e = &d->set[j];
		uint32_t i;

		if (!e->seq)
			continue;
		i = tset_home(e->key, e->ns, e->time, nslots - 1);
		while (s[i].seq)
			i = (i + 1) & (nslots - 1);
		s[i] = *e;
	}
	free(d->set);
	d->set = s;
	d->mask = nslots - 1;
	return 0;
}

/* Remove slot @i by backward shift: later entries of its probe run move up. */
static void tset_remove_at(struct tdomain *d, uint32_t i)
{
	uint32_t j = i;

	for (;;) {
		uint32_t home;

		j = (j + 1) & d->mask;
		if (!d->set[j].seq)
			break;
		home = tset_home(d->set[j].key, d->set[j].ns, d->set[j].time, d->mask);
		/* Entry j may fill the hole at i unless its home lies in (i, j]. */
		if (((j - home) & d->mask) >= ((j - i) & d->mask)) {
			d->set[i] = d->set[j];
			i = j;
		}
	}
	d->set[i].seq = 0;
	d->live--;
}

static bool item_less(const struct theap_item *a, const struct theap_item *b)
{
	return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static void heap_up(struct theap_item *h, size_t i)
{
	struct theap_item x = h[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (!item_less(&x, &h[p]))
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = x;
}

static void heap_down(struct theap_item *h, size_t n, size_t i)
{
	struct theap_item x = h[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && item_less(&h[c + 1], &h[c]))
			c++;
		if (!item_less(&h[c], &x))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = x;
}

static bool item_live(const struct tdomain *d, const struct theap_item *it)
{
	uint32_t i;

	if (d->live == 0)
		return false;
	i = tset_find(d, it->key, it->ns, it->time);
	return d->set[i].seq == it->seq;
}

/* Rebuild the heap from the set: drops every stale item. */
static void heap_rebuild(struct tdomain *d)
{
	size_t n = 0;

	for (uint32_t j = 0; d->set && j <= d->mask; j++) {
		const struct tset_ent *e = &d->set[j];

		if (e->seq)
			d->heap[n++] = (struct theap_item){ e->time, e->seq, e->ns, e->key };
	}
	d->nheap = n;
	for (size_t i = n / 2; i-- > 0;)
		heap_down(d->heap, n, i);
}

int sli_timers_register(struct sli_timers *t, enum sli_domain dom, uint32_t key, struct sli_ns ns,
			int64_t time)
{
	struct tdomain *d = &t->d[dom];
	uint32_t i;

	if (d->set == NULL || (d->live + 1) * 2 > (size_t)d->mask + 1) {
		if (tset_grow(d) < 0)
			return -ENOMEM;
	}
	i = tset_find(d, key, ns, time);
	if (d->set[i].seq)
		return 0;
	if (d->nheap == d->capheap) {
		size_t ncap = d->capheap ? d->capheap * 2 : 64;
		struct theap_item *h = realloc(d->heap, ncap * sizeof(*h));

		if (h == NULL)
			return -ENOMEM;
		d->heap = h;
		d->capheap = ncap;
	}
	t->seq++;
	d->set[i] = (struct tset_ent){ time, ns, t->seq, key };
	d->live++;
	d->heap[d->nheap] = (struct theap_item){ time, t->seq, ns, key };
	heap_up(d->heap, d->nheap++);
	return 1;
}

int sli_timers_delete(struct sli_timers *t, enum sli_domain dom, uint32_t key, struct sli_ns ns,
		      int64_t time)
{
	struct tdomain *d = &t->d[dom];
	uint32_t i;

	if (d->live == 0)
		return 0;
	i = tset_find(d, key, ns, time);
	if (!d->set[i].seq)
		return 0;
	tset_remove_at(d, i);
	/* Stale items are at most half the heap (plus a little slack). */
	if (d->nheap > 2 * d->live + 64)
		heap_rebuild(d);
	return 1;
}

int sli_timers_exists(const struct sli_timers *t, enum sli_domain dom, uint32_t key,
		      struct sli_ns ns, int64_t time)
{
	const struct tdomain *d = &t->d[dom];

	return d->live && d->set[tset_find(d, key, ns, time)].seq != 0;
}

/* Drop stale items off the top; return the live top or NULL. */
static const struct theap_item *heap_top(struct tdomain *d)
{
	while (d->nheap > 0) {
		if (item_live(d, &d->heap[0]))
			return &d->heap[0];
		d->heap[0] = d->heap[--d->nheap];
		if (d->nheap)
			heap_down(d->heap, d->nheap, 0);
	}
	return NULL;
}

int sli_timers_pop(struct sli_timers *t, enum sli_domain dom, int64_t upto, struct sli_timer *out)
{
	struct tdomain *d = &t->d[dom];
	const struct theap_item *top = heap_top(d);

	if (top == NULL || top->time > upto)
		return 0;
	out->time = top->time;
	out->key = top->key;
	out->ns = top->ns;
	tset_remove_at(d, tset_find(d, top->key, top->ns, top->time));
	d->heap[0] = d->heap[--d->nheap];
	if (d->nheap)
		heap_down(d->heap, d->nheap, 0);
	return 1;
}

int64_t sli_timers_next(struct sli_timers *t, enum sli_domain dom)
{
	const struct theap_item *top = heap_top(&t->d[dom]);

	return top ? top->time : INT64_MAX;
}

size_t sli_timers_count(const struct sli_timers *t, enum sli_domain dom)
{
	return t->d[dom].live;
}

static int seq_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct tset_ent *)a)->seq, y = ((const struct tset_ent *)b)->seq;

	return x < y ? -1 : x > y;
}

int sli_timers_list(const struct sli_timers *t, enum sli_domain d, struct sli_timer **out,
		    size_t *n)
{
	const struct tdomain *dm = &t->d[d];
	struct tset_ent *e;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	if (dm->live == 0)
		return 0;
	e = malloc(dm->live * sizeof(*e));
	*out = malloc(dm->live * sizeof(**out));
	if (e == NULL || *out == NULL) {
		free(e);
		free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	for (uint32_t j = 0; j <= dm->mask && k < dm->live; j++)
		if (dm->set[j].seq)
			e[k++] = dm->set[j];
	qsort(e, k, sizeof(*e), seq_cmp);
	for (size_t i = 0; i < k; i++)
		(*out)[i] = (struct sli_timer){ .time = e[i].time, .key = e[i].key, .ns = e[i].ns };
	free(e);
	*n = k;
	return 0;
}

int sli_timer_rec_put(struct sl_snap_writer *w, uint32_t dom, uint32_t pos,
		      const struct sli_timer *t)
{
	int rc = sl_snap_put_u32(w, dom);

	rc = rc < 0 ? rc : sl_snap_put_u32(w, pos);
	rc = rc < 0 ? rc : sl_snap_put_i64(w, t->time);
	rc = rc < 0 ? rc : sl_snap_put_i64(w, t->ns.a);
	return rc < 0 ? rc : sl_snap_put_i64(w, t->ns.b);
}

int sli_timer_recs_add(struct sli_timer_recs *rs, struct sl_snap_reader *r, uint32_t key)
{
	struct sli_timer_rec *g;
	int rc;

	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? 2 * rs->cap : 256;

		g = realloc(rs->v, cap * sizeof(*g));
		if (g == NULL)
			return -ENOMEM;
		rs->v = g;
		rs->cap = cap;
	}
	g = &rs->v[rs->n];
	g->t.key = key;
	rc = sl_snap_get_u32(r, &g->dom);
	rc = rc < 0 ? rc : sl_snap_get_u32(r, &g->pos);
	rc = rc < 0 ? rc : sl_snap_get_i64(r, &g->t.time);
	rc = rc < 0 ? rc : sl_snap_get_i64(r, &g->t.ns.a);
	rc = rc < 0 ? rc : sl_snap_get_i64(r, &g->t.ns.b);
	if (rc == 0 && g->dom > SLI_PROC_TIME)
		rc = sl_snap_bad(r, "a timer of an unknown domain");
	if (rc == 0)
		rs->n++;
	return rc;
}

static int rec_cmp(const void *a, const void *b)
{
	const struct sli_timer_rec *x = a, *y = b;

	if (x->dom != y->dom)
		return x->dom < y->dom ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

int sli_timer_recs_register(struct sli_timer_recs *rs, struct sli_timers *t, int64_t *first_proc)
{
	int rc = 0;

	*first_proc = INT64_MAX;
	if (rs->n > 0)
		qsort(rs->v, rs->n, sizeof(*rs->v), rec_cmp);
	for (size_t i = 0; i < rs->n && rc >= 0; i++) {
		const struct sli_timer_rec *g = &rs->v[i];

		rc = sli_timers_register(t, (enum sli_domain)g->dom, g->t.key, g->t.ns, g->t.time);
		if (rc > 0 && g->dom == SLI_PROC_TIME && g->t.time < *first_proc)
			*first_proc = g->t.time;
	}
	free(rs->v);
	*rs = (struct sli_timer_recs){ 0 };
	return rc < 0 ? rc : 0;
}
