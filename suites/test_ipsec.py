"""IPsec: the cluster-internal IPv6 IPsec network, between new nodes and across old and new.

Three pairs of nodes, each on its own isolated IPv6 network: baseline↔baseline (the fleet
today), candidate↔candidate (after the roll-forward) and candidate↔baseline (the middle of
every roll-forward). Each pair gets the configuration a management agent writes for the
promoted image (the candidate gets it unchanged), and runs the steps of
:mod:`distrogate.ipsec.pair`: a kernel-only SA with static keys, the configuration loads, the
SA comes up within a bound, ping6 through it, ESP on the wire (a host-side capture; a payload
marker must never appear in cleartext), the xfrm counters grow, large packets, the IKE daemon
restarting, a rekey with short lifetimes, a peer rebooting.

Each step on candidate↔candidate and on candidate↔baseline is a check judged against the same
step on baseline↔baseline (:mod:`distrogate.ipsec.judge`): ``<step>:<pair>`` is the item a
waiver names. candidate↔baseline failing while candidate↔candidate works is an *interop
regression*. Findings carry the IKE daemon's log lines of both sides, ``ip xfrm state`` /
``policy`` and the pcap.

Settings: the policy's ``suites: {ipsec: {...}}`` (:mod:`distrogate.ipsec.settings`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from distrogate.differential import DeltaStatus
from distrogate.images.artifact import ImageArtifact
from distrogate.ipsec.judge import ARROWS, BB, CB, CC, StepRule, check_id
from distrogate.ipsec.pair import TITLES, PairPlan, PairResult, run_pairs
from distrogate.ipsec.settings import IpsecSettings
from distrogate.lab.run import LabRun
from distrogate.lab.topology import NetworkSpec, NodeSpec, Topology, TopologySpec, realise
from fixtures.recording import Recorder
from fixtures.suites import suite_settings

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.lab_heavy]
log = logging.getLogger(__name__)

#: pair → (network, node a, image of a, node b, image of b); ``a`` initiates, ``b`` is restarted
PAIRS = {
    BB: ("ipsec-bb", "bb1", "baseline", "bb2", "baseline"),
    CC: ("ipsec-cc", "cc1", "candidate", "cc2", "candidate"),
    CB: ("ipsec-cb", "cbc", "candidate", "cbb", "baseline"),
}


def topology_spec(settings: IpsecSettings) -> TopologySpec:
    """One isolated network per pair (with IPv4 too when the policy's families ask for it)."""
    ipv4 = "ipv4" in settings.families
    return TopologySpec(
        networks=tuple(NetworkSpec(net, ipv4=ipv4) for net, *_ in PAIRS.values()),
        nodes=tuple(node for net, a, ia, b, ib in PAIRS.values()
                    for node in (NodeSpec(a, ia, (net,)), NodeSpec(b, ib, (net,)))))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One ``test_step`` per step the policy asks for (``suites.ipsec.steps``; all of them by
    default): a step left out is not a test, rather than a skipped one."""
    if "step" in metafunc.fixturenames:
        settings = suite_settings(metafunc.config, "ipsec")
        assert isinstance(settings, IpsecSettings)
        metafunc.parametrize("step", settings.steps)


@dataclass
class IpsecRun:
    """Every pair's results and the suite's wall time."""

    results: dict[str, PairResult]
    wall_seconds: float
    workdir: Path


@pytest.fixture(scope="module")
def ipsec_run(lab_run: LabRun, candidate_image: ImageArtifact, baseline_image: ImageArtifact,
              suite_config: IpsecSettings, run_dir: Path) -> Iterator[IpsecRun]:
    """The three pairs realised on isolated IPv6 networks, every step run on each."""
    started = time.monotonic()
    workdir = run_dir / "ipsec"
    workdir.mkdir(parents=True, exist_ok=True)
    net: Topology = realise(lab_run, topology_spec(suite_config), {"candidate": candidate_image,
                                            "baseline": baseline_image})
    try:
        plans = [PairPlan(pair, network, net.node(a), net.node(b))
                 for pair, (network, a, _, b, _) in PAIRS.items()]
        results = run_pairs(plans, suite_config, workdir,
                            lambda network, path: net.capture(network, path))
        yield IpsecRun(results, time.monotonic() - started, workdir)
    finally:
        net.close()


def test_every_pair_ran_every_step(ipsec_run: IpsecRun, suite_config: IpsecSettings,
                                   record: Recorder) -> None:
    """Every step has an observation on every pair; records the suite's wall time, the
    implementations and the observations."""
    record.measure("ipsec_suite_wall_time", ipsec_run.wall_seconds, "s",
                   note="3 pairs (6 nodes, warm), every step")
    doc = {pair: {"implementations": r.implementations, "seconds": r.seconds,
                  "observations": {s: o.value for s, o in r.observations.items()}}
           for pair, r in ipsec_run.results.items()}
    path = ipsec_run.workdir / "pairs.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    record.artifact("ipsec pairs", path, "json")
    for pair, result in ipsec_run.results.items():
        missing = sorted(set(suite_config.steps) - set(result.observations))
        assert not missing, f"{pair}: steps missing: {missing}"


def _evidence_text(result: PairResult, step: str) -> str:
    parts = []
    for side in result.evidence.get(step, []):
        parts.append(f"== {side['node']} ({side['implementation']})\n"
                     f"-- IKE daemon log\n{side['ike_log']}\n-- SAs\n{side['sas']}\n"
                     f"-- ip xfrm state\n{side['xfrm_state']}\n"
                     f"-- ip xfrm policy\n{side['xfrm_policy']}\n")
    return "\n".join(parts)


def test_step(step: str, ipsec_run: IpsecRun, suite_config: IpsecSettings,
              record: Recorder) -> None:
    """One step on candidate↔candidate and candidate↔baseline, each judged against
    baseline↔baseline; a regression is a finding with both sides' logs, xfrm state and
    policy, and the pcap."""
    results = ipsec_run.results
    bound = suite_config.sa_up_seconds if step == "sa_up" else 0.0
    regressions = []
    for pair in (CC, CB):
        cid = check_id(step, pair)
        record.observe(cid, "baseline", results[BB].observations[step])
        record.observe(cid, "candidate", results[pair].observations[step])
        rule = StepRule(step, pair, interop_ok=results[CC].ok(step) if pair == CB else None,
                        bound=bound)
        delta = record.compare(cid, rule, title=f"{ARROWS[pair]}: {TITLES[step]}")
        if delta.status is DeltaStatus.REGRESSION:
            regressions.append(delta.detail)
            evidence = ipsec_run.workdir / f"{step}-{pair}.txt"
            evidence.write_text(f"{delta.detail}\n\n{_evidence_text(results[pair], step)}"
                                f"\n== the baseline pair ({ARROWS[BB]})\n"
                                f"{_evidence_text(results[BB], step) or 'passed'}\n")
            record.artifact(f"{step} on {pair}: logs, xfrm state and policy", evidence, "text")
            pcap = results[pair].artifacts.get("pcap")
            if pcap is not None and pcap.exists():
                record.artifact(f"capture of {ARROWS[pair]}", pcap, "pcap")
            record.finding(delta.detail.split(":")[0] + f" ({ARROWS[pair]}, step {step})",
                           delta.detail,
                           {"pair": pair, "step": step,
                            "implementations": results[pair].implementations,
                            "baseline_pair": results[BB].observations[step].value,
                            "evidence": results[pair].evidence.get(step, [])},
                           artifact=evidence)
    assert not regressions, "; ".join(regressions)
