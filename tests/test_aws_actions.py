"""DR actions against moto (Stubber for the global datastore): idempotent, bounded in time, clear on failure."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
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
    put_metric,
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


def test_set_read_only_sets_the_default_immediately_once_and_allow_writes_reverses_it(
    aws: AwsClients, clock: FakeClock
) -> None:
    create_writer_and_replica(aws)
    stopped = actions.set_read_only(aws, PRIMARY, WRITER_PARAMS, WRITER_ID, clock=clock)
    assert stopped.changed
    assert _read_only_parameter(aws, WRITER_PARAMS) == "1"
    described = aws.client("rds", PRIMARY).describe_db_parameters(DBParameterGroupName=WRITER_PARAMS, Source="user")
    assert described["Parameters"][0]["ApplyMethod"] == "immediate"

    assert not actions.set_read_only(aws, PRIMARY, WRITER_PARAMS, WRITER_ID, clock=clock).changed

    allowed = actions.allow_writes(aws, PRIMARY, WRITER_PARAMS, WRITER_ID, clock=clock)
    assert allowed.changed
    assert _read_only_parameter(aws, WRITER_PARAMS) == "0"
    assert not actions.allow_writes(aws, PRIMARY, WRITER_PARAMS, WRITER_ID, clock=clock).changed


def test_set_read_only_refuses_a_parameter_group_the_writer_does_not_use(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    aws.client("rds", PRIMARY).create_db_parameter_group(
        DBParameterGroupName="unrelated", DBParameterGroupFamily="postgres16", Description="x"
    )
    with pytest.raises(AwsActionError, match=f"stop writes on {WRITER_ID} .* uses {WRITER_PARAMS}"):
        actions.set_read_only(aws, PRIMARY, "unrelated", WRITER_ID, clock=clock)
    assert _read_only_parameter(aws, "unrelated") is None


def test_a_read_only_default_without_a_restart_does_not_count_as_a_fence(aws: AwsClients, clock: FakeClock) -> None:
    """catalogue: rds.read-only-parameter-is-a-session-default (moto records no restart: the fence is unproven)"""
    create_writer_and_replica(aws)
    actions.set_read_only(aws, PRIMARY, WRITER_PARAMS, WRITER_ID, clock=clock)
    with pytest.raises(AwsActionError, match=r"no restart since .* sessions opened before may still write"):
        actions.verify_fence(aws, PRIMARY, WRITER_PARAMS, WRITER_ID, in_sync_at=clock.now(), now=clock.now())


def _slot_lag(aws: AwsClients, points: list[tuple[datetime, float]]) -> None:
    put_metric(aws, PRIMARY, "AWS/RDS", "OldestReplicationSlotLag", {"DBInstanceIdentifier": WRITER_ID}, points)


def test_the_final_sync_waits_for_an_empty_slot_in_a_minute_after_the_fence(aws: AwsClients, clock: FakeClock) -> None:
    """catalogue: rds.oldest-replication-slot-lag"""
    create_writer_and_replica(aws)
    fenced_at = clock.now() + timedelta(seconds=15)
    period_after = fenced_at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    # An empty slot before the fence proves nothing; after it the replica is still receiving.
    _slot_lag(aws, [(fenced_at - timedelta(minutes=2), 0.0), (period_after, 8192.0)])

    def replica_receives_the_rest(fake: FakeClock) -> None:
        if len(fake.sleeps) == 2:
            _slot_lag(aws, [(period_after + timedelta(minutes=1), 0.0)])

    clock.current = period_after + timedelta(seconds=70)
    clock.on_sleep = replica_receives_the_rest
    sample = actions.wait_until_replica_has_everything(
        aws, PRIMARY, WRITER_ID, since=fenced_at, interval_seconds=30, clock=clock
    )
    assert sample.seconds == 0 and sample.at >= period_after
    assert len(clock.sleeps) == 2


def test_the_final_sync_times_out_naming_the_source(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    since = clock.now()
    _slot_lag(aws, [(since + timedelta(minutes=1), 4096.0)])
    clock.current += timedelta(minutes=3)
    with pytest.raises(WaitTimeoutError, match=f"every replica of {WRITER_ID} in {PRIMARY}") as raised:
        actions.wait_until_replica_has_everything(
            aws, PRIMARY, WRITER_ID, since=since, timeout_seconds=120, clock=clock
        )
    assert "OldestReplicationSlotLag 4096 bytes" in str(raised.value)


def test_wait_until_caught_up_takes_any_close_datapoint_since_it_started(aws: AwsClients, clock: FakeClock) -> None:
    """An idle source's ReplicaLag saws: the low point after `since` shows the replica caught up."""
    create_writer_and_replica(aws)
    since = clock.now()
    put_replica_lag(
        aws,
        REPLICA_ID,
        [
            (since - timedelta(seconds=90), 0.0),
            (since + timedelta(seconds=5), 8.0),
            (since + timedelta(seconds=65), 290.0),
        ],
    )
    clock.current += timedelta(minutes=2)
    sample = actions.wait_until_caught_up(aws, DR, REPLICA_ID, since=since, max_lag_seconds=10, clock=clock)
    assert (sample.seconds, sample.at > since) == (8.0, True)


def test_wait_until_caught_up_times_out_naming_the_replica(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    put_replica_lag(aws, REPLICA_ID, [(clock.now() + timedelta(seconds=5), 45.0)])
    since = clock.now()
    clock.current += timedelta(seconds=30)
    with pytest.raises(WaitTimeoutError, match=f"replica {REPLICA_ID} in {DR} to catch up") as raised:
        actions.wait_until_caught_up(
            aws, DR, REPLICA_ID, since=since, max_lag_seconds=10, timeout_seconds=120, clock=clock
        )
    assert "last seen: ReplicaLag 45s" in str(raised.value)


# --- promotion -------------------------------------------------------------------------------


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


def test_unused_replica_parameter_group_is_untouched_by_set_read_only(aws: AwsClients, clock: FakeClock) -> None:
    create_writer_and_replica(aws)
    actions.set_read_only(aws, PRIMARY, WRITER_PARAMS, WRITER_ID, clock=clock)
    parameters = aws.client("rds", DR).describe_db_parameters(DBParameterGroupName=REPLICA_PARAMS, Source="user")
    assert parameters["Parameters"] == []


# --- S3 Batch Replication (Stubber: moto lacks S3 Batch Operations) --------------------------------

BUCKET_ARN = "arn:aws:s3:::acme-drp-usw2-data"
BATCH_ROLE = "arn:aws:iam::123456789012:role/acme-drp-s3-batch-repl"


def _job(status: str, **extra: Any) -> dict[str, Any]:
    return {"Job": {"JobId": "job-1", "Status": status, **extra}}


def test_batch_replication_selects_never_replicated_and_failed_objects_and_is_awaited(
    credentials: None, clock: FakeClock
) -> None:
    """catalogue: s3.batch-replication-job"""
    aws = shared_clients()
    s3control = aws.client("s3control", DR)
    with Stubber(s3control) as stub:
        stub.add_response(
            "create_job",
            {"JobId": "job-1"},
            {
                "AccountId": "123456789012",
                "ConfirmationRequired": False,
                "Operation": {"S3ReplicateObject": {}},
                "Report": {
                    "Enabled": True,
                    "Bucket": BUCKET_ARN,
                    "Format": "Report_CSV_20180820",
                    "Prefix": actions.BATCH_REPORT_PREFIX,
                    "ReportScope": "FailedTasksOnly",
                },
                "ClientRequestToken": "token-1",
                "Priority": 10,
                "RoleArn": BATCH_ROLE,
                "ManifestGenerator": {
                    "S3JobManifestGenerator": {
                        "ExpectedBucketOwner": "123456789012",
                        "SourceBucket": BUCKET_ARN,
                        "EnableManifestOutput": False,
                        "Filter": {"EligibleForReplication": True, "ObjectReplicationStatuses": ["NONE", "FAILED"]},
                    }
                },
                "Description": "failback of prod",
            },
        )
        for status in ("Preparing", "Active", "Complete"):
            done = 3 if status == "Complete" else 0
            progress = {"TotalNumberOfTasks": 3, "NumberOfTasksSucceeded": done, "NumberOfTasksFailed": 0}
            stub.add_response(
                "describe_job",
                _job(status, ProgressSummary=progress),
                {"AccountId": "123456789012", "JobId": "job-1"},
            )
        job_id = actions.start_batch_replication(
            aws,
            DR,
            account="123456789012",
            source_bucket_arn=BUCKET_ARN,
            role_arn=BATCH_ROLE,
            token="token-1",
            description="failback of prod",
        )
        job = actions.wait_for_batch_job(aws, DR, account="123456789012", job_id=job_id, clock=clock)
    assert job["Status"] == "Complete" and len(clock.sleeps) == 2


def test_a_failed_batch_replication_job_raises_with_its_reason(credentials: None, clock: FakeClock) -> None:
    aws = shared_clients()
    with Stubber(aws.client("s3control", DR)) as stub:
        reasons = [{"FailureCode": "AccessDenied", "FailureReason": "the role does not trust batchoperations"}]
        stub.add_response("describe_job", _job("Failed", FailureReasons=reasons))
        with pytest.raises(AwsActionError, match="job Failed: the role does not trust batchoperations") as raised:
            actions.wait_for_batch_job(aws, DR, account="123456789012", job_id="job-1", clock=clock)
    assert "rerun the same command" in raised.value.hint


@pytest.mark.parametrize(
    ("progress", "problem"),
    [
        ({"TotalNumberOfTasks": 3, "NumberOfTasksSucceeded": 2, "NumberOfTasksFailed": 1}, "with 1 of 3 tasks failed"),
        ({"TotalNumberOfTasks": 3, "NumberOfTasksSucceeded": 3}, "without a count of failed tasks"),
    ],
)
def test_a_complete_batch_job_with_failed_tasks_raises_naming_its_report(
    credentials: None, clock: FakeClock, progress: dict[str, int], problem: str
) -> None:
    """catalogue: s3.batch-job-complete-is-not-success"""
    aws = shared_clients()
    report = {"Enabled": True, "Bucket": BUCKET_ARN, "Prefix": actions.BATCH_REPORT_PREFIX}
    with Stubber(aws.client("s3control", DR)) as stub:
        stub.add_response("describe_job", _job("Complete", ProgressSummary=progress, Report=report))
        with pytest.raises(AwsActionError, match=f"job Complete {problem}") as raised:
            actions.wait_for_batch_job(aws, DR, account="123456789012", job_id="job-1", clock=clock)
    if "NumberOfTasksFailed" in progress:
        assert f"{BUCKET_ARN}/{actions.BATCH_REPORT_PREFIX}/job-job-1/" in str(raised.value)
    assert "a new job with a new request token" in (raised.value.hint or "")


def test_a_replacement_batch_job_gets_a_new_token_and_a_rerun_of_it_the_same() -> None:
    """catalogue: s3.batch-job-token-is-idempotent"""
    first = actions.batch_job_token("failback of prod")
    again = actions.batch_job_token("failback of prod", replaces="job-1")
    assert first == actions.batch_job_token("failback of prod") and len(first) == 32
    assert again != first and again == actions.batch_job_token("failback of prod", replaces="job-1")


# --- nodes Ready, not just ACTIVE (Stubber: moto's node groups have no Auto Scaling group) ---------------


def test_nodes_ready_counts_in_service_instances_of_the_node_group(credentials: None, clock: FakeClock) -> None:
    """catalogue: eks.active-is-not-ready"""
    aws = shared_clients()
    group = {
        "nodegroup": {
            "nodegroupName": NODES,
            "clusterName": CLUSTER,
            "status": "ACTIVE",
            "scalingConfig": {"minSize": 3, "maxSize": 9, "desiredSize": 3},
            "resources": {"autoScalingGroups": [{"name": "eks-nodes-1"}]},
        }
    }

    def asg(in_service: int) -> dict[str, Any]:
        instances = [
            {
                "InstanceId": f"i-{n}",
                "AvailabilityZone": f"{DR}a",
                "LifecycleState": "InService" if n < in_service else "Pending",
                "HealthStatus": "Healthy",
                "ProtectedFromScaleIn": False,
            }
            for n in range(3)
        ]
        return {
            "AutoScalingGroups": [
                {
                    "AutoScalingGroupName": "eks-nodes-1",
                    "MinSize": 3,
                    "MaxSize": 9,
                    "DesiredCapacity": 3,
                    "DefaultCooldown": 300,
                    "AvailabilityZones": [f"{DR}a"],
                    "HealthCheckType": "EC2",
                    "CreatedTime": clock.now(),
                    "Instances": instances,
                }
            ]
        }

    with Stubber(aws.client("eks", DR)) as eks, Stubber(aws.client("autoscaling", DR)) as autoscaling:
        for in_service in (1, 3):
            eks.add_response("describe_nodegroup", group)
            autoscaling.add_response("describe_auto_scaling_groups", asg(in_service))
        ready = actions.wait_until_nodes_ready(aws, DR, CLUSTER, NODES, 3, interval_seconds=30, clock=clock)
    assert ready == 3 and clock.sleeps == [30]
