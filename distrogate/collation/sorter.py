"""The in-guest sorter: ``dgsort``, a small C program compiled on the host and shipped into guests.

Each image must sort with its own glibc and locale data, and the images carry no compiler, so the
host compiles ``dgsort.c`` once (cached by the source's digest) into a binary that only needs old
glibc symbol versions (checked with ``objdump -T``), so the same binary runs on bullseye, bookworm
and trixie.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import threading
from importlib import resources
from pathlib import Path

from distrogate import paths, proc
from distrogate.errors import InfraError

log = logging.getLogger(__name__)

#: The newest glibc symbol version the binary may require (bullseye ships 2.31).
MAX_GLIBC = (2, 17)
CFLAGS = ("-O2", "-U_FORTIFY_SOURCE", "-D_FORTIFY_SOURCE=0", "-fno-stack-protector",
          "-DDGSORT_OWN_START", "-nostartfiles", "-Wall", "-Wextra", "-Werror")
_VERSION_RE = re.compile(r"\(?GLIBC_(\d+)\.(\d+)(?:\.(\d+))?\)?")


def source() -> bytes:
    """The C source of the sorter."""
    return resources.files("distrogate.collation").joinpath("dgsort.c").read_bytes()


def required_glibc(objdump_text: str) -> tuple[int, int]:
    """The newest ``GLIBC_x.y`` symbol version named in ``objdump -T`` output ((0, 0) if none)."""
    versions = [(int(m.group(1)), int(m.group(2))) for m in _VERSION_RE.finditer(objdump_text)]
    return max(versions, default=(0, 0))


def build_sorter(cache: Path | None = None) -> Path:
    """Compile ``dgsort`` on the host (once per source digest) and return the binary's path.

    Raises :class:`InfraError` if gcc is missing or the binary needs a glibc newer than
    :data:`MAX_GLIBC`.
    """
    src = source()
    digest = hashlib.sha256(src + " ".join(CFLAGS).encode()).hexdigest()[:16]
    directory = cache or paths.home() / "collation"
    directory.mkdir(parents=True, exist_ok=True)
    binary = directory / f"dgsort-{digest}"
    if binary.is_file():
        return binary
    for tool in ("gcc", "objdump"):
        if shutil.which(tool) is None:
            raise InfraError(f"collation: the host needs `{tool}` to build the in-guest sorter "
                             "(apt-get install gcc binutils)")
    # unique per process and thread: both images of a pair may ask for the sorter at once
    tmp = directory / f".dgsort-{digest}.{os.getpid()}.{threading.get_ident()}"
    c_file = tmp.with_name(tmp.name + ".c")
    c_file.write_bytes(src)
    try:
        proc.run(["gcc", *CFLAGS, "-o", tmp, c_file], timeout=120)
    finally:
        c_file.unlink(missing_ok=True)
    dump = proc.run(["objdump", "-T", tmp], timeout=60).text
    needed = required_glibc(dump)
    if needed > MAX_GLIBC:
        tmp.unlink()
        raise InfraError(f"collation: {binary.name} needs GLIBC_{needed[0]}.{needed[1]}, more "
                         f"than the allowed GLIBC_{MAX_GLIBC[0]}.{MAX_GLIBC[1]}")
    tmp.replace(binary)  # atomic; a concurrent build of the same source wrote the same bytes
    log.info("built the in-guest sorter %s (needs glibc >= %d.%d)", binary, *needed)
    return binary
