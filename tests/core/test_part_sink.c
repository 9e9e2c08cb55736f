/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_part_sink.c — the exactly-once part-file sink (sl_part_sink_ops),
 * driven directly through its ops (open, write, pre_commit, commit,
 * finish, close, recover) on a real temporary directory; snapshots go
 * from pre_commit() to recover() through core/sli_snap.h's writer and
 * reader, as the runtime hands them.
 *
 * Oracles: the input is a list of generated lines; what must be visible
 * is that list (or the part of it before a barrier) joined with '\n',
 * and the file names follow from the documented naming rule
 * (part-S-E-K, epoch E = records after checkpoint E-1) — never from a
 * run of the sink itself.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sluice/sl_connectors.h>

#include "sl_test.h"
#include "sli_snap.h"

static char root[256];

/* A fresh directory ROOT/@name. */
static const char *mkdir_case(const char *name)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", root, name);
	CU_ASSERT_FATAL(mkdir(path, 0755) == 0);
	return path;
}

static bool has(const char *dir, const char *name)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

static void touch(const char *dir, const char *name)
{
	char p[PATH_MAX];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, "x\n", 2) == 2);
	close(fd);
}

/* Entries of @dir starting with @prefix and ending with @suffix. */
static unsigned count(const char *dir, const char *prefix, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;

	CU_ASSERT_FATAL(d != NULL);
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name), sl = strlen(suffix);

		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && l >= sl &&
		    strcmp(e->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* ------------------------------------------------ expected and visible */

/* A growable text. */
struct text {
	char *p;
	size_t len, cap;
};

static void text_add(struct text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		t->cap = 2 * (t->len + n + 1);
		t->p = realloc(t->p, t->cap);
		CU_ASSERT_FATAL(t->p != NULL);
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

/* lines[from, to) each followed by '\n': what the sink must write for them. */
static void expect_lines(struct text *t, char **lines, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		text_add(t, lines[i], strlen(lines[i]));
		text_add(t, "\n", 1);
	}
}

struct vis {
	unsigned s;
	int64_t e;
	unsigned k;
	char name[256];
};

static int vis_cmp(const void *a, const void *b)
{
	const struct vis *x = a, *y = b;

	if (x->s != y->s)
		return x->s < y->s ? -1 : 1;
	if (x->e != y->e)
		return x->e < y->e ? -1 : 1;
	return x->k < y->k ? -1 : x->k > y->k;
}

/*
 * The visible part files of subtask @s (all with @s < 0) concatenated in
 * (S, E, K) order; *@nfiles receives how many there were. Checks that
 * each ends with a whole line.
 */
static void visible(const char *dir, int s, struct text *out, unsigned *nfiles)
{
	struct vis v[512];
	unsigned n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;

	CU_ASSERT_FATAL(d != NULL);
	while ((e = readdir(d)) != NULL) {
		struct vis x;
		int end = 0;

		if (sscanf(e->d_name, "part-%u-%" SCNd64 "-%u%n", &x.s, &x.e, &x.k, &end) != 3 ||
		    e->d_name[end] != '\0')
			continue;
		if (s >= 0 && x.s != (unsigned)s)
			continue;
		CU_ASSERT_FATAL(n < 512);
		snprintf(x.name, sizeof(x.name), "%s", e->d_name);
		v[n++] = x;
	}
	closedir(d);
	qsort(v, n, sizeof(v[0]), vis_cmp);
	out->len = 0;
	text_add(out, "", 0);
	for (unsigned i = 0; i < n; i++) {
		char p[PATH_MAX], buf[65536];
		size_t before = out->len;
		ssize_t r;
		int fd;

		snprintf(p, sizeof(p), "%s/%s", dir, v[i].name);
		fd = open(p, O_RDONLY);
		CU_ASSERT_FATAL(fd >= 0);
		while ((r = read(fd, buf, sizeof(buf))) > 0)
			text_add(out, buf, (size_t)r);
		close(fd);
		CU_ASSERT(out->len > before);		 /* never empty */
		CU_ASSERT(out->p[out->len - 1] == '\n'); /* whole lines */
	}
	if (nfiles != NULL)
		*nfiles = n;
}

static void expect_visible(const char *dir, int s, const struct text *want)
{
	struct text got = { 0 };

	visible(dir, s, &got, NULL);
	CU_ASSERT(got.len == want->len);
	CU_ASSERT(got.len == want->len && memcmp(got.p, want->p, got.len) == 0);
	free(got.p);
}

/* --------------------------------------------------------------- input */

static uint64_t seed = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return seed;
}

/* @n random lines of printable characters; one in 50 is longer than 64 KiB. */
static char **gen_lines(size_t n)
{
	char **v = calloc(n, sizeof(*v));

	CU_ASSERT_FATAL(v != NULL);
	for (size_t i = 0; i < n; i++) {
		size_t len = rnd() % 50 == 0 ? 65536 + rnd() % 10000 : 1 + rnd() % 40;

		v[i] = malloc(len + 1);
		CU_ASSERT_FATAL(v[i] != NULL);
		for (size_t j = 0; j < len; j++)
			v[i][j] = (char)(' ' + rnd() % 95);
		v[i][len] = '\0';
	}
	return v;
}

static void free_lines(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ------------------------------------------------------------ the sink */

struct sub {
	struct sl_subtask_info info;
	struct sl_counters counters;
	char err[1024];
	void *st;
};

static struct sl_part_sink_conf conf_for(const char *dir)
{
	return (struct sl_part_sink_conf){ .dir = dir, .format = sl_line_format, .fsync = true };
}

static int sub_open(struct sub *u, const struct sl_part_sink_conf *conf, unsigned idx, unsigned p,
		    int64_t restored)
{
	memset(u, 0, sizeof(*u));
	u->info.op_name = "parts";
	u->info.index = idx;
	u->info.parallelism = p;
	u->info.max_parallelism = 128;
	u->info.pu = -1;
	u->info.batch_size = 64;
	u->info.max_record_size = 1 << 20;
	u->info.counters = &u->counters;
	u->info.restored_checkpoint = restored;
	u->info.errbuf = u->err;
	u->info.errlen = sizeof(u->err);
	return sl_part_sink_ops.open((void *)conf, &u->info, &u->st);
}

/* Write lines[from, to) in batches of 1..7 lines. Return the first error. */
static int sub_write(struct sub *u, char **lines, size_t from, size_t to)
{
	while (from < to) {
		uint32_t n = 1 + (uint32_t)(rnd() % 7);
		struct sl_batch *b;
		int rc;

		if (n > to - from)
			n = (uint32_t)(to - from);
		CU_ASSERT_FATAL(sl_batch_create(NULL, n, sizeof(struct sl_line), 1 << 24, &b) == 0);
		for (uint32_t i = 0; i < n; i++) {
			struct sl_line *l = sl_batch_elem(b, i);
			const char *s = lines[from + i];

			CU_ASSERT_FATAL(sl_batch_add_str(b, s, (uint32_t)strlen(s), &l->text) == 0);
			b->ts[i] = (int64_t)(from + i);
		}
		b->n = n;
		rc = sl_part_sink_ops.write(u->st, b);
		sl_batch_destroy(b);
		if (rc < 0)
			return rc;
		from += n;
	}
	return 0;
}

/* pre_commit(@ckpt) into a fresh writer @w (kept: a reader points into it). */
static int sub_pre_commit(struct sub *u, int64_t ckpt, struct sl_snap_writer *w)
{
	sli_snap_writer_init(w, 128);
	return sl_part_sink_ops.pre_commit(u->st, ckpt, w);
}

/* recover(@ckpt) with one reader per writer in @w (NULL entries: no snapshot). */
static int recover(const struct sl_part_sink_conf *conf, int64_t ckpt, struct sl_snap_writer **w,
		   unsigned n, char *err, size_t errlen)
{
	struct sl_snap_reader rd[8], *rp[8];
	int rc;

	CU_ASSERT_FATAL(n <= 8);
	for (unsigned i = 0; i < n; i++) {
		rp[i] = w[i] != NULL ? &rd[i] : NULL;
		if (w[i] != NULL)
			CU_ASSERT_FATAL(sli_snap_reader_from_writer(&rd[i], w[i], NULL, NULL, err,
								    errlen) == 0);
	}
	err[0] = '\0';
	rc = sl_part_sink_ops.recover((void *)conf, ckpt, rp, n, err, errlen);
	for (unsigned i = 0; i < n; i++)
		if (w[i] != NULL)
			sli_snap_reader_free(&rd[i]);
	return rc;
}

static int fresh(const struct sl_part_sink_conf *conf)
{
	char err[512];

	return recover(conf, 0, NULL, 0, err, sizeof(err));
}

/* -------------------------------------------------------------- tests */

/* (1) Nothing visible before commit (also not after finish), all of it after. */
static void test_commit_makes_visible(void)
{
	const char *dir = mkdir_case("visible");
	struct sl_part_sink_conf conf = conf_for(dir);
	char **lines = gen_lines(300);
	struct text want = { 0 };
	struct sl_snap_writer w;
	struct sub u;

	CU_ASSERT_FATAL(fresh(&conf) == 0);
	CU_ASSERT_FATAL(sub_open(&u, &conf, 0, 1, 0) == 0);
	CU_ASSERT(count(dir, "", "") == 2); /* "." and "..": files are created lazily */
	CU_ASSERT_FATAL(sub_write(&u, lines, 0, 300) == 0);
	CU_ASSERT(count(dir, "part-", "") == 0);
	CU_ASSERT(has(dir, ".part-0-1-0.inprogress"));
	CU_ASSERT(sl_part_sink_ops.finish(u.st) == 0);
	CU_ASSERT(count(dir, "part-", "") == 0);
	CU_ASSERT_FATAL(sub_pre_commit(&u, 1, &w) == 0);
	CU_ASSERT(count(dir, "part-", "") == 0);
	CU_ASSERT(count(dir, ".part-", ".inprogress") == 0);
	CU_ASSERT(has(dir, ".part-0-1-0.pending"));
	CU_ASSERT_FATAL(sl_part_sink_ops.commit(u.st, 1) == 0);
	expect_lines(&want, lines, 0, 300);
	expect_visible(dir, 0, &want);
	CU_ASSERT(has(dir, "part-0-1-0"));
	CU_ASSERT(count(dir, ".part-", "") == 0);
	/* Idempotent. */
	CU_ASSERT(sl_part_sink_ops.commit(u.st, 1) == 0);
	expect_visible(dir, 0, &want);
	sl_part_sink_ops.close(u.st);
	sli_snap_writer_free(&w);
	free(want.p);
	free_lines(lines, 300);
}

/* (2) Two checkpoints, one commit of the later: both visible, epochs 1 and 2. */
static void test_two_checkpoints(void)
{
	const char *dir = mkdir_case("two");
	struct sl_part_sink_conf conf = conf_for(dir);
	char **lines = gen_lines(200);
	struct text want = { 0 };
	struct sl_snap_writer w1, w2, w3;
	struct sub u;

	CU_ASSERT_FATAL(fresh(&conf) == 0);
	CU_ASSERT_FATAL(sub_open(&u, &conf, 0, 1, 0) == 0);
	CU_ASSERT_FATAL(sub_write(&u, lines, 0, 120) == 0);
	CU_ASSERT_FATAL(sub_pre_commit(&u, 1, &w1) == 0);
	CU_ASSERT_FATAL(sub_write(&u, lines, 120, 200) == 0);
	/* Records after barrier 1 belong to epoch 2. */
	CU_ASSERT(has(dir, ".part-0-2-0.inprogress"));
	CU_ASSERT_FATAL(sub_pre_commit(&u, 2, &w2) == 0);
	CU_ASSERT(count(dir, "part-", "") == 0);
	CU_ASSERT(count(dir, ".part-", ".pending") == 2);
	CU_ASSERT_FATAL(sl_part_sink_ops.commit(u.st, 2) == 0);
	CU_ASSERT(has(dir, "part-0-1-0") && has(dir, "part-0-2-0"));
	CU_ASSERT(count(dir, ".part-", "") == 0);
	expect_lines(&want, lines, 0, 200);
	expect_visible(dir, 0, &want);
	/* An empty epoch creates no file; the late commit of 1 is a no-op. */
	CU_ASSERT_FATAL(sub_pre_commit(&u, 3, &w3) == 0);
	CU_ASSERT(sl_part_sink_ops.commit(u.st, 1) == 0);
	CU_ASSERT(sl_part_sink_ops.commit(u.st, 3) == 0);
	CU_ASSERT(count(dir, "", "") == 2 + 2);
	expect_visible(dir, 0, &want);
	sl_part_sink_ops.close(u.st);
	sli_snap_writer_free(&w1);
	sli_snap_writer_free(&w2);
	sli_snap_writer_free(&w3);
	free(want.p);
	free_lines(lines, 200);
}

/* (2b) Crash after pre_commit(2), neither committed: restoring from 2 commits epoch 1 too. */
static void test_restore_commits_earlier(void)
{
	const char *dir = mkdir_case("earlier");
	struct sl_part_sink_conf conf = conf_for(dir);
	char **lines = gen_lines(100);
	struct text want = { 0 };
	struct sl_snap_writer w1, w2, *old[1] = { &w2 };
	char err[512];
	struct sub u;

	CU_ASSERT_FATAL(fresh(&conf) == 0);
	CU_ASSERT_FATAL(sub_open(&u, &conf, 0, 1, 0) == 0);
	CU_ASSERT_FATAL(sub_write(&u, lines, 0, 60) == 0);
	CU_ASSERT_FATAL(sub_pre_commit(&u, 1, &w1) == 0);
	CU_ASSERT_FATAL(sub_write(&u, lines, 60, 100) == 0);
	CU_ASSERT_FATAL(sub_pre_commit(&u, 2, &w2) == 0);
	sl_part_sink_ops.close(u.st);
	CU_ASSERT(recover(&conf, 2, old, 1, err, sizeof(err)) == 0);
	CU_ASSERT(has(dir, "part-0-1-0") && has(dir, "part-0-2-0"));
	expect_lines(&want, lines, 0, 100);
	expect_visible(dir, 0, &want);
	CU_ASSERT(count(dir, ".part-", "") == 0);
	sli_snap_writer_free(&w1);
	sli_snap_writer_free(&w2);
	free(want.p);
	free_lines(lines, 100);
}

/* (3) Crash after pre_commit(2) without any commit: restore from 1 keeps exactly epoch 1. */
static void test_crash_before_commit(void)
{
	const char *dir = mkdir_case("crash");
	struct sl_part_sink_conf conf = conf_for(dir);
	char **lines = gen_lines(400);
	struct text want = { 0 };
	struct sl_snap_writer w1, w2, w2b, *old[1] = { &w1 };
	char err[512];
	struct sub u;

	conf.roll_bytes = 700; /* several files per epoch */
	CU_ASSERT_FATAL(fresh(&conf) == 0);
	CU_ASSERT_FATAL(sub_open(&u, &conf, 0, 1, 0) == 0);
	CU_ASSERT_FATAL(sub_write(&u, lines, 0, 150) == 0);
	CU_ASSERT_FATAL(sub_pre_commit(&u, 1, &w1) == 0);
	CU_ASSERT_FATAL(sub_write(&u, lines, 150, 250) == 0);
	CU_ASSERT_FATAL(sub_pre_commit(&u, 2, &w2) == 0);
	CU_ASSERT_FATAL(sub_write(&u, lines, 250, 300) == 0);
	CU_ASSERT(count(dir, ".part-0-3-", ".inprogress") >= 1);
	sl_part_sink_ops.close(u.st); /* the crash: no commit, no finish */
	CU_ASSERT(count(dir, "part-", "") == 0);

	CU_ASSERT(recover(&conf, 1, old, 1, err, sizeof(err)) == 0);
	expect_lines(&want, lines, 0, 150);
	expect_visible(dir, -1, &want);
	CU_ASSERT(count(dir, ".part-", "") == 0);
	CU_ASSERT(count(dir, "part-0-2-", "") == 0);

	/* The restored run starts at epoch 2 again; the old epoch 2 is gone. */
	CU_ASSERT_FATAL(sub_open(&u, &conf, 0, 1, 1) == 0);
	CU_ASSERT_FATAL(sub_write(&u, lines, 300, 400) == 0);
	CU_ASSERT(has(dir, ".part-0-2-0.inprogress"));
	CU_ASSERT_FATAL(sub_pre_commit(&u, 2, &w2b) == 0);
	CU_ASSERT_FATAL(sl_part_sink_ops.commit(u.st, 2) == 0);
	expect_lines(&want, lines, 300, 400);
	expect_visible(dir, -1, &want);
	sl_part_sink_ops.close(u.st);
	sli_snap_writer_free(&w1);
	sli_snap_writer_free(&w2);
	sli_snap_writer_free(&w2b);
	free(want.p);
	free_lines(lines, 400);
}

/* (4) Crash after commit (whole, then halfway): recover is idempotent. */
static void test_crash_after_commit(void)
{
	const char *dir = mkdir_case("committed");
	struct sl_part_sink_conf conf = conf_for(dir);
	char **lines = gen_lines(300);
	struct text want = { 0 };
	struct sl_snap_writer w1, w2, *old[1] = { &w1 }, *old2[1] = { &w2 };
	char err[512], a[PATH_MAX], b[PATH_MAX];
	struct sub u;

	conf.roll_bytes = 500;
	CU_ASSERT_FATAL(fresh(&conf) == 0);
	CU_ASSERT_FATAL(sub_open(&u, &conf, 0, 1, 0) == 0);
	CU_ASSERT_FATAL(sub_write(&u, lines, 0, 100) == 0);
	CU_ASSERT_FATAL(sub_pre_commit(&u, 1, &w1) == 0);
	CU_ASSERT_FATAL(sl_part_sink_ops.commit(u.st, 1) == 0);
	CU_ASSERT_FATAL(sub_write(&u, lines, 100, 200) == 0);
	sl_part_sink_ops.close(u.st);
	expect_lines(&want, lines, 0, 100);
	CU_ASSERT(recover(&conf, 1, old, 1, err, sizeof(err)) == 0);
	expect_visible(dir, 0, &want);
	CU_ASSERT(count(dir, ".part-", "") == 0);
	CU_ASSERT(recover(&conf, 1, old, 1, err, sizeof(err)) == 0);
	expect_visible(dir, 0, &want);

	/* Crash in the middle of commit(2): one of its files already renamed. */
	CU_ASSERT_FATAL(sub_open(&u, &conf, 0, 1, 1) == 0);
	CU_ASSERT_FATAL(sub_write(&u, lines, 200, 300) == 0);
	CU_ASSERT_FATAL(sub_pre_commit(&u, 2, &w2) == 0);
	sl_part_sink_ops.close(u.st);
	CU_ASSERT_FATAL(count(dir, ".part-0-2-", ".pending") >= 2);
	snprintf(a, sizeof(a), "%s/.part-0-2-0.pending", dir);
	snprintf(b, sizeof(b), "%s/part-0-2-0", dir);
	CU_ASSERT_FATAL(rename(a, b) == 0);
	CU_ASSERT(recover(&conf, 2, old2, 1, err, sizeof(err)) == 0);
	expect_lines(&want, lines, 200, 300);
	expect_visible(dir, 0, &want);
	CU_ASSERT(count(dir, ".part-", "") == 0);
	sli_snap_writer_free(&w1);
	sli_snap_writer_free(&w2);
	free(want.p);
	free_lines(lines, 300);
}

/* (5) A listed file gone under both names: -ENOENT naming it. */
static void test_recover_missing(void)
{
	const char *dir = mkdir_case("missing");
	struct sl_part_sink_conf conf = conf_for(dir);
	char **lines = gen_lines(20);
	struct sl_snap_writer w1, *old[1] = { &w1 };
	char err[512], p[PATH_MAX];
	struct sub u;

	CU_ASSERT_FATAL(fresh(&conf) == 0);
	CU_ASSERT_FATAL(sub_open(&u, &conf, 0, 1, 0) == 0);
	CU_ASSERT_FATAL(sub_write(&u, lines, 0, 20) == 0);
	CU_ASSERT_FATAL(sub_pre_commit(&u, 1, &w1) == 0);
	sl_part_sink_ops.close(u.st);
	snprintf(p, sizeof(p), "%s/.part-0-1-0.pending", dir);
	CU_ASSERT_FATAL(unlink(p) == 0);
	CU_ASSERT(recover(&conf, 1, old, 1, err, sizeof(err)) == -ENOENT);
	CU_ASSERT(strstr(err, "part-0-1-0") != NULL);
	CU_ASSERT(strstr(err, dir) != NULL);
	sli_snap_writer_free(&w1);
	free_lines(lines, 20);
}

/* (6) Fresh start: committed output refused (nothing touched); leftovers deleted. */
static void test_fresh_start(void)
{
	const char *d = mkdir_case("fresh");
	char dir[1024], err[512];
	struct sl_part_sink_conf conf;

	snprintf(dir, sizeof(dir), "%s", d);
	conf = conf_for(dir);
	touch(dir, "part-0-1-0");
	touch(dir, ".part-0-2-0.pending");
	touch(dir, ".part-3-7-1.inprogress");
	CU_ASSERT(recover(&conf, 0, NULL, 0, err, sizeof(err)) == -EEXIST);
	CU_ASSERT(strstr(err, "part-0-1-0") != NULL);
	CU_ASSERT(strstr(err, "exactly-once output needs an empty directory or --restore") != NULL);
	CU_ASSERT(has(dir, "part-0-1-0") && has(dir, ".part-0-2-0.pending") &&
		  has(dir, ".part-3-7-1.inprogress"));

	/* Only leftovers (any subtask) and unrelated files: leftovers go. */
	CU_ASSERT_FATAL(unlink(strcat(strcat(strcpy(err, dir), "/"), "part-0-1-0")) == 0);
	touch(dir, "README");
	touch(dir, ".hidden");
	CU_ASSERT(recover(&conf, 0, NULL, 0, err, sizeof(err)) == 0);
	CU_ASSERT(count(dir, ".part-", "") == 0);
	CU_ASSERT(has(dir, "README") && has(dir, ".hidden"));
}

/* Wait until CLOCK_MONOTONIC moved by at least @ms, without sleeping. */
static void spin_ms(int64_t ms)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000000ll + (b.tv_nsec - a.tv_nsec) < ms * 1000000);
}

/* (7) Rolling by size and by age: several whole-line files whose concatenation is the input. */
static void test_rolling(void)
{
	char **lines = gen_lines(600);
	struct text want = { 0 }, got = { 0 };
	struct sl_snap_writer w;
	unsigned nfiles;
	struct sub u;

	expect_lines(&want, lines, 0, 600);
	{
		const char *dir = mkdir_case("roll-size");
		struct sl_part_sink_conf conf = conf_for(dir);
		char p[PATH_MAX];
		struct stat st;

		conf.roll_bytes = 1000;
		conf.fsync = false;
		CU_ASSERT_FATAL(fresh(&conf) == 0);
		CU_ASSERT_FATAL(sub_open(&u, &conf, 0, 1, 0) == 0);
		CU_ASSERT_FATAL(sub_write(&u, lines, 0, 600) == 0);
		CU_ASSERT_FATAL(sub_pre_commit(&u, 1, &w) == 0);
		CU_ASSERT_FATAL(sl_part_sink_ops.commit(u.st, 1) == 0);
		visible(dir, 0, &got, &nfiles);
		CU_ASSERT(nfiles > 1);
		CU_ASSERT(got.len == want.len && memcmp(got.p, want.p, got.len) == 0);
		/* Every file but the last rolled because it reached roll_bytes. */
		for (unsigned k = 0; k + 1 < nfiles; k++) {
			snprintf(p, sizeof(p), "%s/part-0-1-%u", dir, k);
			CU_ASSERT(stat(p, &st) == 0 && st.st_size >= 1000);
		}
		sl_part_sink_ops.close(u.st);
		sli_snap_writer_free(&w);
	}
	{
		const char *dir = mkdir_case("roll-time");
		struct sl_part_sink_conf conf = conf_for(dir);
		size_t from = 0;

		conf.roll_interval_ms = 1;
		CU_ASSERT_FATAL(fresh(&conf) == 0);
		CU_ASSERT_FATAL(sub_open(&u, &conf, 0, 1, 0) == 0);
		for (int i = 0; i < 5; i++) {
			CU_ASSERT_FATAL(sub_write(&u, lines, from, from + 120) == 0);
			from += 120;
			spin_ms(2);
		}
		CU_ASSERT_FATAL(sub_pre_commit(&u, 1, &w) == 0);
		CU_ASSERT_FATAL(sl_part_sink_ops.commit(u.st, 1) == 0);
		visible(dir, 0, &got, &nfiles);
		CU_ASSERT(nfiles > 1);
		CU_ASSERT(got.len == want.len && memcmp(got.p, want.p, got.len) == 0);
		sl_part_sink_ops.close(u.st);
		sli_snap_writer_free(&w);
	}
	free(got.p);
	free(want.p);
	free_lines(lines, 600);
}

/* (8) Rescale 2 -> 1: one recover commits both old subtasks' checkpoint-1 files. */
static void test_rescale(void)
{
	const char *dir = mkdir_case("rescale");
	struct sl_part_sink_conf conf = conf_for(dir);
	char **lines = gen_lines(400);
	struct text want = { 0 };
	struct sl_snap_writer w0, w1, w0b, wn, *old[2] = { &w0, &w1 };
	char err[512];
	struct sub u0, u1, n;

	CU_ASSERT_FATAL(fresh(&conf) == 0);
	CU_ASSERT_FATAL(sub_open(&u0, &conf, 0, 2, 0) == 0);
	CU_ASSERT_FATAL(sub_open(&u1, &conf, 1, 2, 0) == 0);
	CU_ASSERT_FATAL(sub_write(&u0, lines, 0, 100) == 0);
	CU_ASSERT_FATAL(sub_write(&u1, lines, 100, 180) == 0);
	CU_ASSERT_FATAL(sub_pre_commit(&u0, 1, &w0) == 0);
	CU_ASSERT_FATAL(sub_pre_commit(&u1, 1, &w1) == 0);
	CU_ASSERT_FATAL(sub_write(&u0, lines, 180, 250) == 0);
	CU_ASSERT_FATAL(sub_write(&u1, lines, 250, 300) == 0);
	CU_ASSERT_FATAL(sub_pre_commit(&u0, 2, &w0b) == 0); /* subtask 1 never got barrier 2 */
	sl_part_sink_ops.close(u0.st);
	sl_part_sink_ops.close(u1.st);

	CU_ASSERT(recover(&conf, 1, old, 2, err, sizeof(err)) == 0);
	expect_lines(&want, lines, 0, 100);
	expect_visible(dir, 0, &want);
	want.len = 0;
	expect_lines(&want, lines, 100, 180);
	expect_visible(dir, 1, &want);
	CU_ASSERT(count(dir, ".part-", "") == 0);
	CU_ASSERT(count(dir, "part-", "") == 2);

	CU_ASSERT_FATAL(sub_open(&n, &conf, 0, 1, 1) == 0);
	CU_ASSERT_FATAL(sub_write(&n, lines, 300, 400) == 0);
	CU_ASSERT_FATAL(sub_pre_commit(&n, 2, &wn) == 0);
	CU_ASSERT_FATAL(sl_part_sink_ops.commit(n.st, 2) == 0);
	want.len = 0;
	expect_lines(&want, lines, 0, 100);
	expect_lines(&want, lines, 300, 400);
	expect_visible(dir, 0, &want);
	sl_part_sink_ops.close(n.st);
	sli_snap_writer_free(&w0);
	sli_snap_writer_free(&w1);
	sli_snap_writer_free(&w0b);
	sli_snap_writer_free(&wn);
	free(want.p);
	free_lines(lines, 400);
}

/* (9a) open and recover argument errors. */
static void test_errors_open(void)
{
	const char *d = mkdir_case("err-open");
	char dir[1024], file[PATH_MAX], err[512];
	struct sl_part_sink_conf conf, bad = { 0 };
	struct sub u;

	snprintf(dir, sizeof(dir), "%s", d);
	conf = conf_for(dir);
	CU_ASSERT(sub_open(&u, NULL, 0, 1, 0) == -EINVAL);
	CU_ASSERT(sub_open(&u, &bad, 0, 1, 0) == -EINVAL);
	CU_ASSERT(sl_part_sink_ops.recover(NULL, 0, NULL, 0, err, sizeof(err)) == -EINVAL);
	bad = conf;
	bad.roll_interval_ms = -1;
	CU_ASSERT(sub_open(&u, &bad, 0, 1, 0) == -EINVAL);
	snprintf(file, sizeof(file), "%s/nope", dir);
	bad = conf_for(file);
	CU_ASSERT(sub_open(&u, &bad, 0, 1, 0) == -ENOENT);
	CU_ASSERT(strstr(u.err, file) != NULL);
	CU_ASSERT(recover(&bad, 0, NULL, 0, err, sizeof(err)) == -ENOENT);
	touch(dir, "plain");
	snprintf(file, sizeof(file), "%s/plain", dir);
	bad = conf_for(file);
	CU_ASSERT(sub_open(&u, &bad, 0, 1, 0) == -ENOTDIR);
	CU_ASSERT(strstr(u.err, file) != NULL);
}

/* (9b) create, write, rename and commit errors name the file. */
static void test_errors_io(void)
{
	const char *d = mkdir_case("err-io");
	char dir[1024], p[PATH_MAX], q[PATH_MAX];
	char **lines = gen_lines(50);
	struct sl_part_sink_conf conf;
	struct sl_snap_writer w;
	struct rlimit old, lim;
	void (*prev)(int);
	struct sub u;
	int rc;

	snprintf(dir, sizeof(dir), "%s", d);
	conf = conf_for(dir);

	/* The in-progress name is taken (by a directory): create fails. */
	snprintf(p, sizeof(p), "%s/.part-0-1-0.inprogress", dir);
	CU_ASSERT_FATAL(mkdir(p, 0755) == 0);
	CU_ASSERT_FATAL(sub_open(&u, &conf, 0, 1, 0) == 0);
	CU_ASSERT(sub_write(&u, lines, 0, 5) == -EEXIST);
	CU_ASSERT(strstr(u.err, "cannot create '.part-0-1-0.inprogress'") != NULL);
	CU_ASSERT(strstr(u.err, dir) != NULL);
	sl_part_sink_ops.close(u.st);
	CU_ASSERT_FATAL(rmdir(p) == 0);

	/* A real write error, also as root: the file-size limit (EFBIG). */
	CU_ASSERT_FATAL(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = 64;
	prev = signal(SIGXFSZ, SIG_IGN);
	CU_ASSERT_FATAL(sub_open(&u, &conf, 0, 1, 0) == 0);
	CU_ASSERT_FATAL(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	rc = sub_write(&u, lines, 0, 50);
	CU_ASSERT_FATAL(setrlimit(RLIMIT_FSIZE, &old) == 0);
	signal(SIGXFSZ, prev);
	CU_ASSERT(rc == -EFBIG);
	CU_ASSERT(strstr(u.err, "cannot write '.part-0-1-0.inprogress'") != NULL);
	sl_part_sink_ops.close(u.st);
	CU_ASSERT_FATAL(unlink(p) == 0);

	/* The in-progress file vanished: pre_commit's rename fails. */
	CU_ASSERT_FATAL(sub_open(&u, &conf, 0, 1, 0) == 0);
	CU_ASSERT_FATAL(sub_write(&u, lines, 0, 10) == 0);
	CU_ASSERT_FATAL(unlink(p) == 0);
	CU_ASSERT(sub_pre_commit(&u, 1, &w) == -ENOENT);
	CU_ASSERT(strstr(u.err, "cannot rename '.part-0-1-0.inprogress'") != NULL);
	sl_part_sink_ops.close(u.st);
	sli_snap_writer_free(&w);

	/* A checkpoint older than the epoch. */
	CU_ASSERT_FATAL(sub_open(&u, &conf, 0, 1, 4) == 0);
	CU_ASSERT(sub_pre_commit(&u, 3, &w) == -EINVAL);
	sli_snap_writer_free(&w);
	/* commit: the pending file vanished; then the visible name is taken. */
	CU_ASSERT_FATAL(sub_write(&u, lines, 0, 10) == 0);
	CU_ASSERT_FATAL(sub_pre_commit(&u, 5, &w) == 0);
	snprintf(p, sizeof(p), "%s/.part-0-5-0.pending", dir);
	snprintf(q, sizeof(q), "%s/moved", dir);
	CU_ASSERT_FATAL(rename(p, q) == 0);
	CU_ASSERT(sl_part_sink_ops.commit(u.st, 5) == -ENOENT);
	CU_ASSERT(strstr(u.err, "part-0-5-0") != NULL);
	CU_ASSERT_FATAL(rename(q, p) == 0);
	touch(dir, "part-0-5-0");
	CU_ASSERT(sl_part_sink_ops.commit(u.st, 5) == -EEXIST);
	CU_ASSERT(strstr(u.err, "part-0-5-0") != NULL);
	CU_ASSERT(has(dir, ".part-0-5-0.pending")); /* nothing overwritten */
	sl_part_sink_ops.close(u.st);
	sli_snap_writer_free(&w);
	free_lines(lines, 50);
}

/* (9c) A snapshot listing something that is not a part file name. */
static void test_errors_snapshot(void)
{
	const char *d = mkdir_case("err-snap");
	char dir[1024], err[512];
	struct sl_part_sink_conf conf;
	struct sl_snap_writer w, *old[1] = { &w };

	snprintf(dir, sizeof(dir), "%s", d);
	conf = conf_for(dir);
	sli_snap_writer_init(&w, 128);
	CU_ASSERT_FATAL(sl_snap_section(&w, SL_SNAP_OP) == 0);
	CU_ASSERT_FATAL(sl_snap_put_u32(&w, 1) == 0);
	CU_ASSERT_FATAL(sl_snap_put_u32(&w, 1) == 0);
	CU_ASSERT_FATAL(sl_snap_put_bytes(&w, "../part-0-1-0", 13) == 0);
	CU_ASSERT(recover(&conf, 1, old, 1, err, sizeof(err)) == -EBADMSG);
	CU_ASSERT(strstr(err, "not a part file name") != NULL);
	sli_snap_writer_reset(&w);
	CU_ASSERT_FATAL(sl_snap_section(&w, SL_SNAP_OP) == 0);
	CU_ASSERT_FATAL(sl_snap_put_u32(&w, 1) == 0);
	CU_ASSERT_FATAL(sl_snap_put_u32(&w, 2) == 0); /* two announced, none there */
	CU_ASSERT(recover(&conf, 1, old, 1, err, sizeof(err)) == -EBADMSG);
	sli_snap_writer_free(&w);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "visible only after commit", test_commit_makes_visible },
		{ "two checkpoints, one commit", test_two_checkpoints },
		{ "restore from 2 commits uncommitted 1 too", test_restore_commits_earlier },
		{ "crash before commit: restore keeps epoch 1", test_crash_before_commit },
		{ "crash after commit: recover idempotent", test_crash_after_commit },
		{ "recover: listed file missing", test_recover_missing },
		{ "fresh start: refused, leftovers deleted", test_fresh_start },
		{ "rolling by size and age", test_rolling },
		{ "rescale 2 -> 1", test_rescale },
		{ "errors: open and arguments", test_errors_open },
		{ "errors: create, write, rename, commit", test_errors_io },
		{ "errors: bad snapshot", test_errors_snapshot },
		CU_TEST_INFO_NULL,
	};
	char cmd[PATH_MAX + 16];
	int rc;

	snprintf(root, sizeof(root), "/tmp/sl-part-sink-XXXXXX");
	if (mkdtemp(root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	rc = sl_test_main("part_sink", tests);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	return rc;
}
