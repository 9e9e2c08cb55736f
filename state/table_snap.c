/* SPDX-License-Identifier: Apache-2.0 */
/*
 * table_snap.c — copy-on-write snapshots of the keyed-state table (see
 * sli_table_freeze() in sli_state.h): Flink's CopyOnWriteStateMap,
 * adapted to an open-addressing table whose entries live out of line.
 *
 * The snapshot is the set of entries the slot arrays point to at the
 * barrier (the current array and, during a resize, the undrained part of
 * the old one), plus the spill store's view (record locations, duplicated
 * descriptors, the unwritten buffer). At the barrier the task records only
 * the arrays' segment pointers and a state byte per 64 KiB segment: O(slots
 * / 4096), not O(entries). The entry pointers of a segment are captured
 * later, once, by whichever side claims it first (SEG_LIVE -> SEG_BUSY by
 * compare-and-swap, SEG_DONE when captured): the reader, which captures
 * every segment before it partitions, or the task, just before it writes
 * a slot of the segment or frees it (slot_guard() in table.c, on every
 * slot write); a side finding SEG_BUSY waits for SEG_DONE (one segment).
 * Once every segment is captured the task stops guarding. The reader
 * then groups the entries by key group (reading their headers) and
 * serialises them.
 *
 * Rules while a snapshot is pending (t->snap != NULL), for an entry the
 * snapshot may read ("shared": it was in the table at the barrier, so it
 * is neither F_FRESH nor F_PIN):
 *   - its header, key, namespace and value are never written: a put or a
 *     TTL touch writes a copy (table.c relocate()) that takes its place
 *     in the slot and the ring; the ring links themselves (after the
 *     header) may change, the reader never looks at them;
 *   - its flags byte changes only by relaxed atomic stores of F_REF (the
 *     reader loads it atomically for F_LINKED and F_ANCHOR, which never
 *     change);
 *   - its block is never freed nor reused: remove, clear, TTL cleanup,
 *     eviction to disk and a copy's original put it on the graveyard,
 *     freed once the snapshot is released.
 * Entries allocated meanwhile are F_FRESH and listed (t->fresh), so that
 * the bit can be cleared after the release (at the next barrier they are
 * shared like the rest). A fresh block freed meanwhile goes straight back to
 * the slab, unless it is a big one (the allocator would get it back, and
 * the release still writes its flags): then it waits on the graveyard
 * too. Without memory for a list or a copy, the task waits for the
 * reader (sli_snap_wait()), then writes in place: never a torn snapshot.
 *
 * Spilled entries: the snapshot reads the records the index held at the
 * barrier through the view (spill.c), never through the task's engine.
 *
 * Threads and ownership. A frozen table has two references: the task's
 * (t->snap) and the reader's (sli_table_frozen_put()). The task notices
 * that the reader is done (refs == 1) at its next mutating call or
 * freeze and drops its reference; then each mutating call clears
 * DRAIN_STEP fresh bits and, once none is left, frees DRAIN_STEP
 * graveyard blocks (drain(): at millions of rewritten entries, doing it
 * all in one call was a pause as long as the old barrier's). A freeze
 * clears the bits still set first (graveyard blocks can wait: the new
 * snapshot cannot reach them). A big fresh block the table lets go while
 * its bit is still listed waits on the graveyard (the list still writes
 * it). Gets never free: pointers a get returned may point into graveyard
 * blocks, valid until the next mutation. If
 * the table is destroyed first, its slab (every entry, graveyard
 * included) moves to the frozen table, which the last reference frees.
 *
 * One pending snapshot per table: a freeze while the previous one is still
 * read fails with -EBUSY, and the checkpoint serialises the state on the
 * task instead (counted in sl_checkpoint_stats.sync_fallbacks). The
 * coordinator (core/checkpoint.c) triggers a checkpoint only when none is in
 * flight, and drops its reference as it takes the subtask's ack, before the
 * checkpoint completes; so regular checkpoints never meet a pending snapshot.
 * The final checkpoint at the end of the input, numbered after the last
 * triggered one, waits until the coordinator released the subtask's images
 * (sli_ckpt_final_ready()). One case overlaps: the checkpoint after a
 * failed one, whose late barriers a task may still take. It is rare, so
 * more pending snapshots (per-snapshot graveyards and fresh lists) are not
 * worth their cost; tests/state/test_ckpt_ops.c ("never busy", "the final
 * checkpoint waits") checks it in runs with many checkpoints.
 */
#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include <sluice/sl_alloc.h>
#include <sluice/sl_common.h>

#include "sli_table_int.h"

/*
 * A slot array as it was at the barrier, captured a segment at a time:
 * its segments' pointers then, and per segment SEG_LIVE (not captured),
 * SEG_BUSY (being captured by one side) or SEG_DONE. The captured slots
 * are those at cyclic offsets [0, n) from slot @from (the undrained part
 * of a draining array; all of the current one).
 */
enum { SEG_LIVE, SEG_BUSY, SEG_DONE };

struct fz_reg {
	struct slot **seg;	/* [nseg]; NULL: released before the barrier (drained) */
	_Atomic uint8_t *state; /* [nseg] */
	size_t nseg, per, mask; /* per: slots per segment */
	size_t from, n;
};

struct sli_table_frozen {
	_Atomic uint32_t refs;	       /* the task's and the reader's */
	const struct sli_entry **ents; /* [nents]: the slots' entries at the barrier, anchors too */
	size_t nents;		       /* expected at the barrier; checked once all is captured */
	struct fz_reg reg[2];	       /* the current slot array; the draining one */
	_Atomic size_t fill;	       /* ents reserved by captures so far */
	_Atomic size_t left;	       /* segments not SEG_DONE */
	size_t *kg_spilled; /* [nkg]: entries on disk per group at the barrier; NULL: no spill */
	struct sli_spill_view *view;
	unsigned kg_first, nkg;
	struct sli_slab slab; /* the table's, when it was destroyed first (owns_slab) */
	bool owns_slab;
};

/* ---------------------------------------------------------------- lists */

static int pvec_push(const struct sl_allocator *a, struct sli_pvec *v, void *p)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 256;
		void **n = sl_alloc_aligned(a, cap * sizeof(*n), 16);

		if (n == NULL)
			return -ENOMEM;
		if (v->n != 0)
			memcpy(n, v->v, v->n * sizeof(*n));
		sl_alloc_free(a, v->v);
		v->v = n;
		v->cap = cap;
	}
	v->v[v->n++] = p;
	return 0;
}

static void pvec_fini(const struct sl_allocator *a, struct sli_pvec *v)
{
	sl_alloc_free(a, v->v);
	memset(v, 0, sizeof(*v));
}

/* ------------------------------------------------------- the task's side */

void sli_snap_fresh(struct sli_table *t, struct sli_entry *e)
{
	/* Unlisted, the bit could not be cleared: then the entry counts as shared (more copies). */
	if (pvec_push(t->a, &t->fresh, e) == 0)
		e->flags |= t->fresh_bit;
}

bool sli_snap_retire(struct sli_table *t, struct sli_entry *e)
{
	if (t->snap == NULL && !(e->flags & F_FRESH))
		return false; /* no snapshot, and not on the fresh list drain() still clears */
	if (!snap_shared(t, e) && e->cls != 0)
		return false; /* fresh: never the reader's, and the slab keeps the memory */
	if (pvec_push(t->a, &t->grave, e) < 0) {
		sli_snap_wait(t); /* the reader is done with it */
		return false;
	}
	t->grave_bytes += sli_slab_usable(e, e->cls);
	t->st.cow_deferred++;
	return true;
}

/*
 * The reader is done (refs == 1): the snapshot goes. Its fresh entries
 * become ordinary ones and its graveyard is freed later, a slice per
 * mutating call (drain()): both are O(entries changed meanwhile), too
 * long a pause for one call at millions of entries.
 */
static void unshare(struct sli_table *t)
{
	t->tab.gf = t->old.gf = NULL; /* what the reader did not capture, it will never read */
	sli_table_frozen_put(t->snap);
	t->snap = NULL;
}

/* Fresh entries whose bit is cleared, graveyard blocks freed, per mutating call (drain()). */
#define DRAIN_STEP 256

/*
 * With no snapshot pending: clear the fresh bit of up to @max listed
 * entries, then, once none is left, free up to @max graveyard blocks.
 * In that order because a big fresh block that the table let go waits
 * on the graveyard (sli_snap_retire()) until its bit is cleared.
 */
/*
 * Clear the bit of up to @max entries of fresh list @v, those of the
 * snapshot that used bit @bit; return how many. A listed block may have
 * been freed and reused since: only its own bit is cleared, which only
 * that list sets.
 */
static size_t unfresh(struct sli_pvec *v, uint8_t bit, size_t max)
{
	size_t k;

	for (k = 0; k < max && v->n != 0; k++)
		((struct sli_entry *)v->v[--v->n])->flags &= (uint8_t)~bit;
	return k;
}

static void drain(struct sli_table *t, size_t max)
{
	size_t k;

	SL_ASSERT(t->snap == NULL);
	k = unfresh(&t->fresh_old, t->fresh_bit ^ F_FRESH, max);
	unfresh(&t->fresh, t->fresh_bit, max - k);
	for (k = 0; t->fresh.n == 0 && t->fresh_old.n == 0 && k < max && t->grave.n != 0; k++) {
		struct sli_entry *e = t->grave.v[--t->grave.n];

		t->grave_bytes -= sli_slab_usable(e, e->cls);
		sli_slab_free(&t->slab, e, e->cls);
	}
}

static bool reader_done(const struct sli_table_frozen *f)
{
	/*
	 * Acquire: pairs with the acq_rel decrement in the reader's
	 * sli_table_frozen_put(): its reads of the entries happen before we
	 * write or free them.
	 */
	return atomic_load_explicit(&f->refs, memory_order_acquire) == 1;
}

/*
 * Acquire: pairs with the acq_rel decrement of left in seg_done(): every
 * capture's reads of the slots happen before our later writes.
 */
static bool all_captured(struct sli_table_frozen *f)
{
	return atomic_load_explicit(&f->left, memory_order_acquire) == 0;
}

void sli_snap_poll(struct sli_table *t)
{
	if (t->snap != NULL && (t->tab.gf != NULL || t->old.gf != NULL) && all_captured(t->snap))
		t->tab.gf = t->old.gf = NULL; /* stop guarding the slot arrays */
	if (t->snap != NULL && reader_done(t->snap))
		unshare(t);
	if (t->snap == NULL)
		drain(t, DRAIN_STEP);
}

void sli_snap_wait(struct sli_table *t)
{
	if (t->snap == NULL)
		return;
	t->st.cow_waits++;
	while (!reader_done(t->snap))
		nanosleep(&(struct timespec){ 0, 100000 }, NULL);
	unshare(t); /* the graveyard waits for the next mutation (gets' pointers) */
}

void sli_snap_detach(struct sli_table *t)
{
	struct sli_table_frozen *f = t->snap;

	if (f != NULL && reader_done(f)) {
		unshare(t);
		f = NULL;
	}
	if (f != NULL) {
		/*
		 * Still being read: the reader gets the slab. Our writes here
		 * happen before our acq_rel decrement, which the reader's last
		 * decrement acquires before it frees.
		 */
		f->slab = t->slab;
		f->owns_slab = true;
		memset(&t->slab, 0, sizeof(t->slab));
		t->grave.n = 0;
		t->grave_bytes = 0;
		t->snap = NULL;
		sli_table_frozen_put(f);
	}
	t->fresh.n = t->fresh_old.n = 0; /* the entries go with the slab: no bit to clear */
	drain(t, SIZE_MAX);
	pvec_fini(t->a, &t->fresh);
	pvec_fini(t->a, &t->fresh_old);
	pvec_fini(t->a, &t->grave);
}

/* ------------------------------------------------ lazy capture of the slots */

/* Is slot @i of @r one the snapshot holds (in its cyclic range)? */
static inline bool in_reg(const struct fz_reg *r, size_t i)
{
	return ((i - r->from) & r->mask) < r->n;
}

/*
 * Capture segment @k of @r, claimed by the caller (SEG_BUSY): append the
 * entry pointers of its slots in range to f->ents, then mark it done.
 * Either side runs it: the reader (capture_all()) or the task, just
 * before it writes a slot of the segment or frees it (sli_snap_guard_seg()).
 */
static void seg_capture(struct sli_table_frozen *f, struct fz_reg *r, size_t k)
{
	const struct slot *s = r->seg[k];
	size_t base = k * r->per, cnt = 0, at;

	for (size_t j = 0; j < r->per; j++)
		cnt += s[j].e != NULL && s[j].e != TOMB && in_reg(r, base + j);
	/* Relaxed: only reserves a range of ents; SEG_DONE publishes what is written there. */
	at = atomic_fetch_add_explicit(&f->fill, cnt, memory_order_relaxed);
	SL_ASSERT(at + cnt <= f->nents);
	for (size_t j = 0; j < r->per; j++)
		if (s[j].e != NULL && s[j].e != TOMB && in_reg(r, base + j))
			f->ents[at++] = s[j].e;
	/*
	 * Release: pairs with the acquire loads of the state in seg_wait():
	 * our reads of the segment (reader) happen before the task writes it,
	 * our writes to ents (task) before the reader reads them.
	 */
	atomic_store_explicit(&r->state[k], SEG_DONE, memory_order_release);
	/* Acq_rel: pairs with the acquire load in all_captured(); the release half as above. */
	atomic_fetch_sub_explicit(&f->left, 1, memory_order_acq_rel);
}

/* Claim segment @k of @r for capture: true if it was SEG_LIVE (now SEG_BUSY, ours). */
static bool seg_claim(struct fz_reg *r, size_t k)
{
	uint8_t live = SEG_LIVE;

	/* Relaxed: the claim orders nothing; the segment's contents are the barrier's. */
	return atomic_compare_exchange_strong_explicit(&r->state[k], &live, SEG_BUSY,
						       memory_order_relaxed, memory_order_relaxed);
}

/* Wait until the other side has captured segment @k of @r (a few microseconds). */
static void seg_wait(struct fz_reg *r, size_t k)
{
	/* Acquire: pairs with the release store of SEG_DONE in seg_capture(). */
	while (atomic_load_explicit(&r->state[k], memory_order_acquire) != SEG_DONE)
		nanosleep(&(struct timespec){ 0, 1000 }, NULL);
}

void sli_snap_guard_seg(struct sli_table_frozen *f, unsigned reg, size_t k)
{
	struct fz_reg *r = &f->reg[reg];

	SL_ASSERT(k < r->nseg);
	if (seg_claim(r, k))
		seg_capture(f, r, k);
	else
		seg_wait(r, k);
}

/* Capture every segment not yet captured, from either side; wait for the other's. */
static void capture_all(struct sli_table_frozen *f)
{
	for (unsigned g = 0; g < 2; g++)
		for (size_t k = 0; k < f->reg[g].nseg; k++)
			if (seg_claim(&f->reg[g], k))
				seg_capture(f, &f->reg[g], k);
	for (unsigned g = 0; g < 2; g++)
		for (size_t k = 0; k < f->reg[g].nseg; k++)
			seg_wait(&f->reg[g], k);
}

void sli_snap_unguard(struct sli_table *t)
{
	if (t->tab.gf != NULL || t->old.gf != NULL)
		capture_all(t->snap);
	t->tab.gf = t->old.gf = NULL;
}

/*
 * Record @st (region @g of @f) as it is at the barrier: its segment
 * pointers and one state byte per segment. O(segments), not O(slots).
 */
static int reg_init(struct sli_table_frozen *f, unsigned g, struct stab *st, size_t from, size_t n)
{
	struct fz_reg *r = &f->reg[g];

	r->nseg = st->nseg;
	r->per = st->cap < SEG_SLOTS ? st->cap : SEG_SLOTS;
	r->mask = st->mask;
	r->from = from;
	r->n = n;
	r->seg = sl_alloc_aligned(NULL, r->nseg * sizeof(*r->seg), SL_CACHE_LINE);
	r->state = sl_alloc_aligned(NULL, r->nseg, SL_CACHE_LINE);
	if (r->seg == NULL || r->state == NULL)
		return -ENOMEM;
	memcpy(r->seg, st->seg, r->nseg * sizeof(*r->seg));
	for (size_t k = 0; k < r->nseg; k++) {
		/* Relaxed: the reader gets f through the checkpoint's hand-over (a mutex). */
		atomic_init(&r->state[k], r->seg[k] != NULL ? SEG_LIVE : SEG_DONE);
		if (r->seg[k] != NULL)
			atomic_fetch_add_explicit(&f->left, 1, memory_order_relaxed);
	}
	return 0;
}

int sli_table_freeze(struct sli_table *t, struct sli_table_frozen **out)
{
	struct sli_table_frozen *f;
	size_t n;
	int rc = -ENOMEM;

	if (t == NULL || out == NULL)
		return -EINVAL;
	sli_snap_poll(t);
	if (t->snap != NULL) {
		t->st.cow_busy++;
		return -EBUSY;
	}
	/*
	 * The new snapshot marks its fresh entries with the bit the one
	 * before the previous one used: clear what drain() left of those
	 * (usually nothing: a whole interval went by). The previous one's
	 * bits, which the new snapshot ignores, keep draining afterwards: at
	 * the final checkpoint, which follows its predecessor's release with
	 * no mutating call in between, they are every entry written while
	 * that one was pending. Graveyard blocks wait: the new snapshot
	 * cannot reach them.
	 */
	t->st.cow_fresh_sync += unfresh(&t->fresh_old, t->fresh_bit ^ F_FRESH, SIZE_MAX);
	{
		struct sli_pvec v = t->fresh_old;

		t->fresh_old = t->fresh;
		t->fresh = v; /* empty, its capacity reused */
		t->fresh_bit = t->fresh_bit == F_FRESH_A ? F_FRESH_B : F_FRESH_A;
	}
	n = t->tab.used + (t->phase == MIGRATING ? t->old.used : 0);
	f = sl_alloc_aligned(NULL, sizeof(*f), SL_CACHE_LINE);
	if (f == NULL)
		return -ENOMEM;
	memset(f, 0, sizeof(*f));
	f->kg_first = t->kg_first;
	f->nkg = t->nkg;
	/* Filled by the captures: pages are touched by whichever side captures. */
	f->ents = sl_alloc_aligned(NULL, (n + 1) * sizeof(*f->ents), SL_CACHE_LINE);
	if (f->ents == NULL)
		goto err;
	f->nents = n;
	if (reg_init(f, 0, &t->tab, 0, t->tab.cap) < 0 ||
	    (t->phase == MIGRATING &&
	     reg_init(f, 1, &t->old, t->mig_start + t->mig_done, t->old.cap - t->mig_done) < 0))
		goto err;
	if (t->sp != NULL) {
		f->kg_spilled = sl_alloc_aligned(NULL, t->nkg * sizeof(size_t), SL_CACHE_LINE);
		if (f->kg_spilled == NULL)
			goto err;
		memcpy(f->kg_spilled, t->kg_spilled, t->nkg * sizeof(size_t));
		if ((rc = sli_spill_view_create(t->sp, &f->view)) < 0)
			goto err;
	}
	/* The reader gets f through the checkpoint's hand-over (a mutex): relaxed is enough. */
	atomic_init(&f->refs, 2);
	t->snap = f;
	t->tab.gf = f;
	t->tab.greg = 0;
	if (t->phase == MIGRATING) {
		t->old.gf = f;
		t->old.greg = 1;
	}
	*out = f;
	return 0;
err:
	atomic_init(&f->refs, 1);
	atomic_init(&f->left, 0); /* nothing to capture: never guarded */
	sli_table_frozen_put(f);
	return rc;
}

/* ------------------------------------------------------ the reader's side */

void sli_table_frozen_put(struct sli_table_frozen *f)
{
	/*
	 * Acq_rel: the release half orders this holder's reads of the
	 * entries (reader) or its hand-over of the slab (sli_snap_detach())
	 * before the other holder's acquire (reader_done(), or the last
	 * decrement); the acquire half lets the last holder free after all.
	 */
	if (f == NULL || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
		return;
	sli_spill_view_destroy(f->view);
	if (f->owns_slab)
		sli_slab_fini(&f->slab);
	sl_alloc_free(NULL, f->kg_spilled);
	sl_alloc_free(NULL, f->ents);
	for (unsigned g = 0; g < 2; g++) {
		sl_alloc_free(NULL, f->reg[g].seg);
		sl_alloc_free(NULL, (void *)f->reg[g].state);
	}
	sl_alloc_free(NULL, f);
}

static int view_read(void *arg, unsigned n, const sli_spill_loc *loc, struct sli_spill_rec *rec)
{
	return sli_spill_view_read(arg, n, loc, rec);
}

static const char *view_why(void *arg)
{
	return sli_spill_view_error(arg);
}

/* Group the spilled records' locations by key group (soff, locs) and copy the entry counts. */
static int frozen_spilled(const struct sli_table_frozen *f, struct sli_table_part *p)
{
	size_t n;
	const sli_spill_loc *locs = sli_spill_view_locs(f->view, &n);

	p->soff = sl_alloc_aligned(NULL, (f->nkg + 1) * sizeof(size_t), SL_CACHE_LINE);
	p->scnt = sl_alloc_aligned(NULL, f->nkg * sizeof(size_t), SL_CACHE_LINE);
	p->locs = sl_alloc_aligned(NULL, (n + 1) * sizeof(*p->locs), SL_CACHE_LINE);
	if (p->soff == NULL || p->scnt == NULL || p->locs == NULL)
		return -ENOMEM;
	memcpy(p->scnt, f->kg_spilled, f->nkg * sizeof(size_t));
	memset(p->soff, 0, (f->nkg + 1) * sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		p->soff[sli_spill_loc_kg(locs[i]) - f->kg_first + 1]++;
	for (unsigned g = 0; g < f->nkg; g++)
		p->soff[g + 1] += p->soff[g];
	for (size_t i = 0; i < n; i++) /* soff[g] as group g's cursor, then shifted back */
		p->locs[p->soff[sli_spill_loc_kg(locs[i]) - f->kg_first]++] = locs[i];
	for (unsigned g = f->nkg; g > 0; g--)
		p->soff[g] = p->soff[g - 1];
	p->soff[0] = 0;
	return 0;
}

int sli_table_frozen_partition(struct sli_table_frozen *f, struct sli_table_part **out)
{
	struct sli_table_part *p;
	size_t res = 0;

	if (f == NULL || out == NULL)
		return -EINVAL;
	capture_all(f); /* what the task has not captured before writing it */
	/* Relaxed: after capture_all()'s acquire loads of every segment's SEG_DONE. */
	SL_ASSERT(atomic_load_explicit(&f->fill, memory_order_relaxed) == f->nents);
	p = sl_alloc_aligned(NULL, sizeof(*p), SL_CACHE_LINE);
	if (p == NULL)
		return -ENOMEM;
	memset(p, 0, sizeof(*p));
	p->rd = (struct sli_part_reader){ view_read, view_why, f->view };
	p->kg_first = f->kg_first;
	p->nkg = f->nkg;
	p->gkg = UINT32_MAX;
	p->off = sl_alloc_aligned(NULL, (f->nkg + 1) * sizeof(size_t), SL_CACHE_LINE);
	p->ents = sl_alloc_aligned(NULL, (f->nents + 1) * sizeof(*p->ents), SL_CACHE_LINE);
	if (p->off == NULL || p->ents == NULL || (f->view != NULL && frozen_spilled(f, p) < 0)) {
		sli_table_part_destroy(p);
		return -ENOMEM;
	}
	/* A counting sort by key group, as sli_table_partition(); anchors are not entries. */
	memset(p->off, 0, (f->nkg + 1) * sizeof(size_t));
	for (size_t i = 0; i < f->nents; i++)
		if (!(__atomic_load_n(&f->ents[i]->flags, __ATOMIC_RELAXED) & F_ANCHOR))
			p->off[f->ents[i]->kg - f->kg_first + 1]++;
	for (unsigned g = 0; g < f->nkg; g++)
		p->off[g + 1] += p->off[g];
	for (size_t i = 0; i < f->nents; i++) {
		const struct sli_entry *e = f->ents[i];

		/* Relaxed: the task may set F_REF meanwhile (flags_set()); F_ANCHOR never changes.
		 */
		if (!(__atomic_load_n(&e->flags, __ATOMIC_RELAXED) & F_ANCHOR)) {
			p->ents[p->off[e->kg - f->kg_first]++] = e;
			res++;
		}
	}
	for (unsigned g = f->nkg; g > 0; g--)
		p->off[g] = p->off[g - 1];
	p->off[0] = 0;
	SL_ASSERT(p->off[f->nkg] == res);
	*out = p;
	return 0;
}
