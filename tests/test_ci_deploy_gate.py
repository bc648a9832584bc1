"""What CI's deploy and a fresh install need so that a Pulumi run can be stopped and cannot be steered:
the policy pack's virtualenv, a job timeout, and no PULUMI_OPTION_* reaching the guarded deploy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.conftest import ROOT

SCRIPT = ROOT / ".github" / "scripts" / "guarded-deploy.sh"


def _make_dry_run(target: str) -> str:
    done = subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout


def test_make_install_builds_the_policy_packs_virtualenv() -> None:
    """catalogue: pulumi-cli.policy-pack-needs-its-virtualenv: without policy/venv every preview drctl runs hangs."""
    commands = _make_dry_run("install")
    assert "-m venv policy/venv" in commands
    assert "policy/venv/bin/pip install --quiet -r policy/requirements.txt" in commands
    assert "policy/venv/bin/python -c 'import pulumi_policy'" in commands
    assert "make install" in (ROOT / ".ci" / "run").read_text()


def test_the_policy_packs_settings_say_how_its_virtualenv_is_built() -> None:
    comment = " ".join(line for line in (ROOT / "policy" / "PulumiPolicy.yaml").read_text().splitlines() if "#" in line)
    assert "make policy-venv" in comment and "installs policy/requirements.txt into policy/venv" not in comment


def test_the_deploy_job_has_a_timeout_shorter_than_githubs_six_hours() -> None:
    deploy = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())["jobs"]["deploy"]
    assert 60 <= deploy["timeout-minutes"] < 360


def test_the_guarded_deploy_gives_pulumi_no_option_variables(tmp_path: Path) -> None:
    """catalogue: pulumi-cli.option-environment-variables: PULUMI_OPTION_TARGET would add targets to the guarded
    preview and the update, PULUMI_OPTION_REFRESH would refresh a stack whose region may be down."""
    workspace = tmp_path / "checkout"
    (workspace / ".venv" / "bin").mkdir(parents=True)
    (workspace / ".github").mkdir()
    shutil.copy(ROOT / ".github" / "guard-allow.txt", workspace / ".github" / "guard-allow.txt")
    seen = tmp_path / "seen.jsonl"
    stubs = tmp_path / "bin"
    stubs.mkdir()
    recorder = (
        "#!/usr/bin/env python3\nimport json, os, sys\n"
        f"open({str(seen)!r}, 'a').write(json.dumps({{'argv': sys.argv[1:], 'env': "
        "{k: v for k, v in os.environ.items() if k.startswith('PULUMI_OPTION_')}}) + '\\n')\n"
        "print('{}')\n"
    )
    for stub in (stubs / "pulumi", workspace / ".venv" / "bin" / "drctl"):
        stub.write_text(recorder)
        stub.chmod(0o755)
    env = {
        "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}",
        "STACK": "organization/dr-platform/prod",
        "PULUMI_OPTION_TARGET": "urn:pulumi:prod::dr-platform::aws:rds/instance:Instance::db-primary",
        "PULUMI_OPTION_REFRESH": "true",
    }
    subprocess.run([str(SCRIPT)], cwd=workspace, env=env, check=True, capture_output=True)
    calls = [json.loads(line) for line in seen.read_text().splitlines()]
    assert [call["argv"][0] for call in calls] == ["preview", "guard", "up"]
    assert all(call["env"] == {} for call in calls)
