"""Faults in the middle of a batch, then a re-run: every recording ends as one call or one
quarantined item, nothing is duplicated, orphaned or stuck (``tests/invariants.py``).

The faults: ``callrec ingest``, ``callrec worker`` and ``callrec purge`` killed with SIGKILL at a
random point of a batch; the S3 server killed and brought back in the middle of an ingest batch;
PostgreSQL restarted in the middle of an ingest batch and of a worker batch. A random point is
drawn from a seed (in the test id, and printed): the kill comes after a drawn number of items
is settled plus a drawn delay, so a seed always aims at the same stretch of the batch (where
exactly it lands still depends on the machine's speed). ``--run-slow`` runs many more seeds.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from ingest.backfill import LocalRecording, upload_and_ingest
from ingest.pipeline import IngestOptions, Outcome
from ingest.poller import poll_incoming
from storage.access import Role, Viewer
from storage.catalogue import Call, Catalogue, Job, JobState, QuarantineItem
from storage.connect import Storage
from storage.embedded_s3 import EmbeddedS3, S3Endpoint
from storage.holds import place_hold
from storage.objects import ObjectStore
from storage.purge import purge
from tests.audio_files import make_recording
from tests.invariants import Source, assert_interrupted_purge_is_safe, assert_recovered
from tests.postgres_server import PostgresCluster
from tests.stores import callrec_env, settings_for
from tests.test_ingest_crash import _CRASHER
from tests.test_purge_properties import trace
from transcribe.engine import Transcriber
from transcribe.jobs import LeasePolicy
from transcribe.model import bundled_model_dir
from transcribe.worker import Worker

CALLREC = Path(sys.executable).parent / "callrec"
ROOT = Path(__file__).resolve().parents[1]
SEEDS = [11, 23, 37]
SOAK_SEEDS = range(100, 120)
WORKER_BATCH = 12  # calls per worker batch: each costs about 0.3 s of model time
LEASE_S = 3.0  # short, so a killed worker's job is claimable again within the test
OUTAGE_S = 2.0  # how long a restarted server stays down
TIMEOUT_S = 180
WORKER = [str(CALLREC), "worker", "--until-idle"]


def seeded(normal: Sequence[int] = SEEDS, *, slow: bool = False) -> pytest.MarkDecorator:
    """The normal run's seeds, or (``slow``) the soak run's many more."""
    seeds = [pytest.param(s, marks=pytest.mark.slow) for s in SOAK_SEEDS] if slow else normal
    return pytest.mark.parametrize("seed", seeds, ids=lambda s: f"seed={s}")


# -- the batch ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """Recordings as a PBX delivers them (each of other bytes), shared by the tests, which give
    them call ids of their own: good ones in several formats (some need a playback rendition)
    and bad ones that must end in quarantine."""

    folder: Path
    good: list[Path]
    bad: dict[str, Path]  # why it is bad -> file

    def metadata(self, tag: str, started_at: datetime) -> dict[Path, dict[str, str]]:
        """What each file's sidecar says: call ids of the test's own (``tag``), but none for
        the nameless one (``tag`` still makes its incoming key the test's own)."""
        started = started_at.isoformat()
        ids = {path: f"{tag}-{n:02d}" for n, path in enumerate(self.good)}
        ids |= {path: f"{tag}-{why}" for why, path in self.bad.items() if why != "no-call-id"}
        meta = {path: {"call_id": call_id, "started_at": started} for path, call_id in ids.items()}
        return meta | {self.bad["no-call-id"]: {"started_at": started, "batch": tag}}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    folder = tmp_path_factory.mktemp("fault-batch")
    formats = ["wav-pcm-8k", "wav-ulaw", "wav-pcm-16k", "flac", "wav-alaw"]
    good = [
        make_recording(
            folder / f"rec{n:02d}", seconds=0.6 + 0.05 * n, channels=1 + n % 2, fmt=formats[n % 5]
        )
        for n in range(20)
    ]
    (folder / "empty.wav").write_bytes(b"")
    (folder / "junk.wav").write_bytes(b"this is a text file, not a recording\n" * 50)
    nameless = make_recording(folder / "nameless", seconds=0.55)
    bad = {"empty": folder / "empty.wav", "junk": folder / "junk.wav", "no-call-id": nameless}
    return Batch(folder=folder, good=good, bad=bad)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled model joined once for the worker processes this module starts."""
    return bundled_model_dir(tmp_path_factory.mktemp("fault-model"))


def manifest(tmp_path: Path, meta: dict[Path, dict[str, str]]) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({p.name: m for p, m in meta.items()}))
    return path


def ingest_command(batch: Batch, manifest_path: Path) -> list[str]:
    return [str(CALLREC), "ingest", "--json", "--metadata", str(manifest_path), str(batch.folder)]


def ingest_to_the_end(
    command: list[str], env: dict[str, str], meta: dict[Path, dict[str, str]], cwd: Path
) -> list[Source]:
    """The re-run after a fault: it must finish cleanly; returns the sources with the incoming
    keys it reports (derived from bytes and metadata, the same as the interrupted run's)."""
    done = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    results = json.loads(done.stdout)["results"]
    assert {r["outcome"] for r in results} <= {"ingested", "duplicate", "quarantined"}, results
    by_name = {r["key"].rsplit("/", 1)[1]: r["key"] for r in results}
    return [Source.of(by_name[path.name], path, m.get("call_id")) for path, m in meta.items()]


def ingest_in_process(
    storage: Storage, paths: Sequence[Path], meta: dict[Path, dict[str, str]], *, now: datetime
) -> list[Source]:
    recordings = [LocalRecording(path, meta[path]) for path in paths]
    results = upload_and_ingest(
        storage, recordings, now=now, options=IngestOptions.from_settings(storage)
    )
    assert all(r.outcome == Outcome.INGESTED for r in results), results
    return [Source.of(r.key, path, r.call_id) for r, path in zip(results, paths, strict=True)]


# -- watching and killing -----------------------------------------------------------------------


def settled(storage: Storage) -> int:
    """Recordings ingest has settled so far: calls and quarantine items."""
    with storage.catalogue.session() as session:
        calls = session.exec(select(sa.func.count()).select_from(Call)).one()
        items = session.exec(select(sa.func.count()).select_from(QuarantineItem)).one()
    return int(calls) + int(items)


def jobs_done(storage: Storage) -> int:
    with storage.catalogue.session() as session:
        return int(
            session.exec(
                select(sa.func.count()).select_from(Job).where(col(Job.state) == JobState.DONE)
            ).one()
        )


def wait_until(progress: Callable[[], int], target: int, child: subprocess.Popen[str]) -> float:
    """Poll until ``target`` items are settled (or the child ended); returns when, monotonic."""
    give_up = time.monotonic() + TIMEOUT_S
    while child.poll() is None and progress() < target:
        assert time.monotonic() < give_up, f"no progress to {target} within {TIMEOUT_S} s"
        time.sleep(0.01)
    return time.monotonic()


@dataclass(frozen=True)
class RandomPoint:
    """Where in a batch of ``total`` items a fault strikes: after ``after`` items are settled
    (at least two, at most three quarters), then ``fraction`` of the time an item has taken so
    far. The pause scales with the machine's pace, so a fast machine does not finish the batch
    before the kill (a fixed pause did, on a quiet machine: 30 ms per tiny call)."""

    after: int
    fraction: float

    @classmethod
    def draw(cls, seed: int, total: int) -> RandomPoint:
        rng = random.Random(seed)
        point = cls(after=rng.randint(2, max(2, total * 3 // 4)), fraction=rng.random())
        print(f"seed {seed}: fault after {point.after} of {total} and {point.fraction:.2f} item")
        return point


def kill_at(
    point: RandomPoint, command: list[str], env: dict[str, str], progress: Callable[[], int]
) -> None:
    """Run ``command`` and SIGKILL it at ``point``; it must still have been running."""
    child = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        first = wait_until(progress, 1, child)
        reached = wait_until(progress, point.after, child)
        time.sleep(point.fraction * (reached - first) / (point.after - 1))
        child.send_signal(signal.SIGKILL)
        _, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, f"it ended before the kill: {stderr}"


def outage_during(
    command: list[str],
    env: dict[str, str],
    progress: Callable[[], int],
    after: int,
    fault: Callable[[], None],
) -> subprocess.CompletedProcess[str]:
    """Run ``command``, call ``fault`` once ``after`` items are settled, and let it end."""
    child = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(progress, after, child)
        assert child.poll() is None, "the batch ended before the fault"
        fault()
        stdout, stderr = child.communicate(timeout=TIMEOUT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return subprocess.CompletedProcess(command, child.returncode, stdout, stderr)


def wait_for_dead_leases(storage: Storage) -> None:
    """Until every lease a killed worker held has run out."""
    with storage.catalogue.session() as session:
        leases = session.exec(
            select(Job.lease_expires_at).where(col(Job.state) == JobState.RUNNING)
        ).all()
    last = max((lease for lease in leases if lease is not None), default=None)
    if last is not None:
        time.sleep(max(0.0, (last - datetime.now(UTC)).total_seconds()) + 0.1)


def worker_env(model_dir: Path) -> dict[str, str]:
    """A short lease, and the model joined once for the module."""
    return {"CALLREC_WORKER_LEASE_S": str(LEASE_S), "CALLREC_MODEL": str(model_dir)}


def drain(storage: Storage, transcriber: Transcriber) -> None:
    Worker(storage, transcriber, policy=LeasePolicy(lease_s=LEASE_S)).run(until_idle=True)


def assert_all_transcribed(storage: Storage, sources: list[Source]) -> None:
    with storage.catalogue.session() as session:
        states = {job.call_id: str(job.state) for job in session.exec(select(Job))}
    left = {call_id: state for call_id, state in states.items() if state != JobState.DONE}
    assert set(states) == {s.call_id for s in sources} and not left, f"not transcribed: {left}"


# -- SIGKILL at a random point ------------------------------------------------------------------


def check_ingest_killed(storage: Storage, batch: Batch, tmp_path: Path, seed: int) -> None:
    meta = batch.metadata(f"ki{uuid.uuid4().hex[:8]}", datetime.now(UTC) - timedelta(days=2))
    command = ingest_command(batch, manifest(tmp_path, meta))
    env = callrec_env(storage)
    kill_at(RandomPoint.draw(seed, len(meta)), command, env, lambda: settled(storage))

    sources = ingest_to_the_end(command, env, meta, tmp_path)
    assert_recovered(storage, sources, now=datetime.now(UTC))


@seeded()
def test_ingest_killed_at_a_random_point_then_rerun_accounts_for_every_recording_once(
    storage: Storage, batch: Batch, tmp_path: Path, seed: int
):
    check_ingest_killed(storage, batch, tmp_path, seed)


@seeded(slow=True)
def test_soak_ingest_killed_at_random_points(
    storage: Storage, batch: Batch, tmp_path: Path, seed: int
):
    check_ingest_killed(storage, batch, tmp_path, seed)


def check_worker_killed(
    storage: Storage, batch: Batch, transcriber: Transcriber, model_dir: Path, seed: int
) -> None:
    meta = batch.metadata(f"kw{uuid.uuid4().hex[:8]}", datetime.now(UTC) - timedelta(days=1))
    sources = ingest_in_process(storage, batch.good[:WORKER_BATCH], meta, now=datetime.now(UTC))
    env = callrec_env(storage) | worker_env(model_dir)
    point = RandomPoint.draw(seed, len(sources))
    kill_at(point, WORKER, env, lambda: jobs_done(storage))

    wait_for_dead_leases(storage)
    drain(storage, transcriber)
    assert_all_transcribed(storage, sources)
    assert_recovered(storage, sources, now=datetime.now(UTC))


@seeded(SEEDS[:2])  # the slowest: a model to load, a lease to wait out
def test_worker_killed_at_a_random_point_then_rerun_transcribes_every_call_exactly_once(
    storage: Storage, batch: Batch, transcriber: Transcriber, model_dir: Path, seed: int
):
    check_worker_killed(storage, batch, transcriber, model_dir, seed)


@seeded(slow=True)
def test_soak_worker_killed_at_random_points(
    storage: Storage, batch: Batch, transcriber: Transcriber, model_dir: Path, seed: int
):
    check_worker_killed(storage, batch, transcriber, model_dir, seed)


def check_purge_killed(storage: Storage, batch: Batch, seed: int) -> None:
    now = datetime.now(UTC)  # `callrec purge` judges by the real clock
    tag = f"kp{uuid.uuid4().hex[:8]}"
    old, young = now - timedelta(days=185), now - timedelta(days=10)
    due_paths, held_paths, young_paths = batch.good[:14], batch.good[14:16], batch.good[16:]
    meta = batch.metadata(tag, old)
    for path in young_paths:
        meta[path] = meta[path] | {"started_at": young.isoformat()}
    # Ingested while they were young, with a job each; the held ones under a dispute hold.
    sources = ingest_in_process(storage, due_paths + held_paths, meta, now=old + timedelta(hours=1))
    sources += ingest_in_process(storage, young_paths, meta, now=now)
    for source in sources[len(due_paths) : len(due_paths) + len(held_paths)]:
        place_hold(
            storage, str(source.call_id), reason="complaint 42", review_at=now + timedelta(days=30),
            viewer=Viewer("handler", Role.COMPLAINT_HANDLER), now=now,
        )  # fmt: skip
    due = {str(s.call_id) for s in sources[: len(due_paths)]}
    kept = {str(s.call_id) for s in sources} - due
    before = {call_id: trace(storage, call_id) for call_id in due | kept}

    def erased() -> int:
        listing = storage.objects.list(storage.settings.bucket_recordings, prefix=f"calls/{tag}-")
        return len(due - {o.key.split("/")[1] for o in listing})

    point = RandomPoint.draw(seed, len(due))
    kill_at(point, [str(CALLREC), "purge", "--json"], callrec_env(storage), erased)
    assert_interrupted_purge_is_safe(storage, before, due=due, now=now)

    purge(storage, now=datetime.now(UTC))
    assert_recovered(storage, sources, now=datetime.now(UTC), erased=due)
    assert {call_id: trace(storage, call_id) for call_id in kept} == {
        call_id: before[call_id] for call_id in kept
    }


@seeded()
def test_purge_killed_at_a_random_point_never_shows_a_call_without_its_objects_and_converges(
    storage: Storage, batch: Batch, seed: int
):
    check_purge_killed(storage, batch, seed)


@seeded(slow=True)
def test_soak_purge_killed_at_random_points(storage: Storage, batch: Batch, seed: int):
    check_purge_killed(storage, batch, seed)


# -- servers restarted mid-batch ----------------------------------------------------------------


@contextlib.contextmanager
def stores_on(endpoint: S3Endpoint, data_dir: Path, **overrides: object) -> Iterator[Storage]:
    """A Storage on a private server (its buckets made), the catalogue under ``data_dir``."""
    settings = settings_for(data_dir, endpoint, **overrides)
    objects = ObjectStore(endpoint)
    objects.ensure_buckets(settings.buckets)
    with Catalogue.open(settings.catalogue_url) as catalogue:
        yield Storage(settings=settings, objects=objects, catalogue=catalogue)


def crash(server: EmbeddedS3) -> Callable[[], None]:
    def kill() -> None:
        pid = server.server_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        while server.server_pid() is not None:
            time.sleep(0.05)

    return kill


def quarantined_names(storage: Storage) -> set[str]:
    with storage.catalogue.session() as session:
        return {i.source_key.rsplit("/", 1)[1] for i in session.exec(select(QuarantineItem))}


def test_an_s3_crash_mid_ingest_is_one_line_quarantines_nothing_and_the_next_run_converges(
    batch: Batch, tmp_path: Path
):
    meta = batch.metadata(f"s3{uuid.uuid4().hex[:8]}", datetime.now(UTC) - timedelta(days=2))
    command = ingest_command(batch, manifest(tmp_path, meta))
    server = EmbeddedS3(tmp_path / "s3-private")
    try:
        with stores_on(server.acquire(), tmp_path / "data") as storage:
            run = outage_during(
                command,
                callrec_env(storage),
                lambda: settled(storage),
                len(meta) // 3,
                crash(server),
            )
            assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
            assert run.stderr.splitlines()[-1].startswith(
                "callrec: error: cannot reach the S3 server"
            )
            assert quarantined_names(storage) <= {p.name for p in batch.bad.values()}, (
                "a recording was quarantined for the outage"
            )
        server.release()  # the crashed server's record; the next start is a new process
        with stores_on(server.acquire(), tmp_path / "data") as storage:
            sources = ingest_to_the_end(command, callrec_env(storage), meta, tmp_path)
            assert_recovered(storage, sources, now=datetime.now(UTC))
    finally:
        server.release()


def test_an_s3_crash_mid_transcription_fails_no_job_and_the_next_run_transcribes_every_call(
    batch: Batch, transcriber: Transcriber, model_dir: Path, tmp_path: Path
):
    meta = batch.metadata(f"sw{uuid.uuid4().hex[:8]}", datetime.now(UTC) - timedelta(days=1))
    server = EmbeddedS3(tmp_path / "s3-private")
    try:
        with stores_on(server.acquire(), tmp_path / "data") as storage:
            now = datetime.now(UTC)
            sources = ingest_in_process(storage, batch.good[:WORKER_BATCH], meta, now=now)
            env = callrec_env(storage) | worker_env(model_dir)
            run = outage_during(WORKER, env, lambda: jobs_done(storage), 3, crash(server))
            # It cannot drain the queue: one line, and no job failed for the outage.
            assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
            last = run.stderr.splitlines()[-1]
            assert last.startswith("callrec: error: cannot reach the S3 server"), run.stderr
            with storage.catalogue.session() as session:
                errors = [j.last_error for j in session.exec(select(Job)) if j.last_error]
            assert errors == [], "a job was failed for the outage"
        server.release()
        with stores_on(server.acquire(), tmp_path / "data") as storage:
            wait_for_dead_leases(storage)
            drain(storage, transcriber)
            assert_all_transcribed(storage, sources)
            assert_recovered(storage, sources, now=datetime.now(UTC))
    finally:
        server.release()


def restart(cluster: PostgresCluster) -> Callable[[], None]:
    def stop_and_start() -> None:
        cluster.stop()
        time.sleep(OUTAGE_S)
        cluster.start()

    return stop_and_start


@contextlib.contextmanager
def stores_on_postgres(
    cluster: PostgresCluster, s3_endpoint: S3Endpoint, object_store: ObjectStore, data_dir: Path
) -> Iterator[Storage]:
    url = cluster.server.create_database()
    settings = settings_for(data_dir, s3_endpoint, database_url=url)
    with Catalogue.open(url) as catalogue:
        yield Storage(settings=settings, objects=object_store, catalogue=catalogue)


@pytest.mark.postgres
def test_a_postgresql_restart_mid_ingest_leaves_the_rest_for_the_next_run_which_converges(
    private_postgres: PostgresCluster,
    s3_endpoint: S3Endpoint,
    object_store: ObjectStore,
    batch: Batch,
    tmp_path: Path,
):
    meta = batch.metadata(f"pi{uuid.uuid4().hex[:8]}", datetime.now(UTC) - timedelta(days=2))
    command = ingest_command(batch, manifest(tmp_path, meta))
    with stores_on_postgres(
        private_postgres, s3_endpoint, object_store, tmp_path / "data"
    ) as storage:
        env = callrec_env(storage) | {"CALLREC_DATABASE_URL": str(storage.settings.database_url)}
        run = outage_during(
            command, env, lambda: settled(storage), len(meta) // 3, restart(private_postgres)
        )
        # While it was down: one line per recording it could not settle, left for a re-run.
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
        assert run.stderr.splitlines()[-1].startswith("callrec: error: "), run.stderr
        left = [r for r in json.loads(run.stdout)["results"] if r["outcome"] == "retry"]
        assert left, "the restart fell after the batch"
        assert all(r["reason"].startswith("lost the catalogue database") for r in left), left
        assert quarantined_names(storage) <= {p.name for p in batch.bad.values()}
        sources = ingest_to_the_end(command, env, meta, tmp_path)
        assert_recovered(storage, sources, now=datetime.now(UTC))


@pytest.mark.postgres
def test_a_postgresql_restart_mid_transcription_then_rerun_transcribes_every_call_once(
    private_postgres: PostgresCluster,
    s3_endpoint: S3Endpoint,
    object_store: ObjectStore,
    batch: Batch,
    transcriber: Transcriber,
    model_dir: Path,
    tmp_path: Path,
):
    meta = batch.metadata(f"pw{uuid.uuid4().hex[:8]}", datetime.now(UTC) - timedelta(days=1))
    with stores_on_postgres(
        private_postgres, s3_endpoint, object_store, tmp_path / "data"
    ) as storage:
        sources = ingest_in_process(storage, batch.good[:WORKER_BATCH], meta, now=datetime.now(UTC))
        env = callrec_env(storage) | worker_env(model_dir)
        env["CALLREC_DATABASE_URL"] = str(storage.settings.database_url)
        run = outage_during(WORKER, env, lambda: jobs_done(storage), 3, restart(private_postgres))
        # It cannot drain the queue: it says so in one line and leaves the rest claimable.
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
        last = run.stderr.splitlines()[-1]
        assert last.startswith("callrec: error: lost the catalogue database"), run.stderr
        wait_for_dead_leases(storage)
        drain(storage, transcriber)
        assert_all_transcribed(storage, sources)
        assert_recovered(storage, sources, now=datetime.now(UTC))


# -- found by these tests -----------------------------------------------------------------------


def test_a_conflicting_recording_after_a_crash_leaves_no_stray_version_under_the_call(
    storage: Storage, batch: Batch, key_prefix: str
):
    """Ingest of A is killed right after storing A's original; B, with A's call id and other
    bytes, is settled first by the re-run: B becomes the call and A is quarantined. Each
    recording stores under a folder of its own, so nothing of A stays under B's call (it once
    did, as a second version of B's original that verify could not see)."""
    now = datetime.now(UTC)
    call_id = f"cf-{uuid.uuid4().hex[:8]}"
    meta = {"call_id": call_id, "started_at": (now - timedelta(days=1)).isoformat()}
    first, second = batch.good[0], batch.good[2]  # same format, other bytes
    a_key, b_key = f"{key_prefix}b-first.wav", f"{key_prefix}a-second.wav"  # B is listed first
    incoming = storage.settings.bucket_incoming
    storage.objects.put(incoming, a_key, first, metadata=meta)
    crashed = subprocess.run(
        [sys.executable, "-c", _CRASHER, "_store_original", a_key, now.isoformat()],
        env=callrec_env(storage), cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    storage.objects.put(incoming, b_key, second, metadata=meta)

    poll_incoming(
        storage, now=now, options=IngestOptions.from_settings(storage), prefix=key_prefix, workers=1
    )

    sources = [Source.of(a_key, first, call_id), Source.of(b_key, second, call_id)]
    assert_recovered(storage, sources, now=datetime.now(UTC))
