"""Kernels on `tiny` guests: a real kernel from Debian's linux-source-6.1 built once on the
controller's local builder, stored in the artifact store, booted in a guest through the provider
and verified (release and build identity); the same job again reuses the stored build; a guest
that runs another kernel than the one expected, and a kernel that panics, are BOOT_FAILED.

The builder keeps its build directories in /var/cache/kfleet/kernel-work, so only the first run
on a machine builds from scratch (ccache helps that one too)."""
import json
import os
import re
import sys
import time
import unittest

import harness

class KernelTinyTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        self.tree = self.start_kernel_controller()

    def boot(self, *extra, timeout=3600):
        return self.kctl("boot", "--tree", self.tree, "-l", "pool=local", "--boot-timeout",
                         "3m", *extra, "--", "uname", "-r", timeout=timeout)

    def job_of(self, result):
        m = re.search(r"job (j-[0-9a-f]+)", result.stderr)
        self.assertIsNotNone(m, result)
        return self.job(m.group(1))

    def command(self, job, kind):
        for c in job["commands"]:
            if kind in c["step"]:
                return c
        self.fail(f"no {kind} command in {json.dumps(job)[:2000]}")

    def test_build_boot_verify_reuse_wrong_kernel_and_panic(self):
        """Validates the kernel cycle on a tiny guest: build, install through the provider,
        reboot into it, `uname -r` equal to the built release; the same job again runs no make;
        a reboot that expects another kernel is BOOT_FAILED naming both; a kernel that panics is
        BOOT_FAILED with the console kept, and the guest comes back on its usual kernel."""
        started = time.time()
        r = self.boot()
        self.assertEqual(r.rc, 0, r)
        job = self.job_of(r)
        release = job["build"]["release"]
        identity = job["build"]["identity"]
        self.assertRegex(release, r"^6\.1\.\d+")
        self.assertRegex(r.stdout, rf"local-1 \| {re.escape(release)}\n")
        build = self.command(job, "kernel_build")
        boot = self.command(job, "reboot")
        self.assertEqual(boot["result"]["verdict"], "PASS", boot)
        print(f"\nfirst boot job: {time.time() - started:.0f}s end to end; build "
              f"{int(build['result'].get('wall_ms', 0)) / 1000:.0f}s "
              f"(make {int(job['build'].get('build_ms', 0)) / 1000:.0f}s), reboot to registration "
              f"{int(boot['result'].get('wall_ms', 0)) / 1000:.1f}s", file=sys.stderr)
        self.assertIn("kernel " + release, r.stdout + r.stderr)
        # /proc/version carries the build identity the controller checked.
        v = self.kctl("exec", "-l", "pool=local", "--", "cat", "/proc/version")
        self.assertEqual(v.rc, 0, v)
        self.assertIn("kf-" + identity[:16], v.stdout)
        # The artifacts of the build are listed and downloadable, verified.
        a = self.kctl("artifacts", job["id"])
        self.assertEqual(a.rc, 0, a)
        for name in ("vmlinuz", "config", "System.map", "kernel-release"):
            self.assertIn(name, a.stdout)
        dest = os.path.join(self.tmp, "kernel-release")
        g = self.kctl("artifacts", "get", job["id"], "kernel-release", "-O", dest)
        self.assertEqual(g.rc, 0, g)
        with open(dest) as f:
            self.assertEqual(f.read().strip(), release)

        # The same job again: the stored build is reused, no make runs.
        started = time.time()
        r2 = self.boot()
        self.assertEqual(r2.rc, 0, r2)
        job2 = self.job_of(r2)
        build2 = self.command(job2, "kernel_build")
        self.assertTrue(build2["result"]["kernel"].get("reused"), build2)
        self.assertEqual(job2["build"]["identity"], identity)
        log = self.logs(build2["id"]).decode(errors="replace")
        self.assertIn("make not run", log)
        self.assertNotIn("make -j", log)
        self.assertRegex(r2.stdout, rf"local-1 \| {re.escape(release)}\n")
        print(f"second boot job (build reused): {time.time() - started:.0f}s end to end",
              file=sys.stderr)

        # A reboot that expects another kernel than the one that comes up.
        spec = os.path.join(self.tmp, "wrong.yaml")
        with open(spec, "w") as f:
            f.write("name: wrong-kernel\n"
                    "hosts: {labels: {pool: local}, count: 1}\n"
                    "steps:\n"
                    "  - reboot: {expect_release: 9.9.9-nope, timeout: 3m}\n")
        w = self.kctl("run", "-f", spec, timeout=600)
        self.assertEqual(w.rc, 4, w)
        wjob = self.job_of(w)
        detail = self.command(wjob, "reboot")["result"]["detail"]
        self.assertIn("expected 9.9.9-nope, running " + release, detail)

        # A kernel that panics at boot (its built-in command line runs no init).
        panic = os.path.join(self.tmp, "panic.config")
        with open(panic, "w") as f:
            f.write('CONFIG_CMDLINE_BOOL=y\nCONFIG_CMDLINE="console=ttyS0 panic=0 rdinit=/nonexistent '
                    'init=/nonexistent"\nCONFIG_CMDLINE_OVERRIDE=y\n')
        started = time.time()
        p = self.kctl("boot", "--tree", self.tree, "-l", "pool=local", "--config",
                      f"tinyconfig+kfleet-guest+{panic}", "--localversion", "-panic",
                      "--boot-timeout", "90s", timeout=3600)
        self.assertEqual(p.rc, 4, p)
        pjob = self.job_of(p)
        preboot = self.command(pjob, "reboot")
        self.assertEqual(preboot["result"]["verdict"], "BOOT_FAILED", preboot)
        console = self.logs(preboot["id"], stream="console").decode(errors="replace")
        self.assertIn("Kernel panic", console)
        print(f"panicking kernel: BOOT_FAILED {time.time() - started:.0f}s after submit",
              file=sys.stderr)
        # Power-cycled: back on the image's own kernel.
        self.wait_host_state("local-1", "ONLINE", timeout=300)
        u = self.kctl("exec", "-l", "pool=local", "--", "uname", "-r", timeout=300)
        self.assertEqual(u.rc, 0, u)
        self.assertNotIn("-panic", u.stdout)
        self.assertRegex(u.stdout, r"local-1 \| \d+\.\d+\.\d+-\d+-amd64")


if __name__ == "__main__":
    unittest.main()
