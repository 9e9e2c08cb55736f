/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spill_common.h — helpers of the spill tests: temporary directories,
 * key numbers as 8-byte keys, values derived from (key, version) so that
 * the reference is an array of versions, a seeded random sequence, and
 * a check of every entry through a partition against that reference.
 * Uses CUnit's assertions: include sl_test.h first.
 */
#ifndef SL_TEST_SPILL_COMMON_H
#define SL_TEST_SPILL_COMMON_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sli_core.h"
#include "sli_io.h"
#include "sli_state.h"

static inline uint64_t sp_hash(uint64_t key)
{
	return sli_hash64(&key, sizeof(key), 0x5eed5011ull);
}

static inline struct sli_skey sp_key(const uint64_t *key, uint16_t state_id)
{
	return (struct sli_skey){
		.hash = sp_hash(*key), .key = key, .key_len = 8, .state_id = state_id
	};
}

/* The value of @key at @version: 16 bytes that depend on both. */
static inline void sp_value(uint64_t key, uint32_t version, uint64_t v[2])
{
	v[0] = sli_fmix64(key * 0x9e3779b97f4a7c15ull + version);
	v[1] = (uint64_t)version << 32 | (uint32_t)key;
}

static inline bool sp_value_ok(uint64_t key, uint32_t version, const void *p, uint32_t len)
{
	uint64_t v[2];

	sp_value(key, version, v);
	return len == sizeof(v) && memcmp(p, v, sizeof(v)) == 0;
}

/* splitmix64: the next number of the sequence in *@state. */
static inline uint64_t sp_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * Every entry of @t through a partition of @groups key groups, against
 * the versions @ver of keys 0..@n (0: absent); with @check_group, each
 * entry's key group must also be its hash modulo @groups. Returns the
 * entries that are wrong (a bad key or value, seen twice, absent in
 * @ver, in the wrong group); *@seen is the number of entries seen.
 */
static inline unsigned sp_check_partition(struct sli_table *t, const uint32_t *ver, size_t n,
					  unsigned groups, bool check_group, size_t *seen)
{
	struct sli_table_part *p;
	unsigned char *mark = calloc(n, 1);
	unsigned bad = 0;

	*seen = 0;
	CU_ASSERT_FATAL(mark != NULL && sli_table_partition(t, &p) == 0);
	for (unsigned g = 0; g < groups; g++) {
		const struct sli_entry *const *ents;
		size_t m = sli_table_part_group(p, g, &ents);

		CU_ASSERT(sli_table_part_error(p) == 0);
		for (size_t i = 0; i < m; i++) {
			struct sli_entry_view v;
			uint64_t key;

			sli_table_entry(ents[i], &v);
			memcpy(&key, v.key, 8);
			if (v.key_len != 8 || key >= n || mark[key] || ver[key] == 0 ||
			    (check_group && v.key_group != sp_hash(key) % groups) ||
			    !sp_value_ok(key, ver[key], v.value, v.value_len))
				bad++;
			else
				mark[key] = 1;
			(*seen)++;
		}
	}
	sli_table_part_destroy(p);
	free(mark);
	return bad;
}

/* A fresh directory under /tmp (removed by sp_rmdir). */
static inline char *sp_mkdtemp(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/sluice-spill-test-XXXXXX");
	return mkdtemp(buf);
}

/* Remove @dir and the files in it (no subdirectories are made). */
static inline void sp_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[4352];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

/* Bytes of the spill files in @dir, from the file system. */
static inline unsigned long long sp_dir_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned long long sum = 0;
	char path[4352];
	struct stat st;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (strncmp(de->d_name, "spill-", 6) == 0 && stat(path, &st) == 0)
			sum += (unsigned long long)st.st_size;
	}
	closedir(d);
	return sum;
}

/*
 * Namespaced ("map-like") entries: key number @key has namespaces 0..63,
 * namespace @nsid is 1..6 bytes (its first byte is @nsid); entry number
 * id = key * nns + nsid, and its value at a version is 8..48 bytes that
 * depend on both.
 */
#define SP_NS_MAX 64

static inline uint16_t sp_ns(unsigned nsid, unsigned char buf[8])
{
	static const unsigned char tail[5] = { 0xa1, 0xa2, 0xa3, 0xa4, 0xa5 };
	uint16_t n = (uint16_t)(1 + nsid % 6);

	buf[0] = (unsigned char)nsid;
	memcpy(buf + 1, tail, n - 1u);
	return n;
}

/* The namespace number of @ns, or -1 when it is not one of sp_ns()'s. */
static inline int sp_ns_id(const void *ns, uint16_t len)
{
	unsigned char b[8];

	if (len < 1 || len > 6 || ((const unsigned char *)ns)[0] >= SP_NS_MAX)
		return -1;
	if (sp_ns(((const unsigned char *)ns)[0], b) != len || memcmp(b, ns, len) != 0)
		return -1;
	return b[0];
}

static inline uint32_t sp_nvalue(uint64_t id, uint32_t version, unsigned char buf[48])
{
	uint32_t len = 8 + (uint32_t)((id * 7 + version) % 41);
	uint64_t x = sli_fmix64(id * 0x9e3779b97f4a7c15ull ^ ((uint64_t)version << 40));

	for (uint32_t i = 0; i < len; i++)
		buf[i] = (unsigned char)((x >> (i % 8 * 8)) ^ (i * 29));
	return len;
}

static inline bool sp_nvalue_ok(uint64_t id, uint32_t version, const void *p, uint32_t len)
{
	unsigned char v[48];
	uint32_t n = sp_nvalue(id, version, v);

	return p != NULL && len == n && memcmp(p, v, n) == 0;
}

/*
 * Every entry of @t through a partition of @groups key groups against
 * the versions @ver[key * nns + nsid] (0: absent): key group (the key's
 * hash modulo @groups), namespace, value, no entry twice. @also, when
 * not NULL, marks entries that may be there besides (expired ones not
 * removed yet; their version is in @also). Returns the entries that are
 * wrong plus those of @ver missing; *@seen is the number seen.
 */
static inline unsigned sp_check_partition_ns(struct sli_table *t, const uint32_t *ver,
					     const uint32_t *also, size_t nkeys, unsigned nns,
					     unsigned groups, size_t *seen)
{
	struct sli_table_part *p;
	unsigned char *mark = calloc(nkeys * nns, 1);
	unsigned bad = 0;

	*seen = 0;
	CU_ASSERT_FATAL(mark != NULL && sli_table_partition(t, &p) == 0);
	for (unsigned g = 0; g < groups; g++) {
		const struct sli_entry *const *ents;
		size_t m = sli_table_part_group(p, g, &ents);

		CU_ASSERT(sli_table_part_error(p) == 0);
		for (size_t i = 0; i < m; i++) {
			struct sli_entry_view v;
			uint64_t key, id;
			int nsid;
			uint32_t want;

			sli_table_entry(ents[i], &v);
			(*seen)++;
			memcpy(&key, v.key, 8);
			nsid = sp_ns_id(v.ns, v.ns_len);
			if (v.key_len != 8 || key >= nkeys || nsid < 0 || (unsigned)nsid >= nns ||
			    v.key_group != g || sp_hash(key) % groups != g) {
				bad++;
				continue;
			}
			id = key * nns + (unsigned)nsid;
			want = ver[id] != 0 ? ver[id] : also != NULL ? also[id] : 0;
			if (mark[id] || want == 0 || !sp_nvalue_ok(id, want, v.value, v.value_len))
				bad++;
			mark[id] = 1;
		}
	}
	for (size_t id = 0; id < nkeys * nns; id++)
		bad += ver[id] != 0 && !mark[id];
	sli_table_part_destroy(p);
	free(mark);
	return bad;
}

#endif /* SL_TEST_SPILL_COMMON_H */
