/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conn_gen.c — the seeded generator source.
 *
 * Element i is whatever conf->fill makes of (i, seed): the source only
 * decides which indices a subtask produces, in which order, and how fast.
 * Bounded (count > 0): subtask s of p owns the contiguous indices
 * [s*count/p, (s+1)*count/p). Unbounded: s, s+p, s+2p, ... So the output
 * is the same multiset, element by element, at every parallelism.
 *
 * Checkpoints: the position is the next index, with the subtask's first
 * index, end and step to detect a changed count or parallelism.
 *
 * Threads: one struct gen per subtask, used by the thread polling it; the
 * conf is shared read-only.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <sluice/sl_connectors.h>
#include <sluice/sl_error.h>
#include <sluice/sl_snap.h>

#include "sli_lines.h"
#include "sli_rate.h"

struct gen {
	const struct sl_gen_conf *conf;
	const struct sl_subtask_info *info;
	uint64_t first; /* first index of the subtask */
	uint64_t next;	/* next index to produce */
	uint64_t end;	/* bounded: one past the last index */
	uint64_t step;	/* 1 when bounded, p when unbounded */
	bool bounded;
	bool polled; /* restore() is allowed only before the first poll() */
	struct sli_rate rate;
};

static uint64_t split(uint64_t total, unsigned s, unsigned p)
{
	return (uint64_t)s * (total / p) + (uint64_t)s * (total % p) / p;
}

static int gen_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	const struct sl_gen_conf *conf = arg;
	struct gen *g;

	if (info == NULL || state == NULL)
		return -EINVAL;
	if (conf == NULL || conf->type == NULL ||
	    (conf->fill == NULL) == (conf->fill_batch == NULL))
		return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
				     "generator: the configuration needs a type and exactly one of "
				     "fill and fill_batch");
	if (conf->type->nstr > 0)
		return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
				     "generator: type %s has string fields, which a fill function "
				     "cannot set",
				     conf->type->name ? conf->type->name : "(unnamed)");
	if (!sli_rate_valid(conf->rate))
		return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
				     "generator: rate must be a finite number >= 0 (0: unlimited)");
	if (info->parallelism == 0 || info->index >= info->parallelism)
		return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
				     "generator: subtask %u of %u does not exist", info->index,
				     info->parallelism);
	g = sli_conn_zalloc(sizeof(*g));
	if (g == NULL)
		return sl_errbuf_set(info->errbuf, info->errlen, -ENOMEM,
				     "generator: out of memory");
	g->conf = conf;
	g->info = info;
	g->bounded = conf->count > 0;
	if (g->bounded) {
		g->next = split(conf->count, info->index, info->parallelism);
		g->end = split(conf->count, info->index + 1, info->parallelism);
		g->step = 1;
	} else {
		g->next = info->index;
		g->step = info->parallelism;
	}
	g->first = g->next;
	sli_rate_init(&g->rate, conf->rate, info->parallelism);
	*state = g;
	return 0;
}

static int gen_poll(void *state, struct sl_batch *out)
{
	struct gen *g = state;
	const struct sl_gen_conf *conf = g->conf;
	uint64_t want = out->cap - out->n;
	uint32_t es = out->elem_size;

	g->polled = true;
	if (es != conf->type->size)
		return sl_errbuf_set(g->info->errbuf, g->info->errlen, -EINVAL,
				     "generator: the batch holds %u-byte elements, type %s is %u "
				     "bytes",
				     es, conf->type->name ? conf->type->name : "(unnamed)",
				     conf->type->size);
	if (g->bounded && g->end - g->next < want)
		want = g->end - g->next;
	want = sli_rate_allow(&g->rate, want);
	if (conf->fill_batch != NULL) {
		conf->fill_batch(g->next, g->step, (uint32_t)want, conf->seed,
				 sl_batch_elem(out, out->n), out->ts + out->n, conf->arg);
		out->n += (uint32_t)want;
		g->next += want * g->step;
		goto taken;
	}
	memset(sl_batch_elem(out, out->n), 0, (size_t)want * es);
	for (uint64_t i = 0; i < want; i++) {
		int64_t ts = 0;

		conf->fill(g->next, conf->seed, sl_batch_elem(out, out->n), &ts, conf->arg);
		out->ts[out->n++] = ts;
		g->next += g->step;
	}
taken:
	sli_rate_take(&g->rate, want);
	if (g->bounded && g->next == g->end)
		return (int)want | SL_SOURCE_END;
	return (int)want;
}

static void gen_close(void *state)
{
	sli_conn_free(state);
}

#define GEN_SNAP_ID 0x314e4753u /* "SGN1": generator position, version 1 */

/* A generator's position (sli_conn_snap_put()). */
struct gen_pos {
	uint64_t first, end, step; /* the subtask's indices: detect a changed conf or parallelism */
	uint64_t next;
};

static int gen_snapshot(void *state, struct sl_snap_writer *w)
{
	const struct gen *g = state;
	struct gen_pos pos = { .first = g->first, .end = g->end, .step = g->step, .next = g->next };
	int rc = sli_conn_snap_put(w, GEN_SNAP_ID, &pos, sizeof(pos), NULL);

	if (rc < 0)
		return sl_errbuf_set(g->info->errbuf, g->info->errlen, rc,
				     "generator: out of memory writing its position");
	return 0;
}

static int gen_restore(void *state, struct sl_snap_reader *r)
{
	struct gen *g = state;
	const struct sl_subtask_info *info = g->info;
	struct gen_pos pos;
	const void *name;
	uint32_t nlen;
	int rc;

	if (g->polled)
		return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
				     "generator: restore() after poll()");
	rc = sli_conn_snap_get(r, GEN_SNAP_ID, &pos, sizeof(pos), &name, &nlen);
	if (rc < 0)
		return rc;
	if (pos.first != g->first || pos.end != g->end || pos.step != g->step)
		return sl_errbuf_set(info->errbuf, info->errlen, -EBADMSG,
				     "cannot restore: generator subtask %u of %u produces indices "
				     "from %" PRIu64 " to %" PRIu64 " by %" PRIu64
				     ", the checkpoint's from %" PRIu64 " to %" PRIu64
				     " by %" PRIu64 ": the count or the parallelism changed",
				     info->index, info->parallelism, g->first, g->end, g->step,
				     pos.first, pos.end, pos.step);
	if (pos.next < g->first || (g->bounded && pos.next > g->end) ||
	    (pos.next - g->first) % g->step != 0 || nlen != 0)
		return sl_snap_bad(r, "generator: position out of range");
	g->next = pos.next;
	return 0;
}

const struct sl_source_ops sl_gen_ops = {
	.open = gen_open,
	.poll = gen_poll,
	.close = gen_close,
	.snapshot = gen_snapshot,
	.restore = gen_restore,
};
