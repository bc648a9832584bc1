"""The one authority on where the platform stands, kept where the primary region cannot take it down.

The DR keys (`activeRegion`, `drState`, `dbGeneration`,
`dbRetainedGenerations`) live in two kinds of places: `Pulumi.<stack>.yaml`
(with a self-managed backend the CLI keeps the stack config there, in
whatever checkout it runs from; catalogue: pulumi-cli.config-in-project-stack-file)
and this document, `dr-state.json`, in the DR-region control store beside the
journal and the lock. The document decides:

- every drctl command that opens the stack first writes its keys into the
  checkout's `Pulumi.<stack>.yaml` (`sync_stack_file`), so an operator's
  checkout, another operator's, and CI's all run with where the platform
  stands, not with what was last committed; the checkout gate
  (automation/checkout.py) ignores that edit and only that edit;
- drctl writes it *before* it writes the keys to the stack config, with the
  run id, the operator and the time (a crash in between leaves the document
  ahead and the run unfinished, and CI refuses to deploy while a run is
  unfinished);
- `drctl deploy-gate` writes its keys into the checkout's file before CI's
  `pulumi up`, so a merge to main can never move the platform back to a
  region it failed away from;
- `drctl state sync-file` writes them into the committed file for a pull
  request, so the repository catches up (every other line, comments
  included, stays as committed).

Bootstrap: the first drctl write creates it; before any, `drctl state init`
records the stack's current keys, and refuses keys that are not the steady
defaults unless told why. Every version is kept under `dr-state/history/`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from automation.errors import DrctlError
from automation.journal import (
    CONTROL_STORE_PREFIX,
    DocumentStore,
    StoreConflictError,
    iso,
    read_json,
    stack_key_prefix,
    to_json_bytes,
)
from components.config import NAMESPACE
from components.functions.fence_publisher import AUTHORITY_SCHEMA, FENCE_FIELD, LOWERED, RAISED, fence_raised

AUTHORITY_KEY = "dr-state.json"
DR_KEYS = tuple(f"{NAMESPACE}:{key}" for key in ("activeRegion", "drState", "dbGeneration", "dbRetainedGenerations"))
SCHEMA_VERSION = AUTHORITY_SCHEMA


def authority_object_key(stack: str, prefix: str = CONTROL_STORE_PREFIX) -> str:
    """The authority's key in a control-store bucket (the fence publisher reads exactly this object)."""
    return f"{stack_key_prefix(stack, prefix)}/{AUTHORITY_KEY}"


@dataclass(frozen=True)
class DrStateRecord:
    stack: str
    keys: Mapping[str, str]
    """Raw config strings (structured values as JSON text), as the stack config holds them."""
    run_id: str
    operator: str
    written_at: str
    traffic_fence: str | None = None
    """`raised` / `lowered` as drctl's fence steps last set it; None: the fence follows drState. The fence
    publisher (components/functions/fence_publisher.py) reads this document every minute."""

    def to_dict(self) -> dict[str, Any]:
        document = {
            "schema": SCHEMA_VERSION,
            "stack": self.stack,
            "keys": dict(self.keys),
            "run_id": self.run_id,
            "operator": self.operator,
            "written_at": self.written_at,
        }
        if self.traffic_fence is not None:
            document[FENCE_FIELD] = self.traffic_fence
        return document

    @property
    def fence_raised(self) -> bool:
        """What the fence publisher publishes for this record (1 when True)."""
        return fence_raised(self.to_dict())


def dr_keys(config: Mapping[str, str]) -> dict[str, str]:
    """The DR keys of a raw config (missing keys left out: the program's defaults apply)."""
    return {key: config[key] for key in DR_KEYS if key in config}


class DrStateAuthority:
    """`dr-state.json` in the control store; every write is conditional on the version read."""

    def __init__(self, store: DocumentStore, stack: str) -> None:
        self.store = store
        self.stack = stack

    @property
    def location(self) -> str:
        return f"{self.store.location}/{AUTHORITY_KEY}"

    def read(self) -> DrStateRecord | None:
        try:
            found = read_json(self.store, AUTHORITY_KEY)
        except ValueError as error:
            raise DrctlError(
                f"the DR state authority {self.location} cannot be read: {error}",
                hint="restore it from dr-state/history/ (every version is kept there)",
            ) from None
        if found is None:
            return None
        document = found[0]
        if not isinstance(document, dict) or document.get("schema") != SCHEMA_VERSION:
            raise DrctlError(
                f"the DR state authority {self.location} is not a schema {SCHEMA_VERSION} record",
                hint="restore it from dr-state/history/ (every version is kept there)",
            )
        return DrStateRecord(
            stack=document["stack"],
            keys=dict(document["keys"]),
            run_id=document["run_id"],
            operator=document["operator"],
            written_at=document["written_at"],
            traffic_fence=document.get(FENCE_FIELD),
        )

    def write(self, keys: Mapping[str, str], *, run_id: str, operator: str, at: datetime) -> DrStateRecord:
        """Record the DR keys after `keys` are applied over the current record (the traffic fence stays)."""
        stored = self.store.read(AUTHORITY_KEY)
        current = self.read()
        merged = {**(current.keys if current else {}), **dr_keys(keys)}
        fence = current.traffic_fence if current else None
        return self._replace(stored, DrStateRecord(self.stack, merged, run_id, operator, iso(at), fence), at)

    def write_traffic_fence(self, *, raised: bool, run_id: str, operator: str, at: datetime) -> DrStateRecord:
        """Raise or lower the traffic fence: the fence publisher puts the new value within the minute.

        Refused before `drctl state init` (or a first DR transition) has written the record: the
        publisher would otherwise publish nothing, and the fence would hold whatever it last was.
        """
        stored = self.store.read(AUTHORITY_KEY)
        current = self.read()
        if current is None:
            raise DrctlError(
                f"no DR state authority at {self.location}: the traffic fence is published from it",
                hint="record the stack's DR keys first: drctl state init",
            )
        record = DrStateRecord(self.stack, current.keys, run_id, operator, iso(at), RAISED if raised else LOWERED)
        return self._replace(stored, record, at)

    def _replace(self, stored: Any, record: DrStateRecord, at: datetime) -> DrStateRecord:
        run_id = record.run_id
        data = to_json_bytes(record.to_dict())
        try:
            if stored is None:
                self.store.create(AUTHORITY_KEY, data)
            else:
                self.store.replace(AUTHORITY_KEY, data, stored.version)
        except StoreConflictError:
            raise DrctlError(
                f"the DR state authority {self.location} changed while run {run_id} was writing it",
                hint="another drctl wrote it: inspect it (drctl state show) before going on",
            ) from None
        self.store.replace(f"dr-state/history/{at.strftime('%Y%m%dT%H%M%S%fZ')}.json", data, None)
        return record


# --- the committed stack file -------------------------------------------------------------------


def stack_file(project_dir: Path, stack: str) -> Path:
    return Path(project_dir) / f"Pulumi.{stack.rsplit('/', 1)[-1]}.yaml"


def file_dr_keys(path: Path) -> dict[str, str]:
    """The DR keys a `Pulumi.<stack>.yaml` holds, as raw config strings."""
    from automation.evaluate import stack_file_config

    return dr_keys(stack_file_config(path.name.removeprefix("Pulumi.").removesuffix(".yaml"), path.parent))


def differences(expected: Mapping[str, str], found: Mapping[str, str]) -> list[str]:
    """`key: found -> expected` lines for every DR key that differs."""
    return [
        f"{key.split(':', 1)[1]}: {found.get(key, '(unset)')} -> {expected[key]}"
        for key in DR_KEYS
        if key in expected and _normalised(found.get(key)) != _normalised(expected[key])
    ]


def write_file_dr_keys(path: Path, keys: Mapping[str, str]) -> None:
    """Set the DR keys in `Pulumi.<stack>.yaml`; every other line, comments included, stays as it is."""
    if not path.exists():
        raise DrctlError(f"no stack file {path}", hint="run from the project directory (or pass --project-dir)")
    text = path.read_text()
    updated = with_dr_keys(text, keys)
    if updated != text:
        path.write_text(updated)


def with_dr_keys(text: str, keys: Mapping[str, str]) -> str:
    """The stack file's text with the DR keys set: only their own lines change (or are added to `config:`)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    config_at = next((i for i, line in enumerate(lines) if re.match(r"^config:\s*(#.*)?$", line)), None)
    if config_at is None:
        lines += ["config:\n"]
        config_at = len(lines) - 1
    indent = (
        next(
            (_indent(line) for line in lines[config_at + 1 :] if line.strip() and not line.lstrip().startswith("#")),
            "  ",
        )
        or "  "
    )
    for key, raw in dr_keys(keys).items():
        rendered = yaml.safe_dump({key: _yaml_value(raw)}, sort_keys=False, default_flow_style=False)
        new = [indent + line for line in rendered.splitlines(keepends=True)]
        start, end = _entry_span(lines, config_at, indent, key)
        lines[start:end] = new
    updated = "".join(lines)
    if differences(dr_keys(keys), dr_keys(config_of(updated))) or not differs_only_in_dr_keys(text, updated):
        raise DrctlError(
            "could not set the DR keys in the stack file without changing anything else",
            hint="check its YAML (drctl writes only the dr-platform:activeRegion, drState, dbGeneration and "
            "dbRetainedGenerations entries of its config: block)",
        )
    return updated


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" "))]


def _entry_span(lines: list[str], config_at: int, indent: str, key: str) -> tuple[int, int]:
    """Where `key`'s entry (its line and its more-indented continuation) sits in the config block; an empty
    span at the block's end when it is not there."""
    end_of_block = len(lines)
    for index in range(config_at + 1, len(lines)):
        line = lines[index]
        if line.strip() and not line.startswith(" ") and not line.lstrip().startswith("#"):
            end_of_block = index
            break
    while end_of_block > config_at + 1 and not lines[end_of_block - 1].strip():
        end_of_block -= 1
    pattern = re.compile(rf"^{re.escape(indent)}{re.escape(key)}\s*:")
    for index in range(config_at + 1, end_of_block):
        if pattern.match(lines[index]):
            stop = index + 1
            while stop < end_of_block and (
                not lines[stop].strip()
                or len(_indent(lines[stop])) > len(indent)
                or lines[stop].startswith(indent + "-")
            ):
                stop += 1
            while stop > index + 1 and not lines[stop - 1].strip():
                stop -= 1
            return index, stop
    return end_of_block, end_of_block


def _continues(line: str, indent: str) -> bool:
    """Whether a line after an entry still belongs to its value: blank, more indented, or a list item."""
    return not line.strip() or len(_indent(line)) > len(indent) or line.startswith(indent + "- ")


def differs_only_in_dr_keys(committed: str, working: str) -> bool:
    """Whether two texts of a stack file mean the same stack apart from its DR keys.

    Values are compared as the CLI reads them (config values are strings: `7` and `"7"` are one value);
    the CLI re-quotes a file's scalars when it writes config, which is no change.
    """
    try:
        before, after = yaml.safe_load(committed) or {}, yaml.safe_load(working) or {}
    except yaml.YAMLError:
        return False
    if not isinstance(before, dict) or not isinstance(after, dict):
        return False
    return _without_dr_keys(before) == _without_dr_keys(after)


def _without_dr_keys(document: Mapping[str, Any]) -> dict[str, Any]:
    config = {
        str(key): _canonical(value) for key, value in (document.get("config") or {}).items() if key not in DR_KEYS
    }
    return {**{key: _canonical(value) for key, value in document.items() if key != "config"}, "config": config}


def _canonical(value: Any) -> Any:
    from automation.evaluate import _config_text

    if isinstance(value, Mapping):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return _canonical(parsed) if isinstance(parsed, (dict, list)) else value
    return "" if value is None else _config_text(value)


def config_of(text: str, file_name: str = "the stack file") -> dict[str, str]:
    """The raw config strings of a stack file's text, as the CLI hands them to the program."""
    from automation.evaluate import stack_file_text_config

    return stack_file_text_config(text, file_name)


def sync_stack_file(path: Path, record: DrStateRecord | None) -> list[str]:
    """Write the authority's DR keys into the checkout's stack file; the differences it applied."""
    if record is None:
        return []
    changed = differences(record.keys, file_dr_keys(path))
    write_file_dr_keys(path, record.keys)
    return changed


def steady_default_problems(config: Mapping[str, str]) -> list[str]:
    """How a stack config's DR keys differ from those of a stack that never failed over (none: steady defaults)."""
    primary = config.get(f"{NAMESPACE}:primaryRegion", "")
    defaults = {
        f"{NAMESPACE}:drState": "steady",
        f"{NAMESPACE}:activeRegion": primary,
        f"{NAMESPACE}:dbGeneration": '{"primary": 1, "dr": 1}',
        f"{NAMESPACE}:dbRetainedGenerations": '{"primary": [], "dr": []}',
    }
    found = dr_keys(config)
    return [
        f"{key.split(':', 1)[1]}={found[key]}"
        for key in DR_KEYS
        if key in found and _normalised(found[key]) != _normalised(defaults[key])
    ]


def _yaml_value(raw: str) -> Any:
    """A raw config string as the YAML value `pulumi config set --path` would store."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        return raw
    return parsed if isinstance(parsed, (dict, list)) else raw


def _normalised(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw
