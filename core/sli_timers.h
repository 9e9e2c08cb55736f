/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_timers.h — what every keyed operator of a subtask needs besides
 * its state: a dictionary of the keys it has seen (key bytes -> a dense
 * id) and a timer service (Flink's InternalTimerService).
 *
 * Timers are per (key, namespace, time) and per domain (event time,
 * processing time): registering one that exists is a no-op, so a key
 * and window have at most one timer per timestamp (SEMANTICS.md
 * "Timers are unique per (key, namespace, timestamp)"). They fire in
 * timestamp order; equal timestamps fire in registration order, so a
 * run is reproducible. Deleting a timer is O(1) amortised: the heap
 * item stays until it surfaces and is then recognised as stale.
 *
 * Threads: one instance per operator subtask, used by its worker only.
 */
#ifndef SLI_TIMERS_H
#define SLI_TIMERS_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/sl_job.h>

/* --------------------------------------------------------------- keys */

/** Key bytes -> dense id (0, 1, 2, ...); ids are never reused. */
struct sli_keys;

struct sli_keys *sli_keys_new(void);
void sli_keys_free(struct sli_keys *k);

/**
 * sli_keys_intern() - the id of the key @p (@len bytes, @hash its
 * sli_hash64), adding it when new.
 * Return: the id (>= 0), or -ENOMEM.
 */
int64_t sli_keys_intern(struct sli_keys *k, uint64_t hash, const void *p, uint32_t len);

/** The bytes of key @id (valid until the next intern) and its hash. */
struct sl_key sli_keys_get(const struct sli_keys *k, uint32_t id);
uint64_t sli_keys_hash(const struct sli_keys *k, uint32_t id);
uint32_t sli_keys_count(const struct sli_keys *k);

/* ------------------------------------------------------------- timers */

enum sli_domain {
	SLI_EVENT_TIME = 0,
	SLI_PROC_TIME = 1,
};

/**
 * A timer's namespace: 16 bytes the operator interprets (a window's
 * start and end; zero for a process function's timers).
 */
struct sli_ns {
	int64_t a, b;
};

struct sli_timer {
	int64_t time;
	uint32_t key;
	struct sli_ns ns;
};

struct sli_timers;

struct sli_timers *sli_timers_new(void);
void sli_timers_free(struct sli_timers *t);

/**
 * sli_timers_register() - a timer for (@key, @ns) at @time in domain @d.
 * Return: 1 when added, 0 when it existed already, -ENOMEM.
 */
int sli_timers_register(struct sli_timers *t, enum sli_domain d, uint32_t key, struct sli_ns ns,
			int64_t time);

/**
 * sli_timers_delete() - remove that timer.
 * Return: 1 when it existed, 0 when not.
 */
int sli_timers_delete(struct sli_timers *t, enum sli_domain d, uint32_t key, struct sli_ns ns,
		      int64_t time);

/** sli_timers_exists() - whether that timer is registered. */
int sli_timers_exists(const struct sli_timers *t, enum sli_domain d, uint32_t key, struct sli_ns ns,
		      int64_t time);

/**
 * sli_timers_pop() - remove and return the earliest timer of domain @d
 * with time <= @upto. Timers registered while firing (at times <= @upto)
 * are returned by later calls, in order, as Flink does when a watermark
 * advances.
 * Return: 1 with *@out filled, 0 when none is due.
 */
int sli_timers_pop(struct sli_timers *t, enum sli_domain d, int64_t upto, struct sli_timer *out);

/** sli_timers_next() - the earliest time registered in @d, INT64_MAX when none. */
int64_t sli_timers_next(struct sli_timers *t, enum sli_domain d);

/**
 * sli_timers_list() - the timers registered in @d, in registration
 * order (checkpoints: registering them again in this order keeps the
 * firing order of equal times): a malloc'ed array in *@out (free() it;
 * NULL when there is none) of *@n timers.
 * Return: 0 or -ENOMEM.
 */
int sli_timers_list(const struct sli_timers *t, enum sli_domain d, struct sli_timer **out,
		    size_t *n);

/*
 * Timers in checkpoints: a record is {domain, position in its domain's
 * registration order (sli_timers_list()), time, namespace}; the operator
 * adds the key. Restore collects the records (sli_timer_recs_add()), then
 * registers them in their old order (sli_timer_recs_register()).
 */
struct sl_snap_writer;
struct sl_snap_reader;

struct sli_timer_rec {
	struct sli_timer t; /* t.key: the operator's key id */
	uint32_t dom, pos;
};

struct sli_timer_recs {
	struct sli_timer_rec *v;
	size_t n, cap;
};

/** Write the record of timer @t, @pos-th of domain @dom. Return 0 or -errno. */
int sli_timer_rec_put(struct sl_snap_writer *w, uint32_t dom, uint32_t pos,
		      const struct sli_timer *t);
/**
 * Read a record into a new slot of @rs for key id @key (validated).
 * Return 0, -ENOMEM, or the reader's -EBADMSG.
 */
int sli_timer_recs_add(struct sli_timer_recs *rs, struct sl_snap_reader *r, uint32_t key);
/**
 * Register the records of @rs in @t, in their old order per domain; the
 * earliest processing-time timer registered in *@first_proc (INT64_MAX:
 * none). Frees @rs. Return 0 or -ENOMEM.
 */
int sli_timer_recs_register(struct sli_timer_recs *rs, struct sli_timers *t, int64_t *first_proc);

/** Timers registered in @d. */
size_t sli_timers_count(const struct sli_timers *t, enum sli_domain d);

#endif /* SLI_TIMERS_H */
