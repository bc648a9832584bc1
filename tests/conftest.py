"""Shared fixtures: the program evaluated under recording mocks, once per DR state."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

ROOT = Path(__file__).resolve().parent.parent
# drctl's consoles take their width when first imported; tests read what they print, so a narrow terminal
# (or a CI that sets COLUMNS=80) must not wrap a long path mid-assertion.
os.environ["COLUMNS"] = "200"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from automation.evaluate import Evaluation, evaluate_program, stack_file_config  # noqa: E402

if TYPE_CHECKING:
    from automation.aws.clients import AwsClients
    from automation.sandbox import MotoSandboxServer, Sandbox
    from tests.fake_clock import FakeClock

# Each state as drctl leaves it: failover flips activeRegion and drState;
# failback prepare raises the primary database generation, keeping the old one.
STATE_OVERRIDES: dict[str, dict[str, str]] = {
    "steady": {},
    "failed-over": {"dr-platform:activeRegion": "us-west-2", "dr-platform:drState": "failed-over"},
    "resyncing": {
        "dr-platform:activeRegion": "us-west-2",
        "dr-platform:drState": "resyncing",
        "dr-platform:dbGeneration": '{"primary": 2, "dr": 1}',
        "dr-platform:dbRetainedGenerations": '{"primary": [1], "dr": []}',
    },
    # failback switch: primary generation 2 is the writer again; dr is rebuilt.
    "steady-after-failback": {
        "dr-platform:dbGeneration": '{"primary": 2, "dr": 2}',
        "dr-platform:dbRetainedGenerations": '{"primary": [1], "dr": [1]}',
    },
}
STATES = ("steady", "failed-over", "resyncing")
# What no DR state declares but a stack can switch on: live-drill fault injection, an off-account backup copy.
FEATURE_OVERRIDES: dict[str, str] = {
    "dr-platform:faultInjection": "true",
    "dr-platform:backupCrossAccountVaultArn": "arn:aws:backup:us-east-1:210987654321:backup-vault:acme-dr-copies",
}


def prod_config(**overrides: str) -> dict[str, str]:
    """The prod stack's config with overrides (keys with or without the namespace)."""
    config = stack_file_config("prod")
    config.update({k if ":" in k else f"dr-platform:{k}": v for k, v in overrides.items()})
    return config


@functools.cache
def evaluate_state(state: str) -> Evaluation:
    """Evaluating the program takes about a second; each state is evaluated once."""
    return evaluate_program(prod_config(**STATE_OVERRIDES[state]))


@functools.cache
def evaluate_features() -> Evaluation:
    """Steady state with every optional feature on (FEATURE_OVERRIDES)."""
    return evaluate_program(prod_config(**FEATURE_OVERRIDES))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Whether the `engine` tests ran. Here, not in tests/engine/conftest.py: under pytest-xdist only the
    controller writes the summary, and it loads this conftest alone."""
    from tests.engine.conftest import ENGINE_DESCRIPTION, ENGINE_DIR

    verdict = f"ran against {ENGINE_DESCRIPTION}" if ENGINE_DIR else f"SKIPPED: {ENGINE_DESCRIPTION}"
    terminalreporter.write_line(f"engine tests: {verdict}")


@pytest.fixture(scope="module")
def server() -> Iterator[MotoSandboxServer]:
    """One moto server per test module; each sandbox resets it."""
    from automation.sandbox import MotoSandboxServer

    moto = MotoSandboxServer()
    moto.start()
    yield moto
    moto.stop()


@pytest.fixture
def provisioned_sandbox(server: MotoSandboxServer) -> Iterator[Sandbox]:
    """A sandbox with the program deployed in steady state (moto reset)."""
    from automation.sandbox import Sandbox

    with Sandbox.open(prod_config(), server=server, scale=0) as opened:
        opened.provision()
        yield opened


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy AWS credentials, and no endpoint override, for tests under moto's mock_aws."""
    from automation.aws.clients import ENDPOINT_ENV
    from tests.aws_support import CREDENTIALS

    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(ENDPOINT_ENV, raising=False)


@pytest.fixture
def aws(credentials: None) -> Iterator[AwsClients]:
    """drctl's AWS clients inside moto's in-process mock."""
    from moto import mock_aws

    from tests.aws_support import shared_clients

    with mock_aws():
        yield shared_clients()


@pytest.fixture
def clock() -> FakeClock:
    """A clock that advances only when slept on: no real waits in tests."""
    from tests.fake_clock import FakeClock

    return FakeClock()


@pytest.fixture(params=STATES)
def state_eval(request: pytest.FixtureRequest) -> Evaluation:
    return evaluate_state(request.param)


@pytest.fixture
def steady() -> Evaluation:
    return evaluate_state("steady")


@pytest.fixture
def failed_over() -> Evaluation:
    return evaluate_state("failed-over")


@pytest.fixture
def resyncing() -> Evaluation:
    return evaluate_state("resyncing")


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # -> FakePulumi
    """The fake `pulumi` executable first on PATH, with an empty backend under tmp_path."""
    from tests.fake_pulumi import FakePulumi

    fake = FakePulumi.install(tmp_path / "fake-pulumi")
    for key, value in fake.environment().items():
        monkeypatch.setenv(key, value)
    return fake
