/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ckpt.c — checkpoint storage: checkpoint directories CK/chk-<id> (or a
 * savepoint directory) of checksummed files, written through an I/O
 * engine (sli_io.h), and the plain functions restore reads them with.
 * The contract is core/sli_ckpt.h; the file format is in
 * sli_ckpt_store.h.
 *
 * Invariants:
 *  - A checkpoint is complete exactly when its _metadata exists: the
 *    manifest is written as _metadata.tmp, fsynced, renamed and the
 *    directory fsynced; when any step fails, _metadata is removed before
 *    complete() returns, and deleting a checkpoint removes _metadata
 *    first, so list() never reports a half-written or half-deleted one.
 *  - Each file's writes and its fsync form one SLI_IO_LINK chain, and all
 *    files of a write() go to the engine as one batch; a short write is
 *    continued by submitting the rest of the chain again.
 *  - The store only ever deletes files it wrote itself or, in retain(),
 *    the contents of chk-<id> directories.
 *  - O_DIRECT changes how bytes reach the disk, never which bytes: a
 *    file's whole blocks whose memory is aligned too go through a second,
 *    O_DIRECT descriptor of the same file (the kernel does not copy them
 *    into its page cache), the rest (header, the payload's unaligned
 *    ends, trailer) through the ordinary one, in the same chain before
 *    the same fsync. A direct write refused with EINVAL turns direct I/O
 *    off for the file and is redone buffered (a file system with
 *    stricter rules than it reports); any other error fails the write.
 *
 * Threads: a store and its checkpoints belong to the coordinator thread;
 * list() and read() touch no store and may run anywhere.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sluice/sl_alloc.h>
#include <sluice/sl_log.h>

#include "sli_ckpt_store.h"
#include "sli_core.h"

#define METADATA_TMP "_metadata.tmp"
#define CHUNK	     (1u << 30) /* bytes per write request */
#define MAX_CHUNKS   250	/* a file's chain (header, chunks, trailer, fsync) fits a ring */
#define DIRECT_MIN   ((uint64_t)1 << 20) /* O_DIRECT for files with this many aligned bytes */
#define DIRECT_ALIGN 4096u		 /* when statx() does not say */

struct name {
	struct name *next;
	char s[];
};

struct sli_ckpt_store {
	char *dir;
	int dfd;
	struct sli_io *io;
	struct sli_io *inner; /* under a fault engine (owned), or NULL */
	bool own_io;
	/* O_DIRECT: off when 0 (SLUICE_CKPT_DIRECT=0), else the least aligned bytes a file needs */
	uint64_t direct_min;
	uint32_t direct_align; /* tests: this alignment instead of statx()'s (0: statx()'s) */
	struct sli_ckpt_direct_counts dc;
};

struct sli_ckpt_out {
	struct sli_ckpt_store *s;
	char *path;	    /* CK/chk-<id> or the savepoint directory */
	int dfd;	    /* @path */
	bool savepoint;	    /* @path is a savepoint directory */
	bool existed;	    /* ... that existed before begin(): leave it */
	bool completed;	    /* complete() succeeded */
	struct name *files; /* created by the store, for finish() */
};

/* ------------------------------------------------------------- helpers */

static int say(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Put the sentence in @err (when given) and return @rc. */
static int say(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static char *sdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = sl_alloc_aligned(NULL, n, 8);

	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

static char *join(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	char *d = sl_alloc_aligned(NULL, na + nb + 2, 8);

	if (d != NULL) {
		memcpy(d, a, na);
		d[na] = '/';
		memcpy(d + na + 1, b, nb + 1);
	}
	return d;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (unsigned i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* fsync directory @fd through the engine (so tests can make it fail). */
static int sync_fd(struct sli_io *io, int fd)
{
	struct sli_io_req r = { .fd = fd, .op = SLI_IO_FSYNC };
	int rc = sli_io_run(io, &r, 1);

	return rc < 0 ? rc : r.res;
}

/* fsync the directory that holds @path. */
static int sync_parent(struct sli_io *io, const char *path)
{
	char *p = sdup(path), *slash;
	int fd, rc;

	if (p == NULL)
		return -ENOMEM;
	slash = strrchr(p, '/');
	if (slash == NULL)
		strcpy(p, ".");
	else if (slash == p)
		p[1] = '\0';
	else
		*slash = '\0';
	fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = fd < 0 ? -errno : sync_fd(io, fd);
	if (fd >= 0)
		close(fd);
	sl_alloc_free(NULL, p);
	return rc;
}

/* "chk-<id>", id in canonical decimal (no sign, no leading zeros). */
static bool parse_chk(const char *name, int64_t *id)
{
	const char *p = name + 4;
	uint64_t v = 0;

	if (strncmp(name, "chk-", 4) != 0 || *p == '\0' || (p[0] == '0' && p[1] != '\0'))
		return false;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || v > ((uint64_t)INT64_MAX - (uint64_t)(*p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*id = (int64_t)v;
	return true;
}

/* A name write() accepts: one path component, not the manifest's. */
static bool name_ok(const char *n)
{
	return n != NULL && n[0] != '\0' && strchr(n, '/') == NULL && strcmp(n, ".") != 0 &&
	       strcmp(n, "..") != 0 && strcmp(n, SLI_CKPT_METADATA) != 0 &&
	       strcmp(n, METADATA_TMP) != 0 && strlen(n) < 256;
}

/* ---------------------------------------------------------- store */

static int parse_io(const char *io, enum sli_io_kind *kind)
{
	if (io == NULL || strcmp(io, "auto") == 0)
		*kind = SLI_IO_AUTO;
	else if (strcmp(io, "io_uring") == 0)
		*kind = SLI_IO_URING;
	else if (strcmp(io, "posix") == 0)
		*kind = SLI_IO_POSIX;
	else
		return -EINVAL;
	return 0;
}

/* SLUICE_CKPT_DIRECT: 0 turns O_DIRECT off, a number of bytes sets the least a file needs. */
static uint64_t direct_min_env(void)
{
	const char *e = getenv("SLUICE_CKPT_DIRECT");
	char *end;
	unsigned long long v;

	if (e == NULL || *e == '\0')
		return DIRECT_MIN;
	errno = 0;
	v = strtoull(e, &end, 10);
	if (errno != 0 || *end != '\0' || e[0] == '-') {
		sl_log(SL_LOG_WARN, "checkpoint",
		       "ignoring SLUICE_CKPT_DIRECT='%s' (0 or a number of bytes)", e);
		return DIRECT_MIN;
	}
	return v;
}

static void store_close(struct sli_ckpt_store *s)
{
	if (s == NULL)
		return;
	if (s->dfd >= 0)
		close(s->dfd);
	if (s->own_io)
		sli_io_destroy(s->io);
	if (s->inner != NULL)
		sli_io_destroy(s->inner);
	sl_alloc_free(NULL, s->dir);
	sl_alloc_free(NULL, s);
}

/* Open (creating) @dir with engine @io (NULL: @kind's, owned). */
static int store_open(const char *dir, struct sli_io *io, enum sli_io_kind kind,
		      struct sli_ckpt_store **out, char *err, size_t errlen)
{
	struct sli_ckpt_store *s;
	bool created = false;
	int rc;

	if (dir == NULL || dir[0] == '\0' || out == NULL)
		return say(err, errlen, -EINVAL, "no checkpoint directory given");
	s = sl_alloc_aligned(NULL, sizeof(*s), 16);
	if (s == NULL)
		return say(err, errlen, -ENOMEM, "out of memory opening checkpoint directory");
	*s = (struct sli_ckpt_store){ .dfd = -1, .io = io, .direct_min = direct_min_env() };
	if ((s->dir = sdup(dir)) == NULL) {
		rc = say(err, errlen, -ENOMEM, "out of memory opening checkpoint directory");
		goto fail;
	}
	if (mkdir(dir, 0755) == 0)
		created = true;
	else if (errno != EEXIST) {
		rc = say(err, errlen, -errno, "cannot create checkpoint directory '%s': %s", dir,
			 strerror(errno));
		goto fail;
	}
	s->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dfd < 0) {
		rc = -errno;
		if (rc == -ENOTDIR)
			say(err, errlen, rc, "checkpoint directory '%s' is not a directory", dir);
		else
			say(err, errlen, rc, "cannot open checkpoint directory '%s': %s", dir,
			    strerror(-rc));
		goto fail;
	}
	if (s->io == NULL) {
		rc = sli_io_create_for(NULL, kind, "checkpoint", &s->io);
		if (rc < 0) {
			say(err, errlen, rc, "cannot set up checkpoint I/O for '%s': %s", dir,
			    strerror(-rc));
			goto fail;
		}
		s->own_io = true;
	}
	if (created && (rc = sync_parent(s->io, dir)) < 0) {
		say(err, errlen, rc, "cannot fsync the directory holding '%s': %s", dir,
		    strerror(-rc));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	store_close(s);
	return rc;
}

static int store_open_named(const char *dir, const char *io, struct sli_ckpt_store **out, char *err,
			    size_t errlen)
{
	enum sli_ckpt_fault fk;
	enum sli_io_kind kind;
	struct sli_io *inner, *f;
	uint64_t n;
	int rc;

	if (io != NULL && sli_ckpt_fault_parse(io, &fk, &n) == 0) {
		rc = sli_io_create_for(NULL, SLI_IO_AUTO, "checkpoint", &inner);
		if (rc < 0)
			return say(err, errlen, rc, "cannot set up checkpoint I/O for '%s': %s",
				   dir, strerror(-rc));
		rc = sli_io_fault_create(NULL, inner, &f);
		if (rc < 0) {
			sli_io_destroy(inner);
			return say(err, errlen, rc, "cannot set up checkpoint I/O for '%s': %s",
				   dir, strerror(-rc));
		}
		if (fk == SLI_CKPT_FAULT_EIO || fk == SLI_CKPT_FAULT_ENOSPC)
			sli_io_fault_set(f, fk == SLI_CKPT_FAULT_EIO ? EIO : ENOSPC, n, 0, 0);
		else if (fk == SLI_CKPT_FAULT_FSYNC)
			sli_io_fault_fsync(f, EIO, n);
		else
			sli_io_fault_short(f, (uint32_t)n, UINT32_MAX);
		sl_log(SL_LOG_WARN, "checkpoint", "test I/O engine '%s' for '%s'", io, dir);
		rc = store_open(dir, f, SLI_IO_AUTO, out, err, errlen);
		if (rc < 0) {
			sli_io_destroy(f);
			sli_io_destroy(inner);
			return rc;
		}
		(*out)->own_io = true;
		(*out)->inner = inner;
		return 0;
	}
	if (parse_io(io, &kind) < 0)
		return say(err, errlen, -EINVAL,
			   "unknown checkpoint I/O engine '%s' (auto, io_uring or posix)", io);
	return store_open(dir, NULL, kind, out, err, errlen);
}

int sli_ckpt_store_open_with_io(const char *dir, struct sli_io *io, struct sli_ckpt_store **out,
				char *err, size_t errlen)
{
	if (io == NULL)
		return say(err, errlen, -EINVAL, "no I/O engine given");
	return store_open(dir, io, SLI_IO_AUTO, out, err, errlen);
}

const char *sli_ckpt_store_engine(const struct sli_ckpt_store *s)
{
	return s->io->name;
}

void sli_ckpt_store_set_direct(struct sli_ckpt_store *s, uint64_t min_bytes, uint32_t align)
{
	s->direct_min = min_bytes;
	s->direct_align = align;
}

struct sli_ckpt_direct_counts sli_ckpt_store_direct_counts(const struct sli_ckpt_store *s)
{
	return s->dc;
}

/* ---------------------------------------------------- begin and finish */

static bool dir_empty(int dfd)
{
	int fd = openat(dfd, ".",
			O_RDONLY | O_DIRECTORY |
			    O_CLOEXEC); /* not dup(): that would share the read offset */
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *e;
	bool empty = true;

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	while (empty && (e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = false;
	closedir(d);
	return empty;
}

/* Create or take over the savepoint directory @c->path. */
static int begin_savepoint(struct sli_ckpt_out *c, char *err, size_t errlen)
{
	int rc;

	if (mkdir(c->path, 0755) < 0) {
		if (errno != EEXIST)
			return say(err, errlen, -errno,
				   "cannot create savepoint directory '%s': %s", c->path,
				   strerror(errno));
		c->existed = true;
	}
	c->dfd = open(c->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dfd < 0) {
		rc = -errno;
		if (rc == -ENOTDIR)
			return say(err, errlen, rc, "savepoint directory '%s' is not a directory",
				   c->path);
		return say(err, errlen, rc, "cannot open savepoint directory '%s': %s", c->path,
			   strerror(-rc));
	}
	if (c->existed && !dir_empty(c->dfd))
		return say(err, errlen, -EEXIST,
			   "savepoint directory '%s' already exists and is not empty", c->path);
	if (!c->existed && (rc = sync_parent(c->s->io, c->path)) < 0)
		return say(err, errlen, rc, "cannot fsync the directory holding '%s': %s", c->path,
			   strerror(-rc));
	return 0;
}

static int begin_checkpoint(struct sli_ckpt_out *c, int64_t id, char *err, size_t errlen)
{
	struct sli_ckpt_store *s = c->s;
	char name[32];
	int rc;

	snprintf(name, sizeof(name), "chk-%" PRId64, id);
	if (mkdirat(s->dfd, name, 0755) < 0) {
		rc = -errno;
		if (rc == -EEXIST)
			return say(err, errlen, rc, "checkpoint directory '%s' already exists",
				   c->path);
		return say(err, errlen, rc, "cannot create checkpoint directory '%s': %s", c->path,
			   strerror(-rc));
	}
	c->dfd = openat(s->dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dfd < 0) {
		rc = -errno;
		unlinkat(s->dfd, name, AT_REMOVEDIR);
		return say(err, errlen, rc, "cannot open checkpoint directory '%s': %s", c->path,
			   strerror(-rc));
	}
	if ((rc = sync_fd(s->io, s->dfd)) < 0) {
		unlinkat(s->dfd, name, AT_REMOVEDIR);
		return say(err, errlen, rc, "cannot fsync checkpoint directory '%s': %s", s->dir,
			   strerror(-rc));
	}
	return 0;
}

static void out_free(struct sli_ckpt_out *c)
{
	while (c->files != NULL) {
		struct name *n = c->files;

		c->files = n->next;
		sl_alloc_free(NULL, n);
	}
	if (c->dfd >= 0)
		close(c->dfd);
	sl_alloc_free(NULL, c->path);
	sl_alloc_free(NULL, c);
}

static int ck_begin(struct sli_ckpt_store *s, int64_t id, const char *savepoint_dir,
		    struct sli_ckpt_out **out, char *err, size_t errlen)
{
	struct sli_ckpt_out *c;
	char name[32];
	int rc;

	if (s == NULL || out == NULL || id < 0)
		return say(err, errlen, -EINVAL, "invalid checkpoint (id %" PRId64 ")", id);
	if (savepoint_dir != NULL && savepoint_dir[0] == '\0')
		return say(err, errlen, -EINVAL, "empty savepoint directory name");
	c = sl_alloc_aligned(NULL, sizeof(*c), 16);
	if (c == NULL)
		return say(err, errlen, -ENOMEM, "out of memory starting checkpoint %" PRId64, id);
	*c = (struct sli_ckpt_out){ .s = s, .dfd = -1, .savepoint = savepoint_dir != NULL };
	snprintf(name, sizeof(name), "chk-%" PRId64, id);
	c->path = c->savepoint ? sdup(savepoint_dir) : join(s->dir, name);
	if (c->path == NULL) {
		out_free(c);
		return say(err, errlen, -ENOMEM, "out of memory starting checkpoint %" PRId64, id);
	}
	rc = c->savepoint ? begin_savepoint(c, err, errlen) : begin_checkpoint(c, id, err, errlen);
	if (rc < 0) {
		out_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* Remember that the store created @name in @c (finish() deletes it). */
static int remember(struct sli_ckpt_out *c, const char *name)
{
	size_t n = strlen(name) + 1;
	struct name *e = sl_alloc_aligned(NULL, sizeof(*e) + n, 8);

	if (e == NULL)
		return -ENOMEM;
	memcpy(e->s, name, n);
	e->next = c->files;
	c->files = e;
	return 0;
}

static void ck_finish(struct sli_ckpt_out *c, bool completed)
{
	if (c == NULL)
		return;
	if (!completed || !c->completed) {
		/* _metadata first: from here on, list() no longer sees it. */
		unlinkat(c->dfd, SLI_CKPT_METADATA, 0);
		unlinkat(c->dfd, METADATA_TMP, 0);
		for (struct name *n = c->files; n != NULL; n = n->next)
			unlinkat(c->dfd, n->s, 0);
		if (!c->existed && rmdir(c->path) == 0)
			sync_parent(c->s->io, c->path);
		else
			sync_fd(c->s->io, c->dfd);
	}
	out_free(c);
}

/* --------------------------------------------------------------- write */

/*
 * One file being written. Its bytes are the header, the payload and the
 * trailer; @pos of them are written (a short write leaves a gap-free
 * prefix), and what is left goes out as pieces of at most CHUNK bytes.
 */
struct wfile {
	const char *name;
	const char *payload;
	uint64_t len, pos; /* payload length; bytes of the file written */
	int fd, err;	   /* err: -errno of the failed write or fsync */
	/*
	 * O_DIRECT: file offsets [dlo, dhi) go through @dfd (dhi 0: none),
	 * in pieces that start where offset and memory are aligned: at dlo
	 * plus a multiple of @step (the larger of the two alignments, both
	 * powers of two), so after a short write the store writes buffered up
	 * to the next such offset. Lengths are multiples of the offset
	 * alignment as dhi - dlo is.
	 */
	int dfd;
	uint64_t dlo, dhi, step;
	unsigned nq;	 /* requests queued this round */
	bool done, sync; /* sync: the failure was the fsync */
	uint8_t head[SLI_CKPT_HEADER], tail[SLI_CKPT_TRAILER];
};

static void wfile_init(struct wfile *f, const char *name, const void *buf, size_t len)
{
	*f = (struct wfile){ .name = name, .payload = buf, .len = len, .fd = -1, .dfd = -1 };
	memcpy(f->head, SLI_CKPT_MAGIC, 8);
	put_le64(f->head + 8, len);
	put_le32(f->tail, sli_crc32c(0, buf, len));
	put_le32(f->tail + 4, sli_crc32c(0, f->head, SLI_CKPT_HEADER));
}

/*
 * Choose @f's direct range (see struct wfile) and open its O_DIRECT
 * descriptor, or leave it buffered: direct I/O off, too few aligned
 * bytes, a file system without it (statx() says so, or open() refuses
 * O_DIRECT with EINVAL), or the name no longer being the file just
 * created.
 */
static void wfile_direct(struct sli_ckpt_out *c, struct wfile *f)
{
	struct sli_ckpt_store *s = c->s;
	uint64_t moff = DIRECT_ALIGN, mmem = DIRECT_ALIGN, end = SLI_CKPT_HEADER + f->len, lo;
	struct stat a, b;
	struct statx sx;

	if (s->direct_min == 0 || f->len < s->direct_min)
		return;
	if (s->direct_align != 0) {
		moff = mmem = s->direct_align;
	} else if (statx(f->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
		   (sx.stx_mask & STATX_DIOALIGN)) {
		if (sx.stx_dio_offset_align == 0)
			return; /* no direct I/O for this file */
		moff = sx.stx_dio_offset_align;
		mmem = sx.stx_dio_mem_align > 0 ? sx.stx_dio_mem_align : 1;
	}
	/* The first offset past the header aligned on disk whose payload byte is aligned in memory.
	 */
	lo = (SLI_CKPT_HEADER + moff - 1) / moff * moff;
	for (uint64_t tries = mmem / moff + 1;
	     tries > 0 && (uintptr_t)(f->payload + lo - SLI_CKPT_HEADER) % mmem != 0; tries--)
		lo += moff;
	if ((uintptr_t)(f->payload + lo - SLI_CKPT_HEADER) % mmem != 0 || lo > end ||
	    (end - lo) / moff * moff < s->direct_min)
		return;
	f->dfd = openat(c->dfd, f->name, O_WRONLY | O_DIRECT | O_CLOEXEC);
	if (f->dfd < 0) {
		if (errno == EINVAL)
			s->dc.fallbacks++;
		return;
	}
	if (fstat(f->fd, &a) < 0 || fstat(f->dfd, &b) < 0 || a.st_ino != b.st_ino ||
	    a.st_dev != b.st_dev) {
		close(f->dfd);
		f->dfd = -1;
		return;
	}
	f->dlo = lo;
	f->dhi = lo + (end - lo) / moff * moff;
	f->step = moff > mmem ? moff : mmem;
}

/* The payload piece of @f at file offset @at: its length, and *@fd the descriptor to use. */
static uint64_t piece(const struct wfile *f, uint64_t at, int *fd)
{
	uint64_t k = SLI_CKPT_HEADER + f->len - at, next;

	if (at < f->dhi) {
		if (at < f->dlo) {
			k = f->dlo - at;
		} else if ((at - f->dlo) % f->step != 0) {
			/* Buffered up to the next aligned offset (after a short write). */
			next = f->dlo + (at - f->dlo + f->step - 1) / f->step * f->step;
			k = (next < f->dhi ? next : f->dhi) - at;
		} else {
			k = f->dhi - at;
			*fd = f->dfd;
		}
	}
	return k < CHUNK ? k : CHUNK;
}

/* Queue what is left of @f (writes, then its fsync) as one chain into @r. */
static unsigned wfile_queue(struct wfile *f, struct sli_io_req *r)
{
	uint64_t end = SLI_CKPT_HEADER + f->len + SLI_CKPT_TRAILER, at = f->pos;
	unsigned n = 0;

	while (at < end) {
		const char *p;
		uint64_t k;
		int fd = f->fd;

		if (at < SLI_CKPT_HEADER) {
			p = (const char *)f->head + at;
			k = SLI_CKPT_HEADER - at;
		} else if (at < SLI_CKPT_HEADER + f->len) {
			p = f->payload + (at - SLI_CKPT_HEADER);
			k = piece(f, at, &fd);
		} else {
			p = (const char *)f->tail + (at - SLI_CKPT_HEADER - f->len);
			k = end - at;
		}
		r[n++] = (struct sli_io_req){ .buf = (void *)(uintptr_t)p,
					      .off = at,
					      .len = (uint32_t)k,
					      .fd = fd,
					      .op = SLI_IO_WRITE,
					      .flags = SLI_IO_LINK };
		at += k;
	}
	r[n++] = (struct sli_io_req){ .fd = f->fd, .op = SLI_IO_FSYNC };
	f->nq = n;
	return n;
}

/* The results of @f's chain @r: done, failed, or more to write (short). */
static void wfile_settle(struct sli_ckpt_store *s, struct wfile *f, const struct sli_io_req *r)
{
	unsigned k = 0;

	for (; k + 1 < f->nq; k++) {
		int res = r[k].res;
		bool direct = f->dfd >= 0 && r[k].fd == f->dfd;

		if (direct && res == -EINVAL) {
			/* Refused: the rest of this file goes buffered, from where it stopped. */
			if (s->dc.fallbacks++ == 0)
				sl_log(SL_LOG_WARN, "checkpoint",
				       "O_DIRECT write refused for '%s': writing checkpoint files "
				       "through the page cache",
				       f->name);
			f->dhi = 0;
			return;
		}
		if (direct && res > 0 && s->dc.bytes == 0)
			sl_log(
			    SL_LOG_INFO, "checkpoint",
			    "writing checkpoint files' aligned blocks with O_DIRECT ('%s' first)",
			    f->name);
		if (direct && res > 0)
			s->dc.bytes += (uint32_t)res;
		if (res < 0 || (res == 0 && r[k].len > 0)) {
			f->err = res < 0 ? res : -ENOSPC; /* no progress: as the engines say */
			return;
		}
		f->pos += (uint32_t)res;
		if ((uint32_t)res < r[k].len)
			return; /* short: its fsync was cancelled or is redone */
	}
	if (r[k].res < 0) {
		f->err = r[k].res;
		f->sync = true;
		return;
	}
	f->done = true;
}

/*
 * Write files @names[k] with payloads @iov[k] in @c, each linked to its
 * fsync, all in one batch per round; rounds continue short writes.
 * @internal: the manifest's name is allowed.
 */
static int write_files(struct sli_ckpt_out *c, const char *const *names, const struct iovec *iov,
		       unsigned n, bool internal, uint64_t *bytes, char *err, size_t errlen)
{
	struct wfile *f = NULL;
	struct sli_io_req *r = NULL;
	uint64_t total = 0;
	unsigned nreq = 0, left = n;
	int rc = 0;

	for (unsigned k = 0; k < n; k++) {
		if (!internal && !name_ok(names[k]))
			return say(err, errlen, -EINVAL,
				   "invalid checkpoint file name '%s' in '%s'",
				   names[k] != NULL ? names[k] : "(null)", c->path);
		if (iov[k].iov_len > (uint64_t)MAX_CHUNKS * CHUNK ||
		    (iov[k].iov_base == NULL && iov[k].iov_len > 0))
			return say(
			    err, errlen, iov[k].iov_base == NULL ? -EINVAL : -EFBIG,
			    "checkpoint file '%s/%s': payload of %zu bytes is invalid or too "
			    "large",
			    c->path, names[k], iov[k].iov_len);
		/* header, up to 3 more pieces around the direct range, trailer, fsync */
		nreq += 6 + (unsigned)((iov[k].iov_len + CHUNK - 1) / CHUNK);
	}
	f = sl_alloc_aligned(NULL, n * sizeof(*f), 16);
	r = sl_alloc_aligned(NULL, nreq * sizeof(*r), 16);
	if (f == NULL || r == NULL) {
		rc = say(err, errlen, -ENOMEM, "out of memory writing checkpoint '%s'", c->path);
		goto out;
	}
	for (unsigned k = 0; k < n; k++) {
		wfile_init(&f[k], names[k], iov[k].iov_base, iov[k].iov_len);
		total += SLI_CKPT_HEADER + iov[k].iov_len + SLI_CKPT_TRAILER;
	}
	for (unsigned k = 0; k < n; k++) {
		f[k].fd = openat(c->dfd, names[k], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (f[k].fd < 0) {
			rc = say(err, errlen, -errno, "cannot create checkpoint file '%s/%s': %s",
				 c->path, names[k], strerror(errno));
			goto out;
		}
		if (remember(c, names[k]) < 0) {
			unlinkat(c->dfd, names[k], 0);
			rc = say(err, errlen, -ENOMEM, "out of memory writing checkpoint '%s'",
				 c->path);
			goto out;
		}
		wfile_direct(c, &f[k]);
	}
	while (left > 0) {
		unsigned nr = 0;

		for (unsigned k = 0; k < n; k++)
			if (!f[k].done)
				nr += wfile_queue(&f[k], r + nr);
		sli_io_run(c->s->io, r, nr); /* each file's results are read below */
		nr = 0;
		for (unsigned k = 0; k < n; k++) {
			if (f[k].done)
				continue;
			wfile_settle(c->s, &f[k], r + nr);
			nr += f[k].nq;
			left -= f[k].done;
			if (f[k].err < 0 && rc == 0)
				rc = say(err, errlen, f[k].err,
					 "cannot %s checkpoint file '%s/%s': %s",
					 f[k].sync ? "fsync" : "write", c->path, f[k].name,
					 strerror(-f[k].err));
		}
		if (rc < 0)
			goto out;
	}
	if (bytes != NULL)
		*bytes = total;
out:
	for (unsigned k = 0; f != NULL && k < n; k++) {
		if (f[k].fd >= 0)
			close(f[k].fd);
		if (f[k].dfd >= 0)
			close(f[k].dfd);
	}
	sl_alloc_free(NULL, r);
	sl_alloc_free(NULL, f);
	return rc;
}

static int ck_write(struct sli_ckpt_out *c, const char *const *names, const struct iovec *iov,
		    unsigned n, uint64_t *bytes, char *err, size_t errlen)
{
	if (c == NULL || (n > 0 && (names == NULL || iov == NULL)))
		return say(err, errlen, -EINVAL, "invalid checkpoint write");
	if (c->completed)
		return say(err, errlen, -EINVAL, "checkpoint '%s' is already complete", c->path);
	if (bytes != NULL)
		*bytes = 0;
	return n == 0 ? 0 : write_files(c, names, iov, n, false, bytes, err, errlen);
}

static int ck_complete(struct sli_ckpt_out *c, const void *manifest, size_t len, char *err,
		       size_t errlen)
{
	const char *tmp = METADATA_TMP;
	struct iovec v = { .iov_base = (void *)(uintptr_t)manifest, .iov_len = len };
	int rc;

	if (c == NULL || (manifest == NULL && len > 0))
		return say(err, errlen, -EINVAL, "invalid checkpoint manifest");
	if (c->completed)
		return say(err, errlen, -EINVAL, "checkpoint '%s' is already complete", c->path);
	rc = write_files(c, &tmp, &v, 1, true, NULL, err, errlen);
	if (rc < 0) {
		unlinkat(c->dfd, METADATA_TMP, 0);
		return rc;
	}
	if (renameat(c->dfd, METADATA_TMP, c->dfd, SLI_CKPT_METADATA) < 0) {
		rc = -errno;
		unlinkat(c->dfd, METADATA_TMP, 0);
		return say(err, errlen, rc, "cannot rename '%s/%s' to '%s': %s", c->path,
			   METADATA_TMP, SLI_CKPT_METADATA, strerror(-rc));
	}
	if ((rc = sync_fd(c->s->io, c->dfd)) < 0) {
		/* Not durable, so not complete: take the manifest back. */
		unlinkat(c->dfd, SLI_CKPT_METADATA, 0);
		return say(err, errlen, rc, "cannot fsync checkpoint directory '%s': %s", c->path,
			   strerror(-rc));
	}
	c->completed = true;
	return 0;
}

/* --------------------------------------------------------- list, retain */

struct chk {
	int64_t id;
	bool complete;
};

static int by_id_desc(const void *a, const void *b)
{
	int64_t x = ((const struct chk *)a)->id, y = ((const struct chk *)b)->id;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* The chk-<id> directories in @dfd, newest first, into *@out (free it). */
static int scan(int dfd, const char *dir, struct chk **out, unsigned *nout, char *err,
		size_t errlen)
{
	int fd = openat(dfd, ".",
			O_RDONLY | O_DIRECTORY |
			    O_CLOEXEC); /* not dup(): that would share the read offset */
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct chk *v = NULL;
	unsigned n = 0, cap = 0;
	struct dirent *e;
	int rc = 0;

	if (d == NULL) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return say(err, errlen, rc, "cannot read checkpoint directory '%s': %s", dir,
			   strerror(-rc));
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		char meta[300];
		int64_t id;

		if (!parse_chk(e->d_name, &id) ||
		    fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (n == cap) {
			struct chk *w = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));

			if (w == NULL) {
				rc = say(err, errlen, -ENOMEM, "out of memory listing '%s'", dir);
				break;
			}
			v = w;
		}
		snprintf(meta, sizeof(meta), "%s/%s", e->d_name, SLI_CKPT_METADATA);
		v[n].id = id;
		v[n].complete =
		    fstatat(dfd, meta, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
		n++;
	}
	closedir(d);
	if (rc < 0) {
		free(v);
		return rc;
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), by_id_desc);
	*out = v;
	*nout = n;
	return 0;
}

static int ck_list(const char *dir, int64_t *ids, unsigned cap, char *err, size_t errlen)
{
	struct chk *v = NULL;
	unsigned n = 0, found = 0;
	int dfd, rc;

	if (dir == NULL || (ids == NULL && cap > 0))
		return say(err, errlen, -EINVAL, "invalid checkpoint listing");
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = -errno;
		if (rc == -ENOENT)
			return 0;
		if (rc == -ENOTDIR)
			return say(err, errlen, rc, "checkpoint directory '%s' is not a directory",
				   dir);
		return say(err, errlen, rc, "cannot open checkpoint directory '%s': %s", dir,
			   strerror(-rc));
	}
	rc = scan(dfd, dir, &v, &n, err, errlen);
	close(dfd);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < n; i++) {
		if (!v[i].complete)
			continue;
		if (found < cap)
			ids[found] = v[i].id;
		found++;
	}
	free(v);
	return (int)found;
}

/* Delete CK/chk-<id>: _metadata first, then the rest, then the directory. */
static int remove_chk(struct sli_ckpt_store *s, int64_t id, char *err, size_t errlen)
{
	char name[32];
	int fd, rc = 0;
	DIR *d;
	struct dirent *e;

	snprintf(name, sizeof(name), "chk-%" PRId64, id);
	fd = openat(s->dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return say(err, errlen, rc, "cannot open '%s/%s' to delete it: %s", s->dir, name,
			   strerror(-rc));
	}
	if (unlinkat(fd, SLI_CKPT_METADATA, 0) < 0 && errno != ENOENT)
		rc = -errno;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(fd, e->d_name, 0) < 0 && errno != ENOENT)
			rc = -errno;
	}
	closedir(d);
	if (rc == 0 && unlinkat(s->dfd, name, AT_REMOVEDIR) < 0)
		rc = -errno;
	if (rc < 0)
		return say(err, errlen, rc, "cannot delete checkpoint '%s/%s': %s", s->dir, name,
			   strerror(-rc));
	return 0;
}

static int ck_retain(struct sli_ckpt_store *s, unsigned keep, char *err, size_t errlen)
{
	struct chk *v = NULL;
	unsigned n = 0, kept = 0, removed = 0;
	int64_t newest = -1; /* newest complete */
	int rc;

	if (s == NULL || keep == 0)
		return say(err, errlen, -EINVAL, "retain needs to keep at least one checkpoint");
	if ((rc = scan(s->dfd, s->dir, &v, &n, err, errlen)) < 0)
		return rc;
	for (unsigned i = 0; i < n && rc == 0; i++) {
		bool drop;

		if (v[i].complete && newest < 0)
			newest = v[i].id;
		if (v[i].complete)
			drop = ++kept > keep;
		else
			drop = newest >= 0; /* sorted: older than the newest complete */
		if (drop) {
			rc = remove_chk(s, v[i].id, err, errlen);
			removed++;
		}
	}
	free(v);
	if (removed > 0) {
		int rs = sync_fd(s->io, s->dfd);

		if (rc == 0 && rs < 0)
			rc = say(err, errlen, rs, "cannot fsync checkpoint directory '%s': %s",
				 s->dir, strerror(-rs));
	}
	return rc;
}

/* ----------------------------------------------------------------- read */

/* @len bytes at @off of @fd into @buf: 0, -errno, or 1 at end of file. */
static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t k = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return 1;
		done += (size_t)k;
	}
	return 0;
}

/* Check the size @size of file P/N (header @h, descriptor @fd) against its header. */
static int check_size(int fd, const uint8_t *h, uint64_t size, const char *path, const char *name,
		      char *err, size_t errlen)
{
	uint64_t plen = get_le64(h + 8), want;
	uint8_t hc[4];
	bool head_ok;

	if (plen > UINT64_MAX - SLI_CKPT_HEADER - SLI_CKPT_TRAILER)
		return say(err, errlen, -EBADMSG,
			   "%s/%s: corrupt header (payload length %" PRIu64 ")", path, name, plen);
	want = plen + SLI_CKPT_HEADER + SLI_CKPT_TRAILER;
	if (size == want)
		return 0;
	/* Is the header intact (its CRC at the end of the file)? Then the length is right. */
	head_ok = size >= SLI_CKPT_HEADER + SLI_CKPT_TRAILER && read_at(fd, hc, 4, size - 4) == 0 &&
		  get_le32(hc) == sli_crc32c(0, h, SLI_CKPT_HEADER);
	if (size < want)
		return say(err, errlen, -EBADMSG,
			   "%s/%s: truncated: %" PRIu64 " of %" PRIu64 " bytes%s", path, name, size,
			   want, head_ok ? "" : " (or a corrupt header)");
	return say(err, errlen, -EBADMSG,
		   "%s/%s: trailing garbage: %" PRIu64 " bytes where the header says %" PRIu64 "%s",
		   path, name, size, want, head_ok ? "" : " (or a corrupt header)");
}

static int verify(int fd, uint64_t size, const char *path, const char *name, void **buf,
		  size_t *len, char *err, size_t errlen)
{
	uint8_t h[SLI_CKPT_HEADER], t[SLI_CKPT_TRAILER];
	uint64_t plen;
	uint32_t crc;
	void *p;
	int rc;

	if (size < SLI_CKPT_HEADER)
		return say(err, errlen, -EBADMSG,
			   "%s/%s: truncated: %" PRIu64 " of at least %u bytes", path, name, size,
			   SLI_CKPT_HEADER + SLI_CKPT_TRAILER);
	if ((rc = read_at(fd, h, sizeof(h), 0)) != 0)
		goto io;
	if (memcmp(h, SLI_CKPT_MAGIC, 8) != 0)
		return say(err, errlen, -EBADMSG, "%s/%s: not a checkpoint file (bad magic)", path,
			   name);
	if ((rc = check_size(fd, h, size, path, name, err, errlen)) < 0)
		return rc;
	plen = get_le64(h + 8);
	if ((rc = read_at(fd, t, sizeof(t), SLI_CKPT_HEADER + plen)) != 0)
		goto io;
	crc = sli_crc32c(0, h, sizeof(h));
	if (get_le32(t + 4) != crc)
		return say(err, errlen, -EBADMSG,
			   "%s/%s: checksum mismatch (header: stored 0x%08x, computed 0x%08x)",
			   path, name, get_le32(t + 4), crc);
	if (plen > SIZE_MAX - 1 || (p = malloc(plen > 0 ? (size_t)plen : 1)) == NULL)
		return say(err, errlen, -ENOMEM, "%s/%s: no memory for %" PRIu64 " bytes", path,
			   name, plen);
	if ((rc = read_at(fd, p, (size_t)plen, SLI_CKPT_HEADER)) != 0) {
		free(p);
		goto io;
	}
	crc = sli_crc32c(0, p, (size_t)plen);
	if (get_le32(t) != crc) {
		free(p);
		return say(err, errlen, -EBADMSG,
			   "%s/%s: checksum mismatch (payload: stored 0x%08x, computed 0x%08x)",
			   path, name, get_le32(t), crc);
	}
	*buf = p;
	*len = (size_t)plen;
	return 0;
io:
	if (rc > 0) /* shrank while we read it */
		return say(err, errlen, -EBADMSG, "%s/%s: truncated while being read", path, name);
	return say(err, errlen, rc, "cannot read checkpoint file '%s/%s': %s", path, name,
		   strerror(-rc));
}

static int ck_read(const char *path, const char *name, void **buf, size_t *len, char *err,
		   size_t errlen)
{
	struct stat st;
	char *file;
	int fd, rc;

	if (path == NULL || name == NULL || buf == NULL || len == NULL)
		return say(err, errlen, -EINVAL, "invalid checkpoint read");
	if ((file = join(path, name)) == NULL)
		return say(err, errlen, -ENOMEM, "out of memory reading '%s/%s'", path, name);
	fd = open(file, O_RDONLY | O_CLOEXEC);
	sl_alloc_free(NULL, file);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ENOENT)
			return say(err, errlen, rc, "checkpoint file '%s/%s' does not exist", path,
				   name);
		return say(err, errlen, rc, "cannot open checkpoint file '%s/%s': %s", path, name,
			   strerror(-rc));
	}
	if (fstat(fd, &st) < 0) {
		rc = say(err, errlen, -errno, "cannot stat checkpoint file '%s/%s': %s", path, name,
			 strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		rc = say(err, errlen, -EBADMSG, "%s/%s: not a regular file", path, name);
	} else {
		rc = verify(fd, (uint64_t)st.st_size, path, name, buf, len, err, errlen);
	}
	close(fd);
	return rc;
}

const struct sli_ckpt_storage sli_ckpt_storage_impl = {
	.open = store_open_named,
	.close = store_close,
	.begin = ck_begin,
	.write = ck_write,
	.complete = ck_complete,
	.finish = ck_finish,
	.retain = ck_retain,
	.list = ck_list,
	.read = ck_read,
};

/* ------------------------------------------------------------ attach */

int sl_job_use_checkpoint_storage(struct sl_job *job)
{
	if (job == NULL)
		return -EINVAL;
	job->ckpt.storage = &sli_ckpt_storage_impl;
	return 0;
}
