/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hold.c — the test-only input hold of the line source
 * (SLUICE_TEST_HOLD_INPUT=N[:K], core/hold.c), driven through the
 * source's ops. A program of its own: the hold is read from the
 * environment once per process.
 *
 * The input mixes records, bad records (skipped), lines the parse
 * function skips and blank lines, all of which count. For each subtask of
 * 3, the reference is computed here from the bytes: the lines that start
 * in its range [floor(s*size/3), floor((s+1)*size/3)) (conn_lines.c's
 * rule). Each subtask must return exactly the records among the first
 * HOLD lines of its range and then nothing, and never its end, however
 * often polled; a snapshot taken while it holds restores into a subtask
 * that reads the next HOLD lines and holds again; once K checkpoints
 * completed (sli_hold_checkpoint_completed()) it reads to the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sluice/sl_batch.h>
#include <sluice/sl_connectors.h>
#include <sluice/sl_snap.h>

#include "sl_test.h"
#include "sli_core.h"
#include "sli_snap.h"

#define HOLD	 7
#define RELEASE	 2 /* checkpoints */
#define NLINES	 120
#define PAR	 3
#define MAXLINES 256

static char path[256];
static char text[NLINES * 16];
static size_t size;

/* Records "r...", bad records "x...", lines to skip "s...", blank lines. */
static int parse(const char *line, size_t len, struct sl_batch *out, void *elem, int64_t *ts,
		 char *why, size_t whylen, void *arg)
{
	if (line[0] == 'x') {
		snprintf(why, whylen, "a bad record");
		return -EINVAL;
	}
	if (line[0] == 's')
		return 0;
	return sl_lines_parse_line(line, len, out, elem, ts, why, whylen, arg);
}

/* The lines starting in subtask @s's range, in order: their offsets into text. */
static size_t range_lines(unsigned s, size_t *at)
{
	size_t a = s * size / PAR, b = (s + 1) * size / PAR, n = 0;

	for (size_t o = 0; o < size; o = (size_t)(strchr(text + o, '\n') - text) + 1)
		if (o >= a && o < b)
			at[n++] = o;
	return n;
}

/* Of the lines @at[from..to), the records ("r..."), each ending with '\n', concatenated. */
static void records(const size_t *at, size_t from, size_t to, char *out)
{
	*out = '\0';
	for (size_t i = from; i < to; i++)
		if (text[at[i]] == 'r')
			strncat(out, text + at[i],
				(size_t)(strchr(text + at[i], '\n') - text - at[i]) + 1);
}

struct sub {
	struct sl_subtask_info info;
	struct sl_counters counters;
	char err[512];
	void *st;
	struct sl_batch *b;
	char got[sizeof(text)];
};

static void sub_open(struct sub *x, unsigned s, struct sl_lines_conf *conf,
		     const struct sl_snap_writer *from)
{
	memset(x, 0, sizeof(*x));
	x->info = (struct sl_subtask_info){ .op_name = "hold",
					    .index = s,
					    .parallelism = PAR,
					    .max_parallelism = 128,
					    .pu = -1,
					    .batch_size = 4,
					    .max_record_size = 1024,
					    .counters = &x->counters,
					    .errbuf = x->err,
					    .errlen = sizeof(x->err) };
	CU_ASSERT_FATAL(sl_lines_ops.open(conf, &x->info, &x->st) == 0);
	if (from != NULL) {
		struct sl_snap_reader rd;

		CU_ASSERT_FATAL(sli_snap_reader_from_writer(&rd, from, NULL, NULL, x->err,
							    sizeof(x->err)) == 0);
		CU_ASSERT_FATAL(sl_lines_ops.restore(x->st, &rd) == 0);
		sli_snap_reader_free(&rd);
	}
	CU_ASSERT_FATAL(sl_batch_create(NULL, 4, sizeof(struct sl_line), 4096, &x->b) == 0);
}

/* Poll @x @polls times (or to its end), appending its records; return whether it ended. */
static bool sub_poll(struct sub *x, int polls)
{
	for (int i = 0; i < polls; i++) {
		int rc;

		sl_batch_clear(x->b);
		rc = sl_lines_ops.poll(x->st, x->b);
		CU_ASSERT_FATAL(rc >= 0);
		for (uint32_t k = 0; k < x->b->n; k++) {
			const struct sl_line *e = sl_batch_elem(x->b, k);

			strncat(x->got, sl_batch_str(x->b, e->text), e->text.len);
			strcat(x->got, "\n");
		}
		if (rc & SL_SOURCE_END)
			return true;
	}
	return false;
}

static void sub_close(struct sub *x)
{
	sl_batch_destroy(x->b);
	sl_lines_ops.close(x->st);
}

static void test_hold(void)
{
	struct sl_lines_conf conf = { .path = path, .parse = parse, .bad_policy = SL_BAD_SKIP };
	static char want[sizeof(text)];
	size_t at[MAXLINES];
	struct sub *x = calloc(2, sizeof(*x));

	CU_ASSERT_FATAL(x != NULL);
	for (unsigned s = 0; s < PAR; s++) {
		size_t n = range_lines(s, at);
		struct sl_snap_writer w;

		CU_ASSERT_FATAL(n > 3 * HOLD); /* two holds and the rest */
		/* The first HOLD lines, then nothing, however often polled: not even the end. */
		sub_open(&x[0], s, &conf, NULL);
		CU_ASSERT(!sub_poll(&x[0], 1000));
		records(at, 0, HOLD, want);
		CU_ASSERT_STRING_EQUAL(x[0].got, want);
		/* Its position: right after them. A restore reads HOLD more and holds again. */
		sli_snap_writer_init(&w, 128);
		CU_ASSERT_FATAL(sl_lines_ops.snapshot(x[0].st, &w) == 0);
		sub_close(&x[0]);
		sub_open(&x[1], s, &conf, &w);
		CU_ASSERT(!sub_poll(&x[1], 1000));
		records(at, HOLD, 2 * HOLD, want);
		CU_ASSERT_STRING_EQUAL(x[1].got, want);
		sli_snap_writer_free(&w);
		/* Released after RELEASE checkpoints: to the end. */
		if (s == PAR - 1) {
			for (int k = 0; k < RELEASE; k++) {
				CU_ASSERT(!sub_poll(&x[1], 100)); /* not yet */
				sli_hold_checkpoint_completed();
			}
			CU_ASSERT(sub_poll(&x[1], 1000000));
			records(at, HOLD, n, want);
			CU_ASSERT_STRING_EQUAL(x[1].got, want);
		}
		sub_close(&x[1]);
	}
	free(x);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "line source: SLUICE_TEST_HOLD_INPUT holds each range after N lines, snapshots "
		  "exact, releases after K checkpoints",
		  test_hold },
		CU_TEST_INFO_NULL,
	};
	const char *dir = getenv("TMPDIR");
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/sluice-hold-%d.txt", dir ? dir : "/tmp", (int)getpid());
	for (int i = 0; i < NLINES; i++) {
		static const char *const kind[] = { "r", "r", "x", "r", "s", "", "r" };
		const char *k = kind[(i * 5 + i / 7) % 7];

		size += (size_t)sprintf(text + size, *k ? "%s%03d\n" : "\n", k, i);
	}
	f = fopen(path, "w");
	if (f == NULL || fwrite(text, 1, size, f) != size || fclose(f) != 0) {
		perror(path);
		return 1;
	}
	if (setenv("SLUICE_TEST_HOLD_INPUT", "7:2", 1) != 0) /* HOLD:RELEASE */
		return 1;
	rc = sl_test_main("hold", tests);

	unlink(path);
	return rc;
}
