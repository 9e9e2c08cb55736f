/* SPDX-License-Identifier: Apache-2.0 */
/*
 * checkpoint.c — checkpoints in the runtime: options, the coordinator
 * thread, barriers and alignment, snapshots of subtasks, the manifest,
 * and restore (see sli_checkpoint.h for the protocol).
 *
 * Snapshot file of one subtask ("t<task>-<index>.snap", the payload the
 * store wraps with its header and CRC32C):
 *	"SLTASK01", u32 number of entries, then per entry
 *	u32 name length, name, u32 kind (ENT_*), u32 subtask index,
 *	u32 parallelism, u64 length, the sections (sli_snap.h's form)
 * Manifest (_metadata), text, one item per line:
 *	sluice-checkpoint 2			(format version; 1 is still read)
 *	job NAME
 *	id N
 *	kind checkpoint|savepoint
 *	max-parallelism M
 *	exactly-once-sinks 0|1
 *	op NAME KIND PARALLELISM		(every operator of the job)
 *	state OP NAME KIND			(each state of OP: node_states(); v2)
 *	file NAME				(every subtask's file)
 *	end
 * Names are escaped: bytes <= ' ', '%' and >= 0x7f as %XX. A restore
 * reads the manifest and checks it against the job (rs_compatible())
 * before it opens any snapshot file. Savepoints (savepoint.c) are
 * checkpoints of the same id sequence written to the user's directory;
 * see "Savepoint markers" for what they leave in the checkpoint directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sluice/sl_error.h>
#include <sluice/sl_log.h>

#include "sli_checkpoint.h"
#include "sli_ckpt.h"
#include "sli_ckpt_chan.h"
#include "sli_exec.h"
#include "sli_fault.h"
#include "sli_snap.h"

/* ENT_CHAN: channel state before ENT_CHANS (still read); see "Unaligned checkpoints". */
enum { ENT_OP = 0, ENT_WMGEN = 1, ENT_CHAN = 2, ENT_CHANS = 3 };

#define TASK_MAGIC	 "SLTASK01"
#define MANIFEST_MAGIC	 "sluice-checkpoint "
#define MANIFEST_VERSION 2 /* 1: before state lines; still read */

/* ------------------------------------------------------------- options */

void sli_ckpt_opts_init(struct sli_ckpt_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout_ms = 10 * 60 * 1000;
	o->retained = 3;
	pthread_mutex_init(&o->sp.mu, NULL);
	pthread_cond_init(&o->sp.cv, NULL);
}

void sli_ckpt_opts_free(struct sli_ckpt_opts *o)
{
	free(o->dir);
	free(o->restore);
	free(o->io);
	free(o->savepoint_dir);
	free(o->savepoint_on_stop);
	o->dir = o->restore = o->io = o->savepoint_dir = o->savepoint_on_stop = NULL;
	pthread_mutex_destroy(&o->sp.mu);
	pthread_cond_destroy(&o->sp.cv);
}

static int set_str(char **field, const char *value, char *errbuf, size_t errlen)
{
	char *d = strdup(value);

	if (d == NULL)
		return sl_errbuf_set(errbuf, errlen, -ENOMEM, "out of memory");
	free(*field);
	*field = d;
	return 0;
}

int sli_ckpt_set_opt(struct sl_job *job, const char *key, const char *value, char *errbuf,
		     size_t errlen)
{
	struct sli_ckpt_opts *o = &job->ckpt;
	static const struct {
		const char *key;
		int64_t min;
		size_t off;
	} durations[] = {
		{ "checkpoint-interval", 0, offsetof(struct sli_ckpt_opts, interval_ms) },
		{ "checkpoint-timeout", 1, offsetof(struct sli_ckpt_opts, timeout_ms) },
		{ "checkpoint-min-pause", 0, offsetof(struct sli_ckpt_opts, min_pause_ms) },
	};
	char *end;
	unsigned long v;

	for (size_t i = 0; i < SL_ARRAY_SIZE(durations); i++) {
		if (strcmp(key, durations[i].key) == 0)
			return sli_set_duration_opt(key, value, durations[i].min,
						    (int64_t *)((char *)o + durations[i].off),
						    errbuf, errlen);
	}
	if (!strcmp(key, "checkpoint-tolerable-failures") || !strcmp(key, "checkpoint-retained")) {
		bool retained = key[11] == 'r';

		errno = 0;
		v = value[0] >= '0' && value[0] <= '9' ? strtoul(value, &end, 10) : ULONG_MAX;
		if (errno || v == ULONG_MAX || *end != '\0' || v > 1000000 || (retained && v == 0))
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "bad value '%s' for option '%s': expected an integer "
					     "from %d to 1000000",
					     value, key, retained ? 1 : 0);
		*(retained ? &o->retained : &o->tolerable) = (unsigned)v;
		return 0;
	}
	if (!strcmp(key, "checkpoint-mode")) {
		if (strcmp(value, "exactly-once") && strcmp(value, "at-least-once"))
			return sl_errbuf_set(
			    errbuf, errlen, -EINVAL,
			    "bad value '%s' for option 'checkpoint-mode': expected "
			    "exactly-once or at-least-once",
			    value);
		o->at_least_once = value[0] == 'a';
		return 0;
	}
	if (!strcmp(key, "checkpoint-unaligned")) {
		if (strcmp(value, "true") && strcmp(value, "false"))
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "bad value '%s' for option 'checkpoint-unaligned': "
					     "expected true or false",
					     value);
		o->unaligned = value[0] == 't';
		return 0;
	}
	if (!strcmp(key, "checkpoint-snapshot")) {
		if (strcmp(value, "async") && strcmp(value, "sync"))
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "bad value '%s' for option 'checkpoint-snapshot': "
					     "expected async or sync",
					     value);
		o->sync_snapshot = value[0] == 's';
		return 0;
	}
	if (!strcmp(key, "checkpoint-io")) {
		enum sli_ckpt_fault fk;
		uint64_t fn;

		if (strcmp(value, "auto") && strcmp(value, "io_uring") && strcmp(value, "posix") &&
		    sli_ckpt_fault_parse(value, &fk, &fn) < 0)
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "bad value '%s' for option 'checkpoint-io': expected "
					     "auto, io_uring, posix or (tests) fault:KIND@N with "
					     "KIND eio, enospc, fsync or short",
					     value);
		return set_str(&o->io, value, errbuf, errlen);
	}
	if (!strcmp(key, "checkpoint-dir") || !strcmp(key, "restore")) {
		if (value[0] == '\0')
			return sl_errbuf_set(
			    errbuf, errlen, -EINVAL, "bad value '' for option '%s': expected a %s",
			    key, key[0] == 'r' ? "checkpoint path or 'latest'" : "directory");
		return set_str(key[0] == 'r' ? &o->restore : &o->dir, value, errbuf, errlen);
	}
	/* Savepoints (sl_job_savepoint(), a stop's final checkpoint). */
	if (!strcmp(key, "savepoint-dir") || !strcmp(key, "savepoint-on-stop")) {
		if (value[0] == '\0')
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "bad value '' for option '%s': expected a directory",
					     key);
		return set_str(key[10] == 'd' ? &o->savepoint_dir : &o->savepoint_on_stop, value,
			       errbuf, errlen);
	}
	return 1;
}

/* --------------------------------------------------------- run state */

struct ack {
	int64_t id;
	unsigned sub; /* global subtask id */
	uint8_t *buf;
	size_t len;
	struct sli_ckpt_defer *defer; /* operators still to serialise into buf */
};

struct inflight {
	int64_t id;
	struct sli_ckpt_out *out;
	unsigned nacked;
	uint64_t start_ns, bytes;
	bool final;
	char *sp_path;		/* a savepoint: its directory (owned); NULL: a checkpoint */
	struct sli_sp_req *req; /* the sl_job_savepoint() it serves, or NULL */
	/* files waiting to be written: names and payloads, freed after the write */
	char **names;
	struct iovec *iov;
	unsigned nwait, capwait;
};

/* An entry of a restored checkpoint: one operator (or generator) of one old subtask. */
struct rs_entry {
	char *name;
	uint32_t kind, index, parallelism;
	struct sli_snap_sec *secs;
	unsigned nsecs;
	const char *file;
};

struct rs_op {
	char *name;
	char kind[64];
	unsigned parallelism;
};

struct sli_ckpt_run {
	struct sli_exec *x;
	const struct sli_ckpt_opts *o;
	const struct sli_ckpt_storage *io;
	struct sli_sp_chan *sp; /* the job's savepoint channel */
	struct sli_ckpt_store *store;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* under mu */
	struct ack *acks;
	unsigned nacks, capacks;
	bool ended; /* a source ended or the job stops: trigger nothing more */
	bool quit;
	/* published by one thread, read by others (see each store and load) */
	_Atomic int64_t trigger, completed, final_id;
	/* The savepoint in flight (0: none): always aligned, like Flink's. */
	_Atomic int64_t sp_id;
	/* the coordinator thread's */
	int64_t next_id;
	struct inflight fl[2];
	unsigned nfl;
	unsigned failures;
	uint64_t last_trigger_ns, last_done_ns;
	bool has_2pc;
	/*
	 * The writer the coordinator serialises frozen operators into, reset
	 * rather than freed between them: its section buffers keep their
	 * capacity (and pages), so a large state is not faulted in again at
	 * every checkpoint.
	 */
	struct sl_snap_writer dw;
	/*
	 * The largest task file buffer written so far (iov_len bytes at
	 * least), kept for the next defer_write() for the same reason. Both
	 * are kept only up to keep_max bytes (CKPT_KEEP_MAX).
	 */
	struct iovec spare;
	size_t keep_max;
	/* The file buffers allocated by file_buf_new(), live ones. */
	struct fbuf {
		uint8_t *p; /* the payload: FBUF_ROOM bytes into the block */
		size_t cap;
	} * fbufs;
	unsigned nfbufs, capfbufs;
	/* restore */
	int64_t restored;
	char *rs_path;
	struct rs_entry *ents;
	unsigned nents;
	struct rs_op *rops;
	unsigned nrops;
	void **files;
	char **file_names;
	unsigned nfiles;
	struct sli_ckpt_counters *cnt; /* the job's */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool x_failed(const struct sli_exec *x)
{
	return atomic_load_explicit(&((struct sli_exec *)x)->failed, memory_order_relaxed) != 0;
}

/* Fail the job from a thread that is not an operator's (the coordinator). */
static void fail_job(struct sli_exec *x, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_job(struct sli_exec *x, int rc, const char *fmt, ...)
{
	char msg[2 * SLI_ERRLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sli_fail_exec(x, rc, msg);
}

static bool is_2pc_sink(const struct sli_node *n)
{
	return n->kind == SLI_SINK && n->fn.sink->pre_commit != NULL;
}

static unsigned global_id(const struct sli_subtask *st)
{
	return sli_plan_subtask_id(&st->w->x->job->plan, st->task->id, st->index);
}

/* ------------------------------------------------------------ escaping */

static void put_name(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == '%' || *p >= 0x7f)
			fprintf(f, "%%%02X", *p);
		else
			fputc(*p, f);
}

/* Unescape @s in place. Return 0 or -EINVAL. */
static int unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s != '%') {
			*o++ = *s;
			continue;
		}
		unsigned v;
		if (sscanf(s + 1, "%2x", &v) != 1 || s[1] == '\0' || s[2] == '\0')
			return -EINVAL;
		*o++ = (char)v;
		s += 2;
	}
	*o = '\0';
	return 0;
}

/* ---------------------------------------------------- snapshot a subtask */

static int wmgen_snapshot(const struct sli_wmgen *g, struct sl_snap_writer *w)
{
	int rc = sl_snap_section(w, SL_SNAP_OP);

	if (rc == 0)
		rc = sl_snap_put_u32(w, g->n);
	if (rc == 0)
		rc = sl_snap_put_i64(w, g->out);
	for (uint32_t i = 0; i < g->n && rc == 0; i++) {
		const struct sli_wmsplit *s = &g->s[i];

		rc = sl_snap_put_i64(w, s->max_ts);
		if (rc == 0)
			rc = sl_snap_put_i64(w, s->wm);
		if (rc == 0)
			rc = sl_snap_put_u64(w, s->count);
		if (rc == 0)
			rc = sl_snap_put_u32(w, s->ended);
	}
	return rc;
}

static int op_snapshot(struct sli_opi *op, int64_t id, struct sl_snap_writer *w)
{
	const struct sli_node *n = op->node;
	int rc = sl_snap_section(w, SL_SNAP_OP);

	if (rc < 0)
		return rc;
	switch (n->kind) {
	case SLI_SOURCE:
		return n->fn.source->snapshot(op->state, w);
	case SLI_SINK:
		return n->fn.sink->pre_commit ? n->fn.sink->pre_commit(op->state, id, w) : 0;
	case SLI_WINDOW:
		return sli_win_snapshot(op, w);
	case SLI_REDUCE:
		return sli_reduce_snapshot(op, w);
	case SLI_WINDOW_JOIN:
	case SLI_INTERVAL_JOIN:
		return sli_join_snapshot(op, w);
	case SLI_WINDOW_GEN:
		return sli_wgen_snapshot(op, w);
	case SLI_KEYED_PROCESS:
		return sli_keyed_snapshot(op, w);
	default:
		return 0; /* stateless (checked by sli_ckpt_prepare) */
	}
}

static int blob_entry(struct sli_snap_buf *b, const char *name, uint32_t kind, uint32_t index,
		      uint32_t parallelism, const struct sl_snap_writer *w, uint32_t *nent)
{
	uint32_t hdr[4] = { (uint32_t)strlen(name), kind, index, parallelism };
	uint64_t len = sli_snap_writer_size(w);
	int rc;

	if (len == 0)
		return 0;
	rc = sli_snap_buf_put(b, &hdr[0], 4);
	if (rc == 0)
		rc = sli_snap_buf_put(b, name, hdr[0]);
	if (rc == 0)
		rc = sli_snap_buf_put(b, &hdr[1], 12);
	if (rc == 0)
		rc = sli_snap_buf_put(b, &len, 8);
	if (rc == 0)
		rc = sli_snap_buf_reserve(b, len);
	if (rc < 0)
		return rc;
	sli_snap_writer_emit(w, b->p + b->len);
	b->len += len;
	(*nent)++;
	return 0;
}

static void defer_free(struct sli_ckpt_defer *d)
{
	while (d != NULL) {
		struct sli_ckpt_defer *next = d->next;

		d->im.ops->put(d->im.img);
		free(d);
		d = next;
	}
}

/* Freeze @op into @im. 0; -ENOMEM (no copy); 1: @op's kind has no image. */
static int freeze(struct sli_opi *op, struct sli_ckpt_image *im)
{
	switch (op->node->kind) {
	case SLI_WINDOW:
		return sli_win_freeze(op, im);
	case SLI_REDUCE:
		return sli_reduce_freeze(op, im);
	case SLI_WINDOW_JOIN:
	case SLI_INTERVAL_JOIN:
		return sli_join_freeze(op, im);
	case SLI_WINDOW_GEN:
		return sli_wgen_freeze(op, im);
	case SLI_KEYED_PROCESS:
		return sli_keyed_freeze(op, im);
	default:
		return 1;
	}
}

/*
 * Freeze operator @op for the coordinator to serialise (pushed on
 * *@list). Return 0; or -ENOMEM or 1 (a kind without an image): the
 * caller serialises it at once.
 */
static int defer_op(struct sli_opi *op, struct sli_ckpt_defer **list)
{
	struct sli_ckpt_image im;
	struct sli_ckpt_defer *d;
	int rc = freeze(op, &im);

	if (rc != 0)
		return rc;
	d = malloc(sizeof(*d));
	if (d == NULL) {
		im.ops->put(im.img);
		return -ENOMEM;
	}
	d->im = im;
	d->name = op->node->name;
	d->index = op->info.index;
	d->parallelism = op->info.parallelism;
	d->maxp = op->info.max_parallelism;
	d->next = *list;
	*list = d;
	return 0;
}

/* ------------------------------------------------- operator image helpers */

void *sli_img_reuse(struct sli_img **slot, size_t size, void (*destroy)(struct sli_img *))
{
	struct sli_img *m = *slot;

	/*
	 * Acquire: pairs with the release half of the checkpoint's decrement
	 * in sli_img_put(): its reads of the image happen before our refill.
	 */
	if (m != NULL && atomic_load_explicit(&m->refs, memory_order_acquire) == 1)
		return m;
	sli_img_put(m); /* a checkpoint still holds it: it frees it */
	*slot = m = calloc(1, size);
	if (m == NULL)
		return NULL;
	atomic_init(&m->refs, 1);
	m->destroy = destroy;
	return m;
}

void sli_img_hand(struct sli_img *img)
{
	/* Relaxed: the image travels to the coordinator through the ack (a mutex). */
	atomic_fetch_add_explicit(&img->refs, 1, memory_order_relaxed);
}

void sli_img_put(void *img)
{
	struct sli_img *m = img;

	/*
	 * Release: our accesses to the image happen before the operator's
	 * refill (its acquire load of refs == 1 in sli_img_reuse()) or
	 * before the last holder's free. Acquire: the last holder frees
	 * after every other holder's accesses (an acquire-release decrement,
	 * not a release one and an acquire fence: ThreadSanitizer does not
	 * model fences).
	 */
	if (m != NULL && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		m->destroy(m);
}

unsigned long sli_img_faults(void)
{
	return sli_faults(&sli_fault_freeze);
}

int sli_img_room(struct sli_img_buf *b, size_t n)
{
	if (sli_fault(&sli_fault_freeze))
		return -ENOMEM;
	if (n > b->cap) {
		size_t c = n + n / 4;
		void *p = malloc(c);

		if (p == NULL)
			return -ENOMEM;
		free(b->p);
		b->p = p;
		b->cap = c;
	}
	return 0;
}

int sli_img_copy(struct sli_img_buf *b, const void *src, size_t n)
{
	int rc = sli_img_room(b, n);

	if (rc == 0 && n > 0)
		memcpy(b->p, src, n);
	return rc;
}

void sli_img_buf_free(struct sli_img_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->cap = 0;
}

/*
 * The coordinator keeps its snapshot writer's buffers and its largest file
 * buffer between checkpoints only up to this many bytes each: reuse saves
 * page faults at moderate state sizes, and the cap keeps it from holding
 * two more copies of a state of gigabytes for the job's lifetime.
 */
#define CKPT_KEEP_MAX ((size_t)128 << 20)

/*
 * The cap of this run: CKPT_KEEP_MAX, or for tests only
 * SLUICE_TEST_CKPT_KEEP_MAX=N (bytes, 0 up to CKPT_KEEP_MAX), so that a
 * test shows the cap at work without hundreds of MiB of state. A value
 * that does not parse is said and ignored.
 */
static size_t keep_max(void)
{
	const char *v = getenv("SLUICE_TEST_CKPT_KEEP_MAX");
	char *end;
	unsigned long long n;

	if (v == NULL)
		return CKPT_KEEP_MAX;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno == 0 && end != v && *end == '\0' && *v != '-' && n <= CKPT_KEEP_MAX)
		return (size_t)n;
	sl_log(SL_LOG_ERROR, "checkpoint",
	       "SLUICE_TEST_CKPT_KEEP_MAX='%s' ignored: expected 0..%zu (bytes)", v, CKPT_KEEP_MAX);
	return CKPT_KEEP_MAX;
}

static size_t writer_capacity(const struct sl_snap_writer *w)
{
	size_t n = w->op.cap;

	if (w->kg != NULL)
		for (uint32_t g = 0; g < w->max_parallelism; g++)
			n += w->kg[g].cap;
	return n;
}

/*
 * The file buffers the coordinator builds (defer_write()) start FBUF_ROOM
 * bytes, the file header's length, past a FBUF_ALIGN boundary: the
 * payload's blocks are then aligned in memory as they are in the file, so
 * the store can write them with O_DIRECT, without a copy into the page
 * cache (state/sli_ckpt_store.h). The tasks' buffers are plain malloc()
 * blocks, so these are remembered (ck->fbufs: a few, one per subtask and
 * checkpoint in flight) and every file buffer is released with
 * file_buf_free().
 */
#define FBUF_ALIGN ((size_t)4096)
#define FBUF_ROOM  ((size_t)16)

/* A file buffer of at least @cap bytes; *@cap its capacity. */
static uint8_t *file_buf_new(struct sli_ckpt_run *ck, size_t *cap)
{
	size_t size = (FBUF_ROOM + *cap + FBUF_ALIGN - 1) / FBUF_ALIGN * FBUF_ALIGN;
	uint8_t *base;

	if (*cap > SIZE_MAX - FBUF_ROOM - FBUF_ALIGN)
		return NULL;
	if (ck->nfbufs == ck->capfbufs) {
		unsigned ncap = ck->capfbufs ? 2 * ck->capfbufs : 8;
		struct fbuf *nf = realloc(ck->fbufs, ncap * sizeof(*nf));

		if (nf == NULL)
			return NULL;
		ck->fbufs = nf;
		ck->capfbufs = ncap;
	}
	base = aligned_alloc(FBUF_ALIGN, size);
	if (base == NULL)
		return NULL;
	*cap = size - FBUF_ROOM;
	ck->fbufs[ck->nfbufs++] = (struct fbuf){ base + FBUF_ROOM, *cap };
	return base + FBUF_ROOM;
}

/*
 * The capacity of @p when it is one of file_buf_new()'s, else 0; when
 * @forget, it leaves ck->fbufs.
 */
static size_t file_buf_ours(struct sli_ckpt_run *ck, const void *p, bool forget)
{
	for (unsigned i = 0; p != NULL && i < ck->nfbufs; i++)
		if (ck->fbufs[i].p == p) {
			size_t cap = ck->fbufs[i].cap;

			if (forget)
				ck->fbufs[i] = ck->fbufs[--ck->nfbufs];
			return cap;
		}
	return 0;
}

/* Free file buffer @p: one of file_buf_new()'s or a task's (malloc()). */
static void file_buf_free(struct sli_ckpt_run *ck, void *p)
{
	if (file_buf_ours(ck, p, true) > 0)
		free((uint8_t *)p - FBUF_ROOM);
	else
		free(p);
}

/* Make room for @n more bytes in @b, one of file_buf_new()'s (or empty): -ENOMEM leaves it. */
static int file_buf_reserve(struct sli_ckpt_run *ck, struct sli_snap_buf *b, size_t n)
{
	size_t cap = b->cap + b->cap / 2;
	uint8_t *p;

	if (n <= b->cap - b->len)
		return 0;
	if (n > SIZE_MAX / 2 - b->len)
		return -ENOMEM;
	cap = cap > b->len + n ? cap : b->len + n;
	if ((p = file_buf_new(ck, &cap)) == NULL)
		return -ENOMEM;
	if (b->len > 0)
		memcpy(p, b->p, b->len);
	file_buf_free(ck, b->p);
	b->p = p;
	b->cap = cap;
	return 0;
}

/*
 * The coordinator: serialise @a's frozen operators and append them to its
 * task file. 0, or -errno and in @why what failed (an operator by name).
 */
static int defer_write(struct sli_ckpt_run *ck, struct ack *a, char *why, size_t whylen)
{
	struct sli_snap_buf b = { a->buf, a->len, a->len };
	struct sl_snap_writer *w = &ck->dw;
	uint32_t nent;
	int rc = 0;

	if (a->defer != NULL) {
		/* The task's header into a buffer of ours: the spare when it fits (its pages are
		 * in). */
		struct sli_snap_buf t = { NULL, 0, 0 };

		if (ck->spare.iov_len >= a->len) {
			t = (struct sli_snap_buf){ ck->spare.iov_base, 0,
						   file_buf_ours(ck, ck->spare.iov_base, false) };
			ck->spare = (struct iovec){ NULL, 0 };
		}
		if (file_buf_reserve(ck, &t, a->len) < 0) {
			snprintf(why, whylen, "out of memory for a task file");
			return -ENOMEM; /* t is empty: the spare fits */
		}
		memcpy(t.p, a->buf, a->len);
		t.len = a->len;
		free(a->buf);
		a->buf = t.p;
		b = t;
	}
	memcpy(&nent, b.p + 8, 4);
	for (struct sli_ckpt_defer *d = a->defer; d != NULL && rc == 0; d = d->next) {
		if (w->max_parallelism != d->maxp) {
			sli_snap_writer_free(w);
			sli_snap_writer_init(w, d->maxp);
		}
		sli_snap_writer_reset(w);
		rc = d->im.ops->write(d->im.img, w);
		if (rc < 0)
			snprintf(why, whylen,
				 "operator '%s' (subtask %u): %s while serialising its state",
				 d->name, d->index,
				 rc == -ENOMEM ? "out of memory" : sl_strerror(rc));
		/* Room for blob_entry() here: its realloc() would lose the alignment. */
		if (rc == 0)
			rc = file_buf_reserve(
			    ck, &b, 4 + strlen(d->name) + 12 + 8 + sli_snap_writer_size(w));
		if (rc == 0)
			rc = blob_entry(&b, d->name, ENT_OP, d->index, d->parallelism, w, &nent);
	}
	if (writer_capacity(w) > ck->keep_max)
		sli_snap_writer_free(w); /* zeroed: initialised again at its next use */
	memcpy(b.p + 8, &nent, 4);
	a->buf = b.p;
	a->len = b.len;
	return rc;
}

/*
 * The coordinator dropped its references to the images subtask @sub
 * handed with checkpoint @id: the subtask may take its final snapshot
 * (sli_ckpt_final_ready()); wake its worker, which may wait for this.
 */
static void images_released(struct sli_ckpt_run *ck, int64_t id, unsigned sub)
{
	struct sli_subtask *st = &ck->x->subtasks[sub];

	/*
	 * Release: pairs with the acquire load in sli_ckpt_final_ready().
	 * The images synchronise their own memory (their reference counts
	 * and segment states); this orders our puts before the task's next
	 * freeze, so that it finds them released.
	 */
	atomic_store_explicit(&st->ck.img_released, id, memory_order_release);
	sli_worker_wake(st->w);
}

/* The task: hand snapshot @id of subtask @sub (its file, its images) to the coordinator. */
static void ack(struct sli_ckpt_run *ck, int64_t id, unsigned sub, uint8_t *buf, size_t len,
		struct sli_ckpt_defer *defer)
{
	if (defer != NULL)
		ck->x->subtasks[sub].ck.img_handed = id;
	pthread_mutex_lock(&ck->mu);
	if (ck->nacks == ck->capacks) {
		unsigned cap = ck->capacks ? 2 * ck->capacks : 16;
		struct ack *na = realloc(ck->acks, cap * sizeof(*na));
		if (na == NULL) {
			pthread_mutex_unlock(&ck->mu);
			free(buf);
			defer_free(defer);
			images_released(ck, id, sub);
			fail_job(ck->x, -ENOMEM, "out of memory acknowledging checkpoint %" PRId64,
				 id);
			return;
		}
		ck->acks = na;
		ck->capacks = cap;
	}
	ck->acks[ck->nacks++] = (struct ack){ id, sub, buf, len, defer };
	pthread_cond_signal(&ck->cv);
	pthread_mutex_unlock(&ck->mu);
}

/* Raise gauge @g to @v (relaxed: a statistic, ordering nothing). */
static void counter_max(_Atomic uint64_t *g, uint64_t v)
{
	uint64_t cur = atomic_load_explicit(g, memory_order_relaxed);

	while (v > cur && !atomic_compare_exchange_weak_explicit(g, &cur, v, memory_order_relaxed,
								 memory_order_relaxed))
		;
}

/*
 * Unaligned checkpoints, barrier @id: besides the barrier in the ring
 * (the cut in the channel's data), announce it to each output channel's
 * consumer ahead of the ring, so that it snapshots at once, however much
 * data waits in the ring or in our backlogs (Flink's priority event: the
 * barrier overtakes in-flight data, which becomes channel state). Not
 * for savepoints, which stay aligned.
 */
static void announce(struct sli_subtask *st, int64_t id)
{
	struct sli_ckpt_run *ck = st->w->x->ck;

	/* Relaxed: see the store in trigger_one(); barrier @id came after it. */
	if (!ck->o->unaligned || id == atomic_load_explicit(&ck->sp_id, memory_order_relaxed))
		return;
	for (unsigned o = 0; o < st->nout; o++)
		for (unsigned t = 0; t < st->out[o].ntargets; t++) {
			struct sli_chan *ch = st->out[o].t[t].chan;

			/*
			 * Relaxed: only the id travels here (loaded relaxed in
			 * sli_ckpt_prio_poll()); the data before the barrier is
			 * ordered by the ring itself, whichever side of the
			 * consumer's snapshot it lands on.
			 */
			atomic_store_explicit(&ch->prio, id, memory_order_relaxed);
			if (ch->consumer != st->w)
				sli_worker_wake(ch->consumer);
		}
}

/*
 * Snapshot the chain of @st as checkpoint @id: flush what the chain
 * holds downstream (data before the barrier), snapshot each operator,
 * serialise, hand the file to the coordinator, then, when @forward, send
 * the barrier on. Operators with an image (windows, general windows,
 * keyed reduce, joins) are only frozen here, unless checkpoint-snapshot
 * is sync or the copy fails: the coordinator serialises them (the task's
 * pause is the copy). Return 0 or -errno after sli_fail().
 */
static int snapshot_subtask(struct sli_subtask *st, int64_t id, bool forward, bool defer)
{
	struct sli_ckpt_run *ck = st->w->x->ck;
	struct sli_snap_buf b = { 0 };
	struct sli_ckpt_defer *dl = NULL;
	uint32_t nent = 0;
	uint64_t t0 = mono_ns(), pause;
	int rc;

	rc = sli_flush_subtask(st);
	if (rc < 0)
		goto fail;
	if (st->ck.w == NULL) {
		st->ck.w = calloc(st->task->nchain + 1, sizeof(*st->ck.w));
		if (st->ck.w == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
		for (unsigned k = 0; k <= st->task->nchain; k++)
			sli_snap_writer_init(&st->ck.w[k], st->ops[0].info.max_parallelism);
	}
	rc = sli_snap_buf_put(&b, TASK_MAGIC, 8);
	if (rc == 0)
		rc = sli_snap_buf_put(&b, &nent, 4); /* patched below */
	for (unsigned k = 0; k < st->task->nchain && rc == 0; k++) {
		struct sli_opi *op = &st->ops[k];
		struct sl_snap_writer *w = &st->ck.w[k];

		if (!ck->o->sync_snapshot) {
			int drc = defer_op(op, &dl);

			if (drc == 0)
				continue;
			/*
			 * Relaxed: a statistic. A failed copy (out of memory, or
			 * -EBUSY: the state's previous copy-on-write snapshot is
			 * still being read) is serialised here instead.
			 */
			if (drc < 0)
				atomic_fetch_add_explicit(&ck->cnt->sync_fallbacks, 1,
							  memory_order_relaxed);
		}
		sli_snap_writer_reset(w);
		op->errbuf[0] = '\0';
		rc = op_snapshot(op, id, w);
		if (rc < 0) {
			sli_fail(op, rc, "checkpoint %" PRId64 ": %s", id,
				 op->errbuf[0] ? op->errbuf : sl_strerror(rc));
			free(b.p);
			defer_free(dl);
			return rc;
		}
		rc = blob_entry(&b, op->node->name, ENT_OP, op->info.index, op->info.parallelism, w,
				&nent);
	}
	if (rc == 0 && st->has_gen) {
		struct sl_snap_writer *w = &st->ck.w[st->task->nchain];

		sli_snap_writer_reset(w);
		rc = wmgen_snapshot(&st->gen, w);
		if (rc == 0)
			rc = blob_entry(&b, st->ops[0].node->name, ENT_WMGEN, st->ops[0].info.index,
					st->ops[0].info.parallelism, w, &nent);
	}
	if (rc < 0)
		goto fail;
	memcpy(b.p + 8, &nent, 4);
	sli_crash_point("task-snapshot");
	st->ck.last = id;
	pause = mono_ns() - t0;
	counter_max(&ck->cnt->max_pause_ns, pause);
	atomic_fetch_add_explicit(&ck->cnt->total_pause_ns, pause, memory_order_relaxed);
	atomic_fetch_add_explicit(&ck->cnt->snapshots, 1, memory_order_relaxed);
	/* Relaxed: the task loaded final_id with acquire before it took this snapshot. */
	if (id == atomic_load_explicit(&ck->final_id, memory_order_relaxed))
		counter_max(&ck->cnt->final_max_pause_ns, pause);
	if (defer) {
		/* Unaligned: acked with the channel state once every barrier arrived. */
		st->ck.pend = b.p;
		st->ck.pend_len = b.len;
		st->ck.pend_nent = nent;
		st->ck.pend_defer = dl;
	} else {
		ack(ck, id, global_id(st), b.p, b.len, dl);
	}
	if (forward) {
		announce(st, id);
		rc = sli_broadcast_event(st, SL_EVENT_BARRIER, id);
		if (rc < 0)
			goto fail;
	}
	return 0;
fail:
	free(b.p);
	defer_free(dl);
	if (!x_failed(st->w->x))
		sli_fail(&st->ops[0], rc, "checkpoint %" PRId64 ": %s", id, sl_strerror(rc));
	return rc;
}

bool sli_ckpt_due(const struct sli_subtask *st)
{
	const struct sli_ckpt_run *ck = st->w->x->ck;

	/* Acquire: pairs with the release store of `trigger` in trigger_one(). */
	return ck != NULL && atomic_load_explicit(&((struct sli_ckpt_run *)ck)->trigger,
						  memory_order_acquire) > st->ck.last;
}

int sli_ckpt_source(struct sli_subtask *st)
{
	struct sli_ckpt_run *ck = st->w->x->ck;
	int64_t id = atomic_load_explicit(&ck->trigger, memory_order_acquire);

	return snapshot_subtask(st, id, true, false);
}

int sli_ckpt_source_end(struct sli_subtask *st)
{
	struct sli_ckpt_run *ck = st->w->x->ck;
	int64_t t;

	if (ck == NULL)
		return 0;
	pthread_mutex_lock(&ck->mu);
	ck->ended = true; /* under mu: the coordinator triggers nothing after this */
	t = atomic_load_explicit(&ck->trigger, memory_order_relaxed);
	if (atomic_load_explicit(&ck->final_id, memory_order_relaxed) == 0)
		/* Release: a subtask that sees END (through the rings) reads it. */
		atomic_store_explicit(&ck->final_id, t + 1, memory_order_release);
	pthread_cond_signal(&ck->cv);
	pthread_mutex_unlock(&ck->mu);
	/* A barrier triggered before the end goes out first: every barrier reaches every task. */
	return t > st->ck.last ? snapshot_subtask(st, t, true, false) : 0;
}

static void unblock_all(struct sli_subtask *st)
{
	for (unsigned c = 0; c < st->nin; c++)
		st->in[c].blocked = false;
	st->ck.aligning = 0;
	st->ck.arrived = 0;
}

static int try_align(struct sli_subtask *st)
{
	int64_t id = st->ck.aligning;

	if (id == 0 || st->ck.arrived < st->nopen)
		return 0;
	unblock_all(st);
	return snapshot_subtask(st, id, true, false);
}

/* ------------------------------------------------ unaligned checkpoints */

/*
 * Unaligned checkpoints (checkpoint-unaligned, exactly-once mode): at the
 * first barrier of checkpoint n the subtask snapshots its chain at once
 * and sends barrier n on, blocking no channel. Each other open channel
 * then records what it delivers (data, watermarks, idleness) until its
 * own barrier n or its end: those events precede barrier n upstream, so
 * the upstream snapshots will not send them again, and the subtask's
 * snapshot does not contain their effect. They are the channel state,
 * written with the snapshot (an ENT_CHANS entry of the head operator:
 * per channel {u32 channel, u32 events, u32 input side, i64 the
 * channel's watermark when recording began, the events in
 * sli_ckpt_chan.h's format}) once every channel delivered its barrier.
 * Barriers wait behind the output already queued in the rings (they do
 * not overtake it, as Flink's do); what is queued downstream is before
 * the barrier there, so it needs no saving. Savepoints are always
 * aligned.
 *
 * Restore, same channels (the operator heads its task at the parallelism
 * of the checkpoint, and every upstream operator of the task's inputs
 * kept its parallelism): each channel's log goes to the same channel's
 * replay queue, every event as recorded, read before the ring, so the
 * watermarks evolve as they did.
 *
 * Restore, rescaled (anything else: another parallelism of the operator
 * or of an upstream one, or the operator now chained behind another, as
 * at parallelism 1): like Flink's rescaling of channel state, every
 * recorded element goes to exactly one new subtask: an element of a
 * keyed exchange (its recorded key hash) to the owner of its key group,
 * any other element to subtask (old index mod new parallelism), so the
 * elements of one old channel stay together and in order. A new subtask
 * takes its share of every old subtask's logs into one queue that it
 * feeds to the operator (on the recorded input side) before it takes a
 * barrier or reads a ring (sli_ckpt_inject()). Watermarks, idleness and
 * activity in the logs are dropped, as Flink keeps none in channel state:
 * they preceded barrier n upstream, so the restored upstream sends
 * watermarks at least as high again (a source starts from the watermark
 * it had at barrier n), and the valve cannot move while the operator's
 * queue is not empty. What an element is judged against is the
 * operator's restored watermark: the smallest of its key groups'
 * sections, which may come from another old subtask than the element's
 * log and be higher than any watermark the element saw: a record in
 * flight to subtask A when subtask B has already seen a later watermark
 * of the same producer. So the watermark of the operator and of every
 * operator after it in the chain is lowered to the smallest watermark
 * the replayed logs' channels had when they began recording (a lower
 * bound of the watermark each replayed element followed): an element
 * within the out-of-orderness bound of its channel's watermarks is then
 * never late, as it was not before. Windows that fired before the
 * checkpoint keep no fire timer and do not fire again; the lower
 * watermark only makes later firings wait for the valve.
 */

/* Channel @ch stops recording and forgets its log. */
static void log_reset(struct sli_inchan *ch)
{
	ch->recording = false;
	ch->log.len = 0;
	ch->nlog = 0;
}

static void drop_unaligned(struct sli_subtask *st)
{
	free(st->ck.pend);
	st->ck.pend = NULL;
	defer_free(st->ck.pend_defer);
	st->ck.pend_defer = NULL;
	for (unsigned c = 0; c < st->nin; c++)
		log_reset(&st->in[c]);
	st->ck.aligning = 0;
	st->ck.arrived = 0;
}

int sli_ckpt_record(struct sli_subtask *st, unsigned c, const struct sl_batch *b)
{
	struct sli_inchan *ch = &st->in[c];
	int rc;

	if (ch->nlog == 0)
		ch->log_wm = ch->watermark; /* a rescaled restore's bound (see above) */
	rc = sli_chan_log_put(&ch->log, b);
	if (rc < 0) {
		sli_fail(&st->ops[0], rc, "checkpoint %" PRId64 ": cannot record in-flight data",
			 st->ck.aligning);
		return rc;
	}
	ch->nlog++;
	return 0;
}

/* The channel state of @st as an ENT_CHANS entry of @b (see "Unaligned checkpoints"). */
static int chan_entry(struct sli_subtask *st, struct sli_snap_buf *b, uint32_t *nent)
{
	struct sl_snap_writer w;
	int rc = 0;

	sli_snap_writer_init(&w, st->ops[0].info.max_parallelism);
	for (unsigned c = 0; c < st->nin && rc == 0; c++) {
		const struct sli_inchan *ch = &st->in[c];

		if (ch->nlog == 0)
			continue;
		rc = sl_snap_section(&w, SL_SNAP_OP);
		rc = rc < 0 ? rc : sl_snap_put_u32(&w, c);
		rc = rc < 0 ? rc : sl_snap_put_u32(&w, ch->nlog);
		rc = rc < 0 ? rc : sl_snap_put_u32(&w, ch->input);
		rc = rc < 0 ? rc : sl_snap_put_i64(&w, ch->log_wm);
		rc = rc < 0 ? rc : sl_snap_put_bytes(&w, ch->log.p, ch->log.len);
	}
	if (rc == 0) /* nothing recorded: no entry */
		rc = blob_entry(b, st->ops[0].node->name, ENT_CHANS, st->ops[0].info.index,
				st->ops[0].info.parallelism, &w, nent);
	sli_snap_writer_free(&w);
	return rc;
}

/* Every barrier arrived (or its channel ended): ack the snapshot with the channel state. */
static int finish_unaligned(struct sli_subtask *st)
{
	struct sli_ckpt_run *ck = st->w->x->ck;
	struct sli_snap_buf b = { st->ck.pend, st->ck.pend_len, st->ck.pend_len };
	uint32_t nent = st->ck.pend_nent;
	int64_t id = st->ck.aligning;
	struct sli_ckpt_defer *defer = st->ck.pend_defer;
	int rc = chan_entry(st, &b, &nent);

	st->ck.pend = NULL;
	st->ck.pend_defer = NULL;
	drop_unaligned(st);
	if (rc < 0) {
		free(b.p);
		defer_free(defer);
		sli_fail(&st->ops[0], rc, "checkpoint %" PRId64 ": cannot save in-flight data: %s",
			 id, sl_strerror(rc));
		return rc;
	}
	memcpy(b.p + 8, &nent, 4);
	ack(ck, id, global_id(st), b.p, b.len, defer);
	return 0;
}

static bool recording(const struct sli_subtask *st)
{
	for (unsigned c = 0; c < st->nin; c++)
		if (st->in[c].recording && !st->in[c].ended)
			return true;
	return false;
}

static int barrier_unaligned(struct sli_subtask *st, unsigned c, int64_t id)
{
	int rc;

	if (st->ck.pend != NULL && id == st->ck.aligning) {
		st->in[c].recording = false;
	} else {
		if (id <= st->ck.last)
			return 0; /* stale: an abandoned checkpoint's barrier */
		if (st->ck.pend != NULL)
			drop_unaligned(st); /* a newer barrier: the older one was abandoned */
		for (unsigned k = 0; k < st->nin; k++)
			st->in[k].recording = k != c && !st->in[k].ended;
		st->ck.aligning = id;
		rc = snapshot_subtask(st, id, true, true);
		if (rc < 0)
			return rc;
	}
	return recording(st) ? 0 : finish_unaligned(st);
}

/*
 * Barrier @id was announced ahead of an input's ring: snapshot now, and
 * let every open channel record until its own barrier arrives in the
 * ring (barrier_unaligned() then stops it): what the rings and the
 * upstream backlogs hold before the barrier is the channel state.
 */
static int barrier_priority(struct sli_subtask *st, int64_t id)
{
	int rc;

	if (st->ck.pend != NULL)
		drop_unaligned(st); /* a newer barrier: the older one was abandoned */
	for (unsigned k = 0; k < st->nin; k++)
		st->in[k].recording = !st->in[k].ended;
	st->ck.aligning = id;
	rc = snapshot_subtask(st, id, true, true);
	if (rc < 0)
		return rc;
	return recording(st) ? 0 : finish_unaligned(st);
}

int sli_ckpt_prio_poll(struct sli_subtask *st)
{
	for (unsigned c = 0; c < st->nin; c++) {
		/* Relaxed: pairs with the store in announce(); only the id is read. */
		int64_t id = atomic_load_explicit(&st->in[c].chan->prio, memory_order_relaxed);

		/* Not yet snapshotted (a barrier in the ring would have: last >= id). */
		if (id > st->ck.last && !st->in[c].ended)
			return barrier_priority(st, id);
	}
	return 0;
}

int sli_ckpt_barrier(struct sli_subtask *st, unsigned c, int64_t id)
{
	struct sli_ckpt_run *ck = st->w->x->ck;

	/* Relaxed: see the store in trigger_one(); barrier @id came after it. */
	if (ck != NULL && ck->o->unaligned &&
	    id != atomic_load_explicit(&ck->sp_id, memory_order_relaxed))
		return barrier_unaligned(st, c, id);
	if (ck == NULL || id <= st->ck.last || id < st->ck.aligning)
		return 0; /* stale: an abandoned checkpoint's barrier */
	if (id > st->ck.aligning) {
		/* A newer barrier: the older checkpoint was abandoned (timeout). */
		unblock_all(st);
		st->ck.aligning = id;
	}
	st->ck.arrived++;
	if (!ck->o->at_least_once)
		st->in[c].blocked = true;
	return try_align(st);
}

int sli_ckpt_channel_ended(struct sli_subtask *st)
{
	if (st->w->x->ck == NULL)
		return 0;
	if (st->ck.pend != NULL)
		return recording(st) ? 0 : finish_unaligned(st);
	return try_align(st);
}

void sli_ckpt_sub_free(struct sli_subtask *st)
{
	free(st->ck.pend);
	st->ck.pend = NULL;
	defer_free(st->ck.pend_defer);
	st->ck.pend_defer = NULL;
	for (unsigned c = 0; c < st->nin; c++) {
		struct sli_inchan *ch = &st->in[c];

		free(ch->log.p);
		ch->log = (struct sli_snap_buf){ 0 };
		for (unsigned i = ch->replay_pos; i < ch->nreplay; i++)
			sli_pool_put(&st->w->pool, ch->replay[i]);
		free(ch->replay);
		ch->replay = NULL;
		ch->nreplay = ch->replay_pos = 0;
	}
	for (unsigned i = st->ck.inj_pos; i < st->ck.ninj; i++)
		sli_pool_put(&st->w->pool, st->ck.inj[i].b);
	free(st->ck.inj);
	st->ck.inj = NULL;
	st->ck.ninj = st->ck.inj_pos = st->ck.capinj = 0;
}

/* Without checkpoints, two-phase-commit sinks commit at the end of their input. */
static int commit_now(struct sli_subtask *st)
{
	int64_t epoch = st->ops[0].info.restored_checkpoint + 1;

	for (unsigned k = 0; k < st->task->nchain; k++) {
		struct sli_opi *op = &st->ops[k];
		struct sl_snap_writer w;
		int rc;

		if (!is_2pc_sink(op->node))
			continue;
		sli_snap_writer_init(&w, op->info.max_parallelism);
		sl_snap_section(&w, SL_SNAP_OP);
		op->errbuf[0] = '\0';
		rc = op->node->fn.sink->pre_commit(op->state, epoch, &w);
		sli_snap_writer_free(&w);
		if (rc == 0)
			rc = op->node->fn.sink->commit(op->state, epoch);
		if (rc < 0) {
			sli_fail(op, rc, "committing the output: %s",
				 op->errbuf[0] ? op->errbuf : sl_strerror(rc));
			return rc;
		}
	}
	return 0;
}

int sli_ckpt_subtask_ending(struct sli_subtask *st)
{
	struct sli_ckpt_run *ck = st->w->x->ck;
	int rc;

	if (ck == NULL)
		return 0;
	if (st->ck.pend != NULL && (rc = finish_unaligned(st)) < 0)
		return rc; /* every channel ended: its in-flight data is all recorded */
	/*
	 * A source ends the checkpoints here, before its chain ends: no
	 * barrier is triggered while its subtasks wait in
	 * sli_ckpt_final_ready(), so none meets a pending image either.
	 */
	if (st->task->chain[0]->kind == SLI_SOURCE)
		return sli_ckpt_source_end(st);
	return 0;
}

/*
 * Flink takes no checkpoint while max-concurrent-checkpoints (1) are in
 * flight, and with FLIP-147 finished tasks wait for the coordinator's
 * next checkpoint. Here regular checkpoints never overlap (trigger_one()),
 * but the final one starts at the end of the input, possibly right after
 * the subtask handed the images of the last regular one, which the
 * coordinator serialises one ack after the other (seconds at gigabytes of
 * state). So the end waits for our own images only: the coordinator
 * releases them in take_acks() whatever becomes of their checkpoint
 * (complete, failed, abandoned), and does not stop before the final
 * checkpoint completes or the job failed (then the worker stops anyway).
 */
bool sli_ckpt_final_ready(struct sli_subtask *st)
{
	struct sli_ckpt_run *ck = st->w->x->ck;

	/* Acquire: pairs with the release store in images_released(). */
	if (ck == NULL ||
	    atomic_load_explicit(&st->ck.img_released, memory_order_acquire) >= st->ck.img_handed)
		return true;
	if (!st->ck.final_waited) {
		st->ck.final_waited = true;
		/* Relaxed: a statistic. */
		atomic_fetch_add_explicit(&ck->cnt->final_waits, 1, memory_order_relaxed);
	}
	return false;
}

int sli_ckpt_subtask_end(struct sli_subtask *st)
{
	struct sli_ckpt_run *ck = st->w->x->ck;
	int64_t f;
	int rc;

	if (ck == NULL)
		return commit_now(st);
	/* Acquire: pairs with the release store in sli_ckpt_source_end(). */
	f = atomic_load_explicit(&ck->final_id, memory_order_acquire);
	if (f == 0) {
		sli_fail(&st->ops[0], -EPROTO, "finished before any source did");
		return -EPROTO;
	}
	rc = snapshot_subtask(st, f, false, false);
	if (rc == 0)
		st->ck.final_done = true;
	return rc;
}

bool sli_ckpt_sink_poll(struct sli_subtask *st)
{
	struct sli_ckpt_run *ck = st->w->x->ck;
	int64_t c;

	if (ck == NULL || !st->ck.has_2pc)
		return false;
	/* Acquire: pairs with the release store of `completed` by the coordinator. */
	c = atomic_load_explicit(&ck->completed, memory_order_acquire);
	if (c > st->ck.committed) {
		for (unsigned k = 0; k < st->task->nchain; k++) {
			struct sli_opi *op = &st->ops[k];
			int rc;

			if (!is_2pc_sink(op->node))
				continue;
			op->errbuf[0] = '\0';
			rc = op->node->fn.sink->commit(op->state, c);
			if (rc < 0) {
				sli_fail(op, rc, "committing checkpoint %" PRId64 ": %s", c,
					 op->errbuf[0] ? op->errbuf : sl_strerror(rc));
				return false;
			}
		}
		st->ck.committed = c;
	}
	return st->ck.final_done && st->ck.committed < st->ck.last;
}

/* ------------------------------------------------------ state metadata */

/*
 * The state an operator's snapshot carries, as the manifest lists it
 * ("state OP NAME KIND", OP and NAME escaped) and a restore checks it: a
 * source's position and watermark generator, a window's panes (kind:
 * assigner and accumulator size), a reduce's accumulators, a join's
 * buffers, a general window's windows, a keyed process function's
 * declared states (their names and kinds) and timers, a two-phase-commit
 * sink's pending output.
 */
enum { MAX_STATES = 2 + SL_STATE_MAX };

struct st_desc {
	const char *name;
	char kind[48];
};

static unsigned node_states(const struct sli_exec *x, const struct sli_node *n, struct st_desc *d)
{
	static const char *const win[] = { "tumbling", "sliding", "session" };
	unsigned k = 0;

	switch (n->kind) {
	case SLI_SOURCE:
		d[k++] = (struct st_desc){ "position", "source" };
		for (unsigned s = 0; s < x->job->plan.nsubtasks; s++)
			if (x->subtasks[s].ops[0].node == n && x->subtasks[s].has_gen) {
				d[k++] = (struct st_desc){ "watermarks", "watermark-generator" };
				break;
			}
		break;
	case SLI_WINDOW:
		d[k].name = "panes";
		snprintf(d[k++].kind, sizeof(d[0].kind), "window-%s/acc%u",
			 (unsigned)n->win.kind < SL_ARRAY_SIZE(win) ? win[n->win.kind] : "other",
			 n->agg.acc_size);
		break;
	case SLI_SINK:
		if (is_2pc_sink(n))
			d[k++] = (struct st_desc){ "pending", "two-phase-commit" };
		break;
	case SLI_REDUCE:
		d[k].name = "accumulators";
		snprintf(d[k++].kind, sizeof(d[0].kind), "reduce/elem%u", n->type.size);
		break;
	case SLI_WINDOW_JOIN:
	case SLI_INTERVAL_JOIN:
		d[k++] = (struct st_desc){ "buffers", "" };
		snprintf(d[k - 1].kind, sizeof(d[0].kind), "%s", sli_kind_name(n->kind));
		break;
	case SLI_WINDOW_GEN:
		d[k++] = (struct st_desc){ "windows", "general-window" };
		break;
	case SLI_KEYED_PROCESS: {
		static const char *const kinds[] = { "value", "list", "map", "reducing",
						     "aggregating" };

		for (unsigned s = 0; s < n->nstates && k < MAX_STATES - 1; s++) {
			d[k].name = n->states[s].name;
			snprintf(d[k++].kind, sizeof(d[0].kind), "keyed-%s",
				 (unsigned)n->states[s].kind < SL_ARRAY_SIZE(kinds)
				     ? kinds[n->states[s].kind]
				     : "other");
		}
		d[k++] = (struct st_desc){ "timers", "keyed-timers" };
		break;
	}
	default:
		break;
	}
	return k;
}

/*
 * Savepoint markers: a savepoint commits the output of exactly-once sinks
 * up to its id N, but lives outside the checkpoint directory CK. Until a
 * checkpoint newer than N completes, --restore latest would restore an
 * older checkpoint and write that output again; CK/_savepoint-N (the
 * savepoint's path, written and fsynced before its manifest) lets it
 * refuse and name the savepoint instead. Markers older than the newest
 * complete checkpoint are deleted (never anything else).
 */
#define MARKER "_savepoint-"

static int marker_write(const char *ck_dir, int64_t id, const char *path, char *err, size_t errlen)
{
	char name[PATH_MAX + 32];
	int fd, rc = 0;

	snprintf(name, sizeof(name), "%s/" MARKER "%" PRId64, ck_dir, id);
	fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0 || dprintf(fd, "%s\n", path) < 0 || fsync(fd) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	/* Its name too must be durable before the savepoint completes. */
	fd = rc == 0 ? open(ck_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (rc == 0 && (fd < 0 || fsync(fd) < 0))
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		return sl_errbuf_set(err, errlen, rc, "cannot write savepoint marker '%s': %s",
				     name, strerror(-rc));
	return 0;
}

/*
 * Scan the markers of @ck_dir: delete those below @drop_below (0: none);
 * of the rest, the newest above @above whose savepoint is complete goes
 * into *@id and @path (*@id 0: none). Return 0 or -errno.
 */
static int marker_scan(const char *ck_dir, int64_t drop_below, int64_t above, int64_t *id,
		       char *path, size_t len)
{
	DIR *d = opendir(ck_dir);
	struct dirent *de;

	*id = 0;
	if (d == NULL)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)) != NULL) {
		char full[PATH_MAX + 300], sp[PATH_MAX], meta[PATH_MAX + 16];
		char *end;
		long long v;
		FILE *f;

		if (strncmp(de->d_name, MARKER, strlen(MARKER)) != 0)
			continue;
		errno = 0;
		v = strtoll(de->d_name + strlen(MARKER), &end, 10);
		if (errno != 0 || *end != '\0' || v <= 0)
			continue;
		snprintf(full, sizeof(full), "%s/%s", ck_dir, de->d_name);
		if (v < drop_below) {
			unlink(full);
			continue;
		}
		if (v <= above || v <= *id || (f = fopen(full, "re")) == NULL)
			continue;
		bool got = fgets(sp, sizeof(sp), f) != NULL;
		fclose(f);
		sp[strcspn(sp, "\n")] = '\0';
		snprintf(meta, sizeof(meta), "%s/_metadata", sp);
		if (got && access(meta, F_OK) == 0) {
			*id = v;
			snprintf(path, len, "%s", sp);
		}
	}
	closedir(d);
	return 0;
}

/* Savepoint @id is complete (manifest durable, sinks told): record it, answer @req. */
static void sp_complete(struct sli_ckpt_run *ck, int64_t id, char *path, struct sli_sp_req *req)
{
	sl_log(SL_LOG_INFO, "checkpoint", "savepoint %" PRId64 " written to '%s'", id, path);
	pthread_mutex_lock(&ck->sp->mu);
	snprintf(ck->sp->last, sizeof(ck->sp->last), "%s", path);
	if (req != NULL)
		sli_sp_done_locked(ck->sp, req, 0, path, NULL);
	pthread_mutex_unlock(&ck->sp->mu);
	free(path);
}

/* ----------------------------------------------------------- coordinator */

static int manifest(struct sli_ckpt_run *ck, const struct inflight *f, char **out, size_t *len)
{
	struct sl_job *job = ck->x->job;
	FILE *m = open_memstream(out, len);

	if (m == NULL)
		return -ENOMEM;
	fprintf(m, MANIFEST_MAGIC "%d\njob ", MANIFEST_VERSION);
	put_name(m, job->name);
	fprintf(m, "\nid %" PRId64 "\nkind %s\nmax-parallelism %u\nexactly-once-sinks %d\n", f->id,
		f->sp_path ? "savepoint" : "checkpoint",
		ck->x->subtasks[0].ops[0].info.max_parallelism, ck->has_2pc);
	for (unsigned i = 0; i < job->nnodes; i++) {
		struct st_desc d[MAX_STATES];
		unsigned nd = node_states(ck->x, job->nodes[i], d);

		fputs("op ", m);
		put_name(m, job->nodes[i]->name);
		fprintf(m, " %s %u\n", sli_kind_name(job->nodes[i]->kind),
			job->nodes[i]->parallelism);
		for (unsigned k = 0; k < nd; k++) {
			fputs("state ", m);
			put_name(m, job->nodes[i]->name);
			fputc(' ', m);
			put_name(m, d[k].name);
			fprintf(m, " %s\n", d[k].kind);
		}
	}
	for (unsigned s = 0; s < job->plan.nsubtasks; s++) {
		const struct sli_subtask *st = &ck->x->subtasks[s];
		fprintf(m, "file t%d-%u.snap\n", st->task->id, st->index);
	}
	fputs("end\n", m);
	return fclose(m) == 0 ? 0 : -ENOMEM;
}

static struct inflight *find_fl(struct sli_ckpt_run *ck, int64_t id)
{
	for (unsigned i = 0; i < ck->nfl; i++)
		if (ck->fl[i].id == id)
			return &ck->fl[i];
	return NULL;
}

/* Free @f's file buffers, keeping the largest one of ours as @ck's spare. */
static void drop_waiting(struct sli_ckpt_run *ck, struct inflight *f)
{
	for (unsigned i = 0; i < f->nwait; i++) {
		free(f->names[i]);
		if (f->iov[i].iov_len > ck->spare.iov_len && f->iov[i].iov_len <= ck->keep_max &&
		    file_buf_ours(ck, f->iov[i].iov_base, false) > 0) {
			file_buf_free(ck, ck->spare.iov_base);
			ck->spare = f->iov[i];
		} else {
			file_buf_free(ck, f->iov[i].iov_base);
		}
	}
	f->nwait = 0;
	/* What the coordinator now keeps until the next checkpoint (sl_checkpoint_stats). */
	counter_max(&ck->cnt->max_kept_bytes,
		    writer_capacity(&ck->dw) + file_buf_ours(ck, ck->spare.iov_base, false));
}

static void remove_fl(struct sli_ckpt_run *ck, struct inflight *f, bool completed)
{
	char why[96];

	drop_waiting(ck, f);
	free(f->names);
	free(f->iov);
	if (f->out != NULL)
		ck->io->finish(f->out, completed);
	if (f->req != NULL) {
		snprintf(why, sizeof(why),
			 "savepoint %" PRId64 " was abandoned: the job ended or failed", f->id);
		sli_sp_done(ck->sp, f->req, -ECANCELED, NULL, why);
	}
	free(f->sp_path);
	*f = ck->fl[--ck->nfl];
}

/*
 * Checkpoint @f failed: count it; past the tolerance (or the final one),
 * fail the job. A savepoint asked for by sl_job_savepoint() fails alone:
 * its caller hears why, the job goes on (as in Flink).
 */
static void fail_ckpt(struct sli_ckpt_run *ck, struct inflight *f, const char *why)
{
	int64_t id = f->id;
	bool final = f->final;

	atomic_fetch_add_explicit(&ck->cnt->failed, 1, memory_order_relaxed);
	if (f->req != NULL) {
		sl_log(SL_LOG_WARN, "checkpoint", "savepoint %" PRId64 " failed: %s", id, why);
		sli_sp_done(ck->sp, f->req, -EIO, NULL, why);
		f->req = NULL;
		remove_fl(ck, f, false);
		return;
	}
	remove_fl(ck, f, false);
	ck->failures++;
	sl_log(SL_LOG_WARN, "checkpoint", "checkpoint %" PRId64 " failed: %s", id, why);
	if (final)
		fail_job(ck->x, -EIO,
			 "the final checkpoint %" PRId64 " failed: %s; no output of the run's last "
			 "part was committed",
			 id, why);
	else if (ck->failures > ck->o->tolerable)
		fail_job(ck->x, -EIO,
			 "checkpoint %" PRId64
			 " failed: %s (%u failed in a row; checkpoint-tolerable-failures is %u)",
			 id, why, ck->failures, ck->o->tolerable);
}

/*
 * Start writing checkpoint @id; a savepoint when @sp_path is set (taken
 * over, freed here on failure), serving @req when set.
 */
static struct inflight *begin_fl(struct sli_ckpt_run *ck, int64_t id, bool final, char *sp_path,
				 struct sli_sp_req *req)
{
	char err[SLI_ERRLEN];
	struct inflight *f;
	int rc;

	if (ck->nfl == SL_ARRAY_SIZE(ck->fl)) {
		free(sp_path);
		if (req != NULL)
			sli_sp_done(ck->sp, req, -EBUSY, NULL, "too many checkpoints in flight");
		return NULL;
	}
	f = &ck->fl[ck->nfl++];
	memset(f, 0, sizeof(*f));
	f->id = id;
	f->final = final;
	f->sp_path = sp_path;
	f->req = req;
	f->start_ns = mono_ns();
	rc = ck->io->begin(ck->store, id, sp_path, &f->out, err, sizeof(err));
	if (rc < 0) {
		f->out = NULL;
		fail_ckpt(ck, f, err);
		return NULL;
	}
	return f;
}

static int wait_file(struct inflight *f, const struct sli_subtask *st, uint8_t *buf, size_t len)
{
	char name[64];

	if (f->nwait == f->capwait) {
		unsigned cap = f->capwait ? 2 * f->capwait : 8;
		char **nn = realloc(f->names, cap * sizeof(*nn));
		if (nn == NULL)
			return -ENOMEM;
		f->names = nn;
		struct iovec *ni = realloc(f->iov, cap * sizeof(*ni));
		if (ni == NULL)
			return -ENOMEM;
		f->iov = ni;
		f->capwait = cap;
	}
	snprintf(name, sizeof(name), "t%d-%u.snap", st->task->id, st->index);
	f->names[f->nwait] = strdup(name);
	if (f->names[f->nwait] == NULL)
		return -ENOMEM;
	f->iov[f->nwait].iov_base = buf;
	f->iov[f->nwait].iov_len = len;
	f->nwait++;
	return 0;
}

/*
 * Start the final checkpoint @id: a savepoint in savepoint-on-stop when
 * the job was stopped (Flink's stop-with-savepoint).
 */
static struct inflight *begin_final(struct sli_ckpt_run *ck, int64_t id)
{
	char err[SLI_ERRLEN], *sp_path = NULL;

	/*
	 * Relaxed: sl_job_stop()'s flag only picks the final checkpoint's
	 * directory; nothing else is read through it.
	 */
	if (ck->o->savepoint_on_stop != NULL &&
	    atomic_load_explicit(&ck->x->job->stop_requested, memory_order_relaxed) &&
	    sli_sp_mkpath(ck->o->savepoint_on_stop, id, &sp_path, err, sizeof(err)) < 0) {
		fail_job(ck->x, -EIO, "savepoint-on-stop: %s", err);
		return NULL;
	}
	return begin_fl(ck, id, true, sp_path, NULL);
}

static void take_acks(struct sli_ckpt_run *ck, struct ack *a, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		int64_t fid = atomic_load_explicit(&ck->final_id, memory_order_relaxed);
		struct inflight *f = find_fl(ck, a[i].id);

		if (f == NULL && a[i].id == fid && fid != 0 &&
		    atomic_load_explicit(&ck->completed, memory_order_relaxed) < fid)
			f = begin_final(ck, fid);
		/* Serialised here, not on the task: its pause was the copy. */
		char why[SLI_ERRLEN] = "";
		int rc = f == NULL ? -ESRCH : defer_write(ck, &a[i], why, sizeof(why));
		defer_free(a[i].defer);
		if (a[i].defer != NULL)
			images_released(ck, a[i].id, a[i].sub);
		if (rc == 0)
			rc = wait_file(f, &ck->x->subtasks[a[i].sub], a[i].buf, a[i].len);
		if (rc < 0) {
			file_buf_free(ck,
				      a[i].buf); /* an abandoned checkpoint's, or out of memory */
			if (why[0] == '\0')
				snprintf(why, sizeof(why), "%s",
					 rc == -ENOMEM ? "out of memory" : sl_strerror(rc));
			if (f != NULL)
				fail_ckpt(ck, f, why);
			continue;
		}
		f->nacked++;
	}
}

static void write_and_complete(struct sli_ckpt_run *ck)
{
	char err[SLI_ERRLEN];

	for (unsigned i = 0; i < ck->nfl;) {
		struct inflight *f = &ck->fl[i];
		uint64_t bytes = 0;
		int rc = 0;

		if (f->nwait > 0) {
			rc = ck->io->write(f->out, (const char *const *)f->names, f->iov, f->nwait,
					   &bytes, err, sizeof(err));
			drop_waiting(ck, f);
			f->bytes += bytes;
			if (rc < 0) {
				fail_ckpt(ck, f, err);
				continue;
			}
		}
		/* Complete in id order: an older one still in flight goes first. */
		bool older = false;
		for (unsigned j = 0; j < ck->nfl; j++)
			older |= ck->fl[j].id < f->id;
		if (f->nacked < ck->x->job->plan.nsubtasks || older) {
			i++;
			continue;
		}
		char *m = NULL;
		size_t mlen = 0;
		sli_crash_point("checkpoint-written");
		rc = manifest(ck, f, &m, &mlen);
		if (rc < 0)
			snprintf(err, sizeof(err), "out of memory writing the manifest");
		if (rc == 0 && f->sp_path != NULL && ck->has_2pc)
			rc = marker_write(ck->o->dir, f->id, f->sp_path, err, sizeof(err));
		if (rc == 0)
			rc = ck->io->complete(f->out, m, mlen, err, sizeof(err));
		free(m);
		if (rc < 0) {
			fail_ckpt(ck, f, err);
			continue;
		}
		sli_crash_point("manifest-durable");
		int64_t id = f->id;
		uint64_t now = mono_ns();
		char *sp_path = f->sp_path;
		struct sli_sp_req *req = f->req;
		f->sp_path = NULL;
		f->req = NULL;
		atomic_store_explicit(&ck->cnt->last_duration_ns, now - f->start_ns,
				      memory_order_relaxed);
		counter_max(&ck->cnt->max_duration_ns, now - f->start_ns);
		atomic_store_explicit(&ck->cnt->last_bytes, f->bytes, memory_order_relaxed);
		atomic_store_explicit(&ck->cnt->last_id, id, memory_order_relaxed);
		atomic_fetch_add_explicit(&ck->cnt->completed, 1, memory_order_relaxed);
		sli_hold_checkpoint_completed();
		remove_fl(ck, f, true);
		ck->failures = 0;
		ck->last_done_ns = now;
		/* Release: sinks that load `completed` (acquire) see the durable manifest. */
		atomic_store_explicit(&ck->completed, id, memory_order_release);
		sli_wake_all(ck->x);
		sl_log(SL_LOG_DEBUG, "checkpoint", "checkpoint %" PRId64 " complete", id);
		if (sp_path != NULL)
			sp_complete(ck, id, sp_path, req);
		else if (ck->has_2pc)
			marker_scan(ck->o->dir, id, INT64_MAX, &(int64_t){ 0 }, NULL, 0);
		if (ck->io->retain(ck->store, ck->o->retained, err, sizeof(err)) < 0)
			sl_log(SL_LOG_WARN, "checkpoint", "cannot delete old checkpoints: %s", err);
	}
}

/*
 * Trigger the next checkpoint when it is due, or at once a savepoint a
 * caller of sl_job_savepoint() waits for (neither interval nor minimum
 * pause apply to it; one checkpoint or savepoint in flight at a time).
 */
static void trigger_one(struct sli_ckpt_run *ck)
{
	char err[SLI_ERRLEN], *sp_path = NULL;
	uint64_t now = mono_ns();
	struct sli_sp_req *req;
	int64_t id;

	if (ck->nfl > 0)
		return;
	pthread_mutex_lock(&ck->mu);
	bool ended = ck->ended;
	pthread_mutex_unlock(&ck->mu);
	req = sli_sp_take(ck->sp);
	if (req != NULL && ended) {
		sli_sp_done(ck->sp, req, -ESRCH, NULL,
			    "the job is ending: its input ended or it was stopped");
		return;
	}
	if (req == NULL && (ck->o->interval_ms <= 0 ||
			    now - ck->last_trigger_ns < (uint64_t)ck->o->interval_ms * 1000000u ||
			    now - ck->last_done_ns < (uint64_t)ck->o->min_pause_ms * 1000000u))
		return;
	if (ended)
		return;
	if (req != NULL &&
	    sli_sp_mkpath(req->target, ck->next_id, &sp_path, err, sizeof(err)) < 0) {
		sli_sp_done(ck->sp, req, -EIO, NULL, err);
		return;
	}
	id = ck->next_id++;
	if (begin_fl(ck, id, false, sp_path, req) == NULL)
		return;
	/* Relaxed: published by the release store of `trigger` below. */
	atomic_store_explicit(&ck->sp_id, sp_path != NULL ? id : 0, memory_order_relaxed);
	ck->last_trigger_ns = now;
	pthread_mutex_lock(&ck->mu);
	if (!ck->ended)
		/* Release: pairs with the acquire load in sli_ckpt_due(). */
		atomic_store_explicit(&ck->trigger, id, memory_order_release);
	else
		remove_fl(ck, find_fl(ck, id), false); /* a source ended meanwhile */
	pthread_mutex_unlock(&ck->mu);
	sli_wake_all(ck->x);
}

static void check_timeouts(struct sli_ckpt_run *ck)
{
	uint64_t now = mono_ns();

	for (unsigned i = 0; i < ck->nfl; i++) {
		struct inflight *f = &ck->fl[i];

		if (now - f->start_ns > (uint64_t)ck->o->timeout_ms * 1000000u) {
			char why[96];
			snprintf(why, sizeof(why), "timed out after %" PRId64 " ms (%u of %u acks)",
				 ck->o->timeout_ms, f->nacked, ck->x->job->plan.nsubtasks);
			fail_ckpt(ck, f, why);
			return;
		}
	}
}

static void *coordinator(void *arg)
{
	struct sli_ckpt_run *ck = arg;
	struct ack *a = NULL;
	unsigned n = 0, cap = 0;

	ck->last_done_ns = ck->last_trigger_ns = mono_ns();
	pthread_mutex_lock(&ck->mu);
	while (!ck->quit) {
		int64_t f = atomic_load_explicit(&ck->final_id, memory_order_relaxed);

		if (f != 0 && atomic_load_explicit(&ck->completed, memory_order_relaxed) >= f)
			break;
		if (ck->nacks == 0) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 20 * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&ck->cv, &ck->mu, &ts);
		}
		/* Swap the ack arrays: workers append to an empty one meanwhile. */
		struct ack *t = ck->acks;
		unsigned tc = ck->capacks;
		ck->acks = a, ck->capacks = cap;
		a = t, cap = tc;
		n = ck->nacks;
		ck->nacks = 0;
		pthread_mutex_unlock(&ck->mu);

		if (x_failed(ck->x)) {
			for (unsigned i = 0; i < n; i++) {
				free(a[i].buf);
				defer_free(a[i].defer);
				if (a[i].defer != NULL)
					images_released(ck, a[i].id, a[i].sub);
			}
			pthread_mutex_lock(&ck->mu);
			break;
		}
		take_acks(ck, a, n);
		write_and_complete(ck);
		check_timeouts(ck);
		trigger_one(ck);
		pthread_mutex_lock(&ck->mu);
	}
	pthread_mutex_unlock(&ck->mu);
	free(a);
	while (ck->nfl > 0)
		remove_fl(ck, &ck->fl[0], false);
	sli_sp_open(ck->sp, false);
	return NULL;
}

/* -------------------------------------------------------------- restore */

static int rs_fail(char *errbuf, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int rs_fail(char *errbuf, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

static void rs_free(struct sli_ckpt_run *ck)
{
	for (unsigned i = 0; i < ck->nents; i++) {
		free(ck->ents[i].name);
		free(ck->ents[i].secs);
	}
	free(ck->ents);
	for (unsigned i = 0; i < ck->nrops; i++)
		free(ck->rops[i].name);
	free(ck->rops);
	for (unsigned i = 0; i < ck->nfiles; i++) {
		free(ck->files[i]);
		free(ck->file_names[i]);
	}
	free(ck->files);
	free(ck->file_names);
	free(ck->rs_path);
	ck->ents = NULL;
	ck->rops = NULL;
	ck->files = NULL;
	ck->file_names = NULL;
	ck->rs_path = NULL;
	ck->nents = ck->nrops = ck->nfiles = 0;
}

/* Parse the task file @buf (@len bytes, named @file) into entries. */
static int parse_task(struct sli_ckpt_run *ck, const uint8_t *buf, size_t len, const char *file,
		      char *errbuf, size_t errlen)
{
	uint32_t nent;
	size_t off = 12;

	if (len < 12 || memcmp(buf, TASK_MAGIC, 8) != 0)
		return rs_fail(errbuf, errlen, -EBADMSG, "%s: not a Sluice task snapshot", file);
	memcpy(&nent, buf + 8, 4);
	for (uint32_t e = 0; e < nent; e++) {
		uint32_t nl, hdr[3];
		uint64_t sl;

		if (len - off < 4)
			goto trunc;
		memcpy(&nl, buf + off, 4);
		off += 4;
		if (len - off < (uint64_t)nl + 20)
			goto trunc;
		struct rs_entry *ne = realloc(ck->ents, (ck->nents + 1) * sizeof(*ne));
		if (ne == NULL)
			return -ENOMEM;
		ck->ents = ne;
		struct rs_entry *en = &ck->ents[ck->nents];
		memset(en, 0, sizeof(*en));
		en->name = strndup((const char *)buf + off, nl);
		if (en->name == NULL)
			return -ENOMEM;
		ck->nents++;
		off += nl;
		memcpy(hdr, buf + off, 12);
		memcpy(&sl, buf + off + 12, 8);
		off += 20;
		en->kind = hdr[0];
		en->index = hdr[1];
		en->parallelism = hdr[2];
		en->file = file;
		if (sl > len - off)
			goto trunc;
		int rc = sli_snap_parse(buf + off, sl, file, &en->secs, &en->nsecs, errbuf, errlen);
		if (rc < 0)
			return rc;
		off += sl;
	}
	if (off != len)
		return rs_fail(errbuf, errlen, -EBADMSG, "%s: %zu bytes after the last entry", file,
			       len - off);
	return 0;
trunc:
	return rs_fail(errbuf, errlen, -EBADMSG, "%s: truncated entry at byte %zu", file, off);
}

/* A manifest's "state OP NAME KIND" line. */
struct rs_state {
	char op[512], name[512], kind[64];
};

/*
 * Is checkpoint or savepoint @path (its manifest read: @what, @jobname,
 * max-parallelism @mp, state lines @st) compatible with the job? Checked
 * before any snapshot file is opened: the same max-parallelism, and every
 * operator with state in it exists in the job with state of the same name
 * and kind. Another job name is only a warning (Flink does not check it).
 * Return 0 or -EINVAL with a sentence naming the manifest and operator.
 */
static int rs_compatible(struct sli_ckpt_run *ck, const char *path, const char *what,
			 const char *jobname, unsigned long long mp, const struct rs_state *st,
			 unsigned nst, char *errbuf, size_t errlen)
{
	struct sl_job *job = ck->x->job;
	unsigned maxp = ck->x->subtasks[0].ops[0].info.max_parallelism;

	if (jobname[0] != '\0' && strcmp(jobname, job->name) != 0)
		sl_log(SL_LOG_WARN, "checkpoint",
		       "%s '%s' was taken by job '%s'; restoring it into job '%s' anyway", what,
		       path, jobname, job->name);
	if (mp != maxp)
		return rs_fail(errbuf, errlen, -EINVAL,
			       "%s '%s' was taken with max-parallelism %llu and this job "
			       "has %u: key groups cannot be re-assigned (run with "
			       "--max-parallelism %llu)",
			       what, path, mp, maxp, mp);
	for (unsigned i = 0; i < nst; i++) {
		const struct sli_node *n = NULL;
		struct st_desc d[MAX_STATES];
		unsigned nd = 0, k;

		for (unsigned j = 0; j < job->nnodes && n == NULL; j++)
			if (strcmp(job->nodes[j]->name, st[i].op) == 0)
				n = job->nodes[j];
		if (n == NULL)
			return rs_fail(errbuf, errlen, -EINVAL,
				       "%s/_metadata: has state '%s' of operator '%s', which job "
				       "'%s' does not have",
				       path, st[i].name, st[i].op, job->name);
		nd = node_states(ck->x, n, d);
		for (k = 0; k < nd && strcmp(d[k].name, st[i].name) != 0; k++)
			;
		if (k == nd || strcmp(d[k].kind, st[i].kind) != 0)
			return rs_fail(errbuf, errlen, -EINVAL,
				       "%s/_metadata: operator '%s' has state '%s' of kind %s, but "
				       "in job '%s' its state is %s%s",
				       path, st[i].op, st[i].name, st[i].kind, job->name,
				       k == nd ? "different" : "of kind ",
				       k == nd ? "" : d[k].kind);
	}
	return 0;
}

/* A manifest as read: what the restore checks before opening snapshot files. */
struct rs_manifest {
	int version;
	bool end;
	int64_t id;
	unsigned long long mp;
	char job[512], what[16];
	struct rs_state *st;
	unsigned nst;
	char **files; /* short names */
	unsigned nfiles;
};

/* Make room for element @n of the realloc()ed array *@arr. */
static int push(void *arr, unsigned n, size_t size)
{
	void *na = realloc(*(void **)arr, (n + 1) * size);

	if (na == NULL)
		return -ENOMEM;
	*(void **)arr = na;
	return 0;
}

/* Parse manifest line @line of @path into @m (operators into ck). Return 0 or -errno. */
static int rs_line(struct sli_ckpt_run *ck, const char *path, char *line, struct rs_manifest *m,
		   char *errbuf, size_t errlen)
{
	char a[512], b[64], b2[512], c[64];
	unsigned long long u;
	int v;

	if (m->version == 0) {
		if (sscanf(line, MANIFEST_MAGIC "%d%63s", &v, b) != 1)
			return rs_fail(errbuf, errlen, -EBADMSG,
				       "%s/_metadata: not a Sluice checkpoint manifest", path);
		if (v < 1 || v > MANIFEST_VERSION)
			return rs_fail(errbuf, errlen, -EBADMSG,
				       "%s/_metadata: manifest format version %d; this build of "
				       "Sluice reads versions 1 to %d",
				       path, v, MANIFEST_VERSION);
		m->version = v;
	} else if (sscanf(line, "id %" SCNd64, &m->id) == 1) {
	} else if (sscanf(line, "max-parallelism %llu", &m->mp) == 1) {
	} else if (sscanf(line, "kind %15s", m->what) == 1) {
	} else if (sscanf(line, "job %511s", m->job) == 1) {
		if (unescape(m->job) < 0)
			m->job[0] = '\0';
	} else if (sscanf(line, "state %511s %511s %63s", a, b2, c) == 3) {
		if (unescape(a) < 0 || unescape(b2) < 0)
			return rs_fail(errbuf, errlen, -EBADMSG,
				       "%s/_metadata: bad operator name '%s'", path, a);
		if (push(&m->st, m->nst, sizeof(*m->st)) < 0)
			return -ENOMEM;
		struct rs_state *s = &m->st[m->nst++];
		snprintf(s->op, sizeof(s->op), "%s", a);
		snprintf(s->name, sizeof(s->name), "%s", b2);
		snprintf(s->kind, sizeof(s->kind), "%s", c);
	} else if (sscanf(line, "op %511s %63s %llu", a, b, &u) == 3) {
		if (unescape(a) < 0)
			return rs_fail(errbuf, errlen, -EBADMSG,
				       "%s/_metadata: bad operator name '%s'", path, a);
		if (push(&ck->rops, ck->nrops, sizeof(*ck->rops)) < 0)
			return -ENOMEM;
		ck->rops[ck->nrops].name = strdup(a);
		snprintf(ck->rops[ck->nrops].kind, sizeof(ck->rops[0].kind), "%s", b);
		ck->rops[ck->nrops].parallelism = (unsigned)u;
		ck->nrops++;
	} else if (sscanf(line, "file %511s", a) == 1) {
		if (push(&m->files, m->nfiles, sizeof(*m->files)) < 0 ||
		    (m->files[m->nfiles] = strdup(a)) == NULL)
			return -ENOMEM;
		m->nfiles++;
	} else if (strcmp(line, "end") == 0) {
		m->end = true;
	}
	return 0;
}

/* Read and parse the snapshot files @m names. */
static int rs_files(struct sli_ckpt_run *ck, const char *path, const struct rs_manifest *m,
		    char *errbuf, size_t errlen)
{
	char full[PATH_MAX + 64];
	int rc = 0;

	ck->files = calloc(m->nfiles + 1, sizeof(*ck->files));
	ck->file_names = calloc(m->nfiles + 1, sizeof(*ck->file_names));
	if (ck->files == NULL || ck->file_names == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < m->nfiles && rc == 0; i++) {
		size_t flen = 0;

		snprintf(full, sizeof(full), "%s/%s", path, m->files[i]);
		ck->file_names[i] = strdup(full);
		ck->nfiles++;
		if (ck->file_names[i] == NULL)
			return -ENOMEM;
		rc = ck->io->read(path, m->files[i], &ck->files[i], &flen, errbuf, errlen);
		if (rc == 0)
			rc = parse_task(ck, ck->files[i], flen, ck->file_names[i], errbuf, errlen);
	}
	return rc;
}

/*
 * Load checkpoint or savepoint directory @path: the manifest, the
 * compatibility check (rs_compatible()), then every file, checked.
 * Return 0; -errno with a sentence naming the file at fault.
 */
static int load(struct sli_ckpt_run *ck, const char *path, int64_t *id, char *errbuf, size_t errlen)
{
	struct sl_job *job = ck->x->job;
	struct rs_manifest m = { .id = -1, .what = "checkpoint" };
	void *mbuf = NULL;
	size_t mlen = 0;
	char *line, *save = NULL;
	int rc;

	rc = ck->io->read(path, "_metadata", &mbuf, &mlen, errbuf, errlen);
	if (rc < 0)
		return rc;
	char *text = realloc(mbuf, mlen + 1);
	if (text == NULL) {
		free(mbuf);
		return -ENOMEM;
	}
	text[mlen] = '\0';
	ck->rs_path = strdup(path);
	for (line = strtok_r(text, "\n", &save); line != NULL && rc == 0;
	     line = strtok_r(NULL, "\n", &save))
		rc = rs_line(ck, path, line, &m, errbuf, errlen);
	free(text);
	if (rc == 0 && (!m.end || m.id < 0 || m.mp == 0))
		rc = rs_fail(errbuf, errlen, -EBADMSG, "%s/_metadata: incomplete manifest", path);
	if (rc == 0)
		rc = rs_compatible(ck, path, m.what, m.job, m.mp, m.st, m.nst, errbuf, errlen);
	if (rc == 0)
		rc = rs_files(ck, path, &m, errbuf, errlen);
	for (unsigned i = 0; i < m.nfiles; i++)
		free(m.files[i]);
	free(m.files);
	free(m.st);
	*id = m.id;
	if (rc < 0)
		return rc;
	/* Every operator with state in the files must exist in the job (version 1 manifests). */
	for (unsigned e = 0; e < ck->nents; e++) {
		bool found = false;
		for (unsigned i = 0; i < job->nnodes && !found; i++)
			found = strcmp(job->nodes[i]->name, ck->ents[e].name) == 0;
		if (!found && (ck->ents[e].kind == ENT_CHAN || ck->ents[e].kind == ENT_CHANS))
			return rs_fail(errbuf, errlen, -EINVAL,
				       "%s '%s': '%s' holds in-flight data (the channel state of "
				       "an unaligned checkpoint) of operator '%s', which job '%s' "
				       "does not have: restore it into the job that wrote it",
				       m.what, path, ck->ents[e].file, ck->ents[e].name, job->name);
		if (!found)
			return rs_fail(errbuf, errlen, -EINVAL,
				       "%s '%s' has state of operator '%s', which job '%s' "
				       "does not have",
				       m.what, path, ck->ents[e].name, job->name);
	}
	return 0;
}

static int list_dirs_max(const char *dir, int64_t *max)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	*max = 0;
	if (d == NULL)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long long v;

		if (strncmp(de->d_name, "chk-", 4) != 0)
			continue;
		errno = 0;
		v = strtoll(de->d_name + 4, &end, 10);
		if (errno == 0 && *end == '\0' && v > *max)
			*max = v;
	}
	closedir(d);
	return 0;
}

/* Resolve --restore and load it into ck. Return 0 (maybe nothing to restore) or -errno. */
static int restore_load(struct sli_ckpt_run *ck, char *errbuf, size_t errlen)
{
	const struct sli_ckpt_opts *o = ck->o;
	/* A restart (restart strategy) resumes from the newest checkpoint of the dir. */
	const char *want = ck->x->restarting && o->dir != NULL ? "latest" : o->restore;
	int64_t ids[64];
	char path[PATH_MAX];
	int n, rc;

	if (want == NULL)
		return 0;
	if (strcmp(want, "latest") != 0) {
		rc = load(ck, want, &ck->restored, errbuf, errlen);
		if (rc < 0)
			rs_free(ck);
		return rc;
	}
	if (o->dir == NULL)
		return rs_fail(errbuf, errlen, -EINVAL,
			       "option 'restore latest' needs option 'checkpoint-dir'");
	n = ck->io->list(o->dir, ids, SL_ARRAY_SIZE(ids), errbuf, errlen);
	if (n < 0)
		return n;
	if (ck->has_2pc) {
		int64_t sp_id;

		rc = marker_scan(o->dir, 0, n > 0 ? ids[0] : 0, &sp_id, path, sizeof(path));
		if (rc == 0 && sp_id > 0 && ck->x->restarting) {
			/* A restart after a savepoint newer than every checkpoint: from it. */
			rc = load(ck, path, &ck->restored, errbuf, errlen);
			if (rc < 0)
				rs_free(ck);
			return rc;
		}
		if (rc == 0 && sp_id > 0)
			return rs_fail(
			    errbuf, errlen, -EEXIST,
			    "savepoint %" PRId64 " ('%s') committed output newer than "
			    "the latest checkpoint in '%s', so restoring that checkpoint "
			    "would write it twice: restore the savepoint with --restore "
			    "%s, or remove the part files of epochs > %" PRId64
			    " (part-S-E-K) and '%s/" MARKER "%" PRId64 "'",
			    sp_id, path, o->dir, path, n > 0 ? ids[0] : 0, o->dir, sp_id);
	}
	if (n == 0 && want != o->restore && o->restore != NULL && strcmp(o->restore, "latest")) {
		/* Restarted before the first checkpoint: from where the run started. */
		rc = load(ck, o->restore, &ck->restored, errbuf, errlen);
		if (rc < 0)
			rs_free(ck);
		return rc;
	}
	if (n == 0) {
		sl_log(SL_LOG_INFO, "checkpoint",
		       "no complete checkpoint in '%s': starting from the beginning", o->dir);
		return 0;
	}
	for (int i = 0; i < n && i < (int)SL_ARRAY_SIZE(ids); i++) {
		char why[SLI_ERRLEN];

		snprintf(path, sizeof(path), "%s/chk-%" PRId64, o->dir, ids[i]);
		rc = load(ck, path, &ck->restored, why, sizeof(why));
		if (rc == 0) {
			sl_log(SL_LOG_INFO, "checkpoint",
			       "restoring checkpoint %" PRId64 " from '%s'", ck->restored, path);
			return 0;
		}
		rs_free(ck);
		ck->restored = 0;
		if (rc != -EBADMSG && rc != -ENOENT) {
			snprintf(errbuf, errlen, "%s", why);
			return rc;
		}
		if (ck->has_2pc)
			return rs_fail(
			    errbuf, errlen, -EBADMSG,
			    "cannot restore the latest checkpoint: %s. Its output may already be "
			    "committed, so restoring an older checkpoint could write it twice. "
			    "Repair or restore that checkpoint, or restore an older one explicitly "
			    "with --restore %s/chk-N after removing the part files of later epochs "
			    "(part-S-E-K with E > N) from the output directory",
			    why, o->dir);
		sl_log(SL_LOG_WARN, "checkpoint",
		       "%s; trying an older checkpoint (this job has no exactly-once sink, so "
		       "its output is at-least-once anyway)",
		       why);
	}
	return rs_fail(errbuf, errlen, -EBADMSG, "no checkpoint in '%s' could be restored", o->dir);
}

/* Sinks' recover(): before any subtask opens. */
static int recover_sinks(struct sli_exec *x, struct sli_ckpt_run *ck, char *errbuf, size_t errlen)
{
	struct sl_job *job = x->job;

	for (unsigned i = 0; i < job->nnodes; i++) {
		const struct sli_node *n = job->nodes[i];
		unsigned nold = 0;
		int rc;

		if (n->kind != SLI_SINK || n->fn.sink->recover == NULL)
			continue;
		for (unsigned r = 0; ck != NULL && r < ck->nrops; r++)
			if (strcmp(ck->rops[r].name, n->name) == 0)
				nold = ck->rops[r].parallelism;
		struct sl_snap_reader *rd = calloc(nold + 1, sizeof(*rd));
		struct sl_snap_reader **rp = calloc(nold + 1, sizeof(*rp));
		struct sli_snap_sec *secs = calloc(nold + 1, sizeof(*secs));
		if (rd == NULL || rp == NULL || secs == NULL) {
			free(rd), free(rp), free(secs);
			return sl_errbuf_set(errbuf, errlen, -ENOMEM, "out of memory");
		}
		for (unsigned s = 0; s < nold; s++) {
			unsigned k = 0;
			for (unsigned e = 0; e < ck->nents; e++) {
				const struct rs_entry *en = &ck->ents[e];
				if (en->kind != ENT_OP || en->index != s ||
				    strcmp(en->name, n->name))
					continue;
				for (unsigned q = 0; q < en->nsecs; q++)
					if (en->secs[q].section == SL_SNAP_OP)
						secs[s] = en->secs[q], k = 1;
			}
			sli_snap_reader_init(&rd[s], &secs[s], k, errbuf, errlen);
			rp[s] = &rd[s];
		}
		errbuf[0] = '\0';
		rc = n->fn.sink->recover(n->arg, ck ? ck->restored : 0, rp, nold, errbuf, errlen);
		free(rd), free(rp), free(secs);
		if (rc < 0) {
			char tmp[SLI_ERRLEN];
			snprintf(tmp, sizeof(tmp), "%s", errbuf);
			return sl_errbuf_set(errbuf, errlen, rc, "sink '%s': %s", n->name,
					     tmp[0] ? tmp : sl_strerror(rc));
		}
	}
	return 0;
}

static bool supported(const struct sli_node *n, char *why, size_t len)
{
	switch (n->kind) {
	case SLI_SOURCE:
		if (n->fn.source->snapshot == NULL || n->fn.source->restore == NULL) {
			snprintf(why, len, "its connector cannot save its position");
			return false;
		}
		return true;
	case SLI_MAP:
	case SLI_MAP_BATCH:
	case SLI_FILTER:
	case SLI_FILTER_BATCH:
	case SLI_FLAT_MAP:
	case SLI_PROCESS:
	case SLI_UNION:
	case SLI_SINK:
	case SLI_WINDOW:
	case SLI_REDUCE:
	case SLI_WINDOW_JOIN:
	case SLI_INTERVAL_JOIN:
	case SLI_WINDOW_GEN:
	case SLI_KEYED_PROCESS:
		return true;
	default:
		snprintf(why, len, "checkpoints of %s operators are not implemented yet",
			 sli_kind_name(n->kind));
		return false;
	}
}

int sli_ckpt_prepare(struct sli_exec *x, char *errbuf, size_t errlen)
{
	struct sl_job *job = x->job;
	const struct sli_ckpt_opts *o = &job->ckpt;
	struct sli_ckpt_run *ck;
	char why[256];
	int rc;

	/* Savepoints: a stop's savepoint is a checkpoint. */
	if (o->savepoint_on_stop != NULL && o->dir == NULL)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "option 'savepoint-on-stop' needs option 'checkpoint-dir'");
	if (o->unaligned && o->at_least_once)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "option 'checkpoint-unaligned' needs checkpoint-mode "
				     "exactly-once (at-least-once does not align anyway)");
	if (o->dir == NULL && o->restore == NULL)
		return recover_sinks(x, NULL, errbuf, errlen);
	if (o->storage == NULL)
		return sl_errbuf_set(errbuf, errlen, -ENOTSUP,
				     "checkpoints need the checkpoint storage of libsl_state: call "
				     "sl_job_use_checkpoint_storage() on the job");
	for (unsigned i = 0; i < job->nnodes; i++)
		if (!supported(job->nodes[i], why, sizeof(why)))
			return sl_errbuf_set(errbuf, errlen, -ENOTSUP,
					     "operator '%s' cannot be checkpointed: %s",
					     job->nodes[i]->name, why);
	ck = calloc(1, sizeof(*ck));
	if (ck == NULL)
		return sl_errbuf_set(errbuf, errlen, -ENOMEM, "out of memory");
	x->ck = ck;
	ck->x = x;
	ck->o = o;
	ck->io = o->storage;
	ck->cnt = &job->ckpt_counters;
	ck->sp = &job->ckpt.sp;
	ck->keep_max = keep_max();
	pthread_mutex_init(&ck->mu, NULL);
	pthread_cond_init(&ck->cv, NULL);
	for (unsigned i = 0; i < job->nnodes; i++)
		ck->has_2pc |= is_2pc_sink(job->nodes[i]);
	rc = restore_load(ck, errbuf, errlen);
	if (rc < 0)
		return rc;
	atomic_store_explicit(&ck->cnt->restored_id, ck->restored, memory_order_relaxed);
	for (unsigned s = 0; s < job->plan.nsubtasks; s++) {
		struct sli_subtask *st = &x->subtasks[s];

		for (unsigned k = 0; k < st->task->nchain; k++) {
			st->ops[k].info.restored_checkpoint = ck->restored;
			st->ck.has_2pc |= is_2pc_sink(st->ops[k].node);
		}
	}
	return recover_sinks(x, ck, errbuf, errlen);
}

int sli_ckpt_start(struct sli_exec *x, char *errbuf, size_t errlen)
{
	struct sli_ckpt_run *ck = x->ck;
	int64_t base = 0;
	int rc;

	if (ck == NULL)
		return 0;
	if (ck->o->dir == NULL) {
		/* Restored without a checkpoint directory: no checkpoints, commit at the end. */
		x->ck = NULL;
		ck->x = x;
		x->ck_restore = ck;
		return 0;
	}
	rc = ck->io->open(ck->o->dir, ck->o->io ? ck->o->io : "auto", &ck->store, errbuf, errlen);
	if (rc < 0)
		return rc;
	rc = list_dirs_max(ck->o->dir, &base);
	if (rc < 0)
		return sl_errbuf_set(errbuf, errlen, rc, "cannot list '%s': %s", ck->o->dir,
				     sl_strerror(rc));
	if (base < ck->restored)
		base = ck->restored;
	ck->next_id = base + 1;
	atomic_init(&ck->trigger, base);
	atomic_init(&ck->completed, ck->restored);
	atomic_init(&ck->final_id, 0);
	for (unsigned s = 0; s < x->job->plan.nsubtasks; s++) {
		x->subtasks[s].ck.last = base;
		x->subtasks[s].ck.committed = ck->restored;
		x->subtasks[s].ck.prio = ck->o->unaligned && x->subtasks[s].nin > 0;
	}
	sli_sp_open(ck->sp, true);
	if (pthread_create(&ck->thread, NULL, coordinator, ck) != 0) {
		sli_sp_open(ck->sp, false);
		return sl_errbuf_set(errbuf, errlen, -EAGAIN,
				     "cannot start the checkpoint coordinator thread");
	}
	ck->started = true;
	return 0;
}

void sli_ckpt_stop(struct sli_exec *x)
{
	struct sli_ckpt_run *ck = x->ck;

	if (ck == NULL || !ck->started)
		return;
	pthread_mutex_lock(&ck->mu);
	ck->quit = true;
	pthread_cond_signal(&ck->cv);
	pthread_mutex_unlock(&ck->mu);
	pthread_join(ck->thread, NULL);
	ck->started = false;
}

void sli_ckpt_free(struct sli_exec *x)
{
	struct sli_ckpt_run *ck = x->ck ? x->ck : x->ck_restore;

	for (unsigned s = 0; s < x->job->plan.nsubtasks; s++)
		sli_ckpt_sub_free(&x->subtasks[s]);
	if (ck == NULL)
		return;
	for (unsigned i = 0; i < ck->nacks; i++) {
		free(ck->acks[i].buf);
		defer_free(ck->acks[i].defer);
	}
	free(ck->acks);
	sli_snap_writer_free(&ck->dw);
	file_buf_free(ck, ck->spare.iov_base);
	free(ck->fbufs);
	if (ck->store != NULL)
		ck->io->close(ck->store);
	rs_free(ck);
	pthread_mutex_destroy(&ck->mu);
	pthread_cond_destroy(&ck->cv);
	for (unsigned s = 0; s < x->job->plan.nsubtasks; s++) {
		struct sli_subtask *st = &x->subtasks[s];
		if (st->ck.w == NULL)
			continue;
		for (unsigned k = 0; k <= st->task->nchain; k++)
			sli_snap_writer_free(&st->ck.w[k]);
		free(st->ck.w);
		st->ck.w = NULL;
	}
	free(ck);
	x->ck = x->ck_restore = NULL;
}

/* Sections for @op: its key groups from every old subtask, its own operator section. */
static int gather(const struct sli_ckpt_run *ck, const struct sli_opi *op, uint32_t kind,
		  bool with_op, struct sli_snap_sec **out, unsigned *nout)
{
	unsigned kg_first, kg_last, n = 0, cap = 16;
	struct sli_snap_sec *secs = malloc(cap * sizeof(*secs));

	if (secs == NULL)
		return -ENOMEM;
	sli_key_group_range(op->info.index, op->info.parallelism, op->info.max_parallelism,
			    &kg_first, &kg_last);
	for (int pass = 0; pass < 2; pass++)
		for (unsigned e = 0; e < ck->nents; e++) {
			const struct rs_entry *en = &ck->ents[e];

			if (en->kind != kind || strcmp(en->name, op->node->name) != 0)
				continue;
			for (unsigned q = 0; q < en->nsecs; q++) {
				const struct sli_snap_sec *s = &en->secs[q];
				bool take = pass == 0 ? s->section != SL_SNAP_OP &&
							    s->section >= kg_first &&
							    s->section <= kg_last
						      : with_op && s->section == SL_SNAP_OP &&
							    en->index == op->info.index &&
							    en->parallelism == op->info.parallelism;
				if (!take)
					continue;
				if (n == cap) {
					cap *= 2;
					struct sli_snap_sec *ns = realloc(secs, cap * sizeof(*ns));
					if (ns == NULL) {
						free(secs);
						return -ENOMEM;
					}
					secs = ns;
				}
				secs[n++] = *s;
			}
		}
	/* Key groups ascending; a stable insertion sort keeps each group's order. */
	for (unsigned i = 1; i < n; i++) {
		struct sli_snap_sec t = secs[i];
		unsigned j = i;
		while (j > 0 && secs[j - 1].section > t.section) {
			secs[j] = secs[j - 1];
			j--;
		}
		secs[j] = t;
	}
	*out = secs;
	*nout = n;
	return 0;
}

static int wmgen_restore(struct sli_subtask *st, struct sl_snap_reader *r)
{
	struct sli_wmgen *g = &st->gen;
	uint32_t sec, n;
	int64_t out;
	unsigned ev;
	int rc;

	if (sl_snap_next(r, &sec) != 1)
		return 0;
	rc = sl_snap_get_u32(r, &n);
	if (rc == 0)
		rc = sl_snap_get_i64(r, &out);
	if (rc < 0)
		return rc;
	if (n > (1u << 20))
		return sl_snap_bad(r, "implausible number of splits");
	if (n > g->n && sli_wmgen_grow(g, n, 0, &ev) < 0)
		return -ENOMEM;
	g->nlive = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct sli_wmsplit *s = &g->s[i];
		uint32_t ended;

		rc = sl_snap_get_i64(r, &s->max_ts);
		if (rc == 0)
			rc = sl_snap_get_i64(r, &s->wm);
		if (rc == 0)
			rc = sl_snap_get_u64(r, &s->count);
		if (rc == 0)
			rc = sl_snap_get_u32(r, &ended);
		if (rc < 0)
			return rc;
		s->ended = ended != 0;
		s->idle = false;
		g->nlive += !s->ended;
	}
	g->out = out;
	st->restored_wm = out;
	return sl_snap_next(r, &sec) < 0 ? -EBADMSG : 0;
}

/* The element type input channel @c of @st carries. */
static const struct sl_type *in_type(const struct sli_subtask *st, unsigned c)
{
	const struct sli_node *n = st->ops[0].node;

	for (unsigned e = 0; e < n->nin; e++) {
		const struct sli_edge *in = n->in[e];

		if (in->input == st->in[c].input)
			return in->port ? &in->from->side[in->port - 1] : &in->from->type;
	}
	return NULL;
}

/* Append @b to channel @ch's replay queue. Return 0 or -ENOMEM. */
static int replay_add(struct sli_inchan *ch, struct sl_batch *b)
{
	struct sl_batch **nr = realloc(ch->replay, (ch->nreplay + 1) * sizeof(*nr));

	if (nr == NULL)
		return -ENOMEM;
	ch->replay = nr;
	ch->replay[ch->nreplay++] = b;
	return 0;
}

static int to_channel(void *ch, struct sl_batch *b)
{
	return replay_add(ch, b);
}

/* Where a rescaled restore's elements go: the queue of chain operator @op, input @input. */
struct inj_to {
	struct sli_subtask *st;
	unsigned op, input;
};

static int to_op(void *arg, struct sl_batch *b)
{
	struct inj_to *to = arg;
	struct sli_ckpt_sub *c = &to->st->ck;

	if (c->ninj == c->capinj) {
		unsigned cap = c->capinj ? 2 * c->capinj : 16;
		struct sli_ckpt_inj *ni = realloc(c->inj, cap * sizeof(*ni));

		if (ni == NULL)
			return -ENOMEM;
		c->inj = ni;
		c->capinj = cap;
	}
	c->inj[c->ninj++] = (struct sli_ckpt_inj){ b, to->op, to->input };
	return 0;
}

int sli_ckpt_inject(struct sli_subtask *st)
{
	struct sli_ckpt_sub *c = &st->ck;
	struct sli_ckpt_inj in = c->inj[c->inj_pos++];

	if (c->inj_pos == c->ninj) {
		free(c->inj);
		c->inj = NULL;
		c->ninj = c->inj_pos = c->capinj = 0;
	}
	return sli_op_batch2(&st->ops[in.op], in.input, in.b);
}

/* The old parallelism of operator @name (the manifest's op line), 0 if it has none. */
static unsigned rs_parallelism(const struct sli_ckpt_run *ck, const char *name)
{
	for (unsigned i = 0; i < ck->nrops; i++)
		if (strcmp(ck->rops[i].name, name) == 0)
			return ck->rops[i].parallelism;
	return 0;
}

/*
 * Does @op read the channels of the subtask that wrote entry @en: it heads
 * its task at the checkpoint's parallelism, and the upstream operator of
 * each input runs at its old parallelism (so exchanges and channel
 * numbers are the same)?
 */
static bool same_channels(const struct sli_ckpt_run *ck, const struct sli_opi *op,
			  const struct rs_entry *en)
{
	const struct sli_task *task = op->st->task;

	if (op != &op->st->ops[0] || en->parallelism != op->info.parallelism)
		return false;
	for (unsigned k = 0; k < task->nin; k++)
		if (rs_parallelism(ck, task->in[k]->from->name) != task->in[k]->from->parallelism)
			return false;
	return true;
}

/* One channel's log in a channel-state entry. */
struct chan_rec {
	uint32_t c, n, input; /* input UINT32_MAX: not recorded (ENT_CHAN) */
	int64_t wm;	      /* its watermark when recording began (ENT_CHAN: INT64_MIN) */
	struct sli_snap_sec events;
};

/* The next channel log of entry @en from @r into @x: 1, 0 at the end, or -errno. */
static int next_rec(struct sl_snap_reader *r, const struct rs_entry *en, struct chan_rec *x)
{
	const void *bytes;
	uint32_t len, sec;
	int rc;

	while (sl_snap_left(r) == 0) {
		rc = sl_snap_next(r, &sec);
		if (rc <= 0)
			return rc;
	}
	x->input = UINT32_MAX;
	x->wm = INT64_MIN;
	rc = sl_snap_get_u32(r, &x->c);
	rc = rc < 0 ? rc : sl_snap_get_u32(r, &x->n);
	if (rc == 0 && en->kind == ENT_CHANS) {
		rc = sl_snap_get_u32(r, &x->input);
		rc = rc < 0 ? rc : sl_snap_get_i64(r, &x->wm);
	}
	rc = rc < 0 ? rc : sl_snap_get_bytes(r, &bytes, &len);
	if (rc < 0)
		return rc;
	x->events = (struct sli_snap_sec){ SL_SNAP_OP, bytes, len, en->file };
	return 1;
}

/* The input edge of @n on input side @input (UINT32_MAX: its only one), or NULL. */
static const struct sli_edge *node_input(const struct sli_node *n, uint32_t input)
{
	for (unsigned e = 0; e < n->nin; e++)
		if (n->in[e]->input == input || (input == UINT32_MAX && n->nin == 1))
			return n->in[e];
	return NULL;
}

/*
 * In-flight elements a restore fed back from channel state: all of them,
 * those redistributed to another parallelism, and of these the ones routed
 * to the owner of their key group (a keyed exchange's) rather than by the
 * index of the old subtask (sl_checkpoint_stats).
 */
struct rs_fed {
	uint64_t all, rescaled, rekeyed;
};

/*
 * Replay channel-state entry @en into @op's subtask: as recorded into the
 * channels' replay queues, or (@rescale) @op's share into its queue.
 * Count the elements fed into @fed.
 */
static int replay_entry(struct sli_opi *op, const struct rs_entry *en, bool rescale,
			struct rs_fed *fed)
{
	struct sli_subtask *st = op->st;
	struct sl_snap_reader r;
	struct chan_rec x;
	int rc;

	sli_snap_reader_init(&r, en->secs, en->nsecs, op->errbuf, sizeof(op->errbuf));
	if (rescale && (en->index >= en->parallelism || en->parallelism > op->info.max_parallelism))
		return sl_errbuf_set(op->errbuf, sizeof(op->errbuf), -EBADMSG,
				     "%s: in-flight data of subtask %u of %u, which cannot exist",
				     en->file, en->index, en->parallelism);
	while ((rc = next_rec(&r, en, &x)) == 1) {
		struct sli_chan_route rt = { .rescale = rescale,
					     .from = en->index,
					     .index = op->info.index,
					     .parallelism = op->info.parallelism,
					     .max_parallelism = op->info.max_parallelism };
		const struct sli_edge *in = rescale ? node_input(op->node, x.input) : NULL;
		struct inj_to to = { st, (unsigned)(op - st->ops), in ? in->input : 0 };
		const struct sl_type *t;
		struct sl_snap_reader cr;
		uint64_t kept = 0;
		void *arg;
		uint32_t sec;

		if (!rescale && x.c >= st->nin)
			return sl_snap_bad(&r, "in-flight data of a channel the task lacks");
		if (rescale && in == NULL)
			return sl_snap_bad(&r,
					   x.input == UINT32_MAX
					       ? "in-flight data of an unknown input side "
						 "(written before rescaling was possible)"
					       : "in-flight data of an input the operator lacks");
		if (rescale) {
			t = in->port ? &in->from->side[in->port - 1] : &in->from->type;
			rt.key = in->part == SLI_PART_HASH ? &in->key : NULL;
			arg = &to;
		} else {
			t = in_type(st, x.c);
			arg = &st->in[x.c];
		}
		/* The channel's events: a reader over just these bytes. */
		sli_snap_reader_init(&cr, &x.events, 1, op->errbuf, sizeof(op->errbuf));
		rc = sl_snap_next(&cr, &sec) == 1 ? 0 : -EBADMSG;
		rc = rc < 0 ? rc
			    : sli_chan_replay(&cr, x.n, t, &rt, &st->w->pool,
					      rescale ? to_op : to_channel, arg, &kept);
		if (rc == 0 && sl_snap_left(&cr) != 0)
			rc = sl_snap_bad(&cr, "in-flight data: bytes after the last event");
		if (rc < 0)
			return rc;
		fed->all += kept;
		fed->rescaled += rescale ? kept : 0;
		fed->rekeyed += rescale && rt.key != NULL ? kept : 0;
		if (kept > 0 && (!st->ck.capped || x.wm < st->ck.wm_cap)) {
			st->ck.capped = true;
			st->ck.wm_cap = x.wm;
		}
	}
	return rc;
}

/*
 * The channel state recorded for operator @op (unaligned checkpoints),
 * queued before anything the rings bring: see "Unaligned checkpoints".
 */
static int restore_channels(struct sli_ckpt_run *ck, struct sli_opi *op, struct rs_fed *fed)
{
	int rc = 0;

	op->errbuf[0] = '\0';
	for (unsigned e = 0; e < ck->nents && rc == 0; e++) {
		const struct rs_entry *en = &ck->ents[e];

		if ((en->kind != ENT_CHAN && en->kind != ENT_CHANS) ||
		    strcmp(en->name, op->node->name) != 0)
			continue;
		if (op->node->kind == SLI_SOURCE)
			rc = sl_errbuf_set(op->errbuf, sizeof(op->errbuf), -EINVAL,
					   "%s holds in-flight data of '%s', now a source",
					   en->file, en->name);
		else if (same_channels(ck, op, en))
			rc = en->index == op->info.index ? replay_entry(op, en, false, fed) : 0;
		else
			rc = replay_entry(op, en, true, fed);
	}
	if (rc < 0)
		sli_fail(op, rc, "restoring in-flight data from '%s': %s", ck->rs_path,
			 op->errbuf[0] ? op->errbuf : sl_strerror(rc));
	return rc < 0 ? rc : 0;
}

int sli_ckpt_restore_op(struct sli_opi *op)
{
	struct sli_exec *x = op->st->w->x;
	struct sli_ckpt_run *ck = x->ck ? x->ck : x->ck_restore;
	const struct sli_node *n = op->node;
	struct sli_snap_sec *secs = NULL;
	struct sl_snap_reader r;
	unsigned nsecs = 0;
	struct rs_fed fed = { 0, 0, 0 };
	int rc = 0;

	if (ck == NULL || ck->rs_path == NULL)
		return 0;
	if ((rc = restore_channels(ck, op, &fed)) < 0)
		return rc;
	/*
	 * Relaxed: statistics, each on its own, read relaxed by
	 * sl_job_checkpoint_stats(); the restoring subtasks add concurrently.
	 */
	atomic_fetch_add_explicit(&ck->cnt->inflight_restored, fed.all, memory_order_relaxed);
	atomic_fetch_add_explicit(&ck->cnt->inflight_rescaled, fed.rescaled, memory_order_relaxed);
	atomic_fetch_add_explicit(&ck->cnt->inflight_rekeyed, fed.rekeyed, memory_order_relaxed);
	if (n->kind == SLI_SINK)
		return 0;
	if (n->kind == SLI_SOURCE) {
		for (unsigned i = 0; i < ck->nrops; i++)
			if (strcmp(ck->rops[i].name, n->name) == 0 &&
			    ck->rops[i].parallelism != op->info.parallelism) {
				sli_fail(op, -EINVAL,
					 "checkpoint '%s' read this source at parallelism %u; it "
					 "cannot be restored at %u",
					 ck->rs_path, ck->rops[i].parallelism,
					 op->info.parallelism);
				return -EINVAL;
			}
	}
	rc = gather(ck, op, ENT_OP, true, &secs, &nsecs);
	if (rc < 0)
		goto out;
	sli_snap_reader_init(&r, secs, nsecs, op->errbuf, sizeof(op->errbuf));
	op->errbuf[0] = '\0';
	if (nsecs > 0) {
		switch (n->kind) {
		case SLI_SOURCE:
			rc = n->fn.source->restore(op->state, &r);
			break;
		case SLI_WINDOW:
			rc = sli_win_restore(op, &r);
			break;
		case SLI_REDUCE:
			rc = sli_reduce_restore(op, &r);
			break;
		case SLI_WINDOW_JOIN:
		case SLI_INTERVAL_JOIN:
			rc = sli_join_restore(op, &r);
			break;
		case SLI_WINDOW_GEN:
			rc = sli_wgen_restore(op, &r);
			break;
		case SLI_KEYED_PROCESS:
			rc = sli_keyed_restore(op, &r);
			break;
		default:
			rc = 0;
			break;
		}
	}
	free(secs);
	secs = NULL;
	if (rc == 0 && n->kind == SLI_SOURCE && op->st->has_gen) {
		rc = gather(ck, op, ENT_WMGEN, true, &secs, &nsecs);
		if (rc == 0) {
			sli_snap_reader_init(&r, secs, nsecs, op->errbuf, sizeof(op->errbuf));
			rc = wmgen_restore(op->st, &r);
		}
	}
out:
	free(secs);
	/* Rescaled in-flight data: never judged against a later watermark (restore_channels()). */
	if (rc == 0 && op->st->ck.capped && op->watermark > op->st->ck.wm_cap)
		op->watermark = op->st->ck.wm_cap;
	/* What a rescale did, for whoever checks it (tests/checkpoint/test_rescale_unaligned.py).
	 */
	if (rc == 0 && fed.rescaled > 0)
		sl_log(SL_LOG_INFO, "checkpoint",
		       "operator '%s' subtask %u/%u: %" PRIu64 " in-flight elements rescaled, "
		       "watermark bound %" PRId64 ", operator watermark %" PRId64,
		       n->name, op->info.index, op->info.parallelism, fed.rescaled,
		       op->st->ck.wm_cap, op->watermark);
	if (rc == 0)
		sli_crash_point("restore");
	if (rc < 0)
		sli_fail(op, rc, "restoring from '%s': %s", ck->rs_path,
			 op->errbuf[0] ? op->errbuf : sl_strerror(rc));
	return rc;
}

int sl_job_checkpoint_stats(const struct sl_job *job, struct sl_checkpoint_stats *out)
{
	const struct sli_ckpt_counters *c;

	if (job == NULL || out == NULL)
		return -EINVAL;
	c = &job->ckpt_counters;
	/* Relaxed: each field is a statistic of its own (sli_ckpt_counters). */
	*out = (struct sl_checkpoint_stats){
		.enabled = job->ckpt.dir != NULL,
		.completed = atomic_load_explicit(&c->completed, memory_order_relaxed),
		.failed = atomic_load_explicit(&c->failed, memory_order_relaxed),
		.last_id = atomic_load_explicit(&c->last_id, memory_order_relaxed),
		.last_bytes = atomic_load_explicit(&c->last_bytes, memory_order_relaxed),
		.last_duration_ns =
		    atomic_load_explicit(&c->last_duration_ns, memory_order_relaxed),
		.max_duration_ns = atomic_load_explicit(&c->max_duration_ns, memory_order_relaxed),
		.snapshots = atomic_load_explicit(&c->snapshots, memory_order_relaxed),
		.total_pause_ns = atomic_load_explicit(&c->total_pause_ns, memory_order_relaxed),
		.max_pause_ns = atomic_load_explicit(&c->max_pause_ns, memory_order_relaxed),
		.restored_id = atomic_load_explicit(&c->restored_id, memory_order_relaxed),
		.cow_task_bytes = atomic_load_explicit(&c->cow_task_bytes, memory_order_relaxed),
		.cow_retired = atomic_load_explicit(&c->cow_retired, memory_order_relaxed),
		.inflight_restored =
		    atomic_load_explicit(&c->inflight_restored, memory_order_relaxed),
		.inflight_rescaled =
		    atomic_load_explicit(&c->inflight_rescaled, memory_order_relaxed),
		.inflight_rekeyed =
		    atomic_load_explicit(&c->inflight_rekeyed, memory_order_relaxed),
		.sync_fallbacks = atomic_load_explicit(&c->sync_fallbacks, memory_order_relaxed),
		.final_waits = atomic_load_explicit(&c->final_waits, memory_order_relaxed),
		.final_max_pause_ns =
		    atomic_load_explicit(&c->final_max_pause_ns, memory_order_relaxed),
		.max_kept_bytes = atomic_load_explicit(&c->max_kept_bytes, memory_order_relaxed),
	};
	return 0;
}
