/* SPDX-License-Identifier: Apache-2.0 */
/*
 * failing_alloc.h — an sl_allocator for the state tests that fails once a
 * budget of allocations is spent, and counts live blocks (leaks) and
 * refused allocations. Header-only: each test program includes it once.
 */
#ifndef SL_TEST_FAILING_ALLOC_H
#define SL_TEST_FAILING_ALLOC_H

#include <stdlib.h>
#include <string.h>

#include <sluice/sl_alloc.h>

struct failing {
	struct sl_allocator a;
	long budget; /* allocations left; < 0: unlimited */
	long live;   /* blocks allocated and not freed */
	long failed; /* allocations refused */
};

static void *failing_alloc(void *ctx, size_t size, size_t align)
{
	struct failing *f = ctx;

	if (f->budget == 0) {
		f->failed++;
		return NULL;
	}
	if (f->budget > 0)
		f->budget--;
	f->live++;
	return aligned_alloc(align, size);
}

static void failing_free(void *ctx, void *p)
{
	struct failing *f = ctx;

	if (p != NULL)
		f->live--;
	free(p);
}

/* Fail after @budget allocations (< 0: never). */
static void failing_init(struct failing *f, long budget)
{
	memset(f, 0, sizeof(*f));
	f->a = (struct sl_allocator){
		.alloc = failing_alloc, .free = failing_free, .ctx = f, .name = "failing"
	};
	f->budget = budget;
}

#endif /* SL_TEST_FAILING_ALLOC_H */
