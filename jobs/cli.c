/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.c — table-driven option parsing for the `sluice` command and the
 * built-in jobs (see cli.h), plus the help and JSON string printers they
 * share.
 *
 * The parser walks argv once, left to right, and writes each value into the
 * field an option table names; it allocates nothing and keeps pointers into
 * argv for string values. Errors are reported once, as a sentence fragment
 * in the caller's buffer: the caller knows the command name and where its
 * help is, the parser knows which token was wrong.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_error.h>

#include "cli.h"

int sli_cli_parse_int(const char *s, long long min, long long max, long long *out)
{
	const char *digits = s[0] == '-' ? s + 1 : s;
	char *end;
	long long v;

	/* strtoll() alone would accept " 5", "+5" and "" (as 0). */
	if (*digits < '0' || *digits > '9')
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int sli_cli_parse_rate(const char *s, double *out)
{
	char *end;
	double v;

	if (s == NULL) {
		*out = 0;
		return 0;
	}
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v) || v < 0)
		return -EINVAL;
	*out = v;
	return 0;
}

static const struct sli_cli_opt *find_long(const struct sli_cli_table *tables, size_t ntables,
					   const char *name, size_t len, void **dst)
{
	for (size_t t = 0; t < ntables; t++) {
		for (const struct sli_cli_opt *o = tables[t].opts; o->name != NULL; o++) {
			if (strlen(o->name) == len && memcmp(o->name, name, len) == 0) {
				*dst = tables[t].dst;
				return o;
			}
		}
	}
	return NULL;
}

static const struct sli_cli_opt *find_short(const struct sli_cli_table *tables, size_t ntables,
					    char c, void **dst)
{
	for (size_t t = 0; t < ntables; t++) {
		for (const struct sli_cli_opt *o = tables[t].opts; o->name != NULL; o++) {
			if (o->short_name != 0 && o->short_name == c) {
				*dst = tables[t].dst;
				return o;
			}
		}
	}
	return NULL;
}

static int store_enum(const struct sli_cli_opt *o, void *field, const char *val,
		      const char *spelled, char *errbuf, size_t errlen)
{
	char allowed[256] = "";
	size_t used = 0;

	for (int i = 0; o->choices[i] != NULL; i++) {
		if (strcmp(o->choices[i], val) == 0) {
			*(int *)field = i;
			return 0;
		}
	}
	for (int i = 0; o->choices[i] != NULL && used < sizeof(allowed); i++) {
		int n = snprintf(allowed + used, sizeof(allowed) - used, "%s%s", i ? ", " : "",
				 o->choices[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	return sl_errbuf_set(errbuf, errlen, -EINVAL, "bad value '%s' for '%s': expected one of %s",
			     val, spelled, allowed);
}

/* Store @val (NULL for a flag) into the field @o names in @dst. */
static int store(const struct sli_cli_opt *o, void *dst, const char *val, const char *spelled,
		 char *errbuf, size_t errlen)
{
	void *field = (char *)dst + o->offset;
	long long n;

	switch (o->type) {
	case SLI_CLI_FLAG:
		*(bool *)field = true;
		return 0;
	case SLI_CLI_STRING:
		*(const char **)field = val;
		return 0;
	case SLI_CLI_INT:
		if (sli_cli_parse_int(val, o->min, o->max, &n) < 0)
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "bad value '%s' for '%s': expected an integer from "
					     "%lld to %lld",
					     val, spelled, o->min, o->max);
		*(long long *)field = n;
		return 0;
	case SLI_CLI_ENUM:
		return store_enum(o, field, val, spelled, errbuf, errlen);
	}
	return sl_errbuf_set(errbuf, errlen, -EINVAL, "option '%s' has no type", spelled);
}

static int add_positional(struct sli_cli_pos *pos, const char *arg, char *errbuf, size_t errlen)
{
	if (pos == NULL || pos->n >= pos->max)
		return sl_errbuf_set(errbuf, errlen, -EINVAL, "unexpected argument '%s'", arg);
	pos->v[pos->n++] = arg;
	return 0;
}

/*
 * Parse the option in argv[*i]; may consume argv[*i + 1] as its value.
 * @arg starts with '-' and is neither "-" nor "--".
 */
static int parse_option(const struct sli_cli_table *tables, size_t ntables, int argc,
			char *const argv[], int *i, char *errbuf, size_t errlen)
{
	const char *arg = argv[*i];
	const struct sli_cli_opt *o;
	const char *val = NULL;
	char spelled[64];
	void *dst = NULL;

	if (arg[1] == '-') {
		const char *name = arg + 2;
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);

		if (len == 4 && memcmp(name, "help", 4) == 0 && eq == NULL)
			return SLI_CLI_HELP;
		o = find_long(tables, ntables, name, len, &dst);
		if (o == NULL)
			return sl_errbuf_set(errbuf, errlen, -EINVAL, "unknown option '--%.*s'",
					     (int)len, name);
		snprintf(spelled, sizeof(spelled), "--%s", o->name);
		if (eq != NULL)
			val = eq + 1;
	} else {
		if (arg[1] == 'h' && arg[2] == '\0')
			return SLI_CLI_HELP;
		o = find_short(tables, ntables, arg[1], &dst);
		/* A flag does not take "-xvalue", and flags are not bundled. */
		if (o == NULL || (o->type == SLI_CLI_FLAG && arg[2] != '\0'))
			return sl_errbuf_set(errbuf, errlen, -EINVAL, "unknown option '%s'", arg);
		snprintf(spelled, sizeof(spelled), "-%c", o->short_name);
		if (arg[2] != '\0')
			val = arg + 2;
	}

	if (o->type == SLI_CLI_FLAG) {
		if (val != NULL)
			return sl_errbuf_set(errbuf, errlen, -EINVAL, "option '%s' takes no value",
					     spelled);
	} else if (val == NULL) {
		if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0)
			return sl_errbuf_set(errbuf, errlen, -EINVAL, "option '%s' needs a value",
					     spelled);
		val = argv[++*i];
	}
	return store(o, dst, val, spelled, errbuf, errlen);
}

int sli_cli_parse(const struct sli_cli_table *tables, size_t ntables, int argc, char *const argv[],
		  struct sli_cli_pos *pos, char *errbuf, size_t errlen)
{
	bool only_positional = false;
	int rc;

	if ((tables == NULL && ntables > 0) || argc < 0 || (argv == NULL && argc > 0))
		return sl_errbuf_set(errbuf, errlen, -EINVAL, "invalid parser arguments");
	if (pos != NULL)
		pos->n = 0;

	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];

		if (only_positional || arg[0] != '-' || arg[1] == '\0') {
			rc = add_positional(pos, arg, errbuf, errlen);
		} else if (strcmp(arg, "--") == 0) {
			only_positional = true;
			rc = 0;
		} else {
			rc = parse_option(tables, ntables, argc, argv, &i, errbuf, errlen);
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* "  -x, --name META" or "      --name META" into @buf; returns its length. */
static int option_label(char *buf, size_t len, const struct sli_cli_opt *o)
{
	char meta[128];

	meta[0] = '\0';
	if (o->type == SLI_CLI_ENUM && o->metavar == NULL) {
		size_t used = 0;

		for (int i = 0; o->choices[i] != NULL && used < sizeof(meta); i++) {
			int n = snprintf(meta + used, sizeof(meta) - used, "%s%s", i ? "|" : "",
					 o->choices[i]);
			if (n < 0)
				break;
			used += (size_t)n;
		}
	} else if (o->type != SLI_CLI_FLAG) {
		snprintf(meta, sizeof(meta), "%s", o->metavar ? o->metavar : "VALUE");
	}
	if (o->short_name != 0)
		return snprintf(buf, len, "  -%c, --%s%s%s", o->short_name, o->name,
				meta[0] ? " " : "", meta);
	return snprintf(buf, len, "      --%s%s%s", o->name, meta[0] ? " " : "", meta);
}

void sli_cli_print_help(FILE *f, const struct sli_cli_table *tables, size_t ntables)
{
	static const struct sli_cli_opt help = {
		.name = "help",
		.short_name = 'h',
		.type = SLI_CLI_FLAG,
		.help = "show this help and exit",
	};
	char label[256];
	int width = option_label(label, sizeof(label), &help);

	for (size_t t = 0; t < ntables; t++) {
		for (const struct sli_cli_opt *o = tables[t].opts; o->name != NULL; o++) {
			int n = option_label(label, sizeof(label), o);
			if (n > width)
				width = n;
		}
	}
	for (size_t t = 0; t < ntables; t++) {
		for (const struct sli_cli_opt *o = tables[t].opts; o->name != NULL; o++) {
			option_label(label, sizeof(label), o);
			fprintf(f, "%-*s  %s", width, label, o->help ? o->help : "");
			if (o->type == SLI_CLI_INT)
				fprintf(f, "; %s from %lld to %lld",
					o->metavar ? o->metavar : "value", o->min, o->max);
			fputc('\n', f);
		}
	}
	option_label(label, sizeof(label), &help);
	fprintf(f, "%-*s  %s\n", width, label, help.help);
}
