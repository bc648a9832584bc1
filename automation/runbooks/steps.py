"""Checks and step bodies that more than one DR runbook uses."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from automation.aws.clients import AwsClients
from automation.aws.readiness import DatabaseInstance, Reading, Status
from automation.errors import DrctlError
from automation.journal import iso, parse_iso
from automation.runbook import DATA_LOSS_WINDOW, DISRUPTION_STARTED_AT, Check, CheckFailedError, RunContext, Step
from automation.runbooks.context import FOLLOW_UPS, WARNINGS, DrContext, gate_preview, output
from automation.timings import Op, latency
from automation.transitions import transition_config
from components.config import DrState, NodeGroupSize, PlatformConfig
from components.naming import cluster_name, node_group_name, parameter_group_of

WRITES_STOPPED_AT = "writes_stopped_at"
"""When the write fence was verified: nothing the application writes commits after it."""
TRAFFIC_MOVED_AT = "traffic_moved_at"
"""When the traffic fence's alarm turned: Route53's checkers follow it shortly after."""
RECORDS_MOVED_AT = "records_moved_at"
"""When the update that moved the Route53 records back to the primary ended (they were INSYNC by then)."""

PASSING = (Status.OK, Status.WARNING)
PREVIEW_TIMEOUT_SECONDS = 900.0
"""A targeted preview is one engine run (pulumi.preview in automation.timings: minutes at worst)."""


def state_is(ctx: DrContext, *expected: DrState) -> Check:
    """The stack config is in one of `expected` (read live: the config is what the runbook moves)."""
    names = " or ".join(state.value for state in expected)

    def verify(run: RunContext) -> str:
        state = ctx.config().dr_state
        if state not in expected:
            raise CheckFailedError(f"the stack is {state.value}; this runbook starts from {names}")
        return f"drState {state.value}"

    return Check(f"stack_is_{'_or_'.join(s.value.replace('-', '_') for s in expected)}", verify)


def reading_check(name: str, read: Callable[[RunContext], Reading], passing: Iterable[Status] = PASSING) -> Check:
    """A check that passes when the reading's status is one of `passing`; the reading's detail is the record."""
    allowed = tuple(passing)

    def verify(run: RunContext) -> str:
        reading = read(run)
        text = f"{reading.subject} in {reading.region}: {reading.status.value}, {reading.detail}"
        if reading.status not in allowed:
            raise CheckFailedError(text)
        return text

    return Check(name, verify)


def route53_readable(failed_region: str | None) -> bool:
    """Route53's API is served from one region; while that region is the failed one it must not be called."""
    return failed_region is None or AwsClients.api_region("route53", failed_region) != failed_region


def health_check_green(ctx: DrContext, name: str, region: str, *, failed_region: str | None) -> Check:
    """The region's Route53 health check, unless reading it would call the failed region."""

    def verify(run: RunContext) -> str:
        if not route53_readable(failed_region):
            return (
                f"not read: Route53's control plane is in the failed region {failed_region}; health-check "
                "failover itself runs in Route53's data plane"
            )
        check_id = output(ctx.stack.outputs(), "dns", "healthChecks", region)
        reading = ctx.aws.health_check(region, check_id)
        text = f"health check {check_id} of {region}: {reading.status.value}, {reading.detail}"
        if reading.status is not Status.OK:
            raise CheckFailedError(text)
        return text

    return Check(name, verify)


def unconverged(instance: DatabaseInstance, cfg: PlatformConfig) -> list[str]:
    """What a promoted instance still lacks of its standalone declaration (terraform-provider-aws #4419)."""
    missing = []
    if instance.backup_retention_days < cfg.db_backup_retention_days:
        missing.append(f"backup retention {instance.backup_retention_days} < {cfg.db_backup_retention_days} days")
    # The master password is the program's (components/database.py), inherited from the former source.
    return missing


def converge_writer(
    ctx: DrContext, run: RunContext, region: str, identifier: str, update: Callable[[], Any]
) -> dict[str, Any]:
    """Wait until the promoted instance is a standalone writer, then re-run the update until it converged."""
    cfg = ctx.config()
    extra_updates = 0
    while True:
        instance = ctx.aws.wait_until_writer(region, identifier)
        missing = unconverged(instance, cfg)
        if not missing:
            return {
                "writer": identifier,
                "backupRetentionDays": instance.backup_retention_days,
                "extraUpdates": extra_updates,
            }
        if extra_updates >= ctx.settings.convergence_updates:
            raise DrctlError(
                f"{identifier} in {region} is a writer but did not converge after {extra_updates} more update(s): "
                + "; ".join(missing),
                hint="read the update output in the journal and fix the cause (RDS still busy? permissions?), "
                "then rerun the same command: the run resumes at this step",
            )
        extra_updates += 1
        run.log(
            f"{identifier} not converged yet ({'; '.join(missing)}): update {extra_updates} of at most "
            f"{ctx.settings.convergence_updates}"
        )
        update()


def notify(ctx: DrContext, run: RunContext, region: str, subject: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    """Publish the run's outcome to the region's alert topic."""
    topic = output(ctx.stack.outputs(), "alertTopics", region)
    message = {
        "stack": ctx.stack.fully_qualified_name,
        "run": run.run_id,
        "operator": run.parameters.operator,
        "reason": run.parameters.reason,
        "mode": run.parameters.mode,
        "forced": run.parameters.force,
        "simulation": run.simulation,
        "dataLossWindowSeconds": run.measurement(DATA_LOSS_WINDOW),
        "warnings": run.measurement(WARNINGS) or [],
        "followUps": run.measurement(FOLLOW_UPS) or [],
        **extra,
    }
    prefix = "[SIMULATION] " if run.simulation else ""
    message_id = ctx.aws.notify(region, topic, prefix + subject, message)
    return {"topic": topic, "messageId": message_id}


# --- steps a failover and a failback switch take alike, for the region that takes the writes over ---------


def target_config(ctx: DrContext, state: DrState) -> dict[str, str]:
    """The stack config in `state`: as it is once written, else what `transition_config` would write."""
    config = ctx.stack.get_config()
    return config if ctx.config().dr_state is state else transition_config(config, state)


def write_config_step(ctx: DrContext, state: DrState, *, description: str, **options: Any) -> Step:
    """`write_<state>_config`: the `transition_config` to `state`, done once the stack config is in `state`."""

    def write(run: RunContext) -> dict[str, Any]:
        return {"changed": ctx.write_config(run, transition_config(ctx.stack.get_config(), state))}

    return ctx.step(
        f"write_{state.value.replace('-', '_')}_config",
        write,
        description=description,
        already_done=lambda run: ctx.config().dr_state is state,
        **options,
    )


def converge_step(
    ctx: DrContext,
    cfg: PlatformConfig,
    role: str,
    writer: str,
    update_again: Callable[[RunContext], Any],
    *,
    description: str,
) -> Step:
    """`converge_promoted_<role>_database`: wait for the promoted writer, re-running `update_again` (#4419)."""
    region = cfg.region_of(role)

    def converge(run: RunContext) -> dict[str, Any]:
        return converge_writer(ctx, run, region, writer, lambda: update_again(run))

    return ctx.step(
        f"converge_promoted_{role}_database",
        converge,
        description=description,
        timeout_seconds=(ctx.settings.convergence_updates + 1) * (ctx.settings.promotion_timeout_seconds + 600),
    )


def scale_compute_step(ctx: DrContext, cfg: PlatformConfig, role: str) -> Step:
    """`scale_<role>_compute_to_full`: the node group asked for its full size and ACTIVE again (not yet capacity)."""
    region, node_group = cfg.region_of(role), node_group_name(cfg, role)

    def scale(run: RunContext) -> dict[str, Any]:
        size = cfg.node_group_full
        outcome = ctx.aws.scale_node_group(region, cluster_name(cfg, role), node_group, size)
        return {"nodeGroup": outcome.subject, "desired": size.desired, "changed": outcome.changed}

    return ctx.step(
        f"scale_{role}_compute_to_full",
        scale,
        description=f"scale {node_group} to {cfg.node_group_full.desired} nodes: the update asked, group ACTIVE",
        timeout_seconds=ctx.settings.compute_timeout_seconds + 60,
    )


def nodes_ready_step(
    ctx: DrContext, cfg: PlatformConfig, role: str, *, count: int | None = None, name: str | None = None
) -> Step:
    """`wait_until_<role>_nodes_ready`: `count` instances of the node group InService (default: its full size).

    ACTIVE is not capacity (catalogue: eks.active-is-not-ready).
    """
    region, node_group = cfg.region_of(role), node_group_name(cfg, role)
    wanted = cfg.node_group_full.desired if count is None else count

    def ready(run: RunContext) -> dict[str, Any]:
        ready_nodes = ctx.aws.wait_until_nodes_ready(region, cluster_name(cfg, role), node_group, wanted)
        return {"nodeGroup": node_group, "ready": ready_nodes}

    return ctx.step(
        name or f"wait_until_{role}_nodes_ready",
        ready,
        description=f"{wanted} nodes of {node_group} InService",
        timeout_seconds=ctx.settings.compute_timeout_seconds + 60,
    )


def fence_writer_step(
    ctx: DrContext,
    name: str,
    region: str,
    parameter_group: str,
    writer: str,
    *,
    description: str,
    revert_if_not_fenced: bool = True,
    stops_service: bool = False,
) -> Step:
    """A write fence that holds, verified: read-only by default, every session ended by a reboot.

    Not a security-group change: it would leave established connections writing
    (catalogue: ec2.security-group-change-keeps-tracked-connections).

    Records `writes_stopped_at` (when the fence was verified) for the final sync.
    The first attempt's start is journaled, so a resumed run neither reboots twice
    nor accepts a restart from before the change. A refused reboot puts writes
    back on unless `revert_if_not_fenced` is False (a former writer stays read-only).
    `stops_service`: the fence of a planned switch, whose start is the start of the
    disruption the RTO measures.
    """
    started_key = f"{name}_started_at"

    def fence(run: RunContext) -> dict[str, Any]:
        if run.measurement(started_key) is None:
            run.record(started_key, iso(ctx.clock.now()))
        if stops_service and run.measurement(DISRUPTION_STARTED_AT) is None:
            run.record(DISRUPTION_STARTED_AT, run.measurement(started_key))
        result = ctx.aws.fence_writer(
            region,
            parameter_group,
            writer,
            parse_iso(run.measurement(started_key)),
            revert_if_not_fenced=revert_if_not_fenced,
        )
        run.record(WRITES_STOPPED_AT, iso(ctx.clock.now()))
        return result

    return ctx.step(
        name,
        fence,
        description=description,
        timeout_seconds=ctx.settings.reboot_timeout_seconds + 2 * ctx.settings.poll_seconds + 600,
    )


def traffic_fence_step(ctx: DrContext, *, raised: bool, description: str, through_route53: bool = False) -> Step:
    """`raise_traffic_fence` / `lower_traffic_fence`: write the fence into the DR state authority, then wait until
    the fence publisher's data (what Route53 reads) and the fence alarm say so. Safe to repeat.

    The authority, not drctl, keeps the fence standing: the publisher puts its value every minute whether or
    not drctl runs (components/fence_publisher.py; catalogue: route53.last-known-status-is-for-brief-gaps).

    `through_route53` (raising only; R3: the DR region's CloudWatch impaired): the authority is written all the
    same, so the data agrees once CloudWatch answers, but the fence is pinned through Route53's control plane
    instead of waiting for the alarm. Lowering undoes a pin after the data says lowered, whoever made it: until
    then the pin keeps Route53 on the DR region.
    """
    if through_route53 and not raised:
        raise ValueError("only raising the fence may go through Route53; lowering undoes a pin by itself")

    def flip(run: RunContext) -> dict[str, Any]:
        fence = output(ctx.stack.outputs(), "dns", "fence")
        if ctx.record_traffic_fence is None:
            raise CheckFailedError(
                "no DR state authority to record the traffic fence in: the fence publisher reads it there "
                "(run drctl with its control store: --journal s3://BUCKET/PREFIX)"
            )
        written_at = ctx.clock.now()
        ctx.record_traffic_fence(run, raised)
        moved_at = written_at
        if through_route53:
            # catalogue: route53.disabled-check-is-healthy-inverted-unhealthy
            outcome = ctx.aws.pin_traffic_fence(fence, raised=True)
        else:
            outcome = ctx.aws.wait_for_traffic_fence(fence, raised=raised, since=written_at)
            if not raised and ctx.aws.traffic_fence_pinned(fence):
                # The data says lowered now: unpinned, the checks follow it and Route53 answers by the records.
                outcome = ctx.aws.pin_traffic_fence(fence, raised=False)
                moved_at = ctx.clock.now()
        if outcome.changed or run.measurement(TRAFFIC_MOVED_AT) is None:
            # The flip estimate (route53.fence-flip-time) runs from the authority's write (or the unpin).
            run.record(TRAFFIC_MOVED_AT, iso(moved_at))
        return {"alarm": fence["alarmName"], "state": outcome.state, "changed": outcome.changed}

    return ctx.step(
        "raise_traffic_fence" if raised else "lower_traffic_fence",
        flip,
        description=description,
        timeout_seconds=ctx.settings.fence_timeout_seconds + 60,
    )


def clients_moved_step(ctx: DrContext, role: str, *, records_too: bool = False) -> Step:
    """`wait_until_clients_reach_<role>`: Route53 answers the region, then every resolver's cached answer expired.

    Route53 answers it once its checkers follow the traffic fence's alarm (raised:
    the region whatever the records say) and, when the fence was lowered
    (`records_too`), once the records name the region again. Charged here, where
    clients really wait, so the measured RTO includes it (catalogue:
    dns.resolvers-cache-for-the-ttl, route53.fence-flip-time).
    """
    cfg = ctx.config()

    def wait(run: RunContext) -> dict[str, Any]:
        moved = run.measurement(TRAFFIC_MOVED_AT)
        if moved is None:
            return {"waited": 0, "detail": "traffic did not move in this run"}
        answered = parse_iso(moved) + timedelta(seconds=latency(Op.ROUTE53_FOLLOWS_ALARM))
        records = run.measurement(RECORDS_MOVED_AT)
        if records_too and records is not None:
            answered = max(answered, parse_iso(records))
        ttl = latency(Op.DNS_CACHE_EXPIRY, cfg)
        remaining = (answered + timedelta(seconds=ttl) - ctx.clock.now()).total_seconds()
        if remaining > 0:
            run.sleep(remaining)
        return {"waited": max(0.0, remaining), "detail": f"Route53 answers {role} from {iso(answered)}, + TTL {ttl:g}s"}

    return ctx.step(
        f"wait_until_clients_reach_{role}",
        wait,
        description=f"Route53 answers {cfg.region_of(role)} and every resolver's cached answer has expired",
        timeout_seconds=latency(Op.ROUTE53_FOLLOWS_ALARM, worst=True) + cfg.dns_ttl_seconds + 600,
    )


def preview_update_step(
    ctx: DrContext,
    name: str,
    previews: dict[str, Any],
    targets: Callable[[], Sequence[str] | None],
    *,
    exclude: Callable[[RunContext], Sequence[str] | None] = lambda run: None,
    description: str,
) -> Step:
    """The preview and the gates of the update that follows, as a step of their own.

    So that the preview (an engine run of its own) runs while the update still
    waits for something else (a fence, a final sync). The update step takes the
    preview from `previews` when this runbook object took it (`update_step`); a
    resumed run builds a new runbook and previews again.
    """

    def preview(run: RunContext) -> dict[str, Any]:
        left_out = exclude(run)
        summary = ctx.preview_update(run, targets(), left_out)  # the update's exact scope
        gate_preview(summary, left_out)
        previews[name] = summary
        return {"changes": summary.describe()}

    return ctx.step(name, preview, description=description, timeout_seconds=PREVIEW_TIMEOUT_SECONDS)


def update_step(
    ctx: DrContext,
    name: str,
    previews: dict[str, Any],
    preview_step: str,
    update: Callable[[RunContext, Any], dict[str, Any]],
    **options: Any,
) -> Step:
    """The update that `preview_step` previewed: `update(run, preview)` gets that preview (None: preview again)."""

    def run_update(run: RunContext) -> dict[str, Any]:
        return update(run, previews.pop(preview_step, None))

    return ctx.step(name, run_update, **options)


def former_region_steps(ctx: DrContext, cfg: PlatformConfig, former_writer: str) -> tuple[Step, Step]:
    """The first thing to do once the region left by an emergency failover answers again.

    Its database would still take writes and its compute still serve: fence the
    writer (read-only, sessions ended, verified) and scale its node group to
    zero. Both are safe to repeat. Requests are already kept away by the traffic
    fence (catalogue: route53.cloudwatch-metric-check-follows-the-alarm).
    """
    primary = cfg.primary_region
    fence = fence_writer_step(
        ctx,
        "fence_former_writer",
        primary,
        parameter_group_of(former_writer),
        former_writer,
        description=f"read-only and every session ended on the former writer {former_writer} ({primary})",
        # Nothing must write there: a read-only default, even without the reboot, is better than none.
        revert_if_not_fenced=False,
    )

    def scale_to_zero(run: RunContext) -> dict[str, Any]:
        zero = NodeGroupSize(min=0, desired=0, max=cfg.node_group_full.max)
        outcome = ctx.aws.scale_node_group(primary, cluster_name(cfg, "primary"), node_group_name(cfg, "primary"), zero)
        return {"nodeGroup": outcome.subject, "desired": 0, "changed": outcome.changed}

    scale = ctx.step(
        "scale_former_compute_to_zero",
        scale_to_zero,
        description=f"scale {node_group_name(cfg, 'primary')} in {primary} to 0 nodes: nothing there serves",
        timeout_seconds=ctx.settings.compute_timeout_seconds + 60,
    )
    return fence, scale


def allow_writes_step(ctx: DrContext, cfg: PlatformConfig, role: str, writer: str, *, description: str) -> Step:
    """`allow_writes_on_<role>_parameter_group`: default_transaction_read_only off on the region's parameter group.

    A read-only window left there (by a graceful failover or a failback switch) would make the next writer
    promoted in that region refuse writes.
    """

    def allow(run: RunContext) -> dict[str, Any]:
        outcome = ctx.aws.allow_writes(cfg.region_of(role), parameter_group_of(writer), writer)
        return {"changed": outcome.changed}

    return ctx.step(f"allow_writes_on_{role}_parameter_group", allow, description=description)


def standalone_writer_check(ctx: DrContext, cfg: PlatformConfig, role: str, writer: str) -> Check:
    """`<role>_database_is_standalone_writer`: the promoted instance answers as a writer."""
    region = cfg.region_of(role)
    return reading_check(
        f"{role}_database_is_standalone_writer", lambda run: ctx.aws.database_role(region, writer, "writer")
    )
