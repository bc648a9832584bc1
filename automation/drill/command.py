"""`drctl drill --sandbox`: rehearse failover and failback offline with the production runbooks."""

from __future__ import annotations

import json
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from automation.drill.scenarios import (
    ALL,
    CRASH_RESUME,
    DEFAULT_CRASH_STEP,
    DEFAULT_SCENARIO,
    SCENARIOS,
    scenario_named,
)
from automation.errors import DrctlError
from automation.runbooks.commands import JournalOption, LocalJournalOption, StackOption

DEFAULT_REPORT_DIR = Path("out/drills")
UNEXPECTED_EXIT = 1


def drill(
    sandbox: Annotated[
        bool, typer.Option("--sandbox", help="Run in the offline sandbox (moto, modelled time). Required.")
    ] = False,
    scenario: Annotated[
        str,
        typer.Option("--scenario", help=f"One of: {', '.join(SCENARIOS)}; or {ALL} for every one and a summary."),
    ] = DEFAULT_SCENARIO,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Pass --force to the failover (overrides the RPO check only; needs --reason): replica-lag then "
            "succeeds and shows the RPO missed.",
        ),
    ] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Recorded in the runs' journal and report.")] = None,
    crash_at: Annotated[
        str | None,
        typer.Option(
            "--crash-at",
            help=f"crash-resume: the failover step at whose start the runner dies (default {DEFAULT_CRASH_STEP}).",
        ),
    ] = None,
    report_dir: Annotated[
        Path,
        typer.Option(
            "--report-dir", help="Where each drill's <drill id>.json/.md and its run journal are written (created)."
        ),
    ] = DEFAULT_REPORT_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report instead of Markdown.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Print each drill event to stderr as it happens.")] = False,
    # --- live drills (automation/drill/live.py) ---
    live: Annotated[
        bool, typer.Option("--live", help="Rehearse on a real stack (--stack) with the production runbooks.")
    ] = False,
    stack: StackOption = None,
    scope: Annotated[
        str, typer.Option("--scope", help="--live: full (switchover and failback) or partial (nothing moves).")
    ] = "partial",
    hold_minutes: Annotated[float, typer.Option("--hold-minutes", help="--live full: minutes to stay in DR.")] = 0,
    allow_production: Annotated[
        bool,
        typer.Option(
            "--allow-production", help="--live: drill a stack whose environment is production; needs --reason."
        ),
    ] = False,
    inject_fault: Annotated[
        bool,
        typer.Option("--inject-fault", help="--live full: run the stack's FIS cross-Region experiment on the primary."),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="--live: list what it would do; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="--live: do not ask for confirmation.")] = False,
    journal: JournalOption = None,
    local_journal: LocalJournalOption = None,
) -> None:
    """Rehearse failover and failback end to end in the offline sandbox and report RTO, RPO and a timeline.

    Provisions steady state from Pulumi.prod.yaml in moto, writes data at a modelled rate, injects the
    scenario's fault, runs the production failover runbook, counts what survived, repairs, runs failback
    prepare and switch, counts again. Every report is labelled a simulation.

    Exit code: 0 when every scenario ends with its expected result (a refusal IS the expected result of
    replica-lag and dr-unhealthy, a rollback that of failback-rollback) and without a critical finding (split
    brain, data written after the failover missing at the end, ...), 1 otherwise.
    """
    from automation.drill.report import (
        check_report_dir,
        passed,
        render_markdown,
        render_summary,
        verdict,
        write_report,
        write_whole,
    )
    from automation.drill.run import check_crash_step, run_drill
    from automation.evaluate import stack_file_config
    from automation.sandbox import MotoSandboxServer
    from components.config import parse_config

    if live:
        if sandbox:
            raise DrctlError("--live and --sandbox are exclusive", hint="pass one of them")
        from automation.drill.live_command import run_live_command

        return run_live_command(
            stack=stack,
            journal=journal,
            local_journal=local_journal,
            options=live_options(scope, hold_minutes, reason, allow_production, inject_fault),
            dry_run=dry_run,
            yes=yes,
            report_dir=report_dir,
            as_json=as_json,
            verbose=verbose,
        )
    if not sandbox:
        raise DrctlError(
            "drctl drill needs --sandbox (offline) or --live --stack ORG/dr-platform/STACK",
            hint="a drill against AWS is a real failover: run `drctl failover --mode graceful` and "
            "`drctl failback prepare|switch` in a planned window (docs/operations.md, docs/drills.md)",
        )
    if force and not (reason or "").strip():
        raise DrctlError("--force needs --reason", hint="the reason is recorded with the forced run")
    chosen = list(SCENARIOS.values()) if scenario == ALL else [scenario_named(scenario)]
    crashing = [each for each in chosen if CRASH_RESUME in each.before_failover]
    if crash_at is not None and not crashing:
        raise DrctlError(
            f"--crash-at {crash_at}: the {scenario} scenario does not crash the runner",
            hint=f"--crash-at applies to --scenario {CRASH_RESUME} (or {ALL})",
        )
    crash_step = crash_at or DEFAULT_CRASH_STEP
    cfg = parse_config(stack_file_config("prod"))
    for each in crashing:
        check_crash_step(each, crash_step, cfg)
    check_report_dir(report_dir)

    def progress(line: str) -> None:
        if verbose:
            print(line, file=sys.stderr)

    reports: list[dict[str, Any]] = []
    server = MotoSandboxServer()
    with _interrupt_on_sigterm():
        server.start()
        try:
            for each in chosen:
                print(f"drill {each.name}: running in the sandbox...", file=sys.stderr)
                report = run_drill(
                    each,
                    server=server,
                    force=force,
                    reason=reason,
                    crash_step=crash_step,
                    report_dir=report_dir,
                    output=progress,
                )
                paths = write_report(report, report_dir)
                print(f"drill {each.name}: {report['verdict']} -> {', '.join(map(str, paths))}", file=sys.stderr)
                reports.append(report)
        finally:
            server.stop()
    if scenario == ALL:
        summary = render_summary(reports)
        stem = report_dir / f"drill-summary-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
        write_whole(stem.with_suffix(".md"), summary)
        write_whole(stem.with_suffix(".json"), json.dumps(reports, indent=2) + "\n")
        typer.echo(json.dumps({"scenarios": reports}, indent=2) if as_json else summary)
    else:
        typer.echo(json.dumps(reports[0], indent=2) if as_json else render_markdown(reports[0]))
    failing = [r for r in reports if not passed(r)]
    if failing:
        raise DrctlError(
            "drill: " + "; ".join(f"{r['scenario']}: {verdict(r)}" for r in failing),
            exit_code=UNEXPECTED_EXIT,
            hint=f"read the reports in {report_dir}",
        )


def live_options(
    scope: str, hold_minutes: float, reason: str | None, allow_production: bool, inject_fault: bool
) -> Any:
    """`--live`'s options, checked before the stack is opened (automation.drill.live.LiveOptions)."""
    from automation.drill.live import LiveOptions, Scope

    if scope not in tuple(Scope):
        raise DrctlError(f"--scope must be full or partial, got {scope!r}")
    if hold_minutes < 0 or (hold_minutes and scope != Scope.FULL):
        raise DrctlError("--hold-minutes is a non-negative number of minutes, and only for --scope full")
    if inject_fault and scope != Scope.FULL:
        raise DrctlError("--inject-fault only with --scope full", hint="a partial drill cuts nothing off")
    if allow_production and not (reason or "").strip():
        raise DrctlError("--allow-production needs --reason", hint="the reason is recorded in the journal and report")
    return LiveOptions(
        scope=Scope(scope),
        reason=(reason or "").strip() or f"live {scope} drill",
        allow_production=allow_production,
        hold_seconds=hold_minutes * 60,
        inject_fault=inject_fault,
    )


@contextmanager
def _interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM (a CI timeout, `kill`) ends the drill as Ctrl-C does, so its temporary directories are removed."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
