"""The `debian` image: a qcow2 disk with systemd, grub on the serial console and the agent as a
unit, built on demand (mmdebstrap), booted from its disk under libvirt through a copy-on-write
overlay. Slow (the first build downloads Debian, each boot takes about a minute under TCG), so one
test does it all: boot, then a kernel from linux-source-6.1 installed through grub with a one-shot
entry and verified, then a kernel that panics, after which the guest comes back on its previous
kernel."""
import os
import re
import sys
import time
import unittest

import harness



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
        self.assertEqual(self.kctl("destroy", "deb", timeout=300).rc, 0)


if __name__ == "__main__":
    unittest.main()
