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
 *     files (sli_ckpt_storage, io_uring) while the subtask goes on. With
 *     checkpoint-snapshot async (the default), operators with large state
 *     (aggregate and general windows, keyed reduce, joins) only copy it
 *     into an image at the barrier; the coordinator serialises the image
 *     (struct sli_ckpt_image below).
 *  4. When every subtask acked n and its files are durable, the
 *     coordinator writes the manifest (the commit point), publishes
 *     `completed` (release) and wakes the workers; sink subtasks then
 *     commit (acquire).
 * End of input: when the first source ends (or the job is stopped), the
 *  coordinator triggers nothing more; the final checkpoint id F is
 *  fixed then, and every subtask snapshots as checkpoint F when it
 *  finishes (END acts as barrier F): first it waits until the
 *  coordinator released the images of its previous snapshot
 *  (sli_ckpt_final_ready()), so that F copies nothing for that one. A
 *  sink subtask waits for F to be complete, commits, and only then
 *  counts as done.
 */
#ifndef SLI_CHECKPOINT_H
#define SLI_CHECKPOINT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_job;
struct sli_exec;
struct sli_subtask;
struct sli_opi;
struct sli_ckpt_storage;
struct sl_snap_writer;
struct sl_batch;

/*
 * A savepoint request of sl_job_savepoint(), on the caller's stack: the
 * caller waits on the channel's cv until the coordinator sets done.
 */
struct sli_sp_req {
	const char *target; /* directory to create savepoint-<id>-<hex> in */
	bool taken, done;   /* the coordinator started it; the result is in */
	int rc;
	char path[PATH_MAX]; /* done, rc 0: the savepoint directory */
	char err[512];	     /* done, rc < 0: why */
};

/*
 * Savepoint requests go to the coordinator through this channel, which
 * lives as long as the job (a request may arrive while no run is going
 * on). Everything is under mu; cv is broadcast when a request is done or
 * the channel opens or closes.
 */
struct sli_sp_chan {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool open;		/* a coordinator runs and still triggers */
	struct sli_sp_req *req; /* the request being served, NULL: none */
	char last[PATH_MAX];	/* the newest savepoint of the last run, "" none */
};

/*
 * The channel's coordinator side (savepoint.c). sli_sp_done(): hand @r
 * its result (@path or @err) and free the channel (_locked: under ch->mu).
 * sli_sp_take(): the request waiting to be served, marked taken, or NULL.
 * sli_sp_open(): a coordinator starts (forget the last run's savepoint) or
 * ends (fail a request not taken). sli_sp_mkpath(): *@out (free() it) =
 * TARGET/savepoint-<id>-<12 hex>, TARGET created when missing; 0 or -errno
 * with a sentence in @err.
 */
void sli_sp_done_locked(struct sli_sp_chan *ch, struct sli_sp_req *r, int rc, const char *path,
			const char *err);
void sli_sp_done(struct sli_sp_chan *ch, struct sli_sp_req *r, int rc, const char *path,
		 const char *err);
struct sli_sp_req *sli_sp_take(struct sli_sp_chan *ch);
void sli_sp_open(struct sli_sp_chan *ch, bool open);
int sli_sp_mkpath(const char *target, int64_t id, char **out, char *err, size_t errlen);

/* The job's checkpoint options (sl_job_set()). */
struct sli_ckpt_opts {
	char *dir;	      /* checkpoint-dir (owned); NULL: checkpoints off */
	int64_t interval_ms;  /* checkpoint-interval; 0: only the final checkpoint */
	int64_t timeout_ms;   /* checkpoint-timeout (default 10 min) */
	int64_t min_pause_ms; /* checkpoint-min-pause (default 0) */
	unsigned tolerable;   /* checkpoint-tolerable-failures (default 0) */
	unsigned retained;    /* checkpoint-retained (default 3) */
	bool at_least_once;   /* checkpoint-mode */
	bool unaligned;	      /* checkpoint-unaligned */
	bool sync_snapshot;   /* checkpoint-snapshot sync (default async) */
	char *restore;	      /* restore: "latest" or a path (owned); NULL: fresh */
	char *io;	      /* checkpoint-io: auto, io_uring, posix (owned) */
	const struct sli_ckpt_storage *storage; /* sl_job_use_checkpoint_storage() */
	char *savepoint_dir;	 /* savepoint-dir: sl_job_savepoint()'s default target */
	char *savepoint_on_stop; /* savepoint-on-stop: a stop's final checkpoint goes here */
	struct sli_sp_chan sp;	 /* not an option: the savepoint channel, job-long */
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
	/* Copy-on-write window snapshots (window.c): bytes tasks copied, arrays they moved. */
	_Atomic uint64_t cow_task_bytes, cow_retired;
	/* In-flight elements restored from channel state (restore_channels()). */
	_Atomic uint64_t inflight_restored, inflight_rescaled, inflight_rekeyed;
	/* Asynchronous snapshots serialised on the task after a failed copy (snapshot_subtask()).
	 */
	_Atomic uint64_t sync_fallbacks;
	/* The final checkpoint: subtasks whose snapshot waited, its longest pause. */
	_Atomic uint64_t final_waits, final_max_pause_ns;
	/* The most the coordinator kept for reuse between checkpoints (drop_waiting()). */
	_Atomic uint64_t max_kept_bytes;
};

void sli_ckpt_opts_init(struct sli_ckpt_opts *o);
void sli_ckpt_opts_free(struct sli_ckpt_opts *o);
/* sl_job_set() for the checkpoint keys: 0, -EINVAL (with a sentence), or 1: not ours. */
int sli_ckpt_set_opt(struct sl_job *job, const char *key, const char *value, char *errbuf,
		     size_t errlen);

/*
 * Asynchronous snapshots (checkpoint-snapshot async). At the barrier an
 * operator freezes its state into an image (a copy the task makes: its
 * pause), and the checkpoint coordinator serialises the image into the
 * snapshot's format later, while the task goes on. The image is the
 * operator's business; the coordinator sees it through this vtable:
 *   write  serialise the image into @w, its operator section first
 *          (exactly what the synchronous snapshot writes), on any thread;
 *   put    drop the checkpoint's reference (after write, or when the
 *          checkpoint is abandoned).
 * The image must not point at memory the task may write after the
 * barrier: the coordinator reads it without synchronising with the task
 * beyond the ack (a mutex).
 */
struct sli_ckpt_image_ops {
	int (*write)(const void *img, struct sl_snap_writer *w);
	void (*put)(void *img);
};

struct sli_ckpt_image {
	const struct sli_ckpt_image_ops *ops;
	void *img;
};

/* An operator image waiting for the coordinator, and what its entry in the task file names. */
struct sli_ckpt_defer {
	struct sli_ckpt_defer *next;
	struct sli_ckpt_image im;
	const char *name; /* the node's (it lives as long as the job) */
	uint32_t index, parallelism, maxp;
};

/*
 * Helpers for operator images (ops.c, join.c, window_gen.c).
 *
 * struct sli_img heads an image. refs counts its holders: the operator,
 * which keeps its last image to refill it at the next barrier (the
 * buffers are already faulted in), and each checkpoint it was handed to
 * (until serialised or abandoned). Only the operator takes references.
 * sli_img_reuse() gives the operator the image to fill: its last one when
 * no checkpoint holds it any more, else a new zeroed one of @size bytes
 * (the old one is let go: the checkpoint holding it frees it);
 * @destroy frees an image and its buffers. NULL: out of memory.
 * sli_img_hand() takes the checkpoint's reference before the operator
 * hands the image over (sli_ckpt_image); sli_img_put() drops one.
 */
struct sli_img {
	_Atomic uint32_t refs;
	void (*destroy)(struct sli_img *img);
};

void *sli_img_reuse(struct sli_img **slot, size_t size, void (*destroy)(struct sli_img *));
void sli_img_hand(struct sli_img *img);
void sli_img_put(void *img);

/*
 * A growable image buffer: sli_img_room() makes it hold @n bytes (25%
 * headroom; the contents are not kept), sli_img_copy() copies @n bytes
 * into it. 0 or -ENOMEM. Test hook: with SLUICE_FREEZE_ENOMEM=N in the
 * environment, every Nth call of sli_img_room() in the process fails
 * (sli_fault.h; counted by sli_img_faults()), so that the synchronous
 * fallback of a failed copy is tested.
 */
struct sli_img_buf {
	void *p;
	size_t cap;
};

int sli_img_room(struct sli_img_buf *b, size_t n);
int sli_img_copy(struct sli_img_buf *b, const void *src, size_t n);
void sli_img_buf_free(struct sli_img_buf *b);
unsigned long sli_img_faults(void);

/* Per-subtask checkpoint state (in struct sli_subtask). */
struct sli_ckpt_sub {
	int64_t aligning;  /* barrier being aligned, 0: none */
	unsigned arrived;  /* channels that delivered it */
	int64_t last;	   /* newest checkpoint this subtask snapshotted */
	int64_t committed; /* sinks: newest checkpoint committed */
	bool has_2pc;	   /* the chain ends in a two-phase-commit sink */
	bool prio;	   /* unaligned: poll the inputs' announced barriers */
	bool final_done;   /* snapshotted as the final checkpoint */
	bool final_waited; /* the final snapshot waited for img_released (counted once) */
	/*
	 * The newest checkpoint whose ack handed operator images to the
	 * coordinator (the task's), and the newest whose images the
	 * coordinator released (it stores, the task loads): the final
	 * snapshot waits until they are equal (sli_ckpt_final_ready()).
	 */
	int64_t img_handed;
	_Atomic int64_t img_released;
	/* Unaligned: the snapshot taken at the first barrier, acked once all arrived. */
	uint8_t *pend;
	size_t pend_len;
	uint32_t pend_nent;
	struct sli_ckpt_defer *pend_defer;
	struct sl_snap_writer *w; /* [task->nchain], lazily */
	/* Restored in-flight data of another parallelism, fed to the chain first. */
	struct sli_ckpt_inj *inj;
	unsigned ninj, inj_pos, capinj;
	bool capped;	/* wm_cap is set: the chain's restored watermarks are at most it */
	int64_t wm_cap; /* the lowest watermark the replayed channels began recording at */
};

/* A batch of rescaled in-flight data for chain operator @op, on its input side @input. */
struct sli_ckpt_inj {
	struct sl_batch *b;
	unsigned op, input;
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
/*
 * Feed the next batch of restored, rescaled in-flight data (st->ck.inj,
 * while inj_pos < ninj) to its operator. The worker calls it before it
 * takes barriers or reads rings, so no checkpoint cuts the replay.
 * Return what the operator returned (0 or -errno after sli_fail()).
 */
int sli_ckpt_inject(struct sli_subtask *st);

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
/*
 * Unaligned checkpoints: snapshot at once when an input announced a
 * barrier ahead of its ring (st->ck.prio set). Return 0 or -errno.
 */
int sli_ckpt_prio_poll(struct sli_subtask *st);
/*
 * Unaligned checkpoints: event @b arrives on input channel @c, which is
 * recording (before its barrier, after the subtask's snapshot): append it
 * to the channel state. Return 0 or -errno (after sli_fail()).
 */
int sli_ckpt_record(struct sli_subtask *st, unsigned c, const struct sl_batch *b);
/* Free a subtask's channel logs and replay batches (teardown). */
void sli_ckpt_sub_free(struct sli_subtask *st);
/* An input channel ended: an alignment may be complete. */
int sli_ckpt_channel_ended(struct sli_subtask *st);
/*
 * The subtask finished its input (end_subtask()), before anything else
 * of its end: ack a pending unaligned snapshot; a source fixes the final
 * checkpoint's id and sends a barrier triggered before its end first.
 * Called once. Return 0 or -errno (after sli_fail()).
 */
int sli_ckpt_subtask_ending(struct sli_subtask *st);
/*
 * May the subtask take its final snapshot now? Not while the coordinator
 * still reads images of an earlier snapshot of it: the new one would copy
 * or serialise the whole state on the task (sli_cow_finish(), the
 * keyed table's -EBUSY). end_subtask() waits, processing nothing, and the
 * coordinator wakes the worker when it released them.
 */
bool sli_ckpt_final_ready(struct sli_subtask *st);
/* Take the final snapshot (end_subtask(), after the chain ended, before END goes on). */
int sli_ckpt_subtask_end(struct sli_subtask *st);
/*
 * A sink chain commits what newly completed checkpoints cover. Return
 * true when the subtask must still wait for a completion (its final).
 */
bool sli_ckpt_sink_poll(struct sli_subtask *st);

#endif /* SLI_CHECKPOINT_H */
