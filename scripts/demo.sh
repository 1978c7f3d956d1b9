#!/usr/bin/env bash
# kfleet's main job on embedded defaults: install what is needed, build, start libvirtd and a
# controller, bring up a `tiny` guest in the default pool, run a job in it, reboot it for real,
# show the results, then destroy the guest and stop what this script started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kfleet_install_deps
kfleet_build
kfleet_start_libvirtd

# Guests' files must be reachable by qemu, which runs as its own user: keep state out of /root.
STATE=${KFLEET_DEMO_STATE:-/var/lib/kfleet/demo}
mkdir -p "$STATE"
chmod 755 "$(dirname "$STATE")" "$STATE"
rm -rf "$STATE/controller"
PORT=$(kfleet_free_port)
ADDR=127.0.0.1:$PORT
export KFLEET_CONTROLLER=$ADDR KFLEET_INSECURE=1
KCTL=$KFLEET_BUILD/cli/kctl

cleanup() {
  local rc=$?
  if [ -n "${KFLEET_PIDS[*]:-}" ]; then
    say "destroying the demo's guests"
    "$KCTL" destroy local >/dev/null 2>&1 || true
  fi
  kfleet_stop_started
  exit $rc
}
trap cleanup EXIT

say "starting kfleet-controller on $ADDR (state in $STATE/controller)"
"$KFLEET_BUILD/controller/kfleet-controller" --listen "$ADDR" --state-dir "$STATE/controller" \
  --insecure >"$STATE/controller.log" 2>&1 &
KFLEET_PIDS+=($!)
for _ in $(seq 100); do "$KCTL" pools >/dev/null 2>&1 && break; sleep 0.1; done

say "kctl bringup local   (builds the tiny image on first use, then boots it under libvirt)"
"$KCTL" bringup local
started=$SECONDS
until "$KCTL" -o json hosts 2>/dev/null | grep -q '"ONLINE"'; do
  if "$KCTL" -o json pools 2>/dev/null | grep -q '"state": "failed"'; then
    echo "kfleet: the guest could not be created:" >&2
    "$KCTL" pools >&2
    tail -n 20 "$STATE/controller.log" >&2
    exit 1
  fi
  if [ $((SECONDS - started)) -gt 600 ]; then
    echo "kfleet: the guest did not register within 10 minutes; controller log:" >&2
    tail -n 30 "$STATE/controller.log" >&2
    exit 1
  fi
  sleep 1
done
say "guest registered $((SECONDS - started))s after bringup (image build and boot included)"
"$KCTL" pools
"$KCTL" hosts

say "kctl exec -l pool=local -- sh -c '...'"
rc=0
"$KCTL" exec -l pool=local -- sh -c 'echo "kernel $(uname -r) on $(uname -m), $(nproc) cpu"; \
  echo "cmdline: $(cat /proc/cmdline)"; free -m | head -n 2' || rc=$?

say "kctl reboot -l pool=local   (a real reboot; passes when the agent registers again)"
"$KCTL" reboot -l pool=local --timeout 5m || rc=$?
"$KCTL" events

if [ $rc = 0 ]; then say "demo passed"; else say "demo failed (kctl exit $rc)"; fi
exit $rc
