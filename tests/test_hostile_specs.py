"""Hostile image specs: a file path that leaves the tree (by ``..`` or through a symlink the
spec's own commands plant) and a ``source`` outside the spec's folder are refused with one line
naming the spec and the key, exit 3; nothing is written on the host and no build is left.
Spec commands see a minimal /dev and no network."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from distrogate import paths
from distrogate.images.resolve import resolve_spec
from tests.conftest import Cli

BOUND_S = 30.0


def _only_error_line(stderr: str, progress: bool = False) -> str:
    """The one error line (with ``progress``, after the build's step lines)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    if progress:
        lines = [line for line in lines if line.startswith("distrogate:")]
    assert len(lines) == 1 and lines[0].startswith("distrogate: error: "), stderr[-2000:]
    assert "Traceback" not in stderr
    return lines[0]


def _store(home: Path) -> set[str]:
    store = home / "images"
    return {p.name for p in store.iterdir()} if store.is_dir() else set()


@pytest.mark.parametrize(("files", "key", "expected"), [
    ("  - {path: ../../etc/x, content: pwned}\n", "files[0].path", "leaves the image tree"),
    ("  - {path: /srv/../../etc/x, content: pwned}\n", "files[0].path", "leaves the image tree"),
    ("  - {path: /etc/x, source: /etc/shadow}\n", "files[0].source", "outside the spec's folder"),
    ("  - {path: /etc/x, source: ../../../../../etc/shadow}\n", "files[0].source",
     "outside the spec's folder"),
], ids=["dotdot-relative", "dotdot-absolute", "source-etc-shadow", "source-dotdot-shadow"])
def test_hostile_spec_is_refused(cli: Cli, tmp_path: Path, files: str, key: str,
                                 expected: str) -> None:
    spec = tmp_path / "specs" / "hostile.yaml"
    spec.parent.mkdir()
    spec.write_text(f"base: promoted\nname: hostile\nfiles:\n{files}")
    entries = _store(cli.home)
    started = time.monotonic()
    result = cli("run", str(spec), "--", "true", timeout=120)
    elapsed = time.monotonic() - started
    print(f"{key}: exit {result.returncode} in {elapsed:.2f}s: {result.stderr.strip()}")
    assert result.returncode == 3
    line = _only_error_line(result.stderr)
    assert str(spec) in line and f"key '{key}'" in line and expected in line, line
    assert "pwned" not in line and "root:" not in line  # nothing of /etc/shadow is shown
    assert elapsed < BOUND_S
    assert not Path("/etc/x").exists()
    assert _store(cli.home) == entries
    assert not (cli.home / "labs").exists() or not any((cli.home / "labs").iterdir())


@pytest.mark.slow
def test_symlink_planted_by_the_specs_commands(tmp_path: Path) -> None:
    """A base spec's commands plant ``/opt/evil -> /etc``; the spec on it writes a file to
    ``/opt/evil/...``: refused, naming the spec and key, and the host's /etc is untouched.
    The same commands check that they see a minimal /dev and no network."""
    promoted = resolve_spec("promoted")
    assert promoted is not None
    home = tmp_path / "home"
    (home / "images").mkdir(parents=True)
    artifact = paths.image_store() / promoted.digest
    assert (artifact / "manifest.json").exists(), "the promoted image must be built"
    (home / "images" / promoted.digest).symlink_to(artifact)
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "planter.yaml").write_text(
        "base: promoted\nname: planter\ncommands:\n"
        "  - test -c /dev/null && test -c /dev/urandom && test ! -e /dev/vda"
        " && test ! -e /dev/kvm && test ! -e /dev/mem && test ! -e /dev/net/tun\n"
        "  - test \"$(ls /sys/class/net)\" = lo\n"
        "  - \"! touch /sys/kernel/distrogate 2>/dev/null\"\n"
        "  - ln -s /etc /opt/evil\n")
    target = "/opt/evil/distrogate-hostile-spec"
    hostile = specs / "hostile.yaml"
    hostile.write_text(f"base: planter.yaml\nname: hostile\nfiles:\n"
                       f"  - {{path: {target}, content: pwned}}\n")
    cli = Cli(home)
    started = time.monotonic()
    result = cli("image", "build", str(hostile), timeout=900)
    print(f"exit {result.returncode} in {time.monotonic() - started:.1f}s: {result.stderr[-600:]}")
    assert result.returncode == 3
    line = _only_error_line(result.stderr, progress=True)
    assert str(hostile) in line and "key 'files[0].path'" in line, line
    assert "leaves the image tree" in line and "/opt/evil -> /etc" in line, line
    assert not Path("/etc/distrogate-hostile-spec").exists()
    leftovers = [p.name for p in (home / "images").iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []
