#!/usr/bin/env bash
# kfleet exec provider, create: `terraform apply` in a workspace named after the guest.
# Needs terraform, jq, KFLEET_TF_DIR (a copy of this folder), KFLEET_BASE_VOLUME,
# KFLEET_PUBLIC_CONTROLLER (HOST:PORT the guest can reach).
set -euo pipefail
req=$(cat)
name=$(jq -r .name <<<"$req")
args="--controller $KFLEET_PUBLIC_CONTROLLER --host-id $(jq -r '.settings["kfleet.host_id"]' <<<"$req")"
args="$args --name $name --labels $(jq -r '.settings["kfleet.labels"]' <<<"$req")"
cd "$KFLEET_TF_DIR"
terraform workspace select "$name" >/dev/null 2>&1 || terraform workspace new "$name" >/dev/null
terraform apply -auto-approve -input=false -var "name=$name" \
  -var "cpus=$(jq -r .cpus <<<"$req")" -var "memory_mib=$(jq -r .memory_mib <<<"$req")" \
  -var "base_volume=$KFLEET_BASE_VOLUME" -var "agent_args=$args" >&2
echo '{}'
