/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crc32c.c — CRC32C (Castagnoli, reflected polynomial 0x82f63b78), the
 * checksum of spill records (and later snapshot files).
 *
 * Two implementations with the same result: the SSE4.2 crc32 instruction
 * (8 bytes per instruction), chosen at run time when the CPU has it, and
 * a portable slice-by-8 table (8 bytes per step, 8 KiB of tables built on
 * first use). The choice is made once; both are pure functions, so any
 * thread may call them. tests/state/test_spill.c checks both against
 * known vectors (CRC32C("123456789") = 0xe3069283).
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "sli_io.h"

static uint32_t tab[8][256];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool have_sse42;

static void init(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
		tab[0][i] = c;
	}
	for (unsigned i = 0; i < 256; i++)
		for (unsigned s = 1; s < 8; s++)
			tab[s][i] = (tab[s - 1][i] >> 8) ^ tab[0][tab[s - 1][i] & 0xff];
#if defined(__x86_64__)
	__builtin_cpu_init();
	have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
}

uint32_t sli_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t c = ~crc;

	pthread_once(&once, init);
	for (; len >= 8; len -= 8, p += 8) {
		uint64_t w;

		memcpy(&w, p, 8); /* little-endian: the reflected CRC eats the low byte first */
		w ^= c;
		c = tab[7][w & 0xff] ^ tab[6][(w >> 8) & 0xff] ^ tab[5][(w >> 16) & 0xff] ^
		    tab[4][(w >> 24) & 0xff] ^ tab[3][(w >> 32) & 0xff] ^ tab[2][(w >> 40) & 0xff] ^
		    tab[1][(w >> 48) & 0xff] ^ tab[0][w >> 56];
	}
	while (len--)
		c = (c >> 8) ^ tab[0][(c ^ *p++) & 0xff];
	return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t c = ~crc;

	for (; len >= 8; len -= 8, p += 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#endif

bool sli_crc32c_hw_available(void)
{
	pthread_once(&once, init);
	return have_sse42;
}

uint32_t sli_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__)
	if (sli_crc32c_hw_available())
		return crc_hw(crc, buf, len);
#endif
	return sli_crc32c_sw(crc, buf, len);
}

uint32_t sli_crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&once, init);
#if defined(__x86_64__)
	if (have_sse42)
		return crc_hw(crc, buf, len);
#endif
	return sli_crc32c_sw(crc, buf, len);
}
