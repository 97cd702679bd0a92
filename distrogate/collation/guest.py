"""Running the collation sorter in a guest: locales, fingerprints, orders, locale data hashes."""

from __future__ import annotations

import dataclasses
import logging
import posixpath
import re
import shlex
import struct
from dataclasses import dataclass
from typing import Protocol

from distrogate.collation.archive import archive_hashes
from distrogate.collation.corpus import Corpus
from distrogate.collation.sorter import build_sorter
from distrogate.errors import GuestError, InputError
from distrogate.guest.agent import ExecResult

log = logging.getLogger(__name__)

WORKDIR = "/var/tmp/distrogate-collation"
SORTER = f"{WORKDIR}/dgsort"
LOCALE_DIR = "/usr/lib/locale"
ARCHIVE_NAME = "locale-archive"
#: Fedora's glibc-all-langpacks archive is ~220 MiB; refuse what cannot be a locale archive.
MAX_ARCHIVE_BYTES = 1 << 30
#: Locale data files compared between images (LC_MESSAGES is a directory: its SYS_LC_MESSAGES).
CATEGORIES = ("LC_COLLATE", "LC_CTYPE", "LC_ADDRESS", "LC_IDENTIFICATION", "LC_MEASUREMENT",
              "LC_MONETARY", "LC_NAME", "LC_NUMERIC", "LC_PAPER", "LC_TELEPHONE", "LC_TIME",
              "LC_MESSAGES")


class Reader(Protocol):
    """The guest verbs that reading locale data needs (a :class:`GuestLike` has them)."""

    name: str

    def succeed(self, command: str | list[str], *, timeout: float = 120,
                stdin: bytes | None = None, env: dict[str, str] | None = None) -> str:
        """Run a command, require exit 0, return stdout."""

    def read_file(self, guest_path: str, *, timeout: float = 300) -> bytes:
        """Read a file from the guest."""


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
    #: adjacent pairs of the strxfrm order verified with strcoll_l (PostgreSQL's comparison)
    pairs_checked: int = 0
    #: of those, the pairs strcoll_l puts the other way round
    disagreements: int = 0
    strcoll_seconds: float = 0.0
    #: the first few such pairs, as corpus indices (first, second in the strxfrm order)
    disagreement_examples: tuple[tuple[int, int], ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the locale loaded and sorted."""
        return self.status == "ok"

    def standing_for(self, locale: str) -> SortResult:
        """This result under another locale's name (a locale of the same collation group)."""
        return dataclasses.replace(self, locale=locale)


def normalize_codeset(codeset: str) -> str:
    """glibc's ``_nl_normalize_codeset``: ASCII letters lowercased, digits kept, everything
    else dropped; an all-digit result gets ``iso`` in front (``ISO-8859-1`` -> ``iso88591``,
    ``UTF-8`` -> ``utf8``, ``8859-1`` -> ``iso88591``)."""
    norm = "".join(ch.lower() for ch in codeset if ch.isascii() and ch.isalnum())
    return "iso" + norm if norm.isdigit() else norm


def normalize_locale(name: str) -> str:
    """Normalize a locale name the way glibc does: ``en_US.UTF-8`` -> ``en_US.utf8``.

    The codeset is normalized by :func:`normalize_codeset`; language, territory and modifier
    are kept as they are. So ``C.UTF-8`` (bullseye's ``locale -a``) and ``C.utf8`` (bookworm's)
    are one locale.
    """
    match = re.fullmatch(r"([^.@]+)(?:\.([^@]*))?(?:@(.*))?", name.strip())
    if not match or not name.strip():
        raise InputError(f"collation: {name!r} is not a locale name (like en_US.UTF-8)")
    base, codeset, modifier = match.groups()
    out = base
    if codeset is not None:
        out += "." + normalize_codeset(codeset)
    if modifier is not None:
        out += "@" + modifier
    return out


def policy_name(name: str) -> str:
    """A locale's name as policies and waivers spell it: the normalized name with a UTF-8
    codeset written ``UTF-8`` (``th_TH.utf8`` -> ``th_TH.UTF-8``, ``C.utf8`` -> ``C.UTF-8``);
    other codesets keep their normalized spelling (``de_DE.iso88591``, ``de_DE``)."""
    norm = normalize_locale(name)
    base, dot, rest = norm.partition(".")
    if not dot:
        return norm
    codeset, at, modifier = rest.partition("@")
    return f"{base}.{'UTF-8' if codeset == 'utf8' else codeset}{at}{modifier}"


def by_normalized(names: list[str]) -> dict[str, str]:
    """``{normalized name: name}`` for ``names`` (the first spelling wins)."""
    out: dict[str, str] = {}
    for name in names:
        out.setdefault(normalize_locale(name), name)
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
    index = by_normalized(available)
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
    """Parse the sorter's output lines (eleven tab-separated fields, see ``dgsort.c``)."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 11:
            raise GuestError(f"collation: unexpected sorter output line {line!r}")
        try:
            out.append(SortResult(parts[0], parts[1], parts[2], int(parts[3]), int(parts[4]),
                                  parts[5], float(parts[6]), int(parts[7]), int(parts[8]),
                                  float(parts[9]), parse_pairs(parts[10])))
        except ValueError as exc:
            raise GuestError(f"collation: bad sorter output line {line!r}: {exc}") from None
    return out


def parse_pairs(text: str) -> tuple[tuple[int, int], ...]:
    """The sorter's EXAMPLES field: ``I,J;I,J`` corpus index pairs, or ``-`` for none."""
    if text in ("-", ""):
        return ()
    pairs = []
    for chunk in text.split(";"):
        first, sep, second = chunk.partition(",")
        if not sep:
            raise ValueError(f"pair {chunk!r} is not I,J")
        pairs.append((int(first), int(second)))
    return tuple(pairs)


def run_sorter(machine: GuestLike, corpus_path: str, locales: list[str], *,
               orders: dict[str, str] | None = None, jobs: int = 2,
               timeout: float = 1800, strcoll_stride: int = 1) -> dict[str, SortResult]:
    """Sort the corpus under each of ``locales`` in the guest; fingerprints by locale.

    ``orders`` maps locale -> guest path where the sorter also writes that locale's order.
    ``strcoll_stride``: which adjacent pairs strcoll_l verifies (``dgsort -s``: 1 every pair;
    N > 1 every N-th of the pairs with a supplementary-plane character or of two single
    ideographs, every other pair always; 0 none).
    """
    if not locales:
        return {}
    argv = [SORTER, "-j", str(jobs), "-s", str(strcoll_stride)]
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


def locale_file_hashes(machine: Reader, *, timeout: float = 600,
                       locale_dir: str = LOCALE_DIR) -> dict[str, dict[str, str]]:
    """SHA-256 of each locale's category data: ``{normalized locale: {category: sha256}}``.

    Both layouts are read and hashed alike (SHA-256 of the category's bytes): per-locale folders
    (locales-all shares identical files through symbolic links: only real files are hashed in
    the guest, links are resolved here) and ``locale-archive`` (fetched and parsed on the host,
    see :mod:`distrogate.collation.archive`). As glibc does, the archive wins over a folder of
    the same (normalized) name. ``locale_dir``: where the image keeps compiled locales.
    """
    script = (f"cd {shlex.quote(locale_dir)} && "
              f"{{ stat -L -c 'A %s' {ARCHIVE_NAME} 2>/dev/null || true; }} && "
              "find . -mindepth 2 -maxdepth 3 -type l -printf 'L %p\\t%l\\n' && "
              "find . -mindepth 2 -maxdepth 3 -type f -print0 | xargs -0 -r sha256sum")
    text = machine.succeed(["sh", "-c", script], timeout=timeout)
    out = {normalize_locale(name): files for name, files in parse_file_hashes(text).items()
           if _is_locale_name(name)}
    size = archive_size(text)
    if size is not None:
        if size > MAX_ARCHIVE_BYTES:
            raise GuestError(f"{machine.name}: {locale_dir}/{ARCHIVE_NAME} has {size} bytes, "
                             f"more than the {MAX_ARCHIVE_BYTES} this harness reads")
        data = machine.read_file(f"{locale_dir}/{ARCHIVE_NAME}", timeout=timeout)
        archived = archive_hashes(data)
        log.info("%s: %s holds %d locales (%d bytes)", machine.name, ARCHIVE_NAME,
                 len(archived), len(data))
        out.update({normalize_locale(name): files for name, files in archived.items()
                    if _is_locale_name(name)})
    return out


def archive_size(text: str) -> int | None:
    """The archive's size from :func:`locale_file_hashes`' guest output (``A <bytes>``), or
    None when the guest has no archive."""
    for line in text.splitlines():
        if line.startswith("A "):
            return int(line[2:])
    return None


def _is_locale_name(name: str) -> bool:
    """Whether ``name`` parses as a locale name (not a stray folder)."""
    try:
        normalize_locale(name)
    except InputError:
        return False
    return True


def parse_file_hashes(text: str) -> dict[str, dict[str, str]]:
    """Parse :func:`locale_file_hashes`' guest output (links ``L path\\ttarget``, then
    ``sha256sum`` lines) into ``{locale: {category: sha256}}``."""
    files: dict[str, str] = {}
    links: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("A "):
            continue  # the archive's size (see archive_size)
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
