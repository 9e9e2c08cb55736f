/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conn_lines.c — the line source: files, directories, stdin. Line
 * assembly and the bad-record policy are conn_split.c's (shared with
 * net/socket.c).
 *
 * Splits: the files' bytes, concatenated in order, are cut into p equal
 * ranges [a, b). A subtask starts reading one byte before a (when a is
 * not the start of a file) and drops everything up to and including the
 * first '\n': if that byte is the '\n' ending the previous range's last
 * line, only it is dropped. It then reads lines while they start before
 * b. Both neighbours agree on where the line starting at or after b is,
 * so each line is read exactly once.
 *
 * Line numbers: lines are counted from the first line the subtask reads;
 * the newlines before it are counted (pread of the file's head) only when
 * the first bad record needs a FILE:LINE.
 *
 * Checkpoints: the position is the first byte not yet returned as a record
 * (start + sp.consumed: lines read into the buffer but not returned are
 * read again after a restore; bad records before it were already counted
 * and dead-lettered, and are not read again), with the file's index, name
 * and size and the subtask's range to detect a changed input, and the
 * line numbering (off0, lines, base) so FILE:LINE stays true. Streams
 * cannot be replayed: they refuse snapshot() and restore().
 *
 * Tests: SLUICE_TEST_HOLD_INPUT=N[:K] (hold.c) makes each subtask return
 * no data, and never its end, after N lines of its range (the bad ones
 * and blank ones count too) until K checkpoints completed, or for good;
 * the position is untouched, so a checkpoint taken meanwhile is exact.
 *
 * Threads: one struct lsrc per subtask, used by the thread polling it.
 * Subtasks share the conf (read-only), the counters (relaxed atomics)
 * and the dead-letter file (O_APPEND, one write() per record).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sluice/sl_alloc.h>
#include <sluice/sl_connectors.h>
#include <sluice/sl_error.h>
#include <sluice/sl_snap.h>

#include "sli_core.h"
#include "sli_lines.h"
#include "sli_rate.h"

#define LINES_BUF_INIT	  (1024 * 1024)
#define LINES_READS_POLL  64 /* read() calls per poll, bounding its work */
#define LINES_COUNT_CHUNK (16 * 1024)

const struct sl_type sl_line_type = SL_TYPE_STR1(struct sl_line, text);

/* --------------------------------------------------------- line parse */

int sl_lines_parse_line(const char *line, size_t len, struct sl_batch *out, void *elem, int64_t *ts,
			char *why, size_t whylen, void *arg)
{
	struct sl_line *e = elem;
	int rc;

	if (line == NULL || out == NULL || elem == NULL || ts == NULL)
		return -EINVAL;
	if (out->elem_size < sizeof(struct sl_line)) {
		if (why != NULL && whylen > 0)
			snprintf(why, whylen,
				 "sl_lines_parse_line needs struct sl_line elements, the stream's "
				 "are %" PRIu32 " bytes",
				 out->elem_size);
		return -ENOTSUP;
	}
	if (len > UINT32_MAX)
		return -E2BIG;
	*ts = 0;
	rc = sl_batch_add_str(out, line, (uint32_t)len, &e->text);
	return rc < 0 ? rc : 1;
}

/* -------------------------------------------------------- line source */

struct lfile {
	char *path;
	uint64_t size;
	uint64_t cum; /* offset of its first byte in the concatenated input */
};

struct lsrc {
	const struct sl_lines_conf *conf;
	const struct sl_subtask_info *info;
	struct lfile *files;
	size_t nfiles, fcap;
	bool stream;   /* stdin or a FIFO: unbounded, parallelism 1 */
	uint64_t a, b; /* this subtask's range of the concatenated input */
	size_t fi;     /* file being read */
	int fd;	       /* its descriptor, -1 when none is open */
	bool own_fd;
	bool ready;	/* files[fi] is open and positioned */
	bool eof;	/* no more bytes of files[fi] will be read */
	uint64_t left;	/* bytes of files[fi] still to read */
	uint64_t start; /* offset in the file where reading began */
	bool skip;	/* the first line is the previous range's: drop it */
	uint64_t off0;	/* offset in the file of the first line counted */
	uint64_t lines; /* lines consumed since off0 */
	uint64_t base;	/* newlines before off0, once base_ok */
	bool base_ok;
	bool done;
	bool polled;	  /* restore() is allowed only before the first poll() */
	uint32_t nsplits; /* files of the range holding bytes to read; a stream: 1 */
	uint32_t split;	  /* the split being read: files finished so far */
	uint32_t max;
	struct sli_lines sp;
	struct sli_bad bad;
	struct sli_rate rate;
	struct sli_hold hold; /* tests only: SLUICE_TEST_HOLD_INPUT (hold.c) */
	char why[SLI_LINES_WHY];
};

static int add_file(struct lsrc *st, const char *path, uint64_t size)
{
	struct lfile *f;

	if (st->nfiles == st->fcap) {
		size_t ncap = st->fcap ? st->fcap * 2 : 8;
		struct lfile *nf = sli_conn_zalloc(ncap * sizeof(*nf));

		if (nf == NULL)
			return -ENOMEM;
		if (st->nfiles)
			memcpy(nf, st->files, st->nfiles * sizeof(*nf));
		sli_conn_free(st->files);
		st->files = nf;
		st->fcap = ncap;
	}
	f = &st->files[st->nfiles];
	f->path = sli_conn_zalloc(strlen(path) + 1);
	if (f->path == NULL)
		return -ENOMEM;
	strcpy(f->path, path);
	f->size = size;
	st->nfiles++;
	return 0;
}

static int cmp_file(const void *x, const void *y)
{
	return strcmp(((const struct lfile *)x)->path, ((const struct lfile *)y)->path);
}

/* The regular files of directory @dir, sorted by name. */
static int list_dir(struct lsrc *st, const char *dir)
{
	const struct sl_subtask_info *info = st->info;
	size_t dlen = strlen(dir);
	const char *sep = (dlen > 0 && dir[dlen - 1] == '/') ? "" : "/";
	struct dirent *de;
	char *path = NULL;
	size_t pcap = 0;
	int rc = 0;
	DIR *d;

	d = opendir(dir);
	if (d == NULL)
		return sl_errbuf_set(info->errbuf, info->errlen, -errno, "cannot open '%s': %s",
				     dir, strerror(errno));
	while ((errno = 0, de = readdir(d)) != NULL) {
		size_t need = dlen + strlen(de->d_name) + 2;
		struct stat sb;

		if (de->d_name[0] == '.')
			continue;
		if (need > pcap) {
			sli_conn_free(path);
			pcap = need * 2;
			path = sli_conn_zalloc(pcap);
			if (path == NULL) {
				rc = -ENOMEM;
				goto out;
			}
		}
		snprintf(path, pcap, "%s%s%s", dir, sep, de->d_name);
		if (stat(path, &sb) < 0) {
			if (errno == ENOENT)
				continue; /* dangling symlink, or removed meanwhile */
			rc = sl_errbuf_set(info->errbuf, info->errlen, -errno,
					   "cannot open '%s': %s", path, strerror(errno));
			goto out;
		}
		if (!S_ISREG(sb.st_mode))
			continue;
		rc = add_file(st, path, (uint64_t)sb.st_size);
		if (rc < 0)
			goto out;
	}
	if (errno != 0)
		rc = sl_errbuf_set(info->errbuf, info->errlen, -errno,
				   "cannot read directory '%s': %s", dir, strerror(errno));
	else if (st->nfiles > 1)
		qsort(st->files, st->nfiles, sizeof(*st->files), cmp_file);
out:
	if (rc == -ENOMEM)
		sl_errbuf_set(info->errbuf, info->errlen, rc, "out of memory listing '%s'", dir);
	sli_conn_free(path);
	closedir(d);
	return rc;
}

static int need_one(const struct sl_subtask_info *info, const char *path)
{
	if (info->parallelism == 1)
		return 0;
	return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
			     "'%s' is a stream and can be read by one subtask only: set the "
			     "source's parallelism to 1 (it is %u)",
			     path, info->parallelism);
}

/* Fill st->files from conf->path; streams get one entry and an open fd. */
static int resolve(struct lsrc *st, const char *path)
{
	const struct sl_subtask_info *info = st->info;
	struct stat sb;
	int rc;

	if (strcmp(path, "-") == 0) {
		rc = need_one(info, "-");
		if (rc < 0)
			return rc;
		st->stream = true;
		st->fd = STDIN_FILENO;
		st->own_fd = false;
		return add_file(st, "<stdin>", 0);
	}
	if (stat(path, &sb) < 0)
		return sl_errbuf_set(info->errbuf, info->errlen, -errno, "cannot open '%s': %s",
				     path, strerror(errno));
	if (S_ISDIR(sb.st_mode))
		return list_dir(st, path);
	if (!S_ISREG(sb.st_mode)) {
		rc = need_one(info, path);
		if (rc < 0)
			return rc;
		st->stream = true;
	}
	rc = add_file(st, path, (uint64_t)sb.st_size);
	if (rc < 0)
		return rc;
	/* One file: check now that it opens, so a bad path fails open(). */
	st->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (st->fd < 0)
		return sl_errbuf_set(info->errbuf, info->errlen, -errno, "cannot open '%s': %s",
				     path, strerror(errno));
	st->own_fd = true;
	return 0;
}

/* floor(s * total / p) without overflow (p < 2^32). */
static uint64_t split(uint64_t total, unsigned s, unsigned p)
{
	return (uint64_t)s * (total / p) + (uint64_t)s * (total % p) / p;
}

static void close_file(struct lsrc *st)
{
	if (st->fd >= 0 && st->own_fd)
		close(st->fd);
	st->fd = -1;
	st->ready = false;
}

/*
 * Open files[fi] unless open, and read it from byte @off (0 for a stream),
 * dropping the first line when @skip; line numbers count from @off.
 */
static int seek_file(struct lsrc *st, uint64_t off, bool skip)
{
	const struct sl_subtask_info *info = st->info;
	struct lfile *f = &st->files[st->fi];

	if (st->fd < 0) {
		st->fd = open(f->path, O_RDONLY | O_CLOEXEC);
		if (st->fd < 0)
			return sl_errbuf_set(info->errbuf, info->errlen, -errno,
					     "cannot open '%s': %s", f->path, strerror(errno));
		st->own_fd = true;
	}
	if (off > 0 && lseek(st->fd, (off_t)off, SEEK_SET) < 0)
		return sl_errbuf_set(info->errbuf, info->errlen, -errno, "read error on '%s': %s",
				     f->path, strerror(errno));
	st->start = off;
	st->skip = skip;
	st->left = st->stream ? UINT64_MAX : f->size - off;
	st->eof = false;
	st->off0 = off;
	st->lines = 0;
	st->base = 0;
	st->base_ok = off == 0;
	sli_lines_reset(&st->sp);
	st->ready = true;
	return 0;
}

/* Open files[fi] (or the next one holding a line of the range); st->done if none. */
static int open_file(struct lsrc *st)
{
	for (;;) {
		if (st->fi >= st->nfiles || (!st->stream && st->files[st->fi].cum >= st->b)) {
			st->done = true;
			return 0;
		}
		if (st->stream || st->files[st->fi].size > 0)
			break;
		close_file(st); /* an empty single file opened by resolve() */
		st->fi++;
	}
	/* Begin at the byte before a, see the top of the file. */
	if (!st->stream && st->a > st->files[st->fi].cum)
		return seek_file(st, st->a - st->files[st->fi].cum - 1, true);
	return seek_file(st, 0, false);
}

/* Read once into the splitter. Return 1 when progress was made, 0 when a stream has no data. */
static int fill(struct lsrc *st)
{
	const struct sl_subtask_info *info = st->info;
	size_t len;
	ssize_t n;
	char *p;
	int rc;

	if (st->left == 0) {
		st->eof = true;
		return 1;
	}
	if (st->stream) {
		struct pollfd pfd = { .fd = st->fd, .events = POLLIN };

		if (poll(&pfd, 1, 0) == 0)
			return 0;
	}
	rc = sli_lines_space(&st->sp, &p, &len);
	if (rc < 0)
		return sl_errbuf_set(info->errbuf, info->errlen, rc, "out of memory reading '%s'",
				     st->files[st->fi].path);
	if (len > st->left)
		len = (size_t)st->left;
	do {
		n = read(st->fd, p, len);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN)
			return 0;
		return sl_errbuf_set(info->errbuf, info->errlen, -errno, "read error on '%s': %s",
				     st->files[st->fi].path, strerror(errno));
	}
	if (n == 0) {
		st->eof = true; /* end of a stream, or the file shrank */
		return 1;
	}
	sli_lines_commit(&st->sp, (size_t)n);
	if (!st->stream)
		st->left -= (uint64_t)n;
	return 1;
}

enum { NEXT_WAIT = 0, NEXT_LINE = 1, NEXT_END = 2, NEXT_SPLIT_END = 3 };

/*
 * The next line of the range: NEXT_LINE, NEXT_WAIT (no data, or read
 * budget spent), NEXT_SPLIT_END (a file is finished: its split ends),
 * NEXT_END.
 */
static int next_line(struct lsrc *st, struct sli_line *line, int *budget)
{
	int rc;

	for (;;) {
		if (!st->ready) {
			rc = open_file(st);
			if (rc < 0)
				return rc;
			if (st->done)
				return NEXT_END;
		}
		if (sli_lines_peek(&st->sp, st->eof, line)) {
			if (st->skip) {
				sli_lines_consume(&st->sp);
				st->skip = false;
				st->off0 = st->start + st->sp.consumed;
				continue;
			}
			if (!st->stream &&
			    st->files[st->fi].cum + st->start + st->sp.consumed >= st->b) {
				st->done = true;
				return NEXT_END;
			}
			return NEXT_LINE;
		}
		if (st->eof) {
			if (st->stream) {
				st->done = true;
				return NEXT_END;
			}
			close_file(st);
			st->fi++;
			return NEXT_SPLIT_END;
		}
		if (*budget == 0)
			return NEXT_WAIT;
		(*budget)--;
		rc = fill(st);
		if (rc <= 0)
			return rc;
	}
}

/* Line number (1-based, in its file) of the peeked line. */
static int line_number(struct lsrc *st, uint64_t *out)
{
	const struct sl_subtask_info *info = st->info;
	char chunk[LINES_COUNT_CHUNK];
	uint64_t off = 0, nl = 0;

	while (!st->base_ok && off < st->off0) {
		size_t want =
		    st->off0 - off < sizeof(chunk) ? (size_t)(st->off0 - off) : sizeof(chunk);
		ssize_t n = pread(st->fd, chunk, want, (off_t)off);
		const char *p = chunk, *end;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return sl_errbuf_set(info->errbuf, info->errlen, n < 0 ? -errno : -EIO,
					     "read error on '%s': %s", st->files[st->fi].path,
					     n < 0 ? strerror(errno) : "file shrank");
		end = chunk + n;
		while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
			nl++;
			p++;
		}
		off += (uint64_t)n;
	}
	if (!st->base_ok) {
		st->base = nl;
		st->base_ok = true;
	}
	*out = st->base + st->lines + 1;
	return 0;
}

static void lines_close(void *state)
{
	struct lsrc *st = state;

	if (st == NULL)
		return;
	close_file(st);
	for (size_t i = 0; i < st->nfiles; i++)
		sli_conn_free(st->files[i].path);
	sli_conn_free(st->files);
	sli_lines_fini(&st->sp);
	sli_bad_close(&st->bad);
	sli_conn_free(st);
}

static int lines_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	const struct sl_lines_conf *conf = arg;
	struct lsrc *st;
	uint64_t total = 0;
	int rc;

	if (info == NULL || state == NULL)
		return -EINVAL;
	if (conf == NULL || conf->path == NULL || conf->parse == NULL)
		return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
				     "line source: the configuration needs a path and a parse "
				     "function");
	if (!sli_rate_valid(conf->rate))
		return sl_errbuf_set(
		    info->errbuf, info->errlen, -EINVAL,
		    "line source: rate must be a finite number >= 0 (0: unlimited)");
	if (info->parallelism == 0 || info->index >= info->parallelism)
		return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
				     "line source: subtask %u of %u does not exist", info->index,
				     info->parallelism);
	st = sli_conn_zalloc(sizeof(*st));
	if (st == NULL)
		return sl_errbuf_set(info->errbuf, info->errlen, -ENOMEM,
				     "line source: out of memory");
	st->conf = conf;
	st->info = info;
	st->fd = -1;
	st->max = sli_conn_max_record(conf->max_record_size, info);
	rc = sli_bad_open(&st->bad, conf->bad_policy, conf->bad_path, info->errbuf, info->errlen);
	if (rc < 0)
		goto fail;
	rc = resolve(st, conf->path);
	if (rc < 0)
		goto fail;
	rc = sli_lines_init(&st->sp, st->max, LINES_BUF_INIT);
	if (rc < 0)
		goto fail;
	for (size_t i = 0; i < st->nfiles; i++) {
		st->files[i].cum = total;
		total += st->files[i].size;
	}
	if (st->stream) {
		st->a = 0;
		st->b = UINT64_MAX;
		st->nsplits = 1;
	} else {
		st->a = split(total, info->index, info->parallelism);
		st->b = split(total, info->index + 1, info->parallelism);
		/* The first file holding byte a. */
		while (st->fi < st->nfiles &&
		       st->files[st->fi].cum + st->files[st->fi].size <= st->a)
			st->fi++;
		if (st->a >= st->b)
			st->done = true;
		if (st->done || st->fi > 0)
			close_file(st); /* resolve() opened file 0 to check it */
		/* Splits: the files open_file() will read (it skips empty ones). */
		for (size_t i = st->fi; !st->done && i < st->nfiles && st->files[i].cum < st->b;
		     i++)
			st->nsplits += st->files[i].size > 0;
	}
	sli_rate_init(&st->rate, conf->rate, info->parallelism);
	sli_hold_init(&st->hold);
	*state = st;
	return 0;
fail:
	if (rc == -ENOMEM)
		sl_errbuf_set(info->errbuf, info->errlen, rc, "line source: out of memory");
	lines_close(st);
	return rc;
}

static int lines_poll(void *state, struct sl_batch *out)
{
	struct lsrc *st = state;
	const struct sl_subtask_info *info = st->info;
	int budget = LINES_READS_POLL;
	uint32_t n0 = out->n;
	struct sli_line line;
	uint64_t allow, lineno;
	bool split_end = false;
	int rc;

	st->polled = true;
	if (st->done)
		return SL_SOURCE_END;
	out->split = st->split;
	out->nsplits = st->nsplits;
	allow = sli_rate_allow(&st->rate, out->cap - out->n);
	while (out->n - n0 < allow) {
		/* Held: no data, and no end either (the position stays exact). */
		if (sli_hold_allow(&st->hold, 1) == 0)
			break;
		rc = next_line(st, &line, &budget);
		if (rc < 0)
			return rc;
		if (rc == NEXT_WAIT)
			break;
		if (rc == NEXT_END)
			break;
		if (rc == NEXT_SPLIT_END) {
			/* The last split ends with the input (SL_SOURCE_END). */
			if (++st->split < st->nsplits) {
				split_end = true;
				break;
			}
			continue;
		}
		rc = sli_lines_parse(&line, out, st->max, st->conf->parse, st->conf->arg, st->why);
		if (rc == SLI_LINE_FULL)
			break;
		if (rc == SLI_LINE_BAD || rc < 0) {
			int lrc = line_number(st, &lineno);

			if (lrc < 0)
				return lrc;
			if (rc < 0)
				return sl_errbuf_set(info->errbuf, info->errlen, rc,
						     "%s:%" PRIu64 ": %s", st->files[st->fi].path,
						     lineno,
						     st->why[0] ? st->why : sl_strerror(rc));
			rc = sli_bad_record(&st->bad, info, st->files[st->fi].path, lineno, st->why,
					    line.ptr, line.len, line.oversized);
			if (rc < 0)
				return rc;
		}
		sli_lines_consume(&st->sp);
		st->lines++;
		sli_hold_take(&st->hold, 1);
	}
	sli_rate_take(&st->rate, out->n - n0);
	if (split_end)
		return (int)(out->n - n0) | SL_SOURCE_SPLIT_END;
	if (st->done) {
		close_file(st);
		return (int)(out->n - n0) | SL_SOURCE_END;
	}
	return (int)(out->n - n0);
}

/* ------------------------------------------------------- checkpoints */

#define LINES_SNAP_ID 0x314e4c53u /* "SLN1": line source position, version 1 */

enum { POS_DONE = 1, POS_READY = 2, POS_SKIP = 4, POS_BASE = 8 };

/* The fixed part of a line source's position (sli_conn_snap_put()); the file's name follows. */
struct lines_pos {
	uint64_t flags;		    /* POS_* */
	uint64_t a, b;		    /* the subtask's range of the concatenated input */
	uint64_t fi;		    /* index of the file being read, in name order */
	uint64_t split;		    /* splits ended */
	uint64_t size;		    /* files[fi]'s size (0 past the last file) */
	uint64_t offset;	    /* POS_READY: first byte of files[fi] not returned */
	uint64_t off0, lines, base; /* POS_READY: line numbering, as in struct lsrc */
};
_Static_assert(sizeof(struct lines_pos) == 10 * sizeof(uint64_t), "written as is: no padding");

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

static int not_replayable(const struct lsrc *st)
{
	return sl_errbuf_set(st->info->errbuf, st->info->errlen, -ENOTSUP,
			     "input '%s' is a stream: it cannot be checkpointed", st->conf->path);
}

static int lines_snapshot(void *state, struct sl_snap_writer *w)
{
	const struct lsrc *st = state;
	struct lines_pos pos = { .a = st->a, .b = st->b, .fi = st->fi, .split = st->split };
	const char *name = NULL;
	int rc;

	if (st->stream)
		return not_replayable(st);
	if (st->done) {
		pos.flags |= POS_DONE;
	} else if (st->ready) {
		pos.flags |= POS_READY | (st->skip ? POS_SKIP : 0) | (st->base_ok ? POS_BASE : 0);
		pos.offset = st->start + st->sp.consumed;
		pos.off0 = st->off0;
		pos.lines = st->lines;
		pos.base = st->base;
	}
	if (st->fi < st->nfiles) {
		pos.size = st->files[st->fi].size;
		name = base_name(st->files[st->fi].path);
	}
	rc = sli_conn_snap_put(w, LINES_SNAP_ID, &pos, sizeof(pos), name);
	if (rc < 0)
		return sl_errbuf_set(st->info->errbuf, st->info->errlen, rc,
				     "line source: out of memory writing its position");
	return 0;
}

/* Is the input the one @pos was taken from? 0, or -EBADMSG saying what changed. */
static int same_input(const struct lsrc *st, const struct lines_pos *pos, const char *name,
		      uint32_t nlen)
{
	const struct sl_subtask_info *info = st->info;
	const struct lfile *f = pos->fi < st->nfiles ? &st->files[pos->fi] : NULL;

	if (f == NULL && (pos->fi > st->nfiles || nlen > 0))
		return sl_errbuf_set(
		    info->errbuf, info->errlen, -EBADMSG,
		    "cannot restore: the checkpoint was reading '%.*s', file %" PRIu64
		    " of the input, but '%s' now holds %zu files",
		    (int)nlen, name, pos->fi + 1, st->conf->path, st->nfiles);
	if (f != NULL &&
	    (strlen(base_name(f->path)) != nlen || memcmp(base_name(f->path), name, nlen) != 0))
		return sl_errbuf_set(info->errbuf, info->errlen, -EBADMSG,
				     "cannot restore: the checkpoint was reading '%.*s', the input "
				     "now has '%s' in its place",
				     (int)nlen, name, f->path);
	if (f != NULL && (pos->flags & POS_READY) && f->size < pos->offset)
		return sl_errbuf_set(info->errbuf, info->errlen, -EBADMSG,
				     "cannot restore: '%s' is %" PRIu64
				     " bytes, the checkpoint read it to byte %" PRIu64,
				     f->path, f->size, pos->offset);
	if (f != NULL && f->size != pos->size)
		return sl_errbuf_set(info->errbuf, info->errlen, -EBADMSG,
				     "cannot restore: '%s' is %" PRIu64 " bytes, it was %" PRIu64
				     " when the checkpoint was taken",
				     f->path, f->size, pos->size);
	if (pos->a != st->a || pos->b != st->b)
		return sl_errbuf_set(info->errbuf, info->errlen, -EBADMSG,
				     "cannot restore: subtask %u of %u now reads bytes [%" PRIu64
				     ", %" PRIu64 ") of '%s', the checkpoint's read [%" PRIu64
				     ", %" PRIu64 "): the input's size or the parallelism changed",
				     info->index, info->parallelism, st->a, st->b, st->conf->path,
				     pos->a, pos->b);
	return 0;
}

static int lines_restore(void *state, struct sl_snap_reader *r)
{
	struct lsrc *st = state;
	struct lines_pos pos;
	const void *name;
	uint32_t nlen;
	int rc;

	if (st->stream)
		return not_replayable(st);
	if (st->polled)
		return sl_errbuf_set(st->info->errbuf, st->info->errlen, -EINVAL,
				     "line source: restore() after poll()");
	rc = sli_conn_snap_get(r, LINES_SNAP_ID, &pos, sizeof(pos), &name, &nlen);
	if (rc < 0)
		return rc;
	if ((pos.flags & ~(uint64_t)(POS_DONE | POS_READY | POS_SKIP | POS_BASE)) != 0 ||
	    pos.split > st->nsplits || pos.off0 > pos.offset ||
	    ((pos.flags & POS_SKIP) && pos.lines > 0))
		return sl_snap_bad(r, "line source: position out of range");
	rc = same_input(st, &pos, name, nlen);
	if (rc < 0)
		return rc;
	close_file(st);
	st->fi = pos.fi;
	st->split = (uint32_t)pos.split;
	st->done = pos.flags & POS_DONE;
	if (st->done || !(pos.flags & POS_READY))
		return 0; /* done, or open_file() opens files[fi] at the first poll */
	if (pos.fi >= st->nfiles)
		return sl_snap_bad(r, "line source: position out of range");
	rc = seek_file(st, pos.offset, pos.flags & POS_SKIP);
	if (rc < 0)
		return rc;
	st->off0 = pos.off0;
	st->lines = pos.lines;
	st->base = pos.base;
	st->base_ok = pos.flags & POS_BASE;
	return 0;
}

const struct sl_source_ops sl_lines_ops = {
	.open = lines_open,
	.poll = lines_poll,
	.close = lines_close,
	.snapshot = lines_snapshot,
	.restore = lines_restore,
};
