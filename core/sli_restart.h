/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_restart.h — restart strategies (restart.c): the job's restart-*
 * options and the decision, after a failed attempt, whether and when
 * sl_job_run() starts the job again from its newest complete checkpoint.
 *
 * Flink's strategies and defaults (Flink >= 1.19): none, fixed-delay,
 * failure-rate, exponential-delay; the default is exponential-delay when
 * checkpoints are on (checkpoint-dir), none otherwise.
 *
 * Threads: the options are set and read by the job's thread; a struct
 * sli_restart lives in one sl_job_run() call.
 */
#ifndef SLI_RESTART_H
#define SLI_RESTART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sli_restart_kind {
	SLI_RESTART_DEFAULT = 0, /* exponential-delay with a checkpoint-dir, else none */
	SLI_RESTART_NONE,
	SLI_RESTART_FIXED_DELAY,
	SLI_RESTART_FAILURE_RATE,
	SLI_RESTART_EXPONENTIAL_DELAY,
};

/* The job's restart options (sl_job_set()); durations in milliseconds. */
struct sli_restart_opts {
	enum sli_restart_kind kind;	/* restart-strategy */
	unsigned attempts;		/* restart-attempts (fixed-delay, default 1) */
	int64_t delay_ms;		/* restart-delay (fixed-delay, failure-rate; 1 s) */
	unsigned max_failures;		/* restart-max-failures-per-interval (1) */
	int64_t interval_ms;		/* restart-failure-rate-interval (1 min) */
	int64_t initial_ms;		/* restart-initial-backoff (1 s) */
	int64_t max_ms;			/* restart-max-backoff (1 min) */
	double multiplier;		/* restart-backoff-multiplier (1.5) */
	int64_t reset_ms;		/* restart-reset-backoff-threshold (1 h) */
	double jitter;			/* restart-jitter-factor (0.1) */
	unsigned attempts_before_reset; /* restart-attempts-before-reset-backoff (INT_MAX) */
};

void sli_restart_opts_init(struct sli_restart_opts *o);
/* sl_job_set() for the restart keys: 0, -EINVAL (with a sentence), or 1: not ours. */
int sli_restart_set_opt(struct sli_restart_opts *o, const char *key, const char *value,
			char *errbuf, size_t errlen);
/* The strategy's name as the option spells it ("exponential-delay"). */
const char *sli_restart_name(enum sli_restart_kind kind);

/* The restart state of one sl_job_run(). */
struct sli_restart {
	struct sli_restart_opts o;
	enum sli_restart_kind kind; /* resolved: never SLI_RESTART_DEFAULT */
	unsigned restarts;	    /* restarts so far */
	unsigned attempts;	    /* exponential-delay: restarts since the last reset */
	double backoff_ms;	    /* exponential-delay: the current backoff, before jitter */
	int64_t restart_ms;	    /* exponential-delay: when the last restart was scheduled */
	int64_t *times;		    /* failure-rate: the newest failures, oldest first */
	unsigned ntimes, captimes;
	uint64_t rng; /* jitter: xorshift64* state, never 0 */
};

/*
 * Resolve the strategy of @o (copied) for a job with or without
 * checkpoints; @seed makes the jitter reproducible (tests).
 * Return: 0, or -EINVAL with a sentence when the options contradict each
 * other (restart-initial-backoff above restart-max-backoff).
 */
int sli_restart_init(struct sli_restart *r, const struct sli_restart_opts *o, bool checkpoints,
		     uint64_t seed, char *errbuf, size_t errlen);
void sli_restart_fini(struct sli_restart *r);

/*
 * An attempt failed at @now_ms (a monotonic clock): return the delay in
 * milliseconds before the next attempt (>= 0, counted in r->restarts), or
 * -1: the strategy gives up.
 */
int64_t sli_restart_next(struct sli_restart *r, int64_t now_ms);

#endif /* SLI_RESTART_H */
