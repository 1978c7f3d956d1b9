"""The `debian` image: a qcow2 disk with systemd, grub on the serial console and the agent as a
unit, built on demand (mmdebstrap), booted from its disk under libvirt through a copy-on-write
overlay. Slow (the first build downloads Debian), so it is the one test of that image."""
import sys
import time
import unittest

import harness



class DebianGuestTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        self.start_guest_controller("""pools:
  deb:
    provider: libvirt
    image: debian
    cpus: 1
    memory: 1G
    max: 1
    boot_timeout: 20m
""")
        self.addCleanup(lambda: self.controller.alive() and self.kctl("destroy", "deb",
                                                                      timeout=300))

    def test_debian_guest_boots_from_disk_with_grub_and_registers(self):
        """Validates that a debian guest boots from its disk through grub, its agent unit
        registers, runs commands, and grub's one-shot entry tool works there."""
        started = time.time()
        self.assertEqual(self.kctl("bringup", "deb").rc, 0)
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
        self.assertEqual(self.kctl("destroy", "deb", timeout=300).rc, 0)


if __name__ == "__main__":
    unittest.main()
