"""Every values key the program gives a Helm chart is one the pinned chart version understands.

Helm drops unknown keys without a word, so a misspelt or moved key silently
turns a setting off. The keys of each pinned chart version (values.yaml plus
what its templates read; subtrees a template renders whole are `opaque`) are
kept in tests/fixtures/chart-values/, written by tools/chart_keys.py from the
chart's source at its release tag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import STATES, evaluate_state
from tools.chart_keys import flatten

KEYS_DIR = Path(__file__).parent / "fixtures" / "chart-values"
RELEASE = "kubernetes:helm.sh/v3:Release"


def load_keys(chart: str, version: str) -> tuple[set[str], set[str]]:
    path = KEYS_DIR / f"{chart}-{version}.keys"
    assert path.is_file(), f"no keys for {chart} {version}: regenerate them with tools/chart_keys.py"
    known: set[str] = set()
    opaque: set[str] = set()
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, marker = line.partition(" ")
        known.add(key)
        if marker == "opaque":
            opaque.add(key)
    return known, opaque


def unknown_keys(values: dict[str, Any], known: set[str], opaque: set[str]) -> list[str]:
    """Declared key paths the chart does not know, below no opaque subtree."""
    unknown = []
    for path in flatten(values):
        if path in known:
            continue
        # A list under an opaque key (`a.tolerations[].key`) is below it too.
        parts = path.replace("[]", "").split(".")
        prefixes = (".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1))
        if not any(prefix in opaque for prefix in prefixes):
            unknown.append(path)
    return unknown


def declared_releases() -> dict[tuple[str, str], list[dict[str, Any]]]:
    releases: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for state in STATES:
        for resource in evaluate_state(state).resources:
            if resource.type == RELEASE:
                key = (resource.inputs["chart"], resource.inputs["version"])
                releases.setdefault(key, []).append(resource.inputs.get("values") or {})
    return releases


RELEASES = declared_releases()


def test_the_program_declares_its_charts():
    assert {chart for chart, _ in RELEASES} == {
        "kube-prometheus-stack",
        "prometheus-yet-another-cloudwatch-exporter",
        "aws-load-balancer-controller",
    }


@pytest.mark.parametrize(("chart", "version"), sorted(RELEASES), ids=lambda value: value)
def test_every_values_key_exists_in_the_pinned_chart(chart, version):
    known, opaque = load_keys(chart, version)
    for values in RELEASES[(chart, version)]:
        assert unknown_keys(values, known, opaque) == []


def test_an_unknown_key_is_reported_and_opaque_subtrees_are_not():
    known, opaque = load_keys("prometheus-yet-another-cloudwatch-exporter", "0.47.0")
    assert unknown_keys({"service": {"enabled": True}}, known, opaque) == ["service.enabled"]
    known, opaque = load_keys("kube-prometheus-stack", "88.5.3")
    anything_alertmanager_reads = {"alertmanager": {"config": {"receivers": [{"sns_configs": [{"sigv4": {}}]}]}}}
    assert unknown_keys(anything_alertmanager_reads, known, opaque) == []
    assert unknown_keys({"grafana": {"persistance": {"enabled": True}}}, known, opaque) == [
        "grafana.persistance",
        "grafana.persistance.enabled",
    ]
