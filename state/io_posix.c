/* SPDX-License-Identifier: Apache-2.0 */
/*
 * io_posix.c — the I/O engine without io_uring: each request of a batch
 * with pread/pwrite/fsync in turn (blocking), continuing short transfers;
 * doing them in order is what SLI_IO_LINK asks, so a link only means
 * that a failure cancels the rest of its chain. Used
 * where io_uring is unavailable or not wanted (sanitizer builds), and as
 * the baseline io_uring is measured against. See sli_io.h.
 */
#include <errno.h>
#include <unistd.h>

#include "sli_io.h"

struct posix_io {
	struct sli_io io;
	const struct sl_allocator *a;
};

static int one(struct sli_io_req *r)
{
	uint32_t done = 0;

	if (r->op == SLI_IO_FSYNC) {
		while (fsync(r->fd) < 0)
			if (errno != EINTR)
				return -errno;
		return 0;
	}
	while (done < r->len) {
		ssize_t k = r->op == SLI_IO_READ ? pread(r->fd, (char *)r->buf + done,
							 r->len - done, (off_t)(r->off + done))
						 : pwrite(r->fd, (char *)r->buf + done,
							  r->len - done, (off_t)(r->off + done));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return r->op == SLI_IO_READ ? -EIO
						    : -ENOSPC; /* past the end / no progress */
		done += (uint32_t)k;
	}
	return (int)r->len;
}

static int posix_run(struct sli_io *io, struct sli_io_req *r, unsigned n)
{
	int first = 0;

	bool cancel = false; /* an earlier request of this chain failed */

	(void)io;
	for (unsigned i = 0; i < n; i++) {
		r[i].res = cancel ? -ECANCELED : one(&r[i]);
		if (r[i].res < 0 && first == 0)
			first = r[i].res;
		if (!(r[i].flags & SLI_IO_LINK))
			cancel = false;
		else if (r[i].res < 0)
			cancel = true;
	}
	return first;
}

static void posix_destroy(struct sli_io *io)
{
	struct posix_io *p = (struct posix_io *)io;

	sl_alloc_free(p->a, p);
}

int sli_io_posix_create(const struct sl_allocator *a, struct sli_io **out)
{
	struct posix_io *p = sl_alloc_aligned(a, sizeof(*p), 16);

	if (p == NULL)
		return -ENOMEM;
	p->io = (struct sli_io){ .name = "posix", .run = posix_run, .destroy = posix_destroy };
	p->a = a;
	*out = &p->io;
	return 0;
}
