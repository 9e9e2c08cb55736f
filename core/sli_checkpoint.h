/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_checkpoint.h — checkpoints inside the runtime (checkpoint.c): the
 * job's options, the coordinator thread, what a subtask does at a
 * barrier, and restore.
 *
 * Protocol (asynchronous barrier snapshotting, Flink's):
 *  1. The coordinator thread picks the next id n and publishes it in
 *     `trigger` (release). Each source subtask sees it before its next
 *     poll (acquire), snapshots its position and watermark generator,
 *     sends barrier n on every output after the data before it, and acks.
 *  2. A task with several input channels aligns (exactly-once): a channel
 *     that delivered barrier n is not read again until every open channel
 *     has; then the chain's operators snapshot (sinks pre-commit), the
 *     barrier goes downstream, the channels reopen. At-least-once mode
 *     does not block channels.
 *  3. A snapshot is serialised into memory on the subtask's thread (its
 *     pause, measured), then handed to the coordinator, which writes the
 *     files (sli_ckpt_storage, io_uring) while the subtask goes on.
 *  4. When every subtask acked n and its files are durable, the
 *     coordinator writes the manifest (the commit point), publishes
 *     `completed` (release) and wakes the workers; sink subtasks then
 *     commit (acquire).
 * End of input: when the first source ends (or the job is stopped), the
 *  coordinator triggers nothing more; the final checkpoint id F is
 *  fixed then, and every subtask snapshots as checkpoint F when it
 *  finishes (END acts as barrier F). A sink subtask waits for F to be
 *  complete, commits, and only then counts as done.
 */
#ifndef SLI_CHECKPOINT_H
#define SLI_CHECKPOINT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct sl_job;
struct sli_exec;
struct sli_subtask;
struct sli_opi;
struct sli_ckpt_storage;
struct sl_snap_writer;

/* The job's checkpoint options (sl_job_set()). */
struct sli_ckpt_opts {
	char *dir;	      /* checkpoint-dir (owned); NULL: checkpoints off */
	int64_t interval_ms;  /* checkpoint-interval; 0: only the final checkpoint */
	int64_t timeout_ms;   /* checkpoint-timeout (default 10 min) */
	int64_t min_pause_ms; /* checkpoint-min-pause (default 0) */
	unsigned tolerable;   /* checkpoint-tolerable-failures (default 0) */
	unsigned retained;    /* checkpoint-retained (default 3) */
	bool at_least_once;   /* checkpoint-mode */
	char *restore;	      /* restore: "latest" or a path (owned); NULL: fresh */
	char *io;	      /* checkpoint-io: auto, io_uring, posix (owned) */
	const struct sli_ckpt_storage *storage; /* sl_job_use_checkpoint_storage() */
};

/*
 * What sl_job_checkpoint_stats() reports, over every run of the job
 * (restarts included). Written by the coordinator and the workers,
 * read by any thread: relaxed, each a counter or a gauge on its own.
 */
struct sli_ckpt_counters {
	_Atomic uint64_t completed, failed, last_bytes, last_duration_ns, max_duration_ns;
	_Atomic uint64_t snapshots, total_pause_ns, max_pause_ns;
	_Atomic int64_t last_id, restored_id;
};

void sli_ckpt_opts_init(struct sli_ckpt_opts *o);
void sli_ckpt_opts_free(struct sli_ckpt_opts *o);
/* sl_job_set() for the checkpoint keys: 0, -EINVAL (with a sentence), or 1: not ours. */
int sli_ckpt_set_opt(struct sl_job *job, const char *key, const char *value, char *errbuf,
		     size_t errlen);

/* Per-subtask checkpoint state (in struct sli_subtask). */
struct sli_ckpt_sub {
	int64_t aligning;	  /* barrier being aligned, 0: none */
	unsigned arrived;	  /* channels that delivered it */
	int64_t last;		  /* newest checkpoint this subtask snapshotted */
	int64_t committed;	  /* sinks: newest checkpoint committed */
	bool has_2pc;		  /* the chain ends in a two-phase-commit sink */
	bool final_done;	  /* snapshotted as the final checkpoint */
	struct sl_snap_writer *w; /* [task->nchain], lazily */
};

/*
 * Run-time: before setup (validate the job for checkpoints, load the
 * checkpoint to restore, recover sinks), the coordinator's start and
 * stop, and the hooks exec.c calls. All return 0 or -errno with a
 * sentence in @errbuf (or, from workers, after sli_fail()).
 */
int sli_ckpt_prepare(struct sli_exec *x, char *errbuf, size_t errlen);
int sli_ckpt_start(struct sli_exec *x, char *errbuf, size_t errlen);
void sli_ckpt_stop(struct sli_exec *x);
void sli_ckpt_free(struct sli_exec *x);

/* Restore one operator instance, after it opened, on its worker's thread. */
int sli_ckpt_restore_op(struct sli_opi *op);

/* Sources: a triggered barrier is due before the next poll. */
bool sli_ckpt_due(const struct sli_subtask *st);
/* Sources: snapshot and emit the due barrier (sli_ckpt_due()). */
int sli_ckpt_source(struct sli_subtask *st);
/* A source reached its end (or a stop): fix the final id, emit a due barrier first. */
int sli_ckpt_source_end(struct sli_subtask *st);
/*
 * Barrier @id arrived on input channel @c. Return 0 or -errno. When it
 * completes the alignment, the subtask snapshots and forwards it.
 */
int sli_ckpt_barrier(struct sli_subtask *st, unsigned c, int64_t id);
/* An input channel ended: an alignment may be complete. */
int sli_ckpt_channel_ended(struct sli_subtask *st);
/* The subtask finished its input (end_subtask, before END goes on). */
int sli_ckpt_subtask_end(struct sli_subtask *st);
/*
 * A sink chain commits what newly completed checkpoints cover. Return
 * true when the subtask must still wait for a completion (its final).
 */
bool sli_ckpt_sink_poll(struct sli_subtask *st);

#endif /* SLI_CHECKPOINT_H */
