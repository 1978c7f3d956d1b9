"""Schedules end to end: a real controller and agent, kctl schedule, runs as jobs, /metrics.

The runs print their own clock (date +%s.%N) at start and end, so spacing and overlap are
measured by the runs themselves, not taken from what the agent reports.
"""

import os
import re
import time
import unittest

import harness

HOST = "sched-host"


def sample_value(exposition, name, **labels):
    """The value of the sample `name` whose labels include `labels`, or None."""
    for line in exposition.splitlines():
        m = re.match(r'^(\w+)(\{(.*)\})? (\S+)$', line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(m.group(4))
    return None


class SchedulesTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        self.start_controller()
        self.agent = self.start_agent(HOST, reconnect_max="1s")

    # --- helpers ------------------------------------------------------------------------------

    def add(self, name, *args, every="1s"):
        r = self.kctl("schedule", "add", name, "--host", HOST, "--every-after", every, *args)
        self.assertEqual(r.rc, 0, r)
        return r

    def runs(self, name):
        return self.kctl_json("schedule", "runs", name, "--limit", "1000").get("runs", [])

    def ended(self, name):
        return [r for r in self.runs(name) if r.get("outcome") not in (None, "", "running")]

    def wait_ended(self, name, count, timeout):
        return harness.wait_for(lambda: (e := self.ended(name)) and len(e) >= count and e,
                                timeout, f"{count} ended runs of schedule {name}")

    def stdout(self, run):
        return self.logs(run["command_id"]).decode()

    def stamps(self, run):
        """The start and end the run printed (seconds, the host's clock)."""
        start, end = (float(x) for x in self.stdout(run).split())
        return start, end

    # --- tests --------------------------------------------------------------------------------

    def test_spacing_and_never_two_at_once(self):
        """Validates that each run starts every-after (2s) after the previous run ended, as the
        runs measure it, with runs that last longer (2.5s) than the interval: never two at once."""
        self.add("spacing", "--", "sh", "-c", "date +%s.%N; sleep 2.5; date +%s.%N", every="2s")
        runs = self.wait_ended("spacing", 5, 90)[:5]
        self.kctl("schedule", "pause", "spacing")
        for r in runs:
            self.assertEqual(r["outcome"], "pass", r)
        stamps = sorted(self.stamps(r) for r in runs)
        errors = []
        for (_, prev_end), (start, _) in zip(stamps, stamps[1:]):
            self.assertGreater(start, prev_end, f"two runs at once: {stamps}")
            errors.append(start - prev_end - 2.0)
        print(f"\n  spacing error (start - previous end - 2s) over {len(errors)} gaps: " +
              ", ".join(f"{e * 1000:+.0f}ms" for e in errors) +
              f"; mean {sum(errors) / len(errors) * 1000:+.0f}ms, "
              f"max {max(errors) * 1000:+.0f}ms", flush=True)
        for e in errors:
            self.assertGreater(e, -0.05, f"a run started early: {errors}")
            self.assertLess(e, 1.0, f"a run started late: {errors}")
        # What the controller stored agrees: each run's previous end is the run before's end.
        by_id = sorted(runs, key=lambda r: int(r["id"]))
        for prev, cur in zip(by_id, by_id[1:]):
            self.assertAlmostEqual(int(cur["previous_end_unix_ms"]),
                                   int(prev["ended_unix_ms"]), delta=1000, msg=(prev, cur))

    def test_oom_kill_is_the_runs_result_and_its_schedules_metric(self):
        """Validates that a run OOM-killed under --memory-max 32M ends as oom, and that
        kfleet_schedule_oom_kills_total counts it for that schedule only."""
        self.add("hog", "--memory-max", "32M", "--", "python3", "-c", "b=bytearray(200<<20)",
                 every="1h")
        self.add("calm", "--memory-max", "32M", "--", "true", every="1h")
        (hog,) = self.wait_ended("hog", 1, 60)
        (calm,) = self.wait_ended("calm", 1, 60)
        self.assertEqual(hog["outcome"], "oom", hog)
        self.assertTrue(hog["result"].get("oom_killed"), hog)
        self.assertEqual(int(hog["result"].get("memory_max_bytes", 0)), 32 << 20, hog)
        self.assertEqual(calm["outcome"], "pass", calm)
        # The run is a job: kctl job shows the command and its OOM kill.
        job = self.job(hog["job_id"])
        self.assertEqual(job["spec"]["name"], "schedule hog", job)
        self.assertEqual(job["verdict"], "FAIL", job)
        self.assertIn("oom", self.kctl("schedule", "show", "hog").stdout)

        text = self.metrics_text()
        labels = {"host": HOST}
        self.assertGreaterEqual(
            sample_value(text, "kfleet_schedule_oom_kills_total", schedule="hog", **labels), 1)
        self.assertEqual(
            sample_value(text, "kfleet_schedule_oom_kills_total", schedule="calm", **labels), 0)
        self.assertEqual(sample_value(text, "kfleet_schedule_runs_total", schedule="hog",
                                      result="oom", **labels), 1)
        self.assertEqual(sample_value(text, "kfleet_schedule_runs_total", schedule="hog",
                                      result="pass", **labels), 0)
        self.assertEqual(sample_value(text, "kfleet_schedule_runs_total", schedule="calm",
                                      result="pass", **labels), 1)
        peak = sample_value(text, "kfleet_schedule_last_peak_memory_bytes", schedule="hog",
                            **labels)
        self.assertGreater(peak, 16 << 20, text)
        ended_s = sample_value(text, "kfleet_schedule_last_run_timestamp_seconds",
                               schedule="hog", **labels)
        self.assertAlmostEqual(ended_s, time.time(), delta=120)
        self.assertIsNotNone(sample_value(text, "kfleet_schedule_last_duration_seconds",
                                          schedule="calm", **labels))

    def test_runs_while_the_controller_is_away_arrive_once(self):
        """Validates that the agent runs its schedule while the controller is stopped, that those
        runs are stored exactly once after it restarts (as many as the agent ran, with the same
        output), that the schedule survives the restart, that /metrics counts them from the
        store, and that `runs -f` follows across the restart printing each run's end once."""
        record = os.path.join(self.tmp, "ran.txt")
        self.add("tick", "--", "sh", "-c", f"n=$(date +%s%N); echo $n; echo $n >> {record}")
        follow = self.kctl_background("schedule", "runs", "tick", "-f", name="kctl-follow")
        self.wait_ended("tick", 2, 30)
        self.controller.stop()
        stopped = time.time()
        time.sleep(6)
        restarted = time.time()
        self.start_controller()

        listed = self.kctl_json("schedule", "ls")["schedules"]
        self.assertEqual([s["name"] for s in listed], ["tick"], listed)
        self.kctl("schedule", "pause", "tick")

        def settled():
            with open(record) as f:
                ran = f.read().split()
            runs = self.runs("tick")
            if any(r.get("outcome") == "running" for r in runs) or len(runs) != len(ran):
                return None
            return ran, runs

        ran, runs = harness.wait_for(settled, 40, "every run the agent made to be stored")
        time.sleep(2)  # nothing more arrives
        ran2, runs2 = settled() or (None, None)
        self.assertEqual((len(ran2), len(runs2)), (len(ran), len(runs)))
        while_away = [n for n in ran if stopped <= int(n) / 1e9 <= restarted]
        print(f"\n  {len(ran)} runs by the agent's record, {len(runs)} stored, "
              f"{len(while_away)} while the controller was stopped", flush=True)
        self.assertGreaterEqual(len(while_away), 2, ran)
        outputs = [self.stdout(r).strip() for r in runs]
        self.assertEqual(sorted(outputs), sorted(ran))
        self.assertEqual(len({r["command_id"] for r in runs}), len(runs))

        text = self.metrics_text()
        self.assertEqual(sample_value(text, "kfleet_schedule_runs_total", host=HOST,
                                      schedule="tick", result="pass"), len(runs))

        def followed():
            out = follow.read_stdout().decode()
            return out if all(f"[command {r['command_id']}]" in out for r in runs) else None

        out = harness.wait_for(followed, 20, "runs -f to print every run")
        for r in runs:
            ends = [line for line in out.splitlines()
                    if f"[command {r['command_id']}]" in line and "  pass (" in line]
            self.assertEqual(len(ends), 1, f"{r['command_id']} in:\n{out}")

    def test_schedules_survive_an_agent_restart(self):
        """Validates that after its agent restarts the host goes on running its schedule."""
        self.add("beat", "--", "true")
        self.wait_ended("beat", 2, 30)
        self.agent.stop()
        restarted_ms = time.time() * 1000
        self.agent = self.start_agent(HOST, reconnect_max="1s", state_dir=self.agent.state_dir)
        harness.wait_for(lambda: [r for r in self.ended("beat")
                                  if int(r["started_unix_ms"]) > restarted_ms], 30,
                         "a run after the agent restarted")
        show = self.kctl_json("schedule", "show", "beat")
        self.assertEqual(show["hosts"][0]["host_name"], HOST, show)

    def test_pause_resume(self):
        """Validates that a paused schedule starts no run, and a resumed one runs again."""
        self.add("pulse", "--", "true")
        self.wait_ended("pulse", 2, 30)
        paused = self.kctl_json("schedule", "pause", "pulse")
        self.assertTrue(paused["paused"], paused)
        time.sleep(1.5)  # a run started as the pause was sent ends
        count = len(self.runs("pulse"))
        time.sleep(4)
        self.assertEqual(len(self.runs("pulse")), count, "a paused schedule ran")
        resumed = self.kctl_json("schedule", "resume", "pulse")
        self.assertNotIn("paused", resumed)
        self.assertGreater(int(resumed["revision"]), int(paused["revision"]))
        harness.wait_for(lambda: len(self.runs("pulse")) > count, 15, "a run after resume")

    def test_rm_lets_the_run_finish_and_rm_cancel_cancels_it(self):
        """Validates that rm leaves a run in progress to finish and starts no other, and that rm
        --cancel cancels the run in progress; the runs stay listed after rm."""
        self.add("slow", "--", "sh", "-c", "sleep 3; echo done")
        running = harness.wait_for(
            lambda: [r for r in self.runs("slow") if r.get("outcome") == "running"], 20,
            "a run in progress")[0]
        removed = self.kctl_json("schedule", "rm", "slow")
        self.assertEqual(removed["schedule"]["name"], "slow", removed)
        self.assertEqual([r["command_id"] for r in removed["running"]], [running["command_id"]])
        done = harness.wait_for(
            lambda: [r for r in self.ended("slow") if r["command_id"] == running["command_id"]],
            20, "the run in progress to finish")[0]
        self.assertEqual(done["outcome"], "pass", done)
        self.assertEqual(self.stdout(done), "done\n")
        time.sleep(3)
        self.assertEqual(len(self.runs("slow")), 1, "a run started after rm")
        self.assertEqual(self.kctl("schedule", "show", "slow").rc, 8)

        self.add("forever", "--", "sleep", "60")
        running = harness.wait_for(
            lambda: [r for r in self.runs("forever") if r.get("outcome") == "running"], 20,
            "a run in progress")[0]
        r = self.kctl("schedule", "rm", "forever", "--cancel")
        self.assertEqual(r.rc, 0, r)
        self.assertIn(f"run {running['command_id']} on {HOST} is being cancelled", r.stdout)
        cancelled = harness.wait_for(
            lambda: [x for x in self.ended("forever")
                     if x["command_id"] == running["command_id"]], 20, "the run to be cancelled")[0]
        self.assertEqual(cancelled["outcome"], "cancelled", cancelled)
        self.assertEqual(self.job(cancelled["job_id"])["verdict"], "CANCELLED")

    def test_bad_input_is_refused_and_json_shapes(self):
        """Validates refusals (bad interval, unknown host, empty command, duplicate name) with
        nothing stored, and the -o json documents of add, ls, show and runs."""
        cases = [
            (["add", "x", "--host", HOST, "--every-after", "soon", "--", "true"], 2,
             "--every-after"),
            (["add", "x", "--host", HOST, "--every-after", "10ms", "--", "true"], 2,
             "out of range"),
            (["add", "x", "--host", "nohost", "--every-after", "1s", "--", "true"], 8,
             'no host "nohost"'),
            (["add", "x", "--host", HOST, "--every-after", "1s", "--"], 2,
             "missing the command"),
        ]
        for args, rc, words in cases:
            r = self.kctl("schedule", *args)
            self.assertEqual(r.rc, rc, r)
            self.assertIn(words, r.stderr, r)
        self.assertEqual(self.kctl_json("schedule", "ls"), {})

        added = self.kctl_json("schedule", "add", "shape", "--host", HOST, "--every-after", "1m",
                               "--jitter", "5s", "--timeout", "30s", "--memory-max", "64M", "--",
                               "echo", "hi")
        self.assertEqual(added["name"], "shape")
        self.assertEqual(added["host_names"], [HOST])
        self.assertEqual(added["argv"], ["echo", "hi"])
        self.assertEqual(added["every_after_ms"], "60000")
        self.assertEqual(added["jitter_ms"], "5000")
        self.assertEqual(added["timeout_ms"], "30000")
        self.assertEqual(added["memory_max_bytes"], str(64 << 20))
        self.assertEqual(added["hosts"][0]["host_name"], HOST)
        dup = self.kctl("schedule", "add", "shape", "--host", HOST, "--every-after", "1m", "--",
                        "true")
        self.assertEqual(dup.rc, 2, dup)
        self.assertIn("already exists", dup.stderr)

        (run,) = self.wait_ended("shape", 1, 30)
        for key in ("id", "schedule", "host_id", "host_name", "command_id", "job_id", "argv",
                    "revision", "due_unix_ms", "started_unix_ms", "ended_unix_ms", "outcome",
                    "result", "change"):
            self.assertIn(key, run)
        self.assertEqual(self.stdout(run), "hi\n")
        (listed,) = self.kctl_json("schedule", "ls")["schedules"]
        self.assertEqual(listed["hosts"][0]["last_run"]["command_id"], run["command_id"])
        shown = self.kctl_json("schedule", "show", "shape")
        self.assertEqual(shown["hosts"][0]["runs"], 1)
        table = self.kctl("schedule", "ls")
        self.assertIn("shape", table.stdout)
        self.assertIn("pass", table.stdout)


if __name__ == "__main__":
    unittest.main()
