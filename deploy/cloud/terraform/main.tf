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

provider "libvirt" { uri = var.uri }

resource "libvirt_volume" "root" {
  name           = "${var.name}.qcow2"
  base_volume_id = var.base_volume
}

resource "libvirt_cloudinit_disk" "init" {
  name      = "${var.name}-init.iso"
  user_data = <<-EOT
    #cloud-config
    runcmd:
      - [sh, -c, "kfleet-agent ${var.agent_args} --state-dir /var/lib/kfleet-agent --allow-reboot &"]
  EOT
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
