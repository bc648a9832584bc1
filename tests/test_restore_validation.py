"""The restore-test validator, on real botocore clients stubbed with Stubber (moto has no restore testing).

Each case is one restore job state change as EventBridge delivers it; the stubs hold
the exact requests AWS would receive (Stubber refuses any other), so a test also
proves what is, and is not, reported back to the job and counted in CloudWatch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from components.functions.restore_validation import (
    FAILED_METRIC,
    PASSED_METRIC,
    Settings,
    handle,
)

REGION = "us-east-1"
KEY = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-1111-2222-3333-444455556666"
OTHER_KEY = "arn:aws:kms:us-east-1:123456789012:key/ffffffff-1111-2222-3333-444455556666"
PLAN = "acme_drp_use1_restore_tests"
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SETTINGS = Settings(
    expected_key_arn=KEY, max_age=timedelta(hours=27), metric_namespace="DrPlatform/RestoreTesting", plan_name=PLAN
)
DB_ARN = "arn:aws:rds:us-east-1:123456789012:db:awsbackup-restore-test-7f3c"
BUCKET_ARN = "arn:aws:s3:::awsbackup-restore-test-91ab"


@pytest.fixture
def clients(credentials: None) -> Iterator[dict[str, Any]]:
    made = {service: boto3.client(service, region_name=REGION) for service in ("backup", "rds", "s3", "cloudwatch")}
    yield made


@pytest.fixture
def stubs(clients: dict[str, Any]) -> Iterator[dict[str, Stubber]]:
    with ExitStack() as stack:
        stubbers = {service: stack.enter_context(Stubber(client)) for service, client in clients.items()}
        yield stubbers
        for stubber in stubbers.values():
            stubber.assert_no_pending_responses()


def _event(job_id: str = "job-1", status: str = "COMPLETED") -> dict[str, Any]:
    """catalogue: backup.restore-job-state-change-event (the fields the validator reads)"""
    return {
        "source": "aws.backup",
        "detail-type": "Restore Job State Change",
        "detail": {
            "restoreJobId": job_id,
            "status": status,
            "restoreTestingPlanArn": f"arn:aws:backup:{REGION}:1:{PLAN}",
        },
    }


def _job(
    resource_type: str = "RDS", status: str = "COMPLETED", age: timedelta = timedelta(hours=5), **extra: Any
) -> dict[str, Any]:
    return {
        "RestoreJobId": "job-1",
        "Status": status,
        "ResourceType": resource_type,
        "CreatedResourceArn": DB_ARN if resource_type == "RDS" else BUCKET_ARN,
        "RecoveryPointCreationDate": NOW - age,
        **extra,
    }


def _database(key: str = KEY, endpoint: bool = True) -> dict[str, Any]:
    instance: dict[str, Any] = {
        "DBInstanceIdentifier": "awsbackup-restore-test-7f3c",
        "StorageEncrypted": True,
        "KmsKeyId": key,
        "DBInstanceStatus": "available",
    }
    if endpoint:
        instance["Endpoint"] = {"Address": "awsbackup-restore-test-7f3c.abc.us-east-1.rds.amazonaws.com", "Port": 5432}
    return {"DBInstances": [instance]}


def _expect_result(stubs: dict[str, Stubber], status: str) -> None:
    stubs["backup"].add_response(
        "put_restore_validation_result",
        {},
        {"RestoreJobId": "job-1", "ValidationStatus": status, "ValidationStatusMessage": ANY},
    )


def _expect_count(stubs: dict[str, Stubber], metric: str, resource_type: str) -> None:
    plan = [{"Name": "RestoreTestingPlan", "Value": PLAN}]
    stubs["cloudwatch"].add_response(
        "put_metric_data",
        {},
        {
            "Namespace": "DrPlatform/RestoreTesting",
            "MetricData": [
                {"MetricName": metric, "Dimensions": plan, "Value": 1, "Unit": "Count"},
                {
                    "MetricName": metric,
                    "Dimensions": [*plan, {"Name": "ResourceType", "Value": resource_type}],
                    "Value": 1,
                    "Unit": "Count",
                },
            ],
        },
    )


def _connected(host: str, port: int, timeout: float) -> None:
    assert port == 5432 and host.endswith(".rds.amazonaws.com")


def _refused(host: str, port: int, timeout: float) -> None:
    raise ConnectionRefusedError(111, "Connection refused")


def test_a_restored_database_that_is_recent_encrypted_and_answers_passes_and_is_reported(clients, stubs):
    stubs["backup"].add_response("describe_restore_job", _job(), {"RestoreJobId": "job-1"})
    stubs["rds"].add_response("describe_db_instances", _database(), {"DBInstanceIdentifier": DB_ARN})
    _expect_result(stubs, "SUCCESSFUL")
    _expect_count(stubs, PASSED_METRIC, "RDS")
    result = handle(_event(), clients, SETTINGS, NOW, connect=_connected)
    assert result["result"] == "passed"
    assert [part.split(":")[0] for part in result["message"].split("; ")] == [
        "status",
        "age",
        "encryption",
        "reachability",
    ]


def test_a_database_encrypted_with_another_key_that_does_not_answer_fails_naming_both_checks(clients, stubs):
    stubs["backup"].add_response("describe_restore_job", _job(), {"RestoreJobId": "job-1"})
    stubs["rds"].add_response("describe_db_instances", _database(key=OTHER_KEY), {"DBInstanceIdentifier": DB_ARN})
    _expect_result(stubs, "FAILED")
    _expect_count(stubs, FAILED_METRIC, "RDS")
    result = handle(_event(), clients, SETTINGS, NOW, connect=_refused)
    assert result["result"] == "failed"
    assert "encryption: FAILED" in result["message"] and OTHER_KEY in result["message"]
    assert "reachability: FAILED" in result["message"] and "Connection refused" in result["message"]
    assert "age: ok" in result["message"]


def test_a_recovery_point_older_than_the_daily_schedule_allows_fails_the_age_check(clients, stubs):
    stubs["backup"].add_response("describe_restore_job", _job(age=timedelta(hours=30)), {"RestoreJobId": "job-1"})
    stubs["rds"].add_response("describe_db_instances", _database(), {"DBInstanceIdentifier": DB_ARN})
    _expect_result(stubs, "FAILED")
    _expect_count(stubs, FAILED_METRIC, "RDS")
    result = handle(_event(), clients, SETTINGS, NOW, connect=_connected)
    assert "age: FAILED (30.0 h old" in result["message"]


def test_a_database_that_cannot_be_described_fails_instead_of_raising(clients, stubs):
    stubs["backup"].add_response("describe_restore_job", _job(), {"RestoreJobId": "job-1"})
    stubs["rds"].add_client_error("describe_db_instances", "DBInstanceNotFound", "DBInstance not found")
    _expect_result(stubs, "FAILED")
    _expect_count(stubs, FAILED_METRIC, "RDS")
    result = handle(_event(), clients, SETTINGS, NOW, connect=_connected)
    assert "cannot describe" in result["message"] and "not checked" in result["message"]


def test_a_restored_bucket_encrypted_with_the_regions_key_that_lists_passes(clients, stubs):
    """catalogue: backup.s3-restore-encryption-type-value (checked on what the restore produced)"""
    bucket = "awsbackup-restore-test-91ab"
    stubs["backup"].add_response("describe_restore_job", _job("S3"), {"RestoreJobId": "job-1"})
    encryption = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY}}]}
    stubs["s3"].add_response(
        "get_bucket_encryption", {"ServerSideEncryptionConfiguration": encryption}, {"Bucket": bucket}
    )
    stubs["s3"].add_response("head_bucket", {}, {"Bucket": bucket})
    stubs["s3"].add_response("list_objects_v2", {"KeyCount": 1}, {"Bucket": bucket, "MaxKeys": 1})
    _expect_result(stubs, "SUCCESSFUL")
    _expect_count(stubs, PASSED_METRIC, "S3")
    assert handle(_event(), clients, SETTINGS, NOW)["result"] == "passed"


def test_a_bucket_restored_with_s3_managed_keys_fails_encryption(clients, stubs):
    bucket = "awsbackup-restore-test-91ab"
    stubs["backup"].add_response("describe_restore_job", _job("S3"), {"RestoreJobId": "job-1"})
    encryption = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
    stubs["s3"].add_response(
        "get_bucket_encryption", {"ServerSideEncryptionConfiguration": encryption}, {"Bucket": bucket}
    )
    stubs["s3"].add_response("head_bucket", {}, {"Bucket": bucket})
    stubs["s3"].add_response("list_objects_v2", {"KeyCount": 0}, {"Bucket": bucket, "MaxKeys": 1})
    _expect_result(stubs, "FAILED")
    _expect_count(stubs, FAILED_METRIC, "S3")
    result = handle(_event(), clients, SETTINGS, NOW)
    assert "encryption: FAILED (AES256 with None)" in result["message"]


@pytest.mark.parametrize("status", ["FAILED", "ABORTED"])
def test_a_restore_that_failed_is_counted_as_a_failed_test_and_not_validated(clients, stubs, status):
    job = _job(status=status, StatusMessage="Access denied to KMS key")
    stubs["backup"].add_response("describe_restore_job", job, {"RestoreJobId": "job-1"})
    _expect_count(stubs, FAILED_METRIC, "RDS")
    result = handle(_event(status=status), clients, SETTINGS, NOW)
    assert result == {
        "restoreJobId": "job-1",
        "result": "failed",
        "reason": f"restore job {status}: Access denied to KMS key",
    }


def test_a_retried_invocation_reports_and_counts_nothing_twice(clients, stubs):
    """catalogue: backup.restore-validation-result-set-once"""
    stubs["backup"].add_response("describe_restore_job", _job(ValidationStatus="SUCCESSFUL"), {"RestoreJobId": "job-1"})
    result = handle(_event(), clients, SETTINGS, NOW, connect=_connected)
    assert result["result"] == "already-validated"
    # No other request was stubbed: a second put or count would have raised.


def test_a_job_still_running_is_left_alone(clients, stubs):
    stubs["backup"].add_response("describe_restore_job", _job(status="RUNNING"), {"RestoreJobId": "job-1"})
    assert handle(_event(status="RUNNING"), clients, SETTINGS, NOW)["result"] == "ignored"


def test_settings_come_from_the_environment_the_program_declares():
    settings = Settings.from_environment(
        {
            "EXPECTED_KMS_KEY_ARN": KEY,
            "MAX_RECOVERY_POINT_AGE_HOURS": "27",
            "METRIC_NAMESPACE": "DrPlatform/RestoreTesting",
            "RESTORE_TESTING_PLAN": PLAN,
        }
    )
    assert settings == SETTINGS
