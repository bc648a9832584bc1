"""The one authority on where the platform stands, kept where the primary region cannot take it down.

The DR keys (`activeRegion`, `drState`, `dbGeneration`,
`dbRetainedGenerations`) live in three places: the stack config the program
reads, the committed `Pulumi.<stack>.yaml` that CI deploys, and this
document, `dr-state.json`, in the DR-region control store beside the journal
and the lock. The document decides:

- drctl writes it *before* it writes the keys to the stack config, with the
  run id, the operator and the time (a crash in between leaves the document
  ahead and the run unfinished, and CI refuses to deploy while a run is
  unfinished);
- `drctl deploy-gate` writes its keys into the checkout's
  `Pulumi.<stack>.yaml` before CI's `pulumi up`, so a merge to main can never
  move the platform back to a region it failed away from;
- `drctl state sync-file` writes them into the committed file for a pull
  request, so the repository catches up.

Bootstrap: the first drctl write creates it; before any, `drctl state init`
records the stack's current keys (read from the stack config, not from the
committed file). Every version is kept under `dr-state/history/`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from automation.errors import DrctlError
from automation.journal import DocumentStore, StoreConflictError, iso, read_json, to_json_bytes
from components.config import NAMESPACE

AUTHORITY_KEY = "dr-state.json"
DR_KEYS = tuple(f"{NAMESPACE}:{key}" for key in ("activeRegion", "drState", "dbGeneration", "dbRetainedGenerations"))
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class DrStateRecord:
    stack: str
    keys: Mapping[str, str]
    """Raw config strings (structured values as JSON text), as the stack config holds them."""
    run_id: str
    operator: str
    written_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "stack": self.stack,
            "keys": dict(self.keys),
            "run_id": self.run_id,
            "operator": self.operator,
            "written_at": self.written_at,
        }


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
        )

    def write(self, keys: Mapping[str, str], *, run_id: str, operator: str, at: datetime) -> DrStateRecord:
        """Record the DR keys after `keys` are applied over the current record."""
        stored = self.store.read(AUTHORITY_KEY)
        current = self.read()
        merged = {**(current.keys if current else {}), **dr_keys(keys)}
        record = DrStateRecord(self.stack, merged, run_id, operator, iso(at))
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
    """Set the DR keys in `Pulumi.<stack>.yaml`, keeping every other key and the file's leading comment."""
    if not path.exists():
        raise DrctlError(f"no stack file {path}", hint="run from the project directory (or pass --project-dir)")
    text = path.read_text()
    document = yaml.safe_load(text) or {}
    config = dict(document.get("config") or {})
    for key, value in dr_keys(keys).items():
        config[key] = _yaml_value(value)
    document["config"] = config
    header = "".join(itertools.takewhile(lambda line: line.startswith("#"), text.splitlines(keepends=True)))
    path.write_text(header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False))


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
