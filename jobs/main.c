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
 * Threads: single-threaded; the jobs run on the main thread.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sl_config.h>
#include <sluice/sluice.h>

#include "cli.h"
#include "jobs.h"

#define EXIT_USAGE 2

struct format_opts {
	int format; /* enum sli_format */
};

static const struct sli_cli_opt format_options[] = {
	{
	    .name = "format",
	    .type = SLI_CLI_ENUM,
	    .offset = offsetof(struct format_opts, format),
	    .help = "output format (default text)",
	    .choices = sli_format_names,
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
	    "  topology [OPTIONS]   show the CPUs and NUMA nodes this process may use\n"
	    "  version              print the version and how this binary was built\n"
	    "  help                 show this help\n"
	    "\n"
	    "Options:\n"
	    "  -h, --help           show this help\n"
	    "      --version        same as 'sluice version'\n"
	    "\n"
	    "The dataflow runtime is not built yet: built-in jobs run as plain\n"
	    "single-threaded loops on the calling thread.\n"
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
	printf("runtime:    dataflow runtime not built yet (jobs run single-threaded)\n");
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
		printf("Shows how 'sluice run %s' would execute with these options, without\n"
		       "running anything.\n\n",
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

/* The plan of @job with @opts on this machine, to stdout. Return: the exit status. */
static int plan_job(const char *who, const struct sli_job_def *job, const void *opts,
		    enum sli_format fmt)
{
	struct sl_topo *topo;
	char err[512] = "";
	int rc;

	rc = sl_topo_create(NULL, err, sizeof(err), &topo);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot discover this machine's topology: %s\n", who,
			err[0] ? err : sl_strerror(rc));
		return EXIT_FAILURE;
	}
	err[0] = '\0';
	rc = job->plan(opts, topo, fmt, stdout, err, sizeof(err));
	sl_topo_destroy(topo);
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", who, err[0] ? err : sl_strerror(rc));
		return EXIT_FAILURE;
	}
	return 0;
}

/* sluice run JOB [OPTIONS] and sluice plan JOB [OPTIONS]. */
static int cmd_job(const char *verb, int argc, char **argv)
{
	bool plan = strcmp(verb, "plan") == 0;
	struct format_opts fo = { .format = SLI_FORMAT_TEXT };
	struct sli_cli_table tables[2];
	const struct sli_job_def *job;
	char who[128], see[160];
	char err[512];
	void *opts;
	int rc;

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
	job = sli_job_find(argv[0]);
	if (job == NULL)
		return usage_error("sluice", "sluice list", "unknown job '%s'", argv[0]);

	snprintf(who, sizeof(who), "sluice %s %s", verb, job->name);
	snprintf(see, sizeof(see), "sluice %s %s --help", verb, job->name);
	opts = malloc(job->opts_size ? job->opts_size : 1);
	if (opts == NULL) {
		fprintf(stderr, "%s: out of memory\n", who);
		return EXIT_FAILURE;
	}
	memcpy(opts, job->opts_default, job->opts_size);
	tables[0] = (struct sli_cli_table){ job->opts, opts };
	tables[1] = (struct sli_cli_table){ format_options, &fo };

	rc = sli_cli_parse(tables, plan ? 2 : 1, argc - 1, argv + 1, NULL, err, sizeof(err));
	if (rc < 0) {
		rc = usage_error(who, see, "%s", err);
	} else if (rc == SLI_CLI_HELP) {
		print_job_help(verb, job, tables, plan ? 2 : 1);
		rc = 0;
	} else if (plan) {
		rc = plan_job(who, job, opts, (enum sli_format)fo.format);
	} else {
		err[0] = '\0';
		rc = job->run(opts, err, sizeof(err));
		if (rc < 0)
			fprintf(stderr, "sluice: %s: %s\n", job->name,
				err[0] ? err : sl_strerror(rc));
		rc = rc < 0 ? EXIT_FAILURE : 0;
	}
	free(opts);
	return rc;
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
	{ "run", cmd_run },	      { "plan", cmd_plan },	  { "list", cmd_list },
	{ "topology", cmd_topology }, { "version", cmd_version }, { "--version", cmd_version },
	{ "help", cmd_help },	      { "--help", cmd_help },	  { "-h", cmd_help },
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
