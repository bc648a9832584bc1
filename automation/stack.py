"""The Pulumi-facing part of drctl: a small adapter over `pulumi.automation`.

Runbooks depend on the `StackAdapter` protocol only; `PulumiStack` drives the
real CLI through the Automation API, `automation.stack_standin.StandInStack`
evaluates the program in-process for tests and the offline sandbox.

Rules the real adapter keeps, whatever the caller asks:
- it selects an existing stack by fully qualified name; creating one needs an
  explicit flag (a typo must not create an empty prod stack);
- it never refreshes (pulumi #6468: a refresh against an unreachable region
  fails or records live resources as gone); `Pulumi.yaml` must not turn
  refresh on either;
- config is validated with `parse_config` on the merged result before a value
  is written;
- an empty target list is refused (to the CLI it would mean "everything").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from automation.errors import DrctlError
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
class ChangeSummary:
    counts: Mapping[str, int]
    steps: tuple[ResourceStep, ...] = ()

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


@dataclass(frozen=True)
class PendingOperationsReport:
    cleared: tuple[PendingOperation, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        if not self.cleared:
            return "no pending operations in the stack state"
        lines = [f"removed {len(self.cleared)} pending operation(s) from the stack state:"]
        lines += [f"  {op.kind} {op.urn}" for op in self.cleared]
        creating = [op.urn for op in self.cleared if op.kind in ("creating", "importing")]
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

    def cancel(self) -> None: ...

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


class PulumiStack:
    """`StackAdapter` over `pulumi.automation` and the Pulumi CLI."""

    def __init__(self, stack: Any, fully_qualified_name: str) -> None:
        self._stack = stack
        self._name = fully_qualified_name

    @classmethod
    def select(
        cls,
        fully_qualified_name: str,
        project_dir: Path = PROJECT_DIR,
        *,
        create: bool = False,
        env_vars: Mapping[str, str] | None = None,
    ) -> PulumiStack:
        """Select an existing stack (or create it, only with `create=True`) on the project directory."""
        from pulumi import automation as auto

        check_stack_name(fully_qualified_name)
        _refuse_project_refresh(Path(project_dir))
        with _mapped_errors(fully_qualified_name, "select the stack"):
            workspace = auto.LocalWorkspace(work_dir=str(project_dir), env_vars=dict(env_vars or {}))
            if create:
                stack = auto.Stack.create(fully_qualified_name, workspace)
            else:
                stack = auto.Stack.select(fully_qualified_name, workspace)
        return cls(stack, fully_qualified_name)

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
        steps: list[ResourceStep] = []
        with _mapped_errors(self._name, "preview"):
            result = self._stack.preview(
                target=check_targets(targets),
                target_dependents=False if targets is not None else None,
                refresh=False,
                on_output=on_output,
                on_event=_step_collector(steps),
            )
        return ChangeSummary(counts=_counts(result.change_summary), steps=tuple(steps))

    def up(
        self,
        targets: Sequence[str] | None,
        *,
        exclude: Sequence[str] | None = None,
        on_output: OutputCallback | None = None,
        message: str | None = None,
    ) -> UpdateResult:
        steps: list[ResourceStep] = []
        target_list = check_targets(targets)
        with _mapped_errors(self._name, "update"):
            result = self._stack.up(
                target=target_list,
                target_dependents=False if target_list is not None else None,
                exclude=list(exclude) if exclude else None,
                exclude_dependents=False if exclude else None,
                refresh=False,
                message=message,
                on_output=on_output,
                on_event=_step_collector(steps),
            )
        summary = ChangeSummary(counts=_counts(result.summary.resource_changes), steps=tuple(steps))
        return UpdateResult(summary=summary, outputs={key: value.value for key, value in result.outputs.items()})

    def outputs(self) -> dict[str, Any]:
        with _mapped_errors(self._name, "read the stack outputs"):
            values = self._stack.outputs()
        return {key: value.value for key, value in values.items()}

    def cancel(self) -> None:
        with _mapped_errors(self._name, "cancel the running update"):
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
        with _mapped_errors(self._name, "import the cleaned stack state"):
            self._stack.import_stack(auto.Deployment(version=exported.version, deployment=deployment))
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


def _step_collector(steps: list[ResourceStep]) -> Callable[[Any], None]:
    def on_event(event: Any) -> None:
        pre = getattr(event, "resource_pre_event", None)
        if pre is not None and pre.metadata is not None:
            op = getattr(pre.metadata.op, "value", pre.metadata.op)
            steps.append(ResourceStep(urn=pre.metadata.urn, op=str(op), type=pre.metadata.type))

    return on_event


def _counts(changes: Mapping[Any, int] | None) -> dict[str, int]:
    return {str(getattr(op, "value", op)): count for op, count in (changes or {}).items()}


@contextmanager
def _mapped_errors(stack: str, action: str) -> Iterator[None]:
    """Turn Automation API and CLI failures into one DrctlError with a clear message and hint."""
    try:
        yield
    except DrctlError:
        raise
    except Exception as error:
        raise map_pulumi_error(error, stack, action) from error


def map_pulumi_error(error: Exception, stack: str, action: str) -> DrctlError:
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
    if isinstance(error, auto_errors.ConcurrentUpdateError):
        return DrctlError(
            f"cannot {action} for {stack}: another update holds the stack",
            hint="wait for it; if it was interrupted, `pulumi cancel` (Pulumi Cloud) or remove the backend's lock "
            "file (self-managed backend), then rerun: drctl clears pending operations before updating",
        )
    if isinstance(error, auto_errors.CommandError):
        return DrctlError(f"cannot {action} for {stack}: pulumi failed: {_tail(str(error))}", hint="rerun with --debug")
    return DrctlError(f"cannot {action} for {stack}: {type(error).__name__}: {error}", hint="rerun with --debug")


def _tail(text: str, lines: int = 6) -> str:
    """The last lines of the CLI's stderr (CommandError's text is "code: ... stdout: ... stderr: ...")."""
    stderr = text.rsplit("stderr:", 1)[-1]
    kept = [line.strip() for line in stderr.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])
