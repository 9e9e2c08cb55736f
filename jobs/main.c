/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c — the `sluice` command: runs, plans and lists the built-in jobs,
 * shows the machine's topology and the build's version.
 *
 * Exit status: 0 on success, 1 when a job or a command fails at run time
 * (unreadable file, write error, ...), 2 for a usage error. Every error is
 * reported here, once, as one line on standard error that names the
 * culprit and says where help is; the parser, the jobs and the library only
 * fill error buffers.
 *
 * Threads: the command runs on the main thread; a job's operators run on
 * the runtime's worker threads (sl_job_run), beside a watch thread that
 * takes signals and prints the status line (runner.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sl_config.h>
#include <sluice/sluice.h>

#include "cli.h"
#include "jobs.h"

#define EXIT_USAGE 2

/* Options of `sluice plan` only. */
struct plan_opts {
	int format; /* enum sli_format */
	const char *synthetic;
};

static const struct sli_cli_opt plan_options[] = {
	{
	    .name = "format",
	    .type = SLI_CLI_ENUM,
	    .offset = offsetof(struct plan_opts, format),
	    .help = "output format (default text)",
	    .choices = sli_plan_format_names,
	},
	{
	    .name = "synthetic",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct plan_opts, synthetic),
	    .metavar = "DESC",
	    .help = "plan for a made-up machine instead, e.g. 'pack:2 numa:1 core:8 pu:2'",
	},
	{ .name = NULL },
};

/* Options of `sluice run` only. */
struct run_opts {
	const char *stats;
	const char *control;
};

static const struct sli_cli_opt run_options[] = {
	{
	    .name = "stats",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct run_opts, stats),
	    .metavar = "PATH|-",
	    .help = "after the run, write each subtask's counters (records and batches in and "
		    "out, busy, backpressured and idle ms, worker, core) as JSON to PATH, or as "
		    "a table to standard error with -",
	},
	{
	    .name = "control",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct run_opts, control),
	    .metavar = "PATH",
	    .help = "listen for 'sluice savepoint' and status requests on Unix socket PATH "
		    "(default with --checkpoint-dir: $XDG_RUNTIME_DIR/sluice/PID.sock, or "
		    "/tmp/sluice-UID/PID.sock)",
	},
	{ .name = NULL },
};

/*
 * The runtime's options, common to every job. Values go to sl_job_set()
 * as typed, so the runtime alone decides what is valid and says so.
 */
struct runtime_opts {
	const char *parallelism;
	const char *workers;
	const char *batch_size;
	const char *max_record_size;
	const char *idle;
	int placement; /* enum sl_place_policy */
	const char *state_memory, *state_dir, *state_io;
	const char *max_parallelism;
	const char *ck_dir, *ck_interval, *ck_timeout, *ck_min_pause, *ck_tolerable, *ck_retained;
	const char *ck_mode, *ck_unaligned, *ck_snapshot, *ck_io, *restore;
	const char *sp_dir, *sp_on_stop;
	const char *rs_strategy, *rs_attempts, *rs_delay, *rs_max_failures, *rs_interval;
	const char *rs_initial, *rs_max, *rs_multiplier, *rs_reset, *rs_jitter, *rs_before_reset;
};

static const char *const placement_names[] = { "spread", "pack", NULL };

static const struct sli_cli_opt runtime_options[] = {
	{
	    .name = "parallelism",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, parallelism),
	    .metavar = "N",
	    .help = "subtasks of each operator, 1 to 1024 (default 1)",
	},
	{
	    .name = "workers",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, workers),
	    .metavar = "N",
	    .help = "worker threads, each pinned to a core (default: one per subtask, at most "
		    "one per usable core)",
	},
	{
	    .name = "batch-size",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, batch_size),
	    .metavar = "N",
	    .help = "records per batch, 1 to 65536 (default 512)",
	},
	{
	    .name = "max-record-size",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, max_record_size),
	    .metavar = "BYTES",
	    .help = "longest record (line), 16 to 1073741824 bytes (default 1048576)",
	},
	{
	    .name = "idle",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, idle),
	    .metavar = "busy|sleep",
	    .help = "what an idle worker does: busy-poll, or spin then sleep (default sleep)",
	},
	{
	    .name = "placement",
	    .type = SLI_CLI_ENUM,
	    .offset = offsetof(struct runtime_opts, placement),
	    .help = "workers round-robin over NUMA nodes, or filling one node first (default "
		    "spread)",
	    .choices = placement_names,
	},
	{
	    .name = "state-memory",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, state_memory),
	    .metavar = "SIZE",
	    .help =
		"keyed state kept in memory per subtask, e.g. 512M or 2GiB (units K, M, G, T "
		"are powers of 1024; at least 64K); past it state spills to disk (default 0: "
		"unlimited, all in memory); windows, joins and reduce keep their state in memory "
		"(a warning says so)",
	},
	{
	    .name = "state-dir",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, state_dir),
	    .metavar = "DIR",
	    .help = "where spilled state goes, one directory per subtask, removed after the run "
		    "(default: $TMPDIR or /tmp, in sluice-state-PID-JOB)",
	},
	{
	    .name = "state-io",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, state_io),
	    .metavar = "auto|io_uring|posix",
	    .help = "how spill files are read and written (default auto: io_uring when available)",
	},
	{
	    .name = "max-parallelism",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, max_parallelism),
	    .metavar = "N",
	    .help = "key groups, 1 to 32768: the most subtasks a keyed operator can be rescaled to "
		    "(default: Flink's rule from the parallelism, at least 128); a restore needs "
		    "the value the checkpoint was taken with",
	},
	{
	    .name = "checkpoint-dir",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, ck_dir),
	    .metavar = "DIR",
	    .help = "take checkpoints into DIR (chk-N subdirectories); without it no checkpoints "
		    "are taken",
	},
	{
	    .name = "checkpoint-interval",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, ck_interval),
	    .metavar = "DURATION",
	    .help = "time between checkpoints, e.g. 200ms or 10s (default 0: only the final "
		    "checkpoint at the end of the input or on SIGTERM)",
	},
	{
	    .name = "checkpoint-timeout",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, ck_timeout),
	    .metavar = "DURATION",
	    .help = "a checkpoint not complete after this fails (default 10m)",
	},
	{
	    .name = "checkpoint-min-pause",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, ck_min_pause),
	    .metavar = "DURATION",
	    .help = "least time between the end of one checkpoint and the start of the next "
		    "(default 0)",
	},
	{
	    .name = "checkpoint-tolerable-failures",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, ck_tolerable),
	    .metavar = "N",
	    .help = "failed checkpoints in a row the job survives (default 0: the first failure "
		    "fails the job)",
	},
	{
	    .name = "checkpoint-retained",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, ck_retained),
	    .metavar = "N",
	    .help = "complete checkpoints kept; older ones are deleted (default 3)",
	},
	{
	    .name = "checkpoint-mode",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, ck_mode),
	    .metavar = "exactly-once|at-least-once",
	    .help = "barrier alignment (default exactly-once)",
	},
	{
	    .name = "checkpoint-unaligned",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, ck_unaligned),
	    .metavar = "true|false",
	    .help = "exactly-once without blocking inputs at barriers: in-flight input becomes "
		    "part of the checkpoint (default false; savepoints stay aligned; a restore at "
		    "another --parallelism redistributes the in-flight data by key group)",
	},
	{
	    .name = "checkpoint-snapshot",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, ck_snapshot),
	    .metavar = "async|sync",
	    .help = "async (default): window aggregates and keyed process state snapshot "
		    "copy-on-write, reduce, joins and general windows copy their state at the "
		    "barrier, and the coordinator serialises it while the task goes on; sync: "
		    "every task serialises its state itself",
	},
	{
	    .name = "checkpoint-io",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, ck_io),
	    .metavar = "auto|io_uring|posix",
	    .help = "how checkpoint files are written (default auto: io_uring when available); "
		    "tests: fault:eio@N, fault:enospc@N, fault:fsync@N or fault:short@N inject "
		    "I/O errors",
	},
	{
	    .name = "restore",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, restore),
	    .metavar = "latest|PATH",
	    .help = "start from the newest complete checkpoint in --checkpoint-dir (or from "
		    "scratch when there is none), or from checkpoint or savepoint directory PATH",
	},
	{
	    .name = "savepoint-dir",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, sp_dir),
	    .metavar = "DIR",
	    .help = "where 'sluice savepoint PID' writes savepoints when it names no directory",
	},
	{
	    .name = "savepoint-on-stop",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, sp_on_stop),
	    .metavar = "DIR",
	    .help = "on SIGINT or SIGTERM, write the final checkpoint as a savepoint "
		    "DIR/savepoint-N-HEX (needs --checkpoint-dir) and print its path",
	},
	{
	    .name = "restart-strategy",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, rs_strategy),
	    .metavar = "STRATEGY",
	    .help = "none, fixed-delay, failure-rate or exponential-delay: what a failure does: "
		    "fail the job, or restart it in-process from the newest "
		    "complete checkpoint (default exponential-delay with --checkpoint-dir, none "
		    "without)",
	},
	{
	    .name = "restart-attempts",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, rs_attempts),
	    .metavar = "N",
	    .help = "fixed-delay: restarts before the job fails (default 1)",
	},
	{
	    .name = "restart-delay",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, rs_delay),
	    .metavar = "DURATION",
	    .help = "fixed-delay, failure-rate: wait before each restart (default 1s)",
	},
	{
	    .name = "restart-max-failures-per-interval",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, rs_max_failures),
	    .metavar = "N",
	    .help = "failure-rate: restarts allowed within the interval (default 1)",
	},
	{
	    .name = "restart-failure-rate-interval",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, rs_interval),
	    .metavar = "DURATION",
	    .help = "failure-rate: the interval (default 1m)",
	},
	{
	    .name = "restart-initial-backoff",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, rs_initial),
	    .metavar = "DURATION",
	    .help = "exponential-delay: the first wait (default 1s)",
	},
	{
	    .name = "restart-max-backoff",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, rs_max),
	    .metavar = "DURATION",
	    .help = "exponential-delay: the longest wait (default 1m)",
	},
	{
	    .name = "restart-backoff-multiplier",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, rs_multiplier),
	    .metavar = "X",
	    .help =
		"exponential-delay: each wait is the last one times X, at least 1 (default 1.5)",
	},
	{
	    .name = "restart-reset-backoff-threshold",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, rs_reset),
	    .metavar = "DURATION",
	    .help = "exponential-delay: after running this long since the last restart, waits "
		    "start over at the initial backoff (default 1h)",
	},
	{
	    .name = "restart-jitter-factor",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, rs_jitter),
	    .metavar = "X",
	    .help = "exponential-delay: each wait moves randomly by up to X of it, 0 to 1 (default "
		    "0.1)",
	},
	{
	    .name = "restart-attempts-before-reset-backoff",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct runtime_opts, rs_before_reset),
	    .metavar = "N",
	    .help = "exponential-delay: restarts without a reset before the job fails (default "
		    "2147483647: no limit)",
	},
	{ .name = NULL },
};

static const struct sli_cli_opt no_options[] = {
	{ .name = NULL },
};

/*
 * Report a usage error: "WHO: MESSAGE (see 'SEE')" on stderr.
 * Return: the exit status for usage errors.
 */
static int usage_error(const char *who, const char *see, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int usage_error(const char *who, const char *see, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s (see '%s')\n", who, msg, see);
	return EXIT_USAGE;
}

static void print_usage(FILE *f)
{
	fputs(
	    "usage: sluice COMMAND [ARGS]\n"
	    "\n"
	    "Commands:\n"
	    "  run JOB [OPTIONS]    run a built-in job ('sluice run JOB --help' for its options)\n"
	    "  plan JOB [OPTIONS]   show how a job would execute, without running it\n"
	    "  list                 list the built-in jobs\n"
	    "  savepoint PID|SOCKET [DIR]\n"
	    "                       take a savepoint of a running job into DIR\n"
	    "  status PID|SOCKET    the status of a running job, as JSON\n"
	    "  topology [OPTIONS]   show the CPUs and NUMA nodes this process may use\n"
	    "  version              print the version and how this binary was built\n"
	    "  help                 show this help\n"
	    "\n"
	    "Options:\n"
	    "  -h, --help           show this help\n"
	    "      --version        same as 'sluice version'\n"
	    "\n"
	    "Jobs run on the dataflow runtime: operators fused into tasks, subtasks on\n"
	    "worker threads pinned to cores ('sluice plan JOB' shows how). SIGINT or\n"
	    "SIGTERM stops a running job after draining what it read.\n"
	    "\n"
	    "Exit status: 0 success, 1 run-time failure, 2 usage error.\n",
	    f);
}

/*
 * Commands that take no options and no arguments, only --help.
 * Return: 0, SLI_CLI_HELP, or -EINVAL after reporting the usage error.
 */
static int parse_nothing(const char *who, const char *see, int argc, char **argv)
{
	struct sli_cli_table t = { no_options, NULL };
	char err[512];
	int rc;

	rc = sli_cli_parse(&t, 1, argc, argv, NULL, err, sizeof(err));
	if (rc < 0)
		usage_error(who, see, "%s", err);
	return rc;
}

static int cmd_help(int argc, char **argv)
{
	if (parse_nothing("sluice help", "sluice --help", argc, argv) < 0)
		return EXIT_USAGE;
	print_usage(stdout);
	return 0;
}

static int cmd_version(int argc, char **argv)
{
	int rc = parse_nothing("sluice version", "sluice version --help", argc, argv);

	if (rc < 0)
		return EXIT_USAGE;
	if (rc == SLI_CLI_HELP) {
		puts("usage: sluice version\n\nPrints the version and how this binary was built.");
		return 0;
	}
	printf("sluice %s\n", SL_VERSION_STRING);
	printf("library:    %s\n", sl_version());
	printf("build type: %s\n", SL_BUILD_TYPE);
	printf("sanitizers: %s\n", strcmp(SL_SANITIZE, "") == 0 ? "none" : SL_SANITIZE);
	printf("DPDK:       %s\n", SL_HAVE_DPDK ? "built in" : "not built in");
	printf("runtime:    dataflow (fused tasks on pinned worker threads)\n");
	return 0;
}

static int cmd_list(int argc, char **argv)
{
	int rc = parse_nothing("sluice list", "sluice list --help", argc, argv);
	int width = 0;

	if (rc < 0)
		return EXIT_USAGE;
	if (rc == SLI_CLI_HELP) {
		puts("usage: sluice list\n\nLists the built-in jobs, one per line.");
		return 0;
	}
	for (size_t i = 0; sli_jobs[i] != NULL; i++) {
		int n = (int)strlen(sli_jobs[i]->name);
		if (n > width)
			width = n;
	}
	for (size_t i = 0; sli_jobs[i] != NULL; i++)
		printf("%-*s  %s\n", width, sli_jobs[i]->name, sli_jobs[i]->summary);
	return 0;
}

struct topo_opts {
	const char *synthetic;
	int format; /* enum sli_format */
};

static const struct sli_cli_opt topo_options[] = {
	{
	    .name = "synthetic",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct topo_opts, synthetic),
	    .metavar = "DESC",
	    .help = "describe a made-up machine instead, e.g. 'pack:2 numa:1 core:8 pu:2'",
	},
	{
	    .name = "format",
	    .type = SLI_CLI_ENUM,
	    .offset = offsetof(struct topo_opts, format),
	    .help = "output format (default text)",
	    .choices = sli_format_names,
	},
	{ .name = NULL },
};

static int cmd_topology(int argc, char **argv)
{
	static const char who[] = "sluice topology";
	static const char see[] = "sluice topology --help";
	struct topo_opts o = { .synthetic = NULL, .format = SLI_FORMAT_TEXT };
	struct sli_cli_table t = { topo_options, &o };
	struct sl_topo *topo = NULL;
	char err[512];
	int rc;

	rc = sli_cli_parse(&t, 1, argc, argv, NULL, err, sizeof(err));
	if (rc < 0)
		return usage_error(who, see, "%s", err);
	if (rc == SLI_CLI_HELP) {
		puts("usage: sluice topology [OPTIONS]\n\n"
		     "Shows the packages, NUMA nodes, cores and hardware threads this process may\n"
		     "run on (taskset and cgroup cpusets apply), as Sluice's placement sees them.\n"
		     "A synthetic description uses hwloc's syntax: a level name and a count per\n"
		     "level, outermost first.\n\n"
		     "Options:");
		sli_cli_print_help(stdout, &t, 1);
		return 0;
	}

	err[0] = '\0';
	rc = sl_topo_create(o.synthetic, err, sizeof(err), &topo);
	if (rc == -EINVAL && o.synthetic != NULL)
		return usage_error(who, see, "bad synthetic description '%s': %s", o.synthetic,
				   err[0] ? err : sl_strerror(rc));
	if (rc < 0) {
		fprintf(stderr, "%s: cannot discover this machine's topology: %s\n", who,
			err[0] ? err : sl_strerror(rc));
		return EXIT_FAILURE;
	}
	rc = sl_topo_print(topo, stdout, o.format == SLI_FORMAT_JSON ? SL_TOPO_JSON : SL_TOPO_TEXT);
	sl_topo_destroy(topo);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot write standard output: %s\n", who, sl_strerror(rc));
		return EXIT_FAILURE;
	}
	return 0;
}

static void print_job_help(const char *verb, const struct sli_job_def *job,
			   const struct sli_cli_table *tables, size_t ntables)
{
	printf("usage: sluice %s %s [OPTIONS]\n\n", verb, job->name);
	if (strcmp(verb, "plan") == 0)
		printf("Prints the physical plan 'sluice run %s' would execute with these\n"
		       "options: tasks and their fused operators, the exchanges between them,\n"
		       "and the worker, core and NUMA node of every subtask, on this machine or,\n"
		       "with --synthetic, on a made-up one. Nothing is opened or run.\n\n",
		       job->name);
	else
		printf("%s\n", job->description);
	puts("Options:");
	sli_cli_print_help(stdout, tables, ntables);
}

static void print_verb_help(const char *verb)
{
	printf("usage: sluice %s JOB [OPTIONS]\n\n", verb);
	if (strcmp(verb, "plan") == 0)
		puts("Shows how a built-in job would execute, without running it.");
	else
		puts("Runs a built-in job on this machine.");
	puts("'sluice list' lists the jobs; 'sluice run JOB --help' shows a job's options.");
}

/* Everything one `sluice run` or `sluice plan` of a job needs; see job_fini(). */
struct job_cmd {
	const char *who, *see;
	bool plan;
	const struct sli_job_def *def;
	void *opts;
	struct runtime_opts rt;
	struct plan_opts po;
	struct run_opts ro;
	struct sl_job *job;
	void *state;
	struct sl_topo *topo;
	struct sl_numa_platform np;
	struct sli_control *control;
	char err[1024];
};

/*
 * Create the job and set the runtime options the user gave.
 * Return: 0, or the exit status after reporting the error.
 */
static int job_create(struct job_cmd *c)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
		{ "parallelism", offsetof(struct runtime_opts, parallelism) },
		{ "workers", offsetof(struct runtime_opts, workers) },
		{ "batch-size", offsetof(struct runtime_opts, batch_size) },
		{ "max-record-size", offsetof(struct runtime_opts, max_record_size) },
		{ "idle", offsetof(struct runtime_opts, idle) },
		{ "state-memory", offsetof(struct runtime_opts, state_memory) },
		{ "state-dir", offsetof(struct runtime_opts, state_dir) },
		{ "state-io", offsetof(struct runtime_opts, state_io) },
		{ "max-parallelism", offsetof(struct runtime_opts, max_parallelism) },
		{ "checkpoint-dir", offsetof(struct runtime_opts, ck_dir) },
		{ "checkpoint-interval", offsetof(struct runtime_opts, ck_interval) },
		{ "checkpoint-timeout", offsetof(struct runtime_opts, ck_timeout) },
		{ "checkpoint-min-pause", offsetof(struct runtime_opts, ck_min_pause) },
		{ "checkpoint-tolerable-failures", offsetof(struct runtime_opts, ck_tolerable) },
		{ "checkpoint-retained", offsetof(struct runtime_opts, ck_retained) },
		{ "checkpoint-mode", offsetof(struct runtime_opts, ck_mode) },
		{ "checkpoint-unaligned", offsetof(struct runtime_opts, ck_unaligned) },
		{ "checkpoint-snapshot", offsetof(struct runtime_opts, ck_snapshot) },
		{ "checkpoint-io", offsetof(struct runtime_opts, ck_io) },
		{ "restore", offsetof(struct runtime_opts, restore) },
		{ "savepoint-dir", offsetof(struct runtime_opts, sp_dir) },
		{ "savepoint-on-stop", offsetof(struct runtime_opts, sp_on_stop) },
		{ "restart-strategy", offsetof(struct runtime_opts, rs_strategy) },
		{ "restart-attempts", offsetof(struct runtime_opts, rs_attempts) },
		{ "restart-delay", offsetof(struct runtime_opts, rs_delay) },
		{ "restart-max-failures-per-interval",
		  offsetof(struct runtime_opts, rs_max_failures) },
		{ "restart-failure-rate-interval", offsetof(struct runtime_opts, rs_interval) },
		{ "restart-initial-backoff", offsetof(struct runtime_opts, rs_initial) },
		{ "restart-max-backoff", offsetof(struct runtime_opts, rs_max) },
		{ "restart-backoff-multiplier", offsetof(struct runtime_opts, rs_multiplier) },
		{ "restart-reset-backoff-threshold", offsetof(struct runtime_opts, rs_reset) },
		{ "restart-jitter-factor", offsetof(struct runtime_opts, rs_jitter) },
		{ "restart-attempts-before-reset-backoff",
		  offsetof(struct runtime_opts, rs_before_reset) },
	};
	int rc;

	c->err[0] = '\0';
	rc = c->def->check(c->opts, c->err, sizeof(c->err));
	if (rc < 0)
		return usage_error(c->who, c->see, "%s", c->err);
	rc = sl_job_create(c->def->name, &c->job);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot create the job: %s\n", c->who, sl_strerror(rc));
		return EXIT_FAILURE;
	}
	sl_job_use_checkpoint_storage(c->job);
	for (size_t i = 0; i < SL_ARRAY_SIZE(keys); i++) {
		const char *val = *(const char *const *)((const char *)&c->rt + keys[i].off);

		if (val == NULL)
			continue;
		c->err[0] = '\0';
		rc = sl_job_set(c->job, keys[i].key, val, c->err, sizeof(c->err));
		if (rc == -EINVAL)
			return usage_error(c->who, c->see, "%s", c->err);
		if (rc < 0) {
			fprintf(stderr, "%s: %s\n", c->who, c->err[0] ? c->err : sl_strerror(rc));
			return EXIT_FAILURE;
		}
	}
	return 0;
}

/*
 * The machine to place the workers on: this one, or for a plan a
 * synthetic one. Return: 0, or the exit status after reporting the error.
 */
static int job_platform(struct job_cmd *c)
{
	const char *synthetic = c->plan ? c->po.synthetic : NULL;
	int rc;

	c->err[0] = '\0';
	rc = sl_topo_create(synthetic, c->err, sizeof(c->err), &c->topo);
	if (rc == -EINVAL && synthetic != NULL)
		return usage_error(c->who, c->see, "bad synthetic description '%s': %s", synthetic,
				   c->err[0] ? c->err : sl_strerror(rc));
	if (rc < 0) {
		fprintf(stderr, "%s: cannot discover this machine's topology: %s\n", c->who,
			c->err[0] ? c->err : sl_strerror(rc));
		return EXIT_FAILURE;
	}
	sl_numa_platform_init(&c->np, c->topo, (enum sl_place_policy)c->rt.placement);
	return 0;
}

/*
 * --stats: every subtask's counters after the run (also after a failed
 * one: they show where it stopped). Return: 0, or -1 after reporting.
 */
static int write_stats(struct job_cmd *c)
{
	int n = sl_job_task_stats(c->job, NULL, 0);
	struct sl_subtask_stats *s;
	bool table = strcmp(c->ro.stats, "-") == 0;
	FILE *f;

	if (n <= 0)
		return 0; /* the job never ran: its error says why */
	s = calloc((size_t)n, sizeof(*s));
	if (s == NULL) {
		fprintf(stderr, "sluice: %s: --stats: out of memory\n", c->def->name);
		return -1;
	}
	n = sl_job_task_stats(c->job, s, (unsigned)n);
	f = table ? stderr : fopen(c->ro.stats, "w");
	if (f == NULL) {
		fprintf(stderr, "sluice: %s: --stats: cannot create '%s': %s\n", c->def->name,
			c->ro.stats, strerror(errno));
		free(s);
		return -1;
	}
	if (table) {
		fprintf(f, "%-40s %7s %6s %4s %12s %12s %10s %10s %10s\n", "task", "subtask",
			"worker", "pu", "records in", "records out", "busy ms", "bp ms", "idle ms");
		for (int i = 0; i < n; i++)
			fprintf(f,
				"%-40s %3u/%-3u %6d %4d %12" PRIu64 " %12" PRIu64
				" %10.1f %10.1f %10.1f\n",
				s[i].task, s[i].index, s[i].parallelism, s[i].worker, s[i].pu,
				s[i].c.records_in, s[i].c.records_out, s[i].c.busy_ns / 1e6,
				s[i].c.backpressured_ns / 1e6, s[i].c.idle_ns / 1e6);
	} else {
		fprintf(f, "{\"job\":");
		sl_fput_json_str(f, c->def->name);
		fprintf(f, ",\"subtasks\":[");
		for (int i = 0; i < n; i++) {
			fprintf(f, "%s\n{\"task\":", i ? "," : "");
			sl_fput_json_str(f, s[i].task);
			fprintf(f,
				",\"task_id\":%u,\"index\":%u,\"parallelism\":%u,\"worker\":%d,"
				"\"pu\":%d,\"node\":%d,\"records_in\":%" PRIu64
				",\"records_out\":%" PRIu64 ",\"batches_in\":%" PRIu64
				",\"batches_out\":%" PRIu64 ",\"busy_ns\":%" PRIu64
				",\"backpressured_ns\":%" PRIu64 ",\"idle_ns\":%" PRIu64 "}",
				s[i].task_id, s[i].index, s[i].parallelism, s[i].worker, s[i].pu,
				s[i].node, s[i].c.records_in, s[i].c.records_out, s[i].c.batches_in,
				s[i].c.batches_out, s[i].c.busy_ns, s[i].c.backpressured_ns,
				s[i].c.idle_ns);
		}
		fprintf(f, "]}\n");
	}
	free(s);
	if (!table && fclose(f) != 0) {
		fprintf(stderr, "sluice: %s: --stats: cannot write '%s': %s\n", c->def->name,
			c->ro.stats, strerror(errno));
		return -1;
	}
	return 0;
}

/* Build, then plan or run. Return: the exit status. */
static int job_execute(struct job_cmd *c)
{
	char path[PATH_MAX];
	bool stopped = false;
	int rc;

	c->err[0] = '\0';
	rc = c->def->build(c->opts, c->job, !c->plan, &c->state, c->err, sizeof(c->err));
	if (rc < 0) {
		fprintf(stderr, "sluice: %s: %s\n", c->def->name,
			c->err[0] ? c->err : sl_strerror(rc));
		return EXIT_FAILURE;
	}
	if (c->plan) {
		rc = sl_job_plan_print(c->job, &c->np.platform, stdout,
				       (enum sl_plan_format)c->po.format, c->err, sizeof(c->err));
		if (rc < 0) {
			fprintf(stderr, "%s: %s\n", c->who, c->err[0] ? c->err : sl_strerror(rc));
			return EXIT_FAILURE;
		}
		return 0;
	}
	if (c->rt.ck_dir != NULL || c->ro.control != NULL) {
		rc = sli_control_start(c->job, c->def->name, c->ro.control, &c->control, c->err,
				       sizeof(c->err));
		/* The default socket is a convenience: without it the job still runs. */
		if (rc < 0 && c->ro.control == NULL) {
			fprintf(stderr, "sluice: %s: warning: no control socket: %s\n",
				c->def->name, c->err);
		} else if (rc < 0) {
			fprintf(stderr, "sluice: %s: %s\n", c->def->name, c->err);
			return EXIT_FAILURE;
		}
	}
	rc = sli_run_job(c->job, &c->np.platform, &stopped, c->err, sizeof(c->err));
	sli_control_stop(c->control);
	c->control = NULL;
	if (rc == 0 && stopped && c->rt.sp_on_stop != NULL &&
	    sl_job_last_savepoint(c->job, path, sizeof(path)) == 0)
		fprintf(stderr, "sluice: savepoint written to %s\n", path);
	if (c->ro.stats != NULL && write_stats(c) < 0 && rc == 0)
		return EXIT_FAILURE;
	rc = c->def->finish(c->state, rc, stopped, c->err, sizeof(c->err));
	if (rc < 0) {
		fprintf(stderr, "sluice: %s: %s\n", c->def->name,
			c->err[0] ? c->err : sl_strerror(rc));
		return EXIT_FAILURE;
	}
	if (stopped)
		fprintf(stderr, "sluice: %s: stopped by signal after draining\n", c->def->name);
	return 0;
}

static void job_fini(struct job_cmd *c)
{
	sli_run_forget();
	if (c->def != NULL)
		c->def->destroy(c->state);
	sl_job_destroy(c->job);
	sl_topo_destroy(c->topo);
	free(c->opts);
}

/* sluice run JOB [OPTIONS] and sluice plan JOB [OPTIONS]. */
static int cmd_job(const char *verb, int argc, char **argv)
{
	struct job_cmd c = { .plan = strcmp(verb, "plan") == 0 };
	struct sli_cli_table tables[3];
	char who[128], see[160];
	int rc;

	c.po.format = SLI_FORMAT_TEXT;
	c.rt.placement = SL_PLACE_SPREAD;
	snprintf(who, sizeof(who), "sluice %s", verb);
	snprintf(see, sizeof(see), "sluice %s --help", verb);
	if (argc < 1)
		return usage_error(who, "sluice list", "missing job name");
	if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
		print_verb_help(verb);
		return 0;
	}
	if (argv[0][0] == '-')
		return usage_error(who, see, "expected a job name before options, got '%s'",
				   argv[0]);
	c.def = sli_job_find(argv[0]);
	if (c.def == NULL)
		return usage_error("sluice", "sluice list", "unknown job '%s'", argv[0]);

	snprintf(who, sizeof(who), "sluice %s %s", verb, c.def->name);
	snprintf(see, sizeof(see), "sluice %s %s --help", verb, c.def->name);
	c.who = who;
	c.see = see;
	c.opts = malloc(c.def->opts_size ? c.def->opts_size : 1);
	if (c.opts == NULL) {
		fprintf(stderr, "%s: out of memory\n", who);
		return EXIT_FAILURE;
	}
	memcpy(c.opts, c.def->opts_default, c.def->opts_size);
	tables[0] = (struct sli_cli_table){ c.def->opts, c.opts };
	tables[1] = (struct sli_cli_table){ runtime_options, &c.rt };
	tables[2] = c.plan ? (struct sli_cli_table){ plan_options, &c.po }
			   : (struct sli_cli_table){ run_options, &c.ro };

	rc = sli_cli_parse(tables, 3, argc - 1, argv + 1, NULL, c.err, sizeof(c.err));
	if (rc < 0) {
		rc = usage_error(who, see, "%s", c.err);
	} else if (rc == SLI_CLI_HELP) {
		print_job_help(verb, c.def, tables, 3);
		rc = 0;
	} else {
		rc = job_create(&c);
		if (rc == 0)
			rc = job_platform(&c);
		if (rc == 0)
			rc = job_execute(&c);
	}
	job_fini(&c);
	return rc;
}

static void print_savepoint_help(void)
{
	puts("usage: sluice savepoint PID|SOCKET [DIR]\n"
	     "\n"
	     "Takes a savepoint of a running 'sluice run' (with --checkpoint-dir) and prints\n"
	     "its directory, DIR/savepoint-N-HEX, once it is complete. PID names the job's\n"
	     "default control socket ($XDG_RUNTIME_DIR/sluice/PID.sock, or\n"
	     "/tmp/sluice-UID/PID.sock); SOCKET is a path given to --control. DIR defaults\n"
	     "to the job's --savepoint-dir. Restore with 'sluice run JOB --restore PATH',\n"
	     "at any --parallelism. The engine never deletes a savepoint.\n"
	     "\n"
	     "Exit status: 0 success, 1 no such job or the savepoint failed, 2 usage error.");
}

/* The control socket of PID|SOCKET @arg into @sock. Return 0 or usage_error(). */
static int control_socket(const char *who, const char *see, const char *arg, char *sock, size_t len)
{
	char *end;
	long pid;

	if (arg[0] == '\0')
		return usage_error(who, see, "empty argument");
	errno = 0;
	pid = strtol(arg, &end, 10);
	if (*end == '\0' && errno == 0 && pid > 0) {
		if (sli_control_default_path(pid, sock, len) < 0)
			return usage_error(who, see, "socket path too long");
	} else if (snprintf(sock, len, "%s", arg) >= (int)len) {
		return usage_error(who, see, "socket path too long");
	}
	return 0;
}

/* Options of the control verbs: --help (*@help), anything else is a usage error. */
static int control_opts(const char *who, const char *see, int argc, char **argv, bool *help)
{
	*help = false;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			*help = true;
			return 0;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			return usage_error(who, see, "unknown option '%s'", argv[i]);
	}
	return 0;
}

static void print_status_help(void)
{
	puts("usage: sluice status PID|SOCKET\n"
	     "\n"
	     "Prints the status of a running 'sluice run' as one line of JSON: job, running,\n"
	     "records_in, records_out, restarts, last_savepoint, and checkpoints (completed,\n"
	     "failed, last_id, last_bytes, last_duration_ms, max_pause_ms, restored_id; null\n"
	     "without --checkpoint-dir). PID and SOCKET as for 'sluice savepoint'.\n"
	     "\n"
	     "Exit status: 0 success, 1 no such job, 2 usage error.");
}

/* sluice status PID|SOCKET: the control socket's status line. */
static int cmd_status(int argc, char **argv)
{
	const char *who = "sluice status", *see = "sluice status --help";
	char sock[PATH_MAX], reply[PATH_MAX + 1100], err[1024];
	bool help;
	int rc = control_opts(who, see, argc, argv, &help);

	if (rc != 0 || help) {
		if (help)
			print_status_help();
		return rc;
	}
	if (argc != 1)
		return usage_error(who, see,
				   argc < 1 ? "missing PID or SOCKET" : "too many arguments");
	rc = control_socket(who, see, argv[0], sock, sizeof(sock));
	if (rc != 0)
		return rc;
	if (sli_control_request(sock, "status", reply, sizeof(reply), err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", who, err);
		return EXIT_FAILURE;
	}
	if (reply[0] != '{') {
		fprintf(stderr, "%s: job at '%s': %s\n", who, sock,
			strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply);
		return EXIT_FAILURE;
	}
	puts(reply);
	return 0;
}

/* sluice savepoint PID|SOCKET [DIR]: through the job's control socket (control.c). */
static int cmd_savepoint(int argc, char **argv)
{
	const char *who = "sluice savepoint", *see = "sluice savepoint --help";
	char sock[PATH_MAX], req[PATH_MAX + 16], reply[PATH_MAX + 1100], err[1024];
	char cwd[PATH_MAX];
	const char *target;
	bool help;
	int rc = control_opts(who, see, argc, argv, &help);

	if (rc != 0 || help) {
		if (help)
			print_savepoint_help();
		return rc;
	}
	if (argc < 1 || argc > 2)
		return usage_error(who, see,
				   argc < 1 ? "missing PID or SOCKET" : "too many arguments");
	if (argc == 2 && argv[1][0] == '\0')
		return usage_error(who, see, "empty argument");
	rc = control_socket(who, see, argv[0], sock, sizeof(sock));
	if (rc != 0)
		return rc;
	target = argc == 2 ? argv[1] : NULL;
	if (target != NULL && target[0] != '/') {
		/* The job resolves paths against its own working directory: send ours. */
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			fprintf(stderr, "%s: cannot get the working directory: %s\n", who,
				strerror(errno));
			return EXIT_FAILURE;
		}
		snprintf(req, sizeof(req), "savepoint %s/%s", cwd, target);
	} else {
		snprintf(req, sizeof(req), "savepoint%s%s", target ? " " : "",
			 target ? target : "");
	}
	if (strchr(req, '\n') != NULL)
		return usage_error(who, see, "DIR must not contain a newline");
	if (sli_control_request(sock, req, reply, sizeof(reply), err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", who, err);
		return EXIT_FAILURE;
	}
	if (strncmp(reply, "ok ", 3) == 0) {
		puts(reply + 3);
		return 0;
	}
	fprintf(stderr, "%s: job at '%s': %s\n", who, sock,
		strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply);
	return EXIT_FAILURE;
}

static int cmd_run(int argc, char **argv)
{
	return cmd_job("run", argc, argv);
}

static int cmd_plan(int argc, char **argv)
{
	return cmd_job("plan", argc, argv);
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "run", cmd_run },	    { "plan", cmd_plan },
	{ "list", cmd_list },	    { "topology", cmd_topology },
	{ "version", cmd_version }, { "--version", cmd_version },
	{ "help", cmd_help },	    { "--help", cmd_help },
	{ "-h", cmd_help },	    { "savepoint", cmd_savepoint },
	{ "status", cmd_status },
};

/*
 * Output that is still buffered when main() returns would be written by
 * exit(), where a failure (full disk, closed pipe) goes unnoticed.
 */
static int flush_stdout(void)
{
	errno = 0;
	if (fflush(stdout) != 0 || ferror(stdout))
		return errno ? -errno : -EIO;
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd;
	int status, rc;

	if (argc < 2)
		return usage_error("sluice", "sluice --help", "missing command");
	cmd = argv[1];
	for (size_t i = 0; i < SL_ARRAY_SIZE(commands); i++) {
		if (strcmp(commands[i].name, cmd) != 0)
			continue;
		status = commands[i].fn(argc - 2, argv + 2);
		rc = flush_stdout();
		if (rc < 0 && status == 0) {
			fprintf(stderr, "sluice: cannot write standard output: %s\n",
				sl_strerror(rc));
			status = EXIT_FAILURE;
		}
		return status;
	}
	if (cmd[0] == '-' && cmd[1] != '\0')
		return usage_error("sluice", "sluice --help", "unknown option '%s'", cmd);
	return usage_error("sluice", "sluice --help", "unknown command '%s'", cmd);
}
