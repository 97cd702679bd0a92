"""Where distrogate keeps its state: ``$DISTROGATE_HOME`` (default ``~/.cache/distrogate``)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The root of distrogate's caches and labs."""
    configured = os.environ.get("DISTROGATE_HOME")
    base = Path(configured) if configured else Path.home() / ".cache" / "distrogate"
    base.mkdir(parents=True, exist_ok=True)
    return base


def image_store() -> Path:
    """The image artifact cache."""
    return home() / "images"


def nspawn_store() -> Path:
    """The nspawn container tree cache (apart from the images: another kind of artifact)."""
    return home() / "nspawn"


def sorter_store() -> Path:
    """The collation sorter cache (the in-guest binary, built on the host)."""
    return home() / "collation"


def dnf_repo_store() -> Path:
    """The DNF suite's repository cache (signed RPMs and their metadata, built on the host)."""
    return home() / "dnf-repo"


def labs_dir() -> Path:
    """Where lab directories live unless ``--lab-dir`` says otherwise."""
    return home() / "labs"


def repo_root() -> Path:
    """The source checkout (for the built-in specs under ``images/``)."""
    return Path(__file__).resolve().parent.parent


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus random hex."""
    import secrets
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
