"""Load: many short calls with real speech through ingest, transcription and search on one
machine, each stage in its own OS process as an operator runs it, with every process's memory
watched.

    .venv/bin/python bench/load.py [--calls 10000] [--clip-s 3 6] [--concurrency 1] [--runs 20]

A fresh embedded installation (SeaweedFS + SQLite in a temp folder, in place of whatever CALLREC_
settings say where data lives; every other CALLREC_ setting in the environment, e.g.
``CALLREC_DEVICE=cuda`` or ``CALLREC_TRANSCRIBE_BEAM_SIZE``, is passed on to every child and
printed). Set-up, not callrec's work: ``--calls`` stereo 8 kHz PCM WAV clips of ``--clip-s`` (3 to
6 s), cut at turn starts from the bundled sample dialogues (real Dutch speech; dialogue, turn and
length drawn per call: over a thousand different clips), each with its own call id and its
dialogue's metadata as S3 user metadata, put into the incoming bucket by a bare minio client with
threads, as a PBX would (that rate is printed as the bare library's). Then, timed,
each in a child process whose peak RSS the kernel reports when it is reaped (``os.wait4``'s
``ru_maxrss``):

1. ingest: the scheduler's poll job (``poll_incoming``, 1000 keys a poll,
   ``CALLREC_INGEST_WORKERS`` threads) back to back until a poll settles nothing more, in a
   process of its own (the CLI has no one-shot poll, and ``callrec scheduler`` would also
   transcribe);
2. transcription: ``callrec worker --until-idle --concurrency N``, its RSS sampled every
   ``--sample-s`` against the calls done, so a leak shows as MB per 1000 calls (bare
   faster-whisper on the same kind of audio: ``bench/transcribe.py``);
3. search: ``callrec search`` once (what one command costs: start, open, search), then in this
   process ``--runs`` rounds of queries over the final corpus as a complaint handler and as an
   analyst, each through ``search()`` and then the bare FTS5 match (``bench/search.py``).

Prints calls/s per stage, the real-time factor, search p50/p95, the peak RSS of every process
(SeaweedFS's ``VmHWM``, this one's), the machine's load, and the counts at the end: it exits 1
unless every call is catalogued or quarantined, every job done or failed and nothing is left in
the incoming bucket.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import random
import resource
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minio import Minio
from sqlmodel import func
from sqlmodel import select as sql_select

from bench.common import bare_client, rss_mb
from bench.purge import timed
from ingest.demo import sample_recordings
from ingest.pipeline import IngestOptions, Outcome
from ingest.poller import poll_incoming
from settings import load_settings
from storage.catalogue import Call, JobState
from storage.catalogue.summary import CatalogueSummary, summarize
from storage.connect import Storage, open_storage
from storage.embedded_s3 import EmbeddedS3
from storage.search.service import Filters

if TYPE_CHECKING:
    from bench.search import Measured

ROOT = Path(__file__).resolve().parents[1]
CALLREC = Path(sys.executable).with_name("callrec")
LEAD_IN_S = 0.3  # a clip starts this long before its turn, so the first word is whole
PROGRESS_EVERY_S = 60.0  # a line on stderr while a stage runs: a long run shows where it is
QUERIES = (  # (label, query, filters): words the sample dialogues say, as the model writes them
    ("common word", "goedemorgen", Filters()),
    ("two words (AND)", "telefoon scherm", Filters()),
    ("phrase", '"dank u wel"', Filters()),
    ("prefix", "verzek*", Filters()),
    ("OR", "postcode OR geboortedatum", Filters()),
    ("exclusion", "goedemorgen -zorg", Filters()),
    ("team + speaker", "telefoon", Filters(team="schade", speaker="customer")),
    ("no match", "warmtepompkeuring", Filters()),
)


# -- the calls, as a PBX drops them ----------------------------------------------------------
@dataclass(frozen=True)
class Dialogue:
    """One bundled sample dialogue in memory: its frames, WAV layout, turn starts, metadata."""

    frames: bytes
    params: Any  # wave._wave_params
    turn_starts_s: tuple[float, ...]
    metadata: dict[str, Any]

    def clip(self, start_s: float, length_s: float) -> bytes:
        """A WAV of ``length_s`` from ``start_s``, moved earlier if it would run past the end."""
        frame_size = self.params.nchannels * self.params.sampwidth
        total = len(self.frames) // frame_size
        count = min(total, round(length_s * self.params.framerate))
        first = min(max(0, round(start_s * self.params.framerate)), total - count)
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setparams(self.params)
            wav.writeframes(self.frames[first * frame_size : (first + count) * frame_size])
        return out.getvalue()


def load_dialogues(now: datetime) -> list[Dialogue]:
    """The sample dialogues ``callrec run`` loads, with the turn starts of their script."""
    dialogues = []
    for recording in sample_recordings(now=now):
        with wave.open(str(recording.path), "rb") as wav:
            params, frames = wav.getparams(), wav.readframes(wav.getnframes())
        script = json.loads(recording.path.with_suffix(".json").read_text(encoding="utf-8"))
        starts = tuple(turn["start_s"] for turn in script["reference"]["turns"])
        dialogues.append(Dialogue(frames, params, starts, recording.metadata or {}))
    return dialogues


def pbx_call(
    dialogues: list[Dialogue], index: int, *, clip_s: tuple[float, float], now: datetime
) -> tuple[str, bytes, dict]:
    """The ``index``-th call: its incoming key, WAV bytes and S3 user metadata.

    Drawn from ``index`` alone (same calls every run, whatever thread makes it); the call id
    is new each time, so ingest takes every call, also when its clip came before."""
    rng = random.Random(index)
    dialogue = rng.choice(dialogues)
    start_s = rng.choice(dialogue.turn_starts_s) - LEAD_IN_S
    call_id = f"load-{index:06d}"
    metadata = {key.replace("_", "-"): str(value) for key, value in dialogue.metadata.items()}
    metadata |= {
        "call-id": call_id,
        "started-at": (now - timedelta(days=1, minutes=index)).isoformat(),
    }
    return f"pbx/{call_id}.wav", dialogue.clip(start_s, round(rng.uniform(*clip_s), 1)), metadata


def upload_calls(
    client: Minio, bucket: str, calls: int, *, clip_s: tuple[float, float], threads: int
) -> None:
    """Bare puts with user metadata, as ``mc cp --attr`` from a PBX's hang-up hook does."""
    now = datetime.now(UTC)
    dialogues = load_dialogues(now)

    def put(index: int) -> None:
        key, data, metadata = pbx_call(dialogues, index, clip_s=clip_s, now=now)
        client.put_object(
            bucket, key, io.BytesIO(data), len(data), content_type="audio/wav", metadata=metadata
        )

    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(put, range(calls)):
            pass


# -- the ingest process ----------------------------------------------------------------------
def drain_incoming() -> None:
    """The ingest child: the scheduler's poll job back to back, until a poll settles nothing
    (the bucket is empty, or holds only recordings that wait for metadata or a retry)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = load_settings()
    with open_storage(settings) as storage:
        options = IngestOptions.from_settings(storage)
        while True:
            report = poll_incoming(
                storage, now=datetime.now(UTC), options=options, workers=settings.ingest_workers
            )
            if all(r.outcome in (Outcome.WAITING, Outcome.RETRY) for r in report.results):
                return


# -- running and watching a process ----------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    at_s: float
    done: int
    rss_mb: float
    s3_rss_mb: float
    load: float  # the machine's, 1 minute


@dataclass
class Watched:
    """One child process, run to its end."""

    label: str
    wall_s: float
    exit_code: int
    peak_rss_mb: float
    samples: list[Sample] = field(default_factory=list)

    def steady_rate(self) -> float | None:
        """Calls/s from the first sample with work done to the last: start-up (imports, the
        model's load) left out, which a 10,000-call run would not notice."""
        working = [s for s in self.samples if s.done > 0]
        if len(working) < 2 or working[-1].at_s <= working[0].at_s:
            return None
        return (working[-1].done - working[0].done) / (working[-1].at_s - working[0].at_s)

    def growth_per_1000(self, rss: Callable[[Sample], float]) -> float | None:
        """MB per 1000 calls: the slope of a least-squares line through the samples taken after
        the first tenth of the calls (the model's load and first allocations are not a leak)."""
        total = self.samples[-1].done if self.samples else 0
        steady = [s for s in self.samples if s.done >= total / 10]
        if len({s.done for s in steady}) < 3:
            return None
        line = statistics.linear_regression([s.done for s in steady], [rss(s) for s in steady])
        return line.slope * 1000


def run_watched(
    label: str,
    argv: list[str],
    *,
    env: dict[str, str],
    log: Path,
    progress: Callable[[], int],
    s3_pid: int,
    every_s: float,
) -> Watched:
    """Run ``argv`` to its end, sampling its RSS and SeaweedFS's against ``progress()`` every
    ``every_s``. The peak comes from the kernel at reaping (``ru_maxrss``), so a peak between
    two samples is not missed; a pidfd wakes us the moment it exits, so the wall time is exact."""
    print(f"{label}...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with log.open("ab") as out:
        process = subprocess.Popen(argv, env=env, cwd=log.parent, stdout=out, stderr=out)
    watched = Watched(label, 0.0, 0, 0.0)
    pidfd = os.pidfd_open(process.pid)
    try:
        printed = 0.0
        while not select.select([pidfd], [], [], every_s)[0]:
            sample = take_sample(process.pid, s3_pid, started, progress)
            if sample is None:
                continue
            watched.samples.append(sample)
            if sample.at_s - printed >= PROGRESS_EVERY_S:
                printed = sample.at_s
                print(
                    f"  {label}: {sample.at_s:.0f} s, {sample.done} done, RSS "
                    f"{sample.rss_mb:.0f} MB, load {sample.load:.1f}",
                    file=sys.stderr,
                    flush=True,
                )
        _, status, usage = os.wait4(process.pid, 0)
    except BaseException:  # interrupted: no child outlives the bench and its temp folder
        process.terminate()
        process.wait()
        raise
    finally:
        os.close(pidfd)
    process.returncode = os.waitstatus_to_exitcode(status)
    watched.wall_s = time.perf_counter() - started
    watched.exit_code, watched.peak_rss_mb = process.returncode, usage.ru_maxrss / 1024
    print(f"{label}: {watched.wall_s:.1f} s", file=sys.stderr, flush=True)
    return watched


def take_sample(
    pid: int, s3_pid: int, started: float, progress: Callable[[], int]
) -> Sample | None:
    """None when the process exited between the wake-up and the read."""
    try:
        rss = rss_mb("VmRSS", pid)
    except (FileNotFoundError, LookupError):
        return None
    return Sample(
        time.perf_counter() - started, progress(), rss, rss_mb("VmRSS", s3_pid), os.getloadavg()[0]
    )


# Settings that say where the data is: the bench's own installation replaces them. Every other
# CALLREC_ setting (device, beam size, ingest workers, bucket names...) reaches the children as
# this process has it (from the environment; the children do not read a .env).
WHERE_SETTINGS = frozenset(
    f"CALLREC_{name}"
    for name in ("DATA_DIR", "DATABASE_URL", "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY",
                 "S3_SECURE", "S3_REGION")
)  # fmt: skip


def tuning_settings() -> dict[str, str]:
    """The CALLREC_ settings this run passes on to its children (shown in the report). A
    relative model folder is made absolute: the children run in their log folder."""
    passed = {
        key: value
        for key, value in sorted(os.environ.items())
        if key.startswith("CALLREC_") and key not in WHERE_SETTINGS
    }
    if passed.get("CALLREC_MODEL"):
        passed["CALLREC_MODEL"] = str(Path(passed["CALLREC_MODEL"]).resolve())
    return passed


def child_env(data_dir: Path) -> dict[str, str]:
    """An operator's shell for this installation: its data folder, so every child uses this
    process's SeaweedFS server and catalogue, and the tuning settings this run was given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLREC_")}
    return env | tuning_settings() | {"CALLREC_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}


def log_problems(log: Path) -> tuple[int, int, str]:
    """(errors, warnings, the first error line) in a child's log."""
    lines = log.read_text(errors="replace").splitlines()
    errors = [line for line in lines if " ERROR " in line or "Traceback" in line]
    warnings = sum(" WARNING " in line for line in lines)
    return len(errors), warnings, errors[0] if errors else ""


# -- the counts ------------------------------------------------------------------------------
def summary(storage: Storage) -> CatalogueSummary:
    with storage.catalogue.session() as session:
        return summarize(session, datetime.now(UTC))


def settled(storage: Storage) -> int:
    """Recordings ingest is done with: catalogued or quarantined."""
    counts = summary(storage)
    return counts.total_calls + counts.quarantined


def transcribed(storage: Storage) -> int:
    """Jobs a worker is done with: done or failed."""
    jobs = summary(storage).jobs_by_state
    return jobs[JobState.DONE] + jobs[JobState.FAILED]


def call_seconds(storage: Storage) -> float:
    with storage.catalogue.session() as session:
        return float(session.exec(sql_select(func.sum(Call.duration_s))).one() or 0.0)


# -- search ----------------------------------------------------------------------------------
def measure_search(storage: Storage, runs: int) -> list[Measured]:
    """Every query as each viewer in turn, ``runs`` rounds (``Measured`` runs each once first).

    ``bench/search.py`` is imported here, not at the top: the ingest child imports this module,
    and its peak RSS must be ingest's, not pytest's and psycopg's."""
    from bench.search import VIEWERS, Case, Measured

    measured = [
        Measured(storage, Case(label, text, filters), viewer)
        for label, text, filters in QUERIES
        for viewer in VIEWERS
    ]
    for _ in range(runs):
        for m in measured:
            m.run_once()
    return measured


# -- the run ---------------------------------------------------------------------------------
@dataclass
class Run:
    calls: int
    concurrency: int
    upload_s: float = 0.0
    ingest: Watched | None = None
    worker: Watched | None = None
    search_cli: Watched | None = None
    searches: list[Measured] = field(default_factory=list)
    call_s: float = 0.0
    counts: CatalogueSummary | None = None
    left_in_incoming: int = 0
    s3_peak_mb: float = 0.0
    worker_log: tuple[int, int, str] = (0, 0, "")
    load_before: float = 0.0
    load_after: float = 0.0

    def accounted(self) -> bool:
        counts = self.counts
        assert counts is not None
        jobs = counts.jobs_by_state
        return (
            counts.total_calls + counts.quarantined == self.calls
            and jobs[JobState.DONE] + jobs[JobState.FAILED] == counts.total_calls
            and self.left_in_incoming == 0
        )


def run_stages(storage: Storage, run: Run, args: argparse.Namespace) -> None:
    settings = storage.settings
    s3_pid = EmbeddedS3(settings.data_dir).server_pid()
    assert s3_pid is not None, "the embedded S3 server is not running"
    env, logs = child_env(settings.data_dir), settings.data_dir.parent
    seconds: dict[str, float] = {}
    client = bare_client(storage.objects.endpoint)
    with timed("PBX upload (bare minio, not timed as callrec)", seconds):
        upload_calls(
            client, settings.bucket_incoming, run.calls, clip_s=args.clip_s,
            threads=args.upload_threads,
        )  # fmt: skip
    run.upload_s = seconds["PBX upload (bare minio, not timed as callrec)"]
    watch = {"env": env, "s3_pid": s3_pid, "every_s": args.sample_s}
    run.ingest = run_watched(
        "ingest", [sys.executable, "-c", "from bench.load import drain_incoming; drain_incoming()"],
        log=logs / "ingest.log", progress=lambda: settled(storage), **watch,
    )  # fmt: skip
    run.worker = run_watched(
        "worker", [str(CALLREC), "worker", "--until-idle", "--concurrency", str(run.concurrency)],
        log=logs / "worker.log", progress=lambda: transcribed(storage), **watch,
    )  # fmt: skip
    run.search_cli = run_watched(
        "callrec search", [str(CALLREC), "search", QUERIES[0][1], "--as-role", "analyst"],
        log=logs / "search.log", progress=lambda: 0, **watch,
    )  # fmt: skip
    with timed("searches in this process", seconds):
        run.searches = measure_search(storage, args.runs)
    run.call_s, run.counts = call_seconds(storage), summary(storage)
    run.left_in_incoming = sum(1 for _ in storage.objects.list(settings.bucket_incoming))
    run.s3_peak_mb = rss_mb("VmHWM", s3_pid)
    run.worker_log = log_problems(logs / "worker.log")


def report(run: Run, args: argparse.Namespace) -> None:
    ingest, worker, cli = run.ingest, run.worker, run.search_cli
    counts = run.counts
    assert ingest and worker and cli and counts
    print(
        f"load benchmark: {run.calls:,} calls, {run.call_s:,.0f} call-s ({args.clip_s[0]:g}-"
        f"{args.clip_s[1]:g} s stereo 8 kHz PCM WAV cut from the sample dialogues), "
        f"SeaweedFS + SQLite, {os.cpu_count()} cores, worker concurrency {run.concurrency}"
    )
    tuning = " ".join(f"{key}={value}" for key, value in tuning_settings().items())
    print(f"  settings: {tuning or 'the defaults'}")
    print(
        f"  machine load (1 min): {run.load_before:.2f} before, {run.load_after:.2f} after, "
        f"mean {statistics.fmean(s.load for s in worker.samples or [Sample(0, 0, 0, 0, 0)]):.2f}"
        " during transcription"
    )
    print(
        f"  PBX upload, bare minio put_object, {args.upload_threads} threads (set-up): "
        f"{run.upload_s:.1f} s, {run.calls / run.upload_s:.1f} calls/s"
    )
    print(f"  ingest (poll job, own process):  {stage_rate(ingest, run.calls)}")
    print(f"  transcription (callrec worker):  {stage_rate(worker, run.calls)}")
    print(
        f"    RTF {worker.wall_s / run.call_s:.3f} ({run.call_s / worker.wall_s:.2f} call-s per "
        f"wall-s); worker log: {run.worker_log[0]} errors, {run.worker_log[1]} warnings"
        + (f"; first: {run.worker_log[2]}" if run.worker_log[0] else "")
    )
    report_search(run.searches, cli)
    print(
        f"  peak RSS: ingest {ingest.peak_rss_mb:.0f} MB, worker {worker.peak_rss_mb:.0f} MB, "
        f"callrec search {cli.peak_rss_mb:.0f} MB, SeaweedFS {run.s3_peak_mb:.0f} MB (VmHWM), "
        f"this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    for label, rss in (
        ("worker RSS", lambda s: s.rss_mb),
        ("SeaweedFS RSS during transcription", lambda s: s.s3_rss_mb),
    ):
        print(f"  {label}: {memory_trend(worker, rss)}")
    print(f"  ingest RSS: {memory_trend(ingest, lambda s: s.rss_mb)}")
    jobs = counts.jobs_by_state
    print(
        f"  at the end: {counts.total_calls:,} calls catalogued "
        f"({', '.join(f'{k} {v}' for k, v in counts.calls_by_state.items() if v)}), "
        f"{counts.quarantined} quarantined, jobs done {jobs[JobState.DONE]:,} failed "
        f"{jobs[JobState.FAILED]} queued {jobs[JobState.QUEUED]} running {jobs[JobState.RUNNING]}, "
        f"{run.left_in_incoming} left in incoming: "
        + ("all accounted for" if run.accounted() else "NOT ALL ACCOUNTED FOR")
    )
    exits = {w.label: w.exit_code for w in (ingest, worker, cli) if w.exit_code}
    if exits:
        print(f"  non-zero exits: {exits} (logs in the temp folder, deleted)")
    print(
        f"reproduce: .venv/bin/python bench/load.py --calls {run.calls} --clip-s "
        f"{args.clip_s[0]:g} {args.clip_s[1]:g} --concurrency {run.concurrency} --runs {args.runs}"
    )


def stage_rate(watched: Watched, calls: int) -> str:
    steady = watched.steady_rate()
    return f"{watched.wall_s:.1f} s, {calls / watched.wall_s:.2f} calls/s" + (
        f" (steady {steady:.2f}, start-up left out)" if steady else ""
    )


def memory_trend(watched: Watched, rss: Callable[[Sample], float]) -> str:
    samples = watched.samples
    if not samples:
        return "no samples (the stage ended before the first)"
    first, last, top = samples[0], samples[-1], max(samples, key=rss)
    growth = watched.growth_per_1000(rss)
    return (
        f"first {rss(first):.0f} MB (at {first.done} calls), last {rss(last):.0f} MB (at "
        f"{last.done}), max {rss(top):.0f} MB (at {top.done}, {top.at_s:.0f} s) over "
        f"{len(samples)} samples"
        + (f"; {growth:+.1f} MB per 1000 calls after the first tenth" if growth is not None else "")
    )


def report_search(searches: list[Measured], cli: Watched) -> None:
    from bench.search import percentile

    ours = [t for m in searches for t in m.ours_ms]
    bare = [t for m in searches for t in m.bare_ms]
    print(
        f"  search, {len(ours)} in this process ({len(QUERIES)} queries x complaint handler and "
        f"analyst): callrec p50 {percentile(ours, 0.5):.1f} ms, p95 {percentile(ours, 0.95):.1f} "
        f"ms; bare FTS5 p50 {percentile(bare, 0.5):.1f} ms, p95 {percentile(bare, 0.95):.1f} ms"
    )
    for m in searches:
        print(
            f"    {m.case.label:<16} {m.case.text:<26} {m.viewer.role.split('_')[-1]:<8} "
            f"{m.matches:>7,} matches {m.hits:>3} hits  p50 {percentile(m.ours_ms, 0.5):6.1f}"
            f" p95 {percentile(m.ours_ms, 0.95):6.1f} ms"
        )
    print(f"  one `callrec search` command (start, open, search, exit): {cli.wall_s:.2f} s")


def write_samples(path: Path, stages: list[Watched]) -> None:
    """The memory curves, to plot: a leak is a slope, a one-off allocation a step."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["stage", "at_s", "done", "rss_mb", "s3_rss_mb", "load"])
        for stage in stages:
            for s in stage.samples:
                writer.writerow([stage.label, f"{s.at_s:.1f}", s.done, f"{s.rss_mb:.1f}",
                                 f"{s.s3_rss_mb:.1f}", f"{s.load:.2f}"])  # fmt: skip


def stop_on_sigterm() -> None:
    """``kill PID`` of a background run unwinds like Ctrl-C (which a background job ignores):
    the running child is stopped, then SeaweedFS, then the temp folder is removed."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument(
        "--clip-s", type=float, nargs=2, default=(3.0, 6.0), metavar=("MIN", "MAX"),
        help="length of each call, drawn between these (0.1 s steps)",
    )  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=1, help="worker --concurrency")
    parser.add_argument("--runs", type=int, default=20, help="search rounds over every query")
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument(
        "--samples-csv", type=Path, help="also write every RSS sample here (stage, s, calls, MB)"
    )
    parser.add_argument("--upload-threads", type=int, default=16, help="PBX upload (set-up)")
    args = parser.parse_args()
    stop_on_sigterm()
    run = Run(calls=args.calls, concurrency=args.concurrency, load_before=os.getloadavg()[0])
    with tempfile.TemporaryDirectory(prefix="callrec-bench-") as tmp:
        # Always the embedded server and SQLite, whatever CALLREC_ variables are set.
        settings = load_settings(data_dir=Path(tmp) / "data", s3_endpoint=None, database_url=None)
        with open_storage(settings) as storage:
            run_stages(storage, run, args)
    run.load_after = os.getloadavg()[0]
    report(run, args)
    if args.samples_csv:
        write_samples(args.samples_csv, [w for w in (run.ingest, run.worker) if w])
    if not run.accounted():
        sys.exit("bench/load.py: not every call is accounted for")


if __name__ == "__main__":
    main()
