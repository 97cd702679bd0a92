"""distrogate: gate a candidate machine image against the promoted one on real VMs."""

__version__ = "0.1.0"
