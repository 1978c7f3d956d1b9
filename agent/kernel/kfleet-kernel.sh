#!/bin/bash
# kfleet-kernel: what kfleet-agent runs for the kernel_build and kernel_install steps. The agent
# carries this script inside its binary and writes it to its work directory; each phase runs as
# one process of the step, so its output is the step's log and cancel and timeout end it.
#
#   kfleet-kernel prepare   source and config (every option the fragments ask for must be in the
#                           final .config); writes the build identity and release
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

# The tree's Kconfig files that count on this machine: all but those of other architectures.
kconfig_files() {
  local arch
  case "$(uname -m)" in
    x86_64 | i?86) arch=x86 ;;
    aarch64) arch=arm64 ;;
    *) arch=$(uname -m) ;;
  esac
  find "$src" \( -path "$src/arch" -o -path "$src/tools" -o -path "$src/Documentation" \) -prune \
    -o -name 'Kconfig*' -type f -print
  [ ! -f "$src/arch/Kconfig" ] || printf '%s\n' "$src/arch/Kconfig"
  [ ! -d "$src/arch/$arch" ] || find "$src/arch/$arch" -name 'Kconfig*' -type f
}

# kconfig_why CONFIG NAME...: for each NAME (without CONFIG_), lines "NAME<tab>TEXT" saying what
# decides its value: its `config` entry's `depends on` and conditional prompts, the `if` blocks
# and menus around it, and the entries that `select` it; each symbol such a line names is shown
# with its value in CONFIG. A name no Kconfig file defines gets one line saying so.
kconfig_why() {
  local config=$1
  shift
  # Paths relative to the tree, for shorter lines.
  kconfig_files | LC_ALL=C sort | sed "s|^$src/||" | tr '\n' '\0' | (
    # shellcheck disable=SC2016 # an awk program
    cd "$src" && xargs -0 awk -v names="$*" -v cfg="$config" '
      function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
      # EXPR followed by the value in the final .config of each symbol it names.
      function valued(expr,   rest, sym, out, seen) {
        out = ""; rest = expr
        while (match(rest, /[A-Za-z0-9_]+/)) {
          sym = substr(rest, RSTART, RLENGTH)
          rest = substr(rest, RSTART + RLENGTH)
          if (sym !~ /^[A-Z0-9_]+$/ || sym !~ /[A-Z]/ || (sym in seen)) continue
          seen[sym] = 1
          out = out (out == "" ? "" : " ") sym "=" ((sym in value) ? value[sym] : "n")
        }
        return out == "" ? expr : expr "   [" out "]"
      }
      function say(name, text) {
        if (++said[name] <= 12) print name "\t" text
      }
      function at() { return FILENAME ":" FNR ": " }
      BEGIN {
        n = split(names, list, " ")
        for (i = 1; i <= n; i++) wanted[list[i]] = 1
        while ((getline line < cfg) > 0) {
          if (line ~ /^CONFIG_[A-Za-z0-9_]+=/) {
            eq = index(line, "=")
            value[substr(line, 8, eq - 8)] = substr(line, eq + 1)
          }
        }
        close(cfg)
      }
      FNR == 1 { nif = 0; nmenu = 0; entry = ""; owner = ""; menuhead = 0 }
      {
        line = $0
        word = trim(line); sub(/[ \t].*/, "", word)
      }
      # Blocks: `if` and `menu` start a line (help text is indented).
      /^if[ \t]/ {
        ifs[++nif] = at() "inside if " valued(trim(substr(line, 3)))
        entry = ""; owner = ""; menuhead = 0
        next
      }
      /^endif/ { if (nif > 0) nif--; entry = ""; owner = ""; next }
      /^menu[ \t]/ { menus[++nmenu] = ""; menuhead = 1; entry = ""; owner = ""; next }
      /^endmenu/ { if (nmenu > 0) nmenu--; menuhead = 0; entry = ""; owner = ""; next }
      word == "config" || word == "menuconfig" {
        split(trim(line), f, /[ \t]+/)
        owner = f[2]; entry = ""; menuhead = 0
        if (owner in wanted) {
          entry = owner; found[owner] = 1
          say(owner, at() trim(line))
          for (i = 1; i <= nif; i++) say(owner, ifs[i])
          for (i = 1; i <= nmenu; i++) if (menus[i] != "") say(owner, menus[i])
        }
        next
      }
      word == "choice" || word == "endchoice" || word == "comment" || word == "source" ||
      word == "help" || word == "---help---" {
        entry = ""; owner = ""; menuhead = 0
        next
      }
      menuhead && (word == "depends" || word == "visible") {
        menus[nmenu] = at() "in a menu that " valued(trim(line))
        next
      }
      entry != "" && word == "depends" { say(entry, at() valued(trim(line))) }
      entry != "" && match(line, /"[ \t]+if[ \t]/) {
        say(entry, at() "its prompt only if " valued(trim(substr(line, RSTART + RLENGTH))))
      }
      owner != "" && word == "select" {
        split(trim(line), f, /[ \t]+/)
        if ((f[2] in wanted) && ++selects[f[2]] <= 4) {
          cond = trim(substr(trim(line), length(f[1]) + length(f[2]) + 2))
          if (cond != "") cond = " " valued(cond)
          selecter[f[2], selects[f[2]]] = at() "selected by " valued(owner) cond
        }
      }
      # After the entry itself, those that select it.
      END {
        for (i = 1; i <= n; i++) {
          for (k = 1; k <= selects[list[i]] && k <= 4; k++) say(list[i], selecter[list[i], k])
          if (selects[list[i]] > 4) say(list[i], "... selected by " (selects[list[i]] - 4) " more")
          if (!(list[i] in found)) {
            print list[i] "\tno Kconfig file of the tree defines it " \
              "(misspelt, or not in this kernel version)"
          }
        }
      }'
  )
}

# check_fragments CONFIG FRAGMENT...: every option the fragments ask for (the last fragment to
# ask wins, as in merge_config.sh) must have that value in the final CONFIG, where
# "# CONFIG_X is not set" and an absent option are both n. olddefconfig drops what it cannot
# have without a word; this dies naming each such option, the value asked and got, and what
# decides it in Kconfig.
check_fragments() {
  local config=$1
  shift
  local mismatches
  mismatches=$(awk -v cfg="$config" '
    function val(line, name) {
      sub(/[ \t\r]+$/, "", line)
      if (line ~ /^# CONFIG_[A-Za-z0-9_]+ is not set$/) {
        split(line, f, " "); name = f[2]; v = "n"
      } else if (line ~ /^CONFIG_[A-Za-z0-9_]+=/) {
        name = substr(line, 1, index(line, "=") - 1); v = substr(line, index(line, "=") + 1)
      } else {
        return ""
      }
      return name
    }
    FILENAME == cfg { name = val($0); if (name != "") got[name] = v; next }
    {
      name = val($0)
      if (name == "") next
      if (!(name in asked)) order[++n] = name
      asked[name] = v; from[name] = FILENAME
    }
    END {
      for (i = 1; i <= n; i++) {
        name = order[i]
        g = (name in got) ? got[name] : "n"
        if (asked[name] == "n" && g == "n") continue
        if (asked[name] == g) continue
        shown = (name in got) ? (g == "n" ? "n (is not set)" : g) : "n (not in .config)"
        print name "\t" asked[name] "\t" shown "\t" from[name]
      }
    }' "$@" "$config")
  [ -n "$mismatches" ] || {
    say "config: every option the fragments ask for is in .config"
    return 0
  }
  local count names why report name asked got from line shown=0
  count=$(printf '%s\n' "$mismatches" | wc -l)
  # At most 5 explained: the reason has to fit in the step's detail.
  names=$(printf '%s\n' "$mismatches" | head -5 | cut -f1 | sed 's/^CONFIG_//' | tr '\n' ' ')
  # shellcheck disable=SC2086 # one word per name
  why=$(kconfig_why "$config" $names)
  if [ "$count" = 1 ]; then
    report="kernel.config: 1 option a fragment asks for has another value in the final .config"
  else
    report="kernel.config: $count options the fragments ask for have another value in the"
    report+=" final .config"
  fi
  report+=" (olddefconfig drops, without a word, an option whose dependencies are not met):"
  report+=" add its dependencies to a fragment, or drop it"
  while IFS=$'\t' read -r name asked got from; do
    shown=$((shown + 1))
    if [ "$shown" -gt 5 ]; then
      report+=$'\n'"  and $((count - 5)) more: "
      report+=$(printf '%s\n' "$mismatches" | tail -n +6 | cut -f1 | head -20 | paste -sd ' ' -)
      break
    fi
    report+=$'\n'"  $name: asked $asked (${from##*/}), got $got"
    while IFS= read -r line; do
      report+=$'\n'"    $line"
    done < <(printf '%s\n' "$why" | awk -F'\t' -v n="${name#CONFIG_}" '$1 == n { print $2 }')
  done <<<"$mismatches"
  die "$report"
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
  [ ${#frags[@]} -eq 0 ] || check_fragments "$out/.config" "${frags[@]}"

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
