/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_common.h — helpers shared by the perf/ programs: a monotonic
 * clock, medians, option parsing (bench_getopt()), the seeded mixer, the
 * keyed-window elements and callbacks, the replay source and the
 * JSON/table conventions (see perf/README.md).
 * Benchmarks report medians of several runs and ratios against a
 * baseline measured in the same process, never absolute pass/fail.
 */
#ifndef SL_BENCH_COMMON_H
#define SL_BENCH_COMMON_H

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sluice/sl_connectors.h>
#include <sluice/sl_error.h>
#include <sluice/sl_job.h>
#include <sluice/sl_time.h>

/* Runs per figure at the most (the benches' --runs bound). */
#define BENCH_MAX_RUNS 31

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of n values; sorts v in place. */
static inline double bench_median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median of the first n (<= BENCH_MAX_RUNS) values of v, v left as it is. */
static inline double bench_median_of(const double *v, unsigned n)
{
	double tmp[BENCH_MAX_RUNS];

	memcpy(tmp, v, n * sizeof(*v));
	return bench_median(tmp, n);
}

/* splitmix64's finaliser: the benches' seeded data. */
static inline uint64_t bench_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull; /* splitmix64 */
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* A decimal option value in [lo, hi], else -EINVAL. */
static inline int bench_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

/*
 * The options the benches spell alike. A bench fills in prog, usage and its
 * defaults, then calls bench_getopt() until it returns -1.
 */
struct bench_args {
	const char *prog;	/* for messages */
	void (*usage)(FILE *f); /* the bench's usage text */
	unsigned runs;		/* --runs R ('r'): 1..BENCH_MAX_RUNS */
	bool runs_set;
	uint32_t batch;	     /* --batch-size B ('b'): 1..65536 */
	const char *idle;    /* --idle busy|sleep ('i') */
	bool quick;	     /* --quick ('q') */
	unsigned quick_runs; /* runs under --quick without --runs (0: runs) */
	const char *json;    /* --json PATH ('j') */
};

/* longopts entries for the options bench_getopt() handles: all benches', engine benches'. */
/* clang-format off */
#define BENCH_OPTS_COMMON                               \
	{ "runs", required_argument, NULL, 'r' },       \
	{ "json", required_argument, NULL, 'j' },       \
	{ "help", no_argument, NULL, 'h' }
#define BENCH_OPTS_ENGINE                               \
	{ "batch-size", required_argument, NULL, 'b' }, \
	{ "idle", required_argument, NULL, 'i' },       \
	{ "quick", no_argument, NULL, 'q' }
/* clang-format on */

/* "@prog: bad value '@arg' for --NAME", NAME @c's long option in @longopts. Returns 2. */
static inline int bench_bad_value(const char *prog, const struct option *longopts, int c,
				  const char *arg)
{
	const char *name = "?";

	for (const struct option *o = longopts; o->name != NULL; o++)
		if (o->val == c) {
			name = o->name;
			break;
		}
	fprintf(stderr, "%s: bad value '%s' for --%s\n", prog, arg, name);
	return 2;
}

/*
 * getopt_long() over @longopts (the only short option is -h). The shared
 * options are handled here by their letters: 'r', 'b', 'i', 'q', 'j' into
 * @a, 'h' prints the usage and exits 0; an unknown option, a bad value of
 * a shared option or an argument left over exits 2 (said on stderr).
 * Returns the letter of an option the bench handles itself (optarg set),
 * or -1 after the last option.
 */
static inline int bench_getopt(int argc, char **argv, const struct option *longopts,
			       struct bench_args *a)
{
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (bench_parse_u64(optarg, 1, BENCH_MAX_RUNS, &v) < 0)
				exit(bench_bad_value(a->prog, longopts, c, optarg));
			a->runs = (unsigned)v;
			a->runs_set = true;
			break;
		case 'b':
			if (bench_parse_u64(optarg, 1, 65536, &v) < 0)
				exit(bench_bad_value(a->prog, longopts, c, optarg));
			a->batch = (uint32_t)v;
			break;
		case 'i':
			if (strcmp(optarg, "busy") && strcmp(optarg, "sleep"))
				exit(bench_bad_value(a->prog, longopts, c, optarg));
			a->idle = optarg;
			break;
		case 'q':
			a->quick = true;
			break;
		case 'j':
			a->json = optarg;
			break;
		case 'h':
			a->usage(stdout);
			exit(0);
		case '?':
			a->usage(stderr);
			exit(2);
		default:
			return c;
		}
	}
	if (optind < argc) {
		a->usage(stderr);
		exit(2);
	}
	if (a->quick && !a->runs_set && a->quick_runs)
		a->runs = a->quick_runs;
	return -1;
}

/* Open @path for a JSON file; NULL with "@prog: cannot write '@path': error" said. */
static inline FILE *bench_json_open(const char *prog, const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		fprintf(stderr, "%s: cannot write '%s': %s\n", prog, path, strerror(errno));
	return f;
}

/* A JSON array of the @n values @v, @prec decimals, @sep between them. */
static inline void bench_json_array(FILE *f, const double *v, unsigned n, int prec, const char *sep)
{
	fputc('[', f);
	for (unsigned k = 0; k < n; k++)
		fprintf(f, "%s%.*f", k ? sep : "", prec, v[k]);
	fputc(']', f);
}

/* Close a JSON file written with stdio: 0, or -EIO with "@prog: writing '@path' failed". */
static inline int bench_json_close(FILE *f, const char *prog, const char *path)
{
	if (fclose(f) != 0) {
		fprintf(stderr, "%s: writing '%s' failed\n", prog, path);
		return -EIO;
	}
	return 0;
}

/* sl_job_set(), the error printed as "@prog: key=value: error". */
static inline int bench_job_set(const char *prog, struct sl_job *job, const char *key,
				const char *value)
{
	char err[256];
	int rc = sl_job_set(job, key, value, err, sizeof(err));

	if (rc < 0)
		fprintf(stderr, "%s: %s=%s: %s\n", prog, key, value, err);
	return rc;
}

/*
 * Keyed windows (bench_window, bench_checkpoint): 16-byte { key, val }
 * elements (bench_key_u64() reads the key of any element that starts with
 * it), int64 accumulators, one result per window and key, hashed so the
 * null sink's checksum does not depend on their order.
 */
struct bench_kv {
	uint64_t key;
	int64_t val;
};
_Static_assert(sizeof(struct bench_kv) == 16, "elements are 16 bytes");

/* A window result. */
struct bench_wres {
	uint64_t hash; /* first: the null sink's checksum sums it */
	int64_t start;
	uint64_t key;
	int64_t value;
};

static inline uint64_t bench_res_hash(int64_t start, uint64_t key, int64_t value)
{
	return bench_mix64((uint64_t)start * 0x9e3779b97f4a7c15ull ^
			   bench_mix64(key ^ (uint64_t)value << 20));
}

/* key_by: the element's first 8 bytes. */
static inline void bench_key_u64(const void *elem, const struct sl_batch *src, struct sl_key *out)
{
	(void)src;
	out->ptr = elem;
	out->len = sizeof(uint64_t);
}

static inline void bench_i64_create(void *acc, void *arg)
{
	(void)arg;
	*(int64_t *)acc = 0;
}

static inline void bench_i64_count(void *acc, const void *elem, int64_t ts,
				   const struct sl_batch *src, void *arg)
{
	(void)elem, (void)ts, (void)src, (void)arg;
	++*(int64_t *)acc;
}

static inline void bench_i64_merge(void *dst, const void *src, void *arg)
{
	(void)arg;
	*(int64_t *)dst += *(const int64_t *)src;
}

/* Emit the window's struct bench_wres for an int64 accumulator, at the window's last ms. */
static inline int bench_i64_result(const struct sl_window *w, const struct sl_key *key,
				   const void *acc, struct sl_collector *out, void *arg)
{
	struct bench_wres r = { 0, w->start, 0, *(const int64_t *)acc };

	(void)arg;
	memcpy(&r.key, key->ptr, sizeof(r.key));
	r.hash = bench_res_hash(r.start, r.key, r.value);
	return sl_emit(out, &r, w->end - 1, NULL);
}

/*
 * The replay source: a pre-generated buffer, replayed `count` elements
 * long lap after lap, copied out per batch (memcpy) with its timestamps
 * shifted by lap x the bench's lap span. Parallelism 1 only. The bench
 * keeps its own typed configuration (its loops read it in place) and
 * passes it as the source's argument; its poll hands the fields to
 * bench_replay_poll().
 */
struct bench_replay {
	const void *conf; /* the bench's configuration, the source's argument */
	uint64_t next;	  /* elements produced */
};

static inline int bench_replay_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	struct bench_replay *r;

	if (info->parallelism != 1)
		return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
				     "replay: parallelism must be 1");
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->conf = arg;
	*state = r;
	return 0;
}

/*
 * dst[k] = src[k] + shift for k < n: a replay lap's timestamps. The
 * pointers are restrict locals because the project builds with
 * -fno-strict-aliasing: written as out->ts[k] = ..., GCC reloaded out->ts
 * after every store (an int64_t store might change the pointer) and did
 * not vectorise the loop, which cost bench_window's tumbling query about
 * a quarter of the hand-written loop's time per record.
 *
 * Each line of 8 is copied after a prefetch of the line n timestamps on,
 * where the next poll reads: a source polled batch by batch reads its
 * input in bursts of one 4 KiB page (512 timestamps), with the engine's
 * work in between, and the hardware prefetcher starts over at each page,
 * so the copy waited on memory (a read-ahead, as a source over a file
 * would ask for; the address is not dereferenced, and a prefetch past the
 * end of the buffer does not fault).
 */
static inline void bench_ts_shift(int64_t *restrict dst, const int64_t *restrict src, uint32_t n,
				  int64_t shift)
{
	uint32_t k = 0;

	for (; k + 8 <= n; k += 8) {
		__builtin_prefetch(
		    (const void *)((uintptr_t)(src + k) + (uintptr_t)n * sizeof(*src)));
		for (uint32_t i = 0; i < 8; i++)
			dst[k + i] = src[k + i] + shift;
	}
	for (; k < n; k++)
		dst[k] = src[k] + shift;
}

/*
 * Copy the next elements of the @len-element buffer @buf (@esz bytes each,
 * timestamps @ts) into @out, up to its capacity and @count in all; a lap's
 * timestamps are shifted by lap * @lap_span. Returns what a poll returns.
 */
static inline int bench_replay_poll(struct bench_replay *r, struct sl_batch *out, const void *buf,
				    const int64_t *ts, size_t esz, uint64_t len, uint64_t count,
				    uint64_t lap_span)
{
	uint64_t want = out->cap - out->n;
	uint32_t done = 0;

	if (count - r->next < want)
		want = count - r->next;
	while (done < want) {
		uint64_t pos = r->next % len, lap = r->next / len;
		uint32_t m = (uint32_t)(len - pos < want - done ? len - pos : want - done);
		int64_t shift = (int64_t)(lap * lap_span);

		memcpy(sl_batch_elem(out, out->n), (const char *)buf + pos * esz, (size_t)m * esz);
		bench_ts_shift(out->ts + out->n, ts + pos, m, shift);
		out->n += m;
		done += m;
		r->next += m;
	}
	return r->next == count ? (int)done | SL_SOURCE_END : (int)done;
}

/*
 * As bench_replay_poll(), but the elements are lent, not copied: @out
 * borrows (sl_batch_borrow()) the next run of the buffer, up to its
 * capacity and @count in all (the buffer lives as long as the job,
 * unchanged). Only the timestamps are written, shifted as there. A batch
 * that would cross the end of a lap is copied (bench_replay_poll()), so
 * that batches stay full and as aligned as the copying source's (the
 * benches' watermark periods are multiples of the batch size).
 */
static inline int bench_replay_lend(struct bench_replay *r, struct sl_batch *out, const void *buf,
				    const int64_t *ts, size_t esz, uint64_t len, uint64_t count,
				    uint64_t lap_span)
{
	uint64_t pos = r->next % len, lap = r->next / len, m = out->cap;
	int64_t shift = (int64_t)(lap * lap_span);
	int rc;

	if (count - r->next < m)
		m = count - r->next;
	if (len - pos < m)
		return bench_replay_poll(r, out, buf, ts, esz, len, count, lap_span);
	rc = sl_batch_borrow(out, (const char *)buf + pos * esz, (uint32_t)m);
	if (rc < 0)
		return rc;
	bench_ts_shift(out->ts, ts + pos, (uint32_t)m, shift);
	r->next += m;
	return r->next == count ? (int)m | SL_SOURCE_END : (int)m;
}

static inline void bench_replay_close(void *state)
{
	free(state);
}

static inline void bench_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

#endif /* SL_BENCH_COMMON_H */
