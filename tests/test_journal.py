"""Journal and lock stores: local directory and S3 (moto), atomic and conditional."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from automation.errors import DrctlError
from automation.journal import (
    CURRENT_RUN_KEY,
    LOCK_KEY,
    CorruptJournalError,
    DocumentStore,
    Journal,
    LocalDirectoryStore,
    LockInfo,
    LockLostError,
    RunParameters,
    RunRecord,
    RunStatus,
    StackLock,
    StepRecord,
    StepStatus,
    StoreConflictError,
    host_identity,
    iso,
    local_store,
    s3_store,
    to_json_bytes,
)
from tests.fake_clock import FakeClock, fixed_clock

STACK = "organization/dr-platform/prod"
BUCKET = "acme-drp-pulumi-state-usw2"


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[object]:
    """One moto S3 for the module (starting moto costs about a second); tests get their own bucket."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            patch.setenv(name, "testing")
        with mock_aws():
            yield boto3.client("s3", region_name="us-west-2")


@pytest.fixture
def s3_client(moto_s3: Any) -> Iterator[Any]:
    moto_s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    yield moto_s3
    for version in moto_s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        moto_s3.delete_object(Bucket=BUCKET, Key=version["Key"])
    moto_s3.delete_bucket(Bucket=BUCKET)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> DocumentStore:
    if request.param == "local":
        return local_store(STACK, root=tmp_path)
    return s3_store(STACK, BUCKET, client=request.getfixturevalue("s3_client"))


def test_create_is_exclusive(store: DocumentStore) -> None:
    store.create("lock.json", b"first")
    with pytest.raises(StoreConflictError):
        store.create("lock.json", b"second")
    assert store.read("lock.json").data == b"first"


def test_replace_is_conditional_on_the_version_read(store: DocumentStore) -> None:
    version = store.create("doc.json", b"one")
    newer = store.replace("doc.json", b"two", version)
    with pytest.raises(StoreConflictError):
        store.replace("doc.json", b"three", version)  # stale: somebody wrote "two" since
    assert store.read("doc.json") is not None and store.read("doc.json").data == b"two"
    store.replace("doc.json", b"four", None)  # unconditional
    with pytest.raises(StoreConflictError):
        store.delete("doc.json", expected_version=newer)
    store.delete("doc.json")
    assert store.read("doc.json") is None


def test_local_store_lives_under_the_stack_name_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = local_store(STACK, root=tmp_path)
    version = store.create("journal/current.json", b"{}")
    store.replace("journal/current.json", b'{"a": 1}', version)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["organization/dr-platform/prod/journal/current.json"]


def test_s3_store_keys_sit_under_the_prefix_and_stack(s3_client: object) -> None:
    s3_store(STACK, BUCKET, prefix="drctl", client=s3_client).create("lock.json", b"{}")
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=BUCKET)["Contents"]]  # type: ignore[attr-defined]
    assert keys == ["drctl/organization/dr-platform/prod/lock.json"]


def test_stack_names_that_escape_the_store_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DrctlError):
        local_store("organization/../../etc", root=tmp_path)


def test_an_unreachable_s3_store_is_a_clear_error(s3_client: object) -> None:
    store = s3_store(STACK, "no-such-bucket", client=s3_client)
    with pytest.raises(DrctlError, match="journal store s3://no-such-bucket"):
        store.create("lock.json", b"{}")


# --- the lock -------------------------------------------------------------------------


def test_lock_refuses_a_second_holder_and_names_the_first(store: DocumentStore) -> None:
    lock = StackLock(store, STACK, fixed_clock())
    lease = lock.acquire("alice", "failover")
    with pytest.raises(DrctlError, match=r"locked by alice on .* runbook failover") as refused:
        lock.acquire("bob", "failback-prepare")
    assert "wait" in (refused.value.hint or "")
    lease.release()
    lock.acquire("bob", "failback-prepare").release()
    assert store.read(LOCK_KEY) is None


def test_two_threads_racing_for_the_lock_exactly_one_wins(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    contenders = 8
    start = threading.Barrier(contenders)
    winners: list[str] = []
    losers: list[str] = []

    def contend(name: str) -> None:
        lock = StackLock(store, STACK)
        start.wait()
        try:
            lock.acquire(name, "failover")
            winners.append(name)
        except DrctlError:
            losers.append(name)

    threads = [threading.Thread(target=contend, args=(f"op{i}",)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and len(losers) == contenders - 1
    assert StackLock(store, STACK).current().holder == winners[0]


def test_a_stale_lock_is_reported_as_stale_and_can_be_broken_with_a_reason(store: DocumentStore) -> None:
    clock = fixed_clock()
    lock = StackLock(store, STACK, clock, stale_after_seconds=600)
    dead = lock.acquire("alice", "failover")
    clock.sleep(601)
    with pytest.raises(DrctlError, match="looks stale") as refused:
        lock.acquire("bob", "failover")
    assert "break" in (refused.value.hint or "")

    with pytest.raises(DrctlError, match="reason"):
        lock.break_lock("  ", "bob")
    previous = lock.break_lock("alice's laptop died with us-east-1", "bob")
    assert previous is not None and previous.previous is not None and previous.previous.holder == "alice"
    lease = lock.acquire("bob", "failover")
    assert lock.current().holder == "bob"

    # The dead holder cannot carry on: its heartbeat finds the lock gone.
    with pytest.raises(DrctlError, match="lost the lock"):
        dead.heartbeat()
    dead.release()  # and releasing leaves bob's lock alone
    assert lock.current().holder == "bob"
    lease.release()


def test_lock_breaks_are_recorded(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    lock = StackLock(store, STACK, fixed_clock())
    lock.acquire("alice", "failover")
    lock.break_lock("run killed by OOM", "bob")
    (record,) = list((tmp_path / "lock-breaks").iterdir())
    text = record.read_text()
    assert "run killed by OOM" in text and '"broken_by": "bob"' in text and '"holder": "alice"' in text


def test_heartbeat_keeps_a_long_run_from_looking_stale(store: DocumentStore) -> None:
    clock = fixed_clock()
    lock = StackLock(store, STACK, clock, stale_after_seconds=600)
    lease = lock.acquire("alice", "failover")
    for _ in range(3):
        clock.sleep(500)
        lease.heartbeat()
    assert not lock.is_stale(lock.current())
    with pytest.raises(DrctlError, match="another runbook is running"):
        lock.acquire("bob", "failover")


# --- the journal ------------------------------------------------------------------------


def _run(run_id: str = "failover-1") -> RunRecord:
    return RunRecord(
        run_id=run_id,
        runbook="failover",
        stack=STACK,
        parameters=RunParameters(reason="us-east-1 outage", operator="alice", mode="emergency", force=True),
        started_at=iso(fixed_clock().now()),
        steps=[StepRecord("scale_dr_compute", group="prepare"), StepRecord("promote_dr_database")],
    )


def test_journal_survives_a_process_restart(
    store: DocumentStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    run = _run()
    journal = Journal(store)
    assert journal.load() is None
    journal.save(run)
    run.step("scale_dr_compute").status = StepStatus.SUCCEEDED
    run.step("scale_dr_compute").detail = {"desired": 3}
    run.measurements["data_loss_window_seconds"] = 4.5
    journal.save(run)

    # A new process: new store and journal objects over the same place.
    if isinstance(store, LocalDirectoryStore):
        reopened: DocumentStore = local_store(STACK, root=tmp_path)
    else:
        reopened = s3_store(STACK, BUCKET, client=request.getfixturevalue("s3_client"))
    loaded = Journal(reopened).load()
    assert loaded == run
    assert loaded.parameters.force is True and loaded.step("scale_dr_compute").status is StepStatus.SUCCEEDED


def test_journal_refuses_to_overwrite_a_journal_changed_by_someone_else(store: DocumentStore) -> None:
    mine, theirs = Journal(store), Journal(store)
    mine.save(_run())
    theirs.load()
    taken_over = _run("failover-2")
    theirs.save(taken_over)
    with pytest.raises(DrctlError, match="changed by someone else"):
        mine.save(_run())
    assert Journal(store).load().run_id == "failover-2"


def test_a_journal_from_another_schema_is_refused(store: DocumentStore) -> None:
    store.create(CURRENT_RUN_KEY, b'{"schema": 99, "run_id": "x"}')
    with pytest.raises(DrctlError, match="schema 99"):
        Journal(store).load()


def test_archived_runs_are_kept_apart_from_the_current_one(store: DocumentStore) -> None:
    run = _run()
    run.status = RunStatus.SUCCEEDED
    journal = Journal(store)
    journal.save(run)
    journal.archive(run)
    assert store.read("journal/runs/failover-1.json") is not None
    assert store.read(CURRENT_RUN_KEY) is not None


def test_parameters_differ_except_for_who_resumes() -> None:
    first = RunParameters(reason="outage", operator="alice", mode="emergency")
    assert RunParameters(reason="outage", operator="bob", mode="emergency").differences(first) == []
    assert RunParameters(reason="outage", operator="alice", mode="graceful").differences(first) == ["mode"]


# --- dead holders, damaged files ----------------------------------------------------------------


def _dead_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


def _holder(pid: int, host: str | None = None, **identity: str) -> LockInfo:
    boot_id, namespace = host_identity()
    fields = {"boot_id": boot_id, "pid_namespace": namespace, **identity}
    return LockInfo("alice", host or socket.gethostname(), pid, "failover", "t", iso(fixed_clock().now()), **fields)


def test_a_holder_on_this_host_whose_process_is_gone_is_reported_dead(store: DocumentStore) -> None:
    lock = StackLock(store, STACK, fixed_clock())
    store.create(LOCK_KEY, to_json_bytes(asdict(_holder(_dead_pid()))))
    assert lock.is_stale(lock.current())  # fresh heartbeat, but the process is gone
    with pytest.raises(DrctlError, match="process is gone from this host") as refused:
        lock.acquire("bob", "failover")
    assert "break-lock" in (refused.value.hint or "")


def test_a_live_holder_or_one_on_another_host_is_never_guessed_dead(store: DocumentStore) -> None:
    assert not _holder(os.getpid()).holder_is_dead()
    assert not _holder(_dead_pid(), host="another-host").holder_is_dead()


def test_a_holder_in_another_container_or_boot_of_this_host_is_never_guessed_dead() -> None:
    """Containers with host networking share the hostname, not the pids: a pid gone here may live there."""
    dead = _dead_pid()
    assert _holder(dead).holder_is_dead()
    assert not _holder(dead, pid_namespace="pid:[4026530000]").holder_is_dead()
    assert not _holder(dead, boot_id="00000000-0000-0000-0000-000000000000").holder_is_dead()
    assert not _holder(dead, boot_id="", pid_namespace="").holder_is_dead()  # a record that cannot tell


def test_the_lock_records_where_its_holder_runs(store: DocumentStore) -> None:
    lease = StackLock(store, STACK, fixed_clock()).acquire("ci", "ci-deploy", origin="https://ci/runs/7")
    info = StackLock(store, STACK).current()
    assert info is not None and (info.boot_id, info.pid_namespace) == host_identity() != ("", "")
    assert info.origin == "https://ci/runs/7" and "https://ci/runs/7" in info.describe()
    lease.release()


# --- the heartbeat against S3's failure modes ------------------------------------------------------


def _s3_lease(client: Any, interval: float = 0.05, stale_after: float = 60) -> tuple[Any, Any]:
    store = s3_store(STACK, BUCKET, client=client)
    lease = StackLock(store, STACK, stale_after_seconds=stale_after).acquire("alice", "failover")
    return store, lease


@contextmanager
def _failing_lock_writes(client: Any, count: int) -> Iterator[list[int]]:
    """The next `count` PutObjects of lock.json fail as a dropped connection does; yields the tally."""
    from botocore.exceptions import EndpointConnectionError

    failed: list[int] = []

    def fail(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key", "").endswith(LOCK_KEY) and len(failed) < count:
            failed.append(1)
            raise EndpointConnectionError(endpoint_url="https://s3.us-west-2.amazonaws.com")

    client.meta.events.register("provide-client-params.s3.PutObject", fail, unique_id="failing-lock-writes")
    try:
        yield failed
    finally:
        client.meta.events.unregister("provide-client-params.s3.PutObject", unique_id="failing-lock-writes")


def test_a_transient_s3_error_does_not_lose_the_lease(s3_client: Any) -> None:
    """One dropped connection (or SlowDown, a 5xx) is retried at the next beat; the lease stays ours."""
    store, lease = _s3_lease(s3_client)
    before = StackLock(store, STACK).current()
    with _failing_lock_writes(s3_client, 1) as failed:
        lease.start_heartbeat(0.05)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and StackLock(store, STACK).current() == before:
            time.sleep(0.05)
    lease.check()  # not lost
    assert failed == [1] and lease.lost is None and "Could not connect" in (lease.last_failure or "")
    assert StackLock(store, STACK).current() != before  # renewed after the failure
    lease.release()
    assert store.read(LOCK_KEY) is None


def test_a_lease_that_cannot_be_renewed_for_the_staleness_window_is_lost(s3_client: Any) -> None:
    _, lease = _s3_lease(s3_client, stale_after=0.2)
    with _failing_lock_writes(s3_client, 1000):
        lease.start_heartbeat(0.05)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and lease.lost is None:
            time.sleep(0.05)
        with pytest.raises(LockLostError, match="could not renew the lock"):
            lease.check()
    lease.release()


def test_a_broken_lock_is_noticed_by_its_old_holder_on_s3(s3_client: Any) -> None:
    """catalogue: s3.conditional-write-missing-key: If-Match on a key nobody re-created answers 404, not 412."""
    store, lease = _s3_lease(s3_client)
    StackLock(store, STACK).break_lock("looked dead", "bob")  # nobody takes it after
    with pytest.raises(LockLostError, match="lost the lock"):
        lease.heartbeat()
    lease.start_heartbeat(0.05)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and lease.lost is None:
        time.sleep(0.05)
    with pytest.raises(LockLostError):
        lease.check()
    lease.release()
    assert store.read(LOCK_KEY) is None  # and its release did not write it back


class _SkewedS3:
    """An S3 client whose GetObject answers with the given LastModified and Date headers."""

    def __init__(self, inner: Any, age_seconds: float) -> None:
        self.inner, self.age = inner, age_seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_object(self, **kwargs: Any) -> Any:
        response = self.inner.get_object(**kwargs)
        served = datetime(2030, 1, 1, tzinfo=UTC)
        response["LastModified"] = served - timedelta(seconds=self.age)
        response["ResponseMetadata"]["HTTPHeaders"]["date"] = format_datetime(served, usegmt=True)
        return response


def test_staleness_on_s3_is_measured_by_s3s_clock_not_the_holders(s3_client: Any) -> None:
    """A holder whose clock runs 10 minutes fast writes a heartbeat "from the future"; S3's LastModified tells."""
    writer = s3_store(STACK, BUCKET, client=s3_client)
    fast_clock = FakeClock(datetime.now(UTC) + timedelta(minutes=10))
    StackLock(writer, STACK, fast_clock).acquire("alice", "failover")
    stale = StackLock(s3_store(STACK, BUCKET, client=_SkewedS3(s3_client, 300)), STACK, stale_after_seconds=240)
    fresh = StackLock(s3_store(STACK, BUCKET, client=_SkewedS3(s3_client, 10)), STACK, stale_after_seconds=240)
    assert stale.is_stale(stale.current())  # 300 s by S3's clock, although its heartbeat_at is "in 10 minutes"
    assert not fresh.is_stale(fresh.current())
    with pytest.raises(DrctlError, match="no heartbeat for 300 s"):
        stale.acquire("bob", "failover")


def test_a_ci_deploy_holder_refusal_says_what_to_do_in_an_emergency(store: DocumentStore) -> None:
    lock = StackLock(store, STACK, fixed_clock())
    lock.acquire("arn:aws:sts::1:assumed-role/deploy/dr-platform-deploy-9", "ci-deploy", origin="https://ci/runs/9")
    with pytest.raises(DrctlError, match="a CI deploy is running") as refused:
        lock.acquire("alice", "failover")
    hint = refused.value.hint or ""
    assert "cancel that workflow run" in hint and "drctl break-lock" in hint and "pulumi cancel --stack" in hint
    assert "https://ci/runs/9" in str(refused.value)


def test_a_stale_lock_refusal_names_the_break_lock_command(store: DocumentStore) -> None:
    clock = fixed_clock()
    lock = StackLock(store, STACK, clock, stale_after_seconds=60)
    lock.acquire("alice", "failover")
    clock.sleep(61)
    with pytest.raises(DrctlError, match="looks stale") as refused:
        lock.acquire("bob", "failover")
    assert f"drctl break-lock --stack {STACK}" in (refused.value.hint or "")


def test_a_lock_written_by_another_drctl_version_reads_as_held(store: DocumentStore) -> None:
    """Older locks lack the boot id and pid namespace; a newer drctl may add fields: neither is "damaged"."""
    older = {"holder": "alice", "host": "h", "pid": 1, "runbook": "failover", "acquired_at": "t", "heartbeat_at": "t"}
    store.create(LOCK_KEY, to_json_bytes({**older, "written_by": "drctl 2"}))
    held = StackLock(store, STACK, fixed_clock()).current()
    assert held is not None and held.holder == "alice" and held.boot_id == ""


def test_a_kept_lease_stays_held_after_release(store: DocumentStore) -> None:
    lease = StackLock(store, STACK, fixed_clock()).acquire("alice", "failover")
    lease.keep_held()
    lease.release()
    assert StackLock(store, STACK).current() is not None


@pytest.mark.parametrize(
    "content", [b"", b'{"schema": 1, "run_id": "fail', b"\x00garbage", b"[1, 2]", b'{"schema": 1}']
)
def test_a_damaged_journal_names_its_file_and_can_be_moved_aside(store: DocumentStore, content: bytes) -> None:
    store.create(CURRENT_RUN_KEY, content)
    journal = Journal(store)
    with pytest.raises(CorruptJournalError, match=r"journal/current\.json cannot be read") as refused:
        journal.load()
    assert store.location in str(refused.value) and "--abandon-unfinished" in (refused.value.hint or "")
    kept = journal.quarantine()
    assert kept is not None and "journal/damaged/" in kept
    assert journal.load() is None
    damaged = kept.removeprefix(store.location + "/")
    assert store.read(damaged).data == content  # kept for forensics


def test_break_lock_says_it_removed_a_damaged_lock_file(store: DocumentStore) -> None:
    store.create(LOCK_KEY, b'{"holder": "alice", "ho')
    lock = StackLock(store, STACK, fixed_clock())
    with pytest.raises(DrctlError, match="damaged"):
        lock.current()
    broken = lock.break_lock("the file is truncated", "bob")
    assert broken is not None and broken.previous is None
    assert "removed a damaged lock file" in broken.describe()
    assert store.read(LOCK_KEY) is None


class _LockChangedBeforeDelete:
    """A store where `meanwhile` runs once just before the first conditional delete of the lock: what another
    process (the holder's heartbeat, a new holder) does between break-lock's read and its delete."""

    def __init__(self, inner: DocumentStore, meanwhile: Any) -> None:
        self.inner, self.meanwhile = inner, meanwhile
        self.location = inner.location

    def read(self, key: str) -> Any:
        return self.inner.read(key)

    def create(self, key: str, data: bytes) -> str:
        return self.inner.create(key, data)

    def replace(self, key: str, data: bytes, expected_version: str | None) -> str:
        return self.inner.replace(key, data, expected_version)

    def delete(self, key: str, expected_version: str | None = None) -> None:
        if key == LOCK_KEY and self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        self.inner.delete(key, expected_version)


def test_break_lock_against_a_live_heartbeat_breaks_the_renewed_lock_and_the_holder_stops(
    store: DocumentStore,
) -> None:
    clock = fixed_clock()
    lease = StackLock(store, STACK, clock).acquire("alice", "failover")

    def renewed() -> None:
        clock.sleep(30)
        lease.heartbeat()

    racing = _LockChangedBeforeDelete(store, renewed)
    broken = StackLock(racing, STACK, clock).break_lock("alice's runner is wedged", "bob")
    assert broken is not None and broken.previous is not None and broken.previous.holder == "alice"
    assert racing.meanwhile is None and store.read(LOCK_KEY) is None  # the renewal raced it, and it still broke
    with pytest.raises(LockLostError, match="lost the lock"):
        lease.heartbeat()  # the holder's next beat finds it gone: its run stops
    lease.release()
    assert store.read(LOCK_KEY) is None


def test_break_lock_leaves_a_lock_taken_by_another_holder_meanwhile_and_says_who(store: DocumentStore) -> None:
    clock = fixed_clock()
    lock = StackLock(store, STACK, clock)
    lock.acquire("alice", "failover").release()
    alice = lock.acquire("alice", "failover")

    def taken_over() -> None:
        alice.release()
        lock.acquire("carol", "failback-switch")

    racing = _LockChangedBeforeDelete(store, taken_over)
    with pytest.raises(DrctlError, match=r"changed while it was being broken: it is now held by carol") as refused:
        StackLock(racing, STACK, clock).break_lock("alice looked dead", "bob")
    assert "drctl status" in (refused.value.hint or "")
    assert lock.current().holder == "carol"  # carol's lock is left alone


def test_a_conditional_local_write_excludes_a_delete_from_another_store_object(tmp_path: Path) -> None:
    """Version check and rename are one step across store objects (processes): a break cannot land in between."""
    holder, breaker = local_store(STACK, root=tmp_path), local_store(STACK, root=tmp_path)
    version = holder.create(LOCK_KEY, b"held")
    inside = threading.Event()
    with holder._exclusive():
        deleting = threading.Thread(target=lambda: (inside.set(), breaker.delete(LOCK_KEY, expected_version=version)))
        deleting.start()
        inside.wait(5)
        deleting.join(0.2)
        assert deleting.is_alive()  # waits for the holder's conditional write
        renewed = holder.read(LOCK_KEY)
        assert renewed is not None
    deleting.join(5)
    assert not deleting.is_alive() and holder.read(LOCK_KEY) is None


def test_every_s3_write_carries_a_checksum_as_object_lock_requires(s3_client: Any) -> None:
    """catalogue: s3.object-lock-put-needs-checksum (the control store has Object Lock).

    The client computes checksums only when an operation requires one, as
    AWS_REQUEST_CHECKSUM_CALCULATION=when_required would make it: the store must ask for one itself.
    """
    from botocore.config import Config

    client = boto3.client("s3", region_name="us-west-2", config=Config(request_checksum_calculation="when_required"))
    sent: list[dict[str, str]] = []
    client.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.append(dict(request.headers)))
    store = s3_store(STACK, BUCKET, client=client)
    version = store.create("lock.json", b"{}")
    store.replace("lock.json", b'{"a": 1}', version)
    assert len(sent) == 2
    for headers in sent:
        names = {name.lower(): value for name, value in headers.items()}
        # Sent as the SDK's checksum algorithm with the SHA-256 in a trailer of the chunked body.
        assert names.get("x-amz-sdk-checksum-algorithm") == b"SHA256", sorted(names)
        assert names.get("x-amz-trailer") == b"x-amz-checksum-sha256"
