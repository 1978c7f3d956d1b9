"""kselftest collections of linux-source-6.1 run in tree mode by an agent on this machine: the
verdicts and counts kfleet stores agree with what kselftest printed, test by test, and a re-run of
a subtest's name runs the test that prints it."""
import json
import os
import re
import unittest

import harness

# Collections that build from the tree and run in a few seconds here, without reboots, modules
# or network beyond loopback. timers runs by name: its whole collection takes minutes here, as
# rseq's run_param_test.sh does, so rseq is left out.
COLLECTIONS = ["size", "kcmp", "mincore", "futex", "core", "membarrier", "nsfs", "pid_namespace",
               "sigaltstack", "sync", "tmpfs", "timens", "ipc", "splice", "mount", "proc", "vDSO"]
TIMERS = ["timers:nanosleep"]
# Scripts that call programs built beside them: they find them only where the tests are installed
# (make run_tests with O= runs them from the source tree, where they exit 127). Each test of these
# must pass, or skip as kselftest says: splice's short_splice_read.sh exits 4, kselftest's skip,
# on a kernel without modules (4 of its checks need /proc/sys/kernel/modprobe and test_module).
BUILT_BESIDE = {"futex:run.sh", "mount:run_unprivileged_remount.sh", "mount:run_nosymfollow.sh",
                "splice:default_file_splice_read.sh", "splice:short_splice_read.sh"}

HEADER = re.compile(r"^# selftests: (\S+): (.+)$")
VERDICT = re.compile(r"^(not )?ok \d+ selftests: (\S+): (.+?)( # (\S+).*)?$")
TOTALS = re.compile(r"^# # Totals: pass:(\d+) fail:(\d+) xfail:(\d+) xpass:(\d+) skip:(\d+) "
                    r"error:(\d+)")
NESTED = re.compile(r"^# (not )?ok \d+")


def printed_by_kselftest(tap):
    """What the runner printed about each test of a run_kselftest.sh log, read without kfleet:
    name -> {verdict, totals (None, or the sum of the Totals lines in its output: a script that
    runs several programs, as futex's run.sh does, prints one per program), test_lines (its TAP
    test lines), output (its lines)}."""
    tests = {}
    current = {"totals": None, "test_lines": 0, "output": []}
    for line in tap.splitlines():
        m = HEADER.match(line)
        if m:
            current = {"totals": None, "test_lines": 0, "output": []}
            continue
        m = VERDICT.match(line)
        if m:
            verdict = "FAIL" if m.group(1) else "SKIP" if m.group(5) == "SKIP" else "PASS"
            tests[f"{m.group(2)}:{m.group(3)}"] = dict(current, verdict=verdict)
            current = {"totals": None, "test_lines": 0, "output": []}
            continue
        current["output"].append(line)
        m = TOTALS.match(line)
        if m:
            keys = ("pass", "fail", "xfail", "xpass", "skip", "error")
            totals = current["totals"] or dict.fromkeys(keys, 0)
            current["totals"] = {k: totals[k] + int(g) for k, g in zip(keys, m.groups())}
        elif NESTED.match(line):
            current["test_lines"] += 1
    return tests


class KselftestCollectionsTest(harness.KfleetTestCase):

    def run_job(self, spec, timeout=120):
        """Submits a job spec with `kctl run -f`; returns (kctl result, job id)."""
        path = os.path.join(self.tmp, f"{spec['name']}.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        r = self.kctl("run", "-f", path, timeout=timeout)
        return r, self.find_job(spec["name"])

    def stored(self, job_id):
        """The job's stored results: name -> status ("PASS", "FAIL", ...)."""
        r = self.kctl("results", job_id, output="json")
        self.assertIn(r.rc, (0, 1), r)
        return {x["result"]["name"]: x["result"]["status"].removeprefix("TEST_")
                for x in r.json()["results"]}

    def tap_of(self, job_id):
        """The raw TAP of the job's kselftest step, from its kselftest.tap artifact."""
        dest = os.path.join(self.tmp, f"{job_id}.tap")
        g = self.kctl("artifacts", "get", job_id, "kselftest.tap", "-O", dest)
        self.assertEqual(g.rc, 0, g)
        with open(dest, encoding="utf-8", errors="replace") as f:
            return f.read()

    def assert_agrees(self, stored, printed):
        """Stored results against printed_by_kselftest(): the same tests with the runner's
        verdicts; subtests only where the output had TAP test lines, none failed under a test the
        runner passed, and as many of each kind as the test's Totals lines count."""
        tests = {n: s for n, s in stored.items() if "/" not in n.split(":", 1)[-1]}
        self.assertEqual(tests, {n: p["verdict"] for n, p in printed.items()})
        for name, p in printed.items():
            with self.subTest(test=name):
                subs = [s for n, s in stored.items() if n.startswith(name + "/")]
                if p["test_lines"] == 0:
                    self.assertEqual(subs, [])
                    continue
                if p["verdict"] != "FAIL":
                    self.assertNotIn("FAIL", subs)
                    self.assertNotIn("ERROR", subs)
                t = p["totals"]
                if t is None:
                    continue
                self.assertEqual(subs.count("PASS"), t["pass"] + t["xfail"])
                self.assertEqual(subs.count("SKIP"), t["skip"])
                if p["verdict"] == "FAIL":
                    self.assertEqual(subs.count("FAIL"), t["fail"] + t["xpass"])
                    self.assertEqual(subs.count("ERROR"), t["error"])

    def test_collections_agree_with_kselftest(self):
        """Validates that a tree-mode step over many collections stores, for every test the
        runner ran, the runner's own verdict (a test that announces a plan and reports in another
        form, as kcmp_test does, passes without errors), and subtests that count as the test's
        own Totals lines; that the step's counts are those verdicts; and that a re-run of a
        subtest's name (kcmp:kcmp_test/#1) and of named timers tests runs those tests. Scripts
        that call programs built beside them (futex, mount, splice) find them."""
        tree = harness.kernel_source()
        self.start_controller()
        self.start_agent("kst-host")
        r, job_id = self.run_job({
            "name": "kst-collections",
            "hosts": {"names": ["kst-host"]},
            "steps": [{"test": {"suite": "kselftest", "section": "collections", "reruns": 0,
                                "kselftest": {"tree": tree, "targets": COLLECTIONS}}}],
        }, timeout=600)
        stored = self.stored(job_id)
        printed = printed_by_kselftest(self.tap_of(job_id))
        self.assertEqual({n.split(":")[0] for n in printed}, set(COLLECTIONS))
        # Enough to compare: dozens of tests, many with TAP subtests of their own.
        self.assertGreaterEqual(len(printed), 30)
        self.assertGreaterEqual(sum(1 for p in printed.values() if p["test_lines"]), 10)
        self.assertEqual(stored.get("kcmp:kcmp_test"), "PASS", stored)
        beside = {n: s for n, s in stored.items() if n in BUILT_BESIDE}
        self.assertEqual(set(beside), BUILT_BESIDE, stored)
        # Each found and ran its programs (run from the source tree, they were "not found"). The
        # mount tests' verdicts are the host's: they need user namespaces, which Linux refuses to
        # a chrooted process (a CI root made with chroot, say).
        for name in BUILT_BESIDE:
            output = "\n".join(printed[name]["output"])
            self.assertNotRegex(output, r"\./[\w./-]+: (No such file or directory|not found)"
                                        r"|command not found", name)
        self.assertEqual(beside["futex:run.sh"], "PASS", beside)
        self.assertEqual(beside["splice:default_file_splice_read.sh"], "PASS", beside)
        self.assert_agrees(stored, printed)
        failed = [n for n, s in stored.items() if s in ("FAIL", "ERROR")]
        self.assertEqual(r.rc, 1 if failed else 0, r)
        if failed:
            self.assertIn(f"{len(failed)} of {len(stored)} tests failed", r.stdout, r)

        r, job_id = self.run_job({
            "name": "kst-by-name",
            "hosts": {"names": ["kst-host"]},
            "steps": [{"test": {"suite": "kselftest", "section": "by-name", "reruns": 0,
                                "tests": ["kcmp:kcmp_test/#1"] + TIMERS,
                                "kselftest": {"tree": tree}}}],
        }, timeout=600)
        self.assertNotIn("No such test", r.stdout + r.stderr)
        stored = self.stored(job_id)
        printed = printed_by_kselftest(self.tap_of(job_id))
        self.assertEqual(sorted(printed), sorted(["kcmp:kcmp_test"] + TIMERS))
        self.assert_agrees(stored, printed)


if __name__ == "__main__":
    unittest.main()
