/* SPDX-License-Identifier: Apache-2.0 */
/*
 * error.c — sl_strerror(), error buffers and the debug assertion handler.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_common.h>
#include <sluice/sl_error.h>

const char *sl_strerror(int rc)
{
	if (rc < 0)
		rc = -rc;
	if (rc == 0)
		return "success";
	/* strerror() of glibc returns static strings for known codes. */
	return strerrordesc_np(rc) ? strerrordesc_np(rc) : "unknown error";
}

int sl_errbuf_set(char *errbuf, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (errbuf != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

void sli_assert_fail(const char *expr, const char *file, int line, const char *func)
{
	fprintf(stderr, "sluice: internal error: assertion '%s' failed at %s:%d in %s()\n", expr,
		file, line, func);
	abort();
}
