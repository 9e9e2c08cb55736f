/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_ckpt.h — checkpoint storage, as the runtime's checkpoint
 * coordinator (core/) sees it. state/ckpt.c implements it with io_uring
 * (or POSIX I/O) and CRC32C; core/ cannot call state/ directly (layers),
 * so the job holds a pointer to the implementation (sl_job.h:
 * sl_job_use_checkpoint_storage()).
 *
 * Layout of a checkpoint directory CK:
 *	CK/chk-<id>/			one per checkpoint, id in decimal
 *	CK/chk-<id>/<name>		snapshot files (sli_ckpt_storage.write)
 *	CK/chk-<id>/_metadata		the manifest: present = complete
 *	CK/chk-<id>/_metadata.tmp	a manifest being written
 * A savepoint is the same, in a directory of the user's choosing
 * (savepoint-<id>-<hex>); checkpoint.c may add a marker CK/_savepoint-<id>
 * beside the chk-<id> directories, which retain leaves alone.
 *
 * Every file the store writes is
 *	"SLCKPT01" (8 bytes), u64 payload length, payload, u32 CRC32C of
 *	the payload, u32 CRC32C of the 16 header bytes
 * and is read back only after both checks pass: a torn or bit-flipped
 * file is refused with a message naming it (-EBADMSG).
 *
 * All calls of one store come from one thread (the coordinator) except
 * the restore calls (find/read_*), which are plain functions.
 */
#ifndef SLI_CKPT_H
#define SLI_CKPT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

/*
 * checkpoint-io "fault:KIND@N", the test I/O engine (state/io_fault.c)
 * over the automatic one, so tests can fail checkpoints of a whole job:
 *	eio@N		writes fail with EIO once N bytes were written
 *	enospc@N	writes fail with ENOSPC once N bytes were written
 *	fsync@N		fsyncs fail with EIO after N succeeded
 *	short@N		every write transfers at most N > 0 bytes
 */
enum sli_ckpt_fault {
	SLI_CKPT_FAULT_EIO,
	SLI_CKPT_FAULT_ENOSPC,
	SLI_CKPT_FAULT_FSYNC,
	SLI_CKPT_FAULT_SHORT
};

/** Parse a "fault:KIND@N" @io value. Return 0, or -EINVAL when it is not one. */
static inline int sli_ckpt_fault_parse(const char *io, enum sli_ckpt_fault *kind, uint64_t *n)
{
	static const char *const kinds[] = { "eio@", "enospc@", "fsync@", "short@" };
	const char *p;
	char *end;

	if (strncmp(io, "fault:", 6) != 0)
		return -EINVAL;
	for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		size_t len = strlen(kinds[k]);

		if (strncmp(io + 6, kinds[k], len) != 0)
			continue;
		p = io + 6 + len;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		errno = 0;
		*n = strtoull(p, &end, 10);
		if (*end != '\0' || errno != 0 || (k == SLI_CKPT_FAULT_SHORT && *n == 0) ||
		    *n > UINT32_MAX)
			return -EINVAL;
		*kind = (enum sli_ckpt_fault)k;
		return 0;
	}
	return -EINVAL;
}

struct sli_ckpt_store; /* an open checkpoint directory */
struct sli_ckpt_out;   /* one checkpoint being written */

struct sli_ckpt_storage {
	/**
	 * Open checkpoint directory @dir, creating it (not its parents) when
	 * missing. @io: "auto", "io_uring" or "posix" (as the state-io
	 * option: auto logs its choice and falls back to POSIX when io_uring
	 * is unavailable or under sanitizers), or a test fault engine
	 * (sli_ckpt_fault_parse()). Return 0 or -errno with a
	 * sentence in @err.
	 */
	int (*open)(const char *dir, const char *io, struct sli_ckpt_store **out, char *err,
		    size_t errlen);
	void (*close)(struct sli_ckpt_store *s);

	/**
	 * Start checkpoint @id: create CK/chk-<id> (or, when @savepoint_dir
	 * is set, that directory, which must not exist or be empty), fsync
	 * its parent. Return 0 or -errno (-EEXIST: it already exists).
	 */
	int (*begin)(struct sli_ckpt_store *s, int64_t id, const char *savepoint_dir,
		     struct sli_ckpt_out **out, char *err, size_t errlen);
	/**
	 * Write files of the checkpoint, all submitted together: file k is
	 * named @names[k] and its payload is @iov[k] (one buffer each). Each
	 * file's write is linked to its fsync (IOSQE_IO_LINK), so the fsync
	 * cannot overtake the write. A short write is continued; any error
	 * (write or fsync) fails the call with the file named.
	 * @bytes: receives the bytes written in all (headers included).
	 */
	int (*write)(struct sli_ckpt_out *c, const char *const *names, const struct iovec *iov,
		     unsigned n, uint64_t *bytes, char *err, size_t errlen);
	/**
	 * The commit point: write @manifest (@len bytes) as _metadata.tmp,
	 * fsync it, rename it to _metadata, fsync the directory. Return 0
	 * (the checkpoint is complete) or -errno (it is not; abort it).
	 */
	int (*complete)(struct sli_ckpt_out *c, const void *manifest, size_t len, char *err,
			size_t errlen);
	/**
	 * Free @c. When it did not complete, delete the files it wrote and
	 * its directory (a savepoint directory given by the user is emptied
	 * of the store's files but left in place when it existed before).
	 */
	void (*finish)(struct sli_ckpt_out *c, bool completed);
	/**
	 * Keep the @keep newest complete checkpoints of the store: delete
	 * older complete ones and every incomplete one older than the newest
	 * complete. Never touches anything but chk-<id> directories.
	 */
	int (*retain)(struct sli_ckpt_store *s, unsigned keep, char *err, size_t errlen);

	/* ---- restore: plain functions, no store needed ---- */

	/**
	 * The complete checkpoints in directory @dir (chk-<id> with a
	 * _metadata file; its content is not checked here), newest first,
	 * into @ids (up to @cap). Return how many there are (maybe > @cap),
	 * 0 for none or a missing @dir, -errno.
	 */
	int (*list)(const char *dir, int64_t *ids, unsigned cap, char *err, size_t errlen);
	/**
	 * Read and verify file @name of the checkpoint in directory @path
	 * (CK/chk-<id> or a savepoint). *@buf (free() it) receives the
	 * payload. Return 0; -ENOENT; -EBADMSG for a torn, truncated or
	 * corrupt file ("PATH/NAME: checksum mismatch", "... truncated: N of M
	 * bytes"); -errno.
	 */
	int (*read)(const char *path, const char *name, void **buf, size_t *len, char *err,
		    size_t errlen);
};

#endif /* SLI_CKPT_H */
