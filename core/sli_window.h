/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_window.h — what the window operators (window.c, window_gen.c) and
 * the window join (join.c) share: array growth, time arithmetic that
 * never overflows, the cleanup and lateness rules of SEMANTICS.md, and
 * the (key id, start, end) -> entry open-addressing table.
 *
 * Everything is static inline (or, for the table, defined per operator
 * by SLI_WTAB_DEFINE() on its own types): no call or indirection is added
 * to a hot path.
 */
#ifndef SLI_WINDOW_H
#define SLI_WINDOW_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_time.h>

/*
 * Grow the array *@arr of *@cap elements of @size bytes to hold @need:
 * capacity doubles from 16. Return 0 or -ENOMEM (the array unchanged).
 */
static inline int sli_grow(void **arr, uint32_t *cap, uint32_t need, size_t size)
{
	uint32_t ncap = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	p = realloc(*arr, (size_t)ncap * size);
	if (p == NULL)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

/*
 * sli_grow() of *@arr (elements of @size bytes) to hold @need, and when
 * its capacity changed, of the parallel array *@par to as many elements
 * of @psize bytes. Return 0 or -ENOMEM.
 */
static inline int sli_grow2(void **arr, uint32_t *cap, uint32_t need, size_t size, void **par,
			    size_t psize)
{
	uint32_t ocap = *cap;
	void *p;

	if (sli_grow(arr, cap, need, size) < 0)
		return -ENOMEM;
	if (*cap != ocap) {
		p = realloc(*par, (size_t)*cap * psize);
		if (p == NULL)
			return -ENOMEM;
		*par = p;
	}
	return 0;
}

/*
 * Built-in aggregates (enum sl_agg_builtin): one int64_t accumulator,
 * read and written with memcpy (any alignment). sli_agg_fold() is the
 * arithmetic, with @kind a constant it is one instruction or two; the
 * others apply @a (built-in or custom) to an accumulator.
 */
static inline void sli_agg_fold(uint32_t kind, int64_t *acc, int64_t v)
{
	switch (kind) {
	case SL_AGG_COUNT:
		*acc = (int64_t)((uint64_t)*acc + 1);
		break;
	case SL_AGG_SUM_I64:
		*acc = (int64_t)((uint64_t)*acc + (uint64_t)v); /* wraps */
		break;
	case SL_AGG_MIN_I64:
		*acc = v < *acc ? v : *acc;
		break;
	case SL_AGG_MAX_I64:
		*acc = v > *acc ? v : *acc;
		break;
	}
}

/* The int64_t field of built-in @a in @elem. */
static inline int64_t sli_agg_field(const struct sl_aggregate *a, const void *elem)
{
	int64_t v;

	memcpy(&v, (const char *)elem + a->field, sizeof(v));
	return v;
}

/* A fresh accumulator at @acc (zeroed by the caller) of @a. */
static inline void sli_agg_create(const struct sl_aggregate *a, void *acc)
{
	int64_t v = a->builtin == SL_AGG_MIN_I64 ? INT64_MAX : INT64_MIN;

	if (a->builtin == SL_AGG_MIN_I64 || a->builtin == SL_AGG_MAX_I64)
		memcpy(acc, &v, sizeof(v));
	else if (a->builtin == SL_AGG_CUSTOM && a->create != NULL)
		a->create(acc, a->arg);
}

/* Fold element @elem (timestamp @ts, of batch @src) into @acc. */
static inline void sli_agg_add(const struct sl_aggregate *a, void *acc, const void *elem,
			       int64_t ts, const struct sl_batch *src)
{
	int64_t x;

	if (a->builtin == SL_AGG_CUSTOM) {
		a->add(acc, elem, ts, src, a->arg);
		return;
	}
	memcpy(&x, acc, sizeof(x));
	sli_agg_fold(a->builtin, &x, a->builtin == SL_AGG_COUNT ? 0 : sli_agg_field(a, elem));
	memcpy(acc, &x, sizeof(x));
}

/* Fold accumulator @src into @dst (counts add up). */
static inline void sli_agg_merge(const struct sl_aggregate *a, void *dst, const void *src)
{
	int64_t x, y;

	if (a->builtin == SL_AGG_CUSTOM) {
		a->merge(dst, src, a->arg);
		return;
	}
	memcpy(&x, dst, sizeof(x));
	memcpy(&y, src, sizeof(y));
	sli_agg_fold(a->builtin == SL_AGG_COUNT ? SL_AGG_SUM_I64 : a->builtin, &x, y);
	memcpy(dst, &x, sizeof(x));
}

/* Has @a a merge (its own or built in)? */
static inline bool sli_agg_has_merge(const struct sl_aggregate *a)
{
	return a->builtin != SL_AGG_CUSTOM || a->merge != NULL;
}

/* Floor modulo: the result has the sign of @m (> 0). */
static inline int64_t sli_floor_mod(int64_t a, int64_t m)
{
	int64_t r = a % m;

	return r < 0 ? r + m : r;
}

/*
 * sli_floor_mod(ts - offset, m) without computing ts - offset, which can
 * overflow: the distance from @ts down to the grid offset + k * m. The
 * newest window start of @ts is ts - sli_grid_mod(), which exists only
 * when ts >= INT64_MIN + sli_grid_mod() (window.c, window_gen.c, join.c).
 */
static inline int64_t sli_grid_mod(int64_t ts, int64_t offset, int64_t m)
{
	int64_t r = sli_floor_mod(ts, m) - sli_floor_mod(offset, m); /* in (-m, m) */

	return r < 0 ? r + m : r;
}

/*
 * A time grid offset + k * m (m > 0, an operator's pane length or slide)
 * with its divisions done by a multiplication: a 64-bit divide costs tens
 * of cycles on x86 (Cascade Lake: 40 to 90), and a window operator's slow
 * path, taken for every new pane of every key, did several. inv is
 * floor(2^64 / m) (0 when m = 1): for any 64-bit n, the high half of
 * n * inv is floor(n / m) or one less (inv is at most 1 below 2^64 / m
 * and n below 2^64), fixed by one comparison. Timestamps enter as
 * u(ts) = ts + 2^63 (unsigned, order-preserving), so nothing overflows.
 */
__extension__ typedef unsigned __int128 sli_u128; /* gcc and clang on 64-bit targets */

struct sli_grid {
	uint64_t m, inv;
	uint64_t koff; /* u(offset) mod m */
};

/* Floor of @n / @g->m, with the remainder in *@rem. */
static inline uint64_t sli_grid_udiv(const struct sli_grid *g, uint64_t n, uint64_t *rem)
{
	uint64_t q, r;

	if (g->m == 1) {
		*rem = 0;
		return n;
	}
	q = (uint64_t)(((sli_u128)n * g->inv) >> 64);
	r = n - q * g->m;
	if (r >= g->m) {
		q++;
		r -= g->m;
	}
	*rem = r;
	return q;
}

/* The grid of period @m > 0 through @offset. */
static inline void sli_grid_init(struct sli_grid *g, int64_t m, int64_t offset)
{
	g->m = (uint64_t)m;
	g->inv = m > 1 ? (uint64_t)(((sli_u128)1 << 64) / (uint64_t)m) : 0;
	g->koff = 0;
	sli_grid_udiv(g, (uint64_t)offset ^ (1ull << 63), &g->koff);
}

/* sli_grid_mod(@ts, offset, m) of grid @g: the distance from @ts down to the grid. */
static inline int64_t sli_grid_modc(const struct sli_grid *g, int64_t ts)
{
	uint64_t r;

	sli_grid_udiv(g, (uint64_t)ts ^ (1ull << 63), &r);
	return (int64_t)(r >= g->koff ? r - g->koff : r + g->m - g->koff);
}

/*
 * An index of the period of @g that starts at @ts, a point of the grid:
 * floor(u(ts) / m). Consecutive periods have consecutive indices; the
 * index is not floor(ts / m). Only for grid points: with an offset, a @ts
 * inside a period can get the next period's index.
 */
static inline uint64_t sli_grid_index(const struct sli_grid *g, int64_t ts)
{
	uint64_t r;

	return sli_grid_udiv(g, (uint64_t)ts ^ (1ull << 63), &r);
}

/* a + b, saturating at INT64_MAX (b > 0) or INT64_MIN (b < 0). */
static inline int64_t sli_sat_add(int64_t a, int64_t b)
{
	int64_t t;

	return __builtin_add_overflow(a, b, &t) ? (b > 0 ? INT64_MAX : INT64_MIN) : t;
}

/*
 * Cleanup time of a time window ending at @end (its max timestamp is
 * end - 1) with allowed @lateness >= 0: end - 1 + lateness, INT64_MAX
 * when that overflows (Flink: Long.MAX_VALUE).
 */
static inline int64_t sli_cleanup_time(int64_t end, int64_t lateness)
{
	return sli_sat_add(end - 1, lateness);
}

/* A time window ending at @end is late (dropped) once its cleanup time is <= the watermark @wm. */
static inline bool sli_window_late(int64_t end, int64_t lateness, int64_t wm)
{
	return sli_cleanup_time(end, lateness) <= wm;
}

/* Hash of a window (@a: key id, @b: start, @c: end) for the tables below. */
static inline uint64_t sli_wmix(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t h =
	    a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull) * 0xbf58476d1ce4e5b9ull;

	h ^= (c + (h << 6) + (h >> 2)) * 0x94d049bb133111ebull;
	h ^= h >> 31;
	h *= 0xd6e8feb86659fd93ull;
	return h ^ (h >> 32);
}

/*
 * SLI_WTAB_DEFINE(pfx, W, mincap) - the (key, start, end) -> entry table
 * of operator state W, which has `uint32_t *wslot` (entry + 1, 0: empty),
 * `uint32_t wcap` (a power of two, or 0), `uint32_t wcount` and an array
 * `ents` of entries with fields key, start and end. Open addressing with
 * linear probing, deletion by backward shift. Defines:
 *   pfx##_home(w, key, start, end)  the slot where the probe starts;
 *   pfx##_grow(w)                   double wcap (first: @mincap), rehash;
 *                                   0 or -ENOMEM;
 *   pfx##_find(w, key, start, end)  the slot of the window, or the empty
 *                                   slot where it would go;
 *   pfx##_remove(w, i)              empty slot @i, wcount - 1.
 */
#define SLI_WTAB_DEFINE(pfx, W, mincap)                                                            \
	static inline uint32_t pfx##_home(const W *w, uint32_t key, int64_t start, int64_t end)    \
	{                                                                                          \
		return (uint32_t)sli_wmix(key, (uint64_t)start, (uint64_t)end) & (w->wcap - 1);    \
	}                                                                                          \
                                                                                                   \
	static int pfx##_grow(W *w)                                                                \
	{                                                                                          \
		uint32_t ncap = w->wcap ? w->wcap * 2 : (mincap);                                  \
		uint32_t *ns = calloc(ncap, sizeof(*ns));                                          \
		uint32_t ocap = w->wcap, *os = w->wslot;                                           \
                                                                                                   \
		if (ns == NULL)                                                                    \
			return -ENOMEM;                                                            \
		w->wslot = ns;                                                                     \
		w->wcap = ncap;                                                                    \
		for (uint32_t j = 0; j < ocap; j++) {                                              \
			if (os[j]) {                                                               \
				uint32_t i =                                                       \
				    pfx##_home(w, w->ents[os[j] - 1].key,                          \
					       w->ents[os[j] - 1].start, w->ents[os[j] - 1].end);  \
                                                                                                   \
				while (ns[i])                                                      \
					i = (i + 1) & (ncap - 1);                                  \
				ns[i] = os[j];                                                     \
			}                                                                          \
		}                                                                                  \
		free(os);                                                                          \
		return 0;                                                                          \
	}                                                                                          \
                                                                                                   \
	static inline uint32_t pfx##_find(const W *w, uint32_t key, int64_t start, int64_t end)    \
	{                                                                                          \
		uint32_t i = pfx##_home(w, key, start, end);                                       \
                                                                                                   \
		for (; w->wslot[i]; i = (i + 1) & (w->wcap - 1)) {                                 \
			uint32_t e_ = w->wslot[i] - 1;                                             \
                                                                                                   \
			if (w->ents[e_].key == key && w->ents[e_].start == start &&                \
			    w->ents[e_].end == end)                                                \
				break;                                                             \
		}                                                                                  \
		return i;                                                                          \
	}                                                                                          \
                                                                                                   \
	static void pfx##_remove(W *w, uint32_t i)                                                 \
	{                                                                                          \
		uint32_t mask = w->wcap - 1, j = i;                                                \
                                                                                                   \
		w->wslot[i] = 0;                                                                   \
		for (;;) {                                                                         \
			uint32_t e_, home;                                                         \
                                                                                                   \
			j = (j + 1) & mask;                                                        \
			if (!w->wslot[j])                                                          \
				break;                                                             \
			e_ = w->wslot[j] - 1;                                                      \
			home = pfx##_home(w, w->ents[e_].key, w->ents[e_].start, w->ents[e_].end); \
			/* Move it back unless its home lies in (i, j]. */                         \
			if (((j - home) & mask) >= ((j - i) & mask)) {                             \
				w->wslot[i] = w->wslot[j];                                         \
				w->wslot[j] = 0;                                                   \
				i = j;                                                             \
			}                                                                          \
		}                                                                                  \
		w->wcount--;                                                                       \
	}

#endif /* SLI_WINDOW_H */
