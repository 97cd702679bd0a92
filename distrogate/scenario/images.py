"""What a scenario asks of the images, checked before anything boots."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from distrogate.errors import InputError
from distrogate.images.artifact import ImageArtifact
from distrogate.scenario.model import Scenario, ServiceSource

SERVER_PACKAGE = re.compile(r"postgresql-\d+|postgresql-server")  # Debian, Fedora


def check_images(scenarios: Iterable[Scenario], images: Mapping[str, ImageArtifact]) -> None:
    """Raise :class:`InputError` (one line, naming the scenario file and the image) when a
    scenario runs PostgreSQL from the image (``service.source: image``) and a built image has
    no PostgreSQL server package. An imported image has no package list: its node finds out
    in the guest when it starts."""
    for scenario in scenarios:
        if scenario.service.source is not ServiceSource.IMAGE:
            continue
        for role, image in images.items():
            if "packages" not in image.manifest:
                continue
            if not any(SERVER_PACKAGE.fullmatch(p) for p in image.manifest["packages"]):
                raise InputError(f"{scenario.path or scenario.name}: service.source: image: "
                                 f"the {role} image {image.name} has no PostgreSQL server "
                                 "package (use source: container)")
