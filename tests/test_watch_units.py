"""kfleet-agent --watch-units on this machine. The units themselves need systemd as PID 1 and are
followed in a debian guest (tests/test_debian_guest.py); here, what the flag does with the host it
is given: a host without systemd refuses it at once, with the way out, and starts nothing; a bad
pattern is refused the same way whatever the host."""
import os
import subprocess
import unittest

import harness


class WatchUnitsTest(harness.KfleetTestCase):

    def agent(self, *args):
        state = os.path.join(self.tmp, "state")
        return subprocess.run([harness.AGENT_BIN, "--controller", "127.0.0.1:1", "--insecure",
                               "--state-dir", state, *args],
                              capture_output=True, text=True, timeout=30)

    def test_host_without_systemd_refuses_the_flag(self):
        """Validates that on a host that does not run systemd the agent refuses --watch-units
        with exit 2 and a message naming the cause and the fix, before making its state dir;
        on a host that does run it, that the agent gets past the flag (here it then fails to
        reach the made-up controller address, which is not this check's concern)."""
        r = self.agent("--watch-units", "mbsync@*.service")
        if not os.path.exists("/run/systemd/system"):
            self.assertEqual(r.returncode, 2, r)
            self.assertIn("--watch-units: this host does not run systemd", r.stderr)
            self.assertIn("drop --watch-units", r.stderr)
            self.assertIn("kctl schedule add", r.stderr)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "state")),
                             "nothing is made before the refusal")
        else:
            self.assertNotIn("does not run systemd", r.stderr)

    def test_bad_pattern_is_refused_with_an_example(self):
        """Validates that a pattern naming no service is refused before anything starts."""
        r = self.agent("--watch-units", "mbsync@*.timer")
        self.assertEqual(r.returncode, 2, r)
        self.assertIn('"mbsync@*.timer" names no service', r.stderr)
        self.assertIn("'mbsync@*.service,offlineimap*.service'", r.stderr)


if __name__ == "__main__":
    unittest.main()
