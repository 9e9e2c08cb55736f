/* SPDX-License-Identifier: Apache-2.0 */
/* mem.c — being written. */
#include <sluice/sl_numa.h>
