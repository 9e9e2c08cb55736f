/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spill.c — the disk tier of a keyed-state table: cold entries as
 * checksummed records in append-only segment files, found through an
 * in-memory index (see sli_io.h for the interface, table.c for when
 * entries move here and back).
 *
 * Files. One directory per table (the caller's spill_dir), holding
 * "spill.lock" (flock'ed while a store lives: a second store on the same
 * directory gets -EBUSY) and segments "spill-NNNNN.sls" of at most
 * segment_bytes (<= 16 MiB). A segment is a sequence of records, each
 * padded to 16 bytes:
 *   u32 crc32c   over the rest of the record (from len to the last value byte)
 *   u32 len      header + key + namespace + value, unpadded
 *   u64 hash     the table's slot hash
 *   i64 expiry
 *   u32 key_len, u32 value_len, u16 ns_len, u16 state_id, u16 key group, u16 magic
 *   key, namespace, value bytes
 * The magic tells an entry's record (0x5331) from a ring's (0x5332: the
 * table's namespaced entries of one (state, key) in one record, its
 * value laid out by table.c; no namespace).
 * Little-endian (the host's: files never leave the machine). A record that
 * fails its checksum, magic or lengths is reported as -EBADMSG with the
 * file and offset; it is never returned.
 *
 * Restart policy. Spill files are a cache of the table, not a copy of the
 * state: checkpoints restore from checkpoint files. So a store starts
 * empty and deletes the segment files it finds in its directory (left by
 * a crash); nothing ever reads a file written by another process, and a
 * torn write after a crash cannot matter. Files are not fsync'ed.
 *
 * Writes. Records are appended to a 1 MiB write buffer, written to the
 * active segment in one request when it is full (or on flush); a record
 * still in the buffer is read from memory. A failed write keeps the
 * buffer (nothing is lost), and the error goes back to the caller; adds
 * fail until a write succeeds.
 *
 * Index. 256 open-addressing parts (by the top byte of the slot hash),
 * 16-byte slots {slot hash, location}, location = key group (15 bits) |
 * ring (1) | segment (14) | offset/16 (20) | length/16 (14); 0 is an
 * empty slot. The ring bit lets the table count and check rings without
 * reading them.
 * Parts grow at 3/4 load, each alone, so one growth rehashes 1/256 of
 * the index. Overhead per spilled entry: 16 bytes / load, 21..43 bytes
 * (plus 256 * 64 slots minimum). Reads of one fetch are one engine batch.
 *
 * Compaction. Each segment counts its live bytes. When the garbage of a
 * closed segment passes garbage_pct of it, sli_spill_work() rewrites it
 * 16 KiB per call (more only for a longer record; an operation writes at
 * most one record of garbage, so this keeps up): live records are copied to the active segment
 * and re-pointed, expired ones dropped; then the file is deleted. So the
 * files hold at most live / (1 - garbage_pct/100) plus one segment.
 *
 * Threads: the owning table's only, but for a frozen view (end of the
 * file), which one other thread reads once the table's thread made it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sluice/sl_common.h>
#include <sluice/sl_error.h>

#include "sli_io.h"

#define HDR	     40u
#define MAGIC	     0x5331u
#define MAGIC_RING   0x5332u /* a ring record (SLI_SPILL_RING) */
#define WBUF	     (1u << 20)
#define CHUNK	     (1u << 20)
#define COMPACT_STEP (16u << 10) /* bytes compacted per sli_spill_work() */
#define SEG_MAX	     (1u << 24)	 /* offset/16 in 20 bits */
#define REC_MAX	     (16u << 14) /* length/16 in 14 bits: 256 KiB */
#define NPART	     256
#define PART_MIN     64
#define MAX_SEGS     (1u << 14)
#define NONE	     UINT_MAX
#define NAME_FMT     "spill-%05u.sls"
#define LOCK_NAME    "spill.lock"
#define ERR_LEN	     (PATH_MAX + 160)

_Static_assert(REC_MAX <= CHUNK, "a chunk holds any record");

struct rhdr {
	uint32_t crc, len;
	uint64_t hash;
	int64_t expiry;
	uint32_t key_len, value_len;
	uint16_t ns_len, state_id, kg, magic;
};
_Static_assert(sizeof(struct rhdr) == HDR, "record header is 40 bytes");

struct islot {
	uint64_t hash;
	sli_spill_loc loc;
};

struct ipart {
	struct islot *s;
	uint32_t mask, used; /* mask + 1 slots, or none */
};

struct seg {
	int fd; /* -1: id free */
	uint32_t size, live;
	bool bad; /* a record failed its checksum: never compacted */
};

struct extra {
	struct extra *next;
};

struct sli_spill {
	const struct sl_allocator *a;
	struct sli_io *io;
	bool own_io;
	int dirfd, lockfd;
	char dir[PATH_MAX];
	uint32_t seg_bytes;
	unsigned garbage_pct;
	struct seg *segs;
	unsigned nsegs; /* ids [0, nsegs) exist in segs[] */
	unsigned active;
	unsigned char *wbuf;
	uint32_t wstart, wlen; /* the buffer holds [wstart, wstart + wlen) of active */
	struct ipart part[NPART];
	size_t indexed, index_bytes;
	unsigned char *rbuf, *cbuf;
	size_t rcap;
	struct sli_io_req *reqs;
	unsigned reqcap;
	struct extra *extra; /* slow-path read buffers of the last fetch */
	bool want_compact;
	unsigned victim;
	uint32_t voff;
	unsigned tseg; /* TTL sweep cursor */
	uint32_t toff;
	int64_t expire_now;
	uint64_t file_bytes, live_bytes;
	uint64_t reads, batches, writes, compactions;
	char err[ERR_LEN];
};

/* ------------------------------------------------------------ locations */

static inline size_t align16(size_t x)
{
	return (x + 15) & ~(size_t)15;
}

static inline sli_spill_loc mkloc(unsigned kg, bool ring, unsigned seg, uint32_t off, uint32_t len)
{
	return (uint64_t)kg << 49 | (uint64_t)ring << 48 | (uint64_t)seg << 34 |
	       (uint64_t)(off >> 4) << 14 | (len >> 4);
}

static inline bool is_magic(uint16_t m)
{
	return m == MAGIC || m == MAGIC_RING;
}

static inline unsigned loc_seg(sli_spill_loc l)
{
	return (unsigned)(l >> 34) & (MAX_SEGS - 1);
}

static inline uint32_t loc_off(sli_spill_loc l)
{
	return (uint32_t)((l >> 14) & ((1u << 20) - 1)) << 4;
}

static inline uint32_t loc_len(sli_spill_loc l)
{
	return (uint32_t)(l & ((1u << 14) - 1)) << 4;
}

size_t sli_spill_rec_size(uint32_t key_len, uint16_t ns_len, uint32_t value_len)
{
	return align16((size_t)HDR + key_len + ns_len + value_len);
}

size_t sli_spill_rec_max(const struct sli_spill *sp)
{
	return sp->seg_bytes < REC_MAX ? sp->seg_bytes : REC_MAX;
}

static int fail(struct sli_spill *sp, int err, unsigned seg, uint64_t off, const char *what)
{
	snprintf(sp->err, sizeof(sp->err), "spill file %s/" NAME_FMT " offset %llu: %s", sp->dir,
		 seg, (unsigned long long)off, what != NULL ? what : strerror(-err));
	return err;
}

const char *sli_spill_error(const struct sli_spill *sp)
{
	return sp->err;
}

const char *sli_spill_engine(const struct sli_spill *sp)
{
	return sp->io->name;
}

/* ---------------------------------------------------------------- index */

static inline struct ipart *part_of(const struct sli_spill *sp, uint64_t h)
{
	return (struct ipart *)&sp->part[h >> 56];
}

static int part_grow(struct sli_spill *sp, struct ipart *p)
{
	uint32_t cap = p->s == NULL ? PART_MIN : (p->mask + 1) * 2;
	struct islot *n = sl_alloc_aligned(sp->a, (size_t)cap * sizeof(*n), SL_CACHE_LINE);

	if (n == NULL)
		return -ENOMEM;
	memset(n, 0, (size_t)cap * sizeof(*n));
	if (p->s != NULL) {
		for (uint32_t i = 0; i <= p->mask; i++) {
			size_t j;

			if (p->s[i].loc == 0)
				continue;
			for (j = p->s[i].hash & (cap - 1); n[j].loc != 0; j = (j + 1) & (cap - 1))
				;
			n[j] = p->s[i];
		}
		sl_alloc_free(sp->a, p->s);
		sp->index_bytes -= (size_t)(p->mask + 1) * sizeof(*n);
	}
	p->s = n;
	p->mask = cap - 1;
	sp->index_bytes += (size_t)cap * sizeof(*n);
	return 0;
}

static inline int index_room(struct sli_spill *sp, uint64_t h)
{
	struct ipart *p = part_of(sp, h);

	if (p->s == NULL || p->used + 1 > (p->mask + 1) / 4 * 3)
		return part_grow(sp, p);
	return 0;
}

static void index_insert(struct sli_spill *sp, uint64_t h, sli_spill_loc loc)
{
	struct ipart *p = part_of(sp, h);
	size_t i;

	for (i = h & p->mask; p->s[i].loc != 0; i = (i + 1) & p->mask)
		;
	p->s[i] = (struct islot){ h, loc };
	p->used++;
	sp->indexed++;
}

/* The slot of hash @h at or after probe position @from (from the home: SIZE_MAX); NULL if none. */
static struct islot *index_next(const struct sli_spill *sp, uint64_t h, struct islot *from)
{
	struct ipart *p = part_of(sp, h);
	size_t i;

	if (p->s == NULL)
		return NULL;
	i = from == NULL ? h & p->mask : ((size_t)(from - p->s) + 1) & p->mask;
	for (; p->s[i].loc != 0; i = (i + 1) & p->mask)
		if (p->s[i].hash == h)
			return &p->s[i];
	return NULL;
}

static struct islot *index_at(const struct sli_spill *sp, uint64_t h, sli_spill_loc loc)
{
	struct islot *s = NULL;

	while ((s = index_next(sp, h, s)) != NULL)
		if (s->loc == loc)
			return s;
	return NULL;
}

static void index_delete(struct sli_spill *sp, uint64_t h, struct islot *s)
{
	struct ipart *p = part_of(sp, h);
	size_t i = (size_t)(s - p->s), j = i;

	for (;;) {
		j = (j + 1) & p->mask;
		if (p->s[j].loc == 0)
			break;
		if (((j - p->s[j].hash) & p->mask) >= ((j - i) & p->mask)) {
			p->s[i] = p->s[j];
			i = j;
		}
	}
	p->s[i].loc = 0;
	p->used--;
	sp->indexed--;
}

bool sli_spill_maybe(const struct sli_spill *sp, uint64_t h)
{
	return index_next(sp, h, NULL) != NULL;
}

int sli_spill_each(const struct sli_spill *sp, int (*fn)(void *arg, uint64_t h, sli_spill_loc loc),
		   void *arg)
{
	for (unsigned k = 0; k < NPART; k++) {
		const struct ipart *p = &sp->part[k];

		for (uint32_t i = 0; p->s != NULL && i <= p->mask; i++) {
			int rc;

			if (p->s[i].loc != 0 && (rc = fn(arg, p->s[i].hash, p->s[i].loc)) != 0)
				return rc;
		}
	}
	return 0;
}

/* ------------------------------------------------------------- segments */

static void seg_path(const struct sli_spill *sp, unsigned id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" NAME_FMT, sp->dir, id);
}

const char *sli_spill_loc_file(struct sli_spill *sp, sli_spill_loc loc, uint64_t *off)
{
	static __thread char path[PATH_MAX + 32];

	if (loc == 0 || loc_seg(loc) >= sp->nsegs || sp->segs[loc_seg(loc)].fd < 0)
		return NULL;
	seg_path(sp, loc_seg(loc), path, sizeof(path));
	*off = loc_off(loc);
	return path;
}

static int seg_new(struct sli_spill *sp, unsigned *out)
{
	char name[32];
	unsigned id;
	int fd;

	for (id = 0; id < sp->nsegs && sp->segs[id].fd >= 0; id++)
		;
	if (id == MAX_SEGS)
		return fail(sp, -ENOSPC, id, 0, "too many segment files");
	if (id == sp->nsegs) {
		unsigned cap = sp->nsegs ? sp->nsegs * 2 : 16;
		struct seg *n;

		if (cap > MAX_SEGS)
			cap = MAX_SEGS;
		n = sl_alloc_aligned(sp->a, cap * sizeof(*n), 16);
		if (n == NULL)
			return -ENOMEM;
		if (sp->nsegs)
			memcpy(n, sp->segs, sp->nsegs * sizeof(*n));
		for (unsigned k = sp->nsegs; k < cap; k++)
			n[k] = (struct seg){ .fd = -1 };
		sl_alloc_free(sp->a, sp->segs);
		sp->index_bytes += (cap - sp->nsegs) * sizeof(*n);
		sp->segs = n;
		sp->nsegs = cap;
	}
	snprintf(name, sizeof(name), NAME_FMT, id);
	fd = openat(sp->dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail(sp, -errno, id, 0, NULL);
	sp->segs[id] = (struct seg){ .fd = fd };
	*out = id;
	return 0;
}

static void seg_delete(struct sli_spill *sp, unsigned id)
{
	char name[32];
	struct seg *s = &sp->segs[id];

	snprintf(name, sizeof(name), NAME_FMT, id);
	close(s->fd);
	unlinkat(sp->dirfd, name, 0);
	sp->file_bytes -= s->size;
	sp->live_bytes -= s->live;
	*s = (struct seg){ .fd = -1 };
}

int sli_spill_flush(struct sli_spill *sp)
{
	struct sli_io_req r;
	int rc;

	if (sp->wlen == 0)
		return 0;
	r = (struct sli_io_req){ .buf = sp->wbuf,
				 .off = sp->wstart,
				 .len = sp->wlen,
				 .fd = sp->segs[sp->active].fd,
				 .op = SLI_IO_WRITE };
	rc = sli_io_run(sp->io, &r, 1);
	if (rc < 0)
		return fail(sp, rc, sp->active, sp->wstart, NULL);
	sp->writes++;
	sp->wstart += sp->wlen;
	sp->wlen = 0;
	return 0;
}

/* Room for a record of @rl bytes at the end of the write buffer. */
static int reserve(struct sli_spill *sp, uint32_t rl)
{
	int rc;

	if (sp->active == NONE || sp->segs[sp->active].size + rl > sp->seg_bytes) {
		unsigned id = NONE;

		if ((rc = sli_spill_flush(sp)) < 0 || (rc = seg_new(sp, &id)) < 0)
			return rc;
		sp->active = id;
		sp->wstart = sp->wlen = 0;
	}
	if (sp->wlen + rl > WBUF)
		return sli_spill_flush(sp);
	return 0;
}

/* Account @rl new bytes at the end of the active segment. */
static sli_spill_loc appended(struct sli_spill *sp, unsigned kg, bool ring, uint32_t rl)
{
	struct seg *s = &sp->segs[sp->active];
	sli_spill_loc loc = mkloc(kg, ring, sp->active, sp->wstart + sp->wlen, rl);

	sp->wlen += rl;
	s->size += rl;
	s->live += rl;
	sp->file_bytes += rl;
	sp->live_bytes += rl;
	return loc;
}

static void forget(struct sli_spill *sp, uint64_t h, struct islot *s)
{
	struct seg *g = &sp->segs[loc_seg(s->loc)];
	uint32_t len = loc_len(s->loc);

	g->live -= len;
	sp->live_bytes -= len;
	if (loc_seg(s->loc) != sp->active &&
	    (uint64_t)g->live * 100 < (uint64_t)g->size * (100 - sp->garbage_pct))
		sp->want_compact = true;
	index_delete(sp, h, s);
}

void sli_spill_drop(struct sli_spill *sp, uint64_t h, sli_spill_loc loc)
{
	struct islot *s = index_at(sp, h, loc);

	SL_ASSERT(s != NULL);
	if (s != NULL)
		forget(sp, h, s);
}

/* ------------------------------------------------------------ lifecycle */

static int remove_stale(struct sli_spill *sp)
{
	int fd = openat(sp->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);

		if (n > 10 && strncmp(de->d_name, "spill-", 6) == 0 &&
		    strcmp(de->d_name + n - 4, ".sls") == 0)
			unlinkat(sp->dirfd, de->d_name, 0);
	}
	closedir(d);
	return 0;
}

int sli_spill_create(const struct sl_allocator *a, const struct sli_spill_conf *c,
		     struct sli_spill **out)
{
	struct sli_spill *sp;
	int rc;

	if (c == NULL || out == NULL || c->dir == NULL || c->dir[0] == '\0' ||
	    strlen(c->dir) >= PATH_MAX || c->garbage_pct > 90 ||
	    (c->segment_bytes != 0 && (c->segment_bytes < 4096 || c->segment_bytes > SEG_MAX)))
		return -EINVAL;
	sp = sl_alloc_aligned(a, sizeof(*sp), SL_CACHE_LINE);
	if (sp == NULL)
		return -ENOMEM;
	memset(sp, 0, sizeof(*sp));
	sp->a = a;
	sp->dirfd = sp->lockfd = -1;
	sp->active = sp->victim = NONE;
	sp->seg_bytes = c->segment_bytes ? c->segment_bytes & ~15u : SEG_MAX;
	sp->garbage_pct = c->garbage_pct ? c->garbage_pct : 50;
	strcpy(sp->dir, c->dir);
	if (mkdir(c->dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		goto err;
	}
	sp->dirfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->dirfd < 0) {
		rc = -errno;
		goto err;
	}
	sp->lockfd = openat(sp->dirfd, LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (sp->lockfd < 0) {
		rc = -errno;
		goto err;
	}
	if (flock(sp->lockfd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(sp->lockfd);
		sp->lockfd = -1;
		goto err;
	}
	if ((rc = remove_stale(sp)) < 0)
		goto err;
	sp->wbuf = sl_alloc_aligned(a, WBUF, 4096);
	sp->cbuf = sl_alloc_aligned(a, CHUNK, 4096);
	if (sp->wbuf == NULL || sp->cbuf == NULL) {
		rc = -ENOMEM;
		goto err;
	}
	if (c->engine != NULL) {
		sp->io = c->engine;
	} else {
		if ((rc = sli_io_create(a, c->io, &sp->io)) < 0)
			goto err;
		sp->own_io = true;
	}
	*out = sp;
	return 0;
err:
	sli_spill_destroy(sp);
	return rc;
}

void sli_spill_destroy(struct sli_spill *sp)
{
	if (sp == NULL)
		return;
	for (unsigned id = 0; id < sp->nsegs; id++)
		if (sp->segs[id].fd >= 0)
			seg_delete(sp, id);
	for (unsigned k = 0; k < NPART; k++)
		sl_alloc_free(sp->a, sp->part[k].s);
	while (sp->extra != NULL) {
		struct extra *x = sp->extra;

		sp->extra = x->next;
		sl_alloc_free(sp->a, x);
	}
	if (sp->lockfd >= 0) {
		unlinkat(sp->dirfd, LOCK_NAME, 0);
		close(sp->lockfd);
	}
	if (sp->dirfd >= 0)
		close(sp->dirfd);
	if (sp->own_io)
		sli_io_destroy(sp->io);
	sl_alloc_free(sp->a, sp->segs);
	sl_alloc_free(sp->a, sp->wbuf);
	sl_alloc_free(sp->a, sp->cbuf);
	sl_alloc_free(sp->a, sp->rbuf);
	sl_alloc_free(sp->a, sp->reqs);
	sl_alloc_free(sp->a, sp);
}

/* -------------------------------------------------------------- records */

int sli_spill_add(struct sli_spill *sp, const struct sli_spill_rec *r)
{
	size_t len = (size_t)HDR + r->key_len + r->ns_len + r->value_len;
	uint32_t rl = (uint32_t)align16(len);
	struct rhdr hd;
	unsigned char *p;
	int rc;

	if (len > sli_spill_rec_max(sp))
		return -E2BIG;
	if ((rc = index_room(sp, r->hash)) < 0 || (rc = reserve(sp, rl)) < 0)
		return rc;
	p = sp->wbuf + sp->wlen;
	hd = (struct rhdr){ .len = (uint32_t)len,
			    .hash = r->hash,
			    .expiry = r->expiry,
			    .key_len = r->key_len,
			    .value_len = r->value_len,
			    .ns_len = r->ns_len,
			    .state_id = r->state_id,
			    .kg = r->kg,
			    .magic = (r->flags & SLI_SPILL_RING) ? MAGIC_RING : MAGIC };
	memcpy(p, &hd, HDR);
	if (r->key_len)
		memcpy(p + HDR, r->key, r->key_len);
	if (r->ns_len)
		memcpy(p + HDR + r->key_len, r->ns, r->ns_len);
	if (r->value_len)
		memcpy(p + HDR + r->key_len + r->ns_len, r->value, r->value_len);
	memset(p + len, 0, rl - len);
	hd.crc = sli_crc32c(0, p + 4, len - 4);
	memcpy(p, &hd.crc, 4);
	index_insert(sp, r->hash, appended(sp, r->kg, r->flags & SLI_SPILL_RING, rl));
	return 0;
}

/* Check and decode the record of @avail bytes at @p: NULL, or what is wrong. Pure. */
static const char *check_rec(const unsigned char *p, uint32_t avail, struct sli_spill_rec *r)
{
	struct rhdr hd;

	if (avail < HDR)
		return "truncated record";
	memcpy(&hd, p, HDR);
	if (!is_magic(hd.magic) || hd.len < HDR || hd.len > avail ||
	    (hd.magic == MAGIC_RING && hd.ns_len != 0) ||
	    (uint64_t)HDR + hd.key_len + hd.ns_len + hd.value_len != hd.len)
		return "bad record header";
	if (sli_crc32c(0, p + 4, hd.len - 4) != hd.crc)
		return "CRC32C mismatch";
	*r = (struct sli_spill_rec){ .hash = hd.hash,
				     .expiry = hd.expiry,
				     .key = p + HDR,
				     .ns = p + HDR + hd.key_len,
				     .value = p + HDR + hd.key_len + hd.ns_len,
				     .key_len = hd.key_len,
				     .value_len = hd.value_len,
				     .ns_len = hd.ns_len,
				     .state_id = hd.state_id,
				     .kg = hd.kg,
				     .flags = hd.magic == MAGIC_RING ? SLI_SPILL_RING : 0 };
	return NULL;
}

/* Check and decode the record of @avail bytes at @p (at @seg/@off). */
static int decode(struct sli_spill *sp, const unsigned char *p, uint32_t avail, unsigned seg,
		  uint64_t off, struct sli_spill_rec *r)
{
	const char *why = check_rec(p, avail, r);

	return why != NULL ? fail(sp, -EBADMSG, seg, off, why) : 0;
}

static bool rec_is(const struct sli_spill_rec *r, const struct sli_skey *k)
{
	return r->state_id == k->state_id && r->key_len == k->key_len && r->ns_len == k->ns_len &&
	       (k->key_len == 0 || memcmp(r->key, k->key, k->key_len) == 0) &&
	       (k->ns_len == 0 || memcmp(r->ns, k->ns, k->ns_len) == 0);
}

static int grow_bufs(struct sli_spill *sp, unsigned n, size_t bytes)
{
	if (n > sp->reqcap) {
		struct sli_io_req *r = sl_alloc_aligned(sp->a, n * sizeof(*r), 16);

		if (r == NULL)
			return -ENOMEM;
		sl_alloc_free(sp->a, sp->reqs);
		sp->reqs = r;
		sp->reqcap = n;
	}
	if (bytes > sp->rcap) {
		size_t cap = sp->rcap ? sp->rcap : 4096;
		unsigned char *b;

		while (cap < bytes)
			cap *= 2;
		b = sl_alloc_aligned(sp->a, cap, 4096);
		if (b == NULL)
			return -ENOMEM;
		sl_alloc_free(sp->a, sp->rbuf);
		sp->rbuf = b;
		sp->rcap = cap;
	}
	return 0;
}

static bool buffered(const struct sli_spill *sp, sli_spill_loc loc)
{
	return loc_seg(loc) == sp->active && loc_off(loc) >= sp->wstart;
}

/*
 * Read the records at loc[0..n) as one batch and decode them into rec[]
 * (rec[i].key == NULL: failed, error in sp->err). Return: 0 or the first error.
 */
static int read_locs(struct sli_spill *sp, unsigned n, const sli_spill_loc *loc,
		     struct sli_spill_rec *rec)
{
	size_t bytes = 0;
	unsigned nr = 0;
	int rc, first = 0;

	for (unsigned i = 0; i < n; i++)
		bytes += loc[i] != 0 && !buffered(sp, loc[i]) ? loc_len(loc[i]) : 0;
	if ((rc = grow_bufs(sp, n, bytes)) < 0)
		return rc;
	bytes = 0;
	for (unsigned i = 0; i < n; i++) {
		rec[i].key = NULL;
		if (loc[i] == 0 || buffered(sp, loc[i]))
			continue;
		sp->reqs[nr++] = (struct sli_io_req){ .buf = sp->rbuf + bytes,
						      .off = loc_off(loc[i]),
						      .len = loc_len(loc[i]),
						      .fd = sp->segs[loc_seg(loc[i])].fd,
						      .op = SLI_IO_READ };
		bytes += loc_len(loc[i]);
	}
	if (nr != 0) {
		sli_io_run(sp->io, sp->reqs, nr);
		sp->batches++;
		sp->reads += nr;
	}
	nr = 0;
	for (unsigned i = 0; i < n; i++) {
		unsigned s = loc_seg(loc[i]);
		const unsigned char *p;

		if (loc[i] == 0)
			continue;
		if (buffered(sp, loc[i])) {
			p = sp->wbuf + (loc_off(loc[i]) - sp->wstart);
		} else {
			struct sli_io_req *r = &sp->reqs[nr++];

			if (r->res < 0) {
				rc = fail(sp, r->res, s, loc_off(loc[i]), NULL);
				first = first ? first : rc;
				continue;
			}
			p = r->buf;
		}
		rc = decode(sp, p, loc_len(loc[i]), s, loc_off(loc[i]), &rec[i]);
		if (rc < 0) {
			rec[i].key = NULL;
			first = first ? first : rc;
		}
	}
	return first;
}

static void extra_free(struct sli_spill *sp)
{
	while (sp->extra != NULL) {
		struct extra *x = sp->extra;

		sp->extra = x->next;
		sl_alloc_free(sp->a, x);
	}
}

/* The rare case: the first record of slot hash @h was another key's. Try the others one by one. */
static int fetch_slow(struct sli_spill *sp, const struct sli_skey *k, uint64_t h,
		      struct islot *from, struct sli_spill_rec *rec, sli_spill_loc *loc)
{
	struct islot *s = from;

	*loc = 0;
	while ((s = index_next(sp, h, s)) != NULL) {
		uint32_t len = loc_len(s->loc);
		struct extra *x = sl_alloc_aligned(sp->a, sizeof(*x) + len, 16);
		struct sli_io_req r;
		int rc;

		if (x == NULL)
			return -ENOMEM;
		x->next = sp->extra;
		sp->extra = x;
		if (buffered(sp, s->loc)) {
			memcpy(x + 1, sp->wbuf + (loc_off(s->loc) - sp->wstart), len);
		} else {
			r = (struct sli_io_req){ .buf = x + 1,
						 .off = loc_off(s->loc),
						 .len = len,
						 .fd = sp->segs[loc_seg(s->loc)].fd,
						 .op = SLI_IO_READ };
			if ((rc = sli_io_run(sp->io, &r, 1)) < 0)
				return fail(sp, rc, loc_seg(s->loc), loc_off(s->loc), NULL);
		}
		rc = decode(sp, (unsigned char *)(x + 1), len, loc_seg(s->loc), loc_off(s->loc),
			    rec);
		if (rc < 0)
			return rc;
		if (rec_is(rec, k)) {
			*loc = s->loc;
			return 0;
		}
	}
	rec->key = NULL;
	return 0;
}

int sli_spill_fetch(struct sli_spill *sp, unsigned n, const struct sli_skey *keys,
		    const uint64_t *h, struct sli_spill_rec *rec, sli_spill_loc *loc)
{
	int rc, first;

	extra_free(sp);
	for (unsigned i = 0; i < n; i++) {
		struct islot *s = index_next(sp, h[i], NULL);

		loc[i] = s != NULL ? s->loc : 0;
	}
	first = read_locs(sp, n, loc, rec);
	if (first == -ENOMEM)
		return first;
	for (unsigned i = 0; i < n; i++) {
		if (loc[i] == 0 || rec[i].key == NULL || rec_is(&rec[i], &keys[i]))
			continue;
		rc = fetch_slow(sp, &keys[i], h[i], index_at(sp, h[i], loc[i]), &rec[i], &loc[i]);
		if (rc < 0) {
			loc[i] = 1; /* failed: not "absent" */
			rec[i].key = NULL;
			first = first ? first : rc;
		}
	}
	return first;
}

int sli_spill_read(struct sli_spill *sp, unsigned n, const sli_spill_loc *loc,
		   struct sli_spill_rec *rec)
{
	extra_free(sp);
	return read_locs(sp, n, loc, rec);
}

/* ----------------------------------------------------- scan and compact */

/*
 * Scan the records of segment @id in [*off, min(end, *off + CHUNK)),
 * reading them as one request. Live expired ones (expiry <= now) are
 * dropped; with @move the other live ones are copied to the active
 * segment. *off advances past what was handled. Return: records
 * dropped, or -errno (*off at the record that failed).
 */
static int scan(struct sli_spill *sp, unsigned id, uint32_t *off, uint32_t end, int64_t now,
		bool move, sli_spill_gone_fn gone, void *arg)
{
	uint32_t n = end - *off < CHUNK ? end - *off : CHUNK, o = 0;
	struct sli_io_req r = { .buf = sp->cbuf, .off = *off, .len = n, .fd = sp->segs[id].fd };
	int rc, dropped = 0;

	if (n == 0)
		return 0;
	if ((rc = sli_io_run(sp->io, &r, 1)) < 0)
		return fail(sp, rc, id, *off, NULL);
	sp->reads++;
	sp->batches++;
	while (o + HDR <= n) {
		struct sli_spill_rec rec;
		struct rhdr hd;
		uint32_t rl;
		struct islot *s;
		sli_spill_loc loc;

		memcpy(&hd, sp->cbuf + o, HDR);
		rl = (uint32_t)align16(hd.len);
		if (is_magic(hd.magic) && hd.len >= HDR && rl <= REC_MAX && o + rl > n &&
		    (o > 0 || *off + rl <= end))
			break; /* continues in the next chunk (a longer one: scan_some) */
		if ((rc = decode(sp, sp->cbuf + o, n - o, id, *off + o, &rec)) < 0) {
			sp->segs[id].bad = true;
			*off += o;
			return rc;
		}
		loc = mkloc(hd.kg, hd.magic == MAGIC_RING, id, *off + o, rl);
		s = index_at(sp, hd.hash, loc);
		if (s != NULL && hd.expiry <= now) {
			forget(sp, hd.hash, s);
			gone(arg, &rec);
			dropped++;
		} else if (s != NULL && move) {
			if ((rc = reserve(sp, rl)) < 0) {
				*off += o;
				return rc;
			}
			memcpy(sp->wbuf + sp->wlen, sp->cbuf + o, rl);
			s->loc = appended(sp, hd.kg, hd.magic == MAGIC_RING, rl);
			sp->segs[id].live -= rl;
			sp->live_bytes -= rl;
		}
		o += rl;
	}
	*off += o;
	return dropped;
}

/* scan() up to @end, or further when a record longer than that comes first. */
static int scan_some(struct sli_spill *sp, unsigned id, uint32_t *off, uint32_t end, uint32_t size,
		     int64_t now, bool move, sli_spill_gone_fn gone, void *arg)
{
	uint32_t before = *off;
	int rc = scan(sp, id, off, end, now, move, gone, arg);

	if (rc >= 0 && *off == before && end < size)
		rc = scan(sp, id, off, size, now, move, gone, arg);
	return rc;
}

static void pick_victim(struct sli_spill *sp)
{
	unsigned best = NONE;
	uint64_t most = 0;

	sp->want_compact = false;
	for (unsigned id = 0; id < sp->nsegs; id++) {
		const struct seg *g = &sp->segs[id];
		uint64_t garbage = (uint64_t)g->size - g->live;

		if (g->fd < 0 || id == sp->active || g->bad ||
		    garbage * 100 <= (uint64_t)g->size * sp->garbage_pct)
			continue;
		if (garbage > most) {
			most = garbage;
			best = id;
		}
	}
	sp->victim = best;
	sp->voff = 0;
}

int sli_spill_work(struct sli_spill *sp, sli_spill_gone_fn gone, void *arg)
{
	int rc;

	if (sp->victim == NONE && sp->want_compact)
		pick_victim(sp);
	if (sp->victim == NONE)
		return 0;
	if (sp->segs[sp->victim].live != 0) {
		uint32_t size = sp->segs[sp->victim].size;

		/* COMPACT_STEP bytes per call: an operation makes one record of garbage at most. */
		rc = scan_some(sp, sp->victim, &sp->voff,
			       size - sp->voff < COMPACT_STEP ? size : sp->voff + COMPACT_STEP,
			       size, sp->expire_now, true, gone, arg);
		if (rc < 0) {
			if (sp->segs[sp->victim].bad)
				sp->victim =
				    NONE; /* its live records stay; reads report the error */
			return rc;
		}
		if (sp->voff < sp->segs[sp->victim].size && sp->segs[sp->victim].live != 0)
			return 0;
	}
	SL_ASSERT(sp->segs[sp->victim].live == 0);
	seg_delete(sp, sp->victim);
	sp->compactions++;
	sp->victim = NONE;
	sp->want_compact = true; /* maybe another one */
	return 0;
}

int sli_spill_expire(struct sli_spill *sp, int64_t now, unsigned budget, sli_spill_gone_fn gone,
		     void *arg)
{
	unsigned tries = 0;

	sp->expire_now = now;
	if (budget == 0 || sp->indexed == 0)
		return 0;
	while (tries++ < sp->nsegs + 1) {
		uint32_t end, lim;
		int rc;

		if (sp->tseg >= sp->nsegs) {
			sp->tseg = 0;
			sp->toff = 0;
		}
		if (sp->tseg == sp->active && sp->toff >= sp->wstart && sp->wlen != 0 &&
		    (rc = sli_spill_flush(sp)) < 0)
			return rc; /* the sweep reaches the buffered records too */
		end = sp->segs[sp->tseg].fd < 0 ? 0
		      : sp->tseg == sp->active	? sp->wstart
						: sp->segs[sp->tseg].size;
		if (sp->segs[sp->tseg].bad || sp->tseg == sp->victim || sp->toff >= end) {
			sp->tseg++;
			sp->toff = 0;
			continue;
		}
		/* About @budget records of 64 bytes, 4 KiB at least. */
		lim =
		    (uint64_t)budget * 64 < end - sp->toff ? (uint32_t)budget * 64 : end - sp->toff;
		if (lim < 4096)
			lim = end - sp->toff < 4096 ? end - sp->toff : 4096;
		rc = scan_some(sp, sp->tseg, &sp->toff, sp->toff + lim, end, now, false, gone, arg);
		if (rc < 0 && sp->segs[sp->tseg].bad) {
			sp->tseg++;
			sp->toff = 0;
		}
		return rc;
	}
	return 0;
}

void sli_spill_stats(const struct sli_spill *sp, struct sli_table_stats *st)
{
	st->spilled = sp->indexed;
	st->spill_index_bytes = sp->index_bytes;
	st->spill_buffer_bytes = WBUF + CHUNK + sp->rcap + sp->reqcap * sizeof(struct sli_io_req);
	st->spill_file_bytes = sp->file_bytes;
	st->spill_live_bytes = sp->live_bytes;
	st->spill_reads = sp->reads;
	st->spill_batches = sp->batches;
	st->spill_writes = sp->writes;
	st->spill_compactions = sp->compactions;
}

/* ------------------------------------------------------- frozen views */

/*
 * A snapshot's view of the store (sli_spill_view_create()): read on
 * another thread than the table's, so it shares nothing the task goes on
 * writing. Records are immutable once written (the buffer is written
 * past wstart, never over it), so a record on disk at the barrier stays
 * readable: through a duplicate of its segment's descriptor, even after
 * compaction or the store's destruction deleted the file (the inode lives
 * while a descriptor is open; a new segment with the same name is a new
 * file). Records still in the write buffer are read from a copy of its
 * used part. Reads are plain preads: the task's engine (an io_uring ring
 * is one thread's) is never touched.
 */
struct sli_spill_view {
	int *fds; /* [nsegs]: -1 or a duplicate */
	unsigned nsegs, active;
	uint32_t wstart, wlen;
	unsigned char *wcopy; /* [wlen]: [wstart, wstart + wlen) of segment active */
	sli_spill_loc *locs;
	size_t nlocs;
	unsigned char *rbuf;
	size_t rcap;
	char dir[PATH_MAX];
	char err[ERR_LEN];
};

static int view_loc(void *arg, uint64_t h, sli_spill_loc loc)
{
	struct sli_spill_view *v = arg;

	(void)h;
	v->locs[v->nlocs++] = loc;
	return 0;
}

int sli_spill_view_create(struct sli_spill *sp, struct sli_spill_view **out)
{
	struct sli_spill_view *v = sl_alloc_aligned(NULL, sizeof(*v), 16);
	int rc = -ENOMEM;

	if (v == NULL)
		return -ENOMEM;
	memset(v, 0, sizeof(*v));
	v->nsegs = sp->nsegs;
	v->active = sp->active;
	v->wstart = sp->wstart;
	v->wlen = sp->wlen;
	memcpy(v->dir, sp->dir, sizeof(v->dir));
	v->fds = sl_alloc_aligned(NULL, (sp->nsegs + 1) * sizeof(int), 16);
	v->wcopy = sl_alloc_aligned(NULL, sp->wlen + 16, 16);
	v->locs = sl_alloc_aligned(NULL, (sp->indexed + 1) * sizeof(*v->locs), 16);
	if (v->fds == NULL || v->wcopy == NULL || v->locs == NULL)
		goto err;
	for (unsigned id = 0; id < v->nsegs; id++)
		v->fds[id] = -1;
	for (unsigned id = 0; id < v->nsegs; id++) {
		if (sp->segs[id].fd >= 0 &&
		    (v->fds[id] = fcntl(sp->segs[id].fd, F_DUPFD_CLOEXEC, 0)) < 0) {
			rc = -errno;
			goto err;
		}
	}
	memcpy(v->wcopy, sp->wbuf, sp->wlen);
	sli_spill_each(sp, view_loc, v);
	*out = v;
	return 0;
err:
	sli_spill_view_destroy(v);
	return rc;
}

const sli_spill_loc *sli_spill_view_locs(const struct sli_spill_view *v, size_t *n)
{
	*n = v->nlocs;
	return v->locs;
}

static int view_fail(struct sli_spill_view *v, int err, sli_spill_loc loc, const char *what)
{
	snprintf(v->err, sizeof(v->err), "spill file %s/" NAME_FMT " offset %llu: %s", v->dir,
		 loc_seg(loc), (unsigned long long)loc_off(loc),
		 what != NULL ? what : sl_strerror(err));
	return err;
}

/* Read the @len bytes of the record at @loc into @buf. */
static int view_pread(struct sli_spill_view *v, sli_spill_loc loc, unsigned char *buf, uint32_t len)
{
	unsigned s = loc_seg(loc);
	uint32_t off = loc_off(loc), got = 0;

	if (s == v->active && off >= v->wstart) {
		if (off - v->wstart + (uint64_t)len > v->wlen)
			return view_fail(v, -EBADMSG, loc, "past the frozen write buffer");
		memcpy(buf, v->wcopy + (off - v->wstart), len);
		return 0;
	}
	if (s >= v->nsegs || v->fds[s] < 0)
		return view_fail(v, -EBADMSG, loc, "no such segment at the barrier");
	while (got < len) {
		ssize_t r = pread(v->fds[s], buf + got, len - got, (off_t)off + got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return view_fail(v, r < 0 ? -errno : -EIO, loc,
					 r < 0 ? NULL : "short read");
		got += (uint32_t)r;
	}
	return 0;
}

int sli_spill_view_read(struct sli_spill_view *v, unsigned n, const sli_spill_loc *loc,
			struct sli_spill_rec *rec)
{
	size_t bytes = 0, at = 0;

	for (unsigned i = 0; i < n; i++)
		bytes += loc_len(loc[i]);
	if (bytes > v->rcap) {
		unsigned char *b = sl_alloc_aligned(NULL, bytes, 16);

		if (b == NULL)
			return -ENOMEM;
		sl_alloc_free(NULL, v->rbuf);
		v->rbuf = b;
		v->rcap = bytes;
	}
	for (unsigned i = 0; i < n; i++) {
		const char *why;
		int rc = view_pread(v, loc[i], v->rbuf + at, loc_len(loc[i]));

		if (rc < 0)
			return rc;
		if ((why = check_rec(v->rbuf + at, loc_len(loc[i]), &rec[i])) != NULL)
			return view_fail(v, -EBADMSG, loc[i], why);
		at += loc_len(loc[i]);
	}
	return 0;
}

const char *sli_spill_view_error(const struct sli_spill_view *v)
{
	return v->err;
}

void sli_spill_view_destroy(struct sli_spill_view *v)
{
	if (v == NULL)
		return;
	for (unsigned id = 0; v->fds != NULL && id < v->nsegs; id++)
		if (v->fds[id] >= 0)
			close(v->fds[id]);
	sl_alloc_free(NULL, v->fds);
	sl_alloc_free(NULL, v->wcopy);
	sl_alloc_free(NULL, v->locs);
	sl_alloc_free(NULL, v->rbuf);
	sl_alloc_free(NULL, v);
}
