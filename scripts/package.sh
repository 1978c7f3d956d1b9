#!/usr/bin/env bash
# Builds kfleet and its Debian packages (kfleet, kfleet-agent) into build/packages/.
# Usage: scripts/package.sh; then: apt install ./build/packages/kfleet*_amd64.deb
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kfleet_install_deps
kfleet_build
say "making the Debian packages"
cd "$KFLEET_BUILD"
cpack -G DEB >&2
ls -1 "$KFLEET_BUILD"/packages/*.deb
