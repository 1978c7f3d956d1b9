"""Real guests: the default pool brings up a `tiny` guest under libvirt (KVM if it works, else
TCG); its agent registers, runs commands, reboots for real, and the guest is destroyed cleanly.
Needs root and libvirtd (scripts/libvirt.sh: kfleet_start_libvirtd).

The controller and kctl run from an installed prefix (`cmake --install BUILD --prefix DIR`), with
no flag naming the image recipes or the agent binary: the install layout (bin/,
share/kfleet/image) is what the controller looks for beside itself. The other vm tests run from
the build tree, whose share/kfleet links give the same layout (cmake/install.cmake)."""
import os
import subprocess
import sys
import time
import unittest

import harness



def virsh(*args):
    return subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True,
                          text=True, timeout=60)


class GuestsTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        self.use_installed_prefix()
        self.start_guest_controller()
        self.addCleanup(self.destroy_everything)

    def use_installed_prefix(self):
        prefix = os.path.join(self.tmp, "prefix")
        r = subprocess.run(["cmake", "--install", harness.BUILD_DIR, "--prefix", prefix],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for path in ["bin/kfleet-controller", "bin/kfleet-agent", "bin/kctl",
                     "share/kfleet/image/tiny/build.sh", "share/kfleet/kernel/kfleet-guest.config",
                     "etc/kfleet/controller.yaml", "lib/systemd/system/kfleet-agent.service",
                     "share/man/man8/kfleet-controller.8.gz"]:
            self.assertTrue(os.path.exists(os.path.join(prefix, path)), f"{path} not installed")
        for name in ("CONTROLLER_BIN", "KCTL_BIN"):
            self.addCleanup(setattr, harness, name, getattr(harness, name))
        harness.CONTROLLER_BIN = os.path.join(prefix, "bin", "kfleet-controller")
        harness.KCTL_BIN = os.path.join(prefix, "bin", "kctl")

    def destroy_everything(self):
        if self.controller is not None and self.controller.alive():
            self.kctl("destroy", "local", timeout=300)

    def guest_dir(self, name):
        return os.path.join(self.controller_state, "guests", name)

    def test_tiny_guest_registers_runs_reboots_and_is_destroyed(self):
        """Validates that a tiny guest boots and registers, runs a command, really reboots (new boot
        id, same host id, step passes), and that destroy leaves no domain or file behind."""
        started = time.time()
        r = self.kctl("bringup", "local", "--timeout", "15m", timeout=1000)
        self.assertEqual(r.rc, 0, r)
        self.wait_host_state("local-1", "ONLINE", timeout=600)
        pools = self.kctl_json("pools")["pools"]
        guest = [g for p in pools for g in p.get("guests", []) if g["name"] == "local-1"][0]
        events = self.kctl_json("events", "--host", "local-1")["events"]
        registered = [e for e in events if e["kind"] == "guest_registered"]
        print(f"\nguest local-1 ({guest.get('accel')}): registered "
              f"{time.time() - started:.1f}s after bringup (image build included); "
              f"{registered[0]['message'] if registered else ''}", file=sys.stderr)

        r = self.kctl("exec", "--host", "local-1", "--", "uname", "-r")
        self.assertEqual(r.rc, 0, r)
        release = r.stdout.split("|", 1)[1].strip()
        self.assertRegex(release, r"^\d+\.\d+\.\d+-\d+-amd64$")
        host = [h for h in self.hosts() if h["name"] == "local-1"][0]
        self.assertEqual(host["labels"]["pool"], "local")

        before_boot, host_id = host["boot_id"], host["id"]
        t0 = time.time()
        r = self.kctl("reboot", "--host", "local-1", "--timeout", "5m", timeout=400)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("rebooted and registered again after", r.stdout)
        host = [h for h in self.hosts() if h["name"] == "local-1"][0]
        self.assertEqual(host["id"], host_id, "same host id after the reboot")
        self.assertNotEqual(host["boot_id"], before_boot, "a new boot id after the reboot")
        print(f"reboot to registration: {time.time() - t0:.1f}s ({r.stdout.strip()})",
              file=sys.stderr)
        kinds = [e["kind"] for e in self.kctl_json("events", "--host", "local-1")["events"]]
        self.assertIn("boot", kinds)

        # The console of the guest is kept as the console log of the command that ran there.
        job = self.kctl_json("jobs")["jobs"][0]
        cmd = job["commands"][0]["id"]
        console = self.kctl("logs", cmd, "--stream", "console", binary=True)
        self.assertEqual(console.rc, 0)

        # A boot that cannot reach the agent: BOOT_FAILED after the deadline, the console shows
        # the panic, the guest is power-cycled and comes back on its usual command line.
        before_boot = host["boot_id"]
        t0 = time.time()
        r = self.kctl("reboot", "--host", "local-1", "--cmdline", "rdinit=/bin/false",
                      "--timeout", "40s", timeout=300)
        self.assertEqual(r.rc, 4, r)
        self.assertIn("BOOT_FAILED", r.stdout)
        self.assertIn("power-cycled", r.stdout)
        job = self.kctl_json("jobs")["jobs"][0]
        cmd = job["commands"][0]["id"]
        console = self.kctl("logs", cmd, "--stream", "console", binary=True)
        self.assertEqual(console.rc, 0)
        self.assertIn(b"Attempted to kill init", console.stdout)
        print(f"boot failure detected {time.time() - t0:.1f}s after the reboot (deadline 40s)",
              file=sys.stderr)
        kinds = [e["kind"] for e in self.kctl_json("events", "--host", "local-1")["events"]]
        self.assertIn("power_cycle", kinds)
        self.assertIn("boot_failed", kinds)
        harness.wait_for(
            lambda: [h for h in self.hosts() if h["name"] == "local-1"
                     and h["state"] == "ONLINE" and h["boot_id"] != before_boot],
            300, "local-1 to come back on its usual command line")
        r = self.kctl("exec", "--host", "local-1", "--", "true")
        self.assertEqual(r.rc, 0, r)

        domain = "local-1"
        self.assertTrue(os.path.isdir(self.guest_dir(domain)))
        r = self.kctl("destroy", "local", timeout=300)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("destroyed local-1", r.stdout)
        listed = virsh("list", "--all", "--name").stdout.split()
        self.assertNotIn(self.domain_prefix + domain, listed)
        self.assertFalse(os.path.exists(self.guest_dir(domain)),
                         os.listdir(os.path.dirname(self.guest_dir(domain))))
        self.assertNotIn("local-1", [h["name"] for h in self.hosts()])


class GuestPoolAutoscaleTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        self.start_guest_controller("""pools:
  auto:
    provider: libvirt
    image: tiny
    cpus: 1
    memory: 384M
    min: 0
    max: 2
    idle_timeout: 5s
""")
        self.addCleanup(lambda: self.controller.alive() and self.kctl("destroy", "auto",
                                                                      timeout=300))

    def guests(self):
        pools = self.kctl_json("pools")["pools"]
        return [g for p in pools if p["name"] == "auto" for g in p.get("guests", [])]

    def test_pool_grows_with_waiting_commands_and_shrinks_when_idle(self):
        """Validates that a libvirt pool with min 0 and max 2 grows to 2 guests when four commands
        wait for it, runs them all, and shrinks to 0 after the idle timeout, leaving no domain."""
        jobs = [self.kctl_background("exec", "-l", "pool=auto", "--count", "1", "--", "sleep", "3",
                                     name=f"kctl-{i}") for i in range(4)]
        harness.wait_for(lambda: len(self.guests()) == 2, 120, "the pool to grow to 2 guests")
        for j in jobs:
            self.assertEqual(j.wait(600), 0, "every waiting command ran in a guest and passed")
        self.assertLessEqual(len(self.guests()), 2)
        harness.wait_for(lambda: not self.guests(), 180, "the pool to shrink to 0")
        listed = virsh("list", "--all", "--name").stdout.split()
        self.assertFalse([d for d in listed if d.startswith(self.domain_prefix + "auto-")], listed)


if __name__ == "__main__":
    unittest.main()
