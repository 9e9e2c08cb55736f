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

#endif /* SLI_CKPT_STORE_H */
