"""The machinectl / systemd-nspawn suite's library: container tree, installation, checks."""
