#!/bin/bash
# Prints the package mirrors this machine's apt uses, for image recipes that fetch Debian packages
# themselves (debian/build.sh runs mmdebstrap): a machine with its own mirror or proxy needs no
# change to the recipes.
#
# Usage: host-mirrors.sh [--suite SUITE] [--mirror URL] [--security-mirror URL|none]
#
# Prints KEY=VALUE lines on stdout, values unquoted (read them with `IFS== read -r key value`):
#   MIRROR=URL                the main archive: the first `deb` source for SUITE with component main
#   MIRROR_FROM=FILE          where it was found (or --mirror, KFLEET_MIRROR)
#   MIRROR_SIGNED_BY=PATH     its signed-by keyring, when that is one file (else not printed)
#   SECURITY_MIRROR=URL       the security archive: the first `deb` source for SUITE-security
#                             (`none` when --security-mirror none or KFLEET_SECURITY_MIRROR=none)
#   SECURITY_MIRROR_FROM=FILE
#   SECURITY_MIRROR_SIGNED_BY=PATH
#   APTOPT=OPTION             zero or more: apt's proxy settings as `apt-config dump` shows them
#                             (Acquire::http::Proxy "URL"; per-host ones too), one mmdebstrap
#                             --aptopt each
#
# Where a mirror comes from, first found: --mirror / --security-mirror, the environment
# (KFLEET_MIRROR, KFLEET_SECURITY_MIRROR), apt's sources: /etc/apt/sources.list and
# /etc/apt/sources.list.d/*.list (one-line style) and *.sources (deb822), in the order apt reads
# them. SUITE defaults to VERSION_CODENAME of /etc/os-release. Exits 1 with a message naming the
# file to fix when apt has no source for SUITE (or SUITE-security).
#
# KFLEET_APT_ROOT=DIR reads DIR/etc/apt/... and DIR/etc/os-release instead (tests), and runs
# apt-config with Dir "DIR/".
set -euo pipefail
export LC_ALL=C

die() { echo "host-mirrors.sh: $*" >&2; exit 1; }

suite='' mirror=${KFLEET_MIRROR:-} mirror_from=${KFLEET_MIRROR:+KFLEET_MIRROR}
security=${KFLEET_SECURITY_MIRROR:-} security_from=${KFLEET_SECURITY_MIRROR:+KFLEET_SECURITY_MIRROR}
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) suite=${2:?--suite needs a suite, e.g. bookworm}; shift 2 ;;
    --mirror) mirror=${2:?--mirror needs a URL}; mirror_from=--mirror; shift 2 ;;
    --security-mirror)
      security=${2:?--security-mirror needs a URL (or none)}; security_from=--security-mirror
      shift 2 ;;
    -h | --help) sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

root=${KFLEET_APT_ROOT:-}
root=${root%/}
etc_apt="$root/etc/apt"

if [ -z "$suite" ]; then
  # shellcheck disable=SC1091
  suite=$( (. "$root/etc/os-release" 2>/dev/null && echo "${VERSION_CODENAME:-}") || true)
  [ -n "$suite" ] || die "no VERSION_CODENAME in $root/etc/os-release: pass --suite SUITE"
fi

# One line per (source, suite): TYPE URI SUITE COMPONENTS(comma-separated) SIGNED_BY FILE,
# tab-separated, in the order apt reads the files. SIGNED_BY is "-" when not given.
list_sources() {
  local files=() f
  [ -f "$etc_apt/sources.list" ] && files+=("$etc_apt/sources.list")
  # apt reads the directory in name order, both styles mixed; other names (*.disabled) are skipped.
  for f in "$etc_apt"/sources.list.d/*; do
    case "$f" in *.list | *.sources) [ -f "$f" ] && files+=("$f") ;; esac
  done
  [ ${#files[@]} -gt 0 ] || return 0
  awk '
    function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
    function emit(type, uri, suite, comps, signed, file) {
      # A keyring file; not a list, a fingerprint or an embedded key.
      if (signed !~ /^\/[^ \t\n,]+$/) signed = "-"
      printf "%s\t%s\t%s\t%s\t%s\t%s\n", type, uri, suite, comps, signed, file
    }
    # One-line style: deb [opt=v opt2=v2] URI SUITE [COMPONENT...]
    function one_line(line,    n, w, opts, i, k, signed, comps) {
      sub(/#.*/, "", line)
      line = trim(line)
      if (line == "") return
      signed = "-"
      if (match(line, /^[a-z-]+[ \t]+\[[^]]*\]/)) {
        opts = substr(line, RSTART, RLENGTH)
        line = substr(line, 1, index(line, "[") - 1) substr(line, RSTART + RLENGTH)
        sub(/^[a-z-]+[ \t]+\[/, "", opts); sub(/\]$/, "", opts)
        n = split(opts, w, /[ \t]+/)
        for (i = 1; i <= n; i++) {
          k = tolower(w[i])
          if (k ~ /^signed-by=/) signed = substr(w[i], 11)
        }
      }
      n = split(line, w, /[ \t]+/)
      if (n < 3) return
      comps = ""
      for (i = 4; i <= n; i++) comps = comps (comps == "" ? "" : ",") w[i]
      emit(w[1], w[2], w[3], comps, signed, FILENAME)
    }
    # deb822 style: paragraphs of "Field: value" lines, continuation lines indented.
    function flush(    nt, nu, ns, t, u, s, ti, ui, si, comps, signed) {
      if (fields && tolower(trim(f["enabled"])) != "no") {
        nt = split(trim(f["types"]), t, /[ \t\n]+/)
        nu = split(trim(f["uris"]), u, /[ \t\n]+/)
        ns = split(trim(f["suites"]), s, /[ \t\n]+/)
        comps = trim(f["components"]); gsub(/[ \t\n]+/, ",", comps)
        signed = trim(f["signed-by"])
        for (ti = 1; ti <= nt; ti++)
          for (ui = 1; ui <= nu; ui++)
            for (si = 1; si <= ns; si++) emit(t[ti], u[ui], s[si], comps, signed, file)
      }
      split("", f)
      field = ""
      fields = 0
    }
    FNR == 1 { if (deb822) flush(); deb822 = FILENAME ~ /\.sources$/ }
    !deb822 { one_line($0); next }
    /^#/ { next }
    /^[ \t]*$/ { flush(); next }
    /^[ \t]/ { if (field != "") f[field] = f[field] "\n" trim($0); next }
    {
      i = index($0, ":")
      if (i == 0) next
      field = tolower(trim(substr($0, 1, i - 1)))
      f[field] = trim(substr($0, i + 1))
      fields++
      file = FILENAME
    }
    END { if (deb822) flush() }
  ' "${files[@]}"
}

# The first `deb` source for suite $1 with component main: "URI<TAB>SIGNED_BY<TAB>FILE".
pick() {
  printf '%s\n' "$sources" | awk -F'\t' -v suite="$1" '
    $1 == "deb" && $3 == suite && $2 !~ /^cdrom:/ && ("," $4 ",") ~ /,main,/ {
      uri = $2; sub(/\/+$/, "", uri); print uri "\t" $5 "\t" $6; exit
    }'
}

sources=
if [ -z "$mirror" ] || [ -z "$security" ]; then
  sources=$(list_sources)
fi
# The Debian 12 default file, for the messages.
fix_file="$etc_apt/sources.list.d/debian.sources"
fix_hint() {  # SUITES
  echo "add it to $fix_file (Types: deb / URIs: YOUR-MIRROR / Suites: $1 / Components: main)" \
    "or to $etc_apt/sources.list (deb YOUR-MIRROR ${1%% *} main)"
}
known_suites() {
  local s
  s=$(printf '%s\n' "$sources" | awk -F'\t' '$1 == "deb" { print $3 }' | LC_ALL=C sort -u | xargs)
  echo "${s:-none}"
}

mirror_signed=-
if [ -z "$mirror" ]; then
  found=$(pick "$suite")
  [ -n "$found" ] || die "apt has no source for $suite main in $etc_apt/sources.list or" \
    "$etc_apt/sources.list.d/*.list, *.sources (suites found: $(known_suites)):" \
    "$(fix_hint "$suite $suite-updates"); or pass --mirror URL (or set KFLEET_MIRROR)"
  IFS=$'\t' read -r mirror mirror_signed mirror_from <<<"$found"
fi
security_signed=-
if [ -z "$security" ]; then
  found=$(pick "$suite-security")
  [ -n "$found" ] || die "apt has no source for $suite-security main in $etc_apt/sources.list or" \
    "$etc_apt/sources.list.d/*.list, *.sources (suites found: $(known_suites)):" \
    "$(fix_hint "$suite-security"); or pass --security-mirror URL|none" \
    "(or set KFLEET_SECURITY_MIRROR)"
  IFS=$'\t' read -r security security_signed security_from <<<"$found"
fi

echo "MIRROR=${mirror%/}"
echo "MIRROR_FROM=$mirror_from"
[ "$mirror_signed" = - ] || echo "MIRROR_SIGNED_BY=$mirror_signed"
echo "SECURITY_MIRROR=${security%/}"
echo "SECURITY_MIRROR_FROM=$security_from"
[ "$security_signed" = - ] || echo "SECURITY_MIRROR_SIGNED_BY=$security_signed"

# Proxies: what apt itself would use (apt.conf, apt.conf.d). http_proxy and friends in the
# environment reach apt under mmdebstrap without help.
if command -v apt-config >/dev/null; then
  if [ -n "$root" ]; then
    conf=$(mktemp)
    trap 'rm -f "$conf"' EXIT
    printf 'Dir "%s/";\n' "$root" >"$conf"
    dump=$(APT_CONFIG=$conf apt-config dump 2>/dev/null) || die "apt-config dump failed"
  else
    dump=$(apt-config dump 2>/dev/null) || die "apt-config dump failed"
  fi
  proxy='^(Acquire::(http|https|ftp)::Proxy(-Auto-Detect)?(::[^ ]+)? ".*");$'
  printf '%s\n' "$dump" | sed -n -E "s/$proxy/APTOPT=\\1/p"
fi
