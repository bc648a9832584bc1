"""drctl's Pulumi side against the real engine (make engine): adapter, runbook engine, guard.

Everything goes through `PulumiStack` and the runbook engine as a drctl run
would, with the program inline (the Automation API's in-process language
server) because the Python language host is not served as a Go module here;
see docs/runbook-engine.md. The "cloud" is the dynamic providers' directory
(tests/engine/program.py).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pulumi.automation as auto
import pytest
from typer.testing import CliRunner

from automation import changes, cli
from automation.errors import DrctlError
from automation.journal import RunParameters, SystemClock, local_store
from automation.runbook import Runbook, RunbookEngine, RunFailedError, Step
from automation.runbooks.context import DrAws, DrContext
from automation.stack import PulumiStack, _stdout_errors, _streams
from tests.engine import program
from tests.engine.conftest import STACK, EngineWorld

pytestmark = [
    pytest.mark.engine,
    # The inline program's language server complains when a test kills or interrupts the CLI it serves.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

PRIMARY, DR = "us-east-1", "us-west-2"
FAILED_OVER = {"activeRegion": DR, "drState": "failed-over"}
PARAMETERS = RunParameters("engine test", "tester")


def urn(type_token: str, name: str) -> str:
    return f"urn:pulumi:engine::dr-platform::{type_token}::{name}"


DATABASE = urn("pulumi-python:dynamic/rds:Instance", "database-dr")
BUCKET = urn("pulumi-python:dynamic/s3:Bucket", "data-dr")
RECORD = urn("pulumi-python:dynamic/route53:Record", "app")


@pytest.fixture
def deployed(engine_world: EngineWorld, monkeypatch: pytest.MonkeyPatch) -> PulumiStack:
    """The deployed stack (prod config, steady), selected by its fully qualified name."""
    monkeypatch.setitem(program.OPTIONS, "db_engine", "postgres")
    adapter = PulumiStack.select(
        STACK, engine_world.project, program=program.program, cancel_grace_seconds=1, terminate_grace_seconds=10
    )
    assert program.stored("database-dr")["replica"] is True
    return adapter


def drctl_update(adapter: PulumiStack, journal: Path, targets: list[str] | None, *, timeout: float = 120) -> Any:
    """One runbook step that updates the stack through DrContext.update, as the DR runbooks do."""
    clock = SystemClock()
    ctx = DrContext(adapter, DrAws(None, clock), clock)  # type: ignore[arg-type]  # an update reaches no AWS

    def update(run: Any) -> dict[str, str]:
        return {"changes": ctx.update(run, targets, message="engine test").summary.describe()}

    engine = RunbookEngine(STACK, local_store(STACK, root=journal), output=lambda _line: None, stop_wait_seconds=60)
    runbook = Runbook("update", "an update through drctl", (Step("update_stack", update, timeout_seconds=timeout),))
    return engine.run(runbook, PARAMETERS)


def locks(world: EngineWorld) -> list[Path]:
    return sorted((world.backend / ".pulumi" / "locks").rglob("*.json"))


def wait_for_call(line: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while line not in program.calls():
        assert time.monotonic() < deadline, f"the provider never logged {line!r}"
        time.sleep(0.05)


def test_a_targeted_update_through_drctl_changes_only_its_targets(deployed: PulumiStack, tmp_path: Path) -> None:
    assert deployed.fully_qualified_name == STACK
    deployed.set_config(FAILED_OVER)
    assert deployed.get_config()["dr-platform:drState"] == "failed-over"

    outcome = drctl_update(deployed, tmp_path / "journal", [RECORD])
    assert outcome.status == "succeeded"
    assert program.stored("app")["target"] == DR
    assert program.stored("data-dr")["replication_source"] == PRIMARY  # not a target: left as it was
    assert program.stored("database-dr")["replica"] is True
    held_back = {step.urn for step in deployed.preview(None).changed}
    assert {DATABASE, BUCKET} <= held_back


def test_the_stack_is_never_refreshed_even_when_the_environment_asks(
    deployed: PulumiStack, engine_world: EngineWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """catalogue: pulumi-cli.option-environment-variables, pulumi-cli.refresh-flag-explicit"""
    monkeypatch.setenv("PULUMI_OPTION_REFRESH", "true")
    deployed.preview(None)
    deployed.up([RECORD])
    assert not [line for line in program.calls() if line.startswith("read ")]

    # The same environment through the plain Automation API: the real engine refreshes.
    plain = auto.Stack.select(STACK, auto.LocalWorkspace(work_dir=str(engine_world.project), program=program.program))
    plain.preview()
    assert "read database-dr" in program.calls()


def _preview_json(world: EngineWorld, tmp_path: Path) -> Path:
    """`pulumi preview --json` from the real engine, through the plain Automation API."""
    plain = auto.Stack.select(STACK, auto.LocalWorkspace(work_dir=str(world.project), program=program.program))
    try:
        stdout = plain.preview(json=True).stdout
    except auto.errors.CommandError as error:
        stdout = str(error).split("\n stdout: ", 1)[1].rsplit("\n stderr: ", 1)[0]
    path = tmp_path / f"preview-{time.monotonic_ns()}.json"
    path.write_text(stdout)
    return path


def test_drctl_guard_reads_the_real_engines_preview_json(
    deployed: PulumiStack, engine_world: EngineWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for type_token in ("pulumi-python:dynamic/rds:Instance", "pulumi-python:dynamic/s3:Bucket"):
        monkeypatch.setitem(changes.STATEFUL_TYPES, type_token, "the test program's stand-in for an AWS type")
    runner = CliRunner()
    deployed.set_config(FAILED_OVER)
    benign = _preview_json(engine_world, tmp_path)
    assert runner.invoke(cli.app, ["guard", str(benign)]).exit_code == 0

    monkeypatch.setitem(program.OPTIONS, "db_engine", "mysql")  # a new engine replaces the protected database
    replacing = _preview_json(engine_world, tmp_path)
    refused = runner.invoke(cli.app, ["guard", str(replacing)])
    assert refused.exit_code != 0, refused.output


def test_drctl_guard_fails_a_real_preview_with_an_error_diagnostic(
    deployed: PulumiStack, engine_world: EngineWorld, tmp_path: Path
) -> None:
    deployed.set_config(FAILED_OVER)
    program.set_behaviour("app", fail_diff="AccessDenied: route53:ListResourceRecordSets")
    failing = _preview_json(engine_world, tmp_path)
    assert "AccessDenied" in failing.read_text()
    refused = CliRunner().invoke(cli.app, ["guard", str(failing)])
    assert refused.exit_code != 0, refused.output


def test_a_step_timeout_cancels_the_update_and_the_next_update_proceeds(
    deployed: PulumiStack, engine_world: EngineWorld, tmp_path: Path
) -> None:
    deployed.set_config(FAILED_OVER)
    program.set_behaviour("database-dr", delay=60)
    started = time.monotonic()
    with pytest.raises(RunFailedError, match="timed-out"):
        drctl_update(deployed, tmp_path / "journal", [DATABASE], timeout=2)
    assert time.monotonic() - started < 30  # the cancel did not wait for the 60 s provider call
    assert locks(engine_world) == []  # the stack is free once the engine returned

    program.set_behaviour("database-dr", delay=0)
    outcome = drctl_update(deployed, tmp_path / "journal-2", [DATABASE])
    assert outcome.status == "succeeded"
    assert program.stored("database-dr")["replica"] is False


def test_a_killed_cli_leaves_pending_operations_that_resume_clears(
    deployed: PulumiStack, engine_world: EngineWorld, tmp_path: Path
) -> None:
    """catalogue: pulumi-cli.kill-leaves-lock-and-pending"""
    deployed.set_config(FAILED_OVER)
    program.set_behaviour("database-dr", delay=60)
    failure: dict[str, BaseException] = {}

    def run() -> None:
        try:
            drctl_update(deployed, tmp_path / "journal", [DATABASE])
        except BaseException as error:
            failure["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    wait_for_call("update-started database-dr")
    for process in list(deployed._command._running):  # SIGKILL: the CLI runs none of its cleanup
        process.kill()
    worker.join(30)
    assert isinstance(failure.get("error"), RunFailedError)
    assert locks(engine_world)  # left behind
    assert [(op.kind, op.urn) for op in deployed.pending_operations()] == [("updating", DATABASE)]

    program.set_behaviour("database-dr", delay=0)
    outcome = drctl_update(deployed, tmp_path / "journal", [DATABASE])  # the same run, resumed
    assert outcome.status == "succeeded" and outcome.run.attempts[-1]["operator"] == "tester"
    assert deployed.pending_operations() == [] and locks(engine_world) == []
    assert program.stored("database-dr")["replica"] is False


def test_two_updates_at_once_the_second_gets_the_lock_error(deployed: PulumiStack) -> None:
    """catalogue: pulumi-cli.diy-lock-refuses-second-update"""
    deployed.set_config(FAILED_OVER)
    program.set_behaviour("app", delay=60)
    first = threading.Thread(target=lambda: _swallow(lambda: deployed.up([RECORD])), daemon=True)
    first.start()
    wait_for_call("update-started app")
    with pytest.raises(DrctlError, match="another update holds the stack") as refused:
        deployed.up([RECORD])
    assert "created by" in str(refused.value) and "(pid " in str(refused.value)
    deployed.cancel()
    first.join(30)


def _swallow(action: Any) -> None:
    with contextlib.suppress(DrctlError):
        action()


def test_provider_diagnostics_reach_the_journal(deployed: PulumiStack, tmp_path: Path) -> None:
    """catalogue: pulumi-cli.diagnostics-on-stdout"""
    cause = "InvalidChangeBatch: RRSet of type CNAME with DNS name app.platform.example.com. is not permitted"
    deployed.set_config(FAILED_OVER)
    program.set_behaviour("app", fail=cause)
    with pytest.raises(RunFailedError) as failed:
        drctl_update(deployed, tmp_path / "journal", [RECORD])
    assert cause in (failed.value.run.step("update_stack").error or "")
    journal = json.loads((tmp_path / "journal" / STACK / "journal" / "current.json").read_text())
    assert cause in journal["steps"][0]["error"]

    with pytest.raises(DrctlError) as direct:
        deployed.up([RECORD])
    stdout, stderr = _streams(direct.value.__cause__)
    assert "Diagnostics:" in stdout and cause in stdout
    assert stderr.strip() == ""  # the CLI said nothing on stderr
    assert any(cause in line for line in _stdout_errors(stdout))  # what the fake CLI's tests rely on holds here
