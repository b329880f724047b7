#!/usr/bin/env python3
"""Run tests/integration/test_*.py (or the files named: run.py
test_tls.py test_admin.py, shell patterns allowed) with unittest, one
file after the other. Prints each file's time and count as it ends, a
table of every file's time at the end (slowest first), and closes with
the line "integration: N passed, N failed" (and skipped, if any)."""

import fnmatch
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "support"))
sys.path.insert(0, HERE)


def files(patterns):
    names = sorted(f for f in os.listdir(HERE) if f.startswith("test_") and f.endswith(".py"))
    chosen = [f for f in names if any(fnmatch.fnmatch(f, p) for p in patterns)]
    return chosen


def main():
    patterns = sys.argv[1:] or ["test_*.py"]
    chosen = files(patterns)
    if not chosen:
        print("integration: no test file matches %s" % " ".join(patterns))
        sys.exit(1)
    loader = unittest.defaultTestLoader
    start = time.monotonic()
    ran = failed = skipped = 0
    times = []
    for name in chosen:
        suite = loader.discover(HERE, pattern=name, top_level_dir=HERE)
        t0 = time.monotonic()
        result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
        took = time.monotonic() - t0
        nfail = len(result.failures) + len(result.errors)
        ran += result.testsRun
        failed += nfail
        skipped += len(result.skipped)
        times.append((took, name, result.testsRun, nfail))
        print("integration: %s: %d tests, %d failed, %.1fs" % (name, result.testsRun, nfail, took),
              flush=True)
    print("integration: time per file, slowest first")
    for took, name, n, nfail in sorted(times, reverse=True):
        print("  %6.1fs  %-24s %3d tests%s" % (took, name, n, ", %d FAILED" % nfail if nfail else ""))
    print("integration time: %.1fs" % (time.monotonic() - start))
    line = "integration: %d passed, %d failed" % (ran - failed - skipped, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line)
    sys.exit(0 if failed == 0 and ran > 0 else 1)


if __name__ == "__main__":
    main()
