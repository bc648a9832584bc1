"""`drctl failback prepare`, `drctl failback switch` and the switch's automatic rollback.

prepare (failed-over -> resyncing): first fence the former writer and stop
the former region's compute (what an emergency failover could not do while it
was down), snapshot it, write the resyncing config, run a full update (the
primary region answers again; never refresh) that builds a new primary-region
replica of the DR writer and reverses S3 replication, wait until it is in
sync, re-seed the cache, replicate with S3 Batch Replication what the DR
bucket took while failed over, verify.

switch (resyncing -> steady): scale primary compute and let the replica come
close, fence the DR writer (read-only, every session ended, verified), wait
until the replica has received everything (the DR writer's replication slot
empty), move the cache writer back, write the steady config, update the stack
while leaving the new DR replica (and the DR node group's scale-down) out,
lower the traffic fence, then verify and watch the error rate. Only then
rebuild the DR replica with a second, full update (ARC's "post-recovery
action that re-creates replication").

If anything fails between the fence on the DR writer and a passed
verification, `run_failback_switch` rolls back at once (writes are down until
it does): the `failback-rollback` runbook raises the traffic fence again,
fences the promoted primary, moves the cache and the writes back to the DR
writer, writes `rollback_config` (failed-over, DR generation restored) and
updates the DR region and global resources. Its result is "rolled-back". A
failure after verification passed is not rolled back (writes on the primary
would be thrown away): the run stops and rerunning the switch finishes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from automation.aws.actions import batch_job_problem, batch_job_token
from automation.aws.clients import RegionUnreachableError
from automation.aws.readiness import Status
from automation.errors import DrctlError
from automation.evaluate import Evaluation
from automation.journal import RunParameters, RunRecord, RunStatus, StepStatus, iso, parse_iso
from automation.runbook import (
    DATA_LOSS_WINDOW,
    Check,
    CheckFailedError,
    Runbook,
    RunbookEngine,
    RunContext,
    RunFailedError,
    RunOutcome,
)
from automation.runbooks import graph_reasons
from automation.runbooks.context import RESULT, DrContext, dependents, follow_up, output, warn
from automation.runbooks.failover import dns_targets, failover_targets
from automation.runbooks.graph import Node, RunbookGraph
from automation.runbooks.steps import (
    RECORDS_MOVED_AT,
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
    scale_compute_step,
    standalone_writer_check,
    state_is,
    target_config,
    traffic_fence_step,
    update_step,
    write_config_step,
)
from automation.timings import Op
from automation.transitions import rollback_config, transition_config
from components.config import DrState, PlatformConfig, parse_config
from components.naming import (
    cache_group_id,
    db_identifier,
    parameter_group_of,
)

PREPARE = "failback-prepare"
SWITCH = "failback-switch"
ROLLBACK = "failback-rollback"
READ_ONLY_STEP = "fence_dr_writer"
VERIFY_STEP = "verify_primary_serving"
WATCH_STEP = "watch_primary_error_rate"
"""The rollback boundary: a failure up to its end rolls back, a later one does not (writes on the primary)."""
SWITCH_PREVIEW_STEP = "preview_switch_update"
BATCH_JOB = "batch_replication_job"
EXCLUDED = "excluded_from_first_update"
ROLLBACK_CAUSE = "rollback_cause"
RDS_INSTANCE = "aws:rds/instance:Instance"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


# --- which generations a failback deals with ------------------------------------------------


def resync_generations(cfg: PlatformConfig, raw_config: dict[str, str]) -> tuple[int, int]:
    """(former primary writer, new primary replica), before or after prepare wrote its config."""
    if cfg.dr_state is DrState.FAILED_OVER:
        new = parse_config(transition_config(raw_config, DrState.RESYNCING)).regions["primary"].db_generation
    elif cfg.dr_state is DrState.RESYNCING:
        new = cfg.regions["primary"].db_generation
    else:  # the preflight refuses this state; the names only have to exist
        new = cfg.regions["primary"].db_generation + 1
    return new - 1, new


def switch_generations(cfg: PlatformConfig, raw_config: dict[str, str]) -> tuple[int, int]:
    """(DR writer being failed back from, new DR replica), before or after the switch wrote its config."""
    dr = cfg.regions["dr"]
    if cfg.dr_state is DrState.RESYNCING:
        return dr.db_generation, parse_config(transition_config(raw_config, DrState.STEADY)).regions["dr"].db_generation
    if cfg.dr_state is DrState.STEADY and dr.db_retained_generations:
        return max(dr.db_retained_generations), dr.db_generation
    return dr.db_generation, dr.db_generation + 1


def instance_urn(evaluation: Evaluation, identifier: str) -> str:
    return next(r.urn for r in evaluation.of_type(RDS_INSTANCE) if r.inputs.get("identifier") == identifier)


def dr_rebuild_urns(ctx: DrContext, raw_config: dict[str, str], new_dr_db: str) -> list[str]:
    """What the switch's first update leaves out: the new DR replica and the DR node group's scale-down."""
    evaluation = ctx.evaluation(raw_config)
    node_groups = [r.urn for r in evaluation.of_type(NODE_GROUP, region=evaluation.config.dr_region)]
    return dependents(evaluation, [instance_urn(evaluation, new_dr_db), *node_groups])


def batch_job_description(ctx: DrContext, dr_writer: str) -> str:
    """Names the failback cycle's S3 Batch Replication job: the prepare that starts it and the switch that checks it."""
    return f"dr-platform failback of {ctx.stack.fully_qualified_name} from {dr_writer}"


# --- prepare -------------------------------------------------------------------------------------


def prepare_runbook(ctx: DrContext) -> Runbook:
    cfg = ctx.config()
    primary, dr = cfg.primary_region, cfg.dr_region
    old_gen, new_gen = resync_generations(cfg, ctx.stack.get_config())
    old_db, new_db = db_identifier(cfg, "primary", old_gen), db_identifier(cfg, "primary", new_gen)
    dr_db = db_identifier(cfg, "dr", cfg.regions["dr"].db_generation)

    def snapshot(run: RunContext) -> dict[str, Any]:
        outcome = ctx.aws.snapshot_before_replacement(primary, old_db)
        return {"snapshot": outcome.state, "created": outcome.changed}

    def update_stack(run: RunContext) -> dict[str, Any]:
        result = ctx.update(run, None, message=f"drctl failback prepare: rebuild {new_db} as a replica of {dr_db}")
        return {"changes": result.summary.describe()}

    def wait_in_sync(run: RunContext) -> dict[str, Any]:
        started = ctx.clock.now()
        source = output(ctx.stack.outputs(), "database", dr, "arn")
        ctx.aws.wait_until_replica_available(primary, new_db, source)
        sample = ctx.aws.wait_until_caught_up(primary, new_db, started, cfg.replica_lag_warning_seconds)
        return {"replica": new_db, "lagSeconds": sample.seconds}

    def reseed_cache(run: RunContext) -> dict[str, Any]:
        global_id = output(ctx.stack.outputs(), "cache", "globalDatastoreId")
        datastore = ctx.aws.describe_global_datastore(dr, global_id)
        moved = None
        if datastore.primary is None or datastore.primary.region != dr:
            # An emergency failover could not move the writer while the primary region was down: do it now.
            moved = ctx.aws.fail_over_global_datastore(global_id, dr, cache_group_id(cfg, "dr")).detail
        ctx.aws.wait_until_member_associated(dr, global_id, cache_group_id(cfg, "primary"))
        return {"globalDatastore": global_id, "rejoined": cache_group_id(cfg, "primary"), "writerMoved": moved}

    def reverse_s3_replication(run: RunContext) -> dict[str, Any]:
        outputs = ctx.stack.outputs()
        if output(outputs, "replication", "source") != dr:
            raise CheckFailedError(f"the stack outputs still replicate from {outputs['replication']['source']}")
        bucket = output(outputs, "buckets", dr, "name")
        reading = ctx.aws.s3_replication(dr, bucket, output(outputs, "buckets", primary, "arn"), cfg)
        if reading.status is Status.FAILING or reading.status is Status.UNREACHABLE:
            raise CheckFailedError(f"replication from {bucket}: {reading.detail}")
        return {"source": bucket, "status": reading.status.value, "detail": reading.detail}

    def replicate_existing_objects(run: RunContext) -> dict[str, Any]:
        # catalogue: s3.live-replication-skips-existing-objects
        outputs = ctx.stack.outputs()
        description = batch_job_description(ctx, dr_db)
        job_id = recorded = run.measurement(BATCH_JOB)
        # A recorded job that failed, was cancelled or left failed tasks is replaced by a new one: S3 would
        # answer its token with the same job (catalogue: s3.batch-job-token-is-idempotent).
        if recorded is None or batch_job_problem(ctx.aws.describe_batch_job(dr, recorded)) is not None:
            job_id = ctx.aws.start_batch_replication(
                dr,
                output(outputs, "buckets", dr, "arn"),
                output(outputs, "replication", "batchRoleArn"),
                batch_job_token(description, replaces=recorded),
                description,
            )
        run.record(BATCH_JOB, job_id)
        job = ctx.aws.wait_for_batch_job(dr, job_id)
        progress = job.get("ProgressSummary", {})
        return {"job": job_id, "status": job["Status"], "objects": progress.get("TotalNumberOfTasks")}

    def outputs_show_resyncing(run: RunContext) -> str:
        outputs = ctx.stack.outputs()
        seen = (outputs.get("drState"), output(outputs, "database", primary, "identifier"))
        if seen != ("resyncing", new_db):
            raise CheckFailedError(f"stack outputs say drState/primary database {seen}")
        return f"resyncing; {new_db} declared as the primary-region replica; {old_db} retained"

    def notify_dr(run: RunContext) -> dict[str, Any]:
        subject = f"dr-platform {ctx.stack.fully_qualified_name}: failback prepared, {new_db} replicates from {dr}"
        return notify(ctx, run, dr, subject, {"event": "resyncing", "activeRegion": dr, "newReplica": new_db})

    fence_former, stop_former_compute = former_region_steps(ctx, cfg, old_db)
    steps = (
        fence_former,
        stop_former_compute,
        ctx.step(
            "snapshot_old_primary",
            snapshot,
            description=f"manual snapshot of the former writer {old_db} before a new generation replaces it",
            timeout_seconds=3700,
        ),
        write_config_step(
            ctx,
            DrState.RESYNCING,
            description=f"drState=resyncing, dbGeneration.primary={new_gen}, {old_gen} retained (transition_config)",
        ),
        ctx.step(
            "update_whole_stack",
            update_stack,
            description=f"full update, no refresh: create {new_db} as a replica of {dr_db}, reverse S3 replication",
            pre_checks=(state_is(ctx, DrState.RESYNCING),),
            preview=lambda run: ctx.offline_preview(target_config(ctx, DrState.RESYNCING)),
            timeout_seconds=ctx.settings.replica_build_timeout_seconds + 600,
        ),
        ctx.step(
            "wait_until_primary_replica_in_sync",
            wait_in_sync,
            description=f"{new_db} available and lagging at most {cfg.replica_lag_warning_seconds} s",
            timeout_seconds=ctx.settings.replica_build_timeout_seconds + ctx.settings.catch_up_timeout_seconds + 120,
        ),
        ctx.step(
            "reseed_cache_in_primary_region",
            reseed_cache,
            description=f"{cache_group_id(cfg, 'primary')} associated with the global datastore as a secondary",
            timeout_seconds=2 * ctx.settings.cache_timeout_seconds + 60,
        ),
        ctx.step(
            "check_reversed_s3_replication",
            reverse_s3_replication,
            description=f"replication now runs {dr} -> {primary}",
        ),
        ctx.step(
            "replicate_objects_written_while_failed_over",
            replicate_existing_objects,
            description=f"S3 Batch Replication of what the {dr} bucket took before the reversed rule existed",
            timeout_seconds=ctx.settings.batch_replication_timeout_seconds + 300,
        ),
        ctx.step(
            "verify_resync",
            lambda run: None,
            description="primary-region replica of the DR writer, lag, cache membership, stack outputs",
            verifies_recovery=True,
            post_checks=(
                reading_check(
                    "primary_database_replicates_from_dr",
                    lambda run: ctx.aws.database_role(
                        primary, new_db, "replica", output(ctx.stack.outputs(), "database", dr, "arn")
                    ),
                ),
                reading_check("primary_replica_lag", lambda run: ctx.aws.replica_lag(primary, new_db, cfg)),
                Check("stack_outputs_show_resyncing", outputs_show_resyncing),
            ),
        ),
        ctx.step("notify_dr_alert_topic", notify_dr, description=f"publish the outcome to {dr}'s alert topic"),
    )
    graph = prepare_graph(cfg)
    return Runbook(
        name=PREPARE,
        description=f"failback prepare of {ctx.stack.fully_qualified_name}: rebuild {primary} from {dr}",
        items=(graph.as_group(steps),),
        preflight=(
            state_is(ctx, DrState.FAILED_OVER),
            reading_check("primary_region_reachable", lambda run: ctx.aws.database_role(primary, old_db, "writer")),
            reading_check("dr_writer_serving", lambda run: ctx.aws.database_role(dr, dr_db, "writer")),
        ),
        rto_target_seconds=None,
        rpo_target_seconds=cfg.rpo_seconds,
    )


# --- switch --------------------------------------------------------------------------------------


def switch_runbook(ctx: DrContext) -> Runbook:
    cfg = ctx.config()
    primary, dr = cfg.primary_region, cfg.dr_region
    writer_gen, new_dr_gen = switch_generations(cfg, ctx.stack.get_config())
    dr_writer = db_identifier(cfg, "dr", writer_gen)
    new_dr_db = db_identifier(cfg, "dr", new_dr_gen)
    primary_db = db_identifier(cfg, "primary", cfg.regions["primary"].db_generation)

    def allow_writes_on_primary_parameters(run: RunContext) -> dict[str, Any]:
        # The former writer's fence set read-only here; the replica ignores it, the promoted writer would not.
        outcome = ctx.aws.allow_writes(primary, parameter_group_of(primary_db), primary_db)
        return {"changed": outcome.changed, "detail": outcome.detail}

    def wait_until_close(run: RunContext) -> dict[str, Any]:
        sample = ctx.aws.wait_until_slot_lag_below(dr, dr_writer)
        return {"slotLagBytes": sample.seconds, "threshold": ctx.settings.switch_slot_lag_threshold_bytes}

    # catalogue: rds.oldest-replication-slot-lag
    def final_sync(run: RunContext) -> dict[str, Any]:
        sample = ctx.aws.wait_until_replica_has_everything(dr, dr_writer, parse_iso(run.measurement(WRITES_STOPPED_AT)))
        run.record(DATA_LOSS_WINDOW, 0)
        return {"source": dr_writer, "slotLagBytes": sample.seconds, "at": iso(sample.at)}

    def fail_back_cache(run: RunContext) -> dict[str, Any]:
        global_id = output(ctx.stack.outputs(), "cache", "globalDatastoreId")
        outcome = ctx.aws.fail_over_global_datastore(global_id, primary, cache_group_id(cfg, "primary"))
        return {"globalDatastore": global_id, "changed": outcome.changed, "detail": outcome.detail}

    def excluded(run: RunContext) -> list[str]:
        urns = run.measurement(EXCLUDED) or dr_rebuild_urns(ctx, ctx.stack.get_config(), new_dr_db)
        run.record(EXCLUDED, urns)
        return urns

    def update_without_dr_rebuild(run: RunContext, preview: Any) -> dict[str, Any]:
        left_out = excluded(run)
        result = ctx.update(
            run,
            None,
            exclude=left_out,
            message=f"drctl failback switch to {primary} (DR rebuild later)",
            preview=preview,
        )
        # The records were INSYNC (the provider waits for it) by the time the update ended, at the latest.
        run.record(RECORDS_MOVED_AT, iso(ctx.clock.now()))
        return {"changes": result.summary.describe(), "excluded": len(left_out)}

    def update_again(run: RunContext) -> None:
        ctx.update(run, None, exclude=excluded(run), message="drctl: converge #4419")

    def watch_error_rate(run: RunContext) -> dict[str, Any]:
        """The error rate watched for the window once users reach the primary: a failing rate stops at once."""
        metrics = ctx.load_balancer_metrics(primary)
        if metrics is None:
            warn(run, f"{primary} has no load balancer in the stack outputs: the error rate was not measured")
            return {"watchedSeconds": 0}
        started = ctx.clock.now()
        window = ctx.settings.error_rate_window_seconds
        while True:
            run.sleep(min(ctx.settings.poll_seconds, window))
            elapsed = (ctx.clock.now() - started).total_seconds()
            reading = ctx.aws.error_rate(primary, metrics)
            if reading.status in (Status.FAILING, Status.UNREACHABLE):
                raise CheckFailedError(f"error rate in {primary}: {reading.detail}")
            # catalogue: elb.metrics-per-60-seconds-only-with-traffic
            if reading.status is Status.UNKNOWN and elapsed >= ctx.settings.error_rate_grace_seconds:
                raise CheckFailedError(
                    f"error rate in {primary} still unknown after {elapsed:g} s: {reading.detail}; the switch "
                    "cannot be verified"
                )
            if elapsed >= window and reading.status is not Status.UNKNOWN:
                return {"watchedSeconds": elapsed, "errorRate": reading.detail}

    def outputs_show_primary_active(run: RunContext) -> str:
        outputs = ctx.stack.outputs()
        seen = (outputs.get("activeRegion"), outputs.get("drState"), output(outputs, "database", primary, "role"))
        if seen != (primary, "steady", "writer"):
            raise CheckFailedError(f"stack outputs say activeRegion/drState/primary database role {seen}")
        return f"activeRegion {primary}, steady, PRIMARY record at {output(outputs, 'dns', 'endpoints', primary)}"

    def cache_primary_in_primary(run: RunContext) -> Any:
        return ctx.aws.global_datastore(primary, output(ctx.stack.outputs(), "cache", "globalDatastoreId"), primary)

    def fence_lowered(run: RunContext) -> str:
        reading = ctx.aws.traffic_fence(output(ctx.stack.outputs(), "dns", "fence"))
        if reading.value != "lowered":
            raise CheckFailedError(f"the traffic fence is not lowered: {reading.detail}")
        # Route53's own view (its checkers read the fence's data, not the alarm's state).
        answer = ctx.aws.route53_answer(output(ctx.stack.outputs(), "dns"), primary)
        if answer.status not in (Status.OK, Status.WARNING):
            raise CheckFailedError(f"Route53 does not answer the primary region: {answer.detail}")
        return f"{reading.detail}; {answer.detail}"

    def rebuild_dr_replica(run: RunContext) -> dict[str, Any]:
        result = ctx.update(
            run, None, message=f"drctl failback switch: rebuild {new_dr_db} as a replica of {primary_db}"
        )
        return {"changes": result.summary.describe()}

    def notify_primary(run: RunContext) -> dict[str, Any]:
        subject = f"dr-platform {ctx.stack.fully_qualified_name}: failed back to {primary}"
        return notify(
            ctx, run, primary, subject, {"event": "steady", "activeRegion": primary, "newDrReplica": new_dr_db}
        )

    def objects_replicated(run: RunContext) -> str:
        job = ctx.aws.find_batch_job(dr, batch_job_description(ctx, dr_writer))
        if job is None:
            raise CheckFailedError(
                "no S3 Batch Replication job copied what the DR bucket took while failed over: rerun "
                "`drctl failback prepare` (it starts the job and waits for it)"
            )
        if job["Status"] != "Complete":
            raise CheckFailedError(
                f"S3 Batch Replication job {job['JobId']} is {job['Status']}: wait until it completed (rerun "
                "`drctl failback prepare` to wait for it)"
            )
        problem = batch_job_problem(job)
        if problem is not None:
            raise CheckFailedError(
                f"S3 Batch Replication job {job['JobId']}: {problem}; rerun `drctl failback prepare` (a new job "
                "replicates what is still unreplicated)"
            )
        return f"S3 Batch Replication job {job['JobId']} complete"

    previews: dict[str, Any] = {}
    steps = (
        scale_compute_step(ctx, cfg, "primary"),
        nodes_ready_step(ctx, cfg, "primary"),
        ctx.step(
            "allow_writes_on_primary_parameter_group",
            allow_writes_on_primary_parameters,
            description="reset default_transaction_read_only in the primary region before its promotion",
        ),
        ctx.step(
            "wait_until_primary_replica_close",
            wait_until_close,
            description=f"{primary_db} trails {dr_writer} by at most "
            f"{ctx.settings.switch_slot_lag_threshold_bytes:g} bytes of WAL",
            timeout_seconds=ctx.settings.catch_up_timeout_seconds + 60,
        ),
        fence_writer_step(
            ctx,
            READ_ONLY_STEP,
            dr,
            parameter_group_of(dr_writer),
            dr_writer,
            description=f"read-only window: default_transaction_read_only on {dr_writer} ({dr}), reboot, verify",
            stops_service=True,
        ),
        ctx.step(
            "wait_for_final_sync",
            final_sync,
            description=f"OldestReplicationSlotLag of {dr_writer} at 0 after the fence: {primary_db} has every write",
            timeout_seconds=ctx.settings.catch_up_timeout_seconds + 60,
        ),
        ctx.step(
            "fail_over_global_datastore_to_primary",
            fail_back_cache,
            description=f"FailoverGlobalReplicationGroup to {cache_group_id(cfg, 'primary')} in {primary}",
            timeout_seconds=ctx.settings.cache_timeout_seconds + 60,
        ),
        write_config_step(
            ctx,
            DrState.STEADY,
            description=f"activeRegion={primary}, drState=steady, dbGeneration.dr={new_dr_gen} (transition_config)",
        ),
        preview_update_step(
            ctx,
            SWITCH_PREVIEW_STEP,
            previews,
            lambda: None,
            exclude=excluded,
            description="preview of the switch's update (the DR rebuild left out), gated by the policy pack and "
            "the stateful-resource guard",
        ),
        update_step(
            ctx,
            "update_stack_without_dr_rebuild",
            previews,
            SWITCH_PREVIEW_STEP,
            update_without_dr_rebuild,
            description=f"promote {primary_db}, DNS and replication back to {primary}; {new_dr_db} left out",
            pre_checks=(state_is(ctx, DrState.STEADY),),
            preview=lambda run: ctx.offline_preview(target_config(ctx, DrState.STEADY)),
            timeout_seconds=ctx.settings.promotion_timeout_seconds + 600,
        ),
        converge_step(
            ctx,
            cfg,
            "primary",
            primary_db,
            update_again,
            description=f"wait until {primary_db} is a standalone writer with its backups",
        ),
        traffic_fence_step(
            ctx,
            raised=False,
            description=f"traffic fence lowered: Route53 answers by the records again, which the update moves to "
            f"{primary}",
        ),
        clients_moved_step(ctx, "primary", records_too=True),
        ctx.step(
            VERIFY_STEP,
            lambda run: None,
            description=f"{primary_db} a writable writer, outputs, fence, health check and cache at {primary}",
            verifies_recovery=True,
            post_checks=(
                standalone_writer_check(ctx, cfg, "primary", primary_db),
                Check("stack_outputs_show_primary_active", outputs_show_primary_active),
                Check("traffic_fence_lowered", fence_lowered),
                health_check_green(ctx, "primary_health_check_green", primary, failed_region=None),
                reading_check("global_datastore_primary_in_primary", cache_primary_in_primary),
            ),
        ),
        ctx.step(
            WATCH_STEP,
            watch_error_rate,
            description=f"watch {primary}'s error rate for {ctx.settings.error_rate_window_seconds:g} s; any "
            "failure rolls back",
            timeout_seconds=max(ctx.settings.error_rate_window_seconds, ctx.settings.error_rate_grace_seconds) + 600,
        ),
        ctx.step(
            "rebuild_dr_replica",
            rebuild_dr_replica,
            description=f"full update: create {new_dr_db} as a replica of {primary_db}, DR compute to standby",
            timeout_seconds=ctx.settings.replica_build_timeout_seconds + 600,
            post_checks=(
                reading_check(
                    "dr_database_replicates_from_primary",
                    lambda run: ctx.aws.database_role(
                        dr, new_dr_db, "replica", output(ctx.stack.outputs(), "database", primary, "arn")
                    ),
                ),
            ),
        ),
        # The read-only window set it on the DR parameter group, which the new replica uses.
        allow_writes_step(
            ctx,
            cfg,
            "dr",
            new_dr_db,
            description="reset default_transaction_read_only in the DR region, ready for the next failover",
        ),
        ctx.step("notify_primary_alert_topic", notify_primary, description=f"publish the outcome to {primary}'s topic"),
    )
    graph = switch_graph(cfg)
    return Runbook(
        name=SWITCH,
        description=f"failback switch of {ctx.stack.fully_qualified_name} from {dr} to {primary}",
        items=(graph.as_group(steps),),
        rto_floor_seconds=graph.floor(cfg).typical_seconds,
        preflight=(
            state_is(ctx, DrState.RESYNCING),
            reading_check(
                "primary_database_replicates_from_dr",
                lambda run: ctx.aws.database_role(
                    primary, primary_db, "replica", output(ctx.stack.outputs(), "database", dr, "arn")
                ),
            ),
            reading_check("dr_writer_serving", lambda run: ctx.aws.database_role(dr, dr_writer, "writer")),
            Check("objects_written_while_failed_over_replicated", objects_replicated),
            health_check_green(ctx, "primary_health_check_green", primary, failed_region=None),
        ),
        rto_target_seconds=cfg.rto_seconds,
        rpo_target_seconds=cfg.rpo_seconds,
    )


# --- rollback ------------------------------------------------------------------------------------


def rollback_runbook(ctx: DrContext, cause: str | None = None) -> Runbook:
    cfg = ctx.config()
    primary, dr = cfg.primary_region, cfg.dr_region
    writer_gen, new_dr_gen = switch_generations(cfg, ctx.stack.get_config())
    if cfg.dr_state is DrState.FAILED_OVER:  # resumed after the rollback config was written
        writer_gen, new_dr_gen = cfg.regions["dr"].db_generation, None
    dr_writer = db_identifier(cfg, "dr", writer_gen)
    primary_db = db_identifier(cfg, "primary", cfg.regions["primary"].db_generation)

    def switch_not_completed(run: RunContext) -> str:
        if new_dr_gen is None:
            return "rollback config already written"
        new_dr_db = db_identifier(cfg, "dr", new_dr_gen)
        reading = ctx.aws.database_role(dr, new_dr_db, "replica")
        if reading.status is Status.FAILING and "NotFound" in reading.detail:
            return f"{new_dr_db} was never built: the switch did not complete"
        raise CheckFailedError(
            f"{new_dr_db} in {dr}: {reading.status.value}, {reading.detail}: the switch completed (or {dr} does not "
            "answer); to leave the primary region now, fail over instead (drctl failover)"
        )

    def record_cause(run: RunContext) -> dict[str, Any]:
        if cause and not run.measurement(ROLLBACK_CAUSE):
            run.record(ROLLBACK_CAUSE, cause)
        return {"cause": run.measurement(ROLLBACK_CAUSE) or "operator request"}

    def fence_primary(run: RunContext) -> dict[str, Any]:
        started = run.measurement("fence_promoted_primary_started_at") or iso(ctx.clock.now())
        run.record("fence_promoted_primary_started_at", started)
        try:
            role = ctx.aws.database_role(primary, primary_db, "writer")
            if role.value != "writer":
                return {"fenced": False, "detail": f"{primary_db} was never promoted ({role.detail}): nothing to fence"}
            group = parameter_group_of(primary_db)
            fenced = ctx.aws.fence_writer(primary, group, primary_db, parse_iso(started))
        except RegionUnreachableError as error:
            warn(run, f"could not fence {primary_db}: {error}; the traffic fence keeps users away from it")
            follow_up(
                run,
                f"once {primary} answers: drctl failback prepare --stack {ctx.stack.fully_qualified_name} (its first "
                f"steps fence {primary_db} and stop {primary}'s compute)",
            )
            return {"fenced": False}
        return {"fenced": True, **fenced}

    def cache_back_to_dr(run: RunContext) -> dict[str, Any]:
        global_id = output(ctx.stack.outputs(), "cache", "globalDatastoreId")
        outcome = ctx.aws.fail_over_global_datastore(global_id, dr, cache_group_id(cfg, "dr"))
        return {"globalDatastore": global_id, "changed": outcome.changed}

    def writes_back_on_dr(run: RunContext) -> dict[str, Any]:
        outcome = ctx.aws.allow_writes(dr, parameter_group_of(dr_writer), dr_writer)
        return {"writer": dr_writer, "changed": outcome.changed}

    def write_config(run: RunContext) -> dict[str, Any]:
        return {"changed": ctx.write_config(run, rollback_config(ctx.stack.get_config()))}

    def update_back(run: RunContext) -> dict[str, Any]:
        config = ctx.stack.get_config()
        if ctx.config().dr_state is DrState.RESYNCING:
            return {"changes": "none: the switch never wrote its config"}
        targets = failover_targets(ctx, config, primary)
        targets += [urn for urn in dns_targets(ctx, config, primary) if urn not in targets]
        result = ctx.update(run, targets, message=f"drctl failback rollback: {dr} serves again")
        return {"changes": result.summary.describe(), "targets": len(targets)}

    def dr_active_again(run: RunContext) -> str:
        outputs = ctx.stack.outputs()
        seen = (outputs.get("activeRegion"), output(outputs, "database", dr, "identifier"))
        if seen != (dr, dr_writer):
            raise CheckFailedError(f"stack outputs say activeRegion/DR database {seen}")
        run.record(RESULT, "rolled-back")
        return f"activeRegion {dr}, {dr_writer} is the declared writer, drState {outputs.get('drState')}"

    def notify_rollback(run: RunContext) -> dict[str, Any]:
        subject = f"ROLLED BACK: dr-platform {ctx.stack.fully_qualified_name} failback; {dr} serves again"
        extra = {"event": "rolled-back", "activeRegion": dr, "cause": run.measurement(ROLLBACK_CAUSE)}
        return notify(ctx, run, dr, subject, extra)

    steps = (
        ctx.step("record_rollback_cause", record_cause, description="keep why the failback is being rolled back"),
        traffic_fence_step(
            ctx, raised=True, description=f"traffic fence raised again: Route53 answers {dr} only, at once"
        ),
        clients_moved_step(ctx, "dr"),
        ctx.step(
            "fence_promoted_primary",
            fence_primary,
            description=f"read-only and every session ended on {primary_db} if it was promoted, verified",
            timeout_seconds=ctx.settings.reboot_timeout_seconds + 600,
        ),
        ctx.step(
            "fail_over_global_datastore_to_dr",
            cache_back_to_dr,
            description=f"FailoverGlobalReplicationGroup back to {cache_group_id(cfg, 'dr')} in {dr}",
            timeout_seconds=ctx.settings.cache_timeout_seconds + 60,
        ),
        ctx.step(
            "allow_writes_on_dr_writer", writes_back_on_dr, description=f"close the read-only window on {dr_writer}"
        ),
        ctx.step(
            "write_rollback_config",
            write_config,
            description=f"drState=failed-over, activeRegion={dr}, dbGeneration.dr={writer_gen} (rollback_config)",
            already_done=lambda run: ctx.config().dr_state is not DrState.STEADY,
        ),
        ctx.step(
            "update_stack_back_to_dr",
            update_back,
            description=f"update targeted to {dr} and global resources: DNS, replication, backups back to {dr}",
            timeout_seconds=ctx.settings.promotion_timeout_seconds + 600,
        ),
        ctx.step(
            "verify_dr_serving_again",
            lambda run: None,
            description=f"{dr_writer} is a writable writer; outputs, health check and cache at {dr}",
            verifies_recovery=True,
            post_checks=(
                standalone_writer_check(ctx, cfg, "dr", dr_writer),
                reading_check(
                    "global_datastore_primary_in_dr",
                    lambda run: ctx.aws.global_datastore(
                        dr, output(ctx.stack.outputs(), "cache", "globalDatastoreId"), dr
                    ),
                ),
                health_check_green(ctx, "dr_health_check_green", dr, failed_region=None),
                Check("stack_outputs_show_dr_active", dr_active_again),
            ),
        ),
        ctx.step("notify_rollback", notify_rollback, description=f"publish the rollback to {dr}'s alert topic"),
    )
    graph = rollback_graph(cfg)
    return Runbook(
        name=ROLLBACK,
        description=f"roll the failback of {ctx.stack.fully_qualified_name} back: {dr} serves again",
        items=(graph.as_group(steps),),
        rto_floor_seconds=graph.floor(cfg).typical_seconds,
        preflight=(
            state_is(ctx, DrState.STEADY, DrState.RESYNCING),
            Check("switch_not_completed", switch_not_completed),
        ),
        rto_target_seconds=cfg.rto_seconds,
        rpo_target_seconds=None,
    )


# --- the dependency graphs ----------------------------------------------------------------------


def prepare_graph(cfg: PlatformConfig) -> RunbookGraph:
    """Prepare moves no traffic: its length is not downtime, but its order still follows real dependencies."""
    fence, update = "fence_former_writer", "update_whole_stack"
    nodes = (
        Node(fence, {}, (Op.RDS_PARAMETER_APPLY, Op.RDS_REBOOT)),
        Node("scale_former_compute_to_zero", {}, (Op.NODE_GROUP_UPDATE,)),
        Node(
            "snapshot_old_primary",
            {fence: "the snapshot keeps the fenced writer's last state: nothing writes after it"},
            (Op.RDS_SNAPSHOT,),
        ),
        Node(
            "write_resyncing_config",
            {"snapshot_old_primary": "the config retires the former writer's generation: its snapshot comes first"},
            (Op.PULUMI_CLI_CALL,),
        ),
        Node(
            update,
            {
                "write_resyncing_config": "the update applies the resyncing config",
                "scale_former_compute_to_zero": graph_reasons.ONE_NODE_GROUP_UPDATE_AT_A_TIME,
            },
            (Op.PULUMI_PREVIEW, Op.STACK_UPDATE_OVERHEAD, Op.RDS_CREATE_CROSS_REGION_REPLICA),
        ),
        Node(
            "wait_until_primary_replica_in_sync",
            {update: "the update creates the new primary-region replica"},
            (Op.RDS_FINAL_SYNC,),
        ),
        Node(
            "reseed_cache_in_primary_region",
            {update: "the update declares the primary region's cache group as the datastore's secondary again"},
            (Op.GLOBAL_DATASTORE_FAILOVER,),
        ),
        Node("check_reversed_s3_replication", {update: "the update reverses the replication rule"}),
        Node(
            "replicate_objects_written_while_failed_over",
            {
                "check_reversed_s3_replication": "Batch Replication copies with the reversed rule "
                "(catalogue: s3.live-replication-skips-existing-objects)"
            },
            (Op.S3_BATCH_REPLICATION,),
        ),
        Node(
            "verify_resync",
            {
                "wait_until_primary_replica_in_sync": "checks the replica's lag",
                "reseed_cache_in_primary_region": "checks the cache membership",
                "replicate_objects_written_while_failed_over": "the switch needs every object on both sides",
            },
            (Op.VERIFY_SERVICES,),
        ),
        Node("notify_dr_alert_topic", {"verify_resync": graph_reasons.NOTIFY_THE_OUTCOME}),
    )
    return RunbookGraph(PREPARE, nodes, verified_by="verify_resync", disruption_starts_at=None)


def switch_graph(cfg: PlatformConfig) -> RunbookGraph:
    """The switch: writes stop for the fence, the final sync and the promotion; everything else runs beside them."""
    scaling = cfg.standby_node_group != cfg.node_group_full
    window_opens = "the read-only window opens only once everything that can be done with writes on is done"
    nodes = (
        Node("scale_primary_compute_to_full", {}, (Op.NODE_GROUP_UPDATE,) if scaling else ()),
        Node(
            "wait_until_primary_nodes_ready",
            {"scale_primary_compute_to_full": graph_reasons.NODES_AFTER_REQUEST},
            (Op.NODE_GROUP_SCALE_UP,) if scaling else (),
            (Op.NODE_GROUP_UPDATE,),
        ),
        Node("allow_writes_on_primary_parameter_group", {}, (Op.RDS_PARAMETER_APPLY,)),
        Node("wait_until_primary_replica_close", {}, ()),
        Node(
            READ_ONLY_STEP,
            {
                "wait_until_primary_nodes_ready": f"{window_opens}: the primary region's capacity",
                "allow_writes_on_primary_parameter_group": f"{window_opens}: the promoted writer must take writes",
                "wait_until_primary_replica_close": f"{window_opens}: the replica close, so the final sync is short",
                "scale_primary_compute_to_full": graph_reasons.ONE_NODE_GROUP_UPDATE_AT_A_TIME,
            },
            (Op.RDS_PARAMETER_APPLY, Op.RDS_REBOOT),
        ),
        Node("wait_for_final_sync", {READ_ONLY_STEP: graph_reasons.FINAL_SYNC_AFTER_FENCE}, (Op.RDS_FINAL_SYNC,)),
        Node(
            "fail_over_global_datastore_to_primary",
            {READ_ONLY_STEP: graph_reasons.CACHE_AFTER_WRITES_STOP},
            (Op.GLOBAL_DATASTORE_FAILOVER,),
        ),
        Node(
            "write_steady_config",
            {
                READ_ONLY_STEP: "the steady config commits the switch: written once writes stopped, so that a failure "
                "before it leaves nothing changed (the write changes nothing in AWS)"
            },
            (Op.PULUMI_CLI_CALL,),
        ),
        Node(SWITCH_PREVIEW_STEP, {"write_steady_config": graph_reasons.PREVIEW_OF_THE_CONFIG}, (Op.PULUMI_PREVIEW,)),
        Node(
            "update_stack_without_dr_rebuild",
            {
                SWITCH_PREVIEW_STEP: graph_reasons.UPDATE_AS_PREVIEWED,
                "wait_for_final_sync": graph_reasons.PROMOTE_AFTER_FINAL_SYNC,
            },
            (Op.STACK_UPDATE_OVERHEAD, Op.RDS_PROMOTE_REPLICA),
        ),
        Node(
            "converge_promoted_primary_database",
            {"update_stack_without_dr_rebuild": graph_reasons.CONVERGE_AFTER_UPDATE},
        ),
        Node(
            "lower_traffic_fence",
            {"wait_for_final_sync": graph_reasons.REPLICA_HAS_EVERYTHING_FOR_READS},
            (Op.FENCE_ALARM_EVALUATION,),
        ),
        Node(
            "wait_until_clients_reach_primary",
            {
                "lower_traffic_fence": graph_reasons.CLIENTS_FOLLOW_ROUTE53,
                "update_stack_without_dr_rebuild": "with the fence lowered, Route53 answers what the records say, "
                "and the update moves them back to the primary",
            },
            (Op.DNS_CACHE_EXPIRY,),
        ),
        Node(
            VERIFY_STEP,
            {
                "converge_promoted_primary_database": "checks the promoted writer",
                "wait_until_clients_reach_primary": "checks the fence and the health check users follow",
                "fail_over_global_datastore_to_primary": "checks the cache's primary",
            },
            (Op.VERIFY_SERVICES,),
        ),
        Node(WATCH_STEP, {VERIFY_STEP: "watches the error rate of the verified primary"}),
        Node(
            "rebuild_dr_replica",
            {
                WATCH_STEP: "a new DR replica is built once the switch is final: until then a rollback needs the DR "
                "writer as it is"
            },
            (Op.PULUMI_PREVIEW, Op.STACK_UPDATE_OVERHEAD, Op.RDS_CREATE_CROSS_REGION_REPLICA),
        ),
        Node(
            "allow_writes_on_dr_parameter_group",
            {"rebuild_dr_replica": "the new DR replica uses the parameter group the read-only window changed"},
            (Op.RDS_PARAMETER_APPLY,),
        ),
        Node(
            "notify_primary_alert_topic",
            {"allow_writes_on_dr_parameter_group": graph_reasons.NOTIFY_THE_OUTCOME},
        ),
    )
    return RunbookGraph(SWITCH, nodes, verified_by=VERIFY_STEP, disruption_starts_at=READ_ONLY_STEP)


def rollback_graph(cfg: PlatformConfig) -> RunbookGraph:
    """The rollback: users and writes back on the DR region as soon as the promoted primary takes none."""
    fenced = "fence_promoted_primary"
    never_two_writers = (
        "never two writers: the DR region takes writes again only once the promoted primary refuses them "
        "(catalogue: rds.read-only-parameter-is-a-session-default, rds.reboot-ends-every-session)"
    )
    nodes = (
        Node("record_rollback_cause", {}),
        Node("raise_traffic_fence", {}, (Op.FENCE_ALARM_EVALUATION,)),
        Node(
            "wait_until_clients_reach_dr",
            {"raise_traffic_fence": graph_reasons.CLIENTS_FOLLOW_ROUTE53},
            (Op.ROUTE53_FOLLOWS_ALARM, Op.DNS_CACHE_EXPIRY),
        ),
        Node(fenced, {}, (Op.RDS_PARAMETER_APPLY, Op.RDS_REBOOT)),
        Node("fail_over_global_datastore_to_dr", {fenced: never_two_writers}, (Op.GLOBAL_DATASTORE_FAILOVER,)),
        Node("allow_writes_on_dr_writer", {fenced: never_two_writers}, (Op.RDS_PARAMETER_APPLY,)),
        Node("write_rollback_config", {fenced: never_two_writers}, (Op.PULUMI_CLI_CALL,)),
        Node(
            "update_stack_back_to_dr",
            {"write_rollback_config": "the update applies the rollback config"},
            (Op.PULUMI_PREVIEW, Op.STACK_UPDATE_OVERHEAD, Op.RECORD_PROPAGATION),
        ),
        Node(
            "verify_dr_serving_again",
            {
                "update_stack_back_to_dr": "checks the stack outputs the update wrote",
                "wait_until_clients_reach_dr": "users are back on the DR region",
                "fail_over_global_datastore_to_dr": "checks the cache's primary",
                "allow_writes_on_dr_writer": "checks the DR writer takes writes",
            },
            (Op.VERIFY_SERVICES,),
        ),
        Node(
            "notify_rollback",
            {
                "verify_dr_serving_again": graph_reasons.NOTIFY_THE_OUTCOME,
                "record_rollback_cause": "publishes why the switch was rolled back",
            },
        ),
    )
    return RunbookGraph(
        ROLLBACK,
        nodes,
        verified_by="verify_dr_serving_again",
        disruption_starts_at=None,
        lead_in=(Op.READINESS_CHECKS,),
    )


# --- the switch with its automatic rollback --------------------------------------------------------


@dataclass
class SwitchOutcome:
    result: str  # succeeded | already-completed | planned | rolled-back
    outcome: RunOutcome
    cause: str | None = None
    switch_run: RunRecord | None = None


def rollback_parameters(switch: RunParameters) -> RunParameters:
    """Derived from the switch's, so that rerunning the switch command resumes an interrupted rollback."""
    return RunParameters(
        reason=f"automatic rollback of the failback switch ({switch.reason})",
        operator=switch.operator,
        mode="automatic",
    )


def read_only_window_opened(run: RunRecord) -> bool:
    return run.step(READ_ONLY_STEP).status is not StepStatus.PENDING


def switch_verified(run: RunRecord) -> bool:
    return run.step(WATCH_STEP).status.done


def run_failback_switch(
    engine: RunbookEngine,
    ctx: DrContext,
    parameters: RunParameters,
    *,
    dry_run: bool = False,
    abandon_unfinished: bool = False,
) -> SwitchOutcome:
    """Run the switch; if it fails between the DR writer's fence and a passed verification, roll back at once.

    Before the fence nothing has changed for users: the failure stops the run.
    After verification passed, writes go to the primary: rolling back would
    throw them away, so a later failure (the DR rebuild, the notification)
    stops the run and rerunning the switch finishes it.
    """
    rollback_params = rollback_parameters(parameters)
    stack = ctx.stack.fully_qualified_name
    current = engine.journal.load()
    if not dry_run and current and current.runbook == ROLLBACK and not current.finished and current.any_step_started:
        engine.output(f"resuming the interrupted automatic rollback {current.run_id}")
        outcome = _rollback(engine, ctx, rollback_params, None)
        return SwitchOutcome("rolled-back", outcome, cause=outcome.run.measurements.get(ROLLBACK_CAUSE))
    try:
        outcome = engine.run(switch_runbook(ctx), parameters, dry_run=dry_run, abandon_unfinished=abandon_unfinished)
    except RunFailedError as failure:
        if not read_only_window_opened(failure.run):
            raise
        if switch_verified(failure.run):
            failed = next((step.name for step in failure.run.steps if step.status.name in ("FAILED", "TIMED_OUT")), "")
            raise DrctlError(
                f"the failback switch is verified ({ctx.config().primary_region} serves and takes the writes) but "
                f"stopped at {failed}: {failure.run.error}",
                hint=f"not rolled back: that would throw away writes made on the primary since. Fix the cause and "
                f"rerun `drctl failback switch --stack {stack}`: it resumes at {failed}",
            ) from failure
        cause = failure.run.error or "the switch failed"
        engine.output(f"FAILBACK SWITCH FAILED with writes stopped on the DR writer: {cause}")
        engine.output("ROLLING BACK to the DR region now")
        outcome = _rollback(engine, ctx, rollback_params, cause)
        return SwitchOutcome("rolled-back", outcome, cause=cause, switch_run=failure.run)
    return SwitchOutcome(outcome.status, outcome)


def _rollback(engine: RunbookEngine, ctx: DrContext, parameters: RunParameters, cause: str | None) -> RunOutcome:
    stack = ctx.stack.fully_qualified_name
    try:
        return engine.run(rollback_runbook(ctx, cause), parameters, abandon_unfinished=True)
    except RunFailedError as failure:
        if failure.run.status is RunStatus.REFUSED:
            hint = (
                "nothing of the rollback ran and writes are still stopped on the DR writer: fix what its preflight "
                f"reports, then run `drctl failback rollback --stack {stack} --reason '...'` (rerunning the switch "
                "would start a new switch)"
            )
        else:
            hint = (
                "writes may still be stopped on the DR writer; fix the cause and rerun the same "
                f"`drctl failback switch --stack {stack}` command: it resumes the rollback"
            )
        raise DrctlError(
            f"the failback switch failed and its automatic rollback stopped too: {failure}", hint=hint
        ) from failure
