#!/usr/bin/env bash
# kfleet exec provider, power_cycle: a hard reboot of the guest's instance.
set -euo pipefail
name=$(jq -r .name)
out=$(aws ec2 describe-instances --filters "Name=tag:Name,Values=$name" "Name=tag:kfleet,Values=guest" \
  --query 'Reservations[].Instances[].InstanceId' --output text)
read -r -d '' -a ids <<<"$out" || true  # the ids, split on tabs and newlines
if [ ${#ids[@]} -eq 0 ]; then
  echo "power_cycle.sh: no instance named $name" >&2
  exit 1
fi
aws ec2 reboot-instances --instance-ids "${ids[@]}"
