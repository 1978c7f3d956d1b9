"""Cancel and timeout end a command's whole process tree."""

import time
import unittest

import harness

# Two background grandchildren and the shell, each printing its pid.
TREE = "sleep 1000 & echo $!; sleep 1000 & echo $!; echo $$; wait"
KILL_GRACE_S = 2


class CancelTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        self.start_controller()
        self.start_agent("victim", kill_grace=f"{KILL_GRACE_S}s")

    def start_tree(self, job_name, script):
        """Runs script on the host in the background; returns (kctl process, job id, its pids)."""
        kctl = self.kctl_background("exec", "--host", "victim", "--name", job_name, "--",
                                    "sh", "-c", script, name=f"kctl-{job_name}")
        job_id = self.find_job(job_name)

        def pids():
            (command,) = self.job(job_id)["commands"]
            if command.get("state") != "COMMAND_RUNNING":
                return None
            lines = self.logs(command["id"]).decode().splitlines()
            return [int(x) for x in lines] if len(lines) == 3 else None

        pids = harness.wait_for(pids, 20, f"job {job_name} to print its three pids")
        self.adopt_pid(*pids)
        for pid in pids:
            self.assertTrue(harness.pid_alive(pid), f"pid {pid} is not running")
        return kctl, job_id, pids

    def cancel_and_wait(self, job_id, pids, within):
        r = self.kctl("cancel", job_id)
        self.assertEqual(r.rc, 0, r)
        cancelled = time.monotonic()
        harness.wait_for(lambda: not any(harness.pid_alive(p) for p in pids), within,
                         f"pids {pids} to be gone after kctl cancel")
        gone_after = time.monotonic() - cancelled
        job = self.wait_job_done(job_id, timeout=20)
        self.assertEqual(job["verdict"], "CANCELLED", job)
        (command,) = job["commands"]
        self.assertEqual(command["state"], "COMMAND_FINISHED", command)
        self.assertEqual(command["result"]["verdict"], "CANCELLED", command)
        return gone_after

    def test_cancel_kills_grandchildren(self):
        """Validates that kctl cancel ends the job CANCELLED and kills the shell and children."""
        kctl, job_id, pids = self.start_tree("it-cancel", TREE)
        gone_after = self.cancel_and_wait(job_id, pids, within=5)
        print(f"\n  processes gone {gone_after:.2f}s after kctl cancel", flush=True)
        self.assertEqual(kctl.wait(timeout=20), harness.EXIT_CANCELLED)

    def test_cancel_sigkills_after_grace(self):
        """Validates that processes ignoring SIGTERM are SIGKILLed after --kill-grace on cancel."""
        kctl, job_id, pids = self.start_tree("it-stubborn", "trap '' TERM; " + TREE)
        gone_after = self.cancel_and_wait(job_id, pids, within=KILL_GRACE_S + 8)
        print(f"\n  SIGTERM-ignoring processes gone {gone_after:.2f}s after kctl cancel "
              f"(kill grace {KILL_GRACE_S}s)", flush=True)
        self.assertGreater(gone_after, KILL_GRACE_S - 0.5, "killed before the grace period ended")
        self.assertEqual(kctl.wait(timeout=20), harness.EXIT_CANCELLED)

    def test_timeout(self):
        """Validates that kctl exec --timeout 2s of a sleep 100 exits 5 (TIMEOUT) within seconds."""
        start = time.monotonic()
        # The shell prints its pid, then becomes `sleep 100` under that pid.
        r = self.kctl("exec", "--host", "victim", "--timeout", "2s", "--name", "it-timeout", "--",
                      "sh", "-c", "echo $$; exec sleep 100", timeout=90)
        elapsed = time.monotonic() - start
        print(f"\n  kctl exec --timeout 2s returned after {elapsed:.1f}s", flush=True)
        self.assertEqual(r.rc, harness.EXIT_TIMEOUT, r)
        self.assertLess(elapsed, 20)
        sleep_pid = int(r.stdout.split("|")[1])
        self.adopt_pid(sleep_pid)
        self.assertFalse(harness.pid_alive(sleep_pid), "the timed-out sleep is still running")
        job = self.job(self.find_job("it-timeout"))
        self.assertEqual(job["verdict"], "TIMEOUT", job)
        self.assertEqual(job["commands"][0]["result"]["verdict"], "TIMEOUT", job)


if __name__ == "__main__":
    unittest.main()
