"""drctl's own updates run the reviewed program: a clean checkout of main, or a recorded reason.

CI deploys only what was merged to main; a drctl run from a laptop must not
deploy a branch, an old commit or uncommitted edits in the regions it
updates. `require_reviewed_checkout` refuses otherwise unless the operator
gives a reason, which the run records in its attempts.

One edit is drctl's own and never counts: the DR keys of the stack's
`Pulumi.<stack>.yaml`, which the CLI keeps as the stack config and drctl
writes from the DR state authority (automation/dr_state.py). Any other change
to that file, or to any other file, does.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from automation.dr_state import differs_only_in_dr_keys, stack_file
from automation.errors import DrctlError

MAIN_REFS = ("origin/main", "main")


def require_reviewed_checkout(project_dir: Path, override_reason: str | None, stack: str = "") -> dict[str, str]:
    """What the attempt records about the checkout; a DrctlError when it is not the reviewed main."""
    commit = _git(project_dir, "rev-parse", "HEAD")
    problems: list[str] = []
    if commit is None:
        problems.append(f"{project_dir} is not a git checkout")
        commit = "unknown"
    else:
        dirty = uncommitted_changes(project_dir, stack)
        if dirty:
            problems.append(f"the working tree has uncommitted changes ({', '.join(dirty[:5])})")
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
        hint="`git fetch && git checkout origin/main`; changes to the program or its config go through review "
        "(CI deploys only reviewed main). drctl keeps the DR keys of Pulumi.<stack>.yaml itself: leave that file "
        "to it. In an emergency pass --unreviewed-checkout-reason '...', which the journal and the report record",
    )


def uncommitted_changes(project_dir: Path, stack: str = "") -> list[str]:
    """Paths with uncommitted changes, except `Pulumi.<stack>.yaml` when only its DR keys differ from HEAD."""
    output = _git(project_dir, "status", "--porcelain=v1", "-z", "--untracked-files=all", strip=False) or ""
    entries = output.split("\0")
    paths: list[str] = []
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        if "R" in status or "C" in status:
            index += 1  # a rename or copy is followed by its source path
        paths.append(path)
    if not stack:
        return paths
    # Porcelain paths are relative to the repository's top, `git show HEAD:./x` to the working directory.
    own = (_git(project_dir, "rev-parse", "--show-prefix") or "") + stack_file(Path(), stack).name
    name = stack_file(Path(), stack).name
    return [path for path in paths if not (path == own and _only_dr_keys_changed(project_dir, name))]


def committed_text(project_dir: Path, path: str) -> str | None:
    """The file as HEAD has it; None when it is not committed (or this is no git checkout)."""
    return _git(project_dir, "show", f"HEAD:./{path}", strip=False)


def _only_dr_keys_changed(project_dir: Path, path: str) -> bool:
    committed = committed_text(project_dir, path)
    working = Path(project_dir, path)
    return committed is not None and working.exists() and differs_only_in_dr_keys(committed, working.read_text())


def _git(project_dir: Path, *args: str, strip: bool = True) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=project_dir, capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() if strip else result.stdout
