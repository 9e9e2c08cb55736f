/* SPDX-License-Identifier: Apache-2.0 */
/*
 * savepoint.c — savepoints: sl_job_savepoint() and the channel through
 * which it asks the checkpoint coordinator (checkpoint.c) for one, and
 * the savepoint directory's name. The coordinator triggers, writes and
 * completes a savepoint like any checkpoint (same id sequence); only its
 * directory (the user's, never retained) and the manifest's kind differ.
 *
 * Invariants: at most one request is being served (chan.req); a caller
 * waits on chan.cv until its request is done, so the request may live on
 * its stack. The coordinator answers every request it took exactly once
 * (completed, failed or abandoned) and, when it ends, those it did not
 * take.
 *
 * Threads: any caller thread (sl_job_savepoint(), sl_job_last_savepoint());
 * the coordinator thread. Everything shared is under chan.mu.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sluice/sl_error.h>

#include "sli_checkpoint.h"
#include "sli_exec.h"

/* Hand @r its result, under ch->mu, and free the channel for the next request. */
void sli_sp_done_locked(struct sli_sp_chan *ch, struct sli_sp_req *r, int rc, const char *path,
			const char *err)
{
	r->rc = rc;
	snprintf(r->path, sizeof(r->path), "%s", path ? path : "");
	snprintf(r->err, sizeof(r->err), "%s", err ? err : "");
	r->done = true;
	if (ch->req == r)
		ch->req = NULL;
	pthread_cond_broadcast(&ch->cv);
}

void sli_sp_done(struct sli_sp_chan *ch, struct sli_sp_req *r, int rc, const char *path,
		 const char *err)
{
	pthread_mutex_lock(&ch->mu);
	sli_sp_done_locked(ch, r, rc, path, err);
	pthread_mutex_unlock(&ch->mu);
}

/* The request waiting to be served, now marked taken; NULL: none. */
struct sli_sp_req *sli_sp_take(struct sli_sp_chan *ch)
{
	struct sli_sp_req *r;

	pthread_mutex_lock(&ch->mu);
	r = ch->req != NULL && !ch->req->taken ? ch->req : NULL;
	if (r != NULL)
		r->taken = true;
	pthread_mutex_unlock(&ch->mu);
	return r;
}

/* A coordinator starts (forget the last run's savepoint) or ends (fail a waiting request). */
void sli_sp_open(struct sli_sp_chan *ch, bool open)
{
	pthread_mutex_lock(&ch->mu);
	ch->open = open;
	if (open)
		ch->last[0] = '\0';
	else if (ch->req != NULL && !ch->req->taken)
		sli_sp_done_locked(ch, ch->req, -ESRCH, NULL,
				   "the job ended before the savepoint could start");
	pthread_cond_broadcast(&ch->cv);
	pthread_mutex_unlock(&ch->mu);
}

/*
 * *@out (free() it): TARGET/savepoint-<id>-<12 hex digits>, Flink's
 * naming, the random part so that savepoints of several runs (whose ids
 * may repeat) never collide. Creates TARGET (not its parents) when
 * missing. Return 0 or -errno with a sentence.
 */
int sli_sp_mkpath(const char *target, int64_t id, char **out, char *err, size_t errlen)
{
	uint8_t rnd[6];
	char hex[13];
	int n;

	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t t = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
		memcpy(rnd, &t, sizeof(rnd));
	}
	for (unsigned i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	if (mkdir(target, 0777) < 0 && errno != EEXIST)
		return sl_errbuf_set(err, errlen, -errno,
				     "cannot create savepoint target directory '%s': %s", target,
				     strerror(errno));
	*out = malloc(PATH_MAX);
	if (*out == NULL)
		return sl_errbuf_set(err, errlen, -ENOMEM, "out of memory");
	n = snprintf(*out, PATH_MAX, "%s/savepoint-%" PRId64 "-%s", target, id, hex);
	if (n < 0 || n >= PATH_MAX) {
		free(*out);
		*out = NULL;
		return sl_errbuf_set(err, errlen, -ENAMETOOLONG,
				     "savepoint target directory '%s': name too long", target);
	}
	return 0;
}

/* ---------------------------------------------------------- public API */

int sl_job_savepoint(struct sl_job *job, const char *target_dir, char *path_out, size_t path_len,
		     char *errbuf, size_t errlen)
{
	struct sli_sp_req r = { 0 };
	struct sli_sp_chan *ch;

	if (job == NULL || path_out == NULL || path_len == 0)
		return sl_errbuf_set(errbuf, errlen, -EINVAL, "sl_job_savepoint: NULL argument");
	path_out[0] = '\0';
	if (job->ckpt.dir == NULL)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "job '%s' takes no checkpoints: savepoints need option "
				     "'checkpoint-dir'",
				     job->name);
	r.target = target_dir != NULL ? target_dir : job->ckpt.savepoint_dir;
	if (r.target == NULL || r.target[0] == '\0')
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "no target directory: give one or set option 'savepoint-dir'");
	ch = &job->ckpt.sp;
	pthread_mutex_lock(&ch->mu);
	while (ch->open && ch->req != NULL) /* one savepoint at a time */
		pthread_cond_wait(&ch->cv, &ch->mu);
	if (!ch->open) {
		pthread_mutex_unlock(&ch->mu);
		return sl_errbuf_set(errbuf, errlen, -ESRCH,
				     "job '%s' is not running (or is ending): no savepoint taken",
				     job->name);
	}
	ch->req = &r;
	while (!r.done)
		pthread_cond_wait(&ch->cv, &ch->mu);
	pthread_mutex_unlock(&ch->mu);
	if (r.rc < 0)
		return sl_errbuf_set(errbuf, errlen, r.rc, "%s", r.err);
	if (strlen(r.path) >= path_len)
		return sl_errbuf_set(errbuf, errlen, -ENAMETOOLONG,
				     "savepoint '%s' written, but its path does not fit the buffer",
				     r.path);
	memcpy(path_out, r.path, strlen(r.path) + 1);
	return 0;
}

int sl_job_last_savepoint(struct sl_job *job, char *buf, size_t len)
{
	int rc = -ENOENT;

	if (job == NULL || buf == NULL || len == 0)
		return -EINVAL;
	pthread_mutex_lock(&job->ckpt.sp.mu);
	if (job->ckpt.sp.last[0] != '\0')
		rc = (size_t)snprintf(buf, len, "%s", job->ckpt.sp.last) < len ? 0 : -ENAMETOOLONG;
	pthread_mutex_unlock(&job->ckpt.sp.mu);
	return rc;
}
