/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dirs.h — the scratch directories of the checkpoint job tests
 * (test_ckpt_ops.c, test_reduce_cow.c, test_ckpt_rescale_ua.c,
 * test_ckpt_mem.c): emptied output and checkpoint directories, and a
 * main() that removes the test's directory when every test passed (left
 * for a look otherwise).
 */
#ifndef TEST_DIRS_H
#define TEST_DIRS_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_test.h"

/* rm -rf @path: system()'s result, -1 when the command does not fit. */
static inline int rm_cmd(const char *path)
{
	char cmd[1100];
	int n = snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);

	return n > 0 && (size_t)n < sizeof(cmd) ? system(cmd) : -1;
}

/* Within a test: @path removed. */
static inline void rm_rf(const char *path)
{
	CU_ASSERT_FATAL(rm_cmd(path) == 0);
}

/* Within a test: @path an empty directory. */
static inline void fresh_dir(const char *path)
{
	rm_rf(path);
	CU_ASSERT_FATAL(mkdir(path, 0755) == 0);
}

/* Within a test: the output directory @out empty, no checkpoint directory @ck. */
static inline void fresh_out_ck(const char *out, const char *ck)
{
	fresh_dir(out);
	rm_rf(ck);
}

/*
 * main()'s start: SIGPIPE ignored, the scratch directory
 * /tmp/sluice-@name-PID made into @dir (@len bytes), then @write() (NULL:
 * none) writes the input there (0 or -1). 0, or -1 said on stderr.
 */
static inline int scratch_setup(char *dir, size_t len, const char *name, int (*write)(void))
{
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, len, "/tmp/sluice-%s-%d", name, (int)getpid());
	if (mkdir(dir, 0755) == 0 && (write == NULL || write() == 0))
		return 0;
	fprintf(stderr, "cannot make %s or write the input there: %s\n", dir, strerror(errno));
	return -1;
}

/* Seed rand() with @seed and create the input file @dir/@name, its path into @path (@len bytes). */
static inline FILE *input_open(char *path, size_t len, const char *dir, const char *name,
			       unsigned seed)
{
	snprintf(path, len, "%s/%s", dir, name);
	srand(seed);
	return fopen(path, "w");
}

/* sl_test_main(), then @dir removed when every test passed. */
static inline int sl_test_main_rm(const char *suite, CU_TestInfo *tests, const char *dir)
{
	int rc = sl_test_main(suite, tests);

	if (rc == 0 && rm_cmd(dir) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	return rc;
}

#endif /* TEST_DIRS_H */
