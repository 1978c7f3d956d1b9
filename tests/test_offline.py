"""A host whose agent stops answering goes offline, and comes back when it answers again."""

import signal
import time
import unittest

import harness

HEARTBEAT_S = 5
# DESIGN.md: three missed heartbeats make a host offline. Allow for polling and scheduling.
OFFLINE_WITHIN_S = 30


class OfflineTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        self.start_controller(heartbeat=f"{HEARTBEAT_S}s")
        self.frozen = self.start_agent("frozen", reconnect_max="1s", wait_online=False)
        self.start_agent("steady", reconnect_max="1s")
        self.wait_host_state("frozen", "ONLINE")

    def test_stopped_agent_goes_offline_and_back(self):
        """Validates that a SIGSTOPped agent goes offline within 30 s and online after SIGCONT."""
        steady_states = set()

        def states():
            """{name: state} of every host; remembers each state host steady was seen in."""
            by_name = {h["name"]: h["state"] for h in self.hosts()}
            steady_states.add(by_name["steady"])
            return by_name

        self.frozen.signal(signal.SIGSTOP)
        stopped = time.monotonic()
        harness.wait_for(lambda: states()["frozen"] == "OFFLINE", OFFLINE_WITHIN_S + 5,
                         "host frozen to be OFFLINE after SIGSTOP")
        to_offline = time.monotonic() - stopped
        print(f"\n  time to offline: {to_offline:.1f}s (heartbeat {HEARTBEAT_S}s)", flush=True)
        self.assertLess(to_offline, OFFLINE_WITHIN_S)
        # Not before three heartbeats could have been missed (less one for timer phase).
        self.assertGreater(to_offline, 2 * HEARTBEAT_S)

        r = self.kctl("exec", "--host", "steady", "--", "echo", "still here", timeout=30)
        self.assertEqual(r.rc, harness.EXIT_PASS, r)
        self.assertEqual(r.stdout, "steady | still here\n")

        self.frozen.signal(signal.SIGCONT)
        resumed = time.monotonic()
        harness.wait_for(lambda: states()["frozen"] == "ONLINE", 30,
                         "host frozen to be ONLINE again after SIGCONT")
        print(f"  time to online after SIGCONT: {time.monotonic() - resumed:.1f}s", flush=True)
        self.assertEqual(steady_states, {"ONLINE"})

        r = self.kctl("exec", "--host", "frozen", "--", "echo", "back", timeout=30)
        self.assertEqual(r.rc, harness.EXIT_PASS, r)
        self.assertEqual(r.stdout, "frozen | back\n")


if __name__ == "__main__":
    unittest.main()
