"""`drctl status`: the DR state and live readiness, with an unreachable region reported, not raised."""

from __future__ import annotations

from pathlib import Path

import pytest

from automation.aws.readiness import Status, load_balancer_metrics
from automation.errors import DrctlError
from automation.journal import RunParameters
from automation.runbooks.context import DrAws, RunbookSettings
from automation.runbooks.failover import failover_runbook
from automation.runbooks.status import read_status
from tests.aws_support import CREDENTIALS, unreachable_clients
from tests.dr_world import DR, PRIMARY, Dr


@pytest.fixture
def dr(tmp_path: Path) -> Dr:
    return Dr(tmp_path)


def by_check(report) -> dict[tuple[str, str], Status]:
    return {(reading.check, reading.region): reading.status for reading in report.readings}


def test_steady_status_reads_every_concern_and_is_ready(dr: Dr) -> None:
    report = read_status(dr.ctx)
    checks = by_check(report)
    assert checks[("replica-lag", DR)] is Status.OK  # the DR replica, against the RPO
    assert checks[("database-role", PRIMARY)] is Status.OK and ("pitr", PRIMARY) in checks
    assert ("health-check", "us-east-1") in checks  # both checks, read through Route53's control plane
    assert {("backup", PRIMARY), ("backup", DR), ("s3-replication", PRIMARY), ("node-group", DR)} <= set(checks)
    assert checks[("global-datastore", PRIMARY)] is Status.OK
    assert report.ready and report.to_json()["drState"] == "steady" and report.to_json()["ready"] is True


def test_lag_above_the_rpo_makes_the_platform_not_ready(dr: Dr) -> None:
    dr.world.lag_seconds = 600
    report = read_status(dr.ctx)
    assert not report.ready and report.overall is Status.FAILING


def test_an_unreachable_primary_region_is_a_row_and_the_datastore_is_read_from_the_other(dr: Dr) -> None:
    dr.world.down.add(PRIMARY)
    report = read_status(dr.ctx)
    checks = by_check(report)
    assert checks[("database-role", PRIMARY)] is Status.UNREACHABLE
    assert checks[("global-datastore", DR)] is Status.OK  # fell back to the DR region's endpoint
    assert not report.ready


def test_after_failover_the_cache_primary_is_compared_with_the_active_region(dr: Dr) -> None:
    dr.engine().run(failover_runbook(dr.ctx, "emergency"), RunParameters("drill", "alice", "emergency"))
    dr.world.cache_primary = PRIMARY  # someone moved the writer back by hand
    report = read_status(dr.ctx)
    assert report.config.active_region == DR and report.outputs_state == (DR, "failed-over")
    assert by_check(report)[("global-datastore", DR)] is Status.FAILING


def test_real_readers_turn_unreachable_endpoints_into_rows(dr: Dr, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    dr.ctx.aws = DrAws(unreachable_clients(), dr.clock)
    report = read_status(dr.ctx)
    assert report.readings and all(reading.status is Status.UNREACHABLE for reading in report.readings)
    assert not report.ready


def test_every_aws_binding_of_the_runbooks_fails_as_unreachable_not_with_a_crash(
    dr: Dr, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real `DrAws` against a dead endpoint: readers give rows, actions give a DrctlError naming the region."""
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    settings = RunbookSettings(poll_seconds=1, catch_up_timeout_seconds=1, promotion_timeout_seconds=1)
    aws, cfg = DrAws(unreachable_clients(), dr.clock, settings), dr.cfg
    readings = [
        aws.replica_lag(DR, "db", cfg),
        aws.error_rate(DR, load_balancer_metrics("app/alb/1")),
        aws.global_datastore(DR, "ldgnf-x", DR),
    ]
    assert all(reading.status is Status.UNREACHABLE for reading in readings)
    actions = [
        lambda: aws.stop_writes(DR, "params", "db"),
        lambda: aws.scale_node_group(DR, "eks", "nodes", cfg.node_group_full),
        lambda: aws.fail_over_global_datastore("ldgnf-x", DR, "group"),
        lambda: aws.wait_until_writer(DR, "db"),
        lambda: aws.notify(DR, "arn:aws:sns:us-west-2:123456789012:alerts", "subject", {}),
    ]
    for action in actions:
        with pytest.raises(DrctlError, match=DR):
            action()
