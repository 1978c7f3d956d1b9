"""An agent killed while a command runs reports it lost after restart, and never runs it again."""

import os
import time
import unittest

import harness


class AgentCrashTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        self.start_controller()
        self.agent = self.start_agent("crashy", reconnect_max="1s")

    def test_sigkilled_agent_reports_command_lost(self):
        """Validates that a command whose agent was SIGKILLed ends lost, is killed, not re-run."""
        marker = os.path.join(self.tmp, "marker")
        script = f"echo run >> {marker}; sleep 60 & echo $!; echo $$; echo started; wait"
        kctl = self.kctl_background("exec", "--host", "crashy", "--name", "it-crash", "--",
                                    "sh", "-c", script, name="kctl-exec")
        job_id = self.find_job("it-crash")

        def running_and_started():
            (command,) = self.job(job_id)["commands"]
            if command.get("state") != "COMMAND_RUNNING":
                return None
            out = self.logs(command["id"]).decode()
            return (command, out) if "started\n" in out else None

        _, out = harness.wait_for(running_and_started, 20,
                                  "the command to be COMMAND_RUNNING with 'started' logged")
        sleep_pid, shell_pid = (int(x) for x in out.splitlines()[:2])
        self.adopt_pid(sleep_pid, shell_pid)
        self.assertTrue(harness.pid_alive(sleep_pid))
        self.assertEqual(os.getpgid(sleep_pid), os.getpgid(shell_pid))

        self.agent.kill()
        # The command's processes outlive the agent: only the restarted agent can clean them up.
        time.sleep(0.5)
        self.assertTrue(harness.pid_alive(sleep_pid), "sleep died with the agent already")
        self.assertTrue(harness.pid_alive(shell_pid), "sh died with the agent already")

        host_id = self.host("crashy")["id"]
        restart = time.monotonic()
        self.start_agent("crashy", state_dir=self.agent.state_dir, reconnect_max="1s")
        # The restarted agent is the same host (its id is kept in the state dir).
        self.assertEqual([(h["name"], h["id"]) for h in self.hosts()],
                         [("crashy", host_id)])

        job = self.wait_job_done(job_id, timeout=30)
        print(f"\n  job ended {time.monotonic() - restart:.1f}s after the agent restarted",
              flush=True)
        (command,) = job["commands"]
        self.assertEqual(command["state"], "COMMAND_FINISHED", command)
        self.assertEqual(command["result"]["verdict"], "INFRA_ERROR", command)
        self.assertTrue(command["result"].get("lost"), command)
        self.assertEqual(job["verdict"], "INFRA_ERROR", job)
        self.assertEqual(kctl.wait(timeout=30), harness.EXIT_INFRA_ERROR)

        harness.wait_for(lambda: not harness.pid_alive(sleep_pid) and
                         not harness.pid_alive(shell_pid), 10,
                         f"the leftover processes (sh {shell_pid}, sleep {sleep_pid}) to be killed")

        # Another command on that host runs normally, and the lost one still ran only once.
        r = self.kctl("exec", "--host", "crashy", "--", "echo", "after")
        self.assertEqual(r.rc, harness.EXIT_PASS, r)
        self.assertEqual(r.stdout, "crashy | after\n")
        with open(marker, encoding="ascii") as f:
            self.assertEqual(f.read(), "run\n")


if __name__ == "__main__":
    unittest.main()
