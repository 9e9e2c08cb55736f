/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sli_ckpt_store.h — state/'s checkpoint storage (ckpt.c): the
 * implementation of core's struct sli_ckpt_storage (core/sli_ckpt.h,
 * which is the contract: directory layout, file format, errors), and the
 * hooks its tests use.
 *
 * File format (every file the store writes, _metadata included), little
 * endian:
 *	0	8	"SLCKPT01"
 *	8	8	u64 payload length L
 *	16	L	payload
 *	16+L	4	u32 CRC32C of the payload
 *	20+L	4	u32 CRC32C of bytes 0..15 (the header)
 * so a file is L + 24 bytes.
 */
#ifndef SLI_CKPT_STORE_H
#define SLI_CKPT_STORE_H

#include "sli_ckpt.h"
#include "sli_io.h"

#define SLI_CKPT_MAGIC	  "SLCKPT01"
#define SLI_CKPT_HEADER	  16u /* magic and payload length */
#define SLI_CKPT_TRAILER  8u  /* payload CRC, header CRC */
#define SLI_CKPT_METADATA "_metadata"

/** The storage the job is given (sl_job_use_checkpoint_storage()). */
extern const struct sli_ckpt_storage sli_ckpt_storage_impl;

/**
 * sli_ckpt_store_open_with_io() - sli_ckpt_storage_impl.open() with the
 * engine @io (borrowed: it must outlive the store) instead of one chosen
 * by name; tests pass a fault engine (sli_io_fault_create()) here.
 * Return: 0; -EINVAL; the errors of open().
 */
int sli_ckpt_store_open_with_io(const char *dir, struct sli_io *io, struct sli_ckpt_store **out,
				char *err, size_t errlen);

/** The name of the store's engine: "io_uring", "posix" or "fault". */
const char *sli_ckpt_store_engine(const struct sli_ckpt_store *s);

/*
 * O_DIRECT. A file whose payload has at least 1 MiB (by default) of whole
 * blocks aligned both in memory and on disk (the file system's direct-I/O
 * alignment from statx(), else 4 KiB: with 4 KiB, a payload at an address
 * 16 bytes past a page boundary, as glibc's large blocks are) has those
 * blocks written with O_DIRECT: no copy into the page cache. The format is
 * the same. SLUICE_CKPT_DIRECT in the environment: 0 turns it off, a
 * number sets the least aligned bytes a file needs (tests use small ones).
 */
struct sli_ckpt_direct_counts {
	uint64_t bytes;	    /* written with O_DIRECT */
	uint64_t fallbacks; /* O_DIRECT refused (EINVAL) at open or write: went buffered */
};

/**
 * sli_ckpt_store_set_direct() - (tests) use O_DIRECT for files with at
 * least @min_bytes aligned bytes (0: never), with alignment @align for
 * memory and offsets instead of the file system's (0: the file system's).
 */
void sli_ckpt_store_set_direct(struct sli_ckpt_store *s, uint64_t min_bytes, uint32_t align);

/** What @s wrote with O_DIRECT so far. */
struct sli_ckpt_direct_counts sli_ckpt_store_direct_counts(const struct sli_ckpt_store *s);

#endif /* SLI_CKPT_STORE_H */
