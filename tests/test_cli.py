"""The DR commands through typer's CliRunner (and `main()` for the error line), on the stand-in platform."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from automation import cli
from automation.journal import Journal, RunParameters, StackLock
from automation.runbooks import commands
from automation.runbooks.failback import prepare_runbook
from automation.runbooks.failover import failover_runbook
from tests.dr_world import DR, PRIMARY, STACK, Dr

runner = CliRunner()


@pytest.fixture
def dr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Dr:
    platform = Dr(tmp_path / "journal")
    monkeypatch.setattr(
        commands,
        "open_environment",
        lambda stack, journal, endpoint: commands.Environment(platform.ctx, platform.store()),
    )
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


def test_main_propagates_the_status_exit_code(dr: Dr, monkeypatch: pytest.MonkeyPatch) -> None:
    dr.world.down.add(PRIMARY)
    assert run_main(monkeypatch, "status", "--json") == 2
