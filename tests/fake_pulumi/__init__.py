"""Test control of the fake `pulumi` executable (tests/fake_pulumi/cli.py).

`FakePulumi.install(directory)` writes a `pulumi` launcher that runs the fake
with this interpreter (it streams engine events over the SDK's gRPC service,
so it needs `grpc` and `pulumi`'s protos), and points the fake at a backend
directory. The `fake_pulumi` fixture in tests/conftest.py puts it first on PATH.
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

CLI = Path(__file__).resolve().parent / "cli.py"


class FakePulumi:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.bin_dir = home / "bin"

    @classmethod
    def install(cls, home: Path) -> FakePulumi:
        fake = cls(home)
        fake.bin_dir.mkdir(parents=True, exist_ok=True)
        launcher = fake.bin_dir / "pulumi"
        launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{CLI}" "$@"\n')
        launcher.chmod(0o755)
        return fake

    def environment(self) -> dict[str, str]:
        return {"FAKE_PULUMI_HOME": str(self.home), "PATH": f"{self.bin_dir}{os.pathsep}{os.environ['PATH']}"}

    # --- the backend ---------------------------------------------------------------------------

    def add_stack(
        self,
        name: str,
        config: Mapping[str, str],
        *,
        resources: Sequence[Mapping[str, str]] = (),
        outputs: Mapping[str, Any] | None = None,
        pending: Sequence[Mapping[str, str]] = (),
    ) -> None:
        self._write(
            name,
            {
                "config": dict(config),
                "deployment": {
                    "resources": [dict(resource) for resource in resources],
                    "pending_operations": [
                        {"resource": {"urn": item["urn"], "type": item.get("type", "")}, "type": item["type_of_op"]}
                        for item in pending
                    ],
                },
                "outputs": dict(outputs or {}),
                "history": [],
            },
        )

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

    def wait_for_call(self, *words: str, timeout: float = 10.0) -> None:
        """Wait until the CLI started `words` (its lock file exists for an `up`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if words == ("up",) and any((self.home / ".pulumi" / "locks").rglob("*.json")):
                return
            time.sleep(0.02)
        raise AssertionError(f"the fake CLI never started {' '.join(words)}")

    def _stack_file(self, name: str) -> Path:
        return self.home / "stacks" / f"{name}.json"

    def _write(self, name: str, document: Mapping[str, Any]) -> None:
        path = self._stack_file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2))


def _now() -> str:
    return datetime.now(UTC).isoformat()
