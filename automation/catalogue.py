"""The AWS behaviour catalogue (`catalogue/*.yaml`): what we rely on, with its source.

Offline layers that refuse what AWS refuses name the entry they enforce, so a
refusal in a drill or a test carries the same words and source as the docs:

    raise DrctlError(catalogue.refusal("rds.replica-source-managed-password", detail))
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

CATALOGUE_DIR = Path(__file__).resolve().parent.parent / "catalogue"
EVIDENCE = ("documented", "provider-source", "public-issue", "measured", "estimate", "unconfirmed")


@dataclass(frozen=True)
class Behaviour:
    id: str
    behaviour: str
    source: str
    evidence: str
    relied_on_by: tuple[str, ...]
    enforced_by: tuple[str, ...]
    not_enforced: str
    file: str


@functools.cache
def entries() -> dict[str, Behaviour]:
    """Every entry by id, read once; a malformed file fails here, naming the file and the entry."""
    found: dict[str, Behaviour] = {}
    for path in sorted(CATALOGUE_DIR.glob("*.yaml")):
        for raw in yaml.safe_load(path.read_text()) or []:
            where = f"{path.name}: {raw.get('id', '<no id>') if isinstance(raw, dict) else raw!r}"
            if not isinstance(raw, dict):
                raise ValueError(f"{where}: an entry must be a mapping")
            unknown = set(raw) - {f for f in Behaviour.__dataclass_fields__ if f != "file"}
            if unknown:
                raise ValueError(f"{where}: unknown fields {sorted(unknown)}")
            entry = Behaviour(
                id=str(raw.get("id", "")),
                behaviour=" ".join(str(raw.get("behaviour", "")).split()),
                source=" ".join(str(raw.get("source", "")).split()),
                evidence=str(raw.get("evidence", "")),
                relied_on_by=tuple(raw.get("relied_on_by") or ()),
                enforced_by=tuple(raw.get("enforced_by") or ()),
                not_enforced=" ".join(str(raw.get("not_enforced", "")).split()),
                file=path.name,
            )
            if entry.id in found:
                raise ValueError(f"{where}: id also used in {found[entry.id].file}")
            found[entry.id] = entry
    return found


def entry(behaviour_id: str) -> Behaviour:
    """The entry; an unknown id is a programming error and raises KeyError naming it."""
    try:
        return entries()[behaviour_id]
    except KeyError:
        raise KeyError(f"no catalogue entry {behaviour_id!r} in {CATALOGUE_DIR}") from None


def refusal(behaviour_id: str, detail: str = "") -> str:
    """A refusal message in AWS's terms, citing the entry: what the sandbox and mocks raise."""
    known = entry(behaviour_id)
    lead = f"{detail}: " if detail else ""
    return f"{lead}{known.behaviour} [catalogue {known.id}; source: {known.source}]"
