"""Errors of a bring-up reach the person who asked: a pool whose image cannot be built makes
`kctl bringup` fail with the controller's error, is stored as a guest_failed event, shows in
`kctl pools`, and is retried with a backoff rather than every second.

The pool uses the exec provider, so no hypervisor is needed: the bring-up fails at the image,
whose recipe the controller is told to find in a directory that does not exist."""
import os
import re
import time
import unittest

import harness

NO_RECIPES = "/nonexistent-dir"

# `local`, as the default pool is called, made by commands that are never reached.
POOL = """pools:
  local:
    provider: exec
    image: tiny
    max: 2
    exec:
      create: /bin/false
      destroy: /bin/true
"""

# One line of the controller's log per failed attempt.
ATTEMPT = re.compile(r"pool local, guest local-\d+: bringup failed: building the tiny image")


class BringupErrorsTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        config = os.path.join(self.tmp, "kfleet.yaml")
        with open(config, "w") as f:
            f.write(POOL)
        self.start_controller(extra_args=["--config", config, "--image-recipes", NO_RECIPES])

    def attempts(self):
        """Failed bring-up attempts the controller has logged so far."""
        with open(self.controller.log_path, errors="replace") as f:
            return len(ATTEMPT.findall(f.read()))

    def local_pool(self):
        return next(p for p in self.kctl_json("pools")["pools"] if p["name"] == "local")

    def test_bringup_fails_with_the_controllers_error(self):
        """Validates that kctl bringup exits 6 within seconds with the controller's error naming
        the recipe, that the error is a guest_failed event and the pool's last error, and that
        the controller does not retry every second."""
        started = time.monotonic()
        r = self.kctl("bringup", "local", timeout=60)
        took = time.monotonic() - started
        self.assertEqual(r.rc, harness.EXIT_INFRA_ERROR, r)
        self.assertLess(took, 30, f"kctl bringup took {took:.1f}s to report the failure")
        self.assertIn("local-1: creating in pool local", r.stderr)
        last = r.stderr.strip().splitlines()[-1]
        self.assertTrue(last.startswith("kctl: bringup: local-1: building the tiny image: "), r)
        self.assertIn("image recipe deploy/image/tiny/build.sh was not found", last)
        self.assertIn("--image-recipes", last)
        self.assertIn("kctl destroy local-1", last)
        self.assertEqual(r.stdout, "", "no guest names: none came up")

        events = self.kctl_json("events", "--kind", "guest_failed")["events"]
        self.assertGreaterEqual(len(events), 1, events)
        first = events[0]
        self.assertEqual(first["kind"], "guest_failed")
        self.assertEqual(first["host_name"], "local-1")
        self.assertIn("pool local, guest local-1: building the tiny image: the image recipe",
                      first["message"])
        self.assertIn("attempt 1", first["message"])

        pool = self.local_pool()
        self.assertIn("image recipe deploy/image/tiny/build.sh", pool["last_error"])
        self.assertEqual(pool["last_error_guest"], "local-1")
        self.assertGreaterEqual(pool["failed_attempts"], 1)
        self.assertGreater(int(pool["last_error_unix_ms"]), 0)
        guest = pool["guests"][0]
        self.assertEqual(guest["state"], "creating", "not made yet: tried again later")
        self.assertIn("image recipe", guest["detail"])
        table = self.kctl("pools")
        self.assertEqual(table.rc, 0, table)
        self.assertIn("Pool local: ", table.stdout)
        self.assertIn("image recipe deploy/image/tiny/build.sh", table.stdout)

        # Backoff: attempts after about 0, 1, 3 and 7 s (each up to a quarter sooner), then 15 s.
        time.sleep(max(0.0, 10 - (time.monotonic() - started)))
        attempts = self.attempts()
        self.assertGreaterEqual(attempts, 2, "the controller tries again")
        self.assertLessEqual(attempts, 4, f"{attempts} attempts in 10s: no backoff")
        # Events: the first failure and the same error after 2 and 4 attempts, no more.
        events = self.kctl_json("events", "--kind", "guest_failed")["events"]
        self.assertLessEqual(len(events), 3, events)

    def test_no_wait_returns_at_once(self):
        """Validates that kctl bringup --no-wait exits 0 as soon as the guest is recorded."""
        started = time.monotonic()
        r = self.kctl("bringup", "local", "--no-wait", timeout=30)
        self.assertEqual(r.rc, 0, r)
        self.assertLess(time.monotonic() - started, 5)
        self.assertIn("creating local-1 in pool local", r.stdout)

    def test_json_output_of_a_failed_bringup(self):
        """Validates that kctl bringup -o json prints the guests as the controller last saw them,
        exits 6, and puts the error on stderr."""
        r = self.kctl("bringup", "local", output="json", timeout=60)
        self.assertEqual(r.rc, harness.EXIT_INFRA_ERROR, r)
        guests = r.json()["guests"]
        self.assertEqual([g["name"] for g in guests], ["local-1"])
        self.assertIn("image recipe", guests[0]["detail"])
        self.assertIn("image recipe", r.stderr)


if __name__ == "__main__":
    unittest.main()
