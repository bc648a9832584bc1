"""`drctl drill --live`: the live path driven against moto with a real (shortened) clock.

The world is the sandbox's moto, stand-in stack and latency clock, which
really sleeps (scaled down), handed to the live drill through the same
`DrillWorld` seam a real run gets from `drctl failover`'s environment
(automation/drill/world.py). The live code does not know it is offline: it
writes S3 canaries through boto3, runs the production runbooks, times every
step and builds its report. What moto cannot do is modelled at the edge and
said so: S3 replication of the canaries (the sandbox's S3 replication model,
automation/sandbox/objects.py) and the probe Job (a fake cluster that answers
as the Job's containers would print).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from automation import cli, prices
from automation.aws import readiness
from automation.drill import live_command
from automation.drill.faults import FaultExperiment
from automation.drill.kubernetes import TOKEN_PREFIX, JobRun, eks_token
from automation.drill.live import (
    PARTIAL_DRILL_OPERATIONS,
    PARTIAL_RUNBOOK,
    LiveDrill,
    LiveOptions,
    Scope,
    live_drill_graphs,
    partial_runbook,
    predicted_seconds,
)
from automation.drill.live_report import render_live_markdown
from automation.drill.probes import (
    Canaries,
    Canary,
    ClusterCanaries,
    S3Canaries,
    loss_window_seconds,
    parse_probe_logs,
    probe_job,
)
from automation.drill.world import DrillWorld
from automation.errors import DrctlError
from automation.evaluate import stack_file_config
from automation.journal import local_store
from automation.runbook import Runbook
from automation.runbooks import commands
from automation.runbooks.context import DrAws, DrContext
from automation.runbooks.failback import prepare_runbook, switch_runbook
from automation.runbooks.failover import FailoverMode, failover_runbook
from automation.sandbox import MotoSandboxServer, Sandbox, load_balancer_dimension
from automation.sandbox.dataplane import Survival
from automation.stack_standin import StandInStack
from automation.timings import Op, latency
from components.config import parse_config
from tests.conftest import STATE_OVERRIDES, prod_config
from tests.dr_world import Dr
from tests.fake_clock import FakeClock

PRIMARY, DR = "us-east-1", "us-west-2"
OPERATOR = "arn:aws:sts::123456789012:assumed-role/dr-platform-drill/ci"
SCALE = 0.0001
"""Real seconds slept per second of the drill's clock: a full drill (two 2-hour replica builds) in about a second."""
MUTATING = ("Put", "Create", "Update", "Delete", "Start", "Modify", "Promote", "Failover", "Reboot", "Set", "Stop")


class ReplicatedS3Canaries(S3Canaries):
    """Real S3 calls to moto; replication as the sandbox models S3's (moto stores replication rules only)."""

    def __init__(self, sandbox: Sandbox, replicate: bool = True) -> None:
        super().__init__(sandbox.clients, sandbox.stack.outputs(), sandbox.clock)
        self.sandbox, self.replicate = sandbox, replicate

    def write(self, region: str, drill_id: str, count: int, interval_seconds: float) -> list[Canary]:
        written = super().write(region, drill_id, count, interval_seconds)
        if self.replicate:
            for canary in written:
                self.sandbox.objects.written(self.buckets[region], canary.key, canary.written_at)
        return written

    def read(self, region: str, canaries: Sequence[Canary]) -> Any:
        self.sandbox.data.replicate_objects()
        return super().read(region, canaries)


class FakeCluster:
    """Answers the probe Job as its containers would print: database rows replicate; the cache secret is refused
    (as on a stack deployed before the program declared the probe's identity), so that path is not measured."""

    def __init__(self) -> None:
        self.rows: set[str] = set()
        self.manifests: list[Mapping[str, Any]] = []

    def __call__(self, region: str, manifest: Mapping[str, Any]) -> dict[str, str]:
        self.manifests.append(manifest)
        env = {e["name"]: e["value"] for e in manifest["spec"]["template"]["spec"]["containers"][0]["env"]}
        mode = manifest["metadata"]["name"].rsplit("-", 1)[-1]
        cache = "unreachable cache the probe identity cannot read the AUTH secret"
        if mode == "write":
            at = datetime(2026, 1, 1, tzinfo=UTC)
            lines = [
                f"written database {i} {(at + timedelta(seconds=5 * i)).isoformat()}" for i in range(int(env["COUNT"]))
            ]
            self.rows.update(str(i) for i in range(int(env["COUNT"])))
            return {"database": "\n".join(lines), "cache": cache}
        return {"database": "\n".join(f"found database {i}" for i in sorted(self.rows)), "cache": cache}


@contextmanager
def live_world(server: MotoSandboxServer, tmp_path: Path, **overrides: str) -> Iterator[tuple[Sandbox, DrillWorld]]:
    config = prod_config(environment="drill", **overrides)
    with Sandbox.open(config, server=server, scale=SCALE) as sandbox:
        sandbox.provision()
        yield (
            sandbox,
            DrillWorld(
                stack=sandbox.stack,
                clients=sandbox.clients,
                clock=sandbox.clock,
                store=local_store(sandbox.stack.fully_qualified_name, root=tmp_path / "control-store"),
                simulation=False,
                operator=OPERATOR,
                # What `drctl drill --live` gets from the control store (commands.traffic_fence_recorder): here the
                # sandbox's fence publisher model, as in the sandbox drill.
                record_traffic_fence=lambda run, raised: sandbox.record_traffic_fence(raised, run.run_id),
                error_metrics=lambda region: readiness.load_balancer_metrics(
                    load_balancer_dimension(sandbox.cfg, region)
                ),
                # Route53's answer from the sandbox's name servers, as `drctl status` reads the real zone's.
                resolvers=(sandbox.authoritative_answer, sandbox.zone_name_servers),
            ),
        )


def drill_in(sandbox: Sandbox, world: DrillWorld, options: LiveOptions, **kwargs: Any) -> LiveDrill:
    canaries = Canaries(
        ReplicatedS3Canaries(sandbox), ClusterCanaries(FakeCluster(), sandbox.cfg, sandbox.stack.outputs())
    )
    kwargs.setdefault("restore_check", lambda: {"passed": True, "failures": []})
    return LiveDrill(world, options, canaries, **kwargs)


@pytest.fixture(scope="module")
def shared(server: MotoSandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, DrillWorld]]:
    """One provisioned world for the module: a full drill ends in steady state, where a partial one starts."""
    with live_world(server, tmp_path_factory.mktemp("live")) as world:
        yield world


@pytest.fixture(scope="module")
def full_report(shared: tuple[Sandbox, DrillWorld]) -> dict[str, Any]:
    sandbox, world = shared
    options = LiveOptions(Scope.FULL, reason="quarterly full drill", hold_seconds=600)
    return drill_in(sandbox, world, options).run()


# --- refusals -------------------------------------------------------------------------------------------


def standin_environment(tmp_path: Path, config: Mapping[str, str]) -> commands.Environment:
    clock = FakeClock()
    stack = StandInStack(config, name="organization/dr-platform/prod")
    ctx = DrContext(stack, DrAws(_NoAws(), clock), clock)
    return commands.Environment(ctx, local_store(stack.fully_qualified_name, root=tmp_path), operator=OPERATOR)


class _NoAws:
    """Any AWS call fails the test: a refusal comes before the first one."""

    def client(self, service: str, region: str) -> Any:
        raise AssertionError(f"the drill called {service} in {region}")


def test_the_production_stack_is_refused_before_any_aws_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = standin_environment(tmp_path, prod_config())
    monkeypatch.setattr(commands, "open_environment", lambda *_: env)

    result = CliRunner().invoke(cli.app, ["drill", "--live", "--stack", "organization/dr-platform/prod", "--yes"])

    assert isinstance(result.exception, DrctlError), result.output
    assert "production stack" in str(result.exception) and "environment" in str(result.exception)
    assert "--allow-production" in (result.exception.hint or "")
    assert not list(tmp_path.rglob("*")), "nothing written to the control store"


def test_allow_production_needs_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "open_environment", lambda *_: standin_environment(tmp_path, prod_config()))

    result = CliRunner().invoke(cli.app, ["drill", "--live", "--allow-production", "--dry-run"])

    assert isinstance(result.exception, DrctlError) and "--allow-production needs --reason" in str(result.exception)


def test_an_allowed_production_drill_records_its_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "open_environment", lambda *_: standin_environment(tmp_path, prod_config()))

    result = CliRunner().invoke(
        cli.app, ["drill", "--live", "--allow-production", "--reason", "annual audit drill", "--dry-run", "--json"]
    )

    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)["plan"]
    assert "production drill allowed: annual audit drill" in plan


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--scope", "everything"], "--scope must be full or partial"),
        (["--scope", "partial", "--hold-minutes", "5"], "only for --scope full"),
        (["--scope", "partial", "--inject-fault"], "--inject-fault only with --scope full"),
        (["--sandbox"], "exclusive"),
    ],
)
def test_bad_live_options_are_refused_before_the_stack_is_opened(arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(cli.app, ["drill", "--live", *arguments])

    assert isinstance(result.exception, DrctlError) and message in str(result.exception)


def test_a_drill_starts_from_steady_only(tmp_path: Path) -> None:
    env = standin_environment(tmp_path, prod_config(environment="drill", drState="failed-over", activeRegion=DR))
    world = DrillWorld(env.ctx.stack, _NoAws(), env.ctx.clock, env.store, False, OPERATOR)  # type: ignore[arg-type]

    with pytest.raises(DrctlError, match="a drill starts from steady"):
        LiveDrill(world, LiveOptions(Scope.FULL, reason="x"), None, lambda: {}).run()


# --- dry run --------------------------------------------------------------------------------------------


def test_the_dry_run_lists_every_phase_with_predictions_and_calls_no_aws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = standin_environment(tmp_path, prod_config(environment="drill", faultInjection="true"))
    config_before = dict(env.ctx.stack.get_config())
    monkeypatch.setattr(commands, "open_environment", lambda *_: env)

    result = CliRunner().invoke(cli.app, ["drill", "--live", "--scope", "full", "--dry-run"])

    assert result.exit_code == 0, result.output
    text = result.stdout
    for phase in ("failover --mode graceful", "failback prepare", "failback switch", "canaries"):
        assert phase in text
    assert "update_stack_in_dr_region" in text and "(predicted 360 s)" in text
    assert env.ctx.stack.get_config() == config_before  # and _NoAws: not one AWS client was made
    assert not list(tmp_path.rglob("*")), "nothing written to the control store"


# --- a full drill ---------------------------------------------------------------------------------------


def test_the_full_drill_is_labelled_live_and_measures_rto_by_the_clock(full_report: dict[str, Any]) -> None:
    report = full_report
    assert report["mode"] == "live" and report["simulation"] is False and report["scenario"] == "live-full"
    assert report["result"] == "succeeded", report["findings"]
    assert [run["runbook"] for run in report["runs"]] == ["failover", "failback-prepare", "failback-switch"]
    failover = report["runs"][0]
    assert report["rto_seconds"] == failover["rto_seconds"] and report["rto_seconds"] > 0
    assert report["final_state"] == {"activeRegion": PRIMARY, "drState": "steady"}
    holds = [e for e in report["timeline"] if e["phase"] == "hold"]
    assert holds and "600 s" in holds[0]["event"]


def test_each_step_stands_next_to_the_timing_tables_prediction(full_report: dict[str, Any]) -> None:
    steps = {(s["runbook"], s["name"]): s for s in full_report["steps"]}
    update = steps[("failover", "update_stack_in_dr_region")]
    assert update["predicted"]["operations"] == ["pulumi.stack-update-overhead", "rds.promote-read-replica"]
    assert update["predicted"]["typical_seconds"] == 360 and update["duration_seconds"] is not None
    assert steps[("failover", "fence_primary_writer")]["predicted"] is not None
    assert steps[("failover", "notify_dr_alert_topic")]["predicted"] is None
    markdown = render_live_markdown(full_report)
    assert markdown.startswith("# DR drill (LIVE): live-full")
    assert "| failover | update_stack_in_dr_region | succeeded |" in markdown
    assert "SIMULATION" not in markdown


def test_the_canaries_give_the_same_data_loss_table_as_the_sandbox(full_report: dict[str, Any]) -> None:
    data = full_report["data"]
    assert set(data) == {"after-failover", "final"}
    after = {row["kind"]: row for row in data["after-failover"]["kinds"]}
    assert data["after-failover"]["region"] == DR and data["final"]["region"] == PRIMARY
    assert after["s3-objects"]["written"] == 3 and after["s3-objects"]["lost"] == 0
    assert after["database-rows"]["survived"] == 3
    assert "cache-keys" in data["after-failover"]["not_measured"]  # never counted as survived
    assert full_report["rpo_seconds"] == 0 and full_report["objectives"]["rpo"]["met"] is True
    assert any("cache-keys not measured" in finding for finding in full_report["findings"])
    markdown = render_live_markdown(full_report)
    assert "| after-failover (us-west-2) | s3-objects |" in markdown


def test_the_report_is_kept_locally_and_in_the_control_store(full_report: dict[str, Any], tmp_path: Path) -> None:
    store = local_store("organization/dr-platform/drill", root=tmp_path / "store")

    paths = live_command.keep_report(full_report, store, tmp_path / "out")

    assert (tmp_path / "out" / "drill-live-full.json").is_file()
    stored = store.read(f"reports/{full_report['drill_id']}.json")
    assert stored is not None and json.loads(stored.data)["scenario"] == "live-full"
    assert any(path.endswith(f"reports/{full_report['drill_id']}.md") for path in paths)


def test_a_missed_objective_fails_the_command_with_its_own_exit_code(
    full_report: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missed = copy.deepcopy(full_report)
    missed["rpo_seconds"] = 420.0
    missed["objectives"]["rpo"] = {"measured_seconds": 420.0, "target_seconds": 300, "met": False}
    env = standin_environment(tmp_path, prod_config(environment="drill"))
    monkeypatch.setattr(commands, "open_environment", lambda *_: env)
    monkeypatch.setattr(live_command, "live_drill", lambda *_: type("Ran", (), {"run": lambda self: missed})())

    result = CliRunner().invoke(cli.app, ["drill", "--live", "--scope", "full", "--yes", "--report-dir", str(tmp_path)])

    assert isinstance(result.exception, DrctlError), result.output
    assert result.exception.exit_code == 5 and "RPO 420 s > 300 s" in str(result.exception)


# --- a partial drill ------------------------------------------------------------------------------------


def test_a_partial_drill_moves_nothing_and_puts_dr_compute_back(shared: tuple[Sandbox, DrillWorld]) -> None:
    sandbox, world = shared
    report = drill_in(sandbox, world, LiveOptions(Scope.PARTIAL, reason="monthly")).run()

    assert report["result"] == "succeeded", report["findings"]
    assert [s["name"] for s in report["steps"]] == [
        "check_readiness",
        "scale_up_dr_compute",
        "restore_from_backup",
        "check_dns_health_checks",
        "scale_down_dr_compute",
    ]
    assert dr_desired_size(sandbox) == parse_config(prod_config()).node_group_standby.desired
    assert report["final_state"] == {"activeRegion": PRIMARY, "drState": "steady"}
    assert report["rto_seconds"] is None and report["data"]["replicated"]["region"] == DR


def test_a_failing_restore_fails_the_partial_drill(shared: tuple[Sandbox, DrillWorld]) -> None:
    sandbox, world = shared

    def failing() -> dict[str, Any]:
        return {"passed": False, "failures": ["us-east-1: scratch instance never available"]}

    report = drill_in(sandbox, world, LiveOptions(Scope.PARTIAL, reason="monthly"), restore_check=failing).run()

    assert report["result"] == "failed"
    step = next(s for s in report["steps"] if s["name"] == "restore_from_backup")
    assert step["status"] == "failed" and "scratch instance never available" in step["error"]
    # The DR compute it scaled up is not left at full size (and cost) by the failure.
    assert dr_desired_size(sandbox) == parse_config(prod_config()).node_group_standby.desired
    assert any("back to" in e["event"] for e in report["timeline"] if e["phase"] == "cleanup")


def dr_desired_size(sandbox: Sandbox) -> int:
    cluster = sandbox.stack.outputs()["clusters"][DR]
    group = sandbox.clients.client("eks", DR).describe_nodegroup(
        clusterName=cluster["name"], nodegroupName=cluster["nodeGroup"]
    )
    return group["nodegroup"]["scalingConfig"]["desiredSize"]


# --- the canaries and the RPO ---------------------------------------------------------------------------


def _canaries(kind: str, seconds: Sequence[float]) -> list[Canary]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [Canary(kind, str(i), PRIMARY, start + timedelta(seconds=s)) for i, s in enumerate(seconds)]


def test_the_loss_window_runs_from_the_newest_arrival_to_the_newest_loss() -> None:
    written = {"s3-objects": _canaries("s3-objects", [0, 5, 10, 15])}
    survival = Survival("s3-objects", DR, "bucket", 4, 2, ("2", "3"), written["s3-objects"][2].written_at,
                        written["s3-objects"][3].written_at)  # fmt: skip
    assert loss_window_seconds([survival], written) == 10
    nothing_lost = Survival("s3-objects", DR, "bucket", 4, 4, (), None, None)
    assert loss_window_seconds([nothing_lost], written) == 0
    assert loss_window_seconds([], written) is None


def test_probe_logs_name_what_was_written_and_found_and_what_could_not_be_reached() -> None:
    parsed = parse_probe_logs(
        {
            "database": "written database 0 2026-01-01T00:00:00+00:00\nnoise\n"
            "written database 1 2026-01-01T00:00:05+00:00",
            "cache": "unreachable cache the probe identity cannot read the AUTH secret",
        },
        PRIMARY,
    )
    written, _, problem = parsed["database-rows"]
    assert [c.key for c in written] == ["0", "1"] and problem is None
    assert parsed["cache-keys"][2] == "the probe identity cannot read the AUTH secret"
    silent = parse_probe_logs({"database": "psql: could not connect"}, PRIMARY)
    assert "printed nothing drctl understands" in (silent["database-rows"][2] or "")


def test_the_probe_job_is_short_lived_unprivileged_and_uses_its_own_identity() -> None:
    cfg = parse_config(prod_config())
    outputs = {"database": {PRIMARY: {"endpoint": "db.example:5432", "identifier": "acme-drp-use1-pg-g1"}}}

    job = probe_job(cfg, outputs, PRIMARY, "drill-abc", "write", 3, 5)

    spec = job["spec"]
    pod = spec["template"]["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] <= 300 and spec["ttlSecondsAfterFinished"]
    assert pod["serviceAccountName"] == "drill-probe" and pod["securityContext"]["runAsNonRoot"] is True
    assert {c["name"] for c in pod["containers"]} == {"database", "cache"}
    database_env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert database_env["PGHOST"] == "db.example" and database_env["PGSSLMODE"] == "require"
    assert "INSERT INTO dr_platform_drill_canary" in pod["containers"][0]["command"][2]
    assert "--tls" in pod["containers"][1]["command"][2]


def test_a_job_runs_to_completion_its_logs_are_read_and_it_is_deleted() -> None:
    """catalogue: eks.job-pods-labelled-and-orphaned-on-delete"""
    sent: list[tuple[str, str]] = []
    statuses = iter([{"active": 1}, {"succeeded": 1}])

    def send(method: str, path: str, body: Any) -> Any:
        sent.append((method, path))
        if method == "GET" and path.endswith("/jobs/drill-probe-x-write"):
            return {"status": next(statuses)}
        if "labelSelector" in path:
            return {"items": [{"metadata": {"name": "pod-1"}}]}
        if "/log?container=" in path:
            return f"log of {path.rsplit('=', 1)[1]}"
        return {}

    manifest = {
        "metadata": {"namespace": "dr-platform", "name": "drill-probe-x-write"},
        "spec": {"template": {"spec": {"containers": [{"name": "database"}, {"name": "cache"}]}}},
    }
    logs = JobRun(send, FakeClock(), poll_seconds=1)(manifest)

    assert logs == {"database": "log of database", "cache": "log of cache"}
    assert sent[0] == ("POST", "/apis/batch/v1/namespaces/dr-platform/jobs")
    assert sent[-1] == (
        "DELETE",
        "/apis/batch/v1/namespaces/dr-platform/jobs/drill-probe-x-write?propagationPolicy=Background",
    )


def test_the_eks_token_is_a_presigned_get_caller_identity_bound_to_the_cluster(credentials: None) -> None:
    """catalogue: eks.iam-token-is-presigned-get-caller-identity"""
    import base64

    import boto3

    sts = boto3.session.Session().client("sts", region_name=DR)
    token = eks_token(sts, "acme-drp-usw2-eks")

    assert token.startswith(TOKEN_PREFIX)
    encoded = token.removeprefix(TOKEN_PREFIX)
    url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    assert "Action=GetCallerIdentity" in url and "X-Amz-Expires=60" in url
    assert "x-k8s-aws-id" in url.split("X-Amz-SignedHeaders=", 1)[1].split("&", 1)[0]


# --- fault injection ------------------------------------------------------------------------------------

TEMPLATES = {
    PRIMARY: {
        "crossRegionConnectivity": "EXT1a2b3c",
        "abortAlarm": "acme-drp-use1-drill-abort",
        "abortMetric": {"namespace": "DrPlatform/Drill", "name": "AbortRequested", "dimensions": {"Region": PRIMARY}},
    }
}


class StubbedClients:
    def __init__(self, clients: Mapping[str, Any]) -> None:
        self.clients = clients

    def client(self, service: str, region: str) -> Any:
        return self.clients[service]


def test_the_fis_experiment_starts_tagged_for_the_stack_and_stops_with_the_abort_alarm(credentials: None) -> None:
    """catalogue: fis.start-experiment-request-tag, fis.stop-condition-alarm, fis.start-experiment-client-token"""
    import boto3

    fis = boto3.session.Session().client("fis", region_name=PRIMARY)
    cloudwatch = boto3.session.Session().client("cloudwatch", region_name=PRIMARY)
    experiment = FaultExperiment(StubbedClients({"fis": fis, "cloudwatch": cloudwatch}), TEMPLATES, "drill")  # type: ignore[arg-type]
    with Stubber(fis) as fis_stub, Stubber(cloudwatch) as cw_stub:
        fis_stub.add_response(
            "start_experiment",
            {"experiment": {"id": "EXP123", "state": {"status": "initiating"}}},
            {"experimentTemplateId": "EXT1a2b3c", "clientToken": "drill-1", "tags": {"dr-platform:stack": "drill"}},
        )
        fis_stub.add_response("stop_experiment", {"experiment": {"id": "EXP123"}}, {"id": "EXP123"})
        cw_stub.add_response(
            "set_alarm_state",
            {},
            {"AlarmName": "acme-drp-use1-drill-abort", "StateValue": "ALARM", "StateReason": "drill aborted: failed"},
        )
        cw_stub.add_response(
            "put_metric_data",
            {},
            {
                "Namespace": "DrPlatform/Drill",
                "MetricData": [
                    {"MetricName": "AbortRequested", "Dimensions": [{"Name": "Region", "Value": PRIMARY}], "Value": 1}
                ],
            },
        )
        started = experiment.start(PRIMARY, "drill-1")
        stopped = experiment.stop("failed")
        fis_stub.assert_no_pending_responses()
        cw_stub.assert_no_pending_responses()
    assert "EXP123" in started and experiment.running is False
    assert "abort alarm acme-drp-use1-drill-abort set to ALARM" in stopped


def test_a_stop_that_fails_says_to_stop_it_by_hand(credentials: None) -> None:
    import boto3

    fis = boto3.session.Session().client("fis", region_name=PRIMARY)
    cloudwatch = boto3.session.Session().client("cloudwatch", region_name=PRIMARY)
    experiment = FaultExperiment(StubbedClients({"fis": fis, "cloudwatch": cloudwatch}), TEMPLATES, "drill")  # type: ignore[arg-type]
    experiment.region, experiment.experiment_id = PRIMARY, "EXP9"
    with Stubber(fis) as fis_stub, Stubber(cloudwatch) as cw_stub:
        fis_stub.add_client_error("stop_experiment", "AccessDeniedException")
        cw_stub.add_client_error("set_alarm_state", "AccessDenied")
        text = experiment.stop("interrupted")
    assert "STOP IT BY HAND: aws fis stop-experiment --region us-east-1 --id EXP9" in text


def test_inject_fault_without_templates_is_refused_before_any_aws_call(tmp_path: Path) -> None:
    env = standin_environment(tmp_path, prod_config(environment="drill"))
    world = DrillWorld(env.ctx.stack, _NoAws(), env.ctx.clock, env.store, False, OPERATOR)  # type: ignore[arg-type]
    drill = LiveDrill(world, LiveOptions(Scope.FULL, reason="x", inject_fault=True), None, lambda: {})
    with pytest.raises(DrctlError, match="--inject-fault: the stack declares no fault-injection templates"):
        drill.run()


# --- the drill stack and its cost -----------------------------------------------------------------------


def test_the_drill_stack_is_the_same_program_at_minimal_sizes_and_not_production() -> None:
    drill, prod = parse_config(stack_file_config("drill")), parse_config(stack_file_config("prod"))
    assert drill.environment == "drill" and prod.environment == "production"
    assert drill.name_prefix != prod.name_prefix and drill.zone_name != prod.zone_name
    assert drill.node_group_full.desired < prod.node_group_full.desired
    assert drill.db_allocated_storage_gb < prod.db_allocated_storage_gb
    assert drill.fault_injection.enabled


def test_the_readme_states_the_drill_stacks_daily_cost_as_computed() -> None:
    lines = prices.daily_cost(parse_config(stack_file_config("drill")))
    figure = f"about **{prices.total(lines):.0f} USD per day**"
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert figure in readme and prices.PRICES_DATE in readme


def test_a_size_without_a_price_is_an_error_not_a_guess() -> None:
    cfg = parse_config(prod_config(cacheNodeType="cache.r5.24xlarge"))
    with pytest.raises(prices.UnpricedError, match=r"elasticache:cache\.r5\.24xlarge"):
        prices.daily_cost(cfg)


def _live_drill_runbooks(tmp_path: Path) -> dict[str, Runbook]:
    """Every runbook a live drill runs, built as it builds them, each from the state it starts from."""
    steady = Dr(tmp_path / "steady", config=prod_config(**STATE_OVERRIDES["steady"]))
    failed_over = Dr(tmp_path / "failed-over", config=prod_config(**STATE_OVERRIDES["failed-over"]))
    resyncing = Dr(tmp_path / "resyncing", config=prod_config(**STATE_OVERRIDES["resyncing"]))
    built = (
        failover_runbook(steady.ctx, FailoverMode.GRACEFUL),
        partial_runbook(steady.ctx, steady.cfg, lambda: {"passed": True}),
        prepare_runbook(failed_over.ctx),
        switch_runbook(resyncing.ctx),
    )
    return {runbook.name: runbook for runbook in built}


def test_every_prediction_is_for_a_step_of_a_built_runbook_and_adds_operations_of_the_timing_table(
    tmp_path: Path,
) -> None:
    cfg = parse_config(prod_config())
    runbooks = _live_drill_runbooks(tmp_path)
    partial = {step.name for step, _ in runbooks[PARTIAL_RUNBOOK].steps()}
    assert set(PARTIAL_DRILL_OPERATIONS) <= partial
    assert {type(op) for ops in PARTIAL_DRILL_OPERATIONS.values() for op in ops} == {Op}
    graphs = live_drill_graphs(cfg)
    assert set(graphs) | {PARTIAL_RUNBOOK} == set(runbooks)
    for name, graph in graphs.items():
        assert set(graph.dependencies()) == {step.name for step, _ in runbooks[name].steps()}


def test_every_step_of_a_live_drill_that_the_timing_table_models_has_its_prediction(tmp_path: Path) -> None:
    cfg = parse_config(prod_config())
    graphs = live_drill_graphs(cfg)
    predicted: dict[str, dict[str, Any]] = {}
    for name, runbook in _live_drill_runbooks(tmp_path).items():
        for step, _ in runbook.steps():
            found = predicted_seconds(name, step.name, cfg)
            modelled = graphs[name].node(step.name).waits_on if name in graphs else ()
            assert (found is not None) == bool(modelled or PARTIAL_DRILL_OPERATIONS.get(step.name)), step.name
            if found is not None:
                predicted[f"{name}/{step.name}"] = found
    # The steps a drill spends its time in, under the names the RTO work gave them:
    fence = predicted["failover/fence_primary_writer"]
    assert fence["operations"] == [Op.RDS_PARAMETER_APPLY.value, Op.RDS_REBOOT.value]
    assert fence["typical_seconds"] == latency(Op.RDS_PARAMETER_APPLY, cfg) + latency(Op.RDS_REBOOT, cfg)
    assert predicted["failover/update_stack_in_dr_region"]["operations"][:2] == [
        Op.STACK_UPDATE_OVERHEAD.value,
        Op.RDS_PROMOTE_REPLICA.value,
    ]
    # The serving size's nodes are counted from the scaling request, as the floor counts them.
    ready = predicted["failover/wait_until_dr_nodes_ready"]
    assert ready["typical_seconds"] == latency(Op.NODE_GROUP_SCALE_UP, cfg) - latency(Op.NODE_GROUP_UPDATE, cfg)
    assert {"failover/wait_until_dr_replica_has_everything", "failover/verify_dr_serving"} <= set(predicted)
    assert "failover/notify_dr_alert_topic" not in predicted and "drill-partial/restore_from_backup" not in predicted
    assert predicted["drill-partial/scale_up_dr_compute"]["operations"] == [Op.NODE_GROUP_SCALE_UP.value]
    assert any(key.startswith("failback-switch/") for key in predicted)
    assert any(key.startswith("failback-prepare/") for key in predicted)
