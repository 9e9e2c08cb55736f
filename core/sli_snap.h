/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_snap.h — the runtime's side of sl_snap.h: the section writer a
 * subtask fills at a barrier, its serialised form, and the reader a
 * restored subtask gets (snap.c).
 *
 * Serialised form of one writer (what a snapshot file holds for one
 * operator, after the store's header): a sequence of
 *	u32 section, u32 reserved (0), u64 length, length bytes
 * for each non-empty section, key groups in increasing order, then the
 * operator section. Little-endian.
 */
#ifndef SLI_SNAP_H
#define SLI_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sluice/sl_snap.h>

struct sli_snap_buf {
	uint8_t *p;
	size_t len, cap;
};

/* Make room for @n more bytes; append @n bytes. Return 0 or -ENOMEM. */
int sli_snap_buf_reserve(struct sli_snap_buf *b, size_t n);
int sli_snap_buf_put(struct sli_snap_buf *b, const void *p, size_t n);

struct sl_snap_writer {
	uint32_t max_parallelism;
	struct sli_snap_buf *kg; /* [max_parallelism], allocated on first use */
	struct sli_snap_buf op;
	struct sli_snap_buf *cur;
	size_t total; /* bytes put, over all sections */
	/* sli_snap_extend() asked the test hook since the last reset (sli_fault.h). */
	bool probed;
};

/*
 * Append @n bytes to the current section for the caller to fill, and
 * return where they start: one capacity check for a record of several
 * fields (sl_snap_put() checks per field). NULL: no section selected, or
 * out of memory (nothing appended). Test hook: SLUICE_SNAP_ENOMEM=N fails
 * the first call of every Nth serialisation that calls it (sli_fault.h).
 */
uint8_t *sli_snap_extend(struct sl_snap_writer *w, size_t n);

/* Zero @w, for key groups 0 .. @max_parallelism-1. */
void sli_snap_writer_init(struct sl_snap_writer *w, uint32_t max_parallelism);
/* Empty every section (buffers are kept for the next snapshot) and deselect. */
void sli_snap_writer_reset(struct sl_snap_writer *w);
void sli_snap_writer_free(struct sl_snap_writer *w);
/* Bytes the serialised form takes (sections' headers included). */
size_t sli_snap_writer_size(const struct sl_snap_writer *w);
/* Serialise into @out (sli_snap_writer_size() bytes). */
void sli_snap_writer_emit(const struct sl_snap_writer *w, uint8_t *out);

/* One section handed to a reader; @file names where it came from, for messages. */
struct sli_snap_sec {
	uint32_t section;
	const uint8_t *p;
	uint64_t len;
	const char *file;
};

struct sl_snap_reader {
	const struct sli_snap_sec *secs;
	unsigned nsecs, next;
	const struct sli_snap_sec *cur; /* NULL before the first sl_snap_next() */
	uint64_t pos;
	char *errbuf;
	size_t errlen;
	/* test helper storage (sli_snap_reader_from_writer) */
	struct sli_snap_sec *own;
};

/* A reader over @secs (borrowed); errors are written into @errbuf. */
void sli_snap_reader_init(struct sl_snap_reader *r, const struct sli_snap_sec *secs, unsigned n,
			  char *errbuf, size_t errlen);

/*
 * Parse the serialised form at @p (@len bytes, from @file) into sections
 * appended to *@secs (*@n of them, grown with realloc; *@secs must be
 * NULL with *@n 0, or come from earlier calls). The sections
 * point into @p. Return 0; -EBADMSG (a message naming @file in @errbuf);
 * -ENOMEM.
 */
int sli_snap_parse(const uint8_t *p, size_t len, const char *file, struct sli_snap_sec **secs,
		   unsigned *n, char *errbuf, size_t errlen);

/*
 * For tests: a reader over what @w holds, with only the sections for
 * which @want(section, arg) is true (NULL: all), in the order a restore
 * hands them (key groups ascending, then the operator section). Free
 * with sli_snap_reader_free(). Return 0 or -ENOMEM.
 */
int sli_snap_reader_from_writer(struct sl_snap_reader *r, const struct sl_snap_writer *w,
				int (*want)(uint32_t section, void *arg), void *arg, char *errbuf,
				size_t errlen);
void sli_snap_reader_free(struct sl_snap_reader *r);

#endif /* SLI_SNAP_H */
