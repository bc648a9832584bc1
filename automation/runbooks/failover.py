"""`drctl failover`: steady -> failed-over, the DR region becomes the active one.

Two modes, as operators know them:

- graceful (planned switchover): both regions answer. Writes stop on the
  primary, the DR replica catches up to lag 0, then the switch: no data loss.
- emergency: the primary region is impaired. Nothing here calls it: no read,
  no refresh, no update (the stack update targets the DR region and global
  resources only, and Route53 is neither read nor changed while its control
  plane is the failed region). The data-loss window is the replica lag at
  promotion, bounded by the RPO check of the preflight.

Order: [scale DR compute || fail the cache over] -> record the lag at
promotion -> write the failed-over config -> targeted update (promotes the DR
database) -> converge (#4419) -> reconcile DNS records -> verify -> notify.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from automation.aws.readiness import Status
from automation.errors import DrctlError
from automation.journal import iso, parse_iso
from automation.runbook import DATA_LOSS_WINDOW, Check, CheckFailedError, Runbook, RunContext
from automation.runbooks.context import DrContext, follow_up, output, route53_urns, warn
from automation.runbooks.steps import (
    allow_writes_step,
    converge_step,
    health_check_green,
    notify,
    prepare_region_for_traffic,
    reading_check,
    route53_readable,
    standalone_writer_check,
    state_is,
    target_config,
    write_config_step,
)
from automation.stack import root_stack_urn, short_stack_name
from automation.targets import refuse_failed_region_targets, surviving_region_targets
from components.config import DrState
from components.naming import (
    cache_group_id,
    cluster_name,
    db_identifier,
    db_parameter_group_name,
    node_group_name,
)

RUNBOOK = "failover"
WRITES_STOPPED_AT = "writes_stopped_at"
DNS_RECONCILED = "dns_reconciled"
CACHE_FAILED_OVER = "cache_failed_over"


class FailoverMode(StrEnum):
    GRACEFUL = "graceful"
    EMERGENCY = "emergency"


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


def reconcile_dns(ctx: DrContext, run: RunContext, failed_region: str | None, surviving_region: str) -> dict[str, Any]:
    """Make the declared Route53 records agree with where health-check failover already sends traffic.

    Reconciliation, not the step traffic depends on: a failure is a warning and
    a follow-up (`drctl reconcile-dns`), never a failed run.
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
        warn(run, f"Route53 records not updated ({error}); health-check failover routes traffic meanwhile")
        follow_up(run, later)
        run.record(DNS_RECONCILED, False)
        return {"reconciled": False, "error": str(error)}
    run.record(DNS_RECONCILED, True)
    return {"reconciled": True, "changes": result.summary.describe()}


def failover_runbook(ctx: DrContext, mode: FailoverMode | str) -> Runbook:
    mode = FailoverMode(mode)
    cfg = ctx.config()
    primary, dr = cfg.primary_region, cfg.dr_region
    # The emergency path treats the primary region as gone, Route53's control plane included if it lives there.
    failed = primary if mode is FailoverMode.EMERGENCY else None
    dr_db = db_identifier(cfg, "dr", cfg.regions["dr"].db_generation)
    primary_db = db_identifier(cfg, "primary", cfg.regions["primary"].db_generation)
    primary_params = db_parameter_group_name(cfg, "primary")

    # --- preflight -----------------------------------------------------------------------

    def forced_with_a_reason(run: RunContext) -> str:
        if run.parameters.force and not run.parameters.reason.strip():
            raise CheckFailedError("--force overrides the RPO check and must be recorded with a --reason")
        return f"forced: {run.parameters.reason}" if run.parameters.force else "not forced"

    def lag_under_rpo(run: RunContext) -> str:
        reading = ctx.aws.replica_lag(dr, dr_db, cfg)
        text = f"{dr_db} in {dr}: {reading.status.value}, {reading.detail}"
        if reading.status in (Status.OK, Status.WARNING):
            return text
        if reading.status is Status.UNREACHABLE:
            raise CheckFailedError(f"the DR region does not answer: {text}")
        if run.parameters.force:
            return f"OVERRIDDEN by --force ({run.parameters.reason}): {text}"
        raise CheckFailedError(f"{text}; failing over now may lose more than the RPO of {cfg.rpo_seconds} s")

    def dr_replicates_from_primary(run: RunContext) -> Any:
        source = output(ctx.stack.outputs(), "database", primary, "arn")
        return ctx.aws.database_role(dr, dr_db, "replica", expected_source=source)

    preflight: list[Check] = [
        state_is(ctx, DrState.STEADY),
        Check("forced_with_a_reason", forced_with_a_reason),
        reading_check("dr_database_is_a_serving_replica", dr_replicates_from_primary),
        Check("dr_replica_lag_under_rpo", lag_under_rpo),
        health_check_green(ctx, "dr_health_check_green", dr, failed_region=failed),
    ]
    if mode is FailoverMode.GRACEFUL:
        preflight.append(
            reading_check(
                "primary_writer_reachable_for_a_graceful_switch",
                lambda run: ctx.aws.database_role(primary, primary_db, "writer"),
            )
        )

    # --- steps -----------------------------------------------------------------------------

    def stop_writes_on_primary(run: RunContext) -> dict[str, Any]:
        outcome = ctx.aws.stop_writes(primary, primary_params, primary_db)
        run.record(WRITES_STOPPED_AT, iso(ctx.clock.now()))
        return {"writer": primary_db, "changed": outcome.changed, "detail": outcome.detail}

    def wait_until_dr_caught_up(run: RunContext) -> dict[str, Any]:
        since = parse_iso(run.measurement(WRITES_STOPPED_AT))
        sample = ctx.aws.wait_until_caught_up(dr, dr_db, since, 0)
        run.record(DATA_LOSS_WINDOW, sample.seconds)
        return {"replica": dr_db, "lagSeconds": sample.seconds, "at": iso(sample.at)}

    def fail_over_cache(run: RunContext) -> dict[str, Any]:
        global_id = output(ctx.stack.outputs(), "cache", "globalDatastoreId")
        group = cache_group_id(cfg, "dr")
        try:
            outcome = ctx.aws.fail_over_global_datastore(global_id, dr, group)
        except DrctlError as error:
            if mode is not FailoverMode.EMERGENCY:
                raise
            # A cache must not hold up the database: the DR member can be detached to serve writes on its own.
            warn(run, f"global datastore {global_id} did not fail over to {dr}: {error}")
            follow_up(
                run,
                f"aws elasticache disassociate-global-replication-group --region {dr} "
                f"--global-replication-group-id {global_id} --replication-group-id {group} "
                f"--replication-group-region {dr}  (then failback prepare re-seeds the cache)",
            )
            run.record(CACHE_FAILED_OVER, False)
            return {"globalDatastore": global_id, "failedOver": False, "error": str(error)}
        run.record(CACHE_FAILED_OVER, True)
        return {"globalDatastore": global_id, "primary": f"{group} in {dr}", "changed": outcome.changed}

    def record_lag_at_promotion(run: RunContext) -> dict[str, Any]:
        if run.measurement(DATA_LOSS_WINDOW) is not None:
            return {"lagSeconds": run.measurement(DATA_LOSS_WINDOW), "source": "final sync"}
        sample = ctx.aws.lag_at_promotion(dr, dr_db)
        if sample is None or sample.seconds < 0:
            warn(run, f"no usable ReplicaLag datapoint for {dr_db}: the data-loss window is unknown")
            return {"lagSeconds": None}
        run.record(DATA_LOSS_WINDOW, sample.seconds)
        return {"lagSeconds": sample.seconds, "at": iso(sample.at)}

    def update_dr_region(run: RunContext) -> dict[str, Any]:
        targets = failover_targets(ctx, ctx.stack.get_config(), primary)
        result = ctx.update(run, targets, message=f"drctl failover to {dr}: DR region and global resources only")
        return {"targets": len(targets), "changes": result.summary.describe()}

    def update_again(run: RunContext) -> None:
        ctx.update(run, failover_targets(ctx, ctx.stack.get_config(), primary), message="drctl: converge #4419")

    def outputs_show_dr_active(run: RunContext) -> str:
        outputs = ctx.stack.outputs()
        seen = (outputs.get("activeRegion"), outputs.get("drState"), output(outputs, "database", dr, "role"))
        if seen != (dr, "failed-over", "writer"):
            raise CheckFailedError(f"stack outputs say activeRegion/drState/DR database role {seen}")
        return f"activeRegion {dr}, failed-over, {dr_db} declared writer"

    def dns_primary_at_dr(run: RunContext) -> str:
        endpoint = output(ctx.stack.outputs(), "dns", "endpoints", dr)
        if run.measurement(DNS_RECONCILED):
            return f"PRIMARY record declared at {endpoint} ({dr})"
        return f"PRIMARY record not reconciled yet (follow-up recorded); health-check failover answers {endpoint}"

    def cache_primary_in_dr(run: RunContext) -> str:
        global_id = output(ctx.stack.outputs(), "cache", "globalDatastoreId")
        if run.measurement(CACHE_FAILED_OVER) is False:
            return f"{global_id} not failed over (warning and follow-up recorded)"
        reading = ctx.aws.global_datastore(dr, global_id, dr)
        if reading.status not in (Status.OK, Status.WARNING):
            raise CheckFailedError(f"{global_id}: {reading.status.value}, {reading.detail}")
        return reading.detail

    def notify_dr(run: RunContext) -> dict[str, Any]:
        subject = f"dr-platform {ctx.stack.fully_qualified_name}: failed over to {dr} ({mode.value})"
        return notify(ctx, run, dr, subject, {"event": "failed-over", "activeRegion": dr, "failedRegion": primary})

    graceful_steps = (
        ctx.step(
            "stop_writes_on_primary",
            stop_writes_on_primary,
            description=f"set default_transaction_read_only on {primary_db} ({primary}) so writes stop",
        ),
        ctx.step(
            "wait_until_dr_replica_caught_up",
            wait_until_dr_caught_up,
            description=f"wait until {dr_db} reports replica lag 0 after writes stopped",
            timeout_seconds=ctx.settings.catch_up_timeout_seconds + 60,
        ),
    )
    items = (
        *(graceful_steps if mode is FailoverMode.GRACEFUL else ()),
        prepare_region_for_traffic(
            ctx,
            cfg,
            "dr",
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
                description=f"FailoverGlobalReplicationGroup to {cache_group_id(cfg, 'dr')} through {dr}",
                timeout_seconds=ctx.settings.cache_timeout_seconds + 60,
            ),
        ),
        ctx.step(
            "record_replica_lag_at_promotion",
            record_lag_at_promotion,
            description=f"the newest ReplicaLag of {dr_db}: the data-loss window",
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
        ctx.step(
            "update_stack_in_dr_region",
            update_dr_region,
            description=f"stack update targeted to {dr} and global resources (promotes {dr_db}); {primary} untouched",
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
            description=f"wait until {dr_db} is a standalone writer with backups and its secret; re-update if not",
        ),
        ctx.step(
            "reconcile_dns_records",
            lambda run: reconcile_dns(ctx, run, failed, dr),
            description=f"update the Route53 failover records to PRIMARY={dr} (a failure is a warning)",
        ),
        ctx.step(
            "verify_dr_serving",
            lambda run: None,
            description="DR database writable, outputs and DNS at DR, DR health check green, cache and compute",
            verifies_recovery=True,
            post_checks=(
                standalone_writer_check(ctx, cfg, "dr", dr_db),
                Check("stack_outputs_show_dr_active", outputs_show_dr_active),
                Check("dns_primary_record_at_dr", dns_primary_at_dr),
                health_check_green(ctx, "dr_health_check_green", dr, failed_region=failed),
                Check("global_datastore_primary_in_dr", cache_primary_in_dr),
                reading_check(
                    "dr_compute_at_full_size",
                    lambda run: ctx.aws.node_group(
                        dr, cluster_name(cfg, "dr"), node_group_name(cfg, "dr"), cfg.node_group_full.desired
                    ),
                ),
            ),
        ),
        ctx.step("notify_dr_alert_topic", notify_dr, description=f"publish the outcome to {dr}'s alert topic"),
    )
    return Runbook(
        name=RUNBOOK,
        description=f"{mode.value} failover of {ctx.stack.fully_qualified_name} from {primary} to {dr}",
        items=items,
        preflight=tuple(preflight),
        rto_target_seconds=cfg.rto_seconds,
        rpo_target_seconds=cfg.rpo_seconds,
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
