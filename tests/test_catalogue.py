"""The behaviour catalogue is complete in form and every entry is cited where it is relied on and enforced."""

from __future__ import annotations

import re

import pytest

from automation import catalogue

ROOT = catalogue.CATALOGUE_DIR.parent
ENTRIES = sorted(catalogue.entries().values(), key=lambda e: e.id)


def test_the_catalogue_is_not_empty():
    assert len(ENTRIES) >= 2


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_entry_is_well_formed(entry):
    stem = entry.file.removesuffix(".yaml")
    assert re.fullmatch(rf"{re.escape(stem)}\.[a-z0-9]+(-[a-z0-9]+)*", entry.id), "id is <file stem>.<kebab-case>"
    assert len(entry.behaviour) >= 40, "say what AWS does, as a fact"
    assert entry.evidence in catalogue.EVIDENCE
    assert entry.source, "every behaviour names its source"
    if entry.evidence == "documented":
        assert "https://" in entry.source, "a documented behaviour links the document"
    assert entry.relied_on_by, "an entry nobody relies on does not belong here"
    assert entry.enforced_by or len(entry.not_enforced) >= 20, "enforce it offline, or say why no layer can"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_entry_is_cited_where_it_is_relied_on_and_enforced(entry):
    for relative in (*entry.relied_on_by, *entry.enforced_by):
        path = ROOT / relative
        assert path.is_file(), f"{entry.id}: {relative} does not exist"
        assert entry.id in path.read_text(), f"{relative} does not cite {entry.id}"


def test_every_citation_names_an_entry():
    cited = re.compile(r"catalogue[:\s]+([a-z0-9-]+\.[a-z0-9-]+)")
    unknown = []
    for path in ROOT.glob("**/*.py"):
        if ".venv" in path.parts or "node_modules" in path.parts:
            continue
        for match in cited.finditer(path.read_text()):
            if match.group(1) not in catalogue.entries():
                unknown.append(f"{path.relative_to(ROOT)}: {match.group(1)}")
    assert not unknown


def test_refusal_cites_the_entry_and_its_source():
    message = catalogue.refusal("rds.replica-kms-key-in-own-region", "CreateDBInstanceReadReplica")
    assert message.startswith("CreateDBInstanceReadReplica: ")
    assert "[catalogue rds.replica-kms-key-in-own-region; source: https://docs.aws.amazon.com/" in message
    with pytest.raises(KeyError, match=r"no catalogue entry 'rds\.nope'"):
        catalogue.entry("rds.nope")
