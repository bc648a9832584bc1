"""The live drill's report: the sandbox report's shape (docs/drills.md), labelled LIVE, measured by the wall clock.

Differences from the sandbox's: `mode` live and `simulation` false; no
modelled latency, isolation or split-brain sections (nothing is modelled or
injected beyond the FIS experiment, listed under `faults`); every step carries
the timing table's prediction next to its real duration (`predicted`), so the
table (automation/timings.py) can be corrected from evidence; `data` holds the
canaries' survival rows, with the paths that could not be measured and why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from automation.drill.report import (
    REPORT_SCHEMA,
    _bars,
    _cell,
    _met,
    _seconds,
    data_table,
    run_summary,
    step_row,
    survival_rows,
)
from automation.journal import seconds_between
from components.config import PlatformConfig

if TYPE_CHECKING:
    from automation.drill.live import LiveDrill

SWITCH_CHECKPOINT = {"full": "after-failover", "partial": "replicated"}
"""The checkpoint whose loss window is the drill's RPO: the failover's (full), replication's (partial)."""


def build_live_report(drill: LiveDrill, cfg: PlatformConfig, result: str) -> dict[str, Any]:
    from automation.drill.live import predicted_seconds

    scope = drill.options.scope.value
    failover = next((run for run in drill.runs if run.runbook == "failover"), None)
    rto = seconds_between(failover.started_at, failover.verified_at) if failover else None
    rpo = drill.loss_windows.get(SWITCH_CHECKPOINT[scope])
    outputs = drill.world.stack.outputs()
    steps = []
    for run in drill.runs:
        for step in run.steps:
            predicted = predicted_seconds(run.runbook, step.name, cfg)
            actual = step.duration_seconds
            steps.append(
                {
                    **step_row(run, step),
                    "predicted": predicted,
                    "over_worst_case": None
                    if predicted is None or actual is None
                    else actual > predicted["worst_seconds"],
                }
            )
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "mode": "live",
        "simulation": False,
        "scenario": f"live-{scope}",
        "summary": "graceful switchover to DR, hold, failback prepare and switch"
        if scope == "full"
        else "readiness, DR compute up and down, restore from backup, health checks; nothing moves",
        "stack": drill.world.stack.fully_qualified_name,
        "drill_id": drill.drill_id,
        "operator": drill.world.operator,
        "failover_mode": "graceful" if scope == "full" else None,
        "forced": False,
        "reason": drill.options.reason,
        "production": drill.production_note,
        "result": result,
        "expected_result": "succeeded",
        "as_expected": result == "succeeded",
        "rto_seconds": rto,
        "rpo_seconds": rpo,
        "targets": {"rto_seconds": cfg.rto_seconds, "rpo_seconds": cfg.rpo_seconds},
        "objectives": {"rto": _objective(rto, cfg.rto_seconds), "rpo": _objective(rpo, cfg.rpo_seconds)},
        "data_loss_window": {
            "measured_by": "canaries",
            "checkpoint": SWITCH_CHECKPOINT[scope],
            "loss_window_seconds": rpo,
            "per_checkpoint": dict(drill.loss_windows),
            "measured_by_runbook_seconds": failover.measurements.get("data_loss_window_seconds") if failover else None,
        },
        "hold_seconds": drill.options.hold_seconds,
        "steps": steps,
        "runs": [run_summary(run) for run in drill.runs],
        "data": {
            name: {
                "region": point["region"],
                "at": point["at"],
                "kinds": survival_rows(point["kinds"]),
                "not_measured": point["not_measured"],
            }
            for name, point in drill.checkpoints.items()
        },
        "final_state": {"activeRegion": outputs.get("activeRegion"), "drState": outputs.get("drState")},
        "timeline": [
            {
                "at": event.at.isoformat(),
                "offset_seconds": (event.at - drill.started_at).total_seconds(),
                "phase": event.phase,
                "event": event.text,
            }
            for event in drill.events
        ],
        "faults": [event.text for event in drill.events if event.phase == "fault"],
        "simulated": [],
        "journal": {"run_ids": [run.run_id for run in drill.runs]},
        "started_at": drill.started_at.isoformat() if drill.started_at else None,
    }
    report["findings"] = _findings(report)
    return report


def _objective(measured: float | None, target: int) -> dict[str, Any]:
    return {
        "measured_seconds": measured,
        "target_seconds": target,
        "met": None if measured is None else measured <= target,
    }


def objectives_missed(report: dict[str, Any]) -> list[str]:
    return [
        f"{name.upper()} {objective['measured_seconds']:g} s > {objective['target_seconds']} s"
        for name, objective in report["objectives"].items()
        if objective["met"] is False
    ]


def _findings(report: dict[str, Any]) -> list[str]:
    findings = [] if report["as_expected"] else [f"result {report['result']}"]
    findings += [f"{missed}: missed" for missed in objectives_missed(report)]
    for name, point in report["data"].items():
        findings += [f"{name}: {kind} not measured: {why}" for kind, why in point["not_measured"].items()]
    slow = [s for s in report["steps"] if s["over_worst_case"]]
    findings += [
        f"{s['runbook']}/{s['name']} took {s['duration_seconds']:g} s, over the table's worst case "
        f"{s['predicted']['worst_seconds']:g} s: correct automation/timings.py "
        f"({', '.join(s['predicted']['operations'])})"
        for s in slow
    ]
    findings += [f"fault injection: {text}" for text in report["faults"] if "BY HAND" in text]
    for run in report["runs"]:
        findings += [f"{run['runbook']}: {item}" for item in [*run["warnings"], *run["follow_ups"]]]
    return list(dict.fromkeys(findings))


def render_live_markdown(report: dict[str, Any]) -> str:
    verdict = "as expected" if report["as_expected"] else "NOT AS EXPECTED"
    lines = [
        f"# DR drill (LIVE): {report['scenario']} on {report['stack']}: {report['result']} ({verdict})",
        "",
        "> Live: real AWS, the production runbooks, wall-clock durations. Each step's duration stands next to the "
        "timing table's prediction (automation/timings.py).",
        "",
        f"- drill: {report['drill_id']}, started {report['started_at']} by {report['operator']}",
        f"- scope: {report['summary']}",
        f"- reason: {report['reason']}",
    ]
    if report["production"]:
        lines.append(f"- **PRODUCTION**: {report['production']}")
    lines += [
        f"- final state: activeRegion {report['final_state']['activeRegion']}, "
        f"drState {report['final_state']['drState']}",
        "",
        "| measure | measured | target | verdict |",
        "|---|---|---|---|",
        f"| RTO (failover start to verified) | {_seconds(report['rto_seconds'])} | "
        f"{report['targets']['rto_seconds']} s | {_met(report['objectives']['rto']['met'])} |",
        f"| RPO (canary loss window at {report['data_loss_window']['checkpoint']}) | {_seconds(report['rpo_seconds'])} "
        f"| {report['targets']['rpo_seconds']} s | {_met(report['objectives']['rpo']['met'])} |",
    ]
    if report["findings"]:
        lines += ["", "## Findings", "", *[f"- {finding}" for finding in report["findings"]]]
    lines += ["", "## Steps: measured against the timing table", ""]
    lines += [
        "| runbook | step | status | measured | predicted typical | predicted worst |",
        "|---|---|---|---:|---:|---:|",
    ]
    for step in report["steps"]:
        predicted = step["predicted"] or {}
        lines.append(
            f"| {step['runbook']} | {step['name']} | {step['status']} | {_seconds(step['duration_seconds'])} | "
            f"{_seconds(predicted.get('typical_seconds'))} | {_seconds(predicted.get('worst_seconds'))}"
            f"{' **over**' if step['over_worst_case'] else ''} |"
        )
    lines += ["", "## Timeline", "", "| T (s) | time | phase | event |", "|---:|---|---|---|"]
    lines += [
        f"| {e['offset_seconds']:+g} | {e['at']} | {e['phase']} | {_cell(e['event'])} |" for e in report["timeline"]
    ]
    for run in report["runs"]:
        lines += ["", f"## {run['runbook']}: {run['status']}", "", "```text"]
        lines += [*_bars([s for s in report["steps"] if s["run_id"] == run["run_id"]]), "```"]
    lines += data_table(report)
    for name, point in report["data"].items():
        lines += [f"- {name}: {kind} not measured: {why}" for kind, why in point["not_measured"].items()]
    return "\n".join(lines) + "\n"
