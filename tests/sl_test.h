/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_test.h — the common main() of Sluice's CUnit test programs.
 *
 * A test program lists its tests in a CU_TestInfo array and returns
 * sl_test_main(name, tests): 0 when every assertion held, 1 when any
 * failed (or CUnit itself failed), never a raw count. Programs that
 * cannot run here (missing kernel feature, say) return SL_TEST_SKIP
 * before calling it, after printing why.
 *
 * SL_TEST_ONLY=substring in the environment runs only the tests whose
 * name contains it (to repeat one test under load, say); the programs run
 * by `make test` never set it.
 */
#ifndef SL_TEST_H
#define SL_TEST_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SL_TEST_SKIP 77

static inline int sl_test_main(const char *suite, CU_TestInfo *tests)
{
	CU_SuiteInfo suites[] = {
		{ (char *)suite, NULL, NULL, NULL, NULL, tests },
		CU_SUITE_INFO_NULL,
	};
	const char *only = getenv("SL_TEST_ONLY");
	unsigned failures;

	if (only != NULL && *only != '\0') {
		size_t k = 0;

		for (size_t i = 0; tests[i].pName != NULL; i++)
			if (strstr(tests[i].pName, only) != NULL)
				tests[k++] = tests[i];
		tests[k].pName = NULL;
		tests[k].pTestFunc = NULL;
	}
	if (CU_initialize_registry() != CUE_SUCCESS) {
		fprintf(stderr, "%s: CUnit: %s\n", suite, CU_get_error_msg());
		return 1;
	}
	if (CU_register_suites(suites) != CUE_SUCCESS) {
		fprintf(stderr, "%s: CUnit: %s\n", suite, CU_get_error_msg());
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	if (CU_basic_run_tests() != CUE_SUCCESS) {
		fprintf(stderr, "%s: CUnit: %s\n", suite, CU_get_error_msg());
		CU_cleanup_registry();
		return 1;
	}
	failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	if (CU_get_number_of_tests_run() == 0)
		failures++; /* a suite that ran nothing proves nothing */
	CU_cleanup_registry();
	return failures ? 1 : 0;
}

#endif /* SL_TEST_H */
