"""A controller killed while output streams in loses and duplicates nothing once it is back."""

import time
import unittest

import harness

LINES = 3000
# Prints LINES numbered lines over ~5 s: 20 lines, then a short sleep (one fork per line would
# make it take half a minute).
SCRIPT = (f"i=0; while [ $i -lt {LINES} ]; do echo line $i; i=$((i+1)); "
          "[ $((i % 20)) -eq 0 ] && sleep 0.03; done; true")
EXPECTED = "".join(f"line {i}\n" for i in range(LINES)).encode()


class ControllerCrashTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        self.start_controller()
        self.start_agent("streamer", reconnect_max="1s")

    def test_sigkilled_controller_mid_stream(self):
        """Validates that a controller SIGKILLed mid-stream loses and duplicates no output line."""
        kctl = self.kctl_background("exec", "--host", "streamer", "--name", "it-stream", "--",
                                    "sh", "-c", SCRIPT, name="kctl-exec")
        job_id = self.find_job("it-stream")

        def flowing():
            # stdout_bytes is set only when the command ends; the stored log grows meanwhile.
            (command,) = self.job(job_id)["commands"]
            if command.get("state") != "COMMAND_RUNNING":
                return None
            return command["id"] if self.logs(command["id"]) else None

        command_id = harness.wait_for(flowing, 20, "the command's stdout to start flowing")
        first_output = time.monotonic()
        time.sleep(1.5)
        stored_before = len(self.logs(command_id))
        self.controller.kill()
        killed = time.monotonic()
        self.assertLess(stored_before, len(EXPECTED),
                        "the command finished before the controller was killed; the test "
                        "proves nothing: make SCRIPT slower")
        print(f"\n  controller SIGKILLed {killed - first_output:.1f}s after output began, with "
              f"{stored_before} of {len(EXPECTED)} bytes stored", flush=True)

        time.sleep(1.0)
        self.start_controller()
        job = self.wait_job_done(job_id, timeout=60)
        print(f"  job ended {time.monotonic() - killed:.1f}s after the kill", flush=True)
        self.assertEqual(job["verdict"], "PASS", job)
        (command,) = job["commands"]
        self.assertEqual(command["state"], "COMMAND_FINISHED", command)
        self.assertEqual(command["stdout_bytes"], str(len(EXPECTED)), command)
        stored = self.logs(command_id)
        if stored != EXPECTED:
            self.fail(f"stored stdout differs from the expected: {describe_difference(stored)}")

        # kctl exec follows the job across the restart and prints each line once.
        self.assertEqual(kctl.wait(timeout=30), harness.EXIT_PASS)
        printed = kctl.read_stdout()
        want = "".join(f"streamer | line {i}\n" for i in range(LINES)).encode()
        if printed != want:
            self.fail("kctl exec's output across the restart differs from the expected: " +
                      describe_difference(printed.replace(b"streamer | ", b"")))


def describe_difference(stored):
    """Says where the stored lines first depart from the expected ones."""
    got = stored.decode(errors="replace").splitlines()
    want = EXPECTED.decode().splitlines()
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return (f"{len(got)} lines, line {i} is {g!r}, expected {w!r}; "
                    f"around it: {got[max(0, i - 2):i + 3]}")
    return f"{len(got)} lines instead of {len(want)}; last: {got[-3:]}"


if __name__ == "__main__":
    unittest.main()
