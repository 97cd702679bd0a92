"""The lab: a libvirt daemon (private, in its own network namespace, or an existing one),
isolated networks, VMs on overlays, warm templates, and the reaper."""
