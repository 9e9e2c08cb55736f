/* SPDX-License-Identifier: Apache-2.0 */
/*
 * window_agg.c — `sluice run window-agg`: event-time windows over a CSV
 * of events, the contract outside checkers depend on:
 *
 *   input   lines "ts,key,value": ts and value int64 (-?[0-9]+), key 1-64
 *           bytes without a comma; anything else is a bad record
 *           (--bad-records); blank lines are skipped;
 *   time    event time from ts, bounded out-of-orderness D, watermarks
 *           every 200 ms or after every N records (--watermark-every);
 *   windows keyed by key; tumbling, sliding or session; allowed lateness;
 *   output  one line per firing "start,end,key,count,sum,min,max"; late
 *           firings repeat the window with its updated figures;
 *   late    with --late-output, late records as their input line;
 *           otherwise counted and reported on stderr;
 *   state   with a state budget (--state-memory), the windows live in
 *           keyed state and spill to disk past it (window_spill.c), with
 *           the same output; how much went to disk is reported on stderr.
 *
 * The source reads the input at parallelism 1, in file order. Each file
 * of a directory is one split with its own watermark generator; the
 * source's watermark is the minimum over the files not finished (a file
 * not read yet holds it back), so with --watermark-every 1 the output
 * does not depend on --parallelism; the windows run at --parallelism
 * behind a hash exchange. --idleness D: a file without records for D is
 * idle (no longer holds the watermark back) until its next record.
 *
 * Tests only: SLUICE_TEST_SLOW_WINDOW_US=N makes the aggregate's add
 * sleep N microseconds per element (at most 1 s), so that the window
 * subtasks, not the source, are the bottleneck and their input rings stay
 * full (unaligned checkpoints then hold in-flight data) for as long as
 * the source has input, however fast the machine: a sleep bounds the
 * window's rate from above on the clock, and leaves the CPU to the rest.
 *
 * Threads: check(), build(), finish() and destroy() on the main thread;
 * parse, aggregate and format functions on the workers (pure).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sluice/sl_connectors.h>
#include <sluice/sl_error.h>
#include <sluice/sl_job.h>
#include <sluice/sl_log.h>
#include <sluice/sl_time.h>

#include "jobs.h"
#include "window_agg.h"

#define WA_KEY_MAX 64

struct wa_opts {
	const char *input;
	const char *output;
	const char *window;
	const char *out_of_orderness;
	const char *allowed_lateness;
	const char *late_output;
	const char *watermark_every;
	const char *idleness;
	const char *bad_records;
	const char *rate;
};

static const struct wa_opts wa_defaults = { 0 };

static const struct sli_cli_opt wa_options[] = {
	{
	    .name = "input",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct wa_opts, input),
	    .metavar = "PATH|-",
	    .help = "events as 'ts,key,value' lines: a file, a directory or '-' (stdin); required",
	},
	{
	    .name = "output",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct wa_opts, output),
	    .metavar = "PATH|-|DIR/",
	    .help = "where the 'start,end,key,count,sum,min,max' lines go (default '-': stdout); "
		    "a path ending in '/' is an existing directory for exactly-once part files, "
		    "visible when the checkpoint covering them completes",
	},
	{
	    .name = "window",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct wa_opts, window),
	    .metavar = "SPEC",
	    .help = "tumbling:SIZE, sliding:SIZE:SLIDE or session:GAP; required",
	},
	{
	    .name = "out-of-orderness",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct wa_opts, out_of_orderness),
	    .metavar = "D",
	    .help = "bounded out-of-orderness of the watermarks (default 0)",
	},
	{
	    .name = "allowed-lateness",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct wa_opts, allowed_lateness),
	    .metavar = "L",
	    .help = "keep windows L after they fired; later elements fire them again (default 0)",
	},
	{
	    .name = "late-output",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct wa_opts, late_output),
	    .metavar = "PATH",
	    .help = "write late records there as their input lines (default: count and drop)",
	},
	{
	    .name = "watermark-every",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct wa_opts, watermark_every),
	    .metavar = "N",
	    .help = "emit the watermark after every N records instead of every 200 ms",
	},
	{
	    .name = "idleness",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct wa_opts, idleness),
	    .metavar = "D",
	    .help = "an input file without records for D (processing time) no longer holds the "
		    "watermark back until its next record (default: never)",
	},
	{
	    .name = "bad-records",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct wa_opts, bad_records),
	    .metavar = "fail|skip|PATH",
	    .help = "malformed lines: fail (default), skip and count, or append them to PATH",
	},
	{
	    .name = "rate",
	    .type = SLI_CLI_STRING,
	    .offset = offsetof(struct wa_opts, rate),
	    .metavar = "R",
	    .help = "read at most R records per second (default: unlimited)",
	},
	{ .name = NULL },
};

/* ------------------------------------------------------------ elements */

static const struct sl_type wa_ev_type = SL_TYPE_STR2(struct wa_ev, key, raw);

static const struct sl_type wa_out_type = SL_TYPE_STR1(struct wa_out, key);

struct wa_job {
	const struct wa_opts *o;
	struct sl_job *job;
	struct sl_window_spec spec;
	struct sl_watermark_strategy wm;
	struct sl_aggregate agg;
	bool keep_raw;
	struct sl_lines_conf lines;
	struct sl_text_sink_conf out, late;
	struct sl_part_sink_conf parts;
	uint64_t budget;	/* state-memory per subtask; 0: windows in memory */
	struct wa_spill *spill; /* the window stage with a budget */
};

/* --------------------------------------------------------------- parse */

/* -?[0-9]+ within int64. */
static int parse_i64(const char *s, size_t len, int64_t *out)
{
	bool neg = len > 0 && s[0] == '-';
	uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	size_t i = neg;

	if (i == len)
		return -EINVAL;
	for (; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';

		if (d > 9 || v > (lim - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

static int parse_window(const char *s, struct sl_window_spec *w)
{
	char buf[128], *a, *b;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	memset(w, 0, sizeof(*w));
	a = strchr(buf, ':');
	if (a == NULL)
		return -EINVAL;
	*a++ = '\0';
	b = strchr(a, ':');
	if (b != NULL)
		*b++ = '\0';
	if (strcmp(buf, "tumbling") == 0 && b == NULL) {
		w->kind = SL_WINDOW_TUMBLING;
		return sl_parse_duration_ms(a, 1, &w->size);
	}
	if (strcmp(buf, "sliding") == 0 && b != NULL) {
		w->kind = SL_WINDOW_SLIDING;
		if (sl_parse_duration_ms(a, 1, &w->size) < 0)
			return -EINVAL;
		return sl_parse_duration_ms(b, 1, &w->slide);
	}
	if (strcmp(buf, "session") == 0 && b == NULL) {
		w->kind = SL_WINDOW_SESSION;
		return sl_parse_duration_ms(a, 1, &w->gap);
	}
	return -EINVAL;
}

/* "ts,key,value" into a struct wa_ev; arg: the job (keep_raw). */
static int wa_parse(const char *line, size_t len, struct sl_batch *out, void *elem, int64_t *ts,
		    char *why, size_t whylen, void *arg)
{
	const struct wa_job *j = arg;
	struct wa_ev *e = elem;
	const char *c1 = memchr(line, ',', len), *c2;
	size_t klen;
	int rc;

	c2 = c1 ? memchr(c1 + 1, ',', len - (size_t)(c1 + 1 - line)) : NULL;
	if (c2 == NULL || memchr(c2 + 1, ',', len - (size_t)(c2 + 1 - line)) != NULL) {
		snprintf(why, whylen, "expected 'ts,key,value' (3 fields)");
		return -EINVAL;
	}
	if (parse_i64(line, (size_t)(c1 - line), ts) < 0) {
		snprintf(why, whylen, "bad timestamp: expected an integer of milliseconds");
		return -EINVAL;
	}
	klen = (size_t)(c2 - c1 - 1);
	if (klen == 0 || klen > WA_KEY_MAX) {
		snprintf(why, whylen, "bad key: expected 1 to %d bytes", WA_KEY_MAX);
		return -EINVAL;
	}
	if (parse_i64(c2 + 1, len - (size_t)(c2 + 1 - line), &e->value) < 0) {
		snprintf(why, whylen, "bad value: expected a 64-bit integer");
		return -EINVAL;
	}
	rc = sl_batch_add_str(out, c1 + 1, (uint32_t)klen, &e->key);
	if (rc == 0 && j->keep_raw)
		rc = sl_batch_add_str(out, line, (uint32_t)len, &e->raw);
	return rc < 0 ? rc : 1;
}

/* ----------------------------------------------------------- operators */

static void wa_key(const void *elem, const struct sl_batch *src, struct sl_key *out)
{
	const struct wa_ev *e = elem;

	out->ptr = sl_batch_str(src, e->key);
	out->len = e->key.len;
}

static void wa_create(void *acc, void *arg)
{
	(void)arg;
	wa_acc_init(acc);
}

static void wa_add(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg)
{
	(void)ts, (void)src, (void)arg;
	wa_acc_add(acc, ((const struct wa_ev *)elem)->value);
}

/* SLUICE_TEST_SLOW_WINDOW_US in ns, 0 when unset; written by wa_build() before the workers start.
 */
static long g_slow_ns;

static void wa_add_slow(void *acc, const void *elem, int64_t ts, const struct sl_batch *src,
			void *arg)
{
	wa_add(acc, elem, ts, src, arg);
	nanosleep(&(struct timespec){ g_slow_ns / 1000000000L, g_slow_ns % 1000000000L }, NULL);
}

static void wa_merge(void *dst, const void *src, void *arg)
{
	(void)arg;
	wa_acc_merge(dst, src);
}

static int wa_result(const struct sl_window *w, const struct sl_key *key, const void *acc,
		     struct sl_collector *out, void *arg)
{
	const struct wa_acc *a = acc;
	struct wa_out o = { w->start, w->end, a->count, a->sum, a->min, a->max, { 0, 0 } };
	int rc = sl_collector_str(out, key->ptr, key->len, &o.key);

	(void)arg;
	return rc < 0 ? rc : sl_emit(out, &o, w->end - 1, NULL);
}

static int wa_format(const void *elem, int64_t ts, const struct sl_batch *b, char *buf, size_t len,
		     void *arg)
{
	const struct wa_out *o = elem;

	(void)ts, (void)arg;
	return snprintf(buf, len,
			"%" PRId64 ",%" PRId64 ",%.*s,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64,
			o->start, o->end, (int)o->key.len, sl_batch_str(b, o->key), o->count,
			o->sum, o->min, o->max);
}

static int wa_format_raw(const void *elem, int64_t ts, const struct sl_batch *b, char *buf,
			 size_t len, void *arg)
{
	const struct wa_ev *e = elem;

	(void)ts, (void)arg;
	return snprintf(buf, len, "%.*s", (int)e->raw.len, sl_batch_str(b, e->raw));
}

/* --------------------------------------------------------------- check */

/* --output DIR/: the exactly-once part-file sink. */
static bool is_dir_output(const char *out)
{
	return out != NULL && out[0] != '\0' && out[strlen(out) - 1] == '/';
}

static int wa_check(const void *opts, char *errbuf, size_t errlen)
{
	const struct wa_opts *o = opts;
	struct sl_window_spec w;
	double rate;
	int64_t d;

	if (o->input == NULL)
		return sl_errbuf_set(errbuf, errlen, -EINVAL, "option '--input' is required");
	if (o->window == NULL)
		return sl_errbuf_set(errbuf, errlen, -EINVAL, "option '--window' is required");
	if (parse_window(o->window, &w) < 0)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "bad value '%s' for '--window': expected tumbling:SIZE, "
				     "sliding:SIZE:SLIDE or session:GAP with durations > 0 "
				     "(N, Nms, Ns, Nm or Nh)",
				     o->window);
	if (o->out_of_orderness && sl_parse_duration_ms(o->out_of_orderness, 0, &d) < 0)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "bad value '%s' for '--out-of-orderness': expected a "
				     "duration >= 0 (N, Nms, Ns, Nm or Nh)",
				     o->out_of_orderness);
	if (o->allowed_lateness && sl_parse_duration_ms(o->allowed_lateness, 0, &d) < 0)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "bad value '%s' for '--allowed-lateness': expected a "
				     "duration >= 0 (N, Nms, Ns, Nm or Nh)",
				     o->allowed_lateness);
	if (o->watermark_every &&
	    (sl_parse_duration_ms(o->watermark_every, 1, &d) < 0 ||
	     strspn(o->watermark_every, "0123456789") != strlen(o->watermark_every)))
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "bad value '%s' for '--watermark-every': expected a number "
				     "of records >= 1",
				     o->watermark_every);
	if (o->idleness && sl_parse_duration_ms(o->idleness, 1, &d) < 0)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "bad value '%s' for '--idleness': expected a duration > 0 "
				     "(N, Nms, Ns, Nm or Nh)",
				     o->idleness);
	if (sli_cli_parse_rate(o->rate, &rate) < 0)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "bad value '%s' for '--rate': expected records per second, a "
				     "number >= 0",
				     o->rate);
	if (o->bad_records != NULL && o->bad_records[0] == '\0')
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "bad value '' for '--bad-records': expected fail, skip or a "
				     "file path");
	if (is_dir_output(o->output)) {
		struct stat sb;

		if (stat(o->output, &sb) < 0 || !S_ISDIR(sb.st_mode))
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "bad value '%s' for '--output': a path ending in '/' "
					     "is the exactly-once part-file sink, and needs an "
					     "existing directory",
					     o->output);
	}
	return 0;
}

/* --------------------------------------------------------------- build */

static int wa_build(const void *opts, struct sl_job *job, bool run, void **state, char *errbuf,
		    size_t errlen)
{
	const struct wa_opts *o = opts;
	struct wa_job *j = calloc(1, sizeof(*j));
	struct sl_stream *s, *w;
	int64_t every = 0;
	const char *slow;
	char buf[32];
	int rc;

	*state = j;
	if (j == NULL)
		return sl_errbuf_set(errbuf, errlen, -ENOMEM, "out of memory");
	j->o = o;
	j->job = job;
	/* All checked by wa_check(). */
	parse_window(o->window, &j->spec);
	if (o->allowed_lateness)
		sl_parse_duration_ms(o->allowed_lateness, 0, &j->spec.allowed_lateness);
	if (o->out_of_orderness)
		sl_parse_duration_ms(o->out_of_orderness, 0, &j->wm.out_of_orderness_ms);
	if (o->watermark_every)
		sl_parse_duration_ms(o->watermark_every, 1, &every);
	j->wm.every = (uint64_t)every;
	if (o->idleness)
		sl_parse_duration_ms(o->idleness, 1, &j->wm.idle_timeout_ms);
	j->keep_raw = o->late_output != NULL;

	j->lines.path = o->input;
	j->lines.parse = wa_parse;
	j->lines.arg = j;
	if (o->bad_records == NULL || strcmp(o->bad_records, "fail") == 0) {
		j->lines.bad_policy = SL_BAD_FAIL;
	} else if (strcmp(o->bad_records, "skip") == 0) {
		j->lines.bad_policy = SL_BAD_SKIP;
	} else {
		j->lines.bad_policy = SL_BAD_FILE;
		j->lines.bad_path = o->bad_records;
	}
	sli_cli_parse_rate(o->rate, &j->lines.rate); /* checked by wa_check() */

	slow = getenv("SLUICE_TEST_SLOW_WINDOW_US");
	g_slow_ns = 0;
	if (slow != NULL && *slow != '\0') {
		char *end;
		long us;

		errno = 0;
		us = *slow >= '0' && *slow <= '9' ? strtol(slow, &end, 10) : -1;
		/* As SLUICE_TEST_HOLD_INPUT (core/hold.c): a value that does not parse is said, and
		 * ignored. */
		if (us < 0 || us > 1000000 || errno != 0 || *end != '\0')
			sl_log(SL_LOG_ERROR, "window-agg",
			       "SLUICE_TEST_SLOW_WINDOW_US='%s' ignored: expected 0..1000000 (us)",
			       slow);
		else
			g_slow_ns = us * 1000L;
	}
	if (g_slow_ns > 0)
		sl_log(SL_LOG_WARN, "window-agg",
		       "test slowdown armed: the window sleeps %ld us per element",
		       g_slow_ns / 1000);
	j->agg = (struct sl_aggregate){
		.acc_size = sizeof(struct wa_acc),
		.create = wa_create,
		.add = g_slow_ns > 0 ? wa_add_slow : wa_add,
		.merge = wa_merge,
		.result = wa_result,
		.flags = SL_AGG_SLICEABLE, /* count, wrapping sum, min, max */
	};
	s = sl_source(job, "events", &sl_lines_ops, &j->lines, &wa_ev_type);
	s = sl_assign_watermarks(sl_set_parallelism(s, 1), &j->wm);
	/*
	 * With a state budget the windows live in keyed state (Flink's
	 * WindowOperator on its state backend) and spill past it; without
	 * one, the in-memory operator (sliced panes, no per-element state
	 * access) is faster.
	 */
	if (sl_job_get(job, "state-memory", buf, sizeof(buf)) == 0)
		j->budget = strtoull(buf, NULL, 10);
	if (sl_job_get(job, "parallelism", buf, sizeof(buf)) < 0)
		return sl_errbuf_set(errbuf, errlen, -EINVAL, "cannot read the parallelism");
	if (j->budget > 0)
		w = wa_spill_window(sl_key_by(s, wa_key), &j->spec, j->keep_raw,
				    (unsigned)strtoul(buf, NULL, 10), &wa_out_type, &j->spill);
	else
		w = sl_window_aggregate(sl_key_by(s, wa_key), "window", &j->spec, &j->agg,
					&wa_out_type);

	if (is_dir_output(o->output)) {
		j->parts = (struct sl_part_sink_conf){ .dir = o->output,
						       .format = wa_format,
						       .fsync = true };
		sl_sink(w, "output", &sl_part_sink_ops, &j->parts);
	} else {
		j->out.path = o->output ? o->output : "-";
		j->out.mode = SL_TEXT_MERGED;
		j->out.format = wa_format;
		sl_sink(w, "output", &sl_text_sink_ops, &j->out);
	}
	if (o->late_output != NULL) {
		j->late.path = o->late_output;
		j->late.mode = SL_TEXT_MERGED;
		j->late.format = wa_format_raw;
		sl_sink(sl_side_output(w, 0, &wa_ev_type), "late", &sl_text_sink_ops, &j->late);
	}
	if (run) {
		rc = is_dir_output(o->output) ? 0 : sl_text_sink_prepare(&j->out, errbuf, errlen);
		if (rc == 0 && o->late_output != NULL)
			rc = sl_text_sink_prepare(&j->late, errbuf, errlen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Late records dropped (no --late-output) and bad records skipped are said, never silent. */
static int wa_finish(void *state, int rc, bool stopped, char *errbuf, size_t errlen)
{
	struct wa_job *j = state;
	uint64_t late = 0, bad = 0;

	(void)stopped, (void)errbuf, (void)errlen;
	if (rc < 0)
		return rc;
	sl_job_op_counters(j->job, "window", NULL, &late);
	sl_job_op_counters(j->job, "events", &bad, NULL);
	if (late > 0 && j->o->late_output == NULL)
		fprintf(stderr,
			"window-agg: %" PRIu64 " late records dropped (--late-output keeps "
			"them)\n",
			late);
	if (bad > 0)
		fprintf(stderr, "window-agg: %" PRIu64 " bad records %s\n", bad,
			j->lines.bad_policy == SL_BAD_FILE ? "written to the --bad-records file"
							   : "skipped");
	if (j->spill != NULL) {
		struct wa_spill_stats sp;

		wa_spill_stats(j->spill, &sp);
		fprintf(
		    stderr,
		    "window-agg: state-memory %" PRIu64 " B per subtask: window state of a key "
		    "spilled %" PRIu64 " times (%" PRIu64
		    " B appended to the spill files in %" PRIu64 " writes of 1 MiB, up to %" PRIu64
		    " keys out of memory at once), read back "
		    "%" PRIu64 " times\n",
		    j->budget, sp.evictions, sp.peak_bytes, sp.writes, sp.peak_on_disk, sp.reloads);
	}
	return 0;
}

static void wa_destroy(void *state)
{
	struct wa_job *j = state;

	if (j != NULL)
		wa_spill_free(j->spill);
	free(j);
}

const struct sli_job_def sli_job_window_agg = {
	.name = "window-agg",
	.summary = "event-time window aggregates (count, sum, min, max per key) of a CSV of events",
	.description =
	    "Reads 'ts,key,value' lines (ts in ms), assigns event-time windows per key with\n"
	    "bounded out-of-orderness watermarks, and writes one line per window firing:\n"
	    "'start,end,key,count,sum,min,max'. Durations are ms, or N with ms, s, m or h.\n",
	.opts = wa_options,
	.opts_size = sizeof(struct wa_opts),
	.opts_default = &wa_defaults,
	.check = wa_check,
	.build = wa_build,
	.finish = wa_finish,
	.destroy = wa_destroy,
};
