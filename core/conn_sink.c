/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conn_sink.c — the text sink (one formatted line per element, to a file
 * per subtask, one merged file, or stdout) and the null sink.
 *
 * Text sink: a batch is formatted into a per-subtask buffer and written
 * with one write(2) (several, at whole-line boundaries, past 1 MiB) before
 * write() returns, so nothing is buffered between batches and a failed
 * disk is reported by the batch that hit it. Merged mode relies on
 * O_APPEND: each write lands whole at the end of the file on local
 * filesystems, so lines of different subtasks never tear. The file is
 * truncated once per run by sl_text_sink_prepare(), before any subtask
 * opens: truncating in open() would race with subtasks already writing.
 *
 * Line formatting (sli_sink.h) is shared with the part-file sink
 * (conn_part.c): sli_linefmt_batch() formats into a buffer grown for long
 * lines and hands out chunks of whole lines; sli_write_all() writes one.
 *
 * Null sink: per-subtask counts folded into the shared totals once per
 * batch (relaxed atomics: they are statistics, read after the run or by a
 * status line, and order nothing else).
 *
 * Threads: one state per subtask; shared are the conf (read-only after
 * prepare), stdout (serialized by stdout_lock) and the null sink's totals.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sluice/sl_connectors.h>
#include <sluice/sl_error.h>

#include "sli_lines.h"
#include "sli_sink.h"

#define TSINK_BUF_INIT (64 * 1024)

/* Whole batches from different subtasks do not interleave on stdout. */
static pthread_mutex_t stdout_lock = PTHREAD_MUTEX_INITIALIZER;

int sl_line_format(const void *elem, int64_t ts, const struct sl_batch *b, char *buf, size_t len,
		   void *arg)
{
	const struct sl_line *e = elem;

	return snprintf(buf, len, "%.*s", (int)e->text.len, sl_batch_str(b, e->text));
}

/* ------------------------------------------------------ line formatting */

int sli_linefmt_init(struct sli_linefmt *f, sl_format_fn format, void *arg,
		     const struct sl_subtask_info *info, const char *kind, const char *name)
{
	memset(f, 0, sizeof(*f));
	f->format = format;
	f->arg = arg;
	f->info = info;
	f->kind = kind;
	f->name = name;
	f->cap = TSINK_BUF_INIT;
	f->buf = sl_alloc_aligned(NULL, f->cap, 64);
	if (f->buf == NULL)
		return sl_errbuf_set(info->errbuf, info->errlen, -ENOMEM, "%s: out of memory",
				     kind);
	return 0;
}

void sli_linefmt_fini(struct sli_linefmt *f)
{
	sli_conn_free(f->buf);
	f->buf = NULL;
	f->cap = 0;
}

int sli_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };

				poll(&pfd, 1, -1);
				continue;
			}
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Make room for at least @need bytes in the buffer, keeping buf[0, len). */
static int reserve(struct sli_linefmt *f, size_t len, size_t need)
{
	size_t cap = f->cap;
	char *nb;

	if (need <= cap)
		return 0;
	while (cap < need)
		cap *= 2;
	nb = sl_alloc_aligned(NULL, cap, 64);
	if (nb == NULL)
		return sl_errbuf_set(f->info->errbuf, f->info->errlen, -ENOMEM,
				     "%s '%s': out of memory for a %zu-byte line", f->kind, f->name,
				     need - len);
	memcpy(nb, f->buf, len);
	sli_conn_free(f->buf);
	f->buf = nb;
	f->cap = cap;
	return 0;
}

int sli_linefmt_batch(struct sli_linefmt *f, const struct sl_batch *b, size_t chunk,
		      sli_lines_out_fn out, void *ctx)
{
	size_t len = 0;
	int rc;

	for (uint32_t i = 0; i < b->n; i++) {
		const void *elem = sl_batch_elem(b, i);

		for (;;) {
			size_t room = f->cap - len;
			int need;

			if (room < 2) {
				rc = reserve(f, len, len + 2);
				if (rc < 0)
					return rc;
				continue;
			}
			need = f->format(elem, b->ts[i], b, f->buf + len, room, f->arg);
			if (need < 0)
				return sl_errbuf_set(f->info->errbuf, f->info->errlen, need,
						     "%s '%s': format failed: %s", f->kind, f->name,
						     sl_strerror(need));
			if ((size_t)need < room) {
				len += (size_t)need;
				f->buf[len++] = '\n'; /* over the NUL */
				break;
			}
			rc = reserve(f, len, len + (size_t)need + 1);
			if (rc < 0)
				return rc;
		}
		if (len >= chunk) {
			rc = out(ctx, f->buf, len);
			if (rc < 0)
				return rc;
			len = 0;
		}
	}
	return len > 0 ? out(ctx, f->buf, len) : 0;
}

/* ------------------------------------------------------------- text */

struct tsink {
	const struct sl_text_sink_conf *conf;
	const struct sl_subtask_info *info;
	int fd;
	bool is_stdout;
	char *path; /* as opened, for messages */
	struct sli_linefmt fmt;
};

int sl_text_sink_prepare(struct sl_text_sink_conf *conf, char *errbuf, size_t errlen)
{
	int fd;

	if (conf == NULL || conf->path == NULL)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "text sink: the configuration needs a path");
	if (conf->mode != SL_TEXT_MERGED || strcmp(conf->path, "-") == 0)
		return 0;
	fd = open(conf->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return sl_errbuf_set(errbuf, errlen, -errno, "cannot open '%s': %s", conf->path,
				     strerror(errno));
	if (close(fd) < 0)
		return sl_errbuf_set(errbuf, errlen, -errno, "cannot open '%s': %s", conf->path,
				     strerror(errno));
	conf->prepared = 1;
	return 0;
}

static void tsink_close(void *state)
{
	struct tsink *t = state;

	if (t == NULL)
		return;
	if (t->fd >= 0 && !t->is_stdout)
		close(t->fd);
	sli_linefmt_fini(&t->fmt);
	sli_conn_free(t->path);
	sli_conn_free(t);
}

static int tsink_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	const struct sl_text_sink_conf *conf = arg;
	const char *err = "text sink: out of memory";
	struct tsink *t;
	size_t plen;
	int flags;

	if (info == NULL || state == NULL)
		return -EINVAL;
	if (conf == NULL || conf->path == NULL || conf->format == NULL)
		return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
				     "text sink: the configuration needs a path and a format "
				     "function");
	if (conf->mode != SL_TEXT_PER_SUBTASK && conf->mode != SL_TEXT_MERGED)
		return sl_errbuf_set(
		    info->errbuf, info->errlen, -EINVAL,
		    "text sink: mode %d is not SL_TEXT_PER_SUBTASK or SL_TEXT_MERGED",
		    (int)conf->mode);
	t = sli_conn_zalloc(sizeof(*t));
	if (t == NULL)
		return sl_errbuf_set(info->errbuf, info->errlen, -ENOMEM, "%s", err);
	t->conf = conf;
	t->info = info;
	t->fd = -1;
	plen = strlen(conf->path) + 16;
	t->path = sli_conn_zalloc(plen);
	if (t->path == NULL ||
	    sli_linefmt_init(&t->fmt, conf->format, conf->arg, info, "text sink", t->path) < 0) {
		tsink_close(t);
		return sl_errbuf_set(info->errbuf, info->errlen, -ENOMEM, "%s", err);
	}
	if (strcmp(conf->path, "-") == 0) {
		snprintf(t->path, plen, "<stdout>");
		t->fd = STDOUT_FILENO;
		t->is_stdout = true;
		*state = t;
		return 0;
	}
	if (conf->mode == SL_TEXT_MERGED) {
		if (!conf->prepared) {
			tsink_close(t);
			return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
					     "text sink '%s': merged mode needs "
					     "sl_text_sink_prepare() before the job runs",
					     conf->path);
		}
		snprintf(t->path, plen, "%s", conf->path);
		flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;
	} else {
		if (info->parallelism > 1)
			snprintf(t->path, plen, "%s-%u", conf->path, info->index);
		else
			snprintf(t->path, plen, "%s", conf->path);
		flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
	}
	t->fd = open(t->path, flags, 0644);
	if (t->fd < 0) {
		int rc = sl_errbuf_set(info->errbuf, info->errlen, -errno, "cannot open '%s': %s",
				       t->path, strerror(errno));

		tsink_close(t);
		return rc;
	}
	*state = t;
	return 0;
}

/* An sli_lines_out_fn: write the lines whole (stdout under its lock). */
static int tsink_out(void *ctx, const char *p, size_t len)
{
	struct tsink *t = ctx;
	int rc;

	if (t->is_stdout)
		pthread_mutex_lock(&stdout_lock);
	rc = sli_write_all(t->fd, p, len);
	if (t->is_stdout)
		pthread_mutex_unlock(&stdout_lock);
	if (rc < 0)
		return sl_errbuf_set(t->info->errbuf, t->info->errlen, rc,
				     "write error on '%s': %s", t->path, sl_strerror(rc));
	return 0;
}

static int tsink_write(void *state, const struct sl_batch *b)
{
	struct tsink *t = state;

	return sli_linefmt_batch(&t->fmt, b, SLI_LINEFMT_CHUNK, tsink_out, t);
}

static int tsink_finish(void *state)
{
	struct tsink *t = state;
	int fd = t->fd;

	if (t->is_stdout || fd < 0)
		return 0;
	t->fd = -1;
	if (close(fd) < 0)
		return sl_errbuf_set(t->info->errbuf, t->info->errlen, -errno,
				     "error closing '%s': %s", t->path, strerror(errno));
	return 0;
}

const struct sl_sink_ops sl_text_sink_ops = {
	.open = tsink_open,
	.write = tsink_write,
	.finish = tsink_finish,
	.close = tsink_close,
};

/* ------------------------------------------------------------- null */

struct nsink {
	struct sl_null_sink *totals;
};

static int nsink_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	struct nsink *n;

	if (info == NULL || state == NULL)
		return -EINVAL;
	if (arg == NULL)
		return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
				     "null sink: arg must point to a struct sl_null_sink");
	n = sli_conn_zalloc(sizeof(*n));
	if (n == NULL)
		return sl_errbuf_set(info->errbuf, info->errlen, -ENOMEM,
				     "null sink: out of memory");
	n->totals = arg;
	*state = n;
	return 0;
}

static int nsink_write(void *state, const struct sl_batch *b)
{
	struct nsink *n = state;
	size_t k = b->elem_size < 8 ? b->elem_size : 8;
	uint64_t sum = 0;

	if (k == 8) {
		const uint8_t *e = b->data;

		for (uint32_t i = 0; i < b->n; i++, e += b->elem_size) {
			uint64_t v;

			memcpy(&v, e, 8);
			sum += v;
		}
		goto out;
	}
	for (uint32_t i = 0; i < b->n; i++) {
		uint64_t v = 0;

		memcpy(&v, sl_batch_elem(b, i), k);
		sum += v;
	}
out:
	atomic_fetch_add_explicit(&n->totals->records, b->n, memory_order_relaxed);
	atomic_fetch_add_explicit(&n->totals->checksum, sum, memory_order_relaxed);
	return 0;
}

static int nsink_finish(void *state)
{
	return 0;
}

static void nsink_close(void *state)
{
	sli_conn_free(state);
}

const struct sl_sink_ops sl_null_sink_ops = {
	.open = nsink_open,
	.write = nsink_write,
	.finish = nsink_finish,
	.close = nsink_close,
};

uint64_t sl_null_sink_records(const struct sl_null_sink *s)
{
	return atomic_load_explicit(&s->records, memory_order_relaxed);
}

uint64_t sl_null_sink_checksum(const struct sl_null_sink *s)
{
	return atomic_load_explicit(&s->checksum, memory_order_relaxed);
}
