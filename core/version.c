/* SPDX-License-Identifier: Apache-2.0 */
/* version.c — the library version, from the build configuration. */
#include <sl_config.h>
#include <sluice/sluice.h>

const char *sl_version(void)
{
	return SL_VERSION_STRING;
}
