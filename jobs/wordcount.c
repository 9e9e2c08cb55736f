/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wordcount.c — the wordcount built-in job, interim version.
 *
 * The dataflow runtime does not exist yet, so this is one honest loop on
 * the calling thread: read the input in 64 KiB chunks, split it into words,
 * count them in a hash table, print the most frequent. When the runtime
 * lands, wordcount is rebuilt on the stream API (source -> flat_map ->
 * key_by -> count) and gains --parallelism; until then it does not accept
 * options it could not honour.
 *
 * A word is a maximal run of ASCII letters and digits, lowercased; every
 * other byte (punctuation, whitespace, CR, NUL, each byte of a UTF-8
 * sequence) separates words. The word being assembled lives in its own
 * buffer that survives chunk boundaries, so a word split across two reads
 * is counted once. Keys are copied once, into a single arena, when first
 * seen; the table stores offsets into it and never allocates per word.
 *
 * Threads: everything here runs on the thread that calls run().
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_common.h>
#include <sluice/sl_error.h>
#include <sluice/sl_numa.h>

#include "jobs.h"

#define WC_CHUNK     (64 * 1024)
#define WC_TOP_MAX   1000000
#define WC_TOP_DFLT  10
#define WC_MIN_SLOTS 1024

struct wc_opts {
	const char *input;  /* NULL: embedded sample text; "-": stdin */
	const char *output; /* NULL: none; "-": stdout */
	long long top;
};

static const struct wc_opts wc_defaults = {
	.input = NULL,
	.output = NULL,
	.top = WC_TOP_DFLT,
};

static const struct sli_cli_opt wc_options[] = {
	{
	    .name = "input",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct wc_opts, input),
	    .metavar = "PATH",
	    .help = "file to count, '-' for stdin (default: the embedded sample text)",
	},
	{
	    .name = "output",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct wc_opts, output),
	    .metavar = "PATH",
	    .help = "also write every word as 'word,count', sorted by word ('-': stdout)",
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

/* One distinct word. count == 0 marks an empty slot. */
struct wc_entry {
	uint64_t hash;
	uint64_t count;
	size_t off; /* of the key in the arena; offsets survive the arena's realloc */
	size_t len;
};

struct wc_table {
	struct wc_entry *slots;
	size_t cap; /* power of two */
	size_t used;
	char *arena;
	size_t arena_len, arena_cap;
	uint64_t total;
};

/* Tokenizer state that must outlive a chunk. */
struct wc_state {
	struct wc_table t;
	unsigned char fold[256]; /* byte -> lowercase letter or digit, 0 for separators */
	unsigned char *word;	 /* the word being assembled */
	size_t wlen, wcap;
};

/* FNV-1a, then a murmur3 finalizer so that the low bits used as index mix well. */
static uint64_t wc_hash(const unsigned char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static int wc_table_init(struct wc_table *t)
{
	memset(t, 0, sizeof(*t));
	t->slots = calloc(WC_MIN_SLOTS, sizeof(*t->slots));
	if (t->slots == NULL)
		return -ENOMEM;
	t->cap = WC_MIN_SLOTS;
	return 0;
}

static void wc_table_fini(struct wc_table *t)
{
	free(t->slots);
	free(t->arena);
	memset(t, 0, sizeof(*t));
}

static int wc_table_grow(struct wc_table *t)
{
	size_t cap = t->cap * 2;
	struct wc_entry *slots;

	if (cap < t->cap || cap > SIZE_MAX / sizeof(*slots))
		return -ENOMEM;
	slots = calloc(cap, sizeof(*slots));
	if (slots == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		const struct wc_entry *e = &t->slots[i];
		size_t j;

		if (e->count == 0)
			continue;
		for (j = e->hash & (cap - 1); slots[j].count != 0; j = (j + 1) & (cap - 1))
			;
		slots[j] = *e;
	}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return 0;
}

static int wc_arena_append(struct wc_table *t, const unsigned char *s, size_t len)
{
	if (len > t->arena_cap - t->arena_len) {
		size_t cap = t->arena_cap ? t->arena_cap : 64 * 1024;
		char *arena;

		while (cap - t->arena_len < len) {
			if (cap > SIZE_MAX / 2)
				return -ENOMEM;
			cap *= 2;
		}
		arena = realloc(t->arena, cap);
		if (arena == NULL)
			return -ENOMEM;
		t->arena = arena;
		t->arena_cap = cap;
	}
	memcpy(t->arena + t->arena_len, s, len);
	t->arena_len += len;
	return 0;
}

/* Count one occurrence of the lowercased word @w. */
static int wc_table_add(struct wc_table *t, const unsigned char *w, size_t len)
{
	uint64_t h = wc_hash(w, len);
	size_t i;
	int rc;

	for (i = h & (t->cap - 1); t->slots[i].count != 0; i = (i + 1) & (t->cap - 1)) {
		struct wc_entry *e = &t->slots[i];

		if (e->hash == h && e->len == len && memcmp(t->arena + e->off, w, len) == 0) {
			e->count++;
			t->total++;
			return 0;
		}
	}
	/* A new word. Keep the load factor at or under 3/4 so probes stay short. */
	if ((t->used + 1) > t->cap / 4 * 3) {
		rc = wc_table_grow(t);
		if (rc < 0)
			return rc;
		for (i = h & (t->cap - 1); t->slots[i].count != 0; i = (i + 1) & (t->cap - 1))
			;
	}
	rc = wc_arena_append(t, w, len);
	if (rc < 0)
		return rc;
	t->slots[i] =
	    (struct wc_entry){ .hash = h, .count = 1, .off = t->arena_len - len, .len = len };
	t->used++;
	t->total++;
	return 0;
}

static int wc_state_init(struct wc_state *st)
{
	memset(st, 0, sizeof(*st));
	for (int c = 0; c < 256; c++) {
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			st->fold[c] = (unsigned char)c;
		else if (c >= 'A' && c <= 'Z')
			st->fold[c] = (unsigned char)(c - 'A' + 'a');
	}
	return wc_table_init(&st->t);
}

static void wc_state_fini(struct wc_state *st)
{
	wc_table_fini(&st->t);
	free(st->word);
	st->word = NULL;
}

/* Ends the word being assembled, if any. */
static int wc_flush_word(struct wc_state *st)
{
	int rc = 0;

	if (st->wlen > 0)
		rc = wc_table_add(&st->t, st->word, st->wlen);
	st->wlen = 0;
	return rc;
}

/* Tokenize one chunk; a word may continue into the next one. */
static int wc_feed(struct wc_state *st, const unsigned char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = st->fold[buf[i]];
		int rc;

		if (c == 0) {
			rc = wc_flush_word(st);
			if (rc < 0)
				return rc;
			continue;
		}
		if (st->wlen == st->wcap) {
			size_t cap = st->wcap ? st->wcap * 2 : 64;
			unsigned char *w;

			if (cap < st->wcap)
				return -ENOMEM;
			w = realloc(st->word, cap);
			if (w == NULL)
				return -ENOMEM;
			st->word = w;
			st->wcap = cap;
		}
		st->word[st->wlen++] = c;
	}
	return 0;
}

static const char *input_name(const char *input)
{
	if (input == NULL)
		return "the embedded sample text";
	if (strcmp(input, "-") == 0)
		return "standard input";
	return input;
}

/* Quote a path the user typed, not a description such as "standard input". */
static const char *quote(const char *path)
{
	return strcmp(path, "-") == 0 ? "" : "'";
}

static int wc_count(struct wc_state *st, const char *input, char *errbuf, size_t errlen)
{
	unsigned char *buf;
	FILE *f;
	int rc = 0;

	if (input == NULL) {
		for (size_t off = 0; off < sli_sample_text_len && rc == 0; off += WC_CHUNK) {
			size_t n = sli_sample_text_len - off;

			rc = wc_feed(st, sli_sample_text + off, n < WC_CHUNK ? n : WC_CHUNK);
		}
		goto out;
	}

	if (strcmp(input, "-") == 0) {
		f = stdin;
	} else {
		f = fopen(input, "rb");
		if (f == NULL) {
			rc = -errno;
			return sl_errbuf_set(errbuf, errlen, rc, "cannot open '%s': %s", input,
					     sl_strerror(rc));
		}
	}
	buf = malloc(WC_CHUNK);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto close;
	}
	for (;;) {
		size_t n;

		errno = 0;
		n = fread(buf, 1, WC_CHUNK, f);
		if (n < WC_CHUNK && ferror(f)) {
			rc = errno ? -errno : -EIO;
			sl_errbuf_set(errbuf, errlen, rc, "cannot read %s%s%s: %s", quote(input),
				      input_name(input), quote(input), sl_strerror(rc));
			break;
		}
		if (n > 0)
			rc = wc_feed(st, buf, n);
		if (rc < 0 || n < WC_CHUNK)
			break;
	}
	free(buf);
close:
	if (f != stdin)
		fclose(f); /* read-only: nothing to lose */
out:
	if (rc == 0)
		rc = wc_flush_word(st);
	if (rc == -ENOMEM)
		sl_errbuf_set(errbuf, errlen, rc, "out of memory counting %s", input_name(input));
	return rc;
}

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

/* Move the used slots to the front; the table is no longer a hash table after this. */
static void wc_compact(struct wc_table *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->cap; i++) {
		if (t->slots[i].count != 0)
			t->slots[n++] = t->slots[i];
	}
	SL_ASSERT(n == t->used);
}

/* Finish writing @f: the first error wins. A full disk often shows only at fflush or fclose. */
static int finish_stream(FILE *f, int err, bool do_close)
{
	errno = 0;
	if (fflush(f) != 0 && err == 0)
		err = errno ? errno : EIO;
	if (ferror(f) && err == 0)
		err = EIO;
	if (do_close && fclose(f) != 0 && err == 0)
		err = errno ? errno : EIO;
	return -err;
}

static int write_all(const struct wc_table *t, const char *output, char *errbuf, size_t errlen)
{
	bool to_stdout = strcmp(output, "-") == 0;
	FILE *f = to_stdout ? stdout : fopen(output, "w");
	int err = 0, rc;

	if (f == NULL) {
		rc = -errno;
		return sl_errbuf_set(errbuf, errlen, rc, "cannot open '%s': %s", output,
				     sl_strerror(rc));
	}
	for (size_t i = 0; i < t->used; i++) {
		const struct wc_entry *e = &t->slots[i];

		errno = 0;
		fwrite(t->arena + e->off, 1, e->len, f);
		fprintf(f, ",%" PRIu64 "\n", e->count);
		if (ferror(f)) {
			err = errno ? errno : EIO;
			break;
		}
	}
	rc = finish_stream(f, err, !to_stdout);
	if (rc < 0)
		return sl_errbuf_set(errbuf, errlen, rc, "cannot write %s%s%s: %s", quote(output),
				     to_stdout ? "standard output" : output, quote(output),
				     sl_strerror(rc));
	return 0;
}

static int wc_run(const void *opts, char *errbuf, size_t errlen)
{
	const struct wc_opts *o = opts;
	struct wc_state st;
	FILE *out = stdout;
	size_t ntop;
	int rc;

	rc = wc_state_init(&st);
	if (rc < 0) {
		sl_errbuf_set(errbuf, errlen, rc, "out of memory");
		goto out;
	}
	rc = wc_count(&st, o->input, errbuf, errlen);
	if (rc < 0)
		goto out;
	wc_compact(&st.t);

	if (o->output != NULL) {
		qsort_r(st.t.slots, st.t.used, sizeof(*st.t.slots), cmp_word, st.t.arena);
		rc = write_all(&st.t, o->output, errbuf, errlen);
		if (rc < 0)
			goto out;
		/* Keep standard output machine-readable: the summary goes beside it. */
		if (strcmp(o->output, "-") == 0)
			out = stderr;
	}

	qsort_r(st.t.slots, st.t.used, sizeof(*st.t.slots), cmp_count, st.t.arena);
	fprintf(out, "wordcount: %" PRIu64 " words, %zu distinct, in %s\n", st.t.total, st.t.used,
		input_name(o->input));
	ntop = (size_t)o->top < st.t.used ? (size_t)o->top : st.t.used;
	for (size_t i = 0; i < ntop; i++) {
		const struct wc_entry *e = &st.t.slots[i];

		fprintf(out, "%" PRIu64 " ", e->count);
		fwrite(st.t.arena + e->off, 1, e->len, out);
		fputc('\n', out);
	}
	rc = finish_stream(out, 0, false);
	if (rc < 0) {
		sl_errbuf_set(errbuf, errlen, rc, "cannot write %s: %s",
			      out == stdout ? "standard output" : "standard error",
			      sl_strerror(rc));
	}
out:
	wc_state_fini(&st);
	return rc;
}

static int wc_plan_json(const struct wc_opts *o, const struct sl_topo *topo, FILE *f)
{
	fputs("{\n  \"job\": \"wordcount\",\n", f);
	fputs("  \"runtime\": \"not built\",\n", f);
	fputs("  \"execution\": \"single-threaded loop on the calling thread\",\n", f);
	fputs("  \"stages\": [\"read\", \"tokenize\", \"count\", \"top-n\"],\n", f);
	fprintf(f, "  \"threads\": 1,\n  \"chunk_bytes\": %d,\n", WC_CHUNK);
	fputs("  \"input\": ", f);
	if (o->input == NULL)
		fputs("null", f);
	else
		sli_cli_json_string(f, o->input);
	if (o->input == NULL)
		fprintf(f, ",\n  \"embedded_input_bytes\": %zu", sli_sample_text_len);
	fputs(",\n  \"output\": ", f);
	if (o->output == NULL)
		fputs("null", f);
	else
		sli_cli_json_string(f, o->output);
	fprintf(f, ",\n  \"top\": %lld,\n", o->top);
	fprintf(f,
		"  \"machine\": {\"usable_pus\": %u, \"cores\": %u, \"numa_nodes\": %u, "
		"\"packages\": %u}\n}\n",
		sl_topo_ncpus(topo), sl_topo_ncores(topo), sl_topo_nnodes(topo),
		sl_topo_npackages(topo));
	return 0;
}

static int wc_plan(const void *opts, const struct sl_topo *topo, enum sli_format fmt, FILE *f,
		   char *errbuf, size_t errlen)
{
	const struct wc_opts *o = opts;
	unsigned ncpus = sl_topo_ncpus(topo);

	if (fmt == SLI_FORMAT_JSON)
		return wc_plan_json(o, topo, f);

	fprintf(f, "job wordcount\n");
	fprintf(f, "  runtime:   the dataflow runtime is not built yet: no operators, tasks,\n"
		   "             exchanges or worker threads exist\n");
	fprintf(f,
		"  execution: one single-threaded loop on the calling thread:\n"
		"             read (%d KiB chunks) -> tokenize -> count (hash table) -> top-N\n",
		WC_CHUNK / 1024);
	if (o->input == NULL)
		fprintf(f, "  input:     the embedded sample text (%zu bytes)\n",
			sli_sample_text_len);
	else
		fprintf(f, "  input:     %s\n", input_name(o->input));
	fprintf(f, "  output:    the %lld most frequent words to standard %s\n", o->top,
		o->output != NULL && strcmp(o->output, "-") == 0 ? "error" : "output");
	if (o->output != NULL)
		fprintf(f, "             every word as 'word,count' to %s\n",
			strcmp(o->output, "-") == 0 ? "standard output" : o->output);
	fprintf(f,
		"  machine:   %u usable PU%s (%u core%s, %u NUMA node%s); wordcount uses one\n"
		"             thread, not pinned\n",
		ncpus, ncpus == 1 ? "" : "s", sl_topo_ncores(topo),
		sl_topo_ncores(topo) == 1 ? "" : "s", sl_topo_nnodes(topo),
		sl_topo_nnodes(topo) == 1 ? "" : "s");
	return 0;
}

const struct sli_job_def sli_job_wordcount = {
	.name = "wordcount",
	.summary = "count the words of a text file (interim: one single-threaded loop)",
	.description =
	    "Counts the words of a file, standard input or the embedded sample text and\n"
	    "prints the most frequent ones as 'count word' lines, most frequent first, ties\n"
	    "in word order. A word is a run of ASCII letters and digits, lowercased; every\n"
	    "other byte separates words. With --output -, the word list goes to standard\n"
	    "output and the summary to standard error.\n"
	    "\n"
	    "The dataflow runtime is not built yet: this runs as one loop on the calling\n"
	    "thread. It will move onto the stream API, with --parallelism, when the\n"
	    "runtime exists.\n",
	.opts = wc_options,
	.opts_size = sizeof(struct wc_opts),
	.opts_default = &wc_defaults,
	.run = wc_run,
	.plan = wc_plan,
};
