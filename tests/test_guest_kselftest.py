"""kselftest in a `tiny` guest: the job's kernel from Debian's linux-source-6.1 is built once on the
controller's local builder together with the kselftest collection the job runs (`size`), booted in
the guest, and the collection runs there from the build's kselftest archive; its TAP results are
stored per test and shown by `kctl results`.

The builder's build directories are shared with test_kernel.py (/var/cache/kfleet/kernel-work):
after that test, the kernel itself is not built again, only the kselftests."""
import json
import os
import sys
import time
import unittest

import harness

class GuestKselftestTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        self.tree = self.start_kernel_controller()

    def test_kselftest_from_the_jobs_build_in_a_guest(self):
        """Validates that a job with kernel_build, kernel_install, reboot and a kselftest step
        builds the `size` collection with the kernel, boots the guest into that kernel, runs the
        collection there from the build's kselftest.tar.gz, and stores `size:get_size` as a pass
        on the built kernel (its release and build identity)."""
        started = time.time()
        spec = {
            "name": "guest-kselftest",
            "hosts": {"labels": {"pool": "local"}, "count": 1},
            "kernel": {"tree": self.tree},
            "steps": [
                {"kernel_build": {}},
                {"kernel_install": {}},
                {"reboot": {"timeout": "3m"}},
                {"test": {"suite": "kselftest", "section": "guest",
                          "kselftest": {"targets": ["size"]}, "reruns": 0}},
            ],
        }
        path = os.path.join(self.tmp, "job.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        r = self.kctl("run", "-f", path, timeout=3600)
        job_id = self.find_job("guest-kselftest")
        self.assertEqual(r.rc, 0, r)
        job = self.job(job_id)
        names = [a["name"] for a in job["build"]["artifacts"]]
        self.assertTrue(any(a["kind"] == "kselftest" for a in job["build"]["artifacts"]), names)
        results = self.kctl_json("results", job_id)["results"]
        by_name = {x["result"]["name"]: x for x in results}
        self.assertIn("size:get_size", by_name, json.dumps(results)[:2000])
        rec = by_name["size:get_size"]
        self.assertEqual(rec["result"]["status"], "TEST_PASS")
        self.assertEqual(rec["kernel_release"], job["build"]["release"])
        self.assertEqual(rec["build"], job["build"]["identity"])
        self.assertEqual(rec["host_name"], "local-1")
        shown = self.kctl("results", job_id)
        self.assertEqual(shown.rc, 0, shown)
        self.assertIn("kselftest", shown.stdout)
        print(f"\nkselftest job in a tiny guest: {time.time() - started:.0f}s end to end",
              file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
