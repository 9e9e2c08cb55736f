# SPDX-License-Identifier: Apache-2.0
"""What the window-agg integration tests share: running the real binary and
generating seeded events with gen_events.py."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


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
