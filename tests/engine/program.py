"""The engine tests' program: three resources as Python dynamic providers, shaped like the real ones.

A "database" (replica while steady), a bucket (replicating from the active
region) and a DNS record (pointing at the active region), read from the same
`dr-platform` config keys as the real program, with `protect` and
`retain_on_delete` where the real program has them. The provider keeps each
resource as a JSON file in `$DRP_ENGINE_TEST_CLOUD` (the "cloud"), logs every
call there, and takes per-resource behaviour from `behaviour.json` (an update
that takes a while, a create or update that fails with a provider error, a
diff that fails during the preview).

The provider process imports this module (PYTHONPATH is the repository root),
so the classes are pickled by reference.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

CLOUD_ENV = "DRP_ENGINE_TEST_CLOUD"
REPLACED_BY = ("engine", "region")
"""Inputs that force a replacement, as `engine` and `region` do for an RDS instance."""
OPTIONS: dict[str, Any] = {"db_engine": "postgres", "topic": False}
"""Knobs of the program, which runs in the test process (an inline program): the database's engine, and
whether the program declares a notification topic in the DR region (a resource a later update creates)."""


def cloud() -> Path:
    return Path(os.environ[CLOUD_ENV])


def calls() -> list[str]:
    log = cloud() / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def stored(name: str) -> dict[str, Any] | None:
    path = cloud() / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def set_behaviour(name: str, **behaviour: Any) -> None:
    path = cloud() / "behaviour.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**current, name: behaviour}))


class CloudProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        self._act("create", props)
        return CreateResult(id_=props["name"], outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        if _behaviour(news["name"]).get("fail_diff"):
            raise Exception(_behaviour(news["name"])["fail_diff"])  # a provider error during the preview
        changed = [key for key in news if key != "__provider" and olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=[key for key in changed if key in REPLACED_BY])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._act("update", news)
        return UpdateResult(outs=news)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        _log(f"read {id_}")
        return ReadResult(id_=id_, outs=props)

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        _log(f"delete {id_}")
        (cloud() / f"{id_}.json").unlink(missing_ok=True)

    @staticmethod
    def _act(operation: str, props: dict[str, Any]) -> None:
        name = props["name"]
        behaviour = _behaviour(name)
        _log(f"{operation}-started {name}")
        time.sleep(float(behaviour.get("delay", 0)))
        if behaviour.get("fail"):
            raise Exception(behaviour["fail"])
        record = {key: value for key, value in props.items() if key != "__provider"}
        (cloud() / f"{name}.json").write_text(json.dumps(record))
        _log(f"{operation} {name}")


def _behaviour(name: str) -> dict[str, Any]:
    path = cloud() / "behaviour.json"
    return json.loads(path.read_text()).get(name, {}) if path.exists() else {}


def _log(line: str) -> None:
    with open(cloud() / "calls.log", "a", encoding="utf-8") as log:
        log.write(line + "\n")


class Database(Resource, module="rds", name="Instance"):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(CloudProvider(), name, {"name": name, **props}, opts)


class Bucket(Resource, module="s3", name="Bucket"):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(CloudProvider(), name, {"name": name, **props}, opts)


class Topic(Resource, module="sns", name="Topic"):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(CloudProvider(), name, {"name": name, **props}, opts)


class Record(Resource, module="route53", name="Record"):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(CloudProvider(), name, {"name": name, **props}, opts)


def program() -> None:
    config = pulumi.Config("dr-platform")
    state = config.get("drState") or "steady"
    active = config.get("activeRegion") or config.require("primaryRegion")
    dr_region = config.require("drRegion")
    stateful = pulumi.ResourceOptions(protect=True, retain_on_delete=True)
    Database(
        "database-dr", {"region": dr_region, "replica": state == "steady", "engine": OPTIONS["db_engine"]}, stateful
    )
    Bucket("data-dr", {"region": dr_region, "replication_source": active}, stateful)
    Record("app", {"target": active})
    if OPTIONS["topic"]:
        Topic("alerts-dr", {"region": dr_region})
    pulumi.export("activeRegion", active)
    pulumi.export("drState", state)
