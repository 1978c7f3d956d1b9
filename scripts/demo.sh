#!/usr/bin/env bash
# kfleet's main job on embedded defaults: install what is needed, build kfleet, start libvirtd and
# a controller (with its local builder), then `kctl boot`: build a small kernel from Debian's
# linux-source-6.1 (kfleet's guest config), boot a `tiny` guest of the default pool into it,
# verify that it runs that kernel, run a command and kselftest's `size` collection (built with the
# kernel) there, and show the test results and the verdict with the build, boot and registration
# times. Destroys the guest and stops what this script started at the end.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kfleet_install_deps
kfleet_build
kfleet_start_libvirtd
TREE=$(kfleet_kernel_source)

# Guests' files must be reachable by qemu, which runs as its own user: keep state out of /root.
STATE=${KFLEET_DEMO_STATE:-/var/lib/kfleet/demo}
mkdir -p "$STATE"
chmod 755 "$(dirname "$STATE")" "$STATE"
rm -rf "$STATE/controller"
PORT=$(kfleet_free_port)
ADDR=127.0.0.1:$PORT
# TLS: the controller makes its CA and an admin's kctl.yaml on first start; kctl reads it.
export KFLEET_CONTROLLER=$ADDR KFLEET_CONFIG=$STATE/controller/kctl.yaml
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

say "starting kfleet-controller on $ADDR (state in $STATE/controller, local builder on)"
"$KFLEET_BUILD/controller/kfleet-controller" --listen "$ADDR" --state-dir "$STATE/controller" \
  --builder-kernel-dir "$KFLEET_CACHE/kernel-work" >"$STATE/controller.log" 2>&1 &
KFLEET_PIDS+=($!)
for _ in $(seq 100); do [ -f "$KFLEET_CONFIG" ] && "$KCTL" pools >/dev/null 2>&1 && break; sleep 0.1; done
"$KCTL" whoami

say "kctl boot --tree $TREE -l pool=local --kselftest size -- sh -c '...'"
echo "(builds the kernel on the local builder, the tiny image on first use, boots a guest into" \
  "the kernel and checks it is the one built; the first build on a machine takes a while)" >&2
rc=0
"$KCTL" boot --tree "$TREE" -l pool=local --kselftest size -- sh -c \
  'echo "running $(uname -r) on $(uname -m), $(nproc) cpu"; cat /proc/version' || rc=$?

"$KCTL" hosts
"$KCTL" events

if [ $rc = 0 ]; then say "demo passed"; else say "demo failed (kctl exit $rc)"; fi
exit $rc
