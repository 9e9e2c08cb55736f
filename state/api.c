/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api.c — the keyed-state API of sl_state.h on top of the per-task table
 * (sli_state.h): declaring state, and value, list, map, reducing and
 * aggregating state of the current key and namespace, with TTL.
 *
 * Layering: sl_state_declare() checks the descriptor and hands a copy to
 * core (sli_state_attach()) together with this file's backend vtable;
 * core's keyed operators open an instance per subtask through it and
 * pass a struct sl_ctx (core/sli_exec.h) to every access, from which we
 * read the current key (bytes and hash), namespace and our instance.
 *
 * Entries: one table entry per (state, key, namespace), whatever the
 * kind. A value is its bytes; reducing and aggregating states hold the
 * value or accumulator; a list or a map is one entry holding all its
 * items, each an 8-aligned record with its own expiry (Flink's TTL is
 * per list element and per map entry):
 *   list item  { u32 len, u32 0, i64 expiry } bytes, padded to 8
 *   map item   { u32 klen, u32 vlen, i64 expiry } key (padded) value (padded)
 * with map items sorted by key bytes. Adding to a list or putting into a
 * map rewrites the entry (O(its size)), dropping expired items; the
 * entry's own expiry is the latest of its items', so the table expires
 * and cleans it once all items expired.
 *
 * TTL clocks: the table's TTL cleanup compares all expiries of a table
 * with one clock, so states with an event-time TTL live in a second
 * table; states without TTL (expiry SLI_TTL_NONE, read at INT64_MIN so
 * nothing is ever expired) share the first with processing-time ones.
 * The keyed operator calls maintain() after every batch and watermark:
 * one sli_table_ttl_cleanup() slice of a bounded budget per table that
 * has TTL states.
 *
 * Spilling: with the job's state-memory option, open gives the tables a
 * budget (sli_table_set_spill(); half each when there are two) and a
 * directory each, STATE-DIR/OPERATOR-SUBTASK and ...-event, removed at
 * close with the default STATE-DIR when it is empty. Every entry here is
 * namespace-free (keyed process functions have no namespace), so all
 * kinds can move to disk; a list or map whose record outgrows 256 KiB
 * stays in memory. A read of a spilled entry that fails is an error of
 * the call, never an absent value.
 *
 * Threads: an instance belongs to one operator subtask, on its worker.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sluice/sl_error.h>
#include <sluice/sl_snap.h>
#include <sluice/sl_state.h>

#include "sli_exec.h"
#include "sli_state.h"
#include "sli_state_api.h"

#define IHDR 16 /* item header of lists and maps */

/* struct sli_state_opts.io is enum sli_io_kind without core knowing state/. */
_Static_assert(SLI_IO_AUTO == 0 && SLI_IO_URING == 1 && SLI_IO_POSIX == 2, "state-io order");

struct sapi {
	const struct sl_subtask_info *info;
	const struct sl_state_desc *descs; /* the node's copies */
	unsigned n;
	struct sli_table *t[2]; /* [0] no TTL and processing-time TTL, [1] event-time TTL */
	bool proc_ttl;		/* some state has a processing-time TTL */
	bool spills;		/* the tables have a memory budget */
	char *dir[2];		/* spill directories of t[0], t[1] (removed at close) */
	char *root;		/* the default spill root (removed at close when empty) */
	uint8_t *buf;		/* scratch for rewritten values */
	size_t cap;
	unsigned kg_first, kg_last;
	uint64_t cow_reported[2]; /* tables' cow_bytes already reported by api_freeze() */
	struct sli_state_api_stats st;
};

/* What one access works on: the state, its table, entry key and clock. */
struct access {
	struct sapi *sa;
	const struct sl_state_desc *d;
	const char *fn; /* the API function, for messages */
	struct sli_table *t;
	struct sli_skey k;
	int64_t now;	/* entries with expiry <= now are expired */
	int64_t expiry; /* of what is written now */
	int64_t touch;	/* of what is read now (SLI_TTL_KEEP: unchanged) */
	bool rw;	/* TTL updated on read and write */
};

static const char *const kind_names[] = {
	[SL_STATE_VALUE] = "value",
	[SL_STATE_LIST] = "list",
	[SL_STATE_MAP] = "map",
	[SL_STATE_REDUCING] = "reducing",
	[SL_STATE_AGGREGATING] = "aggregating",
};

static inline uint64_t pad8(uint64_t x)
{
	return (x + 7) & ~(uint64_t)7;
}

/* now + ttl, short of INT64_MAX (which means "never"). */
static int64_t expiry_at(int64_t now, int64_t ttl)
{
	return now >= INT64_MAX - 1 - ttl ? INT64_MAX - 1 : now + ttl;
}

/* ----------------------------------------------------------- errors */

static int ctx_fail(const struct sl_ctx *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write a sentence to the subtask's errbuf (reported if the function returns @rc). */
static int ctx_fail(const struct sl_ctx *c, int rc, const char *fmt, ...)
{
	const struct sl_subtask_info *info = sl_ctx_info(c);
	va_list ap;

	if (info == NULL || info->errbuf == NULL || info->errlen == 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(info->errbuf, info->errlen, fmt, ap);
	va_end(ap);
	return rc;
}

static int fail(const struct sl_ctx *c, const struct access *a, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "FN: state 'S' of operator 'O': " then the rest, in the subtask's errbuf; return @rc. */
static int fail(const struct sl_ctx *c, const struct access *a, int rc, const char *fmt, ...)
{
	const struct sl_subtask_info *info = sl_ctx_info(c);
	va_list ap;
	int n;

	if (info == NULL || info->errbuf == NULL || info->errlen == 0)
		return rc;
	n = snprintf(info->errbuf, info->errlen, "%s: state '%s' of operator '%s': ", a->fn,
		     a->d->name, a->sa->info->op_name);
	if (n < 0 || (size_t)n >= info->errlen)
		return rc;
	va_start(ap, fmt);
	vsnprintf(info->errbuf + n, info->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return rc;
}

/* A table error @rc on @a: a sentence, and @rc. */
static int table_fail(const struct sl_ctx *c, const struct access *a, int rc)
{
	char why[256];

	switch (rc) {
	case -E2BIG:
		return fail(c, a, rc, "the key or value is too large");
	case -ENOMEM:
		return fail(c, a, rc, "out of memory");
	case -EINVAL:
		return fail(c, a, rc,
			    "the key's group is not one of this subtask's (a key function that "
			    "is not pure?)");
	default:
		/* Spill I/O: the table says which file and offset. */
		if (a->sa->spills && sli_table_error(a->t, why, sizeof(why)) < 0 && why[0])
			return fail(c, a, rc, "spilled state: %s: %s", why, sl_strerror(rc));
		return fail(c, a, rc, "%s", sl_strerror(rc));
	}
}

/*
 * Check an access by @fn to state @id of kind @kind (-1: any) and fill
 * @a. Return 0 or -errno with a sentence.
 */
static int enter(struct sl_ctx *c, int id, int kind, const char *fn, struct access *a)
{
	const struct sl_state_desc *d;
	struct sapi *sa;

	if (c == NULL || sl_ctx_info(c) == NULL)
		return -EINVAL;
	if (!c->active)
		return ctx_fail(c, -EINVAL,
				"%s: the context of operator '%s' was used outside its element() "
				"or timer() call",
				fn, sl_ctx_info(c)->op_name);
	sa = c->state;
	if (sa == NULL)
		return ctx_fail(c, -ENOENT,
				"%s: operator '%s' declares no keyed state (see sl_state_declare)",
				fn, sl_ctx_info(c)->op_name);
	if (id < 0 || (unsigned)id >= sa->n)
		return ctx_fail(c, -ENOENT, "%s: operator '%s' has no state with id %d", fn,
				sa->info->op_name, id);
	d = &sa->descs[id];
	if (kind >= 0 && d->kind != (enum sl_state_kind)kind)
		return ctx_fail(c, -EINVAL,
				"%s: state '%s' of operator '%s' is a %s state, not a %s state", fn,
				d->name, sa->info->op_name, kind_names[d->kind], kind_names[kind]);
	a->sa = sa;
	a->d = d;
	a->fn = fn;
	a->k = (struct sli_skey){
		.hash = c->hash,
		.key = c->key.ptr,
		.ns = c->ns,
		.key_len = c->key.len,
		.ns_len = c->ns_len,
		.state_id = (uint16_t)id,
	};
	if (d->ttl.ttl_ms > 0) {
		bool ev = d->ttl.time == SL_TTL_EVENT_TIME;

		a->t = sa->t[ev];
		a->now = ev ? sl_ctx_current_watermark(c) : sl_ctx_current_processing_time(c);
		a->expiry = expiry_at(a->now, d->ttl.ttl_ms);
		a->rw = d->ttl.update == SL_TTL_ON_READ_AND_WRITE;
		a->touch = a->rw ? a->expiry : SLI_TTL_KEEP;
	} else {
		a->t = sa->t[0];
		a->now = INT64_MIN;
		a->expiry = SLI_TTL_NONE;
		a->rw = false;
		a->touch = SLI_TTL_KEEP;
	}
	return 0;
}

/* enter(), then fail with "NULL @what" when @p is NULL but @len is not 0. */
static int enter_arg(struct sl_ctx *c, int id, int kind, const char *fn, const void *p,
		     uint64_t len, const char *what, struct access *a)
{
	int rc = enter(c, id, kind, fn, a);

	if (rc == 0 && p == NULL && len > 0)
		return fail(c, a, -EINVAL, "NULL %s", what);
	return rc;
}

static int reserve(struct sl_ctx *c, struct access *a, uint64_t need)
{
	struct sapi *sa = a->sa;
	size_t ncap;
	uint8_t *nb;

	if (need > SL_STATE_VALUE_MAX)
		return fail(c, a, -E2BIG, "it would hold %llu bytes (max %u)",
			    (unsigned long long)need, SL_STATE_VALUE_MAX);
	if (need <= sa->cap)
		return 0;
	ncap = sa->cap ? sa->cap : 256;
	while (ncap < need)
		ncap *= 2;
	nb = realloc(sa->buf, ncap);
	if (nb == NULL)
		return fail(c, a, -ENOMEM, "out of memory");
	sa->buf = nb;
	sa->cap = ncap;
	return 0;
}

/*
 * The live value of @a's entry (*@v, *@len; @touch as for
 * sli_table_get()). Return 1; 0 when absent or expired (*@v NULL);
 * -errno with a sentence when its spilled record could not be read,
 * which is never taken for an absent value.
 */
static int get(struct sl_ctx *c, struct access *a, int64_t touch, const void **v, uint32_t *len)
{
	char why[256];
	uint32_t l = 0;
	int rc;

	if (a->sa->spills)
		sli_table_error(a->t, NULL, 0); /* a compaction's error, already retried */
	*v = sli_table_get(a->t, &a->k, a->now, touch, &l);
	*len = *v != NULL ? l : 0;
	if (*v != NULL || !a->sa->spills || (rc = sli_table_error(a->t, why, sizeof(why))) == 0)
		return *v != NULL;
	return fail(c, a, rc, "cannot read its spilled entry: %s", why);
}

static int put(struct sl_ctx *c, struct access *a, const void *v, uint32_t len, int64_t expiry)
{
	int rc = sli_table_put(a->t, &a->k, v, len, expiry);

	return rc < 0 ? table_fail(c, a, rc) : rc;
}

/* --------------------------------------------------------------- value */

int sl_value_get(struct sl_ctx *c, int id, const void **v, uint32_t *len)
{
	struct access a;
	const void *p;
	uint32_t l;
	int rc = enter(c, id, SL_STATE_VALUE, "sl_value_get", &a);

	if (rc < 0)
		return rc;
	rc = get(c, &a, a.touch, &p, &l);
	if (v != NULL)
		*v = p;
	if (len != NULL)
		*len = l;
	return rc;
}

int sl_value_put(struct sl_ctx *c, int id, const void *v, uint32_t len)
{
	struct access a;
	int rc = enter_arg(c, id, SL_STATE_VALUE, "sl_value_put", v, len, "value", &a);

	if (rc < 0)
		return rc;
	if (len > SL_STATE_VALUE_MAX)
		return fail(c, &a, -E2BIG, "a value of %u bytes (max %u)", len, SL_STATE_VALUE_MAX);
	rc = put(c, &a, v, len, a.expiry);
	return rc < 0 ? rc : 0;
}

/* ---------------------------------------------------- lists and maps */

struct item {
	uint32_t a, b; /* list: len, 0; map: klen, vlen */
	int64_t expiry;
};

static inline struct item item_at(const uint8_t *p)
{
	struct item it;

	memcpy(&it, p, sizeof(it));
	return it;
}

static inline uint64_t list_item_size(uint32_t len)
{
	return IHDR + pad8(len);
}

static inline uint64_t map_item_size(uint32_t klen, uint32_t vlen)
{
	return IHDR + pad8(klen) + pad8(vlen);
}

/* Append a list item to the scratch buffer at *@off (reserved). */
static void list_write(uint8_t *buf, uint64_t *off, const void *v, uint32_t len, int64_t expiry)
{
	struct item it = { len, 0, expiry };

	memcpy(buf + *off, &it, sizeof(it));
	if (len)
		memcpy(buf + *off + IHDR, v, len);
	memset(buf + *off + IHDR + len, 0, pad8(len) - len);
	*off += list_item_size(len);
}

static void map_write(uint8_t *buf, uint64_t *off, const void *k, uint32_t klen, const void *v,
		      uint32_t vlen, int64_t expiry)
{
	struct item it = { klen, vlen, expiry };
	uint8_t *p = buf + *off;

	memcpy(p, &it, sizeof(it));
	memset(p + IHDR, 0, pad8(klen) + pad8(vlen));
	if (klen)
		memcpy(p + IHDR, k, klen);
	if (vlen)
		memcpy(p + IHDR + pad8(klen), v, vlen);
	*off += map_item_size(klen, vlen);
}

/* Size of the items of a list (@map false) or map value. */
static inline uint64_t item_size(bool map, struct item it)
{
	return map ? map_item_size(it.a, it.b) : list_item_size(it.a);
}

/*
 * Rewrite the list or map value @old (@olen bytes, or NULL) into the
 * scratch buffer keeping its live items, with their expiry set to @a's
 * when @refresh; return its length in *@out and the latest expiry in
 * *@maxexp. @extra bytes more are reserved at the end.
 */
static int rewrite(struct sl_ctx *c, struct access *a, bool map, const uint8_t *old, uint32_t olen,
		   bool refresh, uint64_t extra, uint64_t *out, int64_t *maxexp)
{
	uint64_t off = 0;
	int rc;

	*maxexp = INT64_MIN;
	/* @old may point into the table: the scratch buffer is ours, so copying is safe. */
	rc = reserve(c, a, (uint64_t)olen + extra);
	if (rc < 0)
		return rc;
	for (uint32_t p = 0; old != NULL && p < olen;) {
		struct item it = item_at(old + p);
		uint64_t sz = item_size(map, it);

		if (it.expiry > a->now) {
			memcpy(a->sa->buf + off, old + p, sz);
			if (refresh) {
				it.expiry = a->expiry;
				memcpy(a->sa->buf + off, &it, sizeof(it));
			}
			if (it.expiry > *maxexp)
				*maxexp = it.expiry;
			off += sz;
		}
		p += (uint32_t)sz;
	}
	*out = off;
	return 0;
}

/* Store the scratch buffer's @len bytes as the entry (or remove it when empty). */
static int store(struct sl_ctx *c, struct access *a, uint64_t len, int64_t maxexp)
{
	if (len == 0) {
		sli_table_remove(a->t, &a->k);
		return 0;
	}
	return put(c, a, a->sa->buf, (uint32_t)len, maxexp);
}

int sl_list_add(struct sl_ctx *c, int id, const void *v, uint32_t len)
{
	struct access a;
	const void *old;
	uint32_t olen;
	uint64_t off;
	int64_t maxexp;
	int rc = enter_arg(c, id, SL_STATE_LIST, "sl_list_add", v, len, "value", &a);

	if (rc < 0 || (rc = get(c, &a, SLI_TTL_KEEP, &old, &olen)) < 0)
		return rc;
	rc = rewrite(c, &a, false, old, olen, false, list_item_size(len), &off, &maxexp);
	if (rc < 0)
		return rc;
	list_write(a.sa->buf, &off, v, len, a.expiry);
	if (a.expiry > maxexp)
		maxexp = a.expiry;
	rc = store(c, &a, off, maxexp);
	return rc < 0 ? rc : 0;
}

int sl_list_update(struct sl_ctx *c, int id, const struct sl_bytes *items, unsigned n)
{
	struct access a;
	uint64_t need = 0, off = 0;
	int rc = enter_arg(c, id, SL_STATE_LIST, "sl_list_update", items, n, "items", &a);

	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < n; i++) {
		if (items[i].ptr == NULL && items[i].len > 0)
			return fail(c, &a, -EINVAL, "item %u is NULL", i);
		need += list_item_size(items[i].len);
	}
	rc = reserve(c, &a, need);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < n; i++)
		list_write(a.sa->buf, &off, items[i].ptr, items[i].len, a.expiry);
	rc = store(c, &a, off, a.expiry);
	return rc < 0 ? rc : 0;
}

/*
 * With TTL on read and write, a read refreshes the items it returns:
 * rewrite the value with every live item's expiry renewed. Return 0 or
 * -errno.
 */
static int refresh_all(struct sl_ctx *c, struct access *a, bool map)
{
	const void *old;
	uint32_t olen;
	uint64_t off;
	int64_t maxexp;
	int rc = get(c, a, SLI_TTL_KEEP, &old, &olen);

	if (rc <= 0)
		return rc;
	rc = rewrite(c, a, map, old, olen, true, 0, &off, &maxexp);
	return rc < 0 ? rc : store(c, a, off, maxexp);
}

/* Move @p to the first live item at or after it; return whether there is one. */
static int skip_expired(const uint8_t **p, const uint8_t *end, int64_t now, bool map)
{
	while (*p < end) {
		struct item it = item_at(*p);

		if (it.expiry > now)
			return 1;
		*p += item_size(map, it);
	}
	return 0;
}

/*
 * Start iterating the list or map (@map) state @id for @fn: the live
 * items from *@p to *@end, expired at *@now. Return 1 when there is one,
 * 0 when none, -errno.
 */
static int iter_start(struct sl_ctx *c, int id, bool map, const char *fn, bool null_it,
		      const uint8_t **p, const uint8_t **end, int64_t *now)
{
	struct access a;
	const void *v;
	uint32_t len;
	int rc = enter(c, id, map ? SL_STATE_MAP : SL_STATE_LIST, fn, &a);

	if (rc < 0)
		return rc;
	if (null_it)
		return fail(c, &a, -EINVAL, "NULL iterator");
	*p = *end = NULL;
	*now = a.now;
	if (a.rw && (rc = refresh_all(c, &a, map)) < 0)
		return rc;
	rc = get(c, &a, SLI_TTL_KEEP, &v, &len);
	if (rc <= 0)
		return rc;
	*p = v;
	*end = *p + len;
	return skip_expired(p, *end, *now, map);
}

int sl_list_get(struct sl_ctx *c, int id, struct sl_list_iter *it)
{
	struct sl_list_iter none, *i = it != NULL ? it : &none;

	return iter_start(c, id, false, "sl_list_get", it == NULL, &i->p, &i->end, &i->now);
}

/*
 * Step an iteration at *@p to its next live item, if any: 1 and its
 * first bytes (@k, @klen: a list's element, a map's key) and a map item's
 * value (@v, @vlen); 0 at the end. Any output may be NULL.
 */
static int iter_next(const uint8_t **p, const uint8_t *end, int64_t now, bool map, const void **k,
		     uint32_t *klen, const void **v, uint32_t *vlen)
{
	struct item x;
	const uint8_t *q;

	if (*p == NULL || !skip_expired(p, end, now, map))
		return 0;
	q = *p;
	x = item_at(q);
	*p += item_size(map, x);
	if (k != NULL)
		*k = q + IHDR;
	if (klen != NULL)
		*klen = x.a;
	if (v != NULL)
		*v = q + IHDR + pad8(x.a);
	if (vlen != NULL)
		*vlen = x.b;
	return 1;
}

int sl_list_next(struct sl_list_iter *it, const void **v, uint32_t *len)
{
	return it != NULL && iter_next(&it->p, it->end, it->now, false, v, len, NULL, NULL);
}

/* Byte order of map keys: memcmp, the shorter first on a common prefix. */
static int keycmp(const void *a, uint32_t alen, const void *b, uint32_t blen)
{
	uint32_t m = alen < blen ? alen : blen;
	int r = m ? memcmp(a, b, m) : 0;

	if (r != 0)
		return r;
	return (alen > blen) - (alen < blen);
}

/* The live item of key @k in map value @v, or NULL. */
static const uint8_t *map_find(const uint8_t *v, uint32_t len, const void *k, uint32_t klen,
			       int64_t now)
{
	for (uint32_t p = 0; v != NULL && p < len;) {
		struct item it = item_at(v + p);
		int r = keycmp(v + p + IHDR, it.a, k, klen);

		if (r == 0)
			return it.expiry > now ? v + p : NULL;
		if (r > 0)
			return NULL; /* sorted: it is not there */
		p += (uint32_t)map_item_size(it.a, it.b);
	}
	return NULL;
}

enum map_op { MAP_PUT, MAP_REMOVE, MAP_TOUCH };

/*
 * Rewrite the map, dropping expired items, and: MAP_PUT map @k to @v
 * (replacing or inserting at its sorted place), MAP_REMOVE drop @k,
 * MAP_TOUCH restart the expiry of @k's item. *@existed: whether @k had
 * a live value before.
 */
static int map_rewrite(struct sl_ctx *c, struct access *a, enum map_op op, const void *k,
		       uint32_t klen, const void *v, uint32_t vlen, int *existed)
{
	const void *oldv;
	const uint8_t *old;
	uint32_t olen;
	uint64_t off = 0, need;
	int64_t maxexp = INT64_MIN;
	bool done = op != MAP_PUT;
	int rc;

	*existed = 0;
	rc = get(c, a, SLI_TTL_KEEP, &oldv, &olen);
	if (rc < 0)
		return rc;
	old = oldv;
	need = (uint64_t)olen + (op == MAP_PUT ? map_item_size(klen, vlen) : 0);
	rc = reserve(c, a, need);
	if (rc < 0)
		return rc;
	for (uint32_t p = 0; p < olen;) {
		struct item it = item_at(old + p);
		uint64_t sz = map_item_size(it.a, it.b);
		int r = keycmp(old + p + IHDR, it.a, k, klen);

		p += (uint32_t)sz;
		if (it.expiry <= a->now)
			continue;
		if (r == 0)
			*existed = 1;
		if (r == 0 && op != MAP_TOUCH)
			continue; /* replaced, or removed */
		if (r > 0 && !done) {
			map_write(a->sa->buf, &off, k, klen, v, vlen, a->expiry);
			maxexp = a->expiry > maxexp ? a->expiry : maxexp;
			done = true;
		}
		memcpy(a->sa->buf + off, old + p - sz, sz);
		if (r == 0) { /* MAP_TOUCH */
			it.expiry = a->expiry;
			memcpy(a->sa->buf + off, &it, sizeof(it));
		}
		maxexp = it.expiry > maxexp ? it.expiry : maxexp;
		off += sz;
	}
	if (!done) {
		map_write(a->sa->buf, &off, k, klen, v, vlen, a->expiry);
		maxexp = a->expiry > maxexp ? a->expiry : maxexp;
	}
	return store(c, a, off, maxexp);
}

int sl_map_put(struct sl_ctx *c, int id, const void *k, uint32_t klen, const void *v, uint32_t vlen)
{
	struct access a;
	int existed, rc = enter_arg(c, id, SL_STATE_MAP, "sl_map_put", k, klen, "map key", &a);

	if (rc < 0)
		return rc;
	if (v == NULL && vlen > 0)
		return fail(c, &a, -EINVAL, "NULL value");
	rc = map_rewrite(c, &a, MAP_PUT, k, klen, v, vlen, &existed);
	return rc < 0 ? rc : !existed;
}

int sl_map_remove(struct sl_ctx *c, int id, const void *k, uint32_t klen)
{
	struct access a;
	const void *v;
	uint32_t len;
	int existed, rc = enter_arg(c, id, SL_STATE_MAP, "sl_map_remove", k, klen, "map key", &a);

	if (rc < 0 || (rc = get(c, &a, SLI_TTL_KEEP, &v, &len)) <= 0)
		return rc;
	rc = map_rewrite(c, &a, MAP_REMOVE, k, klen, NULL, 0, &existed);
	return rc < 0 ? rc : existed;
}

/* Find @k's live item, restarting its expiry first with TTL on read and write. */
static int map_lookup(struct sl_ctx *c, int id, const void *k, uint32_t klen, const char *fn,
		      const uint8_t **item)
{
	struct access a;
	const void *v;
	uint32_t len;
	int existed, rc = enter_arg(c, id, SL_STATE_MAP, fn, k, klen, "map key", &a);

	*item = NULL;
	if (rc < 0 || (rc = get(c, &a, SLI_TTL_KEEP, &v, &len)) <= 0)
		return rc;
	*item = map_find(v, len, k, klen, a.now);
	if (*item == NULL || !a.rw)
		return *item != NULL;
	rc = map_rewrite(c, &a, MAP_TOUCH, k, klen, NULL, 0, &existed);
	if (rc < 0 || (rc = get(c, &a, SLI_TTL_KEEP, &v, &len)) <= 0)
		return rc;
	*item = map_find(v, len, k, klen, a.now);
	return *item != NULL;
}

int sl_map_get(struct sl_ctx *c, int id, const void *k, uint32_t klen, const void **v,
	       uint32_t *vlen)
{
	const uint8_t *item;
	int rc = map_lookup(c, id, k, klen, "sl_map_get", &item);

	if (rc <= 0) {
		if (v != NULL)
			*v = NULL;
		if (vlen != NULL)
			*vlen = 0;
		return rc;
	}
	{
		struct item it = item_at(item);

		if (v != NULL)
			*v = item + IHDR + pad8(it.a);
		if (vlen != NULL)
			*vlen = it.b;
	}
	return 1;
}

int sl_map_contains(struct sl_ctx *c, int id, const void *k, uint32_t klen)
{
	const uint8_t *item;

	return map_lookup(c, id, k, klen, "sl_map_contains", &item);
}

int sl_map_iterate(struct sl_ctx *c, int id, struct sl_map_iter *it)
{
	struct sl_map_iter none, *i = it != NULL ? it : &none;

	return iter_start(c, id, true, "sl_map_iterate", it == NULL, &i->p, &i->end, &i->now);
}

int sl_map_next(struct sl_map_iter *it, const void **k, uint32_t *klen, const void **v,
		uint32_t *vlen)
{
	return it != NULL && iter_next(&it->p, it->end, it->now, true, k, klen, v, vlen);
}

/* ---------------------------------------------- reducing, aggregating */

/*
 * Load the current key's fixed-size value (@size bytes: a reducing
 * state's value or an aggregating state's accumulator) into the scratch
 * buffer. Return 1 when there was one, 0 when not, -errno.
 */
static int fixed_load(struct sl_ctx *c, struct access *a, uint32_t size)
{
	const void *old;
	uint32_t olen;
	int rc = reserve(c, a, size);

	if (rc < 0 || (rc = get(c, a, SLI_TTL_KEEP, &old, &olen)) <= 0)
		return rc;
	if (olen != size)
		return 0;
	memcpy(a->sa->buf, old, size);
	return 1;
}

/* A user function's failure @rc: a sentence naming it, and @rc. */
static int fn_fail(struct sl_ctx *c, const struct access *a, const char *what, int rc)
{
	return ctx_fail(c, rc, "%s: the %s function of state '%s' of operator '%s' failed: %s",
			a->fn, what, a->d->name, a->sa->info->op_name, sl_strerror(rc));
}

/* The current key's fixed-size value (@size bytes) for a get: *@v, 1; 0 when none; -errno. */
static int fixed_get(struct sl_ctx *c, int id, int kind, const char *fn, void *out,
		     struct access *a, const void **v)
{
	uint32_t len;
	int rc = enter(c, id, kind, fn, a);

	if (rc < 0)
		return rc;
	if (out == NULL)
		return fail(c, a, -EINVAL, "NULL output");
	rc = get(c, a, a->touch, v, &len);
	if (rc <= 0)
		return rc;
	return len == (kind == SL_STATE_REDUCING ? a->d->value_size : a->d->agg.acc_size);
}

int sl_reducing_add(struct sl_ctx *c, int id, const void *v)
{
	struct access a;
	int rc = enter_arg(c, id, SL_STATE_REDUCING, "sl_reducing_add", v, 1, "value", &a);

	if (rc < 0 || (rc = fixed_load(c, &a, a.d->value_size)) < 0)
		return rc;
	if (rc == 0)
		memcpy(a.sa->buf, v, a.d->value_size);
	else if ((rc = a.d->reduce(a.sa->buf, v, a.d->arg)) < 0)
		return fn_fail(c, &a, "reduce", rc);
	rc = put(c, &a, a.sa->buf, a.d->value_size, a.expiry);
	return rc < 0 ? rc : 0;
}

int sl_reducing_get(struct sl_ctx *c, int id, void *out)
{
	struct access a;
	const void *v = NULL;
	int rc = fixed_get(c, id, SL_STATE_REDUCING, "sl_reducing_get", out, &a, &v);

	if (rc > 0)
		memcpy(out, v, a.d->value_size);
	return rc;
}

int sl_aggregating_add(struct sl_ctx *c, int id, const void *in, uint32_t len)
{
	struct access a;
	int rc = enter_arg(c, id, SL_STATE_AGGREGATING, "sl_aggregating_add", in, len, "input", &a);

	if (rc < 0 || (rc = fixed_load(c, &a, a.d->agg.acc_size)) < 0)
		return rc;
	if (rc == 0) {
		memset(a.sa->buf, 0, a.d->agg.acc_size);
		a.d->agg.create(a.sa->buf, a.d->arg);
	}
	rc = a.d->agg.add(a.sa->buf, in, len, a.d->arg);
	if (rc < 0)
		return fn_fail(c, &a, "add", rc);
	rc = put(c, &a, a.sa->buf, a.d->agg.acc_size, a.expiry);
	return rc < 0 ? rc : 0;
}

int sl_aggregating_get(struct sl_ctx *c, int id, void *out)
{
	struct access a;
	const void *v = NULL;
	int rc = fixed_get(c, id, SL_STATE_AGGREGATING, "sl_aggregating_get", out, &a, &v);

	if (rc <= 0)
		return rc;
	rc = a.d->agg.result(v, out, a.d->arg);
	return rc < 0 ? fn_fail(c, &a, "result", rc) : 1;
}

/* ----------------------------------------------------------------- all */

int sl_state_clear(struct sl_ctx *c, int id)
{
	struct access a;
	const void *v;
	uint32_t len;
	int live, rc = enter(c, id, -1, "sl_state_clear", &a);

	if (rc < 0)
		return rc;
	/* A spilled entry that cannot be read is removed all the same. */
	live = get(c, &a, SLI_TTL_KEEP, &v, &len) > 0;
	sli_table_remove(a.t, &a.k);
	return live;
}

/* ----------------------------------------------------------- backend */

static void api_close(void *inst)
{
	struct sapi *sa = inst;

	if (sa == NULL)
		return;
	sli_table_destroy(sa->t[0]); /* deletes its spill files */
	sli_table_destroy(sa->t[1]);
	for (int i = 0; i < 2; i++) {
		if (sa->dir[i] != NULL)
			rmdir(sa->dir[i]);
		free(sa->dir[i]);
	}
	if (sa->root != NULL)
		rmdir(sa->root); /* fails while other subtasks' directories are in it */
	free(sa->root);
	free(sa->buf);
	free(sa);
}

/* mkdir -p @path (0700). Return 0 or -errno. */
static int make_dirs(const char *path)
{
	char p[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -errno;
		p[i] = i < n ? '/' : '\0';
	}
	return 0;
}

/*
 * Give the tables the job's memory budget, spilling to
 * ROOT/OPERATOR-SUBTASK (t[0]) and ROOT/OPERATOR-SUBTASK-event (t[1]);
 * with two tables each gets half. Return 0, or -errno with a sentence.
 */
static int spill_setup(struct sapi *sa, const struct sli_state_opts *o)
{
	const struct sl_subtask_info *info = sa->info;
	unsigned nt = sa->t[1] != NULL ? 2 : 1;
	char root[PATH_MAX], name[96];
	const char *what = root;
	size_t len;
	int rc;

	root[0] = '\0';
	if (o->dir != NULL && strlen(o->dir) >= sizeof(root))
		what = o->dir, rc = -ENAMETOOLONG;
	else if (o->dir != NULL)
		rc = snprintf(root, sizeof(root), "%s", o->dir) < 0 ? -EINVAL : 0;
	else if ((rc = sli_state_default_dir(o->job_name, root, sizeof(root))) == 0 &&
		 (sa->root = strdup(root)) == NULL)
		rc = -ENOMEM;
	if (rc == 0)
		rc = make_dirs(root);
	/* A directory name of the operator's name: no separators, nothing hidden. */
	snprintf(name, sizeof(name), "%.80s-%u", info->op_name, info->index);
	for (char *p = name; *p != '\0'; p++)
		if (*p == '/' || (p == name && *p == '.'))
			*p = '_';
	for (unsigned i = 0; rc == 0 && i < nt; i++) {
		struct sli_spill_conf conf = { .budget = (size_t)(o->memory / nt),
					       .io = (enum sli_io_kind)o->io };

		len = strlen(root) + strlen(name) + sizeof("/-event");
		if ((sa->dir[i] = malloc(len)) == NULL) {
			rc = -ENOMEM;
			break;
		}
		snprintf(sa->dir[i], len, "%s/%s%s", root, name, i ? "-event" : "");
		what = conf.dir = sa->dir[i];
		rc = sli_table_set_spill(sa->t[i], &conf);
		if (rc == -ENOENT && make_dirs(root) == 0) /* the root went with another job */
			rc = sli_table_set_spill(sa->t[i], &conf);
	}
	if (rc == 0) {
		sa->spills = true;
		return 0;
	}
	snprintf(info->errbuf, info->errlen, "cannot spill keyed state to '%s': %s", what,
		 rc == -EBUSY ? "another running job uses this directory" : sl_strerror(rc));
	return rc;
}

static int api_open(const struct sl_subtask_info *info, const struct sl_allocator *a,
		    const struct sl_state_desc *descs, unsigned n, unsigned kg_first,
		    unsigned kg_last, const struct sli_state_opts *opts, void **inst)
{
	struct sapi *sa = calloc(1, sizeof(*sa));
	bool ev = false;
	int rc;

	if (sa == NULL)
		return -ENOMEM;
	sa->info = info;
	sa->descs = descs;
	sa->n = n;
	sa->kg_first = kg_first;
	sa->kg_last = kg_last;
	for (unsigned i = 0; i < n; i++) {
		if (descs[i].ttl.ttl_ms <= 0)
			continue;
		if (descs[i].ttl.time == SL_TTL_EVENT_TIME)
			ev = true;
		else
			sa->proc_ttl = true;
	}
	rc = sli_table_create(a, info->max_parallelism, kg_first, kg_last, &sa->t[0]);
	if (rc == 0 && ev)
		rc = sli_table_create(a, info->max_parallelism, kg_first, kg_last, &sa->t[1]);
	if (rc < 0)
		snprintf(info->errbuf, info->errlen,
			 "cannot create the keyed-state table for key groups %u..%u of %u: %s",
			 kg_first, kg_last, info->max_parallelism, sl_strerror(rc));
	else if (opts != NULL && opts->memory > 0)
		rc = spill_setup(sa, opts);
	if (rc < 0) {
		api_close(sa);
		return rc;
	}
	*inst = sa;
	return 0;
}

static void cleanup(struct sapi *sa, struct sli_table *t, int64_t now, unsigned budget)
{
	int removed = sli_table_ttl_cleanup(t, now, budget);

	sa->st.cleanups++;
	sa->st.last_budget = budget;
	if (budget > sa->st.max_budget)
		sa->st.max_budget = budget;
	if (removed > 0) {
		sa->st.removed += (uint64_t)removed;
		if ((unsigned)removed > sa->st.max_removed)
			sa->st.max_removed = (unsigned)removed;
	}
}

static void api_maintain(void *inst, struct sl_ctx *c, unsigned budget)
{
	struct sapi *sa = inst;

	if (sa->proc_ttl)
		cleanup(sa, sa->t[0], sl_ctx_current_processing_time(c), budget);
	if (sa->t[1] != NULL)
		cleanup(sa, sa->t[1], sl_ctx_current_watermark(c), budget);
}

/*
 * Checkpoints. The part of a key group: the states {name, kind} (entries
 * name their state by position in this list, so a restore maps them by
 * name to the job's declaration, whatever its order), then u32 entries,
 * each {key, namespace, value, u32 state, i64 expiry}. Spilled entries are
 * read back (batched) by the partition. Expiries are absolute times of
 * their TTL clock and restored as they were.
 */
/* What a snapshot names: the states and key groups; its errors go to errbuf. */
struct wctx {
	const struct sl_state_desc *descs;
	unsigned n, kg_first, kg_last;
	char *errbuf;
	size_t errlen;
};

/* Write the partitions @p of the tables (NULL: no such table), as at the barrier. */
static int write_parts(const struct wctx *c, struct sli_table_part *const p[2],
		       struct sl_snap_writer *w)
{
	int rc = 0;

	for (unsigned kg = c->kg_first; kg <= c->kg_last && rc == 0; kg++) {
		const struct sli_entry *const *e[2] = { NULL, NULL };
		size_t n[2] = { 0, 0 };

		for (int i = 0; i < 2 && rc == 0; i++) {
			if (p[i] == NULL)
				continue;
			n[i] = sli_table_part_group(p[i], kg, &e[i]);
			if ((rc = sli_table_part_error(p[i])) < 0) {
				const char *why = sli_table_part_errmsg(p[i]);

				snprintf(c->errbuf, c->errlen,
					 "cannot read spilled keyed state of key group %u: %s", kg,
					 why[0] ? why : sl_strerror(rc));
			}
		}
		rc = rc < 0 ? rc : sl_snap_section(w, kg);
		rc = rc < 0 ? rc : sl_snap_put_u32(w, c->n);
		for (unsigned d = 0; d < c->n && rc == 0; d++) {
			rc = sl_snap_put_bytes(w, c->descs[d].name, strlen(c->descs[d].name));
			rc = rc < 0 ? rc : sl_snap_put_u32(w, c->descs[d].kind);
		}
		rc = rc < 0 ? rc : sl_snap_put_u32(w, (uint32_t)(n[0] + n[1]));
		for (int i = 0; i < 2 && rc == 0; i++)
			for (size_t j = 0; j < n[i] && rc == 0; j++) {
				struct sli_entry_view v;

				sli_table_entry(e[i][j], &v);
				rc = sl_snap_put_bytes(w, v.key, v.key_len);
				rc = rc < 0 ? rc : sl_snap_put_bytes(w, v.ns, v.ns_len);
				rc = rc < 0 ? rc : sl_snap_put_bytes(w, v.value, v.value_len);
				rc = rc < 0 ? rc : sl_snap_put_u32(w, v.state_id);
				rc = rc < 0 ? rc : sl_snap_put_i64(w, v.expiry);
			}
	}
	return rc;
}

static struct wctx wctx_of(const struct sapi *sa)
{
	return (struct wctx){ sa->descs,	sa->n,		 sa->kg_first, sa->kg_last,
			      sa->info->errbuf, sa->info->errlen };
}

/* A table's partition: sli_table_partition() or sli_table_frozen_partition(). */
typedef int (*part_fn)(void *table, struct sli_table_part **out);

static int part_live(void *table, struct sli_table_part **out)
{
	return sli_table_partition(table, out);
}

static int part_frozen(void *table, struct sli_table_part **out)
{
	return sli_table_frozen_partition(table, out);
}

/* Partition the tables @tab (NULL: none) with @part, then write them. */
static int write_tables(const struct wctx *c, part_fn part, void *const tab[2],
			struct sl_snap_writer *w)
{
	struct sli_table_part *p[2] = { NULL, NULL };
	int rc = 0;

	for (int i = 0; i < 2 && rc == 0; i++)
		if (tab[i] != NULL && (rc = part(tab[i], &p[i])) < 0)
			snprintf(c->errbuf, c->errlen, "cannot list the keyed state: %s",
				 sl_strerror(rc));
	if (rc == 0)
		rc = write_parts(c, p, w);
	sli_table_part_destroy(p[0]);
	sli_table_part_destroy(p[1]);
	return rc;
}

static int api_snapshot(void *inst, struct sl_snap_writer *w)
{
	struct sapi *sa = inst;
	struct wctx c = wctx_of(sa);

	return write_tables(&c, part_live, (void *const[2]){ sa->t[0], sa->t[1] }, w);
}

/*
 * Asynchronous snapshots: both tables frozen at the barrier
 * (sli_table_freeze(): copy-on-write), written on the checkpoint thread
 * in api_snapshot()'s format. The descriptors are the node's (they live
 * as long as the job); errors go to the frozen state's own buffer, never
 * the subtask's, which its thread may be writing.
 */
struct afrozen {
	struct sli_table_frozen *f[2];
	struct wctx c;
	char err[256];
};

static int api_freeze(void *inst, void **out, uint64_t *copied)
{
	struct sapi *sa = inst;
	struct afrozen *z = calloc(1, sizeof(*z));
	int rc = z == NULL ? -ENOMEM : 0;

	for (int i = 0; i < 2 && rc == 0; i++) {
		struct sli_table_stats ts;

		if (sa->t[i] == NULL)
			continue;
		rc = sli_table_freeze(sa->t[i], &z->f[i]);
		sli_table_stats(sa->t[i], &ts);
		*copied += ts.cow_bytes - sa->cow_reported[i];
		sa->cow_reported[i] = ts.cow_bytes;
	}
	if (rc < 0) {
		if (z != NULL) { /* the task is the reader of what froze: give it back now */
			sli_table_frozen_put(z->f[0]);
			sli_table_frozen_put(z->f[1]);
		}
		free(z);
		return rc;
	}
	z->c = wctx_of(sa);
	z->c.errbuf = z->err;
	z->c.errlen = sizeof(z->err);
	*out = z;
	return 0;
}

static int api_frozen_write(void *frozen, struct sl_snap_writer *w)
{
	struct afrozen *z = frozen;

	return write_tables(&z->c, part_frozen, (void *const[2]){ z->f[0], z->f[1] }, w);
}

static void api_frozen_put(void *frozen)
{
	struct afrozen *z = frozen;

	if (z == NULL)
		return;
	sli_table_frozen_put(z->f[0]);
	sli_table_frozen_put(z->f[1]);
	free(z);
}

static int api_restore(void *inst, struct sl_snap_reader *r, unsigned kg)
{
	struct sapi *sa = inst;
	uint16_t map[SL_STATE_MAX];
	uint32_t nd, n, kind, sid, klen, nlen, vlen;
	const void *name, *key, *ns, *val;
	int64_t expiry;
	char why[160];
	int rc = sl_snap_get_u32(r, &nd);

	if (rc == 0 && nd > SL_STATE_MAX)
		return sl_snap_bad(r, "more keyed states than an operator can declare");
	for (uint32_t d = 0; d < nd && rc == 0; d++) {
		unsigned j;

		rc = sl_snap_get_bytes(r, &name, &nlen);
		rc = rc < 0 ? rc : sl_snap_get_u32(r, &kind);
		if (rc < 0)
			return rc;
		for (j = 0; j < sa->n; j++)
			if (strlen(sa->descs[j].name) == nlen &&
			    memcmp(sa->descs[j].name, name, nlen) == 0)
				break;
		if (j == sa->n || sa->descs[j].kind != (enum sl_state_kind)kind) {
			snprintf(why, sizeof(why),
				 j == sa->n ? "keyed state '%.*s' is not declared by the job"
					    : "keyed state '%.*s' has another kind in the job",
				 (int)(nlen > 64 ? 64 : nlen), (const char *)name);
			return sl_snap_bad(r, why);
		}
		map[d] = (uint16_t)j;
	}
	rc = rc < 0 ? rc : sl_snap_get_u32(r, &n);
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		const struct sl_state_desc *d;
		struct sli_skey k;

		rc = sl_snap_get_bytes(r, &key, &klen);
		rc = rc < 0 ? rc : sl_snap_get_bytes(r, &ns, &nlen);
		rc = rc < 0 ? rc : sl_snap_get_bytes(r, &val, &vlen);
		rc = rc < 0 ? rc : sl_snap_get_u32(r, &sid);
		rc = rc < 0 ? rc : sl_snap_get_i64(r, &expiry);
		if (rc < 0)
			return rc;
		if (sid >= nd || nlen > UINT16_MAX)
			return sl_snap_bad(r, "a keyed-state entry of an unknown state");
		d = &sa->descs[map[sid]];
		k = (struct sli_skey){ .hash = sli_hash64(key, klen, 0),
				       .key = key,
				       .ns = ns,
				       .key_len = klen,
				       .ns_len = (uint16_t)nlen,
				       .state_id = map[sid] };
		if (sli_key_group(k.hash, sa->info->max_parallelism) != kg)
			return sl_snap_bad(r, "a keyed-state entry in another key group");
		rc = sli_table_put(sa->t[d->ttl.ttl_ms > 0 && d->ttl.time == SL_TTL_EVENT_TIME], &k,
				   val, vlen, expiry);
		if (rc < 0)
			snprintf(sa->info->errbuf, sa->info->errlen,
				 "cannot restore keyed state '%s': %s", d->name, sl_strerror(rc));
		else
			rc = 0; /* inserted (1) or replaced */
	}
	return rc;
}

static const struct sli_state_backend api_backend = {
	.open = api_open,
	.close = api_close,
	.maintain = api_maintain,
	.snapshot = api_snapshot,
	.restore = api_restore,
	.freeze = api_freeze,
	.frozen_write = api_frozen_write,
	.frozen_put = api_frozen_put,
};

int sli_state_api_stats(const struct sl_ctx *c, struct sli_state_api_stats *out)
{
	const struct sapi *sa;

	if (c == NULL || c->state == NULL || out == NULL)
		return -EINVAL;
	sa = c->state;
	*out = sa->st;
	for (int i = 0; i < 2 && sa->t[i] != NULL; i++) {
		struct sli_table_stats ts;

		sli_table_stats(sa->t[i], &ts);
		out->entries += ts.entries;
		out->resident += ts.resident;
		out->spilled += ts.spilled;
		out->evictions += ts.evictions;
		out->reloads += ts.reloads;
		out->spill_writes += ts.spill_writes;
		out->spill_file_bytes += ts.spill_file_bytes;
	}
	out->engine = sli_table_spill_engine(sa->t[0]);
	out->spill_dir = sa->dir[0];
	return 0;
}

/* ----------------------------------------------------------- declare */

/* The first problem with @d, or NULL. */
static const char *desc_problem(const struct sl_state_desc *d)
{
	if (d->name == NULL || d->name[0] == '\0')
		return "has no name";
	if ((unsigned)d->kind > SL_STATE_AGGREGATING)
		return "has an unknown kind";
	if (d->kind == SL_STATE_REDUCING && (d->reduce == NULL || d->value_size == 0))
		return "is a reducing state without a reduce function or a value_size";
	if (d->kind == SL_STATE_REDUCING && d->value_size > SL_STATE_VALUE_MAX)
		return "has a value_size above SL_STATE_VALUE_MAX";
	if (d->kind == SL_STATE_AGGREGATING &&
	    (d->agg.create == NULL || d->agg.add == NULL || d->agg.result == NULL ||
	     d->agg.acc_size == 0 || d->agg.out_size == 0))
		return "is an aggregating state without create, add, result, acc_size or out_size";
	if (d->kind == SL_STATE_AGGREGATING && d->agg.acc_size > SL_STATE_VALUE_MAX)
		return "has an acc_size above SL_STATE_VALUE_MAX";
	if (d->ttl.ttl_ms < 0)
		return "has a negative TTL";
	if ((unsigned)d->ttl.update > SL_TTL_ON_READ_AND_WRITE)
		return "has an unknown TTL update type";
	if ((unsigned)d->ttl.time > SL_TTL_EVENT_TIME)
		return "has an unknown TTL time characteristic";
	return NULL;
}

int sl_state_declare(struct sl_stream *op, const struct sl_state_desc *d)
{
	const char *bad;

	if (op == NULL || op->job == NULL)
		return -EINVAL;
	if (op->node == NULL) /* not built: the job holds the reason */
		return op->job->build_err ? op->job->build_err : -EINVAL;
	if (d == NULL) {
		sli_build_fail(op->job, -EINVAL,
			       "sl_state_declare on operator '%s': NULL descriptor",
			       op->node->name);
		return -EINVAL;
	}
	bad = desc_problem(d);
	if (bad != NULL) {
		sli_build_fail(op->job, -EINVAL, "state '%s' of operator '%s' %s",
			       d->name ? d->name : "", op->node->name, bad);
		return -EINVAL;
	}
	return sli_state_attach(op, d, &api_backend);
}
