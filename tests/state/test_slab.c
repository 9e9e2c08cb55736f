/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_slab.c — the size-class memory of state entries: the class
 * mapping, reuse of freed blocks, big blocks, accounting, and allocator
 * failure.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_alloc.h>
#include <sluice/sl_common.h>

#include "sl_test.h"
#include "failing_alloc.h"
#include "sli_state.h"

static void test_classes(void)
{
	unsigned prev = 1;

	CU_ASSERT_EQUAL(sli_slab_class(0), 1);
	for (size_t n = 1; n <= SLI_SLAB_MAX; n++) {
		unsigned c = sli_slab_class(n);

		CU_ASSERT_FATAL(c >= 1 && c <= SLI_SLAB_CLASSES);
		/* The smallest class that fits, and at most 25% waste past 128 B. */
		CU_ASSERT_FATAL(sli_slab_class_size(c) >= n);
		CU_ASSERT_FATAL(c == 1 || sli_slab_class_size(c - 1) < n);
		CU_ASSERT_FATAL(n <= 128 || sli_slab_class_size(c) * 4 <= n * 5 + 4 * 32);
		CU_ASSERT_FATAL(sli_slab_class_size(c) % 16 == 0);
		CU_ASSERT_FATAL(c == prev || c == prev + 1);
		prev = c;
	}
	CU_ASSERT_EQUAL(prev, SLI_SLAB_CLASSES);
	CU_ASSERT_EQUAL(sli_slab_class_size(SLI_SLAB_CLASSES), SLI_SLAB_MAX);
	CU_ASSERT_EQUAL(sli_slab_class(SLI_SLAB_MAX + 1), 0);
	CU_ASSERT_EQUAL(sli_slab_class(SIZE_MAX / 2), 0);
}

static void test_reuse(void)
{
	struct failing f;
	struct sli_slab s;
	unsigned char *p[200];
	unsigned cls[200], c;

	failing_init(&f, -1);
	sli_slab_init(&s, &f.a);
	for (unsigned i = 0; i < SL_ARRAY_SIZE(p); i++) {
		size_t n = 1 + (i * 37) % 600;

		p[i] = sli_slab_alloc(&s, n, &cls[i]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(p[i]);
		CU_ASSERT_EQUAL((uintptr_t)p[i] % 16, 0);
		CU_ASSERT(sli_slab_usable(p[i], cls[i]) >= n);
		memset(p[i], (int)i, n);
	}
	for (unsigned i = 0; i < SL_ARRAY_SIZE(p); i++)
		CU_ASSERT_EQUAL(p[i][(i * 37) % 600], (unsigned char)i);
	CU_ASSERT_EQUAL(s.live, SL_ARRAY_SIZE(p));
	/* A freed block is the next one handed out for its class. */
	sli_slab_free(&s, p[7], cls[7]);
	CU_ASSERT_EQUAL(s.live, SL_ARRAY_SIZE(p) - 1);
	CU_ASSERT_PTR_EQUAL(sli_slab_alloc(&s, sli_slab_class_size(cls[7]), &c), p[7]);
	CU_ASSERT_EQUAL(c, cls[7]);
	CU_ASSERT_EQUAL(s.live, SL_ARRAY_SIZE(p));
	/* Small blocks cost no allocator call each: a few chunks for 200 blocks. */
	CU_ASSERT(f.live <= 4);
	sli_slab_free(&s, NULL, 3);
	sli_slab_fini(&s);
	CU_ASSERT_EQUAL(f.live, 0);
	CU_ASSERT_EQUAL(s.bytes, 0);
}

static void test_big(void)
{
	struct failing f;
	struct sli_slab s;
	void *a, *b, *c;
	unsigned ca, cb, cc;
	size_t before;

	failing_init(&f, -1);
	sli_slab_init(&s, &f.a);
	a = sli_slab_alloc(&s, 5000, &ca);
	b = sli_slab_alloc(&s, 100000, &cb);
	c = sli_slab_alloc(&s, 4097, &cc);
	CU_ASSERT_FATAL(a != NULL && b != NULL && c != NULL);
	CU_ASSERT(ca == 0 && cb == 0 && cc == 0);
	CU_ASSERT(sli_slab_usable(b, cb) >= 100000);
	CU_ASSERT_EQUAL((uintptr_t)b % 16, 0);
	memset(b, 1, 100000);
	CU_ASSERT(s.bytes >= 5000 + 100000 + 4097);
	before = s.bytes;
	sli_slab_free(&s, b, cb); /* from the middle of the list */
	CU_ASSERT(s.bytes <= before - 100000);
	CU_ASSERT_EQUAL(s.live, 2);
	CU_ASSERT_EQUAL(f.live, 2);
	sli_slab_fini(&s); /* frees a and c */
	CU_ASSERT_EQUAL(f.live, 0);
}

static void test_alloc_failure(void)
{
	struct failing f;
	struct sli_slab s;
	unsigned c;
	void *p;

	failing_init(&f, 0);
	sli_slab_init(&s, &f.a);
	CU_ASSERT_PTR_NULL(sli_slab_alloc(&s, 40, &c));
	CU_ASSERT_PTR_NULL(sli_slab_alloc(&s, 9000, &c));
	CU_ASSERT_EQUAL(s.bytes, 0);
	CU_ASSERT_EQUAL(s.live, 0);
	f.budget = 1;
	p = sli_slab_alloc(&s, 40, &c);
	CU_ASSERT_PTR_NOT_NULL(p);
	/* The same chunk serves more blocks without the allocator. */
	CU_ASSERT_PTR_NOT_NULL(sli_slab_alloc(&s, 40, &c));
	sli_slab_fini(&s);
	CU_ASSERT_EQUAL(f.live, 0);
	sli_slab_fini(&s); /* twice is harmless */
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "size classes", test_classes },
		{ "blocks are reused by class", test_reuse },
		{ "big blocks", test_big },
		{ "allocator failure", test_alloc_failure },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("state-slab", tests);
}
