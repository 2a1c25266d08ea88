"""Untrusted text stays inert and secrets stay secret.

Teachers' answers and errors, datasets' questions and plugins' messages may hold terminal escape
sequences (retitle the window, clear the screen, an OSC 8 link) and Rich markup (a live link, or a
``[/]`` that raises MarkupError): each place fair shows them is fed both, through the real CLI, the
real local server and a Textual pilot. A provider that echoes the key it was sent must not get it
stored or printed anywhere, on either transport.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
import urllib.parse
from pathlib import Path

import pytest
from committee_setup import committee_config, paper_mistakes
from helpers import fair
from rich.console import Console
from rich.text import Text

from fair_core import config as cfg
from fair_core import logs
from fair_core.console import ConsoleSink
from fair_core.inert import inert
from fair_core.redact import REDACTED, keep_secret, redact
from fair_core.runs.events import CallFailed, JsonlSink, Message, StageFinished
from fair_core.runs.store import StageStatus, Store
from fair_core.testing.server import BEHAVIOURS, ErrorReply, serve_in_thread

LINK = "[link=file:///etc/passwd]click[/link]"
# a window title, a clear screen, an OSC 8 link, an 8-bit CSI, a bidi override, a bell, and markup
HOSTILE = f"\x1b]0;pwned\x07\x1b[2J\x1b]8;;file:///etc/passwd\x1b\\here\x1b]8;;\x1b\\ \x9b31m\u202e\x07 {LINK} [/] [b]"
ESCAPES = ("\x1b", "\x9b", "\x07", "\u202e")


def assert_inert(text: str) -> None:
    """No escape sequence or control of ours in ``text``, and the markup shows as written."""
    assert not any(c in text for c in ESCAPES), repr(text[-2000:])
    assert LINK in text and "[/]" in text, text[-2000:]


# -- the one function ---------------------------------------------------------------------------------


def test_inert_strips_sequences_and_controls_and_keeps_lines():
    assert inert(HOSTILE) == f"here  {LINK} [/] [b]"
    assert inert("a\tb\r\nc\rd\x00e\x7f\x85") == "a\tb\nc\nde"
    assert inert("\x1b]0;unterminated title") == "0;unterminated title"  # only the introducer goes


def test_inert_stays_quick_on_a_run_of_unterminated_introducers():
    """Each 8-bit introducer scanned to the end of the text for its terminator: 40,000 of them took
    seconds, a hostile megabyte hours (the TUI showing that answer froze). The test fails by never ending."""
    for introducer in "\x90\x98\x9d\x9e\x9f":
        assert inert(introducer * 200_000 + "end") == "end"
    assert inert("\x1b]0;" + "\x9d" * 200_000 + "title\x07end") == "0;end"  # the last one an OSC "title"


def test_inert_markup_reads_back_exactly_as_written():
    for markup in (True, False):
        shown = Text.from_markup(f"[red]{inert(HOSTILE, markup=True)}[/]").plain if markup else inert(HOSTILE)
        assert shown == f"here  {LINK} [/] [b]"
    backslash = inert("ends in a backslash \\", markup=True)
    assert Text.from_markup(f"[red]{backslash}[/]").plain == "ends in a backslash \\"


def test_redact_known_values_and_key_shapes():
    keep_secret("plain-value-no-shape-123")
    keep_secret("short")  # too short to be a key: ordinary words must not be garbled
    said = "key plain-value-no-shape-123 rejected; Authorization: Bearer abcdefgh12345; sk-proj-AbCdEf0123456789XYZ"
    assert redact(said) == f"key {REDACTED} rejected; Authorization: Bearer {REDACTED}; {REDACTED}"
    for words in ("a short story about a task-specific risk-free api key", "Llama-2-7b-chat-hf_svamp_false_round0"):
        assert redact(words) == words
    answer = "sk-proj-AbCdEf0123456789XYZ plain-value-no-shape-123"  # a teacher's answer keeps its words
    assert redact(answer, shapes=False) == f"sk-proj-AbCdEf0123456789XYZ {REDACTED}"


@pytest.mark.parametrize(
    "key",
    ["k3y.with+regex/meta=chars$^(x)[y]|z?*\\{1}-0123456789", "pk.a+b/c=d$e^f(g)h[i]j|k?l*m\\n{1}0123456789"],
    ids=["metacharacters", "a-backslash-n-of-its-own"],
)
def test_redact_finds_a_key_in_any_form_an_echo_gives_it(key):
    keep_secret(key)
    forms = [
        key,
        json.dumps(key),  # JSON: the backslash doubled
        json.dumps(json.dumps(key)),  # JSON in JSON
        json.dumps(key).replace("k", "\\u006b"),
        urllib.parse.quote(key, safe=""),
        urllib.parse.quote_plus(key),
        f"{key[:12]}\n{key[12:]}",
        f"{key[:12]}\\n{key[12:]}",  # the line break JSON-escaped
        f"{key[:12]}\x1b]8;;file:///x\x1b\\{key[12:]}",
        f"{key[:5]}\u200b{key[5:12]}\x00{key[12:]}",
    ]
    for form in forms:
        said = redact(f"bad key {form}!")
        assert REDACTED in said and key[12:30] not in inert(said), said


def test_redact_stays_quick_on_text_built_to_make_it_backtrack():
    """Each of these took the search minutes to hours (backtracking between the ways a cut can be
    read): the test fails by never ending."""
    keep_secret("pk.another-planted-key-0123456789")
    for text in ("p" + "\n" * 40 + "X", "p" + "\x1b" * 40 + "X", "pk." + "\\" * 200_000, ("p" + "\t\n" * 20) * 1000):
        assert redact(text) == text


# -- the console --------------------------------------------------------------------------------------


def test_the_console_shows_provider_text_literally():
    sink = ConsoleSink(quiet=True)
    out = io.StringIO()
    sink.console = Console(file=out, width=300, color_system=None)
    sink(CallFailed("t0", "solve", f"item{HOSTILE}", HOSTILE))  # `[/]` raised MarkupError here
    sink(Message("warning", f"teacher t0 stopped: {HOSTILE}"))
    sink(StageFinished("solve", 0, {"failed": 1, "error": HOSTILE}))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[0].startswith("call failed t0 solve item") and lines[1].startswith("warning: ")
    for line in lines:
        assert_inert(line)


def test_log_lines_are_inert_and_redacted(capsys, monkeypatch):
    monkeypatch.delenv("FAIR_LOG_LEVEL", raising=False)
    logs.configure()
    keep_secret("a-logged-secret-value")
    logging.getLogger("fair_teachers.litellm_backend").warning("provider said %s with a-logged-secret-value", HOSTILE)
    err = capsys.readouterr().err
    assert err.startswith("fair: warning: provider said ") and "a-logged-secret-value" not in err and REDACTED in err
    assert_inert(err)


def test_the_events_stream_escapes_what_a_terminal_would_act_on():
    out = io.StringIO()
    JsonlSink(out)(Message("warning", HOSTILE))
    line = out.getvalue()
    assert not any(c in line for c in ESCAPES) and json.loads(line)["text"] == HOSTILE  # the same data


# -- fair run, its last line, fair report, the TUI -------------------------------------------------------


def _hostile_teacher(model: str, messages: list) -> str:
    """The scripted solver, whose answers open with escapes and markup."""
    return HOSTILE + "\n" + BEHAVIOURS["solver"](model, messages)


def _broken_teacher(model: str, messages: list) -> str:
    raise ErrorReply(404, f"no such model {HOSTILE}")


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, paper_dir):
    """A committee run whose dataset question, answers and a teacher's errors hold escapes and markup."""
    tmp = tmp_path_factory.mktemp("untrusted")
    mistakes = paper_mistakes(paper_dir, tmp, 3)
    items = json.loads(mistakes.read_text())
    items[0]["question"] += HOSTILE
    mistakes.write_text(json.dumps(items))
    behaviours = {"hostile": _hostile_teacher, "broken": _broken_teacher}
    with serve_in_thread(behaviours=behaviours) as server:
        config = committee_config(tmp, server.url, mistakes, models=("hostile", "solver", "broken"))
        run = tmp / "run"
        out = fair("run", config, "--run-dir", run, "--stages", "explain,solve,review")
    return run, config, out


@pytest.mark.needs_data
def test_fair_run_shows_hostile_text_inert_on_every_line(hostile_run):
    run, _, out = hostile_run
    assert out.returncode == 3, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and "MarkupError" not in out.stderr, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert any(line.startswith("warning: teacher t2 stopped: HTTP 404") for line in lines), out.stderr[-3000:]
    assert any(line.startswith("call failed t2 ") for line in lines), out.stderr[-3000:]
    assert lines[-1].startswith("fair: error: ") and "teacher t2 stopped" in lines[-1], lines[-1]
    assert_inert(lines[-1])
    assert_inert(out.stderr)


@pytest.mark.needs_data
def test_fair_report_shows_hostile_text_inert(hostile_run, tmp_path):
    import shutil

    run = Path(shutil.copytree(hostile_run[0], tmp_path / "run", ignore=shutil.ignore_patterns(".lock")))
    store = Store(run / "run.sqlite")
    try:  # where the runner keeps a stage's error: a plugin's exception may say anything
        store.mark_stage(0, "compile", StageStatus.FAILED, {"error": HOSTILE})
    finally:
        store.close()
    out = fair("report", run)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "compile failed" in out.stdout
    assert_inert(out.stdout)


def _screen_output(app) -> str:
    """What the app would write to the terminal for a full redraw of its screen now."""
    return app.screen._compositor.render_update(full=True).render_segments(app.console)


@pytest.mark.needs_data
def test_the_tui_shows_hostile_questions_answers_and_errors_inert(hostile_run, monkeypatch):
    from fair_tui.app import FairApp

    run, _, _ = hostile_run
    monkeypatch.chdir(run.parent)

    async def scenario():
        app = FairApp(str(run))
        async with app.run_test(size=(140, 60)) as pilot:
            await pilot.press("4")  # the committee: the question and the teachers' writings
            for _ in range(200):
                await pilot.pause(0.05)
                if app.screen.NAME == "committee" and app.screen.shown_items:
                    break
            item = next(i for i, it in app.screen.shown_items.items() if HOSTILE in it.mistake.question)
            app.screen.show_detail(item)
            await pilot.pause(0.2)
            detail = app.screen.query_one("#detail").content
            rendered = "".join(segment.text for segment in Console(width=140).render(detail))
            assert "here" in rendered and LINK in rendered and rendered.count("[/]") >= 2, rendered[:2000]
            screen = _screen_output(app)
            assert not any(s in screen for s in ("\x1b]0;", "\x1b[2J", "\x1b]8;;file", "\x9b", "\u202e"))
            await pilot.press("3")  # the pipeline's log: an error and a warning quoting a provider
            await pilot.pause(0.2)
            app.session.receive(Message("warning", f"teacher t2 stopped: {HOSTILE}"))
            app.session.receive(CallFailed("t2", "solve", "item1", HOSTILE))
            for _ in range(100):
                await pilot.pause(0.05)
                log = app.screen.query_one("#log")
                if len(log.lines) >= 2 and LINK in "".join(s.text for s in log.lines[-1]):
                    break
            written = "\n".join("".join(s.text for s in line) for line in log.lines)
            assert_inert(written)
            screen = _screen_output(app)
            assert not any(s in screen for s in ("\x1b]0;", "\x1b[2J", "\x1b]8;;file", "\x9b", "\u202e"))

    asyncio.run(scenario())


# -- secrets ------------------------------------------------------------------------------------------


@pytest.mark.needs_data
@pytest.mark.slow
@pytest.mark.parametrize("transport", ["http", "litellm"])
def test_a_key_the_provider_echoes_is_never_stored_or_printed(tmp_path, paper_dir, transport):
    key = "planted-" + secrets.token_hex(16)  # no provider's shape: only knowing the value finds it
    mistakes = paper_mistakes(paper_dir, tmp_path, 2)
    with serve_in_thread() as server:
        config = committee_config(
            tmp_path,
            server.url,
            mistakes,
            models=("solver", "echo-key-401", "echo-key-500"),
            teacher={"api_key_env": "FAIR_TEST_KEY", "options": {"transport": transport}, "max_retries": 1},
        )
        run, events = tmp_path / "run", tmp_path / "events.jsonl"
        out = fair("run", config, "--run-dir", run, "--events", events, env={"FAIR_TEST_KEY": key})
        assert server.by_model["echo-key-401"] and server.by_model["echo-key-500"]  # they were asked, and echoed it
    assert out.returncode == 3, out.stderr[-2000:]
    exports = tmp_path / "exports"
    for form in ("jsonl", "paper"):
        exported = fair("export", run, "--format", form, "--out", exports / form)
        assert exported.returncode == 0, exported.stderr[-2000:]
    report = fair("report", run, "--json")
    seen = [out.stdout, out.stderr, report.stdout, report.stderr, events.read_text()]
    seen += [p.read_bytes().decode("utf-8", "replace") for p in [*run.rglob("*"), *exports.rglob("*")] if p.is_file()]
    assert seen[-1] and any(p.name == "run.sqlite" for p in run.rglob("*"))
    for text in seen:
        assert key not in text
        assert key[8:24] not in text  # nor any part of it a cut left
    assert f"Incorrect API key provided: {REDACTED}" in out.stderr  # the message itself is kept
    errors = [json.loads(line) for line in events.read_text().splitlines()]
    assert any(REDACTED in e.get("reason", "") for e in errors if e["type"] == "call_failed")
    assert cfg.load(config).teachers[1].api_key_env == "FAIR_TEST_KEY"


@pytest.mark.needs_data
def test_exports_write_hostile_text_as_json_escapes(hostile_run, tmp_path):
    """A JSON file read in a terminal (`head round0.jsonl`) acts on what JSON leaves raw: C1, bidi."""
    import shutil

    run = Path(shutil.copytree(hostile_run[0], tmp_path / "run", ignore=shutil.ignore_patterns(".lock")))
    for form in ("jsonl", "paper"):
        out = fair("export", run, "--format", form, "--out", tmp_path / form)
        assert out.returncode == 0, out.stderr[-2000:]
    files = [p for p in tmp_path.rglob("*.json*") if p.is_file() and p.parent.name in ("jsonl", "paper")]
    texts = [p.read_text(encoding="utf-8") for p in files]
    assert any(LINK in t for t in texts), files  # the hostile answers are there
    for path, text in zip(files, texts):
        assert not any(c in text for c in ESCAPES), path
    assert any("\\u202e" in t for t in texts)  # the bidi override, as its JSON escape
