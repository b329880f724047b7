#!/usr/bin/env python3
"""Run tests/integration/test_*.py (or the files named: run.py
test_tls.py test_admin.py, shell patterns allowed) with unittest.

  run.py [-j N] [PATTERN...]

With -j N (default: $MQLB_TEST_JOBS, else 1) up to N files run at once,
each in its own Python process; a file's output is printed whole when it
ends, so files never interleave. A file that declares RUN_ALONE = True
(it loads the machine or measures it: CPU, memory, many sockets) runs
with no other file beside it. Files start longest first, by the times of
the last run (build/integration-times.json when $MQLB_TEST_TIMES names
it), else by size.

Prints each file's time and count as it ends, a table of every file's
time at the end (slowest first), and closes with the line
"integration: N passed, N failed" (and skipped, if any)."""

import fnmatch
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
RESULT = "integration-result:"


def files(patterns):
    names = sorted(f for f in os.listdir(HERE) if f.startswith("test_") and f.endswith(".py"))
    chosen = [f for f in names if any(fnmatch.fnmatch(f, p) for p in patterns)]
    return chosen


def run_one(name):
    """In the child: run one file, end with a line the parent reads."""
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "support"))
    sys.path.insert(0, HERE)
    suite = unittest.defaultTestLoader.discover(HERE, pattern=name, top_level_dir=HERE)
    t0 = time.monotonic()
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    took = time.monotonic() - t0
    nfail = len(result.failures) + len(result.errors)
    sys.stdout.flush()
    print("%s %s %d %d %d %.3f" % (RESULT, name, result.testsRun, nfail,
                                   len(result.skipped), took), flush=True)
    sys.exit(0)


def runs_alone(name):
    with open(os.path.join(HERE, name)) as f:
        return re.search(r"^RUN_ALONE\s*=\s*True\b", f.read(), re.M) is not None


def past_times():
    path = os.environ.get("MQLB_TEST_TIMES")
    if not path:
        return {}
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def save_times(times):
    path = os.environ.get("MQLB_TEST_TIMES")
    if not path:
        return
    old = past_times()
    old.update({t[1]: round(t[0], 1) for t in times})
    try:
        with open(path + ".tmp", "w") as f:
            json.dump(old, f, indent=1, sort_keys=True)
        os.replace(path + ".tmp", path)
    except OSError:
        pass


class Child:
    """One file running in its own process, its output in a file."""

    def __init__(self, name):
        self.name = name
        self.out = tempfile.TemporaryFile()
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--one", name],
                                     stdout=self.out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def finish(self):
        """Print the file's output; return (took, name, ran, failed, skipped)."""
        self.out.seek(0)
        text = self.out.read().decode("utf-8", "replace")
        self.out.close()
        took = time.monotonic() - self.t0
        ran, nfail, nskip = 0, 1, 0      # a file that died without a result failed
        for line in text.splitlines():
            if line.startswith(RESULT):
                _, _, r, f, s, took = line.split()
                ran, nfail, nskip, took = int(r), int(f), int(s), float(took)
        text = "".join(line + "\n" for line in text.splitlines() if not line.startswith(RESULT))
        sys.stdout.write(text)
        if ran == 0 and nfail == 1:
            print("integration: %s: exited %s without a result" % (self.name, self.proc.returncode))
        print("integration: %s: %d tests, %d failed, %.1fs" % (self.name, ran, nfail, took),
              flush=True)
        return took, self.name, ran, nfail, nskip


def schedule(chosen):
    """Longest first; the files that run alone after the others."""
    past = past_times()

    def weight(name):
        return past.get(name, os.path.getsize(os.path.join(HERE, name)) / 1000.0)
    together = sorted((f for f in chosen if not runs_alone(f)), key=weight, reverse=True)
    alone = sorted((f for f in chosen if runs_alone(f)), key=weight, reverse=True)
    return [(f, False) for f in together] + [(f, True) for f in alone]


def main():
    args = sys.argv[1:]
    if args[:1] == ["--one"]:
        run_one(args[1])
    jobs = int(os.environ.get("MQLB_TEST_JOBS", "1") or 1)
    if args[:1] == ["-j"]:
        jobs = int(args[1])
        args = args[2:]
    jobs = max(1, jobs)
    patterns = args or ["test_*.py"]
    chosen = files(patterns)
    if not chosen:
        print("integration: no test file matches %s" % " ".join(patterns))
        sys.exit(1)
    start = time.monotonic()
    queue = schedule(chosen)
    running = []
    times = []
    while queue or running:
        while queue and len(running) < jobs:
            name, alone = queue[0]
            if alone and running:
                break           # wait until it has the machine to itself
            queue.pop(0)
            running.append(Child(name))
            if alone:
                break
        done = [c for c in running if c.proc.poll() is not None]
        if not done:
            # poll the children; a file runs for seconds, so 50 ms is cheap
            time.sleep(0.05)
            continue
        for c in done:
            running.remove(c)
            times.append(c.finish())
    ran = sum(t[2] for t in times)
    failed = sum(t[3] for t in times)
    skipped = sum(t[4] for t in times)
    save_times(times)
    print("integration: time per file, slowest first (%d at once)" % jobs)
    for took, name, n, nfail, _ in sorted(times, reverse=True):
        print("  %6.1fs  %-24s %3d tests%s%s" % (took, name, n,
                                                ", %d FAILED" % nfail if nfail else "",
                                                ", alone" if runs_alone(name) else ""))
    print("integration time: %.1fs" % (time.monotonic() - start))
    line = "integration: %d passed, %d failed" % (ran - failed - skipped, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line)
    sys.exit(0 if failed == 0 and ran > 0 else 1)


if __name__ == "__main__":
    main()
