#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""window-agg with a state budget small enough to force spilling gives the same
output as without (issue 5, "State").

With --state-memory the window stage keeps its windows in keyed state
(jobs/window_spill.c), which spills to disk past the budget; without it the
in-memory operator (core/window.c) runs. On seeded out-of-order input with
thousands of keys (gen_events.py) and --watermark-every 1:

- tumbling, sliding and session windows, allowed lateness 0 and > 0, with
  --late-output, at parallelism 1 and 2: the output lines and the late
  records of both runs are equal as multisets, and equal to the independent
  oracle's (window_agg_oracle.py); the budgeted run must report that window
  state went to disk (spilled, written in 1 MiB requests, read back) and
  must not warn that the window operator ignores the budget;
- without --late-output: the late records dropped are counted alike;
- checkpoints with a budget: exactly-once part files with --checkpoint-dir,
  killed with SIGKILL a few times and restarted with --restore latest: the
  committed output equals the uninterrupted run's; and a checkpoint of the
  in-memory window operator is refused by a budgeted run (another state
  layout), with a sentence naming the state.

Usage: test_window_spill.py SLUICE [--seed S]
"""
import collections
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
import window_agg_oracle as oracle  # noqa: E402
from harness import case, check, run_cases  # noqa: E402
from wa_common import committed, gen_events, run_window_agg, run_with_kills  # noqa: E402

SLUICE = None
TMP = None
RNG = None
KILLS = 3
BUDGET = "64K"  # the smallest state-memory: a few hundred keys' windows
SPILL_RE = re.compile(rb"state-memory (\d+) B per subtask: window state of a key spilled (\d+) "
                      rb"times \((\d+) B appended to the spill files in (\d+) writes of 1 MiB, "
                      rb"up to (\d+) keys out of memory at once\), read back (\d+) times")


def gen(name, seed, records, keys, disorder, start, step, hot=0):
    """gen_events.py's records in TMP/NAME; with @hot, about 30% of them get one of @hot hot
    keys instead (sessions then merge, windows fire late more than once)."""
    data = gen_events(seed, records, keys, disorder, start, ["--step", str(step)])
    if hot:
        rnd = random.Random(seed)
        out = []
        for line in data.splitlines():
            ts, key, value = line.split(b",")
            if rnd.random() < 0.3:
                key = b"h%d" % rnd.randrange(hot)
            out.append(b"%s,%s,%s\n" % (ts, key, value))
        data = b"".join(out)
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path, oracle.split_lines(data)


# The differential cases' input: 100000 records, about one per ms of event time, over 8000
# keys (30% on 40 hot keys), up to 5000 ms out of order; watermarks D = 4000 behind. The windows are short, so
# records later than D (plus the window, plus L) are late and late firings happen, while the
# watermark's lag keeps windows of thousands of keys alive: far more than 64K holds, per
# subtask at parallelism 2 too.
WINDOWS = ("tumbling:500", "sliding:600:200", "session:100")
D = 4000
_EVENTS = []


def events():
    if not _EVENTS:
        _EVENTS.append(gen("events.csv", 41, 100000, 8000, 5000, -40000, 1, hot=40))
    return _EVENTS[0]


def session_merges(lines, window, lat):
    """Merges the oracle did on @lines (as MergingWindowSet's merge function: a window
    extended, or several joined), so that the input is known to exercise them."""
    n = [0]
    orig = oracle.WindowOperator.add_session_window

    def counting(self, key, ts):
        before = list(self.sessions.get(key, []))
        res = orig(self, key, ts)
        if res is not None and before and res not in before:
            n[0] += 1
        return res
    oracle.WindowOperator.add_session_window = counting
    try:
        oracle.run_bytes(lines, window, D, lat, 1)
    finally:
        oracle.WindowOperator.add_session_window = orig
    return n[0]


def late_firings(out):
    """Windows of @out (sorted lines) emitted more than once."""
    heads = collections.Counter(line.rsplit(b",", 4)[0] for line in out)
    return sum(1 for n in heads.values() if n > 1)


def spill_figures(stderr):
    """The budgeted run's report: dict of its figures, or None."""
    m = SPILL_RE.search(stderr)
    if m is None:
        return None
    keys = ("budget", "spilled", "bytes", "writes", "peak_keys", "reloads")
    return dict(zip(keys, (int(x) for x in m.groups())))


def dropped(stderr):
    m = re.search(rb"window-agg: (\d+) late records dropped", stderr)
    return int(m.group(1)) if m else 0


def run_pair(path, window, d, lat, par, late_output):
    """Both runs (in memory, then with the budget): [(proc, late lines or None)]."""
    res = []
    for budget in (None, BUDGET):
        args = ["--input", path, "--window", window, "--out-of-orderness", str(d),
                "--allowed-lateness", str(lat), "--watermark-every", "1",
                "--parallelism", str(par)]
        late = None
        if late_output:
            late = os.path.join(TMP, "late-%s.txt" % ("mem" if budget is None else "spill"))
            args += ["--late-output", late]
        if budget is not None:
            args += ["--state-memory", budget]
        p = run_window_agg(SLUICE, *args)
        lines = None
        if late is not None and os.path.exists(late):
            with open(late, "rb") as f:
                lines = sorted(f.read().splitlines())
        res.append((p, lines))
    return res


def check_spilled(p, what):
    fig = spill_figures(p.stderr)
    check(fig is not None, what + ": the budgeted run reports its spilling", p)
    check(fig["budget"] == 65536, what + ": budget 64K is 65536 B per subtask", p)
    check(fig["spilled"] > 0 and fig["reloads"] > 0,
          what + ": window state went out of memory and came back", p)
    check(fig["writes"] > 0, what + ": the spill files were written (1 MiB requests)", p)
    check(b"keeps its state in memory" not in p.stderr,
          what + ": no warning that the window operator ignores the budget", p)
    return fig


@case
def spilled_equals_in_memory_and_oracle():
    """Every window kind, lateness 0 and > 0, parallelism 1 and 2: both runs and the oracle
    agree exactly (outputs and late records as multisets), and the budgeted run spilled."""
    path, lines = events()
    total = collections.Counter()
    for window in WINDOWS:
        for lat in (0, 300):
            want, want_late, _ = oracle.run_bytes(lines, window, D, lat, 1)
            check(len(want_late) > 0, "%s L=%d: the input has late records" % (window, lat))
            if lat > 0:
                check(late_firings(want) > 100, "%s L=%d: windows fire late (%d)" % (
                    window, lat, late_firings(want)))
            if window.startswith("session"):
                nm = session_merges(lines, window, lat)
                check(nm > 1000, "%s L=%d: sessions merge (%d)" % (window, lat, nm))
            for par in (1, 2):
                what = "%s L=%d p=%d" % (window, lat, par)
                (mem, mem_late), (sp, sp_late) = run_pair(path, window, D, lat, par, True)
                check(mem.returncode == 0, what + ": in-memory run exits 0", mem)
                check(sp.returncode == 0, what + ": budgeted run exits 0", sp)
                got_mem = sorted(mem.stdout.splitlines())
                got_sp = sorted(sp.stdout.splitlines())
                check(got_mem == want, "%s: in-memory run differs from the oracle (%d lines vs "
                      "%d)" % (what, len(got_mem), len(want)))
                if got_sp != want:
                    a, b = collections.Counter(got_sp), collections.Counter(want)
                    check(False, "%s: budgeted run differs from the oracle: %d lines vs %d; "
                          "only spilled %r; only oracle %r" % (
                              what, len(got_sp), len(want), list((a - b).elements())[:3],
                              list((b - a).elements())[:3]))
                check(mem_late == sp_late == sorted(want_late),
                      "%s: late records differ (in memory %d, spilled %d, oracle %d)" % (
                          what, len(mem_late or []), len(sp_late or []), len(want_late)))
                fig = check_spilled(sp, what)
                total.update(fig)
                print("  %s: %d lines, %d late; %s" % (what, len(want), len(want_late), fig))
    print("  total: %s" % dict(total))


@case
def dropped_count_alike():
    """Without --late-output the late records are counted, in both runs like the oracle."""
    path, lines = events()
    for window, lat in zip(WINDOWS, (0, 300, 100)):
        want, want_late, _ = oracle.run_bytes(lines, window, D, lat, 1)
        check(len(want_late) > 0, "%s: the input has late records" % window)
        for par in (1, 2):
            what = "%s L=%d p=%d" % (window, lat, par)
            (mem, _), (sp, _) = run_pair(path, window, D, lat, par, False)
            check(mem.returncode == 0 and sp.returncode == 0, what + ": exit 0", sp)
            check(sorted(sp.stdout.splitlines()) == sorted(mem.stdout.splitlines()) == want,
                  what + ": outputs equal the oracle's")
            check(dropped(mem.stderr) == dropped(sp.stderr) == len(want_late),
                  "%s: dropped %d in memory, %d spilled, oracle %d" % (
                      what, dropped(mem.stderr), dropped(sp.stderr), len(want_late)), sp)
            fig = spill_figures(sp.stderr)
            check(fig is not None and fig["spilled"] > 0, what + ": spilled", sp)


@case
def checkpoints_kill_and_restore():
    """--checkpoint-dir with --state-memory: SIGKILL at random moments, --restore latest; the
    committed part files equal the uninterrupted run's output and the oracle's."""
    path, lines = gen("ck.csv", 47, 60000, 6000, 100, 0, 1)
    for window, par in (("sliding:3000:1000", 2), ("session:3000", 1)):
        name = "%s-p%d" % (window.replace(":", "_"), par)
        want = collections.Counter(oracle.run_bytes(lines, window, 150, 0, 0)[0])
        common = ["--input", path, "--window", window, "--out-of-orderness", "150",
                  "--parallelism", str(par), "--state-memory", BUDGET]
        ref = run_window_agg(SLUICE, *common)
        check(ref.returncode == 0 and collections.Counter(ref.stdout.splitlines()) == want,
              name + ": the uninterrupted budgeted run equals the oracle", ref)
        out = os.path.join(TMP, name + "-out") + "/"
        ck = os.path.join(TMP, name + "-ck")
        os.mkdir(out)
        cmd = [SLUICE, "run", "window-agg"] + common + [
            "--output", out, "--checkpoint-dir", ck, "--checkpoint-interval", "100ms",
            "--restore", "latest", "--rate", "30000"]

        def start_over():
            shutil.rmtree(out)
            shutil.rmtree(ck)
            os.mkdir(out)
        try:
            attempts, err = run_with_kills(cmd, KILLS, lambda: RNG.uniform(0.3, 0.9), start_over,
                                           100)
        except AssertionError as e:
            check(False, "%s: %s" % (name, e))
        fig = spill_figures(err)
        check(fig is not None and fig["spilled"] > 0, name + ": the last attempt spilled")
        got = committed(out)
        check(got == want, "%s: committed output after %d kills differs from the oracle: "
              "%d extra, %d missing" % (name, KILLS, sum((got - want).values()),
                                        sum((want - got).values())))
        print("  %s: %d kills, %d attempts, %d lines" % (name, KILLS, attempts,
                                                         sum(got.values())))


@case
def in_memory_checkpoint_refused_with_budget():
    """The two window stages keep different state: restoring one's checkpoint into the other is
    refused before anything runs, naming the state."""
    path, _ = gen("refuse.csv", 53, 2000, 100, 20, 0, 1)
    ck = os.path.join(TMP, "refuse-ck")
    common = ["--input", path, "--window", "tumbling:100", "--output", os.devnull,
              "--checkpoint-dir", ck]
    p = run_window_agg(SLUICE, *common)
    check(p.returncode == 0 and os.listdir(ck), "the in-memory run leaves a checkpoint", p)
    p = run_window_agg(SLUICE, *(common + ["--restore", "latest", "--state-memory", BUDGET]))
    check(p.returncode != 0 and b"state" in p.stderr and b"window" in p.stderr,
          "a budgeted run refuses the in-memory operator's checkpoint", p)


def main():
    global SLUICE, TMP, RNG
    SLUICE = sys.argv[1]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else \
        random.randrange(1 << 30)
    print("seed %d (kill moments; rerun with --seed %d)" % (seed, seed))
    RNG = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="sluice-wspill-") as TMP:
        return run_cases()


if __name__ == "__main__":
    sys.exit(main())
