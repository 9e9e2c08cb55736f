/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_topo.c — topology discovery and description: synthetic topologies
 * checked against counts and orders computed here from the description's
 * numbers, this machine checked against sched_getaffinity(), affinity
 * restriction honoured, and the text and JSON printouts (the JSON is
 * parsed by Python through check_topo_json.py).
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sluice/sl_numa.h>

#include "sl_test.h"

#ifndef SL_PYTHON3
#error "SL_PYTHON3 and SL_CHECK_JSON come from tests/numa/meson.build"
#endif

/*
 * Expected shape of "pack:P numa:N core:C pu:U": PUs are numbered in
 * order, so PU i sits in package i / (N*C*U), node i / (C*U), core i / U,
 * at hardware thread i % U. @numa == 0 means no NUMA level (node 0).
 */
static void check_synthetic(const char *desc, unsigned pack, unsigned numa, unsigned cores,
			    unsigned pus)
{
	unsigned nodes_per_pack = numa ? numa : 1;
	unsigned ncpus = pack * nodes_per_pack * cores * pus;
	struct sl_topo *t = NULL;
	struct sl_topo_cpu c;
	char err[256] = "";

	CU_ASSERT_EQUAL_FATAL(sl_topo_create(desc, err, sizeof(err), &t), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_TRUE(sl_topo_is_synthetic(t));
	CU_ASSERT_EQUAL(sl_topo_npackages(t), pack);
	CU_ASSERT_EQUAL(sl_topo_nnodes(t), numa ? pack * numa : 1);
	CU_ASSERT_EQUAL(sl_topo_ncores(t), pack * nodes_per_pack * cores);
	CU_ASSERT_EQUAL(sl_topo_ncpus(t), ncpus);
	for (unsigned i = 0; i < ncpus; i++) {
		CU_ASSERT_EQUAL_FATAL(sl_topo_cpu(t, i, &c), 0);
		CU_ASSERT_EQUAL(c.pu, (int)i);
		CU_ASSERT_EQUAL(c.package, (int)(i / (nodes_per_pack * cores * pus)));
		CU_ASSERT_EQUAL(c.node, numa ? (int)(i / (cores * pus)) : 0);
		CU_ASSERT_EQUAL(c.core, (int)(i / pus));
		CU_ASSERT_EQUAL(c.smt, (int)(i % pus));
	}
	CU_ASSERT_EQUAL(sl_topo_cpu(t, ncpus, &c), -ERANGE);
	sl_topo_destroy(t);
}

static void test_synthetic_two_packages(void)
{
	check_synthetic("pack:2 numa:1 core:8 pu:2", 2, 1, 8, 2);
}

static void test_synthetic_four_nodes(void)
{
	check_synthetic("pack:2 numa:2 core:4 pu:1", 2, 2, 4, 1);
}

static void test_synthetic_no_numa(void)
{
	/* No package level either: the single package is index 0. */
	check_synthetic("core:4 pu:1", 1, 0, 4, 1);
}

static void test_synthetic_malformed(void)
{
	struct sl_topo *t = (struct sl_topo *)&t; /* must be reset to NULL */
	char err[256] = "";

	CU_ASSERT_EQUAL(sl_topo_create("pack:zz", err, sizeof(err), &t), -EINVAL);
	CU_ASSERT_PTR_NULL(t);
	CU_ASSERT_NOT_EQUAL(err[0], '\0');
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "pack:zz"));
	/* No error buffer is fine too. */
	CU_ASSERT_EQUAL(sl_topo_create("pack:zz", NULL, 0, &t), -EINVAL);
}

static void test_null_out(void)
{
	char err[256] = "";

	CU_ASSERT_EQUAL(sl_topo_create(NULL, err, sizeof(err), NULL), -EINVAL);
	CU_ASSERT_EQUAL(sl_topo_create("core:2 pu:1", NULL, 0, NULL), -EINVAL);
	sl_topo_destroy(NULL);
}

static void test_find_pu(void)
{
	struct sl_topo *t = NULL;
	struct sl_topo_cpu c;

	CU_ASSERT_EQUAL_FATAL(sl_topo_create("pack:2 numa:1 core:8 pu:2", NULL, 0, &t), 0);
	CU_ASSERT_EQUAL(sl_topo_find_pu(t, 19, &c), 0);
	CU_ASSERT_EQUAL(c.pu, 19);
	CU_ASSERT_EQUAL(c.core, 9);
	CU_ASSERT_EQUAL(c.node, 1);
	CU_ASSERT_EQUAL(c.smt, 1);
	CU_ASSERT_EQUAL(sl_topo_find_pu(t, 32, &c), -ENOENT);
	CU_ASSERT_EQUAL(sl_topo_find_pu(t, 4096, &c), -ENOENT);
	CU_ASSERT_EQUAL(sl_topo_find_pu(t, -1, &c), -ENOENT);
	sl_topo_destroy(t);
}

static void test_this_machine(void)
{
	struct sl_topo *t = NULL;
	struct sl_topo_cpu c;
	cpu_set_t aff;
	char err[256] = "";
	int prev_core = -1;

	CU_ASSERT_EQUAL_FATAL(sl_topo_create(NULL, err, sizeof(err), &t), 0);
	CU_ASSERT_FALSE(sl_topo_is_synthetic(t));
	CU_ASSERT_TRUE(sl_topo_ncpus(t) >= 1);
	CU_ASSERT_TRUE(sl_topo_ncores(t) >= 1 && sl_topo_ncores(t) <= sl_topo_ncpus(t));
	CU_ASSERT_TRUE(sl_topo_nnodes(t) >= 1 && sl_topo_npackages(t) >= 1);

	/* The kernel's view of where we may run, independent of hwloc. */
	CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof(aff), &aff), 0);
	CU_ASSERT_EQUAL(sl_topo_ncpus(t), (unsigned)CPU_COUNT(&aff));
	for (unsigned i = 0; i < sl_topo_ncpus(t); i++) {
		CU_ASSERT_EQUAL_FATAL(sl_topo_cpu(t, i, &c), 0);
		CU_ASSERT_TRUE(CPU_ISSET((size_t)c.pu, &aff));
		/* dense core indices, in order */
		CU_ASSERT_TRUE(c.core == prev_core || c.core == prev_core + 1);
		CU_ASSERT_EQUAL(c.smt == 0, c.core != prev_core);
		prev_core = c.core;
	}
	CU_ASSERT_EQUAL((unsigned)prev_core + 1, sl_topo_ncores(t));
	sl_topo_destroy(t);
}

static void test_affinity_honoured(void)
{
	struct sl_topo *t = NULL, *one = NULL;
	struct sl_topo_cpu last, c;
	cpu_set_t saved, only;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof(saved), &saved), 0);
	CU_ASSERT_EQUAL_FATAL(sl_topo_create(NULL, NULL, 0, &t), 0);
	if (sl_topo_ncpus(t) == 1) {
		printf("\n  note: one usable CPU, nothing to restrict; affinity case not run\n");
		sl_topo_destroy(t);
		return;
	}
	CU_ASSERT_EQUAL_FATAL(sl_topo_cpu(t, sl_topo_ncpus(t) - 1, &last), 0);
	CPU_ZERO(&only);
	CPU_SET((size_t)last.pu, &only);
	CU_ASSERT_EQUAL_FATAL(sched_setaffinity(0, sizeof(only), &only), 0);

	CU_ASSERT_EQUAL(sl_topo_create(NULL, NULL, 0, &one), 0);
	CU_ASSERT_EQUAL(sched_setaffinity(0, sizeof(saved), &saved), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(one);
	CU_ASSERT_EQUAL(sl_topo_ncpus(one), 1);
	CU_ASSERT_EQUAL(sl_topo_ncores(one), 1);
	CU_ASSERT_EQUAL(sl_topo_cpu(one, 0, &c), 0);
	CU_ASSERT_EQUAL(c.pu, last.pu);
	CU_ASSERT_EQUAL(c.core, 0); /* dense: the only usable core */
	CU_ASSERT_EQUAL(c.smt, 0);
	CU_ASSERT_EQUAL(sl_topo_find_pu(one, sl_topo_cpu(t, 0, &c) == 0 ? c.pu : -1, NULL),
			-ENOENT);

	/* The printout says how many PUs the restriction took away. */
	f = open_memstream(&text, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(sl_topo_print(one, f, SL_TOPO_TEXT), 0);
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "1 PU usable"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "not usable"));
	free(text);

	sl_topo_destroy(one);
	sl_topo_destroy(t);
}

static void test_print_text(void)
{
	struct sl_topo *t = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	CU_ASSERT_EQUAL_FATAL(sl_topo_create("pack:2 numa:1 core:8 pu:2", NULL, 0, &t), 0);
	f = open_memstream(&text, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(sl_topo_print(t, f, SL_TOPO_TEXT), 0);
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "machine: 2 packages, 2 NUMA nodes, 16 cores, "
					    "32 PUs usable (32 in the machine)\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "source: synthetic \"pack:2 numa:1 core:8 pu:2\"\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "package 1\n  node 1 ("));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "core 15: pu 30,31"));
	CU_ASSERT_PTR_NULL(strstr(text, "not usable"));
	free(text);

	CU_ASSERT_EQUAL(sl_topo_print(t, NULL, SL_TOPO_TEXT), -EINVAL);
	CU_ASSERT_EQUAL(sl_topo_print(t, stdout, (enum sl_topo_format)7), -EINVAL);
	sl_topo_destroy(t);
}

/* Print @t as JSON to a file and let Python parse and check it. */
static int json_check(const struct sl_topo *t, int packages, int nodes, int cores, int pus)
{
	char path[] = "/tmp/sl_topo_json_XXXXXX", cmd[512];
	int fd = mkstemp(path), rc;
	FILE *f;

	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		unlink(path);
		return -EIO;
	}
	rc = sl_topo_print(t, f, SL_TOPO_JSON);
	fclose(f);
	if (rc == 0) {
		snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s' %d %d %d %d", SL_PYTHON3, SL_CHECK_JSON,
			 path, packages, nodes, cores, pus);
		rc = system(cmd);
	}
	unlink(path);
	return rc;
}

static void test_print_json(void)
{
	struct sl_topo *t = NULL;

	CU_ASSERT_EQUAL_FATAL(sl_topo_create("pack:2 numa:1 core:8 pu:2", NULL, 0, &t), 0);
	CU_ASSERT_EQUAL(json_check(t, 2, 2, 16, 32), 0);
	sl_topo_destroy(t);

	CU_ASSERT_EQUAL_FATAL(sl_topo_create("pack:2 numa:2 core:4 pu:1", NULL, 0, &t), 0);
	CU_ASSERT_EQUAL(json_check(t, 2, 4, 16, 16), 0);
	sl_topo_destroy(t);

	/* This machine: the JSON must parse and agree with the accessors and itself. */
	CU_ASSERT_EQUAL_FATAL(sl_topo_create(NULL, NULL, 0, &t), 0);
	CU_ASSERT_EQUAL(json_check(t, (int)sl_topo_npackages(t), (int)sl_topo_nnodes(t),
				   (int)sl_topo_ncores(t), (int)sl_topo_ncpus(t)),
			0);
	sl_topo_destroy(t);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "synthetic: pack:2 numa:1 core:8 pu:2", test_synthetic_two_packages },
		{ "synthetic: pack:2 numa:2 core:4 pu:1", test_synthetic_four_nodes },
		{ "synthetic: core:4 pu:1 (no NUMA level)", test_synthetic_no_numa },
		{ "synthetic: malformed -> -EINVAL + errbuf", test_synthetic_malformed },
		{ "NULL out -> -EINVAL", test_null_out },
		{ "find_pu and -ENOENT", test_find_pu },
		{ "this machine matches sched_getaffinity", test_this_machine },
		{ "CPU affinity restricts the usable PUs", test_affinity_honoured },
		{ "text printout", test_print_text },
		{ "JSON printout parses with the right counts", test_print_json },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("numa-topo", tests);
}
