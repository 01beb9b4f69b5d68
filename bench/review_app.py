"""Render time of the review app's call page for a 30-minute call, against bare Streamlit.

    .venv/bin/python bench/review_app.py [--runs 10] [--turns 450]

Builds a fresh embedded installation in a temp folder (SeaweedFS + SQLite, whatever CALLREC_
variables are set): one 30-minute stereo call with ``--turns`` Dutch turns alternating agent
and customer, stored through the worker's own store path (redaction, search index, metrics),
a complaint-handler and a team-lead account. The call's original in S3 is a few bytes, not
real audio: the player element, its presigned link and the browser's fetch of it are the same,
and decoding the audio is not part of rendering the page.

Then serves, one after the other, with ``streamlit run`` and drives Debian's Chromium
(Playwright) against each:

1. callrec: ``review_ui/app.py``, opened at ``/call?call=ID`` and signed in there (as the
   handler, then as the lead);
2. bare: a generated Streamlit script doing the same rendering work with nothing of callrec's
   layer (no storage, no sign-in, no role checks, no audit): the same turns as ``st.button``s in
   a ``st.container(height=420)``, the same Vega-Lite chart of the same intervals, the same
   re-keyed ``st.audio``; a one-button form stands in for the sign-in so both start from the
   same click;
3. bare, the turns as one ``st.dataframe`` whose row selection seeks: what the page would cost
   with one transcript element instead of one button per turn (the change this bench weighs).

Each run opens a new tab (a new app session; the browser cache stays warm after a first,
unmeasured run) and measures in the browser, from the click event to the first animation frame
where the app is idle again (``data-test-script-state="notRunning"`` on ``stApp`` after the
click made it run, no stale element left) with the expected elements laid out:

- page: submit of the sign-in form until the last turn button and the chart are there (every
  rerun of sign-in included: authenticate, go to the requested page, render it);
- listen: the "Listen" click until the player is there (a presigned link and an audit event);
- seek: a click on a turn until the re-keyed player is there (a rerun of the whole page).

Each figure is split, from the script-run state changes the browser saw, into: before the last
script run began (earlier runs such as sign-in and going to the requested page, round trips),
that run (the server running the script while the browser receives and draws its elements) and
after it (the chart drawn, layout).

For context it also times, without a browser, one script run of the call page and of the bare
scripts (Streamlit's ``AppTest``, timed inside the script) and the storage calls behind the
page and the sign-in. Target (issue 7): page p95 < 1.5 s.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import Browser, Page, sync_playwright

from review_ui.views.call import TURNS_SHOWN
from settings import load_settings
from storage.access import Role, Viewer
from storage.calls import open_call
from storage.catalogue import AgentChannel, Call, Job
from storage.connect import Storage, open_storage
from storage.purge import call_prefix
from storage.users import add_user, authenticate
from tests.browser import APP, ARGS, CHROMIUM, serving
from tests.stores import callrec_env
from transcribe.engine import Transcript, TranscriptSegment
from transcribe.jobs import LeasePolicy, claim
from transcribe.metrics import metrics_from_speech
from transcribe.store import save_transcript

DURATION_S = 1800.0
PASSWORD = "a long bench password"
ACCOUNTS = {
    "handler": (Role.COMPLAINT_HANDLER, ()),
    "lead": (Role.TEAM_LEAD, ("schade",)),
}
TIMEOUT_MS = 120_000  # the machine is shared; a slow run is a figure, not a failure
LAST_TURN = ".st-key-turn-{n} button"
CHART = '[data-testid="stVegaLiteChart"] :is(canvas, svg)'
PLAYER = ".st-key-player-{nonce} audio"
# label: whether the turns are one st.dataframe (the change to weigh) rather than buttons
BARE_VARIANTS = {"bare, same turns as buttons": False, "bare, turns as one st.dataframe": True}
TABLE = '[data-testid="stDataFrame"] [data-testid="data-grid-canvas"]'
ROW_PX = 35  # Streamlit's data grid: header and rows

# What a contact-centre call about car damage sounds like; personal data in some turns gives
# the redaction real work. Turns are drawn from these, so the page gets ordinary label lengths.
AGENT_SAYS = [
    "Goedemiddag, u spreekt met Sanne van de afdeling schade, waarmee kan ik u helpen?",
    "Mag ik voor de controle uw polisnummer van u?",
    "Dank u wel, ik heb uw dossier nu voor me.",
    "Wanneer is de schade precies ontstaan?",
    "Dat begrijp ik, dat is natuurlijk heel vervelend voor u.",
    "Kunt u uw postcode en huisnummer bevestigen?",
    "Heeft u foto's gemaakt van de schade aan de voorruit?",
    "De schade valt onder uw allriskdekking, dus die wordt vergoed.",
    "U betaalt wel het eigen risico van honderdvijftig euro.",
    "Ik kan een afspraak maken bij een hersteller bij u in de buurt.",
    "Zou dinsdag dertien januari om half tien u uitkomen?",
    "Dan zet ik die afspraak nu voor u vast.",
    "U ontvangt de bevestiging per e-mail, op welk adres wilt u die ontvangen?",
    "Klopt het dat u een vervangende auto nodig heeft?",
    "Die kan ik voor drie dagen voor u regelen.",
    "Is er verder nog iets waarmee ik u kan helpen?",
    "Ja, dat noteer ik even in het dossier.",
    "Oké, dat is helder.",
    "Daar heeft u gelijk in, dat had anders moeten gaan.",
    "Ik ga dat voor u navragen bij de schadebehandelaar.",
    "Het bedrag wordt binnen vijf werkdagen op uw rekening gestort.",
    "Op welk rekeningnummer mogen we het bedrag overmaken?",
    "Uw telefoonnummer is nog steeds 06 12 34 56 78?",
    "Dank u wel voor uw geduld.",
]
CUSTOMER_SAYS = [
    "Ja, goedemiddag, ik bel over de schade aan mijn auto.",
    "Mijn polisnummer is AB 1234567.",
    "Dat was vorige week donderdag, op de parkeerplaats bij de supermarkt.",
    "Ja.",
    "Oké.",
    "Nee, dat klopt niet helemaal, het was de rechterkant.",
    "Mijn postcode is 3511 AB, huisnummer twaalf.",
    "Ja, ik heb foto's gemaakt met mijn telefoon.",
    "Kan dat ook eerder? Ik heb de auto echt nodig voor mijn werk.",
    "Dinsdag is prima, half tien lukt wel.",
    "Mijn e-mailadres is j.jansen@example.nl.",
    "Mijn IBAN is NL91 ABNA 0417 1643 00.",
    "Hoe lang duurt het voordat het geld er is?",
    "Nee, dat was het wel, dank u wel.",
    "Ik vind het wel vreemd dat ik dat eigen risico moet betalen.",
    "Ik heb vorige keer ook al gebeld en toen werd ik niet teruggebeld.",
    "Ja, dat klopt.",
    "Moment, ik pak even mijn pasje erbij.",
    "Dus als ik het goed begrijp wordt alles vergoed behalve het eigen risico?",
    "Ja hoor, dat is goed.",
]


@dataclass(frozen=True)
class Target:
    """An app served for the browser: where to open it and how to get past its first form."""

    label: str
    url: str
    path: str = "/"
    submit: str = "Open"
    username: str | None = None
    table: bool = False  # the turns are one st.dataframe, a row click seeks

    def transcript(self, turns: int) -> str:
        """The element that is there once the whole transcript is."""
        return TABLE if self.table else LAST_TURN.format(n=min(turns, TURNS_SHOWN) - 1)

    def click_turn(self, page: Page, turn: int) -> None:
        if not self.table:
            page.locator(LAST_TURN.format(n=turn)).click()
            return
        # A grid drawn on a canvas: click the row marker (selection checkbox) of a row in view.
        grid = page.locator(TABLE).bounding_box()
        assert grid is not None
        page.mouse.click(grid["x"] + 20, grid["y"] + ROW_PX * (1.5 + turn % 10))


@dataclass(frozen=True)
class Split:
    """One measured click, in seconds: in all, and where that went."""

    total_s: float
    before_s: float  # until the last script run began: earlier runs (sign-in...), round trips
    run_s: float  # the last script run as the browser saw it (elements arriving and drawn)
    after_s: float  # from its end until the expected elements were laid out (the chart drawn)


@dataclass(frozen=True)
class Timings:
    page: list[Split]
    listen: list[Split]
    seek: list[Split]
    cold_page_s: float  # the unmeasured first run: the app's first session, an empty cache


def dutch_turns(count: int, *, duration_s: float, seed: int = 7) -> list[TranscriptSegment]:
    """``count`` turns, agent and customer in turn, spread over ``duration_s``: speech at about
    2.5 words a second, short gaps, now and then the customer talking over the agent, and the
    customer on hold for a minute and a half mid-call (a silence on the time line)."""
    rng = random.Random(seed)
    raw: list[tuple[str, float, float, str, float]] = []
    cursor = 0.0
    for n in range(count):
        speaker = "agent" if n % 2 == 0 else "customer"
        text = rng.choice(AGENT_SAYS if speaker == "agent" else CUSTOMER_SAYS)
        if n == count // 2:
            cursor += 90.0  # on hold
        length = max(0.6, len(text.split()) / rng.uniform(2.2, 2.8))
        start = cursor - (rng.uniform(0.3, 1.0) if rng.random() < 0.08 else 0.0)
        raw.append((speaker, max(0.0, start), start + length, text, rng.uniform(0.75, 0.97)))
        cursor = start + length + rng.uniform(0.2, 1.2)
    scale = (duration_s - 5.0) / cursor
    return [
        TranscriptSegment(speaker, round(start * scale, 2), round(end * scale, 2), text, confidence)
        for speaker, start, end, text, confidence in raw
    ]


def build_call(storage: Storage, turns: list[TranscriptSegment], *, now: datetime) -> str:
    """The call, its original, its transcript (through the worker's store path) and the
    accounts; returns the call id."""
    call_id = f"bench-30min-{now:%Y%m%d%H%M%S}"
    key = f"{call_prefix(call_id)}original.wav"
    stored = storage.objects.put(storage.settings.bucket_recordings, key, b"RIFF not audio")
    with storage.catalogue.session() as session:
        session.add(
            Call(
                id=call_id, started_at=now - timedelta(days=2), duration_s=DURATION_S,
                channels=2, sample_rate=8000, codec="pcm_s16le", agent_id="sanne.devries",
                team="schade", queue="schade-auto", direction="inbound",
                customer_number="+31612345678", policy_number="AB1234567",
                agent_channel=AgentChannel.LEFT, language="nl", sha256="0" * 64,
                original_key=stored.key,
            )
        )  # fmt: skip
        session.flush()
        session.add(Job(call_id=call_id))
    job = claim(storage.catalogue, owner="bench", now=now, policy=LeasePolicy())
    assert job is not None and job.call_id == call_id, job
    speech: dict[str, list[tuple[float, float]]] = {"agent": [], "customer": []}
    for turn in turns:
        speech[turn.speaker].append((turn.start_s, turn.end_s))
    transcript = Transcript(
        segments=tuple(turns), layout="stereo", language="nl", expected_language="nl",
        language_mismatch=False, language_probability=1.0, model="synthetic (bench)",
        options={}, duration_s=DURATION_S, speech=speech,
    )  # fmt: skip
    metrics = metrics_from_speech(speech, duration_s=DURATION_S).to_dict()
    save_transcript(storage.catalogue, job, transcript, metrics, owner="bench", now=now)
    for username, (role, teams) in ACCOUNTS.items():
        add_user(storage.catalogue, username, role=role, teams=teams, password=PASSWORD,
                 actor="bench", now=now)  # fmt: skip
    return call_id


# The bare script: STARTED and the constants (TURNS, ROWS, SPEC, AUDIO_URL, AS_TABLE, SHOWN)
# are written above it. AS_TABLE renders the turns as one st.dataframe whose row selection seeks.
BARE = """
import streamlit as st

st.set_page_config(page_title="bare", layout="wide")
if not st.session_state.get("open"):
    with st.form("gate"):
        if st.form_submit_button("Open"):
            st.session_state["open"] = True
            st.rerun()
    st.stop()


def seek(start_s):
    _, nonce = st.session_state.get("seek", (0, 0))
    st.session_state["seek"] = (int(start_s), nonce + 1)


def seek_selected():
    rows = st.session_state["turns"].selection.rows
    if rows:
        seek(TURNS[rows[0]][1])


def clock(seconds):
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes:02d}:{rest:02d}"


st.header("Call")
if st.session_state.get("listen") or st.button("Listen"):
    st.session_state["listen"] = True
    at, nonce = st.session_state.get("seek", (0, 0))
    with st.container(key=f"player-{nonce}"):
        st.audio(AUDIO_URL, format="audio/mpeg", start_time=at, autoplay=nonce > 0)
st.vega_lite_chart(ROWS, SPEC, width="stretch")
st.subheader("Transcript")
if AS_TABLE:
    st.dataframe(
        [{"at": clock(start_s), "speaker": who, "text": text} for who, start_s, text in TURNS],
        key="turns", on_select=seek_selected, selection_mode="single-row", hide_index=True,
        height=420,
    )
else:
    with st.container(height=420):
        for n, (speaker, start_s, text) in enumerate(TURNS[:SHOWN]):
            st.button(
                f"[{clock(start_s)}] {speaker}: {text}", key=f"turn-{n}", type="tertiary",
                on_click=seek, args=(start_s,),
            )
st.session_state["bench:script-s"] = time.perf_counter() - STARTED
"""


def write_bare_script(
    path: Path, turns: list[TranscriptSegment], audio_url: str, *, as_table: bool
) -> Path:
    from review_ui.timeline import chart_spec, stretches

    rows = [
        {"lane": s.lane, "start": round(s.start_s, 2), "end": round(s.end_s, 2)}
        for s in stretches([(t.speaker, t.start_s, t.end_s) for t in turns], DURATION_S)
    ]
    constants = {
        "TURNS": [(t.speaker, t.start_s, t.text) for t in turns],
        "ROWS": rows,
        "SPEC": chart_spec(),
        "AUDIO_URL": audio_url,
        "AS_TABLE": as_table,
        "SHOWN": TURNS_SHOWN,
    }
    header = "import time\n\nSTARTED = time.perf_counter()\n"
    header += "".join(f"{k} = {v!r}\n" for k, v in constants.items())
    path.write_text(header + BARE)
    return path


# Installed once per tab, re-armed before each measured click: remembers when the click event
# fired and every change of the app's script-run state since (runs starting and ending).
# The whole document is observed: React may replace the ``stApp`` element between runs, and an
# observer of the old one would then never see another state change.
ARM = """() => {
  if (!window.__bench) {
    document.addEventListener('click', () => {
      if (window.__bench.clickAt === null) window.__bench.clickAt = performance.now();
    }, true);
    new MutationObserver((changes) => {
      for (const change of changes) {
        if (change.target.getAttribute('data-testid') !== 'stApp') continue;
        const state = change.target.getAttribute('data-test-script-state');
        window.__bench.log.push([state, performance.now()]);
      }
    }).observe(document.body, {
      attributes: true, subtree: true, attributeFilter: ['data-test-script-state'],
    });
  }
  window.__bench = {clickAt: null, log: []};
}"""
# Once the app is idle after the click, no stale element is left and every selector's element
# is laid out (non-zero box): milliseconds [since the click, before the last run began, that run,
# after it]; null (keep polling) until then. Every selector names an element the click creates,
# so its presence shows the click's run happened, even one too quick for the browser to show it
# as running (the log is then empty and the run counts as starting at the click).
DONE = """(selectors) => {
  const bench = window.__bench;
  if (bench.clickAt === null) return null;
  const app = document.querySelector('[data-testid="stApp"]');
  if (app.getAttribute('data-test-script-state') !== 'notRunning') return null;
  if (document.querySelector('[data-stale="true"]')) return null;
  for (const selector of selectors) {
    const found = document.querySelector(selector);
    if (!found) return null;
    const box = found.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) return null;
  }
  const now = performance.now();
  const starts = bench.log.filter(([state]) => state === 'running').map(([, at]) => at);
  const began = starts.length ? starts[starts.length - 1] : bench.clickAt;
  const ends = bench.log.filter(([state, at]) => state === 'notRunning' && at >= began);
  const ended = ends.length ? ends[0][1] : now;
  return [now - bench.clickAt, began - bench.clickAt, ended - began, now - ended];
}"""
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def timed_click(page: Page, click: Callable[[], None], selectors: list[str]) -> Split:
    """From the click event to the app idle with ``selectors`` on screen."""
    page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
    page.evaluate(ARM)
    click()
    done = page.wait_for_function(DONE, arg=selectors, polling="raf", timeout=TIMEOUT_MS)
    return Split(*(float(ms) / 1000 for ms in done.json_value()))


def one_run(page: Page, target: Target, *, turns: int, turn: int) -> tuple[Split, Split, Split]:
    """Sign in (or open), listen, seek to ``turn``: how long each took."""
    page.goto(target.url + target.path)
    if target.username is not None:
        page.get_by_label("Username").fill(target.username)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
    submit = page.get_by_role("button", name=target.submit)
    page_s = timed_click(page, submit.click, [target.transcript(turns), CHART])
    listen = page.get_by_role("button", name="Listen")
    listen_s = timed_click(page, listen.click, [PLAYER.format(nonce=0)])
    seek_s = timed_click(page, lambda: target.click_turn(page, turn), [PLAYER.format(nonce=1)])
    return page_s, listen_s, seek_s


def measure(browser: Browser, target: Target, *, runs: int, turns: int) -> Timings:
    """``runs`` fresh app sessions (a new tab each) in one browser context, after one
    unmeasured run that warms the app process and the browser cache."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        figures = []
        for run in range(runs + 1):
            page = context.new_page()
            try:
                shown = min(turns, TURNS_SHOWN)
                figures.append(one_run(page, target, turns=turns, turn=(shown // 2 + run) % shown))
            except Exception:
                shot = Path(tempfile.gettempdir()) / f"bench-review-app-{target.label}.png"
                page.screenshot(path=str(shot), full_page=True)
                print(f"{target.label}: run {run} failed, screenshot {shot}", file=sys.stderr)
                raise
            finally:
                page.close()
    finally:
        context.close()
    cold, *measured = figures
    opened, listened, sought = (list(column) for column in zip(*measured, strict=True))
    return Timings(opened, listened, sought, cold_page_s=cold[0].total_s)


def median_s(action: Callable[[], object], repeat: int) -> float:
    spent = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent)


SCRIPT_S = "bench:script-s"  # where a script run leaves its own duration in the session


def call_page() -> None:
    """The call page as the app runs it, timing itself (AppTest runs this function's source)."""
    import time

    import streamlit as st

    from review_ui.views import call

    started = time.perf_counter()
    call.render()
    st.session_state["bench:script-s"] = time.perf_counter() - started


def server_side(
    storage: Storage, call_id: str, bare: dict[str, Path], *, turns: int, repeat: int
) -> dict[str, float]:
    """Median seconds of one script run, timed inside the script, of the call page (AppTest, a
    new session each: the call is opened and audited each time) and of the bare scripts; and
    of the storage calls behind the page and the sign-in. (AppTest's own run costs about as
    much again, scanning installed packages for components each time: not counted.)"""
    from streamlit import config, logger
    from streamlit.testing.v1 import AppTest

    from review_ui import state

    config.get_option("logger.level")  # parse the config now: parsing resets the level
    logger.set_log_level("error")  # AppTest runs in this process: no warnings in the figures
    os.environ.update({k: v for k, v in callrec_env(storage).items() if k.startswith("CALLREC_")})
    state.storage.clear()  # st.cache_resource: open the stores just set

    def run_call_page(viewer: Viewer) -> float:
        at = AppTest.from_function(call_page, default_timeout=120)
        at.session_state["viewer"] = viewer
        at.query_params["call"] = call_id
        at.run()
        assert not at.exception, at.exception
        assert len([b for b in at.button if (b.key or "").startswith("turn-")]) == min(
            turns, TURNS_SHOWN
        )
        return float(at.session_state[SCRIPT_S])

    def run_bare(script: Path, table: bool) -> float:
        at = AppTest.from_file(str(script), default_timeout=120)
        at.session_state["open"] = True
        at.run()
        assert not at.exception, at.exception
        buttons = [b for b in at.button if (b.key or "").startswith("turn-")]
        shown = min(turns, TURNS_SHOWN)
        assert (len(at.dataframe), len(buttons)) == ((1, 0) if table else (0, shown))
        return float(at.session_state[SCRIPT_S])

    handler = Viewer("handler", Role.COMPLAINT_HANDLER)
    lead = Viewer("lead", Role.TEAM_LEAD, ("schade",))
    run_call_page(handler)  # warm-up: imports, the app's storage connection
    now = datetime.now(UTC)
    figures = {
        "call page script, complaint handler": statistics.median(
            run_call_page(handler) for _ in range(repeat)
        ),
        "call page script, team lead": statistics.median(
            run_call_page(lead) for _ in range(repeat)
        ),
    }
    for label, script in bare.items():
        table = BARE_VARIANTS[label]
        run_bare(script, table)
        figures[f"{label} script"] = statistics.median(
            run_bare(script, table) for _ in range(repeat)
        )
    return figures | {
        "open_call (reads + audit event)": median_s(
            lambda: open_call(storage, handler, call_id, now=now), repeat
        ),
        "authenticate (argon2id + audit event)": median_s(
            lambda: authenticate(storage.catalogue, "handler", PASSWORD, now=now), repeat
        ),
    }


def p95(values: list[float]) -> float:
    """Interpolated between the two slowest of 10 runs (``statistics.quantiles``, inclusive)."""
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def summary(splits: list[Split]) -> str:
    """p50, p95 and max of the totals; the medians of where the time went."""
    totals = [s.total_s for s in splits]
    before, run, after = (
        statistics.median(getattr(s, part) for s in splits)
        for part in ("before_s", "run_s", "after_s")
    )
    return (
        f"p50 {statistics.median(totals):5.2f} s  p95 {p95(totals):5.2f} s  "
        f"max {max(totals):5.2f} s   (p50 parts: {before:4.2f} + {run:4.2f} + {after:4.2f})"
    )


def load() -> str:
    return "/".join(f"{figure:.1f}" for figure in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="measured page loads per target")
    parser.add_argument("--turns", type=int, default=450, help="transcript turns of the call")
    args = parser.parse_args()
    load_before = load()
    results: dict[str, Timings] = {}

    with tempfile.TemporaryDirectory(prefix="callrec-bench-") as tmp:
        root = Path(tmp)
        # Always the embedded server and SQLite, whatever CALLREC_ variables are set.
        settings = load_settings(data_dir=root / "data", s3_endpoint=None, database_url=None)
        with open_storage(settings) as storage:
            turns = dutch_turns(args.turns, duration_s=DURATION_S)
            call_id = build_call(storage, turns, now=datetime.now(UTC))
            audio_url = storage.objects.presigned_get(
                settings.bucket_recordings, f"{call_prefix(call_id)}original.wav", expires_s=3600
            )
            bare = {
                label: write_bare_script(root / f"bare_{n}.py", turns, audio_url, as_table=table)
                for n, (label, table) in enumerate(BARE_VARIANTS.items())
            }
            env = callrec_env(storage)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=ARGS, headless=True
                )
                version = browser.version
                try:
                    with serving(APP, env, root / "callrec.log") as (url, _):
                        for username, (role, _) in ACCOUNTS.items():
                            target = Target(
                                f"callrec, {role.replace('_', ' ')}", url,
                                f"/call?call={call_id}", "Sign in", username,
                            )  # fmt: skip
                            results[target.label] = measure(
                                browser, target, runs=args.runs, turns=args.turns
                            )
                    for n, (label, script) in enumerate(bare.items()):
                        with serving(script, env, root / f"bare_{n}.log") as (url, _):
                            target = Target(label, url, table=BARE_VARIANTS[label])
                            results[label] = measure(
                                browser, target, runs=args.runs, turns=args.turns
                            )
                finally:
                    browser.close()
            context = server_side(storage, call_id, bare, turns=args.turns, repeat=5)

    print(
        f"review app benchmark: call page of a {DURATION_S / 60:.0f}-minute stereo call, "
        f"{args.turns} transcript turns, {args.runs} runs per target (a new tab and app session "
        f"each, warm browser cache), Debian Chromium {version} headless, "
        f"Streamlit run locally, SeaweedFS + SQLite, {os.cpu_count()} CPUs"
    )
    print(f"  machine load (1/5/15 min): {load_before} before, {load()} after")
    for label, timings in results.items():
        print(f"  {label} (first run, cold: {timings.cold_page_s:.2f} s)")
        print(f"    page (submit → page idle)      {summary(timings.page)}")
        print(f"    listen (click → player)        {summary(timings.listen)}")
        print(f"    seek (turn click → rerun idle) {summary(timings.seek)}")
    callrec = [t for label, t in results.items() if label.startswith("callrec")]
    worst = max(p95([split.total_s for split in t.page]) for t in callrec)
    verdict = "met" if worst < 1.5 else "MISSED"
    print(f"  target: call page p95 < 1.5 s: {verdict} (worst callrec p95 {worst:.2f} s)")
    print("  server side, median of 5 script runs (no browser):")
    for label, seconds in context.items():
        print(f"    {label:<48} {1000 * seconds:7.0f} ms")
    command = "reproduce: .venv/bin/python bench/review_app.py"
    print(f"{command} --runs {args.runs} --turns {args.turns}")


if __name__ == "__main__":
    main()
