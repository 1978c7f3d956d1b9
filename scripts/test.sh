#!/usr/bin/env bash
# Installs what is needed, builds kfleet with warnings as errors, and runs every test
# (unit, integration, package, real guests and kernels). CI runs this through .ci/run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kfleet_install_deps
kfleet_build -DKFLEET_WERROR=ON
kfleet_start_libvirtd
# The kernel tree the tests share (unit tests of the kernel steps read it too), unpacked once.
kfleet_kernel_source >/dev/null
cd "$KFLEET_BUILD"
if [ $# -gt 0 ]; then
  say "running the tests: ctest $*"
  exec ctest --output-on-failure --timeout 600 -j1 "$@"
fi
# Two at a time where each test is short and mostly waits (unit, integration, package); real
# guests one at a time: each keeps a CPU busy under TCG and has boot deadlines. Tests labelled
# `serial` (a real fstests run, which fails on any OOM kill in the kernel log while others cause
# them on purpose) run alone too.
# The debian guest image (mostly downloading Debian) is built while those run, into the cache the
# guest tests use; its key is the same inputs the controller's build would hash, so the controller
# finds it there (or waits on its lock) instead of building it on the guest tests' time.
image_log=$KFLEET_BUILD/debian-image.log
say "building the debian guest image in the background (log: $image_log)"
bash "$KFLEET_ROOT/deploy/image/debian/build.sh" --agent "$KFLEET_BUILD/agent/kfleet-agent" \
  --out /var/cache/kfleet/images >"$image_log" 2>&1 &
image_pid=$!
trap 'kill "$image_pid" 2>/dev/null || true' EXIT
say "running the tests without guests (two at a time)"
rc=0
ctest --output-on-failure --timeout 600 -j2 -LE '^(vm|serial)$' || rc=$?
if wait "$image_pid"; then
  say "debian guest image: $(tail -n 1 "$image_log")"
else
  say "the debian guest image did not build (log: $image_log); vm_debian_guest will try again"
fi
say "running the tests with real guests, and those that need the machine alone (one at a time)"
ctest --output-on-failure --timeout 600 -j1 -L '^(vm|serial)$' || rc=$?
exit $rc
