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
 * Spilling (sli_table_set_spill, spill.c). The slot array is the hot
 * tier. Past the budget, puts/removes/clears/cleanups first evict: a
 * clock hand walks the slot array, clears the reference bit (F_REF, set
 * by every get and put) of referenced entries and moves unreferenced
 * ones without a namespace to the spill store (record appended, slot
 * deleted, block freed); count and per-group counts include spilled
 * entries (kg_spilled counts those on disk per group). A lookup that
 * misses in memory asks the store's index (slot hash -> record) and, on
 * a hit, reads the record (a batch's misses in one engine batch),
 * verifies it and reinserts it as a referenced entry. Gets never evict,
 * so their pointers keep their contract; an entry that cannot be
 * reinserted (table full) is "pinned": a copy freed at the next mutating
 * call. Every other operation on a spilled key reloads it first.
 *
 * Rings on disk. Namespaced entries move a whole ring at a time: the
 * anchor and all entries of one (state, key) become ONE ring record
 * (SLI_SPILL_RING: key once, then per entry {expiry, value length,
 * namespace length}, namespace, value; the record's expiry is the
 * latest entry's) indexed by the anchor's slot hash, which the anchor's
 * value keeps with the key hash so that eviction can find every entry's
 * slot. Invariant: a (state, key)'s ring is wholly in memory or wholly
 * on disk, never both; so any access to a namespaced key that misses in
 * memory asks the index for its anchor hash, and on a hit brings the
 * whole ring back (get, put, remove, and lookup_batch, whose misses read
 * their rings and plain records in one batch, one read per ring however
 * many of its keys the batch has). A ring needing more room than the
 * table has makes the resize go faster (make_room: work proportional to
 * the ring), else a get pins a copy of its entry and a mutation fails
 * with -ENOMEM (retried later). clear_key reads the key's records to
 * verify them and count a ring's entries, then drops them from the index
 * without bringing anything back (not reading at all would need a
 * per-ring count in memory, which is what spilling saves). The hand
 * skips ring entries and judges a ring at its anchor: it moves only when
 * neither the anchor nor any entry has F_REF (the walk clears them all:
 * exact second chance at ring granularity, each entry visited once per
 * sweep as a plain one is). The walk stops once the record would pass
 * the store's 256 KiB limit: bigger rings stay in memory, and no walk
 * exceeds rec_max / 24 entries. TTL: the store drops a ring record
 * whose expiry passed (all entries expired); a ring with only some
 * entries expired keeps them until it comes back, and they are never
 * returned (expiries travel with the entries). Snapshots
 * (sli_table_partition) expand ring records into one entry per
 * namespace, in their key's group.
 *
 * Snapshots (table_snap.c). While a copy-on-write snapshot is pending,
 * entries of the barrier are copied before a write (relocate(): update()
 * and TTL touches) and their blocks are kept until the snapshot is
 * released (block_free()); every slot write (and segment free) calls
 * slot_guard() first, so that the snapshot captures the segment's entry
 * pointers before they change; see there for the rules.
 *
 * Threads: the owning task's only, but for a pending snapshot's reader,
 * which reads frozen entries (table_snap.c). Pointers to values stay
 * valid until the next put/remove/clear/cleanup: resize steps move
 * slots, never entries.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sluice/sl_alloc.h>
#include <sluice/sl_common.h>
#include <sluice/sl_error.h>

#include "sli_core.h"
#include "sli_io.h"
#include "sli_state.h"
#include "sli_table_int.h"

char sli_table_tomb; /* TOMB points here */

#define CHUNK 32 /* keys per prefetch round in lookup_batch */

#define EVICT_SLOTS 1024 /* slots the clock hand examines per operation at most */

#define ANCHOR_TAG 0xa5c4e1b3d2f09687ull /* makes an anchor's slot hash differ */

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

/* The slot hash of the anchor of (@key_hash, @state_id). */
static inline uint64_t anchor_hash(uint64_t key_hash, uint16_t state_id)
{
	return mix(key_hash, state_id, NULL, 0, ANCHOR_TAG);
}

/* An anchor's value: its own slot hash (to find it from a ring), and the key hash. */
struct aval {
	uint64_t ah, kh;
};

static inline struct aval anchor_val(const struct sli_entry *a)
{
	struct aval v;

	memcpy(&v, eval(a), sizeof(v));
	return v;
}

/* ---------------------------------------------------------- slot arrays */
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
	SL_ASSERT(st->gf == NULL); /* sli_snap_unguard() first */
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
	slot_guard(st, i);
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
			slot_guard(st, i);
			*slot_at(st, i) = *sj;
			i = j;
		}
	}
	slot_guard(st, i);
	slot_at(st, i)->e = NULL;
	st->used--;
}

static void slot_delete(struct sli_table *t, const struct loc *l)
{
	if (l->old) {
		slot_guard(&t->old, l->i);
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
	slot_guard(o, i);
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
		for (size_t k = 0; k < o->nseg; k++) /* the segments not released yet */
			if (o->seg[k] != NULL)
				slot_guard(o, k << SEG_SHIFT);
		o->gf = NULL;
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

static void pins_free(struct sli_table *t);

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
	pins_free(t);
	sli_snap_unguard(t); /* a snapshot being read still needs the slot arrays' pointers */
	sli_snap_detach(t);  /* before the slab goes: a snapshot being read may take it */
	sli_spill_destroy(t->sp);
	sl_alloc_free(t->a, t->kg_spilled);
	sl_alloc_free(t->a, t->scratch);
	sli_slab_fini(&t->slab); /* every entry */
	stab_free(t, &t->tab, t->tab.nseg);
	stab_free(t, &t->old, t->old.nseg);
	if (t->next.seg != NULL)
		stab_free(t, &t->next, (t->zeroed + SEG_SLOTS - 1) >> SEG_SHIFT);
	sl_alloc_free(t->a, t->kg_count);
	sl_alloc_free(t->a, t);
}

/* ------------------------------------------------------------- spilling */

static struct sli_entry *entry_new(struct sli_table *t, const struct sli_skey *k, unsigned flags,
				   unsigned kg, uint32_t len);

/* What the budget bounds (stats.resident). */
static inline size_t resident(const struct sli_table *t)
{
	return sizeof(*t) + t->nkg * sizeof(size_t) * (t->kg_spilled != NULL ? 2 : 1) + t->mem +
	       t->ebytes;
}

static int set_err_msg(struct sli_table *t, int rc, const char *m)
{
	size_t n = strnlen(m, sizeof(t->errmsg) - 1);

	t->err = rc;
	memcpy(t->errmsg, m, n);
	t->errmsg[n] = '\0';
	return rc;
}

static int set_err(struct sli_table *t, int rc)
{
	return set_err_msg(
	    t, rc, rc == -ENOMEM ? "no memory for a spilled entry" : sli_spill_error(t->sp));
}

/* A ring record that passed its checksum but not its layout (a bug, not the disk). */
static int ring_bad(struct sli_table *t, sli_spill_loc loc)
{
	uint64_t off = 0;
	const char *f = sli_spill_loc_file(t->sp, loc, &off);
	char m[sizeof(t->errmsg)];

	snprintf(m, sizeof(m), "spill file %s offset %llu: bad ring record layout",
		 f != NULL ? f : "?", (unsigned long long)off);
	return set_err_msg(t, -EBADMSG, m);
}

/*
 * A ring record's value: u32 count, u32 0, then per entry a struct rment,
 * its namespace padded to 8, its value padded to 8.
 */
struct rment {
	int64_t expiry;
	uint32_t val_len;
	uint16_t ns_len, zero;
};

#define RING_HDR 8

static inline size_t rment_size(uint16_t ns_len, uint32_t val_len)
{
	return sizeof(struct rment) + align8(ns_len) + align8(val_len);
}

struct rit {
	const unsigned char *p, *end;
	uint32_t left;
};

/* Start reading the entries of ring record @r. Return: their count, or -EBADMSG. */
static int rit_start(struct rit *it, const struct sli_spill_rec *r)
{
	uint32_t hd[2];

	if (!(r->flags & SLI_SPILL_RING) || r->ns_len != 0 || r->value_len < RING_HDR)
		return -EBADMSG;
	memcpy(hd, r->value, sizeof(hd));
	if (hd[0] == 0 || hd[0] > INT32_MAX || hd[1] != 0)
		return -EBADMSG;
	it->p = (const unsigned char *)r->value + RING_HDR;
	it->end = (const unsigned char *)r->value + r->value_len;
	it->left = hd[0];
	return (int)hd[0];
}

/* The next entry: 1 with *@m, *@ns, *@val; 0 after the last; -EBADMSG. */
static int rit_next(struct rit *it, struct rment *m, const void **ns, const void **val)
{
	size_t avail = (size_t)(it->end - it->p);

	if (it->left == 0)
		return avail == 0 ? 0 : -EBADMSG;
	if (avail < sizeof(*m))
		return -EBADMSG;
	memcpy(m, it->p, sizeof(*m));
	if (m->ns_len == 0 || m->zero != 0 || rment_size(m->ns_len, m->val_len) > avail)
		return -EBADMSG;
	*ns = it->p + sizeof(*m);
	*val = it->p + sizeof(*m) + align8(m->ns_len);
	it->p += rment_size(m->ns_len, m->val_len);
	it->left--;
	return 1;
}

/* The number of entries of ring record @r, its whole layout checked; -EBADMSG. */
static int ring_count(const struct sli_spill_rec *r)
{
	struct rit it;
	struct rment m;
	const void *ns, *val;
	int n = rit_start(&it, r), rc;

	if (n < 0)
		return n;
	while ((rc = rit_next(&it, &m, &ns, &val)) > 0)
		;
	return rc < 0 ? rc : n;
}

/* @n entries of key group @kg left the disk tier (not the table). */
static inline void spilled_sub(struct sli_table *t, unsigned kg, size_t n, bool ring)
{
	t->nspilled -= n;
	t->kg_spilled[kg - t->kg_first] -= n;
	t->rings -= ring;
}

/* @n spilled entries of key group @kg are gone from the table. */
static void spilled_forget(struct sli_table *t, unsigned kg, size_t n, bool ring)
{
	spilled_sub(t, kg, n, ring);
	t->count -= n;
	t->kg_count[kg - t->kg_first] -= n;
	t->mods++;
}

/* The store dropped an expired record by itself (a ring: all its entries expired). */
static void spill_gone(void *arg, const struct sli_spill_rec *r)
{
	struct sli_table *t = arg;
	bool ring = r->flags & SLI_SPILL_RING;
	int n = ring ? ring_count(r) : 1;

	SL_ASSERT(n > 0); /* the store checked the CRC; we wrote the layout */
	spilled_forget(t, r->kg, n > 0 ? (size_t)n : 0, ring);
}

/*
 * Give @e's block back to the slab, unless a pending snapshot may still
 * read it: then it is freed when the snapshot is released.
 */
static void block_free(struct sli_table *t, struct sli_entry *e)
{
	/* A fresh entry still listed after the snapshot went: see drain() in table_snap.c. */
	if ((t->snap == NULL && t->fresh.n == 0 && t->fresh_old.n == 0) || !sli_snap_retire(t, e))
		sli_slab_free(&t->slab, e, e->cls);
}

static void pins_free(struct sli_table *t)
{
	while (t->pins != NULL) {
		struct pin *p = t->pins;

		t->pins = p->next;
		sl_alloc_free(t->a, p);
	}
}

/* Free @e's block (its slot is already gone; counts are the caller's). */
static void entry_release(struct sli_table *t, struct sli_entry *e)
{
	t->ebytes -= esize(e);
	block_free(t, e);
}

/*
 * The ring of anchor @a, at the clock hand: moved to the store as one
 * record (then 1) when none of its entries nor @a was referenced since
 * the hand last passed @a, and the record fits; else 0. The walk clears
 * the reference bits (the ring's second chance) and stops once the
 * record would not fit, so it examines at most rec_max / 24 entries,
 * added to *@n. Return: 1, 0, or the store's error (nothing moved).
 */
static int evict_ring(struct sli_table *t, struct sli_entry *a, size_t max, unsigned *n)
{
	struct aval av = anchor_val(a);
	size_t size = RING_HDR, cnt = 0;
	bool hot = a->flags & F_REF;
	int64_t exp = INT64_MIN;
	struct sli_entry *m, *next;
	unsigned char *w;
	struct loc l;
	unsigned kg = a->kg;
	int rc;

	flags_clear(a, F_REF);
	for (m = ering(a)->next; m != a && size <= max; m = ering(m)->next, cnt++) {
		hot |= m->flags & F_REF;
		flags_clear(m, F_REF);
		size += rment_size(m->ns_len, m->val_len);
		exp = m->expiry > exp ? m->expiry : exp;
	}
	*n += (unsigned)cnt;
	if (hot || size > max || sli_spill_rec_size(a->key_len, 0, (uint32_t)size) > max)
		return 0; /* referenced, or too big for a record: stays */
	if (size > t->scratch_cap) {
		unsigned char *b = sl_alloc_aligned(t->a, max, 16);

		if (b == NULL)
			return 0; /* stays in memory; retried on the next pass */
		sl_alloc_free(t->a, t->scratch);
		t->scratch = b;
		t->scratch_cap = max;
	}
	w = t->scratch;
	memcpy(w, &(uint32_t[2]){ (uint32_t)cnt, 0 }, RING_HDR);
	w += RING_HDR;
	for (m = ering(a)->next; m != a; m = ering(m)->next) {
		struct rment h = { .expiry = m->expiry,
				   .val_len = m->val_len,
				   .ns_len = m->ns_len };

		memcpy(w, &h, sizeof(h));
		memset(w + sizeof(h), 0, rment_size(m->ns_len, m->val_len) - sizeof(h));
		memcpy(w + sizeof(h), ens(m), m->ns_len);
		if (m->val_len != 0)
			memcpy(w + sizeof(h) + align8(m->ns_len), eval(m), m->val_len);
		w += rment_size(m->ns_len, m->val_len);
	}
	rc = sli_spill_add(t->sp, &(struct sli_spill_rec){ .hash = av.ah,
							   .expiry = exp,
							   .key = ekey(a),
							   .value = t->scratch,
							   .key_len = a->key_len,
							   .value_len = (uint32_t)size,
							   .state_id = a->state_id,
							   .kg = a->kg,
							   .flags = SLI_SPILL_RING });
	if (rc < 0)
		return rc;
	tab_delete(&t->tab, t->hand); /* the anchor, then its entries wherever they are */
	for (m = ering(a)->next; m != a; m = next) {
		next = ering(m)->next;
		if (find_ptr(t, mix(av.kh, m->state_id, ens(m), m->ns_len, 0), m, &l))
			slot_delete(t, &l);
		else
			SL_ASSERT(!"ring entry not in the table");
		entry_release(t, m);
	}
	entry_release(t, a);
	t->anchors--;
	t->nspilled += cnt;
	t->kg_spilled[kg - t->kg_first] += cnt;
	t->rings++;
	t->st.evictions++;
	t->st.ring_evictions++;
	t->mods++;
	return 1;
}

/*
 * Move unreferenced entries and rings to the spill store until the table
 * is within budget, examining at most EVICT_SLOTS slots and ring entries
 * (plus the rest of one ring's walk). Entries of a ring are skipped: the
 * ring moves as a whole when the hand reaches its anchor. Return: 0, or
 * the store's error (the entries not moved stay, nothing is lost).
 */
static int evict(struct sli_table *t)
{
	size_t max = sli_spill_rec_max(t->sp);

	if (t->hand >= t->tab.cap)
		t->hand = 0;
	for (unsigned n = 0; n < EVICT_SLOTS && resident(t) > t->budget; n++) {
		struct slot *s = slot_at(&t->tab, t->hand);
		struct sli_entry *e = s->e;

		if (e != NULL && (e->flags & F_ANCHOR)) {
			int rc = evict_ring(t, e, max, &n);

			if (rc < 0)
				return rc;
			if (rc > 0)
				continue; /* the backward shift may refill this slot */
		} else if (e != NULL && !(e->flags & F_LINKED)) {
			if (e->flags & F_REF) {
				flags_clear(e, F_REF);
			} else if (sli_spill_rec_size(e->key_len, 0, e->val_len) <= max) {
				struct sli_spill_rec r = { .hash = s->hash,
							   .expiry = e->expiry,
							   .key = ekey(e),
							   .value = eval(e),
							   .key_len = e->key_len,
							   .value_len = e->val_len,
							   .state_id = e->state_id,
							   .kg = e->kg };
				int rc = sli_spill_add(t->sp, &r);

				if (rc < 0)
					return rc;
				/* The backward shift may refill this slot: look at it again. */
				tab_delete(&t->tab, t->hand);
				t->nspilled++;
				t->kg_spilled[e->kg - t->kg_first]++;
				entry_release(t, e);
				t->st.evictions++;
				t->mods++;
				continue;
			}
		}
		t->hand = (t->hand + 1) & t->tab.mask;
	}
	return 0;
}

/*
 * Spill upkeep, first thing in every mutating call: free pinned copies,
 * one step of compaction, evict while over budget. Return: 0, or the
 * eviction's error (compaction errors are only recorded).
 */
static int maintain(struct sli_table *t)
{
	int rc;

	if (t->pins != NULL)
		pins_free(t);
	if (t->snap != NULL || t->fresh.n != 0 || t->fresh_old.n != 0 || t->grave.n != 0)
		sli_snap_poll(t); /* release the snapshot; then drain what it left */
	if (t->sp == NULL)
		return 0;
	if ((rc = sli_spill_work(t->sp, spill_gone, t)) < 0)
		set_err(t, rc);
	if (resident(t) > t->budget && (rc = evict(t)) < 0)
		return set_err(t, rc);
	return 0;
}

/* A copy of an entry read from disk that cannot be reinserted, freed at the next mutation. */
static struct sli_entry *pin_new(struct sli_table *t, const struct sli_skey *k, unsigned kg,
				 int64_t expiry, const void *value, uint32_t len)
{
	struct pin *p = sl_alloc_aligned(
	    t->a, sizeof(*p) + align8(sizeof(struct sli_entry) + k->key_len + k->ns_len) + len, 16);
	struct sli_entry *e;

	if (p == NULL)
		return NULL;
	e = (struct sli_entry *)(p + 1);
	*e = (struct sli_entry){ .expiry = expiry,
				 .key_len = k->key_len,
				 .val_len = len,
				 .ns_len = k->ns_len,
				 .state_id = k->state_id,
				 .kg = (uint16_t)kg,
				 .flags = F_PIN };
	if (k->key_len != 0)
		memcpy(ekey(e), k->key, k->key_len);
	if (k->ns_len != 0)
		memcpy(ens(e), k->ns, k->ns_len);
	if (len != 0)
		memcpy(eval(e), value, len);
	p->next = t->pins;
	t->pins = p;
	return e;
}

/*
 * Bring back the spilled entry of @k (slot hash @h) read into @r from
 * @loc: reinserted, or pinned when the table has no room. NULL: no memory.
 */
static struct sli_entry *reload(struct sli_table *t, const struct sli_skey *k, uint64_t h,
				const struct sli_spill_rec *r, sli_spill_loc loc)
{
	struct sli_entry *e = NULL;

	maybe_grow(t, 1); /* reloads by gets fill the table too */
	if (has_room(t, 1))
		e = entry_new(t, k, 0, r->kg, r->value_len);
	if (e == NULL)
		return pin_new(t, k, r->kg, r->expiry, r->value, r->value_len);
	if (r->value_len != 0)
		memcpy(eval(e), r->value, r->value_len);
	e->expiry = r->expiry;
	e->flags |= F_REF;
	tab_insert(&t->tab, h, e);
	sli_spill_drop(t->sp, h, loc);
	spilled_sub(t, r->kg, 1, false);
	t->st.reloads++;
	return e;
}

/*
 * Room for @more slots at once (a ring coming back). Past 3/4 a resize
 * starts; the resize is paced by the ring (more / 16 steps, so that it
 * stays ahead of ring inserts), and when the array inserts go to still
 * has no room its steps are done now: up to more / 4 + 1 of them, or
 * all it takes while the table is small next to the ring (64 * @more
 * slots at most). The work stays proportional to @more.
 */
static bool make_room(struct sli_table *t, size_t more)
{
	maybe_grow(t, more);
	for (size_t i = 0; i < more / 16 && t->phase != IDLE; i++)
		step(t);
	for (size_t i = 0; !has_room(t, more); i++) {
		size_t cap = t->phase == ZEROING ? t->next.cap : t->tab.cap, z = t->zeroed;
		int ph = t->phase;

		if (ph == IDLE || (i > more / 4 && cap > 64 * more))
			return false;
		step(t);
		if (ph == ZEROING && t->phase == ZEROING && t->zeroed == z)
			return false; /* no memory for a segment */
		maybe_grow(t, more);
	}
	return true;
}

/* Free the entries of @a's ring and @a, never inserted (a failed reload). */
static void ring_discard(struct sli_table *t, struct sli_entry *a)
{
	struct sli_entry *m, *next;

	for (m = ering(a)->next; m != a; m = next) {
		next = ering(m)->next;
		entry_release(t, m);
	}
	entry_release(t, a);
}

/*
 * Bring back the ring of @ak (the key, no namespace) whose anchor has
 * slot hash @ah, read into @r from @loc: anchor and entries reinserted,
 * the record dropped. Return: 1; 0 when the table has no room (the ring
 * stays on disk); -EBADMSG (layout) or -ENOMEM, recorded.
 */
static int ring_reload(struct sli_table *t, const struct sli_skey *ak, uint64_t ah,
		       const struct sli_spill_rec *r, sli_spill_loc loc)
{
	int n = ring_count(r), rc;
	struct sli_entry *a, *e;
	const void *ns, *val;
	struct rment m;
	struct rit it;

	if (n < 0)
		return ring_bad(t, loc);
	if (!make_room(t, (size_t)n + 1))
		return 0;
	a = entry_new(t, ak, F_LINKED | F_ANCHOR, r->kg, sizeof(struct aval));
	if (a == NULL)
		return set_err(t, -ENOMEM);
	memcpy(eval(a), &(struct aval){ ah, ak->hash }, sizeof(struct aval));
	ering(a)->prev = ering(a)->next = a;
	rit_start(&it, r);
	while ((rc = rit_next(&it, &m, &ns, &val)) > 0) {
		struct sli_skey mk = *ak;

		mk.ns = ns;
		mk.ns_len = m.ns_len;
		if ((e = entry_new(t, &mk, F_LINKED, r->kg, m.val_len)) == NULL) {
			ring_discard(t, a);
			return set_err(t, -ENOMEM);
		}
		if (m.val_len != 0)
			memcpy(eval(e), val, m.val_len);
		e->expiry = m.expiry;
		ering(e)->next = a; /* appended: the ring keeps its order */
		ering(e)->prev = ering(a)->prev;
		ering(ering(a)->prev)->next = e;
		ering(a)->prev = e;
	}
	/* Nothing can fail from here on. */
	a->flags |= F_REF;
	tab_insert(&t->tab, ah, a);
	for (e = ering(a)->next; e != a; e = ering(e)->next)
		tab_insert(&t->tab, mix(ak->hash, e->state_id, ens(e), e->ns_len, 0), e);
	t->anchors++;
	spilled_sub(t, r->kg, (size_t)n, true);
	sli_spill_drop(t->sp, ah, loc);
	t->st.reloads++;
	t->st.ring_reloads++;
	return 1;
}

/* The entry of @k in ring record @r: 1 with its value and expiry, 0 when absent. */
static int ring_member(const struct sli_spill_rec *r, const struct sli_skey *k, const void **v,
		       uint32_t *len, int64_t *expiry)
{
	struct rit it;
	struct rment m;
	const void *ns;
	int rc;

	if ((rc = rit_start(&it, r)) < 0)
		return rc;
	while ((rc = rit_next(&it, &m, &ns, v)) > 0) {
		if (m.ns_len == k->ns_len && memcmp(ns, k->ns, k->ns_len) == 0) {
			*len = m.val_len;
			*expiry = m.expiry;
			return 1;
		}
	}
	return rc;
}

/*
 * After the ring of namespaced key @k (slot hash @h) was read into @r:
 * bring it back and return @k's entry (NULL: none, or *@err). With no
 * room, a mutation (@mut) fails with -ENOMEM, a get gets a pinned copy.
 */
static struct sli_entry *ring_back(struct sli_table *t, const struct sli_skey *k, uint64_t h,
				   const struct sli_spill_rec *r, sli_spill_loc loc, bool mut,
				   int *err)
{
	struct sli_skey ak = *k;
	const void *v;
	uint32_t len;
	int64_t exp;
	struct loc l;
	int rc;

	ak.ns = NULL;
	ak.ns_len = 0;
	rc = ring_reload(t, &ak, anchor_hash(k->hash, k->state_id), r, loc);
	if (rc > 0)
		return find(t, h, k, 0, &l) ? l.s->e : NULL;
	if (rc == 0 && mut)
		rc = set_err(t, -ENOMEM); /* no room to bring it back */
	if (rc == 0 && (rc = ring_member(r, k, &v, &len, &exp)) > 0) {
		struct sli_entry *e = pin_new(t, k, r->kg, exp, v, len);

		if (e != NULL)
			return e;
		rc = set_err(t, -ENOMEM);
	}
	if (rc < 0)
		*err = rc; /* recorded by whoever failed */
	return NULL;
}

/*
 * The spilled entry of @k brought back (NULL: none): a plain entry's
 * record, or the whole ring of a namespaced key. *@err: 0, or why it
 * could not be read or brought back (recorded for sli_table_error()).
 */
static struct sli_entry *spill_get(struct sli_table *t, const struct sli_skey *k, uint64_t h,
				   bool mut, int *err)
{
	struct sli_skey q = *k;
	struct sli_spill_rec r;
	struct sli_entry *e;
	sli_spill_loc loc;
	uint64_t qh = h;
	int rc;

	*err = 0;
	if (t->sp == NULL)
		return NULL;
	if (k->ns_len != 0) {
		q.ns = NULL;
		q.ns_len = 0;
		qh = anchor_hash(k->hash, k->state_id);
	}
	if (!sli_spill_maybe(t->sp, qh))
		return NULL;
	rc = sli_spill_fetch(t->sp, 1, &q, &qh, &r, &loc);
	if (rc < 0) {
		*err = set_err(t, rc);
		return NULL;
	}
	if (loc == 0)
		return NULL;
	if (k->ns_len != 0)
		return ring_back(t, k, h, &r, loc, mut, err);
	e = reload(t, k, h, &r, loc);
	if (e == NULL)
		*err = set_err(t, -ENOMEM);
	return e;
}

/* For a mutation: the slot of @k when it was on disk and is back in the table. */
static int spill_find(struct sli_table *t, const struct sli_skey *k, uint64_t h, struct loc *l)
{
	int err;

	if (spill_get(t, k, h, true, &err) == NULL)
		return err;
	if (!find(t, h, k, 0, l))
		return set_err(t, -ENOMEM); /* pinned: no room to bring it back */
	return 1;
}

int sli_table_set_spill(struct sli_table *t, const struct sli_spill_conf *c)
{
	int rc;

	if (t == NULL || c == NULL || c->budget == 0 || t->sp != NULL)
		return -EINVAL;
	t->kg_spilled = sl_alloc_aligned(t->a, t->nkg * sizeof(size_t), SL_CACHE_LINE);
	if (t->kg_spilled == NULL)
		return -ENOMEM;
	memset(t->kg_spilled, 0, t->nkg * sizeof(size_t));
	rc = sli_spill_create(t->a, c, &t->sp);
	if (rc < 0) {
		sl_alloc_free(t->a, t->kg_spilled);
		t->kg_spilled = NULL;
		return rc;
	}
	t->budget = c->budget;
	t->hand = 0;
	return 0;
}

int sli_table_spill_flush(struct sli_table *t)
{
	int rc;

	if (t == NULL)
		return -EINVAL;
	if (t->sp == NULL)
		return 0;
	rc = sli_spill_flush(t->sp);
	return rc < 0 ? set_err(t, rc) : 0;
}

int sli_table_error(struct sli_table *t, char *buf, size_t len)
{
	int rc = t->err;

	if (buf != NULL && len != 0)
		snprintf(buf, len, "%s", rc != 0 ? t->errmsg : "");
	t->err = 0;
	return rc;
}

const char *sli_table_spill_engine(const struct sli_table *t)
{
	return t->sp != NULL ? sli_spill_engine(t->sp) : NULL;
}

/* --------------------------------------------------------------- lookup */

static struct sli_entry *relocate(struct sli_table *t, const struct loc *l, size_t need,
				  size_t keep);

/*
 * A new expiry for the entry @e (slot hash @h) a snapshot may read: the
 * task writes a copy (the snapshot keeps the old block). Without memory
 * for the copy it waits for the snapshot's reader, then writes in place.
 */
static struct sli_entry *touch_shared(struct sli_table *t, struct sli_entry *e, uint64_t h)
{
	struct sli_entry *n = NULL;
	struct loc l;

	if (find_ptr(t, h, e, &l))
		n = relocate(t, &l, val_off(e) + e->val_len, val_off(e) + e->val_len);
	else
		SL_ASSERT(!"a shared entry not in the table");
	if (n == NULL) {
		sli_snap_wait(t);
		return e;
	}
	block_free(t, e);
	return n;
}

/* A live entry @e (slot hash @h) found by a get: its value, after the TTL and reference updates. */
static inline const void *found(struct sli_table *t, struct sli_entry *e, uint64_t h, int64_t now,
				int64_t touch, uint32_t *len)
{
	if (e->expiry <= now)
		return NULL;
	if (touch != SLI_TTL_KEEP && touch != e->expiry) {
		if (snap_shared(t, e))
			e = touch_shared(t, e, h);
		e->expiry = touch;
	}
	if (!(e->flags & F_REF))
		flags_set(e, F_REF);
	if (len != NULL)
		*len = e->val_len;
	return eval(e);
}

const void *sli_table_get(struct sli_table *t, const struct sli_skey *k, int64_t now, int64_t touch,
			  uint32_t *len)
{
	uint64_t h = key_slot_hash(k);
	struct sli_entry *e;
	struct loc l;
	int err;

	SL_ASSERT(t != NULL && k != NULL);
	step(t);
	if (find(t, h, k, 0, &l))
		return found(t, l.s->e, h, now, touch, len);
	e = spill_get(t, k, h, false, &err);
	return e != NULL ? found(t, e, h, now, touch, len) : NULL;
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

/*
 * For a key of a batch that missed in memory: the index, among the
 * batch's reads fk/fh[0..*nf), of the record that would hold it (its own,
 * or its ring's: keys of one ring share one read), added when new; -1
 * when the store has no record of that slot hash.
 */
static int miss_read(struct sli_table *t, const struct sli_skey *k, uint64_t h, struct sli_skey *fk,
		     uint64_t *fh, unsigned *nf)
{
	struct sli_skey q = *k;

	if (k->ns_len != 0) {
		q.ns = NULL;
		q.ns_len = 0;
		h = anchor_hash(k->hash, k->state_id);
	}
	if (!sli_spill_maybe(t->sp, h))
		return -1;
	for (unsigned f = 0; f < *nf; f++)
		if (fh[f] == h && fk[f].state_id == q.state_id && fk[f].key_len == q.key_len &&
		    fk[f].ns_len == q.ns_len && bytes_eq(fk[f].key, q.key, q.key_len) &&
		    bytes_eq(fk[f].ns, q.ns, q.ns_len))
			return (int)f;
	fk[*nf] = q;
	fh[*nf] = h;
	return (int)(*nf)++;
}

enum { R_NEW, R_BACK, R_DISK }; /* a read's record: not used yet, reinserted, stays on disk */

/*
 * Key @k (slot hash @h) of a batch, whose record (or ring's) was read
 * into @r from @loc (0: none; r->key NULL: failed). *@state is that
 * read's R_ state, shared by the keys of one ring. Return: the entry,
 * or NULL (absent, or *@err).
 */
static struct sli_entry *miss_resolve(struct sli_table *t, const struct sli_skey *k, uint64_t h,
				      const struct sli_spill_rec *r, sli_spill_loc loc,
				      unsigned char *state, int *err)
{
	struct sli_entry *e;
	struct loc l;
	const void *v;
	uint32_t len;
	int64_t exp;

	if (*state == R_BACK) /* brought back for an earlier key of the batch */
		return find(t, h, k, 0, &l) ? l.s->e : NULL;
	if (loc == 0 || r->key == NULL)
		return NULL;
	if (*state == R_DISK) { /* no room: another pinned copy from the same record */
		if (k->ns_len == 0)
			e = pin_new(t, k, r->kg, r->expiry, r->value, r->value_len);
		else if (ring_member(r, k, &v, &len, &exp) > 0)
			e = pin_new(t, k, r->kg, exp, v, len);
		else
			return NULL;
		if (e == NULL)
			*err = set_err(t, -ENOMEM);
		return e;
	}
	if (k->ns_len != 0) {
		int rings = (int)t->rings;

		e = ring_back(t, k, h, r, loc, false, err);
		*state = t->rings != (size_t)rings ? R_BACK : R_DISK;
		return e;
	}
	e = reload(t, k, h, r, loc);
	if (e == NULL)
		*err = set_err(t, -ENOMEM);
	*state = e != NULL && find(t, h, k, 0, &l) ? R_BACK : R_DISK;
	return e;
}

int sli_table_lookup_batch(struct sli_table *t, unsigned n, const struct sli_skey *keys,
			   int64_t now, int64_t touch, struct sli_lookup *out)
{
	uint64_t h[CHUNK], fh[CHUNK];
	struct sli_entry *cand[CHUNK];
	struct sli_skey fk[CHUNK];
	struct sli_spill_rec rec[CHUNK];
	sli_spill_loc floc[CHUNK];
	unsigned char fstate[CHUNK];
	unsigned m, mi[CHUNK], mf[CHUNK];
	int hits = 0, err = 0;

	if (n == 0)
		return 0;
	if (t == NULL || keys == NULL || out == NULL)
		return -EINVAL;
	step(t);
	for (unsigned base = 0; base < n; base += m) {
		const struct sli_skey *k = keys + base;
		unsigned nm = 0, nf = 0;

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
		for (unsigned j = 0, copies = (unsigned)t->st.cow_copies; j < m; j++) {
			struct sli_entry *e = cand[j];
			struct sli_lookup *o = &out[base + j];
			struct loc l;
			int f;

			/* A TTL touch copied an entry for a snapshot: a candidate may be the
			 * original. */
			if (sl_unlikely(copies != (unsigned)t->st.cow_copies))
				e = probe_hash(&t->tab, h[j]);

			/* A hash match of another key is a 2^-64 event, but possible. */
			if (e == NULL ? t->phase == MIGRATING : !match(e, &k[j], 0))
				e = find(t, h[j], &k[j], 0, &l) ? l.s->e : NULL;
			if (e == NULL && t->sp != NULL &&
			    (f = miss_read(t, &k[j], h[j], fk, fh, &nf)) >= 0) {
				mi[nm] = j; /* on disk: read with the others below */
				mf[nm++] = (unsigned)f;
				continue;
			}
			o->value = e != NULL ? found(t, e, h[j], now, touch, &o->len) : NULL;
			if (o->value == NULL)
				o->len = 0;
			else
				hits++;
		}
		if (nf != 0) {
			int rc = sli_spill_fetch(t->sp, nf, fk, fh, rec, floc);

			if (rc < 0)
				err = set_err(t, rc);
			memset(fstate, R_NEW, nf);
		}
		for (unsigned i = 0; i < nm; i++) {
			unsigned j = mi[i], f = mf[i];
			struct sli_lookup *o = &out[base + j];
			struct sli_entry *e;

			e = miss_resolve(t, &k[j], h[j], &rec[f], floc[f], &fstate[f], &err);
			o->value = e != NULL ? found(t, e, h[j], now, touch, &o->len) : NULL;
			if (o->value == NULL)
				o->len = 0;
			else
				hits++;
		}
	}
	return err < 0 ? err : hits;
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

/*
 * Move the entry at @l to a new block of @need bytes, its first @keep
 * bytes copied (header, ring, key, namespace and maybe the value): the
 * ring and the slot point to the new block, which is fresh for a pending
 * snapshot. The old block is the caller's to free (@value of update()
 * may be inside it). NULL: no memory (nothing changed).
 */
static struct sli_entry *relocate(struct sli_table *t, const struct loc *l, size_t need,
				  size_t keep)
{
	struct sli_entry *e = l->s->e, *n;
	unsigned cls;

	n = sli_slab_alloc(&t->slab, need, &cls);
	if (n == NULL)
		return NULL;
	memcpy(n, e, keep);
	n->cls = (uint8_t)cls;
	n->flags &= (uint8_t)~F_FRESH;
	if (n->flags & F_LINKED) {
		ering(ering(n)->prev)->next = n;
		ering(ering(n)->next)->prev = n;
	}
	slot_guard(l->old ? &t->old : &t->tab, l->i);
	l->s->e = n;
	t->ebytes += esize(n) - esize(e);
	if (t->snap != NULL) {
		sli_snap_fresh(t, n);
		t->st.cow_copies += snap_shared(t, e);
		t->st.cow_bytes += snap_shared(t, e) ? keep : 0;
	}
	return n;
}

/*
 * Replace @l's value; reallocate when it does not fit or would waste
 * half, or when a pending snapshot may read the entry (copy on write;
 * without memory for the copy, wait for the snapshot's reader).
 */
static int update(struct sli_table *t, const struct loc *l, const void *value, uint32_t len,
		  int64_t expiry)
{
	struct sli_entry *e = l->s->e, *n = NULL;
	size_t need = val_off(e) + len, cap = sli_slab_usable(e, e->cls);
	bool move = need > cap || (cap >= 128 && need <= cap / 2);

	if (move || snap_shared(t, e)) {
		n = relocate(t, l, need, val_off(e)); /* header, ring, key, namespace */
		if (n == NULL && snap_shared(t, e)) {
			sli_snap_wait(t); /* the entry is the table's alone now */
			if (move)
				n = relocate(t, l, need, val_off(e));
		}
		if (n == NULL && move)
			return -ENOMEM;
	}
	if (n != NULL) {
		if (len != 0)
			memcpy(eval(n), value, len); /* @value may be inside e */
		block_free(t, e);
		e = n;
	} else if (len != 0) {
		memmove(eval(e), value, len);
	}
	e->val_len = len;
	if (expiry != SLI_TTL_KEEP)
		e->expiry = expiry;
	e->flags |= F_REF;
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
	if (t->snap != NULL)
		sli_snap_fresh(t, e);
	t->ebytes += esize(e);
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
	ah = anchor_hash(k->hash, k->state_id);
	*created = false;
	if (find(t, ah, &ak, F_ANCHOR, &l))
		return l.s->e;
	a = entry_new(t, &ak, F_LINKED | F_ANCHOR, kg, sizeof(struct aval));
	if (a == NULL)
		return NULL;
	memcpy(eval(a), &(struct aval){ ah, k->hash }, sizeof(struct aval));
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
			t->ebytes -= esize(e);
			block_free(t, e);
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
			tab_insert(&t->tab, anchor_val(a).ah, a);
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
	if ((rc = maintain(t)) < 0)
		return rc;
	/* Before the step, so that a resize started now already progresses. */
	maybe_grow(t, 2);
	step(t);
	h = key_slot_hash(k);
	if (find(t, h, k, 0, &l))
		return update(t, &l, value, len, expiry);
	if ((rc = spill_find(t, k, h, &l)) < 0)
		return rc;
	if (rc > 0)
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
	t->ebytes -= esize(e);
	block_free(t, e);
}

static void anchor_drop(struct sli_table *t, struct sli_entry *a)
{
	struct loc l;

	if (find_ptr(t, anchor_val(a).ah, a, &l))
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
	maintain(t);
	step(t);
	if (!find(t, key_slot_hash(k), k, 0, &l)) {
		rc = spill_find(t, k, key_slot_hash(k), &l);
		if (rc <= 0)
			return rc;
	}
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

/*
 * Remove the spilled records of @pk (no namespace): its plain entry's and
 * its ring's, read in one batch but never brought back: the read only
 * verifies the key (slot hashes may collide) and counts the ring's
 * entries. Return: entries removed, or the read's error (nothing removed).
 */
static int clear_spilled(struct sli_table *t, const struct sli_skey *pk, uint64_t ah)
{
	struct sli_skey q[2] = { *pk, *pk };
	uint64_t qh[2];
	struct sli_spill_rec r[2];
	sli_spill_loc loc[2];
	int cnt[2] = { 0, 0 }, n = 0, rc;
	unsigned nq = 0;

	qh[nq] = key_slot_hash(pk);
	nq += sli_spill_maybe(t->sp, qh[nq]);
	qh[nq] = ah;
	nq += sli_spill_maybe(t->sp, qh[nq]);
	if (nq == 0)
		return 0;
	if ((rc = sli_spill_fetch(t->sp, nq, q, qh, r, loc)) < 0)
		return set_err(t, rc);
	for (unsigned i = 0; i < nq; i++) {
		bool ring = loc[i] != 0 && sli_spill_loc_ring(loc[i]);

		/* A key's own slot hash and its anchor's always differ (fmix64 is a bijection). */
		SL_ASSERT(loc[i] == 0 || ring == (qh[i] == ah));
		if (loc[i] != 0 && (cnt[i] = ring ? ring_count(&r[i]) : 1) < 0)
			return ring_bad(t, loc[i]);
	}
	for (unsigned i = 0; i < nq; i++) {
		if (loc[i] == 0)
			continue;
		sli_spill_drop(t->sp, qh[i], loc[i]);
		spilled_forget(t, r[i].kg, (size_t)cnt[i], sli_spill_loc_ring(loc[i]));
		n += cnt[i];
	}
	return n;
}

int sli_table_clear_key(struct sli_table *t, const struct sli_skey *k)
{
	struct sli_skey pk;
	struct loc l;
	uint64_t ah;
	int n = 0, rc = check_key(t, k);

	if (rc < 0)
		return rc;
	maintain(t);
	step(t);
	pk = *k;
	pk.ns = NULL;
	pk.ns_len = 0;
	ah = anchor_hash(k->hash, k->state_id);
	/* A key's entries are either in memory or on disk: disk first, so an error changes nothing.
	 */
	if (t->sp != NULL && (n = clear_spilled(t, &pk, ah)) < 0)
		return n;
	if (find(t, key_slot_hash(&pk), &pk, 0, &l)) {
		remove_at(t, &l);
		n++;
	}
	if (find(t, ah, &pk, F_ANCHOR, &l))
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
	maintain(t);
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
	if (t->sp != NULL) {
		int rc = sli_spill_expire(t->sp, now, budget, spill_gone, t);

		if (rc < 0)
			set_err(t, rc);
		else
			removed += rc;
	}
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
	st->resident = resident(t);
	st->cow_pending = t->snap != NULL;
	st->cow_held_bytes = t->grave_bytes;
	if (t->sp != NULL) {
		sli_spill_stats(t->sp, st);
		st->spilled = t->nspilled;
		st->spilled_rings = t->rings;
		st->spill_buffer_bytes += t->scratch_cap;
	}
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

/* Count (soff[g + 1]) or place (locs at soff[g], cursor) the spilled records by key group. */
static int count_spilled(void *arg, uint64_t h, sli_spill_loc loc)
{
	struct sli_table_part *p = arg;

	(void)h;
	p->soff[sli_spill_loc_kg(loc) - p->kg_first + 1]++;
	return 0;
}

static int place_spilled(void *arg, uint64_t h, sli_spill_loc loc)
{
	struct sli_table_part *p = arg;
	size_t i = p->soff[sli_spill_loc_kg(loc) - p->kg_first]++;

	p->locs[i] = loc;
	p->hashes[i] = h;
	return 0;
}

/*
 * The spilled records of every group, by key group (their reads wait for
 * sli_table_part_group), and the number of entries they hold per group.
 */
static int partition_spilled(struct sli_table *t, struct sli_table_part *p, size_t records)
{
	p->soff = sl_alloc_aligned(t->a, (t->nkg + 1) * sizeof(size_t), SL_CACHE_LINE);
	p->scnt = sl_alloc_aligned(t->a, t->nkg * sizeof(size_t), SL_CACHE_LINE);
	p->locs = sl_alloc_aligned(t->a, (records ? records : 1) * sizeof(*p->locs), SL_CACHE_LINE);
	p->hashes =
	    sl_alloc_aligned(t->a, (records ? records : 1) * sizeof(*p->hashes), SL_CACHE_LINE);
	if (p->soff == NULL || p->scnt == NULL || p->locs == NULL || p->hashes == NULL)
		return -ENOMEM;
	memcpy(p->scnt, t->kg_spilled, t->nkg * sizeof(size_t));
	memset(p->soff, 0, (t->nkg + 1) * sizeof(size_t));
	sli_spill_each(t->sp, count_spilled, p);
	for (unsigned g = 0; g < t->nkg; g++)
		p->soff[g + 1] += p->soff[g];
	sli_spill_each(t->sp, place_spilled, p);
	for (unsigned g = t->nkg; g > 0; g--)
		p->soff[g] = p->soff[g - 1];
	p->soff[0] = 0;
	return 0;
}

static int store_read(void *arg, unsigned n, const sli_spill_loc *loc, struct sli_spill_rec *rec)
{
	return sli_spill_read(arg, n, loc, rec);
}

static const char *store_why(void *arg)
{
	return sli_spill_error(arg);
}

int sli_table_partition(struct sli_table *t, struct sli_table_part **out)
{
	struct sli_table_part *p;
	struct sli_table_stats st = { 0 };
	size_t records = 0, res;

	if (t == NULL || out == NULL)
		return -EINVAL;
	if (t->sp != NULL) {
		sli_spill_stats(t->sp, &st); /* its spilled: records in the index */
		records = st.spilled;
	}
	res = t->count - t->nspilled;
	p = sl_alloc_aligned(t->a, sizeof(*p), SL_CACHE_LINE);
	if (p == NULL)
		return -ENOMEM;
	memset(p, 0, sizeof(*p));
	p->a = t->a;
	p->t = t;
	p->rd = (struct sli_part_reader){ store_read, store_why, t->sp };
	p->mods = t->mods;
	p->kg_first = t->kg_first;
	p->nkg = t->nkg;
	p->gkg = UINT32_MAX;
	p->off = sl_alloc_aligned(t->a, (t->nkg + 1) * sizeof(size_t), SL_CACHE_LINE);
	p->ents = sl_alloc_aligned(t->a, (res ? res : 1) * sizeof(*p->ents), SL_CACHE_LINE);
	if (p->off == NULL || p->ents == NULL ||
	    (t->sp != NULL && partition_spilled(t, p, records) < 0)) {
		sli_table_part_destroy(p);
		return -ENOMEM;
	}
	/* off[g] starts as group g's first index and is used as its fill cursor... */
	p->off[0] = 0;
	for (unsigned g = 0; g < t->nkg; g++)
		p->off[g + 1] =
		    p->off[g] + t->kg_count[g] - (t->kg_spilled != NULL ? t->kg_spilled[g] : 0);
	each_slot(t, place, p);
	/* ...so afterwards off[g] is where group g ends: shift back by one. */
	for (unsigned g = t->nkg; g > 0; g--)
		p->off[g] = p->off[g - 1];
	p->off[0] = 0;
	SL_ASSERT(p->off[t->nkg] == res);
	*out = p;
	return 0;
}

static void arena_free(struct sli_table_part *p)
{
	while (p->arena != NULL) {
		struct arena *x = p->arena;

		p->arena = x->next;
		sl_alloc_free(p->a, x);
	}
}

/* Bytes of the entries record @r expands to in an arena (-EBADMSG: a bad ring). */
static long long rec_entry_bytes(const struct sli_spill_rec *r)
{
	size_t kb = align8(sizeof(struct sli_entry) + r->key_len), bytes = 0;
	const void *ns, *val;
	struct rment m;
	struct rit it;
	int rc;

	if (!(r->flags & SLI_SPILL_RING))
		return (long long)(kb + align8(r->value_len));
	if ((rc = rit_start(&it, r)) < 0)
		return rc;
	while ((rc = rit_next(&it, &m, &ns, &val)) > 0)
		bytes +=
		    align8(sizeof(struct sli_entry) + r->key_len + m.ns_len) + align8(m.val_len);
	return rc < 0 ? rc : (long long)bytes;
}

/* Write an entry (no ring links) at @at; the bytes it takes. */
static size_t arena_entry(unsigned char *at, const struct sli_spill_rec *r, const void *ns,
			  uint16_t ns_len, const void *value, uint32_t len, int64_t expiry)
{
	struct sli_entry *e = (struct sli_entry *)(void *)at;

	*e = (struct sli_entry){ .expiry = expiry,
				 .key_len = r->key_len,
				 .val_len = len,
				 .ns_len = ns_len,
				 .state_id = r->state_id,
				 .kg = r->kg };
	if (r->key_len != 0)
		memcpy(ekey(e), r->key, r->key_len);
	if (ns_len != 0)
		memcpy(ens(e), ns, ns_len);
	if (len != 0)
		memcpy(eval(e), value, len);
	return align8(val_off(e) + len);
}

/*
 * Read the spilled records of group @g (index into the partition) into
 * p->gents, the entries in p->arena (a chunk per batch of 64 records): a
 * plain record is one entry, a ring record one per namespaced entry.
 */
int sli_part_load(struct sli_table_part *p, unsigned g)
{
	size_t nres = p->off[g + 1] - p->off[g], nsp = p->soff[g + 1] - p->soff[g], ne = nres;
	const sli_spill_loc *locs = p->locs + p->soff[g];
	struct sli_spill_rec rec[64];

	sl_alloc_free(p->a, p->gents);
	arena_free(p);
	p->gkg = UINT32_MAX;
	p->gents = sl_alloc_aligned(p->a, (nres + p->scnt[g]) * sizeof(*p->gents), SL_CACHE_LINE);
	if (p->gents == NULL)
		return -ENOMEM;
	memcpy(p->gents, p->ents + p->off[g], nres * sizeof(*p->gents));
	for (size_t base = 0; base < nsp; base += 64) {
		unsigned m = nsp - base < 64 ? (unsigned)(nsp - base) : 64;
		size_t bytes = 0, at = 0;
		struct arena *x;
		int rc = p->rd.read(p->rd.arg, m, locs + base, rec);

		if (rc < 0) {
			snprintf(p->errmsg, sizeof(p->errmsg), "%s", p->rd.why(p->rd.arg));
			return rc;
		}
		for (unsigned i = 0; i < m; i++) {
			long long b = rec_entry_bytes(&rec[i]);

			if (b < 0 || rec[i].kg != g + p->kg_first)
				return -EBADMSG;
			bytes += (size_t)b;
		}
		if ((x = sl_alloc_aligned(p->a, sizeof(*x) + bytes, 16)) == NULL)
			return -ENOMEM;
		x->next = p->arena;
		p->arena = x;
		for (unsigned i = 0; i < m; i++) {
			unsigned char *a = (unsigned char *)(x + 1);
			struct rit it;
			struct rment rm;
			const void *ns, *val;

			if (!(rec[i].flags & SLI_SPILL_RING)) {
				if (ne == nres + p->scnt[g])
					return -EUCLEAN; /* more than the table counted */
				p->gents[ne++] = (const struct sli_entry *)(void *)(a + at);
				at += arena_entry(a + at, &rec[i], NULL, 0, rec[i].value,
						  rec[i].value_len, rec[i].expiry);
				continue;
			}
			rit_start(&it, &rec[i]);
			while (rit_next(&it, &rm, &ns, &val) > 0) {
				if (ne == nres + p->scnt[g])
					return -EUCLEAN;
				p->gents[ne++] = (const struct sli_entry *)(void *)(a + at);
				at += arena_entry(a + at, &rec[i], ns, rm.ns_len, val, rm.val_len,
						  rm.expiry);
			}
		}
	}
	if (ne != nres + p->scnt[g])
		return -EUCLEAN;
	p->gkg = g;
	return 0;
}

size_t sli_table_part_group(const struct sli_table_part *p, unsigned kg,
			    const struct sli_entry *const **entries)
{
	struct sli_table_part *w = (struct sli_table_part *)p; /* loading is not a visible change */
	unsigned g;
	int rc;

	SL_ASSERT(p->t == NULL || p->t->mods == p->mods); /* the table changed since */
	*entries = NULL;
	if (kg < p->kg_first || kg - p->kg_first >= p->nkg)
		return 0;
	g = kg - p->kg_first;
	if (p->soff == NULL || p->soff[g + 1] == p->soff[g]) {
		*entries = p->ents + p->off[g];
		return p->off[g + 1] - p->off[g];
	}
	if (p->gkg != g && (rc = sli_part_load(w, g)) < 0) {
		w->err = rc;
		if (w->errmsg[0] == '\0')
			snprintf(w->errmsg, sizeof(w->errmsg),
				 "spilled records of key group %u: %s", kg,
				 rc == -EBADMSG ? "bad record layout" : sl_strerror(rc));
		return 0;
	}
	*entries = p->gents;
	return p->off[g + 1] - p->off[g] + p->scnt[g];
}

int sli_table_part_error(const struct sli_table_part *p)
{
	return p->err;
}

const char *sli_table_part_errmsg(const struct sli_table_part *p)
{
	return p->errmsg;
}

void sli_table_part_destroy(struct sli_table_part *p)
{
	if (p == NULL)
		return;
	sl_alloc_free(p->a, p->gents);
	arena_free(p);
	sl_alloc_free(p->a, p->soff);
	sl_alloc_free(p->a, p->scnt);
	sl_alloc_free(p->a, p->locs);
	sl_alloc_free(p->a, p->hashes);
	sl_alloc_free(p->a, p->ents);
	sl_alloc_free(p->a, p->off);
	sl_alloc_free(p->a, p);
}

void sli_table_entry(const struct sli_entry *e, struct sli_entry_view *v)
{
	/* Relaxed: another thread's snapshot may read e while its task sets F_REF (flags_set()). */
	size_t off = data_off(__atomic_load_n(&e->flags, __ATOMIC_RELAXED));

	v->key = (const unsigned char *)e + off;
	v->ns = (const unsigned char *)v->key + e->key_len;
	v->value = (const unsigned char *)e + align8(off + e->key_len + e->ns_len);
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
	size_t bound;	  /* no ring is longer than the table */
	size_t *kg, *kgs; /* per group: all entries; spilled ones */
	size_t spilled, nrings, ringcap;
	uint64_t *rh; /* the spilled rings: anchor slot hashes and locations */
	sli_spill_loc *rloc;
	unsigned kg_first, nkg;
	bool bad;
};

static int check_spilled(void *arg, uint64_t h, sli_spill_loc loc)
{
	struct check *c = arg;
	unsigned kg = sli_spill_loc_kg(loc);

	if (kg < c->kg_first || kg - c->kg_first >= c->nkg)
		return -EUCLEAN;
	if (sli_spill_loc_ring(loc)) { /* counted once read */
		if (c->nrings == c->ringcap)
			return -EUCLEAN; /* more rings than the table counted */
		c->rh[c->nrings] = h;
		c->rloc[c->nrings++] = loc;
		return 0;
	}
	c->kg[kg - c->kg_first]++;
	c->kgs[kg - c->kg_first]++;
	c->spilled++;
	return 0;
}

/*
 * Read the spilled rings found by check_spilled(): each is a ring record
 * of its location's key group, stored under its anchor's slot hash, with
 * a valid layout, and its anchor is not in memory too.
 */
static int check_rings(const struct sli_table *t, struct check *c)
{
	struct sli_spill_rec rec[64];

	for (size_t base = 0; base < c->nrings; base += 64) {
		unsigned m = c->nrings - base < 64 ? (unsigned)(c->nrings - base) : 64;
		int rc = sli_spill_read(t->sp, m, c->rloc + base, rec);

		if (rc < 0)
			return rc;
		for (unsigned i = 0; i < m; i++) {
			const struct sli_spill_rec *r = &rec[i];
			struct sli_skey ak = { .key = r->key,
					       .key_len = r->key_len,
					       .state_id = r->state_id };
			unsigned kg = sli_spill_loc_kg(c->rloc[base + i]);
			int n = ring_count(r);
			struct loc l;

			if (n <= 0 || r->hash != c->rh[base + i] || r->kg != kg ||
			    find(t, r->hash, &ak, F_ANCHOR, &l))
				return -EUCLEAN;
			if (c->hash != NULL) {
				uint64_t kh = c->hash(r->key, r->key_len, c->arg);

				if (key_group(t, kh) != kg ||
				    anchor_hash(kh, r->state_id) != r->hash)
					return -EUCLEAN;
			}
			c->kg[kg - c->kg_first] += (size_t)n;
			c->kgs[kg - c->kg_first] += (size_t)n;
			c->spilled += (size_t)n;
		}
	}
	return 0;
}

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
		struct aval av = anchor_val(e);

		c->anchors++;
		if (e->val_len != sizeof(av) || av.ah != s->hash || e->ns_len != 0 ||
		    av.ah != anchor_hash(av.kh, e->state_id) ||
		    (c->hash != NULL && av.kh != c->hash(ekey(e), e->key_len, c->arg)))
			return -EUCLEAN;
		return check_ring(c, e);
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
	int rc = 0;

	if (t == NULL)
		return -EINVAL;
	c.kg = sl_alloc_aligned(t->a, 2 * t->nkg * sizeof(size_t), SL_CACHE_LINE);
	c.ringcap = t->rings;
	c.rh = sl_alloc_aligned(t->a, (t->rings + 1) * sizeof(*c.rh), SL_CACHE_LINE);
	c.rloc = sl_alloc_aligned(t->a, (t->rings + 1) * sizeof(*c.rloc), SL_CACHE_LINE);
	if (c.kg == NULL || c.rh == NULL || c.rloc == NULL)
		rc = -ENOMEM;
	if (rc == 0) {
		memset(c.kg, 0, 2 * t->nkg * sizeof(size_t));
		c.kgs = c.kg + t->nkg;
		c.bound = t->count;
		c.kg_first = t->kg_first;
		c.nkg = t->nkg;
		rc = each_slot(t, check_slot, &c);
	}
	if (rc == 0 && t->sp != NULL && (rc = sli_spill_each(t->sp, check_spilled, &c)) == 0)
		rc = c.nrings == t->rings ? check_rings(t, &c) : -EUCLEAN;
	if (rc == 0 &&
	    (c.entries + c.spilled != t->count || c.spilled != t->nspilled ||
	     c.anchors != t->anchors || c.ring_members != c.linked || c.tab_used != t->tab.used ||
	     (t->phase == MIGRATING && c.old_used != t->old.used) ||
	     t->slab.live != c.entries + t->anchors + t->grave.n))
		rc = -EUCLEAN;
	for (unsigned g = 0; rc == 0 && g < t->nkg; g++)
		if (c.kg[g] != t->kg_count[g] ||
		    (t->kg_spilled != NULL ? c.kgs[g] != t->kg_spilled[g] : c.kgs[g] != 0))
			rc = -EUCLEAN;
	sl_alloc_free(t->a, c.kg);
	sl_alloc_free(t->a, c.rh);
	sl_alloc_free(t->a, c.rloc);
	return rc;
}
