#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""run_expect.py PROGRAM EXPECTED: run PROGRAM, require exit 0 and EXPECTED as a line of stdout."""
import subprocess
import sys

prog, expected = sys.argv[1], sys.argv[2]
p = subprocess.run([prog], capture_output=True, text=True, timeout=300)
sys.stdout.write(p.stdout)
sys.stderr.write(p.stderr)
if p.returncode != 0:
    sys.exit(f"{prog}: exit status {p.returncode}")
if expected not in p.stdout.splitlines():
    sys.exit(f"{prog}: expected a line '{expected}'")
print("ok")
