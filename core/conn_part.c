/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conn_part.c — the exactly-once part-file sink (sl_part_sink_ops): lines
 * formatted as by the text sink, written to hidden in-progress files,
 * renamed to hidden pending files at a barrier (pre_commit) and to their
 * visible names once the checkpoint completed (commit, or recover after
 * a restart).
 *
 * Invariants, per subtask S in epoch E:
 *	- the files of the epoch are .part-S-E-0 .. .part-S-E-(nfiles-1), all
 *	  .inprogress; the last is open (fd >= 0) or every one is closed, so a
 *	  count is the list of closed-but-not-pre-committed files;
 *	- a file is fsynced (conf->fsync) when it is closed, by rolling,
 *	  finish() or pre_commit(), so a pending file is always durable;
 *	- pend[] holds, in checkpoint order, the epochs pre-committed but not
 *	  yet committed; pre_commit() lists all of them in the snapshot, so a
 *	  restore from any checkpoint commits everything up to it.
 * Renames are atomic and a file exists under exactly one of its three
 * names, so commit and recover tell "already committed" (visible name
 * present) from "lost" (neither present). Commits never replace a
 * visible file (RENAME_NOREPLACE where the filesystem has it).
 *
 * Threads: one state per subtask, on its own thread (commit() may come
 * from the thread of sl_job_run() after the run). recover() runs alone,
 * before any open. Subtasks share the (read-only) conf and the directory,
 * where each touches only names with its own index.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sluice/sl_connectors.h>
#include <sluice/sl_error.h>
#include <sluice/sl_snap.h>

#include "sli_core.h"
#include "sli_lines.h"
#include "sli_sink.h"
#include "sli_snap.h"

#define PART_ROLL_BYTES_DEFAULT (128ull * 1024 * 1024)
#define PART_SNAP_VERSION	1u
#define PART_NAME_MAX		96 /* ".part-" + 3 numbers + ".inprogress" fit easily */

/* One pre-committed, not yet committed epoch. */
struct pend {
	int64_t ckpt, epoch;
	uint32_t nfiles;
};

struct psink {
	const struct sl_part_sink_conf *conf;
	const struct sl_subtask_info *info;
	int dirfd;
	int fd; /* the open in-progress file (the last of the epoch), or -1 */
	int64_t epoch;
	uint32_t nfiles;   /* files of this epoch so far */
	uint64_t size;	   /* bytes in the open file */
	int64_t opened_ns; /* CLOCK_MONOTONIC when it was created */
	uint64_t roll_bytes;
	struct pend *pend;
	unsigned npend, cappend;
	struct sli_linefmt fmt;
};

static int64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* "[.]part-S-E-K[suffix]": @hidden adds the leading dot. */
static void part_name(char *buf, bool hidden, unsigned s, int64_t e, uint32_t k, const char *suffix)
{
	snprintf(buf, PART_NAME_MAX, "%spart-%u-%" PRId64 "-%" PRIu32 "%s", hidden ? "." : "", s, e,
		 k, suffix);
}

/* "cannot VERB 'NAME' in 'DIR': reason"; returns @rc. */
static int syserr(char *errbuf, size_t errlen, int rc, const char *verb, const char *name,
		  const char *dir)
{
	return sl_errbuf_set(errbuf, errlen, rc, "cannot %s '%s' in '%s': %s", verb, name, dir,
			     sl_strerror(rc));
}

static int sync_dir(int dirfd, const char *dir, char *errbuf, size_t errlen)
{
	if (fsync(dirfd) < 0)
		return sl_errbuf_set(errbuf, errlen, -errno, "cannot fsync directory '%s': %s", dir,
				     strerror(errno));
	return 0;
}

static int open_dir(const char *dir, char *errbuf, size_t errlen)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return sl_errbuf_set(errbuf, errlen, -errno,
				     "part sink: cannot open directory '%s': %s", dir,
				     strerror(errno));
	return fd;
}

static bool exists_at(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/*
 * Make visible the file @name ("part-S-E-K") pre-committed as
 * ".@name.pending". Already visible (and no pending one): done. Return 1
 * when it renamed, 0 when it was committed before, -ENOENT when neither
 * exists, -EEXIST when both do, -errno of rename.
 */
static int commit_one(int dirfd, const char *dir, const char *name, char *errbuf, size_t errlen)
{
	char pending[PART_NAME_MAX + 16];
	int rc;

	snprintf(pending, sizeof(pending), ".%s.pending", name);
	rc = renameat2(dirfd, pending, dirfd, name, RENAME_NOREPLACE);
	if (rc < 0 && (errno == EINVAL || errno == ENOSYS)) {
		/* No RENAME_NOREPLACE here: check, then rename (we own the names). */
		if (exists_at(dirfd, name) && exists_at(dirfd, pending))
			errno = EEXIST;
		else
			rc = renameat(dirfd, pending, dirfd, name);
	}
	if (rc == 0)
		return 1;
	rc = -errno;
	if (rc == -ENOENT && exists_at(dirfd, name))
		return 0;
	if (rc == -ENOENT)
		return sl_errbuf_set(errbuf, errlen, -ENOENT,
				     "part sink: '%s' in '%s' was pre-committed but is gone: "
				     "neither '%s' nor '%s' exists",
				     name, dir, pending, name);
	if (rc == -EEXIST)
		return sl_errbuf_set(errbuf, errlen, -EEXIST,
				     "cannot rename '%s' in '%s': '%s' already exists", pending,
				     dir, name);
	return syserr(errbuf, errlen, rc, "rename", pending, dir);
}

/* -------------------------------------------------------------- subtask */

static void psink_close(void *state)
{
	struct psink *p = state;

	if (p == NULL)
		return;
	/* In-progress and pending files stay: recover() decides their fate. */
	if (p->fd >= 0)
		close(p->fd);
	if (p->dirfd >= 0)
		close(p->dirfd);
	sli_linefmt_fini(&p->fmt);
	free(p->pend);
	sli_conn_free(p);
}

static int psink_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	const struct sl_part_sink_conf *conf = arg;
	struct psink *p;
	int rc;

	if (info == NULL || state == NULL)
		return -EINVAL;
	if (conf == NULL || conf->dir == NULL || conf->format == NULL)
		return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
				     "part sink: the configuration needs a directory and a format "
				     "function");
	if (conf->roll_interval_ms < 0)
		return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
				     "part sink: roll_interval_ms %" PRId64 " is negative",
				     conf->roll_interval_ms);
	p = sli_conn_zalloc(sizeof(*p));
	if (p == NULL)
		return sl_errbuf_set(info->errbuf, info->errlen, -ENOMEM,
				     "part sink: out of memory");
	p->conf = conf;
	p->info = info;
	p->fd = -1;
	p->dirfd = -1;
	p->epoch = info->restored_checkpoint + 1;
	p->roll_bytes = conf->roll_bytes ? conf->roll_bytes : PART_ROLL_BYTES_DEFAULT;
	rc = sli_linefmt_init(&p->fmt, conf->format, conf->arg, info, "part sink", conf->dir);
	if (rc < 0) {
		psink_close(p);
		return rc;
	}
	rc = open_dir(conf->dir, info->errbuf, info->errlen);
	if (rc < 0) {
		psink_close(p);
		return rc;
	}
	p->dirfd = rc;
	*state = p;
	return 0;
}

/* Close the open in-progress file, fsyncing it first when asked. */
static int close_current(struct psink *p)
{
	char name[PART_NAME_MAX];
	int fd = p->fd, rc = 0;
	const char *verb = "fsync";

	if (fd < 0)
		return 0;
	p->fd = -1;
	if (p->conf->fsync && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0) {
		rc = -errno;
		verb = "close";
	}
	if (rc == 0)
		return 0;
	part_name(name, true, p->info->index, p->epoch, p->nfiles - 1, ".inprogress");
	return syserr(p->info->errbuf, p->info->errlen, rc, verb, name, p->conf->dir);
}

/* An sli_lines_out_fn: append whole lines to the open file, creating it first. */
static int psink_out(void *ctx, const char *buf, size_t len)
{
	struct psink *p = ctx;
	char name[PART_NAME_MAX];
	int rc;

	if (p->fd < 0) {
		part_name(name, true, p->info->index, p->epoch, p->nfiles, ".inprogress");
		rc = openat(p->dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (rc < 0)
			return syserr(p->info->errbuf, p->info->errlen, -errno, "create", name,
				      p->conf->dir);
		p->fd = rc;
		p->nfiles++;
		p->size = 0;
		p->opened_ns = mono_ns();
	}
	rc = sli_write_all(p->fd, buf, len);
	if (rc < 0) {
		part_name(name, true, p->info->index, p->epoch, p->nfiles - 1, ".inprogress");
		return syserr(p->info->errbuf, p->info->errlen, rc, "write", name, p->conf->dir);
	}
	p->size += len;
	return p->size >= p->roll_bytes ? close_current(p) : 0;
}

static int psink_write(void *state, const struct sl_batch *b)
{
	struct psink *p = state;
	int64_t interval = p->conf->roll_interval_ms;
	size_t chunk = SLI_LINEFMT_CHUNK;
	int rc;

	/* Intervals past ~292 years cannot be reached: never. */
	if (p->fd >= 0 && interval > 0 && interval <= INT64_MAX / 1000000 &&
	    mono_ns() - p->opened_ns >= interval * 1000000) {
		rc = close_current(p);
		if (rc < 0)
			return rc;
	}
	if (p->roll_bytes < chunk)
		chunk = (size_t)p->roll_bytes;
	return sli_linefmt_batch(&p->fmt, b, chunk, psink_out, p);
}

static int psink_finish(void *state)
{
	/* Durable, not visible: the final pre_commit and commit do the rest. */
	return close_current(state);
}

/* The operator section: version, count, then the visible names of every pending file. */
static int snap_list(struct psink *p, struct sl_snap_writer *w)
{
	char name[PART_NAME_MAX];
	uint32_t n = 0;
	int rc;

	for (unsigned i = 0; i < p->npend; i++)
		n += p->pend[i].nfiles;
	rc = sl_snap_section(w, SL_SNAP_OP);
	if (rc == 0)
		rc = sl_snap_put_u32(w, PART_SNAP_VERSION);
	if (rc == 0)
		rc = sl_snap_put_u32(w, n);
	for (unsigned i = 0; rc == 0 && i < p->npend; i++)
		for (uint32_t k = 0; rc == 0 && k < p->pend[i].nfiles; k++) {
			part_name(name, false, p->info->index, p->pend[i].epoch, k, "");
			rc = sl_snap_put_bytes(w, name, strlen(name));
		}
	if (rc < 0)
		return sl_errbuf_set(p->info->errbuf, p->info->errlen, rc,
				     "part sink: cannot record the pending files of '%s': %s",
				     p->conf->dir, sl_strerror(rc));
	return 0;
}

static int psink_pre_commit(void *state, int64_t ckpt, struct sl_snap_writer *w)
{
	struct psink *p = state;
	const struct sl_subtask_info *info = p->info;
	char from[PART_NAME_MAX], to[PART_NAME_MAX];
	int rc;

	if (ckpt < p->epoch)
		return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
				     "part sink: checkpoint %" PRId64
				     " is older than the epoch it would close (%" PRId64 ")",
				     ckpt, p->epoch);
	rc = close_current(p);
	if (rc < 0)
		return rc;
	for (uint32_t k = 0; k < p->nfiles; k++) {
		part_name(from, true, info->index, p->epoch, k, ".inprogress");
		part_name(to, true, info->index, p->epoch, k, ".pending");
		if (renameat(p->dirfd, from, p->dirfd, to) < 0)
			return syserr(info->errbuf, info->errlen, -errno, "rename", from,
				      p->conf->dir);
	}
	if (p->nfiles > 0) {
		if (p->conf->fsync) {
			rc = sync_dir(p->dirfd, p->conf->dir, info->errbuf, info->errlen);
			if (rc < 0)
				return rc;
		}
		if (p->npend == p->cappend) {
			unsigned cap = p->cappend ? 2 * p->cappend : 4;
			struct pend *np = realloc(p->pend, cap * sizeof(*np));

			if (np == NULL)
				return sl_errbuf_set(info->errbuf, info->errlen, -ENOMEM,
						     "part sink: out of memory");
			p->pend = np;
			p->cappend = cap;
		}
		p->pend[p->npend++] = (struct pend){ ckpt, p->epoch, p->nfiles };
	}
	p->epoch = ckpt + 1;
	p->nfiles = 0;
	return w != NULL ? snap_list(p, w) : 0;
}

static int psink_commit(void *state, int64_t ckpt)
{
	struct psink *p = state;
	const struct sl_subtask_info *info = p->info;
	char name[PART_NAME_MAX];
	unsigned done = 0;
	int rc = 0;

	while (done < p->npend && p->pend[done].ckpt <= ckpt) {
		const struct pend *e = &p->pend[done];

		for (uint32_t k = 0; k < e->nfiles; k++) {
			part_name(name, false, info->index, e->epoch, k, "");
			rc = commit_one(p->dirfd, p->conf->dir, name, info->errbuf, info->errlen);
			if (rc < 0)
				goto out;
			sli_crash_point("sink-commit");
		}
		done++;
	}
out:
	/* Entries fully committed go; a failed one stays (commit_one is idempotent). */
	if (done > 0) {
		memmove(p->pend, p->pend + done, (p->npend - done) * sizeof(*p->pend));
		p->npend -= done;
	}
	if (rc < 0 || done == 0 || !p->conf->fsync)
		return rc < 0 ? rc : 0;
	return sync_dir(p->dirfd, p->conf->dir, info->errbuf, info->errlen);
}

/* -------------------------------------------------------------- recover */

/* "part-S-E-K" with three non-empty decimal numbers, nothing else. */
static bool valid_name(const char *s, uint32_t n)
{
	unsigned fields = 1, digits = 0;

	if (n < 5 || n >= PART_NAME_MAX || memcmp(s, "part-", 5) != 0)
		return false;
	for (uint32_t i = 5; i < n; i++) {
		if (s[i] >= '0' && s[i] <= '9') {
			digits++;
		} else if (s[i] == '-' && digits > 0) {
			fields++;
			digits = 0;
		} else {
			return false;
		}
	}
	return fields == 3 && digits > 0;
}

/* A snapshot error was written to @r's buffer: bring it to the caller's. */
static int snap_err(const struct sl_snap_reader *r, int rc, char *errbuf, size_t errlen)
{
	if (r->errbuf != NULL && r->errbuf != errbuf)
		sl_errbuf_set(errbuf, errlen, rc, "%s", r->errbuf);
	return rc;
}

/* Commit every file old subtask @r listed. */
static int recover_one(int dirfd, const char *dir, struct sl_snap_reader *r, bool *changed,
		       char *errbuf, size_t errlen)
{
	uint32_t section, version, n, len;
	char name[PART_NAME_MAX];
	const void *s;
	int rc;

	while ((rc = sl_snap_next(r, &section)) > 0) {
		if (section != SL_SNAP_OP)
			return snap_err(
			    r,
			    sl_snap_bad(r, "part sink: a key-group section in a sink's snapshot"),
			    errbuf, errlen);
		if ((rc = sl_snap_get_u32(r, &version)) < 0 || (rc = sl_snap_get_u32(r, &n)) < 0)
			return snap_err(r, rc, errbuf, errlen);
		if (version != PART_SNAP_VERSION)
			return snap_err(r, sl_snap_bad(r, "part sink: unknown format version"),
					errbuf, errlen);
		for (uint32_t i = 0; i < n; i++) {
			if ((rc = sl_snap_get_bytes(r, &s, &len)) < 0)
				return snap_err(r, rc, errbuf, errlen);
			if (!valid_name(s, len))
				return snap_err(r,
						sl_snap_bad(r, "part sink: not a part file name"),
						errbuf, errlen);
			memcpy(name, s, len);
			name[len] = '\0';
			rc = commit_one(dirfd, dir, name, errbuf, errlen);
			if (rc < 0)
				return rc;
			*changed |= rc > 0;
		}
	}
	return rc < 0 ? snap_err(r, rc, errbuf, errlen) : 0;
}

/*
 * One pass over @dir: with @remove, delete every ".part-*" entry;
 * otherwise fail with -EEXIST at the first committed "part-*" file.
 */
static int scan_dir(int dirfd, const char *dir, bool remove, bool *changed, char *errbuf,
		    size_t errlen)
{
	int fd = dup(dirfd), rc = 0;
	struct dirent *d;
	DIR *dp;

	if (fd < 0 || (dp = fdopendir(fd)) == NULL) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return sl_errbuf_set(errbuf, errlen, rc,
				     "part sink: cannot read directory '%s': %s", dir,
				     sl_strerror(rc));
	}
	rewinddir(dp);
	for (errno = 0; (d = readdir(dp)) != NULL; errno = 0) {
		if (!remove && strncmp(d->d_name, "part-", 5) == 0) {
			rc = sl_errbuf_set(errbuf, errlen, -EEXIST,
					   "part sink: '%s' already holds committed output ('%s'): "
					   "exactly-once output needs an empty directory or "
					   "--restore",
					   dir, d->d_name);
			break;
		}
		if (remove && strncmp(d->d_name, ".part-", 6) == 0) {
			if (unlinkat(dirfd, d->d_name, 0) < 0) {
				rc = syserr(errbuf, errlen, -errno, "delete", d->d_name, dir);
				break;
			}
			*changed = true;
		}
	}
	if (d == NULL && errno != 0)
		rc = sl_errbuf_set(errbuf, errlen, -errno,
				   "part sink: cannot read directory '%s': %s", dir,
				   strerror(errno));
	closedir(dp);
	return rc;
}

static int psink_recover(void *arg, int64_t ckpt, struct sl_snap_reader *const *old, unsigned nold,
			 char *errbuf, size_t errlen)
{
	const struct sl_part_sink_conf *conf = arg;
	bool changed = false;
	int dirfd, rc = 0;

	if (conf == NULL || conf->dir == NULL || conf->format == NULL)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "part sink: the configuration needs a directory and a format "
				     "function");
	if (ckpt < 0 || (nold > 0 && old == NULL))
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "part sink: recover from checkpoint %" PRId64
				     " with %u snapshots is not valid",
				     ckpt, nold);
	dirfd = open_dir(conf->dir, errbuf, errlen);
	if (dirfd < 0)
		return dirfd;
	/* Refuse before deleting anything: leftovers may belong to that other output. */
	if (ckpt == 0)
		rc = scan_dir(dirfd, conf->dir, false, &changed, errbuf, errlen);
	for (unsigned i = 0; rc == 0 && i < nold; i++)
		if (old[i] != NULL)
			rc = recover_one(dirfd, conf->dir, old[i], &changed, errbuf, errlen);
	if (rc == 0)
		rc = scan_dir(dirfd, conf->dir, true, &changed, errbuf, errlen);
	if (rc == 0 && changed && conf->fsync)
		rc = sync_dir(dirfd, conf->dir, errbuf, errlen);
	close(dirfd);
	return rc;
}

const struct sl_sink_ops sl_part_sink_ops = {
	.open = psink_open,
	.write = psink_write,
	.finish = psink_finish,
	.close = psink_close,
	.pre_commit = psink_pre_commit,
	.commit = psink_commit,
	.recover = psink_recover,
};
