/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crash.c — named crash points for fault-injection tests.
 *
 * The environment variable SLUICE_CRASH_AT=POINT[:N] makes the process
 * kill itself with SIGKILL the N-th time (default 1) it passes crash
 * point POINT, exactly as `kill -9` at that moment would, so tests can
 * put a crash between two given steps of the checkpoint protocol instead
 * of hoping a random kill lands there. Points (see where each is called):
 *
 *   task-snapshot      a subtask serialised its snapshot, not yet handed over
 *   checkpoint-written the checkpoint's files are durable, the manifest is not
 *   manifest-durable   the manifest is durable (checkpoint complete), sinks
 *                      have not committed it
 *   sink-commit        a sink committed part of a checkpoint's files
 *   restore            an operator restored its state, the job has not run
 *
 * Unset (the normal case), a crash point costs a pthread_once() check
 * and a relaxed load. A value that does not parse is reported once and
 * ignored. Test-only: nothing in a production run sets it.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sluice/sl_log.h>

#include "sli_core.h"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static char g_point[64];
static unsigned long g_nth;
static _Atomic unsigned long g_hits;
static atomic_bool g_armed;

static void parse_env(void)
{
	const char *v = getenv("SLUICE_CRASH_AT");
	const char *colon;
	char *end;
	size_t n;

	if (v == NULL || *v == '\0')
		return;
	colon = strchr(v, ':');
	n = colon != NULL ? (size_t)(colon - v) : strlen(v);
	g_nth = 1;
	if (colon != NULL) {
		g_nth = strtoul(colon + 1, &end, 10);
		if (*end != '\0' || colon[1] == '\0' || g_nth == 0)
			n = 0;
	}
	if (n == 0 || n >= sizeof(g_point)) {
		sl_log(SL_LOG_ERROR, "crash", "SLUICE_CRASH_AT='%s' ignored: expected POINT[:N]",
		       v);
		return;
	}
	memcpy(g_point, v, n);
	g_point[n] = '\0';
	sl_log(SL_LOG_WARN, "crash", "test crash point armed: SIGKILL at hit %lu of '%s'", g_nth,
	       g_point);
	/* Relaxed: pthread_once() orders g_point and g_nth for every caller. */
	atomic_store_explicit(&g_armed, true, memory_order_relaxed);
}

void sli_crash_point(const char *point)
{
	pthread_once(&g_once, parse_env);
	/* Relaxed: written inside pthread_once(), which every caller went through. */
	if (!atomic_load_explicit(&g_armed, memory_order_relaxed) || strcmp(point, g_point) != 0)
		return;
	/* Relaxed: only the count matters; the N-th caller kills the process. */
	if (atomic_fetch_add_explicit(&g_hits, 1, memory_order_relaxed) + 1 == g_nth)
		for (kill(getpid(), SIGKILL);;)
			pause(); /* never returns: the whole process dies */
}
