"""The traffic fence in the program: what Route53 needs to keep a returning primary region out, in every state."""

from __future__ import annotations

import pytest

from automation.evaluate import Evaluation, evaluate_program
from components.traffic import FENCE_METRIC, FENCE_NAMESPACE
from tests.conftest import STATES, evaluate_state, prod_config

HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
RECORD = "aws:route53/record:Record"
ROLE = "aws:iam/role:Role"


def checks_by_type(evaluation: Evaluation) -> dict[str, list]:
    found: dict[str, list] = {}
    for check in evaluation.of_type(HEALTH_CHECK):
        found.setdefault(check.inputs["type"], []).append(check)
    return found


def test_the_fence_alarm_lives_in_the_dr_region_and_keeps_its_state_without_data(steady: Evaluation) -> None:
    """catalogue: route53.cloudwatch-alarm-check-constraints, cloudwatch.treat-missing-data-ignore-keeps-state"""
    fence = steady.outputs["dns"]["fence"]
    (alarm,) = [a for a in steady.of_type(ALARM) if a.inputs["name"] == fence["alarmName"]]
    assert alarm.region == steady.config.dr_region == fence["region"]
    assert (alarm.inputs["namespace"], alarm.inputs["metricName"]) == (FENCE_NAMESPACE, FENCE_METRIC)
    assert alarm.inputs["dimensions"] == fence["dimensions"] == {"Record": steady.config.app_fqdn}
    # Route53 supports standard-resolution metrics and the basic statistics only.
    assert alarm.inputs["statistic"] in ("Average", "Minimum", "Maximum", "Sum", "SampleCount")
    assert alarm.inputs["period"] >= 60 and "extendedStatistic" not in alarm.inputs
    assert alarm.inputs["treatMissingData"] == "ignore"
    assert (alarm.inputs["threshold"], alarm.inputs["comparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")


def test_two_checks_read_the_fence_and_keep_their_last_status_without_data(steady: Evaluation) -> None:
    """catalogue: route53.cloudwatch-metric-check-follows-the-alarm"""
    fence = steady.outputs["dns"]["fence"]
    metric_checks = checks_by_type(steady)["CLOUDWATCH_METRIC"]
    assert len(metric_checks) == 2
    for check in metric_checks:
        assert check.inputs["cloudwatchAlarmName"] == fence["alarmName"]
        assert check.inputs["cloudwatchAlarmRegion"] == steady.config.dr_region
        assert check.inputs["insufficientDataHealthStatus"] == "LastKnownStatus"
    assert sorted(bool(c.inputs.get("invertHealthcheck")) for c in metric_checks) == [False, True]


@pytest.mark.parametrize("state", STATES)
def test_each_record_carries_its_region_routing_check(state: str) -> None:
    """The primary region needs its endpoint AND the fence lowered; the DR region (fence-only, the default) the fence
    raised, whatever its endpoint: Route53 never sends users to a read-only DR region before drctl raises the fence.

    catalogue: route53.calculated-check-counts-healthy-children, route53.failover-all-unhealthy-answers-as-healthy
    """
    evaluation = evaluate_state(state)
    dns, cfg = evaluation.outputs["dns"], evaluation.config
    assert cfg.dns_failover_mode == "fence-only"
    calculated = {c.name: c for c in checks_by_type(evaluation)["CALCULATED"]}
    primary = calculated["dns-failover-routing-primary"].inputs
    dr = calculated["dns-failover-routing-dr"].inputs
    assert primary["childHealthchecks"] == [dns["healthChecks"][cfg.primary_region], dns["fence"]["loweredCheckId"]]
    assert primary["childHealthThreshold"] == 2
    assert dr["childHealthchecks"] == [dns["fence"]["raisedCheckId"]]
    assert dr["childHealthThreshold"] == 1
    records = {
        r.inputs["records"][0]: r.inputs["healthCheckId"] for r in evaluation.of_type(RECORD) if "slot" in r.name
    }
    assert records == {dns["endpoints"][region]: dns["routingChecks"][region] for region in evaluation.regions()}
    assert dns["fence"]["fencedRegion"] == cfg.primary_region


def test_health_check_mode_lets_route53_answer_a_healthy_dr_region_before_the_fence() -> None:
    """dnsFailoverMode: health-check: the DR region counts as healthy when its endpoint is OR the fence is raised."""
    evaluation = evaluate_program(prod_config(dnsFailoverMode="health-check"))
    dns, cfg = evaluation.outputs["dns"], evaluation.config
    dr = evaluation.one(HEALTH_CHECK, "dns-failover-routing-dr").inputs
    assert dr["childHealthchecks"] == [dns["healthChecks"][cfg.dr_region], dns["fence"]["raisedCheckId"]]
    assert dr["childHealthThreshold"] == 1
    # The primary's check is the same in both modes: the fence always keeps a returning primary out.
    primary = evaluation.one(HEALTH_CHECK, "dns-failover-routing-primary").inputs
    assert primary == evaluate_state("steady").one(HEALTH_CHECK, "dns-failover-routing-primary").inputs


def test_the_batch_replication_role_is_trusted_by_s3_batch_operations_only(steady: Evaluation) -> None:
    """catalogue: s3.batch-replication-job"""
    arn = steady.outputs["replication"]["batchRoleArn"]
    (role,) = [r for r in steady.of_type(ROLE) if r.inputs.get("name", "").endswith("s3-batch-repl")]
    assert role.inputs["name"] in arn
    assert "batchoperations.s3.amazonaws.com" in role.inputs["assumeRolePolicy"]
    (policy,) = [p for p in steady.resources if p.type == "aws:iam/rolePolicy:RolePolicy" and "batch" in p.name]
    assert "s3:InitiateReplication" in policy.inputs["policy"]
