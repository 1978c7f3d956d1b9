"""TLS off loopback: an agent in a network namespace enrols with a token and runs a job; users,
roles, revocation and audit through kctl; certificates renewed without dropping the session."""

import os
import re
import secrets
import subprocess
import unittest

import harness


def run(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True)


class Namespace:
    """A network namespace joined to this host by a veth pair, with test addresses of its own
    (198.18.0.0/15, the range set aside for benchmark tests). Removed by remove()."""

    def __init__(self):
        tag = secrets.token_hex(3)
        self.name = f"kft-{tag}"
        self.host_if, self.ns_if = f"kfh{tag}", f"kfn{tag}"
        octet = int(tag[:2], 16) % 250 + 1
        self.host_ip, self.ns_ip = f"198.18.{octet}.1", f"198.18.{octet}.2"
        run("ip", "netns", "add", self.name)
        try:
            run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            run("ip", "link", "set", self.ns_if, "netns", self.name)
            run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
            run("ip", "link", "set", self.host_if, "up")
            run("ip", "-n", self.name, "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
            run("ip", "-n", self.name, "link", "set", self.ns_if, "up")
            run("ip", "-n", self.name, "link", "set", "lo", "up")
        except subprocess.CalledProcessError:
            self.remove()
            raise

    def remove(self):
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


class OffLoopbackTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        if harness.INSECURE:
            self.skipTest("KFLEET_TEST_INSECURE is set: this test is about TLS")
        self.ns = Namespace()
        self.addCleanup(self.ns.remove)
        self.controller_host = self.ns.host_ip
        self.start_controller()

    def start_ns_agent(self, name, *flags):
        state = os.path.join(self.tmp, f"agent-{name}")
        argv = ["ip", "netns", "exec", self.ns.name, harness.AGENT_BIN, "--controller",
                self.address, "--state-dir", state, "--name", name, "--reconnect-max", "1s"]
        return self._start(f"agent-{name}", argv + list(flags))

    def test_namespace_agent_enrols_and_runs_a_job(self):
        """Validates that an agent in another network namespace enrols over TLS with a token and
        the CA's fingerprint, and runs a job there."""
        token, fingerprint = self.create_token({"site": "lab"})
        self.assertRegex(fingerprint, r"^sha256:[0-9a-f]{64}$")
        agent = self.start_ns_agent("netns-1", "--labels", "site=lab", "--token", token,
                                    "--ca-fingerprint", fingerprint)
        self.wait_host_state("netns-1", "ONLINE", timeout=30)
        host = self.host("netns-1")
        self.assertEqual(host["labels"], {"site": "lab"})
        r = self.kctl("exec", "--host", "netns-1", "--", "sh", "-c",
                      "ip -o -4 addr show scope global | awk '{print $4}'")
        self.assertEqual(r.rc, harness.EXIT_PASS, r)
        self.assertEqual(r.stdout.strip(), f"netns-1 | {self.ns.ns_ip}/30")
        self.assertTrue(os.path.isfile(os.path.join(self.tmp, "agent-netns-1", "pki", "agent.crt")))
        # The token was for one use: restarted, the agent keeps its certificate and needs none.
        agent.stop()
        self.start_ns_agent("netns-1")
        self.wait_host_state("netns-1", "ONLINE", timeout=30)

    def test_wrong_fingerprint_is_refused(self):
        """Validates that an agent given another CA's fingerprint will not enrol with this
        controller, and says why."""
        token, _ = self.create_token()
        agent = self.start_ns_agent("netns-2", "--token", token,
                                    "--ca-fingerprint", "sha256:" + "ab" * 32)
        self.assertNotEqual(agent.wait(timeout=30), 0)
        with open(agent.log_path) as f:
            log = f.read()
        self.assertIn("not the one the token was made for", log)

    def test_plaintext_off_loopback_is_refused(self):
        """Validates that plaintext to a non-loopback address is refused, naming TLS as the fix."""
        agent = self.start_ns_agent("netns-3", "--insecure")
        self.assertNotEqual(agent.wait(timeout=30), 0)
        with open(agent.log_path) as f:
            self.assertIn("leave out --insecure to use TLS", f.read())
        r = harness.subprocess.run([harness.KCTL_BIN, "--controller", self.address, "--insecure",
                                    "hosts"], capture_output=True, text=True, env=self.env,
                                   timeout=30)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("TLS", r.stderr)


class AccessTest(harness.KfleetTestCase):

    def setUp(self):
        super().setUp()
        if harness.INSECURE:
            self.skipTest("KFLEET_TEST_INSECURE is set: this test is about TLS")

    def test_users_roles_revocation_and_audit(self):
        """Validates kctl user create/revoke, a viewer refused exec (exit 9), hosts revoke ending
        an agent's session, and kctl audit showing who did what."""
        self.start_controller()
        self.start_agent("acc-1")
        out = os.path.join(self.tmp, "vera")
        r = self.kctl("user", "create", "vera", "--role", "viewer", "--out", out)
        self.assertEqual(r.rc, 0, r)
        vera = os.path.join(out, "kctl.yaml")
        self.assertEqual(os.stat(os.path.join(out, "vera.key")).st_mode & 0o777, 0o600)

        def as_vera(*args):
            return harness.subprocess.run([harness.KCTL_BIN, "--config", vera, *args],
                                          capture_output=True, text=True, env=self.env,
                                          timeout=60)

        r = as_vera("hosts")
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("acc-1", r.stdout)
        r = as_vera("exec", "--all", "--", "true")
        self.assertEqual(r.returncode, 9, r)
        self.assertIn("operator or admin", r.stderr)

        r = self.kctl("user", "revoke", "vera")
        self.assertEqual(r.rc, 0, r)
        r = as_vera("hosts")
        self.assertNotEqual(r.returncode, 0, r)

        r = self.kctl("hosts", "revoke", "acc-1")
        self.assertEqual(r.rc, 0, r)
        self.wait_host_state("acc-1", "OFFLINE", timeout=30)

        audit = self.kctl_json("audit").get("entries", [])
        seen = {(e.get("who"), e.get("method"), e.get("result", "").split(":")[0]) for e in audit}
        self.assertIn(("admin", "AccessService/CreateUser", "OK"), seen)
        self.assertIn(("vera", "FleetService/SubmitJob", "PERMISSION_DENIED"), seen)
        self.assertIn(("admin", "AccessService/RevokeHost", "OK"), seen)

    def test_certificate_renewed_without_dropping_the_session(self):
        """Validates that an agent renews its certificate at two thirds of its lifetime and goes
        on working on the same session."""
        self.start_controller(extra_args=["--agent-cert-ttl", "12s"])
        agent = self.start_agent("renew-1")
        crt = os.path.join(agent.state_dir, "pki", "agent.crt")
        with open(crt) as f:
            first = f.read()

        def renewed_twice():
            with open(agent.log_path) as f:
                return len(re.findall("certificate renewed", f.read())) >= 2

        harness.wait_for(renewed_twice, 40, "two certificate renewals in the agent's log")
        with open(crt) as f:
            self.assertNotEqual(f.read(), first)
        with open(agent.log_path) as f:
            log = f.read()
        self.assertEqual(len(re.findall("connected to ", log)), 1, log[-3000:])
        r = self.kctl("exec", "--host", "renew-1", "--", "echo", "still-here")
        self.assertEqual(r.rc, harness.EXIT_PASS, r)
        self.assertIn("still-here", r.stdout)


if __name__ == "__main__":
    unittest.main()
