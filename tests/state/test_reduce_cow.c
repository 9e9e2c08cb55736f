/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_reduce_cow.c — the keyed reduce's copy-on-write snapshots
 * (core/ops.c on core/cow.c) through whole jobs, while the state is
 * written and grows during every pending snapshot.
 *
 * A line source (parallelism 1) of "ts,key,val" records whose keys keep
 * coming (one new key in three records, to the end; see write_input()),
 * keyed by key,
 * into a rolling reduce at parallelism 2 (the sum of val, and the tag
 * string "k<key>" of the key's first element, kept in the table's arena),
 * into exactly-once part files ("key,sum,tag,ts"). The checkpoint
 * coordinator waits SNAP_DELAY ms before it copies each image
 * (SLUICE_TEST_SNAPSHOT_DELAY_MS), checkpoints every 5 ms: meanwhile the
 * task rewrites accumulators and timestamps the image still reads (it
 * must copy their segments first), and appends keys, so its four arrays
 * grow and move while images are pending.
 *
 * The reference is computed here from the input: per record, in file
 * order, its key's running sum, the tag of the key's first record and the
 * record's timestamp.
 *   - An uninterrupted run with checkpoints (its last tenth of input waits
 *     for 4 completed checkpoints, however fast the machine) commits the
 *     reference, and its statistics show the task copied segments and
 *     moved arrays (the paths under test ran).
 *   - Runs killed with SIGKILL after a checkpoint completed, restored from
 *     the latest one, and finished at parallelism 3 (key groups move)
 *     commit exactly the reference: every restored snapshot held each
 *     key's sum, timestamp, key and tag as they were at its barrier, not
 *     later ones written while it was pending (a sum from after the
 *     barrier is counted twice after the restore, a wrong key or tag is a
 *     wrong line).
 * Multi-threaded (task and coordinator): also under TSan (stress).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sluice/sl_connectors.h>
#include <sluice/sl_job.h>
#include <sluice/sl_state.h>

#include "ckpt_gate.h"
#include "kill_loop.h"
#include "kv_elems.h"
#include "sl_test.h"
#include "sorted_lines.h"
#include "test_dirs.h"

#define NREC	   30000
#define SNAP_DELAY "25"
#define KILLS	   4

struct evs {
	int64_t key, val;
	struct sl_str tag;
};
static const struct sl_type evs_type = SL_TYPE_STR1(struct evs, tag);

static char tmpdir[256], inpath[300];
static int64_t rkey[NREC], rval[NREC], rts[NREC];

/*
 * The input: a third of the records bring a new key (to the end), most
 * others one of the 64 newest keys, and one in twenty any key. So the
 * task rewrites a few old accumulators during each pending snapshot but
 * leaves most segments of its arrays to the coordinator, and those arrays
 * grow meanwhile: a block freed or rewritten before the coordinator copied
 * it shows. 0 or -1.
 */
static int write_input(void)
{
	FILE *f = input_open(inpath, sizeof(inpath), tmpdir, "in.csv", 11);
	int64_t nkeys = 0;

	if (f == NULL)
		return -1;
	for (int i = 0; i < NREC; i++) {
		int r = rand() % 100;

		if (nkeys == 0 || r < 34)
			rkey[i] = nkeys++;
		else if (r < 95)
			rkey[i] = nkeys - 1 - rand() % (nkeys < 64 ? nkeys : 64);
		else
			rkey[i] = rand() % nkeys;
		rval[i] = rand() % 2001 - 1000;
		rts[i] = 1000 + i / 2 + rand() % 30;
		fprintf(f, "%" PRId64 ",%" PRId64 ",%" PRId64 "\n", rts[i], rkey[i], rval[i]);
	}
	return fclose(f) == 0 ? 0 : -1;
}

static int parse(const char *line, size_t len, struct sl_batch *out, void *elem, int64_t *ts,
		 char *why, size_t whylen, void *arg)
{
	struct evs *e = elem;
	char tag[32];
	int rc = parse_tkv(line, len, ts, &e->key, &e->val, why, whylen);

	(void)arg;
	if (rc < 0)
		return rc;
	snprintf(tag, sizeof(tag), "k%" PRId64, e->key);
	return sl_batch_add_str(out, tag, (uint32_t)strlen(tag), &e->tag) < 0 ? -ENOMEM : 1;
}

static int format(const void *elem, int64_t ts, const struct sl_batch *b, char *buf, size_t len,
		  void *arg)
{
	const struct evs *e = elem;

	(void)arg;
	return snprintf(buf, len, "%" PRId64 ",%" PRId64 ",%.*s,%" PRId64, e->key, e->val,
			(int)e->tag.len, b->arena + e->tag.off, ts);
}

/* The input's last tenth waits for g_gate_ckpts completed checkpoints (0: none). */
static int gate_poll(void *state, struct sl_batch *out)
{
	struct sl_checkpoint_stats cs = { 0 };

	sl_job_checkpoint_stats(g_gate_job, &cs);
	return gated_poll(&sl_lines_ops, &g_gated, state, out, gate_room(&cs, NREC));
}

static int run_job(const char *out, const char *ck, unsigned par, double rate)
{
	static const char *async[][2] = { { "checkpoint-snapshot", "async" } };
	struct sl_lines_conf lc = { .path = inpath, .parse = parse, .rate = rate };
	struct sl_part_sink_conf pc = { .dir = out, .format = format, .fsync = true };
	struct sl_source_ops gate_ops = sl_lines_ops;
	struct sl_stream *s;
	struct sl_job *job;
	char err[1024];
	int rc = ckpt_job_create("reduce-cow", par, ck, async, 1, &job);

	if (job == NULL)
		return rc;
	gate_ops.poll = gate_poll;
	s = sl_set_parallelism(sl_source(job, "in", &gate_ops, &lc, &evs_type), 1);
	s = sl_reduce(sl_key_by(s, key_first8), "reduce", sum_val, NULL, SL_REDUCE_ROLLING);
	sl_sink(s, "out", &sl_part_sink_ops, &pc);
	return gate_run(job, rc, err, sizeof(err));
}

/* Per record, in file order: its key's running sum, the first record's tag, its time. */
static void reference(struct lines *want)
{
	struct {
		int64_t key, sum;
		bool used;
	} *h = calloc(2 * NREC, sizeof(*h));
	char buf[160];

	CU_ASSERT_FATAL(h != NULL);
	for (int i = 0; i < NREC; i++) {
		size_t j = (size_t)rkey[i] % (2 * NREC);

		while (h[j].used && h[j].key != rkey[i])
			j = (j + 1) % (2 * NREC);
		h[j].used = true;
		h[j].key = rkey[i];
		h[j].sum += rval[i];
		snprintf(buf, sizeof(buf), "%" PRId64 ",%" PRId64 ",k%" PRId64 ",%" PRId64, rkey[i],
			 h[j].sum, rkey[i], rts[i]);
		lines_add(want, buf);
	}
	free(h);
	qsort(want->v, want->n, sizeof(*want->v), cmp_str);
}

static void test_uninterrupted(void)
{
	char out[400], ck[400];
	struct lines want = { 0 }, got = { 0 };

	snprintf(out, sizeof(out), "%s/out-full/", tmpdir);
	snprintf(ck, sizeof(ck), "%s/ck-full", tmpdir);
	fresh_out_ck(out, ck);
	reference(&want);
	g_gate_ckpts = 4;
	CU_ASSERT(run_job(out, ck, 2, 20000) == 0);
	g_gate_ckpts = 0;
	committed(out, &got);
	CU_ASSERT(same("uninterrupted, checkpoints with delayed copies", &got, &want) == 0);
	printf("\n  %" PRIu64 " checkpoints, %" PRIu64 " failed, %" PRIu64 " B copied by tasks, "
	       "%" PRIu64 " arrays moved ",
	       g_cs.completed, g_cs.failed, g_cs.cow_task_bytes, g_cs.cow_retired);
	CU_ASSERT(g_cs.completed >= 4);
	CU_ASSERT(g_cs.failed == 0);
	CU_ASSERT(g_cs.cow_task_bytes > 0); /* the task wrote into segments an image still read */
	CU_ASSERT(g_cs.cow_retired > 0);    /* and grew arrays an image still read */
	lines_free(&got);
	lines_free(&want);
}

/* One child of kill_loop(): the job with checkpoints, at parallelism 2. */
struct kill_arg {
	const char *out, *ck;
};

static int kill_run(void *arg, double rate)
{
	const struct kill_arg *k = arg;

	return run_job(k->out, k->ck, 2, rate);
}

static void test_kill_restore(void)
{
	char out[400], ck[400];
	struct lines want = { 0 }, got = { 0 };
	unsigned seed = (unsigned)time(NULL);
	int kills;

	snprintf(out, sizeof(out), "%s/out-kill/", tmpdir);
	snprintf(ck, sizeof(ck), "%s/ck-kill", tmpdir);
	reference(&want);
	printf("\n  kill seed %u ", seed);
	srand(seed);
	fresh_out_ck(out, ck);
	kills = kill_loop(kill_run, &(struct kill_arg){ out, ck }, out, ck, KILLS, 6000, 300);
	CU_ASSERT(kills == KILLS);
	CU_ASSERT(run_job(out, ck, 3, 0) == 0);
	committed(out, &got);
	CU_ASSERT(same("after kills, restores and a rescale", &got, &want) == 0);
	lines_free(&got);
	lines_free(&want);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "rolling reduce, copies delayed: an uninterrupted run with checkpoints",
		  test_uninterrupted },
		{ "rolling reduce, copies delayed: kill -9, restore, rescale", test_kill_restore },
		CU_TEST_INFO_NULL,
	};

	if (scratch_setup(tmpdir, sizeof(tmpdir), "redcow", write_input) < 0)
		return 1;
	if (setenv("SLUICE_TEST_SNAPSHOT_DELAY_MS", SNAP_DELAY, 1) < 0)
		return 1;
	return sl_test_main_rm("reduce-cow", tests, tmpdir);
}
