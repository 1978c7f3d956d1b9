"""Log throughput: N bytes written by one command, through agent, controller and kctl, against
raw loopback TCP of the same bytes, in the same run; peak RSS of agent and controller meanwhile.

The command is a deterministic generator of log lines (GENERATOR: `yes LINE | head -c N`, 100-byte
lines). Each repeat, on one controller and one agent (mutual TLS, as kfleet runs by default):

- live: `kctl exec --host H -- sh -c GENERATOR`, kctl's stdout to a file; timed from kctl's start
  to its exit, i.e. until every byte came from the agent through the controller to kctl (which
  prefixes each line with the host's name: the file must be N bytes plus one prefix per line);
- stored: `kctl logs c-ID --stream stdout` of that command to a file, timed the same way; its
  sha256 must be the generator's;
- peer: the generator's bytes through one loopback TCP connection (socat to socat, the receiver
  writing a file in the same directory), timed from the sender's start to the receiver's exit; its
  sha256 must be the generator's too.

The agent's and the controller's VmHWM are reset (/proc/PID/clear_refs) before the live run and
read after the stored one, with VmRSS sampled every 50 ms as a check.
"""
import hashlib
import os
import re
import subprocess
import time

import benchlib
from benchlib import BenchError, figure, log

LINE = ("kfleet log throughput benchmark line: 0123456789 abcdefghijklmnopqrstuvwxyz "
        "ABCDEFGHIJKLMNOPQRSTUVW")
LINE_BYTES = len(LINE) + 1  # with its newline: 100
RUN_TIMEOUT_S = 900.0
MIB = 1 << 20


def generator(size):
    return f"yes '{LINE}' | head -c {size}"


def parse_size(text):
    """1G, 32M, 512K or a number of bytes (binary units)."""
    m = re.fullmatch(r"(\d+)([KMGkmg]?)(i?B)?", text.strip())
    if not m:
        raise ValueError(f"bad size {text!r} (expected e.g. 1G, 32M, 4096)")
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


def sha256_of_command(command):
    """sha256 of what `sh -c command` prints."""
    h = hashlib.sha256()
    p = subprocess.Popen(["sh", "-c", command], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    while True:
        chunk = p.stdout.read(1 << 20)
        if not chunk:
            break
        h.update(chunk)
    if p.wait() != 0:
        raise BenchError(f"sh -c {command!r} exited {p.returncode}")
    return h.hexdigest()


def sha256_of_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


def raw_tcp(work, env, size, want_sha):
    """One timed transfer of the generator's bytes over loopback TCP; returns wall seconds."""
    port = benchlib.free_port()
    out_path = os.path.join(work, "raw.out")
    log_path = os.path.join(work, "socat.log")
    receiver = benchlib.Process(
        "socat-receiver", ["socat", "-u", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr",
                           f"CREATE:{out_path}"], log_path, env)
    sender = None
    try:
        def listening():
            if not receiver.alive():
                raise BenchError(f"socat receiver exited:\n{receiver.log_tail()}")
            with open("/proc/net/tcp", encoding="ascii") as f:
                return any(line.split()[1] == f"0100007F:{port:04X}" and line.split()[3] == "0A"
                           for line in list(f)[1:])

        benchlib.wait_for(listening, f"socat to listen on 127.0.0.1:{port}")
        # The generator's pipe into socat, as the agent reads the command's pipe.
        sender = benchlib.Process(
            "socat-sender", ["sh", "-c", f"{generator(size)} | socat -u STDIN "
                                         f"TCP:127.0.0.1:{port}"], log_path, env)
        # Until the receiver has written the last byte and exited, as kctl does; never more
        # than `size` bytes on disk.
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while receiver.alive() or sender.alive():
            if os.path.exists(out_path) and os.path.getsize(out_path) > size:
                sender.stop()
                raise BenchError(f"raw TCP: the receiver got more than {size} bytes")
            if time.monotonic() > deadline:
                sender.stop()
                raise BenchError(f"the raw TCP transfer did not end in {RUN_TIMEOUT_S:.0f}s")
            time.sleep(0.005)
        wall = time.monotonic() - sender.started
        rc, receiver_rc = sender.popen.returncode, receiver.popen.returncode
    finally:
        for proc in (sender, receiver):
            if proc:
                proc.stop()
    if rc != 0 or receiver_rc != 0:
        raise BenchError(f"socat exited {rc} (sender) and {receiver_rc} (receiver):\n"
                         f"{receiver.log_tail()}")
    got = os.path.getsize(out_path)
    sha = sha256_of_file(out_path)
    os.remove(out_path)
    if got != size or sha != want_sha:
        raise BenchError(f"raw TCP: received {got} bytes, sha256 {sha}; want {size}, {want_sha}")
    return wall


def find_command(fleet, job_name):
    """The id of the one command of the job submitted with --name job_name, and the job."""
    def lookup():
        for job in fleet.kctl_json("jobs").get("jobs", []):
            if job.get("spec", {}).get("name") == job_name:
                return job["id"]
        return None

    job = fleet.kctl_json("job", benchlib.wait_for(lookup, f"job {job_name} in kctl jobs"))
    commands = job.get("commands", [])
    if len(commands) != 1:
        raise BenchError(f"job {job_name} has {len(commands)} commands, want 1")
    return commands[0]


def kfleet_once(fleet, work, size, want_sha, job_name):
    """One live run and one read-back; returns (live s, stored s, agent HWM KiB, controller HWM
    KiB, sampled peaks {pid: KiB})."""
    agent, controller = fleet.agents[0], fleet.controller
    for proc in (agent, controller):
        benchlib.reset_peak_rss(proc.pid)
    live_path = os.path.join(work, "live.out")
    stored_path = os.path.join(work, "stored.out")
    err_path = os.path.join(work, "kctl.err")
    with benchlib.RssSampler([agent.pid, controller.pid]) as sampler:
        with open(live_path, "wb") as out, open(err_path, "ab") as err:
            rc, live = benchlib.run_timed(
                fleet.kctl_argv("exec", "--host", fleet.names[0], "--name", job_name, "--",
                                "sh", "-c", generator(size)),
                fleet.env, out, err, RUN_TIMEOUT_S)
        if rc != 0:
            raise BenchError(f"kctl exec exited {rc}; see {err_path}")
        command = find_command(fleet, job_name)
        with open(stored_path, "wb") as out, open(err_path, "ab") as err:
            rc, stored = benchlib.run_timed(
                fleet.kctl_argv("logs", command["id"], "--stream", "stdout"),
                fleet.env, out, err, RUN_TIMEOUT_S)
        if rc != 0:
            raise BenchError(f"kctl logs exited {rc}; see {err_path}")
    agent_hwm = benchlib.proc_status_kib(agent.pid, "VmHWM")
    controller_hwm = benchlib.proc_status_kib(controller.pid, "VmHWM")
    # kctl exec prefixes each line with "NAME | " and ends a last partial line with a newline.
    lines = -(-size // LINE_BYTES)
    want_live = size + lines * len(f"{fleet.names[0]} | ") + (1 if size % LINE_BYTES else 0)
    got_live = os.path.getsize(live_path)
    got_stored = os.path.getsize(stored_path)
    sha = sha256_of_file(stored_path)
    for path in (live_path, stored_path):
        os.remove(path)
    if str(command.get("stdout_bytes")) != str(size):
        raise BenchError(f"the controller stored {command.get('stdout_bytes')} bytes of stdout, "
                         f"want {size}")
    if got_live != want_live:
        raise BenchError(f"kctl exec printed {got_live} bytes, want {want_live} ({size} and a "
                         f"prefix on each of {lines} lines)")
    if got_stored != size or sha != want_sha:
        raise BenchError(f"kctl logs printed {got_stored} bytes, sha256 {sha}; want {size}, "
                         f"{want_sha}")
    if agent_hwm is None or controller_hwm is None:
        raise BenchError("the agent or the controller exited during the run")
    return live, stored, agent_hwm, controller_hwm, sampler.peaks


def run(tmp, env, size, repeats, rerun):
    """Runs the log throughput benchmark; returns its figures."""
    work = os.path.join(tmp, "logs")
    os.makedirs(work)
    log(f"log throughput: sha256 of {size} generated bytes")
    want_sha = sha256_of_command(generator(size))
    fleet = benchlib.Fleet(tmp, env, "log", 1)
    raw, live, stored, agent_rss, controller_rss = [], [], [], [], []
    agent_after, controller_after = [], []
    ok = False
    try:
        fleet.start()
        quiet_agent = benchlib.proc_status_kib(fleet.agents[0].pid, "VmRSS") / 1024
        quiet_controller = benchlib.proc_status_kib(fleet.controller.pid, "VmRSS") / 1024
        for rep in range(repeats):
            raw.append(raw_tcp(work, env, size, want_sha))
            l, s, a, c, sampled = kfleet_once(fleet, work, size, want_sha, f"log-bench-{rep + 1}")
            live.append(l)
            stored.append(s)
            # VmHWM, or the sampled VmRSS should the kernel's high-water mark lag behind it.
            agent_rss.append(max(a, sampled[fleet.agents[0].pid]) / 1024)
            controller_rss.append(max(c, sampled[fleet.controller.pid]) / 1024)
            # What each keeps once the stream is over: memory that stays grows the next peak.
            agent_after.append(benchlib.proc_status_kib(fleet.agents[0].pid, "VmRSS") / 1024)
            controller_after.append(
                benchlib.proc_status_kib(fleet.controller.pid, "VmRSS") / 1024)
            log(f"log throughput {rep + 1}/{repeats}: raw TCP {raw[-1]:.2f} s, kctl exec "
                f"{l:.2f} s, kctl logs {s:.2f} s; peak RSS agent {a / 1024:.0f} MiB "
                f"(sampled {sampled[fleet.agents[0].pid] / 1024:.0f}), controller "
                f"{c / 1024:.0f} MiB (sampled {sampled[fleet.controller.pid] / 1024:.0f})")
        ok = True
    finally:
        fleet.stop()
        if not ok:
            print(fleet.log_tails(), file=benchlib.sys.stderr)
    mib = size / MIB
    rate = lambda values: [mib / v for v in values]  # noqa: E731
    half = {"of": "ratio", "op": ">=", "value": 0.5, "text": "≥ 50 % of raw TCP"}
    size_text = f"{mib / 1024:g} GiB" if size >= 1 << 30 else f"{mib:g} MiB"
    return [
        figure(f"log stream, {size_text} live: command → agent → controller → kctl exec",
               "MiB/s", rate(live), better="higher", peer="raw loopback TCP (socat)",
               peer_values=rate(raw), target=half, rerun=rerun),
        figure(f"log read-back, {size_text} stored: controller → kctl logs c-ID",
               "MiB/s", rate(stored), better="higher", peer="raw loopback TCP (socat)",
               peer_values=rate(raw), target=half, rerun=rerun),
        figure("agent peak RSS while streaming (VmHWM)", "MiB", agent_rss,
               target={"of": "max", "op": "<", "value": 64, "text": "largest peak < 64 MiB"},
               rerun=rerun,
               note=f"VmRSS {quiet_agent:.0f} MiB before the first run; after each run: "
                    f"{', '.join(f'{v:.0f}' for v in agent_after)} MiB"),
        figure("controller peak RSS while streaming (VmHWM)", "MiB", controller_rss,
               target={"of": "max", "op": "<", "value": 256,
                       "text": "largest peak < 256 MiB"},
               rerun=rerun,
               note=f"VmRSS {quiet_controller:.0f} MiB before the first run; after each run: "
                    f"{', '.join(f'{v:.0f}' for v in controller_after)} MiB"),
    ]
