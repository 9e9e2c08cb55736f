/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_fault.h — out-of-memory injection for tests, one site per
 * environment variable. With VAR=N (N > 0) in the environment, every Nth
 * call of sli_fault() at that site in the process answers true and the
 * caller fails as if its allocation had failed; the refusals are counted.
 * Unset (production), a call costs one getenv(): the sites call it only
 * where they are about to allocate or once per snapshot, never per
 * element. A test may store 0 into calls and faults to count from a known point.
 */
#ifndef SLI_FAULT_H
#define SLI_FAULT_H

#include <stdatomic.h>
#include <stdbool.h>

struct sli_fault {
	const char *env;
	_Atomic unsigned long calls, faults;
};

/* SLUICE_FREEZE_ENOMEM: image allocations (sli_img_room(), sli_checkpoint.h). */
extern struct sli_fault sli_fault_freeze;
/*
 * SLUICE_SNAP_ENOMEM: serialisations into a snapshot writer, counted at
 * their first sli_snap_extend() after sli_snap_writer_reset() (sli_snap.h):
 * the Nth such serialisation's first record fails.
 */
extern struct sli_fault sli_fault_snap;
/* SLUICE_KEYBUF_ENOMEM: growths of an aggregate window's key buffer (window.c key_keep()). */
extern struct sli_fault sli_fault_keybuf;

/* Whether this call at site @f must fail (see above). */
bool sli_fault(struct sli_fault *f);
/* The calls site @f refused so far in this process. */
unsigned long sli_faults(const struct sli_fault *f);

#endif /* SLI_FAULT_H */
