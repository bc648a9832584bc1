"""The stateful-resource guard over `pulumi preview --json` output and engine events."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from automation.cli import main
from automation.errors import DrctlError
from automation.guard import PreviewStep, check, load_preview
from automation.stack import ResourceStep

FIXTURES = Path(__file__).parent / "fixtures" / "guard"
REPLACES_DATABASE = FIXTURES / "preview-replaces-database.json"
SAFE = FIXTURES / "preview-safe.json"
EVENTS = FIXTURES / "events-deletes-bucket.jsonl"
DB_URN = "urn:pulumi:prod::dr-platform::dr-platform:data:Database$aws:rds/instance:Instance::database-primary-g1"


def run_drctl(*args: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run the real entry point; its exit code (0 when it returns)."""
    monkeypatch.setattr(sys, "argv", ["drctl", *args])
    try:
        main()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_a_replaced_database_blocks_and_a_replaced_security_group_does_not():
    result = check(load_preview(REPLACES_DATABASE))
    assert not result.passed
    (finding,) = result.blocked
    assert finding.urn == DB_URN
    assert finding.effect == "replace"
    assert finding.ops == ("create-replacement", "replace", "delete-replaced")
    assert finding.reasons == ("kmsKeyId",)
    assert result.steps_examined == 6


def test_updates_creates_and_stateless_deletes_pass():
    result = check(load_preview(SAFE))
    assert result.passed and result.findings == ()


@pytest.mark.parametrize("entry", [DB_URN, "database-primary-g1"])
def test_an_allow_entry_by_urn_or_name_lets_the_replacement_through(entry):
    result = check(load_preview(REPLACES_DATABASE), allow=[entry])
    assert result.passed
    assert [f.allowed for f in result.findings] == [True]


def test_an_allow_entry_for_another_resource_does_not_help():
    result = check(load_preview(REPLACES_DATABASE), allow=["database-dr-g1"])
    assert not result.passed


def test_engine_events_are_read_as_json_lines_and_discards_count():
    steps = load_preview(EVENTS)
    assert [s.op for s in steps] == ["same", "delete", "discard", "update"]
    effects = {f.name: f.effect for f in check(steps).blocked}
    assert effects == {"storage-dr-data": "delete", "backup-dr-vault": "discard"}


def test_engine_events_as_a_json_array(tmp_path):
    events = [json.loads(line) for line in EVENTS.read_text().splitlines()]
    path = tmp_path / "events.json"
    path.write_text(json.dumps(events))
    assert [f.name for f in check(load_preview(path)).blocked] == ["backup-dr-vault", "storage-dr-data"]


def test_the_type_comes_from_the_urn_when_a_step_carries_no_state():
    steps = [PreviewStep(urn=DB_URN, op="delete", type="")]
    assert check(steps).blocked[0].type == "aws:rds/instance:Instance"


def test_the_runbook_adapters_steps_are_checked_too():
    steps = [ResourceStep(urn=DB_URN, op="delete-replaced", type="aws:rds/instance:Instance")]
    assert check(steps).blocked[0].effect == "replace"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json\n", "is not JSON"),
        ('{"config": {}}', "neither `pulumi preview --json` output"),
        ('{"steps": []}', "holds no resource steps"),
        ("", "holds no resource steps"),
        ('{"steps": [{"op": "delete"}]}', "a step without `op` and `urn`"),
    ],
)
def test_unusable_previews_are_refused_with_a_clear_message(tmp_path, content, message):
    path = tmp_path / "preview.json"
    path.write_text(content)
    with pytest.raises(DrctlError, match=message):
        load_preview(path)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DrctlError, match=r"cannot read preview file .*missing\.json"):
        load_preview(tmp_path / "missing.json")


def test_cli_exits_1_and_lists_the_blocked_resource(monkeypatch, capsys):
    assert run_drctl("guard", str(REPLACES_DATABASE), monkeypatch=monkeypatch) == 1
    captured = capsys.readouterr()
    assert "database-primary-g1" in captured.out
    assert "would delete, replace or drop 1 stateful resource" in captured.err


def test_cli_exits_0_with_an_allow_entry_and_reports_unused_ones(monkeypatch, capsys):
    args = ("guard", str(REPLACES_DATABASE), "--allow", "database-primary-g1", "--allow", "typo-name", "--json")
    assert run_drctl(*args, monkeypatch=monkeypatch) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    assert [f["name"] for f in report["allowed"]] == ["database-primary-g1"]
    assert report["unusedAllowEntries"] == ["typo-name"]


def test_cli_json_on_a_blocked_preview_still_exits_1(monkeypatch, capsys):
    assert run_drctl("guard", str(EVENTS), "--json", monkeypatch=monkeypatch) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is False
    assert {f["type"] for f in report["blocked"]} == {"aws:s3/bucket:Bucket", "aws:backup/vault:Vault"}


def test_cli_unreadable_file_is_one_red_line_and_exit_1(monkeypatch, capsys, tmp_path):
    assert run_drctl("guard", str(tmp_path / "nope.json"), monkeypatch=monkeypatch) == 1
    assert "cannot read preview file" in capsys.readouterr().err
