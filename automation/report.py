"""Run reports: one JSON document for machines and the same facts in Markdown for people.

Measured RTO runs to the end of the step that verified the recovery
(`Step.verifies_recovery`), wall clock, interruptions included, from the
start of the disruption where the run knows it (the write fence of a planned
switch, `DISRUPTION_STARTED_AT`), else from the run's start: an outage began
before drctl did, by at least its detection, which `drctl drill` adds. Beside
it, the floor of the runbook's dependency graph over the same span and the
ratio of the two (`Runbook.rto_floor_seconds`). The data-loss window is the replica lag at the moment of promotion,
when the runbook records it (`RunContext.record(DATA_LOSS_WINDOW, seconds)`).
"""

from __future__ import annotations

from typing import Any

from automation.journal import DocumentStore, RunRecord, seconds_between, to_json_bytes
from automation.runbook import DATA_LOSS_WINDOW, DISRUPTION_STARTED_AT, TARGETS, Runbook

REPORT_SCHEMA = 2


def build_report(run: RunRecord, runbook: Runbook) -> dict[str, Any]:
    disruption = run.measurements.get(DISRUPTION_STARTED_AT)
    rto_seconds = seconds_between(disruption or run.started_at, run.verified_at)
    floor = runbook.rto_floor_seconds
    data_loss = run.measurements.get(DATA_LOSS_WINDOW)
    other = {k: v for k, v in run.measurements.items() if k not in (DATA_LOSS_WINDOW, TARGETS)}
    return {
        "schema": REPORT_SCHEMA,
        "simulation": run.simulation,
        "run_id": run.run_id,
        "runbook": run.runbook,
        "stack": run.stack,
        "status": run.status.value,
        "error": run.error,
        "who": run.parameters.operator,
        "why": run.parameters.reason,
        "parameters": run.parameters.to_dict(),
        "attempts": run.attempts,
        "started_at": run.started_at,
        "verified_at": run.verified_at,
        "finished_at": run.finished_at,
        "duration_seconds": seconds_between(run.started_at, run.finished_at),
        "rto": _objective(rto_seconds, runbook.rto_target_seconds),
        "rto_seconds": rto_seconds,
        "rto_from": "write fence" if disruption else "drctl start",
        "rto_floor_seconds": floor,
        "rto_floor_ratio": round(rto_seconds / floor, 3) if rto_seconds is not None and floor else None,
        "data_loss_window": _objective(data_loss, runbook.rpo_target_seconds),
        "targets": list(run.measurements.get(TARGETS) or []),
        "measurements": other,
        "preflight": [_check(check) for check in run.preflight],
        "steps": [
            {**step_fields(step), "detail": step.detail, "checks": [_check(check) for check in step.checks]}
            for step in run.steps
        ],
    }


def step_fields(step: Any) -> dict[str, Any]:
    """What every report says of a step (run reports here, drill reports in automation.drill.report)."""
    return {
        "name": step.name,
        "group": step.group,
        "status": step.status.value,
        "started_at": step.started_at,
        "finished_at": step.finished_at,
        "duration_seconds": step.duration_seconds,
        "attempts": step.attempts,
        "error": step.error,
    }


def _objective(measured: float | None, target: int | None) -> dict[str, Any]:
    met = None if measured is None or target is None else measured <= target
    return {"measured_seconds": measured, "target_seconds": target, "met": met}


def _check(check: Any) -> dict[str, Any]:
    return {"name": check.name, "kind": check.kind, "passed": check.passed, "detail": check.detail, "at": check.at}


def render_markdown(report: dict[str, Any]) -> str:
    title = f"# {report['runbook']} on {report['stack']}: {report['status']}"
    lines = [title + (" (SIMULATION)" if report["simulation"] else ""), ""]
    if report["simulation"]:
        lines += ["> This run was a simulation (offline sandbox): no real infrastructure was changed.", ""]
    lines += [
        f"- run: `{report['run_id']}`",
        f"- who: {report['who']}",
        f"- why: {report['why']}",
        f"- mode: {report['parameters']['mode'] or '-'}; force: {'yes' if report['parameters']['force'] else 'no'}",
        f"- started: {report['started_at']}; verified: {report['verified_at'] or '-'}; "
        f"finished: {report['finished_at'] or '-'}",
        f"- measured RTO (from the {report['rto_from']}): {_objective_text(report['rto'])}",
        f"- RTO floor of the runbook's dependency graph: {_number(report['rto_floor_seconds'])} s; ratio "
        f"{_number(report['rto_floor_ratio'])}",
        f"- data-loss window: {_objective_text(report['data_loss_window'])}",
    ]
    if len(report["attempts"]) > 1:
        resumed = ", ".join(f"{a['at']} by {a['operator']}" for a in report["attempts"][1:])
        lines.append(f"- resumed: {resumed}")
    if report["error"]:
        lines.append(f"- error: {report['error']}")
    lines += ["", "## Steps", "", "| step | status | started | finished | duration (s) | detail |", "|" + "---|" * 6]
    for step in report["steps"]:
        name = f"{step['name']} ({step['group']})" if step["group"] else step["name"]
        detail = step["error"] or ", ".join(f"{k}={v}" for k, v in step["detail"].items())
        duration = "" if step["duration_seconds"] is None else f"{step['duration_seconds']:g}"
        lines.append(
            f"| {name} | {step['status']} | {step['started_at'] or ''} | {step['finished_at'] or ''} "
            f"| {duration} | {_cell(detail)} |"
        )
    checks = [("preflight", c) for c in report["preflight"]] + [
        (step["name"], c) for step in report["steps"] for c in step["checks"]
    ]
    if checks:
        lines += ["", "## Checks", "", "| where | check | kind | result | detail |", "|---|---|---|---|---|"]
        for where, check in checks:
            result = "pass" if check["passed"] else "FAIL"
            lines.append(f"| {where} | {check['name']} | {check['kind']} | {result} | {_cell(check['detail'])} |")
    if report["targets"]:
        lines += ["", "## Update targets", ""] + [f"- `{urn}`" for urn in report["targets"]]
    if report["measurements"]:
        lines += ["", "## Measurements", ""] + [f"- {k}: {v}" for k, v in report["measurements"].items()]
    return "\n".join(lines) + "\n"


def _objective_text(objective: dict[str, Any]) -> str:
    measured, target = objective["measured_seconds"], objective["target_seconds"]
    if measured is None:
        return "not measured" + (f" (target {target} s)" if target is not None else "")
    if target is None:
        return f"{measured:g} s"
    return f"{measured:g} s against a target of {target} s: {'met' if objective['met'] else 'MISSED'}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def save_reports(store: DocumentStore, report: dict[str, Any]) -> list[str]:
    """Write reports/<run id>.json and .md next to the journal; returns the keys."""
    base = f"reports/{report['run_id']}"
    store.replace(f"{base}.json", to_json_bytes(report), None)
    store.replace(f"{base}.md", render_markdown(report).encode(), None)
    return [f"{base}.json", f"{base}.md"]
