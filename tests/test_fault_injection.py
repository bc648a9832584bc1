"""AWS FIS templates for live drills: declared only when enabled, each stopped by its region's abort alarm."""

from __future__ import annotations

import json

import pytest

from automation.evaluate import ACCOUNT_ID
from components.fault_injection import ABORT_DIMENSION, ABORT_METRIC, ABORT_NAMESPACE
from tests.conftest import evaluate_features

TEMPLATE = "aws:fis/experimentTemplate:ExperimentTemplate"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
REGIONS = {"primary": ("us-east-1", "us-west-2"), "dr": ("us-west-2", "us-east-1")}


def test_no_fault_injection_unless_the_stack_enables_it(steady):
    assert steady.of_type(TEMPLATE) == []
    assert steady.outputs["faultInjection"] is None
    assert not [a for a in steady.of_type(ALARM) if a.inputs["name"].endswith("drill-abort")]


@pytest.mark.parametrize("role", sorted(REGIONS))
def test_each_region_has_an_abort_alarm_drctl_can_trip(role):
    """catalogue: fis.stop-condition-alarm"""
    features = evaluate_features()
    region, _ = REGIONS[role]
    (alarm,) = [a for a in features.of_type(ALARM, region) if a.inputs["name"].endswith("drill-abort")]
    inputs = alarm.inputs
    assert (inputs["namespace"], inputs["metricName"]) == (ABORT_NAMESPACE, ABORT_METRIC)
    assert inputs["dimensions"] == {ABORT_DIMENSION: region}
    assert (inputs["comparisonOperator"], inputs["threshold"], inputs["period"]) == (
        "GreaterThanOrEqualToThreshold",
        1,
        60,
    )
    assert inputs["treatMissingData"] == "notBreaching"
    assert inputs["alarmActions"] == [features.outputs["alertTopics"][region]]
    output = features.outputs["faultInjection"][region]
    assert output["abortAlarm"] == inputs["name"] == f"acme-drp-{'use1' if role == 'primary' else 'usw2'}-drill-abort"
    assert output["abortMetric"] == {
        "namespace": ABORT_NAMESPACE,
        "name": ABORT_METRIC,
        "dimensions": {"Region": region},
    }
    for template in features.of_type(TEMPLATE, region):
        assert template.inputs["stopConditions"] == [
            {"source": "aws:cloudwatch:alarm", "value": output["abortAlarmArn"]}
        ]


@pytest.mark.parametrize("role", sorted(REGIONS))
def test_the_cross_region_template_cuts_the_application_and_data_subnets_off_from_the_other_region(role):
    """catalogue: fis.cross-region-connectivity-scope"""
    features = evaluate_features()
    region, other = REGIONS[role]
    (template,) = [t for t in features.of_type(TEMPLATE, region) if t.name.endswith("cross-region")]
    (target,) = template.inputs["targets"]
    assert (target["resourceType"], target["selectionMode"]) == ("aws:ec2:subnet", "ALL")
    subnets = {arn.rsplit(":", 1)[-1] for arn in target["resourceArns"]}
    assert subnets == {f"network-{role}-{tier}-{i}" for tier in ("app", "data") for i in range(3)}
    (action,) = template.inputs["actions"]
    assert action["actionId"] == "aws:network:route-table-disrupt-cross-region-connectivity"
    assert {p["key"]: p["value"] for p in action["parameters"]} == {"region": other, "duration": "PT30M"}
    assert template.inputs["experimentOptions"] == {
        "accountTargeting": "single-account",
        "emptyTargetResolutionMode": "fail",
    }
    assert features.outputs["faultInjection"][region]["crossRegionConnectivity"].startswith(f"fault-injection-{role}")


@pytest.mark.parametrize("role", sorted(REGIONS))
def test_the_s3_template_pauses_the_regions_bucket_selected_by_its_stack_and_role_tags(role):
    """catalogue: fis.s3-pause-replication"""
    features = evaluate_features()
    region, other = REGIONS[role]
    (template,) = [t for t in features.of_type(TEMPLATE, region) if t.name.endswith("s3-pause")]
    (target,) = template.inputs["targets"]
    assert target["resourceType"] == "aws:s3:bucket"
    assert {t["key"]: t["value"] for t in target["resourceTags"]} == {
        "dr-platform:stack": "prod",
        "dr-platform:region-role": role,
    }
    (action,) = template.inputs["actions"]
    assert action["actionId"] == "aws:s3:bucket-pause-replication"
    assert {p["key"]: p["value"] for p in action["parameters"]} == {"region": other, "duration": "PT30M"}
    policy = json.loads(
        features.one("aws:iam/rolePolicy:RolePolicy", f"fault-injection-{role}-experiments-s3").inputs["policy"]
    )
    bucket = f"arn:aws:s3:::{features.outputs['buckets'][region]['name']}"
    buckets = {s["Resource"] for s in policy["Statement"] if s["Resource"] != "*"}
    assert buckets == {bucket}
    (configuration,) = [s for s in policy["Statement"] if "s3:PutReplicationConfiguration" in s["Action"]]
    assert configuration["Condition"] == {"Bool": {"s3:IsReplicationPauseRequest": "true"}}


@pytest.mark.parametrize("role", sorted(REGIONS))
def test_only_fis_running_this_accounts_experiments_in_the_region_assumes_the_role(role):
    """catalogue: fis.role-source-conditions"""
    features = evaluate_features()
    region, _ = REGIONS[role]
    role_resource = features.one("aws:iam/role:Role", f"fault-injection-{role}-experiments")
    (trust,) = json.loads(role_resource.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "fis.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
        "ArnLike": {"aws:SourceArn": f"arn:aws:fis:{region}:{ACCOUNT_ID}:experiment/*"},
    }
    templates = features.of_type(TEMPLATE, region)
    assert templates and all(t.inputs["roleArn"].endswith(f":fault-injection-{role}-experiments") for t in templates)


def test_the_durations_come_from_config():
    from automation.evaluate import evaluate_program
    from tests.conftest import FEATURE_OVERRIDES, prod_config

    evaluation = evaluate_program(prod_config(**FEATURE_OVERRIDES, faultInjectionDurationMinutes="90"))
    for template in evaluation.of_type(TEMPLATE):
        (action,) = template.inputs["actions"]
        assert {p["key"]: p["value"] for p in action["parameters"]}["duration"] == "PT90M"
    assert {o["durationMinutes"] for o in evaluation.outputs["faultInjection"].values()} == {90}
