"""`drctl failover abort`: undo a failover that has not promoted the DR database yet.

Until the DR replica is promoted the primary writer still has every write and
the replica still replicates from it, so going back loses nothing: open the
primary writer again, move the cache's writer back, lower the traffic fence,
put the stack config back to steady and the DR compute back to its standby
size. Once the DR database is promoted (or a promotion may be under way), the
only way back is a failback (`drctl failback prepare`, then `switch`), and the
preflight refuses with that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from automation.runbook import Check, CheckFailedError, Runbook, RunContext
from automation.runbooks.context import DrContext, output
from automation.runbooks.steps import allow_writes_step, notify, reading_check, state_is, traffic_fence_step
from automation.stack import namespaced
from components.config import NAMESPACE, DrState, parse_config
from components.naming import cache_group_id, cluster_name, db_identifier, node_group_name

RUNBOOK = "failover-abort"


def steady_config(raw_config: Mapping[str, str]) -> dict[str, str]:
    """The config before the failover wrote failed-over: the two keys that arrow changes, back (validated)."""
    cfg = parse_config(raw_config)
    config = {**namespaced(raw_config), f"{NAMESPACE}:drState": DrState.STEADY.value}
    config[f"{NAMESPACE}:activeRegion"] = cfg.primary_region
    parse_config(config)
    return config


def failover_abort_runbook(ctx: DrContext) -> Runbook:
    cfg = ctx.config()
    primary, dr = cfg.primary_region, cfg.dr_region
    dr_db = db_identifier(cfg, "dr", cfg.regions["dr"].db_generation)
    primary_db = db_identifier(cfg, "primary", cfg.regions["primary"].db_generation)

    # catalogue: rds.promotion-is-asynchronous
    def dr_database_not_promoted(run: RunContext) -> str:
        instance = ctx.aws.describe_database(dr, dr_db)
        if instance.role == "replica" and instance.status != "modifying":
            return f"{dr_db} in {dr} is still a replica ({instance.status}): nothing took writes there"
        state = "promoted: it takes writes" if instance.role == "writer" else "modifying: a promotion may be under way"
        raise CheckFailedError(
            f"{dr_db} in {dr} is {state}; a failover cannot be aborted once the DR database may have taken writes. "
            f"The way back is a failback: `drctl failback prepare`, then `drctl failback switch`"
        )

    def move_cache_back(run: RunContext) -> dict[str, Any]:
        global_id = output(ctx.stack.outputs(), "cache", "globalDatastoreId")
        outcome = ctx.aws.fail_over_global_datastore(global_id, primary, cache_group_id(cfg, "primary"))
        return {
            "globalDatastore": global_id,
            "primary": f"{cache_group_id(cfg, 'primary')} in {primary}",
            "changed": outcome.changed,
        }

    def write_steady_config(run: RunContext) -> dict[str, Any]:
        return {"changed": ctx.write_config(run, steady_config(ctx.stack.get_config()))}

    def scale_dr_back(run: RunContext) -> dict[str, Any]:
        size = cfg.standby_node_group
        outcome = ctx.aws.scale_node_group(dr, cluster_name(cfg, "dr"), node_group_name(cfg, "dr"), size)
        return {"nodeGroup": outcome.subject, "desired": size.desired, "changed": outcome.changed}

    def notify_aborted(run: RunContext) -> dict[str, Any]:
        subject = f"dr-platform {ctx.stack.fully_qualified_name}: failover to {dr} ABORTED, {primary} serves"
        return notify(ctx, run, dr, subject, {"event": "failover-aborted", "activeRegion": primary})

    return Runbook(
        name=RUNBOOK,
        description=f"abort the failover of {ctx.stack.fully_qualified_name}: {primary} serves again",
        items=(
            allow_writes_step(
                ctx, cfg, "primary", primary_db, description=f"default_transaction_read_only off on {primary_db}"
            ),
            ctx.step(
                "move_cache_writer_back_to_primary",
                move_cache_back,
                description=f"FailoverGlobalReplicationGroup to {cache_group_id(cfg, 'primary')} (a no-op if there)",
                timeout_seconds=ctx.settings.cache_timeout_seconds + 60,
            ),
            traffic_fence_step(
                ctx,
                raised=False,
                description=f"traffic fence lowered: Route53 answers {primary} as its records say",
            ),
            ctx.step(
                "write_steady_config",
                write_steady_config,
                description=f"drState=steady, activeRegion={primary} (also in the DR state authority)",
                already_done=lambda run: ctx.config().dr_state is DrState.STEADY,
            ),
            ctx.step(
                "scale_dr_compute_to_standby",
                scale_dr_back,
                description=f"{node_group_name(cfg, 'dr')} back to {cfg.standby_node_group.desired} nodes",
                timeout_seconds=ctx.settings.compute_timeout_seconds + 60,
            ),
            ctx.step("notify_dr_alert_topic", notify_aborted, description=f"publish the abort to {dr}'s alert topic"),
        ),
        preflight=(
            state_is(ctx, DrState.STEADY, DrState.FAILED_OVER),
            Check("dr_database_not_promoted", dr_database_not_promoted),
            # Opening the primary again only helps where it answers; else finish the failover instead.
            reading_check("primary_writer_answers", lambda run: ctx.aws.database_role(primary, primary_db, "writer")),
        ),
    )


def preflight_refusals(runbook: Runbook) -> list[str]:
    """What the abort's preflight would refuse, read before the engine abandons the failover run it undoes.

    Its checks only read (they use no run context), so running them here changes nothing.
    """
    refusals = []
    for check in runbook.preflight:
        try:
            check.verify(cast(RunContext, None))
        except CheckFailedError as error:
            refusals.append(f"{check.name}: {error}")
    return refusals
