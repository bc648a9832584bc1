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


def test_a_former_writer_that_answers_unfenced_is_shown_loudly_until_it_is_fenced(dr: Dr) -> None:
    from automation.runbooks.failover import fence_former_region_runbook

    dr.world.down.add(PRIMARY)
    dr.engine().run(failover_runbook(dr.ctx, "emergency"), RunParameters("outage", "alice", "emergency"))
    fence_row = next(r for r in read_status(dr.ctx).readings if r.check == "former-writer-fence")
    assert fence_row.status is Status.WARNING and "does not answer" in fence_row.detail
    assert by_check(read_status(dr.ctx))[("traffic-fence", DR)] is Status.OK  # raised, as failed-over wants

    dr.world.down.clear()  # the primary region returns, its writer still writable
    report = read_status(dr.ctx)
    fence_row = next(r for r in report.readings if r.check == "former-writer-fence")
    assert fence_row.status is Status.FAILING and "UNFENCED FORMER WRITER" in fence_row.detail
    assert "drctl failback prepare" in fence_row.detail and not report.ready

    dr.engine().run(fence_former_region_runbook(dr.ctx), RunParameters("primary back", "alice"))
    assert by_check(read_status(dr.ctx))[("former-writer-fence", PRIMARY)] is Status.OK
    assert dr.world.node_desired[PRIMARY] == 0


def test_a_former_writer_keeping_wal_for_a_gone_replica_is_a_status_row(dr: Dr) -> None:
    """catalogue: rds.inactive-slot-retains-wal"""
    dr.engine().run(failover_runbook(dr.ctx, "emergency"), RunParameters("drill", "alice", "emergency"))
    database = dr.stack.outputs()["database"]
    former, writer = database[PRIMARY]["identifier"], database[DR]["identifier"]
    rows = {(r.region, r.subject): r.status for r in read_status(dr.ctx).readings if r.check == "wal-retention"}
    assert rows == {(PRIMARY, former): Status.OK, (DR, writer): Status.OK}  # the detached former writer too
    dr.world.slot_wal_bytes[former] = 5e9
    report = read_status(dr.ctx)
    rows = {r.subject: r.status for r in report.readings if r.check == "wal-retention"}
    assert rows == {former: Status.WARNING, writer: Status.OK}


def test_a_lowered_fence_while_failed_over_is_failing(dr: Dr) -> None:
    dr.engine().run(failover_runbook(dr.ctx, "emergency"), RunParameters("outage", "alice", "emergency"))
    dr.world.fence_raised = False  # someone lowered it by hand
    assert by_check(read_status(dr.ctx))[("traffic-fence", DR)] is Status.FAILING


def test_real_readers_turn_unreachable_endpoints_into_rows(dr: Dr, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    dr.ctx.aws = DrAws(unreachable_clients(), dr.clock)
    dr.ctx.aws.find_name_servers = lambda zone: []  # no name server answers either (and no real DNS in a test)
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
    fence = {"region": DR, "alarmName": "fence", "namespace": "n", "metricName": "m", "dimensions": {"R": "r"}}
    readings = [
        aws.replica_lag(DR, "db", cfg),
        aws.data_loss_window(DR, "db", cfg),
        aws.error_rate(DR, load_balancer_metrics("app/alb/1")),
        aws.global_datastore(DR, "ldgnf-x", DR),
        aws.target_health(DR, "arn:aws:elasticloadbalancing:us-west-2:1:targetgroup/tg/1"),
        aws.traffic_fence(fence),
    ]
    assert all(reading.status is Status.UNREACHABLE for reading in readings)
    actions = [
        lambda: aws.fence_writer(DR, "params", "db", dr.clock.now()),
        lambda: aws.wait_for_traffic_fence(fence, raised=True, since=dr.clock.now()),
        lambda: aws.wait_until_replica_has_everything(DR, "db", dr.clock.now()),
        lambda: aws.start_batch_replication(DR, "arn:aws:s3:::b", "arn:aws:iam::1:role/r", "t", "d"),
        lambda: aws.scale_node_group(DR, "eks", "nodes", cfg.node_group_full),
        lambda: aws.fail_over_global_datastore("ldgnf-x", DR, "group"),
        lambda: aws.wait_until_writer(DR, "db"),
        lambda: aws.notify(DR, "arn:aws:sns:us-west-2:123456789012:alerts", "subject", {}),
    ]
    for action in actions:
        with pytest.raises(DrctlError, match=DR):
            action()
