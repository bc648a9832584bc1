"""The runbook engine: named steps with checks, a journal, a lock, timing and reports.

A runbook is data: a sequence of `Step`s and `Parallel` groups plus preflight
checks. The engine runs it against one stack:

- preflight checks (read-only) refuse the run before anything changes;
- each step: the "already done?" probe (then only the post-checks run), else
  pre-checks (refuse), the action, post-checks (verify);
- steps of a `Parallel` group run on threads at the same time, each once the
  steps of the group it waits for (`after`) have succeeded;
- every transition is written to the journal, so a run interrupted anywhere
  resumes at the step that did not finish, with the same parameters;
- a succeeded run repeated with the same parameters is a no-op that says so;
- dry-run prints the plan and runs only the read-only hooks (preflight,
  step previews), never an action, and writes nothing.

Runbook actions get a `RunContext`: parameters, the clock, `sleep`/`wait_until`
that respect the step's deadline, `record()` for run measurements (targets,
replica lag at promotion) that end up in the report.

Each step runs in its own cancellation scope (automation.cancellation): a
timeout, Ctrl-C (SIGINT) or a CI cancellation (SIGTERM) cancels it, which stops
whatever it started (a Pulumi CLI included), and the engine waits for the step
to return before anything else happens. A second signal hurries the stop.
Work that does not stop keeps the stack lock: nothing else may run against
the stack while it might still act.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from automation import cancellation
from automation.errors import DrctlError, ProcessStillRunningError
from automation.journal import (
    DEFAULT_HEARTBEAT_SECONDS,
    STALE_AFTER_HEARTBEATS,
    CheckRecord,
    Clock,
    CorruptJournalError,
    DocumentStore,
    Journal,
    LockLease,
    RunParameters,
    RunRecord,
    RunStatus,
    StackLock,
    StepRecord,
    StepStatus,
    SystemClock,
    iso,
    parse_iso,
)

SIMULATED_WATCH_SECONDS = 0.005
"""How often, in real seconds, a simulation's watchdog reads the run's clock."""

# Measurement keys the report knows about (others are reported as they are).
DATA_LOSS_WINDOW = "data_loss_window_seconds"
TARGETS = "targets"
DISRUPTION_STARTED_AT = "disruption_started_at"
"""A planned switch: when its write fence started; the RTO counts from there (report.py)."""


class CheckFailedError(Exception):
    """A check found the world not as the step needs it; the message says what it saw."""


class StepTimeoutError(Exception):
    pass


class StackStillBusyError(DrctlError):
    """A cancelled step's work (a Pulumi preview or update, a wait) did not stop: nothing else may run against
    the stack, and the engine keeps its lock."""


INTERRUPTED_EXIT = 130
"""A run stopped by SIGINT or SIGTERM exits like a shell command Ctrl-C stopped."""


_STOPPING = (StepStatus.REFUSED, StepStatus.FAILED, StepStatus.TIMED_OUT)


class _RefusedError(Exception):
    pass


CheckFunction = Callable[["RunContext"], str | None]
"""Returns an optional detail (e.g. "replica lag 3 s") or raises CheckFailedError."""


@dataclass(frozen=True)
class Check:
    name: str
    verify: CheckFunction
    description: str = ""


@dataclass(frozen=True)
class Step:
    """One named thing a runbook does.

    `already_done` answers "is the effect of this step already there?" so a
    repeated or resumed run does not do it twice. `preview` (read-only) shows
    in a dry-run what the step would change, e.g. a targeted stack preview.
    `verifies_recovery` marks the step whose end counts as "service verified"
    for the measured RTO.
    """

    name: str
    action: Callable[[RunContext], Mapping[str, Any] | None]
    description: str = ""
    pre_checks: tuple[Check, ...] = ()
    post_checks: tuple[Check, ...] = ()
    already_done: Callable[[RunContext], bool] | None = None
    timeout_seconds: float = 900.0
    preview: Callable[[RunContext], str] | None = None
    verifies_recovery: bool = False


@dataclass(frozen=True)
class Parallel:
    """Steps run at the same time, each as soon as the steps of the group it waits for have succeeded.

    `after` maps a step to the steps of the group it waits for (none: it starts with the group), so the
    group takes as long as its longest chain. A step whose dependency did not succeed is not started.
    """

    name: str
    steps: tuple[Step, ...]
    after: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = {step.name for step in self.steps}
        unknown = {f"{step} -> {dependency}" for step, deps in self.after.items() for dependency in (step, *deps)}
        unknown = sorted(pair for pair in unknown if not set(pair.split(" -> ")) <= names)
        if unknown:
            raise ValueError(f"group {self.name}: `after` names steps that are not in the group: {unknown}")
        done: set[str] = set()
        while len(done) < len(names):
            ready = {name for name in names - done if set(self.after.get(name, ())) <= done}
            if not ready:
                raise ValueError(f"group {self.name}: its steps wait for each other in a cycle: {sorted(names - done)}")
            done |= ready


@dataclass(frozen=True)
class Runbook:
    name: str
    description: str
    items: tuple[Step | Parallel, ...]
    preflight: tuple[Check, ...] = ()
    rto_target_seconds: int | None = None
    rpo_target_seconds: int | None = None
    rto_floor_seconds: float | None = None
    """The shortest RTO the runbook's dependency graph allows (automation.runbooks.graph), counted from where the
    run report counts the RTO (the write fence of a planned switch, else drctl's start)."""

    def __post_init__(self) -> None:
        names = [step.name for step, _ in self.steps()]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if not names or duplicates:
            raise ValueError(f"runbook {self.name} needs steps with unique names (duplicates: {duplicates})")

    def steps(self) -> Iterator[tuple[Step, str | None]]:
        """Every step with the name of its parallel group (None when it runs alone)."""
        for item in self.items:
            if isinstance(item, Parallel):
                for step in item.steps:
                    yield step, item.name
            else:
                yield item, None


class RunContext:
    """What a check or an action can use. One per step execution (deadline included)."""

    def __init__(
        self,
        *,
        stack: str,
        run_id: str,
        parameters: RunParameters,
        clock: Clock,
        output: Callable[[str], None],
        measurements: dict[str, Any],
        measurements_lock: threading.Lock,
        dry_run: bool = False,
        simulation: bool = False,
        step: str | None = None,
        deadline: datetime | None = None,
        started_at: datetime | None = None,
    ) -> None:
        self.started_at = started_at
        self.stack = stack
        self.run_id = run_id
        self.parameters = parameters
        self.clock = clock
        self.dry_run = dry_run
        self.simulation = simulation
        self.step = step
        self.deadline = deadline
        self.scope = cancellation.CancelScope(step or "")
        self.cancelled = self.scope.cancelled
        self._output = output
        self._measurements = measurements
        self._measurements_lock = measurements_lock

    def log(self, message: str) -> None:
        self._output(f"  [{self.step}] {message}" if self.step else f"  {message}")

    def on_timeout(self, stop: Callable[[], None]) -> Callable[[], None]:
        """Register how to stop work in flight if the step is cancelled (timed out or interrupted).

        The engine calls it when the deadline passes or a signal arrives, and then
        waits for the step to return before anything else runs. Returns a function
        that unregisters it. A Pulumi CLI the step starts registers itself.
        """
        return self.scope.register(stop)

    def stop_work_in_flight(self) -> list[str]:
        """Cancel the step's scope: run the registered stops; returns the errors they raised."""
        return self.scope.cancel()

    def require_timeout(self, seconds: float, why: str) -> None:
        """Give the step at least `seconds` from its start, e.g. the provider timeouts of what it updates."""
        if self.deadline is None or self.started_at is None:
            return
        required = self.started_at + timedelta(seconds=seconds)
        if required > self.deadline:
            self.deadline = required
            self.log(f"step timeout raised to {seconds:g} s: {why}")

    def record(self, key: str, value: Any) -> None:
        """Keep a measurement of the run (journaled, reported), e.g. the replica lag at promotion."""
        with self._measurements_lock:
            self._measurements[key] = value

    def measurement(self, key: str, default: Any = None) -> Any:
        with self._measurements_lock:
            return self._measurements.get(key, default)

    def sleep(self, seconds: float) -> None:
        """Sleep on the run's clock; raises StepTimeoutError instead of sleeping past the step's deadline."""
        if self.cancelled.is_set():
            raise StepTimeoutError(f"step {self.step} was cancelled after its timeout")
        if self.deadline is not None and self.clock.now() + timedelta(seconds=seconds) > self.deadline:
            raise StepTimeoutError(f"step {self.step} would run past its deadline {iso(self.deadline)}")
        self.clock.sleep(seconds)

    def wait_until(self, condition: Callable[[], bool], *, what: str, interval_seconds: float = 10.0) -> None:
        """Poll `condition` until true; the step's timeout bounds the wait."""
        while not condition():
            try:
                self.sleep(interval_seconds)
            except StepTimeoutError:
                raise StepTimeoutError(f"gave up waiting until {what}") from None


@dataclass
class RunOutcome:
    """What a call to `RunbookEngine.run` ended with (failures raise RunFailedError instead)."""

    run: RunRecord | None
    status: str  # succeeded | already-completed | planned
    message: str
    plan: list[str] = field(default_factory=list)
    report_keys: list[str] = field(default_factory=list)


class RunFailedError(DrctlError):
    """The run stopped in a journaled state (a failed, refused, timed-out or interrupted step)."""

    def __init__(self, run: RunRecord, message: str, hint: str, exit_code: int = 1) -> None:
        super().__init__(message, hint=hint, exit_code=exit_code)
        self.run = run


class _Interruption:
    """SIGINT/SIGTERM while a run holds the lock: the first cancels the running steps, the next ones hurry."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.event = threading.Event()
        self._scopes: set[cancellation.CancelScope] = set()
        self._mutex = threading.Lock()

    def handle(self, signum: int, _frame: Any) -> None:
        if self.event.is_set():
            with self._mutex:
                scopes = list(self._scopes)
            if not scopes:  # no step runs, so nothing of this run can still act: a repeated signal ends drctl
                raise KeyboardInterrupt
            for scope in scopes:
                scope.hurry.set()
            return
        self.signal_name = signal.Signals(signum).name
        self.event.set()

    def watching(self, scope: cancellation.CancelScope) -> Callable[[], None]:
        with self._mutex:
            self._scopes.add(scope)

        def forget() -> None:
            with self._mutex:
                self._scopes.discard(scope)

        return forget

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGINT and SIGTERM for the duration (only the main thread can; elsewhere nothing changes)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {signum: signal.signal(signum, self.handle) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


class RunbookEngine:
    """Runs runbooks against one stack, with its lock and journal in `store`."""

    def __init__(
        self,
        stack: str,
        store: DocumentStore,
        *,
        clock: Clock | None = None,
        output: Callable[[str], None] = print,
        simulation: bool = False,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
        stop_wait_seconds: float = 300.0,
        timeout_scale: float = 1.0,
        write_reports: bool = True,
    ) -> None:
        self.stack = stack
        self.store = store
        self.clock = clock or SystemClock()
        self.output = output
        self.simulation = simulation
        self.write_reports = write_reports
        self.heartbeat_seconds = heartbeat_seconds
        self.stop_wait_seconds = stop_wait_seconds
        """After a timeout stopped a step's work, how long to wait for the step to return."""
        self.timeout_scale = timeout_scale
        """Real seconds the wall-clock watchdog allows per second of step timeout (a simulation watches its clock)."""
        self.lock = StackLock(store, stack, self.clock, stale_after_seconds=heartbeat_seconds * STALE_AFTER_HEARTBEATS)
        self.journal = Journal(store)
        self._measurements_lock = threading.Lock()
        self._interruption = _Interruption()

    # --- entry points -----------------------------------------------------------

    def run(
        self,
        runbook: Runbook,
        parameters: RunParameters,
        *,
        dry_run: bool = False,
        abandon_unfinished: bool = False,
    ) -> RunOutcome:
        if dry_run:
            return self.plan(runbook, parameters)
        self._interruption = _Interruption()
        with self._interruption.installed():
            lease = self.lock.acquire(parameters.operator, runbook.name)
            lease.start_heartbeat(self.heartbeat_seconds)
            try:
                run, resumed = self._start_or_resume(runbook, parameters, abandon_unfinished)
                if run is None:
                    previous = self.journal.load()
                    assert previous is not None
                    message = (
                        f"{runbook.name} already completed on {self.stack} (run {previous.run_id}, finished "
                        f"{previous.finished_at}) with these parameters: nothing to do"
                    )
                    self.output(message)
                    return RunOutcome(run=previous, status="already-completed", message=message)
                return self._execute(runbook, run, resumed, lease)
            except StackStillBusyError:
                lease.keep_held()  # something of this run may still act on the stack: nobody else may start
                raise
            finally:
                lease.release()

    def plan(self, runbook: Runbook, parameters: RunParameters) -> RunOutcome:
        """Dry-run: describe what would run; call only read-only hooks; write nothing."""
        self._interruption = _Interruption()
        with self._interruption.installed():
            lines = self._plan_lines(runbook, parameters)
        for line in lines:
            self.output(line)
        if self._interruption.event.is_set():
            raise DrctlError(
                f"dry-run of {runbook.name} interrupted by {self._interruption.signal_name}",
                hint="nothing was changed",
                exit_code=INTERRUPTED_EXIT,
            )
        return RunOutcome(run=None, status="planned", message=f"planned {runbook.name}", plan=lines)

    def _plan_lines(self, runbook: Runbook, parameters: RunParameters) -> list[str]:
        lines = [f"runbook {runbook.name} on {self.stack} (dry-run: nothing will be changed)", runbook.description]
        try:
            previous = self.journal.load()
        except CorruptJournalError as error:
            lines.append(f"WOULD REFUSE: {error} ({error.hint})")
            previous = None
        if previous and not previous.finished and previous.runbook == runbook.name and previous.any_step_started:
            pending = [s.name for s in previous.steps if not s.status.done]
            lines.append(f"would resume run {previous.run_id} at {pending[0] if pending else '(verification)'}")
        context = self._context(
            RunRecord("dry-run", runbook.name, self.stack, parameters, iso(self.clock.now())), dry_run=True
        )
        lines.append("preflight:")
        for check in runbook.preflight:
            record = self._run_check(check, "preflight", context)
            mark = "ok" if record.passed else "REFUSES"
            lines.append(f"  [{mark}] {check.name}: {record.detail}")
        for number, item in enumerate(runbook.items, start=1):
            steps = item.steps if isinstance(item, Parallel) else (item,)
            if isinstance(item, Parallel):
                lines.append(f"{number}. in parallel ({item.name}):")
            for step in steps:
                indent = "   " if isinstance(item, Parallel) else ""
                label = f"{indent}{'-' if indent else f'{number}.'} {step.name}"
                lines.append(f"{label}: {step.description} (timeout {step.timeout_seconds:g} s)")
                if isinstance(item, Parallel) and item.after.get(step.name):
                    lines.append(f"{indent}     after: {', '.join(item.after[step.name])}")
                lines.extend(f"{indent}     pre-check: {check.name}" for check in step.pre_checks)
                lines.extend(f"{indent}     post-check: {check.name}" for check in step.post_checks)
                if step.preview is not None and not self._interruption.event.is_set():
                    lines.append(f"{indent}     {self._dry_run_preview(step, parameters)}")
        return lines

    # --- starting, resuming ----------------------------------------------------------

    def _start_or_resume(
        self, runbook: Runbook, parameters: RunParameters, abandon_unfinished: bool
    ) -> tuple[RunRecord | None, bool]:
        """The run to execute and whether it resumes one; (None, False) when already completed."""
        try:
            previous = self.journal.load()
        except CorruptJournalError:
            if not abandon_unfinished:
                raise
            kept = self.journal.quarantine()
            self.output(f"moved the unreadable journal aside to {kept}; starting anew")
            previous = None
        now = iso(self.clock.now())
        if previous is not None and not previous.finished:
            same = previous.runbook == runbook.name and not parameters.differences(previous.parameters)
            if same and previous.any_step_started:
                previous.attempts.append(_attempt(now, parameters))
                previous.status = RunStatus.RUNNING
                previous.error = None
                self.output(f"resuming {runbook.name} run {previous.run_id} (started {previous.started_at})")
                return previous, True
            if previous.any_step_started and not abandon_unfinished:
                raise DrctlError(
                    f"an unfinished {previous.runbook} run {previous.run_id} (started {previous.started_at} by "
                    f"{previous.parameters.operator}, {previous.status.value}) "
                    + _difference_text(runbook.name, previous, parameters),
                    hint="rerun it with the same parameters to resume it, or abandon it explicitly "
                    "(--abandon-unfinished) after checking what its done steps changed",
                )
            # Abandoned on request, or refused before any step: nothing of it needs resuming.
            previous.status = RunStatus.ABANDONED
            previous.finished_at = now
            self.journal.archive(previous)
            self.output(f"abandoned earlier {previous.runbook} run {previous.run_id}")
        elif (
            previous is not None
            and previous.status is RunStatus.SUCCEEDED
            and previous.runbook == runbook.name
            and not parameters.differences(previous.parameters)
        ):
            return None, False
        run = RunRecord(
            run_id=f"{runbook.name}-{self.clock.now().strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}",
            runbook=runbook.name,
            stack=self.stack,
            parameters=parameters,
            started_at=now,
            simulation=self.simulation,
            steps=[StepRecord(name=step.name, group=group) for step, group in runbook.steps()],
            attempts=[_attempt(now, parameters)],
        )
        return run, False

    # --- executing -----------------------------------------------------------------

    def _execute(self, runbook: Runbook, run: RunRecord, resumed: bool, lease: LockLease) -> RunOutcome:
        self._save(run)
        try:
            if not run.any_step_started:
                self._preflight(runbook, run)
            for item in runbook.items:
                self._stop_if_interrupted(runbook, run)
                lease.check()
                if isinstance(item, Parallel):
                    self._run_group(item, run)
                else:
                    self._run_step(item, None, run)
                self._stop_if_interrupted(runbook, run)
                steps = item.steps if isinstance(item, Parallel) else (item,)
                failed = [run.step(step.name) for step in steps if run.step(step.name).status in _STOPPING]
                if failed:
                    first = failed[0]
                    raise self._stop(
                        run,
                        RunStatus.FAILED,
                        f"{runbook.name} stopped at step {first.name} ({first.status.value}): {first.error}",
                        hint="fix the cause, then rerun the same command: the run resumes at this step",
                    )
            run.status = RunStatus.SUCCEEDED
            run.finished_at = iso(self.clock.now())
            self._save(run)
            self.journal.archive(run)
            keys = self._report(runbook, run)
            message = f"{runbook.name} succeeded on {self.stack} (run {run.run_id}{', resumed' if resumed else ''})"
            self.output(message)
            return RunOutcome(run=run, status="succeeded", message=message, report_keys=keys)
        except (RunFailedError, StackStillBusyError):
            self._report(runbook, run)
            raise
        except BaseException as error:
            # Whatever broke the engine itself (including Ctrl-C) still ends journaled.
            run.status = RunStatus.FAILED
            run.error = f"interrupted: {_describe(error)}"
            run.finished_at = iso(self.clock.now())
            for record in run.steps:
                if record.status is StepStatus.RUNNING:
                    record.status, record.error = StepStatus.FAILED, run.error
            self._save_quietly(run)
            raise

    def _preflight(self, runbook: Runbook, run: RunRecord) -> None:
        context = self._context(run)
        run.preflight = [self._run_check(check, "preflight", context) for check in runbook.preflight]
        refusals = [f"{check.name}: {check.detail}" for check in run.preflight if not check.passed]
        self._save(run)
        if refusals:
            raise self._stop(
                run,
                RunStatus.REFUSED,
                f"{runbook.name} refused by its preflight checks, nothing was changed: " + "; ".join(refusals),
                hint="fix what the checks report (or, where the runbook allows it, --force with a --reason)",
            )

    def _stop(self, run: RunRecord, status: RunStatus, message: str, hint: str, exit_code: int = 1) -> RunFailedError:
        run.status = status
        run.error = message
        run.finished_at = iso(self.clock.now())
        self._save(run)
        return RunFailedError(run, message, hint, exit_code)

    def _stop_if_interrupted(self, runbook: Runbook, run: RunRecord) -> None:
        """After SIGINT/SIGTERM: once every running step has stopped, the run ends journaled (exit 130)."""
        if not self._interruption.event.is_set():
            return
        stopped = [record.name for record in run.steps if record.error and record.error.startswith("interrupted")]
        at = f" at step {', '.join(stopped)}" if stopped else " between steps"
        raise self._stop(
            run,
            RunStatus.FAILED,
            f"{runbook.name} interrupted by {self._interruption.signal_name}{at}; what it had started was stopped "
            "before the lock was released",
            hint="rerun the same command to resume the run where it stopped",
            exit_code=INTERRUPTED_EXIT,
        )

    def _run_group(self, group: Parallel, run: RunRecord) -> None:
        # One thread per step, never a pool: a pool may run a second step on the
        # thread that just finished the first, which a latency clock (sandbox)
        # would rightly count as sequential.
        errors: dict[int, BaseException] = {}
        finished: set[str] = set()
        changed = threading.Condition()
        self.clock.now()  # the group starts where the item before it ended (a latency clock's lane)

        def run_step(index: int, step: Step) -> None:
            try:
                self._continue_after(group.after.get(step.name, ()), run)
                self._run_step(step, group.name, run)
            except BaseException as error:
                errors[index] = error
            finally:
                with changed:
                    finished.add(step.name)
                    changed.notify_all()

        waiting = dict(enumerate(group.steps))
        threads: list[threading.Thread] = []
        with changed:
            while waiting:
                ready = [(i, step) for i, step in waiting.items() if set(group.after.get(step.name, ())) <= finished]
                for index, step in ready:
                    del waiting[index]
                    if all(run.step(name).status.done for name in group.after.get(step.name, ())):
                        thread = threading.Thread(target=run_step, args=(index, step), name=f"{group.name}-{step.name}")
                        threads.append(thread)
                        thread.start()
                    else:  # a dependency failed or was not run: neither is this step (it stays pending)
                        finished.add(step.name)
                if waiting and not ready:
                    changed.wait()  # the group is acyclic: a running step will finish and free another
        for thread in threads:
            thread.join()
        if errors:
            raise errors[min(errors)]  # engine errors (journal write failures), not step failures

    def _continue_after(self, dependencies: Sequence[str], run: RunRecord) -> None:
        """A step that waited for others starts when the last of them finished, on a clock that models time.

        On the wall clock that moment has passed and nothing is slept; a latency clock (the sandbox) would
        otherwise start the step where the group started.
        """
        ends = [run.step(name).finished_at for name in dependencies]
        latest = max((parse_iso(end) for end in ends if end), default=None)
        if latest is None:
            return
        behind = (latest - self.clock.now()).total_seconds()
        if behind > 0:
            self.clock.sleep(behind)

    def _run_step(self, step: Step, group: str | None, run: RunRecord) -> None:
        record = run.step(step.name)
        if record.status.done:
            self.output(f"- {step.name}: done in an earlier attempt, skipped")
            return
        started = self.clock.now()
        record.status = StepStatus.RUNNING
        record.started_at, record.finished_at, record.duration_seconds = iso(started), None, None
        record.attempts += 1
        record.error = None
        record.checks = []
        self._save(run)
        self.output(f"- {step.name}: started")

        context = self._context(
            run, step, deadline=started + timedelta(seconds=step.timeout_seconds), started_at=started
        )
        checks: list[CheckRecord] = []
        try:
            outcome = self._supervise(context, lambda: self._step_body(step, context, checks))
        except StackStillBusyError as busy:
            record.status, record.error = StepStatus.TIMED_OUT, str(busy)
            record.finished_at = iso(self.clock.now())
            raise self._stop_busy(run, step, busy) from None
        error = outcome.get("error")
        if error is None:
            record.status, record.detail = outcome["value"][0], dict(outcome["value"][1] or {})
        elif isinstance(error, ProcessStillRunningError):
            record.status, record.error = StepStatus.FAILED, _describe(error)
            record.finished_at = iso(self.clock.now())
            raise self._stop_busy(run, step, error)
        elif isinstance(error, _InterruptedError):
            record.status, record.error = StepStatus.FAILED, f"interrupted: {error}"
        elif isinstance(error, StepTimeoutError):
            record.status, record.error = StepStatus.TIMED_OUT, f"timed out: {error}"
        elif isinstance(error, _RefusedError):
            record.status, record.error = StepStatus.REFUSED, f"pre-check refused: {error}"
        elif isinstance(error, CheckFailedError):
            record.status, record.error = StepStatus.FAILED, f"post-check failed: {error}"
        elif isinstance(error, Exception):
            record.status, record.error = StepStatus.FAILED, _describe(error)
        else:  # KeyboardInterrupt, SystemExit inside an action: journal, then let it through
            record.status, record.error = StepStatus.FAILED, f"interrupted: {_describe(error)}"
        finished_at = self.clock.now()
        record.checks = list(checks)
        record.finished_at = iso(finished_at)
        record.duration_seconds = round((finished_at - started).total_seconds(), 3)
        if record.status.done and step.verifies_recovery:
            run.verified_at = record.finished_at
        self._save(run)
        self.output(f"- {step.name}: {record.status.value} in {record.duration_seconds:g} s" + _suffix(record.error))
        if error is not None and not isinstance(error, Exception):
            raise error

    def _supervise(self, context: RunContext, work: Callable[[], Any]) -> dict[str, Any]:
        """Run `work` on a thread in the context's cancellation scope: {"value": ...} or {"error": ...}.

        When the (possibly raised) timeout passes or a signal arrives, the scope is
        cancelled, which stops what the work started, and the engine waits for the
        work to return; a StackStillBusyError when it does not within `stop_wait_seconds`.
        """
        outcome: dict[str, Any] = {}
        finished = threading.Event()

        def body() -> None:
            with cancellation.opened(context.scope):
                try:
                    outcome["value"] = work()
                except BaseException as error:
                    outcome["error"] = error
                finally:
                    finished.set()

        forget = self._interruption.watching(context.scope)
        try:
            threading.Thread(target=body, name=f"step-{context.step}", daemon=True).start()
            why = self._wait_for_step(context, finished)
            if why is None:
                return outcome
            self.output(f"- {context.step}: {why}; stopping the work in flight before anything else runs")
            problems = context.stop_work_in_flight()
            stopped = "its work in flight was stopped" + (f" ({'; '.join(problems)})" if problems else "")
            if finished.wait(self.stop_wait_seconds):
                if "error" in outcome and isinstance(outcome["error"], ProcessStillRunningError):
                    return outcome
                if why.startswith("interrupted"):
                    return {"error": _InterruptedError(f"{why}; {stopped}")}
                return {"error": StepTimeoutError(f"no result after {record_timeout(context):g} s; {stopped}")}
            raise StackStillBusyError(
                f"{why} and its work did not stop within {self.stop_wait_seconds:g} s"
                + (f": {'; '.join(problems)}" if problems else ""),
                hint=_BUSY_HINT,
            )
        finally:
            forget()

    def _wait_for_step(self, context: RunContext, finished: threading.Event) -> str | None:
        """Wait until the step finishes (None), its (possibly raised) timeout passes or a signal arrives (why it
        must stop).

        The timeout on the wall clock; in a simulation on the run's clock, whose modelled time real time does not
        follow (the sandbox's AWS answers in milliseconds what takes AWS minutes): the step is late once the
        clock stands past its deadline.
        """
        if self.simulation:
            while not finished.wait(SIMULATED_WATCH_SECONDS):
                if self._interruption.event.is_set():
                    return f"interrupted by {self._interruption.signal_name}"
                if context.deadline is not None and self.clock.now() > context.deadline:
                    return f"timed out after {record_timeout(context):g} s on the run's clock"
            return None
        began = time.monotonic()
        while True:
            allowed = record_timeout(context) * self.timeout_scale
            if finished.wait(max(0.0, min(allowed - (time.monotonic() - began), 0.2))):
                return None
            if self._interruption.event.is_set():
                return f"interrupted by {self._interruption.signal_name}"
            if time.monotonic() - began >= allowed:
                return f"timed out after {record_timeout(context):g} s"

    def _stop_busy(self, run: RunRecord, step: Step, cause: DrctlError) -> StackStillBusyError:
        message = (
            f"step {step.name} was stopped but what it started (a Pulumi preview or update, a plugin, a wait) may "
            f"still be running ({cause}): the run stops here, nothing else (no rollback) runs against the stack, "
            "and drctl keeps the stack lock"
        )
        run.status, run.error, run.finished_at = RunStatus.FAILED, message, iso(self.clock.now())
        self._save_quietly(run)
        return StackStillBusyError(message, hint=_BUSY_HINT)

    def _dry_run_preview(self, step: Step, parameters: RunParameters) -> str:
        """A step's read-only preview, bounded by the step's timeout and stopped like the step would be."""
        started = self.clock.now()
        context = self._context(
            RunRecord("dry-run", step.name, self.stack, parameters, iso(started)),
            step,
            deadline=started + timedelta(seconds=step.timeout_seconds),
            started_at=started,
            dry_run=True,
        )
        assert step.preview is not None
        preview = step.preview
        outcome = self._supervise(context, lambda: preview(context))
        if "error" in outcome:
            return f"preview failed: {_describe(outcome['error'])}"
        return f"would change: {outcome['value']}"

    def _step_body(
        self, step: Step, context: RunContext, checks: list[CheckRecord]
    ) -> tuple[StepStatus, Mapping[str, Any] | None]:
        if step.already_done is not None:
            done = step.already_done(context)
            verdict = "already done" if done else "not done yet"
            checks.append(CheckRecord("already-done", "probe", True, verdict, iso(context.clock.now())))
            if done:
                self._verify(step, context, checks)
                return StepStatus.ALREADY_DONE, {"skipped": "its effect was already in place"}
        for check in step.pre_checks:
            record = self._run_check(check, "pre", context)
            checks.append(record)
            if not record.passed:
                raise _RefusedError(f"{check.name}: {record.detail}")
        detail = step.action(context)
        self._verify(step, context, checks)
        return StepStatus.SUCCEEDED, detail

    def _verify(self, step: Step, context: RunContext, checks: list[CheckRecord]) -> None:
        for check in step.post_checks:
            record = self._run_check(check, "post", context)
            checks.append(record)
            if not record.passed:
                raise CheckFailedError(f"{check.name}: {record.detail}")

    def _run_check(self, check: Check, kind: str, context: RunContext) -> CheckRecord:
        try:
            detail = check.verify(context) or "ok"
            passed = True
        except StepTimeoutError:
            raise
        except CheckFailedError as failure:
            detail, passed = str(failure), False
        except Exception as error:
            detail, passed = f"could not check: {_describe(error)}", False
        return CheckRecord(check.name, kind, passed, detail, iso(context.clock.now()))

    def _context(
        self,
        run: RunRecord,
        step: Step | None = None,
        deadline: datetime | None = None,
        dry_run: bool = False,
        started_at: datetime | None = None,
    ) -> RunContext:
        return RunContext(
            stack=self.stack,
            run_id=run.run_id,
            parameters=run.parameters,
            clock=self.clock,
            output=self.output,
            measurements=run.measurements,
            measurements_lock=self._measurements_lock,
            dry_run=dry_run,
            simulation=self.simulation,
            step=step.name if step else None,
            deadline=deadline,
            started_at=started_at,
        )

    def _report(self, runbook: Runbook, run: RunRecord) -> list[str]:
        if not self.write_reports:
            return []
        from automation.report import build_report, save_reports

        try:
            return save_reports(self.store, build_report(run, runbook))
        except Exception as error:  # the journal already holds the truth; a report must not mask it
            self.output(f"warning: could not write the run report: {_describe(error)}")
            return []

    def _save(self, run: RunRecord) -> None:
        # Steps running on other threads record measurements; serialise a consistent copy.
        with self._measurements_lock:
            self.journal.save(run)

    def _save_quietly(self, run: RunRecord) -> None:
        try:
            self._save(run)
        except Exception as error:
            self.output(f"warning: could not journal the interruption of {run.run_id}: {_describe(error)}")


_BUSY_HINT = (
    "find what still runs (`ps -eo pid,pgid,args | grep pulumi`; a Pulumi Cloud update in the console) and wait "
    "for it or stop it. Once none is left, release the lock drctl kept (drctl break-lock --reason '...') and "
    "rerun the same command: the run resumes at this step"
)


class _InterruptedError(Exception):
    """The step was stopped because drctl got SIGINT or SIGTERM."""


def _attempt(at: str, parameters: RunParameters) -> dict[str, str]:
    """Who started or resumed the run, when, and from which checkout (recorded, never compared)."""
    return {"at": at, "operator": parameters.operator, **parameters.attempt}


def record_timeout(context: RunContext) -> float:
    assert context.deadline is not None and context.started_at is not None
    return (context.deadline - context.started_at).total_seconds()


def _describe(error: BaseException) -> str:
    """The error as the journal keeps it; a DrctlError's hint says what recovers, so it is kept too."""
    text = str(error)
    described = f"{type(error).__name__}: {text}" if text else type(error).__name__
    hint = getattr(error, "hint", None) if isinstance(error, DrctlError) else None
    return f"{described} (what to do: {hint})" if hint else described


def _suffix(error: str | None) -> str:
    return f" ({error})" if error else ""


def _difference_text(runbook: str, previous: RunRecord, parameters: RunParameters) -> str:
    if previous.runbook != runbook:
        return f"must be finished or abandoned before {runbook} can start"
    changed: Sequence[str] = parameters.differences(previous.parameters)
    old, new = previous.parameters.to_dict(), parameters.to_dict()
    listed = ", ".join(f"{key} {old[key]!r} -> {new[key]!r}" for key in changed)
    return f"was started with other parameters ({listed})"
