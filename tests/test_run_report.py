"""Run reports (automation/report.py): Markdown that renders, and the RTO counted from the disruption."""

from __future__ import annotations

from pathlib import Path

from automation.journal import RunParameters
from automation.report import build_report, render_markdown
from automation.runbook import DISRUPTION_STARTED_AT
from automation.runbooks.failover import failover_runbook
from tests.dr_world import Dr

GRACEFUL = RunParameters(reason="quarterly drill", operator="alice", mode="graceful")


def table_rows(markdown: str, header_start: str) -> list[str]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_the_steps_table_is_a_markdown_table(tmp_path: Path) -> None:
    dr = Dr(tmp_path)
    runbook = failover_runbook(dr.ctx, "graceful")
    outcome = dr.engine().run(runbook, GRACEFUL)
    rows = table_rows(render_markdown(build_report(outcome.run, runbook)), "| step |")
    header, separator = rows[0], rows[1]
    assert separator == "|" + "---|" * header.count(" |")
    assert all(cell.strip() == "---" for cell in separator.strip("|").split("|"))
    assert len(rows) == 2 + len(outcome.run.steps)


def test_a_planned_switch_counts_its_rto_from_the_write_fence_beside_the_floor(tmp_path: Path) -> None:
    dr = Dr(tmp_path)
    runbook = failover_runbook(dr.ctx, "graceful")
    outcome = dr.engine().run(runbook, GRACEFUL)
    report = build_report(outcome.run, runbook)
    assert outcome.run.measurements[DISRUPTION_STARTED_AT]
    assert report["rto_from"] == "write fence"
    assert report["rto_floor_seconds"] == runbook.rto_floor_seconds > 0
    assert report["rto_floor_ratio"] == round(report["rto_seconds"] / runbook.rto_floor_seconds, 3)
    assert "ratio" in render_markdown(report)
