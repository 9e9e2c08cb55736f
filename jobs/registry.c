/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry.c — the list of built-in jobs. Adding a job is one file that
 * defines its struct sli_job_def and one line in sli_jobs[] below.
 */
#include <string.h>

#include "jobs.h"

const char *const sli_format_names[] = { "text", "json", NULL };
const char *const sli_plan_format_names[] = { "text", "json", "dot", NULL };

const struct sli_job_def *const sli_jobs[] = {
	&sli_job_wordcount,
	&sli_job_window_agg,
	NULL,
};

const struct sli_job_def *sli_job_find(const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; sli_jobs[i] != NULL; i++) {
		if (strcmp(sli_jobs[i]->name, name) == 0)
			return sli_jobs[i];
	}
	return NULL;
}
