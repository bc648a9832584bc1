"""`drctl status`: where the stack stands in the DR state machine and how ready each region is.

The state comes from the stack config and outputs; readiness from AWS, read
in parallel so that an impaired region (whose calls time out) costs the
slowest reading, not their sum. An unreachable region is a row that says so.
Ready means no reading is failing or unreachable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from automation.aws.readiness import Reading, Status, worst
from automation.errors import DrctlError
from automation.journal import iso
from automation.runbooks.context import DrContext
from components.config import DrState, PlatformConfig
from components.naming import cluster_name, db_identifier, node_group_name, parameter_group_of

NOT_READY = (Status.FAILING, Status.UNREACHABLE)
FENCE_LOOK_BACK = timedelta(days=14)
"""RDS keeps events 14 days: a fence's restart older than that cannot be shown."""


@dataclass(frozen=True)
class StatusReport:
    stack: str
    at: str
    config: PlatformConfig
    outputs_state: tuple[str | None, str | None]
    """(activeRegion, drState) as the stack outputs say: they lag the config while an update is pending."""
    readings: tuple[Reading, ...]

    @property
    def ready(self) -> bool:
        return not any(reading.status in NOT_READY for reading in self.readings)

    @property
    def overall(self) -> Status:
        return worst(reading.status for reading in self.readings)

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "at": self.at,
            "primaryRegion": self.config.primary_region,
            "drRegion": self.config.dr_region,
            "activeRegion": self.config.active_region,
            "drState": self.config.dr_state.value,
            "outputs": {"activeRegion": self.outputs_state[0], "drState": self.outputs_state[1]},
            "rpoSeconds": self.config.rpo_seconds,
            "ready": self.ready,
            "overall": self.overall.value,
            "readings": [reading.to_dict() for reading in self.readings],
        }


def planned_readings(ctx: DrContext, cfg: PlatformConfig, outputs: Mapping[str, Any]) -> list[Callable[[], Reading]]:
    """One reader per row; each never raises for an unreachable region."""
    aws, active, standby = ctx.aws, cfg.active_region, cfg.standby_region
    readers: list[Callable[[], Reading]] = []
    for region, entry in (outputs.get("database") or {}).items():
        if entry.get("role") == "replica":
            readers.append(lambda r=region, e=entry: aws.replica_lag(r, e["identifier"], cfg))
        elif entry.get("role") == "writer":
            readers.append(lambda r=region, e=entry: aws.database_role(r, e["identifier"], "writer"))
            readers.append(lambda r=region, e=entry: aws.point_in_time_recovery(r, e["identifier"], cfg))
        readers += wal_retention_readers(ctx, region, entry)
    for region, check_id in ((outputs.get("dns") or {}).get("healthChecks") or {}).items():
        readers.append(lambda r=region, c=check_id: aws.health_check(r, c))
    for region, vault in (outputs.get("backupVaults") or {}).items():
        readers.append(lambda r=region, v=vault: aws.recovery_point_age(r, v["name"]))
    replication, buckets = outputs.get("replication") or {}, outputs.get("buckets") or {}
    source, destination = replication.get("source"), replication.get("destination")
    if source in buckets and destination in buckets:
        readers.append(lambda: aws.s3_replication(source, buckets[source]["name"], buckets[destination]["arn"], cfg))
    global_id = (outputs.get("cache") or {}).get("globalDatastoreId")
    if global_id:
        readers.append(lambda: _global_datastore(ctx, global_id, active, standby))
    expected = (outputs.get("clusters") or {}).get(cfg.dr_region, {}).get("desiredSize")
    readers.append(lambda: aws.node_group(cfg.dr_region, cluster_name(cfg, "dr"), node_group_name(cfg, "dr"), expected))
    fence = (outputs.get("dns") or {}).get("fence")
    if fence:
        readers.append(lambda: _traffic_fence(ctx, cfg, fence))
        # Where Route53 itself answers (its checkers read the fence's data, not the alarm's state).
        serving = cfg.primary_region if cfg.dr_state is DrState.STEADY else cfg.dr_region
        readers.append(lambda: aws.route53_answer(outputs["dns"], serving))
    if cfg.dr_state is DrState.FAILED_OVER:
        readers.append(lambda: former_writer_fence(ctx, cfg))
    return readers


def wal_retention_readers(ctx: DrContext, region: str, entry: Mapping[str, Any]) -> list[Callable[[], Reading]]:
    """The region's standalone instances: the serving writer, a former writer left behind (`detached`), and
    the retained generations, each of which may keep WAL for a slot no replica reads
    (catalogue: rds.inactive-slot-retains-wal)."""
    former = [*([entry["identifier"]] if entry.get("role") == "detached" else []), *(entry.get("retained") or [])]
    readers: list[Callable[[], Reading]] = [
        lambda i=identifier: ctx.aws.wal_retention(region, i, serves_replicas=False) for identifier in former
    ]
    if entry.get("role") == "writer":
        readers.append(lambda: ctx.aws.wal_retention(region, entry["identifier"], serves_replicas=True))
    return readers


def _traffic_fence(ctx: DrContext, cfg: PlatformConfig, fence: Mapping[str, Any]) -> Reading:
    """Raised exactly while the DR region serves (failed-over, resyncing); lowered in steady state."""
    reading = ctx.aws.traffic_fence(fence)
    if reading.status is not Status.OK:
        return reading
    wanted = "lowered" if cfg.dr_state is DrState.STEADY else "raised"
    if reading.value == wanted or (wanted == "lowered" and reading.value == "never raised"):
        return reading
    status = Status.FAILING if wanted == "raised" else Status.WARNING
    detail = f"fence {reading.value} while drState is {cfg.dr_state.value}: Route53 may answer the wrong region"
    return Reading(reading.check, reading.region, reading.subject, status, reading.value, "", detail, reading.facts)


def former_writer_fence(ctx: DrContext, cfg: PlatformConfig) -> Reading:
    """After a failover, the former writer must not take writes: loudly FAILING while it answers unfenced."""
    primary = cfg.primary_region
    former = db_identifier(cfg, "primary", cfg.regions["primary"].db_generation)
    group = parameter_group_of(former)
    check = "former-writer-fence"
    fix = f"run `drctl failback prepare --stack {ctx.stack.fully_qualified_name}` (its first steps fence it)"
    role = ctx.aws.database_role(primary, former, "writer")
    if role.status is Status.UNREACHABLE:
        detail = f"{primary} does not answer; when it does, its writer must be fenced before anything else: {fix}"
        return Reading(check, primary, former, Status.WARNING, "unknown", "", detail)
    if role.value != "writer":
        return Reading(check, primary, former, Status.OK, "not a writer", "", f"{former} is {role.detail}")
    try:
        verified = ctx.aws.verify_fence(primary, group, former, ctx.clock.now() - FENCE_LOOK_BACK)
    except DrctlError as error:  # a fence that cannot be shown counts as absent
        detail = f"UNFENCED FORMER WRITER {former} in {primary} answers and may take writes ({error}): {fix}"
        return Reading(check, primary, former, Status.FAILING, "unfenced", "", detail)
    return Reading(check, primary, former, Status.OK, "fenced", "", f"{former} fenced: {verified}")


def _global_datastore(ctx: DrContext, global_id: str, active: str, standby: str) -> Reading:
    """Any member region answers for the datastore: ask the active one, then the other."""
    reading = ctx.aws.global_datastore(active, global_id, active)
    if reading.status is Status.UNREACHABLE:
        reading = ctx.aws.global_datastore(standby, global_id, active)
    return reading


def read_status(ctx: DrContext) -> StatusReport:
    cfg = ctx.config()
    outputs = ctx.stack.outputs()
    readers = planned_readings(ctx, cfg, outputs)
    with ThreadPoolExecutor(max_workers=max(1, len(readers)), thread_name_prefix="status") as pool:
        readings = tuple(pool.map(lambda read: read(), readers))
    return StatusReport(
        stack=ctx.stack.fully_qualified_name,
        at=iso(ctx.clock.now()),
        config=cfg,
        outputs_state=(outputs.get("activeRegion"), outputs.get("drState")),
        readings=readings,
    )
