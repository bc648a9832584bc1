"""A fake `pulumi` executable that the real `pulumi.automation` SDK drives in tests.

It answers the commands drctl's adapter sends (`version`, `whoami`, `stack
select|init|output|history|export|import`, `config`, `config set-all`,
`preview`, `up`, `refresh`, `import`, `cancel`) the way the real CLI does where
drctl depends on it (catalogue/pulumi-cli.yaml; each behaviour cites its id):

- config lives in the project's `Pulumi.<stack>.yaml` (the command's working
  directory), not in the backend; `config set-all` rewrites that file with
  every value quoted as a string (catalogue: pulumi-cli.config-in-project-stack-file);
- flags are read from `PULUMI_OPTION_<FLAG>` environment variables when the
  command is built: a bool or string flag given on the command line wins, an
  array flag adds the command line's values to the variable's
  (catalogue: pulumi-cli.option-environment-variables);
- `--refresh` is a string flag; without it no refresh runs, except of the
  resources whose state says `refreshBeforeUpdate` within the update's scope
  (catalogue: pulumi-cli.refresh-flag-explicit,
  pulumi-cli.refresh-before-update-ignores-refresh-flag);
- engine events go to `--event-log`: a gRPC Events stream for `tcp://` targets
  (CLI newer than 3.205) or JSON lines to a file;
- resource diagnostics are printed on stdout under "Diagnostics:", and a
  failed update prints nothing on stderr (catalogue: pulumi-cli.diagnostics-on-stdout);
- a policy pack runs only from its virtualenv: without one that imports
  pulumi_policy the CLI hangs at "Loading policy packs" and ignores
  interrupts (catalogue: pulumi-cli.policy-pack-needs-its-virtualenv); its
  violations are policy events and a "Policies:" block, not diagnostics
  (catalogue: pulumi-cli.policy-violations-not-in-diagnostics);
- `up` takes the DIY backend's lock file under `.pulumi/locks/`; a second `up`
  fails with "the stack is currently locked by 1 lock(s)" on stderr
  (catalogue: pulumi-cli.diy-lock-refuses-second-update);
- failures exit with 1, a missing stack with 6 (catalogue: pulumi-cli.exit-codes);
- every preview and update runs a "provider plugin" in a process group of its
  own, which the CLI stops when it exits normally and which outlives a SIGKILL
  of the CLI (catalogue: pulumi-cli.kill-leaves-lock-and-pending);
- a pending operation is journaled before each step starts; SIGINT during a
  preview or an update cancels gracefully (the step in flight finishes, the
  lock is released), a second SIGINT terminates, SIGKILL leaves the lock and
  the pending operations behind (catalogue: pulumi-cli.sigint-cancels-gracefully);
- an update over pending operations warns and goes on; it drops the pending
  updates and deletes and keeps the pending creates
  (catalogue: pulumi-cli.pending-operations-warn-only); `refresh
  --clear-pending-creates` drops them, `--import-pending-creates` turns them
  into imports that the refresh then drops without importing
  (catalogue: pulumi-cli.import-pending-creates-drops-the-record);
- the root stack's outputs follow every update, targeted or not
  (catalogue: pulumi-cli.targeted-update-updates-outputs);
- `cancel` on a DIY backend deletes the lock files and stops nothing
  (catalogue: pulumi-cli.diy-cancel-only-deletes-lock).

State and behaviour live in `$FAKE_PULUMI_HOME` (see tests/fake_pulumi/__init__.py):
`stacks/<org>/<project>/<stack>.json`, `.pulumi/locks/...`, `scenario.json`
(what the next preview/up does) and `calls.jsonl` (every invocation, for tests
to assert on what reached the CLI).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

VERSION = "v3.260.0"
HOME = Path(os.environ.get("FAKE_PULUMI_HOME", ""))
PLAINTEXT_SECRET = "fake-plaintext-secret-value"
"""What `stack export --show-secrets` decrypts; tests look for it in files drctl leaves behind."""
PLUGIN_LIFETIME_SECONDS = 60
"""A plugin whose CLI died is an orphan; it gives up by itself after this long (so a failing test leaks nothing)."""

# Flags of the commands drctl uses: name -> type (bool | string | array | refresh).
_FLAGS = {
    "yes": "bool",
    "skip-preview": "bool",
    "non-interactive": "bool",
    "refresh": "refresh",
    "target": "array",
    "exclude": "array",
    "target-dependents": "bool",
    "exclude-dependents": "bool",
    "replace": "array",
    "policy-pack": "array",
    "policy-pack-config": "array",
    "message": "string",
    "event-log": "string",
    "exec-kind": "string",
    "stack": "string",
    "client": "string",
    "json": "bool",
    "diff": "bool",
    "show-secrets": "bool",
    "plaintext": "array",
    "secret": "array",
    "path": "bool",
    "file": "string",
    "page-size": "string",
    "page": "string",
    "color": "string",
    "continue-on-error": "bool",
    "clear-pending-creates": "bool",
    "import-pending-creates": "array",
    "expect-no-changes": "bool",
    "run-program": "bool",
    "secrets-provider": "string",
    "generate-code": "bool",
    "parent": "string",
    "provider": "string",
    "protect": "bool",
}

EXIT_FAILED = 1  # catalogue: pulumi-cli.exit-codes
EXIT_STACK_NOT_FOUND = 6


class CliError(Exception):
    def __init__(self, message: str, *, stdout: str = "", code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.stdout = stdout
        self.code = code


# --- arguments --------------------------------------------------------------------------------


def parse(argv: list[str]) -> tuple[list[str], dict[str, Any], set[str]]:
    """Positional words, flag values, and the flags given explicitly on the command line."""
    # catalogue: pulumi-cli.option-environment-variables: the variables are applied when the command is built,
    # before the command line is parsed; an array flag then appends what the command line gives.
    flags: dict[str, Any] = {}
    from_environment: set[str] = set()
    for name, kind in _FLAGS.items():
        env_value = os.environ.get("PULUMI_OPTION_" + name.replace("-", "_").upper())
        if env_value is None:
            continue
        from_environment.add(name)
        if kind == "bool":
            if env_value.lower() in ("true", "1"):
                flags[name] = True
            elif env_value.lower() in ("false", "0"):
                flags[name] = False
        elif kind == "array":
            flags[name] = next(csv.reader([env_value]), []) if env_value else []
        else:
            flags[name] = env_value
    words: list[str] = []
    explicit: set[str] = set()
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        if arg == "--":
            words.extend(argv[index:])
            break
        if not arg.startswith("--"):
            words.append(arg)
            continue
        name, has_value, value = arg[2:].partition("=")
        kind = _FLAGS.get(name)
        if kind is None:
            raise CliError(f"unknown flag: --{name}", code=2)
        explicit.add(name)
        if kind == "bool":
            flags[name] = value.lower() in ("true", "1") if has_value else True
        elif kind == "refresh":
            flags[name] = value if has_value else "true"  # NoOptDefVal "true"
        else:
            if not has_value:
                value = argv[index]
                index += 1
            if kind == "array":
                flags.setdefault(name, []).append(value)
            else:
                flags[name] = value
    return words, flags, explicit | from_environment


# --- the backend and the project's stack file ----------------------------------------------------------


def stack_file(stack: str) -> Path:
    return HOME / "stacks" / f"{stack}.json"


def lock_dir(stack: str) -> Path:
    return HOME / ".pulumi" / "locks" / stack


def load_stack(stack: str) -> dict[str, Any]:
    path = stack_file(stack)
    if not path.exists():
        raise CliError(f"no stack named '{stack.rsplit('/', 1)[-1]}' found", code=EXIT_STACK_NOT_FOUND)
    return json.loads(path.read_text())


def save_stack(stack: str, document: dict[str, Any]) -> None:
    path = stack_file(stack)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2))
    temporary.replace(path)


def project_stack_file(stack: str) -> Path:
    """`Pulumi.<stack>.yaml` of the project the command runs in (its working directory)."""
    # catalogue: pulumi-cli.config-in-project-stack-file
    project = Path.cwd().resolve()
    if HOME.resolve() not in project.parents:
        raise CliError(f"the fake CLI runs only in a project under {HOME} (it writes config there), not in {project}")
    return project / f"Pulumi.{stack.rsplit('/', 1)[-1]}.yaml"


def read_project_config(stack: str) -> dict[str, str]:
    path = project_stack_file(stack)
    document = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    return {key: _config_text(value) for key, value in (document.get("config") or {}).items()}


def write_project_config(stack: str, values: dict[str, str]) -> None:
    """Set the keys, every value re-marshalled as a string, as the real CLI does to the whole file."""
    path = project_stack_file(stack)
    document = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    config = {key: _config_text(value) for key, value in (document.get("config") or {}).items()}
    config.update(values)
    document["config"] = config
    path.write_text(yaml.safe_dump(document, sort_keys=False, default_flow_style=False))


def _config_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def scenario() -> dict[str, Any]:
    path = HOME / "scenario.json"
    return json.loads(path.read_text()) if path.exists() else {}


def acquire_lock(stack: str) -> Path:
    """The DIY backend's lock: refuse when another lock file exists, else write ours."""
    # catalogue: pulumi-cli.diy-lock-refuses-second-update
    directory = lock_dir(stack)
    others = sorted(directory.glob("*.json")) if directory.exists() else []
    if others:
        lines = [
            f"the stack is currently locked by {len(others)} lock(s). Either wait for the other process(es) to end "
            "or delete the lock file with `pulumi cancel`."
        ]
        for other in others:
            info = json.loads(other.read_text())
            lines.append(
                f"  file://{other}?no_tmp_dir=true: created by {info['username']}@{info['hostname']} "
                f"(pid {info['pid']}) at {info['timestamp']}"
            )
        raise CliError("\n".join(lines))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4()}.json"
    path.write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "username": os.environ.get("USER", "runner"),
                "hostname": socket.gethostname(),
                "timestamp": datetime.now(UTC).isoformat(),
            }
        )
    )
    return path


# --- engine events --------------------------------------------------------------------------------


class EventSink:
    """`--event-log`: gRPC Events stream (tcp://) or JSON lines in a file."""

    def __init__(self, target: str | None) -> None:
        self.sequence = 0
        self._file = None
        self._queue: Any = None
        self._call: Any = None
        if not target:
            return
        if target.startswith("tcp://"):
            import queue
            import threading

            import grpc
            from pulumi.runtime.proto import events_pb2, events_pb2_grpc

            self._queue = queue.Queue()
            channel = grpc.insecure_channel(target.removeprefix("tcp://"))
            stub = events_pb2_grpc.EventsStub(channel)

            def requests() -> Any:
                while (item := self._queue.get()) is not None:
                    yield events_pb2.EventRequest(event=item)

            self._call = threading.Thread(target=lambda: stub.StreamEvents(requests()), daemon=True)
            self._call.start()
        else:
            self._file = open(target, "a", encoding="utf-8")  # noqa: SIM115

    def emit(self, **payload: Any) -> None:
        self.sequence += 1
        line = json.dumps({"sequence": self.sequence, "timestamp": int(time.time()), **payload})
        if self._queue is not None:
            self._queue.put(line)
        elif self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        self.emit(cancelEvent={})
        if self._queue is not None:
            self._queue.put(None)
            self._call.join(timeout=5)
        if self._file is not None:
            self._file.close()


# --- operations --------------------------------------------------------------------------------


class Signals:
    """The CLI's cancellation scope: the first SIGINT/SIGTERM cancels, the second terminates."""

    def __init__(self) -> None:
        self.count = 0
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        self.count += 1
        name = "^C" if signum == signal.SIGINT else "SIGTERM"
        if self.count == 1:
            print(
                f"{name} received; cancelling. If you would like to terminate immediately, press {name} again.\n"
                "Note that terminating immediately may lead to orphaned resources and other inconsistencies.",
                flush=True,
            )
        else:
            print(f"{name} received; terminating", flush=True)


def start_plugin() -> subprocess.Popen[bytes]:
    """A provider plugin: its own process group, alive until its CLI stops it, logging that it acts."""
    # catalogue: pulumi-cli.kill-leaves-lock-and-pending (plugins survive a SIGKILL of the CLI)
    log = HOME / "plugin-activity.log"
    script = (
        f"end=$(( $(date +%s) + {PLUGIN_LIFETIME_SECONDS} )); "
        f'while [ "$(date +%s)" -lt "$end" ]; do echo "$$ $(date +%s.%N)" >> "{log}"; sleep 0.1; done'
    )
    process = subprocess.Popen(
        ["/bin/sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    (HOME / "plugins").mkdir(exist_ok=True)
    (HOME / "plugins" / str(process.pid)).write_text(str(os.getpid()))
    return process


def load_policy_packs(packs: list[str], sink: EventSink) -> None:
    """A pack runs in its virtualenv; without one that imports pulumi_policy, loading never finishes."""
    # catalogue: pulumi-cli.policy-pack-needs-its-virtualenv
    for pack in packs:
        settings = yaml.safe_load((Path(pack) / "PulumiPolicy.yaml").read_text()) or {}
        venv = ((settings.get("runtime") or {}).get("options") or {}).get("virtualenv", "venv")
        python = Path(pack) / venv / "bin" / "python"
        ready = python.exists() and subprocess.run([python, "-c", "import pulumi_policy"], check=False).returncode == 0
        if not ready:
            print("Loading policy packs...: starting", flush=True)
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, signal.SIG_IGN)
            while True:  # measured: stuck at the analyzer's GetPluginInfo, deaf to SIGTERM
                time.sleep(1)


def policy_violations(plan: dict[str, Any], sink: EventSink) -> str:
    """The scenario's violations as policy events and the "Policies:" block; "" when there are none."""
    # catalogue: pulumi-cli.policy-violations-not-in-diagnostics
    violations = plan.get("policy_violations") or []
    if not violations:
        return ""
    lines = ["Policies:", "    ❌ dr-platform@v0.1.0 (local: policy)"]
    for item in violations:
        level = item.get("level", "mandatory")
        sink.emit(
            policyEvent={
                "resourceUrn": item["urn"],
                "message": item["message"],
                "color": "never",
                "policyName": item["policy"],
                "policyPackName": "dr-platform",
                "policyPackVersion": "0.1.0",
                "policyPackVersionTag": "0.1.0",
                "enforcementLevel": level,
            }
        )
        subject = f"{item['urn'].split('::')[-2]}: {item['urn'].split('::')[-1]}"
        lines += [f"        - [{level}]  {item['policy']}  ({subject})", f"          {item['message']}"]
    return "\n".join(lines)


def _steps(plan: dict[str, Any], flags: dict[str, Any], state: dict[str, Any]) -> list[dict[str, Any]]:
    """The scenario's steps within the targets; everything else is `same`."""
    targets = flags.get("target") or []
    excluded = set(flags.get("exclude") or [])
    _check_targets([*targets, *excluded], state, plan)
    steps = []
    for step in plan.get("steps", []):
        in_scope = (not targets or step["urn"] in targets) and step["urn"] not in excluded
        steps.append({**step, "op": step["op"] if in_scope else "same"})
    return steps


def _check_targets(urns: list[str], state: dict[str, Any], plan: dict[str, Any] | None = None) -> None:
    known = {step["urn"] for step in (plan or {}).get("steps", [])} | {
        resource["urn"] for resource in state["deployment"].get("resources", [])
    }
    unknown = [urn for urn in urns if urn not in known]
    if unknown:
        raise CliError(
            f"no resource named '{unknown[0]}' found", stdout=_diagnostics([("", f"no resource named '{unknown[0]}'")])
        )


def _refreshed_before_update(state: dict[str, Any], flags: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources refreshed whatever --refresh says: refreshBeforeUpdate, within the targets and exclusions."""
    # catalogue: pulumi-cli.refresh-before-update-ignores-refresh-flag
    targets = flags.get("target") or []
    excluded = set(flags.get("exclude") or [])
    return [
        resource
        for resource in state["deployment"].get("resources", [])
        if resource.get("refreshBeforeUpdate")
        and (not targets or resource["urn"] in targets)
        and resource["urn"] not in excluded
    ]


def _diagnostics(errors: list[tuple[str, str]]) -> str:
    # catalogue: pulumi-cli.diagnostics-on-stdout
    lines = ["Diagnostics:"]
    for urn, message in errors:
        subject = f"{urn.split('::')[-2]} ({urn.split('::')[-1]})" if urn else "pulumi:pulumi:Stack"
        lines += [f"  {subject}:", f"    error: {message}", ""]
    return "\n".join(lines)


def _counts(steps: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for step in steps:
        counts[step["op"]] = counts.get(step["op"], 0) + 1
    return counts


def _pre_event(step: dict[str, Any]) -> dict[str, Any]:
    return {"resourcePreEvent": {"metadata": {"op": step["op"], "urn": step["urn"], "type": step.get("type", "")}}}


def operation(command: str, stack: str, flags: dict[str, Any], record: dict[str, Any]) -> int:
    state = load_stack(stack)
    plan = scenario().get(command, {})
    refresh = str(flags.get("refresh", "false")).lower() in ("true", "1")
    record["refresh"] = refresh
    sink = EventSink(flags.get("event-log"))
    sink.emit(preludeEvent={"config": read_project_config(stack)})
    label = "Previewing update" if command == "preview" else "Updating"
    print(f"{label} ({stack.rsplit('/', 1)[-1]})", flush=True)
    lock: Path | None = None
    signals = Signals()
    plugin = start_plugin()
    with open(HOME / "started.jsonl", "a", encoding="utf-8") as started:
        started.write(json.dumps({"command": command, "pid": os.getpid()}) + "\n")
    try:
        if command == "up":
            lock = acquire_lock(stack)
        load_policy_packs(flags.get("policy-pack") or [], sink)
        base_pending = state["deployment"].get("pending_operations") or []
        if base_pending and command == "up":
            # catalogue: pulumi-cli.pending-operations-warn-only
            print(
                f"warning: Attempting to deploy or update resources with {len(base_pending)} pending operations "
                "from previous deployment.",
                flush=True,
            )
        resources = state["deployment"].get("resources", [])
        refreshed = resources if refresh else _refreshed_before_update(state, flags)
        record["refreshed"] = [resource["urn"] for resource in refreshed]
        for resource in refreshed:
            sink.emit(**_pre_event({"op": "refresh", "urn": resource["urn"], "type": resource.get("type", "")}))
        steps = _steps(plan, flags, state)
        changing = [step for step in steps if step["op"] != "same"]
        for step in steps:
            sink.emit(**_pre_event(step))
        kept_creates = [op for op in base_pending if op.get("type") == "creating"]
        if command == "up" and changing:
            kinds = {"create": "creating", "update": "updating", "delete": "deleting", "replace": "creating"}
            state["deployment"]["pending_operations"] = [
                *base_pending,
                *(
                    {"resource": {"urn": step["urn"], "type": step.get("type", "")}, "type": kinds.get(step["op"])}
                    for step in changing
                ),
            ]
            save_stack(stack, state)
        # A step in flight finishes on the first signal unless the scenario says the CLI hangs past every
        # interrupt (a provider call stuck in the kernel: only SIGKILL ends it).
        stop_at = 1_000_000 if plan.get("ignore_interrupts") else 1
        deadline = time.monotonic() + float(plan.get("delay_seconds", 0))
        while time.monotonic() < deadline and signals.count < stop_at:
            time.sleep(0.02)
        if signals.count:
            # catalogue: pulumi-cli.sigint-cancels-gracefully
            if command == "up" and signals.count < 2:
                _apply(state, steps, plan)
                state["deployment"]["pending_operations"] = kept_creates
                save_stack(stack, state)
            print(f"error: {'update' if command == 'up' else 'preview'} canceled", flush=True)
            return EXIT_FAILED
        policies = policy_violations(plan, sink)
        failure = plan.get("fail")
        if failure or policies:
            errors = [(item.get("urn", ""), item["message"]) for item in (failure or {}).get("diagnostics", [])]
            for urn, message in errors:
                sink.emit(
                    diagnosticEvent={"urn": urn, "message": message + "\n", "severity": "error", "color": "never"}
                )
            failed = f"{'update' if command == 'up' else 'preview'} failed"
            raise CliError("", stdout="\n".join(filter(None, [policies, _diagnostics([*errors, ("", failed)])])))
        if command == "up":
            _apply(state, steps, plan)
            state["deployment"]["pending_operations"] = kept_creates
            state.setdefault("history", []).insert(0, _history(flags, steps))
            save_stack(stack, state)
        sink.emit(summaryEvent={"resourceChanges": _counts(steps), "durationSeconds": 0, "maybeCorrupt": False})
        print(f"Resources:\n    {_counts(steps)}", flush=True)
        return 0
    finally:
        plugin.kill()  # the CLI closes its plugins when it exits (a SIGKILL of the CLI skips this)
        plugin.wait()
        if lock is not None:
            lock.unlink(missing_ok=True)
        sink.close()


def _apply(state: dict[str, Any], steps: list[dict[str, Any]], plan: dict[str, Any]) -> None:
    resources = {resource["urn"]: resource for resource in state["deployment"].get("resources", [])}
    for step in steps:
        if step["op"] in ("create", "update", "replace"):
            kept = resources.get(step["urn"], {})
            resources[step["urn"]] = {**kept, "urn": step["urn"], "type": step.get("type", "")}
        elif step["op"] == "delete":
            resources.pop(step["urn"], None)
    state["deployment"]["resources"] = list(resources.values())
    if "outputs" in plan:  # catalogue: pulumi-cli.targeted-update-updates-outputs
        state["outputs"] = plan["outputs"]


def refresh_command(stack: str, flags: dict[str, Any], record: dict[str, Any]) -> int:
    """`pulumi refresh` as drctl may run it: resolving pending creates, scoped by --target."""
    lock = acquire_lock(stack)
    try:
        state = load_stack(stack)
        pending = state["deployment"].get("pending_operations") or []
        imports = flags.get("import-pending-creates") or []
        if len(imports) % 2:
            raise CliError("each URN must be followed by an ID: found an odd number of entries")
        ids = dict(zip(imports[::2], imports[1::2], strict=True))
        # catalogue: pulumi-cli.import-pending-creates-drops-the-record: the op becomes "importing" first...
        for op in pending:
            if op.get("type") == "creating" and op["resource"]["urn"] in ids:
                op.update(type="importing", id=ids[op["resource"]["urn"]])
        if flags.get("clear-pending-creates"):
            pending = [op for op in pending if op.get("type") != "creating"]
        state["deployment"]["pending_operations"] = pending
        save_stack(stack, state)
        record["targets"] = flags.get("target") or []
        _check_targets(record["targets"], state)
        # ...and the refresh keeps only pending creates: the import is lost, neither done nor pending.
        state["deployment"]["pending_operations"] = [op for op in pending if op.get("type") == "creating"]
        record["refreshed"] = [
            resource["urn"]
            for resource in state["deployment"].get("resources", [])
            if not record["targets"] or resource["urn"] in record["targets"]
        ]
        save_stack(stack, state)
        print(f"Refreshing ({stack.rsplit('/', 1)[-1]})", flush=True)
        return 0
    finally:
        lock.unlink(missing_ok=True)


def import_resource(stack: str, words: list[str], flags: dict[str, Any]) -> int:
    """`pulumi import TYPE NAME ID --parent URN --provider URN`: the resource joins the state, protected."""
    _, type_token, name, cloud_id = words
    lock = acquire_lock(stack)
    try:
        state = load_stack(stack)
        parent = flags.get("parent", "")
        parent_type = parent.split("::")[-2] if parent and "pulumi:pulumi:Stack" not in parent else ""
        urn = f"urn:pulumi:{stack.rsplit('/', 1)[-1]}::dr-platform::{parent_type + '$' if parent_type else ''}"
        urn += f"{type_token}::{name}"
        state["deployment"].setdefault("resources", []).append(
            {"urn": urn, "type": type_token, "id": cloud_id, "parent": parent, "protect": True}
        )
        save_stack(stack, state)
        return 0
    finally:
        lock.unlink(missing_ok=True)


def _history(flags: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "kind": "update",
        "startTime": now,
        "endTime": now,
        "message": flags.get("message", ""),
        "environment": {},
        "config": {},
        "result": "succeeded",
        "resourceChanges": _counts(steps),
    }


def _exported(deployment: dict[str, Any], show_secrets: bool) -> dict[str, Any]:
    """The state as `stack export` prints it: secrets decrypted only with --show-secrets."""
    ciphertext = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "v1:AAAA"}
    secret = PLAINTEXT_SECRET if show_secrets else ciphertext
    resources = [{**resource, "outputs": {"password": secret}} for resource in deployment.get("resources", [])]
    return {"version": 3, "deployment": {**deployment, "resources": resources}}


def run(argv: list[str]) -> int:
    words, flags, explicit = parse(argv)
    record = {
        "argv": argv,
        "words": words,
        "explicit": sorted(explicit),
        "options_env": {k: v for k, v in os.environ.items() if k.startswith("PULUMI_OPTION_")},
        "flags": flags,
        "pid": os.getpid(),
    }
    try:
        return dispatch(words, flags, record)
    finally:
        with open(HOME / "calls.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")


def dispatch(words: list[str], flags: dict[str, Any], record: dict[str, Any]) -> int:
    stack = flags.get("stack", "")
    match words:
        case ["version"]:
            print(scenario().get("version", VERSION))
        case ["whoami", *_]:
            print(json.dumps({"user": "runner", "url": f"file://{HOME}", "organizations": []}))
        case ["stack", "select"]:
            load_stack(stack)
        case ["stack", "init", name]:
            if stack_file(name).exists():
                raise CliError(f"stack '{name}' already exists")
            save_stack(name, {"deployment": {"resources": []}, "outputs": {}, "history": []})
        case ["stack", "output"]:
            print(json.dumps(load_stack(stack).get("outputs", {})))
        case ["stack", "history"]:
            print(json.dumps(load_stack(stack).get("history", [])[:1]))
        case ["stack", "export"]:
            print(json.dumps(_exported(load_stack(stack)["deployment"], bool(flags.get("show-secrets")))))
        case ["stack", "import"]:
            lock = acquire_lock(stack)  # the real CLI locks the stack for an import too
            try:
                state = load_stack(stack)
                state["deployment"] = json.loads(Path(flags["file"]).read_text())["deployment"]
                save_stack(stack, state)
            finally:
                lock.unlink(missing_ok=True)
        case ["config"]:
            load_stack(stack)
            values = read_project_config(stack)
            print(json.dumps({key: {"value": value, "secret": False} for key, value in values.items()}))
        case ["config", "set-all"]:
            load_stack(stack)
            pairs = [pair.partition("=") for pair in [*flags.get("plaintext", []), *flags.get("secret", [])]]
            write_project_config(stack, {key: value for key, _, value in pairs})
        case ["cancel"]:
            # catalogue: pulumi-cli.diy-cancel-only-deletes-lock
            for lock in lock_dir(stack).glob("*.json"):
                lock.unlink(missing_ok=True)
        case ["preview"] | ["up"]:
            return operation(words[0], stack, flags, record)
        case ["refresh"]:
            return refresh_command(stack, flags, record)
        case ["import", _, _, _]:
            return import_resource(stack, words, flags)
        case _:
            raise CliError(f"unknown command {' '.join(words)!r}", code=2)
    return 0


def main() -> None:
    try:
        code = run(sys.argv[1:])
    except CliError as error:
        if error.stdout:
            print(error.stdout, flush=True)
        if str(error):
            print(f"error: {error}", file=sys.stderr, flush=True)
        code = error.code
    sys.exit(code)


if __name__ == "__main__":
    main()
