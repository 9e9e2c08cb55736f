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

int main(int argc, char **argv)
{
	CU_TestInfo tests[] = {
		{ "10M keys, 64 MiB budget, vs reference", test_big },
		CU_TEST_INFO_NULL,
	};
	const char *env = getenv("SLUICE_SPILL_KEYS");
	struct sli_io *io;

	if (argc != 2 || (strcmp(argv[1], "posix") != 0 && strcmp(argv[1], "io_uring") != 0)) {
		fprintf(stderr, "usage: %s posix|io_uring\n", argv[0]);
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
	return sl_test_main("state-spill-big", tests);
}
