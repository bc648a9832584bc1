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
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pulumi.automation as auto
import pytest
from typer.testing import CliRunner

from automation import changes, cli
from automation.checkout import require_reviewed_checkout
from automation.dr_state import DrStateAuthority, file_dr_keys
from automation.errors import DrctlError
from automation.journal import RunParameters, SystemClock, local_store
from automation.runbook import Runbook, RunbookEngine, RunFailedError, Step
from automation.runbooks.commands import apply_authority
from automation.runbooks.context import DrAws, DrContext
from automation.stack import PulumiStack, _stdout_errors, _streams
from tests.engine import program
from tests.engine.conftest import STACK, EngineWorld

pytestmark = [
    pytest.mark.engine,
    # The inline program's language server and the SDK's event stream complain when a test kills or
    # interrupts the CLI they serve.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore:Error in event stream"),
]

PRIMARY, DR = "us-east-1", "us-west-2"
FAILED_OVER = {"activeRegion": DR, "drState": "failed-over"}
PARAMETERS = RunParameters("engine test", "tester")


def urn(type_token: str, name: str) -> str:
    return f"urn:pulumi:engine::dr-platform::{type_token}::{name}"


DATABASE = urn("pulumi-python:dynamic/rds:Instance", "database-dr")
BUCKET = urn("pulumi-python:dynamic/s3:Bucket", "data-dr")
RECORD = urn("pulumi-python:dynamic/route53:Record", "app")
TOPIC = urn("pulumi-python:dynamic/sns:Topic", "alerts-dr")


@pytest.fixture
def deployed(engine_world: EngineWorld, monkeypatch: pytest.MonkeyPatch) -> PulumiStack:
    """The deployed stack (prod config, steady), selected by its fully qualified name."""
    monkeypatch.setitem(program.OPTIONS, "db_engine", "postgres")
    monkeypatch.setitem(program.OPTIONS, "topic", False)
    adapter = PulumiStack.select(
        STACK, engine_world.project, program=program.program, cancel_grace_seconds=1, terminate_grace_seconds=10
    )
    assert program.stored("database-dr")["replica"] is True
    return adapter


def drctl_update(
    adapter: PulumiStack,
    journal: Path,
    targets: list[str] | None,
    *,
    timeout: float = 120,
    write: dict[str, str] | None = None,
) -> Any:
    """A runbook that writes DR keys (authority first) and updates the stack through DrContext.update, as the DR
    runbooks do."""
    clock = SystemClock()
    ctx = DrContext(adapter, DrAws(None, clock), clock)  # type: ignore[arg-type]  # an update reaches no AWS
    store = local_store(STACK, root=journal)
    authority = DrStateAuthority(store, STACK)
    ctx.record_dr_state = lambda run, keys: authority.write(keys, run_id=run.run_id, operator="tester", at=clock.now())

    def update(run: Any) -> dict[str, str]:
        if write:
            ctx.write_config(run, write)
        return {"changes": ctx.update(run, targets, message="engine test").summary.describe()}

    engine = RunbookEngine(STACK, store, output=lambda _line: None, stop_wait_seconds=60)
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
    # catalogue: pulumi-cli.targeted-update-updates-outputs: the root stack was no target, its outputs moved anyway
    assert deployed.outputs() == {"activeRegion": DR, "drState": "failed-over"}


def test_the_stack_is_never_refreshed_even_when_the_environment_asks(
    deployed: PulumiStack, engine_world: EngineWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """catalogue: pulumi-cli.option-environment-variables, pulumi-cli.refresh-flag-explicit"""
    deployed.set_config(FAILED_OVER)
    monkeypatch.setenv("PULUMI_OPTION_REFRESH", "true")
    monkeypatch.setenv("PULUMI_OPTION_TARGET", DATABASE)
    assert _resources({step.urn for step in deployed.preview([RECORD]).changed}) == {RECORD}
    deployed.up([RECORD])
    assert not [line for line in program.calls() if line.startswith("read ")]
    assert program.stored("database-dr")["replica"] is True

    # The same environment through the plain Automation API: the real engine refreshes, and the variable's
    # target is added to the command line's (array flags merge).
    plain = auto.Stack.select(STACK, auto.LocalWorkspace(work_dir=str(engine_world.project), program=program.program))
    events: list[Any] = []
    plain.preview(target=[BUCKET], on_event=events.append)
    assert "read database-dr" in program.calls()
    steps = [event.resource_pre_event.metadata for event in events if event.resource_pre_event]
    assert _resources({step.urn for step in steps if step.op not in ("same", "refresh", "read")}) == {DATABASE, BUCKET}


def _resources(urns: set[str]) -> set[str]:
    """Without the default provider, whose step a targeted preview shows too."""
    return {urn for urn in urns if "::pulumi:providers:" not in urn}


def test_the_engine_refreshes_what_the_state_says_to_whatever_refresh_says(
    deployed: PulumiStack, engine_world: EngineWorld
) -> None:
    """catalogue: pulumi-cli.refresh-before-update-ignores-refresh-flag. A provider marks a resource (after a
    partial failure, say); the engine then reads it before any preview or update whose scope reaches it, with
    --refresh=false, and only then: drctl names those resources before it updates (DrContext.update)."""
    plain = auto.Stack.select(STACK, auto.LocalWorkspace(work_dir=str(engine_world.project), program=program.program))
    state = plain.export_stack()
    for resource in state.deployment["resources"]:
        if resource["urn"] == DATABASE:
            resource["refreshBeforeUpdate"] = True
    plain.import_stack(state)
    assert deployed.refreshed_before_update([RECORD]) == [] and deployed.refreshed_before_update(None) == [DATABASE]
    deployed.preview([RECORD])
    assert "read database-dr" not in program.calls()  # out of the scope: not read
    deployed.preview([DATABASE])
    assert "read database-dr" in program.calls()  # --refresh=false notwithstanding


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
    """catalogue: pulumi-cli.sigint-cancels-gracefully. The timeout lands in the preview or in the update; either
    is interrupted (an update lets its provider call finish), nothing new starts, and the stack is free."""
    deployed.set_config(FAILED_OVER)
    program.set_behaviour("database-dr", delay=2)
    graceful = PulumiStack.select(STACK, engine_world.project, program=program.program, cancel_grace_seconds=30)
    started = time.monotonic()
    with pytest.raises(RunFailedError, match="timed-out"):
        drctl_update(graceful, tmp_path / "journal", [DATABASE], timeout=2)
    assert time.monotonic() - started < 20
    assert locks(engine_world) == []  # the stack is free once the engine returned
    assert graceful._command is not None and not graceful._command.running

    program.set_behaviour("database-dr", delay=0)
    outcome = drctl_update(deployed, tmp_path / "journal-2", [DATABASE])
    assert outcome.status == "succeeded"
    assert program.stored("database-dr")["replica"] is False


def test_a_killed_cli_leaves_pending_operations_that_resume_clears(
    deployed: PulumiStack, engine_world: EngineWorld, tmp_path: Path
) -> None:
    """catalogue: pulumi-cli.kill-leaves-lock-and-pending. drctl stops the dead CLI's plugins (their own process
    groups) and deletes exactly its lock file; the pending update it left is dropped by the next update."""
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
    assert deployed._command is not None
    (cli,) = [one for one in deployed._command._running.values() if "up" in one.process.args]
    cli.snapshot()
    plugins = list(cli.descendants.values())
    cli.process.kill()  # SIGKILL: the CLI runs none of its cleanup (an OOM kill, say)
    worker.join(30)
    assert isinstance(failure.get("error"), RunFailedError)
    assert plugins and not [plugin for plugin in plugins if plugin.is_running()]  # the provider plugin too
    assert locks(engine_world) == []  # removed by drctl, the only one
    assert [(op.kind, op.urn) for op in deployed.pending_operations()] == [("updating", DATABASE)]

    program.set_behaviour("database-dr", delay=0)
    outcome = drctl_update(deployed, tmp_path / "journal", [DATABASE])  # the same run, resumed
    assert outcome.status == "succeeded" and outcome.run.attempts[-1]["operator"] == "tester"
    assert deployed.pending_operations() == [] and locks(engine_world) == []
    assert program.stored("database-dr")["replica"] is False


def test_a_pending_create_is_refused_then_dropped_with_the_clis_own_refresh(
    deployed: PulumiStack, engine_world: EngineWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """catalogue: pulumi-cli.pending-operations-warn-only. The engine keeps a pending create across updates;
    drctl refuses an update that would create it again, and its `state clear-pending` command (a refresh whose
    only target is the root stack) drops it without reading any resource."""
    monkeypatch.setitem(program.OPTIONS, "topic", True)
    program.set_behaviour("alerts-dr", delay=60)
    worker = threading.Thread(target=lambda: _swallow(lambda: deployed.up([TOPIC])), daemon=True)
    worker.start()
    wait_for_call("create-started alerts-dr")
    assert deployed._command is not None
    for one in list(deployed._command._running.values()):
        one.process.kill()
    worker.join(30)
    assert [(op.kind, op.urn) for op in deployed.pending_operations()] == [("creating", TOPIC)]

    program.set_behaviour("alerts-dr", delay=0)
    with pytest.raises(RunFailedError, match="pending create") as refused:
        drctl_update(deployed, tmp_path / "journal", [TOPIC])
    assert "--clear-pending-creates --target" in (refused.value.run.step("update_stack").error or "")
    calls_before = len(program.calls())
    report = deployed.resolve_pending_creates()
    assert [op.urn for op in report.cleared] == [TOPIC] and deployed.pending_operations() == []
    assert not [line for line in program.calls()[calls_before:] if line.startswith("read ")]  # no region read
    outcome = drctl_update(deployed, tmp_path / "journal", [TOPIC])  # the refused run, resumed
    assert outcome.status == "succeeded" and program.stored("alerts-dr") is not None


def test_two_updates_at_once_the_second_gets_the_lock_error(deployed: PulumiStack, engine_world: EngineWorld) -> None:
    """catalogue: pulumi-cli.diy-lock-refuses-second-update"""
    deployed.set_config(FAILED_OVER)
    program.set_behaviour("app", delay=60)
    # Stopped quickly at the end (an interrupt, then SIGKILL; drctl removes the killed CLI's lock).
    first_adapter = PulumiStack.select(
        STACK, engine_world.project, program=program.program, cancel_grace_seconds=0.5, terminate_grace_seconds=0.5
    )
    first = threading.Thread(target=lambda: _swallow(lambda: first_adapter.up([RECORD])), daemon=True)
    first.start()
    wait_for_call("update-started app")
    with pytest.raises(DrctlError, match="another update holds the stack") as refused:
        deployed.up([RECORD])
    assert "created by" in str(refused.value) and "(pid " in str(refused.value)
    assert "code: 1" in str(refused.value.__cause__)  # catalogue: pulumi-cli.exit-codes
    assert f"/.pulumi/locks/{STACK}/" in str(refused.value)
    first_adapter.cancel()
    first.join(30)
    assert locks(engine_world) == []


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
    assert "code: 1" in str(direct.value.__cause__)  # catalogue: pulumi-cli.exit-codes
    stdout, stderr = _streams(direct.value.__cause__)
    assert "Diagnostics:" in stdout and cause in stdout
    assert stderr.strip() == ""  # the CLI said nothing on stderr
    assert any(cause in line for line in _stdout_errors(stdout))  # what the fake CLI's tests rely on holds here


def test_the_cli_keeps_config_in_the_checkouts_stack_file_and_drctl_resumes_from_it(
    deployed: PulumiStack, engine_world: EngineWorld, tmp_path: Path
) -> None:
    """catalogue: pulumi-cli.config-in-project-stack-file. With a self-managed backend, what drctl writes to the
    stack config lands in the checkout's Pulumi.<stack>.yaml. The checkout gate lets that edit (and only that)
    through, the run resumes, and a clean checkout elsewhere gets the DR keys back from the authority."""
    project, stack_file = engine_world.project, engine_world.project / "Pulumi.engine.yaml"
    assert file_dr_keys(stack_file).get("dr-platform:drState", "steady") == "steady"
    _commit_checkout(project)
    program.set_behaviour("app", fail="Throttling: Rate exceeded")
    with pytest.raises(RunFailedError):
        drctl_update(deployed, tmp_path / "journal", [RECORD], write=FAILED_OVER)
    assert file_dr_keys(stack_file)["dr-platform:drState"] == "failed-over"  # the real CLI wrote the checkout
    assert _git(project, "status", "--porcelain") == " M Pulumi.engine.yaml\n"
    require_reviewed_checkout(project, None, STACK)  # drctl's own edit does not count

    program.set_behaviour("app", fail="")
    outcome = drctl_update(deployed, tmp_path / "journal", [RECORD], write=FAILED_OVER)
    assert outcome.status == "succeeded" and "resumed" in outcome.message
    assert program.stored("app")["target"] == DR

    _git(project, "checkout", "--", "Pulumi.engine.yaml")  # another operator's clean checkout, or CI's
    assert deployed.get_config()["dr-platform:drState"] == "steady"
    apply_authority(local_store(STACK, root=tmp_path / "journal"), STACK, project)
    assert deployed.get_config()["dr-platform:drState"] == "failed-over"  # what the CLI reads now


def _git(directory: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=directory, check=True, capture_output=True, text=True).stdout


def _commit_checkout(project: Path) -> None:
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "-A")
    _git(project, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", "reviewed")
