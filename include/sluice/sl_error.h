/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_error.h — error reporting helpers.
 *
 * Every Sluice function that can fail returns a negative errno value.
 * Functions that validate user input (configuration, graphs, command
 * lines) additionally fill a caller-supplied error buffer with one
 * sentence a user can act on. Library code never prints the errors it
 * returns: whoever handles the error reports it, once.
 */
#ifndef SL_ERROR_H
#define SL_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * sl_strerror() - describe a Sluice return code.
 * @rc: a negative errno value as returned by an sl_* function (a positive
 *      errno value is accepted too).
 *
 * Return: a static, thread-safe string; never NULL.
 */
const char *sl_strerror(int rc);

/**
 * sl_errbuf_set() - format a message into a caller's error buffer.
 * @errbuf: destination, may be NULL (then nothing is written).
 * @errlen: size of @errbuf in bytes.
 * @rc: the value to return.
 *
 * Return: @rc, so that callers can write `return sl_errbuf_set(...)`.
 */
int sl_errbuf_set(char *errbuf, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#ifdef __cplusplus
}
#endif
#endif /* SL_ERROR_H */
