"""Judging each fault cell against the promoted image, and the matrix of the report.

An observation is a :class:`~distrogate.differential.Value` of ``{"raw": cell, "wrapper":
cell}`` where each cell is :meth:`distrogate.dnf.guest.CellResult.observation`'s mapping
(``ok``, ``class``, ``step``, ``exit``, ``seconds``, ``requests``, ``consistent``, ...).

* a class the promoted image survives and the candidate does not, raw or through the
  wrapper, is a *regression* (so is a candidate that leaves a transaction half-applied where
  the promoted image does not);
* both fail raw and both survive through the wrapper: *unchanged*, said as "needs the
  wrapper";
* the candidate survives where the promoted image does not: *fixed*;
* both fail through the wrapper: *also fails on the promoted image*.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from distrogate.differential import DeltaStatus, Judgement, Observation, Value

MODES = ("raw", "wrapper")
NEEDS_WRAPPER = "needs the wrapper"


def _cells(obs: Observation | None) -> dict[str, dict[str, Any]]:
    value = obs.value if isinstance(obs, Value) else None
    if not isinstance(value, dict):
        return {m: {"ok": False, "class": "not observed"} for m in MODES}
    return {m: value.get(m) or {"ok": False, "class": "not observed"} for m in MODES}


def said(cell: Mapping[str, Any]) -> str:
    """One cell in words: ``survived in 3.2s (9 requests)`` or ``timeout at makecache
    (exit 1) after 10.4s (8 requests, 8 faults)``."""
    took = cell.get("seconds")
    when = f" in {took:.1f}s" if isinstance(took, int | float) else ""
    counts = f" ({cell.get('requests', 0)} requests, {cell.get('faults', 0)} faulted)"
    if cell.get("skipped"):
        return f"survived ({cell['skipped']})"
    if cell.get("ok"):
        return f"survived{when}{counts}"
    if cell.get("class") == "not observed":
        return "not observed"
    if not cell.get("consistent", True):
        return f"half-applied: {cell.get('consistency', '')}{counts}"
    exit_code = cell.get("exit")
    status = "killed at the bound" if exit_code is None else f"exit {exit_code}"
    return f"{cell.get('class')} at {cell.get('step')} ({status}){when}{counts}"


@dataclass(frozen=True)
class CellRule:
    """A fault cell on the candidate judged against the promoted image (see the module)."""

    cell: str
    name: str = "dnf-fault-cell"

    def decide(self, baseline: Observation | None, candidate: Observation | None) -> Judgement:
        """Compare raw and wrapper outcomes of both images."""
        base, cand = _cells(baseline), _cells(candidate)
        worse = [m for m in MODES if base[m].get("ok") and not cand[m].get("ok")]
        better = [m for m in MODES if cand[m].get("ok") and not base[m].get("ok")]
        sides = (f"candidate raw: {said(cand['raw'])}; wrapper: {said(cand['wrapper'])}; "
                 f"promoted raw: {said(base['raw'])}; wrapper: {said(base['wrapper'])}")
        if worse:
            half = [m for m in worse if not cand[m].get("consistent", True)]
            how = " and ".join("plain dnf" if m == "raw" else "the retry wrapper"
                               for m in worse)
            what = "leaves a transaction half-applied" if half else "does not survive it"
            return Judgement(DeltaStatus.REGRESSION,
                             f"regression: fault class {self.cell}: the promoted image survives "
                             f"it with {how}, the candidate {what}: {sides}")
        if better:
            return Judgement(DeltaStatus.FIXED, f"{self.cell}: the candidate survives where "
                                                f"the promoted image does not: {sides}")
        if not cand["wrapper"].get("ok"):
            return Judgement(DeltaStatus.ALSO_FAILS_ON_BASELINE,
                             f"{self.cell}: neither image survives it, even through the "
                             f"wrapper: {sides}")
        if not cand["raw"].get("ok"):
            return Judgement(DeltaStatus.UNCHANGED, f"{self.cell}: {NEEDS_WRAPPER}: both images "
                                                    f"fail it raw and survive it through the "
                                                    f"wrapper: {sides}")
        return Judgement(DeltaStatus.UNCHANGED, f"{self.cell}: both images survive it raw: "
                                                f"{sides}")


def verdict_word(baseline: Mapping[str, Any], candidate: Mapping[str, Any]) -> str:
    """The matrix's last column for one cell."""
    judgement = CellRule("cell").decide(Value(dict(baseline)), Value(dict(candidate)))
    if judgement.status is DeltaStatus.REGRESSION:
        return "REGRESSION"
    if judgement.status is DeltaStatus.FIXED:
        return "fixed"
    if judgement.status is DeltaStatus.ALSO_FAILS_ON_BASELINE:
        return "fails on both"
    if NEEDS_WRAPPER in judgement.detail:
        return NEEDS_WRAPPER
    return "survived"


def _td(cell: Mapping[str, Any]) -> str:
    css = "ok" if cell.get("ok") else "bad"
    short = ("survived" if cell.get("ok") else
             f"{cell.get('class')} ({cell.get('step') or '-'}, exit {cell.get('exit')})")
    took = cell.get("seconds")
    extra = f" {took:.1f}s" if isinstance(took, int | float) else ""
    extra += f" · {cell.get('requests', 0)} req" if not cell.get("skipped") else " · implied"
    return (f'<td class="{css}" title="{html.escape(said(cell))}">{html.escape(short)}'
            f'<br><small>{html.escape(extra)}</small></td>')


def matrix_html(rows: Mapping[str, Mapping[str, Mapping[str, Any]]],
                versions: Mapping[str, Mapping[str, str]], title: str) -> str:
    """The matrix (fault class × image × raw or wrapper) as one HTML page. ``rows``: cell →
    role → {"raw": cell, "wrapper": cell}; ``versions``: role → package → version."""
    head = "".join(f"<th>{html.escape(r)} {m}</th>" for r in ("baseline", "candidate")
                   for m in MODES)
    body = []
    for cell, sides in rows.items():
        tds = "".join(_td(sides[r][m]) for r in ("baseline", "candidate") for m in MODES)
        word = verdict_word(sides["baseline"], sides["candidate"])
        css = "bad" if word == "REGRESSION" else ""
        body.append(f"<tr><th>{html.escape(cell)}</th>{tds}"
                    f'<td class="{css}">{html.escape(word)}</td></tr>')
    vers = "".join(f"<li>{html.escape(role)}: " + ", ".join(
        f"{html.escape(k)} {html.escape(v)}" for k, v in sorted(pkgs.items())) + "</li>"
                   for role, pkgs in versions.items())
    return ("<!doctype html><html><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'\">"
            f"<title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif}table{border-collapse:collapse}"
            "td,th{border:1px solid #999;padding:3px 6px;font-size:90%}"
            "td.ok{background:#dfd}td.bad{background:#fdd}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><ul>{vers}</ul>"
            f"<table><tr><th>fault class @ target</th>{head}<th>verdict</th></tr>"
            + "".join(body) + "</table></body></html>\n")


def closing_note(rows: Mapping[str, Mapping[str, Mapping[str, Any]]], role: str) -> str:
    """Which cells ``role`` survives raw and which only through the wrapper (one line)."""
    raw = [c for c, s in rows.items() if s[role]["raw"].get("ok")]
    wrapped = [c for c, s in rows.items()
               if not s[role]["raw"].get("ok") and s[role]["wrapper"].get("ok")]
    neither = [c for c in rows if c not in raw and c not in wrapped]
    return (f"{role}: survives raw: {', '.join(raw) or 'none'}; only through the wrapper: "
            f"{', '.join(wrapped) or 'none'}; not at all: {', '.join(neither) or 'none'}")
