"""distrogate's pytest plugin: every module under fixtures/ (options, lab, images, machines,
result recording). ``pytest suites/`` gates the candidate image against the baseline."""

from fixtures import HARNESS_PLUGINS

pytest_plugins = HARNESS_PLUGINS
