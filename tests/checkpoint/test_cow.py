# SPDX-License-Identifier: Apache-2.0
"""Copy-on-write window snapshots (core/window.c) while the state grows.

An asynchronous snapshot of window-agg's window operator only marks its
arrays at the barrier; the checkpoint thread copies them later, and the
task copies a segment itself before its first write into one not copied
yet, or moves an array it grows to new memory and leaves the old one to
the snapshot. SLUICE_TEST_SNAPSHOT_DELAY_MS (tests only) makes the
checkpoint thread wait before it copies, so that the task writes into,
and grows, every array a snapshot reads while it is pending.

The input brings new keys of 16 bytes all the time (key records, key
bytes, windows, rings and their accumulators all grow), with disorder
below the bound. For tumbling, sliding and session windows at parallelism
1 and 2, checkpoints every 20 ms and the delay:
- an uninterrupted run with checkpoints: its output equals the oracle's
  (tests/windows/window_agg_oracle.py), and its summary reports state
  copied by the task (> 0 bytes) and arrays moved (> 0); its input holds
  after half of it until 3 checkpoints completed (SLUICE_TEST_HOLD_INPUT=N:3,
  core/hold.c), so at least 3 complete however fast the machine;
- runs killed with SIGKILL KILLS times and restarted with --restore latest
  until they finish: the committed output equals the oracle's, so every
  restored snapshot held the state of its barrier, not a later one.
Usage: test_cow.py SLUICE [--kills N] [--records N] [--seed S] [--only NAME]
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "windows"))
sys.path.insert(0, HERE)
import test_crash  # noqa: E402
import wa_common  # noqa: E402
import window_agg_oracle  # noqa: E402

CASES = [
    # name, window, parallelism
    ("tumbling-p1", "tumbling:200ms", 1),
    ("sliding-p2", "sliding:400ms:100ms", 2),
    ("sliding-p1", "sliding:400ms:100ms", 1),
    ("session-p2", "session:30ms", 2),
]
DISORDER = 40  # ms; the out-of-orderness bound is larger: no record is late
DELAY_MS = "60"
SUMMARY = re.compile(rb"sluice: checkpoints: (\d+) completed, (\d+) failed, longest task pause "
                     rb"[0-9.]+ ms; copy-on-write: (\d+) B copied by tasks, (\d+) arrays moved")


def events(rng, records):
    """ts,key,value lines, ts about one per record with DISORDER of disorder; key i of a
    record is drawn from the keys seen so far plus a few new ones, so keys keep coming."""
    out = []
    for i in range(records):
        ts = i // 2 + rng.randrange(DISORDER)
        nkeys = 16 + i // 3
        key = rng.randrange(nkeys) if rng.random() < 0.7 else nkeys - 1 - rng.randrange(16)
        out.append(b"%d,customer-%07d,%d" % (ts, key, rng.randrange(-1000, 1000)))
    return b"\n".join(out) + b"\n"


def run_case(sluice, tmp, name, window, par, data, kills, rng, rate, extra=(), want_copied=True,
             want_moved=True):
    """EXTRA: more options of every run; want_*: whether the summary must report state copied
    by tasks and arrays moved (both by default: window.c's copy-on-write)."""
    inp = os.path.join(tmp, "in.csv")
    env = dict(os.environ, SLUICE_TEST_SNAPSHOT_DELAY_MS=DELAY_MS)
    common = ["--input", inp, "--window", window, "--out-of-orderness", str(DISORDER + 10),
              "--parallelism", str(par)] + list(extra)
    want = collections.Counter(
        window_agg_oracle.run_bytes(data.splitlines(), window_agg_oracle.parse_window(window),
                                    out_of_orderness=DISORDER + 10)[0])

    # Uninterrupted, with checkpoints: the output, and the task's copy-on-write work. The
    # input holds halfway until 3 checkpoints completed: a fast machine cannot end first.
    out, ck = os.path.join(tmp, name + "-full") + "/", os.path.join(tmp, name + "-full-ck")
    os.mkdir(out)
    p = subprocess.run([sluice, "run", "window-agg"] + common +
                       ["--output", out, "--checkpoint-dir", ck, "--checkpoint-interval", "20ms",
                        "--rate", str(rate)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=wa_common.hold_env(data.count(b"\n") // 2, 3, base=env), timeout=600)
    if p.returncode != 0:
        raise AssertionError("%s: the run with checkpoints failed: %s" % (name, p.stderr.decode()))
    got = test_crash.committed(out)
    if got != want:
        raise AssertionError("%s: the run with checkpoints differs from the oracle:\n%s" %
                             (name, test_crash.diff(got, want)))
    m = SUMMARY.search(p.stderr)
    if m is None:
        raise AssertionError("%s: no checkpoint summary on stderr: %s" % (name, p.stderr.decode()))
    completed, failed, copied, moved = (int(x) for x in m.groups())
    if completed < 3 or failed != 0 or (copied > 0) != want_copied or (want_moved and moved == 0):
        raise AssertionError("%s: %d checkpoints completed, %d failed, %d B copied by tasks, "
                             "%d arrays moved: the copy-on-write paths did not all run" %
                             (name, completed, failed, copied, moved))

    # Killed and restored.
    out, ck = os.path.join(tmp, name + "-out") + "/", os.path.join(tmp, name + "-ck")
    os.mkdir(out)
    cmd = [sluice, "run", "window-agg"] + common + [
        "--output", out, "--checkpoint-dir", ck, "--checkpoint-interval", "20ms",
        "--restore", "latest", "--rate", str(rate)]

    def start_over():
        shutil.rmtree(out)
        shutil.rmtree(ck, ignore_errors=True)
        os.mkdir(out)
        cmd[-1] = str(max(1, int(int(cmd[-1]) * 0.7)))

    os.environ["SLUICE_TEST_SNAPSHOT_DELAY_MS"] = DELAY_MS
    try:
        attempts, _ = wa_common.run_with_kills(cmd, kills, lambda: rng.uniform(0.1, 0.5),
                                               start_over, kills * 20 + 50)
    except AssertionError as e:
        raise AssertionError("%s: %s" % (name, e))
    finally:
        del os.environ["SLUICE_TEST_SNAPSHOT_DELAY_MS"]
    got = test_crash.committed(out)
    if got != want:
        raise AssertionError("%s: committed output after %d kills differs from the oracle:\n%s" %
                             (name, kills, test_crash.diff(got, want)))
    print("%s: %d checkpoints (%d B copied by tasks, %d arrays moved); %d kills, %d attempts, "
          "%d lines" % (name, completed, copied, moved, kills, attempts, sum(got.values())))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=4)
    a, seed, rng = test_crash.parse_args(ap, 60000, 40000)
    tmp = tempfile.mkdtemp(prefix="sluice-cow-")
    try:
        data = events(rng, a.records)
        with open(os.path.join(tmp, "in.csv"), "wb") as f:
            f.write(data)
        return test_crash.run_cases([(name, lambda n=name, w=window, p=par: run_case(
            a.sluice, tmp, n, w, p, data, a.kills, rng, a.rate)) for name, window, par in CASES],
            a.only)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
