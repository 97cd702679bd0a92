"""The roll-forward suite's library: scenarios (YAML, checked when they load), the client load
that writes to the cluster through a real PostgreSQL driver and records every write, and the
Jepsen-style checker of that record against what the cluster holds afterwards."""
