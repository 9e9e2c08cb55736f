/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_state_api.c — the keyed-state API (sl_state.h, state/api.c)
 * through real jobs: a tape source (keyed_tape.h) -> key_by -> a keyed
 * process function using state -> a collecting sink.
 *
 * Expected values come from references written here: plain per-key
 * models of each state kind (strings, arrays, sorted maps, sums) fed the
 * same input in the same per-key order, or hand-worked timelines for the
 * TTL rules. Processing time is the test's clock, moved by the source
 * and gated on the keyed function's acknowledgement, on one worker, so
 * each element sees exactly the clock of its record.
 *
 * Threads: keyed functions run on workers; what they record is under a
 * mutex or collected by the sink, and read after sl_job_run() returned.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sluice/sluice.h>

#include "keyed_tape.h"
#include "sl_test.h"
#include "sli_core.h"
#include "sli_state_api.h"

static char errbuf[512];

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

#define FNV0 0xcbf29ce484222325ull

static int64_t ctx_key(struct sl_ctx *c)
{
	int64_t k;

	memcpy(&k, sl_ctx_key(c)->ptr, sizeof(k));
	return k;
}

static struct sl_job *new_job(unsigned p, unsigned batch, unsigned workers)
{
	struct sl_job *job;
	char buf[32];

	CU_ASSERT_FATAL(sl_job_create("state", &job) == 0);
	snprintf(buf, sizeof(buf), "%u", p);
	CU_ASSERT_FATAL(sl_job_set(job, "parallelism", buf, errbuf, sizeof(errbuf)) == 0);
	snprintf(buf, sizeof(buf), "%u", batch);
	CU_ASSERT_FATAL(sl_job_set(job, "batch-size", buf, errbuf, sizeof(errbuf)) == 0);
	if (workers) {
		snprintf(buf, sizeof(buf), "%u", workers);
		CU_ASSERT_FATAL(sl_job_set(job, "workers", buf, errbuf, sizeof(errbuf)) == 0);
	}
	return job;
}

/* Build tape -> key_by -> keyed process @kp -> sink; declare @n states; run; return rc. */
static int run_job(unsigned p, unsigned batch, unsigned workers, const struct tape *t,
		   int64_t bound, const struct sl_keyed_process *kp, const struct sl_state_desc *d,
		   int *ids, unsigned n, const struct sl_platform *pf, struct kcoll *out)
{
	struct sl_job *job = new_job(p, batch, workers);
	struct sl_stream *s = sl_keyed_process(kt_source(job, t, bound), "kp", kp, &kout_type);
	int rc;

	for (unsigned i = 0; i < n; i++) {
		ids[i] = sl_state_declare(s, &d[i]);
		CU_ASSERT_EQUAL(ids[i], (int)i);
	}
	sl_sink(s, "out", &kc_ops, out);
	rc = sl_job_run(job, pf, errbuf, sizeof(errbuf));
	if (rc != 0)
		fprintf(stderr, "job failed: %s\n", errbuf);
	sl_job_destroy(job);
	return rc;
}

/* Compare collected outputs with @want (both sorted). */
static void expect_outputs(struct kcoll *out, struct kout *want, size_t n, const char *what)
{
	size_t bad = 0;

	qsort(out->recs, out->n, sizeof(*out->recs), cmp_kout);
	qsort(want, n, sizeof(*want), cmp_kout);
	CU_ASSERT_EQUAL(out->n, n);
	for (size_t i = 0; i < n && i < out->n; i++)
		if (memcmp(&out->recs[i], &want[i], sizeof(want[i])) != 0 && bad++ == 0)
			fprintf(stderr,
				"%s #%zu: got {%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
				"} want {%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "}\n",
				what, i, out->recs[i].key, out->recs[i].a, out->recs[i].b,
				out->recs[i].c, want[i].key, want[i].a, want[i].b, want[i].c);
	CU_ASSERT_EQUAL(bad, 0);
}

/* ------------------------------------------------ value: lengths, clear */

enum { NREC = 700, NKEYS = 11 };
static struct trec tape_recs[NREC];
static int ids[8];

static void make_tape(void)
{
	for (int i = 0; i < NREC; i++)
		tape_recs[i] =
		    (struct trec){ (int64_t)(rnd() % NKEYS), (int64_t)(rnd() % 1000), i, 0 };
}

/*
 * Value: append one byte ('a' + val % 26) to the key's string, or clear
 * it when val % 13 == 0. Emits {key, length, hash of the bytes, ts}.
 */
static int value_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
			 struct sl_collector *out, void *arg)
{
	const struct kin *e = in;
	char buf[NREC + 1];
	const void *v;
	uint32_t len = 0;
	struct kout o;
	int rc;

	if (e->val % 13 == 0) {
		rc = sl_state_clear(c, ids[0]);
		if (rc < 0)
			return rc;
	} else {
		rc = sl_value_get(c, ids[0], &v, &len);
		if (rc < 0 || len >= sizeof(buf))
			return rc < 0 ? rc : -EOVERFLOW;
		if (rc == 1)
			memcpy(buf, v, len);
		buf[len++] = (char)('a' + e->val % 26);
		rc = sl_value_put(c, ids[0], buf, len);
		if (rc < 0)
			return rc;
	}
	rc = sl_value_get(c, ids[0], &v, &len);
	if (rc < 0)
		return rc;
	o = (struct kout){ ctx_key(c), rc ? len : 0, (int64_t)(rc ? fnv(v, len, FNV0) : 0), ts };
	return sl_emit(out, &o, ts, NULL);
}

static void test_value_state(void)
{
	static const struct sl_state_desc d[] = { { .name = "str", .kind = SL_STATE_VALUE } };
	static const struct sl_keyed_process kp = { value_element, NULL, NULL };
	static struct kout want[NREC];
	static char model[NKEYS][NREC];
	static size_t mlen[NKEYS];
	static const unsigned ps[] = { 1, 2, 3 }, batches[] = { 3, 64, 1 };

	make_tape();
	memset(mlen, 0, sizeof(mlen));
	for (int i = 0; i < NREC; i++) {
		const struct trec *r = &tape_recs[i];

		if (r->val % 13 == 0)
			mlen[r->key] = 0;
		else
			model[r->key][mlen[r->key]++] = (char)('a' + r->val % 26);
		want[i] = (struct kout){
			r->key, (int64_t)mlen[r->key],
			mlen[r->key] ? (int64_t)fnv(model[r->key], mlen[r->key], FNV0) : 0, r->ts
		};
	}
	for (size_t k = 0; k < SL_ARRAY_SIZE(ps); k++) {
		struct tape t = { tape_recs, NREC, false, false, 0, 5 };
		struct kcoll out;

		kcoll_init(&out);
		CU_ASSERT_FATAL(run_job(ps[k], batches[k], 0, &t, -1, &kp, d, ids, 1, NULL, &out) ==
				0);
		expect_outputs(&out, want, NREC, "value");
		kcoll_fini(&out);
	}
}

/* ------------------------------------------------------------------ list */

/* The list model of one key. */
struct mlist {
	char item[64][8];
	uint32_t len[64];
	unsigned n;
};

static uint64_t mlist_hash(const struct mlist *l)
{
	uint64_t h = FNV0;

	for (unsigned i = 0; i < l->n; i++) {
		h = fnv(&l->len[i], sizeof(l->len[i]), h);
		h = fnv(l->item[i], l->len[i], h);
	}
	return h;
}

/*
 * List: val % 17 == 0 clears; val % 9 == 0 replaces the list by its
 * items of even length, reversed (update); else appends an item of val
 * % 5 bytes (0..4), each (char)val. Emits {key, count, hash, ts}.
 */
static int list_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
			struct sl_collector *out, void *arg)
{
	const struct kin *e = in;
	struct sl_list_iter it;
	struct sl_bytes keep[64];
	char copy[64][8];
	const void *v;
	uint32_t len;
	unsigned n = 0;
	uint64_t h = FNV0;
	struct kout o;
	int rc;

	if (e->val % 17 == 0) {
		if ((rc = sl_state_clear(c, ids[0])) < 0)
			return rc;
	} else if (e->val % 9 == 0) {
		rc = sl_list_get(c, ids[0], &it);
		if (rc < 0)
			return rc;
		while (sl_list_next(&it, &v, &len))
			if (len % 2 == 0 && n < 64) {
				memcpy(copy[n], v, len);
				keep[n] = (struct sl_bytes){ copy[n], len };
				n++;
			}
		for (unsigned i = 0; i < n / 2; i++) {
			struct sl_bytes x = keep[i];

			keep[i] = keep[n - 1 - i];
			keep[n - 1 - i] = x;
		}
		if ((rc = sl_list_update(c, ids[0], keep, n)) < 0)
			return rc;
	} else {
		char b[8];

		memset(b, (char)e->val, sizeof(b));
		if ((rc = sl_list_add(c, ids[0], b, (uint32_t)(e->val % 5))) < 0)
			return rc;
	}
	n = 0;
	rc = sl_list_get(c, ids[0], &it);
	if (rc < 0)
		return rc;
	while (sl_list_next(&it, &v, &len)) {
		h = fnv(&len, sizeof(len), h);
		h = fnv(v, len, h);
		n++;
	}
	o = (struct kout){ ctx_key(c), n, (int64_t)h, ts };
	return sl_emit(out, &o, ts, NULL);
}

static void test_list_state(void)
{
	static const struct sl_state_desc d[] = { { .name = "items", .kind = SL_STATE_LIST } };
	static const struct sl_keyed_process kp = { list_element, NULL, NULL };
	static struct kout want[NREC];
	static struct mlist m[NKEYS];
	static const unsigned ps[] = { 1, 3 };

	make_tape();
	memset(m, 0, sizeof(m));
	for (int i = 0; i < NREC; i++) {
		const struct trec *r = &tape_recs[i];
		struct mlist *l = &m[r->key];

		if (r->val % 17 == 0) {
			l->n = 0;
		} else if (r->val % 9 == 0) {
			struct mlist nl = { .n = 0 };

			for (unsigned j = l->n; j-- > 0;)
				if (l->len[j] % 2 == 0) {
					memcpy(nl.item[nl.n], l->item[j], l->len[j]);
					nl.len[nl.n++] = l->len[j];
				}
			*l = nl;
		} else if (l->n < 64) {
			l->len[l->n] = (uint32_t)(r->val % 5);
			memset(l->item[l->n], (char)r->val, 8);
			l->n++;
		}
		want[i] = (struct kout){ r->key, l->n, (int64_t)mlist_hash(l), r->ts };
	}
	/* Lists stay under 64 items: the model would stop appending otherwise. */
	for (int k = 0; k < NKEYS; k++)
		CU_ASSERT(m[k].n < 64);
	for (size_t k = 0; k < SL_ARRAY_SIZE(ps); k++) {
		struct tape t = { tape_recs, NREC, false, false, 0, 2 };
		struct kcoll out;

		kcoll_init(&out);
		CU_ASSERT_FATAL(run_job(ps[k], 16, 0, &t, -1, &kp, d, ids, 1, NULL, &out) == 0);
		expect_outputs(&out, want, NREC, "list");
		kcoll_fini(&out);
	}
}

/* ------------------------------------------------------------------- map */

/* Map model of one key: user keys "k" x len (len 0..5) -> an int64 value, or absent (-1). */
struct mmap {
	int64_t v[6];
};

/*
 * Map: user key = 'k' repeated val % 6 times (lengths 0..5, so byte
 * order is length order); op = (val / 6) % 4: put (value val), remove,
 * get, contains. Emits {key, the op's result, hash of the whole map
 * iterated in order, ts}; results: put 1 added / 0 replaced, remove 1/0,
 * get the value or -1, contains 1/0.
 */
static int map_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
		       struct sl_collector *out, void *arg)
{
	const struct kin *e = in;
	static const char kk[] = "kkkkk";
	uint32_t klen = (uint32_t)(e->val % 6), vl, kl;
	struct sl_map_iter it;
	const void *v, *k;
	int64_t res, x;
	uint64_t h = FNV0;
	struct kout o;
	int rc;

	switch ((e->val / 6) % 4) {
	case 0:
		rc = sl_map_put(c, ids[0], kk, klen, &e->val, sizeof(e->val));
		res = rc;
		break;
	case 1:
		rc = sl_map_remove(c, ids[0], kk, klen);
		res = rc;
		break;
	case 2:
		rc = sl_map_get(c, ids[0], kk, klen, &v, &vl);
		res = -1;
		if (rc == 1 && vl == sizeof(x))
			memcpy(&res, v, sizeof(res));
		break;
	default:
		rc = sl_map_contains(c, ids[0], kk, klen);
		res = rc;
		break;
	}
	if (rc < 0)
		return rc;
	rc = sl_map_iterate(c, ids[0], &it);
	if (rc < 0)
		return rc;
	while (sl_map_next(&it, &k, &kl, &v, &vl)) {
		h = fnv(&kl, sizeof(kl), h);
		h = fnv(k, kl, h);
		h = fnv(v, vl, h);
	}
	o = (struct kout){ ctx_key(c), res, (int64_t)h, ts };
	return sl_emit(out, &o, ts, NULL);
}

static void test_map_state(void)
{
	static const struct sl_state_desc d[] = { { .name = "m", .kind = SL_STATE_MAP } };
	static const struct sl_keyed_process kp = { map_element, NULL, NULL };
	static struct kout want[NREC];
	static struct mmap m[NKEYS];
	static const unsigned ps[] = { 1, 2 };

	make_tape();
	for (int k = 0; k < NKEYS; k++)
		for (int j = 0; j < 6; j++)
			m[k].v[j] = -1;
	for (int i = 0; i < NREC; i++) {
		const struct trec *r = &tape_recs[i];
		int64_t *slot = &m[r->key].v[r->val % 6], res;
		uint64_t h = FNV0;

		switch ((r->val / 6) % 4) {
		case 0:
			res = *slot < 0;
			*slot = r->val;
			break;
		case 1:
			res = *slot >= 0;
			*slot = -1;
			break;
		case 2:
			res = *slot;
			break;
		default:
			res = *slot >= 0;
			break;
		}
		/* Iteration order: by key bytes, i.e. by length here. */
		for (uint32_t j = 0; j < 6; j++) {
			uint32_t vl = sizeof(int64_t);

			if (m[r->key].v[j] < 0)
				continue;
			h = fnv(&j, sizeof(j), h);
			h = fnv("kkkkk", j, h);
			h = fnv(&m[r->key].v[j], vl, h);
		}
		want[i] = (struct kout){ r->key, res, (int64_t)h, r->ts };
	}
	for (size_t k = 0; k < SL_ARRAY_SIZE(ps); k++) {
		struct tape t = { tape_recs, NREC, false, false, 0, 3 };
		struct kcoll out;

		kcoll_init(&out);
		CU_ASSERT_FATAL(run_job(ps[k], 32, 0, &t, -1, &kp, d, ids, 1, NULL, &out) == 0);
		expect_outputs(&out, want, NREC, "map");
		kcoll_fini(&out);
	}
}

/* --------------------------- map state, many user keys, memory budget */

/*
 * Map state of MB_KEYS keys x up to MB_U user keys (8-byte user keys,
 * values of 8..40 bytes) with state-memory 256K per subtask and the
 * POSIX engine, at parallelism 2. Each record puts user key val % MB_U
 * (removes it when val % 7 == 0), then gets user key (val / MB_U) %
 * MB_U and counts the map's items by iterating; it emits {key, hash of
 * the value got or -1, item count, ts}, compared with a reference model
 * computed here. The API keeps a map as one table entry per (state, key,
 * namespace), so a key's map moves to disk and back as one record.
 * Memory: the largest resident figure any subtask reported stays within
 * the budget plus one 64 KiB slot segment and 8 KiB (one map entry
 * brought back by a get, and rounding); entries really went to disk and
 * came back.
 */
enum { MB_KEYS = 3000, MB_U = 32, MB_REC = 60000, MB_BUDGET = 256 << 10 };

static pthread_mutex_t mb_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sli_state_api_stats mb_seen[2];
static size_t mb_max_resident;

static uint32_t mb_value(int64_t val, unsigned char v[40])
{
	uint32_t len = 8 + (uint32_t)(val % 33);

	for (uint32_t i = 0; i < len; i++)
		v[i] = (unsigned char)((uint64_t)val >> (i % 8 * 8)) ^ (unsigned char)(i * 31);
	return len;
}

static int mbig_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
			struct sl_collector *out, void *arg)
{
	const struct kin *e = in;
	int64_t u = e->val % MB_U, q = (e->val / MB_U) % MB_U, res = -1, cnt = 0;
	unsigned char v[40];
	uint32_t vl = mb_value(e->val, v), kl;
	struct sli_state_api_stats st;
	struct sl_map_iter it;
	const void *gv, *k;
	struct kout o;
	unsigned sub = sl_ctx_info(c)->index;
	int rc;

	rc = e->val % 7 == 0 ? sl_map_remove(c, ids[0], &u, sizeof(u))
			     : sl_map_put(c, ids[0], &u, sizeof(u), v, vl);
	if (rc < 0 || (rc = sl_map_get(c, ids[0], &q, sizeof(q), &gv, &vl)) < 0)
		return rc;
	if (rc == 1)
		res = (int64_t)(fnv(gv, vl, FNV0) >> 1);
	if ((rc = sl_map_iterate(c, ids[0], &it)) < 0)
		return rc;
	while (sl_map_next(&it, &k, &kl, &gv, &vl))
		cnt++;
	if (sub < 2 && sli_state_api_stats(c, &st) == 0) {
		pthread_mutex_lock(&mb_mu);
		if (st.resident > mb_max_resident)
			mb_max_resident = st.resident;
		if (st.evictions >= mb_seen[sub].evictions)
			mb_seen[sub] = st;
		pthread_mutex_unlock(&mb_mu);
	}
	o = (struct kout){ e->key, res, cnt, ts };
	return sl_emit(out, &o, ts, NULL);
}

static void test_map_state_budget(void)
{
	static const struct sl_state_desc d[] = { { .name = "m", .kind = SL_STATE_MAP } };
	static const struct sl_keyed_process kp = { mbig_element, NULL, NULL };
	static struct trec recs[MB_REC];
	static struct kout want[MB_REC];
	static int64_t model[MB_KEYS][MB_U];
	struct tape t = { recs, MB_REC, false, false, 0, 64 };
	char dir[64], budget[32];
	struct kcoll out;
	struct sl_job *job;
	struct sl_stream *s;

	for (int k = 0; k < MB_KEYS; k++)
		for (int u = 0; u < MB_U; u++)
			model[k][u] = -1;
	for (int i = 0; i < MB_REC; i++) {
		int64_t key = (int64_t)(rnd() % MB_KEYS), val = (int64_t)(rnd() % 1000000);
		int64_t res = -1, cnt = 0, q = (val / MB_U) % MB_U;
		unsigned char v[40];

		recs[i] = (struct trec){ key, val, i, 0 };
		model[key][val % MB_U] = val % 7 == 0 ? -1 : val;
		if (model[key][q] >= 0)
			res = (int64_t)(fnv(v, mb_value(model[key][q], v), FNV0) >> 1);
		for (int u = 0; u < MB_U; u++)
			cnt += model[key][u] >= 0;
		want[i] = (struct kout){ key, res, cnt, i };
	}
	snprintf(dir, sizeof(dir), "/tmp/sluice-state-api-XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(budget, sizeof(budget), "%u", (unsigned)MB_BUDGET);
	job = new_job(2, 32, 0);
	CU_ASSERT_FATAL(sl_job_set(job, "state-memory", budget, errbuf, sizeof(errbuf)) == 0);
	CU_ASSERT_FATAL(sl_job_set(job, "state-io", "posix", errbuf, sizeof(errbuf)) == 0);
	CU_ASSERT_FATAL(sl_job_set(job, "state-dir", dir, errbuf, sizeof(errbuf)) == 0);
	s = sl_keyed_process(kt_source(job, &t, -1), "kp", &kp, &kout_type);
	ids[0] = sl_state_declare(s, &d[0]);
	CU_ASSERT_EQUAL(ids[0], 0);
	kcoll_init(&out);
	sl_sink(s, "out", &kc_ops, &out);
	CU_ASSERT_EQUAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
	sl_job_destroy(job);
	expect_outputs(&out, want, MB_REC, "map under a budget");
	kcoll_fini(&out);
	rmdir(dir);
	printf("  (max resident %zu B for a budget of %u B; subtask 0: %zu spilled, %llu "
	       "evictions, %llu reloads; subtask 1: %zu spilled)\n",
	       mb_max_resident, (unsigned)MB_BUDGET, mb_seen[0].spilled,
	       (unsigned long long)mb_seen[0].evictions, (unsigned long long)mb_seen[0].reloads,
	       mb_seen[1].spilled);
	CU_ASSERT(mb_max_resident > 0 && mb_max_resident <= MB_BUDGET + (64u << 10) + (8u << 10));
	for (int i = 0; i < 2; i++) {
		CU_ASSERT(mb_seen[i].spilled > MB_KEYS / 4);
		CU_ASSERT(mb_seen[i].evictions > 0 && mb_seen[i].reloads > 0);
		CU_ASSERT_STRING_EQUAL(mb_seen[i].engine != NULL ? mb_seen[i].engine : "", "posix");
	}
}

/* --------------------------------------------- reducing, aggregating */

static int max_reduce(void *acc, const void *in, void *arg)
{
	int64_t a, b;

	memcpy(&a, acc, sizeof(a));
	memcpy(&b, in, sizeof(b));
	if (b > a)
		memcpy(acc, &b, sizeof(b));
	return 0;
}

struct avg_acc {
	int64_t sum, count;
};

static void avg_create(void *acc, void *arg)
{
	struct avg_acc *a = acc;

	a->sum = 0;
	a->count = 0;
}

static int avg_add(void *acc, const void *in, uint32_t len, void *arg)
{
	struct avg_acc *a = acc;
	int64_t v;

	if (len != sizeof(v))
		return -EINVAL;
	memcpy(&v, in, sizeof(v));
	a->sum += v;
	a->count++;
	return 0;
}

static int avg_result(const void *acc, void *out, void *arg)
{
	const struct avg_acc *a = acc;
	int64_t r = a->count ? a->sum * 1000 / a->count : 0;

	memcpy(out, &r, sizeof(r));
	return 0;
}

/* Reducing (max of val) and aggregating (1000 * mean of val); val % 50 == 0 clears both. */
static int fold_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
			struct sl_collector *out, void *arg)
{
	const struct kin *e = in;
	int64_t mx = -1, avg = -1;
	struct kout o;
	int rc;

	if (e->val % 50 == 0) {
		if ((rc = sl_state_clear(c, ids[0])) < 0 || (rc = sl_state_clear(c, ids[1])) < 0)
			return rc;
	} else {
		if ((rc = sl_reducing_add(c, ids[0], &e->val)) < 0 ||
		    (rc = sl_aggregating_add(c, ids[1], &e->val, sizeof(e->val))) < 0)
			return rc;
	}
	if ((rc = sl_reducing_get(c, ids[0], &mx)) < 0 ||
	    (rc = sl_aggregating_get(c, ids[1], &avg)) < 0)
		return rc;
	o = (struct kout){ ctx_key(c), mx, avg, ts };
	return sl_emit(out, &o, ts, NULL);
}

static void test_reducing_aggregating(void)
{
	static const struct sl_state_desc d[] = {
		{ .name = "max", .kind = SL_STATE_REDUCING, .value_size = 8, .reduce = max_reduce },
		{ .name = "avg",
		  .kind = SL_STATE_AGGREGATING,
		  .agg = { sizeof(struct avg_acc), sizeof(int64_t), avg_create, avg_add, NULL,
			   avg_result } },
	};
	static const struct sl_keyed_process kp = { fold_element, NULL, NULL };
	static struct kout want[NREC];
	int64_t mx[NKEYS], sum[NKEYS], cnt[NKEYS];

	make_tape();
	for (int k = 0; k < NKEYS; k++)
		mx[k] = -1, sum[k] = cnt[k] = 0;
	for (int i = 0; i < NREC; i++) {
		const struct trec *r = &tape_recs[i];

		if (r->val % 50 == 0) {
			mx[r->key] = -1;
			sum[r->key] = cnt[r->key] = 0;
		} else {
			mx[r->key] = r->val > mx[r->key] ? r->val : mx[r->key];
			sum[r->key] += r->val;
			cnt[r->key]++;
		}
		want[i] =
		    (struct kout){ r->key, mx[r->key],
				   cnt[r->key] ? sum[r->key] * 1000 / cnt[r->key] : -1, r->ts };
	}
	for (unsigned p = 1; p <= 3; p += 2) {
		struct tape t = { tape_recs, NREC, false, false, 0, 4 };
		struct kcoll out;

		kcoll_init(&out);
		CU_ASSERT_FATAL(run_job(p, 8, 0, &t, -1, &kp, d, ids, 2, NULL, &out) == 0);
		expect_outputs(&out, want, NREC, "fold");
		kcoll_fini(&out);
	}
}

/* ------------------------------------------------------------ key groups */

/* A count per key; emits {key, subtask index, count, ts}. */
static int count_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
			 struct sl_collector *out, void *arg)
{
	const void *v;
	uint32_t len;
	int64_t n = 0;
	struct kout o;
	int rc = sl_value_get(c, ids[0], &v, &len);

	if (rc < 0)
		return rc;
	if (rc == 1 && len == sizeof(n))
		memcpy(&n, v, sizeof(n));
	n++;
	if ((rc = sl_value_put(c, ids[0], &n, sizeof(n))) < 0)
		return rc;
	o = (struct kout){ ctx_key(c), sl_ctx_info(c)->index, n, ts };
	return sl_emit(out, &o, ts, NULL);
}

static void test_key_groups(void)
{
	enum { KEYS = 200, N = 2000 };
	static struct trec tp[N];
	static const struct sl_state_desc d[] = { { .name = "n", .kind = SL_STATE_VALUE } };
	static const struct sl_keyed_process kp = { count_element, NULL, NULL };

	for (int i = 0; i < N; i++)
		tp[i] = (struct trec){ (int64_t)(rnd() % KEYS), 0, i, 0 };
	for (unsigned p = 1; p <= 3; p++) {
		struct tape t = { tp, N, false, false, 0, 7 };
		unsigned maxp = sli_default_max_parallelism(p);
		int64_t count[KEYS] = { 0 }, seen[KEYS] = { 0 };
		struct kcoll out;
		size_t bad = 0;

		kcoll_init(&out);
		CU_ASSERT_FATAL(run_job(p, 64, 0, &t, -1, &kp, d, ids, 1, NULL, &out) == 0);
		for (int i = 0; i < N; i++)
			count[tp[i].key]++;
		CU_ASSERT_EQUAL(out.n, N);
		for (size_t i = 0; i < out.n; i++) {
			const struct kout *o = &out.recs[i];
			uint64_t h = sli_hash64(&o->key, sizeof(o->key), 0);
			/* Flink's rule: key group = hash % maxp, owner = kg * p / maxp. */
			int64_t owner = (int64_t)((h % maxp) * p / maxp);

			bad += o->a != owner;
			if (o->b > seen[o->key])
				seen[o->key] = o->b;
		}
		CU_ASSERT_EQUAL(bad, 0);
		/* All of a key's state in one place: its count reaches its number of elements. */
		for (int k = 0; k < KEYS; k++)
			CU_ASSERT_EQUAL(seen[k], count[k]);
		kcoll_fini(&out);
	}
}

/* ------------------------------------------------ TTL, processing time */

enum { S_CW, S_RW, S_LIST, S_MAP, S_NONE };

/*
 * val 0: write (value := clock in CW, RW and no-TTL values; list add;
 * map put "a"), val 2: the same plus map put "b", val 1: read. Emits
 * {key, found bits (1 CW, 2 RW, 4 no TTL, 8 map "a", 16 map "b"), live
 * list items, clock}.
 */
static int ttl_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
		       struct sl_collector *out, void *arg)
{
	const struct kin *e = in;
	int64_t now = sl_ctx_current_processing_time(c);
	int64_t bits = 0, items = 0;
	struct sl_list_iter it;
	struct kout o;
	int rc = 0;

	if (e->val == 0 || e->val == 2) {
		rc |= sl_value_put(c, ids[S_CW], &now, sizeof(now));
		rc |= sl_value_put(c, ids[S_RW], &now, sizeof(now));
		rc |= sl_value_put(c, ids[S_NONE], &now, sizeof(now));
		rc |= sl_list_add(c, ids[S_LIST], &now, sizeof(now));
		rc |= sl_map_put(c, ids[S_MAP], "a", 1, &now, sizeof(now)) < 0 ? -1 : 0;
		if (e->val == 2)
			rc |= sl_map_put(c, ids[S_MAP], "b", 1, &now, sizeof(now)) < 0 ? -1 : 0;
		kt_ack();
		return rc < 0 ? -EIO : 0;
	}
	bits |= sl_value_get(c, ids[S_CW], NULL, NULL) == 1 ? 1 : 0;
	bits |= sl_value_get(c, ids[S_RW], NULL, NULL) == 1 ? 2 : 0;
	bits |= sl_value_get(c, ids[S_NONE], NULL, NULL) == 1 ? 4 : 0;
	bits |= sl_map_get(c, ids[S_MAP], "a", 1, NULL, NULL) == 1 ? 8 : 0;
	bits |= sl_map_contains(c, ids[S_MAP], "b", 1) == 1 ? 16 : 0;
	if (sl_list_get(c, ids[S_LIST], &it) == 1)
		while (sl_list_next(&it, NULL, NULL))
			items++;
	o = (struct kout){ ctx_key(c), bits, items, now };
	kt_ack();
	return sl_emit(out, &o, ts, NULL);
}

static void test_ttl_processing_time(void)
{
	const struct sl_state_ttl cw = { 100, SL_TTL_ON_CREATE_AND_WRITE, SL_TTL_PROCESSING_TIME };
	const struct sl_state_ttl rw = { 100, SL_TTL_ON_READ_AND_WRITE, SL_TTL_PROCESSING_TIME };
	const struct sl_state_desc d[] = {
		[S_CW] = { .name = "cw", .kind = SL_STATE_VALUE, .ttl = cw },
		[S_RW] = { .name = "rw", .kind = SL_STATE_VALUE, .ttl = rw },
		[S_LIST] = { .name = "list", .kind = SL_STATE_LIST, .ttl = cw },
		[S_MAP] = { .name = "map", .kind = SL_STATE_MAP, .ttl = rw },
		[S_NONE] = { .name = "none", .kind = SL_STATE_VALUE },
	};
	static const struct sl_keyed_process kp = { ttl_element, NULL, NULL };
	/* (key, val, ts, clock); TTL 100 everywhere. */
	static const struct trec tp[] = {
		{ 1, 2, 0, 0 },	   /* write all, map a and b: expire at 100 */
		{ 2, 0, 0, 0 },	   /* key 2 written once, read at the end */
		{ 1, 1, 0, 60 },   /* read */
		{ 1, 1, 0, 120 },  /* read */
		{ 1, 0, 0, 130 },  /* write */
		{ 1, 1, 0, 219 },  /* read */
		{ 1, 1, 0, 318 },  /* read */
		{ 1, 1, 0, 1000 }, /* read */
		{ 2, 1, 0, 1000 }, /* read */
	};
	/*
	 * key 1 by hand:
	 *  60: CW 100 > 60 found; RW found, now expires 160; no-TTL found;
	 *      map a found (RW: 160), b found (RW: 160); list [0 exp 100]: 1 item
	 * 120: CW 100 <= 120 gone; RW 160 found (220); map a 160 found (220),
	 *      b 160 found (220); list item 100 <= 120: 0 items
	 * 130: write: CW 230, RW 230, list [130 exp 230] (the expired item is
	 *      dropped), map a 230 (b stays 220)
	 * 219: CW 230 found; RW 230 found (319); map a 230 found (319), b 220
	 *      found (319); list 1 item
	 * 318: CW 230 gone; RW 319 found (418); map a 319 found (418), b 319
	 *      found (418); list item 230: 0 items
	 * 1000: only no-TTL found.
	 * key 2: written at 0, read at 1000: only no-TTL found.
	 */
	struct kout want[] = {
		{ 1, 1 | 2 | 4 | 8 | 16, 1, 60 },
		{ 1, 2 | 4 | 8 | 16, 0, 120 },
		{ 1, 1 | 2 | 4 | 8 | 16, 1, 219 },
		{ 1, 2 | 4 | 8 | 16, 0, 318 },
		{ 1, 4, 0, 1000 },
		{ 2, 4, 0, 1000 },
	};
	struct tape t = { tp, SL_ARRAY_SIZE(tp), true, true, 0, 1 };
	struct kcoll out;

	kt_reset(0);
	kcoll_init(&out);
	CU_ASSERT_FATAL(run_job(1, 16, 1, &t, -1, &kp, d, ids, 5, &kt_platform, &out) == 0);
	expect_outputs(&out, want, SL_ARRAY_SIZE(want), "ttl");
	kcoll_fini(&out);
}

/* ---------------------------------------------------- TTL, event time */

/* val 0 write both, val 1 read both: emits {key, found bits (1 CW, 2 RW), wm, ts}. */
static int ev_ttl_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
			  struct sl_collector *out, void *arg)
{
	const struct kin *e = in;
	struct kout o;

	if (e->val == 0) {
		if (sl_value_put(c, ids[0], &ts, sizeof(ts)) < 0 ||
		    sl_value_put(c, ids[1], &ts, sizeof(ts)) < 0)
			return -EIO;
		return 0;
	}
	o = (struct kout){ ctx_key(c),
			   (sl_value_get(c, ids[0], NULL, NULL) == 1) |
			       (sl_value_get(c, ids[1], NULL, NULL) == 1) << 1,
			   sl_ctx_current_watermark(c), ts };
	return sl_emit(out, &o, ts, NULL);
}

static void test_ttl_event_time(void)
{
	const struct sl_state_desc d[] = {
		{ .name = "cw",
		  .kind = SL_STATE_VALUE,
		  .ttl = { 10, SL_TTL_ON_CREATE_AND_WRITE, SL_TTL_EVENT_TIME } },
		{ .name = "rw",
		  .kind = SL_STATE_VALUE,
		  .ttl = { 10, SL_TTL_ON_READ_AND_WRITE, SL_TTL_EVENT_TIME } },
	};
	static const struct sl_keyed_process kp = { ev_ttl_element, NULL, NULL };
	/* (key, val, ts); watermark ts - 1 after each record (B = 0). */
	static const struct trec tp[] = {
		{ 9, 1, 100, 0 }, /* read of an empty key; watermark 99 */
		{ 1, 0, 100, 0 }, /* wm 99: both expire at 109 */
		{ 1, 1, 105, 0 }, /* wm 99: both found; RW -> 109; then wm 104 */
		{ 1, 1, 110, 0 }, /* wm 104: both found; RW -> 114; then wm 109 */
		{ 1, 1, 111, 0 }, /* wm 109: CW 109 <= 109 gone; RW 114 found (-> 119); wm 110 */
		{ 1, 1, 130, 0 }, /* wm 110: RW 119 found (-> 120); wm 129 */
		{ 1, 1, 131, 0 }, /* wm 129: RW 120 <= 129 gone */
	};
	struct kout want[] = {
		{ 9, 0, INT64_MIN, 100 }, { 1, 3, 99, 105 },  { 1, 3, 104, 110 },
		{ 1, 2, 109, 111 },	  { 1, 2, 110, 130 }, { 1, 0, 129, 131 },
	};
	struct tape t = { tp, SL_ARRAY_SIZE(tp), false, false, 0, 1 };
	struct kcoll out;

	kcoll_init(&out);
	CU_ASSERT_FATAL(run_job(1, 16, 0, &t, 0, &kp, d, ids, 2, NULL, &out) == 0);
	expect_outputs(&out, want, SL_ARRAY_SIZE(want), "event ttl");
	kcoll_fini(&out);
}

/* ------------------------------------------- TTL cleanup is incremental */

static struct {
	pthread_mutex_t lock;
	struct sli_state_api_stats st[400];
	int expired_seen; /* expired values returned (must stay 0) */
	unsigned n;
} cl = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* val 0: write the key; val 1: read keys 0..9 (all expired) and record the stats. */
static int clean_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
			 struct sl_collector *out, void *arg)
{
	const struct kin *e = in;
	struct sli_state_api_stats st;
	int rc = 0;

	if (e->val == 0) {
		rc = sl_value_put(c, ids[0], &ts, sizeof(ts));
	} else {
		if (sli_state_api_stats(c, &st) < 0)
			return -EIO;
		if (sl_value_get(c, ids[0], NULL, NULL) != 0)
			cl.expired_seen++;
		pthread_mutex_lock(&cl.lock);
		if (cl.n < SL_ARRAY_SIZE(cl.st))
			cl.st[cl.n++] = st;
		pthread_mutex_unlock(&cl.lock);
	}
	kt_ack();
	return rc < 0 ? rc : 0;
}

static void test_ttl_cleanup_incremental(void)
{
	enum { KEYS = 3000, READS = 300 };
	static struct trec tp[KEYS + READS];
	static const struct sl_state_desc d[] = {
		{ .name = "v", .kind = SL_STATE_VALUE, .ttl = { 10, 0, SL_TTL_PROCESSING_TIME } },
	};
	static const struct sl_keyed_process kp = { clean_element, NULL, NULL };
	struct tape t = { tp, KEYS + READS, true, true, 0, 1 };
	struct kcoll out;
	unsigned budget = 64 + 2; /* per one-element batch: see core/keyed.c */

	for (int i = 0; i < KEYS; i++)
		tp[i] = (struct trec){ i, 0, i, 0 }; /* written at clock 0: expire at 10 */
	for (int i = 0; i < READS; i++)
		tp[KEYS + i] = (struct trec){ i % 10, 1, KEYS + i, 100 };
	cl.n = 0;
	cl.expired_seen = 0;
	kt_reset(0);
	kcoll_init(&out);
	CU_ASSERT_FATAL(run_job(1, 16, 1, &t, -1, &kp, d, ids, 1, &kt_platform, &out) == 0);
	CU_ASSERT_EQUAL(cl.n, READS);
	CU_ASSERT_EQUAL(cl.expired_seen, 0);
	/* Nothing was expired before the jump: no cleanup removed anything. */
	CU_ASSERT_EQUAL(cl.st[0].entries + cl.st[0].removed, KEYS);
	/* After it, each batch removes a bounded slice: entries shrink gradually... */
	CU_ASSERT(cl.st[0].entries > 0);
	CU_ASSERT(cl.st[1].entries > 0 && cl.st[1].entries < KEYS);
	for (unsigned i = 1; i < cl.n; i++)
		CU_ASSERT(cl.st[i].entries <= cl.st[i - 1].entries);
	/* ...by at most the budget of slots it examines, which the batch size bounds... */
	CU_ASSERT(cl.st[cl.n - 1].max_budget <= budget);
	CU_ASSERT(cl.st[cl.n - 1].max_removed <= budget);
	/* ...and all are gone in the end. */
	CU_ASSERT_EQUAL(cl.st[cl.n - 1].entries, 0);
	CU_ASSERT_EQUAL(cl.st[cl.n - 1].removed, KEYS);
	kcoll_fini(&out);
}

/* ------------------------------------------------ CountWithTimeout */

/*
 * Flink's KeyedProcessFunction example: count per key, and emit {key,
 * count, last modification time} when a key had no update for 60 s of
 * event time.
 */
struct cwt {
	int64_t count, last;
};

static int cwt_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
		       struct sl_collector *out, void *arg)
{
	struct cwt s = { 0, 0 };
	const void *v;
	uint32_t len;
	int rc = sl_value_get(c, ids[0], &v, &len);

	if (rc < 0)
		return rc;
	if (rc == 1 && len == sizeof(s))
		memcpy(&s, v, sizeof(s));
	s.count++;
	s.last = ts;
	if ((rc = sl_value_put(c, ids[0], &s, sizeof(s))) < 0)
		return rc;
	return sl_timer_register(c, SL_EVENT_TIME, s.last + 60000) < 0 ? -EIO : 0;
}

static int cwt_timer(struct sl_ctx *c, enum sl_time_domain d, int64_t t, struct sl_collector *out,
		     void *arg)
{
	struct cwt s;
	const void *v;
	uint32_t len;
	struct kout o;

	if (sl_value_get(c, ids[0], &v, &len) != 1 || len != sizeof(s))
		return -EIO;
	memcpy(&s, v, sizeof(s));
	if (t != s.last + 60000)
		return 0;
	o = (struct kout){ ctx_key(c), s.count, s.last, t };
	return sl_emit(out, &o, t, NULL);
}

static void test_count_with_timeout(void)
{
	enum { N = 1500, KEYS = 7, B = 5000 };
	static struct trec tp[N];
	static struct kout want[N];
	static const struct sl_state_desc d[] = { { .name = "cwt", .kind = SL_STATE_VALUE } };
	static const struct sl_keyed_process kp = { cwt_element, cwt_timer, NULL };
	/* The reference: per key state and pending timers, watermarks as the source makes them. */
	struct cwt st[KEYS] = { { 0, 0 } };
	int64_t tk[N * 2], tt[N * 2];
	size_t nt = 0, nwant = 0;
	int64_t ts = 0, maxts = INT64_MIN, wm = INT64_MIN;

	for (int i = 0; i < N; i++) {
		/* Keys go quiet for a while now and then: gaps of up to ~3 minutes. */
		ts += (int64_t)(rnd() % 2000) + (rnd() % 50 == 0 ? 120000 : 0);
		tp[i] =
		    (struct trec){ (int64_t)(rnd() % KEYS), 0, ts - (int64_t)(rnd() % 4000), 0 };
	}
	for (int i = 0; i <= N; i++) {
		int64_t nwm;

		if (i < N) {
			const struct trec *r = &tp[i];
			bool dup = false;

			st[r->key].count++;
			st[r->key].last = r->ts;
			for (size_t j = 0; j < nt; j++)
				dup |= tk[j] == r->key && tt[j] == r->ts + 60000;
			if (!dup)
				tk[nt] = r->key, tt[nt++] = r->ts + 60000;
			maxts = r->ts > maxts ? r->ts : maxts;
			nwm = maxts - B - 1;
		} else {
			nwm = INT64_MAX;
		}
		if (nwm <= wm)
			continue;
		wm = nwm;
		/* Fire due timers; their order does not change what each emits. */
		for (size_t j = 0; j < nt;) {
			if (tt[j] > wm) {
				j++;
				continue;
			}
			if (tt[j] == st[tk[j]].last + 60000)
				want[nwant++] =
				    (struct kout){ tk[j], st[tk[j]].count, st[tk[j]].last, tt[j] };
			tk[j] = tk[nt - 1], tt[j] = tt[nt - 1], nt--;
		}
	}
	CU_ASSERT(nwant > KEYS); /* timeouts happen in the middle too, not only at the end */
	for (unsigned p = 1; p <= 3; p++) {
		struct tape t = { tp, N, false, false, 0, p };
		struct kcoll out;

		kcoll_init(&out);
		CU_ASSERT_FATAL(run_job(p, p * 50, 0, &t, B, &kp, d, ids, 1, NULL, &out) == 0);
		expect_outputs(&out, want, nwant, "count-with-timeout");
		kcoll_fini(&out);
	}
}

/* --------------------------------------------------------- errors */

static int rcs[16];
static char msgs[16][256];
static struct sl_ctx *kept;

static void note(int i, struct sl_ctx *c, int rc)
{
	rcs[i] = rc;
	snprintf(msgs[i], sizeof(msgs[i]), "%s", sl_ctx_info(c)->errbuf);
}

/* Misuse every way; the second element fails the job with a state error. */
static int bad_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
		       struct sl_collector *out, void *arg)
{
	const struct kin *e = in;
	char x = 0;
	int64_t v = 1;

	struct kout o = { 0, 0, 0, 0 };

	kept = c;
	if (e->val == 1)
		return sl_list_add(c, ids[0], "x", 1); /* a value state: -EINVAL, fails the job */
	note(0, c, sl_value_put(c, 7, &v, sizeof(v)));
	note(1, c, sl_value_put(c, -1, &v, sizeof(v)));
	note(2, c, sl_list_add(c, ids[0], &v, sizeof(v)));
	note(3, c, sl_value_put(c, ids[0], NULL, 4));
	note(4, c, sl_value_put(c, ids[0], &x, SL_STATE_VALUE_MAX + 1u));
	note(5, c, sl_list_get(c, ids[1], NULL));
	note(6, c, sl_reducing_add(c, ids[2], NULL));
	note(7, c, sl_map_put(c, ids[3], NULL, 3, &v, 8));
	note(8, c, sl_reducing_get(c, ids[0], &v));
	note(9, c, sl_value_put(c, ids[0], &v, sizeof(v)));
	return sl_emit(out, &o, ts, NULL); /* the sink uses the context when this is flushed */
}

static int stale_write(void *state, const struct sl_batch *b)
{
	rcs[10] = sl_value_get(kept, ids[0], NULL, NULL);
	rcs[11] = sl_value_put(kept, ids[0], "x", 1);
	return 0;
}

static int none_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
			struct sl_collector *out, void *arg)
{
	note(12, c, sl_value_get(c, 0, NULL, NULL));
	return 0;
}

static int copy_kout(const void *in, void *out, void *arg)
{
	memcpy(out, in, sizeof(struct kout));
	return 0;
}

static int dummy_reduce(void *acc, const void *in, void *arg)
{
	return 0;
}

/* Declaring @d on a fresh job's keyed operator: the return, and the validation message. */
static int declare_one(const struct sl_state_desc *d, char *msg, size_t len)
{
	static const struct trec tp[] = { { 1, 0, 0, 0 } };
	static const struct tape t = { tp, 1, false, false, 0, 1 };
	static const struct sl_keyed_process kp = { none_element, NULL, NULL };
	struct sl_job *job = new_job(1, 8, 0);
	struct sl_stream *s = sl_keyed_process(kt_source(job, &t, -1), "op", &kp, &kout_type);
	int rc;

	sl_sink(s, "out", &kc_ops, NULL);
	rc = sl_state_declare(s, d);
	CU_ASSERT_EQUAL(sl_job_validate(job, msg, len), rc);
	sl_job_destroy(job);
	return rc;
}

static void test_errors(void)
{
	static const struct trec tp[] = { { 1, 0, 0, 0 }, { 2, 1, 1, 0 } };
	static const struct tape t = { tp, 2, false, false, 0, 1 };
	static const struct sl_keyed_process kp = { bad_element, NULL, NULL };
	static const struct sl_keyed_process kp_none = { none_element, NULL, NULL };
	static const struct sl_sink_ops stale_ops = {
		.open = kc_open, .write = stale_write, .finish = NULL, .close = kc_close
	};
	const struct sl_state_desc good[] = {
		{ .name = "val", .kind = SL_STATE_VALUE },
		{ .name = "list", .kind = SL_STATE_LIST },
		{ .name = "red",
		  .kind = SL_STATE_REDUCING,
		  .value_size = 8,
		  .reduce = dummy_reduce },
		{ .name = "map", .kind = SL_STATE_MAP },
	};
	char msg[512];
	struct sl_job *job;
	struct sl_stream *s, *m;
	int rc;

	/* Bad descriptors, each a validation error naming the state and operator. */
	struct {
		struct sl_state_desc d;
		const char *says;
	} bad[] = {
		{ { .name = NULL, .kind = SL_STATE_VALUE }, "no name" },
		{ { .name = "", .kind = SL_STATE_VALUE }, "no name" },
		{ { .name = "k", .kind = (enum sl_state_kind)9 }, "unknown kind" },
		{ { .name = "r", .kind = SL_STATE_REDUCING, .value_size = 8 }, "reduce" },
		{ { .name = "r", .kind = SL_STATE_REDUCING, .reduce = dummy_reduce },
		  "value_size" },
		{ { .name = "a",
		    .kind = SL_STATE_AGGREGATING,
		    .agg = { 8, 8, avg_create, avg_add, NULL, NULL } },
		  "aggregating" },
		{ { .name = "t", .kind = SL_STATE_VALUE, .ttl = { -1, 0, 0 } }, "negative TTL" },
		{ { .name = "t", .kind = SL_STATE_VALUE, .ttl = { 5, (enum sl_ttl_update)3, 0 } },
		  "update" },
		{ { .name = "t", .kind = SL_STATE_VALUE, .ttl = { 5, 0, (enum sl_ttl_time)3 } },
		  "time" },
	};
	for (size_t i = 0; i < SL_ARRAY_SIZE(bad); i++) {
		rc = declare_one(&bad[i].d, msg, sizeof(msg));
		CU_ASSERT_EQUAL(rc, -EINVAL);
		CU_ASSERT(strstr(msg, bad[i].says) != NULL && strstr(msg, "'op'") != NULL);
	}
	CU_ASSERT_EQUAL(declare_one(NULL, msg, sizeof(msg)), -EINVAL);
	CU_ASSERT(strstr(msg, "NULL descriptor") != NULL);
	CU_ASSERT_EQUAL(sl_state_declare(NULL, &good[0]), -EINVAL);

	/* Not a keyed operator; a duplicate name; after the job ran. */
	job = new_job(1, 8, 0);
	s = sl_keyed_process(kt_source(job, &t, -1), "op", &kp_none, &kout_type);
	m = sl_map(s, "plain", copy_kout, NULL, &kout_type);
	sl_sink(m, "sink", &kc_ops, NULL);
	CU_ASSERT_EQUAL(sl_state_declare(m, &good[0]), -EINVAL);
	CU_ASSERT_EQUAL(sl_job_validate(job, msg, sizeof(msg)), -EINVAL);
	CU_ASSERT(strstr(msg, "'plain'") != NULL && strstr(msg, "no keyed state") != NULL);
	sl_job_destroy(job);
	job = new_job(1, 8, 0);
	s = sl_keyed_process(kt_source(job, &t, -1), "op", &kp_none, &kout_type);
	sl_sink(s, "sink", &kc_ops, NULL);
	CU_ASSERT_EQUAL(sl_state_declare(sl_side_output(s, 0, &kout_type), &good[0]), -EINVAL);
	CU_ASSERT_EQUAL(sl_job_validate(job, msg, sizeof(msg)), -EINVAL);
	CU_ASSERT(strstr(msg, "'val'") != NULL && strstr(msg, "no keyed state") != NULL);
	sl_job_destroy(job);
	job = new_job(1, 8, 0);
	s = sl_keyed_process(kt_source(job, &t, -1), "op", &kp_none, &kout_type);
	sl_sink(s, "sink", &kc_ops, NULL);
	CU_ASSERT_EQUAL(sl_state_declare(s, &good[0]), 0);
	CU_ASSERT_EQUAL(sl_state_declare(s, &good[1]), 1);
	CU_ASSERT_EQUAL(sl_state_declare(s, &good[0]), -EEXIST);
	CU_ASSERT_EQUAL(sl_job_validate(job, msg, sizeof(msg)), -EEXIST);
	CU_ASSERT(strstr(msg, "'val'") != NULL && strstr(msg, "twice") != NULL);
	sl_job_destroy(job);
	job = new_job(1, 8, 0);
	s = sl_keyed_process(kt_source(job, &t, -1), "op", &kp_none, &kout_type);
	sl_sink(s, "sink", &kc_ops, NULL);
	CU_ASSERT_EQUAL(sl_job_run(job, NULL, errbuf, sizeof(errbuf)), 0);
	CU_ASSERT_EQUAL(sl_state_declare(s, &good[0]), -EBUSY);
	sl_job_destroy(job);
	/* An operator without state: -ENOENT. */
	CU_ASSERT_EQUAL(rcs[12], -ENOENT);
	CU_ASSERT(strstr(msgs[12], "declares no keyed state") != NULL);

	/* Misuse at run time (the first record only), then a state error that fails the job. */
	for (int fail = 0; fail < 2; fail++) {
		struct tape t1 = { tp, fail ? 2 : 1, false, false, 0, 1 };

		job = new_job(1, 8, 1);
		s = sl_keyed_process(kt_source(job, &t1, -1), "bad", &kp, &kout_type);
		for (int i = 0; i < 4; i++)
			ids[i] = sl_state_declare(s, &good[i]);
		sl_sink(s, "stale", &stale_ops, NULL);
		if (!fail)
			memset(rcs, 0, sizeof(rcs));
		rc = sl_job_run(job, NULL, errbuf, sizeof(errbuf));
		sl_job_destroy(job);
		if (!fail)
			CU_ASSERT_EQUAL(rc, 0);
	}
	CU_ASSERT_EQUAL(rc, -EINVAL);
	CU_ASSERT(strstr(errbuf, "'bad'") != NULL && strstr(errbuf, "sl_list_add") != NULL &&
		  strstr(errbuf, "'val'") != NULL && strstr(errbuf, "value state") != NULL);
	CU_ASSERT(rcs[0] == -ENOENT && strstr(msgs[0], "no state with id 7") != NULL);
	CU_ASSERT(rcs[1] == -ENOENT && strstr(msgs[1], "id -1") != NULL);
	CU_ASSERT(rcs[2] == -EINVAL && strstr(msgs[2], "is a value state, not a list state"));
	CU_ASSERT(rcs[3] == -EINVAL && strstr(msgs[3], "NULL value") != NULL);
	CU_ASSERT(rcs[4] == -E2BIG && strstr(msgs[4], "'val'") != NULL);
	CU_ASSERT(rcs[5] == -EINVAL && strstr(msgs[5], "NULL iterator") != NULL);
	CU_ASSERT(rcs[6] == -EINVAL && strstr(msgs[6], "'red'") != NULL);
	CU_ASSERT(rcs[7] == -EINVAL && strstr(msgs[7], "NULL map key") != NULL);
	CU_ASSERT(rcs[8] == -EINVAL && strstr(msgs[8], "reducing") != NULL);
	CU_ASSERT_EQUAL(rcs[9], 0);
	/* The sink, after the call: the context is no longer usable. */
	CU_ASSERT_EQUAL(rcs[10], -EINVAL);
	CU_ASSERT_EQUAL(rcs[11], -EINVAL);
	CU_ASSERT_EQUAL(sl_value_get(NULL, 0, NULL, NULL), -EINVAL);
	CU_ASSERT_EQUAL(sl_state_clear(NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(sl_list_next(NULL, NULL, NULL), 0);
	CU_ASSERT_EQUAL(sl_map_next(NULL, NULL, NULL, NULL, NULL), 0);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "value_state_lengths_and_clear", test_value_state },
		{ "list_state", test_list_state },
		{ "map_state", test_map_state },
		{ "map_state_memory_budget", test_map_state_budget },
		{ "reducing_aggregating", test_reducing_aggregating },
		{ "key_groups", test_key_groups },
		{ "ttl_processing_time", test_ttl_processing_time },
		{ "ttl_event_time", test_ttl_event_time },
		{ "ttl_cleanup_incremental", test_ttl_cleanup_incremental },
		{ "count_with_timeout", test_count_with_timeout },
		{ "errors", test_errors },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("state-api", tests);
}
