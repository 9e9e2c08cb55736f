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
import pty
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import wordcount_oracle as oracle  # noqa: E402
from harness import case, check, run_cases  # noqa: E402

SLUICE = None
SAMPLE = None
TMP = None
CHUNK = 64 * 1024


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
        for cmd in ("run", "plan", "list", "savepoint", "topology", "version", "help"):
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
    names = [ln.split()[0] for ln in lines]
    check(names == ["wordcount", "window-agg"], "the built-in jobs: %r" % lines)
    check(all(re.match(r"^\S+ +\S", ln) for ln in lines), "each with a summary: %r" % lines)


@case
def sub_help():
    out = ok("run", "wordcount", "--help").stdout.decode()
    for opt in ("--input PATH", "--output PATH", "--top N", "--help"):
        check(opt in out, "run wordcount --help lists %s" % opt)
    for opt in ("--parallelism N", "--workers N", "--batch-size N", "--idle busy|sleep",
                "--placement spread|pack", "--bad-records fail|skip|PATH", "--rate R",
                "--max-record-size BYTES"):
        check(re.search(r"^ +%s " % re.escape(opt), out, re.M), "run wordcount --help lists %s" % opt)
    check(not re.search(r"^ +(-\w, )?--format", out, re.M), "--format belongs to plan only")
    check(not re.search(r"^ +(-\w, )?--synthetic", out, re.M), "--synthetic belongs to plan only")
    out = ok("run", "wordcount", "-h").stdout.decode()
    check("--top N" in out, "-h works for jobs too")
    out = ok("plan", "wordcount", "--help").stdout.decode()
    check("--format text|json|dot" in out and "--top N" in out and "--parallelism N" in out
          and "--synthetic DESC" in out, "plan help: job options + runtime + format + synthetic")
    for args in (["run", "--help"], ["plan", "-h"], ["topology", "--help"], ["list", "--help"],
                 ["version", "--help"], ["help", "--help"], ["savepoint", "--help"]):
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
    usage_error(["run", "wordcount", "--Parallelism", "4"], "--Parallelism", see)
    # --format and --synthetic are plan's, not run's.
    usage_error(["run", "wordcount", "--format", "json"], "--format", see)
    usage_error(["run", "wordcount", "--synthetic", "pack:2"], "--synthetic", see)
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
def bad_runtime_values():
    """Runtime options go through sl_job_set(): its sentence, as a usage error (exit 2)."""
    for verb in ("run", "plan"):
        see = "sluice %s wordcount --help" % verb
        for opt, val, expect in (
                ("parallelism", "0", "expected an integer from 1 to 1024"),
                ("parallelism", "1025", "expected an integer from 1 to 1024"),
                ("parallelism", "abc", "expected an integer from 1 to 1024"),
                ("parallelism", " 4", "expected an integer from 1 to 1024"),
                ("workers", "0", "expected an integer from 1 to"),
                ("batch-size", "0", "expected an integer from 1 to 65536"),
                ("batch-size", "65537", "expected an integer from 1 to 65536"),
                ("max-record-size", "15", "expected an integer from 16 to 1073741824"),
                ("max-record-size", "1073741825", "expected an integer from 16 to 1073741824"),
                ("idle", "spin", "expected busy or sleep"),
                ("checkpoint-snapshot", "lazy", "expected async or sync")):
            err = usage_error([verb, "wordcount", "--" + opt, val], val, see)
            check("option '%s'" % opt in err and expect in err,
                  "%s --%s %r: names the option and the range: %s" % (verb, opt, val, err))
        err = usage_error([verb, "wordcount", "--placement", "far"], "far", see)
        check("'--placement'" in err and "spread" in err and "pack" in err, err)
    see = "sluice run wordcount --help"
    for val in ("abc", "-1", "inf", "nan", "1e999", "", " 5", "5/s"):
        err = usage_error(["run", "wordcount", "--rate", val], val, see)
        check("'--rate'" in err, err)
    for url in ("socket://host", "socket://:80", "socket://h:0", "socket://h:65536",
                "socket://h:http"):
        err = usage_error(["run", "wordcount", "--input", url], "--input", see)
        check(url in err, "names the URL: " + err)
    usage_error(["run", "wordcount", "--input", "socket://127.0.0.1:9", "--rate", "5"], "--rate",
                see)
    usage_error(["run", "wordcount", "--bad-records="], "--bad-records", see)
    # The limits themselves are fine.
    ok("run", "wordcount", "--parallelism", "1", "--batch-size", "65536", "--idle", "busy",
       "--max-record-size", "1073741824", "--placement", "pack", "--rate", "0")


@case
def restart_options():
    """The restart-* options on every job: bad values are usage errors naming the option."""
    for job, extra in (("wordcount", []),
                       ("window-agg", ["--input", os.path.join(TMP, "none.csv"),
                                       "--window", "tumbling:1s"])):
        see = "sluice run %s --help" % job
        for opt, val, expect in (
                ("restart-strategy", "bogus",
                 "expected none, fixed-delay, failure-rate or exponential-delay"),
                ("restart-attempts", "-1", "expected an integer from 0 to 2147483647"),
                ("restart-attempts", "x", "expected an integer from 0 to 2147483647"),
                ("restart-delay", "5x", "expected a duration"),
                ("restart-max-failures-per-interval", "0", "expected an integer from 1 to"),
                ("restart-failure-rate-interval", "0", "expected a duration"),
                ("restart-initial-backoff", "1y", "expected a duration"),
                ("restart-max-backoff", "-1", "expected a duration"),
                ("restart-backoff-multiplier", "0.9", "expected a number from 1 to 1000"),
                ("restart-reset-backoff-threshold", "0s", "expected a duration"),
                ("restart-jitter-factor", "2", "expected a number from 0 to 1"),
                ("restart-attempts-before-reset-backoff", "0",
                 "expected an integer from 1 to 2147483647")):
            err = usage_error(["run", job] + extra + ["--" + opt, val], val, see)
            check("option '%s'" % opt in err and expect in err,
                  "%s --%s %r: names the option and the range: %s" % (job, opt, val, err))
    p = run("run", "wordcount", "--help")
    text = p.stdout.decode()
    for opt in ("--restart-strategy", "--restart-attempts", "--restart-delay",
                "--restart-max-failures-per-interval", "--restart-failure-rate-interval",
                "--restart-initial-backoff", "--restart-max-backoff",
                "--restart-backoff-multiplier", "--restart-reset-backoff-threshold",
                "--restart-jitter-factor", "--restart-attempts-before-reset-backoff"):
        check(opt in text, "run wordcount --help lists " + opt)
    # Valid values run (no checkpoints and nothing failing: no restart).
    ok("run", "wordcount", "--restart-strategy", "fixed-delay", "--restart-attempts", "0",
       "--restart-delay", "10ms")


def window_input():
    path = os.path.join(TMP, "restart-events.csv")
    with open(path, "w") as f:
        for i in range(2000):
            f.write("%d,k%d,%d\n" % (i * 10, i % 7, i))
    return path


@case
def restart_gives_up():
    """A sink failing every time (/dev/full): restarted in-process, then the strategy gives up."""
    if not os.path.exists("/dev/full"):
        print("skip: no /dev/full")
        return
    inp = window_input()
    for extra, n, strategy in (
            (["--restart-strategy", "fixed-delay", "--restart-attempts", "2",
              "--restart-delay", "10ms"], 2, "fixed-delay"),
            (["--restart-strategy", "failure-rate", "--restart-max-failures-per-interval", "3",
              "--restart-delay", "1ms"], 3, "failure-rate"),
            (["--restart-initial-backoff", "1ms", "--restart-attempts-before-reset-backoff",
              "4"], 4, "exponential-delay")):
        ck = os.path.join(TMP, "restart-ck")
        p = run("run", "window-agg", "--input", inp, "--window", "tumbling:1s", "--output",
                "/dev/full", "--checkpoint-dir", ck, *extra)
        err = p.stderr.decode()
        check(p.returncode == 1, "%s: exit 1" % strategy, p)
        check(err.count("restarting job 'window-agg'") == n and
              "(attempt %d, %s)" % (n, strategy) in err,
              "%s: %d restart warnings: %s" % (strategy, n, err))
        check("No space left on device (restart strategy %s gave up after %d restarts)"
              % (strategy, n) in err, "%s: gave up, with the cause: %s" % (strategy, err))
        check("restarted the job %d times" % n in err, err)
    # none (the default without --checkpoint-dir): fails at once.
    p = run("run", "window-agg", "--input", inp, "--window", "tumbling:1s", "--output",
            "/dev/full")
    err = p.stderr.decode()
    check(p.returncode == 1 and "restart" not in err and "No space left" in err, err)


@case
def restart_sigterm_during_backoff():
    """SIGTERM while the job waits to restart ends it with exit 0."""
    if not os.path.exists("/dev/full"):
        print("skip: no /dev/full")
        return
    inp = window_input()
    ck = os.path.join(TMP, "restart-ck-term")
    proc = subprocess.Popen([SLUICE, "run", "window-agg", "--input", inp, "--window",
                             "tumbling:1s", "--output", "/dev/full", "--checkpoint-dir", ck,
                             "--restart-initial-backoff", "1h", "--restart-max-backoff", "2h"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    line = b""
    while b"restarting job" not in line:  # progress, not time: the first failure was seen
        line = proc.stderr.readline()
        if not line:
            break
    check(b"restarting job 'window-agg' in" in line, "a restart warning: %r" % line)
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=120)[1].decode()
    check(proc.returncode == 0, "exit 0 after SIGTERM in the backoff: %d %s" % (
        proc.returncode, rest))


@case
def bad_enum():
    for args, see in ((["plan", "wordcount", "--format", "yaml"], "sluice plan wordcount --help"),
                      (["plan", "wordcount", "--format", "svg"], "sluice plan wordcount --help"),
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


def synthetic_pus(packages, cores, pus):
    """The PUs of hwloc's "pack:P numa:1 core:C pu:T": OS indexes in order, one node per package.

    Returns [(pu, core, node)] in topology order.
    """
    out = []
    for p in range(packages):
        for c in range(cores):
            for t in range(pus):
                out.append((((p * cores) + c) * pus + t, p * cores + c, p))
    return out


def expected_placement(cpus, n, policy):
    """sl_place_workers()'s documented rule, written independently: every core's first
    hardware thread before any second one; within a rank, spread takes the NUMA nodes
    round-robin, pack fills node 0 first. Returns [(pu, node)] for n workers."""
    nodes = sorted({node for _, _, node in cpus})
    rank, seen = {}, {}
    for pu, core, _ in cpus:
        rank[pu] = seen.get(core, 0)
        seen[core] = rank[pu] + 1
    picked = []
    for r in sorted(set(rank.values())):
        per_node = [[c for c in cpus if c[2] == node and rank[c[0]] == r] for node in nodes]
        if policy == "pack":
            for lst in per_node:
                picked += lst
        else:
            for i in range(max(len(lst) for lst in per_node)):
                picked += [lst[i] for lst in per_node if i < len(lst)]
    return [(pu, node) for pu, _, node in picked[:n]]


@case
def plan_wordcount():
    out = ok("plan", "wordcount").stdout.decode()
    check(re.match(r"^job wordcount: ", out), "text plan starts with the job: " + out)
    for op in ("lines[source]", "tokenize[flat_map]", "count[reduce]", "collect[sink]"):
        check(op in out, "text plan shows %s: %s" % (op, out))
    # Parallelism 1 on both sides: the key_by has one target and is fused, no exchange.
    check("hash" not in out and "  -> task" not in out, "key_by fused at parallelism 1: " + out)
    doc = json.loads(ok("plan", "wordcount", "--format", "json").stdout)
    check(doc["job"] == "wordcount", "json: %r" % doc)
    ops = [o["name"] for t in doc["tasks"] for o in t["operators"]]
    check(ops == ["lines", "tokenize", "count", "collect"], "json operators: %r" % ops)
    check(all(t["parallelism"] == 1 for t in doc["tasks"]), "default parallelism 1: %r" % doc)
    check(len(doc["tasks"]) == 1 and doc["tasks"][0]["outputs"] == [],
          "one fused task at parallelism 1: %r" % doc)
    out = ok("plan", "wordcount", "--parallelism", "3").stdout.decode()
    check("hash" in out, "key_by makes a hash exchange at parallelism 3: " + out)
    doc = json.loads(ok("plan", "wordcount", "--format=json", "--parallelism", "3",
                        "--batch-size", "7").stdout)
    check(doc["batch_size"] == 7, "batch size in the plan: %r" % doc)
    check([t["parallelism"] for t in doc["tasks"]] == [3, 3], "parallelism 3: %r" % doc)
    check(doc["tasks"][0]["outputs"][0]["partitioning"] == "hash", "hash edge: %r" % doc)
    check(all(len(t["subtasks"]) == 3 for t in doc["tasks"]), "3 subtasks each: %r" % doc)
    # Streams cannot be split: the source alone runs at parallelism 1.
    for inp in ("-", "socket://127.0.0.1:9"):
        doc = json.loads(ok("plan", "wordcount", "--format=json", "--parallelism", "2",
                            "--input", inp).stdout)
        par = {o["name"]: t["parallelism"] for t in doc["tasks"] for o in t["operators"]}
        check(par == {"lines" if inp == "-" else "socket": 1, "tokenize": 2, "count": 2,
                      "collect": 2}, "%s: source at parallelism 1: %r" % (inp, par))
    out = ok("plan", "wordcount", "--format", "dot").stdout.decode()
    check(out.startswith("digraph"), "dot output starts with digraph: " + out)
    check(out.rstrip().endswith("}"), "dot output is closed: " + out)
    # A plan opens and creates nothing.
    outfile = os.path.join(TMP, "plan-out.csv")
    ok("plan", "wordcount", "--input", "/nonexistent/x", "--output", outfile,
       "--bad-records", os.path.join(TMP, "plan-bad.txt"))
    check(not os.path.exists(outfile), "plan does not create the output")
    check(not os.path.exists(os.path.join(TMP, "plan-bad.txt")), "nor the dead-letter file")


@case
def plan_synthetic_placement():
    desc = "pack:2 numa:1 core:8 pu:2"
    cpus = synthetic_pus(2, 8, 2)
    for policy in ("spread", "pack"):
        doc = json.loads(ok("plan", "wordcount", "--format", "json", "--parallelism", "4",
                            "--workers", "4", "--synthetic", desc, "--placement", policy).stdout)
        got = [(w["pu"], w["node"]) for w in doc["workers"]]
        want = expected_placement(cpus, 4, policy)
        check(got == want, "%s: workers %r, expected %r" % (policy, got, want))
        nodes = {node for _, node in got}
        check(nodes == ({0, 1} if policy == "spread" else {0}), "%s: nodes %r" % (policy, nodes))
        for t in doc["tasks"]:
            for st in t["subtasks"]:
                w = doc["workers"][st["worker"]]
                check((st["pu"], st["node"]) == (w["pu"], w["node"]),
                      "subtask on its worker's PU: %r" % st)
    # The default worker count: one per subtask (2 tasks x 4), all placed.
    doc = json.loads(ok("plan", "wordcount", "--format", "json", "--parallelism", "4",
                        "--synthetic", desc).stdout)
    got = [(w["pu"], w["node"]) for w in doc["workers"]]
    check(got == expected_placement(cpus, 8, "spread"), "8 workers, spread: %r" % got)
    err = usage_error(["plan", "wordcount", "--synthetic", "bogus:3"], "bogus:3",
                      "sluice plan wordcount --help")
    check("synthetic" in err, err)
    p = run("plan", "wordcount", "--synthetic", desc, "--workers", "33")
    check(p.returncode == 1 and b"33 workers" in p.stderr, "more workers than PUs: exit 1", p)


# --- wordcount against the oracle ------------------------------------------------------------

def parse_report(text, what):
    lines = text.splitlines()
    check(lines, what + ": no output")
    m = re.match(r"^wordcount: (\d+) words, (\d+) distinct, in .+$", lines[0].decode())
    check(m, what + ": header line: %r" % lines[0])
    return int(m.group(1)), int(m.group(2)), lines[1:]


def check_report(p, counts, n, what, stream="stdout"):
    """The header and the top @n of @p's @stream against the oracle's @counts."""
    t, d, top = parse_report(getattr(p, stream), what)
    total, distinct = oracle.totals(counts)
    check((t, d) == (total, distinct), "%s: totals %r, oracle %r" % (what, (t, d),
                                                                      (total, distinct)), p)
    check(top == oracle.top_lines(counts, n), "%s: top %d differs from the oracle" % (what, n), p)


def check_csv(lines, counts, what):
    """--output lines (any order: the reduce's subtasks write concurrently) against the oracle."""
    check(sorted(lines) == sorted(oracle.csv_lines(counts)),
          "%s: --output differs from the oracle (%d lines, oracle %d)" % (
              what, len(lines), len(counts)))


def compare(data, args, what, stdin=b"", tops=(10,)):
    """Run wordcount with @args (+ --output FILE), compare everything with the oracle."""
    counts = oracle.count(data)
    csv = os.path.join(TMP, "out.csv")
    for n in tops:
        extra = [] if n == 10 else ["--top", str(n)]
        if os.path.exists(csv):
            os.unlink(csv)
        p = ok("run", "wordcount", *args, *extra, "--output", csv, stdin=stdin)
        check_report(p, counts, n, what)
        with open(csv, "rb") as f:
            check_csv(f.read().splitlines(), counts, what)
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
    # The line holding the > 1 MiB words is longer than the default max record size
    # (1 MiB): a bad record, which fails the job by default, naming FILE:LINE.
    start = data.rindex(b"\n") + 1  # the big words and the ties end the input, on one line
    big_line = data.count(b"\n", 0, start) + 1
    check(len(data) - start > 1 << 20, "the generator made a > 1 MiB line")
    err = runtime_error(["run", "wordcount", "--input", path], path)
    check("%s:%d: record longer than 1048576 bytes" % (path, big_line) in err,
          "fails at line %d: %s" % (big_line, err))
    err = runtime_error(["run", "wordcount", "--input", path, "--parallelism", "3"], path)
    check("%s:%d: record longer than 1048576 bytes" % (path, big_line) in err,
          "p=3 fails at the true line number %d: %s" % (big_line, err))
    # With a larger limit, every word counts, at any parallelism.
    big = ["--max-record-size", str(8 << 20)]
    counts = compare(data, ["--input", path] + big, "generated", tops=(10, 1, 5, 1000000))
    check(max(len(w) for w in counts) > 1 << 20, "a > 1 MiB word was counted")
    check(counts[b"endword"] == 1, "the final word without a separator counts")
    compare(data, ["--input", path, "--parallelism", "4", "--batch-size", "7"] + big,
            "generated p=4 batch 7")


@case
def wordcount_many_distinct():
    """Enough distinct words to grow the hash table and the key arena many times."""
    rnd = random.Random(7)
    words = [b"W%dx%s" % (i, b"q" * (i % 13)) for i in range(150000)]
    # A newline every 16 words: one 3.6 MB line would be a bad record (max record size).
    text = b"".join((rnd.choice(words) if i % 3 else words[i // 3 % len(words)]) +
                    (b"\n" if i % 16 == 15 else b" ") for i in range(400000))
    path = os.path.join(TMP, "many.txt")
    with open(path, "wb") as f:
        f.write(text)
    counts = compare(text, ["--input", path], "many distinct", tops=(10, 1000))
    check(len(counts) > 100000, "many distinct words: %d" % len(counts))
    compare(text, ["--input", path, "--parallelism", "4"], "many distinct p=4")


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
    for par in ("1", "3"):
        p = ok("run", "wordcount", "--input", "-", "--output", "-", "--top", "2",
               "--parallelism", par, stdin=data)
        check_csv(p.stdout.splitlines(), counts, "--output - p=" + par)
        check_report(p, counts, 2, "summary goes to stderr", stream="stderr")


def mixed_text(seed, nlines):
    """Lines of mixed-case words, digits, punctuation and UTF-8, with blank and CRLF lines."""
    rnd = random.Random(seed)
    vocab = [b"Sluice", b"gate", b"GATE", b"river", b"mill", b"42", b"x1", b"a", b"B",
             b"water", b"Water", b"flow", b"stream", b"caf\xc3\xa9", b"na\xc3\xafve", b"e-mail"]
    seps = [b" ", b"  ", b", ", b"\t", b"!", b"\x00", b"\xe2\x80\x94", b"\r"]
    lines = []
    for i in range(nlines):
        words = [rnd.choice(vocab) + rnd.choice(seps) for _ in range(rnd.randrange(0, 12))]
        words += [b"w%d" % rnd.randrange(nlines)]  # many distinct words
        end = b"\r\n" if i % 7 == 0 else b"\n"
        lines.append(b"".join(words) + end + (b"\n" if i % 11 == 0 else b""))
    return b"".join(lines)


@case
def wordcount_parallelism_determinism():
    """Every word's final count is the oracle's for parallelism 1, 2, 4 x batch 1, 7, 512."""
    data = mixed_text(11, 1500)
    path = os.path.join(TMP, "det.txt")
    with open(path, "wb") as f:
        f.write(data)
    counts = oracle.count(data)
    csv = os.path.join(TMP, "det.csv")
    for par in ("1", "2", "4"):
        for batch in ("1", "7", "512"):
            what = "p=%s batch=%s" % (par, batch)
            p = ok("run", "wordcount", "--input", path, "--parallelism", par, "--batch-size",
                   batch, "--output", csv, "--top", "20")
            check_report(p, counts, 20, what)
            with open(csv, "rb") as f:
                check_csv(f.read().splitlines(), counts, what)
    # Workers fewer than subtasks, both idle modes, both placements: same counts.
    for extra in (["--workers", "1"], ["--idle", "busy"], ["--placement", "pack"]):
        p = ok("run", "wordcount", "--input", path, "--parallelism", "3", *extra, "--output",
               csv)
        check_report(p, counts, 10, " ".join(extra))
        with open(csv, "rb") as f:
            check_csv(f.read().splitlines(), counts, " ".join(extra))
    # The embedded sample at parallelism 4 is the sample file's counts.
    with open(SAMPLE, "rb") as f:
        sample = f.read()
    compare(sample, ["--parallelism", "4", "--batch-size", "7"], "embedded sample p=4")


@case
def run_stats():
    """--stats: per-subtask counters add up to what the oracle says flowed through each task."""
    rnd = random.Random(5)
    lines = [b" ".join(b"w%d" % rnd.randrange(300) for _ in range(rnd.randrange(1, 9)))
             for _ in range(2000)]
    data = b"\n".join(lines) + b"\n"
    path = os.path.join(TMP, "stats.txt")
    with open(path, "wb") as f:
        f.write(data)
    total, distinct = oracle.totals(oracle.count(data))
    js = os.path.join(TMP, "stats.json")
    for par in ("1", "2", "3"):
        what = "--stats p=" + par
        ok("run", "wordcount", "--input", path, "--parallelism", par, "--batch-size", "64",
           "--stats", js)
        with open(js) as f:
            doc = json.load(f)
        plan = json.loads(ok("plan", "wordcount", "--input", path, "--parallelism", par,
                             "--batch-size", "64", "--format", "json").stdout)
        check(doc["job"] == "wordcount", what + ": job name %r" % doc)
        subs = doc["subtasks"]
        names = sorted({s["task"] for s in subs})

        def total_of(task, field):
            return sum(s[field] for s in subs if s["task"] == task)
        if par == "1":
            # Both sides at parallelism 1: the key_by is fused, one task (plan.c).
            check(names == ["lines -> tokenize -> count -> collect"], what + ": tasks %r" % names)
            check(len(subs) == 1, what + ": one entry per subtask: %r" % subs)
            got = (total_of(names[0], "records_in"), total_of(names[0], "records_out"))
            check(got == (len(lines), distinct),
                  what + ": lines in, distinct words out %r, oracle %r" % (
                      got, (len(lines), distinct)))
        else:
            check(names == ["count -> collect", "lines -> tokenize"], what + ": tasks %r" % names)
            check(len(subs) == 2 * int(par), what + ": one entry per subtask: %r" % subs)
            got = (total_of("lines -> tokenize", "records_in"),
                   total_of("lines -> tokenize", "records_out"),
                   total_of("count -> collect", "records_in"),
                   total_of("count -> collect", "records_out"))
            check(got == (len(lines), total, total, distinct),
                  what + ": lines, words out, words in, distinct words %r, oracle %r" % (
                      got, (len(lines), total, total, distinct)))
        for s in subs:
            check(all(s[k] >= 0 for k in ("busy_ns", "backpressured_ns", "idle_ns")),
                  what + ": times %r" % s)
            check(s["batches_in"] <= s["records_in"], what + ": batches %r" % s)
        placed = {(t["id"] if "id" in t else i, st["index"]): st.get("pu")
                  for i, t in enumerate(plan["tasks"]) for st in t["subtasks"]}
        for s in subs:
            check(placed.get((s["task_id"], s["index"])) == s["pu"],
                  what + ": subtask %r ran on the PU the plan shows %r" % (s, placed))
    p = ok("run", "wordcount", "--input", path, "--stats", "-")
    err = p.stderr.decode()
    check(re.search(r"^lines -> tokenize -> count -> collect +0/1 ", err, re.M) is not None,
          "--stats -: table " + err)
    runtime_error(["run", "wordcount", "--input", path, "--stats",
                   os.path.join(TMP, "no-such-dir", "s.json")], "no-such-dir")


@case
def wordcount_directory():
    d = os.path.join(TMP, "dir-input")
    os.mkdir(d)
    files = {"b.txt": mixed_text(1, 300), "a.txt": mixed_text(2, 200),
             "c.log": b"no newline at the end"}
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    with open(os.path.join(d, ".hidden"), "wb") as f:
        f.write(b"hidden words are skipped\n")
    os.mkdir(os.path.join(d, "sub"))
    with open(os.path.join(d, "sub", "x.txt"), "wb") as f:
        f.write(b"subdirectories are skipped\n")
    data = b"\n".join(files[n] for n in sorted(files))
    for par in ("1", "3"):
        compare(data, ["--input", d, "--parallelism", par], "directory p=" + par)


def bad_record_input():
    """Lines, some longer than 64 bytes (bad with --max-record-size 64); one exactly 64."""
    lines = []
    for i in range(60):
        if i % 9 == 4:
            lines.append(b"badword%02d " % i + b"x" * 90)  # 100 bytes
        elif i == 20:
            lines.append(b"edge " + b"y" * 59)  # exactly 64 bytes: fine
        else:
            lines.append(b"good%d Line word%d" % (i % 5, i))
    data = b"\n".join(lines) + b"\n"
    bad = [(n + 1, line) for n, line in enumerate(lines) if len(line) > 64]
    good = b"\n".join(line for line in lines if len(line) <= 64)
    return data, bad, good


@case
def wordcount_bad_records():
    data, bad, good = bad_record_input()
    check(len(bad) == 7 and any(len(x) == 64 for x in good.split(b"\n")), "input as designed")
    path = os.path.join(TMP, "bad-input.txt")
    with open(path, "wb") as f:
        f.write(data)
    lim = ["--max-record-size", "64"]
    counts = oracle.count(good)
    for par in ("1", "3"):
        # fail (the default, and spelled out): exit 1, FILE:LINE of a bad line.
        for policy in ([], ["--bad-records", "fail"]):
            err = runtime_error(["run", "wordcount", "--input", path, "--parallelism", par] +
                                lim + policy, path)
            m = re.search(re.escape(path) + r":(\d+): record longer than 64 bytes", err)
            check(m, "p=%s: FILE:LINE message: %s" % (par, err))
            lines = [n for n, _ in bad] if par != "1" else [bad[0][0]]
            check(int(m.group(1)) in lines, "p=%s: line %s is a bad line %r" % (
                par, m.group(1), lines))
        # skip: the good lines' counts, and the number skipped on stderr.
        p = ok("run", "wordcount", "--input", path, "--parallelism", par, "--bad-records",
               "skip", *lim)
        check_report(p, counts, 10, "skip p=" + par)
        check(b"skipped 7 bad records" in p.stderr, "skip reports the count", p)
        # PATH: the same counts; each bad line in the dead-letter file, cut at 64 bytes.
        dead = os.path.join(TMP, "dead-%s.txt" % par)
        p = ok("run", "wordcount", "--input", path, "--parallelism", par, "--bad-records",
               dead, *lim)
        check_report(p, counts, 10, "dead-letter p=" + par)
        check(("wrote 7 bad records to '%s'" % dead).encode() in p.stderr, "PATH reports", p)
        with open(dead, "rb") as f:
            got = f.read().splitlines()
        want = [b"%s:%d: record longer than 64 bytes: %s [truncated]" % (
            path.encode(), n, line[:64]) for n, line in bad]
        check(sorted(got) == sorted(want), "dead-letter lines:\n%r\nwant\n%r" % (got, want))
    # Without --max-record-size the same input has no bad record.
    compare(data, ["--input", path], "no bad records at 1 MiB")


# --- sockets and signals ---------------------------------------------------------------------

class LineServer:
    """A TCP server on 127.0.0.1 for one client: sends @data, then closes or keeps the
    connection open."""

    def __init__(self, data, keep_open):
        self.data, self.keep_open = data, keep_open
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.conn = None
        self.peer = None
        self.sent = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(120)
        self.conn, self.peer = self.sock.accept()
        self.conn.sendall(self.data)
        self.sent.set()
        if not self.keep_open:
            self.conn.close()

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.sock.close()


def proc_tcp_queues(local, remote):
    """(tx_queue, rx_queue) of the IPv4 TCP socket @local -> @remote in /proc/net/tcp."""
    def enc(addr):
        ip, port = addr
        return "%s:%04X" % ("".join("%02X" % int(b) for b in reversed(ip.split("."))), port)
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == enc(local) and fields[2] == enc(remote):
                tx, rx = fields[4].split(":")
                return int(tx, 16), int(rx, 16)
    return None


def wait_until_read(server, proc):
    """Wait until sluice has read everything the server sent: the server's send queue is
    empty and so is the receive queue of sluice's socket (both in /proc/net/tcp, so the
    bytes went through recv()). A condition, not a sleep; the bound only catches a hang."""
    check(server.sent.wait(120), "the server sent its data")
    local = ("127.0.0.1", server.port)
    for _ in range(12000):
        srv = proc_tcp_queues(local, server.peer)
        cli = proc_tcp_queues(server.peer, local)
        if srv is not None and cli is not None and srv[0] == 0 and cli[1] == 0:
            return
        check(proc.poll() is None, "sluice exited early: %r" % proc.returncode)
        time.sleep(0.01)
    check(False, "sluice did not read the socket within 120 s")


def closed_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there now: connecting is refused
    return port


@case
def wordcount_socket():
    data = mixed_text(5, 400)
    server = LineServer(data, keep_open=False)
    try:
        compare(data, ["--input", "socket://127.0.0.1:%d" % server.port, "--parallelism", "2"],
                "socket", tops=(10,))
    finally:
        server.close()
    port = closed_port()
    url = "socket://127.0.0.1:%d" % port
    err = runtime_error(["run", "wordcount", "--input", url], "127.0.0.1:%d" % port)
    check("Connection refused" in err, "says why: " + err)


def have_proc_net_tcp():
    return os.path.exists("/proc/net/tcp")


@case
def wordcount_sigterm_drains():
    """SIGTERM while the socket stays open: exit 0, the counts of exactly the lines sent."""
    if not have_proc_net_tcp():
        print("SKIP wordcount_sigterm_drains: no /proc/net/tcp")
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        data = mixed_text(9, 300)
        counts = oracle.count(data)
        server = LineServer(data, keep_open=True)
        csv = os.path.join(TMP, "sig.csv")
        try:
            proc = subprocess.Popen([SLUICE, "run", "wordcount", "--input",
                                     "socket://127.0.0.1:%d" % server.port, "--parallelism",
                                     "2", "--output", csv], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
            wait_until_read(server, proc)
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=300)
        finally:
            server.close()
        p = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        check(proc.returncode == 0, "%s: exit 0 after draining" % sig.name, p)
        check(b"stopped by signal after draining" in err, "%s: says so" % sig.name, p)
        check_report(p, counts, 10, "after " + sig.name)
        with open(csv, "rb") as f:
            check_csv(f.read().splitlines(), counts, "after " + sig.name)


@case
def wordcount_second_signal_exits():
    """A second signal exits at once with status 130, even while the results are written."""
    if not have_proc_net_tcp():
        print("SKIP wordcount_second_signal_exits: no /proc/net/tcp")
        return
    # ~300 KB of 'word,count' lines to stdout, which nobody reads: the sink blocks on the
    # full pipe after the first signal, so the job cannot finish before the second.
    data = b"".join(b"distinct%06d\n" % i for i in range(25000))
    server = LineServer(data, keep_open=True)
    try:
        proc = subprocess.Popen([SLUICE, "run", "wordcount", "--input",
                                 "socket://127.0.0.1:%d" % server.port, "--output", "-"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_until_read(server, proc)
        proc.send_signal(signal.SIGTERM)
        line = proc.stderr.readline()  # the handler's note: the first signal was taken
        check(b"stopping" in line, "first signal noted: %r" % line)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=300)
        proc.stdout.close()
        proc.stderr.close()
    finally:
        server.close()
    check(rc == 130, "second signal: exit 130, got %r" % rc)


def run_on_pty(args):
    """Run sluice with stderr on a pseudo-terminal; return (exit status, stderr bytes)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([SLUICE] + args, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []

    def drain():
        while True:
            try:
                b = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not b:
                break
            chunks.append(b)
    t = threading.Thread(target=drain, daemon=True)
    t.start()
    proc.stdout.read()
    rc = proc.wait(timeout=300)
    t.join(60)
    os.close(master)
    return rc, b"".join(chunks)


@case
def wordcount_status_line():
    # 600 lines at 300 lines/s: at least 2 s (the rate's token bucket is full at 10 ms worth
    # of lines), so the 500 ms status line has its chance several times.
    data = b"".join(b"status line %d\n" % i for i in range(600))
    path = os.path.join(TMP, "status.txt")
    with open(path, "wb") as f:
        f.write(data)
    args = ["run", "wordcount", "--input", path, "--rate", "300"]
    rc, err = run_on_pty(args)
    check(rc == 0, "exit 0 on a terminal: %r" % err)
    check(re.search(rb"\rrecords/s in \d+, out \d+, backpressure \d+%", err),
          "status line on a terminal: %r" % err[:500])
    p = ok(*args)
    check(b"records/s" not in p.stderr, "no status line when stderr is not a terminal", p)
    check_report(p, oracle.count(data), 10, "rate-limited run")


# --- run-time errors ------------------------------------------------------------------------

@case
def wordcount_errors():
    missing = os.path.join(TMP, "no-such-file.txt")
    err = runtime_error(["run", "wordcount", "--input", missing], missing)
    check(err.startswith("sluice: wordcount: ") and
          "cannot open '%s': No such file or directory\n" % missing in err, "text: " + err)
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


# --- keyed-state options --------------------------------------------------------------------

@case
def state_options():
    """--state-memory, --state-dir and --state-io go through sl_job_set() for every job: sizes
    with units, bad values as usage errors naming the option, unusable directories by path."""
    out = ok("run", "wordcount", "--help").stdout.decode()
    for opt in ("--state-memory SIZE", "--state-dir DIR", "--state-io auto|io_uring|posix"):
        check(re.search(r"^ +%s " % re.escape(opt), out, re.M), "run --help lists %s" % opt)
    for verb in ("run", "plan"):
        see = "sluice %s wordcount --help" % verb
        for val in ("12Q", "abc", "-1", "", "1.5G", "10 M", "64", "65535", "1MiBx", "K", "M64",
                    "99999999999999999999", "17179869184G"):
            err = usage_error([verb, "wordcount", "--state-memory", val], val, see)
            check("option 'state-memory'" in err and "64K" in err, "names the option: " + err)
        for val in ("uring", "POSIX", "", "aio"):
            err = usage_error([verb, "wordcount", "--state-io", val], val, see)
            check("option 'state-io'" in err and "io_uring" in err, err)
    see = "sluice run wordcount --help"
    afile = os.path.join(TMP, "state-file")
    open(afile, "w").close()
    for d in (afile, os.path.join(afile, "sub", "dir"), ""):
        err = usage_error(["run", "wordcount", "--state-memory", "1M", "--state-dir", d], d, see)
        check("option 'state-dir'" in err, err)
        if d:
            check(afile in err and "not a directory" in err.lower(), "says why: " + err)
    if os.geteuid() != 0:  # root may write anywhere
        ro = os.path.join(TMP, "state-ro")
        os.mkdir(ro, 0o500)
        for d in (ro, os.path.join(ro, "new")):
            err = usage_error(["run", "wordcount", "--state-dir", d], d, see)
            check("not writable" in err, err)
        os.chmod(ro, 0o700)
    # Accepted sizes; results unchanged (wordcount keeps no sl_state.h state).
    for val in ("0", "64K", "65536", "512M", "2GiB", "1g", "3mb", "1T", "100000B"):
        ok("plan", "wordcount", "--state-memory", val)
    with open(SAMPLE, "rb") as f:
        data = f.read()
    sdir = os.path.join(TMP, "state-new", "deeper")
    for io in ("auto", "posix", "io_uring"):
        compare(data, ["--state-memory", "64K", "--state-dir", sdir, "--state-io", io,
                       "--parallelism", "2"], "state options, %s" % io)
        compare(data, ["--state-memory=1GiB", "--state-io=" + io], "state defaults, %s" % io)


def main(argv):
    global SLUICE, SAMPLE, TMP
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    SLUICE, SAMPLE = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    with tempfile.TemporaryDirectory(prefix="sluice-cli-") as tmp:
        TMP = tmp
        return run_cases()

if __name__ == "__main__":
    sys.exit(main(sys.argv))
