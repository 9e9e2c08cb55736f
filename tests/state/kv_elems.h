/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kv_elems.h — functions over the job tests' elements that begin with an
 * 8-byte key and an int64_t value (cs_window.h's struct ev, and structs
 * that carry a string after them): the key function of the key at the
 * element's start, a rolling reduce's sum of the values, a reducing
 * state's sum of int64_t values, and the parsers of "ts,key,val" lines.
 * Fields are read with memcpy(): the elements' own types differ.
 */
#ifndef KV_ELEMS_H
#define KV_ELEMS_H

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sluice/sluice.h>

/* sl_key_fn: the element's first 8 bytes. */
static inline void key_first8(const void *e, const struct sl_batch *src, struct sl_key *out)
{
	(void)src;
	out->ptr = e;
	out->len = sizeof(int64_t);
}

/* Add the int64_t at byte @off of @in to that of @acc. */
static inline void add_i64_at(void *acc, const void *in, size_t off)
{
	int64_t a, b;

	memcpy(&a, (uint8_t *)acc + off, sizeof(a));
	memcpy(&b, (const uint8_t *)in + off, sizeof(b));
	a += b;
	memcpy((uint8_t *)acc + off, &a, sizeof(a));
}

/* A rolling reduce: the value (after the key) of @in added to @acc's; the rest of @acc kept. */
static inline int sum_val(void *acc, const void *in, void *arg)
{
	(void)arg;
	add_i64_at(acc, in, sizeof(int64_t));
	return 0;
}

/* A reducing state of int64_t values: their sum. */
static inline int sum_i64(void *acc, const void *in, void *arg)
{
	(void)arg;
	add_i64_at(acc, in, 0);
	return 0;
}

/* Parse "ts,key,val" (@len bytes at @line): 1, or -EINVAL with a reason in @why. */
static inline int parse_tkv(const char *line, size_t len, int64_t *ts, int64_t *key, int64_t *val,
			    char *why, size_t whylen)
{
	char buf[96];

	if (len >= sizeof(buf)) {
		snprintf(why, whylen, "longer than %zu bytes", sizeof(buf) - 1);
		return -EINVAL;
	}
	memcpy(buf, line, len);
	buf[len] = '\0';
	if (sscanf(buf, "%" SCNd64 ",%" SCNd64 ",%" SCNd64, ts, key, val) != 3) {
		snprintf(why, whylen, "not ts,key,val");
		return -EINVAL;
	}
	return 1;
}

/* A line source's parse function: "ts,key,val" into an element that begins with key and val. */
static inline int parse_kv(const char *line, size_t len, struct sl_batch *out, void *elem,
			   int64_t *ts, char *why, size_t whylen, void *arg)
{
	int64_t kv[2];
	int rc = parse_tkv(line, len, ts, &kv[0], &kv[1], why, whylen);

	(void)out, (void)arg;
	if (rc > 0)
		memcpy(elem, kv, sizeof(kv));
	return rc;
}

#endif /* KV_ELEMS_H */
