"""Search latency at a million segments: callrec's ``search()`` against the bare full-text engine.

    .venv/bin/python bench/search.py [--segments 1000000] [--backend sqlite|postgres|both]
                                     [--runs 50] [--stem-cache] [--plan-cache-mode MODE]
                                     [--database-url postgresql+psycopg://...]

Per backend (SQLite FTS5 in a temp folder; PostgreSQL in a throw-away cluster started the way
the test suite starts one, durability off, unless ``--database-url`` names an *empty* database):

1. load, not timed as search: a seeded corpus of ``--segments`` segments in calls of 20 to 80
   (about 50) segments over six months, inserted in bulk in time order (executemany on SQLite,
   COPY on PostgreSQL). Words are drawn from a Dutch contact-centre vocabulary with a Zipf-like
   distribution (``ja``, ``u``, ``polis``, ``schade`` in many segments, compounds and names in
   a few hundred at most), one in eight from the call's topic (its queue), so words of one
   topic occur together as they do in real calls; speakers alternate, some turns carry numbers,
   and the redacted text has every digit run replaced by ``[NUMBER]``;
2. index build: ``storage.search.index.reindex_all`` over every segment, timed (what
   migration 0005 runs on an existing catalogue); PostgreSQL then gets ``VACUUM ANALYZE``, as
   autovacuum would give it. ``--stem-cache`` memoizes the stemmer for the build (the same
   entries, in a fraction of the time: it shows what caching stems would save);
3. search: ``--runs`` rounds (after ``--warmup``) over every query, each through ``search()``
   (parse, role rule, joins, filters, the audit event it writes and commits, snippets) as a
   complaint handler (full text) and as an analyst (redacted text), one search at a time, on
   the catalogue's pooled connections as a long-running app uses them (so PostgreSQL's plan
   cache learns from the mix; ``--plan-cache-mode`` overrides the server's ``auto``); each
   followed by the bare engine matching the same rendered query: ``SELECT rowid FROM
   segment_index WHERE segment_index MATCH ? ORDER BY rowid DESC LIMIT 51`` on SQLite,
   ``SELECT segment_id FROM segment_index WHERE body @@ to_tsquery('dutch', %s) ORDER BY
   segment_id DESC LIMIT 51`` on PostgreSQL (``redacted`` for the analyst; ``search()`` asks
   for ``limit + 1`` rows too). The bare engine applies no filters: the difference is what
   callrec's layer costs.

Prints p50 and p95 per query and role and over all runs, against the target p95 < 200 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import random
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench.purge import timed
from settings import load_settings
from storage.access import Role, Viewer
from storage.catalogue import AgentChannel, Call, CallState, Catalogue
from storage.connect import Storage
from storage.embedded_s3 import S3Endpoint
from storage.objects import ObjectStore
from storage.search import parse, to_fts5, to_tsquery
from storage.search import text as search_text
from storage.search.index import INDEX_TABLE, reindex_all
from storage.search.service import Filters, search
from tests.postgres_server import postgres_server

TARGET_P95_MS = 200.0
LIMIT = 50  # search()'s default page
END = datetime(2026, 6, 1, tzinfo=UTC)  # the newest call starts before this
DAYS = 182
BATCH_CALLS = 500  # calls per insert batch (about 25,000 segments)
# search() only reads the catalogue: no S3 server is started, so none competes for the CPU.
UNUSED_S3 = S3Endpoint(endpoint="127.0.0.1:9", access_key="unused", secret_key="unused")

# -- the corpus ------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


# Words by falling frequency; "_" joins words that are said together (one draw, several words).
GENERAL = _words("""
ja de u het een en ik dat is van die niet met op voor in te wat maar dan nee even heb kan mijn
uw dus nog er we wel ook zijn goed oké hoor als naar bij om of al zo hebben moet was heeft dank
graag precies klopt eh nou gewoon alleen want wordt zal kunt wilt kijken zie weet denk toch
een_moment inderdaad prima helemaal meneer mevrouw polis alstublieft schade bedankt dag
goedemiddag mijn_naam_is goedemorgen u_spreekt_met verzekering eigen klantnummer even_kijken
polisnummer adres brief mail bedrag euro maand jaar week collega afdeling terugbellen
doorverbinden klacht dossier afspraak afspraken werkdag werkdagen aanvraag formulier website
melding verzekerd verzekeraar verzekeringen verzekeren verzekerde geboortedatum postcode betaald
ontvangen gestuurd opgestuurd doorgeven nagaan controleren systeem wachttijd fijne_dag_nog
vandaag morgen gisteren volgende vorige keer probleem vraag vragen antwoord duidelijk begrijp
snap sorry excuses vervelend jammer helaas natuurlijk zeker misschien ongeveer binnen
""")
TOPICS = {  # queue: its own words, by falling frequency
    "schade": _words("""auto schade_melden ruit aanrijding kenteken garage hersteller tegenpartij
        expert lekkage storm waterschade inbraak diefstal fiets telefoon scherm foto
        schadeformulier europees_schadeformulier schadenummer reparatie uitkering glasschade
        dak brand"""),
    "zorg": _words("""declaratie eigen_risico tandarts vergoeding behandeling fysiotherapie
        ziekenhuis huisarts zorgverzekering machtiging apotheek medicijnen bril
        aanvullende_verzekering nota specialist verwijzing basisverzekering"""),
    "polis": _words("""premie wijziging dekking opzeggen verhuizing korting inboedel opstal
        no_claim_korting aansprakelijkheid rechtsbijstand pakket ingangsdatum polisblad
        voorwaarden jaarpremie kinderen partner meeverzekeren risico"""),
    "reizen": _words("""reis bagage annulering vakantie hotel vlucht groene_kaart buitenland
        alarmcentrale repatriëring koffer camping ski annuleringsverzekering
        doorlopende_reisverzekering"""),
    "incasso": _words("""betaling rekening factuur achterstand herinnering incasso termijn
        betalingsregeling iban automatische_incasso aanmaning deurwaarder storneren
        openstaand_bedrag"""),
    "algemeen": _words("""inloggen wachtwoord app digid account wijzigen persoonlijke_gegevens
        telefoonnummer emailadres mijn_omgeving"""),
}
QUEUE_WEIGHTS = {"schade": 30, "zorg": 25, "polis": 20, "incasso": 10, "reizen": 8, "algemeen": 7}
TEAMS = {
    "schade": ("schade-noord", "schade-zuid"),
    "zorg": ("zorg-1", "zorg-2"),
    "polis": ("polis",),
    "reizen": ("reizen",),
    "incasso": ("incasso",),
    "algemeen": ("algemeen",),
}
AGENTS_PER_TEAM = 15
TOPIC_SHARE = 0.12  # of a turn's words come from the call's topic
NUMBER_SHARE = 0.07  # of turns say a number
# The long tail: compounds as Dutch makes them freely, and names; a few hundred uses at most.
FIRST = _words("""dak water storm keuken badkamer kelder zolder tuin garage voordeur achterdeur raam
    vloer muur plafond leiding kraan boiler schuur zonnepaneel schutting balkon trap kozijn
    brievenbus carport veranda hek vijver oprit stoep gevel schoorsteen goot riool meterkast
    wasmachine vaatwasser koelkast televisie laptop camera fiets scooter caravan boot aanhanger
    motor bus bestel lease huur koop hypotheek spaar pensioen uitvaart ongevallen letsel
    woonhuis bedrijfs zwembad sauna serre dakkapel zonwering rolluik markies tuinhuis kas
    berging souterrain vloerverwarming warmtepomp laadpaal thuisbatterij airco alarm deurbel
    slot lift""")
SECOND = _words("""lek reparatie vervanging kosten rapport offerte foto melding expertise herstel
    inspectie afrekening taxatie opname rekening bon garantie onderdeel monteur aannemer
    loodgieter dekking clausule termijn aanvraag beoordeling uitkering vergoeding nota
    verklaring storing defect schatting controle advies planning bezoek onderhoud installatie
    montage levering keuring dagwaarde nieuwwaarde eigenaar sleutel""")
NAMES = _words("""jansen devries bakker visser smit meijer mulder bos vos peters hendriks dekker
    brouwer dijkstra vermeulen kok jacobs boer janssen willems verhoeven koster prins
    amsterdam rotterdam utrecht eindhoven groningen tilburg almere breda nijmegen apeldoorn
    haarlem arnhem zaandam amersfoort zwolle leiden maastricht dordrecht zoetermeer deventer
    hilversum delft venlo helmond alkmaar leeuwarden""")
MONTHS = _words("januari februari maart april mei juni juli augustus september oktober november")
RARE = "warmtepompkeuring"  # near the end of the tail: in about a hundred of a million segments


def _tail() -> list[str]:
    words = [a + b for a in FIRST for b in SECOND] + NAMES
    random.Random(0).shuffle(words)  # fixed: the vocabulary (and RARE's rank) ignores --seed
    return words


def _cumulative(count: int, *, offset: float, exponent: float) -> list[float]:
    """Zipf-Mandelbrot weights 1/(rank + offset)^exponent, running sum (for ``choices``)."""
    total, out = 0.0, []
    for rank in range(1, count + 1):
        total += (rank + offset) ** -exponent
        out.append(total)
    return out


@dataclass(frozen=True)
class Vocabulary:
    general: list[str] = field(default_factory=lambda: GENERAL + _tail())
    general_cum: list[float] = field(default_factory=list)
    topic_cum: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.general_cum.extend(_cumulative(len(self.general), offset=2.7, exponent=1.3))
        for queue, words in TOPICS.items():
            self.topic_cum[queue] = _cumulative(len(words), offset=2.0, exponent=1.0)


def _number(rng: random.Random) -> str:
    digits = lambda n: str(rng.randrange(10 ** (n - 1), 10**n))  # noqa: E731
    return rng.choice(
        (
            f"mijn polisnummer is {digits(8)}",
            f"postcode {digits(4)} {rng.choice('BCDGHJKLMNRSTVX')}{rng.choice('ABDEGHKLNRST')}",
            f"{digits(3)} euro",
            f"06 {digits(8)}",
            f"op {rng.randint(1, 28)} {rng.choice(MONTHS)}",
            f"klantnummer {digits(7)}",
        )
    )


def _turn(rng: random.Random, vocab: Vocabulary, queue: str) -> str:
    length = min(40, 1 + int(rng.expovariate(1 / 11)))
    from_topic = sum(rng.random() < TOPIC_SHARE for _ in range(length))
    words = rng.choices(vocab.general, cum_weights=vocab.general_cum, k=length - from_topic)
    words += rng.choices(TOPICS[queue], cum_weights=vocab.topic_cum[queue], k=from_topic)
    rng.shuffle(words)
    if rng.random() < NUMBER_SHARE:
        words.insert(rng.randint(0, len(words)), _number(rng))
    text = " ".join(words).replace("_", " ")
    return text[0].upper() + text[1:] + rng.choice("..?")


SegmentRow = tuple[str, str, float, float, str, str, float, str, str]


def corpus(segments: int, seed: int) -> Iterator[tuple[list[dict], list[SegmentRow]]]:
    """Batches of (call rows, their segment rows), oldest call first: the same seed gives the
    same corpus, so both backends load identical data."""
    rng, vocab = random.Random(seed), Vocabulary()
    sizes: list[int] = []
    while sum(sizes) < segments:
        sizes.append(min(rng.randint(20, 80), segments - sum(sizes)))
    starts = sorted(
        END - timedelta(days=DAYS) + timedelta(seconds=rng.uniform(0, DAYS * 86400)) for _ in sizes
    )
    queues, weights = list(QUEUE_WEIGHTS), list(QUEUE_WEIGHTS.values())
    calls: list[dict] = []
    rows: list[SegmentRow] = []
    for number, (size, started_at) in enumerate(zip(sizes, starts, strict=True)):
        call_id = f"bench-{number:07d}"
        queue = rng.choices(queues, weights)[0]
        team = rng.choice(TEAMS[queue])
        at = 0.0
        for turn in range(size):
            text = _turn(rng, vocab, queue)
            end = at + 0.35 * text.count(" ") + rng.uniform(0.4, 1.5)
            speaker = "agent" if turn % 2 == 0 else "customer"
            redacted = re.sub(r"\d+", "[NUMBER]", text)
            rows.append((call_id, speaker, at, end, text, redacted, 0.9, "[]", "bench"))
            at = end + rng.uniform(0.1, 1.0)
        call = Call(
            id=call_id, started_at=started_at, duration_s=at, channels=2, sample_rate=8000,
            codec="pcm_s16le", queue=queue, team=team,
            agent_id=f"{team}-{rng.randrange(AGENTS_PER_TEAM):02d}",
            direction="inbound" if rng.random() < 0.85 else "outbound",
            customer_number=f"+316{rng.randrange(10**8):08d}",
            policy_number=f"P{rng.randrange(10**8):08d}", language="nl", sha256="0" * 64,
            original_key=f"calls/{call_id}/original.wav", state=CallState.TRANSCRIBED,
            agent_channel=AgentChannel.LEFT, created_at=started_at,
        )  # fmt: skip
        calls.append(call.model_dump())
        if len(calls) == BATCH_CALLS or number == len(sizes) - 1:
            yield calls, rows
            calls, rows = [], []


# -- loading and indexing --------------------------------------------------------------------
SEGMENT_COLUMNS = "call_id, speaker, start_s, end_s, text, redacted_text, confidence, words, model"


def load(catalogue: Catalogue, segments: int, seed: int) -> tuple[int, int]:
    """Insert the corpus in bulk in one transaction; returns (calls, segments)."""
    counts = [0, 0]
    with catalogue.engine.begin() as connection:
        postgres = connection.dialect.name == "postgresql"
        for calls, rows in corpus(segments, seed):
            connection.execute(sa.insert(Call), calls)
            if postgres:
                cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
                with cursor, cursor.copy(f"COPY segments ({SEGMENT_COLUMNS}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                connection.exec_driver_sql(
                    f"INSERT INTO segments ({SEGMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            counts[0] += len(calls)
            counts[1] += len(rows)
    return counts[0], counts[1]


@contextlib.contextmanager
def memoized_stem(enabled: bool) -> Iterator[None]:
    """``--stem-cache``: ``storage.search.text.stem`` memoized while the index is built.

    The entries come out the same (a stem depends on the token alone); the build shows what
    caching the pure-Python Snowball stemmer would save where Zipf's law repeats words."""
    if not enabled:
        yield
        return
    original = search_text.stem
    search_text.stem = functools.lru_cache(maxsize=None)(original)
    try:
        yield
    finally:
        search_text.stem = original


def build_index(catalogue: Catalogue, *, stem_cache: bool) -> int:
    """callrec's own rebuild, in one transaction, as migration 0005 runs it."""
    with memoized_stem(stem_cache), catalogue.engine.begin() as connection:
        written = reindex_all(connection)
    if catalogue.engine.dialect.name == "postgresql":
        with catalogue.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE"
            )
    return written


# -- the queries -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    label: str
    text: str
    filters: Filters = field(default_factory=Filters)


CASES = (
    Case("rare word", RARE),
    Case("common word", "schade"),
    Case("two words (AND)", "schade auto"),
    Case("AND, rarely together", "tandarts kenteken"),
    Case("phrase", '"eigen risico"'),
    Case("prefix", "verzek*"),
    Case("OR", "ruit OR scherm"),
    Case("exclusion", "schade -auto"),
    Case(
        "team + 2 weeks",
        "schade",
        Filters(
            team="schade-noord", since=END - timedelta(days=90), until=END - timedelta(days=76)
        ),
    ),
    Case("speaker", "opzeggen", Filters(speaker="customer")),
)
VIEWERS = (Viewer("bench-handler", Role.COMPLAINT_HANDLER), Viewer("bench-analyst", Role.ANALYST))


def bare_statement(dialect: str, column: str) -> tuple[str, str]:
    """(top LIMIT matches newest first, count of all matches) for the bare engine."""
    if dialect == "postgresql":
        where = f"WHERE {column} @@ to_tsquery('dutch', :match)"
        return (
            f"SELECT segment_id FROM {INDEX_TABLE} {where} ORDER BY segment_id DESC LIMIT :limit",
            f"SELECT count(*) FROM {INDEX_TABLE} {where}",
        )
    where = f"WHERE {INDEX_TABLE} MATCH :match"
    return (
        f"SELECT rowid FROM {INDEX_TABLE} {where} ORDER BY rowid DESC LIMIT :limit",
        f"SELECT count(*) FROM {INDEX_TABLE} {where}",
    )


class Measured:
    """One query as one viewer: callrec's search and the bare engine's match, timed in turn."""

    def __init__(self, storage: Storage, case: Case, viewer: Viewer) -> None:
        self.storage, self.case, self.viewer = storage, case, viewer
        engine = storage.catalogue.engine
        column = "body" if viewer.sees_personal_data else "redacted"
        query = parse(case.text)
        match = to_tsquery(query) if engine.dialect.name == "postgresql" else to_fts5(query, column)
        self._top, count = (sa.text(s) for s in bare_statement(engine.dialect.name, column))
        self._params = {"match": match, "limit": LIMIT + 1}
        with engine.connect() as connection:
            # Segments matching the words, before filters and scope.
            self.matches = int(connection.execute(count, {"match": match}).scalar_one())
        self.hits = self.ours()  # what search() returns (at most LIMIT)
        self.ours_ms: list[float] = []
        self.bare_ms: list[float] = []

    def ours(self) -> int:
        result = search(
            self.storage, self.case.text, viewer=self.viewer, filters=self.case.filters,
            limit=LIMIT, now=datetime.now(UTC),
        )  # fmt: skip
        return len(result.hits)

    def bare(self) -> None:
        with self.storage.catalogue.engine.connect() as connection:
            connection.execute(self._top, self._params).all()

    def run_once(self) -> None:
        for run, into in ((self.ours, self.ours_ms), (self.bare, self.bare_ms)):
            started = time.perf_counter()
            run()
            into.append((time.perf_counter() - started) * 1000)


def measure(storage: Storage, *, runs: int, warmup: int) -> list[Measured]:
    """Every query and viewer in turn, ``runs`` rounds: a mixed load, as the app sees one, and
    what a plan cache learns from one query shape (see ``--plan-cache-mode``) hits them all."""
    measured = [Measured(storage, case, viewer) for case in CASES for viewer in VIEWERS]
    for _ in range(warmup):
        for m in measured:
            m.ours()
            m.bare()
    for _ in range(runs):
        for m in measured:
            m.run_once()
    return measured


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile: a value that was measured, never an interpolation."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# -- the backends ----------------------------------------------------------------------------
@contextlib.contextmanager
def database(backend: str, root: Path, database_url: str | None) -> Iterator[str]:
    """The URL of an empty catalogue database of ``backend``."""
    if backend == "sqlite":
        yield f"sqlite:///{root / 'catalogue.db'}"
    elif database_url:
        yield database_url
    else:
        # The test suite's own server code (initdb in a temp dir, a free port), not a copy.
        wrapped = postgres_server.__wrapped__  # type: ignore[attr-defined]
        with contextlib.contextmanager(wrapped)() as server:
            yield server.create_database("callrec_bench")


def describe(catalogue: Catalogue) -> str:
    with catalogue.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            version = connection.exec_driver_sql("SHOW server_version").scalar_one()
            size = connection.exec_driver_sql(
                "SELECT pg_database_size(current_database())"
            ).scalar_one()
            return f"PostgreSQL {version} (GIN over tsvector), database {size / 1e6:,.0f} MB"
    path = catalogue.engine.url.database or ""
    return f"SQLite {sqlite3.sqlite_version} (FTS5), file {os.path.getsize(path) / 1e6:,.0f} MB"


@dataclass
class BackendRun:
    name: str
    described: str = ""
    calls: int = 0
    segments: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    load_average: float = 0.0  # of the machine (1 min) as the queries start
    results: list[Measured] = field(default_factory=list)


def set_plan_cache_mode(catalogue: Catalogue, mode: str) -> None:
    """PostgreSQL's ``plan_cache_mode`` on every connection of the catalogue from now on.

    psycopg prepares a statement on the server once a connection has run it 5 times; after 5
    more the server may settle on one generic plan for it, whatever the tsquery."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"SET plan_cache_mode = {mode}")
        dbapi_connection.commit()  # or the pool's rollback on check-in undoes the SET

    sa.event.listen(catalogue.engine, "connect", on_connect)
    catalogue.engine.dispose()  # the connections opened before the listener


def run_backend(backend: str, root: Path, args: argparse.Namespace) -> BackendRun:
    run = BackendRun(backend)
    with database(backend, root, args.database_url) as url:
        catalogue = Catalogue.open(url)
        try:
            with catalogue.engine.connect() as connection:
                if connection.exec_driver_sql("SELECT count(*) FROM calls").scalar_one():
                    sys.exit("bench/search.py: the database already holds calls; give an empty one")
            with timed(f"{backend}: generate + insert", run.seconds):
                run.calls, run.segments = load(catalogue, args.segments, args.seed)
            with timed(f"{backend}: index build (reindex_all)", run.seconds):
                written = build_index(catalogue, stem_cache=args.stem_cache)
            assert written == run.segments, (written, run.segments)
            run.described = describe(catalogue)
            if backend == "postgres" and args.plan_cache_mode:
                set_plan_cache_mode(catalogue, args.plan_cache_mode)
            settings = load_settings(data_dir=root / "data", s3_endpoint=None, database_url=url)
            storage = Storage(
                settings=settings, objects=ObjectStore(UNUSED_S3), catalogue=catalogue
            )
            run.load_average = os.getloadavg()[0]
            with timed(f"{backend}: queries", run.seconds):
                run.results = measure(storage, runs=args.runs, warmup=args.warmup)
        finally:
            catalogue.close()
    return run


def report(run: BackendRun, *, stem_cache: bool) -> None:
    load_s = run.seconds[f"{run.name}: generate + insert"]
    build_s = run.seconds[f"{run.name}: index build (reindex_all)"]
    print(f"\n{run.described}: {run.segments:,} segments in {run.calls:,} calls")
    print(
        f"  load (generate + bulk insert, not search): {load_s:.1f} s; index build "
        f"(reindex_all + {'VACUUM ANALYZE' if run.name == 'postgres' else 'commit'}"
        f"{', stem memoized' if stem_cache else ''}): "
        f"{build_s:.1f} s = {build_s / run.segments * 1e6:.0f} µs/segment"
    )
    print(f"  load average as the queries started: {run.load_average:.2f}")
    print(
        f"  {'query':<22} {'text [filters]':<30} {'role':<8} {'matches':>9} {'hits':>4}"
        f"  {'callrec p50/p95 ms':>18}  {'bare p50/p95 ms':>16}"
    )
    for m in run.results:
        given = m.case.filters.given()
        shown = m.case.text + (f" [{','.join(given)}]" if given else "")
        print(
            f"  {m.case.label:<22} {shown:<30} {m.viewer.role.split('_')[-1]:<8}"
            f" {m.matches:>9,} {m.hits:>4}"
            f"  {percentile(m.ours_ms, 0.5):>8.1f} /{percentile(m.ours_ms, 0.95):>8.1f}"
            f"  {percentile(m.bare_ms, 0.5):>7.1f} /{percentile(m.bare_ms, 0.95):>7.1f}"
        )
    every = [t for m in run.results for t in m.ours_ms]
    bare = [t for m in run.results for t in m.bare_ms]
    p95 = percentile(every, 0.95)
    print(
        f"  all {len(every)} searches: callrec p50 {percentile(every, 0.5):.1f} ms, p95 "
        f"{p95:.1f} ms (bare p50 {percentile(bare, 0.5):.1f}, p95 {percentile(bare, 0.95):.1f})"
        f" — target p95 < {TARGET_P95_MS:.0f} ms: {'met' if p95 < TARGET_P95_MS else 'MISSED'}"
    )
    missed = [m for m in run.results if percentile(m.ours_ms, 0.95) >= TARGET_P95_MS]
    for m in missed:
        print(
            f"  missed: {m.case.label} ({m.viewer.role}): p95 {percentile(m.ours_ms, 0.95):.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per query and role")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before them")
    parser.add_argument("--seed", type=int, default=6, help="of the generated corpus")
    parser.add_argument(
        "--stem-cache", action="store_true",
        help="memoize the stemmer during the index build (same index, to see what caching saves)",
    )  # fmt: skip
    parser.add_argument(
        "--plan-cache-mode", choices=("auto", "force_custom_plan", "force_generic_plan"),
        help="PostgreSQL plan_cache_mode for the searches (default: the server's, auto)",
    )  # fmt: skip
    parser.add_argument(
        "--database-url", default=None,
        help="an empty PostgreSQL database (default: start a throw-away server)",
    )  # fmt: skip
    args = parser.parse_args()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    with tempfile.TemporaryDirectory(prefix="callrec-bench-") as tmp:
        runs = [run_backend(backend, Path(tmp), args) for backend in backends]
    print(
        f"search benchmark: {args.runs} runs per query and role after {args.warmup} warm-up, "
        f"one search at a time, limit {LIMIT}, corpus seed {args.seed}, {os.cpu_count()} cores"
    )
    for run in runs:
        report(run, stem_cache=args.stem_cache)
    print(
        "\nreproduce: .venv/bin/python bench/search.py "
        f"--segments {args.segments} --backend {args.backend} --runs {args.runs}"
        + (" --stem-cache" if args.stem_cache else "")
        + (f" --plan-cache-mode {args.plan_cache_mode}" if args.plan_cache_mode else "")
        + (" --database-url URL" if args.database_url else "")
    )


if __name__ == "__main__":
    main()
