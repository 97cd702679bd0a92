"""``qemu-img`` on untrusted files: bounded, never following anything but checked local files.

Every call runs with ``-U`` (no lock taken, nothing written), an explicit format (never
probed), a timeout, and under resource limits (address space and CPU seconds, through
``prlimit``), so that a crafted header cannot make it eat the host. ``qemu-img info`` is run
on one layer at a time, without ``--backing-chain``: the chain is walked here, and a backing
file is only followed once it is known to be a local file in an allowed folder.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distrogate import proc
from distrogate.errors import CommandError, InputError

#: Limits for one qemu-img process: address space, CPU seconds, wall-clock seconds.
ADDRESS_SPACE = 1 << 30
CPU_SECONDS = 60
TIMEOUT = 120.0
#: The largest virtual disk accepted (a cloud image is a few GiB; this is generous).
MAX_VIRTUAL_SIZE = 1 << 40
MAX_CHAIN = 16
#: Environment variable (``os.pathsep``-separated folders) set by ``--allow-backing DIR``.
ALLOW_BACKING_ENV = "DISTROGATE_ALLOW_BACKING"

QCOW2_MAGIC = b"QFI\xfb"
_OTHER_MAGICS = {b"KDMV": "vmdk", b"QED\x00": "qed", b"LUKS": "luks", b"conectix": "vpc",
                 b"vhdxfile": "vhdx", b"<<< Oracle VM VirtualBox Disk Image >>>": "vdi"}
_RAW_SUFFIXES = (".raw", ".img")
# "nbd://", "json:{", "file:", "nbd:host:port", "http:", ...: anything QEMU reads as a
# protocol prefix rather than a plain file name.
_PROTOCOL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


@dataclass(frozen=True)
class Layer:
    """One file of a backing chain, as qemu-img saw it with its format stated."""

    path: Path
    fmt: str
    virtual_size: int
    backing: Path | None


def limited(argv: Sequence[str | Path]) -> list[str | Path]:
    """``argv`` run under the address-space and CPU limits."""
    return ["prlimit", f"--as={ADDRESS_SPACE}", f"--cpu={CPU_SECONDS}", "--", *argv]


def allowed_backing_dirs() -> tuple[Path, ...]:
    """The folders a backing file may be in besides the image's own (``--allow-backing``)."""
    raw = os.environ.get(ALLOW_BACKING_ENV, "")
    return tuple(Path(p).resolve() for p in raw.split(os.pathsep) if p)


def sniff_format(path: Path) -> str:
    """The format of ``path`` from its name and first bytes, never from QEMU's probing.

    A ``.raw``/``.img`` file is raw, and one that starts with a qcow2 header is refused (the
    classic way to make a prober read a host file as a backing file). A ``.qcow2`` file must
    start with a qcow2 header. Other names: qcow2 if the header says so, else raw; other
    known formats are refused.
    """
    with path.open("rb") as handle:
        head = handle.read(64)
    if path.suffix in _RAW_SUFFIXES:
        if head.startswith(QCOW2_MAGIC):
            raise InputError(f"{path}: named as a raw image but starts with a qcow2 header; "
                             "refusing to guess its format (rename it .qcow2 if it is one)")
        return "raw"
    if head.startswith(QCOW2_MAGIC):
        return "qcow2"
    for magic, fmt in _OTHER_MAGICS.items():
        if head.startswith(magic):
            raise InputError(f"{path}: unsupported image format {fmt!r} (expected qcow2 or raw)")
    if path.suffix == ".qcow2":
        raise InputError(f"{path}: not a bootable disk image although it is named .qcow2: "
                         "it has no qcow2 header")
    return "raw"


def info(path: Path, fmt: str) -> dict[str, Any]:
    """``qemu-img info`` of the one file ``path`` read as ``fmt`` (its backing file is not
    opened)."""
    try:
        result = proc.run(limited(["qemu-img", "info", "-U", "-f", fmt, "--output=json",
                                   path]), timeout=TIMEOUT)
        data: Any = json.loads(result.text)
    except CommandError as exc:
        raise InputError(f"{path}: not a {fmt} image qemu can open: {exc}") from None
    except ValueError:
        raise InputError(f"{path}: qemu-img info gave no readable answer") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: qemu-img info gave no readable answer")
    return data


def check(path: Path, fmt: str) -> None:
    """``qemu-img check`` of a qcow2 file (its metadata; backing files are not opened)."""
    result = proc.run(limited(["qemu-img", "check", "-U", "-f", fmt, "--output=json", path]),
                      timeout=TIMEOUT * 5, check=False)
    if result.returncode != 0:
        detail = " ".join(result.stderr.decode(errors="replace").split())[:200]
        raise InputError(f"{path}: corrupt qcow2 image (qemu-img check exited "
                         f"{result.returncode}: {detail})")


def backing_chain(image: Path, fmt: str, allow: Sequence[Path] = ()) -> list[Layer]:
    """Walk the backing chain of ``image`` (read as ``fmt``) one checked layer at a time.

    Refused, naming ``image``: a backing file that is a network protocol or a ``json:``
    specification, one outside the image's folder (and the ``allow`` folders), a missing
    one, one without a stated format, a loop, a chain longer than :data:`MAX_CHAIN`, and a
    virtual size above :data:`MAX_VIRTUAL_SIZE`.
    """
    roots = (image.parent.resolve(), *(Path(a).resolve() for a in allow))
    layers: list[Layer] = []
    seen: set[Path] = set()
    path, layer_fmt = image, fmt
    while True:
        real = path.resolve()
        if real in seen:
            raise InputError(f"{image}: backing chain loops back to {path}")
        seen.add(real)
        data = info(path, layer_fmt)
        size = int(data.get("virtual-size") or 0)
        if size > MAX_VIRTUAL_SIZE:
            raise InputError(f"{image}: virtual size {size} bytes of {path} is absurd "
                             f"(limit {MAX_VIRTUAL_SIZE >> 30} GiB)")
        backing_name = data.get("backing-filename")
        if not backing_name:
            layers.append(Layer(path, layer_fmt, size, None))
            return layers
        backing = _local_backing(image, path, str(backing_name), roots)
        backing_fmt = data.get("backing-filename-format")
        if backing_fmt not in ("qcow2", "raw"):
            raise InputError(f"{image}: backing file {backing_name} of {path} has "
                             f"{'no stated format' if not backing_fmt else repr(backing_fmt)} "
                             "(qcow2 or raw must be stated: qemu-img rebase -u -F FMT)")
        layers.append(Layer(path, layer_fmt, size, backing))
        if len(layers) >= MAX_CHAIN:
            raise InputError(f"{image}: backing chain longer than {MAX_CHAIN} files")
        path, layer_fmt = backing, str(backing_fmt)


def _local_backing(image: Path, layer: Path, name: str, roots: Sequence[Path]) -> Path:
    if name.startswith("json:") or _PROTOCOL.match(name):
        raise InputError(f"{image}: backing file {name[:80]!r} of {layer} is not a local file "
                         "(network protocols and json: specifications are refused)")
    backing = Path(name) if os.path.isabs(name) else layer.parent / name
    real = backing.resolve()
    if not any(real == root or real.is_relative_to(root) for root in roots):
        raise InputError(f"{image}: backing file {name} of {layer} is outside the image's "
                         "folder (pass --allow-backing DIR to allow its folder)")
    if not real.is_file():
        raise InputError(f"{image}: backing file {backing} does not exist")
    return backing
