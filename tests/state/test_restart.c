/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_restart.c — restart strategies (core/restart.c) and the restart
 * loop of sl_job_run().
 *
 * Backoff sequences: each strategy's delays for failures at chosen times
 * (a caller's clock, zero jitter) against numbers worked out by hand from
 * Flink's definitions: initial * multiplier^k capped at the maximum, the
 * reset after the threshold, the attempt limits, the failure-rate window
 * at its boundary; with jitter, bounds and reproducibility from a seed.
 *
 * Jobs: line source (a file the test writes) -> rebalance -> a map that
 * fails with -EIO the first K times it sees line N -> exactly-once part
 * files, checkpoints every 5 ms. The committed output is compared with the
 * input the test wrote: every line exactly once after a recovery, and the
 * restart counter equals K; none fails at once with the cause; limits give
 * up with the strategy named; a failing sink restarts too; -EINVAL is not
 * restarted; sl_job_stop() during the backoff ends the job with 0 and a
 * later restore finishes exactly once.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sluice/sluice.h>

#include "sl_test.h"
#include "sli_restart.h"

#define LINES_TEST_NAME "sluice-restart-test"
#include "lines_output.h"

#define BAD_LINE 15000

/* ------------------------------------------------- backoff sequences */

static struct sli_restart_opts opts(enum sli_restart_kind kind)
{
	struct sli_restart_opts o;

	sli_restart_opts_init(&o);
	o.kind = kind;
	return o;
}

static void test_defaults(void)
{
	struct sli_restart_opts o = opts(SLI_RESTART_DEFAULT);
	struct sli_restart r;

	/* Flink's defaults. */
	CU_ASSERT(o.attempts == 1 && o.delay_ms == 1000);
	CU_ASSERT(o.max_failures == 1 && o.interval_ms == 60000);
	CU_ASSERT(o.initial_ms == 1000 && o.max_ms == 60000 && o.multiplier == 1.5);
	CU_ASSERT(o.reset_ms == 3600000 && o.jitter == 0.1 &&
		  o.attempts_before_reset == 2147483647);
	CU_ASSERT(sli_restart_init(&r, &o, true, 1, NULL, 0) == 0);
	CU_ASSERT(r.kind == SLI_RESTART_EXPONENTIAL_DELAY);
	sli_restart_fini(&r);
	CU_ASSERT(sli_restart_init(&r, &o, false, 1, NULL, 0) == 0);
	CU_ASSERT(r.kind == SLI_RESTART_NONE);
	CU_ASSERT(sli_restart_next(&r, 0) == -1);
	CU_ASSERT(r.restarts == 0);
	sli_restart_fini(&r);
}

static void test_exponential(void)
{
	/* 1000 * 1.5^k, truncated, capped at 60000 (worked out by hand). */
	static const int64_t want[] = { 1000,  1500,  2250,  3375,  5062,  7593, 11390,
					17085, 25628, 38443, 57665, 60000, 60000 };
	struct sli_restart_opts o = opts(SLI_RESTART_EXPONENTIAL_DELAY);
	struct sli_restart r;
	int64_t t = 0, d;

	o.jitter = 0;
	CU_ASSERT_FATAL(sli_restart_init(&r, &o, true, 1, NULL, 0) == 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		d = sli_restart_next(&r, t);
		if (d != want[i])
			fprintf(stderr, "failure %zu: delay %lld, want %lld\n", i + 1, (long long)d,
				(long long)want[i]);
		CU_ASSERT(d == want[i]);
		t += d + 10; /* ran 10 ms after the restart */
	}
	CU_ASSERT(r.restarts == 13);
	/* Ran just under the threshold since the last restart: no reset. */
	t += 3600000 - 10 - 1;
	CU_ASSERT(sli_restart_next(&r, t) == 60000);
	/* Ran exactly the threshold: back to the initial backoff, then growing again. */
	t += 60000 + 3600000;
	CU_ASSERT(sli_restart_next(&r, t) == 1000);
	CU_ASSERT(sli_restart_next(&r, t + 1000) == 1500);
	sli_restart_fini(&r);
}

static void test_exponential_limit(void)
{
	struct sli_restart_opts o = opts(SLI_RESTART_EXPONENTIAL_DELAY);
	struct sli_restart r;

	o.jitter = 0;
	o.initial_ms = 10;
	o.max_ms = 25;
	o.multiplier = 2;
	o.attempts_before_reset = 3;
	o.reset_ms = 1000;
	CU_ASSERT_FATAL(sli_restart_init(&r, &o, false, 1, NULL, 0) == 0);
	CU_ASSERT(sli_restart_next(&r, 0) == 10);
	CU_ASSERT(sli_restart_next(&r, 11) == 20);
	CU_ASSERT(sli_restart_next(&r, 32) == 25);
	CU_ASSERT(sli_restart_next(&r, 58) == -1); /* a 4th restart without a reset */
	CU_ASSERT(r.restarts == 3);
	/* A reset (1000 ms after the last restart at 57) allows three more. */
	CU_ASSERT(sli_restart_next(&r, 57 + 1000) == 10);
	CU_ASSERT(r.restarts == 4);
	sli_restart_fini(&r);
}

static void test_jitter(void)
{
	struct sli_restart_opts o = opts(SLI_RESTART_EXPONENTIAL_DELAY);
	struct sli_restart a, b;
	double base = 1000;
	bool moved = false;

	CU_ASSERT_FATAL(sli_restart_init(&a, &o, true, 42, NULL, 0) == 0);
	CU_ASSERT_FATAL(sli_restart_init(&b, &o, true, 42, NULL, 0) == 0);
	for (int i = 0; i < 20; i++) {
		int64_t da = sli_restart_next(&a, i), db = sli_restart_next(&b, i);
		double lo = base * 0.9 - 1, hi = base * 1.1 < 60000 ? base * 1.1 : 60000;

		CU_ASSERT(da == db); /* the same seed, the same sequence */
		CU_ASSERT(da >= (int64_t)lo && da <= (int64_t)hi);
		moved |= da != (int64_t)base;
		base = base * 1.5 < 60000 ? base * 1.5 : 60000;
	}
	CU_ASSERT(moved);
	sli_restart_fini(&a);
	sli_restart_fini(&b);
}

static void test_fixed_delay(void)
{
	struct sli_restart_opts o = opts(SLI_RESTART_FIXED_DELAY);
	struct sli_restart r;

	o.attempts = 2;
	o.delay_ms = 10;
	CU_ASSERT_FATAL(sli_restart_init(&r, &o, true, 1, NULL, 0) == 0);
	CU_ASSERT(sli_restart_next(&r, 0) == 10);
	CU_ASSERT(sli_restart_next(&r, 5000000) == 10);
	CU_ASSERT(sli_restart_next(&r, 10000000) == -1);
	CU_ASSERT(r.restarts == 2);
	sli_restart_fini(&r);
	o.attempts = 0;
	CU_ASSERT_FATAL(sli_restart_init(&r, &o, true, 1, NULL, 0) == 0);
	CU_ASSERT(sli_restart_next(&r, 0) == -1);
	sli_restart_fini(&r);
}

static void test_failure_rate(void)
{
	struct sli_restart_opts o = opts(SLI_RESTART_FAILURE_RATE);
	struct sli_restart r;

	o.max_failures = 2;
	o.interval_ms = 1000;
	o.delay_ms = 5;
	CU_ASSERT_FATAL(sli_restart_init(&r, &o, true, 1, NULL, 0) == 0);
	CU_ASSERT(sli_restart_next(&r, 0) == 5);
	CU_ASSERT(sli_restart_next(&r, 100) == 5);
	/* The 3rd failure within 1000 ms (the one at 0 is exactly 1000 ms old). */
	CU_ASSERT(sli_restart_next(&r, 1000) == -1);
	/* At 1001 the one at 0 is out of the interval: one left, so restart. */
	CU_ASSERT(sli_restart_next(&r, 1001) == 5);
	CU_ASSERT(sli_restart_next(&r, 1050) == -1);
	/* Much later: both forgotten. */
	CU_ASSERT(sli_restart_next(&r, 10000) == 5);
	CU_ASSERT(sli_restart_next(&r, 10001) == 5);
	CU_ASSERT(r.restarts == 5);
	sli_restart_fini(&r);
	/* Many allowed failures: the window grows past its first allocation. */
	o.max_failures = 100;
	CU_ASSERT_FATAL(sli_restart_init(&r, &o, true, 1, NULL, 0) == 0);
	for (int i = 0; i < 100; i++)
		CU_ASSERT(sli_restart_next(&r, i) == 5);
	CU_ASSERT(sli_restart_next(&r, 100) == -1);
	sli_restart_fini(&r);
}

static void test_options(void)
{
	static const char *const bad[][2] = {
		{ "restart-strategy", "bogus" },
		{ "restart-strategy", "default" },
		{ "restart-attempts", "-1" },
		{ "restart-attempts", "x" },
		{ "restart-attempts", "2147483648" },
		{ "restart-delay", "5x" },
		{ "restart-max-failures-per-interval", "0" },
		{ "restart-failure-rate-interval", "0" },
		{ "restart-initial-backoff", "-1s" },
		{ "restart-max-backoff", "1y" },
		{ "restart-backoff-multiplier", "0.5" },
		{ "restart-backoff-multiplier", "2x" },
		{ "restart-reset-backoff-threshold", "0" },
		{ "restart-jitter-factor", "1.5" },
		{ "restart-jitter-factor", "nan" },
		{ "restart-attempts-before-reset-backoff", "0" },
	};
	struct sl_job *job;
	char err[512];

	CU_ASSERT_FATAL(sl_job_create("opts", &job) == 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CU_ASSERT(sl_job_set(job, bad[i][0], bad[i][1], err, sizeof(err)) == -EINVAL);
		CU_ASSERT(strstr(err, bad[i][0]) != NULL);
	}
	CU_ASSERT(sl_job_set(job, "restart-bogus", "1", err, sizeof(err)) == -ENOENT);
	CU_ASSERT(sl_job_set(job, "restart-strategy", "failure-rate", err, sizeof(err)) == 0);
	CU_ASSERT(sl_job_set(job, "restart-backoff-multiplier", "2.5", err, sizeof(err)) == 0);
	CU_ASSERT(sl_job_set(job, "restart-jitter-factor", "0", err, sizeof(err)) == 0);
	CU_ASSERT(sl_job_set(job, "restart-delay", "0", err, sizeof(err)) == 0);
	sl_job_destroy(job);

	/* Contradicting options are refused when the run starts. */
	struct sli_restart_opts o = opts(SLI_RESTART_EXPONENTIAL_DELAY);
	struct sli_restart r;

	o.initial_ms = 2000;
	o.max_ms = 1000;
	CU_ASSERT(sli_restart_init(&r, &o, true, 1, err, sizeof(err)) == -EINVAL);
	CU_ASSERT(strstr(err, "restart-initial-backoff") != NULL);
	sli_restart_fini(&r);
}

/* --------------------------------------------------------------- jobs */

/* Failures still to inject (the map or the sink, at BAD_LINE) and the error they return. */
static _Atomic int fail_left;
static int fail_rc = -EIO;
static bool fail_in_sink; /* the sink fails, not the map */

static bool is_bad_line(const struct sl_batch *b, uint32_t i)
{
	const struct sl_line *l = sl_batch_elem(b, i);
	char want[32];
	int n = snprintf(want, sizeof(want), "line %d", BAD_LINE);

	return l->text.len == (uint32_t)n && memcmp(sl_batch_str(b, l->text), want, n) == 0;
}

/* Seeing BAD_LINE: fail while failures are left (one subtask sees it per attempt). */
static int inject(const struct sl_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		if (is_bad_line(b, i) &&
		    atomic_fetch_sub_explicit(&fail_left, 1, memory_order_relaxed) > 0)
			return fail_rc;
	return 0;
}

/* In place (object-reuse): out == in, so the lines pass unchanged. */
static int failing_map(const struct sl_batch *in, struct sl_batch *out, void *arg)
{
	(void)arg;
	if (out != in)
		return -EPROTO; /* the test needs object-reuse */
	return fail_in_sink ? 0 : inject(in);
}

static struct sl_sink_ops failing_sink_ops;

static int failing_write(void *state, const struct sl_batch *b)
{
	int rc = fail_in_sink ? inject(b) : 0;

	return rc < 0 ? rc : sl_part_sink_ops.write(state, b);
}

struct jobbox {
	struct sl_job *job;
	struct sl_lines_conf lines;
	struct sl_part_sink_conf parts;
	char err[1024];
	int rc;
};

/* The job; @kv: NULL-terminated option pairs; @sink_fails: the sink fails instead of the map. */
static void build(struct jobbox *jb, const char *out, const char *ck, const char *const *kv,
		  bool sink_fails)
{
	struct sl_stream *s;

	memset(jb, 0, sizeof(*jb));
	CU_ASSERT_FATAL(sl_job_create("restart-test", &jb->job) == 0);
	sl_job_use_checkpoint_storage(jb->job);
	CU_ASSERT(set(jb->job, "parallelism", "2") == 0);
	CU_ASSERT(set(jb->job, "object-reuse", "true") == 0);
	CU_ASSERT(set(jb->job, "checkpoint-dir", ck) == 0);
	CU_ASSERT(set(jb->job, "checkpoint-interval", "5ms") == 0);
	for (; kv != NULL && kv[0] != NULL; kv += 2)
		CU_ASSERT(set(jb->job, kv[0], kv[1]) == 0);
	jb->lines =
	    (struct sl_lines_conf){ .path = input, .parse = sl_lines_parse_line, .rate = 200000 };
	s = sl_source(jb->job, "lines", &sl_lines_ops, &jb->lines, &sl_line_type);
	s = sl_map_batch(sl_rebalance(s), "flaky", failing_map, NULL, &sl_line_type);
	jb->parts =
	    (struct sl_part_sink_conf){ .dir = out, .format = sl_line_format, .fsync = false };
	failing_sink_ops = sl_part_sink_ops;
	failing_sink_ops.write = failing_write;
	sl_sink(s, "out", sink_fails ? &failing_sink_ops : &sl_part_sink_ops, &jb->parts);
}

static int run(struct jobbox *jb)
{
	jb->err[0] = '\0';
	jb->rc = sl_job_run(jb->job, NULL, jb->err, sizeof(jb->err));
	return jb->rc;
}

static unsigned restarts(const struct sl_job *job)
{
	struct sl_job_stats st;

	sl_job_stats(job, &st);
	return st.restarts;
}

/*
 * Run a fresh job whose map (or sink) fails @k times at BAD_LINE under the
 * options @kv. Return its rc; @restarts_out: the restart counter; the
 * output directory in @out (for the caller's checks) and the error in @err.
 */
static int scenario(const char *name, const char *const *kv, int k, bool sink_fails,
		    unsigned *restarts_out, char *out, size_t outlen, char *err, size_t errlen)
{
	struct jobbox jb;
	char ck[400];
	int rc;

	snprintf(out, outlen, "%s/out-%s/", tmpdir, name);
	snprintf(ck, sizeof(ck), "%s/ck-%s", tmpdir, name);
	fresh_dir(out);
	rm_rf(ck);
	atomic_store(&fail_left, k);
	fail_in_sink = sink_fails;
	build(&jb, out, ck, kv, sink_fails);
	rc = run(&jb);
	*restarts_out = restarts(jb.job);
	snprintf(err, errlen, "%s", jb.err);
	if (rc < 0)
		fprintf(stderr, "%s: rc %d: %s\n", name, rc, jb.err);
	sl_job_destroy(jb.job);
	return rc;
}

#define SCENARIO(name, kv, k, sink, n) \
	scenario(name, kv, k, sink, n, out, sizeof(out), err, sizeof(err))

static void test_job_recovers(void)
{
	static const char *const exp_default[] = { "restart-initial-backoff", "10ms", NULL };
	static const char *const exp[] = { "restart-strategy",
					   "exponential-delay",
					   "restart-initial-backoff",
					   "1ms",
					   "restart-max-backoff",
					   "20ms",
					   "restart-backoff-multiplier",
					   "2",
					   NULL };
	static const char *const fixed[] = { "restart-strategy",
					     "fixed-delay",
					     "restart-attempts",
					     "3",
					     "restart-delay",
					     "10ms",
					     NULL };
	static const char *const rate[] = { "restart-strategy",
					    "failure-rate",
					    "restart-max-failures-per-interval",
					    "2",
					    "restart-failure-rate-interval",
					    "1h",
					    "restart-delay",
					    "10ms",
					    NULL };
	char out[400], err[1024];
	unsigned n;

	/* The default with a checkpoint-dir is exponential-delay. */
	CU_ASSERT(SCENARIO("default", exp_default, 3, false, &n) == 0);
	CU_ASSERT(n == 3);
	CU_ASSERT(exactly_once(out) == 0);
	CU_ASSERT(SCENARIO("exp", exp, 4, false, &n) == 0);
	CU_ASSERT(n == 4);
	CU_ASSERT(exactly_once(out) == 0);
	CU_ASSERT(SCENARIO("fixed", fixed, 3, false, &n) == 0);
	CU_ASSERT(n == 3);
	CU_ASSERT(exactly_once(out) == 0);
	CU_ASSERT(SCENARIO("rate", rate, 2, false, &n) == 0);
	CU_ASSERT(n == 2);
	CU_ASSERT(exactly_once(out) == 0);
	/* The sink's write fails twice: restarted like an operator. */
	CU_ASSERT(SCENARIO("sink", fixed, 2, true, &n) == 0);
	CU_ASSERT(n == 2);
	CU_ASSERT(atomic_load(&fail_left) <= 0);
	CU_ASSERT(exactly_once(out) == 0);
}

static void test_job_gives_up(void)
{
	static const char *const none[] = { "restart-strategy", "none", NULL };
	static const char *const fixed[] = { "restart-strategy",
					     "fixed-delay",
					     "restart-attempts",
					     "2",
					     "restart-delay",
					     "10ms",
					     NULL };
	static const char *const rate[] = { "restart-strategy",
					    "failure-rate",
					    "restart-max-failures-per-interval",
					    "2",
					    "restart-failure-rate-interval",
					    "1h",
					    "restart-delay",
					    "10ms",
					    NULL };
	static const char *const exp[] = { "restart-initial-backoff", "1ms",
					   "restart-attempts-before-reset-backoff", "2", NULL };
	char out[400], err[1024];
	unsigned n;
	int seen;

	CU_ASSERT(SCENARIO("none", none, 1, false, &n) == -EIO);
	CU_ASSERT(n == 0);
	CU_ASSERT(strstr(err, "operator 'flaky'") != NULL);
	CU_ASSERT(strstr(err, "gave up") == NULL);
	CU_ASSERT(at_most_once(out, &seen) == 0);

	CU_ASSERT(SCENARIO("fixed-gives-up", fixed, 3, false, &n) == -EIO);
	CU_ASSERT(n == 2);
	CU_ASSERT(strstr(err, "operator 'flaky'") != NULL);
	CU_ASSERT(strstr(err, "(restart strategy fixed-delay gave up after 2 restarts)") != NULL);
	CU_ASSERT(at_most_once(out, &seen) == 0);

	CU_ASSERT(SCENARIO("rate-gives-up", rate, 3, false, &n) == -EIO);
	CU_ASSERT(n == 2);
	CU_ASSERT(strstr(err, "(restart strategy failure-rate gave up after 2 restarts)") != NULL);

	CU_ASSERT(SCENARIO("exp-gives-up", exp, 3, true, &n) == -EIO);
	CU_ASSERT(n == 2);
	CU_ASSERT(strstr(err, "operator 'out'") != NULL);
	CU_ASSERT(strstr(err, "exponential-delay gave up after 2 restarts") != NULL);
	CU_ASSERT(at_most_once(out, &seen) == 0);

	/* -EINVAL (bad data, like --bad-records fail) is not restarted. */
	fail_rc = -EINVAL;
	CU_ASSERT(SCENARIO("einval", exp, 1, false, &n) == -EINVAL);
	fail_rc = -EIO;
	CU_ASSERT(n == 0);
	CU_ASSERT(strstr(err, "gave up") == NULL);
}

static void *run_thread(void *arg)
{
	run(arg);
	return NULL;
}

static void test_stop_during_backoff(void)
{
	static const char *const fixed[] = { "restart-strategy", "fixed-delay", "restart-delay",
					     "1h", NULL };
	static const char *const latest[] = { "restore", "latest", NULL };
	char out[400], ck[400];
	struct jobbox jb;
	pthread_t t;
	struct sl_job_stats st;
	int seen = NLINES;

	snprintf(out, sizeof(out), "%s/out-stop/", tmpdir);
	snprintf(ck, sizeof(ck), "%s/ck-stop", tmpdir);
	fresh_dir(out);
	rm_rf(ck);
	atomic_store(&fail_left, 1);
	build(&jb, out, ck, fixed, false);
	pthread_create(&t, NULL, run_thread, &jb);
	/* Wait for the restart to be scheduled (no timing asserted: 60 s is a cap). */
	for (int i = 0; i < 12000 && restarts(jb.job) == 0; i++)
		sleep_ms(5);
	CU_ASSERT(restarts(jb.job) == 1);
	sl_job_stats(jb.job, &st);
	CU_ASSERT(st.running == 1);
	sl_job_stop(jb.job);
	pthread_join(t, NULL);
	CU_ASSERT(jb.rc == 0);
	CU_ASSERT(jb.err[0] == '\0');
	sl_job_stats(jb.job, &st);
	CU_ASSERT(st.running == 0 && st.restarts == 1);
	sl_job_destroy(jb.job);
	CU_ASSERT(at_most_once(out, &seen) == 0);
	CU_ASSERT(seen < NLINES); /* BAD_LINE's failure kept its checkpoint from completing */
	/* The next run restores the newest checkpoint and finishes: exactly once. */
	build(&jb, out, ck, latest, false);
	CU_ASSERT(run(&jb) == 0);
	CU_ASSERT(restarts(jb.job) == 0);
	sl_job_destroy(jb.job);
	CU_ASSERT(exactly_once(out) == 0);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "defaults are Flink's; default strategy by checkpoints", test_defaults },
		{ "exponential-delay: sequence, cap, reset threshold", test_exponential },
		{ "exponential-delay: attempts before reset", test_exponential_limit },
		{ "exponential-delay: jitter bounded and seeded", test_jitter },
		{ "fixed-delay: attempts", test_fixed_delay },
		{ "failure-rate: window boundary", test_failure_rate },
		{ "options: bad values refused by name", test_options },
		{ "jobs recover exactly once under every strategy", test_job_recovers },
		{ "none fails at once; limits give up naming the strategy", test_job_gives_up },
		{ "sl_job_stop during the backoff ends the job with 0", test_stop_during_backoff },
		CU_TEST_INFO_NULL,
	};
	int rc;

	signal(SIGPIPE, SIG_IGN);
	write_input();
	rc = sl_test_main("restart", tests);
	if (rc == 0)
		rm_rf(tmpdir);
	return rc;
}
