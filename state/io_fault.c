/* SPDX-License-Identifier: Apache-2.0 */
/*
 * io_fault.c — a test I/O engine: passes requests to another engine and
 * fails them on demand (ENOSPC after so many bytes written, EIO after so
 * many reads, a failing fsync, short writes), so that tests can check
 * that the table and the checkpoint store report I/O errors instead of
 * losing or inventing data. See sli_io.h.
 */
#include <errno.h>
#include <stdbool.h>

#include "sli_io.h"

struct fault_io {
	struct sli_io io;
	const struct sl_allocator *a;
	struct sli_io *inner;
	int werr, rerr, ferr;
	uint64_t wok, rok, fok;
	uint32_t short_max;
	unsigned short_count;
	uint64_t writes, fsyncs; /* passed on to @inner */
};

/* One request, alone, through the inner engine. */
static int pass(struct fault_io *f, const struct sli_io_req *r, uint32_t len)
{
	struct sli_io_req one = *r;
	int rc;

	one.len = len;
	one.flags = 0;
	one.res = 0;
	rc = f->inner->run(f->inner, &one, 1);
	if (rc == 0 && one.op == SLI_IO_WRITE)
		f->writes++;
	else if (rc == 0 && one.op == SLI_IO_FSYNC)
		f->fsyncs++;
	return rc < 0 ? rc : one.res;
}

/* Request @r: its result (short writes: the bytes written). */
static int one(struct fault_io *f, const struct sli_io_req *r)
{
	uint32_t len = r->len;

	switch (r->op) {
	case SLI_IO_WRITE:
		if (f->short_count > 0 && len > f->short_max) {
			len = f->short_max;
			f->short_count--;
		}
		if (f->werr != 0) {
			if (f->wok < len)
				return -f->werr;
			f->wok -= len;
		}
		break;
	case SLI_IO_READ:
		if (f->rerr != 0) {
			if (f->rok == 0)
				return -f->rerr;
			f->rok--;
		}
		break;
	case SLI_IO_FSYNC:
		if (f->ferr != 0) {
			if (f->fok == 0)
				return -f->ferr;
			f->fok--;
		}
		break;
	default:
		return -EINVAL;
	}
	return pass(f, r, len);
}

/*
 * In order, one at a time: a link then only means that a failed or
 * short request cancels the rest of its chain, as io_uring does.
 */
static int fault_run(struct sli_io *io, struct sli_io_req *r, unsigned n)
{
	struct fault_io *f = (struct fault_io *)io;
	bool cancel = false;
	int first = 0;

	for (unsigned i = 0; i < n; i++) {
		bool ok;

		r[i].res = cancel ? -ECANCELED : one(f, &r[i]);
		ok = r[i].res >= 0 && (r[i].op == SLI_IO_FSYNC || (uint32_t)r[i].res == r[i].len);
		if (r[i].res < 0 && first == 0 && !cancel)
			first = r[i].res;
		cancel = (r[i].flags & SLI_IO_LINK) && !ok;
	}
	return first;
}

static void fault_destroy(struct sli_io *io)
{
	struct fault_io *f = (struct fault_io *)io;

	sl_alloc_free(f->a, f);
}

int sli_io_fault_create(const struct sl_allocator *a, struct sli_io *inner, struct sli_io **out)
{
	struct fault_io *f;

	if (inner == NULL || out == NULL)
		return -EINVAL;
	f = sl_alloc_aligned(a, sizeof(*f), 16);
	if (f == NULL)
		return -ENOMEM;
	*f = (struct fault_io){
		.io = { .name = "fault", .run = fault_run, .destroy = fault_destroy },
		.a = a,
		.inner = inner,
	};
	*out = &f->io;
	return 0;
}

void sli_io_fault_set(struct sli_io *io, int write_err, uint64_t write_ok, int read_err,
		      uint64_t read_ok)
{
	struct fault_io *f = (struct fault_io *)io;

	f->werr = write_err;
	f->wok = write_ok;
	f->rerr = read_err;
	f->rok = read_ok;
}

void sli_io_fault_fsync(struct sli_io *io, int err, uint64_t ok)
{
	struct fault_io *f = (struct fault_io *)io;

	f->ferr = err;
	f->fok = ok;
}

void sli_io_fault_short(struct sli_io *io, uint32_t max, unsigned count)
{
	struct fault_io *f = (struct fault_io *)io;

	f->short_max = max > 0 ? max : 1;
	f->short_count = count;
}

void sli_io_fault_counts(const struct sli_io *io, uint64_t *writes, uint64_t *fsyncs)
{
	const struct fault_io *f = (const struct fault_io *)io;

	*writes = f->writes;
	*fsyncs = f->fsyncs;
}
