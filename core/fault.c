/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fault.c — out-of-memory injection for tests (sli_fault.h).
 */
#include <stdlib.h>

#include "sli_fault.h"

struct sli_fault sli_fault_freeze = { .env = "SLUICE_FREEZE_ENOMEM" };
struct sli_fault sli_fault_snap = { .env = "SLUICE_SNAP_ENOMEM" };
struct sli_fault sli_fault_keybuf = { .env = "SLUICE_KEYBUF_ENOMEM" };

bool sli_fault(struct sli_fault *f)
{
	const char *v = getenv(f->env);
	unsigned long n, k;

	if (v == NULL || (n = strtoul(v, NULL, 10)) == 0)
		return false;
	/* Relaxed: counters that order nothing (any interleaving is a valid test). */
	k = atomic_fetch_add_explicit(&f->calls, 1, memory_order_relaxed) + 1;
	if (k % n != 0)
		return false;
	atomic_fetch_add_explicit(&f->faults, 1, memory_order_relaxed);
	return true;
}

unsigned long sli_faults(const struct sli_fault *f)
{
	/* Relaxed: a statistic; tests read it after the job's threads were joined. */
	return atomic_load_explicit(&f->faults, memory_order_relaxed);
}
