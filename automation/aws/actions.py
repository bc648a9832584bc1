"""Changes drctl makes to AWS outside the Pulumi program, each safe to repeat.

Every action reads first and does nothing that is already done (the outcome
says `changed=False`), then waits with a timeout on the injected clock until
AWS reports the change finished. A failure raises a `DrctlError` that names
the resource and region; an interrupted runbook step simply runs the action again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypedDict, TypeVar, Unpack

from botocore.exceptions import ClientError

from automation.aws.clients import AwsClients, reaching
from automation.aws.readiness import (
    DatabaseInstance,
    GlobalDatastore,
    LagSample,
    NodeGroupState,
    describe_database,
    describe_global_datastore,
    describe_node_group,
    ready_nodes,
    replica_lag_samples,
    replication_slot_lag_samples,
)
from automation.aws.waiting import SYSTEM_CLOCK, Clock, Observation, WaitTimeoutError, wait_for
from automation.errors import DrctlError
from components.config import NodeGroupSize
from components.naming import BATCH_REPORT_PREFIX, pre_replacement_snapshot_identifier

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


class RebootRefusedError(AwsActionError):
    """The instance was not rebooted: RDS refused, or it never became available for a reboot."""


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
    """Set the node group's min/desired/max and wait until it is ACTIVE at that size.

    The update is asynchronous and EKS refuses another while one runs (catalogue:
    eks.node-group-update-is-asynchronous): a group already UPDATING is awaited first.
    """
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


def wait_until_nodes_ready(
    clients: AwsClients,
    region: str,
    cluster: str,
    node_group: str,
    desired: int,
    *,
    timeout_seconds: float = 900,
    interval_seconds: float = 15,
    clock: Clock = SYSTEM_CLOCK,
) -> int:
    """Wait until `desired` instances of the node group are InService: ACTIVE alone is not capacity.

    catalogue: eks.active-is-not-ready
    """
    subject = f"{cluster}/{node_group}"

    def probe() -> Observation[int]:
        with _acting("count ready nodes of", subject, region):
            ready = ready_nodes(clients, region, cluster, node_group)
        return Observation(ready >= desired, ready, f"{ready} of {desired} nodes InService")

    return wait_for(
        f"{desired} nodes of {subject} in {region} to be InService",
        probe,
        timeout_seconds=timeout_seconds,
        interval_seconds=interval_seconds,
        clock=clock,
    )


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


# catalogue: rds.parameter-apply-status
PARAMETERS_APPLIED = "in-sync"
PARAMETERS_PENDING_REBOOT = "pending-reboot"
"""Static changes wait for a restart; a dynamic change made with ApplyMethod=immediate does not."""
_PARAMETERS_BROKEN = frozenset({"failed-to-apply", "pending-database-upgrade"})
"""Statuses that no wait resolves: the group is invalid, or it applies only after an engine upgrade."""


def _apply_status(action: str, subject: str, region: str, instance: DatabaseInstance, parameter_group: str) -> str:
    """The group's apply status on the instance; raises, naming the group, for one no wait or restart resolves."""
    status = instance.parameter_groups.get(parameter_group, "")
    if status in _PARAMETERS_BROKEN:
        raise AwsActionError(
            action,
            subject,
            region,
            f"parameter group {parameter_group} is {status} on {instance.identifier}",
            hint=f"read the instance's events (aws rds describe-events --source-identifier {instance.identifier} "
            f"--source-type db-instance --region {region}) and fix the parameter values of {parameter_group}, "
            "then rerun: the run resumes at this step",
        )
    return status


def wait_until_parameters_applied(
    clients: AwsClients,
    region: str,
    parameter_group: str,
    identifier: str,
    *,
    pending_reboot_is_applied: bool,
    timeout_seconds: float = 300,
    interval_seconds: float = 10,
    clock: Clock = SYSTEM_CLOCK,
) -> DatabaseInstance:
    """Wait until the group's changes stopped `applying` on the instance (catalogue: rds.parameter-apply-status).

    `pending_reboot_is_applied`: a dynamic change (ApplyMethod=immediate) is in
    effect while the group still waits for a restart for other, static changes;
    callers that restart the instance next (a promotion, a fence's reboot) or
    only change a dynamic parameter pass True. Only in-sync counts otherwise.
    """
    action, subject = "apply parameter group", f"{parameter_group} on {identifier}"
    settled = {PARAMETERS_APPLIED, PARAMETERS_PENDING_REBOOT} if pending_reboot_is_applied else {PARAMETERS_APPLIED}

    def applied() -> Observation[DatabaseInstance]:
        with _acting(action, subject, region):
            instance = describe_database(clients, region, identifier)
        status = _apply_status(action, subject, region, instance, parameter_group)
        return Observation(status in settled, instance, f"parameter group {status or 'detached'}")

    return wait_for(
        f"parameter group {parameter_group} to apply on {identifier} in {region}",
        applied,
        timeout_seconds=timeout_seconds,
        interval_seconds=interval_seconds,
        clock=clock,
    )


def _set_read_only(
    clients: AwsClients,
    region: str,
    parameter_group: str,
    writer_identifier: str,
    *,
    read_only: bool,
    wait: bool = True,
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
        _apply_status(action, subject, region, writer, parameter_group)
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
    if not wait:
        detail = f"{READ_ONLY_PARAMETER}={int(read_only)} " + ("set" if changed else "was already set")
        return Outcome(action, subject, region, changed, detail, writer)
    detail = f"{READ_ONLY_PARAMETER}={int(read_only)} " + ("applied" if changed else "was already set")
    # catalogue: rds.parameter-change-applies-asynchronously
    # A dynamic parameter, changed with ApplyMethod=immediate: in effect once no longer applying, even while
    # the group waits for a restart for static changes (catalogue: rds.parameter-apply-status).
    instance = wait_until_parameters_applied(
        clients,
        region,
        parameter_group,
        writer_identifier,
        pending_reboot_is_applied=True,
        timeout_seconds=timeout_seconds,
        interval_seconds=interval_seconds,
        clock=clock,
    )
    if instance.parameter_groups.get(parameter_group) == PARAMETERS_PENDING_REBOOT:
        detail += f"; {parameter_group} also has static changes that apply at the next restart"
    return Outcome(action, subject, region, changed, detail, instance)


def set_read_only(
    clients: AwsClients, region: str, parameter_group: str, writer_identifier: str, **wait: Unpack[_ParameterWait]
) -> Outcome[DatabaseInstance]:
    """New transactions on the writer default to read-only, once the change is in sync (asynchronous).

    Only a default (catalogue: rds.read-only-parameter-is-a-session-default):
    `fence_writer` adds the reboot that makes it hold.
    """
    return _set_read_only(clients, region, parameter_group, writer_identifier, read_only=True, **wait)


def set_read_only_before_reboot(
    clients: AwsClients, region: str, parameter_group: str, writer_identifier: str
) -> Outcome[DatabaseInstance]:
    """The write fence's first half: read-only by default in the group, not waited for.

    The reboot that follows starts every session with the group's values, so
    waiting for in-sync first would only cost time, or never end on a group
    that waits for a restart anyway (pending-reboot): `end_sessions`, then
    `wait_until_parameters_applied` after the restart (catalogue: rds.parameter-apply-status).
    """
    return _set_read_only(clients, region, parameter_group, writer_identifier, read_only=True, wait=False)


def allow_writes(
    clients: AwsClients, region: str, parameter_group: str, writer_identifier: str, **wait: Unpack[_ParameterWait]
) -> Outcome[DatabaseInstance]:
    """The reverse of `set_read_only` (a switchover that rolls back, or a region's writer coming back).

    A group left pending-reboot does not hold it up: on a replica about to be promoted the promotion restarts
    it (catalogue: rds.promotion-restarts-the-instance).
    """
    return _set_read_only(clients, region, parameter_group, writer_identifier, read_only=False, **wait)


RESTARTED_EVENT = "DB instance restarted"


def _restarted_since(
    clients: AwsClients, region: str, identifier: str, since: datetime, now: datetime
) -> datetime | None:
    """When RDS last recorded "DB instance restarted" for the instance at or after `since` (None: not since)."""
    events = clients.client("rds", region).describe_events(
        SourceIdentifier=identifier, SourceType="db-instance", StartTime=since, EndTime=now
    )["Events"]
    dates = [e["Date"] for e in events if RESTARTED_EVENT in e.get("Message", "") and e["Date"] >= since]
    return max(dates) if dates else None


# catalogue: rds.reboot-needs-available
_NEVER_REBOOTABLE = frozenset(
    {
        "stopped",
        "stopping",
        "failed",
        "storage-full",
        "incompatible-parameters",
        "incompatible-network",
        "incompatible-restore",
        "inaccessible-encryption-credentials",
        "restore-error",
        "deleting",
    }
)
"""Instance statuses that do not become `available` by waiting."""


def _wait_until_rebootable(
    clients: AwsClients, region: str, identifier: str, *, until: datetime, interval_seconds: float, clock: Clock
) -> None:
    """RebootDBInstance refuses an instance that is not `available` (InvalidDBInstanceState): a transient
    status (backing-up, modifying, configuring-...) is waited out; one that never ends raises at once."""
    action = "reboot"

    def rebootable() -> Observation[str]:
        with _acting(action, identifier, region):
            status = describe_database(clients, region, identifier).status
        if status in _NEVER_REBOOTABLE:
            raise AwsActionError(
                action,
                identifier,
                region,
                f"the instance is {status}: RDS reboots only an available instance",
                hint="nothing was rebooted; bring the instance back to available, then rerun",
            )
        return Observation(status == "available", status, f"instance {status}")

    wait_for(
        f"{identifier} in {region} to be available for a reboot",
        rebootable,
        timeout_seconds=_remaining_seconds(until, clock),
        interval_seconds=interval_seconds,
        clock=clock,
    )


def end_sessions(
    clients: AwsClients,
    region: str,
    writer_identifier: str,
    *,
    after: datetime,
    timeout_seconds: float = 900,
    interval_seconds: float = 15,
    clock: Clock = SYSTEM_CLOCK,
) -> Outcome[datetime]:
    """Reboot the writer once after `after` so every session and open transaction ends; `state`: the restart.

    A restart already recorded after `after` (an earlier, interrupted run) is not
    repeated (catalogue: rds.reboot-ends-every-session).
    """
    action = "end every session on"
    deadline = clock.now() + timedelta(seconds=timeout_seconds)
    with _acting(action, writer_identifier, region):
        done = _restarted_since(clients, region, writer_identifier, after, clock.now())
        status = describe_database(clients, region, writer_identifier).status
    # A reboot already under way (an interrupted run) ends the sessions too: RDS would refuse a second one.
    started = done is None and status != "rebooting"
    if started:
        try:
            _wait_until_rebootable(
                clients, region, writer_identifier, until=deadline, interval_seconds=interval_seconds, clock=clock
            )
            with _acting(action, writer_identifier, region):
                clients.client("rds", region).reboot_db_instance(
                    DBInstanceIdentifier=writer_identifier, ForceFailover=False
                )
        except (AwsActionError, WaitTimeoutError) as error:
            raise RebootRefusedError(action, writer_identifier, region, str(error)) from error

    def restarted() -> Observation[datetime | None]:
        with _acting(action, writer_identifier, region):
            instance = describe_database(clients, region, writer_identifier)
            seen = _restarted_since(clients, region, writer_identifier, after, clock.now())
        ready = seen is not None and instance.status == "available"
        return Observation(ready, seen, f"instance {instance.status}, restart event {'seen' if seen else 'not yet'}")

    at = wait_for(
        f"{writer_identifier} in {region} to restart and be available",
        restarted,
        timeout_seconds=_remaining_seconds(deadline, clock),
        interval_seconds=interval_seconds,
        clock=clock,
    )
    assert at is not None
    detail = "rebooted: every session ended" if started else "already restarted after the read-only change"
    return Outcome(action, writer_identifier, region, started, detail, at)


def verify_fence(
    clients: AwsClients,
    region: str,
    parameter_group: str,
    writer_identifier: str,
    *,
    in_sync_at: datetime,
    now: datetime,
) -> str:
    """Raise unless the writer is fenced: read-only by default, in sync, restarted since then, available."""
    action = "verify the write fence of"
    with _acting(action, writer_identifier, region):
        value = _read_only_value(clients, region, parameter_group)
        instance = describe_database(clients, region, writer_identifier)
        restarted = _restarted_since(clients, region, writer_identifier, in_sync_at, now)
    problems = []
    if (value or "0").lower() not in ("1", "on", "true"):
        problems.append(f"{READ_ONLY_PARAMETER} is {value or 'unset'} in {parameter_group}")
    if instance.parameter_groups.get(parameter_group) != "in-sync":
        problems.append(f"parameter group {parameter_group} is {instance.parameter_groups.get(parameter_group)}")
    if restarted is None:
        problems.append(f"no restart since {in_sync_at.isoformat()}: sessions opened before may still write")
    if instance.status != "available":
        problems.append(f"instance is {instance.status}")
    if problems:
        raise AwsActionError(action, writer_identifier, region, "; ".join(problems))
    return f"{READ_ONLY_PARAMETER}=1 in sync, restarted at {restarted.isoformat() if restarted else '?'}"


def wait_until_replica_has_everything(
    clients: AwsClients,
    source_region: str,
    source_identifier: str,
    *,
    since: datetime,
    timeout_seconds: float = 600,
    interval_seconds: float = 30,
    clock: Clock = SYSTEM_CLOCK,
) -> LagSample:
    """Wait for an OldestReplicationSlotLag datapoint of 0 bytes on the source, for a minute that began after `since`.

    `since` is when the write fence was verified: nothing the application writes
    can commit after it, so a later moment at which every replica had received
    all WAL means every replica has every write; promotion replays what was
    received (catalogue: rds.oldest-replication-slot-lag). ReplicaLag cannot say
    this: it grows on an idle source (rds.postgres-replica-lag-is-time-since-last-replay).
    That a fenced source's slot lag does reach 0 is unconfirmed (rds.fenced-source-slot-lag-reads-zero): a timeout
    stops the run with the writer still fenced.
    """
    period_after = since.replace(second=0, microsecond=0) + timedelta(minutes=1)

    def samples(now: datetime) -> list[LagSample] | str:
        if now <= period_after:
            return f"no full minute after {since.isoformat()} yet"
        with _acting("read the replication slot lag of", source_identifier, source_region):
            return replication_slot_lag_samples(
                clients, source_region, source_identifier, since=period_after, until=now
            )

    return _wait_for_sample(
        f"every replica of {source_identifier} in {source_region} to have received all WAL (slot lag 0)",
        samples,
        lambda found: next((sample for sample in found if sample.seconds == 0), None),
        "OldestReplicationSlotLag {:g} bytes",
        timeout_seconds=timeout_seconds,
        interval_seconds=interval_seconds,
        clock=clock,
    )


def wait_until_slot_lag_below(
    clients: AwsClients,
    source_region: str,
    source_identifier: str,
    *,
    max_bytes: float,
    timeout_seconds: float = 900,
    interval_seconds: float = 30,
    clock: Clock = SYSTEM_CLOCK,
) -> LagSample:
    """Wait until the source's replicas trail by at most `max_bytes` of WAL (the last datapoint's minimum)."""

    def samples(now: datetime) -> list[LagSample]:
        with _acting("read the replication slot lag of", source_identifier, source_region):
            return replication_slot_lag_samples(
                clients, source_region, source_identifier, since=now - timedelta(minutes=5), until=now
            )

    return _wait_for_sample(
        f"the replicas of {source_identifier} in {source_region} to trail by at most {max_bytes:g} bytes",
        samples,
        lambda found: found[-1] if found and found[-1].seconds <= max_bytes else None,
        "OldestReplicationSlotLag {:g} bytes",
        timeout_seconds=timeout_seconds,
        interval_seconds=interval_seconds,
        clock=clock,
    )


def _wait_for_sample(
    what: str,
    samples: Callable[[datetime], list[LagSample] | str],
    pick: Callable[[list[LagSample]], LagSample | None],
    shown_as: str,
    *,
    timeout_seconds: float,
    interval_seconds: float,
    clock: Clock,
) -> LagSample:
    """Poll a metric's datapoints until `pick` finds the one that settles it; `samples` says why not yet with a str."""

    def probe() -> Observation[LagSample | None]:
        found = samples(clock.now())
        if isinstance(found, str):
            return Observation(False, None, found)
        chosen = pick(found)
        latest = f"{shown_as.format(found[-1].seconds)} at {found[-1].at.isoformat()}" if found else "no datapoint yet"
        return Observation(chosen is not None, chosen, latest)

    result = wait_for(what, probe, timeout_seconds=timeout_seconds, interval_seconds=interval_seconds, clock=clock)
    assert result is not None
    return result


def wait_until_caught_up(
    clients: AwsClients,
    region: str,
    replica_identifier: str,
    *,
    since: datetime,
    max_lag_seconds: float,
    timeout_seconds: float = 600,
    interval_seconds: float = 30,
    clock: Clock = SYSTEM_CLOCK,
) -> LagSample:
    """Wait until a ReplicaLag datapoint taken after `since` is at most `max_lag_seconds` (a replica being built).

    Any datapoint counts, not the latest: on an idle source ReplicaLag saws up to
    about 300 s between replays, and the low points show the replica keeping up
    (catalogue: rds.idle-source-replays-every-few-minutes).
    """

    def samples(now: datetime) -> list[LagSample] | str:
        if now <= since:  # CloudWatch refuses an empty range (StartTime must be less than EndTime)
            return f"no ReplicaLag datapoint since {since.isoformat()} yet"
        with _acting("read replica lag of", replica_identifier, region):
            return replica_lag_samples(clients, region, replica_identifier, since=since, until=now)

    return _wait_for_sample(
        f"replica {replica_identifier} in {region} to catch up (lag <= {max_lag_seconds:g}s)",
        samples,
        lambda found: next((sample for sample in found if 0 <= sample.seconds <= max_lag_seconds), None),
        "ReplicaLag {:g}s",
        timeout_seconds=timeout_seconds,
        interval_seconds=interval_seconds,
        clock=clock,
    )


def wait_until_writer(
    clients: AwsClients,
    region: str,
    identifier: str,
    *,
    timeout_seconds: float = 1800,
    interval_seconds: float = 30,
    clock: Clock = SYSTEM_CLOCK,
) -> DatabaseInstance:
    """Poll until the instance is a standalone, available writer (however it was promoted).

    catalogue: rds.promotion-is-asynchronous
    """

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
        # A failover started by an earlier, interrupted run may still be running: let it finish, not start another
        # (catalogue: elasticache.global-datastore-failover-needs-available).
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
    """Take the final manual snapshot of a former writer before failback replaces it; `state` is its id.

    catalogue: rds.snapshot-creation-is-asynchronous
    """
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


# --- traffic fence ---------------------------------------------------------------


def wait_for_traffic_fence(
    clients: AwsClients,
    fence: Mapping[str, Any],
    *,
    raised: bool,
    since: datetime,
    timeout_seconds: float = 300,
    interval_seconds: float = 15,
    clock: Clock = SYSTEM_CLOCK,
) -> Outcome[str]:
    """Wait until the fence publisher's data says raised (1) or lowered (0), and the fence alarm agrees.

    drctl does not publish the fence: it wrote it into the DR state authority at `since`, and the publisher
    (components/fence_publisher.py) puts the authority's value every minute. Done when the newest datapoint
    belongs to a minute that began no earlier than `since`'s minute and carries the value (Maximum over the
    minute, so a minute that also held the old value counts as the old one), and the alarm's state says the
    same: Route53 reads that data stream (catalogue: route53.cloudwatch-metric-check-follows-the-alarm).
    Data plane only (GetMetricStatistics, DescribeAlarms in the DR region); no Route53 call.
    """
    region, alarm = fence["region"], fence["alarmName"]
    wanted_state, wanted_value = ("ALARM", 1.0) if raised else ("OK", 0.0)
    action = "raise the traffic fence" if raised else "lower the traffic fence"
    from_minute = since.replace(second=0, microsecond=0)
    dimensions = [{"Name": k, "Value": v} for k, v in fence["dimensions"].items()]

    def alarm_state() -> str:
        found = clients.client("cloudwatch", region).describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
        if not found:
            raise AwsActionError(action, alarm, region, "no such alarm: deploy the program with the traffic fence")
        return found[0]["StateValue"]

    with _acting(action, alarm, region):
        before = alarm_state()

    def probe() -> Observation[str]:
        with _acting(action, alarm, region):
            points = clients.client("cloudwatch", region).get_metric_statistics(
                Namespace=fence["namespace"],
                MetricName=fence["metricName"],
                Dimensions=dimensions,
                StartTime=from_minute,
                EndTime=clock.now() + timedelta(minutes=1),
                Period=60,
                Statistics=["Maximum"],
            )["Datapoints"]
            state = alarm_state()
        newest = max(points, key=lambda p: p["Timestamp"]) if points else None
        if newest is None:
            note = f"no fence datapoint since {from_minute.isoformat()} (is the fence publisher running?)"
            return Observation(False, state, note)
        value = float(newest["Maximum"])
        done = value == wanted_value and state == wanted_state
        return Observation(done, state, f"fence datapoint {value:g} at {newest['Timestamp']}, alarm {alarm} {state}")

    reached = wait_for(
        f"the fence publisher's data and the alarm {alarm} in {region} to say {'raised' if raised else 'lowered'}",
        probe,
        timeout_seconds=timeout_seconds,
        interval_seconds=interval_seconds,
        clock=clock,
    )
    detail = f"fence {'raised' if raised else 'lowered'} (alarm {reached})"
    return Outcome(action, alarm, region, before != wanted_state, detail, reached)


# --- S3 Batch Replication -------------------------------------------------------------------

BATCH_JOB_DONE = "Complete"
BATCH_JOB_FAILED = frozenset({"Failed", "Cancelled"})


def batch_job_token(description: str, *, replaces: str | None = None) -> str:
    """The CreateJob ClientRequestToken: the same for a rerun of the same attempt, so a crash between CreateJob
    and the journal finds the job again; a new one after a job that did not copy everything, which S3 would
    otherwise answer with that same job (catalogue: s3.batch-job-token-is-idempotent)."""
    seed = description if replaces is None else f"{description} (replaces {replaces})"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def batch_job_problem(job: Mapping[str, Any]) -> str | None:
    """Why a finished job did not copy everything, or None (still running, or every task succeeded).

    Complete only means the job ran: each task may have failed (catalogue:
    s3.batch-job-complete-is-not-success), so NumberOfTasksFailed must be 0.
    """
    status = job["Status"]
    if status in BATCH_JOB_FAILED:
        reasons = "; ".join(r.get("FailureReason", "") for r in job.get("FailureReasons", [])) or "no reason given"
        return f"job {status}: {reasons}"
    if status != BATCH_JOB_DONE:
        return None
    progress = job.get("ProgressSummary") or {}
    failed = progress.get("NumberOfTasksFailed")
    if failed is None:
        return "job Complete without a count of failed tasks: whether every object was copied is unknown"
    if not failed:
        return None
    problem = f"job Complete with {failed} of {progress.get('TotalNumberOfTasks', '?')} tasks failed"
    report = job.get("Report") or {}
    if report.get("Bucket"):
        problem += f" (failed-tasks report under {report['Bucket']}/{report.get('Prefix', '')}/job-{job['JobId']}/)"
    return problem


def account_id(clients: AwsClients, region: str) -> str:
    with reaching(region):
        return clients.client("sts", region).get_caller_identity()["Account"]


def start_batch_replication(
    clients: AwsClients,
    region: str,
    *,
    account: str,
    source_bucket_arn: str,
    role_arn: str,
    token: str,
    description: str,
) -> str:
    """Start (or find again, by `token`) the S3 Batch Replication job of what live replication skipped.

    The manifest is generated from the source bucket: objects never replicated
    (NONE) or failed, that the bucket's rules select (catalogue:
    s3.live-replication-skips-existing-objects, s3.batch-replication-job).
    Returns the job id.
    """
    action, subject = "start S3 Batch Replication of", source_bucket_arn
    with _acting(action, subject, region):
        response = clients.client("s3control", region).create_job(
            AccountId=account,
            ConfirmationRequired=False,
            Operation={"S3ReplicateObject": {}},
            # Only failed tasks: what to fix before a rerun (catalogue: s3.batch-job-complete-is-not-success).
            # In the source bucket, the DR region's: the job and its report stay out of the failed region.
            Report={
                "Enabled": True,
                "Bucket": source_bucket_arn,
                "Format": "Report_CSV_20180820",
                "Prefix": BATCH_REPORT_PREFIX,
                "ReportScope": "FailedTasksOnly",
            },
            ClientRequestToken=token,
            Priority=10,
            RoleArn=role_arn,
            ManifestGenerator={
                "S3JobManifestGenerator": {
                    "ExpectedBucketOwner": account,
                    "SourceBucket": source_bucket_arn,
                    "EnableManifestOutput": False,
                    "Filter": {"EligibleForReplication": True, "ObjectReplicationStatuses": ["NONE", "FAILED"]},
                }
            },
            Description=description,
        )
    return response["JobId"]


def find_batch_job(clients: AwsClients, region: str, *, account: str, description: str) -> dict[str, Any] | None:
    """The newest S3 Batch Operations job with this description (JobId, Status, CreationTime), if any."""
    jobs: list[dict[str, Any]] = []
    request: dict[str, Any] = {"AccountId": account}
    with _acting("list S3 Batch Operations jobs for", description, region):
        while True:
            page = clients.client("s3control", region).list_jobs(**request)
            jobs += [job for job in page.get("Jobs", []) if job.get("Description") == description]
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
    return max(jobs, key=lambda job: job["CreationTime"]) if jobs else None


def wait_for_batch_job(
    clients: AwsClients,
    region: str,
    *,
    account: str,
    job_id: str,
    timeout_seconds: float = 4 * 3600,
    interval_seconds: float = 60,
    clock: Clock = SYSTEM_CLOCK,
) -> dict[str, Any]:
    """Poll DescribeJob until the job is Complete with no failed task; a Failed or Cancelled job, or failed
    tasks, raise naming why."""
    action = "wait for S3 Batch Replication job"

    def probe() -> Observation[dict[str, Any]]:
        with _acting(action, job_id, region):
            job = clients.client("s3control", region).describe_job(AccountId=account, JobId=job_id)["Job"]
        problem = batch_job_problem(job)
        if problem is not None:
            raise AwsActionError(
                action,
                job_id,
                region,
                problem,
                hint="fix the cause (the batch role's trust and permissions, the bucket's replication rule, the "
                "failed-tasks report's error codes), then rerun the same command: a new job with a new request "
                "token replicates what is still unreplicated",
            )
        status = job["Status"]
        progress = job.get("ProgressSummary", {})
        note = f"{status}, {progress.get('NumberOfTasksSucceeded', 0)}/{progress.get('TotalNumberOfTasks', '?')} done"
        return Observation(status == BATCH_JOB_DONE, job, note)

    return wait_for(
        f"S3 Batch Replication job {job_id} in {region} to complete",
        probe,
        timeout_seconds=timeout_seconds,
        interval_seconds=interval_seconds,
        clock=clock,
    )


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


# --- the traffic fence without the DR region's CloudWatch ----------------------------------------------------

ROUTE53_API_REGION = "us-east-1"


def pin_traffic_fence(clients: AwsClients, fence: Mapping[str, Any], *, raised: bool) -> Outcome[str]:
    """Pin the fence through Route53's API when the DR region's CloudWatch cannot carry it (R3), or unpin it.

    A disabled health check is healthy, and disabled and inverted it is unhealthy (catalogue:
    route53.disabled-check-is-healthy-inverted-unhealthy). Pinned raised: the `raised` check disabled and not
    inverted (always healthy), the `lowered` check disabled and inverted (always unhealthy): Route53 answers the
    DR region whatever the fence's data says, and no LastKnownStatus can lapse. Unpinned (`raised=False`): both
    enabled again, with the inversion the program declares (raised inverted, lowered not), following the data.
    Needs Route53's control plane (us-east-1): never call it while that is the failed region. Idempotent.
    """
    action = "pin the traffic fence raised" if raised else "unpin the traffic fence"
    wanted = {
        # check id -> (Disabled, Inverted)
        fence["raisedCheckId"]: (raised, not raised),
        fence["loweredCheckId"]: (raised, raised),
    }
    route53 = clients.client("route53", ROUTE53_API_REGION)
    changed = []
    with _acting(action, fence["alarmName"], ROUTE53_API_REGION):
        for check_id, (disabled, inverted) in wanted.items():
            config = route53.get_health_check(HealthCheckId=check_id)["HealthCheck"]
            current = config["HealthCheckConfig"]
            if (bool(current.get("Disabled")), bool(current.get("Inverted"))) == (disabled, inverted):
                continue
            route53.update_health_check(
                HealthCheckId=check_id,
                HealthCheckVersion=config["HealthCheckVersion"],
                Disabled=disabled,
                Inverted=inverted,
            )
            changed.append(check_id)
    detail = "fence pinned raised through Route53" if raised else "fence follows its data again"
    return Outcome(
        action, fence["alarmName"], ROUTE53_API_REGION, bool(changed), detail, "pinned" if raised else "data"
    )


def traffic_fence_pinned(clients: AwsClients, fence: Mapping[str, Any]) -> bool:
    """Whether the fence is pinned through Route53 (`pin_traffic_fence`): either fence check disabled.

    Read from Route53 itself, not from a record: a pin made by hand (docs/operations.md) is undone as well.
    Needs Route53's control plane (us-east-1).
    """
    route53 = clients.client("route53", ROUTE53_API_REGION)
    with _acting("read the traffic fence's health checks", fence["alarmName"], ROUTE53_API_REGION):
        return any(
            route53.get_health_check(HealthCheckId=check_id)["HealthCheck"]["HealthCheckConfig"].get("Disabled")
            for check_id in (fence["raisedCheckId"], fence["loweredCheckId"])
        )
