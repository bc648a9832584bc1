"""Grafana dashboards as code, loaded by Grafana's dashboard sidecar from ConfigMaps.

Each builder returns the dashboard's JSON model as a dict. Queries go through
a `datasource` variable so the dashboards work with whichever Prometheus
datasource the chart provisions. Metric names match `components.alert_rules`.
"""

from __future__ import annotations

from typing import Any

from components import alert_rules
from components.config import PlatformConfig

_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_GRID_WIDTH = 24


def _panel(
    title: str,
    queries: list[tuple[str, str]],
    *,
    kind: str = "timeseries",
    unit: str = "short",
    width: int = 12,
    height: int = 8,
    thresholds: list[tuple[float, str]] | None = None,
) -> dict[str, Any]:
    """A panel; `queries` pairs a PromQL expression with its legend."""
    steps = [{"color": "green", "value": None}]
    steps += [{"color": color, "value": value} for value, color in thresholds or []]
    defaults: dict[str, Any] = {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}}
    if kind == "timeseries" and thresholds:
        # Draw the thresholds (the RPO, for instance) as lines on the graph.
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return {
        "type": kind,
        "title": title,
        "datasource": _DATASOURCE,
        "gridPos": {"w": width, "h": height},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": _DATASOURCE, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(queries)
        ],
    }


def _text(title: str, markdown: str, width: int = _GRID_WIDTH, height: int = 4) -> dict[str, Any]:
    return {
        "type": "text",
        "title": title,
        "gridPos": {"w": width, "h": height},
        "options": {"mode": "markdown", "content": markdown},
    }


def _dashboard(uid: str, title: str, panels: list[dict[str, Any]], refresh: str, time_from: str) -> dict[str, Any]:
    """Lays the panels out left to right, wrapping at Grafana's 24-column grid."""
    x = y = row_height = 0
    for number, panel in enumerate(panels, start=1):
        grid = panel["gridPos"]
        if x + grid["w"] > _GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        grid.update(x=x, y=y)
        panel["id"] = number
        x += grid["w"]
        row_height = max(row_height, grid["h"])
    return {
        "uid": uid,
        "title": title,
        "tags": ["dr-platform"],
        "timezone": "utc",
        "schemaVersion": 39,
        "editable": False,
        "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus"},
            ]
        },
        "panels": panels,
    }


def system_overview() -> dict[str, Any]:
    """Service status, error rate, p95 latency, CPU/memory and Redis."""
    return _dashboard(
        "drp-system-overview",
        "dr-platform / System overview",
        [
            _panel(
                "Service status (targets up)",
                [("min by (job) (up)", "{{job}}")],
                kind="stat",
                width=_GRID_WIDTH,
                height=5,
                thresholds=[(1, "green")],
            ),
            _panel(
                "5xx error rate by service",
                [(alert_rules.ERROR_RATIO, "{{service}}")],
                unit="percentunit",
                thresholds=[(0.05, "red")],
            ),
            _panel(
                "p95 latency by service",
                [(alert_rules.P95_LATENCY, "{{service}}")],
                unit="s",
                thresholds=[(0.5, "orange")],
            ),
            _panel(
                "CPU usage by node",
                [(alert_rules.CPU_RATIO, "{{instance}}")],
                unit="percentunit",
                thresholds=[(0.8, "orange")],
            ),
            _panel(
                "Memory usage by node",
                [(alert_rules.MEMORY_RATIO, "{{instance}}")],
                unit="percentunit",
                thresholds=[(0.9, "orange")],
            ),
            _panel("Redis up", [("redis_up", "{{instance}}")], kind="stat", width=8, thresholds=[(1, "green")]),
            _panel("Redis memory used", [("redis_memory_used_bytes", "{{instance}}")], unit="bytes", width=8),
            _panel(
                "Redis commands per second",
                [("sum by (instance) (rate(redis_commands_processed_total[5m]))", "{{instance}}")],
                unit="ops",
                width=8,
            ),
        ],
        refresh="30s",
        time_from="now-1h",
    )


def dr_status(cfg: PlatformConfig, role: str) -> dict[str, Any]:
    """Where the platform stands and whether the DR region could take over within the RPO."""
    region = cfg.region_of(role)
    state = (
        f"## Active region: **{cfg.active_region}** · DR state: **{cfg.dr_state.value}**\n\n"
        f"Primary {cfg.primary_region} · DR {cfg.dr_region} · this cluster: {region} ({role}, "
        f"{'active' if region == cfg.active_region else 'standby'}) · "
        f"RPO {cfg.rpo_seconds}s, RTO {cfg.rto_seconds}s. "
        "From the stack config as of the last `pulumi up`; `drctl status` shows the live view."
    )
    lag_lines = [(cfg.replica_lag_warning_seconds, "orange"), (cfg.rpo_seconds, "red")]
    return _dashboard(
        "drp-dr-status",
        "dr-platform / DR status",
        [
            _text("Platform state", state, height=5),
            _panel(
                "Database replica lag vs RPO",
                [(f"max by (region, dimension_DBInstanceIdentifier) ({alert_rules.RDS_REPLICA_LAG})", "{{region}}")],
                unit="s",
                width=_GRID_WIDTH,
                thresholds=lag_lines,
            ),
            _panel(
                "S3 replication latency",
                [
                    (
                        f"max by (dimension_SourceBucket) ({alert_rules.S3_REPLICATION_LATENCY})",
                        "{{dimension_SourceBucket}}",
                    )
                ],
                unit="s",
                thresholds=[(cfg.rpo_seconds, "red")],
            ),
            _panel(
                "S3 failed replication operations",
                [
                    (
                        f"sum by (dimension_SourceBucket) ({alert_rules.S3_FAILED_REPLICATION})",
                        "{{dimension_SourceBucket}}",
                    )
                ],
                thresholds=[(1, "red")],
            ),
            _panel(
                "Global Datastore replication lag",
                [(f"max by (region) ({alert_rules.CACHE_REPLICATION_LAG})", "{{region}}")],
                unit="s",
                thresholds=lag_lines,
            ),
            _panel(
                "Last completed backup (age)",
                # The newest scrape at which a completed job was reported, within a week.
                [
                    (
                        f"time() - max(max_over_time(timestamp({alert_rules.BACKUP_JOBS_COMPLETED} > 0)[7d:5m]))",
                        "age",
                    )
                ],
                kind="stat",
                unit="s",
                thresholds=[(alert_rules.BACKUP_OVERDUE_HOURS * 3600, "red")],
            ),
            _panel(
                "Backup and copy jobs failed",
                [
                    (f"sum by (region) ({alert_rules.BACKUP_JOBS_FAILED})", "backup {{region}}"),
                    (f"sum by (region) ({alert_rules.COPY_JOBS_FAILED})", "copy {{region}}"),
                ],
                width=_GRID_WIDTH,
                thresholds=[(1, "red")],
            ),
        ],
        refresh="30s",
        time_from="now-6h",
    )
