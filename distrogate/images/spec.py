"""Image specs: YAML files that describe a Debian-based image, optionally derived from another.

A spec has: ``release`` (a Debian suite), ``packages``, ``files`` (path + content or source),
``commands`` (run inside the tree, in order), ``kernel_cmdline`` (extra arguments) and
``disk_size_gib``. ``base: other.yaml`` inherits everything from another spec and adds its own
packages, files and commands after the base's: "our image plus this one change". ``base`` is a
path relative to the spec's own folder or, as on the command line, a built-in spec's name
(``base: promoted`` is ``images/promoted.yaml`` of this checkout) when no such file is there.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from distrogate import paths
from distrogate.errors import InputError, SpecError

BUILDER_VERSION = 3  # bump when the build procedure changes what an image contains
RELEASES = ("bullseye", "bookworm", "trixie")
KNOWN_KEYS = {"name", "description", "base", "release", "packages", "files", "commands",
              "kernel_cmdline", "disk_size_gib"}
_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.\-]*(:[a-z0-9]+)?$")
_BUILTIN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
SPEC_SUFFIXES = (".yaml", ".yml")


def builtin_specs_dir() -> Path:
    """The folder of the built-in specs (``images/`` of the checkout)."""
    return paths.repo_root() / "images"


def builtin_spec(name: str) -> Path | None:
    """The built-in spec called ``name`` (``promoted`` → ``images/promoted.yaml``), or None.

    Only a plain name counts (letters, digits, ``-`` and ``_``; no folder, no suffix), so that
    a name never reaches outside the built-in folder.
    """
    if not _BUILTIN_NAME_RE.match(name):
        return None
    candidate = builtin_specs_dir() / f"{name}.yaml"
    return candidate if candidate.is_file() else None


def base_spec_path(spec_path: Path, ref: str) -> Path:
    """The spec a ``base: ref`` in the spec at ``spec_path`` names: the file ``ref`` relative to
    the spec's folder (absolute paths as they are); if there is none and ``ref`` is a plain
    name, the built-in spec of that name, as the command line reads an IMAGE."""
    relative = spec_path.parent / ref
    if relative.exists() or Path(ref).suffix in SPEC_SUFFIXES:
        return relative
    return builtin_spec(ref) or relative


@dataclass(frozen=True)
class FileEntry:
    """A file placed in the image tree."""

    path: str
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class ImageSpec:
    """A fully resolved image spec (base specs already merged in)."""

    name: str
    path: Path
    release: str
    packages: tuple[str, ...]
    files: tuple[FileEntry, ...] = ()
    commands: tuple[str, ...] = ()
    kernel_cmdline: str = ""
    disk_size_gib: int = 4
    description: str = ""
    base: ImageSpec | None = field(default=None, compare=False)

    def content(self) -> dict[str, Any]:
        """What determines the built image; the cache key is a digest of this."""
        return {
            "builder": BUILDER_VERSION,
            "release": self.release,
            "packages": sorted(set(self.packages)),
            "files": [asdict(f) for f in self.files],
            "commands": list(self.commands),
            "kernel_cmdline": self.kernel_cmdline,
            "disk_size_gib": self.disk_size_gib,
        }

    @property
    def digest(self) -> str:
        """SHA-256 of the resolved content: equal digests mean equal images."""
        blob = json.dumps(self.content(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def delta_from_base(self) -> tuple[tuple[str, ...], tuple[FileEntry, ...], tuple[str, ...]]:
        """The packages, files and commands this spec adds on top of its base."""
        if self.base is None:
            return self.packages, self.files, self.commands
        base_pkgs = set(self.base.packages)
        return (
            tuple(p for p in self.packages if p not in base_pkgs),
            self.files[len(self.base.files):],
            self.commands[len(self.base.commands):],
        )


def load_spec(path: Path, _seen: tuple[Path, ...] = ()) -> ImageSpec:
    """Load and validate the spec at ``path``, resolving ``base`` chains.

    Raises :class:`SpecError` naming the file and key for anything malformed.
    """
    path = path.resolve()
    if path in _seen:
        raise SpecError(path, "base", "circular base chain: " + " -> ".join(map(str, _seen)))
    if not path.is_file():
        raise InputError(f"{path}: image spec not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InputError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file") from None
    if not isinstance(raw, dict):
        raise SpecError(path, "(top level)", "expected a mapping of keys")
    unknown = sorted(set(map(str, raw)) - KNOWN_KEYS)
    if unknown:
        raise SpecError(path, unknown[0], f"unknown key (known: {', '.join(sorted(KNOWN_KEYS))})")

    base: ImageSpec | None = None
    if "base" in raw:
        base_ref = _string(raw, "base", path)
        base_path = base_spec_path(path, base_ref)
        if not base_path.is_file():
            known = ", ".join(sorted(p.stem for p in builtin_specs_dir().glob("*.yaml")))
            raise SpecError(path, "base", f"{base_ref!r}: no spec file {base_path} and no "
                            f"built-in spec of that name (built-in: {known})")
        base = load_spec(base_path, (*_seen, path))

    release = _string(raw, "release", path) if "release" in raw else (base.release if base else "")
    if not release:
        raise SpecError(path, "release", "missing (one of: " + ", ".join(RELEASES) + ")")
    if release not in RELEASES:
        raise SpecError(path, "release", f"unknown release {release!r} (one of: {', '.join(RELEASES)})")
    if base and release != base.release:
        raise SpecError(path, "release", f"{release!r} differs from the base's {base.release!r}")

    packages = _string_list(raw, "packages", path)
    for pkg in packages:
        if not _PACKAGE_RE.match(pkg):
            raise SpecError(path, "packages", f"{pkg!r} is not a Debian package name")
    commands = _string_list(raw, "commands", path)
    files = _files(raw, path)
    cmdline = _string(raw, "kernel_cmdline", path) if "kernel_cmdline" in raw else ""
    size = raw.get("disk_size_gib", base.disk_size_gib if base else 4)
    if not isinstance(size, int) or isinstance(size, bool) or not 2 <= size <= 64:
        raise SpecError(path, "disk_size_gib", f"expected an integer from 2 to 64, got {size!r}")

    name = _string(raw, "name", path) if "name" in raw else path.stem
    return ImageSpec(
        name=name,
        path=path,
        release=release,
        packages=(base.packages if base else ()) + tuple(p for p in packages
                                                         if not base or p not in base.packages),
        files=(base.files if base else ()) + files,
        commands=(base.commands if base else ()) + commands,
        kernel_cmdline=" ".join(filter(None, [base.kernel_cmdline if base else "", cmdline])),
        disk_size_gib=size,
        description=str(raw.get("description", "")),
        base=base,
    )


def _string(raw: dict[str, Any], key: str, path: Path) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(path, key, f"expected a non-empty string, got {value!r}")
    return value.strip()


def _string_list(raw: dict[str, Any], key: str, path: Path) -> tuple[str, ...]:
    value = raw.get(key, [])
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SpecError(path, key, "expected a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _files(raw: dict[str, Any], path: Path) -> tuple[FileEntry, ...]:
    value = raw.get("files", [])
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SpecError(path, "files", "expected a list of {path, content|source, mode}")
    entries = []
    for index, item in enumerate(value):
        key = f"files[{index}]"
        if not isinstance(item, dict):
            raise SpecError(path, key, "expected a mapping with 'path' and 'content' or 'source'")
        target = _tree_path(path, f"{key}.path", item.get("path"))
        if ("content" in item) == ("source" in item):
            raise SpecError(path, key, "give exactly one of 'content' or 'source'")
        if "content" in item:
            content = item["content"]
            if not isinstance(content, str):
                raise SpecError(path, f"{key}.content", "expected a string")
        else:
            content = _source_text(path, f"{key}.source", item["source"])
        mode = item.get("mode", "0644")
        try:
            mode_int = int(str(mode), 8)
        except ValueError:
            raise SpecError(path, f"{key}.mode",
                            f"expected an octal mode like '0644', got {mode!r}") from None
        entries.append(FileEntry(target, content, mode_int))
    return tuple(entries)


def _tree_path(spec: Path, key: str, target: object) -> str:
    """A file's ``path`` in the image tree, normalized; one that leaves the tree is refused."""
    if not isinstance(target, str) or not target:
        raise SpecError(spec, key, f"expected an absolute path, got {target!r}")
    if ".." in target.split("/"):
        raise SpecError(spec, key, f"{target!r} leaves the image tree ('..' is not allowed)")
    if not target.startswith("/"):
        raise SpecError(spec, key, f"expected an absolute path, got {target!r}")
    if "\0" in target:
        raise SpecError(spec, key, f"{target!r} contains a NUL byte")
    normal = posixpath.normpath(target)
    if normal in ("/", "//"):
        raise SpecError(spec, key, f"{target!r} names the root of the tree, not a file")
    return "/" + normal.lstrip("/")


def _source_text(spec: Path, key: str, source: object) -> str:
    """The text of a file's ``source``: a file in the spec's own folder (or below it)."""
    if not isinstance(source, str) or not source:
        raise SpecError(spec, key, f"expected a file name relative to the spec, got {source!r}")
    folder = spec.parent.resolve()
    resolved = (folder / source).resolve()
    if not resolved.is_relative_to(folder):
        raise SpecError(spec, key, f"{source!r} is outside the spec's folder {folder}")
    if not resolved.is_file():
        raise SpecError(spec, key, f"file not found: {resolved}")
    try:
        return resolved.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(spec, key, f"cannot read {resolved} as text: {exc}") from None
