/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c — leveled logging to stderr. The level is read once from
 * SLUICE_LOG, then kept in an atomic so any thread may log or change it.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sluice/sl_log.h>

/* -1: not yet read from the environment. Relaxed is enough: the level is
 * a hint, no other data is published through it. */
static _Atomic int log_level = -1;

static const char *const level_names[] = { "error", "warning", "info", "debug" };

static int level_from_env(void)
{
	const char *s = getenv("SLUICE_LOG");

	if (s == NULL)
		return SL_LOG_WARN;
	if (!strcmp(s, "error"))
		return SL_LOG_ERROR;
	if (!strcmp(s, "info"))
		return SL_LOG_INFO;
	if (!strcmp(s, "debug"))
		return SL_LOG_DEBUG;
	return SL_LOG_WARN;
}

enum sl_log_level sl_log_get_level(void)
{
	int l = atomic_load_explicit(&log_level, memory_order_relaxed);

	if (l < 0) {
		l = level_from_env();
		atomic_store_explicit(&log_level, l, memory_order_relaxed);
	}
	return (enum sl_log_level)l;
}

void sl_log_set_level(enum sl_log_level level)
{
	atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

void sl_log(enum sl_log_level level, const char *module, const char *fmt, ...)
{
	char buf[1024];
	int n;
	va_list ap;

	if ((int)level > (int)sl_log_get_level())
		return;
	n = snprintf(buf, sizeof(buf), "sluice: %s: %s: ", level_names[level],
		     module ? module : "core");
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = 0;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	/* One write(2) so that lines from several threads do not interleave. */
	if (write(STDERR_FILENO, buf, (size_t)n) < 0)
		return;
}

/* Length of the well-formed UTF-8 sequence at @s, or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates and code points past U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void sl_fput_json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p != '\0') {
		size_t n = utf8_len(p);

		if (*p == '"' || *p == '\\') {
			fprintf(f, "\\%c", *p);
		} else if (*p < 0x20) {
			fprintf(f, "\\u%04x", *p);
		} else if (n == 0) {
			/* Keep the output valid JSON even for a non-UTF-8 path. */
			fputs("\\ufffd", f);
			n = 1;
		} else {
			fwrite(p, 1, n, f);
		}
		p += n;
	}
	fputc('"', f);
}
