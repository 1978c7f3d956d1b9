#!/bin/bash
# kfleet-kernel: what kfleet-agent runs for the kernel_build and kernel_install steps. The agent
# carries this script inside its binary and writes it to its work directory; each phase runs as
# one process of the step, so its output is the step's log and cancel and timeout end it.
#
#   kfleet-kernel prepare   source and config; writes the build identity and release
#   kfleet-kernel make      builds and packs the artifacts (vmlinuz, modules.tar.gz, config, ...)
#   kfleet-kernel kselftest builds and installs kselftest targets of the tree, packed as one archive
#   kfleet-kernel install   installs a downloaded build: modules, /boot, initramfs, grub one-shot
#
# Environment (set by the agent):
#   KF_WORK        the agent's kernel work directory (git cache, work trees, build dirs, artifacts)
#   KF_RESULT      file this script writes KEY=VALUE lines to, for the agent
#   KF_ERROR       file this script writes a one-line reason to when it fails (for a kselftest
#                  target that does not build, followed by the last lines of make's output)
#   KF_STATE       file `prepare` leaves for `make` (paths, identity, release)
#   prepare/make:  KF_TREE, KF_REF, KF_CONFIG, KF_LOCALVERSION, KF_JOBS, KF_GUEST_FRAGMENT
#   kselftest:     KF_KSELFTEST_TARGETS (sorted, space separated), KF_KSELFTEST_ARCHIVE (its file
#                  name), KF_JOBS; after `prepare`, with or without `make`
#   install:       KF_DIR (downloaded artifacts), KF_RELEASE
set -Eeuo pipefail
export LC_ALL=C

say() { printf 'kfleet-kernel: %s\n' "$*"; }
die() {
  printf 'kfleet-kernel: error: %s\n' "$*" >&2
  [ -z "${KF_ERROR:-}" ] || printf '%s\n' "$*" >"$KF_ERROR"
  exit 1
}
# die_log REASON LOG: dies with REASON followed by the last lines of LOG.
die_log() {
  local tail
  tail=$(tail -n 15 "$2" | sed 's/^/  /')
  die "$1; the last lines of its output:
$tail"
}
result() { printf '%s=%s\n' "$1" "$2" >>"$KF_RESULT"; }
key_of() { printf '%s' "$1" | sha256sum | cut -c1-16; }
is_url() {
  case "$1" in
    *://* | [a-zA-Z0-9_.-]*@*:*) return 0 ;;
  esac
  return 1
}

# The compiler: gcc, through ccache when it is installed (a rebuild then takes minutes less).
CC_CMD=gcc
if command -v ccache >/dev/null 2>&1; then CC_CMD="ccache gcc"; fi
make_k() { make -C "$src" O="$out" CC="$CC_CMD" KBUILD_BUILD_USER=kfleet "$@"; }

load() {
  # shellcheck disable=SC1090,SC1091 # written by `prepare`
  . "${KF_STATE:?}"
}

prepare() {
  : "${KF_TREE:?KF_TREE is not set}"
  mkdir -p "$KF_WORK"
  local tree=$KF_TREE ref=${KF_REF:-} source_key source_desc commit
  if is_url "$tree" || [ -n "$ref" ]; then
    command -v git >/dev/null 2>&1 || die "git is not installed on the builder (apt-get install git)"
    if ! is_url "$tree"; then
      [ -d "$tree" ] || die "kernel.tree $tree: no such directory on the builder"
      git -C "$tree" rev-parse --git-dir >/dev/null 2>&1 ||
        die "kernel.ref $ref needs a git tree, and $tree is not one (drop the ref to build the tree as it is)"
      tree=$(realpath "$tree")
    fi
    # One bare clone per source, fetched when the ref is not a commit it has; one work tree per
    # commit, so two builds never share a checkout.
    local cache
    cache="$KF_WORK/git/$(key_of "$tree").git"
    if [ ! -d "$cache" ]; then
      say "cloning $tree (kept in $cache)"
      rm -rf "$cache.tmp"
      git clone --bare --quiet "$tree" "$cache.tmp" || die "git clone $tree failed"
      mv "$cache.tmp" "$cache"
    fi
    ref=${ref:-HEAD}
    if ! [[ $ref =~ ^[0-9a-f]{40}$ ]] || ! git -C "$cache" cat-file -e "$ref^{commit}" 2>/dev/null; then
      say "fetching $tree"
      git -C "$cache" fetch --quiet --prune --tags "$tree" '+refs/heads/*:refs/heads/*' ||
        die "git fetch $tree failed"
    fi
    commit=$(git -C "$cache" rev-parse --verify --quiet "$ref^{commit}") ||
      die "kernel.ref $ref is not a branch, tag or commit of $tree"
    src="$KF_WORK/src/${commit:0:16}"
    if [ ! -f "$src/Makefile" ]; then
      rm -rf "$src"
      git -C "$cache" worktree prune
      git -C "$cache" worktree add --quiet --detach "$src" "$commit" || die "git worktree add failed"
    fi
    source_key="git $commit"
    source_desc="$tree at ${commit:0:12}"
    out="$KF_WORK/out/$(key_of "$tree")"
  else
    [ -d "$tree" ] || die "kernel.tree $tree: no such directory on the builder"
    [ -f "$tree/Makefile" ] && [ -d "$tree/arch" ] && [ -d "$tree/scripts/kconfig" ] ||
      die "kernel.tree $tree is not a kernel source tree (no Makefile, arch/ and scripts/kconfig/)"
    src=$(realpath "$tree")
    if [ -f "$src/.config" ] || [ -d "$src/include/config" ]; then
      die "kernel.tree $src was configured or built in place; kfleet builds out of tree (make O=...) and needs a clean tree: run 'make mrproper' in it"
    fi
    if git -C "$src" rev-parse --show-toplevel 2>/dev/null | grep -qx "$src" &&
      [ -z "$(git -C "$src" status --porcelain --untracked-files=normal 2>/dev/null | head -1)" ]; then
      commit=$(git -C "$src" rev-parse HEAD)
      source_key="git $commit"
      source_desc="$src at ${commit:0:12}"
    else
      say "hashing the content of $src"
      local h
      h=$(cd "$src" && find . -path ./.git -prune -o -type f -print0 | sort -z |
        xargs -0 sha256sum | sha256sum | cut -c1-64)
      source_key="tree $h"
      source_desc="$src (content ${h:0:12})"
    fi
    out="$KF_WORK/out/$(key_of "$src")"
  fi
  mkdir -p "$out"

  # Config: BASE[+FRAGMENT...]. BASE is a make target (defconfig, tinyconfig, ...) or a file;
  # a FRAGMENT is a file, kfleet-guest (kfleet's guest fragment), or a NAME.config of the tree.
  local spec=${KF_CONFIG:-tinyconfig+kfleet-guest} base
  local -a parts frags=()
  IFS=+ read -ra parts <<<"$spec"
  base=${parts[0]}
  say "config: $spec"
  if [ -f "$base" ]; then
    cp "$base" "$out/.config"
  elif [[ $base =~ ^[a-z0-9_]*config$ ]]; then
    make_k -s "$base" || die "make $base failed"
  else
    die "kernel.config: base \"$base\" is neither a file on the builder nor a config target (defconfig, tinyconfig, allnoconfig, ...)"
  fi
  local f
  for f in "${parts[@]:1}"; do
    if [ "$f" = kfleet-guest ]; then
      frags+=("$KF_GUEST_FRAGMENT")
    elif [ -f "$f" ]; then
      frags+=("$(realpath "$f")")
    elif [ -f "$src/kernel/configs/$f" ]; then
      frags+=("$src/kernel/configs/$f")
    elif [ -f "$src/arch/x86/configs/$f" ]; then
      frags+=("$src/arch/x86/configs/$f")
    else
      die "kernel.config: fragment \"$f\" is not a file on the builder, kfleet-guest, or a fragment of the tree (kernel/configs/, arch/x86/configs/)"
    fi
  done
  if [ ${#frags[@]} -gt 0 ]; then
    (cd "$out" && "$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${frags[@]}" |
      grep -v '^#' | grep -E 'Value|redefined|not in final' || true)
  fi
  if [ -n "${KF_LOCALVERSION:-}" ]; then
    "$src/scripts/config" --file "$out/.config" --set-str LOCALVERSION "$KF_LOCALVERSION"
  fi
  make_k -s olddefconfig || die "make olddefconfig failed"

  local cc_version identity
  cc_version=$(gcc --version | head -1)
  identity=$( {
    printf 'source %s\ncompiler %s\narch %s\n' "$source_key" "$cc_version" "$(uname -m)"
    grep -v -e '^#' -e '^$' "$out/.config"
  } | sha256sum | cut -c1-64)
  # The release is known for sure only after make (make kernelrelease before it reads what the
  # last build of this directory left).
  say "source: $source_desc"
  say "build identity $identity"
  {
    printf 'src=%q\nout=%q\nidentity=%q\n' "$src" "$out" "$identity"
  } >"${KF_STATE:?}"
  result identity "$identity"
  result source "$source_desc"
}

build() {
  load
  local jobs=${KF_JOBS:-0}
  [ "$jobs" -gt 0 ] || jobs=$(nproc)
  local mark="kf-${identity:0:16}"
  say "make -j$jobs (CC=$CC_CMD) in $out"
  local t0=$SECONDS
  # KBUILD_BUILD_HOST puts the identity in /proc/version, where the controller checks it.
  make_k -j"$jobs" KBUILD_BUILD_HOST="$mark" || die "make failed (see the log above)"
  say "make took $((SECONDS - t0)) s"
  local art="$KF_WORK/artifacts/$identity"
  rm -rf "$art"
  mkdir -p "$art"
  # The release this build has (the build directory's record of it, which modules_install uses).
  local release
  release=$(cat "$out/include/config/kernel.release")
  say "release $release"
  result release "$release"
  local image
  image=$(make_k -s image_name)
  cp "$out/$image" "$art/vmlinuz"
  cp "$out/.config" "$art/config"
  cp "$out/System.map" "$art/System.map"
  printf '%s\n' "$release" >"$art/kernel-release"
  if grep -q '^CONFIG_MODULES=y' "$out/.config"; then
    local stage="$KF_WORK/stage"
    rm -rf "$stage"
    make_k -s INSTALL_MOD_PATH="$stage" KBUILD_BUILD_HOST="$mark" modules_install ||
      die "make modules_install failed"
    [ -d "$stage/lib/modules/$release" ] ||
      die "make modules_install made no lib/modules/$release (it made: $(ls "$stage/lib/modules" 2>&1 | tr '\n' ' '))"
    rm -f "$stage/lib/modules/$release/build" "$stage/lib/modules/$release/source"
    tar -C "$stage" --owner=0 --group=0 --numeric-owner -czf "$art/modules.tar.gz" "lib/modules/$release"
    rm -rf "$stage"
  fi
  result artifacts "$art"
  result build_s "$((SECONDS - t0))"
  ls -l "$art"
}

# Kselftests of the tree, built against the kernel's uapi headers (make headers_install into the
# build directory, where the selftests Makefile looks with O=). Their objects are kept per build
# identity, so that another target set of the same build compiles only what it adds. Each target
# is built on its own, so a failure names it; `install` then writes run_kselftest.sh and
# kselftest-list.txt for all of them, and the installed directory is packed as KF_KSELFTEST_ARCHIVE
# (run_kselftest.sh at its top).
kselftest() {
  load
  : "${KF_KSELFTEST_TARGETS:?}" "${KF_KSELFTEST_ARCHIVE:?}"
  local jobs=${KF_JOBS:-0}
  [ "$jobs" -gt 0 ] || jobs=$(nproc)
  local sel="$src/tools/testing/selftests" t rc
  local -a targets
  read -ra targets <<<"$KF_KSELFTEST_TARGETS"
  [ -f "$sel/Makefile" ] || die "kernel tree $src has no tools/testing/selftests/Makefile: it has no kselftests to build"
  for t in "${targets[@]}"; do
    [ -f "$sel/$t/Makefile" ] ||
      die "kselftest target \"$t\" is not in $src (no tools/testing/selftests/$t/Makefile)"
  done
  command -v rsync >/dev/null 2>&1 ||
    die "rsync is not installed on the builder (apt-get install rsync): the kselftest install uses it"
  local base="$KF_WORK/kselftest/$identity"
  local inst="$base/${KF_KSELFTEST_ARCHIVE%.tar.gz}" log="$base/make.log"
  mkdir -p "$base"
  rm -rf "$inst"
  ks_make() {
    make --no-print-directory -C "$sel" O="$out" BUILD="$base/build" -j"$jobs" FORCE_TARGETS=1 "$@"
  }

  local t0=$SECONDS
  say "kernel headers for the kselftests: make headers_install in $out"
  make_k -s headers_install || die "make headers_install failed (the kselftests build against the kernel's uapi headers)"
  for t in "${targets[@]}"; do
    say "kselftest $t: make -j$jobs"
    rc=0
    ks_make TARGETS="$t" 2>&1 | tee "$log" || rc=$?
    [ "$rc" = 0 ] || die_log "kselftest target $t failed to build (make exited $rc)" "$log"
  done
  say "installing kselftests ${targets[*]} into $inst"
  rc=0
  ks_make TARGETS="${targets[*]}" INSTALL_PATH="$inst" install 2>&1 | tee "$log" || rc=$?
  [ "$rc" = 0 ] || die_log "kselftest install of ${targets[*]} failed (make exited $rc)" "$log"
  [ -f "$inst/run_kselftest.sh" ] && [ -s "$inst/kselftest-list.txt" ] ||
    die "the kselftest install made no run_kselftest.sh or an empty kselftest-list.txt in $inst"
  for t in "${targets[@]}"; do
    grep -q "^$t:" "$inst/kselftest-list.txt" ||
      die_log "kselftest target $t installed no tests (it is not in kselftest-list.txt)" "$log"
  done
  # Owner root, numeric, gzip: what busybox tar -xzf unpacks on a tiny guest.
  tar -C "$inst" --owner=0 --group=0 --numeric-owner -czf "$base/$KF_KSELFTEST_ARCHIVE.tmp" .
  mv "$base/$KF_KSELFTEST_ARCHIVE.tmp" "$base/$KF_KSELFTEST_ARCHIVE"
  say "kselftests ${targets[*]} built in $((SECONDS - t0)) s: $(wc -l <"$inst/kselftest-list.txt") tests"
  result kselftest "$base/$KF_KSELFTEST_ARCHIVE"
  result kselftest_s "$((SECONDS - t0))"
}

install_kernel() {
  : "${KF_DIR:?}" "${KF_RELEASE:?}"
  local release=$KF_RELEASE
  [ "$(id -u)" = 0 ] || die "installing a kernel needs root (the agent runs as $(id -un))"
  if [ -f "$KF_DIR/modules.tar.gz" ]; then
    say "modules into /lib/modules/$release"
    rm -rf "/lib/modules/$release"
    tar -xzf "$KF_DIR/modules.tar.gz" -C /
    depmod -a "$release" 2>/dev/null || true
  fi
  say "kernel into /boot/vmlinuz-$release"
  install -m 0644 "$KF_DIR/vmlinuz" "/boot/vmlinuz-$release"
  [ ! -f "$KF_DIR/config" ] || install -m 0644 "$KF_DIR/config" "/boot/config-$release"
  [ ! -f "$KF_DIR/System.map" ] || install -m 0644 "$KF_DIR/System.map" "/boot/System.map-$release"
  if command -v update-initramfs >/dev/null 2>&1; then
    say "initramfs: update-initramfs -c -k $release"
    rm -f "/boot/initrd.img-$release"
    update-initramfs -c -k "$release" || die "update-initramfs failed"
  fi
  if ! command -v grub-reboot >/dev/null 2>&1 || [ ! -f /boot/grub/grub.cfg ]; then
    die "no grub on this host (no grub-reboot or /boot/grub/grub.cfg): kfleet installs kernels as a one-shot grub entry"
  fi
  say "boot entries: update-grub"
  update-grub 2>&1 | sed 's/^/  /'
  local running new
  # Entries are gnulinux-<release>-advanced-<root uuid> (GRUB_DISABLE_SUBMENU=y).
  entry_of() {
    grep -oF "menuentry_id_option 'gnulinux-$1-advanced-" /boot/grub/grub.cfg >/dev/null || return 0
    grep -o "menuentry_id_option 'gnulinux-$1-advanced-[^']*'" /boot/grub/grub.cfg | head -1 |
      cut -d"'" -f2
  }
  running=$(entry_of "$(uname -r)")
  new=$(entry_of "$release")
  [ -n "$new" ] || die "update-grub made no entry for $release"
  # GRUB_DEFAULT=saved: the default stays the kernel that runs now, so a power-cycle after a
  # kernel that does not boot comes back on it.
  if ! grub-editenv list | grep -q '^saved_entry=' && [ -n "$running" ]; then
    grub-set-default "$running"
  fi
  grub-reboot "$new"
  say "one-shot boot entry $new (grub-reboot); default: $(grub-editenv list | grep '^saved_entry=' | cut -d= -f2-)"
  result entry "$new"
}

# Whatever fails without its own message is named by phase and line.
PHASE=${1:-}
# shellcheck disable=SC2154 # rc is assigned in the trap itself
trap 'rc=$?; die "kfleet-kernel $PHASE failed at line $LINENO (status $rc)"' ERR

case "${1:-}" in
  prepare) prepare ;;
  make) build ;;
  kselftest) kselftest ;;
  install) install_kernel ;;
  *) die "usage: kfleet-kernel prepare|make|kselftest|install" ;;
esac
