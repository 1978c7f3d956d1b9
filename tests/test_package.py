"""The Debian packages, installed in a fresh Debian 12 root the way a user installs them.

Validates that `cpack -G DEB` makes kfleet and kfleet-agent packages whose dependencies resolve
in a fresh bookworm root, that installing them creates the kfleet user, /var/lib/kfleet, the
units, /etc/kfleet and the man pages; that the units pass `systemd-analyze verify`; that the
units' own ExecStart lines, run as the units' users with the installed config files, run a job
(a controller with its local builder, an agent enrolled with a token, `kctl exec --all`); and
that `apt purge` leaves no file behind, but the state directory when KFLEET_KEEP_STATE=1 asks.

This machine's PID 1 is not systemd (CI runs in a container), so the units are verified and
their ExecStart lines run under `setpriv` as systemd would (User=, StateDirectory=), not
started by systemd. The root is built with mmdebstrap from the host's apt sources.
"""

import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import BUILD_DIR, free_port, wait_for

# What the snapshot of the root ignores: kernel file systems, apt's and dpkg's bookkeeping,
# logs, and the files that account databases and ld.so rewrite.
IGNORED_PREFIXES = ("/proc", "/sys", "/dev", "/run", "/tmp", "/var/lib/dpkg", "/var/lib/apt",
                    "/var/cache", "/var/log", "/root/debs", "/var/lib/systemd/deb-systemd")
IGNORED_FILES = {"/etc/passwd", "/etc/passwd-", "/etc/group", "/etc/group-", "/etc/shadow",
                 "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/ld.so.cache"}


def host_apt_sources():
    """The host's apt sources files (one-line .list and deb822 .sources), for mmdebstrap."""
    files = [f for f in ["/etc/apt/sources.list"] if os.path.getsize(f) > 0] \
        if os.path.exists("/etc/apt/sources.list") else []
    files += sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    files += sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
    if not files:
        raise AssertionError("no apt sources on this host (/etc/apt/sources.list{,.d}): the test "
                             "builds its Debian root from the mirror apt uses")
    return files


def unit_settings(path):
    """The [Service] settings of a unit file, as {key: [values]}."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]" and "=" in line:
                key, value = line.split("=", 1)
                out.setdefault(key, []).append(value)
    return out


class Root:
    """A Debian root: commands run in it through chroot in a mount namespace of their own, with
    /proc, /sys and /dev mounted (gone when the command exits)."""

    def __init__(self, path):
        self.path = path

    def argv(self, cmd, user=None):
        inner = ["chroot", self.path]
        if user:
            inner += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
                      "--reset-env"]
        inner += cmd
        script = (f"mount -t proc proc {self.path}/proc && "
                  f"mount --rbind /sys {self.path}/sys && "
                  f"mount --rbind /dev {self.path}/dev && exec " + shlex.join(inner))
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]

    def run(self, cmd, user=None, env=None, check=True, timeout=600):
        full_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
                    "LC_ALL": "C.UTF-8"}
        full_env.update(env or {})
        r = subprocess.run(self.argv(cmd, user), env=full_env, capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{shlex.join(cmd)} exited {r.returncode}\nstdout:\n{r.stdout}"
                                 f"\nstderr:\n{r.stderr}")
        return r

    def start(self, cmd, user, log):
        return subprocess.Popen(self.argv(cmd, user), stdout=log, stderr=subprocess.STDOUT,
                                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})

    def file(self, path):
        return os.path.join(self.path, path.lstrip("/"))

    def snapshot(self):
        """Every path in the root but the ignored ones, with its type and mode."""
        seen = {}
        for dirpath, dirnames, filenames in os.walk(self.path):
            rel_dir = "/" + os.path.relpath(dirpath, self.path).lstrip(".")
            if rel_dir != "/" and rel_dir.startswith(IGNORED_PREFIXES):
                dirnames[:] = []
                continue
            for name in dirnames + filenames:
                rel = os.path.join(rel_dir, name)
                if rel.startswith(IGNORED_PREFIXES) or rel in IGNORED_FILES:
                    continue
                st = os.lstat(os.path.join(dirpath, name))
                seen[rel] = st.st_mode
        return seen


class PackageTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kfleet-package-")
        os.chmod(cls.tmp, 0o755)
        cls.debs = cls.make_packages()
        cls.root = Root(os.path.join(cls.tmp, "root"))
        cls.make_root()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def make_packages(cls):
        out = os.path.join(cls.tmp, "packages")
        t0 = time.monotonic()
        r = subprocess.run(["cpack", "-G", "DEB", "--config",
                            os.path.join(BUILD_DIR, "CPackConfig.cmake"), "-B", out],
                           cwd=BUILD_DIR, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise AssertionError(f"cpack failed:\n{r.stdout}\n{r.stderr}")
        debs = {}
        for path in glob.glob(os.path.join(out, "*.deb")):
            name = subprocess.run(["dpkg-deb", "-f", path, "Package"], capture_output=True,
                                  text=True, check=True).stdout.strip()
            debs[name] = path
        print(f"packages in {time.monotonic() - t0:.1f} s: {sorted(debs)}", flush=True)
        return debs

    @classmethod
    def dependencies(cls):
        """The packages' Depends, without versions and without each other."""
        names = set()
        for path in cls.debs.values():
            depends = subprocess.run(["dpkg-deb", "-f", path, "Depends"], capture_output=True,
                                     text=True, check=True).stdout
            for part in depends.split(","):
                name = re.split(r"[\s(|:]", part.strip(), maxsplit=1)[0]
                if name and name not in cls.debs:
                    names.add(name)
        return sorted(names)

    @classmethod
    def make_root(cls):
        # The packages' dependencies go into the root first, so that the snapshot taken before
        # kfleet is installed holds them and the purge must give back exactly that root.
        include = ["systemd", "init-system-helpers"] + cls.dependencies()
        t0 = time.monotonic()
        r = subprocess.run(["mmdebstrap", "--variant=apt", "--include=" + ",".join(include),
                            "--aptopt=APT::Install-Recommends \"false\"", "bookworm",
                            cls.root.path] + host_apt_sources(),
                           capture_output=True, text=True, timeout=1200)
        if r.returncode != 0:
            raise AssertionError(f"mmdebstrap failed:\n{r.stderr[-6000:]}")
        print(f"Debian root in {time.monotonic() - t0:.1f} s with {', '.join(include)}",
              flush=True)
        os.makedirs(cls.root.file("/root/debs"))
        for path in cls.debs.values():
            shutil.copy(path, cls.root.file("/root/debs"))

    def install(self):
        debs = [f"/root/debs/{os.path.basename(p)}" for p in self.debs.values()]
        r = self.root.run(["apt-get", "install", "-y", "--no-install-recommends"] + debs)
        return r.stdout + r.stderr

    def purge(self, env=None):
        r = self.root.run(["apt-get", "purge", "-y", "kfleet", "kfleet-agent"], env=env)
        return r.stdout + r.stderr

    def test_install_run_purge(self):
        """Validates the packages' contents, units, a job run by the units' ExecStart lines, and
        a purge that leaves the root as it was."""
        self.assertEqual(sorted(self.debs), ["kfleet", "kfleet-agent"])
        before = self.root.snapshot()

        self.install()
        for path in ["/usr/bin/kfleet-controller", "/usr/bin/kctl", "/usr/bin/kfleet-agent",
                     "/etc/kfleet/controller.yaml", "/etc/kfleet/agent.yaml",
                     "/lib/systemd/system/kfleet-controller.service",
                     "/lib/systemd/system/kfleet-agent.service",
                     "/usr/share/kfleet/image/tiny/build.sh",
                     "/usr/share/kfleet/kernel/kfleet-guest.config",
                     "/usr/share/kfleet/prometheus/prometheus.yml",
                     "/usr/share/man/man8/kfleet-controller.8.gz",
                     "/usr/share/man/man8/kfleet-agent.8.gz", "/usr/share/man/man1/kctl.1.gz"]:
            self.assertTrue(os.path.lexists(self.root.file(path)), f"{path} not installed")
        passwd = self.root.run(["getent", "passwd", "kfleet"]).stdout
        self.assertRegex(passwd, r"^kfleet:x:\d+:\d+:kfleet controller[^:]*:/var/lib/kfleet:/usr/sbin/nologin")
        st = os.stat(self.root.file("/var/lib/kfleet"))
        uid = int(passwd.split(":")[2])
        self.assertEqual(st.st_uid, uid, "/var/lib/kfleet is not owned by kfleet")
        # The controller is enabled (it works on its defaults); the agent waits for its config.
        self.assertTrue(os.path.lexists(self.root.file(
            "/etc/systemd/system/multi-user.target.wants/kfleet-controller.service")))
        self.assertFalse(os.path.lexists(self.root.file(
            "/etc/systemd/system/multi-user.target.wants/kfleet-agent.service")))

        for unit in ["kfleet-controller.service", "kfleet-agent.service"]:
            r = self.root.run(["systemd-analyze", "verify", "--man=no", f"/lib/systemd/system/{unit}"],
                              check=False)
            self.assertEqual(r.returncode, 0, f"systemd-analyze verify {unit}:\n{r.stderr}")
            self.assertNotIn(unit, r.stderr, f"systemd-analyze verify {unit} warns:\n{r.stderr}")
            sec = self.root.run(["systemd-analyze", "security", "--offline=true",
                                 f"/lib/systemd/system/{unit}"], check=False)
            score = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\S+)",
                              sec.stdout + sec.stderr)
            self.assertIsNotNone(score, sec.stdout + sec.stderr)
            print(f"systemd-analyze security {unit}: {score.group(1)} {score.group(2)}",
                  flush=True)
            if unit == "kfleet-controller.service":
                self.assertLess(float(score.group(1)), 5.0, sec.stdout)

        self.run_job()

        self.purge(env={"KFLEET_KEEP_STATE": "1"})
        self.assertTrue(os.path.exists(self.root.file("/var/lib/kfleet/kfleet.db")),
                        "KFLEET_KEEP_STATE=1 apt purge removed the controller's database")
        self.assertTrue(os.path.isdir(self.root.file("/var/lib/kfleet-agent")))
        shutil.rmtree(self.root.file("/var/lib/kfleet"))
        shutil.rmtree(self.root.file("/var/lib/kfleet-agent"))

        # A second install and a plain purge: nothing of kfleet remains (the kfleet user in
        # /etc/passwd stays, as Debian keeps system users).
        self.install()
        self.purge()
        after = self.root.snapshot()
        added = sorted(set(after) - set(before))
        removed = sorted(set(before) - set(after))
        self.assertEqual(added, [], "apt purge left these behind")
        self.assertEqual(removed, [], "install and purge removed these")

    def run_job(self):
        """Runs the units' ExecStart lines as their users, with the installed config files."""
        controller_unit = unit_settings(
            self.root.file("/lib/systemd/system/kfleet-controller.service"))
        agent_unit = unit_settings(self.root.file("/lib/systemd/system/kfleet-agent.service"))
        self.assertEqual(controller_unit["User"], ["kfleet"])
        self.assertNotIn("User", agent_unit)
        port, metrics_port = free_port(), free_port()
        # A user's edits to the conffile: the port (this machine may run other controllers).
        with open(self.root.file("/etc/kfleet/controller.yaml"), "a") as f:
            f.write(f"\nlisten: 127.0.0.1:{port}\nmetrics-listen: 127.0.0.1:{metrics_port}\n")
        logs = []
        procs = []
        try:
            log = open(os.path.join(self.tmp, "controller.log"), "w+")
            logs.append(log)
            procs.append(self.root.start(shlex.split(controller_unit["ExecStart"][0]), "kfleet",
                                         log))
            kctl_yaml = self.root.file("/var/lib/kfleet/kctl.yaml")
            wait_for(lambda: os.path.exists(kctl_yaml), 60, "the controller's kctl.yaml")
            kctl = ["kctl", "--config", "/var/lib/kfleet/kctl.yaml"]
            wait_for(lambda: '"local-builder"' in self.root.run(
                kctl + ["hosts", "-o", "json"], check=False).stdout, 60,
                "the local builder (kfleet user) to register")

            token = json.loads(self.root.run(
                kctl + ["token", "create", "--name", "pkg-host", "-o", "json"]).stdout)
            with open(self.root.file("/etc/kfleet/agent.yaml"), "a") as f:
                f.write(f"\ncontroller: 127.0.0.1:{port}\ntoken: {token['token']}\n"
                        f"ca-fingerprint: {token['ca_fingerprint']}\n")
            log = open(os.path.join(self.tmp, "agent.log"), "w+")
            logs.append(log)
            procs.append(self.root.start(shlex.split(agent_unit["ExecStart"][0]), None, log))
            wait_for(lambda: '"pkg-host"' in self.root.run(
                kctl + ["hosts", "-o", "json"], check=False).stdout, 60,
                "the packaged agent to enrol and register")

            r = self.root.run(kctl + ["exec", "--all", "--", "cat", "/etc/debian_version"],
                              check=False)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("pkg-host", r.stdout)
            self.assertRegex(r.stdout, r"12\.\d+")
            self.assertNotIn("local-builder", r.stdout, "--all ran on the builder")
        except BaseException:
            for log in logs:
                log.seek(0)
                print(f"--- {log.name}\n{log.read()[-8000:]}", flush=True)
            raise
        finally:
            for p in reversed(procs):
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            for log in logs:
                log.close()


if __name__ == "__main__":
    unittest.main()
