/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyed.c — keyed process functions (Flink's KeyedProcessFunction): a
 * user function per element and per timer, with the current key, the
 * operator's clocks, timers and keyed state in a struct sl_ctx.
 *
 * State of one subtask: a key dictionary and a timer service
 * (timers.c), and the keyed-state instance opened through the node's
 * backend vtable (state/api.c installs it; core never calls state/). The
 * context is one struct per subtask, re-aimed at each call's key.
 *
 * Rules (sl_time.h): event-time timers fire in sli_keyed_watermark(),
 * before the watermark is forwarded (ops.c flushes after it), including
 * those registered while firing at times <= the watermark; the final
 * INT64_MAX watermark at end of input fires them all. Processing-time
 * timers fire in sli_keyed_proc_time(), called by the worker loop when
 * the clock passed op->next_proc_timer; at end of input they are
 * dropped, as in Flink 1.18. After every batch and watermark the state
 * backend gets a bounded maintenance slice (TTL cleanup).
 *
 * Threads: everything here runs on the subtask's worker thread.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sluice/sl_error.h>
#include <sluice/sl_snap.h>

#include "sli_checkpoint.h"
#include "sli_exec.h"
#include "sli_timers.h"

/* Maintenance budget (table slots) per call: a base plus per element processed. */
#define MAINTAIN_BASE	  64
#define MAINTAIN_PER_ELEM 2

struct sli_keyed {
	struct sli_timers *timers;
	struct sli_keys *keys;
	struct sl_ctx ctx;
	const struct sli_state_backend *be;
	struct sli_img *frozen; /* the last snapshot image (sli_keyed_freeze()) */
};

/* ------------------------------------------------------------ lifecycle */

int sli_keyed_open(struct sli_opi *op)
{
	const struct sli_node *n = op->node;
	struct sli_keyed *k = calloc(1, sizeof(*k));
	unsigned kg_first, kg_last;
	int rc;

	if (k == NULL)
		return -ENOMEM;
	op->keyed = k;
	k->timers = sli_timers_new();
	k->keys = sli_keys_new();
	if (k->timers == NULL || k->keys == NULL)
		return -ENOMEM;
	k->ctx.op = op;
	k->ctx.key_id = -1;
	if (n->nstates == 0 || n->state_backend == NULL)
		return 0;
	sli_key_group_range(op->info.index, op->info.parallelism, op->info.max_parallelism,
			    &kg_first, &kg_last);
	SL_ASSERT(sli_key_group_subtask(kg_first, op->info.parallelism, op->info.max_parallelism) ==
		  op->info.index);
	SL_ASSERT(sli_key_group_subtask(kg_last, op->info.parallelism, op->info.max_parallelism) ==
		  op->info.index);
	rc = n->state_backend->open(&op->info, op->st->w->alloc, n->states, n->nstates, kg_first,
				    kg_last, &op->st->w->x->job->state, &k->ctx.state);
	if (rc < 0)
		return rc;
	k->be = n->state_backend;
	return 0;
}

void sli_keyed_close(struct sli_opi *op)
{
	struct sli_keyed *k = op->keyed;

	if (k == NULL)
		return;
	if (k->be != NULL)
		k->be->close(k->ctx.state);
	sli_img_put(k->frozen); /* a checkpoint still holding it frees it */
	sli_timers_free(k->timers);
	sli_keys_free(k->keys);
	free(k);
	op->keyed = NULL;
}

/* -------------------------------------------------------------- calling */

static void maintain(struct sli_keyed *k, unsigned nelem)
{
	if (k->be != NULL)
		k->be->maintain(k->ctx.state, &k->ctx,
				MAINTAIN_BASE + MAINTAIN_PER_ELEM * (nelem > 4096 ? 4096 : nelem));
}

/* A user function returned @rc < 0: fail the job with its sentence, if any. */
static int call_failed(struct sli_opi *op, int rc, const char *what)
{
	sli_fail(op, rc, "the %s function failed: %s", what,
		 op->errbuf[0] ? op->errbuf : sl_strerror(rc));
	return rc;
}

int sli_keyed_batch(struct sli_opi *op, struct sl_batch *b)
{
	struct sli_keyed *k = op->keyed;
	const struct sl_keyed_process *p = &op->node->kp;
	struct sl_ctx *c = &k->ctx;
	uint32_t n;
	int rc = 0;

	for (uint32_t i = 0; i < b->n; i++) {
		const void *e = sl_batch_elem(b, i);

		sli_key_get(&op->key, e, b, &c->key);
		c->hash = (b->flags & SL_BATCH_F_KEYED) ? b->key[i]
							: sli_hash64(c->key.ptr, c->key.len, 0);
		c->key_id = -1;
		c->active = true;
		c->proc_valid = false;
		op->errbuf[0] = '\0';
		rc = p->element(c, e, b->ts[i], b, &op->coll, p->arg);
		c->active = false;
		if (rc < 0) {
			call_failed(op, rc, "element");
			break;
		}
	}
	n = b->n;
	sli_release(op, b); /* gone: another worker may own it now */
	if (rc == 0)
		maintain(k, n);
	return rc;
}

/* Fire timer @t of domain @d: its key becomes current. */
static int fire(struct sli_opi *op, enum sl_time_domain d, const struct sli_timer *t,
		int64_t proc_now)
{
	struct sli_keyed *k = op->keyed;
	const struct sl_keyed_process *p = &op->node->kp;
	struct sl_ctx *c = &k->ctx;
	int rc;

	if (p->timer == NULL)
		return 0;
	c->key = sli_keys_get(k->keys, t->key);
	c->hash = sli_keys_hash(k->keys, t->key);
	c->key_id = t->key;
	c->tns_a = t->ns.a;
	c->tns_b = t->ns.b;
	c->active = true;
	c->proc_valid = d == SL_PROCESSING_TIME;
	c->proc_now = proc_now;
	op->errbuf[0] = '\0';
	rc = p->timer(c, d, t->time, &op->coll, p->arg);
	c->active = false;
	c->tns_a = c->tns_b = 0;
	return rc < 0 ? call_failed(op, rc, "timer") : 0;
}

int sli_keyed_watermark(struct sli_opi *op, int64_t wm)
{
	struct sli_keyed *k = op->keyed;
	struct sli_timer t;
	unsigned fired = 0;

	/* Timers registered while firing, at times <= wm, are popped here too. */
	while (sli_timers_pop(k->timers, SLI_EVENT_TIME, wm, &t)) {
		int rc = fire(op, SL_EVENT_TIME, &t, 0);

		if (rc < 0)
			return rc;
		fired++;
	}
	maintain(k, fired);
	return 0;
}

int sli_keyed_proc_time(struct sli_opi *op, int64_t now_ms)
{
	struct sli_keyed *k = op->keyed;
	/*
	 * Like Flink, timers registered while firing at times <= now fire in
	 * this call too; but a timer function that keeps registering due
	 * timers cannot hold the worker: past this many firings the rest
	 * wait for the next check, a step later.
	 */
	size_t budget = 2 * sli_timers_count(k->timers, SLI_PROC_TIME) + 1024;
	struct sli_timer t;
	int rc = 0;

	while (budget-- > 0 && sli_timers_pop(k->timers, SLI_PROC_TIME, now_ms, &t)) {
		rc = fire(op, SL_PROCESSING_TIME, &t, now_ms);
		if (rc < 0)
			break;
	}
	op->next_proc_timer = sli_timers_next(k->timers, SLI_PROC_TIME);
	return rc;
}

/* ------------------------------------------------------ the sl_ctx API */

static const struct sl_key no_key = { NULL, 0 };

const struct sl_key *sl_ctx_key(const struct sl_ctx *c)
{
	return c != NULL && c->op != NULL ? &c->key : &no_key;
}

int64_t sl_ctx_current_watermark(const struct sl_ctx *c)
{
	return c != NULL && c->op != NULL ? c->op->watermark : INT64_MIN;
}

int64_t sl_ctx_current_processing_time(const struct sl_ctx *c)
{
	struct sl_ctx *m = (struct sl_ctx *)c; /* the cache is not part of its value */

	if (c == NULL || c->op == NULL)
		return INT64_MIN;
	if (!c->active)
		return sli_proc_now_ms(c->op->st->w->x);
	if (!c->proc_valid) {
		m->proc_now = sli_proc_now_ms(c->op->st->w->x);
		m->proc_valid = true;
	}
	return c->proc_now;
}

const struct sl_subtask_info *sl_ctx_info(const struct sl_ctx *c)
{
	return c != NULL && c->op != NULL ? &c->op->info : NULL;
}

/*
 * Check a timer call's arguments; intern the current key; set *@ns to the
 * timer's namespace. 0 or -errno (sentence in errbuf).
 */
static int timer_args(struct sl_ctx *c, enum sl_time_domain d, const char *what, struct sli_ns *ns)
{
	struct sli_keyed *k;

	if (c == NULL || c->op == NULL)
		return -EINVAL;
	if (!c->active)
		return sl_errbuf_set(c->op->errbuf, sizeof(c->op->errbuf), -EINVAL,
				     "%s: the context of operator '%s' was used outside its "
				     "element() or timer() call",
				     what, c->op->node->name);
	if (d != SL_EVENT_TIME && d != SL_PROCESSING_TIME)
		return sl_errbuf_set(c->op->errbuf, sizeof(c->op->errbuf), -EINVAL,
				     "%s: unknown time domain %d in operator '%s'", what, (int)d,
				     c->op->node->name);
	k = c->op->keyed;
	if (c->key_id < 0) {
		int64_t id = sli_keys_intern(k->keys, c->hash, c->key.ptr, c->key.len);

		if (id < 0)
			return sl_errbuf_set(c->op->errbuf, sizeof(c->op->errbuf), (int)id,
					     "%s: out of memory for the key of a timer in "
					     "operator '%s'",
					     what, c->op->node->name);
		c->key_id = id;
	}
	ns->a = c->tns_a;
	ns->b = c->tns_b;
	return 0;
}

int sl_timer_register(struct sl_ctx *c, enum sl_time_domain d, int64_t time)
{
	struct sli_ns ns;
	int rc = timer_args(c, d, "sl_timer_register", &ns);

	if (rc < 0)
		return rc;
	rc = sli_timers_register(c->op->keyed->timers, (enum sli_domain)d, (uint32_t)c->key_id, ns,
				 time);
	if (rc < 0)
		return sl_errbuf_set(c->op->errbuf, sizeof(c->op->errbuf), rc,
				     "sl_timer_register: out of memory for a timer in operator "
				     "'%s'",
				     c->op->node->name);
	if (d == SL_PROCESSING_TIME)
		sli_proc_timer_note(c->op, time);
	return rc;
}

int sl_timer_delete(struct sl_ctx *c, enum sl_time_domain d, int64_t time)
{
	struct sli_ns ns;
	int rc = timer_args(c, d, "sl_timer_delete", &ns);

	if (rc < 0)
		return rc;
	/* op->next_proc_timer may now be early: the check then finds nothing and recomputes. */
	return sli_timers_delete(c->op->keyed->timers, (enum sli_domain)d, (uint32_t)c->key_id, ns,
				 time);
}

/* ------------------------------------------------------- declaring state */

int sli_state_attach(struct sl_stream *s, const struct sl_state_desc *d,
		     const struct sli_state_backend *be)
{
	struct sli_node *n;
	struct sl_state_desc *arr;
	char *name;

	if (s == NULL || s->job == NULL)
		return -EINVAL;
	n = s->node;
	if (n == NULL)
		return s->job->build_err ? s->job->build_err : -EINVAL; /* not built: reported */
	if (s->job->planned) {
		sli_build_fail(s->job, -EBUSY,
			       "state '%s' declared on operator '%s' after the job was planned",
			       d->name, n->name);
		return -EBUSY;
	}
	if (n->kind != SLI_KEYED_PROCESS || s->port != 0) {
		sli_build_fail(s->job, -EINVAL,
			       "state '%s': operator '%s' (%s) has no keyed state; declare it on "
			       "the stream sl_keyed_process() returned",
			       d->name, n->name, sli_kind_name(n->kind));
		return -EINVAL;
	}
	for (unsigned i = 0; i < n->nstates; i++)
		if (strcmp(n->states[i].name, d->name) == 0) {
			sli_build_fail(s->job, -EEXIST,
				       "operator '%s' declares state '%s' twice: state names "
				       "identify state on restore and must be unique",
				       n->name, d->name);
			return -EEXIST;
		}
	if (n->nstates >= SL_STATE_MAX) {
		sli_build_fail(s->job, -ENOSPC, "operator '%s': more than %d states (at '%s')",
			       n->name, SL_STATE_MAX, d->name);
		return -ENOSPC;
	}
	arr = realloc(n->states, (n->nstates + 1) * sizeof(*arr));
	name = strdup(d->name);
	if (arr != NULL)
		n->states = arr;
	if (arr == NULL || name == NULL) {
		free(name);
		sli_build_fail(s->job, -ENOMEM, "out of memory while building the job");
		return -ENOMEM;
	}
	n->states[n->nstates] = *d;
	n->states[n->nstates].name = name;
	n->state_backend = be;
	return (int)n->nstates++;
}

/* ---------------------------------------------------------- checkpoints */

/*
 * The section of every key group of the subtask's range holds: the
 * operator's watermark, u32 1 and the state backend's part when the
 * operator has keyed state (else u32 0), then the timers of the group's
 * keys: u32 count, each {key bytes, sli_timer_rec_put()'s record}. Restore registers the timers
 * again in their old order (equal times fire as before).
 *
 * Both snapshot modes copy the timers and their keys' bytes first
 * (struct ksnap: small next to keyed state), then write through
 * kwrite(): synchronously right away with the backend's snapshot, or
 * asynchronously (sli_keyed_freeze()) on the checkpoint thread from an
 * image, with the backend's frozen state (copy-on-write tables).
 */
struct kmeta {
	uint32_t kg, off, len; /* a timer's key group, and its key's bytes in ksnap.bytes */
};

struct ksnap {
	struct sli_img_buf tl[2]; /* struct sli_timer[nt[d]] per domain, registration order */
	struct sli_img_buf meta;  /* struct kmeta[nt[0] + nt[1]] */
	struct sli_img_buf bytes;
	size_t nt[2];
	int64_t watermark;
	unsigned first, last;
	bool has; /* the operator has keyed state */
};

/* Room in @b: through sli_img_room() for an image (its test hook fails some), else plainly. */
static int room(struct sli_img_buf *b, size_t n, bool img)
{
	void *p;

	if (img)
		return sli_img_room(b, n);
	if (n <= b->cap)
		return 0;
	if ((p = malloc(n)) == NULL)
		return -ENOMEM;
	free(b->p);
	b->p = p;
	b->cap = n;
	return 0;
}

static void ksnap_free(struct ksnap *s)
{
	for (int d = 0; d < 2; d++)
		sli_img_buf_free(&s->tl[d]);
	sli_img_buf_free(&s->meta);
	sli_img_buf_free(&s->bytes);
}

/* Copy @op's watermark, timers and their keys into @s. 0 or -ENOMEM. */
static int ksnap_fill(struct sli_opi *op, struct ksnap *s, bool img)
{
	struct sli_keyed *k = op->keyed;
	size_t nb = 0, at = 0, m = 0;
	int rc = 0;

	sli_key_group_range(op->info.index, op->info.parallelism, op->info.max_parallelism,
			    &s->first, &s->last);
	s->watermark = op->watermark;
	s->has = k->be != NULL;
	for (int d = 0; d < 2 && rc == 0; d++) {
		struct sli_timer *tl = NULL;

		rc = sli_timers_list(k->timers, (enum sli_domain)d, &tl, &s->nt[d]);
		if (rc == 0 && (rc = room(&s->tl[d], s->nt[d] * sizeof(*tl), img)) == 0 &&
		    s->nt[d] != 0)
			memcpy(s->tl[d].p, tl, s->nt[d] * sizeof(*tl));
		free(tl);
	}
	for (int d = 0; d < 2 && rc == 0; d++)
		for (size_t i = 0; i < s->nt[d]; i++)
			nb += sli_keys_get(k->keys, ((struct sli_timer *)s->tl[d].p)[i].key).len;
	if (rc == 0)
		rc = room(&s->meta, (s->nt[0] + s->nt[1]) * sizeof(struct kmeta), img);
	if (rc == 0)
		rc = room(&s->bytes, nb, img);
	for (int d = 0; d < 2 && rc == 0; d++)
		for (size_t i = 0; i < s->nt[d]; i++) {
			uint32_t id = ((struct sli_timer *)s->tl[d].p)[i].key;
			struct sl_key key = sli_keys_get(k->keys, id);

			((struct kmeta *)s->meta.p)[m++] =
			    (struct kmeta){ sli_key_group(sli_keys_hash(k->keys, id),
							  op->info.max_parallelism),
					    (uint32_t)at, key.len };
			if (key.len != 0)
				memcpy((char *)s->bytes.p + at, key.ptr, key.len);
			at += key.len;
		}
	return rc;
}

/* Write @s, with the keyed state's part from @state(@arg, @w) when the operator has one. */
static int kwrite(const struct ksnap *s, int (*state)(void *arg, struct sl_snap_writer *w),
		  void *arg, struct sl_snap_writer *w)
{
	const struct kmeta *meta = s->meta.p;
	uint32_t *per = calloc(s->last - s->first + 1, sizeof(*per));
	int rc = per == NULL ? -ENOMEM : 0;
	size_t m = 0;

	for (unsigned kg = s->first; kg <= s->last && rc == 0; kg++) {
		rc = sl_snap_section(w, kg);
		rc = rc < 0 ? rc : sl_snap_put_i64(w, s->watermark);
		rc = rc < 0 ? rc : sl_snap_put_u32(w, s->has);
	}
	if (rc == 0 && s->has)
		rc = state(arg, w);
	/* Counts per key group first: each section's timer list is prefixed by its count. */
	for (size_t i = 0; rc == 0 && i < s->nt[0] + s->nt[1]; i++)
		per[meta[i].kg - s->first]++;
	for (unsigned kg = s->first; kg <= s->last && rc == 0; kg++) {
		rc = sl_snap_section(w, kg);
		rc = rc < 0 ? rc : sl_snap_put_u32(w, per[kg - s->first]);
	}
	for (int d = 0; d < 2 && rc == 0; d++)
		for (size_t i = 0; i < s->nt[d] && rc == 0; i++, m++) {
			rc = sl_snap_section(w, meta[m].kg);
			rc = rc < 0 ? rc
				    : sl_snap_put_bytes(w, (const char *)s->bytes.p + meta[m].off,
							meta[m].len);
			rc = rc < 0 ? rc
				    : sli_timer_rec_put(w, (uint32_t)d, (uint32_t)i,
							&((const struct sli_timer *)s->tl[d].p)[i]);
		}
	free(per);
	return rc;
}

int sli_keyed_snapshot(struct sli_opi *op, struct sl_snap_writer *w)
{
	struct sli_keyed *k = op->keyed;
	struct ksnap s = { 0 };
	int rc = ksnap_fill(op, &s, false);

	op->info.errbuf[0] = '\0';
	if (rc == 0)
		rc = kwrite(&s, k->be != NULL ? k->be->snapshot : NULL, k->ctx.state, w);
	ksnap_free(&s);
	return rc;
}

/* An asynchronous snapshot's image: the copies, and the backend's frozen state. */
struct kimg {
	struct sli_img h;
	struct ksnap s;
	const struct sli_state_backend *be;
	void *state; /* be's frozen state while a checkpoint holds the image */
};

static void kimg_destroy(struct sli_img *img)
{
	struct kimg *f = (struct kimg *)img;

	ksnap_free(&f->s);
	free(f);
}

/*
 * Tests only: SLUICE_TEST_SNAPSHOT_DELAY_MS=N makes the checkpoint thread
 * wait N ms before it writes the image, so that the task mutates the
 * frozen tables meanwhile (every copy-on-write path runs).
 */
static int kimg_write(const void *img, struct sl_snap_writer *w)
{
	const struct kimg *f = img;
	const char *env = getenv("SLUICE_TEST_SNAPSHOT_DELAY_MS");
	long ms = env != NULL ? strtol(env, NULL, 10) : 0;

	if (ms > 0 && ms < 10000)
		nanosleep(&(struct timespec){ ms / 1000, (ms % 1000) * 1000000 }, NULL);
	return kwrite(&f->s, f->be != NULL ? f->be->frozen_write : NULL, f->state, w);
}

static void kimg_put(void *img)
{
	struct kimg *f = img;

	/* Before our release in sli_img_put(): the task's refill sees state == NULL. */
	if (f->state != NULL)
		f->be->frozen_put(f->state);
	f->state = NULL;
	sli_img_put(&f->h);
}

static const struct sli_ckpt_image_ops kimg_ops = { kimg_write, kimg_put };

int sli_keyed_freeze(struct sli_opi *op, struct sli_ckpt_image *out)
{
	struct sli_keyed *k = op->keyed;
	struct kimg *f;
	uint64_t copied = 0;
	int rc;

	if (k->be != NULL && k->be->freeze == NULL)
		return 1; /* a backend without asynchronous snapshots */
	f = sli_img_reuse(&k->frozen, sizeof(*f), kimg_destroy);
	if (f == NULL)
		return -ENOMEM;
	rc = ksnap_fill(op, &f->s, true);
	f->be = k->be;
	f->state = NULL;
	if (rc == 0 && k->be != NULL)
		rc = k->be->freeze(k->ctx.state, &f->state, &copied);
	/* Relaxed: a statistic (bytes the task copied for earlier snapshots). */
	atomic_fetch_add_explicit(&op->st->w->x->job->ckpt_counters.cow_task_bytes, copied,
				  memory_order_relaxed);
	if (rc < 0)
		return rc; /* the image stays the operator's, to be refilled */
	sli_img_hand(&f->h);
	*out = (struct sli_ckpt_image){ &kimg_ops, f };
	return 0;
}

int sli_keyed_restore(struct sli_opi *op, struct sl_snap_reader *r)
{
	struct sli_keyed *k = op->keyed;
	struct sli_timer_recs tm = { 0 };
	int64_t wm = INT64_MAX, swm, first;
	bool any = false;
	uint32_t sec, has, n;
	int rc;

	while ((rc = sl_snap_next(r, &sec)) == 1) {
		if (sec == SL_SNAP_OP)
			continue; /* keyed process functions write no operator section */
		rc = sl_snap_get_i64(r, &swm);
		rc = rc < 0 ? rc : sl_snap_get_u32(r, &has);
		if (rc < 0)
			break;
		any = true;
		wm = swm < wm ? swm : wm;
		if (has && k->be == NULL) {
			rc = sl_snap_bad(r, "keyed state the operator does not declare");
			break;
		}
		if (has && (rc = k->be->restore(k->ctx.state, r, sec)) < 0)
			break;
		rc = sl_snap_get_u32(r, &n);
		for (uint32_t i = 0; i < n && rc == 0; i++) {
			const void *kb;
			uint32_t klen;
			int64_t id;

			rc = sl_snap_get_bytes(r, &kb, &klen);
			if (rc < 0)
				break;
			id = sli_keys_intern(k->keys, sli_hash64(kb, klen, 0), kb, klen);
			rc = id < 0 ? (int)id : sli_timer_recs_add(&tm, r, (uint32_t)id);
		}
		if (rc < 0)
			break;
	}
	if (rc < 0) {
		free(tm.v);
		return rc;
	}
	rc = sli_timer_recs_register(&tm, k->timers, &first);
	if (first != INT64_MAX)
		sli_proc_timer_note(op, first);
	if (rc == 0 && any)
		op->watermark = wm;
	return rc;
}
