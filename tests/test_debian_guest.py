"""The `debian` image: a qcow2 disk with systemd, grub on the serial console and the agent as a
unit, built on demand (mmdebstrap), booted from its disk under libvirt through a copy-on-write
overlay. Slow (the first build downloads Debian, each boot takes about a minute under TCG), so one
test does it all: boot, then a kernel from linux-source-6.1 installed through grub with a one-shot
entry and verified, then a kernel that panics, after which the guest comes back on its previous
kernel; then, with systemd as PID 1, the agent's --watch-units follows timer-driven services, one
of which is OOM-killed on each run."""
import json
import os
import re
import subprocess
import sys
import time
import unittest

import harness
import test_dashboards
from test_metrics import sample_value

# Two services on systemd timers in the guest, as a mail host's fetches would be: `fetch` works,
# `hog` needs more memory than its MemoryMax and is OOM-killed on every run. Each timer starts its
# service 10 s after the previous run ended (OnUnitInactiveSec).
UNIT_FILES = {
    "kfleet-hog@.service": """[Unit]
Description=kfleet test: a fetch that needs more memory than it may have (%i)
[Service]
Type=oneshot
MemoryMax=24M
MemorySwapMax=0
ExecStart=/bin/sh -c 'tail /dev/zero'
""",
    "kfleet-fetch@.service": """[Unit]
Description=kfleet test: a fetch within its memory (%i)
[Service]
Type=oneshot
MemoryMax=64M
ExecStart=/bin/sh -c 'dd if=/dev/zero of=/dev/null bs=8M count=4; sleep 1'
""",
    "kfleet-hog@.timer": """[Timer]
OnActiveSec=1s
OnUnitInactiveSec=10s
AccuracySec=1s
""",
    "kfleet-fetch@.timer": """[Timer]
OnActiveSec=1s
OnUnitInactiveSec=10s
AccuracySec=1s
""",
}
HOG = "kfleet-hog@small.service"
FETCH = "kfleet-fetch@inbox.service"



class DebianGuestTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        self.tree = harness.kernel_source()
        self.start_guest_controller("""pools:
  deb:
    provider: libvirt
    image: debian
    cpus: 1
    memory: 1G
    max: 1
    boot_timeout: 20m
    idle_timeout: 60m
""", extra_args=harness.builder_args())
        self.addCleanup(lambda: self.controller.alive() and self.kctl("destroy", "deb",
                                                                      timeout=300))

    def test_debian_guest_boots_installs_kernels_and_falls_back(self):
        """Validates that a debian guest boots from its disk through grub and its agent unit
        registers; that a kernel built from linux-source-6.1 is installed there with a one-shot
        grub entry, boots and is verified; and that a kernel that panics is BOOT_FAILED, after
        which the guest comes back on the default (Debian) kernel."""
        started = time.time()
        self.assertEqual(self.kctl("bringup", "deb", "--timeout", "25m", timeout=1600).rc, 0)
        self.wait_host_state("deb-1", "ONLINE", timeout=1500)
        print(f"\ndebian guest registered {time.time() - started:.0f}s after bringup "
              f"(image build included)", file=sys.stderr)
        r = self.kctl("exec", "--host", "deb-1", "--", "sh", "-c",
                      "uname -r; systemctl is-active kfleet-agent; grub-editenv list; "
                      "test -d /boot/grub && echo grub-ok")
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.stdout, r"deb-1 \| \d+\.\d+\.\d+-\d+-amd64")
        self.assertIn("deb-1 | active", r.stdout)
        self.assertIn("deb-1 | grub-ok", r.stdout)
        debian_release = re.search(r"deb-1 \| (\S+)", r.stdout).group(1)

        # A kernel from linux-source-6.1: installed with update-grub and a one-shot grub entry,
        # booted, verified.
        started = time.time()
        b = self.kctl("boot", "--tree", self.tree, "--host", "deb-1", "--boot-timeout", "10m",
                      "--", "sh", "-c", "uname -r; grub-editenv list", timeout=3600)
        self.assertEqual(b.rc, 0, b)
        job = self.job(re.search(r"job (j-[0-9a-f]+)", b.stderr).group(1))
        release = job["build"]["release"]
        self.assertIn(f"deb-1 | {release}\n", b.stdout)
        # The default entry is still the Debian kernel: only the one-shot entry booted the new one.
        self.assertRegex(b.stdout, rf"deb-1 \| saved_entry=\S*{re.escape(debian_release)}")
        install = [c for c in job["commands"] if "kernel_install" in c["step"]][0]
        self.assertIn("grub-reboot", self.logs(install["id"]).decode(errors="replace"))
        reboot = [c for c in job["commands"] if "reboot" in c["step"]][0]
        print(f"debian guest: kernel {release} built, installed through grub and booted in "
              f"{time.time() - started:.0f}s (reboot to registration "
              f"{int(reboot['result']['wall_ms']) / 1000:.0f}s)", file=sys.stderr)

        # A kernel that panics at boot: BOOT_FAILED with the console kept, then the power-cycle
        # boots grub's default entry, the last good kernel.
        panic = os.path.join(self.tmp, "panic.config")
        with open(panic, "w") as f:
            f.write('CONFIG_CMDLINE_BOOL=y\nCONFIG_CMDLINE="console=ttyS0 panic=0 rdinit=/nonexistent '
                    'init=/nonexistent"\nCONFIG_CMDLINE_OVERRIDE=y\n')
        p = self.kctl("boot", "--tree", self.tree, "--host", "deb-1", "--config",
                      f"tinyconfig+kfleet-guest+{panic}", "--localversion", "-panic",
                      "--boot-timeout", "3m", timeout=3600)
        self.assertEqual(p.rc, 4, p)
        pjob = self.job(re.search(r"job (j-[0-9a-f]+)", p.stderr).group(1))
        preboot = [c for c in pjob["commands"] if "reboot" in c["step"]][0]
        self.assertEqual(preboot["result"]["verdict"], "BOOT_FAILED", preboot)
        # The console is kept with the step. Under grub this kernel resets before its serial
        # console starts, so the evidence is grub loading it, then the fallback entry booting.
        console = self.logs(preboot["id"], stream="console").decode(errors="replace")
        self.assertIn(f"Loading Linux {release}-panic", console)
        self.wait_host_state("deb-1", "ONLINE", timeout=600)
        u = self.kctl("exec", "--host", "deb-1", "--", "uname", "-r", timeout=300)
        self.assertEqual(u.rc, 0, u)
        self.assertIn(f"deb-1 | {debian_release}", u.stdout)

        self.check_watched_units()
        self.assertEqual(self.kctl("destroy", "deb", timeout=300).rc, 0)

    def guest_sh(self, script, timeout=300):
        r = self.kctl("exec", "--host", "deb-1", "--", "sh", "-c", script, timeout=timeout)
        self.assertEqual(r.rc, 0, r)
        return r.stdout

    def unit_events(self, kind):
        return [e for e in self.kctl_json("events", "--host", "deb-1", "--kind", kind,
                                          "--limit", "1000").get("events", [])
                if not e.get("before_agent")]

    def check_watched_units(self):
        """--watch-units on a host with systemd as PID 1: timer-driven services followed over
        D-Bus, the OOM kill inside one attributed to it in `kctl events`, each failed run an
        event, and the kfleet_unit_* samples in the controller's /metrics."""
        script = ["set -e"]
        for name, text in UNIT_FILES.items():
            script.append(f"cat >/etc/systemd/system/{name} <<'EOF'\n{text}EOF")
        script += [
            "systemctl daemon-reload",
            # The agent's new flag comes from the guest's settings; the restart runs outside this
            # command, which ends first.
            "echo kfleet.watch_units=kfleet-hog@*.service,kfleet-fetch@*.service,"
            "kfleet-none-*.service >>/etc/kfleet/settings",
            "systemd-run --on-active=2 --unit kfleet-test-restart systemctl restart kfleet-agent",
        ]
        self.guest_sh("\n".join(script))
        restarted = time.time()

        def watching():
            r = self.kctl("exec", "--host", "deb-1", "--", "sh", "-c",
                          "journalctl -b -u kfleet-agent -o cat | grep -c 'watching systemd "
                          "units' || true", timeout=120)
            return r.rc == 0 and re.search(r"deb-1 \| [1-9]", r.stdout)
        harness.wait_for(watching, 300, "the agent restarted with --watch-units")
        print(f"agent restarted with --watch-units in {time.time() - restarted:.0f}s",
              file=sys.stderr)
        journal = self.guest_sh("journalctl -b -u kfleet-agent -o cat | grep -- --watch-units")
        # A glob that matches nothing is a warning, not an error.
        self.assertIn('"kfleet-none-*.service" matches no unit', journal)

        # A real Prometheus scraping the controller, for the mail-host dashboard's units panels.
        test_dashboards.IntegrationTest.start_prometheus(self)
        prometheus_from = time.time()
        time.sleep(test_dashboards.RATE_INTERVAL_S + 1)  # samples before the first run
        self.guest_sh("systemctl start kfleet-hog@small.timer kfleet-fetch@inbox.timer")
        started = time.time()
        first_seen = {}
        deadline = time.monotonic() + 240
        while True:
            now = time.time()
            for kind in ("oom", "unit_failed"):
                for e in self.unit_events(kind):
                    first_seen.setdefault(e["id"], (now, e))
            ooms = [e for _, e in first_seen.values() if e["kind"] == "oom"]
            failed = [e for _, e in first_seen.values() if e["kind"] == "unit_failed"]
            metrics = self.metrics_text()
            fetch_ok = sample_value(metrics, "kfleet_unit_runs_total", instance="deb-1",
                                    unit=FETCH, result="success") or 0
            if ooms and failed and fetch_ok >= 2:
                break
            self.assertLess(time.monotonic(), deadline,
                            f"an OOM event, a unit_failed event and two good fetches: events "
                            f"{first_seen}, fetches {fetch_ok}")
            time.sleep(0.5)
        print(f"watched units: first OOM event {min(t for t, e in first_seen.values()) - started:.0f}s"
              f" after the timers started", file=sys.stderr)

        # The kill is the hog's, by its cgroup, and seen within seconds of the kernel's record.
        for e in ooms:
            self.assertEqual(e.get("unit"), HOG, e)
            self.assertFalse(e.get("command_id"), e)
        latencies = [t - int(e["time_unix_ms"]) / 1000 for t, e in first_seen.values()
                     if e["kind"] == "oom"]
        print(f"OOM kill in a watched unit to `kctl events`: "
              + ", ".join(f"{l:.1f}s" for l in latencies), file=sys.stderr)
        self.assertLess(min(latencies), 5, latencies)
        for e in failed:
            self.assertEqual(e.get("unit"), HOG, e)
            self.assertIn(f"{HOG} failed: oom-kill", e["message"])
        shown = self.kctl("events", "--host", "deb-1", "--kind", "oom")
        self.assertIn(f"[unit {HOG}]", shown.stdout)
        failed_shown = self.kctl("events", "--host", "deb-1", "--kind", "unit_failed")
        print("kctl events:\n" + shown.stdout.splitlines()[-1] + "\n" +
              failed_shown.stdout.splitlines()[-1], file=sys.stderr)

        # /metrics: per unit, its runs by result, last result, OOM kills, timer and memory.
        def unit_sample(name, unit, **labels):
            return sample_value(self.metrics_text(), name, instance="deb-1", unit=unit, **labels)
        harness.wait_for(lambda: unit_sample("kfleet_unit_oom_kills_total", HOG), 60,
                         "the hog's OOM kills in /metrics")
        self.assertGreaterEqual(unit_sample("kfleet_unit_oom_kills_total", HOG), 1)
        self.assertFalse(unit_sample("kfleet_unit_oom_kills_total", FETCH))
        self.assertEqual(unit_sample("kfleet_unit_last_result", HOG, result="oom-kill"), 1)
        self.assertGreaterEqual(unit_sample("kfleet_unit_runs_total", HOG, result="oom-kill"), 1)
        self.assertEqual(unit_sample("kfleet_unit_last_result", FETCH, result="success"), 1)
        self.assertEqual(unit_sample("kfleet_unit_timer_interval_seconds", HOG), 10)
        self.assertGreater(unit_sample("kfleet_unit_timer_last_trigger_timestamp_seconds", FETCH),
                           started - 60)
        self.assertGreaterEqual(unit_sample("kfleet_unit_last_duration_seconds", FETCH), 1)
        # dd's 8 MiB buffer: the peak is read while the fetch runs.
        self.assertGreater(unit_sample("kfleet_unit_last_peak_memory_bytes", FETCH), 8 << 20)
        self.check_unit_panels(prometheus_from)

    def check_unit_panels(self, start):
        """Every query of the mail-host dashboard's units panels (empty in test_dashboards, where
        no host runs systemd) returns data from the Prometheus that scraped this guest's units,
        and the OOM-killed unit is told apart from the healthy one."""
        time.sleep(test_dashboards.RATE_INTERVAL_S + 2)
        end = time.time()
        values = {"job": "kfleet", "pool": ".*", "host": "deb-1", "schedule": ".*",
                  "interval": "10", "__interval": f"{test_dashboards.STEP_S}s",
                  "__rate_interval": f"{test_dashboards.RATE_INTERVAL_S}s",
                  "__range": f"{int(end - start)}s"}
        path = os.path.join(test_dashboards.DASHBOARD_DIR, "kfleet-mailhost.json")
        problems, results = [], {}
        for q in test_dashboards.queries(path, test_dashboards.load(path)):
            title = q.panel and q.panel.get("title")
            if title not in test_dashboards.UNIT_PANELS:
                continue
            expr = test_dashboards.substitute(q.expr, values)
            api = test_dashboards.IntegrationTest.api
            if q.instant:
                result = api(self, "query", query=expr, time=end)["result"]
            else:
                result = api(self, "query_range", query=expr, start=start, end=end,
                             step=test_dashboards.STEP_S)["result"]
            results[title] = result
            if not test_dashboards.finite_values(result):
                problems.append(f"{q}: no data for {expr}")
        self.assertEqual(sorted(results), sorted(test_dashboards.UNIT_PANELS))
        self.assertEqual(problems, [], "\n".join(problems))
        last = {s["metric"]["unit"]: s["metric"]["result"]
                for s in results["Units: last result"]}
        self.assertEqual(last, {HOG: "oom-kill", FETCH: "success"})
        killed = {s["metric"]["unit"]: max(test_dashboards.finite_values([s]))
                  for s in results["Units: OOM kills"]}
        self.assertGreater(killed[HOG], 0, killed)
        self.assertEqual(killed.get(FETCH, 0), 0, killed)

        # The picture of it (docs/mail-hosts.md shows it): the units row drawn with data.
        png = os.path.join(harness.BUILD_DIR, "dashboards", "kfleet-mailhost-units.png")
        os.makedirs(os.path.dirname(png), exist_ok=True)
        argv = [test_dashboards.RENDER_PYTHON, test_dashboards.RENDER, "--prometheus",
                self.prometheus, "--dashboard", path, "--out", png, "--start", str(start),
                "--end", str(end), "--step", str(test_dashboards.STEP_S), "--scrape-interval",
                f"{test_dashboards.SCRAPE_INTERVAL_S}s"]
        for name, value in values.items():
            if not name.startswith("__"):
                argv += ["--var", f"{name}={value}"]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        drawn = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual([t for t in drawn["no_data"] if t in test_dashboards.UNIT_PANELS], [],
                         drawn)
        print(f"mail-host dashboard with watched units: {png}", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
