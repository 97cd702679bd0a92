"""The Debian archive URI from this machine's own apt configuration.

Images are built from whatever archive the host itself uses (a local mirror, a proxy, a
snapshot): nothing about a registry's host name is written into distrogate.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)

APT_DIR = Path("/etc/apt")
_ONE_LINE = re.compile(r"^\s*deb\s+(\[[^\]]*\]\s+)?(?P<uri>\S+)\s+(?P<suite>\S+)\s+(?P<comps>.*)$")


def _entries(apt_dir: Path) -> list[tuple[str, list[str], list[str]]]:
    """(uri, suites, components) for every ``deb`` entry, in apt's reading order."""
    found: list[tuple[str, list[str], list[str]]] = []
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line:
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if "deb" not in fields.get("types", "").split() or fields.get("enabled") == "no":
                    continue
                for uri in fields.get("uris", "").split():
                    found.append((uri, fields.get("suites", "").split(),
                                  fields.get("components", "").split()))
        elif path.suffix == ".list" or path.name == "sources.list":
            for line in text.splitlines():
                match = _ONE_LINE.match(line)
                if match:
                    found.append((match["uri"], [match["suite"]], match["comps"].split()))
    return found


def debian_mirror(apt_dir: Path = APT_DIR) -> str | None:
    """The URI of the host's Debian archive (the entry serving a plain Debian suite's main).

    Returns None when the host has none; mmdebstrap then uses its own default.
    """
    plain = ("bullseye", "bookworm", "trixie", "forky", "sid", "stable", "testing", "unstable")
    for uri, suites, components in _entries(apt_dir):
        if "main" in components and any(s in plain for s in suites):
            log.debug("Debian archive from host apt configuration: %s", uri)
            return uri
    return None
