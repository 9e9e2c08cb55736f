#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Differential tests: the real `sluice run window-agg` against the
independent oracle (window_agg_oracle.py), on seeded random out-of-order
inputs (gen_events.py).

- --watermark-every 1 on one file: the output must equal the oracle's
  exactly (as multisets), late records and the dropped count included, for
  tumbling, sliding and session windows, lateness 0 and > 0, disorder
  smaller and larger than D, at parallelism 1, 2, 4 and several batch
  sizes;
- sliced sliding shapes: slides that do not divide the size, slide = size,
  slide > size (gaps), gcd 1;
- periodic watermarks (every 200 ms) with D larger than the disorder: the
  output must equal the oracle's final-watermark-only run, at any
  parallelism;
- bad records under each policy, and usage errors.

Usage: test_window_agg.py SLUICE
"""
import os
import re
import subprocess
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


def gen(name, seed, records, keys, disorder, start=0, extra=()):
    data = gen_events(seed, records, keys, disorder, start, extra)
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path, oracle.split_lines(data)


def dropped(stderr):
    m = re.search(rb"window-agg: (\d+) late records dropped", stderr)
    return int(m.group(1)) if m else 0


def compare(path, lines, window, d, lat, every, what, extra=()):
    """Run sluice (with --late-output) and the oracle; outputs and late records must match."""
    want, want_late, _ = oracle.run_bytes(lines, window, d, lat, every)
    late = os.path.join(TMP, "late.txt")
    args = ["--input", path, "--window", window, "--out-of-orderness", str(d),
            "--allowed-lateness", str(lat), "--late-output", late]
    if every:
        args += ["--watermark-every", str(every)]
    p = run(*(args + list(extra)))
    check(p.returncode == 0, what + ": exit 0", p)
    got = sorted(p.stdout.splitlines())
    if got != want:
        gs, ws = set(got), set(want)
        check(False, "%s: output differs from the oracle: %d lines vs %d; only sluice %r; "
              "only oracle %r" % (what, len(got), len(want), sorted(gs - ws)[:5],
                                  sorted(ws - gs)[:5]))
    with open(late, "rb") as f:
        got_late = sorted(f.read().splitlines())
    check(got_late == sorted(want_late), "%s: late records differ: %d vs oracle %d" % (
        what, len(got_late), len(want_late)))
    return want, want_late


@case
def exact_per_record_watermarks():
    """--watermark-every 1: exactly the oracle, every window kind, lateness, disorder vs D."""
    windows = ["tumbling:100", "sliding:300:100", "sliding:250:100", "session:40"]
    n_late = 0
    for i, window in enumerate(windows):
        for disorder, d in ((60, 20), (30, 100)):
            for lat in (0, 150):
                path, lines = gen("exact-%d-%d-%d.csv" % (i, disorder, lat), 100 + i * 7 + lat,
                                  4000, 60, disorder, start=-2000, extra=["--step", "3"])
                what = "%s D=%d L=%d disorder=%d" % (window, d, lat, disorder)
                _, late = compare(path, lines, window, d, lat, 1, what)
                n_late += len(late)
    check(n_late > 0, "the inputs must produce some late records (else the test is weak)")


@case
def sliced_window_shapes():
    """Panes of gcd(size, slide): slides that do not divide the size, slide = size, slides
    longer than the size (gaps in no window: their records are late once past the watermark),
    gcd 1, with lateness, disorder beyond D and every-N watermarks (late firings, panes freed
    while their newer windows live)."""
    windows = ["sliding:1000:300", "sliding:7:3", "sliding:300:300", "sliding:90:250",
               "sliding:40:100", "sliding:600:50"]
    n_late = 0
    for i, window in enumerate(windows):
        for disorder, d, lat, every in ((60, 20, 0, 1), (120, 30, 200, 1), (40, 100, 70, 3)):
            path, lines = gen("sliced-%d-%d.csv" % (i, lat), 300 + i * 11 + lat, 3000, 40,
                              disorder, start=-1500, extra=["--step", "3"])
            what = "%s D=%d L=%d disorder=%d every=%d" % (window, d, lat, disorder, every)
            _, late = compare(path, lines, window, d, lat, every, what)
            n_late += len(late)
    check(n_late > 0, "the inputs must produce some late records (else the test is weak)")
    path, lines = gen("sliced-par.csv", 77, 5000, 200, 70, extra=["--step", "4"])
    for window in ("sliding:1000:300", "sliding:90:250"):
        for par, batch in (("2", "7"), ("4", "64")):
            compare(path, lines, window, 25, 100, 1, "%s p=%s batch=%s" % (window, par, batch),
                    extra=["--parallelism", par, "--batch-size", batch])


@case
def parallelism_and_batches():
    """The exact output does not depend on parallelism, batch size or workers."""
    path, lines = gen("par.csv", 7, 6000, 300, 80, extra=["--step", "4"])
    for window in ("tumbling:200", "sliding:400:100", "session:30"):
        for par, batch in (("1", "512"), ("2", "7"), ("4", "64"), ("3", "1")):
            compare(path, lines, window, 25, 100, 1, "%s p=%s batch=%s" % (window, par, batch),
                    extra=["--parallelism", par, "--batch-size", batch])


@case
def state_memory_moves_windows_to_keyed_state():
    """With --state-memory the windows live in keyed state, which the budget bounds
    (jobs/window_spill.c; tests/windows/test_window_spill.py checks it at scale): the output is
    unchanged, the run reports its spilling and no warning says the budget does not apply."""
    path, lines = gen("state-mem.csv", 11, 3000, 200, 40)
    compare(path, lines, "tumbling:100", 50, 0, 1, "state-memory 64K",
            extra=["--state-memory", "64K"])
    p = run("--input", path, "--window", "tumbling:100", "--state-memory", "64K",
            "--output", os.devnull)
    check(p.returncode == 0 and b"keeps its state in memory" not in p.stderr
          and b"state-memory 65536 B per subtask: window state" in p.stderr,
          "with a budget: spilling reported, no warning", p)
    p = run("--input", path, "--window", "tumbling:100", "--output", os.devnull)
    check(p.returncode == 0 and b"keeps its state in memory" not in p.stderr
          and b"state-memory" not in p.stderr, "no budget: nothing said", p)


@case
def every_n_records():
    path, lines = gen("every.csv", 11, 3000, 40, 50, extra=["--step", "5"])
    for every in (2, 7, 100):
        compare(path, lines, "tumbling:150", 10, 50, every, "every %d" % every)


@case
def periodic_watermarks_d_above_disorder():
    """Default periodic watermarks: with D > disorder nothing is late, output = final-only."""
    path, lines = gen("periodic.csv", 5, 20000, 500, 40, extra=["--step", "2"])
    for window in ("tumbling:100", "sliding:200:50", "session:25"):
        want, _, _ = oracle.run_bytes(lines, window, 41, 0, 0)
        for par in ("1", "2", "4"):
            p = run("--input", path, "--window", window, "--out-of-orderness", "41",
                    "--parallelism", par, "--rate", "200000")
            check(p.returncode == 0, "periodic %s p=%s: exit 0" % (window, par), p)
            check(sorted(p.stdout.splitlines()) == want,
                  "periodic %s p=%s: differs from the oracle's final-only output" % (window, par))
            check(dropped(p.stderr) == 0, "periodic: nothing late", p)


@case
def dropped_count_without_late_output():
    path, lines = gen("drop.csv", 3, 3000, 20, 90, extra=["--step", "2"])
    want, late, _ = oracle.run_bytes(lines, "tumbling:50", 5, 0, 1)
    check(len(late) > 0, "input must have late records")
    p = run("--input", path, "--window", "tumbling:50", "--out-of-orderness", "5",
            "--watermark-every", "1")
    check(p.returncode == 0, "exit 0", p)
    check(sorted(p.stdout.splitlines()) == want, "output equals the oracle")
    check(dropped(p.stderr) == len(late), "dropped count %d, oracle %d" % (
        dropped(p.stderr), len(late)), p)


@case
def bad_records_policies():
    path, lines = gen("bad.csv", 9, 2000, 30, 20, extra=["--bad-fraction", "0.05", "--crlf"])
    want, _, bad = oracle.run_bytes(lines, "tumbling:100", 30, 0, 1)
    check(len(bad) > 10, "the input has bad records")
    # fail: the first bad record, named by FILE:LINE, exit 1
    p = run("--input", path, "--window", "tumbling:100", "--watermark-every", "1")
    check(p.returncode == 1, "fail policy: exit 1", p)
    check(("%s:%d:" % (path, bad[0][0])).encode() in p.stderr,
          "fail policy names the first bad line %d" % bad[0][0], p)
    # skip: the oracle's output, and the count said
    p = run("--input", path, "--window", "tumbling:100", "--out-of-orderness", "30",
            "--watermark-every", "1", "--bad-records", "skip")
    check(p.returncode == 0, "skip: exit 0", p)
    check(sorted(p.stdout.splitlines()) == want, "skip: output equals the oracle")
    check(("window-agg: %d bad records skipped" % len(bad)).encode() in p.stderr,
          "skip: the count is reported", p)
    # PATH: one line per bad record, FILE:LINE: reason: raw
    dead = os.path.join(TMP, "dead.txt")
    p = run("--input", path, "--window", "tumbling:100", "--out-of-orderness", "30",
            "--watermark-every", "1", "--bad-records", dead)
    check(p.returncode == 0, "dead-letter: exit 0", p)
    check(sorted(p.stdout.splitlines()) == want, "dead-letter: output equals the oracle")
    with open(dead, "rb") as f:
        dl = f.read().splitlines()
    check(len(dl) == len(bad), "dead-letter lines %d, oracle %d" % (len(dl), len(bad)))
    for (lineno, raw, _), got in zip(bad, dl):
        prefix = ("%s:%d: " % (path, lineno)).encode()
        check(got.startswith(prefix) and got.endswith(b": " + raw),
              "dead-letter line %r for line %d %r" % (got, lineno, raw))


@case
def usage_errors():
    path, _ = gen("u.csv", 1, 10, 2, 0)
    for args, culprit in (
            (["--window", "tumbling:1s"], "--input"),
            (["--input", path], "--window"),
            (["--input", path, "--window", "hopping:5"], "--window"),
            (["--input", path, "--window", "tumbling:0"], "--window"),
            (["--input", path, "--window", "sliding:10"], "--window"),
            (["--input", path, "--window", "tumbling:5x"], "--window"),
            (["--input", path, "--window", "tumbling:5", "--out-of-orderness", "-1"],
             "--out-of-orderness"),
            (["--input", path, "--window", "tumbling:5", "--allowed-lateness", "1d"],
             "--allowed-lateness"),
            (["--input", path, "--window", "tumbling:5", "--watermark-every", "0"],
             "--watermark-every"),
            (["--input", path, "--window", "tumbling:5", "--rate", "fast"], "--rate"),
            # A path ending in '/' is the part-file sink: it must be an existing directory.
            (["--input", path, "--window", "tumbling:5", "--output", TMP + "/no-such-dir/"],
             "--output"),
            (["--input", path, "--window", "tumbling:5", "--bogus"], "--bogus")):
        p = run(*args)
        check(p.returncode == 2, "%r: exit 2" % args, p)
        check(culprit.encode() in p.stderr, "%r: stderr names %s" % (args, culprit), p)
    p = run("--input", os.path.join(TMP, "missing.csv"), "--window", "tumbling:5")
    check(p.returncode == 1 and b"missing.csv" in p.stderr, "a missing input is named", p)


@case
def durations_with_units():
    data = b"0,a,1\n999,a,2\n1000,a,3\n59999,b,4\n60000,b,5\n"
    path = os.path.join(TMP, "units.csv")
    with open(path, "wb") as f:
        f.write(data)
    for spec, ms in (("tumbling:1s", 1000), ("tumbling:1000ms", 1000), ("tumbling:1m", 60000),
                     ("tumbling:1h", 3600000)):
        p = run("--input", path, "--window", spec, "--watermark-every", "1")
        want, _, _ = oracle.run_bytes(oracle.split_lines(data), "tumbling:%d" % ms, 0, 0, 1)
        check(p.returncode == 0 and sorted(p.stdout.splitlines()) == want,
              "%s equals tumbling:%d" % (spec, ms), p)

@case
def test_variables_that_do_not_parse_are_named_and_ignored():
    # SLUICE_TEST_HOLD_INPUT (core/hold.c) and SLUICE_TEST_SLOW_WINDOW_US (jobs/window_agg.c)
    # are for tests only; a value that does not parse must be said and ignored: the run
    # reads its whole input (a hold taken as N would never end) and its output is the oracle's.
    path, lines = gen("tvars.csv", 17, 2000, 30, 40)
    want, _, _ = oracle.run_bytes(lines, "tumbling:100", 50, 0, 0)
    for hold, slow in (("x7", "12ms"), ("7:", "-1"), ("7:0", "99999999999999999999"),
                       ("7x", "1000001")):
        env = dict(os.environ, SLUICE_TEST_HOLD_INPUT=hold, SLUICE_TEST_SLOW_WINDOW_US=slow)
        p = subprocess.run([SLUICE, "run", "window-agg", "--input", path, "--window",
                            "tumbling:100", "--out-of-orderness", "50"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        what = "HOLD=%r SLOW=%r" % (hold, slow)
        check(p.returncode == 0 and sorted(p.stdout.splitlines()) == want,
              what + ": exit 0, output equals the oracle", p)
        check(("SLUICE_TEST_HOLD_INPUT='%s' ignored" % hold).encode() in p.stderr and
              ("SLUICE_TEST_SLOW_WINDOW_US='%s' ignored" % slow).encode() in p.stderr,
              what + ": both named as ignored", p)
        check(b"armed" not in p.stderr, what + ": neither armed", p)


def main():
    global SLUICE, TMP
    SLUICE = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="sluice-wa-") as TMP:
        return run_cases()

if __name__ == "__main__":
    sys.exit(main())
