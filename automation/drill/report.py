"""The drill report: one JSON document (the contract in docs/drills.md) and the same facts as Markdown.

Times are modelled (the sandbox's latency clock, from a fixed epoch); the
report says so in its title and lists what the sandbox simulated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automation.journal import RunRecord, parse_iso, seconds_between
from automation.runbook import DATA_LOSS_WINDOW
from automation.runbooks.context import FOLLOW_UPS, WARNINGS
from automation.sandbox import SIMULATED
from automation.sandbox.dataplane import Survival

if TYPE_CHECKING:
    from automation.drill.run import Drill
    from automation.drill.scenarios import DrillResult

REPORT_SCHEMA = 1

BAR_WIDTH = 40
ZERO_PHASES = ("fault", "failover")
"""The timeline counts from the first fault (or the failover, when the scenario injects none before it)."""


def build_report(drill: Drill, result: DrillResult, failover: dict[str, Any]) -> dict[str, Any]:
    sandbox, scenario, cfg = drill.sandbox, drill.scenario, drill.sandbox.cfg
    failover_run = next((run for run in drill.runs if run.runbook == "failover"), None)
    rto = seconds_between(failover_run.started_at, failover_run.verified_at) if failover_run else None
    loss = failover["loss"]
    rpo = loss.loss_window_seconds if loss is not None else None
    latency = failover["latency"]
    overlap = latency["sequential_seconds"] - latency["modelled_seconds"]
    expected = scenario.expected_result(drill.forced)
    outputs = sandbox.stack.outputs()
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "mode": "sandbox",
        "simulation": True,
        "scenario": scenario.name,
        "summary": scenario.summary,
        "failover_mode": scenario.mode.value,
        "forced": drill.forced,
        "reason": drill.reason,
        "result": result.value,
        "expected_result": expected.value,
        "as_expected": result is expected,
        "rto_seconds": rto,
        "rpo_seconds": rpo,
        "targets": {"rto_seconds": cfg.rto_seconds, "rpo_seconds": cfg.rpo_seconds},
        "objectives": {
            "rto": _objective(rto, cfg.rto_seconds),
            "rpo": _objective(rpo, cfg.rpo_seconds),
        },
        "latency": {
            "rto_seconds": rto,
            "rto_if_sequential_seconds": None if rto is None else rto + overlap,
            "failover_modelled_seconds": latency["modelled_seconds"],
            "failover_sequential_seconds": latency["sequential_seconds"],
            "saved_by_parallel_steps_seconds": overlap,
            "detection_seconds": _detection_seconds(drill),
            "charges": latency["charges"],
        },
        "data_loss_window": None
        if loss is None
        else {
            "database": loss.node,
            "stopped_at": loss.stopped_at.isoformat(),
            "replicated_through": loss.replicated_through.isoformat(),
            "loss_window_seconds": loss.loss_window_seconds,
            "measured_by_runbook_seconds": failover_run.measurements.get(DATA_LOSS_WINDOW) if failover_run else None,
        },
        "isolation": failover["isolation"],
        "split_brain": failover.get("split_brain"),
        "concurrent_stack_updates": sandbox.stack.concurrent_updates,
        "cache": failover_run.measurements.get("cache_state") if failover_run else None,
        "preflight": [
            {"name": check.name, "passed": check.passed, "detail": check.detail}
            for check in (failover_run.preflight if failover_run else [])
        ],
        "steps": [step_row(run, step) for run in drill.runs for step in run.steps],
        "runs": [run_summary(run) for run in drill.runs],
        "data": {
            name: {"region": point["region"], "at": point["at"], "kinds": survival_rows(point["kinds"])}
            for name, point in drill.checkpoints.items()
        },
        "final_state": {"activeRegion": outputs.get("activeRegion"), "drState": outputs.get("drState")},
        "timeline": _timeline(drill),
        "faults": list(sandbox.faults),
        "simulated": list(SIMULATED),
        "journal": {"run_ids": [run.run_id for run in drill.runs]},
        "epoch": sandbox.clock.start.isoformat(),
        "scale": sandbox.clock.scale,
    }
    report["findings"] = _findings(drill, report)
    return report


def step_row(run: RunRecord, step: Any) -> dict[str, Any]:
    """One step of a run as the report lists it (sandbox and live drills)."""
    return {
        "runbook": run.runbook,
        "run_id": run.run_id,
        "name": step.name,
        "group": step.group,
        "status": step.status.value,
        "started_at": step.started_at,
        "finished_at": step.finished_at,
        "duration_seconds": step.duration_seconds,
        "attempts": step.attempts,
        "error": step.error,
    }


def survival_rows(survivals: list[Survival]) -> list[dict[str, Any]]:
    return [survival.to_dict() for survival in survivals]


def run_summary(run: RunRecord) -> dict[str, Any]:
    return {
        "runbook": run.runbook,
        "run_id": run.run_id,
        "status": run.status.value,
        "started_at": run.started_at,
        "verified_at": run.verified_at,
        "finished_at": run.finished_at,
        "duration_seconds": seconds_between(run.started_at, run.finished_at),
        "rto_seconds": seconds_between(run.started_at, run.verified_at),
        "data_loss_window_seconds": run.measurements.get(DATA_LOSS_WINDOW),
        "attempts": list(run.attempts),
        "resumed": len(run.attempts) > 1,
        "warnings": list(run.measurements.get(WARNINGS) or []),
        "follow_ups": list(run.measurements.get(FOLLOW_UPS) or []),
        "error": run.error,
    }


def _objective(measured: float | None, target: int) -> dict[str, Any]:
    return {
        "measured_seconds": measured,
        "target_seconds": target,
        "met": None if measured is None else measured <= target,
    }


def _detection_seconds(drill: Drill) -> float | None:
    phases = [event for event in drill.events if event.phase in ("fault", "detect")]
    detected = next((event for event in phases if event.phase == "detect"), None)
    if detected is None:
        return None
    return (detected.at - phases[0].at).total_seconds()


def _zero(drill: Drill) -> Any:
    return next((event.at for event in drill.events if event.phase in ZERO_PHASES), drill.sandbox.clock.start)


def _timeline(drill: Drill) -> list[dict[str, Any]]:
    """The drill's own events and every step's end, in modelled time, counted from the first fault."""
    zero = _zero(drill)
    entries = [(event.at, float(index), event.phase, event.text) for index, event in enumerate(drill.events)]
    for run in drill.runs:
        for order, step in enumerate(run.steps):
            if step.finished_at is None:
                continue
            # At equal times a step comes after the event that started its run and before the next one.
            rank = drill.run_anchors[run.run_id] + (order + 1) / (len(run.steps) + 1)
            text = f"{step.name}: {step.status.value} after {step.duration_seconds:g} s"
            entries.append((parse_iso(step.finished_at), rank, run.runbook, text))
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    return [
        {"at": at.isoformat(), "offset_seconds": (at - zero).total_seconds(), "phase": phase, "event": text}
        for at, _, phase, text in entries
    ]


def _findings(drill: Drill, report: dict[str, Any]) -> list[str]:
    """What an operator should read first: missed objectives, surprises in the data, the runbooks' follow-ups."""
    findings = []
    if not report["as_expected"]:
        findings.append(f"result {report['result']}, expected {report['expected_result']}")
    for name, objective in report["objectives"].items():
        if objective["met"] is False:
            findings.append(
                f"{name.upper()} missed: {objective['measured_seconds']:g} s against {objective['target_seconds']} s"
            )
    split = report.get("split_brain") or {}
    if split.get("requests_to_former_region") or split.get("writes_accepted_by_former_writer"):
        findings.append(
            f"SPLIT BRAIN: the former region got {split['requests_to_former_region']} requests and its writer "
            f"acknowledged {split['writes_accepted_by_former_writer']} writes after the failover"
        )
    if report.get("concurrent_stack_updates"):
        findings.append(f"{report['concurrent_stack_updates']} stack update(s) started while another still ran")
    calls = report["isolation"]["calls_to_failed_region"]
    if calls:
        findings.append(f"the failover called the failed region {report['isolation']['failed_region']} {calls} times")
    after, final = drill.checkpoints.get("after-failover"), drill.checkpoints.get("final")
    if after and final:
        before_lost = {s.kind: set(s.lost) for s in after["kinds"]}
        for survival in final["kinds"]:
            new = set(survival.lost) - before_lost.get(survival.kind, set())
            back = before_lost.get(survival.kind, set()) - set(survival.lost)
            if new:
                findings.append(
                    f"{len(new)} {survival.kind} written after the failover are missing from {final['region']} at "
                    "the end (see the runbooks' follow-ups)"
                )
            if back:
                # A demoted Redis primary that rejoins does a full sync and loses what it alone held (catalogue:
                # elasticache.rejoining-primary-full-sync): keys come back only from a holder that was never demoted.
                holder = {
                    "cache-keys": "the cache never failed over: its primary kept them",
                    "s3-objects": "the former primary's bucket kept them",
                    "database-rows": "the former writer's data was restored",
                }.get(survival.kind, "the former primary kept them")
                findings.append(f"{len(back)} {survival.kind} lost at failover are back in {final['region']}: {holder}")
    for run in report["runs"]:
        findings.extend(f"{run['runbook']}: {item}" for item in [*run["warnings"], *run["follow_ups"]])
    return list(dict.fromkeys(findings))


# --- Markdown -----------------------------------------------------------------------------------


def render_markdown(report: dict[str, Any]) -> str:
    verdict = "as expected" if report["as_expected"] else f"EXPECTED {report['expected_result']}"
    lines = [
        f"# DR drill (SIMULATION): {report['scenario']}: {report['result']} ({verdict})",
        "",
        "> Offline sandbox: moto stood in for AWS and every duration is modelled, from documented AWS figures or "
        "our estimates (automation/timings.py; each charge names its source). No real infrastructure was touched. "
        "What was simulated is listed at the end.",
        "",
        f"- scenario: {report['summary']}",
        f"- failover mode: {report['failover_mode']}" + ("; forced with --force" if report["forced"] else ""),
        f"- reason: {report['reason']}",
        f"- final state: activeRegion {report['final_state']['activeRegion']}, drState "
        f"{report['final_state']['drState']}",
        "",
        "| measure | modelled | target | verdict |",
        "|---|---|---|---|",
        f"| RTO (failover start to verified) | {_seconds(report['rto_seconds'])} | "
        f"{report['targets']['rto_seconds']} s | {_met(report['objectives']['rto']['met'])} |",
        f"| RPO (transactional data-loss window) | {_seconds(report['rpo_seconds'])} | "
        f"{report['targets']['rpo_seconds']} s | {_met(report['objectives']['rpo']['met'])} |",
        f"| the same steps one after another | {_seconds(report['latency']['rto_if_sequential_seconds'])} | "
        f"{report['targets']['rto_seconds']} s | parallel steps saved "
        f"{_seconds(report['latency']['saved_by_parallel_steps_seconds'])} |",
    ]
    if report["latency"]["detection_seconds"] is not None:
        lines.append(
            f"| health-check detection before drctl starts | {_seconds(report['latency']['detection_seconds'])} "
            "| | not in the RTO above |"
        )
    isolation = report["isolation"]
    if isolation["failed_region"]:
        lines += [
            "",
            f"Calls to the failed region {isolation['failed_region']} during the failover: "
            f"**{isolation['calls_to_failed_region']}** (of {isolation['calls']} API calls).",
        ]
    split = report.get("split_brain")
    if split:
        unfenced = split["unfenced_seconds"]
        lines += [
            "",
            f"Split brain: **{split['requests_to_former_region']}** requests reached the former region and its writer "
            f"{split['former_writer']} acknowledged **{split['writes_accepted_by_former_writer']}** writes after the "
            "failover"
            + (f"; it answered unfenced for {unfenced:g} s after it returned." if unfenced is not None else "."),
        ]
    lines += [
        "",
        f"Stack updates started while another still ran: **{report['concurrent_stack_updates']}**."
        + (f" Cache after the failover: {report['cache']}." if report.get("cache") else ""),
    ]
    if report["findings"]:
        lines += ["", "## Findings", "", *[f"- {finding}" for finding in report["findings"]]]
    lines += ["", "## Timeline", "", "| T (s) | modelled time | phase | event |", "|---:|---|---|---|"]
    for entry in report["timeline"]:
        lines.append(f"| {entry['offset_seconds']:+g} | {entry['at']} | {entry['phase']} | {_cell(entry['event'])} |")
    for run in report["runs"]:
        lines += ["", f"## {run['runbook']}: {run['status']}" + (" (resumed)" if run["resumed"] else ""), ""]
        lines += [f"run `{run['run_id']}`, attempts: {', '.join(a['at'] for a in run['attempts'])}", ""]
        lines += ["```text", *_bars([s for s in report["steps"] if s["run_id"] == run["run_id"]]), "```"]
    if report["preflight"]:
        lines += ["", "## Failover preflight", "", "| check | result | detail |", "|---|---|---|"]
        lines += [
            f"| {check['name']} | {'pass' if check['passed'] else 'REFUSES'} | {_cell(check['detail'])} |"
            for check in report["preflight"]
        ]
    lines += data_table(report)
    lines += ["", "## What the sandbox simulated", "", *[f"- {item}" for item in report["simulated"]]]
    lines += ["", "Faults injected:", "", *[f"- {fault}" for fault in report["faults"]]]
    return "\n".join(lines) + "\n"


def data_table(report: dict[str, Any]) -> list[str]:
    """The data-loss table: per checkpoint and kind of data, what was written, what survived (sandbox and live)."""
    lines = ["", "## Data", "", "| checkpoint | kind | holder | written | survived | lost | lost written |"]
    lines.append("|---|---|---|---:|---:|---:|---|")
    for name, point in report["data"].items():
        for kind in point["kinds"]:
            span = f"{kind['oldest_lost_at']} .. {kind['newest_lost_at']}" if kind["lost"] else ""
            lines.append(
                f"| {name} ({point['region']}) | {kind['kind']} | {kind['holder']} | {kind['written']} | "
                f"{kind['survived']} | {kind['lost']} | {span} |"
            )
    return lines


def _bars(steps: list[dict[str, Any]]) -> list[str]:
    """A text Gantt chart of one run's steps on its own modelled time axis."""
    timed = [step for step in steps if step["started_at"] and step["finished_at"]]
    if not timed:
        return [f"{step['name']}: {step['status']}" for step in steps]
    start = min(parse_iso(step["started_at"]) for step in timed)
    span = max((parse_iso(step["finished_at"]) - start).total_seconds() for step in timed) or 1.0
    width = max(len(step["name"]) for step in steps)
    lines = []
    for step in steps:
        if not (step["started_at"] and step["finished_at"]):
            lines.append(f"{step['name']:<{width}} |{' ' * BAR_WIDTH}| {step['status']}")
            continue
        begin = (parse_iso(step["started_at"]) - start).total_seconds()
        end = (parse_iso(step["finished_at"]) - start).total_seconds()
        left = round(begin / span * BAR_WIDTH)
        filled = max(1, round(end / span * BAR_WIDTH) - left)
        bar = (" " * left + "#" * filled).ljust(BAR_WIDTH)[:BAR_WIDTH]
        attempts = f", {step['attempts']} attempts" if step["attempts"] > 1 else ""
        lines.append(f"{step['name']:<{width}} |{bar}| {begin:g}-{end:g} s {step['status']}{attempts}")
    return lines


def render_summary(reports: list[dict[str, Any]]) -> str:
    """The table `--scenario all` prints: one line per scenario."""
    lines = [
        "# DR drills (SIMULATION): summary",
        "",
        "| scenario | result | expected | RTO (s) | RPO (s) | steps | verdict |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for report in reports:
        lines.append(
            f"| {report['scenario']} | {report['result']} | {report['expected_result']} | "
            f"{_number(report['rto_seconds'])} | {_number(report['rpo_seconds'])} | {len(report['steps'])} | "
            f"{'ok' if report['as_expected'] else 'UNEXPECTED'} |"
        )
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], directory: Path) -> list[Path]:
    """`drill-<scenario>.json` and `.md` in `directory` (replaced by the next drill of the scenario)."""
    directory.mkdir(parents=True, exist_ok=True)
    base = directory / f"drill-{report['scenario']}"
    json_path, markdown_path = base.with_suffix(".json"), base.with_suffix(".md")
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    markdown_path.write_text(render_markdown(report))
    return [json_path, markdown_path]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g} s"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _met(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "not measured"}[met]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
