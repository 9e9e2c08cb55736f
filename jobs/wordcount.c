/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wordcount.c — the wordcount built-in job, a dataflow job on the runtime:
 *
 *	lines (file, directory, stdin, embedded sample) or socket
 *	  -> flat_map "tokenize" -> key_by(word) -> reduce "count" (final)
 *	  -> sink "collect" (plus the merged text sink for --output)
 *
 * A word is a maximal run of ASCII letters and digits, lowercased; every
 * other byte separates words. The line source cuts the input at '\n' (and
 * drops a trailing '\r'), both separators anyway, so the words are those
 * of the whole input; a line longer than the max record size is a bad
 * record, handled by --bad-records.
 *
 * The embedded sample text is staged in a memfd and read through
 * /proc/self/fd/N by the ordinary line source, so it is split and parsed
 * exactly like a file.
 *
 * The "collect" sink copies every final (word, count) into one table under
 * a mutex (its subtasks run on different workers); finish() sorts it for
 * the top N on the main thread after the run. With --output, the same
 * sink also feeds the text sink in merged mode: one file, "word,count"
 * lines in no particular order.
 *
 * Threads: build/finish/destroy on the main thread; tokenize, key,
 * reduce and sink functions on worker threads, sharing only the read-only
 * configuration and the collect table (mutex). finish() reads the
 * source's bad-record count with sl_job_op_counters().
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sluice/sl_common.h>
#include <sluice/sl_connectors.h>
#include <sluice/sl_error.h>
#include <sluice/sl_job.h>

#include "jobs.h"

#define WC_TOP_MAX  1000000
#define WC_TOP_DFLT 10
#define WC_WORD_BUF 256 /* words up to this long are lowercased on the stack */
#define WC_SAMPLE   "<embedded sample>"

struct wc_opts {
	const char *input;	 /* NULL: embedded sample text; "-": stdin; socket://... */
	const char *output;	 /* NULL: none; "-": stdout */
	const char *bad_records; /* NULL or "fail", "skip", or a dead-letter file */
	const char *rate;	 /* NULL: unlimited */
	long long top;
};

static const struct wc_opts wc_defaults = {
	.input = NULL,
	.output = NULL,
	.bad_records = NULL,
	.rate = NULL,
	.top = WC_TOP_DFLT,
};

static const struct sli_cli_opt wc_options[] = {
	{
	    .name = "input",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct wc_opts, input),
	    .metavar = "PATH",
	    .help = "file, directory, '-' (stdin) or socket://HOST:PORT (default: the sample)",
	},
	{
	    .name = "output",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct wc_opts, output),
	    .metavar = "PATH",
	    .help = "also write every word as 'word,count', in no particular order ('-': stdout)",
	},
	{
	    .name = "bad-records",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct wc_opts, bad_records),
	    .metavar = "fail|skip|PATH",
	    .help = "lines longer than --max-record-size: fail (default), skip and count, or "
		    "append them to the file PATH",
	},
	{
	    .name = "rate",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct wc_opts, rate),
	    .metavar = "R",
	    .help = "read at most R lines per second (default: unlimited; not for sockets)",
	},
	{
	    .name = "top",
	    .type = SLI_CLI_INT,
	    .offset = offsetof(struct wc_opts, top),
	    .metavar = "N",
	    .help = "print the N most frequent words (default 10)",
	    .min = 1,
	    .max = WC_TOP_MAX,
	},
	{ .name = NULL },
};

/* ------------------------------------------------------------ elements */

struct wc_word {
	struct sl_str w;
	int64_t count;
};

static const struct sl_type wc_word_type = SL_TYPE_STR1(struct wc_word, w);

/* One final count, its word in the collect arena. */
struct wc_entry {
	size_t off;
	size_t len;
	int64_t count;
};

/* ----------------------------------------------------------- job state */

enum wc_input {
	WC_IN_SAMPLE,
	WC_IN_PATH,
	WC_IN_STDIN,
	WC_IN_SOCKET,
};

struct wc_job {
	const struct wc_opts *o;
	enum wc_input kind;
	enum sl_bad_policy policy;
	struct sl_job *job; /* for its source's bad-record counter */
	const char *src_name;
	struct sl_lines_conf lines;
	struct sl_socket_conf sock;
	char host[256];
	int memfd;
	char memfd_path[64];
	bool text_on;
	struct sl_text_sink_conf text;

	/* The collect table: written by the sink subtasks under @lock. */
	pthread_mutex_t lock;
	struct wc_entry *v;
	size_t n, cap;
	char *arena;
	size_t alen, acap;
	uint64_t total;
};

static const char *input_name(const char *input)
{
	if (input == NULL)
		return "the embedded sample text";
	if (strcmp(input, "-") == 0)
		return "standard input";
	return input;
}

static bool is_socket(const char *input)
{
	return input != NULL && strncmp(input, "socket://", 9) == 0;
}

/* --------------------------------------------------------------- check */

static int wc_check(const void *opts, char *errbuf, size_t errlen)
{
	const struct wc_opts *o = opts;
	char host[256], why[256];
	uint16_t port;
	double rate;

	if (is_socket(o->input) &&
	    sl_socket_url_parse(o->input, host, sizeof(host), &port, why, sizeof(why)) < 0)
		return sl_errbuf_set(errbuf, errlen, -EINVAL, "bad value for '--input': %s", why);
	if (sli_cli_parse_rate(o->rate, &rate) < 0)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "bad value '%s' for '--rate': expected lines per second, a "
				     "number >= 0",
				     o->rate);
	if (o->rate != NULL && is_socket(o->input))
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "option '--rate' does not apply to a socket input");
	if (o->bad_records != NULL && o->bad_records[0] == '\0')
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "bad value '' for '--bad-records': expected fail, skip or a "
				     "file path");
	return 0;
}

/* ----------------------------------------------------- user functions */

static inline bool is_word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static inline char lower(unsigned char c)
{
	return (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

/* Emit @w (@len bytes, not yet lowercased) with count 1. */
static int emit_word(struct sl_collector *out, const unsigned char *w, uint32_t len, int64_t ts)
{
	char small[WC_WORD_BUF];
	char *buf = small;
	struct wc_word e;
	int rc;

	if (len == 0)
		return 0;
	small[0] = '\0'; /* gcc -O3 cannot see that the loop below fills buf[0..len) */

	/* Long words are rare: a heap buffer for them keeps the common case on the stack. */
	if (len > sizeof(small)) {
		buf = malloc(len);
		if (buf == NULL)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < len; i++)
		buf[i] = lower(w[i]);
	rc = sl_collector_str(out, buf, len, &e.w);
	if (buf != small)
		free(buf);
	if (rc < 0)
		return rc;
	e.count = 1;
	return sl_emit(out, &e, ts, NULL);
}

static int tokenize(const void *in, int64_t ts, const struct sl_batch *src,
		    struct sl_collector *out, void *arg)
{
	const struct sl_line *line = in;
	const unsigned char *p = (const unsigned char *)sl_batch_str(src, line->text);
	uint32_t n = line->text.len, i = 0;

	(void)arg;
	while (i < n) {
		uint32_t start;
		int rc;

		while (i < n && !is_word_byte(p[i]))
			i++;
		if (i == n)
			break;
		start = i;
		while (i < n && is_word_byte(p[i]))
			i++;
		rc = emit_word(out, p + start, i - start, ts);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void word_key(const void *elem, const struct sl_batch *src, struct sl_key *out)
{
	const struct wc_word *w = elem;

	out->ptr = sl_batch_str(src, w->w);
	out->len = w->w.len;
}

static int sum_counts(void *acc, const void *in, void *arg)
{
	((struct wc_word *)acc)->count += ((const struct wc_word *)in)->count;
	return 0;
}

static int format_word(const void *elem, int64_t ts, const struct sl_batch *b, char *buf,
		       size_t len, void *arg)
{
	const struct wc_word *w = elem;

	return snprintf(buf, len, "%.*s,%" PRId64, (int)w->w.len, sl_batch_str(b, w->w), w->count);
}

/* --------------------------------------------------------- collect sink */

struct wc_sink {
	struct wc_job *j;
	const struct sl_subtask_info *info;
	void *text; /* the text sink's state, with --output */
};

static int sink_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	struct wc_sink *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL)
		return sl_errbuf_set(info->errbuf, info->errlen, -ENOMEM, "out of memory");
	s->j = arg;
	s->info = info;
	if (s->j->text_on) {
		rc = sl_text_sink_ops.open(&s->j->text, info, &s->text);
		if (rc < 0) {
			free(s);
			return rc;
		}
	}
	*state = s;
	return 0;
}

/* Append one final count to the table; the caller holds j->lock. */
static int collect_one(struct wc_job *j, const char *w, size_t len, int64_t count)
{
	if (j->n == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 1024;
		struct wc_entry *v = realloc(j->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		j->v = v;
		j->cap = cap;
	}
	if (len > j->acap - j->alen) {
		size_t cap = j->acap ? j->acap : 64 * 1024;
		char *a;

		while (cap - j->alen < len)
			cap *= 2;
		a = realloc(j->arena, cap);
		if (a == NULL)
			return -ENOMEM;
		j->arena = a;
		j->acap = cap;
	}
	memcpy(j->arena + j->alen, w, len);
	j->v[j->n++] = (struct wc_entry){ .off = j->alen, .len = len, .count = count };
	j->alen += len;
	j->total += (uint64_t)count;
	return 0;
}

static int sink_write(void *state, const struct sl_batch *b)
{
	struct wc_sink *s = state;
	struct wc_job *j = s->j;
	int rc = 0;

	if (s->text != NULL) {
		rc = sl_text_sink_ops.write(s->text, b);
		if (rc < 0)
			return rc;
	}
	pthread_mutex_lock(&j->lock);
	for (uint32_t i = 0; i < b->n && rc == 0; i++) {
		const struct wc_word *w = sl_batch_elem(b, i);

		rc = collect_one(j, sl_batch_str(b, w->w), w->w.len, w->count);
	}
	pthread_mutex_unlock(&j->lock);
	if (rc < 0)
		return sl_errbuf_set(s->info->errbuf, s->info->errlen, rc,
				     "out of memory collecting the counts");
	return 0;
}

static int sink_finish(void *state)
{
	struct wc_sink *s = state;

	return s->text != NULL ? sl_text_sink_ops.finish(s->text) : 0;
}

static void sink_close(void *state)
{
	struct wc_sink *s = state;

	if (s->text != NULL)
		sl_text_sink_ops.close(s->text);
	free(s);
}

static const struct sl_sink_ops wc_sink_ops = {
	.open = sink_open, .write = sink_write, .finish = sink_finish, .close = sink_close
};

/* --------------------------------------------------------------- build */

/* Copy the embedded sample into a memfd the line source can open by path. */
static int stage_sample(struct wc_job *j, char *errbuf, size_t errlen)
{
	size_t done = 0;

	j->memfd = memfd_create("sluice-sample", MFD_CLOEXEC);
	if (j->memfd < 0)
		goto fail;
	while (done < sli_sample_text_len) {
		ssize_t n = write(j->memfd, sli_sample_text + done, sli_sample_text_len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		done += (size_t)n;
	}
	snprintf(j->memfd_path, sizeof(j->memfd_path), "/proc/self/fd/%d", j->memfd);
	return 0;
fail : {
	int rc = errno ? -errno : -EIO;

	return sl_errbuf_set(errbuf, errlen, rc, "cannot stage the embedded sample text: %s",
			     sl_strerror(rc));
}
}

/* Stdin, FIFOs and character devices are streams: they cannot be split. */
static bool is_stream(const char *path)
{
	struct stat st;

	if (strcmp(path, "-") == 0)
		return true;
	return stat(path, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode));
}

static struct sl_stream *build_source(struct wc_job *j, struct sl_job *job, bool run, char *errbuf,
				      size_t errlen, int *rc)
{
	const struct wc_opts *o = j->o;
	const char *bad_path = j->policy == SL_BAD_FILE ? o->bad_records : NULL;
	struct sl_stream *s;
	char why[256];
	double rate = 0;

	sli_cli_parse_rate(o->rate, &rate); /* checked by wc_check() */
	if (j->kind == WC_IN_SOCKET) {
		*rc = sl_socket_url_parse(o->input, j->host, sizeof(j->host), &j->sock.port, why,
					  sizeof(why));
		if (*rc < 0) {
			sl_errbuf_set(errbuf, errlen, *rc, "%s", why);
			return NULL;
		}
		j->sock.host = j->host;
		j->sock.parse = sl_lines_parse_line;
		j->sock.bad_policy = j->policy;
		j->sock.bad_path = bad_path;
		j->src_name = "socket";
		/* One connection cannot be split. */
		return sl_set_parallelism(
		    sl_source(job, j->src_name, &sl_socket_ops, &j->sock, &sl_line_type), 1);
	}
	if (j->kind == WC_IN_SAMPLE) {
		if (run) {
			*rc = stage_sample(j, errbuf, errlen);
			if (*rc < 0)
				return NULL;
			j->lines.path = j->memfd_path;
		} else {
			j->lines.path = WC_SAMPLE; /* never opened by a plan */
		}
	} else {
		j->lines.path = o->input;
	}
	j->lines.parse = sl_lines_parse_line;
	j->lines.bad_policy = j->policy;
	j->lines.bad_path = bad_path;
	j->lines.rate = rate;
	j->src_name = "lines";
	s = sl_source(job, j->src_name, &sl_lines_ops, &j->lines, &sl_line_type);
	if (j->kind != WC_IN_SAMPLE && is_stream(o->input))
		s = sl_set_parallelism(s, 1);
	*rc = 0;
	return s;
}

static void wc_destroy(void *state)
{
	struct wc_job *j = state;

	if (j == NULL)
		return;
	if (j->memfd >= 0)
		close(j->memfd);
	pthread_mutex_destroy(&j->lock);
	free(j->v);
	free(j->arena);
	free(j);
}

static int wc_build(const void *opts, struct sl_job *job, bool run, void **state, char *errbuf,
		    size_t errlen)
{
	const struct wc_opts *o = opts;
	struct wc_job *j = calloc(1, sizeof(*j));
	struct sl_stream *s;
	int rc;

	*state = j;
	if (j == NULL)
		return sl_errbuf_set(errbuf, errlen, -ENOMEM, "out of memory");
	j->o = o;
	j->memfd = -1;
	pthread_mutex_init(&j->lock, NULL);
	j->job = job;
	if (o->bad_records == NULL || strcmp(o->bad_records, "fail") == 0)
		j->policy = SL_BAD_FAIL;
	else if (strcmp(o->bad_records, "skip") == 0)
		j->policy = SL_BAD_SKIP;
	else
		j->policy = SL_BAD_FILE;
	if (o->input == NULL)
		j->kind = WC_IN_SAMPLE;
	else if (is_socket(o->input))
		j->kind = WC_IN_SOCKET;
	else if (strcmp(o->input, "-") == 0)
		j->kind = WC_IN_STDIN;
	else
		j->kind = WC_IN_PATH;

	s = build_source(j, job, run, errbuf, errlen, &rc);
	if (rc < 0)
		return rc;
	s = sl_flat_map(s, "tokenize", tokenize, NULL, &wc_word_type);
	s = sl_reduce(sl_key_by(s, word_key), "count", sum_counts, NULL, SL_REDUCE_FINAL);
	sl_sink(s, "collect", &wc_sink_ops, j);

	if (o->output != NULL) {
		j->text_on = true;
		j->text.path = o->output;
		j->text.mode = SL_TEXT_MERGED;
		j->text.format = format_word;
		if (run) {
			rc = sl_text_sink_prepare(&j->text, errbuf, errlen);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* -------------------------------------------------------------- finish */

static int cmp_word(const void *a, const void *b, void *arena)
{
	const struct wc_entry *x = a, *y = b;
	const char *base = arena;
	int c = memcmp(base + x->off, base + y->off, x->len < y->len ? x->len : y->len);

	if (c != 0)
		return c;
	return (x->len > y->len) - (x->len < y->len);
}

static int cmp_count(const void *a, const void *b, void *arena)
{
	const struct wc_entry *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return cmp_word(a, b, arena);
}

/* Replace the first @from in @buf by @to (the error names a path the user never typed). */
static void reword(char *buf, size_t len, const char *from, const char *to)
{
	char *at = from[0] ? strstr(buf, from) : NULL;
	char tail[1024];

	if (at == NULL)
		return;
	snprintf(tail, sizeof(tail), "%s", at + strlen(from));
	snprintf(at, len - (size_t)(at - buf), "%s%s", to, tail);
}

/* The first error wins. A full disk often shows only at fflush. */
static int flush_stream(FILE *f)
{
	int err = 0;

	errno = 0;
	if (fflush(f) != 0)
		err = errno ? errno : EIO;
	if (ferror(f) && err == 0)
		err = EIO;
	return -err;
}

static int wc_finish(void *state, int rc, bool stopped, char *errbuf, size_t errlen)
{
	struct wc_job *j = state;
	const struct wc_opts *o = j->o;
	FILE *out = stdout;
	uint64_t bad = 0;
	size_t ntop;

	(void)stopped;
	if (rc < 0) {
		reword(errbuf, errlen, j->memfd_path, WC_SAMPLE);
		reword(errbuf, errlen, "'<stdout>'", "standard output");
		return rc;
	}
	/* Keep standard output machine-readable: the summary goes beside it. */
	if (o->output != NULL && strcmp(o->output, "-") == 0)
		out = stderr;
	if (j->n > 1) /* qsort_r() must not see the NULL of an empty table */
		qsort_r(j->v, j->n, sizeof(*j->v), cmp_count, j->arena);
	fprintf(out, "wordcount: %" PRIu64 " words, %zu distinct, in %s\n", j->total, j->n,
		input_name(o->input));
	ntop = (size_t)o->top < j->n ? (size_t)o->top : j->n;
	for (size_t i = 0; i < ntop; i++) {
		fprintf(out, "%" PRId64 " ", j->v[i].count);
		fwrite(j->arena + j->v[i].off, 1, j->v[i].len, out);
		fputc('\n', out);
	}
	rc = flush_stream(out);
	if (rc < 0)
		return sl_errbuf_set(errbuf, errlen, rc, "cannot write %s: %s",
				     out == stdout ? "standard output" : "standard error",
				     sl_strerror(rc));
	sl_job_op_counters(j->job, j->src_name, &bad, NULL);
	if (bad > 0 && j->policy == SL_BAD_SKIP)
		fprintf(stderr, "sluice: wordcount: skipped %" PRIu64 " bad record%s\n", bad,
			bad == 1 ? "" : "s");
	else if (bad > 0 && j->policy == SL_BAD_FILE)
		fprintf(stderr, "sluice: wordcount: wrote %" PRIu64 " bad record%s to '%s'\n", bad,
			bad == 1 ? "" : "s", o->bad_records);
	return 0;
}

const struct sli_job_def sli_job_wordcount = {
	.name = "wordcount",
	.summary = "count the words of text files, standard input or a socket",
	.description =
	    "Counts the words of a file, a directory of files, standard input, a TCP\n"
	    "server (socket://HOST:PORT) or the embedded sample text, and prints the most\n"
	    "frequent ones as 'count word' lines, most frequent first, ties in word order.\n"
	    "A word is a run of ASCII letters and digits, lowercased; every other byte\n"
	    "separates words. With --output -, the word list goes to standard output and\n"
	    "the summary to standard error.\n"
	    "\n"
	    "Runs as a dataflow job: lines -> tokenize -> key by word -> count -> collect,\n"
	    "with --parallelism subtasks per operator (one for stdin, FIFOs and sockets,\n"
	    "which cannot be split). Lines longer than --max-record-size are bad records\n"
	    "(see --bad-records). SIGINT or SIGTERM stops reading, counts what was read and\n"
	    "prints the results; a second signal exits at once (status 130).\n",
	.opts = wc_options,
	.opts_size = sizeof(struct wc_opts),
	.opts_default = &wc_defaults,
	.check = wc_check,
	.build = wc_build,
	.finish = wc_finish,
	.destroy = wc_destroy,
};
