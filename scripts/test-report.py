#!/usr/bin/env python3
"""Reads the JUnit files ctest wrote for each phase of scripts/test.sh and prints what ran where.

    test-report.py PHASE=WHERE=FILE[,FILE...] ...

For each phase: a line 'PHASE (WHERE): N passed, N failed, N skipped', each skipped test with the
reason the test gave (gtest's "Skipped" message), and each failed test. Then the closing line
'test.sh: N passed, N failed, N skipped' over all phases. Exits 1 if any test failed, or if a phase
whose name ends in '!' (a layer that must run: integration, e2e) passed no test at all.
"""
import sys
import xml.etree.ElementTree as ET


def skip_reason(out: str) -> str:
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.endswith(": Skipped") and i + 1 < len(lines):
            return lines[i + 1].strip() or "(no reason given)"
    return "(no reason given)"


def main(argv):
    total = {"passed": 0, "failed": 0, "skipped": 0}
    bad = []
    for arg in argv:
        phase, where, files = arg.split("=", 2)
        must_run = phase.endswith("!")
        phase = phase.rstrip("!")
        counts = {"passed": 0, "failed": 0, "skipped": 0}
        skipped, failed = [], []
        for f in filter(None, files.split(",")):
            try:
                root = ET.parse(f).getroot()
            except (OSError, ET.ParseError) as e:
                failed.append(f"(no results: {f}: {e})")
                counts["failed"] += 1
                continue
            for tc in root.iter("testcase"):
                status = tc.get("status", "")
                name = tc.get("name", "?")
                out = tc.findtext("system-out") or ""
                if status == "run":
                    counts["passed"] += 1
                elif status in ("notrun", "disabled"):
                    counts["skipped"] += 1
                    skipped.append(f"{name}: {skip_reason(out)}")
                else:
                    counts["failed"] += 1
                    failed.append(name)
        print(f"{phase} ({where}): {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
        for s in skipped:
            print(f"  skipped: {s}")
        for s in failed:
            print(f"  FAILED: {s}")
        if must_run and counts["passed"] == 0:
            bad.append(f"the {phase} layer ran no test ({where})")
        for k in total:
            total[k] += counts[k]
    for b in bad:
        print(f"test.sh: {b}")
    print(f"test.sh: {total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    return 1 if bad or total["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
