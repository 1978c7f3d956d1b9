#!/usr/bin/env python3
"""Sharding benchmark: 40 scripted tests of known durations over 4 agents on loopback.

A real controller and four real agents (started by tests/harness.py from the build tree) run one
test step with `shard: 4` twice: the first time the controller has no stored durations (tests go
out in list order), the second time it hands out the longest test left to each agent that is free
(durations stored by the first run). Printed for each run: the makespan (job created to job done,
dispatch and reporting included), the best possible makespan's lower bound max(sum/4, longest)
and the ratio; and the peer: a static split of the same list into 4 fixed quarters (round robin,
what a per-host test list does), its makespan computed from the durations measured in the run.

    cmake -S . -B build && make -C build -j2 kfleet-controller kfleet-agent kctl
    python3 bench/sharding.py [--tests 40] [--agents 4] [--seed 6] [--scale 1.0]
"""
import argparse
import json
import os
import random
import sys
import textwrap
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import harness  # noqa: E402

SLEEPER = textwrap.dedent("""\
    #!/bin/sh
    exec sleep "${1#*_}"
    """)

ARGS = None


def lower_bound(durations, agents):
    return max(sum(durations) / agents, max(durations))


def static_split(durations, agents):
    """Makespan of a fixed round-robin split of the list (no durations used)."""
    loads = [0.0] * agents
    for i, d in enumerate(durations):
        loads[i % agents] += d
    return max(loads)


class ShardingBench(harness.KfleetTestCase):

    def test_bench(self):
        rng = random.Random(ARGS.seed)
        # Durations from 0.1 s to 2.0 s, a few long ones: like a suite's mix of quick and slow.
        durations = [round(ARGS.scale * (0.1 + rng.random() ** 2 * 1.9), 2)
                     for _ in range(ARGS.tests)]
        tests = [f"t{i:02d}_{d:.2f}" for i, d in enumerate(durations)]
        self.start_controller(heartbeat="1s")
        for i in range(ARGS.agents):
            self.start_agent(f"b{i + 1}", labels={"bench": "shard"})
        sleeper = os.path.join(self.tmp, "sleeper.sh")
        with open(sleeper, "w") as f:
            f.write(SLEEPER)
        os.chmod(sleeper, 0o755)
        print(f"\n{ARGS.tests} tests over {ARGS.agents} agents, durations "
              f"{min(durations):.2f}-{max(durations):.2f} s, sum {sum(durations):.2f} s "
              f"(seed {ARGS.seed})")
        for attempt in (1, 2):
            name = f"shard-bench-{attempt}"
            spec = {
                "name": name,
                "hosts": {"labels": {"bench": "shard"}, "count": ARGS.agents},
                "steps": [{"test": {"suite": "exec", "section": "bench", "tests": tests,
                                    "argv": [sleeper, "{test}"], "shard": ARGS.agents,
                                    "reruns": 0}}],
            }
            path = os.path.join(self.tmp, f"{name}.json")
            with open(path, "w") as f:
                json.dump(spec, f)
            r = self.kctl("run", "-f", path, timeout=600)
            if r.rc != 0:
                self.fail(f"the job failed: {r!r}")
            job_id = self.find_job(name)
            job = self.job(job_id)
            makespan = (int(job["finished_unix_ms"]) - int(job["created_unix_ms"])) / 1000
            results = self.kctl_json("results", job_id)["results"]
            measured = {x["result"]["name"]: int(x["result"]["duration_ms"]) / 1000
                        for x in results}
            actual = [measured[t] for t in tests]
            bound = lower_bound(actual, ARGS.agents)
            peer = static_split(actual, ARGS.agents)
            per_host = {}
            for x in results:
                per_host[x["host_name"]] = per_host.get(x["host_name"], 0) + \
                    int(x["result"]["duration_ms"]) / 1000
            what = "no stored durations: list order" if attempt == 1 else \
                "stored durations: longest first"
            print(f"run {attempt} ({what}):")
            print(f"  makespan {makespan:.2f} s; lower bound of the best {bound:.2f} s; "
                  f"ratio {makespan / bound:.3f} ({(makespan / bound - 1) * 100:+.1f}%)")
            print(f"  busy per agent: " +
                  ", ".join(f"{h} {s:.2f} s" for h, s in sorted(per_host.items())))
            print(f"  peer, static round-robin split of the same list: {peer:.2f} s; "
                  f"kfleet is x{peer / makespan:.2f} faster")
        print("\nrerun: python3 bench/sharding.py "
              f"--tests {ARGS.tests} --agents {ARGS.agents} --seed {ARGS.seed} --scale {ARGS.scale}")


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=40)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every duration")
    ARGS = parser.parse_args()
    suite = unittest.TestSuite([ShardingBench("test_bench")])
    result = unittest.TextTestRunner(verbosity=0, stream=sys.stderr).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
