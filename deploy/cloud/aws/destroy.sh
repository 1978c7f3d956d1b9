#!/usr/bin/env bash
# kfleet exec provider, destroy: terminate the instance tagged with the guest's name.
set -euo pipefail
name=$(jq -r .name)
out=$(aws ec2 describe-instances --filters "Name=tag:Name,Values=$name" "Name=tag:kfleet,Values=guest" \
  "Name=instance-state-name,Values=pending,running,stopping,stopped" \
  --query 'Reservations[].Instances[].InstanceId' --output text)
read -r -d '' -a ids <<<"$out" || true  # the ids, split on tabs and newlines
[ ${#ids[@]} -eq 0 ] || aws ec2 terminate-instances --instance-ids "${ids[@]}" >/dev/null
