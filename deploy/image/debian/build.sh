#!/bin/bash
# Builds the kfleet `debian` guest: a Debian 12 (bookworm) qcow2 disk with systemd, Debian's
# linux-image-amd64, grub (BIOS, serial console, GRUB_DEFAULT=saved for grub-reboot) and the
# kfleet agent as a systemd unit. The controller boots it through copy-on-write overlays
# (qemu-img create -f qcow2 -F qcow2 -b BASE overlay). See README.md beside this file.
#
# Usage: build.sh --agent PATH --out CACHE_DIR [--size SIZE] [--mirror URL]
#                 [--security-mirror URL|none]
#
# Prints, as the last line of stdout, CACHE_DIR/debian-<hash>: a directory holding disk.qcow2,
# kernel-release and inputs. <hash> covers the agent binary, this script, the guest files beside
# it (unit files, kfleet-guest), the package list and the disk size, so an existing directory is
# reused as is (delete it to pick up newer Debian packages). The package mirrors are not in the
# hash: like the mirror's state, they do not name the image. Everything else goes to stderr.
#
# Runs as root on Debian 12, without systemd running and without loop devices or mounts of the
# image: mmdebstrap makes the root tree, mke2fs -d writes it into the partition of a raw file,
# the guest's own grub-mkimage makes the core image, dd puts boot.img and core.img before the
# partition, qemu-img converts to qcow2. Debian packages only, from the mirrors the host's apt
# uses (../host-mirrors.sh: its sources, signed-by keyrings and proxy settings), or --mirror and
# --security-mirror (KFLEET_MIRROR, KFLEET_SECURITY_MIRROR).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
GUEST_FILES=(kfleet-guest kfleet-agent.service kfleet-network.service)
HOST_MIRRORS="$HERE/../host-mirrors.sh"
SUITE=bookworm
# Host tools: command -> Debian package.
HOST_TOOLS=(mmdebstrap:mmdebstrap qemu-img:qemu-utils sfdisk:fdisk mke2fs:e2fsprogs)
# In the guest besides the agent's libraries (minbase: essential packages and apt).
GUEST_PACKAGES=(systemd systemd-sysv udev dbus kmod iproute2 procps linux-image-amd64
  initramfs-tools zstd grub-pc)

usage() {
  cat >&2 <<'EOF'
Usage: build.sh --agent PATH --out CACHE_DIR [--size SIZE] [--mirror URL]
                [--security-mirror URL|none]

  --agent PATH      the kfleet-agent binary to install (its Debian library packages come along)
  --out CACHE_DIR   cache directory; the image goes to CACHE_DIR/debian-<hash>/disk.qcow2
  --size SIZE       virtual disk size (qemu-img units, default 4G; the qcow2 file holds only
                    what is used)
  --mirror URL      the Debian archive to install from (bookworm and bookworm-updates); default:
                    $KFLEET_MIRROR, else the one this machine's apt uses for bookworm main
  --security-mirror URL|none
                    the security archive (bookworm-security), or none to leave it out;
                    default: $KFLEET_SECURITY_MIRROR, else the one apt uses

Prints the image directory (disk.qcow2, kernel-release, inputs) as the last line of stdout.
EOF
  exit 2
}

die() { echo "build.sh: $*" >&2; exit 1; }
say() { echo "build.sh: $*" >&2; }

agent= out= size=4G mirror= security_mirror=
while [ $# -gt 0 ]; do
  case "$1" in
    --agent) agent=${2:?--agent needs a path}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --size) size=${2:?--size needs a size}; shift 2 ;;
    --mirror) mirror=${2:?--mirror needs a URL}; shift 2 ;;
    --security-mirror) security_mirror=${2:?--security-mirror needs a URL or none}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "build.sh: unknown argument: $1" >&2; usage ;;
  esac
done
[ -n "$agent" ] && [ -n "$out" ] || usage
[ -f "$agent" ] && [ -x "$agent" ] || die "--agent $agent: not an executable file"
for f in "${GUEST_FILES[@]}"; do [ -f "$HERE/$f" ] || die "missing $HERE/$f"; done
agent=$(realpath "$agent")
mkdir -p "$out"
out=$(realpath "$out")

size_bytes=$(numfmt --from=iec "${size%[bB]}" 2>/dev/null) || die "--size $size: not a size"
[ "$size_bytes" -ge $((1024 * 1024 * 1024)) ] || die "--size $size: at least 1G"
size_bytes=$((size_bytes / 1048576 * 1048576))

sha() { sha256sum "$@" | cut -d' ' -f1; }

# ---- The agent's shared libraries, as Debian packages to install in the guest. A library that
# no package owns (one built by hand) is copied into /usr/local/lib instead.
lib_pkgs=()
extra_libs=()
if ldd_out=$(ldd "$agent" 2>&1); then
  mapfile -t libs < <(printf '%s\n' "$ldd_out" | awk '
    /=> not found/ { print "MISSING " $1; next }
    $2 == "=>" && $3 ~ /^\// { print $3 }')
  for lib in "${libs[@]}"; do
    case "$lib" in MISSING*) die "ldd $agent: ${lib#MISSING } not found" ;; esac
  done
  # dpkg knows the path a package ships, which may be the /usr one behind the /lib symlink. Its
  # file lists are read directly and all at once (dpkg-query -S takes seconds per call).
  if [ ${#libs[@]} -gt 0 ]; then
    mapfile -t reals < <(realpath "${libs[@]}")
    # "LIB CANDIDATE" lines, then the owners as "/var/lib/dpkg/info/PKG[:ARCH].list:PATH".
    mapping=$(
      for i in "${!libs[@]}"; do
        l=${libs[$i]} r=${reals[$i]}
        printf '%s %s\n' "$l" "$l" "$l" "$r" "$l" "/usr$l" "$l" "/usr$r"
      done | awk -v lists="$(printf '%s\n' "${libs[@]}" "${reals[@]}" | sed 'p;s|^|/usr|' |
        grep -HxF -f - /var/lib/dpkg/info/*.list 2>/dev/null)" '
        BEGIN {
          n = split(lists, ls, "\n")
          for (i = 1; i <= n; i++) {
            k = index(ls[i], ".list:"); if (!k) continue
            pkg = substr(ls[i], 1, k - 1); sub(/.*\//, "", pkg); sub(/:.*/, "", pkg)
            owner[substr(ls[i], k + 6)] = pkg
          }
        }
        !($1 in found) { found[$1] = ""; order[++m] = $1 }
        found[$1] == "" && ($2 in owner) { found[$1] = owner[$2] }
        END { for (i = 1; i <= m; i++) print (found[order[i]] == "" ? "-" : found[order[i]]), order[i] }')
    while read -r pkg lib; do
      if [ "$pkg" = - ]; then extra_libs+=("$lib"); else lib_pkgs+=("$pkg"); fi
    done <<<"$mapping"
  fi
else
  printf '%s\n' "$ldd_out" | grep -q "not a dynamic executable" || die "ldd $agent failed: $ldd_out"
fi
mapfile -t lib_pkgs < <(printf '%s\n' "${lib_pkgs[@]}" | sed '/^$/d' | LC_ALL=C sort -u)
mapfile -t packages < <(printf '%s\n' "${GUEST_PACKAGES[@]}" "${lib_pkgs[@]}" | LC_ALL=C sort -u)

# ---- Content hash of the inputs.
inputs=$(
  echo "agent $(sha "$agent")"
  echo "build.sh $(sha "$SELF")"
  for f in "${GUEST_FILES[@]}"; do echo "file $f $(sha "$HERE/$f")"; done
  for l in "${extra_libs[@]}"; do echo "lib $l $(sha "$l")"; done
  echo "suite $SUITE"
  echo "packages ${packages[*]}"
  echo "size $size_bytes"
)
hash=$(printf '%s\n' "$inputs" | sha256sum | cut -c1-16)
final="$out/debian-$hash"
if [ -f "$final/disk.qcow2" ]; then
  say "cached: $final"
  echo "$final"
  exit 0
fi

[ "$(id -u)" = 0 ] || die "building the image needs root (mmdebstrap, chroot)"

# ---- Package mirrors: the host's apt sources and proxies unless given (host-mirrors.sh says
# which file to fix when apt has none for the suite).
mirror_args=(--suite "$SUITE")
[ -z "$mirror" ] || mirror_args+=(--mirror "$mirror")
[ -z "$security_mirror" ] || mirror_args+=(--security-mirror "$security_mirror")
mirrors=$("$HOST_MIRRORS" "${mirror_args[@]}") || die "no package mirror to build from (see above)"
MIRROR='' MIRROR_FROM='' SECURITY_MIRROR='' SECURITY_MIRROR_FROM='' mirror_key='' security_key=
aptopts=()
while IFS='=' read -r key value; do
  case "$key" in
    MIRROR) MIRROR=$value ;;
    MIRROR_FROM) MIRROR_FROM=$value ;;
    MIRROR_SIGNED_BY) mirror_key=$value ;;
    SECURITY_MIRROR) SECURITY_MIRROR=$value ;;
    SECURITY_MIRROR_FROM) SECURITY_MIRROR_FROM=$value ;;
    SECURITY_MIRROR_SIGNED_BY) security_key=$value ;;
    APTOPT) aptopts+=(--aptopt="$value") ;;
  esac
done <<<"$mirrors"
if [ -z "$MIRROR" ] || [ -z "$SECURITY_MIRROR" ]; then die "$HOST_MIRRORS printed no mirrors"; fi
# signed-by keyrings are host files to apt under mmdebstrap; the guest gets a copy (below).
for k in "$mirror_key" "$security_key"; do
  [ -z "$k" ] || [ -f "$k" ] || die "signed-by $k of the apt source for $SUITE: no such file"
  case "$k" in *[!A-Za-z0-9._/+-]*) die "signed-by $k: unexpected characters in the path" ;; esac
done
say "mirror $MIRROR (from $MIRROR_FROM), security mirror $SECURITY_MIRROR" \
  "${SECURITY_MIRROR_FROM:+"(from $SECURITY_MIRROR_FROM)"}${aptopts[*]:+", apt proxy settings"}"

# ---- Host tools.
need=()
for t in "${HOST_TOOLS[@]}"; do
  command -v "${t%%:*}" >/dev/null || [ -x "/usr/sbin/${t%%:*}" ] || [ -x "/sbin/${t%%:*}" ] ||
    need+=("${t#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2 || {
    say "apt-get install failed; running apt-get update and trying again"
    apt-get update -q >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2 ||
      die "apt-get install ${need[*]} failed (the Debian package mirror must be reachable)"
  }
fi
export PATH=$PATH:/usr/sbin:/sbin

# One builder at a time per cache; whoever waited finds the image built.
exec 9>"$out/.lock-debian"
flock 9
if [ -f "$final/disk.qcow2" ]; then
  echo "$final"
  exit 0
fi

work=$(mktemp -d "$out/.tmp-debian-XXXXXX")
cleanup() {
  # mmdebstrap unmounts what it mounted; this is for an interrupted run.
  local m
  for m in dev/pts dev proc sys; do
    mountpoint -q "$work/root/$m" 2>/dev/null && umount -l "$work/root/$m" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT
root="$work/root"
debs="$out/debian-debs"  # downloaded .debs, kept for the next build
mkdir -p "$debs"
started=$(date +%s)

# ---- Root tree.
# initramfs-tools: only the modules to find and mount the root file system (MODULES=most takes
# minutes to pack and seconds to unpack under TCG). Kernels installed in the guest later get the
# same; they must have these drivers as modules or built in.
mkdir -p "$work/initramfs-tools/conf.d" "$work/initramfs-tools/hooks"
cat >"$work/initramfs-tools/conf.d/kfleet" <<'EOF'
# kfleet debian guest: a small initramfs (see hooks/kfleet).
MODULES=list
EOF
cat >"$work/initramfs-tools/hooks/kfleet" <<'EOF'
#!/bin/sh
# kfleet debian guest: the drivers for the root disk (virtio, SCSI, SATA, IDE) and ext4.
case "$1" in prereqs) exit 0 ;; esac
. /usr/share/initramfs-tools/hook-functions
for m in virtio_pci virtio_blk virtio_scsi sd_mod ahci ata_piix ext4 crc32c_generic \
  crc32c_intel; do
  manual_add_modules "$m"
done
EOF
chmod 0755 "$work/initramfs-tools/hooks/kfleet"
say "mmdebstrap $SUITE (${#packages[@]} packages besides minbase) into $root"
signed() { [ -z "$1" ] || echo "[signed-by=$1] "; }
sources="deb $(signed "$mirror_key")$MIRROR $SUITE main
deb $(signed "$mirror_key")$MIRROR $SUITE-updates main"
if [ "$SECURITY_MIRROR" != none ]; then
  sources+=$'\n'"deb $(signed "$security_key")$SECURITY_MIRROR $SUITE-security main"
fi
# The guest's apt keeps the sources; it needs their keyrings, and not the build host's proxies
# (--aptopt also goes to the guest's apt.conf.d/99mmdebstrap).
hooks=()
for k in $(printf '%s\n' "$mirror_key" "$security_key" | sort -u); do
  hooks+=(--customize-hook="[ -e \"\$1$k\" ] || install -D -m 0644 '$k' \"\$1$k\"")
done
if [ ${#aptopts[@]} -gt 0 ]; then
  # shellcheck disable=SC2016 # $1 is the hook's: the root tree
  hooks+=(--customize-hook='f="$1/etc/apt/apt.conf.d/99mmdebstrap"
    [ ! -f "$f" ] || sed -i "/::Proxy/d" "$f"')
fi
mmdebstrap --mode=root --variant=minbase --format=directory \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --aptopt='Acquire::Retries "3"' \
  "${aptopts[@]}" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --include="$(IFS=,; echo "${packages[*]}")" \
  --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
  --setup-hook="find '$debs' -maxdepth 1 -name '*.deb' -exec cp -t \"\$1/var/cache/apt/archives/\" {} +" \
  --essential-hook="cp -r '$work/initramfs-tools' \"\$1/etc/\"" \
  --essential-hook='echo "grub-pc grub-pc/install_devices_empty boolean true" | chroot "$1" debconf-set-selections' \
  --customize-hook="(cd \"\$1/var/cache/apt/archives\" && ls | grep '\\.deb\$' >'$work/debs.list' || true)" \
  --customize-hook="find \"\$1/var/cache/apt/archives\" -maxdepth 1 -name '*.deb' -exec cp -n -t '$debs' {} +" \
  "${hooks[@]}" \
  "$SUITE" "$root" - <<<"$sources" >&2 ||
  die "mmdebstrap failed (is the mirror $MIRROR reachable? see --mirror in --help)"
# Only the .debs the last build used are kept.
if [ -s "$work/debs.list" ]; then
  (cd "$debs" && ls | grep '\.deb$' | grep -vxF -f "$work/debs.list" | xargs -r rm -f) || true
fi

vmlinuz=$(cd "$root/boot" && ls vmlinuz-* 2>/dev/null | LC_ALL=C sort -V | tail -n 1)
[ -n "$vmlinuz" ] || die "no /boot/vmlinuz-* in the root tree"
release=${vmlinuz#vmlinuz-}
[ -f "$root/boot/initrd.img-$release" ] || die "no /boot/initrd.img-$release in the root tree"

# ---- kfleet files.
uuid=$(cat /proc/sys/kernel/random/uuid)
install -d -m 0755 "$root/usr/local/bin" "$root/etc/kfleet"
install -d -m 0700 "$root/var/lib/kfleet-agent"
if command -v strip >/dev/null; then
  strip --strip-debug -o "$root/usr/local/bin/kfleet-agent" "$agent"
  chmod 0755 "$root/usr/local/bin/kfleet-agent"
else
  install -m 0755 "$agent" "$root/usr/local/bin/kfleet-agent"
fi
if [ ${#extra_libs[@]} -gt 0 ]; then
  install -d "$root/usr/local/lib"
  for l in "${extra_libs[@]}"; do cp -L "$l" "$root/usr/local/lib/"; done
  chroot "$root" ldconfig
fi
install -m 0755 "$HERE/kfleet-guest" "$root/usr/local/bin/kfleet-guest"
install -m 0644 "$HERE/kfleet-agent.service" "$HERE/kfleet-network.service" "$root/etc/systemd/system/"
cat >"$root/etc/kfleet/settings" <<'EOF'
# kfleet.KEY=VALUE lines, the lowest-priority source of the guest's settings (fw_cfg, SMBIOS OEM
# strings and the kernel command line override them). See /usr/local/bin/kfleet-guest.
EOF
printf '%s\n' "$inputs" >"$root/etc/kfleet/image-inputs"
if chroot "$root" ldd /usr/local/bin/kfleet-agent 2>&1 | grep -q 'not found'; then
  die "kfleet-agent misses libraries in the guest: $(chroot "$root" ldd /usr/local/bin/kfleet-agent | grep 'not found' | tr '\n' ' ')"
fi

# ---- System configuration.
echo kfleet-debian >"$root/etc/hostname"
cat >"$root/etc/hosts" <<'EOF'
127.0.0.1 localhost
127.0.1.1 kfleet-debian
::1 localhost ip6-localhost ip6-loopback
EOF
cat >"$root/etc/fstab" <<EOF
# <file system> <mount point> <type> <options> <dump> <pass>
UUID=$uuid / ext4 errors=remount-ro 0 1
EOF
# Each overlay gets its own machine id at first boot.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
# Root logs in on the serial console without a password (only who runs qemu sees that console).
chroot "$root" passwd -d root >/dev/null
# A fallback for when kfleet-network.service wrote nothing (its /run file sorts first).
cat >"$root/etc/systemd/network/80-kfleet-dhcp.network" <<'EOF'
[Match]
Name=en* eth*
[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
printf '%s\n' qemu_fw_cfg dmi_sysfs >"$root/etc/modules-load.d/kfleet.conf"
chroot "$root" systemctl enable -q systemd-networkd.service kfleet-network.service kfleet-agent.service
# No timers that would fetch, scrub or trim while a test runs.
for t in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
  fstrim.timer man-db.timer; do
  chroot "$root" systemctl mask -q "$t" 2>/dev/null || true
done
chroot "$root" systemctl mask -q systemd-networkd-wait-online.service
chroot "$root" systemctl set-default -q multi-user.target

# ---- grub: /etc/default/grub for `update-grub` in the guest (after installing a kernel), and
# the grub.cfg it would make, written here because grub-probe needs the mounted disk.
cat >"$root/etc/default/grub" <<'EOF'
# kfleet debian guest: serial console, one-shot boots with grub-reboot (GRUB_DEFAULT=saved).
GRUB_DEFAULT=saved
GRUB_TIMEOUT=1
GRUB_TIMEOUT_STYLE=menu
GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --speed=115200"
GRUB_DISABLE_OS_PROBER=true
GRUB_DISABLE_SUBMENU=y
GRUB_DISABLE_RECOVERY=true
EOF
echo "grub-pc grub-pc/install_devices multiselect /dev/vda" | chroot "$root" debconf-set-selections
install -d "$root/boot/grub/i386-pc"
cp "$root"/usr/lib/grub/i386-pc/*.mod "$root"/usr/lib/grub/i386-pc/*.lst "$root/boot/grub/i386-pc/"
chroot "$root" grub-editenv /boot/grub/grubenv create
entry() {  # title id
  cat <<EOF
menuentry '$1' --class debian --class gnu-linux --class gnu --class os \$menuentry_id_option '$2' {
	insmod gzio
	insmod part_msdos
	insmod ext2
	search --no-floppy --fs-uuid --set=root $uuid
	echo	'Loading Linux $release ...'
	linux	/boot/vmlinuz-$release root=UUID=$uuid ro console=ttyS0,115200
	echo	'Loading initial ramdisk ...'
	initrd	/boot/initrd.img-$release
}
EOF
}
{
  cat <<'EOF'
# Written by kfleet's deploy/image/debian/build.sh as update-grub would from /etc/default/grub;
# `update-grub` in the guest (run when a kernel package is installed) writes it anew.
if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="${saved_entry}"
fi
if [ x"${feature_menuentry_id}" = xy ]; then
  menuentry_id_option="--id"
else
  menuentry_id_option=""
fi
export menuentry_id_option
function savedefault {
  if [ -z "${boot_once}" ]; then
    saved_entry="${chosen}"
    save_env saved_entry
  fi
}
serial --speed=115200
terminal_input serial
terminal_output serial
set timeout_style=menu
set timeout=1
EOF
  entry "Debian GNU/Linux, with Linux $release" "gnulinux-$release-advanced-$uuid"
} >"$root/boot/grub/grub.cfg"
# The default stays on this kernel when others are installed (update-grub puts the newest first):
# a test kernel boots once with grub-reboot, and a reset comes back here.
chroot "$root" grub-editenv /boot/grub/grubenv set "saved_entry=gnulinux-$release-advanced-$uuid"
# The core image finds the root file system by UUID and reads the rest from /boot/grub.
cat >"$work/early.cfg" <<EOF
serial --speed=115200
terminal_input serial console
terminal_output serial console
search --no-floppy --fs-uuid --set=root $uuid
set prefix=(\$root)/boot/grub
EOF
cp "$work/early.cfg" "$root/tmp/kfleet-early.cfg"
chroot "$root" grub-mkimage -O i386-pc -o /boot/grub/i386-pc/core.img -c /tmp/kfleet-early.cfg \
  -p /boot/grub biosdisk part_msdos ext2 search search_fs_uuid serial terminal
rm -f "$root/tmp/kfleet-early.cfg"
cp "$root/usr/lib/grub/i386-pc/boot.img" "$root/boot/grub/i386-pc/boot.img"
core_sectors=$(( ($(stat -c %s "$root/boot/grub/i386-pc/core.img") + 511) / 512 ))
[ "$core_sectors" -lt 2047 ] || die "core.img has $core_sectors sectors: no room before the partition"

# Trim what the image does not need.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/* \
  "$root"/var/log/*.log "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old

# ---- Disk: an MBR with one bootable Linux partition from 1 MiB to the end, ext4 made from the
# tree in place (mke2fs -d at an offset), grub's boot.img in the MBR and core.img behind it.
raw="$work/disk.raw"
truncate -s "$size_bytes" "$raw"
echo 'label: dos
start=2048, type=83, bootable' | sfdisk -q "$raw" >&2
part_bytes=$((size_bytes - 2048 * 512))
say "mke2fs -d: $(du -sh "$root" | cut -f1) into a $((part_bytes / 1048576)) MiB ext4"
mke2fs -q -F -t ext4 -L kfleet-root -U "$uuid" -E offset=$((2048 * 512)) -d "$root" \
  "$raw" "$((part_bytes / 1024))k" </dev/null >&2 || die "mke2fs failed"
dd if="$root/boot/grub/i386-pc/boot.img" of="$raw" bs=440 count=1 conv=notrunc status=none
dd if="$root/boot/grub/i386-pc/core.img" of="$raw" bs=512 seek=1 conv=notrunc status=none
rm -rf "$root"

say "qemu-img convert to qcow2"
qemu-img convert -f raw -O qcow2 -o cluster_size=65536 "$raw" "$work/disk.qcow2" >&2
rm -rf "$raw" "$work/initramfs-tools" "$work/early.cfg" "$work/debs.list"
echo "$release" >"$work/kernel-release"
printf '%s\n' "$inputs" >"$work/inputs"
echo "$uuid" >"$work/root-uuid"
chmod 0755 "$work"
chmod 0644 "$work"/*
mv -T "$work" "$final" 2>/dev/null || [ -f "$final/disk.qcow2" ] || die "cannot create $final"
trap - EXIT
rm -rf "$work"
say "built $final in $(($(date +%s) - started))s: disk.qcow2 $(du -h "$final/disk.qcow2" | cut -f1)" \
  "(virtual $size), kernel $release"
echo "$final"
