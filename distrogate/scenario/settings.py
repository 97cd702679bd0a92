"""The roll-forward suite's settings: the policy's ``suites: {rollforward: {...}}`` section.

Keys (all optional):

``scenarios``
    The scenarios to run, by name (default: every file in ``directory``); an unknown name is
    an input error naming it and the known ones.
``directory``
    Where the scenario files are (default: the project's ``scenarios/``). Every file there
    that is chosen is loaded and checked when the policy loads, before anything boots: a
    bad scenario is one line naming the file, the key and the problem (exit 3).
``slowdown`` / ``slack_seconds``
    When a step or an unavailability window of the real run counts as *far longer* than the
    control's: longer than ``slowdown`` × the control's time plus ``slack_seconds``
    (defaults 3 and 30 s). One run a side gives no statistics; the rule is a bound relative
    to the control on the same lab, wide enough for TCG's noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distrogate.errors import InputError
from distrogate.scenario.model import Scenario
from distrogate.scenario.schema import load_scenarios
from distrogate.settingfields import names, number, section

KEYS = ("scenarios", "directory", "slowdown", "slack_seconds")
SCENARIOS_DIR = Path(__file__).resolve().parents[2] / "scenarios"


@dataclass(frozen=True)
class RollforwardSettings:
    """Typed settings of the roll-forward suite (see the module)."""

    scenarios: tuple[Scenario, ...] = ()
    slowdown: float = 3.0
    slack_seconds: float = 30.0

    def scenario(self, name: str) -> Scenario:
        """The chosen scenario called ``name``."""
        return next(s for s in self.scenarios if s.name == name)


def parse(raw: Mapping[str, Any], options: Mapping[str, Any], where: str
          ) -> RollforwardSettings:
    """The typed settings from the policy section ``raw``; raises :class:`InputError` naming
    the key or the scenario file."""
    raw = section(raw, KEYS, where)
    directory = raw.get("directory", str(SCENARIOS_DIR))
    if not isinstance(directory, str) or not Path(directory).is_dir():
        raise InputError(f"{where}.directory: not a directory: {directory!r}")
    found = load_scenarios(Path(directory))
    chosen = names(raw, "scenarios", [s.name for s in found], where, what="scenario",
                   allow_all=True)
    d = RollforwardSettings()
    return RollforwardSettings(
        scenarios=tuple(s for s in found if s.name in chosen),
        slowdown=number(raw, "slowdown", d.slowdown, 1.0, 100.0, where),
        slack_seconds=number(raw, "slack_seconds", d.slack_seconds, 0.0, 3600.0, where),
    )
