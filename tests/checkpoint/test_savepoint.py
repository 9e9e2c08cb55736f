# SPDX-License-Identifier: Apache-2.0
"""Savepoints through the real `sluice` binary.

1. Live savepoint: window-agg (exactly-once part files, checkpoints every
   100 ms, 2 retained) runs at parallelism 2 with a slow --rate;
   `sluice savepoint PID DIR` (the default control socket of the PID)
   returns a savepoint S with id N. The run goes on until at least
   retained + 1 more checkpoints completed (so retain deleted checkpoints
   newer than S: S must stay complete), then is killed with -9.
   The rule for the output: part files are part-SUB-EPOCH-K, and epoch E
   holds what checkpoint E committed. The savepoint is checkpoint N, so
   what the first run committed in epochs <= N is exactly the output
   before the savepoint barrier; epochs > N would be written again by the
   restore, so they are deleted (as the --restore latest refusal tells a
   user to do). The restore at parallelism 1 from S in the same output
   directory (its recover commits epoch N's files if the kill came before
   the sink's commit, and drops in-progress files) must then leave the
   committed output equal to an uninterrupted run's, as multisets.
2. Stop with savepoint (--savepoint-on-stop) at parallelism p, restore at
   q, for p, q in {1, 2, 4}: same comparison (nothing to delete: the stop
   commits everything up to the final checkpoint, which is the savepoint).
3. Refusals, each exit 1 with a message naming the file and operator:
   changed max-parallelism, changed window kind (state kind), an operator
   the job lacks and a newer format version (hand-edited manifests,
   re-checksummed), a corrupt snapshot file. A different job name only
   warns; a version 1 manifest (before state lines) still restores. A kill -9 right after a savepoint (no checkpoint since): --restore
   latest is refused naming the savepoint (its output is committed), and
   restoring the savepoint finishes exactly once. `sluice savepoint` usage
   errors exit 2, a missing socket exits
   1 naming it, a job without checkpoints answers with an error.

The reference is an uninterrupted run's standard output (itself checked
against the Python oracle by the window-agg test). Waits poll files and
sockets with generous timeouts; no sleep is an assertion. The runs that are
stopped or killed hold their input after a given number of lines
(SLUICE_TEST_HOLD_INPUT, core/hold.c): they cannot reach its end first,
however fast or slow the machine, and a stop lands after exactly those
lines, so what it committed is known: the windows their watermark closed.

Usage: test_savepoint.py SLUICE
"""
import collections
import glob
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "windows"))
import wa_common  # noqa: E402

WAIT = 120  # seconds: generous for ASan on a busy machine
RECORDS = 24000
OOO = 200  # the out-of-orderness bound; the input's disorder is 150: nothing is late
HOLD = RECORDS // 2  # where the input of a run that is killed holds
FAILED = []


def check(ok, name, detail=""):
    print(("ok " if ok else "FAIL ") + name + ((": " + detail) if detail else ""))
    if not ok:
        FAILED.append(name)


def wait_for(pred, what, proc=None):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if pred():
            return True
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("the job exited (%d) while waiting for %s" % (proc.returncode, what))
        time.sleep(0.02)
    raise RuntimeError("timed out waiting for " + what)


def kill9(proc):
    """kill -9 (right after what the caller waited for) and reap."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=WAIT)


def committed(out_dir, max_epoch=None):
    lines = collections.Counter()
    for name in os.listdir(out_dir):
        m = re.match(r"part-(\d+)-(\d+)-(\d+)$", name)
        if m and (max_epoch is None or int(m.group(2)) <= max_epoch):
            with open(os.path.join(out_dir, name), "rb") as f:
                lines.update(f.read().splitlines())
    return lines


def complete_ids(ck):
    return sorted(int(d[4:]) for d in os.listdir(ck) if d.startswith("chk-") and
                  os.path.exists(os.path.join(ck, d, "_metadata"))) if os.path.isdir(ck) else []


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def edit_manifest(src, dst, fn):
    """Copy savepoint src to dst with its manifest text edited by fn, re-checksummed."""
    shutil.copytree(src, dst)
    path = os.path.join(dst, "_metadata")
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[8:16])[0]
    text = fn(raw[16:16 + n].decode()).encode()
    head = b"SLCKPT01" + struct.pack("<Q", len(text))
    with open(path, "wb") as f:
        f.write(head + text + struct.pack("<II", crc32c(text), crc32c(head)))


def live_savepoint(sluice, tmp, inp, want, common, env):
    out = os.path.join(tmp, "live-out") + "/"
    ck = os.path.join(tmp, "live-ck")
    spdir = os.path.join(tmp, "live-sp")
    os.mkdir(out)
    # A socket left by a job killed with -9 (no such process, nobody listening): swept.
    sockdir = os.path.join(env["XDG_RUNTIME_DIR"], "sluice")
    os.makedirs(sockdir, 0o700, exist_ok=True)
    stale = os.path.join(sockdir, "999999999.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(stale)
    first = subprocess.Popen(
        [sluice, "run", "window-agg"] + common +
        ["--parallelism", "2", "--output", out, "--checkpoint-dir", ck,
         "--checkpoint-interval", "100ms", "--checkpoint-retained", "2", "--rate", "8000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=wa_common.hold_env(HOLD, base=env))
    try:
        sock = os.path.join(env["XDG_RUNTIME_DIR"], "sluice", "%d.sock" % first.pid)
        # Mid-run: some output committed already (so the savepoint is not at the start).
        wait_for(lambda: os.path.exists(sock) and sum(committed(out).values()) >= 2000,
                 "the socket and 2000 committed lines", first)
        check(not os.path.exists(stale), "a dead job's socket is swept at start")
        r = subprocess.run([sluice, "savepoint", str(first.pid), spdir], capture_output=True,
                           timeout=WAIT, env=env)
        sp = r.stdout.decode().strip()
        check(r.returncode == 0 and os.path.isdir(sp), "sluice savepoint PID DIR",
              sp + r.stderr.decode())
        n = int(re.search(r"savepoint-(\d+)-[0-9a-f]{12}$", sp).group(1))
        # Retain (2) must delete checkpoints newer than the savepoint, never the savepoint.
        wait_for(lambda: complete_ids(ck) and max(complete_ids(ck)) >= n + 3,
                 "3 checkpoints after the savepoint", first)
    finally:
        kill9(first)
    # Three completions after the savepoint: retain (run after each) deleted all up to it.
    check(os.path.exists(os.path.join(sp, "_metadata")) and min(complete_ids(ck)) > n and
          not os.path.exists(os.path.join(ck, os.path.basename(sp))),
          "savepoint complete after retain deleted checkpoints around it",
          "checkpoints now %s" % complete_ids(ck))
    before = committed(out, n)
    for name in os.listdir(out):
        m = re.match(r"part-\d+-(\d+)-\d+$", name)
        if m and int(m.group(1)) > n:
            os.unlink(os.path.join(out, name))
    second = subprocess.run(
        [sluice, "run", "window-agg"] + common +
        ["--parallelism", "1", "--output", out, "--checkpoint-dir", ck + "2",
         "--restore", sp], capture_output=True, timeout=300, env=env)
    got = committed(out)
    check(second.returncode == 0 and got == want and 0 < sum(before.values()) < sum(want.values()),
          "live savepoint p=2 -> restore q=1",
          "exit %d, %d lines before the savepoint of %d, %d extra, %d missing %s" % (
              second.returncode, sum(before.values()), sum(want.values()),
              sum((got - want).values()), sum((want - got).values()),
              second.stderr.decode()[-300:]))
    return sp


def crash_after_savepoint(sluice, tmp, want, common, env):
    """kill -9 after a savepoint and before any later checkpoint: --restore latest must
    refuse (the savepoint committed output the latest checkpoint does not cover) and name
    the savepoint; restoring the savepoint then finishes exactly once."""
    out = os.path.join(tmp, "crash-out") + "/"
    ck = os.path.join(tmp, "crash-ck")
    spdir = os.path.join(tmp, "crash-sp")
    sock = os.path.join(tmp, "crash.sock")
    os.mkdir(out)
    run = [sluice, "run", "window-agg"] + common + ["--output", out, "--checkpoint-dir", ck]
    first = subprocess.Popen(run + ["--rate", "8000", "--control", sock,
                                    "--savepoint-dir", spdir],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=wa_common.hold_env(HOLD, base=env))
    try:
        wait_for(lambda: os.path.exists(sock), "the control socket", first)
        # No checkpoint interval: only the savepoint commits; wait until the sink got output.
        wait_for(lambda: status(sock)["records_out"] >= 2000, "2000 records at the sink", first)
        before = status(sock)
        r = subprocess.run([sluice, "savepoint", sock], capture_output=True, timeout=WAIT)
        sp = r.stdout.decode().strip()
        wait_for(lambda: committed(out), "the savepoint's output to be committed", first)
        # The savepoint is the only checkpoint: status counts it, by the id in its name.
        after = status(sock)
        m = re.search(r"savepoint-(\d+)-[0-9a-f]+$", sp)
        ck_before, ck_after = before.get("checkpoints"), after.get("checkpoints")
        check(ck_before is not None and ck_before["completed"] == 0 and
              ck_before["last_id"] == 0 and m is not None and ck_after is not None and
              ck_after["completed"] == 1 and ck_after["last_id"] == int(m.group(1)) and
              ck_after["last_bytes"] > 0 and ck_after["failed"] == 0 and
              after["restarts"] == 0 and after["last_savepoint"] is not None and
              os.path.samefile(after["last_savepoint"], sp),
              "status counts the savepoint as the completed checkpoint %s" % sp,
              "%s -> %s" % (before, after))
    finally:
        kill9(first)
    latest = subprocess.run(run + ["--restore", "latest"], capture_output=True, timeout=300)
    err = latest.stderr.decode()
    check(r.returncode == 0 and latest.returncode == 1 and sp in err and "twice" in err,
          "restore latest after a crash right after a savepoint refused", err.strip())
    second = subprocess.run(run + ["--restore", sp], capture_output=True, timeout=300)
    got = committed(out)
    check(second.returncode == 0 and got == want, "then restoring the savepoint: exactly once",
          "exit %d, %d extra, %d missing %s" % (second.returncode, sum((got - want).values()),
                                               sum((want - got).values()),
                                               second.stderr.decode()[-300:]))


def status(sock):
    """The control socket's status line, as JSON."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(WAIT)
        c.connect(sock)
        c.sendall(b"status\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def stop_with_savepoint(sluice, tmp, events, want, common, p, q, hold):
    """The input held after HOLD lines: the stop commits exactly the windows they closed."""
    out = os.path.join(tmp, "stop-out-%d-%d" % (p, q)) + "/"
    ck = os.path.join(tmp, "stop-ck-%d-%d" % (p, q))
    spdir = os.path.join(tmp, "stop-sp")
    os.mkdir(out)
    first = subprocess.Popen(
        [sluice, "run", "window-agg"] + common +
        ["--parallelism", str(p), "--output", out, "--checkpoint-dir", ck,
         "--checkpoint-interval", "100ms", "--rate", "40000", "--savepoint-on-stop", spdir],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=wa_common.hold_env(hold))
    held = wa_common.fired_after(want, events, hold, OOO)
    try:
        # Stop once a checkpoint committed all the held lines could fire (the watermark is
        # periodic): more would be lines read past the hold.
        wait_for(lambda: sum(committed(out).values()) >= sum(held.values()),
                 "%d committed lines" % sum(held.values()), first)
    finally:
        first.send_signal(signal.SIGTERM)
    err = first.communicate(timeout=WAIT)[1].decode()
    m = re.search(r"sluice: savepoint written to (\S+)", err)
    partial = committed(out)
    name = "stop with savepoint after %d lines p=%d -> q=%d" % (hold, p, q)
    if first.returncode != 0 or m is None:
        check(False, name, "exit %d: %s" % (first.returncode, err))
        return None, None
    second = subprocess.run(
        [sluice, "run", "window-agg"] + common +
        ["--parallelism", str(q), "--output", out, "--checkpoint-dir", ck,
         "--restore", m.group(1)], capture_output=True, timeout=300)
    got = committed(out)
    check(second.returncode == 0 and got == want and partial == held and
          0 < sum(partial.values()) < sum(want.values()), name,
          "exit %d, %d of %d lines before the stop (%d expected: %d extra, %d missing), "
          "%d extra, %d missing at the end %s" % (
              second.returncode, sum(partial.values()), sum(want.values()),
              sum(held.values()), sum((partial - held).values()),
              sum((held - partial).values()), sum((got - want).values()),
              sum((want - got).values()), second.stderr.decode()[-300:]))
    return m.group(1), out


def refusals(sluice, tmp, inp, want, sp, sp_out):
    def restore(where, *extra, window="tumbling:1s", job="window-agg", out=None):
        out = out or tempfile.mkdtemp(prefix="o-", dir=tmp) + "/"
        return subprocess.run(
            [sluice, "run", job, "--input", inp, "--window", window, "--out-of-orderness",
             "200", "--output", out, "--restore", where] + list(extra),
            capture_output=True, timeout=300)

    def refused(name, r, *needles):
        err = r.stderr.decode()
        check(r.returncode == 1 and all(s in err for s in needles), name, err.strip())

    refused("changed max-parallelism refused", restore(sp, "--max-parallelism", "64"),
            sp, "max-parallelism 128")
    refused("changed state kind refused", restore(sp, window="sliding:2s:1s"),
            sp + "/_metadata", "'window'", "window-tumbling", "window-sliding")
    gone = os.path.join(tmp, "sp-renamed-op")
    edit_manifest(sp, gone, lambda t: t.replace("state window ", "state win2 ")
                  .replace("op window ", "op win2 "))
    refused("operator missing refused", restore(gone), gone + "/_metadata", "'win2'")
    v3 = os.path.join(tmp, "sp-v3")
    edit_manifest(sp, v3, lambda t: t.replace("sluice-checkpoint 2", "sluice-checkpoint 3"))
    refused("newer format version refused", restore(v3), v3 + "/_metadata", "version 3")
    v1 = os.path.join(tmp, "sp-v1")
    edit_manifest(sp, v1, lambda t: "\n".join(
        ln for ln in t.replace("sluice-checkpoint 2", "sluice-checkpoint 1").split("\n")
        if not ln.startswith("state ")))
    n = int(re.search(r"savepoint-(\d+)-[0-9a-f]{12}$", sp).group(1))

    def restore_copy(where):
        # The savepoint's output directory as it was at the savepoint: epochs <= n.
        out = tempfile.mkdtemp(prefix="o-", dir=tmp) + "/"
        shutil.rmtree(out)
        shutil.copytree(sp_out, out)
        for name in os.listdir(out):
            m = re.match(r"\.?part-\d+-(\d+)-\d+", name)
            if m and int(m.group(1)) > n:
                os.unlink(os.path.join(out, name))
        r = restore(where, out=out)
        return r, committed(out)

    r, got = restore_copy(v1)
    check(r.returncode == 0 and got == want,
          "a version 1 manifest (no state lines) still restores, exactly once",
          r.stderr.decode().strip())
    other = os.path.join(tmp, "sp-other-job")
    edit_manifest(sp, other, lambda t: t.replace("job window-agg", "job other-job"))
    r, got = restore_copy(other)
    check(r.returncode == 0 and b"other-job" in r.stderr and got == want,
          "other job name only warns", r.stderr.decode().strip())
    bad = os.path.join(tmp, "sp-corrupt")
    shutil.copytree(sp, bad)
    snap = sorted(glob.glob(os.path.join(bad, "t*.snap")))[0]
    data = bytearray(open(snap, "rb").read())
    data[len(data) // 2] ^= 0x40
    open(snap, "wb").write(bytes(data))
    refused("corrupt savepoint file refused", restore(bad), snap)


def cli_errors(sluice, tmp, inp, env):
    for verb, args in (("savepoint", []), ("savepoint", ["--bogus", "1"]),
                       ("savepoint", ["1", "2", "3"]), ("status", []), ("status", ["1", "2"]),
                       ("status", ["--bogus"]), ("status", [""])):
        r = subprocess.run([sluice, verb] + args, capture_output=True, timeout=WAIT)
        check(r.returncode == 2 and r.stderr.startswith(b"sluice " + verb.encode()),
              "usage error exits 2: %s %s" % (verb, args), r.stderr.decode().strip())
    missing = os.path.join(tmp, "no-such.sock")
    for cmd in (["savepoint", missing, tmp], ["status", missing]):
        r = subprocess.run([sluice] + cmd, capture_output=True, timeout=WAIT)
        check(r.returncode == 1 and missing.encode() in r.stderr,
              "%s: missing socket exits 1" % cmd[0], r.stderr.decode().strip())
    # --control without checkpoints: the socket answers, a savepoint is an error.
    sock = os.path.join(tmp, "nock.sock")
    out = os.path.join(tmp, "nock-out") + "/"
    os.mkdir(out)
    job = subprocess.Popen([sluice, "run", "window-agg", "--input", inp, "--window",
                            "tumbling:1s", "--output", out, "--rate", "4000", "--control", sock],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           env=wa_common.hold_env(HOLD))
    try:
        wait_for(lambda: os.path.exists(sock), "the control socket", job)
        r = subprocess.run([sluice, "savepoint", sock, tmp], capture_output=True, timeout=WAIT)
        check(r.returncode == 1 and b"checkpoint-dir" in r.stderr,
              "savepoint of a job without checkpoints exits 1", r.stderr.decode().strip())
        r = subprocess.run([sluice, "status", sock], capture_output=True, timeout=WAIT)
        st = json.loads(r.stdout) if r.returncode == 0 else {}
        check(r.returncode == 0 and st.get("job") == "window-agg" and st.get("running") == 1 and
              "checkpoints" in st and st["checkpoints"] is None,
              "sluice status of a job without checkpoints: checkpoints null", r.stdout.decode())
    finally:
        job.send_signal(signal.SIGTERM)
        job.communicate(timeout=WAIT)
    check(not os.path.exists(sock), "control socket removed at exit")


def main():
    sluice = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="sluice-savepoint-")
    env = dict(os.environ, XDG_RUNTIME_DIR=os.path.join(tmp, "run"))
    os.mkdir(env["XDG_RUNTIME_DIR"], 0o700)
    try:
        inp = os.path.join(tmp, "in.csv")
        events = wa_common.gen_events(11, RECORDS, 300, 150)
        with open(inp, "wb") as f:
            f.write(events)
        common = ["--input", inp, "--window", "tumbling:1s", "--out-of-orderness", str(OOO)]
        ref = wa_common.run_window_agg(sluice, *common)
        assert ref.returncode == 0, ref.stderr
        want = collections.Counter(ref.stdout.splitlines())
        live_savepoint(sluice, tmp, inp, want, common, env)
        crash_after_savepoint(sluice, tmp, want, common, env)
        sp = sp_out = None
        # Stops at 3000, 5000, ... 19000 of the 24000 lines.
        for i, (p, q) in enumerate((p, q) for p in (1, 2, 4) for q in (1, 2, 4)):
            got = stop_with_savepoint(sluice, tmp, events, want, common, p, q, 3000 + 2000 * i)
            sp, sp_out = (got if got[0] else (sp, sp_out))
        if sp is not None:
            refusals(sluice, tmp, inp, want, sp, sp_out)
        cli_errors(sluice, tmp, inp, env)
    except RuntimeError as e:
        check(False, "test run", str(e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failed" % len(FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
