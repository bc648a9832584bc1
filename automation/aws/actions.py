"""Changes drctl makes to AWS outside the Pulumi program, each safe to repeat.

Every action reads first and does nothing that is already done (the outcome
says `changed=False`), then waits with a timeout on the injected clock until
AWS reports the change finished. A failure raises a `DrctlError` that names
the resource and region; an interrupted runbook step simply runs the action again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypedDict, TypeVar, Unpack

from botocore.exceptions import ClientError

from automation.aws.clients import AwsClients, reaching
from automation.aws.readiness import (
    REPLICA,
    DatabaseInstance,
    GlobalDatastore,
    LagSample,
    NodeGroupState,
    describe_database,
    describe_global_datastore,
    describe_node_group,
    replica_lag_samples,
)
from automation.aws.waiting import SYSTEM_CLOCK, Clock, Observation, wait_for
from automation.errors import DrctlError
from components.config import NodeGroupSize
from components.naming import pre_replacement_snapshot_identifier

T = TypeVar("T")

READ_ONLY_PARAMETER = "default_transaction_read_only"
_SNS_SUBJECT_LIMIT = 100
_FAILED_NODE_GROUP_STATUSES = frozenset({"CREATE_FAILED", "DELETE_FAILED", "DELETING", "DEGRADED"})


class AwsActionError(DrctlError):
    """AWS refused or failed an action; the message names the resource and region."""

    def __init__(self, action: str, subject: str, region: str, problem: str, hint: str | None = None) -> None:
        super().__init__(f"{action} {subject} in {region}: {problem}", hint=hint)
        self.subject = subject
        self.region = region


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What an action found or left behind; `changed` is False when it was already done."""

    action: str
    subject: str
    region: str
    changed: bool
    detail: str
    state: T


@contextmanager
def _acting(action: str, subject: str, region: str) -> Iterator[None]:
    """Unreachable regions raise `RegionUnreachableError`; refused calls become `AwsActionError` naming the resource."""
    try:
        with reaching(region):
            yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        raise AwsActionError(action, subject, region, f"{code}: {message}") from error


def _remaining_seconds(deadline: datetime, clock: Clock) -> float:
    return max(0.0, (deadline - clock.now()).total_seconds())


# --- compute ---------------------------------------------------------------------


def _sizes(state: NodeGroupState) -> tuple[int, int, int]:
    return state.min_size, state.desired_size, state.max_size


def scale_node_group(
    clients: AwsClients,
    region: str,
    cluster: str,
    node_group: str,
    size: NodeGroupSize,
    *,
    timeout_seconds: float = 900,
    interval_seconds: float = 15,
    clock: Clock = SYSTEM_CLOCK,
) -> Outcome[NodeGroupState]:
    """Set the node group's min/desired/max and wait until it is ACTIVE at that size."""
    action, subject = "scale node group", f"{cluster}/{node_group}"
    target = (size.min, size.desired, size.max)
    deadline = clock.now() + timedelta(seconds=timeout_seconds)

    def observe(require_size: bool) -> Observation[NodeGroupState]:
        with _acting(action, subject, region):
            state = describe_node_group(clients, region, cluster, node_group)
        if state.status in _FAILED_NODE_GROUP_STATUSES:
            raise AwsActionError(action, subject, region, f"node group is {state.status}: {'; '.join(state.issues)}")
        done = state.status == "ACTIVE" and (not require_size or _sizes(state) == target)
        return Observation(done, state, f"{state.status} at min/desired/max {'/'.join(map(str, _sizes(state)))}")

    current = observe(require_size=True)
    if current.done:
        return Outcome(action, subject, region, False, f"already ACTIVE at {size.desired} nodes", current.value)
    changed = _sizes(current.value) != target
    if changed:
        if current.value.status != "ACTIVE":
            # EKS refuses a scaling update while another update is in progress.
            wait_for(
                f"node group {subject} in {region} to finish its current update",
                lambda: observe(require_size=False),
                timeout_seconds=_remaining_seconds(deadline, clock),
                interval_seconds=interval_seconds,
                clock=clock,
            )
        with _acting(action, subject, region):
            clients.client("eks", region).update_nodegroup_config(
                clusterName=cluster,
                nodegroupName=node_group,
                scalingConfig={"minSize": size.min, "desiredSize": size.desired, "maxSize": size.max},
            )
    state = wait_for(
        f"node group {subject} in {region} to be ACTIVE with {size.desired} nodes desired",
        lambda: observe(require_size=True),
        timeout_seconds=_remaining_seconds(deadline, clock),
        interval_seconds=interval_seconds,
        clock=clock,
    )
    return Outcome(action, subject, region, changed, f"ACTIVE at {size.desired} nodes", state)


# --- database writes ---------------------------------------------------------------


def _read_only_value(clients: AwsClients, region: str, parameter_group: str) -> str | None:
    pages = (
        clients.client("rds", region)
        .get_paginator("describe_db_parameters")
        .paginate(DBParameterGroupName=parameter_group, Source="user")
    )
    for page in pages:
        for parameter in page["Parameters"]:
            if parameter["ParameterName"] == READ_ONLY_PARAMETER:
                return parameter.get("ParameterValue")
    return None


class _ParameterWait(TypedDict, total=False):
    """How long a read-only change may take to apply, and how it is polled."""

    timeout_seconds: float
    interval_seconds: float
    clock: Clock


def _set_read_only(
    clients: AwsClients,
    region: str,
    parameter_group: str,
    writer_identifier: str,
    *,
    read_only: bool,
    timeout_seconds: float = 300,
    interval_seconds: float = 10,
    clock: Clock = SYSTEM_CLOCK,
) -> Outcome[DatabaseInstance]:
    action = "stop writes on" if read_only else "allow writes on"
    subject = f"{writer_identifier} (parameter group {parameter_group})"
    with _acting(action, subject, region):
        writer = describe_database(clients, region, writer_identifier)
        if parameter_group not in writer.parameter_groups:
            raise AwsActionError(
                action,
                subject,
                region,
                f"the instance uses {', '.join(writer.parameter_groups) or 'no parameter group'}, "
                f"so changing {parameter_group} would not affect it",
            )
        current = _read_only_value(clients, region, parameter_group)
        currently_read_only = (current or "0").lower() in ("1", "on", "true")
        changed = currently_read_only != read_only
        if changed:
            clients.client("rds", region).modify_db_parameter_group(
                DBParameterGroupName=parameter_group,
                Parameters=[
                    {
                        "ParameterName": READ_ONLY_PARAMETER,
                        "ParameterValue": "1" if read_only else "0",
                        "ApplyMethod": "immediate",
                    }
                ],
            )

    def applied() -> Observation[DatabaseInstance]:
        with _acting(action, subject, region):
            instance = describe_database(clients, region, writer_identifier)
        apply_status = instance.parameter_groups.get(parameter_group, "")
        return Observation(apply_status == "in-sync", instance, f"parameter group {apply_status or 'detached'}")

    instance = wait_for(
        f"{READ_ONLY_PARAMETER}={int(read_only)} to apply on {writer_identifier} in {region}",
        applied,
        timeout_seconds=timeout_seconds,
        interval_seconds=interval_seconds,
        clock=clock,
    )
    detail = f"{READ_ONLY_PARAMETER}={int(read_only)} " + ("applied" if changed else "was already set")
    return Outcome(action, subject, region, changed, detail, instance)


def stop_writes(
    clients: AwsClients, region: str, parameter_group: str, writer_identifier: str, **wait: Unpack[_ParameterWait]
) -> Outcome[DatabaseInstance]:
    """Graceful switchover: new transactions on the writer default to read-only (applied immediately)."""
    return _set_read_only(clients, region, parameter_group, writer_identifier, read_only=True, **wait)


def allow_writes(
    clients: AwsClients, region: str, parameter_group: str, writer_identifier: str, **wait: Unpack[_ParameterWait]
) -> Outcome[DatabaseInstance]:
    """The reverse of `stop_writes` (a switchover that rolls back, or a region's writer coming back)."""
    return _set_read_only(clients, region, parameter_group, writer_identifier, read_only=False, **wait)


def wait_until_caught_up(
    clients: AwsClients,
    region: str,
    replica_identifier: str,
    *,
    since: datetime,
    max_lag_seconds: float = 0,
    timeout_seconds: float = 600,
    interval_seconds: float = 30,
    clock: Clock = SYSTEM_CLOCK,
) -> LagSample:
    """Wait until a ReplicaLag datapoint taken after `since` (when writes stopped) is at most `max_lag_seconds`."""

    def probe() -> Observation[list[LagSample]]:
        now = clock.now()
        if now <= since:  # CloudWatch refuses an empty range (StartTime must be less than EndTime)
            return Observation(False, [], f"no ReplicaLag datapoint since {since.isoformat()} yet")
        with _acting("read replica lag of", replica_identifier, region):
            samples = replica_lag_samples(clients, region, replica_identifier, since=since, until=now)
        if not samples:
            return Observation(False, samples, f"no ReplicaLag datapoint since {since.isoformat()}")
        latest = samples[-1]
        done = 0 <= latest.seconds <= max_lag_seconds
        return Observation(done, samples, f"ReplicaLag {latest.seconds:g}s at {latest.at.isoformat()}")

    samples = wait_for(
        f"replica {replica_identifier} in {region} to catch up (lag <= {max_lag_seconds:g}s)",
        probe,
        timeout_seconds=timeout_seconds,
        interval_seconds=interval_seconds,
        clock=clock,
    )
    return samples[-1]


# --- promotion ---------------------------------------------------------------------


@dataclass(frozen=True)
class Promotion:
    """The data-loss window: the replica's lag when it stopped replicating (None if no datapoint was found)."""

    identifier: str
    source: str | None
    lag_seconds: float | None
    lag_observed_at: datetime | None
    promoted_at: datetime


def lag_at_promotion(
    clients: AwsClients,
    region: str,
    replica_identifier: str,
    *,
    look_back: timedelta = timedelta(minutes=5),
    clock: Clock = SYSTEM_CLOCK,
) -> LagSample | None:
    """The latest ReplicaLag datapoint: record it just before promoting (here or through the stack update)."""
    now = clock.now()
    with _acting("read replica lag of", replica_identifier, region):
        samples = replica_lag_samples(clients, region, replica_identifier, since=now - look_back, until=now)
    return samples[-1] if samples else None


def promote_replica(
    clients: AwsClients,
    region: str,
    identifier: str,
    *,
    backup_retention_days: int | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Outcome[Promotion | None]:
    """Emergency path outside Pulumi: promote the replica at once (no wait; see `wait_until_writer`).

    Normally the failover stack update promotes by dropping `replicate_source_db`;
    this is for when the runbook must not wait for an update. Already a writer:
    nothing is done and no promotion is recorded.
    """
    action = "promote replica"
    with _acting(action, identifier, region):
        instance = describe_database(clients, region, identifier)
    if instance.role != REPLICA:
        return Outcome(action, identifier, region, False, "already a writer", None)
    sample = lag_at_promotion(clients, region, identifier, clock=clock)
    request: dict[str, Any] = {"DBInstanceIdentifier": identifier}
    if backup_retention_days is not None:
        request["BackupRetentionPeriod"] = backup_retention_days
    with _acting(action, identifier, region):
        clients.client("rds", region).promote_read_replica(**request)
    promotion = Promotion(
        identifier=identifier,
        source=instance.source,
        lag_seconds=sample.seconds if sample else None,
        lag_observed_at=sample.at if sample else None,
        promoted_at=clock.now(),
    )
    lag = f"{sample.seconds:g}s" if sample else "unknown (no ReplicaLag datapoint)"
    return Outcome(action, identifier, region, True, f"promotion started; replica lag at promotion {lag}", promotion)


def wait_until_writer(
    clients: AwsClients,
    region: str,
    identifier: str,
    *,
    timeout_seconds: float = 1800,
    interval_seconds: float = 30,
    clock: Clock = SYSTEM_CLOCK,
) -> DatabaseInstance:
    """Poll until the instance is a standalone, available writer (however it was promoted)."""

    def probe() -> Observation[DatabaseInstance]:
        with _acting("read", identifier, region):
            instance = describe_database(clients, region, identifier)
        seen = f"{instance.role} in status {instance.status}" + (f" of {instance.source}" if instance.source else "")
        return Observation(instance.standalone_writer, instance, seen)

    return wait_for(
        f"{identifier} in {region} to be a standalone available writer",
        probe,
        timeout_seconds=timeout_seconds,
        interval_seconds=interval_seconds,
        clock=clock,
    )


# --- cache -----------------------------------------------------------------------


def fail_over_global_datastore(
    clients: AwsClients,
    global_id: str,
    target_region: str,
    target_group_id: str,
    *,
    timeout_seconds: float = 900,
    interval_seconds: float = 15,
    clock: Clock = SYSTEM_CLOCK,
) -> Outcome[GlobalDatastore]:
    """Make `target_group_id` in `target_region` the primary (FailoverGlobalReplicationGroup), then wait.

    All calls go through the target region's endpoint, so an emergency failover
    does not depend on the impaired primary region's API.
    """
    action, subject = "fail over global datastore", global_id
    deadline = clock.now() + timedelta(seconds=timeout_seconds)

    def observe(require_target: bool) -> Observation[GlobalDatastore]:
        with _acting(action, subject, target_region):
            datastore = describe_global_datastore(clients, target_region, global_id)
        primary = datastore.primary
        at_target = primary is not None and (primary.replication_group_id, primary.region) == (
            target_group_id,
            target_region,
        )
        done = datastore.status == "available" and (at_target or not require_target)
        where = f"{primary.replication_group_id} in {primary.region}" if primary else "no primary"
        return Observation(done, datastore, f"{datastore.status}, primary {where}")

    def wait(what: str, require_target: bool) -> GlobalDatastore:
        return wait_for(
            f"global datastore {global_id} {what}",
            lambda: observe(require_target),
            timeout_seconds=_remaining_seconds(deadline, clock),
            interval_seconds=interval_seconds,
            clock=clock,
        )

    current = observe(require_target=True)
    if current.done:
        return Outcome(action, subject, target_region, False, f"primary already in {target_region}", current.value)
    if target_group_id not in {m.replication_group_id for m in current.value.members}:
        raise AwsActionError(action, subject, target_region, f"{target_group_id} is not a member of the datastore")
    if current.value.status != "available":
        # A failover started by an earlier, interrupted run may still be running: let it finish, not start another.
        settled = wait("to become available", require_target=False)
        if observe(require_target=True).done:
            return Outcome(action, subject, target_region, False, f"primary already in {target_region}", settled)
    try:
        with reaching(target_region):
            clients.client("elasticache", target_region).failover_global_replication_group(
                GlobalReplicationGroupId=global_id,
                PrimaryRegion=target_region,
                PrimaryReplicationGroupId=target_group_id,
            )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        hint = (
            "if the primary region is down, disassociate the DR member from the global datastore "
            "(DisassociateGlobalReplicationGroup) so it serves writes on its own"
            if code == "InvalidGlobalReplicationGroupState"
            else None
        )
        raise AwsActionError(action, subject, target_region, f"{code}: {message}", hint=hint) from error
    datastore = wait(f"to be available with its primary {target_group_id} in {target_region}", require_target=True)
    return Outcome(action, subject, target_region, True, f"primary now in {target_region}", datastore)


# --- snapshots -------------------------------------------------------------------


def snapshot_before_replacement(
    clients: AwsClients,
    region: str,
    identifier: str,
    *,
    timeout_seconds: float = 3600,
    interval_seconds: float = 30,
    clock: Clock = SYSTEM_CLOCK,
) -> Outcome[str]:
    """Take the final manual snapshot of a former writer before failback replaces it; `state` is its id."""
    action = "snapshot"
    snapshot_id = pre_replacement_snapshot_identifier(identifier)
    subject = f"{identifier} as {snapshot_id}"
    rds = clients.client("rds", region)

    def current_status() -> str | None:
        try:
            with reaching(region):
                found = rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "DBSnapshotNotFound":
                return None
            raise
        return found[0]["Status"] if found else None

    def observe() -> Observation[str]:
        with _acting(action, subject, region):
            status = current_status()
        if status not in (None, "creating", "available"):
            raise AwsActionError(action, subject, region, f"snapshot is {status}")
        return Observation(status == "available", snapshot_id, f"snapshot {status or 'not found'}")

    with _acting(action, subject, region):
        found = current_status()
        if found == "available":
            return Outcome(action, subject, region, False, "snapshot already available", snapshot_id)
        if found is None:
            rds.create_db_snapshot(
                DBInstanceIdentifier=identifier,
                DBSnapshotIdentifier=snapshot_id,
                Tags=[{"Key": "dr-platform:purpose", "Value": "pre-replacement"}],
            )
    wait_for(
        f"snapshot {snapshot_id} of {identifier} in {region} to be available",
        observe,
        timeout_seconds=timeout_seconds,
        interval_seconds=interval_seconds,
        clock=clock,
    )
    return Outcome(action, subject, region, found is None, "snapshot available", snapshot_id)


# --- notification ------------------------------------------------------------------


def notify(clients: AwsClients, region: str, topic_arn: str, subject: str, message: Mapping[str, Any]) -> str:
    """Publish a JSON message to the alert topic; returns the SNS message id.

    SNS has no de-duplication on standard topics: the runbook's journal is what
    keeps a repeated run from notifying twice.
    """
    # SNS refuses subjects over 100 characters, with line breaks or outside ASCII.
    ascii_subject = subject.encode("ascii", "replace").decode("ascii")
    clean_subject = " ".join(ascii_subject.split())[:_SNS_SUBJECT_LIMIT] or "dr-platform"
    with _acting("notify", topic_arn, region):
        response = clients.client("sns", region).publish(
            TopicArn=topic_arn,
            Subject=clean_subject,
            Message=json.dumps(message, default=str, sort_keys=True),
        )
    return response["MessageId"]
