"""Agents register with the controller and kctl exec runs a command on all of them."""

import os
import unittest

import harness

HOSTS = ("reg-a", "reg-b", "reg-c")


class RegistrationTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        self.start_controller()
        for i, name in enumerate(HOSTS):
            self.start_agent(name, labels={"pool": "it", "idx": str(i)}, wait_online=False)
        for name in HOSTS:
            self.wait_host_state(name, "ONLINE")

    def test_three_agents_online(self):
        """Validates that three agents register and kctl hosts shows them online with labels."""
        hosts = {h["name"]: h for h in self.hosts()}
        self.assertEqual(sorted(hosts), sorted(HOSTS))
        for i, name in enumerate(HOSTS):
            self.assertEqual(hosts[name]["state"], "ONLINE")
            self.assertEqual(hosts[name]["labels"], {"pool": "it", "idx": str(i)})
            self.assertEqual(hosts[name]["facts"]["kernel_release"], os.uname().release)
        table = self.kctl("hosts")
        self.assertEqual(table.rc, 0, table)
        for name in HOSTS:
            self.assertRegex(table.stdout, rf"(?m)^{name}\s+online\b")

    def test_exec_all_prints_one_line_per_host(self):
        """Validates that kctl exec --all -- uname -r prints one "host | release" line per host."""
        r = self.kctl("exec", "--all", "--", "uname", "-r")
        self.assertEqual(r.rc, harness.EXIT_PASS, r)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), len(HOSTS), r)
        self.assertEqual(sorted(lines), sorted(f"{h} | {os.uname().release}" for h in HOSTS))

    def test_failing_command_gives_fail(self):
        """Validates that a command exiting non-zero makes kctl exec exit 1 and the job FAIL."""
        r = self.kctl("exec", "--all", "--name", "it-fail", "--", "sh", "-c", "exit 3")
        self.assertEqual(r.rc, harness.EXIT_FAIL, r)
        job = self.job(self.find_job("it-fail"))
        self.assertEqual(job["state"], "JOB_DONE")
        self.assertEqual(job["verdict"], "FAIL")
        self.assertEqual(len(job["commands"]), len(HOSTS))
        for command in job["commands"]:
            self.assertEqual(command["result"]["verdict"], "FAIL")
            self.assertEqual(command["result"]["exit_code"], 3)

    def test_unreachable_controller(self):
        """Validates that kctl exits 3 naming the address and --controller when nothing listens."""
        address = f"127.0.0.1:{harness.free_port()}"
        r = self.kctl("exec", "--all", "--", "uname", "-r", address=address, timeout=30)
        self.assertEqual(r.rc, harness.EXIT_UNREACHABLE, r)
        self.assertIn(address, r.stderr)
        self.assertIn("--controller", r.stderr)


if __name__ == "__main__":
    unittest.main()
