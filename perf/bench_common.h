/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_common.h — helpers shared by the perf/ programs: a monotonic
 * clock, medians, option parsing, the seeded mixer, the replay source
 * and the JSON/table conventions (see perf/README.md).
 * Benchmarks report medians of several runs and ratios against a
 * baseline measured in the same process, never absolute pass/fail.
 */
#ifndef SL_BENCH_COMMON_H
#define SL_BENCH_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sluice/sl_connectors.h>
#include <sluice/sl_error.h>
#include <sluice/sl_job.h>

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
		for (uint32_t k = 0; k < m; k++)
			out->ts[out->n + k] = ts[pos + k] + shift;
		out->n += m;
		done += m;
		r->next += m;
	}
	return r->next == count ? (int)done | SL_SOURCE_END : (int)done;
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
