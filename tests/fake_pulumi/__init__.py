"""Test control of the fake `pulumi` executable (tests/fake_pulumi/cli.py).

`FakePulumi.install(directory)` writes a `pulumi` launcher that runs the fake
with this interpreter (it streams engine events over the SDK's gRPC service,
so it needs `grpc` and `pulumi`'s protos), points the fake at a backend
directory and makes a project directory (`project/`, with `Pulumi.yaml`) whose
`Pulumi.<stack>.yaml` holds each stack's config, as the real CLI keeps it. The
`fake_pulumi` fixture in tests/conftest.py puts it first on PATH.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

CLI = Path(__file__).resolve().parent / "cli.py"


class FakePulumi:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.bin_dir = home / "bin"
        self.project = home / "project"

    @classmethod
    def install(cls, home: Path) -> FakePulumi:
        fake = cls(home)
        fake.bin_dir.mkdir(parents=True, exist_ok=True)
        launcher = fake.bin_dir / "pulumi"
        launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{CLI}" "$@"\n')
        launcher.chmod(0o755)
        fake.project.mkdir(exist_ok=True)
        (fake.project / "Pulumi.yaml").write_text("name: dr-platform\nruntime: python\n")
        return fake

    def environment(self) -> dict[str, str]:
        return {
            "FAKE_PULUMI_HOME": str(self.home),
            "PULUMI_BACKEND_URL": f"file://{self.home}",
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ['PATH']}",
        }

    # --- the backend and the project -----------------------------------------------------------------

    def add_stack(
        self,
        name: str,
        config: Mapping[str, str],
        *,
        resources: Sequence[Mapping[str, Any]] = (),
        outputs: Mapping[str, Any] | None = None,
        pending: Sequence[Mapping[str, str]] = (),
    ) -> None:
        short = name.rsplit("/", 1)[-1]
        root = {"urn": f"urn:pulumi:{short}::dr-platform::pulumi:pulumi:Stack::dr-platform-{short}"}
        self._write(
            name,
            {
                "deployment": {
                    # A deployed stack's state always holds its root stack resource.
                    "resources": [{**root, "type": "pulumi:pulumi:Stack"}, *(dict(r) for r in resources)],
                    "pending_operations": [
                        {
                            "resource": {
                                "urn": item["urn"],
                                "type": item.get("type", ""),
                                **{key: item[key] for key in ("parent", "provider") if key in item},
                            },
                            "type": item["type_of_op"],
                        }
                        for item in pending
                    ],
                },
                "outputs": dict(outputs or {}),
                "history": [],
            },
        )
        self.stack_file(name).write_text(yaml.safe_dump({"config": dict(config)}, sort_keys=False))

    def stack_file(self, name: str) -> Path:
        """The project's `Pulumi.<stack>.yaml`, where the CLI keeps the stack's config."""
        return self.project / f"Pulumi.{name.rsplit('/', 1)[-1]}.yaml"

    def config(self, name: str) -> dict[str, Any]:
        return (yaml.safe_load(self.stack_file(name).read_text()) or {}).get("config") or {}

    def state(self, name: str) -> dict[str, Any]:
        return json.loads(self._stack_file(name).read_text())

    def locks(self, name: str) -> list[Path]:
        directory = self.home / ".pulumi" / "locks" / name
        return sorted(directory.glob("*.json")) if directory.exists() else []

    def hold_lock(self, name: str, pid: int = 4242) -> Path:
        """A lock file as another `pulumi up` leaves it (DIY backend layout)."""
        directory = self.home / ".pulumi" / "locks" / name
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{uuid.uuid4()}.json"
        info = {"pid": pid, "username": "ci", "hostname": socket.gethostname(), "timestamp": _now()}
        path.write_text(json.dumps(info))
        return path

    # --- behaviour of the next preview / up ----------------------------------------------------------

    def scenario(self, **operations: Mapping[str, Any]) -> None:
        """e.g. `up={"steps": [...], "delay_seconds": 2, "fail": {"diagnostics": [...]}}, preview={...}`."""
        (self.home / "scenario.json").write_text(json.dumps(operations))

    # --- what reached the CLI -------------------------------------------------------------------------

    def calls(self, *words: str) -> list[dict[str, Any]]:
        path = self.home / "calls.jsonl"
        found = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        return [call for call in found if list(call["words"][: len(words)]) == list(words)]

    def wait_for_call(self, command: str, timeout: float = 10.0) -> int:
        """Wait until the CLI started a `preview` or an `up` (past its lock); returns the CLI's pid."""
        path = self.home / "started.jsonl"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists():
                started = [json.loads(line) for line in path.read_text().splitlines()]
                pids = [entry["pid"] for entry in started if entry["command"] == command]
                if pids and (command != "up" or any((self.home / ".pulumi" / "locks").rglob("*.json"))):
                    return pids[-1]
            time.sleep(0.02)
        raise AssertionError(f"the fake CLI never started {command}")

    def plugins(self) -> list[int]:
        """The pids of every provider plugin a preview or update started."""
        directory = self.home / "plugins"
        return sorted(int(path.name) for path in directory.iterdir()) if directory.exists() else []

    def plugin_activity(self) -> list[tuple[int, float]]:
        """(plugin pid, time) of each time a plugin acted."""
        path = self.home / "plugin-activity.log"
        lines = path.read_text().splitlines() if path.exists() else []
        return [(int(pid), float(at)) for pid, at in (line.split() for line in lines if len(line.split()) == 2)]

    def _stack_file(self, name: str) -> Path:
        return self.home / "stacks" / f"{name}.json"

    def _write(self, name: str, document: Mapping[str, Any]) -> None:
        path = self._stack_file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2))


def policy_pack(directory: Path, *, with_virtualenv: bool) -> Path:
    """A policy pack whose settings name `venv`; with its virtualenv, an interpreter that imports
    pulumi_policy (a stand-in answering as one would: the pack's code never runs against the fake)."""
    directory.mkdir()
    (directory / "PulumiPolicy.yaml").write_text("runtime:\n  name: python\n  options:\n    virtualenv: venv\n")
    if with_virtualenv:
        (directory / "venv" / "bin").mkdir(parents=True)
        interpreter = directory / "venv" / "bin" / "python"
        interpreter.write_text('#!/bin/sh\n[ "$1 $2" = "-c import pulumi_policy" ] && exit 0\nexit 1\n')
        interpreter.chmod(0o755)
    return directory


def _now() -> str:
    return datetime.now(UTC).isoformat()
