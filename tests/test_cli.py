"""The DR commands through typer's CliRunner (and `main()` for the error line), on the stand-in platform."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from automation import cli
from automation.dr_state import DrStateAuthority
from automation.errors import DrctlError
from automation.journal import Journal, RunParameters, StackLock
from automation.runbooks import commands
from automation.runbooks.failback import prepare_runbook
from automation.runbooks.failover import failover_runbook
from automation.stack import PendingOperation
from tests.conftest import ROOT
from tests.dr_world import DR, PRIMARY, STACK, Dr

runner = CliRunner()


OPERATOR = "arn:aws:sts::123456789012:assumed-role/dr-operator/alice"


@pytest.fixture
def dr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Dr:
    platform = Dr(tmp_path / "journal")
    env = commands.Environment(platform.ctx, platform.store(), operator=OPERATOR)
    platform.ctx.record_dr_state = commands.dr_state_recorder(env)
    monkeypatch.setattr(commands, "open_environment", lambda stack, journal, local_journal: env)
    monkeypatch.chdir(tmp_path)  # the default --report-dir (out/reports) lands in the test's directory
    gate = commands.GateEnvironment(STACK, platform.store(), platform.clock, "arn:aws:sts::1:assumed-role/deploy/ci")
    monkeypatch.setattr(commands, "open_gate_environment", lambda *_args: gate)
    return platform


def invoke(*args: str):
    return runner.invoke(cli.app, list(args))


@pytest.mark.parametrize(
    ("command", "phrase"),
    [
        (["status"], "Exit code 0 when ready, 2 when"),
        (["failover"], "Needs --reason"),
        (["failover"], "DRCTL_STACK"),
        (["failback", "switch"], "ROLLS BACK"),
        (["failback", "prepare"], "no refresh"),
        (["break-lock"], "--abandon-unfinished"),
        (["reconcile-dns"], "Route53"),
        (["fence-former-region"], "answers again"),
    ],
)
def test_each_command_explains_itself(command: list[str], phrase: str) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())  # rich boxes wrap the help text
    assert phrase.lower() in text.lower()


def test_status_json_and_exit_codes(dr: Dr) -> None:
    ready = invoke("status", "--json")
    assert ready.exit_code == 0 and json.loads(ready.output)["ready"] is True
    dr.world.unhealthy.add(DR)
    failing = invoke("status")
    assert failing.exit_code == 2 and "NOT READY" in failing.output


def test_failover_json_reports_the_outcome_and_writes_reports(dr: Dr, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    result = invoke(
        "failover", "--mode", "emergency", "--reason", "drill", "--yes", "--json", "--report-dir", str(reports)
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["result"] == "succeeded" and document["report"]["data_loss_window"]["measured_seconds"] == 3.0
    assert sorted(path.suffix for path in reports.iterdir()) == [".json", ".md"]
    assert dr.stack.outputs()["activeRegion"] == DR


@pytest.mark.parametrize("as_json", [False, True], ids=["summary", "json"])
def test_a_succeeded_failover_whose_reports_cannot_be_written_warns_and_exits_0(
    dr: Dr, tmp_path: Path, as_json: bool
) -> None:
    blocked = tmp_path / "reports"
    blocked.write_text("a file where the report directory should be")
    args = ["failover", "--mode", "emergency", "--reason", "outage", "--yes", "--report-dir", str(blocked)]
    result = invoke(*args, *(["--json"] if as_json else []))
    assert result.exit_code == 0, result.output  # the platform failed over: a retry is not what to do
    assert dr.stack.outputs()["activeRegion"] == DR
    (run_id,) = [path.stem for path in (dr.store().root / "reports").glob("*.json")]
    warning = f"warning: the reports of {run_id} could not be written to {blocked} (File exists: {blocked})"
    assert warning in result.stderr
    assert f"kept in the control store: {dr.store().location}/reports/{run_id}.json and .md" in result.stderr
    if as_json:
        document = json.loads(result.stdout)
        assert document["result"] == "succeeded" and document["reports"] == []
        assert document["report"]["rto"]["measured_seconds"] is not None  # the whole report, on stdout
    else:
        assert "measured RTO:" in result.stdout and "data-loss window: 3 s" in result.stdout
        stored = (dr.store().root / "reports" / f"{run_id}.md").read_text()
        assert stored in result.stdout  # the Markdown report reached the terminal too


def test_fence_former_region_fences_the_returning_writer_and_is_refused_before_a_failover(dr: Dr) -> None:
    """W9: the runbook has a command with the runbook commands' options; it records a run like them."""
    refused = invoke("fence-former-region", "--reason", "too early", "--yes")
    assert refused.exit_code != 0 and "this runbook starts from failed-over" in str(refused.exception)
    assert dr.world.fenced_writers == []

    dr.world.down.add(PRIMARY)
    dr.engine().run(failover_runbook(dr.ctx, "emergency"), RunParameters("outage", "alice", "emergency"))
    dr.world.down.clear()  # the former region answers again, its writer still writable
    planned = invoke("fence-former-region", "--dry-run")
    assert planned.exit_code == 0 and "fence_former_writer" in planned.output and dr.world.fenced_writers == []

    result = invoke("fence-former-region", "--reason", "primary back", "--yes", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["result"] == "succeeded" and document["report"]["runbook"] == "fence-former-region"
    former = dr.stack.outputs()["database"][PRIMARY]["identifier"]
    assert dr.world.fenced_writers == [former] and dr.world.node_desired[PRIMARY] == 0
    assert document["report"]["parameters"]["reason"] == "primary back"


@pytest.mark.parametrize("as_json", [False, True], ids=["summary", "json"])
def test_an_emergency_failover_leaving_the_cache_read_only_is_not_reported_as_full_success(
    dr: Dr, as_json: bool
) -> None:
    """W7: the database and traffic moved, the cache is still a read-only secondary: a critical finding, the
    detach as a follow-up, the notification says so, and the exit code is 5, not 0."""
    dr.world.cache_failover_fails = True
    args = ["failover", "--mode", "emergency", "--reason", "outage", "--yes", *(["--json"] if as_json else [])]
    result = invoke(*args)
    assert result.exit_code == commands.NOT_RECOVERED_EXIT, result.output
    assert dr.stack.outputs()["activeRegion"] == DR  # the promotion was not held up by the cache
    if as_json:
        measurements = json.loads(result.stdout)["report"]["measurements"]
        assert "read-only secondary" in measurements["not_recovered"][0]
        assert any("disassociate-global-replication-group" in item for item in measurements["follow_ups"])
    else:
        assert "NOT RECOVERED: cache acme-drp-usw2-redis in us-west-2 is still a read-only secondary" in result.stdout
    ((_, subject),) = dr.world.notifications
    assert "NOT FULLY RECOVERED" in subject


def test_an_emergency_failover_accepts_a_stale_backup_copy_only_when_told_so_and_records_it(dr: Dr) -> None:
    """W10: --force overrides the data-loss window only; --accept CHECK overrides one named fitness check."""
    dr.world.stale_backups.add(DR)
    forced = invoke("failover", "--mode", "emergency", "--force", "--reason", "outage", "--yes")
    assert forced.exit_code != 0 and "--accept dr_backups_recent" in str(forced.exception)
    assert dr.stack.config_changes == []

    args = ["failover", "--mode", "emergency", "--reason", "outage", "--yes", "--json"]
    result = invoke(*args, "--accept", "dr_backups_recent")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["report"]
    assert report["parameters"]["options"] == {"accept": "dr_backups_recent"}
    (check,) = [c for c in report["preflight"] if c["name"] == "dr_backups_recent"]
    assert check["passed"] and check["detail"].startswith("ACCEPTED by --accept dr_backups_recent (outage)")


@pytest.mark.parametrize(
    ("options", "refusal"),
    [
        (["--mode", "emergency", "--reason", "x", "--accept", "traffic_fence_deployed"], "not a check that may be"),
        (["--mode", "emergency", "--reason", "x", "--accept", "dr_database_is_a_serving_replica"], "one of dr_"),
        (["--mode", "graceful", "--reason", "x", "--accept", "dr_backups_recent"], "emergency only"),
        (["--mode", "emergency", "--accept", "dr_node_group_active"], "--accept needs --reason"),
    ],
)
def test_accept_is_refused_for_checks_that_keep_data_safe_and_outside_an_emergency(
    dr: Dr, options: list[str], refusal: str
) -> None:
    result = invoke("failover", *options, "--yes")
    assert result.exit_code != 0 and refusal in str(result.exception)
    assert dr.stack.config_changes == [] and Journal(dr.store()).load() is None  # refused before anything ran


def test_dry_run_changes_nothing(dr: Dr) -> None:
    result = invoke("failover", "--mode", "emergency", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry-run: nothing will be changed" in result.output and "update_stack_in_dr_region" in result.output
    assert dr.stack.config_changes == [] and dr.stack.updates == [] and Journal(dr.store()).load() is None


def test_confirmation_is_asked_and_a_no_changes_nothing(dr: Dr) -> None:
    result = runner.invoke(cli.app, ["failover", "--mode", "emergency"], input="n\n")
    assert result.exit_code != 0 and "Fail organization/dr-platform/prod over" in result.output
    assert dr.stack.config_changes == []


def test_a_rolled_back_switch_exits_with_3_and_says_so(dr: Dr) -> None:
    dr.engine().run(failover_runbook(dr.ctx, "emergency"), RunParameters("outage", "alice", "emergency"))
    dr.engine().run(prepare_runbook(dr.ctx), RunParameters("back", "alice"))
    dr.world.lag_seconds, dr.world.error_rate[PRIMARY] = 0, 0.3
    result = invoke("failback", "switch", "--yes")
    assert result.exit_code == 3
    assert "ROLLED BACK" in result.output and "error rate in" in result.output
    (written,) = Path("out/reports").glob("failback-rollback-*.md")  # under the test's tmp_path
    assert "(SIMULATION)" in written.read_text().splitlines()[0]  # a stand-in stack changed nothing real


def test_break_lock_records_and_can_abandon_the_unfinished_run(dr: Dr) -> None:
    StackLock(dr.store(), STACK, dr.clock).acquire("carol", "failover")
    result = invoke("break-lock", "--reason", "carol's laptop died")
    assert result.exit_code == 0 and "broke the lock of carol" in result.output
    assert list((dr.store().root / "lock-breaks").iterdir())


def run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["drctl", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    return exited.value.code


def test_errors_are_one_red_line_with_a_hint_and_a_non_zero_exit(
    dr: Dr, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(monkeypatch, "failover", "--force", "--yes") == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "--force needs --reason" in err and "Traceback" not in err


def test_a_missing_stack_is_refused_clearly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DRCTL_STACK", raising=False)
    assert run_main(monkeypatch, "status") == 1
    err = capsys.readouterr().err
    assert "error: no stack given" in err and "DRCTL_STACK" in err


def test_an_unknown_stack_names_the_stack_files_there_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(monkeypatch, "inventory", "--stack", "nope") == 2
    err = capsys.readouterr().err
    assert "error: Pulumi.nope.yaml: no such stack file" in err and "(stack nope)" in err
    there = "stack files there: Pulumi.drill.yaml (stack drill), Pulumi.prod.yaml (stack prod)"
    assert there in err and "hint: --stack takes" in err
    assert "Traceback" not in err and "FileNotFoundError" not in err


def test_a_stack_file_that_is_not_yaml_is_named_with_its_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from automation import evaluate

    (tmp_path / "Pulumi.broken.yaml").write_text("config:\n  dr-platform:primaryRegion: us-east-1\n  :x: [\n")
    monkeypatch.setattr(evaluate, "PROJECT_DIR", tmp_path)
    assert run_main(monkeypatch, "inventory", "--stack", "broken") == 1
    err = capsys.readouterr().err
    assert "error: Pulumi.broken.yaml: is not valid YAML: line 4, column 1:" in err
    assert "<unicode string>" not in err and "Traceback" not in err


def test_main_propagates_the_status_exit_code(dr: Dr, monkeypatch: pytest.MonkeyPatch) -> None:
    dr.world.down.add(PRIMARY)
    assert run_main(monkeypatch, "status", "--json") == 2


# --- damaged journal and lock files, recovered through the CLI -------------------------------------------


def test_a_damaged_journal_is_named_and_abandoning_moves_it_aside(
    dr: Dr, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = dr.store().root / "journal" / "current.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"schema": 1, "run_id": "failover-2025')  # truncated mid-write
    assert run_main(monkeypatch, "failover", "--mode", "emergency", "--yes") == 1
    err = capsys.readouterr().err
    assert str(path) in err and "JSONDecodeError" in err and "--abandon-unfinished" in err and "Traceback" not in err
    assert dr.stack.updates == []

    result = invoke("failover", "--mode", "emergency", "--reason", "outage", "--yes", "--abandon-unfinished")
    assert result.exit_code == 0, result.output
    assert "moved the unreadable journal aside" in result.output
    (kept,) = (dr.store().root / "journal" / "damaged").iterdir()
    assert kept.read_text() == '{"schema": 1, "run_id": "failover-2025'


def test_break_lock_removes_a_damaged_lock_and_moves_a_damaged_journal_aside(dr: Dr) -> None:
    root = dr.store().root
    (root / "journal").mkdir(parents=True)
    (root / "lock.json").write_text("{")
    (root / "journal" / "current.json").write_text("[]")  # a list, not a run
    result = invoke("break-lock", "--reason", "files damaged by a full disk", "--abandon-unfinished")
    assert result.exit_code == 0, result.output
    assert "removed a damaged lock file" in result.output and "was not locked" not in result.output
    assert "moved the unreadable journal aside" in result.output
    assert not (root / "lock.json").exists() and not (root / "journal" / "current.json").exists()
    (record,) = (root / "lock-breaks").iterdir()
    assert json.loads(record.read_text())["damaged_content"] == "{"


# --- the DR state authority, deploy-gate, state commands --------------------------------------------------


def test_a_failover_writes_the_authority_with_run_operator_and_time(dr: Dr) -> None:
    result = invoke("failover", "--mode", "emergency", "--reason", "outage", "--yes")
    assert result.exit_code == 0, result.output
    record = DrStateAuthority(dr.store(), STACK).read()
    assert record is not None
    assert record.keys["dr-platform:drState"] == "failed-over" and record.keys["dr-platform:activeRegion"] == DR
    assert record.run_id.startswith("failover-") and record.operator == OPERATOR
    assert list((dr.store().root / "dr-state" / "history").iterdir())


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout of main holding the committed Pulumi.prod.yaml."""
    directory = tmp_path / "checkout"
    directory.mkdir()
    shutil.copy(ROOT / "Pulumi.prod.yaml", directory / "Pulumi.prod.yaml")
    _git(directory, "init", "-q", "-b", "main")
    _git(directory, "add", ".")
    _git(directory, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", "reviewed")
    return directory


def _failed_over_authority(dr: Dr) -> None:
    keys = {**dr.stack.get_config(), "dr-platform:drState": "failed-over", "dr-platform:activeRegion": DR}
    DrStateAuthority(dr.store(), STACK).write(keys, run_id="failover-1", operator="alice", at=dr.clock.now())


PROBE = (
    "import json, pathlib, sys, yaml; "
    "config = yaml.safe_load(pathlib.Path(sys.argv[1], 'Pulumi.prod.yaml').read_text())['config']; "
    "lock = pathlib.Path(sys.argv[2], 'lock.json'); "
    "pathlib.Path(sys.argv[4]).write_text(json.dumps({'drState': config['dr-platform:drState'], "
    "'lock': json.loads(lock.read_text())['runbook'] if lock.exists() else None})); "
    "sys.exit(int(sys.argv[3]))"
)


def _seen(checkout: Path) -> Path:
    """Where the probe command says what it saw: the DR state it would deploy and who held the lock."""
    return checkout.parent / "seen.json"


def _gate(dr: Dr, checkout: Path, *options: str, exit_code: int = 0):
    command = [sys.executable, "-c", PROBE, str(checkout), str(dr.store().root), str(exit_code), str(_seen(checkout))]
    return invoke("deploy-gate", "--project-dir", str(checkout), *options, "--", *command)


def test_deploy_gate_deploys_the_authority_state_under_the_lock_and_warns_about_the_file(
    dr: Dr, checkout: Path
) -> None:
    _failed_over_authority(dr)
    result = _gate(dr, checkout, exit_code=7)
    assert result.exit_code == 7  # the command's own exit code
    assert json.loads(_seen(checkout).read_text()) == {"drState": "failed-over", "lock": "ci-deploy"}
    assert "drState: steady -> failed-over" in result.stderr and "drctl state sync-file" in result.stderr
    assert StackLock(dr.store(), STACK).current() is None  # released


def test_deploy_gate_read_only_syncs_the_keys_without_the_lock(dr: Dr, checkout: Path) -> None:
    _failed_over_authority(dr)
    result = _gate(dr, checkout, "--read-only")
    assert result.exit_code == 0, result.output
    assert json.loads(_seen(checkout).read_text()) == {"drState": "failed-over", "lock": None}


def test_deploy_gate_refuses_while_a_runbook_holds_the_lock(
    dr: Dr, checkout: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _failed_over_authority(dr)
    StackLock(dr.store(), STACK, dr.clock).acquire("alice", "failback-switch")
    for options in ((), ("--read-only",)):
        command = [sys.executable, "-c", PROBE, str(checkout), str(dr.store().root), "0", str(_seen(checkout))]
        code = run_main(monkeypatch, "deploy-gate", "--project-dir", str(checkout), *options, "--", *command)
        assert code == commands.DEPLOY_BLOCKED_EXIT
        err = capsys.readouterr().err
        assert "deploy refused" in err and "failback-switch" in err
        assert not _seen(checkout).exists()  # the command never ran


def test_deploy_gate_refusing_a_stale_ci_deploy_lock_says_how_to_break_it(dr: Dr, checkout: Path) -> None:
    _failed_over_authority(dr)
    StackLock(dr.store(), STACK, dr.clock).acquire("arn:ci", "ci-deploy", origin="https://ci/runs/5")
    dr.clock.sleep(3600)  # the runner was killed an hour ago: no heartbeat since
    result = _gate(dr, checkout)
    assert result.exception.exit_code == commands.DEPLOY_BLOCKED_EXIT and "looks stale" in str(result.exception)
    hint = result.exception.hint or ""
    assert f"drctl break-lock --stack {STACK}" in hint and "cancel that workflow run" in hint


def test_deploy_gate_refuses_while_a_run_is_unfinished(dr: Dr, checkout: Path) -> None:
    _failed_over_authority(dr)
    dr.stack.fail_up(1, "error")
    failed = invoke("failover", "--mode", "emergency", "--reason", "outage", "--yes")
    assert failed.exit_code != 0
    result = _gate(dr, checkout)
    assert result.exception.exit_code == commands.DEPLOY_BLOCKED_EXIT and "unfinished" in str(result.exception)


def test_deploy_gate_without_an_authority_refuses_a_deploy(dr: Dr, checkout: Path) -> None:
    result = _gate(dr, checkout)
    assert result.exit_code == 1 and "drctl state init" in (result.exception.hint or "")
    preview = _gate(dr, checkout, "--read-only")
    assert preview.exit_code == 0 and "no DR state authority" in preview.stderr


def test_state_init_show_and_sync_file(dr: Dr, checkout: Path) -> None:
    assert invoke("state", "show", "--project-dir", str(checkout)).exit_code == 1  # no authority yet
    created = invoke("state", "init", "--reason", "first CI gate")
    assert created.exit_code == 0 and "drState=steady" in created.output
    assert invoke("state", "init", "--reason", "again").exit_code == 1
    assert invoke("state", "show", "--project-dir", str(checkout)).exit_code == 0

    _failed_over_authority(dr)
    (checkout / "Pulumi.prod.yaml").write_text(
        (checkout / "Pulumi.prod.yaml").read_text().replace("drState: steady", "drState: failed-over")
    )  # the checkout's copy, as drctl leaves it: what counts is the committed one
    shown = invoke("state", "show", "--project-dir", str(checkout), "--json")
    assert shown.exit_code == 1
    assert json.loads(shown.stdout)["committedFile"]["differences"] == [
        "activeRegion: us-east-1 -> us-west-2",
        "drState: steady -> failed-over",
    ]
    synced = invoke("state", "sync-file", "--project-dir", str(checkout))
    assert synced.exit_code == 0 and "drState: steady -> failed-over" in synced.output
    committed = subprocess.run(
        ["git", "diff", "--unified=0", "Pulumi.prod.yaml"], cwd=checkout, capture_output=True, text=True, check=True
    ).stdout
    changed = [line for line in committed.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == [
        "-  dr-platform:activeRegion: us-east-1",
        "-  dr-platform:drState: steady",
        "+  dr-platform:activeRegion: us-west-2",
        "+  dr-platform:drState: failed-over",
    ]  # a pull request of the DR keys alone: every comment and other line as committed


def test_state_show_names_a_committed_stack_file_that_is_not_yaml(
    dr: Dr, checkout: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert invoke("state", "init", "--reason", "first CI gate").exit_code == 0
    (checkout / "Pulumi.prod.yaml").write_text("config:\n  dr-platform:drState: [steady\n")
    _git(checkout, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-am", "broken")
    assert run_main(monkeypatch, "state", "show", "--project-dir", str(checkout)) == 1
    err = capsys.readouterr().err
    assert "error: Pulumi.prod.yaml (HEAD): is not valid YAML: line 3, column 1:" in err
    assert "<unicode string>" not in err and "Traceback" not in err


def test_state_init_refuses_keys_that_are_not_a_steady_stacks_unless_told_why(dr: Dr) -> None:
    """A checkout an earlier drctl run left failed over must not become the authority by accident."""
    dr.stack.set_config({"activeRegion": DR, "drState": "failed-over"})
    refused = invoke("state", "init", "--reason", "first CI gate")
    assert refused.exit_code == 1 and "activeRegion=us-west-2" in str(refused.exception)
    assert "--not-steady-reason" in (refused.exception.hint or "")
    created = invoke("state", "init", "--reason", "first", "--not-steady-reason", "failed over in INC-7, see status")
    assert created.exit_code == 0, created.output
    record = DrStateAuthority(dr.store(), STACK).read()
    assert record is not None and "INC-7" in record.run_id and record.keys["dr-platform:drState"] == "failed-over"


def test_clear_pending_is_recorded(dr: Dr) -> None:
    topic = next(urn for urn in dr.stack.state if "sns/topic:Topic" in urn)
    dr.stack.pending = [PendingOperation(topic, "creating", "aws:sns/topic:Topic")]
    result = invoke("state", "clear-pending", "--reason", "topic in AWS", "--import", f"{topic}=arn:aws:sns:1:t")
    assert result.exit_code == 0, result.output
    assert "dropped 1 pending create" in result.output and "imported as arn:aws:sns:1:t" in result.output
    assert dr.stack.pending == []
    (record,) = (dr.store().root / "pending-clears").iterdir()
    assert json.loads(record.read_text())["operator"] == OPERATOR
    assert invoke("state", "clear-pending", "--reason", "x", "--import", "not-a-urn").exit_code == 1


# --- real runs: where the control store is, who the operator is, which checkout -----------------------------


def test_the_control_store_is_s3_unless_a_local_one_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    with pytest.raises(DrctlError, match="no control store") as refused:
        commands.control_store_location(None, None)
    assert "--local-journal" in (refused.value.hint or "")
    with pytest.raises(DrctlError, match="not an s3:// location"):
        commands.control_store_location(".drctl", None)
    assert commands.control_store_location("s3://state-usw2/drctl", None) == "s3://state-usw2/drctl"
    assert commands.control_store_location(None, Path("/tmp/j")) == "/tmp/j"
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://acme-pulumi-state-usw2?region=us-west-2")
    assert commands.control_store_location(None, None) == "s3://acme-pulumi-state-usw2/drctl"


def test_the_operator_is_the_caller_arn_from_sts(aws: object) -> None:
    assert commands.caller_identity(aws, DR).startswith("arn:aws:")  # type: ignore[arg-type]


def test_real_commands_take_no_endpoint_override() -> None:
    result = invoke("failover", "--endpoint-url", "http://127.0.0.1:5000", "--help")
    assert result.exit_code != 0 and "No such option" in result.output


def _git(directory: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=directory, check=True, capture_output=True)


def test_updates_run_only_from_a_clean_checkout_of_main_unless_a_reason_is_recorded(tmp_path: Path) -> None:
    from automation.checkout import require_reviewed_checkout

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "reviewed")
    assert set(require_reviewed_checkout(repo, None)) == {"checkout"}

    (repo / "__main__.py").write_text("edited")
    with pytest.raises(DrctlError, match=r"uncommitted changes \(__main__\.py\)") as dirty:  # the whole name
        require_reviewed_checkout(repo, None)
    assert "stash" not in (dirty.value.hint or "")
    _git(repo, "checkout", "-q", "-b", "hotfix")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", "unreviewed")
    with pytest.raises(DrctlError, match="is not the tip of main") as refused:
        require_reviewed_checkout(repo, None)
    assert "--unreviewed-checkout-reason" in (refused.value.hint or "")
    recorded = require_reviewed_checkout(repo, "INC-123 hotfix, review after")
    assert "is not the tip of main" in recorded["checkout_override"] and "INC-123" in recorded["checkout_override"]


def test_the_checkout_verdict_is_recorded_in_the_run(dr: Dr, monkeypatch: pytest.MonkeyPatch) -> None:
    env = commands.Environment(
        dr.ctx,
        dr.store(),
        operator=OPERATOR,
        checkout_gate=lambda reason: {"checkout": "abc", "checkout_override": f"not main: {reason}"},
    )
    monkeypatch.setattr(commands, "open_environment", lambda stack, journal, local_journal: env)
    result = invoke("failover", "--mode", "emergency", "--reason", "x", "--yes", "--unreviewed-checkout-reason", "hot")
    assert result.exit_code == 0, result.output
    run = Journal(dr.store()).load()
    assert run is not None and run.attempts[0]["checkout_override"] == "not main: hot"
    assert run.attempts[0]["checkout"] == "abc" and run.parameters.options == {}  # never compared for a resume
    assert run.parameters.operator == OPERATOR
