#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Print one closing line for a meson test run: 'tests: N passed, N failed, N skipped'.

Before it, for each failed test, the lines of its output that say what
failed (CUnit's numbered assertion lines, lines naming a failure or an
error; at most 40 per test), so that a CI log showing only its last lines
still names the failing assertion. Reads meson's testlog.json (one JSON
object per line). Exit status is not changed by this script: the Makefile
keeps meson's own.
"""
import json
import re
import sys

# CUnit's "    1. file.c:123  - expression", and lines that say what failed.
TELLING = re.compile(r"^\s+\d+\. \S+:\d+|FAIL|[Ee]rror|[Aa]ssert|Traceback|Sanitizer")


def failure_lines(entry, limit=40):
    out = (entry.get("stdout") or "") + "\n" + (entry.get("stderr") or "")
    lines = [ln for ln in out.splitlines() if TELLING.search(ln)]
    return lines[-limit:]


def main(path):
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                entry = json.loads(line)
                result = entry.get("result", "")
                if result in ("OK", "EXPECTEDFAIL"):
                    counts["passed"] += 1
                elif result == "SKIP":
                    counts["skipped"] += 1
                else:
                    counts["failed"] += 1
                    print(f"failed: {entry.get('name', '?')} ({result})")
                    for ln in failure_lines(entry):
                        print(f"  | {ln[:300]}")
    except OSError as e:
        print(f"tests: no test log ({e.strerror}: {path})")
        return
    print(f"tests: {counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} skipped")


if __name__ == "__main__":
    main(sys.argv[1])
