/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_state.h — keyed state: named state of a keyed operator, scoped to
 * the current key (and namespace), with Flink's kinds and TTL rules.
 *
 * State is declared while the job is built, on the stream a keyed
 * operator returned (sl_keyed_process()); sl_state_declare() gives back
 * a small integer id, used from the operator's functions with the call's
 * context (struct sl_ctx, sl_time.h):
 *
 *	static int count_id;
 *	count_id = sl_state_declare(s, &(struct sl_state_desc){
 *		.name = "count", .kind = SL_STATE_VALUE });
 *	...in element(): sl_value_get(c, count_id, &v, &len) / sl_value_put(...)
 *
 * Kinds (Flink's): value (one byte string), list (of byte strings), map
 * (byte-string keys to byte-string values), reducing (one value of a
 * fixed size folded by a reduce function), aggregating (an accumulator
 * folded by add(), read through result()). Values are copied in; strings
 * may be of any length up to SL_STATE_VALUE_MAX.
 *
 * Scope: every access reads and writes the entry of the call's current
 * key (and of its namespace: a window, for window functions; none for
 * keyed process functions); sl_state_clear() removes the current key's
 * entry only, other keys are untouched. State lives in a table per
 * subtask holding exactly the key groups the subtask owns (key group =
 * hash(key) % max_parallelism, Flink's rule), so it can be redistributed
 * when parallelism changes.
 *
 * TTL (Flink's StateTtlConfig): an entry (a list element, a map entry)
 * expires ttl_ms after it was last written (SL_TTL_ON_CREATE_AND_WRITE,
 * the default) or last read or written (SL_TTL_ON_READ_AND_WRITE). An
 * expired value is never returned. Time is processing time (the
 * platform's clock, sl_job.h) by default, or the operator's current
 * watermark (SL_TTL_EVENT_TIME). Expired entries are removed
 * incrementally: a bounded slice of the table after every input batch
 * and watermark, so cleanup never stalls the task.
 *
 * Pointers returned by getters point into the table: valid until the
 * next call that writes state of this operator (put, add, update,
 * remove, clear) or the end of the function call; copy what must live
 * longer.
 *
 * Errors: -errno, with one sentence naming the operator and the state in
 * sl_ctx_info(c)->errbuf, which the runtime reports if the function
 * returns the error: -EINVAL (bad context or argument, wrong kind for the
 * call), -ENOENT (unknown state id), -E2BIG (value too large), -ENOMEM.
 *
 * Threads: access functions run on the operator's thread, inside its
 * calls; declaration is part of building the job (one thread).
 */
#ifndef SL_STATE_H
#define SL_STATE_H

#include <stdint.h>

#include "sl_job.h"
#include "sl_time.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest value, list or map in bytes (all elements with their headers). */
#define SL_STATE_VALUE_MAX (1u << 30)

/** Most states one operator declares. */
#define SL_STATE_MAX 256

enum sl_state_kind {
	SL_STATE_VALUE = 0,
	SL_STATE_LIST = 1,
	SL_STATE_MAP = 2,
	SL_STATE_REDUCING = 3,
	SL_STATE_AGGREGATING = 4,
};

/** When the TTL of an entry restarts. */
enum sl_ttl_update {
	SL_TTL_ON_CREATE_AND_WRITE = 0, /**< on writes only (Flink's default) */
	SL_TTL_ON_READ_AND_WRITE = 1,	/**< on reads too */
};

/** The clock TTL counts on. */
enum sl_ttl_time {
	SL_TTL_PROCESSING_TIME = 0, /**< sl_ctx_current_processing_time() */
	SL_TTL_EVENT_TIME = 1,	    /**< sl_ctx_current_watermark() */
};

/** Time to live of a state's entries; zeroed: no TTL. */
struct sl_state_ttl {
	int64_t ttl_ms; /**< 0: never expire; > 0: expire this long after the update */
	enum sl_ttl_update update;
	enum sl_ttl_time time;
};

/**
 * An aggregating state's functions (Flink's AggregateFunction): an
 * accumulator of @acc_size bytes, created by @create, folded by @add with
 * each input, read through @result into @out_size bytes. @merge (merging
 * windows, later) folds @src into @dst; optional.
 */
struct sl_state_aggregate {
	uint32_t acc_size; /**< > 0 */
	uint32_t out_size; /**< > 0 */
	void (*create)(void *acc, void *arg);
	int (*add)(void *acc, const void *in, uint32_t len, void *arg);
	void (*merge)(void *dst, const void *src, void *arg);
	int (*result)(const void *acc, void *out, void *arg);
};

/** A state declaration; copied by sl_state_declare(). */
struct sl_state_desc {
	/** Unique per operator: it identifies the state in savepoints. Copied. */
	const char *name;
	enum sl_state_kind kind;
	/** Reducing: the size of a value (> 0). Others: unused (values vary in length). */
	uint32_t value_size;
	/** Reducing: fold @in (value_size bytes) into @acc. Return 0 or -errno. */
	int (*reduce)(void *acc, const void *in, void *arg);
	/** Aggregating: its functions (create, add, result and the sizes required). */
	struct sl_state_aggregate agg;
	struct sl_state_ttl ttl;
	void *arg; /**< passed to reduce and the aggregate's functions */
};

/**
 * sl_state_declare() - declare keyed state @d on the keyed operator that
 * produced @op (sl_keyed_process()).
 * Return: the state's id (0, 1, ... in declaration order), or -errno with
 * the error recorded in the job (sl_job_validate() reports its sentence):
 * -EINVAL for a NULL or bad argument (no name, unknown kind or TTL
 * option, a reducing state without reduce or value_size, an aggregating
 * state without create, add, result or sizes, a negative TTL) or an
 * operator that has no keyed state; -EEXIST for a name the operator
 * already declared; -ENOSPC past SL_STATE_MAX states; -EBUSY once the job
 * was planned (run); -ENOMEM.
 */
int sl_state_declare(struct sl_stream *op, const struct sl_state_desc *d);

/**
 * sl_job_use_checkpoint_storage() - let @job write and read checkpoints
 * (the options checkpoint-dir and restore, sl_job.h) through this
 * library's storage: files written with io_uring (or POSIX I/O) and
 * checked with CRC32C. A job that sets those options without it fails to
 * start with a message saying so. Return: 0; -EINVAL for a NULL job.
 */
int sl_job_use_checkpoint_storage(struct sl_job *job);

/** A byte string (list elements). */
struct sl_bytes {
	const void *ptr;
	uint32_t len;
};

/* -------------------------------------------------------------- value */

/**
 * sl_value_get() - the current key's value: *@v and *@len (either may be
 * NULL when not wanted; @v points into the table, see above).
 * Return: 1 found, 0 absent or expired, -errno.
 */
int sl_value_get(struct sl_ctx *c, int id, const void **v, uint32_t *len);

/** sl_value_put() - set the current key's value to @len bytes at @v. Return 0 or -errno. */
int sl_value_put(struct sl_ctx *c, int id, const void *v, uint32_t len);

/* --------------------------------------------------------------- list */

/** Walks a list (sl_list_get()); points into the table. */
struct sl_list_iter {
	const uint8_t *p, *end;
	int64_t now; /**< elements expired at this time are skipped */
};

/** sl_list_add() - append @len bytes at @v to the current key's list. Return 0 or -errno. */
int sl_list_add(struct sl_ctx *c, int id, const void *v, uint32_t len);

/**
 * sl_list_get() - start walking the current key's list, in insertion
 * order, skipping expired elements; then sl_list_next() until it returns 0.
 * Return: 1 when the list has elements, 0 when it is empty, -errno.
 */
int sl_list_get(struct sl_ctx *c, int id, struct sl_list_iter *it);

/** sl_list_next() - the next element (*@v, *@len). Return 1, or 0 at the end. */
int sl_list_next(struct sl_list_iter *it, const void **v, uint32_t *len);

/**
 * sl_list_update() - replace the current key's list by the @n elements
 * of @items (n == 0 empties it). Return 0 or -errno.
 */
int sl_list_update(struct sl_ctx *c, int id, const struct sl_bytes *items, unsigned n);

/* ---------------------------------------------------------------- map */

/** Walks a map (sl_map_iterate()); points into the table. */
struct sl_map_iter {
	const uint8_t *p, *end;
	int64_t now;
};

/** sl_map_put() - map @k to @v under the current key. Return 1 added, 0 replaced, -errno. */
int sl_map_put(struct sl_ctx *c, int id, const void *k, uint32_t klen, const void *v,
	       uint32_t vlen);

/** sl_map_get() - the value of @k: *@v, *@vlen. Return 1 found, 0 absent or expired, -errno. */
int sl_map_get(struct sl_ctx *c, int id, const void *k, uint32_t klen, const void **v,
	       uint32_t *vlen);

/** sl_map_contains() - Return 1 when @k has a live value, 0 when not, -errno. */
int sl_map_contains(struct sl_ctx *c, int id, const void *k, uint32_t klen);

/** sl_map_remove() - Return 1 when @k was there, 0 when not, -errno. */
int sl_map_remove(struct sl_ctx *c, int id, const void *k, uint32_t klen);

/**
 * sl_map_iterate() - start walking the current key's map in ascending
 * order of the keys' bytes (shorter first on a common prefix), skipping
 * expired entries; then sl_map_next() until it returns 0.
 * Return: 1 when the map has entries, 0 when empty, -errno.
 */
int sl_map_iterate(struct sl_ctx *c, int id, struct sl_map_iter *it);

/** sl_map_next() - the next entry. Return 1, or 0 at the end. */
int sl_map_next(struct sl_map_iter *it, const void **k, uint32_t *klen, const void **v,
		uint32_t *vlen);

/* ------------------------------------------------ reducing, aggregating */

/**
 * sl_reducing_add() - fold @v (value_size bytes) into the current key's
 * value with reduce(); the first value is stored as it is.
 * Return: 0, -errno (reduce()'s error too).
 */
int sl_reducing_add(struct sl_ctx *c, int id, const void *v);

/** sl_reducing_get() - copy the value (value_size bytes) to @out. Return 1, 0 empty, -errno. */
int sl_reducing_get(struct sl_ctx *c, int id, void *out);

/**
 * sl_aggregating_add() - fold @len bytes at @in into the current key's
 * accumulator (created with create() when absent). Return 0 or -errno.
 */
int sl_aggregating_add(struct sl_ctx *c, int id, const void *in, uint32_t len);

/** sl_aggregating_get() - result() of the accumulator into @out (out_size bytes). Return 1, 0
 * empty, -errno. */
int sl_aggregating_get(struct sl_ctx *c, int id, void *out);

/* ---------------------------------------------------------------- all */

/** sl_state_clear() - remove the current key's entry of state @id. Return 1 removed, 0 none,
 * -errno. */
int sl_state_clear(struct sl_ctx *c, int id);

#ifdef __cplusplus
}
#endif
#endif /* SL_STATE_H */
