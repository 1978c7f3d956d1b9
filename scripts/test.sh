#!/usr/bin/env bash
# Installs what is needed, builds kfleet with warnings as errors, and runs every test
# (unit, integration, package, real guests and kernels). CI runs this through .ci/run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kfleet_install_deps
kfleet_build -DKFLEET_WERROR=ON
kfleet_start_libvirtd
cd "$KFLEET_BUILD"
if [ $# -gt 0 ]; then
  say "running the tests: ctest $*"
  exec ctest --output-on-failure --timeout 600 -j1 "$@"
fi
# Two at a time where each test is short and mostly waits (unit, integration, package); real
# guests one at a time: each keeps a CPU busy under TCG and has boot deadlines. Tests labelled
# `serial` (a real fstests run, which fails on any OOM kill in the kernel log while others cause
# them on purpose) run alone too.
say "running the tests without guests (two at a time)"
rc=0
ctest --output-on-failure --timeout 600 -j2 -LE '^(vm|serial)$' || rc=$?
say "running the tests with real guests, and those that need the machine alone (one at a time)"
ctest --output-on-failure --timeout 600 -j1 -L '^(vm|serial)$' || rc=$?
exit $rc
