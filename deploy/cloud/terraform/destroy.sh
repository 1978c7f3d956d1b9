#!/usr/bin/env bash
# kfleet exec provider, destroy: `terraform destroy` the guest's workspace, then drop it.
set -euo pipefail
name=$(jq -r .name)
cd "$KFLEET_TF_DIR"
terraform workspace select "$name" >/dev/null 2>&1 || exit 0
terraform destroy -auto-approve -input=false -var "name=$name" -var "base_volume=unused" \
  -var "agent_args=unused" >&2
terraform workspace select default >/dev/null
terraform workspace delete "$name" >/dev/null
