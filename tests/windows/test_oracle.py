#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Self-tests of window_agg_oracle.py and gen_events.py.

Every expected output below was worked out by hand from the rules in
/work/shared/SEMANTICS.md ("Time and watermarks", "Windows") and the window-agg contract; the
comments show the derivation. None was produced by running the oracle.

Run: python3 tests/windows/test_oracle.py
"""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_events  # noqa: E402
import window_agg_oracle as oracle  # noqa: E402

MIN = -(1 << 63)
MAX = (1 << 63) - 1


class Base(unittest.TestCase):
    def check(self, lines, window, expected_out, expected_late=(), d=0, l=0, every=0):
        out, late, bad = oracle.run(lines, window, d, l, every)
        self.assertEqual(sorted(out), sorted(expected_out))
        self.assertEqual(late, list(expected_late))
        self.assertEqual(bad, [])


class Tumbling(Base):
    def test_negative_timestamps_use_floor(self):
        # S = 10. floor: -1 -> [-10,0) (truncation would give [0,10));
        # -11 and -15 -> [-20,-10) (SEMANTICS' (ts+S)%S with a truncating % gives -10);
        # -10 -> [-10,0); 0, 9 -> [0,10); 10 -> [10,20).
        lines = ["-1,a,5", "-10,a,1", "-11,a,2", "-15,b,3", "0,a,7", "9,a,1", "10,a,2"]
        self.check(lines, "tumbling:10", [
            "-20,-10,a,1,2,2,2",
            "-10,0,a,2,6,1,5",
            "0,10,a,2,8,1,7",
            "10,20,a,1,2,2,2",
            "-20,-10,b,1,3,3,3",
        ])

    def test_sum_wraps_like_int64(self):
        # MAX + 1 = MIN; MIN + (-1) = MAX.
        lines = ["0,a,9223372036854775807", "1,a,1", "2,b,-9223372036854775808", "3,b,-1"]
        self.check(lines, "tumbling:10", [
            "0,10,a,2,-9223372036854775808,1,9223372036854775807",
            "0,10,b,2,9223372036854775807,-9223372036854775808,-1",
        ])

    def test_duration_units_in_window(self):
        # tumbling:1s = 1000 ms: 1500 -> [1000,2000), -1 -> [-1000,0).
        self.check(["1500,a,1", "-1,a,2"], "tumbling:1s",
                   ["1000,2000,a,1,1,1,1", "-1000,0,a,1,2,2,2"])

    def test_window_ending_at_int64_max(self):
        # INT64_MAX = 7 * 1317624576693539401, so with S = 7 the last window is
        # [MAX-7, MAX); ts = MAX-1 falls in it and it fires at the final watermark.
        self.check(["9223372036854775806,c,5"], "tumbling:7",
                   ["9223372036854775800,9223372036854775807,c,1,5,5,5"])

    def test_window_past_int64_max_is_refused(self):
        # ts = MAX would need [MAX, MAX+7): Flink wraps; the oracle refuses.
        with self.assertRaises(oracle.OracleError):
            oracle.run(["9223372036854775807,a,1"], "tumbling:7")


class Sliding(Base):
    def test_size_not_multiple_of_slide(self):
        # S = 10, L = 4: last_start = ts - floormod(ts, 4); starts while start > ts - 10.
        #   5  -> last 4:  4, 0, -4 (-8 > -5 fails)      -> [4,14) [0,10) [-4,6)
        #  -3  -> last -4: -4, -8, -12 (-16 > -13 fails) -> [-4,6) [-8,2) [-12,-2)
        #        (truncation would give last 0 -> [0,10) [-4,6) [-8,2))
        #  12  -> last 12: 12, 8, 4 (0 > 2 fails)        -> [12,22) [8,18) [4,14)
        #  14  -> last 12: 12, 8 (4 > 4 fails: strict)   -> [12,22) [8,18)
        lines = ["5,x,1", "-3,x,10", "12,x,100", "14,x,1000"]
        self.check(lines, "sliding:10:4", [
            "-12,-2,x,1,10,10,10",
            "-8,2,x,1,10,10,10",
            "-4,6,x,2,11,1,10",
            "0,10,x,1,1,1,1",
            "4,14,x,2,101,1,100",
            "8,18,x,2,1100,100,1000",
            "12,22,x,2,1100,100,1000",
        ])

    def test_element_in_no_window_is_late_only_if_ts_plus_l_le_watermark(self):
        # S = 3 < L = 5: windows [5k, 5k+3); ts with floormod(ts,5) >= 3 belongs to no window,
        # so it is always "skipped"; it is a late record only when ts + L <= watermark.
        # every=1, D=0, lateness 0:
        #   10 -> [10,13) timer 12; wm 9
        #    9 -> no window; 9 <= 9 -> late (a '<' would miss it)
        #    3 -> no window; 3 <= 9 -> late
        #   11 -> [10,13); wm 10
        #   14 -> no window; 14 <= 10 false -> neither output nor late; wm 13 fires 12
        lines = ["10,k,1", "9,k,2", "3,k,4", "11,k,8", "14,k,16"]
        self.check(lines, "sliding:3:5", ["10,13,k,2,9,1,8"], ["9,k,2", "3,k,4"], every=1)

    def test_element_in_no_window_with_lateness(self):
        # Same windows, lateness 2, every=1:
        #   10 -> [10,13); wm 9
        #    7 -> [5,8): cleanup 7+2 = 9 <= 9 -> late window, skipped; 7+2 <= 9 -> late
        #    8 -> no window; 8+2 = 10 <= 9 false -> not late (ts <= wm alone would say late)
        #    6 -> [5,8) late; 6+2 = 8 <= 9 -> late
        lines = ["10,k,1", "7,k,2", "8,k,4", "6,k,8"]
        self.check(lines, "sliding:3:5", ["10,13,k,1,1,1,1"], ["7,k,2", "6,k,8"], l=2, every=1)

    def test_element_late_uses_java_long_addition(self):
        # Flink's isElementLate computes ts + L in Java longs: with L = INT64_MAX and ts = 4,
        # 4 + MAX wraps to MIN + 3 <= 9, so 4 (in no window of sliding:3:5) is a late record.
        lines = ["10,k,1", "4,k,2"]
        self.check(lines, "sliding:3:5", ["10,13,k,1,1,1,1"], ["4,k,2"], l=MAX, every=1)

    def test_element_late_for_some_windows_only_is_not_late(self):
        # sliding:10:5, every=1, D=0:
        #   20 -> [20,30) [15,25); wm 19
        #   17 -> [15,25) (24 > 19: added), [10,20) (19 <= 19: late, skipped).
        #         Not skipped for every window -> not a late record although 17 <= 19.
        lines = ["20,a,1", "17,a,2"]
        self.check(lines, "sliding:10:5", ["15,25,a,2,3,1,2", "20,30,a,1,1,1,1"], every=1)


class Session(Base):
    def test_merge_touching_and_bridging(self):
        # gap 5, final watermark only.
        #   s: 0 -> [0,5); 7 -> [7,12); 20 -> [20,25); 25 -> [25,30) touches [20,25) -> [20,30);
        #      3 -> [3,8) intersects [0,5) and [7,12): three windows -> [0,12)
        #   t: [0,5) and [6,11) do not touch (5 < 6): two windows
        #   u: 5 -> [5,10); 0 -> [0,5) touches it from the left -> [0,10)
        lines = ["0,s,1", "7,s,2", "20,s,4", "25,s,8", "3,s,16",
                 "0,t,1", "6,t,1", "5,u,1", "0,u,2"]
        self.check(lines, "session:5", [
            "0,12,s,3,19,1,16",
            "20,30,s,2,12,4,8",
            "0,5,t,1,1,1,1",
            "6,11,t,1,1,1,1",
            "0,10,u,2,3,1,2",
        ])

    def test_merge_moves_the_timer(self):
        # gap 5, every=1, D=0:
        #   0  -> [0,5) timer 4; wm -1
        #   4  -> [4,9) merges -> [0,9): timer 4 deleted, timer 8; wm 3
        #   6  -> [6,11) merges -> [0,11): timer 8 deleted, timer 10; wm 5
        #         (the old timer 4 of [0,5) must not fire anything)
        #   20 -> [20,25) timer 24; wm 19 fires 10 -> [0,11) count 3
        #   end fires 24
        lines = ["0,s,1", "4,s,2", "6,s,3", "20,s,1"]
        self.check(lines, "session:5", ["0,11,s,3,6,1,3", "20,25,s,1,1,1,1"], every=1)

    def test_late_window_rescued_by_merge_and_late_alone(self):
        # gap 5, every=1, D=0, lateness 0:
        #   10 -> [10,15) timer 14; wm 9
        #   20 -> [20,25) timer 24; wm 19 fires 14: [10,15) emitted and cleared (retired)
        #   15 -> [15,20) alone would be late (19 <= 19) but touches [20,25) -> [15,25), not late
        #   12 -> [12,17) merges with [15,25) -> [12,25) (the retired [10,15) is gone)
        #    3 -> [3,8) alone, late (7 <= 19): retired, skipped; 3 <= 19 -> late record
        #   end fires 24 for [12,25)
        lines = ["10,s,1", "20,s,1", "15,s,5", "12,s,7", "3,s,9"]
        self.check(lines, "session:5", ["10,15,s,1,1,1,1", "12,25,s,3,13,1,7"], ["3,s,9"],
                   every=1)


    def test_fired_session_is_not_merged_again(self):
        # gap 5, every=1, D=0; the watermark is one for all keys:
        #   0,k -> [0,5) timer 4; wm -1
        #   5,j -> [5,10) timer 9; wm 4 fires k's [0,5), which is cleared and retired
        #   5,k -> wm 4: [5,10) would touch [0,5), but that window is gone; not late (9 > 4)
        # With only the final watermark both k records form one session [0,10).
        lines = ["0,k,1", "5,j,1", "5,k,2"]
        self.check(lines, "session:5", ["0,5,k,1,1,1,1", "5,10,j,1,1,1,1", "5,10,k,1,2,2,2"],
                   every=1)
        self.check(lines, "session:5", ["0,10,k,2,3,1,2", "5,10,j,1,1,1,1"])


class Watermarks(Base):
    def test_every_1_judges_against_previous_records(self):
        # tumbling 10, every=1, D=0:
        #   9  -> [0,10) timer 9 (wm MIN); wm 8
        #   10 -> [10,20) timer 19; wm 9 fires [0,10)
        #   9  -> wm 9: [0,10) late (9 <= 9) -> late record
        lines = ["9,a,1", "10,a,2", "9,a,4"]
        self.check(lines, "tumbling:10", ["0,10,a,1,1,1,1", "10,20,a,1,2,2,2"], ["9,a,4"],
                   every=1)

    def test_record_is_processed_before_its_own_watermark(self):
        # session 5, every=1, D=0: 0 -> [0,5) timer 4, wm -1. Then 5 is merged into
        # [0,10) first; its own watermark 4 comes after and fires nothing (timer 9).
        # Applying 5's watermark first would fire and clear [0,5) before the merge.
        self.check(["0,s,1", "5,s,2"], "session:5", ["0,10,s,2,3,1,2"], every=1)

    def test_every_n_counts_valid_records_only(self):
        # every=2, tumbling 10, D=0. One blank (A) or one bad (B) line between the records,
        # which must not count (counting it, or counting physical lines, moves the watermark):
        #   15 (1st valid) -> [10,20) timer 19
        #   5  (2nd valid) -> [0,10) timer 9, processed first; then wm 15-1 = 14 fires [0,10)
        #   3  (3rd valid) -> wm 14: [0,10) late -> late record
        expected_out = ["0,10,a,1,2,2,2", "10,20,a,1,1,1,1"]
        for filler, expected_bad in (("", []), ("x", [(2, "x")])):
            lines = ["15,a,1", filler, "5,a,2", "3,a,4"]
            out, late, bad = oracle.run(lines, "tumbling:10", 0, 0, 2)
            self.assertEqual(sorted(out), expected_out, filler)
            self.assertEqual(late, ["3,a,4"], filler)
            self.assertEqual(bad, expected_bad, filler)

    def test_bound_is_max_minus_d_minus_1(self):
        # tumbling 10, D=5, every=1:
        #   14 -> [10,20); wm 14-5-1 = 8   (M-D would be 9 and make the next record late)
        #   9  -> [0,10): 9 <= 8 false -> added, timer 9
        #   15 -> [10,20); wm 9 fires [0,10) (count 1)
        #   9  -> wm 9: late
        lines = ["14,a,1", "9,a,2", "15,a,4", "9,a,8"]
        self.check(lines, "tumbling:10", ["0,10,a,1,2,2,2", "10,20,a,2,5,1,4"], ["9,a,8"],
                   d=5, every=1)

    def test_watermark_never_goes_back(self):
        # D=0, every=1: 20 -> wm 19; 5 -> candidate 19 again (M stays 20): nothing new.
        # 5's window [0,10) is late at wm 19 -> late record; [20,30) fires at the end.
        self.check(["20,a,1", "5,a,2"], "tumbling:10", ["20,30,a,1,1,1,1"], ["5,a,2"], every=1)

    def test_final_watermark_fires_everything(self):
        # Only the final INT64_MAX watermark (every=0): every window fires once, including one
        # near each end of the int64 range; nothing is late even though 5 comes after a huge ts.
        lines = ["9223372036854775000,a,1", "-9223372036854775800,a,2", "5,b,3", "5,a,4"]
        self.check(lines, "tumbling:10", [
            "9223372036854775000,9223372036854775010,a,1,1,1,1",
            "-9223372036854775800,-9223372036854775790,a,1,2,2,2",
            "0,10,a,1,4,4,4",
            "0,10,b,1,3,3,3",
        ])

    def test_large_bound_holds_back_periodic_watermarks(self):
        # D = 1h, every=1: every candidate is below every window end, so all fire at the end
        # and the out-of-order 1 is not late.
        lines = ["1000,a,1", "5000,a,2", "1,a,4"]
        self.check(lines, "tumbling:1s", ["0,1000,a,1,4,4,4", "1000,2000,a,1,1,1,1",
                                          "5000,6000,a,1,2,2,2"], d="1h", every=1)


class Lateness(Base):
    def test_late_firing_then_cleanup_then_late_record(self):
        # tumbling 10, L=5, every=1, D=0:
        #   3  -> [0,10): timer 9, cleanup 14; wm 2
        #   12 -> [10,20): timer 19, cleanup 24; wm 11 fires 9: 0,10 count 1
        #   5  -> 14 <= 11 false: added, 9 <= 11 -> fires at once: count 2 sum 5
        #   14 -> [10,20); wm 13
        #   6  -> 14 <= 13 false: added, fires: count 3 sum 21
        #   15 -> [10,20); wm 14: cleanup timer 14 clears [0,10) without output
        #   7  -> 14 <= 14: late window (a '<' would re-open it and emit 0,10,a,1,64,...);
        #         7+5 = 12 <= 14 -> late record
        #   end: 19 fires [10,20) = {12, 14, 15}
        lines = ["3,a,1", "12,a,2", "5,a,4", "14,a,8", "6,a,16", "15,a,32", "7,a,64"]
        self.check(lines, "tumbling:10", [
            "0,10,a,1,1,1,1",
            "0,10,a,2,5,1,4",
            "0,10,a,3,21,1,16",
            "10,20,a,3,42,2,32",
        ], ["7,a,64"], l=5, every=1)

    def test_cleanup_time_saturates(self):
        # L = INT64_MAX: end-1+L overflows, cleanup saturates at INT64_MAX, so the window is
        # never late before the end (a wrapped cleanup time would clear it at once).
        #   0 -> [0,10) timer 9; wm -1.  100 -> wm 99 fires 9.  5 -> added, fires again.
        lines = ["0,a,1", "100,a,2", "5,a,4"]
        self.check(lines, "tumbling:10", ["0,10,a,1,1,1,1", "0,10,a,2,5,1,4",
                                          "100,110,a,1,2,2,2"], l=MAX, every=1)

    def test_session_lateness_refires_merged_window(self):
        # gap 5, L=10, every=1, D=0:
        #   0  -> [0,5) timer 4, cleanup 14; wm -1
        #   12 -> [12,17); wm 11 fires 4: 0,5 count 1
        #   2  -> [2,7) merges -> [0,7): 6 <= 11 so no new timer; not late (6+10 > 11);
        #         added and fired at once: 0,7 count 2
        #   end: [0,7) has no event timer (6 <= 11 at merge and at onElement), only its
        #   cleanup timer 16 (no output); [12,17) fires at 16.
        lines = ["0,s,1", "12,s,2", "2,s,4"]
        self.check(lines, "session:5", ["0,5,s,1,1,1,1", "0,7,s,2,5,1,4", "12,17,s,1,2,2,2"],
                   l=10, every=1)


class Parsing(unittest.TestCase):
    def test_durations(self):
        for text, ms in [("0", 0), ("500", 500), ("500ms", 500), ("2s", 2000), ("1m", 60000),
                         ("1h", 3600000), ("007s", 7000), ("9223372036854775807", MAX)]:
            self.assertEqual(oracle.parse_duration(text), ms, text)
        for text in ["", "-1", "+1", "1.5s", "1 s", " 1", "1S", "1d", "ms", "s1", "1sm",
                     "0x10", "9223372036854775808", "2562047788015216h"]:
            with self.assertRaises(ValueError, msg=text):
                oracle.parse_duration(text)

    def test_window_specs(self):
        self.assertEqual(oracle.parse_window("tumbling:2s"), ("tumbling", 2000, 2000))
        self.assertEqual(oracle.parse_window("sliding:1m:10s"), ("sliding", 60000, 10000))
        self.assertEqual(oracle.parse_window("sliding:3:5"), ("sliding", 3, 5))
        self.assertEqual(oracle.parse_window("session:30s"), ("session", 30000, 30000))
        for spec in ["tumbling:0", "session:0", "sliding:10:0", "sliding:0:5", "tumbling",
                     "tumbling:1:2", "sliding:10", "hopping:1", "Tumbling:1", "tumbling:-1",
                     "session:1s:1s", ""]:
            with self.assertRaises(ValueError, msg=spec):
                oracle.parse_window(spec)

    def test_bad_records_blank_lines_and_crlf(self):
        data = b"".join([
            b"1,a,5\r\n",                        # 1 valid (CRLF)
            b"\r\n",                             # 2 blank after the \r strip
            b"\n",                               # 3 blank
            b"2,a\n",                            # 4 bad: 2 fields
            b"3,a,5,6\n",                        # 5 bad: extra comma
            b"x,a,5\n",                          # 6 bad: ts not a number
            b"9223372036854775808,a,1\n",        # 7 bad: ts overflows
            b"4,,1\n",                           # 8 bad: empty key
            b"5," + b"k" * 65 + b",1\n",         # 9 bad: 65-byte key
            b"6," + b"k" * 64 + b",1\n",         # 10 valid: 64-byte key
            b"+5,a,1\n",                         # 11 bad: '+'
            b" 5,a,1\n",                         # 12 bad: leading space
            b"5,a, 1\n",                         # 13 bad: space in value
            b"5,a,1 \n",                         # 14 bad: trailing space
            b"7,a,-9223372036854775808\n",       # 15 valid: INT64_MIN value
            b"8,a,-9223372036854775809\n",       # 16 bad: value underflows
            b"9,a,1\r\r\n",                      # 17 bad: only one \r is stripped
            b"-0,a,2\n",                         # 18 valid: -0 matches -?[0-9]+ (ts 0)
            b"007,a,1\n",                        # 19 valid: leading zeros (ts 7)
            b"-,a,1\n",                          # 20 bad
            b"--1,a,1\n",                        # 21 bad
            b"9, a b ,3\n",                      # 22 valid: key " a b "
            b"10,\xc3\xa9,1\n",                  # 23 valid: UTF-8 key
            b",a,1\n",                           # 24 bad: empty ts
            b"1,a,\n",                           # 25 bad: empty value
            "\u0661,a,1\n".encode(),             # 26 bad: Arabic-Indic digit one
            b"11," + "é".encode() * 32 + b",1\n",         # 27 valid: 64 bytes of UTF-8
            b"11," + "é".encode() * 32 + b"x,1\n",        # 28 bad: 65 bytes
            b"5,a,10",                           # 29 valid, no final newline
        ])
        out, late, bad = oracle.run(oracle.split_lines(data), "tumbling:100")
        # key a: 5, MIN, 2, 1, 10 -> count 5, sum MIN + 18, min MIN, max 10
        self.assertEqual(sorted(out), sorted([
            b"0,100,a,5,-9223372036854775790,-9223372036854775808,10",
            b"0,100," + b"k" * 64 + b",1,1,1,1",
            b"0,100, a b ,1,3,3,3",
            b"0,100,\xc3\xa9,1,1,1,1",
            b"0,100," + "é".encode() * 32 + b",1,1,1,1",
        ]))
        self.assertEqual(late, [])
        self.assertEqual([n for n, _ in bad],
                         [4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 16, 17, 20, 21, 24, 25, 26, 28])
        self.assertEqual(dict(bad)[17], b"9,a,1\r")
        self.assertEqual(dict(bad)[4], b"2,a")

    def test_split_lines(self):
        self.assertEqual(oracle.split_lines(b""), [])
        self.assertEqual(oracle.split_lines(b"\n"), [b""])
        self.assertEqual(oracle.split_lines(b"a\n\nb"), [b"a", b"", b"b"])
        self.assertEqual(oracle.split_lines(b"a\r\nb\r\n"), [b"a\r", b"b\r"])


class Cli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def path(self, name, data=None):
        p = os.path.join(self.dir.name, name)
        if data is not None:
            with open(p, "wb") as f:
                f.write(data)
        return p

    def oracle(self, *args):
        return subprocess.run([sys.executable, os.path.join(HERE, "window_agg_oracle.py"), *args],
                              capture_output=True, timeout=60)

    def test_outputs_and_late_output_of_a_crlf_file(self):
        # The every=1 example above, CRLF: the late line is written without "\r\n".
        inp = self.path("in.txt", b"9,a,1\r\n10,a,2\r\n9,a,4\r\n")
        out, late = self.path("out.txt"), self.path("late.txt")
        p = self.oracle("--input", inp, "--window", "tumbling:10", "--watermark-every", "1",
                        "--output", out, "--late-output", late)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"0,10,a,1,1,1,1\n10,20,a,1,2,2,2\n")
        with open(late, "rb") as f:
            self.assertEqual(f.read(), b"9,a,4\n")

    def test_bad_records_fail_skip_and_file(self):
        inp = self.path("in.txt", b"1,a,1\n\nbad\n2,a,+1\n3,a,1")
        p = self.oracle("--input", inp, "--window", "tumbling:10")  # fail is the default
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith(inp.encode() + b":3: "), p.stderr)
        p = self.oracle("--input", inp, "--window", "tumbling:10", "--bad-records", "skip")
        self.assertEqual((p.returncode, p.stdout), (0, b"0,10,a,2,2,1,1\n"))
        dead = self.path("dead.txt")
        p = self.oracle("--input", inp, "--window", "tumbling:10", "--bad-records", dead)
        self.assertEqual((p.returncode, p.stdout), (0, b"0,10,a,2,2,1,1\n"))
        with open(dead, "rb") as f:
            rows = f.read().splitlines()
        self.assertEqual(len(rows), 2)
        self.assertTrue(rows[0].startswith(inp.encode() + b":3: ") and rows[0].endswith(b": bad"))
        self.assertTrue(rows[1].startswith(inp.encode() + b":4: "))
        self.assertTrue(rows[1].endswith(b": 2,a,+1"))

    def test_bad_options(self):
        inp = self.path("in.txt", b"1,a,1\n")
        for args in (["--window", "tumbling:0"], ["--window", "sliding:5"],
                     ["--window", "session:1", "--allowed-lateness", "-1"],
                     ["--window", "session:1", "--out-of-orderness", "1x"]):
            p = self.oracle("--input", inp, *args)
            self.assertNotEqual(p.returncode, 0, args)


class Generator(unittest.TestCase):
    def gen(self, **kw):
        args = dict(seed=3, records=2000, keys=20, disorder=50, start=0)
        args.update(kw)
        return list(gen_events.generate(**args))

    def test_deterministic(self):
        self.assertEqual(self.gen(), self.gen())
        self.assertNotEqual(self.gen(), self.gen(seed=4))

    def test_valid_records_and_disorder_bound(self):
        lines = self.gen(negative=True, bad_fraction=0.2)
        recs, nbad, nblank = [], 0, 0
        for line in lines:
            raw = line.encode()
            if raw == b"":
                nblank += 1
                continue
            rec, _ = oracle.parse_record(raw)
            if rec is None:
                nbad += 1
            else:
                recs.append(rec)
        self.assertEqual(len(recs), 2000)
        self.assertGreater(nbad, 200)
        self.assertGreater(nblank, 20)
        self.assertTrue(any(ts < 0 for ts, _, _ in recs) and any(ts > 0 for ts, _, _ in recs))
        high = None
        for ts, _, _ in recs:
            if high is not None:
                self.assertLessEqual(high - ts, 50)
            high = ts if high is None else max(high, ts)
        self.assertTrue(any(len(k) == 64 for _, k, _ in recs))
        self.assertTrue(any(v in (MIN, MAX) for _, _, v in recs))

    def test_d_at_least_disorder_means_nothing_late(self):
        lines = self.gen(records=3000)
        for window in ("tumbling:100", "sliding:100:30", "session:20"):
            _, late, _ = oracle.run(lines, window, 50, 0, 1)
            self.assertEqual(late, [], window)
        _, late, _ = oracle.run(lines, "tumbling:100", 0, 0, 1)
        self.assertNotEqual(late, [])  # with D = 0 some records are late

    def test_cli_crlf(self):
        p = subprocess.run([sys.executable, os.path.join(HERE, "gen_events.py"), "--seed", "1",
                            "--records", "50", "--keys", "3", "--disorder", "5", "--start", "0",
                            "--crlf", "--bad-fraction", "0.3"], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stderr, b"")
        self.assertTrue(p.stdout.endswith(b"\r\n"))
        self.assertEqual(p.stdout.count(b"\n"), p.stdout.count(b"\r\n"))


if __name__ == "__main__":
    unittest.main()
