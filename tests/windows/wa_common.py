# SPDX-License-Identifier: Apache-2.0
"""What the window-agg integration tests share: running the real binary,
generating seeded events with gen_events.py, and runs killed with SIGKILL."""
import collections
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def committed(out_dir):
    """The lines of the committed part files in OUT_DIR, as a multiset."""
    lines = collections.Counter()
    for name in os.listdir(out_dir):
        if name.startswith("part-"):
            with open(os.path.join(out_dir, name), "rb") as f:
                lines.update(f.read().splitlines())
    return lines


def run_window_agg(sluice, *args):
    """`sluice run window-agg ARGS`, output captured."""
    return subprocess.run([sluice, "run", "window-agg"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=600)


def gen_events(seed, records, keys, disorder, start=0, extra=()):
    """gen_events.py's output (bytes) for these parameters."""
    return subprocess.run(
        [sys.executable, os.path.join(HERE, "gen_events.py"), "--seed", str(seed), "--records",
         str(records), "--keys", str(keys), "--disorder", str(disorder), "--start", str(start)]
        + list(extra), stdout=subprocess.PIPE, check=True).stdout


def run_with_kills(cmd, kills, wait, start_over, limit):
    """Run CMD until an attempt exits 0 after KILLS attempts were killed with SIGKILL, all in one
    run from the beginning: each attempt gets wait() seconds before it is killed; when one
    finishes before the kills are done, start_over() resets its directories and the count
    starts again. Raises AssertionError when an attempt fails or after LIMIT attempts.
    Returns (attempts, the last attempt's stderr)."""
    done, attempts = 0, 0
    while True:
        attempts += 1
        if attempts > limit:
            raise AssertionError("no progress after %d attempts" % limit)
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            p.wait(timeout=wait() if done < kills else 600)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait()
            p.stderr.close()
            if done >= kills:  # the last attempt must finish, not hang
                raise AssertionError("attempt %d did not finish in 600 s" % attempts)
            done += 1
            continue
        err = p.stderr.read()
        p.stderr.close()
        if p.returncode != 0:
            raise AssertionError("attempt %d exited %d: %s" % (
                attempts, p.returncode, err.decode(errors="replace")[-2000:]))
        if done >= kills:
            return attempts, err
        start_over()
        done = 0


def hold_env(lines, checkpoints=None, base=None):
    """The environment (os.environ or BASE, copied) of a run whose line source holds its input
    after LINES lines of each subtask's range (SLUICE_TEST_HOLD_INPUT, core/hold.c): it returns
    no data, and never the end, until CHECKPOINTS checkpoints completed or, without
    CHECKPOINTS, until the job is stopped or killed. So the run cannot end first, however fast
    the machine, and a stop lands after exactly those lines."""
    spec = "%d" % lines if checkpoints is None else "%d:%d" % (lines, checkpoints)
    return dict(os.environ if base is None else base, SLUICE_TEST_HOLD_INPUT=spec)


def fired_after(want, events, lines, out_of_orderness):
    """What window-agg (source at parallelism 1) has fired once it read the first LINES lines
    of EVENTS (bytes) and their watermark reached the windows: the lines of WANT (a Counter of
    the uninterrupted run's output lines "start,end,key,...") whose window ends at or before
    the largest timestamp among them minus OUT_OF_ORDERNESS (the watermark, that timestamp
    minus the bound minus 1, has passed end - 1). Exact when no record is late (the disorder
    is below the bound): a later record is never in such a window, nor joins such a session."""
    top = max(int(ln.split(b",", 1)[0]) for ln in events.splitlines()[:lines])
    return collections.Counter({ln: n for ln, n in want.items()
                                if int(ln.split(b",")[1]) <= top - out_of_orderness})
