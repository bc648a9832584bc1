"""The stateful-resource guard over `pulumi preview --json` output and engine events."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from automation.cli import main
from automation.errors import DrctlError
from automation.guard import PreviewStep, check, load_preview, read_allow_file
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


def test_engine_events_are_read_as_json_lines_and_a_discard_is_not_a_loss():
    steps = load_preview(EVENTS)
    assert [s.op for s in steps] == ["same", "delete", "discard", "update"]
    # `discard` drops a resource the program only read (`.get`): nothing is lost.
    effects = {f.name: f.effect for f in check(steps).blocked}
    assert effects == {"storage-dr-data": "delete"}


def test_engine_events_as_a_json_array(tmp_path):
    events = [json.loads(line) for line in EVENTS.read_text().splitlines()]
    path = tmp_path / "events.json"
    path.write_text(json.dumps(events))
    assert [f.name for f in check(load_preview(path)).blocked] == ["storage-dr-data"]


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
    assert "would delete, replace, drop or unprotect 1 stateful resource" in captured.err


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
    assert [(f["type"], f["effect"]) for f in report["blocked"]] == [("aws:s3/bucket:Bucket", "delete")]


def test_cli_unreadable_file_is_one_red_line_and_exit_1(monkeypatch, capsys, tmp_path):
    assert run_drctl("guard", str(tmp_path / "nope.json"), monkeypatch=monkeypatch) == 1
    assert "cannot read preview file" in capsys.readouterr().err


# --- fail closed (issue 14.10) -------------------------------------------------------------

STACK_URN = "urn:pulumi:prod::dr-platform::pulumi:pulumi:Stack::dr-platform-prod"
BUCKET_URN = "urn:pulumi:prod::dr-platform::dr-platform:storage:Storage$aws:s3/bucket:Bucket::storage-dr-data"
ALARM_URN = "urn:pulumi:prod::dr-platform::dr-platform:alarms:Alarms$aws:cloudwatch/metricAlarm:MetricAlarm::cpu"
STACK_STEP = {"op": "same", "urn": STACK_URN, "newState": {"type": "pulumi:pulumi:Stack"}}


def state(type_token: str, **flags: bool) -> dict[str, object]:
    return {"type": type_token, **flags}


def digest(tmp_path: Path, *steps: dict[str, object], **extra: object) -> Path:
    path = tmp_path / "preview.json"
    path.write_text(json.dumps({"steps": [STACK_STEP, *steps], **extra}))
    return path


def bucket_step(op: str, old: dict[str, object] | None, new: dict[str, object] | None) -> dict[str, object]:
    return {"op": op, "urn": BUCKET_URN, "oldState": old, "newState": new}


BUCKET = "aws:s3/bucket:Bucket"


def test_an_error_diagnostic_fails_even_when_only_the_stack_step_is_there(tmp_path):
    """catalogue: pulumi-cli.preview-json-digest"""
    path = digest(
        tmp_path,
        diagnostics=[{"urn": STACK_URN, "message": "error: program failed: KeyError 'x'\n", "severity": "error"}],
    )
    with pytest.raises(DrctlError, match=r"reported 1 error\(s\): error: program failed"):
        load_preview(path)


def test_warnings_and_info_do_not_fail_the_preview(tmp_path):
    path = digest(tmp_path, diagnostics=[{"message": "deprecated", "severity": "warning"}, {"severity": "info"}])
    assert check(load_preview(path)).passed


def test_an_error_diagnostic_in_engine_events_fails(tmp_path):
    lines = EVENTS.read_text().splitlines()
    lines.insert(2, json.dumps({"diagnosticEvent": {"message": "boom", "severity": "error"}}))
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines))
    with pytest.raises(DrctlError, match="reported 1 error"):
        load_preview(path)


def test_engine_events_without_a_summary_did_not_finish(tmp_path):
    lines = [line for line in EVENTS.read_text().splitlines() if "summaryEvent" not in line]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines))
    with pytest.raises(DrctlError, match="without a summary"):
        load_preview(path)


def test_a_preview_without_the_stack_step_did_not_complete(tmp_path):
    path = tmp_path / "preview.json"
    path.write_text(json.dumps({"steps": [bucket_step("same", state(BUCKET, protect=True), None)]}))
    with pytest.raises(DrctlError, match="no step for the stack itself"):
        load_preview(path)


def test_a_preview_the_engine_marks_maybe_corrupt_is_refused(tmp_path):
    with pytest.raises(DrctlError, match="possibly corrupt"):
        load_preview(digest(tmp_path, maybeCorrupt=True))


@pytest.mark.parametrize("op", ["REPLACE", "Delete", "destroy", ""])
def test_an_unknown_operation_blocks_on_any_type_and_cannot_be_allowed(tmp_path, op):
    alarm = {"type": "aws:cloudwatch/metricAlarm:MetricAlarm"}
    path = digest(tmp_path, {"op": op, "urn": ALARM_URN, "newState": alarm})
    result = check(load_preview(path), allow=[ALARM_URN, "cpu"])
    assert not result.passed
    (finding,) = result.blocked
    assert finding.effect == "unknown-op" and finding.ops == (op,)
    assert "unknown engine operation" in finding.to_json()["risk"]


def test_every_operation_pulumi_publishes_is_known():
    """catalogue: pulumi-cli.step-ops"""
    from pulumi.automation import OpType

    from automation.guard import OP_EFFECT

    assert {op.value for op in OpType} <= set(OP_EFFECT)


# --- what each operation means (issue 14.11) -----------------------------------------------


def test_deleting_a_retain_on_delete_resource_is_a_drop_and_blocks(tmp_path):
    path = digest(tmp_path, bucket_step("delete", state(BUCKET, retainOnDelete=True), None))
    (finding,) = check(load_preview(path)).blocked
    assert finding.effect == "drop"
    assert check(load_preview(path), allow=["storage-dr-data"]).passed


def test_discarding_a_read_resource_passes(tmp_path):
    path = digest(tmp_path, bucket_step("discard", state(BUCKET, protect=True), None))
    assert check(load_preview(path)).findings == ()


@pytest.mark.parametrize(
    ("op", "old", "new"),
    [
        ("update", state(BUCKET, protect=True), state(BUCKET)),  # protect dropped
        ("same", state(BUCKET, protect=True), state(BUCKET)),  # a protect-only change shows as same
        ("create", None, state(BUCKET)),  # a new bucket without protect
    ],
)
def test_a_stateful_resource_left_unprotected_blocks(tmp_path, op, old, new):
    """catalogue: pulumi-cli.protect-refuses-delete-and-replace (the guard keeps the engine's refusal in force)"""
    (finding,) = check(load_preview(digest(tmp_path, bucket_step(op, old, new)))).blocked
    assert finding.effect == "unprotect"


def test_a_protected_stateful_update_passes(tmp_path):
    path = digest(tmp_path, bucket_step("update", state(BUCKET, protect=True), state(BUCKET, protect=True)))
    assert check(load_preview(path)).passed


@pytest.mark.parametrize("state_name", ["steady", "failed-over", "resyncing"])
def test_the_programs_first_deploy_passes_the_guard_in_every_dr_state(state_name):
    """Every stateful resource the program declares is protected, so the engine enforces the guard during `up`."""
    from tests.conftest import evaluate_state

    resources = evaluate_state(state_name).resources
    steps = [PreviewStep(urn=STACK_URN, op="create", type="pulumi:pulumi:Stack", new_protect=False)]
    steps += [PreviewStep(urn=r.urn, op="create", type=r.type, new_protect=r.protect) for r in resources]
    result = check(steps)
    assert result.passed, [f.name for f in result.blocked]


# --- the allow file (issue 14.11) ----------------------------------------------------------


def test_the_allow_file_reads_crlf_a_last_line_without_newline_a_bom_and_comments(tmp_path):
    path = tmp_path / "guard-allow.txt"
    path.write_bytes(b"\xef\xbb\xbf# reviewed in PR 42\r\n\r\n  database-primary-g1  \r\n# done\r\n" + DB_URN.encode())
    assert read_allow_file(path) == ["database-primary-g1", DB_URN]


def test_cli_takes_the_allow_file(monkeypatch, capsys, tmp_path):
    path = tmp_path / "guard-allow.txt"
    path.write_bytes(b"# intended\r\ndatabase-primary-g1")  # CRLF and no final newline
    assert run_drctl("guard", str(REPLACES_DATABASE), "--allow-file", str(path), monkeypatch=monkeypatch) == 0
    assert "guard passed" in capsys.readouterr().out


def test_cli_missing_allow_file_fails_closed(monkeypatch, capsys, tmp_path):
    assert run_drctl("guard", str(SAFE), "--allow-file", str(tmp_path / "nope.txt"), monkeypatch=monkeypatch) == 1
    assert "cannot read allow file" in capsys.readouterr().err
