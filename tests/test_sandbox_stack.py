"""The sandbox applies the program's declared state to moto, update by update, with faults."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.rds.models import rds_backends

from automation.aws.clients import AwsClients, RegionUnreachableError, Timeouts, reaching
from automation.errors import DrctlError
from automation.sandbox import MotoSandboxServer, Sandbox
from automation.sandbox.server import require_loopback
from automation.stack_standin import cached_evaluation
from automation.targets import surviving_region_targets
from automation.timings import Op, latency
from automation.transitions import transition_config
from tests.conftest import prod_config

PRIMARY, DR = "us-east-1", "us-west-2"


@pytest.fixture
def sandbox(server: MotoSandboxServer) -> Iterator[Sandbox]:
    with Sandbox.open(prod_config(), server=server, scale=0) as opened:
        opened.provision()
        yield opened


def _instance(sandbox: Sandbox, region: str, identifier: str) -> dict:
    return sandbox.clients.client("rds", region).describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][
        0
    ]


def _fail_over(sandbox: Sandbox, failed_region: str) -> list[str]:
    """The failover runbook's stack part: the transition's config, an update targeted away from the failed region."""
    config = transition_config(sandbox.stack.get_config(), "failed-over")
    sandbox.stack.set_config(config)
    targets = surviving_region_targets(cached_evaluation(config, "sandbox"), failed_region)
    sandbox.stack.up(targets)
    return targets


def test_steady_state_creates_the_writer_and_its_cross_region_replica(sandbox: Sandbox) -> None:
    database = sandbox.stack.outputs()["database"]
    writer = _instance(sandbox, PRIMARY, database[PRIMARY]["identifier"])
    replica = _instance(sandbox, DR, database[DR]["identifier"])
    assert "ReadReplicaSourceDBInstanceIdentifier" not in writer
    assert replica["ReadReplicaSourceDBInstanceIdentifier"] == writer["DBInstanceArn"]
    # Outputs carry what moto assigned, as a real engine's would.
    assert database[DR]["sourceArn"] == writer["DBInstanceArn"] == database[PRIMARY]["arn"]
    assert replica["KmsKeyId"] == sandbox.stack.outputs()["kmsKeys"][DR]
    nodes = sandbox.clients.client("eks", DR).describe_nodegroup(
        clusterName=sandbox.stack.outputs()["clusters"][DR]["name"],
        nodegroupName=sandbox.stack.outputs()["clusters"][DR]["nodeGroup"],
    )["nodegroup"]
    assert nodes["scalingConfig"]["desiredSize"] == sandbox.cfg.node_group_standby.desired
    recorded = {change.type for change in sandbox.stack.applied if not change.applied}
    assert "aws:ec2/vpc:Vpc" in recorded  # other types are recorded, not applied


def test_failover_promotes_the_replica_in_place_and_leaves_the_failed_region_alone(sandbox: Sandbox) -> None:
    before = sandbox.stack.outputs()["database"]
    replica_before = _instance(sandbox, DR, before[DR]["identifier"])
    sandbox.data.write_batch(PRIMARY, 3, prefix="early")
    sandbox.clock.sleep(60)
    sandbox.data.write_batch(PRIMARY, 2, prefix="late")
    sandbox.fail_region(PRIMARY)
    applied_before = len(sandbox.stack.applied)

    _fail_over(sandbox, PRIMARY)

    promoted = _instance(sandbox, DR, before[DR]["identifier"])
    assert promoted["DBInstanceArn"] == replica_before["DBInstanceArn"]
    assert promoted["InstanceCreateTime"] == replica_before["InstanceCreateTime"]  # promoted, not recreated
    assert "ReadReplicaSourceDBInstanceIdentifier" not in promoted  # moto's leftover corrected
    old_writer = rds_backends[DEFAULT_ACCOUNT_ID][PRIMARY].databases[before[PRIMARY]["identifier"]]
    assert promoted["DBInstanceArn"] not in old_writer.replicas
    changes = sandbox.stack.applied[applied_before:]
    assert changes and all(change.region != PRIMARY for change in changes)
    assert sandbox.stack.outputs()["database"][DR]["role"] == "writer"
    nodes = sandbox.clients.client("eks", DR).describe_nodegroup(
        clusterName=sandbox.stack.outputs()["clusters"][DR]["name"],
        nodegroupName=sandbox.stack.outputs()["clusters"][DR]["nodeGroup"],
    )["nodegroup"]
    assert nodes["scalingConfig"]["desiredSize"] == sandbox.cfg.node_group_full.desired

    # The writes of the last streaming delay before the region failed stayed in the lost region.
    window = sandbox.data.data_loss_window()
    assert window is not None and window.loss_window_seconds == sandbox.data.database.lag_seconds
    rows = next(s for s in sandbox.data.survivors(DR) if s.kind == "database-rows")
    assert (rows.written, rows.survived) == (5, 3)
    assert rows.newest_lost_at is not None and rows.newest_lost_at <= window.promoted_at
    assert rows.oldest_lost_at is not None and rows.oldest_lost_at > window.replicated_through
    sandbox.restore_region(PRIMARY)
    assert _instance(sandbox, PRIMARY, before[PRIMARY]["identifier"])["DBInstanceStatus"] == "available"


def test_an_update_that_reaches_a_down_region_fails_and_records_nothing_it_did_not_do(sandbox: Sandbox) -> None:
    sandbox.fail_region(PRIMARY)
    state_before = dict(sandbox.stack.standin.state)
    outputs_before = sandbox.stack.outputs()
    sandbox.stack.set_config(transition_config(sandbox.stack.get_config(), "failed-over"))
    with pytest.raises(DrctlError, match="unreachable") as raised:
        sandbox.stack.up(None)  # untargeted: the primary node group scales down there
    assert isinstance(raised.value.__cause__, RegionUnreachableError)
    assert raised.value.__cause__.region == PRIMARY
    in_primary = [urn for urn, resource in state_before.items() if resource.region == PRIMARY]
    assert all(sandbox.stack.standin.state[urn] == state_before[urn] for urn in in_primary)
    assert sandbox.stack.outputs() == outputs_before


def test_a_targeted_update_applies_nothing_to_the_excluded_region(sandbox: Sandbox) -> None:
    applied_before = len(sandbox.stack.applied)
    _fail_over(sandbox, PRIMARY)  # both regions up, but the update targets the DR region and global resources
    changes = sandbox.stack.applied[applied_before:]
    assert {change.region for change in changes} <= {DR, "global"}
    primary_nodes = sandbox.clients.client("eks", PRIMARY).describe_nodegroup(
        clusterName=sandbox.stack.outputs()["clusters"][PRIMARY]["name"],
        nodegroupName=sandbox.stack.outputs()["clusters"][PRIMARY]["nodeGroup"],
    )["nodegroup"]
    assert primary_nodes["scalingConfig"]["desiredSize"] == sandbox.cfg.node_group_full.desired


def test_calls_to_an_unreachable_region_fail_whoever_made_the_client(sandbox: Sandbox) -> None:
    sandbox.fail_region(PRIMARY)
    with pytest.raises(RegionUnreachableError), reaching(PRIMARY):
        sandbox.clients.client("rds", PRIMARY).describe_db_instances()
    # A client built from the environment (the endpoint the sandbox set) meets the server's guard.
    plain = AwsClients(timeouts=Timeouts(max_attempts=1))
    assert plain.endpoint_url == sandbox.server.endpoint_url
    with pytest.raises(RegionUnreachableError), reaching(PRIMARY):
        plain.client("rds", PRIMARY).describe_db_instances()
    assert sandbox.clients.client("rds", DR).describe_db_instances()["DBInstances"]
    # Route53's control plane stays up unless the fault says otherwise.
    assert sandbox.clients.client("route53", DR).list_hosted_zones()["HostedZones"]


def test_objects_written_in_the_active_region_are_copied_to_the_standby_after_the_lag(sandbox: Sandbox) -> None:
    keys = sandbox.data.write_batch(PRIMARY, 4)
    assert sandbox.data.replicate_objects() == 0  # not yet: replication takes its modelled lag
    sandbox.clock.sleep(sandbox.data.object_lag_seconds)
    assert sandbox.data.replicate_objects() == 4
    standby = sandbox.stack.outputs()["buckets"][DR]["name"]
    listed = sandbox.clients.client("s3", DR).list_objects_v2(Bucket=standby)["Contents"]
    assert sorted(item["Key"] for item in listed) == sorted(f"uploads/{key}" for key in keys)
    objects = next(s for s in sandbox.data.survivors(DR) if s.kind == "s3-objects")
    assert (objects.written, objects.survived) == (4, 4)


def test_simulated_global_datastore_fails_over_and_keys_follow(sandbox: Sandbox) -> None:
    cache = sandbox.stack.outputs()["cache"]
    sandbox.data.write_batch(PRIMARY, 2)
    sandbox.clock.sleep(5)
    elasticache = sandbox.clients.client("elasticache", DR)
    elasticache.failover_global_replication_group(
        GlobalReplicationGroupId=cache["globalDatastoreId"],
        PrimaryRegion=DR,
        PrimaryReplicationGroupId=cache["groups"][DR],
    )
    sandbox.clock.sleep(latency(Op.GLOBAL_DATASTORE_FAILOVER))  # modifying until then
    described = elasticache.describe_global_replication_groups(
        GlobalReplicationGroupId=cache["globalDatastoreId"], ShowMemberInfo=True
    )["GlobalReplicationGroups"][0]
    roles = {member["ReplicationGroupRegion"]: member["Role"] for member in described["Members"]}
    assert roles == {DR: "PRIMARY", PRIMARY: "SECONDARY"}
    keys = next(s for s in sandbox.data.survivors(DR) if s.kind == "cache-keys")
    assert (keys.written, keys.survived) == (2, 2)
    with pytest.raises(ClientError, match="GlobalReplicationGroupNotFoundFault"):
        elasticache.describe_global_replication_groups(GlobalReplicationGroupId="ldgnf-nope")


def test_faults_show_in_health_checks_metrics_and_the_report(sandbox: Sandbox) -> None:
    from automation.aws import readiness

    outputs = sandbox.stack.outputs()
    dr_check = outputs["dns"]["healthChecks"][DR]
    assert readiness.health_check(sandbox.clients, DR, dr_check).status is readiness.Status.OK
    sandbox.inject("dr-unhealthy")
    sandbox.clock.sleep(sandbox.cfg.health_check_interval_seconds * sandbox.cfg.health_check_failure_threshold)
    assert readiness.health_check(sandbox.clients, DR, dr_check).status is readiness.Status.FAILING

    replica = outputs["database"][DR]["identifier"]
    lag = readiness.replica_lag(sandbox.clients, DR, replica, rpo_seconds=300, warning_seconds=120, clock=sandbox.clock)
    assert lag.status is readiness.Status.OK
    sandbox.inject("replica-lag")
    sandbox.clock.sleep(timedelta(minutes=11).total_seconds())  # the earlier, healthy datapoints age out
    lag = readiness.replica_lag(sandbox.clients, DR, replica, rpo_seconds=300, warning_seconds=120, clock=sandbox.clock)
    # ReplicaLag is the time since the last replayed commit: at least the new streaming delay.
    assert lag.status is readiness.Status.FAILING and lag.value >= sandbox.cfg.rpo_seconds + 120

    report = sandbox.report()
    assert report["mode"] == "sandbox" and report["simulation"] is True
    assert any("Global Datastore" in line for line in report["simulated"])
    assert len(report["faults"]) == 2


def test_crash_point_raises_once_for_its_step(sandbox: Sandbox) -> None:
    from automation.sandbox import SimulatedCrash

    sandbox.inject("crash-resume", step="promote-database")
    sandbox.crash_point("scale-dr")  # another step: no crash
    with pytest.raises(SimulatedCrash):
        sandbox.crash_point("promote-database")
    sandbox.crash_point("promote-database")  # the resumed run gets through
    with pytest.raises(DrctlError, match="needs the step"):
        sandbox.inject("crash-resume")


def test_the_sandbox_refuses_an_endpoint_that_is_not_loopback() -> None:
    assert require_loopback("http://127.0.0.1:5000")
    with pytest.raises(DrctlError, match="not a loopback"):
        require_loopback("https://rds.us-east-1.amazonaws.com")
