#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Print one closing line for a meson test run: 'tests: N passed, N failed, N skipped'.

Reads meson's testlog.json (one JSON object per line). Exit status is not
changed by this script: the Makefile keeps meson's own.
"""
import json
import sys


def main(path):
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                result = json.loads(line).get("result", "")
                if result in ("OK", "EXPECTEDFAIL"):
                    counts["passed"] += 1
                elif result == "SKIP":
                    counts["skipped"] += 1
                else:
                    counts["failed"] += 1
    except OSError as e:
        print(f"tests: no test log ({e.strerror}: {path})")
        return
    print(f"tests: {counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} skipped")


if __name__ == "__main__":
    main(sys.argv[1])
