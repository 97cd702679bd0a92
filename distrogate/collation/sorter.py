"""The in-guest sorter: ``dgsort``, a small C program compiled on the host and shipped into guests.

Each image must sort with its own glibc and locale data, and the images carry no compiler, so the
host compiles ``dgsort.c`` once (cached by the source's digest, in ``paths.sorter_store()``)
into a binary that only needs old glibc symbol versions (checked with ``objdump -T``), so the
same binary runs on bullseye, bookworm and trixie.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from importlib import resources
from pathlib import Path
from typing import Literal, TypedDict

from distrogate import paths, proc
from distrogate.artifacts import cached_build, now_utc, read_manifest, write_manifest
from distrogate.errors import InfraError
from distrogate.fsutil import sha256_file

log = logging.getLogger(__name__)

#: The newest glibc symbol version the binary may require (bullseye ships 2.31).
MAX_GLIBC = (2, 17)
CFLAGS = ("-O2", "-U_FORTIFY_SOURCE", "-D_FORTIFY_SOURCE=0", "-fno-stack-protector",
          "-DDGSORT_OWN_START", "-nostartfiles", "-Wall", "-Wextra", "-Werror")
BINARY = "dgsort"
SORTER_KIND: Literal["collation-sorter"] = "collation-sorter"
_VERSION_RE = re.compile(r"\(?GLIBC_(\d+)\.(\d+)(?:\.(\d+))?\)?")


def source() -> bytes:
    """The C source of the sorter."""
    return resources.files("distrogate.collation").joinpath("dgsort.c").read_bytes()


def required_glibc(objdump_text: str) -> tuple[int, int]:
    """The newest ``GLIBC_x.y`` symbol version named in ``objdump -T`` output ((0, 0) if none)."""
    versions = [(int(m.group(1)), int(m.group(2))) for m in _VERSION_RE.finditer(objdump_text)]
    return max(versions, default=(0, 0))


class SorterManifest(TypedDict):
    """``manifest.json`` of a built sorter."""

    kind: Literal["collation-sorter"]
    binary: str
    sha256: str
    source_sha256: str
    cflags: list[str]
    needs_glibc: str
    built_at: str


def build_sorter(cache: Path | None = None) -> Path:
    """Compile ``dgsort`` on the host (once per source digest) and return the binary's path.

    Raises :class:`InfraError` if gcc is missing or the binary needs a glibc newer than
    :data:`MAX_GLIBC`.
    """
    src = source()
    digest = hashlib.sha256(src + " ".join(CFLAGS).encode()).hexdigest()[:16]

    def build(work: Path) -> None:
        _compile(src, work)

    directory = cached_build(cache or paths.sorter_store(), f"dgsort-{digest}", load=_load,
                             build=build, what="the in-guest sorter", timeout=600)
    return directory / BINARY


def _load(directory: Path) -> Path | None:
    if read_manifest(directory, (SORTER_KIND,)) is None or not (directory / BINARY).is_file():
        return None
    return directory


def _compile(src: bytes, work: Path) -> None:
    for tool in ("gcc", "objdump"):
        if shutil.which(tool) is None:
            raise InfraError(f"collation: the host needs `{tool}` to build the in-guest sorter "
                             "(apt-get install gcc binutils)")
    binary = work / BINARY
    c_file = work / "dgsort.c"
    c_file.write_bytes(src)
    proc.run(["gcc", *CFLAGS, "-o", binary, c_file], timeout=120)
    c_file.unlink()
    dump = proc.run(["objdump", "-T", binary], timeout=60).text
    needed = required_glibc(dump)
    if needed > MAX_GLIBC:
        raise InfraError(f"collation: {work.name.removeprefix('.tmp-')} needs "
                         f"GLIBC_{needed[0]}.{needed[1]}, more than the allowed "
                         f"GLIBC_{MAX_GLIBC[0]}.{MAX_GLIBC[1]}")
    manifest: SorterManifest = {
        "kind": SORTER_KIND, "binary": BINARY, "sha256": sha256_file(binary),
        "source_sha256": hashlib.sha256(src).hexdigest(), "cflags": list(CFLAGS),
        "needs_glibc": f"{needed[0]}.{needed[1]}", "built_at": now_utc(),
    }
    write_manifest(work, manifest)
    log.info("built the in-guest sorter (needs glibc >= %d.%d)", *needed)
