"""The cached-build skeleton and the artifact stores: each kind in its own store, each manifest
naming its kind; ``distrogate image list`` lists images only."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from distrogate import paths
from distrogate.artifacts import cached_build, read_manifest, write_manifest
from distrogate.cli import cmd_image_list
from distrogate.errors import InputError
from distrogate.images.artifact import ImageArtifact
from distrogate.nspawn import tree


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DISTROGATE_HOME", str(tmp_path / "home"))
    return paths.home()


def _image(directory: Path, name: str = "promoted") -> None:
    directory.mkdir(parents=True)
    (directory / "disk.qcow2").write_bytes(b"")
    write_manifest(directory, {
        "kind": "built", "name": name, "boot": "direct", "release": "bookworm",
        "glibc": "2.36-9+deb12u10", "kernel": "6.1.0-37-amd64",
        "disk": {"path": "disk.qcow2", "format": "qcow2", "sha256": "ab" * 32}})


def _tree(directory: Path) -> None:
    directory.mkdir(parents=True)
    (directory / tree.IMAGE_FILE).write_bytes(b"")
    write_manifest(directory, {
        "kind": "nspawn-tree", "machine": "pgbox", "release": "bookworm",
        "postgresql": {"version": "15", "unit": "postgresql@15-main.service"},
        "image": {"path": tree.IMAGE_FILE, "bytes": 0, "sha256": "cd" * 32}})


def test_image_list_after_a_gate_lists_images_only(home: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A gate leaves an nspawn tree (an older version kept it among the images): `image list`
    shows the images and no traceback (it used to stop with KeyError: 'disk')."""
    _image(paths.image_store() / ("12" * 32))
    _tree(paths.image_store() / "nspawn-0123")  # where an older version kept it
    _tree(tree.artifact_dir(tree.ContainerSpec()))
    (paths.image_store() / ".tmp-34").mkdir()  # a build under way
    assert cmd_image_list(argparse.Namespace()) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "KIND", "RELEASE"]
    assert [line.split()[:3] for line in lines[1:]] == [["promoted", "built", "bookworm"]]


def test_each_kind_has_its_own_store(home: Path) -> None:
    spec = tree.ContainerSpec()
    assert tree.artifact_dir(spec).parent == paths.nspawn_store()
    assert paths.nspawn_store() != paths.image_store()
    assert paths.sorter_store() not in (paths.image_store(), paths.nspawn_store())


def test_an_image_manifest_of_another_kind_is_refused(tmp_path: Path) -> None:
    _tree(tmp_path / "tree")
    with pytest.raises(InputError, match=r"not an image manifest \(kind 'nspawn-tree'\)"):
        ImageArtifact.load(tmp_path / "tree")
    assert read_manifest(tmp_path / "tree", ("built", "imported")) is None
    assert read_manifest(tmp_path / "tree", ("nspawn-tree",)) is not None
    assert read_manifest(tmp_path / "nothing", ("nspawn-tree",)) is None


def _load(directory: Path) -> str | None:
    manifest = read_manifest(directory, ("test",))
    return None if manifest is None else str(manifest["value"])


def test_cached_build_builds_once_then_serves_from_cache(tmp_path: Path) -> None:
    calls: list[Path] = []

    def build(work: Path) -> None:
        calls.append(work)
        assert work == tmp_path / ".tmp-key" and list(work.iterdir()) == []
        (work / "payload").write_text("x")
        write_manifest(work, {"kind": "test", "value": "built"})

    assert cached_build(tmp_path, "key", load=_load, build=build, what="test") == "built"
    assert cached_build(tmp_path, "key", load=_load, build=build, what="test") == "built"
    assert len(calls) == 1
    assert json.loads((tmp_path / "key" / "manifest.json").read_text())["kind"] == "test"
    assert not (tmp_path / ".tmp-key").exists()


def test_a_file_of_an_older_layout_is_replaced(tmp_path: Path) -> None:
    """The sorter was once a file ``dgsort-<digest>`` where its folder now goes."""
    (tmp_path / "key").write_text("an old binary")

    def build(work: Path) -> None:
        write_manifest(work, {"kind": "test", "value": "rebuilt"})

    assert cached_build(tmp_path, "key", load=_load, build=build, what="test") == "rebuilt"


def test_a_failed_build_leaves_nothing_behind_the_key(tmp_path: Path) -> None:
    (tmp_path / ".tmp-key").mkdir()
    (tmp_path / ".tmp-key" / "left-by-a-killed-build").write_text("")

    def build(work: Path) -> None:
        assert list(work.iterdir()) == []  # what a killed build left was cleared
        (work / "half").write_text("")
        raise RuntimeError("mmdebstrap failed")

    with pytest.raises(RuntimeError, match="mmdebstrap failed"):
        cached_build(tmp_path, "key", load=_load, build=build, what="test")
    assert not (tmp_path / "key").exists() and not (tmp_path / ".tmp-key").exists()


def test_a_manifest_names_its_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind"):
        write_manifest(tmp_path, {"name": "no kind"})
