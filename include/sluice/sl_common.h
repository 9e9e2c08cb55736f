/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_common.h — small macros every Sluice module uses: cache-line size,
 * assertions, branch hints, array size.
 *
 * Conventions (see docs/ARCHITECTURE.md): functions returning int give
 * >= 0 on success or -errno; constructors return the object through an
 * out-pointer; destroy/fini accept NULL.
 */
#ifndef SL_COMMON_H
#define SL_COMMON_H

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Size of a cache line on every x86-64 and most arm64 parts. */
#define SL_CACHE_LINE 64

/** Number of elements of a true array (not a pointer). */
#define SL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define sl_likely(x)   __builtin_expect(!!(x), 1)
#define sl_unlikely(x) __builtin_expect(!!(x), 0)

/** True when x is a power of two (0 is not). */
#define SL_IS_POW2(x) ((x) != 0 && (((x) & ((x)-1)) == 0))

void sli_assert_fail(const char *expr, const char *file, int line, const char *func)
    __attribute__((noreturn));

/*
 * SL_ASSERT checks an internal invariant in debug builds and compiles to
 * nothing otherwise. Public functions check their arguments with real
 * code paths returning -EINVAL, never with SL_ASSERT.
 */
#ifdef SL_DEBUG
#define SL_ASSERT(e) ((e) ? (void)0 : sli_assert_fail(#e, __FILE__, __LINE__, __func__))
#else
#define SL_ASSERT(e) ((void)0)
#endif

#ifdef __cplusplus
}
#endif
#endif /* SL_COMMON_H */
