/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_alloc.h — the one allocator interface.
 *
 * All engine memory goes through a struct sl_allocator so that NUMA
 * placement lives in one place: core/ only knows this interface and a
 * plain default built on aligned_alloc(); numa/ provides the NUMA-local
 * implementation (a mimalloc heap per worker, memory policy bound to the
 * worker's node). Hot paths take memory from per-worker pools that were
 * filled through an allocator, never from malloc directly.
 */
#ifndef SL_ALLOC_H
#define SL_ALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sl_allocator {
	/**
	 * Allocate @size bytes aligned to @align (a power of two, at least
	 * sizeof(void *)). Returns NULL when out of memory.
	 */
	void *(*alloc)(void *ctx, size_t size, size_t align);
	/** Release memory from alloc(); accepts NULL. */
	void (*free)(void *ctx, void *ptr);
	/** Passed back to both callbacks. */
	void *ctx;
	/** Short description for plans and logs, e.g. "malloc" or "mimalloc node 1". */
	const char *name;
};

/** The process-wide default allocator (aligned_alloc/free). Never NULL. */
const struct sl_allocator *sl_alloc_default(void);

/**
 * sl_alloc_aligned() - allocate through @a, or the default when @a is NULL.
 * @size is rounded up to a multiple of @align. Returns NULL when out of
 * memory or when @align is not a power of two.
 */
void *sl_alloc_aligned(const struct sl_allocator *a, size_t size, size_t align);

/** Free memory from sl_alloc_aligned() with the same allocator; accepts NULL. */
void sl_alloc_free(const struct sl_allocator *a, void *ptr);

#ifdef __cplusplus
}
#endif
#endif /* SL_ALLOC_H */
