#!/usr/bin/env python3
"""A stand-in cloud for kfleet's exec provider: each "guest" is a local kfleet-agent process.

Usage (as the exec provider's commands): fake_guest.py create|destroy|power_cycle, with the
request JSON on stdin. Guests live in $KFLEET_FAKE_CLOUD (pid file, state dir, log); the agent
binary is $KFLEET_AGENT_BIN. Only processes this script started are stopped, by pid.
"""
import json
import os
import signal
import subprocess
import sys
import time

CLOUD = os.environ["KFLEET_FAKE_CLOUD"]
AGENT = os.environ["KFLEET_AGENT_BIN"]


def paths(name):
    base = os.path.join(CLOUD, name)
    return base + ".pid", base + ".state", base + ".log", base + ".json"


def start(req):
    pid_file, state, log, spec = paths(req["name"])
    s = req["settings"]
    argv = [AGENT, "--controller", s["kfleet.controller"], "--state-dir", state,
            "--host-id", s["kfleet.host_id"], "--name", s["kfleet.name"],
            "--labels", s["kfleet.labels"], "--reconnect-max", "1s"]
    enrolment = req.get("enrolment")
    if enrolment:
        # As a cloud template does with user-data: the guest's own token and the CA, as files.
        os.makedirs(state, exist_ok=True)
        token_file, ca_file = os.path.join(state, "token"), os.path.join(state, "ca.pem")
        with open(os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(enrolment["token"])
        with open(ca_file, "w") as f:
            f.write(enrolment["ca_pem"])
        argv += ["--token-file", token_file, "--ca-cert", ca_file]
    else:
        argv.append("--insecure")
    with open(log, "ab") as out:
        p = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    with open(pid_file, "w") as f:
        f.write(str(p.pid))
    with open(spec, "w") as f:
        json.dump(req, f)
    return log


def stop(name):
    pid_file, state, log, spec = paths(name)
    try:
        pid = int(open(pid_file).read())
    except FileNotFoundError:
        return
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.unlink(pid_file)


def main():
    op = sys.argv[1]
    req = json.load(sys.stdin)
    with open(os.path.join(CLOUD, "operations.log"), "a") as f:
        f.write(f"{op} {req['name']}\n")
    if op == "create":
        log = start(req)
        print(json.dumps({"console_path": log}))
    elif op == "destroy":
        stop(req["name"])
        for p in paths(req["name"])[1:]:
            subprocess.run(["rm", "-rf", p], check=False)
    elif op == "power_cycle":
        stop(req["name"])
        start(json.load(open(paths(req["name"])[3])))
    else:
        sys.exit(f"unknown operation {op}")


if __name__ == "__main__":
    main()
