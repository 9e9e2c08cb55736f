/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_table_int.h — the layout of the keyed-state table, shared by
 * table.c (the table) and table_snap.c (its copy-on-write snapshots).
 * Nothing outside state/table*.c includes it; see table.c's header
 * comment for what the structures mean.
 */
#ifndef SLI_TABLE_INT_H
#define SLI_TABLE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <sluice/sl_alloc.h>

#include "sli_io.h"
#include "sli_state.h"

/* A growable array of pointers (the lists of table_snap.c). */
struct sli_pvec {
	void **v;
	size_t n, cap;
};

#define SEG_SHIFT 12 /* 4096 slots = 64 KiB per segment */
#define SEG_SLOTS ((size_t)1 << SEG_SHIFT)
#define SEG_MASK  (SEG_SLOTS - 1)
#define MIN_CAP	  64

#define F_LINKED 1u /* has a ring after the header: namespaced entry or anchor */
#define F_ANCHOR 2u /* head of the ring of one (state, key)'s namespaced entries */
#define F_REF	 4u /* used since the clock hand last passed (spilling) */
/*
 * Created while a snapshot is pending: not the snapshot's (table_snap.c).
 * Successive snapshots use the two bits in turn (t->fresh_bit), so that a
 * freeze need not clear the bits its predecessor left (F_FRESH: either).
 */
#define F_FRESH_A 8u
#define F_FRESH_B 32u
#define F_FRESH	  (F_FRESH_A | F_FRESH_B)
#define F_PIN	  16u /* a pinned copy, never in the table (nor in a snapshot) */

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
	/*
	 * The pending snapshot that has not captured all of this array's
	 * segments yet (table_snap.c), or NULL; greg: its region for this
	 * array. A slot is written only after slot_guard().
	 */
	struct sli_table_frozen *gf;
	unsigned greg;
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
	/* Spilling: */
	struct sli_spill *sp; /* NULL: no budget */
	size_t budget;
	size_t ebytes; /* slab bytes of live entries and anchors */
	size_t hand;   /* clock position in tab */
	struct pin *pins;
	size_t nspilled;	/* entries on disk: plain records and ring members */
	size_t rings;		/* ring records on disk */
	size_t *kg_spilled;	/* [nkg]: entries on disk per key group */
	unsigned char *scratch; /* a ring's record value being built */
	size_t scratch_cap;
	int err;
	char errmsg[600];
	/* Copy-on-write snapshots (table_snap.c): the pending one, or NULL. */
	struct sli_table_frozen *snap;
	struct sli_pvec fresh; /* entries allocated while it is pending (fresh_bit) */
	/* Those of the snapshot before (the other bit), whose bits drain() still clears. */
	struct sli_pvec fresh_old;
	uint8_t
	    fresh_bit; /* the pending (or last) snapshot's: F_FRESH_A or F_FRESH_B; 0: none yet */
	struct sli_pvec grave; /* blocks it may read that the table let go: freed after it */
	size_t grave_bytes;
};

/* An entry read from disk that could not be reinserted: freed at the next mutation. */
struct pin {
	struct pin *next;
	uint64_t pad;
};

/*
 * Reads spilled records for a partition: sli_spill_read() on the table's
 * store (synchronous snapshots, the task) or a frozen view of it
 * (sli_spill_view_read(), any thread). @why: the last failure's message.
 */
struct sli_part_reader {
	int (*read)(void *arg, unsigned n, const sli_spill_loc *loc, struct sli_spill_rec *rec);
	const char *(*why)(void *arg);
	void *arg;
};

struct sli_table_part {
	const struct sl_allocator *a;
	const struct sli_table *t; /* NULL: built from a frozen snapshot */
	struct sli_part_reader rd;
	uint64_t mods; /* t->mods when built */
	unsigned kg_first, nkg;
	size_t *off; /* [nkg + 1]: group g is ents[off[g], off[g + 1]) */
	const struct sli_entry **ents;
	/* Spilled entries: group g's records are at locs[soff[g], soff[g + 1]). */
	size_t *soff;
	size_t *scnt; /* [nkg]: entries in group g's records (rings hold several) */
	sli_spill_loc *locs;
	uint64_t *hashes;
	const struct sli_entry **gents; /* the group loaded last: resident + spilled */
	struct arena *arena;		/* its spilled entries, a chunk per read batch */
	unsigned gkg;
	int err;
	char errmsg[320];
};

struct arena {
	struct arena *next;
	uint64_t pad;
};

/* Where an entry's slot is. */
struct loc {
	struct slot *s;
	size_t i;
	bool old;
};

extern char sli_table_tomb;
#define TOMB ((struct sli_entry *)(void *)&sli_table_tomb)

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

static inline size_t esize(const struct sli_entry *e)
{
	return sli_slab_usable(e, e->cls);
}

static inline struct ring *ering(struct sli_entry *e)
{
	return (struct ring *)(e + 1);
}

static inline struct slot *slot_at(const struct stab *st, size_t i)
{
	return &st->seg[i >> SEG_SHIFT][i & SEG_MASK];
}

/*
 * Flags of an entry the pending snapshot may read are written with
 * relaxed atomic stores by the task (F_REF, by gets and the clock hand)
 * and read with relaxed atomic loads by the snapshot's thread (which
 * only needs F_LINKED and F_ANCHOR, never changed after creation): the
 * byte is shared, its bits the two threads care about are not.
 */
static inline void flags_set(struct sli_entry *e, unsigned f)
{
	__atomic_store_n(&e->flags, (uint8_t)(e->flags | f), __ATOMIC_RELAXED);
}

static inline void flags_clear(struct sli_entry *e, unsigned f)
{
	__atomic_store_n(&e->flags, (uint8_t)(e->flags & ~f), __ATOMIC_RELAXED);
}

/* ------------------------------------------------ table_snap.c, for table.c */

/*
 * Is @e one the pending snapshot may read? Every entry in the table at
 * the barrier is; entries allocated since (t->fresh_bit) and pinned copies
 * (F_PIN) are not: an entry with only the other bit was allocated while the
 * previous snapshot was pending, before this one's barrier. The task must copy such an entry before
 * writing its header or value, and must not free it until the snapshot is released.
 */
static inline bool snap_shared(const struct sli_table *t, const struct sli_entry *e)
{
	return t->snap != NULL && !(e->flags & (t->fresh_bit | F_PIN));
}

/*
 * The pending snapshot captures the entry pointers of a slot segment
 * lazily (table_snap.c); segment @k of its region @reg is about to be
 * written or freed: capture it first, unless done already.
 */
void sli_snap_guard_seg(struct sli_table_frozen *f, unsigned reg, size_t k);

/* Slot @i of @st is about to be written (or its segment freed). */
static inline void slot_guard(const struct stab *st, size_t i)
{
	if (__builtin_expect(st->gf != NULL, 0))
		sli_snap_guard_seg(st->gf, st->greg, i >> SEG_SHIFT);
}

/* Capture what the pending snapshot has not yet, on the task, and stop guarding. */
void sli_snap_unguard(struct sli_table *t);

/* An entry was allocated: while a snapshot is pending, mark it (t->fresh_bit) and list it. */
void sli_snap_fresh(struct sli_table *t, struct sli_entry *e);
/*
 * The table lets go of block @e: true when the pending snapshot keeps it
 * (freed at its release), false when the caller frees it now.
 */
bool sli_snap_retire(struct sli_table *t, struct sli_entry *e);
/* Release the pending snapshot when its reader is done (a mutating call). */
void sli_snap_poll(struct sli_table *t);
/* Out of memory for a copy: wait until the snapshot's reader is done, then release it. */
void sli_snap_wait(struct sli_table *t);
/* The table is destroyed: hand its memory to a snapshot still being read. */
void sli_snap_detach(struct sli_table *t);

/* table.c, for table_snap.c: the spilled entries of group g of @p, read through p->rd. */
int sli_part_load(struct sli_table_part *p, unsigned g);

#endif /* SLI_TABLE_INT_H */
