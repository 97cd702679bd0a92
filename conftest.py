"""distrogate's pytest plugin: every module under fixtures/ (options, lab, images, machines,
result recording). ``pytest suites/`` gates the candidate image against the baseline."""

pytest_plugins = [
    "fixtures.options",
    "fixtures.session",
    "fixtures.machines",
    "fixtures.recording",
    "fixtures.collation",
]
