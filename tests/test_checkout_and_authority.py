"""drctl's real environment against the real SDK, the fake `pulumi` and a git checkout: where the DR keys live.

With a self-managed backend the stack config is the checkout's `Pulumi.<stack>.yaml` (catalogue:
pulumi-cli.config-in-project-stack-file). drctl reads the DR keys from the DR state authority into that file
when it opens the stack, writes them back there through the CLI, and its checkout gate ignores exactly that
edit, so a second operator, CI and a resumed run all see where the platform stands.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from automation import cli
from automation.checkout import require_reviewed_checkout
from automation.dr_state import DrStateAuthority, file_dr_keys
from automation.errors import DrctlError
from automation.journal import StackLock, local_store
from automation.runbook import Runbook, RunbookEngine, RunContext, RunFailedError, Step
from automation.runbooks import commands
from components.config import DrState
from tests.conftest import ROOT, prod_config
from tests.fake_pulumi import FakePulumi, policy_pack

STACK = "organization/dr-platform/prod"
PRIMARY, DR = "us-east-1", "us-west-2"
FAILED_OVER = {"dr-platform:activeRegion": DR, "dr-platform:drState": "failed-over"}


def _git(directory: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=directory, check=True, capture_output=True, text=True)
    return done.stdout


def _commit(directory: Path, message: str) -> None:
    _git(directory, "add", "-A")
    _git(directory, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", message)


@pytest.fixture
def checkout(fake_pulumi: FakePulumi, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake CLI's project as a git checkout of main: Pulumi.yaml, the committed Pulumi.prod.yaml, policy/."""
    project = fake_pulumi.project
    fake_pulumi.add_stack(STACK, prod_config())
    shutil.copy(ROOT / "Pulumi.prod.yaml", fake_pulumi.stack_file(STACK))
    policy_pack(project / "policy", with_virtualenv=True)
    (project / ".gitignore").write_text("policy/venv/\n")
    _git(project, "init", "-q", "-b", "main")
    _commit(project, "reviewed")
    monkeypatch.setattr(commands, "PROJECT_DIR", project)
    return project


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "control-store"


def _authority_says(journal: Path, keys: dict[str, str]) -> None:
    authority = DrStateAuthority(local_store(STACK, root=journal), STACK)
    authority.write(keys, run_id="failover-1", operator="alice", at=commands.SystemClock().now())


def test_opening_the_stack_writes_the_authoritys_dr_keys_into_the_stack_file_the_cli_reads(
    checkout: Path, journal: Path, aws: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another operator's checkout (or CI) holds the committed `steady`; the authority says failed over."""
    _authority_says(journal, {**prod_config(), **FAILED_OVER})
    env = commands.default_environment(STACK, None, journal)
    assert env.ctx.config().dr_state is DrState.FAILED_OVER  # what the CLI now hands the program
    assert file_dr_keys(checkout / "Pulumi.prod.yaml")["dr-platform:drState"] == "failed-over"
    assert "drState: steady -> failed-over" in capsys.readouterr().err
    assert env.operator.startswith("arn:aws:")


def test_the_checkout_gate_ignores_drctls_own_edit_of_the_dr_keys_and_nothing_else(
    checkout: Path, journal: Path, aws: object
) -> None:
    _authority_says(journal, {**prod_config(), **FAILED_OVER})
    env = commands.default_environment(STACK, None, journal)
    assert set(env.checkout_gate(None)) == {"checkout"}  # synced from the authority: not a change

    env.ctx.stack.set_config({"activeRegion": PRIMARY, "drState": "steady"})  # the CLI rewrites the whole file
    assert _git(checkout, "status", "--porcelain") == " M Pulumi.prod.yaml\n"  # re-quoted, comments gone
    assert set(env.checkout_gate(None)) == {"checkout"}

    stack_file = checkout / "Pulumi.prod.yaml"
    stack_file.write_text(stack_file.read_text().replace("acme-drp", "acme-other"))
    with pytest.raises(DrctlError, match=r"uncommitted changes \(Pulumi\.prod\.yaml\)") as refused:
        env.checkout_gate(None)
    assert "stash" not in (refused.value.hint or "")  # stashing would put the committed DR keys back
    (checkout / "notes.txt").write_text("x")
    with pytest.raises(DrctlError, match=r"notes\.txt"):
        require_reviewed_checkout(checkout, None, STACK)


def test_a_run_that_wrote_the_dr_keys_resumes_from_the_same_checkout_and_with_an_override(
    checkout: Path, journal: Path, aws: object
) -> None:
    """The first attempt writes failed-over through the CLI into Pulumi.prod.yaml, then fails; the rerun passes
    the gate, and an --unreviewed-checkout-reason is recorded in the attempts, not compared: the run resumes."""
    env = commands.default_environment(STACK, None, journal)
    failures = [1]

    def write_keys(run: RunContext) -> None:
        env.ctx.write_config(run, FAILED_OVER)

    def update(run: RunContext) -> None:
        if failures:
            failures.pop()
            raise DrctlError("update failed: a provider error")

    runbook = Runbook("failover", "x", (Step("write_config", write_keys), Step("update_stack", update)))
    engine = RunbookEngine(STACK, env.store, output=lambda _: None)
    with pytest.raises(RunFailedError):
        engine.run(runbook, commands._parameters(env, "outage", mode="emergency"))
    assert _git(checkout, "status", "--porcelain").strip() == "M Pulumi.prod.yaml"
    assert DrStateAuthority(env.store, STACK).read().keys["dr-platform:drState"] == "failed-over"

    again = commands.default_environment(STACK, None, journal)  # a new drctl process
    parameters = commands._parameters(again, "outage", mode="emergency", unreviewed_reason="INC-9 from my laptop")
    outcome = RunbookEngine(STACK, again.store, output=lambda _: None).run(runbook, parameters)
    assert outcome.status == "succeeded" and "resumed" in outcome.message
    assert [set(attempt) >= {"checkout"} for attempt in outcome.run.attempts] == [True, True]


# --- deploy-gate ---------------------------------------------------------------------------------


def _gate_checkout(tmp_path: Path) -> Path:
    directory = tmp_path / "ci-checkout"
    directory.mkdir()
    shutil.copy(ROOT / "Pulumi.prod.yaml", directory / "Pulumi.prod.yaml")
    return directory


def test_a_read_only_gate_needs_only_the_control_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The PR preview role can read the control store and nothing else: no Pulumi CLI, no state, no decrypt."""
    checkout, journal = _gate_checkout(tmp_path), tmp_path / "control-store"
    _authority_says(journal, {**prod_config(), **FAILED_OVER})
    nothing = tmp_path / "empty-bin"
    nothing.mkdir()
    monkeypatch.setenv("PATH", str(nothing))  # no pulumi, no aws
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    probe = [
        sys.executable,
        "-c",
        "import pathlib, sys; sys.exit(0 if 'failed-over' in pathlib.Path(sys.argv[1]).read_text() else 5)",
        str(checkout / "Pulumi.prod.yaml"),
    ]
    args = ["deploy-gate", "--stack", STACK, "--read-only", "--local-journal", str(journal)]
    result = CliRunner().invoke(cli.app, [*args, "--project-dir", str(checkout), "--", *probe])
    assert result.exit_code == 0, (result.output, result.exception)


def _gate_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A local control store whose authority says steady, which deploy-gate opens (as CI's role would)."""
    journal = tmp_path / "control-store"
    _authority_says(journal, prod_config())
    store = local_store(STACK, root=journal)
    gate = commands.GateEnvironment(STACK, store, commands.SystemClock(), "arn:aws:sts::1:assumed-role/deploy/ci")
    monkeypatch.setattr(commands, "open_gate_environment", lambda *_args: gate)
    return store


def test_a_gate_that_loses_the_race_for_the_lock_refuses_with_the_deploy_blocked_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _gate_store(tmp_path, monkeypatch)
    real_current = StackLock.current
    seen: list[int] = []

    def taken_meanwhile(lock: StackLock) -> object:
        if not seen:  # the gate's check finds it free; an operator takes it before the gate's acquire
            seen.append(1)
            StackLock(store, STACK).acquire("alice", "failover")
            return None
        return real_current(lock)

    monkeypatch.setattr(StackLock, "current", taken_meanwhile)
    checkout = _gate_checkout(tmp_path)
    result = CliRunner().invoke(cli.app, ["deploy-gate", "--project-dir", str(checkout), "--", "true"])
    assert result.exception.exit_code == commands.DEPLOY_BLOCKED_EXIT and "deploy refused" in str(result.exception)


def test_a_cancelled_gate_passes_the_signal_on_and_releases_the_lock_only_after_the_command_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CI cancellation (SIGINT, then SIGTERM) reaches deploy-gate; the command (pulumi up) must get it too and
    finish its graceful cancel while the gate still holds the stack."""
    store = _gate_store(tmp_path, monkeypatch)
    marker = tmp_path / "command.log"
    lock_file = store.root / "lock.json"
    command = (
        "import pathlib, signal, sys, time\n"
        f"log, lock = pathlib.Path({str(marker)!r}), pathlib.Path({str(lock_file)!r})\n"
        "def stop(signum, frame):\n"
        "    time.sleep(0.3)  # pulumi finishing what is in flight\n"
        "    log.write_text(f'got {signum}; lock held: {lock.exists()}')\n"
        "    sys.exit(8)\n"
        "signal.signal(signal.SIGINT, stop)\n"
        "log.write_text('started')\n"
        "time.sleep(20)\n"
    )
    script = tmp_path / "pulumi_up.py"
    script.write_text(command)

    def cancel_when_started() -> None:
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, lambda *_: None)  # the old gate let SIGINT reach pytest
    try:
        threading.Thread(target=cancel_when_started, daemon=True).start()
        started = time.monotonic()
        result = CliRunner().invoke(
            cli.app,
            ["deploy-gate", "--project-dir", str(_gate_checkout(tmp_path)), "--", sys.executable, str(script)],
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - started < 10
    assert marker.read_text() == f"got {int(signal.SIGINT)}; lock held: True"
    assert result.exit_code == 8 and not lock_file.exists()
    assert json.loads((store.root / "dr-state.json").read_text())["keys"]["dr-platform:drState"] == "steady"


def test_a_gate_whose_command_outlives_the_cancel_keeps_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _gate_store(tmp_path, monkeypatch)
    monkeypatch.setattr(commands, "GATE_STOP_WAIT_SECONDS", 0.3)
    deaf = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(2)"
    threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
    checkout = _gate_checkout(tmp_path)
    result = CliRunner().invoke(
        cli.app, ["deploy-gate", "--project-dir", str(checkout), "--", sys.executable, "-c", deaf]
    )
    assert isinstance(result.exception, commands.ProcessStillRunningError)
    assert "stack lock stays held" in str(result.exception)
    assert StackLock(store, STACK).current() is not None  # pulumi may still act: nothing else may start
