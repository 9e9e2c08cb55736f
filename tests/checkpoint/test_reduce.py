# SPDX-License-Identifier: Apache-2.0
"""Keyed reduce state in checkpoints, through the real binary: wordcount
(lines -> tokenize -> key by word -> reduce -> collect) with checkpoints
every 50 ms is killed with SIGKILL while it runs, each time after a
checkpoint completed (so the restart must restore reduce state, not start
over), and restarted with --restore latest until it finishes. The word
counts it prints at the end must equal an independent Python count of the
input: a word lost from or counted twice in the restored reduce state
shows up as a wrong count.

Usage: test_reduce.py SLUICE [--seed S] [--kills N]
"""
import argparse
import collections
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

WORDS = ["w%d" % i for i in range(4000)] + ["Alpha", "beta", "GAMMA", "x" * 60]


def oracle(path):
    """wordcount's rule: runs of ASCII letters and digits, lowercased."""
    c = collections.Counter()
    with open(path, "rb") as f:
        for w in re.findall(rb"[A-Za-z0-9]+", f.read()):
            c[w.lower()] += 1
    return c


def parse(out):
    c = collections.Counter()
    for line in out.splitlines():
        w, n = line.rsplit(b",", 1)
        c[w] += int(n)
    return c


def complete(ck):
    return os.path.isdir(ck) and any(
        os.path.exists(os.path.join(ck, d, "_metadata")) for d in os.listdir(ck))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SEED", "0")) or None)
    ap.add_argument("--kills", type=int, default=6)
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    print("seed %d (rerun with --seed %d)" % (seed, seed))
    rng = random.Random(seed)
    tmp = tempfile.mkdtemp(prefix="sluice-reduce-")
    try:
        inp = os.path.join(tmp, "in.txt")
        with open(inp, "w") as f:
            for _ in range(60000):
                f.write(" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 9))) + "\n")
        want = oracle(inp)
        failed = 0
        for par in (1, 2):
            ck = os.path.join(tmp, "ck-p%d" % par)
            cmd = [a.sluice, "run", "wordcount", "--input", inp, "--output", "-", "--top", "1",
                   "--parallelism", str(par), "--checkpoint-dir", ck,
                   "--checkpoint-interval", "50ms", "--restore", "latest"]
            kills, rate = 0, 40000
            for attempt in range(100):
                if kills < a.kills:
                    p = subprocess.Popen(cmd + ["--rate", str(rate)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
                    # Kill only once a checkpoint is complete: the restart must restore.
                    deadline = time.monotonic() + 60  # a cap for a hung run, not a timing
                    while not complete(ck) and p.poll() is None and time.monotonic() < deadline:
                        time.sleep(0.01)
                    time.sleep(rng.uniform(0, 0.3))
                    if p.poll() is None:
                        p.send_signal(signal.SIGKILL)
                        p.wait()
                        kills += 1
                        continue
                    if p.returncode != 0:
                        print("FAIL p=%d: attempt %d exited %d" % (par, attempt, p.returncode))
                        failed += 1
                        break
                    # Finished before enough kills: start over, slower (as test_crash does).
                    shutil.rmtree(ck, ignore_errors=True)
                    kills, rate = 0, max(1000, int(rate * 0.7))
                    continue
                r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   timeout=600)
                if r.returncode != 0:
                    print("FAIL p=%d: the last restart exited %d: %s" %
                          (par, r.returncode, r.stderr.decode(errors="replace")))
                    failed += 1
                    break
                got = parse(r.stdout)
                if got != want:
                    bad = [(w, got[w], want[w]) for w in set(got) | set(want)
                           if got[w] != want[w]]
                    print("FAIL p=%d: after %d kills %d words have wrong counts, e.g. %s" %
                          (par, kills, len(bad), bad[:5]))
                    failed += 1
                else:
                    print("ok p=%d: %d kills, %d words" % (par, kills, len(want)))
                break
            else:
                # Never got to the final run: nothing was tested, which is a failure.
                print("FAIL p=%d: %d kills in one run not reached in 100 attempts" %
                      (par, a.kills))
                failed += 1
        return 1 if failed else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
