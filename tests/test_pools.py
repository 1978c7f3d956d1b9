"""Pools with the exec provider: guests made by a script (local agents), scaled with the queue."""
import os
import sys
import time
import unittest

import harness

HERE = os.path.dirname(os.path.abspath(__file__))


class PoolsTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        self.cloud = os.path.join(self.tmp, "cloud")
        os.makedirs(self.cloud)
        script = f"{sys.executable} {os.path.join(HERE, 'fake_guest.py')}"
        config = os.path.join(self.tmp, "kfleet.yaml")
        with open(config, "w") as f:
            f.write(f"""pools:
  fake:
    provider: exec
    min: 0
    max: 2
    idle_timeout: 4s
    boot_timeout: 60s
    labels: {{role: guest}}
    exec:
      create: {script} create
      destroy: {script} destroy
      power_cycle: {script} power_cycle
""")
        self.env["KFLEET_FAKE_CLOUD"] = self.cloud
        self.env["KFLEET_AGENT_BIN"] = harness.AGENT_BIN
        self.start_controller(extra_args=["--config", config])

    def guests(self):
        pools = self.kctl_json("pools")["pools"]
        return [g for p in pools if p["name"] == "fake" for g in p.get("guests", [])]

    def fake_agents_alive(self):
        pids = []
        for entry in os.listdir(self.cloud):
            if entry.endswith(".pid"):
                pid = int(open(os.path.join(self.cloud, entry)).read())
                if harness.pid_alive(pid):
                    pids.append(pid)
        return pids

    def test_bringup_and_destroy(self):
        """Validates that bringup makes a guest whose agent registers with the pool's labels, and
        destroy removes the guest, its host and its process."""
        r = self.kctl("bringup", "fake", "--count", "1")
        self.assertEqual(r.rc, 0, r)
        self.wait_host_state("fake-1", "ONLINE", timeout=30)
        host = [h for h in self.hosts() if h["name"] == "fake-1"][0]
        self.assertEqual(host["labels"]["pool"], "fake")
        self.assertEqual(host["labels"]["role"], "guest")
        r = self.kctl("exec", "-l", "pool=fake", "--", "echo", "in-guest")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("fake-1 | in-guest", r.stdout)

        r = self.kctl("bringup", "fake", "--count", "5")
        self.assertNotEqual(r.rc, 0, "over max must be refused")
        self.assertIn("at most", r.stderr)

        r = self.kctl("destroy", "fake")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.guests(), [])
        self.assertNotIn("fake-1", [h["name"] for h in self.hosts()])
        harness.wait_for(lambda: not self.fake_agents_alive(), 10, "the guest's agent to stop")

    def test_autoscale_grows_with_queue_and_shrinks_when_idle(self):
        """Validates that a pool with min 0 and max 2 grows to 2 when four commands wait, runs
        them all, and shrinks to 0 after the idle timeout."""
        jobs = [self.kctl_background("exec", "-l", "pool=fake", "--count", "1", "--", "sleep", "2",
                                     name=f"kctl-{i}") for i in range(4)]
        harness.wait_for(lambda: len(self.guests()) == 2, 30, "the pool to grow to 2 guests")
        peak = 0
        deadline = time.time() + 90
        while any(j.alive() for j in jobs) and time.time() < deadline:
            peak = max(peak, len(self.guests()))
            time.sleep(0.2)
        for j in jobs:
            self.assertEqual(j.wait(10), 0, "every waiting command ran and passed")
        self.assertLessEqual(peak, 2, "never above max")
        started = time.time()
        harness.wait_for(lambda: len(self.guests()) == 0, 60, "the pool to shrink to 0")
        print(f"\npool shrank to 0 {time.time() - started:.1f}s after the last command "
              f"(idle timeout 4s)", file=sys.stderr)
        harness.wait_for(lambda: not self.fake_agents_alive(), 10, "every guest agent to stop")
        with open(os.path.join(self.cloud, "operations.log")) as f:
            ops = f.read().split("\n")
        self.assertEqual(sum(op.startswith("create") for op in ops), 2, ops)
        self.assertEqual(sum(op.startswith("destroy") for op in ops), 2, ops)

    def test_reboot_refused_without_allow_reboot(self):
        """Validates that a reboot step on an agent not started with --allow-reboot is refused as
        an infrastructure error and the host keeps running."""
        self.start_agent("plain")
        r = self.kctl("reboot", "--host", "plain", "--timeout", "30s")
        self.assertEqual(r.rc, 6, r)
        self.assertIn("--allow-reboot", r.stdout + r.stderr)
        self.assertEqual(self.host_state("plain"), "ONLINE")


if __name__ == "__main__":
    unittest.main()
