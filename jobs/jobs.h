/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jobs.h — the registry of built-in jobs that the `sluice` command runs.
 *
 * A built-in job is one .c file that defines a const struct sli_job_def and
 * one line in registry.c that lists it. The command owns everything around
 * the job: it copies the job's default options, parses the command line
 * into that copy with the job's option table (cli.h), and reports the
 * errors the job returns, once, as "sluice: JOB: <errbuf>".
 *
 * Threads: the registry is immutable; run() and plan() are called from the
 * main thread.
 */
#ifndef SLUICE_JOBS_JOBS_H
#define SLUICE_JOBS_JOBS_H

#include <stddef.h>
#include <stdio.h>

#include <sluice/sl_numa.h>

#include "cli.h"

/** Output formats of `sluice plan` and `sluice topology`; index into sli_format_names. */
enum sli_format {
	SLI_FORMAT_TEXT = 0,
	SLI_FORMAT_JSON = 1,
};

/** {"text", "json", NULL}, the choices of every --format option. */
extern const char *const sli_format_names[];

struct sli_job_def {
	/** Name on the command line: `sluice run NAME`. */
	const char *name;
	/** One line for `sluice list`. */
	const char *summary;
	/** A paragraph for `sluice run NAME --help`; lines end with '\n'. */
	const char *description;
	/** The job's options, ending with an entry whose name is NULL. */
	const struct sli_cli_opt *opts;
	/** Size of the job's options struct, and its default values. */
	size_t opts_size;
	const void *opts_default;

	/**
	 * run() - run the job to completion on the calling thread.
	 * @opts: the job's options struct, filled from the command line.
	 * Return: 0, or -errno with a sentence in @errbuf (the command
	 * prefixes it with "sluice: NAME: " and exits 1).
	 */
	int (*run)(const void *opts, char *errbuf, size_t errlen);

	/**
	 * plan() - describe on @f how run() would execute with @opts on the
	 * machine @topo describes, without running anything.
	 * Return: 0, or -errno with a sentence in @errbuf.
	 */
	int (*plan)(const void *opts, const struct sl_topo *topo, enum sli_format fmt, FILE *f,
		    char *errbuf, size_t errlen);
};

/** The built-in jobs, ending with NULL. */
extern const struct sli_job_def *const sli_jobs[];

/** sli_job_find() - the built-in job called @name, or NULL. */
const struct sli_job_def *sli_job_find(const char *name);

/* The jobs themselves, one file each. */
extern const struct sli_job_def sli_job_wordcount;

/* The embedded default input of wordcount (generated from jobs/sample.txt by embed.py). */
extern const unsigned char sli_sample_text[];
extern const size_t sli_sample_text_len;

#endif /* SLUICE_JOBS_JOBS_H */
