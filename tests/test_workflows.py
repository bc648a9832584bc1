"""The CI workflows' security properties, read from the YAML (and actionlint, where installed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GITHUB = ROOT / ".github"
WORKFLOWS = {path.stem: path for path in sorted((GITHUB / "workflows").glob("*.yml"))}
ACTION_FILES = [*WORKFLOWS.values(), *sorted((GITHUB / "actions").glob("*/action.yml"))]
# Where a job runs code from a pull request: everything in preview.yml.
PR_WORKFLOWS = ("preview",)
# The only artifacts CI uploads: plans, the guard's verdict, drill reports. Never a preview or state.
ARTIFACT_PATHS = {"out/plan/", "out/guard.json", "out/drill/"}


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load(WORKFLOWS[name].read_text())


def jobs(name: str) -> dict[str, dict[str, Any]]:
    return load(name)["jobs"]


def steps(name: str, job: str) -> list[dict[str, Any]]:
    return jobs(name)[job]["steps"]


def all_steps() -> list[tuple[str, str, dict[str, Any]]]:
    return [(w, j, s) for w in WORKFLOWS for j, job in jobs(w).items() for s in job.get("steps", [])]


def test_the_expected_workflows_exist():
    assert set(WORKFLOWS) == {"preview", "plan-comment", "deploy", "drill"}


@pytest.mark.parametrize("path", ACTION_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_action_is_pinned_to_a_commit_with_its_tag_in_a_comment(path):
    uses = [line.strip() for line in path.read_text().splitlines() if re.match(r"\s*(- )?uses:", line)]
    assert uses
    for line in uses:
        reference = line.split("uses:", 1)[1].strip()
        if reference.startswith("./"):
            continue  # this repository's own composite action, reviewed with the change
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+(\.\d+)*", reference), line


def test_every_workflow_defaults_to_a_read_only_token():
    for name in WORKFLOWS:
        assert load(name)["permissions"] == {"contents": "read"}, name


def test_id_tokens_only_where_a_role_is_assumed():
    holders = {
        (w, j)
        for w in WORKFLOWS
        for j, job in jobs(w).items()
        if (job.get("permissions") or {}).get("id-token") == "write"
    }
    assert holders == {("preview", "gated-plan"), ("deploy", "deploy"), ("drill", "live-drill")}
    assumed = {(w, j) for w, j, s in all_steps() if "configure-aws-credentials" in s.get("uses", "")}
    assert assumed == holders


def test_no_secret_reaches_a_job_that_runs_pull_request_code():
    for name in PR_WORKFLOWS:
        assert "secrets." not in WORKFLOWS[name].read_text(), name
    # No workflow needs a repository secret at all: roles come from OIDC, the secrets key from KMS.
    assert not [w for w in WORKFLOWS if "secrets." in WORKFLOWS[w].read_text()]


def test_pull_requests_get_the_preview_role_only_and_never_run_pulumi():
    """catalogue: pulumi-cli.kms-secrets-manager-decrypts-eagerly"""
    text = WORKFLOWS["preview"].read_text()
    assert "AWS_PREVIEW_ROLE_ARN" in text
    assert "AWS_DEPLOY_ROLE_ARN" not in text
    runs = " ".join(s.get("run", "") for j in jobs("preview") for s in steps("preview", j))
    assert not re.search(r"(^|[\s;&|])pulumi\s", runs)
    assert not [s for j in jobs("preview") for s in steps("preview", j) if "pulumi/actions" in s.get("uses", "")]


def test_the_pr_plan_with_the_preview_role_runs_under_the_read_only_deploy_gate():
    (gated,) = [s for s in steps("preview", "gated-plan") if "deploy-gate" in s.get("run", "")]
    assert re.search(r"drctl deploy-gate --stack \"\$STACK\" --read-only -- ", gated["run"])
    assert jobs("preview")["gated-plan"]["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert jobs("preview")["offline-plan"]["if"] == "github.event.pull_request.head.repo.full_name != github.repository"


def test_checkouts_never_leave_the_token_in_the_workspace():
    checkouts = [s for _, _, s in all_steps() if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts and all(s["with"]["persist-credentials"] is False for s in checkouts)


def test_deploy_runs_from_main_only_and_checks_it_in_the_job():
    deploy = jobs("deploy")["deploy"]
    assert deploy["if"] == "github.ref == 'refs/heads/main'"
    assert deploy["environment"] == "prod"
    first = deploy["steps"][0]
    assert '"$GITHUB_REF" != "refs/heads/main"' in first["run"] and "exit 1" in first["run"]
    assert load("deploy")["concurrency"] == {"group": "deploy-prod", "cancel-in-progress": False}


def test_deploy_runs_preview_guard_and_up_inside_the_deploy_gate():
    (gate,) = [s for s in steps("deploy", "deploy") if "deploy-gate" in s.get("run", "")]
    assert gate["run"] == 'exec .venv/bin/drctl deploy-gate --stack "$STACK" -- .github/scripts/guarded-deploy.sh'
    script = (GITHUB / "scripts" / "guarded-deploy.sh").read_text()
    commands = [line.split()[0:2] for line in script.splitlines() if re.match(r"(pulumi|\.venv/bin/drctl) ", line)]
    assert commands == [["pulumi", "preview"], [".venv/bin/drctl", "guard"], ["pulumi", "up"]]
    assert "--allow-file .github/guard-allow.txt" in script
    for line in script.splitlines():
        if line.startswith("pulumi "):
            assert "--refresh=false" in line and "--policy-pack policy" in line, line
    assert script.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in script
    assert os.access(GITHUB / "scripts" / "guarded-deploy.sh", os.X_OK)
    assert (GITHUB / "guard-allow.txt").is_file()  # the guard fails closed without it


def test_deploy_needs_a_way_to_reach_the_clusters():
    deploy = jobs("deploy")["deploy"]
    assert deploy["runs-on"] == "${{ vars.DEPLOY_RUNNER_LABEL || 'ubuntu-24.04' }}"
    (check,) = [s for s in deploy["steps"] if "DEPLOY_RUNNER_LABEL" in s.get("run", "")]
    # One story with the program: who reaches the clusters is its config (eksPublicAccessCidrs,
    # eksPrivateAccessCidrs); the workflow only needs the runner that is on that list.
    assert 'if [ -z "$DEPLOY_RUNNER_LABEL" ]; then' in check["run"]
    assert "EKS_PUBLIC_ACCESS_CIDRS" not in json.dumps(deploy)


def test_the_pulumi_cli_is_pinned_once_to_the_readmes_minimum():
    version = (GITHUB / "pulumi-version").read_text().strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    minimum = re.search(r"the Pulumi CLI \((\d+\.\d+) or newer\)", (ROOT / "README.md").read_text())
    assert minimum and version == f"{minimum.group(1)}.0"
    sdk = re.search(r"^pulumi==(\d+)\.(\d+)\.\d+$", (ROOT / "requirements.txt").read_text(), re.M)  # exact pin
    assert sdk and (int(sdk.group(1)), int(sdk.group(2))) >= tuple(int(part) for part in minimum.group(1).split("."))
    installs = [(w, s) for w, _, s in all_steps() if s.get("uses", "").startswith("pulumi/actions@")]
    assert installs and all(s["with"]["pulumi-version"] == "${{ steps.cli.outputs.version }}" for _, s in installs)
    assert version not in "".join(p.read_text() for p in WORKFLOWS.values())  # one definition


def test_artifacts_never_include_a_preview_state_or_config():
    uploads = [s for _, _, s in all_steps() if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert uploads and {s["with"]["path"] for s in uploads} <= ARTIFACT_PATHS


def test_plan_comment_finds_the_pr_by_head_sha_and_skips_cancelled_or_superseded_runs():
    workflow = load("plan-comment")
    comment = workflow["jobs"]["comment"]
    assert "conclusion != 'cancelled'" in comment["if"]
    text = WORKFLOWS["plan-comment"].read_text()
    assert "pr.head.sha === run.head_sha" in text
    assert "pr-number" not in text  # nothing the PR's run wrote decides where to comment
    assert not [s for s in comment["steps"] if s.get("uses", "").startswith("actions/checkout@")]
    assert not [s for s in comment["steps"] if "run" in s]  # runs no shell, so no artifact text is executed
    # Downloading and posting only happen when the head commit is still some open PR's head.
    later = comment["steps"][1:]
    assert later and all(s["if"] == "steps.pr.outputs.numbers != '[]'" for s in later)


def run_drill_step(tmp_path: Path, scope: str, scenario: str) -> str:
    """Run the drill step's shell with drctl replaced by a recorder; the scenario it asked for."""
    (step,) = [s for s in steps("drill", "drill") if s.get("name") == "Drill"]
    script = step["run"].replace(".venv/bin/drctl", "echo drctl")
    env = {"PATH": os.environ["PATH"], "SCOPE": scope, "SCENARIO_INPUT": scenario, "GITHUB_EVENT_NAME": "schedule"}
    env["GITHUB_STEP_SUMMARY"] = str(tmp_path / "summary")
    subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, check=True, capture_output=True)
    return (tmp_path / "out/drill/summary.md").read_text()


@pytest.mark.parametrize(
    ("scope", "scenario", "expected"),
    [
        ("partial", "by-scope", "--scenario region-failure"),
        ("full", "by-scope", "--scenario all"),
        ("full", "replica-lag", "--scenario replica-lag"),
    ],
)
def test_the_drill_scope_decides_what_runs(tmp_path, scope, scenario, expected):
    assert expected in run_drill_step(tmp_path, scope, scenario)


def test_the_drill_schedules_map_to_partial_and_full():
    workflow = load("drill")
    crons = [entry["cron"] for entry in workflow[True]["schedule"]]  # YAML 1.1 reads `on` as true
    scope = workflow["jobs"]["drill"]["env"]["SCOPE"]
    assert f"github.event.schedule == '{crons[1]}' && 'full'" in scope and scope.endswith("|| 'partial' }}")


def test_codeowners_cover_what_guards_the_platform():
    owners = (GITHUB / "CODEOWNERS").read_text()
    for path in ("/.github/", "/policy/", "/bootstrap/", "/automation/"):
        assert re.search(rf"^{re.escape(path)}\s+@\S+", owners, re.M), path


def code_owners(path: str) -> list[str]:
    """The owners GitHub requests for `path`: the last matching line wins.

    catalogue: github.codeowners-last-match-wins
    """
    owners: list[str] = []
    for line in (GITHUB / "CODEOWNERS").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        pattern, *names = line.split()
        anchored = pattern.startswith("/")
        body = pattern.strip("/").replace(".", r"\.").replace("**", "\0").replace("*", "[^/]*").replace("\0", ".*")
        regex = ("" if anchored else "(.*/)?") + body + ("(/.*)?" if pattern != "*" else "")
        if pattern == "*" or re.fullmatch(regex, path):
            owners = names
    return owners


@pytest.mark.parametrize(
    "path",
    [
        # What the deploy job executes with the deploy role and the decrypted secrets.
        "__main__.py",
        "components/database.py",
        "components/iam.py",
        "automation/runbooks/commands.py",
        "policy/policies.py",
        "Pulumi.yaml",
        "Pulumi.prod.yaml",
        "pyproject.toml",
        "requirements.lock",
        "requirements-ci.in",
        "policy/requirements.lock",
        # What decides how it runs, and what it may skip.
        ".github/workflows/deploy.yml",
        ".github/actions/setup/action.yml",
        ".github/scripts/guarded-deploy.sh",
        ".github/guard-allow.txt",
        ".github/CODEOWNERS",
        ".github/pulumi-version",
        "bootstrap/iam.py",
        "tools/chart_keys.py",
    ],
)
def test_every_file_the_deploy_job_runs_needs_a_code_owner(path):
    """The program runs with the deploy role and can call AWS around the guard: a change to it is a change to
    what CI may do, so the same review applies as to the guard itself."""
    assert (ROOT / path).exists(), path
    assert code_owners(path) == ["@acme/platform-owners"], path


def test_the_plan_comment_says_the_pr_wrote_it_and_updates_only_its_own_comment():
    """A PR's code computes its own plan, so a PR can show a fake "no changes": the comment must not pass for
    evidence, and a marker another author wrote must not be mistaken for this workflow's comment."""
    text = WORKFLOWS["plan-comment"].read_text()
    assert "this PR\\'s own code" in text and "no evidence for a review" in text
    assert "c.user.login === 'github-actions[bot]'" in text
    assert "c.user.type === 'Bot'" not in text


def test_deploy_cannot_be_called_from_another_workflow_or_run_for_pull_requests():
    """A `workflow_call` trigger would let any branch's workflow run main's deploy.yml, whose job_workflow_ref
    (the OIDC subject's ref) is then main's (catalogue: github.oidc-sub-template)."""
    triggers = load("deploy")[True]  # YAML 1.1 reads `on` as true
    assert set(triggers) == {"push", "workflow_dispatch"} and triggers["push"] == {"branches": ["main"]}
    for name in WORKFLOWS:
        assert not {"pull_request_target", "workflow_call"} & set(load(name)[True]), name


def test_no_expression_is_expanded_inside_a_shell_script():
    """Script injection: `${{ ... }}` in `run:` is pasted into the script before bash parses it; values reach
    scripts through `env:` only."""
    scripts = [s["run"] for _, _, s in all_steps() if "run" in s]
    setup = yaml.safe_load((GITHUB / "actions" / "setup" / "action.yml").read_text())
    scripts += [s["run"] for s in setup["runs"]["steps"] if "run" in s]
    assert scripts and not [script for script in scripts if "${{" in script]


def test_no_cache_is_restored_into_a_job():
    """A cache written by a branch's job could be restored by a later job of the same scope: CI installs from
    the hash-locked requirements every time and restores nothing."""
    for path in ACTION_FILES:
        text = path.read_text()
        assert "actions/cache" not in text and not re.search(r"^\s+cache:", text, re.M), path


@pytest.mark.parametrize(
    ("lock", "inputs"),
    [
        ("requirements.lock", ("requirements.txt", "requirements-dev.txt")),
        ("policy/requirements.lock", ("policy/requirements.txt",)),
    ],
)
def test_ci_installs_from_lock_files_with_hashes(lock, inputs):
    text = (ROOT / lock).read_text()
    pinned = re.findall(r"^([A-Za-z0-9._-]+)==\S+ \\$", text, re.M)
    assert pinned and text.count("--hash=sha256:") >= len(pinned)
    wanted = {
        re.split(r"[<>=~!\[ ;]", line)[0].lower().replace("_", "-")
        for name in inputs
        for line in (ROOT / name).read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert wanted <= {p.lower().replace("_", "-") for p in pinned}


def test_the_setup_action_installs_only_hashed_requirements():
    action = (GITHUB / "actions" / "setup" / "action.yml").read_text()
    assert "--require-hashes --no-deps -r requirements.lock" in action
    assert "--require-hashes --no-deps -r policy/requirements.lock" in action
    assert "pip install --quiet -r requirements.txt" not in action


def actionlint() -> str | None:
    return shutil.which("actionlint") or next(
        (str(p) for p in (Path.home() / "go" / "bin" / "actionlint",) if p.is_file()), None
    )


@pytest.mark.skipif(
    actionlint() is None,
    reason="actionlint not installed (go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12)",
)
def test_actionlint_finds_nothing():
    result = subprocess.run(
        [actionlint(), *map(str, WORKFLOWS.values())], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- live drills on the drill stack -----------------------------------------------------------------------


def run_live_drill_step(tmp_path: Path, scope: str, exit_code: int, inject_fault: str = "") -> tuple[int, str]:
    """The live drill step's shell with drctl replaced by a script that records its arguments and exits."""
    (step,) = [s for s in steps("drill", "live-drill") if s.get("name") == "Live drill"]
    fake = tmp_path / "drctl"
    fake.write_text(f'#!/usr/bin/env bash\necho "drctl $*"\nexit {exit_code}\n')
    fake.chmod(0o755)
    script = step["run"].replace(".venv/bin/drctl", str(fake))
    env = {"PATH": os.environ["PATH"], "SCOPE": scope, "STACK": "organization/dr-platform/drill", "GITHUB_RUN_ID": "7"}
    env.update({"GITHUB_STEP_SUMMARY": str(tmp_path / "summary"), "INJECT_FAULT": inject_fault})
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True)
    return done.returncode, (tmp_path / "summary").read_text()


@pytest.mark.parametrize(("drctl_exit", "job_exit"), [(0, 0), (1, 1), (5, 5)])
def test_the_live_drill_job_fails_when_the_drill_fails_or_misses_an_objective(tmp_path, drctl_exit, job_exit):
    code, summary = run_live_drill_step(tmp_path, "partial", drctl_exit)

    assert code == job_exit
    assert "drill --live --stack organization/dr-platform/drill --scope partial --yes" in summary


def test_a_full_live_drill_injects_the_fault_only_when_the_repository_says_so(tmp_path):
    runs = {case: tmp_path / case for case in ("full", "full-fault", "partial-fault")}
    for directory in runs.values():
        directory.mkdir()
    assert "--inject-fault" not in run_live_drill_step(runs["full"], "full", 0)[1]
    assert "--inject-fault --hold-minutes 30" in run_live_drill_step(runs["full-fault"], "full", 0, "true")[1]
    assert "--inject-fault" not in run_live_drill_step(runs["partial-fault"], "partial", 0, "true")[1]


def test_live_drills_run_on_the_drill_stack_with_the_drill_role_from_main():
    """catalogue: iam.role-max-session-duration"""
    from bootstrap.iam import drill_subject

    job = jobs("drill")["live-drill"]
    assert job["environment"] == "drill" and job["needs"] == "drill"
    assert job["if"].startswith("github.ref == 'refs/heads/main'")
    assert job["env"]["STACK"] == "${{ vars.DRILL_STACK || 'organization/dr-platform/drill' }}"
    assert job["env"]["SCOPE"] == jobs("drill")["drill"]["env"]["SCOPE"]  # the same schedules and scopes
    # Its own self-hosted runner: hours-long drills outlive GitHub-hosted jobs (6 h), and the deploy runner's
    # group admits deploy.yml only.
    assert job["runs-on"] == "${{ vars.DRILL_RUNNER_LABEL || 'ubuntu-24.04' }}"
    (check,) = [s for s in job["steps"] if "DRILL_RUNNER_LABEL" in s.get("run", "")]
    assert 'if [ -z "$DRILL_RUNNER_LABEL" ]; then' in check["run"] and "exit 1" in check["run"]
    (credentials,) = [s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", "")]
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DRILL_ROLE_ARN }}"
    assert credentials["with"]["role-duration-seconds"] == 43200
    # The role trusts exactly this workflow file in this environment (bootstrap/iam.py).
    assert drill_subject("acme/dr-platform", job["environment"]).endswith(
        "/.github/workflows/drill.yml@refs/heads/main"
    )
    (upload,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["if"] == "always()" and upload["with"]["path"] == "out/drill/"
