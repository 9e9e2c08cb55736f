/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ckpt_ops.c — the state of joins and general windows (sl_window)
 * in checkpoints, through whole jobs.
 *
 * Two line sources ("ts,key,val" files the test writes, parallelism 1)
 * feed an interval join ([-15, 10]) or a tumbling window join (50 ms,
 * allowed lateness 150 ms, so fired windows stay in the state) at
 * parallelism 2, into exactly-once part files ("key,lval,rval,ts"); or
 * the left file alone feeds a general window at parallelism 2: session
 * windows (gap 40) with a process function over the whole contents
 * ("key,start,end,count,sum,ts"), or tumbling 100 ms windows with a reduce,
 * a continuous event-time trigger (every 25 ms: trigger state and timers)
 * and allowed lateness 60 ("key,sum,ts"). A
 * forked child runs the job with checkpoints every 5 ms and is killed with
 * SIGKILL at random moments (each time after a checkpoint completed, so a
 * restart restores buffered join state), then a last run finishes, at
 * parallelism 3 (key groups move). The committed output must equal, as a
 * sorted list, a brute-force nested-loop join of the two files computed
 * here (sessions: grouped by a gap scan), or for the continuous trigger,
 * whose firings depend on the watermarks, with an uninterrupted run: an
 * element lost from or doubled in the restored state, a window fired
 * twice or a timer lost shows up as a missing, extra or wrong line. The
 * disorder of the input stays below the watermark bound, so no element is
 * late and the references need no watermark logic.
 *
 * A rolling keyed reduce (sl_reduce(), sum, keyed by val % 1000: many
 * keys) against its brute-force reference: every element's running sum of
 * its key, in file order.
 *
 * Snapshots are asynchronous by default (the task copies its state into an
 * image at the barrier, the coordinator serialises the image) and
 * synchronous with checkpoint-snapshot sync: the joins, the general
 * windows and the reduce run in both modes, as do the aggregate windows
 * (sl_window_aggregate(), window.c): sliding windows (60 / 20 ms, lateness
 * 100: panes in rings and fired windows kept) and session windows (gap 40,
 * merging entries). The image is reused from one checkpoint to the next
 * unless the coordinator still holds it; these cases also run under TSan.
 * "Elements with strings" variants (joins, session windows) carry each
 * value as a string too, which the functions read instead of the field:
 * the images copy buffered elements' strings. "Copy fails" variants (interval join, session
 * windows, reduce, keyed process) set SLUICE_FREEZE_ENOMEM, which makes every 11th image allocation
 * fail (core/checkpoint.c), so that some snapshots fall back to synchronous serialisation part way
 * through a copy; they check that the hook refused allocations in the last, in-process run. The
 * same sliding windows once more with a field key (sl_key_by_field()) and a built-in sum
 * (sl_agg_sum_i64()): window.c's specialised loop.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sluice/sl_connectors.h>
#include <sluice/sl_job.h>
#include <sluice/sl_state.h>
#include <sluice/sl_time.h>

#include "ckpt_gate.h"
#include "kill_loop.h"
#include "kv_elems.h"
#include "sl_test.h"
#include "sorted_lines.h"
#include "test_dirs.h"

#define NREC	 2500 /* records per side */
#define NKEYS	 10
#define DISORDER 30
#define BOUND	 100 /* watermark out-of-orderness > DISORDER: nothing is late */
#define LO	 -15
#define HI	 10
#define WSIZE	 50
#define GAP	 40
#define TSIZE	 100
#define CONT	 25
#define TLATE	 60
#define SSIZE	 60 /* aggregate sliding windows */
#define SSLIDE	 20
#define SLATE	 100

#include "cs_window.h"

/*
 * STRS: the same elements with the value also as a string ("v<val>"),
 * which the join and window functions read instead of the field, so that
 * a string lost or misplaced in a snapshot shows up as a wrong value.
 */
struct evs {
	int64_t key, val; /* key first: key_first8() reads both types */
	struct sl_str tag;
};
static const struct sl_type evs_type = SL_TYPE_STR1(struct evs, tag);
static bool g_strs; /* the job under test uses struct evs */

struct jo {
	int64_t key, lval, rval;
};
static const struct sl_type jo_type = SL_TYPE(struct jo);

struct rec {
	int64_t ts, key, val;
};

/* The operator under test. */
enum kind { IJOIN, WJOIN, SESSION, CONTINUOUS, KEYED, AGG_SLIDE, AGG_SESSION, AGG_BUILTIN, REDUCE };

/* How the operator under test snapshots. */
enum snap {
	ASYNC, /* checkpoint-snapshot async (the default) */
	SYNC,  /* checkpoint-snapshot sync */
	FAULT, /* async, with SLUICE_FREEZE_ENOMEM: some copies fail, serialised at once */
	STRS,  /* async, elements with a string field that the functions read */
};

/*
 * Every FAULT_NTH image allocation fails (core/checkpoint.c's test hook).
 * A freeze asks for 4 (reduce; keyed process: timers of both domains and
 * their keys, before the copy-on-write freeze of its keyed state), 6 (join)
 * or 7 (general window) buffers:
 * some copies fail part way, others complete; the last run's final
 * checkpoint (3 subtasks, at least 12 requests) meets at least one failure.
 */
#define FAULT_NTH "11"
/* core/sli_checkpoint.h: image allocations the hook refused in this process. */
unsigned long sli_img_faults(void);

static char tmpdir[256], lpath[300], rpath[300];
static struct rec lrec[NREC], rrec[NREC];

static int write_side(const char *path, struct rec *r, int64_t vbase, unsigned seed);

/* Both sides' files in tmpdir. 0 or -1. */
static int write_input(void)
{
	snprintf(lpath, sizeof(lpath), "%s/left.csv", tmpdir);
	snprintf(rpath, sizeof(rpath), "%s/right.csv", tmpdir);
	return write_side(lpath, lrec, 0, 1) < 0 || write_side(rpath, rrec, 1000000, 2) < 0 ? -1
											    : 0;
}

/*
 * Timestamps rising by 0..6 with a disorder of up to DISORDER; values
 * unique per side. Called before the suite runs: no CU_ASSERT. Return 0
 * or -1.
 */
static int write_side(const char *path, struct rec *r, int64_t vbase, unsigned seed)
{
	FILE *f = fopen(path, "w");
	int64_t t = 1000;

	if (f == NULL)
		return -1;
	srand(seed);
	for (int i = 0; i < NREC; i++) {
		t += rand() % 7;
		r[i] = (struct rec){ t + rand() % DISORDER, rand() % NKEYS, vbase + i };
		fprintf(f, "%" PRId64 ",%" PRId64 ",%" PRId64 "\n", r[i].ts, r[i].key, r[i].val);
	}
	return fclose(f) == 0 ? 0 : -1;
}

/* The value of element @e of a batch whose arena is @src's (the string under STRS). */
static int64_t val_of(const void *e, const struct sl_batch *src)
{
	const struct evs *x = e;
	char buf[32];

	if (!g_strs)
		return ((const struct ev *)e)->val;
	if (x->tag.len < 2 || x->tag.len >= sizeof(buf))
		return INT64_MIN / 4; /* a wrong line, not a crash */
	memcpy(buf, src->arena + x->tag.off, x->tag.len);
	buf[x->tag.len] = '\0';
	return buf[0] == 'v' ? strtoll(buf + 1, NULL, 10) : INT64_MIN / 4;
}

static int parse_evs(const char *line, size_t len, struct sl_batch *out, void *elem, int64_t *ts,
		     char *why, size_t whylen, void *arg)
{
	struct evs *e = elem;
	struct ev v;
	char tag[32];
	int rc = parse_kv(line, len, out, &v, ts, why, whylen, arg);

	if (rc < 0)
		return rc;
	e->key = v.key;
	e->val = -1; /* the functions read the string */
	snprintf(tag, sizeof(tag), "v%" PRId64, v.val);
	rc = sl_batch_add_str(out, tag, (uint32_t)strlen(tag), &e->tag);
	return rc < 0 ? rc : 1;
}

static int ij_fn(const void *l, int64_t lts, const struct sl_batch *lsrc, const void *r,
		 int64_t rts, const struct sl_batch *rsrc, struct sl_collector *out, void *arg)
{
	const struct ev *a = l;
	struct jo o = { a->key, val_of(l, lsrc), val_of(r, rsrc) };

	(void)lts, (void)rts, (void)arg;
	return sl_emit(out, &o, 0, NULL);
}

static int wj_fn(const void *l, const struct sl_batch *lsrc, const void *r,
		 const struct sl_batch *rsrc, const struct sl_window *w, struct sl_collector *out,
		 void *arg)
{
	const struct ev *a = l;
	struct jo o = { a->key, val_of(l, lsrc), val_of(r, rsrc) };

	(void)w, (void)arg;
	return sl_emit(out, &o, 0, NULL);
}

static int jo_format(const void *elem, int64_t ts, const struct sl_batch *b, char *buf, size_t len,
		     void *arg)
{
	const struct jo *o = elem;

	(void)b, (void)arg;
	return snprintf(buf, len, "%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64, o->key, o->lval,
			o->rval, ts);
}

static int sess_proc(const struct sl_window_ctx *ctx, const struct sl_batch *contents,
		     struct sl_collector *out, void *arg)
{
	struct wo o = { 0, ctx->window.start, ctx->window.end, contents->n, 0 };

	(void)arg;
	memcpy(&o.key, ctx->key.ptr, sizeof(o.key));
	for (uint32_t i = 0; i < contents->n; i++)
		o.sum += val_of(sl_batch_elem(contents, i), contents);
	return sl_emit(out, &o, 0, NULL);
}

static int ev_format(const void *elem, int64_t ts, const struct sl_batch *b, char *buf, size_t len,
		     void *arg)
{
	const struct ev *e = elem;

	(void)b, (void)arg;
	return snprintf(buf, len, "%" PRId64 ",%" PRId64 ",%" PRId64, e->key, e->val, ts);
}

/*
 * The keyed process function: per key (val % KP_KEYS) a count (value
 * state), a sum (reducing state) and every value (list state); an
 * event-time timer at the end of the element's 50 ms bucket emits
 * "key,time,count,sum,list length,list sum".
 */
#define KP_KEYS 1000

struct kout {
	int64_t key, time, count, sum, n, lsum;
};
static const struct sl_type kout_type = SL_TYPE(struct kout);
static int st_count, st_sum, st_list;

static void key_mod(const void *e, const struct sl_batch *src, struct sl_key *out)
{
	static __thread int64_t k; /* the key bytes must outlive the call: one per thread */

	(void)src;
	k = ((const struct ev *)e)->val % KP_KEYS;
	out->ptr = &k;
	out->len = sizeof(k);
}

static int kp_element(struct sl_ctx *c, const void *in, int64_t ts, const struct sl_batch *src,
		      struct sl_collector *out, void *arg)
{
	const struct ev *e = in;
	const void *v;
	uint32_t len;
	int64_t count = 0;
	int rc;

	(void)src, (void)out, (void)arg;
	rc = sl_value_get(c, st_count, &v, &len);
	if (rc < 0)
		return rc;
	if (rc == 1 && len == sizeof(count))
		memcpy(&count, v, sizeof(count));
	count++;
	if ((rc = sl_value_put(c, st_count, &count, sizeof(count))) < 0 ||
	    (rc = sl_reducing_add(c, st_sum, &e->val)) < 0 ||
	    (rc = sl_list_add(c, st_list, &e->val, sizeof(e->val))) < 0)
		return rc;
	return sl_timer_register(c, SL_EVENT_TIME, ts - ts % 50 + 49);
}

static int kp_timer(struct sl_ctx *c, enum sl_time_domain d, int64_t time, struct sl_collector *out,
		    void *arg)
{
	struct kout o = { 0, time, 0, 0, 0, 0 };
	struct sl_list_iter it;
	const void *v;
	uint32_t len;
	int rc;

	(void)d, (void)arg;
	memcpy(&o.key, sl_ctx_key(c)->ptr, sizeof(o.key));
	if ((rc = sl_value_get(c, st_count, &v, &len)) == 1)
		memcpy(&o.count, v, sizeof(o.count));
	if (rc >= 0)
		rc = sl_reducing_get(c, st_sum, &o.sum);
	if (rc >= 0)
		rc = sl_list_get(c, st_list, &it);
	while (rc >= 0 && (rc = sl_list_next(&it, &v, &len)) == 1) {
		int64_t x;

		memcpy(&x, v, sizeof(x));
		o.n++;
		o.lsum += x;
	}
	return rc < 0 ? rc : sl_emit(out, &o, time, NULL);
}

static int kout_format(const void *elem, int64_t ts, const struct sl_batch *b, char *buf,
		       size_t len, void *arg)
{
	const struct kout *o = elem;

	(void)b, (void)arg, (void)ts;
	return snprintf(buf, len,
			"%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64,
			o->key, o->time, o->count, o->sum, o->n, o->lsum);
}

/* The aggregate windows: count and sum, sliceable (merge adds). */
static void cs_add(void *acc, const void *elem, int64_t ts, const struct sl_batch *src, void *arg)
{
	struct cs *a = acc;

	(void)ts, (void)src, (void)arg;
	a->count++;
	a->sum += ((const struct ev *)elem)->val;
}

/* The built-in sum's result: count 0 (it keeps only the sum). */
static int sum_result(const struct sl_window *w, const struct sl_key *key, const void *acc,
		      struct sl_collector *out, void *arg)
{
	struct wo o = { 0, w->start, w->end, 0, 0 };

	(void)arg;
	memcpy(&o.key, key->ptr, sizeof(o.key));
	memcpy(&o.sum, acc, sizeof(o.sum));
	return sl_emit(out, &o, w->end - 1, NULL);
}

struct setup {
	enum kind kind;
	const char *out, *ck;
	unsigned par;
	double rate;
	bool unaligned; /* checkpoint-unaligned: a join reads two channels, in-flight data saved */
	bool sync;	/* checkpoint-snapshot sync */
};

/*
 * The gate in front of the left source (parallelism 1: one thread polls
 * it) when a test sets g_gate_ckpts > 0 (ckpt_gate.h) or g_gate_end. A
 * source that returns nothing still takes barriers.
 */

/*
 * With g_gate_end (a run with checkpoints), the gate holds the end of the
 * input, every line passed, until a checkpoint has begun that was
 * triggered after all of them passed: one triggered after a checkpoint
 * completed since then (g_all_c: how many had completed when the gate
 * first held), and after the second one. A checkpoint has begun when the
 * snapshots outnumber those of the completed ones (one per subtask): the
 * source takes each barrier first, and none is triggered before the
 * previous one completed. The end then follows that barrier, while the coordinator
 * still serialises the images it is acked with (the test delays it). Then
 * g_end_open is set and g_open_cow records cow_task_bytes; with
 * g_stop_at_end, the gate stops the job instead of letting the end pass.
 */
static bool g_gate_end, g_stop_at_end, g_end_open, g_all_seen;
static uint64_t g_open_cow, g_all_c;

static bool next_begun(const struct sl_checkpoint_stats *cs)
{
	uint64_t nsub = (uint64_t)sl_job_task_stats(g_gate_job, NULL, 0);

	if (!g_all_seen) {
		g_all_seen = true;
		g_all_c = cs->completed;
	}
	return cs->completed >= 2 && cs->completed > g_all_c &&
	       cs->snapshots > nsub * cs->completed;
}

static int gate_poll(void *state, struct sl_batch *out)
{
	struct sl_checkpoint_stats cs = { 0 };
	uint64_t room;

	sl_job_checkpoint_stats(g_gate_job, &cs);
	room = gate_room(&cs, NREC);
	if (g_gate_end && !g_end_open) {
		room = NREC > g_gated ? NREC - g_gated : 0;
		if (room == 0 && next_begun(&cs)) {
			g_end_open = true;
			g_open_cow = cs.cow_task_bytes;
			if (g_stop_at_end)
				sl_job_stop(g_gate_job); /* the source ends at its next step */
			else
				room = UINT64_MAX;
		}
	}
	return gated_poll(&sl_lines_ops, &g_gated, state, out, room);
}

/* Build and run the job of @s. Return sl_job_run()'s result. */
static int run_job(const struct setup *s)
{
	struct sl_lines_conf lc = { .path = lpath,
				    .parse = g_strs ? parse_evs : parse_kv,
				    .rate = s->rate };
	struct sl_lines_conf rc_ = lc;
	const struct sl_type *in_type = g_strs ? &evs_type : &ev_type;
	struct sl_part_sink_conf pc = { .dir = s->out, .format = jo_format, .fsync = true };
	struct sl_window_conf sess = { .assigner = sl_assigner_session(GAP), .process = sess_proc };
	struct sl_window_conf cont = { .assigner = sl_assigner_tumbling(TSIZE, 0),
				       .trigger = sl_trigger_continuous_event_time(CONT),
				       .allowed_lateness = TLATE,
				       .reduce = sum_val };
	struct sl_watermark_strategy ws = { .out_of_orderness_ms = BOUND, .every = 1 };
	/* Lateness keeps fired windows until cleanup: a restore must not fire them again. */
	struct sl_window_spec wspec = { .kind = SL_WINDOW_TUMBLING,
					.size = WSIZE,
					.allowed_lateness = 3 * WSIZE };
	struct sl_interval_join_spec ispec = { .lower = LO, .upper = HI };
	struct sl_source_ops gate_ops = sl_lines_ops;
	struct sl_stream *l, *r, *j;
	struct sl_job *job;
	char err[1024];
	const char *more[][2] = { { "checkpoint-unaligned", s->unaligned ? "true" : "false" },
				  { "checkpoint-snapshot", s->sync ? "sync" : "async" } };
	/* Without a checkpoint directory, only the parallelism. */
	int rc = ckpt_job_create("ckpt-ops", s->par, s->ck, more, 2, &job);

	if (job == NULL)
		return rc;
	rc_.path = rpath;
	gate_ops.poll = gate_poll;
	l = sl_set_parallelism(sl_source(job, "left",
					 g_gate_ckpts > 0 || g_gate_end ? &gate_ops : &sl_lines_ops,
					 &lc, in_type),
			       1);
	/* The keyed process function: another key, many of them (a small state-memory spills). */
	l = sl_assign_watermarks(l, &ws);
	l = s->kind == AGG_BUILTIN
		? sl_key_by_field(l, offsetof(struct ev, key), sizeof(int64_t))
		: sl_key_by(l, s->kind == KEYED || s->kind == REDUCE ? key_mod : key_first8);
	r = NULL;
	if (s->kind == IJOIN || s->kind == WJOIN) {
		r = sl_set_parallelism(sl_source(job, "right", &sl_lines_ops, &rc_, in_type), 1);
		r = sl_key_by(sl_assign_watermarks(r, &ws), key_first8);
	}
	switch (s->kind) {
	case WJOIN:
		j = sl_window_join(l, r, "join", &wspec, wj_fn, NULL, &jo_type);
		break;
	case IJOIN:
		j = sl_interval_join(l, r, "join", &ispec, ij_fn, NULL, &jo_type);
		break;
	case SESSION:
		j = sl_window(l, "window", &sess, &wo_type);
		pc.format = wo_format;
		break;
	case CONTINUOUS:
		j = sl_window(l, "window", &cont, &ev_type);
		pc.format = ev_format;
		break;
	case REDUCE:
		j = sl_reduce(l, "reduce", sum_val, NULL, SL_REDUCE_ROLLING);
		pc.format = ev_format;
		break;
	case AGG_SLIDE:
	case AGG_SESSION: {
		struct sl_aggregate agg = cs_aggregate(cs_add);
		struct sl_window_spec sp = { .kind = SL_WINDOW_SLIDING,
					     .size = SSIZE,
					     .slide = SSLIDE,
					     .allowed_lateness = SLATE };

		if (s->kind == AGG_SESSION)
			sp = (struct sl_window_spec){ .kind = SL_WINDOW_SESSION, .gap = GAP };
		j = sl_window_aggregate(l, "window", &sp, &agg, &wo_type);
		pc.format = wo_format;
		break;
	}
	case AGG_BUILTIN: {
		struct sl_aggregate agg =
		    sl_agg_sum_i64(offsetof(struct ev, val), sum_result, NULL);
		struct sl_window_spec sp = { .kind = SL_WINDOW_SLIDING,
					     .size = SSIZE,
					     .slide = SSLIDE,
					     .allowed_lateness = SLATE };

		j = sl_window_aggregate(l, "window", &sp, &agg, &wo_type);
		pc.format = wo_format;
		break;
	}
	default: {
		static const struct sl_keyed_process kp = { .element = kp_element,
							    .timer = kp_timer };
		struct sl_state_desc dc = { .name = "count", .kind = SL_STATE_VALUE };
		struct sl_state_desc ds = { .name = "sum",
					    .kind = SL_STATE_REDUCING,
					    .value_size = sizeof(int64_t),
					    .reduce = sum_i64 };
		struct sl_state_desc dl = { .name = "values", .kind = SL_STATE_LIST };

		j = sl_keyed_process(l, "keyed", &kp, &kout_type);
		st_list = sl_state_declare(j, &dl);
		st_sum = sl_state_declare(j, &ds);
		st_count = sl_state_declare(j, &dc);
		pc.format = kout_format;
		if (rc == 0)
			rc = sl_job_set(job, "state-memory", "64K", err, sizeof(err));
		break;
	}
	}
	sl_sink(j, "out", &sl_part_sink_ops, &pc);
	return gate_run(job, rc, err, sizeof(err));
}

static int cmp_rec(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->ts < y->ts ? -1 : x->ts > y->ts;
}

/* Sessions: per key, in time order, a gap over GAP ends a session [first, last + GAP) (touching
 * windows merge, as Flink's TimeWindow.intersects). */
/*
 * Rolling reduce keyed by val % KP_KEYS: per element, in the file's order
 * (a key's elements travel one channel), the key's running sum, with the
 * key field of its first element and the element's timestamp.
 */
static void rolling(struct lines *want)
{
	static int64_t sum[KP_KEYS], first[KP_KEYS];
	static bool seen[KP_KEYS];
	char buf[160];

	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < NREC; i++) {
		int64_t g = lrec[i].val % KP_KEYS;

		if (!seen[g]) {
			seen[g] = true;
			first[g] = lrec[i].key;
			sum[g] = 0;
		}
		sum[g] += lrec[i].val;
		snprintf(buf, sizeof(buf), "%" PRId64 ",%" PRId64 ",%" PRId64, first[g], sum[g],
			 lrec[i].ts);
		lines_add(want, buf);
	}
}

static void sessions(struct lines *want)
{
	static struct rec v[NREC];
	char buf[160];

	memcpy(v, lrec, sizeof(v));
	qsort(v, NREC, sizeof(v[0]), cmp_rec);
	for (int i = 0; i < NREC;) {
		int64_t start = v[i].ts, last = v[i].ts, n = 0, sum = 0;
		int j = i;

		for (; j < NREC && v[j].key == v[i].key && v[j].ts <= last + GAP; j++) {
			last = v[j].ts > last ? v[j].ts : last;
			n++;
			sum += v[j].val;
		}
		snprintf(buf, sizeof(buf),
			 "%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64,
			 v[i].key, start, last + GAP, n, sum, last + GAP - 1);
		lines_add(want, buf);
		i = j;
	}
}

/*
 * Sliding windows: per key and window [s, s + SSIZE) with elements, the
 * count (0 when @sum_only) and sum.
 */
static void slides(struct lines *want, bool sum_only)
{
	static struct rec v[NREC];
	char buf[160];

	memcpy(v, lrec, sizeof(v));
	qsort(v, NREC, sizeof(v[0]), cmp_rec);
	for (int i = 0; i < NREC;) {
		int j = i;

		while (j < NREC && v[j].key == v[i].key)
			j++;
		/* Window starts from the first element's earliest window to the last one's. */
		int64_t lo = v[i].ts - v[i].ts % SSLIDE - SSIZE + SSLIDE;
		for (int64_t st = lo; st <= v[j - 1].ts; st += SSLIDE) {
			int64_t n = 0, sum = 0;

			for (int k = i; k < j; k++)
				if (v[k].ts >= st && v[k].ts < st + SSIZE) {
					n++;
					sum += v[k].val;
				}
			if (n == 0)
				continue;
			snprintf(buf, sizeof(buf),
				 "%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
				 ",%" PRId64,
				 v[i].key, st, st + SSIZE, sum_only ? 0 : n, sum, st + SSIZE - 1);
			lines_add(want, buf);
		}
		i = j;
	}
}

/* Brute force: every (left, right) pair of equal key that joins, as output lines. */
static void reference(bool window, struct lines *want)
{
	char buf[128];

	for (int a = 0; a < NREC; a++)
		for (int b = 0; b < NREC; b++) {
			const struct rec *x = &lrec[a], *y = &rrec[b];
			int64_t ts;

			if (x->key != y->key)
				continue;
			if (window) {
				int64_t wx = x->ts - x->ts % WSIZE, wy = y->ts - y->ts % WSIZE;

				if (wx != wy)
					continue;
				ts = wx + WSIZE - 1;
			} else {
				if (y->ts < x->ts + LO || y->ts > x->ts + HI)
					continue;
				ts = x->ts > y->ts ? x->ts : y->ts;
			}
			snprintf(buf, sizeof(buf), "%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64,
				 x->key, x->val, y->val, ts);
			lines_add(want, buf);
		}
	qsort(want->v, want->n, sizeof(*want->v), cmp_str);
}

/* One child of kill_loop(): the job under test with checkpoints, at parallelism 2. */
struct kill_arg {
	enum kind kind;
	const char *out, *ck;
	bool ua, sync;
};

static int kill_run(void *arg, double rate)
{
	const struct kill_arg *k = arg;

	return run_job(&(struct setup){ k->kind, k->out, k->ck, 2, rate, k->ua, k->sync });
}

static void kill_restore(enum kind kind, bool ua, enum snap md)
{
	static const char *const names[] = { "ij",	    "wj",	   "session",
					     "continuous",  "keyed",	   "agg-slide",
					     "agg-session", "agg-builtin", "reduce" };
	static const char *const modes[] = { "", "-sync", "-fault", "-str" };
	bool sync = md == SYNC;
	unsigned long faults;

	g_strs = md == STRS;
	char out[400], ck[400];
	struct lines want = { 0 }, got = { 0 };
	unsigned seed = (unsigned)time(NULL);
	int kills;

	snprintf(out, sizeof(out), "%s/out-%s%s%s/", tmpdir, names[kind], ua ? "-ua" : "",
		 modes[md]);
	snprintf(ck, sizeof(ck), "%s/ck-%s%s%s", tmpdir, names[kind], ua ? "-ua" : "", modes[md]);
	fresh_dir(out);
	if (kind == IJOIN || kind == WJOIN) {
		reference(kind == WJOIN, &want);
	} else if (kind == SESSION || kind == AGG_SESSION) {
		sessions(&want);
		qsort(want.v, want.n, sizeof(*want.v), cmp_str);
	} else if (kind == REDUCE) {
		rolling(&want);
		qsort(want.v, want.n, sizeof(*want.v), cmp_str);
	} else if (kind == AGG_SLIDE || kind == AGG_BUILTIN) {
		slides(&want, kind == AGG_BUILTIN);
		qsort(want.v, want.n, sizeof(*want.v), cmp_str);
	} else {
		/* Firings follow the watermarks: the reference is an uninterrupted run. */
		CU_ASSERT(run_job(&(struct setup){ kind, out, NULL, 2, 0, false, sync }) == 0);
		committed(out, &want);
	}
	CU_ASSERT(want.n > 300); /* much output: the test can see losses */

	/* Uninterrupted, no checkpoints: the engine agrees with the reference. */
	fresh_dir(out);
	CU_ASSERT(run_job(&(struct setup){ kind, out, NULL, 2, 0, false, sync }) == 0);
	committed(out, &got);
	CU_ASSERT(same("uninterrupted", &got, &want) == 0);
	lines_free(&got);

	if (md == FAULT)
		CU_ASSERT_FATAL(setenv("SLUICE_FREEZE_ENOMEM", FAULT_NTH, 1) == 0);
	printf("\n  kill seed %u\n", seed);
	srand(seed);
	fresh_out_ck(out, ck);
	kills = kill_loop(kill_run, &(struct kill_arg){ kind, out, ck, ua, sync }, out, ck, 6, 2000,
			  250);
	CU_ASSERT(kills == 6);
	/*
	 * The last run rescales the join: key groups move between subtasks, and
	 * so does the in-flight data of an unaligned checkpoint, each side's to
	 * the owner of its key group (checkpoint.c).
	 */
	faults = sli_img_faults();
	CU_ASSERT(run_job(&(struct setup){ kind, out, ck, 3, 0, ua, sync }) == 0);
	if (md == FAULT) {
		/* The final checkpoint froze each subtask: some copies failed (the hook works). */
		CU_ASSERT(sli_img_faults() > faults);
		CU_ASSERT(unsetenv("SLUICE_FREEZE_ENOMEM") == 0);
	}
	committed(out, &got);
	CU_ASSERT(same("after kills and a rescale", &got, &want) == 0);
	lines_free(&got);
	lines_free(&want);
	g_strs = false;
}

#define KILL_TEST(fn, kind, ua, md)         \
	static void fn(void)                \
	{                                   \
		kill_restore(kind, ua, md); \
	}

KILL_TEST(test_interval, IJOIN, false, ASYNC)
KILL_TEST(test_interval_sync, IJOIN, false, SYNC)
KILL_TEST(test_interval_fault, IJOIN, false, FAULT)
KILL_TEST(test_interval_strs, IJOIN, false, STRS)
KILL_TEST(test_window, WJOIN, false, ASYNC)
KILL_TEST(test_window_strs, WJOIN, false, STRS)
KILL_TEST(test_window_sync, WJOIN, false, SYNC)
KILL_TEST(test_session, SESSION, false, ASYNC)
KILL_TEST(test_session_sync, SESSION, false, SYNC)
KILL_TEST(test_session_fault, SESSION, false, FAULT)
KILL_TEST(test_session_strs, SESSION, false, STRS)
KILL_TEST(test_continuous, CONTINUOUS, false, ASYNC)
KILL_TEST(test_continuous_sync, CONTINUOUS, false, SYNC)
KILL_TEST(test_keyed, KEYED, false, ASYNC)
KILL_TEST(test_keyed_sync, KEYED, false, SYNC)
KILL_TEST(test_keyed_fault, KEYED, false, FAULT)
KILL_TEST(test_interval_unaligned, IJOIN, true, ASYNC)
KILL_TEST(test_reduce, REDUCE, false, ASYNC)
KILL_TEST(test_reduce_sync, REDUCE, false, SYNC)
KILL_TEST(test_reduce_fault, REDUCE, false, FAULT)
KILL_TEST(test_agg_slide, AGG_SLIDE, false, ASYNC)
KILL_TEST(test_agg_slide_sync, AGG_SLIDE, false, SYNC)
KILL_TEST(test_agg_slide_fault, AGG_SLIDE, false, FAULT)
KILL_TEST(test_agg_session, AGG_SESSION, false, ASYNC)
KILL_TEST(test_agg_session_sync, AGG_SESSION, false, SYNC)
KILL_TEST(test_agg_builtin, AGG_BUILTIN, false, ASYNC)

/*
 * When does a keyed table's copy-on-write snapshot find its previous one
 * still pending (state/table_snap.c: -EBUSY, serialised on the task)? The
 * coordinator triggers a checkpoint only when none is in flight, and drops
 * its reference to each image as it takes the ack, before the checkpoint
 * completes: regular checkpoints never overlap. The final checkpoint
 * (numbered after the last triggered one, begun when the input ends while
 * that one may still be written) waits for the subtask's images to be
 * released (core/checkpoint.c sli_ckpt_final_ready()). Only the one after a
 * failed checkpoint (whose barriers may still be on their way) can overlap.
 * So a long uninterrupted run with checkpoints every 5 ms, none failed,
 * never falls back.
 */
static void test_keyed_busy(void)
{
	char out[400], ck[400];

	snprintf(out, sizeof(out), "%s/out-keyed-busy/", tmpdir);
	snprintf(ck, sizeof(ck), "%s/ck-keyed-busy", tmpdir);
	fresh_out_ck(out, ck);
	g_gate_ckpts = 5; /* the last tenth of the input waits for 5 complete checkpoints */
	CU_ASSERT(run_job(&(struct setup){ KEYED, out, ck, 2, 1500, false, false }) == 0);
	g_gate_ckpts = 0;
	printf("\n  %" PRIu64 " checkpoints, %" PRIu64 " failed, %" PRIu64 " snapshots, %" PRIu64
	       " synchronous fallbacks ",
	       g_cs.completed, g_cs.failed, g_cs.snapshots, g_cs.sync_fallbacks);
	CU_ASSERT(g_cs.completed >= 5); /* many checkpoints (the gate waited for them) */
	CU_ASSERT(g_cs.failed == 0);
	CU_ASSERT(g_cs.sync_fallbacks == 0); /* was <= 2 (one per subtask, the final checkpoint) */
}

/*
 * The final checkpoint at the end of the input must not copy or serialise
 * the state on the task because the coordinator still reads the images of
 * the last regular checkpoint (SLUICE_TEST_SNAPSHOT_DELAY_MS makes it
 * slow): the end waits for them (core/checkpoint.c sli_ckpt_final_ready()).
 * The gate (g_gate_end) lets the end follow a barrier whose images are
 * pending. Counted by the engine: no synchronous fallback (the keyed-state
 * table refuses a second freeze while one is pending) and, for the
 * aggregate windows, no state copied by the task after the gate opened
 * (window.c: sli_cow_finish(), or firing at the final watermark into frozen
 * segments; nothing else is written after that barrier). The committed
 * output must equal the reference; with @stop, the job is stopped while
 * the snapshot is pending, and a second run restored from the stop's
 * final checkpoint must complete it to exactly the reference.
 */
static void final_waits(enum kind kind, bool stop)
{
	char out[400], ck[400];
	struct lines want = { 0 }, got = { 0 };

	snprintf(out, sizeof(out), "%s/out-final-%d-%d/", tmpdir, (int)kind, stop);
	snprintf(ck, sizeof(ck), "%s/ck-final-%d-%d", tmpdir, (int)kind, stop);
	fresh_dir(out);
	if (kind == AGG_SLIDE) {
		slides(&want, false);
		qsort(want.v, want.n, sizeof(*want.v), cmp_str);
	} else {
		/* Firings follow the watermarks: the reference is an uninterrupted run. */
		CU_ASSERT(run_job(&(struct setup){ kind, out, NULL, 2, 0, false, false }) == 0);
		committed(out, &want);
		fresh_dir(out);
	}
	CU_ASSERT(want.n > 300);
	rm_rf(ck);
	CU_ASSERT_FATAL(setenv("SLUICE_TEST_SNAPSHOT_DELAY_MS", "150", 1) == 0);
	g_gate_end = true;
	g_stop_at_end = stop;
	g_end_open = g_all_seen = false;
	CU_ASSERT(run_job(&(struct setup){ kind, out, ck, 2, 0, false, false }) == 0);
	g_gate_end = g_stop_at_end = false;
	CU_ASSERT(unsetenv("SLUICE_TEST_SNAPSHOT_DELAY_MS") == 0);
	printf("\n  %" PRIu64 " checkpoints, %" PRIu64 " failed, %" PRIu64 " final waits, %" PRIu64
	       " synchronous fallbacks, %" PRIu64 " bytes copied by tasks after the gate ",
	       g_cs.completed, g_cs.failed, g_cs.final_waits, g_cs.sync_fallbacks,
	       g_cs.cow_task_bytes - g_open_cow);
	CU_ASSERT(g_end_open); /* the end followed a barrier of a checkpoint in flight */
	CU_ASSERT(g_cs.failed == 0);
	CU_ASSERT(g_cs.sync_fallbacks == 0);
	if (kind == AGG_SLIDE)
		CU_ASSERT(g_cs.cow_task_bytes == g_open_cow);
	if (stop) {
		/* The stop's final checkpoint holds every line: the restored run only ends. */
		CU_ASSERT(run_job(&(struct setup){ kind, out, ck, 2, 0, false, false }) == 0);
		CU_ASSERT(g_cs.restored_id > 0);
	}
	committed(out, &got);
	CU_ASSERT(same(stop ? "stopped while a snapshot was pending, restored" : "final waited",
		       &got, &want) == 0);
	lines_free(&got);
	lines_free(&want);
}

static void test_final_keyed(void)
{
	final_waits(KEYED, false);
}

static void test_final_window(void)
{
	final_waits(AGG_SLIDE, false);
}

static void test_final_stop(void)
{
	final_waits(AGG_SLIDE, true);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "interval join, async snapshots: kill -9 and restore, then rescale: the "
		  "reference",
		  test_interval },
		{ "interval join, sync snapshots: kill -9 and restore, then rescale: the reference",
		  test_interval_sync },
		{ "interval join, async snapshots whose copy fails now and then: kill -9, restore",
		  test_interval_fault },
		{ "interval join, elements with strings, async snapshots: kill -9, restore, "
		  "rescale",
		  test_interval_strs },
		{ "window join, async snapshots: kill -9 and restore, then rescale: the reference",
		  test_window },
		{ "window join, elements with strings, async snapshots: kill -9, restore, rescale",
		  test_window_strs },
		{ "window join, sync snapshots: kill -9 and restore, then rescale: the reference",
		  test_window_sync },
		{ "session windows, process function, async snapshots: kill -9, restore, rescale",
		  test_session },
		{ "session windows, process function, sync snapshots: kill -9, restore, rescale",
		  test_session_sync },
		{ "session windows, async snapshots whose copy fails now and then: kill -9, "
		  "restore",
		  test_session_fault },
		{ "session windows, elements with strings, async snapshots: kill -9, restore",
		  test_session_strs },
		{ "continuous trigger, reduce, lateness, async snapshots: kill -9, restore, "
		  "rescale",
		  test_continuous },
		{ "continuous trigger, reduce, lateness, sync snapshots: kill -9, restore, rescale",
		  test_continuous_sync },
		{ "keyed process, spilled keyed state and timers: kill -9, restore, rescale",
		  test_keyed },
		{ "keyed process, spilled keyed state, sync snapshots: kill -9, restore, rescale",
		  test_keyed_sync },
		{ "keyed process, async snapshots whose copy fails now and then: kill -9, restore",
		  test_keyed_fault },
		{ "keyed process, checkpoints every 5 ms: a copy-on-write snapshot is never busy, "
		  "the final checkpoint included",
		  test_keyed_busy },
		{ "keyed process: the final checkpoint waits for the previous snapshot's images, "
		  "no synchronous fallback",
		  test_final_keyed },
		{ "aggregate sliding windows: the final checkpoint waits for the previous "
		  "snapshot's images, the task copies nothing",
		  test_final_window },
		{ "aggregate sliding windows: stopped while the previous snapshot is pending, "
		  "restored: the reference",
		  test_final_stop },
		{ "interval join, unaligned checkpoints (in-flight data): kill -9, restore, "
		  "rescale",
		  test_interval_unaligned },
		{ "rolling keyed reduce, 1000 keys, async snapshots: kill -9, restore, rescale",
		  test_reduce },
		{ "rolling keyed reduce, 1000 keys, sync snapshots: kill -9, restore, rescale",
		  test_reduce_sync },
		{ "rolling keyed reduce, async snapshots whose copy fails now and then: kill -9",
		  test_reduce_fault },
		{ "aggregate sliding windows, async snapshots: kill -9, restore, rescale",
		  test_agg_slide },
		{ "aggregate sliding windows, sync snapshots: kill -9, restore, rescale",
		  test_agg_slide_sync },
		{ "aggregate sliding windows, copy-on-write snapshots whose image fails now and "
		  "then: kill -9, restore",
		  test_agg_slide_fault },
		{ "aggregate session windows, async snapshots: kill -9, restore, rescale",
		  test_agg_session },
		{ "aggregate session windows, sync snapshots: kill -9, restore, rescale",
		  test_agg_session_sync },
		{ "field key, built-in sum, sliding windows: kill -9, restore, rescale",
		  test_agg_builtin },
		CU_TEST_INFO_NULL,
	};

	if (scratch_setup(tmpdir, sizeof(tmpdir), "ckops", write_input) < 0)
		return 1;
	return sl_test_main_rm("ckpt-ops", tests, tmpdir);
}
