# One kfleet guest as a libvirt domain on a remote hypervisor, through the
# dmacvicar/libvirt provider; any other provider's instance resource works the same way.
terraform {
  required_providers {
    libvirt = { source = "dmacvicar/libvirt" }
  }
}

variable "uri" { default = "qemu+ssh://root@hypervisor/system" }
variable "name" {}
variable "cpus" { default = 1 }
variable "memory_mib" { default = 1024 }
variable "base_volume" { description = "a Debian image with kfleet-agent installed" }
variable "agent_args" { description = "kfleet-agent flags: --controller, --host-id, --name, --labels" }
# The guest's own enrolment token and the controller's CA (the request's "enrolment"; create.sh
# passes them as TF_VAR_token and TF_VAR_ca_pem, never on a command line). Empty: a plaintext
# controller. Terraform keeps them, inside user_data, in its state: keep the state private.
variable "token" {
  default   = ""
  sensitive = true
}
variable "ca_pem" {
  default   = ""
  sensitive = true
}

locals {
  # cloud-init writes them before runcmd starts the agent; base64 keeps the PEM's lines intact.
  enrol_files = concat(
    var.token == "" ? [] : [{
      path        = "/etc/kfleet/token"
      owner       = "root:root"
      permissions = "0600"
      encoding    = "b64"
      content     = base64encode(var.token)
    }],
    var.ca_pem == "" ? [] : [{
      path        = "/etc/kfleet/ca.pem"
      owner       = "root:root"
      permissions = "0644"
      encoding    = "b64"
      content     = base64encode(var.ca_pem)
    }],
  )
  enrol_flags = join("", [
    var.token == "" ? "" : " --token-file /etc/kfleet/token",
    var.ca_pem == "" ? "" : " --ca-cert /etc/kfleet/ca.pem",
  ])
  agent = "kfleet-agent ${var.agent_args}${local.enrol_flags} --state-dir /var/lib/kfleet-agent --allow-reboot"
  user_data = join("\n", ["#cloud-config", yamlencode({
    write_files = local.enrol_files
    runcmd      = [["sh", "-c", "${local.agent} &"]]
  })])
}

provider "libvirt" { uri = var.uri }

resource "libvirt_volume" "root" {
  name           = "${var.name}.qcow2"
  base_volume_id = var.base_volume
}

resource "libvirt_cloudinit_disk" "init" {
  name      = "${var.name}-init.iso"
  user_data = local.user_data
}

resource "libvirt_domain" "guest" {
  name      = var.name
  vcpu      = var.cpus
  memory    = var.memory_mib
  cloudinit = libvirt_cloudinit_disk.init.id
  disk { volume_id = libvirt_volume.root.id }
  console {
    type        = "pty"
    target_port = "0"
  }
}
