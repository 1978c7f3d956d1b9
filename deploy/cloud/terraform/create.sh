#!/usr/bin/env bash
# kfleet exec provider, create: `terraform apply` in a workspace named after the guest.
# Needs terraform, jq, KFLEET_TF_DIR (a copy of this folder), KFLEET_BASE_VOLUME,
# KFLEET_PUBLIC_CONTROLLER (HOST:PORT the guest can reach).
#
# A request with "enrolment" (a TLS controller) carries the guest's own token and the controller's
# CA: they go to main.tf as TF_VAR_token and TF_VAR_ca_pem (sensitive variables; the environment,
# not the command line), and cloud-init writes them to /etc/kfleet/token (0600) and
# /etc/kfleet/ca.pem for the agent's --token-file and --ca-cert.
set -euo pipefail
umask 077
req=$(cat)
name=$(jq -r .name <<<"$req")
args="--controller $KFLEET_PUBLIC_CONTROLLER --host-id $(jq -r '.settings["kfleet.host_id"]' <<<"$req")"
args="$args --name $name --labels $(jq -r '.settings["kfleet.labels"]' <<<"$req")"
TF_VAR_token=$(jq -r '.enrolment.token // ""' <<<"$req")
# $(...) drops the PEM's last newline: put it back.
TF_VAR_ca_pem=$(jq -r '.enrolment.ca_pem // ""' <<<"$req")
[ -z "$TF_VAR_ca_pem" ] || TF_VAR_ca_pem+=$'\n'
export TF_VAR_token TF_VAR_ca_pem
cd "$KFLEET_TF_DIR"
terraform workspace select "$name" >/dev/null 2>&1 || terraform workspace new "$name" >/dev/null
terraform apply -auto-approve -input=false -var "name=$name" \
  -var "cpus=$(jq -r .cpus <<<"$req")" -var "memory_mib=$(jq -r .memory_mib <<<"$req")" \
  -var "base_volume=$KFLEET_BASE_VOLUME" -var "agent_args=$args" >&2
echo '{}'
