/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_checkpoint.c — checkpoints and exactly-once output through whole
 * jobs: the line source (its position), a rebalance exchange (barrier
 * alignment over two channels per sink subtask), the part-file sink
 * (two-phase commit) and the checkpoint storage of state/.
 *
 * The expected output is the input file's lines, each exactly once: the
 * test writes the input itself and compares multisets of lines, so the
 * expectation never comes from the engine.
 *   - stop and restore: sl_job_stop() mid-run takes a final checkpoint and
 *     commits; a restored run finishes the input;
 *   - kill -9: a child process runs the job and is killed at random moments,
 *     then restarted with restore=latest until it finishes;
 *   - a corrupt newest checkpoint is refused (exactly-once sink), with a
 *     message naming the file; without an exactly-once sink the job falls
 *     back to an older checkpoint;
 *   - restoring with another max-parallelism is refused;
 *   - unaligned barriers overtake a full ring: one source subtask feeds
 *     slow sink subtasks (one input channel each, so a barrier in the ring
 *     would never leave in-flight data); after kill -9 the newest
 *     checkpoint holds the ring's contents as channel state, which a
 *     restore at parallelism 3 spreads over the new subtasks (a rebalance
 *     exchange: old index mod 3): it ends exactly once;
 *   - a source that cannot save its position refuses checkpoints.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sluice/sluice.h>

#include "sl_test.h"

#define LINES_TEST_NAME "sluice-ckpt-test"
#include "lines_output.h"

/* Complete checkpoints in @ck (chk-N with a _metadata). */
static int complete_checkpoints(const char *ck)
{
	DIR *d = opendir(ck);
	struct dirent *de;
	int n = 0;

	while (d != NULL && (de = readdir(d)) != NULL) {
		char path[700];
		struct stat sb;

		snprintf(path, sizeof(path), "%s/%s/_metadata", ck, de->d_name);
		n += strncmp(de->d_name, "chk-", 4) == 0 && stat(path, &sb) == 0;
	}
	if (d != NULL)
		closedir(d);
	return n;
}

/* Committed part files in @out. */
static int committed_files(const char *out)
{
	DIR *d = opendir(out);
	struct dirent *de;
	int n = 0;

	while (d != NULL && (de = readdir(d)) != NULL)
		n += strncmp(de->d_name, "part-", 5) == 0;
	if (d != NULL)
		closedir(d);
	return n;
}

/*
 * Wait (no timing is asserted: 60 s is only a cap for a hung job) until
 * @ck holds @nck complete checkpoints and @out @nfiles committed files.
 */
static void wait_progress(const char *ck, int nck, const char *out, int nfiles)
{
	for (int i = 0; i < 12000; i++) {
		if (complete_checkpoints(ck) >= nck && committed_files(out) >= nfiles)
			return;
		sleep_ms(5);
	}
}

struct setup {
	const char *out, *ck, *restore, *maxp, *interval, *mode;
	bool text_sink;	 /* a plain text sink (at-least-once) instead of part files */
	bool slow;	 /* one source subtask, a slow filter before the sink (backpressure) */
	const char *par; /* parallelism (default 2) */
	long gate;	 /* > 0: a filter holds the input after <gate> lines until gate_open */
	bool crawl;	 /* the gate lets 1 line per ms through instead (barriers pass) */
	double rate;
};

/* The index N of batch @b's element @i, a "line N", or -1. */
static long line_index(const struct sl_batch *b, uint32_t i)
{
	const struct sl_line *l = (const void *)(b->data + (size_t)i * b->elem_size);
	const char *p = sl_batch_str(b, l->text);
	char num[24];
	size_t n = l->text.len > 5 ? l->text.len - 5 : 0;

	if (n == 0 || n >= sizeof(num) || memcmp(p, "line ", 5) != 0)
		return -1;
	memcpy(num, p + 5, n);
	num[n] = '\0';
	return atol(num);
}

/*
 * The gate: once setup.gate lines went through it (both subtasks
 * together: each source subtask reads a split of its own, so line
 * numbers say nothing about progress), every batch waits on the worker
 * thread until the test opens it, after announcing that it got there.
 * The source can read ahead only as far as small batches and rings let
 * it, so where a stop lands in the input does not depend on how fast the
 * machine is. A crawling gate sleeps 1 ms per element instead: the job
 * goes on slowly enough (two subtasks: 2 lines/ms) that it cannot finish
 * while the test takes savepoints or waits for checkpoints, and barriers
 * still get through (a blocked gate would hold them too). Seq-cst
 * atomics: written by the test thread, read by the workers.
 */
static atomic_long gate_at, gate_passed;
static atomic_bool gate_hit, gate_open, gate_crawl;

static int gate_batch(struct sl_batch *b, void *arg)
{
	(void)arg;
	if (atomic_fetch_add(&gate_passed, (long)b->n) + (long)b->n >= atomic_load(&gate_at)) {
		atomic_store(&gate_hit, true);
		if (atomic_load(&gate_crawl) && !atomic_load(&gate_open))
			sleep_ms(b->n);
		while (!atomic_load(&gate_crawl) && !atomic_load(&gate_open))
			sleep_ms(1);
	}
	return 0; /* all kept */
}

/* Wait until the gate holds the input (60 s: a cap for a hung job, not a timed assertion). */
static void wait_gate(void)
{
	for (int i = 0; i < 60000 && !atomic_load(&gate_hit); i++)
		sleep_ms(1);
	CU_ASSERT(atomic_load(&gate_hit));
}

/*
 * In the child of the overtake test, the lines of the input's last tenth
 * wait forever: that child never finishes, whatever the machine's speed,
 * and is killed once a checkpoint holding in-flight data is complete.
 */
static bool hold_tail;

/* About 20 us per element: the sink side falls behind, the rings fill. */
static int slow_batch(struct sl_batch *b, void *arg)
{
	(void)arg;
	for (uint32_t i = 0; i < b->n; i++) {
		struct timespec t0, t;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		do
			clock_gettime(CLOCK_MONOTONIC, &t);
		while ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec - t0.tv_nsec < 20000);
		if (hold_tail && line_index(b, i) >= NLINES - NLINES / 10)
			for (;;)
				sleep_ms(100);
	}
	return 0; /* all kept */
}

struct jobbox {
	struct sl_job *job;
	struct sl_lines_conf lines;
	struct sl_part_sink_conf parts;
	struct sl_text_sink_conf text;
	char err[1024];
	int rc;
};

static void build(struct jobbox *jb, const struct setup *s)
{
	struct sl_stream *src;

	memset(jb, 0, sizeof(*jb));
	CU_ASSERT_FATAL(sl_job_create("ckpt-test", &jb->job) == 0);
	sl_job_use_checkpoint_storage(jb->job);
	CU_ASSERT(set(jb->job, "parallelism", s->par ? s->par : "2") == 0);
	if (s->ck) {
		CU_ASSERT(set(jb->job, "checkpoint-dir", s->ck) == 0);
		CU_ASSERT(set(jb->job, "checkpoint-interval", s->interval ? s->interval : "5ms") ==
			  0);
	}
	if (s->restore)
		CU_ASSERT(set(jb->job, "restore", s->restore) == 0);
	if (s->mode) {
		bool un = strcmp(s->mode, "unaligned") == 0;

		CU_ASSERT(set(jb->job, un ? "checkpoint-unaligned" : "checkpoint-mode",
			      un ? "true" : s->mode) == 0);
	}
	if (s->maxp)
		CU_ASSERT(set(jb->job, "max-parallelism", s->maxp) == 0);
	/*
	 * Small batches: the rings fill with a few hundred elements, not the
	 * whole input; the source on a worker of its own, so that sharing a
	 * worker with a slow sink subtask does not pace it.
	 */
	if (s->slow) {
		CU_ASSERT(set(jb->job, "batch-size", "4") == 0);
		CU_ASSERT(set(jb->job, "workers", "3") == 0);
	}
	if (s->gate > 0) {
		CU_ASSERT(set(jb->job, "batch-size", "4") == 0);
		CU_ASSERT(set(jb->job, "ring-size", "4") == 0);
	}
	jb->lines =
	    (struct sl_lines_conf){ .path = input, .parse = sl_lines_parse_line, .rate = s->rate };
	src = sl_source(jb->job, "lines", &sl_lines_ops, &jb->lines, &sl_line_type);
	if (s->slow)
		src = sl_set_parallelism(src, 1);
	src = sl_rebalance(src);
	if (s->slow)
		src = sl_filter_batch(src, "slow", slow_batch, NULL);
	if (s->gate > 0) {
		atomic_store(&gate_at, s->gate);
		atomic_store(&gate_passed, 0);
		atomic_store(&gate_hit, false);
		atomic_store(&gate_open, false);
		atomic_store(&gate_crawl, s->crawl);
		src = sl_filter_batch(src, "gate", gate_batch, NULL);
	}
	if (s->text_sink) {
		jb->text = (struct sl_text_sink_conf){ .path = s->out,
						       .mode = SL_TEXT_PER_SUBTASK,
						       .format = sl_line_format };
		sl_sink(src, "out", &sl_text_sink_ops, &jb->text);
	} else {
		jb->parts = (struct sl_part_sink_conf){ .dir = s->out,
							.format = sl_line_format,
							.fsync = true };
		sl_sink(src, "out", &sl_part_sink_ops, &jb->parts);
	}
}

static int run(struct jobbox *jb)
{
	jb->err[0] = '\0';
	jb->rc = sl_job_run(jb->job, NULL, jb->err, sizeof(jb->err));
	if (jb->rc < 0)
		fprintf(stderr, "run: %s\n", jb->err);
	return jb->rc;
}

static void *run_thread(void *arg)
{
	run(arg);
	return NULL;
}

/* ------------------------------------------------------------- tests */

static void test_no_checkpoints(void)
{
	char out[400];
	struct jobbox jb;

	snprintf(out, sizeof(out), "%s/out0/", tmpdir);
	fresh_dir(out);
	build(&jb, &(struct setup){ .out = out });
	CU_ASSERT(run(&jb) == 0);
	CU_ASSERT(exactly_once(out) == 0);
	sl_job_destroy(jb.job);
	/* A fresh start over committed output is refused. */
	build(&jb, &(struct setup){ .out = out });
	CU_ASSERT(run(&jb) == -EEXIST);
	CU_ASSERT(strstr(jb.err, "exactly-once output needs an empty directory") != NULL);
	sl_job_destroy(jb.job);
}

static void test_stop_restore(void)
{
	for (int round = 0; round < 3; round++) {
		char out[400], ck[400];
		struct jobbox jb;
		pthread_t t;
		int seen = -1;

		snprintf(out, sizeof(out), "%s/out-stop%d/", tmpdir, round);
		snprintf(ck, sizeof(ck), "%s/ck-stop%d", tmpdir, round);
		fresh_dir(out);
		rm_rf(ck);
		build(&jb, &(struct setup){ .out = out,
					    .ck = ck,
					    .restore = "latest",
					    .rate = 40000,
					    .gate = 3000 + 5000 * round });
		pthread_create(&t, NULL, run_thread, &jb);
		/*
		 * Stop while the gate holds the input after 3000, 8000 or 13000
		 * lines (the source can read only a few hundred lines further),
		 * then let the held lines through to the final checkpoint.
		 */
		wait_gate();
		sl_job_stop(jb.job);
		atomic_store(&gate_open, true);
		pthread_join(t, NULL);
		CU_ASSERT(jb.rc == 0);
		sl_job_destroy(jb.job);
		/* Stopped: what is committed is a part of the input, nothing twice. */
		CU_ASSERT(at_most_once(out, &seen) == 0);
		if (!(seen >= 3000 + 5000 * round && seen < NLINES))
			fprintf(stderr, "round %d: %d of %d lines committed at the stop\n", round,
				seen, NLINES);
		CU_ASSERT(seen >= 3000 + 5000 * round && seen < NLINES);
		build(&jb, &(struct setup){ .out = out, .ck = ck, .restore = "latest" });
		CU_ASSERT(run(&jb) == 0);
		sl_job_destroy(jb.job);
		CU_ASSERT(exactly_once(out) == 0);
	}
}

/* The child: run the job to the end (or until killed). */
static int child_run(const char *out, const char *ck, double rate, const char *mode)
{
	struct jobbox jb;

	build(&jb, &(struct setup){
		       .out = out, .ck = ck, .restore = "latest", .rate = rate, .mode = mode });
	return run(&jb) == 0 ? 0 : 1;
}

/* Every line at least once, nothing foreign: return how many lines are missing. */
static int at_least_once(const char *dir)
{
	static int counts[NLINES];
	int foreign, missing = 0;

	check_output(dir, counts, &foreign);
	for (int i = 0; i < NLINES; i++)
		missing += counts[i] == 0;
	if (missing || foreign)
		fprintf(stderr, "%s: %d lines missing, %d foreign lines\n", dir, missing, foreign);
	return missing + foreign;
}

/* kill -9 a forked run 8 times at random moments, restart until it ends; checkpoint-mode @mode. */
static void kill9(const char *mode)
{
	char out[400], ck[400];
	unsigned seed = (unsigned)time(NULL);
	int kills = 0, attempts = 0;

	snprintf(out, sizeof(out), "%s/out-kill-%s/", tmpdir, mode);
	snprintf(ck, sizeof(ck), "%s/ck-kill-%s", tmpdir, mode);
	fresh_dir(out);
	rm_rf(ck);
	printf("\n  kill -9 seed %u\n", seed);
	srand(seed);
	while (attempts++ < 200) {
		pid_t pid = fork();
		int status = 0;

		if (pid == 0)
			_exit(child_run(out, ck, 30000, mode));
		CU_ASSERT_FATAL(pid > 0);
		if (kills < 8) {
			sleep_ms(20 + rand() % 150);
			if (kill(pid, SIGKILL) == 0) {
				waitpid(pid, &status, 0);
				if (WIFSIGNALED(status)) {
					kills++;
					continue;
				}
			}
		} else {
			waitpid(pid, &status, 0);
		}
		CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		if (kills >= 8)
			break;
		/* Finished before enough kills: start over, so they land in one run. */
		fresh_dir(out);
		rm_rf(ck);
		kills = 0;
	}
	CU_ASSERT(kills >= 8);
	if (strcmp(mode, "at-least-once") != 0) {
		CU_ASSERT(exactly_once(out) == 0);
	} else {
		CU_ASSERT(at_least_once(out) == 0); /* duplicates allowed, never a loss */
	}
}

static void test_kill9(void)
{
	kill9("exactly-once");
}

static void test_kill9_at_least_once(void)
{
	kill9("at-least-once");
}

/* Unaligned: each sink subtask reads two channels; in-flight data is restored: exactly once. */
static void test_kill9_unaligned(void)
{
	kill9("unaligned");
}

/* The bytes of file @path (malloc'd, length in *@len), or NULL. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	long n;

	if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)n)) != NULL &&
	    fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	if (f != NULL)
		fclose(f);
	*len = p ? (size_t)n : 0;
	return p;
}

/*
 * Does the newest complete checkpoint in @ck hold channel state of
 * operator @op? Looked up in its snapshot files' bytes: an entry header
 * {u32 name length, the name, u32 kind 3} (ENT_CHANS, core/checkpoint.c).
 */
static bool holds_channel_state(const char *ck, const char *op)
{
	DIR *d = opendir(ck);
	struct dirent *de;
	long best = -1, v;
	char path[800], pat[64];
	uint32_t nl = (uint32_t)strlen(op), kind = 3;
	bool found = false;

	while (d != NULL && (de = readdir(d)) != NULL) {
		struct stat sb;

		snprintf(path, sizeof(path), "%s/%s/_metadata", ck, de->d_name);
		if (sscanf(de->d_name, "chk-%ld", &v) == 1 && v > best && stat(path, &sb) == 0)
			best = v;
	}
	if (d != NULL)
		closedir(d);
	memcpy(pat, &nl, 4);
	memcpy(pat + 4, op, nl);
	memcpy(pat + 4 + nl, &kind, 4);
	snprintf(path, sizeof(path), "%s/chk-%ld", ck, best);
	d = best >= 0 ? opendir(path) : NULL;
	while (d != NULL && !found && (de = readdir(d)) != NULL) {
		char file[1200];
		size_t len;
		char *p;

		if (de->d_name[0] != 't')
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		p = slurp(file, &len);
		found = p != NULL && memmem(p, len, pat, nl + 8) != NULL;
		free(p);
	}
	if (d != NULL)
		closedir(d);
	return found;
}

static void test_unaligned_overtake(void)
{
	char out[400], ck[400];
	struct jobbox jb;
	pid_t pid;
	int status = 0;

	snprintf(out, sizeof(out), "%s/out-overtake/", tmpdir);
	snprintf(ck, sizeof(ck), "%s/ck-overtake", tmpdir);
	fresh_dir(out);
	rm_rf(ck);
	pid = fork();
	if (pid == 0) {
		hold_tail = true;
		build(&jb, &(struct setup){ .out = out,
					    .ck = ck,
					    .restore = "latest",
					    .mode = "unaligned",
					    .slow = true });
		_exit(run(&jb) == 0 ? 0 : 1);
	}
	CU_ASSERT_FATAL(pid > 0);
	/*
	 * The child cannot finish (hold_tail); kill it once its newest
	 * complete checkpoint holds in-flight data: with the source far
	 * ahead of the slow subtasks, nearly every checkpoint does.
	 */
	for (int i = 0; i < 12000; i++) {
		if (complete_checkpoints(ck) >= 2 && holds_channel_state(ck, "slow"))
			break;
		sleep_ms(5); /* 60 s: a cap for a hung job, not a timed assertion */
	}
	CU_ASSERT(kill(pid, SIGKILL) == 0);
	CU_ASSERT(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
	CU_ASSERT(complete_checkpoints(ck) >= 2);
	CU_ASSERT(holds_channel_state(ck, "slow"));

	/* The ring's contents are channel state, rescaled to the new subtasks. */
	build(&jb, &(struct setup){ .out = out,
				    .ck = ck,
				    .restore = "latest",
				    .mode = "unaligned",
				    .slow = true,
				    .par = "3" });
	CU_ASSERT(run(&jb) == 0);
	sl_job_destroy(jb.job);
	CU_ASSERT(exactly_once(out) == 0);
}

/* Flip one byte in the middle of @path. */
static void flip(const char *path)
{
	FILE *f = fopen(path, "r+b");
	long n;
	int c;

	CU_ASSERT_FATAL(f != NULL);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, n / 2, SEEK_SET);
	c = fgetc(f);
	fseek(f, n / 2, SEEK_SET);
	fputc(c ^ 0x10, f);
	fclose(f);
}

/* The newest chk-N directory of @ck. */
static long newest(const char *ck)
{
	DIR *d = opendir(ck);
	struct dirent *de;
	long best = -1;

	while (d != NULL && (de = readdir(d)) != NULL) {
		long v;
		if (sscanf(de->d_name, "chk-%ld", &v) == 1 && v > best)
			best = v;
	}
	if (d != NULL)
		closedir(d);
	return best;
}

/* Run until stopped mid-way, then flip a byte of the newest checkpoint's first file (-> @file). */
static void stop_and_corrupt(const char *out, const char *ck, bool text_sink, char *file,
			     size_t len)
{
	struct jobbox jb;
	pthread_t t;
	long n;

	rm_rf(ck);
	build(&jb, &(struct setup){ .out = out,
				    .ck = ck,
				    .rate = 40000,
				    .text_sink = text_sink,
				    .gate = 2000,
				    .crawl = true });
	pthread_create(&t, NULL, run_thread, &jb);
	wait_progress(ck, 2, out, 0); /* an older complete checkpoint to fall back to */
	sl_job_stop(jb.job);
	atomic_store(&gate_open, true);
	pthread_join(t, NULL);
	CU_ASSERT(jb.rc == 0);
	sl_job_destroy(jb.job);
	n = newest(ck);
	CU_ASSERT_FATAL(n >= 2);
	snprintf(file, len, "%s/chk-%ld/t0-0.snap", ck, n);
	flip(file);
}

static void test_corrupt(void)
{
	char out[400], ck[400], file[600];
	struct jobbox jb;

	/* Exactly-once sink: the newest checkpoint is corrupt, no fallback. */
	snprintf(out, sizeof(out), "%s/out-corrupt/", tmpdir);
	snprintf(ck, sizeof(ck), "%s/ck-corrupt", tmpdir);
	fresh_dir(out);
	stop_and_corrupt(out, ck, false, file, sizeof(file));
	build(&jb, &(struct setup){ .out = out, .ck = ck, .restore = "latest" });
	CU_ASSERT(run(&jb) == -EBADMSG);
	CU_ASSERT(strstr(jb.err, file) != NULL);
	CU_ASSERT(strstr(jb.err, "committed") != NULL);
	sl_job_destroy(jb.job);

	/* A plain text sink (at-least-once): fall back to the previous checkpoint. */
	snprintf(out, sizeof(out), "%s/out-corrupt.txt", tmpdir);
	snprintf(ck, sizeof(ck), "%s/ck-corrupt2", tmpdir);
	stop_and_corrupt(out, ck, true, file, sizeof(file));
	build(&jb, &(struct setup){ .out = out, .ck = ck, .restore = "latest", .text_sink = true });
	CU_ASSERT(run(&jb) == 0);
	sl_job_destroy(jb.job);
}

/* --restore PATH: one checkpoint directory, also without a checkpoint-dir (no new checkpoints). */
static void test_restore_path(void)
{
	char out[400], ck[400], path[500];
	struct jobbox jb;
	pthread_t t;
	int seen = -1;

	snprintf(out, sizeof(out), "%s/out-path/", tmpdir);
	snprintf(ck, sizeof(ck), "%s/ck-path", tmpdir);
	fresh_dir(out);
	rm_rf(ck);
	build(&jb, &(struct setup){ .out = out, .ck = ck, .rate = 10000, .gate = 5000 });
	pthread_create(&t, NULL, run_thread, &jb);
	wait_gate();
	sl_job_stop(jb.job);
	atomic_store(&gate_open, true);
	pthread_join(t, NULL);
	CU_ASSERT(jb.rc == 0);
	sl_job_destroy(jb.job);
	CU_ASSERT(at_most_once(out, &seen) == 0);
	CU_ASSERT(seen >= 5000 && seen < NLINES);

	/* A path that is not a checkpoint: refused, named. */
	snprintf(path, sizeof(path), "%s/chk-999999", ck);
	build(&jb, &(struct setup){ .out = out, .restore = path });
	CU_ASSERT(run(&jb) == -ENOENT);
	CU_ASSERT(strstr(jb.err, "chk-999999") != NULL);
	sl_job_destroy(jb.job);
	/* latest needs a checkpoint-dir. */
	build(&jb, &(struct setup){ .out = out, .restore = "latest" });
	CU_ASSERT(run(&jb) == -EINVAL);
	CU_ASSERT(strstr(jb.err, "checkpoint-dir") != NULL);
	sl_job_destroy(jb.job);

	snprintf(path, sizeof(path), "%s/chk-%ld", ck, newest(ck));
	build(&jb, &(struct setup){ .out = out, .restore = path });
	CU_ASSERT(run(&jb) == 0);
	sl_job_destroy(jb.job);
	CU_ASSERT(exactly_once(out) == 0);
	CU_ASSERT(newest(ck) == atol(strrchr(path, '-') + 1)); /* no checkpoint taken */
}

static void test_maxp_mismatch(void)
{
	char out[400], ck[400];
	struct jobbox jb;

	snprintf(out, sizeof(out), "%s/out-maxp/", tmpdir);
	snprintf(ck, sizeof(ck), "%s/ck-maxp", tmpdir);
	fresh_dir(out);
	rm_rf(ck);
	build(&jb, &(struct setup){ .out = out, .ck = ck, .maxp = "64" });
	CU_ASSERT(run(&jb) == 0);
	sl_job_destroy(jb.job);
	build(&jb, &(struct setup){ .out = out, .ck = ck, .restore = "latest", .maxp = "128" });
	CU_ASSERT(run(&jb) == -EINVAL);
	CU_ASSERT(strstr(jb.err, "max-parallelism 64") != NULL);
	sl_job_destroy(jb.job);
}

/* A source whose connector has no snapshot(). */
static int ns_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	*state = arg;
	return 0;
}

static int ns_poll(void *state, struct sl_batch *out)
{
	return SL_SOURCE_END;
}

static void ns_close(void *state)
{
}

static void test_source_without_snapshot(void)
{
	static const struct sl_source_ops ns_ops = { .open = ns_open,
						     .poll = ns_poll,
						     .close = ns_close };
	char ck[400], out[400];
	struct sl_job *job;
	struct sl_part_sink_conf parts;
	char err[512];

	snprintf(ck, sizeof(ck), "%s/ck-ns", tmpdir);
	snprintf(out, sizeof(out), "%s/out-ns/", tmpdir);
	fresh_dir(out);
	CU_ASSERT_FATAL(sl_job_create("ns", &job) == 0);
	sl_job_use_checkpoint_storage(job);
	CU_ASSERT(set(job, "checkpoint-dir", ck) == 0);
	parts = (struct sl_part_sink_conf){ .dir = out, .format = sl_line_format };
	sl_sink(sl_source(job, "nosnap", &ns_ops, NULL, &sl_line_type), "out", &sl_part_sink_ops,
		&parts);
	CU_ASSERT(sl_job_run(job, NULL, err, sizeof(err)) == -ENOTSUP);
	CU_ASSERT(strstr(err, "'nosnap' cannot be checkpointed") != NULL);
	sl_job_destroy(job);

	/* And without the storage attached, checkpoint options are refused. */
	CU_ASSERT_FATAL(sl_job_create("nostore", &job) == 0);
	CU_ASSERT(set(job, "checkpoint-dir", ck) == 0);
	sl_sink(sl_source(job, "nosnap", &ns_ops, NULL, &sl_line_type), "out", &sl_part_sink_ops,
		&parts);
	CU_ASSERT(sl_job_run(job, NULL, err, sizeof(err)) == -ENOTSUP);
	CU_ASSERT(strstr(err, "sl_job_use_checkpoint_storage") != NULL);
	sl_job_destroy(job);
}

/* Bytes of the files of checkpoint directory @dir, its manifest aside. */
static long long chk_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	long long n = 0;

	while (d != NULL && (de = readdir(d)) != NULL) {
		char path[800];
		struct stat sb;

		if (de->d_name[0] == '.' || strcmp(de->d_name, "_metadata") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &sb) == 0)
			n += sb.st_size;
	}
	if (d != NULL)
		closedir(d);
	return n;
}

/*
 * sl_job_checkpoint_stats() against what is on disk: the newest
 * checkpoint directory's id and file sizes, the restored id, and a
 * failing checkpoint (test I/O engine) counted as failed.
 */
static void test_stats(void)
{
	struct sl_checkpoint_stats cs;
	char out[400], ck[400], dir[500];
	struct jobbox jb;
	pthread_t t;
	long last;

	snprintf(out, sizeof(out), "%s/out-stats/", tmpdir);
	snprintf(ck, sizeof(ck), "%s/ck-stats", tmpdir);
	fresh_dir(out);
	rm_rf(ck);
	build(&jb,
	      &(struct setup){ .out = out, .ck = ck, .rate = 40000, .gate = 2000, .crawl = true });
	CU_ASSERT(sl_job_checkpoint_stats(jb.job, &cs) == 0);
	CU_ASSERT(cs.enabled == 1 && cs.completed == 0 && cs.last_id == 0);
	pthread_create(&t, NULL, run_thread, &jb);
	wait_progress(ck, 2, out, 1);
	sl_job_stop(jb.job);
	atomic_store(&gate_open, true);
	pthread_join(t, NULL);
	CU_ASSERT(jb.rc == 0);
	CU_ASSERT(sl_job_checkpoint_stats(jb.job, &cs) == 0);
	last = newest(ck);
	snprintf(dir, sizeof(dir), "%s/chk-%ld", ck, last);
	CU_ASSERT(cs.last_id == last);
	CU_ASSERT(cs.completed >= (uint64_t)complete_checkpoints(ck) && cs.completed >= 2);
	CU_ASSERT(cs.failed == 0);
	CU_ASSERT(cs.last_bytes == (uint64_t)chk_bytes(dir));
	/* Four subtasks (source and sink at parallelism 2) snapshot each checkpoint. */
	CU_ASSERT(cs.snapshots >= 4 * cs.completed);
	CU_ASSERT(cs.max_pause_ns > 0 && cs.max_pause_ns <= cs.total_pause_ns);
	CU_ASSERT(cs.last_duration_ns > 0 && cs.last_duration_ns <= cs.max_duration_ns);
	CU_ASSERT(cs.restored_id == 0);
	sl_job_destroy(jb.job);

	/* Restored: the id it restored; its own checkpoints continue the sequence. */
	build(&jb, &(struct setup){ .out = out, .ck = ck, .restore = "latest" });
	CU_ASSERT(run(&jb) == 0);
	CU_ASSERT(sl_job_checkpoint_stats(jb.job, &cs) == 0);
	CU_ASSERT(cs.restored_id == last);
	CU_ASSERT(cs.last_id > last && cs.last_id == newest(ck));
	sl_job_destroy(jb.job);
	CU_ASSERT(exactly_once(out) == 0);

	/* A checkpoint that cannot be written is failed, and fails the job. */
	fresh_dir(out);
	rm_rf(ck);
	build(&jb, &(struct setup){ .out = out, .ck = ck });
	CU_ASSERT(set(jb.job, "checkpoint-io", "fault:eio@0") == 0);
	CU_ASSERT(set(jb.job, "restart-strategy", "none") == 0);
	CU_ASSERT(run(&jb) == -EIO);
	CU_ASSERT(strstr(jb.err, "Input/output error") != NULL);
	CU_ASSERT(sl_job_checkpoint_stats(jb.job, &cs) == 0);
	CU_ASSERT(cs.failed >= 1 && cs.completed == 0 && cs.last_id == 0);
	CU_ASSERT(complete_checkpoints(ck) == 0);
	sl_job_destroy(jb.job);
	CU_ASSERT(sl_job_checkpoint_stats(NULL, &cs) == -EINVAL);
}

static void test_bad_options(void)
{
	struct sl_job *job;
	char err[512];

	CU_ASSERT_FATAL(sl_job_create("opts", &job) == 0);
	CU_ASSERT(sl_job_set(job, "checkpoint-interval", "5x", err, sizeof(err)) == -EINVAL);
	CU_ASSERT(strstr(err, "checkpoint-interval") != NULL);
	CU_ASSERT(sl_job_set(job, "checkpoint-timeout", "0", err, sizeof(err)) == -EINVAL);
	CU_ASSERT(sl_job_set(job, "checkpoint-retained", "0", err, sizeof(err)) == -EINVAL);
	CU_ASSERT(sl_job_set(job, "checkpoint-mode", "twice", err, sizeof(err)) == -EINVAL);
	CU_ASSERT(strstr(err, "exactly-once or at-least-once") != NULL);
	CU_ASSERT(sl_job_set(job, "checkpoint-io", "fault:eio", err, sizeof(err)) == -EINVAL);
	CU_ASSERT(sl_job_set(job, "checkpoint-io", "fault:short@0", err, sizeof(err)) == -EINVAL);
	CU_ASSERT(strstr(err, "checkpoint-io") != NULL);
	CU_ASSERT(sl_job_set(job, "checkpoint-snapshot", "lazy", err, sizeof(err)) == -EINVAL);
	CU_ASSERT(strstr(err, "'checkpoint-snapshot'") != NULL && strstr(err, "async or sync"));
	CU_ASSERT(sl_job_set(job, "checkpoint-snapshot", "sync", err, sizeof(err)) == 0);
	CU_ASSERT(sl_job_set(job, "checkpoint-interval", "200ms", err, sizeof(err)) == 0);
	CU_ASSERT(sl_job_set(job, "checkpoint-tolerable-failures", "3", err, sizeof(err)) == 0);
	sl_job_destroy(job);
}

struct sp_call {
	struct sl_job *job;
	const char *target;
	char path[4096], err[512];
	int rc;
};

static void *savepoint_thread(void *arg)
{
	struct sp_call *c = arg;

	c->rc =
	    sl_job_savepoint(c->job, c->target, c->path, sizeof(c->path), c->err, sizeof(c->err));
	return NULL;
}

/* A savepoint directory is complete: its manifest says so. */
static bool is_savepoint(const char *dir)
{
	char m[4200], buf[256] = { 0 };
	FILE *f;

	snprintf(m, sizeof(m), "%s/_metadata", dir);
	f = fopen(m, "rb");
	if (f == NULL)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	for (size_t i = 0; i + 14 < n; i++)
		if (memcmp(buf + i, "kind savepoint", 14) == 0)
			return true;
	return false;
}

/*
 * sl_job_savepoint(): its errors; two concurrent callers on a running job
 * both get a complete savepoint of their own (one at a time); after the
 * run, -ESRCH. savepoint-on-stop: the stop's final checkpoint is one.
 */
static void test_savepoint_api(void)
{
	char out[400], ck[400], sp[400], stop[400], bad[400], path[4096], err[512];
	struct sp_call calls[2];
	pthread_t t, ct[2];
	struct jobbox jb;

	snprintf(out, sizeof(out), "%s/out-sp/", tmpdir);
	snprintf(ck, sizeof(ck), "%s/ck-sp", tmpdir);
	snprintf(sp, sizeof(sp), "%s/sp", tmpdir);
	snprintf(stop, sizeof(stop), "%s/sp-stop", tmpdir);
	fresh_dir(out);
	rm_rf(ck);
	build(&jb, &(struct setup){ .out = out });
	CU_ASSERT(sl_job_savepoint(jb.job, sp, path, sizeof(path), err, sizeof(err)) == -EINVAL);
	CU_ASSERT(strstr(err, "checkpoint-dir") != NULL);
	sl_job_destroy(jb.job);

	build(&jb, &(struct setup){ .out = out,
				    .ck = ck,
				    .rate = 20000,
				    .interval = "50ms",
				    .gate = 2000,
				    .crawl = true });
	CU_ASSERT(sl_job_savepoint(jb.job, sp, NULL, 0, err, sizeof(err)) == -EINVAL);
	CU_ASSERT(sl_job_savepoint(jb.job, NULL, path, sizeof(path), err, sizeof(err)) == -EINVAL);
	CU_ASSERT(strstr(err, "no target directory") != NULL);
	CU_ASSERT(sl_job_savepoint(jb.job, sp, path, sizeof(path), err, sizeof(err)) == -ESRCH);
	CU_ASSERT(sl_job_last_savepoint(jb.job, path, sizeof(path)) == -ENOENT);
	CU_ASSERT(set(jb.job, "savepoint-on-stop", stop) == 0);
	CU_ASSERT(set(jb.job, "savepoint-dir", sp) == 0);
	CU_ASSERT(sl_job_last_savepoint(jb.job, NULL, 0) == -EINVAL);
	pthread_create(&t, NULL, run_thread, &jb);
	wait_progress(ck, 1, out, 1);
	/* A target that cannot be created: this savepoint fails, the job goes on. */
	snprintf(bad, sizeof(bad), "%s/input-is-a-file", tmpdir);
	fclose(fopen(bad, "w"));
	strcat(bad, "/sp");
	CU_ASSERT(sl_job_savepoint(jb.job, bad, path, sizeof(path), err, sizeof(err)) == -EIO);
	CU_ASSERT(strstr(err, "input-is-a-file/sp") != NULL);
	for (int i = 0; i < 2; i++) {
		calls[i] = (struct sp_call){ .job = jb.job, .target = i ? sp : NULL };
		pthread_create(&ct[i], NULL, savepoint_thread, &calls[i]);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(ct[i], NULL);
		if (calls[i].rc < 0)
			fprintf(stderr, "savepoint: %s\n", calls[i].err);
		CU_ASSERT(calls[i].rc == 0);
		CU_ASSERT(strncmp(calls[i].path, sp, strlen(sp)) == 0);
		CU_ASSERT(is_savepoint(calls[i].path));
	}
	CU_ASSERT(strcmp(calls[0].path, calls[1].path) != 0);
	sl_job_stop(jb.job);
	atomic_store(&gate_open, true);
	pthread_join(t, NULL);
	CU_ASSERT(jb.rc == 0);
	CU_ASSERT(sl_job_savepoint(jb.job, sp, path, sizeof(path), err, sizeof(err)) == -ESRCH);
	CU_ASSERT(sl_job_last_savepoint(jb.job, path, sizeof(path)) == 0);
	CU_ASSERT(strncmp(path, stop, strlen(stop)) == 0);
	CU_ASSERT(is_savepoint(path));
	sl_job_destroy(jb.job);
	CU_ASSERT(at_most_once(out, &(int){ 0 }) == 0);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "options: bad values are refused by name", test_bad_options },
		{ "part files without checkpoints: committed at the end", test_no_checkpoints },
		{ "stop takes a final checkpoint; restore finishes exactly once",
		  test_stop_restore },
		{ "kill -9 at random moments, restore latest: exactly once", test_kill9 },
		{ "at-least-once mode, kill -9 at random moments: nothing lost",
		  test_kill9_at_least_once },
		{ "unaligned checkpoints, kill -9 at random moments: exactly once",
		  test_kill9_unaligned },
		{ "unaligned barriers overtake full rings: in-flight data, rescaled from 2 to 3",
		  test_unaligned_overtake },
		{ "corrupt newest checkpoint: refused with a 2PC sink, fallback without",
		  test_corrupt },
		{ "restore from a checkpoint path, without a checkpoint-dir", test_restore_path },
		{ "restore with another max-parallelism is refused", test_maxp_mismatch },
		{ "a source without snapshot() cannot be checkpointed",
		  test_source_without_snapshot },
		{ "checkpoint statistics match the checkpoints on disk", test_stats },
		{ "savepoints: API errors, concurrent callers, savepoint-on-stop",
		  test_savepoint_api },
		CU_TEST_INFO_NULL,
	};
	int rc;

	signal(SIGPIPE, SIG_IGN);
	write_input();
	rc = sl_test_main("checkpoint", tests);
	if (rc == 0)
		rm_rf(tmpdir);
	return rc;
}
