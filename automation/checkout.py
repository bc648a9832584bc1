"""drctl's own updates run the reviewed program: a clean checkout of main, or a recorded reason.

CI deploys only what was merged to main; a drctl run from a laptop must not
deploy a branch, an old commit or uncommitted edits in the regions it
updates. `require_reviewed_checkout` refuses otherwise unless the operator
gives a reason, which the run records.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from automation.errors import DrctlError

MAIN_REFS = ("origin/main", "main")


def require_reviewed_checkout(project_dir: Path, override_reason: str | None) -> dict[str, str]:
    """What the run records about the checkout; a DrctlError when it is not the reviewed main."""
    commit = _git(project_dir, "rev-parse", "HEAD")
    problems: list[str] = []
    if commit is None:
        problems.append(f"{project_dir} is not a git checkout")
        commit = "unknown"
    else:
        dirty = _git(project_dir, "status", "--porcelain") or ""
        if dirty.strip():
            files = ", ".join(line[3:] for line in dirty.splitlines()[:5])
            problems.append(f"the working tree has uncommitted changes ({files})")
        main = next((ref for ref in MAIN_REFS if _git(project_dir, "rev-parse", "--verify", "-q", ref)), None)
        main_commit = _git(project_dir, "rev-parse", main) if main else None
        if main_commit is None:
            problems.append("there is no main branch to compare with")
        elif main_commit != commit:
            problems.append(f"HEAD {commit[:12]} is not the tip of {main} ({main_commit[:12]})")
    recorded = {"checkout": commit}
    if not problems:
        return recorded
    if override_reason and override_reason.strip():
        return {**recorded, "checkout_override": f"{'; '.join(problems)}: {override_reason.strip()}"}
    raise DrctlError(
        "refusing to update the stack from this checkout: " + "; ".join(problems),
        hint="`git fetch && git checkout origin/main` and commit or stash local edits (CI deploys only reviewed "
        "main); in an emergency pass --unreviewed-checkout-reason '...', which the journal and the report record",
    )


def _git(project_dir: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=project_dir, capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None
