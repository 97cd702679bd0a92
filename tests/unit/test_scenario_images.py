"""What image mode asks of the images, checked before anything boots (check_images)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from distrogate.errors import InputError
from distrogate.images.artifact import BootMode, ImageArtifact, ImageManifest
from distrogate.scenario.images import check_images
from distrogate.scenario.schema import load

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def image(name: str, packages: list[str] | None) -> ImageArtifact:
    manifest: dict[str, Any] = {} if packages is None else {"packages": packages}
    return ImageArtifact(name, Path("/nonexistent"), Path("/nonexistent/disk.qcow2"), "qcow2",
                         BootMode.DIRECT, cast(ImageManifest, manifest))


@pytest.fixture
def image_mode(tmp_path: Path) -> Any:
    text = (SCENARIOS / "rolling-replace.yaml").read_text()
    path = tmp_path / "image-mode.yaml"
    path.write_text(text.replace("source: container", "source: image"))
    return load(path)


def test_debian_servers_pass_and_imported_images_are_left_to_the_guest(image_mode: Any) -> None:
    check_images([image_mode], {"baseline": image("promoted", ["libc6", "postgresql-15"]),
                                "candidate": image("imported", None)})


def test_an_image_without_a_server_is_named(image_mode: Any) -> None:
    with pytest.raises(InputError, match=r"image-mode.yaml: .*the candidate image cand has no "
                                         r"PostgreSQL server package"):
        check_images([image_mode], {"candidate": image("cand", ["libc6", "postgresql-client-15"])})


def test_a_fedora_server_is_named_as_a_layout_image_mode_does_not_run(image_mode: Any) -> None:
    with pytest.raises(InputError, match=r"ships PostgreSQL as postgresql-server; image mode "
                                         r"runs Debian's postgresql-common layout only"):
        check_images([image_mode], {"candidate": image("fedora", ["glibc", "postgresql-server"])})
