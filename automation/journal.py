"""Where drctl keeps what it did: the run journal and the per-stack lock.

Both live in a small document store rooted at one stack: a local directory
(default `.drctl/<org>/<project>/<stack>/`) or an S3 prefix (the DR-region
bucket of an S3 state backend, so the journal outlives the operator's laptop
and the primary region). Every write is atomic and conditional: a lock is
created only if absent, and a journal is replaced only if nobody changed it
since we read it, so a runner that lost its lock cannot overwrite the journal
of the runner that took it over.

Layout under the stack's root:

    lock.json                 who holds the stack (absent when free)
    lock-breaks/<ts>.json     every broken lock, with who broke it and why
    journal/current.json      the latest run of any runbook on this stack
    journal/damaged/<ts>.json a current.json that could not be read, kept for forensics
    journal/runs/<id>.json    every finished or abandoned run, kept for audit
    reports/<id>.json|.md     the run reports (automation/report.py)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from automation.errors import DrctlError

SCHEMA_VERSION = 1
LOCK_KEY = "lock.json"
CURRENT_RUN_KEY = "journal/current.json"
CONTROL_STORE_PREFIX = "drctl"
CI_DEPLOY_HOLDER = "ci-deploy"
"""The runbook name of a CI deploy behind `drctl deploy-gate`."""
DEFAULT_LOCAL_ROOT = Path(".drctl")
DEFAULT_HEARTBEAT_SECONDS = 60.0
"""How often a holder renews its lock. Each renewal is a new version of lock.json, and the S3 control store's
Object Lock keeps every version for its retention (365 days): 60 s means 60 versions (about 20 KB) per hour a run
holds the lock, and none while nobody does. Staleness (four beats, 4 minutes) is what an operator waits before
a dead holder's lock may be broken: short against an RTO of 15 minutes, long against S3 hiccups."""
STALE_AFTER_HEARTBEATS = 4
DEFAULT_STALE_LOCK_SECONDS = DEFAULT_HEARTBEAT_SECONDS * STALE_AFTER_HEARTBEATS
"""A holder renews its lock every heartbeat from a background thread, so a few missed beats mean it is gone."""


# --- time ----------------------------------------------------------------------


class Clock(Protocol):
    """Time as the engine sees it; the sandbox injects one that models latency."""

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds, e.g. 2025-01-31T12:00:00.000Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((parse_iso(end) - parse_iso(start)).total_seconds(), 3)


# --- the document store ----------------------------------------------------------


class StoreConflictError(Exception):
    """A conditional write lost: the object exists already, or changed since it was read."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    version: str
    age_seconds: float | None = None
    """How long ago it was written, by the store's own clock (S3: the response's Date minus LastModified),
    so a reader's or a writer's skewed clock does not make a live lock look stale; None when unknown."""


class DocumentStore(Protocol):
    """Atomic, conditional byte objects under one stack's root."""

    @property
    def location(self) -> str:
        """Where the store is, for messages (a path or an s3:// URL)."""
        ...

    def read(self, key: str) -> StoredObject | None: ...

    def create(self, key: str, data: bytes) -> str:
        """Write only if absent (raises StoreConflictError); returns the new version."""
        ...

    def replace(self, key: str, data: bytes, expected_version: str | None) -> str:
        """Overwrite; with `expected_version`, only if the object is still that version."""
        ...

    def delete(self, key: str, expected_version: str | None = None) -> None: ...


class LocalDirectoryStore:
    """A directory on this machine. Creation uses O_EXCL; replacement a rename.

    Versions are content hashes. A conditional replace or delete checks the
    version and acts under an exclusive `flock` of the store's directory, so
    it is one step for every process and thread: a `drctl break-lock` cannot
    land between the holder's heartbeat check and its rename (which would
    bring the broken lock back).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def location(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def read(self, key: str) -> StoredObject | None:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        return StoredObject(data, _content_version(data))

    def create(self, key: str, data: bytes) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise StoreConflictError(key, "already exists") from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return _content_version(data)

    def replace(self, key: str, data: bytes, expected_version: str | None) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._exclusive():
            self._check_version(key, expected_version)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        return _content_version(data)

    def delete(self, key: str, expected_version: str | None = None) -> None:
        with self._exclusive():
            self._check_version(key, expected_version)
            self._path(key).unlink(missing_ok=expected_version is None)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Held by one replace or delete at a time across processes: a `flock` of the store's directory itself
        (each call opens its own descriptor, so threads exclude each other too; no file is added)."""
        self.root.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.root, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing the last descriptor releases the flock

    def _check_version(self, key: str, expected_version: str | None) -> None:
        if expected_version is None:
            return
        current = self.read(key)
        if current is None or current.version != expected_version:
            raise StoreConflictError(key, "changed since it was read")


# catalogue: s3.object-lock-put-needs-checksum
_CHECKSUM = "SHA256"


class S3ObjectStore:
    """Objects under a prefix of an S3 bucket, written with S3 conditional writes.

    `create` is PutObject with IfNoneMatch='*'; `replace` and `delete` carry
    IfMatch=<ETag>. S3 answers a lost race with 412 PreconditionFailed (or 409
    ConditionalRequestConflict while a competing write is in flight).
    """

    _CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def read(self, key: str) -> StoredObject | None:
        try:
            response = self._call("read", key, self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        except _MissingError:
            return None
        return StoredObject(response["Body"].read(), response["ETag"], _s3_age_seconds(response))

    def create(self, key: str, data: bytes) -> str:
        return self._put("create", key, data, IfNoneMatch="*")

    def replace(self, key: str, data: bytes, expected_version: str | None) -> str:
        condition = {"IfMatch": expected_version} if expected_version else {}
        try:
            return self._put("replace", key, data, **condition)
        except _MissingError:
            # catalogue: s3.conditional-write-missing-key: If-Match on a key that is gone answers 404, not 412
            raise StoreConflictError(key, "is gone") from None

    def _put(self, action: str, key: str, data: bytes, **condition: str) -> str:
        response = self._call(
            action,
            key,
            self.client.put_object,
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ContentType=_content_type(key),
            ChecksumAlgorithm=_CHECKSUM,
            **condition,
        )
        return response["ETag"]

    def delete(self, key: str, expected_version: str | None = None) -> None:
        condition = {"IfMatch": expected_version} if expected_version else {}
        try:
            self._call("delete", key, self.client.delete_object, Bucket=self.bucket, Key=self._key(key), **condition)
        except _MissingError:
            if expected_version is not None:
                raise StoreConflictError(key, "is gone") from None

    def _call(self, action: str, key: str, method: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return method(**kwargs)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in self._CONFLICT_CODES:
                problem = "already exists" if action == "create" else "changed since it was read"
                raise StoreConflictError(key, problem) from None
            if code in ("NoSuchKey", "404"):
                raise _MissingError from None
            raise StoreUnavailableError(
                f"journal store {self.location}: cannot {action} {key}: {code} {error}",
                hint="check the bucket exists in the DR region and that your credentials may read and write it",
            ) from error
        except BotoCoreError as error:
            raise StoreUnavailableError(
                f"journal store {self.location} unreachable: {error}",
                hint="the journal bucket must live in the region that survives (the DR region)",
            ) from error


class StoreUnavailableError(DrctlError):
    """The store refused or could not be reached (throttling, a 5xx, the network): not a lost race."""


class _MissingError(Exception):
    pass


def _s3_age_seconds(response: Mapping[str, Any]) -> float | None:
    """The object's age by S3's clock: the response's Date header minus its LastModified."""
    from email.utils import parsedate_to_datetime

    modified = response.get("LastModified")
    date = ((response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}).get("date")
    if modified is None or not date:
        return None
    try:
        return max(0.0, (parsedate_to_datetime(date) - modified).total_seconds())
    except (TypeError, ValueError):
        return None


def _content_version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _content_type(key: str) -> str:
    return "text/markdown" if key.endswith(".md") else "application/json"


def local_store(stack: str, root: Path = DEFAULT_LOCAL_ROOT) -> LocalDirectoryStore:
    """The default store: `.drctl/<org>/<project>/<stack>/` in the working directory."""
    return LocalDirectoryStore(Path(root) / _stack_path(stack))


def stack_key_prefix(stack: str, prefix: str = CONTROL_STORE_PREFIX) -> str:
    """Where one stack's lock, journal and DR state live in a control-store bucket: `drctl/<org>/<project>/<stack>`.

    The bootstrap stack's IAM policies scope roles to this prefix, so both read it from here.
    """
    return f"{prefix.strip('/')}/{_stack_path(stack)}"


def s3_store(stack: str, bucket: str, prefix: str = CONTROL_STORE_PREFIX, client: Any | None = None) -> S3ObjectStore:
    """A store under `s3://<bucket>/<prefix>/<org>/<project>/<stack>/`."""
    if client is None:
        import boto3

        client = boto3.client("s3")
    return S3ObjectStore(client, bucket, stack_key_prefix(stack, prefix))


def _stack_path(stack: str) -> str:
    parts = stack.split("/")
    if not all(parts) or any(part in (".", "..") for part in parts):
        raise DrctlError(f"cannot keep a journal for the stack name {stack!r}", hint="use org/project/stack")
    return "/".join(parts)


def read_json(store: DocumentStore, key: str) -> tuple[dict[str, Any], str] | None:
    stored = store.read(key)
    if stored is None:
        return None
    return json.loads(stored.data), stored.version


def to_json_bytes(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=False) + "\n").encode()


# --- the lock --------------------------------------------------------------------


@dataclass(frozen=True)
class LockInfo:
    holder: str
    host: str
    pid: int
    runbook: str
    acquired_at: str
    heartbeat_at: str
    boot_id: str = ""
    """The kernel's boot id of the holder's host: a pid means nothing across reboots."""
    pid_namespace: str = ""
    """The holder's pid namespace (/proc/self/ns/pid): containers on one host share its hostname, not its pids."""
    origin: str = ""
    """Where the holder runs when that is not a terminal: a CI run's URL."""

    def describe(self) -> str:
        where = f", {self.origin}" if self.origin else ""
        return f"{self.holder} on {self.host} (pid {self.pid}, runbook {self.runbook}, since {self.acquired_at}{where})"

    def holder_is_dead(self) -> bool:
        return process_gone_on_this_host(self.host, self.pid, self.boot_id, self.pid_namespace)


def host_identity() -> tuple[str, str]:
    """(boot id, pid namespace) of this process; "" where the platform has none (then no pid is judged)."""
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return "", ""
    return boot_id, namespace


def process_gone_on_this_host(host: str, pid: int, boot_id: str, pid_namespace: str) -> bool:
    """True only when the holder ran in this very pid namespace of this boot of this host and `pid` is gone.

    A hostname alone is not enough: containers with host networking share it, and their pids are not ours.
    """
    here_boot, here_namespace = host_identity()
    if host != socket.gethostname() or not here_boot or (boot_id, pid_namespace) != (here_boot, here_namespace):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True)
class BrokenLock:
    """What `break_lock` removed: the holder's record, or a lock file that could not be read."""

    previous: LockInfo | None
    damaged_text: str | None = None
    record_key: str = ""

    def describe(self) -> str:
        if self.previous is not None:
            return f"broke the lock of {self.previous.describe()}"
        return f"removed a damaged lock file (its content is kept in {self.record_key}): {self.damaged_text!r}"


class StackLock:
    """One runbook at a time per stack: whoever creates `lock.json` holds it."""

    def __init__(
        self,
        store: DocumentStore,
        stack: str,
        clock: Clock | None = None,
        stale_after_seconds: float = DEFAULT_STALE_LOCK_SECONDS,
    ) -> None:
        self.store = store
        self.stack = stack
        self.clock = clock or SystemClock()
        self.stale_after = timedelta(seconds=stale_after_seconds)
        self._observed_ages: dict[LockInfo, float] = {}

    def current(self) -> LockInfo | None:
        """The holder, or None when free; a DrctlError naming the file when it cannot be read."""
        stored = self.store.read(LOCK_KEY)
        if stored is None:
            return None
        info = _lock_info(stored.data)
        if info is not None and stored.age_seconds is not None:
            self._observed_ages[info] = stored.age_seconds
        if info is None:
            raise DrctlError(
                f"the lock file {self.store.location}/{LOCK_KEY} is damaged: {stored.data[:200]!r}",
                hint="if no drctl or CI deploy is running against this stack, remove it with "
                "`drctl break-lock --reason ...` (its content is kept under lock-breaks/)",
            )
        return info

    def age_seconds(self, info: LockInfo) -> float:
        """Since the holder's last heartbeat: by the store's clock when it tells (S3), else by ours."""
        observed = self._observed_ages.get(info)
        if observed is not None:
            return observed
        return (self.clock.now() - parse_iso(info.heartbeat_at)).total_seconds()

    def is_stale(self, info: LockInfo) -> bool:
        """No heartbeat for `stale_after_seconds`, or a holder on this host whose process is gone."""
        return info.holder_is_dead() or self.age_seconds(info) > self.stale_after.total_seconds()

    def acquire(self, holder: str, runbook: str, origin: str = "") -> LockLease:
        now = iso(self.clock.now())
        host, pid = socket.gethostname(), os.getpid()
        boot_id, namespace = host_identity()
        info = LockInfo(holder, host, pid, runbook, now, now, boot_id, namespace, origin)
        try:
            version = self.store.create(LOCK_KEY, to_json_bytes(asdict(info)))
        except StoreConflictError:
            raise self._refusal() from None
        return LockLease(self, info, version)

    def _refusal(self) -> DrctlError:
        try:
            held = self.current()
        except DrctlError:
            held = None
        if held is None:
            return DrctlError(
                f"stack {self.stack} is locked (the lock at {self.store.location}/{LOCK_KEY} is being written "
                "or unreadable)",
                hint="retry in a moment; if it persists, inspect it and break it with a reason",
            )
        return DrctlError(self.describe_holder(held), hint=self.refusal_hint(held))

    def describe_holder(self, held: LockInfo) -> str:
        """Who holds the stack and whether that holder still looks alive."""
        if held.holder_is_dead():
            return f"stack {self.stack} is locked by {held.describe()}, but that process is gone from this host"
        if self.is_stale(held):
            return (
                f"stack {self.stack} is locked by {held.describe()}; the lock looks stale (no heartbeat for "
                f"{int(self.age_seconds(held))} s, heartbeats come every "
                f"{self.stale_after.total_seconds() / STALE_AFTER_HEARTBEATS:g} s)"
            )
        doing = "a CI deploy is running" if held.runbook == CI_DEPLOY_HOLDER else "another runbook is running"
        return f"stack {self.stack} is locked by {held.describe()}: {doing} against it"

    def refusal_hint(self, held: LockInfo) -> str:
        """What the refused operator does next, in an emergency too."""
        break_it = f"drctl break-lock --stack {self.stack} --reason '...'"
        if held.runbook == CI_DEPLOY_HOLDER:
            return (
                "a CI deploy holds it. In an emergency: cancel that workflow run (GitHub Actions, deploy workflow; "
                "its deploy-gate passes the cancel to pulumi and releases the lock once pulumi stopped). If the lock "
                f"is still there after the run ended (a killed runner), {break_it}, then, once no pulumi of that run "
                f"is left, `pulumi cancel --stack {self.stack} --yes` removes its Pulumi lock"
            )
        if held.holder_is_dead() or self.is_stale(held):
            return f"if that run is really dead, {break_it}, then rerun to resume it"
        return f"wait for it to finish; break the lock ({break_it}) only if you are sure that run is dead"

    def break_lock(self, reason: str, operator: str) -> BrokenLock | None:
        """Remove whatever lock is held, damaged or not, recording who broke it, why, and what it said.

        A holder still running renews the lock every heartbeat, so it can change between the read and the
        delete: a renewal by the same holder is deleted at its new version (once; that holder's heartbeat then
        finds the lock gone and stops its run), a lock released meanwhile is left gone, and a lock taken by
        another holder meanwhile is refused with who holds it now.
        """
        if not reason.strip():
            raise DrctlError("breaking a lock needs a reason", hint="pass --reason 'why the holder is known dead'")
        found = self.store.read(LOCK_KEY)
        if found is None:
            return None
        previous = _lock_info(found.data)
        damaged = None if previous is not None else found.data.decode("utf-8", "replace")
        moment = self.clock.now()
        record = {
            "broken_at": iso(moment),
            "broken_by": operator,
            "reason": reason,
            "previous_holder": asdict(previous) if previous else None,
            "damaged_content": damaged,
        }
        key = f"lock-breaks/{moment.strftime('%Y%m%dT%H%M%S%fZ')}.json"
        self.store.create(key, to_json_bytes(record))
        broken = BrokenLock(previous, damaged, f"{self.store.location}/{key}")
        try:
            self.store.delete(LOCK_KEY, expected_version=found.version)
            return broken
        except StoreConflictError:
            renewed = self.store.read(LOCK_KEY)
        if renewed is None:
            return broken  # released (or broken by another operator) between the read and the delete
        now_held = _lock_info(renewed.data)
        if previous is None or now_held is None or not _same_holder(previous, now_held):
            raise DrctlError(
                f"the lock on stack {self.stack} changed while it was being broken: it is now held by "
                f"{now_held.describe() if now_held else 'a damaged lock file'}; nothing was broken",
                hint=f"look again (drctl status) before breaking it; the attempt is recorded in {broken.record_key}",
            )
        try:
            self.store.delete(LOCK_KEY, expected_version=renewed.version)
        except StoreConflictError:
            raise DrctlError(
                f"the lock on stack {self.stack} was renewed twice while it was being broken: its holder "
                f"{previous.describe()} is alive and renewing it",
                hint="stop that run first (it is not dead), or retry drctl break-lock",
            ) from None
        return broken


def _same_holder(first: LockInfo, second: LockInfo) -> bool:
    """The same acquisition of the lock: a heartbeat changes only `heartbeat_at`."""
    return replace(first, heartbeat_at="") == replace(second, heartbeat_at="")


class LockLease:
    """A held lock. `heartbeat` proves it is still ours; `release` gives it back."""

    def __init__(self, lock: StackLock, info: LockInfo, version: str) -> None:
        self.lock = lock
        self.info = info
        self._version = version
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._beating: threading.Thread | None = None
        self._kept = False
        self.lost: DrctlError | None = None
        """Set by the heartbeat thread when the lock was broken, taken over, or could not be renewed in time."""
        self.last_failure: str | None = None
        """The last heartbeat that failed for a reason other than a lost race (retried)."""

    def start_heartbeat(self, interval_seconds: float = DEFAULT_HEARTBEAT_SECONDS) -> None:
        """Renew the lock every `interval_seconds` from a background thread until `release`.

        Only a lost race (the lock broken, taken over, or gone) loses the lease at
        once; a store that is briefly unavailable (throttling, a 5xx, the network) is
        retried at the next beat, until renewing has failed for as long as others
        wait before they call the lock stale.
        """

        def beat() -> None:
            last_renewed = time.monotonic()
            while not self._stop.wait(interval_seconds):
                try:
                    self.heartbeat()
                    last_renewed = time.monotonic()
                except LockLostError as error:
                    self.lost = error
                    return
                except Exception as error:
                    self.last_failure = f"{type(error).__name__}: {error}"
                    if time.monotonic() - last_renewed >= self.lock.stale_after.total_seconds():
                        self.lost = LockLostError(
                            f"could not renew the lock on stack {self.lock.stack} for "
                            f"{self.lock.stale_after.total_seconds():g} s ({self.last_failure}): it looks stale to "
                            "others, who may break it",
                            hint="check the control store; do not continue this run from here until the lock is "
                            "yours again (drctl status, then rerun the same command)",
                        )
                        return

        self._beating = threading.Thread(target=beat, name=f"lock-heartbeat-{self.lock.stack}", daemon=True)
        self._beating.start()

    def check(self) -> None:
        """Raise if the heartbeat found the lock broken, taken over or unrenewable."""
        if self.lost is not None:
            raise self.lost

    def heartbeat(self) -> None:
        """Refresh the lock's age; fails if somebody broke or took the lock meanwhile."""
        with self._mutex:
            refreshed = LockInfo(**{**asdict(self.info), "heartbeat_at": iso(self.lock.clock.now())})
            try:
                self._version = self.lock.store.replace(LOCK_KEY, to_json_bytes(asdict(refreshed)), self._version)
            except StoreConflictError:
                raise LockLostError(
                    f"lost the lock on stack {self.lock.stack}: it was broken or taken over while this run was going",
                    hint="see lock-breaks/ in the journal store; do not continue this run from here",
                ) from None
            self.info = refreshed

    def keep_held(self) -> None:
        """Stop renewing but leave the lock in place: what this run started may still act on the stack."""
        self._stop.set()
        if self._beating is not None:
            self._beating.join()
        self._kept = True

    def release(self) -> None:
        self._stop.set()
        if self._beating is not None:
            self._beating.join()
        if self._kept:
            return
        # If somebody broke and re-took the lock meanwhile, it is theirs: leave it alone.
        with self._mutex, contextlib.suppress(StoreConflictError):
            self.lock.store.delete(LOCK_KEY, expected_version=self._version)


class LockLostError(DrctlError):
    """The lease is no longer ours: broken, taken over, or not renewable for longer than staleness."""


def _lock_info(data: bytes) -> LockInfo | None:
    """The lock's holder, or None when the file is not a lock record (truncated, garbage, wrong shape)."""
    try:
        document = json.loads(data)
        if not isinstance(document, dict):
            return None
        # Fields a newer drctl adds are not damage: a lock written by another version must read as held.
        return LockInfo(**{key: value for key, value in document.items() if key in _LOCK_FIELDS})
    except (ValueError, TypeError):
        return None


_LOCK_FIELDS = frozenset(LockInfo.__dataclass_fields__)


# --- the journal -------------------------------------------------------------------


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    ALREADY_DONE = "already-done"
    REFUSED = "refused"
    FAILED = "failed"
    TIMED_OUT = "timed-out"

    @property
    def done(self) -> bool:
        return self in (StepStatus.SUCCEEDED, StepStatus.ALREADY_DONE)


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUSED = "refused"  # the preflight said no: nothing was changed
    ABANDONED = "abandoned"


@dataclass
class CheckRecord:
    name: str
    kind: str  # preflight | probe | pre | post
    passed: bool
    detail: str
    at: str


@dataclass
class StepRecord:
    name: str
    group: str | None = None
    status: StepStatus = StepStatus.PENDING
    started_at: str | None = None
    finished_at: str | None = None
    duration_seconds: float | None = None
    attempts: int = 0
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    checks: list[CheckRecord] = field(default_factory=list)


@dataclass(frozen=True)
class RunParameters:
    """What an operator asked for. A resumed run must ask for the same (operator aside)."""

    reason: str
    operator: str
    mode: str | None = None
    force: bool = False
    options: Mapping[str, str] = field(default_factory=dict)
    attempt: Mapping[str, str] = field(default_factory=dict)
    """Facts of this attempt only (the checkout, an unreviewed-checkout override): recorded in the run's
    `attempts`, never compared, never part of the stored parameters."""

    def differences(self, other: RunParameters) -> list[str]:
        """Names of the parameters that differ; another on-call engineer may resume a run, from another checkout."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [key for key in mine if key != "operator" and mine[key] != theirs[key]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "reason": self.reason,
            "operator": self.operator,
            "force": self.force,
            "options": dict(self.options),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunParameters:
        return cls(
            reason=data["reason"],
            operator=data["operator"],
            mode=data.get("mode"),
            force=bool(data.get("force", False)),
            options=dict(data.get("options") or {}),
        )


@dataclass
class RunRecord:
    run_id: str
    runbook: str
    stack: str
    parameters: RunParameters
    started_at: str
    status: RunStatus = RunStatus.RUNNING
    finished_at: str | None = None
    verified_at: str | None = None
    error: str | None = None
    simulation: bool = False
    preflight: list[CheckRecord] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    measurements: dict[str, Any] = field(default_factory=dict)
    attempts: list[dict[str, str]] = field(default_factory=list)

    def step(self, name: str) -> StepRecord:
        for record in self.steps:
            if record.name == name:
                return record
        raise KeyError(name)

    @property
    def any_step_started(self) -> bool:
        return any(record.status is not StepStatus.PENDING for record in self.steps)

    @property
    def finished(self) -> bool:
        return self.status in (RunStatus.SUCCEEDED, RunStatus.ABANDONED)

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["parameters"] = self.parameters.to_dict()
        return {"schema": SCHEMA_VERSION, **document}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        if data.get("schema") != SCHEMA_VERSION:
            raise DrctlError(
                f"the journal has schema {data.get('schema')!r}; this drctl reads schema {SCHEMA_VERSION}",
                hint="use the drctl version that wrote it, or archive journal/current.json by hand",
            )
        steps = [
            StepRecord(
                **{
                    **step,
                    "status": StepStatus(step["status"]),
                    "checks": [CheckRecord(**check) for check in step.get("checks", [])],
                }
            )
            for step in data["steps"]
        ]
        return cls(
            run_id=data["run_id"],
            runbook=data["runbook"],
            stack=data["stack"],
            parameters=RunParameters.from_dict(data["parameters"]),
            started_at=data["started_at"],
            status=RunStatus(data["status"]),
            finished_at=data.get("finished_at"),
            verified_at=data.get("verified_at"),
            error=data.get("error"),
            simulation=bool(data.get("simulation", False)),
            preflight=[CheckRecord(**check) for check in data.get("preflight", [])],
            steps=steps,
            measurements=dict(data.get("measurements") or {}),
            attempts=list(data.get("attempts") or []),
        )


class CorruptJournalError(DrctlError):
    """journal/current.json exists but is not a run record drctl can read."""

    def __init__(self, location: str, problem: Exception) -> None:
        super().__init__(
            f"the journal {location} cannot be read ({type(problem).__name__}: {problem})",
            hint="nothing was changed. Rerun with --abandon-unfinished (or `drctl break-lock --reason ... "
            "--abandon-unfinished`) to move the damaged file to journal/damaged/ and start anew; check what the "
            "interrupted run had done first (drctl status)",
        )
        self.location = location


class _SchemaError(DrctlError):
    def __init__(self, schema: Any) -> None:
        super().__init__(
            f"the journal has schema {schema!r}; this drctl reads schema {SCHEMA_VERSION}",
            hint="use the drctl version that wrote it, or archive journal/current.json by hand",
        )


class Journal:
    """The stack's latest run, saved after every transition with a conditional write."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self._version: str | None = None
        self._mutex = threading.Lock()

    def load(self) -> RunRecord | None:
        """The current run; a CorruptJournalError naming the file when it cannot be read."""
        with self._mutex:
            stored = self.store.read(CURRENT_RUN_KEY)
            if stored is None:
                self._version = None
                return None
            self._version = stored.version
            try:
                document = json.loads(stored.data)
                if not isinstance(document, dict):
                    raise TypeError(f"a JSON {type(document).__name__}, not a run record")
                if document.get("schema") != SCHEMA_VERSION:
                    raise _SchemaError(document.get("schema"))
                return RunRecord.from_dict(document)
            except _SchemaError:
                raise
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                raise CorruptJournalError(f"{self.store.location}/{CURRENT_RUN_KEY}", error) from None

    def quarantine(self) -> str | None:
        """Move a current.json that cannot be read to journal/damaged/ (kept for forensics); returns its key."""
        with self._mutex:
            stored = self.store.read(CURRENT_RUN_KEY)
            if stored is None:
                return None
            key = f"journal/damaged/{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}-current.json"
            self.store.create(key, stored.data)
            self.store.delete(CURRENT_RUN_KEY, expected_version=stored.version)
            self._version = None
            return f"{self.store.location}/{key}"

    def save(self, run: RunRecord) -> None:
        data = to_json_bytes(run.to_dict())
        with self._mutex:
            try:
                if self._version is None:
                    self._version = self.store.create(CURRENT_RUN_KEY, data)
                else:
                    self._version = self.store.replace(CURRENT_RUN_KEY, data, self._version)
            except StoreConflictError:
                raise DrctlError(
                    f"the journal at {self.store.location} was changed by someone else during run {run.run_id}",
                    hint="another drctl took over this stack; inspect journal/current.json before doing anything",
                ) from None

    def archive(self, run: RunRecord) -> None:
        """Keep a finished or abandoned run under journal/runs/ for the audit trail."""
        self.store.replace(f"journal/runs/{run.run_id}.json", to_json_bytes(run.to_dict()), None)
