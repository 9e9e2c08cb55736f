/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ckpt_store.c — checkpoint storage (state/ckpt.c, the contract of
 * core/sli_ckpt.h) and the engine features it needs (fsync requests,
 * SLI_IO_LINK, the fault engine's fsync failures and short writes).
 *
 * Expected bytes are built here by hand from the format (magic, little
 * endian length, CRC32C with the test's own software CRC, which test_spill
 * checks against published vectors), never read back from the store.
 * Covered, with the POSIX and the io_uring engine where an engine is
 * involved: round trip of several files and a manifest (byte layout,
 * modes, bytes reported); engine choice by name; open errors; torn files
 * at many offsets and trailing garbage; a bit flip at every byte; EIO,
 * ENOSPC, failing fsync and short writes (continued, and failing after a
 * short write); complete() failing at each step leaves no complete
 * checkpoint; list order and filtering; retain; savepoint directories;
 * argument errors; the engines' linking (a failed write cancels its
 * fsync, chains are not split across io_uring windows); O_DIRECT: which
 * bytes go direct (the expected count computed here from the alignment),
 * short direct writes continued direct or realigned, a direct write the
 * kernel refuses redone buffered, ENOSPC and fsync failure on the direct
 * path, misaligned payloads buffered, and tmpfs as found.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_test.h"
#include "sli_ckpt_store.h"
#include "sli_io.h"

static const struct sli_ckpt_storage *S = &sli_ckpt_storage_impl;

static const char *const engines[] = { "posix", "io_uring" };
static const enum sli_io_kind kinds[] = { SLI_IO_POSIX, SLI_IO_URING };

static bool engine_ok(unsigned ki)
{
	struct sli_io *io;

	if (sli_io_create(NULL, kinds[ki], &io) < 0) {
		printf("  (engine %s unavailable here: skipped)\n", engines[ki]);
		return false;
	}
	sli_io_destroy(io);
	return true;
}

/* ------------------------------------------------------------ helpers */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct tdir {
	char base[64];	/* a fresh temporary directory */
	char ck[96];	/* base/ck: the checkpoint directory (not created) */
	char chk[128];	/* base/ck/chk-<id>, set by chk() */
	char file[512]; /* set by fpath() */
};

static const char *troot = "/tmp"; /* where tdir_init() makes its directories */

static void tdir_init(struct tdir *t)
{
	snprintf(t->base, sizeof(t->base), "%s/sluice-ckpt-test-XXXXXX", troot);
	CU_ASSERT_FATAL(mkdtemp(t->base) != NULL);
	snprintf(t->ck, sizeof(t->ck), "%s/ck", t->base);
}

static const char *chk(struct tdir *t, int64_t id)
{
	snprintf(t->chk, sizeof(t->chk), "%s/chk-%lld", t->ck, (long long)id);
	return t->chk;
}

static const char *fpath(struct tdir *t, const char *dir, const char *name)
{
	snprintf(t->file, sizeof(t->file), "%s/%s", dir, name);
	return t->file;
}

static bool exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

/* The whole file @p into a malloc()ed buffer; NULL if it cannot be read. */
static uint8_t *slurp(const char *p, size_t *len)
{
	FILE *f = fopen(p, "rb");
	uint8_t *b;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc((size_t)n + 1);
	if (b != NULL && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void spit(const char *p, const void *b, size_t len)
{
	FILE *f = fopen(p, "wb");

	CU_ASSERT_FATAL(f != NULL);
	CU_ASSERT(fwrite(b, 1, len, f) == len);
	fclose(f);
}

/* The file the format says @payload must become, built byte by byte. */
static uint8_t *expect_file(const void *payload, size_t len, size_t *flen)
{
	uint8_t *e = malloc(len + 24);
	uint32_t pc, hc;

	memcpy(e, "SLCKPT01", 8);
	for (unsigned i = 0; i < 8; i++)
		e[8 + i] = (uint8_t)((uint64_t)len >> (8 * i));
	memcpy(e + 16, payload, len);
	pc = sli_crc32c_sw(0, payload, len);
	hc = sli_crc32c_sw(0, e, 16);
	for (unsigned i = 0; i < 4; i++) {
		e[16 + len + i] = (uint8_t)(pc >> (8 * i));
		e[20 + len + i] = (uint8_t)(hc >> (8 * i));
	}
	*flen = len + 24;
	return e;
}

/* Is file @p exactly what the format makes of @payload? */
static bool file_is(const char *p, const void *payload, size_t len)
{
	size_t flen, elen;
	uint8_t *f = slurp(p, &flen), *e = expect_file(payload, len, &elen);
	bool ok = f != NULL && flen == elen && memcmp(f, e, elen) == 0;

	free(f);
	free(e);
	return ok;
}

static uint64_t rng = 11;

static void fill(uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		b[i] = (uint8_t)(rng >> 56);
	}
}

/* Three files of 0, 1 and 100 000 bytes. */
enum { NF = 3 };
static const char *const fnames[NF] = { "t1-0.snap", "t1-1.snap", "src-0.off" };
static uint8_t big[100000];
static struct iovec fiov[NF];

static void files_init(void)
{
	fill(big, sizeof(big));
	fiov[0] = (struct iovec){ .iov_base = big, .iov_len = 0 };
	fiov[1] = (struct iovec){ .iov_base = big + 7, .iov_len = 1 };
	fiov[2] = (struct iovec){ .iov_base = big, .iov_len = sizeof(big) };
}

static const char manifest[] = "{\"id\": 1, \"files\": [\"t1-0.snap\", \"t1-1.snap\"]}";

/* Does @got contain @want? Print both when not. */
static bool has(const char *got, const char *want)
{
	if (strstr(got, want) != NULL)
		return true;
	printf("\n    message \"%s\" lacks \"%s\"\n", got, want);
	return false;
}

/* ------------------------------------------------------ round trip */

static void roundtrip(unsigned ki)
{
	struct sli_ckpt_store *s;
	struct sli_ckpt_out *c;
	struct tdir t;
	char err[512] = "";
	uint64_t bytes = 0;
	int64_t ids[4];
	struct stat st;

	tdir_init(&t);
	CU_ASSERT_FATAL(S->open(t.ck, engines[ki], &s, err, sizeof(err)) == 0);
	CU_ASSERT_STRING_EQUAL(sli_ckpt_store_engine(s), engines[ki]);
	CU_ASSERT(stat(t.ck, &st) == 0 && S_ISDIR(st.st_mode));
	CU_ASSERT_FATAL(S->begin(s, 1, NULL, &c, err, sizeof(err)) == 0);
	CU_ASSERT(stat(chk(&t, 1), &st) == 0 && S_ISDIR(st.st_mode) &&
		  (st.st_mode & 07777) == 0755);
	CU_ASSERT_EQUAL(S->write(c, fnames, fiov, NF, &bytes, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(bytes, 24 + 24 + 1 + 24 + sizeof(big));
	for (unsigned k = 0; k < NF; k++) {
		CU_ASSERT(file_is(fpath(&t, t.chk, fnames[k]), fiov[k].iov_base, fiov[k].iov_len));
		CU_ASSERT(stat(t.file, &st) == 0 && (st.st_mode & 0777) == 0644);
	}
	/* Written but not complete: not listed. */
	CU_ASSERT_EQUAL(S->list(t.ck, ids, 4, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(S->complete(c, manifest, strlen(manifest), err, sizeof(err)), 0);
	S->finish(c, true);
	CU_ASSERT(file_is(fpath(&t, t.chk, "_metadata"), manifest, strlen(manifest)));
	CU_ASSERT(!exists(fpath(&t, t.chk, "_metadata.tmp")));
	CU_ASSERT_EQUAL(S->list(t.ck, ids, 4, err, sizeof(err)), 1);
	CU_ASSERT_EQUAL(ids[0], 1);
	/* A second checkpoint; both listed, newest first. */
	CU_ASSERT_FATAL(S->begin(s, 2, NULL, &c, err, sizeof(err)) == 0);
	CU_ASSERT_EQUAL(S->write(c, fnames + 1, fiov + 1, 1, &bytes, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(bytes, 25);
	CU_ASSERT_EQUAL(S->complete(c, "", 0, err, sizeof(err)), 0);
	S->finish(c, true);
	CU_ASSERT(file_is(fpath(&t, chk(&t, 2), "_metadata"), "", 0));
	S->close(s);

	/* Restore side: plain functions, no store. */
	CU_ASSERT_EQUAL(S->list(t.ck, ids, 4, err, sizeof(err)), 2);
	CU_ASSERT(ids[0] == 2 && ids[1] == 1);
	for (unsigned k = 0; k < NF; k++) {
		void *b = NULL;
		size_t len = 99;

		CU_ASSERT_EQUAL(S->read(chk(&t, 1), fnames[k], &b, &len, err, sizeof(err)), 0);
		CU_ASSERT(b != NULL && len == fiov[k].iov_len &&
			  memcmp(b, fiov[k].iov_base, len) == 0);
		free(b);
	}
	{
		void *b = NULL;
		size_t len = 0;

		CU_ASSERT_EQUAL(S->read(chk(&t, 1), "_metadata", &b, &len, err, sizeof(err)), 0);
		CU_ASSERT(len == strlen(manifest) && memcmp(b, manifest, len) == 0);
		free(b);
	}
	rm_rf(t.base);
}

static void test_roundtrip(void)
{
	files_init();
	for (unsigned ki = 0; ki < 2; ki++)
		if (engine_ok(ki))
			roundtrip(ki);
}

/* ------------------------------------------------------- open, engines */

static void test_open(void)
{
	struct sli_ckpt_store *s;
	struct tdir t;
	char err[512] = "", p[160];
	const char *want;

	tdir_init(&t);
	CU_ASSERT_EQUAL(S->open(t.ck, "bogus", &s, err, sizeof(err)), -EINVAL);
	CU_ASSERT(has(err, "bogus"));
	/* auto: posix when asked by the environment, else as the build allows. */
	setenv("SLUICE_STATE_IO", "posix", 1);
	CU_ASSERT_FATAL(S->open(t.ck, "auto", &s, err, sizeof(err)) == 0);
	CU_ASSERT_STRING_EQUAL(sli_ckpt_store_engine(s), "posix");
	S->close(s);
	unsetenv("SLUICE_STATE_IO");
	CU_ASSERT_FATAL(S->open(t.ck, NULL, &s, err, sizeof(err)) == 0);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	want = "posix";
#else
	want = engine_ok(1) ? "io_uring" : "posix";
#endif
	CU_ASSERT_STRING_EQUAL(sli_ckpt_store_engine(s), want);
	S->close(s);
	/* Parents are not created. */
	snprintf(p, sizeof(p), "%s/no/ck", t.base);
	CU_ASSERT_EQUAL(S->open(p, "posix", &s, err, sizeof(err)), -ENOENT);
	CU_ASSERT(has(err, p));
	CU_ASSERT(!exists(fpath(&t, t.base, "no")));
	/* A file where the directory should be. */
	snprintf(p, sizeof(p), "%s/file", t.base);
	spit(p, "x", 1);
	CU_ASSERT_EQUAL(S->open(p, "posix", &s, err, sizeof(err)), -ENOTDIR);
	CU_ASSERT(has(err, p) && has(err, "not a directory"));
	CU_ASSERT_EQUAL(S->open("", "posix", &s, err, sizeof(err)), -EINVAL);
	CU_ASSERT_EQUAL(sli_ckpt_store_open_with_io(t.ck, NULL, &s, err, sizeof(err)), -EINVAL);
	rm_rf(t.base);
}

/* ------------------------------------------------ a file to corrupt */

/* Write checkpoint 1 of one file "f" of @len payload bytes (posix). */
static void one_file(struct tdir *t, const void *payload, size_t len)
{
	struct sli_ckpt_store *s;
	struct sli_ckpt_out *c;
	const char *name = "f";
	struct iovec v = { .iov_base = (void *)(uintptr_t)payload, .iov_len = len };
	char err[512];

	tdir_init(t);
	CU_ASSERT_FATAL(S->open(t->ck, "posix", &s, err, sizeof(err)) == 0);
	CU_ASSERT_FATAL(S->begin(s, 1, NULL, &c, err, sizeof(err)) == 0);
	CU_ASSERT_FATAL(S->write(c, &name, &v, 1, NULL, err, sizeof(err)) == 0);
	CU_ASSERT_FATAL(S->complete(c, "m", 1, err, sizeof(err)) == 0);
	S->finish(c, true);
	S->close(s);
	CU_ASSERT_FATAL(file_is(fpath(t, chk(t, 1), "f"), payload, len));
}

/* read() of chk-1/f: its return; the message in @err. */
static int read_f(struct tdir *t, char *err, size_t errlen)
{
	void *b = (void *)1;
	size_t len;
	int rc = S->read(chk(t, 1), "f", &b, &len, err, errlen);

	if (rc == 0)
		free(b);
	return rc;
}

static void test_torn(void)
{
	static const size_t cuts[] = { 0,  1,	7,    8,    15,	  16,	17,  23,
				       24, 500, 1015, 1016, 1019, 1020, 1023 };
	uint8_t payload[1000], *orig;
	char err[512], want[160];
	struct tdir t;
	size_t olen;

	fill(payload, sizeof(payload));
	one_file(&t, payload, sizeof(payload));
	orig = slurp(fpath(&t, chk(&t, 1), "f"), &olen);
	CU_ASSERT_FATAL(orig != NULL && olen == 1024);
	snprintf(want, sizeof(want), "%s/f", t.chk);
	for (unsigned i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		spit(fpath(&t, t.chk, "f"), orig, cuts[i]);
		err[0] = '\0';
		CU_ASSERT_EQUAL(read_f(&t, err, sizeof(err)), -EBADMSG);
		CU_ASSERT(has(err, want) && has(err, "truncated"));
		if (cuts[i] >= 16) { /* the header says how long it should be */
			char n[64];

			snprintf(n, sizeof(n), "%zu of 1024 bytes", cuts[i]);
			CU_ASSERT(has(err, n));
		}
	}
	/* Trailing garbage: one byte, then a whole extra trailer. */
	for (size_t extra = 1; extra <= 8; extra += 7) {
		uint8_t *g = malloc(olen + extra);

		memcpy(g, orig, olen);
		memset(g + olen, 0, extra);
		spit(fpath(&t, t.chk, "f"), g, olen + extra);
		CU_ASSERT_EQUAL(read_f(&t, err, sizeof(err)), -EBADMSG);
		CU_ASSERT(has(err, want) && has(err, "trailing garbage"));
		free(g);
	}
	/* Intact again: reads. */
	spit(fpath(&t, t.chk, "f"), orig, olen);
	CU_ASSERT_EQUAL(read_f(&t, err, sizeof(err)), 0);
	/* Missing. */
	{
		void *b;
		size_t len;

		CU_ASSERT_EQUAL(S->read(t.chk, "nope", &b, &len, err, sizeof(err)), -ENOENT);
		CU_ASSERT(has(err, "nope") && has(err, t.chk));
	}
	free(orig);
	rm_rf(t.base);
}

static void test_bitflip(void)
{
	enum { L = 64, FL = L + 24 };
	uint8_t payload[L], *orig, *b;
	char err[512], want[160];
	struct tdir t;
	size_t olen;
	unsigned caught = 0;

	fill(payload, sizeof(payload));
	one_file(&t, payload, sizeof(payload));
	orig = slurp(fpath(&t, chk(&t, 1), "f"), &olen);
	CU_ASSERT_FATAL(orig != NULL && olen == FL);
	b = malloc(FL);
	snprintf(want, sizeof(want), "%s/f", t.chk);
	for (unsigned off = 0; off < FL; off++) {
		for (unsigned bit = 0; bit < 8; bit += 7) {
			const char *what;
			int rc;

			memcpy(b, orig, FL);
			b[off] ^= (uint8_t)(1u << bit);
			spit(fpath(&t, t.chk, "f"), b, FL);
			err[0] = '\0';
			rc = read_f(&t, err, sizeof(err));
			CU_ASSERT_EQUAL(rc, -EBADMSG);
			caught += rc == -EBADMSG;
			if (off < 8)
				what = "bad magic";
			else if (off < 16) /* the length no longer matches the size */
				what = (orig[off] ^ (1u << bit)) > orig[off] ? "truncated"
									     : "trailing garbage";
			else if (off < 16 + L + 4) /* payload or its stored CRC */
				what = "checksum mismatch (payload";
			else
				what = "checksum mismatch (header";
			CU_ASSERT(has(err, want) && has(err, what));
		}
	}
	CU_ASSERT_EQUAL(caught, 2 * FL);
	free(b);
	free(orig);
	rm_rf(t.base);
}

/* ------------------------------------------------------- I/O faults */

struct ffix {
	struct tdir t;
	struct sli_io *inner, *io;
	struct sli_ckpt_store *s;
	struct sli_ckpt_out *c;
	char err[512];
};

static bool ffix_open(struct ffix *f, unsigned ki, int64_t id)
{
	tdir_init(&f->t);
	if (sli_io_create(NULL, kinds[ki], &f->inner) < 0)
		return false;
	CU_ASSERT_FATAL(sli_io_fault_create(NULL, f->inner, &f->io) == 0);
	CU_ASSERT_FATAL(
	    sli_ckpt_store_open_with_io(f->t.ck, f->io, &f->s, f->err, sizeof(f->err)) == 0);
	CU_ASSERT_STRING_EQUAL(sli_ckpt_store_engine(f->s), "fault");
	CU_ASSERT_FATAL(S->begin(f->s, id, NULL, &f->c, f->err, sizeof(f->err)) == 0);
	return true;
}

/* Abort the checkpoint: its directory must be gone, nothing listed. */
static void ffix_close(struct ffix *f, int64_t id)
{
	int64_t ids[2];

	S->finish(f->c, false);
	CU_ASSERT(!exists(chk(&f->t, id)));
	CU_ASSERT_EQUAL(S->list(f->t.ck, ids, 2, f->err, sizeof(f->err)), 0);
	S->close(f->s);
	sli_io_destroy(f->io);
	sli_io_destroy(f->inner);
	rm_rf(f->t.base);
}

/* The message write() must give for file @name: "cannot @verb ... 'CK/chk-<id>/NAME': @why". */
static bool names_file(struct ffix *f, int64_t id, const char *verb, const char *name, int e)
{
	char want[400];

	snprintf(want, sizeof(want), "cannot %s checkpoint file '%s/%s': %s", verb, chk(&f->t, id),
		 name, strerror(e));
	return has(f->err, want);
}

static void faults(unsigned ki)
{
	struct ffix f;
	uint64_t bytes, w, fs, w0, fs0;

	/* EIO on every write. */
	if (!ffix_open(&f, ki, 3))
		return;
	sli_io_fault_counts(f.io, &w0, &fs0); /* open() and begin() fsynced directories */
	sli_io_fault_set(f.io, EIO, 0, 0, 0);
	CU_ASSERT_EQUAL(S->write(f.c, fnames, fiov, NF, &bytes, f.err, sizeof(f.err)), -EIO);
	CU_ASSERT(names_file(&f, 3, "write", fnames[0], EIO));
	sli_io_fault_counts(f.io, &w, &fs);
	CU_ASSERT(w == w0 && fs == fs0); /* the files' fsyncs were cancelled */
	ffix_close(&f, 3);

	/* ENOSPC once the first file (24 bytes) and 10 more bytes are written. */
	ffix_open(&f, ki, 4);
	sli_io_fault_set(f.io, ENOSPC, 24 + 10, 0, 0);
	CU_ASSERT_EQUAL(S->write(f.c, fnames, fiov, NF, &bytes, f.err, sizeof(f.err)), -ENOSPC);
	CU_ASSERT(names_file(&f, 4, "write", fnames[1], ENOSPC));
	ffix_close(&f, 4);

	/* The first file's fsync fails. */
	ffix_open(&f, ki, 5);
	sli_io_fault_fsync(f.io, EIO, 0);
	CU_ASSERT_EQUAL(S->write(f.c, fnames, fiov, NF, &bytes, f.err, sizeof(f.err)), -EIO);
	CU_ASSERT(names_file(&f, 5, "fsync", fnames[0], EIO));
	ffix_close(&f, 5);

	/* The third file's fsync fails (the first two succeed). */
	ffix_open(&f, ki, 6);
	sli_io_fault_fsync(f.io, EIO, 2);
	CU_ASSERT_EQUAL(S->write(f.c, fnames, fiov, NF, &bytes, f.err, sizeof(f.err)), -EIO);
	CU_ASSERT(names_file(&f, 6, "fsync", fnames[2], EIO));
	ffix_close(&f, 6);

	/* Short writes of at most 7 bytes, continued to the right bytes. */
	ffix_open(&f, ki, 7);
	sli_io_fault_counts(f.io, &w0, &fs0);
	sli_io_fault_short(f.io, 7, 1000000);
	CU_ASSERT_EQUAL(S->write(f.c, fnames, fiov, NF, &bytes, f.err, sizeof(f.err)), 0);
	CU_ASSERT_EQUAL(bytes, 3 * 24 + 1 + sizeof(big));
	for (unsigned k = 0; k < NF; k++)
		CU_ASSERT(file_is(fpath(&f.t, chk(&f.t, 7), fnames[k]), fiov[k].iov_base,
				  fiov[k].iov_len));
	sli_io_fault_counts(f.io, &w, &fs);
	CU_ASSERT(w - w0 >= (3 * 24 + 1 + sizeof(big)) / 7);
	CU_ASSERT_EQUAL(fs - fs0, NF); /* each file fsynced once, after its last byte */
	/* Only the first two writes are short: still right. */
	sli_io_fault_short(f.io, 3, 2);
	CU_ASSERT_EQUAL(S->complete(f.c, manifest, strlen(manifest), f.err, sizeof(f.err)), 0);
	CU_ASSERT(file_is(fpath(&f.t, chk(&f.t, 7), "_metadata"), manifest, strlen(manifest)));
	S->finish(f.c, true);
	S->close(f.s);
	{
		int64_t ids[2];

		CU_ASSERT_EQUAL(S->list(f.t.ck, ids, 2, f.err, sizeof(f.err)), 1);
	}
	sli_io_destroy(f.io);
	sli_io_destroy(f.inner);
	rm_rf(f.t.base);

	/* Short writes, then the disk fills up in the middle of the big file. */
	ffix_open(&f, ki, 8);
	sli_io_fault_short(f.io, 1000, 1000000);
	sli_io_fault_set(f.io, ENOSPC, 24 + 25 + 5000, 0, 0);
	CU_ASSERT_EQUAL(S->write(f.c, fnames, fiov, NF, &bytes, f.err, sizeof(f.err)), -ENOSPC);
	CU_ASSERT(names_file(&f, 8, "write", fnames[2], ENOSPC));
	ffix_close(&f, 8);
}

static void test_faults(void)
{
	files_init();
	for (unsigned ki = 0; ki < 2; ki++)
		if (engine_ok(ki))
			faults(ki);
}

/* complete() fails at each of its steps: never a complete checkpoint. */
static void complete_fails(unsigned ki)
{
	struct ffix f;
	char want[400];

	/* Writing _metadata.tmp fails. */
	if (!ffix_open(&f, ki, 1))
		return;
	CU_ASSERT_EQUAL(S->write(f.c, fnames, fiov, NF, NULL, f.err, sizeof(f.err)), 0);
	sli_io_fault_set(f.io, EIO, 0, 0, 0);
	CU_ASSERT_EQUAL(S->complete(f.c, manifest, strlen(manifest), f.err, sizeof(f.err)), -EIO);
	CU_ASSERT(names_file(&f, 1, "write", "_metadata.tmp", EIO));
	CU_ASSERT(!exists(fpath(&f.t, chk(&f.t, 1), "_metadata")));
	CU_ASSERT(!exists(fpath(&f.t, chk(&f.t, 1), "_metadata.tmp")));
	ffix_close(&f, 1);

	/* Its fsync fails. */
	ffix_open(&f, ki, 2);
	CU_ASSERT_EQUAL(S->write(f.c, fnames, fiov, NF, NULL, f.err, sizeof(f.err)), 0);
	sli_io_fault_fsync(f.io, EIO, 0);
	CU_ASSERT_EQUAL(S->complete(f.c, manifest, strlen(manifest), f.err, sizeof(f.err)), -EIO);
	CU_ASSERT(names_file(&f, 2, "fsync", "_metadata.tmp", EIO));
	CU_ASSERT(!exists(fpath(&f.t, chk(&f.t, 2), "_metadata")));
	CU_ASSERT(!exists(fpath(&f.t, chk(&f.t, 2), "_metadata.tmp")));
	ffix_close(&f, 2);

	/* The directory's fsync after the rename fails: the rename is taken back. */
	ffix_open(&f, ki, 3);
	CU_ASSERT_EQUAL(S->write(f.c, fnames, fiov, NF, NULL, f.err, sizeof(f.err)), 0);
	sli_io_fault_fsync(f.io, EIO, 1);
	CU_ASSERT_EQUAL(S->complete(f.c, manifest, strlen(manifest), f.err, sizeof(f.err)), -EIO);
	snprintf(want, sizeof(want), "cannot fsync checkpoint directory '%s'", chk(&f.t, 3));
	CU_ASSERT(has(f.err, want));
	CU_ASSERT(!exists(fpath(&f.t, chk(&f.t, 3), "_metadata")));
	CU_ASSERT(!exists(fpath(&f.t, chk(&f.t, 3), "_metadata.tmp")));
	{
		int64_t ids[2];

		CU_ASSERT_EQUAL(S->list(f.t.ck, ids, 2, f.err, sizeof(f.err)), 0);
	}
	ffix_close(&f, 3);

	/* begin()'s fsync of CK fails: no directory left behind. */
	ffix_open(&f, ki, 4);
	S->finish(f.c, false);
	sli_io_fault_fsync(f.io, EIO, 0);
	CU_ASSERT_EQUAL(S->begin(f.s, 5, NULL, &f.c, f.err, sizeof(f.err)), -EIO);
	CU_ASSERT(has(f.err, f.t.ck));
	CU_ASSERT(!exists(chk(&f.t, 5)));
	sli_io_fault_fsync(f.io, 0, 0);
	CU_ASSERT_FATAL(S->begin(f.s, 5, NULL, &f.c, f.err, sizeof(f.err)) == 0);
	ffix_close(&f, 5);
}

static void test_complete_fails(void)
{
	files_init();
	for (unsigned ki = 0; ki < 2; ki++)
		if (engine_ok(ki))
			complete_fails(ki);
}

/* ------------------------------------------------------ list, retain */

static void mk(struct tdir *t, const char *name, bool meta)
{
	char p[300];

	snprintf(p, sizeof(p), "%s/%s", t->ck, name);
	CU_ASSERT_FATAL(mkdir(p, 0755) == 0);
	spit(fpath(t, p, "x.snap"), "data", 4);
	if (meta)
		spit(fpath(t, p, "_metadata"), "m", 1);
}

static bool in_ck(struct tdir *t, const char *name)
{
	return exists(fpath(t, t->ck, name));
}

static void test_list_retain(void)
{
	struct sli_ckpt_store *s;
	struct sli_ckpt_out *c;
	struct tdir t;
	char err[512], p[300];
	int64_t ids[8];
	const char *name = "a";
	struct iovec v = { .iov_base = (void *)"A", .iov_len = 1 };

	tdir_init(&t);
	/* Missing directory: none. A file: an error. */
	CU_ASSERT_EQUAL(S->list(t.ck, ids, 8, err, sizeof(err)), 0);
	CU_ASSERT_FATAL(S->open(t.ck, "posix", &s, err, sizeof(err)) == 0);
	/* Complete 1, 2, 4, 5 by hand, 7 through the store; incomplete 3 and 8. */
	mk(&t, "chk-1", true);
	mk(&t, "chk-2", true);
	mk(&t, "chk-3", false);
	mk(&t, "chk-4", true);
	mk(&t, "chk-5", true);
	CU_ASSERT_FATAL(S->begin(s, 7, NULL, &c, err, sizeof(err)) == 0);
	CU_ASSERT_EQUAL(S->write(c, &name, &v, 1, NULL, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(S->complete(c, "m", 1, err, sizeof(err)), 0);
	S->finish(c, true);
	mk(&t, "chk-8", false);
	/* Not checkpoints: other names, a file, only a _metadata.tmp, a _metadata dir. */
	mk(&t, "chk-007", true);
	mk(&t, "chk-x1", true);
	mk(&t, "chk--1", true);
	mk(&t, "other", true);
	mk(&t, "chk-6", false);
	spit(fpath(&t, t.ck, "chk-6/_metadata.tmp"), "m", 1);
	spit(fpath(&t, t.ck, "chk-9"), "m", 1);
	mk(&t, "chk-10", false);
	snprintf(p, sizeof(p), "%s/chk-10/_metadata", t.ck);
	CU_ASSERT_FATAL(mkdir(p, 0755) == 0);

	CU_ASSERT_EQUAL(S->list(t.ck, ids, 8, err, sizeof(err)), 5);
	CU_ASSERT(ids[0] == 7 && ids[1] == 5 && ids[2] == 4 && ids[3] == 2 && ids[4] == 1);
	/* Fewer slots: the count still, the newest in them. */
	memset(ids, 0, sizeof(ids));
	CU_ASSERT_EQUAL(S->list(t.ck, ids, 2, err, sizeof(err)), 5);
	CU_ASSERT(ids[0] == 7 && ids[1] == 5 && ids[2] == 0);
	CU_ASSERT_EQUAL(S->list(t.ck, NULL, 0, err, sizeof(err)), 5);

	CU_ASSERT_EQUAL(S->retain(s, 0, err, sizeof(err)), -EINVAL);
	CU_ASSERT_EQUAL(S->retain(s, 3, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(S->list(t.ck, ids, 8, err, sizeof(err)), 3);
	CU_ASSERT(ids[0] == 7 && ids[1] == 5 && ids[2] == 4);
	/* Older complete ones and older incomplete ones are gone. */
	CU_ASSERT(!in_ck(&t, "chk-1") && !in_ck(&t, "chk-2") && !in_ck(&t, "chk-3") &&
		  !in_ck(&t, "chk-6"));
	/* The newer incomplete ones (in progress, maybe) and the rest stay. */
	CU_ASSERT(in_ck(&t, "chk-8") && in_ck(&t, "chk-10") && in_ck(&t, "chk-9"));
	CU_ASSERT(in_ck(&t, "chk-007/_metadata") && in_ck(&t, "chk-x1") && in_ck(&t, "chk--1") &&
		  in_ck(&t, "other/x.snap"));
	CU_ASSERT(in_ck(&t, "chk-7/a") && in_ck(&t, "chk-5/x.snap"));
	/* Idempotent. */
	CU_ASSERT_EQUAL(S->retain(s, 3, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(S->list(t.ck, ids, 8, err, sizeof(err)), 3);
	/* Keep 1. */
	CU_ASSERT_EQUAL(S->retain(s, 1, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(S->list(t.ck, ids, 8, err, sizeof(err)), 1);
	CU_ASSERT(ids[0] == 7 && in_ck(&t, "chk-8"));
	S->close(s);

	/* No complete one at all: incomplete ones are never deleted. */
	rm_rf(t.base);
	tdir_init(&t);
	CU_ASSERT_FATAL(S->open(t.ck, "posix", &s, err, sizeof(err)) == 0);
	mk(&t, "chk-1", false);
	mk(&t, "chk-2", false);
	CU_ASSERT_EQUAL(S->retain(s, 1, err, sizeof(err)), 0);
	CU_ASSERT(in_ck(&t, "chk-1") && in_ck(&t, "chk-2"));
	S->close(s);
	spit(fpath(&t, t.base, "plain"), "x", 1);
	CU_ASSERT_EQUAL(S->list(t.file, ids, 8, err, sizeof(err)), -ENOTDIR);
	CU_ASSERT(has(err, t.file));
	rm_rf(t.base);
}

/* ----------------------------------------------------------- savepoints */

static void test_savepoint(void)
{
	struct sli_ckpt_store *s;
	struct sli_ckpt_out *c;
	struct tdir t;
	char err[512], sp[160];
	const char *name = "a";
	struct iovec v = { .iov_base = (void *)"AB", .iov_len = 2 };
	void *b;
	size_t len;

	tdir_init(&t);
	CU_ASSERT_FATAL(S->open(t.ck, "posix", &s, err, sizeof(err)) == 0);
	/* Not there yet: made, written, complete; not a chk-<id> of CK. */
	snprintf(sp, sizeof(sp), "%s/sp1", t.base);
	CU_ASSERT_FATAL(S->begin(s, 9, sp, &c, err, sizeof(err)) == 0);
	CU_ASSERT_EQUAL(S->write(c, &name, &v, 1, NULL, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(S->complete(c, "m", 1, err, sizeof(err)), 0);
	S->finish(c, true);
	CU_ASSERT(!exists(chk(&t, 9)));
	CU_ASSERT(file_is(fpath(&t, sp, "a"), "AB", 2) &&
		  file_is(fpath(&t, sp, "_metadata"), "m", 1));
	CU_ASSERT_EQUAL(S->read(sp, "a", &b, &len, err, sizeof(err)), 0);
	CU_ASSERT(len == 2 && memcmp(b, "AB", 2) == 0);
	free(b);
	/* Now it is not empty: refused, and left alone. */
	CU_ASSERT_EQUAL(S->begin(s, 10, sp, &c, err, sizeof(err)), -EEXIST);
	CU_ASSERT(has(err, sp) && has(err, "not empty"));
	CU_ASSERT(file_is(fpath(&t, sp, "a"), "AB", 2));
	/* A file: refused. */
	CU_ASSERT_EQUAL(S->begin(s, 10, fpath(&t, sp, "a"), &c, err, sizeof(err)), -ENOTDIR);
	/* Empty and existing: used; aborted, it stays but is emptied. */
	snprintf(sp, sizeof(sp), "%s/sp2", t.base);
	CU_ASSERT_FATAL(mkdir(sp, 0700) == 0);
	CU_ASSERT_FATAL(S->begin(s, 11, sp, &c, err, sizeof(err)) == 0);
	CU_ASSERT_EQUAL(S->write(c, &name, &v, 1, NULL, err, sizeof(err)), 0);
	S->finish(c, false);
	CU_ASSERT(exists(sp) && !exists(fpath(&t, sp, "a")));
	/* Made by begin() and aborted: removed. */
	snprintf(sp, sizeof(sp), "%s/sp3", t.base);
	CU_ASSERT_FATAL(S->begin(s, 12, sp, &c, err, sizeof(err)) == 0);
	CU_ASSERT_EQUAL(S->write(c, &name, &v, 1, NULL, err, sizeof(err)), 0);
	S->finish(c, false);
	CU_ASSERT(!exists(sp));
	S->close(s);
	rm_rf(t.base);
}

/* ---------------------------------------------------- argument errors */

static void test_args(void)
{
	struct sli_ckpt_store *s;
	struct sli_ckpt_out *c, *c2;
	struct tdir t;
	char err[512];
	struct iovec v = { .iov_base = (void *)"A", .iov_len = 1 };
	static const char *const bad[] = { "", ".", "..", "a/b", "_metadata", "_metadata.tmp" };

	tdir_init(&t);
	CU_ASSERT_FATAL(S->open(t.ck, "posix", &s, err, sizeof(err)) == 0);
	CU_ASSERT_FATAL(S->begin(s, 1, NULL, &c, err, sizeof(err)) == 0);
	CU_ASSERT_EQUAL(S->begin(s, 1, NULL, &c2, err, sizeof(err)), -EEXIST);
	CU_ASSERT(has(err, chk(&t, 1)) && has(err, "already exists"));
	CU_ASSERT_EQUAL(S->begin(s, -1, NULL, &c2, err, sizeof(err)), -EINVAL);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(S->write(c, &bad[i], &v, 1, NULL, err, sizeof(err)), -EINVAL);
	{
		const char *two[2] = { "same", "same" };
		struct iovec vv[2] = { v, v };

		CU_ASSERT_EQUAL(S->write(c, two, vv, 2, NULL, err, sizeof(err)), -EEXIST);
		CU_ASSERT(has(err, "same"));
	}
	CU_ASSERT_EQUAL(S->complete(c, "m", 1, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(S->complete(c, "m", 1, err, sizeof(err)), -EINVAL);
	S->finish(c, true);
	S->finish(NULL, false);
	S->close(NULL);
	S->close(s);
	rm_rf(t.base);
}

/* ----------------------------------------------------- engine linking */

static void linking(unsigned ki)
{
	char path[] = "/tmp/sluice-ckpt-link-XXXXXX";
	int wfd = mkstemp(path), rfd = open(path, O_RDONLY);
	struct sli_io *io;
	struct sli_io_req r[3];
	char buf[8] = "abcdefg";

	CU_ASSERT_FATAL(wfd >= 0 && rfd >= 0);
	CU_ASSERT_FATAL(sli_io_create(NULL, kinds[ki], &io) == 0);
	/* On its own, an fsync of a read-only descriptor works... */
	r[0] = (struct sli_io_req){ .fd = rfd, .op = SLI_IO_FSYNC };
	CU_ASSERT_EQUAL(sli_io_run(io, r, 1), 0);
	CU_ASSERT_EQUAL(r[0].res, 0);
	/* ... linked after a write that fails (EBADF), it is cancelled. */
	r[0] = (struct sli_io_req){
		.buf = buf, .len = 8, .fd = rfd, .op = SLI_IO_WRITE, .flags = SLI_IO_LINK
	};
	r[1] = (struct sli_io_req){ .fd = rfd, .op = SLI_IO_FSYNC };
	r[2] = (struct sli_io_req){ .buf = buf, .len = 8, .fd = wfd, .op = SLI_IO_WRITE };
	CU_ASSERT_EQUAL(sli_io_run(io, r, 3), -EBADF);
	CU_ASSERT_EQUAL(r[0].res, -EBADF);
	CU_ASSERT_EQUAL(r[1].res, -ECANCELED);
	CU_ASSERT_EQUAL(r[2].res, 8); /* not in the chain: runs */
	/* A good chain: write, write, fsync. */
	r[0] = (struct sli_io_req){
		.buf = buf, .len = 4, .fd = wfd, .op = SLI_IO_WRITE, .flags = SLI_IO_LINK
	};
	r[1] = (struct sli_io_req){ .buf = buf + 4,
				    .off = 4,
				    .len = 4,
				    .fd = wfd,
				    .op = SLI_IO_WRITE,
				    .flags = SLI_IO_LINK };
	r[2] = (struct sli_io_req){ .fd = wfd, .op = SLI_IO_FSYNC, .flags = SLI_IO_LINK };
	CU_ASSERT_EQUAL(sli_io_run(io, r, 3), 0);
	CU_ASSERT(r[0].res == 4 && r[1].res == 4 && r[2].res == 0);
	sli_io_destroy(io);
	close(wfd);
	close(rfd);
	unlink(path);
}

/* io_uring with a ring of 8: 5 chains of 3 (15 SQEs) are never split. */
static void test_uring_windows(void)
{
	char path[] = "/tmp/sluice-ckpt-win-XXXXXX";
	int fd = mkstemp(path);
	struct sli_io *io;
	struct sli_io_req r[15];
	uint8_t buf[5][2][16], back[160];

	CU_ASSERT_FATAL(fd >= 0);
	if (sli_io_uring_create(NULL, 8, &io) < 0) {
		printf("  (io_uring unavailable: skipped)\n");
		close(fd);
		unlink(path);
		return;
	}
	for (unsigned k = 0; k < 5; k++) {
		fill(&buf[k][0][0], 32);
		for (unsigned j = 0; j < 2; j++)
			r[3 * k + j] = (struct sli_io_req){ .buf = buf[k][j],
							    .off = 32 * k + 16 * j,
							    .len = 16,
							    .fd = fd,
							    .op = SLI_IO_WRITE,
							    .flags = SLI_IO_LINK };
		r[3 * k + 2] = (struct sli_io_req){ .fd = fd, .op = SLI_IO_FSYNC };
	}
	CU_ASSERT_EQUAL(sli_io_run(io, r, 15), 0);
	for (unsigned i = 0; i < 15; i++)
		CU_ASSERT_EQUAL(r[i].res, i % 3 == 2 ? 0 : 16);
	CU_ASSERT(pread(fd, back, 160, 0) == 160 && memcmp(back, buf, 160) == 0);
	/* A chain longer than the ring: refused, nothing done. */
	for (unsigned i = 0; i < 9; i++)
		r[i] = (struct sli_io_req){
			.buf = back, .len = 1, .fd = fd, .op = SLI_IO_WRITE, .flags = SLI_IO_LINK
		};
	r[9] = (struct sli_io_req){ .fd = fd, .op = SLI_IO_FSYNC };
	CU_ASSERT_EQUAL(sli_io_run(io, r, 10), -EINVAL);
	sli_io_destroy(io);
	close(fd);
	unlink(path);
}

static void test_linking(void)
{
	for (unsigned ki = 0; ki < 2; ki++)
		if (engine_ok(ki))
			linking(ki);
	/* The fault engine: a failed write cancels its fsync, which is not passed on. */
	{
		struct sli_io *inner, *io;
		struct sli_io_req r[2];
		char path[] = "/tmp/sluice-ckpt-link-XXXXXX";
		int fd = mkstemp(path);
		uint64_t w, fs;

		CU_ASSERT_FATAL(fd >= 0 && sli_io_posix_create(NULL, &inner) == 0);
		CU_ASSERT_FATAL(sli_io_fault_create(NULL, inner, &io) == 0);
		sli_io_fault_set(io, ENOSPC, 0, 0, 0);
		r[0] = (struct sli_io_req){
			.buf = path, .len = 4, .fd = fd, .op = SLI_IO_WRITE, .flags = SLI_IO_LINK
		};
		r[1] = (struct sli_io_req){ .fd = fd, .op = SLI_IO_FSYNC };
		CU_ASSERT_EQUAL(sli_io_run(io, r, 2), -ENOSPC);
		CU_ASSERT(r[0].res == -ENOSPC && r[1].res == -ECANCELED);
		/* Short: 3 of 4 bytes, and the fsync waits. */
		sli_io_fault_set(io, 0, 0, 0, 0);
		sli_io_fault_short(io, 3, 1);
		CU_ASSERT_EQUAL(sli_io_run(io, r, 2), 0);
		CU_ASSERT(r[0].res == 3 && r[1].res == -ECANCELED);
		sli_io_fault_counts(io, &w, &fs);
		CU_ASSERT(w == 1 && fs == 0);
		sli_io_destroy(io);
		sli_io_destroy(inner);
		close(fd);
		unlink(path);
	}
}

/* ------------------------------------------------------------ O_DIRECT */

/* The direct-I/O offset alignment of a file in @dir (0: none or unknown; directories say nothing).
 */
static uint32_t dio_align(const char *dir)
{
	char path[128];
	struct statx sx;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/sluice-dio-XXXXXX", dir);
	if ((fd = mkstemp(path)) < 0)
		return 0;
	rc = statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx);
	close(fd);
	unlink(path);
	return rc < 0 || !(sx.stx_mask & STATX_DIOALIGN) ? 0 : sx.stx_dio_offset_align;
}

/* Does @dir's file system open files with O_DIRECT? */
static bool dio_opens(const char *dir)
{
	char path[128];
	int fd, dfd;

	snprintf(path, sizeof(path), "%s/sluice-dio-XXXXXX", dir);
	if ((fd = mkstemp(path)) < 0)
		return false;
	dfd = open(path, O_WRONLY | O_DIRECT);
	close(fd);
	unlink(path);
	if (dfd >= 0)
		close(dfd);
	return dfd >= 0;
}

enum { DLEN = 48 * 4096 + 1000 }; /* a payload of 48 whole 4 KiB blocks and more */
static const char *const dnames[2] = { "d-0.snap", "d-1.snap" };

/* Write @v (2 files) in checkpoint @id with the direct settings given; check both files. */
static struct sli_ckpt_direct_counts dwrite(struct ffix *f, int64_t id, const struct iovec *v,
					    uint64_t min, uint32_t align, int want_rc)
{
	uint64_t bytes;

	sli_ckpt_store_set_direct(f->s, min, align);
	CU_ASSERT_EQUAL(S->write(f->c, dnames, v, 2, &bytes, f->err, sizeof(f->err)), want_rc);
	if (want_rc == 0) {
		CU_ASSERT_EQUAL(bytes, 2 * 24 + v[0].iov_len + v[1].iov_len);
		for (unsigned k = 0; k < 2; k++)
			CU_ASSERT(file_is(fpath(&f->t, chk(&f->t, id), dnames[k]), v[k].iov_base,
					  v[k].iov_len));
	}
	return sli_ckpt_store_direct_counts(f->s);
}

static void direct(unsigned ki, uint8_t *base)
{
	/* d-0's payload starts 16 bytes past a page (as the coordinator's do), d-1's 17. */
	const struct iovec v[2] = { { base + 16, DLEN }, { base + 4096 * 60 + 17, DLEN } };
	/* Forced 4 KiB alignment: the file's blocks 1 to 48 (offset 4096 up to 16 + DLEN) go
	 * direct. */
	const uint64_t want = (16 + DLEN - 4096) / 4096 * 4096;
	uint32_t fs_align = dio_align("/tmp");

	printf("  (file system direct-I/O alignment %u)\n", fs_align);
	struct sli_ckpt_direct_counts dc;
	struct ffix f;
	uint64_t w0, fs0, w, fs;

	if (!ffix_open(&f, ki, 20))
		return;
	if (!dio_opens("/tmp")) {
		/* A file system without O_DIRECT (tmpfs before Linux 6.6): each file falls back. */
		printf("  (no O_DIRECT on /tmp's file system: only the fallback is checked)\n");
		dc = dwrite(&f, 20, v, 4096, 4096, 0);
		CU_ASSERT(dc.bytes == 0 && dc.fallbacks == 2);
		ffix_close(&f, 20);
		return;
	}
	dc = dwrite(&f, 20, v, 4096, 4096, 0);
	CU_ASSERT(dc.bytes == want && dc.fallbacks == 0);
	ffix_close(&f, 20);

	/* The file system's own alignment (d-1 too, when its memory alignment allows). */
	ffix_open(&f, ki, 21);
	dc = dwrite(&f, 21, v, 4096, 0, 0);
	CU_ASSERT(dc.fallbacks == 0 && (fs_align == 0 || fs_align > 4096 || dc.bytes >= want));
	ffix_close(&f, 21);

	/* Off: nothing direct. */
	ffix_open(&f, ki, 22);
	dc = dwrite(&f, 22, v, 0, 4096, 0);
	CU_ASSERT(dc.bytes == 0 && dc.fallbacks == 0);
	ffix_close(&f, 22);

	/* Short direct writes of two blocks: continued direct, 24 writes at least. */
	ffix_open(&f, ki, 23);
	sli_io_fault_counts(f.io, &w0, &fs0);
	sli_io_fault_short(f.io, 8192, 1000000);
	dc = dwrite(&f, 23, v, 4096, 4096, 0);
	sli_io_fault_counts(f.io, &w, &fs);
	CU_ASSERT(dc.bytes == want && dc.fallbacks == 0 && w - w0 >= want / 8192);
	CU_ASSERT_EQUAL(fs - fs0, 2);
	ffix_close(&f, 23);

	/*
	 * Short direct writes of 4608 bytes (a multiple of the file system's
	 * 512): each leaves the offset off the 4 KiB step, so 3584 bytes go
	 * buffered before the next direct write: 4608 of every 8192 bytes go
	 * direct, and a last block of 4096 (want is 47 blocks) in full.
	 */
	if (fs_align != 0 && fs_align <= 512) {
		ffix_open(&f, ki, 24);
		sli_io_fault_short(f.io, 4608, 1000000);
		dc = dwrite(&f, 24, v, 4096, 4096, 0);
		CU_ASSERT_EQUAL(dc.bytes, want / 8192 * 4608 + want % 8192);
		CU_ASSERT_EQUAL(dc.fallbacks, 0);
		ffix_close(&f, 24);
	}

	/* Short writes of 1000 bytes: the kernel refuses such a direct write; redone buffered. */
	ffix_open(&f, ki, 25);
	sli_io_fault_short(f.io, 1000, 1000000);
	dc = dwrite(&f, 25, v, 4096, 4096, 0);
	CU_ASSERT(dc.bytes == 0 && dc.fallbacks == 1);
	ffix_close(&f, 25);

	/* An alignment of 16 the file system does not have: EINVAL, buffered. */
	if (fs_align > 16) {
		ffix_open(&f, ki, 26);
		dc = dwrite(&f, 26, v, 4096, 16, 0);
		CU_ASSERT(dc.bytes == 0 && dc.fallbacks == 1);
		ffix_close(&f, 26);
	}

	/* ENOSPC at the direct write (the first 4096 bytes fit): an error, not a fallback. */
	ffix_open(&f, ki, 27);
	sli_io_fault_set(f.io, ENOSPC, 4096, 0, 0);
	dc = dwrite(&f, 27, v, 4096, 4096, -ENOSPC);
	CU_ASSERT(names_file(&f, 27, "write", dnames[0], ENOSPC));
	CU_ASSERT(dc.bytes == 0 && dc.fallbacks == 0);
	ffix_close(&f, 27);
	ffix_open(&f, ki, 28);
	sli_io_fault_fsync(f.io, EIO, 1);
	dc = dwrite(&f, 28, v, 4096, 4096, -EIO);
	CU_ASSERT(names_file(&f, 28, "fsync", dnames[1], EIO));
	ffix_close(&f, 28);
}

static void test_direct(void)
{
	uint8_t *base = aligned_alloc(4096, 4096 * 120);
	struct stat st;

	CU_ASSERT_FATAL(base != NULL);
	fill(base, 4096 * 120);
	for (unsigned ki = 0; ki < 2; ki++)
		if (engine_ok(ki))
			direct(ki, base);
	/* tmpfs as this kernel has it (direct I/O since Linux 6.6): either way, the right bytes. */
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)) {
		const struct iovec v[2] = { { base + 16, DLEN }, { base + 4096 * 60 + 17, DLEN } };
		struct sli_ckpt_direct_counts dc;
		struct ffix f;

		troot = "/dev/shm";
		if (ffix_open(&f, 0, 30)) {
			dc = dwrite(&f, 30, v, 4096, 0, 0);
			printf("  (tmpfs: %llu bytes direct, %llu fallbacks)\n",
			       (unsigned long long)dc.bytes, (unsigned long long)dc.fallbacks);
			ffix_close(&f, 30);
		}
		troot = "/tmp";
	}
	free(base);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "round trip: files and manifest, both engines", test_roundtrip },
		{ "open: engines by name, errors", test_open },
		{ "torn files and trailing garbage refused", test_torn },
		{ "a bit flip anywhere refused", test_bitflip },
		{ "EIO, ENOSPC, fsync failure, short writes", test_faults },
		{ "complete() failing leaves no complete checkpoint", test_complete_fails },
		{ "list order and filter, retain", test_list_retain },
		{ "savepoint directories", test_savepoint },
		{ "argument errors", test_args },
		{ "engines: linked write and fsync", test_linking },
		{ "io_uring: chains never split across windows", test_uring_windows },
		{ "O_DIRECT: aligned blocks direct, short, refused, faults", test_direct },
		CU_TEST_INFO_NULL,
	};

	umask(022);
	return sl_test_main("state-ckpt-store", tests);
}
