"""Kernel log records reach the controller once each, as news or as history.

The agents here read a file in /dev/kmsg's record format (`--kmsg FILE`) that the test writes, so
that what "the kernel" says, and when, is exactly what the test wrote: records stamped on this
machine's CLOCK_MONOTONIC, as printk stamps them, and the agents' real boot id. Two agents reading
one file are two agents on one machine reading its /dev/kmsg (a controller's local builder beside
a host agent)."""
import os
import re
import time
import unittest

import harness
from test_metrics import sample_value

# agent/kmsg/history_cutoff.h: an agent started this soon after boot has no history.
BOOT_WINDOW_S = 5 * 60


def monotonic_us():
    """Now on CLOCK_MONOTONIC, in microseconds: the clock of kmsg timestamps."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def oom_kill(seq, timestamp_us, pid, comm, memcg):
    """The two records the kernel logs for an OOM kill in cgroup `memcg` (its summary, then the
    kill), as /dev/kmsg hands them out; the kill is record seq + 1. No memcg: a global OOM."""
    scope = (f"CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg={memcg},"
             f"task_memcg={memcg}" if memcg else
             "CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
             "task_memcg=/user.slice")
    prefix = "Memory cgroup out of memory" if memcg else "Out of memory"
    return (f"6,{seq},{timestamp_us},-;oom-kill:constraint={scope},task={comm},pid={pid},uid=0\n"
            f"3,{seq + 1},{timestamp_us + 50},-;{prefix}: Killed process {pid} ({comm}) "
            f"total-vm:68148kB, anon-rss:65152kB, file-rss:1532kB, shmem-rss:0kB, UID:0 "
            f"pgtables:164kB oom_score_adj:0\n")


class KernelRecordsTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        self.kmsg = os.path.join(self.tmp, "kmsg")
        open(self.kmsg, "w").close()
        self.start_controller()

    def write_kmsg(self, text):
        with open(self.kmsg, "a") as f:
            f.write(text)

    def start_kmsg_agent(self, name):
        """An agent named `name` with a new state dir (a first start), reading the test's file."""
        state_dir = os.path.join(self.tmp, f"agent-{name}")
        argv = [harness.AGENT_BIN, "--controller", self.address, "--state-dir", state_dir,
                "--name", name, "--kmsg", self.kmsg] + self.enrolment_args(state_dir)
        proc = self._start(f"agent-{name}", argv)
        self.wait_host_state(name, "ONLINE")
        return proc

    def events_of(self, kmsg_seq):
        """The stored events of kmsg record `kmsg_seq`, any host, any kind."""
        return [e for e in self.kctl_json("events", "--limit", "1000").get("events", [])
                if int(e.get("kmsg_seq", 0)) == kmsg_seq]

    def counter(self, name, **labels):
        return sample_value(self.metrics_text(), name, **labels) or 0

    def test_records_before_a_first_start_are_history(self):
        """Validates that an OOM kill the kernel logged 29 minutes before the agent's first start
        is stored as history: on the host's timeline, marked [before agent] and before_agent in
        JSON, at its own time, with no command, and not counted in /metrics; and that a kill
        logged after the start is news and counted."""
        now_us = monotonic_us()
        if now_us < (BOOT_WINDOW_S + 30 * 60) * 1_000_000:
            self.skipTest("this machine booted too recently for a record 29 minutes older than "
                          f"the agent and outside its boot window ({BOOT_WINDOW_S}s)")
        old_us = now_us - 29 * 60 * 1_000_000
        self.write_kmsg(oom_kill(100, old_us, 4242, "chrome", None))
        self.start_kmsg_agent("u1")

        (old,) = harness.wait_for(lambda: self.events_of(101), 20, "the old OOM kill's event")
        self.assertTrue(old.get("before_agent"), old)
        self.assertEqual(old["host_name"], "u1", old)
        self.assertEqual(old.get("command_id", ""), "", old)
        self.assertEqual(old["oom"]["comm"], "chrome", old)
        age_s = time.time() - int(old["time_unix_ms"]) / 1000
        self.assertGreater(age_s, 28 * 60, old)
        table = self.kctl("events", "--host", "u1")
        self.assertIn("killed 4242 (chrome)", table.stdout, table)
        self.assertIn("[before agent]", table.stdout, table)
        self.assertEqual(self.counter("kfleet_events_total", kind="oom"), 0)
        self.assertEqual(self.counter("kfleet_kernel_events_total", host="u1", kind="oom"), 0)

        # Logged now, after the agent read the buffer: news.
        self.write_kmsg(oom_kill(102, monotonic_us(), 4343, "java", None))
        (new,) = harness.wait_for(lambda: self.events_of(103), 20, "the new OOM kill's event")
        self.assertFalse(new.get("before_agent"), new)
        self.assertLess(time.time() - int(new["time_unix_ms"]) / 1000, 60, new)
        harness.wait_for(lambda: self.counter("kfleet_events_total", kind="oom") == 1, 10,
                         "kfleet_events_total{kind=oom} to count the new kill")
        self.assertEqual(self.counter("kfleet_kernel_events_total", host="u1", kind="oom"), 1)
        self.assertEqual(len(self.events_of(101)), 1)

    def test_one_oom_kill_is_one_event_on_its_commands_host(self):
        """Validates that with two agents reading one kernel log, an OOM kill in agent u1's
        command (its cgroup and pid) is stored once, on u1, naming that command, whichever agent
        reported it first; that agent u2, which runs no such command, stores nothing for it; and
        that the kill is counted once."""
        self.start_kmsg_agent("u1")
        self.start_kmsg_agent("u2")
        victim = self.kctl_background(
            "exec", "--host", "u1", "--name", "it-victim", "--", "sh", "-c",
            "echo pid=$$; cat /proc/self/cgroup; exec sleep 120", name="victim")
        out_path = os.path.join(self.tmp, "victim.out")

        def started():
            if not os.path.exists(out_path):
                return None
            with open(out_path, errors="replace") as f:
                text = f.read()
            pid = re.search(r"^u1 \| pid=(\d+)$", text, re.M)
            groups = re.findall(r"^u1 \| (\d+):([^:]*):(\S+)$", text, re.M)
            return pid and groups and (int(pid.group(1)), groups)

        pid, groups = harness.wait_for(started, 30, "the victim command's pid and cgroup")
        self.adopt_pid(pid)
        # Where the kernel would see the victim: its memory cgroup (v1), else its cgroup v2.
        memcg = next((path for _, controllers, path in groups
                      if "memory" in controllers.split(",")), None)
        if memcg is None:
            memcg = next(path for hid, _, path in groups if hid == "0")
        command_id = self.job(self.find_job("it-victim"))["commands"][0]["id"]

        self.write_kmsg(oom_kill(200, monotonic_us(), pid, "sleep", memcg))

        def owned():
            events = self.events_of(201)
            return events if any(e.get("command_id") == command_id for e in events) else None

        harness.wait_for(owned, 20, "the kill's event on u1, naming its command")
        # u2 has reported its copy too: stored first and then replaced, or dropped.
        log = os.path.join(self.tmp, "controller.log")

        def logged_u2():
            with open(log, errors="replace") as f:
                return re.search(r"host u2: .*kmsg seq 201\b", f.read())

        harness.wait_for(logged_u2, 20, "the controller to log u2's copy of the record")
        (event,) = self.events_of(201)
        self.assertEqual(event["host_name"], "u1", event)
        self.assertEqual(event["command_id"], command_id, event)
        self.assertEqual(int(event["oom"]["pid"]), pid, event)
        self.assertFalse(event.get("before_agent"), event)
        u2 = self.kctl_json("events", "--host", "u2").get("events", [])
        self.assertEqual([e for e in u2 if int(e.get("kmsg_seq", 0)) == 201], [], u2)
        self.assertEqual(self.counter("kfleet_events_total", kind="oom"), 1)
        self.assertEqual(self.counter("kfleet_kernel_events_total", host="u1", kind="oom"), 1)

        with open(os.path.join(self.tmp, "agent-u2.log"), errors="replace") as f:
            u2_log = f.read()
        self.assertIn("kernel: oom: Memory cgroup out of memory: Killed process", u2_log)
        self.assertNotIn(f"[command {command_id}]", u2_log)
        victim.stop()


if __name__ == "__main__":
    unittest.main()
