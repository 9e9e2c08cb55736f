/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_ckpt_chan.h — channel state of unaligned checkpoints (ckpt_chan.c):
 * the log an input channel records between a subtask's snapshot and the
 * channel's own barrier, and its replay on restore, either as recorded
 * (same channels) or redistributed to another parallelism.
 *
 * One event of a log (little-endian):
 *	u32 kind (enum sl_event_kind)
 *	watermark, idle, active: i64 value
 *	data: u32 n, u32 element size, u32 keyed (0 or 1), u32 arena bytes,
 *	      n elements, n i64 timestamps, n u64 key hashes when keyed,
 *	      the arena
 * Both functions run on the thread of the subtask being snapshotted or
 * restored and touch nothing shared but the batch pool they are given.
 */
#ifndef SLI_CKPT_CHAN_H
#define SLI_CKPT_CHAN_H

#include <stdbool.h>
#include <stdint.h>

#include "sli_core.h"
#include "sli_snap.h"

/* Append @b (a data batch or a watermark/idle/active event) to log @l. Return 0 or -ENOMEM. */
int sli_chan_log_put(struct sli_snap_buf *l, const struct sl_batch *b);

/*
 * Which events of a log the replaying subtask takes. As recorded
 * (!rescale): every event, in order. Rescaled: only data, and of each
 * element only the copy for subtask @index of @parallelism: keyed
 * elements (a recorded key hash, or else the hash of @key when the input
 * is a keyed exchange) go to the owner of their key group; the others to
 * subtask @from mod @parallelism, the old subtask that recorded the log,
 * so a log's elements stay together and in order.
 */
struct sli_chan_route {
	bool rescale;
	unsigned from;				      /* the old subtask that recorded the log */
	unsigned index, parallelism, max_parallelism; /* the replaying subtask */
	const struct sli_keyspec *key;		      /* the input's exchange key, or NULL */
};

/* Takes ownership of @b on success (0); on -errno the caller releases it. */
typedef int (*sli_chan_emit_fn)(void *arg, struct sl_batch *b);

/*
 * Replay @nevents events of one log from @r (a reader whose current
 * section holds them, from its position on) through @emit, data repacked
 * into batches of @pool for elements of type @t, selected by @rt. Add the
 * number of elements emitted to *@kept. Return 0; -EBADMSG with a
 * sentence in @r's error buffer (an unknown event, another element size,
 * a truncated event, a record larger than the pool's batches); -ENOMEM;
 * @emit's error.
 */
int sli_chan_replay(struct sl_snap_reader *r, uint32_t nevents, const struct sl_type *t,
		    const struct sli_chan_route *rt, struct sl_batch_pool *pool,
		    sli_chan_emit_fn emit, void *arg, uint64_t *kept);

#endif
