"""What the DR runbooks share: the stack, the AWS side, the clock, settings, and the update helpers.

Runbooks reach AWS only through `DrAws`, a thin binding of the
`automation.aws` functions to one set of clients and the run's clock, and the
stack only through the `StackAdapter`. Tests replace `DrAws` with a fake at
that boundary; the offline sandbox passes its own clients, clock and stack.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from automation.aws import actions, readiness, route53_view
from automation.aws.clients import AwsClients, reaching
from automation.aws.readiness import DatabaseInstance, GlobalDatastore, LagSample, LoadBalancerMetrics, Reading
from automation.aws.waiting import Clock, Observation, wait_for
from automation.changes import diff
from automation.dr_state import dr_keys
from automation.errors import DrctlError
from automation.evaluate import Evaluation
from automation.runbook import TARGETS, RunContext, Step
from automation.runbooks.stale_promotions import refresh_promoted_replicas
from automation.stack import (
    ChangeSummary,
    ResourceStep,
    StackAdapter,
    UpdateResult,
    in_scope,
    namespaced,
    pending_create_commands,
    short_stack_name,
)
from automation.stack_standin import cached_evaluation
from automation.timings import Op, latency
from components.config import NodeGroupSize, PlatformConfig, parse_config

# catalogue: rds.idle-source-replays-every-few-minutes
REPLAY_INTERVAL_SECONDS = latency(Op.RDS_IDLE_REPLAY_INTERVAL)
"""How long an idle RDS PostgreSQL source may go without a replayed commit (RDS's own periodic activity)."""
WARNINGS = "warnings"
FOLLOW_UPS = "follow_ups"
NOT_RECOVERED = "not_recovered"
"""What a run that ended left not serving as the target state needs: it exits non-zero although it succeeded."""
RESULT = "result"
ROUTE53_TYPE_PREFIX = "aws:route53/"

_NOTES_LOCK = threading.Lock()


@dataclass(frozen=True)
class RunbookSettings:
    """Waits and bounds of the DR runbooks; defaults fit production, tests and the sandbox shorten them."""

    poll_seconds: float = 15
    catch_up_timeout_seconds: float = 900
    """Graceful failover and failback switch: how long the final sync may take once writes are fenced."""
    promotion_timeout_seconds: float = 1800
    convergence_updates: int = 3
    """#4419: targeted updates after the first one before giving up on a promoted instance's settings."""
    replica_build_timeout_seconds: float = 4 * 3600
    """Failback prepare: a cross-region replica of a large database takes hours to build."""
    switch_slot_lag_threshold_bytes: float = 64 * 1024 * 1024
    """Failback switch fences the DR writer only once its replica trails by at most this much WAL."""
    error_rate_threshold: float = 0.05
    error_rate_window_seconds: float = 300
    error_rate_grace_seconds: float = 120
    """After the switch, how long the load balancer may report no traffic before that fails verification."""
    cache_timeout_seconds: float = 300
    """Bound of a Global Datastore failover (about a minute on AWS): a cache must never hold up the database."""
    compute_timeout_seconds: float = 900
    fence_timeout_seconds: float = 300
    """Raising or lowering the traffic fence: its alarm must follow within this."""
    reboot_timeout_seconds: float = 900
    batch_replication_timeout_seconds: float = 4 * 3600


class DrAws:
    """The `automation.aws` readings and actions bound to one set of clients and the run's clock."""

    def __init__(self, clients: AwsClients, clock: Clock, settings: RunbookSettings | None = None) -> None:
        self.clients = clients
        self.clock = clock
        self.settings = settings or RunbookSettings()
        # How the zone's authoritative name servers are found and asked (the sandbox answers from its model).
        self.resolve: route53_view.Resolve = route53_view.authoritative_answer
        self.find_name_servers: route53_view.FindNameServers = route53_view.zone_name_servers

    # --- readings (never raise for an unreachable region) ---------------------------------

    def replica_lag(self, region: str, identifier: str, cfg: PlatformConfig) -> Reading:
        return readiness.replica_lag(
            self.clients,
            region,
            identifier,
            rpo_seconds=cfg.rpo_seconds,
            warning_seconds=cfg.replica_lag_warning_seconds,
            clock=self.clock,
        )

    def database_role(
        self, region: str, identifier: str, expected_role: str, expected_source: str | None = None
    ) -> Reading:
        return readiness.database_role(
            self.clients, region, identifier, expected_role=expected_role, expected_source=expected_source
        )

    def health_check(self, region: str, health_check_id: str) -> Reading:
        return readiness.health_check(self.clients, region, health_check_id)

    def point_in_time_recovery(self, region: str, identifier: str, cfg: PlatformConfig) -> Reading:
        return readiness.point_in_time_recovery(
            self.clients, region, identifier, rpo_seconds=cfg.rpo_seconds, clock=self.clock
        )

    def recovery_point_age(self, region: str, vault_name: str) -> Reading:
        return readiness.recovery_point_age(self.clients, region, vault_name, clock=self.clock)

    def s3_replication(self, region: str, source_bucket: str, destination_arn: str, cfg: PlatformConfig) -> Reading:
        return readiness.s3_replication(
            self.clients, region, source_bucket, destination_arn, rpo_seconds=cfg.rpo_seconds, clock=self.clock
        )

    def global_datastore(self, region: str, global_id: str, expected_primary_region: str) -> Reading:
        return readiness.global_datastore(
            self.clients, region, global_id, expected_primary_region=expected_primary_region
        )

    def node_group(self, region: str, cluster: str, node_group: str, expected_desired: int | None) -> Reading:
        return readiness.node_group(self.clients, region, cluster, node_group, expected_desired=expected_desired)

    def error_rate(self, region: str, metrics: LoadBalancerMetrics) -> Reading:
        return readiness.error_rate(
            self.clients,
            region,
            metrics=metrics,
            threshold=self.settings.error_rate_threshold,
            window=timedelta(seconds=self.settings.error_rate_window_seconds),
            clock=self.clock,
        )

    def data_loss_window(self, region: str, replica: str, cfg: PlatformConfig) -> Reading:
        return readiness.data_loss_window(
            self.clients,
            region,
            replica,
            rpo_seconds=cfg.rpo_seconds,
            replay_interval_seconds=REPLAY_INTERVAL_SECONDS,
            clock=self.clock,
        )

    def wal_retention(self, region: str, identifier: str, *, serves_replicas: bool) -> Reading:
        return readiness.wal_retention(
            self.clients,
            region,
            identifier,
            serves_replicas=serves_replicas,
            warning_bytes=self.settings.switch_slot_lag_threshold_bytes,
            clock=self.clock,
        )

    def target_health(self, region: str, target_group_arn: str, expected: int = 1) -> Reading:
        return readiness.target_health(self.clients, region, target_group_arn, expected=expected)

    def traffic_fence(self, fence: Mapping[str, Any]) -> Reading:
        return readiness.traffic_fence(self.clients, fence["region"], fence["alarmName"])

    def route53_answer(self, dns_output: Mapping[str, Any], expected_region: str, *, use_api: bool = True) -> Reading:
        """Where Route53 itself sends users (fence checks through its API, the zone's name servers' answer)."""
        return route53_view.route53_answer(
            self.clients,
            dns_output,
            expected_region=expected_region,
            use_api=use_api,
            resolve=self.resolve,
            find_name_servers=self.find_name_servers,
        )

    # --- descriptions (raise) -------------------------------------------------------------

    def describe_database(self, region: str, identifier: str) -> DatabaseInstance:
        with reaching(region):
            return readiness.describe_database(self.clients, region, identifier)

    def describe_global_datastore(self, region: str, global_id: str) -> GlobalDatastore:
        with reaching(region):
            return readiness.describe_global_datastore(self.clients, region, global_id)

    # --- actions (idempotent, bounded) --------------------------------------------------------

    def scale_node_group(self, region: str, cluster: str, node_group: str, size: NodeGroupSize) -> actions.Outcome:
        return actions.scale_node_group(
            self.clients,
            region,
            cluster,
            node_group,
            size,
            timeout_seconds=self.settings.compute_timeout_seconds,
            interval_seconds=self.settings.poll_seconds,
            clock=self.clock,
        )

    def wait_until_nodes_ready(self, region: str, cluster: str, node_group: str, desired: int) -> int:
        return actions.wait_until_nodes_ready(
            self.clients,
            region,
            cluster,
            node_group,
            desired,
            timeout_seconds=self.settings.compute_timeout_seconds,
            interval_seconds=self.settings.poll_seconds,
            clock=self.clock,
        )

    def fence_writer(
        self, region: str, parameter_group: str, writer: str, since: datetime, *, revert_if_not_fenced: bool = False
    ) -> dict[str, Any]:
        """Read-only by default, then a reboot that ends every session, then in sync and verified (catalogue:
        rds.read-only-parameter-is-a-session-default, rds.reboot-ends-every-session, rds.parameter-apply-status).

        `since`: when fencing first started (journaled), so a resumed run neither reboots twice nor accepts a
        restart from before the change. The reboot does not wait for the group to be in sync first: it starts
        every session with the group's values, and a group waiting for a restart (pending-reboot) is only in
        sync after it. `revert_if_not_fenced`: when RDS refuses the reboot (catalogue: rds.reboot-needs-available),
        put writes back on (a planned switchover that stops there must not leave production read-only).
        """
        wait = {"interval_seconds": self.settings.poll_seconds, "clock": self.clock}
        read_only = actions.set_read_only_before_reboot(self.clients, region, parameter_group, writer)
        try:
            restart = actions.end_sessions(
                self.clients, region, writer, after=since, timeout_seconds=self.settings.reboot_timeout_seconds, **wait
            )
        except actions.RebootRefusedError as error:
            if not revert_if_not_fenced:
                raise
            reverted = actions.allow_writes(self.clients, region, parameter_group, writer, **wait)
            raise DrctlError(
                f"{writer} in {region} was not fenced: {error}. {reverted.detail}: it takes writes again",
                hint="nothing else changed; rerun the same command once the instance is available (the run resumes "
                "at this step)",
            ) from error
        actions.wait_until_parameters_applied(
            self.clients,
            region,
            parameter_group,
            writer,
            pending_reboot_is_applied=False,
            timeout_seconds=self.settings.reboot_timeout_seconds,
            **wait,
        )
        verified = actions.verify_fence(
            self.clients, region, parameter_group, writer, in_sync_at=since, now=self.clock.now()
        )
        return {
            "writer": writer,
            "readOnly": read_only.detail,
            "sessions": restart.detail,
            "restartedAt": restart.state.isoformat(),
            "verified": verified,
            "changed": read_only.changed or restart.changed,
        }

    def verify_fence(self, region: str, parameter_group: str, writer: str, since: datetime) -> str:
        """Raises unless the writer is read-only by default, in sync, and restarted since `since`."""
        return actions.verify_fence(
            self.clients, region, parameter_group, writer, in_sync_at=since, now=self.clock.now()
        )

    def allow_writes(self, region: str, parameter_group: str, writer: str) -> actions.Outcome:
        return actions.allow_writes(
            self.clients, region, parameter_group, writer, interval_seconds=self.settings.poll_seconds, clock=self.clock
        )

    def wait_until_caught_up(self, region: str, replica: str, since: datetime, max_lag_seconds: float) -> LagSample:
        return actions.wait_until_caught_up(
            self.clients,
            region,
            replica,
            since=since,
            max_lag_seconds=max_lag_seconds,
            timeout_seconds=self.settings.catch_up_timeout_seconds,
            interval_seconds=self.settings.poll_seconds,
            clock=self.clock,
        )

    def wait_until_replica_has_everything(self, source_region: str, source: str, since: datetime) -> LagSample:
        return actions.wait_until_replica_has_everything(
            self.clients,
            source_region,
            source,
            since=since,
            timeout_seconds=self.settings.catch_up_timeout_seconds,
            interval_seconds=self.settings.poll_seconds,
            clock=self.clock,
        )

    def wait_until_slot_lag_below(self, source_region: str, source: str) -> LagSample:
        return actions.wait_until_slot_lag_below(
            self.clients,
            source_region,
            source,
            max_bytes=self.settings.switch_slot_lag_threshold_bytes,
            timeout_seconds=self.settings.catch_up_timeout_seconds,
            interval_seconds=self.settings.poll_seconds,
            clock=self.clock,
        )

    def pin_traffic_fence(self, fence: Mapping[str, Any], *, raised: bool) -> actions.Outcome:
        return actions.pin_traffic_fence(self.clients, fence, raised=raised)

    def traffic_fence_pinned(self, fence: Mapping[str, Any]) -> bool:
        return actions.traffic_fence_pinned(self.clients, fence)

    def wait_for_traffic_fence(self, fence: Mapping[str, Any], *, raised: bool, since: datetime) -> actions.Outcome:
        return actions.wait_for_traffic_fence(
            self.clients,
            fence,
            raised=raised,
            since=since,
            timeout_seconds=self.settings.fence_timeout_seconds,
            interval_seconds=self.settings.poll_seconds,
            clock=self.clock,
        )

    def start_batch_replication(
        self, region: str, source_bucket_arn: str, role_arn: str, token: str, description: str
    ) -> str:
        return actions.start_batch_replication(
            self.clients,
            region,
            account=actions.account_id(self.clients, region),
            source_bucket_arn=source_bucket_arn,
            role_arn=role_arn,
            token=token,
            description=description,
        )

    def find_batch_job(self, region: str, description: str) -> dict[str, Any] | None:
        with reaching(region):
            account = actions.account_id(self.clients, region)
        return actions.find_batch_job(self.clients, region, account=account, description=description)

    def describe_batch_job(self, region: str, job_id: str) -> dict[str, Any]:
        with reaching(region):
            account = actions.account_id(self.clients, region)
            return self.clients.client("s3control", region).describe_job(AccountId=account, JobId=job_id)["Job"]

    def wait_for_batch_job(self, region: str, job_id: str) -> dict[str, Any]:
        return actions.wait_for_batch_job(
            self.clients,
            region,
            account=actions.account_id(self.clients, region),
            job_id=job_id,
            timeout_seconds=self.settings.batch_replication_timeout_seconds,
            interval_seconds=max(self.settings.poll_seconds, 60),
            clock=self.clock,
        )

    def wait_until_writer(self, region: str, identifier: str) -> DatabaseInstance:
        return actions.wait_until_writer(
            self.clients,
            region,
            identifier,
            timeout_seconds=self.settings.promotion_timeout_seconds,
            interval_seconds=self.settings.poll_seconds,
            clock=self.clock,
        )

    def wait_until_replica_available(self, region: str, identifier: str, source_arn: str) -> DatabaseInstance:
        """A newly created cross-region replica: available and replicating from `source_arn`."""

        def probe() -> Observation[DatabaseInstance]:
            instance = self.describe_database(region, identifier)
            done = instance.role == readiness.REPLICA and instance.source == source_arn and instance.serving
            seen = f"{instance.role} in status {instance.status}" + (
                f" of {instance.source}" if instance.source else ""
            )
            return Observation(done, instance, seen)

        return wait_for(
            f"{identifier} in {region} to be an available replica of {source_arn}",
            probe,
            timeout_seconds=self.settings.replica_build_timeout_seconds,
            interval_seconds=max(self.settings.poll_seconds, 60),
            clock=self.clock,
        )

    def fail_over_global_datastore(self, global_id: str, region: str, group_id: str) -> actions.Outcome:
        return actions.fail_over_global_datastore(
            self.clients,
            global_id,
            region,
            group_id,
            timeout_seconds=self.settings.cache_timeout_seconds,
            interval_seconds=self.settings.poll_seconds,
            clock=self.clock,
        )

    def wait_until_member_associated(self, region: str, global_id: str, group_id: str) -> GlobalDatastore:
        """The group is a member of the datastore and associated (it syncs from the primary)."""

        def probe() -> Observation[GlobalDatastore]:
            datastore = self.describe_global_datastore(region, global_id)
            member = next((m for m in datastore.members if m.replication_group_id == group_id), None)
            if member is None:
                raise DrctlError(
                    f"cache group {group_id} is not a member of global datastore {global_id}",
                    hint=f"the failback switch needs it as a secondary: delete the stale group {group_id} (take a "
                    f"snapshot first if you want its keys) and create it again as a member with `aws elasticache "
                    f"create-replication-group --replication-group-id {group_id} --global-replication-group-id "
                    f"{global_id} ...`, then `pulumi import` it and rerun",
                )
            return Observation(member.status == "associated", datastore, f"member {group_id} is {member.status}")

        return wait_for(
            f"cache group {group_id} to be associated with {global_id}",
            probe,
            timeout_seconds=self.settings.cache_timeout_seconds,
            interval_seconds=self.settings.poll_seconds,
            clock=self.clock,
        )

    def snapshot_before_replacement(self, region: str, identifier: str) -> actions.Outcome:
        return actions.snapshot_before_replacement(
            self.clients, region, identifier, interval_seconds=max(self.settings.poll_seconds, 30), clock=self.clock
        )

    def notify(self, region: str, topic_arn: str, subject: str, message: Mapping[str, Any]) -> str:
        return actions.notify(self.clients, region, topic_arn, subject, message)


@dataclass
class DrContext:
    """Everything a DR runbook is built from."""

    stack: StackAdapter
    aws: DrAws
    clock: Clock
    settings: RunbookSettings = field(default_factory=RunbookSettings)
    evaluate: Callable[[Mapping[str, str], str], Evaluation] = cached_evaluation
    step_hook: Callable[[str], None] | None = None
    """Called with the step's name before each action (the sandbox's crash points)."""
    error_metrics: Callable[[str], LoadBalancerMetrics | None] | None = None
    """The (errors, requests) metrics of a region; default: its ALB from the stack outputs."""
    record_dr_state: Callable[[RunContext, Mapping[str, str]], None] | None = None
    """Writes the DR state authority (automation.dr_state); called before DR keys reach the stack config."""
    record_traffic_fence: Callable[[RunContext, bool], None] | None = None
    """Raises (True) or lowers the traffic fence in the DR state authority, which the fence publisher reads."""

    def config(self) -> PlatformConfig:
        return parse_config(self.stack.get_config())

    def evaluation(self, raw_config: Mapping[str, str] | None = None) -> Evaluation:
        config = self.stack.get_config() if raw_config is None else raw_config
        return self.evaluate(namespaced(config), short_stack_name(self.stack.fully_qualified_name))

    def step(self, name: str, action: Callable[[RunContext], Mapping[str, Any] | None], **options: Any) -> Step:
        """A runbook step whose action first passes the step hook."""

        def hooked(run: RunContext) -> Mapping[str, Any] | None:
            if self.step_hook is not None:
                self.step_hook(name)
            return action(run)

        return Step(name, hooked, **options)

    def write_config(self, run: RunContext, target: Mapping[str, str]) -> dict[str, str]:
        """Write only the keys that change; returns them."""
        current = self.stack.get_config()
        changed = {key: value for key, value in namespaced(target).items() if current.get(key) != value}
        if changed and self.record_dr_state is not None and dr_keys(changed):
            # The authority goes first: if the run dies in between, it is ahead and the run is unfinished,
            # and CI refuses to deploy while a run is unfinished.
            self.record_dr_state(run, {**current, **changed})
        if changed:
            self.stack.set_config(changed)
            run.log("config: " + ", ".join(f"{key.split(':', 1)[1]}={value}" for key, value in changed.items()))
        return changed

    def update(
        self,
        run: RunContext,
        targets: Sequence[str] | None,
        *,
        exclude: Sequence[str] | None = None,
        message: str,
        preview: ChangeSummary | None = None,
    ) -> UpdateResult:
        """A stack update behind the gates CI passes, stopped with its step.

        Everything it runs (the state export, the preview, the update) runs in the
        step's cancellation scope, with which the adapter registers how to stop it,
        so a timeout, Ctrl-C or a CI cancellation stops whichever is running and
        nothing new starts once the step is cancelled (automation.cancellation).
        Before the update: the gates of `preview_update`, and the preview must pass
        the policy pack (the adapter runs it with every preview) and the
        stateful-resource guard; an instance the update would promote that AWS
        already shows promoted (an interrupted update) is refreshed first
        (automation.runbooks.stale_promotions). The step's timeout is raised to the
        provider timeouts of what the update changes. `preview`: the one
        `preview_update` took of the same scope earlier in this run (a step of its
        own, so that it runs while the update waits for something else); taken here
        when None.
        """
        if preview is None:
            preview = self.preview_update(run, targets, exclude)
        changed = gate_preview(preview, exclude)
        refresh_promoted_replicas(self.stack, self.aws.describe_database, changed, run.log)
        required = provider_update_timeout(changed)
        if required:
            run.require_timeout(required[0], required[1])
        run.scope.refuse_if_cancelled(f"the update of {self.stack.fully_qualified_name}")
        result = self.stack.up(targets, exclude=exclude, on_output=run.log, message=message)
        run.log(f"update: {result.summary.describe()}")
        return result

    def preview_update(
        self, run: RunContext, targets: Sequence[str] | None, exclude: Sequence[str] | None = None
    ) -> ChangeSummary:
        """The preview an update of exactly this scope (targets and exclusions) is gated on.

        Before it: a pending create within the scope refuses the update (the engine
        drops pending updates and deletes by itself); what the engine would refresh
        whatever `--refresh` says is named, and refused in a region the run treats
        as down.
        """
        if targets is not None:
            run.record(TARGETS, list(targets))
        self.resolve_pending_operations(run, targets, exclude)
        self.check_refresh_before_update(run, targets, exclude)
        return self.stack.preview(targets, exclude=exclude)

    def resolve_pending_operations(
        self, run: RunContext, targets: Sequence[str] | None = None, exclude: Sequence[str] | None = None
    ) -> None:
        """Refuse an update that reaches a pending create, whose resource may exist outside the state.

        The engine itself would only warn, create the resource a second time, and
        drop the other pending operations (updates, deletes) by itself, which is
        why those are only reported (catalogue: pulumi-cli.pending-operations-warn-only).
        A pending create the update does not reach (the failed region's, during a
        failover) stays for later.
        """
        pending = self.stack.pending_operations()
        creates = [op for op in pending if op.creates and in_scope(op.urn, targets, exclude)]
        if creates:
            listed = "; ".join(f"{operation.urn} ({operation.kind})" for operation in creates)
            raise DrctlError(
                f"the stack state has {len(creates)} pending create(s) from an interrupted update that this update "
                f"would create again: {listed}. Each resource may exist in AWS without being in the state",
                hint=pending_create_commands(self.stack.fully_qualified_name, creates),
            )
        left = [op for op in pending if op.creates]
        others = [op for op in pending if not op.creates]
        if others:
            run.log(
                f"{len(others)} pending operation(s) of an interrupted update ("
                + ", ".join(f"{op.kind} {op.name}" for op in others)
                + "): the update drops them by itself"
            )
        if left:
            follow_up(
                run,
                f"pending create(s) this update does not reach stay in the state: {', '.join(op.urn for op in left)}."
                f" Once their region answers, check each in AWS, then drctl state clear-pending --stack "
                f"{self.stack.fully_qualified_name} --reason '...' (with --import URN=ID for one that exists)",
            )

    def check_refresh_before_update(
        self, run: RunContext, targets: Sequence[str] | None, exclude: Sequence[str] | None
    ) -> None:
        """Name what the engine refreshes before this update although drctl passes --refresh=false; refuse
        when that is in a region the run treats as down.

        catalogue: pulumi-cli.refresh-before-update-ignores-refresh-flag
        """
        urns = self.stack.refreshed_before_update(targets, exclude)
        if not urns:
            return
        declared = self.evaluation().by_urn()
        region_of = {urn: declared[urn].region if urn in declared else None for urn in urns}
        down = self.unreachable_regions(run)
        blocked = [urn for urn, region in region_of.items() if region in down]
        if blocked:
            raise DrctlError(
                f"the update would refresh {', '.join(blocked)} in {', '.join(sorted(down))}, which this run treats "
                "as down: their state says refreshBeforeUpdate (set by their provider, e.g. after a partial failure), "
                "which the engine honours whatever --refresh says, and a refresh there fails or records live "
                "resources as gone (pulumi #6468)",
                hint="nothing was changed; leave them out of the update (a failover's targets already do), or wait "
                "until the region answers",
            )
        warn(
            run,
            "the engine refreshes "
            + ", ".join(f"{urn} ({region_of[urn] or 'no region'})" for urn in urns)
            + " before the update although drctl passes --refresh=false (refreshBeforeUpdate in their state)",
        )

    def unreachable_regions(self, run: RunContext) -> set[str]:
        """The regions this run must not reach: an emergency failover's primary region."""
        return {self.config().primary_region} if run.parameters.mode == "emergency" else set()

    def offline_preview(self, target: Mapping[str, str], targets: Sequence[str] | None = None) -> str:
        """What an update to `target` would change, predicted offline (dry-run: nothing is called)."""
        changes = diff(self.evaluation(), self.evaluation(target)).effective()
        if targets is not None:
            allowed = set(targets)
            changes = [change for change in changes if change.urn in allowed]
        if not changes:
            return "no changes"
        counts: dict[str, int] = {}
        for change in changes:
            counts[change.operation.value] = counts.get(change.operation.value, 0) + 1
        regions = sorted({change.region for change in changes})
        return ", ".join(f"{n} to {op}" for op, n in sorted(counts.items())) + f" (in {', '.join(regions)})"

    def load_balancer_metrics(self, region: str) -> LoadBalancerMetrics | None:
        if self.error_metrics is not None:
            return self.error_metrics(region)
        entry = (self.stack.outputs().get("entryPoints") or {}).get(region) or {}
        suffix = entry.get("loadBalancer")
        return readiness.load_balancer_metrics(suffix) if suffix else None


# --- the gates before every drctl update -------------------------------------------------------------

# catalogue: rds.provider-update-timeout
PROVIDER_UPDATE_TIMEOUT_SECONDS = {"aws:rds/instance:Instance": 80 * 60}
"""pulumi-aws's default update timeouts (terraform-provider-aws) of the resources a DR update changes."""


def gate_preview(preview: ChangeSummary, exclude: Sequence[str] | None = None) -> list[ResourceStep]:
    """The preview's changed steps, or a DrctlError: an error diagnostic (policy violations included) or a
    stateful resource the update would delete or replace (the guard CI runs on `pulumi preview --json`)."""
    from automation.guard import check

    if preview.errors:
        raise DrctlError(
            "the preview before the update failed: " + " | ".join(d.describe() for d in preview.errors),
            hint="nothing was changed; fix the cause (a policy violation names its policy) and rerun",
        )
    excluded = set(exclude or ())
    steps = [step for step in preview.steps if step.urn not in excluded]
    verdict = check(steps)
    if not verdict.passed:
        blocked = ", ".join(f"{finding.effect} {finding.urn}" for finding in verdict.blocked)
        raise DrctlError(
            f"the update would {blocked}: the stateful-resource guard refuses it",
            hint="nothing was changed; a DR transition never deletes or replaces data. Check the config the run "
            "wrote (drctl state show) and the program version",
        )
    return [step for step in steps if step.op not in ("same", "read")]


def provider_update_timeout(changed: Sequence[ResourceStep]) -> tuple[float, str] | None:
    """The longest provider timeout among the changed resources, with what it comes from."""
    timeouts = [
        (PROVIDER_UPDATE_TIMEOUT_SECONDS[step.type], f"{step.type} {step.op} may take up to its provider timeout")
        for step in changed
        if step.type in PROVIDER_UPDATE_TIMEOUT_SECONDS
    ]
    return max(timeouts) if timeouts else None


# --- stack outputs ---------------------------------------------------------------------------


def output(outputs: Mapping[str, Any], *path: str) -> Any:
    """A value of the stack outputs contract, or a DrctlError naming what is missing."""
    value: Any = outputs
    for key in path:
        if not isinstance(value, Mapping) or value.get(key) is None:
            raise DrctlError(
                f"the stack outputs have no {'.'.join(path)}",
                hint="the stack has not been deployed with this program version. Outside an outage, deploy main "
                "through CI (the deploy workflow, behind drctl deploy-gate); during one, never run a full "
                "`pulumi up`: it would reach the failed region and skip drctl's gates",
            )
        value = value[key]
    return value


def route53_urns(evaluation: Evaluation, urns: Sequence[str]) -> list[str]:
    declared = evaluation.by_urn()
    return [urn for urn in urns if urn in declared and declared[urn].type.startswith(ROUTE53_TYPE_PREFIX)]


def dependents(evaluation: Evaluation, urns: Sequence[str]) -> list[str]:
    """`urns` and every resource that waits on them, directly or not, in declaration order."""
    found = set(urns)
    changed = True
    while changed:
        changed = False
        for resource in evaluation.resources:
            if resource.urn not in found and (found & set(resource.dependencies) or resource.parent in found):
                found.add(resource.urn)
                changed = True
    return [resource.urn for resource in evaluation.resources if resource.urn in found]


# --- warnings and follow-ups kept with the run ---------------------------------------------------


def warn(run: RunContext, text: str) -> None:
    _append(run, WARNINGS, text)
    run.log(f"WARNING: {text}")


def follow_up(run: RunContext, text: str) -> None:
    _append(run, FOLLOW_UPS, text)
    run.log(f"follow-up: {text}")


def not_recovered(run: RunContext, part: str, text: str, *, remedy: str) -> None:
    """A part the run could not recover, and what recovers it: a drill finding, a follow-up, a non-zero exit
    (see commands). The recorded text begins with `part` (the drill tells expected parts from unexpected ones by
    it) and ends with the remedy, so every place that shows it says what to run."""
    _append(run, NOT_RECOVERED, f"{part} {text}; to recover it: {remedy}")
    follow_up(run, remedy)
    run.log(f"NOT RECOVERED: {part} {text}")


def _append(run: RunContext, key: str, text: str) -> None:
    with _NOTES_LOCK:
        notes = list(run.measurement(key) or [])
        if text not in notes:
            run.record(key, [*notes, text])
