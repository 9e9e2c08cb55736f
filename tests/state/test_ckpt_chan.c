/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ckpt_chan.c — channel state of unaligned checkpoints (core/ckpt_chan.c):
 * logs recorded by several old subtasks, replayed at other parallelisms.
 *
 * The reference is computed here, not by the code under test: an element's
 * key group is the hash of its key modulo max-parallelism, and its owner at
 * parallelism q is kg * q / maxp (Flink's rule, written out); an element
 * without a key goes to old index mod q. Every element carries a sequence
 * number, so the test checks that each reaches exactly one new subtask, the
 * right one, in the order of its log, and that a rescaled replay drops
 * watermarks, idleness and activity while a replay at the same channels
 * reproduces the log byte for byte. Bad logs: another element size, a log
 * cut short, an unknown event, a corrupt header; each a -EBADMSG whose
 * message names the file.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sl_test.h"
#include "sli_ckpt_chan.h"

struct rec {
	int64_t key, seq;
};

static const struct sl_type rec_type = SL_TYPE(struct rec);
static const struct sl_type other_type = { .name = "other", .size = 24 };

#define BATCH  8 /* the pool's batches: small, so logs' batches are repacked */
#define OLD_N  2000
#define MAXP_A 128
#define MAXP_B 7 /* not a power of two */

static struct sl_batch_pool pool;

/* The reference: Flink's key group and owner, written out. */
static unsigned owner_of(int64_t key, unsigned q, unsigned maxp)
{
	uint64_t h = sli_hash64(&key, sizeof(key), 0);

	return (unsigned)((h % maxp) * q / maxp);
}

enum mode { KEYED, UNKEYED, BY_KEYSPEC };

/*
 * The log old subtask @from of @p would record: batches of 1..13 elements
 * (keys spread, sequence numbers from @from * OLD_N), a watermark after
 * each batch, idle/active now and then. Keys hashed like a keyed exchange
 * (KEYED), or batches without hashes (UNKEYED, BY_KEYSPEC).
 */
static uint32_t make_log(struct sli_snap_buf *l, unsigned from, enum mode m, unsigned *nelems)
{
	struct sl_batch b = { 0 };
	struct rec data[13];
	int64_t ts[13];
	uint64_t key[13];
	uint32_t nev = 0;
	unsigned s = 0;

	*nelems = 0;
	for (unsigned round = 0; s < 400; round++) {
		uint32_t n = 1 + (round * 7 + from) % 13;

		for (uint32_t i = 0; i < n; i++, s++) {
			data[i] = (struct rec){ (int64_t)((s * 2654435761u + from) % 97),
						(int64_t)(from * OLD_N + s) };
			ts[i] = 1000 + s;
			key[i] = sli_hash64(&data[i].key, sizeof(data[i].key), 0);
		}
		b = (struct sl_batch){ .kind = SL_EVENT_DATA,
				       .n = n,
				       .elem_size = sizeof(struct rec),
				       .flags = m == KEYED ? SL_BATCH_F_KEYED : 0,
				       .data = (uint8_t *)data,
				       .ts = ts,
				       .key = key };
		CU_ASSERT_FATAL(sli_chan_log_put(l, &b) == 0);
		*nelems += n;
		b = (struct sl_batch){ .kind = SL_EVENT_WATERMARK, .value = 900 + s };
		CU_ASSERT_FATAL(sli_chan_log_put(l, &b) == 0);
		nev += 2;
		if (round % 5 == 4) {
			b = (struct sl_batch){ .kind = round % 10 == 4 ? SL_EVENT_IDLE
								       : SL_EVENT_ACTIVE };
			CU_ASSERT_FATAL(sli_chan_log_put(l, &b) == 0);
			nev++;
		}
	}
	return nev;
}

/* What a replay emitted. */
struct got {
	struct sl_batch **b;
	unsigned n, cap;
	int fail_at; /* >= 0: the emit number that fails with -ENOMEM */
};

static int collect(void *arg, struct sl_batch *b)
{
	struct got *g = arg;

	if (g->fail_at >= 0 && g->n == (unsigned)g->fail_at)
		return -ENOMEM;
	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 64;
		g->b = realloc(g->b, g->cap * sizeof(*g->b));
		CU_ASSERT_FATAL(g->b != NULL);
	}
	g->b[g->n++] = b;
	return 0;
}

static void got_free(struct got *g)
{
	for (unsigned i = 0; i < g->n; i++)
		sli_pool_put(&pool, g->b[i]);
	free(g->b);
	*g = (struct got){ .fail_at = -1 };
}

/* Replay log @l (@nev events) with @rt into @g; return the result and the kept count. */
static int replay(const struct sli_snap_buf *l, uint32_t nev, const struct sl_type *t,
		  const struct sli_chan_route *rt, struct got *g, uint64_t *kept, char *err,
		  size_t errlen)
{
	struct sli_snap_sec one = { SL_SNAP_OP, l->p, l->len, "chk-9/t1-0.snap" };
	struct sl_snap_reader r;
	uint32_t sec;
	int rc;

	sli_snap_reader_init(&r, &one, 1, err, errlen);
	CU_ASSERT_FATAL(sl_snap_next(&r, &sec) == 1);
	*kept = 0;
	rc = sli_chan_replay(&r, nev, t, rt, &pool, collect, g, kept);
	if (rc == 0)
		CU_ASSERT(sl_snap_left(&r) == 0);
	return rc;
}

/* Logs of @p old subtasks replayed at every q: each element once, at its owner, in order. */
static void rescale(unsigned p, unsigned maxp, enum mode m)
{
	static const unsigned qs[] = { 1, 2, 3, 4, 7 };
	struct sli_keyspec ks = { .fn = NULL, .off = offsetof(struct rec, key), .len = 8 };
	struct sli_snap_buf logs[4] = { 0 };
	uint32_t nev[4];
	unsigned nel[4], total = 0;

	for (unsigned i = 0; i < p; i++) {
		nev[i] = make_log(&logs[i], i, m, &nel[i]);
		total += nel[i];
	}
	for (unsigned qi = 0; qi < SL_ARRAY_SIZE(qs); qi++) {
		unsigned q = qs[qi], *seen = calloc((size_t)p * OLD_N, sizeof(*seen));
		unsigned landed = 0, wrong = 0, disorder = 0, events = 0;

		CU_ASSERT_FATAL(seen != NULL);
		for (unsigned j = 0; j < q; j++)
			for (unsigned i = 0; i < p; i++) {
				struct sli_chan_route rt = { .rescale = true,
							     .from = i,
							     .index = j,
							     .parallelism = q,
							     .max_parallelism = maxp,
							     .key = m == BY_KEYSPEC ? &ks : NULL };
				struct got g = { .fail_at = -1 };
				char err[256];
				uint64_t kept;
				int64_t last = -1;
				unsigned here = 0;

				CU_ASSERT(replay(&logs[i], nev[i], &rec_type, &rt, &g, &kept, err,
						 sizeof(err)) == 0);
				for (unsigned k = 0; k < g.n; k++) {
					const struct sl_batch *b = g.b[k];

					events += b->kind != SL_EVENT_DATA;
					CU_ASSERT(b->n <= BATCH);
					CU_ASSERT((b->flags & SL_BATCH_F_KEYED) == (m == KEYED));
					for (uint32_t e = 0; e < b->n && b->kind == SL_EVENT_DATA;
					     e++) {
						const struct rec *r = sl_batch_elem(b, e);
						unsigned want = m == UNKEYED
								    ? i % q
								    : owner_of(r->key, q, maxp);

						wrong += want != j;
						disorder += r->seq <= last;
						last = r->seq;
						CU_ASSERT_FATAL(r->seq >= (int64_t)(i * OLD_N) &&
								r->seq <
								    (int64_t)((i + 1) * OLD_N));
						seen[r->seq]++;
						landed++;
						here++;
						CU_ASSERT(b->ts[e] ==
							  1000 + r->seq - (int64_t)i * OLD_N);
					}
				}
				CU_ASSERT(kept == here);
				got_free(&g);
			}
		/* Each element exactly once over the new subtasks. */
		unsigned twice = 0, lost = 0;
		for (unsigned i = 0; i < p; i++)
			for (unsigned s = 0; s < nel[i]; s++) {
				twice += seen[i * OLD_N + s] > 1;
				lost += seen[i * OLD_N + s] == 0;
			}
		if (wrong || disorder || twice || lost || events || landed != total)
			printf("\n  p=%u q=%u maxp=%u mode %d: %u at another subtask, %u out of "
			       "order, %u twice, %u lost, %u control events, %u of %u landed\n",
			       p, q, maxp, m, wrong, disorder, twice, lost, events, landed, total);
		CU_ASSERT(wrong == 0 && disorder == 0 && twice == 0 && lost == 0);
		CU_ASSERT(events == 0); /* rescaled: watermarks and statuses dropped */
		CU_ASSERT(landed == total);
		free(seen);
	}
	for (unsigned i = 0; i < p; i++)
		free(logs[i].p);
}

static void test_keyed(void)
{
	for (unsigned p = 1; p <= 4; p++) {
		rescale(p, MAXP_A, KEYED);
		rescale(p, MAXP_B, KEYED);
	}
}

static void test_keyspec(void)
{
	rescale(3, MAXP_A, BY_KEYSPEC);
	rescale(2, MAXP_B, BY_KEYSPEC);
}

static void test_unkeyed(void)
{
	for (unsigned p = 1; p <= 4; p++)
		rescale(p, MAXP_A, UNKEYED);
}

/* Not rescaled: every event comes back, and recording it again gives the same bytes. */
static void test_as_recorded(void)
{
	struct sli_chan_route rt = { .rescale = false };
	struct sli_snap_buf log = { 0 }, again = { 0 };
	struct got g = { .fail_at = -1 };
	unsigned nel, n = 0;
	uint64_t kept;
	char err[256];
	uint32_t nev = make_log(&log, 1, KEYED, &nel);

	CU_ASSERT(replay(&log, nev, &rec_type, &rt, &g, &kept, err, sizeof(err)) == 0);
	CU_ASSERT(kept == nel);
	/* Data batches are repacked to the pool's size: merge consecutive data events back. */
	for (unsigned k = 0; k < g.n; k++) {
		struct sl_batch *b = g.b[k];

		if (b->kind != SL_EVENT_DATA) {
			CU_ASSERT(sli_chan_log_put(&again, b) == 0);
			n++;
			continue;
		}
		struct rec data[64];
		int64_t ts[64];
		uint64_t key[64];
		struct sl_batch m = { .kind = SL_EVENT_DATA,
				      .elem_size = sizeof(struct rec),
				      .flags = b->flags,
				      .data = (uint8_t *)data,
				      .ts = ts,
				      .key = key };
		for (; k < g.n && g.b[k]->kind == SL_EVENT_DATA; k++)
			for (uint32_t e = 0; e < g.b[k]->n && m.n < 64; e++, m.n++) {
				memcpy(&data[m.n], sl_batch_elem(g.b[k], e), sizeof(struct rec));
				ts[m.n] = g.b[k]->ts[e];
				key[m.n] = g.b[k]->key[e];
			}
		k--;
		CU_ASSERT(sli_chan_log_put(&again, &m) == 0);
		n++;
	}
	CU_ASSERT(n == nev);
	CU_ASSERT(again.len == log.len && memcmp(again.p, log.p, log.len) == 0);
	got_free(&g);
	free(log.p);
	free(again.p);
}

/* A replay of @log that must fail with -EBADMSG and a message naming the file and @needle. */
static void bad(const struct sli_snap_buf *log, uint32_t nev, const struct sl_type *t, bool rescale,
		const char *needle)
{
	struct sli_chan_route rt = {
		.rescale = rescale, .from = 0, .index = 0, .parallelism = 3, .max_parallelism = 128
	};
	struct got g = { .fail_at = -1 };
	char err[256] = "";
	uint64_t kept;

	CU_ASSERT(replay(log, nev, t, &rt, &g, &kept, err, sizeof(err)) == -EBADMSG);
	if (strstr(err, needle) == NULL || strstr(err, "chk-9/t1-0.snap") == NULL)
		printf("\n  expected '%s' naming the file, got '%s'\n", needle, err);
	CU_ASSERT(strstr(err, needle) != NULL && strstr(err, "chk-9/t1-0.snap") != NULL);
	got_free(&g);
}

static void test_bad_logs(void)
{
	struct sli_snap_buf log = { 0 };
	unsigned nel;
	uint32_t nev = make_log(&log, 0, KEYED, &nel), kind = 99, flag = 5;
	size_t len = log.len;

	for (int rescale = 0; rescale < 2; rescale++) {
		bad(&log, nev, &other_type, rescale, "another element size");
		bad(&log, nev + 1, &rec_type, rescale, "truncated");
		log.len = len - 3; /* the last event cut short */
		bad(&log, nev, &rec_type, rescale, "truncated");
		log.len = 30; /* inside the first data event's elements */
		bad(&log, nev, &rec_type, rescale, "truncated");
		log.len = len;
	}
	memcpy(log.p, &kind, 4);
	bad(&log, nev, &rec_type, true, "unknown event");
	kind = SL_EVENT_DATA;
	memcpy(log.p, &kind, 4);
	memcpy(log.p + 12, &flag, 4); /* the keyed flag */
	bad(&log, nev, &rec_type, false, "corrupt event header");
	free(log.p);
}

/* The emit callback failing: its error comes back, nothing leaks (ASan). */
static void test_emit_fails(void)
{
	struct sli_chan_route rt = { .rescale = false };
	struct sli_snap_buf log = { 0 };
	struct got g = { .fail_at = 5 };
	unsigned nel;
	uint64_t kept;
	char err[256];
	uint32_t nev = make_log(&log, 2, KEYED, &nel);

	CU_ASSERT(replay(&log, nev, &rec_type, &rt, &g, &kept, err, sizeof(err)) == -ENOMEM);
	CU_ASSERT(g.n == 5);
	got_free(&g);
	free(log.p);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "keyed logs of 1..4 old subtasks at 1, 2, 3, 4, 7: each element once, at the "
		  "owner of its key group, in order",
		  test_keyed },
		{ "logs without hashes, the exchange's key given: routed by that key",
		  test_keyspec },
		{ "logs of a non-keyed exchange: old index mod new parallelism, in order",
		  test_unkeyed },
		{ "replay at the same channels: every event, byte for byte", test_as_recorded },
		{ "bad logs: element size, truncated, unknown event, corrupt header",
		  test_bad_logs },
		{ "an emit that fails: its error, nothing leaked", test_emit_fails },
		CU_TEST_INFO_NULL,
	};
	int rc;

	sli_pool_init(&pool, NULL, BATCH, 64, 0);
	rc = sl_test_main("ckpt-chan", tests);
	sli_pool_fini(&pool);
	return rc;
}
