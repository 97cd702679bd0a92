"""Scenario files: the shipped ones load; bad input is one InputError line naming the file,
the key path and the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from distrogate.errors import InputError
from distrogate.scenario.model import (
    AddStep,
    Check,
    CheckStep,
    FaultKind,
    FaultStep,
    Role,
    SwitchoverStep,
    as_control,
    images_needed,
)
from distrogate.scenario.schema import key_path, load, load_scenarios

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SHIPPED = ("rolling-replace", "replace-all-at-once", "rolling-replace-with-faults")


def base() -> dict[str, Any]:
    """A small valid scenario to break in one place."""
    return {
        "name": "t",
        "description": "a test",
        "cluster": {"nodes": 3, "volume_gib": 2},
        "service": {"source": "container", "ipsec": True},
        "database": {"locale": "en_US.UTF-8"},
        "data": {"rows": 100, "text_index": True},
        "load": {"writers": 2, "rate": 20},
        "steps": [
            {"add": {"node": "n4", "image": "candidate"}},
            {"catch_up": {"node": "n4", "max_lag_bytes": 1024}},
            {"switchover": {"to": "n4"}},
            {"remove": {"node": "n1"}},
            {"check": {"what": ["converge", "no_lost_writes"]}},
        ],
    }


def write(tmp_path: Path, doc: Any, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_every_shipped_scenario_loads() -> None:
    scenarios = {s.name: s for s in load_scenarios(SCENARIOS)}
    assert set(SHIPPED) <= set(scenarios)
    for scenario in scenarios.values():
        assert scenario.cluster.nodes >= 2
        assert images_needed(scenario) == (Role.BASELINE, Role.CANDIDATE)
        assert images_needed(as_control(scenario)) == (Role.BASELINE,)
        assert isinstance(scenario.steps[-1], CheckStep)
        assert Check.NO_LOST_WRITES in scenario.steps[-1].what
        assert scenario.load.writers * scenario.load.rate <= 100  # modest under TCG


def test_the_faults_scenario_kills_the_primary_of_that_moment() -> None:
    scenario = load(SCENARIOS / "rolling-replace-with-faults.yaml")
    faults = [s for s in scenario.steps if isinstance(s, FaultStep)]
    assert [(f.fault, f.node) for f in faults] == [(FaultKind.KILL_PRIMARY, "n1"),
                                                   (FaultKind.PARTITION, "n4")]
    assert [s.to for s in scenario.steps if isinstance(s, SwitchoverStep)] == ["n6"]


def test_a_valid_scenario_gives_typed_steps(tmp_path: Path) -> None:
    scenario = load(write(tmp_path, base()))
    assert scenario.initial_nodes() == ("n1", "n2", "n3")
    assert scenario.steps[0] == AddStep(node="n4", image=Role.CANDIDATE)
    assert scenario.load.rate == 20.0
    assert scenario.path == tmp_path / "s.yaml"
    assert scenario.cluster.backup_every_s == 600  # the default schedule
    every_add = load(write(tmp_path, set_in(base(), ("cluster", "backup_every_s"), 0), "b.yaml"))
    assert every_add.cluster.backup_every_s == 0


def set_in(doc: dict[str, Any], dotted: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    target: Any = doc
    for part in dotted[:-1]:
        target = target[part]
    target[dotted[-1]] = value
    return doc


BAD = [
    ("unknown step", ("steps", 2), {"upgrade": {"to": "n4"}},
     "steps[2].upgrade: unknown step kind"),
    ("one node", ("cluster", "nodes"), 1, "cluster.nodes: expected at least 2, got 1"),
    ("node that does not exist", ("steps", 2), {"switchover": {"to": "n7"}},
     "steps[2].switchover.to: no node 'n7' at this point (nodes: n1, n2, n3, n4)"),
    ("unknown top key", ("nodes",), 3, "nodes: unknown key"),
    ("unknown nested key", ("load", "threads"), 4, "load.threads: unknown key"),
    ("bad type", ("cluster", "nodes"), "three", "cluster.nodes: expected a whole number, "
                                               "got 'three'"),
    ("bool is not a number", ("load", "rate"), True, "load.rate: expected a number"),
    ("bad enum", ("service", "source"), "docker", "service.source: unknown value 'docker'"),
    ("two kinds in a step", ("steps", 0), {"add": {"node": "n4", "image": "candidate"},
                                          "remove": {"node": "n2"}},
     "steps[0]: a step is a mapping with exactly one key"),
    ("missing key", ("steps", 0), {"add": {"node": "n4"}}, "steps[0].add.image: missing"),
    ("remove the primary", ("steps", 3), {"remove": {"node": "n4"}},
     "steps[3].remove.node: 'n4' is the primary at this point; switch over"),
    ("add a node twice", ("steps", 1), {"add": {"node": "n2", "image": "baseline"}},
     "steps[1].add.node: 'n2' is already in the cluster"),
    ("catch up the primary", ("steps", 1), {"catch_up": {"node": "n1"}},
     "steps[1].catch_up.node: 'n1' is the primary"),
    ("fault without node", ("steps", 1), {"fault": {"kind": "partition"}},
     "steps[1].fault.node: missing"),
    ("kill a standby as primary", ("steps", 1), {"fault": {"kind": "kill_primary", "node": "n2"}},
     "steps[1].fault.node: kill_primary names 'n2', but the primary at this point is 'n1'"),
    ("unknown check", ("steps", 4, "check", "what"), ["converge", "vibes"],
     "steps[4].check.what[1]: unknown value 'vibes'"),
    ("negative backup schedule", ("cluster", "backup_every_s"), -1,
     "cluster.backup_every_s: expected at least 0, got -1"),
]


@pytest.mark.parametrize(("what", "where", "value", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_naming_file_and_key(tmp_path: Path, what: str,
                                                   where: tuple[str | int, ...], value: Any,
                                                   message: str) -> None:
    path = write(tmp_path, set_in(base(), where, value))
    with pytest.raises(InputError) as caught:
        load(path)
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: ")
    assert message in text


def test_a_node_named_after_its_removal_is_an_error(tmp_path: Path) -> None:
    doc = base()
    doc["steps"].append({"catch_up": {"node": "n1"}})
    path = write(tmp_path, doc)
    with pytest.raises(InputError, match=r"steps\[5\].catch_up.node: no node 'n1' at this "
                                         r"point: it was removed at steps\[3\]"):
        load(path)
    doc["steps"][5] = {"add": {"node": "n1", "image": "candidate"}}
    with pytest.raises(InputError, match=r"steps\[5\].add.node: 'n1' was removed"):
        load(write(tmp_path, doc))


def test_a_key_given_twice_and_broken_yaml_are_errors_with_a_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("name: a\nname: b\n")
    with pytest.raises(InputError, match=r"dup.yaml: line 2: not valid YAML: key 'name' is "
                                         r"given twice"):
        load(path)
    path.write_text("name: [unclosed\n")
    with pytest.raises(InputError, match=r"dup.yaml: line \d+: not valid YAML"):
        load(path)
    path.write_text("- a list\n")
    with pytest.raises(InputError, match=r"dup.yaml: \(top\): expected a mapping"):
        load(path)


def test_a_folder_with_two_scenarios_of_one_name_or_none_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no scenario files"):
        load_scenarios(tmp_path)
    write(tmp_path, base(), "a.yaml")
    write(tmp_path, base(), "b.yaml")
    with pytest.raises(InputError, match=r"b.yaml: name: 't' is also the name of .*a.yaml"):
        load_scenarios(tmp_path)


def test_key_paths_read_as_written() -> None:
    assert key_path(["steps", 3, "switchover", "to"]) == "steps[3].switchover.to"
    assert key_path([]) == "(top)"
