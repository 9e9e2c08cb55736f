/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_sink.h — what the line-writing sinks share (implemented in
 * core/conn_sink.c): formatting a batch into whole lines in a growing
 * buffer, handed out in chunks of whole lines, and writing a chunk out
 * whole. Used by the text sink (conn_sink.c) and the part-file sink
 * (conn_part.c). Internal: not installed.
 *
 * Threads: one struct sli_linefmt per subtask.
 */
#ifndef SLI_SINK_H
#define SLI_SINK_H

#include <stddef.h>

#include <sluice/sl_connectors.h>

/** Default chunk: lines are handed out once this many bytes are formatted. */
#define SLI_LINEFMT_CHUNK (1024 * 1024)

struct sli_linefmt {
	char *buf;
	size_t cap;
	sl_format_fn format;
	void *arg;			    /* passed to format */
	const struct sl_subtask_info *info; /* errors go to its errbuf */
	const char *kind;		    /* "text sink", for messages */
	const char *name;		    /* the file or directory, for messages */
};

/**
 * Receives @len bytes of whole lines ('\n' included). Return 0 or -errno
 * with info->errbuf set.
 */
typedef int (*sli_lines_out_fn)(void *ctx, const char *p, size_t len);

/**
 * Set up @f (a 64 KiB buffer, grown for long lines). @kind and @name are
 * borrowed. Return 0 or -ENOMEM (with info->errbuf set).
 */
int sli_linefmt_init(struct sli_linefmt *f, sl_format_fn format, void *arg,
		     const struct sl_subtask_info *info, const char *kind, const char *name);
/** Free the buffer; accepts a zeroed or finished @f. */
void sli_linefmt_fini(struct sli_linefmt *f);

/**
 * sli_linefmt_batch() - format every element of @b as one line and pass
 * the lines to @out: each time at least @chunk bytes are pending, and
 * once at the end (never with 0 bytes). Nothing is kept between calls.
 * Return: 0; -errno from format ("KIND 'NAME': format failed: ...");
 * -ENOMEM ("... out of memory for a N-byte line"); @out's error.
 */
int sli_linefmt_batch(struct sli_linefmt *f, const struct sl_batch *b, size_t chunk,
		      sli_lines_out_fn out, void *ctx);

/**
 * sli_write_all() - write @len bytes to @fd whole, retrying on EINTR and
 * short writes, waiting (poll) while a non-blocking @fd is full.
 * Return: 0; -errno of write(2); -EIO when write returns 0. Sets no errbuf.
 */
int sli_write_all(int fd, const char *p, size_t len);

#endif /* SLI_SINK_H */
