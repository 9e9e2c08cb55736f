#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Reference oracle for `sluice run window-agg`, written independently of the C code.

It models Flink 1.18's WindowOperator with the default EventTimeTrigger, an aggregate of
(count, sum, min, max) per key and window, and a bounded-out-of-orderness watermark generator
that is the only source of watermarks (one input file = one source split, so every key sees
records and watermarks in file order).

As a program (mirrors the contract; --parallelism and --rate are accepted and ignored):
    window_agg_oracle.py --input PATH|- --window tumbling:S|sliding:S:L|session:G
        [--out-of-orderness D] [--allowed-lateness L] [--watermark-every N]
        [--late-output PATH] [--output PATH|-] [--bad-records fail|skip|PATH]
  --watermark-every 0 (the default) means no watermark until the final INT64_MAX one.
  Output lines are sorted bytewise; late lines are in input order.

As a module:
    run(lines, window, out_of_orderness=0, allowed_lateness=0, watermark_every=0)
      -> (output_lines sorted, late_lines in input order, bad [(lineno, raw line)])
    lines: str or bytes lines without the "\\n" (one trailing "\\r" is stripped); results are
    of the same type. Bad records are skipped (and listed). Raises OracleError where Flink's
    Java long arithmetic would wrap in window bounds (timestamps within a window size of the
    int64 limits) or where Flink itself would throw; those inputs are out of scope.
"""
import argparse
import bisect
import heapq
import re
import sys

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
INT_RE = re.compile(rb"-?[0-9]+")  # ASCII digits only; no '+', no spaces
RECORD_RE = re.compile(rb"(-?[0-9]+),([^,]{1,64}),(-?[0-9]+)")  # used with fullmatch()
DURATION_RE = re.compile(r"([0-9]+)(ms|s|m|h)?")
UNIT_MS = {None: 1, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


class OracleError(Exception):
    pass


def wrap64(x):
    """x as a Java long / C int64_t after two's-complement wrap-around."""
    return ((x - INT64_MIN) & 0xFFFFFFFFFFFFFFFF) + INT64_MIN


def parse_duration(text):
    """'500', '500ms', '2s', '1m', '1h' -> milliseconds (>= 0). ValueError otherwise."""
    m = DURATION_RE.fullmatch(text)
    if m is None:
        raise ValueError(f"bad duration '{text}': expected N, Nms, Ns, Nm or Nh")
    ms = int(m.group(1)) * UNIT_MS[m.group(2)]
    if ms > INT64_MAX:
        raise ValueError(f"bad duration '{text}': too large")
    return ms


def parse_window(spec):
    """'tumbling:S' | 'sliding:S:L' | 'session:G' -> (kind, size, slide); sizes must be > 0."""
    parts = spec.split(":")
    arity = {"tumbling": 2, "sliding": 3, "session": 2}
    if parts[0] not in arity or len(parts) != arity[parts[0]]:
        raise ValueError(f"bad window '{spec}': expected tumbling:SIZE, sliding:SIZE:SLIDE "
                         "or session:GAP")
    nums = [parse_duration(p) for p in parts[1:]]
    if min(nums) <= 0:
        raise ValueError(f"bad window '{spec}': sizes, slides and gaps must be > 0")
    return (parts[0], nums[0], nums[1] if len(nums) == 2 else nums[0])


def parse_record(line):
    """line (bytes, terminator stripped, not empty) -> ((ts, key, value), None) | (None, why)."""
    m = RECORD_RE.fullmatch(line)
    if m is not None:
        ts, value = int(m.group(1)), int(m.group(3))
        if INT64_MIN <= ts <= INT64_MAX and INT64_MIN <= value <= INT64_MAX:
            return (ts, m.group(2), value), None
    return None, bad_reason(line)


def bad_reason(line):
    """Why a line that parse_record() refused is bad."""
    fields = line.split(b",")
    if len(fields) != 3:
        return "expected 3 fields ts,key,value"
    for name, text in (("ts", fields[0]), ("value", fields[2])):
        if INT_RE.fullmatch(text) is None:
            return f"{name} is not an integer"
        if not INT64_MIN <= int(text) <= INT64_MAX:
            return f"{name} out of int64 range"
    return "key must be 1-64 bytes"


def split_lines(data):
    """bytes -> physical lines (the last may lack '\\n'), '\\n' not included."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the empty rest after a final '\n' (or an empty file) is not a line
    return lines


class WindowOperator:
    """Keyed WindowOperator + EventTimeTrigger + MergingWindowSet, one instance for all keys."""

    def __init__(self, window, lateness):
        self.kind, self.size, self.slide = window
        self.lateness = lateness
        self.wm = INT64_MIN
        # (key, start, end) -> [count, sum, min, max]; for sessions: exactly the set's windows
        self.state = {}
        self.sessions = {}  # key -> sorted list of (start, end), pairwise non-intersecting
        # time -> {(key, start, end): None}: timers are unique per key, window and time
        self.timers = {}
        self.times = []     # heap of the times in self.timers
        self.out = []
        self.late = []

    # -- windows and timers --
    def assign(self, ts):
        """Windows of a tumbling/sliding element, with floor (not truncating) modulo."""
        if self.kind == "tumbling":
            start = ts - ts % self.size  # Python % is floor modulo: -1 -> [-S, 0)
            wins = [(start, start + self.size)]
        else:
            last = ts - ts % self.slide
            starts = range(last, ts - self.size, -self.slide)  # while start > ts - size
            wins = [(s, s + self.size) for s in starts]
        if wins and (wins[-1][0] < INT64_MIN or wins[0][1] > INT64_MAX):
            raise OracleError(f"window of ts {ts} overflows int64 (Flink would wrap)")
        return wins

    def cleanup_time(self, end):
        return min(end - 1 + self.lateness, INT64_MAX)  # saturates like Flink's cleanupTime()

    def is_window_late(self, end):
        return self.cleanup_time(end) <= self.wm

    def register(self, key, win, t):
        at = self.timers.get(t)
        if at is None:
            self.timers[t] = at = {}
            heapq.heappush(self.times, t)
        at[(key, win[0], win[1])] = None

    def delete(self, key, win, t):
        self.timers.get(t, {}).pop((key, win[0], win[1]), None)

    def emit(self, key, win, st):
        self.out.append(b"%d,%d,%s,%d,%d,%d,%d" % (win[0], win[1], key, st[0], st[1], st[2], st[3]))

    # -- elements --
    def process(self, ts, key, value, raw):
        skipped = True
        if self.kind == "session":
            win = self.add_session_window(key, ts)
            if win is not None:
                skipped = False
                self.add_and_trigger(key, win, value, self.cleanup_time(win[1]))
        else:
            for win in self.assign(ts):
                cleanup = self.cleanup_time(win[1])
                if cleanup <= self.wm:
                    continue  # late window: skip it
                skipped = False
                self.add_and_trigger(key, win, value, cleanup)
        if skipped and wrap64(ts + self.lateness) <= self.wm:  # Java long addition
            self.late.append(raw)

    def add_and_trigger(self, key, win, value, cleanup):
        k = (key, win[0], win[1])
        st = self.state.get(k)
        if st is None:
            self.state[k] = st = [1, value, value, value]
        else:
            st[0] += 1
            st[1] = wrap64(st[1] + value)
            st[2] = min(st[2], value)
            st[3] = max(st[3], value)
        if win[1] - 1 <= self.wm:  # EventTimeTrigger.onElement
            self.emit(key, win, st)
        else:
            self.register(key, win, win[1] - 1)
        if cleanup != INT64_MAX:  # Flink sets no cleanup timer for "end of time"
            self.register(key, win, cleanup)

    def add_session_window(self, key, ts):
        """MergingWindowSet.addWindow + merge callback: the window to add to, or None if late."""
        s, e = ts, ts + self.size
        if e > INT64_MAX:
            raise OracleError(f"session window of ts {ts} overflows int64 (Flink would wrap)")
        wins = self.sessions.setdefault(key, [])
        i = bisect.bisect_right(wins, (s, INT64_MAX + 1))  # after every window starting at <= s
        first, cs, ce = i, s, e
        if i > 0 and wins[i - 1][1] >= s:  # the predecessor intersects (touching counts)
            first, cs, ce = i - 1, wins[i - 1][0], max(e, wins[i - 1][1])
        j = i
        while j < len(wins) and wins[j][0] <= ce:  # sorted merge: cover.end >= next.start
            ce = max(ce, wins[j][1])
            j += 1
        merged = wins[first:j]  # the existing windows in the new window's group
        result = (cs, ce)
        if merged and merged != [result]:  # a real merge: call the merge function
            if wrap64(ce - 1 + self.lateness) <= self.wm:  # Java long addition, as in Flink
                raise OracleError("Flink throws: merging made an event-time window late")
            if ce - 1 > self.wm:  # EventTimeTrigger.onMerge
                self.register(key, result, ce - 1)
            acc = None
            for m in merged:
                self.delete(key, m, m[1] - 1)  # trigger clear()
                c = self.cleanup_time(m[1])
                if c != INT64_MAX:
                    self.delete(key, m, c)  # deleteCleanupTimer()
                st = self.state.pop((key, m[0], m[1]))
                acc = st if acc is None else [acc[0] + st[0], wrap64(acc[1] + st[1]),
                                              min(acc[2], st[2]), max(acc[3], st[3])]
            self.state[(key, cs, ce)] = acc
        wins[first:j] = [result]
        if self.is_window_late(ce):  # after merging: retire a late window, skip the element
            wins.pop(first)
            self.state.pop((key, cs, ce), None)
            return None
        return result

    # -- watermarks --
    def advance(self, wm):
        if wm <= self.wm:
            return
        self.wm = wm
        while self.times and self.times[0] <= wm:  # in timestamp order
            t = heapq.heappop(self.times)
            for key, s, e in self.timers.pop(t):  # same timestamp: any order gives the same output
                st = self.state.get((key, s, e))
                if st is None:
                    continue  # window already cleared / not in the merging set: nothing to do
                if t == e - 1:  # EventTimeTrigger.onEventTime
                    self.emit(key, (s, e), st)
                if t == self.cleanup_time(e):  # clearAllState (after the fire when L = 0)
                    del self.state[(key, s, e)]
                    if self.kind == "session":
                        wins = self.sessions[key]
                        wins.pop(bisect.bisect_left(wins, (s, e)))


def run_bytes(lines, window, out_of_orderness=0, allowed_lateness=0, watermark_every=0):
    """run() on bytes lines; bad entries are (lineno, raw line, reason)."""
    if isinstance(window, str):
        window = parse_window(window)
    d = out_of_orderness if isinstance(out_of_orderness, int) else parse_duration(out_of_orderness)
    lat = allowed_lateness
    if not isinstance(lat, int):
        lat = parse_duration(lat)
    if d < 0 or lat < 0 or watermark_every < 0:
        raise ValueError("out-of-orderness, allowed lateness and watermark-every must be >= 0")
    op = WindowOperator(window, lat)
    bad = []
    max_ts = None
    nvalid = 0
    for lineno, line in enumerate(lines, 1):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line == b"":
            continue  # blank line: not a record, not bad, not counted
        rec, reason = parse_record(line)
        if rec is None:
            bad.append((lineno, line, reason))
            continue
        ts, key, value = rec
        op.process(ts, key, value, line)  # judged against the watermark of the records before it
        max_ts = ts if max_ts is None else max(max_ts, ts)
        nvalid += 1
        if watermark_every and nvalid % watermark_every == 0:
            op.advance(max(max_ts - d - 1, INT64_MIN))  # forwarded only if larger
    op.advance(INT64_MAX)  # end of input fires every pending timer
    return sorted(op.out), op.late, bad


def run(lines, window, out_of_orderness=0, allowed_lateness=0, watermark_every=0):
    """See the module docstring. window: a spec string or parse_window()'s tuple;
    out_of_orderness / allowed_lateness: int milliseconds or duration strings."""
    as_str = len(lines) > 0 and isinstance(lines[0], str)
    enc = (lambda s: s.encode("utf-8", "surrogateescape")) if as_str else (lambda b: b)
    dec = (lambda b: b.decode("utf-8", "surrogateescape")) if as_str else (lambda b: b)
    out, late, bad = run_bytes([enc(x) for x in lines], window, out_of_orderness,
                               allowed_lateness, watermark_every)
    return [dec(x) for x in out], [dec(x) for x in late], [(n, dec(raw)) for n, raw, _ in bad]


def main(argv=None):
    ap = argparse.ArgumentParser(description="reference oracle for sluice run window-agg")
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", default="-")
    ap.add_argument("--window", required=True)
    ap.add_argument("--out-of-orderness", default="0")
    ap.add_argument("--allowed-lateness", default="0")
    ap.add_argument("--watermark-every", type=int, default=0)
    ap.add_argument("--late-output")
    ap.add_argument("--bad-records", default="fail")
    ap.add_argument("--parallelism")  # ignored: results do not depend on it
    ap.add_argument("--rate")         # ignored
    a = ap.parse_args(argv)
    try:
        window = parse_window(a.window)
        d, lat = parse_duration(a.out_of_orderness), parse_duration(a.allowed_lateness)
        if a.watermark_every < 0:
            raise ValueError("--watermark-every must be >= 0")
    except ValueError as e:
        ap.error(str(e))
    if a.input == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(a.input, "rb") as f:
            data = f.read()
    try:
        out, late, bad = run_bytes(split_lines(data), window, d, lat, a.watermark_every)
    except OracleError as e:
        sys.stderr.write(f"window_agg_oracle: {e}\n")
        return 3
    src = a.input.encode("utf-8", "surrogateescape")
    if bad and a.bad_records == "fail":
        n, _, why = bad[0]
        sys.stderr.buffer.write(b"%s:%d: %s\n" % (src, n, why.encode()))
        return 1
    if bad and a.bad_records != "skip":
        with open(a.bad_records, "ab") as f:
            f.writelines(b"%s:%d: %s: %s\n" % (src, n, why.encode(), raw) for n, raw, why in bad)
    outf = sys.stdout.buffer if a.output == "-" else open(a.output, "wb")
    outf.writelines(x + b"\n" for x in out)
    outf.flush()
    if a.late_output:
        with open(a.late_output, "wb") as f:
            f.writelines(x + b"\n" for x in late)
    elif late:
        sys.stderr.write(f"late_records_dropped: {len(late)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
