/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_spill_big.c — 10 M distinct keys through a table with a 64 MiB
 * budget (the state is ~10x that), with the engine named on the command
 * line (posix or io_uring; meson runs both).
 *
 * The reference is an array of versions indexed by key number (values
 * are derived from key and version). Phases: insert every key; random
 * batches of 32 lookups (checked against the reference) each followed by
 * updates of half of them and an occasional remove; then every entry is
 * checked through a partition (which reads the spilled ones) and the
 * count against the reference. Memory: stats.resident within the budget
 * plus one entry and one slot segment (64 KiB) after every put, stats.bytes (slab held, free blocks
 * included) within budget * 5/4 (see check_memory), and the spill index within its stated
 * 43 bytes per spilled entry (plus 256 parts of 64 slots).
 * SLUICE_SPILL_KEYS overrides the key count (development only).
 *
 * With KEYS and BUDGET_KIB after the engine: namespaced entries instead
 * (map-like: KEYS keys x 8 namespaces, one ring record per key on
 * disk), the same phases plus clears of whole keys, the same memory
 * bounds (resident plus one reloaded ring) and a partition check of
 * every entry and its key group. Meson runs it in every build with a
 * size that takes seconds under the sanitizers, and larger in release.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_test.h"
#include "spill_common.h"

#define MAXP   128
#define BUDGET ((size_t)64 << 20)

static enum sli_io_kind kind;
static unsigned nkeys = 10u * 1000 * 1000;
static size_t ns_budget;

static uint64_t rng = 99;

static uint64_t rnd(void)
{
	return sp_rand(&rng);
}

static unsigned mem_bad;
static bool reported;

static void check_memory(struct sli_table *t)
{
	struct sli_table_stats st;

	sli_table_stats(t, &st);
	/* Eviction runs before the put: its entry and one 64 KiB slot segment come after. */
	mem_bad += st.resident > BUDGET + (64u << 10) + 4096;
	/*
	 * The slab keeps freed blocks (chunks go back only at fini): when the
	 * slot array doubles (to at most half the budget), entries worth the
	 * growth, at most budget / 4, are evicted but stay held.
	 */
	mem_bad += st.bytes > BUDGET + BUDGET / 4;
	mem_bad += st.spill_index_bytes > st.spilled * 43 + 256 * 64 * 16 + 32768 * 16;
	if (mem_bad != 0 && !reported) {
		reported = true;
		printf("  (over: resident %zu B, bytes %zu B, index %zu B for %zu spilled)\n",
		       st.resident, st.bytes, st.spill_index_bytes, st.spilled);
	}
}

static void test_big(void)
{
	uint32_t *ver = calloc(nkeys, sizeof(*ver));
	struct sli_spill_conf c = { .budget = BUDGET, .io = kind };
	struct sli_table_stats st;
	struct sli_table *t;
	char dir[64];
	unsigned bad = 0, ops = nkeys / 10;
	size_t present = 0, seen = 0;

	CU_ASSERT_FATAL(ver != NULL && sp_mkdtemp(dir, sizeof(dir)) != NULL);
	c.dir = dir;
	CU_ASSERT_FATAL(sli_table_create(NULL, MAXP, 0, MAXP - 1, &t) == 0);
	CU_ASSERT_FATAL(sli_table_set_spill(t, &c) == 0);
	printf("  (engine %s, %u keys, budget %zu MiB)\n", sli_table_spill_engine(t), nkeys,
	       BUDGET >> 20);
	for (uint64_t key = 0; key < nkeys; key++) {
		uint64_t v[2];
		struct sli_skey k = sp_key(&key, 1);

		sp_value(key, 1, v);
		bad += sli_table_put(t, &k, v, sizeof(v), SLI_TTL_NONE) != 1;
		ver[key] = 1;
		if ((key & 0xffff) == 0)
			check_memory(t);
	}
	CU_ASSERT_EQUAL(bad, 0);
	/* Random batches: 32 lookups, then updates of half of them. */
	for (unsigned op = 0; op < ops; op += 32) {
		uint64_t keys[32];
		struct sli_skey ks[32];
		struct sli_lookup out[32];
		int hits = 0;

		for (int i = 0; i < 32; i++) {
			keys[i] = rnd() % nkeys;
			ks[i] = sp_key(&keys[i], 1);
			hits += ver[keys[i]] != 0;
		}
		bad += sli_table_lookup_batch(t, 32, ks, 0, SLI_TTL_KEEP, out) != hits;
		for (int i = 0; i < 32; i++)
			bad +=
			    ver[keys[i]] == 0
				? out[i].value != NULL
				: (out[i].value == NULL ||
				   !sp_value_ok(keys[i], ver[keys[i]], out[i].value, out[i].len));
		for (int i = 0; i < 32; i += 2) {
			uint64_t v[2];
			uint32_t nv = ver[keys[i]] + 1;

			if (i == 0 && op % 1024 == 0) {
				bad += sli_table_remove(t, &ks[i]) != (ver[keys[i]] != 0);
				ver[keys[i]] = 0;
				continue;
			}
			sp_value(keys[i], nv, v);
			bad += sli_table_put(t, &ks[i], v, sizeof(v), SLI_TTL_NONE) !=
			       (ver[keys[i]] == 0);
			ver[keys[i]] = nv;
		}
		check_memory(t);
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(mem_bad, 0);
	sli_table_stats(t, &st);
	printf("  (%zu entries, %zu spilled, resident %zu B, slab held %zu B, index %zu B = %.1f "
	       "B/spilled, buffers %zu B, files %llu B, live %llu B, %llu reads in %llu batches, "
	       "%llu writes, %llu compactions)\n",
	       st.entries, st.spilled, st.resident, st.bytes, st.spill_index_bytes,
	       (double)st.spill_index_bytes / (double)(st.spilled ? st.spilled : 1),
	       st.spill_buffer_bytes, (unsigned long long)st.spill_file_bytes,
	       (unsigned long long)st.spill_live_bytes, (unsigned long long)st.spill_reads,
	       (unsigned long long)st.spill_batches, (unsigned long long)st.spill_writes,
	       (unsigned long long)st.spill_compactions);
	CU_ASSERT(st.spilled > st.entries * 8 / 10);
	/* Every entry, through a partition that reads the spilled ones. */
	bad += sp_check_partition(t, ver, nkeys, MAXP, false, &seen);
	for (unsigned i = 0; i < nkeys; i++)
		present += ver[i] != 0;
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(seen, present);
	CU_ASSERT_EQUAL(sli_table_count(t), present);
	CU_ASSERT_EQUAL(sli_table_error(t, NULL, 0), 0);
	sli_table_destroy(t);
	sp_rmdir(dir);
	free(ver);
}

/* ------------------------------------------------ namespaced (map-like) */

/*
 * Keys x NNS namespaces (map-like state: one ring of NNS entries per
 * key, spilled as one record), against versions ver[key * NNS + ns].
 * Memory: resident within the budget plus one slot segment and one
 * reloaded ring (a get can bring one back above the budget; the next
 * put evicts first), slab held within budget * 5/4, the spill index
 * within 43 bytes per spilled ring.
 */
enum { NNS = 8 };

static void check_memory_ns(struct sli_table *t, size_t budget)
{
	struct sli_table_stats st;

	sli_table_stats(t, &st);
	mem_bad += st.resident > budget + (64u << 10) + NNS * 128 + 4096;
	mem_bad += st.bytes > budget + budget / 4;
	mem_bad += st.spill_index_bytes > st.spilled_rings * 43 + 256 * 64 * 16 + 16384 * 16;
	if (mem_bad != 0 && !reported) {
		reported = true;
		printf("  (over: resident %zu B, bytes %zu B, index %zu B for %zu rings)\n",
		       st.resident, st.bytes, st.spill_index_bytes, st.spilled_rings);
	}
}

static struct sli_skey nkey(const uint64_t *key, unsigned ns, unsigned char nb[8])
{
	struct sli_skey k = sp_key(key, 2);

	k.ns_len = sp_ns(ns, nb);
	k.ns = nb;
	return k;
}

static void test_big_ns(void)
{
	size_t n = (size_t)nkeys * NNS, budget = ns_budget, present = 0, seen = 0;
	uint32_t *ver = calloc(n, sizeof(*ver));
	struct sli_spill_conf c = { .budget = budget, .io = kind };
	struct sli_table_stats st;
	struct sli_table *t;
	char dir[64];
	unsigned bad = 0, ops = nkeys;

	CU_ASSERT_FATAL(ver != NULL && sp_mkdtemp(dir, sizeof(dir)) != NULL);
	c.dir = dir;
	CU_ASSERT_FATAL(sli_table_create(NULL, MAXP, 0, MAXP - 1, &t) == 0);
	CU_ASSERT_FATAL(sli_table_set_spill(t, &c) == 0);
	printf("  (engine %s, %u keys x %d namespaces, budget %zu KiB)\n",
	       sli_table_spill_engine(t), nkeys, NNS, budget >> 10);
	for (uint64_t key = 0; key < nkeys; key++) {
		for (unsigned ns = 0; ns < NNS; ns++) {
			unsigned char nb[8], v[48];
			struct sli_skey k = nkey(&key, ns, nb);
			uint32_t len = sp_nvalue(key * NNS + ns, 1, v);

			bad += sli_table_put(t, &k, v, len, SLI_TTL_NONE) != 1;
			ver[key * NNS + ns] = 1;
		}
		if ((key & 0x3fff) == 0)
			check_memory_ns(t, budget);
	}
	CU_ASSERT_EQUAL(bad, 0);
	/* Random batches: 32 lookups (8 keys x 4 namespaces), then updates of a few. */
	for (unsigned op = 0; op < ops; op += 32) {
		uint64_t keys[32];
		unsigned char nb[32][8];
		size_t id[32];
		struct sli_skey ks[32];
		struct sli_lookup out[32];
		int hits = 0;

		for (int i = 0; i < 32; i++) {
			unsigned ns = (unsigned)(rnd() % NNS);

			keys[i] = i % 4 == 0 ? rnd() % nkeys : keys[i - 1];
			ks[i] = nkey(&keys[i], ns, nb[i]);
			id[i] = keys[i] * NNS + ns;
			hits += ver[id[i]] != 0;
		}
		bad += sli_table_lookup_batch(t, 32, ks, 0, SLI_TTL_KEEP, out) != hits;
		for (int i = 0; i < 32; i++)
			bad += ver[id[i]] == 0
				   ? out[i].value != NULL
				   : !sp_nvalue_ok(id[i], ver[id[i]], out[i].value, out[i].len);
		check_memory_ns(t, budget); /* the batch may have brought rings back */
		for (int i = 0; i < 32; i += 4) {
			unsigned char v[48];
			uint32_t nv = ver[id[i]] + 1, len = sp_nvalue(id[i], nv, v);

			if (i == 0 && op % 1024 == 0) {
				int cnt = 0;

				for (unsigned ns = 0; ns < NNS; ns++) {
					cnt += ver[keys[i] * NNS + ns] != 0;
					ver[keys[i] * NNS + ns] = 0;
				}
				bad += sli_table_clear_key(t, &ks[i]) != cnt;
				continue;
			}
			if (i == 4 && op % 512 == 0) {
				bad += sli_table_remove(t, &ks[i]) != (ver[id[i]] != 0);
				ver[id[i]] = 0;
				continue;
			}
			bad += sli_table_put(t, &ks[i], v, len, SLI_TTL_NONE) != (ver[id[i]] == 0);
			ver[id[i]] = nv;
		}
		check_memory_ns(t, budget);
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(mem_bad, 0);
	sli_table_stats(t, &st);
	printf("  (%zu entries, %zu spilled in %zu rings, resident %zu B, slab held %zu B, index "
	       "%zu B = %.1f B/ring, buffers %zu B, files %llu B, %llu ring evictions, %llu ring "
	       "reloads, %llu reads in %llu batches)\n",
	       st.entries, st.spilled, st.spilled_rings, st.resident, st.bytes,
	       st.spill_index_bytes,
	       (double)st.spill_index_bytes / (double)(st.spilled_rings ? st.spilled_rings : 1),
	       st.spill_buffer_bytes, (unsigned long long)st.spill_file_bytes,
	       (unsigned long long)st.ring_evictions, (unsigned long long)st.ring_reloads,
	       (unsigned long long)st.spill_reads, (unsigned long long)st.spill_batches);
	CU_ASSERT(st.spilled > st.entries * 8 / 10);
	CU_ASSERT(st.ring_reloads > 0);
	bad += sp_check_partition_ns(t, ver, NULL, nkeys, NNS, MAXP, &seen);
	for (size_t i = 0; i < n; i++)
		present += ver[i] != 0;
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(seen, present);
	CU_ASSERT_EQUAL(sli_table_count(t), present);
	CU_ASSERT_EQUAL(sli_table_error(t, NULL, 0), 0);
	sli_table_destroy(t);
	sp_rmdir(dir);
	free(ver);
}

int main(int argc, char **argv)
{
	CU_TestInfo tests[] = {
		{ "10M keys, 64 MiB budget, vs reference", test_big },
		CU_TEST_INFO_NULL,
	};
	CU_TestInfo tests_ns[] = {
		{ "keys x 8 namespaces, ~90% on disk, vs reference", test_big_ns },
		CU_TEST_INFO_NULL,
	};
	const char *env = getenv("SLUICE_SPILL_KEYS");
	struct sli_io *io;

	if ((argc != 2 && argc != 4) ||
	    (strcmp(argv[1], "posix") != 0 && strcmp(argv[1], "io_uring") != 0)) {
		fprintf(stderr, "usage: %s posix|io_uring [KEYS BUDGET_KIB]\n", argv[0]);
		return 1;
	}
	kind = strcmp(argv[1], "posix") == 0 ? SLI_IO_POSIX : SLI_IO_URING;
	if (sli_io_create(NULL, kind, &io) < 0) {
		printf("%s unavailable here: skipped\n", argv[1]);
		return SL_TEST_SKIP;
	}
	sli_io_destroy(io);
	if (env != NULL)
		nkeys = (unsigned)strtoul(env, NULL, 10);
	if (argc == 4) { /* namespaced: KEYS keys x 8 namespaces, a budget of BUDGET_KIB */
		nkeys = (unsigned)strtoul(argv[2], NULL, 10);
		ns_budget = (size_t)strtoul(argv[3], NULL, 10) << 10;
		if (nkeys == 0 || ns_budget == 0) {
			fprintf(stderr, "%s: bad KEYS or BUDGET_KIB\n", argv[0]);
			return 1;
		}
		return sl_test_main("state-spill-big-ns", tests_ns);
	}
	return sl_test_main("state-spill-big", tests);
}
