"""Running the collation sorter in a guest: locales, fingerprints, orders, locale data hashes."""

from __future__ import annotations

import logging
import posixpath
import re
import shlex
import struct
from dataclasses import dataclass
from typing import Protocol

from distrogate.collation.corpus import Corpus
from distrogate.collation.sorter import build_sorter
from distrogate.errors import GuestError, InputError
from distrogate.guest.agent import ExecResult

log = logging.getLogger(__name__)

WORKDIR = "/var/tmp/distrogate-collation"
SORTER = f"{WORKDIR}/dgsort"
LOCALE_DIR = "/usr/lib/locale"
#: Locale data files compared between images (LC_MESSAGES is a directory: its SYS_LC_MESSAGES).
CATEGORIES = ("LC_COLLATE", "LC_CTYPE", "LC_ADDRESS", "LC_IDENTIFICATION", "LC_MEASUREMENT",
              "LC_MONETARY", "LC_NAME", "LC_NUMERIC", "LC_PAPER", "LC_TELEPHONE", "LC_TIME",
              "LC_MESSAGES")


class GuestLike(Protocol):
    """What this module needs from a :class:`distrogate.guest.machine.Machine`."""

    name: str

    def execute(self, command: str | list[str], *, timeout: float = 120,
                stdin: bytes | None = None, env: dict[str, str] | None = None) -> ExecResult:
        """Run a command, return its exit code and output."""

    def succeed(self, command: str | list[str], *, timeout: float = 120,
                stdin: bytes | None = None, env: dict[str, str] | None = None) -> str:
        """Run a command, require exit 0, return stdout."""

    def write_file(self, guest_path: str, data: bytes, *, mode: int = 0o644,
                   timeout: float = 300) -> None:
        """Write a file in the guest."""

    def read_file(self, guest_path: str, *, timeout: float = 300) -> bytes:
        """Read a file from the guest."""


@dataclass(frozen=True)
class SortResult:
    """One locale's line of sorter output."""

    locale: str
    status: str  # ok | missing | error:<what>
    codeset: str
    included: int  # strings the locale's charset can encode
    ties: int  # adjacent strings with equal collation keys (broken by bytes)
    fingerprint: str
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether the locale loaded and sorted."""
        return self.status == "ok"


def normalize_locale(name: str) -> str:
    """Normalize a locale name the way glibc does: ``en_US.UTF-8`` -> ``en_US.utf8``.

    The codeset is lowercased with everything but letters and digits removed (an all-digit
    codeset gets ``iso`` in front); language, territory and modifier are kept as they are.
    """
    match = re.fullmatch(r"([^.@]+)(?:\.([^@]*))?(?:@(.*))?", name.strip())
    if not match or not name.strip():
        raise InputError(f"collation: {name!r} is not a locale name (like en_US.UTF-8)")
    base, codeset, modifier = match.groups()
    out = base
    if codeset is not None:
        norm = "".join(ch for ch in codeset.lower() if ch.isalnum())
        out += "." + ("iso" + norm if norm.isdigit() else norm)
    if modifier is not None:
        out += "@" + modifier
    return out


def list_locales(machine: GuestLike) -> list[str]:
    """The locales the guest ships, as ``locale -a`` names them (sorted, bytewise)."""
    names = machine.succeed(["locale", "-a"], timeout=60, env={"LC_ALL": "C"}).split()
    return sorted(set(names))


def select_locales(available: list[str], requested: list[str] | None,
                   source: str = "policy") -> list[str]:
    """Map ``requested`` names (policy spelling) onto ``available`` ones; all if None.

    Raises :class:`InputError` naming every requested locale the baseline does not ship.
    """
    if requested is None:
        return list(available)
    index = {normalize_locale(a): a for a in available}
    chosen: list[str] = []
    unknown: list[str] = []
    for name in requested:
        hit = index.get(normalize_locale(name))
        if hit is None:
            unknown.append(name)
        elif hit not in chosen:
            chosen.append(hit)
    if unknown:
        raise InputError(f"collation: {source} names locale(s) the baseline image does not ship: "
                         f"{', '.join(unknown)} (it ships {len(available)}; see `locale -a`)")
    return chosen


def install(machine: GuestLike, corpus: Corpus, *, timeout: float = 600) -> str:
    """Copy the sorter and ``corpus`` into the guest (once per corpus); return the corpus path."""
    sorter = build_sorter()
    path = f"{WORKDIR}/corpus-{corpus.digest[:16]}"
    present = machine.succeed(
        f"mkdir -p {WORKDIR} && test -s {path} && echo yes || true", timeout=60).strip()
    machine.write_file(SORTER, sorter.read_bytes(), mode=0o755, timeout=timeout)
    if present != "yes":
        machine.write_file(path + ".gz", corpus.gzipped(), timeout=timeout)
        machine.succeed(["sh", "-c", f"gzip -dc {path}.gz > {path}.tmp && mv {path}.tmp {path} "
                                     f"&& rm -f {path}.gz"], timeout=timeout)
        size = int(machine.succeed(["stat", "-c", "%s", path], timeout=30))
        if size != len(corpus.data):
            raise GuestError(f"{machine.name}: corpus copy has {size} bytes, "
                             f"expected {len(corpus.data)}")
    return path


def parse_results(text: str) -> list[SortResult]:
    """Parse the sorter's output lines."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 7:
            raise GuestError(f"collation: unexpected sorter output line {line!r}")
        out.append(SortResult(parts[0], parts[1], parts[2], int(parts[3]), int(parts[4]),
                              parts[5], float(parts[6])))
    return out


def run_sorter(machine: GuestLike, corpus_path: str, locales: list[str], *,
               orders: dict[str, str] | None = None, jobs: int = 2,
               timeout: float = 1800) -> dict[str, SortResult]:
    """Sort the corpus under each of ``locales`` in the guest; fingerprints by locale.

    ``orders`` maps locale -> guest path where the sorter also writes that locale's order.
    """
    if not locales:
        return {}
    argv = [SORTER, "-j", str(jobs)]
    for loc, path in (orders or {}).items():
        argv += ["-O", f"{loc}:{path}"]
    argv += [corpus_path, *locales]
    # The argument list can be long (500 locales): pass it through a script file.
    script = "exec " + shlex.join(argv) + "\n"
    machine.write_file(f"{WORKDIR}/run.sh", script.encode(), mode=0o755, timeout=60)
    text = machine.succeed(["sh", f"{WORKDIR}/run.sh"], timeout=timeout)
    results = {r.locale: r for r in parse_results(text)}
    missing = [loc for loc in locales if loc not in results]
    if missing:
        raise GuestError(f"{machine.name}: sorter printed nothing for {', '.join(missing[:5])}")
    return results


def fetch_order(machine: GuestLike, path: str, *, timeout: float = 600) -> list[int]:
    """Read an order file the sorter wrote (little-endian uint32 string indices)."""
    data = machine.read_file(path, timeout=timeout)
    if len(data) % 4:
        raise GuestError(f"{machine.name}: {path}: truncated order file ({len(data)} bytes)")
    return list(struct.unpack(f"<{len(data) // 4}I", data))


def locale_file_hashes(machine: GuestLike, *, timeout: float = 600) -> dict[str, dict[str, str]]:
    """SHA-256 of each locale's data files: ``{locale dir: {category: sha256}}``.

    locales-all shares identical files between locales through symbolic links: only real files
    are hashed in the guest and links are resolved here.
    """
    script = (f"cd {LOCALE_DIR} && "
              "find . -mindepth 2 -maxdepth 3 -type l -printf 'L %p\\t%l\\n' && "
              "find . -mindepth 2 -maxdepth 3 -type f -print0 | xargs -0 -r sha256sum")
    text = machine.succeed(["sh", "-c", script], timeout=timeout)
    return parse_file_hashes(text)


def parse_file_hashes(text: str) -> dict[str, dict[str, str]]:
    """Parse :func:`locale_file_hashes`' guest output (links ``L path\\ttarget``, then
    ``sha256sum`` lines) into ``{locale: {category: sha256}}``."""
    files: dict[str, str] = {}
    links: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("L "):
            path, _, target = line[2:].partition("\t")
            links[posixpath.normpath(path)] = posixpath.normpath(
                posixpath.join(posixpath.dirname(path), target))
        elif line.strip():
            digest, _, path = line.partition("  ")
            files[posixpath.normpath(path)] = digest

    def resolve(path: str) -> str | None:
        for _ in range(16):  # bounded: a link loop resolves to nothing
            if path in files:
                return files[path]
            if path not in links:
                return None
            path = links[path]
        return None

    out: dict[str, dict[str, str]] = {}
    category: str
    for path in sorted(set(files) | set(links)):
        parts = path.split("/")
        if len(parts) == 3 and parts[1] == "LC_MESSAGES" and parts[2] == "SYS_LC_MESSAGES":
            category = "LC_MESSAGES"
        elif len(parts) == 2 and parts[1] == "LC_MESSAGES" and path in links:
            category, path = "LC_MESSAGES", links[path] + "/SYS_LC_MESSAGES"  # a linked dir
        elif len(parts) == 2 and parts[1] in CATEGORIES:
            category = parts[1]
        else:
            continue
        found = resolve(path)
        if found is not None:
            out.setdefault(parts[0], {})[category] = found
    return out


def sort_strings(machine: GuestLike, strings: list[str], locales: list[str], *,
                 timeout: float = 120) -> dict[str, list[int]]:
    """Sort a few ``strings`` under each of ``locales`` in the guest; orders by locale.

    For small ad-hoc lists (the property test): the strings go in on standard input and the
    orders come back on standard error. The sorter must be installed (:func:`install`).
    Strings the locale's charset cannot encode are left out of its order.
    """
    data = b"".join(s.encode() + b"\0" for s in strings)
    argv = [SORTER, "-j", "1"]
    for loc in locales:
        argv += ["-O", f"{loc}:/dev/stderr"]
    result = machine.execute([*argv, "-", *locales], timeout=timeout, stdin=data)
    if result.exit_code != 0:
        raise GuestError(f"{machine.name}: sorter exited {result.exit_code}: "
                         f"{result.stderr[-300:]!r}")
    rows = parse_results(result.stdout.decode())
    out: dict[str, list[int]] = {}
    offset = 0
    for row in rows:
        if not row.ok:
            raise GuestError(f"{machine.name}: sorter: locale {row.locale}: {row.status}")
        chunk = result.stderr[offset:offset + 4 * row.included]
        offset += 4 * row.included
        out[row.locale] = list(struct.unpack(f"<{row.included}I", chunk))
    return out
