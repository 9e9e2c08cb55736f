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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_error.h>
#include <sluice/sl_snap.h>

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
 */
int sli_keyed_snapshot(struct sli_opi *op, struct sl_snap_writer *w)
{
	struct sli_keyed *k = op->keyed;
	unsigned first, last, maxp = op->info.max_parallelism;
	struct sli_timer *tl[2] = { NULL, NULL };
	size_t nt[2] = { 0, 0 };
	uint32_t *per = NULL;
	int rc = 0;

	sli_key_group_range(op->info.index, op->info.parallelism, maxp, &first, &last);
	for (unsigned kg = first; kg <= last && rc == 0; kg++) {
		rc = sl_snap_section(w, kg);
		rc = rc < 0 ? rc : sl_snap_put_i64(w, op->watermark);
		rc = rc < 0 ? rc : sl_snap_put_u32(w, k->be != NULL);
	}
	if (rc == 0 && k->be != NULL) {
		op->info.errbuf[0] = '\0';
		rc = k->be->snapshot(k->ctx.state, w);
	}
	for (int d = 0; d < 2 && rc == 0; d++)
		rc = sli_timers_list(k->timers, (enum sli_domain)d, &tl[d], &nt[d]);
	if (rc == 0 && (per = calloc(maxp, sizeof(*per))) == NULL)
		rc = -ENOMEM;
	/* Counts per key group first: each section's timer list is prefixed by its count. */
	for (int d = 0; d < 2 && rc == 0; d++)
		for (size_t i = 0; i < nt[d]; i++)
			per[sli_key_group(sli_keys_hash(k->keys, tl[d][i].key), maxp)]++;
	for (unsigned kg = first; kg <= last && rc == 0; kg++) {
		rc = sl_snap_section(w, kg);
		rc = rc < 0 ? rc : sl_snap_put_u32(w, per[kg]);
	}
	for (int d = 0; d < 2 && rc == 0; d++)
		for (size_t i = 0; i < nt[d] && rc == 0; i++) {
			const struct sli_timer *t = &tl[d][i];
			struct sl_key key = sli_keys_get(k->keys, t->key);

			rc =
			    sl_snap_section(w, sli_key_group(sli_keys_hash(k->keys, t->key), maxp));
			rc = rc < 0 ? rc : sl_snap_put_bytes(w, key.ptr, key.len);
			rc = rc < 0 ? rc : sli_timer_rec_put(w, (uint32_t)d, (uint32_t)i, t);
		}
	free(per);
	free(tl[0]);
	free(tl[1]);
	return rc;
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
