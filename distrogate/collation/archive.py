"""glibc's locale archive (``/usr/lib/locale/locale-archive``), read on the host.

Fedora's glibc-all-langpacks and Debian's ``locales`` + locale-gen keep compiled locales in one
archive file instead of one folder per locale (Debian's locales-all). The format is glibc's
``locale/locarchive.h``: a header (``struct locarhead``), a hash table of names (``struct
namehashent``: hash, name offset, record offset), and per locale a record (``struct locrecent``:
a reference count, then ``{offset, len}`` for each category, indexed by glibc's category
numbers). Identical category data is stored once and shared by offset.

The bytes a record points at are the same bytes ``localedef --no-archive`` writes to that
category's file, so :func:`archive_hashes` hashes them exactly as the per-folder files are
hashed (SHA-256 of the category's bytes): the same locale data gives the same hashes in either
layout.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from distrogate.errors import GuestError

#: ``AR_MAGIC`` of locarchive.h.
MAGIC = 0xDE020109
#: glibc's category numbers (``LC_ALL`` = 6 is the whole record, not a category of its own).
CATEGORY_INDEX = {"LC_CTYPE": 0, "LC_NUMERIC": 1, "LC_TIME": 2, "LC_COLLATE": 3,
                  "LC_MONETARY": 4, "LC_MESSAGES": 5, "LC_PAPER": 7, "LC_NAME": 8,
                  "LC_ADDRESS": 9, "LC_TELEPHONE": 10, "LC_MEASUREMENT": 11,
                  "LC_IDENTIFICATION": 12}
LC_LAST = 13
_HEADER = struct.Struct("14I")
_NAMEHASH = struct.Struct("3I")
_LOCREC = struct.Struct(f"I{2 * LC_LAST}I")


@dataclass(frozen=True)
class Header:
    """The fields of ``struct locarhead`` this module uses."""

    byte_order: str  # "<" or ">"
    namehash_offset: int
    namehash_size: int
    file_size: int


def read_header(data: bytes) -> Header:
    """Parse and check the archive header (either byte order); raises :class:`GuestError`."""
    if len(data) < _HEADER.size:
        raise GuestError(f"locale-archive: {len(data)} bytes, too short for a header")
    for order in ("<", ">"):
        fields = struct.unpack_from(order + "14I", data, 0)
        if fields[0] == MAGIC:
            header = Header(order, fields[2], fields[4], len(data))
            end = header.namehash_offset + header.namehash_size * _NAMEHASH.size
            if end > len(data):
                raise GuestError(f"locale-archive: name table ends at {end}, past the end of "
                                 f"the file ({len(data)} bytes)")
            return header
    raise GuestError(f"locale-archive: bad magic {data[:4].hex()} (expected {MAGIC:08x})")


def _name_at(data: bytes, offset: int) -> str:
    """The NUL-terminated name at ``offset``."""
    end = data.find(b"\0", offset)
    if offset >= len(data) or end < 0:
        raise GuestError(f"locale-archive: name offset {offset} outside the file")
    return data[offset:end].decode("ascii", errors="replace")


def category_ranges(data: bytes) -> dict[str, dict[str, tuple[int, int]]]:
    """Every locale in the archive: ``{name: {category: (offset, length)}}``.

    Names are as the archive stores them (``locale -a`` prints the same). Raises
    :class:`GuestError` for a malformed archive.
    """
    header = read_header(data)
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for slot in range(header.namehash_size):
        at = header.namehash_offset + slot * _NAMEHASH.size
        _hash, name_offset, locrec_offset = struct.unpack_from(
            header.byte_order + "3I", data, at)
        if name_offset == 0 or locrec_offset == 0:
            continue  # an empty slot
        if locrec_offset + _LOCREC.size > len(data):
            raise GuestError(f"locale-archive: record offset {locrec_offset} outside the file")
        fields = struct.unpack_from(f"{header.byte_order}I{2 * LC_LAST}I", data, locrec_offset)
        ranges: dict[str, tuple[int, int]] = {}
        for category, index in CATEGORY_INDEX.items():
            offset, length = fields[1 + 2 * index], fields[2 + 2 * index]
            if offset + length > len(data):
                raise GuestError(f"locale-archive: {category} of record {locrec_offset} ends "
                                 f"past the end of the file")
            ranges[category] = (offset, length)
        out[_name_at(data, name_offset)] = ranges
    return out


def archive_hashes(data: bytes) -> dict[str, dict[str, str]]:
    """SHA-256 of each locale's category data: ``{name: {category: sha256}}``.

    Shared data (the same offset and length) is hashed once.
    """
    cache: dict[tuple[int, int], str] = {}
    out: dict[str, dict[str, str]] = {}
    for name, ranges in category_ranges(data).items():
        hashes: dict[str, str] = {}
        for category, (offset, length) in ranges.items():
            key = (offset, length)
            if key not in cache:
                cache[key] = hashlib.sha256(data[offset:offset + length]).hexdigest()
            hashes[category] = cache[key]
        out[name] = hashes
    return out
