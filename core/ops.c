/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops.c — what each operator does to a batch inside a fused task: map,
 * filter, flat_map, process (with side outputs), keyed reduce, union,
 * sink; and the collector that user functions emit through.
 *
 * Every function here runs on the worker thread that owns the subtask.
 * A data batch handed to sli_op_batch() is owned by the operator, which
 * forwards it (sli_push) or releases it exactly once.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_error.h>

#include "sli_cow.h"
#include "sli_exec.h"

/* ----------------------------------------------------------- collector */

/* Copy the element at @elem (strings in @src_arena) to the end of @dst. */
static int put_elem(struct sl_batch *dst, const void *elem, int64_t ts, const char *src_arena,
		    const struct sl_type *type)
{
	uint8_t *d = dst->data + (size_t)dst->n * dst->elem_size;

	memcpy(d, elem, dst->elem_size);
	if (src_arena != NULL) {
		for (uint32_t k = 0; k < type->nstr; k++) {
			struct sl_str in, out;
			int rc;

			memcpy(&in, (const uint8_t *)elem + type->str_off[k], sizeof(in));
			rc = sl_batch_add_str(dst, src_arena + in.off, in.len, &out);
			if (rc < 0)
				return rc;
			memcpy(d + type->str_off[k], &out, sizeof(out));
		}
	}
	dst->ts[dst->n] = ts;
	dst->key[dst->n] = 0;
	dst->n++;
	return 0;
}

static struct sl_batch *cur_batch(struct sl_collector *c, unsigned port)
{
	struct sli_opi *op = c->op;

	if (c->cur[port] == NULL) {
		c->cur[port] = sli_pool_get(sli_pool(op), op->port_type[port]->size);
		if (c->cur[port] != NULL)
			op->st->dirty = true;
	}
	return c->cur[port];
}

static int push_cur(struct sl_collector *c, unsigned port)
{
	struct sl_batch *b = c->cur[port];

	c->cur[port] = NULL;
	return b ? sli_push(c->op, port, b) : 0;
}

static int emit_port(struct sl_collector *c, unsigned port, const void *elem, int64_t ts,
		     const struct sl_batch *src)
{
	struct sli_opi *op = c->op;
	const struct sl_type *type;
	struct sl_batch *b;
	int rc;

	if (port >= SLI_MAX_PORTS || op->port_type[port] == NULL) {
		sli_fail(op, -EINVAL, "emitted to side output %u, which was not declared",
			 port - 1);
		return -EINVAL;
	}
	type = op->port_type[port];
	if (c->stamped)
		ts = c->stamp;
	b = cur_batch(c, port);
	if (b == NULL)
		goto nomem;
	rc = put_elem(b, elem, ts, src && type->nstr ? src->arena : NULL, type);
	if (rc == -E2BIG && b->n > 0) {
		/* The arena is full: send what we have, retry in a fresh batch. */
		rc = push_cur(c, port);
		if (rc < 0)
			return rc;
		b = cur_batch(c, port);
		if (b == NULL)
			goto nomem;
		rc = put_elem(b, elem, ts, src->arena, type);
	}
	if (rc == -E2BIG) {
		sli_fail(op, -E2BIG, "a record's strings exceed max-record-size (%u bytes)",
			 op->info.max_record_size);
		return rc;
	}
	if (rc < 0)
		goto nomem;
	if (b->n == b->cap)
		return push_cur(c, port);
	return 0;
nomem:
	sli_fail(op, -ENOMEM, "out of memory for an output batch");
	return -ENOMEM;
}

int sl_emit(struct sl_collector *c, const void *elem, int64_t ts, const struct sl_batch *src)
{
	if (c == NULL || elem == NULL)
		return -EINVAL;
	return emit_port(c, 0, elem, ts, src);
}

int sl_emit_side(struct sl_collector *c, unsigned tag, const void *elem, int64_t ts,
		 const struct sl_batch *src)
{
	if (c == NULL || elem == NULL)
		return -EINVAL;
	return emit_port(c, tag + 1, elem, ts, src);
}

int sl_collector_str(struct sl_collector *c, const void *bytes, uint32_t len, struct sl_str *out)
{
	struct sl_batch *b;
	int rc;

	if (c == NULL || out == NULL || (bytes == NULL && len))
		return -EINVAL;
	b = cur_batch(c, 0);
	if (b == NULL)
		return -ENOMEM;
	rc = sl_batch_add_str(b, bytes, len, out);
	if (rc == -E2BIG && b->n > 0) {
		rc = push_cur(c, 0);
		if (rc < 0)
			return rc;
		b = cur_batch(c, 0);
		if (b == NULL)
			return -ENOMEM;
		rc = sl_batch_add_str(b, bytes, len, out);
	}
	return rc;
}

int sli_op_flush(struct sli_opi *op)
{
	for (unsigned p = 0; p < SLI_MAX_PORTS; p++) {
		int rc = push_cur(&op->coll, p);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---------------------------------------------------------- reduce table */

/*
 * Keyed accumulators of one reduce subtask: open addressing with linear
 * probing over (hash, entry) slots; entries hold the accumulator element,
 * its latest timestamp and a copy of the key bytes. The accumulator's
 * strings and the keys live in one growing arena, presented to the
 * collector as the arena of a pseudo batch.
 *
 * While an asynchronous snapshot is pending (cow, sli_cow.h), the four
 * arrays it reads are copy-on-write: an accumulator or a timestamp below
 * the length at the barrier is written only after sli_cow_w(); key
 * records and arena bytes are only ever appended (an entry's key and an
 * accumulator's strings never change), so they need no guard; and an
 * array that grows moves to a new block, the old one left to the image
 * (rtab_grow_entries(), arena_reserve()). The hash slots are not in the
 * image: they change freely.
 */
enum { RA_ACC, RA_TS, RA_KEY, RA_ARENA, RA_N };

struct sli_rtab {
	uint64_t *hash;	 /* [cap] */
	uint32_t *slot;	 /* [cap] entry + 1, 0 = empty */
	uint32_t cap, n; /* slots, entries */
	uint8_t *acc;	 /* [n * elem_size] */
	int64_t *ts;
	struct sl_str *key;
	uint32_t nalloc;
	struct sl_batch arena;	 /* only arena, arena_used, arena_cap, arena_max, alloc used */
	struct sli_img *frozen;	 /* the last snapshot image (sli_reduce_freeze()) */
	struct sli_cow_task cow; /* the image still reading the arrays, if any */
};

static void rtab_free(struct sli_rtab *t)
{
	if (t == NULL)
		return;
	sli_cow_finish(&t->cow); /* a checkpoint may still read our arrays */
	free(t->hash);
	free(t->slot);
	free(t->acc);
	free(t->ts);
	free(t->key);
	sl_alloc_free(t->arena.alloc, t->arena.arena);
	sli_img_put(t->frozen); /* a checkpoint still holding it frees it */
	free(t);
}

static struct sli_rtab *rtab_new(void)
{
	struct sli_rtab *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->cap = 1024;
	t->hash = calloc(t->cap, sizeof(*t->hash));
	t->slot = calloc(t->cap, sizeof(*t->slot));
	t->arena.alloc = sl_alloc_default();
	t->arena.arena_max = UINT32_MAX;
	if (t->hash == NULL || t->slot == NULL) {
		rtab_free(t);
		return NULL;
	}
	return t;
}

static int rtab_grow_slots(struct sli_rtab *t)
{
	uint32_t ncap = t->cap * 2;
	uint64_t *nh = calloc(ncap, sizeof(*nh));
	uint32_t *ns = calloc(ncap, sizeof(*ns));

	if (nh == NULL || ns == NULL) {
		free(nh);
		free(ns);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < t->cap; i++) {
		uint32_t j;

		if (t->slot[i] == 0)
			continue;
		for (j = (uint32_t)t->hash[i] & (ncap - 1); ns[j] != 0; j = (j + 1) & (ncap - 1))
			;
		nh[j] = t->hash[i];
		ns[j] = t->slot[i];
	}
	free(t->hash);
	free(t->slot);
	t->hash = nh;
	t->slot = ns;
	t->cap = ncap;
	return 0;
}

static int rtab_grow_entries(struct sli_rtab *t, uint32_t elem_size)
{
	uint32_t nn = t->nalloc ? t->nalloc * 2 : 256;
	void *a =
	    sli_cow_grow(&t->cow, RA_ACC, t->acc, (size_t)t->n * elem_size, (size_t)nn * elem_size);

	if (a == NULL)
		return -ENOMEM;
	t->acc = a;
	a = sli_cow_grow(&t->cow, RA_TS, t->ts, (size_t)t->n * sizeof(*t->ts),
			 (size_t)nn * sizeof(*t->ts));
	if (a == NULL)
		return -ENOMEM;
	t->ts = a;
	a = sli_cow_grow(&t->cow, RA_KEY, t->key, (size_t)t->n * sizeof(*t->key),
			 (size_t)nn * sizeof(*t->key));
	if (a == NULL)
		return -ENOMEM;
	t->key = a;
	t->nalloc = nn;
	return 0;
}

/*
 * Make room for @more bytes in the arena. While a pending image reads the
 * arena, growing it moves the bytes to a new block of the same allocator
 * and leaves the old one to the image (sl_batch_add_str() would free it);
 * else sl_batch_add_str() grows it as it goes.
 */
static int arena_reserve(struct sli_rtab *t, uint64_t more)
{
	struct sl_batch *b = &t->arena;
	uint64_t need = (uint64_t)b->arena_used + more, cap = b->arena_cap ? b->arena_cap : 4096;
	char *na;

	if (need <= b->arena_cap || !sli_cow_live(&t->cow, RA_ARENA))
		return 0;
	if (need > b->arena_max)
		return -E2BIG;
	while (cap < need)
		cap *= 2;
	if (cap > b->arena_max)
		cap = b->arena_max;
	na = sl_alloc_aligned(b->alloc, (size_t)cap, 16);
	if (na == NULL)
		return -ENOMEM;
	memcpy(na, b->arena, b->arena_used);
	sli_cow_retire(&t->cow, RA_ARENA, b->arena);
	b->arena = na;
	b->arena_cap = (uint32_t)cap;
	return 0;
}

/*
 * The slot of key (@h, @k, @len): with *@e its entry, or the empty slot
 * where it goes with *@e = -1.
 */
static uint32_t rtab_slot(const struct sli_rtab *t, uint64_t h, const void *k, uint32_t len,
			  long *e)
{
	uint32_t j;

	for (j = (uint32_t)h & (t->cap - 1); t->slot[j] != 0; j = (j + 1) & (t->cap - 1)) {
		uint32_t x = t->slot[j] - 1;

		if (t->hash[j] == h && t->key[x].len == len &&
		    memcmp(t->arena.arena + t->key[x].off, k, len) == 0) {
			*e = x;
			return j;
		}
	}
	*e = -1;
	return j;
}

/*
 * Add an entry at empty slot @j for key @k (hash @h): a copy of @elem
 * whose strings are @str[] (copied into the table's arena), time @ts.
 * Return its index, or -errno.
 */
static long rtab_add(struct sli_rtab *t, const struct sl_type *type, uint32_t j, uint64_t h,
		     const struct sl_key *k, const void *elem, const struct sl_key *str, int64_t ts)
{
	uint64_t bytes = k->len;
	uint8_t *acc;
	int rc;

	if (t->n == t->nalloc && rtab_grow_entries(t, type->size) < 0)
		return -ENOMEM;
	for (uint32_t s = 0; s < type->nstr; s++)
		bytes += str[s].len;
	rc = arena_reserve(t, bytes);
	if (rc < 0)
		return rc;
	/* Entry t->n is past every image's arrays: no guard. */
	acc = t->acc + (size_t)t->n * type->size;
	memcpy(acc, elem, type->size);
	for (uint32_t s = 0; s < type->nstr; s++) {
		struct sl_str out;

		rc = sl_batch_add_str(&t->arena, str[s].ptr, str[s].len, &out);
		if (rc < 0)
			return rc;
		memcpy(acc + type->str_off[s], &out, sizeof(out));
	}
	rc = sl_batch_add_str(&t->arena, k->ptr, k->len, &t->key[t->n]);
	if (rc < 0)
		return rc;
	t->hash[j] = h;
	t->slot[j] = t->n + 1;
	t->ts[t->n] = ts;
	t->n++;
	if (t->n * 4 > t->cap * 3 && rtab_grow_slots(t) < 0)
		return -ENOMEM;
	return t->n - 1;
}

/* Find or insert the entry of element @i of @b. Return its index, or -errno. */
static long rtab_find(struct sli_rtab *t, struct sli_opi *op, const struct sl_batch *b, uint32_t i,
		      bool *inserted)
{
	const struct sl_type *type = &op->node->type;
	const void *elem = sl_batch_elem(b, i);
	struct sl_key k, str[SL_TYPE_MAX_STR];
	uint64_t h;
	uint32_t j;
	long e;

	sli_key_get(&op->key, elem, b, &k);
	h = (b->flags & SL_BATCH_F_KEYED) ? b->key[i] : sli_hash64(k.ptr, k.len, 0);
	j = rtab_slot(t, h, k.ptr, k.len, &e);
	*inserted = e < 0;
	if (e >= 0)
		return e;
	/* New key: copy the element, its strings and its key into the table. */
	for (uint32_t s = 0; s < type->nstr; s++) {
		struct sl_str in;

		memcpy(&in, (const uint8_t *)elem + type->str_off[s], sizeof(in));
		str[s] = (struct sl_key){ b->arena + in.off, in.len };
	}
	return rtab_add(t, type, j, h, &k, elem, str, b->ts[i]);
}

static int reduce_batch(struct sli_opi *op, struct sl_batch *b)
{
	const struct sl_type *type = &op->node->type;
	struct sli_rtab *t = op->rtab;
	sl_reduce_fn fn = op->node->fn.reduce;
	struct sl_str saved[SL_TYPE_MAX_STR];
	int rc = 0;

	sli_cow_poll(&t->cow); /* the image copied or dropped: stop guarding */
	for (uint32_t i = 0; i < b->n; i++) {
		bool inserted;
		long e = rtab_find(t, op, b, i, &inserted);
		uint8_t *acc;

		if (e < 0) {
			sli_fail(op, (int)e, "cannot store the accumulator of a new key: %s",
				 sl_strerror((int)e));
			rc = (int)e;
			break;
		}
		acc = t->acc + (size_t)e * type->size;
		if (!inserted) {
			sli_cow_w(&t->cow, RA_ACC, (size_t)e); /* a pending image may read it */
			/* The accumulator keeps its own strings (see sl_reduce_fn). */
			for (uint32_t s = 0; s < type->nstr; s++)
				memcpy(&saved[s], acc + type->str_off[s], sizeof(saved[s]));
			rc = fn(acc, sl_batch_elem(b, i), op->node->arg);
			for (uint32_t s = 0; s < type->nstr; s++)
				memcpy(acc + type->str_off[s], &saved[s], sizeof(saved[s]));
			if (rc < 0) {
				sli_fail(op, rc, "the reduce function failed: %s", sl_strerror(rc));
				break;
			}
			if (b->ts[i] > t->ts[e]) {
				sli_cow_w(&t->cow, RA_TS, (size_t)e);
				t->ts[e] = b->ts[i];
			}
		}
		if (op->node->reduce_mode == SL_REDUCE_ROLLING) {
			rc = emit_port(&op->coll, 0, acc, b->ts[i], &t->arena);
			if (rc < 0)
				break;
		}
	}
	sli_release(op, b);
	return rc;
}

static int reduce_end(struct sli_opi *op)
{
	struct sli_rtab *t = op->rtab;
	const struct sl_type *type = &op->node->type;

	if (op->node->reduce_mode != SL_REDUCE_FINAL)
		return 0;
	for (uint32_t e = 0; e < t->n; e++) {
		int rc =
		    emit_port(&op->coll, 0, t->acc + (size_t)e * type->size, t->ts[e], &t->arena);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * Checkpoints: one operator section {format, element size, strings},
 * then per key group, per key: key bytes, timestamp, the accumulator's
 * bytes and its strings' contents (the accumulator's string fields are
 * rewritten on restore).
 */
#define RSNAP_FORMAT 1u

/* What a snapshot reads: the live table's arrays, or an image's copies of them. */
struct rview {
	const uint8_t *acc;
	const int64_t *ts;
	const struct sl_str *key;
	const char *arena;
	uint32_t n, maxp;
	struct sl_type type;
};

static int reduce_serialize(const struct rview *v, struct sl_snap_writer *w)
{
	const struct sl_type *type = &v->type;
	uint32_t hdr[3] = { RSNAP_FORMAT, type->size, type->nstr };
	int rc = sl_snap_put(w, hdr, sizeof(hdr));

	for (uint32_t e = 0; e < v->n && rc == 0; e++) {
		const uint8_t *acc = v->acc + (size_t)e * type->size;
		const char *kb = v->arena + v->key[e].off;

		rc = sl_snap_section(w, sli_key_group(sli_hash64(kb, v->key[e].len, 0), v->maxp));
		if (rc == 0)
			rc = sl_snap_put_bytes(w, kb, v->key[e].len);
		if (rc == 0)
			rc = sl_snap_put_i64(w, v->ts[e]);
		if (rc == 0)
			rc = sl_snap_put_bytes(w, acc, type->size);
		for (uint32_t s = 0; s < type->nstr && rc == 0; s++) {
			struct sl_str str;

			memcpy(&str, acc + type->str_off[s], sizeof(str));
			rc = sl_snap_put_bytes(w, v->arena + str.off, str.len);
		}
	}
	return rc;
}

int sli_reduce_snapshot(struct sli_opi *op, struct sl_snap_writer *w)
{
	const struct sli_rtab *t = op->rtab;
	struct rview v = { t->acc,	   t->ts, t->key,
			   t->arena.arena, t->n,  op->info.max_parallelism,
			   op->node->type };

	return reduce_serialize(&v, w);
}

/*
 * Asynchronous snapshots: the table's entry arrays and its arena are flat
 * (the accumulators, their timestamps, the keys' {offset, length}, the
 * bytes of keys and strings), so the image is a segmented copy-on-write
 * of those four arrays (sli_cow.h): the barrier only records them, the
 * coordinator copies them (the task copies a segment itself before its
 * first write into one not copied yet) and serialises the copies with
 * reduce_serialize() (hashing each key for its key group: most of the
 * serialisation's cost). The hash slots are not copied (the snapshot does
 * not read them). The image's buffers are refilled at the next barrier
 * unless a checkpoint still holds it (sli_img_reuse()).
 */
struct rimg {
	struct sli_img h;
	struct sli_cow cow;
	struct rview v;
};

static void rimg_destroy(struct sli_img *m)
{
	struct rimg *f = (struct rimg *)m;

	sli_cow_fini(&f->cow);
	free(f);
}

static int rimg_write(const void *img, struct sl_snap_writer *w)
{
	/* The image is shared with its task: copying claims its segments. */
	struct rimg *f = (struct rimg *)img;
	int rc = sl_snap_section(w, SL_SNAP_OP);

	sli_cow_test_delay();
	sli_cow_copy_all(&f->cow);
	return rc < 0 ? rc : reduce_serialize(&f->v, w);
}

static const struct sli_ckpt_image_ops rimg_ops = { rimg_write, sli_img_put };

int sli_reduce_freeze(struct sli_opi *op, struct sli_ckpt_image *out)
{
	struct sli_rtab *t = op->rtab;
	const struct sl_type *type = &op->node->type;
	struct rimg *f;
	int rc;

	sli_cow_finish(&t->cow); /* a checkpoint still holds the last image: finish its copy */
	f = sli_img_reuse(&t->frozen, sizeof(*f), rimg_destroy);
	if (f == NULL)
		return -ENOMEM;
	rc = sli_cow_arr_set(&f->cow, RA_ACC, t->acc, t->n, type->size, NULL);
	if (rc == 0)
		rc = sli_cow_arr_set(&f->cow, RA_TS, t->ts, t->n, sizeof(*t->ts), NULL);
	if (rc == 0)
		rc = sli_cow_arr_set(&f->cow, RA_KEY, t->key, t->n, sizeof(*t->key), NULL);
	if (rc == 0)
		rc = sli_cow_arr_set(&f->cow, RA_ARENA, t->arena.arena, t->arena.arena_used, 1,
				     t->arena.alloc);
	if (rc < 0)
		return rc; /* the image stays the operator's, to be refilled */
	f->v = (struct rview){ f->cow.a[RA_ACC].copy,
			       (const int64_t *)f->cow.a[RA_TS].copy,
			       (const struct sl_str *)f->cow.a[RA_KEY].copy,
			       (const char *)f->cow.a[RA_ARENA].copy,
			       t->n,
			       op->info.max_parallelism,
			       *type };
	sli_cow_arm(&t->cow, &f->cow, RA_N, &f->h.refs, &op->st->w->x->job->ckpt_counters);
	sli_img_hand(&f->h);
	*out = (struct sli_ckpt_image){ &rimg_ops, f };
	return 0;
}

int sli_reduce_restore(struct sli_opi *op, struct sl_snap_reader *r)
{
	const struct sl_type *type = &op->node->type;
	struct sli_rtab *t = op->rtab;
	struct sl_key k, str[SL_TYPE_MAX_STR];
	uint32_t sec, hdr[3], n;
	const void *elem;
	int64_t ts;
	int rc;

	while ((rc = sl_snap_next(r, &sec)) == 1) {
		if (sec == SL_SNAP_OP) {
			rc = sl_snap_get(r, hdr, sizeof(hdr));
			if (rc == 0 && (hdr[0] != RSNAP_FORMAT || hdr[1] != type->size ||
					hdr[2] != type->nstr))
				rc = sl_snap_bad(r,
						 "reduce state of another format or element type");
			if (rc < 0)
				return rc;
			continue;
		}
		while (sl_snap_left(r) > 0) {
			rc = sl_snap_get_bytes(r, &k.ptr, &k.len);
			if (rc == 0)
				rc = sl_snap_get_i64(r, &ts);
			if (rc == 0)
				rc = sl_snap_get_bytes(r, &elem, &n);
			for (uint32_t s = 0; s < type->nstr && rc == 0; s++)
				rc = sl_snap_get_bytes(r, &str[s].ptr, &str[s].len);
			if (rc < 0)
				return rc;
			if (n != type->size)
				return sl_snap_bad(r, "reduce accumulator of another size");
			uint64_t h = sli_hash64(k.ptr, k.len, 0);
			long e;
			uint32_t j = rtab_slot(t, h, k.ptr, k.len, &e);

			if (e >= 0 || sli_key_group(h, op->info.max_parallelism) != sec)
				return sl_snap_bad(r,
						   "a reduce key twice, or in another key group");
			e = rtab_add(t, type, j, h, &k, elem, str, ts);
			if (e < 0)
				return (int)e;
		}
	}
	return rc;
}

/* ------------------------------------------------------------ operators */

/*
 * After an operator worked on @b in place: fail with @rc < 0 (naming the
 * @what function), drop an emptied batch, or push it on.
 */
static int pass_on(struct sli_opi *op, struct sl_batch *b, int rc, const char *what)
{
	if (rc < 0) {
		sli_fail(op, rc, "the %s function failed: %s", what, sl_strerror(rc));
		sli_release(op, b);
		return rc;
	}
	if (b->n == 0) {
		sli_release(op, b);
		return 0;
	}
	return sli_push(op, 0, b);
}

/*
 * Object reuse: the map writes over its input batch (exclusively ours:
 * fan-out copies batches). The input's strings and ts[] stay; key hashes
 * do not survive a map.
 */
static int map_in_place(struct sli_opi *op, struct sl_batch *b)
{
	uint32_t n = b->n;
	int rc = 0;

	sli_batch_unborrow(b); /* the output goes over the input */
	b->flags &= ~SL_BATCH_F_KEYED;
	if (op->node->kind == SLI_MAP_BATCH) {
		rc = op->node->fn.map_batch(b, b, op->node->arg);
		if (rc >= 0 && b->n > b->cap)
			rc = -EOVERFLOW;
	} else {
		sl_map_fn fn = op->node->fn.map;
		void *arg = op->node->arg;
		uint8_t *e = b->data;

		for (uint32_t i = 0; i < n; i++, e += b->elem_size) {
			rc = fn(e, e, arg);
			if (sl_unlikely(rc < 0))
				break;
		}
	}
	return pass_on(op, b, rc, "map");
}

static int map_batch(struct sli_opi *op, struct sl_batch *in)
{
	const struct sl_type *type = &op->node->type;
	struct sl_batch *out;
	int rc = 0;

	if (op->in_place)
		return map_in_place(op, in);
	out = sli_pool_get(sli_pool(op), type->size);

	if (out == NULL) {
		sli_release(op, in);
		sli_fail(op, -ENOMEM, "out of memory for an output batch");
		return -ENOMEM;
	}
	if (op->node->kind == SLI_MAP_BATCH) {
		rc = op->node->fn.map_batch(in, out, op->node->arg);
		if (rc < 0)
			sli_fail(op, rc, "the map function failed: %s", sl_strerror(rc));
		else if (out->n > out->cap)
			rc = -EOVERFLOW, sli_fail(op, rc, "the map function set n beyond capacity");
	} else {
		sl_map_fn fn = op->node->fn.map;
		void *arg = op->node->arg;
		const uint8_t *src = in->data;
		uint8_t *dst = out->data;

		for (uint32_t i = 0; i < in->n; i++) {
			rc = fn(src, dst, arg);
			if (sl_unlikely(rc < 0)) {
				sli_fail(op, rc, "the map function failed: %s", sl_strerror(rc));
				break;
			}
			src += in->elem_size;
			dst += out->elem_size;
		}
		memcpy(out->ts, in->ts, in->n * sizeof(int64_t));
		out->n = in->n;
		/* Per-element maps point output strings into the input's arena. */
		if (rc == 0 && type->nstr && in->arena_used) {
			struct sl_str whole;

			rc = sl_batch_add_str(out, in->arena, in->arena_used, &whole);
			if (rc < 0)
				sli_fail(op, rc, "copying strings: %s", sl_strerror(rc));
		}
	}
	sli_release(op, in);
	if (rc < 0) {
		sli_release(op, out);
		return rc;
	}
	if (out->n == 0) {
		sli_release(op, out);
		return 0;
	}
	return sli_push(op, 0, out);
}

static int filter_batch(struct sli_opi *op, struct sl_batch *b)
{
	int rc = 0;

	if (op->node->kind == SLI_FILTER_BATCH) {
		uint32_t before = b->n;

		sli_batch_unborrow(b); /* the function may compact b in place */
		rc = op->node->fn.filter_batch(b, op->node->arg);
		if (rc >= 0 && b->n > before)
			rc = -EOVERFLOW;
	} else {
		sl_filter_fn fn = op->node->fn.filter;
		void *arg = op->node->arg;
		uint32_t size = b->elem_size, j = 0;

		for (uint32_t i = 0; i < b->n; i++) {
			int keep = fn(b->data + (size_t)i * size, arg);

			if (sl_unlikely(keep < 0)) {
				rc = keep;
				break;
			}
			if (keep) {
				if (i != j) {
					/* The first move of a borrowed batch copies it (rarely: a
					 * filter that keeps everything leaves it borrowed). */
					sli_batch_unborrow(b);
					memcpy(b->data + (size_t)j * size,
					       b->data + (size_t)i * size, size);
					b->ts[j] = b->ts[i];
					b->key[j] = b->key[i];
				}
				j++;
			}
		}
		b->n = j;
	}
	return pass_on(op, b, rc, "filter");
}

static int each_element(struct sli_opi *op, struct sl_batch *b)
{
	void *arg = op->node->arg;
	int rc = 0;

	for (uint32_t i = 0; i < b->n && rc >= 0; i++) {
		const void *e = sl_batch_elem(b, i);

		if (op->node->kind == SLI_FLAT_MAP)
			rc = op->node->fn.flat_map(e, b->ts[i], b, &op->coll, arg);
		else
			rc = op->node->fn.process(&op->info, e, b->ts[i], b, &op->coll, arg);
	}
	if (rc < 0 && !atomic_load_explicit(&op->st->w->x->failed, memory_order_relaxed))
		sli_fail(op, rc, "the %s function failed: %s", sli_kind_name(op->node->kind),
			 sl_strerror(rc));
	sli_release(op, b);
	return rc < 0 ? rc : 0;
}

static int sink_batch(struct sli_opi *op, struct sl_batch *b)
{
	int rc = op->node->fn.sink->write(op->state, b);

	if (rc < 0)
		sli_fail(op, rc, "%s", op->errbuf[0] ? op->errbuf : sl_strerror(rc));
	else
		atomic_store_explicit(
		    &op->st->w->records_sink,
		    atomic_load_explicit(&op->st->w->records_sink, memory_order_relaxed) + b->n,
		    memory_order_relaxed);
	SLI_BUMP(op->st->stats.records_out, b->n);
	sli_release(op, b);
	return rc < 0 ? rc : 0;
}

/*
 * Operators that only read a batch's elements during the call, so a
 * borrowed batch reaches them as it is (sl_batch.h): maps into a new
 * batch (const input), filters (they copy before their first move),
 * flat maps and process functions (const elements), built-in windows
 * (they fold elements into their state) and sinks (const batch). The
 * others copy a borrowed batch first: they write elements in place or
 * may keep pointers to them (reduce, keyed process, general windows).
 */
static bool reads_only(const struct sli_opi *op)
{
	switch (op->node->kind) {
	case SLI_MAP:
	case SLI_MAP_BATCH:
		return !op->in_place;
	case SLI_FILTER:
	case SLI_FLAT_MAP:
	case SLI_PROCESS:
	case SLI_WINDOW:
	case SLI_SINK:
		return true;
	default:
		return false;
	}
}

int sli_op_batch(struct sli_opi *op, struct sl_batch *b)
{
	if (sl_unlikely(b->flags & SL_BATCH_F_BORROWED) && !reads_only(op))
		sli_batch_unborrow(b);
	switch (op->node->kind) {
	case SLI_MAP:
	case SLI_MAP_BATCH:
		return map_batch(op, b);
	case SLI_FILTER:
	case SLI_FILTER_BATCH:
		return filter_batch(op, b);
	case SLI_FLAT_MAP:
	case SLI_PROCESS:
		return each_element(op, b);
	case SLI_REDUCE:
		return reduce_batch(op, b);
	case SLI_WINDOW:
		return sli_win_batch(op, b);
	case SLI_WINDOW_GEN:
		return sli_wgen_batch(op, b);
	case SLI_KEYED_PROCESS:
		return sli_keyed_batch(op, b);
	case SLI_SINK:
		return sink_batch(op, b);
	case SLI_SOURCE: /* sources start chains; they never receive batches */
	case SLI_UNION:
	default:
		return sli_push(op, 0, b);
	}
}

int sli_op_batch2(struct sli_opi *op, unsigned input, struct sl_batch *b)
{
	if (op->node->kind == SLI_WINDOW_JOIN || op->node->kind == SLI_INTERVAL_JOIN)
		return sli_join_batch(op, input, b);
	return sli_op_batch(op, b);
}

int sli_op_watermark(struct sli_opi *op, int64_t wm)
{
	int rc = 0;

	if (wm <= op->watermark || op->finished)
		return 0;
	op->watermark = wm;
	if (op->node->kind == SLI_WINDOW)
		rc = sli_win_watermark(op, wm);
	else if (op->node->kind == SLI_WINDOW_JOIN || op->node->kind == SLI_INTERVAL_JOIN)
		rc = sli_join_watermark(op, wm);
	else if (op->node->kind == SLI_KEYED_PROCESS)
		rc = sli_keyed_watermark(op, wm);
	else if (op->node->kind == SLI_WINDOW_GEN)
		rc = sli_wgen_watermark(op, wm);
	if (rc == 0)
		rc = sli_op_flush(op);
	return rc;
}

int sli_op_proc_time(struct sli_opi *op, int64_t now_ms)
{
	int rc;

	if (op->finished || !op->opened) {
		op->next_proc_timer = INT64_MAX; /* dropped at end of input (Flink 1.18) */
		return 0;
	}
	switch (op->node->kind) {
	case SLI_KEYED_PROCESS:
		rc = sli_keyed_proc_time(op, now_ms);
		break;
	case SLI_WINDOW_GEN:
		rc = sli_wgen_proc_time(op, now_ms);
		break;
	default: /* no processing-time timers */
		op->next_proc_timer = INT64_MAX;
		return 0;
	}
	if (rc == 0)
		rc = sli_op_flush(op);
	return rc;
}

int sli_op_open(struct sli_opi *op)
{
	int rc = 0;

	op->errbuf[0] = '\0';
	switch (op->node->kind) {
	case SLI_SOURCE:
		rc = op->node->fn.source->open(op->node->arg, &op->info, &op->state);
		break;
	case SLI_SINK:
		rc = op->node->fn.sink->open(op->node->arg, &op->info, &op->state);
		break;
	case SLI_REDUCE:
		op->rtab = rtab_new();
		rc = op->rtab ? 0 : -ENOMEM;
		break;
	case SLI_WINDOW:
		op->win = sli_win_new(op);
		rc = op->win ? 0 : -ENOMEM;
		break;
	case SLI_WINDOW_GEN:
		op->wgen = sli_wgen_new(op);
		rc = op->wgen ? 0 : -ENOMEM;
		break;
	case SLI_WINDOW_JOIN:
	case SLI_INTERVAL_JOIN:
		op->join = sli_join_new(op);
		rc = op->join ? 0 : -ENOMEM;
		break;
	case SLI_KEYED_PROCESS:
		rc = sli_keyed_open(op);
		if (rc < 0)
			sli_keyed_close(op);
		break;
	default:
		break;
	}
	if (rc < 0) {
		sli_fail(op, rc, "cannot open: %s", op->errbuf[0] ? op->errbuf : sl_strerror(rc));
		return rc;
	}
	op->opened = true;
	return 0;
}

int sli_op_end(struct sli_opi *op)
{
	int rc = 0;

	if (op->finished)
		return 0;
	op->finished = true;
	if (op->node->kind == SLI_REDUCE)
		rc = reduce_end(op);
	if (rc == 0)
		rc = sli_op_flush(op);
	if (rc == 0 && op->node->kind == SLI_SINK && op->node->fn.sink->finish != NULL) {
		rc = op->node->fn.sink->finish(op->state);
		if (rc < 0)
			sli_fail(op, rc, "%s", op->errbuf[0] ? op->errbuf : sl_strerror(rc));
	}
	return rc;
}

void sli_op_close(struct sli_opi *op)
{
	for (unsigned p = 0; p < SLI_MAX_PORTS; p++) {
		if (op->coll.cur[p] != NULL) {
			sli_release(op, op->coll.cur[p]);
			op->coll.cur[p] = NULL;
		}
	}
	if (!op->opened)
		return;
	op->opened = false;
	if (op->node->kind == SLI_SOURCE)
		op->node->fn.source->close(op->state);
	else if (op->node->kind == SLI_SINK)
		op->node->fn.sink->close(op->state);
	rtab_free(op->rtab);
	op->rtab = NULL;
	sli_win_free(op->win);
	op->win = NULL;
	sli_wgen_free(op->wgen);
	op->wgen = NULL;
	sli_join_free(op->join);
	op->join = NULL;
	sli_keyed_close(op);
}
