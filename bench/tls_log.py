#!/usr/bin/env python3
"""TLS cost of a large log: `kctl exec -- cat` of a random file through a controller on loopback.

The 50 MB case of tests/test_big_log.py, on two setups that run side by side: a real controller
and one real agent serving mutual TLS (the default: the agent enrols with a token and the CA,
kctl uses the kctl.yaml the controller wrote), and the peer, the same with --insecure everywhere
(plaintext on loopback). Each run times `kctl exec --host H -- cat FILE` from the start of kctl to
its exit: kctl streams the output, so this is the time until the whole output has come back from
the agent through the controller. The CPU time (user + system) the agent and the controller spent
meanwhile is read from /proc/PID/stat before and after; kctl's own from its rusage. Runs go in
pairs, one per setup, the first of each pair alternating: --reps pairs in all.

    cmake --build build --target kfleet-controller kfleet-agent kctl
    python3 bench/tls_log.py [--size-mb 50] [--reps 3]

The binaries come from $KFLEET_BUILD_DIR (default: the build/ directory beside bench/).
Everything listens on 127.0.0.1 only, in a temporary directory removed at the end. Processes are
stopped through the pid they were started with: SIGTERM, then SIGKILL after a grace period.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import (AGENT_BIN, CONTROLLER_BIN, HOST, KCTL_BIN, STOP_GRACE_S, free_port,
                      wait_for)

EXEC_TIMEOUT_S = 600.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU time of a running process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
        # The fields after the command name, which is in parentheses and may hold spaces.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_cpu_seconds():
    """User + system CPU time of this process's reaped children."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Process:
    """A process started here; stdout and stderr go to one log file."""

    def __init__(self, name, argv, log_path, env):
        self.name = name
        self.log_path = log_path
        with open(log_path, "ab") as log:
            log.write(f"=== started: {' '.join(argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=log, env=env)
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

    def log_tail(self, size=4000):
        with open(self.log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors="replace")


class Setup:
    """One controller and one agent on loopback, TLS or plaintext, and kctl to drive them."""

    def __init__(self, tmp, insecure, env):
        self.insecure = insecure
        self.label = "plaintext" if insecure else "TLS"
        self.dir = os.path.join(tmp, "plaintext" if insecure else "tls")
        os.makedirs(self.dir)
        self.env = env
        self.address = f"{HOST}:{free_port()}"
        self.state = os.path.join(self.dir, "controller")
        self.agent_name = "tls-log-plain" if insecure else "tls-log-tls"
        self.processes = []
        self.controller = None
        self.agent = None

    def _start(self, name, argv):
        proc = Process(name, argv, os.path.join(self.dir, f"{name}.log"), self.env)
        self.processes.append(proc)
        return proc

    def kctl_argv(self, *args, output=None):
        argv = [KCTL_BIN, "--controller", self.address]
        argv += ["--insecure"] if self.insecure else \
            ["--config", os.path.join(self.state, "kctl.yaml")]
        if output:
            argv += ["-o", output]
        return argv + list(args)

    def kctl_json(self, *args):
        p = subprocess.run(self.kctl_argv(*args, output="json"), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60, env=self.env, check=False)
        if p.returncode != 0:
            raise RuntimeError(f"kctl {' '.join(args)} ({self.label}) exited {p.returncode}: "
                               f"{p.stderr.decode(errors='replace')[-2000:]}")
        return json.loads(p.stdout)

    def start(self):
        argv = [CONTROLLER_BIN, "--listen", self.address, "--state-dir", self.state,
                "--metrics-listen=", "--local-builder=false"]
        if self.insecure:
            argv.append("--insecure")
        self.controller = self._start("controller", argv)
        wait_for(self._accepting, f"the {self.label} controller to listen on {self.address}")
        agent_argv = [AGENT_BIN, "--controller", self.address, "--name", self.agent_name,
                      "--state-dir", os.path.join(self.dir, "agent")]
        if self.insecure:
            agent_argv.append("--insecure")
        else:
            kctl_yaml = os.path.join(self.state, "kctl.yaml")
            wait_for(lambda: os.path.isfile(kctl_yaml), f"the controller to write {kctl_yaml}")
            token = self.kctl_json("token", "create", "--uses", "1", "--ttl", "10m")["token"]
            agent_argv += ["--token", token, "--ca-cert", os.path.join(self.state, "pki", "ca.crt")]
        self.agent = self._start("agent", agent_argv)
        wait_for(self._agent_online, f"the {self.label} agent {self.agent_name} to be ONLINE")

    def _accepting(self):
        if not self.controller.alive():
            raise RuntimeError(f"the {self.label} controller exited:\n"
                               f"{self.controller.log_tail()}")
        try:
            with socket.create_connection((HOST, int(self.address.rsplit(":", 1)[1])),
                                          timeout=0.5):
                return True
        except OSError:
            return False

    def _agent_online(self):
        if not self.agent.alive():
            raise RuntimeError(f"the {self.label} agent exited:\n{self.agent.log_tail()}")
        hosts = self.kctl_json("hosts").get("hosts", [])
        return any(h.get("name") == self.agent_name and h.get("state") == "ONLINE"
                   for h in hosts)

    def run_cat(self, path, size, job_name):
        """Times one `kctl exec -- cat path`: (wall s, agent CPU s, controller CPU s, kctl CPU s)."""
        out_path = os.path.join(self.dir, "kctl-exec.out")
        argv = self.kctl_argv("exec", "--host", self.agent_name, "--name", job_name, "--",
                              "cat", path)
        agent_cpu = cpu_seconds(self.agent.pid)
        controller_cpu = cpu_seconds(self.controller.pid)
        kctl_cpu = children_cpu_seconds()
        with open(out_path, "wb") as out, \
                open(os.path.join(self.dir, "kctl-exec.log"), "ab") as err:
            start = time.monotonic()
            kctl = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    env=self.env)
            try:
                rc = kctl.wait(timeout=EXEC_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.kill(kctl.pid, signal.SIGKILL)
                kctl.wait(timeout=10)
                raise RuntimeError(f"kctl exec ({self.label}) did not end in "
                                   f"{EXEC_TIMEOUT_S:.0f}s") from None
            wall = time.monotonic() - start
        figures = (wall, cpu_seconds(self.agent.pid) - agent_cpu,
                   cpu_seconds(self.controller.pid) - controller_cpu,
                   children_cpu_seconds() - kctl_cpu)
        got = os.path.getsize(out_path)
        os.remove(out_path)
        if rc != 0:
            raise RuntimeError(f"kctl exec ({self.label}) exited {rc}; see "
                               f"{os.path.join(self.dir, 'kctl-exec.log')}")
        # Each line comes back prefixed with the host's name: at least `size` bytes.
        if got < size:
            raise RuntimeError(f"kctl exec ({self.label}) printed {got} bytes of a {size}-byte "
                               f"file")
        return figures

    def stop(self):
        # The agent first, so that it does not retry against a stopped controller.
        for proc in sorted(self.processes, key=lambda p: p is self.controller):
            proc.stop()


def write_random_file(path, size):
    with open(path, "wb") as f:
        left = size
        while left > 0:
            chunk = min(left, 1 << 20)
            f.write(os.urandom(chunk))
            left -= chunk


def summary(values):
    return min(values), statistics.median(values), max(values)


def cell(values, unit="s"):
    lo, med, hi = summary(values)
    return f"{lo:7.3f} / {med:7.3f} / {hi:7.3f} {unit}"


def ratio(tls, plain):
    med = statistics.median(plain)
    return f"x{statistics.median(tls) / med:.2f}" if med > 0 else "n/a (plaintext median 0)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=50, help="file size in MB (10^6 bytes)")
    parser.add_argument("--reps", type=int, default=3, help="pairs of runs (TLS and plaintext)")
    args = parser.parse_args()
    if args.size_mb <= 0 or args.reps <= 0:
        parser.error("--size-mb and --reps must be positive")
    for binary in (CONTROLLER_BIN, AGENT_BIN, KCTL_BIN):
        if not os.access(binary, os.X_OK):
            sys.exit(f"{binary} is missing: build it (cmake --build build --target "
                     f"kfleet-controller kfleet-agent kctl) or set KFLEET_BUILD_DIR")
    size = args.size_mb * 1_000_000
    tmp = tempfile.mkdtemp(prefix="kfleet-tls-log-")
    # kctl stays off the user's own config; no KFLEET_* setting leaks in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KFLEET_")}
    env["HOME"] = tmp
    env["XDG_CONFIG_HOME"] = os.path.join(tmp, "xdg")
    setups = []
    ok = False
    try:
        path = os.path.join(tmp, "random.bin")
        write_random_file(path, size)
        for insecure in (False, True):
            setup = Setup(tmp, insecure, env)
            setups.append(setup)
            setup.start()
        tls, plain = setups
        figures = {tls.label: [], plain.label: []}
        for rep in range(args.reps):
            order = (tls, plain) if rep % 2 == 0 else (plain, tls)
            for setup in order:
                f = setup.run_cat(path, size, f"tls-log-{setup.label.lower()}-{rep + 1}")
                figures[setup.label].append(f)
                print(f"pair {rep + 1}, {setup.label}: {f[0]:.2f} s, agent CPU {f[1]:.2f} s, "
                      f"controller CPU {f[2]:.2f} s, kctl CPU {f[3]:.2f} s", file=sys.stderr)
        print(f"kfleet TLS cost: kctl exec -- cat of a {args.size_mb} MB random file, one agent, "
              f"all on 127.0.0.1; {args.reps} runs per side (min / median / max)")
        rows = (("wall, kctl start to exit", 0), ("agent CPU", 1), ("controller CPU", 2),
                ("kctl CPU", 3))
        print(f"{'figure':<26}  {'TLS':<31}  {'plaintext':<31}  TLS/plaintext (medians)")
        for name, i in rows:
            t = [f[i] for f in figures[tls.label]]
            p = [f[i] for f in figures[plain.label]]
            print(f"{name:<26}  {cell(t):<31}  {cell(p):<31}  {ratio(t, p)}")
        mb = size / 1e6
        t_wall = statistics.median(f[0] for f in figures[tls.label])
        p_wall = statistics.median(f[0] for f in figures[plain.label])
        print(f"throughput (median wall): TLS {mb / t_wall:.1f} MB/s, "
              f"plaintext {mb / p_wall:.1f} MB/s")
        ok = True
    finally:
        for setup in setups:
            setup.stop()
        if not ok:
            for setup in setups:
                for proc in setup.processes:
                    sys.stderr.write(f"----- {setup.label} {proc.name} log (tail) -----\n"
                                     f"{proc.log_tail()}\n")
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"rerun: python3 bench/tls_log.py --size-mb {args.size_mb} --reps {args.reps}")


if __name__ == "__main__":
    main()
