/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sl_snap.h — writing and reading the state of one operator subtask in a
 * checkpoint or a savepoint.
 *
 * A snapshot is made of sections. The operator section (SL_SNAP_OP)
 * holds what is not keyed: a source's position, a sink's pre-committed
 * files. A key-group section (0 .. max_parallelism-1) holds the keyed
 * state of that key group. On restore, possibly at another parallelism,
 * the runtime hands each new subtask:
 *	- the key-group sections of every key group in its range, whichever
 *	  old subtask wrote them, in increasing key-group order (sections of
 *	  the same key group in the order they were written);
 *	- the operator section of the old subtask with the same index, when
 *	  the parallelism did not change (sources refuse a change; sinks get
 *	  all of them through sl_sink_ops.recover()).
 *
 * Writing: select a section with sl_snap_section(), then append bytes. A
 * section may be selected any number of times, in any order; its bytes
 * are concatenated. Nothing is written to disk by these calls: the
 * runtime writes the snapshot once the subtask has returned, while the
 * subtask goes on processing.
 *
 * Reading: sl_snap_next() moves to the next section; the sl_snap_get*()
 * calls consume bytes of the current section and fail with -EBADMSG
 * (and a message naming the snapshot file and section) when fewer are
 * left. Numbers are stored little-endian, fixed width.
 *
 * Threads: a writer or reader belongs to the thread that was handed it.
 */
#ifndef SL_SNAP_H
#define SL_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The operator (non-keyed) section. */
#define SL_SNAP_OP UINT32_MAX

struct sl_snap_writer;
struct sl_snap_reader;

/**
 * sl_snap_section() - append the following bytes to section @section:
 * SL_SNAP_OP or a key group below the job's max_parallelism.
 * Return: 0; -EINVAL for a key group out of range.
 */
int sl_snap_section(struct sl_snap_writer *w, uint32_t section);

/** Append @n bytes. Return: 0; -ENOMEM; -EINVAL when no section is selected. */
int sl_snap_put(struct sl_snap_writer *w, const void *p, size_t n);

static inline int sl_snap_put_u64(struct sl_snap_writer *w, uint64_t v)
{
	return sl_snap_put(w, &v, sizeof(v)); /* x86-64 and aarch64 are little-endian */
}

static inline int sl_snap_put_i64(struct sl_snap_writer *w, int64_t v)
{
	return sl_snap_put(w, &v, sizeof(v));
}

static inline int sl_snap_put_u32(struct sl_snap_writer *w, uint32_t v)
{
	return sl_snap_put(w, &v, sizeof(v));
}

/** A length (u32) then @n bytes. Return: as sl_snap_put(); -E2BIG when @n >= 4 GiB. */
int sl_snap_put_bytes(struct sl_snap_writer *w, const void *p, size_t n);

/**
 * sl_snap_next() - move to the next section handed to this subtask.
 * @section: receives its number (SL_SNAP_OP or a key group).
 * Return: 1; 0 when there is none left; -EBADMSG when bytes of the
 * current section were left unread (a format mismatch).
 */
int sl_snap_next(struct sl_snap_reader *r, uint32_t *section);

/** Bytes left in the current section. */
size_t sl_snap_left(const struct sl_snap_reader *r);

/** Consume @n bytes into @p. Return: 0; -EBADMSG when fewer are left. */
int sl_snap_get(struct sl_snap_reader *r, void *p, size_t n);

static inline int sl_snap_get_u64(struct sl_snap_reader *r, uint64_t *v)
{
	return sl_snap_get(r, v, sizeof(*v));
}

static inline int sl_snap_get_i64(struct sl_snap_reader *r, int64_t *v)
{
	return sl_snap_get(r, v, sizeof(*v));
}

static inline int sl_snap_get_u32(struct sl_snap_reader *r, uint32_t *v)
{
	return sl_snap_get(r, v, sizeof(*v));
}

/**
 * sl_snap_get_bytes() - consume what sl_snap_put_bytes() wrote.
 * @p: receives a pointer into the reader's buffer, valid until the
 * restore call returns. Return: 0; -EBADMSG.
 */
int sl_snap_get_bytes(struct sl_snap_reader *r, const void **p, uint32_t *n);

/**
 * sl_snap_bad() - report that the current section's content is invalid
 * (a value out of range): the restore fails with "SNAPSHOT-FILE: section
 * S: @why". Return: -EBADMSG.
 */
int sl_snap_bad(struct sl_snap_reader *r, const char *why);

#ifdef __cplusplus
}
#endif

#endif /* SL_SNAP_H */
