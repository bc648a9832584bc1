"""The stateful-resource guard: refuse a preview that deletes or replaces data.

Reads what the engine says it will do, either the digest of
`pulumi preview --json` (`{"steps": [{"op", "urn", "oldState", "newState",
"replaceReasons", ...}]}`) or Automation API engine events (the JSON lines of
`pulumi preview --event-log`, or a JSON array of them, with
`resourcePreEvent.metadata.op`). A stateful resource (`STATEFUL_TYPES`) that
would be deleted, replaced or dropped from the stack blocks the change unless
it is named, by URN or logical name, in the allow list.

`check` also takes the runbook adapter's steps (anything with `urn`, `op` and
`type`), so a runbook can guard its own preview before it updates.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from automation.changes import STATEFUL_TYPES, is_stateful, urn_name, urn_type
from automation.errors import DrctlError

# Engine step ops (pulumi.automation.OpType) and what they do to the resource.
# A replacement shows up as up to three steps (create-replacement, replace,
# delete-replaced); `discard` drops a retainOnDelete resource from the stack
# without deleting it, which still leaves its data unmanaged.
_OP_EFFECT = {
    "delete": "delete",
    "discard": "discard",
    "replace": "replace",
    "create-replacement": "replace",
    "delete-replaced": "replace",
    "discard-replaced": "replace",
    "import-replacement": "replace",
}


class StepLike(Protocol):
    urn: str
    op: str
    type: str


@dataclass(frozen=True)
class PreviewStep:
    urn: str
    op: str
    type: str
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """A stateful resource the preview would delete, replace or discard."""

    urn: str
    type: str
    name: str
    effect: str
    ops: tuple[str, ...]
    reasons: tuple[str, ...]
    allowed: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "effect": self.effect,
            "ops": list(self.ops),
            "replaceReasons": list(self.reasons),
            "risk": STATEFUL_TYPES[self.type],
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
    """Collect the stateful resources the steps would delete, replace or discard."""
    allowed_names = set(allow)
    ops: dict[str, list[str]] = {}
    types: dict[str, str] = {}
    reasons: dict[str, list[str]] = {}
    examined = 0
    for step in steps:
        examined += 1
        type_token = step.type or urn_type(step.urn)
        if step.op not in _OP_EFFECT or not is_stateful(type_token):
            continue
        ops.setdefault(step.urn, []).append(step.op)
        types[step.urn] = type_token
        for reason in getattr(step, "reasons", ()):
            if reason not in reasons.setdefault(step.urn, []):
                reasons[step.urn].append(reason)
    findings = []
    for urn, seen in ops.items():
        effects = {_OP_EFFECT[op] for op in seen}
        effect = "replace" if "replace" in effects else "delete" if "delete" in effects else "discard"
        name = urn_name(urn)
        findings.append(
            Finding(
                urn=urn,
                type=types[urn],
                name=name,
                effect=effect,
                ops=tuple(seen),
                reasons=tuple(reasons.get(urn, ())),
                allowed=urn in allowed_names or name in allowed_names,
            )
        )
    return GuardResult(examined, tuple(sorted(findings, key=lambda f: (f.allowed, f.type, f.name))))


def load_preview(path: Path) -> list[PreviewStep]:
    """Steps from a `pulumi preview --json` digest or from engine events; a clear error otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DrctlError(f"cannot read preview file {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise DrctlError(f"cannot read preview file {path}: not UTF-8 text") from None
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError:
        document = _json_lines(path, text)
    if isinstance(document, dict) and "resourcePreEvent" in document:
        document = [document]
    if isinstance(document, dict) and isinstance(document.get("steps"), list):
        steps = [_digest_step(path, step) for step in document["steps"]]
    elif isinstance(document, list) and all(isinstance(e, dict) for e in document):
        steps = list(_event_steps(path, document))
    else:
        raise DrctlError(
            f"{path} is neither `pulumi preview --json` output (an object with `steps`) nor engine events",
            hint="produce it with `pulumi preview --json > preview.json` or `pulumi preview --event-log events.json`",
        )
    if not steps:
        # Every complete preview has at least the stack's own step: an empty
        # one means the preview did not run, and must not pass as "no risk".
        raise DrctlError(f"{path} holds no resource steps; did the preview fail?")
    return steps


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


def _digest_step(path: Path, step: Any) -> PreviewStep:
    if not isinstance(step, dict) or not isinstance(step.get("urn"), str) or not isinstance(step.get("op"), str):
        raise DrctlError(f"{path}: a step without `op` and `urn`: {json.dumps(step)[:200]}")
    state = step.get("newState") or step.get("oldState") or {}
    return PreviewStep(
        urn=step["urn"],
        op=step["op"],
        type=state.get("type", "") if isinstance(state, dict) else "",
        reasons=tuple(step.get("replaceReasons") or ()),
    )


def _event_steps(path: Path, events: list[dict[str, Any]]) -> Iterator[PreviewStep]:
    for event in events:
        metadata = (event.get("resourcePreEvent") or {}).get("metadata")
        if metadata is None:
            continue  # prelude, diagnostics, outputs, summary...
        if not isinstance(metadata.get("urn"), str) or not isinstance(metadata.get("op"), str):
            raise DrctlError(f"{path}: a resourcePreEvent without `op` and `urn`")
        yield PreviewStep(
            urn=metadata["urn"],
            op=metadata["op"],
            type=metadata.get("type", ""),
            reasons=tuple(metadata.get("keys") or ()),
        )
