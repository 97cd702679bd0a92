"""Turn an image tree into a bootable GPT disk without loop mounts.

Layout: partition 1 is an EFI system partition (FAT, built with mtools) holding systemd-boot,
the kernel and the initrd, so the disk boots through UEFI firmware; partition 2 is ext4, filled
from the tree by ``mkfs.ext4 -d`` at the partition's offset. Built images also boot by direct
kernel boot with the same kernel and initrd and ``root=UUID=``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from distrogate import proc
from distrogate.errors import InputError

SECTOR = 512
ESP_START = 2048  # sectors
ESP_MIB = 256
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
SYSTEMD_BOOT = "usr/lib/systemd/boot/efi/systemd-bootx64.efi"


class MissingBootFile(InputError):
    """The tree lacks a file its disk needs; the message names the package that provides it."""


@dataclass(frozen=True)
class BootFiles:
    """What the disk's ESP needs from a tree: the newest kernel, its initrd, the EFI loader."""

    kernel: Path
    initrd: Path
    version: str
    loader: Path


def find_boot_files(root: Path) -> BootFiles:
    """The newest kernel in ``root/boot``, its initrd and systemd-boot's EFI binary.

    Raises :class:`MissingBootFile` (naming the package to add) if one is missing.
    """
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise MissingBootFile("the image has no kernel in /boot (add linux-image-amd64)")
    kernel = kernels[-1]
    version = kernel.name.removeprefix("vmlinuz-")
    initrd = root / "boot" / f"initrd.img-{version}"
    if not initrd.exists():
        raise MissingBootFile(f"no initrd for kernel {version} (add initramfs-tools)")
    loader = root / SYSTEMD_BOOT
    if not loader.exists():
        raise MissingBootFile(f"{SYSTEMD_BOOT} missing (add systemd-boot-efi)")
    return BootFiles(kernel, initrd, version, loader)


def kernel_cmdline(root_uuid: str, extra: str = "") -> str:
    """The command line for booting a built image (serial console, root by UUID)."""
    return " ".join(filter(None, [f"root=UUID={root_uuid} rw console=ttyS0,115200 quiet "
                                  "systemd.show_status=1", extra]))


def _esp_image(path: Path, boot: BootFiles, cmdline: str) -> None:
    proc.run(["mkfs.vfat", "-n", "ESP", "-C", path, str(ESP_MIB * 1024)], timeout=60)
    loader = path.with_name("loader.conf")
    loader.write_text("default distrogate.conf\ntimeout 0\neditor no\n")
    entry = path.with_name("distrogate.conf")
    entry.write_text(f"title distrogate\nlinux /vmlinuz\ninitrd /initrd.img\noptions {cmdline}\n")
    image = f"{path}"
    for directory in ("::/EFI", "::/EFI/BOOT", "::/loader", "::/loader/entries"):
        proc.run(["mmd", "-i", image, directory], timeout=60)
    copies = [(boot.loader, "::/EFI/BOOT/BOOTX64.EFI"), (loader, "::/loader/loader.conf"),
              (entry, "::/loader/entries/distrogate.conf"), (boot.kernel, "::/vmlinuz"),
              (boot.initrd, "::/initrd.img")]
    for source, target in copies:
        proc.run(["mcopy", "-i", image, source, target], timeout=120)
    loader.unlink()
    entry.unlink()


def build_disk(root: Path, boot: BootFiles, raw: Path, *, size_gib: int, root_uuid: str,
               cmdline: str) -> None:
    """Write a sparse raw GPT disk of ``size_gib`` at ``raw`` from the tree at ``root``, with
    ``boot`` (see :func:`find_boot_files`) on its ESP."""
    total = size_gib * (1 << 30) // SECTOR
    root_start = ESP_START + ESP_MIB * 2048
    root_sectors = total - root_start - 2048  # leave room for the backup GPT
    with raw.open("wb") as handle:
        handle.truncate(total * SECTOR)
    layout = (
        "label: gpt\n"
        f"start={ESP_START}, size={ESP_MIB * 2048}, type={ESP_TYPE}, name=esp\n"
        f"start={root_start}, size={root_sectors}, type={LINUX_TYPE}, name=root\n"
    )
    proc.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", raw],
             input=layout.encode(), timeout=60)
    esp = raw.with_name("esp.img")
    _esp_image(esp, boot, cmdline)
    proc.run(["dd", f"if={esp}", f"of={raw}", "bs=1M", f"seek={ESP_START * SECTOR}",
              "oflag=seek_bytes", "conv=notrunc,sparse", "status=none"], timeout=120)
    esp.unlink()
    proc.run(["mkfs.ext4", "-q", "-F", "-L", "root", "-U", root_uuid,
              "-E", f"offset={root_start * SECTOR}", "-d", root, raw,
              f"{root_sectors * SECTOR // 1024}k"], timeout=900)
