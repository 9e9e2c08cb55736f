# SPDX-License-Identifier: Apache-2.0
"""The crash test users care about: run window-agg with exactly-once output
(--output DIR/) and checkpoints every 150 ms, kill -9 it at random moments
(at least KILLS times), restart it each time with --restore latest until it
finishes, and check that the committed output (the part files, not the
dot-files) equals an uninterrupted run's output exactly, as multisets. Also
against the independent Python oracle (tests/windows/window_agg_oracle.py).

Usage: test_crash.py SLUICE [--kills N] [--records N] [--seed S] [--only NAME]
"""
import argparse
import collections
import os
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "windows"))
import wa_common  # noqa: E402
import window_agg_oracle  # noqa: E402

CASES = [
    # name, window, parallelism
    ("tumbling-p1", "tumbling:1s", 1),
    ("tumbling-p2", "tumbling:1s", 2),
    ("sliding-p1", "sliding:2s:500ms", 1),
    ("sliding-p2", "sliding:2s:500ms", 2),
    ("session-p1", "session:300ms", 1),
    ("session-p2", "session:300ms", 2),
]

DISORDER = 200  # ms; out-of-orderness is larger, so no record is late


def committed(out_dir):
    """The committed output: lines of every part file (not dot-files)."""
    lines = collections.Counter()
    for name in sorted(os.listdir(out_dir)):
        if name.startswith("."):
            continue
        if not name.startswith("part-"):
            raise AssertionError("unexpected file in the output directory: " + name)
        with open(os.path.join(out_dir, name), "rb") as f:
            data = f.read()
        if data and not data.endswith(b"\n"):
            raise AssertionError(name + ": a committed part file ends in a torn line")
        lines.update(data.splitlines())
    return lines


def diff(a, b):
    extra = a - b
    missing = b - a
    out = []
    for line, n in list(extra.items())[:5]:
        out.append("  extra   x%d: %s" % (n, line.decode(errors="replace")))
    for line, n in list(missing.items())[:5]:
        out.append("  missing x%d: %s" % (n, line.decode(errors="replace")))
    return "\n".join(out)


def run_case(sluice, tmp, name, window, par, events, kills, rng, rate):
    inp = os.path.join(tmp, "in.csv")
    out = os.path.join(tmp, name + "-out") + "/"
    ck = os.path.join(tmp, name + "-ck")
    os.mkdir(out)
    common = ["--input", inp, "--window", window, "--out-of-orderness", str(DISORDER + 50),
              "--parallelism", str(par)]

    ref = wa_common.run_window_agg(sluice, *common)
    if ref.returncode != 0:
        raise AssertionError("%s: the uninterrupted run failed: %s" % (name, ref.stderr.decode()))
    want = collections.Counter(ref.stdout.splitlines())
    oracle = collections.Counter(
        window_agg_oracle.run_bytes(events.splitlines(), window_agg_oracle.parse_window(window),
                                    out_of_orderness=DISORDER + 50)[0])
    if want != oracle:
        raise AssertionError("%s: the uninterrupted run differs from the oracle:\n%s" %
                             (name, diff(want, oracle)))

    cmd = [sluice, "run", "window-agg"] + common + [
        "--output", out, "--checkpoint-dir", ck, "--checkpoint-interval", "150ms",
        "--restore", "latest", "--rate", str(rate)]

    def start_over():
        # Finished before enough kills: start over with fresh directories, so
        # the kills land in one run from the beginning to the end, and
        # slower, so that they can.
        shutil.rmtree(out)
        shutil.rmtree(ck)
        os.mkdir(out)
        cmd[-1] = str(max(1, int(int(cmd[-1]) * 0.7)))
    try:
        attempts, _ = wa_common.run_with_kills(cmd, kills, lambda: rng.uniform(0.05, 0.4),
                                               start_over, kills * 20 + 50)
    except AssertionError as e:
        raise AssertionError("%s: %s" % (name, e))
    got = committed(out)
    if got != want:
        raise AssertionError("%s: committed output after %d kills differs from the "
                             "uninterrupted run:\n%s" % (name, kills, diff(got, want)))
    leftovers = [f for f in os.listdir(out) if f.startswith(".part-")]
    if leftovers:
        raise AssertionError("%s: uncommitted files left after the end: %s" % (name, leftovers))
    print("%s: %d kills, %d attempts, %d lines" % (name, kills, attempts,
                                                   sum(got.values())))


def parse_args(ap, records, rate):
    """The options every checkpoint test script takes; returns (args, seed, rng)."""
    ap.add_argument("sluice")
    ap.add_argument("--records", type=int, default=records)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SEED", "0")) or None)
    ap.add_argument("--rate", type=int, default=rate)
    ap.add_argument("--only")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    print("seed %d (rerun with --seed %d)" % (seed, seed))
    return a, seed, random.Random(seed)


def write_events(tmp, seed, records, keys):
    """Seeded events (gen_events.py) in TMP/in.csv; returns them."""
    events = wa_common.gen_events(seed, records, keys, DISORDER)
    with open(os.path.join(tmp, "in.csv"), "wb") as f:
        f.write(events)
    return events


def run_cases(cases, only):
    """Run (name, fn) pairs (all, or the one named ONLY); returns the exit status."""
    failed = 0
    for name, fn in cases:
        if only and only != name:
            continue
        try:
            fn()
            print("ok " + name)
        except AssertionError as e:
            failed += 1
            print("FAIL " + str(e))
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=20)
    a, seed, rng = parse_args(ap, 200000, 30000)
    tmp = tempfile.mkdtemp(prefix="sluice-crash-")
    try:
        events = write_events(tmp, seed, a.records, 1000)
        return run_cases([(name, lambda n=name, w=window, p=par: run_case(
            a.sluice, tmp, n, w, p, events, a.kills, rng, a.rate)) for name, window, par in CASES],
            a.only)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
