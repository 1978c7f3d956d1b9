"""The mail-host scenario end to end: mbsync channels as kfleet schedules against a real dovecot.

A Debian dovecot (`dovecot-imapd`) serves three mailboxes on 127.0.0.1, from maildirs in the test's
temporary directory (passwd-file users, mail owned by `nobody`). isync's `mbsync` fetches each
mailbox into a local maildir, one channel per schedule, `--every-after 3s` (systemd's
`OnUnitInactiveSec`), as a mail host's timers would. The `archive` channel holds a few hundred
small messages and two with a 16 MiB attachment: mbsync holds a whole message in memory while it
stores it (about twice the encoded size: over 40 MiB for these), so under `--memory-max 16M` the
kernel OOM-kills the real mbsync on every run. No wrapper inflates its memory.

What a user would notice, and this test checks:
- each run starts 3s after the previous run of its schedule ended (`kctl schedule runs -o json`);
- the kill is an `oom` event in `kctl events` within 5 s of the kernel's record, naming mbsync and
  the command of an `archive` run;
- `kfleet_schedule_oom_kills_total` counts it for `mbsync-archive` only;
- the other channels' mail arrives: as many messages in each local maildir as on the server.

Needs root, `dovecot-imapd` and `isync`; loopback only. dovecot runs in the foreground as a process
the test started and is stopped by its pid (SIGTERM; its master stops its children).
"""

import email.message
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import harness
from test_schedules import sample_value

HOST = "mail"
EVERY_S = 3
ARCHIVE_LIMIT = "16M"
# channel: (IMAP user, small messages, large attachments (bytes each))
CHANNELS = {
    "inbox": ("alice", 40, []),
    "lists": ("bob", 120, []),
    "archive": ("carol", 300, [16 << 20, 16 << 20]),
}
KILLED = "archive"
# Runs of each schedule to wait for, and how long the scenario may take at most.
RUNS = 4
SCENARIO_TIMEOUT_S = 60
EVENT_LATENCY_MAX_S = 5.0

DOVECOT_CONF = """\
base_dir = {run}
state_dir = {tmp}/dovecot-state
log_path = {tmp}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{tmp}/server/%u/Maildir
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {tmp}/dovecot.passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={tmp}/server/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""

MBSYNC_CHANNEL = """\
IMAPAccount {channel}
Host 127.0.0.1
Port {port}
User {user}
Pass pw-{user}
SSLType None
AuthMechs LOGIN

IMAPStore {channel}-remote
Account {channel}

MaildirStore {channel}-local
Path {local}/{channel}/
Inbox {local}/{channel}/INBOX

Channel {channel}
Far :{channel}-remote:
Near :{channel}-local:
Patterns INBOX
Create Near
Sync Pull
SyncState *

"""


def count_messages(maildir):
    """Messages in a maildir (cur/ and new/), or 0 if it does not exist yet."""
    return sum(len(os.listdir(os.path.join(maildir, sub)))
               for sub in ("cur", "new") if os.path.isdir(os.path.join(maildir, sub)))


def fill_maildir(maildir, user, small, large):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    sizes = [0] * small + list(large)
    for i, size in enumerate(sizes):
        m = email.message.EmailMessage()
        m["From"] = "lists@example.org"
        m["To"] = f"{user}@example.org"
        m["Subject"] = f"message {i}"
        m["Message-ID"] = f"<{user}.{i}@example.org>"
        m.set_content(f"message {i} for {user}\n" + "lorem ipsum dolor sit amet\n" * 40)
        if size:
            m.add_attachment(os.urandom(size), maintype="application", subtype="pdf",
                             filename=f"scan-{i}.pdf")
        with open(os.path.join(maildir, "new", f"{1700000000 + i}.M{i}P1.kfleet-test"), "wb") as f:
            f.write(m.as_bytes())


class MailHostTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        missing = [p for p, b in (("dovecot-imapd", "dovecot"), ("isync", "mbsync"))
                   if not shutil.which(b)]
        if missing:
            self.fail(f"{', '.join(missing)} missing: apt-get install {' '.join(missing)} "
                      "(scripts/lib.sh installs them)")
        if os.geteuid() != 0:
            self.fail("run as root: dovecot serves the test's mail as nobody")
        # dovecot's processes run as dovecot, dovenull and nobody: they must reach the temp dir.
        os.chmod(self.tmp, 0o755)
        self.start_dovecot()
        self.write_mbsyncrc()
        self.start_controller()
        self.agent = self.start_agent(HOST, reconnect_max="1s")

    # --- the mail server and the mbsync config --------------------------------------------------

    def start_dovecot(self):
        self.imap_port = harness.free_port()
        server = os.path.join(self.tmp, "server")
        with open(os.path.join(self.tmp, "dovecot.passwd"), "w") as f:
            for user, small, large in CHANNELS.values():
                f.write(f"{user}:{{PLAIN}}pw-{user}::::::\n")
                fill_maildir(os.path.join(server, user, "Maildir"), user, small, large)
        subprocess.run(["chown", "-R", "nobody:nogroup", server], check=True)
        # dovecot's sockets live in base_dir: a short path of its own, as a socket path is at most
        # 107 bytes long.
        run = tempfile.mkdtemp(prefix="kf-dovecot-")
        self.addCleanup(shutil.rmtree, run, ignore_errors=True)
        os.chmod(run, 0o755)
        conf = os.path.join(self.tmp, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(DOVECOT_CONF.format(tmp=self.tmp, run=run, port=self.imap_port))
        # -F: in the foreground, so that the pid the harness holds is dovecot's master.
        self.dovecot = self._start("dovecot-master", ["dovecot", "-F", "-c", conf])

        def accepting():
            if not self.dovecot.alive():
                raise AssertionError(f"dovecot exited with {self.dovecot.popen.returncode}")
            with socket.create_connection(("127.0.0.1", self.imap_port), timeout=1) as s:
                return s.recv(200).startswith(b"* OK")

        harness.wait_for(accepting, 20, f"dovecot to greet on 127.0.0.1:{self.imap_port}")

    def write_mbsyncrc(self):
        self.local = os.path.join(self.tmp, "local")
        self.mbsyncrc = os.path.join(self.tmp, "mbsyncrc")
        with open(self.mbsyncrc, "w") as f:
            for channel, (user, _, _) in CHANNELS.items():
                os.makedirs(os.path.join(self.local, channel))
                f.write(MBSYNC_CHANNEL.format(channel=channel, port=self.imap_port, user=user,
                                              local=self.local))

    # --- kfleet ------------------------------------------------------------------------------

    def runs(self, name):
        return self.kctl_json("schedule", "runs", name, "--limit", "1000").get("runs", [])

    def ended(self, name):
        return [r for r in self.runs(name) if r.get("outcome") not in (None, "", "running")]

    def oom_events(self):
        return [e for e in self.kctl_json("events", "--kind", "oom", "--host", HOST,
                                          "--limit", "1000").get("events", [])
                if not e.get("before_agent")]

    # --- the test -----------------------------------------------------------------------------

    def test_mbsync_channels_on_schedules_with_the_oom_kill_reported(self):
        """Validates that three mbsync channels run as schedules at their spacing, that the one
        over its memory limit is OOM-killed on each run and the kill is an event of its run within
        5 s and in its schedule's metric only, and that the other channels' mail is delivered."""
        for channel in CHANNELS:
            args = ["schedule", "add", f"mbsync-{channel}", "--host", HOST, "--every-after",
                    f"{EVERY_S}s", "--timeout", "60s", "--memory-max",
                    ARCHIVE_LIMIT if channel == KILLED else "64M", "--",
                    "mbsync", "-c", self.mbsyncrc, channel]
            r = self.kctl(*args)
            self.assertEqual(r.rc, 0, r)

        # Poll the events often, so that when an event was first seen is known to ~0.2 s.
        first_seen = {}  # event id -> (time the test first saw it, the event)
        deadline = time.monotonic() + SCENARIO_TIMEOUT_S
        next_runs_check = 0
        ended = {}
        while True:
            now = time.time()
            for e in self.oom_events():
                first_seen.setdefault(e["id"], (now, e))
            if time.monotonic() >= next_runs_check:
                next_runs_check = time.monotonic() + 1
                ended = {c: self.ended(f"mbsync-{c}") for c in CHANNELS}
                ids = {r["command_id"] for r in ended[KILLED]}
                if (all(len(runs) >= RUNS for runs in ended.values()) and
                        any(e.get("command_id") in ids for _, e in first_seen.values())):
                    break
            self.assertLess(time.monotonic(), deadline,
                            f"{RUNS} runs of each schedule and an OOM event within "
                            f"{SCENARIO_TIMEOUT_S}s: ended "
                            f"{ {c: len(r) for c, r in ended.items()} }, events {first_seen}")
            time.sleep(0.2)
        for channel in CHANNELS:
            self.kctl("schedule", "pause", f"mbsync-{channel}")
        # The runs in flight as the pause arrived end, and their events arrive.
        time.sleep(2)
        for e in self.oom_events():
            first_seen.setdefault(e["id"], (time.time(), e))
        ended = {c: self.ended(f"mbsync-{c}") for c in CHANNELS}

        # Spacing: each run starts EVERY_S after the previous run of its schedule ended.
        errors = []
        for channel, runs in ended.items():
            runs = sorted(runs, key=lambda r: int(r["started_unix_ms"]))
            for prev, cur in zip(runs, runs[1:]):
                errors.append((int(cur["started_unix_ms"]) - int(prev["ended_unix_ms"]))
                              / 1000 - EVERY_S)
        print(f"\n  spacing error (start - previous end - {EVERY_S}s) over {len(errors)} gaps: "
              + ", ".join(f"{e * 1000:+.0f}ms" for e in errors)
              + f"; mean {sum(errors) / len(errors) * 1000:+.0f}ms, "
              f"max {max(errors) * 1000:+.0f}ms", flush=True)
        for e in errors:
            self.assertGreater(e, -0.05, f"a run started early: {errors}")
            self.assertLess(e, 1.0, f"a run started late: {errors}")

        # The archive channel is OOM-killed on every run; the others pass.
        for channel, runs in ended.items():
            outcomes = [r["outcome"] for r in runs]
            if channel == KILLED:
                self.assertEqual(set(outcomes), {"oom"}, runs)
                for r in runs:
                    self.assertTrue(r["result"].get("oom_killed"), r)
            else:
                self.assertEqual(set(outcomes), {"pass"}, runs)

        # Each kill is an event naming mbsync and an archive run's command, seen within 5 s. OOM
        # kills of no kfleet command (other processes on this machine: the agent reads the
        # machine's kernel log) are not the schedules' business.
        run_of = {r["command_id"]: (c, r) for c, runs in ended.items() for r in runs}
        first_seen = {i: (seen, e) for i, (seen, e) in first_seen.items()
                      if e.get("command_id") in run_of}
        latencies = []
        for seen, e in first_seen.values():
            self.assertEqual(e["oom"]["comm"], "mbsync", e)
            channel, run = run_of[e["command_id"]]
            self.assertEqual(channel, KILLED, e)
            self.assertEqual(e["oom"]["constraint"], "CONSTRAINT_MEMCG", e)
            latencies.append((seen - int(e["time_unix_ms"]) / 1000,
                              seen - int(run["ended_unix_ms"]) / 1000))
        killed_runs = {e["command_id"] for _, e in first_seen.values()}
        print(f"  {len(first_seen)} OOM events for {len(ended[KILLED])} archive runs; latency "
              "(seen by kctl events - kernel's time | - run's end): " +
              ", ".join(f"{k * 1000:.0f}ms | {r * 1000:.0f}ms" for k, r in latencies),
              flush=True)
        # The last run's event may still be on its way only if it ended after the last poll.
        self.assertGreaterEqual(len(killed_runs), len(ended[KILLED]) - 1, (killed_runs, ended))
        for kernel_latency, _ in latencies:
            self.assertLess(kernel_latency, EVENT_LATENCY_MAX_S, latencies)
        table = self.kctl("events", "--kind", "oom", "--host", HOST)
        self.assertIn("(mbsync)", table.stdout, table)
        self.assertIn(f"[command {sorted(killed_runs)[0]}]", table.stdout, table)

        # /metrics: the archive schedule's OOM kills only.
        text = self.metrics_text()
        kills = {c: sample_value(text, "kfleet_schedule_oom_kills_total", host=HOST,
                                 schedule=f"mbsync-{c}") for c in CHANNELS}
        print(f"  kfleet_schedule_oom_kills_total: {kills}", flush=True)
        self.assertGreaterEqual(kills[KILLED], len(ended[KILLED]), text)
        for channel in CHANNELS:
            if channel != KILLED:
                self.assertEqual(kills[channel], 0, text)
                self.assertEqual(sample_value(text, "kfleet_schedule_runs_total", host=HOST,
                                              schedule=f"mbsync-{channel}", result="pass"),
                                 len(ended[channel]), text)
        self.assertEqual(sample_value(text, "kfleet_schedule_runs_total", host=HOST,
                                      schedule=f"mbsync-{KILLED}", result="oom"),
                         len(ended[KILLED]), text)

        # The mail of the other channels is delivered: as many messages as on the server.
        for channel, (user, small, large) in CHANNELS.items():
            server = count_messages(os.path.join(self.tmp, "server", user, "Maildir"))
            local = count_messages(os.path.join(self.local, channel, "INBOX"))
            print(f"  {channel}: {local} of {server} messages fetched", flush=True)
            self.assertEqual(server, small + len(large))
            if channel == KILLED:
                self.assertLess(local, server)
            else:
                self.assertEqual(local, server)


if __name__ == "__main__":
    unittest.main()
