/* SPDX-License-Identifier: Apache-2.0 */
/*
 * io_uring.c — the I/O engine on io_uring (liburing). A batch is queued
 * as SQEs (up to the ring's depth at a time), submitted with one
 * io_uring_submit_and_wait() and reaped together; a short transfer is
 * queued again for the rest. Each SQE's user_data is the request's index.
 * One ring per engine, used by the owning thread only. See sli_io.h.
 *
 * Engine selection (sli_io_create) lives here too: it is the one place
 * that knows whether io_uring works on this machine and in this build.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_log.h>

#include "sl_config.h"
#include "sli_io.h"

struct uring_io {
	struct sli_io io;
	const struct sl_allocator *a;
	struct io_uring ring;
	unsigned depth;
};

struct pend {
	uint32_t done;
};

static void prep(struct io_uring_sqe *sqe, struct sli_io_req *r, uint32_t done, unsigned idx)
{
	if (r->op == SLI_IO_READ)
		io_uring_prep_read(sqe, r->fd, (char *)r->buf + done, r->len - done, r->off + done);
	else
		io_uring_prep_write(sqe, r->fd, (char *)r->buf + done, r->len - done,
				    r->off + done);
	io_uring_sqe_set_data64(sqe, idx);
}

/* Requests [base, base + m) with m <= depth: every SQE fits in the ring. */
static int run_window(struct uring_io *u, struct sli_io_req *r, unsigned m, uint32_t *done)
{
	unsigned inflight = 0;
	int first = 0;

	for (unsigned i = 0; i < m; i++) {
		done[i] = 0;
		r[i].res = 0;
		if (r[i].len == 0)
			continue;
		prep(io_uring_get_sqe(&u->ring), &r[i], 0, i);
		inflight++;
	}
	while (inflight > 0) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0, requeued = 0;
		int rc = io_uring_submit_and_wait(&u->ring, 1);

		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			return rc; /* the ring itself failed: nothing is in flight we can trust */
		io_uring_for_each_cqe(&u->ring, head, cqe)
		{
			unsigned i = (unsigned)io_uring_cqe_get_data64(cqe);
			int res = cqe->res;

			seen++;
			if (res == -EINTR || res == -EAGAIN) {
				prep(io_uring_get_sqe(&u->ring), &r[i], done[i], i);
				requeued++;
				continue;
			}
			if (res == 0 && done[i] < r[i].len)
				res = r[i].op == SLI_IO_READ ? -EIO : -ENOSPC;
			if (res < 0) {
				r[i].res = res;
				if (first == 0)
					first = res;
				continue;
			}
			done[i] += (uint32_t)res;
			if (done[i] < r[i].len) {
				prep(io_uring_get_sqe(&u->ring), &r[i], done[i], i);
				requeued++;
			} else {
				r[i].res = (int)r[i].len;
			}
		}
		io_uring_cq_advance(&u->ring, seen);
		inflight -= seen - requeued;
	}
	return first;
}

static int uring_run(struct sli_io *io, struct sli_io_req *r, unsigned n)
{
	struct uring_io *u = (struct uring_io *)io;
	uint32_t done[256];
	int first = 0;

	for (unsigned base = 0; base < n; base += u->depth) {
		unsigned m = n - base < u->depth ? n - base : u->depth;
		int rc = run_window(u, r + base, m, done);

		if (rc < 0 && first == 0)
			first = rc;
	}
	return first;
}

static void uring_destroy(struct sli_io *io)
{
	struct uring_io *u = (struct uring_io *)io;

	io_uring_queue_exit(&u->ring);
	sl_alloc_free(u->a, u);
}

int sli_io_uring_create(const struct sl_allocator *a, unsigned depth, struct sli_io **out)
{
	struct uring_io *u;
	int rc;

	if (depth == 0 || depth > 256)
		depth = 256;
	u = sl_alloc_aligned(a, sizeof(*u), 64);
	if (u == NULL)
		return -ENOMEM;
	memset(u, 0, sizeof(*u));
	rc = io_uring_queue_init(depth, &u->ring, 0);
	if (rc < 0) {
		sl_alloc_free(a, u);
		return rc;
	}
	u->io = (struct sli_io){ .name = "io_uring", .run = uring_run, .destroy = uring_destroy };
	u->a = a;
	u->depth = depth;
	*out = &u->io;
	return 0;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED SL_TSAN
#endif

int sli_io_create(const struct sl_allocator *a, enum sli_io_kind kind, struct sli_io **out)
{
	const char *env;
	int rc;

	switch (kind) {
	case SLI_IO_URING:
		return sli_io_uring_create(a, 0, out);
	case SLI_IO_POSIX:
		return sli_io_posix_create(a, out);
	case SLI_IO_AUTO:
		break;
	default:
		return -EINVAL;
	}
	env = getenv("SLUICE_STATE_IO");
	if (env != NULL && strcmp(env, "posix") == 0) {
		sl_log(SL_LOG_INFO, "state", "spill I/O: posix (SLUICE_STATE_IO=posix)");
		return sli_io_posix_create(a, out);
	}
	if (SANITIZED) {
		sl_log(SL_LOG_INFO, "state", "spill I/O: posix (sanitizer build: %s)", SL_SANITIZE);
		return sli_io_posix_create(a, out);
	}
	rc = sli_io_uring_create(a, 0, out);
	if (rc == 0) {
		sl_log(SL_LOG_INFO, "state", "spill I/O: io_uring");
		return 0;
	}
	sl_log(SL_LOG_WARN, "state", "spill I/O: posix (io_uring unavailable: %s)", strerror(-rc));
	return sli_io_posix_create(a, out);
}
