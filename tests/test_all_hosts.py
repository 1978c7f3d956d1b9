"""`kctl exec --all` runs on test hosts: the controller's local builder (role=builder, on the
controller's own machine) is left out unless named or selected by label, and `kctl hosts` marks
it."""

import unittest

import harness

BUILDER = "local-builder"
TEST_HOST = "all-test-1"


class AllHostsTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        # The harness turns the local builder off unless told otherwise.
        self.start_controller(extra_args=["--local-builder"])
        self.wait_host_state(BUILDER, "ONLINE", timeout=30)

    def exec_hosts(self, job_name):
        """The names of the hosts the job's commands ran on, sorted."""
        job = self.job(self.find_job(job_name))
        return sorted(c["host_name"] for c in job["commands"])

    def test_all_with_only_the_builder_online_says_how_to_target_it(self):
        """Validates that --all with only the builder online is refused (exit 2), saying that
        builders are left out and how to run on one."""
        r = self.kctl("exec", "--all", "--", "hostname")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("no test host is online", r.stderr)
        self.assertIn("leaves out builders", r.stderr)
        self.assertIn(f"--host {BUILDER}", r.stderr)
        self.assertIn("-l role=builder", r.stderr)
        self.assertEqual(self.kctl_json("jobs").get("jobs", []), [], "no job may be created")

    def test_all_runs_on_test_hosts_only(self):
        """Validates that --all runs on the ordinary agent only, while --host local-builder and
        -l role=builder still reach the builder."""
        self.start_agent(TEST_HOST)

        r = self.kctl("exec", "--all", "--name", "all", "--", "hostname")
        self.assertEqual(r.rc, harness.EXIT_PASS, r)
        self.assertEqual(self.exec_hosts("all"), [TEST_HOST])
        self.assertEqual([line.split(" | ")[0] for line in r.stdout.splitlines()], [TEST_HOST], r)
        self.assertNotIn(BUILDER, r.stdout + r.stderr)

        r = self.kctl("exec", "--host", BUILDER, "--name", "named", "--", "hostname")
        self.assertEqual(r.rc, harness.EXIT_PASS, r)
        self.assertEqual(self.exec_hosts("named"), [BUILDER])

        r = self.kctl("exec", "-l", "role=builder", "--name", "labelled", "--", "true")
        self.assertEqual(r.rc, harness.EXIT_PASS, r)
        self.assertEqual(self.exec_hosts("labelled"), [BUILDER])

    def test_hosts_marks_the_builder(self):
        """Validates that kctl hosts marks the builder: "builder": true in JSON, KIND in the
        table."""
        self.start_agent(TEST_HOST)
        hosts = {h["name"]: h for h in self.hosts()}
        self.assertEqual(sorted(hosts), sorted([BUILDER, TEST_HOST]))
        self.assertIs(hosts[BUILDER].get("builder"), True, hosts[BUILDER])
        self.assertNotIn("builder", hosts[TEST_HOST])

        table = self.kctl("hosts")
        self.assertEqual(table.rc, 0, table)
        self.assertRegex(table.stdout, r"(?m)^NAME\s+STATE\s+KIND\s")
        self.assertRegex(table.stdout, rf"(?m)^{BUILDER}\s+online\s+builder\s")
        self.assertRegex(table.stdout, rf"(?m)^{TEST_HOST}\s+online\s+test\s")


if __name__ == "__main__":
    unittest.main()
