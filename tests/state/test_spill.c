/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_spill.c — the table's disk tier (state/spill.c and the I/O
 * engines), each test run with the POSIX and the io_uring engine.
 *
 * The reference is a plain array of versions per key number (values are
 * derived from key and version), independent of the table. Covered:
 * CRC32C against published vectors (software and SSE4.2); the engines'
 * batches; random puts/gets/batches/removes/clears under a small budget
 * with the table's invariant check; TTL of spilled entries (get and
 * cleanup); partition over spilled entries; a bit flip in a file
 * (-EBADMSG naming file and offset, never a wrong value); ENOSPC and EIO
 * from a fault-injecting engine (reported, nothing lost); compaction
 * (file bytes bounded after many overwrites, checked on the file
 * system); stale files removed and a directory in use refused.
 * Namespaced entries (map-like: keys x namespaces, spilled as one ring
 * record per key) against a reference array of versions per (key,
 * namespace): random puts/gets/batches/removes/clears with the invariant
 * check, counts per group and partitions while rings are on disk; TTL
 * across ring reloads and cleanup; EIO while reloading rings (gets,
 * batches, puts, removes, clears fail, nothing changes); a corrupted ring
 * record (-EBADMSG, never a wrong value).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sl_test.h"
#include "spill_common.h"

#define MAXP 64

static uint64_t rng = 7;

static uint64_t rnd(void)
{
	return sp_rand(&rng);
}

static const enum sli_io_kind kinds[] = { SLI_IO_POSIX, SLI_IO_URING };

/* Can this engine run here? io_uring may be disabled (seccomp, sysctl). */
static bool engine_ok(enum sli_io_kind kind)
{
	struct sli_io *io;

	if (sli_io_create(NULL, kind, &io) < 0) {
		printf("  (engine %d unavailable here: skipped)\n", kind);
		return false;
	}
	sli_io_destroy(io);
	return true;
}

struct fix {
	struct sli_table *t;
	char dir[64];
};

static void fix_open(struct fix *f, enum sli_io_kind kind, size_t budget, uint32_t seg,
		     struct sli_io *engine)
{
	struct sli_spill_conf c = {
		.budget = budget, .io = kind, .engine = engine, .segment_bytes = seg
	};

	CU_ASSERT_FATAL(sp_mkdtemp(f->dir, sizeof(f->dir)) != NULL);
	CU_ASSERT_FATAL(sli_table_create(NULL, MAXP, 0, MAXP - 1, &f->t) == 0);
	c.dir = f->dir;
	CU_ASSERT_FATAL(sli_table_set_spill(f->t, &c) == 0);
}

static void fix_close(struct fix *f)
{
	sli_table_destroy(f->t);
	sp_rmdir(f->dir);
}

static int put_v(struct sli_table *t, uint64_t key, uint32_t version, int64_t expiry)
{
	uint64_t v[2];
	struct sli_skey k = sp_key(&key, 1);

	sp_value(key, version, v);
	return sli_table_put(t, &k, v, sizeof(v), expiry);
}

static uint64_t khash_cb(const void *key, uint32_t len, void *arg)
{
	(void)arg;
	(void)len;
	return sp_hash(*(const uint64_t *)key);
}

static size_t spilled(const struct sli_table *t)
{
	struct sli_table_stats st;

	sli_table_stats(t, &st);
	return st.spilled;
}

/* Every key against the reference through gets; the number of mismatches. */
static unsigned verify_gets(struct sli_table *t, const uint32_t *ver, unsigned n)
{
	unsigned bad = 0;

	for (uint64_t key = 0; key < n; key++) {
		struct sli_skey k = sp_key(&key, 1);
		uint32_t len;
		const void *v = sli_table_get(t, &k, 0, SLI_TTL_KEEP, &len);

		if (ver[key] == 0 ? v != NULL : (v == NULL || !sp_value_ok(key, ver[key], v, len)))
			bad++;
	}
	return bad;
}

/* Every entry through a partition; the number of mismatches (missing, extra, wrong). */
static unsigned verify_partition(struct sli_table *t, const uint32_t *ver, unsigned n)
{
	size_t seen, present = 0;
	unsigned bad = sp_check_partition(t, ver, n, MAXP, true, &seen);

	for (unsigned i = 0; i < n; i++)
		present += ver[i] != 0;
	if (seen != present)
		bad++;
	return bad;
}

/* ------------------------------------------------------------- crc32c */

static void test_crc32c(void)
{
	static const unsigned char zeros[32];
	unsigned char ones[32], inc[32], dec[32], big[1000];
	uint32_t a;

	memset(ones, 0xff, sizeof(ones));
	for (int i = 0; i < 32; i++) {
		inc[i] = (unsigned char)i;
		dec[i] = (unsigned char)(31 - i);
	}
	/* RFC 3720 B.4 and the common check value. */
	CU_ASSERT_EQUAL(sli_crc32c_sw(0, "123456789", 9), 0xe3069283u);
	CU_ASSERT_EQUAL(sli_crc32c_sw(0, zeros, 32), 0x8a9136aau);
	CU_ASSERT_EQUAL(sli_crc32c_sw(0, ones, 32), 0x62a8ab43u);
	CU_ASSERT_EQUAL(sli_crc32c_sw(0, inc, 32), 0x46dd794eu);
	CU_ASSERT_EQUAL(sli_crc32c_sw(0, dec, 32), 0x113fdb5cu);
	CU_ASSERT_EQUAL(sli_crc32c_hw(0, "123456789", 9), 0xe3069283u);
	CU_ASSERT_EQUAL(sli_crc32c_hw(0, inc, 32), 0x46dd794eu);
	CU_ASSERT_EQUAL(sli_crc32c(0, dec, 32), 0x113fdb5cu);
	printf("  (SSE4.2 crc32: %s)\n", sli_crc32c_hw_available() ? "yes" : "no");
	for (int i = 0; i < 1000; i++)
		big[i] = (unsigned char)rnd();
	/* Every split point and misalignment: both agree, and chaining works. */
	a = sli_crc32c_sw(0, big, sizeof(big));
	for (size_t cut = 0; cut <= 40; cut++) {
		CU_ASSERT_EQUAL(sli_crc32c_hw(sli_crc32c_hw(0, big, cut), big + cut, 1000 - cut),
				a);
		CU_ASSERT_EQUAL(sli_crc32c_sw(sli_crc32c_sw(0, big, cut), big + cut, 1000 - cut),
				a);
		CU_ASSERT_EQUAL(sli_crc32c_hw(0, big + cut, 500), sli_crc32c_sw(0, big + cut, 500));
	}
}

/* ------------------------------------------------------------ engines */

static void test_engines(void)
{
	for (unsigned ki = 0; ki < 2; ki++) {
		struct sli_io *io;
		struct sli_io_req r[300];
		static unsigned char buf[300][512];
		char path[] = "/tmp/sluice-io-test-XXXXXX";
		int fd = mkstemp(path);

		if (!engine_ok(kinds[ki]))
			continue;
		CU_ASSERT_FATAL(fd >= 0 && sli_io_create(NULL, kinds[ki], &io) == 0);
		unlink(path);
		/* More requests than the ring's depth, in one batch. */
		for (unsigned i = 0; i < 300; i++) {
			memset(buf[i], (int)i, sizeof(buf[i]));
			r[i] = (struct sli_io_req){ .buf = buf[i],
						    .off = 512u * i,
						    .len = 512,
						    .fd = fd,
						    .op = SLI_IO_WRITE };
		}
		CU_ASSERT_EQUAL(sli_io_run(io, r, 300), 0);
		memset(buf, 0, sizeof(buf));
		for (unsigned i = 0; i < 300; i++)
			r[i] = (struct sli_io_req){ .buf = buf[299 - i],
						    .off = 512u * i,
						    .len = 512,
						    .fd = fd,
						    .op = SLI_IO_READ };
		CU_ASSERT_EQUAL(sli_io_run(io, r, 300), 0);
		for (unsigned i = 0; i < 300; i++)
			CU_ASSERT(r[i].res == 512 && buf[299 - i][0] == (unsigned char)i &&
				  buf[299 - i][511] == (unsigned char)i);
		/* Past the end of the file: an error, never a short success. */
		r[0] = (struct sli_io_req){ .buf = buf[0],
					    .off = 512u * 299 + 256,
					    .len = 512,
					    .fd = fd,
					    .op = SLI_IO_READ };
		r[1] = (struct sli_io_req){
			.buf = buf[1], .off = 0, .len = 512, .fd = -1, .op = SLI_IO_READ
		};
		CU_ASSERT(sli_io_run(io, r, 2) < 0);
		CU_ASSERT_EQUAL(r[0].res, -EIO);
		CU_ASSERT_EQUAL(r[1].res, -EBADF);
		sli_io_destroy(io);
		close(fd);
	}
}

/* ------------------------------------------------- random vs reference */

static void random_ops(enum sli_io_kind kind)
{
	enum { N = 40000, OPS = 300000 };
	uint32_t *ver = calloc(N, sizeof(*ver));
	struct sli_table_stats st;
	struct fix f;
	unsigned bad = 0;

	CU_ASSERT_FATAL(ver != NULL);
	fix_open(&f, kind, 512 * 1024, 256 * 1024, NULL);
	CU_ASSERT_STRING_EQUAL(sli_table_spill_engine(f.t),
			       kind == SLI_IO_URING ? "io_uring" : "posix");
	for (unsigned op = 0; op < OPS; op++) {
		uint64_t key = rnd() % N, r = rnd() % 100;
		struct sli_skey k = sp_key(&key, 1);

		if (r < 45) {
			int rc = put_v(f.t, key, op + 1, SLI_TTL_NONE);

			bad += rc != (ver[key] == 0 ? 1 : 0);
			ver[key] = op + 1;
		} else if (r < 70) {
			uint32_t len;
			const void *v = sli_table_get(f.t, &k, 0, SLI_TTL_KEEP, &len);

			bad += ver[key] == 0 ? v != NULL
					     : (v == NULL || !sp_value_ok(key, ver[key], v, len));
		} else if (r < 90) {
			/* A batch, with duplicates; all pointers valid together. */
			uint64_t keys[32];
			struct sli_skey ks[32];
			struct sli_lookup out[32];
			int hits = 0, rc;

			for (int i = 0; i < 32; i++) {
				keys[i] = i > 0 && rnd() % 8 == 0 ? keys[i - 1] : rnd() % N;
				ks[i] = sp_key(&keys[i], 1);
				hits += ver[keys[i]] != 0;
			}
			rc = sli_table_lookup_batch(f.t, 32, ks, 0, SLI_TTL_KEEP, out);
			bad += rc != hits;
			for (int i = 0; i < 32; i++)
				bad += ver[keys[i]] == 0 ? out[i].value != NULL
							 : (out[i].value == NULL ||
							    !sp_value_ok(keys[i], ver[keys[i]],
									 out[i].value, out[i].len));
		} else if (r < 96) {
			bad += sli_table_remove(f.t, &k) != (ver[key] != 0);
			ver[key] = 0;
		} else {
			bad += sli_table_clear_key(f.t, &k) != (ver[key] != 0);
			ver[key] = 0;
		}
		if (op % 50000 == 0)
			CU_ASSERT_EQUAL(sli_table_check(f.t, khash_cb, NULL), 0);
	}
	CU_ASSERT_EQUAL(bad, 0);
	sli_table_stats(f.t, &st);
	printf("  (%s: %zu entries, %zu spilled, %llu reads in %llu batches, %llu compactions)\n",
	       sli_table_spill_engine(f.t), st.entries, st.spilled,
	       (unsigned long long)st.spill_reads, (unsigned long long)st.spill_batches,
	       (unsigned long long)st.spill_compactions);
	CU_ASSERT(st.spilled > N / 4);
	CU_ASSERT(st.spill_batches < st.spill_reads); /* batches did batch */
	CU_ASSERT_EQUAL(sli_table_check(f.t, khash_cb, NULL), 0);
	CU_ASSERT_EQUAL(verify_partition(f.t, ver, N), 0);
	CU_ASSERT_EQUAL(verify_gets(f.t, ver, N), 0);
	CU_ASSERT_EQUAL(sli_table_error(f.t, NULL, 0), 0);
	fix_close(&f);
	free(ver);
}

static void test_random(void)
{
	for (unsigned ki = 0; ki < 2; ki++)
		if (engine_ok(kinds[ki]))
			random_ops(kinds[ki]);
}

/* ------------------------------------------------------------------ TTL */

static void ttl(enum sli_io_kind kind)
{
	enum { N = 20000 };
	struct fix f;
	int removed = 0;

	fix_open(&f, kind, 128 * 1024, 0, NULL);
	/* Even keys expire at 100, odd ones never. */
	for (uint64_t key = 0; key < N; key++)
		CU_ASSERT(put_v(f.t, key, 1, key % 2 ? SLI_TTL_NONE : 100) == 1);
	CU_ASSERT(spilled(f.t) > N / 2);
	CU_ASSERT_EQUAL(sli_table_spill_flush(f.t), 0);
	for (uint64_t key = 0; key < N; key += 97) {
		struct sli_skey k = sp_key(&key, 1);
		uint32_t len;
		const void *v = sli_table_get(f.t, &k, 150, SLI_TTL_KEEP, &len);

		CU_ASSERT(key % 2 ? v != NULL && sp_value_ok(key, 1, v, len) : v == NULL);
		CU_ASSERT(sli_table_get(f.t, &k, 50, SLI_TTL_KEEP, &len) != NULL);
	}
	for (int i = 0; i < 100000 && sli_table_count(f.t) > N / 2; i++) {
		int rc = sli_table_ttl_cleanup(f.t, 150, 256);

		CU_ASSERT_FATAL(rc >= 0);
		removed += rc;
	}
	CU_ASSERT_EQUAL(removed, N / 2);
	CU_ASSERT_EQUAL(sli_table_count(f.t), N / 2);
	CU_ASSERT_EQUAL(sli_table_check(f.t, khash_cb, NULL), 0);
	for (uint64_t key = 0; key < N; key++) {
		struct sli_skey k = sp_key(&key, 1);

		CU_ASSERT((sli_table_get(f.t, &k, 0, SLI_TTL_KEEP, NULL) != NULL) == (key % 2));
	}
	fix_close(&f);
}

static void test_ttl(void)
{
	for (unsigned ki = 0; ki < 2; ki++)
		if (engine_ok(kinds[ki]))
			ttl(kinds[ki]);
}

/* ----------------------------------------------------------- corruption */

static void corrupt(enum sli_io_kind kind)
{
	enum { N = 20000 };
	char path[128], msg[4352];
	struct fix f;
	unsigned wrong = 0, failed = 0, ok = 0;
	unsigned char b;
	int fd, errs = 0;

	fix_open(&f, kind, 128 * 1024, 0, NULL);
	for (uint64_t key = 0; key < N; key++)
		CU_ASSERT(put_v(f.t, key, 3, SLI_TTL_NONE) == 1);
	CU_ASSERT_EQUAL(sli_table_spill_flush(f.t), 0);
	/* Flip one bit in the middle of the first file. */
	snprintf(path, sizeof(path), "%s/spill-00000.sls", f.dir);
	fd = open(path, O_RDWR);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(pread(fd, &b, 1, 100003) == 1);
	b ^= 0x10;
	CU_ASSERT_FATAL(pwrite(fd, &b, 1, 100003) == 1);
	close(fd);
	for (uint64_t key = 0; key < N; key++) {
		struct sli_skey k = sp_key(&key, 1);
		uint32_t len;
		const void *v = sli_table_get(f.t, &k, 0, SLI_TTL_KEEP, &len);
		int rc;

		if (v != NULL) {
			ok++;
			wrong += !sp_value_ok(key, 3, v, len);
			continue;
		}
		failed++;
		rc = sli_table_error(f.t, msg, sizeof(msg));
		CU_ASSERT_EQUAL(rc, -EBADMSG);
		if (rc == -EBADMSG && errs++ == 0) {
			printf("  (%s: %s)\n", sli_table_spill_engine(f.t), msg);
			CU_ASSERT(strstr(msg, path) != NULL);
			CU_ASSERT(strstr(msg, "offset 99") != NULL ||
				  strstr(msg, "offset 100") != NULL);
			CU_ASSERT(strstr(msg, "CRC32C") != NULL);
		}
	}
	CU_ASSERT_EQUAL(wrong, 0);
	CU_ASSERT_EQUAL(failed, 1); /* one record spans the flipped byte */
	CU_ASSERT_EQUAL(ok, N - 1);
	/* A batch with the bad key reports it too. */
	{
		uint64_t keys[N / 8];
		struct sli_skey ks[32];
		struct sli_lookup out[32];
		int rc, seen_err = 0;

		for (unsigned base = 0; base < N; base += 32) {
			for (unsigned i = 0; i < 32; i++) {
				keys[i] = base + i < N ? base + i : 0;
				ks[i] = sp_key(&keys[i], 1);
			}
			rc = sli_table_lookup_batch(f.t, 32, ks, 0, SLI_TTL_KEEP, out);
			if (rc < 0)
				seen_err = rc;
			for (unsigned i = 0; i < 32; i++)
				wrong += out[i].value != NULL &&
					 !sp_value_ok(keys[i], 3, out[i].value, out[i].len);
		}
		CU_ASSERT_EQUAL(seen_err, -EBADMSG);
		CU_ASSERT_EQUAL(wrong, 0);
	}
	fix_close(&f);
}

static void test_corruption(void)
{
	for (unsigned ki = 0; ki < 2; ki++)
		if (engine_ok(kinds[ki]))
			corrupt(kinds[ki]);
}

/* --------------------------------------------------------- I/O failures */

static void io_faults(enum sli_io_kind kind)
{
	enum { N = 30000 };
	uint32_t *ver = calloc(N, sizeof(*ver));
	struct sli_io *inner, *io;
	struct fix f;
	char msg[4352];
	int rc = 0;
	uint64_t key;

	CU_ASSERT_FATAL(ver != NULL && sli_io_create(NULL, kind, &inner) == 0);
	CU_ASSERT_FATAL(sli_io_fault_create(NULL, inner, &io) == 0);
	fix_open(&f, kind, 128 * 1024, 0, io);
	/* The disk fills up: puts fail with -ENOSPC once the write buffer is full. */
	sli_io_fault_set(io, ENOSPC, 0, 0, 0);
	for (key = 0; key < N; key++) {
		rc = put_v(f.t, key, 5, SLI_TTL_NONE);
		if (rc < 0)
			break;
		ver[key] = 5;
	}
	CU_ASSERT_EQUAL(rc, -ENOSPC);
	CU_ASSERT(key < N);
	CU_ASSERT_EQUAL(sli_table_error(f.t, msg, sizeof(msg)), -ENOSPC);
	CU_ASSERT(strstr(msg, f.dir) != NULL);
	/* Nothing was lost: everything reads back, from memory or the buffer. */
	CU_ASSERT_EQUAL(verify_gets(f.t, ver, N), 0);
	/* Space again: the rest goes in. */
	sli_io_fault_set(io, 0, 0, 0, 0);
	for (; key < N; key++) {
		CU_ASSERT(put_v(f.t, key, 5, SLI_TTL_NONE) == 1);
		ver[key] = 5;
	}
	CU_ASSERT_EQUAL(sli_table_spill_flush(f.t), 0);
	/* Reads fail with EIO: reported, not "absent", and no wrong value. */
	sli_io_fault_set(io, 0, 0, EIO, 0);
	{
		unsigned failed = 0, wrong = 0;

		for (key = 0; key < N; key++) {
			struct sli_skey k = sp_key(&key, 1);
			uint32_t len;
			const void *v = sli_table_get(f.t, &k, 0, SLI_TTL_KEEP, &len);

			if (v == NULL)
				failed += sli_table_error(f.t, NULL, 0) == -EIO;
			else
				wrong += !sp_value_ok(key, 5, v, len);
		}
		CU_ASSERT_EQUAL(wrong, 0);
		CU_ASSERT(failed > N / 2);
		CU_ASSERT(failed + (N - spilled(f.t)) == N);
	}
	{
		uint64_t keys[32];
		struct sli_skey ks[32];
		struct sli_lookup out[32];
		int brc = 0;

		for (unsigned i = 0; i < 32; i++) {
			keys[i] = i * 997;
			ks[i] = sp_key(&keys[i], 1);
		}
		brc = sli_table_lookup_batch(f.t, 32, ks, 0, SLI_TTL_KEEP, out);
		CU_ASSERT_EQUAL(brc, -EIO);
	}
	sli_io_fault_set(io, 0, 0, 0, 0);
	CU_ASSERT_EQUAL(verify_gets(f.t, ver, N), 0);
	CU_ASSERT_EQUAL(sli_table_check(f.t, khash_cb, NULL), 0);
	fix_close(&f);
	sli_io_destroy(io);
	sli_io_destroy(inner);
	free(ver);
}

static void test_io_faults(void)
{
	for (unsigned ki = 0; ki < 2; ki++)
		if (engine_ok(kinds[ki]))
			io_faults(kinds[ki]);
}

/* ----------------------------------------------------------- compaction */

static void compaction(enum sli_io_kind kind)
{
	enum { N = 20000, ROUNDS = 15 };
	uint32_t *ver = calloc(N, sizeof(*ver));
	struct sli_table_stats st;
	struct fix f;
	unsigned long long max_disk = 0;

	CU_ASSERT_FATAL(ver != NULL);
	fix_open(&f, kind, 64 * 1024, 64 * 1024, NULL);
	/* Every key rewritten ROUNDS times: 15x the live data goes to disk. */
	for (unsigned r = 1; r <= ROUNDS; r++) {
		for (uint64_t i = 0; i < N; i++) {
			uint64_t key = (i * 7919) % N;

			CU_ASSERT(put_v(f.t, key, r, SLI_TTL_NONE) >= 0);
			ver[key] = r;
		}
		sli_table_stats(f.t, &st);
		if (sp_dir_bytes(f.dir) > max_disk)
			max_disk = sp_dir_bytes(f.dir);
		/* live / (1 - 50%), plus the active file and one being compacted */
		CU_ASSERT(st.spill_file_bytes <=
			  2 * st.spill_live_bytes + 3 * 64 * 1024 + (1u << 20));
	}
	sli_table_stats(f.t, &st);
	printf("  (%s: live %llu B, files %llu B, at most %llu B on disk, %llu compactions)\n",
	       sli_table_spill_engine(f.t), (unsigned long long)st.spill_live_bytes,
	       (unsigned long long)st.spill_file_bytes, max_disk,
	       (unsigned long long)st.spill_compactions);
	CU_ASSERT(st.spill_compactions > 10);
	/* What the file system says, against the data written (15 x N x 64 bytes). */
	CU_ASSERT(max_disk < (unsigned long long)N * 64 * 4);
	CU_ASSERT_EQUAL(verify_gets(f.t, ver, N), 0);
	CU_ASSERT_EQUAL(sli_table_check(f.t, khash_cb, NULL), 0);
	fix_close(&f);
	free(ver);
}

static void test_compaction(void)
{
	for (unsigned ki = 0; ki < 2; ki++)
		if (engine_ok(kinds[ki]))
			compaction(kinds[ki]);
}

/* ---------------------------------------- namespaced entries (rings) */

/*
 * Map-like state: NK keys, each with up to NNS namespaces (entry id =
 * key * NNS + nsid), against a reference array of versions nver[id]
 * (0: absent). Values and namespaces come from spill_common.h.
 */
enum { NNS = 8 };

static struct sli_skey nkey(const uint64_t *key, unsigned nsid, unsigned char nsbuf[8])
{
	struct sli_skey k = sp_key(key, 2);

	k.ns_len = sp_ns(nsid, nsbuf);
	k.ns = nsbuf;
	return k;
}

static int nput(struct sli_table *t, uint64_t key, unsigned nsid, uint32_t version, int64_t exp)
{
	unsigned char nb[8], v[48];
	struct sli_skey k = nkey(&key, nsid, nb);
	uint32_t len = sp_nvalue(key * NNS + nsid, version, v);

	return sli_table_put(t, &k, v, len, exp);
}

/* Get (key, nsid) at @now; 0 when the result agrees with version @want (0: absent). */
static int nget_bad(struct sli_table *t, uint64_t key, unsigned nsid, uint32_t want, int64_t now)
{
	unsigned char nb[8];
	struct sli_skey k = nkey(&key, nsid, nb);
	uint32_t len;
	const void *v = sli_table_get(t, &k, now, SLI_TTL_KEEP, &len);

	return want == 0 ? v != NULL : !sp_nvalue_ok(key * NNS + nsid, want, v, len);
}

static unsigned nverify(struct sli_table *t, const uint32_t *ver, unsigned nk, int64_t now)
{
	unsigned bad = 0;

	for (uint64_t key = 0; key < nk; key++)
		for (unsigned ns = 0; ns < NNS; ns++)
			bad += (unsigned)nget_bad(t, key, ns, ver[key * NNS + ns], now);
	return bad;
}

static struct sli_table_stats nstats(const struct sli_table *t)
{
	struct sli_table_stats st;

	sli_table_stats(t, &st);
	return st;
}

/* Counts per table and per key group against the reference; the number of mismatches. */
static unsigned ncounts(struct sli_table *t, const uint32_t *ver, unsigned nk)
{
	size_t total = 0, per[MAXP] = { 0 };
	unsigned bad = 0;

	for (uint64_t key = 0; key < nk; key++)
		for (unsigned ns = 0; ns < NNS; ns++)
			if (ver[key * NNS + ns] != 0) {
				total++;
				per[sp_hash(key) % MAXP]++;
			}
	bad += sli_table_count(t) != total;
	for (unsigned g = 0; g < MAXP; g++)
		bad += sli_table_group_count(t, g) != per[g];
	return bad;
}

static unsigned npartition(struct sli_table *t, const uint32_t *ver, unsigned nk)
{
	size_t seen, present = 0;
	unsigned bad = sp_check_partition_ns(t, ver, NULL, nk, NNS, MAXP, &seen);

	for (size_t id = 0; id < (size_t)nk * NNS; id++)
		present += ver[id] != 0;
	return bad + (seen != present);
}

/* A batch of 32 lookups over a few keys (so rings are shared), with repeats. */
static unsigned nbatch(struct sli_table *t, const uint32_t *ver, unsigned nk)
{
	uint64_t keys[32];
	unsigned char nb[32][8];
	unsigned ids[32];
	struct sli_skey ks[32];
	struct sli_lookup out[32];
	uint64_t few[4];
	int hits = 0, rc;
	unsigned bad = 0;

	for (int i = 0; i < 4; i++)
		few[i] = rnd() % nk;
	for (int i = 0; i < 32; i++) {
		unsigned ns = (unsigned)(rnd() % NNS);

		keys[i] = i % 5 == 4 ? rnd() % nk : few[rnd() % 4];
		ids[i] = (unsigned)(keys[i] * NNS + ns);
		ks[i] = nkey(&keys[i], ns, nb[i]);
		hits += ver[ids[i]] != 0;
	}
	rc = sli_table_lookup_batch(t, 32, ks, 0, SLI_TTL_KEEP, out);
	bad += rc != hits;
	for (int i = 0; i < 32; i++)
		bad += ver[ids[i]] == 0
			   ? out[i].value != NULL
			   : !sp_nvalue_ok(ids[i], ver[ids[i]], out[i].value, out[i].len);
	return bad;
}

static void random_ns(enum sli_io_kind kind)
{
	enum { NK = 3000, OPS = 60000 };
	uint32_t *ver = calloc((size_t)NK * NNS, sizeof(*ver));
	struct sli_table_stats st;
	size_t max_rings = 0;
	unsigned bad = 0, cbad = 0, pbad = 0, checks = 0, parts = 0;
	struct fix f;

	CU_ASSERT_FATAL(ver != NULL);
	fix_open(&f, kind, 128 * 1024, 1u << 20, NULL);
	for (uint64_t key = 0; key < NK; key++)
		for (unsigned ns = 0; ns < NNS; ns++)
			if (rnd() % 4 != 0) {
				bad += nput(f.t, key, ns, 1, SLI_TTL_NONE) != 1;
				ver[key * NNS + ns] = 1;
			}
	CU_ASSERT_EQUAL(bad, 0);
	for (unsigned op = 0; op < OPS; op++) {
		uint64_t key = rnd() % NK;
		unsigned ns = (unsigned)(rnd() % NNS), r = (unsigned)(rnd() % 100);
		uint32_t *v = &ver[key * NNS + ns];

		if (r < 35) {
			bad += nput(f.t, key, ns, *v + 1, SLI_TTL_NONE) != (*v == 0);
			*v += 1;
		} else if (r < 60) {
			bad += (unsigned)nget_bad(f.t, key, ns, *v, 0);
		} else if (r < 75) {
			bad += nbatch(f.t, ver, NK);
		} else if (r < 88) {
			unsigned char nb[8];
			struct sli_skey k = nkey(&key, ns, nb);

			bad += sli_table_remove(f.t, &k) != (*v != 0);
			*v = 0;
		} else if (r < 93) {
			unsigned char nb[8];
			struct sli_skey k = nkey(&key, ns, nb);
			int n = 0;

			for (unsigned j = 0; j < NNS; j++) {
				n += ver[key * NNS + j] != 0;
				ver[key * NNS + j] = 0;
			}
			bad += sli_table_clear_key(f.t, &k) != n;
		} else {
			/* Refill a cleared key, so that rings keep coming and going. */
			for (unsigned j = 0; j < NNS; j += 2) {
				uint32_t *w = &ver[key * NNS + j];

				bad += nput(f.t, key, j, *w + 1, SLI_TTL_NONE) != (*w == 0);
				*w += 1;
			}
		}
		st = nstats(f.t);
		max_rings = st.spilled_rings > max_rings ? st.spilled_rings : max_rings;
		if (op % 5000 == 4999) {
			checks++;
			cbad += sli_table_check(f.t, khash_cb, NULL) != 0;
			cbad += ncounts(f.t, ver, NK);
		}
		if (op == OPS / 2 || (op % 20000 == 10000 && st.spilled_rings > 0)) {
			CU_ASSERT(st.spilled_rings > 0);
			parts++;
			pbad += npartition(f.t, ver, NK);
		}
	}
	st = nstats(f.t);
	printf("  (%s: %zu entries, %zu spilled in %zu rings (max %zu), %llu ring evictions, "
	       "%llu ring reloads, %u checks, %u partitions)\n",
	       sli_table_spill_engine(f.t), st.entries, st.spilled, st.spilled_rings, max_rings,
	       (unsigned long long)st.ring_evictions, (unsigned long long)st.ring_reloads, checks,
	       parts);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(cbad, 0);
	CU_ASSERT_EQUAL(pbad, 0);
	CU_ASSERT(max_rings > NK / 4);
	CU_ASSERT(st.ring_evictions > 1000);
	CU_ASSERT(st.ring_reloads > 1000);
	CU_ASSERT(st.spilled > st.spilled_rings); /* several entries per ring */
	CU_ASSERT_EQUAL(npartition(f.t, ver, NK), 0);
	CU_ASSERT_EQUAL(nverify(f.t, ver, NK, 0), 0);
	CU_ASSERT_EQUAL(ncounts(f.t, ver, NK), 0);
	CU_ASSERT_EQUAL(sli_table_check(f.t, khash_cb, NULL), 0);
	CU_ASSERT_EQUAL(sli_table_error(f.t, NULL, 0), 0);
	fix_close(&f);
	free(ver);
}

static void test_random_ns(void)
{
	for (unsigned ki = 0; ki < 2; ki++)
		if (engine_ok(kinds[ki]))
			random_ns(kinds[ki]);
}

/*
 * TTL: keys whose namespaces all expire at 1000 (A), none (B), or half
 * (C). At 2000, gets and batches never return an expired entry (rings
 * come back with their expiries); then cleanup sweeps until the count is
 * stable: every A entry is gone (whole rings dropped on disk or swept in
 * memory), B is intact, and what is left of C is at most its expired half.
 */
static void ttl_ns(enum sli_io_kind kind)
{
	enum { NK = 1500 };
	uint32_t *ver = calloc((size_t)NK * NNS, sizeof(*ver));
	uint32_t *old = calloc((size_t)NK * NNS, sizeof(*ver));
	size_t live = 0, expired_c = 0, seen, prev = SIZE_MAX;
	unsigned bad = 0;
	struct fix f;

	CU_ASSERT_FATAL(ver != NULL && old != NULL);
	fix_open(&f, kind, 64 * 1024, 1u << 20, NULL);
	for (uint64_t key = 0; key < NK; key++) {
		for (unsigned ns = 0; ns < NNS; ns++) {
			bool exp = key % 3 == 0 || (key % 3 == 2 && ns % 2 == 0);
			size_t id = key * NNS + ns;

			bad += nput(f.t, key, ns, 1, exp ? 1000 : SLI_TTL_NONE) != 1;
			if (exp) {
				old[id] = 1;
				expired_c += key % 3 == 2;
			} else {
				ver[id] = 1;
				live++;
			}
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_FATAL(nstats(f.t).spilled_rings > NK / 2);
	CU_ASSERT_EQUAL(sli_table_spill_flush(f.t), 0);
	CU_ASSERT_EQUAL(nverify(f.t, ver, NK, 2000), 0); /* also brings rings back */
	for (int i = 0; i < 200; i++) {
		uint64_t keys[32];
		unsigned char nb[32][8];
		struct sli_skey ks[32];
		struct sli_lookup out[32];
		int hits = 0;

		for (int j = 0; j < 32; j++) {
			unsigned ns = (unsigned)(rnd() % NNS);

			keys[j] = rnd() % NK;
			ks[j] = nkey(&keys[j], ns, nb[j]);
			hits += ver[keys[j] * NNS + ns] != 0;
		}
		bad += sli_table_lookup_batch(f.t, 32, ks, 2000, SLI_TTL_KEEP, out) != hits;
		for (int j = 0; j < 32; j++) {
			size_t id = keys[j] * NNS + (ks[j].ns_len ? nb[j][0] : 0);

			bad += ver[id] == 0 ? out[j].value != NULL
					    : !sp_nvalue_ok(id, 1, out[j].value, out[j].len);
		}
		/* Mutations evict again: rings go back to disk with their expired entries. */
		bad += nput(f.t, keys[0] % 3 == 1 ? keys[0] : 1, 1, 1, SLI_TTL_NONE) != 0;
	}
	CU_ASSERT_EQUAL(bad, 0);
	for (int round = 0; round < 400 && sli_table_count(f.t) != prev; round++) {
		prev = sli_table_count(f.t);
		for (int i = 0; i < 64; i++)
			CU_ASSERT(sli_table_ttl_cleanup(f.t, 2000, 512) >= 0);
	}
	printf("  (%s: %zu entries left, %zu live, %zu expired in mixed rings, %zu spilled)\n",
	       sli_table_spill_engine(f.t), sli_table_count(f.t), live, expired_c,
	       nstats(f.t).spilled);
	CU_ASSERT(sli_table_count(f.t) >= live);
	CU_ASSERT(sli_table_count(f.t) <= live + expired_c);
	/* Whatever is left: live B and C entries, and maybe expired C ones; no A entry. */
	for (uint64_t key = 0; key < NK; key++)
		if (key % 3 != 2)
			for (unsigned ns = 0; ns < NNS; ns++)
				old[key * NNS + ns] = 0;
	CU_ASSERT_EQUAL(sp_check_partition_ns(f.t, ver, old, NK, NNS, MAXP, &seen), 0);
	CU_ASSERT_EQUAL(seen, sli_table_count(f.t));
	CU_ASSERT_EQUAL(nverify(f.t, ver, NK, 2000), 0);
	CU_ASSERT_EQUAL(sli_table_check(f.t, khash_cb, NULL), 0);
	fix_close(&f);
	free(ver);
	free(old);
}

static void test_ttl_ns(void)
{
	for (unsigned ki = 0; ki < 2; ki++)
		if (engine_ok(kinds[ki]))
			ttl_ns(kinds[ki]);
}

/* Fill NK keys x NNS namespaces at version 1 under a small budget; flushed. */
static void nfill(struct fix *f, uint32_t *ver, unsigned nk)
{
	unsigned bad = 0;

	for (uint64_t key = 0; key < nk; key++)
		for (unsigned ns = 0; ns < NNS; ns++) {
			bad += nput(f->t, key, ns, 1, SLI_TTL_NONE) != 1;
			ver[key * NNS + ns] = 1;
		}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(sli_table_spill_flush(f->t), 0);
	CU_ASSERT_FATAL(nstats(f->t).spilled_rings > nk / 2);
}

/*
 * Reads fail (EIO) while rings are on disk: gets, batches, puts, removes
 * and clears of their keys report the error and change nothing; no wrong
 * value ever. Then reads work again and everything is there.
 */
static void io_faults_ns(enum sli_io_kind kind)
{
	enum { NK = 2000 };
	uint32_t *ver = calloc((size_t)NK * NNS, sizeof(*ver));
	struct sli_io *inner, *io;
	unsigned failed = 0, wrong = 0, failed_keys = 0, mut_ok = 0;
	struct fix f;
	char msg[4352];

	CU_ASSERT_FATAL(ver != NULL && sli_io_create(NULL, kind, &inner) == 0);
	CU_ASSERT_FATAL(sli_io_fault_create(NULL, inner, &io) == 0);
	fix_open(&f, kind, 64 * 1024, 0, io);
	nfill(&f, ver, NK);
	sli_io_fault_set(io, 0, 0, EIO, 0);
	for (uint64_t key = 0; key < NK; key++) {
		unsigned kf = 0;

		for (unsigned ns = 0; ns < NNS; ns++) {
			unsigned char nb[8];
			struct sli_skey k = nkey(&key, ns, nb);
			uint32_t len;
			const void *v = sli_table_get(f.t, &k, 0, SLI_TTL_KEEP, &len);

			if (v == NULL) {
				int rc = sli_table_error(f.t, msg, sizeof(msg));

				kf++;
				failed += rc == -EIO;
				if (failed == 1)
					CU_ASSERT(strstr(msg, f.dir) != NULL);
			} else {
				wrong += !sp_nvalue_ok(key * NNS + ns, 1, v, len);
			}
		}
		CU_ASSERT(kf == 0 || kf == NNS); /* a ring comes back whole, or not at all */
		failed_keys += kf != 0;
		if (kf != 0 && key % 4 == 0) { /* mutations of an unreadable ring */
			unsigned char nb[8];
			struct sli_skey k = nkey(&key, 1, nb);

			mut_ok += nput(f.t, key, 1, 9, SLI_TTL_NONE) == -EIO;
			mut_ok += nput(f.t, key, NNS - 1, 9, SLI_TTL_NONE) == -EIO;
			mut_ok += sli_table_remove(f.t, &k) == -EIO;
			mut_ok += sli_table_clear_key(f.t, &k) == -EIO;
			sli_table_error(f.t, NULL, 0);
		} else if (kf != 0) {
			mut_ok += 4;
		}
	}
	printf("  (%s: %u of %u keys' rings unreadable)\n", sli_table_spill_engine(f.t),
	       failed_keys, NK);
	CU_ASSERT_EQUAL(wrong, 0);
	CU_ASSERT(failed_keys > NK / 2);
	CU_ASSERT_EQUAL(failed, failed_keys * NNS);
	CU_ASSERT_EQUAL(mut_ok, failed_keys * 4);
	{
		unsigned char nb[32][8];
		uint64_t keys[32];
		struct sli_skey ks[32];
		struct sli_lookup out[32];

		for (unsigned i = 0; i < 32; i++) {
			keys[i] = (i * 397) % NK;
			ks[i] = nkey(&keys[i], i % NNS, nb[i]);
		}
		CU_ASSERT_EQUAL(sli_table_lookup_batch(f.t, 32, ks, 0, SLI_TTL_KEEP, out), -EIO);
		for (unsigned i = 0; i < 32; i++)
			wrong += out[i].value != NULL && !sp_nvalue_ok(keys[i] * NNS + i % NNS, 1,
								       out[i].value, out[i].len);
		CU_ASSERT_EQUAL(wrong, 0);
	}
	CU_ASSERT_EQUAL(sli_table_check(f.t, khash_cb, NULL), -EIO);
	sli_io_fault_set(io, 0, 0, 0, 0);
	CU_ASSERT_EQUAL(nverify(f.t, ver, NK, 0), 0);
	CU_ASSERT_EQUAL(ncounts(f.t, ver, NK), 0);
	CU_ASSERT_EQUAL(sli_table_check(f.t, khash_cb, NULL), 0);
	fix_close(&f);
	sli_io_destroy(io);
	sli_io_destroy(inner);
	free(ver);
}

static void test_io_faults_ns(void)
{
	for (unsigned ki = 0; ki < 2; ki++)
		if (engine_ok(kinds[ki]))
			io_faults_ns(kinds[ki]);
}

/* The offset of the record of file @fd that holds byte @at, and its length (unpadded). */
static uint32_t record_at(int fd, uint32_t at, uint32_t *len)
{
	uint32_t off = 0, hd[2];

	for (;;) {
		CU_ASSERT_FATAL(pread(fd, hd, 8, off) == 8 && hd[1] >= 40);
		if (off + ((hd[1] + 15) & ~15u) > at) {
			*len = hd[1];
			return off;
		}
		off += (hd[1] + 15) & ~15u;
	}
}

/*
 * Two ring records of the first file damaged: the last value byte of the
 * one holding offset 100000 (its CRC32C fails), the header of the one
 * holding offset 200000 (16 bytes). Every namespace of those two keys
 * reads as a -EBADMSG error naming the file, all others correctly; never
 * a wrong value; the check reports the error too.
 */
static void corrupt_ns(enum sli_io_kind kind)
{
	enum { NK = 2000 };
	uint32_t *ver = calloc((size_t)NK * NNS, sizeof(*ver));
	unsigned wrong = 0, failed_keys = 0, other = 0, crc = 0, header = 0;
	unsigned char b[16];
	uint32_t off, rlen;
	char path[4352], msg[4352];
	struct fix f;
	int fd;

	CU_ASSERT_FATAL(ver != NULL);
	fix_open(&f, kind, 64 * 1024, 0, NULL);
	nfill(&f, ver, NK);
	snprintf(path, sizeof(path), "%s/spill-00000.sls", f.dir);
	fd = open(path, O_RDWR);
	CU_ASSERT_FATAL(fd >= 0);
	off = record_at(fd, 100000, &rlen);
	CU_ASSERT_FATAL(pread(fd, b, 1, off + rlen - 1) == 1);
	b[0] ^= 0x01;
	CU_ASSERT_FATAL(pwrite(fd, b, 1, off + rlen - 1) == 1);
	off = record_at(fd, 200000, &rlen);
	CU_ASSERT_FATAL(pread(fd, b, 16, off) == 16);
	for (int i = 0; i < 16; i++)
		b[i] ^= 0xff;
	CU_ASSERT_FATAL(pwrite(fd, b, 16, off) == 16);
	close(fd);
	CU_ASSERT_EQUAL(sli_table_check(f.t, khash_cb, NULL), -EBADMSG);
	for (uint64_t key = 0; key < NK; key++) {
		unsigned kf = 0;

		for (unsigned ns = 0; ns < NNS; ns++) {
			unsigned char nb[8];
			struct sli_skey k = nkey(&key, ns, nb);
			uint32_t len;
			const void *v = sli_table_get(f.t, &k, 0, SLI_TTL_KEEP, &len);

			if (v != NULL) {
				wrong += !sp_nvalue_ok(key * NNS + ns, 1, v, len);
				continue;
			}
			kf++;
			if (sli_table_error(f.t, msg, sizeof(msg)) != -EBADMSG ||
			    strstr(msg, path) == NULL) {
				other++;
				continue;
			}
			crc += strstr(msg, "CRC32C") != NULL;
			header += strstr(msg, "bad record header") != NULL;
			if (kf == 1)
				printf("  (%s: %s)\n", sli_table_spill_engine(f.t), msg);
		}
		CU_ASSERT(kf == 0 || kf == NNS);
		failed_keys += kf != 0;
	}
	CU_ASSERT_EQUAL(wrong, 0);
	CU_ASSERT_EQUAL(other, 0);
	CU_ASSERT_EQUAL(failed_keys, 2);
	CU_ASSERT_EQUAL(crc, NNS);
	CU_ASSERT_EQUAL(header, NNS);
	fix_close(&f);
	free(ver);
}

static void test_corruption_ns(void)
{
	for (unsigned ki = 0; ki < 2; ki++)
		if (engine_ok(kinds[ki]))
			corrupt_ns(kinds[ki]);
}

/* ------------------------------------------- restart policy, config errors */

static void test_files(void)
{
	char dir[64], path[128];
	struct sli_table *t, *t2;
	struct sli_spill_conf c = { .budget = 4096, .io = SLI_IO_POSIX };
	FILE *fp;

	CU_ASSERT_FATAL(sp_mkdtemp(dir, sizeof(dir)) != NULL);
	c.dir = dir;
	/* A stale file of a crashed run, and a file that is not ours. */
	snprintf(path, sizeof(path), "%s/spill-00007.sls", dir);
	fp = fopen(path, "w");
	CU_ASSERT_FATAL(fp != NULL);
	fputs("garbage", fp);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	fp = fopen(path, "w");
	CU_ASSERT_FATAL(fp != NULL);
	fclose(fp);
	CU_ASSERT_FATAL(sli_table_create(NULL, MAXP, 0, MAXP - 1, &t) == 0);
	CU_ASSERT_FATAL(sli_table_create(NULL, MAXP, 0, MAXP - 1, &t2) == 0);
	CU_ASSERT_EQUAL(sli_table_set_spill(t, &c), 0);
	snprintf(path, sizeof(path), "%s/spill-00007.sls", dir);
	CU_ASSERT(access(path, F_OK) != 0);
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	CU_ASSERT(access(path, F_OK) == 0);
	CU_ASSERT_EQUAL(sli_table_set_spill(t, &c), -EINVAL); /* already set */
	CU_ASSERT_EQUAL(sli_table_set_spill(t2, &c), -EBUSY); /* dir in use */
	c.budget = 0;
	CU_ASSERT_EQUAL(sli_table_set_spill(t2, &c), -EINVAL);
	c.budget = 4096;
	c.segment_bytes = 100;
	CU_ASSERT_EQUAL(sli_table_set_spill(t2, &c), -EINVAL);
	c.segment_bytes = 0;
	c.dir = NULL;
	CU_ASSERT_EQUAL(sli_table_set_spill(t2, &c), -EINVAL);
	c.dir = "/proc/definitely/not/here";
	CU_ASSERT(sli_table_set_spill(t2, &c) < 0);
	CU_ASSERT(sli_table_spill_engine(t2) == NULL);
	for (uint64_t key = 0; key < 5000; key++)
		CU_ASSERT(put_v(t, key, 1, SLI_TTL_NONE) == 1);
	CU_ASSERT_EQUAL(sli_table_spill_flush(t), 0);
	CU_ASSERT(sp_dir_bytes(dir) > 0);
	sli_table_destroy(t);
	CU_ASSERT(sp_dir_bytes(dir) == 0); /* the files go with the table */
	sli_table_destroy(t2);
	unlink(path);
	sp_rmdir(dir);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "crc32c vectors, sw and sse4.2", test_crc32c },
		{ "engines: batches, errors", test_engines },
		{ "random ops vs reference, both engines", test_random },
		{ "ttl of spilled entries", test_ttl },
		{ "bit flip: -EBADMSG with file and offset", test_corruption },
		{ "ENOSPC and EIO from the engine", test_io_faults },
		{ "compaction bounds the files", test_compaction },
		{ "namespaced rings: random ops vs reference", test_random_ns },
		{ "namespaced rings: ttl", test_ttl_ns },
		{ "namespaced rings: EIO on reload", test_io_faults_ns },
		{ "namespaced rings: bit flips, -EBADMSG", test_corruption_ns },
		{ "stale files, directory in use, config errors", test_files },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("state-spill", tests);
}
