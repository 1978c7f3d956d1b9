#!/usr/bin/env bash
# kfleet exec provider, create: one EC2 instance whose cloud-init starts kfleet-agent.
# Needs: aws CLI configured, jq, KFLEET_AMI (an image with kfleet-agent installed),
# KFLEET_SUBNET, KFLEET_SECURITY_GROUP, KFLEET_PUBLIC_CONTROLLER (HOST:PORT the guest can reach).
#
# A request with "enrolment" (a TLS controller) carries the guest's own token and the controller's
# CA: cloud-init writes them to /etc/kfleet/token (0600) and /etc/kfleet/ca.pem, and the agent
# starts with --token-file and --ca-cert. They reach the AWS CLI in a private file, never on a
# command line, and are never printed.
set -euo pipefail
umask 077
req=$(cat)
name=$(jq -r .name <<<"$req")
cpus=$(jq -r .cpus <<<"$req")
host_id=$(jq -r '.settings["kfleet.host_id"]' <<<"$req")
labels=$(jq -r '.settings["kfleet.labels"]' <<<"$req")
# Base64, so that the PEM's lines and any character of the token survive YAML unchanged.
token_b64=$(jq -r '.enrolment.token // "" | select(. != "") | @base64' <<<"$req")
ca_b64=$(jq -r '.enrolment.ca_pem // "" | select(. != "") | @base64' <<<"$req")
type=${KFLEET_INSTANCE_TYPE:-$([ "$cpus" -le 2 ] && echo t3.medium || echo c5.xlarge)}

files=''
flags=''
if [ -n "$token_b64" ]; then
  files+="
  - path: /etc/kfleet/token
    owner: root:root
    permissions: '0600'
    encoding: b64
    content: $token_b64"
  flags+=" --token-file /etc/kfleet/token"
fi
if [ -n "$ca_b64" ]; then
  files+="
  - path: /etc/kfleet/ca.pem
    owner: root:root
    permissions: '0644'
    encoding: b64
    content: $ca_b64"
  flags+=" --ca-cert /etc/kfleet/ca.pem"
fi

user_data=$(mktemp)
trap 'rm -f "$user_data"' EXIT
{
  echo '#cloud-config'
  [ -z "$files" ] || printf 'write_files:%s\n' "$files"
  echo 'runcmd:'
  echo "  - [sh, -c, \"kfleet-agent --controller $KFLEET_PUBLIC_CONTROLLER --host-id $host_id --name $name --labels $labels$flags --state-dir /var/lib/kfleet-agent --allow-reboot >/var/log/kfleet-agent.log 2>&1 &\"]"
} >"$user_data"
aws ec2 run-instances --image-id "$KFLEET_AMI" --instance-type "$type" \
  --subnet-id "$KFLEET_SUBNET" --security-group-ids "$KFLEET_SECURITY_GROUP" \
  --user-data "file://$user_data" \
  --tag-specifications "ResourceType=instance,Tags=[{Key=Name,Value=$name},{Key=kfleet,Value=guest}]" \
  --query 'Instances[0].InstanceId' --output text >/dev/null
echo '{}'
