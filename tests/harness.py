"""Multi-process test harness for kfleet: a controller, agents and kctl on loopback.

Each test gets its own temporary directory, holding the state dirs of the processes it starts and
their logs. The logs are printed when a test fails. Processes are stopped only through the pid the
harness started them with (SIGTERM, then SIGKILL after a grace period), never by name.

The binaries are taken from $KFLEET_BUILD_DIR (default /work/main/build):
controller/kfleet-controller, agent/kfleet-agent and cli/kctl.
"""

import json
import os
import shutil
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

BUILD_DIR = os.environ.get("KFLEET_BUILD_DIR", "/work/main/build")
# The controllers tests start serve mutual TLS, as kfleet does by default; KFLEET_TEST_INSECURE=1
# runs them in plaintext on loopback instead.
INSECURE = os.environ.get("KFLEET_TEST_INSECURE", "") not in ("", "0")
CONTROLLER_BIN = os.path.join(BUILD_DIR, "controller", "kfleet-controller")
AGENT_BIN = os.path.join(BUILD_DIR, "agent", "kfleet-agent")
KCTL_BIN = os.path.join(BUILD_DIR, "cli", "kctl")

# Exit codes of kctl (docs: `kctl job --help`, EXIT STATUS).
EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_UNREACHABLE = 3
EXIT_TIMEOUT = 5
EXIT_INFRA_ERROR = 6
EXIT_CANCELLED = 7

POLL_INTERVAL_S = 0.1
STOP_GRACE_S = 5.0
# Bytes of each log file shown when a test fails.
LOG_TAIL_BYTES = 16384


class WaitTimeout(AssertionError):
    """wait_for gave up; the message says what was awaited and what was seen last."""


def free_port():
    """Returns a TCP port on 127.0.0.1 that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what):
    """Polls predicate() every 0.1 s until it returns a truthy value, which is returned.

    Raises WaitTimeout naming `what` (and the last exception predicate raised, if any)
    when `timeout` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last_error = None
        except Exception as e:  # pylint: disable=broad-except
            last_error = e
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout:.1f}s waiting for {what}"
            if last_error is not None:
                msg += f" (last error: {last_error!r})"
            raise WaitTimeout(msg)
        time.sleep(POLL_INTERVAL_S)


def _start_time(pid):
    """The start time of process pid (clock ticks since boot), or None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def pid_alive(pid):
    """True if a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            # The state follows the command name, which is in parentheses and may hold spaces.
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, IndexError):
        return False


class KctlResult:
    """What one kctl run returned."""

    def __init__(self, args, rc, stdout, stderr):
        self.args = args
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def json(self):
        """The stdout parsed as one JSON document."""
        return json.loads(self.stdout)

    def __repr__(self):
        return (f"kctl {' '.join(self.args)}: rc={self.rc}\n--- stdout ---\n{self.stdout[-4000:]}"
                f"\n--- stderr ---\n{self.stderr[-4000:]}")


class Process:
    """A process the harness started; its stdout and stderr go to one log file."""

    def __init__(self, name, argv, log_path, env=None, stdout_path=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.stdout_path = stdout_path
        log = open(log_path, "ab")
        out = open(stdout_path, "wb") if stdout_path else log
        try:
            log.write(f"=== started: {' '.join(argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=log,
                                          env=env)
        finally:
            log.close()
            if out is not log:
                out.close()
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def signal(self, sig):
        """Sends sig to this process (by its pid) if it is still running."""
        if self.alive():
            os.kill(self.pid, sig)

    def kill(self):
        """SIGKILLs the process and reaps it, as a crash would end it."""
        self.signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, grace=STOP_GRACE_S):
        """SIGTERM, then SIGKILL if still running after `grace` seconds; returns the exit code."""
        if self.alive():
            # A stopped process cannot act on SIGTERM.
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(timeout=10)
        return self.popen.returncode

    def wait(self, timeout):
        return self.popen.wait(timeout=timeout)

    def read_stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read()


class KfleetTestCase(unittest.TestCase):
    """A unittest.TestCase with a controller, agents and kctl at hand.

    setUp makes a temporary directory; every process started through the helpers is stopped when
    the test ends. On failure the logs of all processes are written to stderr.
    """

    def setUp(self):
        super().setUp()
        for binary in (CONTROLLER_BIN, AGENT_BIN, KCTL_BIN):
            if not os.access(binary, os.X_OK):
                self.fail(f"{binary} is missing: build it (cmake --build build --target "
                          f"kfleet-controller kfleet-agent kctl) or set KFLEET_BUILD_DIR")
        self.tmp = tempfile.mkdtemp(prefix=f"kfleet-{self.id().rsplit('.', 1)[-1]}-")
        self.processes = []
        self.controller = None
        self.controller_port = None
        self.controller_state = os.path.join(self.tmp, "controller")
        # The controller listens on this host's address (tests with network namespaces change it).
        self.controller_host = "127.0.0.1"
        self._adopted = []  # (pid, start time) of processes a command started, see adopt_pid
        self._states_at_end = ""
        self._controller_heartbeat = None
        self._controller_extra_args = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KFLEET_")}
        # Keep kctl off the user's ~/.config/kfleet/kctl.yaml.
        self.env["HOME"] = self.tmp
        self.env["XDG_CONFIG_HOME"] = os.path.join(self.tmp, "xdg")
        self.addCleanup(self._stop_all)

    def run(self, result=None):
        if result is None:
            result = self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        failed = len(result.failures) + len(result.errors) > before
        tmp = getattr(self, "tmp", None)
        if tmp and os.path.isdir(tmp):
            if failed:
                self._dump_logs()
            if failed and os.environ.get("KFLEET_KEEP_TMP"):
                sys.stderr.write(f"kept {tmp}\n")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        return out

    # --- processes ----------------------------------------------------------------------------

    def _start(self, name, argv, **kwargs):
        log_path = os.path.join(self.tmp, f"{name}.log")
        proc = Process(name, argv, log_path, env=self.env, **kwargs)
        self.processes.append(proc)
        return proc

    def _stop_all(self):
        self._states_at_end = self.describe()
        # Agents first, so that they do not log reconnect attempts to a stopped controller.
        for proc in sorted(self.processes, key=lambda p: p is self.controller):
            proc.stop()
        for pid, start_time in self._adopted:
            # The start time tells the process from a later one that was given the same pid.
            if pid_alive(pid) and _start_time(pid) == start_time:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def adopt_pid(self, *pids):
        """Makes the test's end SIGKILL these processes (started by a command) if still running."""
        for pid in pids:
            start_time = _start_time(pid)
            if start_time is not None:
                self._adopted.append((pid, start_time))

    def describe(self):
        """One phrase per process the test started: running, or how it exited."""
        states = []
        for proc in self.processes:
            rc = proc.popen.poll()
            states.append(f"{proc.name} pid {proc.pid} " +
                          ("running" if rc is None else f"exited {rc}"))
        return ", ".join(states)

    def _dump_logs(self):
        sys.stderr.write(f"\n===== logs of {self.id()} ({self.tmp}) =====\n")
        sys.stderr.write(f"processes at the end of the test: {self._states_at_end}\n")
        for entry in sorted(os.listdir(self.tmp)):
            path = os.path.join(self.tmp, entry)
            if not entry.endswith(".log") or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - LOG_TAIL_BYTES))
                text = f.read().decode(errors="replace")
            sys.stderr.write(f"----- {entry} ({size} bytes"
                             f"{', last ' + str(LOG_TAIL_BYTES) if size > LOG_TAIL_BYTES else ''})"
                             f" -----\n{text}\n")
        sys.stderr.flush()

    @property
    def address(self):
        return f"{self.controller_host}:{self.controller_port}"

    def start_controller(self, heartbeat=None, extra_args=None, wait=True):
        """Starts the controller on this test's port and state dir (a free port the first time).

        Called again after the controller stopped, it restarts it on the same port and state dir,
        with the same heartbeat and extra_args unless others are given.
        """
        assert self.controller is None or not self.controller.alive(), "controller still running"
        if self.controller_port is None:
            self.controller_port = free_port()
            self.metrics_port = free_port()
        if heartbeat is not None:
            self._controller_heartbeat = heartbeat
        if extra_args is not None:
            self._controller_extra_args = list(extra_args)
        argv = [CONTROLLER_BIN, "--listen", self.address, "--state-dir", self.controller_state]
        if INSECURE:
            argv.append("--insecure")
        if self._controller_heartbeat:
            argv += ["--heartbeat", self._controller_heartbeat]
        argv += self._controller_extra_args
        if not any(a.startswith("--metrics-listen") for a in argv):
            argv += ["--metrics-listen", f"127.0.0.1:{self.metrics_port}"]
        if not any(a.startswith("--local-builder") for a in argv):
            argv.append("--local-builder=false")  # only kernel tests want a builder host
        self.controller = self._start("controller", argv)
        if wait:
            self.wait_controller_up()
        return self.controller

    @property
    def domain_prefix(self):
        """The libvirt domain name prefix of this test's guests (see start_guest_controller)."""
        if not hasattr(self, "_domain_prefix"):
            self._domain_prefix = f"kft{os.getpid()}-{secrets.token_hex(2)}-"
        return self._domain_prefix

    def start_guest_controller(self, config_text=None, image_cache="/var/cache/kfleet/images",
                               extra_args=()):
        """Starts the controller for tests with real guests: the temp dir is made reachable by
        qemu (it runs as its own user), images are cached across tests, and `config_text` (pools
        YAML), if given, is the controller's config file."""
        os.chmod(self.tmp, 0o755)
        os.makedirs(image_cache, exist_ok=True)
        os.chmod(os.path.dirname(image_cache), 0o755)
        os.chmod(image_cache, 0o755)
        # Guests' libvirt domains are named with a prefix of this test's own, so that nothing left
        # by another run on the same libvirtd (a killed test, a concurrent CI job) collides.
        args = ["--image-cache", image_cache, "--domain-prefix", self.domain_prefix]
        if config_text is not None:
            config = os.path.join(self.tmp, "kfleet.yaml")
            with open(config, "w") as f:
                f.write(config_text)
            args += ["--config", config]
        return self.start_controller(extra_args=args + list(extra_args))

    def start_kernel_controller(self):
        """Starts a controller for kernel tests on tiny guests: its local builder (build
        directories kept per machine, see builder_args) and a one-guest pool `local`, destroyed at
        the test's end. Returns the kernel tree to build (kernel_source)."""
        tree = kernel_source()
        self.start_guest_controller(KERNEL_POOL, extra_args=builder_args())
        self.wait_host_state("local-builder", "ONLINE", timeout=30)
        self.addCleanup(lambda: self.controller.alive() and self.kctl("destroy", "local",
                                                                      timeout=300))
        return tree

    def wait_controller_up(self, timeout=20):
        """Waits until the controller accepts TCP connections on its port."""
        proc = self.controller

        def accepting():
            if not proc.alive():
                raise AssertionError(f"controller exited with {proc.popen.returncode}")
            try:
                with socket.create_connection((self.controller_host, self.controller_port),
                                              timeout=0.5):
                    return True
            except OSError:
                return False

        wait_for(accepting, timeout, f"the controller to listen on {self.address}")
        if not INSECURE:
            wait_for(lambda: os.path.isfile(self.kctl_config), timeout,
                     f"the controller to write {self.kctl_config}")

    @property
    def kctl_config(self):
        """The kctl.yaml the controller writes for its first admin (TLS)."""
        return os.path.join(self.controller_state, "kctl.yaml")

    @property
    def ca_cert(self):
        return os.path.join(self.controller_state, "pki", "ca.crt")

    def create_token(self, labels=None, uses=1, ttl="10m"):
        """A new enrolment token (kctl token create); returns (token, CA fingerprint)."""
        args = ["token", "create", "--uses", str(uses), "--ttl", ttl]
        if labels:
            args += ["--labels", ",".join(f"{k}={v}" for k, v in labels.items())]
        doc = self.kctl_json(*args)
        return doc["token"], doc.get("caFingerprint") or doc.get("ca_fingerprint")

    def enrolment_args(self, state_dir, labels=None):
        """The agent flags to enrol (a token of its own and the CA), unless its state dir already
        holds a certificate; none in plaintext runs."""
        if INSECURE:
            return ["--insecure"]
        if os.path.isfile(os.path.join(state_dir, "pki", "agent.crt")):
            return []
        token, _ = self.create_token(labels)
        return ["--token", token, "--ca-cert", self.ca_cert]

    def start_agent(self, name, labels=None, state_dir=None, reconnect_max=None, kill_grace=None,
                    wait_online=True):
        """Starts an agent named `name` (state dir <tmp>/agent-NAME unless given).

        With wait_online, waits until kctl hosts shows it online.
        """
        state_dir = state_dir or os.path.join(self.tmp, f"agent-{name}")
        argv = [AGENT_BIN, "--controller", self.address, "--state-dir", state_dir, "--name", name]
        argv += self.enrolment_args(state_dir, labels)
        if labels:
            argv += ["--labels", ",".join(f"{k}={v}" for k, v in labels.items())]
        if reconnect_max:
            argv += ["--reconnect-max", reconnect_max]
        if kill_grace:
            argv += ["--kill-grace", kill_grace]
        proc = self._start(f"agent-{name}", argv)
        proc.state_dir = state_dir
        if wait_online:
            self.wait_host_state(name, "ONLINE")
        return proc

    def metrics_text(self):
        """The controller's /metrics exposition (text format)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()

    # --- kctl ---------------------------------------------------------------------------------

    def kctl_argv(self, args, output=None, address=None):
        argv = [KCTL_BIN, "--controller", address or self.address]
        argv += ["--insecure"] if INSECURE else ["--config", self.kctl_config]
        if output:
            argv += ["-o", output]
        return argv + list(args)

    def kctl(self, *args, output=None, timeout=60, binary=False, address=None):
        """Runs kctl with these arguments against this test's controller; returns a KctlResult.

        address overrides the controller's address; with binary, stdout is left as bytes.
        """
        argv = self.kctl_argv(args, output, address)
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=timeout, env=self.env)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(
                f"kctl {' '.join(argv[1:])} did not end within {timeout}s ({self.describe()}); "
                f"stdout: {(e.stdout or b'')[-2000:]!r} stderr: {(e.stderr or b'')[-2000:]!r}"
            ) from None
        stdout = p.stdout if binary else p.stdout.decode(errors="replace")
        return KctlResult(argv[1:], p.returncode, stdout, p.stderr.decode(errors="replace"))

    def kctl_json(self, *args, timeout=60):
        """Runs `kctl -o json ARGS`, asserts that it exited 0 and returns the parsed document."""
        r = self.kctl(*args, output="json", timeout=timeout)
        if r.rc != 0:
            raise AssertionError(f"kctl failed: {r!r}")
        return r.json()

    def kctl_background(self, *args, name="kctl"):
        """Starts kctl in the background; its stdout goes to <tmp>/NAME.out, stderr to NAME.log."""
        return self._start(name, self.kctl_argv(args),
                           stdout_path=os.path.join(self.tmp, f"{name}.out"))

    # --- fleet queries ------------------------------------------------------------------------

    def hosts(self):
        """The hosts (dicts of proto JSON fields) as `kctl -o json hosts` lists them."""
        return self.kctl_json("hosts").get("hosts", [])

    def host(self, name):
        """The host with this name, or None."""
        return next((h for h in self.hosts() if h["name"] == name), None)

    def host_state(self, name):
        """"ONLINE", "OFFLINE", ... or None if no host has this name."""
        host = self.host(name)
        return host.get("state") if host else None

    def wait_host_state(self, name, state, timeout=20):
        wait_for(lambda: self.host_state(name) == state, timeout,
                 f"host {name} to be {state} in kctl hosts")

    def job(self, job_id):
        return self.kctl_json("job", job_id)

    def find_job(self, job_name, timeout=20):
        """Waits for the job submitted with `--name job_name` to appear; returns its id."""

        def lookup():
            for job in self.kctl_json("jobs").get("jobs", []):
                if job.get("spec", {}).get("name") == job_name:
                    return job["id"]
            return None

        return wait_for(lookup, timeout, f"job {job_name!r} to appear in kctl jobs")

    def wait_job_done(self, job_id, timeout=60):
        """Waits until the job is JOB_DONE; returns it."""

        def done():
            job = self.job(job_id)
            return job if job.get("state") == "JOB_DONE" else None

        return wait_for(done, timeout, f"job {job_id} to end")

    def logs(self, command_id, stream="stdout"):
        """The stored bytes of one stream of one command."""
        r = self.kctl("logs", command_id, "--stream", stream, binary=True, timeout=120)
        if r.rc != 0:
            raise AssertionError(f"kctl logs failed: rc={r.rc} stderr={r.stderr}")
        return r.stdout


KERNEL_CACHE = "/var/cache/kfleet"

# One tiny guest at a time: kernel tests boot it into the kernels they build.
KERNEL_POOL = """pools:
  local:
    provider: libvirt
    image: tiny
    cpus: 1
    memory: 512M
    max: 1
    idle_timeout: 30m
"""


def kernel_source():
    """A clean kernel tree from Debian's linux-source-6.1 package, unpacked once per machine under
    /var/cache/kfleet (scripts/test.sh installs the package)."""
    tarball = "/usr/src/linux-source-6.1.tar.xz"
    tree = os.path.join(KERNEL_CACHE, "linux-source-6.1")
    if os.path.isfile(os.path.join(tree, "Makefile")):
        return tree
    if not os.path.isfile(tarball):
        raise unittest.SkipTest(f"{tarball} is missing: apt-get install linux-source-6.1")
    os.makedirs(KERNEL_CACHE, exist_ok=True)
    tmp = tree + ".tmp"
    subprocess.run(["rm", "-rf", tmp], check=True)
    os.makedirs(tmp)
    subprocess.run(["tar", "-xf", tarball, "-C", tmp, "--strip-components=1"], check=True)
    os.rename(tmp, tree)
    return tree


def builder_args():
    """Controller flags for kernel tests: its local builder keeps its build directories in one
    place per machine, so a later test (or run) rebuilds incrementally."""
    return ["--local-builder", "--builder-kernel-dir", os.path.join(KERNEL_CACHE, "kernel-work")]
