/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_table.c — the keyed-state table against a reference model.
 *
 * The model is a plain array indexed by (key, state, namespace) numbers
 * drawn from pools of distinct byte strings, so it is obviously right and
 * shares nothing with the table. Covered: ~1M random operations with keys
 * and values of 0..300 bytes and namespaces, through growth, shrinking and
 * the lookups that happen mid-migration; clear() of a key; iteration by key
 * group; the count of resize work per operation (never a time); TTL
 * expiry, touch and incremental cleanup; allocator failure at every point;
 * and every documented error return.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_alloc.h>
#include <sluice/sl_common.h>

#include "sl_test.h"
#include "sli_core.h"
#include "failing_alloc.h"
#include "sli_state.h"

#define SEED	   0x5eed0fa11ull
#define MAXVAL	   300
#define RANDOM_OPS 1000000

/* ------------------------------------------------------------- helpers */

static uint64_t rng = 42;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t n)
{
	return rnd() % n;
}

static uint64_t khash(const void *key, uint32_t len)
{
	return sli_hash64(key, len, SEED);
}

static uint64_t khash_cb(const void *key, uint32_t len, void *arg)
{
	(void)arg;
	return khash(key, len);
}

/* ------------------------------------------------------------ the model */

struct bytes {
	unsigned char *p;
	uint32_t len;
	uint64_t hash;
};

/* Distinct byte strings of 0..maxlen bytes; index 0 is the empty string. */
struct pool {
	struct bytes *v;
	unsigned n;
	unsigned *index; /* open addressing by hash: v[index[i] - 1] */
	size_t mask;
};

static int pool_find(const struct pool *p, const void *b, uint32_t len)
{
	uint64_t h = khash(b, len);

	for (size_t i = h & p->mask; p->index[i] != 0; i = (i + 1) & p->mask) {
		const struct bytes *x = &p->v[p->index[i] - 1];

		if (x->hash == h && x->len == len && (len == 0 || memcmp(x->p, b, len) == 0))
			return (int)p->index[i] - 1;
	}
	return -1;
}

static void pool_make(struct pool *p, unsigned n, unsigned maxlen)
{
	unsigned char buf[MAXVAL + 1];

	p->n = 0;
	p->v = calloc(n, sizeof(*p->v));
	p->mask = 1;
	while (p->mask < 2 * (size_t)n)
		p->mask <<= 1;
	p->index = calloc(p->mask, sizeof(*p->index));
	p->mask--;
	CU_ASSERT_FATAL(p->v != NULL && p->index != NULL && maxlen <= MAXVAL);
	while (p->n < n) {
		uint32_t len = p->n == 0 ? 0 : (uint32_t)below(maxlen + 1);
		size_t i;

		for (uint32_t j = 0; j < len; j++)
			buf[j] = (unsigned char)rnd();
		if (pool_find(p, buf, len) >= 0)
			continue;
		p->v[p->n] =
		    (struct bytes){ .p = malloc(len + 1), .len = len, .hash = khash(buf, len) };
		memcpy(p->v[p->n].p, buf, len);
		for (i = p->v[p->n].hash & p->mask; p->index[i] != 0; i = (i + 1) & p->mask)
			;
		p->index[i] = ++p->n;
	}
}

static void pool_free(struct pool *p)
{
	for (unsigned i = 0; i < p->n; i++)
		free(p->v[i].p);
	free(p->v);
	free(p->index);
}

struct rent {
	bool present;
	uint32_t len, cap;
	unsigned char *val; /* kept when removed, reused by the next put */
	int64_t expiry;
};

struct model {
	struct pool keys, nss;
	unsigned nsid, maxp;
	struct rent *r; /* [keys.n * nsid * nss.n] */
	size_t present;
	size_t *kg; /* present entries per key group */
};

static void model_init(struct model *m, unsigned nkeys, unsigned keylen, unsigned nns,
		       unsigned nsid, unsigned maxp)
{
	memset(m, 0, sizeof(*m));
	pool_make(&m->keys, nkeys, keylen);
	pool_make(&m->nss, nns, 40);
	m->nsid = nsid;
	m->maxp = maxp;
	m->r = calloc((size_t)nkeys * nsid * nns, sizeof(*m->r));
	m->kg = calloc(maxp, sizeof(*m->kg));
	CU_ASSERT_FATAL(m->r != NULL && m->kg != NULL);
}

static size_t model_size(const struct model *m)
{
	return (size_t)m->keys.n * m->nsid * m->nss.n;
}

static void model_free(struct model *m)
{
	for (size_t i = 0; i < model_size(m); i++)
		free(m->r[i].val);
	free(m->r);
	free(m->kg);
	pool_free(&m->keys);
	pool_free(&m->nss);
}

static size_t idx_of(const struct model *m, unsigned ki, unsigned sid, unsigned ni)
{
	return ((size_t)ki * m->nsid + sid) * m->nss.n + ni;
}

static void idx_split(const struct model *m, size_t idx, unsigned *ki, unsigned *sid, unsigned *ni)
{
	*ni = (unsigned)(idx % m->nss.n);
	*sid = (unsigned)(idx / m->nss.n % m->nsid);
	*ki = (unsigned)(idx / m->nss.n / m->nsid);
}

static struct sli_skey skey(const struct model *m, size_t idx)
{
	unsigned ki, sid, ni;

	idx_split(m, idx, &ki, &sid, &ni);
	return (struct sli_skey){
		.hash = m->keys.v[ki].hash,
		.key = m->keys.v[ki].p,
		.key_len = m->keys.v[ki].len,
		.ns = m->nss.v[ni].p,
		.ns_len = (uint16_t)m->nss.v[ni].len,
		.state_id = (uint16_t)sid,
	};
}

static unsigned kg_of(const struct model *m, size_t idx)
{
	unsigned ki, sid, ni;

	idx_split(m, idx, &ki, &sid, &ni);
	return (unsigned)(m->keys.v[ki].hash % m->maxp);
}

/* A random index, namespaced half of the time. */
static size_t pick(const struct model *m)
{
	unsigned ni = below(2) ? 0 : 1 + (unsigned)below(m->nss.n - 1);

	return idx_of(m, (unsigned)below(m->keys.n), (unsigned)below(m->nsid), ni);
}

static void model_put(struct model *m, size_t idx, const void *v, uint32_t len, int64_t expiry)
{
	struct rent *r = &m->r[idx];

	if (r->val == NULL || r->cap < len) {
		free(r->val);
		r->cap = len > MAXVAL ? len : MAXVAL;
		r->val = malloc(r->cap);
		CU_ASSERT_PTR_NOT_NULL_FATAL(r->val);
	}
	memmove(r->val, v, len);
	r->len = len;
	if (!r->present) {
		r->present = true;
		r->expiry = SLI_TTL_NONE;
		m->present++;
		m->kg[kg_of(m, idx)]++;
	}
	if (expiry != SLI_TTL_KEEP)
		r->expiry = expiry;
}

static void model_remove(struct model *m, size_t idx)
{
	struct rent *r = &m->r[idx];

	if (!r->present)
		return;
	r->present = false;
	m->present--;
	m->kg[kg_of(m, idx)]--;
}

static unsigned model_clear(struct model *m, unsigned ki, unsigned sid)
{
	unsigned n = 0;

	for (unsigned ni = 0; ni < m->nss.n; ni++) {
		size_t idx = idx_of(m, ki, sid, ni);

		n += m->r[idx].present;
		model_remove(m, idx);
	}
	return n;
}

static uint32_t random_value(unsigned char *buf, uint32_t max)
{
	uint32_t len = (uint32_t)below(max + 1);

	for (uint32_t i = 0; i < len; i++)
		buf[i] = (unsigned char)rnd();
	return len;
}

/* Does the table's answer for @idx at @now agree with the model? */
static bool same(const struct model *m, size_t idx, const void *v, uint32_t len, int64_t now)
{
	const struct rent *r = &m->r[idx];

	if (!r->present || r->expiry <= now)
		return v == NULL;
	return v != NULL && len == r->len && (len == 0 || memcmp(v, r->val, len) == 0);
}

static unsigned verify_all(struct sli_table *t, const struct model *m, int64_t now)
{
	unsigned bad = 0;

	for (size_t idx = 0; idx < model_size(m); idx++) {
		struct sli_skey k = skey(m, idx);
		uint32_t len = 0;
		const void *v = sli_table_get(t, &k, now, SLI_TTL_KEEP, &len);

		bad += !same(m, idx, v, len, now);
	}
	return bad;
}

/* Partition the table and compare every group with the model. */
static unsigned verify_groups(struct sli_table *t, const struct model *m, unsigned first,
			      unsigned last)
{
	struct sli_table_part *p = NULL;
	unsigned bad = 0;
	size_t total = 0;
	bool *seen = calloc(model_size(m), 1);

	CU_ASSERT_FATAL(seen != NULL);
	CU_ASSERT_EQUAL_FATAL(sli_table_partition(t, &p), 0);
	for (unsigned g = 0; g < m->maxp; g++) {
		const struct sli_entry *const *ents;
		size_t n = sli_table_part_group(p, g, &ents);

		bad += n != (g >= first && g <= last ? m->kg[g] : 0);
		bad += n != sli_table_group_count(t, g);
		for (size_t i = 0; i < n; i++) {
			struct sli_entry_view v;
			int ki, ni;
			size_t idx;

			sli_table_entry(ents[i], &v);
			ki = pool_find(&m->keys, v.key, v.key_len);
			ni = pool_find(&m->nss, v.ns, v.ns_len);
			if (ki < 0 || ni < 0 || v.state_id >= m->nsid || v.key_group != g) {
				bad++;
				continue;
			}
			idx = idx_of(m, (unsigned)ki, v.state_id, (unsigned)ni);
			bad += seen[idx] || kg_of(m, idx) != g || m->r[idx].expiry != v.expiry;
			bad += !same(m, idx, v.value, v.value_len, INT64_MIN);
			seen[idx] = true;
		}
		total += n;
	}
	bad += total != m->present || total != sli_table_count(t);
	sli_table_part_destroy(p);
	free(seen);
	return bad;
}

static struct sli_table *table(const struct sl_allocator *a, unsigned maxp, unsigned first,
			       unsigned last)
{
	struct sli_table *t = NULL;

	CU_ASSERT_EQUAL_FATAL(sli_table_create(a, maxp, first, last, &t), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	return t;
}

static int phase(const struct sli_table *t)
{
	struct sli_table_stats st;

	sli_table_stats(t, &st);
	return st.phase;
}

/* ---------------------------------------------------------------- tests */

/*
 * One random operation on @idx, checked against the model; returns
 * mismatches. Thresholds of put, get, remove and clear out of 100 (the rest
 * are batch lookups): a growing mix, and a draining one.
 */
static const unsigned mix_grow[4] = { 55, 80, 90, 93 };
static const unsigned mix_drain[4] = { 3, 20, 55, 90 };

static unsigned random_op(struct sli_table *t, struct model *m, size_t idx, unsigned r,
			  const unsigned *mix)
{
	unsigned char buf[MAXVAL + 1];
	struct sli_skey k = skey(m, idx);
	uint32_t len = 0;
	const void *v;

	if (r < mix[0]) {
		bool was = m->r[idx].present;

		len = random_value(buf, MAXVAL);
		if (sli_table_put(t, &k, buf, len, SLI_TTL_NONE) != (was ? 0 : 1))
			return 1;
		model_put(m, idx, buf, len, SLI_TTL_NONE);
	} else if (r < mix[1]) {
		v = sli_table_get(t, &k, 0, SLI_TTL_KEEP, &len);
		return !same(m, idx, v, len, 0);
	} else if (r < mix[2]) {
		bool was = m->r[idx].present;

		model_remove(m, idx);
		return sli_table_remove(t, &k) != (was ? 1 : 0);
	} else if (r < mix[3]) {
		unsigned ki, sid, ni;

		idx_split(m, idx, &ki, &sid, &ni);
		return sli_table_clear_key(t, &k) != (int)model_clear(m, ki, sid);
	} else {
		struct sli_skey keys[80];
		size_t ids[80];
		struct sli_lookup out[80];
		unsigned n = 1 + (unsigned)below(80), bad = 0;
		int hits = 0;

		for (unsigned i = 0; i < n; i++) {
			ids[i] = below(4) == 0 ? idx : pick(m); /* duplicates in a batch too */
			keys[i] = skey(m, ids[i]);
			hits += m->r[ids[i]].present;
		}
		bad += sli_table_lookup_batch(t, n, keys, 0, SLI_TTL_KEEP, out) != hits;
		for (unsigned i = 0; i < n; i++)
			bad += !same(m, ids[i], out[i].value, out[i].len, 0);
		return bad;
	}
	return 0;
}

static void test_random_vs_reference(void)
{
	struct model m;
	struct sli_table *t;
	struct sli_table_stats st;
	unsigned bad = 0, maxp = 96;
	size_t max_cap = 0, min_cap_after_max = SIZE_MAX;
	bool seen_phase[3] = { false, false, false };

	model_init(&m, 2500, MAXVAL, 8, 2, maxp);
	t = table(NULL, maxp, 0, maxp - 1);
	for (unsigned op = 0; op < RANDOM_OPS; op++) {
		const unsigned *mix = (op / 125000) % 2 == 0 ? mix_grow : mix_drain;

		bad += random_op(t, &m, pick(&m), (unsigned)below(100), mix);
		sli_table_stats(t, &st);
		seen_phase[st.phase] = true;
		if (st.capacity > max_cap) {
			max_cap = st.capacity;
			min_cap_after_max = SIZE_MAX;
		} else if (st.capacity < min_cap_after_max) {
			min_cap_after_max = st.capacity;
		}
		if (op % 50000 == 49999) {
			CU_ASSERT_EQUAL(sli_table_check(t, khash_cb, NULL), 0);
			CU_ASSERT_EQUAL(verify_groups(t, &m, 0, maxp - 1), 0);
		}
		if (bad != 0) {
			fprintf(stderr, "random: first mismatch at op %u\n", op);
			break;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(sli_table_count(t), m.present);
	CU_ASSERT_EQUAL(verify_all(t, &m, 0), 0);
	CU_ASSERT_EQUAL(sli_table_check(t, khash_cb, NULL), 0);
	/* It grew and shrank, and operations ran in every phase. */
	sli_table_stats(t, &st);
	CU_ASSERT(st.resizes >= 10);
	CU_ASSERT(max_cap >= 32768); /* 8 segments: segments freed while draining */
	CU_ASSERT(min_cap_after_max < max_cap);
	CU_ASSERT(seen_phase[0] && seen_phase[1] && seen_phase[2]);
	sli_table_destroy(t);
	model_free(&m);
}

/* Each put and remove does at most the bounded resize work; counted, not timed. */
static void test_bounded_resize(void)
{
	const unsigned n = 500000;
	struct sli_table *t = table(NULL, 128, 0, 127);
	struct sli_table_stats st;
	size_t over = 0, ops_migrating = 0, ops_zeroing = 0, bad = 0, gets = 0, cap;
	uint64_t v;

	for (uint64_t i = 0; i < n; i++) {
		struct sli_skey k = { .hash = khash(&i, 8), .key = &i, .key_len = 8 };

		v = i * 3;
		bad += sli_table_put(t, &k, &v, 8, SLI_TTL_NONE) != 1;
		sli_table_stats(t, &st);
		over += st.last_op_migrated > SLI_TABLE_MIGRATE_SLOTS ||
			st.last_op_zeroed > SLI_TABLE_ZERO_SLOTS;
		ops_migrating += st.phase == 2;
		ops_zeroing += st.phase == 1;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(over, 0);
	CU_ASSERT_EQUAL(st.max_op_migrated, SLI_TABLE_MIGRATE_SLOTS);
	CU_ASSERT_EQUAL(st.max_op_zeroed, SLI_TABLE_ZERO_SLOTS);
	/* Work was spread: a doubling is cap/64 migrating operations, not one. */
	CU_ASSERT(ops_migrating >= n / 64);
	CU_ASSERT(ops_zeroing >= n / 512);
	/* Reads finish the migration, and find everything meanwhile. */
	for (uint64_t i = 0; phase(t) != 0 || i < n; i++, gets++) {
		uint64_t key = i % n;
		struct sli_skey k = { .hash = khash(&key, 8), .key = &key, .key_len = 8 };
		uint32_t len = 0;
		const uint64_t *p = sli_table_get(t, &k, 0, SLI_TTL_KEEP, &len);

		bad += p == NULL || len != 8 || *p != key * 3;
	}
	CU_ASSERT_EQUAL(bad, 0);
	sli_table_stats(t, &st);
	cap = st.capacity;
	CU_ASSERT_EQUAL(cap, 1u << 20); /* 500k entries at most 3/4 full */
	/* Every slot of every old array was migrated exactly once: 64 + 128 + ... + cap/2. */
	CU_ASSERT_EQUAL(st.total_migrated, cap - 64);
	CU_ASSERT_EQUAL(st.resizes, 14);
	CU_ASSERT_EQUAL(sli_table_check(t, NULL, NULL), 0);
	/* Removing everything shrinks the table with the same bound. */
	for (uint64_t i = 0; i < n; i++) {
		struct sli_skey k = { .hash = khash(&i, 8), .key = &i, .key_len = 8 };

		bad += sli_table_remove(t, &k) != 1;
		sli_table_stats(t, &st);
		over += st.last_op_migrated > SLI_TABLE_MIGRATE_SLOTS ||
			st.last_op_zeroed > SLI_TABLE_ZERO_SLOTS;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(over, 0);
	CU_ASSERT_EQUAL(sli_table_count(t), 0);
	CU_ASSERT(st.capacity < cap);
	CU_ASSERT(st.resizes > 14);
	CU_ASSERT_EQUAL(sli_table_check(t, NULL, NULL), 0);
	sli_table_destroy(t);
}

static void test_key_groups(void)
{
	static const unsigned cases[][3] = { { 128, 10, 41 }, { 100, 0, 99 }, { 1, 0, 0 } };

	for (unsigned c = 0; c < SL_ARRAY_SIZE(cases); c++) {
		unsigned maxp = cases[c][0], first = cases[c][1], last = cases[c][2];
		unsigned char buf[MAXVAL + 1];
		struct model m;
		struct sli_table *t = table(NULL, maxp, first, last);
		unsigned bad = 0, mid_migration = 0;

		model_init(&m, 4000, 64, 5, 2, maxp);
		for (unsigned round = 0; round < 3; round++) {
			for (size_t idx = 0; idx < model_size(&m); idx++) {
				struct sli_skey k = skey(&m, idx);
				unsigned g = kg_of(&m, idx);
				uint32_t len = random_value(buf, 40);
				int rc;

				if (below(3) == 0)
					continue;
				rc = sli_table_put(t, &k, buf, len, SLI_TTL_NONE);
				if (g < first || g > last) {
					bad += rc != -EINVAL; /* not this task's key group */
					continue;
				}
				bad += rc < 0;
				model_put(&m, idx, buf, len, SLI_TTL_NONE);
				/* Partition in the middle of a migration too. */
				if (phase(t) == 2 && mid_migration++ == 100)
					CU_ASSERT_EQUAL(verify_groups(t, &m, first, last), 0);
			}
			CU_ASSERT_EQUAL(verify_groups(t, &m, first, last), 0);
		}
		CU_ASSERT_EQUAL(bad, 0);
		CU_ASSERT(mid_migration > 100);
		CU_ASSERT(m.present > 1000);
		CU_ASSERT_EQUAL(sli_table_group_count(t, last + 1), 0);
		CU_ASSERT_EQUAL(sli_table_check(t, khash_cb, NULL), 0);
		sli_table_destroy(t);
		model_free(&m);
	}
}

static void test_clear_key(void)
{
	struct model m;
	struct sli_table *t = table(NULL, 128, 0, 127);
	struct sli_table_stats st;
	unsigned char v = 7;

	model_init(&m, 50, 20, 6, 3, 128);
	for (size_t idx = 0; idx < model_size(&m); idx++) {
		struct sli_skey k = skey(&m, idx);

		CU_ASSERT_EQUAL(sli_table_put(t, &k, &v, 1, SLI_TTL_NONE), 1);
		model_put(&m, idx, &v, 1, SLI_TTL_NONE);
	}
	sli_table_stats(t, &st);
	CU_ASSERT_EQUAL(st.anchors, 50 * 3); /* one per (key, state) with namespaces */
	for (unsigned ki = 0; ki < 50; ki += 2) {
		struct sli_skey k = skey(&m, idx_of(&m, ki, 1, 3)); /* its namespace is ignored */

		CU_ASSERT_EQUAL(sli_table_clear_key(t, &k), 6);
		CU_ASSERT_EQUAL(sli_table_clear_key(t, &k), 0);
		model_clear(&m, ki, 1);
	}
	/* Half the (key, state 1) pairs lost all their namespaces; nothing else changed. */
	CU_ASSERT_EQUAL(sli_table_count(t), 50 * 3 * 6 - 25 * 6);
	CU_ASSERT_EQUAL(verify_all(t, &m, 0), 0);
	sli_table_stats(t, &st);
	CU_ASSERT_EQUAL(st.anchors, 50 * 3 - 25);
	/* Removing a key's namespaced entries one by one drops its anchor too. */
	for (unsigned ni = 1; ni < 6; ni++) {
		struct sli_skey k = skey(&m, idx_of(&m, 1, 1, ni));

		CU_ASSERT_EQUAL(sli_table_remove(t, &k), 1);
		model_remove(&m, idx_of(&m, 1, 1, ni));
	}
	sli_table_stats(t, &st);
	CU_ASSERT_EQUAL(st.anchors, 50 * 3 - 26);
	CU_ASSERT_EQUAL(
	    sli_table_clear_key(t, &(struct sli_skey){ .hash = 1, .key = "x", .key_len = 1 }), 0);
	CU_ASSERT_EQUAL(verify_all(t, &m, 0), 0);
	CU_ASSERT_EQUAL(sli_table_check(t, khash_cb, NULL), 0);
	sli_table_destroy(t);
	model_free(&m);
}

/* Values grow and shrink across size classes, past the slab, and from the table itself. */
static void test_values(void)
{
	static const uint32_t sizes[] = { 0, 1, 8, 100, 5000, 10, 70000, 300, 0, 4096, 3 };
	struct sli_table *t = table(NULL, 128, 0, 127);
	struct sli_skey k[2] = {
		{ .hash = khash("k", 1), .key = "k", .key_len = 1 },
		{ .hash = khash("k", 1), .key = "k", .key_len = 1, .ns = "w1", .ns_len = 2 },
	};
	unsigned char *buf = malloc(70000);
	const unsigned char *v;
	uint32_t len;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	for (unsigned i = 0; i < SL_ARRAY_SIZE(sizes); i++) {
		for (unsigned j = 0; j < 2; j++) {
			memset(buf, (int)(i * 2 + j + 1), sizes[i]);
			CU_ASSERT_EQUAL(sli_table_put(t, &k[j], buf, sizes[i], SLI_TTL_NONE),
					i == 0);
		}
		for (unsigned j = 0; j < 2; j++) {
			v = sli_table_get(t, &k[j], 0, SLI_TTL_KEEP, &len);
			CU_ASSERT_PTR_NOT_NULL_FATAL(v);
			CU_ASSERT_EQUAL((uintptr_t)v % 8, 0);
			CU_ASSERT_EQUAL_FATAL(len, sizes[i]);
			CU_ASSERT(len == 0 ||
				  (v[0] == i * 2 + j + 1 && v[len - 1] == i * 2 + j + 1));
		}
	}
	/* A value from the table, put back longer (reallocates) and shorter (in place). */
	memset(buf, 9, 2000);
	CU_ASSERT_EQUAL(sli_table_put(t, &k[1], buf, 2000, SLI_TTL_NONE), 0);
	v = sli_table_get(t, &k[1], 0, SLI_TTL_KEEP, &len);
	CU_ASSERT_EQUAL(sli_table_put(t, &k[0], v, len, SLI_TTL_NONE), 0);
	v = sli_table_get(t, &k[0], 0, SLI_TTL_KEEP, &len);
	CU_ASSERT_EQUAL(sli_table_put(t, &k[0], v + 1000, 900, SLI_TTL_NONE), 0);
	v = sli_table_get(t, &k[0], 0, SLI_TTL_KEEP, &len);
	CU_ASSERT(len == 900 && v[0] == 9 && v[899] == 9);
	memset((void *)(uintptr_t)(v + 100), 4, 100); /* then in place, overlapping */
	CU_ASSERT_EQUAL(sli_table_put(t, &k[0], v + 100, 800, SLI_TTL_NONE), 0);
	v = sli_table_get(t, &k[0], 0, SLI_TTL_KEEP, &len);
	CU_ASSERT(len == 800 && v[0] == 4 && v[99] == 4 && v[100] == 9 && v[799] == 9);
	CU_ASSERT_EQUAL(sli_table_count(t), 2);
	CU_ASSERT_EQUAL(sli_table_check(t, khash_cb, NULL), 0);
	sli_table_destroy(t);
	free(buf);
}

/* A batch answers exactly as single gets, in every phase of a resize. */
static void test_lookup_batch(void)
{
	struct sli_table *t = table(NULL, 128, 0, 127);
	uint64_t keys[300];
	struct sli_skey k[300];
	struct sli_lookup out[300];
	bool phases[3] = { false, false, false };
	unsigned bad = 0;

	for (uint64_t i = 0; i < 60000; i++) {
		struct sli_skey pk = { .hash = khash(&i, 8), .key = &i, .key_len = 8 };
		uint64_t v = ~i;
		int p = phase(t);

		bad += sli_table_put(t, &pk, &v, 8, SLI_TTL_NONE) != 1;
		if (i % 97 != 0)
			continue;
		phases[p] = true;
		for (unsigned j = 0; j < 300; j++) {
			keys[j] = below(i + 300); /* a few are absent */
			k[j] = (struct sli_skey){ .hash = khash(&keys[j], 8),
						  .key = &keys[j],
						  .key_len = 8 };
		}
		bad += sli_table_lookup_batch(t, 300, k, 0, SLI_TTL_KEEP, out) < 0;
		for (unsigned j = 0; j < 300; j++) {
			uint32_t len = 0;
			const void *v1 = sli_table_get(t, &k[j], 0, SLI_TTL_KEEP, &len);

			bad += v1 != out[j].value || (v1 != NULL && len != out[j].len);
			bad += (keys[j] <= i) != (v1 != NULL);
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(phases[0] && phases[1] && phases[2]);
	CU_ASSERT_EQUAL(sli_table_lookup_batch(t, 0, NULL, 0, SLI_TTL_KEEP, NULL), 0);
	sli_table_destroy(t);
}

/* Different keys with one hash share a cluster: found by their bytes, removed cleanly. */
static void test_equal_hashes(void)
{
	struct sli_table *t = table(NULL, 128, 0, 127);
	uint32_t keys[300], len;
	struct sli_skey k[300];
	struct sli_lookup out[300];
	const uint32_t *v;
	unsigned bad = 0;

	for (uint32_t i = 0; i < 300; i++) {
		keys[i] = i;
		k[i] = (struct sli_skey){ .hash = 42, .key = &keys[i], .key_len = 4 };
		bad += sli_table_put(t, &k[i], &keys[i], 4, SLI_TTL_NONE) != 1;
	}
	bad += sli_table_lookup_batch(t, 300, k, 0, SLI_TTL_KEEP, out) != 300;
	for (uint32_t i = 0; i < 300; i++)
		bad += out[i].len != 4 || *(const uint32_t *)out[i].value != i;
	for (uint32_t i = 0; i < 300; i += 2)
		bad += sli_table_remove(t, &k[i]) != 1;
	for (uint32_t i = 0; i < 300; i++) {
		v = sli_table_get(t, &k[i], 0, SLI_TTL_KEEP, &len);
		bad += i % 2 ? v == NULL || *v != i : v != NULL;
	}
	bad += sli_table_lookup_batch(t, 300, k, 0, SLI_TTL_KEEP, out) != 150;
	for (uint32_t i = 0; i < 300; i++)
		bad += (out[i].value != NULL) != (i % 2 == 1);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(sli_table_count(t), 150);
	CU_ASSERT_EQUAL(sli_table_group_count(t, 42), 150);
	CU_ASSERT_EQUAL(sli_table_check(t, NULL, NULL), 0);
	sli_table_destroy(t);
}

/* TTL: expired entries are never returned; touch; incremental cleanup within budget. */
static void test_ttl(void)
{
	static const int64_t nows[] = { 0, 1, 100, 250, 500, 999, 1000 };
	unsigned char buf[MAXVAL + 1];
	struct model m;
	struct sli_table *t = table(NULL, 128, 0, 127);
	struct sli_table_stats st;
	unsigned bad = 0, over = 0, calls = 0;
	size_t live = 0;

	model_init(&m, 3000, 30, 4, 2, 128);
	for (size_t idx = 0; idx < model_size(&m); idx++) {
		struct sli_skey k = skey(&m, idx);
		int64_t exp = below(5) == 0 ? SLI_TTL_NONE : 1 + (int64_t)below(1000);
		uint32_t len = random_value(buf, 50);

		CU_ASSERT_EQUAL(sli_table_put(t, &k, buf, len, exp), 1);
		model_put(&m, idx, buf, len, exp);
	}
	for (unsigned i = 0; i < SL_ARRAY_SIZE(nows); i++)
		CU_ASSERT_EQUAL(verify_all(t, &m, nows[i]), 0);
	/* Read-and-write TTL: a get at 500 that touches extends the entry to 2000. */
	for (size_t idx = 0; idx < model_size(&m); idx += 7) {
		struct sli_skey k = skey(&m, idx);
		bool live_at_500 = m.r[idx].expiry > 500;

		bad += (sli_table_get(t, &k, 500, 2000, NULL) != NULL) != live_at_500;
		if (live_at_500)
			m.r[idx].expiry = 2000;
	}
	/* Writes: keep the expiry, or set a new one. */
	for (size_t idx = 3; idx < model_size(&m); idx += 11) {
		struct sli_skey k = skey(&m, idx);
		int64_t exp = idx % 2 ? SLI_TTL_KEEP : 1200;
		uint32_t len = random_value(buf, 50);

		bad += sli_table_put(t, &k, buf, len, exp) != 0;
		model_put(&m, idx, buf, len, exp);
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(verify_all(t, &m, 1100), 0);
	CU_ASSERT_EQUAL(verify_all(t, &m, 1500), 0);
	/* A batch never returns expired entries either. */
	for (size_t base = 0; base + 64 <= model_size(&m); base += 64) {
		struct sli_skey k[64];
		struct sli_lookup out[64];

		for (unsigned j = 0; j < 64; j++)
			k[j] = skey(&m, base + j);
		sli_table_lookup_batch(t, 64, k, 1100, SLI_TTL_KEEP, out);
		for (unsigned j = 0; j < 64; j++)
			bad += !same(&m, base + j, out[j].value, out[j].len, 1100);
	}
	CU_ASSERT_EQUAL(bad, 0);
	for (size_t idx = 0; idx < model_size(&m); idx++)
		live += m.r[idx].expiry > 1500;
	/*
	 * Cleanup at 1500 with a budget of 97 slots per call, while new keys
	 * are inserted (the table resizes under the sweep). Never more than
	 * the budget examined; never an expired entry returned meanwhile.
	 */
	for (uint64_t i = 0; sli_table_count(t) != live + i; i++, calls++) {
		struct sli_skey k = {
			.hash = khash(&i, 8), .key = &i, .key_len = 8, .state_id = 9
		};
		int removed = sli_table_ttl_cleanup(t, 1500, 97);

		sli_table_stats(t, &st);
		over += removed < 0 || removed > 97 || st.last_cleanup_examined > 97;
		bad += sli_table_put(t, &k, &i, 8, SLI_TTL_NONE) != 1;
		if (i % 1000 == 0)
			bad += verify_all(t, &m, 1500);
		if (calls > 100000)
			break;
	}
	CU_ASSERT_EQUAL(over, 0);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(calls < 100000);
	CU_ASSERT_EQUAL(sli_table_ttl_cleanup(t, 1500, 0), 0);
	CU_ASSERT_EQUAL(sli_table_check(t, NULL, NULL), 0);
	/* Expire everything: every anchor goes with its last namespaced entry. */
	while (sli_table_ttl_cleanup(t, INT64_MAX, 1000) > 0 || sli_table_count(t) != 0)
		if (++calls > 200000)
			break;
	sli_table_stats(t, &st);
	CU_ASSERT_EQUAL(sli_table_count(t), 0);
	CU_ASSERT_EQUAL(st.anchors, 0);
	CU_ASSERT_EQUAL(sli_table_check(t, NULL, NULL), 0);
	sli_table_destroy(t);
	model_free(&m);
}

/* An allocator failing at random points: -ENOMEM, nothing changed, table consistent. */
static void test_alloc_failure(void)
{
	const unsigned ops = 150000;
	unsigned char buf[6000];
	struct failing f;
	struct model m;
	struct sli_table *t = NULL;
	struct sli_table_stats st;
	long need;
	unsigned bad = 0, enomem = 0;
	int rc;

	failing_init(&f, -1);
	/* Creation fails cleanly at each of its allocations. */
	for (need = 0;; need++) {
		f.budget = need;
		rc = sli_table_create(&f.a, 128, 0, 127, &t);
		if (rc == 0)
			break;
		CU_ASSERT_EQUAL(rc, -ENOMEM);
		CU_ASSERT_PTR_NULL(t);
		CU_ASSERT_EQUAL(f.live, 0);
	}
	CU_ASSERT(need >= 3);
	model_init(&m, 6000, 40, 4, 2, 128);
	for (unsigned op = 0; op < ops; op++) {
		/* The key range widens as we go, so the table keeps growing. */
		unsigned ki = (unsigned)below(100 + (uint64_t)op * (m.keys.n - 100) / ops);
		size_t idx = idx_of(&m, ki, (unsigned)below(2), (unsigned)below(4));
		struct sli_skey k = skey(&m, idx);
		const bool was = m.r[idx].present;
		uint32_t len, glen = 0;
		const void *v;

		f.budget = below(4) == 0 ? -1 : (long)below(3);
		if (below(2) == 0) {
			/* Every tenth value is big: one allocation each. */
			len =
			    below(10) == 0 ? 4500 + (uint32_t)below(1500) : random_value(buf, 200);
			memset(buf, (int)op, len);
			rc = sli_table_put(t, &k, buf, len, SLI_TTL_NONE);
			if (rc == -ENOMEM) {
				enomem++;
				f.budget = -1;
				v = sli_table_get(t, &k, 0, SLI_TTL_KEEP, &glen);
				bad += !same(&m, idx, v, glen, 0) || m.r[idx].present != was;
			} else {
				bad += rc != !was;
				model_put(&m, idx, buf, len, SLI_TTL_NONE);
			}
		} else {
			bad += random_op(t, &m, idx, 55 + (unsigned)below(45), mix_grow);
		}
		if (op % 5000 == 0) {
			struct sli_table_part *p = NULL;

			rc = sli_table_partition(t, &p);
			bad += rc != 0 && rc != -ENOMEM;
			sli_table_part_destroy(p);
			f.budget = -1;
			bad += sli_table_check(t, khash_cb, NULL) != 0;
		}
		if (bad != 0) {
			fprintf(stderr, "alloc failure: first mismatch at op %u\n", op);
			break;
		}
	}
	f.budget = -1;
	sli_table_stats(t, &st);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(enomem > 1000);
	CU_ASSERT(st.alloc_failures > 10); /* resize steps were postponed, and recovered */
	CU_ASSERT(st.resizes > 5);
	CU_ASSERT_EQUAL(verify_all(t, &m, 0), 0);
	CU_ASSERT_EQUAL(verify_groups(t, &m, 0, 127), 0);
	CU_ASSERT_EQUAL(sli_table_check(t, khash_cb, NULL), 0);
	sli_table_destroy(t);
	CU_ASSERT_EQUAL(f.live, 0);
	model_free(&m);
}

/* Each allocation point of a put, failed on purpose: -ENOMEM and nothing changed. */
static void test_alloc_failure_paths(void)
{
	static unsigned char big[5000], small[16];
	struct sli_skey k = { .hash = 9, .key = "key", .key_len = 3, .ns = "w", .ns_len = 1 };
	struct sli_skey k2 = { .hash = 9, .key = "key", .key_len = 3 };
	struct failing f;
	struct sli_table *t;
	const unsigned char *v;
	uint32_t len;

	failing_init(&f, -1);
	t = table(&f.a, 128, 0, 127);
	memset(big, 1, sizeof(big));
	memset(small, 2, sizeof(small));
	/* The entry (big: its own allocation) fits, its anchor (first slab chunk) does not. */
	f.budget = 1;
	CU_ASSERT_EQUAL(sli_table_put(t, &k, big, sizeof(big), SLI_TTL_NONE), -ENOMEM);
	f.budget = -1;
	CU_ASSERT_EQUAL(sli_table_count(t), 0);
	CU_ASSERT_EQUAL(sli_table_check(t, NULL, NULL), 0); /* no block lost in the slab */
	/* The entry itself does not fit. */
	f.budget = 0;
	CU_ASSERT_EQUAL(sli_table_put(t, &k2, big, sizeof(big), SLI_TTL_NONE), -ENOMEM);
	f.budget = -1;
	CU_ASSERT_EQUAL(sli_table_put(t, &k, small, sizeof(small), SLI_TTL_NONE), 1);
	CU_ASSERT_EQUAL(sli_table_put(t, &k2, small, sizeof(small), SLI_TTL_NONE), 1);
	/* A value that grows past its block: the old value stays. */
	f.budget = 0;
	CU_ASSERT_EQUAL(sli_table_put(t, &k, big, sizeof(big), 77), -ENOMEM);
	f.budget = -1;
	v = sli_table_get(t, &k, 100, SLI_TTL_KEEP, &len);
	CU_ASSERT(v != NULL && len == sizeof(small) && v[0] == 2);
	CU_ASSERT_EQUAL(sli_table_count(t), 2);
	CU_ASSERT_EQUAL(sli_table_check(t, NULL, NULL), 0);
	/* A partition without memory. */
	f.budget = 0;
	CU_ASSERT_EQUAL(sli_table_partition(t, &(struct sli_table_part *){ NULL }), -ENOMEM);
	CU_ASSERT_EQUAL(sli_table_check(t, NULL, NULL), -ENOMEM);
	f.budget = -1;
	sli_table_destroy(t);
	CU_ASSERT_EQUAL(f.live, 0);
}

/* A table that cannot get memory to grow fills to 7/8, refuses, then recovers. */
static void test_full_without_memory(void)
{
	struct failing f;
	struct sli_table *t;
	struct sli_table_stats st;
	uint64_t i, full_at, v = 1;
	int rc = 0;

	failing_init(&f, -1);
	t = table(&f.a, 128, 0, 127);
	/* Entries come from slab chunks allocated up front, so only the resize needs memory. */
	for (i = 0; i < 40; i++) {
		struct sli_skey k = { .hash = khash(&i, 8), .key = &i, .key_len = 8 };

		CU_ASSERT_EQUAL(sli_table_put(t, &k, &v, 8, SLI_TTL_NONE), 1);
	}
	f.budget = 0;
	for (; i < 64; i++) {
		struct sli_skey k = { .hash = khash(&i, 8), .key = &i, .key_len = 8 };

		rc = sli_table_put(t, &k, &v, 8, SLI_TTL_NONE);
		if (rc != 1)
			break;
	}
	full_at = i;
	sli_table_stats(t, &st);
	CU_ASSERT_EQUAL(rc, -ENOMEM);
	CU_ASSERT_EQUAL(full_at, 64 - 64 / 8); /* 7/8 of the 64 initial slots */
	CU_ASSERT_EQUAL(st.phase, 0);
	CU_ASSERT(st.alloc_failures >= 8);
	CU_ASSERT_EQUAL(sli_table_count(t), full_at);
	/* Memory is back: the resize starts and the same put succeeds. */
	f.budget = -1;
	CU_ASSERT_EQUAL(sli_table_check(t, khash_cb, NULL), 0);
	{
		struct sli_skey k = { .hash = khash(&i, 8), .key = &i, .key_len = 8 };

		CU_ASSERT_EQUAL(sli_table_put(t, &k, &v, 8, SLI_TTL_NONE), 1);
	}
	sli_table_stats(t, &st);
	CU_ASSERT_EQUAL(st.phase, 2); /* 128 new slots zeroed in one step: migrating */
	CU_ASSERT_EQUAL(sli_table_count(t), full_at + 1);
	CU_ASSERT_EQUAL(sli_table_check(t, khash_cb, NULL), 0);
	sli_table_destroy(t);
	CU_ASSERT_EQUAL(f.live, 0);
}

static void test_errors(void)
{
	struct sli_table *t = NULL;
	struct sli_skey k = { .hash = 5, .key = "a", .key_len = 1 };
	struct sli_lookup out;
	char v = 0;

	CU_ASSERT_EQUAL(sli_table_create(NULL, 128, 0, 127, NULL), -EINVAL);
	CU_ASSERT_EQUAL(sli_table_create(NULL, 0, 0, 0, &t), -EINVAL);
	CU_ASSERT_EQUAL(sli_table_create(NULL, SLI_TABLE_MAX_PARALLELISM + 1, 0, 0, &t), -EINVAL);
	CU_ASSERT_EQUAL(sli_table_create(NULL, 128, 5, 4, &t), -EINVAL);
	CU_ASSERT_EQUAL(sli_table_create(NULL, 128, 0, 128, &t), -EINVAL);
	CU_ASSERT_PTR_NULL(t);
	t = table(NULL, SLI_TABLE_MAX_PARALLELISM, 0, 127);

	CU_ASSERT_EQUAL(sli_table_put(NULL, &k, &v, 1, SLI_TTL_NONE), -EINVAL);
	CU_ASSERT_EQUAL(sli_table_put(t, NULL, &v, 1, SLI_TTL_NONE), -EINVAL);
	CU_ASSERT_EQUAL(sli_table_put(t, &k, NULL, 1, SLI_TTL_NONE), -EINVAL);
	CU_ASSERT_EQUAL(
	    sli_table_put(t, &(struct sli_skey){ .hash = 5, .key_len = 1 }, &v, 1, SLI_TTL_NONE),
	    -EINVAL);
	CU_ASSERT_EQUAL(
	    sli_table_put(t, &(struct sli_skey){ .hash = 5, .key = "a", .key_len = 1, .ns_len = 3 },
			  &v, 1, SLI_TTL_NONE),
	    -EINVAL);
	/* Key group 200 is another task's. */
	CU_ASSERT_EQUAL(sli_table_put(t,
				      &(struct sli_skey){ .hash = 200, .key = "a", .key_len = 1 },
				      &v, 1, SLI_TTL_NONE),
			-EINVAL);
	/* Sizes are checked before anything is read. */
	CU_ASSERT_EQUAL(
	    sli_table_put(
		t, &(struct sli_skey){ .hash = 5, .key = "a", .key_len = SLI_STATE_KEY_MAX + 1 },
		&v, 1, SLI_TTL_NONE),
	    -E2BIG);
	CU_ASSERT_EQUAL(sli_table_put(t, &k, &v, SLI_STATE_VALUE_MAX + 1, SLI_TTL_NONE), -E2BIG);
	CU_ASSERT_EQUAL(sli_table_count(t), 0);

	CU_ASSERT_EQUAL(sli_table_remove(NULL, &k), -EINVAL);
	CU_ASSERT_EQUAL(sli_table_remove(t, NULL), -EINVAL);
	CU_ASSERT_EQUAL(sli_table_remove(t, &k), 0);
	CU_ASSERT_EQUAL(sli_table_clear_key(NULL, &k), -EINVAL);
	CU_ASSERT_EQUAL(sli_table_clear_key(t, NULL), -EINVAL);
	CU_ASSERT_EQUAL(sli_table_ttl_cleanup(NULL, 0, 10), -EINVAL);
	CU_ASSERT_EQUAL(sli_table_lookup_batch(NULL, 1, &k, 0, SLI_TTL_KEEP, &out), -EINVAL);
	CU_ASSERT_EQUAL(sli_table_lookup_batch(t, 1, NULL, 0, SLI_TTL_KEEP, &out), -EINVAL);
	CU_ASSERT_EQUAL(sli_table_lookup_batch(t, 1, &k, 0, SLI_TTL_KEEP, NULL), -EINVAL);
	CU_ASSERT_EQUAL(sli_table_partition(NULL, &(struct sli_table_part *){ NULL }), -EINVAL);
	CU_ASSERT_EQUAL(sli_table_partition(t, NULL), -EINVAL);
	CU_ASSERT_EQUAL(sli_table_check(NULL, NULL, NULL), -EINVAL);

	/* An empty key, namespace and value are fine. */
	CU_ASSERT_EQUAL(sli_table_put(t, &(struct sli_skey){ .hash = 7 }, NULL, 0, SLI_TTL_NONE),
			1);
	CU_ASSERT_PTR_NOT_NULL(
	    sli_table_get(t, &(struct sli_skey){ .hash = 7 }, 0, SLI_TTL_KEEP, NULL));
	CU_ASSERT_EQUAL(sli_table_group_count(t, 7), 1);
	CU_ASSERT_EQUAL(sli_table_group_count(t, 128), 0);

	sli_table_destroy(NULL);
	sli_table_part_destroy(NULL);
	sli_table_destroy(t);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "1M random operations vs a reference", test_random_vs_reference },
		{ "resize work per operation is bounded", test_bounded_resize },
		{ "iteration by key group", test_key_groups },
		{ "clear() removes every namespace of a key", test_clear_key },
		{ "values grow, shrink and alias", test_values },
		{ "lookup_batch equals get in every resize phase", test_lookup_batch },
		{ "keys with equal hashes", test_equal_hashes },
		{ "TTL: expiry, touch, bounded cleanup", test_ttl },
		{ "allocation failures leave the table consistent", test_alloc_failure },
		{ "each allocation failure point of a put", test_alloc_failure_paths },
		{ "a table that cannot grow refuses, then recovers", test_full_without_memory },
		{ "documented errors", test_errors },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("state-table", tests);
}
