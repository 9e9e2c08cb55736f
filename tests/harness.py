# SPDX-License-Identifier: Apache-2.0
"""What the Python integration tests share: a case registry, check(), and
a runner that prints one PASS/FAIL line per case and returns the exit
status. Each test script keeps its own globals (binary path, temp dir).
"""
import sys
import traceback

CASES = []


class Failure(Exception):
    pass


def case(fn):
    CASES.append(fn)
    return fn


def check(cond, what, proc=None):
    """Raise Failure(@what) unless @cond; with @proc, add its exit status and output."""
    if not cond:
        if proc is not None:
            what += "\n  exit %r\n  stdout: %r\n  stderr: %r" % (
                proc.returncode, proc.stdout[:2000], proc.stderr[:2000])
        raise Failure(what)


def run_cases():
    """Run every registered case; an unexpected exception fails its case with a traceback."""
    failed = 0
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
