/* SPDX-License-Identifier: Apache-2.0 */
/* topo.c — being written. */
#include <sluice/sl_numa.h>
