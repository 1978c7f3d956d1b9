"""A real fstests tree on this machine, run by kfleet as a new user would: built once from the
snapshot in ../shared/suites (or $KFLEET_SUITES_DIR) into /var/cache/kfleet/suites/<sha256 of the
tarball>/, its users made, then a short list of quick tests on XFS over loop devices that kfleet
provides (no devices in the job), on a host chosen by its labels, with an expunge list from the
controller. Per-test results, failed tests' times, live logs and stored files are checked; then a
comparison: the list twice on the same kernel, and once against a copy of the tree where one test's
golden output was changed, and `kctl results compare` names exactly that test as a regression.

Needs root, the loop driver and fstests' build dependencies (scripts/lib.sh installs them)."""
import fcntl
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import unittest
import xml.etree.ElementTree as ET

import harness

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITES_DIRS = [d for d in (os.environ.get("KFLEET_SUITES_DIR"),
                           os.path.join(os.path.dirname(REPO), "shared", "suites")) if d]
CACHE = "/var/cache/kfleet/suites"
USERS = ("fsgqa", "fsgqa2", "123456-fsgqa")
# Quick tests that pass on XFS over loop devices; generic/006 is expunged by the controller.
TESTS = ["generic/001", "generic/002", "generic/005", "xfs/008", "generic/006"]
EXPUNGED = "generic/006"
BROKEN = "generic/002"  # its golden output is changed in the copy of the tree
SECTION = "xfs"
KERNEL_KEY = "kfleet-real"  # the expunge list's kernel directory


def find_tarball():
    for d in SUITES_DIRS:
        found = sorted(glob.glob(os.path.join(d, "fstests-*.tar.gz")))
        if found:
            return found[0]
    return None


def missing_prerequisites():
    """Why this machine cannot run the test, or None."""
    if os.geteuid() != 0:
        return "needs root (loop devices, mounts, fstests' users)"
    if not os.path.exists("/dev/loop-control"):
        return "no /dev/loop-control: load the loop driver (modprobe loop)"
    for tool in ("make", "gcc", "mkfs.xfs", "xfs_io", "autoreconf", "libtoolize"):
        if shutil.which(tool) is None:
            return (f"{tool} is missing: install fstests' build dependencies "
                    f"(source scripts/lib.sh && kfleet_install_deps)")
    return None


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def built_tree(tarball):
    """The fstests tree built from `tarball`, in the cache keyed by its content; built (make -j2)
    on first use under a lock, reused after. Returns (tree, seconds the build took or None)."""
    key = sha256_of(tarball)
    top = os.path.join(CACHE, key)
    tree = os.path.join(top, "fstests")
    marker = os.path.join(top, ".kfleet-built")
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, f"{key}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(marker):
            return tree, None
        started = time.monotonic()
        work = f"{top}.tmp"
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        subprocess.run(["tar", "-xzf", tarball, "-C", work], check=True)
        make = subprocess.run(["make", "-j2"], cwd=os.path.join(work, "fstests"),
                              capture_output=True, text=True)
        if make.returncode != 0:
            raise AssertionError(f"make of fstests from {tarball} failed:\n"
                                 f"{make.stdout[-3000:]}\n{make.stderr[-3000:]}")
        with open(os.path.join(work, ".kfleet-built"), "w") as f:
            f.write(f"{tarball}\n")
        shutil.rmtree(top, ignore_errors=True)
        os.rename(work, top)
        return tree, time.monotonic() - started


def ensure_users():
    for user in USERS:
        if subprocess.run(["id", user], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "-m", user], check=True, capture_output=True)


def loops_backed_under(directory):
    """Loop devices whose backing file lies under `directory`."""
    out = subprocess.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], capture_output=True,
                         text=True).stdout
    return [line for line in out.splitlines()
            if len(line.split()) > 1 and line.split()[1].startswith(directory + "/")]


def duration_ms(result):
    """A stored result's duration (proto JSON leaves out a zero; -1 is "not known")."""
    return int(result.get("duration_ms", 0))


TARBALL = find_tarball()


@unittest.skipIf(TARBALL is None,
                 "no fstests-*.tar.gz in $KFLEET_SUITES_DIR "
                 f"({os.environ.get('KFLEET_SUITES_DIR', 'not set')}) nor in "
                 f"{os.path.join(os.path.dirname(REPO), 'shared', 'suites')}")
class RealFstestsTest(harness.KfleetTestCase):

    @classmethod
    def setUpClass(cls):
        why = missing_prerequisites()
        if why:
            raise unittest.SkipTest(why)
        cls.tree, took = built_tree(TARBALL)
        print(f"\nfstests tree {cls.tree}: "
              + (f"built in {took:.1f}s" if took is not None else "reused from the cache"),
              file=sys.stderr)
        ensure_users()

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def spec(self, name, tree, reruns=0):
        return {
            "name": name,
            "hosts": {"labels": {"fstests": "real"}, "count": 1},
            "steps": [{"test": {
                "suite": "fstests", "section": SECTION, "tests": TESTS, "reruns": reruns,
                "fstests": {"tree": tree, "fstype": "xfs", "loop_size_mib": 2048,
                            "expunge_from": f"{KERNEL_KEY}/xfs"}}}],
        }

    def submit(self, spec, watch_live=False):
        """Runs the job; with watch_live, checks that its log shows check's output while it runs.
        Returns (job id, seconds it took)."""
        path = self.write(f"{spec['name']}.json", json.dumps(spec))
        started = time.monotonic()
        proc = self.kctl_background("run", "-f", path, name=f"kctl-{spec['name']}")
        job_id = self.find_job(spec["name"])
        if watch_live:
            def live():
                job = self.job(job_id)
                commands = job.get("commands", [])
                if not commands or not commands[0].get("id"):
                    return None
                text = self.logs(commands[0]["id"]).decode(errors="replace")
                return (text, job.get("state")) if "RECREATING" in text else None
            text, state = harness.wait_for(live, 120, "check's header in the live log")
            self.assertNotEqual(state, "JOB_DONE", "the log showed check only after the job")
            self.assertIn("a new file system on TEST_DEV: mkfs.xfs -f -q /dev/loop", text)
        self.wait_job_done(job_id, timeout=300)
        proc.wait(30)
        return job_id, time.monotonic() - started

    def results(self, job_id):
        r = self.kctl("results", job_id, output="json")
        self.assertIn(r.rc, (0, 1), r)
        return [x["result"] for x in r.json().get("results", [])]

    def test_real_fstests_and_compare(self):
        """Validates a real fstests run through kfleet on loop devices it provides: each test of
        the list stored once with its status, the expunged one skipped (the host was chosen by
        labels), no loop device left behind; then that two runs on the same kernel compare clean,
        and a run with one test's golden output changed compares as exactly that regression, with
        its time kept (stored, JUnit) and its detail naming the stored .out.bad by run."""
        expunges = os.path.join(self.tmp, "expunges", KERNEL_KEY, "xfs", "unassigned")
        os.makedirs(expunges)
        self.write(os.path.join(expunges, f"{SECTION}.txt"), f"{EXPUNGED} # kfleet test\n")
        self.start_controller()
        self.assertEqual(self.kctl("expunges", "import",
                                   os.path.join(self.tmp, "expunges")).rc, 0)
        self.start_agent("fst-host", labels={"fstests": "real"})
        timings = {}

        base1, timings["baseline 1"] = self.submit(self.spec("fst-base1", self.tree),
                                                   watch_live=True)
        got = self.results(base1)
        by_name = {r["name"]: r for r in got}
        self.assertEqual(sorted(by_name), sorted(TESTS), got)
        self.assertEqual(len(got), len(TESTS), "each test once")
        self.assertEqual(by_name[EXPUNGED]["status"], "TEST_SKIP", by_name[EXPUNGED])
        self.assertEqual(by_name[EXPUNGED].get("detail"), "expunged")
        for name in TESTS:
            if name == EXPUNGED:
                continue
            self.assertEqual(by_name[name]["status"], "TEST_PASS", by_name[name])
            self.assertGreaterEqual(duration_ms(by_name[name]), 0, by_name[name])
        self.assertEqual(loops_backed_under(self.tmp), [], "loop devices left attached")

        base2, timings["baseline 2"] = self.submit(self.spec("fst-base2", self.tree))
        same = self.kctl("results", "compare", base1, base2)
        self.assertEqual(same.rc, 0, same)
        self.assertEqual(self.kinds(same.stdout), {}, same.stdout)

        broken_tree = os.path.join(self.tmp, "fstests-broken")
        subprocess.run(["cp", "-a", self.tree, broken_tree], check=True)
        with open(os.path.join(broken_tree, "tests", f"{BROKEN}.out"), "a") as f:
            f.write("a line kfleet's test added to the golden output\n")
        broken, timings["broken (1 re-run)"] = self.submit(
            self.spec("fst-broken", broken_tree, reruns=1))
        got = self.results(broken)
        failed = [r for r in got if r["status"] != "TEST_PASS" and r["status"] != "TEST_SKIP"]
        self.assertEqual(sorted((r["name"], int(r.get("run", 1))) for r in failed),
                         [(BROKEN, 1), (BROKEN, 2)], got)
        for r in failed:
            self.assertEqual(r["status"], "TEST_FAIL", r)
            self.assertGreaterEqual(duration_ms(r), 0, f"a failed test's time was lost: {r}")
            name = f"run{int(r.get('run', 1))}+{SECTION}+{BROKEN.replace('/', '+')}.out.bad"
            self.assertIn(f"(see artifact {name}: kctl artifacts get c-", r["detail"])
            self.assertNotIn(os.path.join(self.tmp, "agent-fst-host"), r["detail"],
                             "the detail names the agent's work directory")
        artifacts = self.kctl_json("artifacts", broken)["artifacts"]
        names = [a["artifact"]["name"] for a in artifacts]
        self.assertEqual(len(names), len(set(names)), f"artifact names repeat: {names}")
        self.assertEqual(sum(n.endswith("check.log") for n in names), 2, names)  # one per run
        detail = failed[0]["detail"]
        fetch = detail[detail.index("kctl artifacts get "):].split(")")[0].split()
        got_file = self.kctl(*fetch[1:], "-O", os.path.join(self.tmp, "out.bad"))
        self.assertEqual(got_file.rc, 0, got_file)
        with open(os.path.join(self.tmp, "out.bad")) as f:
            self.assertIn(f"QA output created by {BROKEN.split('/')[1]}", f.read())

        junit = os.path.join(self.tmp, "broken.xml")
        self.assertEqual(self.kctl("results", broken, "--junit", junit).rc, 1)
        cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
        first = next(r for r in failed if int(r.get("run", 1)) == 1)
        self.assertEqual(cases[BROKEN].get("time"), f"{duration_ms(first) / 1000:.3f}")

        compare = self.kctl("results", "compare", base1, broken)
        self.assertEqual(compare.rc, 1, compare)
        kinds = self.kinds(compare.stdout)
        self.assertEqual(list(kinds), ["REGRESSION"], compare.stdout)
        self.assertEqual(len(kinds["REGRESSION"]), 1, compare.stdout)
        self.assertIn(BROKEN, kinds["REGRESSION"][0])
        print("\nfstests runs: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()),
              file=sys.stderr)

    def test_check_error_leads(self):
        """Validates that when check cannot start (a TEST_DEV given with no file system on it),
        the command's detail starts with check's own error, the failed mount, and says nothing
        of a missing result.xml."""
        image = os.path.join(self.tmp, "blank.img")
        with open(image, "wb") as f:
            f.truncate(512 << 20)
        dev = subprocess.run(["losetup", "-f", "--show", image], check=True, capture_output=True,
                             text=True).stdout.strip()
        self.addCleanup(subprocess.run, ["losetup", "-d", dev], capture_output=True)
        self.start_controller()
        self.start_agent("fst-host", labels={"fstests": "real"})
        spec = self.spec("fst-blank", self.tree)
        spec["steps"][0]["test"]["fstests"]["config"] = {"TEST_DEV": dev}
        spec["steps"][0]["test"]["tests"] = ["generic/001"]
        job_id, took = self.submit(spec)
        command = self.job(job_id)["commands"][0]
        detail = command["result"]["detail"]
        self.assertEqual(command["result"]["verdict"], "INFRA_ERROR", command)
        self.assertTrue(detail.startswith("fstests check stopped before its first test"), detail)
        self.assertIn(f"could not mount {dev}", detail)
        self.assertNotIn("-R xunit", detail)
        self.assertNotIn("expunge list", detail)
        print(f"\ncheck on a blank TEST_DEV: stopped in {took:.1f}s", file=sys.stderr)

    @staticmethod
    def kinds(text):
        """The comparison's lines by their kind (REGRESSION, FIXED, ...)."""
        named = {}
        for line in text.splitlines():
            for kind in ("REGRESSION", "FIXED", "FLAKY", "STILL_FAILING", "NEW_TEST", "NOT_RUN"):
                if line.startswith(kind):
                    named.setdefault(kind, []).append(line)
        return named


if __name__ == "__main__":
    unittest.main()
