"""A cloud-init NoCloud seed: a small FAT image labelled CIDATA, built with mtools."""

from __future__ import annotations

from pathlib import Path

from distrogate import proc

SEED_MARKER = "/var/lib/distrogate/seeded"


def user_data(hostname: str) -> str:
    """cloud-config that names the host, leaves a marker and makes sure the agent runs."""
    return (
        "#cloud-config\n"
        f"hostname: {hostname}\n"
        "resize_rootfs: false\n"  # the overlay is the image's size: nothing to grow
        "write_files:\n"
        f"  - path: {SEED_MARKER}\n"
        f"    content: \"{hostname}\\n\"\n"
        "runcmd:\n"
        "  - [systemctl, start, qemu-guest-agent]\n"
    )


def make_seed(path: Path, hostname: str) -> Path:
    """Write a NoCloud seed image for ``hostname`` to ``path``."""
    files = {
        "user-data": user_data(hostname),
        "meta-data": f"instance-id: {hostname}\nlocal-hostname: {hostname}\n",
        "network-config": "version: 1\nconfig: []\n",
    }
    path.unlink(missing_ok=True)
    proc.run(["mkfs.vfat", "-n", "CIDATA", "-C", path, "2048"], timeout=60)
    for name, content in files.items():
        source = path.with_name(name)
        source.write_text(content)
        proc.run(["mcopy", "-i", path, source, f"::/{name}"], timeout=60)
        source.unlink()
    path.chmod(0o644)  # read-only and shared as is: the QEMU user reads it, never owns it
    return path
