"""Image specs: ``base:`` names a spec file next to the spec or a built-in spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from distrogate import paths
from distrogate.errors import InputError, SpecError
from distrogate.images.resolve import spec_path
from distrogate.images.spec import base_spec_path, load_spec

BUILTIN = paths.repo_root() / "images"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_spec_in_the_users_folder_derives_from_a_builtin_by_name(tmp_path: Path) -> None:
    mine = _write(tmp_path / "my-images" / "plus-pg.yaml",
                  "base: promoted\nname: promoted-plus-pg\npackages: [postgresql]\n")
    spec = load_spec(mine)
    promoted = load_spec(BUILTIN / "promoted.yaml")
    assert spec.base is not None
    assert spec.base.path == (BUILTIN / "promoted.yaml").resolve()
    assert spec.release == promoted.release
    assert spec.packages == (*promoted.packages, "postgresql")
    assert spec.delta_from_base()[0] == ("postgresql",)


def test_a_file_next_to_the_spec_wins_over_the_builtin_name(tmp_path: Path) -> None:
    own = _write(tmp_path / "promoted", "release: bullseye\npackages: [systemd]\n")
    mine = _write(tmp_path / "mine.yaml", "base: promoted\n")
    assert base_spec_path(mine, "promoted") == own
    assert load_spec(mine).release == "bullseye"


def test_relative_paths_stay_relative_to_the_spec(tmp_path: Path) -> None:
    """A path (a folder or a .yaml suffix) is never looked up among the built-ins."""
    mine = _write(tmp_path / "mine.yaml", "base: promoted.yaml\n")
    assert base_spec_path(mine, "promoted.yaml") == tmp_path / "promoted.yaml"
    with pytest.raises(SpecError, match=r"key 'base': 'promoted.yaml': no spec file"):
        load_spec(mine)
    sneaky = _write(tmp_path / "sneaky.yaml", "base: ../images/promoted\n")
    assert base_spec_path(sneaky, "../images/promoted") == tmp_path / "../images/promoted"
    with pytest.raises(SpecError, match="key 'base'"):
        load_spec(sneaky)


def test_an_unknown_base_name_lists_the_builtins(tmp_path: Path) -> None:
    mine = _write(tmp_path / "mine.yaml", "base: no-such-image\n")
    with pytest.raises(InputError, match=r"built-in: .*promoted"):
        load_spec(mine)


def test_the_command_line_and_base_read_a_name_alike(tmp_path: Path) -> None:
    mine = _write(tmp_path / "mine.yaml", "base: candidate\n")
    assert spec_path("candidate") == load_spec(mine).base.path  # type: ignore[union-attr]
