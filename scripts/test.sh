#!/usr/bin/env bash
# Installs what is needed, builds kfleet with warnings as errors, and runs every test
# (unit, integration). CI runs this through .ci/run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kfleet_install_deps
kfleet_build -DKFLEET_WERROR=ON
kfleet_start_libvirtd
say "running the tests"
cd "$KFLEET_BUILD"
ctest --output-on-failure --timeout 600 -j1 "$@"
