# SPDX-License-Identifier: Apache-2.0
"""Failures at each phase of a checkpoint, through the real binary.

window-agg with exactly-once part files (--output DIR/) and checkpoints
every 100 ms is made to die, or to fail, at a chosen point:

* crash points (SLUICE_CRASH_AT=POINT:N, core/crash.c): SIGKILL exactly
  while a subtask holds a serialised snapshot (task-snapshot), after the
  checkpoint's files are durable and before its manifest
  (checkpoint-written), after the manifest is durable and before any sink
  committed (manifest-durable), in the middle of a sink's commit
  (sink-commit), and in the middle of a restore (restore). After each crash
  the job is restarted with --restore latest, crashing again at a random
  hit of the same point a few times, then left to finish.
* I/O errors from the test I/O engine (--checkpoint-io fault:KIND@N,
  state/io_fault.c): EIO and ENOSPC on writes, a failing fsync. The job
  must fail with exit 1 and a message naming the checkpoint file or
  directory and the error; no checkpoint it failed may look complete; a
  restart without the fault must then finish exactly once. Short writes
  are not errors: the store writes the rest, and the run must simply be
  correct.
* O_DIRECT (state/ckpt.c) made to apply to these small files
  (SLUICE_CKPT_DIRECT=512): plain, where the log must say that blocks went
  direct; short writes of 4096 bytes, continued direct; short writes of
  1000 bytes, which the kernel refuses as direct writes, so the log must
  say the store fell back to the page cache; and ENOSPC, which must still
  fail the job. Each must be correct as above.

The runs that must crash or fail hold their input after an eighth of it
(SLUICE_TEST_HOLD_INPUT, core/hold.c; each restart reads another eighth at
most): they cannot reach its end first, however fast the machine or slow
its disk, and checkpoints go on until the crash point or the fault stops
them. The final restart reads to the end.

Every case ends by comparing the committed output (part files, not
dot-files) with an uninterrupted run's output as multisets, and the
uninterrupted run with the Python oracle (tests/windows/window_agg_oracle.py).

Usage: test_phases.py SLUICE [--seed S] [--records N] [--only NAME]
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
import wa_common  # noqa: E402
import window_agg_oracle  # noqa: E402
import test_crash  # noqa: E402
from test_crash import DISORDER, committed, diff  # noqa: E402

WINDOW = "sliding:2s:500ms"
CRASH_POINTS = ["task-snapshot", "checkpoint-written", "manifest-durable", "sink-commit"]
CRASHES = 3  # crashes per point before the run may finish


class Case:
    def __init__(self, sluice, tmp, name, par, rate, records):
        self.sluice = sluice
        self.hold = records // 8
        self.name = name
        self.out = os.path.join(tmp, name + "-out") + "/"
        self.ck = os.path.join(tmp, name + "-ck")
        os.mkdir(self.out)
        self.common = ["--input", os.path.join(tmp, "in.csv"), "--window", WINDOW,
                       "--out-of-orderness", str(DISORDER + 50), "--parallelism", str(par)]
        self.cmd = [sluice, "run", "window-agg"] + self.common + [
            "--output", self.out, "--checkpoint-dir", self.ck, "--checkpoint-interval", "100ms",
            "--restore", "latest", "--rate", str(rate)]

    def run(self, extra=(), crash=None, direct=None, hold=False):
        """HOLD: the input held after self.hold lines, so the run cannot end by itself."""
        env = wa_common.hold_env(self.hold) if hold else dict(os.environ)
        env.pop("SLUICE_CRASH_AT", None)
        env.pop("SLUICE_CKPT_DIRECT", None)
        if not hold:
            env.pop("SLUICE_TEST_HOLD_INPUT", None)
        if direct is not None:
            env["SLUICE_CKPT_DIRECT"] = direct
            env["SLUICE_LOG"] = "info"
        if crash is not None:
            env["SLUICE_CRASH_AT"] = crash
        return subprocess.run(self.cmd + list(extra), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=600)

    def check_complete_checkpoints(self):
        """Every chk-N with a manifest holds every file the manifest lists."""
        if not os.path.isdir(self.ck):
            return
        for d in os.listdir(self.ck):
            path = os.path.join(self.ck, d)
            meta = os.path.join(path, "_metadata")
            if not os.path.exists(meta):
                continue
            with open(meta, "rb") as f:
                names = re.findall(rb"^file (\S+)$", f.read(), re.M)
            if not names:
                raise AssertionError("%s: %s lists no files" % (self.name, meta))
            for n in names:
                if not os.path.exists(os.path.join(path, n.decode())):
                    raise AssertionError("%s: complete checkpoint %s lacks %s" %
                                         (self.name, path, n.decode()))

    def finish(self, want, what):
        r = self.run()
        if r.returncode != 0:
            raise AssertionError("%s: the final restart exited %d: %s" %
                                 (self.name, r.returncode, r.stderr.decode(errors="replace")))
        got = committed(self.out)
        if got != want:
            raise AssertionError("%s: committed output after %s differs from the "
                                 "uninterrupted run:\n%s" % (self.name, what, diff(got, want)))
        left = [f for f in os.listdir(self.out) if f.startswith(".part-")]
        if left:
            raise AssertionError("%s: uncommitted files left after the end: %s" %
                                 (self.name, left))


def killed(r):
    return r.returncode == -9


def crash_case(c, point, want, rng):
    # Each run holds its input: it cannot finish, so it must die at the crash point. Every
    # checkpoint passes the other points; a sink commits only new output, which the lines a
    # held run reads make at least once (they close windows), not necessarily more often.
    for crashes in range(1, CRASHES + 1):
        hit = 1 if point == "sink-commit" else rng.randint(1, 3)
        r = c.run(crash="%s:%d" % (point, hit), hold=True)
        if not killed(r):
            raise AssertionError("%s: crash point '%s' was not reached in run %d (exit %d): %s"
                                 % (c.name, point, crashes, r.returncode,
                                    r.stderr.decode(errors="replace")))
        c.check_complete_checkpoints()
        # Nothing committed may be wrong, even before the end.
        extra = committed(c.out) - want
        if extra:
            raise AssertionError("%s: after crash %d the committed output holds lines "
                                 "an uninterrupted run does not:\n%s" %
                                 (c.name, crashes, diff(committed(c.out), want)))
    c.finish(want, "%d crashes at '%s'" % (CRASHES, point))
    return CRASHES


def restore_case(c, want):
    # A first run dies after its second complete checkpoint, so there is
    # state to restore; the next dies in the middle of restoring it.
    r = c.run(crash="manifest-durable:2", hold=True)
    if not killed(r):
        raise AssertionError("%s: the first run was not killed (exit %d)" %
                             (c.name, r.returncode))
    for i in range(2):
        r = c.run(crash="restore")
        if not killed(r):
            raise AssertionError("%s: restart %d did not die while restoring (exit %d): %s" %
                                 (c.name, i, r.returncode, r.stderr.decode(errors="replace")))
    c.finish(want, "2 crashes while restoring")


FAULTS = [
    # spec, what the message must say
    ("fault:eio@20000", "Input/output error"),
    ("fault:enospc@20000", "No space left on device"),
    ("fault:fsync@12", "Input/output error"),
]


def fault_case(c, spec, says, want, direct=None):
    # Without restarts: the job must fail and say why (a restart strategy
    # would retry the failing device; tests/state/test_restart.c covers that).
    r = c.run(extra=["--checkpoint-io", spec, "--restart-strategy", "none"], direct=direct,
              hold=True)
    err = r.stderr.decode(errors="replace")
    if r.returncode != 1:
        raise AssertionError("%s: with %s the job exited %d, not 1: %s" %
                             (c.name, spec, r.returncode, err))
    if says not in err or not re.search(r"checkpoint( file| directory)? '[^']*chk-\d+", err):
        raise AssertionError("%s: the message does not name the checkpoint file and the "
                             "error (%s): %s" % (c.name, says, err))
    c.check_complete_checkpoints()
    extra = committed(c.out) - want
    if extra:
        raise AssertionError("%s: a failed checkpoint committed wrong output:\n%s" %
                             (c.name, diff(committed(c.out), want)))
    c.finish(want, spec)


def short_case(c, want):
    r = c.run(extra=["--checkpoint-io", "fault:short@64"])
    if r.returncode != 0:
        raise AssertionError("%s: short writes failed the job (exit %d): %s" %
                             (c.name, r.returncode, r.stderr.decode(errors="replace")))
    got = committed(c.out)
    if got != want:
        raise AssertionError("%s: output with short checkpoint writes differs:\n%s" %
                             (c.name, diff(got, want)))


DIRECT_SAYS = "with O_DIRECT"
REFUSED_SAYS = "O_DIRECT write refused"


def dio_opens(d):
    """Does directory d's file system open files with O_DIRECT?"""
    path = os.path.join(d, ".dio-probe")
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644))
        return True
    except OSError:
        return False
    finally:
        if os.path.exists(path):
            os.unlink(path)


def direct_case(c, want, spec, says, not_says):
    extra = ["--checkpoint-io", spec] if spec else []
    r = c.run(extra=extra, direct="512")
    err = r.stderr.decode(errors="replace")
    if r.returncode != 0:
        raise AssertionError("%s: exit %d: %s" % (c.name, r.returncode, err))
    if not dio_opens(c.ck):
        # tmpfs before Linux 6.6, say: every file falls back; the output must still be right.
        print("%s: no O_DIRECT on this file system: only the output is checked" % c.name)
    elif says not in err or (not_says and not_says in err):
        raise AssertionError("%s: the log should say %r%s: %s" %
                             (c.name, says, " and not %r" % not_says if not_says else "", err))
    got = committed(c.out)
    if got != want:
        raise AssertionError("%s: output with O_DIRECT checkpoint writes differs:\n%s" %
                             (c.name, diff(got, want)))


def main():
    a, seed, rng = test_crash.parse_args(argparse.ArgumentParser(), 40000, 25000)
    tmp = tempfile.mkdtemp(prefix="sluice-phases-")
    try:
        events = test_crash.write_events(tmp, seed, a.records, 500)
        wants = {}
        for par in (1, 2):
            ref = wa_common.run_window_agg(a.sluice, "--input", os.path.join(tmp, "in.csv"),
                                           "--window", WINDOW, "--out-of-orderness",
                                           str(DISORDER + 50), "--parallelism", str(par))
            if ref.returncode != 0:
                print("FAIL the uninterrupted run failed: " + ref.stderr.decode())
                return 1
            wants[par] = collections.Counter(ref.stdout.splitlines())
        oracle = collections.Counter(window_agg_oracle.run_bytes(
            events.splitlines(), window_agg_oracle.parse_window(WINDOW),
            out_of_orderness=DISORDER + 50)[0])
        for par in (1, 2):
            if wants[par] != oracle:
                print("FAIL the uninterrupted run at p=%d differs from the oracle:\n%s" %
                      (par, diff(wants[par], oracle)))
                return 1

        def case(name, par, fn):
            return (name, lambda: fn(Case(a.sluice, tmp, name, par, a.rate, a.records),
                                     wants[par]))

        cases = []
        for point in CRASH_POINTS:
            for par in (1, 2):
                cases.append(case("crash-%s-p%d" % (point, par), par,
                                  lambda c, w, p=point: crash_case(c, p, w, rng)))
        for par in (1, 2):
            cases.append(case("crash-restore-p%d" % par, par, restore_case))
        for spec, says in FAULTS:
            cases.append(case("io-" + spec.split(":")[1].split("@")[0], 2,
                              lambda c, w, s=spec, m=says: fault_case(c, s, m, w)))
        cases.append(case("io-short", 2, short_case))
        cases.append(case("io-direct", 2, lambda c, w: direct_case(
            c, w, None, DIRECT_SAYS, REFUSED_SAYS)))
        cases.append(case("io-direct-short", 2, lambda c, w: direct_case(
            c, w, "fault:short@4096", DIRECT_SAYS, REFUSED_SAYS)))
        cases.append(case("io-direct-refused", 2, lambda c, w: direct_case(
            c, w, "fault:short@1000", REFUSED_SAYS, None)))
        cases.append(case("io-direct-enospc", 2, lambda c, w: fault_case(
            c, "fault:enospc@20000", "No space left on device", w, direct="512")))
        return test_crash.run_cases(cases, a.only)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
