/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_lines.h — line assembly and bad-record handling shared by the line
 * sources (core/conn_lines.c, net/socket.c), implemented in
 * core/conn_split.c. Internal: not installed.
 *
 * The splitter owns a buffer the caller reads into (sli_lines_space(),
 * then sli_lines_commit()) and hands out complete lines (sli_lines_peek()
 * returns the same line until sli_lines_consume(), so a source can retry a
 * line in its next poll). A line longer than the maximum is never buffered
 * whole: its first max bytes are kept, the rest is read into a scratch
 * area and dropped until its '\n'. Memory: at most max + 2 + 64 KiB.
 *
 * Threads: one splitter and one struct sli_bad per subtask.
 */
#ifndef SLI_LINES_H
#define SLI_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sluice/sl_connectors.h>
#include <sluice/sl_snap.h>

/** Room the splitter keeps beyond max + 2 (the scratch of oversized lines). */
#define SLI_LINES_SCRATCH (64 * 1024)
/** Longest reason a parse function may write (including the NUL). */
#define SLI_LINES_WHY 256
/** Default max record size when neither conf nor subtask info set one. */
#define SLI_LINES_DEFAULT_MAX (1024 * 1024)

struct sli_line {
	char *ptr;	/* '\r' stripped, NUL-terminated unless oversized */
	size_t len;	/* bytes at ptr (for an oversized line: max, its first bytes) */
	uint64_t raw;	/* bytes it spans in the stream, '\n' included */
	bool oversized; /* longer than max: a bad record */
};

struct sli_lines {
	char *buf;
	size_t cap, cap_max;
	size_t head, tail; /* unconsumed bytes: buf[head, tail); buf[tail] is spare */
	size_t scan;	   /* buf[head, scan) holds no '\n' */
	uint32_t max;
	bool over; /* dropping an oversized line; its prefix is buf[0, max) */
	bool have; /* cur is a peeked, unconsumed line */
	struct sli_line cur;
	size_t next_head;  /* head once cur is consumed */
	uint64_t consumed; /* bytes consumed since init or reset */
};

/**
 * Init for lines of at most @max bytes, starting with a buffer of @init
 * bytes. Return 0 or -ENOMEM.
 */
int sli_lines_init(struct sli_lines *l, uint32_t max, size_t init);
void sli_lines_fini(struct sli_lines *l);
/** Forget buffered bytes and the offset: a new stream starts. */
void sli_lines_reset(struct sli_lines *l);
/**
 * Where to read next: *p, up to *len bytes (> 0). Only after peek
 * returned 0. Return 0 or -ENOMEM.
 */
int sli_lines_space(struct sli_lines *l, char **p, size_t *len);
/** @n bytes were read into the space. */
void sli_lines_commit(struct sli_lines *l, size_t n);
/**
 * The next complete line (@eof: no more bytes will come, so a final
 * unterminated line is complete). Return 1 with *@out filled, or 0 when
 * more bytes are needed (at eof: when nothing is left). The line stays
 * valid, and is returned again, until sli_lines_consume().
 */
int sli_lines_peek(struct sli_lines *l, bool eof, struct sli_line *out);
/** Drop the peeked line; l->consumed grows by its raw size. */
void sli_lines_consume(struct sli_lines *l);

/* What sli_lines_parse() did with a line. */
enum {
	SLI_LINE_SKIP = 0, /* blank, or parse returned 0: consume it */
	SLI_LINE_EMIT = 1, /* added as out's last element: consume it */
	SLI_LINE_FULL = 2, /* out's arena is full: emit out, retry the line */
	SLI_LINE_BAD = 3,  /* bad record, reason in @why: apply the policy, consume */
};

/**
 * Run @parse on @line into the next element of @out (which has room).
 * Return SLI_LINE_*, or the -errno of parse (fatal; @why may say why).
 */
int sli_lines_parse(const struct sli_line *line, struct sl_batch *out, uint32_t max,
		    sl_line_parse_fn parse, void *arg, char *why);

/* Bad-record policy of one subtask. */
struct sli_bad {
	enum sl_bad_policy policy;
	const char *path; /* dead-letter file (SL_BAD_FILE) */
	int fd;
	char *buf;
	size_t cap;
};

/** Check @policy and @path, open the dead-letter file. Return 0, -EINVAL or -errno. */
int sli_bad_open(struct sli_bad *b, enum sl_bad_policy policy, const char *path, char *errbuf,
		 size_t errlen);
/**
 * Apply the policy to a bad record at "@src:@lineno" with @reason; @raw is
 * its text (cut, when @truncated). Return 0 to go on; -EINVAL under
 * SL_BAD_FAIL or -errno of the dead-letter write, with info->errbuf set.
 */
int sli_bad_record(struct sli_bad *b, const struct sl_subtask_info *info, const char *src,
		   uint64_t lineno, const char *reason, const char *raw, size_t rawlen,
		   bool truncated);
void sli_bad_close(struct sli_bad *b);

/** Zeroed memory from the default allocator, or NULL. Free with sli_conn_free(). */
void *sli_conn_zalloc(size_t size);
void sli_conn_free(void *p);
/** Max record size of a connector: @conf_max, else the subtask's, else the default. */
uint32_t sli_conn_max_record(uint32_t conf_max, const struct sl_subtask_info *info);

/*
 * A source's position in a checkpoint (sl_snap.h), as the built-in sources
 * write it into the operator section: a u32 @id naming the format (source
 * and version), @len bytes of a fixed struct of u64s (no padding: written
 * as is, little-endian like every sl_snap number), then @name as
 * sl_snap_put_bytes() (NULL: empty).
 */
/** Write such a position. Return 0 or -ENOMEM (errbuf untouched). */
int sli_conn_snap_put(struct sl_snap_writer *w, uint32_t id, const void *pos, size_t len,
		      const char *name);
/**
 * Read what sli_conn_snap_put() wrote: the reader's operator section and
 * nothing else. *@name points into the reader (valid until restore()
 * returns). Return 0 or -EBADMSG (the reader's errbuf says why: another
 * format, truncated, missing or extra bytes or sections).
 */
int sli_conn_snap_get(struct sl_snap_reader *r, uint32_t id, void *pos, size_t len,
		      const void **name, uint32_t *namelen);

#endif /* SLI_LINES_H */
