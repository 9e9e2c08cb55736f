/* SPDX-License-Identifier: Apache-2.0 */
/*
 * io_uring.c — the I/O engine on io_uring (liburing). A batch is queued
 * as SQEs (up to the ring's depth at a time, never splitting a chain),
 * submitted with one io_uring_submit_and_wait() and reaped together; a
 * short transfer is queued again for the rest, with what was linked
 * after it. SLI_IO_LINK becomes IOSQE_IO_LINK, so the kernel runs a
 * write's fsync only after the write and cancels it when the write
 * fails. Each SQE's user_data is the request's index.
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

/* The state of a request within a window. */
enum { PENDING, DONE, FAILED };

static void prep(struct io_uring_sqe *sqe, struct sli_io_req *r, uint32_t done, unsigned idx)
{
	if (r->op == SLI_IO_FSYNC)
		io_uring_prep_fsync(sqe, r->fd, 0);
	else if (r->op == SLI_IO_READ)
		io_uring_prep_read(sqe, r->fd, (char *)r->buf + done, r->len - done, r->off + done);
	else
		io_uring_prep_write(sqe, r->fd, (char *)r->buf + done, r->len - done,
				    r->off + done);
	io_uring_sqe_set_data64(sqe, idx);
}

/* The result @res of request @r (@done bytes so far): its new state. */
static int settle(struct sli_io_req *r, int res, uint32_t *done, int *first)
{
	if (res == -EINTR || res == -EAGAIN)
		return PENDING;
	if (res >= 0 && r->op == SLI_IO_FSYNC) {
		r->res = 0;
		return DONE;
	}
	if (res == 0 && *done < r->len)
		res = r->op == SLI_IO_READ ? -EIO : -ENOSPC; /* past the end / no progress */
	if (res < 0) {
		r->res = res;
		if (*first == 0)
			*first = res;
		return FAILED;
	}
	*done += (uint32_t)res;
	if (*done < r->len)
		return PENDING; /* short: queued again for the rest */
	r->res = (int)r->len;
	return DONE;
}

/*
 * Requests [0, m) with m <= depth, no chain running past m: every SQE
 * fits in the ring. In rounds: queue every pending request (linked to
 * the next when both are pending and the caller linked them), submit
 * with one system call, reap them all, then settle them in order. A
 * request whose linked predecessor did not finish this round (short,
 * interrupted) stays pending whatever it returned: an fsync that ran
 * after a short write is done again after the rest of the write.
 */
static int run_window(struct uring_io *u, struct sli_io_req *r, unsigned m)
{
	uint32_t done[256];
	int cres[256];
	uint8_t st[256], linked[256];
	int first = 0;

	for (unsigned i = 0; i < m; i++) {
		done[i] = 0;
		r[i].res = 0;
		st[i] = r[i].op != SLI_IO_FSYNC && r[i].len == 0 ? DONE : PENDING;
	}
	for (;;) {
		unsigned queued = 0, reaped = 0;

		for (unsigned i = 0; i < m; i++) {
			struct io_uring_sqe *sqe;

			linked[i] = 0;
			if (st[i] != PENDING)
				continue;
			sqe = io_uring_get_sqe(&u->ring);
			prep(sqe, &r[i], done[i], i);
			if ((r[i].flags & SLI_IO_LINK) && i + 1 < m && st[i + 1] == PENDING) {
				sqe->flags |= IOSQE_IO_LINK;
				linked[i] = 1;
			}
			cres[i] = 0;
			queued++;
		}
		if (queued == 0)
			return first;
		while (reaped < queued) {
			struct io_uring_cqe *cqe;
			unsigned head, seen = 0;
			int rc = io_uring_submit_and_wait(&u->ring, 1);

			if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
				return rc; /* the ring itself failed: nothing in flight we can trust
					    */
			io_uring_for_each_cqe(&u->ring, head, cqe)
			{
				cres[io_uring_cqe_get_data64(cqe)] = cqe->res;
				seen++;
			}
			io_uring_cq_advance(&u->ring, seen);
			reaped += seen;
		}
		for (unsigned i = 0; i < m; i++) {
			if (st[i] != PENDING)
				continue;
			/*
			 * Linked after a request that is to run again: so is
			 * this one. After a failed one, the kernel's result
			 * stands (-ECANCELED: it did not run).
			 */
			if (i > 0 && linked[i - 1] && st[i - 1] == PENDING)
				continue;
			st[i] = (uint8_t)settle(&r[i], cres[i], &done[i], &first);
		}
	}
}

static int uring_run(struct sli_io *io, struct sli_io_req *r, unsigned n)
{
	struct uring_io *u = (struct uring_io *)io;
	int first = 0;

	for (unsigned i = 0, len = 0; i < n; i++) {
		len = r[i].flags & SLI_IO_LINK ? len + 1 : 0;
		if (len >= u->depth)
			return -EINVAL; /* a chain longer than the ring */
	}
	for (unsigned base = 0; base < n;) {
		unsigned m = n - base < u->depth ? n - base : u->depth;
		int rc;

		/* Never split a chain between windows. */
		while (base + m < n && (r[base + m - 1].flags & SLI_IO_LINK))
			m--;
		rc = run_window(u, r + base, m);
		if (rc < 0 && first == 0)
			first = rc;
		base += m;
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
	return sli_io_create_for(a, kind, "spill", out);
}

int sli_io_create_for(const struct sl_allocator *a, enum sli_io_kind kind, const char *what,
		      struct sli_io **out)
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
		sl_log(SL_LOG_INFO, "state", "%s I/O: posix (SLUICE_STATE_IO=posix)", what);
		return sli_io_posix_create(a, out);
	}
	if (SANITIZED) {
		sl_log(SL_LOG_INFO, "state", "%s I/O: posix (sanitizer build: %s)", what,
		       SL_SANITIZE);
		return sli_io_posix_create(a, out);
	}
	rc = sli_io_uring_create(a, 0, out);
	if (rc == 0) {
		sl_log(SL_LOG_INFO, "state", "%s I/O: io_uring", what);
		return 0;
	}
	sl_log(SL_LOG_WARN, "state", "%s I/O: posix (io_uring unavailable: %s)", what,
	       strerror(-rc));
	return sli_io_posix_create(a, out);
}
