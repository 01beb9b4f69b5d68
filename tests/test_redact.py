"""Redaction of personal data in Dutch transcripts: every kind written as digits, as Dutch
number words, oddly grouped, split over segments and misheard; ordinary numbers kept verbatim;
the sample calls (their reference text and what Whisper made of them) redacted without a trace.

Pure and fast: no model, no server. The Whisper texts below are what the bundled Whisper base
(int8, language nl, temperature 0, VAD on) produced per channel for ``ingest/samples``.
"""

from __future__ import annotations

import datetime
import json
import re
import time
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from stdnum import iban, imei, luhn
from stdnum.nl import bsn

from transcribe.numbers_nl import (
    cardinal_words,
    parse_cardinal,
    parse_cardinal_words,
    parse_ordinal,
    word_digits,
)
from transcribe.redact import (
    PLACEHOLDER_KINDS,
    Finding,
    find,
    find_call,
    redact,
    redact_call,
    redact_turns,
)

THIS_YEAR = datetime.date.today().year
SAMPLES = sorted((Path(__file__).resolve().parents[1] / "ingest" / "samples").glob("*.json"))

# --- an independent digit counter: digits and number words, joined over soft separators ------

_TOKEN = re.compile(r"\d+|[^\W\d_]+|\S")
_SOFT = set(",.-/():;")


def longest_digit_run(text: str) -> int:
    """The longest run of digits in ``text`` once number words are digits ("nul zes" = 2)."""
    longest = run = 0
    for token in _TOKEN.findall(text):
        if token.isdigit():
            run += len(token)
        elif (digits := word_digits(token)) is not None:
            run += len(digits)
        elif token in _SOFT:
            continue
        else:
            run = 0
        longest = max(longest, run)
    return longest


# --- each kind: digits, words, odd grouping, misheard ---------------------------------------

IBAN_CASES = [
    ("Mijn IBAN is NL91ABNA0417164300.", "Mijn IBAN is [IBAN]."),
    ("Dat is NL91 ABNA 0417 1643 00, dank u.", "Dat is [IBAN], dank u."),
    ("Dat is NL30 Rabot, 0317, 452, 967, fijn, bedankt.", "Dat is [IBAN], fijn, bedankt."),
    (
        "Dat is N L drie nul, Rabo, nul drie één zeven, vier vijf twee, negen zes zeven.",
        "Dat is [IBAN].",
    ),
    ("NL dertig rabo nul drie één zeven vier vijf twee negen zes zeven", "[IBAN]"),
    ("N L negen één A B N A nul vier één zeven één zes vier drie nul nul", "[IBAN]"),
    ("Het is NL30 RABO 0317 4529 68.", "Het is [IBAN]."),  # checksum fails: one digit misheard
    ("BE68 5390 0754 7034 graag", "[IBAN] graag"),
    ("Bij de Rabo: 0317452967.", "Bij de [IBAN]."),
    ("Mijn rekeningnummer is 0317452967.", "Mijn rekeningnummer is [IBAN]."),
    ("Op welk rekening nummer? 0317 452 967", "Op welk rekening nummer? [IBAN]"),
]

BSN_CASES = [
    ("Mijn BSN is 238461579.", "Mijn BSN is [BSN]."),
    ("Dat is 238 461 579.", "Dat is [BSN]."),
    ("Dat is 238.461.579.", "Dat is [BSN]."),
    ("Ja hoor, twee drie acht, vier zes één, vijf zeven negen.", "Ja hoor, [BSN]."),
    ("tweehonderdachtendertig, vierhonderdeenenzestig, vijfhonderdnegenenzeventig", "[BSN]"),
    ("Mijn burgerservicenummer is 238461679.", "Mijn burgerservicenummer is [BSN]."),
    ("BSN: twee drie acht vier zes een zes zeven negen", "BSN: [BSN]"),  # 11-test fails
    ("Mijn BSN is 23846157.", "Mijn BSN is [BSN]."),  # a digit missing
    ("Ja, Thou, 2, 3, 8, 4, 6, 1, 6, 7, 9.", "Ja, Thou, [NUMBER]."),  # no keyword, no checksum
]

IMEI_CASES = [
    ("Het IMEI-nummer is 357291046128835.", "Het IMEI-nummer is [IMEI]."),
    ("Dat is 35-729104-612883-5.", "Dat is [IMEI]."),
    (
        "Ja, dat is drie vijf zeven, twee negen één, nul vier zes, één twee acht, acht drie vijf.",
        "Ja, dat is [IMEI].",
    ),
    ("Ja, dat is 357, 291, 046, 288, 388, dat is alles.", "Ja, dat is [IMEI], dat is alles."),
    ("IMEI 35729104612883", "IMEI [IMEI]"),  # a digit missing
]

PHONE_CASES = [
    ("Bel me op 06-12 34 56 78.", "Bel me op [PHONE]."),
    ("Mijn nummer is 0612345678.", "Mijn nummer is [PHONE]."),
    ("Bel 020-5518342 tussen negen en vijf.", "Bel [PHONE] tussen negen en vijf."),
    ("Mijn nummer is +31 6 12345678.", "Mijn nummer is [PHONE]."),
    ("In België: +32 471 12 34 56.", "In België: [PHONE]."),
    ("Of 0031 6 1234 5678.", "Of [PHONE]."),
    ("Nul zes, vier acht, één zeven, twee negen, vijf drie.", "[PHONE]."),
    ("nul zes twaalf vierendertig zesenvijftig achtenzeventig", "[PHONE]"),
    ("plus eenendertig zes een twee drie vier vijf zes zeven acht", "[PHONE]"),
    ("een nieuw mailadres. 06-48-17-29-3", "een nieuw mailadres. [PHONE]"),  # a digit missing
    ("Mijn telefoon nummer is 06 1234 567", "Mijn telefoon nummer is [PHONE]"),
]

EMAIL_CASES = [
    ("Mail naar mark.jansen@voorbeeld.nl. Dank u.", "Mail naar [EMAIL]. Dank u."),
    ("Mark punt jansen, apenstaartje, voorbeeld punt N L.", "[EMAIL]."),
    ("mark punt jansen apenstaartje voorbeeld punt nl", "[EMAIL]"),
    ("Mark.jansen, apen starten, voorbeeld.nl. Dank u wel, dag.", "[EMAIL]. Dank u wel, dag."),
    ("Het is jansen vijfentachtig apenstaartje hotmail punt com.", "Het is [EMAIL]."),
    ("Het is m streepje jansen at gmail punt com", "Het is [EMAIL]"),
]

CARD_CASES = [
    ("Mijn creditcard is 4111 1111 1111 1111.", "Mijn creditcard is [CARD]."),
    ("Dat is 5500-0000-0000-0004.", "Dat is [CARD]."),
    ("vier een een een, een een een een, een een een een, een een een een", "[CARD]"),
    ("Creditcard 4111 1111 1111 1112", "Creditcard [CARD]"),  # Luhn fails
]

POSTCODE_CASES = [
    ("Mijn postcode is 3528 BK.", "Mijn postcode is [POSTCODE]."),
    ("Mijn postcode is 3528BK.", "Mijn postcode is [POSTCODE]."),
    ("Mijn postcode is drie vijf twee acht B K.", "Mijn postcode is [POSTCODE]."),
    ("Ik woon op 3528 BK in Utrecht.", "Ik woon op [POSTCODE] in Utrecht."),
    ("postcode vijfendertig achtentwintig bk", "postcode [POSTCODE]"),
    ("De postcode is 3528, het huisnummer 12.", "De postcode is [POSTCODE], het huisnummer 12."),
]

DATE_OF_BIRTH_CASES = [
    (
        "En ik ben geboren op twaalf maart negentien zevenentachtig.",
        "En ik ben geboren op [DATE_OF_BIRTH].",
    ),
    ("Geboortedatum: twaalf maart negentienzevenentachtig.", "Geboortedatum: [DATE_OF_BIRTH]."),
    ("Mijn geboortedatum is 12-03-1987.", "Mijn geboortedatum is [DATE_OF_BIRTH]."),
    ("Mijn geboortedatum is 12 maart.", "Mijn geboortedatum is [DATE_OF_BIRTH]."),
    ("geboren op de twaalfde maart 1987", "geboren op de [DATE_OF_BIRTH]"),
    ("geboren 12/3/87", "geboren [DATE_OF_BIRTH]"),
    ("Ik ben geboren in 1987.", "Ik ben geboren in [DATE_OF_BIRTH]."),
    ("geboortedatum twaalf drie negentien zevenentachtig", "geboortedatum [DATE_OF_BIRTH]"),
    # Whisper heard "geboren" as "geworden": a full date that old is a date of birth anyway.
    ("En ik ben geworden op 12 maart 1997.", "En ik ben geworden op [DATE_OF_BIRTH]."),
    ("Dat is 12-03-1987.", "Dat is [DATE_OF_BIRTH]."),
]

POLICY_CASES = [
    ("Mijn polisnummer is 4071935391.", "Mijn polisnummer is [POLICY]."),
    (
        "Polisnummer: vier nul zeven, één negen drie, vijf drie negen één.",
        "Polisnummer: [POLICY].",
    ),
    ("Mijn klantnummer is K0048213.", "Mijn klantnummer is [POLICY]."),
    ("Mijn polisnummer is 238461579.", "Mijn polisnummer is [POLICY]."),  # passes the 11-test
    ("Mijn polisnummer is 40719.", "Mijn polisnummer is [POLICY]."),  # half heard
    ("Dat is 407-193-5391.", "Dat is [NUMBER]."),  # no keyword: hidden, untyped
]

ALL_CASES = [
    *IBAN_CASES,
    *BSN_CASES,
    *IMEI_CASES,
    *PHONE_CASES,
    *EMAIL_CASES,
    *CARD_CASES,
    *POSTCODE_CASES,
    *DATE_OF_BIRTH_CASES,
    *POLICY_CASES,
]


@pytest.mark.parametrize(("text", "expected"), IBAN_CASES)
def test_iban_is_hidden_written_spoken_grouped_or_misheard(text: str, expected: str):
    assert redact(text) == expected


@pytest.mark.parametrize(("text", "expected"), BSN_CASES)
def test_bsn_is_hidden_and_typed_by_11_test_or_keyword(text: str, expected: str):
    assert redact(text) == expected


@pytest.mark.parametrize(("text", "expected"), IMEI_CASES)
def test_imei_is_hidden_and_typed_by_luhn_keyword_or_length(text: str, expected: str):
    assert redact(text) == expected


@pytest.mark.parametrize(("text", "expected"), PHONE_CASES)
def test_phone_number_is_hidden_dutch_or_international(text: str, expected: str):
    assert redact(text) == expected


@pytest.mark.parametrize(("text", "expected"), EMAIL_CASES)
def test_email_address_is_hidden_written_or_spoken(text: str, expected: str):
    assert redact(text) == expected


@pytest.mark.parametrize(("text", "expected"), CARD_CASES)
def test_card_number_is_hidden_and_typed_by_luhn_or_keyword(text: str, expected: str):
    assert redact(text) == expected


@pytest.mark.parametrize(("text", "expected"), POSTCODE_CASES)
def test_postcode_is_hidden_written_spoken_or_after_the_word_postcode(text: str, expected: str):
    assert redact(text) == expected


@pytest.mark.parametrize(("text", "expected"), DATE_OF_BIRTH_CASES)
def test_date_of_birth_is_hidden_when_context_or_age_says_so(text: str, expected: str):
    assert redact(text) == expected


@pytest.mark.parametrize(("text", "expected"), POLICY_CASES)
def test_policy_number_is_hidden_and_typed_by_keyword(text: str, expected: str):
    assert redact(text) == expected


@pytest.mark.parametrize(("text", "expected"), ALL_CASES)
def test_no_long_digit_run_survives_redaction(text: str, expected: str):
    assert longest_digit_run(redact(text)) < 6


@pytest.mark.parametrize(("text", "expected"), ALL_CASES)
def test_redacting_a_redacted_text_changes_nothing(text: str, expected: str):
    assert redact(expected) == expected


@pytest.mark.parametrize(
    ("years_ago", "hidden"),
    [(40, True), (17, True), (16, True), (15, False), (1, False), (0, False)],
)
def test_full_date_without_keyword_is_hidden_only_when_old_enough_to_be_a_birth_date(
    years_ago: int, hidden: bool
):
    for text in (
        f"Dat was op 3 maart {THIS_YEAR - years_ago}.",
        f"Op 03-03-{THIS_YEAR - years_ago}.",
    ):
        assert ("[DATE_OF_BIRTH]" in redact(text)) is hidden, text


# --- sequences over segments ---------------------------------------------------------------

SPLIT_CASES = [
    (["Mijn IBAN is NL30 RABO", "0317 452 967."], ["Mijn IBAN is [IBAN]", "[IBAN]."]),
    (
        ["Dat is N L drie nul, Rabo,", "nul drie één zeven,", "vier vijf twee, negen zes zeven."],
        ["Dat is [IBAN],", "[IBAN],", "[IBAN]."],
    ),
    (["Dat is NL30 Rabot, 0317,", "eh, 452, 967."], ["Dat is [IBAN],", "eh, [IBAN]."]),
    (["nul drie één zeven", "ja, vier vijf, twee"], ["[NUMBER]", "ja, [NUMBER]"]),
    (["twee drie acht vier", "zes één vijf zeven negen"], ["[BSN]", "[BSN]"]),
    (
        ["Mijn nummer is nul zes, twaalf,", "vierendertig, zesenvijftig, achtenzeventig."],
        ["Mijn nummer is [PHONE],", "[PHONE]."],
    ),
    (
        ["Ja, dat is 357, 291,", "046, 128,", "835."],
        ["Ja, dat is [IMEI],", "[IMEI],", "[IMEI]."],
    ),
    (["mark punt jansen", "apenstaartje voorbeeld punt nl"], ["[EMAIL]", "[EMAIL]"]),
    (
        ["Ik ben geboren op twaalf maart", "negentien zevenentachtig."],
        ["Ik ben geboren op [DATE_OF_BIRTH]", "[DATE_OF_BIRTH]."],
    ),
    (["Postcode drie vijf", "twee acht B K"], ["Postcode [POSTCODE]", "[POSTCODE]"]),
    (
        ["Dat is 407,", "193,", "5391. Klopt dat?"],
        ["Dat is [NUMBER],", "[NUMBER],", "[NUMBER]. Klopt dat?"],
    ),
]


@pytest.mark.parametrize(("texts", "expected"), SPLIT_CASES)
def test_sequence_split_over_segments_is_hidden_in_each_segment(
    texts: list[str], expected: list[str]
):
    assert redact_turns(texts) == expected


def test_each_half_alone_would_survive_which_is_why_turns_are_redacted_together():
    texts = ["Mijn nummer is 06 123", "45678"]
    assert [redact(t) for t in texts] == texts
    assert redact_turns(texts) == ["Mijn nummer is [PHONE]", "[PHONE]"]


def test_other_speakers_words_between_two_halves_do_not_end_the_number():
    turns = [
        ("customer", "Het is NL30 RABO 0317"),
        ("agent", "ja"),
        ("customer", "452 967."),
    ]
    assert redact_call(turns) == ["Het is [IBAN]", "ja", "[IBAN]."]


def test_keyword_in_the_agents_question_types_the_customers_answer():
    turns = [
        ("agent", "Mag ik uw polisnummer?"),
        ("customer", "Dat is 407-193-5391."),
        ("agent", "Dank u. Uw geboortedatum?"),
        ("customer", "Twaalf maart."),
    ]
    assert redact_call(turns) == [
        "Mag ik uw polisnummer?",
        "Dat is [POLICY].",
        "Dank u. Uw geboortedatum?",
        "[DATE_OF_BIRTH].",
    ]
    # Alone, the customer's turns keep the number hidden but cannot name it.
    assert redact_turns(["Dat is 407-193-5391.", "Twaalf maart."]) == [
        "Dat is [NUMBER].",
        "Twaalf maart.",
    ]


def test_whisper_call_with_garbled_questions_still_types_by_checksum_or_shape():
    turns = [
        ("agent", "mag ik wat die me nummer van de telefoon?"),
        ("agent", "Dank u, op welk prekening nummer wil het u met geld ontvangen?"),
        (
            "customer",
            "Ja, dat is 357, 291, 046, 288, 388, dat is NL30 Rabot, 0317, 452, 967, fijn, bedankt.",
        ),
    ]
    assert redact_call(turns)[2] == "Ja, dat is [IMEI], dat is [IBAN], fijn, bedankt."


def test_keyword_in_the_next_question_does_not_retype_the_previous_answer():
    turns = [
        ("agent", "Mag ik het IMEI-nummer?"),
        ("customer", "Ja, dat is 357291046128835."),
        ("agent", "Dank u. Op welk rekeningnummer?"),
    ]
    assert redact_call(turns)[1] == "Ja, dat is [IMEI]."


def test_redact_turns_returns_one_text_per_input_and_leaves_clean_ones_alone():
    texts = ["", "Goedemorgen.", "Dat is 0612345678.", "Dank u wel."]
    assert redact_turns(texts) == ["", "Goedemorgen.", "Dat is [PHONE].", "Dank u wel."]
    assert redact_turns([]) == []


# --- ordinary numbers are kept ---------------------------------------------------------------

KEPT = [
    "Het eigen risico is honderdvijftig euro.",
    "Het eigen risico is 150 euro.",
    "Dat is € 4,50 per maand.",
    "Dat is €150.",
    "Uw premie wordt vier euro vijftig per maand hoger.",
    "De schade is € 1.250,00.",
    "De woning is 125.000 euro waard.",
    "Een verbouwing van honderdvijfentwintigduizend euro.",
    "Wij maken vierhonderdtwintig euro over, binnen vijf werkdagen.",
    "Het bedrag van tweehonderd euro is gisteren overgemaakt.",
    "We repareren uw scherm op dinsdag dertien januari.",
    "We repareren uw scherm op dinsdag 13 januari.",
    f"De monteur komt op 13-01-{THIS_YEAR}.",
    f"Dinsdag dertien januari tweeduizend {cardinal_words(THIS_YEAR - 2000)}.",
    "De premie gaat omhoog vanaf één april.",
    "De premie gaat omhoog vanaf een april.",
    f"Vanaf 1 april {THIS_YEAR + 1}.",
    "De verzekering vergoedt twaalf behandelingen per jaar.",
    "Ik heb 9 behandelingen gehad.",
    "U krijgt binnen tien minuten een mail.",
    "U krijgt binnen 10 minuten een mail.",
    "Kom om half drie.",
    "Kom om 14.30 uur.",
    "Schades in 2019, 2020 en 2021.",
    "Dat was in tweeduizend vijfentwintig.",
    "Huisnummer 12, tweede verdieping.",
    "Ik at een appel.",
    "Ik heb een nieuw telefoonnummer en een nieuw mailadres.",
    "Bij de Rabo kost dat 150 euro.",
    "Mijn telefoon is gisteren gevallen, en het scherm is helemaal gebarsten.",
    "12 behandelingen ter jaar tot 35 uur op ter behandeling.",
    "Dat kan uw premie wordt 4,50 euro per month hoger van af in april.",
    "Goedemorgen, Polderland Verzekeringen, met Emma. Waarmee kan ik u helpen?",
]


@pytest.mark.parametrize("text", KEPT)
def test_ordinary_numbers_dates_and_amounts_are_kept_verbatim(text: str):
    assert redact(text) == text


# --- the sample calls ------------------------------------------------------------------------


def _sample(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _per_speaker(turns: list[dict]) -> list[str]:
    redacted = [t["text"] for t in turns]
    for speaker in {t["speaker"] for t in turns}:
        indexes = [i for i, t in enumerate(turns) if t["speaker"] == speaker]
        for i, text in zip(indexes, redact_turns([turns[i]["text"] for i in indexes]), strict=True):
            redacted[i] = text
    return redacted


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_call_keeps_no_digit_run_and_every_key_phrase(path: Path):
    sample = _sample(path)
    turns = sample["reference"]["turns"]
    redacted = _per_speaker(turns)
    for text in redacted:
        assert longest_digit_run(text) < 6, text
    for phrase in sample["key_phrases"]:
        assert phrase["phrase"] in redacted[phrase["turn"]], phrase
    for item in sample["pii"]:
        if item["kind"] != "NAME":  # names are out of scope
            assert item["spoken"] not in redacted[item["turn"]], item


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_call_redacted_as_a_call_names_every_kind_of_personal_data(path: Path):
    sample = _sample(path)
    turns = sample["reference"]["turns"]
    redacted = redact_call([(t["speaker"], t["text"]) for t in turns])
    for item in sample["pii"]:
        if item["kind"] != "NAME":
            assert f"[{item['kind']}]" in redacted[item["turn"]], (item, redacted[item["turn"]])


# What Whisper made of the customers' channels: digits misheard, words run together.
WHISPER_CUSTOMER = {
    "imei_iban": (
        ["Ja, dat is 357, 291, 046, 288, 388, dat is NL30 Rabot, 0317, 452, 967, fijn, bedankt."],
        ["Ja, dat is [IMEI], dat is [IBAN], fijn, bedankt."],
    ),
    "health_bsn": (
        ["Ja, Thou, 2, 3, 8, 4, 6, 1, 6, 7, 9.", "Ik heb 9 behandelingen sygotterapie gehad."],
        ["Ja, Thou, [NUMBER].", "Ik heb 9 behandelingen sygotterapie gehad."],
    ),
    "phone_email": (
        [
            "Hallo, ik ben Verhuist en ik heb een nieuw telefoon nummer en een nieuw meeladres. "
            "06-48-17-29-3",
            "Mark.jansen, apen starten, voorbeeld.nl. Dank u wel, dag.",
        ],
        [
            "Hallo, ik ben Verhuist en ik heb een nieuw telefoon nummer en een nieuw meeladres. "
            "[PHONE]",
            "[EMAIL]. Dank u wel, dag.",
        ],
    ),
    "policy_postcode_dob": (
        [
            "Dat is 407-193-5391.",
            "Mijn postcode is 3528BK.",
            "En ik ben geworden op 12 maart 1997.",
        ],
        [
            "Dat is [NUMBER].",
            "Mijn postcode is [POSTCODE].",
            "En ik ben geworden op [DATE_OF_BIRTH].",
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(WHISPER_CUSTOMER))
def test_whisper_transcript_of_sample_call_is_redacted_despite_misheard_digits(name: str):
    texts, expected = WHISPER_CUSTOMER[name]
    assert redact_turns(texts) == expected


def test_whisper_agent_lines_with_amounts_and_dates_are_kept():
    agent = [
        "Dank u, wij maken 420 euro over binnen 5 werkdagen.",
        "u telefoon is verzekerd, dus de schade wordt vergoed, wat eigen risico is 150 euro.",
        "We prepareren u het scherm op dinsdag 13 januari, u kunt we toestel die ochtend in de "
        "winkel afgeven.",
        "U krijgt binnen 10 minuten bent meel ter controle.",
        "Dat kan uw premie wordt 4,50 euro per month hoger van af in april.",
    ]
    assert redact_turns(agent) == agent


# --- findings and the kinds ---------------------------------------------------------------


def test_find_gives_the_kind_and_character_offsets():
    assert find("Mijn BSN is 238461579.") == [Finding("BSN", 12, 21)]
    assert Finding("BSN", 12, 21).placeholder == "[BSN]"


def test_find_call_gives_one_finding_per_segment_of_a_split_sequence():
    findings = find_call([("c", "NL30 RABO"), ("a", "ja"), ("c", "0317 452 967")])
    assert findings == [Finding("IBAN", 0, 9, segment=0), Finding("IBAN", 0, 12, segment=2)]


def test_every_placeholder_used_is_a_declared_kind():
    kinds = {f.kind for text, _ in ALL_CASES for f in find(text)}
    assert kinds <= set(PLACEHOLDER_KINDS)
    assert kinds == set(PLACEHOLDER_KINDS)  # and every declared kind is reachable


def test_a_thirty_minute_call_is_redacted_well_under_a_second():
    lines = [t["text"] for path in SAMPLES for t in _sample(path)["reference"]["turns"]]
    segments = [lines[i % len(lines)] for i in range(400)]
    started = time.perf_counter()
    redact_call([(i % 2, text) for i, text in enumerate(segments)])
    assert time.perf_counter() - started < 1.0


# --- Dutch number words ----------------------------------------------------------------------

WORDS = [
    ("nul", "0"),
    ("één", "1"),
    ("achttien", "18"),
    ("vijfendertig", "35"),
    ("tweeëntwintig", "22"),
    ("honderd", "100"),
    ("honderdvijftig", "150"),
    ("vierhonderdtwintig", "420"),
    ("tweeduizendvijfentwintig", "2025"),
    ("negentienhonderdzevenentachtig", "1987"),
    ("negentienzevenentachtig", "1987"),  # a year said in two halves, written as one word
    ("tweedrie", None),  # two digits run together are not one number
    ("behandelingen", None),
]


@pytest.mark.parametrize(("word", "digits"), WORDS)
def test_number_word_reads_as_its_digits(word: str, digits: str | None):
    assert word_digits(word) == digits


def test_ordinal_reads_as_its_number():
    assert [parse_ordinal(w) for w in ("eerste", "derde", "twaalfde", "eenentwintigste")] == [
        1,
        3,
        12,
        21,
    ]


@pytest.mark.parametrize(
    ("words", "value"),
    [
        ("zes en veertig", 46),
        ("tweeën twintig", 22),
        ("twee honderd", 200),
        ("tweeduizend vijfentwintig", 2025),
        ("vijf honderd vijftien", 515),
        # A space inside a one-word number is two numbers: "nul vijf, tien" read in pairs.
        ("vijf tien", None),
        ("acht tien", None),
        ("vier honderd vijf tien", None),
    ],
)
def test_several_number_words_read_as_one_number_only_along_word_boundaries(
    words: str, value: int | None
):
    assert parse_cardinal_words(tuple(words.split())) == value


@given(st.integers(min_value=0, max_value=999_999))
def test_cardinal_words_and_parse_cardinal_are_inverse(number: int):
    assert parse_cardinal(cardinal_words(number)) == number


# --- property: valid numbers never survive, however they are said ----------------------------

_DIGIT_WORDS = ["nul", "één", "twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen"]
_BANKS = ["RABO", "INGB", "ABNA", "SNSB", "ASNB", "TRIO", "KNAB", "BUNQ"]


@st.composite
def ibans(draw: st.DrawFn) -> str:
    bank = draw(st.sampled_from(_BANKS))
    account = draw(st.text("0123456789", min_size=10, max_size=10))
    number = f"NL{iban.calc_check_digits(f'NL00{bank}{account}')}{bank}{account}"
    assert iban.is_valid(number)
    return number


@st.composite
def bsns(draw: st.DrawFn) -> str:
    head = draw(st.text("0123456789", min_size=8, max_size=8).filter(lambda s: s[0] != "0"))
    last = sum((9 - i) * int(d) for i, d in enumerate(head)) % 11
    assume(last != 10)
    number = head + str(last)
    assert bsn.is_valid(number)
    return number


@st.composite
def mobiles(draw: st.DrawFn) -> str:
    number = "06" + draw(st.text("0123456789", min_size=8, max_size=8))
    assume(phonenumbers.is_valid_number(phonenumbers.parse(number, "NL")))
    return number


@st.composite
def imeis(draw: st.DrawFn) -> str:
    body = "35" + draw(st.text("0123456789", min_size=12, max_size=12))
    number = body + luhn.calc_check_digit(body)
    assert imei.is_valid(number)
    return number


def _groups(text: str, sizes: list[int]) -> list[str]:
    """Cut ``text`` into groups of the given sizes, the rest as a last group."""
    out, i = [], 0
    for size in sizes:
        if i < len(text):
            out.append(text[i : i + size])
            i += size
    if i < len(text):
        out.append(text[i:])
    return out


def _spoken(digits: str, sizes: list[int], one: str) -> str:
    """Digit by digit in words, groups separated by commas: "nul drie één zeven, vier ..."."""
    return ", ".join(
        " ".join(one if d == "1" else _DIGIT_WORDS[int(d)] for d in group)
        for group in _groups(digits, sizes)
    )


def _pairs(digits: str, one: str) -> str:
    """In pairs, as Dutch callers read phone numbers: "nul zes, twaalf, vierendertig"."""
    said = []
    for pair in _groups(digits, [2] * 10):
        if pair[0] == "0" or len(pair) == 1:
            said.append(_spoken(pair, [2], one))
        else:
            said.append(cardinal_words(int(pair)))
    return " ".join(said)


def render(number: str, style: str, sizes: list[int], one: str = "één") -> str:
    """Say ``number`` as Whisper may write it: compact, in fours, digit by digit in words, in
    pairs of words, with commas or dashes; an IBAN's country and bank code spelled or said."""
    if style == "compact":
        return number
    if style == "grouped":
        return " ".join(_groups(number, [4] * 9))
    prefix, digits = "", number
    if number[:2].isalpha():
        country, check, bank, digits = number[:2], number[2:4], number[4:8], number[8:]
        if style in ("words", "pairs"):
            prefix = f"{' '.join(country)} {_spoken(check, [2], one)}, {bank.capitalize()}, "
        else:
            prefix = f"{country}{check} {bank} "
    if style == "words":
        return prefix + _spoken(digits, sizes, one)
    if style == "pairs":
        return prefix + _pairs(digits, one)
    return prefix + (", " if style == "commas" else "-").join(_groups(digits, sizes))


STYLES = st.sampled_from(["compact", "grouped", "words", "pairs", "commas", "dashes"])
GROUPS = st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=6)
ONE = st.sampled_from(["één", "een"])  # Whisper writes the digit 1 either way


def _only_placeholders_left(outputs: list[str], kind: str) -> bool:
    rest = " ".join(outputs).replace(f"[{kind}]", " ")
    return set(re.findall(r"[^\W_]+", rest)) <= {"Dat", "is", "dank", "u"}


def _split(text: str, cuts: list[int]) -> list[str]:
    words = text.split(" ")
    bounds = sorted({min(c, len(words) - 1) for c in cuts if 0 < c < len(words)})
    parts, start = [], 0
    for bound in bounds:
        parts.append(" ".join(words[start:bound]))
        start = bound
    parts.append(" ".join(words[start:]))
    return parts


@settings(max_examples=150, deadline=None)
@given(ibans(), STYLES, GROUPS, ONE, st.lists(st.integers(1, 30), max_size=2))
def test_valid_iban_never_survives_however_said_or_split(
    number: str, style: str, groups: list[int], one: str, cuts: list[int]
):
    text = f"Dat is {render(number, style, groups, one)}, dank u."
    assert redact(text) == "Dat is [IBAN], dank u."
    outputs = redact_turns(_split(text, cuts))
    assert _only_placeholders_left(outputs, "IBAN"), outputs


@settings(max_examples=150, deadline=None)
@given(bsns(), STYLES, GROUPS, ONE, st.lists(st.integers(1, 12), max_size=2))
# "nul negen tien" is 0, 9, 10: read as "negentien" a digit was lost and the BSN went untyped.
@example(number="310910109", style="pairs", groups=[1], one="één", cuts=[])
def test_valid_bsn_never_survives_however_said_or_split(
    number: str, style: str, groups: list[int], one: str, cuts: list[int]
):
    text = f"Dat is {render(number, style, groups, one)}, dank u."
    assert redact(text) == "Dat is [BSN], dank u."
    outputs = redact_turns(_split(text, cuts))
    assert _only_placeholders_left(outputs, "BSN"), outputs


@settings(max_examples=150, deadline=None)
@given(imeis(), STYLES, GROUPS, ONE, st.lists(st.integers(1, 18), max_size=2))
# Pairs "05" "10" are said "nul vijf tien": 5 and 10, not "vijftien" (a digit lost, no IMEI).
@example(number="350510000000004", style="pairs", groups=[1], one="één", cuts=[])
def test_valid_imei_never_survives_however_said_or_split(
    number: str, style: str, groups: list[int], one: str, cuts: list[int]
):
    text = f"Dat is {render(number, style, groups, one)}, dank u."
    assert redact(text) == "Dat is [IMEI], dank u."
    outputs = redact_turns(_split(text, cuts))
    assert _only_placeholders_left(outputs, "IMEI"), outputs


@settings(max_examples=150, deadline=None)
@given(mobiles(), STYLES, GROUPS, ONE, st.lists(st.integers(1, 12), max_size=2))
# "nul zes tien ..." read as "zestien" left 9 digits that pass the BSN 11-test: typed [BSN].
@example(number="0610001011", style="pairs", groups=[1], one="een", cuts=[])
@example(number="0610901009", style="pairs", groups=[1], one="één", cuts=[])
def test_valid_mobile_number_never_survives_however_said_or_split(
    number: str, style: str, groups: list[int], one: str, cuts: list[int]
):
    text = f"Dat is {render(number, style, groups, one)}, dank u."
    assert redact(text) == "Dat is [PHONE], dank u."
    outputs = redact_turns(_split(text, cuts))
    assert _only_placeholders_left(outputs, "PHONE"), outputs
