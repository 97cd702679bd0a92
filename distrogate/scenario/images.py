"""What a scenario asks of the images, checked before anything boots."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from distrogate.errors import InputError
from distrogate.images.artifact import ImageArtifact
from distrogate.scenario.model import Scenario, ServiceSource

DEBIAN_SERVER = re.compile(r"postgresql-\d+")  # postgresql-common's versioned layout
OTHER_SERVER = re.compile(r"postgresql-server|postgresql\d*-server")  # Fedora, RHEL, SUSE


def check_images(scenarios: Iterable[Scenario], images: Mapping[str, ImageArtifact]) -> None:
    """Raise :class:`InputError` (one line, naming the scenario file and the image) when a
    scenario runs PostgreSQL from the image (``service.source: image``) and a built image has
    no PostgreSQL server package of Debian's versioned layout (``postgresql-<major>``; a
    Fedora-style ``postgresql-server`` is named as unsupported). An imported image has no
    package list: its node finds out in the guest when it starts."""
    for scenario in scenarios:
        if scenario.service.source is not ServiceSource.IMAGE:
            continue
        for role, image in images.items():
            if "packages" not in image.manifest:
                continue
            packages = image.manifest["packages"]
            if any(DEBIAN_SERVER.fullmatch(p) for p in packages):
                continue
            other = next((p for p in packages if OTHER_SERVER.fullmatch(p)), None)
            where = f"{scenario.path or scenario.name}: service.source: image: the {role} " \
                    f"image {image.name}"
            if other is not None:
                raise InputError(f"{where} ships PostgreSQL as {other}; image mode runs "
                                 "Debian's postgresql-common layout only (use source: "
                                 "container)")
            raise InputError(f"{where} has no PostgreSQL server package (use source: "
                             "container)")
