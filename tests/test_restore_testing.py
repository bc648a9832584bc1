"""AWS Backup restore testing as the program declares it: both regions, the database and the buckets, validated."""

from __future__ import annotations

import hashlib
import itertools
import json

import pytest

from automation.evaluate import Evaluation, evaluate_program, mock_identity
from components.naming import db_subnet_group_name
from components.restore_testing import HANDLER_SOURCE, MAX_RECOVERY_POINT_AGE, METRIC_NAMESPACE
from tests.conftest import STATE_OVERRIDES, evaluate_state, prod_config

PLAN = "aws:backup/restoreTestingPlan:RestoreTestingPlan"
SELECTION = "aws:backup/restoreTestingSelection:RestoreTestingSelection"
FUNCTION = "aws:lambda/function:Function"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
PERMISSION = "aws:lambda/permission:Permission"
REGIONS = {"primary": "us-east-1", "dr": "us-west-2"}


def _of_region(evaluation: Evaluation, type_token: str, region: str | None) -> list:
    """Restore testing's resources of a type in a region (the traffic fence's publisher is a function too)."""
    return [r for r in evaluation.of_type(type_token, region) if r.name.startswith("restore-tests-")]


@pytest.mark.parametrize("role", sorted(REGIONS))
def test_each_region_restores_the_newest_recovery_point_of_its_vault_every_day(steady, role):
    region = REGIONS[role]
    (plan,) = _of_region(steady, PLAN, region)
    assert plan.inputs["scheduleExpression"] == steady.config.restore_testing.schedule == "cron(0 9 ? * * *)"
    selection = plan.inputs["recoveryPointSelection"]
    assert selection["algorithm"] == "LATEST_WITHIN_WINDOW"
    # The region's vault holds its own backups and the copies of the other region's.
    assert selection["includeVaults"] == [steady.outputs["backupVaults"][region]["arn"]]
    assert selection["recoveryPointTypes"] == ["SNAPSHOT"]
    assert selection["selectionWindowDays"] == 2
    assert steady.outputs["restoreTesting"][region]["plan"] == plan.inputs["name"]


@pytest.mark.parametrize("role", sorted(REGIONS))
def test_the_database_lands_in_the_regions_data_subnets_and_the_bucket_is_encrypted_with_its_key(steady, role):
    """catalogue: backup.restore-testing-inferred-metadata
    catalogue: backup.restore-testing-validation-window"""
    region = REGIONS[role]
    selections = {s.inputs["protectedResourceType"]: s for s in _of_region(steady, SELECTION, region)}
    assert set(selections) == {"RDS", "S3"}
    for selection in selections.values():
        assert selection.inputs["protectedResourceArns"] == ["*"]
        assert selection.inputs["validationWindowHours"] == 2
        assert selection.inputs["iamRoleArn"].endswith(":acme-drp-backup-restore")
    database_group = steady.one("aws:ec2/securityGroup:SecurityGroup", f"network-{role}-database-sg")
    database = selections["RDS"].inputs["restoreMetadataOverrides"]
    assert database["dbSubnetGroupName"] == db_subnet_group_name(steady.config, role)
    group_id = mock_identity(database_group.type, database_group.name, database_group.inputs, region)[0]
    assert json.loads(database["vpcSecurityGroupIds"]) == [group_id]
    assert selections["S3"].inputs["restoreMetadataOverrides"] == {
        "encryptionType": "SSE-KMS",
        "kmsKey": steady.outputs["kmsKeys"][region],
    }


def test_only_the_configured_resource_types_are_tested():
    evaluation = evaluate_program(prod_config(restoreTestingResourceTypes='["RDS"]'))
    assert {s.inputs["protectedResourceType"] for s in evaluation.of_type(SELECTION)} == {"RDS"}
    assert all(t["resourceTypes"] == ["RDS"] for t in evaluation.outputs["restoreTesting"].values())


@pytest.mark.parametrize("role", sorted(REGIONS))
def test_every_restore_job_of_the_plan_that_ends_invokes_the_validator(steady, role):
    """catalogue: backup.restore-job-state-change-event"""
    region = REGIONS[role]
    (plan,) = _of_region(steady, PLAN, region)
    (rule,) = _of_region(steady, RULE, region)
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["source"] == ["aws.backup"] and pattern["detail-type"] == ["Restore Job State Change"]
    assert pattern["detail"]["restoreTestingPlanArn"] == [steady.outputs["restoreTesting"][region]["planArn"]]
    assert set(pattern["detail"]["status"]) == {"COMPLETED", "FAILED", "ABORTED"}
    assert plan.urn in rule.dependencies
    (function,) = _of_region(steady, FUNCTION, region)
    (target,) = _of_region(steady, TARGET, region)
    assert target.inputs["arn"].endswith(f":{function.inputs['name']}")
    (permission,) = _of_region(steady, PERMISSION, region)
    assert permission.inputs["principal"] == "events.amazonaws.com"
    assert permission.inputs["sourceArn"].endswith(f":{rule.inputs['name']}")


@pytest.mark.parametrize("role", sorted(REGIONS))
def test_the_validator_runs_the_handler_in_the_vpc_with_the_regions_key_and_age_bound(steady, role):
    region = REGIONS[role]
    (function,) = _of_region(steady, FUNCTION, region)
    inputs = function.inputs
    assert (inputs["runtime"], inputs["handler"]) == ("python3.12", "restore_validation.handler")
    code = inputs["code"]["archive"]["restore_validation.py"]["asset"]
    assert code == {
        "path": "components/functions/restore_validation.py",
        "sha256": hashlib.sha256(HANDLER_SOURCE.read_bytes()).hexdigest(),
    }
    assert inputs["environment"]["variables"] == {
        "EXPECTED_KMS_KEY_ARN": steady.outputs["kmsKeys"][region],
        "MAX_RECOVERY_POINT_AGE_HOURS": "27",
        "METRIC_NAMESPACE": METRIC_NAMESPACE,
        "RESTORE_TESTING_PLAN": steady.outputs["restoreTesting"][region]["plan"],
    }
    assert MAX_RECOVERY_POINT_AGE.total_seconds() == 27 * 3600
    # The application subnets: they reach the data subnets, and AWS's APIs through the NAT gateways.
    subnets = inputs["vpcConfig"]["subnetIds"]
    assert len(subnets) == 3 and all(s.startswith(f"network-{role}-app-") for s in subnets)


@pytest.mark.parametrize("role", sorted(REGIONS))
def test_the_validator_reaches_the_database_port_and_aws_apis_and_nothing_else(steady, role):
    """catalogue: pulumi-aws.security-group-revokes-default-egress"""
    region = REGIONS[role]
    egress = [
        r.inputs
        for r in steady.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", region)
        if r.name.startswith(f"restore-tests-{role}-validator-")
    ]
    allowed = {(e["ipProtocol"], e["fromPort"], e["toPort"], e["cidrIpv4"]) for e in egress}
    assert allowed == {("tcp", 5432, 5432, steady.config.regions[role].vpc_cidr), ("tcp", 443, 443, "0.0.0.0/0")}
    ingress = steady.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", region)
    assert not [r for r in ingress if r.name.startswith(f"restore-tests-{role}-")]


def test_the_validator_may_read_what_restore_testing_restored_and_report_nothing_more(steady):
    """catalogue: backup.restore-testing-cleanup (restored resources are named awsbackup-restore-test-*)"""
    for role, region in REGIONS.items():
        role_resource = steady.one("aws:iam/role:Role", f"restore-tests-{role}-validator")
        (trust,) = json.loads(role_resource.inputs["assumeRolePolicy"])["Statement"]
        assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
        policy = json.loads(
            steady.one("aws:iam/rolePolicy:RolePolicy", f"restore-tests-{role}-validator").inputs["policy"]
        )
        grants = {action: s for s in policy["Statement"] for action in _actions(s)}
        assert set(grants) == {
            "backup:DescribeRestoreJob",
            "backup:PutRestoreValidationResult",
            "rds:DescribeDBInstances",
            "s3:GetEncryptionConfiguration",
            "s3:ListBucket",
            "cloudwatch:PutMetricData",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
        }
        assert grants["rds:DescribeDBInstances"]["Resource"] == f"arn:aws:rds:{region}:*:db:awsbackup-restore-test-*"
        assert grants["s3:ListBucket"]["Resource"] == "arn:aws:s3:::awsbackup-restore-test-*"
        assert grants["cloudwatch:PutMetricData"]["Condition"] == {
            "StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}
        }
        assert grants["backup:PutRestoreValidationResult"]["Condition"] == {
            "StringEquals": {"aws:RequestedRegion": region}
        }


def _actions(statement: dict) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else actions


@pytest.mark.parametrize(("before", "after"), list(itertools.pairwise(STATE_OVERRIDES)))
def test_restore_testing_is_the_same_in_every_dr_state(before, after):
    """A failover has nothing to do here, in the failed region or the surviving one."""
    types = (PLAN, SELECTION, FUNCTION, RULE, TARGET)
    earlier = {r.urn: r.inputs for t in types for r in _of_region(evaluate_state(before), t, None)}
    later = {r.urn: r.inputs for t in types for r in _of_region(evaluate_state(after), t, None)}
    assert earlier == later and len(earlier) == 2 * len(types) + 2
