/* SPDX-License-Identifier: Apache-2.0 */
/*
 * table.c — the per-task keyed-state hash table (see sli_state.h).
 *
 * Layout. Open addressing with linear probing over an array of 16-byte
 * slots {64-bit slot hash, entry pointer}; the entry (header, key,
 * namespace, value) lives out of line in the table's slab. The slot hash
 * mixes the caller's key hash with the state id and the namespace, so the
 * windows of one key spread over the table; a probe compares stored
 * hashes and dereferences an entry only on a hash match. Deletion shifts
 * the rest of the cluster back (no tombstones in the live array). The
 * slot array is made of 64 KiB segments, so that it can be zeroed and
 * freed a piece at a time.
 *
 * Incremental resize. Past 3/4 load (or below 1/8: shrink) a new array is
 * allocated (only its segment index) and then every operation does one
 * bounded step before its own work:
 *   ZEROING    zero SLI_TABLE_ZERO_SLOTS slots of the new array (fresh
 *              pages are touched here, a page per operation); inserts
 *              still go to the current array, which cannot fill up
 *              meanwhile (zeroing 2C slots takes C/128 operations);
 *   MIGRATING  the new array takes inserts; the old one is drained in
 *              slot order starting from one of its empty slots
 *              (mig_start), SLI_TABLE_MIGRATE_SLOTS slots per operation,
 *              and each fully drained 64 KiB segment is freed at once.
 * Lookups search the new array, then the old one from its first
 * undrained slot: because mig_start was empty, no probe sequence wraps
 * across it, so an entry still in the old array is reachable from
 * max(home, first undrained). Removing from the old array leaves a
 * tombstone (its probe sequences must stay intact until it is freed).
 * So no operation ever zeroes, copies or frees more than a constant
 * amount, however big the table (the doubling of a plain table is a
 * multi-millisecond pause at a few million entries).
 *
 * Namespaces. clear() removes every namespace of a key, which hashing by
 * namespace scatters. So the namespaced entries of one (state, key) are
 * linked in a ring through an "anchor" entry (keyed by state and key,
 * found by its own slot hash); entries without a namespace need no ring.
 *
 * Key groups. Each entry records its key group; the table keeps a count
 * per group. A snapshot groups entries with one counting-sort pass
 * (sli_table_partition), as Flink's heap backend does, instead of keeping
 * per-group lists (16 more bytes per entry, and a structure a
 * copy-on-write snapshot would have to freeze).
 *
 * Threads: the owning task's only. Pointers to values stay valid until
 * the next put/remove/clear/cleanup: resize steps move slots, never
 * entries.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <sluice/sl_alloc.h>
#include <sluice/sl_common.h>

#include "sli_core.h"
#include "sli_state.h"

#define SEG_SHIFT 12 /* 4096 slots = 64 KiB per segment */
#define SEG_SLOTS ((size_t)1 << SEG_SHIFT)
#define SEG_MASK  (SEG_SLOTS - 1)
#define MIN_CAP	  64
#define CHUNK	  32 /* keys per prefetch round in lookup_batch */

#define F_LINKED 1u /* has a ring after the header: namespaced entry or anchor */
#define F_ANCHOR 2u /* head of the ring of one (state, key)'s namespaced entries */

#define ANCHOR_TAG 0xa5c4e1b3d2f09687ull /* makes an anchor's slot hash differ */

struct sli_entry {
	int64_t expiry;
	uint32_t key_len;
	uint32_t val_len;
	uint16_t ns_len;
	uint16_t state_id;
	uint16_t kg;
	uint8_t cls; /* slab class of this block */
	uint8_t flags;
	/* [struct ring if F_LINKED] key, namespace, pad to 8, value */
};

struct ring {
	struct sli_entry *prev, *next;
};

struct slot {
	uint64_t hash;
	struct sli_entry *e; /* NULL: empty; TOMB: removed from a draining array */
};

_Static_assert(sizeof(struct sli_entry) == 24, "entry header is 24 bytes");
_Static_assert(sizeof(struct slot) == 16, "four slots per cache line");
_Static_assert(SLI_TABLE_MAX_PARALLELISM - 1 <= UINT16_MAX, "key group fits the header");

struct stab {
	struct slot **seg; /* nseg segments of min(cap, SEG_SLOTS) slots */
	size_t cap, mask;
	size_t used; /* live slots (entries and anchors) */
	size_t nseg;
};

enum { IDLE, ZEROING, MIGRATING };

struct sli_table {
	struct stab tab;  /* lookups start here; inserts go here */
	struct stab old;  /* MIGRATING: being drained */
	struct stab next; /* ZEROING: being zeroed */
	int phase;
	size_t zeroed;	  /* ZEROING: slots of next zeroed */
	size_t mig_start; /* MIGRATING: an empty slot of old, where draining began */
	size_t mig_done;  /* MIGRATING: slots of old drained */
	size_t cursor;	  /* TTL cleanup position in tab */
	size_t count;	  /* entries, anchors excluded */
	size_t anchors;
	size_t mem; /* bytes of slot arrays and indexes */
	uint64_t mods;
	struct sli_slab slab;
	const struct sl_allocator *a;
	unsigned maxp, kg_first, nkg;
	bool maxp_pow2;
	size_t *kg_count; /* [nkg] */
	struct sli_table_stats st;
};

struct sli_table_part {
	const struct sl_allocator *a;
	const struct sli_table *t;
	uint64_t mods; /* t->mods when built */
	unsigned kg_first, nkg;
	size_t *off; /* [nkg + 1]: group g is ents[off[g], off[g + 1]) */
	const struct sli_entry **ents;
};

/* Where an entry's slot is. */
struct loc {
	struct slot *s;
	size_t i;
	bool old;
};

static char tomb_mark;
#define TOMB ((struct sli_entry *)(void *)&tomb_mark)

/* -------------------------------------------------------------- entries */

static inline size_t align8(size_t x)
{
	return (x + 7) & ~(size_t)7;
}

static inline size_t data_off(unsigned flags)
{
	return sizeof(struct sli_entry) + ((flags & F_LINKED) ? sizeof(struct ring) : 0);
}

static inline unsigned char *ekey(const struct sli_entry *e)
{
	return (unsigned char *)e + data_off(e->flags);
}

static inline unsigned char *ens(const struct sli_entry *e)
{
	return ekey(e) + e->key_len;
}

static inline size_t val_off(const struct sli_entry *e)
{
	return align8(data_off(e->flags) + e->key_len + e->ns_len);
}

static inline unsigned char *eval(const struct sli_entry *e)
{
	return (unsigned char *)e + val_off(e);
}

static inline struct ring *ering(struct sli_entry *e)
{
	return (struct ring *)(e + 1);
}

/* Keys are mostly short: compare up to 16 bytes with two overlapping word loads. */
static inline bool bytes_eq(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	uint64_t x0, y0, x1, y1;

	if (n >= 8 && n <= 16) {
		memcpy(&x0, x, 8);
		memcpy(&y0, y, 8);
		memcpy(&x1, x + n - 8, 8);
		memcpy(&y1, y + n - 8, 8);
		return ((x0 ^ y0) | (x1 ^ y1)) == 0;
	}
	return n == 0 || memcmp(a, b, n) == 0;
}

static inline bool match(const struct sli_entry *e, const struct sli_skey *k, unsigned kind)
{
	return e->state_id == k->state_id && e->key_len == k->key_len && e->ns_len == k->ns_len &&
	       (e->flags & F_ANCHOR) == kind && bytes_eq(ekey(e), k->key, k->key_len) &&
	       bytes_eq(ens(e), k->ns, k->ns_len);
}

/* The slot hash of (key hash, state, namespace); @tag tells anchors apart. */
static inline uint64_t mix(uint64_t key_hash, uint16_t state_id, const void *ns, size_t ns_len,
			   uint64_t tag)
{
	uint64_t h = key_hash ^ tag ^ ((uint64_t)state_id + 1) * 0x9e3779b97f4a7c15ull;

	return ns_len ? sli_hash64(ns, ns_len, h) : sli_fmix64(h);
}

static inline uint64_t key_slot_hash(const struct sli_skey *k)
{
	return mix(k->hash, k->state_id, k->ns, k->ns_len, 0);
}

static inline unsigned key_group(const struct sli_table *t, uint64_t hash)
{
	return t->maxp_pow2 ? (unsigned)(hash & (t->maxp - 1)) : (unsigned)(hash % t->maxp);
}

/* ---------------------------------------------------------- slot arrays */

static inline struct slot *slot_at(const struct stab *st, size_t i)
{
	return &st->seg[i >> SEG_SHIFT][i & SEG_MASK];
}

static inline size_t seg_slots(const struct stab *st)
{
	return st->cap < SEG_SLOTS ? st->cap : SEG_SLOTS;
}

/* The segment index of an array of @cap slots; segments are added later. */
static int stab_index(struct sli_table *t, struct stab *st, size_t cap)
{
	memset(st, 0, sizeof(*st));
	st->nseg = cap > SEG_SLOTS ? cap >> SEG_SHIFT : 1;
	st->seg = sl_alloc_aligned(t->a, st->nseg * sizeof(*st->seg), SL_CACHE_LINE);
	if (st->seg == NULL)
		return -ENOMEM;
	st->cap = cap;
	st->mask = cap - 1;
	t->mem += st->nseg * sizeof(*st->seg);
	return 0;
}

/* Free the first @nvalid segments (those not NULL) and the index. */
static void stab_free(struct sli_table *t, struct stab *st, size_t nvalid)
{
	if (st->seg != NULL) {
		for (size_t k = 0; k < nvalid; k++) {
			if (st->seg[k] != NULL) {
				sl_alloc_free(t->a, st->seg[k]);
				t->mem -= seg_slots(st) * sizeof(struct slot);
			}
		}
		sl_alloc_free(t->a, st->seg);
		t->mem -= st->nseg * sizeof(*st->seg);
	}
	memset(st, 0, sizeof(*st));
}

static struct slot *tab_find(const struct stab *st, uint64_t h, const struct sli_skey *k,
			     unsigned kind, size_t *idx)
{
	size_t i = h & st->mask;

	for (;;) {
		struct slot *s = slot_at(st, i);

		if (s->e == NULL)
			return NULL;
		if (s->hash == h && match(s->e, k, kind)) {
			*idx = i;
			return s;
		}
		i = (i + 1) & st->mask;
	}
}

/* Where a probe of the draining array starts: its home, or the first undrained slot. */
static inline size_t old_start(const struct sli_table *t, uint64_t h)
{
	size_t i = h & t->old.mask;

	if (((i - t->mig_start) & t->old.mask) < t->mig_done)
		i = (t->mig_start + t->mig_done) & t->old.mask;
	return i;
}

static struct slot *old_find(const struct sli_table *t, uint64_t h, const struct sli_skey *k,
			     unsigned kind, size_t *idx)
{
	const struct stab *o = &t->old;
	size_t i = old_start(t, h);

	for (;;) {
		struct slot *s = slot_at(o, i);

		if (s->e == NULL)
			return NULL;
		if (s->e != TOMB && s->hash == h && match(s->e, k, kind)) {
			*idx = i;
			return s;
		}
		i = (i + 1) & o->mask;
		if (i == t->mig_start) /* drained, and was empty: no cluster crosses it */
			return NULL;
	}
}

static bool find(const struct sli_table *t, uint64_t h, const struct sli_skey *k, unsigned kind,
		 struct loc *l)
{
	l->s = tab_find(&t->tab, h, k, kind, &l->i);
	l->old = false;
	if (l->s == NULL && t->phase == MIGRATING) {
		l->s = old_find(t, h, k, kind, &l->i);
		l->old = true;
	}
	return l->s != NULL;
}

/* The slot holding @e, whose slot hash is @h. */
static bool find_ptr(const struct sli_table *t, uint64_t h, const struct sli_entry *e,
		     struct loc *l)
{
	size_t i = h & t->tab.mask;
	struct slot *s;

	while ((s = slot_at(&t->tab, i))->e != NULL) {
		if (s->e == e) {
			*l = (struct loc){ .s = s, .i = i, .old = false };
			return true;
		}
		i = (i + 1) & t->tab.mask;
	}
	if (t->phase != MIGRATING)
		return false;
	i = old_start(t, h);
	while ((s = slot_at(&t->old, i))->e != NULL) {
		if (s->e == e) {
			*l = (struct loc){ .s = s, .i = i, .old = true };
			return true;
		}
		i = (i + 1) & t->old.mask;
		if (i == t->mig_start)
			break;
	}
	return false;
}

static void tab_insert(struct stab *st, uint64_t h, struct sli_entry *e)
{
	size_t i = h & st->mask;
	struct slot *s;

	while ((s = slot_at(st, i))->e != NULL)
		i = (i + 1) & st->mask;
	s->hash = h;
	s->e = e;
	st->used++;
}

/* Backward-shift deletion: pull each later entry of the cluster that may move. */
static void tab_delete(struct stab *st, size_t i)
{
	size_t j = i;

	for (;;) {
		struct slot *sj;

		j = (j + 1) & st->mask;
		sj = slot_at(st, j);
		if (sj->e == NULL)
			break;
		/* sj may fill i unless its home lies cyclically in (i, j]. */
		if (((j - sj->hash) & st->mask) >= ((j - i) & st->mask)) {
			*slot_at(st, i) = *sj;
			i = j;
		}
	}
	slot_at(st, i)->e = NULL;
	st->used--;
}

static void slot_delete(struct sli_table *t, const struct loc *l)
{
	if (l->old) {
		l->s->e = TOMB;
		t->old.used--;
	} else {
		tab_delete(&t->tab, l->i);
	}
}

/* --------------------------------------------------------------- resize */

static void resize_start(struct sli_table *t, size_t cap)
{
	if (stab_index(t, &t->next, cap) < 0) {
		t->st.alloc_failures++;
		return;
	}
	t->zeroed = 0;
	t->phase = ZEROING;
}

static void migration_begin(struct sli_table *t)
{
	size_t i = 0;

	t->old = t->tab;
	t->tab = t->next;
	memset(&t->next, 0, sizeof(t->next));
	/* Never full (at most 7/8 used), and clusters are short at 3/4 load. */
	while (slot_at(&t->old, i)->e != NULL)
		i = (i + 1) & t->old.mask;
	t->mig_start = i;
	t->mig_done = 0;
	t->cursor = 0;
	t->phase = MIGRATING;
}

static void zero_step(struct sli_table *t)
{
	struct stab *n = &t->next;
	size_t per = seg_slots(n), k = t->zeroed >> SEG_SHIFT, off = t->zeroed & SEG_MASK, cnt;

	if (off == 0) {
		n->seg[k] = sl_alloc_aligned(t->a, per * sizeof(struct slot), SL_CACHE_LINE);
		if (n->seg[k] == NULL) {
			t->st.alloc_failures++; /* retried by the next operation */
			return;
		}
		t->mem += per * sizeof(struct slot);
	}
	cnt = per - off < SLI_TABLE_ZERO_SLOTS ? per - off : SLI_TABLE_ZERO_SLOTS;
	memset(&n->seg[k][off], 0, cnt * sizeof(struct slot));
	t->zeroed += cnt;
	t->st.last_op_zeroed = cnt;
	if (cnt > t->st.max_op_zeroed)
		t->st.max_op_zeroed = cnt;
	if (t->zeroed == n->cap)
		migration_begin(t);
}

/* Free the segment of old holding slot @i once draining has passed all of it. */
static void release_segment(struct sli_table *t, size_t i)
{
	struct stab *o = &t->old;
	size_t k = i >> SEG_SHIFT;

	if (o->nseg == 1)
		return;
	/* The first segment is drained last when draining began inside it. */
	if (k == t->mig_start >> SEG_SHIFT && (t->mig_start & SEG_MASK) != 0)
		return;
	sl_alloc_free(t->a, o->seg[k]);
	o->seg[k] = NULL;
	t->mem -= SEG_SLOTS * sizeof(struct slot);
}

static void migrate_step(struct sli_table *t)
{
	struct stab *o = &t->old;
	size_t n;

	for (n = 0; n < SLI_TABLE_MIGRATE_SLOTS && t->mig_done < o->cap; n++, t->mig_done++) {
		size_t i = (t->mig_start + t->mig_done) & o->mask;
		struct slot *s;

		if ((i & SEG_MASK) == 0 && t->mig_done > 0)
			release_segment(t, (i - 1) & o->mask);
		s = slot_at(o, i);
		if (s->e != NULL && s->e != TOMB) {
			tab_insert(&t->tab, s->hash, s->e);
			o->used--;
		}
	}
	t->st.last_op_migrated = n;
	t->st.total_migrated += n;
	if (n > t->st.max_op_migrated)
		t->st.max_op_migrated = n;
	if (t->mig_done == o->cap) {
		SL_ASSERT(o->used == 0);
		stab_free(t, o, o->nseg);
		t->phase = IDLE;
		t->st.resizes++;
	}
}

/* One bounded step of resize work; every operation starts with it. */
static inline void step(struct sli_table *t)
{
	if (sl_likely(t->phase == IDLE))
		return;
	if (t->phase == ZEROING)
		zero_step(t);
	else
		migrate_step(t);
}

static void maybe_grow(struct sli_table *t, size_t more)
{
	if (t->phase == IDLE && t->tab.used + more > t->tab.cap / 4 * 3)
		resize_start(t, t->tab.cap * 2);
}

/*
 * Shrink below 1/8 load. The new array must also hold what can be
 * inserted until migration ends: at most cap/512 + cap/64 operations, two
 * slots each (an entry and its anchor). Sized for used + cap/32 at half
 * load, it ends at most 1/2 + 1/16 full. (Growing: at most 0.76 + 1/32 of
 * the old capacity lands in twice the slots.)
 */
static void maybe_shrink(struct sli_table *t)
{
	size_t want, cap = MIN_CAP;

	if (t->phase != IDLE || t->tab.cap <= MIN_CAP || t->tab.used >= t->tab.cap / 8)
		return;
	want = 2 * (t->tab.used + t->tab.cap / 32 + 1);
	while (cap < want)
		cap <<= 1;
	if (cap < t->tab.cap)
		resize_start(t, cap);
}

/* Room for @more slots in the array inserts go to (hard limit 7/8). */
static inline bool has_room(const struct sli_table *t, size_t more)
{
	return t->tab.used + more <= t->tab.cap - t->tab.cap / 8;
}

/* ------------------------------------------------------------ lifecycle */

int sli_table_create(const struct sl_allocator *a, unsigned max_parallelism, unsigned kg_first,
		     unsigned kg_last, struct sli_table **out)
{
	struct sli_table *t;

	if (out == NULL || max_parallelism == 0 || max_parallelism > SLI_TABLE_MAX_PARALLELISM ||
	    kg_first > kg_last || kg_last >= max_parallelism)
		return -EINVAL;
	if (a == NULL)
		a = sl_alloc_default();
	t = sl_alloc_aligned(a, sizeof(*t), SL_CACHE_LINE);
	if (t == NULL)
		return -ENOMEM;
	memset(t, 0, sizeof(*t));
	t->a = a;
	sli_slab_init(&t->slab, a);
	t->maxp = max_parallelism;
	t->maxp_pow2 = SL_IS_POW2(max_parallelism);
	t->kg_first = kg_first;
	t->nkg = kg_last - kg_first + 1;
	t->kg_count = sl_alloc_aligned(a, t->nkg * sizeof(size_t), SL_CACHE_LINE);
	if (t->kg_count == NULL || stab_index(t, &t->tab, MIN_CAP) < 0)
		goto nomem;
	memset(t->kg_count, 0, t->nkg * sizeof(size_t));
	t->tab.seg[0] = sl_alloc_aligned(a, MIN_CAP * sizeof(struct slot), SL_CACHE_LINE);
	if (t->tab.seg[0] == NULL)
		goto nomem;
	memset(t->tab.seg[0], 0, MIN_CAP * sizeof(struct slot));
	t->mem += MIN_CAP * sizeof(struct slot);
	*out = t;
	return 0;
nomem:
	sli_table_destroy(t);
	return -ENOMEM;
}

void sli_table_destroy(struct sli_table *t)
{
	if (t == NULL)
		return;
	sli_slab_fini(&t->slab); /* every entry */
	stab_free(t, &t->tab, t->tab.nseg);
	stab_free(t, &t->old, t->old.nseg);
	if (t->next.seg != NULL)
		stab_free(t, &t->next, (t->zeroed + SEG_SLOTS - 1) >> SEG_SHIFT);
	sl_alloc_free(t->a, t->kg_count);
	sl_alloc_free(t->a, t);
}

/* --------------------------------------------------------------- lookup */

static inline const void *found(struct sli_entry *e, int64_t now, int64_t touch, uint32_t *len)
{
	if (e->expiry <= now)
		return NULL;
	if (touch != SLI_TTL_KEEP)
		e->expiry = touch;
	if (len != NULL)
		*len = e->val_len;
	return eval(e);
}

const void *sli_table_get(struct sli_table *t, const struct sli_skey *k, int64_t now, int64_t touch,
			  uint32_t *len)
{
	struct loc l;

	SL_ASSERT(t != NULL && k != NULL);
	step(t);
	if (!find(t, key_slot_hash(k), k, 0, &l))
		return NULL;
	return found(l.s->e, now, touch, len);
}

/* The first live entry of the array inserts go to with slot hash @h, or NULL. */
static inline struct sli_entry *probe_hash(const struct stab *st, uint64_t h)
{
	size_t i = h & st->mask;
	struct slot *s;

	while ((s = slot_at(st, i))->e != NULL) {
		if (s->hash == h)
			return s->e;
		i = (i + 1) & st->mask;
	}
	return NULL;
}

int sli_table_lookup_batch(struct sli_table *t, unsigned n, const struct sli_skey *keys,
			   int64_t now, int64_t touch, struct sli_lookup *out)
{
	uint64_t h[CHUNK];
	struct sli_entry *cand[CHUNK];
	unsigned m;
	int hits = 0;

	if (n == 0)
		return 0;
	if (t == NULL || keys == NULL || out == NULL)
		return -EINVAL;
	step(t);
	for (unsigned base = 0; base < n; base += m) {
		const struct sli_skey *k = keys + base;

		m = n - base < CHUNK ? n - base : CHUNK;
		for (unsigned j = 0; j < m; j++) {
			h[j] = key_slot_hash(&k[j]);
			__builtin_prefetch(slot_at(&t->tab, h[j] & t->tab.mask));
		}
		for (unsigned j = 0; j < m; j++) {
			cand[j] = probe_hash(&t->tab, h[j]);
			if (cand[j] != NULL) {
				__builtin_prefetch(cand[j]);
				__builtin_prefetch((char *)cand[j] + SL_CACHE_LINE - 1);
			}
		}
		for (unsigned j = 0; j < m; j++) {
			struct sli_entry *e = cand[j];
			struct sli_lookup *o = &out[base + j];
			struct loc l;

			/* A hash match of another key is a 2^-64 event, but possible. */
			if (e == NULL ? t->phase == MIGRATING : !match(e, &k[j], 0))
				e = find(t, h[j], &k[j], 0, &l) ? l.s->e : NULL;
			o->value = e != NULL ? found(e, now, touch, &o->len) : NULL;
			if (o->value == NULL)
				o->len = 0;
			else
				hits++;
		}
	}
	return hits;
}

/* --------------------------------------------------------------- update */

static int check_key(const struct sli_table *t, const struct sli_skey *k)
{
	if (t == NULL || k == NULL || (k->key_len != 0 && k->key == NULL) ||
	    (k->ns_len != 0 && k->ns == NULL))
		return -EINVAL;
	if (k->key_len > SLI_STATE_KEY_MAX)
		return -E2BIG;
	return 0;
}

/* Replace @l's value; reallocate when it does not fit or would waste half. */
static int update(struct sli_table *t, const struct loc *l, const void *value, uint32_t len,
		  int64_t expiry)
{
	struct sli_entry *e = l->s->e, *n;
	size_t need = val_off(e) + len, cap = sli_slab_usable(e, e->cls);
	unsigned cls;

	if (need > cap || (cap >= 128 && need <= cap / 2)) {
		n = sli_slab_alloc(&t->slab, need, &cls);
		if (n == NULL)
			return -ENOMEM;
		memcpy(n, e, val_off(e)); /* header, ring, key, namespace */
		n->cls = (uint8_t)cls;
		if (len != 0)
			memcpy(eval(n), value, len); /* @value may be inside e */
		if (n->flags & F_LINKED) {
			ering(ering(n)->prev)->next = n;
			ering(ering(n)->next)->prev = n;
		}
		l->s->e = n;
		sli_slab_free(&t->slab, e, e->cls);
		e = n;
	} else if (len != 0) {
		memmove(eval(e), value, len);
	}
	e->val_len = len;
	if (expiry != SLI_TTL_KEEP)
		e->expiry = expiry;
	t->mods++;
	return 0;
}

static struct sli_entry *entry_new(struct sli_table *t, const struct sli_skey *k, unsigned flags,
				   unsigned kg, uint32_t len)
{
	size_t size = align8(data_off(flags) + k->key_len + k->ns_len) + len;
	struct sli_entry *e;
	unsigned cls;

	e = sli_slab_alloc(&t->slab, size, &cls);
	if (e == NULL)
		return NULL;
	e->expiry = SLI_TTL_NONE;
	e->key_len = k->key_len;
	e->val_len = len;
	e->ns_len = k->ns_len;
	e->state_id = k->state_id;
	e->kg = (uint16_t)kg;
	e->cls = (uint8_t)cls;
	e->flags = (uint8_t)flags;
	if (k->key_len != 0)
		memcpy(ekey(e), k->key, k->key_len);
	if (k->ns_len != 0)
		memcpy(ens(e), k->ns, k->ns_len);
	return e;
}

/* The anchor of @k's (state, key), created (not yet inserted) when missing. */
static struct sli_entry *anchor_get(struct sli_table *t, const struct sli_skey *k, unsigned kg,
				    bool *created)
{
	struct sli_skey ak = *k;
	struct sli_entry *a;
	uint64_t ah;
	struct loc l;

	ak.ns = NULL;
	ak.ns_len = 0;
	ah = mix(k->hash, k->state_id, NULL, 0, ANCHOR_TAG);
	*created = false;
	if (find(t, ah, &ak, F_ANCHOR, &l))
		return l.s->e;
	a = entry_new(t, &ak, F_LINKED | F_ANCHOR, kg, sizeof(ah));
	if (a == NULL)
		return NULL;
	memcpy(eval(a), &ah, sizeof(ah)); /* its own slot hash, to find it from a ring */
	ering(a)->prev = ering(a)->next = a;
	*created = true;
	return a;
}

static int insert(struct sli_table *t, uint64_t h, const struct sli_skey *k, unsigned kg,
		  const void *value, uint32_t len, int64_t expiry)
{
	unsigned flags = k->ns_len != 0 ? F_LINKED : 0, more = k->ns_len != 0 ? 2 : 1;
	struct sli_entry *e, *a = NULL;
	bool created = false;

	if (!has_room(t, more))
		return -ENOMEM;
	e = entry_new(t, k, flags, kg, len);
	if (e == NULL)
		return -ENOMEM;
	if (flags & F_LINKED) {
		a = anchor_get(t, k, kg, &created);
		if (a == NULL) {
			sli_slab_free(&t->slab, e, e->cls);
			return -ENOMEM;
		}
	}
	/* Nothing can fail from here on. */
	if (len != 0)
		memcpy(eval(e), value, len);
	if (expiry != SLI_TTL_KEEP)
		e->expiry = expiry;
	if (a != NULL) {
		if (created) {
			uint64_t ah;

			memcpy(&ah, eval(a), sizeof(ah));
			tab_insert(&t->tab, ah, a);
			t->anchors++;
		}
		ering(e)->prev = a;
		ering(e)->next = ering(a)->next;
		ering(ering(a)->next)->prev = e;
		ering(a)->next = e;
	}
	tab_insert(&t->tab, h, e);
	t->count++;
	t->kg_count[kg - t->kg_first]++;
	t->mods++;
	return 1;
}

int sli_table_put(struct sli_table *t, const struct sli_skey *k, const void *value, uint32_t len,
		  int64_t expiry)
{
	unsigned kg;
	uint64_t h;
	struct loc l;
	int rc = check_key(t, k);

	if (rc < 0)
		return rc;
	if (len != 0 && value == NULL)
		return -EINVAL;
	if (len > SLI_STATE_VALUE_MAX)
		return -E2BIG;
	kg = key_group(t, k->hash);
	if (kg < t->kg_first || kg - t->kg_first >= t->nkg)
		return -EINVAL;
	/* Before the step, so that a resize started now already progresses. */
	maybe_grow(t, 2);
	step(t);
	h = key_slot_hash(k);
	if (find(t, h, k, 0, &l))
		return update(t, &l, value, len, expiry);
	return insert(t, h, k, kg, value, len, expiry);
}

/* --------------------------------------------------------------- remove */

static void entry_free(struct sli_table *t, struct sli_entry *e)
{
	if (e->flags & F_ANCHOR) {
		t->anchors--;
	} else {
		t->count--;
		t->kg_count[e->kg - t->kg_first]--;
	}
	sli_slab_free(&t->slab, e, e->cls);
}

static void anchor_drop(struct sli_table *t, struct sli_entry *a)
{
	uint64_t ah;
	struct loc l;

	memcpy(&ah, eval(a), sizeof(ah));
	if (find_ptr(t, ah, a, &l))
		slot_delete(t, &l);
	else
		SL_ASSERT(!"anchor not in the table");
	entry_free(t, a);
}

/* Remove the entry at @l (not an anchor), and its anchor if it was the last. */
static void remove_at(struct sli_table *t, const struct loc *l)
{
	struct sli_entry *e = l->s->e;

	slot_delete(t, l);
	if (e->flags & F_LINKED) {
		struct ring *r = ering(e);

		ering(r->prev)->next = r->next;
		ering(r->next)->prev = r->prev;
		if (r->prev == r->next) /* only the anchor is left */
			anchor_drop(t, r->prev);
	}
	entry_free(t, e);
	t->mods++;
}

int sli_table_remove(struct sli_table *t, const struct sli_skey *k)
{
	struct loc l;
	int rc = check_key(t, k);

	if (rc < 0)
		return rc;
	step(t);
	if (!find(t, key_slot_hash(k), k, 0, &l))
		return 0;
	remove_at(t, &l);
	maybe_shrink(t);
	return 1;
}

/* Remove every entry in @a's ring, then @a. */
static int ring_clear(struct sli_table *t, struct sli_entry *a, uint64_t key_hash)
{
	struct sli_entry *m, *next;
	int n = 0;
	struct loc l;

	for (m = ering(a)->next; m != a; m = next) {
		next = ering(m)->next;
		if (find_ptr(t, mix(key_hash, m->state_id, ens(m), m->ns_len, 0), m, &l))
			slot_delete(t, &l);
		else
			SL_ASSERT(!"ring entry not in the table");
		entry_free(t, m);
		n++;
	}
	anchor_drop(t, a);
	return n;
}

int sli_table_clear_key(struct sli_table *t, const struct sli_skey *k)
{
	struct sli_skey pk;
	struct loc l;
	int n = 0, rc = check_key(t, k);

	if (rc < 0)
		return rc;
	step(t);
	pk = *k;
	pk.ns = NULL;
	pk.ns_len = 0;
	if (find(t, key_slot_hash(&pk), &pk, 0, &l)) {
		remove_at(t, &l);
		n++;
	}
	if (find(t, mix(k->hash, k->state_id, NULL, 0, ANCHOR_TAG), &pk, F_ANCHOR, &l))
		n += ring_clear(t, l.s->e, k->hash);
	if (n != 0) {
		t->mods++;
		maybe_shrink(t);
	}
	return n;
}

int sli_table_ttl_cleanup(struct sli_table *t, int64_t now, unsigned budget)
{
	unsigned examined = 0;
	int removed = 0;

	if (t == NULL)
		return -EINVAL;
	step(t);
	if (t->cursor >= t->tab.cap)
		t->cursor = 0;
	while (examined < budget) {
		struct slot *s = slot_at(&t->tab, t->cursor);
		struct sli_entry *e = s->e;

		examined++;
		if (e != NULL && !(e->flags & F_ANCHOR) && e->expiry <= now) {
			struct loc l = { .s = s, .i = t->cursor, .old = false };

			/* The backward shift may refill this slot: look at it again. */
			remove_at(t, &l);
			removed++;
			continue;
		}
		t->cursor = (t->cursor + 1) & t->tab.mask;
	}
	t->st.last_cleanup_examined = examined;
	if (removed != 0)
		maybe_shrink(t);
	return removed;
}

/* ------------------------------------------------------- introspection */

size_t sli_table_count(const struct sli_table *t)
{
	return t->count;
}

size_t sli_table_group_count(const struct sli_table *t, unsigned kg)
{
	if (kg < t->kg_first || kg - t->kg_first >= t->nkg)
		return 0;
	return t->kg_count[kg - t->kg_first];
}

void sli_table_stats(const struct sli_table *t, struct sli_table_stats *st)
{
	*st = t->st;
	st->entries = t->count;
	st->anchors = t->anchors;
	st->capacity = t->tab.cap;
	st->old_capacity = t->phase == MIGRATING ? t->old.cap : 0;
	st->bytes = sizeof(*t) + t->nkg * sizeof(size_t) + t->mem + t->slab.bytes;
	st->phase = t->phase;
}

/* Call @fn for each live slot: the current array, then the undrained part of the old one. */
static int each_slot(const struct sli_table *t,
		     int (*fn)(const struct sli_table *t, const struct slot *s, bool old, size_t i,
			       void *arg),
		     void *arg)
{
	int rc;

	for (size_t i = 0; i < t->tab.cap; i++) {
		const struct slot *s = slot_at(&t->tab, i);

		if (s->e != NULL && (rc = fn(t, s, false, i, arg)) != 0)
			return rc;
	}
	if (t->phase != MIGRATING)
		return 0;
	for (size_t r = t->mig_done; r < t->old.cap; r++) {
		size_t i = (t->mig_start + r) & t->old.mask;
		const struct slot *s = slot_at(&t->old, i);

		if (s->e != NULL && s->e != TOMB && (rc = fn(t, s, true, i, arg)) != 0)
			return rc;
	}
	return 0;
}

static int place(const struct sli_table *t, const struct slot *s, bool old, size_t i, void *arg)
{
	struct sli_table_part *p = arg;

	(void)t;
	(void)old;
	(void)i;
	if (!(s->e->flags & F_ANCHOR))
		p->ents[p->off[s->e->kg - p->kg_first]++] = s->e;
	return 0;
}

int sli_table_partition(struct sli_table *t, struct sli_table_part **out)
{
	struct sli_table_part *p;

	if (t == NULL || out == NULL)
		return -EINVAL;
	p = sl_alloc_aligned(t->a, sizeof(*p), SL_CACHE_LINE);
	if (p == NULL)
		return -ENOMEM;
	memset(p, 0, sizeof(*p));
	p->a = t->a;
	p->t = t;
	p->mods = t->mods;
	p->kg_first = t->kg_first;
	p->nkg = t->nkg;
	p->off = sl_alloc_aligned(t->a, (t->nkg + 1) * sizeof(size_t), SL_CACHE_LINE);
	p->ents =
	    sl_alloc_aligned(t->a, (t->count ? t->count : 1) * sizeof(*p->ents), SL_CACHE_LINE);
	if (p->off == NULL || p->ents == NULL) {
		sli_table_part_destroy(p);
		return -ENOMEM;
	}
	/* off[g] starts as group g's first index and is used as its fill cursor... */
	p->off[0] = 0;
	for (unsigned g = 0; g < t->nkg; g++)
		p->off[g + 1] = p->off[g] + t->kg_count[g];
	each_slot(t, place, p);
	/* ...so afterwards off[g] is where group g ends: shift back by one. */
	for (unsigned g = t->nkg; g > 0; g--)
		p->off[g] = p->off[g - 1];
	p->off[0] = 0;
	SL_ASSERT(p->off[t->nkg] == t->count);
	*out = p;
	return 0;
}

size_t sli_table_part_group(const struct sli_table_part *p, unsigned kg,
			    const struct sli_entry *const **entries)
{
	SL_ASSERT(p->t->mods == p->mods); /* the table changed since the partition */
	if (kg < p->kg_first || kg - p->kg_first >= p->nkg) {
		*entries = NULL;
		return 0;
	}
	*entries = p->ents + p->off[kg - p->kg_first];
	return p->off[kg - p->kg_first + 1] - p->off[kg - p->kg_first];
}

void sli_table_part_destroy(struct sli_table_part *p)
{
	if (p == NULL)
		return;
	sl_alloc_free(p->a, p->ents);
	sl_alloc_free(p->a, p->off);
	sl_alloc_free(p->a, p);
}

void sli_table_entry(const struct sli_entry *e, struct sli_entry_view *v)
{
	v->key = ekey(e);
	v->ns = ens(e);
	v->value = eval(e);
	v->key_len = e->key_len;
	v->value_len = e->val_len;
	v->ns_len = e->ns_len;
	v->state_id = e->state_id;
	v->key_group = e->kg;
	v->expiry = e->expiry;
}

/* ----------------------------------------------------------------- check */

struct check {
	sli_key_hash_fn hash;
	void *arg;
	size_t entries, anchors, linked, ring_members, tab_used, old_used;
	size_t bound; /* no ring is longer than the table */
	size_t *kg;
};

/* Is slot @i reachable by a probe for hash @h (no empty slot before it)? */
static bool reachable(const struct sli_table *t, bool old, size_t i, uint64_t h)
{
	const struct stab *st = old ? &t->old : &t->tab;
	size_t j = old ? old_start(t, h) : (h & st->mask);

	if (old && ((i - t->mig_start) & st->mask) < ((j - t->mig_start) & st->mask))
		return false; /* before where probes of its hash start */
	for (; j != i; j = (j + 1) & st->mask)
		if (slot_at(st, j)->e == NULL)
			return false;
	return true;
}

static int check_ring(struct check *c, struct sli_entry *a)
{
	size_t n = 0;

	for (struct sli_entry *m = ering(a)->next; m != a; m = ering(m)->next) {
		if (ering(ering(m)->next)->prev != m ||
		    (m->flags & (F_ANCHOR | F_LINKED)) != F_LINKED || m->state_id != a->state_id ||
		    m->key_len != a->key_len || !bytes_eq(ekey(m), ekey(a), a->key_len) ||
		    ++n > c->bound)
			return -EUCLEAN;
	}
	c->ring_members += n;
	return n == 0 ? -EUCLEAN : 0; /* an anchor without entries should be gone */
}

static int check_slot(const struct sli_table *t, const struct slot *s, bool old, size_t i,
		      void *arg)
{
	struct check *c = arg;
	struct sli_entry *e = s->e;

	if (!reachable(t, old, i, s->hash) || e->kg < t->kg_first || e->kg - t->kg_first >= t->nkg)
		return -EUCLEAN;
	*(old ? &c->old_used : &c->tab_used) += 1;
	if (c->hash != NULL) {
		uint64_t kh = c->hash(ekey(e), e->key_len, c->arg);
		bool anchor = e->flags & F_ANCHOR;

		if (key_group(t, kh) != e->kg ||
		    s->hash != mix(kh, e->state_id, ens(e), e->ns_len, anchor ? ANCHOR_TAG : 0))
			return -EUCLEAN;
	}
	if (e->flags & F_ANCHOR) {
		uint64_t ah;

		memcpy(&ah, eval(e), sizeof(ah));
		c->anchors++;
		return ah == s->hash && e->ns_len == 0 ? check_ring(c, e) : -EUCLEAN;
	}
	if (!!(e->flags & F_LINKED) != (e->ns_len != 0))
		return -EUCLEAN;
	c->linked += e->ns_len != 0;
	c->entries++;
	c->kg[e->kg - t->kg_first]++;
	return 0;
}

int sli_table_check(const struct sli_table *t, sli_key_hash_fn hash, void *arg)
{
	struct check c = { .hash = hash, .arg = arg };
	int rc;

	if (t == NULL)
		return -EINVAL;
	c.kg = sl_alloc_aligned(t->a, t->nkg * sizeof(size_t), SL_CACHE_LINE);
	if (c.kg == NULL)
		return -ENOMEM;
	memset(c.kg, 0, t->nkg * sizeof(size_t));
	c.bound = t->count;
	rc = each_slot(t, check_slot, &c);
	if (rc == 0 &&
	    (c.entries != t->count || c.anchors != t->anchors || c.ring_members != c.linked ||
	     c.tab_used != t->tab.used || (t->phase == MIGRATING && c.old_used != t->old.used) ||
	     t->slab.live != t->count + t->anchors))
		rc = -EUCLEAN;
	for (unsigned g = 0; rc == 0 && g < t->nkg; g++)
		if (c.kg[g] != t->kg_count[g])
			rc = -EUCLEAN;
	sl_alloc_free(t->a, c.kg);
	return rc;
}
