# kfleet_start_libvirtd: makes sure qemu, libvirt and socat are installed, that libvirt lets qemu
# start the guests' network relay, and that libvirtd answers on qemu:///system. Works with systemd
# (systemctl) and without it (containers, CI: virtlogd and libvirtd started as daemons). Idempotent;
# libvirtd stays running as a system service, so nothing is recorded to be stopped later.
# Sourced, not run.
#
# Why qemu.conf changes: a guest reaches the controller through qemu's
# `guestfwd=...-cmd:socat ...`, and qemu forks that relay for each connection. libvirt's default
# seccomp filter (-sandbox ...,spawn=deny) kills qemu on that fork, so kfleet needs
# `seccomp_sandbox = 0`. Under AppArmor, qemu's profile must also allow running socat.

source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

KFLEET_LIBVIRT_PACKAGES=(qemu-system-x86 qemu-utils libvirt-daemon-system socat)

_kfleet_libvirt_say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

_kfleet_libvirt_answers() {
  virsh -c qemu:///system version >/dev/null 2>&1
}

_kfleet_libvirt_install() {
  kfleet_apt_install "${KFLEET_LIBVIRT_PACKAGES[@]}"
}

# True when systemd is PID 1 and managing units (not just installed).
_kfleet_has_systemd() {
  [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

_kfleet_libvirt_launch() {
  if [ "$(id -u)" != 0 ]; then
    echo "kfleet: libvirtd is not answering on qemu:///system and starting it needs root" >&2
    return 1
  fi
  if _kfleet_has_systemd; then
    _kfleet_libvirt_say "starting libvirtd (systemctl)"
    systemctl start virtlogd.socket virtlogd.service libvirtd.service ||
      { echo "kfleet: systemctl start libvirtd failed (see: journalctl -u libvirtd)" >&2; return 1; }
    return 0
  fi
  _kfleet_libvirt_say "starting virtlogd and libvirtd (no systemd: as daemons)"
  mkdir -p /run/libvirt /var/log/libvirt/qemu
  # Each daemon refuses a second copy through its pid file, so a daemon that is already running
  # (but libvirtd not answering yet) is left alone.
  if ! _kfleet_pidfile_alive /run/virtlogd.pid; then
    virtlogd -d || { echo "kfleet: virtlogd -d failed" >&2; return 1; }
  fi
  if ! _kfleet_pidfile_alive /run/libvirtd.pid; then
    libvirtd -d || { echo "kfleet: libvirtd -d failed (see /var/log/libvirt/)" >&2; return 1; }
  fi
}

_kfleet_pidfile_alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

KFLEET_QEMU_CONF=${KFLEET_QEMU_CONF:-/etc/libvirt/qemu.conf}

# Sets `KEY = VALUE` in qemu.conf with a comment saying why, unless it is already so. Returns 0 if it
# was, 2 if it changed the file, 1 on error.
_kfleet_qemu_conf_set() {
  local conf=$KFLEET_QEMU_CONF key=$1 value=$2 why=$3
  grep -Eq "^[[:space:]]*$key[[:space:]]*=[[:space:]]*${value//[/\\[}[[:space:]]*\$" "$conf" && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "kfleet: $conf needs $key = $value ($why); run as root" >&2
    return 1
  fi
  _kfleet_libvirt_say "setting $key = $value in $conf"
  if ! sed -i "/^[[:space:]]*$key[[:space:]]*=/d" "$conf" ||
    ! printf '\n# kfleet: %s\n%s = %s\n' "$why" "$key" "$value" >>"$conf"; then
    echo "kfleet: could not edit $conf" >&2
    return 1
  fi
  return 2
}

# Sets seccomp_sandbox = 0 (see the top of this file) and namespaces = [] (qemu then uses the
# host's /dev: in containers and chroots libvirt cannot build qemu's private /dev). Returns 0 if
# qemu.conf was already right, 2 if it changed it (libvirtd must restart to read it), 1 on error.
_kfleet_libvirt_configure() {
  local changed=0 rc=0
  _kfleet_qemu_conf_set seccomp_sandbox 0 \
    "qemu forks the guests' network relay (guestfwd cmd:), which spawn=deny forbids." || rc=$?
  [ $rc = 1 ] && return 1
  [ $rc = 2 ] && changed=1
  rc=0
  _kfleet_qemu_conf_set namespaces '[]' \
    "qemu uses the host's /dev; containers and chroots cannot give it a private one." || rc=$?
  [ $rc = 1 ] && return 1
  [ $rc = 2 ] && changed=1
  # AppArmor hosts: domain profiles include this abstraction; let qemu run socat in its profile.
  local aa=/etc/apparmor.d/local/abstractions/libvirt-qemu
  if [ -d /sys/kernel/security/apparmor ] && [ -d "$(dirname "$aa")" ] &&
    ! grep -qs '^[[:space:]]*/usr/bin/socat rmix,' "$aa"; then
    [ "$(id -u)" = 0 ] || { echo "kfleet: $aa needs '/usr/bin/socat rmix,'; run as root" >&2; return 1; }
    _kfleet_libvirt_say "allowing qemu to run socat in $aa"
    printf '# kfleet: guest network relay (guestfwd cmd:)\n/usr/bin/socat rmix,\n' >>"$aa"
    changed=1
  fi
  [ $changed = 0 ] || return 2
}

# Stops a running libvirtd so that it rereads qemu.conf. Running guests keep running.
_kfleet_libvirt_stop() {
  if _kfleet_has_systemd; then
    systemctl stop libvirtd.service 2>/dev/null
    return 0
  fi
  local pid
  pid=$(cat /run/libvirtd.pid 2>/dev/null) || return 0
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  echo "kfleet: libvirtd (pid $pid) did not stop within 10 s" >&2
  return 1
}

# Without udev (containers, chroots), /dev/kvm stays root:root 0600: libvirt then sees KVM when it
# probes qemu's capabilities but not for its qemu user, throws its capability cache away at every
# look and probes qemu again (a minute per guest start on a busy machine), and guests could not
# use KVM anyway. Debian's udev rules make it root:kvm 0660 (libvirt-qemu is in group kvm); do the
# same. Whether KVM then works is for the controller's accelerator probe to find out.
_kfleet_kvm_permissions() {
  [ -c /dev/kvm ] && getent group kvm >/dev/null || return 0
  [ "$(stat -c '%U:%G %a' /dev/kvm)" = "root:root 600" ] || return 0
  if chgrp kvm /dev/kvm && chmod 0660 /dev/kvm; then
    _kfleet_libvirt_say "/dev/kvm: root:kvm 0660, as Debian's udev rules make it (no udev runs here)"
  fi
  return 0
}

kfleet_start_libvirtd() {
  _kfleet_libvirt_install || return 1
  _kfleet_kvm_permissions
  local rc=0
  _kfleet_libvirt_configure || rc=$?
  [ $rc = 1 ] && return 1
  if _kfleet_libvirt_answers; then
    [ $rc = 0 ] && return 0
    _kfleet_libvirt_say "restarting libvirtd to apply $KFLEET_QEMU_CONF"
    _kfleet_libvirt_stop || return 1
  fi
  _kfleet_libvirt_launch || return 1
  for _ in $(seq 60); do
    _kfleet_libvirt_answers && { _kfleet_libvirt_say "libvirtd is up"; return 0; }
    sleep 0.5
  done
  echo "kfleet: libvirtd did not answer on qemu:///system within 30 s" \
    "(try: virsh -c qemu:///system version; logs in /var/log/libvirt/)" >&2
  return 1
}

# kfleet_test_kernel [DIR]: a kernel and a tiny initrd for provider tests, cached in DIR (default
# /var/cache/kfleet/test-kernel), and prints DIR. DIR/vmlinuz is Debian's kernel, unpacked from the
# linux-image-*-amd64 package without installing it. DIR/initrd.img is busybox (busybox-static)
# plus the kernel's virtio and fw_cfg modules, whose /init prints to the console:
#   KFLEET-PROBE-OK                      first thing
#   KFLEET-VARIANT:<contents of /etc/kfleet-variant, if an appended cpio added one>
#   KFLEET-CMDLINE:<kernel command line>
#   KFLEET-FWCFG:<opt/kfleet/settings from fw_cfg, lines joined by spaces>
#   KFLEET-DISKS:<vdX:serial:sectors ...>
#   KFLEET-RELAY:<reply> <reply>         two connections to 10.0.2.100:P, P = kfleet.probe_port
#   KFLEET-BLOCKED:<yes|no>              whether 10.0.2.2:P (the host) is unreachable
#   KFLEET-DONE
# and then sleeps.
KFLEET_TEST_KERNEL_STAMP=3
kfleet_test_kernel() {
  local dir=${1:-/var/cache/kfleet/test-kernel}
  if [ -s "$dir/vmlinuz" ] && [ -s "$dir/initrd.img" ] &&
    [ "$(cat "$dir/stamp" 2>/dev/null)" = "$KFLEET_TEST_KERNEL_STAMP" ]; then
    echo "$dir"
    return 0
  fi
  local bb
  bb=$(command -v busybox) || { echo "kfleet: busybox (busybox-static) is needed" >&2; return 1; }
  mkdir -p "$dir" || return 1
  local tmp pkg
  tmp=$(mktemp -d) || return 1
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
  if [ -z "$pkg" ]; then
    echo "kfleet: cannot resolve linux-image-amd64 (apt-get update?)" >&2
    rm -rf "$tmp"
    return 1
  fi
  if ! (cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1) ||
    ! dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/root"; then
    echo "kfleet: could not download and unpack $pkg" >&2
    rm -rf "$tmp"
    return 1
  fi
  local r=$tmp/initrd m f
  mkdir -p "$r/bin" "$r/dev" "$r/proc" "$r/sys" "$r/etc" "$r/lib/modules"
  cp "$bb" "$r/bin/busybox"
  ln -s busybox "$r/bin/sh"
  # In dependency order: busybox insmod does not resolve dependencies.
  local mods="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci"
  mods="$mods failover net_failover virtio_net virtio_blk qemu_fw_cfg"
  for m in $mods; do
    f=$(find "$tmp/root/lib/modules" -name "$m.ko*" | head -1)
    case "$f" in
      "") echo "kfleet: $pkg has no module $m (built in?)" >&2 ;;
      *.ko) cp "$f" "$r/lib/modules/$m.ko" ;;
      *.ko.xz) xz -dc "$f" >"$r/lib/modules/$m.ko" ;;
      *.ko.zst) zstd -qdc "$f" >"$r/lib/modules/$m.ko" ;;
    esac
  done
  cat >"$r/init" <<INIT
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs dev /dev 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sys /sys
echo KFLEET-PROBE-OK >/dev/console
for m in $mods; do [ -f /lib/modules/\$m.ko ] && insmod /lib/modules/\$m.ko; done
INIT
  cat >>"$r/init" <<'INIT'
exec >/dev/console 2>&1
echo "KFLEET-VARIANT:$(cat /etc/kfleet-variant 2>/dev/null)"
echo "KFLEET-CMDLINE:$(cat /proc/cmdline)"
echo "KFLEET-FWCFG:$(cat /sys/firmware/qemu_fw_cfg/by_name/opt/kfleet/settings/raw 2>/dev/null | tr '\n' ' ')"
disks=
for d in /sys/block/vd*; do
  [ -e "$d" ] && disks="$disks ${d##*/}:$(cat $d/serial 2>/dev/null):$(cat $d/size)"
done
echo "KFLEET-DISKS:$disks"
port=$(sed -n 's/.*kfleet\.probe_port=\([0-9]*\).*/\1/p' /proc/cmdline)
if [ -n "$port" ]; then
  ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0
  r1=$( (echo hello; sleep 3) | nc -w 10 10.0.2.100 "$port")
  r2=$( (echo hello; sleep 3) | nc -w 10 10.0.2.100 "$port")
  echo "KFLEET-RELAY:$r1 $r2"
  if [ -z "$( (echo hello; sleep 3) | nc -w 3 10.0.2.2 "$port" 2>/dev/null)" ]; then
    echo KFLEET-BLOCKED:yes
  else
    echo KFLEET-BLOCKED:no
  fi
fi
echo KFLEET-DONE
while :; do sleep 3600; done
INIT
  chmod 755 "$r/init"
  cp "$tmp"/root/boot/vmlinuz-* "$dir/vmlinuz.tmp" && mv "$dir/vmlinuz.tmp" "$dir/vmlinuz" &&
    (cd "$r" && find . | cpio -o -H newc --quiet) | gzip -1 >"$dir/initrd.img.tmp" &&
    mv "$dir/initrd.img.tmp" "$dir/initrd.img" &&
    chmod 644 "$dir/vmlinuz" "$dir/initrd.img" &&
    echo "$KFLEET_TEST_KERNEL_STAMP" >"$dir/stamp"
  local rc=$?
  rm -rf "$tmp"
  [ $rc = 0 ] || { echo "kfleet: could not write the test kernel to $dir" >&2; return 1; }
  echo "$dir"
}
