/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snap.c — snapshot sections (sl_snap.h, sli_snap.h): the writer a
 * subtask fills at a barrier, its serialised form, the reader a restored
 * subtask consumes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_error.h>

#include "sli_fault.h"
#include "sli_snap.h"

void sli_snap_writer_init(struct sl_snap_writer *w, uint32_t max_parallelism)
{
	memset(w, 0, sizeof(*w));
	w->max_parallelism = max_parallelism;
}

void sli_snap_writer_reset(struct sl_snap_writer *w)
{
	if (w->kg != NULL)
		for (uint32_t g = 0; g < w->max_parallelism; g++)
			w->kg[g].len = 0;
	w->op.len = 0;
	w->cur = NULL;
	w->total = 0;
	w->probed = false;
}

void sli_snap_writer_free(struct sl_snap_writer *w)
{
	if (w->kg != NULL)
		for (uint32_t g = 0; g < w->max_parallelism; g++)
			free(w->kg[g].p);
	free(w->kg);
	free(w->op.p);
	memset(w, 0, sizeof(*w));
}

int sl_snap_section(struct sl_snap_writer *w, uint32_t section)
{
	if (section == SL_SNAP_OP) {
		w->cur = &w->op;
		return 0;
	}
	if (section >= w->max_parallelism)
		return -EINVAL;
	if (w->kg == NULL) {
		w->kg = calloc(w->max_parallelism, sizeof(*w->kg));
		if (w->kg == NULL)
			return -ENOMEM;
	}
	w->cur = &w->kg[section];
	return 0;
}

int sli_snap_buf_reserve(struct sli_snap_buf *b, size_t n)
{
	if (n <= b->cap - b->len)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < n)
		cap *= 2;
	uint8_t *np = realloc(b->p, cap);
	if (np == NULL)
		return -ENOMEM;
	b->p = np;
	b->cap = cap;
	return 0;
}

int sli_snap_buf_put(struct sli_snap_buf *b, const void *p, size_t n)
{
	int rc = sli_snap_buf_reserve(b, n);

	if (rc == 0 && n > 0) {
		memcpy(b->p + b->len, p, n);
		b->len += n;
	}
	return rc;
}

int sl_snap_put(struct sl_snap_writer *w, const void *p, size_t n)
{
	int rc;

	if (w->cur == NULL)
		return -EINVAL;
	rc = sli_snap_buf_put(w->cur, p, n);
	if (rc == 0)
		w->total += n;
	return rc;
}

uint8_t *sli_snap_extend(struct sl_snap_writer *w, size_t n)
{
	uint8_t *p;

	if (!w->probed) {
		/* Once per serialisation, not per record: the hook costs a getenv(). */
		w->probed = true;
		if (sli_fault(&sli_fault_snap))
			return NULL;
	}
	if (w->cur == NULL || sli_snap_buf_reserve(w->cur, n) < 0)
		return NULL;
	p = w->cur->p + w->cur->len;
	w->cur->len += n;
	w->total += n;
	return p;
}

int sl_snap_put_bytes(struct sl_snap_writer *w, const void *p, size_t n)
{
	if (n > UINT32_MAX)
		return -E2BIG;
	int rc = sl_snap_put_u32(w, (uint32_t)n);
	return rc < 0 ? rc : sl_snap_put(w, p, n);
}

enum { SEC_HDR = 16 };

static void put_hdr(uint8_t *out, uint32_t section, uint64_t len)
{
	uint32_t zero = 0;

	memcpy(out, &section, 4);
	memcpy(out + 4, &zero, 4);
	memcpy(out + 8, &len, 8);
}

size_t sli_snap_writer_size(const struct sl_snap_writer *w)
{
	size_t n = 0;

	if (w->kg != NULL)
		for (uint32_t g = 0; g < w->max_parallelism; g++)
			if (w->kg[g].len > 0)
				n += SEC_HDR + w->kg[g].len;
	if (w->op.len > 0)
		n += SEC_HDR + w->op.len;
	return n;
}

void sli_snap_writer_emit(const struct sl_snap_writer *w, uint8_t *out)
{
	if (w->kg != NULL)
		for (uint32_t g = 0; g < w->max_parallelism; g++) {
			const struct sli_snap_buf *b = &w->kg[g];
			if (b->len == 0)
				continue;
			put_hdr(out, g, b->len);
			memcpy(out + SEC_HDR, b->p, b->len);
			out += SEC_HDR + b->len;
		}
	if (w->op.len > 0) {
		put_hdr(out, SL_SNAP_OP, w->op.len);
		memcpy(out + SEC_HDR, w->op.p, w->op.len);
	}
}

int sli_snap_parse(const uint8_t *p, size_t len, const char *file, struct sli_snap_sec **secs,
		   unsigned *n, char *errbuf, size_t errlen)
{
	size_t off = 0;

	while (off < len) {
		uint32_t section, reserved;
		uint64_t slen;

		if (len - off < SEC_HDR)
			return sl_errbuf_set(errbuf, errlen, -EBADMSG,
					     "%s: truncated section header at byte %zu", file, off);
		memcpy(&section, p + off, 4);
		memcpy(&reserved, p + off + 4, 4);
		memcpy(&slen, p + off + 8, 8);
		if (reserved != 0 || slen > len - off - SEC_HDR)
			return sl_errbuf_set(errbuf, errlen, -EBADMSG,
					     "%s: bad section header at byte %zu", file, off);
		if ((*n & (*n + 1)) == 0) {
			/* n = 2^k - 1 (0, 1, 3, 7...): full, double to 2^(k+1) */
			size_t cap = (size_t)(*n + 1) * 2;
			struct sli_snap_sec *ns = realloc(*secs, cap * sizeof(*ns));
			if (ns == NULL)
				return -ENOMEM;
			*secs = ns;
		}
		(*secs)[*n] = (struct sli_snap_sec){
			.section = section, .p = p + off + SEC_HDR, .len = slen, .file = file
		};
		(*n)++;
		off += SEC_HDR + slen;
	}
	return 0;
}

void sli_snap_reader_init(struct sl_snap_reader *r, const struct sli_snap_sec *secs, unsigned n,
			  char *errbuf, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	r->secs = secs;
	r->nsecs = n;
	r->errbuf = errbuf;
	r->errlen = errlen;
}

static void section_name(const struct sli_snap_sec *s, char *buf, size_t len)
{
	if (s->section == SL_SNAP_OP)
		snprintf(buf, len, "operator section");
	else
		snprintf(buf, len, "key group %" PRIu32, s->section);
}

static int bad(struct sl_snap_reader *r, const char *why)
{
	char sec[48] = "no section";

	if (r->cur != NULL)
		section_name(r->cur, sec, sizeof(sec));
	return sl_errbuf_set(r->errbuf, r->errlen, -EBADMSG, "%s: %s: %s",
			     r->cur != NULL && r->cur->file ? r->cur->file : "snapshot", sec, why);
}

int sl_snap_next(struct sl_snap_reader *r, uint32_t *section)
{
	if (r->cur != NULL && r->pos != r->cur->len)
		return bad(r, "bytes left unread: the snapshot was written by another format");
	if (r->next >= r->nsecs) {
		r->cur = NULL;
		return 0;
	}
	r->cur = &r->secs[r->next++];
	r->pos = 0;
	*section = r->cur->section;
	return 1;
}

size_t sl_snap_left(const struct sl_snap_reader *r)
{
	return r->cur == NULL ? 0 : (size_t)(r->cur->len - r->pos);
}

int sl_snap_get(struct sl_snap_reader *r, void *p, size_t n)
{
	if (n > sl_snap_left(r))
		return bad(r, "truncated: a value runs past the end of the section");
	if (n > 0)
		memcpy(p, r->cur->p + r->pos, n);
	r->pos += n;
	return 0;
}

int sl_snap_get_bytes(struct sl_snap_reader *r, const void **p, uint32_t *n)
{
	uint32_t len;
	int rc = sl_snap_get_u32(r, &len);

	if (rc < 0)
		return rc;
	if (len > sl_snap_left(r))
		return bad(r, "truncated: a string runs past the end of the section");
	*p = r->cur->p + r->pos;
	*n = len;
	r->pos += len;
	return 0;
}

int sl_snap_bad(struct sl_snap_reader *r, const char *why)
{
	return bad(r, why);
}

int sli_snap_reader_from_writer(struct sl_snap_reader *r, const struct sl_snap_writer *w,
				int (*want)(uint32_t section, void *arg), void *arg, char *errbuf,
				size_t errlen)
{
	unsigned n = 0, cap = w->max_parallelism + 1;
	struct sli_snap_sec *secs = calloc(cap, sizeof(*secs));

	if (secs == NULL)
		return -ENOMEM;
	for (uint32_t g = 0; w->kg != NULL && g < w->max_parallelism; g++)
		if (w->kg[g].len > 0 && (want == NULL || want(g, arg)))
			secs[n++] =
			    (struct sli_snap_sec){ g, w->kg[g].p, w->kg[g].len, "snapshot" };
	if (w->op.len > 0 && (want == NULL || want(SL_SNAP_OP, arg)))
		secs[n++] = (struct sli_snap_sec){ SL_SNAP_OP, w->op.p, w->op.len, "snapshot" };
	sli_snap_reader_init(r, secs, n, errbuf, errlen);
	r->own = secs;
	return 0;
}

void sli_snap_reader_free(struct sl_snap_reader *r)
{
	free(r->own);
	r->own = NULL;
}
