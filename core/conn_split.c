/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conn_split.c — what the line sources share (core/sli_lines.h): the line
 * splitter, the parse step, the bad-record policy, the checkpoint position
 * format of the built-in sources and small helpers. Used
 * by conn_lines.c and net/socket.c.
 *
 * The splitter keeps unconsumed bytes in buf[head, tail) with one spare
 * byte after tail (so a last, unterminated line can be NUL-terminated in
 * place) and remembers in scan how far it has looked for '\n', so every
 * byte is searched once however many reads a long line takes. A line that
 * reaches max + 2 bytes without a '\n' cannot be valid (even "\r\n" strips
 * only one byte): its first max bytes move to buf[0, max) for the
 * dead-letter file and later bytes are read into the space after them and
 * dropped until the '\n' ("over" mode), so memory stays at max + 2 + 64 KiB.
 *
 * Threads: each splitter and struct sli_bad belongs to one subtask. The
 * dead-letter file is shared by subtasks through O_APPEND, one write()
 * per record.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sluice/sl_alloc.h>
#include <sluice/sl_connectors.h>
#include <sluice/sl_error.h>

#include "sli_lines.h"

/* ------------------------------------------------------------ helpers */

void *sli_conn_zalloc(size_t size)
{
	void *p = sl_alloc_aligned(NULL, size ? size : 1, 16);

	if (p != NULL)
		memset(p, 0, size);
	return p;
}

void sli_conn_free(void *p)
{
	sl_alloc_free(NULL, p);
}

uint32_t sli_conn_max_record(uint32_t conf_max, const struct sl_subtask_info *info)
{
	if (conf_max)
		return conf_max;
	if (info->max_record_size)
		return info->max_record_size;
	return SLI_LINES_DEFAULT_MAX;
}

int sli_conn_snap_put(struct sl_snap_writer *w, uint32_t id, const void *pos, size_t len,
		      const char *name)
{
	int rc = sl_snap_section(w, SL_SNAP_OP);

	if (rc == 0)
		rc = sl_snap_put_u32(w, id);
	if (rc == 0)
		rc = sl_snap_put(w, pos, len);
	if (rc == 0)
		rc = sl_snap_put_bytes(w, name ? name : "", name ? strlen(name) : 0);
	return rc;
}

int sli_conn_snap_get(struct sl_snap_reader *r, uint32_t id, void *pos, size_t len,
		      const void **name, uint32_t *namelen)
{
	uint32_t section, got;
	int rc = sl_snap_next(r, &section);

	if (rc < 0)
		return rc;
	if (rc == 0 || section != SL_SNAP_OP)
		return sl_snap_bad(r, "a source's checkpoint needs its operator section");
	rc = sl_snap_get_u32(r, &got);
	if (rc < 0)
		return rc;
	if (got != id)
		return sl_snap_bad(r, "the position was written by another source or format");
	rc = sl_snap_get(r, pos, len);
	if (rc == 0)
		rc = sl_snap_get_bytes(r, name, namelen);
	if (rc < 0)
		return rc;
	/* Bytes left unread fail here; so does a second section. */
	rc = sl_snap_next(r, &section);
	if (rc > 0)
		return sl_snap_bad(r, "a source's checkpoint has one section only");
	return rc;
}

/* write() all of @buf, retrying on EINTR and short writes. Return 0 or -errno. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ----------------------------------------------------------- splitter */

int sli_lines_init(struct sli_lines *l, uint32_t max, size_t init)
{
	memset(l, 0, sizeof(*l));
	l->max = max;
	l->cap_max = (size_t)max + 2 + SLI_LINES_SCRATCH;
	l->cap = init < l->cap_max ? init : l->cap_max;
	if (l->cap < 64)
		l->cap = 64;
	l->buf = sl_alloc_aligned(NULL, l->cap, 64);
	return l->buf != NULL ? 0 : -ENOMEM;
}

void sli_lines_fini(struct sli_lines *l)
{
	sl_alloc_free(NULL, l->buf);
	l->buf = NULL;
}

void sli_lines_reset(struct sli_lines *l)
{
	l->head = l->tail = l->scan = 0;
	l->over = l->have = false;
	l->consumed = 0;
}

/* Move buf[head, tail) to the front. */
static void compact(struct sli_lines *l)
{
	if (l->head == 0)
		return;
	memmove(l->buf, l->buf + l->head, l->tail - l->head);
	l->tail -= l->head;
	l->scan -= l->head;
	l->head = 0;
}

/* Reallocate to @cap bytes (<= cap_max), keeping buf[0, tail) after compaction. */
static int grow(struct sli_lines *l, size_t cap)
{
	char *nb;

	if (cap > l->cap_max)
		cap = l->cap_max;
	if (cap <= l->cap)
		return 0;
	nb = sl_alloc_aligned(NULL, cap, 64);
	if (nb == NULL)
		return -ENOMEM;
	compact(l);
	memcpy(nb, l->buf, l->tail);
	sl_alloc_free(NULL, l->buf);
	l->buf = nb;
	l->cap = cap;
	return 0;
}

int sli_lines_space(struct sli_lines *l, char **p, size_t *len)
{
	int rc;

	SL_ASSERT(!l->have);
	if (l->over) {
		/* The prefix stays at buf[0, max); read into the scratch after it. */
		if (l->cap - 1 - l->tail < SLI_LINES_SCRATCH / 2) {
			rc = grow(l, l->cap_max);
			if (rc < 0)
				return rc;
		}
	} else if (l->cap - 1 - l->tail < l->cap / 4) {
		compact(l);
		if (l->cap - 1 - l->tail < l->cap / 4) {
			rc = grow(l, l->cap * 2);
			if (rc < 0)
				return rc;
		}
	}
	/* A line too long for cap_max switched to over mode in peek. */
	SL_ASSERT(l->tail < l->cap - 1);
	*p = l->buf + l->tail;
	*len = l->cap - 1 - l->tail;
	return 0;
}

void sli_lines_commit(struct sli_lines *l, size_t n)
{
	SL_ASSERT(l->tail + n < l->cap);
	l->tail += n;
}

static int set_line(struct sli_lines *l, size_t start, size_t len, uint64_t raw, size_t next,
		    struct sli_line *out)
{
	l->cur.ptr = l->buf + start;
	l->cur.raw = raw;
	if (len > l->max) {
		l->cur.len = l->max;
		l->cur.oversized = true;
	} else {
		l->cur.ptr[len] = '\0'; /* the '\r', the '\n' or the spare byte at tail */
		l->cur.len = len;
		l->cur.oversized = false;
	}
	l->next_head = next;
	l->have = true;
	*out = l->cur;
	return 1;
}

/* Dropping an oversized line whose prefix is buf[0, max): look for its end. */
static int peek_over(struct sli_lines *l, bool eof, struct sli_line *out)
{
	char *nl = memchr(l->buf + l->scan, '\n', l->tail - l->scan);

	if (nl != NULL) {
		size_t end = (size_t)(nl - l->buf);

		l->cur.raw += end - l->max + 1;
		l->next_head = end + 1;
	} else {
		l->cur.raw += l->tail - l->max;
		l->tail = l->scan = l->max;
		if (!eof)
			return 0;
		l->next_head = l->tail;
	}
	l->cur.ptr = l->buf;
	l->cur.len = l->max;
	l->cur.oversized = true;
	l->have = true;
	*out = l->cur;
	return 1;
}

int sli_lines_peek(struct sli_lines *l, bool eof, struct sli_line *out)
{
	size_t k, len;
	char *nl;

	if (l->have) {
		*out = l->cur;
		return 1;
	}
	if (l->over)
		return peek_over(l, eof, out);
	nl = memchr(l->buf + l->scan, '\n', l->tail - l->scan);
	if (nl != NULL) {
		size_t end = (size_t)(nl - l->buf);

		len = end - l->head;
		if (len > 0 && l->buf[end - 1] == '\r')
			len--;
		return set_line(l, l->head, len, end - l->head + 1, end + 1, out);
	}
	l->scan = l->tail;
	k = l->tail - l->head;
	if (k >= (size_t)l->max + 2) {
		/* Longer than max even if it ends in "\r\n": keep max bytes, drop the rest. */
		memmove(l->buf, l->buf + l->head, l->max);
		l->cur.raw = k;
		l->head = 0;
		l->tail = l->scan = l->max;
		l->over = true;
		return peek_over(l, eof, out);
	}
	if (!eof || k == 0)
		return 0;
	len = k;
	if (l->buf[l->tail - 1] == '\r')
		len--;
	return set_line(l, l->head, len, k, l->tail, out);
}

void sli_lines_consume(struct sli_lines *l)
{
	SL_ASSERT(l->have);
	l->consumed += l->cur.raw;
	l->head = l->scan = l->next_head;
	l->have = false;
	l->over = false;
	if (l->head == l->tail)
		l->head = l->tail = l->scan = 0;
}

int sli_lines_parse(const struct sli_line *line, struct sl_batch *out, uint32_t max,
		    sl_line_parse_fn parse, void *arg, char *why)
{
	uint32_t mark = out->arena_used;
	int64_t ts = 0;
	void *elem;
	int rc;

	why[0] = '\0';
	if (line->oversized) {
		snprintf(why, SLI_LINES_WHY, "record longer than %" PRIu32 " bytes", max);
		return SLI_LINE_BAD;
	}
	if (line->len == 0)
		return SLI_LINE_SKIP;
	SL_ASSERT(out->n < out->cap);
	elem = sl_batch_elem(out, out->n);
	memset(elem, 0, out->elem_size);
	rc = parse(line->ptr, line->len, out, elem, &ts, why, SLI_LINES_WHY, arg);
	why[SLI_LINES_WHY - 1] = '\0';
	if (rc > 0) {
		out->ts[out->n++] = ts;
		return SLI_LINE_EMIT;
	}
	out->arena_used = mark;
	if (rc == 0)
		return SLI_LINE_SKIP;
	if (rc == -EINVAL) {
		if (why[0] == '\0')
			snprintf(why, SLI_LINES_WHY, "bad record");
		return SLI_LINE_BAD;
	}
	if (rc == -E2BIG) {
		if (out->n > 0)
			return SLI_LINE_FULL;
		snprintf(why, SLI_LINES_WHY, "record larger than %" PRIu32 " bytes",
			 out->arena_max);
		return SLI_LINE_BAD;
	}
	return rc;
}

/* ------------------------------------------------------- bad records */

int sli_bad_open(struct sli_bad *b, enum sl_bad_policy policy, const char *path, char *errbuf,
		 size_t errlen)
{
	memset(b, 0, sizeof(*b));
	b->fd = -1;
	b->policy = policy;
	b->path = path;
	switch (policy) {
	case SL_BAD_FAIL:
	case SL_BAD_SKIP:
		return 0;
	case SL_BAD_FILE:
		break;
	default:
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "bad-record policy %d is not one of SL_BAD_FAIL, SL_BAD_SKIP, "
				     "SL_BAD_FILE",
				     (int)policy);
	}
	if (path == NULL || path[0] == '\0')
		return sl_errbuf_set(
		    errbuf, errlen, -EINVAL,
		    "bad-record policy SL_BAD_FILE needs a dead-letter file (bad_path)");
	b->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (b->fd < 0)
		return sl_errbuf_set(errbuf, errlen, -errno,
				     "cannot open dead-letter file '%s': %s", path,
				     strerror(errno));
	return 0;
}

int sli_bad_record(struct sli_bad *b, const struct sl_subtask_info *info, const char *src,
		   uint64_t lineno, const char *reason, const char *raw, size_t rawlen,
		   bool truncated)
{
	static const char cut[] = " [truncated]";
	size_t need, n;
	int rc;

	if (b->policy == SL_BAD_FAIL)
		return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL, "%s:%" PRIu64 ": %s", src,
				     lineno, reason);
	if (info->counters != NULL)
		atomic_fetch_add_explicit(&info->counters->bad_records, 1, memory_order_relaxed);
	if (b->policy != SL_BAD_FILE)
		return 0;

	need = strlen(src) + strlen(reason) + 32 + rawlen + sizeof(cut) + 1;
	if (need > b->cap) {
		sli_conn_free(b->buf);
		b->cap = 0;
		b->buf = sl_alloc_aligned(NULL, need, 16);
		if (b->buf == NULL)
			return sl_errbuf_set(info->errbuf, info->errlen, -ENOMEM,
					     "out of memory for a dead-letter record");
		b->cap = need;
	}
	n = (size_t)snprintf(b->buf, b->cap, "%s:%" PRIu64 ": %s: ", src, lineno, reason);
	memcpy(b->buf + n, raw, rawlen);
	n += rawlen;
	if (truncated) {
		memcpy(b->buf + n, cut, sizeof(cut) - 1);
		n += sizeof(cut) - 1;
	}
	b->buf[n++] = '\n';
	/* One write(): O_APPEND places the whole record atomically on local filesystems. */
	rc = write_all(b->fd, b->buf, n);
	if (rc < 0)
		return sl_errbuf_set(info->errbuf, info->errlen, rc,
				     "cannot write dead-letter file '%s': %s", b->path,
				     sl_strerror(rc));
	return 0;
}

void sli_bad_close(struct sli_bad *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	sli_conn_free(b->buf);
	b->buf = NULL;
}
