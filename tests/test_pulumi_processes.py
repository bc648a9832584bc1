"""The Pulumi CLI as a process drctl starts and stops: sessions, cancellation, plugins, policy packs.

Through the real `pulumi.automation` SDK and drctl's adapter against the fake `pulumi` (tests/fake_pulumi),
whose previews and updates run a provider plugin in a process group of its own, as the real CLI's do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from automation import cancellation
from automation.errors import DrctlError
from automation.journal import Journal, RunParameters, StackLock, local_store
from automation.runbook import INTERRUPTED_EXIT, Runbook, RunbookEngine, RunContext, RunFailedError, Step
from automation.runbooks.context import DrAws, DrContext
from automation.stack import PulumiStack
from tests.conftest import prod_config
from tests.fake_pulumi import FakePulumi, policy_pack

STACK = "organization/dr-platform/prod"
DB = "urn:pulumi:prod::dr-platform::aws:rds/instance:Instance::db-dr"
TOPIC = "urn:pulumi:prod::dr-platform::aws:sns/topic:Topic::alerts-dr"
RESOURCES = [{"urn": DB, "type": "aws:rds/instance:Instance"}, {"urn": TOPIC, "type": "aws:sns/topic:Topic"}]
STEPS = [{"urn": DB, "op": "update", "type": "aws:rds/instance:Instance"}]
PARAMS = RunParameters("drill", "alice")

# The SDK's event-stream thread complains when the CLI it listens to is killed.
pytestmark = pytest.mark.filterwarnings("ignore:Error in event stream")


@pytest.fixture
def cli(fake_pulumi: FakePulumi) -> FakePulumi:
    fake_pulumi.add_stack(STACK, prod_config(), resources=RESOURCES)
    fake_pulumi.scenario(up={"steps": STEPS}, preview={"steps": STEPS})
    return fake_pulumi


def _select(cli: FakePulumi, **options: Any) -> PulumiStack:
    return PulumiStack.select(STACK, cli.project, cancel_grace_seconds=2, terminate_grace_seconds=1, **options)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _in_background(action: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = action()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_the_cli_runs_in_a_session_of_its_own(cli: FakePulumi) -> None:
    """A terminal's Ctrl-C goes to the foreground process group: it must reach drctl only, which decides."""
    cli.scenario(preview={"steps": STEPS, "delay_seconds": 5})
    adapter = _select(cli)
    thread, _ = _in_background(lambda: adapter.preview([DB]))
    pid = cli.wait_for_call("preview")
    assert os.getsid(pid) == pid != os.getsid(0)
    adapter.cancel()
    thread.join(5)


def test_a_cancelled_step_starts_no_cli(cli: FakePulumi) -> None:
    adapter = _select(cli)
    scope = cancellation.CancelScope("update_stack")
    scope.cancel()
    with cancellation.opened(scope), pytest.raises(cancellation.CancelledError, match="not starting `pulumi up`"):
        adapter.up([DB])
    assert cli.calls("up") == []


def test_cancelling_the_step_interrupts_a_running_preview(cli: FakePulumi) -> None:
    """catalogue: pulumi-cli.sigint-cancels-gracefully (a preview too)"""
    cli.scenario(preview={"steps": STEPS, "delay_seconds": 30})
    adapter = _select(cli)
    scope = cancellation.CancelScope("update_stack")

    def preview() -> Any:
        with cancellation.opened(scope):
            return adapter.preview([DB])

    thread, outcome = _in_background(preview)
    pid = cli.wait_for_call("preview")
    started = time.monotonic()
    scope.cancel()
    assert time.monotonic() - started < 5 and not _alive(pid)
    thread.join(5)
    assert "preview canceled" in str(outcome["error"])


def test_a_preview_that_outruns_the_step_timeout_is_stopped_and_no_update_starts(
    cli: FakePulumi, tmp_path: Path
) -> None:
    """The reviewer's race: preview 3 s, update 40 s, step timeout 1 s. The cancel must cover the preview, and a
    step cancelled during it must not start the update afterwards."""
    cli.scenario(preview={"steps": STEPS, "delay_seconds": 3}, up={"steps": STEPS, "delay_seconds": 40})
    adapter = _select(cli)
    ctx = DrContext(adapter, DrAws(None, None), None)  # type: ignore[arg-type]  # an update reaches no AWS
    step = Step("update_stack", lambda run: ctx.update(run, [DB], message="x") and None, timeout_seconds=1)
    engine = RunbookEngine(STACK, local_store(STACK, root=tmp_path), output=lambda _: None, stop_wait_seconds=10)
    started = time.monotonic()
    with pytest.raises(RunFailedError, match="timed-out"):
        engine.run(Runbook("switch", "x", (step,)), PARAMS)
    assert time.monotonic() - started < 8
    assert cli.calls("up") == [] and cli.locks(STACK) == []
    assert not [pid for pid in cli.plugins() if _alive(pid)]


def test_a_hung_update_is_killed_with_its_plugins_and_its_lock_released(cli: FakePulumi) -> None:
    """catalogue: pulumi-cli.kill-leaves-lock-and-pending, pulumi-cli.diy-cancel-only-deletes-lock. A plugin
    outlives a SIGKILL of its CLI (its own process group) and may still act; drctl stops it before it returns,
    and removes exactly the killed CLI's lock file, never with `pulumi cancel`."""
    cli.scenario(up={"steps": STEPS, "delay_seconds": 30, "ignore_interrupts": True})
    adapter = PulumiStack.select(STACK, cli.project, cancel_grace_seconds=0.3, terminate_grace_seconds=0.3)
    thread, outcome = _in_background(lambda: adapter.up([DB]))
    pid = cli.wait_for_call("up")
    adapter.cancel()
    returned = time.time()
    thread.join(10)
    assert not thread.is_alive() and isinstance(outcome.get("error"), DrctlError)
    plugins = cli.plugins()
    assert plugins and not [plugin for plugin in plugins if _alive(plugin)] and not _alive(pid)
    time.sleep(0.3)
    assert not [at for _, at in cli.plugin_activity() if at > returned + 0.05]  # nothing acted after
    assert cli.locks(STACK) == [] and cli.calls("cancel") == []
    assert [op["type"] for op in cli.state(STACK)["deployment"]["pending_operations"]] == ["updating"]


def test_a_cli_killed_by_someone_else_has_its_plugins_stopped_and_its_lock_released(cli: FakePulumi) -> None:
    """The OOM killer, an operator's kill -9: drctl still stops the orphaned plugins and frees the stack."""
    cli.scenario(up={"steps": STEPS, "delay_seconds": 30})
    adapter = _select(cli)
    thread, outcome = _in_background(lambda: adapter.up([DB]))
    pid = cli.wait_for_call("up")
    time.sleep(0.7)  # the adapter has seen the plugin
    os.kill(pid, signal.SIGKILL)
    thread.join(10)
    assert isinstance(outcome.get("error"), DrctlError)
    assert not [plugin for plugin in cli.plugins() if _alive(plugin)]
    assert cli.locks(STACK) == []
    cli.scenario(up={"steps": STEPS})
    adapter.up([DB])  # the next update is not blocked


@pytest.fixture
def sigint_reaches_the_test() -> Iterator[list[int]]:
    """Where no drctl handler is installed, a SIGINT would stop pytest itself: count it instead."""
    seen: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: seen.append(signum))
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_stops_the_update_before_the_run_ends_and_the_lock_is_released(
    cli: FakePulumi, tmp_path: Path, sigint_reaches_the_test: list[int]
) -> None:
    """Ctrl-C reaches drctl (the CLI has its own session); drctl passes one interrupt on, waits for the CLI, and
    only then journals the run and releases its lock; exit code 130."""
    cli.scenario(up={"steps": STEPS, "delay_seconds": 30})
    adapter = _select(cli)
    store = local_store(STACK, root=tmp_path)
    cli_pids: list[int] = []

    def update(run: RunContext) -> None:
        adapter.up([DB], on_output=run.log)

    def interrupt_when_started() -> None:
        pid = cli.wait_for_call("up")
        cli_pids.append(pid)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_started, daemon=True).start()
    engine = RunbookEngine(STACK, store, output=lambda _: None, stop_wait_seconds=10)
    with pytest.raises(RunFailedError, match="interrupted by SIGINT") as stopped:
        engine.run(Runbook("switch", "x", (Step("update_stack", update, timeout_seconds=60),)), PARAMS)
    assert stopped.value.exit_code == INTERRUPTED_EXIT and sigint_reaches_the_test == []
    (pid,) = cli_pids
    assert not _alive(pid) and StackLock(store, STACK).current() is None
    assert cli.state(STACK)["deployment"]["pending_operations"] == []  # a graceful cancel: nothing left pending
    run = Journal(store).load()
    assert run is not None and run.step("update_stack").error.startswith("interrupted: interrupted by SIGINT")


def test_work_that_survives_its_stop_keeps_the_stack_lock(tmp_path: Path) -> None:
    """Nothing may start against the stack while something drctl started may still act on it."""
    release = threading.Event()

    def stuck(run: RunContext) -> None:
        release.wait(10)

    store = local_store(STACK, root=tmp_path)
    engine = RunbookEngine(STACK, store, output=lambda _: None, stop_wait_seconds=0.2)
    try:
        with pytest.raises(DrctlError, match="drctl keeps the stack lock") as busy:
            engine.run(Runbook("switch", "x", (Step("update_stack", stuck, timeout_seconds=0.2),)), PARAMS)
    finally:
        release.set()
    assert StackLock(store, STACK).current() is not None
    assert "drctl break-lock" in (busy.value.hint or "")


# --- policy packs ----------------------------------------------------------------------------------------


def test_a_policy_pack_without_its_virtualenv_is_refused_before_the_cli_runs(cli: FakePulumi, tmp_path: Path) -> None:
    """catalogue: pulumi-cli.policy-pack-needs-its-virtualenv: the CLI would hang at 'Loading policy packs'."""
    pack = policy_pack(tmp_path / "policy", with_virtualenv=False)
    with pytest.raises(DrctlError, match="cannot import pulumi_policy") as refused:
        _select(cli, policy_packs=[str(pack)])
    assert "make policy-venv" in (refused.value.hint or "")
    assert cli.calls("stack", "select") == []


def test_the_fake_cli_hangs_on_a_pack_without_its_virtualenv_and_ignores_sigterm(
    cli: FakePulumi, tmp_path: Path
) -> None:
    """As measured on the real engine: stuck loading the pack, deaf to SIGTERM; only SIGKILL ends it."""
    pack = policy_pack(tmp_path / "policy", with_virtualenv=False)
    process = subprocess.Popen(
        ["pulumi", "preview", "--stack", STACK, "--policy-pack", str(pack)],
        cwd=cli.project,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    assert "Loading policy packs...: starting" in process.stdout.readline() + process.stdout.readline()
    process.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_policy_violations_reach_the_error_with_their_policy(cli: FakePulumi, tmp_path: Path) -> None:
    """catalogue: pulumi-cli.policy-violations-not-in-diagnostics: the violation is a policy event and a
    "Policies:" block, while the Diagnostics block only says "preview failed"."""
    pack = policy_pack(tmp_path / "policy", with_virtualenv=True)
    adapter = _select(cli, policy_packs=[str(pack)])
    violation = {"policy": "rds-storage-encrypted", "urn": DB, "message": "RDS storage must be encrypted"}
    cli.scenario(preview={"steps": STEPS, "policy_violations": [violation]})
    with pytest.raises(DrctlError) as failed:
        adapter.preview([DB])
    text = str(failed.value)
    assert "dr-platform/rds-storage-encrypted (mandatory)" in text and "RDS storage must be encrypted" in text
    argv = cli.calls("preview")[-1]["argv"]
    assert argv[argv.index("--policy-pack") + 1] == str(pack)


def test_the_policies_block_names_the_violation_when_no_event_carried_it() -> None:
    import pulumi.automation as auto
    from pulumi.automation import errors as auto_errors

    from automation.stack import map_pulumi_error

    stdout = (
        "Previewing update (prod)\nPolicies:\n    ❌ dr-platform@v0.1.0 (local: policy)\n"
        "        - [mandatory]  rds-storage-encrypted  (aws:rds/instance:Instance: db-dr)\n"
        "          RDS storage must be encrypted\n        - [advisory]  tags  (aws:s3/bucket:Bucket: b)\n"
        "          add a team tag\n\nDiagnostics:\n  pulumi:pulumi:Stack (dr-platform-prod):\n"
        "    error: preview failed\n"
    )
    error = auto_errors.create_command_error(auto.CommandResult(stdout=stdout, stderr="", code=1))
    text = str(map_pulumi_error(error, STACK, "preview"))
    assert "[mandatory]  rds-storage-encrypted" in text and "RDS storage must be encrypted" in text
    assert "add a team tag" not in text


def test_the_fake_cli_exits_as_the_real_one_does(cli: FakePulumi) -> None:
    """catalogue: pulumi-cli.exit-codes"""
    missing = subprocess.run(["pulumi", "stack", "select", "--stack", "organization/dr-platform/nope"], check=False)
    assert missing.returncode == 6
    cli.hold_lock(STACK, pid=os.getpid())
    locked = subprocess.run(["pulumi", "up", "--yes", "--stack", STACK], cwd=cli.project, capture_output=True)
    assert locked.returncode == 1
