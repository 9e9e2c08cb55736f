/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ckpt_mem.c — the checkpoint thread's memory, and running out of it
 * while a window's state is serialised or keyed, through whole jobs.
 *
 * A line source (parallelism 1) of "ts,key,val" records (NKEYS keys, in
 * time order but for a disorder below the watermark bound, so nothing is
 * late) into tumbling event-time windows with allowed lateness (fired
 * windows stay in the state until the watermark passes their lateness)
 * at parallelism 2: an aggregate (count and sum of val, window.c) keyed by
 * a key function that returns storage of its own, so that the window
 * copies each key into its key buffer (window.c key_keep()); into
 * exactly-once part files ("key,start,end,count,sum,ts"). The reference
 * is computed here from the input: per key and window, its count and sum.
 *
 *   - The cap on what the coordinator keeps between checkpoints (its
 *     serialisation buffers and largest file buffer, core/checkpoint.c
 *     CKPT_KEEP_MAX, 128 MiB): with the cap, the job's kept bytes
 *     (sl_checkpoint_stats.max_kept_bytes) are many times KEEP_SMALL; the
 *     same job and input with the cap lowered to KEEP_SMALL
 *     (SLUICE_TEST_CKPT_KEEP_MAX) keep at most what fits under it.
 *   - SLUICE_SNAP_ENOMEM=N: every Nth serialisation of a window's state
 *     (sli_snap_extend(), core/snap.c) runs out of memory. With
 *     asynchronous snapshots (the coordinator serialises) each such
 *     checkpoint fails and says which operator ran out of memory, and the
 *     job goes on; with synchronous snapshots (the task serialises) the
 *     job fails naming the operator and the checkpoint, and restarts from
 *     its latest checkpoint (restart strategy fixed-delay). Either run ends
 *     with exactly the reference committed.
 *   - SLUICE_KEYBUF_ENOMEM=2: the window's key buffer cannot grow the
 *     second time: the job (no restart strategy) fails naming the
 *     operator; a run without the fault then commits exactly the
 *     reference.
 * The committed output is compared with the reference as sorted lines: no
 * window lost or doubled. Under AddressSanitizer, the failed paths must
 * not leak. The coordinator thread serialises: also under TSan (stress).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sluice/sl_connectors.h>
#include <sluice/sl_job.h>

#include "ckpt_gate.h"
#include "cs_window.h"
#include "kv_elems.h"
#include "sl_test.h"
#include "sli_fault.h"
#include "sorted_lines.h"
#include "test_dirs.h"

#define NREC	   40000
#define NKEYS	   4000
#define DISORDER   20
#define BOUND	   100 /* watermark out-of-orderness > DISORDER: nothing is late */
#define TSIZE	   1000
#define NWIN	   (NREC / 4 / TSIZE + 3) /* windows the timestamps reach */
#define KEEP_SMALL 8192			  /* the lowered cap of test_keep_cap() */

static char tmpdir[256], inpath[300];
static struct rec {
	int64_t ts, key, val;
} in[NREC];

/* Timestamps rising by a quarter per record, disorder below BOUND. 0 or -1. */
static int write_input(void)
{
	FILE *f = input_open(inpath, sizeof(inpath), tmpdir, "in.csv", 7);

	if (f == NULL)
		return -1;
	for (int i = 0; i < NREC; i++) {
		in[i] = (struct rec){ 1000 + i / 4 + rand() % DISORDER, rand() % NKEYS,
				      rand() % 2001 - 1000 };
		fprintf(f, "%" PRId64 ",%" PRId64 ",%" PRId64 "\n", in[i].ts, in[i].key, in[i].val);
	}
	return fclose(f) == 0 ? 0 : -1;
}

/*
 * The key in storage of the function's own (one per thread, valid until
 * its next call, as sl_key_fn allows): neither in the element nor in the
 * batch's arena, so the window keeps a copy for the rest of its chunk.
 */
static void key_own(const void *e, const struct sl_batch *src, struct sl_key *out)
{
	static __thread int64_t k;

	(void)src;
	memcpy(&k, e, sizeof(k));
	out->ptr = &k;
	out->len = sizeof(k);
}

static int gate_poll(void *state, struct sl_batch *out)
{
	struct sl_checkpoint_stats cs = { 0 };

	sl_job_checkpoint_stats(g_gate_job, &cs);
	return gated_poll(&sl_lines_ops, &g_gated, state, out, gate_room(&cs, NREC));
}

/*
 * Run the job into @out with checkpoints in @ck, snapshots @mode; with
 * @restarts, a failed job restarts at once from its latest checkpoint (up
 * to 1000 times), else it fails. Its error in @err.
 */
static int run_job(const char *out, const char *ck, const char *mode, bool restarts, char *err,
		   size_t errlen)
{
	const char *more[][2] = { { "checkpoint-snapshot", mode },
				  { "checkpoint-tolerable-failures", "100" },
				  { "restart-strategy", restarts ? "fixed-delay" : "none" },
				  { "restart-attempts", "1000" },
				  { "restart-delay", "1ms" } };
	struct sl_lines_conf lc = { .path = inpath, .parse = parse_kv };
	struct sl_part_sink_conf pc = { .dir = out, .format = wo_format, .fsync = true };
	struct sl_watermark_strategy ws = { .out_of_orderness_ms = BOUND, .every = 1 };
	struct sl_window_spec sp = { .kind = SL_WINDOW_TUMBLING,
				     .size = TSIZE,
				     .allowed_lateness = TSIZE };
	struct sl_aggregate agg = cs_aggregate(cs_add_ev);
	struct sl_source_ops gate_ops = sl_lines_ops;
	struct sl_stream *s;
	struct sl_job *job;
	int rc = ckpt_job_create("ckpt-mem", 2, ck, more, restarts ? 5 : 3, &job);

	if (job == NULL)
		return rc;
	gate_ops.poll = gate_poll;
	s = sl_set_parallelism(sl_source(job, "in", &gate_ops, &lc, &ev_type), 1);
	s = sl_key_by(sl_assign_watermarks(s, &ws), key_own);
	s = sl_window_aggregate(s, "window", &sp, &agg, &wo_type);
	sl_sink(s, "out", &sl_part_sink_ops, &pc);
	return gate_run(job, rc, err, errlen);
}

/* Per key and window, in any order (sorted): its count and sum (cs_window.h's line). */
static void reference(struct lines *want)
{
	static struct cs acc[NKEYS][NWIN];
	char buf[160];

	memset(acc, 0, sizeof(acc));
	for (int i = 0; i < NREC; i++) {
		struct cs *a = &acc[in[i].key][in[i].ts / TSIZE];

		a->count++;
		a->sum += in[i].val;
	}
	for (int k = 0; k < NKEYS; k++)
		for (int w = 0; w < NWIN; w++)
			if (acc[k][w].count > 0) {
				int64_t start = (int64_t)w * TSIZE;

				snprintf(buf, sizeof(buf),
					 "%d,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
					 ",%" PRId64,
					 k, start, start + TSIZE, acc[k][w].count, acc[k][w].sum,
					 start + TSIZE - 1);
				lines_add(want, buf);
			}
	qsort(want->v, want->n, sizeof(*want->v), cmp_str);
}

/* The committed output of @out against the reference. */
static void check_output(const char *what, const char *out)
{
	struct lines want = { 0 }, got = { 0 };

	reference(&want);
	CU_ASSERT(want.n > 10000); /* many windows: a lost or doubled one shows */
	committed(out, &got);
	CU_ASSERT(same(what, &got, &want) == 0);
	lines_free(&got);
	lines_free(&want);
}

/* Directories @out and @ck of case @name, fresh. */
static void case_dirs(const char *name, char *out, char *ck, size_t len)
{
	snprintf(out, len, "%s/out-%s/", tmpdir, name);
	snprintf(ck, len, "%s/ck-%s", tmpdir, name);
	fresh_out_ck(out, ck);
}

/*
 * stderr into file @path until capture_end(): the engine's log, where a
 * failed checkpoint is said. Return the saved descriptor.
 */
static int capture_begin(const char *path)
{
	int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	CU_ASSERT_FATAL(saved >= 0 && fd >= 0);
	fflush(stderr);
	CU_ASSERT_FATAL(dup2(fd, 2) == 2);
	close(fd);
	return saved;
}

/* stderr back; the log captured at @path (echoed), valid until the next call. */
static const char *capture_end(int saved, const char *path)
{
	static char log[1 << 16];
	FILE *f;
	size_t n = 0;

	fflush(stderr);
	CU_ASSERT_FATAL(dup2(saved, 2) == 2);
	close(saved);
	f = fopen(path, "r");
	CU_ASSERT_FATAL(f != NULL);
	n = fread(log, 1, sizeof(log) - 1, f);
	fclose(f);
	log[n] = '\0';
	fputs(log, stderr);
	return log;
}

/*
 * The same job and input, the cap at its default, then lowered to
 * KEEP_SMALL: the coordinator kept many times KEEP_SMALL between
 * checkpoints, then at most its writer (freed when over the cap) and one
 * file buffer of at most the cap's length (its capacity up to 1.5 times
 * that, rounded up to 4 KiB): under 3 * KEEP_SMALL. Without the cap the
 * second run would keep as much as the first.
 */
static void test_keep_cap(void)
{
	char out[400], ck[400], err[1024], cap[16];
	uint64_t kept;

	case_dirs("keep", out, ck, sizeof(out));
	g_gate_ckpts = 4; /* the last tenth waits for 4 checkpoints: kept between them */
	CU_ASSERT(run_job(out, ck, "async", true, err, sizeof(err)) == 0);
	kept = g_cs.max_kept_bytes;
	printf("\n  cap 128 MiB: %" PRIu64 " checkpoints, %" PRIu64 " B kept ", g_cs.completed,
	       kept);
	CU_ASSERT(g_cs.completed >= 4);
	CU_ASSERT(kept > 8 * KEEP_SMALL); /* kept below the cap: the state is big enough */
	check_output("cap 128 MiB", out);

	case_dirs("keep-small", out, ck, sizeof(out));
	snprintf(cap, sizeof(cap), "%d", KEEP_SMALL);
	CU_ASSERT_FATAL(setenv("SLUICE_TEST_CKPT_KEEP_MAX", cap, 1) == 0);
	CU_ASSERT(run_job(out, ck, "async", true, err, sizeof(err)) == 0);
	CU_ASSERT(unsetenv("SLUICE_TEST_CKPT_KEEP_MAX") == 0);
	g_gate_ckpts = 0;
	printf("\n  cap %d B: %" PRIu64 " checkpoints, %" PRIu64 " B kept ", KEEP_SMALL,
	       g_cs.completed, g_cs.max_kept_bytes);
	CU_ASSERT(g_cs.completed >= 4);
	CU_ASSERT(g_cs.max_kept_bytes < 3 * KEEP_SMALL); /* released above the cap */
	check_output("cap 8 KiB", out);
}

/*
 * Out of memory in every @nth serialisation of a window's state, with
 * snapshots @mode: asynchronous, the checkpoints fail, saying which
 * operator ran out of memory, and the job goes on (when the final
 * checkpoint fails, the job fails and restarts); synchronous, the job
 * fails, naming the operator, and restarts from its latest checkpoint.
 * Either way the run ends with exactly the reference committed.
 */
static void snap_enomem(const char *mode, const char *nth)
{
	bool async = strcmp(mode, "async") == 0;
	char out[400], ck[400], err[1024], logpath[400];
	const char *log;
	int saved;

	case_dirs(async ? "snap-async" : "snap-sync", out, ck, sizeof(out));
	snprintf(logpath, sizeof(logpath), "%s/log-%s", tmpdir, mode);
	g_gate_ckpts = 4; /* the input's end waits for 4 completed checkpoints */
	/* Counted from here: the first serialisation of the run does not fail. */
	atomic_store(&sli_fault_snap.calls, 0);
	atomic_store(&sli_fault_snap.faults, 0);
	CU_ASSERT_FATAL(setenv("SLUICE_SNAP_ENOMEM", nth, 1) == 0);
	saved = capture_begin(logpath);
	CU_ASSERT(run_job(out, ck, mode, true, err, sizeof(err)) == 0);
	log = capture_end(saved, logpath);
	CU_ASSERT(unsetenv("SLUICE_SNAP_ENOMEM") == 0);
	g_gate_ckpts = 0;
	printf("\n  %s: %" PRIu64 " checkpoints, %" PRIu64 " failed, %lu faults, restored %" PRId64
	       " ",
	       mode, g_cs.completed, g_cs.failed, sli_faults(&sli_fault_snap), g_cs.restored_id);
	CU_ASSERT(sli_faults(&sli_fault_snap) > 0); /* the hook refused */
	CU_ASSERT(g_cs.completed >= 4);
	if (async) {
		/* Failed checkpoints, said with the operator. */
		CU_ASSERT(g_cs.failed >= 1);
		CU_ASSERT(strstr(log, "failed: operator 'window' (subtask ") != NULL);
		CU_ASSERT(strstr(log, "out of memory while serialising its state") != NULL);
	} else {
		/* The job failed, naming the operator and the checkpoint, and restarted. */
		CU_ASSERT(strstr(log, "operator 'window' (subtask ") != NULL);
		CU_ASSERT(strstr(log, "failed: checkpoint ") != NULL);
		CU_ASSERT(strstr(log, "restarting job 'ckpt-mem'") != NULL);
		CU_ASSERT(g_cs.restored_id > 0);
	}
	check_output(async ? "serialisation out of memory, async"
			   : "serialisation out of memory, sync",
		     out);
}

static void test_snap_async(void)
{
	snap_enomem("async", "3");
}

static void test_snap_sync(void)
{
	snap_enomem("sync", "7");
}

/* The window's key buffer cannot grow: the job fails naming the operator; a run after it. */
static void test_keybuf(void)
{
	char out[400], ck[400], err[1024];
	int rc;

	case_dirs("keybuf", out, ck, sizeof(out));
	atomic_store(&sli_fault_keybuf.calls, 0);
	atomic_store(&sli_fault_keybuf.faults, 0);
	CU_ASSERT_FATAL(setenv("SLUICE_KEYBUF_ENOMEM", "2", 1) == 0);
	rc = run_job(out, ck, "async", false, err, sizeof(err));
	CU_ASSERT(unsetenv("SLUICE_KEYBUF_ENOMEM") == 0);
	printf("\n  %lu faults, run: %s ", sli_faults(&sli_fault_keybuf),
	       rc == 0 ? "completed" : err);
	CU_ASSERT(sli_faults(&sli_fault_keybuf) > 0);
	CU_ASSERT(rc < 0);
	CU_ASSERT(strstr(err, "operator 'window'") != NULL);
	CU_ASSERT(run_job(out, ck, "async", true, err, sizeof(err)) == 0);
	check_output("key buffer out of memory, then a run", out);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "kept buffers: below the cap kept, above it released (cap lowered)",
		  test_keep_cap },
		{ "window state serialised by the checkpoint thread runs out of memory: failed "
		  "checkpoints, the job goes on",
		  test_snap_async },
		{ "window state serialised by the task runs out of memory: the job fails and "
		  "restarts",
		  test_snap_sync },
		{ "window key buffer runs out of memory: the job fails, then a run", test_keybuf },
		CU_TEST_INFO_NULL,
	};

	if (scratch_setup(tmpdir, sizeof(tmpdir), "ckmem", write_input) < 0)
		return 1;
	return sl_test_main_rm("ckpt-mem", tests, tmpdir);
}
