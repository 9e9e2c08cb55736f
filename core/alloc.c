/* SPDX-License-Identifier: Apache-2.0 */
/*
 * alloc.c — the default allocator (aligned_alloc) and the thin wrappers
 * every module allocates through. NUMA-local allocators live in numa/.
 */
#include <stdlib.h>

#include <sluice/sl_alloc.h>
#include <sluice/sl_common.h>

static void *default_alloc(void *ctx, size_t size, size_t align)
{
	(void)ctx;
	return aligned_alloc(align, size);
}

static void default_free(void *ctx, void *ptr)
{
	(void)ctx;
	free(ptr);
}

static const struct sl_allocator default_allocator = {
	.alloc = default_alloc,
	.free = default_free,
	.ctx = NULL,
	.name = "malloc",
};

const struct sl_allocator *sl_alloc_default(void)
{
	return &default_allocator;
}

void *sl_alloc_aligned(const struct sl_allocator *a, size_t size, size_t align)
{
	if (a == NULL)
		a = &default_allocator;
	if (align < sizeof(void *) || !SL_IS_POW2(align))
		return NULL;
	if (size == 0)
		size = align;
	/* aligned_alloc wants a multiple of the alignment. */
	if (size > SIZE_MAX - (align - 1))
		return NULL;
	size = (size + align - 1) & ~(align - 1);
	return a->alloc(a->ctx, size, align);
}

void sl_alloc_free(const struct sl_allocator *a, void *ptr)
{
	if (ptr == NULL)
		return;
	if (a == NULL)
		a = &default_allocator;
	a->free(a->ctx, ptr);
}
