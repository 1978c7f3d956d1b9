#!/usr/bin/env bash
# kfleet exec provider, destroy: terminate the instance tagged with the guest's name.
set -euo pipefail
name=$(jq -r .name)
ids=$(aws ec2 describe-instances --filters "Name=tag:Name,Values=$name" "Name=tag:kfleet,Values=guest" \
  "Name=instance-state-name,Values=pending,running,stopping,stopped" \
  --query 'Reservations[].Instances[].InstanceId' --output text)
[ -z "$ids" ] || aws ec2 terminate-instances --instance-ids $ids >/dev/null
