"""An in-process `StackAdapter` for tests and the offline sandbox.

The program is evaluated offline (`automation.evaluate`) for every preview and
update; the previous evaluation is the stand-in's "state", so an update reports
creates, updates, replacements and deletes by URN and applies only the
difference, and only within its targets. It behaves like the engine where
runbooks depend on it:

- a target URN that is neither declared nor in the state is an error;
- untargeted changes are left undone (the old state is kept);
- deleting or replacing a protected resource fails the update;
- stack outputs follow every update, targeted or not
  (catalogue: pulumi-cli.targeted-update-updates-outputs);
- an interrupted update leaves a pending operation; the next update drops a
  pending update or delete by itself and keeps a pending create, whose
  resource it would create a second time: an update that reaches one fails
  here (catalogue: pulumi-cli.pending-operations-warn-only);
  `resolve_pending_creates` drops them (and adopts the ones named);
- resources listed in `refresh_before_update` are refreshed by any update
  whose scope reaches them (catalogue: pulumi-cli.refresh-before-update-ignores-refresh-flag);
- an update holds the stack's lock while it runs, and goes on running when
  its caller gives up waiting; a second update meanwhile is refused with the
  backend's lock error, and every such attempt is counted in
  `concurrent_stack_updates` (catalogue: pulumi-cli.diy-lock-refuses-second-update);
- `cancel()` works as drctl's real adapter does: it interrupts the running
  update, whose steps in flight finish (catalogue: pulumi-cli.sigint-cancels-gracefully),
  and returns once the update has stopped and the lock is free; an update
  registers that cancel with its step's cancellation scope and does not start
  in a cancelled one (automation.cancellation).

Every call is recorded (`calls`, `config_changes`, `updates`) for tests to
assert on; failures can be injected into the Nth update (`fail_up`) and the
Nth update made to run for a while (`slow_up`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from automation import cancellation
from automation.changes import changed_properties, replace_reasons
from automation.errors import DrctlError
from automation.evaluate import DeclaredResource, Evaluation, evaluate_program
from automation.stack import (
    PROJECT_NAME,
    ChangeSummary,
    OutputCallback,
    PendingOperation,
    PendingOperationsReport,
    ResourceStep,
    UpdateResult,
    check_stack_name,
    check_targets,
    in_scope,
    namespaced,
    root_stack_urn,
    short_stack_name,
    validated_merge,
)
from components.config import parse_config

Evaluator = Callable[[Mapping[str, str]], Evaluation]
UpdateWait = Callable[[float, threading.Event], bool]
"""How a slow update spends its time: wait `seconds` unless the event (cancel) is set first; True if cancelled."""

_EVALUATION_LOCK = threading.Lock()  # the evaluator drives Pulumi's process-wide runtime settings
_EVALUATIONS: dict[tuple[str, tuple[tuple[str, str], ...]], Evaluation] = {}


def cached_evaluation(config: Mapping[str, str], stack: str = "prod") -> Evaluation:
    """Evaluate the program once per distinct config: it is a pure function of the config."""
    key = (stack, tuple(sorted(namespaced(config).items())))
    with _EVALUATION_LOCK:
        if key not in _EVALUATIONS:
            _EVALUATIONS[key] = evaluate_program(dict(key[1]), stack=stack)
        return _EVALUATIONS[key]


_PENDING_KIND = {"create": "creating", "update": "updating", "replace": "creating", "delete": "deleting"}
"""The pending operation the engine journals before each step (a replacement starts with its create)."""


@dataclass(frozen=True)
class StackCall:
    method: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UpdateRecord:
    targets: tuple[str, ...] | None
    exclude: tuple[str, ...] | None
    summary: ChangeSummary | None
    error: str | None = None


class StandInStack:
    """A `StackAdapter` whose "cloud" is the last applied evaluation of the program."""

    def __init__(
        self,
        config: Mapping[str, str],
        *,
        name: str = f"organization/{PROJECT_NAME}/prod",
        evaluate: Evaluator | None = None,
        deployed: bool = True,
        wait: UpdateWait | None = None,
    ) -> None:
        self._name = check_stack_name(name)
        self._stack = short_stack_name(name)
        self._config = namespaced(config)
        parse_config(self._config)
        self._evaluate = evaluate or (lambda raw: cached_evaluation(raw, self._stack))
        self._mutex = threading.RLock()
        self.state: dict[str, DeclaredResource] = {}
        self._outputs: dict[str, Any] = {}
        self.pending: list[PendingOperation] = []
        self.refresh_before_update: set[str] = set()
        """URNs whose state says refreshBeforeUpdate (a provider's partial failure sets it)."""
        self.refreshed: list[str] = []
        """Every URN an update refreshed although drctl never asks for a refresh."""
        self.calls: list[StackCall] = []
        self.config_changes: list[dict[str, str]] = []
        self.updates: list[UpdateRecord] = []
        self._up_failures: dict[int, str] = {}
        self._slow_updates: dict[int, float] = {}
        self._wait: UpdateWait = wait or (lambda seconds, cancelled: cancelled.wait(seconds))
        self._backend_lock = threading.Lock()
        """The backend's stack lock: held by the update that runs."""
        self._cancel_requested = threading.Event()
        self._attempts = 0
        self.concurrent_stack_updates = 0
        """Updates started while another was still running (each refused with the lock error)."""
        if deployed:
            evaluation = self._evaluate(self._config)
            self.state = evaluation.by_urn()
            self._outputs = dict(evaluation.outputs)

    # --- test controls -------------------------------------------------------------

    def fail_up(self, nth: int, kind: str = "error") -> None:
        """Make the Nth `up` from now fail: "error" changes nothing, "interrupt" stops halfway."""
        if kind not in ("error", "interrupt"):
            raise ValueError(f"unknown failure kind {kind!r}")
        self._up_failures[self._attempts + nth] = kind

    def slow_up(self, nth: int, seconds: float) -> None:
        """Make the Nth `up` from now keep running (and holding the lock) for `seconds` before it applies."""
        self._slow_updates[self._attempts + nth] = seconds

    @property
    def update_running(self) -> bool:
        return self._backend_lock.locked()

    @property
    def root_urn(self) -> str:
        return root_stack_urn(self._stack)

    # --- StackAdapter -------------------------------------------------------------------

    @property
    def fully_qualified_name(self) -> str:
        return self._name

    def get_config(self) -> dict[str, str]:
        with self._mutex:
            self.calls.append(StackCall("get_config"))
            return dict(self._config)

    def set_config(self, values: Mapping[str, str]) -> dict[str, str]:
        with self._mutex:
            self.calls.append(StackCall("set_config", {"values": dict(values)}))
            merged = validated_merge(self._config, values)
            self._config = merged
            self.config_changes.append(namespaced(values))
            return dict(merged)

    def preview(
        self,
        targets: Sequence[str] | None = None,
        on_output: OutputCallback | None = None,
        *,
        exclude: Sequence[str] | None = None,
    ) -> ChangeSummary:
        with self._mutex:
            self.calls.append(StackCall("preview", {"targets": _tuple(targets), "exclude": _tuple(exclude)}))
            desired = self._evaluate(self._config).by_urn()
            steps = self._plan(desired, check_targets(targets), set(exclude or ()))
            summary = _summary(steps)
            _emit(on_output, f"preview of {self._name}: {summary.describe()}")
            return summary

    def up(
        self,
        targets: Sequence[str] | None,
        *,
        exclude: Sequence[str] | None = None,
        on_output: OutputCallback | None = None,
        message: str | None = None,
    ) -> UpdateResult:
        scope = cancellation.current()
        if scope is not None:
            scope.refuse_if_cancelled(f"the update of {self._name}")
        with self._mutex:
            self.calls.append(
                StackCall("up", {"targets": _tuple(targets), "exclude": _tuple(exclude), "message": message})
            )
            self._attempts += 1
            attempt = self._attempts
        if not self._backend_lock.acquire(blocking=False):
            with self._mutex:
                self.concurrent_stack_updates += 1
                error = DrctlError(
                    f"cannot update for {self._name}: another update holds the stack (the stand-in's lock)",
                    hint="wait for that update to finish",
                )
                self.updates.append(UpdateRecord(_tuple(targets), _tuple(exclude), None, str(error)))
            raise error
        unregister = scope.register(self.cancel) if scope is not None else (lambda: None)
        try:
            result = self._up(attempt, check_targets(targets), list(exclude or ()), on_output)
        except DrctlError as error:
            with self._mutex:
                self.updates.append(UpdateRecord(_tuple(targets), _tuple(exclude), None, str(error)))
            raise
        finally:
            unregister()
            self._cancel_requested.clear()
            self._backend_lock.release()
        with self._mutex:
            self.updates.append(UpdateRecord(_tuple(targets), _tuple(exclude), result.summary))
        return result

    def outputs(self) -> dict[str, Any]:
        with self._mutex:
            self.calls.append(StackCall("outputs"))
            return dict(self._outputs)

    def cancel(self) -> None:
        """Interrupt the running update (its steps in flight finish) and return once the lock is free."""
        with self._mutex:
            self.calls.append(StackCall("cancel"))
        if not self._backend_lock.locked():
            return
        self._cancel_requested.set()
        with self._backend_lock:
            pass

    def pending_operations(self) -> list[PendingOperation]:
        with self._mutex:
            self.calls.append(StackCall("pending_operations"))
            return list(self.pending)

    def refreshed_before_update(self, targets: Sequence[str] | None, exclude: Sequence[str] | None = None) -> list[str]:
        with self._mutex:
            self.calls.append(StackCall("refreshed_before_update", {"targets": _tuple(targets)}))
            return sorted(urn for urn in self.refresh_before_update if in_scope(urn, targets, exclude))

    def resolve_pending_creates(self, imports: Mapping[str, str] | None = None) -> PendingOperationsReport:
        with self._mutex:
            self.calls.append(StackCall("resolve_pending_creates", {"imports": dict(imports or {})}))
            creates = [op for op in self.pending if op.creates]
            unknown = sorted(set(imports or {}) - {op.urn for op in creates})
            if unknown:
                raise DrctlError(f"--import {unknown[0]}: no pending create of that URN in {self._name}")
            desired = self._evaluate(self._config).by_urn()
            for urn in imports or {}:
                self.state[urn] = desired[urn]  # adopted as the program declares it
            self.pending = [op for op in self.pending if not op.creates]
            return PendingOperationsReport(cleared=tuple(creates), imported=dict(imports or {}))

    # --- the engine, in miniature ------------------------------------------------------------

    def _up(
        self, attempt: int, targets: list[str] | None, exclude: list[str], on_output: OutputCallback | None
    ) -> UpdateResult:
        with self._mutex:
            duplicates = [op.urn for op in self.pending if op.creates and in_scope(op.urn, targets, exclude)]
            if duplicates:
                raise DrctlError(
                    f"cannot update for {self._name}: creating {duplicates[0]} failed: it already exists (a pending "
                    "create of an interrupted update, created a second time)"
                )
            self.refreshed += [urn for urn in self.refresh_before_update if in_scope(urn, targets, exclude)]
            self.pending = [op for op in self.pending if op.creates]  # the update drops the others by itself
            evaluation = self._evaluate(self._config)
            desired = evaluation.by_urn()
            steps = self._plan(desired, targets, set(exclude))
            changed = [step for step in steps if step.op != "same"]
            failure = self._up_failures.pop(attempt, None)
            if failure == "error":
                raise DrctlError(f"cannot update for {self._name}: injected failure before any change")
            if failure == "interrupt":
                done, interrupted = changed[: len(changed) // 2], changed[len(changed) // 2 :]
                self._apply(done, desired)
                self.pending += [PendingOperation(s.urn, _PENDING_KIND[s.op], s.type) for s in interrupted[:1]]
                raise DrctlError(
                    f"cannot update for {self._name}: update interrupted after {len(done)} of {len(changed)} change(s)"
                )
        delay = self._slow_updates.pop(attempt, 0.0)
        if delay and self._wait(delay, self._cancel_requested):
            with self._mutex:
                self._apply(changed, desired)  # the steps in flight finish; nothing new starts
            raise DrctlError(f"cannot update for {self._name}: pulumi failed: error: update canceled")
        with self._mutex:
            self._apply(changed, desired)
            self._outputs = dict(evaluation.outputs)  # catalogue: pulumi-cli.targeted-update-updates-outputs
        summary = _summary(steps)
        _emit(on_output, f"update of {self._name}: {summary.describe()}")
        return UpdateResult(summary=summary, outputs=dict(self._outputs))

    def _plan(
        self, desired: Mapping[str, DeclaredResource], targets: list[str] | None, exclude: set[str] | None
    ) -> list[ResourceStep]:
        known = set(desired) | set(self.state) | {self.root_urn}
        unknown = [urn for urn in [*(targets or ()), *(exclude or ())] if urn not in known]
        if unknown:
            raise DrctlError(f"cannot update for {self._name}: target {unknown[0]} does not exist in the stack")
        steps: list[ResourceStep] = []
        for urn in [*desired, *(urn for urn in self.state if urn not in desired)]:
            op = _operation(self.state.get(urn), desired.get(urn))
            in_scope = (targets is None or urn in targets) and urn not in (exclude or ())
            if not in_scope:
                op = "same"
            elif op in ("delete", "replace") and self.state[urn].protect:
                raise DrctlError(
                    f"cannot update for {self._name}: {urn} is protected and the update would {op} it",
                    hint="protected resources are only deleted or replaced on purpose (pulumi state unprotect)",
                )
            resource = desired.get(urn) or self.state[urn]
            steps.append(ResourceStep(urn=urn, op=op, type=resource.type))
        return steps

    def _apply(self, steps: Sequence[ResourceStep], desired: Mapping[str, DeclaredResource]) -> None:
        for step in steps:
            if step.op == "delete":
                del self.state[step.urn]
            else:
                self.state[step.urn] = desired[step.urn]


def _operation(old: DeclaredResource | None, new: DeclaredResource | None) -> str:
    """The engine's step for one URN, predicted the same way as `drctl plan` (automation.changes)."""
    if old is None:
        return "create"
    if new is None:
        return "delete"
    changed = changed_properties(old.inputs, new.inputs, new.ignore_changes)
    if not changed:
        return "same"
    return "replace" if replace_reasons(new.type, changed, new.replace_on_changes) else "update"


def _summary(steps: Sequence[ResourceStep]) -> ChangeSummary:
    counts: dict[str, int] = {}
    for step in steps:
        counts[step.op] = counts.get(step.op, 0) + 1
    return ChangeSummary(counts=counts, steps=tuple(steps))


def _tuple(values: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


def _emit(on_output: OutputCallback | None, line: str) -> None:
    if on_output is not None:
        on_output(line)
