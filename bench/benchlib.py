"""What bench/run's benchmarks share: processes started and stopped by pid, a kfleet controller with
agents on loopback, figures and their summaries.

Every process is started here with its output in a log file of the benchmark's temporary
directory, and stopped through the pid it was started with (SIGTERM, then SIGKILL after a grace
period), never by name. Everything listens on 127.0.0.1 only.
"""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
BUILD_DIR = os.environ.get("KFLEET_BUILD_DIR") or os.path.join(REPO_DIR, "build")
CONTROLLER_BIN = os.path.join(BUILD_DIR, "controller", "kfleet-controller")
AGENT_BIN = os.path.join(BUILD_DIR, "agent", "kfleet-agent")
KCTL_BIN = os.path.join(BUILD_DIR, "cli", "kctl")

HOST = "127.0.0.1"
STOP_GRACE_S = 5.0
START_TIMEOUT_S = 60.0


class BenchError(Exception):
    """A benchmark could not run or its output was wrong: the run fails."""


def log(msg):
    """Progress goes to stderr, so that stdout holds only the summary."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for(predicate, what, timeout=START_TIMEOUT_S):
    """Polls predicate() every 0.1 s until it is truthy; raises BenchError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def port_accepting(port):
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def check_binaries():
    for binary in (CONTROLLER_BIN, AGENT_BIN, KCTL_BIN):
        if not os.access(binary, os.X_OK):
            raise BenchError(f"{binary} is missing: build it (cmake --build build --target "
                             f"kfleet-controller kfleet-agent kctl) or set KFLEET_BUILD_DIR")


def clean_env(tmp):
    """The environment of the processes started: no KFLEET_* setting, HOME in the temp dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KFLEET_", "ANSIBLE_"))}
    env["HOME"] = os.path.join(tmp, "home")
    env["XDG_CONFIG_HOME"] = os.path.join(tmp, "home", ".config")
    os.makedirs(env["XDG_CONFIG_HOME"], exist_ok=True)
    return env


class Process:
    """A process started here; stdout and stderr go to one log file unless stdout is given."""

    def __init__(self, name, argv, log_path, env, stdout=None):
        self.name = name
        self.log_path = log_path
        with open(log_path, "ab") as log_file:
            log_file.write(f"=== started: {' '.join(argv)}\n".encode())
            log_file.flush()
            self.started = time.monotonic()
            self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                          stdout=stdout if stdout is not None else log_file,
                                          stderr=log_file, env=env)
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def stop(self):
        """SIGTERM by pid, then SIGKILL if still running after the grace period."""
        if not self.alive():
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def log_tail(self, size=3000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - size))
                return f.read().decode(errors="replace")
        except OSError as e:
            return f"(no log: {e})"


def run_timed(argv, env, stdout, stderr, timeout, cwd=None):
    """Runs argv to its end; returns (exit code, wall seconds from start to exit)."""
    start = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env,
                         cwd=cwd)
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        raise BenchError(f"{' '.join(argv[:6])} ... did not end in {timeout:.0f}s") from None
    return rc, time.monotonic() - start


def proc_status_kib(pid, field):
    """A field of /proc/PID/status in KiB (VmRSS, VmHWM), or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0: `5` to /proc/PID/clear_refs)."""
    with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as f:
        f.write("5")


class RssSampler:
    """Samples VmRSS of some pids every 50 ms in a thread; peak() is the largest seen per pid."""

    def __init__(self, pids):
        self.pids = list(pids)
        self.peaks = {pid: 0 for pid in self.pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for pid in self.pids:
                kib = proc_status_kib(pid, "VmRSS")
                if kib:
                    self.peaks[pid] = max(self.peaks[pid], kib)
            self._stop.wait(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class Fleet:
    """A kfleet controller and agents on 127.0.0.1, mutual TLS as kfleet runs by default.

    The agents enrol with one token from `kctl token create` and STATE/pki/ca.crt; kctl uses the
    kctl.yaml the controller wrote. start() returns once every agent is ONLINE in `kctl hosts`.
    """

    def __init__(self, tmp, env, name_prefix, agents):
        self.dir = os.path.join(tmp, f"fleet-{name_prefix}")
        os.makedirs(self.dir)
        self.env = env
        self.port = free_port()
        self.address = f"{HOST}:{self.port}"
        self.state = os.path.join(self.dir, "controller")
        self.names = [f"{name_prefix}-{i + 1:02d}" for i in range(agents)]
        self.controller = None
        self.agents = []

    def kctl_argv(self, *args, output=None):
        argv = [KCTL_BIN, "--controller", self.address, "--config",
                os.path.join(self.state, "kctl.yaml")]
        if output:
            argv += ["-o", output]
        return argv + list(args)

    def kctl_json(self, *args, timeout=60):
        p = subprocess.run(self.kctl_argv(*args, output="json"), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout, env=self.env, check=False)
        if p.returncode != 0:
            raise BenchError(f"kctl {' '.join(args)} exited {p.returncode}: "
                             f"{p.stderr.decode(errors='replace')[-2000:]}")
        return json.loads(p.stdout)

    def start(self):
        self.controller = Process(
            "controller", [CONTROLLER_BIN, "--listen", self.address, "--state-dir", self.state,
                           "--metrics-listen=", "--local-builder=false"],
            os.path.join(self.dir, "controller.log"), self.env)

        def accepting():
            if not self.controller.alive():
                raise BenchError(f"the controller exited:\n{self.controller.log_tail()}")
            return port_accepting(self.port)

        wait_for(accepting, f"the controller to listen on {self.address}")
        kctl_yaml = os.path.join(self.state, "kctl.yaml")
        wait_for(lambda: os.path.isfile(kctl_yaml), f"the controller to write {kctl_yaml}")
        token = self.kctl_json("token", "create", "--uses", str(len(self.names)),
                               "--ttl", "30m")["token"]
        ca = os.path.join(self.state, "pki", "ca.crt")
        for name in self.names:
            self.agents.append(Process(
                name, [AGENT_BIN, "--controller", self.address, "--name", name,
                       "--state-dir", os.path.join(self.dir, name), "--token", token,
                       "--ca-cert", ca],
                os.path.join(self.dir, f"{name}.log"), self.env))
        wait_for(self._all_online, f"{len(self.names)} agents to be ONLINE in kctl hosts")

    def _all_online(self):
        for agent in self.agents:
            if not agent.alive():
                raise BenchError(f"agent {agent.name} exited:\n{agent.log_tail()}")
        hosts = self.kctl_json("hosts").get("hosts", [])
        online = {h.get("name") for h in hosts if h.get("state") == "ONLINE"}
        return online >= set(self.names)

    def stop(self):
        # The agents first, so that they do not retry against a stopped controller.
        for agent in self.agents:
            agent.stop()
        if self.controller:
            self.controller.stop()

    def log_tails(self):
        procs = ([self.controller] if self.controller else []) + self.agents[:3]
        return "".join(f"----- {p.name} log (tail) -----\n{p.log_tail()}\n" for p in procs)


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)


# --- figures ----------------------------------------------------------------------------------


def figure(name, unit, values, better="lower", peer=None, peer_values=None, target=None,
           rerun=None, note=None):
    """One figure as bench/run reports it.

    better: "lower" or "higher". target: None, or {"of": "median" | "min" | "max" | "ratio",
    "op": "<=" | ">=" | "<" | ">", "value": V, "text": how the target reads}; "ratio" is kfleet's
    advantage over the peer's median (peer / kfleet for lower-is-better figures, kfleet / peer
    for higher-is-better ones: above 1, kfleet is ahead).
    """
    return {"name": name, "unit": unit, "values": list(values), "better": better, "peer": peer,
            "peer_values": list(peer_values or []), "target": target, "rerun": rerun,
            "note": note}


def summary(values):
    return (min(values), statistics.median(values), max(values)) if values else None


def ratio(fig):
    """kfleet's advantage over the peer (above 1: kfleet ahead), or None without a peer."""
    if not fig.get("values") or not fig.get("peer_values"):
        return None
    mine = statistics.median(fig["values"])
    peer = statistics.median(fig["peer_values"])
    if fig.get("better", "lower") == "higher":
        return mine / peer if peer else None
    return peer / mine if mine else None


OPS = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
       ">": lambda a, b: a > b}


def verdict(fig):
    """"PASS", "MISS", or "-" when the figure has no target that can be judged."""
    target = fig.get("target")
    if not isinstance(target, dict) or target.get("op") not in OPS or not fig.get("values"):
        return "-"
    of = target.get("of", "median")
    if of == "ratio":
        value = ratio(fig)
    elif of in ("min", "median", "max"):
        value = summary(fig["values"])[("min", "median", "max").index(of)]
    else:
        return "-"
    if value is None:
        return "-"
    return "PASS" if OPS[target["op"]](value, float(target["value"])) else "MISS"
