/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_connectors.c — the generator, the line source, the text sink and the
 * null sink, driven directly through their ops (no runtime).
 *
 * Oracles are independent of the code under test: the tests build their
 * input from a list of lines they generate (seeded), and compute what must
 * come out — the lines in order, the dead-letter file byte for byte, which
 * subtask owns which line — from that list and the documented range rule,
 * never from a run of the source itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sluice/sl_connectors.h>

#include "sl_test.h"
#include "sli_snap.h"

/* ------------------------------------------------------------ helpers */

static char tmpdir[256];

static const char *tpath(const char *name)
{
	static char buf[4][PATH_MAX];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmpdir, name);
	return buf[k];
}

static uint64_t rnd_state;

static uint64_t rnd(void)
{
	uint64_t x = rnd_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rnd_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t rnd_below(uint64_t n)
{
	return rnd() % n;
}

static void write_file(const char *path, const char *bytes, size_t len)
{
	FILE *f = fopen(path, "wb");

	CU_ASSERT_FATAL(f != NULL);
	if (len)
		CU_ASSERT_FATAL(fwrite(bytes, 1, len, f) == len);
	CU_ASSERT_FATAL(fclose(f) == 0);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, r;

	if (f == NULL) {
		*len = 0;
		return NULL;
	}
	do {
		if (n + 65536 > cap) {
			cap = (n + 65536) * 2;
			buf = realloc(buf, cap + 1);
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* A growable byte buffer. */
struct buf {
	char *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const void *bytes, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		b->cap = (b->len + len + 1) * 2;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, bytes, len);
	b->len += len;
	b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_fmt(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_fmt(struct buf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	buf_add(b, tmp, (size_t)n);
}

/* A list of strings. */
struct strs {
	char **v;
	size_t *len;
	size_t n, cap;
};

static void strs_add(struct strs *s, const char *p, size_t len)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		s->len = realloc(s->len, s->cap * sizeof(*s->len));
	}
	s->v[s->n] = malloc(len + 1);
	memcpy(s->v[s->n], p, len);
	s->v[s->n][len] = '\0';
	s->len[s->n] = len;
	s->n++;
}

static void strs_free(struct strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	free(s->len);
	memset(s, 0, sizeof(*s));
}

static int strs_equal(const struct strs *a, const struct strs *b)
{
	if (a->n != b->n) {
		fprintf(stderr, "  %zu lines, expected %zu\n", a->n, b->n);
		return 0;
	}
	for (size_t i = 0; i < a->n; i++) {
		if (a->len[i] != b->len[i] || memcmp(a->v[i], b->v[i], a->len[i]) != 0) {
			fprintf(stderr, "  line %zu differs: '%.60s' vs expected '%.60s'\n", i,
				a->v[i], b->v[i]);
			return 0;
		}
	}
	return 1;
}

/* One subtask's context. */
struct run {
	struct sl_subtask_info info;
	struct sl_counters counters;
	char err[1024];
};

static void run_init(struct run *r, unsigned idx, unsigned p, uint32_t max_record)
{
	memset(r, 0, sizeof(*r));
	r->info.op_name = "test";
	r->info.index = idx;
	r->info.parallelism = p;
	r->info.max_parallelism = 128;
	r->info.pu = -1;
	r->info.batch_size = 64;
	r->info.max_record_size = max_record;
	r->info.counters = &r->counters;
	r->info.errbuf = r->err;
	r->info.errlen = sizeof(r->err);
}

static uint64_t bad_count(struct run *r)
{
	return atomic_load_explicit(&r->counters.bad_records, memory_order_relaxed);
}

/* Restore @st through @ops from what @from holds; errors go to r->err. */
static int restore_op(const struct sl_source_ops *ops, void *st, const struct sl_snap_writer *from,
		      struct run *r)
{
	struct sl_snap_reader rd;
	int rc;

	CU_ASSERT_FATAL(
	    sli_snap_reader_from_writer(&rd, from, NULL, NULL, r->err, sizeof(r->err)) == 0);
	rc = ops->restore(st, &rd);
	sli_snap_reader_free(&rd);
	return rc;
}

/* The watermark splits a source reported: each record's, and how many ended. */
struct splits {
	struct buf of; /* a uint32_t per record */
	unsigned ends; /* polls returning SL_SOURCE_SPLIT_END */
	uint32_t n;    /* out->nsplits of the last poll with records */
};

/*
 * Open subtask r->info.index, restore it from @from (unless NULL), poll
 * it with batches of @cap elements (arena up to @arena_max), append each
 * struct sl_line to @out (and its split to @sp unless NULL). After @stop
 * polls (unless < 0), snapshot into @to and return 1. Return 0 at the
 * end of input, or the first error of open, restore, poll or snapshot.
 */
static int drain_cut(const struct sl_source_ops *ops, void *conf, struct run *r, uint32_t cap,
		     uint32_t arena_max, struct strs *out, struct splits *sp,
		     const struct sl_snap_writer *from, long stop, struct sl_snap_writer *to)
{
	struct sl_batch *b = NULL;
	void *st = NULL;
	long zero_polls = 0, polls = 0;
	int rc;

	rc = ops->open(conf, &r->info, &st);
	if (rc < 0)
		return rc;
	rc = from != NULL ? restore_op(ops, st, from, r) : 0;
	if (rc < 0) {
		ops->close(st);
		return rc;
	}
	CU_ASSERT_FATAL(sl_batch_create(NULL, cap, sizeof(struct sl_line), arena_max, &b) == 0);
	for (;;) {
		if (polls++ == stop) {
			rc = ops->snapshot(st, to);
			rc = rc < 0 ? rc : 1;
			break;
		}
		sl_batch_clear(b);
		rc = ops->poll(st, b);
		if (rc < 0)
			break;
		CU_ASSERT((uint32_t)(rc & ~(SL_SOURCE_END | SL_SOURCE_SPLIT_END)) == b->n);
		CU_ASSERT(b->n <= b->cap);
		for (uint32_t i = 0; i < b->n; i++) {
			const struct sl_line *e = sl_batch_elem(b, i);

			CU_ASSERT(e->text.off + e->text.len <= b->arena_used);
			strs_add(out, sl_batch_str(b, e->text), e->text.len);
			if (sp != NULL)
				buf_add(&sp->of, &b->split, sizeof(b->split));
		}
		if (sp != NULL && b->n > 0)
			sp->n = b->nsplits;
		if (sp != NULL && (rc & SL_SOURCE_SPLIT_END))
			sp->ends++;
		if (rc & SL_SOURCE_END) {
			/* A cut right after the end: the restored source ends at once. */
			rc = polls == stop ? ops->snapshot(st, to) : 0;
			rc = rc < 0 || polls != stop ? rc : 1;
			break;
		}
		zero_polls = b->n ? 0 : zero_polls + 1;
		if (zero_polls > 1000000) {
			CU_FAIL("the source returns 0 forever");
			rc = -ETIME;
			break;
		}
	}
	sl_batch_destroy(b);
	ops->close(st);
	return rc;
}

/* Poll subtask r->info.index to the end: drain_cut() without a checkpoint. */
static int drain(const struct sl_source_ops *ops, void *conf, struct run *r, uint32_t cap,
		 uint32_t arena_max, struct strs *out)
{
	return drain_cut(ops, conf, r, cap, arena_max, out, NULL, NULL, -1, NULL);
}

/* ------------------------------------------------- random line inputs */

/*
 * A generated input: the bytes of each file and, independently, the
 * lines they hold (as written: without the terminator), with their
 * global start offsets. The oracle applies the documented rules (strip
 * one trailing '\r', drop blank lines) to these, not to the bytes.
 */
struct input {
	struct buf file[8];
	size_t nfiles;
	struct strs raw;   /* raw line contents, in order */
	uint64_t *start;   /* global offset of each raw line */
	unsigned *file_of; /* file index of each raw line */
	unsigned *lineno;  /* 1-based line number in its file */
	size_t cap;
	uint64_t total;
};

static void input_line(struct input *in, unsigned f, const char *s, size_t len, bool nl,
		       unsigned lineno)
{
	if (in->raw.n == in->cap) {
		in->cap = in->cap ? in->cap * 2 : 64;
		in->start = realloc(in->start, in->cap * sizeof(*in->start));
		in->file_of = realloc(in->file_of, in->cap * sizeof(*in->file_of));
		in->lineno = realloc(in->lineno, in->cap * sizeof(*in->lineno));
	}
	in->start[in->raw.n] = in->total;
	in->file_of[in->raw.n] = f;
	in->lineno[in->raw.n] = lineno;
	strs_add(&in->raw, s, len);
	buf_add(&in->file[f], s, len);
	in->total += len;
	if (nl) {
		buf_add(&in->file[f], "\n", 1);
		in->total++;
	}
}

/* Random lines: text, blank, "\r"-only, CRLF, '\r' inside, a missing final '\n'. */
static void input_random(struct input *in, size_t nfiles, unsigned max_lines, unsigned max_len)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789 ,;\t\r";
	char line[4096];

	memset(in, 0, sizeof(*in));
	in->nfiles = nfiles;
	for (unsigned f = 0; f < nfiles; f++) {
		unsigned n = rnd_below(4) == 0 ? 0 : (unsigned)rnd_below(max_lines + 1);

		buf_add(&in->file[f], "", 0);
		for (unsigned i = 0; i < n; i++) {
			unsigned kind = (unsigned)rnd_below(10);
			size_t len = 0;

			if (kind == 0) {
				len = 0; /* blank */
			} else if (kind == 1) {
				line[len++] = '\r'; /* blank once stripped */
			} else {
				size_t want = 1 + rnd_below(rnd_below(4) == 0 ? max_len : 12);

				while (len < want)
					line[len++] = alpha[rnd_below(sizeof(alpha) - 1)];
				if (kind == 2)
					line[len++] = '\r'; /* CRLF */
			}
			input_line(in, f, line, len, i + 1 < n || rnd_below(3) != 0, i + 1);
		}
	}
}

static void input_free(struct input *in)
{
	for (size_t f = 0; f < in->nfiles; f++)
		free(in->file[f].p);
	strs_free(&in->raw);
	free(in->start);
	free(in->file_of);
	free(in->lineno);
}

/* The documented content of raw line @i, or false when it is blank. */
static bool expect_line(const struct input *in, size_t i, size_t *len)
{
	*len = in->raw.len[i];
	if (*len > 0 && in->raw.v[i][*len - 1] == '\r')
		(*len)--;
	return *len > 0;
}

static void expected_lines(const struct input *in, struct strs *out)
{
	for (size_t i = 0; i < in->raw.n; i++) {
		size_t len;

		if (expect_line(in, i, &len))
			strs_add(out, in->raw.v[i], len);
	}
}

/* The subtask of p whose range [s*T/p, (s+1)*T/p) holds @off (by the documented rule). */
static unsigned owner(uint64_t off, uint64_t total, unsigned p)
{
	__extension__ typedef unsigned __int128 u128;

	for (unsigned s = 0; s < p; s++) {
		uint64_t a = (uint64_t)((u128)s * total / p);
		uint64_t b = (uint64_t)((u128)(s + 1) * total / p);

		if (off >= a && off < b)
			return s;
	}
	return p; /* no owner: cannot happen for off < total */
}

static void mkdir_clean(const char *dir)
{
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CU_ASSERT_FATAL(system(cmd) == 0);
	CU_ASSERT_FATAL(mkdir(dir, 0755) == 0);
}

/* ---------------------------------------------------------- generator */

struct gel {
	uint64_t idx;
	uint64_t val;
	uint32_t small; /* followed by padding the source must zero */
};

static const struct sl_type gel_type = SL_TYPE(struct gel);

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static void gfill(uint64_t i, uint64_t seed, void *elem, int64_t *ts, void *arg)
{
	struct gel *g = elem;

	CU_ASSERT(*ts == 0);
	CU_ASSERT(g->idx == 0 && g->val == 0);
	g->idx = i;
	g->val = mix(seed ^ (i * 0x9E3779B97F4A7C15ULL));
	g->small = (uint32_t)i;
	*ts = (int64_t)i * 10;
}

/*
 * Run subtask r->info.index of a bounded generator with batches of @cap,
 * restored from @from (unless NULL); append its elements and timestamps.
 * After @stop polls (unless < 0) snapshot into @to and return 1; 0 at the
 * end, or the first error.
 */
static int gen_cut(struct sl_gen_conf *conf, struct run *r, uint32_t cap, struct gel *out,
		   int64_t *ts, size_t *n, const struct sl_snap_writer *from, long stop,
		   struct sl_snap_writer *to)
{
	struct sl_batch *b;
	long polls = 0;
	void *st;
	int rc;

	rc = sl_gen_ops.open(conf, &r->info, &st);
	if (rc < 0)
		return rc;
	rc = from != NULL ? restore_op(&sl_gen_ops, st, from, r) : 0;
	if (rc < 0) {
		sl_gen_ops.close(st);
		return rc;
	}
	CU_ASSERT_FATAL(sl_batch_create(NULL, cap, sizeof(struct gel), 0, &b) == 0);
	for (;;) {
		if (polls++ == stop) {
			rc = sl_gen_ops.snapshot(st, to);
			rc = rc < 0 ? rc : 1;
			break;
		}
		sl_batch_clear(b);
		memset(b->data, 0xAB, (size_t)b->cap * b->elem_size); /* the source must zero */
		rc = sl_gen_ops.poll(st, b);
		if (rc < 0)
			break;
		CU_ASSERT((uint32_t)(rc & ~SL_SOURCE_END) == b->n);
		memcpy(out + *n, b->data, (size_t)b->n * sizeof(struct gel));
		memcpy(ts + *n, b->ts, b->n * sizeof(int64_t));
		*n += b->n;
		if (rc & SL_SOURCE_END) {
			rc = polls == stop ? sl_gen_ops.snapshot(st, to) : 0;
			rc = rc < 0 || polls != stop ? rc : 1;
			break;
		}
		CU_ASSERT_FATAL(b->n > 0); /* no rate: never empty before the end */
	}
	sl_batch_destroy(b);
	sl_gen_ops.close(st);
	return rc;
}

/* Run subtask idx of p of a bounded generator; append its elements and timestamps. */
static int gen_drain(struct sl_gen_conf *conf, unsigned idx, unsigned p, struct gel *out,
		     int64_t *ts, size_t *n)
{
	struct run r;

	run_init(&r, idx, p, 1 << 20);
	return gen_cut(conf, &r, 1 + (uint32_t)rnd_below(97), out, ts, n, NULL, -1, NULL);
}

static void test_gen_determinism(void)
{
	static const unsigned ps[] = { 1, 2, 4, 7 };
	static const uint64_t counts[] = { 1000, 5, 1, 7919 };

	rnd_state = 42;
	for (size_t c = 0; c < SL_ARRAY_SIZE(counts); c++) {
		uint64_t count = counts[c];
		struct sl_gen_conf conf = {
			.count = count, .seed = 1234 + c, .type = &gel_type, .fill = gfill
		};
		struct gel *one = calloc(count, sizeof(*one)), *all = calloc(count, sizeof(*all));
		int64_t *ts1 = calloc(count, sizeof(*ts1)), *ts = calloc(count, sizeof(*ts));
		size_t n1 = 0;

		CU_ASSERT_FATAL(gen_drain(&conf, 0, 1, one, ts1, &n1) == 0);
		CU_ASSERT_FATAL(n1 == count);
		/* Independent check of the single run: element i is fill(i). */
		for (uint64_t i = 0; i < count; i++) {
			struct gel e;

			memset(&e, 0, sizeof(e));
			e.idx = i;
			e.val = mix(conf.seed ^ (i * 0x9E3779B97F4A7C15ULL));
			e.small = (uint32_t)i;
			CU_ASSERT(memcmp(&one[i], &e, sizeof(e)) == 0);
			CU_ASSERT(ts1[i] == (int64_t)i * 10);
		}
		for (size_t k = 1; k < SL_ARRAY_SIZE(ps); k++) {
			unsigned p = ps[k];
			size_t n = 0;

			for (unsigned s = 0; s < p; s++) {
				size_t before = n;

				CU_ASSERT_FATAL(gen_drain(&conf, s, p, all, ts, &n) == 0);
				/* Subtask s owns [s*count/p, (s+1)*count/p). */
				CU_ASSERT(before == s * count / p);
				CU_ASSERT(n == (s + 1) * count / p);
			}
			CU_ASSERT_FATAL(n == count);
			/* Concatenated in subtask order, byte-identical to the single run. */
			CU_ASSERT(memcmp(all, one, count * sizeof(*one)) == 0);
			CU_ASSERT(memcmp(ts, ts1, count * sizeof(*ts)) == 0);
		}
		free(one);
		free(all);
		free(ts1);
		free(ts);
	}
}

/* The batch form of gfill: writes every byte, since batch elements are not zeroed. */
static void gfill_batch(uint64_t first, uint64_t step, uint32_t n, uint64_t seed, void *elems,
			int64_t *ts, void *arg)
{
	struct gel *g = elems;

	CU_ASSERT(arg == &gel_type);
	for (uint32_t k = 0; k < n; k++) {
		uint64_t i = first + k * step;

		memset(&g[k], 0, sizeof(g[k]));
		g[k].idx = i;
		g[k].val = mix(seed ^ (i * 0x9E3779B97F4A7C15ULL));
		g[k].small = (uint32_t)i;
		ts[k] = (int64_t)i * 10;
	}
}

/* fill_batch gives byte for byte what fill gives, bounded at every p and unbounded (strided). */
static void test_gen_fill_batch(void)
{
	static const unsigned ps[] = { 1, 2, 4, 7 };
	const uint64_t count = 3001;
	struct sl_gen_conf one = { .count = count, .seed = 99, .type = &gel_type, .fill = gfill };
	struct sl_gen_conf bat = { .count = count,
				   .seed = 99,
				   .type = &gel_type,
				   .fill_batch = gfill_batch,
				   .arg = (void *)&gel_type };
	struct gel *ref = calloc(count, sizeof(*ref)), *got = calloc(count, sizeof(*got));
	int64_t *tref = calloc(count, sizeof(*tref)), *tgot = calloc(count, sizeof(*tgot));
	struct sl_batch *b;
	struct run r;
	size_t nref = 0;
	void *st;

	rnd_state = 7;
	CU_ASSERT_FATAL(gen_drain(&one, 0, 1, ref, tref, &nref) == 0 && nref == count);
	for (size_t k = 0; k < SL_ARRAY_SIZE(ps); k++) {
		size_t n = 0;

		for (unsigned s = 0; s < ps[k]; s++)
			CU_ASSERT_FATAL(gen_drain(&bat, s, ps[k], got, tgot, &n) == 0);
		CU_ASSERT_FATAL(n == count);
		CU_ASSERT(memcmp(got, ref, count * sizeof(*ref)) == 0);
		CU_ASSERT(memcmp(tgot, tref, count * sizeof(*tref)) == 0);
	}
	/* Unbounded, subtask 2 of 3: indices 2, 5, 8, ... across batch boundaries. */
	bat.count = 0;
	run_init(&r, 2, 3, 1 << 20);
	CU_ASSERT_FATAL(sl_gen_ops.open(&bat, &r.info, &st) == 0);
	CU_ASSERT_FATAL(sl_batch_create(NULL, 37, sizeof(struct gel), 0, &b) == 0);
	for (uint64_t next = 2, k = 0; k < 20; k++) {
		sl_batch_clear(b);
		CU_ASSERT(sl_gen_ops.poll(st, b) == 37);
		for (uint32_t i = 0; i < b->n; i++, next += 3) {
			CU_ASSERT(((struct gel *)sl_batch_elem(b, i))->idx == next);
			CU_ASSERT(b->ts[i] == (int64_t)next * 10);
		}
	}
	sl_batch_destroy(b);
	sl_gen_ops.close(st);
	/* Both callbacks, or neither: refused. */
	bat.fill = gfill;
	CU_ASSERT(sl_gen_ops.open(&bat, &r.info, &st) == -EINVAL);
	CU_ASSERT(strstr(r.err, "exactly one") != NULL);
	free(ref);
	free(got);
	free(tref);
	free(tgot);
}

static void test_gen_unbounded(void)
{
	struct sl_gen_conf conf = { .count = 0, .seed = 7, .type = &gel_type, .fill = gfill };
	struct sl_batch *b;
	struct run r;
	uint64_t next = 1;
	void *st;

	run_init(&r, 1, 3, 1 << 20);
	CU_ASSERT_FATAL(sl_gen_ops.open(&conf, &r.info, &st) == 0);
	CU_ASSERT_FATAL(sl_batch_create(NULL, 100, sizeof(struct gel), 0, &b) == 0);
	for (int k = 0; k < 50; k++) {
		sl_batch_clear(b);
		CU_ASSERT(sl_gen_ops.poll(st, b) == 100); /* never SL_SOURCE_END */
		for (uint32_t i = 0; i < b->n; i++) {
			const struct gel *g = sl_batch_elem(b, i);

			CU_ASSERT(g->idx == next); /* 1, 4, 7, ...: s + k*p */
			next += 3;
		}
	}
	sl_batch_destroy(b);
	sl_gen_ops.close(st);
}

static void test_gen_rate(void)
{
	/* 0.002/s over 2 subtasks: one token each (the bucket's minimum), refilled in 1000 s. */
	struct sl_gen_conf conf = {
		.count = 0, .seed = 1, .rate = 0.002, .type = &gel_type, .fill = gfill
	};
	struct sl_batch *b;
	struct run r;
	void *st;

	run_init(&r, 1, 2, 1 << 20);
	CU_ASSERT_FATAL(sl_gen_ops.open(&conf, &r.info, &st) == 0);
	CU_ASSERT_FATAL(sl_batch_create(NULL, 64, sizeof(struct gel), 0, &b) == 0);
	CU_ASSERT(sl_gen_ops.poll(st, b) == 1);
	CU_ASSERT(((struct gel *)sl_batch_elem(b, 0))->idx == 1);
	sl_batch_clear(b);
	CU_ASSERT(sl_gen_ops.poll(st, b) == 0); /* out of tokens: 0, not the end */
	CU_ASSERT(sl_gen_ops.poll(st, b) == 0);
	CU_ASSERT(b->n == 0);
	sl_gen_ops.close(st);

	/* A bounded rate-limited run still delivers everything, in order (no time asserted). */
	conf.count = 60;
	conf.rate = 20000;
	run_init(&r, 0, 1, 1 << 20);
	CU_ASSERT_FATAL(sl_gen_ops.open(&conf, &r.info, &st) == 0);
	{
		uint64_t got = 0;
		int rc;

		do {
			sl_batch_clear(b);
			rc = sl_gen_ops.poll(st, b);
			CU_ASSERT_FATAL(rc >= 0);
			for (uint32_t i = 0; i < b->n; i++)
				CU_ASSERT(((struct gel *)sl_batch_elem(b, i))->idx == got++);
			if (b->n == 0) {
				struct timespec t = { 0, 200000 };

				nanosleep(&t, NULL);
			}
		} while (!(rc & SL_SOURCE_END));
		CU_ASSERT(got == 60);
	}
	sl_gen_ops.close(st);
	sl_batch_destroy(b);
}

static void test_gen_errors(void)
{
	struct sl_line_like {
		struct sl_str s;
	};
	static const struct sl_type str_type = SL_TYPE_STR1(struct sl_line_like, s);
	struct sl_gen_conf conf = { .count = 10, .type = &gel_type, .fill = gfill };
	struct sl_batch *b;
	struct run r;
	void *st;

	run_init(&r, 0, 1, 1 << 20);
	CU_ASSERT(sl_gen_ops.open(NULL, &r.info, &st) == -EINVAL);
	conf.fill = NULL;
	CU_ASSERT(sl_gen_ops.open(&conf, &r.info, &st) == -EINVAL);
	CU_ASSERT(strstr(r.err, "fill") != NULL);
	conf.fill = gfill;
	conf.type = &str_type;
	CU_ASSERT(sl_gen_ops.open(&conf, &r.info, &st) == -EINVAL);
	CU_ASSERT(strstr(r.err, "string") != NULL);
	conf.type = &gel_type;
	conf.rate = -1;
	CU_ASSERT(sl_gen_ops.open(&conf, &r.info, &st) == -EINVAL);
	conf.rate = NAN;
	CU_ASSERT(sl_gen_ops.open(&conf, &r.info, &st) == -EINVAL);
	conf.rate = INFINITY;
	CU_ASSERT(sl_gen_ops.open(&conf, &r.info, &st) == -EINVAL);
	conf.rate = 0;
	run_init(&r, 2, 2, 1 << 20);
	CU_ASSERT(sl_gen_ops.open(&conf, &r.info, &st) == -EINVAL);
	/* A batch of the wrong element size. */
	run_init(&r, 0, 1, 1 << 20);
	CU_ASSERT_FATAL(sl_gen_ops.open(&conf, &r.info, &st) == 0);
	CU_ASSERT_FATAL(sl_batch_create(NULL, 8, 8, 0, &b) == 0);
	CU_ASSERT(sl_gen_ops.poll(st, b) == -EINVAL);
	CU_ASSERT(strstr(r.err, "bytes") != NULL);
	sl_batch_destroy(b);
	sl_gen_ops.close(st);
}

/* ------------------------------------------------------ line source */

/* Lines starting with '!' are bad records; others are stored whole. */
static int parse_bang(const char *line, size_t len, struct sl_batch *out, void *elem, int64_t *ts,
		      char *why, size_t whylen, void *arg)
{
	CU_ASSERT(len > 0);
	CU_ASSERT(line[len] == '\0');
	if (line[0] == '!') {
		snprintf(why, whylen, "line starts with '!'");
		return -EINVAL;
	}
	return sl_lines_parse_line(line, len, out, elem, ts, why, whylen, arg);
}

/* Run all p subtasks in order, concatenating their lines; 0 or the first error. */
static int drain_all(void *conf, unsigned p, uint32_t max_record, uint32_t arena_max,
		     struct strs *out, uint64_t *bad)
{
	for (unsigned s = 0; s < p; s++) {
		struct run r;
		int rc;

		run_init(&r, s, p, max_record);
		rc = drain(&sl_lines_ops, conf, &r, 1 + (uint32_t)rnd_below(64), arena_max, out);
		if (rc < 0) {
			fprintf(stderr, "  subtask %u/%u: %s\n", s, p, r.err);
			return rc;
		}
		if (bad)
			*bad += bad_count(&r);
	}
	return 0;
}

static void test_lines_split_file(void)
{
	const char *path = tpath("split.txt");

	for (uint64_t seed = 1; seed <= 40; seed++) {
		struct input in;
		struct strs want = { 0 };

		rnd_state = seed * 0x9E3779B97F4A7C15ULL;
		input_random(&in, 1, seed < 5 ? 3 : 60, 200);
		write_file(path, in.file[0].p, in.file[0].len);
		expected_lines(&in, &want);
		for (unsigned p = 1; p <= 8; p++) {
			struct sl_lines_conf conf = { .path = path, .parse = sl_lines_parse_line };
			struct strs got = { 0 };

			CU_ASSERT_FATAL(drain_all(&conf, p, 1 << 20, 1 << 20, &got, NULL) == 0);
			if (!strs_equal(&got, &want)) {
				fprintf(stderr, "  seed %" PRIu64 " p %u\n", seed, p);
				CU_FAIL("split file: lines differ from the input");
			}
			strs_free(&got);
		}
		strs_free(&want);
		input_free(&in);
	}
	unlink(path);
}

static void test_lines_split_dir(void)
{
	const char *dir = tpath("dir");
	char path[PATH_MAX];

	for (uint64_t seed = 1; seed <= 25; seed++) {
		struct input in;
		struct strs want = { 0 };

		rnd_state = seed * 0xD1B54A32D192ED03ULL;
		mkdir_clean(dir);
		input_random(&in, 1 + rnd_below(7), 30, 120);
		/* Names sort in file order; created in reverse so readdir order does not help. */
		for (size_t f = in.nfiles; f-- > 0;) {
			snprintf(path, sizeof(path), "%s/part-%02zu.csv", dir, f);
			write_file(path, in.file[f].p, in.file[f].len);
		}
		snprintf(path, sizeof(path), "%s/.hidden", dir);
		write_file(path, "hidden line\n", 12);
		snprintf(path, sizeof(path), "%s/sub", dir);
		CU_ASSERT_FATAL(mkdir(path, 0755) == 0);
		snprintf(path, sizeof(path), "%s/sub/nested.csv", dir);
		write_file(path, "nested line\n", 12);
		expected_lines(&in, &want);
		for (unsigned p = 1; p <= 8; p++) {
			struct sl_lines_conf conf = { .path = dir, .parse = sl_lines_parse_line };
			struct strs got = { 0 };

			CU_ASSERT_FATAL(drain_all(&conf, p, 1 << 20, 1 << 20, &got, NULL) == 0);
			if (!strs_equal(&got, &want)) {
				fprintf(stderr, "  seed %" PRIu64 " p %u files %zu\n", seed, p,
					in.nfiles);
				CU_FAIL("split directory: lines differ from the input");
			}
			strs_free(&got);
		}
		strs_free(&want);
		input_free(&in);
	}
	mkdir_clean(dir);
	rmdir(dir);
}

/* Fixed edge cases: each file's bytes and the lines they must yield, at p = 1..8. */
static void test_lines_edges(void)
{
	static const struct {
		const char *bytes;
		const char *lines[6];
	} cases[] = {
		{ "", { NULL } },
		{ "\n\n\r\n\n", { NULL } },
		{ "a", { "a", NULL } },
		{ "a\r", { "a", NULL } },
		{ "abc\r\ndef\r\n", { "abc", "def", NULL } },
		{ "one\n\ntwo\r\n\r\nthree", { "one", "two", "three", NULL } },
		{ "x\ry\r\n\r\r\n", { "x\ry", "\r", NULL } },
		{ "long line that many ranges fall into\nz\n",
		  { "long line that many ranges fall into", "z", NULL } },
	};
	const char *path = tpath("edge.txt");

	rnd_state = 99;
	for (size_t c = 0; c < SL_ARRAY_SIZE(cases); c++) {
		struct strs want = { 0 };

		write_file(path, cases[c].bytes, strlen(cases[c].bytes));
		for (size_t i = 0; cases[c].lines[i]; i++)
			strs_add(&want, cases[c].lines[i], strlen(cases[c].lines[i]));
		for (unsigned p = 1; p <= 8; p++) {
			struct sl_lines_conf conf = { .path = path, .parse = sl_lines_parse_line };
			struct strs got = { 0 };

			CU_ASSERT_FATAL(drain_all(&conf, p, 1 << 20, 1 << 20, &got, NULL) == 0);
			if (!strs_equal(&got, &want)) {
				fprintf(stderr, "  case %zu p %u\n", c, p);
				CU_FAIL("edge case");
			}
			strs_free(&got);
		}
		strs_free(&want);
	}
	unlink(path);
}

/* A full arena makes the source emit and retry the line in the next batch. */
static void test_lines_arena_full(void)
{
	const char *path = tpath("arena.txt");
	struct input in;
	struct strs want = { 0 };

	rnd_state = 5;
	input_random(&in, 1, 400, 100); /* lines of at most 101 bytes */
	write_file(path, in.file[0].p, in.file[0].len);
	expected_lines(&in, &want);
	for (unsigned p = 1; p <= 4; p++) {
		struct sl_lines_conf conf = { .path = path, .parse = sl_lines_parse_line };
		struct strs got = { 0 };

		CU_ASSERT_FATAL(drain_all(&conf, p, 1 << 20, 128, &got, NULL) == 0);
		CU_ASSERT(strs_equal(&got, &want));
		strs_free(&got);
	}
	strs_free(&want);
	input_free(&in);

	/* A line larger than an empty batch's arena is a bad record. */
	{
		char big[300];
		struct sl_lines_conf conf = { .path = path, .parse = sl_lines_parse_line };
		struct strs got = { 0 };
		struct run r;

		memset(big, 'b', sizeof(big));
		big[sizeof(big) - 1] = '\n';
		write_file(path, "ok\n", 3);
		{
			FILE *f = fopen(path, "ab");

			fwrite(big, 1, sizeof(big), f);
			fputs("ok2\n", f);
			fclose(f);
		}
		char want_err[PATH_MAX + 64];

		run_init(&r, 0, 1, 1 << 20);
		CU_ASSERT(drain(&sl_lines_ops, &conf, &r, 8, 128, &got) == -EINVAL);
		snprintf(want_err, sizeof(want_err), "%s:2: record larger than 128 bytes", path);
		CU_ASSERT_STRING_EQUAL(r.err, want_err);
		CU_ASSERT(got.n == 1); /* "ok" was emitted before the error */
		strs_free(&got);
		/* batch cap 1: "ok" fills the batch, the big line arrives in an empty one. */
		conf.bad_policy = SL_BAD_SKIP;
		run_init(&r, 0, 1, 1 << 20);
		CU_ASSERT(drain(&sl_lines_ops, &conf, &r, 1, 128, &got) == 0);
		CU_ASSERT(got.n == 2 && bad_count(&r) == 1);
		strs_free(&got);
	}
	unlink(path);
}

/* Build a file with bad lines ('!') at random places; return its input. */
static void input_with_bad(struct input *in, unsigned nlines)
{
	char line[128];

	memset(in, 0, sizeof(*in));
	in->nfiles = 1;
	buf_add(&in->file[0], "", 0);
	for (unsigned i = 0; i < nlines; i++) {
		int n;

		if (rnd_below(5) == 0)
			n = snprintf(line, sizeof(line), "!bad %u %s", i + 1,
				     rnd_below(2) ? "x" : "with,commas");
		else if (rnd_below(8) == 0)
			n = 0;
		else
			n = snprintf(line, sizeof(line), "good %u %0*u", i + 1, (int)rnd_below(40),
				     7u);
		input_line(in, 0, line, (size_t)n, i + 1 < nlines, i + 1);
	}
}

static void test_lines_bad_policies(void)
{
	const char *path = tpath("bad.csv");
	const char *dead = tpath("dead.txt");

	for (uint64_t seed = 1; seed <= 6; seed++) {
		struct input in;
		struct strs good = { 0 };
		struct buf want_dead = { 0 };
		uint64_t nbad = 0;

		rnd_state = seed * 77;
		input_with_bad(&in, 200);
		write_file(path, in.file[0].p, in.file[0].len);
		for (size_t i = 0; i < in.raw.n; i++) {
			size_t len;

			if (!expect_line(&in, i, &len))
				continue;
			if (in.raw.v[i][0] == '!') {
				buf_fmt(&want_dead, "%s:%u: line starts with '!': ", path,
					in.lineno[i]);
				buf_add(&want_dead, in.raw.v[i], len);
				buf_str(&want_dead, "\n");
				nbad++;
			} else {
				strs_add(&good, in.raw.v[i], len);
			}
		}
		CU_ASSERT_FATAL(nbad > 0);
		for (unsigned p = 1; p <= 8; p++) {
			struct sl_lines_conf conf = { .path = path, .parse = parse_bang };
			struct strs got = { 0 };
			uint64_t bad = 0;
			char *content;
			size_t clen;

			/* SKIP: the good lines, and the count. */
			conf.bad_policy = SL_BAD_SKIP;
			CU_ASSERT_FATAL(drain_all(&conf, p, 1 << 20, 1 << 20, &got, &bad) == 0);
			CU_ASSERT(strs_equal(&got, &good));
			CU_ASSERT(bad == nbad);
			strs_free(&got);

			/* FILE: also the dead-letter file, byte for byte (FILE:LINE true). */
			unlink(dead);
			conf.bad_policy = SL_BAD_FILE;
			conf.bad_path = dead;
			bad = 0;
			CU_ASSERT_FATAL(drain_all(&conf, p, 1 << 20, 1 << 20, &got, &bad) == 0);
			CU_ASSERT(strs_equal(&got, &good));
			CU_ASSERT(bad == nbad);
			content = read_file(dead, &clen);
			CU_ASSERT_FATAL(content != NULL);
			if (clen != want_dead.len || memcmp(content, want_dead.p, clen) != 0) {
				fprintf(stderr,
					"  seed %" PRIu64 " p %u: dead letters:\n%s\nwant:\n%s\n",
					seed, p, content, want_dead.p);
				CU_FAIL("dead-letter file differs");
			}
			free(content);
			strs_free(&got);

			/* FAIL: each subtask stops at the first bad line it owns, naming it. */
			conf.bad_policy = SL_BAD_FAIL;
			conf.bad_path = NULL;
			for (unsigned s = 0; s < p; s++) {
				struct run r;
				char want_err[256] = "";
				int rc;

				for (size_t i = 0; i < in.raw.n; i++) {
					size_t len;

					if (expect_line(&in, i, &len) && in.raw.v[i][0] == '!' &&
					    owner(in.start[i], in.total, p) == s) {
						snprintf(want_err, sizeof(want_err),
							 "%s:%u: line starts with '!'", path,
							 in.lineno[i]);
						break;
					}
				}
				run_init(&r, s, p, 1 << 20);
				rc = drain(&sl_lines_ops, &conf, &r, 16, 1 << 20, &got);
				if (want_err[0]) {
					CU_ASSERT(rc == -EINVAL);
					CU_ASSERT_STRING_EQUAL(r.err, want_err);
				} else {
					CU_ASSERT(rc == 0);
				}
				strs_free(&got);
			}
		}
		unlink(dead);
		strs_free(&good);
		free(want_dead.p);
		input_free(&in);
	}
	unlink(path);
}

static void test_lines_oversized(void)
{
	const size_t mib = 1 << 20;
	const char *path = tpath("huge.txt");
	const char *dead = tpath("huge-dead.txt");
	struct buf file = { 0 }, want_dead = { 0 };
	char *x = malloc(5 * mib);
	struct strs want = { 0 };

	/* line 1 ok; 2: 5 MiB; 3 CRLF ok; 4 blank; 5 ok; 6: 2 MiB + CR; 7 ok; 8: 2 MiB, no '\n' */
	memset(x, 'x', 5 * mib);
	buf_str(&file, "short1\n");
	buf_add(&file, x, 5 * mib);
	buf_str(&file, "\nshort2\r\n\nshort3\n");
	buf_add(&file, x, 2 * mib);
	buf_str(&file, "\r\nshort4\n");
	buf_add(&file, x, 2 * mib);
	write_file(path, file.p, file.len);
	strs_add(&want, "short1", 6);
	strs_add(&want, "short2", 6);
	strs_add(&want, "short3", 6);
	strs_add(&want, "short4", 6);
	for (int ln = 2; ln <= 8; ln += ln == 2 ? 4 : 2) {
		buf_fmt(&want_dead, "%s:%d: record longer than %zu bytes: ", path, ln, mib);
		buf_add(&want_dead, x, mib);
		buf_str(&want_dead, " [truncated]\n");
	}
	for (unsigned p = 1; p <= 4; p++) {
		struct sl_lines_conf conf = { .path = path,
					      .parse = sl_lines_parse_line,
					      .bad_policy = SL_BAD_FILE,
					      .bad_path = dead };
		struct strs got = { 0 };
		uint64_t bad = 0;
		char *content;
		size_t clen;

		unlink(dead);
		CU_ASSERT_FATAL(drain_all(&conf, p, (uint32_t)mib, 1 << 20, &got, &bad) == 0);
		CU_ASSERT(strs_equal(&got, &want));
		CU_ASSERT(bad == 3);
		content = read_file(dead, &clen);
		CU_ASSERT(content != NULL && clen == want_dead.len &&
			  memcmp(content, want_dead.p, clen) == 0);
		free(content);
		strs_free(&got);
	}
	unlink(dead);
	free(x);
	free(file.p);
	free(want_dead.p);
	strs_free(&want);

	/* The exact limit: 16 bytes pass (also with '\r', also unterminated), 17 do not. */
	{
		static const char bytes[] = "0123456789abcdef\n"
					    "0123456789abcdefg\n"
					    "0123456789abcdef\r\n"
					    "0123456789abcdefg\r\n"
					    "0123456789abcdef";
		struct sl_lines_conf conf = { .path = path,
					      .parse = sl_lines_parse_line,
					      .bad_policy = SL_BAD_SKIP };
		struct strs got = { 0 };
		uint64_t bad = 0;

		write_file(path, bytes, sizeof(bytes) - 1);
		for (unsigned p = 1; p <= 8; p++) {
			bad = 0;
			CU_ASSERT_FATAL(drain_all(&conf, p, 16, 1 << 20, &got, &bad) == 0);
			CU_ASSERT(got.n == 3 * p && bad == 2);
		}
		strs_free(&got);
		/* The limit may come from the conf instead of the job. */
		conf.max_record_size = 17;
		bad = 0;
		CU_ASSERT_FATAL(drain_all(&conf, 1, 16, 1 << 20, &got, &bad) == 0);
		CU_ASSERT(got.n == 5 && bad == 0);
		strs_free(&got);
		/* FAIL names the line. */
		conf.max_record_size = 0;
		conf.bad_policy = SL_BAD_FAIL;
		{
			struct run r;
			char want_err[PATH_MAX + 64];

			run_init(&r, 0, 1, 16);
			CU_ASSERT(drain(&sl_lines_ops, &conf, &r, 16, 1 << 20, &got) == -EINVAL);
			snprintf(want_err, sizeof(want_err), "%s:2: record longer than 16 bytes",
				 path);
			CU_ASSERT_STRING_EQUAL(r.err, want_err);
		}
		strs_free(&got);
	}
	unlink(path);
}

static void test_lines_errors(void)
{
	struct sl_lines_conf conf = { .path = "/nonexistent/sluice/input.txt",
				      .parse = sl_lines_parse_line };
	struct run r;
	void *st;

	run_init(&r, 0, 1, 1 << 20);
	CU_ASSERT(sl_lines_ops.open(&conf, &r.info, &st) == -ENOENT);
	CU_ASSERT_STRING_EQUAL(r.err, "cannot open '/nonexistent/sluice/input.txt': No such file "
				      "or directory");
	conf.path = NULL;
	CU_ASSERT(sl_lines_ops.open(&conf, &r.info, &st) == -EINVAL);
	CU_ASSERT(sl_lines_ops.open(NULL, &r.info, &st) == -EINVAL);
	conf.path = "-";
	conf.parse = NULL;
	CU_ASSERT(sl_lines_ops.open(&conf, &r.info, &st) == -EINVAL);
	conf.parse = sl_lines_parse_line;
	conf.rate = -3;
	CU_ASSERT(sl_lines_ops.open(&conf, &r.info, &st) == -EINVAL);
	conf.rate = 0;
	conf.bad_policy = SL_BAD_FILE;
	CU_ASSERT(sl_lines_ops.open(&conf, &r.info, &st) == -EINVAL);
	CU_ASSERT(strstr(r.err, "bad_path") != NULL);
	conf.bad_path = "/nonexistent/dead.txt";
	CU_ASSERT(sl_lines_ops.open(&conf, &r.info, &st) == -ENOENT);
	CU_ASSERT(strstr(r.err, "/nonexistent/dead.txt") != NULL);
	conf.bad_policy = (enum sl_bad_policy)7;
	CU_ASSERT(sl_lines_ops.open(&conf, &r.info, &st) == -EINVAL);
	conf.bad_policy = SL_BAD_FAIL;

	/* stdin (and other streams) cannot be split. */
	run_init(&r, 0, 2, 1 << 20);
	CU_ASSERT(sl_lines_ops.open(&conf, &r.info, &st) == -EINVAL);
	CU_ASSERT(strstr(r.err, "parallelism to 1 (it is 2)") != NULL);
	conf.path = "/dev/null"; /* a character device */
	CU_ASSERT(sl_lines_ops.open(&conf, &r.info, &st) == -EINVAL);
	{
		/* ... which a single subtask reads as a stream: here, empty. */
		struct strs got = { 0 };

		run_init(&r, 0, 1, 1 << 20);
		CU_ASSERT(drain(&sl_lines_ops, &conf, &r, 4, 1 << 20, &got) == 0);
		CU_ASSERT(got.n == 0);
	}

	/* A directory's file that cannot be opened when reached fails poll(). */
	{
		const char *dir = tpath("vanish");
		char a[PATH_MAX], b[PATH_MAX], want[PATH_MAX + 64];
		struct strs got = { 0 };

		mkdir_clean(dir);
		snprintf(a, sizeof(a), "%s/a", dir);
		snprintf(b, sizeof(b), "%s/b", dir);
		write_file(a, "from a\n", 7);
		write_file(b, "from b\n", 7);
		conf.path = dir;
		run_init(&r, 0, 1, 1 << 20);
		{
			struct sl_batch *bt;
			int rc;

			CU_ASSERT_FATAL(sl_lines_ops.open(&conf, &r.info, &st) == 0);
			unlink(b);
			CU_ASSERT_FATAL(
			    sl_batch_create(NULL, 8, sizeof(struct sl_line), 1 << 20, &bt) == 0);
			/* a's line ends split 0 (one split per file); b then fails. */
			rc = sl_lines_ops.poll(st, bt);
			CU_ASSERT(rc == (1 | SL_SOURCE_SPLIT_END) && bt->split == 0);
			sl_batch_clear(bt);
			rc = sl_lines_ops.poll(st, bt);
			CU_ASSERT(rc == -ENOENT);
			snprintf(want, sizeof(want), "cannot open '%s': No such file or directory",
				 b);
			CU_ASSERT_STRING_EQUAL(r.err, want);
			sl_batch_destroy(bt);
			sl_lines_ops.close(st);
		}
		strs_free(&got);
		mkdir_clean(dir);
		rmdir(dir);
	}

	/* A parse error other than -EINVAL/-E2BIG fails with FILE:LINE. */
	{
		const char *path = tpath("notype.txt");
		struct strs got = { 0 };

		write_file(path, "\nabc\n", 5);
		conf.path = path;
		run_init(&r, 0, 1, 1 << 20);
		{
			struct sl_batch *b;

			CU_ASSERT_FATAL(sl_lines_ops.open(&conf, &r.info, &st) == 0);
			CU_ASSERT_FATAL(sl_batch_create(NULL, 4, 4, 1024, &b) == 0);
			CU_ASSERT(sl_lines_ops.poll(st, b) == -ENOTSUP);
			CU_ASSERT(strstr(r.err, ":2: sl_lines_parse_line needs struct sl_line") !=
				  NULL);
			sl_batch_destroy(b);
			sl_lines_ops.close(st);
		}
		strs_free(&got);
		unlink(path);
	}
}

static void test_lines_stdin(void)
{
	const char *path = tpath("stdin.txt");
	struct sl_lines_conf conf = { .path = "-", .parse = parse_bang };
	struct strs got = { 0 };
	struct run r;
	int saved, fd, rc;

	write_file(path, "alpha\r\n\nbeta\n!bad\ngamma", 23);
	saved = dup(STDIN_FILENO);
	fd = open(path, O_RDONLY);
	CU_ASSERT_FATAL(saved >= 0 && fd >= 0);
	CU_ASSERT_FATAL(dup2(fd, STDIN_FILENO) == STDIN_FILENO);
	close(fd);
	conf.bad_policy = SL_BAD_FAIL;
	run_init(&r, 0, 1, 1 << 20);
	rc = drain(&sl_lines_ops, &conf, &r, 2, 1 << 20, &got);
	CU_ASSERT(rc == -EINVAL);
	CU_ASSERT_STRING_EQUAL(r.err, "<stdin>:4: line starts with '!'");
	CU_ASSERT(got.n == 2);
	strs_free(&got);
	CU_ASSERT_FATAL(lseek(STDIN_FILENO, 0, SEEK_SET) == 0);
	conf.bad_policy = SL_BAD_SKIP;
	run_init(&r, 0, 1, 1 << 20);
	CU_ASSERT(drain(&sl_lines_ops, &conf, &r, 2, 1 << 20, &got) == 0);
	CU_ASSERT(got.n == 3 && strcmp(got.v[2], "gamma") == 0 && bad_count(&r) == 1);
	strs_free(&got);
	CU_ASSERT_FATAL(dup2(saved, STDIN_FILENO) == STDIN_FILENO);
	close(saved);
	unlink(path);
}

static void test_lines_empty_dir_and_rate(void)
{
	const char *dir = tpath("empty");
	const char *path = tpath("rate.txt");
	struct sl_lines_conf conf = { .path = dir, .parse = sl_lines_parse_line };
	struct strs got = { 0 };
	struct sl_batch *b;
	struct run r;
	void *st;

	mkdir_clean(dir);
	for (unsigned p = 1; p <= 3; p++) {
		CU_ASSERT(drain_all(&conf, p, 1 << 20, 1 << 20, &got, NULL) == 0);
		CU_ASSERT(got.n == 0);
	}
	rmdir(dir);

	/* 0.001 records/s: the first poll has its one token, the next has none. */
	write_file(path, "a\nb\nc\n", 6);
	conf.path = path;
	conf.rate = 0.001;
	run_init(&r, 0, 1, 1 << 20);
	CU_ASSERT_FATAL(sl_lines_ops.open(&conf, &r.info, &st) == 0);
	CU_ASSERT_FATAL(sl_batch_create(NULL, 16, sizeof(struct sl_line), 1 << 20, &b) == 0);
	CU_ASSERT(sl_lines_ops.poll(st, b) == 1);
	sl_batch_clear(b);
	CU_ASSERT(sl_lines_ops.poll(st, b) == 0);
	CU_ASSERT(sl_lines_ops.poll(st, b) == 0);
	sl_batch_destroy(b);
	sl_lines_ops.close(st);
	unlink(path);
}

/* -------------------------------------------------------------- sinks */

/* A batch of struct sl_line holding @n strings. */
static struct sl_batch *line_batch(const char *const *s, uint32_t n)
{
	struct sl_batch *b;

	CU_ASSERT_FATAL(sl_batch_create(NULL, n ? n : 1, sizeof(struct sl_line), 1 << 24, &b) == 0);
	for (uint32_t i = 0; i < n; i++) {
		struct sl_line *e = sl_batch_elem(b, i);

		CU_ASSERT_FATAL(sl_batch_add_str(b, s[i], (uint32_t)strlen(s[i]), &e->text) == 0);
		b->ts[i] = i;
	}
	b->n = n;
	return b;
}

static int sink_run(struct sl_text_sink_conf *conf, unsigned idx, unsigned p, const char *const *s,
		    uint32_t n, struct run *r)
{
	struct sl_batch *b = line_batch(s, n);
	void *st;
	int rc;

	run_init(r, idx, p, 1 << 20);
	rc = sl_text_sink_ops.open(conf, &r->info, &st);
	if (rc == 0) {
		rc = sl_text_sink_ops.write(st, b);
		if (rc == 0)
			rc = sl_text_sink_ops.finish(st);
		sl_text_sink_ops.close(st);
	}
	sl_batch_destroy(b);
	return rc;
}

static void expect_file(const char *path, const char *want)
{
	size_t len;
	char *got = read_file(path, &len);

	CU_ASSERT_FATAL(got != NULL);
	CU_ASSERT(len == strlen(want) && memcmp(got, want, len) == 0);
	free(got);
}

static void test_sink_per_subtask(void)
{
	static const char *const lines[] = { "alpha", "", "gamma, with a comma" };
	struct sl_text_sink_conf conf = { .path = tpath("out"), .format = sl_line_format };
	char path[PATH_MAX];
	struct run r;

	for (unsigned s = 0; s < 3; s++)
		CU_ASSERT(sink_run(&conf, s, 3, lines + s, 3 - s, &r) == 0);
	snprintf(path, sizeof(path), "%s-0", conf.path);
	expect_file(path, "alpha\n\ngamma, with a comma\n");
	unlink(path);
	snprintf(path, sizeof(path), "%s-1", conf.path);
	expect_file(path, "\ngamma, with a comma\n");
	unlink(path);
	snprintf(path, sizeof(path), "%s-2", conf.path);
	expect_file(path, "gamma, with a comma\n");
	unlink(path);
	/* Parallelism 1 writes PATH itself, truncating what was there. */
	write_file(conf.path, "old content that must go\n", 25);
	CU_ASSERT(sink_run(&conf, 0, 1, lines, 1, &r) == 0);
	expect_file(conf.path, "alpha\n");
	unlink(conf.path);
	/* Cannot open. */
	conf.path = "/nonexistent/dir/out";
	CU_ASSERT(sink_run(&conf, 0, 1, lines, 1, &r) == -ENOENT);
	CU_ASSERT_STRING_EQUAL(r.err,
			       "cannot open '/nonexistent/dir/out': No such file or directory");
	conf.format = NULL;
	CU_ASSERT(sink_run(&conf, 0, 1, lines, 1, &r) == -EINVAL);
	{
		void *st;

		CU_ASSERT(sl_text_sink_ops.open(NULL, &r.info, &st) == -EINVAL);
	}
}

struct merged_arg {
	struct sl_text_sink_conf *conf;
	unsigned idx;
	int rc;
};

#define MERGED_BATCHES 300
#define MERGED_PER     40

static void *merged_thread(void *p)
{
	struct merged_arg *a = p;
	char line[256], *ptrs[MERGED_PER];
	struct run r;
	void *st;

	run_init(&r, a->idx, 2, 1 << 20);
	a->rc = sl_text_sink_ops.open(a->conf, &r.info, &st);
	if (a->rc < 0)
		return NULL;
	for (unsigned k = 0; k < MERGED_BATCHES && a->rc == 0; k++) {
		struct sl_batch *b;

		for (unsigned i = 0; i < MERGED_PER; i++) {
			unsigned id = k * MERGED_PER + i;

			/* Lengths vary so a torn line would not look like another one. */
			snprintf(line, sizeof(line), "t%u %u %.*s", a->idx, id, (int)(id % 97),
				 "=================================================="
				 "===============================================");
			ptrs[i] = strdup(line);
		}
		b = line_batch((const char *const *)ptrs, MERGED_PER);
		a->rc = sl_text_sink_ops.write(st, b);
		sl_batch_destroy(b);
		for (unsigned i = 0; i < MERGED_PER; i++)
			free(ptrs[i]);
	}
	if (a->rc == 0)
		a->rc = sl_text_sink_ops.finish(st);
	sl_text_sink_ops.close(st);
	return NULL;
}

static void test_sink_merged(void)
{
	struct sl_text_sink_conf conf = { .path = tpath("merged.txt"),
					  .mode = SL_TEXT_MERGED,
					  .format = sl_line_format };
	enum { N = MERGED_BATCHES * MERGED_PER };
	static unsigned char seen[2][N];
	struct merged_arg a[2] = { { &conf, 0, 0 }, { &conf, 1, 0 } };
	pthread_t th[2];
	char *content, *p, *nl;
	size_t len, lines = 0;
	struct run r;
	void *st;

	/* Not prepared: refused, so a stale file is never appended to silently. */
	run_init(&r, 0, 2, 1 << 20);
	CU_ASSERT(sl_text_sink_ops.open(&conf, &r.info, &st) == -EINVAL);
	CU_ASSERT(strstr(r.err, "sl_text_sink_prepare") != NULL);

	write_file(conf.path, "stale\n", 6);
	CU_ASSERT_FATAL(sl_text_sink_prepare(&conf, r.err, sizeof(r.err)) == 0);
	for (int i = 0; i < 2; i++)
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, merged_thread, &a[i]) == 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CU_ASSERT(a[0].rc == 0 && a[1].rc == 0);

	memset(seen, 0, sizeof(seen));
	content = read_file(conf.path, &len);
	CU_ASSERT_FATAL(content != NULL);
	CU_ASSERT(len > 0 && content[len - 1] == '\n');
	for (p = content; (nl = memchr(p, '\n', (size_t)(content + len - p))) != NULL; p = nl + 1) {
		unsigned t, id;
		int off = 0;

		*nl = '\0';
		lines++;
		if (sscanf(p, "t%u %u %n", &t, &id, &off) != 2 || t > 1 || id >= N ||
		    strlen(p + off) != id % 97 || strspn(p + off, "=") != id % 97) {
			fprintf(stderr, "  torn or foreign line: '%.80s'\n", p);
			CU_FAIL("merged file has a bad line");
			break;
		}
		CU_ASSERT(seen[t][id] == 0);
		seen[t][id] = 1;
	}
	CU_ASSERT(lines == 2 * N);
	for (unsigned i = 0; i < N; i++)
		CU_ASSERT(seen[0][i] && seen[1][i]);
	free(content);
	unlink(conf.path);
	CU_ASSERT(sl_text_sink_prepare(NULL, r.err, sizeof(r.err)) == -EINVAL);
	conf.path = "/nonexistent/merged";
	CU_ASSERT(sl_text_sink_prepare(&conf, r.err, sizeof(r.err)) == -ENOENT);
}

static void test_sink_dev_full(void)
{
	static const char *const lines[] = { "one", "two" };
	struct sl_text_sink_conf conf = { .path = "/dev/full", .format = sl_line_format };
	struct run r;

	CU_ASSERT(sink_run(&conf, 0, 1, lines, 2, &r) == -ENOSPC);
	CU_ASSERT(strstr(r.err, "/dev/full") != NULL);
	CU_ASSERT(strstr(r.err, "No space left on device") != NULL);
}

/* Lines of elem bytes: element i formats as (i * 70000) 'L's then ":i". */
static int format_long(const void *elem, int64_t ts, const struct sl_batch *b, char *buf,
		       size_t len, void *arg)
{
	const struct sl_line *e = elem;
	unsigned n = e->text.len * 70000u;
	int *calls = arg;

	(*calls)++;
	if (len > n) {
		memset(buf, 'L', n);
		return n + snprintf(buf + n, len - n, ":%" PRId64, ts);
	}
	return (int)(n + (unsigned)snprintf(NULL, 0, ":%" PRId64, ts));
}

static int format_fail(const void *elem, int64_t ts, const struct sl_batch *b, char *buf,
		       size_t len, void *arg)
{
	return ts == 1 ? -EDOM : snprintf(buf, len, "x");
}

static void test_sink_format_retry(void)
{
	static const char *const lines[] = { "a", "bbb", "", "cc" };
	int calls = 0;
	struct sl_text_sink_conf conf = { .path = tpath("long.txt"),
					  .format = format_long,
					  .arg = &calls };
	struct buf want = { 0 };
	size_t len;
	char *got;
	struct run r;

	for (int i = 0; i < 4; i++) {
		size_t n = strlen(lines[i]) * 70000;
		char *l = malloc(n + 1);

		memset(l, 'L', n);
		buf_add(&want, l, n);
		buf_fmt(&want, ":%d\n", i);
		free(l);
	}
	CU_ASSERT(sink_run(&conf, 0, 1, lines, 4, &r) == 0);
	got = read_file(conf.path, &len);
	CU_ASSERT(got != NULL && len == want.len && memcmp(got, want.p, len) == 0);
	CU_ASSERT(calls > 4); /* the 210 KB line did not fit the first buffer */
	free(got);
	free(want.p);
	conf.format = format_fail;
	CU_ASSERT(sink_run(&conf, 0, 1, lines, 4, &r) == -EDOM);
	CU_ASSERT(strstr(r.err, "format failed") != NULL);
	unlink(conf.path);
}

static void test_sink_stdout(void)
{
	static const char *const lines[] = { "to", "stdout" };
	struct sl_text_sink_conf conf = { .path = "-",
					  .mode = SL_TEXT_MERGED,
					  .format = sl_line_format };
	const char *path = tpath("stdout.txt");
	struct run r;
	int saved, fd;

	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CU_ASSERT_FATAL(saved >= 0 && fd >= 0);
	CU_ASSERT_FATAL(dup2(fd, STDOUT_FILENO) == STDOUT_FILENO);
	close(fd);
	/* Merged mode is irrelevant for stdout: no prepare needed. */
	CU_ASSERT(sink_run(&conf, 0, 2, lines, 2, &r) == 0);
	CU_ASSERT(sink_run(&conf, 1, 2, lines + 1, 1, &r) == 0);
	CU_ASSERT_FATAL(dup2(saved, STDOUT_FILENO) == STDOUT_FILENO);
	close(saved);
	expect_file(path, "to\nstdout\nstdout\n");
	unlink(path);
}

static void test_null_sink(void)
{
	struct sl_null_sink totals = { 0 };
	struct sl_gen_conf gconf = { .count = 5000, .seed = 3, .type = &gel_type, .fill = gfill };
	uint64_t want_sum = 0;

	for (uint64_t i = 0; i < 5000; i++)
		want_sum += i; /* the first 8 bytes of a struct gel are its index */
	for (unsigned s = 0; s < 3; s++) {
		struct sl_batch *b;
		struct run r, rs;
		void *src, *snk;
		int rc;

		run_init(&r, s, 3, 1 << 20);
		run_init(&rs, s, 3, 1 << 20);
		CU_ASSERT_FATAL(sl_gen_ops.open(&gconf, &r.info, &src) == 0);
		CU_ASSERT_FATAL(sl_null_sink_ops.open(&totals, &rs.info, &snk) == 0);
		CU_ASSERT_FATAL(sl_batch_create(NULL, 77, sizeof(struct gel), 0, &b) == 0);
		do {
			sl_batch_clear(b);
			rc = sl_gen_ops.poll(src, b);
			CU_ASSERT_FATAL(rc >= 0);
			CU_ASSERT(sl_null_sink_ops.write(snk, b) == 0);
		} while (!(rc & SL_SOURCE_END));
		CU_ASSERT(sl_null_sink_ops.finish(snk) == 0);
		sl_null_sink_ops.close(snk);
		sl_gen_ops.close(src);
		sl_batch_destroy(b);
	}
	CU_ASSERT(sl_null_sink_records(&totals) == 5000);
	CU_ASSERT(sl_null_sink_checksum(&totals) == want_sum);

	/* Elements smaller than 8 bytes are zero-padded. */
	{
		struct sl_null_sink t2 = { 0 };
		struct sl_batch *b;
		struct run r;
		void *snk;

		run_init(&r, 0, 1, 1 << 20);
		CU_ASSERT(sl_null_sink_ops.open(NULL, &r.info, &snk) == -EINVAL);
		CU_ASSERT_FATAL(sl_null_sink_ops.open(&t2, &r.info, &snk) == 0);
		CU_ASSERT_FATAL(sl_batch_create(NULL, 4, 2, 0, &b) == 0);
		memset(b->data, 0, 8);
		b->data[0] = 1;
		b->data[2] = 2;
		b->data[5] = 1;
		b->n = 3;
		CU_ASSERT(sl_null_sink_ops.write(snk, b) == 0);
		CU_ASSERT(sl_null_sink_records(&t2) == 3);
		CU_ASSERT(sl_null_sink_checksum(&t2) == 1 + 2 + 256);
		sl_null_sink_ops.close(snk);
		sl_batch_destroy(b);
	}
}

/* -------------------------------------------------------- checkpoints */

/*
 * Lines for the checkpoint tests: text, blank, "\r" only, CRLF, bad ones
 * ('!', some with CRLF), a missing final '\n'; short enough that an arena
 * of 128 bytes always takes one. Some files are empty.
 */
static void input_mixed(struct input *in, size_t nfiles, unsigned max_lines)
{
	char line[64];

	memset(in, 0, sizeof(*in));
	in->nfiles = nfiles;
	for (unsigned f = 0; f < nfiles; f++) {
		unsigned n = rnd_below(5) == 0 ? 0 : 1 + (unsigned)rnd_below(max_lines);

		buf_add(&in->file[f], "", 0);
		for (unsigned i = 0; i < n; i++) {
			unsigned kind = (unsigned)rnd_below(10);
			int len;

			if (kind == 0)
				len = 0;
			else if (kind == 1)
				len = snprintf(line, sizeof(line), "\r");
			else if (kind <= 3)
				len = snprintf(line, sizeof(line), "!bad f%u l%u%s", f, i + 1,
					       kind == 3 ? "\r" : "");
			else
				len = snprintf(line, sizeof(line), "f%u l%u %.*s%s", f, i + 1,
					       (int)rnd_below(20), "abcdefghijklmnopqrstuvwxyz",
					       kind == 4 ? "\r" : "");
			input_line(in, f, line, (size_t)len, i + 1 < n || rnd_below(2) != 0, i + 1);
		}
	}
}

/* What subtask s of p must return, by the documented rules, computed from the input's lines. */
struct expect {
	struct strs good;
	struct buf dead; /* its dead-letter records, in order */
	char first[512]; /* the SL_BAD_FAIL error: its first bad record ("" if none) */
	uint64_t nbad;
	struct buf
	    split_of;	  /* each good line's split: non-empty files of the range before its own */
	uint32_t nsplits; /* non-empty files holding bytes of the range */
};

static void expect_subtask(const struct input *in, char paths[][PATH_MAX], unsigned s, unsigned p,
			   struct expect *e)
{
	__extension__ typedef unsigned __int128 u128;
	uint64_t a = (uint64_t)((u128)s * in->total / p),
		 b = (uint64_t)((u128)(s + 1) * in->total / p);
	uint32_t split_of[8] = { 0 };
	uint64_t cum = 0;

	memset(e, 0, sizeof(*e));
	buf_add(&e->dead, "", 0);
	for (size_t f = 0; f < in->nfiles; cum += in->file[f++].len) {
		split_of[f] = e->nsplits;
		if (in->file[f].len > 0 && cum + in->file[f].len > a && cum < b)
			e->nsplits++;
	}
	for (size_t i = 0; i < in->raw.n; i++) {
		const char *path = paths[in->file_of[i]];
		size_t len;

		if (!expect_line(in, i, &len) || owner(in->start[i], in->total, p) != s)
			continue;
		if (in->raw.v[i][0] != '!') {
			strs_add(&e->good, in->raw.v[i], len);
			buf_add(&e->split_of, &split_of[in->file_of[i]], sizeof(uint32_t));
			continue;
		}
		buf_fmt(&e->dead, "%s:%u: line starts with '!': ", path, in->lineno[i]);
		buf_add(&e->dead, in->raw.v[i], len);
		buf_str(&e->dead, "\n");
		if (e->nbad++ == 0)
			snprintf(e->first, sizeof(e->first), "%s:%u: line starts with '!'", path,
				 in->lineno[i]);
	}
}

static void expect_free(struct expect *e)
{
	strs_free(&e->good);
	free(e->dead.p);
	free(e->split_of.p);
}

static bool file_is(const char *path, const struct buf *want)
{
	size_t len;
	char *got = read_file(path, &len);
	bool same = got != NULL && len == want->len && memcmp(got, want->p, len) == 0;

	if (!same)
		fprintf(stderr, "  %s:\n%s\n  expected:\n%s\n", path, got ? got : "(none)",
			want->p);
	free(got);
	return same;
}

/*
 * Subtask s of p, cut after every poll k = 0, 1, ...: k polls, snapshot,
 * close, then a new instance restored from it reads to the end. Records
 * before and after, bad-record counts and dead letters of both runs
 * together must be those of the input; under SL_BAD_FAIL the error of
 * whichever run meets the first bad record must name its true FILE:LINE.
 * Return the number of cuts made.
 */
static unsigned cut_everywhere(struct sl_lines_conf *conf, unsigned s, unsigned p, uint32_t cap,
			       uint32_t arena, const struct expect *e)
{
	const char *dead = conf->bad_path;
	unsigned cuts = 0;

	for (long k = 0;; k++) {
		struct sl_snap_writer w;
		struct strs got = { 0 };
		struct splits sp = { 0 };
		struct run r1, r2;
		bool last;
		int rc;

		if (dead != NULL)
			unlink(dead);
		sli_snap_writer_init(&w, 128);
		run_init(&r1, s, p, 1 << 20);
		run_init(&r2, s, p, 1 << 20);
		rc = drain_cut(&sl_lines_ops, conf, &r1, cap, arena, &got, &sp, NULL, k, &w);
		last = rc != 1;
		if (rc == 1) {
			cuts++;
			rc = drain_cut(&sl_lines_ops, conf, &r2, cap, arena, &got, &sp, &w, -1,
				       NULL);
		}
		if (conf->bad_policy == SL_BAD_FAIL && e->nbad > 0) {
			CU_ASSERT(rc == -EINVAL);
			CU_ASSERT_STRING_EQUAL(r2.err[0] ? r2.err : r1.err, e->first);
			/* The good lines before the first bad one came out, once. */
			CU_ASSERT(got.n <= e->good.n);
			for (size_t i = 0; i < got.n && i < e->good.n; i++)
				CU_ASSERT(strcmp(got.v[i], e->good.v[i]) == 0);
		} else {
			if (rc != 0)
				fprintf(stderr, "  cut %ld: %d %s %s\n", k, rc, r1.err, r2.err);
			CU_ASSERT(rc == 0);
			if (!strs_equal(&got, &e->good)) {
				fprintf(stderr, "  subtask %u/%u cap %u cut after poll %ld\n", s, p,
					cap, k);
				CU_FAIL("records before and after the cut differ from the input");
			}
			CU_ASSERT(bad_count(&r1) + bad_count(&r2) == e->nbad);
			/* Each record in its file's split; every split but the last ended once. */
			CU_ASSERT(
			    sp.of.len == e->split_of.len &&
			    (sp.of.len == 0 || memcmp(sp.of.p, e->split_of.p, sp.of.len) == 0));
			CU_ASSERT(got.n == 0 || sp.n == e->nsplits);
			CU_ASSERT(sp.ends == (e->nsplits ? e->nsplits - 1 : 0));
			if (dead != NULL && !file_is(dead, &e->dead)) {
				fprintf(stderr, "  subtask %u/%u cap %u cut after poll %ld\n", s, p,
					cap, k);
				CU_FAIL(
				    "dead letters differ: each bad record once, true FILE:LINE");
			}
		}
		strs_free(&got);
		free(sp.of.p);
		sli_snap_writer_free(&w);
		if (last)
			return cuts; /* ended or failed before poll k: every cut was made */
	}
}

/* Write @in as one file or a directory of files; name each file as the source does. */
static void write_input(const struct input *in, bool dir, char paths[][PATH_MAX])
{
	const char *d = tpath("ckdir");

	if (!dir) {
		snprintf(paths[0], PATH_MAX, "%s", tpath("ck.csv"));
		write_file(paths[0], in->file[0].p, in->file[0].len);
		return;
	}
	mkdir_clean(d);
	for (size_t f = in->nfiles; f-- > 0;) {
		snprintf(paths[f], PATH_MAX, "%s/part-%02zu.csv", d, f);
		write_file(paths[f], in->file[f].p, in->file[f].len);
	}
}

static void test_lines_restore_cuts(void)
{
	static const uint32_t caps[] = { 1, 2, 7 };
	static const enum sl_bad_policy policies[] = { SL_BAD_SKIP, SL_BAD_FILE, SL_BAD_FAIL };
	char paths[8][PATH_MAX];
	unsigned cuts = 0;

	for (int dir = 0; dir <= 1; dir++) {
		for (uint64_t seed = 1; seed <= 3; seed++) {
			struct input in;

			rnd_state = seed * 0x9E3779B97F4A7C15ULL + (uint64_t)dir;
			input_mixed(&in, dir ? 2 + rnd_below(4) : 1, 40);
			while (!dir && in.raw.n == 0) { /* one empty file: nothing to cut */
				input_free(&in);
				input_mixed(&in, 1, 40);
			}
			write_input(&in, dir, paths);
			for (unsigned p = 1; p <= 3; p += 2) {
				for (unsigned s = 0; s < p; s++) {
					struct expect e;

					expect_subtask(&in, paths, s, p, &e);
					for (size_t c = 0; c < SL_ARRAY_SIZE(caps); c++) {
						for (size_t q = 0; q < SL_ARRAY_SIZE(policies);
						     q++) {
							struct sl_lines_conf conf = {
								.path =
								    dir ? tpath("ckdir") : paths[0],
								.parse = parse_bang,
								.bad_policy = policies[q],
							};

							if (policies[q] == SL_BAD_FILE)
								conf.bad_path = tpath("ck.dead");
							/* cap 7: a full arena makes a line wait */
							cuts += cut_everywhere(
							    &conf, s, p, caps[c],
							    caps[c] == 7 ? 128 : 1 << 20, &e);
						}
					}
					expect_free(&e);
				}
			}
			input_free(&in);
		}
	}
	CU_ASSERT(cuts > 1000);
	unlink(tpath("ck.dead"));
}

/* Snapshot subtask s of p after @polls polls of @cap; 1 when taken. */
static int snap_after(struct sl_lines_conf *conf, unsigned s, unsigned p, uint32_t cap, long polls,
		      struct sl_snap_writer *w)
{
	struct strs got = { 0 };
	struct run r;
	int rc;

	sli_snap_writer_init(w, 128);
	run_init(&r, s, p, 1 << 20);
	rc = drain_cut(&sl_lines_ops, conf, &r, cap, 1 << 20, &got, NULL, NULL, polls, w);
	strs_free(&got);
	return rc;
}

/* Restore subtask s of p from @w and read to the end; the first error, its message in @r. */
static int restore_from(struct sl_lines_conf *conf, unsigned s, unsigned p,
			const struct sl_snap_writer *w, struct run *r)
{
	struct strs got = { 0 };
	int rc;

	run_init(r, s, p, 1 << 20);
	rc = drain_cut(&sl_lines_ops, conf, r, 4, 1 << 20, &got, NULL, w, -1, NULL);
	strs_free(&got);
	return rc;
}

static void test_lines_restore_mismatch(void)
{
	const char *path = tpath("in.csv");
	const char *dir = tpath("mmdir");
	struct sl_lines_conf conf = { .path = path, .parse = sl_lines_parse_line };
	struct sl_snap_writer w;
	struct buf text = { 0 };
	char want[2 * PATH_MAX + 128], a[PATH_MAX], b[PATH_MAX];
	uint64_t off10 = 0;
	struct run r;

	for (unsigned i = 1; i <= 100; i++) {
		size_t len = text.len;

		buf_fmt(&text, "line %u\n", i);
		if (i <= 10)
			off10 += text.len - len;
	}

	/* Truncated below the offset read: names the file, its size and the offset. */
	write_file(path, text.p, text.len);
	CU_ASSERT_FATAL(snap_after(&conf, 0, 1, 10, 1, &w) == 1);
	write_file(path, text.p, 20);
	CU_ASSERT(restore_from(&conf, 0, 1, &w, &r) == -EBADMSG);
	snprintf(want, sizeof(want),
		 "cannot restore: '%s' is 20 bytes, the checkpoint read it to byte %" PRIu64, path,
		 off10);
	CU_ASSERT_STRING_EQUAL(r.err, want);

	/* Grown: another size. */
	write_file(path, text.p, text.len);
	{
		FILE *f = fopen(path, "ab");

		CU_ASSERT_FATAL(f != NULL);
		fputs("line 101\n", f);
		fclose(f);
	}
	CU_ASSERT(restore_from(&conf, 0, 1, &w, &r) == -EBADMSG);
	CU_ASSERT(strstr(r.err, "cannot restore") && strstr(r.err, path) &&
		  strstr(r.err, "when the checkpoint was taken"));
	sli_snap_writer_free(&w);

	/* Another parallelism: another range. */
	write_file(path, text.p, text.len);
	CU_ASSERT_FATAL(snap_after(&conf, 1, 3, 2, 2, &w) == 1);
	CU_ASSERT(restore_from(&conf, 1, 2, &w, &r) == -EBADMSG);
	CU_ASSERT(strstr(r.err, "cannot restore") && strstr(r.err, "parallelism"));
	/* ... while the same subtask restores fine. */
	CU_ASSERT(restore_from(&conf, 1, 3, &w, &r) == 0);
	sli_snap_writer_free(&w);

	/* A directory whose file being read was renamed (same place in the order). */
	mkdir_clean(dir);
	snprintf(a, sizeof(a), "%s/a.csv", dir);
	write_file(a, text.p, text.len);
	snprintf(b, sizeof(b), "%s/b.csv", dir);
	write_file(b, text.p, text.len);
	conf.path = dir;
	CU_ASSERT_FATAL(snap_after(&conf, 0, 1, 30, 5, &w) == 1); /* inside b.csv */
	snprintf(a, sizeof(a), "%s/bb.csv", dir);
	CU_ASSERT_FATAL(rename(b, a) == 0);
	CU_ASSERT(restore_from(&conf, 0, 1, &w, &r) == -EBADMSG);
	snprintf(want, sizeof(want),
		 "cannot restore: the checkpoint was reading 'b.csv', the input now has '%s' in "
		 "its place",
		 a);
	CU_ASSERT_STRING_EQUAL(r.err, want);
	/* ... and removed: fewer files. */
	CU_ASSERT_FATAL(unlink(a) == 0);
	CU_ASSERT(restore_from(&conf, 0, 1, &w, &r) == -EBADMSG);
	CU_ASSERT(strstr(r.err, "'b.csv'") && strstr(r.err, "now holds 1 files"));
	sli_snap_writer_free(&w);
	mkdir_clean(dir);
	rmdir(dir);

	/* Not a line source's section; truncated; restore after poll. */
	{
		struct sl_gen_conf gconf = { .count = 10, .type = &gel_type, .fill = gfill };
		struct sl_batch *bt;
		size_t n = 0;
		struct gel el[10];
		int64_t ts[10];
		void *st;

		conf.path = path;
		sli_snap_writer_init(&w, 128);
		run_init(&r, 0, 1, 1 << 20);
		CU_ASSERT_FATAL(gen_cut(&gconf, &r, 3, el, ts, &n, NULL, 1, &w) == 1);
		CU_ASSERT(restore_from(&conf, 0, 1, &w, &r) == -EBADMSG);
		CU_ASSERT(strstr(r.err, "another source or format") != NULL);
		sli_snap_writer_free(&w);

		CU_ASSERT_FATAL(snap_after(&conf, 0, 1, 10, 1, &w) == 1);
		w.op.len -= 3;
		CU_ASSERT(restore_from(&conf, 0, 1, &w, &r) == -EBADMSG);
		CU_ASSERT(strstr(r.err, "truncated") != NULL);
		w.op.len += 3;

		run_init(&r, 0, 1, 1 << 20);
		CU_ASSERT_FATAL(sl_lines_ops.open(&conf, &r.info, &st) == 0);
		CU_ASSERT_FATAL(sl_batch_create(NULL, 4, sizeof(struct sl_line), 1 << 20, &bt) ==
				0);
		CU_ASSERT(sl_lines_ops.poll(st, bt) == 4);
		CU_ASSERT(restore_op(&sl_lines_ops, st, &w, &r) == -EINVAL);
		sl_batch_destroy(bt);
		sl_lines_ops.close(st);
		sli_snap_writer_free(&w);
	}
	free(text.p);
	unlink(path);
}

/* stdin cannot be replayed: snapshot and restore refuse, with a clear message. */
static void test_lines_restore_stream(void)
{
	const char *path = tpath("stream.txt");
	struct sl_lines_conf conf = { .path = "-", .parse = sl_lines_parse_line };
	struct sl_snap_writer w;
	struct run r;
	int saved, fd;
	void *st;

	write_file(path, "a\nb\n", 4);
	saved = dup(STDIN_FILENO);
	fd = open(path, O_RDONLY);
	CU_ASSERT_FATAL(saved >= 0 && fd >= 0);
	CU_ASSERT_FATAL(dup2(fd, STDIN_FILENO) == STDIN_FILENO);
	close(fd);
	sli_snap_writer_init(&w, 128);
	CU_ASSERT(snap_after(&conf, 0, 1, 1, 1, &w) == -ENOTSUP);
	run_init(&r, 0, 1, 1 << 20);
	CU_ASSERT_FATAL(sl_lines_ops.open(&conf, &r.info, &st) == 0);
	CU_ASSERT(sl_lines_ops.snapshot(st, &w) == -ENOTSUP);
	CU_ASSERT_STRING_EQUAL(r.err, "input '-' is a stream: it cannot be checkpointed");
	r.err[0] = '\0';
	CU_ASSERT(restore_op(&sl_lines_ops, st, &w, &r) == -ENOTSUP);
	CU_ASSERT_STRING_EQUAL(r.err, "input '-' is a stream: it cannot be checkpointed");
	sl_lines_ops.close(st);
	sli_snap_writer_free(&w);
	CU_ASSERT_FATAL(dup2(saved, STDIN_FILENO) == STDIN_FILENO);
	close(saved);
	unlink(path);
}

/* The generator cut after every poll gives the elements of index first..end-1 in order. */
static void test_gen_restore_cuts(void)
{
	static const uint32_t caps[] = { 1, 7, 64 };
	struct sl_gen_conf conf = { .count = 200, .seed = 11, .type = &gel_type, .fill = gfill };
	struct gel *got = calloc(conf.count, sizeof(*got));
	int64_t *ts = calloc(conf.count, sizeof(*ts));
	unsigned cuts = 0;

	CU_ASSERT_FATAL(got != NULL && ts != NULL);
	for (unsigned p = 1; p <= 3; p += 2) {
		for (unsigned s = 0; s < p; s++) {
			uint64_t first = s * conf.count / p, end = (s + 1) * conf.count / p;

			for (size_t c = 0; c < SL_ARRAY_SIZE(caps); c++) {
				for (long k = 0;; k++) {
					struct sl_snap_writer w;
					struct run r;
					size_t n = 0;
					int rc;

					sli_snap_writer_init(&w, 128);
					run_init(&r, s, p, 1 << 20);
					rc = gen_cut(&conf, &r, caps[c], got, ts, &n, NULL, k, &w);
					if (rc == 1) {
						cuts++;
						run_init(&r, s, p, 1 << 20);
						rc = gen_cut(&conf, &r, caps[c], got, ts, &n, &w,
							     -1, NULL);
					}
					CU_ASSERT_FATAL(rc == 0);
					CU_ASSERT_FATAL(n == end - first);
					for (size_t i = 0; i < n; i++) {
						struct gel want = { 0 };
						int64_t wts = 0;

						gfill(first + i, conf.seed, &want, &wts, NULL);
						CU_ASSERT(memcmp(&got[i], &want, sizeof(want)) ==
							  0);
						CU_ASSERT(ts[i] == wts);
					}
					sli_snap_writer_free(&w);
					if ((unsigned long)k > (end - first) / caps[c] + 1)
						break;
				}
			}
		}
	}
	CU_ASSERT(cuts > 300);

	/* Unbounded: s, s+p, ... continues across the cut; another parallelism is refused. */
	conf.count = 0;
	for (long k = 0; k < 20; k++) {
		struct sl_snap_writer w, w2;
		struct run r;
		size_t n = 0;

		sli_snap_writer_init(&w, 128);
		sli_snap_writer_init(&w2, 128);
		run_init(&r, 2, 3, 1 << 20);
		CU_ASSERT_FATAL(gen_cut(&conf, &r, 5, got, ts, &n, NULL, k, &w) == 1);
		run_init(&r, 2, 3, 1 << 20);
		CU_ASSERT_FATAL(gen_cut(&conf, &r, 5, got, ts, &n, &w, 4, &w2) == 1);
		CU_ASSERT_FATAL(n == (size_t)(k + 4) * 5);
		for (size_t i = 0; i < n; i++)
			CU_ASSERT(got[i].idx == 2 + 3 * i);
		run_init(&r, 2, 4, 1 << 20);
		CU_ASSERT(gen_cut(&conf, &r, 5, got, ts, &n, &w, -1, NULL) == -EBADMSG);
		CU_ASSERT(strstr(r.err, "cannot restore: generator subtask 2 of 4") != NULL);
		sli_snap_writer_free(&w);
		sli_snap_writer_free(&w2);
	}
	free(got);
	free(ts);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "generator: p=1,2,4,7 give the single run", test_gen_determinism },
		{ "generator: unbounded, strided", test_gen_unbounded },
		{ "generator: fill_batch equals fill", test_gen_fill_batch },
		{ "generator: rate limit", test_gen_rate },
		{ "generator: errors", test_gen_errors },
		{ "lines: split file p=1..8 (random)", test_lines_split_file },
		{ "lines: split directory p=1..8 (random)", test_lines_split_dir },
		{ "lines: edge cases p=1..8", test_lines_edges },
		{ "lines: full arena retried, too large is bad", test_lines_arena_full },
		{ "lines: bad-record policies and FILE:LINE", test_lines_bad_policies },
		{ "lines: oversized lines", test_lines_oversized },
		{ "lines: errors", test_lines_errors },
		{ "lines: stdin", test_lines_stdin },
		{ "lines: empty directory, rate", test_lines_empty_dir_and_rate },
		{ "lines: restore at every cut (files, dirs, p=1,3, bad records)",
		  test_lines_restore_cuts },
		{ "lines: restore on a changed input fails", test_lines_restore_mismatch },
		{ "lines: a stream cannot be checkpointed", test_lines_restore_stream },
		{ "generator: restore at every cut", test_gen_restore_cuts },
		{ "text sink: per subtask", test_sink_per_subtask },
		{ "text sink: merged, 2 threads", test_sink_merged },
		{ "text sink: /dev/full", test_sink_dev_full },
		{ "text sink: format retry", test_sink_format_retry },
		{ "text sink: stdout", test_sink_stdout },
		{ "null sink", test_null_sink },
		CU_TEST_INFO_NULL,
	};
	char cmd[PATH_MAX + 16];
	int rc;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sl-connectors-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	rc = sl_test_main("connectors", tests);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return rc;
}
