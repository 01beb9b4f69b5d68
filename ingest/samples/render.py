"""Render the sample calls in this folder: short Dutch insurer/customer phone dialogues.

Why
    The demo and the tests need real-sounding call recordings with a known script, known turn
    times and known personal data, without recording real people. The dialogues below are
    spoken by espeak-ng with the MBROLA Dutch diphone voices (plain espeak-ng Dutch is
    unintelligible to Whisper, word error rate about 0.9): the agent always speaks with
    ``mb-nl3`` (female), the customer with ``mb-nl2`` (male). Every call is written as
    ``NAME.wav`` (stereo, 8 kHz, 16-bit PCM; agent on the LEFT channel, customer on the RIGHT,
    the other channel digital silence while one party talks) plus ``NAME.json``, the metadata
    sidecar the ingest reads, extended with the reference transcript (``reference.turns``: speaker,
    start/end in seconds measured from the rendered audio, text), the personal data spoken in the
    call (``pii``) and phrases a transcript must contain (``key_phrases``). All data are fake:
    the IMEI passes Luhn, the IBAN passes mod-97 (and the old Dutch 11-test), the BSN passes the
    11-test, but none belongs to anyone.

    Besides the dialogues it writes three files for transcription edge cases: ``silence.wav``
    (10 s digital silence), ``hold_music.wav`` (15 s generated melody, no speech) and
    ``upmixed_mono.wav`` (a mono dialogue copied into both channels, as a PBX does when it
    up-mixes a mono call).

How it speaks
    espeak-ng turns each turn's text into MBROLA phonemes (``--pho``); diphones the voice lacks
    are patched (``repair_diphones``: nl3 has no "w" of "uw" and misses several voiced-g pairs,
    which MBROLA would otherwise render as holes in the words); ``mbrola`` speaks at 16 kHz;
    sox resamples to 8 kHz and sets each turn's peak to -3 dBFS; the turn is trimmed to its
    speech and placed on the call's timeline (gaps of 0.3-0.8 s, one 0.3 s overlap). Both voices
    use 130 words per minute, pitch 50 and a 40 ms pause between words: of the settings tried,
    the ones Whisper base transcribes best (README.md has the word error rates).

    CI does not run this script: it uses the committed files. Re-run it only to change the
    dialogues; the output is deterministic (same espeak-ng/MBROLA/sox versions give the same
    bytes, and so the same turn times).

How to re-run
    One-time machine set-up (Debian bookworm; the MBROLA voices are in contrib/non-free, and the
    stock ``/etc/apt/sources.list.d/debian.sources`` lists only ``main``)::

        cat > /etc/apt/sources.list.d/debian-contrib-nonfree.sources <<'EOF'
        Types: deb
        URIs: http://deb.debian.org/debian
        Suites: bookworm bookworm-updates
        Components: contrib non-free
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
        EOF
        apt-get update
        apt-get install -y espeak-ng mbrola mbrola-nl2 mbrola-nl3 sox ffmpeg

    Then, from the repository root::

        .venv/bin/python -m ingest.samples.render            # or: python ingest/samples/render.py
        .venv/bin/python -m ingest.samples.render --out /tmp/x --only claim_screen_repair

    ``--speed`` / ``--pitch`` / ``--word-gap`` override the voice settings (for intelligibility
    experiments), then measure with ``.venv/bin/python -m ingest.samples.intelligibility``.
"""

from __future__ import annotations

import argparse
import array
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SAMPLE_RATE = 8000
HERE = Path(__file__).resolve().parent

AGENT = "agent"
CUSTOMER = "customer"


@dataclass(frozen=True)
class Voice:
    """One espeak-ng voice setting: ``speed`` in words per minute, ``pitch`` 0-99, ``word_gap``
    extra pause between words in units of 10 ms."""

    name: str
    speed: int
    pitch: int
    word_gap: int = 0


# Chosen by transcribing the rendered calls with the bundled Whisper base (intelligibility.py):
# see README.md for the word error rates of the settings tried.
VOICES: dict[str, Voice] = {
    AGENT: Voice("mb-nl3", speed=130, pitch=50, word_gap=4),
    CUSTOMER: Voice("mb-nl2", speed=130, pitch=50, word_gap=4),
}
# Peak level of every rendered turn, dBFS.
TURN_PEAK_DB = -3.0
# Samples whose absolute value is at or below this count as silence when trimming a turn.
TRIM_THRESHOLD = 40
LEAD_IN_S = 0.6
TAIL_S = 0.6

# --------------------------------------------------------------------------------------------
# Fake personal data, generated to pass the checks a real validator applies.
# --------------------------------------------------------------------------------------------

DIGIT_WORDS = ("nul", "één", "twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen")


def luhn_valid(number: str) -> bool:
    """True when ``number`` (digits only) passes the Luhn check used by IMEIs."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """True when ``iban`` passes the ISO 13616 mod-97 check."""
    s = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in s)) % 97 == 1


def elfproef_valid(account: str) -> bool:
    """The old Dutch bank-account 11-test (weights 10..1), still true of most NL IBANs."""
    return sum(int(d) * w for d, w in zip(account, range(10, 0, -1), strict=True)) % 11 == 0


def bsn_valid(bsn: str) -> bool:
    """The BSN 11-test: weights 9..2 and -1 for the last digit."""
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    return len(bsn) == 9 and sum(int(d) * w for d, w in zip(bsn, weights, strict=True)) % 11 == 0


IMEI = "357291046128835"
IBAN = "NL30RABO0317452967"
BSN = "238461579"
POLICY_NUMBERS = {
    "claim_screen_repair": "4071935826",
    "imei_iban": "4071120459",
    "policy_postcode_dob": "4071935391",
    "phone_email": "4073308817",
    "health_bsn": "8120047736",
    "upmixed_mono": "4072281604",
}
assert luhn_valid(IMEI) and len(IMEI) == 15
assert iban_valid(IBAN) and elfproef_valid(IBAN[8:])
assert bsn_valid(BSN)


def spell_digits(digits: str, groups: Sequence[int] = ()) -> str:
    """Dutch digit words, e.g. ``"357"`` -> ``"drie vijf zeven"``; ``groups`` puts a comma
    (a short pause) after each group of that many digits."""
    words = [DIGIT_WORDS[int(d)] for d in digits]
    if not groups:
        return " ".join(words)
    parts: list[str] = []
    i = 0
    for size in groups:
        parts.append(" ".join(words[i : i + size]))
        i += size
    if i < len(words):
        parts.append(" ".join(words[i:]))
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# The dialogues.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One turn: who speaks, the Dutch text (spoken as written), and the gap in seconds after
    the previous turn's end (negative: starts before the previous turn ends, an overlap)."""

    speaker: str
    text: str
    gap_s: float = 0.5


@dataclass(frozen=True)
class Item:
    """A spoken item to point at in the sidecar: ``spoken`` is a substring of one turn's text;
    ``written`` are other ways a transcript may write it ("13 januari" for "dertien januari")."""

    kind: str
    value: str
    spoken: str
    written: tuple[str, ...] = ()


@dataclass
class Call:
    name: str
    metadata: dict[str, Any]
    turns: list[Turn]
    pii: list[Item] = field(default_factory=list)
    key_phrases: list[Item] = field(default_factory=list)
    mono: bool = False


def _call_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"callrec-sample:{name}"))


IMEI_SPOKEN = spell_digits(IMEI, (3, 3, 3, 3))
IBAN_SPOKEN = "N L " + spell_digits(IBAN[2:4]) + ", Rabo, " + spell_digits(IBAN[8:], (4, 3))
BSN_SPOKEN = spell_digits(BSN, (3, 3))

CALLS: list[Call] = [
    Call(
        name="claim_screen_repair",
        metadata={
            "started_at": "2026-01-08T09:14:12+01:00",
            "agent_id": "A1042",
            "team": "schade",
            "queue": "schade-elektronica",
            "direction": "inbound",
            "customer_number": "+31612407715",
            "customer_id": "K0048213",
            "policy_number": POLICY_NUMBERS["claim_screen_repair"],
        },
        turns=[
            Turn(
                AGENT,
                "Goedemorgen, Polderland Verzekeringen, met Emma. Waarmee kan ik u helpen?",
                gap_s=0.0,
            ),
            Turn(
                CUSTOMER,
                "Goedemorgen. Mijn telefoon is gisteren gevallen, "
                "en het scherm is helemaal gebarsten.",
                gap_s=0.6,
            ),
            Turn(
                AGENT,
                "Wat vervelend. Uw telefoon is verzekerd, dus de schade wordt vergoed. "
                "Het eigen risico is honderdvijftig euro.",
                gap_s=0.7,
            ),
            # The overlap: the customer starts 0.3 s before the agent stops.
            Turn(CUSTOMER, "Dat is goed. Wanneer kan het gerepareerd worden?", gap_s=-0.3),
            Turn(
                AGENT,
                "We repareren uw scherm op dinsdag dertien januari. "
                "U kunt het toestel die ochtend in de winkel afgeven.",
                gap_s=0.5,
            ),
            Turn(CUSTOMER, "Prima, dank u wel.", gap_s=0.4),
            Turn(AGENT, "Graag gedaan. Fijne dag nog.", gap_s=0.3),
        ],
        key_phrases=[
            Item("REPAIR_DATE", "2026-01-13", "dinsdag dertien januari", ("dinsdag 13 januari",)),
            Item("AMOUNT", "150 EUR", "honderdvijftig euro", ("150 euro", "€150", "€ 150")),
        ],
    ),
    Call(
        name="imei_iban",
        metadata={
            "started_at": "2026-02-03T14:02:47+01:00",
            "agent_id": "A1042",
            "team": "schade",
            "queue": "schade-terugbellen",
            "direction": "outbound",
            "customer_number": "+31638120954",
            "customer_id": "K0051790",
            "policy_number": POLICY_NUMBERS["imei_iban"],
        },
        turns=[
            Turn(
                AGENT,
                "Goedemiddag, met Emma van Polderland Verzekeringen, over uw gestolen "
                "telefoon. Mag ik het IMEI-nummer van de telefoon?",
                gap_s=0.0,
            ),
            Turn(CUSTOMER, f"Ja, dat is {IMEI_SPOKEN}.", gap_s=0.8),
            Turn(AGENT, "Dank u. Op welk rekeningnummer wilt u het geld ontvangen?", gap_s=0.6),
            Turn(CUSTOMER, f"Dat is {IBAN_SPOKEN}.", gap_s=0.7),
            Turn(
                AGENT,
                "Dank u. Wij maken vierhonderdtwintig euro over, binnen vijf werkdagen.",
                gap_s=0.5,
            ),
            Turn(CUSTOMER, "Fijn, bedankt.", gap_s=0.4),
        ],
        pii=[
            Item("IMEI", IMEI, IMEI_SPOKEN),
            Item("IBAN", IBAN, IBAN_SPOKEN),
        ],
        key_phrases=[
            Item("AMOUNT", "420 EUR", "vierhonderdtwintig euro", ("420 euro", "€420", "€ 420")),
            Item("PERIOD", "5 werkdagen", "vijf werkdagen", ("5 werkdagen",)),
        ],
    ),
    Call(
        name="policy_postcode_dob",
        metadata={
            "started_at": "2026-03-17T11:26:05+01:00",
            "agent_id": "A2117",
            "team": "particulier",
            "queue": "wonen",
            "direction": "inbound",
            "customer_number": "+31302346618",
            "customer_id": "K0033467",
            "policy_number": POLICY_NUMBERS["policy_postcode_dob"],
        },
        turns=[
            Turn(
                AGENT,
                "Goedemorgen, Polderland Verzekeringen, met Emma. Mag ik uw polisnummer?",
                gap_s=0.0,
            ),
            Turn(
                CUSTOMER,
                "Dat is " + spell_digits(POLICY_NUMBERS["policy_postcode_dob"], (3, 3)) + ".",
                gap_s=0.7,
            ),
            Turn(AGENT, "Dank u. Uw postcode en geboortedatum?", gap_s=0.5),
            Turn(
                CUSTOMER,
                "Mijn postcode is drie vijf twee acht B K. "
                "En ik ben geboren op twaalf maart negentien zevenentachtig.",
                gap_s=0.6,
            ),
            Turn(AGENT, "Dat klopt, meneer De Boer. Waar kan ik u mee helpen?", gap_s=0.5),
            Turn(
                CUSTOMER,
                "Ik wil mijn inboedelverzekering verhogen, voor een nieuwe keuken.",
                gap_s=0.5,
            ),
            Turn(
                AGENT,
                "Dat kan. Uw premie wordt vier euro vijftig per maand hoger, vanaf één april.",
                gap_s=0.6,
            ),
        ],
        pii=[
            Item(
                "POLICY",
                POLICY_NUMBERS["policy_postcode_dob"],
                spell_digits(POLICY_NUMBERS["policy_postcode_dob"], (3, 3)),
            ),
            Item("POSTCODE", "3528 BK", "drie vijf twee acht B K"),
            Item("DATE_OF_BIRTH", "1987-03-12", "twaalf maart negentien zevenentachtig"),
            Item("NAME", "De Boer", "De Boer"),
        ],
        key_phrases=[
            Item(
                "AMOUNT",
                "4,50 EUR",
                "vier euro vijftig",
                ("4,50 euro", "€4,50", "€ 4,50", "4 euro 50"),
            ),
            Item("DATE", "2026-04-01", "vanaf één april", ("vanaf 1 april", "vanaf een april")),
        ],
    ),
    Call(
        name="phone_email",
        metadata={
            "started_at": "2026-04-22T16:48:30+02:00",
            "agent_id": "A2117",
            "team": "particulier",
            "queue": "klantgegevens",
            "direction": "inbound",
            "customer_number": "+31205518342",
            "customer_id": "K0060118",
            "policy_number": POLICY_NUMBERS["phone_email"],
        },
        turns=[
            Turn(
                AGENT,
                "Goedemiddag, Polderland Verzekeringen, met Emma. Waarmee kan ik u helpen?",
                gap_s=0.0,
            ),
            Turn(
                CUSTOMER,
                "Hallo. Ik ben verhuisd, en ik heb een nieuw telefoonnummer "
                "en een nieuw mailadres.",
                gap_s=0.6,
            ),
            Turn(AGENT, "Dat pas ik graag voor u aan. Wat is uw nieuwe nummer?", gap_s=0.5),
            Turn(CUSTOMER, "Nul zes, vier acht, één zeven, twee negen, vijf drie.", gap_s=0.6),
            Turn(AGENT, "En uw mailadres?", gap_s=0.5),
            Turn(CUSTOMER, "Mark punt jansen, apenstaartje, voorbeeld punt N L.", gap_s=0.5),
            Turn(
                AGENT,
                "Ik heb het aangepast. U krijgt binnen tien minuten een mail ter controle.",
                gap_s=0.7,
            ),
            Turn(CUSTOMER, "Dank u wel, dag.", gap_s=0.4),
        ],
        pii=[
            Item("PHONE", "0648172953", "Nul zes, vier acht, één zeven, twee negen, vijf drie"),
            Item(
                "EMAIL",
                "mark.jansen@voorbeeld.nl",
                "Mark punt jansen, apenstaartje, voorbeeld punt N L",
            ),
        ],
        key_phrases=[
            Item("PERIOD", "10 minuten", "binnen tien minuten", ("binnen 10 minuten",)),
        ],
    ),
    Call(
        name="health_bsn",
        metadata={
            "started_at": "2026-05-12T10:05:51+02:00",
            "agent_id": "A3305",
            "team": "zorg",
            "queue": "zorg-vergoedingen",
            "direction": "inbound",
            "customer_number": "+31653390127",
            "customer_id": "K0072604",
            "policy_number": POLICY_NUMBERS["health_bsn"],
        },
        turns=[
            Turn(
                AGENT,
                "Goedemorgen, Polderland Zorg, met Emma. Mag ik uw burgerservicenummer?",
                gap_s=0.0,
            ),
            Turn(CUSTOMER, f"Ja hoor, {BSN_SPOKEN}.", gap_s=0.7),
            Turn(AGENT, "Dank u. Waar gaat uw vraag over?", gap_s=0.5),
            Turn(
                CUSTOMER,
                "Ik heb negen behandelingen fysiotherapie gehad. Worden die vergoed?",
                gap_s=0.5,
            ),
            Turn(
                AGENT,
                "Ja. De aanvullende verzekering vergoedt twaalf behandelingen per jaar, "
                "tot vijfendertig euro per behandeling.",
                gap_s=0.8,
            ),
            Turn(CUSTOMER, "Mooi. Dan stuur ik de rekeningen vandaag op.", gap_s=0.5),
        ],
        pii=[
            Item("BSN", BSN, BSN_SPOKEN),
        ],
        key_phrases=[
            Item("AMOUNT", "35 EUR", "vijfendertig euro", ("35 euro", "€35", "€ 35")),
            Item("COUNT", "12", "twaalf behandelingen per jaar", ("12 behandelingen per jaar",)),
        ],
    ),
    Call(
        name="upmixed_mono",
        mono=True,
        metadata={
            "started_at": "2026-06-02T13:40:09+02:00",
            "agent_id": "A1042",
            "team": "schade",
            "queue": "schade-algemeen",
            "direction": "inbound",
            "customer_number": "+31104417260",
            "customer_id": "K0019955",
            "policy_number": POLICY_NUMBERS["upmixed_mono"],
        },
        turns=[
            Turn(AGENT, "Polderland Verzekeringen, met Emma, goedemiddag.", gap_s=0.0),
            Turn(CUSTOMER, "Goedemiddag. Is mijn schade al uitbetaald?", gap_s=0.6),
            Turn(AGENT, "Ja, het bedrag van tweehonderd euro is gisteren overgemaakt.", gap_s=0.7),
            Turn(CUSTOMER, "Fijn, dank u wel.", gap_s=0.4),
        ],
        key_phrases=[
            Item("AMOUNT", "200 EUR", "tweehonderd euro", ("200 euro", "€200", "€ 200")),
        ],
    ),
]

# --------------------------------------------------------------------------------------------
# Audio.
# --------------------------------------------------------------------------------------------


def require_tools() -> None:
    missing = [tool for tool in ("espeak-ng", "mbrola", "sox") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: see the set-up in this script's docstring")
    voices = subprocess.run(
        ["espeak-ng", "--voices=nl"], capture_output=True, text=True, check=True
    ).stdout
    for voice in {v.name for v in VOICES.values()}:
        if voice not in voices or not mbrola_database(Voice(voice, 0, 0)).exists():
            sys.exit(
                f"espeak-ng voice {voice} or its MBROLA data is missing: "
                f"apt-get install mbrola mbrola-{voice[3:]} (contrib/non-free, see docstring)"
            )


# MBROLA's nl3 (the agent) lacks some diphones that espeak-ng's Dutch asks for: it has no "W"
# (the w of "uw") at all, and no "G" (voiced g) after r, s, n, k... MBROLA replaces a missing
# diphone by silence, which cuts words in two ("uw toestel" -> "u ... oestel") and costs about
# 0.1 of word error rate. So each phoneme in a missing pair is replaced by its nearest sound
# the database has (a Northern-Dutch, devoiced g is ordinary speech).
FALLBACK_PHONEMES = {"W": "w", "G": "x", "d": "t", "z": "s", "v": "f", "b": "p", "Z": "S"}
_UNKNOWN_DIPHONE = re.compile(r"Warning: (\S+)-(\S+) unknown")


def mbrola_database(voice: Voice) -> Path:
    """``mb-nl3`` -> /usr/share/mbrola/nl3/nl3."""
    name = voice.name.removeprefix("mb-")
    return Path("/usr/share/mbrola") / name / name


def repair_diphones(pho: str, database: Path, out: Path) -> str:
    """Render ``pho`` with MBROLA into ``out``; while MBROLA reports unknown diphones, replace
    the phonemes forming them (see ``FALLBACK_PHONEMES``) and render again. Returns the .pho
    text finally used."""
    for _attempt in range(5):
        result = subprocess.run(
            ["mbrola", "-e", str(database), "-", str(out)],
            input=pho,
            capture_output=True,
            text=True,
            check=True,
        )
        missing = set(_UNKNOWN_DIPHONE.findall(result.stderr))
        if not missing:
            return pho
        lines = pho.splitlines()
        rows = [i for i, line in enumerate(lines) if line and not line.startswith(";")]
        names = [lines[i].split("\t", 1)[0] for i in rows]
        changed = False
        for k in range(len(rows) - 1):
            if (names[k], names[k + 1]) not in missing:
                continue
            j = k if names[k] in FALLBACK_PHONEMES else k + 1
            if names[j] in FALLBACK_PHONEMES:
                names[j] = FALLBACK_PHONEMES[names[j]]
                lines[rows[j]] = names[j] + "\t" + lines[rows[j]].partition("\t")[2]
                changed = True
        pho = "\n".join(lines) + "\n"
        if not changed:
            break
    raise RuntimeError(f"{database.name}: no fallback for missing diphones {sorted(missing)}")


def synthesise(text: str, voice: Voice, workdir: Path) -> array.array[int]:
    """Speak ``text`` and return it as 8 kHz 16-bit samples, trimmed to the speech itself.

    espeak-ng turns the text into MBROLA phonemes (``--pho``), missing diphones are patched
    (``repair_diphones``), MBROLA speaks at 16 kHz, and sox resamples to 8 kHz (no dither, so
    the result is deterministic) and sets the peak to ``TURN_PEAK_DB``.
    """
    raw = workdir / "raw.wav"
    narrow = workdir / "narrow.wav"
    pho = subprocess.run(
        [
            "espeak-ng",
            "-v",
            voice.name,
            "-s",
            str(voice.speed),
            "-p",
            str(voice.pitch),
            "-g",
            str(voice.word_gap),
            "-q",
            "--pho",
            "--",
            text,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    repair_diphones(pho, mbrola_database(voice), raw)
    subprocess.run(
        [
            "sox",
            "-D",
            str(raw),
            "-r",
            str(SAMPLE_RATE),
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed",
            str(narrow),
            "gain",
            "-n",
            str(TURN_PEAK_DB),
        ],
        check=True,
        capture_output=True,
    )
    samples = read_mono(narrow)
    loud = [i for i, s in enumerate(samples) if abs(s) > TRIM_THRESHOLD]
    if not loud:
        raise RuntimeError(f"espeak-ng produced silence for {text!r}")
    return samples[loud[0] : loud[-1] + 1]


def read_mono(path: Path) -> array.array[int]:
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise RuntimeError(f"{path}: expected mono 16-bit audio")
        data = array.array("h")
        data.frombytes(wav.readframes(wav.getnframes()))
    if sys.byteorder == "big":
        data.byteswap()
    return data


def write_stereo(path: Path, left: array.array[int], right: array.array[int]) -> None:
    """Write a 16-bit PCM stereo WAV at ``SAMPLE_RATE``; the channels must be equally long."""
    assert len(left) == len(right)
    frames = array.array("h", bytes(4 * len(left)))
    frames[0::2] = left
    frames[1::2] = right
    if sys.byteorder == "big":
        frames.byteswap()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(frames.tobytes())


def _mix_into(track: array.array[int], samples: array.array[int], at: int) -> None:
    for i, s in enumerate(samples):
        track[at + i] = max(-32768, min(32767, track[at + i] + s))


def seconds(samples: int) -> float:
    return round(samples / SAMPLE_RATE, 3)


def render_call(call: Call, voices: dict[str, Voice], out: Path, workdir: Path) -> dict[str, Any]:
    """Render one call to ``out/NAME.wav`` and return its sidecar (also written)."""
    clips = [synthesise(turn.text, voices[turn.speaker], workdir) for turn in call.turns]
    lead, tail = round(LEAD_IN_S * SAMPLE_RATE), round(TAIL_S * SAMPLE_RATE)
    spans: list[tuple[int, int]] = []
    cursor = lead
    for turn, clip in zip(call.turns, clips, strict=True):
        start = lead if not spans else spans[-1][1] + round(turn.gap_s * SAMPLE_RATE)
        same_speaker_end = max(
            (
                end
                for (s, end), t in zip(spans, call.turns, strict=False)
                if t.speaker == turn.speaker
            ),
            default=0,
        )
        if start < same_speaker_end:
            raise ValueError(f"{call.name}: {turn.speaker} would talk over themself")
        spans.append((start, start + len(clip)))
        cursor = max(cursor, start + len(clip))
    total = cursor + tail
    tracks = {
        AGENT: array.array("h", bytes(2 * total)),
        CUSTOMER: array.array("h", bytes(2 * total)),
    }
    for turn, clip, (start, _end) in zip(call.turns, clips, spans, strict=True):
        _mix_into(tracks[turn.speaker], clip, start)
    if call.mono:
        mixed = array.array("h", bytes(2 * total))
        _mix_into(mixed, tracks[AGENT], 0)
        _mix_into(mixed, tracks[CUSTOMER], 0)
        write_stereo(out / f"{call.name}.wav", mixed, mixed)
    else:
        write_stereo(out / f"{call.name}.wav", tracks[AGENT], tracks[CUSTOMER])

    turns = [
        {"speaker": t.speaker, "start_s": seconds(s), "end_s": seconds(e), "text": t.text}
        for t, (s, e) in zip(call.turns, spans, strict=True)
    ]
    sidecar: dict[str, Any] = {"call_id": _call_id(call.name), **call.metadata}
    sidecar["reference"] = {
        "duration_s": seconds(total),
        "channels": (
            {"left": "agent+customer", "right": "agent+customer"}
            if call.mono
            else {"left": AGENT, "right": CUSTOMER}
        ),
        "upmixed_mono": call.mono,
        # Turn pairs where the second starts before the first ends (talking over each other).
        "overlaps": [
            {"turns": [i - 1, i], "seconds": seconds(spans[i - 1][1] - spans[i][0])}
            for i in range(1, len(spans))
            if spans[i][0] < spans[i - 1][1]
        ],
        "tts": {
            role: {
                "voice": v.name,
                "speed_wpm": v.speed,
                "pitch": v.pitch,
                "word_gap_10ms": v.word_gap,
            }
            for role, v in voices.items()
        },
        "turns": turns,
    }
    sidecar["pii"] = [_locate(call, item, spans, "value") for item in call.pii]
    sidecar["key_phrases"] = [_locate(call, item, spans, "meaning") for item in call.key_phrases]
    write_json(out / f"{call.name}.json", sidecar)
    return sidecar


def _locate(call: Call, item: Item, spans: list[tuple[int, int]], value_key: str) -> dict[str, Any]:
    hits = [i for i, t in enumerate(call.turns) if item.spoken in t.text]
    if len(hits) != 1:
        raise ValueError(f"{call.name}: {item.spoken!r} found in turns {hits}, expected one")
    i = hits[0]
    entry: dict[str, Any] = {"kind": item.kind, value_key: item.value}
    if value_key == "value":
        entry["spoken"] = item.spoken
    else:
        entry["phrase"] = item.spoken
        entry["written"] = list(item.written)
    entry |= {
        "speaker": call.turns[i].speaker,
        "turn": i,
        "turn_start_s": seconds(spans[i][0]),
        "turn_end_s": seconds(spans[i][1]),
    }
    return entry


def render_silence(out: Path) -> None:
    total = 10 * SAMPLE_RATE
    zeros = array.array("h", bytes(2 * total))
    write_stereo(out / "silence.wav", zeros, zeros)
    write_json(
        out / "silence.json",
        _plain_sidecar(
            "silence", "2026-01-19T08:30:00+01:00", seconds(total), "10 s digital silence"
        ),
    )


# Für Elise (opening), as (MIDI note or None for a rest, beats); played twice at 150 bpm.
MELODY: tuple[tuple[int | None, float], ...] = (
    (76, 0.5),
    (75, 0.5),
    (76, 0.5),
    (75, 0.5),
    (76, 0.5),
    (71, 0.5),
    (74, 0.5),
    (72, 0.5),
    (69, 1.0),
    (None, 0.5),
    (60, 0.5),
    (64, 0.5),
    (69, 0.5),
    (71, 1.0),
    (None, 0.5),
    (64, 0.5),
    (68, 0.5),
    (71, 0.5),
    (72, 1.0),
    (None, 0.5),
    (64, 0.5),
)


def render_hold_music(out: Path) -> None:
    """15 s of a simple generated melody (sine plus two harmonics, soft attack and decay)."""
    total = 15 * SAMPLE_RATE
    beat = 60 / 150
    track = array.array("h", bytes(2 * total))
    pos = 0
    while pos < total:
        for note, beats in MELODY:
            length = round(beats * beat * SAMPLE_RATE)
            if note is not None:
                freq = 440.0 * 2 ** ((note - 69) / 12)
                for i in range(min(length, total - pos)):
                    t = i / SAMPLE_RATE
                    env = min(1.0, t / 0.01) * math.exp(-3.0 * t)
                    wave_ = (
                        math.sin(2 * math.pi * freq * t)
                        + 0.3 * math.sin(4 * math.pi * freq * t)
                        + 0.1 * math.sin(6 * math.pi * freq * t)
                    )
                    track[pos + i] = round(7000 * env * wave_)
            pos += length
            if pos >= total:
                break
    write_stereo(out / "hold_music.wav", track, track)
    write_json(
        out / "hold_music.json",
        _plain_sidecar(
            "hold_music",
            "2026-01-19T08:35:00+01:00",
            seconds(total),
            "15 s generated hold music (a melody of tones), no speech",
        ),
    )


def _plain_sidecar(name: str, started_at: str, duration_s: float, what: str) -> dict[str, Any]:
    return {
        "call_id": _call_id(name),
        "started_at": started_at,
        "reference": {"duration_s": duration_s, "description": what, "turns": []},
        "pii": [],
        "key_phrases": [],
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: here)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="render only this call (repeatable); silence/hold_music by name too",
    )
    parser.add_argument("--speed", type=int, help="override both voices' speed (wpm)")
    parser.add_argument("--pitch", type=int, help="override both voices' pitch (0-99)")
    parser.add_argument(
        "--word-gap", type=int, help="override both voices' pause between words (10 ms units)"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)

    voices = {
        role: Voice(
            v.name,
            args.speed or v.speed,
            v.pitch if args.pitch is None else args.pitch,
            v.word_gap if args.word_gap is None else args.word_gap,
        )
        for role, v in VOICES.items()
    }
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only)
    require_tools()
    with tempfile.TemporaryDirectory(prefix="callrec-render-") as tmp:
        for call in CALLS:
            if wanted and call.name not in wanted:
                continue
            sidecar = render_call(call, voices, args.out, Path(tmp))
            print(
                f"{call.name}.wav  {sidecar['reference']['duration_s']:6.2f} s  "
                f"{len(call.turns)} turns"
            )
    if not wanted or "silence" in wanted:
        render_silence(args.out)
        print("silence.wav")
    if not wanted or "hold_music" in wanted:
        render_hold_music(args.out)
        print("hold_music.wav")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
