/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cli_parse.c — unit tests of the table-driven option parser
 * (jobs/cli.c): every spelling it accepts, every usage error it reports
 * (with the culprit named in the error buffer), strict integers, help
 * output and JSON string escaping.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_common.h>
#include <sluice/sl_log.h>

#include "cli.h"
#include "sl_test.h"

struct opts {
	const char *input;
	long long top;
	bool verbose;
	int format;
};

static const char *const formats[] = { "text", "json", "csv", NULL };

static const struct sli_cli_opt table[] = {
	{ .name = "input",
	  .short_name = 'i',
	  .type = SLI_CLI_STRING,
	  .offset = offsetof(struct opts, input),
	  .metavar = "PATH",
	  .help = "input file" },
	{ .name = "top",
	  .short_name = 'n',
	  .type = SLI_CLI_INT,
	  .offset = offsetof(struct opts, top),
	  .metavar = "N",
	  .help = "how many",
	  .min = 1,
	  .max = 1000 },
	{ .name = "verbose",
	  .short_name = 'v',
	  .type = SLI_CLI_FLAG,
	  .offset = offsetof(struct opts, verbose),
	  .help = "say more" },
	{ .name = "format",
	  .type = SLI_CLI_ENUM,
	  .offset = offsetof(struct opts, format),
	  .help = "output format",
	  .choices = formats },
	{ .name = NULL },
};

static struct opts o;
static const char *posv[4];
static struct sli_cli_pos pos;
static char err[256];

#define ARGV(...) ((char *[]){ __VA_ARGS__ })
#define PARSE(...) \
	parse(ARGV(__VA_ARGS__), (int)SL_ARRAY_SIZE(ARGV(__VA_ARGS__)), SL_ARRAY_SIZE(posv))
#define PARSE_NOPOS(...) parse(ARGV(__VA_ARGS__), (int)SL_ARRAY_SIZE(ARGV(__VA_ARGS__)), 0)

static int parse(char **argv, int argc, unsigned max_pos)
{
	struct sli_cli_table t = { table, &o };

	o = (struct opts){ .input = NULL, .top = 10, .verbose = false, .format = 0 };
	pos = (struct sli_cli_pos){ .v = posv, .max = max_pos, .n = 99 };
	strcpy(err, "untouched");
	return sli_cli_parse(&t, 1, argc, argv, &pos, err, sizeof(err));
}

static void test_long_forms(void)
{
	CU_ASSERT_EQUAL(PARSE("--input", "a.txt", "--top", "5", "--verbose", "--format", "json"),
			0);
	CU_ASSERT_STRING_EQUAL(o.input, "a.txt");
	CU_ASSERT_EQUAL(o.top, 5);
	CU_ASSERT_TRUE(o.verbose);
	CU_ASSERT_EQUAL(o.format, 1);
	CU_ASSERT_EQUAL(pos.n, 0);
	CU_ASSERT_STRING_EQUAL(err, "untouched");

	CU_ASSERT_EQUAL(PARSE("--input=b=c", "--top=1000", "--format=csv"), 0);
	CU_ASSERT_STRING_EQUAL(o.input, "b=c");
	CU_ASSERT_EQUAL(o.top, 1000);
	CU_ASSERT_EQUAL(o.format, 2);
	CU_ASSERT_FALSE(o.verbose);

	/* An empty value after '=' is a value; a dash-prefixed one needs '='. */
	CU_ASSERT_EQUAL(PARSE("--input="), 0);
	CU_ASSERT_STRING_EQUAL(o.input, "");
	CU_ASSERT_EQUAL(PARSE("--input=--weird"), 0);
	CU_ASSERT_STRING_EQUAL(o.input, "--weird");
	CU_ASSERT_EQUAL(PARSE("--input", "-"), 0);
	CU_ASSERT_STRING_EQUAL(o.input, "-");
	CU_ASSERT_EQUAL(PARSE("--input", "-x"), 0);
	CU_ASSERT_STRING_EQUAL(o.input, "-x");
}

static void test_short_forms(void)
{
	CU_ASSERT_EQUAL(PARSE("-i", "f", "-n", "7", "-v"), 0);
	CU_ASSERT_STRING_EQUAL(o.input, "f");
	CU_ASSERT_EQUAL(o.top, 7);
	CU_ASSERT_TRUE(o.verbose);
	CU_ASSERT_EQUAL(PARSE("-ig", "-n8"), 0);
	CU_ASSERT_STRING_EQUAL(o.input, "g");
	CU_ASSERT_EQUAL(o.top, 8);

	CU_ASSERT_EQUAL(PARSE("-vn3"), -EINVAL); /* no bundling */
	CU_ASSERT_STRING_EQUAL(err, "unknown option '-vn3'");
	CU_ASSERT_EQUAL(PARSE("-q"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "unknown option '-q'");
	CU_ASSERT_EQUAL(PARSE("-n"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "option '-n' needs a value");
	CU_ASSERT_EQUAL(PARSE("-nx"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "bad value 'x' for '-n': expected an integer from 1 to 1000");
}

static void test_repeat_last_wins(void)
{
	CU_ASSERT_EQUAL(PARSE("--top", "3", "-n", "4", "--top=5"), 0);
	CU_ASSERT_EQUAL(o.top, 5);
	CU_ASSERT_EQUAL(PARSE("--format", "csv", "--format", "text"), 0);
	CU_ASSERT_EQUAL(o.format, 0);
}

static void test_positional(void)
{
	CU_ASSERT_EQUAL(PARSE("a", "--top", "2", "-", "b"), 0);
	CU_ASSERT_EQUAL(pos.n, 3);
	CU_ASSERT_STRING_EQUAL(posv[0], "a");
	CU_ASSERT_STRING_EQUAL(posv[1], "-");
	CU_ASSERT_STRING_EQUAL(posv[2], "b");
	CU_ASSERT_EQUAL(o.top, 2);

	/* "--" ends options; a second "--" is then positional. */
	CU_ASSERT_EQUAL(PARSE("--verbose", "--", "--top", "--", "-h"), 0);
	CU_ASSERT_TRUE(o.verbose);
	CU_ASSERT_EQUAL(o.top, 10);
	CU_ASSERT_EQUAL(pos.n, 3);
	CU_ASSERT_STRING_EQUAL(posv[0], "--top");
	CU_ASSERT_STRING_EQUAL(posv[1], "--");
	CU_ASSERT_STRING_EQUAL(posv[2], "-h");

	CU_ASSERT_EQUAL(PARSE("a", "b", "c", "d", "e"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "unexpected argument 'e'");
	CU_ASSERT_EQUAL(PARSE_NOPOS("--top", "1", "extra"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "unexpected argument 'extra'");

	/* NULL pos: no positional accepted. */
	struct sli_cli_table t = { table, &o };
	CU_ASSERT_EQUAL(sli_cli_parse(&t, 1, 1, ARGV("x"), NULL, err, sizeof(err)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "unexpected argument 'x'");
	CU_ASSERT_EQUAL(sli_cli_parse(&t, 1, 0, NULL, NULL, err, sizeof(err)), 0);
}

static void test_help(void)
{
	CU_ASSERT_EQUAL(PARSE("--help"), SLI_CLI_HELP);
	CU_ASSERT_EQUAL(PARSE("-h"), SLI_CLI_HELP);
	CU_ASSERT_EQUAL(PARSE("--top", "2", "-h", "--bogus"), SLI_CLI_HELP);
	CU_ASSERT_EQUAL(o.top, 2);
	/* An error before the help request wins: left to right. */
	CU_ASSERT_EQUAL(PARSE("--bogus", "--help"), -EINVAL);
	CU_ASSERT_EQUAL(PARSE("--help=yes"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "unknown option '--help'");
}

static void test_errors(void)
{
	CU_ASSERT_EQUAL(PARSE("--bogus"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "unknown option '--bogus'");
	CU_ASSERT_EQUAL(PARSE("--bogus=3"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "unknown option '--bogus'");
	CU_ASSERT_EQUAL(PARSE("--in", "x"), -EINVAL); /* no prefix matching */
	CU_ASSERT_STRING_EQUAL(err, "unknown option '--in'");
	CU_ASSERT_EQUAL(PARSE("--inputx", "x"), -EINVAL);
	CU_ASSERT_EQUAL(PARSE("---input", "x"), -EINVAL);

	CU_ASSERT_EQUAL(PARSE("--top"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "option '--top' needs a value");
	CU_ASSERT_EQUAL(PARSE("--top", "--verbose"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "option '--top' needs a value");
	CU_ASSERT_EQUAL(PARSE("--input", "--"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "option '--input' needs a value");

	CU_ASSERT_EQUAL(PARSE("--verbose=1"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "option '--verbose' takes no value");

	CU_ASSERT_EQUAL(PARSE("--format", "yaml"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err,
			       "bad value 'yaml' for '--format': expected one of text, json, csv");
	CU_ASSERT_EQUAL(PARSE("--format=JSON"), -EINVAL);
	CU_ASSERT_EQUAL(PARSE("--format="), -EINVAL);

	CU_ASSERT_EQUAL(PARSE("--top", "0"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err,
			       "bad value '0' for '--top': expected an integer from 1 to 1000");
	CU_ASSERT_EQUAL(PARSE("--top=1001"), -EINVAL);
	CU_ASSERT_EQUAL(PARSE("--top", "-1"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err,
			       "bad value '-1' for '--top': expected an integer from 1 to 1000");

	/* Errors leave no partial value behind for the failing option. */
	CU_ASSERT_EQUAL(PARSE("--top", "4", "--top", "x"), -EINVAL);
	CU_ASSERT_EQUAL(o.top, 4);

	/* A NULL error buffer is allowed. */
	struct sli_cli_table t = { table, &o };
	CU_ASSERT_EQUAL(sli_cli_parse(&t, 1, 1, ARGV("--nope"), NULL, NULL, 0), -EINVAL);
	/* A tiny one is truncated, not overrun. */
	char small[8];
	CU_ASSERT_EQUAL(sli_cli_parse(&t, 1, 1, ARGV("--nope"), NULL, small, sizeof(small)),
			-EINVAL);
	CU_ASSERT_STRING_EQUAL(small, "unknown");
}

struct extra_opts {
	int format;
	long long depth;
};

static void test_multiple_tables(void)
{
	static const struct sli_cli_opt extra[] = {
		{ .name = "format",
		  .type = SLI_CLI_ENUM,
		  .offset = offsetof(struct extra_opts, format),
		  .choices = formats },
		{ .name = "depth",
		  .type = SLI_CLI_INT,
		  .offset = offsetof(struct extra_opts, depth),
		  .min = -5,
		  .max = 5 },
		{ .name = NULL },
	};
	struct extra_opts x = { 0, 0 };
	struct sli_cli_table t[2] = { { table, &o }, { extra, &x } };

	o = (struct opts){ .top = 10 };
	/* The first table that knows a name wins; the second adds --depth. */
	CU_ASSERT_EQUAL(
	    sli_cli_parse(t, 2, 3, ARGV("--format", "csv", "--depth=-5"), NULL, err, sizeof(err)),
	    0);
	CU_ASSERT_EQUAL(o.format, 2);
	CU_ASSERT_EQUAL(x.format, 0);
	CU_ASSERT_EQUAL(x.depth, -5);
	CU_ASSERT_EQUAL(sli_cli_parse(t, 1, 1, ARGV("--depth=1"), NULL, err, sizeof(err)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err, "unknown option '--depth'");
}

static void test_parse_int(void)
{
	static const char *const bad[] = {
		"",
		" 1",
		"1 ",
		"+1",
		"-",
		"--1",
		"1x",
		"0x10",
		"1e3",
		"1.0",
		"\t2",
		"٣",
		"9223372036854775808",
		"-9223372036854775809",
		"99999999999999999999999",
	};
	long long v = 42;

	for (size_t i = 0; i < SL_ARRAY_SIZE(bad); i++) {
		CU_ASSERT_EQUAL(sli_cli_parse_int(bad[i], LLONG_MIN, LLONG_MAX, &v), -EINVAL);
		CU_ASSERT_EQUAL(v, 42);
	}
	CU_ASSERT_EQUAL(sli_cli_parse_int("9223372036854775807", LLONG_MIN, LLONG_MAX, &v), 0);
	CU_ASSERT_EQUAL(v, LLONG_MAX);
	CU_ASSERT_EQUAL(sli_cli_parse_int("-9223372036854775808", LLONG_MIN, LLONG_MAX, &v), 0);
	CU_ASSERT_EQUAL(v, LLONG_MIN);
	CU_ASSERT_EQUAL(sli_cli_parse_int("-0", -1, 1, &v), 0);
	CU_ASSERT_EQUAL(v, 0);
	CU_ASSERT_EQUAL(sli_cli_parse_int("0010", 0, 10, &v), 0);
	CU_ASSERT_EQUAL(v, 10);
	CU_ASSERT_EQUAL(sli_cli_parse_int("11", 0, 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(sli_cli_parse_int("-1", 0, 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(v, 10);
}

/* Run @fn with a memory stream and return what it wrote (static buffer). */
static const char *capture(void (*fn)(FILE *f, const void *arg), const void *arg)
{
	static char out[4096];
	FILE *f = fmemopen(out, sizeof(out), "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fn(f, arg);
	fclose(f);
	return out;
}

static void help_of(FILE *f, const void *arg)
{
	struct sli_cli_table t = { arg, NULL };

	sli_cli_print_help(f, &t, 1);
}

static void json_of(FILE *f, const void *arg)
{
	sl_fput_json_str(f, arg);
}

static void test_help_text(void)
{
	/* Labels are padded to the longest one, "      --format text|json|csv" (28). */
	const char *want = "  -i, --input PATH            input file\n"
			   "  -n, --top N                 how many; N from 1 to 1000\n"
			   "  -v, --verbose               say more\n"
			   "      --format text|json|csv  output format\n"
			   "  -h, --help                  show this help and exit\n";

	CU_ASSERT_STRING_EQUAL(capture(help_of, table), want);
}

static void test_json_string(void)
{
	CU_ASSERT_STRING_EQUAL(capture(json_of, "plain"), "\"plain\"");
	CU_ASSERT_STRING_EQUAL(capture(json_of, ""), "\"\"");
	CU_ASSERT_STRING_EQUAL(capture(json_of, "a\"b\\c"), "\"a\\\"b\\\\c\"");
	CU_ASSERT_STRING_EQUAL(capture(json_of, "t\tn\n\x01"), "\"t\\u0009n\\u000a\\u0001\"");
	/* Valid UTF-8 passes through; invalid bytes become U+FFFD escapes. */
	CU_ASSERT_STRING_EQUAL(capture(json_of, "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x8c\x8a"),
			       "\"caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x8c\x8a\"");
	CU_ASSERT_STRING_EQUAL(capture(json_of, "a\xff"
						"b"),
			       "\"a\\ufffdb\"");
	CU_ASSERT_STRING_EQUAL(capture(json_of, "\xc3"), "\"\\ufffd\"");	    /* truncated */
	CU_ASSERT_STRING_EQUAL(capture(json_of, "\xc0\xaf"), "\"\\ufffd\\ufffd\""); /* overlong */
	CU_ASSERT_STRING_EQUAL(capture(json_of, "\xed\xa0\x80"),
			       "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "long option forms", test_long_forms },
		{ "short option forms", test_short_forms },
		{ "repeated option: last wins", test_repeat_last_wins },
		{ "positional arguments and --", test_positional },
		{ "-h and --help", test_help },
		{ "usage errors name the culprit", test_errors },
		{ "several option tables", test_multiple_tables },
		{ "strict integers", test_parse_int },
		{ "help text", test_help_text },
		{ "JSON string escaping", test_json_string },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("cli-parse", tests);
}
