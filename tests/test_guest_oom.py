"""OOM kills inside a `tiny` guest with little memory: the guest's kernel kills a command that
eats all its memory, and the kill reaches the controller as an event, attributed to the command,
within seconds; the guest's OOM counter rises in the controller's /metrics. Needs root and
libvirtd (scripts/libvirt.sh: kfleet_start_libvirtd)."""
import re
import time
import unittest

import harness
from test_metrics import EVENT_WITHIN_S, sample_value

POOL = """pools:
  small:
    provider: libvirt
    image: tiny
    cpus: 1
    memory: 256M
    max: 1
    idle_timeout: 30m
"""


class GuestOomTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        self.start_guest_controller(POOL, extra_args=["--metrics-interval", "1s"])
        self.addCleanup(lambda: self.controller.alive() and self.kctl("destroy", "small",
                                                                      timeout=300))

    def oom_counter(self):
        return sample_value(self.metrics_text(), "node_vmstat_oom_kill", instance="small-1")

    def test_oom_kill_in_a_small_guest(self):
        """Validates that a command eating all of a 256 MiB guest's memory is OOM-killed by the
        guest's kernel (no cgroup limit: a global OOM), that the kill is an `oom` event of the
        guest naming the victim and the command within 5 s, that the command's result says it was
        OOM-killed, with its peak memory from its cgroup v2, and that node_vmstat_oom_kill of the
        guest rises in /metrics."""
        self.assertEqual(self.kctl("bringup", "small", "--timeout", "15m", timeout=1000).rc, 0)
        self.wait_host_state("small-1", "ONLINE", timeout=600)
        (before,) = harness.wait_for(lambda: (v := self.oom_counter()) is not None and (v,), 30,
                                     "the guest's samples in /metrics")

        # The agent keeps itself out of the OOM killer's reach; its commands do not inherit that.
        r = self.kctl("exec", "--host", "small-1", "--", "sh", "-c",
                      "cat /proc/$(pidof kfleet-agent)/oom_score_adj /proc/self/oom_score_adj")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(re.findall(r"small-1 \| (-?\d+)", r.stdout), ["-1000", "0"], r.stdout)

        started_ms = time.time() * 1000
        hog = self.kctl_background("exec", "--host", "small-1", "--name", "it-guest-hog", "--",
                                   "tail", "/dev/zero")

        def oom_event():
            events = self.kctl_json("events", "--host", "small-1", "--kind", "oom")
            for e in events.get("events", []):
                if int(e["time_unix_ms"]) >= started_ms - 1000 and e["oom"]["comm"] == "tail":
                    return e
            return None

        event = harness.wait_for(oom_event, 180, "the guest's OOM kill event")
        latency_s = (time.time() * 1000 - int(event["time_unix_ms"])) / 1000
        print(f"\n  guest OOM event seen through kctl {latency_s:.2f}s after the guest's kernel "
              f"logged it", flush=True)
        self.assertLess(latency_s, EVENT_WITHIN_S, event)
        self.assertFalse(event["oom"].get("memcg"), event)  # the whole guest ran out

        self.assertNotEqual(hog.wait(180), 0)
        job = self.job(self.find_job("it-guest-hog"))
        (command,) = job["commands"]
        self.assertEqual(event.get("command_id"), command["id"], event)
        result = command["result"]
        self.assertEqual(result["verdict"], "FAIL", result)
        self.assertTrue(result.get("oom_killed"), result)
        self.assertIn("OOM", result.get("detail", ""), result)
        # The guest's agent runs commands in cgroup v2 memory cgroups (the tiny image mounts it).
        self.assertEqual(result.get("cgroup"), "v2", result)
        self.assertGreater(int(result.get("memory_peak_bytes", 0)), 64 << 20, result)

        after = harness.wait_for(lambda: (v := self.oom_counter()) is not None and v > before
                                 and v, 30, "node_vmstat_oom_kill of small-1 to rise")
        self.assertGreater(after, before)
        # The guest and its agent survived the OOM.
        r = self.kctl("exec", "--host", "small-1", "--", "true")
        self.assertEqual(r.rc, 0, r)


if __name__ == "__main__":
    unittest.main()
