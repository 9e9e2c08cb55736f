/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_state.h — internals of state/: the per-task keyed-state table
 * (table.c) and the size-class slab its entries live in (slab.c).
 *
 * This is the backend interface the state kinds (value, list, map,
 * reducing, aggregating), snapshots and rescaling are built on; it is not
 * the user-facing keyed-state API. User functions will see named state
 * handles scoped to the current key (a public sl_state.h, later), never
 * hashes, key groups or slot layouts, so nothing here is frozen as ABI.
 *
 * A table belongs to one task and is used by that task's thread only: no
 * function here is thread-safe, none blocks, and every operation does
 * bounded work (see SLI_TABLE_MIGRATE_SLOTS), including while the table
 * resizes. Memory comes from the struct sl_allocator given at creation,
 * so a worker's NUMA-local allocator makes the whole table node-local.
 */
#ifndef SLI_STATE_H
#define SLI_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sluice/sl_alloc.h>

/* ---------------------------------------------------------------- slab */

/*
 * Entries are variable-length (header, key, namespace, value), so they
 * come from size classes carved out of chunks obtained through the
 * allocator: 16-byte steps up to 128 bytes, then four classes per power
 * of two up to SLI_SLAB_MAX (at most 25% internal waste). A freed block
 * goes to its class's free list and is reused by the next allocation of
 * that class; chunks go back to the allocator only at fini. Blocks above
 * SLI_SLAB_MAX ("big", class 0) are allocated one by one and listed so
 * that fini frees them too. Blocks are 16-byte aligned.
 */
#define SLI_SLAB_CLASSES 28
#define SLI_SLAB_MAX	 4096u

struct sli_slab_big;

struct sli_slab {
	const struct sl_allocator *a;
	void *free[SLI_SLAB_CLASSES + 1]; /* per class, linked through the block */
	char *bump, *end;		  /* the unused tail of the newest chunk */
	void *chunks;			  /* all chunks, linked through their header */
	size_t next_chunk;		  /* size of the next chunk (grows to 1 MiB) */
	struct sli_slab_big *big;	  /* big blocks, doubly linked */
	size_t bytes;			  /* held from the allocator right now */
	size_t live;			  /* blocks handed out and not freed */
};

/** Class of a block of @size bytes: 1..SLI_SLAB_CLASSES, or 0 (big) above SLI_SLAB_MAX. */
static inline unsigned sli_slab_class(size_t size)
{
	unsigned p;

	if (size <= 128)
		return size == 0 ? 1 : (unsigned)((size + 15) >> 4);
	if (size > SLI_SLAB_MAX)
		return 0;
	p = 63u - (unsigned)__builtin_clzll((unsigned long long)(size - 1)); /* 7..11 */
	return 8 + (p - 7) * 4 + (unsigned)((size - 1 - ((size_t)1 << p)) >> (p - 2)) + 1;
}

/** Bytes in a block of class @cls (1..SLI_SLAB_CLASSES). */
static inline size_t sli_slab_class_size(unsigned cls)
{
	unsigned j, p;

	if (cls <= 8)
		return (size_t)cls * 16;
	j = cls - 9;
	p = 7 + j / 4;
	return ((size_t)1 << p) + ((size_t)(j % 4 + 1) << (p - 2));
}

void sli_slab_init(struct sli_slab *s, const struct sl_allocator *a);
/** Return every chunk and big block to the allocator. Accepts a zeroed slab. */
void sli_slab_fini(struct sli_slab *s);
/**
 * A block of at least @size bytes, 16-byte aligned; its class goes to
 * *@cls (0 for big blocks). NULL when the allocator fails.
 */
void *sli_slab_alloc(struct sli_slab *s, size_t size, unsigned *cls);
/** Bytes usable in @p, a block of class @cls from this slab. */
size_t sli_slab_usable(const void *p, unsigned cls);
/** Give back @p (class @cls); accepts NULL. */
void sli_slab_free(struct sli_slab *s, void *p, unsigned cls);

/* --------------------------------------------------------------- table */

/*
 * One table holds all keyed state of one task: every named state (by
 * state id), for the key groups [kg_first, kg_last] the task owns.
 * An entry is identified by (state id, key bytes, namespace bytes) and
 * holds a variable-length value and an expiry. The namespace scopes state
 * below the key (a window, or a map state's user key); it may be empty.
 */
struct sli_table;
struct sli_table_part;
/** An entry, opaque: read it with sli_table_entry(). */
struct sli_entry;

/** Expiry of an entry that never expires. */
#define SLI_TTL_NONE INT64_MAX
/** Passed as an expiry: leave the entry's expiry as it is. */
#define SLI_TTL_KEEP INT64_MIN

/** Largest key, value; a namespace is at most UINT16_MAX bytes. */
#define SLI_STATE_KEY_MAX   (1u << 24)
#define SLI_STATE_VALUE_MAX (1u << 30)

/*
 * Resize work per operation. When a table grows (or shrinks) every
 * operation first does one step of it: either zero at most
 * SLI_TABLE_ZERO_SLOTS slots of the new slot array (4 KiB: fresh memory
 * is touched a page at a time, never all at once), or examine at most
 * SLI_TABLE_MIGRATE_SLOTS slots of the old array and move their entries.
 * Lookups meanwhile search both arrays.
 */
#define SLI_TABLE_MIGRATE_SLOTS 64
#define SLI_TABLE_ZERO_SLOTS	256

/** Largest max_parallelism (Flink's): key groups fit in 16 bits. */
#define SLI_TABLE_MAX_PARALLELISM 32768u

/** What identifies an entry. Borrowed for the duration of a call. */
struct sli_skey {
	/*
	 * The key's 64-bit hash, as the runtime computed it for key_by
	 * (sli_hash64 of the key bytes): the key group is hash %
	 * max_parallelism. Equal keys must have equal hashes.
	 */
	uint64_t hash;
	const void *key; /* may be NULL when key_len is 0 */
	const void *ns;	 /* may be NULL when ns_len is 0 */
	uint32_t key_len;
	uint16_t ns_len;
	uint16_t state_id;
};

/** One result of sli_table_lookup_batch(). */
struct sli_lookup {
	const void *value; /* NULL: absent or expired */
	uint32_t len;
};

/** An entry as snapshots see it (sli_table_entry()). Pointers into the table. */
struct sli_entry_view {
	const void *key, *ns, *value;
	uint32_t key_len, value_len;
	uint16_t ns_len, state_id;
	unsigned key_group;
	int64_t expiry;
};

struct sli_table_stats {
	size_t entries;	     /* as sli_table_count() */
	size_t anchors;	     /* internal per-key records of namespaced state, in memory */
	size_t capacity;     /* slots of the array inserts go to */
	size_t old_capacity; /* slots of the array being drained, 0 if none */
	size_t bytes;	     /* memory held from the allocator */
	int phase;	     /* 0 idle, 1 zeroing the new array, 2 migrating */
	uint64_t resizes;    /* completed */
	/* Resize work done by the most recent operation, and the most ever. */
	size_t last_op_migrated, max_op_migrated;
	size_t last_op_zeroed, max_op_zeroed;
	uint64_t total_migrated; /* old slots examined, all resizes */
	uint64_t alloc_failures; /* resize steps postponed for lack of memory */
	size_t last_cleanup_examined;
	/*
	 * Spilling (all 0 without a budget). resident is what the budget
	 * bounds: the slot arrays and the slab blocks of live entries (bytes
	 * is what the slab holds, free blocks included). The spill store's
	 * memory is on top: its index (21..43 bytes per spilled entry) and
	 * its buffers (2 MiB plus the largest read batch, plus 256 KiB once
	 * a ring was spilled).
	 */
	size_t resident;
	size_t spilled;		     /* entries on disk (counted in entries), rings' included */
	size_t spilled_rings;	     /* rings on disk: one record each */
	size_t spill_index_bytes;    /* index and segment table */
	size_t spill_buffer_bytes;   /* write, chunk and read buffers */
	uint64_t spill_file_bytes;   /* bytes in the segment files */
	uint64_t spill_live_bytes;   /* of which live records */
	uint64_t spill_reads;	     /* read requests */
	uint64_t spill_batches;	     /* batches of read requests submitted */
	uint64_t spill_writes;	     /* write requests (1 MiB buffers) */
	uint64_t spill_compactions;  /* segment files rewritten and deleted */
	uint64_t evictions, reloads; /* records moved out and back (an entry or a ring) */
	uint64_t ring_evictions, ring_reloads; /* of which rings */
	/*
	 * Copy-on-write snapshots (sli_table_freeze()): entries the task
	 * copied before writing them while a snapshot was pending, and
	 * their bytes; blocks it let go that a snapshot still held
	 * (freed at its release); freezes refused because the previous
	 * snapshot was still being read; waits for a snapshot's reader
	 * (no memory for a copy); fresh marks a freeze cleared (those
	 * of the snapshot before the previous one that drain() had not
	 * cleared yet). Now: a snapshot pending, bytes held.
	 */
	uint64_t cow_copies, cow_bytes, cow_deferred, cow_busy, cow_waits, cow_fresh_sync;
	size_t cow_held_bytes;
	int cow_pending;
};

/**
 * sli_table_create() - an empty table for the key groups
 * [@kg_first, @kg_last] of @max_parallelism.
 * @a: allocator for all the table's memory (NULL: the default). Borrowed:
 *     it must outlive the table.
 *
 * Return: 0 and the table in *@out; -EINVAL when @max_parallelism is 0 or
 * above SLI_TABLE_MAX_PARALLELISM, @kg_first > @kg_last, @kg_last >=
 * @max_parallelism or @out is NULL; -ENOMEM.
 */
int sli_table_create(const struct sl_allocator *a, unsigned max_parallelism, unsigned kg_first,
		     unsigned kg_last, struct sli_table **out);

/** Free the table and all its entries; accepts NULL. */
void sli_table_destroy(struct sli_table *t);

/** How a table's spill store does its I/O (see sli_io_create() in sli_io.h). */
enum sli_io_kind {
	SLI_IO_AUTO,  /* io_uring unless unavailable, a sanitizer build or SLUICE_STATE_IO=posix */
	SLI_IO_URING, /* io_uring or fail */
	SLI_IO_POSIX, /* pread/pwrite */
};

struct sli_io;

/** The spill configuration of a table: sli_table_set_spill(). */
struct sli_spill_conf {
	size_t budget;	 /* bytes of resident state (stats.resident) before spilling */
	const char *dir; /* a directory for this table's files only (created if missing) */
	enum sli_io_kind io;
	struct sli_io *engine;	/* tests: this engine instead (borrowed), NULL: by @io */
	uint32_t segment_bytes; /* size of a spill file, 4 KiB..16 MiB; 0: 16 MiB */
	unsigned garbage_pct;	/* compact a file past this % of garbage, 1..90; 0: 50 */
};

/**
 * sli_table_set_spill() - give the table a memory budget: past
 * @c->budget bytes of resident state (sli_table_stats().resident), cold
 * entries move to files in @c->dir and come back when accessed.
 *
 * What moves: entries without a namespace whose record (40-byte header,
 * key, value) is at most 256 KiB, one record each; and the namespaced
 * entries of one (state, key) together with their anchor, as one "ring"
 * record (40-byte header, key, 8 bytes, then per entry 16 bytes,
 * namespace and value each padded to 8) of at most 256 KiB: a larger
 * ring stays in memory. Any access to a namespaced entry whose ring is on
 * disk brings the whole ring back (lookup_batch reads the rings of its
 * misses in one batch with the plain records). Eviction is a clock
 * (second chance) over the slot array, done by puts, removes, clears and
 * cleanups (never by gets, which keep their pointer contract); a ring is
 * judged at its anchor and moves only when neither the anchor nor any of
 * its entries was used since the hand last passed the anchor. A get that
 * reloads entries can take the table over budget until the next mutating
 * call. Files are deleted when
 * the table is destroyed, and stale files in @c->dir (a crash) are
 * deleted here: checkpoints, not spill files, are what restores state.
 * Call it once, before or after entries were put.
 *
 * Return: 0; -EINVAL (bad @c, or already set); -EBUSY when another live
 * table uses @c->dir; -ENOMEM; the -errno of creating the directory and
 * files; the error of setting up the engine @c->io asks for.
 */
int sli_table_set_spill(struct sli_table *t, const struct sli_spill_conf *c);

/**
 * sli_table_spill_flush() - write the spill store's buffered records to
 * their files. Return: 0, or the I/O engine's error.
 */
int sli_table_spill_flush(struct sli_table *t);

/**
 * sli_table_error() - the last spill I/O error and what failed (file and
 * offset) in @buf, then forget it. sli_table_get() returns NULL when the
 * record of a spilled entry cannot be read or fails its CRC32C: it never
 * returns a wrong value, and this tells a miss from a failure.
 * Return: 0 when none; -EBADMSG (checksum), -EIO, -ENOSPC...
 */
int sli_table_error(struct sli_table *t, char *buf, size_t len);

/** The I/O engine's name ("io_uring", "posix"...), or NULL when the table does not spill. */
const char *sli_table_spill_engine(const struct sli_table *t);

/**
 * sli_table_get() - the value of @k, unless absent or expired.
 * @now:   the table's clock (processing or event time, ms); an entry with
 *         expiry <= @now is expired and treated as absent.
 * @touch: SLI_TTL_KEEP, or a new expiry for the entry when it is found
 *         live (TTL "on read and write": the caller passes now + ttl).
 * @len:   receives the value's length when found; may be NULL.
 *
 * Return: the value (8-byte aligned, @len bytes), or NULL. The pointer is
 * valid until the next put, remove, clear or cleanup on this table (gets
 * do not invalidate it).
 */
const void *sli_table_get(struct sli_table *t, const struct sli_skey *k, int64_t now, int64_t touch,
			  uint32_t *len);

/**
 * sli_table_lookup_batch() - sli_table_get() for @n keys at once.
 *
 * The slots of the whole batch are prefetched before any is compared,
 * then the entries, so the cache misses overlap. When entries can be on
 * disk (spill), this is where their reads are submitted together and
 * waited for; the contract stays the same: on return every out[i] is
 * resolved, and all n pointers are valid together until the next put,
 * remove, clear or cleanup. @touch applies to every entry found (batches
 * of one state share a TTL).
 *
 * Return: the number of keys found (>= 0); -EINVAL when @keys or @out is
 * NULL with @n > 0; with spilling, -EBADMSG or the engine's error when a
 * spilled entry could not be read (every out[] is still resolved: the
 * entries that failed read as absent; sli_table_error() says where).
 */
int sli_table_lookup_batch(struct sli_table *t, unsigned n, const struct sli_skey *keys,
			   int64_t now, int64_t touch, struct sli_lookup *out);

/**
 * sli_table_put() - set the value of @k to a copy of @len bytes at
 * @value, creating the entry if needed.
 * @expiry: the entry's new expiry (SLI_TTL_NONE: never); SLI_TTL_KEEP
 *          keeps an existing entry's expiry (a new one gets SLI_TTL_NONE).
 *
 * An expired entry is overwritten like a live one. @value may point into
 * the table (a value from get).
 *
 * Return: 1 when the entry was created, 0 when it was replaced; -EINVAL
 * when a pointer is NULL with a non-zero length or the key's group is not
 * one of this table's; -E2BIG when the key or value is longer than
 * SLI_STATE_KEY_MAX or SLI_STATE_VALUE_MAX; -ENOMEM when memory for the
 * entry is missing, or the table is full because a resize could not get
 * memory (it retries on later operations). With spilling also the I/O
 * errors: -ENOSPC, -EIO... when evicting (records stay in memory and are
 * retried later), -EBADMSG or the engine's error when the spilled entry
 * of @k (or the spilled ring of @k's key, for a namespaced @k) cannot be
 * read, -ENOMEM when that ring cannot be brought back for lack of room
 * (retried later). On error nothing changed.
 */
int sli_table_put(struct sli_table *t, const struct sli_skey *k, const void *value, uint32_t len,
		  int64_t expiry);

/**
 * sli_table_remove() - remove @k. With spilling, a spilled @k (or the
 * spilled ring of a namespaced @k's key) is brought back first.
 * Return: 1 when an entry was removed (expired or not), 0 when there was
 * none; with spilling, the errors of reading it back as for
 * sli_table_put() (then nothing changed).
 */
int sli_table_remove(struct sli_table *t, const struct sli_skey *k);

/**
 * sli_table_clear_key() - remove every entry of state @k->state_id for
 * the key of @k, in every namespace (clear() of the current key). @k->ns
 * is ignored. Work is proportional to the entries removed; a spilled
 * entry or ring is read (one batch, to verify its key and count a ring's
 * entries) but not brought back into memory.
 * Return: the number of entries removed; with spilling, -EBADMSG or the
 * engine's error when a spilled record of the key could not be read
 * (then nothing was removed; sli_table_error() says where).
 */
int sli_table_clear_key(struct sli_table *t, const struct sli_skey *k);

/**
 * sli_table_ttl_cleanup() - remove expired entries, incrementally.
 *
 * Examines at most @budget slots, continuing where the previous call
 * stopped, and removes the entries with expiry <= @now. Calling it with a
 * budget of B from the task loop sweeps a table of C slots in about C/B
 * calls; entries that move while a resize migrates them are seen on a
 * later sweep (they are never returned expired meanwhile). All expiries
 * of one table must be on the same clock as @now.
 *
 * With spilling, a spilled record is dropped once its expiry passed (a
 * ring's expiry is its latest entry's, so a ring on disk goes once all
 * its entries expired); expired entries of a ring on disk that still has
 * live ones are removed by a sweep after the ring came back, and are
 * never returned meanwhile.
 *
 * Return: the number of entries removed.
 */
int sli_table_ttl_cleanup(struct sli_table *t, int64_t now, unsigned budget);

/** Entries in the table, including expired ones not removed yet. */
size_t sli_table_count(const struct sli_table *t);

/** Entries of key group @kg (0 when @kg is not one of this table's). */
size_t sli_table_group_count(const struct sli_table *t, unsigned kg);

void sli_table_stats(const struct sli_table *t, struct sli_table_stats *st);

/**
 * sli_table_partition() - every entry, grouped by key group.
 *
 * One pass over the slots places each entry in its key group's range of
 * an array, using the per-group counts the table keeps (a counting sort:
 * O(entries + slots), the snapshot's cost, never an operation's). The
 * result holds pointers to the entries: it is valid until the next put,
 * remove, clear or cleanup, and must be destroyed before the table.
 *
 * Return: 0 and the partition in *@out; -ENOMEM.
 */
int sli_table_partition(struct sli_table *t, struct sli_table_part **out);

/**
 * The entries of key group @kg in @p: their count, and the array in *@entries.
 * A spilling table's spilled entries of @kg are read here (batched) into
 * memory owned by @p: the array of a group is then valid until the next
 * call for another group. When they cannot be read, the return is 0 and
 * sli_table_part_error() says why.
 */
size_t sli_table_part_group(const struct sli_table_part *p, unsigned kg,
			    const struct sli_entry *const **entries);

/** 0, or the error of the last sli_table_part_group() that failed to read spilled entries. */
int sli_table_part_error(const struct sli_table_part *p);

/** The message of sli_table_part_error() (file and offset of a bad record), or "". */
const char *sli_table_part_errmsg(const struct sli_table_part *p);

/** Free a partition; accepts NULL. */
void sli_table_part_destroy(struct sli_table_part *p);

/*
 * Copy-on-write snapshots (table_snap.c), Flink's CopyOnWriteStateMap
 * adapted to this table. At a checkpoint barrier the task freezes the
 * table: it copies the entry pointers of the slot arrays (both during
 * a resize; 8 bytes per entry, no entry is read) and, when spilling, the
 * spill index's record locations, duplicates of the segment files'
 * descriptors and the unwritten part of the write buffer. Then it goes
 * on: until the snapshot is released, an entry that was in the table at
 * the barrier is copied before the task writes it (a put, a TTL touch),
 * and a block the table lets go (remove, clear, TTL cleanup, eviction,
 * a copy's original) is kept until then. Another thread turns the
 * frozen table into a partition (sli_table_frozen_partition(): the same
 * entries, in the same format, as sli_table_partition() at the barrier,
 * spilled records read with pread on the duplicated descriptors) and
 * releases it. The task notices the release at its next put, remove,
 * clear or cleanup (or freeze) and frees what was kept.
 */
struct sli_table_frozen;

/**
 * sli_table_freeze() - freeze @t for a snapshot read on another thread.
 * The task's thread. Work: O(slots + spilled records), no entry read.
 *
 * Return: 0 and the snapshot in *@out (hand it to one reader, which
 * calls sli_table_frozen_put() once); -EBUSY when the previous snapshot
 * was not released yet; -ENOMEM; the -errno of duplicating a spill
 * file's descriptor (EMFILE). On error nothing changed: snapshot
 * synchronously instead (sli_table_partition()).
 */
int sli_table_freeze(struct sli_table *t, struct sli_table_frozen **out);

/**
 * sli_table_frozen_partition() - the partition of the table as frozen
 * (see sli_table_partition(); its groups' spilled entries are read
 * through @f's descriptors). Any one thread; valid until destroyed, which
 * must happen before sli_table_frozen_put(@f). Return: 0; -ENOMEM.
 */
int sli_table_frozen_partition(struct sli_table_frozen *f, struct sli_table_part **out);

/**
 * sli_table_frozen_put() - the reader is done with @f: release it (any
 * thread). The table, or if it was destroyed meanwhile this call, frees
 * what the snapshot kept. Accepts NULL.
 */
void sli_table_frozen_put(struct sli_table_frozen *f);

/** Read an entry (from a partition). */
void sli_table_entry(const struct sli_entry *e, struct sli_entry_view *v);

/** The key hash function sli_table_check() verifies slot hashes with. */
typedef uint64_t (*sli_key_hash_fn)(const void *key, uint32_t len, void *arg);

/**
 * sli_table_check() - verify the table's invariants (tests, debugging;
 * O(entries + slots)): every entry reachable by probing from its home
 * slot, counts per table and per key group (spilled ones too), namespace
 * rings, no slab block unaccounted for; with spilling, every ring record
 * on disk is read: its layout, key group and anchor hash, and its anchor
 * is not also in memory. With @hash, also each slot's stored hash, each
 * entry's key group and each anchor's key hash.
 * Return: 0, -EUCLEAN when an invariant is broken, -ENOMEM, or the error
 * of reading a ring record.
 */
int sli_table_check(const struct sli_table *t, sli_key_hash_fn hash, void *arg);

#endif /* SLI_STATE_H */
