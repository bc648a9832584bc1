"""The Pulumi-facing part of drctl: a small adapter over `pulumi.automation`.

Runbooks depend on the `StackAdapter` protocol only; `PulumiStack` drives the
real CLI through the Automation API, `automation.stack_standin.StandInStack`
evaluates the program in-process for tests and the offline sandbox.

Rules the real adapter keeps, whatever the caller asks:
- it selects an existing stack by fully qualified name; creating one needs an
  explicit flag (a typo must not create an empty prod stack);
- it never refreshes (pulumi #6468: a refresh against an unreachable region
  fails or records live resources as gone): every preview and update passes
  `--refresh=false` explicitly and the CLI gets no `PULUMI_OPTION_*`
  variable, whatever the caller's environment says, and `Pulumi.yaml` must
  not turn refresh on either;
- the CLI's resource diagnostics (printed on stdout, not stderr) reach the
  error drctl raises;
- it can interrupt its own running update the way Ctrl-C does and wait until
  the CLI has exited and the stack is free (`cancel`);
- config is validated with `parse_config` on the merged result before a value
  is written;
- an empty target list is refused (to the CLI it would mean "everything").
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from automation.errors import DrctlError
from automation.journal import process_gone_on_this_host
from components.config import NAMESPACE, ConfigError, parse_config

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROJECT_NAME = "dr-platform"
_STACK_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")

OutputCallback = Callable[[str], Any]


@dataclass(frozen=True)
class ResourceStep:
    """One engine step of a preview or update: what happens to which URN."""

    urn: str
    op: str  # same | create | update | delete | replace | ... (pulumi.automation.OpType values)
    type: str = ""


@dataclass(frozen=True)
class Diagnostic:
    """An engine diagnostic: severity (error | warning | info ...), the resource it is about, the text."""

    severity: str
    message: str
    urn: str = ""

    def describe(self) -> str:
        subject = f"{self.urn.rsplit('::', 1)[-1]}: " if self.urn else ""
        return f"{self.severity}: {subject}{self.message.strip()}"


@dataclass(frozen=True)
class ChangeSummary:
    counts: Mapping[str, int]
    steps: tuple[ResourceStep, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")

    @property
    def changed(self) -> tuple[ResourceStep, ...]:
        return tuple(step for step in self.steps if step.op not in ("same", "read"))

    def describe(self) -> str:
        changed = {op: n for op, n in sorted(self.counts.items()) if op != "same" and n}
        if not changed:
            return "no changes"
        return ", ".join(f"{n} to {op}" for op, n in changed.items())


@dataclass(frozen=True)
class UpdateResult:
    summary: ChangeSummary
    outputs: Mapping[str, Any]


@dataclass(frozen=True)
class PendingOperation:
    """An operation an interrupted update started and never finished (pulumi #5377)."""

    urn: str
    kind: str  # creating | updating | deleting | reading | importing
    type: str = ""

    @property
    def creates(self) -> bool:
        """The cloud resource may exist without being in the state: clearing it blindly can duplicate it."""
        return self.kind in ("creating", "importing")


@dataclass(frozen=True)
class PendingOperationsReport:
    cleared: tuple[PendingOperation, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        if not self.cleared:
            return "no pending operations in the stack state"
        lines = [f"removed {len(self.cleared)} pending operation(s) from the stack state:"]
        lines += [f"  {op.kind} {op.urn}" for op in self.cleared]
        creating = [op.urn for op in self.cleared if op.creates]
        if creating:
            lines.append(
                "the cloud resource of each 'creating' entry may exist without being in the state: check it and "
                "`pulumi import` it (or delete it) before the next update creates a duplicate"
            )
        return "\n".join(lines)


class StackAdapter(Protocol):
    """What runbooks need from a Pulumi stack."""

    @property
    def fully_qualified_name(self) -> str: ...

    def get_config(self) -> dict[str, str]:
        """Raw config strings, keys prefixed with their namespace, as `parse_config` takes them."""
        ...

    def set_config(self, values: Mapping[str, str]) -> dict[str, str]:
        """Validate the merged config, then write `values`; returns the merged config."""
        ...

    def preview(
        self, targets: Sequence[str] | None = None, on_output: OutputCallback | None = None
    ) -> ChangeSummary: ...

    def up(
        self,
        targets: Sequence[str] | None,
        *,
        exclude: Sequence[str] | None = None,
        on_output: OutputCallback | None = None,
        message: str | None = None,
    ) -> UpdateResult:
        """Update; `targets=None` means the whole stack, a list means only those URNs (dependents off)."""
        ...

    def outputs(self) -> dict[str, Any]: ...

    def cancel(self) -> None:
        """Interrupt this adapter's running update and return once it has stopped and the stack is free."""
        ...

    def pending_operations(self) -> list[PendingOperation]: ...

    def clear_pending_operations(self) -> PendingOperationsReport: ...


# --- helpers shared by every implementation -------------------------------------------


def namespaced(values: Mapping[str, str]) -> dict[str, str]:
    """Keys without a namespace belong to the project's (`activeRegion` -> `dr-platform:activeRegion`)."""
    return {key if ":" in key else f"{NAMESPACE}:{key}": value for key, value in values.items()}


def validated_merge(current: Mapping[str, str], values: Mapping[str, str]) -> dict[str, str]:
    """The config after applying `values`, or a DrctlError naming the key: nothing is written."""
    merged = {**current, **namespaced(values)}
    try:
        parse_config(merged)
    except ConfigError as error:
        raise DrctlError(
            f"refusing to write config to the stack: {error}",
            hint="the stack config was left unchanged",
        ) from error
    return merged


def check_targets(targets: Sequence[str] | None) -> list[str] | None:
    if targets is None:
        return None
    if not targets:
        raise DrctlError(
            "an update with an empty target list would update the whole stack",
            hint="pass the URNs to update, or targets=None for a deliberate full update",
        )
    return list(targets)


def root_stack_urn(stack: str, project: str = PROJECT_NAME) -> str:
    """The URN of the root `pulumi:pulumi:Stack` resource, which holds the stack outputs."""
    return f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}"


def short_stack_name(fully_qualified_name: str) -> str:
    return fully_qualified_name.rsplit("/", 1)[-1]


def check_stack_name(fully_qualified_name: str) -> str:
    if not _STACK_NAME_RE.match(fully_qualified_name):
        raise DrctlError(
            f"stack name {fully_qualified_name!r} is not fully qualified",
            hint=f"use org/{PROJECT_NAME}/stack (for a self-managed backend: organization/{PROJECT_NAME}/prod)",
        )
    project = fully_qualified_name.split("/")[1]
    if project != PROJECT_NAME:
        raise DrctlError(f"stack {fully_qualified_name} belongs to project {project}, not {PROJECT_NAME}")
    return fully_qualified_name


# --- the real implementation -------------------------------------------------------------

# Every flag of the CLI can be set through PULUMI_OPTION_<FLAG>; an explicit flag wins.
# catalogue: pulumi-cli.option-environment-variables
OPTION_ENV_PREFIX = "PULUMI_OPTION_"
_OPERATIONS = frozenset({"up", "preview"})
CANCEL_GRACE_SECONDS = 120.0
"""After the first interrupt the CLI lets in-flight resource operations finish; how long to give them."""
TERMINATE_GRACE_SECONDS = 30.0


class DrctlPulumiCommand:
    """Runs the Pulumi CLI for the Automation API: drctl's flags only, and interruptible.

    It stands in for `pulumi.automation.PulumiCommand` (same `run` contract: a
    `CommandResult`, or the SDK's mapped `CommandError`) to keep the process
    handle, which the SDK does not expose: the Automation API has no way to
    interrupt a running `up`, and `Stack.cancel()` on a self-managed (S3)
    backend only deletes the lock file while the update goes on.
    """

    def __init__(self, root: str | None = None) -> None:
        from pulumi.automation import PulumiCommand

        checked = PulumiCommand(root=root)  # runs `pulumi version` and checks the SDK's minimum
        self.command: str = checked.command
        self.version = checked.version
        self._running: set[subprocess.Popen[str]] = set()
        self._mutex = threading.Lock()

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: Callable[[str], Any] | None = None,
        on_error: Callable[[str], Any] | None = None,
    ) -> Any:
        return _run_cli(self, cli_arguments(args), cwd, additional_env, on_output, on_error)

    @property
    def running(self) -> bool:
        with self._mutex:
            return any(process.poll() is None for process in self._running)

    def interrupt(self, grace_seconds: float, terminate_seconds: float) -> str:
        """Ctrl-C, then Ctrl-C again, then SIGKILL; returns how the running CLI ended ("" when none ran)."""
        # catalogue: pulumi-cli.sigint-cancels-gracefully
        with self._mutex:
            processes = [process for process in self._running if process.poll() is None]
        outcome = "cancelled" if processes else ""
        for process in processes:
            process.send_signal(signal.SIGINT)
            if _exited(process, grace_seconds):
                continue
            process.send_signal(signal.SIGINT)  # the second interrupt terminates: pending operations may stay
            outcome = "terminated"
            if not _exited(process, terminate_seconds):
                process.kill()  # catalogue: pulumi-cli.kill-leaves-lock-and-pending
                process.wait()
                outcome = "killed"
        return outcome


def _exited(process: subprocess.Popen[str], seconds: float) -> bool:
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def cli_arguments(args: Sequence[str]) -> list[str]:
    """drctl's arguments for the CLI: non-interactive, and `--refresh=false` on every preview and update."""
    # catalogue: pulumi-cli.refresh-flag-explicit
    head, separator, tail = _split_at_separator(list(args))
    if "--non-interactive" not in head:
        head.insert(0, "--non-interactive")
    words = [arg for arg in head if not arg.startswith("-")]
    if words and words[0] in _OPERATIONS:
        if any(arg == "--refresh" or arg.startswith("--refresh=") for arg in head):
            raise DrctlError("drctl never refreshes a stack (pulumi #6468); a --refresh reached the adapter")
        head.append("--refresh=false")
    return head + separator + tail


def cli_environment(additional_env: Mapping[str, str], command: str) -> dict[str, str]:
    """The CLI's environment: ours and the caller's, minus every PULUMI_OPTION_* (drctl passes its flags)."""
    env = {
        key: value for key, value in {**os.environ, **additional_env}.items() if not key.startswith(OPTION_ENV_PREFIX)
    }
    env["PULUMI_AUTOMATION_API"] = "true"
    if os.path.isabs(command):
        env["PATH"] = os.pathsep.join([os.path.dirname(command), env.get("PATH", "")])
    return env


def _split_at_separator(args: list[str]) -> tuple[list[str], list[str], list[str]]:
    if "--" in args:
        index = args.index("--")
        return args[:index], ["--"], args[index + 1 :]
    return args, [], []


def _run_cli(
    command: DrctlPulumiCommand,
    args: list[str],
    cwd: str,
    additional_env: Mapping[str, str],
    on_output: Callable[[str], Any] | None,
    on_error: Callable[[str], Any] | None,
) -> Any:
    from pulumi.automation._cmd import CommandResult
    from pulumi.automation.errors import create_command_error

    chunks: dict[str, list[str]] = {"stdout": [], "stderr": []}

    def consume(stream: Any, callback: Callable[[str], Any] | None, kept: list[str]) -> None:
        for line in iter(stream.readline, ""):
            stripped = line.rstrip()
            if callback is not None:
                callback(stripped)
            kept.append(stripped)
        stream.close()

    with subprocess.Popen(
        [command.command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=cli_environment(additional_env, command.command),
        encoding="utf-8",
    ) as process:
        with command._mutex:
            command._running.add(process)
        try:
            readers = [
                threading.Thread(target=consume, args=(process.stdout, on_output, chunks["stdout"]), daemon=True),
                threading.Thread(target=consume, args=(process.stderr, on_error, chunks["stderr"]), daemon=True),
            ]
            for reader in readers:
                reader.start()
            for reader in readers:
                reader.join()
            code = process.wait()
        finally:
            with command._mutex:
                command._running.discard(process)
    result = CommandResult(stdout="\n".join(chunks["stdout"]), stderr="\n".join(chunks["stderr"]), code=code)
    if code != 0:
        raise create_command_error(result)
    return result


class PulumiStack:
    """`StackAdapter` over `pulumi.automation` and the Pulumi CLI."""

    def __init__(
        self,
        stack: Any,
        fully_qualified_name: str,
        command: DrctlPulumiCommand | None = None,
        *,
        policy_packs: Sequence[str] = (),
        cancel_grace_seconds: float = CANCEL_GRACE_SECONDS,
        terminate_grace_seconds: float = TERMINATE_GRACE_SECONDS,
    ) -> None:
        self._stack = stack
        self._name = fully_qualified_name
        self._command = command
        self._policy_packs = list(policy_packs)
        self._cancel_grace = cancel_grace_seconds
        self._terminate_grace = terminate_grace_seconds

    @classmethod
    def select(
        cls,
        fully_qualified_name: str,
        project_dir: Path = PROJECT_DIR,
        *,
        create: bool = False,
        env_vars: Mapping[str, str] | None = None,
        policy_packs: Sequence[str] = (),
        cancel_grace_seconds: float = CANCEL_GRACE_SECONDS,
        terminate_grace_seconds: float = TERMINATE_GRACE_SECONDS,
        program: Callable[[], None] | None = None,
    ) -> PulumiStack:
        """Select an existing stack (or create it, only with `create=True`) on the project directory.

        `program` runs the program in this process (the Automation API's inline
        programs) instead of through the CLI's Python language host.
        """
        from pulumi import automation as auto

        check_stack_name(fully_qualified_name)
        _refuse_project_refresh(Path(project_dir))
        with _mapped_errors(fully_qualified_name, "select the stack"):
            command = DrctlPulumiCommand()
            workspace = auto.LocalWorkspace(
                work_dir=str(project_dir), env_vars=dict(env_vars or {}), pulumi_command=command, program=program
            )
            if create:
                stack = auto.Stack.create(fully_qualified_name, workspace)
            else:
                stack = auto.Stack.select(fully_qualified_name, workspace)
        return cls(
            stack,
            fully_qualified_name,
            command,
            policy_packs=policy_packs,
            cancel_grace_seconds=cancel_grace_seconds,
            terminate_grace_seconds=terminate_grace_seconds,
        )

    @property
    def fully_qualified_name(self) -> str:
        return self._name

    def get_config(self) -> dict[str, str]:
        with _mapped_errors(self._name, "read the stack config"):
            values = self._stack.get_all_config()
        return {key: value.value for key, value in values.items()}

    def set_config(self, values: Mapping[str, str]) -> dict[str, str]:
        from pulumi import automation as auto

        merged = validated_merge(self.get_config(), values)
        # Structured values are written as their JSON text; the program parses both forms alike.
        config = {key: auto.ConfigValue(value=value) for key, value in namespaced(values).items()}
        with _mapped_errors(self._name, "write the stack config"):
            self._stack.set_all_config(config)
        return merged

    def preview(self, targets: Sequence[str] | None = None, on_output: OutputCallback | None = None) -> ChangeSummary:
        events = _EventCollector()
        target_list = check_targets(targets)
        with _mapped_errors(self._name, "preview", events):
            result = self._stack.preview(
                target=target_list,
                target_dependents=False if target_list is not None else None,
                policy_packs=self._policy_packs or None,
                on_output=on_output,
                on_event=events,
            )
        return events.summary(result.change_summary)

    def up(
        self,
        targets: Sequence[str] | None,
        *,
        exclude: Sequence[str] | None = None,
        on_output: OutputCallback | None = None,
        message: str | None = None,
    ) -> UpdateResult:
        target_list = check_targets(targets)
        events = _EventCollector()

        def update() -> Any:
            events.clear()
            return self._stack.up(
                target=target_list,
                target_dependents=False if target_list is not None else None,
                exclude=list(exclude) if exclude else None,
                exclude_dependents=False if exclude else None,
                policy_packs=self._policy_packs or None,
                message=message,
                on_output=on_output,
                on_event=events,
            )

        result = self._locking("update", update, events, on_output)
        summary = events.summary(result.summary.resource_changes)
        return UpdateResult(summary=summary, outputs={key: value.value for key, value in result.outputs.items()})

    def _locking(
        self,
        action: str,
        call: Callable[[], Any],
        events: _EventCollector | None = None,
        on_output: OutputCallback | None = None,
    ) -> Any:
        """Run a command that takes the backend lock; once, retry after removing a dead holder's lock."""
        try:
            with _mapped_errors(self._name, action, events):
                return call()
        except DrctlError as error:
            if not self._remove_dead_holders_lock(error, on_output):
                raise
        with _mapped_errors(self._name, action, events):
            return call()

    def _remove_dead_holders_lock(self, error: DrctlError, on_output: OutputCallback | None) -> bool:
        """Remove the backend lock of a `pulumi` that died on this host (SIGKILL, a crash); True if it did.

        catalogue: pulumi-cli.kill-leaves-lock-and-pending. A holder on another
        host, or a live one, is never touched: that is somebody's update.
        """
        holders = _LOCK_HOLDER.findall(str(error.__cause__ or ""))
        if not holders or not all(process_gone_on_this_host(host, int(pid)) for host, pid in holders):
            return False
        if on_output is not None:
            on_output(f"removing the stack lock of a pulumi process that died on this host (pid {holders[0][1]})")
        with _mapped_errors(self._name, "remove a dead update's lock"):
            self._stack.cancel()
        return True

    def outputs(self) -> dict[str, Any]:
        with _mapped_errors(self._name, "read the stack outputs"):
            values = self._stack.outputs()
        return {key: value.value for key, value in values.items()}

    def cancel(self) -> None:
        """Interrupt the update this adapter runs, as Ctrl-C does, and wait until the CLI has exited.

        Never `pulumi cancel` while the CLI may still run: on a self-managed (S3)
        backend it only deletes the lock file and the update goes on
        (catalogue: pulumi-cli.diy-cancel-only-deletes-lock). Only after the
        CLI had to be killed, and so cannot release its own lock, does drctl
        remove that lock with `pulumi cancel`; the pending operations it left
        are resolved before the next update.
        """
        if self._command is None:
            return
        outcome = self._command.interrupt(self._cancel_grace, self._terminate_grace)
        if outcome == "killed":
            with _mapped_errors(self._name, "remove the killed update's lock"):
                self._stack.cancel()

    def pending_operations(self) -> list[PendingOperation]:
        with _mapped_errors(self._name, "export the stack state"):
            exported = self._stack.export_stack()
        return _pending_in(exported.deployment or {})

    def clear_pending_operations(self) -> PendingOperationsReport:
        """Export the state, drop its pending operations, import it back (the documented #5377 fix)."""
        from pulumi import automation as auto

        with _mapped_errors(self._name, "export the stack state"):
            exported = self._stack.export_stack()
        deployment = dict(exported.deployment or {})
        pending = _pending_in(deployment)
        if not pending:
            return PendingOperationsReport()
        deployment.pop("pending_operations", None)
        cleaned = auto.Deployment(version=exported.version, deployment=deployment)
        self._locking("import the cleaned stack state", lambda: self._stack.import_stack(cleaned))
        return PendingOperationsReport(cleared=tuple(pending))


def _refuse_project_refresh(project_dir: Path) -> None:
    settings_file = project_dir / "Pulumi.yaml"
    if not settings_file.exists():
        raise DrctlError(f"no Pulumi.yaml in {project_dir}", hint="run drctl from the dr-platform project directory")
    settings = yaml.safe_load(settings_file.read_text()) or {}
    if str((settings.get("options") or {}).get("refresh", "")).lower() == "always":
        raise DrctlError(
            f"{settings_file} sets options.refresh: always; drctl never refreshes (an outage makes refresh fail "
            "or forget live resources, pulumi #6468)",
            hint="remove options.refresh from Pulumi.yaml",
        )


def _pending_in(deployment: Mapping[str, Any]) -> list[PendingOperation]:
    return [
        PendingOperation(
            urn=(operation.get("resource") or {}).get("urn", "?"),
            kind=str(operation.get("type", "?")),
            type=(operation.get("resource") or {}).get("type", ""),
        )
        for operation in deployment.get("pending_operations") or []
    ]


class _EventCollector:
    """The engine events drctl keeps: each resource step and every diagnostic."""

    def __init__(self) -> None:
        self.steps: list[ResourceStep] = []
        self.diagnostics: list[Diagnostic] = []
        self._mutex = threading.Lock()

    def clear(self) -> None:
        with self._mutex:
            self.steps.clear()
            self.diagnostics.clear()

    def __call__(self, event: Any) -> None:
        pre = getattr(event, "resource_pre_event", None)
        diagnostic = getattr(event, "diagnostic_event", None)
        with self._mutex:
            if pre is not None and pre.metadata is not None:
                op = getattr(pre.metadata.op, "value", pre.metadata.op)
                self.steps.append(ResourceStep(urn=pre.metadata.urn, op=str(op), type=pre.metadata.type))
            if diagnostic is not None and diagnostic.severity in ("error", "warning"):
                self.diagnostics.append(
                    Diagnostic(severity=diagnostic.severity, message=diagnostic.message, urn=diagnostic.urn or "")
                )

    def summary(self, changes: Mapping[Any, int] | None) -> ChangeSummary:
        with self._mutex:
            return ChangeSummary(counts=_counts(changes), steps=tuple(self.steps), diagnostics=tuple(self.diagnostics))


def _counts(changes: Mapping[Any, int] | None) -> dict[str, int]:
    return {str(getattr(op, "value", op)): count for op, count in (changes or {}).items()}


@contextmanager
def _mapped_errors(stack: str, action: str, events: _EventCollector | None = None) -> Iterator[None]:
    """Turn Automation API and CLI failures into one DrctlError with a clear message and hint."""
    try:
        yield
    except DrctlError:
        raise
    except Exception as error:
        diagnostics = events.summary(None).errors if events is not None else ()
        raise map_pulumi_error(error, stack, action, diagnostics) from error


def map_pulumi_error(error: Exception, stack: str, action: str, diagnostics: Sequence[Diagnostic] = ()) -> DrctlError:
    from pulumi.automation import errors as auto_errors

    if isinstance(error, FileNotFoundError):
        return DrctlError(
            f"cannot {action} for {stack}: the Pulumi CLI is not installed (no `pulumi` on PATH)",
            hint="install the Pulumi CLI for real runs; offline: drctl plan, drctl drill --sandbox",
        )
    if isinstance(error, auto_errors.InvalidVersionError):
        return DrctlError(f"cannot {action} for {stack}: {error}", hint="upgrade the Pulumi CLI")
    if isinstance(error, auto_errors.StackNotFoundError):
        return DrctlError(
            f"stack {stack} does not exist in the current Pulumi backend",
            hint="check the name (org/project/stack) and `pulumi login` to the backend that holds it "
            "(during an outage: the DR-region state bucket); drctl creates stacks only with --create-stack",
        )
    if isinstance(error, auto_errors.StackAlreadyExistsError):
        return DrctlError(f"stack {stack} already exists", hint="select it instead of creating it")
    if isinstance(error, auto_errors.ConcurrentUpdateError):  # catalogue: pulumi-cli.diy-lock-refuses-second-update
        return DrctlError(
            f"cannot {action} for {stack}: another update holds the stack ({_lock_holder(_streams(error)[1])})",
            hint="wait for that update to finish. Remove its lock (`pulumi cancel`) only once you know its process "
            "is gone: on a self-managed backend `pulumi cancel` deletes the lock and stops nothing; drctl resolves "
            "the pending operations it left before its next update",
        )
    if isinstance(error, auto_errors.CommandError):
        return DrctlError(
            f"cannot {action} for {stack}: pulumi failed: {cli_failure_text(error, diagnostics)}",
            hint="rerun with --debug",
        )
    return DrctlError(f"cannot {action} for {stack}: {type(error).__name__}: {error}", hint="rerun with --debug")


def cli_failure_text(error: Any, diagnostics: Sequence[Diagnostic] = ()) -> str:
    """Why the CLI failed: its error diagnostics (events, else the stdout "Diagnostics:" block), then stderr."""
    # catalogue: pulumi-cli.diagnostics-on-stdout
    stdout, stderr = _streams(error)
    causes = [diagnostic.describe() for diagnostic in diagnostics]
    if not causes:
        causes = _stdout_errors(stdout)
    causes += _tail(stderr)
    return " | ".join(dict.fromkeys(causes)) or "the CLI printed no error"


def _streams(error: Exception) -> tuple[str, str]:
    """stdout and stderr of a CommandError, whose only carrier is its text ("code: .. stdout: .. stderr: ..")."""
    text = str(error)
    head, _, stderr = text.rpartition("\n stderr: ")
    _, _, stdout = head.partition("\n stdout: ")
    return stdout, stderr


def _stdout_errors(stdout: str, keep: int = 12) -> list[str]:
    """The CLI's "Diagnostics:" block from stdout (a message may span lines), else its `error:` lines."""
    block: list[str] = []
    inside = False
    for line in stdout.splitlines():
        if line.startswith("Diagnostics:"):
            inside = True
        elif inside and line and not line[0].isspace():
            inside = False
        elif inside and line.strip():
            block.append(line.strip())
    if not block:
        block = [line.strip() for line in stdout.splitlines() if line.strip().startswith("error:")]
    return block[-keep:]


def _tail(stderr: str, lines: int = 6) -> list[str]:
    kept = [line.strip() for line in stderr.splitlines() if line.strip()]
    return kept[-lines:]


_LOCK_HOLDER = re.compile(r"created by \S+@(\S+) \(pid (\d+)\)")


def _lock_holder(stderr: str) -> str:
    created = [line.strip() for line in stderr.splitlines() if "created by" in line]
    return "; ".join(created) or "a lock held by another process"
