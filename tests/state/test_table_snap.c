/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_table_snap.c — copy-on-write snapshots of the keyed-state table
 * (state/table_snap.c) against a reference model.
 *
 * The model is an array of cells (state, key, namespace) -> present,
 * value bytes, expiry, updated by the test with every operation it makes
 * on the table. At a barrier the test makes the model exact (it removes
 * every expired entry itself, since a TTL cleanup removes an unknown
 * subset of them), copies it (the reference), checks the live table
 * against it through a synchronous partition, and freezes the table. A
 * reader thread then turns the frozen table into a partition and lists
 * every entry, while the test goes on with random puts, removes, clears
 * of a key, gets and batch lookups that restart TTLs, TTL cleanups, and
 * (with a budget) evictions to disk, reloads and compaction of the spill
 * files, and resizes both ways; then the reader's list must equal the
 * reference exactly (values, expiries, key groups, nothing more or less).
 * Namespaced entries (rings) and plain ones, with and without spilling;
 * snapshots taken while the table resizes are counted and required.
 *
 * The snapshot's slot segments are captured lazily (by the reader, or by
 * the task before it writes one): the random operations write into
 * segments the reader has not captured yet, in both orders.
 *
 * Also: a table destroyed while its snapshot is read (the snapshot gets
 * its memory); what a released snapshot leaves (fresh bits, graveyard)
 * drained a slice per mutating call, with a freeze and big-block removals
 * in the middle of it, against a reference; a second freeze while one is pending (-EBUSY); a copy
 * that cannot get memory (the task waits for the reader, then writes in place). The reader runs on
 * another thread: the suite also runs under ThreadSanitizer (stress).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_test.h"

#include "spill_common.h"

#define NSTATE 2
#define NKEY   1500
#define NNS    4 /* namespace 0: none; 1..3: a ring per (state, key) */
#define VMAX   300
#define MAXP   128

struct cell {
	bool live;
	bool maybe; /* expired when a TTL cleanup ran: the table may have removed it */
	uint16_t len;
	int64_t expiry;
	unsigned char v[VMAX];
};

/* A record as a partition lists it, or as the model holds it. */
struct rec {
	uint16_t sid, ns;
	uint64_t key;
	int64_t expiry;
	unsigned kg;
	uint16_t len;
	unsigned char v[VMAX];
};

struct model {
	struct cell c[NSTATE][NKEY][NNS];
	uint64_t keys[NKEY]; /* key bytes: stable addresses for sli_skey */
	unsigned char nsb[NNS][8];
	int64_t now;
	uint64_t rng;
};

static struct model M;

static struct sli_skey skey(unsigned sid, unsigned k, unsigned ns)
{
	struct sli_skey s = sp_key(&M.keys[k], (uint16_t)sid);

	if (ns != 0) {
		s.ns = M.nsb[ns];
		s.ns_len = (uint16_t)(1 + ns); /* namespaces of different lengths */
	}
	return s;
}

static void model_init(uint64_t seed)
{
	memset(&M, 0, sizeof(M));
	for (unsigned k = 0; k < NKEY; k++)
		M.keys[k] = 0x1000 + k * 7919ull;
	for (unsigned n = 0; n < NNS; n++)
		memset(M.nsb[n], 'a' + (int)n, sizeof(M.nsb[n]));
	M.now = 1000;
	M.rng = seed;
}

static unsigned rnd(unsigned n)
{
	return (unsigned)(sp_rand(&M.rng) % n);
}

/* ------------------------------------------------------------ operations */

static void op_put(struct sli_table *t)
{
	unsigned sid = rnd(NSTATE), k = rnd(NKEY), ns = rnd(NNS);
	struct cell *c = &M.c[sid][k][ns];
	struct sli_skey s = skey(sid, k, ns);
	/* Mostly small values, some past 128 bytes (moves when shrinking to half). */
	uint16_t len = (uint16_t)(rnd(8) == 0 ? rnd(VMAX + 1) : rnd(40));
	int64_t exp = rnd(3) == 0 ? M.now + 1 + rnd(60) : SLI_TTL_NONE;
	unsigned char v[VMAX];
	int rc;

	for (unsigned i = 0; i < len; i++)
		v[i] = (unsigned char)sp_rand(&M.rng);
	rc = sli_table_put(t, &s, v, len, exp);
	CU_ASSERT_FATAL(c->maybe ? rc == 0 || rc == 1 : rc == (c->live ? 0 : 1));
	c->live = true;
	c->maybe = false;
	c->len = len;
	c->expiry = exp;
	memcpy(c->v, v, len);
}

/* A get or batch lookup restarts the TTL of what it finds live ("on read and write"). */
static void op_get(struct sli_table *t, bool batch)
{
	unsigned n = batch ? 8 : 1, sid = rnd(NSTATE);
	unsigned k[8], ns[8];
	struct sli_skey s[8];
	struct sli_lookup out[8];
	int64_t touch = rnd(2) ? M.now + 1 + rnd(60) : SLI_TTL_KEEP;

	for (unsigned i = 0; i < n; i++) {
		k[i] = rnd(NKEY);
		ns[i] = rnd(NNS);
		s[i] = skey(sid, k[i], ns[i]);
	}
	if (batch) {
		CU_ASSERT_FATAL(sli_table_lookup_batch(t, n, s, M.now, touch, out) >= 0);
	} else {
		out[0].value = sli_table_get(t, &s[0], M.now, touch, &out[0].len);
	}
	for (unsigned i = 0; i < n; i++) {
		struct cell *c = &M.c[sid][k[i]][ns[i]];
		bool want = c->live && c->expiry > M.now;

		CU_ASSERT_FATAL((out[i].value != NULL) == want);
		if (!want)
			continue;
		CU_ASSERT_FATAL(out[i].len == c->len && memcmp(out[i].value, c->v, c->len) == 0);
		if (touch != SLI_TTL_KEEP)
			c->expiry = touch;
	}
}

static void op_remove(struct sli_table *t)
{
	unsigned sid = rnd(NSTATE), k = rnd(NKEY), ns = rnd(NNS);
	struct cell *c = &M.c[sid][k][ns];
	struct sli_skey s = skey(sid, k, ns);
	int rc = sli_table_remove(t, &s);

	CU_ASSERT_FATAL(c->maybe ? rc == 0 || rc == 1 : rc == (int)c->live);
	c->live = c->maybe = false;
}

static void op_clear(struct sli_table *t)
{
	unsigned sid = rnd(NSTATE), k = rnd(NKEY), lo = 0, hi = 0;
	struct sli_skey s = skey(sid, k, 0);
	int rc = sli_table_clear_key(t, &s);

	for (unsigned ns = 0; ns < NNS; ns++) {
		struct cell *c = &M.c[sid][k][ns];

		lo += c->live && !c->maybe;
		hi += c->live;
		c->live = c->maybe = false;
	}
	CU_ASSERT_FATAL(rc >= (int)lo && rc <= (int)hi);
}

static void op_cleanup(struct sli_table *t)
{
	CU_ASSERT_FATAL(sli_table_ttl_cleanup(t, M.now, 1 + rnd(200)) >= 0);
	for (unsigned sid = 0; sid < NSTATE; sid++)
		for (unsigned k = 0; k < NKEY; k++)
			for (unsigned ns = 0; ns < NNS; ns++) {
				struct cell *c = &M.c[sid][k][ns];

				c->maybe |= c->live && c->expiry <= M.now;
			}
}

static void random_ops(struct sli_table *t, unsigned n, unsigned put_pct)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned r = rnd(100);

		if (r < put_pct)
			op_put(t);
		else if (r < put_pct + 12)
			op_get(t, false);
		else if (r < put_pct + 20)
			op_get(t, true);
		else if (r < put_pct + 30)
			op_remove(t);
		else if (r < put_pct + 33)
			op_clear(t);
		else if (r < put_pct + 36)
			op_cleanup(t);
		else
			M.now += rnd(3);
	}
}

/* Make the model exact: remove what expired (a cleanup may have removed it already). */
static void expire_all(struct sli_table *t)
{
	for (unsigned sid = 0; sid < NSTATE; sid++)
		for (unsigned k = 0; k < NKEY; k++)
			for (unsigned ns = 0; ns < NNS; ns++) {
				struct cell *c = &M.c[sid][k][ns];
				struct sli_skey s = skey(sid, k, ns);

				if (!c->live || (!c->maybe && c->expiry > M.now))
					continue;
				CU_ASSERT_FATAL(sli_table_remove(t, &s) >= (c->maybe ? 0 : 1));
				c->live = c->maybe = false;
			}
}

/* ---------------------------------------------------------- comparisons */

struct recs {
	struct rec *v;
	size_t n, cap;
};

static void recs_add(struct recs *r, const struct rec *x)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 1024;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		CU_ASSERT_FATAL(r->v != NULL);
	}
	r->v[r->n++] = *x;
}

static int rec_cmp(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	if (x->sid != y->sid)
		return x->sid < y->sid ? -1 : 1;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->ns < y->ns ? -1 : x->ns > y->ns;
}

static void reference(struct recs *r)
{
	r->n = 0;
	for (unsigned sid = 0; sid < NSTATE; sid++)
		for (unsigned k = 0; k < NKEY; k++)
			for (unsigned ns = 0; ns < NNS; ns++) {
				const struct cell *c = &M.c[sid][k][ns];
				struct rec x = { .sid = (uint16_t)sid,
						 .ns = (uint16_t)ns,
						 .key = M.keys[k],
						 .expiry = c->expiry,
						 .kg = (unsigned)(sp_hash(M.keys[k]) % MAXP),
						 .len = c->len };

				if (!c->live)
					continue;
				memcpy(x.v, c->v, c->len);
				recs_add(r, &x);
			}
	if (r->n != 0)
		qsort(r->v, r->n, sizeof(*r->v), rec_cmp);
}

/* Every entry of partition @p. Returns 0, or the partition's error. */
static int list_part(struct sli_table_part *p, struct recs *out)
{
	out->n = 0;
	for (unsigned kg = 0; kg < MAXP; kg++) {
		const struct sli_entry *const *e;
		size_t n = sli_table_part_group(p, kg, &e);

		if (sli_table_part_error(p) < 0)
			return sli_table_part_error(p);
		for (size_t i = 0; i < n; i++) {
			struct sli_entry_view v;
			struct rec x = { 0 };

			sli_table_entry(e[i], &v);
			if (v.key_len != 8 || v.ns_len > 4 || v.value_len > UINT16_MAX)
				return -EUCLEAN;
			x.sid = v.state_id;
			memcpy(&x.key, v.key, 8);
			x.ns = v.ns_len == 0 ? 0 : (uint16_t)(v.ns_len - 1);
			x.expiry = v.expiry;
			x.kg = v.key_group;
			x.len = (uint16_t)v.value_len;
			memcpy(x.v, v.value, v.value_len < VMAX ? v.value_len : VMAX);
			if (kg != v.key_group)
				return -EUCLEAN;
			recs_add(out, &x);
		}
	}
	if (out->n != 0)
		qsort(out->v, out->n, sizeof(*out->v), rec_cmp);
	return 0;
}

/* Equal as lists; prints the first difference. */
static bool same(const char *what, const struct recs *got, const struct recs *want)
{
	for (size_t i = 0; i < got->n || i < want->n; i++) {
		const struct rec *g = i < got->n ? &got->v[i] : NULL;
		const struct rec *w = i < want->n ? &want->v[i] : NULL;

		if (g != NULL && w != NULL && rec_cmp(g, w) == 0 && g->expiry == w->expiry &&
		    g->kg == w->kg && g->len == w->len &&
		    memcmp(g->v, w->v, g->len < VMAX ? g->len : VMAX) == 0)
			continue;
		fprintf(stderr, "\n%s: entry %zu of %zu/%zu differs: got %s, want %s\n", what, i,
			got->n, want->n, g ? "an entry" : "none", w ? "an entry" : "none");
		if (g != NULL && w != NULL)
			fprintf(stderr,
				"  got sid %u key %llu ns %u len %u exp %lld; want sid %u key "
				"%llu ns %u len %u exp %lld\n",
				g->sid, (unsigned long long)g->key, g->ns, g->len,
				(long long)g->expiry, w->sid, (unsigned long long)w->key, w->ns,
				w->len, (long long)w->expiry);
		return false;
	}
	return true;
}

/* The live table through a synchronous partition, against the (exact) model. */
static void check_live(struct sli_table *t, struct recs *want, struct recs *got)
{
	struct sli_table_part *p;

	expire_all(t);
	reference(want);
	CU_ASSERT_FATAL(sli_table_check(t, NULL, NULL) == 0);
	CU_ASSERT_FATAL(sli_table_partition(t, &p) == 0);
	CU_ASSERT_FATAL(list_part(p, got) == 0);
	sli_table_part_destroy(p);
	CU_ASSERT_FATAL(same("live table", got, want));
}

/* --------------------------------------------------------------- reader */

struct reader {
	pthread_t th;
	struct sli_table_frozen *f;
	struct recs got;
	int rc;
	_Atomic int *go;      /* wait for *go != 0 first (NULL: don't)... */
	_Atomic int *gave_up; /* ...or *gave_up != 0 (the task did not wait: a wrong test) */
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct sli_table_part *p = NULL;

	/* Acquire: pairs with the release store of *go (hold_alloc()); orders nothing else. */
	while (r->go != NULL && atomic_load_explicit(r->go, memory_order_acquire) == 0 &&
	       atomic_load_explicit(r->gave_up, memory_order_acquire) == 0)
		;
	r->rc = sli_table_frozen_partition(r->f, &p);
	if (r->rc == 0)
		r->rc = list_part(p, &r->got);
	sli_table_part_destroy(p);
	sli_table_frozen_put(r->f);
	return NULL;
}

/* ----------------------------------------------------------------- tests */

struct run_stats {
	unsigned snaps, migrating;
	struct sli_table_stats st;
};

/*
 * Rounds of: barrier (exact model, live check, freeze), random operations
 * while a thread reads the snapshot (@concurrent) or before the test reads
 * it, then the snapshot against the reference.
 */
static void rounds(struct sli_table *t, unsigned nrounds, bool concurrent, struct run_stats *rs)
{
	struct recs want = { 0 }, live = { 0 };

	for (unsigned round = 0; round < nrounds; round++) {
		struct reader r = { 0 };
		struct sli_table_stats st;
		/* Grow at first, then churn, then shrink: resizes both ways. */
		unsigned put_pct = round < nrounds / 3 ? 60 : round < 2 * nrounds / 3 ? 35 : 8;

		check_live(t, &want, &live);
		/* Every other barrier falls in a resize if puts can start one (the old array too).
		 */
		sli_table_stats(t, &st);
		for (unsigned i = 0; i < 6000 && round % 2 == 0 && st.phase != 2; i++) {
			op_put(t);
			sli_table_stats(t, &st);
		}
		reference(&want); /* puts keep the model exact */
		rs->migrating += st.phase == 2;
		CU_ASSERT_FATAL(sli_table_freeze(t, &r.f) == 0);
		rs->snaps++;
		if (concurrent)
			CU_ASSERT_FATAL(pthread_create(&r.th, NULL, reader_main, &r) == 0);
		random_ops(t, 1500 + rnd(3000), put_pct);
		if (concurrent) {
			CU_ASSERT_FATAL(pthread_join(r.th, NULL) == 0);
		} else {
			reader_main(&r);
		}
		CU_ASSERT_FATAL(r.rc == 0);
		CU_ASSERT_FATAL(same("snapshot", &r.got, &want));
		free(r.got.v);
	}
	check_live(t, &want, &live);
	sli_table_stats(t, &rs->st);
	free(want.v);
	free(live.v);
}

static void run_case(bool spill, bool concurrent, uint64_t seed)
{
	char dir[64];
	struct sli_table *t;
	struct run_stats rs = { 0 };

	model_init(seed);
	CU_ASSERT_FATAL(sli_table_create(NULL, MAXP, 0, MAXP - 1, &t) == 0);
	if (spill) {
		struct sli_spill_conf c = { .budget = 160 << 10,
					    .io = SLI_IO_POSIX,
					    .segment_bytes = 128 << 10,
					    .garbage_pct = 20 };

		CU_ASSERT_FATAL(sp_mkdtemp(dir, sizeof(dir)) != NULL);
		c.dir = dir;
		CU_ASSERT_FATAL(sli_table_set_spill(t, &c) == 0);
	}
	rounds(t, 24, concurrent, &rs);
	printf("\n  %u snapshots (%u while resizing): %llu entries copied (%llu B), %llu blocks "
	       "kept; %llu evictions, %llu reloads, %llu compactions ",
	       rs.snaps, rs.migrating, (unsigned long long)rs.st.cow_copies,
	       (unsigned long long)rs.st.cow_bytes, (unsigned long long)rs.st.cow_deferred,
	       (unsigned long long)rs.st.evictions, (unsigned long long)rs.st.reloads,
	       (unsigned long long)rs.st.spill_compactions);
	/* Every rule ran: copies, kept blocks, and snapshots taken while resizing. */
	CU_ASSERT(rs.st.cow_copies > 0 && rs.st.cow_deferred > 0);
	CU_ASSERT(rs.migrating > 0);
	if (spill)
		CU_ASSERT(rs.st.ring_evictions > 0 && rs.st.reloads > 0 &&
			  rs.st.spill_compactions > 0);
	sli_table_destroy(t);
	if (spill)
		sp_rmdir(dir);
}

static void test_memory(void)
{
	run_case(false, false, 11);
}

static void test_memory_threads(void)
{
	run_case(false, true, 12);
}

static void test_spill(void)
{
	run_case(true, false, 13);
}

static void test_spill_threads(void)
{
	run_case(true, true, 14);
}

/* The table goes (its task's operator closed) while its snapshot is still to be read. */
static void test_destroy_first(void)
{
	char dir[64];
	struct sli_table *t;
	struct recs want = { 0 }, live = { 0 };
	struct reader r = { 0 };
	struct sli_spill_conf c = {
		.budget = 96 << 10, .io = SLI_IO_POSIX, .segment_bytes = 16 << 10, .garbage_pct = 10
	};
	struct sli_table_stats st;

	model_init(21);
	CU_ASSERT_FATAL(sp_mkdtemp(dir, sizeof(dir)) != NULL);
	c.dir = dir;
	CU_ASSERT_FATAL(sli_table_create(NULL, MAXP, 0, MAXP - 1, &t) == 0);
	CU_ASSERT_FATAL(sli_table_set_spill(t, &c) == 0);
	random_ops(t, 8000, 70);
	check_live(t, &want, &live);
	sli_table_stats(t, &st);
	CU_ASSERT(st.spilled > want.n / 2); /* the snapshot reads most entries from the files */
	CU_ASSERT_FATAL(sli_table_freeze(t, &r.f) == 0);
	random_ops(t, 3000, 10);
	sli_table_destroy(t); /* deletes the spill files: the snapshot's descriptors still read */
	sp_rmdir(dir);
	reader_main(&r);
	CU_ASSERT(r.rc == 0);
	CU_ASSERT(same("snapshot of a destroyed table", &r.got, &want));
	free(r.got.v);
	free(want.v);
	free(live.v);
}

/* ------------------------------------------------ what a released snapshot leaves */

#define DN   3000 /* keys */
#define DBIG 5000 /* every 8th key's value: a big block (above SLI_SLAB_MAX) */

static uint16_t dlen(unsigned k)
{
	return k % 8 == 0 ? DBIG : 40;
}

static void dval(unsigned char *v, unsigned k, unsigned ver)
{
	for (unsigned i = 0; i < dlen(k); i++)
		v[i] = (unsigned char)(k * 31 + ver * 7 + i);
}

static void dput(struct sli_table *t, const uint64_t *keys, unsigned k, unsigned ver)
{
	static unsigned char v[DBIG];
	struct sli_skey s = sp_key(&keys[k], 0);

	dval(v, k, ver);
	CU_ASSERT_FATAL(sli_table_put(t, &s, v, dlen(k), SLI_TTL_NONE) >= 0);
}

/*
 * The reference: version @even (even keys) or @odd (odd keys) of every key
 * @k with (k % 8 == 0) == @big or @all.
 */
static void dref2(struct recs *r, const uint64_t *keys, unsigned even, unsigned odd, bool all)
{
	r->n = 0;
	for (unsigned k = 0; k < DN; k++) {
		struct rec x = { .key = keys[k],
				 .expiry = SLI_TTL_NONE,
				 .kg = (unsigned)(sp_hash(keys[k]) % MAXP),
				 .len = dlen(k) };
		unsigned char v[DBIG];

		if (!all && k % 8 == 0)
			continue;
		dval(v, k, k % 2 == 0 ? even : odd);
		memcpy(x.v, v, VMAX); /* list_part() keeps the first VMAX bytes */
		recs_add(r, &x);
	}
	qsort(r->v, r->n, sizeof(*r->v), rec_cmp);
}

static void dref(struct recs *r, const uint64_t *keys, unsigned ver, bool all)
{
	dref2(r, keys, ver, ver, all);
}

/* A table of DN keys (@mult times 1..DN, into @keys), each put at version 0. */
static struct sli_table *dtable(uint64_t *keys, uint64_t mult)
{
	struct sli_table *t;

	for (unsigned k = 0; k < DN; k++)
		keys[k] = mult * (k + 1);
	CU_ASSERT_FATAL(sli_table_create(NULL, MAXP, 0, MAXP - 1, &t) == 0);
	for (unsigned k = 0; k < DN; k++)
		dput(t, keys, k, 0);
	return t;
}

/* Read snapshot @r (reader_main(): partitioned, listed, released) against @want; @r reset. */
static void dcheck(struct reader *r, const struct recs *want, const char *what)
{
	reader_main(r);
	CU_ASSERT_FATAL(r->rc == 0);
	CU_ASSERT(same(what, &r->got, want));
	free(r->got.v);
	*r = (struct reader){ 0 };
}

/*
 * A snapshot's fresh list and graveyard (every entry rewritten while it was
 * pending) are worked off a slice per mutating call once it is released,
 * not in one pause; big fresh blocks removed while still listed wait for
 * their bit to be cleared (AddressSanitizer); the next snapshot, taken
 * after all that, equals its reference.
 */
static void test_drain(void)
{
	static uint64_t keys[DN];
	struct sli_table *t = dtable(keys, 0x9e3779b97f4a7c15ull);
	struct reader r = { 0 };
	struct recs want = { 0 };
	struct sli_table_stats st;
	unsigned calls = 0;

	CU_ASSERT_FATAL(sli_table_freeze(t, &r.f) == 0);
	for (unsigned k = 0; k < DN; k++)
		dput(t, keys, k, 1); /* every entry copied: DN fresh, DN kept */
	dref(&want, keys, 0, true);
	dcheck(&r, &want, "first snapshot"); /* partitions, lists and releases the snapshot */
	/* At once the next: it marks with the other bit, the first's drain later. */
	CU_ASSERT_FATAL(sli_table_freeze(t, &r.f) == 0);
	for (unsigned k = 0; k < DN; k++)
		dput(t, keys, k, 2); /* each a copy again: none may be written in place */
	dref(&want, keys, 1, true);
	dcheck(&r, &want, "second snapshot");
	/*
	 * Mutating calls, counted while the graveyard is still held: removes of
	 * the big keys first (listed fresh blocks), then rewrites of the rest.
	 */
	for (unsigned k = 0; k < DN; k += 8) {
		struct sli_skey s = sp_key(&keys[k], 0);

		CU_ASSERT(sli_table_remove(t, &s) == 1);
		sli_table_stats(t, &st);
		CU_ASSERT(st.cow_pending == 0);
		calls += st.cow_held_bytes != 0;
	}
	for (unsigned k = 0; k < DN; k++)
		if (k % 8 != 0)
			dput(t, keys, k, 3);
	sli_table_stats(t, &st);
	CU_ASSERT(st.cow_held_bytes == 0);
	/* DN fresh bits, then DN blocks, a slice per call: not one call, nor a few. */
	CU_ASSERT(calls >= 4);
	CU_ASSERT(sli_table_check(t, NULL, NULL) == 0);
	CU_ASSERT_FATAL(sli_table_freeze(t, &r.f) == 0);
	dref(&want, keys, 3, false);
	dcheck(&r, &want, "third snapshot");
	free(want.v);
	sli_table_destroy(t);
}

/*
 * Back-to-back snapshots with no mutating call between a release and the
 * next freeze (the final checkpoint after the last regular one): the
 * fresh marks alternate between two bits, so the second freeze clears
 * none of the first's (cow_fresh_sync stays 0) and still treats the
 * entries allocated while the first was pending as its own (copied before
 * a rewrite: its contents are the rewritten values, not later ones); a
 * third at once must clear the first's marks, whose bit it takes over.
 * Each snapshot against its reference.
 */
static void test_fresh_bits(void)
{
	static uint64_t keys[DN];
	struct sli_table *t = dtable(keys, 0x2545f4914f6cdd1dull);
	struct reader r = { 0 };
	struct recs want = { 0 };

	for (unsigned ver = 1; ver <= 3; ver++) {
		struct sli_table_stats st;
		char what[32];

		CU_ASSERT_FATAL(sli_table_freeze(t, &r.f) == 0);
		sli_table_stats(t, &st);
		/* The first two freezes find nothing to clear, the third most of the first's DN. */
		/* (Less the slices the freezes' own release drained: a few hundred.) */
		CU_ASSERT(ver == 3 ? st.cow_fresh_sync > DN / 2 : st.cow_fresh_sync == 0);
		/* Entries a fresh copy while pending: all but the even keys in round 2. */
		for (unsigned k = 0; k < DN; k++)
			if (ver != 2 || k % 2 == 1)
				dput(t, keys, k, ver);
		/* Snapshot 3: the even keys as round 1 left them. */
		dref2(&want, keys, ver == 3 ? 1 : ver - 1, ver - 1, true);
		snprintf(what, sizeof(what), "snapshot %u", ver);
		dcheck(&r, &want, what);
	}
	CU_ASSERT(sli_table_check(t, NULL, NULL) == 0);
	free(want.v);
	sli_table_destroy(t);
}

/* One snapshot at a time: a second freeze is refused until the first is released. */
static void test_busy(void)
{
	struct sli_table *t;
	struct sli_table_frozen *f, *g;
	struct sli_table_stats st;

	model_init(31);
	CU_ASSERT_FATAL(sli_table_create(NULL, MAXP, 0, MAXP - 1, &t) == 0);
	random_ops(t, 500, 80);
	CU_ASSERT_FATAL(sli_table_freeze(t, &f) == 0);
	CU_ASSERT(sli_table_freeze(t, &g) == -EBUSY);
	sli_table_frozen_put(f);
	CU_ASSERT(sli_table_freeze(t, &g) == 0); /* released: noticed by the freeze itself */
	sli_table_frozen_put(g);
	sli_table_stats(t, &st);
	CU_ASSERT(st.cow_busy == 1);
	CU_ASSERT(sli_table_freeze(NULL, &g) == -EINVAL && sli_table_freeze(t, NULL) == -EINVAL);
	sli_table_frozen_put(NULL);
	sli_table_destroy(t);
}

/* An allocator that, once armed, refuses and then lets the reader go. */
struct hold {
	struct sl_allocator a;
	_Atomic int armed, go, gave_up;
};

static void *hold_alloc(void *ctx, size_t size, size_t align)
{
	struct hold *h = ctx;

	/* Relaxed: armed is set before the reader exists; go is the hand-off (release). */
	if (atomic_load_explicit(&h->armed, memory_order_relaxed)) {
		atomic_store_explicit(&h->go, 1, memory_order_release);
		return NULL;
	}
	return aligned_alloc(align, (size + align - 1) & ~(align - 1));
}

static void hold_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

/* No memory for the copy of an entry the snapshot reads: wait for the reader, write in place. */
static void test_wait(void)
{
	struct hold h = { .a = { hold_alloc, hold_free, NULL, "hold" } };
	struct sli_table *t;
	struct sli_table_stats st;
	struct reader r = { .go = &h.go, .gave_up = &h.gave_up };
	static unsigned char big[5000],
	    big2[5000]; /* past the slab's classes: one allocation each */
	uint64_t key = 42;
	struct sli_skey k = sp_key(&key, 0);
	uint32_t len;
	const void *v;

	h.a.ctx = &h;
	memset(big, 1, sizeof(big));
	memset(big2, 2, sizeof(big2));
	CU_ASSERT_FATAL(sli_table_create(&h.a, MAXP, 0, MAXP - 1, &t) == 0);
	CU_ASSERT_FATAL(sli_table_put(t, &k, big, sizeof(big), SLI_TTL_NONE) == 1);
	CU_ASSERT_FATAL(sli_table_freeze(t, &r.f) == 0);
	CU_ASSERT_FATAL(pthread_create(&r.th, NULL, reader_main, &r) == 0);
	atomic_store_explicit(&h.armed, 1, memory_order_relaxed);
	CU_ASSERT(sli_table_put(t, &k, big2, sizeof(big2), SLI_TTL_NONE) == 0);
	atomic_store_explicit(&h.armed, 0, memory_order_relaxed);
	/* Release: pairs with the reader's acquire; only if the put did not wait (a bug). */
	atomic_store_explicit(&h.gave_up, 1, memory_order_release);
	CU_ASSERT_FATAL(pthread_join(r.th, NULL) == 0);
	/* The snapshot has the value of the barrier (its first VMAX bytes are listed). */
	CU_ASSERT(r.rc == 0 && r.got.n == 1 && r.got.v[0].len == sizeof(big) &&
		  r.got.v[0].v[0] == 1 && r.got.v[0].v[VMAX - 1] == 1);
	sli_table_stats(t, &st);
	CU_ASSERT(st.cow_waits == 1 && st.cow_copies == 0);
	v = sli_table_get(t, &k, 0, SLI_TTL_KEEP, &len);
	CU_ASSERT(v != NULL && len == sizeof(big2) && memcmp(v, big2, len) == 0);
	CU_ASSERT(sli_table_check(t, NULL, NULL) == 0);
	free(r.got.v);
	sli_table_destroy(t);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "snapshot = state at the barrier, read after the changes", test_memory },
		{ "snapshot = state at the barrier, read by a thread during the changes",
		  test_memory_threads },
		{ "with spilling: evictions, reloads, compaction, rings", test_spill },
		{ "with spilling, read by a thread during the changes", test_spill_threads },
		{ "the table destroyed before its snapshot is read", test_destroy_first },
		{ "a released snapshot's leftovers go a slice per call", test_drain },
		{ "back-to-back snapshots: the fresh marks of the one before are not cleared at "
		  "the "
		  "freeze, its entries are the new one's",
		  test_fresh_bits },
		{ "a second freeze while one is pending is refused", test_busy },
		{ "no memory for a copy: the task waits for the reader", test_wait },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("state-table-snap", tests);
}
