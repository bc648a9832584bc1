"""Validates what AWS Backup restore testing restored, and reports it back to the restore job.

Runs in AWS Lambda (its Python runtime and bundled boto3; standard library otherwise),
invoked by EventBridge on each "Restore Job State Change" of this region's restore
testing plan. For a completed job it checks what `drctl backup-verify` checks:

- status: the restore job completed;
- age: the restored recovery point is no older than the daily schedule allows;
- encryption: the restored database or bucket is encrypted with the region's key;
- reachability: the database answers on its port from inside the VPC, the bucket
  answers HeadBucket and lists;

then posts SUCCESSFUL or FAILED with PutRestoreValidationResult (once: AWS keeps the
first status a job gets) and counts the result in CloudWatch, where the region's
alarms watch for a failure, or for a day without a success. A job that failed or was
aborted cannot be validated; it is counted as a failure.

Settings come from the environment the program declares: EXPECTED_KMS_KEY_ARN,
MAX_RECOVERY_POINT_AGE_HOURS, METRIC_NAMESPACE, RESTORE_TESTING_PLAN.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

PASSED_METRIC = "RestoreTestsPassed"
FAILED_METRIC = "RestoreTestsFailed"
PLAN_DIMENSION = "RestoreTestingPlan"
CONNECT_TIMEOUT_SECONDS = 5.0
MESSAGE_LIMIT = 1000
"""ValidationStatusMessage is free text; kept short enough for the console and the API."""
UNVALIDATED = ("FAILED", "ABORTED")
"""Job states with nothing restored to validate: counted as failed tests."""


@dataclass(frozen=True)
class Settings:
    expected_key_arn: str
    max_age: timedelta
    metric_namespace: str
    plan_name: str

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        return cls(
            expected_key_arn=environ["EXPECTED_KMS_KEY_ARN"],
            max_age=timedelta(hours=float(environ["MAX_RECOVERY_POINT_AGE_HOURS"])),
            metric_namespace=environ["METRIC_NAMESPACE"],
            plan_name=environ["RESTORE_TESTING_PLAN"],
        )


@dataclass
class Validation:
    job_id: str
    resource_type: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, passed: bool, detail: str) -> None:
        self.checks.append((name, passed, detail))

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(passed for _, passed, _ in self.checks)

    def message(self) -> str:
        text = "; ".join(f"{name}: {'ok' if ok else 'FAILED'} ({detail})" for name, ok, detail in self.checks)
        return text[:MESSAGE_LIMIT]


Connect = Callable[[str, int, float], None]


def tcp_connect(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


def same_key(actual: str | None, expected: str) -> bool:
    """KMS reports a key by ARN or by id; both name the same key when the id matches."""
    return bool(actual) and actual.rsplit("/", 1)[-1] == expected.rsplit("/", 1)[-1]


def validate(
    job: Mapping[str, Any],
    clients: Mapping[str, Any],
    settings: Settings,
    now: datetime,
    connect: Connect = tcp_connect,
) -> Validation:
    """Check one completed restore job's resource; never raises for a failed check, only records it."""
    result = Validation(job["RestoreJobId"], job.get("ResourceType", "?"))
    result.check("status", job.get("Status") == "COMPLETED", f"restore job {job.get('Status')}")
    created = job.get("RecoveryPointCreationDate")
    if created is None:
        result.check("age", False, "the job names no recovery point creation date")
    else:
        age = now - created
        result.check(
            "age",
            age <= settings.max_age,
            f"{age.total_seconds() / 3600:.1f} h old, {settings.max_age.total_seconds() / 3600:g} h allowed",
        )
    resource = job.get("CreatedResourceArn") or ""
    if result.resource_type == "RDS":
        _database(result, clients["rds"], resource, settings, connect)
    elif result.resource_type == "S3":
        _bucket(result, clients["s3"], resource, settings)
    else:
        result.check("resource", False, f"no validation for resource type {result.resource_type}")
    return result


def _database(result: Validation, rds: Any, arn: str, settings: Settings, connect: Connect) -> None:
    try:
        instance = rds.describe_db_instances(DBInstanceIdentifier=arn)["DBInstances"][0]
    except (ClientError, BotoCoreError, IndexError) as error:
        result.check("encryption", False, f"cannot describe {arn}: {error}")
        result.check("reachability", False, "not checked: the instance could not be described")
        return
    key = instance.get("KmsKeyId")
    encrypted = bool(instance.get("StorageEncrypted")) and same_key(key, settings.expected_key_arn)
    result.check("encryption", encrypted, f"StorageEncrypted {instance.get('StorageEncrypted')}, key {key}")
    endpoint = instance.get("Endpoint") or {}
    address, port = endpoint.get("Address"), endpoint.get("Port")
    if not address or not port:
        result.check("reachability", False, f"no endpoint (status {instance.get('DBInstanceStatus')})")
        return
    try:
        connect(address, int(port), CONNECT_TIMEOUT_SECONDS)
    except OSError as error:
        result.check("reachability", False, f"{address}:{port} did not accept a connection: {error}")
        return
    result.check("reachability", True, f"{address}:{port} accepts connections")


def _bucket(result: Validation, s3: Any, arn: str, settings: Settings) -> None:
    bucket = arn.rsplit(":", 1)[-1]
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        default = rules[0]["ApplyServerSideEncryptionByDefault"]
        algorithm, key = default.get("SSEAlgorithm"), default.get("KMSMasterKeyID")
        encrypted = algorithm == "aws:kms" and same_key(key, settings.expected_key_arn)
        result.check("encryption", encrypted, f"{algorithm} with {key}")
    except (ClientError, BotoCoreError, KeyError, IndexError) as error:
        result.check("encryption", False, f"cannot read the encryption of {bucket}: {error}")
    try:
        s3.head_bucket(Bucket=bucket)
        listed = s3.list_objects_v2(Bucket=bucket, MaxKeys=1).get("KeyCount", 0)
    except (ClientError, BotoCoreError, KeyError, IndexError) as error:
        result.check("reachability", False, f"{bucket} does not answer: {error}")
        return
    result.check("reachability", True, f"{bucket} answers and lists ({listed} object(s) on the first page)")


def handle(
    event: Mapping[str, Any],
    clients: Mapping[str, Any],
    settings: Settings,
    now: datetime,
    connect: Connect = tcp_connect,
) -> dict[str, Any]:
    """One restore job state change: validate, report to the job, count the result."""
    job_id = event["detail"]["restoreJobId"]
    backup = clients["backup"]
    job = backup.describe_restore_job(RestoreJobId=job_id)
    if job.get("ValidationStatus") in ("SUCCESSFUL", "FAILED", "TIMED_OUT"):
        # A retried invocation: the first one reported and counted already.
        return {"restoreJobId": job_id, "result": "already-validated", "validationStatus": job["ValidationStatus"]}
    if job.get("Status") in UNVALIDATED:
        _count(clients["cloudwatch"], settings, job.get("ResourceType", "?"), passed=False)
        return {
            "restoreJobId": job_id,
            "result": "failed",
            "reason": f"restore job {job['Status']}: {job.get('StatusMessage', '')}",
        }
    if job.get("Status") != "COMPLETED":
        return {"restoreJobId": job_id, "result": "ignored", "reason": f"restore job {job.get('Status')}"}
    validation = validate(job, clients, settings, now, connect)
    # catalogue: backup.restore-validation-result-set-once
    # catalogue: lambda.runtime-sdk-has-restore-validation (the runtime's boto3 has the call)
    backup.put_restore_validation_result(
        RestoreJobId=job_id,
        ValidationStatus="SUCCESSFUL" if validation.passed else "FAILED",
        ValidationStatusMessage=validation.message(),
    )
    _count(clients["cloudwatch"], settings, validation.resource_type, passed=validation.passed)
    return {
        "restoreJobId": job_id,
        "result": "passed" if validation.passed else "failed",
        "message": validation.message(),
    }


def _count(cloudwatch: Any, settings: Settings, resource_type: str, *, passed: bool) -> None:
    """One test, counted for the plan (what the alarms watch) and for the plan and resource type."""
    plan = [{"Name": PLAN_DIMENSION, "Value": settings.plan_name}]
    by_type = [*plan, {"Name": "ResourceType", "Value": resource_type}]
    metric = PASSED_METRIC if passed else FAILED_METRIC
    cloudwatch.put_metric_data(
        Namespace=settings.metric_namespace,
        MetricData=[
            {"MetricName": metric, "Dimensions": dimensions, "Value": 1, "Unit": "Count"}
            for dimensions in (plan, by_type)
        ],
    )


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:  # the Lambda entry point
    import boto3

    region = os.environ["AWS_REGION"]
    clients = {service: boto3.client(service, region_name=region) for service in ("backup", "rds", "s3", "cloudwatch")}
    return handle(event, clients, Settings.from_environment(os.environ), datetime.now(UTC))
