#!/usr/bin/env bash
# kfleet's main job on embedded defaults: install what is needed, build, start a controller (SQLite
# in .state/demo) and two local agents, run a job across them, show the result, stop what it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kfleet_install_deps
kfleet_build

STATE=$KFLEET_ROOT/.state/demo
rm -rf "$STATE"
mkdir -p "$STATE"
PORT=$(kfleet_free_port)
ADDR=127.0.0.1:$PORT
trap kfleet_stop_started EXIT

say "starting kfleet-controller on $ADDR (state in $STATE)"
"$KFLEET_BUILD/controller/kfleet-controller" --listen "$ADDR" --state-dir "$STATE/controller" \
  --insecure >"$STATE/controller.log" 2>&1 &
KFLEET_PIDS+=($!)
for n in 1 2; do
  "$KFLEET_BUILD/agent/kfleet-agent" --controller "$ADDR" --state-dir "$STATE/agent-$n" \
    --name "local-$n" --labels "pool=local,role=builder" --insecure >"$STATE/agent-$n.log" 2>&1 &
  KFLEET_PIDS+=($!)
done

export KFLEET_CONTROLLER=$ADDR KFLEET_INSECURE=1
KCTL=$KFLEET_BUILD/cli/kctl
for _ in $(seq 100); do
  [ "$("$KCTL" -o json hosts 2>/dev/null | grep -o '"ONLINE"' | wc -l)" -ge 2 ] && break
  sleep 0.1
done

say "kctl hosts"
"$KCTL" hosts
say "kctl exec -l pool=local -- sh -c 'uname -sr; nproc; uptime'"
rc=0
"$KCTL" exec -l pool=local -- sh -c 'echo "kernel $(uname -sr), $(nproc) cpus"; uptime' || rc=$?
say "kctl jobs"
"$KCTL" jobs
if [ $rc = 0 ]; then say "demo passed"; else say "demo failed (kctl exit $rc)"; fi
exit $rc
