#!/bin/bash
# Builds the kfleet `tiny` guest: a kernel plus an initramfs (busybox + kfleet-agent) for direct
# kernel boot (qemu -kernel/-initrd, libvirt <kernel>/<initrd>). See ../README.md.
#
# Usage: build.sh --agent PATH --out CACHE_DIR [--kernel-deb-version VER | --kernel PATH [--modules-dir DIR]]
#
# Prints, as the last line of stdout, CACHE_DIR/tiny-<hash>: a directory holding vmlinuz, initrd.img
# and kernel-release. <hash> covers every input (agent binary and its shared libraries, kernel,
# modules, busybox, /init, this script), so an existing directory is reused as is. Everything else
# goes to stderr. Uses Debian packages only: busybox-static and cpio (installed when missing) and,
# by default, the kernel of linux-image-amd64, fetched with `apt-get download` (never installed).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
INIT_SRC="$HERE/init"
BUSYBOX=/bin/busybox

# Kernel modules for the network, in load order (path under lib/modules/<release>/kernel/, no .ko).
REQUIRED_MODULES=(
  drivers/virtio/virtio_ring
  drivers/virtio/virtio
  drivers/virtio/virtio_pci_modern_dev
  drivers/virtio/virtio_pci_legacy_dev
  drivers/virtio/virtio_pci
  net/core/failover
  drivers/net/net_failover
  drivers/net/virtio_net
)
# Loaded after those when present; a failure to load them is not fatal. qemu_fw_cfg (no module
# dependencies) shows the guest's fw_cfg entries, its enrolment token and CA among them, under
# /sys/firmware/qemu_fw_cfg/by_name/.
OPTIONAL_MODULES=(
  drivers/block/virtio_blk
  drivers/char/virtio_console
  drivers/firmware/qemu_fw_cfg
)

usage() {
  cat >&2 <<'EOF'
Usage: build.sh --agent PATH --out CACHE_DIR [--kernel-deb-version VER | --kernel PATH [--modules-dir DIR]]

  --agent PATH               the kfleet-agent binary to bake in (its shared libraries come along)
  --out CACHE_DIR            cache directory; the image goes to CACHE_DIR/tiny-<hash>/
  --kernel-deb-version VER   Debian kernel ABI, e.g. 6.1.0-56 (package linux-image-6.1.0-56-amd64);
                             default: the one linux-image-amd64 depends on
  --kernel PATH              a bzImage of your own instead of a Debian kernel
  --modules-dir DIR          its modules, i.e. a lib/modules/<release> directory (modules that are
                             built in need no file)

Prints the image directory (vmlinuz, initrd.img, kernel-release) as the last line of stdout.
EOF
  exit 2
}

die() { echo "build.sh: $*" >&2; exit 1; }
say() { echo "build.sh: $*" >&2; }

agent='' out='' deb_version='' kernel='' modules_dir=''
while [ $# -gt 0 ]; do
  case "$1" in
    --agent) agent=${2:?--agent needs a path}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --kernel-deb-version) deb_version=${2:?--kernel-deb-version needs a version}; shift 2 ;;
    --kernel) kernel=${2:?--kernel needs a path}; shift 2 ;;
    --modules-dir) modules_dir=${2:?--modules-dir needs a directory}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "build.sh: unknown argument: $1" >&2; usage ;;
  esac
done
if [ -z "$agent" ] || [ -z "$out" ]; then usage; fi
if [ ! -f "$agent" ] || [ ! -x "$agent" ]; then die "--agent $agent: not an executable file"; fi
if [ -n "$kernel" ]; then
  [ -z "$deb_version" ] || die "--kernel and --kernel-deb-version exclude each other"
  [ -f "$kernel" ] || die "--kernel $kernel: no such file"
  [ -z "$modules_dir" ] || [ -d "$modules_dir" ] || die "--modules-dir $modules_dir: no such directory"
elif [ -n "$modules_dir" ]; then
  die "--modules-dir goes with --kernel"
fi
agent=$(realpath "$agent")
mkdir -p "$out"
out=$(realpath "$out")

sha() { sha256sum "$@" | cut -d' ' -f1; }

# The release string in a bzImage's setup header (what `uname -r` will say).
bzimage_release() {
  local f=$1 off
  [ "$(dd if="$f" bs=1 skip=514 count=4 2>/dev/null)" = HdrS ] || return 1
  off=$(od -An -tu2 -j 526 -N 2 "$f" | tr -d ' ')
  [ -n "$off" ] && [ "$off" -gt 0 ] || return 1
  dd if="$f" bs=1 skip=$((off + 512)) count=256 2>/dev/null | tr '\0' '\n' | head -n 1 | cut -d' ' -f1
}

# ---- Host tools: busybox-static and cpio, from Debian.
need_pkgs=()
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed" ||
  need_pkgs+=(busybox-static)
command -v cpio >/dev/null || need_pkgs+=(cpio)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing Debian packages ${need_pkgs[*]}: run as root or install them"
  say "installing ${need_pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >&2 ||
    die "apt-get install ${need_pkgs[*]} failed (the Debian package mirror must be reachable)"
fi
"$BUSYBOX" --list-full >/dev/null 2>&1 || die "$BUSYBOX is not busybox-static"
busybox_version=$(dpkg-query -W -f='${Version}' busybox-static)

# ---- Kernel identity (cheap: no download, no extraction yet).
kernel_key=
deb_pkg=
if [ -z "$kernel" ]; then
  apt_resolve() {
    if [ -n "$deb_version" ]; then
      deb_pkg=linux-image-${deb_version%-amd64}-amd64
    else
      deb_pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1)
      [ -n "$deb_pkg" ] || return 1
    fi
    deb_info=$(apt-cache show --no-all-versions "$deb_pkg" 2>/dev/null) || return 1
    [ -n "$deb_info" ]
  }
  # apt-cache takes seconds where apt keeps no pkgcache.bin, so its answer is remembered for as
  # long as the package lists and the apt configuration stay the same.
  apt_state=$(
    echo "want ${deb_version:-default}"
    find /var/lib/apt/lists /etc/apt -type f -printf '%p %s %T@\n' 2>/dev/null | LC_ALL=C sort
  )
  memo="$out/debs/resolved-$(printf '%s\n' "$apt_state" | sha256sum | cut -c1-16)"
  if [ -f "$memo" ] && read -r deb_pkg deb_ver deb_sha <"$memo" && [ -n "$deb_ver" ]; then
    :
  else
    if ! apt_resolve; then
      # No package lists at all (a fresh machine): fetch them once.
      if [ "$(id -u)" = 0 ] && ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then
        say "apt knows no linux-image-amd64: running apt-get update"
        apt-get update -q >&2 || say "apt-get update failed (is the Debian package mirror reachable?)"
      fi
      if ! apt_resolve; then
        known=$(apt-cache pkgnames linux-image- 2>/dev/null | grep -E '^linux-image-[0-9.]+-[0-9]+-amd64$' |
          sed 's/^linux-image-//; s/-amd64$//' | sort -V | xargs)
        die "cannot resolve the kernel package ${deb_pkg:-of linux-image-amd64} with apt-cache" \
          "(known: ${known:-none}; run apt-get update; the Debian package mirror must be reachable)"
      fi
    fi
    deb_ver=$(printf '%s\n' "$deb_info" | sed -n 's/^Version: //p' | head -n 1)
    deb_sha=$(printf '%s\n' "$deb_info" | sed -n 's/^SHA256: //p' | head -n 1)
    [ -n "$deb_ver" ] || die "apt-cache show $deb_pkg: no Version"
    mkdir -p "$out/debs"
    find "$out/debs" -maxdepth 1 -name 'resolved-*' -mtime +7 -delete 2>/dev/null || true
    echo "$deb_pkg $deb_ver $deb_sha" >"$memo.$$" && mv -f "$memo.$$" "$memo"
  fi
  kernel_key="deb $deb_pkg $deb_ver $deb_sha"
else
  kernel=$(realpath "$kernel")
  [ -z "$modules_dir" ] || modules_dir=$(realpath "$modules_dir")
  # The module files are hashed below, once they are picked.
  kernel_key="file $(sha "$kernel")"
fi

# ---- Agent and the shared libraries it loads (host paths; the dynamic loader at its own path).
agent_libs=()
if ldd_out=$(ldd "$agent" 2>&1); then
  while read -r lib; do
    [ -n "$lib" ] && agent_libs+=("$lib")
  done < <(printf '%s\n' "$ldd_out" | awk '
    /=> not found/ { print "MISSING " $1; next }
    $2 == "=>" && $3 ~ /^\// { print $3; next }
    $1 ~ /^\// { print $1 }')
  for lib in "${agent_libs[@]}"; do
    case "$lib" in MISSING*) die "ldd $agent: ${lib#MISSING } not found" ;; esac
  done
else
  printf '%s\n' "$ldd_out" | grep -q "not a dynamic executable" || die "ldd $agent failed: $ldd_out"
fi

# ---- Module files for a custom kernel (a Debian kernel's are known by the package).
custom_release=
custom_mods=()  # "required|optional relpath-under-modules-dir"
if [ -n "$kernel" ]; then
  custom_release=$(bzimage_release "$kernel") || die "--kernel $kernel: not a bzImage (no HdrS header)"
  if [ -n "$modules_dir" ]; then
    [ "$(basename "$modules_dir")" = "$custom_release" ] ||
      say "warning: --modules-dir $modules_dir is not named after the kernel release $custom_release"
    for spec in "${REQUIRED_MODULES[@]/#/required:}" "${OPTIONAL_MODULES[@]/#/optional:}"; do
      need=${spec%%:*} rel=${spec#*:} found=
      for ext in .ko .ko.xz .ko.zst .ko.gz; do
        if [ -f "$modules_dir/kernel/$rel$ext" ]; then found=kernel/$rel$ext; break; fi
      done
      if [ -n "$found" ]; then
        custom_mods+=("$need $found")
      elif [ "$need" = required ] && ! grep -qs "kernel/$rel.ko" "$modules_dir/modules.builtin"; then
        say "warning: $rel is neither a module in $modules_dir nor listed in modules.builtin"
      fi
    done
  else
    say "no --modules-dir: the kernel must have virtio_net and virtio_pci built in"
  fi
  for m in "${custom_mods[@]}"; do kernel_key+=" ${m#* }=$(sha "$modules_dir/${m#* }")"; done
fi

# ---- Content hash of every input.
inputs=$(
  echo "kernel $kernel_key"
  # One sha256sum for all files; contents count, not where this script or the agent sit.
  mapfile -t sums < <(sha256sum "$agent" "$BUSYBOX" "$INIT_SRC" "$SELF" "${agent_libs[@]}" | cut -d' ' -f1)
  echo "agent ${sums[0]}"
  echo "busybox $busybox_version ${sums[1]}"
  echo "init ${sums[2]}"
  echo "build.sh ${sums[3]}"
  for i in "${!agent_libs[@]}"; do echo "lib ${agent_libs[$i]} ${sums[$((i + 4))]}"; done
)
hash=$(printf '%s\n' "$inputs" | sha256sum | cut -c1-16)
final="$out/tiny-$hash"
if [ -f "$final/initrd.img" ]; then
  say "cached: $final"
  echo "$final"
  exit 0
fi

# One builder at a time per cache; whoever waited finds the image built.
exec 9>"$out/.lock"
flock 9
if [ -f "$final/initrd.img" ]; then
  echo "$final"
  exit 0
fi

dl='' kx=''
work=$(mktemp -d "$out/.tmp-tiny-XXXXXX")
trap 'rm -rf "$work" ${dl:+"$dl"} ${kx:+"$kx"}' EXIT
mkdir "$work/image"

# ---- Kernel: vmlinuz and modules.
# A Debian kernel's vmlinuz and network modules are extracted once per package version (and
# module list) into CACHE_DIR/kernels/<package>_<version>-<list>/ (boot/ and lib/modules/<release>/
# as in the package).
if [ -z "$kernel" ]; then
  deb_file="$out/debs/${deb_pkg}_${deb_ver//:/%3a}_amd64.deb"
  list_hash=$(printf '%s\n' "${REQUIRED_MODULES[@]}" "${OPTIONAL_MODULES[@]}" | sha256sum | cut -c1-8)
  kdir="$out/kernels/${deb_pkg}_${deb_ver//:/%3a}-$list_hash"
  if [ ! -d "$kdir" ]; then
    if [ ! -f "$deb_file" ]; then
      say "downloading $deb_pkg $deb_ver with apt-get download"
      mkdir -p "$out/debs"
      dl=$(mktemp -d "$out/debs/.dl-XXXXXX")
      if ! (cd "$dl" && apt-get download -q -o APT::Sandbox::User=root "$deb_pkg=$deb_ver" >&2); then
        rm -rf "$dl"
        die "apt-get download $deb_pkg=$deb_ver failed: the Debian package mirror must be reachable" \
          "(or put the .deb at $deb_file)"
      fi
      got=$(find "$dl" -maxdepth 1 -name '*.deb' | head -n 1)
      [ -n "$got" ] || die "apt-get download $deb_pkg produced no .deb"
      if [ -n "$deb_sha" ] && [ "$(sha "$got")" != "$deb_sha" ]; then
        die "$got: sha256 does not match the apt index"
      fi
      mv -f "$got" "$deb_file"
      rm -rf "$dl"
      dl=''
    fi
    say "extracting vmlinuz and modules from $(basename "$deb_file")"
    mkdir -p "$out/kernels"
    kx=$(mktemp -d "$out/kernels/.x-XXXXXX")
    patterns=('./boot/vmlinuz-*')
    for rel in "${REQUIRED_MODULES[@]}" "${OPTIONAL_MODULES[@]}"; do
      patterns+=("./lib/modules/*/kernel/$rel.ko*")
    done
    # Only what the image needs: a full `dpkg-deb -x` writes ~400 MB and takes twice as long.
    if ! dpkg-deb --fsys-tarfile "$deb_file" | tar -x -C "$kx" --wildcards "${patterns[@]}"; then
      rm -rf "$kx"
      die "cannot extract $deb_file (delete it to download it again)"
    fi
    mv -T "$kx" "$kdir" 2>/dev/null || rm -rf "$kx"
    kx=''
  fi
  vmlinuz=$(find "$kdir/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n 1)
  [ -n "$vmlinuz" ] || die "$kdir: no boot/vmlinuz-*"
  release=${vmlinuz##*/vmlinuz-}
  mod_src="$kdir/lib/modules/$release"
  mod_list=()
  for spec in "${REQUIRED_MODULES[@]/#/required:}" "${OPTIONAL_MODULES[@]/#/optional:}"; do
    need=${spec%%:*} rel=${spec#*:} found=
    for ext in .ko .ko.xz .ko.zst .ko.gz; do
      if [ -f "$mod_src/kernel/$rel$ext" ]; then found=kernel/$rel$ext; break; fi
    done
    if [ -n "$found" ]; then
      mod_list+=("$need $found")
    elif [ "$need" = required ]; then
      die "$deb_pkg has no module kernel/$rel.ko (needed for the network)"
    fi
  done
else
  vmlinuz=$kernel
  release=$custom_release
  mod_src=$modules_dir
  mod_list=("${custom_mods[@]}")
fi
cp "$vmlinuz" "$work/vmlinuz"
echo "$release" >"$work/kernel-release"

# ---- Initramfs tree.
root="$work/image"
# Merged /usr: every program sits in /usr/bin; /bin, /sbin and /usr/sbin lead there.
mkdir -p "$root"/{usr/bin,lib,etc/kfleet,proc,sys,dev,tmp,run,root,var/lib/kfleet-agent}
ln -s usr/bin "$root/bin"
ln -s usr/bin "$root/sbin"
ln -s bin "$root/usr/sbin"
ln -s /run "$root/var/run"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
# All applet links in one go; they point where the host's busybox really is (/bin/busybox, or
# /usr/bin/busybox with a merged /usr), and both names lead to the one binary in the image.
"$BUSYBOX" --install -s "$root/usr/bin"
bb_target=$(readlink "$root/usr/bin/sh")
case "$bb_target" in
  /bin/busybox | /usr/bin/busybox) ;;
  *) die "busybox --install made links to $bb_target, expected /bin/busybox or /usr/bin/busybox" ;;
esac
rm -f "$root/usr/bin/busybox" "$root/usr/bin/init" "$root/usr/bin/linuxrc"  # links, not files
cp "$BUSYBOX" "$root/usr/bin/busybox"

# The agent (without debug info: it would multiply the initramfs), its libraries, the loader.
if command -v strip >/dev/null; then
  strip --strip-debug -o "$root/usr/bin/kfleet-agent" "$agent"
else
  cp "$agent" "$root/usr/bin/kfleet-agent"
fi
chmod 0755 "$root/usr/bin/kfleet-agent"
# At the paths ldd found them (e.g. /lib/x86_64-linux-gnu/, /lib64/ld-linux-x86-64.so.2).
[ ${#agent_libs[@]} -eq 0 ] || cp -L --parents "${agent_libs[@]}" "$root/"

# Modules, decompressed (the kernel loads plain .ko with insmod; signatures stay appended).
: >"$root/etc/kfleet/modules"
for m in "${mod_list[@]}"; do
  need=${m%% *} rel=${m#* }
  base=${rel%.ko*}
  dst="$root/lib/modules/$release/$base.ko"
  mkdir -p "$(dirname "$dst")"
  case "$rel" in
    *.ko) cp "$mod_src/$rel" "$dst" ;;
    *.ko.xz) xz -dc "$mod_src/$rel" >"$dst" ;;
    *.ko.zst) command -v zstd >/dev/null || die "$rel: zstd needed to decompress it (apt-get install zstd)"
      zstd -q -dc "$mod_src/$rel" >"$dst" ;;
    *.ko.gz) gzip -dc "$mod_src/$rel" >"$dst" ;;
  esac
  echo "$(basename "$base") $need lib/modules/$release/$base.ko" >>"$root/etc/kfleet/modules"
done
if [ ${#mod_list[@]} -gt 0 ]; then
  "$BUSYBOX" depmod -b "$root" "$release" >/dev/null 2>&1 || true  # for modprobe in the guest
fi

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
tty:x:5:
nogroup:x:65534:
EOF
cat >"$root/etc/hosts" <<'EOF'
127.0.0.1 localhost
::1 localhost
EOF
cat >"$root/etc/os-release" <<'EOF'
PRETTY_NAME="kfleet tiny (busybox initramfs)"
NAME="kfleet tiny"
ID=kfleet-tiny
EOF
printf '%s\n' "$inputs" >"$root/etc/kfleet/image-inputs"
install -m 0755 "$INIT_SRC" "$root/init"
# The kernel opens /dev/console for /init before devtmpfs is mounted (its built-in initramfs also
# has one; this is for kernels without it).
mknod -m 0600 "$root/dev/console" c 5 1 2>/dev/null || true

say "packing initramfs for kernel $release"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) |
  gzip -6 -n >"$work/initrd.img"
printf '%s\n' "$inputs" >"$work/inputs"
chmod 0755 "$work"
rm -rf "$root"
mv -T "$work" "$final" 2>/dev/null || [ -f "$final/initrd.img" ] || die "cannot create $final"
trap - EXIT
rm -rf "$work"
say "built $final ($(du -h "$final/initrd.img" | cut -f1) initramfs, kernel $release)"
echo "$final"
