#!/usr/bin/env bash
# kfleet exec provider, create: one EC2 instance whose cloud-init starts kfleet-agent.
# Needs: aws CLI configured, jq, KFLEET_AMI (an image with kfleet-agent installed),
# KFLEET_SUBNET, KFLEET_SECURITY_GROUP, KFLEET_PUBLIC_CONTROLLER (HOST:PORT the guest can reach).
set -euo pipefail
req=$(cat)
name=$(jq -r .name <<<"$req")
cpus=$(jq -r .cpus <<<"$req")
host_id=$(jq -r '.settings["kfleet.host_id"]' <<<"$req")
labels=$(jq -r '.settings["kfleet.labels"]' <<<"$req")
type=${KFLEET_INSTANCE_TYPE:-$([ "$cpus" -le 2 ] && echo t3.medium || echo c5.xlarge)}
user_data=$(cat <<DATA
#cloud-config
runcmd:
  - [sh, -c, "kfleet-agent --controller $KFLEET_PUBLIC_CONTROLLER --host-id $host_id --name $name --labels $labels --state-dir /var/lib/kfleet-agent --allow-reboot >/var/log/kfleet-agent.log 2>&1 &"]
DATA
)
aws ec2 run-instances --image-id "$KFLEET_AMI" --instance-type "$type" \
  --subnet-id "$KFLEET_SUBNET" --security-group-ids "$KFLEET_SECURITY_GROUP" \
  --user-data "$user_data" \
  --tag-specifications "ResourceType=instance,Tags=[{Key=Name,Value=$name},{Key=kfleet,Value=guest}]" \
  --query 'Instances[0].InstanceId' --output text >/dev/null
echo '{}'
