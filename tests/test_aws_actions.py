"""DR actions against moto (Stubber for the global datastore): idempotent, bounded in time, clear on failure."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.stub import Stubber

from automation.aws import actions
from automation.aws.actions import AwsActionError
from automation.aws.clients import AwsClients, RegionUnreachableError
from automation.aws.waiting import Observation, WaitTimeoutError, wait_for
from components import naming
from components.config import NodeGroupSize
from tests.aws_support import (
    CFG,
    CLUSTER,
    DR,
    GLOBAL_ID,
    NODES,
    PRIMARY,
    REPLICA_ID,
    REPLICA_PARAMS,
    WRITER_ID,
    WRITER_PARAMS,
    create_node_group,
    create_writer_and_replica,
    global_groups,
    put_replica_lag,
    shared_clients,
    unreachable_clients,
)
from tests.fake_clock import FakeClock

DR_CACHE, PRIMARY_CACHE = naming.cache_group_id(CFG, "dr"), naming.cache_group_id(CFG, "primary")


# --- the polling loop -------------------------------------------------------------------


def test_wait_for_sleeps_on_the_injected_clock_and_times_out_naming_what_it_waited_for(clock: FakeClock) -> None:
    with pytest.raises(WaitTimeoutError, match=r"timed out after 60s waiting for the thing; last seen: still 7"):
        wait_for(
            "the thing",
            lambda: Observation(False, 7, "still 7"),
            timeout_seconds=60,
            interval_seconds=25,
            clock=clock,
        )
    assert clock.sleeps == [25, 25, 10]


def test_wait_for_rides_out_a_region_that_is_briefly_unreachable(clock: FakeClock) -> None:
    answers: list[Any] = [RegionUnreachableError(DR, OSError("blip")), Observation(True, "done", "done")]

    def probe() -> Observation[str]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_for("recovery", probe, timeout_seconds=60, interval_seconds=10, clock=clock) == "done"
    assert clock.sleeps == [10]


# --- node groups ------------------------------------------------------------------------


def test_scale_node_group_to_full_size_then_repeat_is_a_no_op(aws: AwsClients, clock: FakeClock) -> None:
    create_node_group(aws)
    full = CFG.node_group_full
    first = actions.scale_node_group(aws, DR, CLUSTER, NODES, full, clock=clock)
    assert first.changed
    assert (first.state.min_size, first.state.desired_size, first.state.max_size) == (full.min, full.desired, full.max)
    scaling = aws.client("eks", DR).describe_nodegroup(clusterName=CLUSTER, nodegroupName=NODES)["nodegroup"]
    assert scaling["scalingConfig"] == {"minSize": full.min, "desiredSize": full.desired, "maxSize": full.max}

    again = actions.scale_node_group(aws, DR, CLUSTER, NODES, full, clock=clock)
    assert not again.changed
    assert again.detail == f"already ACTIVE at {full.desired} nodes"


def _nodegroup(status: str, desired: int) -> dict[str, Any]:
    return {
        "nodegroup": {
            "nodegroupName": NODES,
            "clusterName": CLUSTER,
            "status": status,
            "scalingConfig": {"minSize": 1, "desiredSize": desired, "maxSize": 12},
        }
    }


def test_scale_node_group_waits_for_a_running_update_before_scaling(credentials: None, clock: FakeClock) -> None:
    clients = shared_clients()
    target = NodeGroupSize(min=1, desired=6, max=12)
    query = {"clusterName": CLUSTER, "nodegroupName": NODES}
    with Stubber(clients.client("eks", DR)) as stub:
        stub.add_response("describe_nodegroup", _nodegroup("UPDATING", 2), query)
        stub.add_response("describe_nodegroup", _nodegroup("UPDATING", 2), query)
        stub.add_response("describe_nodegroup", _nodegroup("ACTIVE", 2), query)
        stub.add_response(
            "update_nodegroup_config",
            {"update": {"id": "u-1", "status": "InProgress"}},
            {**query, "scalingConfig": {"minSize": 1, "desiredSize": 6, "maxSize": 12}},
        )
        stub.add_response("describe_nodegroup", _nodegroup("UPDATING", 6), query)
        stub.add_response("describe_nodegroup", _nodegroup("ACTIVE", 6), query)
        outcome = actions.scale_node_group(clients, DR, CLUSTER, NODES, target, interval_seconds=15, clock=clock)
        stub.assert_no_pending_responses()
    assert outcome.changed and outcome.state.desired_size == 6
    assert clock.sleeps == [15, 15]


def test_scale_node_group_times_out_naming_the_node_group(credentials: None, clock: FakeClock) -> None:
    clients = shared_clients()
    with Stubber(clients.client("eks", DR)) as stub:
        stub.add_response("describe_nodegroup", _nodegroup("ACTIVE", 2))
        stub.add_response("update_nodegroup_config", {"update": {"id": "u-1"}})
        for _ in range(5):
            stub.add_response("describe_nodegroup", _nodegroup("UPDATING", 6))
        with pytest.raises(WaitTimeoutError, match=f"node group {CLUSTER}/{NODES} in {DR} to be ACTIVE") as raised:
            actions.scale_node_group(
                clients, DR, CLUSTER, NODES, NodeGroupSize(1, 6, 12), timeout_seconds=60, clock=clock
            )
    assert "last seen: UPDATING at min/desired/max 1/6/12" in str(raised.value)
    assert sum(clock.sleeps) == 60


def test_scale_degraded_node_group_fails_naming_it(credentials: None, clock: FakeClock) -> None:
    clients = shared_clients()
    degraded = _nodegroup("DEGRADED", 2)
    degraded["nodegroup"]["health"] = {"issues": [{"code": "Ec2SubnetInvalidConfiguration", "message": "no IPs"}]}
    with Stubber(clients.client("eks", DR)) as stub:
        stub.add_response("describe_nodegroup", degraded)
        with pytest.raises(AwsActionError, match=f"scale node group {CLUSTER}/{NODES} in {DR}: node group is DEGRADED"):
            actions.scale_node_group(clients, DR, CLUSTER, NODES, NodeGroupSize(1, 6, 12), clock=clock)


def test_actions_raise_region_unreachable_for_an_impaired_region(credentials: None, clock: FakeClock) -> None:
    with pytest.raises(RegionUnreachableError, match=DR):
        actions.scale_node_group(unreachable_clients(), DR, CLUSTER, NODES, CFG.node_group_full, clock=clock)


# --- stopping writes and catching up ---------------------------------------------------------


def _read_only_parameter(aws: AwsClients, group: str) -> str | None:
    parameters = aws.client("rds", PRIMARY).describe_db_parameters(DBParameterGroupName=group, Source="user")
    values = {p["ParameterName"]: p.get("ParameterValue") for p in parameters["Parameters"]}
    return values.get(actions.READ_ONLY_PARAMETER)


def test_stop_writes_sets_read_only_immediately_once_and_allow_writes_reverses_it(
    aws: AwsClients, clock: FakeClock
) -> None:
    create_writer_and_replica(aws)
    stopped = actions.stop_writes(aws, PRIMARY, WRITER_PARAMS, WRITER_ID, clock=clock)
    assert stopped.changed
    assert _read_only_parameter(aws, WRITER_PARAMS) == "1"
    described = aws.client("rds", PRIMARY).describe_db_parameters(DBParameterGroupName=WRITER_PARAMS, Source="user")
    assert described["Parameters"][0]["ApplyMethod"] == "immediate"

    assert not actions.stop_writes(aws, PRIMARY, WRITER_PARAMS, WRITER_ID, clock=clock).changed

    allowed = actions.allow_writes(aws, PRIMARY, WRITER_PARAMS, WRITER_ID, clock=clock)
    assert allowed.changed
    assert _read_only_parameter(aws, WRITER_PARAMS) == "0"
    assert not actions.allow_writes(aws, PRIMARY, WRITER_PARAMS, WRITER_ID, clock=clock).changed


def test_stop_writes_refuses_a_parameter_group_the_writer_does_not_use(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    aws.client("rds", PRIMARY).create_db_parameter_group(
        DBParameterGroupName="unrelated", DBParameterGroupFamily="postgres16", Description="x"
    )
    with pytest.raises(AwsActionError, match=f"stop writes on {WRITER_ID} .* uses {WRITER_PARAMS}"):
        actions.stop_writes(aws, PRIMARY, "unrelated", WRITER_ID, clock=clock)
    assert _read_only_parameter(aws, "unrelated") is None


def test_wait_until_caught_up_returns_the_first_zero_lag_after_writes_stopped(
    aws: AwsClients, clock: FakeClock
) -> None:
    create_writer_and_replica(aws)
    stopped_at = clock.now()
    # Zero before the stop does not count; lag is still draining after it.
    put_replica_lag(
        aws, REPLICA_ID, [(stopped_at - timedelta(seconds=90), 0.0), (stopped_at + timedelta(seconds=5), 8.0)]
    )

    def replica_catches_up(fake: FakeClock) -> None:
        if len(fake.sleeps) == 2:
            put_replica_lag(aws, REPLICA_ID, [(fake.now() - timedelta(seconds=5), 0.0)])

    clock.current += timedelta(seconds=30)
    clock.on_sleep = replica_catches_up
    sample = actions.wait_until_caught_up(aws, DR, REPLICA_ID, since=stopped_at, interval_seconds=30, clock=clock)
    assert sample.seconds == 0
    assert sample.at > stopped_at
    assert len(clock.sleeps) == 2


def test_wait_until_caught_up_times_out_naming_the_replica(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    put_replica_lag(aws, REPLICA_ID, [(clock.now() + timedelta(seconds=5), 45.0)])
    since = clock.now()
    clock.current += timedelta(seconds=30)
    with pytest.raises(WaitTimeoutError, match=f"replica {REPLICA_ID} in {DR} to catch up") as raised:
        actions.wait_until_caught_up(aws, DR, REPLICA_ID, since=since, timeout_seconds=120, clock=clock)
    assert "last seen: ReplicaLag 45s" in str(raised.value)


# --- promotion -------------------------------------------------------------------------------


def test_promote_records_the_lag_at_promotion_and_a_repeat_is_a_no_op(aws: AwsClients, clock: FakeClock) -> None:
    from automation.sandbox.simulated import correct_promotion

    writer_arn = create_writer_and_replica(aws)
    lags = [(clock.now() - timedelta(seconds=100), 90.0), (clock.now() - timedelta(seconds=40), 42.0)]
    put_replica_lag(aws, REPLICA_ID, lags)

    outcome = actions.promote_replica(aws, DR, REPLICA_ID, clock=clock)
    assert outcome.changed and outcome.state is not None
    # The latest datapoint, not the worst of the window: the lag when replication stopped.
    assert (outcome.state.lag_seconds, outcome.state.source) == (42.0, writer_arn)
    assert outcome.state.promoted_at == clock.now()

    correct_promotion(DR, REPLICA_ID)  # what the offline sandbox does after moto's promote_read_replica
    writer = actions.wait_until_writer(aws, DR, REPLICA_ID, clock=clock)
    assert writer.standalone_writer
    repeat = actions.promote_replica(aws, DR, REPLICA_ID, clock=clock)
    assert (repeat.changed, repeat.detail, repeat.state) == (False, "already a writer", None)


def test_promote_without_lag_datapoints_records_an_unknown_window(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    outcome = actions.promote_replica(aws, DR, REPLICA_ID, backup_retention_days=7, clock=clock)
    assert outcome.state is not None and outcome.state.lag_seconds is None
    assert "unknown" in outcome.detail


def test_wait_until_writer_times_out_naming_the_instance_while_it_is_still_a_replica(
    aws: AwsClients, clock: FakeClock
) -> None:
    create_writer_and_replica(aws)
    with pytest.raises(WaitTimeoutError, match=f"{REPLICA_ID} in {DR} to be a standalone available writer") as raised:
        actions.wait_until_writer(aws, DR, REPLICA_ID, timeout_seconds=90, clock=clock)
    assert f"last seen: replica in status available of arn:aws:rds:{PRIMARY}" in str(raised.value)


# --- global datastore failover (Stubber) ----------------------------------------------------

DESCRIBE = {"GlobalReplicationGroupId": GLOBAL_ID, "ShowMemberInfo": True}
FAILOVER = {"GlobalReplicationGroupId": GLOBAL_ID, "PrimaryRegion": DR, "PrimaryReplicationGroupId": DR_CACHE}


def test_global_datastore_failover_calls_the_api_from_the_dr_region_then_polls(
    credentials: None, clock: FakeClock
) -> None:
    clients = shared_clients()
    with Stubber(clients.client("elasticache", DR)) as stub:
        stub.add_response("describe_global_replication_groups", global_groups(PRIMARY), DESCRIBE)
        stub.add_response("failover_global_replication_group", {}, FAILOVER)
        stub.add_response("describe_global_replication_groups", global_groups(PRIMARY, status="modifying"), DESCRIBE)
        stub.add_response("describe_global_replication_groups", global_groups(DR, status="modifying"), DESCRIBE)
        stub.add_response("describe_global_replication_groups", global_groups(DR), DESCRIBE)
        outcome = actions.fail_over_global_datastore(clients, GLOBAL_ID, DR, DR_CACHE, interval_seconds=15, clock=clock)
        stub.assert_no_pending_responses()
    assert outcome.changed
    assert outcome.state.primary is not None and outcome.state.primary.region == DR
    assert clock.sleeps == [15, 15]


def test_global_datastore_already_failed_over_is_a_no_op(credentials: None, clock: FakeClock) -> None:
    clients = shared_clients()
    with Stubber(clients.client("elasticache", DR)) as stub:
        # Only a describe is stubbed: a failover call would fail the test as an unexpected request.
        stub.add_response("describe_global_replication_groups", global_groups(DR), DESCRIBE)
        outcome = actions.fail_over_global_datastore(clients, GLOBAL_ID, DR, DR_CACHE, clock=clock)
        stub.assert_no_pending_responses()
    assert (outcome.changed, outcome.detail) == (False, f"primary already in {DR}")


def test_global_datastore_failover_in_progress_is_awaited_not_restarted(credentials: None, clock: FakeClock) -> None:
    clients = shared_clients()
    with Stubber(clients.client("elasticache", DR)) as stub:
        stub.add_response("describe_global_replication_groups", global_groups(PRIMARY, status="modifying"), DESCRIBE)
        stub.add_response("describe_global_replication_groups", global_groups(DR, status="modifying"), DESCRIBE)
        stub.add_response("describe_global_replication_groups", global_groups(DR), DESCRIBE)
        stub.add_response("describe_global_replication_groups", global_groups(DR), DESCRIBE)
        outcome = actions.fail_over_global_datastore(clients, GLOBAL_ID, DR, DR_CACHE, clock=clock)
        stub.assert_no_pending_responses()
    assert not outcome.changed


def test_global_datastore_failover_refused_names_the_datastore_and_hints_at_disassociation(
    credentials: None, clock: FakeClock
) -> None:
    clients = shared_clients()
    with Stubber(clients.client("elasticache", DR)) as stub:
        stub.add_response("describe_global_replication_groups", global_groups(PRIMARY), DESCRIBE)
        stub.add_client_error(
            "failover_global_replication_group", "InvalidGlobalReplicationGroupState", "primary-only", 400
        )
        with pytest.raises(AwsActionError, match=f"fail over global datastore {GLOBAL_ID} in {DR}") as raised:
            actions.fail_over_global_datastore(clients, GLOBAL_ID, DR, DR_CACHE, clock=clock)
    assert "DisassociateGlobalReplicationGroup" in (raised.value.hint or "")


def test_global_datastore_failover_to_a_non_member_is_refused(credentials: None, clock: FakeClock) -> None:
    clients = shared_clients()
    with Stubber(clients.client("elasticache", DR)) as stub:
        stub.add_response("describe_global_replication_groups", global_groups(PRIMARY), DESCRIBE)
        with pytest.raises(AwsActionError, match="drp-typo is not a member"):
            actions.fail_over_global_datastore(clients, GLOBAL_ID, DR, "drp-typo", clock=clock)


# --- snapshots -------------------------------------------------------------------------------


def test_snapshot_before_replacement_is_deterministic_and_taken_once(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    first = actions.snapshot_before_replacement(aws, PRIMARY, WRITER_ID, clock=clock)
    assert first.changed
    assert first.state == naming.pre_replacement_snapshot_identifier(WRITER_ID) == f"{WRITER_ID}-pre-replacement"
    again = actions.snapshot_before_replacement(aws, PRIMARY, WRITER_ID, clock=clock)
    assert (again.changed, again.state) == (False, first.state)
    snapshots = aws.client("rds", PRIMARY).describe_db_snapshots(DBInstanceIdentifier=WRITER_ID)["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"] for s in snapshots if s["SnapshotType"] == "manual"] == [first.state]


def test_snapshot_of_a_missing_instance_fails_naming_it(aws: AwsClients, clock: FakeClock) -> None:
    with pytest.raises(AwsActionError, match=f"snapshot drp-gone as drp-gone-pre-replacement in {PRIMARY}"):
        actions.snapshot_before_replacement(aws, PRIMARY, "drp-gone", clock=clock)


def test_snapshot_that_fails_while_creating_raises(credentials: None, clock: FakeClock) -> None:
    clients = shared_clients()
    snapshot_id = naming.pre_replacement_snapshot_identifier(WRITER_ID)
    with Stubber(clients.client("rds", PRIMARY)) as stub:
        stub.add_response(
            "describe_db_snapshots", {"DBSnapshots": [{"DBSnapshotIdentifier": snapshot_id, "Status": "creating"}]}
        )
        stub.add_response(
            "describe_db_snapshots", {"DBSnapshots": [{"DBSnapshotIdentifier": snapshot_id, "Status": "failed"}]}
        )
        with pytest.raises(AwsActionError, match="snapshot is failed"):
            actions.snapshot_before_replacement(clients, PRIMARY, WRITER_ID, clock=clock)


# --- notification ----------------------------------------------------------------------------


def test_notify_publishes_a_json_message_with_a_clean_subject(aws: AwsClients) -> None:
    sns, sqs = aws.client("sns", DR), aws.client("sqs", DR)
    topic = sns.create_topic(Name=naming.alert_topic_name(CFG, "dr"))["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    message_id = actions.notify(
        aws, DR, topic, "failover\ncomplete \u2014 " + "x" * 200, {"rtoSeconds": 512, "state": "failed-over"}
    )

    envelope = json.loads(sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"])
    assert envelope["MessageId"] == message_id
    assert envelope["Subject"].startswith("failover complete ? x") and len(envelope["Subject"]) == 100
    assert json.loads(envelope["Message"]) == {"rtoSeconds": 512, "state": "failed-over"}


def test_notify_to_a_missing_topic_names_it(aws: AwsClients) -> None:
    topic = f"arn:aws:sns:{DR}:123456789012:nobody"
    with pytest.raises(AwsActionError, match=f"notify {topic} in {DR}"):
        actions.notify(aws, DR, topic, "hello", {})


def test_unused_replica_parameter_group_is_untouched_by_stop_writes(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    actions.stop_writes(aws, PRIMARY, WRITER_PARAMS, WRITER_ID, clock=clock)
    parameters = aws.client("rds", DR).describe_db_parameters(DBParameterGroupName=REPLICA_PARAMS, Source="user")
    assert parameters["Parameters"] == []
