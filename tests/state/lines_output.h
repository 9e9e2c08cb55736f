/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lines_output.h — helpers of the job tests that run a line source over
 * an input file they wrote ("line 0" .. "line NLINES-1") into part files
 * or text files, and check the output against that input: every line
 * exactly once, or at most once (a committed prefix); set() for options.
 * Static functions, included by one test file each; define LINES_TEST_NAME
 * first: the scratch directory is /tmp/LINES_TEST_NAME-PID.
 */
#ifndef LINES_OUTPUT_H
#define LINES_OUTPUT_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sluice/sl_job.h>

#define NLINES 20000

static char tmpdir[256], input[300];

static inline void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static inline void rm_rf(const char *path)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", path);
}

static inline void fresh_dir(const char *path)
{
	rm_rf(path);
	mkdir(path, 0755);
}

static inline void write_input(void)
{
	FILE *f;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/%s-%d", LINES_TEST_NAME, (int)getpid());
	fresh_dir(tmpdir);
	snprintf(input, sizeof(input), "%s/in.txt", tmpdir);
	f = fopen(input, "w");
	for (int i = 0; i < NLINES; i++)
		fprintf(f, "line %d\n", i);
	fclose(f);
}

/* Count how often each input line occurs in the committed part files of @dir. */
static inline int check_output(const char *dir, int *counts, int *foreign)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int files = 0;

	memset(counts, 0, NLINES * sizeof(*counts));
	*foreign = 0;
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		char path[1024], line[128];
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		files++;
		while (fgets(line, sizeof(line), f) != NULL) {
			int v;
			char nl;

			if (sscanf(line, "line %d%c", &v, &nl) == 2 && nl == '\n' && v >= 0 &&
			    v < NLINES)
				counts[v]++;
			else
				(*foreign)++;
		}
		fclose(f);
	}
	closedir(d);
	return files;
}

/* Every line exactly once: return how many lines were not (0: all good). */
static inline int exactly_once(const char *dir)
{
	static int counts[NLINES];
	int foreign, bad = 0;

	check_output(dir, counts, &foreign);
	for (int i = 0; i < NLINES; i++)
		bad += counts[i] != 1;
	if (bad || foreign)
		fprintf(stderr, "%s: %d lines not exactly once, %d foreign lines\n", dir, bad,
			foreign);
	return bad + foreign;
}

/* At most once (a stopped run's committed prefix): return how many lines occur twice or more. */
static inline int at_most_once(const char *dir, int *seen)
{
	static int counts[NLINES];
	int foreign, dup = 0;

	check_output(dir, counts, &foreign);
	*seen = 0;
	for (int i = 0; i < NLINES; i++) {
		dup += counts[i] > 1;
		*seen += counts[i] > 0;
	}
	return dup + foreign;
}

/* sl_job_set(), saying on stderr what was refused. */
static inline int set(struct sl_job *job, const char *k, const char *v)
{
	char err[512];
	int rc = sl_job_set(job, k, v, err, sizeof(err));

	if (rc < 0)
		fprintf(stderr, "sl_job_set %s=%s: %s\n", k, v, err);
	return rc;
}

#endif /* LINES_OUTPUT_H */
