#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write the first ```c block of README.md to OUTPUT, so the README example is compiled
and run by the test suite and cannot drift from the API."""
import re
import sys

src, out = sys.argv[1], sys.argv[2]
text = open(src, encoding="utf-8").read()
m = re.search(r"```c\n(.*?)```", text, re.S)
if not m:
    sys.exit(f"{src}: no ```c block found")
with open(out, "w", encoding="utf-8") as f:
    f.write("/* generated from README.md by tests/extract_readme.py */\n")
    f.write("#include <errno.h>\n")
    f.write(m.group(1))
