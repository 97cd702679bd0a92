"""Loading scenario files (YAML) into :class:`~distrogate.scenario.model.Scenario`, checked.

Two layers of checks, both before anything boots:

* the structure and types, against ``distrogate/schemas/scenario.schema.json`` (unknown keys,
  an unknown step kind, a step that is not a one-key mapping, wrong types, out of range
  values such as ``cluster.nodes`` below 2);
* what the steps mean, in code: the node set is followed through the sequence (``n1``..``nN``
  at the start, ``add`` puts a node in, ``remove`` takes it out, ``switchover`` moves the
  primary, which starts on ``n1``). A step may only name a node that is in the cluster at that
  point; a removed node's name may not come back; the primary may not be removed (switch over
  first) nor switched over to; ``catch_up`` waits for a standby, not the primary;
  ``kill_primary`` strikes the primary of that moment (its ``node``, when given, must be it).

Every problem raises :class:`~distrogate.errors.InputError` with one line:
``FILE: KEY.PATH: problem`` (for instance ``scenarios/x.yaml: steps[3].switchover.to: no
node 'n7' at this point (nodes: n1, n2, n4)``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from distrogate.errors import InputError
from distrogate.scenario.model import (
    AddStep,
    CatchUpStep,
    Check,
    CheckStep,
    Cluster,
    Data,
    Database,
    FaultKind,
    FaultStep,
    Load,
    RemoveStep,
    Role,
    Scenario,
    Service,
    ServiceSource,
    Step,
    StepKind,
    SwitchoverStep,
)

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1 << 20
_MAX_VALUE = 60


@cache
def json_schema() -> dict[str, Any]:
    """The scenario JSON Schema shipped with the package."""
    text = resources.files("distrogate").joinpath("schemas/scenario.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


class _Loader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (YAML would keep the last
    one silently: a second ``steps:`` would hide the first)."""


def _mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark)
        seen[key] = loader.construct_object(value_node, deep=True)  # type: ignore[no-untyped-call]
    return seen


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _short(value: Any) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def key_path(parts: Sequence[str | int]) -> str:
    """``['steps', 3, 'switchover', 'to']`` as ``steps[3].switchover.to`` (the top level is
    ``(top)``)."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top)"


def _in_steps(parts: Sequence[str | int]) -> bool:
    return len(parts) == 2 and parts[0] == "steps" and isinstance(parts[1], int)


def _describe(error: jsonschema.ValidationError) -> tuple[list[str | int], str]:
    """The key path and the problem of one schema error, worded for a person."""
    parts: list[str | int] = list(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    value: Any = error.instance
    wanted: Any = error.validator_value
    match error.validator:
        case "additionalProperties":
            known = list(schema.get("properties", {}))
            extra = sorted(str(k) for k in value if k not in known)
            what = "step kind" if _in_steps(parts) else "key"
            return [*parts, extra[0]], f"unknown {what} (known: {', '.join(known)})"
        case "required":
            missing = [k for k in wanted if k not in value]
            return [*parts, missing[0]], "missing"
        case "minProperties" | "maxProperties" if _in_steps(parts):
            kinds = ", ".join(str(k) for k in value) or "none"
            return parts, f"a step is a mapping with exactly one key, its kind (got: {kinds})"
        case "type":
            wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
            noun = {"object": "a mapping", "array": "a list", "integer": "a whole number",
                    "number": "a number", "string": "a string", "boolean": "true or false"}
            return parts, f"expected {noun.get(str(wanted), wanted)}, got {_short(value)}"
        case "enum":
            choices = ", ".join(str(c) for c in wanted)
            return parts, f"unknown value {_short(value)} (expected one of {choices})"
        case "minimum" | "exclusiveMinimum" | "maximum" | "exclusiveMaximum":
            bound = {"minimum": "at least", "exclusiveMinimum": "more than",
                     "maximum": "at most", "exclusiveMaximum": "less than"}[error.validator]
            return parts, f"expected {bound} {wanted}, got {_short(value)}"
        case "pattern":
            return parts, f"{_short(value)} does not match {wanted}"
        case "minItems":
            return parts, f"expected at least {wanted} item(s)"
        case "uniqueItems":
            return parts, "an item is repeated"
    return parts, " ".join(error.message.split())


def _document_order(error: jsonschema.ValidationError) -> list[tuple[int, int, str]]:
    return [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.absolute_path]


def _check_structure(doc: Any, source: object) -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    errors = sorted(validator.iter_errors(doc), key=_document_order)
    if errors:
        parts, problem = _describe(errors[0])
        raise InputError(f"{source}: {key_path(parts)}: {problem}")


class _Walk:
    """The node set followed through the steps (see the module)."""

    def __init__(self, nodes: Sequence[str], source: object) -> None:
        self.live = list(nodes)
        self.removed: dict[str, int] = {}
        self.primary = nodes[0]
        self.source = source

    def fail(self, where: str, problem: str) -> InputError:
        return InputError(f"{self.source}: {where}: {problem}")

    def need_live(self, name: str, where: str) -> None:
        if name in self.removed:
            raise self.fail(where, f"no node {name!r} at this point: it was removed at "
                                   f"steps[{self.removed[name]}]")
        if name not in self.live:
            raise self.fail(where, f"no node {name!r} at this point "
                                   f"(nodes: {', '.join(self.live)})")

    def step(self, index: int, kind: StepKind, body: Mapping[str, Any]) -> Step:
        at = f"steps[{index}].{kind}"
        match kind:
            case StepKind.ADD:
                name = body["node"]
                if name in self.removed:
                    raise self.fail(f"{at}.node", f"{name!r} was removed at steps"
                                                  f"[{self.removed[name]}]; a removed node's "
                                                  f"name may not be used again")
                if name in self.live:
                    raise self.fail(f"{at}.node", f"{name!r} is already in the cluster")
                self.live.append(name)
                return AddStep(node=name, image=Role(body["image"]))
            case StepKind.CATCH_UP:
                name = body["node"]
                self.need_live(name, f"{at}.node")
                if name == self.primary:
                    raise self.fail(f"{at}.node", f"{name!r} is the primary at this point; "
                                                  f"catch_up waits for a standby")
                return CatchUpStep(node=name,
                                   max_lag_bytes=int(body.get("max_lag_bytes", 0)),
                                   timeout=float(body.get("timeout", 300.0)))
            case StepKind.SWITCHOVER:
                name = body["to"]
                self.need_live(name, f"{at}.to")
                if name == self.primary:
                    raise self.fail(f"{at}.to", f"{name!r} is already the primary")
                self.primary = name
                return SwitchoverStep(to=name)
            case StepKind.REMOVE:
                name = body["node"]
                self.need_live(name, f"{at}.node")
                if name == self.primary:
                    raise self.fail(f"{at}.node", f"{name!r} is the primary at this point; "
                                                  f"switch over before removing it")
                self.live.remove(name)
                self.removed[name] = index
                return RemoveStep(node=name)
            case StepKind.FAULT:
                fault = FaultKind(body["kind"])
                name = body.get("node")
                if fault is FaultKind.KILL_PRIMARY:
                    if name is not None and name != self.primary:
                        self.need_live(name, f"{at}.node")
                        raise self.fail(f"{at}.node", f"kill_primary names {name!r}, but the "
                                                      f"primary at this point is "
                                                      f"{self.primary!r}")
                    name = self.primary
                elif name is None:
                    raise self.fail(f"{at}.node", "missing (only kill_primary may leave "
                                                  "it out)")
                self.need_live(name, f"{at}.node")
                return FaultStep(fault=fault, node=name,
                                 seconds=float(body.get("seconds", 10.0)))
            case StepKind.CHECK:
                return CheckStep(what=tuple(Check(c) for c in body["what"]))


def parse(doc: Any, source: object) -> Scenario:
    """The scenario in the parsed YAML document ``doc``; ``source`` names it in errors (the
    file). Raises :class:`InputError` (see the module)."""
    _check_structure(doc, source)
    cluster_raw = doc["cluster"]
    cluster = Cluster(nodes=cluster_raw["nodes"], volume_gib=cluster_raw.get("volume_gib", 4),
                      backup_every_s=cluster_raw.get("backup_every_s", Cluster.backup_every_s))
    service_raw = doc.get("service", {})
    service = Service(source=ServiceSource(service_raw.get("source", "container")),
                      ipsec=service_raw.get("ipsec", True))
    database = Database(**doc.get("database", {}))
    data = Data(**doc.get("data", {}))
    load_raw = doc.get("load", {})
    load = Load(writers=load_raw.get("writers", Load.writers),
                rate=float(load_raw.get("rate", Load.rate)))
    walk = _Walk([f"n{i}" for i in range(1, cluster.nodes + 1)], source)
    steps = []
    for index, raw in enumerate(doc["steps"]):
        (kind, body), = raw.items()
        steps.append(walk.step(index, StepKind(kind), body))
    return Scenario(name=doc["name"], description=" ".join(doc.get("description", "").split()),
                    cluster=cluster, service=service, database=database, data=data, load=load,
                    steps=tuple(steps), path=source if isinstance(source, Path) else None)


def load(path: Path) -> Scenario:
    """The scenario in the YAML file ``path``, checked (see the module)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the scenario: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise InputError(f"{path}: larger than {MAX_FILE_BYTES} bytes: not a scenario")
    try:
        doc = yaml.load(raw.decode("utf-8"), Loader=_Loader)  # a SafeLoader
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(top)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"{path}: {where}: not valid YAML: {' '.join(str(problem).split())}"
                         ) from None
    scenario = parse(doc, path)
    log.debug("scenario %s from %s: %d steps", scenario.name, path, len(scenario.steps))
    return scenario


def load_scenarios(directory: Path) -> tuple[Scenario, ...]:
    """Every scenario in ``directory`` (``*.yaml``, ``*.yml``; by file name), checked; two
    with one name, or none at all, is an input error."""
    if not directory.is_dir():
        raise InputError(f"{directory}: no such scenario folder")
    files = sorted(p for p in directory.iterdir()
                   if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise InputError(f"{directory}: no scenario files (*.yaml)")
    found: dict[str, Path] = {}
    scenarios = []
    for path in files:
        scenario = load(path)
        if scenario.name in found:
            raise InputError(f"{path}: name: {scenario.name!r} is also the name of "
                             f"{found[scenario.name]}")
        found[scenario.name] = path
        scenarios.append(scenario)
    return tuple(scenarios)
