/* SPDX-License-Identifier: Apache-2.0 */
/*
 * window.c — event-time windows with incremental aggregates: Flink's
 * WindowOperator with the default EventTimeTrigger, allowed lateness,
 * the late side output, and session merging (MergingWindowSet).
 *
 * State of one subtask:
 *   keys     every key seen: its bytes (in one arena, or in its record
 *            when 8 bytes or less) and hash, found
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
 * Stream slicing (tumbling, and sliding when the aggregate has merge and
 * SL_AGG_SLICEABLE: merged panes equal the window's own accumulator):
 * the entries are panes, not windows. Window starts and ends all lie on
 * the grid offset + k * g with g = gcd(size, slide), so the panes
 * [offset + k * g, + g) tile time and each window is size / g of them;
 * an element updates exactly one pane accumulator. A window fires by
 * merging its live panes into a scratch accumulator (a tumbling window is
 * one pane: its accumulator is used as is). The rules are those of the
 * per-window path, pane by pane:
 *   - a pane is created only when one of its windows is not late, and
 *     freed at the cleanup time of the last window containing it, so a
 *     window that is not late sees every pane element added while it was
 *     not late, exactly the contents it would have had on its own;
 *   - fire timers are registered when a pane is created, for its windows
 *     with end - 1 > watermark: later elements of the pane cannot add a
 *     window that is still ahead of the watermark. Late firings (end - 1
 *     <= watermark < cleanup) are done per element, as before;
 *   - timers live in buckets shared by all keys, one per timestamp (the
 *     grid makes them few): fire timers hold key ids, pane frees entry
 *     ids; fires run before frees of the same time. Registration skips
 *     the windows in a key's interval of known-registered windows, and a
 *     duplicate that slips through is dropped when it fires (all timers
 *     of one time run together; a key remembers the last time it fired),
 *     so timers are unique per (key, window, time);
 *   - hot path: the operator has one hot pane, on while every window of
 *     it is ahead of the watermark (turned off before the timer of its
 *     earliest window runs), and a key's slot is armed with its pane
 *     there by the key's first element in it; an element of an armed key
 *     in the hot pane (nothing late, nothing to fire now) is one add();
 *     with an 8-byte field key (sl_key_by_field()) and a built-in
 *     aggregate (sl_agg_count() ...) a specialised loop reads the key in
 *     place and folds the value inline into the key's table slot, merged
 *     into the pane by one pass over the armed slots (struct kslot);
 *   - a key's panes live in its ring (pane index mod ring size, no table
 *     entry; the rings of a few keys interleaved so that the panes being
 *     filled share cache lines) when their slot is free, else in the
 *     table: a firing of a key with nothing in the table merges its ring
 *     slots in order, without a lookup per pane.
 * Sessions and other sliding windows keep one entry per window.
 *
 * Time arithmetic never overflows: window starts come from sli_grid_mod(),
 * "start > ts - size" is written ts - start < size, cleanup times
 * saturate at INT64_MAX. A window that would start before INT64_MIN or
 * end after INT64_MAX is not representable and not assigned: an element
 * whose windows are all such is in no window, like an element between
 * two windows of a slide > size.
 *
 * Threads: one struct sli_win per subtask, on its worker's thread.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <sluice/sl_error.h>

#include "sli_checkpoint.h"
#include "sli_cow.h"
#include "sli_exec.h"
#include "sli_fault.h"
#include "sli_snap.h"
#include "sli_window.h"

#define RING_MAX 256	     /* slots of a key's pane ring, at most */
#define RID	 0x80000000u /* pane ids: in a ring */
#define RFREE	 INT64_MAX   /* no pane starts there (its windows would end after INT64_MAX) */
#define T_FIRE	 0x1
#define T_CLEAN	 0x2

/*
 * The key table is two arrays indexed alike, both open addressing with
 * linear probing from the same home slot (key_home()): struct kslot, read
 * by lookups and slow paths, and struct khot, all an element of an armed
 * 8-byte key needs on the hot path (16 bytes per slot), so that it
 * touches one cache line and nothing else. kw is the key's bytes when KS_WORD is set in id (an
 * 8-byte key: its bytes decide), else its hash (the key's record decides).
 *
 * Slicing: the operator has one hot pane start (struct sli_win, hot_*),
 * the same for every key: for input in about time order, nearly all the
 * elements of a batch fall in one pane. It is on only while every window
 * of that pane is ahead of the watermark: sliced_watermark() turns it off
 * before it runs a timer at or after the end - 1 of the pane's earliest
 * window. A slot is armed (cur, the key's pane at hot_start, entry + 1)
 * by the slow path of an element of the key in the hot pane, and listed
 * in hot_list; the slots listed are the armed ones. So an element of an
 * armed key whose timestamp is in the hot pane needs no other test:
 * nothing it would add to is late or due (the hot path), and the test is
 * two comparisons with values the loop keeps in registers.
 *
 * With a built-in aggregate, batch_word() folds a hot element into its
 * khot's delta, not into the pane's accumulator: delta is what the slot
 * owes its pane (the fold's identity when nothing: agg_identity(); always
 * so when the slot is not armed), merged into it (kslot_flush()) before
 * anything reads that accumulator, by one pass over hot_list
 * (hot_sweep()): when the hot pane moves or is turned off, which happens
 * before any window of the pane fires, and before a snapshot
 * (win_flush_all(), which leaves the slots armed). Count, wrapping sum,
 * min and max do not depend on how their folds are grouped, so the
 * merged result is the one the adds in place gave, and the element
 * touches one cache line instead of two (the accumulators of 10k keys did
 * not stay in the L1 cache: bench_window tumbling spent a third of its
 * time waiting on them).
 */
struct kslot {
	uint64_t kw;
	uint32_t id;  /* key id + 1, | KS_WORD; 0: empty */
	uint32_t cur; /* slicing: armed, the key's pane at hot_start, entry + 1; 0: not */
};
_Static_assert(sizeof(struct kslot) == 16, "four slots per cache line");

/*
 * The hot half of a slot. w is the key's word while the slot is armed
 * with an 8-byte key, else the idle word of its line (hot_idle()), which
 * is chosen so that its own home is another line: no key whose home is
 * this line equals it. So, for a key whose home is this line, "w is the
 * key" means "armed with the key", and the hot path tests both with one
 * comparison per slot, without reading struct kslot. (A key that sits
 * past its home line is found through struct kslot: an idle word may
 * equal it there.)
 *
 * Why two arrays of 16 bytes per slot instead of one of 32 (id and cur
 * were next to kw and delta, two slots per line): bench_window tumbling,
 * 10k keys, measured with cachegrind (simulated 1 MiB last-level cache,
 * deterministic on a loaded machine) and in alternating runs. (1) The hot
 * loop reads 16 bytes per key: at the table's load of at most 1/2, 10k
 * keys take 32k slots, 512 KiB of khot instead of 1 MiB of slots, next
 * to the input passing through the L2 cache (misses of the table: 0.08
 * -> 0.03 per element). (2) Four slots per line keep nearly every key in
 * its home line: with two, a key past it cost the hot loop a probe and a
 * mispredicted branch (a lower load, 2 MiB of 32-byte slots, was faster
 * than the 1 MiB table, a higher one, 512 KiB, slower). (3) Armed-ness
 * is in the word (no cur to load and test per element). Together about
 * a tenth more engine records per second in the same runs.
 */
#define KLINE 4u /* slots per cache line, in both arrays */

/*
 * A line of KLINE hot halves: their words together, so that the hot path
 * compares all of them with two vector comparisons (hot_match(): 9
 * instructions per element, where four scalar comparisons and their
 * combining took 18).
 */
struct khot {
	uint64_t w[KLINE];
	int64_t delta[KLINE]; /* built-in aggregates: folds owed to the armed pane */
};
_Static_assert(sizeof(struct khot) == 64, "one line per cache line");

/*
 * Where the probe for @hash starts in a key table of @cap slots: the
 * first slot of a cache line. Linear probing from there checks the
 * line's slots first, so a key that is not in the slot its hash picks
 * but in another one of the line costs no second line, and the hot path
 * checks all of them without a branch (chunk_word()).
 */
static inline uint32_t key_home(uint64_t hash, uint32_t cap)
{
	return (uint32_t)hash & (cap - KLINE);
}
#define KS_WORD	 0x80000000u
#define KEYS_MAX 0x7ffffffeu /* key ids + 1 stay below KS_WORD */

/* A key's record, by key id. */
struct wkey {
	uint64_t off; /* bytes in karena; keys of <= 8 bytes: the bytes, zero-padded */
	uint32_t len;
	uint32_t sessions; /* session windows: first entry + 1, 0: none */
	uint32_t slot;	   /* its slot in the key table */
};

/* The rest of a key, read on slow paths only (same index). */
struct wkcold {
	uint64_t hash;
	int64_t rlo, rhi;  /* slicing: window starts whose fire timers are registered */
	int64_t last_fire; /* slicing: time of its last on-time firing (drops duplicates) */
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

/* Slicing: the timers of one timestamp, for every key. */
struct tbucket {
	int64_t time;
	uint32_t *fires; /* key ids */
	uint32_t *frees; /* pane entries */
	uint32_t nfires, capfires, nfrees, capfrees;
	uint32_t next; /* free list: bucket + 1, 0: end */
};

struct sli_win {
	const struct sl_window_spec *spec;
	const struct sl_aggregate *agg;
	uint32_t acc_size;

	/* Slicing (see the top of the file); sliced is false for the per-window path. */
	bool sliced;
	int64_t slide;		       /* the slide; size for tumbling */
	int64_t pane;		       /* pane length g */
	struct sli_grid gslide, gpane; /* the grids of window starts and pane starts */
	uint8_t *scratch;
	struct tbucket *bk;
	uint32_t nbk, capbk, bk_free; /* bk_free: bucket + 1 */
	uint32_t *bheap;	      /* bucket ids by time */
	uint32_t nbheap, capbheap;
	uint32_t *btab; /* time -> bucket + 1, open addressing; 0: empty */
	uint32_t btcap, btcount;
	uint32_t bk_last; /* bucket + 1 of the last lookup, 0: none */
	/*
	 * Per key, a ring of its panes by pane index (1 << ring_bits slots):
	 * a pane goes into its slot when that is free, and into the window
	 * table otherwise (kspill counts those). A key with no spilled pane
	 * has all of them in its ring: a firing reads adjacent starts and
	 * accumulators instead of doing one hash lookup per pane. A ring pane
	 * has no entry: its id is RID | its index in the ring arrays
	 * (ring_idx()). The rings of 1 << ring_gbits consecutive keys are
	 * interleaved, slot by slot, so that the accumulators of one slot of
	 * those keys share a cache line: the panes the keys are filling now
	 * (one slot each, mostly the same) take as many lines as they need
	 * bytes, not one line per key (bench_window, 10k keys, tumbling: 80
	 * KiB instead of 320 KiB of lines, next to a key table of 1 MiB).
	 */
	int64_t *rstart; /* the slots' pane starts, RFREE: empty */
	uint8_t *raccs;	 /* their accumulators */
	uint32_t *kspill;
	uint32_t ring_bits, ring_gbits;
	bool ring_on;
	uint32_t nring, capring; /* keys 0..nring-1 have rings */
	/*
	 * The hot pane (struct kslot): [hot_start, hot_last], on when
	 * hot_on; hot_fire is the end - 1 of its earliest window. hot_list
	 * holds the table slots armed for it. It moves only forward, every
	 * HOT_VOTES elements that took the slow path in a newer pane whose
	 * windows are all ahead of the watermark (votes, hot_votes), to the
	 * oldest of their panes (hot_cand, whose earliest window ends at
	 * hot_cand_fire + 1): elements far ahead of the others do not take
	 * it along, and elements left behind at a pane boundary do not move
	 * it back and forth.
	 */
	bool hot_on;
	int64_t hot_start, hot_last, hot_fire, hot_cand, hot_cand_fire;
	uint32_t hot_votes;
	uint32_t *hot_list;
	uint32_t nhot, caphot;

	struct wkey *keys;
	struct wkcold *kcold;
	uint32_t nkeys, capkeys;
	struct kslot *ktab; /* open addressing, linear probing, no deletion; 64-byte aligned */
	struct khot *khot; /* the hot halves of the slots, by line (struct khot); 64-byte aligned */
	uint64_t kidle[2]; /* the idle words: [1] in line kidle_line, [0] elsewhere */
	uint32_t kidle_line;
	uint8_t *kbuf; /* a chunk's keys that lie outside its elements (chunk_probe()) */
	size_t kbuf_cap;
	uint32_t kcap; /* power of two */
	char *karena;
	uint64_t kused, kcapb;

	struct went *ents;
	uint8_t *accs;
	uint32_t nents, capents, free_head; /* free_head: entry + 1 */
	uint32_t *wslot;		    /* entry + 1, 0: empty */
	uint32_t wcap, wcount;

	struct timer *heap;
	uint32_t nheap, capheap;

	struct sli_img *frozen;	 /* the last snapshot image (sli_win_freeze()) */
	struct sli_cow_task cow; /* the image still reading the arrays, if any */
};

/* ------------------------------------------- copy-on-write snapshots */

/*
 * Asynchronous snapshots (checkpoint-snapshot async, the default) are
 * copy-on-write (sli_cow.h). At the barrier, sli_win_freeze() only
 * records what the snapshot reads: six arrays (key records, key bytes,
 * entries, their accumulators, ring pane starts and ring accumulators),
 * each with its length then. The task goes on at once. The checkpoint
 * coordinator copies the arrays before it serialises the image
 * (wimg_write()); the task copies a segment itself before its first
 * write into one that may still be live (sli_cow_w(), cow_acc()).
 *
 * Only the fields the snapshot reads are guarded and copied
 * (ent_fields(), key_fields()): an entry's start, end, key and used (its
 * gen, timers and next change freely), every accumulator byte, ring
 * starts. Key records and key bytes are never rewritten below their
 * length at the barrier (keys are appended; a key record's off and len
 * never change), so they need no guard. An array the task grows while
 * the image is pending is not realloc()ed: sli_cow_grow() retires the
 * old block to the image.
 */
enum { CA_KEYS, CA_KARENA, CA_ENTS, CA_ACCS, CA_RSTART, CA_RACCS, CA_N };
_Static_assert(CA_N <= SLI_COW_MAX, "the window's image has more arrays than sli_cow holds");

/* An image: win_serialize() reads img, which points at the copies. */
struct wimg {
	struct sli_img h;
	struct sli_cow cow;
	struct sli_win img;
	int64_t watermark;
	unsigned maxp;
};

/* Before writing the accumulator of entry or ring pane @e. */
static inline void cow_acc(struct sli_win *w, uint32_t e)
{
	sli_cow_w(&w->cow, e & RID ? CA_RACCS : CA_ACCS, e & ~RID);
}

/* ------------------------------------------------------------ helpers */

static int64_t gcd64(int64_t a, int64_t b)
{
	while (b != 0) {
		int64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* end - 1 + lateness, saturating (Flink: Long.MAX_VALUE when it overflows). */
static inline int64_t cleanup_time(const struct sli_win *w, int64_t end)
{
	return sli_cleanup_time(end, w->spec->allowed_lateness);
}

/* ---------------------------------------------------------------- keys */

/* The identity of built-in fold @kind: a slot's delta that owes nothing (struct kslot). */
static inline int64_t agg_identity(uint32_t kind)
{
	return kind == SL_AGG_MIN_I64 ? INT64_MAX : kind == SL_AGG_MAX_I64 ? INT64_MIN : 0;
}

static void hot_off(struct sli_win *w);

/*
 * The key table hash of an 8-byte key x: a multiply and a fold (every
 * bit of x reaches the low bits, which pick the home slot). 8-byte keys
 * are always hashed here, exchange hash or not: one key, one hash.
 */
static inline uint64_t hash8(uint64_t x)
{
	uint64_t h = x * 0x9e3779b97f4a7c15ull;

	return h ^ (h >> 29);
}

/* The hot word and delta of slot @i (struct khot). */
#define HOT_W(w, i)	((w)->khot[(i) / KLINE].w[(i) % KLINE])
#define HOT_DELTA(w, i) ((w)->khot[(i) / KLINE].delta[(i) % KLINE])

/* The idle word of slot @i (struct khot). */
static inline uint64_t hot_idle(const struct sli_win *w, uint32_t i)
{
	return w->kidle[(i & ~(KLINE - 1)) == w->kidle_line];
}

/*
 * Idle words for a table of @cap slots (struct khot): any word for the
 * lines but one, its home, and for that line a word whose home is
 * another (the next word does, but for one chance in cap / KLINE).
 */
static void hot_idle_pick(struct sli_win *w, uint32_t cap)
{
	uint64_t x = 0x51ce0ull;

	w->kidle[0] = x;
	w->kidle_line = key_home(hash8(x), cap);
	while (key_home(hash8(++x), cap) == w->kidle_line)
		;
	w->kidle[1] = x;
}

static int key_grow_table(struct sli_win *w)
{
	uint32_t ncap = w->kcap ? w->kcap * 2 : 1024;
	struct kslot *ns = aligned_alloc(64, (size_t)ncap * sizeof(*ns));
	struct khot *nh = aligned_alloc(64, (size_t)ncap / KLINE * sizeof(*nh));

	if (ns == NULL || nh == NULL) {
		free(ns);
		free(nh);
		return -ENOMEM;
	}
	hot_off(w); /* hot_list holds slot indices: the slots move; nothing owed, none armed */
	memset(ns, 0, (size_t)ncap * sizeof(*ns));
	for (uint32_t k = 0; k < w->nkeys; k++) {
		uint32_t i = key_home(w->kcold[k].hash, ncap);

		while (ns[i].id)
			i = (i + 1) & (ncap - 1);
		ns[i] = w->ktab[w->keys[k].slot];
		w->keys[k].slot = i;
	}
	hot_idle_pick(w, ncap);
	for (uint32_t i = 0; i < ncap; i++) {
		nh[i / KLINE].w[i % KLINE] = hot_idle(w, i);
		nh[i / KLINE].delta[i % KLINE] = agg_identity(w->agg->builtin);
	}
	free(w->ktab);
	free(w->khot);
	w->ktab = ns;
	w->khot = nh;
	w->kcap = ncap;
	return 0;
}

/* The slot of key id @key. */
static inline struct kslot *kslot_of(const struct sli_win *w, uint32_t key)
{
	return &w->ktab[w->keys[key].slot];
}

/* The bytes of key @k: short keys live in the key's record (one cache miss less). */
static inline const void *key_bytes(const struct sli_win *w, const struct wkey *k)
{
	return k->len <= 8 ? (const void *)&k->off : w->karena + k->off;
}

/* Is key @k (@p, @len)? (The hashes are equal.) */
static inline bool key_is(const struct sli_win *w, const struct wkey *k, const void *p,
			  uint32_t len)
{
	uint64_t x = 0;

	if (k->len != len)
		return false;
	if (len > 8)
		return memcmp(w->karena + k->off, p, len) == 0;
	memcpy(&x, p, len);
	return x == k->off;
}

/* Room for twice as many keys. */
static int keys_grow(struct sli_win *w)
{
	uint32_t ncap = w->capkeys ? w->capkeys * 2 : 256;
	struct wkey *nk;
	struct wkcold *nc;

	if (w->capkeys > KEYS_MAX / 2)
		return -ENOMEM; /* ids would not fit a slot */
	nk = sli_cow_grow(&w->cow, CA_KEYS, w->keys, (size_t)w->capkeys * sizeof(*nk),
			  (size_t)ncap * sizeof(*nk));
	if (nk == NULL)
		return -ENOMEM;
	w->keys = nk;
	nc = realloc(w->kcold, (size_t)ncap * sizeof(*nc));
	if (nc == NULL)
		return -ENOMEM;
	w->kcold = nc;
	w->capkeys = ncap;
	return 0;
}

/*
 * The index in rstart and raccs of slot @slot of key @key's ring: groups
 * of 1 << ring_gbits keys, and in a group, slot by slot, key by key.
 */
static inline uint32_t ring_idx(const struct sli_win *w, uint32_t key, uint32_t slot)
{
	uint32_t gb = w->ring_gbits;

	return (key >> gb << (w->ring_bits + gb)) | slot << gb | (key & ((1u << gb) - 1));
}

/* The key of ring index @r (the inverse of ring_idx()). */
static inline uint32_t ring_key_of(const struct sli_win *w, uint32_t r)
{
	uint32_t gb = w->ring_gbits;

	return (r >> (w->ring_bits + gb) << gb) | (r & ((1u << gb) - 1));
}

/* Ring elements of keys 0..@nring-1 (whole groups): the prefix of rstart and raccs in use. */
static inline size_t ring_len(const struct sli_win *w, uint32_t nring)
{
	uint32_t gm = (1u << w->ring_gbits) - 1;

	return ((size_t)nring + gm) / (gm + 1) * (gm + 1) << w->ring_bits;
}

/*
 * An empty ring for new key @key (keys come in order), if rings are on:
 * the first key of a group empties the group's slots, past the end of the
 * arrays in use (ring_len()), so no snapshot reads them. Return 0 or
 * -ENOMEM.
 */
static int ring_key(struct sli_win *w, uint32_t key)
{
	size_t r = (size_t)1 << w->ring_bits, gn = (size_t)1 << w->ring_gbits;

	if (!w->ring_on || ((uint64_t)(key | (gn - 1)) + 1) << w->ring_bits > RID)
		return 0; /* ids would not fit: this key's panes are all in the table */
	if (key >= w->capring) {
		uint32_t ncap = w->capring ? w->capring * 2 : 256;
		int64_t *nr;
		uint8_t *na;
		uint32_t *ns;

		nr = sli_cow_grow(&w->cow, CA_RSTART, w->rstart, w->capring * r * sizeof(*nr),
				  ncap * r * sizeof(*nr));
		if (nr == NULL)
			return -ENOMEM;
		w->rstart = nr;
		na = sli_cow_grow(&w->cow, CA_RACCS, w->raccs, w->capring * r * w->acc_size,
				  ncap * r * w->acc_size);
		if (na == NULL)
			return -ENOMEM;
		w->raccs = na;
		ns = realloc(w->kspill, ncap * sizeof(*ns));
		if (ns == NULL)
			return -ENOMEM;
		w->kspill = ns;
		w->capring = ncap;
	}
	if ((key & (gn - 1)) == 0)
		for (size_t i = 0; i < r * gn; i++)
			w->rstart[key * r + i] = RFREE;
	w->kspill[key] = 0;
	w->nring = key + 1;
	return 0;
}

/*
 * The slot of key (@p, @len) with @hash, or of the empty slot where it
 * would go. An 8-byte key is found by its word alone: one slot touched
 * per probe, no key record.
 */
static inline uint32_t key_probe(const struct sli_win *w, uint64_t hash, const void *p,
				 uint32_t len)
{
	uint32_t mask = w->kcap - 1, i = key_home(hash, w->kcap);
	uint64_t x;

	if (len == 8) {
		memcpy(&x, p, 8);
		for (; w->ktab[i].id; i = (i + 1) & mask)
			if (w->ktab[i].kw == x && (w->ktab[i].id & KS_WORD))
				return i;
		return i;
	}
	for (; w->ktab[i].id; i = (i + 1) & mask) {
		const struct kslot *s = &w->ktab[i];

		/* Short keys: their bytes decide (the hash is theirs); long ones: hash first. */
		if (!(s->id & KS_WORD) && s->kw == hash && key_is(w, &w->keys[s->id - 1], p, len))
			return i;
	}
	return i;
}

/* The id of key (@p, @len) with @hash, added when new. Return >= 0 or -ENOMEM. */
static int64_t key_id(struct sli_win *w, uint64_t hash, const void *p, uint32_t len)
{
	uint32_t i, id;

	if ((w->nkeys + 1) * 2 > w->kcap && key_grow_table(w) < 0)
		return -ENOMEM;
	i = key_probe(w, hash, p, len);
	if (w->ktab[i].id)
		return (w->ktab[i].id & ~KS_WORD) - 1;
	if (w->nkeys == w->capkeys && keys_grow(w) < 0)
		return -ENOMEM;
	if (ring_key(w, w->nkeys) < 0)
		return -ENOMEM;
	id = w->nkeys;
	w->keys[id] = (struct wkey){ .len = len, .slot = i };
	w->kcold[id] = (struct wkcold){ .hash = hash, .rlo = 1, .rhi = 0, .last_fire = INT64_MIN };
	if (len <= 8) {
		memcpy(&w->keys[id].off, p, len);
		w->ktab[i] = (struct kslot){ .kw = len == 8 ? w->keys[id].off : hash,
					     .id = (id + 1) | (len == 8 ? KS_WORD : 0) };
		return w->nkeys++;
	}
	if (w->kused + len > w->kcapb) {
		uint64_t ncap = w->kcapb ? w->kcapb * 2 : 65536;
		char *na;

		while (ncap < w->kused + len)
			ncap *= 2;
		na = sli_cow_grow(&w->cow, CA_KARENA, w->karena, w->kused, ncap);
		if (na == NULL)
			return -ENOMEM;
		w->karena = na;
		w->kcapb = ncap;
	}
	memcpy(w->karena + w->kused, p, len);
	w->keys[id].off = w->kused;
	w->kused += len;
	w->ktab[i] = (struct kslot){ .kw = hash, .id = id + 1 };
	return w->nkeys++;
}

/* ------------------------------------------------------------- windows */

static inline const void *acc_of_c(const struct sli_win *w, uint32_t e)
{
	if (e & RID)
		return w->raccs + (size_t)(e & ~RID) * w->acc_size;
	return w->accs + (size_t)e * w->acc_size;
}

static inline void *acc_of(struct sli_win *w, uint32_t e)
{
	return (void *)acc_of_c(w, e);
}

/*
 * Merge what slot @i owes its armed pane (its delta) into the pane's
 * accumulator, and owe nothing (struct kslot). Custom aggregates never
 * use delta.
 */
static inline void kslot_flush(struct sli_win *w, uint32_t i)
{
	uint32_t kind = w->agg->builtin, e = w->ktab[i].cur - 1;
	int64_t *d = &HOT_DELTA(w, i);
	int64_t x;

	if (!w->ktab[i].cur || kind == SL_AGG_CUSTOM || *d == agg_identity(kind))
		return;
	cow_acc(w, e);
	memcpy(&x, acc_of(w, e), sizeof(x));
	sli_agg_fold(kind == SL_AGG_COUNT ? SL_AGG_SUM_I64 : kind, &x, *d);
	memcpy(acc_of(w, e), &x, sizeof(x));
	*d = agg_identity(kind);
}

#define SWEEP_PF 16 /* hot_sweep()'s prefetch distance, in slots */

/*
 * kslot_flush() of every armed slot (struct kslot), from hot_list: the
 * slots of the keys that had elements in the hot pane, not every key.
 * The slots and their accumulators are prefetched ahead, so that the
 * pass is not a cache miss per key, one after the other. With @disarm,
 * the slots are disarmed (their hot words idle again) and the list
 * emptied: the hot pane moves or goes.
 */
static void hot_sweep(struct sli_win *w, bool disarm)
{
	const bool owe = w->agg->builtin != SL_AGG_CUSTOM; /* custom aggregates never use delta */

	for (uint32_t j = 0; j < w->nhot; j++) {
		uint32_t i = w->hot_list[j];

		if (j + SWEEP_PF < w->nhot) {
			__builtin_prefetch(&w->ktab[w->hot_list[j + SWEEP_PF]], 1);
			__builtin_prefetch(&HOT_W(w, w->hot_list[j + SWEEP_PF]), 1);
		}
		if (owe && j + SWEEP_PF / 2 < w->nhot) {
			uint32_t c = w->ktab[w->hot_list[j + SWEEP_PF / 2]].cur;

			if (c)
				__builtin_prefetch(acc_of_c(w, c - 1), 1);
		}
		if (owe)
			kslot_flush(w, i);
		if (disarm) {
			w->ktab[i].cur = 0;
			HOT_W(w, i) = hot_idle(w, i);
		}
	}
	if (disarm)
		w->nhot = 0;
}

/* Turn the hot pane off: what its slots owe merged, none armed. */
static void hot_off(struct sli_win *w)
{
	hot_sweep(w, true);
	w->hot_on = false;
	w->hot_votes = 0;
}

/*
 * What the slots owe, merged: before a snapshot reads the accumulators.
 * The slots stay armed. Custom aggregates owe nothing.
 */
static void win_flush_all(struct sli_win *w)
{
	if (w->sliced && w->agg->builtin != SL_AGG_CUSTOM)
		hot_sweep(w, false);
}

SLI_WTAB_DEFINE(wtab, struct sli_win, 1024)

/* Room for twice as many entries and accumulators. Return 0 or -ENOMEM. */
static int ents_grow(struct sli_win *w)
{
	uint32_t ncap = w->capents ? w->capents * 2 : 16;
	struct went *ne;
	uint8_t *na;

	if (w->capents > UINT32_MAX / 2)
		return -ENOMEM;
	ne = sli_cow_grow(&w->cow, CA_ENTS, w->ents, (size_t)w->capents * sizeof(*ne),
			  (size_t)ncap * sizeof(*ne));
	if (ne == NULL)
		return -ENOMEM;
	w->ents = ne;
	na = sli_cow_grow(&w->cow, CA_ACCS, w->accs, (size_t)w->capents * w->acc_size,
			  (size_t)ncap * w->acc_size);
	if (na == NULL)
		return -ENOMEM; /* ents are larger already: growing them again is harmless */
	w->accs = na;
	w->capents = ncap;
	return 0;
}

/* A new entry for (key, [start, end)) with a fresh accumulator. Return its index or -ENOMEM. */
static int64_t win_add(struct sli_win *w, uint32_t key, int64_t start, int64_t end)
{
	uint32_t e, i;

	if ((w->wcount + 1) * 2 > w->wcap && wtab_grow(w) < 0)
		return -ENOMEM;
	if (w->free_head) {
		e = w->free_head - 1;
		w->free_head = w->ents[e].next;
	} else {
		if (w->nents == w->capents && ents_grow(w) < 0)
			return -ENOMEM;
		e = w->nents++;
		w->ents[e].gen = 0;
	}
	sli_cow_w(&w->cow, CA_ENTS, e); /* a free entry may still be in an image */
	cow_acc(w, e);
	w->ents[e].start = start;
	w->ents[e].end = end;
	w->ents[e].key = key;
	w->ents[e].next = 0;
	w->ents[e].timers = 0;
	w->ents[e].used = 1;
	memset(acc_of(w, e), 0, w->acc_size);
	sli_agg_create(w->agg, acc_of(w, e));
	i = wtab_find(w, key, start, end);
	w->wslot[i] = e + 1;
	w->wcount++;
	return e;
}

/* Remove entry @e from the table (not from a session list); its timers become stale. */
static void win_drop(struct sli_win *w, uint32_t e)
{
	struct went *x = &w->ents[e];

	sli_cow_w(&w->cow, CA_ENTS, e);
	wtab_remove(w, wtab_find(w, x->key, x->start, x->end));
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

	if (sli_grow((void **)&w->heap, &w->capheap, w->nheap + 1, sizeof(*w->heap)) < 0)
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
	if (w->spec->kind != SL_WINDOW_SESSION) {
		int64_t slide =
		    w->spec->kind == SL_WINDOW_TUMBLING ? w->spec->size : w->spec->slide;
		int64_t g = w->spec->size % slide == 0 ? slide : gcd64(w->spec->size, slide);

		/*
		 * One pane per window is the window itself, its elements added in
		 * arrival order. More panes per window are merged when it fires:
		 * only when the aggregate says that gives the same result.
		 */
		w->sliced = g == w->spec->size ||
			    (sli_agg_has_merge(w->agg) && (w->agg->flags & SL_AGG_SLICEABLE));
		w->slide = slide;
		w->pane = g;
		sli_grid_init(&w->gslide, slide, w->spec->offset);
		sli_grid_init(&w->gpane, g, w->spec->offset);
		if (w->sliced) {
			/*
			 * Rings when a key's live panes usually fit: a window's panes,
			 * its lateness, and two more for panes created ahead of the
			 * watermark; else (or beyond RING_MAX) the table only.
			 */
			int64_t np = w->spec->size / g, nl = w->spec->allowed_lateness / g;
			uint32_t r = 4;

			while (np <= RING_MAX && nl <= RING_MAX && r < np + nl + 2 && r < RING_MAX)
				r *= 2;
			if (np <= RING_MAX && nl <= RING_MAX && np + nl + 2 <= RING_MAX) {
				w->ring_on = true;
				w->ring_bits = (uint32_t)__builtin_ctz(r);
				/*
				 * One pane per window: interleave as many keys as fill a
				 * cache line (ring_idx()). Not with more: a firing reads
				 * a key's np slots, np lines apart instead of side by side
				 * (bench_window, sliding 60 / 1: slower).
				 */
				while (np == 1 && w->ring_gbits < 3 &&
				       w->acc_size << (w->ring_gbits + 1) <= 64)
					w->ring_gbits++;
			}
		}
		w->scratch = malloc(w->acc_size);
		if (w->scratch == NULL) {
			sli_win_free(w);
			return NULL;
		}
	}
	if (key_grow_table(w) < 0 || wtab_grow(w) < 0) {
		sli_win_free(w);
		return NULL;
	}
	return w;
}

void sli_win_free(struct sli_win *w)
{
	if (w == NULL)
		return;
	sli_cow_finish(&w->cow); /* a checkpoint may still read our arrays */
	free(w->keys);
	free(w->kcold);
	free(w->ktab);
	free(w->khot);
	free(w->kbuf);
	free(w->karena);
	free(w->ents);
	free(w->accs);
	free(w->wslot);
	free(w->heap);
	for (uint32_t i = 0; i < w->nbk; i++) {
		free(w->bk[i].fires);
		free(w->bk[i].frees);
	}
	free(w->bk);
	free(w->bheap);
	free(w->btab);
	free(w->scratch);
	free(w->rstart);
	free(w->raccs);
	free(w->kspill);
	free(w->hot_list);
	sli_img_put(w->frozen);
	free(w);
}

/* The result of window [@start, @end) of @key from accumulator @acc. */
static int emit_acc(struct sli_opi *op, uint32_t key, int64_t start, int64_t end, const void *acc)
{
	struct sli_win *w = op->win;
	const struct wkey *k = &w->keys[key];
	struct sl_window win = { start, end };
	struct sl_key kb = { key_bytes(w, k), k->len };
	int rc = w->agg->result(&win, &kb, acc, &op->coll, w->agg->arg);

	if (rc < 0 && !atomic_load_explicit(&op->st->w->x->failed, memory_order_relaxed))
		sli_fail(op, rc, "the window result function failed: %s", sl_strerror(rc));
	return rc;
}

static int emit_window(struct sli_opi *op, uint32_t e)
{
	const struct went *x = &op->win->ents[e];

	return emit_acc(op, x->key, x->start, x->end, acc_of(op->win, e));
}

static inline bool window_late(const struct sli_win *w, int64_t end, int64_t wm)
{
	return sli_window_late(end, w->spec->allowed_lateness, wm);
}

/* Add element @i of @b to entry @e, then the trigger's on_element. */
static int add_and_trigger(struct sli_opi *op, uint32_t e, const struct sl_batch *b, uint32_t i)
{
	struct sli_win *w = op->win;
	int rc;

	cow_acc(w, e);
	sli_agg_add(w->agg, acc_of(w, e), sl_batch_elem(b, i), b->ts[i], b);
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
	int64_t r = sli_grid_mod(ts, s->offset, slide), start;

	if (ts < INT64_MIN + r)
		return 0; /* every window of the element starts before INT64_MIN */
	/*
	 * Flink: start = last_start, last_start - slide, ... while start > ts -
	 * size, written ts - start < size (ts - size can overflow). Windows
	 * ending after INT64_MAX are not representable: skipped.
	 */
	for (start = ts - r; (uint64_t)ts - (uint64_t)start < (uint64_t)s->size; start -= slide) {
		bool ok = start <= INT64_MAX - s->size;
		int64_t end = ok ? start + s->size : INT64_MAX;
		uint32_t slot;
		int64_t e;
		int rc;

		if (!ok || window_late(w, end, op->watermark)) {
			if (start < INT64_MIN + slide)
				break;
			continue;
		}
		*skipped = false;
		slot = wtab_find(w, key, start, end);
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
		sli_cow_w(&w->cow, CA_ENTS, kept);
		cow_acc(w, kept);
		while (*pp) {
			uint32_t p = *pp;
			struct went *x = &w->ents[p - 1];

			if (p != keep && x->start <= end && x->end >= start) {
				sli_agg_merge(w->agg, acc_of(w, kept), acc_of(w, p - 1));
				*pp = x->next;
				win_drop(w, p - 1);
				continue;
			}
			pp = &x->next;
		}
		/* Re-key the kept entry as the cover; its old timers are deleted. */
		wtab_remove(w, wtab_find(w, key, w->ents[kept].start, w->ents[kept].end));
		if ((w->wcount + 1) * 2 > w->wcap && wtab_grow(w) < 0)
			return -ENOMEM;
		w->ents[kept].start = start;
		w->ents[kept].end = end;
		w->ents[kept].gen++;
		w->ents[kept].timers = 0;
		w->wslot[wtab_find(w, key, start, end)] = kept + 1;
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

/* ------------------------------------------------------------- slicing */

static uint32_t btab_home(const struct sli_win *w, int64_t time)
{
	return (uint32_t)sli_wmix((uint64_t)time, 0, 0) & (w->btcap - 1);
}

/* Slot of the bucket of @time, or of the empty slot where it would go. */
static uint32_t btab_find(const struct sli_win *w, int64_t time)
{
	uint32_t i = btab_home(w, time);

	for (; w->btab[i]; i = (i + 1) & (w->btcap - 1))
		if (w->bk[w->btab[i] - 1].time == time)
			break;
	return i;
}

static int btab_grow(struct sli_win *w)
{
	uint32_t ncap = w->btcap ? w->btcap * 2 : 64;
	uint32_t *ns = calloc(ncap, sizeof(*ns));
	uint32_t ocap = w->btcap, *os = w->btab;

	if (ns == NULL)
		return -ENOMEM;
	w->btab = ns;
	w->btcap = ncap;
	for (uint32_t j = 0; j < ocap; j++) {
		if (os[j]) {
			uint32_t i = btab_home(w, w->bk[os[j] - 1].time);

			while (ns[i])
				i = (i + 1) & (ncap - 1);
			ns[i] = os[j];
		}
	}
	free(os);
	return 0;
}

/* Backward-shift deletion, as wtab_remove(). */
static void btab_remove(struct sli_win *w, int64_t time)
{
	uint32_t mask = w->btcap - 1, i = btab_find(w, time), j = i;

	w->btab[i] = 0;
	for (;;) {
		uint32_t home;

		j = (j + 1) & mask;
		if (!w->btab[j])
			break;
		home = btab_home(w, w->bk[w->btab[j] - 1].time);
		if (((j - home) & mask) >= ((j - i) & mask)) {
			w->btab[i] = w->btab[j];
			w->btab[j] = 0;
			i = j;
		}
	}
	w->btcount--;
}

static int bheap_push(struct sli_win *w, uint32_t id)
{
	int64_t time = w->bk[id].time;
	uint32_t i;

	if (sli_grow((void **)&w->bheap, &w->capbheap, w->nbheap + 1, sizeof(*w->bheap)) < 0)
		return -ENOMEM;
	for (i = w->nbheap++; i > 0 && w->bk[w->bheap[(i - 1) / 2]].time > time; i = (i - 1) / 2)
		w->bheap[i] = w->bheap[(i - 1) / 2];
	w->bheap[i] = id;
	return 0;
}

static uint32_t bheap_pop(struct sli_win *w)
{
	uint32_t top = w->bheap[0], last = w->bheap[--w->nbheap], i = 0;
	int64_t time = w->bk[last].time;

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= w->nbheap)
			break;
		if (c + 1 < w->nbheap && w->bk[w->bheap[c + 1]].time < w->bk[w->bheap[c]].time)
			c++;
		if (w->bk[w->bheap[c]].time >= time)
			break;
		w->bheap[i] = w->bheap[c];
		i = c;
	}
	if (w->nbheap)
		w->bheap[i] = last;
	return top;
}

/* The bucket of the timers at @time, created when new. Return its id or -ENOMEM. */
static int64_t bucket_get(struct sli_win *w, int64_t time)
{
	uint32_t i, id;

	if (w->bk_last && w->bk[w->bk_last - 1].time == time)
		return w->bk_last - 1;
	if ((w->btcount + 1) * 2 > w->btcap && btab_grow(w) < 0)
		return -ENOMEM;
	i = btab_find(w, time);
	if (w->btab[i]) {
		w->bk_last = w->btab[i];
		return w->btab[i] - 1;
	}
	if (w->bk_free) {
		id = w->bk_free - 1;
		w->bk_free = w->bk[id].next;
	} else {
		if (sli_grow((void **)&w->bk, &w->capbk, w->nbk + 1, sizeof(*w->bk)) < 0)
			return -ENOMEM;
		id = w->nbk++;
		w->bk[id] = (struct tbucket){ 0 };
	}
	w->bk[id].time = time;
	if (bheap_push(w, id) < 0) {
		w->bk[id].next = w->bk_free;
		w->bk_free = id + 1;
		return -ENOMEM;
	}
	w->btab[i] = id + 1;
	w->btcount++;
	w->bk_last = id + 1;
	return id;
}

/* A timer at @time: fire the window of key @v ending at @time + 1, or free pane entry @v. */
static int bucket_add(struct sli_win *w, int64_t time, bool fire, uint32_t v)
{
	int64_t id = bucket_get(w, time);
	struct tbucket *t;

	if (id < 0)
		return (int)id;
	t = &w->bk[id];
	if (fire) {
		if (sli_grow((void **)&t->fires, &t->capfires, t->nfires + 1, sizeof(*t->fires)) <
		    0)
			return -ENOMEM;
		t->fires[t->nfires++] = v;
	} else {
		if (sli_grow((void **)&t->frees, &t->capfrees, t->nfrees + 1, sizeof(*t->frees)) <
		    0)
			return -ENOMEM;
		t->frees[t->nfrees++] = v;
	}
	return 0;
}

/* An index of pane @ps: consecutive panes have consecutive indices. */
static inline uint64_t pane_index(const struct sli_win *w, int64_t ps)
{
	return sli_grid_index(&w->gpane, ps);
}

/* Key @key's ring slot for pane start @ps (key < nring): its index in rstart. */
static inline uint32_t ring_slot(const struct sli_win *w, uint32_t key, int64_t ps)
{
	uint32_t mask = (1u << w->ring_bits) - 1;

	return ring_idx(w, key, (uint32_t)pane_index(w, ps) & mask);
}

/*
 * The pane of @key starting at @start, or -1. A pane is the table entry
 * (key, start, start): its end is implied by the pane length, and never
 * computed, so a pane at the end of time cannot overflow.
 */
static int64_t pane_find(struct sli_win *w, uint32_t key, int64_t start)
{
	uint32_t slot;

	if (w->hot_on && start == w->hot_start && kslot_of(w, key)->cur)
		return kslot_of(w, key)->cur - 1;
	if (key < w->nring) {
		uint32_t r = ring_slot(w, key, start);

		if (w->rstart[r] == start)
			return RID | r;
		if (w->kspill[key] == 0)
			return -1; /* every pane of the key is in its ring */
	}
	slot = wtab_find(w, key, start, start);
	return w->wslot[slot] ? (int64_t)w->wslot[slot] - 1 : -1;
}

/*
 * The fire timers of @key's windows starting at @first .. @last that are
 * still ahead of the watermark and that the key's registered interval
 * does not already cover. Return 0 or -ENOMEM.
 */
static int pane_fires(struct sli_opi *op, uint32_t key, int64_t first, int64_t last)
{
	struct sli_win *w = op->win;
	int64_t size = w->spec->size, wm = op->watermark, lo = 0;
	bool any = false;
	struct wkcold *k;
	int rc;

	k = &w->kcold[key];
	/*
	 * Every window of the pane registered already: nothing to add, and
	 * the interval would stay as it is (the loop below, in one test). The
	 * common case of an element that lands in an existing pane other than
	 * its key's cached one (disorder at a pane boundary), which would
	 * otherwise walk all size / slide windows of the pane.
	 */
	if (k->rlo <= first && last <= k->rhi)
		return 0;
	for (int64_t st = last; st >= first && st + size - 1 > wm; st -= w->slide) {
		any = true;
		lo = st;
		if (st < k->rlo || st > k->rhi) {
			rc = bucket_add(w, st + size - 1, true, key);
			if (rc < 0)
				return rc;
		}
		if (st < INT64_MIN + w->slide)
			break;
	}
	if (!any)
		return 0;
	/* Keep one interval: the hull when they touch, else the newer one (duplicates are dropped).
	 */
	if (k->rlo <= k->rhi && lo <= sli_sat_add(k->rhi, w->slide) &&
	    k->rlo <= sli_sat_add(last, w->slide)) {
		k->rlo = lo < k->rlo ? lo : k->rlo;
		k->rhi = last > k->rhi ? last : k->rhi;
	} else {
		k->rlo = lo;
		k->rhi = last;
	}
	return 0;
}

/*
 * A new pane of @key at @ps whose windows start at @first .. @last (one
 * of them not late): its free timer at the cleanup time of the last one,
 * and the fire timers of those still ahead of the watermark that the
 * key's registered interval does not already cover.
 */
static int64_t pane_new(struct sli_opi *op, uint32_t key, int64_t ps, int64_t first, int64_t last)
{
	struct sli_win *w = op->win;
	int64_t clean = cleanup_time(w, last + w->spec->size);
	int64_t e;
	int rc;

	if (key < w->nring && w->rstart[ring_slot(w, key, ps)] == RFREE) {
		uint32_t r = ring_slot(w, key, ps);

		sli_cow_w(&w->cow, CA_RSTART, r);
		cow_acc(w, r | RID);
		w->rstart[r] = ps;
		e = RID | r;
		memset(acc_of(w, r | RID), 0, w->acc_size);
		sli_agg_create(w->agg, acc_of(w, r | RID));
	} else {
		e = win_add(w, key, ps, ps);
		if (e < 0)
			return e;
		if (key < w->nring)
			w->kspill[key]++;
	}
	if (clean != INT64_MAX && (rc = bucket_add(w, clean, false, (uint32_t)e)) < 0)
		return rc;
	rc = pane_fires(op, key, first, last);
	return rc < 0 ? rc : e;
}

#define PANE_CHUNK 32

/* Fire window [@start, @start + size) of @key from its live panes. */
static int emit_sliced(struct sli_opi *op, uint32_t key, int64_t start)
{
	struct sli_win *w = op->win;
	int64_t end = start + w->spec->size, e;
	bool any = false;

	if (w->pane == w->spec->size) {
		e = pane_find(w, key, start);
		return e < 0 ? 0 : emit_acc(op, key, start, end, acc_of(w, (uint32_t)e));
	}
	memset(w->scratch, 0, w->acc_size);
	sli_agg_create(w->agg, w->scratch);
	if (key < w->nring && w->kspill[key] == 0) {
		/* Every pane in the ring: adjacent starts and accumulators, in pane order. */
		/* ring_idx() with its key part and shift hoisted: merge() may alias *w. */
		uint32_t mask = (1u << w->ring_bits) - 1, gb = w->ring_gbits;
		uint32_t base = ring_idx(w, key, 0), i0 = (uint32_t)pane_index(w, start);
		int64_t np = w->spec->size / w->pane, p = start;

		for (uint32_t j = 0; j < (uint32_t)np; j++, p += w->pane) {
			uint32_t r = base | ((i0 + j) & mask) << gb;

			if (w->rstart[r] == p) {
				sli_agg_merge(w->agg, w->scratch, acc_of(w, RID | r));
				any = true;
			}
		}
		return any ? emit_acc(op, key, start, end, w->scratch) : 0;
	}
	/* Lookups by chunk: the table slots, then the entries found, prefetched first. */
	for (int64_t p0 = start; p0 < end; p0 += PANE_CHUNK * w->pane) {
		int64_t left = (end - p0) / w->pane;
		uint32_t m = left < PANE_CHUNK ? (uint32_t)left : PANE_CHUNK;
		uint32_t home[PANE_CHUNK];

		for (uint32_t j = 0; j < m; j++) {
			int64_t p = p0 + (int64_t)j * w->pane;

			home[j] = wtab_home(w, key, p, p);
			__builtin_prefetch(&w->wslot[home[j]]);
		}
		for (uint32_t j = 0; j < m; j++) {
			uint32_t slot = w->wslot[home[j]];

			if (slot) {
				__builtin_prefetch(&w->ents[slot - 1]);
				__builtin_prefetch(acc_of(w, slot - 1));
			}
		}
		for (uint32_t j = 0; j < m; j++) {
			e = pane_find(w, key, p0 + (int64_t)j * w->pane);
			if (e >= 0) {
				sli_agg_merge(w->agg, w->scratch, acc_of(w, (uint32_t)e));
				any = true;
			}
		}
		if (m < PANE_CHUNK)
			break;
	}
	return any ? emit_acc(op, key, start, end, w->scratch) : 0;
}

/*
 * Tumbling and sliding, sliced (the slow path of sli_win_batch()): add
 * element @i of @b to its pane, creating it with its timers, then the late
 * firings. Sets *skipped when every window of the element is late.
 */
/*
 * The windows of an element (or a pane) at @ts: the newest's start, *@last
 * = ts - r, and the oldest's, *@first, the smallest start > ts - size on
 * the grid, computed without ts - size (which can overflow): ts - start <
 * size. Only windows inside int64 time exist (start >= INT64_MIN, start +
 * size <= INT64_MAX). Return false when there is none: they would start
 * before INT64_MIN, or @ts lies between two windows (slide > size).
 */
static bool windows_of(const struct sli_win *w, int64_t ts, int64_t *first, int64_t *last)
{
	int64_t size = w->spec->size, slide = w->slide, r = sli_grid_modc(&w->gslide, ts);
	uint64_t n, below, rem;

	if (ts < INT64_MIN + r || r >= size)
		return false;
	*last = ts - r;
	while (*last > INT64_MAX - size) {
		if (*last < INT64_MIN + slide ||
		    (uint64_t)ts - (uint64_t)(*last - slide) >= (uint64_t)size)
			return false;
		*last -= slide;
	}
	/* Older windows: n more, as many as start after ts - size and at or after INT64_MIN. */
	n = sli_grid_udiv(&w->gslide, (uint64_t)(size - 1 - (ts - *last)), &rem);
	below = (uint64_t)*last - (uint64_t)INT64_MIN;
	if (n * (uint64_t)slide > below) /* n * slide < size: no overflow */
		n = sli_grid_udiv(&w->gslide, below, &rem);
	*first = (int64_t)((uint64_t)*last - n * (uint64_t)slide);
	return true;
}

#define HOT_VOTES 16

/*
 * After the slow path of an element of @key in pane @ps (entry @e), whose
 * earliest window ends at @fire + 1 (struct sli_win, hot_*): arm the
 * key's slot when the pane is the hot one; a vote to move the hot pane
 * (or start it) when the pane is newer (or none is on) and all its
 * windows are ahead of the watermark @wm. On the HOT_VOTES-th vote it
 * moves to the oldest pane voted for, if that is still ahead of the
 * watermark, else to this element's (struct sli_win). A slot that
 * cannot be listed stays unarmed: its elements take the slow path.
 */
static void hot_note(struct sli_win *w, uint32_t key, uint32_t e, int64_t ps, int64_t fire,
		     int64_t wm)
{
	struct kslot *k;

	if (fire <= wm)
		return; /* a window of the pane is due or late: not hot */
	if (!w->hot_on || ps > w->hot_start) {
		if (w->hot_votes == 0 || ps < w->hot_cand) {
			w->hot_cand = ps;
			w->hot_cand_fire = fire;
		}
		if (++w->hot_votes < HOT_VOTES)
			return;
		if (w->hot_cand_fire <= wm) { /* the watermark passed it since its vote */
			w->hot_cand = ps;
			w->hot_cand_fire = fire;
		}
		hot_off(w);
		w->hot_on = true;
		w->hot_start = w->hot_cand;
		/* The pane ends with a window: <= INT64_MAX. */
		w->hot_last = w->hot_start + (w->pane - 1);
		w->hot_fire = w->hot_cand_fire;
		if (ps != w->hot_start)
			return;
	} else if (ps != w->hot_start) {
		return; /* older than the hot pane */
	}
	k = kslot_of(w, key);
	if (k->cur ||
	    sli_grow((void **)&w->hot_list, &w->caphot, w->nhot + 1, sizeof(*w->hot_list)) < 0)
		return;
	k->cur = e + 1;
	if (k->id & KS_WORD) /* other keys never take chunk_word() */
		HOT_W(w, w->keys[key].slot) = k->kw;
	w->hot_list[w->nhot++] = w->keys[key].slot;
}

static int assign_sliced(struct sli_opi *op, uint32_t key, const struct sl_batch *b, uint32_t i,
			 bool *skipped)
{
	struct sli_win *w = op->win;
	const struct sl_window_spec *s = w->spec;
	int64_t ts = b->ts[i], wm = op->watermark, size = s->size, slide = w->slide;
	int64_t last, first, ps, e;

	if (!windows_of(w, ts, &first, &last))
		return 0;
	if (window_late(w, last + size, wm))
		return 0; /* the newest window is late, so is every other */
	*skipped = false;
	ps = ts - sli_grid_modc(&w->gpane, ts); /* >= first: no overflow */
	/*
	 * An existing pane's windows ahead of the watermark have their fire
	 * timers, except after a restore that lowered the watermark (rescaled
	 * in-flight data, checkpoint.c): windows that fired before the
	 * checkpoint are ahead of it again, without one. The element gives
	 * them one, as Flink's trigger does for every element, so its update
	 * fires when the watermark passes again instead of never. Else the
	 * key's registered interval covers them and nothing is added.
	 */
	e = pane_find(w, key, ps);
	if (e < 0) {
		e = pane_new(op, key, ps, first, last);
		if (e < 0)
			return (int)e;
	} else if (last + size - 1 > wm) {
		int rc = pane_fires(op, key, first, last);

		if (rc < 0)
			return rc;
	}
	hot_note(w, key, (uint32_t)e, ps, first + size - 1, wm);
	cow_acc(w, (uint32_t)e);
	sli_agg_add(w->agg, acc_of(w, (uint32_t)e), sl_batch_elem(b, i), ts, b);
	if (first + size - 1 > wm)
		return 0;
	/* Late firings, newest window first as in assign_fixed(): end - 1 <= wm, not late. */
	for (int64_t st = last; st >= first; st -= slide) {
		int64_t end = st + size;
		int rc;

		if (window_late(w, end, wm))
			break; /* older windows are late too */
		if (end - 1 <= wm && (rc = emit_sliced(op, key, st)) < 0)
			return rc;
		if (st < INT64_MIN + slide)
			break;
	}
	return 0;
}

/*
 * Prefetch distances of the timer loops below, in timers: a bucket holds
 * one timer per key (10k keys: 10k), in no useful order, and each touches
 * a key record, then the key's ring, each a likely cache
 * miss, so the loops look ahead: key records FIRE_PF timers ahead, what
 * they point to (known once the record is in) half as far.
 *
 * The prefetch helpers are forced inline: GCC 12 finds a function that
 * only prefetches free of side effects (pure) and deletes its calls.
 */
#define FIRE_PF	  16
#define PF_INLINE static inline __attribute__((always_inline))

/* Prefetch for the fire of @t's timer @j at pane index @pi (see FIRE_PF). */
PF_INLINE void fire_prefetch(const struct sli_win *w, const struct tbucket *t, uint32_t j,
			     uint32_t pi)
{
	if (j + FIRE_PF < t->nfires) {
		__builtin_prefetch(&w->keys[t->fires[j + FIRE_PF]]);
		__builtin_prefetch(&w->kcold[t->fires[j + FIRE_PF]], 1);
	}
	if (j + FIRE_PF / 2 < t->nfires) {
		uint32_t key = t->fires[j + FIRE_PF / 2];

		if (key < w->nring) {
			uint32_t r = ring_idx(w, key, pi & ((1u << w->ring_bits) - 1));

			__builtin_prefetch(&w->rstart[r]);
			__builtin_prefetch(w->raccs + (size_t)r * w->acc_size);
		}
	}
}

/* Prefetch for the free of @t's timer @j (see FIRE_PF). */
PF_INLINE void free_prefetch(const struct sli_win *w, const struct tbucket *t, uint32_t j)
{
	uint32_t e;

	if (j + FIRE_PF < t->nfrees) {
		e = t->frees[j + FIRE_PF];
		__builtin_prefetch(
		    e & RID ? (const void *)&w->rstart[e & ~RID] : (const void *)&w->ents[e], 1);
	}
}

/* Run every bucket of timers up to @wm, in time order: its fires, then its pane frees. */
static int sliced_watermark(struct sli_opi *op, int64_t wm)
{
	struct sli_win *w = op->win;

	/*
	 * The hot pane's earliest window is due: its slots' folds are merged
	 * before any timer reads the pane, and no element is hot there any
	 * more (struct kslot). Every window fires at or after hot_fire, so
	 * no timer before that one reads the pane either.
	 */
	if (w->hot_on && w->hot_fire <= wm)
		hot_off(w);
	while (w->nbheap > 0 && w->bk[w->bheap[0]].time <= wm) {
		uint32_t id = bheap_pop(w);
		struct tbucket *t = &w->bk[id];
		int64_t time = t->time;
		int rc = 0;

		btab_remove(w, time);
		if (w->bk_last == id + 1)
			w->bk_last = 0;
		/* Nothing registers timers meanwhile: t and its arrays stay put. */
		for (uint32_t j = 0; j < t->nfires && rc == 0; j++) {
			struct wkcold *k = &w->kcold[t->fires[j]];

			fire_prefetch(w, t, j, (uint32_t)pane_index(w, time + 1 - w->spec->size));
			if (k->last_fire == time)
				continue; /* a duplicate of a timer just fired */
			k->last_fire = time;
			rc = emit_sliced(op, t->fires[j], time + 1 - w->spec->size);
		}
		for (uint32_t j = 0; j < t->nfrees && rc == 0; j++) {
			uint32_t e = t->frees[j];
			uint32_t key;

			/* Not the hot pane's: it went before its first window fired, above. */
			free_prefetch(w, t, j);
			if (e & RID) {
				sli_cow_w(&w->cow, CA_RSTART, e & ~RID);
				w->rstart[e & ~RID] = RFREE;
				continue;
			}
			key = w->ents[e].key;
			if (key < w->nring)
				w->kspill[key]--;
			win_drop(w, e);
		}
		t->nfires = t->nfrees = 0;
		t->next = w->bk_free;
		w->bk_free = id + 1;
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int late_element(struct sli_opi *op, const struct sl_batch *b, uint32_t i)
{
	if (op->nport_out[1] > 0)
		return sl_emit_side(&op->coll, 0, sl_batch_elem(b, i), b->ts[i], b);
	atomic_fetch_add_explicit(&op->node->counters.late_records_dropped, 1,
				  memory_order_relaxed);
	return 0;
}

/*
 * Element @i of @b, of key id @key, when not on the hot path of
 * sli_win_batch(): its windows, then the late check.
 */
static int win_element(struct sli_opi *op, struct sl_batch *b, uint32_t i, uint32_t key)
{
	struct sli_win *w = op->win;
	bool skipped = true;
	int64_t late_at;
	int rc;

	if (w->sliced) {
		rc = assign_sliced(op, key, b, i, &skipped);
	} else if (w->spec->kind == SL_WINDOW_SESSION) {
		rc = assign_session(op, key, b, i, &skipped);
	} else {
		rc = assign_fixed(op, key, b, i, &skipped);
	}
	if (rc < 0)
		return rc;
	/* Late: skipped by all its windows and ts + lateness <= watermark (Java's wrap). */
	late_at = (int64_t)((uint64_t)b->ts[i] + (uint64_t)w->spec->allowed_lateness);
	if (skipped && late_at <= op->watermark)
		rc = late_element(op, b, i);
	return rc;
}

/*
 * Elements go through three passes per chunk of CHUNK: (1) the keys and
 * their hashes, the key table slots prefetched; (2) the keys' slots found
 * (for an 8-byte key: by its word, in the slot itself) and the hot-path
 * test; (3) the elements themselves. With thousands of keys the key table
 * does not fit the L2 cache, and these misses, taken one after the other,
 * would cost more than the rest; a chunk keeps enough of them in flight,
 * and each pass is a tight loop rather than a pipeline indexed modulo its
 * depth. The accumulator of a hot element is prefetched by pass 2 only
 * when the accumulator arrays are larger than ACC_PF_MIN: smaller ones
 * mostly stay in the L2 cache, where (measured with bench_window, 10k
 * keys: 320 KiB of them) the prefetch cost more than the misses it saved;
 * larger ones (its sliding query: 5 MiB) miss the L2 and gain from it.
 *
 * The hot path (slicing: the element's key is armed and the element falls
 * in the hot pane, all of whose windows are still ahead of the watermark,
 * struct kslot, so nothing is late and nothing fires now) is one add() to
 * the key's pane's accumulator.
 * Pass 2 decides it from the slot, pass 3 does it; the slow path of an
 * earlier element in between cannot change the answer: the watermark does
 * not move within a batch and panes are freed only when it does, so the
 * pane is still live, the element still in it and its windows still ahead
 * (the slow path may move the hot pane and disarm the key: the element's
 * pane is the same). Pass 2 records entries and key ids, not
 * addresses or slots: the slow path may grow the arrays and the table.
 *
 * With a built-in aggregate (batch_word()) passes 2 and 3 are one: a hot
 * element is folded at once, into its slot (struct kslot), and the others
 * are queued and go through the slow path after the chunk, in their
 * order. Hot adds thus move ahead of
 * the slow path of earlier elements, which changes nothing: the built-in
 * folds (count, wrapping sum, min, max) do not depend on order, and a
 * slow path that reads accumulators (a late firing, of windows with end -
 * 1 <= watermark) never reads a hot pane, all of whose windows end after
 * the watermark. A custom add() may depend on order: batch_generic()
 * keeps the three passes.
 */
#define CHUNK	   128
#define NONE	   UINT32_MAX
#define ACC_PF_MIN ((size_t)1 << 20)

/* Bytes of accumulators in the rings and the entries: their footprint, for prefetching. */
static inline size_t acc_bytes(const struct sli_win *w)
{
	return (((size_t)w->capring << w->ring_bits) + w->capents) * w->acc_size;
}

/* Passes 1 and 2 over elements [@c0, @c0 + @m) of @b: hot[j] and kid[j] (see above). */
/*
 * Keep key @k of element @i of @b for the rest of the chunk: a key in the
 * element or in the batch's arena stays where it is; any other (a key
 * function may return storage it reuses at its next call, sl_key_fn) is
 * copied to w->kbuf at *@at, and *@off says where (else NONE): the buffer
 * may move while the chunk's keys are gathered. Return 0 or -ENOMEM.
 */
static int key_keep(struct sli_win *w, const struct sl_batch *b, uint32_t i, const struct sl_key *k,
		    size_t *at, uint32_t *off)
{
	const uint8_t *p = k->ptr, *e = sl_batch_elem(b, i), *a = (const uint8_t *)b->arena;

	*off = NONE;
	if ((p >= e && p + k->len <= e + b->elem_size) ||
	    (a != NULL && p >= a && p + k->len <= a + b->arena_used))
		return 0;
	if (*at + k->len > w->kbuf_cap) {
		size_t cap = 2 * (*at + k->len) + 256;
		uint8_t *n = sli_fault(&sli_fault_keybuf) ? NULL : realloc(w->kbuf, cap);

		if (n == NULL)
			return -ENOMEM;
		w->kbuf = n;
		w->kbuf_cap = cap;
	}
	if (k->len != 0)
		memcpy(w->kbuf + *at, p, k->len);
	*off = (uint32_t)*at;
	*at += k->len;
	return 0;
}

static inline int chunk_probe(struct sli_opi *op, const struct sl_batch *b, uint32_t c0, uint32_t m,
			      struct sl_key *ks, uint64_t *hs, uint32_t *hot, uint32_t *kid)
{
	struct sli_win *w = op->win;
	const struct kslot *ktab = w->ktab;
	const uint32_t mask = w->kcap - 1;
	const bool keyed = (b->flags & SL_BATCH_F_KEYED) != 0, sliced = w->sliced;
	const bool pf = acc_bytes(w) > ACC_PF_MIN;
	const int64_t hot0 = w->hot_start, hot1 = w->hot_last; /* meaningful when a slot is armed */
	const struct sli_keyspec *keyf = &op->key;
	uint32_t off[CHUNK];
	size_t at = 0;
	bool moved = false;

	for (uint32_t j = 0; j < m; j++) {
		uint64_t x;

		sli_key_get(keyf, sl_batch_elem(b, c0 + j), b, &ks[j]);
		if (key_keep(w, b, c0 + j, &ks[j], &at, &off[j]) < 0)
			return -ENOMEM;
		moved |= off[j] != NONE;
		if (ks[j].len == 8) {
			memcpy(&x, ks[j].ptr, 8);
			hs[j] = hash8(x);
		} else if (keyed) {
			hs[j] = b->key[c0 + j];
		} else {
			hs[j] = sli_hash64(ks[j].ptr, ks[j].len, 0);
		}
		__builtin_prefetch(&ktab[key_home(hs[j], mask + 1)]);
	}
	for (uint32_t j = 0; moved && j < m; j++)
		if (off[j] != NONE)
			ks[j].ptr = w->kbuf + off[j];
	for (uint32_t j = 0; j < m; j++) {
		const struct kslot *s = &ktab[key_probe(w, hs[j], ks[j].ptr, ks[j].len)];
		int64_t ts = b->ts[c0 + j];

		kid[j] = s->id ? (s->id & ~KS_WORD) - 1 : NONE;
		hot[j] = NONE;
		if (sliced && s->cur && ts >= hot0 && ts <= hot1) {
			uint32_t e = s->cur - 1;

			hot[j] = e;
			if (pf)
				__builtin_prefetch(e & RID
						       ? w->raccs + (size_t)(e & ~RID) * w->acc_size
						       : w->accs + (size_t)e * w->acc_size,
						   1);
		}
	}
	return 0;
}

/*
 * Element @i off the hot path of both batch loops: its key (@key, or
 * NONE when not in the table yet: @hash, @p, @len) through win_element().
 * It may grow the tables: the caller reloads its accumulator bases.
 */
static int cold_element(struct sli_opi *op, struct sl_batch *b, uint32_t i, uint32_t key,
			uint64_t hash, const void *p, uint32_t len)
{
	if (key == NONE) {
		int64_t id = key_id(op->win, hash, p, len);

		if (id < 0)
			return (int)id;
		key = (uint32_t)id;
	}
	return win_element(op, b, i, key);
}

/*
 * Prefetch what the slow path of an element of key @key at @ts reads
 * first (its key records, the ring slot of its pane), while the hot loop
 * goes on: the slow path runs after it, per chunk.
 */
PF_INLINE void cold_prefetch(const struct sli_win *w, uint32_t key, int64_t ts)
{
	__builtin_prefetch(&w->keys[key]);
	__builtin_prefetch(&w->kcold[key]);
	if (key < w->nring) {
		uint32_t r = ring_slot(w, key, ts - sli_grid_modc(&w->gpane, ts));

		__builtin_prefetch(&w->rstart[r]);
		__builtin_prefetch(w->raccs + (size_t)r * w->acc_size);
	}
}

/* The generic batch path: any key, any aggregate. */
static int batch_generic(struct sli_opi *op, struct sl_batch *b)
{
	struct sli_win *w = op->win;
	const struct sl_aggregate *agg = w->agg;
	const uint32_t asz = w->acc_size;
	struct sl_key ks[CHUNK];
	uint64_t hs[CHUNK];
	uint32_t hot[CHUNK], kid[CHUNK];
	uint32_t n = b->n;
	const bool cow = w->cow.img != NULL; /* changes at barriers and sli_cow_poll() only */
	int rc = 0;

	for (uint32_t c0 = 0; c0 < n && rc == 0; c0 += CHUNK) {
		uint32_t m = n - c0 < CHUNK ? n - c0 : CHUNK;
		uint8_t *raccs, *accs;

		rc = chunk_probe(op, b, c0, m, ks, hs, hot, kid);
		if (rc < 0)
			break;
		raccs = w->raccs, accs = w->accs;
		for (uint32_t j = 0; j < m; j++) {
			uint32_t i = c0 + j, e = hot[j], key = kid[j];

			if (e != NONE) {
				if (cow)
					sli_cow_w_pending(&w->cow, e & RID ? CA_RACCS : CA_ACCS,
							  e & ~RID);
				sli_agg_add(agg,
					    e & RID ? raccs + (size_t)(e & ~RID) * asz
						    : accs + (size_t)e * asz,
					    sl_batch_elem(b, i), b->ts[i], b);
				continue;
			}
			rc = cold_element(op, b, i, key, hs[j], ks[j].ptr, ks[j].len);
			if (rc != 0)
				break;
			raccs = w->raccs, accs = w->accs;
		}
	}
	return rc;
}

/*
 * The slot of key word @kx, whose home slot (key_home()) is @i, in @ktab:
 * its own, or the empty one ending its probe.
 */
static inline uint32_t word_probe(const struct kslot *ktab, uint32_t mask, uint64_t kx, uint32_t i)
{
	while (ktab[i].id && (ktab[i].kw != kx || !(ktab[i].id & KS_WORD)))
		i = (i + 1) & mask;
	return i;
}

/*
 * The slots of line @l whose word is @x, as bit k for slot k (at most
 * one: struct khot). SSE2, x86-64's baseline, has no 64-bit equality: the
 * 32-bit halves are compared, packed to 16 bits (a slot's two halves side
 * by side in one 32-bit lane) and a lane of all ones is a slot whose
 * halves are both equal; movmskps takes one bit per lane. (Five
 * instructions after the loads; the previous pmovmskb of the packed
 * halves needed three more to combine pairs of bits.) The scalar version
 * hides its comparisons from GCC, which otherwise tests one of the slots
 * with a branch, mispredicted for a quarter of the keys.
 */
static inline __attribute__((always_inline)) uint32_t hot_match(const struct khot *l, uint64_t x)
{
#ifdef __SSE2__
	const __m128i k = _mm_set1_epi64x((long long)x);
	__m128i e01 = _mm_cmpeq_epi32(_mm_load_si128((const __m128i *)&l->w[0]), k);
	__m128i e23 = _mm_cmpeq_epi32(_mm_load_si128((const __m128i *)&l->w[2]), k);
	__m128i both = _mm_cmpeq_epi32(_mm_packs_epi32(e01, e23), _mm_set1_epi32(-1));

	return (uint32_t)_mm_movemask_ps(_mm_castsi128_ps(both));
#else
	uint32_t h0 = l->w[0] == x, h1 = l->w[1] == x, h2 = l->w[2] == x, h3 = l->w[3] == x;

	__asm__("" : "+r"(h0), "+r"(h1), "+r"(h2), "+r"(h3));
	return h0 | h1 << 1 | h2 << 2 | h3 << 3;
#endif
}

/*
 * The elements @far (@nfar, in order) of the chunk at @c0 whose key word
 * pass 2 of chunk_word() did not find armed in its home line: a key past
 * its line (found through struct kslot, as word_probe() does; it may be
 * armed, and its line's idle word may equal it: cur decides, struct
 * khot), a key not armed, or one not in the table yet. Their slots,
 * prefetched by pass 2, are probed: the elements of armed keys in the
 * hot pane are folded as there, the others merged into the @ncold cold
 * elements @cold (slots @cslot), in element order. Return how many cold
 * elements there are now. Done after pass 2 rather than in it: there,
 * each slot was read at once, a cache miss (10k keys: the first element
 * of each key in each pane) that the loop waited for; and on its own,
 * with @kind not a constant, this keeps pass 2's loop short.
 */
static __attribute__((noinline)) uint32_t chunk_far(struct sli_win *w, const struct sl_batch *b,
						    uint32_t c0, uint32_t kind, uint32_t voff,
						    const uint64_t *kx, const uint32_t *home,
						    const uint32_t *far, uint32_t nfar,
						    uint32_t *cold, uint32_t *cslot, uint32_t ncold)
{
	const uint32_t mask = w->kcap - 1;
	const uint64_t hs = (uint64_t)w->hot_start, span = (uint64_t)w->hot_last - hs;
	uint32_t fcold[CHUNK], fslot[CHUNK], nf = 0, n;

	for (uint32_t f = 0; f < nfar; f++) {
		uint32_t j = far[f], slot = word_probe(w->ktab, mask, kx[j], home[j] * KLINE);
		int64_t v = 0;

		/* Armed (cur): the hot pane is on, so span is meaningful. */
		if (w->ktab[slot].cur == 0 || (uint64_t)b->ts[c0 + j] - hs > span) {
			fcold[nf] = j;
			fslot[nf++] = slot;
			continue;
		}
		if (kind != SL_AGG_COUNT)
			memcpy(&v, (const uint8_t *)sl_batch_elem(b, c0 + j) + voff, sizeof(v));
		sli_agg_fold(kind, &HOT_DELTA(w, slot), v);
	}
	/* Merge the two ascending lists from their ends: cold[] has room for the chunk. */
	n = ncold + nf;
	for (uint32_t o = n; nf > 0; o--) {
		if (ncold > 0 && cold[ncold - 1] > fcold[nf - 1]) {
			cold[o - 1] = cold[ncold - 1];
			cslot[o - 1] = cslot[--ncold];
		} else {
			cold[o - 1] = fcold[nf - 1];
			cslot[o - 1] = fslot[--nf];
		}
	}
	return n;
}

/*
 * Passes 1 and 2 of batch_word() over the chunk at @c0 (@m elements):
 * the key words into @kx, their home lines into @home, prefetched; then a
 * hot element is folded into its slot's delta (the int64_t at @voff,
 * unread for a count), so it touches its struct khot only; the others
 * are listed in @cold. Return how many are listed. The cold elements' key
 * ids are looked up afterwards (cold_keys()): the hot loop keeps fewer
 * values live. Instantiated per aggregate by chunk_word_fn(), not inlined
 * into batch_word(): on its own, the hot loop keeps its values in
 * registers (inlined into sli_win_batch(), GCC spilled five of them,
 * reloaded per element).
 */
static inline __attribute__((always_inline)) uint32_t
chunk_word(struct sli_win *w, const struct sl_batch *b, uint32_t c0, uint32_t m, uint32_t kind,
	   uint32_t koff, uint32_t voff, uint64_t *kx, uint32_t *home, uint32_t *cold,
	   uint32_t *cslot)
{
	const uint32_t esz = b->elem_size, mask = w->kcap - 1;
	const int64_t hs = w->hot_start, *bts = b->ts + c0;
	const uint64_t span = (uint64_t)w->hot_last - (uint64_t)hs; /* meaningful when armed */
	struct khot *khot = w->khot;
	const struct kslot *ktab = w->ktab;
	const uint8_t *data = b->data + (size_t)c0 * esz + voff;
	const uint8_t *key = b->data + (size_t)c0 * esz + koff;
	uint32_t ncold = 0, nfar = 0, far[CHUNK];
	/*
	 * Pass 1 prefetches the next chunk's elements, if any, one address
	 * per element of this one (the same offset one chunk on). A source
	 * that lends its elements (sl_batch_borrow(), a mapped file) hands out
	 * memory that is in no cache, and the hardware prefetcher stops at
	 * every 4 KiB page: in bench_window tumbling, the first load of each
	 * key was the hot loop's most expensive instruction. Spread over the
	 * pass, not issued all at once: a burst of them stalled on the line
	 * fill buffers.
	 */
	const uintptr_t ahead = c0 + m < b->n ? (uintptr_t)CHUNK * esz : 0;

	_Static_assert(KLINE == 4, "the hot test reads a line of four slots");
#pragma GCC unroll 4
	for (uint32_t j = 0; j < m; j++, key += esz) {
		/* Address arithmetic only: a prefetch past the batch's data never faults. */
		__builtin_prefetch((const void *)((uintptr_t)key + ahead));
		memcpy(&kx[j], key, 8);
		home[j] = key_home(hash8(kx[j]), mask + 1) / KLINE;
		__builtin_prefetch(&khot[home[j]], 1);
	}

	for (uint32_t j = 0; j < m; j++) {
		const uint64_t x = kx[j];
		/* ts in [hs, hl] (hs <= hl): one comparison. */
		bool in = (uint64_t)bts[j] - (uint64_t)hs <= span;
		/* Which slot of the home line is armed with this key: struct khot. */
		struct khot *l = &khot[home[j]];
		uint32_t hit = hot_match(l, x), slot;
		int64_t *d, v = 0;

		if (__builtin_expect(hit != 0, 1)) {
			/* The slot's number is wanted only when the element is cold. */
			d = &l->delta[(unsigned)__builtin_ctz(hit)];
			if (__builtin_expect(!in, 0)) {
				/* Kept here: GCC computed it for every element. */
				__asm__("" : "+r"(hit));
				slot = home[j] * KLINE + (unsigned)__builtin_ctz(hit);
				goto cold;
			}
		} else {
			/* Past its line, or not armed: chunk_far(), its slot fetched meanwhile. */
			__builtin_prefetch(&ktab[home[j] * KLINE]);
			far[nfar++] = j;
			continue;
		}
		if (kind != SL_AGG_COUNT)
			memcpy(&v, data + (size_t)j * esz, sizeof(v));
		sli_agg_fold(kind, d, v);
		continue;
	cold:
		cold[ncold] = j;
		cslot[ncold++] = slot;
	}
	return nfar ? chunk_far(w, b, c0, kind, voff, kx, home, far, nfar, cold, cslot, ncold)
		    : ncold;
}

/* chunk_word() of aggregate @kind, on its own (see there). */
#define CHUNK_WORD_FN(name, kind)                                                                \
	static __attribute__((noinline)) uint32_t name(                                          \
	    struct sli_win *w, const struct sl_batch *b, uint32_t c0, uint32_t m, uint32_t koff, \
	    uint32_t voff, uint64_t *kx, uint32_t *home, uint32_t *cold, uint32_t *cslot)        \
	{                                                                                        \
		return chunk_word(w, b, c0, m, kind, koff, voff, kx, home, cold, cslot);         \
	}
CHUNK_WORD_FN(chunk_count, SL_AGG_COUNT)
CHUNK_WORD_FN(chunk_sum, SL_AGG_SUM_I64)
CHUNK_WORD_FN(chunk_min, SL_AGG_MIN_I64)
CHUNK_WORD_FN(chunk_max, SL_AGG_MAX_I64)

/*
 * The key ids (NONE: not in the table yet) of the @ncold cold elements
 * @cold of the chunk at @c0, whose slots chunk_word() found (@cslot: the
 * key's, or the empty one where it would go), into @kid, and a prefetch
 * of what their slow path reads first, all issued before the first slow
 * path runs: it may grow the table, and the slots move.
 */
static void cold_keys(const struct sli_win *w, const struct sl_batch *b, uint32_t c0,
		      const uint32_t *cold, const uint32_t *cslot, uint32_t ncold, uint32_t *kid)
{
	for (uint32_t c = 0; c < ncold; c++) {
		uint32_t j = cold[c];
		const struct kslot *s = &w->ktab[cslot[c]];

		kid[c] = s->id ? (s->id & ~KS_WORD) - 1 : NONE;
		if (s->id)
			cold_prefetch(w, kid[c], b->ts[c0 + j]);
	}
}

/*
 * The specialised batch path: slicing, a field key of 8 bytes at @koff
 * (sl_key_by_field()) and a built-in aggregate of @kind over the int64_t
 * at @voff. The key word is read in place, hashed by hash8() and found by
 * its word (as key_probe() does for every 8-byte key). Elements off the
 * hot path take the same slow path, win_element(), so the state it builds
 * is the generic path's, bit for bit.
 *
 * Per chunk, pass 1 hashes and prefetches the key slots; pass 2 folds a
 * hot element into its slot's delta (struct kslot) as soon as the slot is
 * checked. The elements off the hot path are handled after the chunk's
 * hot ones, in order: count, sum, min and max do not depend on the order
 * of folds, and a late firing never reads a hot pane (its windows all end
 * after the watermark), so the results are the same. A snapshot does not
 * concern the hot loop: it reads accumulators after win_flush_all(), and
 * a flush writes an accumulator through cow_acc().
 *
 * Forced inline with @kind a constant: one loop per aggregate, no branch
 * on it per element (bench_window tumbling: about a fifth less CPU per
 * record than the same code left to the compiler, which did not clone it).
 */
static inline __attribute__((always_inline)) int
batch_word(struct sli_opi *op, struct sl_batch *b, uint32_t kind, uint32_t koff, uint32_t voff)
{
	struct sli_win *w = op->win;
	uint64_t kx[CHUNK];
	uint32_t home[CHUNK], cold[CHUNK], cslot[CHUNK], kid[CHUNK];
	uint32_t n = b->n;
	int rc = 0;

	for (uint32_t c0 = 0; c0 < n && rc == 0; c0 += CHUNK) {
		uint32_t m = n - c0 < CHUNK ? n - c0 : CHUNK, ncold;

		ncold = (kind == SL_AGG_COUNT	  ? chunk_count
			 : kind == SL_AGG_SUM_I64 ? chunk_sum
			 : kind == SL_AGG_MIN_I64
			     ? chunk_min
			     : chunk_max)(w, b, c0, m, koff, voff, kx, home, cold, cslot);
		cold_keys(w, b, c0, cold, cslot, ncold, kid);
		for (uint32_t c = 0; c < ncold; c++) {
			uint32_t j = cold[c];

			/* The hash again: only cold elements need it (a new key's). */
			rc = cold_element(op, b, c0 + j, kid[c], hash8(kx[j]), &kx[j], 8);
			if (rc != 0)
				break;
		}
	}
	return rc;
}

int sli_win_batch(struct sli_opi *op, struct sl_batch *b)
{
	struct sli_win *w = op->win;
	const struct sl_aggregate *agg = w->agg;
	const uint32_t koff = op->key.off, voff = agg->field;
	int rc;

	sli_cow_poll(&w->cow);
	if (!w->sliced || op->key.fn != NULL || op->key.len != 8 || agg->builtin == SL_AGG_CUSTOM ||
	    w->acc_size != sizeof(int64_t))
		rc = batch_generic(op, b);
	else if (agg->builtin == SL_AGG_COUNT)
		rc = batch_word(op, b, SL_AGG_COUNT, koff, voff);
	else if (agg->builtin == SL_AGG_SUM_I64)
		rc = batch_word(op, b, SL_AGG_SUM_I64, koff, voff);
	else if (agg->builtin == SL_AGG_MIN_I64)
		rc = batch_word(op, b, SL_AGG_MIN_I64, koff, voff);
	else
		rc = batch_word(op, b, SL_AGG_MAX_I64, koff, voff);
	if (rc == -ENOMEM && !atomic_load_explicit(&op->st->w->x->failed, memory_order_relaxed))
		sli_fail(op, rc, "out of memory for window state");
	sli_release(op, b);
	return rc;
}

/* Fire every timer up to @wm, in time order. */
int sli_win_watermark(struct sli_opi *op, int64_t wm)
{
	struct sli_win *w = op->win;

	sli_cow_poll(&w->cow);
	if (w->sliced)
		return sliced_watermark(op, wm);

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

/* ---------------------------------------------------------- checkpoints */

/*
 * Snapshot: the logical state, independent of rings, buckets and tables.
 * Operator section: u32 format (1), u32 accumulator size, u32 sliced.
 * Key-group section (the key group of the key's exchange hash): i64 the
 * operator's watermark, then per key: its bytes (sl_snap_put_bytes) and
 * its entries as one byte string of {i64 start, i64 end, accumulator}
 * (panes when sliced: end is unused). Accumulators are copied as bytes:
 * an aggregate's accumulator must hold no pointers (sl_time.h).
 *
 * Restore rebuilds the same state through the paths that create it,
 * with the watermark restored first (the smallest of the sections', at
 * another parallelism): panes through pane_new() (fire timers for the
 * windows still ahead of the watermark, the free timer at the last
 * window's cleanup), windows through win_add() with their fire timer if
 * end - 1 is ahead of the watermark and their cleanup timer, sessions
 * linked into their key's list. Windows that fired before the checkpoint
 * are not fired again; late firings work as before.
 */
#define WSNAP_FORMAT 1

static const void *key_bytes_of(const struct sli_win *w, uint32_t key)
{
	return key_bytes(w, &w->keys[key]);
}

/* The entries (table) of every key, grouped by key: counting sort. */
static int ents_by_key(const struct sli_win *w, uint32_t **first, uint32_t **order)
{
	uint32_t *f = calloc((size_t)w->nkeys + 1, sizeof(*f));
	uint32_t *o = malloc(((size_t)w->nents + 1) * sizeof(*o));

	if (f == NULL || o == NULL) {
		free(f);
		free(o);
		return -ENOMEM;
	}
	for (uint32_t e = 0; e < w->nents; e++)
		if (w->ents[e].used)
			f[w->ents[e].key + 1]++;
	for (uint32_t k = 0; k < w->nkeys; k++)
		f[k + 1] += f[k];
	for (uint32_t e = 0, *pos = f; e < w->nents; e++)
		if (w->ents[e].used)
			o[pos[w->ents[e].key]++] = e;
	/* pos advanced every key's start to its end: shift back. */
	for (uint32_t k = w->nkeys; k > 0; k--)
		f[k] = f[k - 1];
	f[0] = 0;
	*first = f;
	*order = o;
	return 0;
}

/* Write one entry at @p (start, end, accumulator); return the byte after it. */
static uint8_t *put_entry(uint8_t *p, int64_t start, int64_t end, const void *acc,
			  uint32_t acc_size)
{
	memcpy(p, &start, 8);
	memcpy(p + 8, &end, 8);
	memcpy(p + 16, acc, acc_size);
	return p + 16 + acc_size;
}

/*
 * Serialise the state of @win (the operator's, or an image's copy) into @w:
 * per key, in its key group's section (the group's watermark first), the
 * key's bytes and its entries (ring panes, then table entries) as one byte
 * string. Each key's record is reserved once and written in place: this
 * loop is most of a large checkpoint's CPU time (on the task when
 * synchronous, on the coordinator otherwise).
 */
static int win_serialize(const struct sli_win *win, int64_t watermark, unsigned maxp,
			 struct sl_snap_writer *w)
{
	uint32_t *first = NULL, *order = NULL,
		 hdr[3] = { WSNAP_FORMAT, win->acc_size, win->sliced };
	const size_t esz = 16 + (size_t)win->acc_size;
	bool *seen = calloc(maxp, sizeof(*seen));
	int rc;

	if (seen == NULL)
		return -ENOMEM;
	rc = ents_by_key(win, &first, &order);
	if (rc == 0)
		rc = sl_snap_section(w, SL_SNAP_OP);
	if (rc == 0)
		rc = sl_snap_put(w, hdr, sizeof(hdr));
	for (uint32_t k = 0; k < win->nkeys && rc == 0; k++) {
		const struct wkey *key = &win->keys[k];
		const void *kb = key_bytes_of(win, k);
		uint32_t n = first[k + 1] - first[k], nb, len = key->len;
		unsigned kg;
		uint8_t *p;

		if (k < win->nring)
			for (uint32_t i = 0; i < (1u << win->ring_bits); i++)
				n += win->rstart[ring_idx(win, k, i)] != RFREE;
		if (n == 0)
			continue;
		if ((uint64_t)n * esz > UINT32_MAX) {
			rc = -E2BIG;
			break;
		}
		nb = (uint32_t)(n * esz);
		kg = sli_key_group(sli_hash64(kb, len, 0), maxp);
		rc = sl_snap_section(w, kg);
		if (rc < 0)
			break;
		p = sli_snap_extend(w, (seen[kg] ? 0 : 8) + 8 + (size_t)len + nb);
		if (p == NULL) {
			rc = -ENOMEM;
			break;
		}
		if (!seen[kg]) {
			seen[kg] = true;
			memcpy(p, &watermark, 8);
			p += 8;
		}
		memcpy(p, &len, 4);
		memcpy(p + 4, kb, len);
		p += 4 + len;
		memcpy(p, &nb, 4);
		p += 4;
		if (k < win->nring)
			for (uint32_t i = 0; i < (1u << win->ring_bits); i++) {
				uint32_t r = ring_idx(win, k, i);

				if (win->rstart[r] != RFREE)
					p = put_entry(p, win->rstart[r], win->rstart[r],
						      acc_of_c(win, RID | r), win->acc_size);
			}
		for (uint32_t j = first[k]; j < first[k + 1]; j++) {
			const struct went *x = &win->ents[order[j]];

			p = put_entry(p, x->start, x->end, acc_of_c(win, order[j]), win->acc_size);
		}
	}
	free(first);
	free(order);
	free(seen);
	return rc;
}

int sli_win_snapshot(struct sli_opi *op, struct sl_snap_writer *w)
{
	win_flush_all(op->win); /* the hot path's folds owed to accumulators */
	return win_serialize(op->win, op->watermark, op->info.max_parallelism, w);
}

/* The image's copy of entries: the fields win_serialize() reads (sli_cow_arr.copy_fields). */
static void ent_fields(void *dst, const void *src, size_t n)
{
	const struct went *x = src;
	struct went *y = dst;

	for (size_t i = 0; i < n; i++) {
		y[i].start = x[i].start;
		y[i].end = x[i].end;
		y[i].key = x[i].key;
		y[i].used = x[i].used;
	}
}

/* The image's copy of key records: their bytes' place (sli_cow_arr.copy_fields). */
static void key_fields(void *dst, const void *src, size_t n)
{
	const struct wkey *x = src;
	struct wkey *y = dst;

	for (size_t i = 0; i < n; i++) {
		y[i].off = x[i].off;
		y[i].len = x[i].len;
	}
}

static void wimg_destroy(struct sli_img *m)
{
	struct wimg *f = (struct wimg *)m;

	sli_cow_fini(&f->cow);
	free(f);
}

static int wimg_write(const void *img, struct sl_snap_writer *w)
{
	/* The image is shared with its task: copying claims its segments. */
	struct wimg *f = (struct wimg *)img;

	sli_cow_test_delay();
	sli_cow_copy_all(&f->cow);
	return win_serialize(&f->img, f->watermark, f->maxp, w);
}

static const struct sli_ckpt_image_ops wimg_ops = { wimg_write, sli_img_put };

int sli_win_freeze(struct sli_opi *op, struct sli_ckpt_image *out)
{
	struct sli_win *w = op->win;
	size_t nr = ring_len(w, w->nring);
	struct wimg *f;
	int rc;

	sli_cow_finish(&w->cow); /* a checkpoint still holds the last image: finish its copy */
	win_flush_all(w); /* the hot path's folds owed to accumulators, before they are recorded */
	f = sli_img_reuse(&w->frozen, sizeof(*f), wimg_destroy);
	if (f == NULL)
		return -ENOMEM;
	rc = sli_cow_arr_set(&f->cow, CA_KEYS, w->keys, w->nkeys, sizeof(*w->keys), NULL);
	if (rc == 0)
		rc = sli_cow_arr_set(&f->cow, CA_KARENA, w->karena, w->kused, 1, NULL);
	if (rc == 0)
		rc = sli_cow_arr_set(&f->cow, CA_ENTS, w->ents, w->nents, sizeof(*w->ents), NULL);
	if (rc == 0)
		rc = sli_cow_arr_set(&f->cow, CA_ACCS, w->accs, w->nents, w->acc_size, NULL);
	if (rc == 0)
		rc = sli_cow_arr_set(&f->cow, CA_RSTART, w->rstart, nr, sizeof(*w->rstart), NULL);
	if (rc == 0)
		rc = sli_cow_arr_set(&f->cow, CA_RACCS, w->raccs, nr, w->acc_size, NULL);
	if (rc < 0)
		return rc; /* the image stays the operator's, to be refilled */
	/* The task writes entries' links and timer marks, keys' sessions and slots unguarded. */
	f->cow.a[CA_KEYS].copy_fields = key_fields;
	f->cow.a[CA_ENTS].copy_fields = ent_fields;
	f->img.keys = (struct wkey *)f->cow.a[CA_KEYS].copy;
	f->img.karena = (char *)f->cow.a[CA_KARENA].copy;
	f->img.ents = (struct went *)f->cow.a[CA_ENTS].copy;
	f->img.accs = f->cow.a[CA_ACCS].copy;
	f->img.rstart = (int64_t *)f->cow.a[CA_RSTART].copy;
	f->img.raccs = f->cow.a[CA_RACCS].copy;
	f->img.acc_size = w->acc_size;
	f->img.sliced = w->sliced;
	f->img.ring_bits = w->ring_bits;
	f->img.ring_gbits = w->ring_gbits;
	f->img.nring = w->nring;
	f->img.nkeys = w->nkeys;
	f->img.nents = w->nents;
	f->watermark = op->watermark;
	f->maxp = op->info.max_parallelism;
	sli_cow_arm(&w->cow, &f->cow, CA_N, &f->h.refs, &op->st->w->x->job->ckpt_counters);
	sli_img_hand(&f->h);
	*out = (struct sli_ckpt_image){ &wimg_ops, f };
	return 0;
}

/* The key table's hash of a key (as the batch path computes it). */
static uint64_t key_hash(const void *p, uint32_t len)
{
	uint64_t x;

	if (len != 8)
		return sli_hash64(p, len, 0);
	memcpy(&x, p, 8);
	return hash8(x);
}

static int restore_entry(struct sli_opi *op, uint32_t key, int64_t start, int64_t end,
			 const uint8_t *acc)
{
	struct sli_win *w = op->win;
	int64_t e, first, last;

	if (w->sliced) {
		if (!windows_of(w, start, &first, &last) || pane_find(w, key, start) >= 0)
			return -EBADMSG;
		e = pane_new(op, key, start, first, last);
		if (e < 0)
			return (int)e;
		memcpy(acc_of(w, (uint32_t)e), acc, w->acc_size);
		return 0;
	}
	if (end <= start || w->wslot[wtab_find(w, key, start, end)] != 0)
		return -EBADMSG;
	e = win_add(w, key, start, end);
	if (e < 0)
		return (int)e;
	memcpy(acc_of(w, (uint32_t)e), acc, w->acc_size);
	if (w->spec->kind == SL_WINDOW_SESSION) {
		w->ents[e].next = w->keys[key].sessions;
		w->keys[key].sessions = (uint32_t)e + 1;
	}
	if (end - 1 > op->watermark && timer_register(w, (uint32_t)e, T_FIRE) < 0)
		return -ENOMEM;
	if (cleanup_time(w, end) != INT64_MAX && timer_register(w, (uint32_t)e, T_CLEAN) < 0)
		return -ENOMEM;
	return 0;
}

struct wrs_key {
	const void *key, *ents;
	uint32_t len, nbytes;
	int64_t wm; /* the watermark of the key group section it came from */
};

int sli_win_restore(struct sli_opi *op, struct sl_snap_reader *r)
{
	struct sli_win *w = op->win;
	struct wrs_key *keys = NULL;
	size_t nkeys = 0, cap = 0;
	int64_t wm = INT64_MAX;
	bool any_kg = false;
	uint32_t sec, hdr[3];
	int rc;

	hot_off(w); /* restore_entry() writes accumulators directly, and may lower the watermark */

	while ((rc = sl_snap_next(r, &sec)) == 1) {
		if (sec == SL_SNAP_OP) {
			rc = sl_snap_get(r, hdr, sizeof(hdr));
			if (rc < 0)
				goto out;
			if (hdr[0] != WSNAP_FORMAT || hdr[1] != w->acc_size ||
			    hdr[2] != (uint32_t)w->sliced) {
				rc = sl_snap_bad(r, "window state of another format, accumulator "
						    "size or window kind");
				goto out;
			}
			continue;
		}
		int64_t swm;

		rc = sl_snap_get_i64(r, &swm);
		if (rc < 0)
			goto out;
		any_kg = true;
		wm = swm < wm ? swm : wm;
		while (sl_snap_left(r) > 0) {
			if (nkeys == cap) {
				cap = cap ? 2 * cap : 1024;
				struct wrs_key *nk = realloc(keys, cap * sizeof(*nk));
				if (nk == NULL) {
					rc = -ENOMEM;
					goto out;
				}
				keys = nk;
			}
			struct wrs_key *k = &keys[nkeys];
			k->wm = swm;
			rc = sl_snap_get_bytes(r, &k->key, &k->len);
			if (rc == 0)
				rc = sl_snap_get_bytes(r, &k->ents, &k->nbytes);
			if (rc < 0)
				goto out;
			if (k->len == 0 || k->nbytes % (16 + w->acc_size) != 0) {
				rc = sl_snap_bad(r, "bad window entry list");
				goto out;
			}
			nkeys++;
		}
	}
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < nkeys; i++) {
		const struct wrs_key *k = &keys[i];
		int64_t id = key_id(w, key_hash(k->key, k->len), k->key, k->len);
		const uint8_t *p = k->ents;

		if (id < 0) {
			rc = (int)id;
			goto out;
		}
		/*
		 * Whether a window already fired is judged against the watermark
		 * of the old subtask that held the key (its section's), not the
		 * operator's new one below: sections of a rescaled restore come
		 * from old subtasks whose watermarks differ (unaligned
		 * checkpoints snapshot them at different points), and a window
		 * one of them fired, whose panes stay for later windows, must
		 * not get a fire timer again because another's watermark was
		 * lower (it would fire twice, the second time from a part of its
		 * panes). As join.c's restore does.
		 */
		op->watermark = k->wm;
		for (uint32_t off = 0; off < k->nbytes; off += 16 + w->acc_size) {
			int64_t start, end;

			memcpy(&start, p + off, 8);
			memcpy(&end, p + off + 8, 8);
			rc = restore_entry(op, (uint32_t)id, start, end, p + off + 16);
			if (rc == -EBADMSG)
				rc = sl_snap_bad(r, "a window or pane that cannot exist, or twice");
			if (rc < 0)
				goto out;
		}
	}
	rc = 0;
	/* The smallest section's: no element restored with any key group is late. */
	if (any_kg)
		op->watermark = wm;
out:
	free(keys);
	return rc;
}
