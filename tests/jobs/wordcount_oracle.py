#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Reference implementation of `sluice run wordcount`, written independently.

The word rule: a word is a maximal run of the bytes [A-Za-z0-9], lowercased;
every other byte separates words. Everything is done on the whole input at
once with a regular expression, so no chunking logic is shared with the C
code it checks.

As a module:  count(data) -> collections.Counter of bytes words,
              csv_lines(counter), top_lines(counter, n), header(counter).
As a program: wordcount_oracle.py [--top N | --csv] [FILE|-]
              prints what sluice would print (top-N lines or the full
              'word,count' listing).
"""
import collections
import re
import sys

WORD = re.compile(rb"[A-Za-z0-9]+")


def count(data):
    return collections.Counter(m.lower() for m in WORD.findall(data))


def csv_lines(counts):
    """Every word as b'word,count', sorted by word (bytewise)."""
    return [b"%s,%d" % (w, c) for w, c in sorted(counts.items())]


def top_lines(counts, n):
    """The n most frequent words as b'count word': count descending, then word ascending."""
    ranked = sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))
    return [b"%d %s" % (c, w) for w, c in ranked[:n]]


def totals(counts):
    """(total words, distinct words)."""
    return sum(counts.values()), len(counts)


def main(argv):
    args = argv[1:]
    mode, n = "top", 10
    if args and args[0] == "--csv":
        mode, args = "csv", args[1:]
    elif args and args[0] == "--top":
        n, args = int(args[1]), args[2:]
    if len(args) != 1:
        sys.stderr.write("usage: wordcount_oracle.py [--top N | --csv] FILE|-\n")
        return 2
    if args[0] == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(args[0], "rb") as f:
            data = f.read()
    counts = count(data)
    lines = csv_lines(counts) if mode == "csv" else top_lines(counts, n)
    for line in lines:
        sys.stdout.buffer.write(line + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
