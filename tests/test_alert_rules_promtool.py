"""The declared alert rules checked by Prometheus's own tool, `promtool` (Debian package `prometheus`).

`promtool check rules` validates every PrometheusRule the program declares, in
every DR state and region role, annotations and templates included.
`promtool test rules` runs tests/promtool/*.test.yaml against the rules of the
standby region in steady state (the one set that holds every alert): synthetic
series that must fire, ones that must not, thresholds and `for:` durations.
Annotations are left out of the unit-test copy only: their text is checked by
`check rules`, and exact rendered descriptions would make every test a copy of
the wording.

Without promtool these tests are skipped with a reason; `.ci/run` installs it.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import STATES, evaluate_state

PROMTOOL = shutil.which("promtool")
UNIT_TESTS = sorted((Path(__file__).parent / "promtool").glob("*.test.yaml"))
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"

pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus); .ci/run installs it"
)


def declared_groups(state: str, role: str) -> list[dict[str, Any]]:
    """The rule groups of every PrometheusRule declared in the cluster of `role`."""
    rules = [
        resource
        for resource in evaluate_state(state).resources
        if resource.type == PROMETHEUS_RULE and resource.name.startswith(f"monitoring-{role}-")
    ]
    assert rules, f"no PrometheusRule declared for {role} in {state}"
    return [group for rule in rules for group in rule.inputs["spec"]["groups"]]


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def write_rules(directory: Path, groups: list[dict[str, Any]]) -> Path:
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def without_annotations(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stripped = copy.deepcopy(groups)
    for group in stripped:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return stripped


def run_unit_tests(directory: Path, groups: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    write_rules(directory, without_annotations(groups))
    for test_file in UNIT_TESTS:
        shutil.copy(test_file, directory / test_file.name)
    return promtool("test", "rules", *(test_file.name for test_file in UNIT_TESTS), cwd=directory)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", ["primary", "dr"])
def test_promtool_accepts_every_declared_rule(tmp_path, state, role):
    rules = write_rules(tmp_path, declared_groups(state, role))
    result = promtool("check", "rules", rules.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_refuses_a_broken_rule(tmp_path):
    """The harness can fail: a rule with an invalid expression and template is refused."""
    groups = declared_groups("steady", "dr")
    broken = copy.deepcopy(groups)
    broken[0]["rules"][0]["expr"] = "sum by (service (up"
    rules = write_rules(tmp_path, broken)
    result = promtool("check", "rules", rules.name, cwd=tmp_path)
    assert result.returncode != 0


def test_every_alert_fires_and_stays_quiet_as_the_documents_say(tmp_path):
    result = run_unit_tests(tmp_path, declared_groups("steady", "dr"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_changed_threshold_fails_the_unit_tests(tmp_path):
    """The unit tests pin the thresholds: an error-rate alert at 7 % instead of 5 % is caught."""
    groups = declared_groups("steady", "dr")
    for group in groups:
        for rule in group["rules"]:
            if rule["alert"] == "HighErrorRate":
                assert rule["expr"].endswith("> 0.05")
                rule["expr"] = rule["expr"].removesuffix("> 0.05") + "> 0.07"
    result = run_unit_tests(tmp_path, groups)
    assert result.returncode != 0
    assert "HighErrorRate" in result.stdout + result.stderr


def test_every_declared_alert_has_a_unit_test():
    tested = {
        case["alertname"]
        for test_file in UNIT_TESTS
        for test in yaml.safe_load(test_file.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    }
    declared = {
        rule["alert"]
        for state in STATES
        for role in ("primary", "dr")
        for group in declared_groups(state, role)
        for rule in group["rules"]
    }
    assert declared - tested == set(), "write a promtool unit test for each new alert"
