"""Readiness readings against moto, and botocore's Stubber where moto lacks the API."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from automation.aws import readiness
from automation.aws.clients import ENDPOINT_ENV, AwsClients, RegionUnreachableError, reaching
from automation.aws.readiness import Status
from components import naming
from tests.aws_support import (
    CFG,
    CLUSTER,
    DR,
    GLOBAL_ID,
    NODES,
    PRIMARY,
    REPLICA_ID,
    WRITER_ID,
    create_node_group,
    create_writer_and_replica,
    global_groups,
    put_metric,
    put_replica_lag,
    shared_clients,
    unreachable_clients,
)
from tests.fake_clock import FakeClock

RPO, WARN = CFG.rpo_seconds, CFG.replica_lag_warning_seconds


# --- clients -------------------------------------------------------------------------


def test_clients_are_cached_per_service_and_region_and_fail_fast(credentials: None) -> None:
    clients = AwsClients()
    rds = clients.client("rds", DR)
    assert clients.client("rds", DR) is rds
    assert clients.client("rds", PRIMARY) is not rds
    assert rds.meta.region_name == DR
    assert rds.meta.config.connect_timeout == 5
    assert rds.meta.config.retries["total_max_attempts"] == 3


def test_route53_is_served_from_us_east_1_whatever_the_region(credentials: None) -> None:
    clients = AwsClients()
    assert clients.api_region("route53", DR) == "us-east-1"
    assert clients.client("route53", DR).meta.endpoint_url == "https://route53.amazonaws.com"
    assert clients.client("route53", DR) is clients.client("route53", PRIMARY)


def test_endpoint_comes_from_the_option_or_the_environment(monkeypatch: pytest.MonkeyPatch, credentials: None) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, "http://127.0.0.1:5000")
    assert AwsClients().client("s3", DR).meta.endpoint_url == "http://127.0.0.1:5000"
    assert AwsClients("http://moto:5001").client("s3", DR).meta.endpoint_url == "http://moto:5001"


def test_unreachable_endpoint_raises_one_error_type_naming_the_region(credentials: None) -> None:
    clients = unreachable_clients()
    with pytest.raises(RegionUnreachableError, match=f"AWS in {DR} is unreachable") as raised, reaching(DR):
        clients.client("rds", DR).describe_db_instances()
    assert raised.value.region == DR


def test_server_errors_after_retries_count_as_unreachable_but_client_errors_do_not() -> None:
    def error(status: int, code: str) -> ClientError:
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "DescribeX")

    with pytest.raises(RegionUnreachableError), reaching(DR):
        raise error(503, "ServiceUnavailable")
    with pytest.raises(ClientError), reaching(DR):
        raise error(400, "InvalidParameterValue")


# --- every reader reports an unreachable region instead of raising ---------------------

READERS = {
    "replica-lag": lambda c: readiness.replica_lag(c, DR, REPLICA_ID, rpo_seconds=RPO, warning_seconds=WARN),
    "database-role": lambda c: readiness.database_role(c, DR, REPLICA_ID, expected_role="replica"),
    "pitr": lambda c: readiness.point_in_time_recovery(c, DR, WRITER_ID, rpo_seconds=RPO),
    "backup": lambda c: readiness.recovery_point_age(c, DR, "vault"),
    "health-check": lambda c: readiness.health_check(c, DR, "hc-1"),
    "s3-replication": lambda c: readiness.s3_replication(c, DR, "src", "arn:aws:s3:::dst", rpo_seconds=RPO),
    "global-datastore": lambda c: readiness.global_datastore(c, DR, "g", expected_primary_region=DR),
    "node-group": lambda c: readiness.node_group(c, DR, "cluster", "nodes"),
    "error-rate": lambda c: readiness.error_rate(c, DR, metrics=ALB),
    "data-loss-window": lambda c: readiness.data_loss_window(
        c, DR, REPLICA_ID, rpo_seconds=RPO, replay_interval_seconds=300
    ),
    "target-health": lambda c: readiness.target_health(
        c, DR, "arn:aws:elasticloadbalancing:us-west-2:1:targetgroup/t/1"
    ),
    "traffic-fence": lambda c: readiness.traffic_fence(c, DR, "fence"),
}
ALB = readiness.load_balancer_metrics("app/drp-usw2-alb/0123456789abcdef")


@pytest.mark.parametrize("check", READERS)
def test_unreachable_region_is_a_reading_not_an_exception(check: str, credentials: None) -> None:
    reading = READERS[check](unreachable_clients())
    assert reading.check == check
    assert reading.status is Status.UNREACHABLE
    assert reading.region == DR
    assert "unreachable" in reading.detail
    # Route53's API lives in us-east-1 even for a us-west-2 health check: the detail says which region failed.
    assert ("us-east-1" if check == "health-check" else DR) in reading.detail


# --- replica lag --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lags", "status", "value"),
    [
        ([3.0, 10.0], Status.OK, 3.0),
        # An idle source: ReplicaLag saws up to about 300 s, the low point shows the replica keeps up.
        ([290.0, 5.0, 240.0], Status.OK, 5.0),
        ([WARN + 30.0, WARN + 1.0], Status.WARNING, WARN + 1.0),
        ([RPO + 60.0, RPO + 120.0], Status.FAILING, RPO + 60.0),
    ],
)
def test_replica_lag_is_the_closest_the_replica_came_in_the_window(
    aws: AwsClients, clock: FakeClock, lags: list[float], status: Status, value: float
) -> None:
    """catalogue: rds.postgres-replica-lag-is-time-since-last-replay"""
    create_writer_and_replica(aws)
    put_replica_lag(aws, REPLICA_ID, [(clock.now() - timedelta(seconds=30 + 60 * i), v) for i, v in enumerate(lags)])
    reading = readiness.replica_lag(aws, DR, REPLICA_ID, rpo_seconds=RPO, warning_seconds=WARN, clock=clock)
    assert (reading.status, reading.value, reading.unit) == (status, value, "s")
    assert reading.facts["latestSeconds"] == lags[0]
    assert reading.facts["source"].endswith(f":db:{WRITER_ID}")


def test_replica_lag_ignores_datapoints_older_than_the_window(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    put_replica_lag(
        aws, REPLICA_ID, [(clock.now() - timedelta(minutes=30), 900.0), (clock.now() - timedelta(seconds=20), 2.0)]
    )
    reading = readiness.replica_lag(aws, DR, REPLICA_ID, rpo_seconds=RPO, warning_seconds=WARN, clock=clock)
    assert (reading.status, reading.value) == (Status.OK, 2.0)


def _lag_history(aws: AwsClients, clock: FakeClock, points: list[tuple[int, float]]) -> None:
    """(minutes before now, ReplicaLag) datapoints."""
    put_replica_lag(aws, REPLICA_ID, [(clock.now() - timedelta(minutes=m), lag) for m, lag in points])


def test_the_data_loss_window_is_the_lag_before_replay_stopped_not_the_time_since(
    aws: AwsClients, clock: FakeClock
) -> None:
    """The primary stopped 10 minutes ago with the replica 4 s behind: the window is 4 s, not 600."""
    create_writer_and_replica(aws)
    history = [(20 - i, 4.0) for i in range(10)]  # busy source: a few seconds behind every minute
    history += [(10 - i, 4.0 + 60 * (i + 1)) for i in range(10)]  # then frozen: grows a minute a minute
    _lag_history(aws, clock, history)
    reading = readiness.data_loss_window(aws, DR, REPLICA_ID, rpo_seconds=RPO, replay_interval_seconds=300, clock=clock)
    assert reading.status is Status.OK and reading.value == 4.0  # the lag of the first datapoint of the freeze
    assert "no replay since" in reading.detail and reading.facts["replayedThrough"] < reading.facts["frozenSince"]
    # The naive reading of the same history would refuse: the latest lag is far above the RPO.
    latest = readiness.replica_lag_samples(
        aws, DR, REPLICA_ID, since=clock.now() - timedelta(hours=1), until=clock.now()
    )
    assert latest[-1].seconds > RPO


def test_a_replica_still_replaying_has_the_window_of_its_recent_lag(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    _lag_history(aws, clock, [(5, 250.0), (4, 6.0), (3, 60.0), (2, 120.0), (1, 3.0)])  # an idle source's saw
    reading = readiness.data_loss_window(aws, DR, REPLICA_ID, rpo_seconds=RPO, replay_interval_seconds=300, clock=clock)
    assert (reading.status, reading.value) == (Status.OK, 3.0) and "still replays" in reading.detail


def test_a_lag_above_the_rpo_when_replay_stopped_fails_and_no_history_is_unknown(
    aws: AwsClients, clock: FakeClock
) -> None:
    create_writer_and_replica(aws)
    unknown = readiness.data_loss_window(aws, DR, REPLICA_ID, rpo_seconds=RPO, replay_interval_seconds=300, clock=clock)
    assert unknown.status is Status.UNKNOWN
    history = [(20 - i, 420.0) for i in range(5)] + [(14 - i, 480.0 + 60 * i) for i in range(14)]
    _lag_history(aws, clock, [(m, lag) for m, lag in history])
    reading = readiness.data_loss_window(aws, DR, REPLICA_ID, rpo_seconds=RPO, replay_interval_seconds=300, clock=clock)
    assert reading.status is Status.FAILING and reading.value == 480.0


def test_a_replica_that_fell_behind_just_before_the_outage_does_not_pass_the_rpo(
    aws: AwsClients, clock: FakeClock
) -> None:
    """Lagging 360 s when the primary stopped 2 minutes ago: the window is 360 s, not the 10 s of 7 minutes ago
    (the lowest lag of the last replay cycle)."""
    create_writer_and_replica(aws)
    history = [(7, 10.0), (6, 10.0), (5, 120.0), (4, 240.0), (3, 360.0)]
    history += [(2, 420.0), (1, 480.0)]  # replay frozen since the datapoint of 3 minutes ago
    _lag_history(aws, clock, history)
    reading = readiness.data_loss_window(aws, DR, REPLICA_ID, rpo_seconds=RPO, replay_interval_seconds=300, clock=clock)
    assert (reading.status, reading.value) == (Status.FAILING, 360.0)
    assert "an idle source or an outage" in reading.detail


def test_a_replica_replaying_far_behind_has_the_window_of_its_latest_lag(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    _lag_history(aws, clock, [(4, 5.0), (3, 120.0), (2, 250.0), (1, RPO + 30.0)])  # replays, but falls behind
    reading = readiness.data_loss_window(aws, DR, REPLICA_ID, rpo_seconds=RPO, replay_interval_seconds=300, clock=clock)
    assert (reading.status, reading.value) == (Status.FAILING, RPO + 30.0) and "still replays" in reading.detail


@pytest.mark.parametrize(
    "history",
    [
        [(6, 5.0), (5, 5.0), (4, 5.0), (3, -1.0), (2, -1.0), (1, -1.0)],
        [(3, -1.0), (2, -1.0), (1, -1.0)],
    ],
)
def test_a_data_loss_window_of_minus_one_samples_is_never_ok(
    aws: AwsClients, clock: FakeClock, history: list[tuple[int, float]]
) -> None:
    """catalogue: rds.replica-lag-minus-one-replication-stopped"""
    create_writer_and_replica(aws)
    _lag_history(aws, clock, history)
    reading = readiness.data_loss_window(aws, DR, REPLICA_ID, rpo_seconds=RPO, replay_interval_seconds=300, clock=clock)
    assert (reading.status, reading.value) == (Status.UNKNOWN, None)
    assert "replication is not running" in reading.detail


def test_negative_samples_between_valid_ones_are_left_out(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    _lag_history(aws, clock, [(4, 8.0), (3, -1.0), (2, 6.0), (1, 4.0)])
    reading = readiness.data_loss_window(aws, DR, REPLICA_ID, rpo_seconds=RPO, replay_interval_seconds=300, clock=clock)
    assert (reading.status, reading.value) == (Status.OK, 4.0)


def test_replica_lag_without_datapoints_is_unknown(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    reading = readiness.replica_lag(aws, DR, REPLICA_ID, rpo_seconds=RPO, warning_seconds=WARN, clock=clock)
    assert reading.status is Status.UNKNOWN
    assert "no ReplicaLag datapoints" in reading.detail


def test_replica_lag_of_minus_one_means_replication_stopped(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    put_replica_lag(aws, REPLICA_ID, [(clock.now() - timedelta(seconds=20), -1.0)])
    reading = readiness.replica_lag(aws, DR, REPLICA_ID, rpo_seconds=RPO, warning_seconds=WARN, clock=clock)
    assert reading.status is Status.FAILING
    assert "not running" in reading.detail


def test_replica_lag_of_a_writer_is_failing(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    reading = readiness.replica_lag(aws, PRIMARY, WRITER_ID, rpo_seconds=RPO, warning_seconds=WARN, clock=clock)
    assert reading.status is Status.FAILING
    assert "not a replica" in reading.detail


def test_replica_lag_of_a_missing_instance_is_failing_and_names_the_error(aws: AwsClients) -> None:
    reading = readiness.replica_lag(aws, DR, "drp-usw2-pg-g9", rpo_seconds=RPO, warning_seconds=WARN)
    assert reading.status is Status.FAILING
    assert reading.detail.startswith("DBInstanceNotFound")


def test_broken_replication_status_info_is_failing(credentials: None) -> None:
    clients = shared_clients()
    rds = clients.client("rds", DR)
    instance = {
        "DBInstanceIdentifier": REPLICA_ID,
        "DBInstanceArn": f"arn:aws:rds:{DR}:123456789012:db:{REPLICA_ID}",
        "DBInstanceStatus": "available",
        "ReadReplicaSourceDBInstanceIdentifier": f"arn:aws:rds:{PRIMARY}:123456789012:db:{WRITER_ID}",
        "StatusInfos": [{"StatusType": "read replication", "Normal": False, "Status": "error", "Message": "WAL gap"}],
    }
    with Stubber(rds) as stub:
        stub.add_response("describe_db_instances", {"DBInstances": [instance]}, {"DBInstanceIdentifier": REPLICA_ID})
        reading = readiness.replica_lag(clients, DR, REPLICA_ID, rpo_seconds=RPO, warning_seconds=WARN)
    assert reading.status is Status.FAILING
    assert reading.detail == "replication error: WAL gap"


# --- database role -------------------------------------------------------------------


def test_database_role_reads_writer_and_replica_of_the_writer(aws: AwsClients) -> None:
    writer_arn = create_writer_and_replica(aws)
    writer = readiness.database_role(aws, PRIMARY, WRITER_ID, expected_role="writer")
    replica = readiness.database_role(aws, DR, REPLICA_ID, expected_role="replica", expected_source=writer_arn)
    assert (writer.status, writer.value) == (Status.OK, "writer")
    assert (replica.status, replica.value) == (Status.OK, "replica")
    assert replica.facts["source"] == writer_arn


def test_database_role_fails_on_a_replica_of_another_source(aws: AwsClients) -> None:
    create_writer_and_replica(aws)
    other = f"arn:aws:rds:{PRIMARY}:123456789012:db:drp-use1-pg-g2"
    reading = readiness.database_role(aws, DR, REPLICA_ID, expected_role="replica", expected_source=other)
    assert reading.status is Status.FAILING
    assert f"expected a replica of {other}" in reading.detail


def test_the_role_is_read_as_the_api_answers_and_the_sandbox_fix_makes_moto_answer_right(aws: AwsClients) -> None:
    from automation.sandbox.simulated import correct_promotion

    writer_arn = create_writer_and_replica(aws)
    aws.client("rds", DR).promote_read_replica(DBInstanceIdentifier=REPLICA_ID)
    # moto's bug, as it is: the promoted instance still names its source, and the reader does not second-guess it.
    stale = readiness.database_role(aws, DR, REPLICA_ID, expected_role="writer")
    assert (stale.status, stale.value, stale.facts["source"]) == (Status.FAILING, "replica", writer_arn)
    # The offline sandbox corrects moto's state after a promotion; then the same reader sees the writer.
    correct_promotion(DR, REPLICA_ID)
    fixed = readiness.database_role(aws, DR, REPLICA_ID, expected_role="writer")
    assert (fixed.status, fixed.value) == (Status.OK, "writer")


# --- point-in-time recovery ------------------------------------------------------------


def test_pitr_is_ok_when_the_latest_restorable_time_is_recent(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    reading = readiness.point_in_time_recovery(aws, PRIMARY, WRITER_ID, rpo_seconds=RPO, clock=clock)
    assert reading.status is Status.OK
    assert reading.value is not None and reading.value < RPO
    assert reading.facts["backupRetentionDays"] == 7


def test_pitr_fails_when_restorable_time_lags_twice_the_rpo(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    clock.current += timedelta(seconds=2 * RPO + 60)
    reading = readiness.point_in_time_recovery(aws, PRIMARY, WRITER_ID, rpo_seconds=RPO, clock=clock)
    assert reading.status is Status.FAILING


def test_pitr_fails_when_automated_backups_are_off(aws: AwsClients) -> None:
    create_writer_and_replica(aws)
    aws.client("rds", PRIMARY).modify_db_instance(
        DBInstanceIdentifier=WRITER_ID, BackupRetentionPeriod=0, ApplyImmediately=True
    )
    reading = readiness.point_in_time_recovery(aws, PRIMARY, WRITER_ID, rpo_seconds=RPO)
    assert (reading.status, reading.detail) == (Status.FAILING, "automated backups are off")


# --- AWS Backup recovery points (moto lacks them: Stubber) ---------------------------------


def _recovery_point(clock: FakeClock, hours_ago: float, status: str = "COMPLETED") -> dict[str, Any]:
    finished = clock.now() - timedelta(hours=hours_ago)
    return {
        "RecoveryPointArn": f"arn:aws:backup:{DR}:123456789012:recovery-point:{hours_ago}",
        "BackupVaultName": "vault",
        "Status": status,
        "CreationDate": finished - timedelta(minutes=20),
        "CompletionDate": finished,
    }


@pytest.mark.parametrize(
    ("points", "status"),
    [
        ([(5, "COMPLETED"), (29, "COMPLETED")], Status.OK),
        ([(30, "COMPLETED")], Status.WARNING),
        ([(5, "COMPLETED"), (6, "PARTIAL")], Status.WARNING),
        ([(2, "PARTIAL")], Status.FAILING),
        ([], Status.FAILING),
    ],
)
def test_recovery_point_age_against_the_daily_schedule(
    credentials: None, clock: FakeClock, points: list[tuple[float, str]], status: Status
) -> None:
    clients = shared_clients()
    vault = naming.backup_vault_name(CFG, "dr")
    response = {"RecoveryPoints": [_recovery_point(clock, hours, s) for hours, s in points]}
    with Stubber(clients.client("backup", DR)) as stub:
        # Only the last two schedules plus grace are listed, not the vault's whole history.
        expected = {"BackupVaultName": vault, "ByCreatedAfter": clock.now() - timedelta(days=2, hours=3)}
        stub.add_response("list_recovery_points_by_backup_vault", response, expected)
        reading = readiness.recovery_point_age(clients, DR, vault, clock=clock)
        stub.assert_no_pending_responses()
    assert reading.status is status
    if points and points[0][1] == "COMPLETED":
        assert reading.value == points[0][0] * 3600


def test_recovery_points_follow_pagination_and_the_resource_filter(credentials: None, clock: FakeClock) -> None:
    clients = shared_clients()
    arn = f"arn:aws:rds:{DR}:123456789012:db:{REPLICA_ID}"
    with Stubber(clients.client("backup", DR)) as stub:
        query = {"BackupVaultName": "vault", "ByCreatedAfter": clock.now() - timedelta(days=2, hours=3)}
        stub.add_response(
            "list_recovery_points_by_backup_vault",
            {"RecoveryPoints": [_recovery_point(clock, 40)], "NextToken": "page-2"},
            {**query, "ByResourceArn": arn},
        )
        stub.add_response(
            "list_recovery_points_by_backup_vault",
            {"RecoveryPoints": [_recovery_point(clock, 1)]},
            {**query, "ByResourceArn": arn, "NextToken": "page-2"},
        )
        reading = readiness.recovery_point_age(clients, DR, "vault", resource_arn=arn, clock=clock)
    assert (reading.status, reading.value) == (Status.OK, 3600)


# --- Route53 health checks -----------------------------------------------------------------


def test_health_check_read_from_moto_is_healthy(aws: AwsClients) -> None:
    route53 = aws.client("route53", DR)
    created = route53.create_health_check(
        CallerReference="dr",
        HealthCheckConfig={
            "Type": "HTTPS",
            "FullyQualifiedDomainName": "app-usw2.example.com",
            "ResourcePath": CFG.health_check_path,
            "RequestInterval": 10,
            "FailureThreshold": 3,
        },
    )
    reading = readiness.health_check(aws, DR, created["HealthCheck"]["Id"])
    assert (reading.status, reading.value, reading.region) == (Status.OK, 1.0, DR)


@pytest.mark.parametrize(("healthy", "status"), [(8, Status.OK), (4, Status.WARNING), (1, Status.FAILING)])
def test_health_check_status_is_the_healthy_fraction_of_checkers(
    credentials: None, healthy: int, status: Status
) -> None:
    clients = shared_clients()
    observations = [
        {
            "Region": region,
            "IPAddress": "192.0.2.10",
            "StatusReport": {"Status": "Success: HTTP Status Code 200, OK" if i < healthy else "Failure: timeout"},
        }
        for i, region in enumerate(["us-east-1", "us-west-1", "us-west-2", "eu-west-1"] * 2)
    ]
    with Stubber(clients.client("route53", DR)) as stub:
        stub.add_response(
            "get_health_check_status", {"HealthCheckObservations": observations}, {"HealthCheckId": "hc-dr"}
        )
        reading = readiness.health_check(clients, DR, "hc-dr")
    assert (reading.status, reading.value) == (status, healthy / 8)
    assert reading.detail == f"{healthy}/8 checkers report healthy"


# --- S3 replication --------------------------------------------------------------------------

SOURCE = naming.data_bucket_name(CFG, "primary")
DESTINATION = naming.data_bucket_name(CFG, "dr")
DESTINATION_ARN = f"arn:aws:s3:::{DESTINATION}"
RULE = naming.replication_rule_id(CFG, "primary")


def _replicated_buckets(aws: AwsClients, *, rtc: bool = True, destination: str = DESTINATION_ARN) -> None:
    aws.client("s3", PRIMARY).create_bucket(Bucket=SOURCE)
    aws.client("s3", PRIMARY).put_bucket_versioning(Bucket=SOURCE, VersioningConfiguration={"Status": "Enabled"})
    target: dict[str, Any] = {"Bucket": destination}
    if rtc:
        target["ReplicationTime"] = {"Status": "Enabled", "Time": {"Minutes": 15}}
        target["Metrics"] = {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}
    aws.client("s3", PRIMARY).put_bucket_replication(
        Bucket=SOURCE,
        ReplicationConfiguration={
            "Role": "arn:aws:iam::123456789012:role/replication",
            "Rules": [
                {
                    "ID": RULE,
                    "Priority": 1,
                    "Status": "Enabled",
                    "Filter": {},
                    "DeleteMarkerReplication": {"Status": "Enabled"},
                    "Destination": target,
                }
            ],
        },
    )


def _replication_metric(aws: AwsClients, clock: FakeClock, name: str, value: float) -> None:
    dimensions = {"SourceBucket": SOURCE, "DestinationBucket": DESTINATION, "RuleId": RULE}
    put_metric(aws, PRIMARY, "AWS/S3", name, dimensions, [(clock.now() - timedelta(minutes=2), value)])


def _s3_reading(aws: AwsClients, clock: FakeClock) -> readiness.Reading:
    return readiness.s3_replication(aws, PRIMARY, SOURCE, DESTINATION_ARN, rpo_seconds=RPO, clock=clock)


def test_s3_replication_without_configuration_is_failing(aws: AwsClients, clock: FakeClock) -> None:
    aws.client("s3", PRIMARY).create_bucket(Bucket=SOURCE)
    reading = _s3_reading(aws, clock)
    assert reading.status is Status.FAILING
    assert DESTINATION_ARN in reading.detail


def test_s3_replication_to_another_bucket_is_failing(aws: AwsClients, clock: FakeClock) -> None:
    _replicated_buckets(aws, destination="arn:aws:s3:::somewhere-else")
    assert _s3_reading(aws, clock).status is Status.FAILING


def test_s3_replication_without_rtc_is_a_warning(aws: AwsClients, clock: FakeClock) -> None:
    _replicated_buckets(aws, rtc=False)
    reading = _s3_reading(aws, clock)
    assert reading.status is Status.WARNING
    assert "Replication Time Control" in reading.detail


def test_s3_replication_with_rtc_and_no_traffic_is_ok(aws: AwsClients, clock: FakeClock) -> None:
    _replicated_buckets(aws)
    reading = _s3_reading(aws, clock)
    assert (reading.status, reading.value) == (Status.OK, None)
    assert reading.facts["rules"] == [RULE]


def test_s3_replication_latency_above_the_rpo_warns_and_failures_fail(aws: AwsClients, clock: FakeClock) -> None:
    _replicated_buckets(aws)
    _replication_metric(aws, clock, "ReplicationLatency", RPO + 100.0)
    _replication_metric(aws, clock, "OperationsPendingReplication", 12.0)
    reading = _s3_reading(aws, clock)
    assert (reading.status, reading.value) == (Status.WARNING, RPO + 100.0)
    assert reading.facts["operationsPending"] == 12.0

    _replication_metric(aws, clock, "OperationsFailedReplication", 3.0)
    reading = _s3_reading(aws, clock)
    assert reading.status is Status.FAILING
    assert "3 operations failed" in reading.detail


# --- ElastiCache global datastore (moto lacks it: Stubber) -----------------------------------


@pytest.mark.parametrize(
    ("response", "status"),
    [
        (global_groups(PRIMARY), Status.OK),
        (global_groups(PRIMARY, status="modifying"), Status.WARNING),
        (global_groups(PRIMARY, dr_member="disassociating"), Status.WARNING),
        (global_groups(DR), Status.FAILING),
    ],
)
def test_global_datastore_status_and_primary(credentials: None, response: dict[str, Any], status: Status) -> None:
    clients = shared_clients()
    with Stubber(clients.client("elasticache", DR)) as stub:
        stub.add_response(
            "describe_global_replication_groups",
            response,
            {"GlobalReplicationGroupId": GLOBAL_ID, "ShowMemberInfo": True},
        )
        reading = readiness.global_datastore(clients, DR, GLOBAL_ID, expected_primary_region=PRIMARY)
    assert reading.status is status
    primary = response["GlobalReplicationGroups"][0]["Members"][0 if status is not Status.FAILING else 1]
    assert reading.value == primary["ReplicationGroupRegion"]


def test_missing_global_datastore_is_failing(credentials: None) -> None:
    clients = shared_clients()
    with Stubber(clients.client("elasticache", DR)) as stub:
        stub.add_client_error("describe_global_replication_groups", "GlobalReplicationGroupNotFoundFault", "gone")
        reading = readiness.global_datastore(clients, DR, GLOBAL_ID, expected_primary_region=PRIMARY)
    assert reading.status is Status.FAILING
    assert "GlobalReplicationGroupNotFoundFault" in reading.detail


# --- EKS node group -------------------------------------------------------------------------


def test_node_group_at_standby_size_is_ok_in_steady_state_and_short_for_failover(aws: AwsClients) -> None:
    create_node_group(aws)
    standby, full = CFG.node_group_standby.desired, CFG.node_group_full.desired
    steady = readiness.node_group(aws, DR, CLUSTER, NODES, expected_desired=standby)
    assert (steady.status, steady.value) == (Status.OK, standby)
    short = readiness.node_group(aws, DR, CLUSTER, NODES, expected_desired=full)
    assert short.status is Status.WARNING
    assert f"below the expected {full}" in short.detail


def test_missing_node_group_is_failing(aws: AwsClients) -> None:
    create_node_group(aws)
    reading = readiness.node_group(aws, DR, CLUSTER, "no-such-nodes")
    assert reading.status is Status.FAILING
    assert reading.detail.startswith("ResourceNotFoundException")


# --- error rate -----------------------------------------------------------------------------


def _alb_traffic(aws: AwsClients, clock: FakeClock, per_minute: list[tuple[float, float, float]]) -> None:
    """(target 5xx, load balancer 5xx, RequestCount) per minute; the ELB's 5xx here are all 503s."""
    for minute, (target, elb, total) in enumerate(per_minute, start=1):
        at = clock.now() - timedelta(minutes=minute) + timedelta(seconds=10)
        for metric, value in ((ALB.target_5xx, target), (ALB.elb_5xx, elb), (ALB.elb_503, elb), (ALB.requests, total)):
            if value:  # ELB reports nothing for a count without a non-zero value
                put_metric(aws, DR, metric.namespace, metric.name, metric.dimensions, [(at, value)])


@pytest.mark.parametrize(
    ("traffic", "status", "ratio"),
    [
        ([(1, 0, 100), (0, 0, 100)], Status.OK, 0.005),
        ([(3, 0, 100), (4, 0, 100)], Status.WARNING, 0.035),
        ([(30, 0, 100), (2, 0, 100)], Status.FAILING, 0.16),
        # No healthy target: the ALB rejects before choosing one, so RequestCount never sees those requests.
        ([(0, 40, 60), (0, 0, 100)], Status.FAILING, 0.2),
    ],
)
def test_error_rate_counts_target_and_load_balancer_5xx_over_every_request(
    aws: AwsClients, clock: FakeClock, traffic: list[tuple[float, float, float]], status: Status, ratio: float
) -> None:
    """catalogue: elb.request-count-excludes-rejected-requests"""
    _alb_traffic(aws, clock, traffic)
    # Traffic before the window must not dilute a fresh spike.
    old = [(clock.now() - timedelta(minutes=30), 10000.0)]
    put_metric(aws, DR, ALB.requests.namespace, ALB.requests.name, ALB.requests.dimensions, old)
    reading = readiness.error_rate(aws, DR, metrics=ALB, clock=clock)
    assert reading.status is status
    assert reading.value == pytest.approx(ratio)


def test_only_load_balancer_5xx_without_any_request_counted_is_a_full_outage(aws: AwsClients, clock: FakeClock) -> None:
    _alb_traffic(aws, clock, [(0, 50, 0)])
    reading = readiness.error_rate(aws, DR, metrics=ALB, clock=clock)
    assert (reading.status, reading.value) == (Status.FAILING, 1.0)


def test_metric_totals_only_combine_sums_and_maxima() -> None:
    with pytest.raises(ValueError, match="statistic must be Sum or Maximum"):
        readiness.MetricRef("AWS/ApplicationELB", "TargetResponseTime", {}, "Average")


def test_error_rate_without_requests_is_unknown(aws: AwsClients, clock: FakeClock) -> None:
    """catalogue: elb.metrics-per-60-seconds-only-with-traffic"""
    reading = readiness.error_rate(aws, DR, metrics=ALB, clock=clock)
    assert (reading.status, reading.value) == (Status.UNKNOWN, None)


# --- composition ------------------------------------------------------------------------------


def test_worst_status_orders_failing_above_unreachable_above_warning() -> None:
    assert readiness.worst([Status.OK, Status.WARNING, Status.UNKNOWN]) is Status.WARNING
    assert readiness.worst([Status.UNREACHABLE, Status.FAILING]) is Status.FAILING
    assert readiness.worst([]) is Status.OK


def test_readings_serialise_to_json(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    put_replica_lag(aws, REPLICA_ID, [(clock.now() - timedelta(seconds=20), 4.0)])
    reading = readiness.replica_lag(aws, DR, REPLICA_ID, rpo_seconds=RPO, warning_seconds=WARN, clock=clock)
    data = json.loads(json.dumps(reading.to_dict()))
    assert data["status"] == "ok"
    assert data["facts"]["latestAt"].startswith(str(clock.now().date()))


def _slot_metrics(aws: AwsClients, clock: FakeClock, identifier: str, slot: float, logs: float) -> None:
    at = clock.now() - timedelta(minutes=2)
    dimensions = {"DBInstanceIdentifier": identifier}
    put_metric(aws, PRIMARY, "AWS/RDS", "OldestReplicationSlotLag", dimensions, [(at, slot)])
    put_metric(aws, PRIMARY, "AWS/RDS", "TransactionLogsDiskUsage", dimensions, [(at, logs)])


@pytest.mark.parametrize(
    ("serves_replicas", "slot", "status"),
    [(False, 5e9, Status.WARNING), (False, 0.0, Status.OK), (True, 5e6, Status.OK), (True, 5e9, Status.WARNING)],
)
def test_wal_kept_for_a_slot_no_replica_reads_is_a_warning(
    aws: AwsClients, clock: FakeClock, serves_replicas: bool, slot: float, status: Status
) -> None:
    """catalogue: rds.inactive-slot-retains-wal"""
    _slot_metrics(aws, clock, WRITER_ID, slot, slot + 1e6)
    reading = readiness.wal_retention(
        aws, PRIMARY, WRITER_ID, serves_replicas=serves_replicas, warning_bytes=64 * 2**20, clock=clock
    )
    assert (reading.check, reading.status, reading.value, reading.unit) == ("wal-retention", status, slot, "bytes")
    assert reading.facts["transactionLogsBytes"] == slot + 1e6
    if status is Status.WARNING and not serves_replicas:
        assert "pg_drop_replication_slot" in reading.detail


def test_an_instance_without_slot_datapoints_reports_no_slot(aws: AwsClients, clock: FakeClock) -> None:
    reading = readiness.wal_retention(aws, PRIMARY, WRITER_ID, serves_replicas=False, warning_bytes=1, clock=clock)
    assert (reading.status, reading.value) == (Status.OK, None) and "no replication slot reported" in reading.detail
