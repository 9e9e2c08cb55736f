/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exec.c — running a planned job: worker threads, cooperative scheduling
 * of subtasks, exchanges over SPSC rings, backpressure, end of input,
 * failure and graceful stop.
 *
 * Scheduling: a worker loops over its subtasks; a subtask runs only when
 * none of its output channels has a backlog (batches its ring had no room
 * for), so a slow consumer stops its producers and memory stays bounded
 * by the rings plus one input batch's worth of output. A subtask processes
 * a few input batches per turn; when its inputs are empty it flushes
 * partial output batches, so latency stays low when traffic is light.
 *
 * Sleeping (idle=sleep): a worker that found nothing to do for a while
 * announces `sleeping`, re-checks its inputs, and waits on a futex for at
 * most 1 ms. Producers and consumers call sli_worker_wake() on the other
 * side after moving a batch. The seq_cst fences in both make the lost
 * wake-up impossible (either the waker sees `sleeping`, or the sleeper's
 * re-check sees the batch); the 1 ms bound covers rate-limited sources.
 *
 * Threads: sl_job_run() starts one thread per worker and waits; each
 * subtask is touched only by its worker; the failure slot is a CAS.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sluice/sl_error.h>
#include <sluice/sl_log.h>

#include "sli_exec.h"

#define BATCHES_PER_TURN   4
#define SPINS_BEFORE_SLEEP 2000
#define SLEEP_NS	   1000000

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/* Relaxed counter bump of a field only this worker writes. */
#define BUMP SLI_BUMP

static void read_stats(const struct sli_exec *x, struct sli_subtask *st, uint64_t now,
		       struct sl_task_stats *c);

/* ------------------------------------------------------ failure, waking */

static void fail_exec(struct sli_exec *x, int rc, const char *msg, bool fatal)
{
	int expected = 0;

	/* The first failure is the one reported; later ones are consequences. */
	if (!atomic_compare_exchange_strong(&x->failed, &expected, 1))
		return;
	x->fail_rc = rc < 0 ? rc : -EIO;
	x->fail_fatal = fatal || x->fail_rc == -EINVAL || x->fail_rc == -ENOTSUP ||
			x->fail_rc == -EBADMSG || x->fail_rc == -E2BIG ||
			x->fail_rc == -EOVERFLOW || x->fail_rc == -EPROTO;
	snprintf(x->fail_msg, sizeof(x->fail_msg), "%s", msg);
	sli_wake_all(x);
}

void sli_fail_exec(struct sli_exec *x, int rc, const char *msg)
{
	fail_exec(x, rc, msg, false);
}

void sli_fail(struct sli_opi *op, int rc, const char *fmt, ...)
{
	char msg[SLI_ERRLEN], full[2 * SLI_ERRLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "operator '%s' (subtask %u/%u) failed: %s", op->node->name,
		 op->info.index, op->info.parallelism, msg);
	/* Failing to open or restore would fail the same way again: no restart. */
	fail_exec(op->st->w->x, rc, full, !op->st->w->opened);
}

static void futex_wake(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void sli_worker_wake(struct sli_worker *w)
{
	/*
	 * seq_cst fence: pairs with the fence in worker_sleep(). Our ring
	 * update (before this fence) is visible to its re-check, or its
	 * `sleeping` store (before its fence) is visible to the load below.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&w->sleeping, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&w->wake_seq, 1, memory_order_relaxed);
		futex_wake(&w->wake_seq);
	}
}

void sli_wake_all(struct sli_exec *x)
{
	for (unsigned i = 0; i < x->nworkers; i++)
		sli_worker_wake(&x->workers[i]);
}

static bool failed(struct sli_exec *x)
{
	/* Relaxed: a hint to stop; the message is read after joining. */
	return atomic_load_explicit(&x->failed, memory_order_relaxed) != 0;
}

void sli_release(struct sli_opi *op, struct sl_batch *b)
{
	sli_pool_put(sli_pool(op), b);
}

/* -------------------------------------------------------------- exchange */

static int backlog_add(struct sli_target *t, struct sl_batch *b)
{
	if (t->nbacklog == t->capbacklog) {
		unsigned ncap = t->capbacklog ? 2 * t->capbacklog : 8;
		struct sl_batch **nb = realloc(t->backlog, ncap * sizeof(*nb));

		if (nb == NULL)
			return -ENOMEM;
		t->backlog = nb;
		t->capbacklog = ncap;
	}
	t->backlog[t->nbacklog++] = b;
	return 0;
}

/* Send @b (owned) to one target, or queue it behind the target's backlog. */
static int send(struct sli_subtask *st, struct sli_target *t, struct sl_batch *b)
{
	if (t->nbacklog == 0 && sl_ring_enqueue(t->chan->ring, b) == 0) {
		if (t->chan->consumer != st->w)
			sli_worker_wake(t->chan->consumer);
		return 0;
	}
	return backlog_add(t, b);
}

/* Try to empty every backlog. Return true when none is left. */
static bool drain_backlogs(struct sli_subtask *st)
{
	bool clear = true;

	for (unsigned o = 0; o < st->nout; o++) {
		struct sli_outedge *oe = &st->out[o];

		for (unsigned k = 0; k < oe->ntargets; k++) {
			struct sli_target *t = &oe->t[k];
			unsigned n;

			if (t->nbacklog == 0)
				continue;
			n = sl_ring_enqueue_burst(t->chan->ring, (void **)t->backlog, t->nbacklog);
			if (n > 0) {
				memmove(t->backlog, t->backlog + n,
					(t->nbacklog - n) * sizeof(*t->backlog));
				t->nbacklog -= n;
				if (t->chan->consumer != st->w)
					sli_worker_wake(t->chan->consumer);
			}
			if (t->nbacklog)
				clear = false;
		}
	}
	return clear;
}

static struct sl_batch *clone_batch(struct sli_subtask *st, const struct sl_batch *b)
{
	struct sl_batch *c;
	struct sl_str dummy;

	if (b->kind != SL_EVENT_DATA)
		return sli_pool_get_event(&st->w->pool, (enum sl_event_kind)b->kind, b->value);
	c = sli_pool_get(&st->w->pool, b->elem_size);
	if (c == NULL)
		return NULL;
	memcpy(c->data, b->data, (size_t)b->n * b->elem_size);
	memcpy(c->ts, b->ts, b->n * sizeof(int64_t));
	memcpy(c->key, b->key, b->n * sizeof(uint64_t));
	c->n = b->n;
	c->flags = b->flags;
	if (b->arena_used && sl_batch_add_str(c, b->arena, b->arena_used, &dummy) < 0) {
		sli_pool_put(&st->w->pool, c);
		return NULL;
	}
	return c;
}

/* Flush the pending (partly filled) batch of every target of @oe. */
static int flush_pending(struct sli_subtask *st, struct sli_outedge *oe)
{
	for (unsigned k = 0; k < oe->ntargets; k++) {
		struct sl_batch *b = oe->t[k].pending;

		if (b == NULL)
			continue;
		oe->t[k].pending = NULL;
		if (send(st, &oe->t[k], b) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Hash-partition @b (owned) element by element into the targets' pending batches. */
static int send_hashed(struct sli_subtask *st, struct sli_outedge *oe, struct sl_batch *b)
{
	unsigned maxp = st->w->x->job->max_parallelism;
	const uint16_t *kg_target = oe->kg_target;
	uint64_t mask = oe->kg_mask;
	const struct sli_keyspec *key = &oe->edge->key;
	int rc = 0;

	for (uint32_t i = 0; i < b->n; i++) {
		struct sl_key k;
		unsigned target;
		struct sli_target *t;

		sli_key_get(key, sl_batch_elem(b, i), b, &k);
		b->key[i] = sli_hash64(k.ptr, k.len, 0);
		/* Same as sli_key_group_subtask(sli_key_group(h, maxp), p, maxp). */
		target = kg_target[mask ? (b->key[i] & mask) : (b->key[i] % maxp)];
		t = &oe->t[target];
		if (t->pending == NULL) {
			t->pending = sli_pool_get(&st->w->pool, b->elem_size);
			if (t->pending == NULL) {
				rc = -ENOMEM;
				break;
			}
			t->pending->flags = SL_BATCH_F_KEYED;
		}
		rc = sli_batch_copy_elem(t->pending, b, i, oe->type);
		if (rc == -E2BIG && t->pending->n > 0) {
			struct sl_batch *full = t->pending;

			t->pending = NULL;
			if (send(st, t, full) < 0) {
				rc = -ENOMEM;
				break;
			}
			i--; /* retry this element into a fresh batch */
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		if (t->pending->n == t->pending->cap) {
			struct sl_batch *full = t->pending;

			t->pending = NULL;
			if (send(st, t, full) < 0) {
				rc = -ENOMEM;
				break;
			}
		}
	}
	st->dirty = true;
	sli_pool_put(&st->w->pool, b);
	return rc;
}

/* Send @b (owned) over the exchange @oe. Control events go to every target. */
static int exchange_send(struct sli_subtask *st, struct sli_outedge *oe, struct sl_batch *b)
{
	enum sli_part part = oe->edge->part;
	unsigned k;

	/*
	 * Borrowed elements are the source's only until its next poll(); a
	 * batch in a ring or a backlog may outlive that: it takes a copy.
	 */
	sli_batch_unborrow(b);
	if (b->kind != SL_EVENT_DATA || part == SLI_PART_BROADCAST) {
		/* In-band order: pending data goes first. */
		if (flush_pending(st, oe) < 0)
			goto nomem;
		for (k = 0; k + 1 < oe->ntargets; k++) {
			struct sl_batch *c = clone_batch(st, b);

			if (c == NULL || send(st, &oe->t[k], c) < 0)
				goto nomem;
		}
		return send(st, &oe->t[k], b) < 0 ? -ENOMEM : 0;
	}
	BUMP(st->stats.records_out, b->n);
	BUMP(st->stats.batches_out, 1);
	switch (part) {
	case SLI_PART_HASH:
		return send_hashed(st, oe, b);
	case SLI_PART_REBALANCE:
		k = oe->rr++ % oe->ntargets;
		break;
	case SLI_PART_RESCALE:
		k = oe->rescale_lo + oe->rr++ % oe->rescale_n;
		break;
	default: /* forward */
		k = 0;
		break;
	}
	return send(st, &oe->t[k], b) < 0 ? -ENOMEM : 0;
nomem:
	sli_pool_put(&st->w->pool, b);
	return -ENOMEM;
}

int sli_push(struct sli_opi *op, unsigned port, struct sl_batch *b)
{
	unsigned n = op->nport_out[port];
	int rc;

	if (port == 0 && op->next != NULL) {
		/* A key_by fused at parallelism 1 (plan.c): hashes there are of another key. */
		if (op->next->node->in[0]->part == SLI_PART_HASH)
			b->flags &= ~SL_BATCH_F_KEYED;
		return sli_op_batch(op->next, b);
	}
	if (n == 0) {
		sli_release(op, b); /* an output nobody consumes */
		return 0;
	}
	/* Fan-out: every consumer gets its own copy. */
	for (unsigned k = 0; k + 1 < n; k++) {
		struct sl_batch *c = clone_batch(op->st, b);

		if (c == NULL) {
			sli_release(op, b);
			sli_fail(op, -ENOMEM, "out of memory copying a batch for fan-out");
			return -ENOMEM;
		}
		rc = exchange_send(op->st, op->port_out[port][k], c);
		if (rc < 0) {
			sli_release(op, b);
			sli_fail(op, rc, "sending to an exchange: %s", sl_strerror(rc));
			return rc;
		}
	}
	rc = exchange_send(op->st, op->port_out[port][n - 1], b);
	if (rc < 0)
		sli_fail(op, rc, "sending to an exchange: %s", sl_strerror(rc));
	return rc;
}

/* ------------------------------------------------------------- subtasks */

/* Flush every partial batch of the chain, in chain order, then the exchanges. */
int sli_flush_subtask(struct sli_subtask *st)
{
	int rc;

	for (unsigned k = 0; k < st->task->nchain; k++) {
		rc = sli_op_flush(&st->ops[k]);
		if (rc < 0)
			return rc;
	}
	for (unsigned o = 0; o < st->nout; o++)
		if (flush_pending(st, &st->out[o]) < 0)
			return -ENOMEM;
	st->dirty = false;
	return 0;
}

/* Send a control event to every output channel of the subtask. */
int sli_broadcast_event(struct sli_subtask *st, enum sl_event_kind kind, int64_t value)
{
	for (unsigned o = 0; o < st->nout; o++) {
		struct sl_batch *ev = sli_pool_get_event(&st->w->pool, kind, value);

		if (ev == NULL || exchange_send(st, &st->out[o], ev) < 0)
			return -ENOMEM;
	}
	return 0;
}

/*
 * Deliver watermark @wm to the chain's operators in order: each one acts
 * on it (a window fires), then what it emitted is pushed on, so the next
 * operator sees those elements before the watermark. Then, if
 * @broadcast, flush the outputs and send the watermark to every consumer.
 */
static int chain_watermark(struct sli_subtask *st, int64_t wm, bool broadcast)
{
	int rc = 0;

	for (unsigned k = 0; k < st->task->nchain && rc == 0; k++)
		rc = sli_op_watermark(&st->ops[k], wm);
	if (rc == 0 && broadcast) {
		rc = sli_flush_subtask(st);
		if (rc == 0)
			rc = sli_broadcast_event(st, SL_EVENT_WATERMARK, wm);
	}
	return rc;
}

/*
 * End of all input: finish the chain in order, take the final checkpoint,
 * then tell every consumer. While the checkpoint coordinator still reads
 * an earlier snapshot of this subtask, it waits (sli_ckpt_final_ready())
 * before it does anything else, so that neither the final watermark's
 * firings nor the final snapshot copy state for that snapshot: the
 * subtask stays `ending` and step() calls this again.
 */
static int end_subtask(struct sli_subtask *st)
{
	int rc = 0;

	if (!st->ending) {
		st->ending = true;
		rc = sli_ckpt_subtask_ending(st);
	}
	if (rc == 0 && !sli_ckpt_final_ready(st))
		return 0;
	st->ending = false;
	/*
	 * End of bounded input: a final INT64_MAX watermark fires every
	 * pending event-time timer. A stop (SIGTERM, sl_job_stop) drains
	 * without it, like Flink's stop without --drain.
	 */
	if (rc == 0 && st->watermark != INT64_MAX &&
	    !atomic_load_explicit(&st->w->x->job->stop_requested, memory_order_relaxed)) {
		st->watermark = INT64_MAX;
		rc = chain_watermark(st, INT64_MAX, false);
	}
	for (unsigned k = 0; k < st->task->nchain && rc == 0; k++)
		rc = sli_op_end(&st->ops[k]);
	if (rc == 0)
		rc = sli_flush_subtask(st);
	if (rc == 0)
		rc = sli_ckpt_subtask_end(st); /* the final checkpoint; sinks pre-commit */
	if (rc == 0)
		rc = sli_broadcast_event(st, SL_EVENT_END, 0);
	if (rc < 0 && !failed(st->w->x))
		sli_fail(&st->ops[0], rc, "finishing: %s", sl_strerror(rc));
	st->done = true; /* counted in ndone once its backlogs are empty (step()) */
	return rc;
}

/* Forward control event @b (owned) to every output, after the data before it. */
static void forward_event(struct sli_subtask *st, struct sl_batch *b)
{
	if (sli_flush_subtask(st) < 0) {
		sli_pool_put(&st->w->pool, b);
		return;
	}
	for (unsigned o = 0; o < st->nout; o++) {
		struct sl_batch *c = o + 1 < st->nout ? clone_batch(st, b) : b;

		if (c == NULL || exchange_send(st, &st->out[o], c) < 0) {
			sli_fail(&st->ops[0], -ENOMEM, "out of memory forwarding an event");
			if (c != b)
				sli_pool_put(&st->w->pool, b);
			return;
		}
	}
	if (st->nout == 0)
		sli_pool_put(&st->w->pool, b);
}

/*
 * Emit what the watermark generator or valve reported (SLI_WM_* bits in
 * @ev): ACTIVE before anything that follows, then watermark *@out (read
 * after @ev was computed), then, after the data before it, IDLE. Return
 * 0 or -errno (the job failed).
 */
static int emit_wm(struct sli_subtask *st, unsigned ev, const int64_t *out)
{
	int64_t wm = *out;
	int rc = 0;

	if (ev & SLI_WM_ACTIVE)
		rc = sli_broadcast_event(st, SL_EVENT_ACTIVE, 0);
	if (rc == 0 && (ev & SLI_WM_ADVANCE) && wm > st->watermark && wm != INT64_MAX) {
		st->watermark = wm;
		rc = chain_watermark(st, wm, true);
	}
	if (rc == 0 && (ev & SLI_WM_IDLE)) {
		rc = sli_flush_subtask(st);
		if (rc == 0)
			rc = sli_broadcast_event(st, SL_EVENT_IDLE, 0);
	}
	if (rc < 0 && !failed(st->w->x))
		sli_fail(&st->ops[0], rc, "sending a watermark or status: %s", sl_strerror(rc));
	return rc;
}

enum step_result { STEP_IDLE, STEP_WORK, STEP_BACKPRESSURED };

/* Records [a, b) of @src as a batch of their own (strings copied). */
static struct sl_batch *batch_slice(struct sli_subtask *st, const struct sl_batch *src, uint32_t a,
				    uint32_t b)
{
	const struct sl_type *type = &st->task->chain[0]->type;
	struct sl_batch *out = sli_pool_get(&st->w->pool, type->size);

	if (out == NULL)
		return NULL;
	for (uint32_t i = a; i < b; i++)
		if (sli_batch_copy_elem(out, src, i, type) < 0) {
			sli_pool_put(&st->w->pool, out);
			return NULL;
		}
	return out;
}

/*
 * Push a polled batch (owned) of split b->split through the source's
 * chain, generating watermarks (sl_assign_watermarks) with the split's
 * generator: ACTIVE first if the subtask was idle. With every = N, the
 * batch is cut after each record that advances the subtask's watermark
 * (the minimum over its splits), and that watermark follows those records.
 */
static int source_push(struct sli_subtask *st, struct sl_batch *b)
{
	struct sli_opi *op = &st->ops[0];
	uint32_t split = b->split, start = 0;
	int rc;

	if (!st->has_gen)
		return sli_push(op, 0, b);
	rc = emit_wm(st, sli_wmgen_activity(&st->gen, split, st->src_clock_ns), &st->gen.out);
	if (rc < 0) {
		sli_pool_put(&st->w->pool, b);
		return rc;
	}
	/* Whole runs of records at a time: only a record whose ev != 0 cuts the batch. */
	for (uint32_t i = 0; i < b->n; i++) {
		unsigned ev;
		struct sl_batch *seg;

		i += sli_wmgen_records(&st->gen, split, b->ts + i, b->n - i, &ev) - 1;
		if (ev == 0)
			continue; /* periodic emission: step_source() */
		if (start == 0 && i + 1 == b->n) {
			seg = b, b = NULL;
		} else {
			seg = batch_slice(st, b, start, i + 1);
			if (seg == NULL) {
				sli_pool_put(&st->w->pool, b);
				sli_fail(op, -ENOMEM,
					 "out of memory cutting a batch at a watermark");
				return -ENOMEM;
			}
		}
		rc = sli_push(op, 0, seg);
		if (rc == 0)
			rc = emit_wm(st, ev, &st->gen.out);
		if (rc < 0) {
			if (b != NULL)
				sli_pool_put(&st->w->pool, b);
			return rc;
		}
		start = i + 1;
		if (b == NULL)
			return 0;
	}
	if (start == 0)
		return sli_push(op, 0, b);
	if (start < b->n) {
		struct sl_batch *rest = batch_slice(st, b, start, b->n);

		sli_pool_put(&st->w->pool, b);
		if (rest == NULL) {
			sli_fail(op, -ENOMEM, "out of memory cutting a batch at a watermark");
			return -ENOMEM;
		}
		return sli_push(op, 0, rest);
	}
	sli_pool_put(&st->w->pool, b);
	return 0;
}

/* Periodic watermarks: at most every interval of processing time, when polled. */
static int source_periodic(struct sli_subtask *st)
{
	const struct sli_node *n = st->task->chain[0];
	uint64_t t;

	if (!st->has_gen || n->wm.none || n->wm.every != 0)
		return 0;
	t = now_ns();
	if (t - st->wm_last_ns < (uint64_t)n->wm.interval_ms * 1000000u)
		return 0;
	st->wm_last_ns = t;
	return emit_wm(st, sli_wmgen_periodic(&st->gen), &st->gen.out);
}

/*
 * The source's idleness clock: it advances by the time between two polls
 * unless the subtask was backpressured in between (src_paused, set by
 * step()), so a backpressured split never times out into idle. The
 * platform's now_ms() drives it when there is one (tests), else
 * CLOCK_MONOTONIC.
 */
static void source_clock(struct sli_subtask *st)
{
	const struct sl_platform *pf = st->w->x->platform;
	uint64_t t = pf && pf->now_ms ? (uint64_t)pf->now_ms(pf->ctx) * 1000000u : now_ns();

	if (st->src_last_ns != 0 && !st->src_paused && t > st->src_last_ns)
		st->src_clock_ns += t - st->src_last_ns;
	st->src_last_ns = t;
	st->src_paused = false;
}

/*
 * After a poll that returned @rc with batch @b: count new splits, check
 * b->split, and return 0 or -errno (the job failed).
 */
static int source_splits(struct sli_subtask *st, const struct sl_batch *b, int rc)
{
	struct sli_opi *op = &st->ops[0];
	uint32_t n = b->nsplits ? b->nsplits : 1;
	unsigned ev;

	if (n > st->gen.n) {
		if (sli_wmgen_grow(&st->gen, n, st->src_clock_ns, &ev) < 0) {
			sli_fail(op, -ENOMEM, "out of memory for %u splits", n);
			return -ENOMEM;
		}
		if (emit_wm(st, ev, &st->gen.out) < 0)
			return -ENOMEM;
	}
	if ((b->n > 0 || (rc & SL_SOURCE_SPLIT_END)) && b->split >= st->gen.n) {
		sli_fail(op, -EINVAL, "poll() returned split %u of a source with %u splits",
			 b->split, st->gen.n);
		return -EINVAL;
	}
	return 0;
}

static enum step_result step_source(struct sli_subtask *st)
{
	struct sli_opi *op = &st->ops[0];
	struct sli_exec *x = st->w->x;
	struct sl_batch *b;
	uint32_t n, split;
	int rc;

	if (atomic_load_explicit(&x->job->stop_requested, memory_order_relaxed)) {
		end_subtask(st);
		return STEP_WORK;
	}
	if (st->restored_wm != INT64_MIN) {
		/* Restored: downstream learns the watermark the checkpoint had reached. */
		int64_t wm = st->restored_wm;

		st->restored_wm = INT64_MIN;
		if (wm > st->watermark && wm != INT64_MAX) {
			st->watermark = wm;
			if (chain_watermark(st, wm, true) < 0)
				return STEP_IDLE;
		}
	}
	if (sli_ckpt_due(st)) {
		sli_ckpt_source(st);
		return STEP_WORK;
	}
	b = sli_pool_get(&st->w->pool, op->node->type.size);
	if (b == NULL) {
		sli_fail(op, -ENOMEM, "out of memory for a source batch");
		return STEP_IDLE;
	}
	if (st->has_gen)
		source_clock(st);
	b->split = b->nsplits = 0;
	rc = op->node->fn.source->poll(op->state, b);
	if (rc < 0) {
		sli_pool_put(&st->w->pool, b);
		sli_fail(op, rc, "%s", op->errbuf[0] ? op->errbuf : sl_strerror(rc));
		return STEP_IDLE;
	}
	n = (uint32_t)rc & ~(uint32_t)(SL_SOURCE_END | SL_SOURCE_SPLIT_END);
	if (n > b->cap) {
		sli_pool_put(&st->w->pool, b);
		sli_fail(op, -EOVERFLOW, "poll() returned %u elements for a batch of %u", n,
			 b->cap);
		return STEP_IDLE;
	}
	if ((b->flags & SL_BATCH_F_BORROWED) && n > b->n) {
		sli_fail(op, -EOVERFLOW,
			 "poll() returned %u elements but borrowed %u (sl_batch_borrow())", n,
			 b->n);
		sli_pool_put(&st->w->pool, b);
		return STEP_IDLE;
	}
	b->n = n;
	split = b->split;
	if (st->has_gen && source_splits(st, b, rc) < 0) {
		sli_pool_put(&st->w->pool, b);
		return STEP_IDLE;
	}
	if (n > 0) {
		BUMP(st->stats.records_in, n);
		BUMP(st->stats.batches_in, 1);
		BUMP(st->w->records_src, n);
		if (source_push(st, b) < 0)
			return STEP_IDLE;
	} else {
		sli_pool_put(&st->w->pool, b);
	}
	if (st->has_gen && (rc & SL_SOURCE_SPLIT_END) &&
	    emit_wm(st, sli_wmgen_end_split(&st->gen, split), &st->gen.out) < 0)
		return STEP_IDLE;
	if (source_periodic(st) < 0)
		return STEP_IDLE;
	if (st->has_gen && !(rc & SL_SOURCE_END) &&
	    emit_wm(st, sli_wmgen_check_idle(&st->gen, st->src_clock_ns), &st->gen.out) < 0)
		return STEP_IDLE;
	if (rc & SL_SOURCE_END) {
		end_subtask(st);
		return STEP_WORK;
	}
	if (n == 0) {
		if (st->dirty)
			sli_flush_subtask(st);
		return STEP_IDLE;
	}
	return STEP_WORK;
}

static void handle_input(struct sli_subtask *st, struct sli_inchan *ch, struct sl_batch *b)
{
	unsigned c = (unsigned)(ch - st->in), ev = 0;

	/* Unaligned checkpoints: in-flight events before this channel's barrier. */
	if (ch->recording && b->kind != SL_EVENT_BARRIER && b->kind != SL_EVENT_END &&
	    sli_ckpt_record(st, c, b) < 0) {
		sli_pool_put(&st->w->pool, b);
		return;
	}

	switch (b->kind) {
	case SL_EVENT_DATA:
		BUMP(st->stats.records_in, b->n);
		BUMP(st->stats.batches_in, 1);
		sli_op_batch2(&st->ops[0], ch->input, b); /* two-input heads: which side */
		return;
	case SL_EVENT_WATERMARK:
		if (b->value > ch->watermark)
			ch->watermark = b->value;
		emit_wm(st, sli_valve_watermark(&st->valve, c, b->value), &st->valve.out);
		sli_pool_put(&st->w->pool, b);
		return;
	case SL_EVENT_IDLE:
	case SL_EVENT_ACTIVE:
		/* Statuses are not forwarded: the task says its own (sli_valve). */
		emit_wm(st, sli_valve_status(&st->valve, c, b->kind == SL_EVENT_IDLE),
			&st->valve.out);
		sli_pool_put(&st->w->pool, b);
		return;
	case SL_EVENT_END:
		sli_pool_put(&st->w->pool, b);
		if (!ch->ended) {
			ch->ended = true;
			st->nopen--;
			ev = sli_valve_end(&st->valve, c);
		}
		if (st->nopen == 0) {
			end_subtask(st);
		} else {
			emit_wm(st, ev, &st->valve.out);
			sli_ckpt_channel_ended(st);
		}
		return;
	case SL_EVENT_BARRIER: {
		int64_t id = b->value;

		sli_pool_put(&st->w->pool, b);
		sli_ckpt_barrier(st, c, id);
		return;
	}
	default:
		/* Barriers and latency markers: forwarded in order for now. */
		forward_event(st, b);
		return;
	}
}

int64_t sli_proc_now_ms(const struct sli_exec *x)
{
	const struct sl_platform *pf = x->platform;
	struct timespec ts;

	if (pf != NULL && pf->now_ms != NULL)
		return pf->now_ms(pf->ctx);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Fire the chain's due processing-time timers, in chain order (what an
 * operator emits reaches the next one first), and recompute the chain's
 * earliest one. Return whether the clock had passed it (work was due).
 */
static bool chain_proc_time(struct sli_subtask *st)
{
	int64_t now = sli_proc_now_ms(st->w->x), next = INT64_MAX;

	if (now < st->next_proc_timer)
		return false;
	for (unsigned k = 0; k < st->task->nchain; k++) {
		struct sli_opi *op = &st->ops[k];

		if (op->next_proc_timer <= now && sli_op_proc_time(op, now) < 0)
			return true; /* failed (sli_fail): the worker stops */
		if (op->next_proc_timer < next)
			next = op->next_proc_timer;
	}
	st->next_proc_timer = next;
	return true;
}

/*
 * The next event of input channel @ch: restored in-flight data first
 * (unaligned checkpoints, checkpoint.c), then the ring. NULL when empty.
 */
static struct sl_batch *next_input(struct sli_subtask *st, struct sli_inchan *ch)
{
	struct sl_batch *b;

	if (ch->replay_pos < ch->nreplay) {
		b = ch->replay[ch->replay_pos++];
		if (ch->replay_pos == ch->nreplay) {
			free(ch->replay);
			ch->replay = NULL;
			ch->nreplay = ch->replay_pos = 0;
		}
		return b;
	}
	if (sl_ring_dequeue(ch->chan->ring, (void **)&b) != 0)
		return NULL;
	if (ch->chan->producer != st->w)
		sli_worker_wake(ch->chan->producer);
	return b;
}

static enum step_result step(struct sli_subtask *st)
{
	struct sli_exec *x = st->w->x;
	bool did = false;

	/* Two-phase-commit sinks commit what completed checkpoints cover; a finished one
	 * waits for its final checkpoint before it counts as done. */
	if (st->ck.has_2pc && sli_ckpt_sink_poll(st) && st->done)
		return STEP_IDLE;
	if (st->done) {
		/* Finished, but batches (END included) may still wait for ring space. */
		if (st->drained)
			return STEP_IDLE;
		if (!drain_backlogs(st))
			return STEP_BACKPRESSURED;
		st->drained = true;
		st->w->ndone++;
		return STEP_WORK;
	}
	if (st->ending) {
		/* Its input ended: the final checkpoint waits (end_subtask()); outputs drain. */
		if (!drain_backlogs(st))
			return STEP_BACKPRESSURED;
		end_subtask(st);
		return st->ending ? STEP_IDLE : STEP_WORK;
	}
	/* Rescaled in-flight data (checkpoint.c) before barriers and inputs: nothing cuts it. */
	if (st->ck.inj_pos < st->ck.ninj) {
		if (!drain_backlogs(st))
			return STEP_BACKPRESSURED;
		sli_ckpt_inject(st);
		return STEP_WORK;
	}
	/* Unaligned checkpoints: an announced barrier is taken even under backpressure. */
	if (st->ck.prio && sli_ckpt_prio_poll(st) < 0)
		return STEP_WORK; /* failed (sli_fail): the worker stops */
	if (!drain_backlogs(st)) {
		st->src_paused = true; /* a backpressured source is not idle */
		return STEP_BACKPRESSURED;
	}
	if (st->next_proc_timer != INT64_MAX)
		did = chain_proc_time(st); /* one compare when the chain has no such timers */
	if (st->task->chain[0]->kind == SLI_SOURCE)
		return step_source(st);
	for (unsigned turn = 0; turn < BATCHES_PER_TURN && !st->done && !failed(x); turn++) {
		struct sl_batch *b = NULL;
		unsigned c;

		/*
		 * An announced barrier is taken before the next batch, not at
		 * the next step: with small rings, a turn of BATCHES_PER_TURN
		 * batches could otherwise drain what it should overtake.
		 */
		if (turn > 0 && st->ck.prio && sli_ckpt_prio_poll(st) < 0)
			return STEP_WORK; /* failed (sli_fail): the worker stops */
		for (c = 0; c < st->nin; c++) {
			struct sli_inchan *ch = &st->in[(st->rr + c) % st->nin];

			if (!ch->ended && !ch->blocked && (b = next_input(st, ch)) != NULL) {
				b->channel = (st->rr + c) % st->nin;
				st->rr = (st->rr + c + 1) % st->nin;
				handle_input(st, ch, b);
				break;
			}
		}
		if (c == st->nin)
			break; /* every input is empty */
		did = true;
		if (!drain_backlogs(st))
			return STEP_BACKPRESSURED;
	}
	if (!did && st->dirty && !st->done)
		sli_flush_subtask(st);
	return did ? STEP_WORK : STEP_IDLE;
}

/* --------------------------------------------------------------- workers */

static bool has_work(struct sli_worker *w)
{
	for (unsigned i = 0; i < w->nsubtasks; i++) {
		struct sli_subtask *st = w->subtasks[i];

		if (st->drained)
			continue;
		if (st->done || st->ck.inj_pos < st->ck.ninj)
			return true; /* its backlog drain or restored in-flight data is due */
		/* Its final checkpoint may go on (the coordinator wakes us too). */
		if (st->ending && sli_ckpt_final_ready(st))
			return true;
		/*
		 * Restored in-flight data (unaligned checkpoints) is read before
		 * the ring; a barrier announced ahead of the ring (relaxed: see
		 * announce() in checkpoint.c) is due at once.
		 */
		for (unsigned c = 0; c < st->nin; c++)
			if (!st->in[c].ended &&
			    (st->in[c].replay_pos < st->in[c].nreplay ||
			     sl_ring_count(st->in[c].chan->ring) > 0 ||
			     (st->ck.prio &&
			      atomic_load_explicit(&st->in[c].chan->prio, memory_order_relaxed) >
				  st->ck.last)))
				return true;
		for (unsigned o = 0; o < st->nout; o++)
			for (unsigned k = 0; k < st->out[o].ntargets; k++)
				if (st->out[o].t[k].nbacklog &&
				    sl_ring_free_count(st->out[o].t[k].chan->ring) > 0)
					return true;
	}
	return false;
}

static void worker_sleep(struct sli_worker *w)
{
	uint32_t seq = atomic_load_explicit(&w->wake_seq, memory_order_relaxed);
	struct timespec ts = { .tv_sec = 0, .tv_nsec = SLEEP_NS };

	atomic_store_explicit(&w->sleeping, 1, memory_order_relaxed);
	/* seq_cst fence: pairs with the one in sli_worker_wake(). */
	atomic_thread_fence(memory_order_seq_cst);
	if (!has_work(w) && !failed(w->x))
		syscall(SYS_futex, (uint32_t *)&w->wake_seq, FUTEX_WAIT_PRIVATE, seq, &ts, NULL, 0);
	atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
}

static void *worker_main(void *arg)
{
	struct sli_worker *w = arg;
	struct sli_exec *x = w->x;
	const struct sl_platform *pf = x->platform;
	unsigned spins = 0;
	uint64_t t0;

	/* Acquire: pairs with the release store of `go` in sl_job_run(). */
	while (!atomic_load_explicit(&x->go, memory_order_acquire))
		sched_yield();
	if (pf && pf->pin && w->pu >= 0) {
		int rc = pf->pin(pf->ctx, w->pu);

		if (rc < 0 && w->nsubtasks)
			sli_fail(&w->subtasks[0]->ops[0], rc, "cannot pin worker %u to PU %d: %s",
				 w->id, w->pu, sl_strerror(rc));
	}
	if (pf && pf->allocator_create && w->pu >= 0) {
		/* No silent fallback: all allocators of a job must free each other's blocks. */
		int rc = pf->allocator_create(pf->ctx, w->node, &w->alloc);

		if (rc < 0) {
			w->alloc = NULL;
			if (w->nsubtasks)
				sli_fail(&w->subtasks[0]->ops[0], rc,
					 "cannot create the NUMA allocator of worker %u: %s", w->id,
					 sl_strerror(rc));
		}
	}
	sli_pool_init(&w->pool, w->alloc, x->job->batch_size, x->job->max_record_size,
		      x->job->ring_size * 2);
	w->pool.live = &x->live_batches;
	w->pool.peak = &x->peak_batches;
	sli_set_thread_allocator(w->alloc);

	/* Open every operator of every subtask of this worker, on this thread. */
	for (unsigned i = 0; i < w->nsubtasks && !failed(x); i++) {
		struct sli_subtask *st = w->subtasks[i];

		for (unsigned k = 0; k < st->task->nchain && !failed(x); k++) {
			st->ops[k].info.worker = (int)w->id;
			st->ops[k].info.pu = w->pu;
			if (sli_op_open(&st->ops[k]) == 0)
				sli_ckpt_restore_op(&st->ops[k]);
		}
	}
	w->opened = true;
	/* Nobody runs before everybody opened (a sink may create what a source reads). */
	pthread_barrier_wait(&x->finished);

	t0 = now_ns();
	while (w->ndone < w->nsubtasks && !failed(x)) {
		bool work = false;

		for (unsigned i = 0; i < w->nsubtasks; i++) {
			struct sli_subtask *st = w->subtasks[i];
			enum step_result r = step(st);
			uint64_t t1 = now_ns();

			if (r == STEP_WORK) {
				BUMP(st->stats.busy_ns, t1 - t0);
				BUMP(w->busy_ns, t1 - t0);
				work = true;
			} else if (r == STEP_BACKPRESSURED) {
				BUMP(st->stats.bp_ns, t1 - t0);
				BUMP(w->bp_ns, t1 - t0);
			}
			t0 = t1;
		}
		if (work) {
			spins = 0;
		} else if (x->job->idle_busy || ++spins < SPINS_BEFORE_SLEEP) {
			cpu_relax();
		} else {
			worker_sleep(w);
			spins = 0;
			t0 = now_ns();
		}
	}
	/* Close operators on the thread that opened them. */
	for (unsigned i = 0; i < w->nsubtasks; i++)
		for (unsigned k = 0; k < w->subtasks[i]->task->nchain; k++)
			sli_op_close(&w->subtasks[i]->ops[k]);
	pthread_barrier_wait(&x->finished);
	/* The main thread frees all batches now; then we drop our allocator. */
	pthread_barrier_wait(&x->teardown);
	sli_set_thread_allocator(NULL);
	if (w->alloc && pf && pf->allocator_destroy)
		pf->allocator_destroy(pf->ctx, w->alloc);
	return NULL;
}

/* ----------------------------------------------------------------- setup */

static struct sli_chan *new_chan(struct sli_exec *x, struct sli_worker *prod,
				 struct sli_worker *cons, const char *name)
{
	struct sli_chan *c = &x->chans[x->nchans++];

	c->producer = prod;
	c->consumer = cons;
	if (sl_ring_create(x->job->ring_size, name, NULL, &c->ring) < 0)
		return NULL;
	return c;
}

static unsigned count_chans(const struct sli_plan *p)
{
	unsigned n = 0;

	for (unsigned t = 0; t < p->ntasks; t++)
		for (unsigned k = 0; k < p->tasks[t].nout; k++) {
			const struct sli_edge *e = p->tasks[t].out[k];

			n += e->part == SLI_PART_FORWARD
				 ? e->from->parallelism
				 : e->from->parallelism * e->to->parallelism;
		}
	return n;
}

static struct sli_subtask *subtask_of(struct sli_exec *x, int task, unsigned index)
{
	return &x->subtasks[sli_plan_subtask_id(&x->job->plan, task, index)];
}

/* Index of edge @e among the exchange outputs of its source task. */
static int out_index(const struct sli_task *t, const struct sli_edge *e)
{
	for (unsigned k = 0; k < t->nout; k++)
		if (t->out[k] == e)
			return (int)k;
	return -1;
}

static int in_index(const struct sli_task *t, const struct sli_edge *e)
{
	for (unsigned k = 0; k < t->nin; k++)
		if (t->in[k] == e)
			return (int)k;
	return -1;
}

/* Channels of consumer subtask (task, j) that come before edge @ei. */
static unsigned chan_base(const struct sli_task *t, int ei)
{
	unsigned base = 0;

	for (int k = 0; k < ei; k++) {
		const struct sli_edge *e = t->in[k];

		base += e->part == SLI_PART_FORWARD ? 1 : e->from->parallelism;
	}
	return base;
}

static int setup(struct sli_exec *x)
{
	struct sl_job *job = x->job;
	struct sli_plan *p = &job->plan;

	x->nworkers = p->nworkers;
	x->workers = calloc(p->nworkers, sizeof(*x->workers));
	x->subtasks = calloc(p->nsubtasks, sizeof(*x->subtasks));
	x->chans = calloc(count_chans(p) + 1, sizeof(*x->chans));
	if (!x->workers || !x->subtasks || !x->chans)
		return -ENOMEM;
	for (unsigned w = 0; w < p->nworkers; w++) {
		struct sli_worker *wk = &x->workers[w];

		wk->x = x;
		wk->id = w;
		wk->pu = p->worker_pu[w];
		wk->node = p->worker_node[w];
		wk->subtasks = calloc(p->nsubtasks, sizeof(*wk->subtasks));
		if (wk->subtasks == NULL)
			return -ENOMEM;
	}
	/* Subtasks, their operator instances and chain links. */
	for (unsigned t = 0; t < p->ntasks; t++) {
		struct sli_task *task = &p->tasks[t];

		for (unsigned i = 0; i < task->parallelism; i++) {
			struct sli_subtask *st = subtask_of(x, (int)t, i);
			struct sli_worker *w = &x->workers[p->subtask_worker[p->task_first[t] + i]];
			unsigned nin = 0;

			st->task = task;
			st->index = i;
			st->w = w;
			st->watermark = INT64_MIN;
			w->subtasks[w->nsubtasks++] = st;
			st->ops = calloc(task->nchain, sizeof(*st->ops));
			st->out = calloc(task->nout ? task->nout : 1, sizeof(*st->out));
			st->nout = task->nout;
			for (unsigned k = 0; k < task->nin; k++)
				nin += task->in[k]->part == SLI_PART_FORWARD
					   ? 1
					   : task->in[k]->from->parallelism;
			st->in = calloc(nin ? nin : 1, sizeof(*st->in));
			if (!st->ops || !st->out || !st->in)
				return -ENOMEM;
			st->nin = st->nopen = nin;
			st->watermark = INT64_MIN;
			st->restored_wm = INT64_MIN;
			st->next_proc_timer = INT64_MAX;
			for (unsigned c = 0; c < nin; c++)
				st->in[c].watermark = INT64_MIN;
			if (sli_valve_init(&st->valve, nin) < 0)
				return -ENOMEM;
			if (task->chain[0]->kind == SLI_SOURCE && task->chain[0]->has_wm) {
				sli_wmgen_init(&st->gen, &task->chain[0]->wm);
				st->has_gen = true;
			}
			for (unsigned k = 0; k < task->nchain; k++) {
				struct sli_opi *op = &st->ops[k];
				struct sli_node *n = task->chain[k];

				op->node = n;
				op->st = st;
				op->coll.op = op;
				op->next = k + 1 < task->nchain ? &st->ops[k + 1] : NULL;
				op->info = (struct sl_subtask_info){
					.op_name = n->name,
					.index = i,
					.parallelism = task->parallelism,
					.max_parallelism = job->max_parallelism,
					.worker = -1,
					.pu = -1,
					.batch_size = job->batch_size,
					.max_record_size = job->max_record_size,
					.counters = &n->counters,
					.errbuf = op->errbuf,
					.errlen = sizeof(op->errbuf),
				};
				op->port_type[0] = &n->type;
				for (unsigned s = 0; s < n->nside; s++)
					op->port_type[s + 1] = &n->side[s];
				if (n->kind == SLI_REDUCE || n->kind == SLI_WINDOW ||
				    n->kind == SLI_KEYED_PROCESS)
					op->key = n->in[0]->key;
				op->watermark = INT64_MIN;
				op->next_proc_timer = INT64_MAX;
				if ((n->kind == SLI_MAP || n->kind == SLI_MAP_BATCH) &&
				    job->object_reuse) {
					const struct sli_edge *e = n->in[0];
					const struct sl_type *it =
					    e->port ? &e->from->side[e->port - 1] : &e->from->type;

					op->in_place = it->size == n->type.size;
				}
			}
		}
	}
	/* Exchanges: channels, producer-side targets, consumer-side inputs. */
	for (unsigned t = 0; t < p->ntasks; t++) {
		struct sli_task *task = &p->tasks[t];

		for (unsigned k = 0; k < task->nout; k++) {
			struct sli_edge *e = task->out[k];
			struct sli_task *to = &p->tasks[e->to->task];
			int ei = in_index(to, e);
			unsigned pf = task->parallelism, pt = to->parallelism;
			bool fwd = e->part == SLI_PART_FORWARD;

			for (unsigned i = 0; i < pf; i++) {
				struct sli_subtask *st = subtask_of(x, (int)t, i);
				struct sli_outedge *oe = &st->out[k];
				struct sli_opi *op = &st->ops[e->from->chain_pos];

				oe->edge = e;
				oe->type = e->port ? &e->from->side[e->port - 1] : &e->from->type;
				oe->ntargets = fwd ? 1 : pt;
				oe->t = calloc(oe->ntargets, sizeof(*oe->t));
				if (oe->t == NULL)
					return -ENOMEM;
				/* Rescale: each producer feeds a contiguous share of consumers. */
				oe->rescale_lo = (unsigned)((uint64_t)i * pt / pf);
				oe->rescale_n =
				    (unsigned)((uint64_t)(i + 1) * pt / pf) - oe->rescale_lo;
				if (oe->rescale_n == 0) {
					oe->rescale_lo = (unsigned)((uint64_t)i * pt / pf) % pt;
					oe->rescale_n = 1;
				}
				oe->rr = i; /* spread the first batches of each producer */
				if (e->part == SLI_PART_HASH) {
					unsigned maxp = job->max_parallelism;

					oe->kg_target = malloc(maxp * sizeof(*oe->kg_target));
					if (oe->kg_target == NULL)
						return -ENOMEM;
					for (unsigned kg = 0; kg < maxp; kg++)
						oe->kg_target[kg] =
						    (uint16_t)sli_key_group_subtask(kg, pt, maxp);
					oe->kg_mask = SL_IS_POW2(maxp) ? maxp - 1 : 0;
				}
				if (op->nport_out[e->port] == SL_ARRAY_SIZE(op->port_out[0]))
					return -E2BIG;
				op->port_out[e->port][op->nport_out[e->port]++] = oe;
				for (unsigned j = 0; j < oe->ntargets; j++) {
					unsigned cj = fwd ? i : j;
					struct sli_subtask *cs = subtask_of(x, e->to->task, cj);
					char name[32];
					struct sli_chan *c;

					snprintf(name, sizeof(name), "e%d.%u>%u", e->id, i, cj);
					c = new_chan(x, st->w, cs->w, name);
					if (c == NULL)
						return -ENOMEM;
					oe->t[j].chan = c;
					cs->in[chan_base(to, ei) + (fwd ? 0 : i)].chan = c;
					cs->in[chan_base(to, ei) + (fwd ? 0 : i)].input = e->input;
				}
			}
			(void)out_index;
		}
	}
	return 0;
}

static void teardown(struct sli_exec *x)
{
	struct sl_batch_pool tmp;

	/* Main thread: everything left in flight goes back to the allocators. */
	sli_pool_init(&tmp, NULL, x->job->batch_size, x->job->max_record_size, 0);
	for (unsigned c = 0; c < x->nchans; c++) {
		void *b;

		if (x->chans[c].ring == NULL)
			continue;
		while (sl_ring_dequeue(x->chans[c].ring, &b) == 0)
			sli_pool_put(&tmp, b);
		sl_ring_destroy(x->chans[c].ring);
	}
	for (unsigned s = 0; x->subtasks && s < x->job->plan.nsubtasks; s++) {
		struct sli_subtask *st = &x->subtasks[s];

		for (unsigned o = 0; st->out && o < st->task->nout; o++) {
			struct sli_outedge *oe = &st->out[o];

			for (unsigned k = 0; oe->t && k < oe->ntargets; k++) {
				sli_pool_put(&tmp, oe->t[k].pending);
				for (unsigned b = 0; b < oe->t[k].nbacklog; b++)
					sli_pool_put(&tmp, oe->t[k].backlog[b]);
				free(oe->t[k].backlog);
			}
			free(oe->t);
			free(oe->kg_target);
		}
		free(st->out);
		free(st->in);
		sli_valve_fini(&st->valve);
		sli_wmgen_fini(&st->gen);
		free(st->ops);
	}
	for (unsigned w = 0; x->workers && w < x->nworkers; w++) {
		sli_pool_fini(&x->workers[w].pool);
		free(x->workers[w].subtasks);
	}
	sli_pool_fini(&tmp);
}

/* ------------------------------------------------------------------- run */

/*
 * --state-memory bounds the keyed state of sl_state.h only: windows,
 * joins and reduce keep theirs in their own in-memory tables. Say so
 * once per run rather than let the budget look like it covers them.
 */
static void warn_unbounded_state(const struct sl_job *job)
{
	if (job->state.memory == 0)
		return;
	for (unsigned i = 0; i < job->nnodes; i++) {
		const struct sli_node *n = job->nodes[i];

		switch (n->kind) {
		case SLI_REDUCE:
		case SLI_WINDOW:
		case SLI_WINDOW_GEN:
		case SLI_WINDOW_JOIN:
		case SLI_INTERVAL_JOIN:
			sl_log(SL_LOG_WARN, "state",
			       "operator '%s' (%s) keeps its state in memory: state-memory bounds "
			       "keyed state (sl_state.h) only",
			       n->name, sli_kind_name(n->kind));
			break;
		default:
			break;
		}
	}
}

/*
 * One attempt: a fresh exec, restore (the newest checkpoint when
 * @restarting), run to the end or the first failure, tear down. *fatal
 * says whether a failure rules out a restart (anything before the workers
 * start, or what sli_fail_exec() classes so).
 */
static int run_once(struct sl_job *job, const struct sl_platform *platform, bool restarting,
		    bool *fatal, char *errbuf, size_t errlen)
{
	struct sli_exec *x;
	unsigned started = 0;
	int rc;

	*fatal = true;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return sl_errbuf_set(errbuf, errlen, -ENOMEM, "out of memory starting the job");
	x->job = job;
	x->platform = platform;
	x->restarting = restarting;
	atomic_init(&x->failed, 0);
	atomic_init(&x->live_batches, 0);
	atomic_init(&x->peak_batches, 0);
	rc = setup(x);
	if (rc < 0) {
		sl_errbuf_set(errbuf, errlen, rc, "cannot set up job '%s': %s", job->name,
			      sl_strerror(rc));
		goto out;
	}
	/* Restore (sinks recover before anything opens), then the checkpoint coordinator. */
	rc = sli_ckpt_prepare(x, errbuf, errlen);
	if (rc == 0)
		rc = sli_ckpt_start(x, errbuf, errlen);
	if (rc < 0) {
		sli_ckpt_stop(x);
		sli_ckpt_free(x);
		teardown(x);
		goto out;
	}
	/* Release: stats readers that load `exec` (acquire) see a built exec. */
	atomic_store_explicit(&job->exec, x, memory_order_release);
	for (; started < x->nworkers; started++)
		if (pthread_create(&x->workers[started].thread, NULL, worker_main,
				   &x->workers[started]) != 0)
			break;
	if (started < x->nworkers) {
		int expected = 0;

		if (atomic_compare_exchange_strong(&x->failed, &expected, 1)) {
			x->fail_rc = -EAGAIN;
			snprintf(x->fail_msg, sizeof(x->fail_msg),
				 "cannot start worker thread %u of %u", started, x->nworkers);
		}
	}
	/* Barriers count the threads that exist, so a short start cannot hang. */
	pthread_barrier_init(&x->finished, NULL, started + 1);
	pthread_barrier_init(&x->teardown, NULL, started + 1);
	x->start_ns = now_ns();
	/* Release: pairs with the acquire loop at the top of worker_main(). */
	atomic_store_explicit(&x->go, 1, memory_order_release);
	pthread_barrier_wait(&x->finished); /* all opened */
	pthread_barrier_wait(&x->finished); /* all done and closed */
	sli_ckpt_stop(x);
	sli_ckpt_free(x);
	teardown(x);
	pthread_barrier_wait(&x->teardown);
	for (unsigned i = 0; i < started; i++)
		pthread_join(x->workers[i].thread, NULL);
	/*
	 * The last run's stats change while `exec` is still `x`: once the
	 * readers that loaded NULL before this attempt left (seq_cst load of
	 * the count, pairing with their seq_cst increment-then-load in
	 * sl_job_stats()), new readers see `x` and leave last_* alone. A
	 * restart makes this matter: readers come between attempts.
	 */
	while (atomic_load(&job->stats_readers) != 0)
		sched_yield();
	job->last_peak_batches = (uint64_t)atomic_load(&x->peak_batches);
	free(job->last_task_stats);
	job->last_task_stats = calloc(job->plan.nsubtasks, sizeof(*job->last_task_stats));
	if (job->last_task_stats != NULL) {
		uint64_t t = now_ns();

		for (unsigned i = 0; i < job->plan.nsubtasks; i++)
			read_stats(x, &x->subtasks[i], t, &job->last_task_stats[i]);
	}
	/*
	 * seq_cst store, then wait for readers: pairs with the seq_cst
	 * increment-then-load in sl_job_stats(). A reader that saw `x`
	 * incremented before our store, so we see its count and wait.
	 */
	atomic_store(&job->exec, NULL);
	while (atomic_load(&job->stats_readers) != 0)
		sched_yield();
	pthread_barrier_destroy(&x->finished);
	pthread_barrier_destroy(&x->teardown);
	rc = 0;
	if (atomic_load(&x->failed)) {
		rc = x->fail_rc;
		*fatal = x->fail_fatal;
		sl_errbuf_set(errbuf, errlen, rc, "%s", x->fail_msg);
	}
out:
	free(x->subtasks);
	free(x->workers);
	free(x->chans);
	free(x);
	return rc;
}

static bool stopping(const struct sl_job *job)
{
	return atomic_load_explicit(&((struct sl_job *)job)->stop_requested,
				    memory_order_relaxed) != 0;
}

/* Sleep @ms in short slices. Return true when sl_job_stop() ended the wait. */
static bool backoff_wait(const struct sl_job *job, int64_t ms)
{
	/* Past ~292 years the wait is "until stopped". */
	uint64_t end = ms < INT64_MAX / 1000000 - (int64_t)(now_ns() / 1000000)
			   ? now_ns() + (uint64_t)ms * 1000000u
			   : UINT64_MAX;

	for (;;) {
		uint64_t t = now_ns();
		struct timespec ts = { 0, 10 * 1000000 };

		if (stopping(job))
			return true;
		if (t >= end)
			return false;
		if (end - t < (uint64_t)ts.tv_nsec)
			ts.tv_nsec = (long)(end - t);
		nanosleep(&ts, NULL);
	}
}

/*
 * After a failed attempt: decide with the restart strategy. Return true
 * to run again (after the backoff), false when @rc stands; a stop during
 * the backoff turns it into 0.
 */
static bool restart_after(struct sl_job *job, struct sli_restart *rs, int *rc, char *errbuf,
			  size_t errlen)
{
	char cause[2 * SLI_ERRLEN];
	int64_t delay;

	snprintf(cause, sizeof(cause), "%s", errbuf && errbuf[0] ? errbuf : sl_strerror(*rc));
	delay = sli_restart_next(rs, (int64_t)(now_ns() / 1000000u));
	if (delay < 0) {
		if (rs->kind != SLI_RESTART_NONE)
			sl_errbuf_set(errbuf, errlen, *rc,
				      "%s (restart strategy %s gave up after %u restarts)", cause,
				      sli_restart_name(rs->kind), rs->restarts);
		return false;
	}
	sl_log(SL_LOG_WARN, "restart", "restarting job '%s' in %g s (attempt %u, %s): %s",
	       job->name, (double)delay / 1000.0, rs->restarts, sli_restart_name(rs->kind), cause);
	/* Relaxed: a counter for sl_job_stats(); nothing is published with it. */
	atomic_store_explicit(&job->restarts, rs->restarts, memory_order_relaxed);
	if (backoff_wait(job, delay)) {
		sl_log(SL_LOG_INFO, "restart", "job '%s' stopped while waiting to restart",
		       job->name);
		*rc = 0;
		if (errbuf != NULL && errlen > 0)
			errbuf[0] = '\0';
		return false;
	}
	return true;
}

int sl_job_run(struct sl_job *job, const struct sl_platform *platform, char *errbuf, size_t errlen)
{
	struct sli_restart rs;
	bool fatal;
	int expected = 0;
	int rc;

	if (job == NULL)
		return sl_errbuf_set(errbuf, errlen, -EINVAL, "sl_job_run: NULL job");
	/* seq_cst CAS: pairs with the store of 0 at the end of another sl_job_run(). */
	if (!atomic_compare_exchange_strong(&job->running, &expected, 1))
		return sl_errbuf_set(errbuf, errlen, -EBUSY, "job '%s' is already running",
				     job->name);
	atomic_store_explicit(&job->restarts, 0, memory_order_relaxed);
	rc = sli_job_plan(job, platform, errbuf, errlen);
	if (rc < 0)
		goto out;
	rc = sli_restart_init(&rs, &job->restart, job->ckpt.dir != NULL, (uint64_t)now_ns(), errbuf,
			      errlen);
	if (rc < 0) {
		sli_restart_fini(&rs);
		goto out;
	}
	warn_unbounded_state(job);
	for (bool again = false;; again = true) {
		rc = run_once(job, platform, again, &fatal, errbuf, errlen);
		if (rc == 0 || fatal || stopping(job) ||
		    !restart_after(job, &rs, &rc, errbuf, errlen))
			break;
	}
	sli_restart_fini(&rs);
out:
	atomic_store(&job->running, 0);
	return rc;
}

void sl_job_stop(struct sl_job *job)
{
	if (job != NULL)
		atomic_store_explicit(&job->stop_requested, 1, memory_order_relaxed);
}

/* Relaxed reads of one subtask's counters; idle is what busy and backpressure leave of @now. */
static void read_stats(const struct sli_exec *x, struct sli_subtask *st, uint64_t now,
		       struct sl_task_stats *c)
{
	uint64_t run = now > x->start_ns ? now - x->start_ns : 0;

	c->records_in = atomic_load_explicit(&st->stats.records_in, memory_order_relaxed);
	c->records_out = atomic_load_explicit(&st->stats.records_out, memory_order_relaxed);
	c->batches_in = atomic_load_explicit(&st->stats.batches_in, memory_order_relaxed);
	c->batches_out = atomic_load_explicit(&st->stats.batches_out, memory_order_relaxed);
	c->busy_ns = atomic_load_explicit(&st->stats.busy_ns, memory_order_relaxed);
	c->backpressured_ns = atomic_load_explicit(&st->stats.bp_ns, memory_order_relaxed);
	c->idle_ns =
	    run > c->busy_ns + c->backpressured_ns ? run - c->busy_ns - c->backpressured_ns : 0;
}

int sl_job_task_stats(const struct sl_job *job, struct sl_subtask_stats *out, unsigned cap)
{
	const struct sli_plan *p;
	struct sli_exec *x;
	uint64_t now = now_ns();
	int n = 0;

	if (job == NULL || (out == NULL && cap > 0))
		return -EINVAL;
	p = &job->plan;
	/* seq_cst increment, then load: see the wait at the end of sl_job_run(). */
	atomic_fetch_add((_Atomic int *)&job->stats_readers, 1);
	x = atomic_load(&((struct sl_job *)job)->exec);
	if (x != NULL || job->last_task_stats != NULL) {
		n = (int)p->nsubtasks;
		for (unsigned t = 0, i = 0; t < p->ntasks; t++)
			for (unsigned k = 0; k < p->tasks[t].parallelism && i < cap; k++, i++) {
				unsigned id = sli_plan_subtask_id(p, (int)t, k);
				int w = p->subtask_worker[id];
				struct sl_subtask_stats *o = &out[i];

				*o = (struct sl_subtask_stats){
					.task = p->tasks[t].name,
					.task_id = t,
					.index = k,
					.parallelism = p->tasks[t].parallelism,
					.worker = w,
					.pu = p->worker_pu[w],
					.node = p->worker_node[w],
				};
				if (x != NULL)
					read_stats(x, &x->subtasks[id], now, &o->c);
				else
					o->c = job->last_task_stats[id];
			}
	}
	atomic_fetch_sub((_Atomic int *)&job->stats_readers, 1);
	return n;
}

void sl_job_stats(const struct sl_job *job, struct sl_job_stats *out)
{
	struct sli_exec *x;

	if (job == NULL || out == NULL)
		return;
	memset(out, 0, sizeof(*out));
	/* seq_cst increment, then load: see the wait at the end of sl_job_run(). */
	atomic_fetch_add((_Atomic int *)&job->stats_readers, 1);
	x = atomic_load(&((struct sl_job *)job)->exec);
	out->running = atomic_load_explicit(&job->running, memory_order_relaxed) != 0;
	/* Relaxed: pairs with nothing, a counter (see restart_after()). */
	out->restarts = atomic_load_explicit(&job->restarts, memory_order_relaxed);
	if (x != NULL) {
		out->peak_batches =
		    (uint64_t)atomic_load_explicit(&x->peak_batches, memory_order_relaxed);
		for (unsigned w = 0; w < x->nworkers; w++) {
			struct sli_worker *wk = &x->workers[w];

			out->source_records +=
			    atomic_load_explicit(&wk->records_src, memory_order_relaxed);
			out->sink_records +=
			    atomic_load_explicit(&wk->records_sink, memory_order_relaxed);
			out->busy_ns += atomic_load_explicit(&wk->busy_ns, memory_order_relaxed);
			out->backpressured_ns +=
			    atomic_load_explicit(&wk->bp_ns, memory_order_relaxed);
		}
	}
	if (x == NULL) /* before the decrement: the end of a run waits for it */
		out->peak_batches = job->last_peak_batches;
	atomic_fetch_sub((_Atomic int *)&job->stats_readers, 1);
}
