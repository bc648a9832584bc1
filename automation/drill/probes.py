"""Canaries for a live drill's RPO: writes through each data path before the switch, and which of them arrived.

- S3: drctl writes objects into the active region's data bucket itself
  (`drill-canary/<drill id>/<n>`, the time S3 acknowledged each in its
  metadata) and looks for each in the other region's bucket afterwards.
- The database and the cache are private (their security groups admit their
  VPC only), so a short-lived Kubernetes Job in the region's cluster writes and
  reads them (`automation.drill.kubernetes`). It runs under the `drill-probe`
  service account, whose Pod Identity role reads the region's master
  credential and the cache's AUTH secret and nothing else
  (components/heartbeat.py). Each committed write prints a line with its id
  and the server's timestamp, each lookup the ids it found; drctl reads the
  Job's logs.

A path drctl cannot reach (no cluster endpoint from this runner, a secret the
probe identity may not read) is reported as not measured, never as survived.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from automation.aws.clients import AwsClients, reaching
from automation.aws.waiting import Clock
from automation.journal import iso, parse_iso
from automation.sandbox.dataplane import Survival
from components.heartbeat import (
    AWS_CLI_IMAGE,
    DRILL_PROBE,
    LOCKED_DOWN_CONTAINER,
    NAMESPACE,
    POSTGRES_CLIENT_IMAGE,
    SECRET_DIR,
    UNPRIVILEGED_POD,
)
from components.naming import cache_auth_secret_name, db_master_secret_name
from components.network import POSTGRES_PORT

S3_PREFIX = "drill-canary"
WRITTEN_AT_METADATA = "written-at"
CANARY_TABLE = "dr_platform_drill_canary"
CACHE_KEY_PREFIX = "dr-platform:drill-canary"
REDIS_CLIENT_IMAGE = "public.ecr.aws/docker/library/redis:7.4-alpine"
"""redis-cli with TLS (the official images build it in since 6.0); the groups require in-transit encryption."""
PROBE_DEADLINE_SECONDS = 300
_LINE = re.compile(r"^(written|found|unreachable) (database|cache) (\S+)(?: (.*))?$")


@dataclass(frozen=True)
class Canary:
    kind: str
    key: str
    region: str
    written_at: datetime


@dataclass
class PathResult:
    """What one data path holds in one region, against the canaries written to it."""

    kind: str
    holder: str
    written: list[Canary]
    found: set[str] | None
    """None: the path could not be read (see `problem`)."""
    problem: str | None = None

    def survival(self, region: str) -> Survival | None:
        if self.found is None:
            return None
        lost = sorted((c for c in self.written if c.key not in self.found), key=lambda c: c.written_at)
        return Survival(
            self.kind,
            region,
            self.holder,
            len(self.written),
            len(self.written) - len(lost),
            tuple(c.key for c in lost),
            lost[0].written_at if lost else None,
            lost[-1].written_at if lost else None,
        )


class CanaryPath(Protocol):
    kind: str

    def write(self, region: str, drill_id: str, count: int, interval_seconds: float) -> list[Canary]: ...

    def read(self, region: str, canaries: Sequence[Canary]) -> PathResult: ...


class S3Canaries:
    """Objects in the regions' data buckets (stack output `buckets`)."""

    kind = "s3-objects"

    def __init__(self, clients: AwsClients, outputs: Mapping[str, Any], clock: Clock) -> None:
        self.clients = clients
        self.buckets = {region: entry["name"] for region, entry in (outputs.get("buckets") or {}).items()}
        self.clock = clock

    def write(self, region: str, drill_id: str, count: int, interval_seconds: float) -> list[Canary]:
        s3 = self.clients.client("s3", region)
        written = []
        for index in range(count):
            if index:
                self.clock.sleep(interval_seconds)
            key = f"{S3_PREFIX}/{drill_id}/{index}"
            at = self.clock.now()
            with reaching(region):
                s3.put_object(
                    Bucket=self.buckets[region], Key=key, Body=iso(at).encode(), Metadata={WRITTEN_AT_METADATA: iso(at)}
                )
            written.append(Canary(self.kind, key, region, at))
        return written

    def read(self, region: str, canaries: Sequence[Canary]) -> PathResult:
        s3, bucket = self.clients.client("s3", region), self.buckets[region]
        found: set[str] = set()
        try:
            for canary in canaries:
                with reaching(region):
                    try:
                        s3.head_object(Bucket=bucket, Key=canary.key)
                    except ClientError as error:
                        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                            raise
                        continue
                found.add(canary.key)
        except Exception as error:
            return PathResult(self.kind, bucket, list(canaries), None, f"{type(error).__name__}: {error}")
        return PathResult(self.kind, bucket, list(canaries), found)


class JobRunner(Protocol):
    """Runs a Job to completion in a region's cluster and returns each container's log (kubernetes.py)."""

    def __call__(self, region: str, manifest: Mapping[str, Any]) -> dict[str, str]: ...


@dataclass
class ClusterCanaries:
    """The database and the cache, written and read by a probe Job in the region's cluster."""

    run_job: JobRunner
    cfg: Any
    outputs: Mapping[str, Any]
    kinds: tuple[str, ...] = ("database-rows", "cache-keys")
    _written_logs: dict[str, str] = field(default_factory=dict)

    def holder(self, kind: str, region: str) -> str:
        if kind == "database-rows":
            return str(
                ((self.outputs.get("database") or {}).get(region) or {}).get("identifier") or f"database {region}"
            )
        return str(((self.outputs.get("cache") or {}).get("groups") or {}).get(region) or f"cache {region}")

    def write(self, region: str, drill_id: str, count: int, interval_seconds: float) -> dict[str, PathResult]:
        """One Job writes both paths; a path it could not write is returned with its problem."""
        logs = self.run_job(
            region, probe_job(self.cfg, self.outputs, region, drill_id, "write", count, interval_seconds)
        )
        return self._results(region, logs, drill_id, written=None)

    def read(self, region: str, drill_id: str, written: Mapping[str, list[Canary]]) -> dict[str, PathResult]:
        count = max((len(canaries) for canaries in written.values()), default=0)
        logs = self.run_job(region, probe_job(self.cfg, self.outputs, region, drill_id, "read", count, 0))
        return self._results(region, logs, drill_id, written=written)

    def _results(
        self, region: str, logs: Mapping[str, str], drill_id: str, written: Mapping[str, list[Canary]] | None
    ) -> dict[str, PathResult]:
        parsed = parse_probe_logs(logs, region)
        results = {}
        for kind, (canaries, found, problem) in parsed.items():
            if written is None:
                results[kind] = PathResult(
                    kind, self.holder(kind, region), canaries, None if problem else set(), problem
                )
            else:
                results[kind] = PathResult(
                    kind, self.holder(kind, region), written.get(kind, []), None if problem else found, problem
                )
        return results


_KIND = {"database": "database-rows", "cache": "cache-keys"}


def parse_probe_logs(logs: Mapping[str, str], region: str) -> dict[str, tuple[list[Canary], set[str], str | None]]:
    """Per kind: the canaries written (with the server's timestamps), the ids found, the problem if any."""
    parsed: dict[str, tuple[list[Canary], set[str], str | None]] = {}
    for container, text in logs.items():
        kind = _KIND.get(container)
        if kind is None:
            continue
        written: list[Canary] = []
        found: set[str] = set()
        problem: str | None = None
        for line in text.splitlines():
            match = _LINE.match(line.strip())
            if not match:
                continue
            verb, _, key, rest = match.groups()
            if verb == "written":
                written.append(Canary(kind, key, region, parse_iso(rest or "")))
            elif verb == "found":
                found.add(key)
            else:
                problem = f"{key} {rest or ''}".strip()
        if not written and not found and problem is None:
            problem = f"the probe's {container} container printed nothing drctl understands"
        parsed[kind] = (written, found, problem)
    return parsed


# --- the probe Job --------------------------------------------------------------------------------------


def _database_script(mode: str) -> str:
    psql = "psql --no-psqlrc --quiet --tuples-only --no-align --set ON_ERROR_STOP=1"
    password = f'export PGPASSWORD="$(sed -n \'s/.*"password": *"\\([A-Za-z0-9]*\\)".*/\\1/p\' {SECRET_DIR}/db.json)"'
    if mode == "write":
        body = (
            f'{psql} --command "CREATE TABLE IF NOT EXISTS {CANARY_TABLE} (drill text, seq int, written_at timestamptz '
            'NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (drill, seq))" >/dev/null || '
            '{ echo "unreachable database cannot create the canary table"; exit 0; }\n'
            'i=0\nwhile [ "$i" -lt "$COUNT" ]; do\n'
            '  [ "$i" -gt 0 ] && sleep "$INTERVAL"\n'
            f"  at=\"$({psql} --command \"INSERT INTO {CANARY_TABLE} (drill, seq) VALUES ('$DRILL', $i) "
            "RETURNING to_char(written_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\\\"T\\\"HH24:MI:SS.US+00:00')\")\" "
            '&& echo "written database $i $at" || echo "unreachable database insert $i refused"\n'
            "  i=$((i + 1))\ndone\n"
        )
    else:
        body = (
            f'exists="$({psql} --command "SELECT to_regclass(\'{CANARY_TABLE}\') IS NOT NULL")" || '
            '{ echo "unreachable database cannot connect"; exit 0; }\n'
            '[ "$exists" = t ] || exit 0\n'
            f"{psql} --command \"SELECT seq FROM {CANARY_TABLE} WHERE drill = '$DRILL'\" | "
            'while read -r seq; do echo "found database $seq"; done\n'
        )
    return f"set -u\n{password}\n{body}"


def _cache_script(mode: str) -> str:
    def field_of(name: str) -> str:
        return f'"$(sed -n \'s/.*"{name}": *"\\([A-Za-z0-9.-]*\\)".*/\\1/p\' {SECRET_DIR}/cache.json)"'

    head = (
        f'[ -s {SECRET_DIR}/cache.json ] || {{ echo "unreachable cache the probe identity cannot read the AUTH '
        'secret"; exit 0; }\n'
        f"export REDISCLI_AUTH={field_of('authToken')}\n"
        f"host={field_of('primaryEndpoint')}\n"
        'cli() { redis-cli --tls -h "$host" -p 6379 "$@"; }\n'
    )
    if mode == "write":
        body = (
            'i=0\nwhile [ "$i" -lt "$COUNT" ]; do\n'
            '  [ "$i" -gt 0 ] && sleep "$INTERVAL"\n'
            '  at="$(date -u +%Y-%m-%dT%H:%M:%S+00:00)"\n'
            f'  [ "$(cli SET "{CACHE_KEY_PREFIX}:$DRILL:$i" "$at" EX 86400)" = OK ] '
            '&& echo "written cache $i $at" || echo "unreachable cache SET $i refused"\n'
            "  i=$((i + 1))\ndone\n"
        )
    else:
        body = (
            'i=0\nwhile [ "$i" -lt "$COUNT" ]; do\n'
            f'  [ "$(cli EXISTS "{CACHE_KEY_PREFIX}:$DRILL:$i")" = 1 ] && echo "found cache $i"\n'
            "  i=$((i + 1))\ndone\n"
        )
    return f"set -u\n{head}{body}"


def probe_job_name(drill_id: str, mode: str) -> str:
    return f"drill-probe-{drill_id[:24].lower()}-{mode}"


def probe_job(
    cfg: Any, outputs: Mapping[str, Any], region: str, drill_id: str, mode: str, count: int, interval: float
) -> dict[str, Any]:
    """The Job: an init container fetches both secrets (the cache's may be refused), then one container per path.

    `mode` write: COUNT canaries, INTERVAL seconds apart, each printed with the time it was acknowledged; read:
    which of them this region holds. Reads work on a replica and on a secondary cache member.
    """
    role = cfg.role_of(region)
    database = (outputs.get("database") or {}).get(region) or {}
    env = [
        {"name": "DRILL", "value": drill_id},
        {"name": "COUNT", "value": str(count)},
        {"name": "INTERVAL", "value": f"{interval:g}"},
        {"name": "HOME", "value": "/tmp"},
    ]
    locked_down = LOCKED_DOWN_CONTAINER
    mounts = [{"name": "credential", "mountPath": SECRET_DIR}, {"name": "tmp", "mountPath": "/tmp"}]
    fetch = (
        f"aws secretsmanager get-secret-value --region {region} --secret-id {db_master_secret_name(cfg)} "
        f"--query SecretString --output text > {SECRET_DIR}/db.json; "
        f"aws secretsmanager get-secret-value --region {region} --secret-id {cache_auth_secret_name(cfg, role)} "
        f"--query SecretString --output text > {SECRET_DIR}/cache.json || : > {SECRET_DIR}/cache.json"
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": probe_job_name(drill_id, mode),
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/name": "drill-probe", "dr-platform/drill": drill_id[:63]},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": PROBE_DEADLINE_SECONDS,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "drill-probe"}},
                "spec": {
                    "serviceAccountName": DRILL_PROBE,
                    "restartPolicy": "Never",
                    "securityContext": UNPRIVILEGED_POD,
                    "volumes": [
                        {"name": "credential", "emptyDir": {"medium": "Memory"}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                    "initContainers": [
                        {
                            "name": "read-credentials",
                            "image": AWS_CLI_IMAGE,
                            "command": ["sh", "-c", fetch],
                            "env": [{"name": "HOME", "value": "/tmp"}],
                            "volumeMounts": mounts,
                            "securityContext": locked_down,
                        }
                    ],
                    "containers": [
                        {
                            "name": "database",
                            "image": POSTGRES_CLIENT_IMAGE,
                            "command": ["sh", "-c", _database_script(mode)],
                            "env": [
                                *env,
                                {"name": "PGHOST", "value": str(database.get("endpoint", "")).split(":", 1)[0]},
                                {"name": "PGPORT", "value": str(POSTGRES_PORT)},
                                {"name": "PGDATABASE", "value": cfg.db_name},
                                {"name": "PGUSER", "value": cfg.db_master_username},
                                {"name": "PGSSLMODE", "value": "require"},
                                {"name": "PGCONNECT_TIMEOUT", "value": "10"},
                            ],
                            "volumeMounts": mounts,
                            "securityContext": locked_down,
                        },
                        {
                            "name": "cache",
                            "image": REDIS_CLIENT_IMAGE,
                            "command": ["sh", "-c", _cache_script(mode)],
                            "env": env,
                            "volumeMounts": mounts,
                            "securityContext": locked_down,
                        },
                    ],
                },
            },
        },
    }


# --- all paths together -------------------------------------------------------------------------------


@dataclass
class Canaries:
    """Every path drctl reaches, written in one region and read in another."""

    s3: S3Canaries
    cluster: ClusterCanaries | None
    count: int = 3
    interval_seconds: float = 5
    written: dict[str, list[Canary]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    """Paths that could not be written: kind -> why (not measured)."""

    def write(self, region: str, drill_id: str, output: Callable[[str], None]) -> None:
        self.written, self.problems = {}, {}
        self.written[self.s3.kind] = self.s3.write(region, drill_id, self.count, self.interval_seconds)
        if self.cluster is None:
            for kind in ("database-rows", "cache-keys"):
                self.problems[kind] = "no probe Job: the clusters' Kubernetes API is not reachable from this runner"
        else:
            try:
                results = self.cluster.write(region, drill_id, self.count, self.interval_seconds)
            except Exception as error:  # the Job could not run: the paths stay unmeasured, the drill goes on
                results = {}
                for kind in self.cluster.kinds:
                    self.problems[kind] = f"probe Job failed: {error}"
            for kind, result in results.items():
                if result.problem:
                    self.problems[kind] = result.problem
                else:
                    self.written[kind] = result.written
        wrote = ", ".join(f"{kind} {len(items)}" for kind, items in self.written.items())
        output(
            f"canaries written in {region}: {wrote}"
            + "".join(f"; {k} not measured: {p}" for k, p in self.problems.items())
        )

    def read(self, region: str, drill_id: str) -> tuple[list[Survival], dict[str, str]]:
        """What arrived in `region`, as the sandbox's survival rows; and the paths not measured, with why."""
        problems = dict(self.problems)
        results = [self.s3.read(region, self.written.get(self.s3.kind, []))]
        cluster_written = {k: v for k, v in self.written.items() if k != self.s3.kind}
        if self.cluster is not None and cluster_written:
            try:
                results.extend(self.cluster.read(region, drill_id, cluster_written).values())
            except Exception as error:
                problems.update({kind: f"probe Job failed: {error}" for kind in cluster_written})
        survivals = []
        for result in results:
            if result.kind not in self.written:
                continue
            survival = result.survival(region)
            if survival is None:
                problems[result.kind] = result.problem or "unreadable"
            else:
                survivals.append(survival)
        return survivals, problems


def loss_window_seconds(survivals: Sequence[Survival], written: Mapping[str, list[Canary]]) -> float | None:
    """The measured RPO: from the newest canary that arrived to the newest that did not, over every path.

    0 when everything arrived; None when nothing was measured. When nothing arrived on a path, the window
    runs from its first canary (a lower bound: the loss may have begun before).
    """
    if not survivals:
        return None
    window = 0.0
    for survival in survivals:
        if not survival.lost or survival.newest_lost_at is None:
            continue
        canaries = written.get(survival.kind, [])
        kept = [c.written_at for c in canaries if c.key not in survival.lost and c.written_at < survival.newest_lost_at]
        start = max(kept) if kept else min(c.written_at for c in canaries)
        window = max(window, (survival.newest_lost_at - start).total_seconds())
    return window
