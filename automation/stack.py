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
  not turn refresh on either; what the engine refreshes anyway
  (`refreshBeforeUpdate` in the state) is reported before an update;
- a policy pack is used only if its interpreter can run it (without its
  virtualenv the CLI hangs at "Loading policy packs");
- the CLI's resource diagnostics (printed on stdout, not stderr) and policy
  violations reach the error drctl raises;
- every CLI process runs in its own session, so a terminal's Ctrl-C reaches
  drctl only, which stops the CLI the way the step's cancellation says
  (Ctrl-C, a second Ctrl-C, then SIGKILL of the CLI and the plugins it
  started) and returns only once none of them runs;
- no state is ever imported: pending operations are left to the engine or
  resolved with the CLI's own refresh and import, so no decrypted state is
  written to a temporary file;
- config is validated with `parse_config` on the merged result before a value
  is written;
- an empty target list is refused (to the CLI it would mean "everything").
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from automation import cancellation
from automation.errors import DrctlError, ProcessStillRunningError
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
    """The stack outputs after the update: the program's new ones even when the root stack was no target
    (catalogue: pulumi-cli.targeted-update-updates-outputs)."""


@dataclass(frozen=True)
class PendingOperation:
    """An operation an interrupted update started and never finished (pulumi #5377)."""

    urn: str
    kind: str  # creating | updating | deleting | reading | importing
    type: str = ""
    parent: str = ""
    provider: str = ""
    """The provider reference as the state holds it (`<provider URN>::<id>`)."""

    @property
    def creates(self) -> bool:
        """The cloud resource may exist without being in the state; the engine keeps these until resolved."""
        return self.kind == "creating"

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


@dataclass(frozen=True)
class PendingOperationsReport:
    cleared: tuple[PendingOperation, ...] = field(default_factory=tuple)
    imported: Mapping[str, str] = field(default_factory=dict)
    """URN -> cloud id of each cleared create that was adopted with `pulumi import`."""

    def describe(self) -> str:
        if not self.cleared:
            return "no pending creates in the stack state"
        lines = [f"dropped {len(self.cleared)} pending create(s) from the stack state:"]
        lines += [
            f"  {op.urn}" + (f" (imported as {self.imported[op.urn]})" if op.urn in self.imported else "")
            for op in self.cleared
        ]
        return "\n".join(lines)


class StackAdapter(Protocol):
    """What runbooks need from a Pulumi stack.

    Whatever an adapter runs for a caller inside a cancellation scope (automation.cancellation), it registers
    with that scope how to stop it, and it starts nothing in a scope already cancelled.
    """

    @property
    def fully_qualified_name(self) -> str: ...

    def get_config(self) -> dict[str, str]:
        """Raw config strings, keys prefixed with their namespace, as `parse_config` takes them."""
        ...

    def set_config(self, values: Mapping[str, str]) -> dict[str, str]:
        """Validate the merged config, then write `values`; returns the merged config."""
        ...

    def preview(
        self,
        targets: Sequence[str] | None = None,
        on_output: OutputCallback | None = None,
        *,
        exclude: Sequence[str] | None = None,
    ) -> ChangeSummary:
        """Preview exactly the scope `up` would get: the same targets and exclusions."""
        ...

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
        """Interrupt this adapter's running CLI and return once it has stopped and the stack is free."""
        ...

    def pending_operations(self) -> list[PendingOperation]: ...

    def refreshed_before_update(self, targets: Sequence[str] | None, exclude: Sequence[str] | None = None) -> list[str]:
        """URNs an update of this scope would refresh whatever `--refresh` says (`refreshBeforeUpdate`)."""
        ...

    def resolve_pending_creates(self, imports: Mapping[str, str] | None = None) -> PendingOperationsReport:
        """Drop the pending creates from the state, then adopt each resource of `imports` (URN -> cloud id)."""
        ...


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


def in_scope(urn: str, targets: Sequence[str] | None, exclude: Sequence[str] | None) -> bool:
    """Whether an update of `targets` (None: all) minus `exclude` reaches `urn` (dependents off)."""
    return (targets is None or urn in targets) and urn not in (exclude or ())


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


def pending_create_commands(stack: str, creates: Sequence[PendingOperation]) -> str:
    """How an operator resolves pending creates with the CLI itself, touching only what they name.

    catalogue: pulumi-cli.pending-operations-warn-only, pulumi-cli.import-pending-creates-drops-the-record
    """
    clear = " ".join(clear_pending_command(stack))
    lines = [
        "check each in AWS (a failover's are in the surviving region). If none exists: drctl state clear-pending "
        f"--stack {stack} --reason '...', which takes the drctl lock and runs `{clear}`"
        " (the root stack is its only target: it reads nothing from any region). For one that exists, add "
        "--import URN=ID to that command, which then adopts it with:"
    ]
    lines += [f"  {' '.join(import_command(stack, op, '<ID>'))}" for op in creates]
    lines.append(
        "never `pulumi refresh --import-pending-creates`: this CLI drops the record without importing. "
        "Then rerun the same drctl command (the run resumes)"
    )
    return "\n".join(lines)


def clear_pending_command(stack: str) -> list[str]:
    """`pulumi refresh` that only drops the pending creates: its one target is the root stack, in no region."""
    root = root_stack_urn(short_stack_name(stack))
    return [
        "pulumi",
        "refresh",
        "--stack",
        stack,
        "--yes",
        "--skip-preview",
        "--non-interactive",
        "--clear-pending-creates",
        "--target",
        root,
    ]


def import_command(stack: str, op: PendingOperation, cloud_id: str) -> list[str]:
    """`pulumi import` of a pending create's resource under its own parent and provider, code generation off."""
    command = ["pulumi", "import", "--stack", stack, "--yes", "--non-interactive", "--generate-code=false"]
    if op.parent:
        command += ["--parent", op.parent]
    if op.provider:
        command += ["--provider", op.provider.rsplit("::", 1)[0]]
    return [*command, op.type, op.name, cloud_id]


# --- the real implementation -------------------------------------------------------------

# Every flag of the CLI can be set through PULUMI_OPTION_<FLAG>; array flags add to the command line's.
# catalogue: pulumi-cli.option-environment-variables
OPTION_ENV_PREFIX = "PULUMI_OPTION_"
_OPERATIONS = frozenset({"up", "preview"})
CANCEL_GRACE_SECONDS = 120.0
"""After the first interrupt the CLI lets in-flight resource operations finish; how long to give them."""
TERMINATE_GRACE_SECONDS = 30.0
KILL_WAIT_SECONDS = 10.0
"""After SIGKILL (or the CLI's exit), how long the CLI's plugins get to be gone."""
_DESCENDANT_POLL_SECONDS = 0.5
EXPORT_REUSE_SECONDS = 10.0


class _Supervised:
    """One running CLI: the process and every plugin it started (each in a process group of its own)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.descendants: dict[int, Any] = {}
        self._snapshot_at = 0.0
        self.killed = False

    def snapshot(self, at_most_every: float = 0.0) -> None:
        """Remember the CLI's descendants while it runs: once it dies, they are orphans nobody else stops."""
        import psutil

        if time.monotonic() - self._snapshot_at < at_most_every:
            return
        self._snapshot_at = time.monotonic()
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            return
        for child in children:
            self.descendants.setdefault(child.pid, child)

    def exited_within(self, seconds: float, hurry: threading.Event | None) -> bool:
        """Wait for the CLI to exit; False after `seconds`, or at once when `hurry` is set (and consumed)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.process.wait(min(0.1, max(0.0, deadline - time.monotonic())))
                return True
            except subprocess.TimeoutExpired:
                self.snapshot(at_most_every=_DESCENDANT_POLL_SECONDS)
                if hurry is not None and hurry.is_set():
                    hurry.clear()
                    return False
        return self.process.poll() is not None

    def signal_group(self, signum: int) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def reap(self, wait_seconds: float) -> list[Any]:
        """Stop the descendants still alive (their CLI is gone); returns those that survived `wait_seconds`."""
        import psutil

        alive = [child for child in self.descendants.values() if _running(child)]
        for child in alive:
            try:
                child.kill()
            except psutil.Error:
                continue
        _, survivors = psutil.wait_procs(alive, timeout=wait_seconds)
        return survivors


def _running(process: Any) -> bool:
    import psutil

    try:
        return bool(process.is_running()) and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class DrctlPulumiCommand:
    """Runs the Pulumi CLI for the Automation API: drctl's flags only, interruptible, plugins included.

    It stands in for `pulumi.automation.PulumiCommand` (same `run` contract: a
    `CommandResult`, or the SDK's mapped `CommandError`) to keep the process
    handle, which the SDK does not expose: the Automation API has no way to
    interrupt a running `up`, and `Stack.cancel()` on a self-managed (S3)
    backend only deletes the lock file while the update goes on. The contract
    is an SDK internal, which is why requirements.txt pins the SDK exactly.
    """

    def __init__(
        self,
        root: str | None = None,
        *,
        cancel_grace_seconds: float = CANCEL_GRACE_SECONDS,
        terminate_grace_seconds: float = TERMINATE_GRACE_SECONDS,
        kill_wait_seconds: float = KILL_WAIT_SECONDS,
    ) -> None:
        from pulumi.automation import PulumiCommand

        checked = PulumiCommand(root=root)  # runs `pulumi version` and checks the SDK's minimum
        self.command: str = checked.command
        self.version = checked.version
        self.cancel_grace_seconds = cancel_grace_seconds
        self.terminate_grace_seconds = terminate_grace_seconds
        self.kill_wait_seconds = kill_wait_seconds
        self.killed_pids: set[int] = set()
        """CLIs of this process that died without their cleanup (their backend lock stays)."""
        self.on_killed: Callable[[int], None] | None = None
        """Called with the pid of a CLI this command had to kill, once its plugins are gone too."""
        self._running: dict[subprocess.Popen[str], _Supervised] = {}
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

    def interrupt(self, hurry: threading.Event | None = None) -> str:
        """Stop every CLI this command runs; returns how the last one ended ("" when none ran)."""
        with self._mutex:
            supervised = list(self._running.values())
        outcome = ""
        for one in supervised:
            outcome = self.stop(one, hurry) or outcome
        return outcome

    def stop(self, one: _Supervised, hurry: threading.Event | None = None) -> str:
        """Ctrl-C, then Ctrl-C again, then SIGKILL of the CLI and its plugins; returns once all are gone."""
        # catalogue: pulumi-cli.sigint-cancels-gracefully
        if one.process.poll() is not None:
            return ""
        one.snapshot()
        one.signal_group(signal.SIGINT)
        if one.exited_within(self.cancel_grace_seconds, hurry):
            return "cancelled"
        one.signal_group(signal.SIGINT)  # the second interrupt terminates: pending operations may stay
        if one.exited_within(self.terminate_grace_seconds, hurry):
            return "terminated"
        one.snapshot()
        one.killed = True
        one.signal_group(signal.SIGKILL)  # catalogue: pulumi-cli.kill-leaves-lock-and-pending
        if not one.exited_within(self.kill_wait_seconds, None):
            raise ProcessStillRunningError(
                f"pulumi (pid {one.process.pid}) did not exit {self.kill_wait_seconds:g} s after SIGKILL",
                hint="find it (ps -o pid,stat,cmd -p PID; a process in D state waits on the kernel), then break "
                "the drctl lock with a reason and rerun",
            )
        return "killed"

    def _start(
        self, args: list[str], cwd: str, env: Mapping[str, str]
    ) -> tuple[_Supervised, cancellation.CancelScope | None]:
        """Start the CLI unless its step was cancelled (atomically: a cancel after this sees the process)."""
        scope = cancellation.current()
        with self._mutex:
            if scope is not None:
                scope.refuse_if_cancelled(f"`pulumi {_command_name(args)}`")
            process = subprocess.Popen(
                [self.command, *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=dict(env),
                encoding="utf-8",
                start_new_session=True,  # a terminal's Ctrl-C reaches drctl only; drctl decides what the CLI gets
            )
            one = _Supervised(process)
            self._running[process] = one
        return one, scope

    def _finish(self, one: _Supervised) -> None:
        """After the CLI exited: its plugins go too, and a killed CLI's lock is released for it."""
        with self._mutex:
            self._running.pop(one.process, None)
        survivors = one.reap(self.kill_wait_seconds)  # catalogue: pulumi-cli.kill-leaves-lock-and-pending
        died = one.killed or (one.process.returncode or 0) < 0
        if died:
            self.killed_pids.add(one.process.pid)
        if survivors:
            raise ProcessStillRunningError(
                f"pulumi (pid {one.process.pid}) is gone but its plugin processes "
                f"{', '.join(str(process.pid) for process in survivors)} did not stop after SIGKILL",
                hint="they may still change cloud resources: stop them (ps -o pid,pgid,cmd -p ...), then break "
                "the drctl lock with a reason and rerun",
            )
        if died and self.on_killed is not None:
            with suppress(Exception):  # the lock stays; the next update's lock error says how to remove it
                self.on_killed(one.process.pid)


def _command_name(args: Sequence[str]) -> str:
    """`up`, `stack export`: the command's words, before its first flag."""
    words = list(itertools.dropwhile(lambda arg: arg.startswith("-"), args))
    return " ".join(itertools.takewhile(lambda arg: not arg.startswith("-"), words))


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
    from pulumi.automation import CommandResult
    from pulumi.automation.errors import create_command_error

    chunks: dict[str, list[str]] = {"stdout": [], "stderr": []}

    def consume(stream: Any, callback: Callable[[str], Any] | None, kept: list[str]) -> None:
        for line in iter(stream.readline, ""):
            stripped = line.rstrip()
            if callback is not None:
                callback(stripped)
            kept.append(stripped)
        stream.close()

    one, scope = command._start(args, cwd, cli_environment(additional_env, command.command))
    unregister = scope.register(lambda: command.stop(one, scope.hurry)) if scope is not None else (lambda: None)
    try:
        readers = [
            threading.Thread(target=consume, args=(one.process.stdout, on_output, chunks["stdout"]), daemon=True),
            threading.Thread(target=consume, args=(one.process.stderr, on_error, chunks["stderr"]), daemon=True),
        ]
        for reader in readers:
            reader.start()
        while one.process.poll() is None:
            one.snapshot()
            try:
                one.process.wait(_DESCENDANT_POLL_SECONDS)
            except subprocess.TimeoutExpired:
                continue
        for reader in readers:
            reader.join()
        code = one.process.wait()
    finally:
        unregister()
        if one.process.poll() is None:  # drctl itself is going down (an exception in this thread): stop it
            command.stop(one)
        command._finish(one)
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
    ) -> None:
        self._stack = stack
        self._name = fully_qualified_name
        self._command = command
        self._policy_packs = list(policy_packs)
        self._backend: str | None = None
        self._exported: tuple[float, dict[str, Any]] | None = None
        if command is not None:
            command.on_killed = self._release_lock_of

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

        Each policy pack must be runnable before anything else happens.
        `program` runs the program in this process (the Automation API's inline
        programs) instead of through the CLI's Python language host.
        """
        from pulumi import automation as auto

        check_stack_name(fully_qualified_name)
        _refuse_project_refresh(Path(project_dir))
        for pack in policy_packs:
            require_policy_pack_runtime(Path(pack))
        with _mapped_errors(fully_qualified_name, "select the stack"):
            command = DrctlPulumiCommand(
                cancel_grace_seconds=cancel_grace_seconds, terminate_grace_seconds=terminate_grace_seconds
            )
            workspace = auto.LocalWorkspace(
                work_dir=str(project_dir), env_vars=dict(env_vars or {}), pulumi_command=command, program=program
            )
            if create:
                stack = auto.Stack.create(fully_qualified_name, workspace)
            else:
                stack = auto.Stack.select(fully_qualified_name, workspace)
        selected = cls(stack, fully_qualified_name, command, policy_packs=policy_packs)
        selected._backend_url_quietly()  # known before any cancellation: releasing a killed CLI's lock needs it
        return selected

    @property
    def fully_qualified_name(self) -> str:
        return self._name

    @property
    def project_dir(self) -> Path:
        """Where the CLI keeps this stack's config: `Pulumi.<stack>.yaml` of this directory.

        catalogue: pulumi-cli.config-in-project-stack-file
        """
        return Path(self._stack.workspace.work_dir)

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

    def preview(
        self,
        targets: Sequence[str] | None = None,
        on_output: OutputCallback | None = None,
        *,
        exclude: Sequence[str] | None = None,
    ) -> ChangeSummary:
        events = _EventCollector()
        target_list = check_targets(targets)
        with self._mapped("preview", events):
            result = self._stack.preview(
                target=target_list,
                target_dependents=False if target_list is not None else None,
                exclude=list(exclude) if exclude else None,
                exclude_dependents=False if exclude else None,
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
        """Run a command that takes the backend lock (and changes the state); once, retry after removing the
        lock of a CLI of ours that died (SIGKILL) and so could not release it. Any other holder is left alone."""
        self._exported = None
        try:
            with self._mapped(action, events):
                return call()
        except DrctlError as error:
            from pulumi.automation import errors as auto_errors

            if not isinstance(error.__cause__, auto_errors.ConcurrentUpdateError) or not self._release_dead_locks(
                on_output
            ):
                raise
        with self._mapped(action, events):
            return call()

    def _release_dead_locks(self, on_output: OutputCallback | None) -> bool:
        """Delete exactly the lock files of CLIs this process saw die; True if there were any.

        catalogue: pulumi-cli.kill-leaves-lock-and-pending. Never `pulumi cancel`,
        which deletes every lock file, including one an update took after we looked.
        """
        if self._command is None or not self._command.killed_pids:
            return False
        released = [pid for pid in sorted(self._command.killed_pids) if self._release_lock_of(pid)]
        if released and on_output is not None:
            on_output(f"removed the stack lock left by pulumi pid(s) {released}, which drctl had to kill")
        return bool(released)

    def _release_lock_of(self, pid: int) -> bool:
        locks = BackendLocks.of(self._backend_url(), self._name)
        if locks is None:
            return False
        mine = [lock for lock in locks.list() if lock.pid == pid and lock.hostname == socket.gethostname()]
        for lock in mine:
            locks.delete(lock)
        return bool(mine)

    def _backend_url(self) -> str:
        if self._backend is None:
            env = getattr(self._stack.workspace, "env_vars", {}) or {}
            self._backend = env.get("PULUMI_BACKEND_URL") or os.environ.get("PULUMI_BACKEND_URL") or ""
            if not self._backend:
                with _mapped_errors(self._name, "find the state backend"):
                    self._backend = str(self._stack.workspace.who_am_i().url or "")
        return self._backend

    def outputs(self) -> dict[str, Any]:
        with self._mapped("read the stack outputs"):
            values = self._stack.outputs()
        return {key: value.value for key, value in values.items()}

    def cancel(self) -> None:
        """Interrupt the CLI this adapter runs (a preview or an update) and wait until it and its plugins exited.

        Never `pulumi cancel` while the CLI may still run: on a self-managed (S3)
        backend it only deletes the lock file and the update goes on
        (catalogue: pulumi-cli.diy-cancel-only-deletes-lock). A CLI that had to
        be killed cannot release its own lock: drctl deletes that lock file
        (and no other) once the CLI and its plugins are gone.
        """
        if self._command is not None:
            self._command.interrupt(getattr(cancellation.current(), "hurry", None))

    def _export(self) -> dict[str, Any]:
        """The state without decrypted secrets (`stack export` without --show-secrets), kept in memory only.

        The checks before one update read it twice in a row (pending operations, what the engine refreshes):
        an export younger than EXPORT_REUSE_SECONDS is reused unless this adapter changed the state since.
        """
        cached = self._exported
        if cached is not None and time.monotonic() - cached[0] < EXPORT_REUSE_SECONDS:
            return cached[1]
        result = self._cli("export the stack state", ["stack", "export", "--stack", self._name])
        deployment = dict(json.loads(result.stdout).get("deployment") or {})
        self._exported = (time.monotonic(), deployment)
        return deployment

    def pending_operations(self) -> list[PendingOperation]:
        return _pending_in(self._export())

    def refreshed_before_update(self, targets: Sequence[str] | None, exclude: Sequence[str] | None = None) -> list[str]:
        """catalogue: pulumi-cli.refresh-before-update-ignores-refresh-flag"""
        return [
            resource["urn"]
            for resource in self._export().get("resources") or []
            if resource.get("refreshBeforeUpdate") and in_scope(resource.get("urn", ""), targets, exclude)
        ]

    def resolve_pending_creates(self, imports: Mapping[str, str] | None = None) -> PendingOperationsReport:
        """Drop every pending create with the CLI's own refresh, scoped to the root stack (it reads no region),
        then `pulumi import` each resource named in `imports` under its parent and provider.

        catalogue: pulumi-cli.pending-operations-warn-only, pulumi-cli.import-pending-creates-drops-the-record
        """
        creates = [op for op in self.pending_operations() if op.creates]
        wanted = dict(imports or {})
        unknown = sorted(set(wanted) - {op.urn for op in creates})
        if unknown:
            raise DrctlError(
                f"--import {unknown[0]}: no pending create of that URN in {self._name}",
                hint="drctl state show lists nothing about it; the pending creates are: "
                + (", ".join(op.urn for op in creates) or "none"),
            )
        if not creates:
            return PendingOperationsReport()
        refresh = clear_pending_command(self._name)[1:]
        self._locking("drop the pending creates", lambda: self._cli("", refresh))
        for op in creates:
            if op.urn in wanted:
                arguments = import_command(self._name, op, wanted[op.urn])[1:]
                self._locking(f"import {op.urn}", lambda arguments=arguments: self._cli("", arguments))
        return PendingOperationsReport(cleared=tuple(creates), imported=wanted)

    def _cli(self, action: str, arguments: list[str]) -> Any:
        """A CLI command the Automation API has no call for, in the stack's workspace."""
        if self._command is None:
            raise DrctlError(f"cannot {action or arguments[0]} for {self._name}: no Pulumi CLI")
        workspace = self._stack.workspace
        if not action:
            return self._command.run(arguments, workspace.work_dir, workspace.env_vars)
        with self._mapped(action):
            return self._command.run(arguments, workspace.work_dir, workspace.env_vars)

    @contextmanager
    def _mapped(self, action: str, events: _EventCollector | None = None) -> Iterator[None]:
        try:
            with _mapped_errors(self._name, action, events):
                yield
        except DrctlError as error:
            if isinstance(error.__cause__, Exception) and _is_lock_error(error.__cause__):
                error.hint = lock_hint(self._name, self._backend_url_quietly())
            raise

    def _backend_url_quietly(self) -> str:
        try:
            return self._backend_url()
        except DrctlError:
            return ""


def require_policy_pack_runtime(pack: Path) -> None:
    """Refuse a policy pack whose virtualenv cannot import pulumi_policy: the CLI would hang loading it.

    catalogue: pulumi-cli.policy-pack-needs-its-virtualenv
    """
    settings_file = pack / "PulumiPolicy.yaml"
    if not settings_file.exists():
        raise DrctlError(f"no policy pack at {pack} (no PulumiPolicy.yaml)", hint="run drctl from the project checkout")
    options = ((yaml.safe_load(settings_file.read_text()) or {}).get("runtime") or {}).get("options") or {}
    python = pack / str(options.get("virtualenv", "venv")) / "bin" / "python"
    try:
        ready = subprocess.run([python, "-c", "import pulumi_policy"], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ready = False
    if not ready:
        raise DrctlError(
            f"the policy pack {pack} cannot run: {python} cannot import pulumi_policy. The Pulumi CLI does not "
            "install a pack's requirements during preview or up; it would hang at 'Loading policy packs'",
            hint="make policy-venv (from a checkout: python3 -m venv policy/venv && policy/venv/bin/pip install "
            "--require-hashes --no-deps -r policy/requirements.lock), then rerun",
        )


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
            parent=(operation.get("resource") or {}).get("parent", ""),
            provider=(operation.get("resource") or {}).get("provider", ""),
        )
        for operation in deployment.get("pending_operations") or []
    ]


# --- the backend's lock files (self-managed backends) ------------------------------------------


@dataclass(frozen=True)
class BackendLock:
    location: str
    pid: int
    hostname: str


class BackendLocks:
    """The lock files of one stack on a self-managed backend (file:// or s3://).

    catalogue: pulumi-cli.diy-lock-refuses-second-update (layout
    `.pulumi/locks/<org>/<project>/<stack>/<uuid>.json`, holding pid, username, hostname, timestamp)
    """

    def __init__(self, scheme: str, root: str, stack: str, region: str | None = None) -> None:
        self.scheme = scheme
        self.root = root.rstrip("/")
        self.directory = f".pulumi/locks/{stack}"
        self.region = region

    @classmethod
    def of(cls, backend_url: str, stack: str) -> BackendLocks | None:
        parsed = urllib.parse.urlparse(backend_url)
        if parsed.scheme == "file":
            return cls("file", parsed.path, stack)
        if parsed.scheme == "s3":
            region = urllib.parse.parse_qs(parsed.query).get("region", [None])[0]
            return cls("s3", f"{parsed.netloc}{parsed.path}", stack, region)
        return None  # Pulumi Cloud and other backends keep no lock files drctl may touch

    def list(self) -> list[BackendLock]:
        found = []
        for location, text in self._read_all():
            try:
                info = json.loads(text)
                found.append(BackendLock(location, int(info["pid"]), str(info["hostname"])))
            except (ValueError, KeyError, TypeError):
                continue
        return found

    def delete(self, lock: BackendLock) -> None:
        if self.scheme == "file":
            Path(lock.location).unlink(missing_ok=True)
        else:
            bucket, _, key = lock.location.partition("/")
            self._s3().delete_object(Bucket=bucket, Key=key)

    def _read_all(self) -> list[tuple[str, str]]:
        if self.scheme == "file":
            directory = Path(self.root) / self.directory
            return [(str(path), path.read_text()) for path in sorted(directory.glob("*.json"))]
        bucket, _, prefix = self.root.partition("/")
        client = self._s3()
        listed = client.list_objects_v2(Bucket=bucket, Prefix="/".join(filter(None, [prefix, self.directory, ""])))
        return [
            (f"{bucket}/{item['Key']}", client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode())
            for item in listed.get("Contents", [])
            if item["Key"].endswith(".json")
        ]

    def _s3(self) -> Any:
        import boto3

        return boto3.client("s3", region_name=self.region)


# --- engine events and errors -------------------------------------------------------------------


class _EventCollector:
    """The engine events drctl keeps: each resource step, every diagnostic, every policy violation."""

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
        policy = getattr(event, "policy_event", None)
        with self._mutex:
            if pre is not None and pre.metadata is not None:
                op = getattr(pre.metadata.op, "value", pre.metadata.op)
                self.steps.append(ResourceStep(urn=pre.metadata.urn, op=str(op), type=pre.metadata.type))
            if diagnostic is not None and diagnostic.severity in ("error", "warning"):
                self.diagnostics.append(
                    Diagnostic(severity=diagnostic.severity, message=diagnostic.message, urn=diagnostic.urn or "")
                )
            if policy is not None:  # catalogue: pulumi-cli.policy-violations-not-in-diagnostics
                severity = "error" if policy.enforcement_level == "mandatory" else "warning"
                text = f"policy {policy.policy_pack_name}/{policy.policy_name} ({policy.enforcement_level}): "
                self.diagnostics.append(Diagnostic(severity, text + policy.message, policy.resource_urn or ""))

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


def _is_lock_error(error: Exception) -> bool:
    from pulumi.automation import errors as auto_errors

    return isinstance(error, auto_errors.ConcurrentUpdateError)


def lock_hint(stack: str, backend_url: str = "") -> str:
    """What to do about another update's backend lock, with the exact command."""
    login = f"PULUMI_BACKEND_URL={backend_url} " if backend_url else ""
    return (
        "wait for that update to finish. Remove its lock only once you know its process (and its plugins) are "
        f"gone: {login}pulumi cancel --stack {stack} --yes. On a self-managed backend that deletes every lock file "
        "of the stack and stops nothing; drctl resolves the pending operations the update left before its next one"
    )


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
            hint=lock_hint(stack),
        )
    if isinstance(error, auto_errors.CommandError):
        return DrctlError(
            f"cannot {action} for {stack}: pulumi failed: {cli_failure_text(error, diagnostics)}",
            hint="rerun with --debug",
        )
    return DrctlError(f"cannot {action} for {stack}: {type(error).__name__}: {error}", hint="rerun with --debug")


def cli_failure_text(error: Any, diagnostics: Sequence[Diagnostic] = ()) -> str:
    """Why the CLI failed: its error diagnostics and mandatory policy violations (events, else the stdout
    "Diagnostics:" and "Policies:" blocks), then stderr."""
    # catalogue: pulumi-cli.diagnostics-on-stdout, pulumi-cli.policy-violations-not-in-diagnostics
    stdout, stderr = _streams(error)
    causes = [diagnostic.describe() for diagnostic in diagnostics]
    if not causes:
        causes = _stdout_policy_violations(stdout) + _stdout_errors(stdout)
    causes += _tail(stderr)
    return " | ".join(dict.fromkeys(causes)) or "the CLI printed no error"


def _streams(error: Exception) -> tuple[str, str]:
    """stdout and stderr of a CommandError, whose only carrier is its text ("code: .. stdout: .. stderr: ..")."""
    text = str(error)
    head, _, stderr = text.rpartition("\n stderr: ")
    _, _, stdout = head.partition("\n stdout: ")
    return stdout, stderr


def _block(stdout: str, heading: str) -> list[str]:
    """The indented lines under a heading of the CLI's summary ("Diagnostics:", "Policies:")."""
    lines: list[str] = []
    inside = False
    for line in stdout.splitlines():
        if line.startswith(heading):
            inside = True
        elif inside and line and not line[0].isspace():
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def _stdout_errors(stdout: str, keep: int = 12) -> list[str]:
    """The CLI's "Diagnostics:" block from stdout (a message may span lines), else its `error:` lines."""
    block = _block(stdout, "Diagnostics:")
    if not block:
        block = [line.strip() for line in stdout.splitlines() if line.strip().startswith("error:")]
    return block[-keep:]


def _stdout_policy_violations(stdout: str) -> list[str]:
    """Each mandatory violation of the "Policies:" block: `[mandatory]  name  (type: resource)` and its message."""
    violations: list[str] = []
    current: list[str] | None = None
    for line in _block(stdout, "Policies:"):
        if line.startswith("- ["):
            current = [line.removeprefix("- ")] if line.startswith("- [mandatory]") else None
            if current is not None:
                violations.append("")
        elif current is not None and not line.startswith(("✅", "❌", "⚠")):
            current.append(line)
        if current is not None:
            violations[-1] = "policy violation: " + " ".join(current)
    return violations


def _tail(stderr: str, lines: int = 6) -> list[str]:
    kept = [line.strip() for line in stderr.splitlines() if line.strip()]
    return kept[-lines:]


def _lock_holder(stderr: str) -> str:
    created = [line.strip() for line in stderr.splitlines() if "created by" in line]
    return "; ".join(created) or "a lock held by another process"
