/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_connectors.h — built-in sources and sinks: a seeded generator, text
 * lines from files, directories or stdin, lines from a TCP socket, a text
 * sink and a null sink.
 *
 * Each connector is a plain struct sl_source_ops / struct sl_sink_ops plus
 * a configuration struct passed as the ops' `arg`:
 *
 *	static struct sl_lines_conf in = { .path = "input.txt", .parse = sl_lines_parse_line };
 *	struct sl_stream *s = sl_source(job, "lines", &sl_lines_ops, &in, &sl_line_type);
 *
 * The configuration is borrowed: it must stay valid, and unchanged, until
 * the job has finished. Its strings are borrowed the same way.
 *
 * Threads: the runtime calls open/poll/close (open/write/finish/close) of
 * one subtask on one thread at a time; different subtasks of the same
 * connector run concurrently on different threads and share only the
 * (read-only) configuration, the operator's struct sl_counters and what
 * each connector documents below (the dead-letter file, the merged sink
 * file, stdout, the null sink's totals).
 *
 * Errors: open() and poll()/write()/finish() return -errno and write one
 * sentence into info->errbuf (the runtime prefixes the operator name and
 * subtask). Bad input records are not errors unless the bad-record policy
 * says so.
 */
#ifndef SL_CONNECTORS_H
#define SL_CONNECTORS_H

#include <stdatomic.h>
#include <stdint.h>

#include "sl_batch.h"
#include "sl_job.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------- generator */

/**
 * Fill element @index (all of whose bytes are zero on entry) and its
 * timestamp (*@ts is 0 on entry). Must depend only on (@index, @seed,
 * @arg), so that every parallelism produces the same elements. Called
 * concurrently by the subtasks: @arg must be read-only or thread-safe.
 */
typedef void (*sl_gen_fn)(uint64_t index, uint64_t seed, void *elem, int64_t *ts, void *arg);

/**
 * Fill @n elements at once: element k (at @elems + k * type->size, with
 * timestamp @ts[k]) is the one of index @first + k * @step. The same
 * contract as sl_gen_fn, except that the elements are NOT zeroed on entry:
 * write every byte a later operator reads (padding included if anything
 * hashes or compares whole elements). One call per batch lets the compiler
 * inline the per-element work, which a per-element callback prevents.
 */
typedef void (*sl_gen_batch_fn)(uint64_t first, uint64_t step, uint32_t n, uint64_t seed,
				void *elems, int64_t *ts, void *arg);

/** Configuration of the generator source (the `arg` of sl_gen_ops). */
struct sl_gen_conf {
	uint64_t count;		    /**< elements in total; 0: unbounded */
	uint64_t seed;		    /**< passed to @fill */
	double rate;		    /**< elements/s for the whole source, 0: as fast as polled */
	const struct sl_type *type; /**< element type; must have no strings (nstr == 0) */
	sl_gen_fn fill;		    /**< per element; or: */
	sl_gen_batch_fn fill_batch; /**< per batch; exactly one of the two is set */
	void *arg;		    /**< passed to @fill or @fill_batch */
};

/**
 * sl_gen_ops - a deterministic, seeded generator; `arg` is a struct
 * sl_gen_conf *.
 *
 * Subtask s of p produces the indices [s*count/p, (s+1)*count/p) in
 * increasing order, then ends; an unbounded generator (count 0) produces
 * s, s+p, s+2p, ... forever. So the union over subtasks is 0..count-1 for
 * every p, and element i is the same whatever p and batch sizes are.
 *
 * Rate: each subtask gets rate/p elements/s from a token bucket on
 * CLOCK_MONOTONIC holding at most max(1, 10 ms worth) tokens, full at
 * open(). poll() returns 0 when the bucket is empty; it never sleeps.
 *
 * Checkpoints: snapshot() saves the next index; restore() continues from
 * it (the rate's bucket starts full again).
 *
 * open() errors: -EINVAL (NULL conf or type; not exactly one of fill and
 * fill_batch; a type with strings;
 * rate negative or not finite). poll() errors: -EINVAL when the batch's
 * elem_size differs from type->size. snapshot() errors: -ENOMEM.
 * restore() errors: -EBADMSG when the count or the parallelism differ
 * from the checkpoint's ("cannot restore: ...") or the section is not a
 * generator's (the reader's errbuf says why); -EINVAL after a poll().
 */
extern const struct sl_source_ops sl_gen_ops;

/* ---------------------------------------------- line-oriented sources */

/**
 * Parse one input line into @elem (zeroed on entry, out->elem_size bytes;
 * *@ts is 0 on entry).
 * @line: the line without its '\n' and trailing '\r', never empty; it is
 *        NUL-terminated (line[len] == '\0') but may contain NUL bytes.
 * @out: the batch @elem belongs to; add strings with sl_batch_add_str().
 * @why: on -EINVAL, a short reason ("expected 3 fields"); the source
 *       prefixes FILE:LINE.
 * Return: 1 when @elem is filled; 0 to skip the line silently; -EINVAL
 * for a bad record (handled by the bad-record policy); -E2BIG when
 * sl_batch_add_str() says the batch's arena is full (the source emits the
 * batch and retries the line in the next one, or, if the batch was empty,
 * treats it as a bad record "record larger than N bytes"); any other
 * -errno fails the job. Strings added before a return other than 1 are
 * discarded.
 */
typedef int (*sl_line_parse_fn)(const char *line, size_t len, struct sl_batch *out, void *elem,
				int64_t *ts, char *why, size_t whylen, void *arg);

/** What a line source does with a bad record (parse -EINVAL, oversized line). */
enum sl_bad_policy {
	SL_BAD_FAIL = 0, /**< poll() returns -EINVAL, errbuf "FILE:LINE: reason" */
	SL_BAD_SKIP = 1, /**< count it in info->counters->bad_records and go on */
	/**
	 * Count it, and append "FILE:LINE: reason: LINE-TEXT\n" to the
	 * dead-letter file (bad_path). Each subtask opens it with O_APPEND
	 * (creating it, never truncating) and writes each record with one
	 * write(), so subtasks do not interleave within a record. An oversized
	 * record's text is cut to the max record size and followed by
	 * " [truncated]". A failing write to the dead-letter file is fatal.
	 */
	SL_BAD_FILE = 2,
};

/**
 * One line as a string: the element type of sl_lines_parse_line().
 * sl_line_type describes it.
 */
struct sl_line {
	struct sl_str text;
};

extern const struct sl_type sl_line_type;

/**
 * sl_lines_parse_line() - an sl_line_parse_fn storing the whole line as a
 * struct sl_line (timestamp 0). @arg is unused.
 * Return: 1; -E2BIG (arena full, see sl_line_parse_fn); -ENOMEM; -ENOTSUP
 * when the batch's elements are smaller than struct sl_line (wrong type;
 * fails the job); -EINVAL for a NULL argument.
 */
int sl_lines_parse_line(const char *line, size_t len, struct sl_batch *out, void *elem, int64_t *ts,
			char *why, size_t whylen, void *arg);

/**
 * sl_line_format() - an sl_format_fn (see the text sink) writing a struct
 * sl_line's text. @arg is unused.
 */
int sl_line_format(const void *elem, int64_t ts, const struct sl_batch *b, char *buf, size_t len,
		   void *arg);

/** Configuration of the line source (the `arg` of sl_lines_ops). */
struct sl_lines_conf {
	/**
	 * A regular file; a directory (its regular files, and symlinks to
	 * them, sorted by name with strcmp; names starting with '.' and
	 * subdirectories are skipped); "-" for stdin; or a FIFO or character
	 * device. The last two kinds are streams: they need parallelism 1.
	 */
	const char *path;
	sl_line_parse_fn parse;
	void *arg; /**< passed to @parse (concurrently by the subtasks) */
	enum sl_bad_policy bad_policy;
	const char *bad_path;	  /**< dead-letter file for SL_BAD_FILE */
	double rate;		  /**< records/s for the whole source, 0: unlimited */
	uint32_t max_record_size; /**< longest line in bytes; 0: info->max_record_size */
};

/**
 * sl_lines_ops - text lines (CSV, logs, ...) from files; `arg` is a
 * struct sl_lines_conf *.
 *
 * Lines end at '\n'; a trailing '\r' is removed; the last line of a file
 * may lack its '\n'; blank lines are skipped (never passed to parse) but
 * counted in line numbers. Lines longer than the max record size are bad
 * records "record longer than N bytes": they are read and discarded,
 * never buffered whole.
 *
 * Splits: the bytes of all files, in order, are cut into `parallelism`
 * contiguous ranges of equal size; a subtask reads every line that starts
 * in its range (to its end, past the range if needed). So every line is
 * read exactly once whatever the parallelism, and a subtask reads its
 * lines in file order. File sizes are taken when the subtask opens: the
 * input must not change while the job runs.
 *
 * Watermark splits (sl_source_ops.poll() in sl_job.h): each non-empty file
 * a subtask reads (the part of it in the subtask's range) is one split,
 * numbered in read order; all are counted from the first poll, so a file
 * not reached yet holds the subtask's watermark back (unless idle), and a
 * file read to its end no longer does. A batch never mixes files; every
 * file but the last ends with SL_SOURCE_SPLIT_END, the last with
 * SL_SOURCE_END. Stdin and streams are one split.
 *
 * Errors name "FILE:LINE" with the true line number in that file, also
 * for subtasks that start in the middle of a file (the newlines before
 * are counted when the first error needs them).
 *
 * Rate: as for the generator (tokens are spent on emitted records only).
 *
 * open() errors: -EINVAL (NULL conf, path or parse; bad policy; SL_BAD_FILE
 * without bad_path; bad rate; a stream with parallelism > 1); -errno of
 * stat/open/opendir, errbuf "cannot open 'PATH': reason" (a file of a
 * directory that cannot be opened is reported the same way, by poll(),
 * when reached); -errno opening the dead-letter file; -ENOMEM.
 * poll() errors: -EINVAL (bad record under SL_BAD_FAIL); -errno of read
 * ("read error on 'PATH': ...") or of the dead-letter write ("cannot
 * write dead-letter file 'PATH': ..."); other -errno from parse
 * ("FILE:LINE: reason").
 *
 * Stdin and streams are polled without blocking (poll(2) before read), a
 * FIFO's open() blocks until a writer appears.
 *
 * Checkpoints: snapshot() saves the position after the last record poll()
 * returned: the file of the range, the byte offset of the first line not
 * returned (lines read ahead are read again after a restore, bad records
 * before it are not reported again), the line number there, the splits
 * ended; and, to detect a changed input, the subtask's range and the
 * file's name (without its directory) and size. The rate's bucket is not
 * saved. Streams cannot be replayed: snapshot() and restore() fail with
 * -ENOTSUP, errbuf "input 'PATH' is a stream: it cannot be checkpointed".
 * restore() errors: -EBADMSG when the input is not the checkpoint's
 * ("cannot restore: 'FILE' is N bytes, the checkpoint read it to byte M";
 * a file renamed, resized, added or removed; another parallelism), or the
 * section is not a line source's (the reader's errbuf says why); -EINVAL
 * after a poll(); -errno of open/lseek ("cannot open 'PATH': ...").
 */
extern const struct sl_source_ops sl_lines_ops;

/* ---------------------------------------------------------- socket */

/** Configuration of the socket source (the `arg` of sl_socket_ops). */
struct sl_socket_conf {
	const char *host; /**< name or address; IPv6 without brackets */
	uint16_t port;
	sl_line_parse_fn parse;
	void *arg;
	enum sl_bad_policy bad_policy;
	const char *bad_path;
	uint32_t max_record_size;    /**< 0: info->max_record_size */
	unsigned connect_timeout_ms; /**< 0: 10000 */
};

/**
 * sl_socket_ops - text lines read from a TCP server (a client, like
 * Flink's socketTextStream; e.g. `nc -lk 9999`); `arg` is a struct
 * sl_socket_conf *. Lines, blank lines, oversized lines and bad records
 * behave as for sl_lines_ops, with "HOST:PORT:LINE" in messages. The
 * input ends when the server closes the connection (the last line may
 * lack its '\n'). Reads never block: poll() returns 0 when no data is
 * waiting.
 *
 * open() errors: -EINVAL (NULL conf, host or parse; port 0; bad policy;
 * parallelism > 1: one connection cannot be split); "cannot connect to
 * HOST:PORT: reason" with -errno of connect() (-ECONNREFUSED, -ETIMEDOUT,
 * ...) or, when the name does not resolve, -EHOSTUNREACH (-EAGAIN for a
 * temporary resolver failure) with getaddrinfo's reason; -ENOMEM.
 * poll() errors: as for sl_lines_ops, and -errno of recv() ("read error
 * from HOST:PORT: ...").
 *
 * No snapshot(): a connection cannot be replayed, so a job with
 * checkpoints refuses to start with this source.
 */
extern const struct sl_source_ops sl_socket_ops;

/**
 * sl_socket_url_parse() - split "socket://HOST:PORT" ("socket://[v6]:PORT"
 * for IPv6 literals).
 * @host: receives HOST, NUL-terminated, without brackets.
 * @port: receives PORT, 1..65535.
 * Return: 0; -EINVAL for another scheme, an empty host, a missing, zero,
 * out-of-range or non-numeric port, or a host longer than @hostlen-1
 * (with a sentence in @errbuf). Thread-safe.
 */
int sl_socket_url_parse(const char *url, char *host, size_t hostlen, uint16_t *port, char *errbuf,
			size_t errlen);

/* ---------------------------------------------------------- sinks */

/**
 * Format @elem (its strings resolve against @b) as one line without the
 * '\n', with snprintf() semantics: write at most @len bytes including a
 * terminating NUL and return the length the full line needs (excluding
 * the NUL). The sink calls again with a bigger buffer when that is >=
 * @len. Return -errno to fail the job.
 */
typedef int (*sl_format_fn)(const void *elem, int64_t ts, const struct sl_batch *b, char *buf,
			    size_t len, void *arg);

enum sl_text_sink_mode {
	/**
	 * Each subtask writes its own file, created or truncated at open():
	 * PATH at parallelism 1, PATH-<index> (PATH-0, PATH-1, ...) above.
	 */
	SL_TEXT_PER_SUBTASK = 0,
	/**
	 * All subtasks append to PATH (O_APPEND), one write() per batch of
	 * whole lines, so lines of different subtasks never tear (order
	 * between subtasks is arbitrary). sl_text_sink_prepare() must create
	 * or truncate PATH before each run: open() fails otherwise.
	 */
	SL_TEXT_MERGED = 1,
};

/** Configuration of the text sink (the `arg` of sl_text_sink_ops). */
struct sl_text_sink_conf {
	/**
	 * The output file, or "-" for stdout (then the mode does not matter:
	 * subtasks' batches are written whole under a process-wide lock).
	 */
	const char *path;
	enum sl_text_sink_mode mode;
	sl_format_fn format;
	void *arg; /**< passed to @format (concurrently by the subtasks) */
	/* private: set by sl_text_sink_prepare() */
	int prepared;
};

/**
 * sl_text_sink_ops - one line per element, formatted by conf->format;
 * `arg` is a struct sl_text_sink_conf *. Each write() of the sink is
 * written out (one write(2) per batch, at most ~1 MiB each) before it
 * returns; finish() closes the file and reports close errors. No fsync.
 *
 * open() errors: -EINVAL (NULL conf, path or format; bad mode; merged
 * mode not prepared); -errno of open(2) ("cannot open 'PATH': reason");
 * -ENOMEM. write() errors: -errno of write(2) ("write error on 'PATH':
 * reason", e.g. -ENOSPC, -EIO; -EPIPE when SIGPIPE is ignored); -errno
 * from format. finish() errors: -errno of close(2).
 */
extern const struct sl_sink_ops sl_text_sink_ops;

/**
 * sl_text_sink_prepare() - create or truncate a merged-mode sink's file
 * and allow its subtasks to open. Call once before each run, from the
 * thread that builds the job (does nothing in the other modes).
 * Return: 0; -EINVAL (NULL conf or path); -errno of open(2) with a
 * sentence in @errbuf.
 */
int sl_text_sink_prepare(struct sl_text_sink_conf *conf, char *errbuf, size_t errlen);

/* ------------------------------------------- exactly-once file sink */

/** Configuration of the part-file sink (the `arg` of sl_part_sink_ops). */
struct sl_part_sink_conf {
	const char *dir; /**< an existing directory */
	sl_format_fn format;
	void *arg;		  /**< passed to @format (concurrently by the subtasks) */
	uint64_t roll_bytes;	  /**< start a new part file past this size; 0: 128 MiB */
	int64_t roll_interval_ms; /**< ... or when the open one is this old; 0: never */
	bool fsync;		  /**< fsync part files and the directory (default on: see below) */
};

/**
 * sl_part_sink_ops - exactly-once output to part files in conf->dir (Flink's
 * FileSink with a two-phase commit); `arg` is a struct sl_part_sink_conf *.
 * Lines are formatted as by the text sink.
 *
 * Files, for subtask S in epoch E (the records after checkpoint E-1), the
 * K-th file of the epoch:
 *	.part-S-E-K.inprogress	being written; never visible
 *	.part-S-E-K.pending	closed at barrier E (pre_commit), fsynced
 *	part-S-E-K		committed: checkpoint E completed
 * Only names without a leading '.' are output; a reader of DIR ignores
 * dot-files. A part file is closed (and fsynced) once it holds roll_bytes
 * or more (lines are written in chunks of at most min(roll_bytes, 1 MiB),
 * whole lines only), and before a batch is written to it when it is
 * roll_interval_ms old (CLOCK_MONOTONIC); the next line goes to K + 1.
 * Empty part files are never created. The first epoch after a restore
 * from checkpoint C is C + 1, so names never repeat across restarts.
 *
 * pre_commit(ckpt) closes the epoch's files, renames them .pending, and
 * lists in the operator section of its writer every pending file not yet
 * committed (of this and earlier checkpoints; nothing is recorded when
 * the writer is NULL); the next epoch is ckpt + 1. commit(ckpt) makes
 * visible the pending files of every checkpoint <= ckpt; a file already
 * visible is fine, so it is idempotent, and it never replaces a visible
 * file (-EEXIST). finish() closes and fsyncs the open file but makes
 * nothing visible: at the end of the input the runtime calls pre_commit()
 * for a final checkpoint and commit(), with checkpoints or without.
 * close() deletes nothing: recover() cleans up after a crash.
 *
 * recover() runs before every run, restored or
 * not (then with ckpt 0 and nold 0): it commits every file the restored
 * checkpoint lists (a file already committed is fine; one missing under
 * both names is an error naming it) and deletes every other .part-* file
 * in DIR, of any subtask: in-progress files and files pre-committed for
 * checkpoints that never completed. On a fresh start it refuses (-EEXIST)
 * a directory that already holds committed part-* files, before deleting
 * anything: exactly-once output needs an empty directory, or a restore.
 * Committed files are never deleted. The directory is fsynced after
 * changes (conf->fsync).
 *
 * open() errors: -EINVAL (NULL conf, dir or format; negative
 * roll_interval_ms); -ENOTDIR; -errno of open(2) on DIR; -ENOMEM.
 * write() errors: -errno of open(2) creating the part file (-EEXIST when
 * the name is taken) or of write(2) (-ENOSPC, -EFBIG, ...), of fsync or
 * close when rolling; -errno from format. pre_commit(): -EINVAL for a
 * checkpoint below the current epoch; -errno of fsync/close/rename;
 * -ENOMEM. commit(): -ENOENT when a pending file is gone under both
 * names; -EEXIST; -errno of rename or fsync. recover(): -EINVAL (NULL
 * conf, dir or format; negative ckpt); -EEXIST (above); -ENOENT (a listed
 * file missing); -EBADMSG (a malformed snapshot); -errno of
 * open/readdir/rename/unlink/fsync. Every message names the file and DIR
 * ("cannot rename '.part-0-3-0.pending' in 'out/': ...").
 */
extern const struct sl_sink_ops sl_part_sink_ops;

/**
 * Totals of a null sink, shared by its subtasks; zero-initialise it
 * (`struct sl_null_sink n = { 0 };`) and pass it as the sink's `arg`.
 */
struct sl_null_sink {
	_Atomic uint64_t records;
	_Atomic uint64_t checksum;
};

/**
 * sl_null_sink_ops - counts the elements and sums (mod 2^64) the first 8
 * bytes of each (fewer, zero-padded, for smaller elements) so the work
 * that produced them cannot be optimised away. The sum does not depend on
 * order or parallelism; for types with strings it covers the struct
 * sl_str offsets, which depend on batching. open() errors: -EINVAL (NULL
 * arg); -ENOMEM. write() and finish() do not fail.
 */
extern const struct sl_sink_ops sl_null_sink_ops;

/** Elements consumed so far by all subtasks (relaxed read; any thread). */
uint64_t sl_null_sink_records(const struct sl_null_sink *s);

/** The checksum over the elements consumed so far (relaxed read; any thread). */
uint64_t sl_null_sink_checksum(const struct sl_null_sink *s);

#ifdef __cplusplus
}
#endif
#endif /* SL_CONNECTORS_H */
