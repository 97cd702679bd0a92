"""Turn what a user typed (a spec name, a spec path, an image file) into a bootable artifact."""

from __future__ import annotations

from pathlib import Path

from distrogate.errors import InputError
from distrogate.images.artifact import ImageArtifact
from distrogate.images.build import build_image
from distrogate.images.intake import import_image
from distrogate.images.spec import (
    SPEC_SUFFIXES,
    ImageSpec,
    builtin_spec,
    builtin_specs_dir,
    load_spec,
)


def spec_path(ref: str) -> Path | None:
    """The spec file ``ref`` names (``promoted`` → ``images/promoted.yaml``), or None."""
    path = Path(ref)
    if path.suffix in SPEC_SUFFIXES:
        return path
    if not path.exists():
        return builtin_spec(ref)
    return None


def resolve_spec(ref: str) -> ImageSpec | None:
    """The spec ``ref`` names, loaded; None if ``ref`` is not a spec."""
    path = spec_path(ref)
    return load_spec(path) if path is not None else None


def resolve_image(ref: str) -> ImageArtifact:
    """Build (or take from cache) a spec, or import an image file."""
    spec = resolve_spec(ref)
    if spec is not None:
        return build_image(spec)
    path = Path(ref)
    if path.exists() or "/" in ref or "." in path.name:
        return import_image(path)
    known = ", ".join(sorted(p.stem for p in builtin_specs_dir().glob("*.yaml")))
    raise InputError(f"{ref}: neither an image file nor a spec (built-in specs: {known})")
