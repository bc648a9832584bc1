"""The stateful-resource guard: refuse a preview that deletes or replaces data.

Reads what the engine says it will do, either the digest of
`pulumi preview --json` (`{"steps": [{"op", "urn", "oldState", "newState",
"replaceReasons", ...}], "diagnostics": [...]}`) or engine events (the JSON
lines of `pulumi preview --event-log`, or a JSON array of them, with
`resourcePreEvent.metadata.op`). It fails closed: a preview that reported an
error, did not finish, or carries an operation the guard does not know is
refused, whatever else it says.

A stateful resource (`STATEFUL_TYPES`) blocks the change unless it is named, by
URN or logical name, in the allow list, when the preview would

- delete it, or drop it from the stack (`delete` of a `retainOnDelete`
  resource: the cloud resource stays, unmanaged);
- replace it (`replace`, `create-replacement`, `delete-replaced`,
  `import-replacement`);
- leave it unprotected (`protect` dropped, or a stateful resource created or
  updated without `protect`).

The last rule is what makes the guarded preview bind the update that follows:
the engine refuses to delete a resource protected in the state and to replace
one protected in both the state and the program (pkg/resource/deploy), so as
long as every stateful resource stays protected, `pulumi up` cannot lose one
whatever its own preview decides. `discard` is harmless: it drops a resource the
program only read (`.get`), which Pulumi never owned.

`check` also takes the runbook adapter's steps (anything with `urn`, `op` and
`type`), so a runbook can guard its own preview before it updates.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from automation.changes import STATEFUL_TYPES, is_stateful, urn_name, urn_type
from automation.errors import DrctlError

STACK_TYPE = "pulumi:pulumi:Stack"

# Every engine step op (pulumi.automation.OpType; pkg/resource/deploy/step.go)
# and what it does to the resource; None when nothing is lost. An op missing
# here is not understood and blocks the change.
# catalogue: pulumi-cli.step-ops
OP_EFFECT: Mapping[str, str | None] = {
    "same": None,
    "create": None,
    "update": None,
    "read": None,
    "read-replacement": None,
    "refresh": None,
    "import": None,
    # A resource that was only read (`.get`): it leaves the stack, the cloud keeps it.
    "discard": None,
    "discard-replaced": None,
    "delete": "delete",
    # The resource was already deleted by an interrupted delete-before-replace.
    "remove-pending-replace": "delete",
    "replace": "replace",
    "create-replacement": "replace",
    "delete-replaced": "replace",
    "import-replacement": "replace",
}
# Ops after which the resource is in the stack: it must stay protected.
# catalogue: pulumi-cli.protect-refuses-delete-and-replace
_KEEPS_RESOURCE = frozenset({"same", "create", "update", "import"})
_SEVERITY_ORDER = ("unknown-op", "replace", "delete", "drop", "unprotect")


class StepLike(Protocol):
    urn: str
    op: str
    type: str


@dataclass(frozen=True)
class PreviewStep:
    """One step of a preview. `new_protect` is None when the step carries no new state."""

    urn: str
    op: str
    type: str
    reasons: tuple[str, ...] = ()
    new_protect: bool | None = None
    retain_on_delete: bool = False


@dataclass(frozen=True)
class Finding:
    """A stateful resource the preview would delete, replace, drop or unprotect, or an op nobody knows."""

    urn: str
    type: str
    name: str
    effect: str
    ops: tuple[str, ...]
    reasons: tuple[str, ...]
    allowed: bool

    @property
    def risk(self) -> str:
        if self.effect == "unknown-op":
            return f"unknown engine operation {', '.join(self.ops)}: the guard cannot tell what it does"
        return STATEFUL_TYPES[self.type]

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "effect": self.effect,
            "ops": list(self.ops),
            "replaceReasons": list(self.reasons),
            "risk": self.risk,
            "allowed": self.allowed,
        }


@dataclass(frozen=True)
class GuardResult:
    steps_examined: int
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def blocked(self) -> list[Finding]:
        return [f for f in self.findings if not f.allowed]

    @property
    def passed(self) -> bool:
        return not self.blocked

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "stepsExamined": self.steps_examined,
            "blocked": [f.to_json() for f in self.blocked],
            "allowed": [f.to_json() for f in self.findings if f.allowed],
        }


def check(steps: Iterable[StepLike], allow: Iterable[str] = ()) -> GuardResult:
    """Collect what the steps would do to stateful resources, and any op the guard does not know."""
    allowed_names = set(allow)
    effects: dict[str, set[str]] = {}
    ops: dict[str, list[str]] = {}
    types: dict[str, str] = {}
    reasons: dict[str, list[str]] = {}
    examined = 0
    for step in steps:
        examined += 1
        type_token = step.type or urn_type(step.urn)
        step_effects = _effects(step, type_token)
        if not step_effects:
            continue
        effects.setdefault(step.urn, set()).update(step_effects)
        ops.setdefault(step.urn, []).append(step.op)
        types[step.urn] = type_token
        for reason in getattr(step, "reasons", ()):
            if reason not in reasons.setdefault(step.urn, []):
                reasons[step.urn].append(reason)
    findings = []
    for urn, seen in effects.items():
        effect = next(e for e in _SEVERITY_ORDER if e in seen)
        name = urn_name(urn)
        findings.append(
            Finding(
                urn=urn,
                type=types[urn],
                name=name,
                effect=effect,
                ops=tuple(ops[urn]),
                reasons=tuple(reasons.get(urn, ())),
                # Nobody can allow what the guard does not understand.
                allowed=effect != "unknown-op" and (urn in allowed_names or name in allowed_names),
            )
        )
    return GuardResult(examined, tuple(sorted(findings, key=lambda f: (f.allowed, f.type, f.name))))


def _effects(step: StepLike, type_token: str) -> set[str]:
    if step.op not in OP_EFFECT:
        return {"unknown-op"}
    if not is_stateful(type_token):
        return set()
    found = set()
    effect = OP_EFFECT[step.op]
    if effect == "delete" and getattr(step, "retain_on_delete", False):
        effect = "drop"
    if effect:
        found.add(effect)
    # A step that carries no state (the runbook adapter's) says nothing about protect.
    if step.op in _KEEPS_RESOURCE and getattr(step, "new_protect", None) is False:
        found.add("unprotect")
    return found


def read_allow_file(path: Path) -> list[str]:
    """Allow entries from a reviewed file: one URN or name a line, `#` comments, any line ending."""
    text = _read_text(path, "allow file")
    entries = []
    for line in text.splitlines():
        entry = line.strip()
        if entry and not entry.startswith("#"):
            entries.append(entry)
    return entries


def load_preview(path: Path) -> list[PreviewStep]:
    """Steps from a complete, error-free preview (digest or engine events); a clear error otherwise."""
    text = _read_text(path, "preview file")
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError:
        document = _json_lines(path, text)
    if isinstance(document, dict) and _is_event(document):
        document = [document]
    if isinstance(document, dict) and isinstance(document.get("steps"), list):
        steps = _digest_steps(path, document)
    elif isinstance(document, list) and document and all(isinstance(e, dict) for e in document):
        steps = _event_steps(path, document)
    elif not document:
        steps = []
    else:
        raise DrctlError(
            f"{path} is neither `pulumi preview --json` output (an object with `steps`) nor engine events",
            hint="produce it with `pulumi preview --json > preview.json` or `pulumi preview --event-log events.json`",
        )
    if not steps:
        # Every complete preview has at least the stack's own step: an empty
        # one means the preview did not run, and must not pass as "no risk".
        raise DrctlError(f"{path} holds no resource steps; did the preview fail?")
    if not any((step.type or urn_type(step.urn)) == STACK_TYPE for step in steps):
        raise DrctlError(f"{path} has no step for the stack itself; the preview did not complete")
    return steps


def _read_text(path: Path, what: str) -> str:
    # utf-8-sig: a file saved by an editor that writes a BOM reads the same.
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise DrctlError(f"cannot read {what} {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise DrctlError(f"cannot read {what} {path}: not UTF-8 text") from None


def _is_event(document: Mapping[str, Any]) -> bool:
    return any(key.endswith("Event") for key in document)


def _json_lines(path: Path, text: str) -> list[Any]:
    events = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise DrctlError(f"{path} is not JSON (line {number}: {error.msg})") from None
    return events


def _refuse_errors(path: Path, diagnostics: Iterable[Any]) -> None:
    """A preview that reported an error is not a plan of what will happen."""
    errors = [d for d in diagnostics if isinstance(d, Mapping) and d.get("severity") == "error"]
    if errors:
        first = str(errors[0].get("message") or "").strip().splitlines()
        raise DrctlError(
            f"{path}: the preview reported {len(errors)} error(s)" + (f": {first[0][:300]}" if first else ""),
            hint="fix the errors and preview again; a failed preview proves nothing about what an update would do",
        )


def _digest_steps(path: Path, document: Mapping[str, Any]) -> list[PreviewStep]:
    # catalogue: pulumi-cli.preview-json-digest
    _refuse_errors(path, document.get("diagnostics") or ())
    if document.get("maybeCorrupt"):
        raise DrctlError(f"{path}: the engine marked this preview as possibly corrupt")
    return [_digest_step(path, step) for step in document["steps"]]


def _digest_step(path: Path, step: Any) -> PreviewStep:
    if not isinstance(step, dict) or not isinstance(step.get("urn"), str) or not isinstance(step.get("op"), str):
        raise DrctlError(f"{path}: a step without `op` and `urn`: {json.dumps(step)[:200]}")
    return _step(step["urn"], step["op"], step.get("oldState"), step.get("newState"), step.get("replaceReasons"))


def _event_steps(path: Path, events: list[dict[str, Any]]) -> list[PreviewStep]:
    if not any("summaryEvent" in event for event in events):
        raise DrctlError(f"{path}: the engine events end without a summary; the preview did not finish")
    _refuse_errors(path, (event.get("diagnosticEvent") for event in events))
    return list(_resource_pre_events(path, events))


def _resource_pre_events(path: Path, events: list[dict[str, Any]]) -> Iterator[PreviewStep]:
    for event in events:
        metadata = (event.get("resourcePreEvent") or {}).get("metadata")
        if metadata is None:
            continue  # prelude, diagnostics, outputs, summary...
        if not isinstance(metadata.get("urn"), str) or not isinstance(metadata.get("op"), str):
            raise DrctlError(f"{path}: a resourcePreEvent without `op` and `urn`")
        step = _step(metadata["urn"], metadata["op"], metadata.get("old"), metadata.get("new"), metadata.get("keys"))
        yield step if step.type else PreviewStep(**{**step.__dict__, "type": metadata.get("type", "")})


def _step(urn: str, op: str, old: Any, new: Any, reasons: Any) -> PreviewStep:
    old = old if isinstance(old, Mapping) else None
    new = new if isinstance(new, Mapping) else None
    state = new or old or {}
    return PreviewStep(
        urn=urn,
        op=op,
        type=str(state.get("type") or ""),
        reasons=tuple(reasons or ()),
        new_protect=bool(new.get("protect")) if new is not None else None,
        retain_on_delete=bool((old or {}).get("retainOnDelete")),
    )
