"""Fan-out: `kctl exec --all -- uname -r` on N agents against `ansible all -m command -a 'uname -r'`
on N sshd, all on 127.0.0.1, in the same run.

The peer: N OpenSSH servers (/usr/sbin/sshd -D, each with its own config file and port, one host
key and one authorized client key made in the temporary directory), in an inventory of N hosts
that differ by ansible_port. Ansible runs at its default forks (5) and at `-f N`, each with
ControlPersist cold (a fresh ControlPath directory per run, its master connections closed after
it) and warm (the master connections of an untimed first run reused). kfleet: a controller and N
agents (mutual TLS, as kfleet runs by default), one untimed exec first. Each run's wall time is
taken from the start of the command line tool (ansible or kctl) to its exit, its own start
included; each run must print one line per host and exit 0.
"""
import os
import statistics
import subprocess

import benchlib
from benchlib import BenchError, Process, figure, log

SSHD_BIN = "/usr/sbin/sshd"
RUN_TIMEOUT_S = 300.0

SSHD_CONFIG = """\
ListenAddress 127.0.0.1:{port}
HostKey {host_key}
PidFile none
AuthorizedKeysFile {authorized_keys}
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
MaxStartups 100:30:200
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel ERROR
"""


class AnsiblePeer:
    """N sshd on loopback and what ansible needs to reach them: inventory, keys, environment."""

    def __init__(self, tmp, env, hosts):
        self.dir = os.path.join(tmp, "ansible")
        self.ssh_dir = os.path.join(self.dir, "ssh")
        os.makedirs(self.ssh_dir)
        self.env = env
        self.hosts = hosts
        self.sshds = []
        self.made_run_sshd = False
        self.inventory = os.path.join(self.dir, "inventory.ini")

    def _keygen(self, name):
        path = os.path.join(self.ssh_dir, name)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kfleet-bench",
                        "-f", path], check=True, stdin=subprocess.DEVNULL, env=self.env)
        return path

    def start(self):
        host_key = self._keygen("host_ed25519")
        client_key = self._keygen("client_ed25519")
        authorized_keys = os.path.join(self.ssh_dir, "authorized_keys")
        with open(client_key + ".pub", encoding="ascii") as src, \
                open(authorized_keys, "w", encoding="ascii") as dst:
            dst.write(src.read())
        # sshd refuses to start without its privilege separation directory.
        if not os.path.isdir("/run/sshd"):
            os.makedirs("/run/sshd", mode=0o755)
            self.made_run_sshd = True
        ports = []
        for i in range(self.hosts):
            port = benchlib.free_port()
            config = os.path.join(self.ssh_dir, f"sshd-{i + 1:02d}.conf")
            with open(config, "w", encoding="ascii") as f:
                f.write(SSHD_CONFIG.format(port=port, host_key=host_key,
                                           authorized_keys=authorized_keys))
            self.sshds.append(Process(f"sshd-{i + 1:02d}", [SSHD_BIN, "-D", "-e", "-f", config],
                                      os.path.join(self.dir, f"sshd-{i + 1:02d}.log"), self.env))
            ports.append(port)
        for proc, port in zip(self.sshds, ports):
            def accepting(proc=proc, port=port):
                if not proc.alive():
                    raise BenchError(f"{proc.name} exited:\n{proc.log_tail()}")
                return benchlib.port_accepting(port)
            benchlib.wait_for(accepting, f"{proc.name} to listen on 127.0.0.1:{port}")

        ssh_config = os.path.join(self.ssh_dir, "ssh_config")
        open(ssh_config, "w", encoding="ascii").close()
        known_hosts = os.path.join(self.ssh_dir, "known_hosts")
        # ssh reads the user's ~/.ssh from the password database, not $HOME: an empty config
        # file and known_hosts of our own keep it off the machine's.
        common_args = (f"-F {ssh_config} -o UserKnownHostsFile={known_hosts} "
                       f"-o GlobalKnownHostsFile=/dev/null")
        with open(self.inventory, "w", encoding="ascii") as f:
            f.write("[bench]\n")
            for i, port in enumerate(ports):
                f.write(f"h{i + 1:02d} ansible_host=127.0.0.1 ansible_port={port}\n")
            f.write("\n[bench:vars]\nansible_user=root\n"
                    f"ansible_ssh_private_key_file={client_key}\n"
                    # A known interpreter spares ansible its discovery round trip per host.
                    "ansible_python_interpreter=/usr/bin/python3\n"
                    f"ansible_ssh_common_args='{common_args}'\n")
        self.ssh_config = ssh_config
        cfg = os.path.join(self.dir, "ansible.cfg")
        open(cfg, "w", encoding="ascii").close()
        for sub in ("local", "remote"):
            os.makedirs(os.path.join(self.dir, sub))
        self.ansible_env = dict(self.env)
        self.ansible_env.update({
            "ANSIBLE_CONFIG": cfg,
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_LOCAL_TEMP": os.path.join(self.dir, "local"),
            "ANSIBLE_REMOTE_TEMP": os.path.join(self.dir, "remote"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            # ansible's default ssh_args, with masters kept long enough that no warm run finds
            # its master gone (cold runs close theirs).
            "ANSIBLE_SSH_ARGS": "-C -o ControlMaster=auto -o ControlPersist=600s",
        })

    def run(self, forks, control_dir):
        """One timed `ansible all -m command -a 'uname -r'`; returns its wall seconds."""
        argv = ["ansible", "all", "-i", self.inventory, "-m", "command", "-a", "uname -r"]
        if forks:
            argv += ["-f", str(forks)]
        env = dict(self.ansible_env, ANSIBLE_SSH_CONTROL_PATH_DIR=control_dir)
        out_path = os.path.join(self.dir, "ansible.out")
        with open(out_path, "wb") as out:
            rc, wall = benchlib.run_timed(argv, env, out, subprocess.STDOUT, RUN_TIMEOUT_S,
                                          cwd=self.dir)
        with open(out_path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        changed = sum(1 for line in text.splitlines() if "| CHANGED | rc=0" in line)
        if rc != 0 or changed != self.hosts:
            raise BenchError(f"{' '.join(argv)} exited {rc} with {changed} of {self.hosts} hosts "
                             f"done:\n{text[-3000:]}")
        return wall

    def close_masters(self, control_dir):
        """Ends the ControlPersist master connections of control_dir (ssh -O exit on each)."""
        if not os.path.isdir(control_dir):
            return
        for entry in os.listdir(control_dir):
            subprocess.run(["ssh", "-F", self.ssh_config, "-o",
                            f"ControlPath={os.path.join(control_dir, entry)}", "-O", "exit",
                            "127.0.0.1"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30, check=False)
        benchlib.remove_tree(control_dir)

    def stop(self):
        for proc in self.sshds:
            proc.stop()
        if self.made_run_sshd:
            try:
                os.rmdir("/run/sshd")
            except OSError:
                pass


def kctl_exec_all(fleet, out_dir):
    """One timed `kctl exec --all -- uname -r`; returns its wall seconds."""
    out_path = os.path.join(out_dir, "kctl-exec.out")
    err_path = os.path.join(out_dir, "kctl-exec.err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        rc, wall = benchlib.run_timed(fleet.kctl_argv("exec", "--all", "--", "uname", "-r"),
                                      fleet.env, out, err, RUN_TIMEOUT_S)
    with open(out_path, encoding="utf-8", errors="replace") as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    if rc != 0 or len(lines) != len(fleet.names):
        with open(err_path, encoding="utf-8", errors="replace") as f:
            err_text = f.read()[-3000:]
        raise BenchError(f"kctl exec --all exited {rc} with {len(lines)} lines for "
                         f"{len(fleet.names)} agents:\n{err_text}")
    return wall


def run(tmp, env, hosts, repeats, rerun):
    """Runs the fan-out benchmark; returns its figures (wall times in ms)."""
    ansible = AnsiblePeer(tmp, env, hosts)
    fleet = benchlib.Fleet(tmp, env, "fan", hosts)
    configs = [  # (label, forks, warm)
        (f"forks 5 (default), ControlPersist cold", None, False),
        (f"-f {hosts}, ControlPersist cold", hosts, False),
        (f"forks 5 (default), ControlPersist warm", None, True),
        (f"-f {hosts}, ControlPersist warm", hosts, True),
    ]
    times = {label: [] for label, _, _ in configs}
    kfleet = []
    warm_dir = os.path.join(ansible.dir, "cp-warm")
    ok = False
    try:
        log(f"fan-out: starting {hosts} sshd and a controller with {hosts} agents")
        ansible.start()
        fleet.start()
        kctl_exec_all(fleet, fleet.dir)  # untimed: kctl's and the agents' first exec
        os.makedirs(warm_dir)
        ansible.run(hosts, warm_dir)  # untimed: opens the master connections of the warm runs
        for rep in range(repeats):
            kfleet.append(kctl_exec_all(fleet, fleet.dir))
            log(f"fan-out {rep + 1}/{repeats}: kctl exec --all {kfleet[-1] * 1000:.1f} ms")
            for label, forks, warm in configs:
                if warm:
                    wall = ansible.run(forks, warm_dir)
                else:
                    cold_dir = os.path.join(ansible.dir, f"cp-cold-{rep}-{forks or 0}")
                    os.makedirs(cold_dir)
                    try:
                        wall = ansible.run(forks, cold_dir)
                    finally:
                        ansible.close_masters(cold_dir)
                times[label].append(wall)
                log(f"fan-out {rep + 1}/{repeats}: ansible {label} {wall * 1000:.0f} ms")
        ok = True
    finally:
        ansible.close_masters(warm_dir)
        fleet.stop()
        ansible.stop()
        if not ok:
            print(fleet.log_tails(), file=benchlib.sys.stderr)

    ms = lambda values: [v * 1000 for v in values]  # noqa: E731
    best = min(times, key=lambda label: statistics.median(times[label]))
    kfleet_median = statistics.median(kfleet)
    figures = [figure(
        f"fan-out to {hosts} hosts: kctl exec --all -- uname -r", "ms", ms(kfleet),
        peer=f"ansible's best: {best}", peer_values=ms(times[best]),
        target={"of": "ratio", "op": ">=", "value": 100,
                "text": "≥ 100× faster than ansible's best"},
        rerun=rerun)]
    for label, _, _ in configs:
        figures.append(figure(
            f"fan-out to {hosts} hosts: ansible all -m command, {label}", "ms",
            ms(times[label]), rerun=rerun,
            note=f"kctl exec --all is {statistics.median(times[label]) / kfleet_median:.0f}× "
                 f"faster (medians)"))
    return figures
