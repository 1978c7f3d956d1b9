# Shared by the scripts in this folder: install what kfleet needs from Debian, and build it.
# Sourced, not run.

KFLEET_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$KFLEET_ROOT/scripts/libvirt.sh"
KFLEET_BUILD=${KFLEET_BUILD:-$KFLEET_ROOT/build}

KFLEET_PACKAGES=(
  build-essential cmake pkg-config ccache git python3
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libsqlite3-dev libssl-dev zlib1g-dev libgtest-dev libgmock-dev
  libvirt-dev libyaml-cpp-dev nlohmann-json3-dev prometheus-cpp-dev libexpat1-dev
  # the agent's --watch-units: systemd units over D-Bus (sd-bus)
  libsystemd-dev
  # metrics tests: promtool and a real Prometheus server on loopback; dashboard pictures
  # (dashboards/render.py)
  prometheus python3-matplotlib
  procps
  # guests: the tiny image's recipe and the hypervisor (scripts/libvirt.sh starts libvirtd)
  busybox-static cpio socat qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients
  # kernels: the source the main job and the tests build, and what building it needs
  linux-source-6.1 flex bison bc libelf-dev kmod xz-utils
  # kselftests built with a kernel: their install step copies with rsync
  rsync
  # the off-loopback tests: network namespaces and veth pairs
  iproute2
  # Debian packages (cpack: dpkg-shlibdeps needs `file`) and the package test's fresh Debian root
  file mmdebstrap
  # the mail-host scenario: an IMAP server on loopback and mbsync fetching from it
  dovecot-imapd isync
  # fstests built from ../shared/suites and run on XFS over loop devices (tests/test_fstests_real.py)
  xfsprogs xfslibs-dev xfsdump acl attr autoconf automake libtool libtool-bin gawk
  libacl1-dev libattr1-dev libaio-dev libgdbm-dev libgdbm-compat-dev liburing-dev uuid-dev
  uuid-runtime fio psmisc
)

# A clean kernel tree from Debian's linux-source-6.1, unpacked once per machine; the tests use the
# same one (tests/harness.py kernel_source).
KFLEET_CACHE=/var/cache/kfleet
kfleet_kernel_source() {
  local tree=$KFLEET_CACHE/linux-source-6.1
  if [ ! -f "$tree/Makefile" ]; then
    say "unpacking /usr/src/linux-source-6.1.tar.xz into $tree"
    rm -rf "$tree.tmp"
    mkdir -p "$tree.tmp"
    tar -xf /usr/src/linux-source-6.1.tar.xz -C "$tree.tmp" --strip-components=1
    mv "$tree.tmp" "$tree"
  fi
  printf '%s\n' "$tree"
}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

kfleet_install_deps() {
  kfleet_apt_install "${KFLEET_PACKAGES[@]}" || return 1
  say "Debian packages: all present"
}

# kfleet_build [extra cmake args...]: configures (once) and builds everything into $KFLEET_BUILD.
kfleet_build() {
  say "building kfleet in $KFLEET_BUILD"
  export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
  cmake -S "$KFLEET_ROOT" -B "$KFLEET_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" \
    >"$KFLEET_BUILD.configure.log" 2>&1 ||
    { cat "$KFLEET_BUILD.configure.log" >&2; echo "kfleet: cmake configure failed" >&2; return 1; }
  cmake --build "$KFLEET_BUILD" -j"$(nproc)"
}

# Processes started by a script are recorded here and stopped by pid, never by name.
KFLEET_PIDS=()
kfleet_stop_started() {
  local pid
  for pid in "${KFLEET_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${KFLEET_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  KFLEET_PIDS=()
}

# A free TCP port on 127.0.0.1.
kfleet_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
