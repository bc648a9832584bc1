"""The stack adapter: the real one at the pulumi.automation boundary, the stand-in's diffing, update targets."""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pulumi.automation as auto
import pytest
from pulumi.automation import errors as auto_errors
from pulumi.automation import events

from automation.errors import DrctlError
from automation.evaluate import GLOBAL, DeclaredResource, Evaluation
from automation.stack import PulumiStack, root_stack_urn
from automation.stack_standin import StandInStack
from automation.targets import refuse_failed_region_targets, surviving_region_targets
from components.config import DrState, parse_config
from tests.conftest import STATE_OVERRIDES, evaluate_state, prod_config

STACK = "organization/dr-platform/prod"
PRIMARY, DR = "us-east-1", "us-west-2"
FAILED_OVER = STATE_OVERRIDES["failed-over"]


# --- the real adapter, with a fake pulumi.automation.Stack ------------------------------------


class FakeAutomationStack:
    """Stands in for `pulumi.automation.Stack`; checks every call against the real method's signature."""

    def __init__(self, config: Mapping[str, str] | None = None, deployment: dict[str, Any] | None = None) -> None:
        self.config = {key: auto.ConfigValue(value=value) for key, value in (config or prod_config()).items()}
        self.deployment = deployment or {"manifest": {}, "resources": []}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.imported: auto.Deployment | None = None
        self.raise_on: dict[str, Exception] = {}

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        bound = inspect.signature(getattr(auto.Stack, method)).bind(self, *args, **kwargs)
        arguments = {name: value for name, value in bound.arguments.items() if name != "self"}
        self.calls.append((method, {**arguments.pop("kwargs", {}), **arguments}))
        if method in self.raise_on:
            raise self.raise_on[method]

    def get_all_config(self) -> dict[str, auto.ConfigValue]:
        self._call("get_all_config")
        return dict(self.config)

    def set_all_config(self, config: Mapping[str, auto.ConfigValue], *, path: bool = False) -> None:
        self._call("set_all_config", config, path=path)
        self.config.update(config)

    def preview(self, **kwargs: Any) -> auto.PreviewResult:
        self._call("preview", **kwargs)
        _emit_step(kwargs["on_event"], events.OpType.UPDATE, "urn:pulumi:prod::dr-platform::aws:rds/x:X::db-dr")
        return auto.PreviewResult(stdout="", stderr="", change_summary={events.OpType.UPDATE: 1, events.OpType.SAME: 5})

    def up(self, **kwargs: Any) -> auto.UpResult:
        self._call("up", **kwargs)
        _emit_step(kwargs["on_event"], events.OpType.UPDATE, "urn:pulumi:prod::dr-platform::aws:rds/x:X::db-dr")
        if kwargs.get("on_output"):
            kwargs["on_output"]("Updating (prod)")
        summary = auto.UpdateSummary(
            kind="update",
            start_time=datetime.now(UTC),
            message="",
            environment={},
            config={},
            result="succeeded",
            resource_changes={events.OpType.UPDATE: 1, events.OpType.SAME: 5},
        )
        return auto.UpResult(
            stdout="", stderr="", summary=summary, outputs={"activeRegion": auto.OutputValue(DR, False)}
        )

    def outputs(self) -> dict[str, auto.OutputValue]:
        self._call("outputs")
        return {"activeRegion": auto.OutputValue(PRIMARY, False), "dbPassword": auto.OutputValue("s3cr3t", True)}

    def cancel(self) -> None:
        self._call("cancel")

    def export_stack(self) -> auto.Deployment:
        self._call("export_stack")
        return auto.Deployment(version=3, deployment=json.loads(json.dumps(self.deployment)))

    def import_stack(self, state: auto.Deployment) -> None:
        self._call("import_stack", state)
        self.imported = state


def _emit_step(on_event: Any, op: events.OpType, urn: str) -> None:
    metadata = events.StepEventMetadata(op=op, urn=urn, type="aws:rds/x:X", provider="")
    on_event(events.EngineEvent(sequence=1, timestamp=0, resource_pre_event=events.ResourcePreEvent(metadata)))


def test_up_passes_targets_without_dependents_and_never_refreshes() -> None:
    fake = FakeAutomationStack()
    lines: list[str] = []
    result = PulumiStack(fake, STACK).up(["urn:a", "urn:b"], on_output=lines.append, message="failover")
    (_, kwargs), *_ = [call for call in fake.calls if call[0] == "up"]
    assert kwargs["target"] == ["urn:a", "urn:b"]
    assert kwargs["target_dependents"] is False
    assert kwargs["refresh"] is False
    assert kwargs["exclude"] is None
    assert kwargs["message"] == "failover"
    assert lines == ["Updating (prod)"]
    assert result.summary.counts == {"update": 1, "same": 5}
    assert [(s.op, s.urn.rsplit("::", 1)[-1]) for s in result.summary.changed] == [("update", "db-dr")]
    assert result.outputs == {"activeRegion": DR}


def test_up_with_exclusions_and_a_deliberate_full_update() -> None:
    fake = FakeAutomationStack()
    PulumiStack(fake, STACK).up(None, exclude=["urn:failed"])
    kwargs = fake.calls[-1][1]
    assert kwargs["target"] is None and kwargs["target_dependents"] is None
    assert kwargs["exclude"] == ["urn:failed"] and kwargs["exclude_dependents"] is False


def test_an_empty_target_list_is_refused_before_the_cli_runs() -> None:
    fake = FakeAutomationStack()
    with pytest.raises(DrctlError, match="empty target list"):
        PulumiStack(fake, STACK).up([])
    assert fake.calls == []


def test_preview_collects_steps_and_counts() -> None:
    fake = FakeAutomationStack()
    summary = PulumiStack(fake, STACK).preview(["urn:a"])
    assert fake.calls[-1][1]["target"] == ["urn:a"] and fake.calls[-1][1]["refresh"] is False
    assert summary.describe() == "1 to update"
    assert summary.steps[0].op == "update"


def test_set_config_validates_the_merged_config_before_writing() -> None:
    fake = FakeAutomationStack()
    adapter = PulumiStack(fake, STACK)
    with pytest.raises(DrctlError, match="activeRegion"):
        adapter.set_config({"drState": "failed-over"})  # activeRegion left at the primary: inconsistent
    assert not any(method == "set_all_config" for method, _ in fake.calls)

    merged = adapter.set_config(FAILED_OVER)
    (written,) = [call[1] for call in fake.calls if call[0] == "set_all_config"]
    assert {key: value.value for key, value in written["config"].items()} == FAILED_OVER
    assert written["path"] is False
    assert parse_config(merged).dr_state is DrState.FAILED_OVER


def test_set_config_accepts_keys_without_the_namespace() -> None:
    fake = FakeAutomationStack()
    PulumiStack(fake, STACK).set_config({"activeRegion": DR, "drState": "failed-over"})
    written = next(call[1]["config"] for call in fake.calls if call[0] == "set_all_config")
    assert set(written) == {"dr-platform:activeRegion", "dr-platform:drState"}


def test_outputs_and_cancel() -> None:
    fake = FakeAutomationStack()
    adapter = PulumiStack(fake, STACK)
    assert adapter.outputs()["activeRegion"] == PRIMARY
    adapter.cancel()
    assert fake.calls[-1][0] == "cancel"


def test_pending_operations_are_exported_reported_and_imported_back_without_them() -> None:
    pending = [
        {
            "resource": {"urn": "urn:pulumi:prod::dr-platform::aws:rds/instance:Instance::db-dr", "type": "x"},
            "type": "updating",
        },
        {"resource": {"urn": "urn:pulumi:prod::dr-platform::aws:sns/topic:Topic::t", "type": "y"}, "type": "creating"},
    ]
    fake = FakeAutomationStack(
        deployment={"manifest": {"time": "t"}, "resources": [{"urn": "r"}], "pending_operations": pending}
    )
    adapter = PulumiStack(fake, STACK)
    assert [op.kind for op in adapter.pending_operations()] == ["updating", "creating"]

    report = adapter.clear_pending_operations()
    assert fake.imported is not None
    assert fake.imported.version == 3
    assert "pending_operations" not in fake.imported.deployment
    assert fake.imported.deployment["resources"] == [{"urn": "r"}]
    assert len(report.cleared) == 2
    text = report.describe()
    assert "removed 2 pending operation(s)" in text and "pulumi import" in text


def test_no_pending_operations_means_no_import() -> None:
    fake = FakeAutomationStack()
    report = PulumiStack(fake, STACK).clear_pending_operations()
    assert report.cleared == () and fake.imported is None
    assert report.describe() == "no pending operations in the stack state"


def _command_error(stderr: str, stdout: str = "") -> auto_errors.CommandError:
    return auto_errors.create_command_error(auto.CommandResult(stdout=stdout, stderr=stderr, code=255))


@pytest.mark.parametrize(
    ("error", "message", "hint"),
    [
        (_command_error("error: no stack named 'organization/dr-platform/prod' found"), "does not exist", "login"),
        (_command_error("error: [409] Conflict: Another update is currently in progress."), "another update", "cancel"),
        (_command_error("error: the stack is currently locked by 1 lock(s)"), "another update", "lock"),
        (
            _command_error("error: aws:rds: AccessDenied\nerror: update failed"),
            "pulumi failed: error: aws:rds",
            "--debug",
        ),
        (FileNotFoundError(2, "No such file or directory: 'pulumi'"), "Pulumi CLI is not installed", "offline"),
        (auto_errors.InvalidVersionError("Minimum version requirement failed"), "Minimum version", "upgrade"),
    ],
)
def test_pulumi_errors_map_to_one_drctl_error(error: Exception, message: str, hint: str) -> None:
    fake = FakeAutomationStack()
    fake.raise_on["up"] = error
    with pytest.raises(DrctlError, match=message) as raised:
        PulumiStack(fake, STACK).up(["urn:a"])
    assert hint in (raised.value.hint or "")
    assert raised.value.__cause__ is error


def test_select_uses_an_existing_stack_and_creates_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    workspaces: list[dict[str, Any]] = []

    class Workspace:
        def __init__(self, **kwargs: Any) -> None:
            workspaces.append(kwargs)

    def select(name: str, workspace: Any) -> FakeAutomationStack:
        made.append(f"select {name}")
        raise _command_error(f"error: no stack named '{name}' found")

    def create(name: str, workspace: Any) -> FakeAutomationStack:
        made.append(f"create {name}")
        return FakeAutomationStack()

    monkeypatch.setattr(auto, "LocalWorkspace", Workspace)
    monkeypatch.setattr(auto.Stack, "select", staticmethod(select))
    monkeypatch.setattr(auto.Stack, "create", staticmethod(create))

    with pytest.raises(DrctlError, match="does not exist") as raised:
        PulumiStack.select(STACK)
    assert "--create-stack" in (raised.value.hint or "")
    assert made == [f"select {STACK}"]
    assert Path(workspaces[0]["work_dir"]) == Path(__file__).resolve().parent.parent

    adapter = PulumiStack.select(STACK, create=True)
    assert made[-1] == f"create {STACK}" and adapter.fully_qualified_name == STACK


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
