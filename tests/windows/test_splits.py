#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Watermarks per source split, through the real `sluice run window-agg` on a
directory read by ONE source subtask, against an independent reference.

Rule (SEMANTICS.md, "Time and watermarks"; Flink's per-split generation):
each file of the directory is a split with its own bounded-out-of-orderness
generator (its own max timestamp and every-N count); the source's watermark
is the minimum over the files not finished, a file not read yet included
(it holds the watermark at INT64_MIN), and it only grows. A finished file
no longer holds it back.

The reference below replays the files in name order (the line source's
order), with that rule, into window_agg_oracle's WindowOperator (Flink's
WindowOperator, written independently of the C code). A second replay with
ONE generator for the whole input must disagree (late records), so the
inputs really tell the two apart.

Usage: test_splits.py SLUICE
"""
import os
import re
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
import window_agg_oracle as oracle  # noqa: E402
from harness import case, check, run_cases  # noqa: E402
from wa_common import gen_events, run_window_agg  # noqa: E402

SLUICE = None
TMP = None


def run(*args):
    return run_window_agg(SLUICE, *args)


def gen(seed, records, keys, disorder, start):
    return gen_events(seed, records, keys, disorder, start)


def make_dir(name, files):
    """A directory of {file name: bytes}; returns its path."""
    d = os.path.join(TMP, name)
    os.mkdir(d)
    for fname, data in files.items():
        with open(os.path.join(d, fname), "wb") as f:
            f.write(data)
    return d


def reference(files, window, d, lateness, every, per_split=True):
    """Replay @files (name -> bytes) in name order; returns (sorted output, late lines)."""
    op = oracle.WindowOperator(oracle.parse_window(window), lateness)
    names = sorted(n for n in files if files[n])  # empty files are no split
    if not per_split:
        names = ["all"]
        files = {"all": b"".join(files[n] if files[n].endswith(b"\n") or not files[n]
                                 else files[n] + b"\n" for n in sorted(files))}
    split_max = {n: None for n in names}
    split_wm = {n: oracle.INT64_MIN for n in names}
    split_count = {n: 0 for n in names}
    live = set(names)
    emitted = oracle.INT64_MIN

    def combine():
        nonlocal emitted
        if not live:
            return
        m = min(split_wm[n] for n in live)
        if m > emitted:
            emitted = m
            op.advance(m)

    for n in names:
        for line in oracle.split_lines(files[n]):
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                continue
            rec, _ = oracle.parse_record(line)
            if rec is None:
                continue
            ts, key, value = rec
            op.process(ts, key, value, line)  # judged by the watermark before it
            split_max[n] = ts if split_max[n] is None else max(split_max[n], ts)
            split_count[n] += 1
            if every and split_count[n] % every == 0:
                split_wm[n] = max(split_wm[n], max(split_max[n] - d - 1, oracle.INT64_MIN))
                combine()
        live.discard(n)  # the file is finished: it holds nothing back
        combine()
    op.advance(oracle.INT64_MAX)
    return sorted(op.out), op.late


def compare(dirpath, files, window, d, lat, every, what, extra=()):
    want, want_late = reference(files, window, d, lat, every)
    late_path = os.path.join(TMP, "late-%s.txt" % re.sub(r"\W", "_", what))
    p = run("--input", dirpath, "--window", window, "--out-of-orderness", str(d),
            "--allowed-lateness", str(lat), "--watermark-every", str(every), "--late-output",
            late_path, *extra)
    check(p.returncode == 0, what + ": exit 0", p)
    got = sorted(p.stdout.splitlines())
    if got != want:
        gs, ws = set(got), set(want)
        check(False, "%s: output differs from the per-split reference: %d lines vs %d; only "
              "sluice %r; only reference %r" % (what, len(got), len(want), sorted(gs - ws)[:5],
                                                sorted(ws - gs)[:5]))
    with open(late_path, "rb") as f:
        got_late = sorted(f.read().splitlines())
    check(got_late == sorted(want_late), "%s: late records %d, reference %d" % (
        what, len(got_late), len(want_late)))
    return want, want_late


@case
def time_watermark_generation_per_split_merged_by_minimum():
    """Two files, the later-named one earlier in event time, read by one subtask."""
    files = {"a.csv": gen(11, 600, 8, 40, 100000), "b.csv": gen(12, 600, 8, 40, 0)}
    path = make_dir("two", files)
    for window, d, lat in (("tumbling:100", 20, 0), ("sliding:300:100", 50, 100),
                           ("session:40", 10, 0)):
        for par in ("1", "3"):
            what = "%s D=%d L=%d p=%s" % (window, d, lat, par)
            want, want_late = compare(path, files, window, d, lat, 1, what,
                                      ("--parallelism", par))
            one, one_late = reference(files, window, d, lat, 1, per_split=False)
            check(len(one_late) > len(want_late) and one != want,
                  "%s: one generator for both files must lose b.csv's records as late "
                  "(%d vs %d), else the test is weak" % (what, len(one_late), len(want_late)))


@case
def time_a_finished_split_no_longer_holds_the_watermark_back():
    """Three files (and an empty one, which is no split): early, late, middle in event time;
    every-N per split; each finished file stops holding the watermark."""
    files = {"1.csv": gen(21, 300, 5, 30, 0), "2.csv": gen(22, 300, 5, 30, 50000),
             "3.csv": gen(23, 300, 5, 30, 20000), "4-empty.csv": b""}
    path = make_dir("three", files)
    for every in (1, 7):
        compare(path, files, "tumbling:250", 15, 0, every, "every=%d" % every)


@case
def idleness_option():
    """--idleness D runs (D far longer than the job: same output as without it); bad values
    are usage errors naming the option."""
    files = {"a.csv": gen(31, 200, 4, 20, 5000), "b.csv": gen(32, 200, 4, 20, 0)}
    path = make_dir("idle", files)
    compare(path, files, "tumbling:100", 20, 0, 1, "--idleness 1h", ("--idleness", "1h"))
    for bad in ("0", "-5", "5x", "", "1.5s", "99999999999999999999"):
        p = run("--input", path, "--window", "tumbling:100", "--idleness", bad)
        check(p.returncode == 2, "--idleness %r: exit 2" % bad, p)
        check(b"--idleness" in p.stderr, "--idleness %r: stderr names the option" % bad, p)


def main():
    global SLUICE, TMP
    SLUICE = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="sluice-splits-") as TMP:
        return run_cases()


if __name__ == "__main__":
    sys.exit(main())
