/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hold.c — the input hold for tests of the real binary.
 *
 * The environment variable SLUICE_TEST_HOLD_INPUT=N[:K] makes each
 * subtask of the line source (conn_lines.c) stop after N lines of its
 * range, counted from where this run started reading it (the start of
 * the range, or the position a restore put it at), and return no data,
 * never the end of its input, from then on; with :K, until K checkpoints
 * have completed in this process, then it reads on. Without K the hold
 * lasts until the job is stopped (SIGTERM, sl_job_stop()) or killed.
 * Lines are counted whether they become records, bad records or nothing
 * (blank lines). The source's position stays that of the first line not
 * returned, so a checkpoint taken during the hold restores exactly there.
 *
 * So a test can stop, crash or fail a job while it is known to be in the
 * middle of its input, after exactly the first N lines of each range,
 * however fast or loaded the machine is, and wait for checkpoints
 * without racing the end of the input. The checkpoints still run: a
 * source returning no data takes barriers as usual.
 *
 * Unset (the normal case), the hold costs each line read two branches
 * on a per-subtask flag. A value that does not parse is reported once and
 * ignored. Test-only: nothing in a production run sets it.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <sluice/sl_log.h>

#include "sli_core.h"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static uint64_t g_n, g_k;
static bool g_armed;
static _Atomic uint64_t g_completed;

static void parse_env(void)
{
	const char *v = getenv("SLUICE_TEST_HOLD_INPUT");
	char *end;

	if (v == NULL || *v == '\0')
		return;
	if (*v < '0' || *v > '9')
		goto bad;
	g_n = strtoull(v, &end, 10);
	g_k = 0;
	if (*end == ':') {
		if (end[1] < '0' || end[1] > '9')
			goto bad;
		g_k = strtoull(end + 1, &end, 10);
		if (g_k == 0)
			goto bad;
	}
	if (*end != '\0')
		goto bad;
	g_armed = true;
	if (g_k > 0)
		sl_log(SL_LOG_WARN, "hold",
		       "test input hold armed: each source subtask stops after %" PRIu64
		       " lines until %" PRIu64 " checkpoints completed",
		       g_n, g_k);
	else
		sl_log(SL_LOG_WARN, "hold",
		       "test input hold armed: each source subtask stops after %" PRIu64
		       " lines until the job stops",
		       g_n);
	return;
bad:
	sl_log(SL_LOG_ERROR, "hold", "SLUICE_TEST_HOLD_INPUT='%s' ignored: expected N[:K]", v);
}

void sli_hold_init(struct sli_hold *h)
{
	/* pthread_once() orders g_n, g_k and g_armed for every caller. */
	pthread_once(&g_once, parse_env);
	h->on = g_armed;
	h->left = g_n;
}

uint64_t sli_hold_allow_slow(struct sli_hold *h, uint64_t want)
{
	if (h->left > 0)
		return want < h->left ? want : h->left;
	/* Relaxed: only the count is read, nothing it would publish. */
	if (g_k == 0 || atomic_load_explicit(&g_completed, memory_order_relaxed) < g_k)
		return 0;
	h->on = false; /* released: read on as if never held */
	return want;
}

void sli_hold_checkpoint_completed(void)
{
	/* Relaxed: a count the holding sources compare, see sli_hold_allow_slow(). */
	atomic_fetch_add_explicit(&g_completed, 1, memory_order_relaxed);
}
