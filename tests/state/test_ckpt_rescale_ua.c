/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ckpt_rescale_ua.c — rescaling an unaligned checkpoint whose
 * in-flight data sits between an upstream operator that changes
 * parallelism with the job and a keyed operator.
 *
 * The job: a generator (parallelism 1, elements from a formula of their
 * index), rebalanced to a map "relay" at the job's parallelism p, keyed to
 * a sliding aggregate window (count and sum) at p, into exactly-once part
 * files. Rings of 4 batches of 64 elements and a slow window keep the
 * rings full, and unaligned checkpoints (every 5 ms) turn their contents
 * into channel state: the relays' input from the generator (not keyed)
 * and, at p > 1, the windows' input from the relays (a keyed exchange; at
 * p = 1 the relay and the window form one chain). Once three checkpoints
 * have completed, the relay fails the job (restart strategy none); until
 * then a gate in front of the generator lets the input's last tenth
 * through at 1 element per ms and holds its last element, so the run
 * cannot end first however slow the disk or the machine; a
 * second run restores the newest checkpoint at parallelism q, so the
 * recorded elements must reach the new owners of their key groups (or
 * for the relays' input, one new subtask each).
 *
 * The committed output must equal a brute-force computation of the
 * windows from the formula (as a sorted list): an in-flight element lost,
 * doubled or sent to a subtask that does not own its key group (whose
 * window state is elsewhere: a split window) shows up as a missing, extra
 * or wrong line. The restore's sl_checkpoint_stats prove that the case is
 * not vacuous: in-flight elements were restored and redistributed, at
 * p > 1 by key group; with p == q they are replayed as recorded instead.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sluice/sl_connectors.h>
#include <sluice/sl_job.h>
#include <sluice/sl_state.h>
#include <sluice/sl_time.h>

#include "sl_test.h"
#include "source_gate.h"
#include "sorted_lines.h"
#include "test_dirs.h"

#define N	   24000 /* elements */
#define NKEYS	   16
#define SSIZE	   60 /* sliding windows: size and slide, ms */
#define SSLIDE	   20
#define DISORDER   29	/* timestamps run up to DISORDER - 1 ms behind their order */
#define BOUND	   100	/* watermark out-of-orderness > DISORDER: nothing is late */
#define FAIL_AFTER 3	/* the first run fails once this many checkpoints completed */
#define SLOW_NS	   8000 /* the window's cost per element */

#include "cs_window.h"

/* The input: element i's key, value (i) and timestamp. */
static int64_t key_of(uint64_t i)
{
	return (int64_t)(((i * 2654435761u) >> 7) % NKEYS);
}

static int64_t ts_of(uint64_t i)
{
	return 1000 + (int64_t)(i / 8) + (int64_t)((i * 37) % DISORDER);
}

static void gen_fill(uint64_t i, uint64_t seed, void *elem, int64_t *ts, void *arg)
{
	struct ev *e = elem;

	(void)seed, (void)arg;
	e->key = key_of(i);
	e->val = (int64_t)i;
	*ts = ts_of(i);
}

/* The CPU time of the calling thread. */
static uint64_t cpu_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/*
 * Work for @ns of this thread's CPU time: a slow operator, so that its
 * input rings stay full. CPU time, not the clock: descheduled on a busy
 * machine, the operator must not catch up (this is no timing assertion).
 */
static void spin_ns(uint64_t ns)
{
	uint64_t end = cpu_ns() + ns;

	while (cpu_ns() < end)
		;
}

/*
 * The job of the first run, which the relay fails (NULL: none). Set
 * before sl_job_run() starts the threads that read it, cleared after it
 * returned.
 */
static struct sl_job *g_fail_job;

/* Checkpoints completed in the job of g_fail_job (0 without one). */
static uint64_t fail_job_completed(void)
{
	struct sl_checkpoint_stats cs = { 0 };

	if (g_fail_job != NULL)
		sl_job_checkpoint_stats(g_fail_job, &cs);
	return cs.completed;
}

/*
 * The gate: the first run's generator (parallelism 1: one thread polls
 * it, and g_gated is reset before sl_job_run() starts that thread) goes
 * through here. Until FAIL_AFTER checkpoints completed, the elements past
 * 0.9 N pass at 1 per ms (barriers still pass between polls, and the
 * window's rings drain slowly) and the last one waits, so the input does
 * not end; then everything passes, and the relay fails the run at the next
 * element.
 */
static uint64_t g_gated, g_gate_ns;

static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int gate_poll(void *state, struct sl_batch *out)
{
	uint64_t room = UINT64_MAX;

	if (fail_job_completed() < FAIL_AFTER) {
		room = N * 9 / 10 > g_gated ? N * 9 / 10 - g_gated : 0;
		/* Past 0.9 N: 1 per ms, and the last element waits (no end). */
		if (room == 0 && g_gated < N - 1 && mono_ns() - g_gate_ns >= 1000000) {
			g_gate_ns = mono_ns();
			room = 1;
		}
	}
	return gated_poll(&sl_gen_ops, &g_gated, state, out, room);
}

/* The relay: copies, and fails the first run once FAIL_AFTER checkpoints completed. */
static int relay(const void *in, void *out, void *arg)
{
	(void)arg;
	memcpy(out, in, sizeof(struct ev));
	return g_fail_job != NULL && fail_job_completed() >= FAIL_AFTER ? -EIO : 0;
}

static void key_ev(const void *e, const struct sl_batch *src, struct sl_key *out)
{
	(void)src;
	out->ptr = &((const struct ev *)e)->key;
	out->len = sizeof(int64_t);
}

/* The aggregate: count and sum, sliceable (merge adds); add is slow. */
static void cs_add(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg)
{
	cs_add_ev(acc, elem, ts, src, arg);
	/*
	 * Slow, and in the first run slower still past half the input until
	 * the relay fails it: the window stays the bottleneck (its input
	 * rings full; the gate keeps the run from ending first).
	 */
	spin_ns(((const struct ev *)elem)->val >= N / 2 && g_fail_job != NULL &&
			fail_job_completed() < FAIL_AFTER
		    ? 20 * SLOW_NS
		    : SLOW_NS);
}

/*
 * Run the job at parallelism @par into @out; with @ck, checkpoints there
 * (restoring the newest), failing once FAIL_AFTER completed when @fail.
 * Fill *@cs with the job's checkpoint statistics. Return sl_job_run()'s
 * result.
 */
static int run_job(unsigned par, const char *out, const char *ck, bool fail,
		   struct sl_checkpoint_stats *cs)
{
	struct sl_gen_conf gc = { .count = N, .type = &ev_type, .fill = gen_fill };
	struct sl_watermark_strategy ws = { .out_of_orderness_ms = BOUND, .every = 64 };
	struct sl_part_sink_conf pc = { .dir = out, .format = wo_format, .fsync = true };
	struct sl_aggregate agg = cs_aggregate(cs_add);
	struct sl_window_spec sp = { .kind = SL_WINDOW_SLIDING, .size = SSIZE, .slide = SSLIDE };
	char err[1024], ps[16];
	const char *opts[][2] = { { "parallelism", ps },    { "ring-size", "16" },
				  { "batch-size", "64" },   { "restart-strategy", "none" },
				  { "checkpoint-dir", ck }, { "checkpoint-interval", "5ms" },
				  { "restore", "latest" },  { "checkpoint-unaligned", "true" } };
	struct sl_source_ops gate_ops;
	struct sl_stream *s;
	struct sl_job *job;
	int rc = 0;

	if (sl_job_create("rescale-ua", &job) < 0)
		return -ENOMEM;
	sl_job_use_checkpoint_storage(job);
	snprintf(ps, sizeof(ps), "%u", par);
	for (unsigned i = 0; i < (ck != NULL ? 8u : 4u) && rc == 0; i++)
		if ((rc = sl_job_set(job, opts[i][0], opts[i][1], err, sizeof(err))) < 0)
			fprintf(stderr, "sl_job_set %s=%s: %s\n", opts[i][0], opts[i][1], err);
	gate_ops = sl_gen_ops;
	gate_ops.poll = gate_poll;
	g_gated = 0;
	g_gate_ns = 0;
	s = sl_set_parallelism(sl_source(job, "gen", fail ? &gate_ops : &sl_gen_ops, &gc, &ev_type),
			       1);
	s = sl_assign_watermarks(s, &ws);
	s = sl_map(sl_rebalance(s), "relay", relay, NULL, &ev_type);
	s = sl_window_aggregate(sl_key_by(s, key_ev), "window", &sp, &agg, &wo_type);
	sl_sink(s, "out", &sl_part_sink_ops, &pc);
	if (rc == 0) {
		g_fail_job = fail ? job : NULL;
		rc = sl_job_run(job, NULL, err, sizeof(err));
		g_fail_job = NULL;
		if (rc < 0 && !fail)
			fprintf(stderr, "run: %s\n", err);
	}
	if (cs != NULL)
		sl_job_checkpoint_stats(job, cs);
	sl_job_destroy(job);
	return rc;
}

/*
 * Brute force from the formula: per key and window [s, s + SSIZE) (s a
 * multiple of SSLIDE) with elements, "key,start,end,count,sum,end-1",
 * sorted. Each element is added to every window that contains it.
 */
static void reference(struct lines *want)
{
	int64_t lo = ts_of(0) - SSIZE, hi = ts_of(N - 1) + DISORDER;
	size_t nwin;
	struct cs *acc;
	char buf[160];

	lo -= lo % SSLIDE;
	nwin = (size_t)((hi - lo) / SSLIDE + 1);
	acc = calloc(NKEYS * nwin, sizeof(*acc));
	CU_ASSERT_FATAL(acc != NULL);
	for (uint64_t i = 0; i < N; i++)
		for (size_t w = 0; w < nwin; w++) {
			int64_t st = lo + (int64_t)w * SSLIDE;

			if (ts_of(i) >= st && ts_of(i) < st + SSIZE) {
				acc[(size_t)key_of(i) * nwin + w].count++;
				acc[(size_t)key_of(i) * nwin + w].sum += (int64_t)i;
			}
		}
	for (int64_t k = 0; k < NKEYS; k++)
		for (size_t w = 0; w < nwin; w++) {
			const struct cs *a = &acc[(size_t)k * nwin + w];
			int64_t st = lo + (int64_t)w * SSLIDE;

			if (a->count == 0)
				continue;
			snprintf(buf, sizeof(buf),
				 "%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
				 ",%" PRId64,
				 k, st, st + SSIZE, a->count, a->sum, st + SSIZE - 1);
			lines_add(want, buf);
		}
	free(acc);
	qsort(want->v, want->n, sizeof(*want->v), cmp_str);
}

static char tmpdir[256];
static struct lines want; /* the reference, computed by the first test that needs it */

static void need_reference(void)
{
	if (want.n == 0)
		reference(&want);
}

/* Without checkpoints, at 1 and 4: the engine agrees with the reference. */
static void test_uninterrupted(void)
{
	char out[400];

	need_reference();
	CU_ASSERT(want.n > 1000); /* much output: the test can see losses */
	for (unsigned par = 1; par <= 4; par *= 4) {
		struct lines got = { 0 };

		snprintf(out, sizeof(out), "%s/out-plain-%u/", tmpdir, par);
		fresh_dir(out);
		CU_ASSERT(run_job(par, out, NULL, false, NULL) == 0);
		committed(out, &got);
		CU_ASSERT(same("uninterrupted", &got, &want) == 0);
		lines_free(&got);
	}
}

/* Checkpoints at @p until the relay fails, then a restore at @q that runs to the end. */
static void rescale(unsigned p, unsigned q)
{
	struct sl_checkpoint_stats cs;
	struct lines got = { 0 };
	char out[400], ck[400];

	need_reference();
	snprintf(out, sizeof(out), "%s/out-%u-%u/", tmpdir, p, q);
	snprintf(ck, sizeof(ck), "%s/ck-%u-%u", tmpdir, p, q);
	/*
	 * Whether a ring holds data at the barrier depends on the scheduling
	 * (at p = 1 a single ring feeds the slow chain): a restore whose
	 * checkpoint had none (at p > 1: none on a keyed channel) is run again,
	 * its output checked all the same.
	 */
	for (int attempt = 0; attempt < 4; attempt++) {
		fresh_dir(out);
		fresh_dir(ck);
		CU_ASSERT(run_job(p, out, ck, true, &cs) < 0); /* the relay failed it */
		CU_ASSERT(cs.completed >= FAIL_AFTER);
		CU_ASSERT(run_job(q, out, ck, false, &cs) == 0);
		printf("\n  %u -> %u: restored checkpoint %" PRId64 ", in-flight elements %" PRIu64
		       " (%" PRIu64 " redistributed, %" PRIu64 " by key group) ",
		       p, q, cs.restored_id, cs.inflight_restored, cs.inflight_rescaled,
		       cs.inflight_rekeyed);
		committed(out, &got);
		CU_ASSERT(same("after the restore", &got, &want) == 0);
		lines_free(&got);
		/* Non-vacuous: in-flight data, at p > 1 also the windows' (keyed) input. */
		if (cs.inflight_restored > 0 && (p == 1 || p == q || cs.inflight_rekeyed > 0))
			break;
	}
	CU_ASSERT(cs.restored_id >= FAIL_AFTER);
	/* Not vacuous: the restored checkpoint held in-flight data... */
	CU_ASSERT(cs.inflight_restored > 0);
	if (p != q) {
		/* ...all of it redistributed, the windows' input by key group. */
		CU_ASSERT(cs.inflight_rescaled == cs.inflight_restored);
		if (p > 1) {
			CU_ASSERT(cs.inflight_rekeyed > 0);
		} else {
			CU_ASSERT(cs.inflight_rekeyed == 0); /* one chain: no keyed channel */
		}
	} else {
		CU_ASSERT(cs.inflight_rescaled == 0); /* replayed as recorded */
	}
}

#define RESCALE_TEST(p, q)               \
	static void test_##p##_##q(void) \
	{                                \
		rescale(p, q);           \
	}

RESCALE_TEST(2, 4)
RESCALE_TEST(4, 1)
RESCALE_TEST(1, 2)
RESCALE_TEST(4, 2)
RESCALE_TEST(2, 1)
RESCALE_TEST(1, 4)
RESCALE_TEST(2, 2)

int main(void)
{
	CU_TestInfo tests[] = {
		{ "uninterrupted, parallelism 1 and 4: the brute-force reference",
		  test_uninterrupted },
		{ "unaligned checkpoint at 2, restored at 4: in-flight data by key group",
		  test_2_4 },
		{ "unaligned checkpoint at 4, restored at 1", test_4_1 },
		{ "unaligned checkpoint at 1, restored at 2", test_1_2 },
		{ "unaligned checkpoint at 4, restored at 2", test_4_2 },
		{ "unaligned checkpoint at 2, restored at 1", test_2_1 },
		{ "unaligned checkpoint at 1, restored at 4", test_1_4 },
		{ "unaligned checkpoint at 2, restored at 2: replayed as recorded", test_2_2 },
		CU_TEST_INFO_NULL,
	};
	int rc;

	if (scratch_setup(tmpdir, sizeof(tmpdir), "rescale-ua", NULL) < 0)
		return 1;
	rc = sl_test_main_rm("ckpt-rescale-ua", tests, tmpdir);
	lines_free(&want);
	return rc;
}
