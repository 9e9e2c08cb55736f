/* SPDX-License-Identifier: Apache-2.0 */
/*
 * io_fault.c — a test I/O engine: passes batches to another engine and
 * fails requests on demand (ENOSPC after so many bytes written, EIO after
 * so many reads), so that tests can check that the table reports I/O
 * errors instead of losing or inventing values. See sli_io.h.
 */
#include <errno.h>

#include "sli_io.h"

struct fault_io {
	struct sli_io io;
	const struct sl_allocator *a;
	struct sli_io *inner;
	int werr, rerr;
	uint64_t wok, rok;
};

static int fault_run(struct sli_io *io, struct sli_io_req *r, unsigned n)
{
	struct fault_io *f = (struct fault_io *)io;
	int first = 0;

	for (unsigned i = 0; i < n; i++) {
		int err = 0;

		if (r[i].op == SLI_IO_WRITE && f->werr != 0) {
			if (f->wok < r[i].len)
				err = -f->werr;
			else
				f->wok -= r[i].len;
		} else if (r[i].op == SLI_IO_READ && f->rerr != 0) {
			if (f->rok == 0)
				err = -f->rerr;
			else
				f->rok--;
		}
		if (err == 0) {
			r[i].res = 0;
			err = f->inner->run(f->inner, &r[i], 1);
		}
		r[i].res = err < 0 ? err : (int)r[i].len;
		if (err < 0 && first == 0)
			first = err;
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
