"""`SandboxStack`: the in-process stand-in stack, with each update applied to moto.

`automation.stack_standin.StandInStack` does the engine's part (config
validation, evaluation, the diff, targets, protection, pending operations).
This wrapper applies the steps an update changed to moto through the
sandbox's clients as the engine runs them: each step once the steps of the
resources it depends on are done, independent steps at the same time (a
record change beside a promotion), so an update costs its overhead plus its
longest chain of resource operations (catalogue:
pulumi-cli.update-runs-independent-steps-in-parallel). It charges the clock
what the CLI costs: a preview, an update's overhead, each config or outputs
read (`automation.timings`; catalogue: pulumi-cli.engine-run-time). Targets are respected for free: a step outside the
targets is "same" and applies nothing. When a step fails (its region is
down), it and the steps that depend on it are taken back out of the
stand-in's state, the stack outputs stay as they were, and the update
raises, as a Pulumi update that fails on one resource does.

An update can be held (`hold_next_update`): it keeps running on the modelled
clock, holding the stack, until it has run its time or is cancelled
(`cancel`). Every update that starts while another is still running is
counted in `concurrent_updates` and refused, as the real stack lock refuses it:
a runbook that gives up on a step must cancel the update and wait until the
stack is free before it updates again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from automation.errors import DrctlError
from automation.sandbox.apply import AppliedChange, MotoApplier
from automation.sandbox.clock import LatencyClock
from automation.stack import (
    RDS_INSTANCE_TYPE,
    ChangeSummary,
    OutputCallback,
    PendingOperation,
    PendingOperationsReport,
    RecordedReplica,
    UpdateResult,
)
from automation.stack_standin import StandInStack
from automation.timings import Op

OutputsRewriter = Callable[[Mapping[str, Any]], dict[str, Any]]


class SimulatedCrash(BaseException):
    """The runner dies mid-step (crash-resume), or mid-update. A BaseException, so the engine journals it and
    lets it through."""


HOLD_REAL_PAUSE_SECONDS = 0.002
"""Real seconds a held update pauses per modelled minute, so a watchdog can see it still running at scale 0."""


class SandboxStack:
    """A `StackAdapter` whose cloud is moto."""

    def __init__(
        self, standin: StandInStack, applier: MotoApplier, clock: LatencyClock, rewrite_outputs: OutputsRewriter
    ) -> None:
        self.standin = standin
        self.applier = applier
        self.clock = clock
        self._rewrite_outputs = rewrite_outputs
        self._outputs: dict[str, Any] = {}
        self.applied: list[AppliedChange] = []
        self.concurrent_updates = 0
        """Updates started while another was still running: each one a race on real infrastructure."""
        self._running = 0
        self._hold_seconds = 0.0
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._kill_after_promotion = False

    def hold_next_update(self, seconds: float) -> None:
        with self._lock:
            self._hold_seconds = seconds

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._running > 0

    @property
    def fully_qualified_name(self) -> str:
        return self.standin.fully_qualified_name

    def get_config(self) -> dict[str, str]:
        self.clock.charge(Op.PULUMI_CLI_CALL)
        return self.standin.get_config()

    def set_config(self, values: Mapping[str, str]) -> dict[str, str]:
        self.clock.charge(Op.PULUMI_CLI_CALL)
        return self.standin.set_config(values)

    def preview(
        self,
        targets: Sequence[str] | None = None,
        on_output: OutputCallback | None = None,
        *,
        exclude: Sequence[str] | None = None,
    ) -> ChangeSummary:
        self.clock.charge(Op.PULUMI_PREVIEW)
        return self.standin.preview(targets, on_output, exclude=exclude)

    def outputs(self) -> dict[str, Any]:
        """What `pulumi stack output` returns, at the cost of a CLI run: what runbooks read."""
        self.clock.charge(Op.PULUMI_CLI_CALL)
        return self.current_outputs()

    def current_outputs(self) -> dict[str, Any]:
        """The same outputs for the sandbox's own models, which read them for free."""
        return dict(self._outputs)

    def cancel(self) -> None:
        """Stop a running (held) update, as `pulumi cancel` does; the stand-in's record follows."""
        self._cancelled.set()
        self.standin.cancel()

    def pending_operations(self) -> list[PendingOperation]:
        return self.standin.pending_operations()

    def refreshed_before_update(self, targets: Sequence[str] | None, exclude: Sequence[str] | None = None) -> list[str]:
        return self.standin.refreshed_before_update(targets, exclude)

    def resolve_pending_creates(self, imports: Mapping[str, str] | None = None) -> PendingOperationsReport:
        return self.standin.resolve_pending_creates(imports)

    def replicas_in_state(self) -> dict[str, RecordedReplica]:
        return self.standin.replicas_in_state()

    def refresh(self, targets: Sequence[str], *, on_output: OutputCallback | None = None, message: str) -> None:
        """Read each targeted RDS instance in moto: one that is no longer a replica loses `replicateSourceDb` in
        the state, as the provider's read records it (catalogue: pulumi-aws.promotion-follows-the-recorded-source).
        """
        self.clock.charge(Op.STACK_UPDATE_OVERHEAD)
        for urn in targets:
            resource = self.standin.state.get(urn)
            if resource is None or resource.type != RDS_INSTANCE_TYPE:
                continue
            rds = self.applier.client("rds", resource)
            live = rds.describe_db_instances(DBInstanceIdentifier=resource.inputs["identifier"])["DBInstances"][0]
            if not live.get("ReadReplicaSourceDBInstanceIdentifier"):
                inputs = {k: v for k, v in resource.inputs.items() if k != "replicateSourceDb"}
                self.standin.state[urn] = replace(resource, inputs=inputs)
            if on_output is not None:
                on_output(f"  sandbox: refreshed {urn}")

    def kill_next_update_after_promotion(self) -> None:
        """The runner dies while the next update runs, right after RDS accepted a promotion: the state keeps
        the replica's record and a pending update, as a killed `pulumi up` leaves them."""
        with self._lock:
            self._kill_after_promotion = True

    def up(
        self,
        targets: Sequence[str] | None,
        *,
        exclude: Sequence[str] | None = None,
        on_output: OutputCallback | None = None,
        message: str | None = None,
    ) -> UpdateResult:
        with self._lock:
            if self._running:
                self.concurrent_updates += 1
                raise DrctlError(
                    f"cannot update {self.fully_qualified_name}: another update is running and holds the stack lock "
                    "(ConcurrentUpdateError)",
                    hint="cancel that update and wait until the stack is free, or wait until it ends",
                )
            self._running += 1
            hold, self._hold_seconds = self._hold_seconds, 0.0
            self._cancelled.clear()
        try:
            return self._up(targets, exclude, on_output, message, hold)
        finally:
            with self._lock:
                self._running -= 1

    def _up(
        self,
        targets: Sequence[str] | None,
        exclude: Sequence[str] | None,
        on_output: OutputCallback | None,
        message: str | None,
        hold: float,
    ) -> UpdateResult:
        waited = 0.0
        while waited < hold:
            if self._cancelled.is_set():
                raise DrctlError(f"the update of {self.fully_qualified_name} was cancelled after {waited:g} s")
            step = min(60.0, hold - waited)
            self.clock.sleep(step)
            waited += step
            # A real pause per modelled minute: a watchdog on the modelled clock sees the update still running.
            self._cancelled.wait(HOLD_REAL_PAUSE_SECONDS)
        before = dict(self.standin.state)
        self.clock.charge(Op.STACK_UPDATE_OVERHEAD)
        result = self.standin.up(targets, exclude=exclude, on_output=on_output, message=message)
        after = dict(self.standin.state)
        changed = list(result.summary.changed)
        applied, failures = self._apply_as_the_engine_does(changed, before, after)
        for position, change in enumerate(applied):
            self.applied.append(change)
            if on_output is not None:
                on_output(f"  sandbox: {change.op} {change.type} {change.detail}")
            if self._kill_after_promotion and change.detail.startswith("promoted"):
                # The runner dies as RDS accepts the promotion: the engine recorded only what finished before it.
                self._kill_after_promotion = False
                finished = {done.urn for done in applied[:position]}
                self._forget([step for step in changed if step.urn not in finished], before)
                self.standin.pending.append(PendingOperation(change.urn, "updating", change.type))
                raise SimulatedCrash(
                    f"the runner died during the update of {self.fully_qualified_name}: {change.detail}"
                )
        if failures:
            self._forget([step for step in changed if step.urn not in {c.urn for c in applied}], before)
            step, error = failures[0]
            raise DrctlError(
                f"cannot update for {self.fully_qualified_name}: {step.op} of {step.urn} failed: {error}",
                hint="the resources updated before it keep their new state; rerun the update once the cause is "
                "fixed, or target the update away from an unreachable region",
            ) from error
        if targets is None or self.standin.root_urn in targets:
            self._outputs = self._rewrite_outputs(result.outputs)
        return UpdateResult(summary=result.summary, outputs=self.current_outputs())

    def _apply_as_the_engine_does(
        self, changed: Sequence[Any], before: Mapping[str, Any], after: Mapping[str, Any]
    ) -> tuple[list[AppliedChange], list[tuple[Any, Exception]]]:
        """Each step on a thread of its own once the steps it depends on are done; deletes last, in reverse.

        Returns what was applied (in the engine's order) and the failures; a step
        whose dependency failed is not run.
        """
        urns = {step.urn for step in changed}
        outcomes: dict[str, AppliedChange | Exception | None] = {}
        threads: dict[str, threading.Thread] = {}

        def apply(step: Any, waits_for: list[str]) -> None:
            for urn in waits_for:
                threads[urn].join()
            self.clock.join([threads[urn] for urn in waits_for])
            if any(not isinstance(outcomes.get(urn), AppliedChange) for urn in waits_for):
                outcomes[step.urn] = None
                return
            try:
                outcomes[step.urn] = self.applier.apply(step.op, before.get(step.urn), after.get(step.urn))
            except Exception as error:
                outcomes[step.urn] = error

        ordered = [s for s in changed if s.op != "delete"] + [s for s in reversed(changed) if s.op == "delete"]
        for step in ordered:
            declared = after.get(step.urn) or before.get(step.urn)
            waits_for = [urn for urn in getattr(declared, "dependencies", ()) if urn in threads and urn in urns]
            if step.op == "delete":  # deletes wait for every other step, as the engine runs them last
                waits_for = [urn for urn in threads if urn not in waits_for] + waits_for
            threads[step.urn] = threading.Thread(
                target=apply, args=(step, waits_for), name=f"update-{step.urn.rsplit('::', 1)[-1]}"
            )
            threads[step.urn].start()
        for thread in threads.values():
            thread.join()
        self.clock.join(list(threads.values()))
        applied = [o for s in changed if isinstance(o := outcomes.get(s.urn), AppliedChange)]
        failures = [(s, o) for s in changed if isinstance(o := outcomes.get(s.urn), Exception)]
        return applied, failures

    def _forget(self, steps: Sequence[Any], before: Mapping[str, Any]) -> None:
        """The engine records only finished operations: undo the stand-in's record of the rest."""
        for step in steps:
            if step.urn in before:
                self.standin.state[step.urn] = before[step.urn]
            else:
                self.standin.state.pop(step.urn, None)
