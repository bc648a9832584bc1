"""backup-verify against the sandbox: passes on healthy backups, names each failed check, always cleans up."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.rds.models import rds_backends
from typer.testing import CliRunner

from automation import backup_verify
from automation.backup_verify import (
    BackupVerification,
    SnapshotCatalogue,
    take_sandbox_backups,
    verify_backups,
    write_reports,
)
from automation.cli import app
from automation.sandbox import MotoSandboxServer, Sandbox
from automation.timings import Op, latency
from tests.conftest import ROOT, prod_config

PRIMARY, DR = "us-east-1", "us-west-2"


@pytest.fixture
def sandbox(server: MotoSandboxServer) -> Iterator[Sandbox]:
    with Sandbox.open(prod_config(), server=server, scale=0) as opened:
        outputs = opened.provision()
        take_sandbox_backups(opened.clients, outputs, opened.cfg, opened.clock.now())
        opened.clock.sleep(latency(Op.RDS_SNAPSHOT))  # snapshots are creating until then (the sandbox's RDS model)
        yield opened


def _verify(sandbox: Sandbox, **options: object) -> BackupVerification:
    outputs = sandbox.stack.outputs()
    identifiers = [entry["identifier"] for entry in outputs["database"].values()]
    return verify_backups(
        sandbox.clients,
        sandbox.cfg,
        outputs,
        SnapshotCatalogue(sandbox.clients, identifiers),
        clock=sandbox.clock,
        mode="sandbox",
        **options,
    )


def _scratch_instances(sandbox: Sandbox) -> list[str]:
    return [
        instance["DBInstanceIdentifier"]
        for region in (PRIMARY, DR)
        for instance in sandbox.clients.client("rds", region).describe_db_instances()["DBInstances"]
        if "-verify-" in instance["DBInstanceIdentifier"]
    ]


def _failed(verification: BackupVerification) -> set[tuple[str, str]]:
    return {
        (region.region, check.name) for region in verification.regions for check in region.checks if not check.passed
    }


def test_healthy_backups_pass_every_check_in_both_regions_and_leave_no_scratch_instance(sandbox: Sandbox) -> None:
    verification = _verify(sandbox)
    assert verification.passed, verification.failures()
    for region in verification.regions:
        assert [check.name for check in region.checks] == list(backup_verify.CHECKS)
    dr = next(region for region in verification.regions if region.region == DR)
    assert dr.backup is not None and dr.backup.endswith("-copy")  # the DR region restores its own copy
    assert _scratch_instances(sandbox) == []


def test_an_unencrypted_newest_snapshot_fails_the_encryption_check(sandbox: Sandbox) -> None:
    writer = sandbox.stack.outputs()["database"][PRIMARY]["identifier"]
    # An unencrypted snapshot of the writer (moto derives a snapshot's encryption from its instance's key).
    instance = rds_backends[DEFAULT_ACCOUNT_ID][PRIMARY].databases[writer]
    instance.storage_encrypted, instance.kms_key_id = False, None
    sandbox.clock.sleep(60)
    sandbox.clients.client("rds", PRIMARY).create_db_snapshot(
        DBInstanceIdentifier=writer, DBSnapshotIdentifier=f"{writer}-unencrypted"
    )
    verification = _verify(sandbox)
    assert not verification.passed
    assert (PRIMARY, "encryption") in _failed(verification)
    assert any("encryption (not encrypted)" in failure for failure in verification.failures())
    assert _scratch_instances(sandbox) == []


def test_backups_older_than_the_daily_schedule_fail_the_age_check_and_still_clean_up(sandbox: Sandbox) -> None:
    sandbox.clock.sleep(timedelta(days=2).total_seconds())
    verification = _verify(sandbox)
    assert {(PRIMARY, "age"), (DR, "age")} <= _failed(verification)
    assert _scratch_instances(sandbox) == []


def test_a_failed_restore_is_reported_and_cleanup_still_runs(sandbox: Sandbox) -> None:
    for region in (PRIMARY, DR):
        rds = sandbox.clients.client("rds", region)
        for snapshot in rds.describe_db_snapshots()["DBSnapshots"]:
            rds.delete_db_snapshot(DBSnapshotIdentifier=snapshot["DBSnapshotIdentifier"])
    verification = _verify(sandbox)
    assert _failed(verification) == {(PRIMARY, "status"), (DR, "status")}
    assert all("no backup" in region.checks[0].detail for region in verification.regions)


def test_random_pick_is_repeatable_with_a_seed(sandbox: Sandbox) -> None:
    first = [region.backup for region in _verify(sandbox, pick_random=True, seed=7).regions]
    second = [region.backup for region in _verify(sandbox, pick_random=True, seed=7).regions]
    assert first == second


def test_reports_are_written_as_json_and_markdown_labelled_as_a_simulation(sandbox: Sandbox, tmp_path: Path) -> None:
    verification = _verify(sandbox, simulated=["moto"])
    paths = write_reports(verification, tmp_path)
    assert [path.suffix for path in paths] == [".json", ".md"]
    assert '"simulation": true' in paths[0].read_text()
    assert "(SIMULATION)" in paths[1].read_text()


def test_the_command_exits_non_zero_naming_the_failed_check(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.clock.sleep(timedelta(days=2).total_seconds())
    stale = _verify(sandbox)
    monkeypatch.setattr(backup_verify, "run_in_sandbox", lambda **_: stale)
    result = CliRunner().invoke(app, ["backup-verify", "--sandbox", "--report-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "age" in str(result.exception)


def test_reports_go_under_out_by_default_and_a_failed_write_still_prints_the_result(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passed = _verify(sandbox)
    assert passed.passed
    monkeypatch.setattr(backup_verify, "run_in_sandbox", lambda **_: passed)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["backup-verify", "--sandbox"])
    assert result.exit_code == 0, result.output
    written = sorted(path.relative_to(tmp_path).as_posix() for path in (tmp_path / "out" / "reports").iterdir())
    assert [Path(name).suffix for name in written] == [".json", ".md"] and written[0].startswith("out/reports/")
    # out/ is where every drctl report goes: ignored by git, removed by `make clean`.
    ignored = subprocess.run(["git", "check-ignore", "-q", "out/reports/x.json"], cwd=ROOT, check=False)
    assert ignored.returncode == 0

    def disk_full(*_args: object) -> list[Path]:
        raise OSError(errno.ENOSPC, "No space left on device", "out/reports/backup-verify.json")

    monkeypatch.setattr(backup_verify, "write_reports", disk_full)
    result = CliRunner().invoke(app, ["backup-verify", "--sandbox"])
    assert result.exit_code == 0, result.output  # the backups verified: the verdict is the exit code's
    assert passed.to_markdown() in result.stdout
    assert (
        "warning: the reports could not be written to out/reports (No space left on device: "
        "out/reports/backup-verify.json); the report above is the result" in result.stderr
    )


def test_an_unusable_report_dir_is_refused_before_any_restore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run(**_: object) -> BackupVerification:
        raise AssertionError("a restore ran although its reports had nowhere to go")

    monkeypatch.setattr(backup_verify, "run_in_sandbox", must_not_run)
    blocked = tmp_path / "reports"
    blocked.write_text("a file where the report directory should be")
    result = CliRunner().invoke(app, ["backup-verify", "--sandbox", "--report-dir", str(blocked)])
    assert result.exit_code != 0 and result.exception.exit_code == 2  # drctl's main() exits with it
    assert str(result.exception) == f"--report-dir {blocked} cannot take the reports: File exists: {blocked}"
