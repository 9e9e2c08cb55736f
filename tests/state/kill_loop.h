/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kill_loop.h — run a checkpointed job in forked children and kill each
 * with SIGKILL at a random moment after a checkpoint completed, so that
 * every restart must restore (test_ckpt_ops.c, test_reduce_cow.c).
 */
#ifndef KILL_LOOP_H
#define KILL_LOOP_H
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sl_test.h"
#include "test_dirs.h"

/* Whether checkpoint directory @ck holds a completed checkpoint (its _metadata). */
static inline bool has_complete(const char *ck)
{
	DIR *d = opendir(ck);
	struct dirent *de;
	bool yes = false;

	while (d != NULL && !yes && (de = readdir(d)) != NULL) {
		char path[700];
		struct stat sb;

		snprintf(path, sizeof(path), "%s/%s/_metadata", ck, de->d_name);
		yes = strncmp(de->d_name, "chk-", 4) == 0 && stat(path, &sb) == 0;
	}
	if (d != NULL)
		closedir(d);
	return yes;
}

static inline void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * Run @run(@arg, rate) (0 on success) in a child, writing into output
 * directory @out and checkpointing into @ck, and kill it 30 to 30 +
 * @spread_ms ms after its first completed checkpoint, until @kills kills
 * landed in one series of restarts (at most 100 attempts). A child that
 * finished first starts the series over: @out is emptied, @ck removed, and
 * the rate drops by 30%. Return the kills of the last series.
 */
static inline int kill_loop(int (*run)(void *arg, double rate), void *arg, const char *out,
			    const char *ck, int kills, double rate, int spread_ms)
{
	int n = 0;

	for (int attempt = 0; attempt < 100 && n < kills; attempt++) {
		pid_t pid = fork();
		int status = 0;

		if (pid == 0)
			_exit(run(arg, rate) == 0 ? 0 : 1);
		CU_ASSERT_FATAL(pid > 0);
		/* Kill only after a checkpoint is complete: the restart must restore. */
		for (int i = 0; i < 12000 && !has_complete(ck); i++) /* a cap, not a timing */
			sleep_ms(5);
		sleep_ms(30 + rand() % spread_ms);
		if (kill(pid, SIGKILL) == 0 && waitpid(pid, &status, 0) == pid &&
		    WIFSIGNALED(status)) {
			n++;
			continue;
		}
		/* Finished before the kill: start over, so the kills land in one run. */
		CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		fresh_out_ck(out, ck);
		n = 0;
		rate *= 0.7;
	}
	return n;
}
#endif
