/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_io.h — internals of state/'s disk tier: CRC32C (crc32c.c), the I/O
 * engines (io_uring.c, io_posix.c, io_fault.c) and the spill store
 * (spill.c) the table moves cold entries to.
 *
 * An I/O engine runs a batch of positioned reads and writes (and
 * fsyncs) and waits for all of them: io_uring submits the whole batch
 * with one system call and reaps the completions together; the POSIX
 * engine does them one by one with pread/pwrite/fsync. The fault engine
 * wraps another one and fails requests on demand (tests). Engines belong
 * to one thread, like tables. The checkpoint store (ckpt.c) writes its
 * files through them too.
 */
#ifndef SLI_IO_H
#define SLI_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sluice/sl_alloc.h>

#include "sli_state.h"

/* -------------------------------------------------------------- crc32c */

/**
 * sli_crc32c() - CRC32C of @len bytes at @buf, continuing @crc (0 to
 * start): sli_crc32c(sli_crc32c(0, a, n), b, m) is the CRC of a then b.
 * Uses SSE4.2 when the CPU has it; _sw and _hw force one implementation
 * (_hw falls back to _sw without SSE4.2: see sli_crc32c_hw_available()).
 */
uint32_t sli_crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t sli_crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t sli_crc32c_hw(uint32_t crc, const void *buf, size_t len);
bool sli_crc32c_hw_available(void);

/* ---------------------------------------------------------- I/O engine */

enum { SLI_IO_READ, SLI_IO_WRITE, SLI_IO_FSYNC };

/*
 * Request flag: the next request of the batch starts only once this one
 * has completed in full (io_uring: IOSQE_IO_LINK). When it fails, the
 * rest of its chain is not run and comes back -ECANCELED. A chain is at
 * most 256 requests; the flag on a batch's last request is ignored.
 */
#define SLI_IO_LINK 1u

/** One positioned read, write or fsync (@buf, @off, @len unused) of a batch. */
struct sli_io_req {
	void *buf;
	uint64_t off;
	uint32_t len;
	int fd;
	int op;		/* SLI_IO_READ, SLI_IO_WRITE or SLI_IO_FSYNC */
	int res;	/* out: @len when done (fsync: 0), or -errno (a read past the end: -EIO) */
	unsigned flags; /* SLI_IO_LINK or 0 */
};

struct sli_io {
	const char *name; /* "io_uring", "posix", "fault" */
	/*
	 * Do every request of @r (short transfers are continued) and wait
	 * for all. Return: 0, or the -errno of the first request that
	 * failed (each request's own result is in its res); io_uring:
	 * -EINVAL for a chain longer than its ring (nothing done).
	 *
	 * Only the fault engine's short-write mode (sli_io_fault_short())
	 * completes a write with 0 <= res < len: the first res bytes were
	 * written, the rest was not, and its chain came back -ECANCELED. Not
	 * an error for run()'s return; whoever turns that mode on continues
	 * the write itself (the checkpoint store does).
	 */
	int (*run)(struct sli_io *io, struct sli_io_req *r, unsigned n);
	void (*destroy)(struct sli_io *io);
};

static inline int sli_io_run(struct sli_io *io, struct sli_io_req *r, unsigned n)
{
	return n == 0 ? 0 : io->run(io, r, n);
}

/** Free an engine; accepts NULL. */
static inline void sli_io_destroy(struct sli_io *io)
{
	if (io != NULL)
		io->destroy(io);
}

/** io_uring with @depth entries. Return: 0; -ENOMEM; the error of io_uring_queue_init(). */
int sli_io_uring_create(const struct sl_allocator *a, unsigned depth, struct sli_io **out);
/** pread/pwrite. Return: 0; -ENOMEM. */
int sli_io_posix_create(const struct sl_allocator *a, struct sli_io **out);

/**
 * sli_io_create() - the engine of @kind. SLI_IO_AUTO picks the POSIX
 * engine when SLUICE_STATE_IO=posix is set or in a sanitizer build
 * (ASan/TSan do not see the kernel writing into buffers), else io_uring,
 * falling back to POSIX when io_uring cannot be set up; it logs its
 * choice (info) and the reason for a fallback (warn). An explicit kind
 * fails rather than falling back.
 * Return: 0; -EINVAL for an unknown kind; the errors of the _create()s.
 */
int sli_io_create(const struct sl_allocator *a, enum sli_io_kind kind, struct sli_io **out);
/** sli_io_create() whose log lines name its user @what ("spill", "checkpoint"). */
int sli_io_create_for(const struct sl_allocator *a, enum sli_io_kind kind, const char *what,
		      struct sli_io **out);

/**
 * sli_io_fault_create() - an engine that passes requests to @inner
 * (borrowed) until told to fail: see sli_io_fault_set().
 */
int sli_io_fault_create(const struct sl_allocator *a, struct sli_io *inner, struct sli_io **out);
/**
 * sli_io_fault_set() - from now on, fail writes with @write_err once
 * @write_ok more bytes have been written, and fail reads with @read_err
 * after @read_ok more reads (an error of 0: never). Failed requests
 * transfer nothing.
 */
void sli_io_fault_set(struct sli_io *io, int write_err, uint64_t write_ok, int read_err,
		      uint64_t read_ok);
/**
 * sli_io_fault_fsync() - from now on, fail fsyncs with @err after @ok
 * more have succeeded (an error of 0: never).
 */
void sli_io_fault_fsync(struct sli_io *io, int err, uint64_t ok);
/**
 * sli_io_fault_short() - the next @count writes transfer at most @max
 * bytes each (0 < @max) and report how many (res < len when short: see
 * struct sli_io); their chains come back -ECANCELED, as io_uring's do
 * after a short write. A @count of 0 turns the mode off. Bytes written
 * count against sli_io_fault_set()'s @write_ok.
 */
void sli_io_fault_short(struct sli_io *io, uint32_t max, unsigned count);
/** Counts of what the fault engine passed on (tests): writes, fsyncs. */
void sli_io_fault_counts(const struct sli_io *io, uint64_t *writes, uint64_t *fsyncs);

/* --------------------------------------------------------- spill store */

/*
 * The spill store keeps records {slot hash, expiry, key group, state id,
 * key, namespace, value} in append-only segment files and an in-memory
 * index from slot hash to (segment, offset, length, key group). Records
 * are looked up by slot hash and verified against the full key. See
 * spill.c for the file format, compaction and the restart policy.
 */
struct sli_spill;

/*
 * Record flag: the record holds a whole ring of the table (the namespaced
 * entries of one (state, key), indexed by its anchor's slot hash; its
 * value is laid out by table.c, it has no namespace). Locations of ring
 * records say so (sli_spill_loc_ring()).
 */
#define SLI_SPILL_RING 1u

/** A record; its pointers are borrowed (add) or point into the store's buffers (fetch, read). */
struct sli_spill_rec {
	uint64_t hash;	/* the table's slot hash */
	int64_t expiry; /* a ring's: the latest of its entries' */
	const void *key, *ns, *value;
	uint32_t key_len, value_len;
	uint16_t ns_len, state_id, kg;
	uint16_t flags; /* SLI_SPILL_RING or 0 */
};

/** Where a record is (0: nowhere); opaque but for its key group. */
typedef uint64_t sli_spill_loc;

/** Called for every record the store forgets by itself (expired); @r is valid during the call. */
typedef void (*sli_spill_gone_fn)(void *arg, const struct sli_spill_rec *r);

/**
 * sli_spill_create() - a store in @c->dir (created if missing), owned by
 * the caller until destroyed. Stale files of an earlier store in that
 * directory are removed; a directory a live store holds is refused.
 * Return: 0; -EINVAL; -EBUSY (directory in use); -ENOMEM; the -errno of
 * mkdir/open/flock; of sli_io_create().
 */
int sli_spill_create(const struct sl_allocator *a, const struct sli_spill_conf *c,
		     struct sli_spill **out);
/** Close and delete every file of the store; accepts NULL. */
void sli_spill_destroy(struct sli_spill *sp);

/** The largest record (header, key, namespace, value) the store takes. */
size_t sli_spill_rec_max(const struct sli_spill *sp);
/** Bytes of the record of @key_len, @ns_len, @value_len (header and padding included). */
size_t sli_spill_rec_size(uint32_t key_len, uint16_t ns_len, uint32_t value_len);

/**
 * sli_spill_add() - append @r and index it. The caller guarantees that
 * the store has no record of the same key. Return: 0; -E2BIG (larger than
 * sli_spill_rec_max()); -ENOMEM; the engine's error when the write buffer
 * is full and cannot be written (nothing changed: retry later).
 */
int sli_spill_add(struct sli_spill *sp, const struct sli_spill_rec *r);

/** Does the index have a record with slot hash @h (a key compare may still say no)? */
bool sli_spill_maybe(const struct sli_spill *sp, uint64_t h);

/**
 * sli_spill_fetch() - find the records of @n keys: keys[i] with slot
 * hash h[i]. The reads of all of them are submitted as one batch.
 * loc[i] receives where the record is (0: none) and rec[i] the record,
 * pointing into the store's read buffer until the next call on the store.
 * Return: 0; -ENOMEM; -EBADMSG (checksum); -EIO or the engine's error.
 * On error, what could be read is still filled in (loc[i] != 0 with
 * rec[i].key == NULL: the record failed), and sli_spill_error() says
 * which file and offset failed.
 */
int sli_spill_fetch(struct sli_spill *sp, unsigned n, const struct sli_skey *keys,
		    const uint64_t *h, struct sli_spill_rec *rec, sli_spill_loc *loc);

/** sli_spill_fetch() by location (snapshots). */
int sli_spill_read(struct sli_spill *sp, unsigned n, const sli_spill_loc *loc,
		   struct sli_spill_rec *rec);

/*
 * Frozen views for copy-on-write snapshots (table_snap.c). create (the
 * store's thread): the locations of every record indexed now, duplicates
 * of the segment files' descriptors and a copy of the unwritten part of
 * the write buffer, so that the view reads what the store held now, on
 * any one thread, whatever the store does later (compaction, deletion).
 * Return 0; -ENOMEM; the -errno of dup (EMFILE). read: sli_spill_read()
 * for the view, with plain preads; 0, -ENOMEM, -EBADMSG or the read's
 * -errno, with error() naming the file and offset. destroy accepts NULL.
 */
struct sli_spill_view;
int sli_spill_view_create(struct sli_spill *sp, struct sli_spill_view **out);
const sli_spill_loc *sli_spill_view_locs(const struct sli_spill_view *v, size_t *n);
int sli_spill_view_read(struct sli_spill_view *v, unsigned n, const sli_spill_loc *loc,
			struct sli_spill_rec *rec);
const char *sli_spill_view_error(const struct sli_spill_view *v);
void sli_spill_view_destroy(struct sli_spill_view *v);

/** Forget the record at @loc with slot hash @h (its entry is back in memory). */
void sli_spill_drop(struct sli_spill *sp, uint64_t h, sli_spill_loc loc);

/** The key group of the record at @loc. */
static inline unsigned sli_spill_loc_kg(sli_spill_loc loc)
{
	return (unsigned)(loc >> 49);
}

/** Is the record at @loc a ring (SLI_SPILL_RING)? */
static inline bool sli_spill_loc_ring(sli_spill_loc loc)
{
	return (loc >> 48) & 1;
}
/** The bytes a read of the record at @loc transfers (its padded length). */
static inline uint32_t sli_spill_loc_len(sli_spill_loc loc)
{
	return (uint32_t)(loc & ((1u << 14) - 1)) << 4;
}

/** Call @fn for every record indexed; stops at and returns the first non-zero. */
int sli_spill_each(const struct sli_spill *sp, int (*fn)(void *arg, uint64_t h, sli_spill_loc loc),
		   void *arg);

/**
 * sli_spill_work() - one bounded step of background work: write the
 * buffer when full, and compact (rewrite one chunk of a segment whose
 * garbage passed the configured ratio). Records expired at the last
 * sli_spill_expire() time are dropped instead of rewritten (@gone).
 * Return: 0 or the error of the step (retried by the next call).
 */
int sli_spill_work(struct sli_spill *sp, sli_spill_gone_fn gone, void *arg);

/**
 * sli_spill_expire() - examine about @budget records of the files from a
 * persistent cursor, dropping those with expiry <= @now (@gone for each).
 * Return: records dropped, or -errno.
 */
int sli_spill_expire(struct sli_spill *sp, int64_t now, unsigned budget, sli_spill_gone_fn gone,
		     void *arg);

/** Write the buffered records to their file. Return: 0 or the engine's error. */
int sli_spill_flush(struct sli_spill *sp);

/** The message of the last error (file and offset), "" when none. */
const char *sli_spill_error(const struct sli_spill *sp);

/** Add the store's figures to @st (the spill_* fields). */
void sli_spill_stats(const struct sli_spill *sp, struct sli_table_stats *st);

/** The engine's name. */
const char *sli_spill_engine(const struct sli_spill *sp);

/** Path of the segment file holding @loc (tests corrupt it); NULL if none. */
const char *sli_spill_loc_file(struct sli_spill *sp, sli_spill_loc loc, uint64_t *off);

#endif /* SLI_IO_H */
