"""A fake `pulumi` executable that the real `pulumi.automation` SDK drives in tests.

It answers the commands drctl's adapter sends (`version`, `whoami`, `stack
select|init|output|history|export|import`, `config`, `config set-all`,
`preview`, `up`, `cancel`) the way the real CLI does where drctl depends on it
(catalogue/pulumi-cli.yaml; each behaviour cites its id):

- flags left unset are read from `PULUMI_OPTION_<FLAG>` environment variables,
  an explicit flag wins (catalogue: pulumi-cli.option-environment-variables);
- `--refresh` is a string flag; without it no refresh runs
  (catalogue: pulumi-cli.refresh-flag-explicit);
- engine events go to `--event-log`: a gRPC Events stream for `tcp://` targets
  (CLI newer than 3.205) or JSON lines to a file;
- resource diagnostics are printed on stdout under "Diagnostics:", and a
  failed update prints nothing on stderr (catalogue: pulumi-cli.diagnostics-on-stdout);
- `up` takes the DIY backend's lock file under `.pulumi/locks/`; a second `up`
  fails with "the stack is currently locked by 1 lock(s)" on stderr
  (catalogue: pulumi-cli.diy-lock-refuses-second-update);
- a pending operation is journaled before each step starts; SIGINT cancels
  gracefully (the step in flight finishes, the lock is released), a second
  SIGINT terminates, SIGKILL leaves the lock and the pending operations behind
  (catalogue: pulumi-cli.sigint-cancels-gracefully, pulumi-cli.kill-leaves-lock-and-pending);
- an update over pending operations warns and goes on
  (catalogue: pulumi-cli.pending-operations-warn-only);
- `cancel` on a DIY backend deletes the lock files and stops nothing
  (catalogue: pulumi-cli.diy-cancel-only-deletes-lock).

State and behaviour live in `$FAKE_PULUMI_HOME` (see tests/fake_pulumi/__init__.py):
`stacks/<org>/<project>/<stack>.json`, `.pulumi/locks/...`, `scenario.json`
(what the next preview/up does) and `calls.jsonl` (every invocation, for tests
to assert on what reached the CLI).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

VERSION = "v3.260.0"
HOME = Path(os.environ.get("FAKE_PULUMI_HOME", ""))

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
    "expect-no-changes": "bool",
    "run-program": "bool",
    "secrets-provider": "string",
}


class CliError(Exception):
    def __init__(self, message: str, *, stdout: str = "", code: int = 255) -> None:
        super().__init__(message)
        self.stdout = stdout
        self.code = code


# --- arguments --------------------------------------------------------------------------------


def parse(argv: list[str]) -> tuple[list[str], dict[str, Any], set[str]]:
    """Positional words, flag values, and the flags given explicitly on the command line."""
    words: list[str] = []
    flags: dict[str, Any] = {}
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
            raise CliError(f"unknown flag: --{name}", code=1)
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
    # catalogue: pulumi-cli.option-environment-variables
    for name, kind in _FLAGS.items():
        env_value = os.environ.get("PULUMI_OPTION_" + name.replace("-", "_").upper())
        if name in explicit or env_value is None:
            continue
        if kind == "bool":
            if env_value.lower() in ("true", "1"):
                flags[name] = True
            elif env_value.lower() in ("false", "0"):
                flags[name] = False
        elif kind == "array":
            flags[name] = [part for part in env_value.split(",") if part]
        else:
            flags[name] = env_value
    return words, flags, explicit


# --- the backend --------------------------------------------------------------------------------


def stack_file(stack: str) -> Path:
    return HOME / "stacks" / f"{stack}.json"


def lock_dir(stack: str) -> Path:
    return HOME / ".pulumi" / "locks" / stack


def load_stack(stack: str) -> dict[str, Any]:
    path = stack_file(stack)
    if not path.exists():
        raise CliError(f"no stack named '{stack}' found")
    return json.loads(path.read_text())


def save_stack(stack: str, document: dict[str, Any]) -> None:
    path = stack_file(stack)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2))
    temporary.replace(path)


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
                f"  file://{other}: created by {info['username']}@{info['hostname']} (pid {info['pid']}) "
                f"at {info['timestamp']}"
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


def _steps(plan: dict[str, Any], flags: dict[str, Any], state: dict[str, Any]) -> list[dict[str, Any]]:
    """The scenario's steps within the targets; everything else is `same`."""
    targets = flags.get("target") or []
    excluded = set(flags.get("exclude") or [])
    known = {step["urn"] for step in plan.get("steps", [])} | {
        resource["urn"] for resource in state["deployment"].get("resources", [])
    }
    unknown = [urn for urn in [*targets, *excluded] if urn not in known]
    if unknown:
        raise CliError(
            f"no resource named '{unknown[0]}' found", stdout=_diagnostics([("", f"no resource named '{unknown[0]}'")])
        )
    steps = []
    for step in plan.get("steps", []):
        in_scope = (not targets or step["urn"] in targets) and step["urn"] not in excluded
        steps.append({**step, "op": step["op"] if in_scope else "same"})
    return steps


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
    sink.emit(preludeEvent={"config": {}})
    label = "Previewing update" if command == "preview" else "Updating"
    print(f"{label} ({stack.rsplit('/', 1)[-1]})", flush=True)
    lock: Path | None = None
    signals = Signals() if command == "up" else None
    try:
        if command == "up":
            lock = acquire_lock(stack)
        pending = state["deployment"].get("pending_operations") or []
        if pending:
            # catalogue: pulumi-cli.pending-operations-warn-only
            print(
                f"warning: Attempting to deploy or update resources with {len(pending)} pending operations from "
                "previous deployment.",
                flush=True,
            )
        if refresh:
            for resource in state["deployment"].get("resources", []):
                sink.emit(**_pre_event({"op": "refresh", "urn": resource["urn"], "type": resource.get("type", "")}))
        steps = _steps(plan, flags, state)
        changing = [step for step in steps if step["op"] != "same"]
        for step in steps:
            sink.emit(**_pre_event(step))
        if command == "up" and changing:
            kinds = {"create": "creating", "update": "updating", "delete": "deleting", "replace": "creating"}
            state["deployment"]["pending_operations"] = [
                {
                    "resource": {"urn": step["urn"], "type": step.get("type", "")},
                    "type": kinds.get(step["op"], "updating"),
                }
                for step in changing
            ]
            save_stack(stack, state)
        # A step in flight finishes on the first signal unless the scenario says it hangs.
        stop_at = 2 if plan.get("ignore_first_interrupt") else 1
        deadline = time.monotonic() + float(plan.get("delay_seconds", 0))
        while time.monotonic() < deadline and (signals is None or signals.count < stop_at):
            time.sleep(0.02)
        if signals is not None and signals.count:
            # catalogue: pulumi-cli.sigint-cancels-gracefully
            if signals.count < 2:
                _apply(state, steps, flags, plan)
                state["deployment"]["pending_operations"] = []
                save_stack(stack, state)
            print("error: update canceled", flush=True)
            return 255
        failure = plan.get("fail")
        if failure:
            errors = [(item.get("urn", ""), item["message"]) for item in failure["diagnostics"]]
            for urn, message in errors:
                sink.emit(
                    diagnosticEvent={"urn": urn, "message": message + "\n", "severity": "error", "color": "never"}
                )
            raise CliError("", stdout=_diagnostics([*errors, ("", f"{command} failed")]))
        if command == "up":
            _apply(state, steps, flags, plan)
            state["deployment"]["pending_operations"] = []
            state.setdefault("history", []).insert(0, _history(flags, steps))
            save_stack(stack, state)
        sink.emit(summaryEvent={"resourceChanges": _counts(steps), "durationSeconds": 0, "maybeCorrupt": False})
        print(f"Resources:\n    {_counts(steps)}", flush=True)
        return 0
    finally:
        if lock is not None:
            lock.unlink(missing_ok=True)
        sink.close()


def _apply(state: dict[str, Any], steps: list[dict[str, Any]], flags: dict[str, Any], plan: dict[str, Any]) -> None:
    resources = {resource["urn"]: resource for resource in state["deployment"].get("resources", [])}
    for step in steps:
        if step["op"] in ("create", "update", "replace"):
            resources[step["urn"]] = {"urn": step["urn"], "type": step.get("type", "")}
        elif step["op"] == "delete":
            resources.pop(step["urn"], None)
    state["deployment"]["resources"] = list(resources.values())
    targets = flags.get("target") or []
    if "outputs" in plan and (not targets or any("pulumi:pulumi:Stack" in urn for urn in targets)):
        state["outputs"] = plan["outputs"]


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


def run(argv: list[str]) -> int:
    words, flags, explicit = parse(argv)
    record = {
        "argv": argv,
        "words": words,
        "explicit": sorted(explicit),
        "options_env": {k: v for k, v in os.environ.items() if k.startswith("PULUMI_OPTION_")},
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
            save_stack(name, {"config": {}, "deployment": {"resources": []}, "outputs": {}, "history": []})
        case ["stack", "output"]:
            print(json.dumps(load_stack(stack).get("outputs", {})))
        case ["stack", "history"]:
            print(json.dumps(load_stack(stack).get("history", [])[:1]))
        case ["stack", "export"]:
            print(json.dumps({"version": 3, "deployment": load_stack(stack)["deployment"]}))
        case ["stack", "import"]:
            lock = acquire_lock(stack)  # the real CLI locks the stack for an import too
            try:
                state = load_stack(stack)
                state["deployment"] = json.loads(Path(flags["file"]).read_text())["deployment"]
                save_stack(stack, state)
            finally:
                lock.unlink(missing_ok=True)
        case ["config"]:
            values = load_stack(stack)["config"]
            print(json.dumps({key: {"value": value, "secret": False} for key, value in values.items()}))
        case ["config", "set-all"]:
            state = load_stack(stack)
            for pair in [*flags.get("plaintext", []), *flags.get("secret", [])]:
                key, _, value = pair.partition("=")
                state["config"][key] = value
            save_stack(stack, state)
        case ["cancel"]:
            # catalogue: pulumi-cli.diy-cancel-only-deletes-lock
            for lock in lock_dir(stack).glob("*.json"):
                lock.unlink(missing_ok=True)
        case ["preview"] | ["up"]:
            return operation(words[0], stack, flags, record)
        case _:
            raise CliError(f"unknown command {' '.join(words)!r}", code=1)
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
