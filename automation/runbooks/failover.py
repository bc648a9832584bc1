"""`drctl failover`: steady -> failed-over, the DR region becomes the active one.

Two modes, as operators know them:

- graceful (planned switchover): both regions answer. The primary writer is
  fenced (read-only by default, every session ended by a reboot, verified),
  the DR replica is awaited until it has received everything (the source's
  replication slot empty after the fence), then the switch; moving DNS is
  part of success: no data loss, no traffic left on a read-only writer.
- emergency: the primary region is impaired. Nothing here calls it: no read,
  no refresh, no update (the stack update targets the DR region and global
  resources only, and Route53's control plane is neither read nor changed
  while it is the failed region). The first step raises the traffic fence in
  the DR region's data plane, so the primary gets no request when it returns;
  `drctl failback prepare` (or the `fence-former-region` runbook) then fences
  its writer and compute as soon as it answers. The data-loss window is the
  replica's lag when the primary stopped, read from the metric's history.

Order (emergency): raise the traffic fence -> measure the data-loss window ->
[scale DR compute || allow writes there || fail the cache over (bounded)] ->
write the failed-over config -> targeted update (promotes the DR database) ->
converge (#4419) -> reconcile DNS records -> verify (clients moved) -> notify.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from automation.aws.readiness import Status
from automation.errors import DrctlError
from automation.journal import iso, parse_iso
from automation.runbook import DATA_LOSS_WINDOW, Check, CheckFailedError, Runbook, RunContext, Step
from automation.runbooks import graph_reasons
from automation.runbooks.context import (
    NOT_RECOVERED,
    DrContext,
    follow_up,
    not_recovered,
    output,
    route53_urns,
    warn,
)
from automation.runbooks.graph import Node, RunbookGraph
from automation.runbooks.steps import (
    WRITES_STOPPED_AT,
    allow_writes_step,
    clients_moved_step,
    converge_step,
    fence_writer_step,
    former_region_steps,
    health_check_green,
    nodes_ready_step,
    notify,
    preview_update_step,
    reading_check,
    route53_readable,
    scale_compute_step,
    standalone_writer_check,
    state_is,
    target_config,
    traffic_fence_step,
    update_step,
    write_config_step,
)
from automation.stack import root_stack_urn, short_stack_name
from automation.targets import refuse_failed_region_targets, surviving_region_targets
from automation.timings import Op
from components.config import DrState, PlatformConfig
from components.naming import (
    cache_group_id,
    cluster_name,
    db_identifier,
    node_group_name,
    parameter_group_of,
)

RUNBOOK = "failover"
FENCE_FORMER_REGION = "fence-former-region"
DNS_RECONCILED = "dns_reconciled"
CACHE_STATE = "cache_state"
CACHE_PART = "cache"
"""How a not-recovered cache is named in the run's `not_recovered` list (context.not_recovered)."""


class FailoverMode(StrEnum):
    GRACEFUL = "graceful"
    EMERGENCY = "emergency"


ACCEPT_OPTION = "accept"
"""RunParameters.options key: the preflight checks an emergency failover was told to accept (comma-separated)."""
ACCEPTABLE_IN_AN_EMERGENCY = {
    "dr_backups_recent": "the DR region's newest recovery point copy is older than a day",
    "dr_node_group_active": "the DR node group is not ACTIVE (DEGRADED: EC2 capacity or an instance problem)",
    "dr_load_balancer_has_healthy_targets": "no healthy target behind the DR load balancer yet",
}
"""Preflight refusals an operator may accept one by one (`--accept CHECK`) in an emergency: each says the DR region
is less fit than planned, none that data could be lost or that two writers could take writes (the state, the DR
database being a replica of the primary, the traffic fence, the lock are never accepted; the data-loss window only
with --force)."""


def accept_option(names: Sequence[str], mode: FailoverMode, reason: str | None) -> str:
    """The `--accept` names as recorded in the run's parameters; refused before anything runs when not allowed."""
    if not names:
        return ""
    allowed = ", ".join(sorted(ACCEPTABLE_IN_AN_EMERGENCY))
    unknown = sorted(set(names) - set(ACCEPTABLE_IN_AN_EMERGENCY))
    if unknown:
        raise DrctlError(
            f"--accept {', '.join(unknown)}: not a check that may be accepted; one of {allowed}",
            hint="checks that keep data safe (state, DR replica, traffic fence, lock) are never accepted; the "
            "data-loss window only with --force",
        )
    if mode is not FailoverMode.EMERGENCY:
        raise DrctlError("--accept is for --mode emergency only: a planned switch waits until the DR region is fit")
    if not (reason or "").strip():
        raise DrctlError("--accept needs --reason", hint="say why failing over to a less fit DR region is right")
    return ",".join(sorted(set(names)))


FENCE_THROUGH_ROUTE53_OPTION = "fence_through_route53"
"""RunParameters.options key ("true"): the emergency failover pins the traffic fence through Route53's control
plane instead of waiting for the DR region's CloudWatch (R3)."""


def fence_through_route53_option(wanted: bool, mode: FailoverMode, reason: str | None) -> dict[str, str]:
    """`--fence-through-route53` as recorded in the run's parameters; refused before anything runs when not
    allowed (the failed region is checked in preflight, where the stack's config is read)."""
    if not wanted:
        return {}
    if mode is not FailoverMode.EMERGENCY:
        raise DrctlError(
            "--fence-through-route53 is for --mode emergency only: a planned switch waits until the DR region's "
            "CloudWatch carries the fence"
        )
    if not (reason or "").strip():
        raise DrctlError(
            "--fence-through-route53 needs --reason", hint="say why the DR region's CloudWatch cannot carry the fence"
        )
    return {FENCE_THROUGH_ROUTE53_OPTION: "true"}


def accepted_checks(run: RunContext) -> set[str]:
    return {name for name in run.parameters.options.get(ACCEPT_OPTION, "").split(",") if name}


def acceptable(check: Check, emergency: bool) -> Check:
    """`check`, which an emergency failover given `--accept <its name>` records as accepted instead of refusing."""
    if not emergency or check.name not in ACCEPTABLE_IN_AN_EMERGENCY:
        return check

    def verify(run: RunContext) -> str:
        try:
            return check.verify(run)
        except CheckFailedError as error:
            if check.name in accepted_checks(run):
                return f"ACCEPTED by --accept {check.name} ({run.parameters.reason}): {error}"
            raise CheckFailedError(
                f"{error} (an emergency failover may go ahead with --accept {check.name} and a --reason)"
            ) from error

    return Check(check.name, verify, check.description)


def failover_targets(ctx: DrContext, raw_config: Mapping[str, str], failed_region: str) -> list[str]:
    """The DR region, global resources and the root stack, without Route53 (reconciled on its own)."""
    evaluation = ctx.evaluation(raw_config)
    surviving = surviving_region_targets(evaluation, failed_region)
    dns = set(route53_urns(evaluation, surviving))
    targets = [urn for urn in surviving if urn not in dns]
    refuse_failed_region_targets(evaluation, targets, failed_region)
    return targets


def dns_targets(ctx: DrContext, raw_config: Mapping[str, str], failed_region: str) -> list[str]:
    """The Route53 records and health checks the failover may change, plus the root stack."""
    evaluation = ctx.evaluation(raw_config)
    targets = [
        root_stack_urn(short_stack_name(ctx.stack.fully_qualified_name)),
        *route53_urns(evaluation, surviving_region_targets(evaluation, failed_region)),
    ]
    refuse_failed_region_targets(evaluation, targets, failed_region)
    return targets


def reconcile_dns(
    ctx: DrContext, run: RunContext, failed_region: str | None, surviving_region: str, *, required: bool
) -> dict[str, Any]:
    """Make the declared Route53 records agree with where the traffic fence already sends traffic.

    In an emergency this is reconciliation, not the step traffic depends on: a
    failure is a warning and a follow-up (`drctl reconcile-dns`). When
    `required` (a graceful switchover), a failure fails the step: the run
    resumes here when rerun.
    """
    later = f"drctl reconcile-dns --stack {ctx.stack.fully_qualified_name} once Route53's control plane answers"
    if failed_region is not None and not route53_readable(failed_region):
        warn(run, f"Route53 records not updated: its control plane is in the failed region {failed_region}")
        follow_up(run, later)
        run.record(DNS_RECONCILED, False)
        return {"reconciled": False, "reason": f"Route53 control plane in {failed_region}"}
    config = ctx.stack.get_config()
    targets = dns_targets(ctx, config, failed_region or ctx.config().primary_region)
    try:
        result = ctx.update(run, targets, message=f"drctl: reconcile DNS records with {surviving_region}")
    except DrctlError as error:
        if required:
            raise DrctlError(
                f"the Route53 records could not be moved to {surviving_region} ({error}); a planned switchover must "
                "move DNS: when Route53 answers, rerun the same `drctl failover --mode graceful` command, it resumes "
                "at this step",
                hint=f"the traffic fence already sends users to {surviving_region}",
            ) from error
        warn(run, f"Route53 records not updated ({error}); the traffic fence routes traffic meanwhile")
        follow_up(run, later)
        run.record(DNS_RECONCILED, False)
        return {"reconciled": False, "error": str(error)}
    run.record(DNS_RECONCILED, True)
    return {"reconciled": True, "changes": result.summary.describe()}


def dr_targets_check(ctx: DrContext, cfg: PlatformConfig, *, serving: bool) -> Check:
    """`dr_load_balancer_has_healthy_targets`: healthy targets behind the DR load balancer.

    Before the failover (`serving` False) the DR region runs its standby size: one healthy target shows the
    application answers there. Once it serves, as many as the serving nodes (`serving_nodes`): the application
    is expected to spread one serving pod per node at least, as the sandbox models it (one target per Ready
    node); fewer is a failure, not a warning, so verification does not pass on a single pod. InService nodes
    are not Ready nodes, nor serving pods: this is the check that the application serves (catalogue:
    eks.inservice-is-not-node-ready).
    """
    dr = cfg.dr_region
    expected = serving_nodes(cfg) if serving else 1

    def dr_serves(run: RunContext) -> str:
        group = (ctx.stack.outputs().get("entryPoints") or {}).get(dr, {}).get("targetGroupArn")
        if not group:
            return f"{dr} is reached through an existing ingress: no target group to read"
        reading = ctx.aws.target_health(dr, group, expected=expected)
        text = f"target group in {dr}: {reading.status.value}, {reading.detail}"
        if reading.status not in ((Status.OK,) if serving else (Status.OK, Status.WARNING)):
            raise CheckFailedError(text)
        return text

    return Check("dr_load_balancer_has_healthy_targets", dr_serves)


def dr_health_checks(ctx: DrContext, cfg: PlatformConfig, failed_region: str | None) -> list[Check]:
    """Is the DR region fit to serve? Read from its own data: target health and nodes, and Route53 when it answers.

    Route53's control plane is in us-east-1: with the primary there and down, its
    health-check API is not read at all, and the DR region's load balancer and
    node group say what it would (catalogue: eks.active-is-not-ready).
    """
    dr = cfg.dr_region
    checks = [
        dr_targets_check(ctx, cfg, serving=False),
        reading_check(
            "dr_node_group_active",
            lambda run: ctx.aws.node_group(dr, cluster_name(cfg, "dr"), node_group_name(cfg, "dr"), None),
        ),
    ]
    if route53_readable(failed_region):
        checks.append(health_check_green(ctx, "dr_health_check_green", dr, failed_region=failed_region))
    return checks


def failover_runbook(ctx: DrContext, mode: FailoverMode | str, *, fence_through_route53: bool = False) -> Runbook:
    """`fence_through_route53` (emergency only): the traffic fence is pinned through Route53's control plane, not
    raised through the DR region's CloudWatch, and preflight checks that Route53 can be called instead of the
    alarm (R3)."""
    mode = FailoverMode(mode)
    cfg = ctx.config()
    primary, dr = cfg.primary_region, cfg.dr_region
    emergency = mode is FailoverMode.EMERGENCY
    if fence_through_route53 and not emergency:
        raise DrctlError("the traffic fence is pinned through Route53 in an emergency failover only")
    # The emergency path treats the primary region as gone, Route53's control plane included if it lives there.
    failed = primary if emergency else None
    dr_db = db_identifier(cfg, "dr", cfg.regions["dr"].db_generation)
    primary_db = db_identifier(cfg, "primary", cfg.regions["primary"].db_generation)

    # --- preflight -----------------------------------------------------------------------

    def forced_with_a_reason(run: RunContext) -> str:
        overrides = run.parameters.force or accepted_checks(run)
        if overrides and not run.parameters.reason.strip():
            raise CheckFailedError("--force and --accept override refusals and must be recorded with a --reason")
        accepted = f"; accepted: {', '.join(sorted(accepted_checks(run)))}" if accepted_checks(run) else ""
        return (f"forced: {run.parameters.reason}" if run.parameters.force else "not forced") + accepted

    def data_loss_under_rpo(run: RunContext) -> str:
        reading = ctx.aws.data_loss_window(dr, dr_db, cfg)
        text = f"{dr_db} in {dr}: {reading.status.value}, {reading.detail}"
        if reading.status is Status.OK:
            return text
        if reading.status is Status.UNREACHABLE:
            if not fence_through_route53:
                raise CheckFailedError(f"the DR region does not answer: {text}")
            # Its CloudWatch is the impairment the pin works round: the replica's lag history is unreadable, so
            # the window is unknown (the DR database itself answered dr_database_is_a_serving_replica).
            text = f"unknown, {dr}'s CloudWatch does not answer ({text})"
        if run.parameters.force:
            return f"OVERRIDDEN by --force ({run.parameters.reason}): {text}"
        raise CheckFailedError(f"{text}; failing over now may lose more than the RPO of {cfg.rpo_seconds} s")

    def dr_replicates_from_primary(run: RunContext) -> Any:
        source = output(ctx.stack.outputs(), "database", primary, "arn")
        return ctx.aws.database_role(dr, dr_db, "replica", expected_source=source)

    def traffic_fence_deployed(run: RunContext) -> str:
        reading = ctx.aws.traffic_fence(output(ctx.stack.outputs(), "dns", "fence"))
        if reading.status is not Status.OK:
            raise CheckFailedError(f"traffic fence: {reading.detail}")
        return reading.detail

    def traffic_fence_pinnable(run: RunContext) -> str:
        # The pin is UpdateHealthCheck, served only from us-east-1 (catalogue: route53.control-plane-us-east-1).
        if not route53_readable(failed):
            raise CheckFailedError(
                f"Route53's control plane is in the failed region {failed}: the fence cannot be pinned through it; "
                f"it must come from {dr}'s CloudWatch (run without --fence-through-route53)"
            )
        fence = output(ctx.stack.outputs(), "dns", "fence")
        now = "already pinned" if ctx.aws.traffic_fence_pinned(fence) else "following their data"
        return f"fence checks of {fence['alarmName']} readable through Route53 ({now})"

    def dr_backups_recent(run: RunContext) -> Any:
        return ctx.aws.recovery_point_age(dr, output(ctx.stack.outputs(), "backupVaults", dr, "name"))

    preflight: list[Check] = [
        state_is(ctx, DrState.STEADY),
        Check("forced_with_a_reason", forced_with_a_reason),
        reading_check("dr_database_is_a_serving_replica", dr_replicates_from_primary),
        Check("traffic_fence_pinnable_through_route53", traffic_fence_pinnable)
        if fence_through_route53
        else Check("traffic_fence_deployed", traffic_fence_deployed),
        *(acceptable(check, emergency) for check in dr_health_checks(ctx, cfg, failed)),
        # The DR region keeps copies of every recovery point: after failover they are the backups there are.
        acceptable(reading_check("dr_backups_recent", dr_backups_recent), emergency),
    ]
    if emergency:
        preflight.insert(3, Check("data_loss_window_under_rpo", data_loss_under_rpo))
    else:
        preflight += [
            reading_check("dr_replica_keeping_up", lambda run: ctx.aws.replica_lag(dr, dr_db, cfg)),
            reading_check(
                "primary_writer_reachable_for_a_graceful_switch",
                lambda run: ctx.aws.database_role(primary, primary_db, "writer"),
            ),
            reading_check(
                "primary_point_in_time_recovery_fresh",
                lambda run: ctx.aws.point_in_time_recovery(primary, primary_db, cfg),
            ),
        ]

    # --- steps -----------------------------------------------------------------------------

    # catalogue: rds.oldest-replication-slot-lag
    def wait_until_dr_has_everything(run: RunContext) -> dict[str, Any]:
        since = parse_iso(run.measurement(WRITES_STOPPED_AT))
        sample = ctx.aws.wait_until_replica_has_everything(primary, primary_db, since)
        run.record(DATA_LOSS_WINDOW, 0)
        return {"source": primary_db, "slotLagBytes": sample.seconds, "at": iso(sample.at)}

    def fail_over_cache(run: RunContext) -> dict[str, Any]:
        global_id = output(ctx.stack.outputs(), "cache", "globalDatastoreId")
        group = cache_group_id(cfg, "dr")
        try:
            outcome = ctx.aws.fail_over_global_datastore(global_id, dr, group)
        except DrctlError as error:
            if not emergency:
                raise
            # The cache must not hold up the database: report its state and leave the detach to a person
            # (catalogue: elasticache.global-datastore-failover-with-primary-region-down,
            # elasticache.disassociate-makes-standalone).
            state = f"still a read-only secondary of {primary}: {error}"
            run.record(CACHE_STATE, state)
            # Every cache write the application makes in DR fails until it is detached: the database and the
            # traffic are recovered, the platform is not (the run ends non-zero, W7).
            not_recovered(
                run,
                CACHE_PART,
                f"{group} in {dr} is {state}",
                remedy=f"aws elasticache disassociate-global-replication-group --region {dr} "
                f"--global-replication-group-id {global_id} --replication-group-id {group} "
                f"--replication-group-region {dr}  (the DR cache then takes writes on its own; failback prepare "
                "re-seeds it)",
            )
            return {"globalDatastore": global_id, "failedOver": False, "state": state}
        run.record(CACHE_STATE, f"primary in {dr} ({outcome.detail})")
        return {"globalDatastore": global_id, "primary": f"{group} in {dr}", "changed": outcome.changed}

    def record_data_loss_window(run: RunContext) -> dict[str, Any]:
        reading = ctx.aws.data_loss_window(dr, dr_db, cfg)
        if reading.value is None:
            warn(run, f"the data-loss window of promoting {dr_db} is unknown: {reading.detail}")
            return {"windowSeconds": None}
        run.record(DATA_LOSS_WINDOW, reading.value)
        return {"windowSeconds": reading.value, "detail": reading.detail}

    def update_targets() -> list[str]:
        config = ctx.stack.get_config()
        targets = failover_targets(ctx, config, primary)
        # Both control planes answer in a planned switch: the records move in the same update, beside the
        # promotion (catalogue: pulumi-cli.update-runs-independent-steps-in-parallel).
        if not emergency:
            targets += [urn for urn in dns_targets(ctx, config, primary) if urn not in targets]
        return targets

    def update_dr_region(run: RunContext, preview: Any) -> dict[str, Any]:
        targets = update_targets()
        message = f"drctl failover to {dr}: DR region and global resources" + ("" if emergency else ", DNS records")
        try:
            result = ctx.update(run, targets, message=message, preview=preview)
        except DrctlError as error:
            if emergency:
                raise
            raise DrctlError(
                f"the update that promotes {dr_db} and moves the Route53 records failed ({error}); a planned "
                "switchover must move DNS: once the cause is fixed, rerun the same `drctl failover --mode graceful` "
                "command, it resumes at this step",
                hint=f"the primary writer stays fenced; the traffic fence already sends users to {dr}",
            ) from error
        if not emergency:
            run.record(DNS_RECONCILED, True)
        return {"targets": len(targets), "changes": result.summary.describe()}

    def update_again(run: RunContext) -> None:
        ctx.update(run, update_targets(), message="drctl: converge #4419")

    def outputs_show_dr_active(run: RunContext) -> str:
        outputs = ctx.stack.outputs()
        seen = (outputs.get("activeRegion"), outputs.get("drState"), output(outputs, "database", dr, "role"))
        if seen != (dr, "failed-over", "writer"):
            raise CheckFailedError(f"stack outputs say activeRegion/drState/DR database role {seen}")
        return f"activeRegion {dr}, failed-over, {dr_db} declared writer"

    def traffic_sent_to_dr(run: RunContext) -> str:
        endpoint = output(ctx.stack.outputs(), "dns", "endpoints", dr)
        # Route53's own view (W6): the alarm's state is not what its checkers read.
        answer = ctx.aws.route53_answer(output(ctx.stack.outputs(), "dns"), dr, use_api=route53_readable(failed))
        if answer.status not in (Status.OK, Status.WARNING):
            raise CheckFailedError(f"Route53 does not answer the DR region: {answer.detail}")
        if run.measurement(DNS_RECONCILED):
            return f"{answer.detail}; PRIMARY record declared at {endpoint} ({dr})"
        if not emergency:
            raise CheckFailedError("a planned switchover must move the Route53 records; they were not reconciled")
        return f"{answer.detail}; records not reconciled yet (follow-up recorded)"

    def cache_state(run: RunContext) -> str:
        recorded = run.measurement(CACHE_STATE)
        if recorded and not recorded.startswith("primary in"):
            return f"cache NOT RECOVERED: {recorded} (critical finding and follow-up recorded)"
        global_id = output(ctx.stack.outputs(), "cache", "globalDatastoreId")
        reading = ctx.aws.global_datastore(dr, global_id, dr)
        if reading.status not in (Status.OK, Status.WARNING):
            raise CheckFailedError(f"{global_id}: {reading.status.value}, {reading.detail}")
        return reading.detail

    def notify_dr(run: RunContext) -> dict[str, Any]:
        missing = run.measurement(NOT_RECOVERED) or []
        subject = f"dr-platform {ctx.stack.fully_qualified_name}: failed over to {dr} ({mode.value})" + (
            f", NOT FULLY RECOVERED: {len(missing)} part(s) still down" if missing else ""
        )
        extra = {
            "event": "failed-over",
            "activeRegion": dr,
            "failedRegion": primary,
            "cache": run.measurement(CACHE_STATE),
            "notRecovered": missing,
        }
        return notify(ctx, run, dr, subject, extra)

    previews: dict[str, Any] = {}
    steps: list[Step] = [
        traffic_fence_step(
            ctx,
            raised=True,
            description=f"traffic fence pinned raised through Route53's control plane ({dr}'s CloudWatch bypassed): "
            f"Route53 answers {dr} only, also when {primary} returns; failback unpins it"
            if fence_through_route53
            else f"traffic fence raised in {dr}'s CloudWatch: Route53 answers {dr} only, also when {primary} "
            "returns (data plane; no Route53 control-plane call)",
            through_route53=fence_through_route53,
        ),
        clients_moved_step(ctx, "dr"),
        scale_compute_step(ctx, cfg, "dr"),
        # The minimum the node group runs with serves; the rest comes after verification: a regional event is when
        # EC2 capacity runs short, and the RTO must not wait for it.
        nodes_ready_step(ctx, cfg, "dr", count=serving_nodes(cfg)),
        nodes_ready_step(ctx, cfg, "dr", name=FULL_SIZE_STEP),
        allow_writes_step(
            ctx,
            cfg,
            "dr",
            dr_db,
            description="make sure default_transaction_read_only is off where the DR writer will run",
        ),
        ctx.step(
            "fail_over_global_datastore_to_dr",
            fail_over_cache,
            description=f"FailoverGlobalReplicationGroup to {cache_group_id(cfg, 'dr')} through {dr} "
            f"(bounded: {ctx.settings.cache_timeout_seconds:g} s)",
            timeout_seconds=ctx.settings.cache_timeout_seconds + 60,
        ),
        write_config_step(
            ctx,
            DrState.FAILED_OVER,
            description=f"activeRegion={dr}, drState=failed-over (transition_config)",
            preview=lambda run: (
                "set "
                + ", ".join(
                    f"{key}={value}"
                    for key, value in target_config(ctx, DrState.FAILED_OVER).items()
                    if ctx.stack.get_config().get(key) != value
                )
            ),
        ),
        preview_update_step(
            ctx,
            PREVIEW_STEP,
            previews,
            update_targets,
            description=f"preview of the update to {dr} and global resources, gated by the policy pack and the "
            "stateful-resource guard",
        ),
        update_step(
            ctx,
            UPDATE_STEP,
            previews,
            PREVIEW_STEP,
            update_dr_region,
            description=f"stack update targeted to {dr} and global resources (promotes {dr_db}); {primary} untouched"
            + ("" if emergency else "; the Route53 records move with it"),
            pre_checks=(state_is(ctx, DrState.FAILED_OVER),),
            preview=lambda run: ctx.offline_preview(
                target_config(ctx, DrState.FAILED_OVER),
                failover_targets(ctx, target_config(ctx, DrState.FAILED_OVER), primary),
            ),
            timeout_seconds=ctx.settings.promotion_timeout_seconds + 600,
        ),
        converge_step(
            ctx,
            cfg,
            "dr",
            dr_db,
            update_again,
            description=f"wait until {dr_db} is a standalone writer with its backups; re-update if not",
        ),
        ctx.step(
            "verify_dr_serving",
            lambda run: None,
            description="DR database writable, traffic sent to DR, cache, compute serving and asked for full size",
            verifies_recovery=True,
            post_checks=(
                standalone_writer_check(ctx, cfg, "dr", dr_db),
                Check("stack_outputs_show_dr_active", outputs_show_dr_active),
                Check("traffic_sent_to_dr", traffic_sent_to_dr),
                dr_targets_check(ctx, cfg, serving=True),
                Check("global_datastore_state", cache_state),
                reading_check(
                    "dr_compute_asked_for_full_size",
                    lambda run: ctx.aws.node_group(
                        dr, cluster_name(cfg, "dr"), node_group_name(cfg, "dr"), cfg.node_group_full.desired
                    ),
                ),
            ),
        ),
        ctx.step("notify_dr_alert_topic", notify_dr, description=f"publish the outcome to {dr}'s alert topic"),
    ]
    if emergency:
        steps += [
            ctx.step(
                "record_data_loss_window",
                record_data_loss_window,
                description=f"ReplicaLag of {dr_db} when replay stopped (the metric's history): the data-loss window",
            ),
            ctx.step(
                "reconcile_dns_records",
                lambda run: reconcile_dns(ctx, run, failed, dr, required=False),
                description=f"update the Route53 failover records to PRIMARY={dr} (a failure is a warning)",
            ),
        ]
    else:
        steps += [
            fence_writer_step(
                ctx,
                "fence_primary_writer",
                primary,
                parameter_group_of(primary_db),
                primary_db,
                description=f"default_transaction_read_only on {primary_db} ({primary}), reboot to end every "
                "session, verify",
                stops_service=True,
            ),
            ctx.step(
                "wait_until_dr_replica_has_everything",
                wait_until_dr_has_everything,
                description=f"OldestReplicationSlotLag of {primary_db} at 0 after the fence: {dr_db} has every write",
                timeout_seconds=ctx.settings.catch_up_timeout_seconds + 60,
            ),
        ]
    graph = failover_graph(cfg, mode)
    return Runbook(
        name=RUNBOOK,
        description=f"{mode.value} failover of {ctx.stack.fully_qualified_name} from {primary} to {dr}",
        items=(graph.as_group(steps),),
        preflight=tuple(preflight),
        rto_target_seconds=cfg.rto_seconds,
        rpo_target_seconds=cfg.rpo_seconds,
        rto_floor_seconds=graph.floor(cfg).from_run_start(cfg),
    )


# --- the dependency graph ------------------------------------------------------------------------

FENCE_STEP = "raise_traffic_fence"
PREVIEW_STEP = "preview_dr_region_update"
UPDATE_STEP = "update_stack_in_dr_region"
CONVERGE_STEP = "converge_promoted_dr_database"
VERIFY_STEP = "verify_dr_serving"
SCALE_STEP = "scale_dr_compute_to_full"
READY_STEP = "wait_until_dr_nodes_ready"
FULL_SIZE_STEP = "wait_until_dr_compute_at_full_size"


def serving_nodes(cfg: PlatformConfig) -> int:
    """The DR nodes verification waits for: the full node group's minimum (at least one), not its desired size."""
    return max(1, cfg.node_group_full.min)


CLIENTS_STEP = "wait_until_clients_reach_dr"
CACHE_STEP = "fail_over_global_datastore_to_dr"
ALLOW_WRITES_STEP = "allow_writes_on_dr_parameter_group"
CONFIG_STEP = "write_failed_over_config"
WRITER_FENCE_STEP = "fence_primary_writer"
FINAL_SYNC_STEP = "wait_until_dr_replica_has_everything"


def failover_graph(cfg: PlatformConfig, mode: FailoverMode | str) -> RunbookGraph:
    """What each failover step waits for and why; everything else runs beside the promotion."""
    mode = FailoverMode(mode)
    emergency = mode is FailoverMode.EMERGENCY
    scaling = cfg.standby_node_group != cfg.node_group_full
    promotion = (Op.STACK_UPDATE_OVERHEAD, Op.RDS_PROMOTE_REPLICA)
    if not cfg.standby_database_multi_az:  # pilot light: the provider waits for the Multi-AZ conversion too
        promotion += (Op.RDS_MULTI_AZ_CONVERSION,)
    # Emergency: the promotion waits for the traffic fence (a write a returning primary took after replication
    # stopped would be lost). Graceful: the write fence holds the primary; users move once the replica has it all.
    settled = FINAL_SYNC_STEP if not emergency else None
    nodes = [
        Node(
            FENCE_STEP,
            {settled: graph_reasons.REPLICA_HAS_EVERYTHING_FOR_READS} if settled else {},
            (Op.FENCE_ALARM_EVALUATION,),
        ),
        Node(
            CLIENTS_STEP,
            {FENCE_STEP: graph_reasons.CLIENTS_FOLLOW_ROUTE53},
            (Op.ROUTE53_FOLLOWS_ALARM, Op.DNS_CACHE_EXPIRY),
        ),
        Node(SCALE_STEP, {}, (Op.NODE_GROUP_UPDATE,) if scaling else ()),
        Node(
            READY_STEP,
            {SCALE_STEP: graph_reasons.NODES_AFTER_REQUEST},
            (Op.NODE_GROUP_SCALE_UP,) if scaling else (),
            (Op.NODE_GROUP_UPDATE,),
        ),
        Node(
            FULL_SIZE_STEP,
            {READY_STEP: "the rest of the full size, after the minimum that serves: not in the RTO"},
        ),
        Node(ALLOW_WRITES_STEP, {}, (Op.RDS_PARAMETER_APPLY,)),
        Node(
            CACHE_STEP,
            {WRITER_FENCE_STEP: graph_reasons.CACHE_AFTER_WRITES_STOP} if settled else {},
            (Op.GLOBAL_DATASTORE_FAILOVER,),
        ),
        Node(
            CONFIG_STEP,
            {settled: graph_reasons.COMMIT_AFTER_FINAL_SYNC, CACHE_STEP: graph_reasons.COMMIT_AFTER_EVERY_PART_MOVED}
            if settled
            else {},
            (Op.PULUMI_CLI_CALL,),
        ),
        Node(PREVIEW_STEP, {CONFIG_STEP: graph_reasons.PREVIEW_OF_THE_CONFIG}, (Op.PULUMI_PREVIEW,)),
        Node(
            UPDATE_STEP,
            {
                PREVIEW_STEP: graph_reasons.UPDATE_AS_PREVIEWED,
                SCALE_STEP: graph_reasons.ONE_NODE_GROUP_UPDATE_AT_A_TIME,
                **(
                    {FENCE_STEP: graph_reasons.FENCE_BEFORE_PROMOTION}
                    if emergency
                    else {settled: graph_reasons.PROMOTE_AFTER_FINAL_SYNC}
                ),
            },
            promotion,
        ),
        Node(CONVERGE_STEP, {UPDATE_STEP: graph_reasons.CONVERGE_AFTER_UPDATE}),
        Node(
            VERIFY_STEP,
            {
                CONVERGE_STEP: "checks the promoted writer",
                CLIENTS_STEP: "checks that users reach the DR region",
                READY_STEP: "users need the node group's minimum Ready in the DR region (not its full size)",
                CACHE_STEP: "checks the cache's state",
                ALLOW_WRITES_STEP: "the promoted writer takes writes only with default_transaction_read_only off",
                **({"reconcile_dns_records": "checks what the records say"} if emergency else {}),
            },
            (Op.VERIFY_SERVICES,),
        ),
        Node(
            "notify_dr_alert_topic",
            {
                VERIFY_STEP: graph_reasons.NOTIFY_THE_OUTCOME,
                **({"record_data_loss_window": graph_reasons.NOTIFY_THE_WINDOW} if emergency else {}),
            },
        ),
    ]
    if emergency:
        route53_down = not route53_readable(cfg.primary_region)
        nodes.insert(1, Node("record_data_loss_window", {}, ()))
        nodes += [
            Node(
                "reconcile_dns_records",
                {CONVERGE_STEP: graph_reasons.ONE_STACK_UPDATE_AT_A_TIME},
                () if route53_down else (Op.PULUMI_PREVIEW, Op.STACK_UPDATE_OVERHEAD, Op.RECORD_PROPAGATION),
            ),
        ]
    else:
        nodes = [
            Node(
                WRITER_FENCE_STEP,
                {
                    READY_STEP: graph_reasons.WRITE_FENCE_ONCE_DR_IS_READY,
                    ALLOW_WRITES_STEP: graph_reasons.WRITE_FENCE_ONCE_DR_IS_READY,
                },
                (Op.RDS_PARAMETER_APPLY, Op.RDS_REBOOT),
            ),
            Node(FINAL_SYNC_STEP, {WRITER_FENCE_STEP: graph_reasons.FINAL_SYNC_AFTER_FENCE}, (Op.RDS_FINAL_SYNC,)),
            *nodes,
        ]
    return RunbookGraph(
        RUNBOOK,
        tuple(nodes),
        verified_by=VERIFY_STEP,
        disruption_starts_at=None if emergency else WRITER_FENCE_STEP,
        lead_in=(Op.HEALTH_CHECK_DETECTION, Op.READINESS_CHECKS) if emergency else (),
    )


def fence_former_region_runbook(ctx: DrContext) -> Runbook:
    """The first thing once the region an emergency failover left answers again: fence its writer, stop its compute.

    `drctl status` shows the former writer UNFENCED until this (or the first
    steps of `drctl failback prepare`, which are the same) has run.
    """
    cfg = ctx.config()
    former = db_identifier(cfg, "primary", cfg.regions["primary"].db_generation)
    fence, scale = former_region_steps(ctx, cfg, former)
    return Runbook(
        name=FENCE_FORMER_REGION,
        description=f"fence the former writer {former} and stop the compute of {cfg.primary_region}",
        items=(fence, scale),
        preflight=(
            state_is(ctx, DrState.FAILED_OVER),
            reading_check(
                "former_region_answers",
                lambda run: ctx.aws.database_role(cfg.primary_region, former, "writer"),
            ),
        ),
    )


def reconcile_dns_runbook(ctx: DrContext) -> Runbook:
    """One targeted update of the Route53 resources (and the root stack): the DNS follow-up of a failover."""
    cfg = ctx.config()

    def update_dns(run: RunContext) -> dict[str, Any]:
        targets = dns_targets(ctx, ctx.stack.get_config(), cfg.standby_region)
        result = ctx.update(run, targets, message=f"drctl reconcile-dns: PRIMARY record at {cfg.active_region}")
        return {"changes": result.summary.describe(), "targets": len(targets)}

    return Runbook(
        name="reconcile-dns",
        description=f"make the Route53 records of {ctx.stack.fully_qualified_name} follow {cfg.active_region}",
        items=(
            ctx.step(
                "update_route53_records",
                update_dns,
                description="targeted update of the Route53 records and health checks only",
                preview=lambda run: ctx.stack.preview(
                    dns_targets(ctx, ctx.stack.get_config(), cfg.standby_region)
                ).describe(),
            ),
        ),
    )
