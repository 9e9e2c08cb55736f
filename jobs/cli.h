/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h — a small table-driven command-line option parser for the `sluice`
 * command and the built-in jobs.
 *
 * A command describes its options in a table of struct sli_cli_opt; each
 * entry names a field (by offset) of the command's own options struct, which
 * the caller fills with defaults before parsing. The parser understands
 * `--name value`, `--name=value`, `-x value`, `-xvalue`, `--` (end of
 * options) and `-h`/`--help`. It never prints: on a usage error it returns
 * -EINVAL with one sentence fragment in the caller's error buffer, e.g.
 * "unknown option '--bogus'", which the caller prefixes with the command
 * name and follows with a pointer to help.
 *
 * Threads: the parser keeps no state; tables are read-only.
 */
#ifndef SLUICE_JOBS_CLI_H
#define SLUICE_JOBS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum sli_cli_type {
	SLI_CLI_FLAG,	/**< no value; sets a bool to true */
	SLI_CLI_STRING, /**< any value; stores a const char * into argv (borrowed) */
	SLI_CLI_INT,	/**< base-10 integer in [min, max]; stores a long long */
	SLI_CLI_ENUM,	/**< one of @choices; stores the int index of the match */
};

struct sli_cli_opt {
	const char *name; /**< long name without "--"; NULL ends a table */
	char short_name;  /**< single-letter alias after '-', or 0 */
	enum sli_cli_type type;
	size_t offset;		    /**< offsetof() the destination field */
	const char *metavar;	    /**< value placeholder in help, e.g. "PATH" */
	const char *help;	    /**< one line for the help text */
	long long min, max;	    /**< SLI_CLI_INT: accepted range, inclusive */
	const char *const *choices; /**< SLI_CLI_ENUM: NULL-terminated list */
};

/** One option table and the struct its offsets point into. */
struct sli_cli_table {
	const struct sli_cli_opt *opts;
	void *dst;
};

/** Positional arguments: up to @max are stored in @v, @n receives the count. */
struct sli_cli_pos {
	const char **v;
	unsigned max;
	unsigned n;
};

/** sli_cli_parse() returns this when -h or --help was given. */
#define SLI_CLI_HELP 1

/**
 * sli_cli_parse() - parse options against one or more tables.
 * @tables: @ntables tables, searched in order for each option.
 * @argc, @argv: the arguments to parse (not including the command words
 *               already consumed by the caller).
 * @pos: receives positional arguments (those not starting with '-', a lone
 *       "-", and everything after "--"); NULL when none are accepted.
 * @errbuf, @errlen: receive a sentence fragment naming the culprit.
 *
 * Options are processed left to right; a repeated option overwrites the
 * earlier value. A value for an option that takes one is the rest of the
 * token after '=' or, otherwise, the next token, unless that token starts
 * with "--" (then the value counts as missing; write --name=--value).
 * Parsing stops at the first -h/--help (outside "--") or the first error.
 *
 * Return: 0; SLI_CLI_HELP when help was requested; -EINVAL on a usage error
 * (unknown option, missing value, bad number or choice, value given to a
 * flag, too many positional arguments) with @errbuf filled.
 */
int sli_cli_parse(const struct sli_cli_table *tables, size_t ntables, int argc, char *const argv[],
		  struct sli_cli_pos *pos, char *errbuf, size_t errlen);

/**
 * sli_cli_parse_int() - strict base-10 integer in [@min, @max]: an optional
 * '-' then digits only. No leading whitespace, no '+', no trailing junk,
 * no overflow, not empty.
 * Return: 0, or -EINVAL (*@out untouched).
 */
int sli_cli_parse_int(const char *s, long long min, long long max, long long *out);

/**
 * sli_cli_parse_rate() - a --rate value: a finite decimal number >= 0
 * starting with a digit (so no sign, no "inf", no "nan"); NULL means 0
 * (unlimited).
 * Return: 0, or -EINVAL (*@out untouched).
 */
int sli_cli_parse_rate(const char *s, double *out);

/**
 * sli_cli_print_help() - one line per option of @ntables @tables (their dst
 * is not used), aligned, with the value range of integers and the choices
 * of enums, then a line for -h, --help.
 */
void sli_cli_print_help(FILE *f, const struct sli_cli_table *tables, size_t ntables);

#endif /* SLUICE_JOBS_CLI_H */
