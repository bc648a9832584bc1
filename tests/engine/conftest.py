"""The real Pulumi engine for the `engine` tests: the one `make engine` builds, or a `pulumi` on PATH.

Each test gets a file:// backend in a temporary directory with passphrase
secrets, a project directory holding only Pulumi.yaml, and a "cloud"
directory for the test program's dynamic providers (tests/engine/program.py).
Without an engine every `engine` test is skipped, and the run says so (tests/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
BUILT_ENGINE = ROOT / ".engine" / "bin"
MINIMUM_VERSION = tuple(int(part) for part in (ROOT / ".github" / "pulumi-version").read_text().split(".")[:2])
"""The README's minimum CLI version, the one the workflows install."""
STACK = "organization/dr-platform/engine"


def find_engine() -> tuple[Path | None, str]:
    """The directory of a usable engine and what it is, or None and why not."""
    candidates = [BUILT_ENGINE / "pulumi"] if (BUILT_ENGINE / "pulumi").exists() else []
    on_path = shutil.which("pulumi")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        version = subprocess.run([candidate, "version"], capture_output=True, text=True, check=False).stdout.strip()
        parts = tuple(int(part) for part in version.lstrip("v").split(".")[:2] if part.isdigit())
        shim = candidate.parent / "pulumi-resource-pulumi-python"
        if parts >= MINIMUM_VERSION and (shim.exists() or shutil.which(shim.name)):
            return candidate.parent, f"{candidate} {version}"
    minimum = ".".join(map(str, MINIMUM_VERSION))
    return None, f"no Pulumi engine (run `make engine`, or put pulumi >= {minimum} with its Python shims on PATH)"


ENGINE_DIR, ENGINE_DESCRIPTION = find_engine()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engine: drives the real Pulumi engine (make engine)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if ENGINE_DIR is None:
        skip = pytest.mark.skip(reason=ENGINE_DESCRIPTION)
        for item in items:
            if item.get_closest_marker("engine"):
                item.add_marker(skip)


@dataclass
class EngineWorld:
    project: Path
    cloud: Path
    backend: Path


def _prepare(root: Path, monkeypatch: pytest.MonkeyPatch) -> EngineWorld:
    """The environment of a world under `root`: its backend, its cloud, the engine first on PATH."""
    assert ENGINE_DIR is not None
    world = EngineWorld(root / "project", root / "cloud", root / "backend")
    for directory in (world.project, world.cloud, world.backend):
        directory.mkdir(exist_ok=True)
    env = {
        "PULUMI_BACKEND_URL": f"file://{world.backend}",
        "PULUMI_CONFIG_PASSPHRASE": "engine-tests",
        "PULUMI_HOME": str(root / "pulumi-home"),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_PYTHON_CMD": sys.executable,
        "PYTHONPATH": str(ROOT),
        "DRP_ENGINE_TEST_CLOUD": str(world.cloud),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PATH", f"{ENGINE_DIR}{os.pathsep}{os.environ['PATH']}")
    return world


@pytest.fixture(scope="module")
def deployed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stack created, configured with the prod config and deployed once per module; tests get copies."""
    from automation.stack import PulumiStack
    from tests.conftest import prod_config
    from tests.engine import program

    root = tmp_path_factory.mktemp("engine-template")
    with pytest.MonkeyPatch.context() as monkeypatch:
        world = _prepare(root, monkeypatch)
        (world.project / "Pulumi.yaml").write_text("name: dr-platform\nruntime: python\n")
        adapter = PulumiStack.select(STACK, world.project, create=True, program=program.program)
        adapter.set_config(prod_config())
        adapter.up(None, message="first deploy")
    return root


@pytest.fixture
def engine_world(deployed_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EngineWorld:
    """A copy of the deployed world (project with its stack config, backend state, cloud) for one test."""
    for name in ("project", "cloud", "backend"):
        shutil.copytree(deployed_template / name, tmp_path / name)
    return _prepare(tmp_path, monkeypatch)
