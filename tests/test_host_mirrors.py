"""deploy/image/host-mirrors.sh against fake apt configurations (KFLEET_APT_ROOT): which package
mirrors and proxy settings an image recipe gets from the building host's apt.

No network and no root: the script only reads files and runs apt-config on the fake root.
"""

import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy", "image",
                      "host-mirrors.sh")

# An embedded key, as Debian's deb822 sources may carry one instead of a keyring path.
EMBEDDED_KEY = """Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mDMEZZZZZBYJKwYBBAHaRw8BAQdAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
 -----END PGP PUBLIC KEY BLOCK-----
"""


class HostMirrorsTest(unittest.TestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="kfleet-apt-root-")
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
        os.makedirs(os.path.join(self.root, "etc", "apt", "sources.list.d"))
        os.makedirs(os.path.join(self.root, "etc", "apt", "apt.conf.d"))
        self.write("etc/os-release", 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
                   "VERSION_CODENAME=bookworm\n")

    def write(self, path, text):
        full = os.path.join(self.root, path)
        with open(full, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text))
        return full

    def run_script(self, *args, env=None):
        """Runs the script on the fake root; returns (exit code, {KEY: [values]}, stderr)."""
        environ = {k: v for k, v in os.environ.items()
                   if not k.startswith("KFLEET_") and k != "APT_CONFIG"}
        environ["KFLEET_APT_ROOT"] = self.root
        environ.update(env or {})
        p = subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, env=environ,
                           timeout=30, check=False)
        values = {}
        for line in p.stdout.splitlines():
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
        return p.returncode, values, p.stderr

    def assert_mirrors(self, values, mirror, security):
        self.assertEqual(values.get("MIRROR"), [mirror], values)
        self.assertEqual(values.get("SECURITY_MIRROR"), [security], values)

    def test_one_line_sources_list(self):
        """Validates one-line sources: options in brackets, deb-src, other suites and comments are
        read past, and the first deb source for the suite with main is taken."""
        path = self.write("etc/apt/sources.list", """\
            # deb http://commented.example/debian bookworm main
            deb-src http://src.example/debian bookworm main
            deb http://other.example/debian trixie main
            deb http://contrib-only.example/debian bookworm contrib
            deb [arch=amd64 signed-by=/usr/share/keyrings/lab.gpg] http://mirror.lab.example/debian/ bookworm main contrib # lab
            deb [ arch=amd64 ] http://mirror.lab.example/debian-security bookworm-security main
            deb http://second.example/debian bookworm main
            """)
        rc, values, err = self.run_script()
        self.assertEqual(rc, 0, err)
        self.assert_mirrors(values, "http://mirror.lab.example/debian",
                            "http://mirror.lab.example/debian-security")
        self.assertEqual(values.get("MIRROR_FROM"), [path])
        self.assertEqual(values.get("MIRROR_SIGNED_BY"), ["/usr/share/keyrings/lab.gpg"])
        self.assertNotIn("SECURITY_MIRROR_SIGNED_BY", values)
        self.assertNotIn("APTOPT", values)

    def test_deb822_sources(self):
        """Validates deb822 .sources: several suites and URIs a paragraph, case-insensitive field
        names, Enabled: no skipped, a signed-by path kept and an embedded key not."""
        self.write("etc/apt/sources.list.d/debian.sources", textwrap.dedent("""\
            # Disabled: not taken although first.
            Types: deb
            URIs: http://disabled.example/debian
            Suites: bookworm
            Components: main
            Enabled: no

            Types: deb-src deb
            URIs: https://mirror.lab.example/debian
            Suites: bookworm bookworm-updates
            Components: main contrib
            Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

            types: deb
            uris: http://security.lab.example/debian-security
            suites: bookworm-security
            components: main
            """) + EMBEDDED_KEY)
        rc, values, err = self.run_script("--suite", "bookworm")
        self.assertEqual(rc, 0, err)
        self.assert_mirrors(values, "https://mirror.lab.example/debian",
                            "http://security.lab.example/debian-security")
        self.assertEqual(values.get("MIRROR_SIGNED_BY"),
                         ["/usr/share/keyrings/debian-archive-keyring.gpg"])
        self.assertNotIn("SECURITY_MIRROR_SIGNED_BY", values)

    def test_apt_order(self):
        """Validates apt's order: sources.list first, then sources.list.d by name (both styles
        mixed); other names in the directory are not read."""
        self.write("etc/apt/sources.list.d/00-off.list.disabled",
                   "deb http://disabled.example/debian bookworm main\n")
        self.write("etc/apt/sources.list.d/20-b.list",
                   "deb http://b.example/debian bookworm main\n")
        self.write("etc/apt/sources.list.d/10-a.sources", """\
            Types: deb
            URIs: http://a.example/debian
            Suites: bookworm-security
            Components: main
            """)
        rc, values, err = self.run_script()
        self.assertEqual(rc, 0, err)
        self.assert_mirrors(values, "http://b.example/debian", "http://a.example/debian")

        self.write("etc/apt/sources.list", "deb http://first.example/debian bookworm main\n")
        rc, values, err = self.run_script()
        self.assertEqual(rc, 0, err)
        self.assert_mirrors(values, "http://first.example/debian", "http://a.example/debian")

    @unittest.skipUnless(shutil.which("apt-config"), "apt-config is not installed")
    def test_proxy(self):
        """Validates that apt's proxy settings come out as mmdebstrap --aptopt values."""
        self.write("etc/apt/sources.list", """\
            deb http://mirror.lab.example/debian bookworm main
            deb http://mirror.lab.example/debian-security bookworm-security main
            """)
        self.write("etc/apt/apt.conf.d/01proxy", """\
            Acquire::http::Proxy "http://proxy.lab.example:3128/";
            Acquire::http::Proxy::mirror.lab.example "DIRECT";
            Acquire::https::Proxy "http://proxy.lab.example:3129/";
            """)
        rc, values, err = self.run_script()
        self.assertEqual(rc, 0, err)
        self.assertEqual(values.get("APTOPT"), [
            'Acquire::http::Proxy "http://proxy.lab.example:3128/"',
            'Acquire::http::Proxy::mirror.lab.example "DIRECT"',
            'Acquire::https::Proxy "http://proxy.lab.example:3129/"',
        ])

    def test_no_sources(self):
        """Validates that without apt sources the script fails naming the file to fix and the
        options that do without it."""
        rc, values, err = self.run_script()
        self.assertEqual(rc, 1)
        self.assertEqual(values, {})
        self.assertIn("apt has no source for bookworm main", err)
        self.assertIn(os.path.join(self.root, "etc/apt/sources.list.d/debian.sources"), err)
        self.assertIn("--mirror URL", err)
        self.assertIn("KFLEET_MIRROR", err)

    def test_no_security_source(self):
        """Validates that a missing security source is named as such, with the suites found."""
        self.write("etc/apt/sources.list", "deb http://mirror.lab.example/debian bookworm main\n")
        rc, _, err = self.run_script()
        self.assertEqual(rc, 1)
        self.assertIn("no source for bookworm-security main", err)
        self.assertIn("suites found: bookworm", err)
        self.assertIn("--security-mirror URL|none", err)

    def test_given_mirrors_win(self):
        """Validates --mirror and --security-mirror over KFLEET_MIRROR over apt's sources."""
        self.write("etc/apt/sources.list", "deb http://mirror.lab.example/debian bookworm main\n")
        rc, values, err = self.run_script("--security-mirror", "none",
                                          env={"KFLEET_MIRROR": "http://env.example/debian/"})
        self.assertEqual(rc, 0, err)
        self.assert_mirrors(values, "http://env.example/debian", "none")
        self.assertEqual(values.get("MIRROR_FROM"), ["KFLEET_MIRROR"])

        rc, values, err = self.run_script("--mirror", "http://flag.example/debian",
                                          "--security-mirror", "http://flag.example/security",
                                          env={"KFLEET_MIRROR": "http://env.example/debian"})
        self.assertEqual(rc, 0, err)
        self.assert_mirrors(values, "http://flag.example/debian", "http://flag.example/security")
        self.assertEqual(values.get("MIRROR_FROM"), ["--mirror"])

    def test_suite(self):
        """Validates that the suite defaults to the host's codename, and --suite picks another."""
        self.write("etc/apt/sources.list", """\
            deb http://old.example/debian bullseye main
            deb http://old.example/debian-security bullseye-security main
            """)
        rc, _, err = self.run_script()
        self.assertEqual(rc, 1)
        self.assertIn("no source for bookworm main", err)
        self.assertIn("suites found: bullseye bullseye-security", err)
        rc, values, err = self.run_script("--suite", "bullseye")
        self.assertEqual(rc, 0, err)
        self.assert_mirrors(values, "http://old.example/debian",
                            "http://old.example/debian-security")


if __name__ == "__main__":
    unittest.main()
