/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_place.c — worker placement on synthetic topologies (expected PUs
 * derived here from the description's numbers), its error returns, the
 * policy parser, and pinning on this machine checked with sched_getcpu().
 */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sluice/sl_numa.h>

#include "sl_test.h"

#define TWO_PACK "pack:2 numa:1 core:8 pu:2" /* PU i: node i/16, core i/2, smt i%2 */

static struct sl_topo *synthetic(const char *desc)
{
	struct sl_topo *t = NULL;

	CU_ASSERT_EQUAL(sl_topo_create(desc, NULL, 0, &t), 0);
	return t;
}

static bool all_distinct(const struct sl_topo_cpu *w, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = i + 1; j < n; j++)
			if (w[i].pu == w[j].pu)
				return false;
	return true;
}

static void test_spread_alternates_nodes(void)
{
	struct sl_topo *t = synthetic(TWO_PACK);
	struct sl_topo_cpu w[4];

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL_FATAL(sl_place_workers(t, 4, SL_PLACE_SPREAD, w, NULL, 0), 0);
	for (unsigned i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(w[i].node, (int)(i % 2));
		CU_ASSERT_EQUAL(w[i].smt, 0);
	}
	/* first free core of each node, in order: PUs 0, 16, 2, 18 */
	CU_ASSERT_EQUAL(w[0].pu, 0);
	CU_ASSERT_EQUAL(w[1].pu, 16);
	CU_ASSERT_EQUAL(w[2].pu, 2);
	CU_ASSERT_EQUAL(w[3].pu, 18);
	sl_topo_destroy(t);
}

static void test_spread_cores_before_threads(void)
{
	struct sl_topo *t = synthetic(TWO_PACK);
	struct sl_topo_cpu w[32];

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (unsigned n = 1; n <= 32; n++) {
		unsigned smt1 = 0;

		CU_ASSERT_EQUAL_FATAL(sl_place_workers(t, n, SL_PLACE_SPREAD, w, NULL, 0), 0);
		CU_ASSERT_TRUE(all_distinct(w, n));
		for (unsigned i = 0; i < n; i++)
			smt1 += w[i].smt == 1;
		/* 16 cores: no second thread until all 16 have a worker */
		CU_ASSERT_EQUAL(smt1, n > 16 ? n - 16 : 0);
	}
	sl_topo_destroy(t);
}

static void test_spread_four_nodes(void)
{
	/* nodes 0,1 in package 0 and 2,3 in package 1: alternate packages too */
	struct sl_topo *t = synthetic("pack:2 numa:2 core:4 pu:1");
	struct sl_topo_cpu w[8];
	static const int want_node[8] = { 0, 2, 1, 3, 0, 2, 1, 3 };

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL_FATAL(sl_place_workers(t, 8, SL_PLACE_SPREAD, w, NULL, 0), 0);
	for (unsigned i = 0; i < 8; i++) {
		CU_ASSERT_EQUAL(w[i].node, want_node[i]);
		CU_ASSERT_EQUAL(w[i].package, want_node[i] / 2);
	}
	CU_ASSERT_TRUE(all_distinct(w, 8));
	sl_topo_destroy(t);
}

static void test_spread_packages_when_one_node(void)
{
	/* No NUMA level: hwloc gives one node for both packages. */
	struct sl_topo *t = synthetic("pack:2 core:2 pu:1");
	struct sl_topo_cpu w[4];

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(sl_topo_nnodes(t), 1);
	CU_ASSERT_EQUAL_FATAL(sl_place_workers(t, 4, SL_PLACE_SPREAD, w, NULL, 0), 0);
	for (unsigned i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(w[i].package, (int)(i % 2));
	sl_topo_destroy(t);
}

static void test_pack_fills_node0(void)
{
	struct sl_topo *t = synthetic(TWO_PACK);
	struct sl_topo_cpu w[8];

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL_FATAL(sl_place_workers(t, 8, SL_PLACE_PACK, w, NULL, 0), 0);
	for (unsigned i = 0; i < 8; i++) {
		CU_ASSERT_EQUAL(w[i].node, 0);
		CU_ASSERT_EQUAL(w[i].core, (int)i);
		CU_ASSERT_EQUAL(w[i].smt, 0);
		CU_ASSERT_EQUAL(w[i].pu, (int)(2 * i));
	}
	sl_topo_destroy(t);
}

static void test_pack_17(void)
{
	struct sl_topo *t = synthetic(TWO_PACK);
	struct sl_topo_cpu w[17];

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL_FATAL(sl_place_workers(t, 17, SL_PLACE_PACK, w, NULL, 0), 0);
	for (unsigned i = 0; i < 16; i++) {
		CU_ASSERT_EQUAL(w[i].core, (int)i);
		CU_ASSERT_EQUAL(w[i].smt, 0);
		CU_ASSERT_EQUAL(w[i].node, (int)(i / 8));
	}
	/* then the second thread of node 0's first core */
	CU_ASSERT_EQUAL(w[16].smt, 1);
	CU_ASSERT_EQUAL(w[16].core, 0);
	CU_ASSERT_EQUAL(w[16].pu, 1);
	sl_topo_destroy(t);
}

static void test_all_pus(void)
{
	struct sl_topo *t = synthetic(TWO_PACK);
	struct sl_topo_cpu w[32];
	static const enum sl_place_policy policies[] = { SL_PLACE_SPREAD, SL_PLACE_PACK };

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (unsigned p = 0; p < 2; p++) {
		CU_ASSERT_EQUAL_FATAL(sl_place_workers(t, 32, policies[p], w, NULL, 0), 0);
		CU_ASSERT_TRUE(all_distinct(w, 32));
		for (unsigned i = 0; i < 32; i++)
			CU_ASSERT_TRUE(w[i].pu >= 0 && w[i].pu < 32);
	}
	sl_topo_destroy(t);
}

static void test_deterministic(void)
{
	struct sl_topo *t = synthetic("pack:2 numa:2 core:4 pu:2");
	struct sl_topo_cpu a[13], b[13];

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(sl_place_workers(t, 13, SL_PLACE_SPREAD, a, NULL, 0), 0);
	CU_ASSERT_EQUAL(sl_place_workers(t, 13, SL_PLACE_SPREAD, b, NULL, 0), 0);
	CU_ASSERT_EQUAL(memcmp(a, b, sizeof(a)), 0);
	sl_topo_destroy(t);
}

static void test_errors(void)
{
	struct sl_topo *t = synthetic(TWO_PACK);
	struct sl_topo_cpu w[33];
	char err[256] = "";

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(sl_place_workers(t, 33, SL_PLACE_SPREAD, w, err, sizeof(err)), -ERANGE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "33 workers"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "32 usable PUs"));
	CU_ASSERT_EQUAL(sl_place_workers(t, 33, SL_PLACE_PACK, w, NULL, 0), -ERANGE);

	err[0] = '\0';
	CU_ASSERT_EQUAL(sl_place_workers(t, 0, SL_PLACE_PACK, w, err, sizeof(err)), -EINVAL);
	CU_ASSERT_NOT_EQUAL(err[0], '\0');
	CU_ASSERT_EQUAL(sl_place_workers(t, 1, SL_PLACE_PACK, NULL, NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(sl_place_workers(NULL, 1, SL_PLACE_PACK, w, NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(sl_place_workers(t, 1, (enum sl_place_policy)9, w, NULL, 0), -EINVAL);
	sl_topo_destroy(t);
}

static void test_policy_parse(void)
{
	enum sl_place_policy p = SL_PLACE_PACK;

	CU_ASSERT_EQUAL(sl_place_policy_parse("spread", &p), 0);
	CU_ASSERT_EQUAL(p, SL_PLACE_SPREAD);
	CU_ASSERT_EQUAL(sl_place_policy_parse("pack", &p), 0);
	CU_ASSERT_EQUAL(p, SL_PLACE_PACK);
	CU_ASSERT_EQUAL(sl_place_policy_parse("packed", &p), -EINVAL);
	CU_ASSERT_EQUAL(sl_place_policy_parse("", &p), -EINVAL);
	CU_ASSERT_EQUAL(sl_place_policy_parse("Spread", &p), -EINVAL);
	CU_ASSERT_EQUAL(sl_place_policy_parse(NULL, &p), -EINVAL);
	CU_ASSERT_EQUAL(sl_place_policy_parse("spread", NULL), -EINVAL);
	CU_ASSERT_EQUAL(p, SL_PLACE_PACK);
}

static void test_pin_each_pu(void)
{
	struct sl_topo *t = NULL;
	struct sl_topo_cpu c;
	cpu_set_t saved;

	CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof(saved), &saved), 0);
	CU_ASSERT_EQUAL_FATAL(sl_topo_create(NULL, NULL, 0, &t), 0);
	for (unsigned i = 0; i < sl_topo_ncpus(t); i++) {
		CU_ASSERT_EQUAL_FATAL(sl_topo_cpu(t, i, &c), 0);
		CU_ASSERT_EQUAL(sl_numa_pin_thread(t, c.pu), 0);
		/* bound to a single CPU, the thread can only be running there */
		CU_ASSERT_EQUAL(sched_getcpu(), c.pu);
		CU_ASSERT_EQUAL(sl_numa_current_pu(), c.pu);
	}
	CU_ASSERT_EQUAL(sl_numa_pin_thread(t, 4096), -ENOENT);
	CU_ASSERT_EQUAL(sl_numa_pin_thread(t, -1), -ENOENT);
	CU_ASSERT_EQUAL(sl_numa_pin_thread(NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(sched_setaffinity(0, sizeof(saved), &saved), 0);
	sl_topo_destroy(t);
}

static void test_pin_synthetic(void)
{
	struct sl_topo *t = synthetic(TWO_PACK);

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(sl_numa_pin_thread(t, 0), -ENOTSUP);
	sl_topo_destroy(t);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "spread: 4 workers alternate nodes", test_spread_alternates_nodes },
		{ "spread: cores before second threads, n = 1..32",
		  test_spread_cores_before_threads },
		{ "spread: 4 nodes, alternating packages", test_spread_four_nodes },
		{ "spread: packages when one node", test_spread_packages_when_one_node },
		{ "pack: 8 workers fill node 0", test_pack_fills_node0 },
		{ "pack: 17 = 16 cores then one smt-1 PU", test_pack_17 },
		{ "n == ncpus: every PU once", test_all_pus },
		{ "same inputs, same placement", test_deterministic },
		{ "-ERANGE and -EINVAL", test_errors },
		{ "policy parse", test_policy_parse },
		{ "pin to each usable PU", test_pin_each_pu },
		{ "pin on synthetic -> -ENOTSUP", test_pin_synthetic },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("numa-place", tests);
}
