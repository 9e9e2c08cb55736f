/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jobs.h — the registry of built-in jobs that the `sluice` command runs.
 *
 * A built-in job is one .c file that defines a const struct sli_job_def and
 * one line in registry.c that lists it. The job only builds its dataflow
 * graph and reports its results; the command owns everything around it:
 * it copies the job's default options, parses the command line into that
 * copy with the job's option table and the runtime's options (cli.h),
 * creates the struct sl_job and sets the runtime options on it, builds
 * the platform (topology, placement), prints plans, runs the job with
 * signal handling and a live status line, and reports the errors, once,
 * as "sluice: JOB: <errbuf>".
 *
 * Threads: the registry is immutable; check(), build(), finish() and
 * destroy() are called from the main thread. The operators a job builds
 * run on the runtime's worker threads.
 */
#ifndef SLUICE_JOBS_JOBS_H
#define SLUICE_JOBS_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <sluice/sl_job.h>
#include <sluice/sl_numa.h>

#include "cli.h"

/**
 * Output formats of `sluice plan` and `sluice topology`; index into
 * sli_format_names (both) and sli_plan_format_names (plan only: DOT).
 * TEXT, JSON and DOT have the values of enum sl_plan_format.
 */
enum sli_format {
	SLI_FORMAT_TEXT = 0,
	SLI_FORMAT_JSON = 1,
	SLI_FORMAT_DOT = 2,
};

/** {"text", "json", NULL}, the choices of `sluice topology --format`. */
extern const char *const sli_format_names[];
/** {"text", "json", "dot", NULL}, the choices of `sluice plan --format`. */
extern const char *const sli_plan_format_names[];

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
	 * check() - validate @opts beyond what the option table checks
	 * (formats of values, combinations). Opens and creates nothing.
	 * Return: 0, or -EINVAL with a sentence fragment in @errbuf naming
	 * the option (the command reports it as a usage error, exit 2).
	 */
	int (*check)(const void *opts, char *errbuf, size_t errlen);

	/**
	 * build() - add the job's sources, operators and sinks to @job
	 * (created, with the runtime options already set, by the command).
	 * @run: true before sl_job_run(): prepare what the run needs (output
	 *       files are created here); false for `sluice plan`: open and
	 *       create nothing.
	 * @state: receives what the job needs until destroy(); the job's
	 *         connector configurations live there, so it must outlive
	 *         the run.
	 * Return: 0, or -errno with a sentence in @errbuf (exit 1).
	 */
	int (*build)(const void *opts, struct sl_job *job, bool run, void **state, char *errbuf,
		     size_t errlen);

	/**
	 * finish() - called once after sl_job_run() returned @rc (with the
	 * runtime's sentence in @errbuf when @rc < 0): print the results of
	 * a successful run, or reword the runtime's error for the user.
	 * @stopped: the run was stopped by a signal (it drained, @rc is 0).
	 * Return: 0, or -errno with a sentence in @errbuf (exit 1).
	 */
	int (*finish)(void *state, int rc, bool stopped, char *errbuf, size_t errlen);

	/** destroy() - free @state; accepts NULL. */
	void (*destroy)(void *state);
};

/** The built-in jobs, ending with NULL. */
extern const struct sli_job_def *const sli_jobs[];

/** sli_job_find() - the built-in job called @name, or NULL. */
const struct sli_job_def *sli_job_find(const char *name);

/* The jobs themselves, one file each. */
extern const struct sli_job_def sli_job_wordcount;
extern const struct sli_job_def sli_job_window_agg;

/* The embedded default input of wordcount (generated from jobs/sample.txt by embed.py). */
extern const unsigned char sli_sample_text[];
extern const size_t sli_sample_text_len;

/**
 * sli_run_job() - sl_job_run() for the command line (runner.c): SIGINT and
 * SIGTERM stop the job gracefully (a second one exits with status 130),
 * and while it runs a status line is printed on standard error when that
 * is a terminal. The signal handlers stay installed afterwards.
 * @stopped: receives true when a signal stopped the job.
 * Return: what sl_job_run() returned (with @errbuf filled), or -errno when
 * the signal handlers cannot be installed.
 */
int sli_run_job(struct sl_job *job, const struct sl_platform *platform, bool *stopped, char *errbuf,
		size_t errlen);

/** sli_run_forget() - make the signal handlers forget the job before it is destroyed. */
void sli_run_forget(void);

/* The control socket (control.c; the protocol is described there). */
struct sli_control;

/**
 * sli_control_default_path() - the default control socket of process
 * @pid: $XDG_RUNTIME_DIR/sluice/PID.sock, or /tmp/sluice-UID/PID.sock.
 * Return: 0; -ENAMETOOLONG.
 */
int sli_control_default_path(long pid, char *buf, size_t len);

/**
 * sli_control_start() - listen on control socket @path (NULL: the default,
 * its directory created with mode 0700) for @job, named @name, in a thread
 * of its own; logs the path at info level. Return: 0; -errno with a
 * sentence naming the socket (too long a path, in use by another process,
 * a directory of another user, ...).
 */
int sli_control_start(struct sl_job *job, const char *name, const char *path,
		      struct sli_control **out, char *errbuf, size_t errlen);

/** sli_control_stop() - stop the thread, remove the socket file, free @c (NULL is fine). */
void sli_control_stop(struct sli_control *c);

/**
 * sli_control_request() - send @request (one line, no '\n') to control
 * socket @sock and read the one-line reply into @reply (without '\n').
 * Return: 0; -errno with a sentence naming the socket (cannot connect,
 * no reply).
 */
int sli_control_request(const char *sock, const char *request, char *reply, size_t len,
			char *errbuf, size_t errlen);

#endif /* SLUICE_JOBS_JOBS_H */
