# SPDX-License-Identifier: Apache-2.0
"""Copy-on-write snapshots of keyed process state (state/table_snap.c) through the real binary.

With --state-memory, window-agg's window stage is a keyed process function whose windows live
in keyed state (jobs/window_spill.c), spilled to disk past the budget. An asynchronous snapshot
freezes its table at the barrier; the checkpoint thread reads it later (and the spilled records
through its own descriptors) while the task goes on: it copies an entry before writing it and
keeps what it removes or evicts until the snapshot is released. SLUICE_TEST_SNAPSHOT_DELAY_MS
(tests only) makes the checkpoint thread wait before it writes, so the task changes, evicts
and reloads entries of every snapshot while it is pending.

The input brings new keys all the time, with disorder below the bound. For sliding and session
windows, checkpoints every 20 ms and the delay, a 64 KiB budget:
- an uninterrupted run with checkpoints equals the oracle (tests/windows/window_agg_oracle.py),
  and its summary reports state copied by the task (> 0 bytes) with asynchronous snapshots;
- runs killed with SIGKILL KILLS times and restarted with --restore latest until they finish,
  with asynchronous and with synchronous snapshots (--checkpoint-snapshot sync): the committed
  output equals the oracle's, so every restored snapshot held its barrier's state.
Usage: test_keyed_cow.py SLUICE [--kills N] [--records N] [--seed S] [--only NAME]
"""
import argparse
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "windows"))
sys.path.insert(0, HERE)
import test_cow  # noqa: E402
import test_crash  # noqa: E402

CASES = [
    # name, window, parallelism, snapshot mode
    ("sliding-p2-async", "sliding:400ms:100ms", 2, "async"),
    ("session-p1-async", "session:30ms", 1, "async"),
    ("sliding-p2-sync", "sliding:400ms:100ms", 2, "sync"),
]
BUDGET = "64K"


def run_case(sluice, tmp, name, window, par, mode, data, kills, rng, rate):
    """test_cow.py's case with the window stage in spilled keyed state: state copied by the
    task exactly with asynchronous snapshots; no window arrays (window.c) to move."""
    test_cow.run_case(sluice, tmp, name, window, par, data, kills, rng, rate,
                      extra=["--state-memory", BUDGET, "--checkpoint-snapshot", mode],
                      want_copied=mode == "async", want_moved=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=4)
    a, seed, rng = test_crash.parse_args(ap, 40000, 30000)
    tmp = tempfile.mkdtemp(prefix="sluice-keyed-cow-")
    try:
        data = test_cow.events(rng, a.records)
        with open(os.path.join(tmp, "in.csv"), "wb") as f:
            f.write(data)
        return test_crash.run_cases([(name, lambda n=name, w=window, p=par, m=mode: run_case(
            a.sluice, tmp, n, w, p, m, data, a.kills, rng, a.rate))
            for name, window, par, mode in CASES], a.only)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
