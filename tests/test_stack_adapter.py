"""The stack adapter: the real one at the pulumi.automation boundary, the stand-in's diffing, update targets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi.automation as auto
import pytest
from pulumi.automation import errors as auto_errors

from automation.errors import DrctlError
from automation.evaluate import GLOBAL, DeclaredResource, Evaluation
from automation.stack import PulumiStack, cli_arguments, map_pulumi_error, root_stack_urn
from automation.stack_standin import StandInStack
from automation.targets import refuse_failed_region_targets, surviving_region_targets
from components.config import DrState, parse_config
from tests.conftest import STATE_OVERRIDES, evaluate_state, prod_config
from tests.fake_pulumi import FakePulumi

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
    return PulumiStack.select(STACK, cancel_grace_seconds=2, terminate_grace_seconds=2)


def test_select_runs_stack_select_by_fully_qualified_name(adapter: PulumiStack, cli: FakePulumi) -> None:
    (call,) = cli.calls("stack", "select")
    assert call["argv"][call["argv"].index("--stack") + 1] == STACK
    assert "--non-interactive" in call["argv"]


def test_select_a_missing_stack_is_refused_and_never_created(fake_pulumi: FakePulumi) -> None:
    with pytest.raises(DrctlError, match="does not exist") as raised:
        PulumiStack.select(STACK)
    assert "--create-stack" in (raised.value.hint or "")
    assert fake_pulumi.calls("stack", "init") == []
    PulumiStack.select(STACK, create=True)
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
    assert result.outputs == {"activeRegion": PRIMARY}  # the root stack was not a target
    assert cli.state(STACK)["outputs"] == {"activeRegion": PRIMARY}


def test_up_with_exclusions_and_a_deliberate_full_update(adapter: PulumiStack, cli: FakePulumi) -> None:
    adapter.up(None, exclude=[CLI_BUCKET])
    argv = cli.calls("up")[-1]["argv"]
    assert "--target" not in argv
    assert argv[argv.index("--exclude") + 1] == CLI_BUCKET and "--exclude-dependents" not in argv


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
    getattr(adapter, operation)([CLI_DB])
    (call,) = cli.calls(operation)
    assert call["refresh"] is False
    assert "--refresh=false" in call["argv"]
    assert call["options_env"] == {}  # nothing PULUMI_OPTION_* reaches the CLI


def test_the_fake_cli_honours_option_variables_like_the_real_one(cli: FakePulumi) -> None:
    """The seam must be able to fail: without drctl's care, PULUMI_OPTION_REFRESH=true refreshes."""
    env = {**os.environ, "PULUMI_OPTION_REFRESH": "true"}
    subprocess.run(
        ["pulumi", "up", "--yes", "--skip-preview", "--stack", STACK], env=env, check=True, capture_output=True
    )
    assert cli.calls("up")[-1]["refresh"] is True
    explicit = {**env, "PULUMI_OPTION_REFRESH": "true"}
    subprocess.run(
        ["pulumi", "up", "--yes", "--refresh=false", "--stack", STACK], env=explicit, check=True, capture_output=True
    )
    assert cli.calls("up")[-1]["refresh"] is False


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


def test_policy_packs_reach_preview_and_up(cli: FakePulumi) -> None:
    adapter = PulumiStack.select(STACK, policy_packs=["/repo/policy"])
    adapter.preview(None)
    adapter.up(None)
    for operation in ("preview", "up"):
        argv = cli.calls(operation)[-1]["argv"]
        assert argv[argv.index("--policy-pack") + 1] == "/repo/policy"


def test_provider_diagnostics_printed_on_stdout_reach_the_error(adapter: PulumiStack, cli: FakePulumi) -> None:
    """catalogue: pulumi-cli.diagnostics-on-stdout"""
    cause = "modifying RDS DB Instance (drp-db-dr): InvalidDBInstanceState: Instance is not available"
    cli.scenario(up={"steps": STEPS, "fail": {"diagnostics": [{"urn": CLI_DB, "message": cause}]}})
    with pytest.raises(DrctlError) as raised:
        adapter.up([CLI_DB])
    assert cause in str(raised.value)
    assert "db-dr" in str(raised.value)


def test_diagnostics_are_found_on_stdout_when_no_event_carried_them() -> None:
    stdout = "Updating (prod)\nDiagnostics:\n  aws:rds:Instance (db-dr):\n    error: AccessDenied: not authorized\n"
    error = auto_errors.create_command_error(auto.CommandResult(stdout=stdout, stderr="", code=255))
    mapped = map_pulumi_error(error, STACK, "update")
    assert "error: AccessDenied: not authorized" in str(mapped)


def test_a_second_update_gets_the_backend_lock_error_mapped(adapter: PulumiStack, cli: FakePulumi) -> None:
    """catalogue: pulumi-cli.diy-lock-refuses-second-update"""
    cli.hold_lock(STACK, pid=os.getpid())  # a live holder: somebody's update
    with pytest.raises(DrctlError, match="another update holds the stack") as raised:
        adapter.up([CLI_DB])
    assert f"pid {os.getpid()}" in str(raised.value)
    assert cli.calls("cancel") == [] and cli.locks(STACK)
    assert "stops nothing" in (raised.value.hint or "")
    assert cli.state(STACK)["deployment"]["pending_operations"] == []


def test_the_lock_of_a_pulumi_that_died_on_this_host_is_removed_and_the_update_goes_on(
    adapter: PulumiStack, cli: FakePulumi
) -> None:
    """catalogue: pulumi-cli.kill-leaves-lock-and-pending"""
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    cli.hold_lock(STACK, pid=finished.pid)
    lines: list[str] = []
    adapter.up([CLI_DB], on_output=lines.append)
    assert len(cli.calls("cancel")) == 1 and cli.locks(STACK) == []
    assert any("died on this host" in line for line in lines)
    assert [call["refresh"] for call in cli.calls("up")] == [False, False]


def _up_in_background(adapter: PulumiStack) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = adapter.up([CLI_DB])
        except DrctlError as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_cancel_interrupts_the_running_update_and_returns_once_the_stack_is_free(
    adapter: PulumiStack, cli: FakePulumi
) -> None:
    """catalogue: pulumi-cli.sigint-cancels-gracefully"""
    cli.scenario(up={"steps": STEPS, "delay_seconds": 30})
    thread, outcome = _up_in_background(adapter)
    cli.wait_for_call("up")
    assert cli.locks(STACK)
    adapter.cancel()
    assert cli.locks(STACK) == []  # free the moment cancel returns
    thread.join(5)
    assert "update canceled" in str(outcome["error"])
    assert cli.state(STACK)["deployment"]["pending_operations"] == []
    assert cli.calls("cancel") == []  # `pulumi cancel` would only have deleted the lock


def test_cancel_of_a_hung_update_terminates_and_then_kills_it(cli: FakePulumi) -> None:
    """catalogue: pulumi-cli.kill-leaves-lock-and-pending, pulumi-cli.diy-cancel-only-deletes-lock"""
    adapter = PulumiStack.select(STACK, cancel_grace_seconds=0.3, terminate_grace_seconds=0.3)
    cli.scenario(up={"steps": STEPS, "delay_seconds": 30, "ignore_first_interrupt": True})
    thread, _ = _up_in_background(adapter)
    cli.wait_for_call("up")
    adapter.cancel()
    thread.join(5)
    assert cli.locks(STACK) == []
    assert not thread.is_alive()


def test_pending_operations_are_exported_reported_and_imported_back_without_them(
    fake_pulumi: FakePulumi,
) -> None:
    pending = [{"urn": CLI_DB, "type_of_op": "updating"}, {"urn": CLI_TOPIC, "type_of_op": "creating"}]
    fake_pulumi.add_stack(STACK, prod_config(), resources=RESOURCES, pending=pending)
    adapter = PulumiStack.select(STACK)
    found = adapter.pending_operations()
    assert [(op.kind, op.creates) for op in found] == [("updating", False), ("creating", True)]

    report = adapter.clear_pending_operations()
    assert fake_pulumi.state(STACK)["deployment"] == {"resources": RESOURCES}
    assert len(fake_pulumi.calls("stack", "import")) == 1
    text = report.describe()
    assert "removed 2 pending operation(s)" in text and "pulumi import" in text


def test_no_pending_operations_means_no_import(adapter: PulumiStack, cli: FakePulumi) -> None:
    report = adapter.clear_pending_operations()
    assert report.cleared == () and cli.calls("stack", "import") == []
    assert report.describe() == "no pending operations in the stack state"


def test_set_config_validates_the_merged_config_before_writing(adapter: PulumiStack, cli: FakePulumi) -> None:
    with pytest.raises(DrctlError, match="activeRegion"):
        adapter.set_config({"drState": "failed-over"})  # activeRegion left at the primary: inconsistent
    assert cli.calls("config", "set-all") == []

    merged = adapter.set_config({"activeRegion": DR, "drState": "failed-over"})
    assert {key: cli.state(STACK)["config"][key] for key in FAILED_OVER} == FAILED_OVER
    assert parse_config(merged).dr_state is DrState.FAILED_OVER
    assert adapter.get_config()["dr-platform:drState"] == "failed-over"


def test_outputs(adapter: PulumiStack) -> None:
    assert adapter.outputs() == {"activeRegion": PRIMARY}


def _command_error(stderr: str, stdout: str = "") -> auto_errors.CommandError:
    return auto_errors.create_command_error(auto.CommandResult(stdout=stdout, stderr=stderr, code=255))


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
        PulumiStack.select(STACK)


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


def test_standin_outputs_follow_only_when_the_root_stack_is_in_scope(standin: StandInStack) -> None:
    standin.set_config(FAILED_OVER)
    standin.up([DB_DR])
    assert standin.outputs()["activeRegion"] == PRIMARY
    standin.up([ROOT])
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


def test_standin_interrupted_update_leaves_pending_operations_that_block_until_cleared(standin: StandInStack) -> None:
    standin.set_config(FAILED_OVER)
    standin.fail_up(1, "interrupt")
    with pytest.raises(DrctlError, match="interrupted"):
        standin.up(None)
    assert len(standin.pending) == 1
    with pytest.raises(DrctlError, match="pending operation"):
        standin.up(None)
    report = standin.clear_pending_operations()
    assert report.cleared and standin.pending == []
    standin.up(None)
    assert standin.preview().changed == ()
    assert [u.error is None for u in standin.updates] == [False, False, True]


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
