#!/usr/bin/env bash
# kfleet exec provider, power_cycle: a hard reboot of the guest's instance.
set -euo pipefail
name=$(jq -r .name)
ids=$(aws ec2 describe-instances --filters "Name=tag:Name,Values=$name" "Name=tag:kfleet,Values=guest" \
  --query 'Reservations[].Instances[].InstanceId' --output text)
[ -n "$ids" ] && aws ec2 reboot-instances --instance-ids $ids
