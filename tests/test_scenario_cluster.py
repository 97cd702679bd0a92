"""The roll-forward cluster's operations on real VMs: a 2-node PostgreSQL cluster of the
promoted image, PostgreSQL in the nspawn container tree. The primary is initialised, backed
up with pgBackRest into the host side's repository (TLS server in the lab namespace), the
second node is restored from that backup and follows the primary; rows written on the
primary reach it; a controlled switchover makes it the primary and the old primary follows
it; amcheck is clean and the table checksums are equal on both; a point-in-time restore
from the repository holds every row; closing leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distrogate.images.artifact import ImageArtifact
from distrogate.lab.run import LabRun
from distrogate.nspawn.tree import build_container
from distrogate.scenario.cluster import Cluster
from distrogate.scenario.pgnode import container_spec
from fixtures.recording import Recorder

# roll-forward VM runs take 5-30 min here: make nightly, not make test
pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.nightly]

TABLE = "public.items"


def _write(cluster: Cluster, first: int, last: int) -> None:
    cluster.primary.sql(f"INSERT INTO {TABLE} SELECT g, 'item ' || g || ' é' "
                        f"FROM generate_series({first}, {last}) g")


def test_two_node_cluster(lab_run: LabRun, baseline_image: ImageArtifact, record: Recorder,
                          tmp_path: Path) -> None:
    """Backup, restore-and-follow, replication, switchover, amcheck, checksums, PITR."""
    tree = build_container(container_spec())
    cluster = Cluster(lab_run, {"baseline": baseline_image}, tree=tree, locale="en_US.UTF-8",
                      workdir=tmp_path / "pgbackrest")
    try:
        cluster.start({"db1": "baseline", "db2": "baseline"})
        db1, db2 = cluster.node("db1"), cluster.node("db2")
        assert cluster.primary is db1
        assert db2.in_recovery()
        db1.sql(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, name text NOT NULL)")
        db1.sql(f"CREATE INDEX items_name ON {TABLE} (name)")
        _write(cluster, 1, 500)
        cluster.catch_up("db2", max_lag_bytes=0, timeout=120)
        assert db2.sql(f"SELECT count(*), max(id) FROM {TABLE}") == [["500", "500"]]

        switch = cluster.switchover("db2")
        assert cluster.primary is db2
        assert not db2.in_recovery() and db1.in_recovery()
        _write(cluster, 501, 700)
        cluster.catch_up("db1", max_lag_bytes=0, timeout=120)

        checks = cluster.amcheck()
        assert all(c.clean for c in checks.values()), {n: c.output for n, c in checks.items()}
        sums = {n.name: n.table_checksum(TABLE) for n in (db1, db2)}
        assert sums["db1"] == sums["db2"] and sums["db1"][0] == 700, sums
        collations = {n.name: n.collation_versions() for n in (db1, db2)}
        assert all(not c.mismatch for found in collations.values() for c in found), collations
        locales = {c.locale for c in collations["db2"] if c.kind == "database"}
        assert "en_US.UTF-8" in locales, collations

        cluster.flush_archive()
        with cluster.repo.point_in_time(db1) as restored:
            assert restored.sql(f"SELECT count(*) FROM {TABLE}") == [["700"]]

        logs = cluster.logs()
        assert "db1" in logs and logs["db1"]["postgres"]
        for item in cluster.steps:
            record.measure(f"cluster_{item.name.replace(' ', '_')}", item.seconds, "s")
        record.measure("switchover_lag_bytes", switch.lag_bytes_before, "bytes")
        path = tmp_path / "steps.json"
        path.write_text(json.dumps([{"step": s.name, "seconds": s.seconds, **s.detail}
                                    for s in cluster.steps], indent=1, default=str))
        print(path.read_text())
    except BaseException:
        logs = tmp_path / "logs.json"
        logs.write_text(json.dumps(cluster.logs(), indent=1))
        record.artifact("cluster logs", logs, "json")
        print(logs.read_text())
        raise
    finally:
        cluster.close()
    assert not cluster.nodes
