/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ckpt_chan.c — the channel state of unaligned checkpoints: recording an
 * input channel's events into its log, and replaying a log on restore,
 * as recorded or redistributed to another parallelism (the format and
 * the rules are in sli_ckpt_chan.h; checkpoint.c says when either runs).
 *
 * Redistribution follows Flink's rescaling of channel state: an element
 * of a keyed exchange goes to the new owner of its key group, any other
 * element to one new subtask chosen from the old subtask's index, so that
 * every recorded element reaches exactly one new subtask and the elements
 * of one log keep their order. Watermarks, idleness and activity are not
 * replayed then (Flink does not keep them in channel state either):
 * checkpoint.c explains why the watermarks the restored upstream sends
 * again make up for them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sli_ckpt_chan.h"

int sli_chan_log_put(struct sli_snap_buf *l, const struct sl_batch *b)
{
	uint32_t hdr[5] = { b->kind, b->n, b->elem_size, b->flags & SL_BATCH_F_KEYED,
			    b->arena_used };
	int rc;

	if (b->kind != SL_EVENT_DATA) {
		rc = sli_snap_buf_put(l, hdr, 4);
		return rc < 0 ? rc : sli_snap_buf_put(l, &b->value, 8);
	}
	rc = sli_snap_buf_put(l, hdr, sizeof(hdr));
	rc = rc < 0 ? rc : sli_snap_buf_put(l, b->data, (size_t)b->n * b->elem_size);
	rc = rc < 0 ? rc : sli_snap_buf_put(l, b->ts, (size_t)b->n * 8);
	if (rc == 0 && hdr[3])
		rc = sli_snap_buf_put(l, b->key, (size_t)b->n * 8);
	return rc < 0 ? rc : sli_snap_buf_put(l, b->arena, b->arena_used);
}

/* Is element @i of @v (type @t) the replaying subtask's (@rt rescaled)? */
static bool mine(const struct sli_chan_route *rt, const struct sl_batch *v, uint32_t i)
{
	uint64_t h;

	if (v->flags & SL_BATCH_F_KEYED) {
		h = v->key[i];
	} else if (rt->key != NULL) {
		struct sl_key k;

		sli_key_get(rt->key, sl_batch_elem(v, i), v, &k);
		h = sli_hash64(k.ptr, k.len, 0);
	} else {
		return rt->from % rt->parallelism == rt->index;
	}
	return sli_key_group_subtask(sli_key_group(h, rt->max_parallelism), rt->parallelism,
				     rt->max_parallelism) == rt->index;
}

/* A control event (header @kind read) from @r: emitted as recorded, dropped when rescaled. */
static int control_event(struct sl_snap_reader *r, uint32_t kind, const struct sli_chan_route *rt,
			 struct sl_batch_pool *pool, sli_chan_emit_fn emit, void *arg)
{
	struct sl_batch *b;
	int64_t value;
	int rc;

	if (kind != SL_EVENT_WATERMARK && kind != SL_EVENT_IDLE && kind != SL_EVENT_ACTIVE)
		return sl_snap_bad(r, "in-flight data: an unknown event");
	rc = sl_snap_get_i64(r, &value);
	if (rc < 0 || rt->rescale)
		return rc;
	b = sli_pool_get_event(pool, (enum sl_event_kind)kind, value);
	if (b == NULL)
		return -ENOMEM;
	rc = emit(arg, b);
	if (rc < 0)
		sli_pool_put(pool, b);
	return rc;
}

/* Read the body of a data event (header @hdr) from @r into @v, backed by *@mem (malloc'd). */
static int data_view(struct sl_snap_reader *r, const uint32_t *hdr, struct sl_batch *v,
		     uint8_t **mem)
{
	uint64_t n = hdr[1], size = hdr[2], per = size + 8 + (hdr[3] ? 8 : 0);
	uint64_t left = sl_snap_left(r);
	uint8_t *p;
	int rc;

	if (hdr[3] > 1)
		return sl_snap_bad(r, "in-flight data: a corrupt event header");
	/* Divided, not multiplied: a corrupt count must not overflow the check. */
	if (hdr[4] > left || n > (left - hdr[4]) / per)
		return sl_snap_bad(r, "in-flight data: truncated");
	p = malloc((size_t)(n * (size + 16)) + hdr[4] + 1);
	if (p == NULL)
		return -ENOMEM;
	*mem = p;
	*v = (struct sl_batch){ .kind = SL_EVENT_DATA,
				.n = hdr[1],
				.cap = hdr[1],
				.elem_size = hdr[2],
				.flags = hdr[3] ? SL_BATCH_F_KEYED : 0,
				.arena_used = hdr[4],
				.arena_cap = hdr[4] };
	/* Copied out of the reader: the view's arrays must be aligned. */
	v->data = p;
	v->ts = (int64_t *)(p + n * size);
	v->key = (uint64_t *)(p + n * (size + 8));
	v->arena = (char *)p + n * (size + 16);
	rc = sl_snap_get(r, v->data, (size_t)(n * size));
	rc = rc < 0 ? rc : sl_snap_get(r, v->ts, (size_t)n * 8);
	if (rc == 0 && hdr[3])
		rc = sl_snap_get(r, v->key, (size_t)n * 8);
	return rc < 0 ? rc : sl_snap_get(r, v->arena, hdr[4]);
}

/* The elements of @v that @rt selects, repacked into batches of @pool, through @emit. */
static int data_out(struct sl_snap_reader *r, const struct sl_batch *v, const struct sl_type *t,
		    const struct sli_chan_route *rt, struct sl_batch_pool *pool,
		    sli_chan_emit_fn emit, void *arg, uint64_t *kept)
{
	struct sl_batch *b = NULL;
	int rc = 0;

	for (uint32_t i = 0; i < v->n && rc == 0; i++) {
		if (rt->rescale && !mine(rt, v, i))
			continue;
		if (b == NULL && (b = sli_pool_get(pool, v->elem_size)) == NULL)
			return -ENOMEM;
		b->flags = v->flags;
		rc = b->n < b->cap ? sli_batch_copy_elem(b, v, i, t) : -E2BIG;
		if (rc == -E2BIG && b->n > 0) { /* full: out it goes, the element starts the next */
			rc = emit(arg, b);
			if (rc < 0)
				break;
			b = NULL;
			i--;
			continue;
		}
		if (rc == -E2BIG)
			rc = sl_snap_bad(r,
					 "in-flight data: a record larger than this job's batches");
		if (rc == 0)
			++*kept;
	}
	if (rc == 0 && b != NULL) {
		rc = emit(arg, b);
		if (rc == 0)
			b = NULL;
	}
	if (b != NULL)
		sli_pool_put(pool, b);
	return rc;
}

int sli_chan_replay(struct sl_snap_reader *r, uint32_t nevents, const struct sl_type *t,
		    const struct sli_chan_route *rt, struct sl_batch_pool *pool,
		    sli_chan_emit_fn emit, void *arg, uint64_t *kept)
{
	int rc = 0;

	for (uint32_t e = 0; e < nevents && rc == 0; e++) {
		uint32_t hdr[5];
		struct sl_batch view;
		uint8_t *mem = NULL;

		rc = sl_snap_get(r, hdr, 4);
		if (rc < 0)
			break;
		if (hdr[0] != SL_EVENT_DATA) {
			rc = control_event(r, hdr[0], rt, pool, emit, arg);
			continue;
		}
		rc = sl_snap_get(r, hdr + 1, 16);
		if (rc == 0 && (t == NULL || hdr[2] != t->size))
			rc = sl_snap_bad(r, "in-flight data of another element size");
		if (rc == 0)
			rc = data_view(r, hdr, &view, &mem);
		if (rc == 0)
			rc = data_out(r, &view, t, rt, pool, emit, arg, kept);
		free(mem);
	}
	return rc;
}
