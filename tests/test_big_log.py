"""A command's large binary output is stored and served back byte for byte."""

import hashlib
import os
import time
import unittest

import harness

SIZE = 50_000_000


class BigLogTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        self.start_controller()
        self.start_agent("big")

    def test_50mb_stdout_round_trips(self):
        """Validates that 50 MB of random stdout comes back from kctl logs byte for byte."""
        path = os.path.join(self.tmp, "random.bin")
        data = os.urandom(SIZE)
        with open(path, "wb") as f:
            f.write(data)
        want = hashlib.sha256(data).hexdigest()
        del data

        start = time.monotonic()
        kctl = self.kctl_background("exec", "--host", "big", "--name", "it-big", "--", "cat", path,
                                    name="kctl-exec")
        rc = kctl.wait(timeout=240)
        elapsed = time.monotonic() - start
        self.assertEqual(rc, harness.EXIT_PASS)
        print(f"\n  kctl exec of a 50 MB cat took {elapsed:.1f}s", flush=True)

        job = self.job(self.find_job("it-big"))
        self.assertEqual(job["verdict"], "PASS")
        (command,) = job["commands"]
        self.assertEqual(command["stdout_bytes"], str(SIZE))

        start = time.monotonic()
        stored = self.logs(command["id"], "stdout")
        print(f"  kctl logs of 50 MB took {time.monotonic() - start:.1f}s", flush=True)
        self.assertEqual(len(stored), SIZE)
        self.assertEqual(hashlib.sha256(stored).hexdigest(), want)


if __name__ == "__main__":
    unittest.main()
