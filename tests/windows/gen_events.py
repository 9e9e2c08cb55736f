#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Seeded generator of out-of-order `ts,key,value` input for window-agg tests.

gen_events.py --seed S --records N --keys K --disorder MAXD --start T0
              [--step AVG] [--negative] [--bad-fraction F] [--crlf]

Writes exactly N valid records to stdout (plus, with --bad-fraction, extra bad and blank
lines) and nothing else. Record i has ts = base_i + uniform(-MAXD..0), where base_0 = T0 and
base grows by uniform(0..2*AVG) per record (AVG defaults to 10), so timestamps increase on
average and every ts is at most MAXD below the maximum seen before it: with out-of-orderness
D >= MAXD no record is late. --negative starts the time line at T0 - N*AVG/2 instead, so with
T0 = 0 about half of the timestamps are negative.

Keys are k0..k{K-1}, plus now and then an odd but valid key (64 bytes, spaces, a tab,
UTF-8, a key that looks like a number). Values are mostly small, sometimes any int64,
sometimes INT64_MIN or INT64_MAX (so sums wrap). With --bad-fraction F, before each record a
bad line of a random kind is inserted with probability F, and a blank line with probability
F/4. Every line ends with "\\n", or "\\r\\n" with --crlf.
"""
import argparse
import random
import sys

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

ODD_KEYS = [
    "K" * 64,                    # the longest key
    "key with spaces",
    " padded ",
    "tab\there",
    "ключ",                      # UTF-8, 8 bytes
    "日本語キー",
    "z",
    "-17",                       # looks like a number
    "é" * 32,                    # 64 bytes of UTF-8
]


def bad_line(rnd, ts, key):
    kinds = [
        lambda: f"{ts},{key}",                          # missing field
        lambda: f"{ts}",                                # one field
        lambda: f"{ts},{key},1,2",                      # extra comma
        lambda: f"{ts},{key},",                         # empty value
        lambda: f",{key},1",                            # empty ts
        lambda: f"t{ts},{key},1",                       # non-numeric ts
        lambda: f"{ts},{key},12x",                      # non-numeric value
        lambda: f"{ts},{key},1.5",                      # not an integer
        lambda: f"{INT64_MAX + 1},{key},1",             # ts overflows int64
        lambda: f"{ts},{key},{INT64_MIN - 1}",          # value overflows int64
        lambda: f"{ts},,1",                             # empty key
        lambda: f"{ts},{'x' * 65},1",                   # 65-byte key
        lambda: f"{ts},{'é' * 32}x,1",                  # 65 bytes of UTF-8
        lambda: f"+{ts},{key},1" if ts >= 0 else f"{ts},{key},+5",  # '+' sign
        lambda: f" {ts},{key},1",                       # leading space
        lambda: f"{ts},{key},5 ",                       # trailing space
        lambda: f"{ts},{key},0x10",                     # hex
        lambda: f"{ts},{key},\u0665",                   # a non-ASCII digit
        lambda: f"--{abs(ts)},{key},1",                 # double sign
        lambda: "garbage",
    ]
    return rnd.choice(kinds)()


def value(rnd):
    r = rnd.random()
    if r < 0.02:
        return rnd.choice([INT64_MIN, INT64_MAX])
    if r < 0.10:
        return rnd.randint(INT64_MIN, INT64_MAX)
    return rnd.randint(-1000, 1000)


def generate(seed, records, keys, disorder, start, step=10, negative=False,
             bad_fraction=0.0):
    """Yield the lines (str, without terminator); see the module docstring."""
    rnd = random.Random(seed)
    base = start - records * step // 2 if negative else start
    for _ in range(records):
        base += rnd.randint(0, 2 * step)
        ts = base - rnd.randint(0, disorder)
        if rnd.random() < 0.02:
            key = rnd.choice(ODD_KEYS)
        else:
            key = f"k{rnd.randrange(keys)}"
        if bad_fraction and rnd.random() < bad_fraction:
            yield bad_line(rnd, ts, key)
        if bad_fraction and rnd.random() < bad_fraction / 4:
            yield ""
        yield f"{ts},{key},{value(rnd)}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--records", type=int, required=True)
    ap.add_argument("--keys", type=int, required=True)
    ap.add_argument("--disorder", type=int, required=True)
    ap.add_argument("--start", type=int, required=True)
    ap.add_argument("--step", type=int, default=10)
    ap.add_argument("--negative", action="store_true")
    ap.add_argument("--bad-fraction", type=float, default=0.0)
    ap.add_argument("--crlf", action="store_true")
    a = ap.parse_args(argv)
    if a.records < 0 or a.keys < 1 or a.disorder < 0 or a.step < 0:
        ap.error("--records and --disorder and --step must be >= 0, --keys >= 1")
    end = b"\r\n" if a.crlf else b"\n"
    out = sys.stdout.buffer
    for line in generate(a.seed, a.records, a.keys, a.disorder, a.start, a.step, a.negative,
                         a.bad_fraction):
        out.write(line.encode("utf-8") + end)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
