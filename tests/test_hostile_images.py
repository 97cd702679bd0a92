"""Hostile image files: each is refused with one line naming the image, exit 3, within seconds,
before any lab starts; the file is left as it was and nothing is recorded or left behind."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from distrogate import paths
from tests.conftest import Cli, qemu_processes

BOUND_S = 30.0
BACKING_FORMAT_EXTENSION = bytes.fromhex("e2792aca")


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True, timeout=60)


def fingerprint(path: Path) -> tuple[str, int, int, int]:
    stat = path.stat()
    return (hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_mtime_ns, stat.st_uid,
            stat.st_mode)


def overlay_on(backing: str, fmt: str = "raw") -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        image = folder / "hostile.qcow2"
        qemu_img("create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", fmt, str(image), "1G")
        return image
    return make


def huge(folder: Path) -> Path:
    image = folder / "huge.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", "cluster_size=2M", str(image), "1E")
    return image


def chain_loop(folder: Path) -> Path:
    first, second = folder / "loop-a.qcow2", folder / "loop-b.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(first), "1G")
    qemu_img("create", "-q", "-f", "qcow2", "-b", first.name, "-F", "qcow2", str(second))
    qemu_img("rebase", "-q", "-u", "-f", "qcow2", "-b", second.name, "-F", "qcow2", str(first))
    return first


def raw_with_qcow2_header(folder: Path) -> Path:
    header = overlay_on("/etc/shadow")(folder)
    image = folder / "disk.raw"
    data = bytearray(header.read_bytes())
    data[510:512] = b"\x55\xaa"  # and an MBR signature, so that it would boot as raw
    image.write_bytes(bytes(data))
    header.unlink()
    return image


def no_backing_format(folder: Path) -> Path:
    base = folder / "base.raw"
    base.write_bytes(b"\0" * 510 + b"\x55\xaa" + b"\0" * (1 << 20))
    image = folder / "overlay.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-u", "-b", base.name, "-F", "raw", str(image), "1G")
    data = image.read_bytes()  # this qemu-img always writes the format: end the extensions
    at = data.index(BACKING_FORMAT_EXTENSION)  # where it starts, as an older one would
    image.write_bytes(data[:at] + b"\0" * 8 + data[at + 8:])
    return image


CASES = {
    "backing-etc-shadow": (overlay_on("/etc/shadow"), "outside the image's folder"),
    "backing-json": (overlay_on('json:{"file":{"driver":"file","filename":"/etc/shadow"}}'),
                     "not a local file"),
    "backing-nbd": (overlay_on("nbd://127.0.0.1:10809/export"), "not a local file"),
    "backing-nbd-legacy": (overlay_on("nbd:127.0.0.1:10809"), "not a local file"),
    "virtual-size-1EiB": (huge, "virtual size"),
    "backing-chain-loop": (chain_loop, "loops back"),
    "raw-with-qcow2-header": (raw_with_qcow2_header, "starts with a qcow2 header"),
    "backing-format-not-stated": (no_backing_format, "no stated format"),
}


def _store_entries() -> set[str]:
    store = paths.image_store()
    return {p.name for p in store.glob("ext-*")} if store.is_dir() else set()


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_image_is_refused(cli: Cli, tmp_path: Path, case: str) -> None:
    make, expected = CASES[case]
    folder = tmp_path / "in"
    folder.mkdir()
    image = make(folder)
    before = {p: fingerprint(p) for p in folder.iterdir()}
    shadow = fingerprint(Path("/etc/shadow"))
    entries = _store_entries()
    started = time.monotonic()
    result = cli("run", str(image), "--", "true", timeout=120)
    elapsed = time.monotonic() - started
    print(f"{case}: exit {result.returncode} in {elapsed:.2f}s: {result.stderr.strip()}")
    assert result.returncode == 3, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("distrogate: error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert str(image) in lines[0] and expected in lines[0], lines[0]
    assert elapsed < BOUND_S
    assert {p: fingerprint(p) for p in folder.iterdir()} == before
    assert fingerprint(Path("/etc/shadow")) == shadow
    assert _store_entries() == entries
    assert not (cli.home / "labs").exists() or not any((cli.home / "labs").iterdir())
    assert qemu_processes(cli.home) == []


def test_allow_backing_admits_a_folder(cli: Cli, tmp_path: Path) -> None:
    """A backing file outside the image's folder is accepted once its folder is allowed (and
    then the image is judged on its content: this one is not bootable)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    base = shared / "base.raw"
    base.write_bytes(b"\0" * (1 << 20))
    folder = tmp_path / "in"
    folder.mkdir()
    image = folder / "overlay.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(image))
    refused = cli("image", "inspect", str(image), timeout=60)
    assert refused.returncode == 3 and "--allow-backing" in refused.stderr
    admitted = cli("image", "import", str(image), "--allow-backing", str(shared), timeout=60)
    assert admitted.returncode == 0, admitted.stderr
    directory = Path(json.loads(admitted.stdout)["directory"])
    try:  # VMs read a flattened copy in the store, never the user's files
        copy = json.loads((directory / "manifest.json").read_text())["disk"]
        assert copy["path"] == "disk.qcow2" and copy["chain"] == []
        info = subprocess.run(["qemu-img", "info", "-U", "--output=json",
                               str(directory / "disk.qcow2")], capture_output=True, text=True,
                              check=True, timeout=60)
        assert "backing-filename" not in json.loads(info.stdout)
    finally:
        shutil.rmtree(directory)
        (directory.parent / f".{directory.name}.lock").unlink(missing_ok=True)
