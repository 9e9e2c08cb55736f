/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_state_spill_job.c — keyed state past the job's state-memory
 * budget, through real jobs: a generator -> key_by -> a keyed process
 * function keeping a running count (value state) and a sum (reducing
 * state) per key -> a sink.
 *
 * Every key comes back ROUNDS times, each round visiting all keys in a
 * scrambled order, so that by the time a key returns its entries were
 * evicted to disk and must be read back. On the last round the function
 * emits {key, count, sum}. Expected: count == ROUNDS and the sum of the
 * key's values, computed here from the generator's formula; the same job
 * without a budget must give the same output. The spill counters of the
 * state instances (sli_state_api_stats) show entries really went to disk,
 * through the engine asked for (state-io posix, io_uring when the kernel
 * has it). Afterwards the spill directories are gone.
 *
 * usage: test_state_spill_job [KEYS]   (default 100000; the release suite
 * runs 1048576)
 *
 * Threads: the keyed functions and sinks run on workers; what they record
 * is under a mutex, read after sl_job_run() returned.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sluice/sluice.h>

#include "kv_elems.h"
#include "sl_test.h"
#include "sli_core.h"
#include "sli_io.h"
#include "sli_state.h"
#include "sli_state_api.h"

enum { ROUNDS = 3, PAR = 2, MAXSUB = 8 };

static uint64_t nkeys = 100000;
static char errbuf[512];
static char tmpdir[256];

struct rec {
	uint64_t key; /* first: key_first8() */
	int64_t val;
	uint64_t round;
};
static const struct sl_type rec_type = SL_TYPE(struct rec);

struct out {
	uint64_t key;
	uint64_t count;
	int64_t sum;
};
static const struct sl_type out_type = SL_TYPE(struct out);

/* A bijection of 0..nkeys-1 (an odd multiplier modulo a power of two, then cycle-walk). */
static uint64_t scramble(uint64_t i, uint64_t round)
{
	uint64_t m = 1;

	while (m < nkeys)
		m <<= 1;
	do
		i = (i * 0x9e3779b97f4a7c15ull + round * 2 + 1) & (m - 1);
	while (i >= nkeys);
	return i;
}

/* The value of record @i: independent of the engine, cheap to recompute. */
static int64_t value_of(uint64_t i)
{
	return (int64_t)(sli_fmix64(i + 12345) % 1000003) - 500000;
}

static void fill(uint64_t index, uint64_t seed, void *elem, int64_t *ts, void *arg)
{
	struct rec *r = elem;

	(void)seed;
	(void)arg;
	r->round = index / nkeys;
	r->key = scramble(index % nkeys, r->round);
	r->val = value_of(index);
	*ts = (int64_t)index;
}

/* What the runs saw, per subtask: the largest spill counters, the engine. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct sli_state_api_stats seen[MAXSUB];
static char seen_engine[MAXSUB][16];
static char seen_dir[MAXSUB][512];

static void note_stats(struct sl_ctx *c)
{
	struct sli_state_api_stats st;
	unsigned i = sl_ctx_info(c)->index;

	if (i >= MAXSUB || sli_state_api_stats(c, &st) < 0)
		return;
	pthread_mutex_lock(&mu);
	if (st.evictions >= seen[i].evictions)
		seen[i] = st;
	snprintf(seen_engine[i], sizeof(seen_engine[i]), "%s", st.engine ? st.engine : "");
	snprintf(seen_dir[i], sizeof(seen_dir[i]), "%s", st.spill_dir ? st.spill_dir : "");
	pthread_mutex_unlock(&mu);
}

static int count_sum(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
		     struct sl_collector *out, void *arg)
{
	const struct rec *r = in;
	const void *v;
	uint32_t len;
	uint64_t n = 0;
	int64_t sum;
	int rc;

	(void)src;
	(void)arg;
	rc = sl_value_get(c, 0, &v, &len);
	if (rc < 0)
		return rc;
	if (rc == 1 && len == sizeof(n))
		memcpy(&n, v, sizeof(n));
	n++;
	if ((rc = sl_value_put(c, 0, &n, sizeof(n))) < 0 ||
	    (rc = sl_reducing_add(c, 1, &r->val)) < 0)
		return rc;
	if (r->round + 1 < ROUNDS)
		return 0;
	if ((rc = sl_reducing_get(c, 1, &sum)) != 1)
		return rc < 0 ? rc : -EIO;
	if (r->key % 1024 == 0)
		note_stats(c);
	return sl_emit(out, &(struct out){ r->key, n, sum }, ts, NULL);
}

/* The sink: out[key] for every key, and how many outputs came (duplicates included). */
struct result {
	struct out *by_key;
	uint64_t n, bad;
};

static int res_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	(void)info;
	*state = arg;
	return 0;
}

static int res_write(void *state, const struct sl_batch *b)
{
	struct result *r = state;

	pthread_mutex_lock(&mu);
	for (uint32_t i = 0; i < b->n; i++) {
		const struct out *o = sl_batch_elem(b, i);

		r->n++;
		if (o->key >= nkeys || r->by_key[o->key].count != 0)
			r->bad++;
		else
			r->by_key[o->key] = *o;
	}
	pthread_mutex_unlock(&mu);
	return 0;
}

static int res_finish(void *state)
{
	(void)state;
	return 0;
}

static void res_close(void *state)
{
	(void)state;
}

static const struct sl_sink_ops res_ops = {
	.open = res_open, .write = res_write, .finish = res_finish, .close = res_close
};

/*
 * Run the job with the options @kv (NULL-terminated key, value pairs);
 * the output goes to @r. Return sl_job_run()'s result (errbuf says why).
 */
static int run(const char *const *kv, struct result *r)
{
	static const struct sl_keyed_process kp = { .element = count_sum };
	struct sl_gen_conf gen = { .count = nkeys * ROUNDS, .type = &rec_type, .fill = fill };
	struct sl_state_desc count = { .name = "count", .kind = SL_STATE_VALUE };
	struct sl_state_desc sum = { .name = "sum",
				     .kind = SL_STATE_REDUCING,
				     .reduce = sum_i64,
				     .value_size = sizeof(int64_t) };
	struct sl_job *job;
	struct sl_stream *s;
	int rc;

	memset(seen, 0, sizeof(seen));
	memset(seen_engine, 0, sizeof(seen_engine));
	memset(seen_dir, 0, sizeof(seen_dir));
	r->by_key = calloc(nkeys, sizeof(*r->by_key));
	r->n = r->bad = 0;
	CU_ASSERT_FATAL(r->by_key != NULL);
	CU_ASSERT_FATAL(sl_job_create("spilljob", &job) == 0);
	CU_ASSERT_FATAL(sl_job_set(job, "parallelism", "2", errbuf, sizeof(errbuf)) == 0);
	for (; kv != NULL && kv[0] != NULL; kv += 2)
		CU_ASSERT_FATAL(sl_job_set(job, kv[0], kv[1], errbuf, sizeof(errbuf)) == 0);
	/* One generator subtask: records reach the keyed subtasks in index order. */
	s = sl_set_parallelism(sl_source(job, "gen", &sl_gen_ops, &gen, &rec_type), 1);
	s = sl_keyed_process(sl_key_by(s, key_first8), "kp", &kp, &out_type);
	CU_ASSERT_EQUAL(sl_state_declare(s, &count), 0);
	CU_ASSERT_EQUAL(sl_state_declare(s, &sum), 1);
	sl_sink(s, "out", &res_ops, r);
	errbuf[0] = '\0';
	rc = sl_job_run(job, NULL, errbuf, sizeof(errbuf));
	sl_job_destroy(job);
	return rc;
}

static struct out *reference(void)
{
	struct out *ref = calloc(nkeys, sizeof(*ref));

	CU_ASSERT_FATAL(ref != NULL);
	for (uint64_t i = 0; i < nkeys * ROUNDS; i++) {
		uint64_t k = scramble(i % nkeys, i / nkeys);

		ref[k].key = k;
		ref[k].count++;
		ref[k].sum += value_of(i);
	}
	return ref;
}

static void expect(const struct result *r, const struct out *want, const char *what)
{
	uint64_t bad = 0;

	CU_ASSERT_EQUAL(r->n, nkeys);
	CU_ASSERT_EQUAL(r->bad, 0);
	for (uint64_t k = 0; k < nkeys; k++)
		if (memcmp(&r->by_key[k], &want[k], sizeof(want[k])) != 0 && bad++ == 0)
			fprintf(stderr,
				"%s: key %" PRIu64 ": got {%" PRIu64 ", %" PRIu64 ", %" PRId64
				"}, want {%" PRIu64 ", %" PRIu64 ", %" PRId64 "}\n",
				what, k, r->by_key[k].key, r->by_key[k].count, r->by_key[k].sum,
				want[k].key, want[k].count, want[k].sum);
	if (bad)
		fprintf(stderr, "%s: %" PRIu64 " keys differ\n", what, bad);
	CU_ASSERT_EQUAL(bad, 0);
}

/* Entries in directory @path (excluding . and ..), or -1 when it does not exist. */
static int dir_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

static bool uring_ok(void)
{
	struct sli_io *io;

	if (sli_io_create(NULL, SLI_IO_URING, &io) < 0)
		return false;
	sli_io_destroy(io);
	return true;
}

/* ------------------------------------------------------------- tests */

static void test_spill_matches_memory(void)
{
	static const char *const engines[] = { "posix", "io_uring" };
	struct out *ref = reference();
	struct result mem, sp;
	char dir[512], budget[32];
	/* Entries take ~80 bytes each: a budget of 1/16 of that keeps most on disk. */
	uint64_t b = nkeys * 2 * 80 / PAR / 16;

	snprintf(budget, sizeof(budget), "%" PRIu64, b < (64u << 10) ? (64u << 10) : b);
	CU_ASSERT_EQUAL_FATAL(run(NULL, &mem), 0);
	expect(&mem, ref, "in memory");
	for (unsigned p = 0; p < PAR; p++)
		CU_ASSERT_EQUAL(seen[p].evictions, 0);
	for (int e = 0; e < 2; e++) {
		const char *kv[] = { "state-memory", budget,	 "state-dir", dir,
				     "state-io",     engines[e], NULL };
		uint64_t evicted = 0, reloaded = 0;

		if (e == 1 && !uring_ok()) {
			printf("  (io_uring unavailable here: skipped)\n");
			continue;
		}
		snprintf(dir, sizeof(dir), "%s/dir-%s", tmpdir, engines[e]);
		CU_ASSERT_EQUAL_FATAL(run(kv, &sp), 0);
		if (errbuf[0])
			fprintf(stderr, "%s\n", errbuf);
		expect(&sp, ref, engines[e]);
		expect(&sp, mem.by_key, "spilled vs in memory");
		for (unsigned p = 0; p < PAR; p++) {
			char want[600];

			CU_ASSERT_STRING_EQUAL(seen_engine[p], engines[e]);
			snprintf(want, sizeof(want), "%s/kp-%u", dir, p);
			CU_ASSERT_STRING_EQUAL(seen_dir[p], want);
			CU_ASSERT(seen[p].evictions > 0 && seen[p].spilled > 0);
			printf(
			    "  %s subtask %u: budget %s, resident %zu, %zu of %zu entries on disk, "
			    "%" PRIu64 " evictions, %" PRIu64 " reloads, %" PRIu64 " writes\n",
			    engines[e], p, budget, seen[p].resident, seen[p].spilled,
			    seen[p].entries, seen[p].evictions, seen[p].reloads,
			    seen[p].spill_writes);
			evicted += seen[p].evictions;
			reloaded += seen[p].reloads;
		}
		/* Most keys were on disk when they came back. */
		CU_ASSERT(evicted > nkeys && reloaded > nkeys / 2);
		/* The subtasks' directories went with the run; the one given stays, empty. */
		CU_ASSERT_EQUAL(dir_entries(dir), 0);
		rmdir(dir);
		free(sp.by_key);
	}
	free(mem.by_key);
	free(ref);
}

/* The default directory: $TMPDIR/sluice-state-PID-JOB, created and removed by the run. */
static void test_default_dir(void)
{
	const char *kv[] = { "state-memory", "64K", "state-io", "posix", NULL };
	char root[512], got[600];
	struct result r;
	struct sl_job *job;
	struct out *ref;
	uint64_t saved = nkeys;

	nkeys = 20000;
	ref = reference();
	setenv("TMPDIR", tmpdir, 1);
	snprintf(root, sizeof(root), "%s/sluice-state-%ld-spilljob", tmpdir, (long)getpid());
	CU_ASSERT_FATAL(sl_job_create("spilljob", &job) == 0);
	CU_ASSERT_EQUAL(sl_job_get(job, "state-dir", got, sizeof(got)), 0);
	CU_ASSERT_STRING_EQUAL(got, root);
	sl_job_destroy(job);
	CU_ASSERT_EQUAL_FATAL(run(kv, &r), 0);
	expect(&r, ref, "default directory");
	CU_ASSERT(seen[0].evictions > 0);
	snprintf(got, sizeof(got), "%s/kp-0", root);
	CU_ASSERT_STRING_EQUAL(seen_dir[0], got);
	CU_ASSERT_EQUAL(dir_entries(root), -1); /* removed */
	unsetenv("TMPDIR");
	free(r.by_key);
	free(ref);
	nkeys = saved;
}

static void test_options(void)
{
	static const struct {
		const char *in;
		const char *out;
	} sizes[] = {
		{ "0", "0" },	       { "65536", "65536" },	 { "64K", "65536" },
		{ "64k", "65536" },    { "64KiB", "65536" },	 { "64kb", "65536" },
		{ "3M", "3145728" },   { "2GiB", "2147483648" }, { "1T", "1099511627776" },
		{ "70000B", "70000" },
	};
	static const char *const bad_sizes[] = { "12Q",
						 "",
						 "-1",
						 "1.5G",
						 "64",
						 "65535",
						 "K",
						 "M1",
						 "1 M",
						 "1MiBs",
						 "99999999999999999999",
						 "17179869184G" };
	struct sl_job *job;
	char buf[512], path[512];

	CU_ASSERT_FATAL(sl_job_create("opts", &job) == 0);
	CU_ASSERT_EQUAL(sl_job_get(job, "state-memory", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "0");
	CU_ASSERT_EQUAL(sl_job_get(job, "state-io", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "auto");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		CU_ASSERT_EQUAL(
		    sl_job_set(job, "state-memory", sizes[i].in, errbuf, sizeof(errbuf)), 0);
		CU_ASSERT_EQUAL(sl_job_get(job, "state-memory", buf, sizeof(buf)), 0);
		CU_ASSERT_STRING_EQUAL(buf, sizes[i].out);
	}
	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		errbuf[0] = '\0';
		CU_ASSERT_EQUAL(
		    sl_job_set(job, "state-memory", bad_sizes[i], errbuf, sizeof(errbuf)), -EINVAL);
		CU_ASSERT(strstr(errbuf, "'state-memory'") != NULL);
	}
	CU_ASSERT_EQUAL(sl_job_get(job, "state-memory", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "70000"); /* unchanged by the bad ones */
	for (int i = 0; i < 3; i++) {
		static const char *const io[] = { "posix", "io_uring", "auto" };

		CU_ASSERT_EQUAL(sl_job_set(job, "state-io", io[i], errbuf, sizeof(errbuf)), 0);
		CU_ASSERT_EQUAL(sl_job_get(job, "state-io", buf, sizeof(buf)), 0);
		CU_ASSERT_STRING_EQUAL(buf, io[i]);
	}
	CU_ASSERT_EQUAL(sl_job_set(job, "state-io", "uring", errbuf, sizeof(errbuf)), -EINVAL);
	CU_ASSERT(strstr(errbuf, "'state-io'") != NULL);
	/* Directories: a new one under a writable parent is fine; a file is not. */
	snprintf(path, sizeof(path), "%s/new/deeper", tmpdir);
	CU_ASSERT_EQUAL(sl_job_set(job, "state-dir", path, errbuf, sizeof(errbuf)), 0);
	CU_ASSERT_EQUAL(sl_job_get(job, "state-dir", buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, path);
	snprintf(path, sizeof(path), "%s/afile", tmpdir);
	fclose(fopen(path, "w"));
	CU_ASSERT_EQUAL(sl_job_set(job, "state-dir", path, errbuf, sizeof(errbuf)), -EINVAL);
	CU_ASSERT(strstr(errbuf, "'state-dir'") && strstr(errbuf, "not a directory"));
	strcat(path, "/sub");
	CU_ASSERT_EQUAL(sl_job_set(job, "state-dir", path, errbuf, sizeof(errbuf)), -EINVAL);
	CU_ASSERT(strstr(errbuf, path) && strstr(errbuf, "Not a directory"));
	CU_ASSERT_EQUAL(sl_job_set(job, "state-dir", "", errbuf, sizeof(errbuf)), -EINVAL);
	sl_job_destroy(job);
}

/* A subtask directory that cannot be made fails the run, with its path, and no crash. */
static void test_dir_error_at_open(void)
{
	char path[512], want[600];
	const char *kv[] = { "state-memory", "1M", "state-dir", path, NULL };
	struct result r;
	uint64_t saved = nkeys;

	nkeys = 1000;
	snprintf(path, sizeof(path), "%s/taken", tmpdir);
	CU_ASSERT_EQUAL(mkdir(path, 0700), 0);
	snprintf(want, sizeof(want), "%s/kp-0", path);
	fclose(fopen(want, "w")); /* a file where subtask 0's directory goes */
	CU_ASSERT(run(kv, &r) < 0);
	CU_ASSERT(strstr(errbuf, want) != NULL && strstr(errbuf, "Not a directory") != NULL);
	printf("  (%s)\n", errbuf);
	unlink(want);
	CU_ASSERT_EQUAL(dir_entries(path), 0); /* subtask 1's directory is gone too */
	rmdir(path);
	free(r.by_key);
	nkeys = saved;
}

int main(int argc, char **argv)
{
	CU_TestInfo tests[] = {
		{ "options", test_options },
		{ "spill_matches_memory_and_reference", test_spill_matches_memory },
		{ "default_dir", test_default_dir },
		{ "dir_error_at_open", test_dir_error_at_open },
		CU_TEST_INFO_NULL,
	};
	const char *t = getenv("TMPDIR");
	int rc;

	if (argc > 1)
		nkeys = strtoull(argv[1], NULL, 10);
	if (nkeys < 1000) {
		fprintf(stderr, "usage: %s [KEYS >= 1000]\n", argv[0]);
		return 2;
	}
	snprintf(tmpdir, sizeof(tmpdir), "%s/sluice-spilljob-XXXXXX",
		 t && t[0] == '/' ? t : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	rc = sl_test_main("state-spill-job", tests);
	{
		char p[600];

		snprintf(p, sizeof(p), "%s/afile", tmpdir);
		unlink(p);
		snprintf(p, sizeof(p), "%s/new", tmpdir);
		rmdir(p);
		rmdir(tmpdir);
	}
	return rc;
}
