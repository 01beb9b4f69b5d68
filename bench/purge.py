"""Purge throughput (calls/s, objects/s) against bare minio ``remove_objects`` of as many objects.

    .venv/bin/python bench/purge.py [--calls 100000] [--segments 3] [--threads 16]
                                    [--database-url postgresql+psycopg://...]

Starts its own embedded SeaweedFS server in a temp folder, with a SQLite catalogue there too
unless ``--database-url`` names an *empty* PostgreSQL database. Set-up, not timed: ``--calls``
call rows (each with a job and ``--segments`` segments) inserted in bulk, all started 200 days
ago, and two small objects per call under its prefix (``calls/ID/original.wav`` and
``calls/ID/rendition.mp3`` in the versioned recordings bucket; ingest puts them one folder
deeper, ``calls/ID/TAG/``, which is the same to a purge of the prefix), uploaded by a thread
pool. Then, in one run:

1. callrec: one ``storage.purge.purge`` that finds every call past its deadline, marks them,
   deletes every object version under each call's prefix, then the rows with a tombstone and an
   audit event per call;
2. bare: the same number of objects in a versioned bucket of their own, erased the least a
   library must do: one versioned listing and ``Minio.remove_objects`` (1000 per request).

Afterwards it checks that the calls' prefix in the bucket and the calls table are empty, and
prints the RSS of this process when the purge started and its peak during the purge (Linux).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from minio import Minio
from minio.commonconfig import ENABLED
from minio.deleteobjects import DeleteObject
from minio.versioningconfig import VersioningConfig
from sqlmodel import select

from bench.common import bare_client, rss_mb
from settings import load_settings
from storage.catalogue import Call, Job, Segment, Speaker, Tombstone
from storage.connect import Storage, open_storage
from storage.purge import call_prefix, purge

CHUNK = 5000  # rows per insert transaction
PREFIX = "bench-purge-"  # every call id; the bucket prefix checked empty afterwards
BARE_BUCKET = "bench-bare-purge"
ORIGINAL, RENDITION = b"RIFF....WAVE" + bytes(500), b"ID3" + bytes(300)


def call_ids(count: int) -> Iterator[str]:
    return (f"{PREFIX}{index:07d}" for index in range(count))


def insert_rows(storage: Storage, count: int, *, segments: int, started: datetime) -> None:
    """Calls, jobs and segments in bulk (core inserts of validated models, CHUNK per commit)."""
    ids = list(call_ids(count))
    for start in range(0, count, CHUNK):
        chunk = ids[start : start + CHUNK]
        calls = [
            Call(
                id=call_id, started_at=started, duration_s=60.0, channels=2, sample_rate=8000,
                codec="pcm_s16le", sha256="0" * 64, original_key=f"calls/{call_id}/original.wav",
                rendition_key=f"calls/{call_id}/rendition.mp3",
            ).model_dump()
            for call_id in chunk
        ]  # fmt: skip
        jobs = [Job(call_id=call_id).model_dump(exclude={"id"}) for call_id in chunk]
        rows = [
            Segment(
                call_id=call_id, speaker=Speaker.AGENT, start_s=float(n), end_s=n + 1.0,
                text="goedemiddag", redacted_text="goedemiddag", model="bench",
            ).model_dump(exclude={"id"})
            for call_id in chunk
            for n in range(segments)
        ]  # fmt: skip
        with storage.catalogue.session() as session:
            session.execute(sa.insert(Call), calls)
            session.execute(sa.insert(Job), jobs)
            if rows:
                session.execute(sa.insert(Segment), rows)


def upload(put: Callable[[str, bytes], object], keys: list[str], threads: int) -> None:
    """Small objects, many at once: set-up is bounded by round trips, not bytes."""
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(
            lambda key: put(key, RENDITION if key.endswith(".mp3") else ORIGINAL), keys
        ):
            pass


def object_keys(count: int) -> list[str]:
    return [
        f"{call_prefix(c)}{name}"
        for c in call_ids(count)
        for name in ("original.wav", "rendition.mp3")
    ]


def bare_erase(client: Minio, bucket: str) -> int:
    """Every version in ``bucket``: one listing, then ``remove_objects`` in batches of 1000."""
    targets = [
        DeleteObject(o.object_name or "", o.version_id)
        for o in client.list_objects(bucket, recursive=True, include_version=True)
    ]
    for start in range(0, len(targets), 1000):
        errors = list(client.remove_objects(bucket, targets[start : start + 1000]))
        assert not errors, errors[0]
    return len(targets)


def count_rows(storage: Storage, table: type[Call] | type[Tombstone]) -> int:
    with storage.catalogue.session() as session:
        return session.exec(select(sa.func.count()).select_from(table)).one()


@contextlib.contextmanager
def timed(label: str, seconds: dict[str, float]) -> Iterator[None]:
    """Time a phase into ``seconds`` and say so on stderr: a long run shows where it is."""
    print(f"{label}...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    yield
    seconds[label] = time.perf_counter() - started
    print(f"{label}: {seconds[label]:.1f} s", file=sys.stderr, flush=True)


def reset_peak_rss() -> None:
    """Start ``VmHWM`` afresh, so the peak measured is the purge's, not the set-up's."""
    Path("/proc/self/clear_refs").write_text("5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--segments", type=int, default=3, help="segments per call")
    parser.add_argument("--threads", type=int, default=16, help="upload threads (set-up only)")
    parser.add_argument(
        "--database-url", default=None, help="an empty PostgreSQL database (default: SQLite)"
    )
    args = parser.parse_args()
    now = datetime.now(UTC)
    seconds: dict[str, float] = {}

    with tempfile.TemporaryDirectory(prefix="callrec-bench-") as tmp:
        # Always the embedded server, whatever CALLREC_ variables are set.
        settings = load_settings(
            data_dir=Path(tmp) / "data", s3_endpoint=None, database_url=args.database_url
        )
        with open_storage(settings) as storage:
            if count_rows(storage, Call) or count_rows(storage, Tombstone):
                sys.exit("bench/purge.py: the database already holds calls; give an empty one")
            endpoint = storage.objects.endpoint
            client = bare_client(endpoint)
            client.make_bucket(BARE_BUCKET)
            client.set_bucket_versioning(BARE_BUCKET, VersioningConfig(ENABLED))
            keys, bucket = object_keys(args.calls), settings.bucket_recordings

            with timed("rows", seconds):
                started = now - timedelta(days=200)
                insert_rows(storage, args.calls, segments=args.segments, started=started)
            with timed("uploads", seconds):
                upload(lambda k, data: storage.objects.put(bucket, k, data), keys, args.threads)
                upload(
                    lambda k, data: client.put_object(BARE_BUCKET, k, io.BytesIO(data), len(data)),
                    keys,
                    args.threads,
                )
            rss_before = rss_mb("VmRSS")
            reset_peak_rss()
            with timed("callrec purge", seconds):
                report = purge(storage, now=now)
            rss_peak = rss_mb("VmHWM")
            with timed("bare remove_objects", seconds):
                bare_objects = bare_erase(client, BARE_BUCKET)
            with timed("listing the emptied prefix", seconds):
                # The bare client: its read timeout (5 min) outlasts SeaweedFS walking the
                # folders the deleted calls leave behind.
                listing = client.list_objects(
                    bucket, prefix=f"calls/{PREFIX}", recursive=True, include_version=True
                )
                left = sum(1 for _ in listing)
            rows_left, tombstones = count_rows(storage, Call), count_rows(storage, Tombstone)
            catalogue = "PostgreSQL" if args.database_url else "SQLite"

    objects = 2 * args.calls
    assert len(report.calls_purged) == args.calls and report.objects_deleted == objects, report
    assert bare_objects == objects
    print(
        f"purge benchmark: {args.calls} expired calls, {objects} objects (2 per call, small), "
        f"{args.segments} segments and a job per call; SeaweedFS + {catalogue} on this machine"
    )
    print(
        f"  set-up (not timed): rows {seconds['rows']:.1f} s, "
        f"uploads of both object sets {seconds['uploads']:.1f} s"
    )
    ours, bare = seconds["callrec purge"], seconds["bare remove_objects"]
    print(
        f"  callrec purge: {ours:.1f} s, {args.calls / ours:.1f} calls/s, "
        f"{objects / ours:.1f} objects/s"
    )
    print(
        f"  bare minio remove_objects (versioned listing + batches of 1000): {bare:.1f} s, "
        f"{bare_objects / bare:.1f} objects/s; callrec takes {ours / bare:.1f}x as long"
    )
    print(
        f"  after the purge: {left} object versions under calls/{PREFIX}* (listing them took "
        f"{seconds['listing the emptied prefix']:.1f} s), {rows_left} call rows, "
        f"{tombstones} tombstones"
    )
    print(
        f"  RSS of this process: {rss_before:.0f} MB when the purge started, "
        f"peak {rss_peak:.0f} MB during it"
    )
    db = " --database-url URL" if args.database_url else ""
    print(
        f"reproduce: .venv/bin/python bench/purge.py --calls {args.calls} "
        f"--segments {args.segments}{db}"
    )
    if left or rows_left or tombstones != args.calls:
        sys.exit("bench/purge.py: the purge left something behind")


if __name__ == "__main__":
    main()
