"""Transcription speed and accuracy: callrec's worker against faster-whisper used directly.

    .venv/bin/python bench/transcribe.py [--repeat 2] [--workers 1]

On the same audio (the bundled sample dialogues, stereo 8 kHz Dutch) and the same loaded model
(the bundled Whisper base, int8 on CPU), in one run:

1. raw plain: ``WhisperModel.transcribe`` per channel, VAD on, the pipeline's decoding options;
2. raw batched: ``BatchedInferencePipeline.transcribe`` per channel, same options;
3. pipeline: callrec's worker on the same calls (download from S3, decode, one VAD pass per
   channel, both channels' speech decoded in shared batches, call metrics, redaction, store in
   the catalogue); ratio pipeline / the faster raw (goal <= 1.05);
4. naive: what a user tries first: the model on the whole (down-mixed) file, no VAD, default
   options, one call at a time; the pipeline's call-seconds per wall-second against it
   (goal >= 2x);
5. peak memory (RSS) of this process, and the word error rate of the pipeline's transcripts.

Real-time factor (RTF) = wall seconds / call seconds (lower is faster).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jiwer
from faster_whisper import BatchedInferencePipeline
from faster_whisper.audio import decode_audio
from sqlmodel import select

from ingest.backfill import LocalRecording, upload_and_ingest
from ingest.pipeline import IngestOptions
from ingest.samples.intelligibility import normalise
from settings import load_settings
from storage.catalogue import Segment
from storage.connect import open_storage
from transcribe.engine import DecodeOptions, Transcriber
from transcribe.model import load_model
from transcribe.worker import Worker

SAMPLES = Path(__file__).resolve().parents[1] / "ingest" / "samples"
DIALOGUES = ["claim_screen_repair", "imei_iban", "policy_postcode_dob", "phone_email", "health_bsn"]


def raw_options(options: DecodeOptions) -> dict:
    return {
        "language": "nl",
        "beam_size": options.beam_size,
        "temperature": list(options.temperature),
        "condition_on_previous_text": options.condition_on_previous_text,
        "word_timestamps": True,
        "vad_filter": True,
        "vad_parameters": {  # the same detector settings the pipeline uses
            "threshold": options.vad.vad_threshold,
            "min_silence_duration_ms": round(options.vad.min_silence_s * 1000),
            "speech_pad_ms": round(options.speech_pad_s * 1000),
        },
    }


def with_hold(path: Path, hold_s: float, folder: Path) -> Path:
    """The call with ``hold_s`` of hold music inserted at the turn nearest its middle (the
    agent says "one moment", the customer hears music); the reference sidecar is copied."""
    if hold_s <= 0:
        return path
    from pydub import AudioSegment

    call = AudioSegment.from_wav(path)
    turns = json.loads(path.with_suffix(".json").read_text())["reference"]["turns"]
    cut_ms = round(
        1000 * min((t["start_s"] for t in turns), key=lambda s: abs(s - call.duration_seconds / 2))
    )
    music = (
        AudioSegment.from_wav(SAMPLES / "hold_music.wav")
        .set_channels(2)
        .set_frame_rate(call.frame_rate)
    )
    hold = (music * (int(hold_s // music.duration_seconds) + 1))[: round(hold_s * 1000)]
    target = folder / path.name
    (call[:cut_ms] + hold + call[cut_ms:]).export(target, format="wav")
    target.with_suffix(".json").write_text(path.with_suffix(".json").read_text())
    return target


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help="passes over the samples per method")
    parser.add_argument("--workers", type=int, default=1, help="pipeline worker concurrency")
    parser.add_argument(
        "--hold-s", type=float, default=0.0,
        help="put the caller on hold this long mid-call (bundled hold music), as in real calls",
    )  # fmt: skip
    args = parser.parse_args()
    hold_dir = Path(tempfile.mkdtemp(prefix="callrec-bench-hold-"))
    files = [
        with_hold(SAMPLES / f"{name}.wav", args.hold_s, hold_dir) for name in DIALOGUES
    ] * args.repeat
    channels = [decode_audio(str(f), sampling_rate=16000, split_stereo=True) for f in files]
    call_s = sum(len(left) / 16000 for left, _ in channels)

    with tempfile.TemporaryDirectory(prefix="callrec-bench-") as tmp:
        root = Path(tmp)
        loaded = load_model(None, data_dir=root / "model", workers=args.workers)
        options = DecodeOptions(temperature=(0.0,))
        model, batched = loaded.model, BatchedInferencePipeline(model=loaded.model)
        raw = raw_options(options)

        def raw_plain() -> None:
            for pair in channels:
                for audio in pair:
                    list(model.transcribe(audio, **raw)[0])

        def raw_batched() -> None:
            for pair in channels:
                for audio in pair:
                    list(
                        batched.transcribe(
                            audio, batch_size=options.batch_size, without_timestamps=False, **raw
                        )[0]
                    )

        def naive() -> None:
            for path in files:
                list(model.transcribe(str(path), language="nl")[0])

        raw_batched()  # warm-up: first calls allocate
        plain_s, batched_s, naive_s = timed(raw_plain), timed(raw_batched), timed(naive)

        # Always the embedded server and SQLite, whatever CALLREC_ variables are set.
        settings = load_settings(data_dir=root / "data", s3_endpoint=None, database_url=None)
        with open_storage(settings) as storage:
            started = (datetime.now(UTC) - timedelta(days=1)).isoformat()
            recordings = [
                LocalRecording(
                    path, {"call_id": f"bench-{n:03d}-{path.stem}", "started_at": started}
                )
                for n, path in enumerate(files)
            ]
            now = datetime.now(UTC)
            upload_and_ingest(
                storage, recordings, now=now, options=IngestOptions.from_settings(storage)
            )
            worker = Worker(storage, Transcriber(loaded, options))
            pipeline_s = timed(lambda: worker.run(concurrency=args.workers, until_idle=True))
            with storage.catalogue.session() as session:
                segments = list(session.exec(select(Segment)))

    expected, heard = [], []
    for n, path in enumerate(files):
        turns = json.loads(path.with_suffix(".json").read_text())["reference"]["turns"]
        call_id = f"bench-{n:03d}-{path.stem}"
        for speaker in ("agent", "customer"):
            expected.append(
                normalise(" ".join(t["text"] for t in turns if t["speaker"] == speaker))
            )
            mine = sorted(
                (s for s in segments if s.call_id == call_id and s.speaker == speaker),
                key=lambda s: s.start_s,
            )
            heard.append(normalise(" ".join(s.text for s in mine)))
    wer = jiwer.wer(expected, heard)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    rows = [
        ("raw faster-whisper plain, per channel, VAD", plain_s),
        ("raw faster-whisper batched, per channel, VAD", batched_s),
        ("callrec pipeline (worker, end to end)", pipeline_s),
        ("naive: whole file, no VAD, defaults", naive_s),
    ]
    print(
        f"transcription benchmark: {len(files)} stereo calls, {call_s:.0f} call-seconds, "
        f"{loaded.name} {loaded.compute_type} on {loaded.device}, beam {options.beam_size}, "
        f"batch {options.batch_size}, pipeline concurrency {args.workers}, "
        f"hold {args.hold_s:g} s per call"
    )
    for label, seconds in rows:
        print(f"  {label:<46} RTF {seconds / call_s:.3f} ({call_s / seconds:4.1f}x real time)")
    best_raw = min(plain_s, batched_s)
    print(f"  {'pipeline / fastest raw':<46} {pipeline_s / best_raw:.3f} (goal <= 1.05)")
    print(f"  {'pipeline call-s per wall-s vs naive':<46} {naive_s / pipeline_s:.2f}x (goal >= 2x)")
    print(f"  {'peak RSS of this process':<46} {peak_mb:.0f} MB")
    print(f"  {'word error rate of the pipeline':<46} {wer:.3f}")
    print(
        "reproduce: .venv/bin/python bench/transcribe.py "
        f"--repeat {args.repeat} --workers {args.workers} --hold-s {args.hold_s:g}"
    )


if __name__ == "__main__":
    main()
