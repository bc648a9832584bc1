"""The stack adapter: the real one at the pulumi.automation boundary, the stand-in's diffing, update targets."""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi.automation as auto
import pytest
from pulumi.automation import errors as auto_errors

from automation.errors import DrctlError
from automation.evaluate import GLOBAL, DeclaredResource, Evaluation
from automation.stack import (
    DrctlPulumiCommand,
    PendingOperation,
    PulumiStack,
    cli_arguments,
    map_pulumi_error,
    root_stack_urn,
)
from automation.stack_standin import StandInStack
from automation.targets import refuse_failed_region_targets, surviving_region_targets
from components.config import DrState, parse_config
from tests.conftest import ROOT as REPOSITORY
from tests.conftest import STATE_OVERRIDES, evaluate_state, prod_config
from tests.fake_pulumi import FakePulumi
from tests.fake_pulumi.cli import PLAINTEXT_SECRET

STACK = "organization/dr-platform/prod"
PRIMARY, DR = "us-east-1", "us-west-2"
FAILED_OVER = STATE_OVERRIDES["failed-over"]


# --- the real adapter: the real pulumi.automation SDK driving the fake `pulumi` on PATH -------------

CLI_DB = "urn:pulumi:prod::dr-platform::aws:rds/instance:Instance::db-dr"
CLI_TOPIC = "urn:pulumi:prod::dr-platform::aws:sns/topic:Topic::alerts-dr"
CLI_BUCKET = "urn:pulumi:prod::dr-platform::aws:s3/bucket:Bucket::data-primary"
RESOURCES = [
    {"urn": CLI_DB, "type": "aws:rds/instance:Instance"},
    {"urn": CLI_TOPIC, "type": "aws:sns/topic:Topic"},
    {"urn": CLI_BUCKET, "type": "aws:s3/bucket:Bucket"},
]
STEPS = [
    {"urn": CLI_DB, "op": "update", "type": "aws:rds/instance:Instance"},
    {"urn": CLI_TOPIC, "op": "update", "type": "aws:sns/topic:Topic"},
    {"urn": CLI_BUCKET, "op": "update", "type": "aws:s3/bucket:Bucket"},
]


@pytest.fixture
def cli(fake_pulumi: FakePulumi) -> FakePulumi:
    fake_pulumi.add_stack(STACK, prod_config(), resources=RESOURCES, outputs={"activeRegion": PRIMARY})
    fake_pulumi.scenario(up={"steps": STEPS, "outputs": {"activeRegion": DR}}, preview={"steps": STEPS})
    return fake_pulumi


@pytest.fixture
def adapter(cli: FakePulumi) -> PulumiStack:
    return PulumiStack.select(STACK, cli.project, cancel_grace_seconds=2, terminate_grace_seconds=2)


def test_select_runs_stack_select_by_fully_qualified_name(adapter: PulumiStack, cli: FakePulumi) -> None:
    (call,) = cli.calls("stack", "select")
    assert call["argv"][call["argv"].index("--stack") + 1] == STACK
    assert "--non-interactive" in call["argv"]


def test_select_a_missing_stack_is_refused_and_never_created(fake_pulumi: FakePulumi) -> None:
    with pytest.raises(DrctlError, match="does not exist") as raised:
        PulumiStack.select(STACK, fake_pulumi.project)
    assert "--create-stack" in (raised.value.hint or "")
    assert fake_pulumi.calls("stack", "init") == []
    PulumiStack.select(STACK, fake_pulumi.project, create=True)
    assert len(fake_pulumi.calls("stack", "init")) == 1


def test_up_sends_targets_without_dependents_and_collects_steps(adapter: PulumiStack, cli: FakePulumi) -> None:
    lines: list[str] = []
    result = adapter.up([CLI_DB, CLI_TOPIC], on_output=lines.append, message="failover")
    (call,) = cli.calls("up")
    argv = call["argv"]
    assert [argv[i + 1] for i, arg in enumerate(argv) if arg == "--target"] == [CLI_DB, CLI_TOPIC]
    assert "--target-dependents" not in argv and "--exclude" not in argv
    assert argv[argv.index("--message") + 1] == "failover"
    assert "Updating (prod)" in lines
    assert result.summary.counts == {"update": 2, "same": 1}
    assert [(step.op, step.urn) for step in result.summary.changed] == [("update", CLI_DB), ("update", CLI_TOPIC)]


def test_the_outputs_follow_a_targeted_update_that_leaves_out_the_root_stack(
    adapter: PulumiStack, cli: FakePulumi
) -> None:
    """catalogue: pulumi-cli.targeted-update-updates-outputs"""
    result = adapter.up([CLI_DB])
    assert result.outputs == {"activeRegion": DR} == cli.state(STACK)["outputs"]


def test_up_with_exclusions_and_a_deliberate_full_update(adapter: PulumiStack, cli: FakePulumi) -> None:
    adapter.up(None, exclude=[CLI_BUCKET])
    argv = cli.calls("up")[-1]["argv"]
    assert "--target" not in argv
    assert argv[argv.index("--exclude") + 1] == CLI_BUCKET and "--exclude-dependents" not in argv


def test_the_preview_gets_the_same_targets_and_exclusions_as_the_update(adapter: PulumiStack, cli: FakePulumi) -> None:
    summary = adapter.preview(None, exclude=[CLI_BUCKET])
    argv = cli.calls("preview")[-1]["argv"]
    assert argv[argv.index("--exclude") + 1] == CLI_BUCKET and "--exclude-dependents" not in argv
    assert {step.urn for step in summary.changed} == {CLI_DB, CLI_TOPIC}


def test_an_empty_target_list_is_refused_before_the_cli_runs(adapter: PulumiStack, cli: FakePulumi) -> None:
    with pytest.raises(DrctlError, match="empty target list"):
        adapter.up([])
    assert cli.calls("up") == []


@pytest.mark.parametrize("operation", ["up", "preview"])
def test_never_refresh_even_when_the_environment_asks_for_it(
    adapter: PulumiStack, cli: FakePulumi, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    """catalogue: pulumi-cli.option-environment-variables, pulumi-cli.refresh-flag-explicit"""
    monkeypatch.setenv("PULUMI_OPTION_REFRESH", "true")
    monkeypatch.setenv("PULUMI_OPTION_TARGET_DEPENDENTS", "true")
    monkeypatch.setenv("PULUMI_OPTION_CONTINUE_ON_ERROR", "1")
    monkeypatch.setenv("PULUMI_OPTION_TARGET", CLI_BUCKET)
    getattr(adapter, operation)([CLI_DB])
    (call,) = cli.calls(operation)
    assert call["refresh"] is False and call["flags"]["target"] == [CLI_DB]
    assert "--refresh=false" in call["argv"]
    assert call["options_env"] == {}  # nothing PULUMI_OPTION_* reaches the CLI


def test_the_fake_cli_honours_option_variables_like_the_real_one(cli: FakePulumi) -> None:
    """catalogue: pulumi-cli.option-environment-variables. The seam must be able to fail: without drctl's care,
    PULUMI_OPTION_REFRESH=true refreshes, and PULUMI_OPTION_TARGET adds to the command line's --target."""
    env = {**os.environ, "PULUMI_OPTION_REFRESH": "true"}

    def up(*flags: str, environment: Mapping[str, str] = env) -> dict[str, Any]:
        subprocess.run(
            ["pulumi", "up", "--yes", *flags, "--stack", STACK],
            env=environment,
            cwd=cli.project,
            check=True,
            capture_output=True,
        )
        return cli.calls("up")[-1]

    assert up("--skip-preview")["refresh"] is True
    assert up("--refresh=false")["refresh"] is False  # an explicit bool/string flag wins
    merged = up("--refresh=false", "--target", CLI_DB, environment={**env, "PULUMI_OPTION_TARGET": CLI_BUCKET})
    assert merged["flags"]["target"] == [CLI_BUCKET, CLI_DB]  # an array flag merges
    assert {step for step, count in _counts_of(merged).items() if count} == {"update", "same"}


def _counts_of(call: Mapping[str, Any]) -> dict[str, int]:
    return {"update": len(call["flags"]["target"]), "same": len(STEPS) - len(call["flags"]["target"])}


def test_a_refresh_flag_never_reaches_the_cli() -> None:
    with pytest.raises(DrctlError, match="never refreshes"):
        cli_arguments(["up", "--yes", "--refresh", "--stack", STACK])
    assert cli_arguments(["stack", "export", "--stack", STACK])[-1] == STACK  # no flag on other commands


def test_preview_collects_steps_counts_and_diagnostics(adapter: PulumiStack, cli: FakePulumi) -> None:
    summary = adapter.preview([CLI_DB])
    argv = cli.calls("preview")[-1]["argv"]
    assert argv[argv.index("--target") + 1] == CLI_DB
    assert summary.describe() == "1 to update"
    assert summary.steps[0].op == "update"


def test_provider_diagnostics_printed_on_stdout_reach_the_error(adapter: PulumiStack, cli: FakePulumi) -> None:
    """catalogue: pulumi-cli.diagnostics-on-stdout, pulumi-cli.exit-codes"""
    cause = "modifying RDS DB Instance (drp-db-dr): InvalidDBInstanceState: Instance is not available"
    cli.scenario(up={"steps": STEPS, "fail": {"diagnostics": [{"urn": CLI_DB, "message": cause}]}})
    with pytest.raises(DrctlError) as raised:
        adapter.up([CLI_DB])
    assert cause in str(raised.value)
    assert "db-dr" in str(raised.value)
    assert "code: 1" in str(raised.value.__cause__)  # the real CLI's exit code for a failed update


def test_diagnostics_are_found_on_stdout_when_no_event_carried_them() -> None:
    stdout = "Updating (prod)\nDiagnostics:\n  aws:rds:Instance (db-dr):\n    error: AccessDenied: not authorized\n"
    error = auto_errors.create_command_error(auto.CommandResult(stdout=stdout, stderr="", code=1))
    mapped = map_pulumi_error(error, STACK, "update")
    assert "error: AccessDenied: not authorized" in str(mapped)


def test_the_config_lives_in_the_projects_stack_file(adapter: PulumiStack, cli: FakePulumi) -> None:
    """catalogue: pulumi-cli.config-in-project-stack-file. What drctl writes lands in the checkout, where the
    checkout gate and a second operator's checkout see it (automation/dr_state.py)."""
    assert adapter.project_dir == cli.project
    with pytest.raises(DrctlError, match="activeRegion"):
        adapter.set_config({"drState": "failed-over"})  # activeRegion left at the primary: inconsistent
    assert cli.calls("config", "set-all") == []

    merged = adapter.set_config({"activeRegion": DR, "drState": "failed-over"})
    assert {key: cli.config(STACK)[key] for key in FAILED_OVER} == FAILED_OVER
    assert "config" not in cli.state(STACK)  # the backend holds no config
    assert parse_config(merged).dr_state is DrState.FAILED_OVER
    assert adapter.get_config()["dr-platform:drState"] == "failed-over"
    cli.stack_file(STACK).write_text(cli.stack_file(STACK).read_text().replace("failed-over", "steady"))
    assert adapter.get_config()["dr-platform:drState"] == "steady"  # an edit of the file is the stack config


def test_the_fake_cli_refuses_to_write_config_outside_its_project(cli: FakePulumi) -> None:
    """A test that forgot the project directory must not rewrite the repository's Pulumi.prod.yaml."""
    done = subprocess.run(
        ["pulumi", "config", "set-all", "--plaintext", "dr-platform:drState=steady", "--stack", STACK],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "runs only in a project under" in done.stderr


def test_outputs(adapter: PulumiStack) -> None:
    assert adapter.outputs() == {"activeRegion": PRIMARY}


# --- the backend lock ---------------------------------------------------------------------------


def test_a_second_update_gets_the_backend_lock_error_mapped(adapter: PulumiStack, cli: FakePulumi) -> None:
    """catalogue: pulumi-cli.diy-lock-refuses-second-update"""
    cli.hold_lock(STACK, pid=os.getpid())  # a live holder: somebody's update
    with pytest.raises(DrctlError, match="another update holds the stack") as raised:
        adapter.up([CLI_DB])
    assert f"pid {os.getpid()}" in str(raised.value)
    assert cli.calls("cancel") == [] and cli.locks(STACK)
    hint = raised.value.hint or ""
    assert (
        "stops nothing" in hint and f"PULUMI_BACKEND_URL=file://{cli.home} pulumi cancel --stack {STACK} --yes" in hint
    )
    assert cli.state(STACK)["deployment"]["pending_operations"] == []


def test_only_the_lock_of_a_pulumi_drctl_killed_is_removed(adapter: PulumiStack, cli: FakePulumi) -> None:
    """catalogue: pulumi-cli.kill-leaves-lock-and-pending, pulumi-cli.diy-cancel-only-deletes-lock.
    A dead pid on this host proves nothing (a container
    with host networking shares the hostname); a lock drctl did not see die is never touched, and nothing but
    the dead CLI's own lock file is deleted (never `pulumi cancel`, which deletes them all)."""
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    someone_elses = cli.hold_lock(STACK, pid=finished.pid)
    with pytest.raises(DrctlError, match="another update holds the stack"):
        adapter.up([CLI_DB])
    assert someone_elses.exists()

    someone_elses.unlink()
    ours = cli.hold_lock(STACK, pid=finished.pid)
    assert adapter._command is not None
    adapter._command.killed_pids.add(finished.pid)  # as if drctl had killed that CLI
    later = cli.hold_lock(STACK, pid=os.getpid())  # an update that started after
    with pytest.raises(DrctlError, match="another update holds the stack"):
        adapter.up([CLI_DB])
    assert not ours.exists() and later.exists()  # exactly the dead CLI's file
    assert cli.calls("cancel") == []

    later.unlink()
    lines: list[str] = []
    adapter.up([CLI_DB], on_output=lines.append)
    assert [call["refresh"] for call in cli.calls("up")] == [False] * 4  # refused, refused and retried, done


# --- pending operations: left to the engine, or resolved with the CLI's own commands ------------------


def test_pending_operations_are_read_from_an_export_without_decrypted_secrets(fake_pulumi: FakePulumi) -> None:
    pending = [{"urn": CLI_DB, "type_of_op": "updating"}, {"urn": CLI_TOPIC, "type_of_op": "creating"}]
    fake_pulumi.add_stack(STACK, prod_config(), resources=RESOURCES, pending=pending)
    adapter = PulumiStack.select(STACK, fake_pulumi.project)
    found = adapter.pending_operations()
    assert [(op.kind, op.creates) for op in found] == [("updating", False), ("creating", True)]
    (export,) = fake_pulumi.calls("stack", "export")
    assert "--show-secrets" not in export["argv"]


def test_pending_creates_are_dropped_by_the_clis_refresh_and_adopted_by_pulumi_import(
    fake_pulumi: FakePulumi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """catalogue: pulumi-cli.pending-operations-warn-only, pulumi-cli.import-pending-creates-drops-the-record.
    No state is ever imported (a failed `stack import` leaves the decrypted state in $TMPDIR)."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))
    parent = "urn:pulumi:prod::dr-platform::dr-platform:notify:Alerts::alerts"
    provider = "urn:pulumi:prod::dr-platform::pulumi:providers:aws::aws-dr::0f1e"
    pending = [
        {"urn": CLI_DB, "type_of_op": "updating"},
        {
            "urn": CLI_TOPIC,
            "type": "aws:sns/topic:Topic",
            "type_of_op": "creating",
            "parent": parent,
            "provider": provider,
        },
        {"urn": CLI_BUCKET, "type_of_op": "creating"},
    ]
    fake_pulumi.add_stack(STACK, prod_config(), resources=[RESOURCES[0]], pending=pending)
    adapter = PulumiStack.select(STACK, fake_pulumi.project)
    with pytest.raises(DrctlError, match="no pending create of that URN"):
        adapter.resolve_pending_creates({CLI_DB: "db-dr"})
    report = adapter.resolve_pending_creates({CLI_TOPIC: "arn:aws:sns:us-west-2:1:alerts-dr"})

    (refresh,) = fake_pulumi.calls("refresh")
    assert refresh["flags"]["clear-pending-creates"] is True
    assert refresh["flags"]["target"] == [root_stack_urn("prod")]  # it reads nothing from any region
    assert "import-pending-creates" not in refresh["flags"]
    (imported,) = fake_pulumi.calls("import")
    assert imported["words"] == ["import", "aws:sns/topic:Topic", "alerts-dr", "arn:aws:sns:us-west-2:1:alerts-dr"]
    assert imported["flags"]["parent"] == parent and imported["flags"]["provider"] == provider.rsplit("::", 1)[0]
    state = fake_pulumi.state(STACK)["deployment"]
    assert state["pending_operations"] == []  # the refresh, a deployment too, dropped the pending update
    assert any(resource["urn"].endswith("::alerts-dr") for resource in state["resources"])
    assert "dropped 2 pending create(s)" in report.describe() and "imported as" in report.describe()
    assert fake_pulumi.calls("stack", "import") == []
    leftovers = [path for path in temporary.rglob("*") if path.is_file()]
    assert not [path for path in leftovers if PLAINTEXT_SECRET in path.read_text(errors="replace")]


def test_the_fake_cli_drops_a_pending_create_it_was_told_to_import(fake_pulumi: FakePulumi) -> None:
    """catalogue: pulumi-cli.import-pending-creates-drops-the-record, as measured on the real engine (v3.260):
    the record turns into an import that the refresh then drops; neither the resource nor the record stays."""
    fake_pulumi.add_stack(
        STACK, prod_config(), resources=[RESOURCES[0]], pending=[{"urn": CLI_TOPIC, "type_of_op": "creating"}]
    )
    done = subprocess.run(
        [
            "pulumi",
            "refresh",
            "--yes",
            "--stack",
            STACK,
            "--target",
            CLI_DB,
            f"--import-pending-creates={CLI_TOPIC}",
            "--import-pending-creates=alerts-dr",
        ],
        cwd=fake_pulumi.project,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0
    state = fake_pulumi.state(STACK)["deployment"]
    assert state["pending_operations"] == [] and [r["urn"] for r in state["resources"]][1:] == [CLI_DB]


def test_an_update_keeps_pending_creates_and_drops_the_other_pending_operations(fake_pulumi: FakePulumi) -> None:
    """catalogue: pulumi-cli.pending-operations-warn-only"""
    pending = [{"urn": CLI_DB, "type_of_op": "updating"}, {"urn": CLI_TOPIC, "type_of_op": "creating"}]
    fake_pulumi.add_stack(STACK, prod_config(), resources=RESOURCES, pending=pending)
    fake_pulumi.scenario(up={"steps": STEPS})
    PulumiStack.select(STACK, fake_pulumi.project).up([CLI_DB])
    assert [op["type"] for op in fake_pulumi.state(STACK)["deployment"]["pending_operations"]] == ["creating"]


def test_what_the_engine_refreshes_before_an_update_is_reported_within_its_scope(fake_pulumi: FakePulumi) -> None:
    """catalogue: pulumi-cli.refresh-before-update-ignores-refresh-flag"""
    flagged = [{**resource, "refreshBeforeUpdate": True} for resource in RESOURCES[:2]] + [RESOURCES[2]]
    fake_pulumi.add_stack(STACK, prod_config(), resources=flagged)
    fake_pulumi.scenario(up={"steps": STEPS})
    adapter = PulumiStack.select(STACK, fake_pulumi.project)
    assert adapter.refreshed_before_update(None) == [CLI_DB, CLI_TOPIC]
    assert adapter.refreshed_before_update([CLI_TOPIC, CLI_BUCKET]) == [CLI_TOPIC]
    assert adapter.refreshed_before_update(None, exclude=[CLI_DB]) == [CLI_TOPIC]
    adapter.up([CLI_TOPIC, CLI_BUCKET])
    assert fake_pulumi.calls("up")[-1]["refreshed"] == [CLI_TOPIC]  # --refresh=false notwithstanding


def test_pending_operations_report_their_parent_and_provider() -> None:
    op = PendingOperation(CLI_TOPIC, "creating", "aws:sns/topic:Topic", "urn:parent", "urn:provider::id")
    assert op.creates and op.name == "alerts-dr"
    assert not PendingOperation(CLI_TOPIC, "importing").creates  # the CLI only keeps "creating" ones


# --- errors, versions, the SDK the adapter depends on ----------------------------------------------


def _command_error(stderr: str, stdout: str = "") -> auto_errors.CommandError:
    return auto_errors.create_command_error(auto.CommandResult(stdout=stdout, stderr=stderr, code=1))


@pytest.mark.parametrize(
    ("error", "message", "hint"),
    [
        (_command_error("error: [409] Conflict: Another update is currently in progress."), "another update", "cancel"),
        (_command_error("error: aws:rds: AccessDenied\nerror: update failed"), "error: aws:rds", "--debug"),
        (FileNotFoundError(2, "No such file or directory: 'pulumi'"), "Pulumi CLI is not installed", "offline"),
        (auto_errors.InvalidVersionError("Minimum version requirement failed"), "Minimum version", "upgrade"),
    ],
)
def test_pulumi_errors_map_to_one_drctl_error(error: Exception, message: str, hint: str) -> None:
    mapped = map_pulumi_error(error, STACK, "update")
    assert message in str(mapped)
    assert hint in (mapped.hint or "")


def test_an_old_cli_is_refused(cli: FakePulumi) -> None:
    (cli.home / "scenario.json").write_text(json.dumps({"version": "v2.25.0"}))
    with pytest.raises(DrctlError, match="version"):
        PulumiStack.select(STACK, cli.project)


@pytest.mark.parametrize("name", ["prod", "org/prod", "org/other-project/prod", "org//prod"])
def test_select_refuses_names_that_are_not_fully_qualified_for_this_project(name: str) -> None:
    with pytest.raises(DrctlError):
        PulumiStack.select(name)


def test_select_without_the_cli_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `pulumi` anywhere: the real LocalWorkspace fails
    with pytest.raises(DrctlError, match="Pulumi CLI is not installed"):
        PulumiStack.select(STACK)


def test_select_refuses_a_project_that_refreshes_on_every_update(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: dr-platform\nruntime: python\noptions:\n  refresh: always\n")
    with pytest.raises(DrctlError, match="never refreshes"):
        PulumiStack.select(STACK, tmp_path)


def test_the_sdk_is_pinned_to_the_version_whose_internals_the_adapter_implements() -> None:
    """DrctlPulumiCommand stands in for the SDK's PulumiCommand: an internal contract, so one exact version."""
    pinned = re.search(r"^pulumi==(\S+)$", (REPOSITORY / "requirements.txt").read_text(), re.M)
    assert pinned, "requirements.txt must pin the pulumi SDK exactly"
    assert importlib.metadata.version("pulumi") == pinned.group(1)
    assert pinned.group(1) in (REPOSITORY / "requirements.lock").read_text()
    ours = inspect.signature(DrctlPulumiCommand.run)
    theirs = inspect.signature(auto.PulumiCommand.run)
    assert list(ours.parameters) == list(theirs.parameters)
    called = inspect.getsource(auto.Stack._run_pulumi_cmd_sync)
    assert (
        "pulumi_command.run(\n            args, self.workspace.work_dir, envs, on_output, on_error\n        )" in called
    )


# --- the stand-in, on a small synthetic program ----------------------------------------------------


def _resource(
    type_token: str, name: str, region: str | None, inputs: Mapping[str, Any], **options: Any
) -> DeclaredResource:
    return DeclaredResource(
        urn=f"urn:pulumi:prod::dr-platform::{type_token}::{name}",
        type=type_token,
        name=name,
        inputs=dict(inputs),
        region=region,
        custom=not type_token.startswith("dr-platform:"),
        parent="",
        protect=options.get("protect", False),
        retain_on_delete=options.get("retain_on_delete", False),
        ignore_changes=(),
        replace_on_changes=(),
        delete_before_replace=False,
    )


def synthetic_program(config: Mapping[str, str]) -> Evaluation:
    """A miniature of the platform whose declarations follow the DR state like the real one's."""
    cfg = parse_config(config)
    steady = cfg.dr_state is DrState.STEADY
    db_dr = {"identifier": "db-dr-g1", **({"replicateSourceDb": "arn:db-primary-g1"} if steady else {})}
    resources = [
        _resource("pulumi:providers:aws", "aws-primary", PRIMARY, {"region": PRIMARY}),
        _resource("pulumi:providers:aws", "aws-dr", DR, {"region": DR}),
        _resource("aws:rds/instance:Instance", "db-primary", PRIMARY, {"identifier": "db-primary-g1"}, protect=True),
        _resource("aws:rds/instance:Instance", "db-dr", DR, db_dr, protect=True),
        _resource("aws:s3/bucketV2:BucketV2", "bucket-dr", DR, {"bucket": f"{cfg.name_prefix}-data"}, protect=True),
        _resource(
            "aws:route53/record:Record", "app-primary", GLOBAL, {"failover": "PRIMARY" if steady else "SECONDARY"}
        ),
        _resource(
            "aws:cloudwatch/metricAlarm:MetricAlarm", "lag-primary", PRIMARY, {"threshold": 300 if steady else 60}
        ),
    ]
    if steady:
        resources.append(_resource("aws:cloudwatch/metricAlarm:MetricAlarm", "lag-dr", DR, {"threshold": 300}))
    else:
        resources.append(_resource("aws:sns/topic:Topic", "failover-notices", DR, {"name": "failover"}))
    outputs = {"activeRegion": cfg.active_region, "drState": cfg.dr_state.value}
    return Evaluation(config=cfg, resources=resources, outputs=outputs)


def _urn(type_token: str, name: str) -> str:
    return f"urn:pulumi:prod::dr-platform::{type_token}::{name}"


DB_DR = _urn("aws:rds/instance:Instance", "db-dr")
RECORD = _urn("aws:route53/record:Record", "app-primary")
ALARM_DR = _urn("aws:cloudwatch/metricAlarm:MetricAlarm", "lag-dr")
ALARM_PRIMARY = _urn("aws:cloudwatch/metricAlarm:MetricAlarm", "lag-primary")
TOPIC = _urn("aws:sns/topic:Topic", "failover-notices")
ROOT = root_stack_urn("prod")


@pytest.fixture
def standin() -> StandInStack:
    return StandInStack(prod_config(), evaluate=synthetic_program)


def test_standin_previews_creates_updates_and_deletes_by_urn_without_applying(standin: StandInStack) -> None:
    before = dict(standin.state)
    standin.set_config(FAILED_OVER)
    summary = standin.preview()
    ops = {step.urn: step.op for step in summary.changed}
    assert ops == {DB_DR: "update", RECORD: "update", ALARM_PRIMARY: "update", ALARM_DR: "delete", TOPIC: "create"}
    assert summary.counts == {"same": 4, "update": 3, "create": 1, "delete": 1}
    assert standin.state == before


def test_standin_applies_only_the_targeted_difference(standin: StandInStack) -> None:
    standin.set_config(FAILED_OVER)
    result = standin.up([DB_DR, TOPIC, ALARM_DR, ROOT])
    assert {step.urn for step in result.summary.changed} == {DB_DR, TOPIC, ALARM_DR}
    assert "replicateSourceDb" not in standin.state[DB_DR].inputs
    assert TOPIC in standin.state and ALARM_DR not in standin.state
    # Untargeted: the failed region's alarm and the global record keep their old state.
    assert standin.state[ALARM_PRIMARY].inputs["threshold"] == 300
    assert standin.state[RECORD].inputs["failover"] == "PRIMARY"
    assert result.outputs["activeRegion"] == DR
    assert {step.urn: step.op for step in standin.preview().changed} == {RECORD: "update", ALARM_PRIMARY: "update"}


def test_standin_outputs_follow_every_update_as_the_engines_do(standin: StandInStack) -> None:
    """catalogue: pulumi-cli.targeted-update-updates-outputs"""
    standin.set_config(FAILED_OVER)
    standin.up([DB_DR])
    assert standin.outputs()["activeRegion"] == DR


def test_standin_records_config_changes_and_update_targets(standin: StandInStack) -> None:
    standin.set_config({"activeRegion": DR, "drState": "failed-over"})
    standin.up([DB_DR], message="failover")
    assert standin.config_changes == [FAILED_OVER]
    assert standin.updates[-1].targets == (DB_DR,)
    assert [call.method for call in standin.calls] == ["set_config", "up"]
    assert standin.calls[-1].arguments["message"] == "failover"


def test_standin_refuses_bad_config_before_storing_it(standin: StandInStack) -> None:
    with pytest.raises(DrctlError, match="drState"):
        standin.set_config({"drState": "sideways"})
    assert standin.get_config()["dr-platform:drState"] == "steady"
    assert standin.config_changes == []


def test_standin_refuses_unknown_and_empty_targets(standin: StandInStack) -> None:
    with pytest.raises(DrctlError, match="does not exist"):
        standin.up(["urn:pulumi:prod::dr-platform::aws:s3/bucketV2:BucketV2::nope"])
    with pytest.raises(DrctlError, match="empty target list"):
        standin.up([])


def test_standin_refuses_to_replace_a_protected_resource(standin: StandInStack) -> None:
    standin.set_config({"namePrefix": "other-drp"})  # the bucket name is ForceNew: a replacement
    with pytest.raises(DrctlError, match="protected"):
        standin.up(None)
    assert standin.state[_urn("aws:s3/bucketV2:BucketV2", "bucket-dr")].inputs["bucket"] == "acme-drp-data"


def test_standin_keeps_pending_creates_and_lets_the_next_update_drop_the_others(standin: StandInStack) -> None:
    """catalogue: pulumi-cli.pending-operations-warn-only"""
    standin.set_config(FAILED_OVER)
    standin.pending = [PendingOperation(TOPIC, "creating"), PendingOperation(DB_DR, "updating")]
    with pytest.raises(DrctlError, match="already exists"):
        standin.up([TOPIC])  # the engine would create it a second time
    standin.up([DB_DR])
    assert standin.pending == [PendingOperation(TOPIC, "creating")]  # the update dropped the other
    report = standin.resolve_pending_creates({TOPIC: "arn:topic"})
    assert report.cleared == (PendingOperation(TOPIC, "creating"),) and standin.pending == []
    assert TOPIC in standin.state  # adopted
    standin.up(None)
    assert standin.preview().changed == ()


def test_standin_refreshes_what_the_state_says_to_refresh_before_an_update(standin: StandInStack) -> None:
    """catalogue: pulumi-cli.refresh-before-update-ignores-refresh-flag"""
    standin.refresh_before_update = {ALARM_PRIMARY, DB_DR}
    assert standin.refreshed_before_update([DB_DR, ROOT]) == [DB_DR]
    assert standin.refreshed_before_update(None, exclude=[DB_DR]) == [ALARM_PRIMARY]
    standin.up([DB_DR, ROOT])
    assert standin.refreshed == [DB_DR]


def test_standin_injected_error_changes_nothing(standin: StandInStack) -> None:
    before = dict(standin.state)
    standin.set_config(FAILED_OVER)
    standin.fail_up(1)
    with pytest.raises(DrctlError, match="injected"):
        standin.up(None)
    assert standin.state == before and standin.pending == []


# --- update targets, on the real program --------------------------------------------------------------


def test_failover_targets_never_include_the_failed_region() -> None:
    evaluation = evaluate_state("failed-over")
    targets = surviving_region_targets(evaluation, PRIMARY)
    declared = evaluation.by_urn()
    assert targets[0] == root_stack_urn("prod")
    assert all(declared[urn].region in (DR, GLOBAL, None) for urn in targets[1:])
    assert not [urn for urn in targets[1:] if declared[urn].region == PRIMARY]
    assert _urn("pulumi:providers:aws", "aws-primary") not in targets
    expected = {r.urn for r in evaluation.resources if r.region in (DR, GLOBAL)}
    regionless = {r.urn for r in evaluation.resources if r.region is None}
    assert expected <= set(targets[1:]) <= expected | regionless
    assert all(
        not declared[urn].custom or declared[urn].type.startswith("random:") for urn in regionless & set(targets)
    )
    refuse_failed_region_targets(evaluation, targets, PRIMARY)


def test_failing_back_direction_is_symmetric() -> None:
    evaluation = evaluate_state("resyncing")
    targets = surviving_region_targets(evaluation, DR)
    assert targets[1:] and not [urn for urn in targets[1:] if evaluation.by_urn()[urn].region == DR]


def test_a_failed_region_urn_in_a_target_list_is_refused() -> None:
    evaluation = evaluate_state("failed-over")
    in_primary = next(r.urn for r in evaluation.resources if r.region == PRIMARY and r.custom)
    with pytest.raises(DrctlError, match="failed region us-east-1"):
        refuse_failed_region_targets(evaluation, [root_stack_urn("prod"), in_primary], PRIMARY)
    with pytest.raises(DrctlError, match="failed region"):
        refuse_failed_region_targets(evaluation, [_urn("pulumi:providers:aws", "aws-primary")], PRIMARY)
    with pytest.raises(DrctlError, match="does not declare"):
        refuse_failed_region_targets(evaluation, [_urn("aws:rds/instance:Instance", "ghost")], PRIMARY)
    with pytest.raises(DrctlError, match="not one of this stack's regions"):
        surviving_region_targets(evaluation, "eu-west-1")


def test_resources_without_a_region_stop_target_computation() -> None:
    evaluation = synthetic_program(prod_config(**FAILED_OVER))
    evaluation.resources.append(_resource("aws:s3/bucketV2:BucketV2", "unplaced", None, {}))
    with pytest.raises(DrctlError, match="which region"):
        surviving_region_targets(evaluation, PRIMARY)
