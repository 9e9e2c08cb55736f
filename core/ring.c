/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ring.c — creation and destruction of SPSC rings. The hot path
 * (enqueue/dequeue) is inline in sl_ring.h.
 *
 * Threads: init/create/destroy are not thread-safe with respect to the
 * same ring; the ring must be published to its producer and consumer
 * threads through a synchronising operation (thread creation, a mutex or
 * a release store).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sluice/sl_ring.h>

long sl_ring_memsize(uint32_t size)
{
	if (size < 2 || size > SL_RING_MAX_SIZE || !SL_IS_POW2(size))
		return -EINVAL;
	return (long)(sizeof(struct sl_ring) + (size_t)size * sizeof(void *));
}

int sl_ring_init(struct sl_ring *r, uint32_t size, const char *name)
{
	if (r == NULL || ((uintptr_t)r % SL_RING_ALIGN) != 0)
		return -EINVAL;
	if (sl_ring_memsize(size) < 0)
		return -EINVAL;

	memset(r, 0, sizeof(*r));
	atomic_init(&r->prod.head, 0);
	atomic_init(&r->cons.tail, 0);
	r->prod.cached_tail = 0;
	r->cons.cached_head = 0;
	r->prod.mask = r->cons.mask = size - 1;
	r->prod.size = r->cons.size = size;
	r->meta.alloc = NULL;
	if (name != NULL)
		snprintf(r->meta.name, sizeof(r->meta.name), "%s", name);
	return 0;
}

int sl_ring_create(uint32_t size, const char *name, const struct sl_allocator *alloc,
		   struct sl_ring **out)
{
	struct sl_ring *r;
	long bytes = sl_ring_memsize(size);
	int rc;

	if (out == NULL || bytes < 0)
		return -EINVAL;
	if (alloc == NULL)
		alloc = sl_alloc_default();
	r = sl_alloc_aligned(alloc, (size_t)bytes, SL_RING_ALIGN);
	if (r == NULL)
		return -ENOMEM;
	rc = sl_ring_init(r, size, name);
	if (rc < 0) {
		sl_alloc_free(alloc, r);
		return rc;
	}
	r->meta.alloc = alloc;
	*out = r;
	return 0;
}

void sl_ring_destroy(struct sl_ring *r)
{
	if (r == NULL || r->meta.alloc == NULL)
		return;
	sl_alloc_free(r->meta.alloc, r);
}
