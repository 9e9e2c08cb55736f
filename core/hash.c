/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hash.c — the key hash behind key groups, and Flink's default
 * max-parallelism rule.
 *
 * The hash reads 8 bytes at a time, multiplies and rotates, then applies
 * a strong 64-bit finaliser (the murmur3 fmix64 constants), so that the
 * low bits used by `hash % max_parallelism` are well mixed even for keys
 * that differ only in their last byte. It is not cryptographic; keys are
 * compared byte for byte wherever equality matters.
 */
#include <string.h>

#include "sli_core.h"

static inline uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

uint64_t sli_hash64(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ull);
	uint64_t w;

	while (len >= 8) {
		memcpy(&w, p, 8);
		h = rotl(h ^ (w * 0x87c37b91114253d5ull), 31) * 0x4cf5ad432745937full;
		p += 8;
		len -= 8;
	}
	w = 0;
	memcpy(&w, p, len);
	h ^= w * 0x87c37b91114253d5ull;
	return sli_fmix64(h);
}

unsigned sli_default_max_parallelism(unsigned p)
{
	/* Flink: min(max(roundUpToPowerOfTwo(p + p / 2), 128), 32768). */
	unsigned want = p + p / 2, pow2 = 1;

	while (pow2 < want && pow2 < 32768)
		pow2 <<= 1;
	if (pow2 < 128)
		pow2 = 128;
	return pow2 > 32768 ? 32768 : pow2;
}
