# SPDX-License-Identifier: Apache-2.0
"""Rescaling through a checkpoint: run window-agg at parallelism p with
exactly-once part files, stop it with SIGTERM mid-run (the stop takes a
final checkpoint and commits), restore it at parallelism q with
--restore latest; the committed output must equal an uninterrupted run's,
for p, q in {1, 2, 4}, sliding and session windows. Window state moves by
key group. Also: a restore with another --max-parallelism is refused.

The first run holds its input after a given number of lines
(SLUICE_TEST_HOLD_INPUT, core/hold.c), so it cannot end before the stop
however fast the machine is, and is stopped only once a checkpoint
committed every window those lines closed: the stop lands after exactly
them, and what it committed must be exactly those windows' lines.

Usage: test_rescale.py SLUICE
"""
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

WAIT = 120  # seconds: a cap for a hung run, not a timing

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "windows"))
import wa_common  # noqa: E402


def committed(out_dir):
    lines = collections.Counter()
    for name in os.listdir(out_dir):
        if not name.startswith("."):
            with open(os.path.join(out_dir, name), "rb") as f:
                lines.update(f.read().splitlines())
    return lines


def main():
    sluice = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="sluice-rescale-")
    failed = 0
    try:
        inp = os.path.join(tmp, "in.csv")
        events = wa_common.gen_events(7, 40000, 500, 150)  # disorder below the bound 200
        with open(inp, "wb") as f:
            f.write(events)
        for window in ("sliding:2s:500ms", "session:300ms"):
            common = ["--input", inp, "--window", window, "--out-of-orderness", "200"]
            ref = wa_common.run_window_agg(sluice, *common)
            assert ref.returncode == 0, ref.stderr
            want = collections.Counter(ref.stdout.splitlines())
            for p in (1, 2, 4):
                for q in (1, 2, 4):
                    # The stop after 6000 to 24000 of the 40000 lines, another place for
                    # each p and q (1000 more for session windows).
                    hold = 2000 * (p + 2 * q) + (1000 if window.startswith("session") else 0)
                    held = wa_common.fired_after(want, events, hold, 200)
                    out = os.path.join(tmp, "out-%d-%d" % (p, q)) + "/"
                    ck = os.path.join(tmp, "ck-%d-%d" % (p, q))
                    shutil.rmtree(out, ignore_errors=True)
                    shutil.rmtree(ck, ignore_errors=True)
                    os.mkdir(out)
                    first = subprocess.Popen(
                        [sluice, "run", "window-agg"] + common +
                        ["--parallelism", str(p), "--output", out, "--checkpoint-dir", ck,
                         "--checkpoint-interval", "100ms", "--rate", "40000"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                        env=wa_common.hold_env(hold))
                    # Stop once all the held lines can fire is committed (the watermark is
                    # periodic, checkpoints commit); a run that ends first has failed.
                    deadline = time.monotonic() + WAIT
                    while (first.poll() is None and time.monotonic() < deadline and
                           sum(committed(out).values()) < sum(held.values())):
                        time.sleep(0.02)
                    first.send_signal(signal.SIGTERM)
                    err = first.communicate(timeout=WAIT)[1].decode()
                    partial = committed(out)
                    second = subprocess.run(
                        [sluice, "run", "window-agg"] + common +
                        ["--parallelism", str(q), "--output", out, "--checkpoint-dir", ck,
                         "--restore", "latest"], stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE, timeout=300)
                    got = committed(out)
                    name = "%s p=%d -> q=%d" % (window, p, q)
                    if first.returncode != 0 or second.returncode != 0:
                        print("FAIL %s: exit %d / %d: %s %s" % (
                            name, first.returncode, second.returncode, err,
                            second.stderr.decode()))
                        failed += 1
                    elif got != want:
                        print("FAIL %s: %d lines extra, %d missing" % (
                            name, sum((got - want).values()), sum((want - got).values())))
                        failed += 1
                    elif partial != held or not 0 < sum(partial.values()) < sum(want.values()):
                        # The stop must land mid-run, after exactly the held lines, or the
                        # restore proves less.
                        print("FAIL %s: the first run committed %d of %d lines, %d expected "
                              "(the windows closed by the first %d): %d extra, %d missing" % (
                                  name, sum(partial.values()), sum(want.values()),
                                  sum(held.values()), hold, sum((partial - held).values()),
                                  sum((held - partial).values())))
                        failed += 1
                    else:
                        print("ok %s: %d of %d lines before the stop after %d input lines" % (
                            name, sum(partial.values()), sum(want.values()), hold))
        # max-parallelism is part of the key-group layout: a change is refused.
        out = os.path.join(tmp, "out-maxp") + "/"
        ck = os.path.join(tmp, "ck-maxp")
        os.mkdir(out)
        r1 = subprocess.run([sluice, "run", "window-agg", "--input", inp, "--window",
                             "tumbling:1s", "--output", out, "--checkpoint-dir", ck,
                             "--max-parallelism", "64"], capture_output=True, timeout=120)
        r2 = subprocess.run([sluice, "run", "window-agg", "--input", inp, "--window",
                             "tumbling:1s", "--output", out, "--checkpoint-dir", ck,
                             "--restore", "latest", "--max-parallelism", "32"],
                            capture_output=True, timeout=120)
        if r1.returncode != 0 or r2.returncode == 0 or b"max-parallelism 64" not in r2.stderr:
            print("FAIL max-parallelism change: %d %d %s" % (r1.returncode, r2.returncode,
                                                              r2.stderr.decode()))
            failed += 1
        else:
            print("ok max-parallelism change refused: " + r2.stderr.decode().strip())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
