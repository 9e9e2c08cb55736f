#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Check the JSON written by sl_topo_print(): it parses, and its counts
and cross-references agree with the expected package/node/core/PU counts
given on the command line (computed by the caller, not by Sluice).

usage: check_topo_json.py FILE PACKAGES NODES CORES PUS   (a count of -1 is not checked)
"""
import json
import sys


def main():
    path = sys.argv[1]
    want = dict(zip(("packages", "nodes", "cores", "pus"), map(int, sys.argv[2:6])))
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    errors = []
    for key, n in want.items():
        if n >= 0 and len(doc[key]) != n:
            errors.append(f"{key}: {len(doc[key])} entries, expected {n}")
    if doc["pus_usable"] != len(doc["pus"]):
        errors.append("pus_usable does not match the pus array")
    if doc["pus_in_machine"] < doc["pus_usable"]:
        errors.append("more usable PUs than the machine has")
    pus = {p["pu"]: p for p in doc["pus"]}
    if len(pus) != len(doc["pus"]):
        errors.append("a PU is listed twice")
    for core in doc["cores"]:
        for pu in core["pus"]:
            if pus.get(pu, {}).get("core") != core["index"]:
                errors.append(f"pu {pu} listed under core {core['index']} but says otherwise")
    for node in doc["nodes"]:
        if not node["cores"]:
            errors.append(f"node {node['os_index']} has no core")
    if sorted(c for p in doc["packages"] for c in p["cores"]) != sorted(c["index"] for c in doc["cores"]):
        errors.append("packages do not partition the cores")
    for e in errors:
        print(f"{path}: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
