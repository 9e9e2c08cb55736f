/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_rate.h — the token bucket that rate-limits sources (internal).
 *
 * A subtask gets rate/parallelism tokens per second on CLOCK_MONOTONIC;
 * the bucket holds at most max(1, 10 ms worth) and starts full. Sources
 * ask how many records they may emit now and never sleep: an empty
 * bucket makes poll() return 0.
 *
 * Threads: one bucket per subtask, used by the thread polling it.
 */
#ifndef SLI_RATE_H
#define SLI_RATE_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/** Seconds of tokens the bucket holds (its burst). */
#define SLI_RATE_BURST_S 0.01

struct sli_rate {
	bool on;
	double per_ns; /* tokens per nanosecond */
	double burst;
	double tokens;
	uint64_t last_ns;
};

static inline uint64_t sli_rate_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/** True when @rate is acceptable for a conf: 0 (unlimited) or finite and positive. */
static inline bool sli_rate_valid(double rate)
{
	return rate >= 0 && isfinite(rate);
}

/** @rate: records/s of the whole source (0: unlimited), shared by @parallelism subtasks. */
static inline void sli_rate_init(struct sli_rate *r, double rate, unsigned parallelism)
{
	double mine = rate / (parallelism ? parallelism : 1);

	r->on = rate > 0;
	r->per_ns = mine / 1e9;
	r->burst = mine * SLI_RATE_BURST_S;
	if (r->burst < 1)
		r->burst = 1;
	r->tokens = r->burst;
	r->last_ns = sli_rate_now_ns();
}

/** How many of @want records may be emitted now (refills the bucket first). */
static inline uint64_t sli_rate_allow(struct sli_rate *r, uint64_t want)
{
	uint64_t now;

	if (!r->on)
		return want;
	now = sli_rate_now_ns();
	if (now > r->last_ns) {
		r->tokens += (double)(now - r->last_ns) * r->per_ns;
		if (r->tokens > r->burst)
			r->tokens = r->burst;
		r->last_ns = now;
	}
	if (r->tokens >= (double)want)
		return want;
	return (uint64_t)r->tokens; /* 0 <= tokens < want */
}

/** Spend @n tokens (n <= what sli_rate_allow() granted). */
static inline void sli_rate_take(struct sli_rate *r, uint64_t n)
{
	if (r->on)
		r->tokens -= (double)n;
}

#endif /* SLI_RATE_H */
