/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restart.c — restart strategies: parsing the restart-* options and
 * deciding, after each failed attempt, the delay before the next one or
 * that the job fails for good. Pure computation on a caller's clock, so
 * the unit tests check exact sequences.
 *
 * Semantics (Flink's RestartBackoffTimeStrategy implementations):
 *  - fixed-delay: restart-attempts restarts, each after restart-delay.
 *  - failure-rate: restart after restart-delay unless this failure is the
 *    (max + 1)-th within restart-failure-rate-interval.
 *  - exponential-delay: the first backoff is restart-initial-backoff, each
 *    next one multiplied by restart-backoff-multiplier up to
 *    restart-max-backoff; a job that ran restart-reset-backoff-threshold
 *    since its last restart starts over at the initial backoff; more than
 *    restart-attempts-before-reset-backoff restarts without a reset give
 *    up. Jitter moves each delay by up to +-jitter-factor of the backoff
 *    (never above the maximum); the next backoff grows from the un-jittered
 *    one, so the sequence does not drift.
 *
 * Threads: one sl_job_run() call at a time.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_common.h>
#include <sluice/sl_error.h>
#include <sluice/sl_job.h>

#include "sli_core.h"

static const char *const names[] = {
	[SLI_RESTART_DEFAULT] = "default",
	[SLI_RESTART_NONE] = "none",
	[SLI_RESTART_FIXED_DELAY] = "fixed-delay",
	[SLI_RESTART_FAILURE_RATE] = "failure-rate",
	[SLI_RESTART_EXPONENTIAL_DELAY] = "exponential-delay",
};

const char *sli_restart_name(enum sli_restart_kind kind)
{
	return (unsigned)kind < SL_ARRAY_SIZE(names) ? names[kind] : "?";
}

void sli_restart_opts_init(struct sli_restart_opts *o)
{
	*o = (struct sli_restart_opts){
		.kind = SLI_RESTART_DEFAULT,
		.attempts = 1,
		.delay_ms = 1000,
		.max_failures = 1,
		.interval_ms = 60 * 1000,
		.initial_ms = 1000,
		.max_ms = 60 * 1000,
		.multiplier = 1.5,
		.reset_ms = 60 * 60 * 1000,
		.jitter = 0.1,
		.attempts_before_reset = INT_MAX,
	};
}

static int parse_uint(const char *key, const char *value, unsigned min, unsigned max, unsigned *out,
		      char *errbuf, size_t errlen)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = value[0] >= '0' && value[0] <= '9' ? strtoul(value, &end, 10) : ULONG_MAX;
	if (errno || v == ULONG_MAX || *end != '\0' || v < min || v > max)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "bad value '%s' for option '%s': expected an integer from %u "
				     "to %u",
				     value, key, min, max);
	*out = (unsigned)v;
	return 0;
}

static int parse_double(const char *key, const char *value, double min, double max, double *out,
			char *errbuf, size_t errlen)
{
	char *end;
	double v;

	errno = 0;
	v = (value[0] >= '0' && value[0] <= '9') ? strtod(value, &end) : NAN;
	if (errno || isnan(v) || *end != '\0' || v < min || v > max)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "bad value '%s' for option '%s': expected a number from %g "
				     "to %g",
				     value, key, min, max);
	*out = v;
	return 0;
}

int sli_restart_set_opt(struct sli_restart_opts *o, const char *key, const char *value,
			char *errbuf, size_t errlen)
{
	static const struct {
		const char *key;
		int64_t min;
		size_t off;
	} durations[] = {
		{ "restart-delay", 0, offsetof(struct sli_restart_opts, delay_ms) },
		{ "restart-failure-rate-interval", 1,
		  offsetof(struct sli_restart_opts, interval_ms) },
		{ "restart-initial-backoff", 0, offsetof(struct sli_restart_opts, initial_ms) },
		{ "restart-max-backoff", 0, offsetof(struct sli_restart_opts, max_ms) },
		{ "restart-reset-backoff-threshold", 1,
		  offsetof(struct sli_restart_opts, reset_ms) },
	};

	if (strncmp(key, "restart-", 8) != 0)
		return 1;
	for (size_t i = 0; i < SL_ARRAY_SIZE(durations); i++) {
		if (strcmp(key, durations[i].key) == 0)
			return sli_set_duration_opt(key, value, durations[i].min,
						    (int64_t *)((char *)o + durations[i].off),
						    errbuf, errlen);
	}
	if (!strcmp(key, "restart-strategy")) {
		for (unsigned k = SLI_RESTART_NONE; k < SL_ARRAY_SIZE(names); k++)
			if (!strcmp(value, names[k])) {
				o->kind = (enum sli_restart_kind)k;
				return 0;
			}
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "bad value '%s' for option 'restart-strategy': expected none, "
				     "fixed-delay, failure-rate or exponential-delay",
				     value);
	}
	if (!strcmp(key, "restart-attempts"))
		return parse_uint(key, value, 0, INT_MAX, &o->attempts, errbuf, errlen);
	if (!strcmp(key, "restart-max-failures-per-interval"))
		return parse_uint(key, value, 1, 1000000, &o->max_failures, errbuf, errlen);
	if (!strcmp(key, "restart-attempts-before-reset-backoff"))
		return parse_uint(key, value, 1, INT_MAX, &o->attempts_before_reset, errbuf,
				  errlen);
	if (!strcmp(key, "restart-backoff-multiplier"))
		return parse_double(key, value, 1.0, 1000.0, &o->multiplier, errbuf, errlen);
	if (!strcmp(key, "restart-jitter-factor"))
		return parse_double(key, value, 0.0, 1.0, &o->jitter, errbuf, errlen);
	return 1;
}

int sli_restart_init(struct sli_restart *r, const struct sli_restart_opts *o, bool checkpoints,
		     uint64_t seed, char *errbuf, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	r->o = *o;
	r->kind = o->kind;
	if (r->kind == SLI_RESTART_DEFAULT)
		r->kind = checkpoints ? SLI_RESTART_EXPONENTIAL_DELAY : SLI_RESTART_NONE;
	r->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
	if (r->kind == SLI_RESTART_EXPONENTIAL_DELAY && o->initial_ms > o->max_ms)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "option 'restart-initial-backoff' (%lld ms) is above "
				     "'restart-max-backoff' (%lld ms)",
				     (long long)o->initial_ms, (long long)o->max_ms);
	return 0;
}

void sli_restart_fini(struct sli_restart *r)
{
	free(r->times);
	r->times = NULL;
	r->ntimes = r->captimes = 0;
}

/* Uniform in [0, 1): xorshift64* (reproducible from the seed, no shared state). */
static double uniform(struct sli_restart *r)
{
	r->rng ^= r->rng >> 12;
	r->rng ^= r->rng << 25;
	r->rng ^= r->rng >> 27;
	return (double)((r->rng * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

static int64_t exponential(struct sli_restart *r, int64_t now_ms)
{
	const struct sli_restart_opts *o = &r->o;
	double d;

	if (r->attempts > 0 && now_ms - r->restart_ms >= o->reset_ms)
		r->attempts = 0; /* ran long enough since the last restart */
	if (r->attempts >= o->attempts_before_reset)
		return -1;
	r->backoff_ms = r->attempts == 0 ? (double)o->initial_ms
					 : fmin(r->backoff_ms * o->multiplier, (double)o->max_ms);
	r->attempts++;
	d = r->backoff_ms;
	if (o->jitter > 0)
		d += (uniform(r) * 2.0 - 1.0) * o->jitter * r->backoff_ms;
	d = fmin(fmax(d, 0.0), (double)o->max_ms);
	r->restart_ms = now_ms + (int64_t)d;
	return (int64_t)d;
}

static int64_t failure_rate(struct sli_restart *r, int64_t now_ms)
{
	const struct sli_restart_opts *o = &r->o;

	/* Forget failures older than the interval; max of them left means this one is too many. */
	while (r->ntimes > 0 && now_ms - r->times[0] > o->interval_ms) {
		memmove(r->times, r->times + 1, (r->ntimes - 1) * sizeof(*r->times));
		r->ntimes--;
	}
	if (r->ntimes >= o->max_failures)
		return -1;
	if (r->ntimes == r->captimes) {
		unsigned cap = r->captimes ? 2 * r->captimes : 8;
		int64_t *t = realloc(r->times, cap * sizeof(*t));

		if (t == NULL)
			return -1;
		r->times = t;
		r->captimes = cap;
	}
	r->times[r->ntimes++] = now_ms;
	return o->delay_ms;
}

int64_t sli_restart_next(struct sli_restart *r, int64_t now_ms)
{
	int64_t d;

	switch (r->kind) {
	case SLI_RESTART_FIXED_DELAY:
		d = r->restarts < r->o.attempts ? r->o.delay_ms : -1;
		break;
	case SLI_RESTART_FAILURE_RATE:
		d = failure_rate(r, now_ms);
		break;
	case SLI_RESTART_EXPONENTIAL_DELAY:
		d = exponential(r, now_ms);
		break;
	default:
		d = -1;
		break;
	}
	if (d >= 0)
		r->restarts++;
	return d;
}
