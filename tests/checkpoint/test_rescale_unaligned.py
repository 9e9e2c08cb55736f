# SPDX-License-Identifier: Apache-2.0
"""Rescaling unaligned checkpoints that hold in-flight data (channel state).

window-agg runs at parallelism p (a keyed exchange from the source to p
window subtasks) with unaligned checkpoints and exactly-once part files. The
test reads the checkpoint files itself (an independent parser of the task
snapshot format, core/checkpoint.c and sli_ckpt_chan.h): once the newest
complete checkpoint holds in-flight data elements of operator 'window', the
process is stopped (SIGSTOP), the newest checkpoint checked again, and killed
with SIGKILL. That first run cannot end before, nor run out of in-flight
data, however fast or slow the machine: its window sleeps 500 us per element
(SLUICE_TEST_SLOW_WINDOW_US, jobs/window_agg.c) so the rings before it stay
full while the source has input, and its source holds the input after two
thirds of it (SLUICE_TEST_HOLD_INPUT, core/hold.c), far more than the
windows can take before a few checkpoints complete (small batches: a
window finishes its batch before it takes a barrier).
The run restored from it at parallelism q must commit exactly
the uninterrupted run's output, which must equal the Python oracle's, for
p in {2, 4} (at p = 1 the whole job is one chain: no channel), q in {1, 2, 4},
tumbling and session windows.

Bad channel state, in a copy of such a checkpoint patched by the test (with
its CRC32C recomputed, so the store's checksum lets it through): an element
size that is not the operator's, a log that claims more events than it holds
(truncated), an unknown event, and in-flight data of an operator the job does
not have; each restore must fail with a message naming the snapshot file and
the operator.

Usage: test_rescale_unaligned.py SLUICE [--seed S] [--records N]
"""
import argparse
import collections
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "windows"))
import wa_common  # noqa: E402
import window_agg_oracle  # noqa: E402

DISORDER = 150  # ms; the out-of-orderness bound is larger: no record is late
SLOW_US = 500  # the first run's window: sleep per element
FIRST_BATCH = 4  # the first run's batch size
BOUND = 250
ENT_CHAN, ENT_CHANS = 2, 3
EV_DATA = 0


# ---------------------------------------------------------------- CRC32C

def _crc_table():
    tab = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        tab.append(c)
    return tab


CRC_TAB = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TAB[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


# ------------------------------------------------- the checkpoint format

class Entry:
    """One entry of a task snapshot: name, kind, old index and parallelism, and where its
    sections' bodies lie in the file's bytes."""

    def __init__(self, name, name_at, kind, index, par, sections):
        self.name, self.name_at, self.kind = name, name_at, kind
        self.index, self.par, self.sections = index, par, sections


def parse_file(data):
    """A store file (16-byte header, payload, CRC trailer) holding a task snapshot: its
    entries. Offsets are into DATA."""
    assert data[:8] == b"SLCKPT01", "not a checkpoint file"
    plen = struct.unpack_from("<Q", data, 8)[0]
    base = 16
    assert data[base:base + 8] == b"SLTASK01", "not a task snapshot"
    nent = struct.unpack_from("<I", data, base + 8)[0]
    off, ents = base + 12, []
    for _ in range(nent):
        nl = struct.unpack_from("<I", data, off)[0]
        name_at = off + 4
        name = data[name_at:name_at + nl].decode()
        off = name_at + nl
        kind, index, par, sl = struct.unpack_from("<IIIQ", data, off)
        off += 20
        end, secs = off + sl, []
        while off < end:
            sec, _, ln = struct.unpack_from("<IIQ", data, off)
            secs.append((sec, off + 16, ln))
            off += 16 + ln
        ents.append(Entry(name, name_at, kind, index, par, secs))
    assert off == base + plen, "bytes after the last entry"
    return ents


def channel_logs(data, ent):
    """The channel logs of a channel-state entry: dicts with the offsets of the channel's
    event count and of each event, and its data elements."""
    logs = []
    for _, at, ln in ent.sections:
        off = at
        while off < at + ln:
            count_at = off + 4
            n = struct.unpack_from("<I", data, count_at)[0]
            wm_at = off + 12 if ent.kind == ENT_CHANS else None
            wm = struct.unpack_from("<q", data, wm_at)[0] if wm_at else -(1 << 63)
            off += 8 + (12 if ent.kind == ENT_CHANS else 0)
            blen = struct.unpack_from("<I", data, off)[0]
            off += 4
            # hashes: each element's recorded key hash (None: not keyed)
            log = {"count_at": count_at, "wm_at": wm_at, "wm": wm, "events": [], "elements": 0,
                   "hashes": [], "from": ent.index}
            p = off
            for _ in range(n):
                kind = struct.unpack_from("<I", data, p)[0]
                log["events"].append((kind, p))
                if kind != EV_DATA:
                    p += 12
                    continue
                cnt, size, keyed, arena = struct.unpack_from("<IIII", data, p + 4)
                log["elements"] += cnt
                keys_at = p + 20 + cnt * (size + 8)
                log["hashes"] += [struct.unpack_from("<Q", data, keys_at + 8 * i)[0]
                                  if keyed else None for i in range(cnt)]
                p += 20 + cnt * (size + 8 + (8 if keyed else 0)) + arena
            assert p == off + blen, "a channel log of another length than its events"
            off += blen
            logs.append(log)
    return logs


def checkpoint_files(ck_path):
    """The task snapshot files a checkpoint's manifest lists."""
    with open(os.path.join(ck_path, "_metadata"), "rb") as f:
        meta = f.read()
    if meta[:8] == b"SLCKPT01":
        meta = meta[16:16 + struct.unpack_from("<Q", meta, 8)[0]]
    return [line.split(" ", 1)[1] for line in meta.decode().splitlines()
            if line.startswith("file ")]


def all_logs(ck_path, op="window"):
    """The channel logs of operator OP in checkpoint CK_PATH."""
    logs = []
    for name in checkpoint_files(ck_path):
        with open(os.path.join(ck_path, name), "rb") as f:
            data = f.read()
        for ent in parse_file(data):
            if ent.kind in (ENT_CHAN, ENT_CHANS) and ent.name == op:
                logs += channel_logs(data, ent)
    return logs


def inflight(ck_path, op="window"):
    """Data elements held as channel state of operator OP in checkpoint CK_PATH."""
    return sum(log["elements"] for log in all_logs(ck_path, op))


def max_parallelism(ck_path):
    with open(os.path.join(ck_path, "_metadata"), "rb") as f:
        meta = f.read()
    if meta[:8] == b"SLCKPT01":
        meta = meta[16:16 + struct.unpack_from("<Q", meta, 8)[0]]
    return [int(line.split()[1]) for line in meta.decode().splitlines()
            if line.startswith("max-parallelism ")][0]


def expected_shares(ck_path, q):
    """Computed here, not by the engine's routing: for each new subtask j of Q, how many
    recorded elements it must take (the owner of the key group of a keyed element, else old
    index mod Q) and the lowest watermark of the logs it takes any from."""
    maxp = max_parallelism(ck_path)
    count, bound = collections.Counter(), {}
    for log in all_logs(ck_path):
        takers = set()
        for h in log["hashes"]:
            j = (h % maxp) * q // maxp if h is not None else log["from"] % q
            count[j] += 1
            takers.add(j)
        for j in takers:
            bound[j] = min(bound.get(j, log["wm"]), log["wm"])
    return count, bound


RESCALED = re.compile(r"operator 'window' subtask (\d+)/(\d+): (\d+) in-flight elements "
                      r"rescaled, watermark bound (-?\d+), operator watermark (-?\d+)")


def check_shares(err, ck_path, q, rescaled):
    """The restore's report of what each subtask took against expected_shares(); every
    operator watermark at most its bound. Returns the reports (j -> (n, bound, wm))."""
    got = {int(m.group(1)): (int(m.group(3)), int(m.group(4)), int(m.group(5)))
           for m in RESCALED.finditer(err)}
    if not rescaled:
        assert not got, "a restore at the same channels rescaled: %s" % got
        return got
    count, bound = expected_shares(ck_path, q)
    want = {j: (count[j], bound[j]) for j in count}
    have = {j: (n, b) for j, (n, b, _) in got.items()}
    assert have == want, "in-flight elements per new subtask (count, bound): %s, " \
        "expected %s" % (have, want)
    for j, (n, b, wm) in got.items():
        assert wm <= b, "subtask %d: operator watermark %d above its bound %d" % (j, wm, b)
    return got


def newest_complete(ck):
    best = None
    for d in os.listdir(ck) if os.path.isdir(ck) else []:
        if d.startswith("chk-") and os.path.exists(os.path.join(ck, d, "_metadata")):
            n = int(d[4:])
            best = n if best is None or n > best else best
    return None if best is None else os.path.join(ck, "chk-%d" % best)


# ------------------------------------------------------------------ runs

committed = wa_common.committed


def ck_id(path):
    return int(os.path.basename(path)[4:])


def kill_with_inflight(cmd, ck, min_id, env, limit=600):
    """Run CMD until the newest complete checkpoint in CK, numbered MIN_ID or later, holds
    in-flight data elements of 'window', then SIGKILL it there. Returns (checkpoint path,
    elements), or None when the run ended (or LIMIT seconds passed: a cap for a hung run)
    first."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    start = time.monotonic()
    try:
        while p.poll() is None and time.monotonic() - start < limit:
            path = newest_complete(ck)
            if path is not None and ck_id(path) >= min_id and inflight(path) > 0:
                p.send_signal(signal.SIGSTOP)
                # Stopped: a newer checkpoint may have completed since the look.
                path = newest_complete(ck)
                n = inflight(path)
                if n > 0:
                    p.send_signal(signal.SIGKILL)
                    p.wait()
                    return path, n
                p.send_signal(signal.SIGCONT)
            time.sleep(0.005)
        return None
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
        p.stderr.close()


def first_run(sluice, common, p, out, ck, rate, rng, records):
    """A run at parallelism P killed at a checkpoint with in-flight data, the first one from
    a random early one on. Returns (checkpoint path, elements)."""
    min_id = rng.randrange(2, 12)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(ck, ignore_errors=True)
    os.mkdir(out)
    env = wa_common.hold_env(records * 2 // 3)
    env["SLUICE_TEST_SLOW_WINDOW_US"] = str(SLOW_US)
    got = kill_with_inflight(
        [sluice, "run", "window-agg"] + common +
        ["--parallelism", str(p), "--output", out, "--checkpoint-dir", ck,
         "--checkpoint-interval", "20ms", "--checkpoint-unaligned", "true",
         "--rate", str(rate), "--batch-size", str(FIRST_BATCH)], ck, min_id, env)
    if got is None:
        raise AssertionError("no checkpoint from %d on held in-flight data at parallelism %d"
                             % (min_id, p))
    return got


def restore(sluice, common, q, out, ck):
    """Restore the latest checkpoint at Q; info logging: what the rescale did."""
    return subprocess.run(
        [sluice, "run", "window-agg"] + common +
        ["--parallelism", str(q), "--output", out, "--checkpoint-dir", ck,
         "--checkpoint-unaligned", "true", "--restore", "latest"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600,
        env=dict(os.environ, SLUICE_LOG="info"))


def diff(a, b):
    return "%d lines extra, %d missing" % (sum((a - b).values()), sum((b - a).values()))


# ------------------------------------------------------- bad channel state

def patch(ck_path, fn, every=False):
    """Apply FN(data, entry) -> bool to the first channel-state entry of 'window' that FN
    accepts (EVERY: to all of them), rewrite the file with its payload CRC fixed; return the
    (last) file's name."""
    done = None
    for name in checkpoint_files(ck_path):
        path = os.path.join(ck_path, name)
        with open(path, "rb") as f:
            data = bytearray(f.read())
        plen = struct.unpack_from("<Q", data, 8)[0]
        # The test's CRC32C must agree with the store's before it is trusted.
        assert struct.unpack_from("<I", data, 16 + plen)[0] == crc32c(data[16:16 + plen])
        for ent in parse_file(bytes(data)):
            if ent.kind in (ENT_CHAN, ENT_CHANS) and ent.name == "window" and fn(data, ent):
                struct.pack_into("<I", data, 16 + plen, crc32c(data[16:16 + plen]))
                with open(path, "wb") as f:
                    f.write(data)
                done = name
                if not every:
                    return name
    if done is None:
        raise AssertionError("no channel state to patch in " + ck_path)
    return done


def first_data(data, ent):
    for log in channel_logs(bytes(data), ent):
        for kind, at in log["events"]:
            if kind == EV_DATA:
                return log, at
    return None, None


def bad_size(data, ent):
    _, at = first_data(data, ent)
    if at is None:
        return False
    struct.pack_into("<I", data, at + 8, struct.unpack_from("<I", data, at + 8)[0] + 8)
    return True


def bad_count(data, ent):
    log, _ = first_data(data, ent)
    if log is None:
        return False
    struct.pack_into("<I", data, log["count_at"], len(log["events"]) + 1)
    return True


def bad_kind(data, ent):
    _, at = first_data(data, ent)
    if at is None:
        return False
    struct.pack_into("<I", data, at, 77)
    return True


def renamed(data, ent):
    data[ent.name_at:ent.name_at + 6] = b"windoz"
    return True


def fresh_copy(tmp, tag, ck_src, out_src):
    """Copies of the kept checkpoint directory and output: (ck, out, newest checkpoint)."""
    ck = os.path.join(tmp, tag + "-ck")
    out = os.path.join(tmp, tag + "-out") + "/"
    shutil.rmtree(ck, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(ck_src, ck)
    shutil.copytree(out_src, out)
    return ck, out, newest_complete(ck)


def lower_bounds(data, ent):
    """Every log's watermark at its start 3 s lower: below the restored operator watermark."""
    for log in channel_logs(bytes(data), ent):
        if log["wm_at"] is not None and log["wm"] > -(1 << 62):
            struct.pack_into("<q", data, log["wm_at"], log["wm"] - 3000)
    return True


def bound_cases(sluice, tmp, common, ck_src, out_src, p, want):
    """The watermark bound applied: with the logs' starting watermarks lowered, each subtask
    that takes in-flight data and has window state restores its operator watermark at the
    bound (below its sections'), and the windows that fired before do not fire again."""
    failed = 0
    for q in (1, 4):
        ck, out, ck_path = fresh_copy(tmp, "bound", ck_src, out_src)
        patch(ck_path, lower_bounds, every=True)
        r = restore(sluice, common, q, out, ck)
        got = committed(out)
        try:
            rep_ = check_shares(r.stderr.decode(), ck_path, q, True)
            assert r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr.decode()[-600:])
            assert any(wm == b for _, b, wm in rep_.values()), \
                "no operator watermark was lowered to its bound: %s" % rep_
            assert got == want, diff(got, want)
            print("ok watermark bound p=%d -> q=%d: %s" % (p, q, sorted(rep_.items())))
        except AssertionError as e:
            print("FAIL watermark bound p=%d -> q=%d: %s" % (p, q, e))
            failed += 1
    return failed


def complete_lines(lines):
    """Per (start, end, key), the line of the largest count: with late firings a window
    emits growing counts, so this is its firing that holds every record it took."""
    best = {}
    for ln in lines:
        f = ln.split(b",")
        k, n = tuple(f[:3]), int(f[3])
        if k not in best or n > best[k][0]:
            best[k] = (n, ln)
    return {k: v[1] for k, v in best.items()}


def lateness_cases(sluice, tmp, seed, records, rate, rng):
    """Late records within the allowed lateness (disorder above the bound, below bound +
    lateness; a watermark per record, so the input decides what is late), watermark bound
    lowered 3 s: windows that fired before the checkpoint are
    ahead of the restored watermark again. A record added to one must fire it again when
    the watermark passes (Flink registers a timer per element); none may be lost. Late
    firings then differ in number from the uninterrupted run's, so the check is each
    window's complete firing: the line of its largest count equals the oracle's."""
    failed = 0
    inp = os.path.join(tmp, "late.csv")
    events = wa_common.gen_events(seed + 1, records, 20, BOUND + 600)
    with open(inp, "wb") as f:
        f.write(events)
    common = ["--input", inp, "--window", "tumbling:1s", "--out-of-orderness", str(BOUND),
              "--allowed-lateness", "1s", "--watermark-every", "1"]
    lines = window_agg_oracle.run_bytes(events.splitlines(),
                                        window_agg_oracle.parse_window("tumbling:1s"),
                                        out_of_orderness=BOUND, allowed_lateness=1000,
                                        watermark_every=1)[0]
    want = complete_lines(lines)
    late_lines = len(lines) - len(want)
    assert late_lines > 0, "the input makes no late firing"
    for q in (1, 4):
        name = "lateness 1s, bound lowered, p=2 -> q=%d" % q
        out = os.path.join(tmp, "late-out") + "/"
        ck = os.path.join(tmp, "late-ck")
        ck_path, n = first_run(sluice, common, 2, out, ck, rate, rng, records)
        patch(ck_path, lower_bounds, every=True)
        r = restore(sluice, common, q, out, ck)
        got = complete_lines(committed(out).keys())
        missing = [k for k in want if got.get(k) != want[k]]
        if r.returncode != 0:
            print("FAIL %s: exit %d: %s" % (name, r.returncode, r.stderr.decode()[-600:]))
            failed += 1
        elif missing or len(got) != len(want):
            print("FAIL %s: %d windows of %d without their complete firing, e.g. %s -> %s"
                  % (name, len(missing), len(want), missing[:1],
                     [got.get(k) for k in missing[:1]]))
            failed += 1
        else:
            print("ok %s: %d in-flight elements, %d windows complete (%d late firings in "
                  "the oracle)" % (name, n, len(want), late_lines))
    return failed


def bad_input_cases(sluice, tmp, common, ck_src, out_src, p):
    failed = 0
    cases = [("element size", bad_size, p, "element size"),
             ("element size, rescaled", bad_size, 1, "element size"),
             ("truncated log", bad_count, 4, "truncated"),
             ("unknown event", bad_kind, p, "unknown event"),
             ("operator gone", renamed, 2, "does not have")]
    for what, fn, q, needle in cases:
        ck, out, ck_path = fresh_copy(tmp, "bad", ck_src, out_src)
        fname = patch(ck_path, fn)
        r = restore(sluice, common, q, out, ck)
        err = r.stderr.decode(errors="replace")
        op = "windoz" if fn is renamed else "window"
        if r.returncode == 0 or needle not in err or fname not in err or \
                ("'%s'" % op) not in err:
            print("FAIL bad channel state (%s) at q=%d: exit %d: %s" % (
                what, q, r.returncode, err.strip()[-600:]))
            failed += 1
        else:
            print("ok bad channel state (%s) refused: %s" % (what, err.strip().splitlines()[-1]))
    return failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SEED", "0")) or None)
    ap.add_argument("--records", type=int, default=30000)
    ap.add_argument("--rate", type=int, default=20000)
    a = ap.parse_args()
    sluice = a.sluice
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    print("seed %d (rerun with --seed %d)" % (seed, seed))
    rng = random.Random(seed)
    tmp = tempfile.mkdtemp(prefix="sluice-rescale-ua-")
    failed = 0
    try:
        inp = os.path.join(tmp, "in.csv")
        events = wa_common.gen_events(seed, a.records, 300, DISORDER)
        with open(inp, "wb") as f:
            f.write(events)
        for window in ("tumbling:1s", "session:300ms"):
            common = ["--input", inp, "--window", window, "--out-of-orderness", str(BOUND)]
            ref = wa_common.run_window_agg(a.sluice, *common, "--parallelism", "2")
            assert ref.returncode == 0, ref.stderr
            want = collections.Counter(ref.stdout.splitlines())
            oracle = collections.Counter(window_agg_oracle.run_bytes(
                events.splitlines(), window_agg_oracle.parse_window(window),
                out_of_orderness=BOUND)[0])
            if want != oracle:
                print("FAIL %s: the uninterrupted run differs from the oracle: %s" % (
                    window, diff(want, oracle)))
                failed += 1
                continue
            for p in (2, 4):
                for q in (1, 2, 4):
                    name = "%s p=%d -> q=%d" % (window, p, q)
                    out = os.path.join(tmp, "out") + "/"
                    ck = os.path.join(tmp, "ck")
                    ck_path, n = first_run(sluice, common, p, out, ck, a.rate, rng, a.records)
                    partial = sum(committed(out).values())
                    if window.startswith("tumbling") and p == 2 and q == 2:
                        tumbling_want = want
                        # Keep this checkpoint for the bad-input cases.
                        shutil.rmtree(os.path.join(tmp, "keep-ck"), ignore_errors=True)
                        shutil.rmtree(os.path.join(tmp, "keep-out"), ignore_errors=True)
                        shutil.copytree(ck, os.path.join(tmp, "keep-ck"))
                        shutil.copytree(out, os.path.join(tmp, "keep-out"))
                    r = restore(sluice, common, q, out, ck)
                    got = committed(out)
                    try:
                        check_shares(r.stderr.decode(), ck_path, q, q != p)
                    except AssertionError as e:
                        print("FAIL %s: %s" % (name, e))
                        failed += 1
                        continue
                    if r.returncode != 0:
                        print("FAIL %s: the restore exited %d: %s" % (
                            name, r.returncode, r.stderr.decode()[-1000:]))
                        failed += 1
                    elif got != want:
                        print("FAIL %s (%d in-flight elements in %s): %s" % (
                            name, n, os.path.basename(ck_path), diff(got, want)))
                        failed += 1
                    else:
                        print("ok %s: %d in-flight elements in %s, %d of %d lines before "
                              "the kill" % (name, n, os.path.basename(ck_path), partial,
                                            sum(want.values())))
        common = ["--input", inp, "--window", "tumbling:1s", "--out-of-orderness", str(BOUND)]
        keep = (os.path.join(tmp, "keep-ck"), os.path.join(tmp, "keep-out"))
        failed += bound_cases(sluice, tmp, common, *keep, 2, tumbling_want)
        failed += bad_input_cases(sluice, tmp, common, *keep, 2)
        failed += lateness_cases(sluice, tmp, seed, a.records, a.rate, rng)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
