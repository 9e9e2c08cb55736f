/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sorted_lines.h — the committed output of a job's exactly-once part files
 * as a sorted list of lines, and its comparison with a reference list the
 * test computed. Static functions, for the checkpoint tests that compare
 * whole outputs (test_ckpt_ops.c, test_ckpt_rescale_ua.c).
 */
#ifndef SORTED_LINES_H
#define SORTED_LINES_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_test.h"

struct lines {
	char **v;
	size_t n, cap;
};

static inline void lines_add(struct lines *ls, const char *s)
{
	if (ls->n == ls->cap) {
		ls->cap = ls->cap ? 2 * ls->cap : 1024;
		ls->v = realloc(ls->v, ls->cap * sizeof(*ls->v));
		CU_ASSERT_FATAL(ls->v != NULL);
	}
	ls->v[ls->n++] = strdup(s);
}

static inline void lines_free(struct lines *ls)
{
	for (size_t i = 0; i < ls->n; i++)
		free(ls->v[i]);
	free(ls->v);
	memset(ls, 0, sizeof(*ls));
}

static inline int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The committed output of @dir (part files, not the hidden pending ones), sorted. */
static inline void committed(const char *dir, struct lines *got)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	CU_ASSERT(d != NULL);
	while (d != NULL && (de = readdir(d)) != NULL) {
		char path[700], line[160];
		FILE *f;

		if (strncmp(de->d_name, "part-", 5) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "r");
		CU_ASSERT(f != NULL);
		while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
			line[strcspn(line, "\n")] = '\0';
			lines_add(got, line);
		}
		if (f != NULL)
			fclose(f);
	}
	if (d != NULL)
		closedir(d);
	if (got->n > 0)
		qsort(got->v, got->n, sizeof(*got->v), cmp_str);
}

/* 0 when @got equals @want (both sorted); else print the first difference and return 1. */
static inline int same(const char *what, const struct lines *got, const struct lines *want)
{
	size_t i = 0;

	while (i < got->n && i < want->n && strcmp(got->v[i], want->v[i]) == 0)
		i++;
	if (i == got->n && i == want->n)
		return 0;
	fprintf(stderr, "\n    %s: %zu lines, want %zu; first difference at %zu: '%s' vs '%s'\n",
		what, got->n, want->n, i, i < got->n ? got->v[i] : "(end)",
		i < want->n ? want->v[i] : "(end)");
	return 1;
}

#endif
