/* SPDX-License-Identifier: Apache-2.0 */
/* place.c — being written. */
#include <sluice/sl_numa.h>
