"""`drctl drill --live ...`: the live world built as `drctl failover` builds it, the drill run, its reports kept.

Reports go to `--report-dir` (drill-live-<scope>.json/.md) and to the control
store in the DR region (`reports/<drill id>.json/.md`, next to the runs'
reports), which is where the scheduled workflow's drills are kept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from automation.drill.faults import FaultExperiment
from automation.drill.kubernetes import eks_job_runner
from automation.drill.live import (
    FAILED_EXIT,
    OBJECTIVE_MISSED_EXIT,
    LiveDrill,
    LiveOptions,
    Scope,
    dry_run_lines,
)
from automation.drill.live_report import objectives_missed, render_live_markdown
from automation.drill.probes import Canaries, ClusterCanaries, S3Canaries
from automation.drill.world import DrillWorld
from automation.errors import DrctlError
from automation.runbooks import commands
from automation.stack import short_stack_name


def live_drill(world: DrillWorld, options: LiveOptions, output: Any) -> LiveDrill:
    """A live drill on `world` with the real probes: S3 canaries, the probe Job, backup-verify, FIS."""
    from automation.backup_verify import verify_stack_backups

    ctx = world.context()
    cfg, outputs = ctx.config(), world.stack.outputs()

    def restore() -> dict[str, Any]:
        verification = verify_stack_backups(world.clients, cfg, outputs, clock=world.clock)
        return {"passed": verification.passed, "failures": verification.failures(), "report": verification.to_dict()}

    templates = outputs.get("faultInjection")
    fault = (
        FaultExperiment(world.clients, templates, short_stack_name(world.stack.fully_qualified_name))
        if options.inject_fault and templates
        else None
    )
    canaries = Canaries(
        S3Canaries(world.clients, outputs, world.clock),
        ClusterCanaries(eks_job_runner(world.clients, cfg, world.clock), cfg, outputs),
        count=options.canary_count,
        interval_seconds=options.canary_interval_seconds,
    )
    return LiveDrill(world, options, canaries, restore, fault=fault, output=output)


def run_live_command(
    *,
    stack: str | None,
    journal: str | None,
    local_journal: Path | None,
    options: LiveOptions,
    dry_run: bool,
    yes: bool,
    report_dir: Path,
    as_json: bool,
    verbose: bool,
) -> None:
    env = commands.open_environment(stack, journal, local_journal)
    world = DrillWorld(
        stack=env.ctx.stack,
        clients=env.ctx.aws.clients,
        clock=env.ctx.clock,
        store=env.store,
        simulation=env.simulation,
        operator=env.operator,
        settings=env.ctx.settings,
        error_metrics=env.ctx.error_metrics,
        record_dr_state=env.ctx.record_dr_state,
        record_traffic_fence=env.ctx.record_traffic_fence,
    )

    def progress(line: str) -> None:
        if verbose or not as_json:
            print(line, file=sys.stderr)

    drill = live_drill(world, options, progress)
    if dry_run:
        lines = dry_run_lines(drill)
        typer.echo(json.dumps({"result": "planned", "plan": lines}, indent=2) if as_json else "\n".join(lines))
        return
    name = world.stack.fully_qualified_name
    if not yes:
        if as_json:
            raise DrctlError("--json cannot ask for confirmation", hint="add --yes")
        moves = "moves writes and traffic to the DR region and back" if options.scope is Scope.FULL else "moves nothing"
        typer.confirm(f"Run a {options.scope.value} live drill on {name} (it {moves})?", abort=True)
    env.checkout_gate(None)
    report = drill.run()
    paths = keep_report(report, env.store, report_dir)
    print(f"drill {report['scenario']}: {report['result']} -> {', '.join(paths)}", file=sys.stderr)
    typer.echo(json.dumps(report, indent=2) if as_json else render_live_markdown(report))
    if report["result"] != "succeeded":
        raise DrctlError(f"live drill {report['result']}", exit_code=FAILED_EXIT, hint=f"read {paths[0]}")
    missed = objectives_missed(report)
    if missed:
        raise DrctlError(
            "live drill missed its objectives: " + "; ".join(missed),
            exit_code=OBJECTIVE_MISSED_EXIT,
            hint="the report's steps table shows which step took longer than the timing table predicts",
        )


def keep_report(report: dict[str, Any], store: Any, report_dir: Path) -> list[str]:
    """Locally and in the control store (the DR-region bucket), JSON and Markdown."""
    report_dir.mkdir(parents=True, exist_ok=True)
    local = report_dir / f"drill-{report['scenario']}"
    documents = {".json": json.dumps(report, indent=2) + "\n", ".md": render_live_markdown(report)}
    paths = []
    for suffix, text in documents.items():
        local.with_suffix(suffix).write_text(text)
        paths.append(str(local.with_suffix(suffix)))
        key = f"reports/{report['drill_id']}{suffix}"
        store.create(key, text.encode())
        paths.append(f"{store.location}/{key}")
    return paths
