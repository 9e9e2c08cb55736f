/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_log.h — leveled logging to stderr.
 *
 * The level comes from the SLUICE_LOG environment variable (error, warn,
 * info, debug; default warn) or sl_log_set_level(). Safe to call from any
 * thread; each message is written with a single write(2).
 */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sl_log_level {
	SL_LOG_ERROR = 0,
	SL_LOG_WARN = 1,
	SL_LOG_INFO = 2,
	SL_LOG_DEBUG = 3,
};

/** Set the global log level; messages above it are discarded. */
void sl_log_set_level(enum sl_log_level level);

/** Current global log level. */
enum sl_log_level sl_log_get_level(void);

/**
 * sl_log() - write one line "sluice: <level>: <module>: <message>" to
 * stderr when @level is enabled. A trailing newline is added.
 */
void sl_log(enum sl_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * sl_fput_json_str() - write @s to @f as a JSON string literal: quotes
 * around it, '"' and '\\' escaped, control bytes as \\u00XX, well-formed
 * UTF-8 as is, and any other byte as \\ufffd, so the output is valid JSON
 * even for a non-UTF-8 name or path. For the JSON that plans, topology
 * and statistics print.
 */
void sl_fput_json_str(FILE *f, const char *s);

#ifdef __cplusplus
}
#endif
#endif /* SL_LOG_H */
