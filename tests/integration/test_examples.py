"""Issue 9: the shipped configurations are valid and say what they promise
(`mqlb -t -c` on every etc/examples/*.ini and etc/mqlb.ini), the man pages
render without warnings, and `make install DESTDIR=...` lays out the tree,
rewrites the unit's paths, keeps an existing mqlb.ini, and uninstalls."""

import glob
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import MQLB_BIN, ROOT

EXAMPLES = os.path.join(ROOT, "etc", "examples")


def with_test_certs(path):
    """<path>, or for an example naming certificates under /etc/mqlb/ a
    copy that names certificates made for the test (mqlb -t loads them)."""
    with open(path) as f:
        text = f.read()
    files = sorted(set(re.findall(r"/etc/mqlb/([\w.-]+\.pem)", text)))
    if not files:
        return path
    from certs import CA
    d = tempfile.mkdtemp(prefix="mqlb-example-certs-")
    ca = CA(d)
    for name in files:
        if name.endswith("-ca.pem"):
            shutil.copy(ca.cert, os.path.join(d, name))
        else:
            host = name[:-len(".pem")]
            pem, _ = ca.issue(host, host, dns=[host])
            os.replace(pem, os.path.join(d, name))
    out = os.path.join(d, os.path.basename(path))
    with open(out, "w") as f:
        f.write(text.replace("/etc/mqlb/", d + "/"))
    return out


def check(path):
    return subprocess.run([MQLB_BIN, "-t", "-c", with_test_certs(path)],
                          capture_output=True, text=True, timeout=30)


def effective(path):
    """{pool: {key: [values]}} from the effective config `mqlb -t` prints."""
    r = check(path)
    if r.returncode != 0:
        raise AssertionError("%s: %s" % (path, r.stderr))
    pools, cur = {}, None
    for line in r.stdout.splitlines():
        m = re.match(r"\[pool (\S+)\]$", line)
        if m:
            cur = pools.setdefault(m.group(1), {})
            continue
        if line.startswith("["):
            cur = None
            continue
        if cur is not None and " = " in line:
            k, v = line.split(" = ", 1)
            cur.setdefault(k, []).append(v)
    return pools


def duration_s(text):
    m = re.match(r"(\d+)(ms|s|m|h)$", text)
    n, unit = int(m.group(1)), m.group(2)
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


class Examples(unittest.TestCase):
    def test_every_shipped_config_passes_the_check(self):
        files = sorted(glob.glob(os.path.join(EXAMPLES, "*.ini")))
        names = [os.path.basename(f) for f in files]
        for want in ("rabbitmq.ini", "mqtt.ini", "redis-master.ini", "nats.ini",
                     "kafka-bootstrap.ini", "mqtt-tls.ini"):
            self.assertIn(want, names)
        for path in files + [os.path.join(ROOT, "etc", "mqlb.ini")]:
            with self.subTest(path=os.path.relpath(path, ROOT)):
                r = check(path)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("configuration is valid", r.stderr)
                self.assertIn("[pool ", r.stdout)

    def test_examples_make_the_documented_choices(self):
        rabbit = effective(os.path.join(EXAMPLES, "rabbitmq.ini"))["rabbitmq"]
        self.assertEqual(rabbit["health_check"], ["amqp"])
        self.assertEqual(rabbit["balance"], ["leastconn"])
        self.assertEqual(rabbit["on_backend_down"], ["close"])
        # AMQP heartbeat: 60 s by default; the idle timeout is well above it
        self.assertGreaterEqual(duration_s(rabbit["idle_timeout"][0]), 180)
        self.assertNotEqual(rabbit["tcp_keepalive"], ["off"])

        tls = effective(os.path.join(EXAMPLES, "mqtt-tls.ini"))
        self.assertTrue(tls["mqtt"]["listen"][0].endswith(":8883 tls"))
        self.assertEqual(tls["mqtt"]["tls_verify_client"], ["required"])
        self.assertEqual(tls["mqtt"]["proxy_protocol"], ["v2"])
        self.assertEqual(tls["mqtt"]["balance"], ["mqtt-client-id"])
        self.assertEqual(tls["tenant-b"]["listen"], tls["mqtt"]["listen"])
        self.assertEqual(tls["tenant-b"]["sni"], ["b.example.com *.b.example.com"])

        mqtt = effective(os.path.join(EXAMPLES, "mqtt.ini"))["mqtt"]
        self.assertEqual(mqtt["health_check"], ["mqtt"])
        self.assertEqual(mqtt["balance"], ["mqtt-client-id"])
        self.assertGreater(duration_s(mqtt["slow_start"][0]), 0)
        self.assertGreaterEqual(duration_s(mqtt["idle_timeout"][0]), 90)

        redis = effective(os.path.join(EXAMPLES, "redis-master.ini"))
        self.assertEqual(redis["redis-master"]["health_check"], ["redis-master"])

        nats = effective(os.path.join(EXAMPLES, "nats.ini"))["nats"]
        self.assertEqual(nats["health_check"], ["nats"])
        self.assertIn(nats["balance"][0], ("leastconn", "roundrobin"))
        self.assertGreater(duration_s(nats["idle_timeout"][0]), 120)  # server pings every 2m

        kafka = effective(os.path.join(EXAMPLES, "kafka-bootstrap.ini"))["kafka-bootstrap"]
        self.assertEqual(kafka["health_check"], ["kafka"])
        with open(os.path.join(EXAMPLES, "kafka-bootstrap.ini")) as f:
            self.assertIn("advertised.listeners", f.read())

    def test_keepalived_example_tracks_health(self):
        with open(os.path.join(EXAMPLES, "keepalived.conf")) as f:
            text = f.read()
        self.assertRegex(text, r'script "[^"]*curl -fsS --max-time 1 [^"]*'
                               r'http://127\.0\.0\.1:9000/health"')
        self.assertIn("track_script", text)
        self.assertRegex(text, r"192\.0\.2\.\d+/24")     # documentation range
        self.assertEqual(text.count("{"), text.count("}"))


@unittest.skipUnless(shutil.which("groff"), "groff not installed")
class ManPages(unittest.TestCase):
    def test_render_without_warnings(self):
        for page in ("mqlb.8", "mqlb.ini.5"):
            with self.subTest(page=page):
                path = os.path.join(ROOT, "man", page)
                r = subprocess.run(["groff", "-man", "-ww", "-z", path],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 0)
                self.assertEqual(r.stderr, "")
                r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", path],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(r.stderr, "")
                text = re.sub(".\b", "", r.stdout)      # bold and underline
                for section in ("NAME", "SYNOPSIS" if page == "mqlb.8" else "BALANCING",
                                "SEE ALSO"):
                    self.assertIn("\n" + section + "\n", text)


@unittest.skipUnless(shutil.which("make"), "make not installed")
class BuildTree(unittest.TestCase):
    def test_a_build_dir_made_beforehand_still_gets_its_tests_dir(self):
        # .ci/run once made build/ for its logs before the first compile:
        # the test objects waited only for build/, and the compiler could
        # not write build/tests/*.d. A dry run says which steps would run.
        with tempfile.TemporaryDirectory() as d:
            build = os.path.join(d, "build")
            os.mkdir(build)
            obj = os.path.join(build, "tests", "test_acl.o")
            r = subprocess.run(["make", "-n", "-C", ROOT, "BUILD=" + build, obj],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            lines = r.stdout.splitlines()
            mkdir = [i for i, ln in enumerate(lines)
                     if ln.startswith("mkdir -p ") and ln.endswith(os.path.join(build, "tests"))]
            compile_ = [i for i, ln in enumerate(lines) if " -o " + obj + " " in ln]
            self.assertTrue(mkdir and compile_ and mkdir[0] < compile_[0], r.stdout)


class FuzzReplay(unittest.TestCase):
    """make fuzz-replay (tests/fuzz/run.sh 0): every seed and regression
    input goes to its target once, and one the target fails fails the run."""

    def replay(self, bindir, *targets):
        return subprocess.run([os.path.join(ROOT, "tests", "fuzz", "run.sh"), "0"]
                              + list(targets), capture_output=True, text=True,
                              timeout=120, env=dict(os.environ, FUZZ_BIN_DIR=bindir))

    def test_a_failing_input_fails_the_replay(self):
        seeds = os.listdir(os.path.join(ROOT, "tests", "fuzz", "corpus", "fuzz_admin"))
        with tempfile.TemporaryDirectory() as d:
            target = os.path.join(d, "fuzz_admin")
            with open(target, "w") as f:       # a target that rejects one seed
                f.write("#!/bin/sh\necho \"$#\" > %s/count\n"
                        "case \"$*\" in *%s*) echo rejected; exit 1;; esac\n"
                        % (d, seeds[0]))
            os.chmod(target, 0o755)
            r = self.replay(d, "fuzz_admin")
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertIn("fuzz: fuzz_admin: an input fails", r.stdout)
            self.assertIn("rejected", r.stdout)
            with open(os.path.join(d, "count")) as f:
                self.assertEqual(int(f.read()), len(seeds), "every seed, once")

    @unittest.skipUnless(shutil.which("cc"), "cc not installed")
    def test_a_read_past_the_input_is_the_sanitizers_to_report(self):
        """replay.c gives the target a buffer of exactly the input's size,
        as libFuzzer does, so AddressSanitizer sees a read past its end."""
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "overread.c"), "w") as f:
                f.write("#include <stddef.h>\n#include <stdint.h>\n"
                        "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\n"
                        "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)\n"
                        "{ return d[n] == 0x7f; }\n")
            with open(os.path.join(d, "input"), "wb") as f:
                f.write(b"abc")
            target = os.path.join(d, "overread")
            subprocess.run(["cc", "-O0", "-g", "-fsanitize=address", "-o", target,
                            os.path.join(ROOT, "tests", "fuzz", "replay.c"),
                            os.path.join(d, "overread.c")], check=True, timeout=120)
            r = subprocess.run([target, os.path.join(d, "input")], capture_output=True,
                               text=True, timeout=60)
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertIn("heap-buffer-overflow", r.stderr)

    def test_the_builds_targets_replay_their_seeds(self):
        bindir = os.path.join(os.path.dirname(MQLB_BIN), "fuzz")
        if not os.path.exists(os.path.join(bindir, "fuzz_admin")):
            self.skipTest("the fuzz replays of this build are not built")
        r = self.replay(bindir, "fuzz_admin", "fuzz_clienthello")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"fuzz: fuzz_clienthello: replayed [1-9]\d* input")
        missing = subprocess.run([os.path.join(bindir, "fuzz_admin"), "/nonexistent"],
                                 capture_output=True, text=True, timeout=30)
        self.assertEqual(missing.returncode, 1, "an unreadable input fails the target")


@unittest.skipUnless(shutil.which("make"), "make not installed")
class Install(unittest.TestCase):
    def make(self, *args):
        # BIN and -o: install the binary under test, never rebuild it here
        r = subprocess.run(["make", "-s", "-C", ROOT, "BIN=" + MQLB_BIN, "-o", MQLB_BIN]
                           + list(args), capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def test_install_tree_unit_paths_config_kept_and_uninstall(self):
        dest = tempfile.mkdtemp(prefix="mqlb-install-")
        try:
            dirs = ["DESTDIR=" + dest, "PREFIX=/usr", "sysconfdir=/etc",
                    "systemdunitdir=/lib/systemd/system"]
            self.make("install", *dirs)
            files = sorted(os.path.relpath(os.path.join(d, f), dest)
                           for d, _, fs in os.walk(dest) for f in fs)
            for want in ("usr/sbin/mqlb", "etc/mqlb/mqlb.ini",
                         "lib/systemd/system/mqlb.service",
                         "usr/share/man/man8/mqlb.8", "usr/share/man/man5/mqlb.ini.5",
                         "usr/share/doc/mqlb/examples/rabbitmq.ini",
                         "usr/share/doc/mqlb/examples/keepalived.conf"):
                self.assertIn(want, files)
            self.assertTrue(os.access(os.path.join(dest, "usr/sbin/mqlb"), os.X_OK))
            with open(os.path.join(dest, "lib/systemd/system/mqlb.service")) as f:
                unit = f.read()
            self.assertIn("ExecStartPre=/usr/sbin/mqlb -t -c /etc/mqlb/mqlb.ini", unit)
            self.assertIn("ExecStart=/usr/sbin/mqlb -c /etc/mqlb/mqlb.ini", unit)
            for line in unit.splitlines():
                if not line.startswith("#"):
                    self.assertNotIn("/usr/local", line)
            r = subprocess.run([os.path.join(dest, "usr/sbin/mqlb"), "-t", "-c",
                                os.path.join(dest, "etc/mqlb/mqlb.ini")],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)

            # a second install keeps the user's config
            conf = os.path.join(dest, "etc/mqlb/mqlb.ini")
            with open(conf, "a") as f:
                f.write("; edited by the user\n")
            self.make("install", *dirs)
            with open(conf) as f:
                self.assertIn("edited by the user", f.read())

            # uninstall removes what was installed and keeps the edited config
            self.make("uninstall", *dirs)
            left = sorted(os.path.relpath(os.path.join(d, f), dest)
                          for d, _, fs in os.walk(dest) for f in fs)
            self.assertEqual(left, ["etc/mqlb/mqlb.ini"])
        finally:
            shutil.rmtree(dest, ignore_errors=True)


@unittest.skipUnless(shutil.which("make"), "make not installed")
class InstallPrefixUsr(unittest.TestCase):
    def test_man_pages_and_unit_name_the_installed_paths(self):
        dest = tempfile.mkdtemp(prefix="mqlb-install-")
        try:
            r = subprocess.run(["make", "-s", "-C", ROOT, "BIN=" + MQLB_BIN, "-o", MQLB_BIN,
                                "install", "DESTDIR=" + dest, "PREFIX=/usr"],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertTrue(os.path.exists(os.path.join(dest, "etc/mqlb/mqlb.ini")),
                            "PREFIX=/usr puts the config in /etc")
            pages = {p: os.path.join(dest, "usr/share/man", p)
                     for p in ("man8/mqlb.8", "man5/mqlb.ini.5")}
            unit = os.path.join(dest, "usr/lib/systemd/system/mqlb.service")
            for name, path in list(pages.items()) + [("unit", unit)]:
                with open(path) as f:
                    text = f.read()
                with self.subTest(file=name):
                    self.assertNotIn("/usr/local", text)
            with open(pages["man8/mqlb.8"]) as f:
                man8 = f.read()
            self.assertIn("/etc/mqlb/mqlb.ini", man8)
            self.assertIn("/usr/lib/systemd/system/mqlb.service", man8)
            self.assertIn("/usr/share/doc/mqlb/examples/", man8)
            with open(pages["man5/mqlb.ini.5"]) as f:
                self.assertIn("/usr/share/doc/mqlb/examples/", f.read())
            if shutil.which("groff"):
                for path in pages.values():
                    r = subprocess.run(["groff", "-man", "-ww", "-z", path],
                                       capture_output=True, text=True, timeout=30)
                    self.assertEqual(r.stderr, "")
        finally:
            shutil.rmtree(dest, ignore_errors=True)


class StandAloneDocs(unittest.TestCase):
    def test_readme_and_man_pages_point_nowhere_users_cannot_go(self):
        for rel in ("README.md", "man/mqlb.8", "man/mqlb.ini.5", "etc/mqlb.ini"):
            with open(os.path.join(ROOT, rel)) as f:
                text = f.read()
            with self.subTest(file=rel):
                self.assertNotIn("SPEC.md", text)
                self.assertNotRegex(text, r"shared folder|\.\./shared")


if __name__ == "__main__":
    unittest.main()
