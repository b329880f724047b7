#!/usr/bin/env python3
"""Run tests/integration/test_*.py (or the files named: run.py
test_tls.py test_admin.py, shell patterns allowed) with unittest.

  run.py [-j N] [PATTERN...] [--also LABEL SAN BIN TIMES [PATTERN...]]...

The unit of work is a test class. With -j N (default: $MQLB_TEST_JOBS,
else 1) up to N classes run at once, each in its own Python process; a
class's output is printed whole when it ends, so outputs never
interleave. Most tests wait (for a timeout, a check interval, a broker),
so several share the 2 cores well. A class that declares RUN_ALONE =
True (it loads the machine or measures it: CPU, memory, many sockets,
rates) runs with nothing beside it, after the others; a module-level
RUN_ALONE = True makes every class of the file run alone; RUN_ALONE =
"plain" runs alone in the plain build only (it bounds CPU or memory,
which the sanitizer builds do not check). Each class
running gets a slot (MQLB_TEST_SLOT of MQLB_TEST_SLOTS): harness.free_port
takes its ports from that slot's share only. Classes start
longest first, by the times of the last run (build/integration-times.json
when $MQLB_TEST_TIMES names it), else by those kept in times.json.

--also runs another build's classes in the same N slots (each line of
theirs marked [LABEL]): `make integration-with-tsan` runs the ASan and
the ThreadSanitizer passes together, so neither ends in a tail of a few
long classes on an idle machine.

Prints each class's time, CPU time (its process and every process it
waited for: mqlb, brokers, clients) and count as it ends, a table of every
file's time and CPU at the end (summed over its classes, slowest first),
and closes with the line "integration: N passed, N failed" (and skipped,
if any), one per build."""

import fnmatch
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
RESULT = "integration-result:"
LISTING = "integration-unit:"


def files(patterns):
    names = sorted(f for f in os.listdir(HERE) if f.startswith("test_") and f.endswith(".py"))
    return [f for f in names if any(fnmatch.fnmatch(f, p) for p in patterns)]


def child_path():
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "support"))
    sys.path.insert(0, HERE)


def list_units(names):
    """In a child: print every test class of the files, and whether it
    runs alone. Importing the files here keeps their module-level work
    out of the parent."""
    child_path()
    loader = unittest.defaultTestLoader
    for name in names:
        modname = name[:-3]
        try:
            module = __import__(modname)
        except Exception:  # noqa: BLE001 - run_one of the file reports it
            print("%s %s 0" % (LISTING, modname), flush=True)
            continue
        seen = []
        for case in iter_cases(loader.loadTestsFromModule(module)):
            cls = type(case)
            if cls.__module__ != modname or cls in seen:
                continue
            seen.append(cls)
            alone = getattr(cls, "RUN_ALONE", getattr(module, "RUN_ALONE", False))
            if alone == "plain":        # it measures what a sanitizer swamps
                alone = not os.environ.get("MQLB_SAN")
            print("%s %s.%s %d" % (LISTING, modname, cls.__name__, 1 if alone else 0))
    sys.stdout.flush()
    sys.exit(0)


def iter_cases(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_cases(t)
        else:
            yield t


def run_one(unit):
    """In the child: run one class (or a whole file that failed to
    import, to report why), end with a line the parent reads."""
    child_path()
    suite = unittest.defaultTestLoader.loadTestsFromName(unit)
    t0 = time.monotonic()
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    took = time.monotonic() - t0
    nfail = len(result.failures) + len(result.errors)
    sys.stdout.flush()
    print("%s %s %d %d %d %.3f" % (RESULT, unit, result.testsRun, nfail,
                                   len(result.skipped), took), flush=True)
    sys.exit(0)


def units_of(names, env):
    """[(unit, alone)] of the files, listed by a child process."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--list"] + names,
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, check=False,
                         env=env)
    units = []
    for line in out.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith(LISTING):
            _, unit, alone = line.split()
            units.append((unit, alone == "1"))
    return units


# Times of a whole run kept with the tests, so that a fresh checkout (CI)
# starts the long classes first too. Refresh it from a plain run:
# cp build/integration-times.json tests/integration/times.json
SHIPPED_TIMES = os.path.join(HERE, "times.json")


def read_times(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def past_times(path):
    """This build's times of the last run, else the shipped ones."""
    return (read_times(path) if path else {}) or read_times(SHIPPED_TIMES)


def save_times(times, path):
    if not path:
        return
    old = read_times(path)
    old.update({t[1]: round(t[0], 1) for t in times})
    try:
        with open(path + ".tmp", "w") as f:
            json.dump(old, f, indent=1, sort_keys=True)
        os.replace(path + ".tmp", path)
    except OSError:
        pass


class Pass:
    """One build's run: its environment (MQLB_BIN, MQLB_SAN,
    MQLB_TEST_TIMES), its files, its classes and their results."""

    def __init__(self, label, env, patterns):
        self.label = label
        self.env = env
        self.chosen = files(patterns)
        self.times_path = env.get("MQLB_TEST_TIMES")
        self.units = []
        self.times = []

    def name(self, unit):
        return "%s%s" % (self.label and "[%s] " % self.label, unit)


class Child:
    """One class running in its own process, its output in a file."""

    def __init__(self, unit, run, slot, slots):
        self.unit = unit
        self.run = run
        self.slot = slot
        self.out = tempfile.TemporaryFile()
        self.t0 = time.monotonic()
        # its own share of the test ports (harness.free_port)
        env = dict(run.env, MQLB_TEST_SLOT=str(slot), MQLB_TEST_SLOTS=str(slots))
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--one", unit],
                                     stdout=self.out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        self.cpu = 0.0

    def ended(self):
        """Reap the process if it ended (wait4: its CPU time too)."""
        pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.cpu = ru.ru_utime + ru.ru_stime
        return True

    def finish(self):
        """Print the class's output; return (took, unit, ran, failed, skipped, cpu)."""
        self.out.seek(0)
        text = self.out.read().decode("utf-8", "replace")
        self.out.close()
        took = time.monotonic() - self.t0
        ran, nfail, nskip = 0, 1, 0      # a class that died without a result failed
        for line in text.splitlines():
            if line.startswith(RESULT):
                _, _, r, f, s, took = line.split()
                ran, nfail, nskip, took = int(r), int(f), int(s), float(took)
        text = "".join(line + "\n" for line in text.splitlines() if not line.startswith(RESULT))
        sys.stdout.write(text)
        if ran == 0 and nfail == 1:
            print("integration: %s: exited %s without a result"
                  % (self.run.name(self.unit), self.proc.returncode))
        print("integration: %s: %d tests, %d failed, %.1fs, %.1fs CPU"
              % (self.run.name(self.unit), ran, nfail, took, self.cpu), flush=True)
        self.run.times.append((took, self.unit, ran, nfail, nskip, self.cpu))


def schedule(runs):
    """[(unit, alone, pass)]: longest first; the classes that run alone
    after the others."""
    units = []
    for run in runs:
        past = past_times(run.times_path)
        units += [(u, a, run, past.get(u, 0.0)) for u, a in run.units]
    together = sorted((u for u in units if not u[1]), key=lambda u: u[3], reverse=True)
    alone = sorted((u for u in units if u[1]), key=lambda u: u[3], reverse=True)
    return [u[:3] for u in together + alone]


def report(run, jobs):
    """The per-file table: its classes' times summed, slowest first."""
    per_file = {}
    alone = {u for u, a in run.units if a}
    for took, unit, n, nfail, _, cpu in run.times:
        f = per_file.setdefault(unit.split(".")[0] + ".py", [0.0, 0, 0, 0, 0, 0.0])
        f[0] += took
        f[1] += n
        f[2] += nfail
        f[3] += 1
        f[4] += 1 if unit in alone else 0
        f[5] += cpu
    print("integration: %stime per file (its classes summed), slowest first, "
          "%d classes at once" % (run.name(""), jobs))
    for name, (took, n, nfail, ncls, nalone, cpu) in sorted(per_file.items(),
                                                             key=lambda kv: -kv[1][0]):
        print("  %6.1fs %6.1fs CPU  %-24s %3d tests in %2d classes%s%s" % (
            took, cpu, name, n, ncls, ", %d alone" % nalone if nalone else "",
            ", %d FAILED" % nfail if nfail else ""))


def summary(run):
    """"integration: N passed, N failed[, N skipped]"; True if all passed."""
    ran = sum(t[2] for t in run.times)
    failed = sum(t[3] for t in run.times)
    skipped = sum(t[4] for t in run.times)
    line = "integration: %s%d passed, %d failed" % (run.name(""), ran - failed - skipped,
                                                     failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line)
    # named last too: a long log's tail is what a CI page shows
    for took, unit, n, nfail, _, cpu in run.times:
        if nfail:
            print("integration: %sFAILED in %s (%d of %d tests)" % (run.name(""), unit,
                                                                  nfail, n))
    return failed == 0 and ran > 0


def parse_passes(args):
    """The build of the environment with its files, then each --also
    LABEL SAN BIN TIMES FILES...: another build's classes, run in the same
    slots (make integration-with-tsan)."""
    runs = []
    cut = [i for i, a in enumerate(args) if a == "--also"] + [len(args)]
    runs.append(Pass("", dict(os.environ), args[:cut[0]] or ["test_*.py"]))
    for i, j in zip(cut, cut[1:]):
        label, san, binary, times = args[i + 1:i + 5]
        env = dict(os.environ, MQLB_SAN=san, MQLB_BIN=binary, MQLB_TEST_TIMES=times)
        runs.append(Pass(label, env, args[i + 5:j] or ["test_*.py"]))
    return runs


def main():
    args = sys.argv[1:]
    if args[:1] == ["--one"]:
        run_one(args[1])
    if args[:1] == ["--list"]:
        list_units(args[1:])
    jobs = int(os.environ.get("MQLB_TEST_JOBS", "1") or 1)
    if args[:1] == ["-j"]:
        jobs = int(args[1])
        args = args[2:]
    jobs = max(1, jobs)
    runs = parse_passes(args)
    start = time.monotonic()
    for run in runs:
        if not run.chosen:
            print("integration: no test file matches %s" % " ".join(args))
            sys.exit(1)
        run.units = units_of(run.chosen, run.env)
        listed = {u.split(".")[0] + ".py" for u, _ in run.units}
        missing = [f for f in run.chosen if f not in listed]
        if missing:
            print("integration: no test class found in %s" % " ".join(missing))
            sys.exit(1)
    queue = schedule(runs)
    running = []
    while queue or running:
        while queue and len(running) < jobs:
            unit, is_alone, run = queue[0]
            if is_alone and running:
                break           # wait until it has the machine to itself
            queue.pop(0)
            slot = min(set(range(jobs)) - {c.slot for c in running})
            running.append(Child(unit, run, slot, jobs))
            if is_alone:
                break
        done = [c for c in running if c.ended()]
        if not done:
            # poll the children; a class runs for seconds, so 50 ms is cheap
            time.sleep(0.05)
            continue
        for c in done:
            running.remove(c)
            c.finish()
    ok = True
    for run in runs:
        save_times(run.times, run.times_path)
        report(run, jobs)
    print("integration time: %.1fs, %.1fs CPU" % (
        time.monotonic() - start, sum(t[5] for run in runs for t in run.times)))
    for run in runs:
        ok = summary(run) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
