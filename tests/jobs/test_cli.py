#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration test of the `sluice` command: drives the real binary.

usage: test_cli.py SLUICE_BINARY SAMPLE_TXT

SAMPLE_TXT is jobs/sample.txt from the source tree, the text the binary
embeds as wordcount's default input. Word counts are checked against
wordcount_oracle.py (an independent implementation), never against the
binary's own earlier output. Prints one line per case; exits 0 when all
pass, 1 otherwise.
"""
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wordcount_oracle as oracle  # noqa: E402

SLUICE = None
SAMPLE = None
TMP = None
CASES = []
CHUNK = 64 * 1024


def case(fn):
    CASES.append(fn)
    return fn


class Failure(Exception):
    pass


def check(cond, what, proc=None):
    if not cond:
        if proc is not None:
            what += "\n  exit %r\n  stdout: %r\n  stderr: %r" % (
                proc.returncode, proc.stdout[:2000], proc.stderr[:2000])
        raise Failure(what)


def run(*args, stdin=b"", stdout=None, timeout=300):
    kw = {"stdout": stdout if stdout is not None else subprocess.PIPE}
    p = subprocess.run([SLUICE] + list(args), input=stdin, stderr=subprocess.PIPE,
                       timeout=timeout, **kw)
    if p.stdout is None:
        p.stdout = b""
    return p


def ok(*args, **kw):
    p = run(*args, **kw)
    check(p.returncode == 0, "sluice %s: expected exit 0" % " ".join(args), p)
    return p


def usage_error(args, culprit, see):
    """Exit 2, nothing on stdout, one line on stderr naming @culprit and @see."""
    p = run(*args)
    err = p.stderr.decode("utf-8", "replace")
    desc = "sluice %r" % (args,)
    check(p.returncode == 2, desc + ": expected exit 2", p)
    check(p.stdout == b"", desc + ": expected no stdout", p)
    check(len(err.splitlines()) == 1, desc + ": expected exactly one line on stderr", p)
    check(err.startswith("sluice"), desc + ": message must start with 'sluice'", p)
    check("'%s'" % culprit in err, desc + ": stderr must name %r" % culprit, p)
    check("(see '%s')" % see in err, desc + ": stderr must point to %r" % see, p)
    return err


def runtime_error(args, culprit, stdout=None):
    """Exit 1 with one message on stderr naming @culprit."""
    p = run(*args, stdout=stdout)
    err = p.stderr.decode("utf-8", "replace")
    desc = "sluice %r" % (args,)
    check(p.returncode == 1, desc + ": expected exit 1", p)
    check(len(err.splitlines()) == 1, desc + ": expected exactly one line on stderr", p)
    check(re.match(r"^sluice( [a-z]+)?: ", err), desc + ": message must start with 'sluice'", p)
    check(culprit in err, desc + ": stderr must name %r" % culprit, p)
    return err


# --- help, version, list ------------------------------------------------------------------

@case
def help_variants():
    for args in (["--help"], ["-h"], ["help"]):
        out = ok(*args).stdout.decode()
        check(out.startswith("usage: sluice"), "%r: usage line" % args)
        for cmd in ("run", "plan", "list", "topology", "version", "help"):
            check(re.search(r"^  %s\b" % cmd, out, re.M), "%r: lists command %s" % (args, cmd))


@case
def version_variants():
    for args in (["--version"], ["version"]):
        out = ok(*args).stdout.decode()
        lines = out.splitlines()
        check(lines[0] == "sluice 0.1.0", "%r: first line is 'sluice 0.1.0': %r" % (args, lines))
        check(re.search(r"^build type: \S+", out, re.M), "%r: build type" % args)
        check(re.search(r"^DPDK: +(built in|not built in)$", out, re.M), "%r: DPDK" % args)
        check(re.search(r"^library: +0\.1\.0$", out, re.M), "%r: sl_version()" % args)


@case
def list_jobs():
    out = ok("list").stdout.decode()
    lines = out.splitlines()
    check(len(lines) == 1, "one job today: %r" % lines)
    check(re.match(r"^wordcount +\S", lines[0]), "wordcount with a summary: %r" % lines)


@case
def sub_help():
    out = ok("run", "wordcount", "--help").stdout.decode()
    for opt in ("--input PATH", "--output PATH", "--top N", "--help"):
        check(opt in out, "run wordcount --help lists %s" % opt)
    check(not re.search(r"^ +(-\w, )?--parallelism", out, re.M),
          "no --parallelism option before the runtime exists")
    check(not re.search(r"^ +(-\w, )?--format", out, re.M), "--format belongs to plan only")
    out = ok("run", "wordcount", "-h").stdout.decode()
    check("--top N" in out, "-h works for jobs too")
    out = ok("plan", "wordcount", "--help").stdout.decode()
    check("--format text|json" in out and "--top N" in out, "plan help: job options + format")
    for args in (["run", "--help"], ["plan", "-h"], ["topology", "--help"], ["list", "--help"],
                 ["version", "--help"], ["help", "--help"]):
        out = ok(*args).stdout.decode()
        check(out.startswith("usage: sluice"), "%r prints usage" % args)
    out = ok("topology", "--help").stdout.decode()
    check("--synthetic DESC" in out and "--format text|json" in out, "topology options")


# --- usage errors ---------------------------------------------------------------------------

@case
def unknown_command():
    err = usage_error(["frob"], "frob", "sluice --help")
    check(err == "sluice: unknown command 'frob' (see 'sluice --help')\n", "exact text: " + err)
    usage_error(["--frob"], "--frob", "sluice --help")
    usage_error(["-x"], "-x", "sluice --help")
    usage_error(["Run"], "Run", "sluice --help")
    p = run()
    check(p.returncode == 2 and b"missing command" in p.stderr and b"sluice --help" in p.stderr,
          "no arguments: exit 2", p)


@case
def unknown_job():
    err = usage_error(["run", "foo"], "foo", "sluice list")
    check(err == "sluice: unknown job 'foo' (see 'sluice list')\n", "exact text: " + err)
    usage_error(["plan", "foo"], "foo", "sluice list")
    usage_error(["run", "WordCount"], "WordCount", "sluice list")


@case
def missing_job():
    for verb in ("run", "plan"):
        p = run(verb)
        check(p.returncode == 2, "%s without JOB: exit 2" % verb, p)
        check(b"missing job" in p.stderr and b"sluice list" in p.stderr,
              "%s without JOB: says so and points to the list" % verb, p)
        usage_error([verb, "--top", "3"], "--top", "sluice %s --help" % verb)


@case
def unknown_option():
    see = "sluice run wordcount --help"
    err = usage_error(["run", "wordcount", "--bogus"], "--bogus", see)
    check(err == "sluice run wordcount: unknown option '--bogus' (see '%s')\n" % see,
          "exact text: " + err)
    usage_error(["run", "wordcount", "--bogus=1"], "--bogus", see)
    usage_error(["run", "wordcount", "-q"], "-q", see)
    usage_error(["run", "wordcount", "--Top", "3"], "--Top", see)
    # No lie about parallelism before the runtime exists.
    usage_error(["run", "wordcount", "--parallelism", "4"], "--parallelism", see)
    usage_error(["run", "wordcount", "--parallelism=4"], "--parallelism", see)
    usage_error(["plan", "wordcount", "--parallelism", "4"], "--parallelism",
                "sluice plan wordcount --help")
    # --format is plan's, not run's.
    usage_error(["run", "wordcount", "--format", "json"], "--format", see)
    usage_error(["topology", "--top", "3"], "--top", "sluice topology --help")
    usage_error(["list", "--all"], "--all", "sluice list --help")
    usage_error(["version", "--short"], "--short", "sluice version --help")
    usage_error(["help", "--x"], "--x", "sluice --help")


@case
def missing_value():
    see = "sluice run wordcount --help"
    for args in (["--top"], ["--top", "--input", "x"], ["--input"], ["--output"],
                 ["--top", "--"], ["--input", "--top=3"]):
        err = usage_error(["run", "wordcount"] + args, args[0], see)
        check("option '%s' needs a value" % args[0] in err, "%r: needs a value: %s" % (args, err))
    err = usage_error(["topology", "--synthetic"], "--synthetic", "sluice topology --help")
    check("needs a value" in err, err)
    usage_error(["plan", "wordcount", "--format"], "--format", "sluice plan wordcount --help")


@case
def bad_number():
    see = "sluice run wordcount --help"
    expect = "expected an integer from 1 to 1000000"
    for val in ("abc", "", " 5", "5 ", "5x", "-3", "0", "1000001", "99999999999999999999",
                "-99999999999999999999", "+5", "0x10", "1e3", "3.0", "--5", "\t7", "٣"):
        for args in (["--top", val], ["--top=" + val]):
            if val.startswith("--") and "=" not in args[0]:
                continue  # that reads as a missing value, checked above
            err = usage_error(["run", "wordcount"] + args, val, see)
            check("bad value '%s' for '--top': %s" % (val, expect) in err,
                  "%r: exact text: %s" % (args, err))
    # The boundaries themselves are fine.
    ok("run", "wordcount", "--top", "1")
    ok("run", "wordcount", "--top=1000000")
    ok("run", "wordcount", "--top", "007")


@case
def bad_enum():
    for args, see in ((["plan", "wordcount", "--format", "yaml"], "sluice plan wordcount --help"),
                      (["plan", "wordcount", "--format=JSON"], "sluice plan wordcount --help"),
                      (["topology", "--format", "yaml"], "sluice topology --help"),
                      (["topology", "--format="], "sluice topology --help")):
        val = args[-1].split("=", 1)[1] if "=" in args[-1] else args[-1]
        err = usage_error(args, val, see)
        check("for '--format'" in err and "text" in err and "json" in err,
              "%r names the option and the choices: %s" % (args, err))


@case
def extra_arguments():
    see = "sluice run wordcount --help"
    usage_error(["run", "wordcount", "extra"], "extra", see)
    usage_error(["run", "wordcount", "--top", "3", "extra"], "extra", see)
    usage_error(["run", "wordcount", "-"], "-", see)
    # "--" ends the options: what follows is positional, and wordcount takes none.
    usage_error(["run", "wordcount", "--", "--top"], "--top", see)
    usage_error(["plan", "wordcount", "x"], "x", "sluice plan wordcount --help")
    usage_error(["list", "x"], "x", "sluice list --help")
    usage_error(["version", "x"], "x", "sluice version --help")
    usage_error(["help", "x"], "x", "sluice --help")
    usage_error(["topology", "x"], "x", "sluice topology --help")


@case
def option_spellings():
    a = ok("run", "wordcount", "--top", "3").stdout
    b = ok("run", "wordcount", "--top=3").stdout
    c = ok("run", "wordcount", "--top", "7", "--top=3").stdout  # the last one wins
    d = ok("run", "wordcount", "--top", "3", "--").stdout
    check(a == b == c == d, "--top 3, --top=3, repeated, trailing --: same output")
    check(len(a.splitlines()) == 4, "header + 3 lines: %r" % a)


# --- topology and plan ----------------------------------------------------------------------

def pus_of(doc):
    counts = []
    if "pus_usable" in doc:
        counts.append(doc["pus_usable"])
    if isinstance(doc.get("pus"), list):
        counts.append(len(doc["pus"]))
    check(counts, "topology JSON has 'pus_usable' or a 'pus' list: %r" % list(doc))
    check(len(set(counts)) == 1, "PU counts agree: %r" % counts)
    return counts[0]


@case
def topology():
    out = ok("topology").stdout.decode()
    check(out.strip() != "", "text topology is not empty")
    out2 = ok("topology", "--format", "text").stdout.decode()
    check(out == out2, "--format text is the default")
    doc = json.loads(ok("topology", "--format", "json").stdout)
    check(pus_of(doc) >= 1, "this machine has a usable PU")
    doc = json.loads(ok("topology", "--synthetic", "pack:2 numa:1 core:8 pu:2",
                        "--format=json").stdout)
    check(pus_of(doc) == 32, "2 packages x 8 cores x 2 PUs = 32 PUs")
    out = ok("topology", "--synthetic=pack:2 numa:1 core:8 pu:2").stdout.decode()
    check("32" in out, "text shows 32 PUs somewhere")


@case
def topology_bad_synthetic():
    for desc in ("bogus:3", "pack:two", "pack:2 numa:1 core:8 pu:2 frob:1"):
        err = usage_error(["topology", "--synthetic", desc], desc, "sluice topology --help")
        check("synthetic" in err, "says what was wrong: " + err)


@case
def plan_wordcount():
    out = ok("plan", "wordcount").stdout.decode()
    check("not built" in out, "plan says the runtime is not built: " + out)
    check("single-threaded" in out and "calling thread" in out, "plan says how it runs")
    check(re.search(r"read .*tokenize.*count.*top-N", out), "plan lists the stages")
    m = re.search(r"(\d+) usable PUs?", out)
    check(m and int(m.group(1)) >= 1, "plan shows the usable PUs: " + out)
    doc = json.loads(ok("plan", "wordcount", "--format", "json").stdout)
    check(doc["job"] == "wordcount" and doc["runtime"] == "not built", "json: %r" % doc)
    check(doc["threads"] == 1 and doc["top"] == 10 and doc["input"] is None, "json: %r" % doc)
    check(doc["stages"] == ["read", "tokenize", "count", "top-n"], "json stages: %r" % doc)
    check(doc["machine"]["usable_pus"] == int(m.group(1)), "json PUs match text: %r" % doc)
    tricky = 'a "quoted"\\path\twith\x01ctl and caf\u00e9'
    doc = json.loads(ok("plan", "wordcount", "--format=json", "--top", "7", "--input", tricky,
                        "--output", "-").stdout)
    check(doc["top"] == 7 and doc["input"] == tricky and doc["output"] == "-",
          "json reflects the options, strings escaped: %r" % doc)
    p = ok("plan", "wordcount", "--input", "/nonexistent/x")
    check(b"/nonexistent/x" in p.stdout, "plan does not open the input, only names it")


# --- wordcount against the oracle ------------------------------------------------------------

def parse_report(text, what):
    lines = text.splitlines()
    check(lines, what + ": no output")
    m = re.match(r"^wordcount: (\d+) words, (\d+) distinct, in .+$", lines[0].decode())
    check(m, what + ": header line: %r" % lines[0])
    return int(m.group(1)), int(m.group(2)), lines[1:]


def compare(data, args, what, stdin=b"", tops=(10,)):
    """Run wordcount with @args (+ --output FILE), compare everything with the oracle."""
    counts = oracle.count(data)
    total, distinct = oracle.totals(counts)
    csv = os.path.join(TMP, "out.csv")
    for n in tops:
        extra = [] if n == 10 else ["--top", str(n)]
        if os.path.exists(csv):
            os.unlink(csv)
        p = ok("run", "wordcount", *args, *extra, "--output", csv, stdin=stdin)
        t, d, top = parse_report(p.stdout, what)
        check((t, d) == (total, distinct), "%s: totals %r, oracle %r" % (what, (t, d),
                                                                          (total, distinct)))
        check(top == oracle.top_lines(counts, n), "%s: top %d differs from the oracle" % (what, n))
        with open(csv, "rb") as f:
            got = f.read().splitlines()
        check(got == oracle.csv_lines(counts), "%s: --output differs from the oracle" % what)
    return counts


@case
def wordcount_embedded_default():
    with open(SAMPLE, "rb") as f:
        data = f.read()
    counts = compare(data, [], "embedded sample", tops=(10, 1, 3, 25, 1000000))
    check(len(counts) > 100, "the sample has a real vocabulary")
    # The binary's default input is the sample; reading the file itself gives the same.
    a = ok("run", "wordcount").stdout
    b = ok("run", "wordcount", "--input", SAMPLE).stdout
    check(a.splitlines()[1:] == b.splitlines()[1:], "embedded == sample.txt from the tree")


def generated_input():
    """Mixed case, digits, punctuation, UTF-8, NUL, CRLF, >1 MiB words, words on chunk edges."""
    rnd = random.Random(20240611)
    vocab = [b"The", b"the", b"THE", b"tHe", b"river", b"River", b"42", b"007", b"a1b2",
             b"B52", b"x", b"Zeta9", b"mill", b"MILL", b"gate", b"2024", b"e", b"E",
             "caf\u00e9".encode(), "na\u00efve".encode(), "\u65e5\u672c\u8a9e".encode(),
             "Stra\u00dfe".encode(), b"don't", b"e-mail", b"R2-D2", b"under_score"]
    seps = [b" ", b"\n", b"\r\n", b"\t", b", ", b". ", b"!?", b"\0", b"\0\0", b"\xff",
            b"\x80", "\u2014".encode(), b";", b'"', b"(", b")", b"-", b"_", b"\r", b"\x7f",
            "\u00e9".encode(), b"@#$%", b"\x01"]
    parts = []
    size = 0
    while size < 5 * CHUNK + 12345:
        w = rnd.choice(vocab) + rnd.choice(seps)
        parts.append(w)
        size += len(w)
    data = bytearray(b"".join(parts))
    # Words of exactly 7 bytes across every 64 KiB boundary, at every offset.
    for k in range(1, len(data) // CHUNK + 1):
        b = k * CHUNK
        off = k % 8  # word occupies [b - off, b - off + 7)
        start = b - off
        data[start - 1:start + 8] = b" StrAdd" + str(k % 10).encode() + b" "
    # A word ending exactly at a boundary and one starting exactly at the next.
    data[2 * CHUNK - 6:2 * CHUNK + 1] = b" edge5 "
    data[3 * CHUNK - 1:3 * CHUNK + 7] = b" Startx "
    # Two words longer than 1 MiB (same letters, different case: one word, count 2),
    # both spanning many chunks, and a third that differs only in its last byte.
    big = bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(1100000))
    data += b"\r\n" + big.upper() + b"\0" + big + b"!" + big[:-1] + b"Z" + b" "
    # Ties: several words with the same count, to check the order among equals.
    for w in (b"tieb", b"tiea", b"tiec"):
        data += (w + b" ") * 9
    data += b"endword"  # no separator at the very end
    return bytes(data)


@case
def wordcount_generated():
    data = generated_input()
    path = os.path.join(TMP, "mixed.bin")
    with open(path, "wb") as f:
        f.write(data)
    counts = compare(data, ["--input", path], "generated", tops=(10, 1, 5, 1000000))
    check(max(len(w) for w in counts) > 1 << 20, "a > 1 MiB word was counted")
    check(counts[b"endword"] == 1, "the final word without a separator counts")


@case
def wordcount_many_distinct():
    """Enough distinct words to grow the hash table and the key arena many times."""
    rnd = random.Random(7)
    words = [b"W%dx%s" % (i, b"q" * (i % 13)) for i in range(150000)]
    text = b" ".join(rnd.choice(words) if i % 3 else words[i // 3 % len(words)]
                     for i in range(400000))
    path = os.path.join(TMP, "many.txt")
    with open(path, "wb") as f:
        f.write(text)
    counts = compare(text, ["--input", path], "many distinct", tops=(10, 1000))
    check(len(counts) > 100000, "many distinct words: %d" % len(counts))


@case
def wordcount_empty():
    path = os.path.join(TMP, "empty.txt")
    open(path, "wb").close()
    compare(b"", ["--input", path], "empty file")
    for only_seps in (b"\0\0\r\n", "\u2014 \u00e9\u00e8 !!\n".encode()):
        with open(path, "wb") as f:
            f.write(only_seps)
        compare(only_seps, ["--input", path], "separators only %r" % only_seps)


@case
def wordcount_stdin():
    data = generated_input()[:3 * CHUNK + 777]
    compare(data, ["--input", "-"], "stdin", stdin=data, tops=(10, 1000000))
    compare(b"", ["--input", "-"], "empty stdin")


@case
def wordcount_output_stdout():
    data = b"Bb aa, AA; bb\0cc bb\r\n"
    counts = oracle.count(data)
    p = ok("run", "wordcount", "--input", "-", "--output", "-", "--top", "2", stdin=data)
    check(p.stdout.splitlines() == oracle.csv_lines(counts), "stdout is exactly the csv", p)
    t, d, top = parse_report(p.stderr, "--output -")
    check((t, d) == oracle.totals(counts) and top == oracle.top_lines(counts, 2),
          "summary goes to stderr", p)


# --- run-time errors ------------------------------------------------------------------------

@case
def wordcount_errors():
    missing = os.path.join(TMP, "no-such-file.txt")
    err = runtime_error(["run", "wordcount", "--input", missing], missing)
    check(err == "sluice: wordcount: cannot open '%s': No such file or directory\n" % missing,
          "exact text: " + err)
    err = runtime_error(["run", "wordcount", "--input", TMP], TMP)
    check("cannot read" in err, "a directory cannot be read: " + err)
    err = runtime_error(["run", "wordcount", "--output", "/dev/full"], "/dev/full")
    check("No space left on device" in err, err)
    bad = os.path.join(TMP, "no-such-dir", "out.csv")
    err = runtime_error(["run", "wordcount", "--output", bad], bad)
    check("cannot open" in err and "No such file or directory" in err, err)
    check(not os.path.exists(bad), "nothing created")
    with open("/dev/full", "wb") as full:
        err = runtime_error(["run", "wordcount"], "standard output", stdout=full)
        err = runtime_error(["run", "wordcount", "--output", "-"], "standard output",
                            stdout=full)
        runtime_error(["list"], "standard output", stdout=full)
        runtime_error(["topology"], "standard output", stdout=full)


def main(argv):
    global SLUICE, SAMPLE, TMP
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    SLUICE, SAMPLE = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    failed = 0
    with tempfile.TemporaryDirectory(prefix="sluice-cli-") as tmp:
        TMP = tmp
        for fn in CASES:
            try:
                fn()
                print("PASS %s" % fn.__name__, flush=True)
            except Exception as e:  # noqa: BLE001 - report every case
                failed += 1
                print("FAIL %s: %s" % (fn.__name__, e), flush=True)
                if not isinstance(e, Failure):
                    traceback.print_exc(file=sys.stdout)
    print("%d/%d cases passed" % (len(CASES) - failed, len(CASES)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
