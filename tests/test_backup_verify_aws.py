"""`drctl backup-verify` against AWS, on real botocore clients stubbed with Stubber.

moto has no AWS Backup recovery points, restore jobs or restore testing, and cannot
restore an RDS instance from a recovery point ARN: every AWS call of the real path
is stubbed here, in the order the command makes it, with the exact parameters AWS
would receive (Stubber refuses anything else and reports calls that never came).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from automation import backup_verify
from automation.aws.clients import AwsClients
from automation.backup_verify import PURPOSE_TAG, RESTORE_TESTING, scratch_identifier, verify_stack_backups
from automation.cli import app
from components.config import PlatformConfig
from components.naming import db_identifier, db_subnet_group_name
from components.restore_testing import MAX_RECOVERY_POINT_AGE
from tests.aws_support import shared_clients
from tests.conftest import evaluate_state
from tests.fake_clock import FakeClock, fixed_clock

PRIMARY, DR = "us-east-1", "us-west-2"


@pytest.fixture
def world(credentials: None) -> Iterator[tuple[AwsClients, dict[tuple[str, str], Stubber], FakeClock]]:
    clients = shared_clients()
    with ExitStack() as stack:
        stubs = {
            (service, region): stack.enter_context(Stubber(clients.client(service, region)))
            for service in ("backup", "rds")
            for region in (PRIMARY, DR)
        }
        yield clients, stubs, fixed_clock()
        for stub in stubs.values():
            stub.assert_no_pending_responses()


def _outputs() -> dict[str, Any]:
    return evaluate_state("steady").outputs


def _cfg() -> PlatformConfig:
    return evaluate_state("steady").config


def _database_arn(region: str) -> str:
    role = "primary" if region == PRIMARY else "dr"
    return f"arn:aws:rds:{region}:123456789012:db:{db_identifier(_cfg(), role, 1)}"


def _point(region: str, created_hours_ago: float, clock: FakeClock, source: str, status: str = "COMPLETED") -> dict:
    return {
        "RecoveryPointArn": f"arn:aws:rds:{region}:123456789012:snapshot:awsbackup:job-{created_hours_ago:g}h",
        "ResourceArn": source,
        "ResourceType": "RDS",
        "Status": status,
        "IsEncrypted": True,
        "EncryptionKeyArn": _outputs()["kmsKeys"][region],
        "CreationDate": clock.now() - timedelta(hours=created_hours_ago),
        "CompletionDate": clock.now() - timedelta(hours=created_hours_ago),
    }


def _test_job(clock: FakeClock, region: str, source: str, **fields: Any) -> dict:
    return {
        "RestoreJobId": f"test-{source.rsplit(':', 1)[-1]}",
        "SourceResourceArn": source,
        "ResourceType": "RDS",
        "Status": "COMPLETED",
        "ValidationStatus": "SUCCESSFUL",
        "CreationDate": clock.now() - timedelta(hours=4),
        **fields,
    }


def _expect_restore_tests(stubs, clock: FakeClock, region: str, jobs: list[dict]) -> None:
    stubs[("backup", region)].add_response(
        "list_restore_jobs",
        {"RestoreJobs": jobs},
        {
            "ByRestoreTestingPlanArn": _outputs()["restoreTesting"][region]["planArn"],
            "ByCreatedAfter": clock.now() - MAX_RECOVERY_POINT_AGE,
        },
    )


def _expect_points(stubs, region: str, points: list[dict]) -> None:
    stubs[("backup", region)].add_response(
        "list_recovery_points_by_backup_vault",
        {"RecoveryPoints": points},
        {"BackupVaultName": _outputs()["backupVaults"][region]["name"], "ByResourceType": "RDS"},
    )


def _expect_restore(
    stubs, clock: FakeClock, region: str, point: dict, *, error: str | None = None, after: float = 0
) -> str:
    """`after`: seconds the run will have waited before this restore (the scratch name carries the time)."""
    scratch = scratch_identifier(_cfg(), region, clock.now() + timedelta(seconds=after))
    role = "primary" if region == PRIMARY else "dr"
    params = {
        "DBInstanceIdentifier": scratch,
        "DBSnapshotIdentifier": point["RecoveryPointArn"],
        "DBInstanceClass": _cfg().db_instance_class,
        "PubliclyAccessible": False,
        "DeletionProtection": False,
        "Tags": [PURPOSE_TAG],
        # Into the stack's database subnets, not a default VPC the account may not have.
        "DBSubnetGroupName": db_subnet_group_name(_cfg(), role),
    }
    if error:
        stubs[("rds", region)].add_client_error("restore_db_instance_from_db_snapshot", error, "refused", 400, params)
    else:
        stubs[("rds", region)].add_response("restore_db_instance_from_db_snapshot", {"DBInstance": {}}, params)
    return scratch


def _expect_available(stubs, region: str, scratch: str) -> None:
    instance = {
        "DBInstanceIdentifier": scratch,
        "DBInstanceStatus": "available",
        "Endpoint": {"Address": f"{scratch}.rds"},
    }
    stubs[("rds", region)].add_response(
        "describe_db_instances", {"DBInstances": [instance]}, {"DBInstanceIdentifier": scratch}
    )


def _expect_delete(stubs, region: str, scratch: str, *, error: str | None = None) -> None:
    params = {"DBInstanceIdentifier": scratch, "SkipFinalSnapshot": True, "DeleteAutomatedBackups": True}
    if error:
        stubs[("rds", region)].add_client_error("delete_db_instance", error, "cannot", 400, params)
    else:
        stubs[("rds", region)].add_response("delete_db_instance", {"DBInstance": {}}, params)


def _healthy_region(stubs, clock: FakeClock, region: str, *, jobs: list[dict] | None = None, after: float = 0) -> dict:
    """Stubs for one region whose tests passed and whose newest backup restores; returns its point."""
    other = DR if region == PRIMARY else PRIMARY
    writer = _database_arn(PRIMARY)
    _expect_restore_tests(stubs, clock, region, [_test_job(clock, region, writer)] if jobs is None else jobs)
    point = _point(region, 5, clock, writer)
    _expect_points(stubs, region, [_point(region, 29, clock, writer), point])
    _expect_points(stubs, other, [_point(other, 5, clock, writer)])
    scratch = _expect_restore(stubs, clock, region, point, after=after)
    _expect_available(stubs, region, scratch)
    _expect_delete(stubs, region, scratch)
    return point


def _primary_up_to_its_restore(stubs, clock: FakeClock) -> dict:
    """The primary region's stubs before its on-demand restore: tests passed, a recent point and its copy."""
    writer = _database_arn(PRIMARY)
    _expect_restore_tests(stubs, clock, PRIMARY, [_test_job(clock, PRIMARY, writer)])
    point = _point(PRIMARY, 5, clock, writer)
    _expect_points(stubs, PRIMARY, [point])
    _expect_points(stubs, DR, [_point(DR, 5, clock, writer)])
    return point


def _failed(verification) -> dict[tuple[str, str], str]:
    return {(r.region, c.name): c.detail for r in verification.regions for c in r.checks if not c.passed}


def test_restore_tests_and_an_on_demand_restore_pass_in_both_regions(world):
    clients, stubs, clock = world
    points = {region: _healthy_region(stubs, clock, region) for region in (PRIMARY, DR)}
    verification = verify_stack_backups(clients, _cfg(), _outputs(), clock=clock)
    assert verification.passed, verification.failures()
    for region in verification.regions:
        assert [c.name for c in region.checks] == [RESTORE_TESTING, *backup_verify.CHECKS]
        assert region.backup == points[region.region]["RecoveryPointArn"]  # the newest, not the 29 h old one
    assert "1 resource(s) restored and validated" in verification.regions[0].checks[0].detail


def test_the_latest_restore_test_of_a_resource_decides_and_an_unvalidated_one_fails(world):
    clients, stubs, clock = world
    writer, bucket = _database_arn(PRIMARY), "arn:aws:s3:::acme-drp-use1-data"
    jobs = [
        _test_job(clock, PRIMARY, writer, CreationDate=clock.now() - timedelta(hours=20)),
        _test_job(
            clock,
            PRIMARY,
            writer,
            RestoreJobId="newer",
            ValidationStatus="FAILED",
            ValidationStatusMessage="reachability: FAILED (timed out)",
        ),
        _test_job(clock, PRIMARY, bucket, ResourceType="S3", ValidationStatus=None),
    ]
    for job in jobs:
        if job["ValidationStatus"] is None:
            del job["ValidationStatus"]
    _healthy_region(stubs, clock, PRIMARY, jobs=jobs)
    _healthy_region(stubs, clock, DR)
    verification = verify_stack_backups(clients, _cfg(), _outputs(), clock=clock)
    detail = _failed(verification)[(PRIMARY, RESTORE_TESTING)]
    assert "job newer): validation FAILED: reachability: FAILED (timed out)" in detail
    assert "validation never reported" in detail
    assert set(_failed(verification)) == {(PRIMARY, RESTORE_TESTING)}


def test_a_day_without_a_restore_test_fails_the_region(world):
    clients, stubs, clock = world
    _healthy_region(stubs, clock, PRIMARY)
    _healthy_region(stubs, clock, DR, jobs=[])
    failed = _failed(verify_stack_backups(clients, _cfg(), _outputs(), clock=clock))
    assert failed == {(DR, RESTORE_TESTING): failed[(DR, RESTORE_TESTING)]}
    assert failed[(DR, RESTORE_TESTING)].startswith("no restore test of acme_drp_usw2_restore_tests since")


def test_a_restore_test_job_that_failed_fails_with_its_message(world):
    clients, stubs, clock = world
    job = _test_job(clock, PRIMARY, _database_arn(PRIMARY), Status="FAILED", StatusMessage="No default subnet")
    _healthy_region(stubs, clock, PRIMARY, jobs=[job])
    _healthy_region(stubs, clock, DR)
    failed = _failed(verify_stack_backups(clients, _cfg(), _outputs(), clock=clock))
    assert "restore FAILED: No default subnet" in failed[(PRIMARY, RESTORE_TESTING)]


def test_a_restore_that_fails_is_reported_and_nothing_is_left_to_delete(world):
    clients, stubs, clock = world
    point = _primary_up_to_its_restore(stubs, clock)
    scratch = _expect_restore(stubs, clock, PRIMARY, point, error="KMSKeyNotAccessibleFault")
    _expect_delete(stubs, PRIMARY, scratch, error="DBInstanceNotFound")
    _healthy_region(stubs, clock, DR)
    verification = verify_stack_backups(clients, _cfg(), _outputs(), clock=clock)
    failed = _failed(verification)
    assert set(failed) == {(PRIMARY, "restore")}
    assert "KMSKeyNotAccessibleFault" in failed[(PRIMARY, "restore")]
    cleanup = next(c for c in verification.regions[0].checks if c.name == "cleanup")
    assert cleanup.passed and "never started" in cleanup.detail


def test_a_scratch_instance_that_will_not_delete_fails_cleanup_and_the_command_names_it(
    world, tmp_path: Path, monkeypatch
):
    clients, stubs, clock = world
    point = _primary_up_to_its_restore(stubs, clock)
    scratch = _expect_restore(stubs, clock, PRIMARY, point)
    _expect_available(stubs, PRIMARY, scratch)
    _expect_delete(stubs, PRIMARY, scratch, error="InvalidDBInstanceState")
    _healthy_region(stubs, clock, DR)
    verification = verify_stack_backups(clients, _cfg(), _outputs(), clock=clock)
    failed = _failed(verification)
    assert set(failed) == {(PRIMARY, "cleanup")}
    assert (
        f"could not delete {scratch}" in failed[(PRIMARY, "cleanup")]
        and "delete it by hand" in failed[(PRIMARY, "cleanup")]
    )
    monkeypatch.setattr(backup_verify, "run_against_stack", lambda *_, **__: verification)
    result = CliRunner().invoke(app, ["backup-verify", "--report-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert f"cleanup (could not delete {scratch}" in str(result.exception)
    assert '"name": "restore-testing"' in next(tmp_path.glob("*.json")).read_text()


def test_a_scratch_instance_that_never_comes_up_times_out_and_is_still_deleted(world):
    clients, stubs, clock = world
    point = _primary_up_to_its_restore(stubs, clock)
    scratch = _expect_restore(stubs, clock, PRIMARY, point)
    creating = {"DBInstances": [{"DBInstanceIdentifier": scratch, "DBInstanceStatus": "creating"}]}
    for _ in range(3):
        stubs[("rds", PRIMARY)].add_response("describe_db_instances", creating, {"DBInstanceIdentifier": scratch})
    _expect_delete(stubs, PRIMARY, scratch)
    _healthy_region(stubs, clock, DR, after=60)  # the primary's wait took 60 s
    verification = backup_verify.verify_backups(
        clients,
        _cfg(),
        _outputs(),
        backup_verify.RecoveryPointCatalogue(clients, _outputs()["backupVaults"]),
        clock=clock,
        mode="aws",
        restore_tests=backup_verify.RestoreTestingResults(clients, _outputs()["restoreTesting"]),
        scratch=backup_verify.Scratch(
            {PRIMARY: db_subnet_group_name(_cfg(), "primary"), DR: db_subnet_group_name(_cfg(), "dr")}
        ),
        restore_timeout_seconds=60,
        poll_seconds=30,
    )
    failed = _failed(verification)
    assert set(failed) == {(PRIMARY, "restore")} and "timed out after 60s" in failed[(PRIMARY, "restore")]
    assert next(c for c in verification.regions[0].checks if c.name == "cleanup").passed
