"""Test suites and results on this machine: a real kselftest collection from linux-source-6.1 run by
an agent, per-test results stored and shown by `kctl results`; a scripted suite where one test
regresses, one is fixed and one flakes at a known rate, compared by `kctl results compare`; expunge
lists through import and export unchanged; JUnit export; and a sharded step over four agents where
one agent is killed mid-run and no test is lost."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import unittest
import xml.etree.ElementTree as ET

import harness

SCRIPTED = textwrap.dedent("""\
    #!/bin/sh
    # A scripted suite: the test named $1 passes, fails, skips or flakes by $MODE.
    case "$1" in
    t_ok) exit 0 ;;
    t_skip) echo "needs a scratch device" >&2; exit 4 ;;
    t_regress)
        if [ "$MODE" = dev ]; then echo "t_regress: expected 0, got 1" >&2; exit 1; fi
        exit 0 ;;
    t_fixed)
        if [ "$MODE" = baseline ]; then echo "t_fixed: broken on the baseline" >&2; exit 1; fi
        exit 0 ;;
    t_flaky)
        # Fails on its 1st, 4th, 7th... run: a failure rate of 1 in 3.
        n=$(cat "$STATE/flaky.$MODE" 2>/dev/null || echo 0)
        n=$((n + 1))
        echo "$n" > "$STATE/flaky.$MODE"
        if [ $((n % 3)) -eq 1 ]; then echo "t_flaky: lost a race (run $n)" >&2; exit 1; fi
        exit 0 ;;
    esac
    echo "no test $1" >&2
    exit 2
    """)

SLEEPER = textwrap.dedent("""\
    #!/bin/sh
    # A test that takes the seconds its name ends with: t07_0.8 sleeps 0.8 s.
    exec sleep "${1#*_}"
    """)


class SuitesTest(harness.KfleetTestCase):

    def write(self, name, text, mode=0o644):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def results(self, job_id):
        """`kctl -o json results JOB` (exit 1 when a test failed) as a document."""
        r = self.kctl("results", job_id, output="json")
        self.assertIn(r.rc, (0, 1), r)
        return r.json()

    def run_job(self, spec, timeout=120):
        """Submits a job spec with `kctl run -f`; returns (kctl result, job id)."""
        path = self.write(f"{spec['name']}.json", json.dumps(spec))
        r = self.kctl("run", "-f", path, timeout=timeout)
        job_id = self.find_job(spec["name"])
        return r, job_id

    def test_real_kselftest_natively(self):
        """Validates that a kselftest step built from linux-source-6.1's tree runs the `size`
        collection on the agent, that its TAP result `size:get_size` is stored as a pass with a
        duration, that `kctl results` shows it and exits 0, and that the raw TAP is an artifact."""
        tree = harness.kernel_source()
        self.start_controller()
        self.start_agent("kst-host")
        r, job_id = self.run_job({
            "name": "kst-native",
            "hosts": {"names": ["kst-host"]},
            "steps": [{"test": {"suite": "kselftest", "section": "native",
                                "kselftest": {"tree": tree, "targets": ["size"]}}}],
        }, timeout=600)
        self.assertEqual(r.rc, 0, r)
        results = self.kctl_json("results", job_id)
        by_name = {x["result"]["name"]: x["result"] for x in results["results"]}
        self.assertIn("size:get_size", by_name, results)
        got = by_name["size:get_size"]
        self.assertEqual(got["status"], "TEST_PASS")
        self.assertEqual(got["suite"], "kselftest")
        self.assertGreaterEqual(int(got.get("duration_ms", -1)), 0)
        shown = self.kctl("results", job_id)
        self.assertEqual(shown.rc, 0, shown)
        self.assertIn("kselftest", shown.stdout)
        artifacts = self.kctl("artifacts", job_id)
        self.assertEqual(artifacts.rc, 0, artifacts)
        self.assertIn(".tap", artifacts.stdout)

    def test_compare_names_regression_fix_and_flake(self):
        """Validates the comparison of a baseline and a dev run of a scripted suite: the failures
        are re-run on the same host (2 more runs), the report names exactly the regressed, the
        fixed and the flaky test, one line each, the flaky one (failing 1 run in 3) is not called a
        regression, and kctl exits 1 because there is a regression; JUnit export of the dev job is
        well-formed and counts the failures."""
        self.start_controller()
        self.start_agent("tester")
        script = self.write("suite.sh", SCRIPTED, 0o755)
        state = os.path.join(self.tmp, "state")
        os.makedirs(state)
        tests = ["t_ok", "t_skip", "t_regress", "t_fixed", "t_flaky"]
        jobs = {}
        for mode in ("baseline", "dev"):
            r, jobs[mode] = self.run_job({
                "name": f"scripted-{mode}",
                "hosts": {"names": ["tester"]},
                "steps": [{"test": {"suite": "exec", "section": "scripted", "tests": tests,
                                    "argv": [script, "{test}"],
                                    "env": {"MODE": mode, "STATE": state}}}],
            })
            self.assertEqual(r.rc, 1, r)  # failures in the first run: the job failed
            self.assertIn("tests", r.stdout)

        dev = self.results(jobs["dev"])
        runs = {}
        for x in dev["results"]:
            runs.setdefault(x["result"]["name"], []).append(x["result"]["status"])
        self.assertEqual(runs["t_regress"], ["TEST_FAIL"] * 3)
        self.assertEqual(sorted(runs["t_flaky"]), ["TEST_FAIL", "TEST_PASS", "TEST_PASS"])
        self.assertEqual(runs["t_ok"], ["TEST_PASS"])
        self.assertEqual(runs["t_skip"], ["TEST_SKIP"])

        compare = self.kctl("results", "compare", jobs["baseline"], jobs["dev"])
        self.assertEqual(compare.rc, 1, compare)
        lines = compare.stdout.splitlines()
        named = {}
        for line in lines:
            for kind in ("REGRESSION", "FIXED", "FLAKY", "STILL_FAILING", "NEW_TEST", "NOT_RUN"):
                if line.startswith(kind):
                    named.setdefault(kind, []).append(line)
        self.assertEqual(len(named.get("REGRESSION", [])), 1, compare.stdout)
        self.assertIn("t_regress", named["REGRESSION"][0])
        self.assertEqual(len(named.get("FIXED", [])), 1, compare.stdout)
        self.assertIn("t_fixed", named["FIXED"][0])
        self.assertEqual(len(named.get("FLAKY", [])), 1, compare.stdout)
        self.assertIn("t_flaky", named["FLAKY"][0])
        self.assertIn("1/3", named["FLAKY"][0])
        self.assertNotIn("STILL_FAILING", named)
        for quiet in ("t_ok", "t_skip"):
            self.assertFalse(any(quiet in line for v in named.values() for line in v))

        as_json = self.kctl("results", "compare", jobs["baseline"], jobs["dev"], output="json")
        self.assertEqual(as_json.rc, 1, as_json)
        doc = as_json.json()
        self.assertTrue(doc["regression"])
        kinds = {t["name"]: t["kind"] for t in doc["tests"]}
        self.assertEqual(kinds["t_regress"], "REGRESSION")
        self.assertEqual(kinds["t_fixed"], "FIXED")
        self.assertEqual(kinds["t_flaky"], "FLAKY")

        # A job compared with itself has no regression (t_regress fails on both: still failing).
        back = self.kctl("results", "compare", jobs["dev"], jobs["dev"])
        self.assertEqual(back.rc, 0, back)

        junit = os.path.join(self.tmp, "dev.xml")
        r = self.kctl("results", jobs["dev"], "--junit", junit)
        self.assertEqual(r.rc, 1, r)  # the dev job has failures
        root = ET.parse(junit).getroot()
        cases = root.findall(".//testcase")
        self.assertEqual(len(cases), len(tests))
        failed = {c.get("name") for c in cases if c.find("failure") is not None}
        self.assertEqual(failed, {"t_regress", "t_flaky"})
        skipped = {c.get("name") for c in cases if c.find("skipped") is not None}
        self.assertEqual(skipped, {"t_skip"})

    def test_all_skipped_is_nothing_ran(self):
        """Validates that a test step whose tests were all skipped ends NOTHING_RAN, with the count
        and the first skip's reason in the report, and that kctl run, kctl job --watch and kctl
        results exit 10 for it; and that the same step with skips_ok: true passes (exit 0)."""
        exit_nothing_ran = 10  # cli/exit_codes.h kExitNothingRan
        self.start_controller()
        self.start_agent("skipper")
        script = self.write("suite.sh", SCRIPTED, 0o755)
        for skips_ok in (False, True):
            step = {"suite": "exec", "section": "skips", "tests": ["t_skip"],
                    "argv": [script, "{test}"], "reruns": 0}
            if skips_ok:
                step["skips_ok"] = True
            r, job_id = self.run_job({
                "name": f"all-skipped-{skips_ok}".lower(),
                "hosts": {"names": ["skipper"]},
                "steps": [{"test": step}, {"exec": ["true"]}],
            })
            job = self.job(job_id)
            if skips_ok:
                self.assertEqual(r.rc, 0, r)
                self.assertEqual(job["verdict"], "PASS", job)
                continue
            self.assertEqual(r.rc, exit_nothing_ran, r)
            self.assertEqual(job["verdict"], "NOTHING_RAN", job)
            self.assertIn("NOTHING_RAN: nothing ran: 0 passed, 1 skipped (t_skip: skipped "
                          "(exit 4): needs a scratch device)", r.stdout)
            # The later exec step ran all the same.
            steps = sorted((c.get("step_index", 0), c["result"]["verdict"])
                           for c in job["commands"])
            self.assertEqual(steps, [(0, "NOTHING_RAN"), (1, "PASS")], job)
            watched = self.kctl("job", job_id, "--watch")
            self.assertEqual(watched.rc, exit_nothing_ran, watched)
            shown = self.kctl("results", job_id)
            self.assertEqual(shown.rc, exit_nothing_ran, shown)
            self.assertIn("NOTHING_RAN  skipper: nothing ran", shown.stdout)

    def test_expunges_round_trip(self):
        """Validates that kdevops expunge files imported with `kctl expunges import` come back
        byte for byte from `kctl expunges export`, and that a malformed file is refused with its
        file and line and nothing imported."""
        self.start_controller()
        src = os.path.join(self.tmp, "expunges")
        files = {
            "6.1.0-kf/xfs/unassigned/xfs_crc.txt":
                "# kdevops baseline for 6.1\ngeneric/475 # failure rate 3/10\nxfs/076\n\n"
                "generic/388 # bsz#3 crash\n",
            "6.1.0-kf/xfs/unassigned/xfs_reflink.txt": "generic/251\n",
            "6.1.0-kf/ext4/unassigned/ext4_defaults.txt": "ext4/045 # hangs\n",
        }
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
            with open(os.path.join(src, rel), "w") as f:
                f.write(text)
        r = self.kctl("expunges", "import", src)
        self.assertEqual(r.rc, 0, r)
        out = os.path.join(self.tmp, "exported")
        r = self.kctl("expunges", "export", out)
        self.assertEqual(r.rc, 0, r)
        diff = subprocess.run(["diff", "-r", src, out], capture_output=True, text=True)
        self.assertEqual(diff.returncode, 0, diff.stdout + diff.stderr)

        bad = os.path.join(self.tmp, "bad")
        os.makedirs(os.path.join(bad, "6.1.0/xfs/unassigned"))
        with open(os.path.join(bad, "6.1.0/xfs/unassigned/oops.txt"), "w") as f:
            f.write("generic/001\nthis is not a test\n")
        r = self.kctl("expunges", "import", bad)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("oops.txt:2", r.stderr)
        again = os.path.join(self.tmp, "again")
        self.assertEqual(self.kctl("expunges", "export", again).rc, 0)
        diff = subprocess.run(["diff", "-r", src, again], capture_output=True, text=True)
        self.assertEqual(diff.returncode, 0, "a refused import changed the stored lists")

    def test_sharded_step_survives_a_killed_agent(self):
        """Validates that a step of 40 tests with shard: 4 spreads them over four agents, each
        taking its next test when free, and that when one agent is killed mid-run its running test
        is recorded as an error naming what happened while every other test still runs elsewhere:
        40 results, none lost, none run twice."""
        self.start_controller(heartbeat="1s")
        agents = {name: self.start_agent(name, labels={"shard": "yes"})
                  for name in ("s1", "s2", "s3", "s4")}
        sleeper = self.write("sleeper.sh", SLEEPER, 0o755)
        durations = [0.2 + 0.05 * ((i * 7) % 13) for i in range(40)]
        tests = [f"t{i:02d}_{d:.2f}" for i, d in enumerate(durations)]
        spec = {
            "name": "sharded",
            "hosts": {"labels": {"shard": "yes"}, "count": 4},
            "steps": [{"test": {"suite": "exec", "section": "sleepers", "tests": tests,
                                "argv": [sleeper, "{test}"], "shard": 4}}],
        }
        path = self.write("sharded.json", json.dumps(spec))
        self.kctl_background("run", "-f", path, name="kctl-sharded")
        job_id = self.find_job("sharded")

        def some_done():
            done = self.job(job_id).get("tests", {}).get("done", 0)
            return done >= 8
        harness.wait_for(some_done, 60, "8 tests of the sharded step to end")
        victim = agents["s3"]
        victim.kill()  # SIGKILL: no goodbye to the controller
        job = self.wait_job_done(job_id, timeout=120)
        self.assertEqual(job["tests"]["total"], 40)

        results = self.results(job_id)["results"]
        first = [x for x in results if int(x["result"].get("run", 1)) == 1]
        names = [x["result"]["name"] for x in first]
        self.assertEqual(sorted(names), sorted(tests), "each test once, none lost")
        errors = [x for x in first if x["result"]["status"] == "TEST_ERROR"]
        passed = [x for x in first if x["result"]["status"] == "TEST_PASS"]
        self.assertLessEqual(len(errors), 1, errors)
        for e in errors:
            self.assertEqual(e["host_name"], "s3")
            self.assertIn("went offline", e["result"]["detail"])
            self.assertIn("--stream console", e["result"]["detail"])
        self.assertEqual(len(passed) + len(errors), 40)
        print(f"\nsharded: s3 killed; {len(errors)} test(s) recorded as error "
              f"({', '.join(e['result']['name'] for e in errors)}), {len(passed)} passed",
              file=sys.stderr)
        hosts = {x["host_name"] for x in passed}
        self.assertEqual(hosts, {"s1", "s2", "s3", "s4"})
        # After the kill s3 ran nothing more: its last result is at most its error.
        after = [x for x in passed if x["host_name"] == "s3"
                 and int(x["time_unix_ms"]) > int(errors[0]["time_unix_ms"])] if errors else []
        self.assertEqual(after, [])


if __name__ == "__main__":
    unittest.main()
