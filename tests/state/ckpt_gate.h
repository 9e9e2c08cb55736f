/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ckpt_gate.h — a checkpointed test job and the gate in front of its line
 * source (source_gate.h) that makes the input's last tenth wait until
 * g_gate_ckpts checkpoints completed, so that the run takes at least that
 * many however fast the machine (test_ckpt_ops.c, test_reduce_cow.c,
 * test_ckpt_mem.c). The test's poll() passes gate_room() to gated_poll().
 * g_gate_job and g_gated are set by gate_run() before sl_job_run() starts
 * the threads, the job cleared after it returned.
 */
#ifndef CKPT_GATE_H
#define CKPT_GATE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include <sluice/sl_job.h>
#include <sluice/sl_state.h>

#include "source_gate.h"

static struct sl_job *g_gate_job;
static uint64_t g_gate_ckpts, g_gated;
/* The checkpoint statistics of the last gate_run(). */
static struct sl_checkpoint_stats g_cs;

/*
 * How many more of the @nrec input elements may pass now: all, once
 * g_gate_ckpts checkpoints completed (@cs: g_gate_job's statistics now),
 * else those up to the last tenth.
 */
static inline uint64_t gate_room(const struct sl_checkpoint_stats *cs, uint64_t nrec)
{
	if (cs->completed >= g_gate_ckpts)
		return UINT64_MAX;
	return nrec * 9 / 10 > g_gated ? nrec * 9 / 10 - g_gated : 0;
}

/*
 * Create job @name into *@job at parallelism @par and, with a checkpoint
 * directory @ck, with checkpoints every 5 ms restored from the latest one
 * and the @nmore further options @more. Return 0, or the error of an
 * option it refused (said on stderr), or -ENOMEM and *@job NULL.
 */
static inline int ckpt_job_create(const char *name, unsigned par, const char *ck,
				  const char *more[][2], unsigned nmore, struct sl_job **job)
{
	char err[1024], p[16];
	const char *opts[][2] = { { "parallelism", p },
				  { "checkpoint-dir", ck },
				  { "checkpoint-interval", "5ms" },
				  { "restore", "latest" } };
	unsigned nopts = ck != NULL ? sizeof(opts) / sizeof(opts[0]) : 1;
	int rc = 0;

	*job = NULL;
	if (sl_job_create(name, job) < 0) {
		*job = NULL;
		return -ENOMEM;
	}
	sl_job_use_checkpoint_storage(*job);
	snprintf(p, sizeof(p), "%u", par);
	for (unsigned i = 0; i < nopts + (ck != NULL ? nmore : 0) && rc == 0; i++) {
		const char **o = i < nopts ? opts[i] : more[i - nopts];

		if ((rc = sl_job_set(*job, o[0], o[1], err, sizeof(err))) < 0)
			fprintf(stderr, "sl_job_set %s=%s: %s\n", o[0], o[1], err);
	}
	return rc;
}

/*
 * Run @job (built by ckpt_job_create(), whose result was @rc) unless @rc
 * < 0, with the gate set up; its checkpoint statistics into g_cs; destroy
 * it. Return @rc or sl_job_run()'s result, whose error is in @err (and on
 * stderr).
 */
static inline int gate_run(struct sl_job *job, int rc, char *err, size_t errlen)
{
	err[0] = '\0';
	if (rc == 0) {
		g_gate_job = job;
		g_gated = 0;
		rc = sl_job_run(job, NULL, err, errlen);
		g_gate_job = NULL;
		if (rc < 0)
			fprintf(stderr, "run: %s\n", err);
	}
	sl_job_checkpoint_stats(job, &g_cs);
	sl_job_destroy(job);
	return rc;
}

#endif /* CKPT_GATE_H */
