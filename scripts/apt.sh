# kfleet_apt_install PKG...: installs those of the Debian packages that are missing (needs root
# when any is). Sourced, not run.

kfleet_apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  printf '\033[1m==> installing %s Debian packages: %s\033[0m\n' "${#missing[@]}" "${missing[*]}" >&2
  if [ "$(id -u)" != 0 ]; then
    echo "kfleet: installing ${missing[*]} needs root: run this as root (or with sudo)" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || { echo "kfleet: apt-get update failed" >&2; return 1; }
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
    { echo "kfleet: apt-get install failed for: ${missing[*]}" >&2; return 1; }
}
