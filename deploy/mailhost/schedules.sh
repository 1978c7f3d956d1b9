#!/bin/sh
# Adds the kfleet schedules of a mail host: one mbsync channel each, run again N after the previous
# run ended (as systemd's OnUnitInactiveSec), under a memory limit. See deploy/mailhost/README.md.
#
#   deploy/mailhost/schedules.sh [HOST]      # HOST: the agent's name (default: mail)
#
# kctl finds its controller as usual: --config/KFLEET_CONFIG, ~/.config/kfleet/kctl.yaml,
# KFLEET_CONTROLLER. MBSYNCRC, EVERY and JITTER override the defaults below.
set -eu

host=${1:-mail}
conf=${MBSYNCRC:-/etc/kfleet/mbsyncrc}
every=${EVERY:-5m}
jitter=${JITTER:-30s}

# channel memory-max: the largest message a channel may fetch, twice over, plus mbsync itself.
add() {
  kctl schedule add "mbsync-$1" --host "$host" --every-after "$every" --jitter "$jitter" \
    --timeout 15m --memory-max "$2" -- mbsync -c "$conf" "$1"
}

add inbox 64M
add lists 64M
add archive 256M

kctl schedule ls
