"""Ingest throughput (calls/s) against a bare minio-SDK upload loop of the same files.

    .venv/bin/python bench/ingest_throughput.py [--calls 200] [--seconds 60] [--workers 4]

Starts its own embedded SeaweedFS server and SQLite catalogue in a temp folder, renders one
stereo 8 kHz PCM WAV of ``--seconds`` and uses it for every call (each with its own call id),
then measures, in one run:

1. bare: ``Minio.fput_object`` of every file, one after another, and with ``--workers`` threads
   (the least work any ingest must do: one PUT per recording);
2. callrec: the files already in the incoming bucket (as a PBX leaves them), one
   ``poll_incoming`` that validates, hashes, probes, stores the original, writes the call and its
   job, and removes the incoming object, with ``--workers`` threads.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bare_client
from ingest.pipeline import IngestOptions, Outcome
from ingest.poller import poll_incoming
from settings import load_settings
from storage.connect import open_storage
from tests.audio_files import make_recording


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="callrec-bench-") as tmp:
        root = Path(tmp)
        recording = make_recording(root / "call", seconds=args.seconds)
        size_mb = recording.stat().st_size / 1e6
        # Always the embedded server and SQLite, whatever CALLREC_ variables are set.
        settings = load_settings(data_dir=root / "data", s3_endpoint=None, database_url=None)
        with open_storage(settings) as storage:
            objects, endpoint = storage.objects, storage.objects.endpoint
            client = bare_client(endpoint)
            client.make_bucket("bench-bare")

            def bare_put(index: int) -> None:
                client.fput_object("bench-bare", f"seq/{index:05d}.wav", str(recording))

            started = time.perf_counter()
            for index in range(args.calls):
                bare_put(index)
            bare_seq = args.calls / (time.perf_counter() - started)

            started = time.perf_counter()
            with ThreadPoolExecutor(args.workers) as pool:
                list(pool.map(bare_put, range(args.calls)))
            bare_par = args.calls / (time.perf_counter() - started)

            when = (datetime.now(UTC) - timedelta(days=1)).isoformat()
            for index in range(args.calls):
                objects.put(
                    settings.bucket_incoming, f"pbx/{index:05d}.wav", recording,
                    metadata={"call_id": f"bench-{index:05d}", "started_at": when},
                )  # fmt: skip
            started = time.perf_counter()
            report = poll_incoming(
                storage, now=datetime.now(UTC), options=IngestOptions.from_settings(storage),
                limit=args.calls * 2, workers=args.workers,
            )  # fmt: skip
            ours = args.calls / (time.perf_counter() - started)
            assert report.count(Outcome.INGESTED) == args.calls, report

    print(
        f"ingest benchmark: {args.calls} calls of {args.seconds:g} s stereo 8 kHz PCM WAV "
        f"({size_mb:.2f} MB each), {args.workers} workers, SeaweedFS + SQLite on this machine"
    )
    print(f"  bare minio fput_object, sequential : {bare_seq:7.1f} calls/s")
    print(f"  bare minio fput_object, {args.workers} threads  : {bare_par:7.1f} calls/s")
    print(
        f"  callrec ingest (poll_incoming)     : {ours:7.1f} calls/s "
        f"({ours / bare_par:.2f}x the threaded bare upload)"
    )
    print(
        "reproduce: .venv/bin/python bench/ingest_throughput.py "
        f"--calls {args.calls} --seconds {args.seconds:g} --workers {args.workers}"
    )


if __name__ == "__main__":
    main()
